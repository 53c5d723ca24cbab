// Command cainjector is cert-manager's CA injector: the reconcilers that copy
// a CA into webhook configurations, APIServices and CRD conversion settings
// are cert-manager's own (pkg/controller/cainjector), from the module
// version popconnect pins; this entry point and its flags are ours, because
// the Go module proxy does not serve cert-manager's cmd/cainjector module
// (README.md). It accepts the flags cert-manager's chart passes by default.
package main

import (
	"context"
	"fmt"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	logsapi "k8s.io/component-base/logs/api/v1"
	apiregv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/cert-manager/cert-manager/cmd/popconnect-e2e/internal/cmd"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/cert-manager/cert-manager/pkg/controller/cainjector"
	"github.com/cert-manager/cert-manager/pkg/util"
)

type options struct {
	namespace               string
	leaderElect             bool
	leaderElectionNamespace string
	metricsAddress          string
	certificatesDataSource  bool
}

func main() {
	var o options
	fs := pflag.NewFlagSet("cainjector", pflag.ContinueOnError)
	fs.StringVar(&o.namespace, "namespace", "", "inject only into objects of this namespace (cluster-scoped ones are always considered); empty: all")
	fs.BoolVar(&o.leaderElect, "leader-elect", true, "run only while holding the leader Lease")
	fs.StringVar(&o.leaderElectionNamespace, "leader-election-namespace", "kube-system", "namespace of the leader Lease")
	fs.StringVar(&o.metricsAddress, "metrics-listen-address", ":9402", "address of the Prometheus metrics endpoint; 0 turns it off")
	fs.BoolVar(&o.certificatesDataSource, "enable-certificates-data-source", true, "also inject from Certificates (cert-manager.io/inject-ca-from), not only from Secrets")
	logging := logsapi.NewLoggingConfiguration()
	cmd.AddLoggingFlags(fs, logging)
	cmd.Main("cainjector", fs, logging, func(ctx context.Context, log logr.Logger) error {
		return run(ctx, log, o)
	})
}

func run(ctx context.Context, log logr.Logger, o options) error {
	ctrl.SetLogger(log)
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, apiextv1.AddToScheme, apiregv1.AddToScheme, cmapi.AddToScheme} {
		if err := add(scheme); err != nil {
			return err
		}
	}
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("loading the API server's address and credentials: %w", err)
	}
	// The reconcilers name their server-side apply field manager after the
	// user agent ("cert-manager-cainjector"); without it the API server
	// refuses the apply that injects the CA.
	cfg = util.RestConfigWithUserAgent(cfg, "cainjector")
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme,
		Metrics:                 metricsserver.Options{BindAddress: o.metricsAddress},
		LeaderElection:          o.leaderElect,
		LeaderElectionNamespace: o.leaderElectionNamespace,
		// The name the chart's Role lets the cainjector hold.
		LeaderElectionID:              "cert-manager-cainjector-leader-election",
		LeaderElectionReleaseOnCancel: true,
		// The reconcilers watch Secrets' metadata only and read the few
		// they need straight from the API server: no cache of every
		// Secret's data in the cluster.
		Client: client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{&corev1.Secret{}}}},
		Cache:  cache.Options{DefaultNamespaces: namespaces(o.namespace)},
	})
	if err != nil {
		return fmt.Errorf("creating the controller manager: %w", err)
	}
	err = cainjector.RegisterAllInjectors(ctx, mgr, cainjector.SetupOptions{
		Namespace:                    o.namespace,
		EnableCertificatesDataSource: o.certificatesDataSource,
		EnabledReconcilersFor: map[string]bool{
			cainjector.MutatingWebhookConfigurationName:   true,
			cainjector.ValidatingWebhookConfigurationName: true,
			cainjector.APIServiceName:                     true,
			cainjector.CustomResourceDefinitionName:       true,
		},
	})
	if err != nil {
		return fmt.Errorf("registering the injectors: %w", err)
	}
	return mgr.Start(ctx)
}

// namespaces restricts the cache to one namespace when --namespace is set.
func namespaces(ns string) map[string]cache.Config {
	if ns == "" {
		return nil
	}
	return map[string]cache.Config{ns: {}}
}
