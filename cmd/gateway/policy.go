package main

import (
	"context"
	"fmt"
	"os"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/popconnect/popconnect/gateway/loader"
)

// startPolicy loads the policy once and keeps it current. In file mode a
// bad file at start is fatal (there is no last good policy to keep); in
// Kubernetes mode the gateway starts unready and becomes ready when the
// shards are first read.
func (s *server) startPolicy(ctx context.Context) error {
	if s.opts.policyFile != "" {
		f := loader.NewFile(s.opts.policyFile, s.target, s.log)
		if err := f.Load(); err != nil {
			return err
		}
		return f.Watch(ctx)
	}
	cfg, err := kubeConfig(s.opts.kubeconfig)
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("creating Kubernetes client: %w", err)
	}
	k, err := loader.NewKube(client, s.opts.policyNamespace, s.opts.policySelector, s.target, s.log)
	if err != nil {
		return err
	}
	synced := make(chan struct{})
	go func() {
		if err := k.Run(ctx, synced); err != nil {
			s.log.Error("policy shard watch stopped", "error", err)
		}
	}()
	return nil
}

// kubeConfig uses --kubeconfig, then $KUBECONFIG, then the in-cluster
// service account.
func kubeConfig(path string) (*rest.Config, error) {
	if path == "" && os.Getenv(clientcmd.RecommendedConfigPathEnvVar) == "" {
		cfg, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("no --kubeconfig or $KUBECONFIG, and not in a cluster: %w", err)
		}
		return cfg, nil
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = path
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("loading kubeconfig: %w", err)
	}
	return cfg, nil
}
