package demo

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/popconnect/popconnect/internal/cmrunner"
	"github.com/popconnect/popconnect/internal/testenv"
	"github.com/popconnect/popconnect/internal/testpg"
)

// runner holds what one demo run started, so teardown can stop it all in
// reverse order whatever step failed.
type runner struct {
	opts Options
	root string
	n    *narrator

	env     *testenv.Env
	cm      *cmrunner.Runner
	manager *proc
	sim     *proc
	gateway *proc
	db      *testpg.Server
	dbDir   string // the database cluster's directory, removed at teardown
	// redis and replicas: the shared quota step's Redis server and the
	// two gateway processes counting in it.
	redis         *proc
	redisAddr     string
	redisPassword string
	replicas      []*replica

	simURL     string
	gwAddr     string // host:port agencies connect to
	metricsURL string
	auditKey   []byte
	agencies   map[string]*agency // by agency code
	// connNames maps agency codes to their AgencyConnection names.
	connNames map[string]string
	// responses counts HTTP responses the gateway gave, each of which must
	// have written one audit record.
	responses int
	// caseReference, when set, is sent as Popconnect-Case-Reference.
	caseReference string
	// shown are request ids of narrated requests, whose audit lines the
	// audit step prints.
	shown []shownRequest
	// ids are the national IDs the demo asked about, none of which may
	// appear in the audit log.
	ids []string
	// suspendTook and deleteTook are how long after the API server
	// accepted a suspension, and a deletion, the gateway refused the agency.
	suspendTook, deleteTook time.Duration
	// deleted are the agency codes whose connections the demo deleted.
	deleted []string
}

type shownRequest struct {
	requestID string
	what      string
}

func findKubectl(root string) (string, error) {
	if p, err := exec.LookPath("kubectl"); err == nil {
		return p, nil
	}
	// envtest's binary directory usually carries a kubectl too.
	dir, err := testenv.AssetsDir(root)
	if err != nil {
		return "", fmt.Errorf("demo: no kubectl in $PATH and %w", err)
	}
	p := filepath.Join(dir, "kubectl")
	if _, err := exec.LookPath(p); err != nil {
		return "", fmt.Errorf("demo: no kubectl in $PATH or %s", dir)
	}
	return p, nil
}

// kubectl runs kubectl against the demo's control plane, echoing the
// command and, when show is set, its output.
func (r *runner) kubectl(ctx context.Context, show bool, args ...string) (string, error) {
	r.n.cmd("kubectl " + quoteArgs(args))
	out, err := runCmd(ctx, r.root, []string{"KUBECONFIG=" + r.kubeconfigPath()}, r.opts.Kubectl, args...)
	if err != nil {
		return out, err
	}
	if show && strings.TrimSpace(out) != "" {
		r.n.block(out)
	}
	return out, nil
}

// quoteArgs renders args as a shell would need them, for the transcript.
func quoteArgs(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, " {}\"'*$") {
			a = "'" + a + "'"
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}

// writeKubeconfig saves the control plane's admin credentials for kubectl,
// the manager and the gateway, as a user's ~/.kube/config would be.
func (r *runner) writeKubeconfig() error {
	cfg := r.env.Config
	const name = "popconnect-demo"
	kc := clientcmdapi.NewConfig()
	kc.Clusters[name] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos[name] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData}
	kc.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name, Namespace: r.opts.Namespace}
	kc.CurrentContext = name
	if err := clientcmd.WriteToFile(*kc, r.kubeconfigPath()); err != nil {
		return fmt.Errorf("writing kubeconfig: %w", err)
	}
	return nil
}

// teardown stops everything this run started, newest first, and reports
// what failed to stop. It runs on every path out of Run.
func (r *runner) teardown() error {
	if r.env == nil {
		return nil
	}
	fmt.Fprintf(r.n.out, "\n%s\n", r.n.style(styleBold, "Tearing down"))
	// Idle keep-alive connections would hold the gateway's graceful
	// shutdown until --shutdown-grace.
	for _, a := range r.agencies {
		a.client.CloseIdleConnections()
	}
	var errs []error
	procs := make([]*proc, 0, len(r.replicas)+4)
	for _, rep := range r.replicas {
		procs = append(procs, rep.proc)
	}
	procs = append(procs, r.gateway, r.manager, r.sim, r.redis)
	for _, p := range procs {
		if p == nil {
			continue
		}
		t := time.Now()
		err := p.stop()
		errs = append(errs, err)
		r.n.info("stopped %-9s (%s)", p.name, time.Since(t).Round(time.Millisecond))
	}
	if r.cm != nil {
		errs = append(errs, r.cm.Stop())
		r.n.info("stopped cert-manager controllers")
	}
	errs = append(errs, r.env.Stop())
	r.n.info("stopped kube-apiserver and etcd")
	if r.db != nil {
		errs = append(errs, r.stopAuditDatabase())
		r.n.info("stopped PostgreSQL (its log kept in %s)", r.rel(filepath.Join(r.logDir(), "postgres.log")))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("teardown: %w", err)
	}
	return nil
}

// keep leaves the demo running for exploration until ctx is cancelled.
func (r *runner) keep(ctx context.Context) {
	kc := r.kubeconfigPath()
	ns := r.opts.Namespace
	host, port, _ := strings.Cut(r.gwAddr, ":")
	id := r.ids[0]
	curl := fmt.Sprintf("curl -sS --cert $D/tls.crt --key $D/tls.key --cacert $D/ca.crt --resolve %s:%s:%s", servingName, port, host)
	fmt.Fprintf(r.n.out, "\n%s\n", r.n.style(styleBold, "Everything is still running (KEEP=1). Try:"))
	lines := []string{
		"export KUBECONFIG=" + kc,
		"kubectl get popconnect -n " + ns,
		"kubectl get ac -n " + ns + " -o wide",
		"kubectl patch ac tax-authority -n " + ns + " --type=merge -p '{\"spec\":{\"suspended\":true}}'",
		"D=" + filepath.Join(r.agenciesDir(), "BYT") + "   # also VCB, TCT",
		fmt.Sprintf("%s https://%s:%s/v1/citizens/%s", curl, servingName, port, id),
		fmt.Sprintf("%s 'https://%s:%s/v1/citizens/%s?fields=fullName,religion'", curl, servingName, port, id),
		"curl " + r.metricsURL + "/metrics",
		"bin/popconnect-audit verify --postgres-url-file " + r.auditDBURLPath() + " --key-file " + filepath.Join(r.gatewayDir(), "audit.key"),
		"ls " + r.logDir() + "   # manager, gateway and popdb-sim logs",
	}
	for _, l := range lines {
		r.n.cmd(l)
	}
	fmt.Fprintf(r.n.out, "\nPress Ctrl-C to tear everything down.\n")
	<-ctx.Done()
}
