// Command manager runs the popconnect operator: it reconciles FieldCatalogs,
// PopulationGateways and AgencyConnections into gateways, certificates,
// NetworkPolicies and policy shards.
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/KimMachineGun/automemlimit/memlimit"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/controllers"
	"github.com/popconnect/popconnect/internal/render"
)

// options are the manager's command-line flags.
type options struct {
	metricsAddr      string
	probeAddr        string
	leaderElect      bool
	leaderElectionNS string
	gatewayImage     string
	enableHTTP2      bool
	concurrency      int
	pprofAddr        string
	qps              float64
	burst            int
	certGrace        time.Duration
	managerNS        string
	managerPodLabels string
	zap              zap.Options
}

// inClusterNamespaceFile holds the namespace of the pod whose ServiceAccount
// token is mounted: the manager's own.
const inClusterNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// defaultManagerPodLabels are the labels the manager's pods carry both in
// config/default and in the chart with its default values.
const defaultManagerPodLabels = "app.kubernetes.io/name=popconnect,app.kubernetes.io/component=manager"

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "manager: %v\n", err)
		os.Exit(1)
	}
}

func parseFlags() options {
	var o options
	flag.StringVar(&o.metricsAddr, "metrics-bind-address", ":8080",
		"The address the metrics endpoint binds to; 0 turns metrics off.")
	flag.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081",
		"The address the /healthz and /readyz probes bind to.")
	flag.BoolVar(&o.leaderElect, "leader-elect", true,
		"Elect a leader so that only one manager writes at a time.")
	flag.StringVar(&o.leaderElectionNS, "leader-election-namespace", "",
		"The namespace of the leader-election Lease; the manager's own when empty (required outside a cluster).")
	flag.StringVar(&o.gatewayImage, "gateway-image", "ghcr.io/popconnect/popconnect-gateway:latest",
		"The gateway image PopulationGateways use when spec.image is empty.")
	flag.BoolVar(&o.enableHTTP2, "enable-http2", false,
		"Serve metrics over HTTP/2 as well (off: avoids the HTTP/2 rapid-reset class of attacks).")
	flag.StringVar(&o.pprofAddr, "pprof-bind-address", "",
		"The address of Go's pprof endpoints (e.g. 127.0.0.1:6060); empty turns them off.")
	flag.IntVar(&o.concurrency, "concurrency", 4,
		"How many objects of each kind are reconciled at once.")
	flag.Float64Var(&o.qps, "kube-api-qps", 50, "The manager's sustained request rate to the API server.")
	flag.IntVar(&o.burst, "kube-api-burst", 100, "The manager's request burst to the API server.")
	flag.DurationVar(&o.certGrace, "certificate-grace-period", controllers.DefaultCertificateGrace,
		"How long gateways keep accepting an agency's previous client certificate after cert-manager renews it "+
			"(its clients must load the new one first); a revoked certificate is refused at once regardless.")
	flag.StringVar(&o.managerNS, "manager-namespace", "",
		"The manager's own namespace, whose manager pods gateways' NetworkPolicies let reach the gateway pods' "+
			"metrics port (GET /auditz, for AuditReady); read from the pod's ServiceAccount mount when empty. "+
			"Outside a cluster, where it is unknown, nothing is let in and AuditReady stays Unknown.")
	flag.StringVar(&o.managerPodLabels, "manager-pod-labels", defaultManagerPodLabels,
		"The labels of the manager's pods (k=v,k=v), with --manager-namespace; set it when the pods' labels "+
			"differ (e.g. the chart's nameOverride).")
	o.zap = zap.Options{Development: false}
	o.zap.BindFlags(flag.CommandLine)
	flag.Parse()
	return o
}

func newScheme() (*runtime.Scheme, error) {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, cmapi.AddToScheme, popv1.AddToScheme} {
		if err := add(scheme); err != nil {
			return nil, err
		}
	}
	return scheme, nil
}

func run() error {
	o := parseFlags()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&o.zap)))
	log := ctrl.Log.WithName("setup")
	// A soft memory limit at 90% of the container's (cgroup) limit: the
	// garbage collector then works harder as the heap nears the limit
	// instead of letting it double past the live set and the pod be
	// OOM-killed. GOMEMLIMIT in the environment takes precedence;
	// AUTOMEMLIMIT=off disables it.
	if _, err := memlimit.Set(memlimit.WithRatio(0.9), memlimit.WithProvider(memlimit.FromCgroup),
		memlimit.WithLogger(slog.New(logr.ToSlogHandler(ctrl.Log.WithName("memlimit"))))); err != nil {
		log.Info("No soft memory limit from the cgroup; the Go default applies", "reason", err.Error())
	}

	scheme, err := newScheme()
	if err != nil {
		return fmt.Errorf("building scheme: %w", err)
	}
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("loading kubeconfig: %w", err)
	}
	cfg.QPS, cfg.Burst = float32(o.qps), o.burst
	var tlsOpts []func(*tls.Config)
	if !o.enableHTTP2 {
		tlsOpts = append(tlsOpts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}
	leaderNS := o.leaderElectionNS
	if leaderNS == "" && o.leaderElect && os.Getenv("KUBERNETES_SERVICE_HOST") == "" {
		leaderNS = "default"
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme,
		Cache:                   controllers.CacheOptions(),
		Metrics:                 metricsserver.Options{BindAddress: o.metricsAddr, TLSOpts: tlsOpts},
		HealthProbeBindAddress:  o.probeAddr,
		PprofBindAddress:        o.pprofAddr,
		LeaderElection:          o.leaderElect,
		LeaderElectionID:        "manager.popconnect.io",
		LeaderElectionNamespace: leaderNS,
		// Step down at once on SIGTERM so the next manager takes over fast.
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		return fmt.Errorf("creating manager: %w", err)
	}
	managerPeer, err := managerPeer(o)
	if err != nil {
		return err
	}
	if managerPeer.Namespace == "" {
		log.Info("The manager's namespace is unknown: gateways' NetworkPolicies let nothing reach their pods' " +
			"metrics port, and AuditReady stays Unknown")
	}
	ctx := ctrl.SetupSignalHandler()
	if err := controllers.SetupWithManager(ctx, mgr, controllers.Options{
		GatewayImage:            o.gatewayImage,
		MaxConcurrentReconciles: o.concurrency,
		CertificateGrace:        o.certGrace,
		Manager:                 managerPeer,
	}); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return fmt.Errorf("adding health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return fmt.Errorf("adding ready check: %w", err)
	}
	log.Info("Starting manager", "gatewayImage", o.gatewayImage, "leaderElect", o.leaderElect)
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("running manager: %w", err)
	}
	return nil
}

// managerPeer is where the manager's pods are: --manager-namespace, or the
// namespace of the pod's ServiceAccount mount, and --manager-pod-labels.
func managerPeer(o options) (render.ManagerPeer, error) {
	ns := o.managerNS
	if ns == "" {
		if data, err := os.ReadFile(inClusterNamespaceFile); err == nil {
			ns = strings.TrimSpace(string(data))
		}
	}
	if errs := validation.IsDNS1123Label(ns); ns != "" && len(errs) > 0 {
		return render.ManagerPeer{}, fmt.Errorf("--manager-namespace %q: %s", ns, strings.Join(errs, "; "))
	}
	podLabels, err := labels.ConvertSelectorToLabelsMap(o.managerPodLabels)
	if err != nil {
		return render.ManagerPeer{}, fmt.Errorf("--manager-pod-labels: %w", err)
	}
	return render.ManagerPeer{Namespace: ns, PodLabels: podLabels}, nil
}
