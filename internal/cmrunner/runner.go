// Package cmrunner runs cert-manager's real controllers in-process against
// any API server (envtest in our suites, any cluster for the demo), so
// Certificates are issued by cert-manager's own code rather than by a fake.
// Only the self-signed and CA issuers are wired: no ACME, Vault or Venafi.
package cmrunner

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	cmcontroller "github.com/cert-manager/cert-manager/pkg/controller"
	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Defaults match cert-manager's controller binary unless noted.
const (
	DefaultClusterResourceNamespace = "cert-manager"
	// defaultWorkers is below the binary's 5: tests issue a handful of
	// certificates and the machines have 2 cores.
	defaultWorkers    = 2
	defaultMinBackoff = time.Hour
	defaultMaxBackoff = 32 * time.Hour
	// Client-side limits apply only when the API server lacks API Priority
	// and Fairness; the binary's 20/50 would slow suites that issue many
	// certificates.
	defaultQPS   = 100
	defaultBurst = 200
	// cacheSyncTimeout bounds Start on a slow or unreachable API server.
	cacheSyncTimeout = 2 * time.Minute
)

// Options configures the runner. The zero value is usable.
type Options struct {
	// ClusterResourceNamespace holds the Secrets that ClusterIssuers refer to
	// (e.g. a CA ClusterIssuer's key pair). Default "cert-manager"; created
	// when missing.
	ClusterResourceNamespace string
	// Logger receives cert-manager's logs. The zero value discards them.
	Logger logr.Logger
	// Workers is the number of workers per controller. Default 2.
	Workers int
	// CertificateRequestMinimumBackoff and ...MaximumBackoff bound the
	// exponential back-off after a failed issuance. Defaults 1h and 32h, as in
	// cert-manager; zero minimum would make a failing Certificate retry hot.
	CertificateRequestMinimumBackoff time.Duration
	CertificateRequestMaximumBackoff time.Duration
}

func (o Options) withDefaults() Options {
	if o.ClusterResourceNamespace == "" {
		o.ClusterResourceNamespace = DefaultClusterResourceNamespace
	}
	if o.Logger.GetSink() == nil {
		o.Logger = logr.Discard()
	}
	if o.Workers <= 0 {
		o.Workers = defaultWorkers
	}
	if o.CertificateRequestMinimumBackoff <= 0 {
		o.CertificateRequestMinimumBackoff = defaultMinBackoff
	}
	if o.CertificateRequestMaximumBackoff <= 0 {
		o.CertificateRequestMaximumBackoff = defaultMaxBackoff
	}
	return o
}

// Runner is a set of running cert-manager controllers.
type Runner struct {
	cancel   context.CancelFunc
	done     chan struct{}
	err      error // written before done is closed
	shutdown []func()
}

// Run starts the controllers and blocks until ctx is done, then stops them.
func Run(ctx context.Context, cfg *rest.Config, opts Options) error {
	r, err := Start(ctx, cfg, opts)
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case <-r.done: // a controller failed
	}
	return r.Stop()
}

