// Package demo runs popconnect end to end on one machine: a local control
// plane (envtest), cert-manager's real controllers, the operator and the
// gateway as child processes, the population-database simulator, and
// agencies calling the gateway over mTLS. Every narrated outcome is checked,
// so the demo doubles as an end-to-end test (TestDemoScenario).
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/popconnect/popconnect/internal/testenv"
)

// Defaults of Options.
const (
	defaultNamespace    = "popconnect-demo"
	defaultReadyTimeout = 3 * time.Minute
	// defaultSuspendBound is the hard limit for a suspension to take
	// effect; the contract's target (2s) is reported alongside, so a slow
	// shared CI machine shows a warning rather than a flaky failure.
	defaultSuspendBound = 5 * time.Second
	suspendTarget       = 2 * time.Second
)

// Options configures Run. Only Out is required.
type Options struct {
	// Out receives the transcript.
	Out io.Writer
	// Keep leaves everything running after the scenario, prints how to use
	// it, and waits until ctx is cancelled (Ctrl-C) before tearing down.
	Keep bool
	// Color styles the transcript with ANSI codes; set it only when Out is
	// a terminal.
	Color bool
	// WorkDir holds the kubeconfig, certificates, audit file and child
	// logs. Default <repo>/.demo.
	WorkDir string
	// BinDir holds manager, gateway and popdb-sim. Default <repo>/bin.
	BinDir string
	// Kubectl is the kubectl binary. Default: kubectl from $PATH, else the
	// one next to the envtest binaries.
	Kubectl string
	// Namespace receives the samples. Default popconnect-demo.
	Namespace string
	// ReadyTimeout bounds each wait for objects to become ready. Default 3m.
	ReadyTimeout time.Duration
	// SuspendBound is how soon a suspension (or a deletion) must be
	// enforced. Default 5s.
	SuspendBound time.Duration

	// sensitive, when set, receives before teardown what must appear in no
	// log (TestDemoScenario's leak check).
	sensitive *sensitive
}

func (o Options) withDefaults(root string) (Options, error) {
	if o.Out == nil {
		return o, errors.New("demo: Options.Out is required")
	}
	if o.WorkDir == "" {
		o.WorkDir = filepath.Join(root, ".demo")
	}
	if o.BinDir == "" {
		o.BinDir = filepath.Join(root, "bin")
	}
	if o.Namespace == "" {
		o.Namespace = defaultNamespace
	}
	if o.ReadyTimeout <= 0 {
		o.ReadyTimeout = defaultReadyTimeout
	}
	if o.SuspendBound <= 0 {
		o.SuspendBound = defaultSuspendBound
	}
	var err error
	if o.WorkDir, err = filepath.Abs(o.WorkDir); err != nil {
		return o, fmt.Errorf("demo: work dir: %w", err)
	}
	if o.BinDir, err = filepath.Abs(o.BinDir); err != nil {
		return o, fmt.Errorf("demo: bin dir: %w", err)
	}
	for _, b := range []string{"manager", "gateway", "popdb-sim"} {
		if _, err := os.Stat(filepath.Join(o.BinDir, b)); err != nil {
			return o, fmt.Errorf("demo: %s not built (run `make build`): %w", b, err)
		}
	}
	if o.Kubectl == "" {
		if o.Kubectl, err = findKubectl(root); err != nil {
			return o, err
		}
	}
	return o, nil
}

// step is one numbered section of the demo.
type step struct {
	title string
	why   string
	run   func(context.Context) error
}

// Run runs the demo. It returns an error, after tearing everything down,
// when a step fails or does not behave as narrated.
func Run(ctx context.Context, opts Options) (err error) {
	start := time.Now()
	root, err := testenv.RepoRoot()
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if opts, err = opts.withDefaults(root); err != nil {
		return err
	}
	r := &runner{opts: opts, root: root, n: &narrator{out: opts.Out, color: opts.Color}}
	if err := r.prepareWorkDir(); err != nil {
		return err
	}
	fmt.Fprintf(opts.Out, "%s\n", r.n.style(styleBold, "popconnect demo: agencies, a gateway and an operator on a local control plane"))
	fmt.Fprintf(opts.Out, "work dir %s (kubeconfig, certificates, audit database, child logs)\n", opts.WorkDir)
	defer func() {
		if opts.sensitive != nil && r.env != nil {
			err = errors.Join(err, r.collectSensitive(opts.sensitive))
		}
		terr := r.teardown()
		if err != nil {
			fmt.Fprintf(opts.Out, "\n%s %v\n", r.n.style(styleRed+styleBold, "DEMO FAILED:"), err)
			fmt.Fprintf(opts.Out, "child logs are in %s\n", r.logDir())
		}
		fmt.Fprintf(opts.Out, "\ntotal time %s\n", time.Since(start).Round(100*time.Millisecond))
		err = errors.Join(err, terr)
	}()

	steps := r.steps()
	r.n.total = len(steps)
	for _, s := range steps {
		r.n.begin(s.title, s.why)
		if err := s.run(ctx); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("interrupted during %q: %w", s.title, ctx.Err())
			}
			return fmt.Errorf("step %d (%s): %w", r.n.section, s.title, err)
		}
	}
	fmt.Fprintf(opts.Out, "\n%s every narrated expectation held (%s)\n", r.n.style(styleGreen+styleBold, "DEMO OK:"), time.Since(start).Round(100*time.Millisecond))
	if opts.Keep {
		r.keep(ctx)
	}
	return nil
}

