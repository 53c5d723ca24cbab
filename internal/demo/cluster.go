package demo

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/internal/cmrunner"
	"github.com/popconnect/popconnect/internal/popdb"
	"github.com/popconnect/popconnect/internal/testenv"
)

const (
	caName      = "popconnect-ca"
	clientCA    = "agency-client-ca"
	gatewayName = "national-gateway"
	simSeed     = 1
	simRecords  = 1_000_000
)

func (r *runner) startControlPlane(ctx context.Context) error {
	env, err := testenv.Start(testenv.Options{
		CRDDirectoryPaths: []string{"config/crd/bases"},
		CertManagerCRDs:   true,
		AddToScheme:       []func(*runtime.Scheme) error{popv1.AddToScheme},
	})
	if err != nil {
		return err
	}
	r.env = env
	if err := r.writeKubeconfig(); err != nil {
		return err
	}
	r.n.info("kube-apiserver at %s, up in %s", env.Config.Host, r.n.since())
	r.n.info("kubeconfig written to %s", r.rel(r.kubeconfigPath()))
	out, err := r.kubectl(ctx, true, "api-resources", "--categories=popconnect")
	if err != nil {
		return err
	}
	return r.n.expect(strings.Contains(out, "agencyconnections") && strings.Contains(out, "populationgateways") && strings.Contains(out, "fieldcatalogs"),
		"our three CRDs are served (fc, pgw, ac)")
}

func (r *runner) startCertManager(ctx context.Context) error {
	cm, err := cmrunner.Start(ctx, r.env.Config, cmrunner.Options{})
	if err != nil {
		return fmt.Errorf("starting cert-manager: %w", err)
	}
	r.cm = cm
	if err := cmrunner.BootstrapCA(ctx, r.env.Client, cmrunner.CA{Name: caName}); err != nil {
		return err
	}
	out, err := r.kubectl(ctx, true, "get", "clusterissuers")
	if err != nil {
		return err
	}
	return r.n.expect(strings.Contains(out, caName), "ClusterIssuer %s is Ready (%s)", caName, r.n.since())
}

func (r *runner) startManagerAndSim(ctx context.Context) error {
	env := []string{"KUBECONFIG=" + r.kubeconfigPath()}
	probe, err := freePort()
	if err != nil {
		return err
	}
	args := []string{
		"--leader-elect=false",
		"--metrics-bind-address=0",
		"--health-probe-bind-address=127.0.0.1:" + strconv.Itoa(probe),
		"--gateway-image=ghcr.io/popconnect/popconnect-gateway:demo",
	}
	r.n.cmd("KUBECONFIG=" + r.rel(r.kubeconfigPath()) + " bin/manager " + strings.Join(args, " "))
	if r.manager, err = startProc("manager", r.logDir(), filepath.Join(r.opts.BinDir, "manager"), env, args...); err != nil {
		return err
	}
	if err := waitHTTP(ctx, r.manager, fmt.Sprintf("http://127.0.0.1:%d/readyz", probe), r.opts.ReadyTimeout); err != nil {
		return err
	}
	if err := r.n.expect(true, "manager ready (pid %d, log %s)", r.manager.cmd.Process.Pid, r.rel(r.manager.log)); err != nil {
		return err
	}

	port, err := freePort()
	if err != nil {
		return err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	args = []string{"--listen-address=" + addr, "--seed=" + strconv.Itoa(simSeed), "--records=" + strconv.Itoa(simRecords)}
	r.n.cmd("bin/popdb-sim " + strings.Join(args, " "))
	if r.sim, err = startProc("popdb-sim", r.logDir(), filepath.Join(r.opts.BinDir, "popdb-sim"), nil, args...); err != nil {
		return err
	}
	r.simURL = "http://" + addr
	id, err := popdb.NationalID(0)
	if err != nil {
		return err
	}
	if err := waitHTTP(ctx, r.sim, r.simURL+"/v1/citizens/"+id, r.opts.ReadyTimeout); err != nil {
		return err
	}
	return r.n.expect(true, "popdb-sim serving %d synthetic citizens at %s", simRecords, r.simURL)
}

func (r *runner) applySamples(ctx context.Context) error {
	ns := r.opts.Namespace
	if _, err := r.kubectl(ctx, true, "create", "namespace", ns); err != nil {
		return err
	}
	// Agencies' certificates are issued by popconnect-ca, so the gateway
	// trusts that CA's certificate; a real cluster would copy it the same way
	// (or use trust-manager).
	var caSecret corev1.Secret
	if err := r.env.Client.Get(ctx, client.ObjectKey{Namespace: cmrunner.DefaultClusterResourceNamespace, Name: caName}, &caSecret); err != nil {
		return fmt.Errorf("reading the CA Secret: %w", err)
	}
	caFile := filepath.Join(r.gatewayDir(), "popconnect-ca.crt")
	if err := os.WriteFile(caFile, caSecret.Data["ca.crt"], 0o600); err != nil {
		return fmt.Errorf("writing CA certificate: %w", err)
	}
	if _, err := r.kubectl(ctx, true, "create", "secret", "generic", clientCA, "-n", ns, "--from-file=ca.crt="+r.rel(caFile)); err != nil {
		return err
	}
	if _, err := r.kubectl(ctx, true, "apply", "-k", "config/samples", "-n", ns); err != nil {
		return err
	}
	// The sample points at an in-cluster Service; here the database is a
	// local process, so the upstream URL follows it.
	patch := fmt.Sprintf(`{"spec":{"upstream":{"url":%q}}}`, r.simURL)
	if _, err := r.kubectl(ctx, true, "patch", "pgw", gatewayName, "-n", ns, "--type=merge", "-p", patch); err != nil {
		return err
	}
	var list popv1.AgencyConnectionList
	if err := r.env.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return fmt.Errorf("listing connections: %w", err)
	}
	return r.n.expect(len(list.Items) == 5, "5 AgencyConnections stored (got %d)", len(list.Items))
}
