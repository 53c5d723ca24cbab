// Command controller is the part of cert-manager's controller that
// popconnect's e2e cluster needs: the Certificate pipeline, the
// CertificateRequest approver and signers, and the Issuer and ClusterIssuer
// controllers, with the CA and self-signed issuers. The controllers are
// cert-manager's own, from the module version popconnect pins; this entry
// point, its flags and their defaults (cert-manager's values) are ours,
// because the Go module proxy does not serve cert-manager's cmd/controller
// module (README.md). It accepts the flags cert-manager's chart passes by
// default.
package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	logsapi "k8s.io/component-base/logs/api/v1"

	"github.com/cert-manager/cert-manager/cmd/popconnect-e2e/internal/cmd"
	config "github.com/cert-manager/cert-manager/internal/apis/config/controller"
)

func main() {
	c := defaults()
	fs := pflag.NewFlagSet("controller", pflag.ContinueOnError)
	addFlags(fs, c)
	cmd.Main("controller", fs, &c.Logging, func(ctx context.Context, log logr.Logger) error {
		return run(ctx, log, c)
	})
}

// defaults are those of cert-manager's controller binary (its
// internal/apis/config/controller/v1alpha1 defaults), written out here:
// that package imports every controller, ACME's DNS providers included,
// for their names, which would link them all in.
func defaults() *config.ControllerConfiguration {
	c := &config.ControllerConfiguration{
		KubernetesAPIQPS:          20,
		KubernetesAPIBurst:        50,
		ClusterResourceNamespace:  "kube-system",
		HealthzListenAddress:      "0.0.0.0:9403",
		NumberOfConcurrentWorkers: 5,
		MaxConcurrentChallenges:   60,
		// All of a Certificate's annotations go onto its
		// CertificateRequests but those of kubectl, Flux and Argo CD.
		CopiedAnnotationPrefixes:                 []string{"*", "-kubectl.kubernetes.io/", "-fluxcd.io/", "-argocd.argoproj.io/"},
		CertificateRequestMinimumBackoffDuration: time.Hour,
		CertificateRequestMaximumBackoffDuration: 32 * time.Hour,
		Logging:                                  *logsapi.NewLoggingConfiguration(),
	}
	c.LeaderElectionConfig.Enabled = true
	c.LeaderElectionConfig.Namespace = "kube-system"
	c.LeaderElectionConfig.LeaseDuration = 60 * time.Second
	c.LeaderElectionConfig.RenewDeadline = 40 * time.Second
	c.LeaderElectionConfig.RetryPeriod = 15 * time.Second
	return c
}

// addFlags binds the flags cert-manager's chart may pass to the settings
// this build uses; the names are cert-manager's.
func addFlags(fs *pflag.FlagSet, c *config.ControllerConfiguration) {
	fs.StringVar(&c.ClusterResourceNamespace, "cluster-resource-namespace", c.ClusterResourceNamespace, "namespace of the Secrets that ClusterIssuers refer to")
	fs.StringVar(&c.Namespace, "namespace", c.Namespace, "watch only this namespace; empty: all")
	le := &c.LeaderElectionConfig.LeaderElectionConfig
	fs.BoolVar(&le.Enabled, "leader-elect", le.Enabled, "run the controllers only while holding the leader Lease")
	fs.StringVar(&le.Namespace, "leader-election-namespace", le.Namespace, "namespace of the leader Lease")
	fs.DurationVar(&le.LeaseDuration, "leader-election-lease-duration", le.LeaseDuration, "how long a leader's Lease lasts unrenewed")
	fs.DurationVar(&le.RenewDeadline, "leader-election-renew-deadline", le.RenewDeadline, "how long the leader tries to renew before it gives up")
	fs.DurationVar(&le.RetryPeriod, "leader-election-retry-period", le.RetryPeriod, "how often candidates try to take the Lease")
	fs.StringVar(&c.HealthzListenAddress, "internal-healthz-listen-address", c.HealthzListenAddress, "address of the /livez endpoint the chart's liveness probe calls")
	fs.IntVar(&c.NumberOfConcurrentWorkers, "concurrent-workers", c.NumberOfConcurrentWorkers, "workers per controller")
	fs.BoolVar(&c.EnableCertificateOwnerRef, "enable-certificate-owner-ref", c.EnableCertificateOwnerRef, "make Certificates own their Secrets")
	// The chart always passes these two, for ACME, which this build leaves
	// out (no ACME controllers, no DNS providers): accepted and unused.
	fs.StringVar(&c.ACMEHTTP01Config.SolverImage, "acme-http01-solver-image", c.ACMEHTTP01Config.SolverImage, "unused: this build has no ACME issuer")
	fs.IntVar(&c.MaxConcurrentChallenges, "max-concurrent-challenges", c.MaxConcurrentChallenges, "unused: this build has no ACME issuer")
	cmd.AddLoggingFlags(fs, &c.Logging)
}

func run(ctx context.Context, log logr.Logger, c *config.ControllerConfiguration) error {
	go serveLivez(ctx, log, c.HealthzListenAddress)
	le := c.LeaderElectionConfig.LeaderElectionConfig
	if !le.Enabled {
		return runControllers(ctx, log, c)
	}
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return fmt.Errorf("loading the in-cluster API server address and credentials: %w", err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("creating a Kubernetes client: %w", err)
	}
	id, err := os.Hostname()
	if err != nil {
		return err
	}
	lock := &resourcelock.LeaseLock{
		// The name the chart's Role lets the controller hold.
		LeaseMeta:  metav1.ObjectMeta{Namespace: le.Namespace, Name: "cert-manager-controller"},
		Client:     cs.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: id},
	}
	leading, cancel := context.WithCancel(ctx)
	defer cancel()
	var runErr error
	leaderelection.RunOrDie(leading, leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   le.LeaseDuration,
		RenewDeadline:   le.RenewDeadline,
		RetryPeriod:     le.RetryPeriod,
		ReleaseOnCancel: true,
		Name:            "cert-manager-controller",
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) {
				runErr = runControllers(ctx, log, c)
				cancel() // stop leading: release the Lease and return
			},
			OnStoppedLeading: func() {},
		},
	})
	switch {
	case runErr != nil:
		return runErr
	case ctx.Err() != nil: // SIGTERM
		return nil
	default:
		// Another replica may be running the controllers now: exit, as
		// cert-manager does, and let the kubelet start a new candidate.
		return fmt.Errorf("lost the leader Lease")
	}
}

// serveLivez answers the chart's liveness probe. The process exits when a
// controller fails, so being alive is being able to answer.
func serveLivez(ctx context.Context, log logr.Logger, addr string) {
	mux := http.NewServeMux()
	mux.HandleFunc("/livez", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		log.Error(err, "liveness endpoint stopped", "address", addr)
	}
}