func (r *runner) steps() []step {
	return []step{
		{"Start a local control plane", "etcd + kube-apiserver (envtest) with popconnect's and cert-manager's CRDs; a kubeconfig for kubectl", r.startControlPlane},
		{"Run cert-manager and bootstrap a CA", "cert-manager's real controllers in-process; self-signed issuer -> CA certificate -> CA ClusterIssuer popconnect-ca", r.startCertManager},
		{"Run the operator and the population database", "bin/manager reconciles our CRDs from outside the cluster; bin/popdb-sim serves synthetic citizens", r.startManagerAndSim},
		{"Apply the samples", "a FieldCatalog, one PopulationGateway and five AgencyConnections, applied with kubectl like a platform team would", r.applySamples},
		{"Wait for the connections", "the operator checks each against the catalog, cert-manager issues its client certificate, its policy is written", r.waitConnections},
		{"An audit database", "PostgreSQL from Debian's package; its URL in a Secret, named by the PopulationGateway's spec.audit.postgres", r.startAuditDatabase},
		{"Run the gateway", "bin/gateway with the serving certificate, client CA and audit key taken from the Secrets the operator made, and the audit database's URL; policy watched via the API", r.startGateway},
		{"Data minimisation: a Ministry of Health lookup", "BYT reads a citizen record; only its allowed fields leave the gateway", r.lookupMinimised},
		{"Asking for a field not granted", "?fields= naming a field outside the agency's allow-list is refused and the error names it", r.fieldNotAllowed},
		{"An operation not granted", "Vietcombank may only Verify; a Lookup is refused", r.operationNotAllowed},
		{"Verify: one bit, no record", "Vietcombank checks what a customer declared and learns only match true/false", r.verify},
		{"Rate limiting", "Vietcombank's connection allows 30 requests/s with a burst of 30; 60 at once get 429 with Retry-After", r.rateLimit},
		{"Two replicas, one daily quota", "a Redis server named by the PopulationGateway's spec.rateLimitStore.redis; two more gateway processes run with the flags the operator gives its pods and count in it: VCB's daily quota, lowered to 10, holds across both, where replicas counting alone would each give the whole quota", r.sharedQuota},
		{"Instant revocation", "suspending the tax authority with kubectl cuts its access at once (contract: within 2s), no gateway restart; resuming restores it; deleting social security's connection cuts it as fast", r.suspendResume},
		{"Identity comes only from a verified certificate", "no client certificate, or one from a foreign CA claiming to be BYT, is refused", r.identity},
		{"A borrowed identity from the real CA", "a namespace editor gets cert-manager to issue BYT's URI from the shared ClusterIssuer; the gateway refuses it: BYT is pinned to its own connection's certificates", r.borrowedIdentity},
		{"The citizen's access history", "the citizen portal's own connection may ask who read a citizen: two agencies' reads show, the police's (one-year disclosure delay) does not; an agency's certificate gets 403", r.accessHistory},
		{"The audit trail", "one record per request, committed before the answer; the national ID appears only as a keyed hash; popconnect-audit proves nothing was changed", r.audit},
		{"What kubectl shows", "the objects and their conditions as tools like Argo CD read them", r.summary},
	}
}

// prepareWorkDir creates the work dir and clears the files a previous run
// left there (the audit log is appended to, so a stale one would mislead).
func (r *runner) prepareWorkDir() error {
	for _, d := range []string{r.opts.WorkDir, r.logDir(), r.gatewayDir(), r.agenciesDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("demo: creating %s: %w", d, err)
		}
	}
	for _, f := range []string{r.kubeconfigPath()} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("demo: clearing %s: %w", f, err)
		}
	}
	return nil
}

func (r *runner) logDir() string         { return filepath.Join(r.opts.WorkDir, "logs") }
func (r *runner) gatewayDir() string     { return filepath.Join(r.opts.WorkDir, "gateway") }
func (r *runner) agenciesDir() string    { return filepath.Join(r.opts.WorkDir, "agencies") }
func (r *runner) kubeconfigPath() string { return filepath.Join(r.opts.WorkDir, "kubeconfig") }

// rel shortens a path under the repository for the transcript.
func (r *runner) rel(path string) string {
	p, err := filepath.Rel(r.root, path)
	if err != nil || strings.HasPrefix(p, "..") {
		return path
	}
	return p
}
