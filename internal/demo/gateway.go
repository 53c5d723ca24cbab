package demo

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// servingName is a DNS name of the sample gateway's serving certificate;
// clients verify the gateway under it while connecting to 127.0.0.1.
const servingName = "gateway.popconnect.example"

// secretFiles writes chosen keys of a Secret to files in dir, as a kubelet
// would mount them, and returns the paths by key.
func (r *runner) secretFiles(ctx context.Context, name, dir string, keys map[string]string) (map[string]string, error) {
	var s corev1.Secret
	if err := r.env.Client.Get(ctx, client.ObjectKey{Namespace: r.opts.Namespace, Name: name}, &s); err != nil {
		return nil, fmt.Errorf("reading Secret %s: %w", name, err)
	}
	paths := map[string]string{}
	for key, file := range keys {
		data, ok := s.Data[key]
		if !ok || len(data) == 0 {
			return nil, fmt.Errorf("Secret %s has no %s", name, key)
		}
		p := filepath.Join(dir, file)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			return nil, fmt.Errorf("writing %s: %w", p, err)
		}
		paths[key] = p
	}
	return paths, nil
}

func (r *runner) startGateway(ctx context.Context) error {
	ns := r.opts.Namespace
	selector := "popconnect.io/gateway=" + gatewayName
	out, err := r.kubectl(ctx, true, "get", "configmaps", "-n", ns, "-l", selector)
	if err != nil {
		return err
	}
	if err := r.n.expect(strings.Contains(out, gatewayName), "the operator wrote the gateway's policy shards"); err != nil {
		return err
	}
	dir := r.gatewayDir()
	serving, err := r.secretFiles(ctx, gatewayName+"-serving-tls", dir, map[string]string{"tls.crt": "tls.crt", "tls.key": "tls.key"})
	if err != nil {
		return err
	}
	ca, err := r.secretFiles(ctx, clientCA, dir, map[string]string{"ca.crt": "client-ca.crt"})
	if err != nil {
		return err
	}
	key, err := r.secretFiles(ctx, gatewayName+"-audit-key", dir, map[string]string{"key": "audit.key"})
	if err != nil {
		return err
	}
	if r.auditKey, err = os.ReadFile(key["key"]); err != nil {
		return fmt.Errorf("reading audit key: %w", err)
	}
	dbURL, err := r.auditDBURLFile(ctx)
	if err != nil {
		return err
	}
	r.n.info("Secrets %s-serving-tls, %s, %s-audit-key and %s written to %s, as the gateway pod mounts them", gatewayName, clientCA, gatewayName, auditDBSecret, r.rel(dir))

	port, err := freePort()
	if err != nil {
		return err
	}
	mport, err := freePort()
	if err != nil {
		return err
	}
	r.gwAddr = "127.0.0.1:" + strconv.Itoa(port)
	r.metricsURL = "http://127.0.0.1:" + strconv.Itoa(mport)
	args := []string{
		"--kubeconfig=" + r.kubeconfigPath(),
		"--policy-namespace=" + ns,
		"--policy-selector=" + selector,
		"--upstream-url=" + r.simURL,
		"--listen-address=" + r.gwAddr,
		"--metrics-address=127.0.0.1:" + strconv.Itoa(mport),
		"--tls-cert-file=" + serving["tls.crt"],
		"--tls-key-file=" + serving["tls.key"],
		"--client-ca-file=" + ca["ca.crt"],
		"--audit-postgres-url-file=" + dbURL,
		"--audit-hash-key-file=" + key["key"],
		// Short, so teardown does not wait on idle keep-alive connections.
		"--shutdown-grace=2s",
	}
	shown := make([]string, len(args))
	for i, a := range args {
		shown[i] = r.relFlag(a)
	}
	r.n.cmd("bin/gateway \\\n        " + strings.Join(shown, " \\\n        "))
	if r.gateway, err = startProc("gateway", r.logDir(), filepath.Join(r.opts.BinDir, "gateway"), nil, args...); err != nil {
		return err
	}
	if err := waitHTTP(ctx, r.gateway, r.metricsURL+"/readyz", r.opts.ReadyTimeout); err != nil {
		return err
	}
	if err := r.n.expect(true, "gateway /readyz OK: policy loaded from the shards, serving agencies on %s (TLS 1.3, client certificates required)", r.gwAddr); err != nil {
		return err
	}
	return r.loadAgencies(ctx)
}

// relFlag shortens the path in a --flag=path for the transcript.
func (r *runner) relFlag(arg string) string {
	name, val, ok := strings.Cut(arg, "=")
	if !ok || !filepath.IsAbs(val) {
		return arg
	}
	return name + "=" + r.rel(val)
}
