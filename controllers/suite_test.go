package controllers_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/controllers"
	"github.com/popconnect/popconnect/internal/cmrunner"
	"github.com/popconnect/popconnect/internal/render"
	"github.com/popconnect/popconnect/internal/testenv"
)

// The suite shares one control plane, one set of cert-manager controllers
// and a CA: starting them takes most of a suite's time.
const (
	caIssuer     = "popconnect-ca"
	clientCASecr = "agency-client-ca"
	// waitLong bounds waits that include certificate issuance.
	waitLong = 2 * time.Minute
	// waitShort bounds waits on the operator alone.
	waitShort = 30 * time.Second
)

type suite struct {
	env *testenv.Env
	c   client.Client
	// writes counts the manager's API writes (anything but GET/LIST/WATCH).
	writes *writeLog
	// stopManager stops the running manager and waits for it.
	stopManager func()
	// auditz answers the managers' GET /auditz for every gateway pod:
	// test pods have IP 127.0.0.1, and the managers ask its port.
	auditz *auditzServer
}

// suiteManager is where the suite's managers say they run: the gateways'
// NetworkPolicies let these pods reach the metrics port.
var suiteManager = render.ManagerPeer{
	Namespace: "popconnect-system",
	PodLabels: map[string]string{"app.kubernetes.io/name": "popconnect", "app.kubernetes.io/component": "manager"},
}

// auditzServer is a local HTTP server whose handler a test sets: no kubelet
// runs gateway pods under envtest, so a test's pod (IP 127.0.0.1) is
// answered by whatever the test serves. 404 (an old gateway) when unset.
type auditzServer struct {
	srv     *httptest.Server
	port    int
	handler atomic.Pointer[http.Handler]
}

func startAuditzServer() (*auditzServer, error) {
	a := &auditzServer{}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := a.handler.Load(); h != nil {
			(*h).ServeHTTP(w, r)
			return
		}
		http.NotFound(w, r)
	}))
	_, port, err := net.SplitHostPort(a.srv.Listener.Addr().String())
	if err == nil {
		a.port, err = strconv.Atoi(port)
	}
	if err != nil {
		a.srv.Close()
		return nil, err
	}
	return a, nil
}

// serve makes h answer until the test ends.
func (a *auditzServer) serve(t *testing.T, h http.Handler) {
	a.handler.Store(&h)
	t.Cleanup(func() { a.handler.Store(nil) })
}

var s *suite // set once by TestMain, read-only afterwards