// Start starts the controllers and returns once their informer caches have
// synced, so objects created afterwards are seen. Cancel ctx or call Stop to
// stop them.
func Start(ctx context.Context, cfg *rest.Config, opts Options) (*Runner, error) {
	opts = opts.withDefaults()
	if err := ensureNamespace(ctx, cfg, opts.ClusterResourceNamespace); err != nil {
		return nil, err
	}
	builders, err := constructors()
	if err != nil {
		return nil, err
	}

	// cert-manager's controllers take their logger from the root context
	// (logf.FromContext), falling back to a package-global; giving it one
	// here keeps output under the caller's control.
	ctx, cancel := context.WithCancel(logr.NewContext(ctx, opts.Logger))
	factory, err := newContextFactory(ctx, cfg, opts)
	if err != nil {
		cancel()
		return nil, err
	}

	// Constructing a controller registers its informers with the shared
	// factories, so every controller must be built before the factories
	// start: an informer requested after Start is never run.
	controllers := make([]namedInterface, 0, len(builders))
	for _, b := range builders {
		c, err := b.new(factory)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("constructing cert-manager controller %s: %w", b.name, err)
		}
		controllers = append(controllers, namedInterface{name: b.name, c: c})
	}
	// All built Contexts share the factory's informer factories; Build is
	// the only way to reach them.
	base, err := factory.Build()
	if err != nil {
		cancel()
		return nil, fmt.Errorf("building cert-manager context: %w", err)
	}

	r := &Runner{cancel: cancel, done: make(chan struct{})}
	r.start(ctx, controllers, opts.Workers)
	base.SharedInformerFactory.Start(ctx.Done())
	base.KubeSharedInformerFactory.Start(ctx.Done())
	base.HTTP01ResourceMetadataInformersFactory.Start(ctx.Done())
	r.shutdown = []func(){
		base.SharedInformerFactory.Shutdown,
		base.KubeSharedInformerFactory.Shutdown,
		base.HTTP01ResourceMetadataInformersFactory.Shutdown,
	}

	if err := waitForCaches(ctx, base); err != nil {
		return nil, errors.Join(err, r.Stop())
	}
	return r, nil
}

type namedInterface struct {
	name string
	c    cmcontroller.Interface
}

// start runs every controller; the first to fail stops the others, as in
// cert-manager's binary, since a partial pipeline would hang issuance.
func (r *Runner) start(ctx context.Context, controllers []namedInterface, workers int) {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, nc := range controllers {
		wg.Go(func() {
			err := nc.c.Run(workers, ctx)
			// A controller stopped before its caches synced returns an
			// error; after a Stop that is shutdown, not failure.
			if err != nil && ctx.Err() == nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("cert-manager controller %s: %w", nc.name, err))
				mu.Unlock()
				r.cancel()
			}
		})
	}
	go func() {
		wg.Wait()
		r.err = errors.Join(errs...)
		close(r.done)
	}()
}

// Done is closed when all controllers have exited, after Stop or a failure.
func (r *Runner) Done() <-chan struct{} { return r.done }

// Stop stops the controllers and informers and waits for the controllers to
// exit. It returns the error of any controller that failed. Safe to call
// more than once.
func (r *Runner) Stop() error {
	r.cancel()
	<-r.done
	for _, f := range r.shutdown {
		f() // waits for informer goroutines
	}
	return r.err
}

func newContextFactory(ctx context.Context, cfg *rest.Config, opts Options) (*cmcontroller.ContextFactory, error) {
	path, cleanup, err := writeKubeconfig(cfg)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	f, err := cmcontroller.NewContextFactory(ctx, cmcontroller.ContextOptions{
		Kubeconfig:         path,
		KubernetesAPIQPS:   defaultQPS,
		KubernetesAPIBurst: defaultBurst,
		IssuerOptions: cmcontroller.IssuerOptions{
			ClusterResourceNamespace: opts.ClusterResourceNamespace,
		},
		CertificateOptions: cmcontroller.CertificateOptions{
			CertificateRequestMinimumBackoffDuration: opts.CertificateRequestMinimumBackoff,
			CertificateRequestMaximumBackoffDuration: opts.CertificateRequestMaximumBackoff,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("creating cert-manager context factory: %w", err)
	}
	return f, nil
}

func waitForCaches(ctx context.Context, base *cmcontroller.Context) error {
	ctx, cancel := context.WithTimeout(ctx, cacheSyncTimeout)
	defer cancel()
	for name, ok := range base.SharedInformerFactory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("cert-manager informer for %v did not sync", name)
		}
	}
	for name, ok := range base.KubeSharedInformerFactory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("cert-manager informer for %s did not sync", name)
		}
	}
	return nil
}

func ensureNamespace(ctx context.Context, cfg *rest.Config, name string) error {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("creating kubernetes client: %w", err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", name, err)
	}
	return nil
}