func TestMain(m *testing.M) {
	code, err := runSuite(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "controllers suite:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func runSuite(m *testing.M) (int, error) {
	ctrl.SetLogger(testLogger())
	env, err := testenv.Start(testenv.Options{
		CRDDirectoryPaths: []string{"config/crd/bases"},
		CertManagerCRDs:   true,
		AddToScheme:       []func(*runtime.Scheme) error{popv1.AddToScheme},
	})
	if err != nil {
		return 0, err
	}
	defer func() { _ = env.Stop() }()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	runner, err := cmrunner.Start(ctx, env.Config, cmrunner.Options{})
	if err != nil {
		return 0, fmt.Errorf("starting cert-manager: %w", err)
	}
	defer func() { _ = runner.Stop() }()
	if err := cmrunner.BootstrapCA(ctx, env.Client, cmrunner.CA{Name: caIssuer}); err != nil {
		return 0, fmt.Errorf("bootstrapping the CA: %w", err)
	}
	auditz, err := startAuditzServer()
	if err != nil {
		return 0, fmt.Errorf("starting the /auditz server: %w", err)
	}
	defer auditz.srv.Close()
	s = &suite{env: env, c: env.Client, writes: &writeLog{}, auditz: auditz}
	stop, _, err := startManager(env, s.writes, "")
	if err != nil {
		return 0, err
	}
	s.stopManager = stop
	code := m.Run()
	s.stopManager()
	return code, nil
}

// startManagerForSuite starts a new manager against the suite's control plane.
func startManagerForSuite() (func(), error) {
	stop, _, err := startManager(s.env, s.writes, "")
	return stop, err
}

// startManager runs the operator's reconcilers in a manager whose API
// writes are counted. With a leaderElectionID it takes part in leader
// election (in namespace default) and the returned channel closes when it
// is elected.
func startManager(env *testenv.Env, writes *writeLog, leaderElectionID string) (func(), <-chan struct{}, error) {
	cfg := rest.CopyConfig(env.Config)
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return countingTransport{next: rt, writes: writes}
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 env.Scheme,
		Cache:                  controllers.CacheOptions(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Logger:                 testLogger(),
		// Tests start a second manager in the same process.
		Controller:                    config.Controller{SkipNameValidation: ptr.To(true)},
		LeaderElection:                leaderElectionID != "",
		LeaderElectionID:              leaderElectionID,
		LeaderElectionNamespace:       "default",
		LeaderElectionReleaseOnCancel: true,
		// A stopped manager releases the lease (ReleaseOnCancel), and the
		// other takes it at its next try: the test never waits out a lease.
		// The lease and deadline are long only so that a loaded machine,
		// which can leave the process unscheduled for seconds, does not
		// take the lease from a leader that is running.
		LeaseDuration: ptr.To(15 * time.Second),
		RenewDeadline: ptr.To(10 * time.Second),
		RetryPeriod:   ptr.To(500 * time.Millisecond),
	})
	if err != nil {
		return nil, nil, fmt.Errorf("creating manager: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := controllers.SetupWithManager(ctx, mgr, controllers.Options{
		GatewayImage: "ghcr.io/popconnect/popconnect-gateway:test", MaxConcurrentReconciles: 2,
		Manager: suiteManager, AuditProbePort: s.auditz.port,
		// Soon enough for a test to see a pod fall back and return.
		RateLimitRefresh: time.Second,
	}); err != nil {
		cancel()
		return nil, nil, err
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	return func() {
		cancel()
		<-done
	}, mgr.Elected(), nil
}

type countingTransport struct {
	next   http.RoundTripper
	writes *writeLog
}

// writeLog counts API writes and remembers what they were, so that a test
// expecting none can say which happened.
type writeLog struct {
	mu    sync.Mutex
	count int
	what  []string
	// ok counts the writes the API server accepted, by method and path,
	// for a test that counts the writes of one object.
	ok map[string]int
}

func (w *writeLog) add(what string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.count++
	if len(w.what) < 50 {
		w.what = append(w.what, what)
	}
}

// accepted records a write the API server accepted (2xx).
func (w *writeLog) accepted(what string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ok == nil {
		w.ok = map[string]int{}
	}
	w.ok[what]++
}

// succeeded is how many writes of what ("PATCH /apis/...") the API server
// accepted since the log began, resets included.
func (w *writeLog) succeeded(what string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ok[what]
}

// reset forgets every write so far.
func (w *writeLog) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.count, w.what = 0, nil
}

// snapshot returns the count and the writes seen since the last reset.
func (w *writeLog) snapshot() (int, []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.count, append([]string(nil), w.what...)
}

func (t countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return t.next.RoundTrip(req)
	}
	what := req.Method + " " + req.URL.Path
	t.writes.add(what)
	resp, err := t.next.RoundTrip(req)
	if err == nil && resp.StatusCode >= 200 && resp.StatusCode < 300 {
		t.writes.accepted(what)
	}
	return resp, err
}

// newNamespace creates a namespace for one test, with the agency client CA
// Secret the sample gateway refers to.
func newNamespace(t *testing.T, prefix string) string {
	t.Helper()
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}
	if err := s.c.Create(ctx, ns); err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	caSecret := &corev1.Secret{}
	if err := s.c.Get(ctx, client.ObjectKey{Namespace: cmrunner.DefaultClusterResourceNamespace, Name: caIssuer}, caSecret); err != nil {
		t.Fatalf("reading the CA Secret: %v", err)
	}
	clientCA := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: clientCASecr},
		Data:       map[string][]byte{"ca.crt": caSecret.Data["ca.crt"]},
	}
	if err := s.c.Create(ctx, clientCA); err != nil {
		t.Fatalf("creating the client CA Secret: %v", err)
	}
	return ns.Name
}

// testLogger is silent unless POPCONNECT_TEST_LOG is set.
func testLogger() logr.Logger {
	if os.Getenv("POPCONNECT_TEST_LOG") != "" {
		return zap.New(zap.WriteTo(os.Stderr), zap.UseDevMode(true))
	}
	return logr.Discard()
}
