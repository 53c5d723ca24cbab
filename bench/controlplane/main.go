// Command controlplane benchmarks the operator on an envtest control plane
// (etcd + kube-apiserver, no kube-controller-manager, no cert-manager):
//
//   - the limit: a plain client creates the child objects the operator
//     would create for N connections (raw_s);
//   - convergence: the real manager, as a child process, brings N
//     AgencyConnections to Programmed=True (converge_s), with its peak RSS,
//     API requests per connection, and its writes when nothing changes;
//   - propagation: a gateway process in Kubernetes mode, hammered by one
//     agency, and how long a suspension, and a revocation of the agency's
//     certificate by serial number, take to be enforced there; and how long
//     a new connection takes to become usable.
//
// No cert-manager runs, so certificates are left unissued and connections
// reach Programmed=True but not Ready; their policy entries pin no
// certificate. Only for the agencies the propagation phase probes does the
// bench play cert-manager's part (issuance.go), recording the client
// certificate it presents so that the operator pins it; a new connection's
// time includes that simulated issuance. The last line of output is
//
//	n=... converge_s=... raw_s=... ratio=... rss_mib=... idle_writes=... suspend_p50_ms=... suspend_p99_ms=... revoke_p50_ms=... revoke_p99_ms=...
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/internal/testenv"
)

type options struct {
	n           int
	concurrency int
	qps         float64
	burst       int
	idle        time.Duration
	rounds      int
	newConns    int
	storm       bool
	skipRaw     bool
	workDir     string
	managerEnv  string
	pprofAddr   string
	heapProfile string
}

func parseFlags() options {
	var o options
	flag.IntVar(&o.n, "n", 10000, "how many AgencyConnections")
	flag.IntVar(&o.concurrency, "concurrency", 4, "the manager's --concurrency, and the raw client's workers")
	flag.Float64Var(&o.qps, "qps", 50, "the manager's --kube-api-qps, and the raw client's QPS")
	flag.IntVar(&o.burst, "burst", 100, "the manager's --kube-api-burst, and the raw client's burst")
	flag.DurationVar(&o.idle, "idle", 60*time.Second, "how long to count writes when nothing changes")
	flag.IntVar(&o.rounds, "rounds", 50, "suspend/unsuspend rounds, and as many revoke/unrevoke rounds, at the gateway")
	flag.IntVar(&o.newConns, "new-conns", 10, "new connections timed until usable at the gateway (their certificates issued by the bench in cert-manager's place)")
	flag.BoolVar(&o.storm, "storm", false,
		"start the manager before creating the connections and time from the first create (default: the connections exist, the manager starts)")
	flag.BoolVar(&o.skipRaw, "skip-raw", false, "skip the raw-create limit")
	flag.StringVar(&o.workDir, "work-dir", "", "where binaries, logs and certificates go (default: a temporary directory, removed)")
	flag.StringVar(&o.pprofAddr, "manager-pprof", "", "serve the manager's pprof endpoints on this address (e.g. 127.0.0.1:6060) to profile it during the run")
	flag.StringVar(&o.heapProfile, "heap-profile", "",
		"write the manager's heap profile (after a forced GC) to FILE-converged.pb.gz at convergence and FILE-end.pb.gz at the end, "+
			"and report its live heap; read with go tool pprof -top -sample_index=inuse_space (serves pprof on a free port unless -manager-pprof is set)")
	flag.StringVar(&o.managerEnv, "manager-env", "", "extra environment for the manager, comma-separated K=V (e.g. GOMEMLIMIT=120MiB)")
	flag.Parse()
	return o
}

func main() {
	// The tracker's cache logs through controller-runtime; errors only.
	log.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapcore.ErrorLevel)))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, parseFlags()); err != nil {
		fmt.Fprintln(os.Stderr, "bench-controlplane:", err)
		os.Exit(1)
	}
}

// result is everything the table and the last line report.
type result struct {
	n                      int
	mode                   string
	rawS                   float64
	rawObjects             int
	createS, convergeS     float64
	quietS                 float64
	requests               map[string]float64
	reconciles             map[string]float64
	reconcileMean          map[string]float64
	propReconcileMean      map[string]float64
	tailWrites, idleWrites float64
	rssHWM, rssNow, heap   float64
	liveConverged, liveEnd float64
	hwmAfterConverge       float64
	// cpuConverge and gcsConverge are the manager's CPU seconds and garbage
	// collections from its start to convergence (its own metrics).
	cpuConverge, gcsConverge float64
	prop                     *propagation
	propRequests, propError  int64
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func run(ctx context.Context, o options) error {
	root, err := testenv.RepoRoot()
	if err != nil {
		return err
	}
	dir := o.workDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "bench-controlplane-"); err != nil {
			return fmt.Errorf("creating work dir: %w", err)
		}
		defer os.RemoveAll(dir)
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating work dir: %w", err)
	}
	progress("building the manager and the gateway")
	managerBin, gatewayBin := filepath.Join(dir, "manager"), filepath.Join(dir, "gateway")
	if err := build(ctx, root, ".", managerBin); err != nil {
		return err
	}
	if err := build(ctx, root, "./cmd/gateway", gatewayBin); err != nil {
		return err
	}

	progress("starting the envtest control plane")
	env, err := testenv.Start(testenv.Options{
		CRDDirectoryPaths: []string{"config/crd/bases"},
		CertManagerCRDs:   true,
		AddToScheme:       []func(*kruntime.Scheme) error{popv1.AddToScheme},
	})
	if err != nil {
		return err
	}
	defer func() { _ = env.Stop() }()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := writeKubeconfig(env.Config, kubeconfig); err != nil {
		return err
	}
	// The bench's own client is not the thing measured: it is not throttled.
	fast := rest.CopyConfig(env.Config)
	fast.QPS, fast.Burst = 2000, 4000
	c, err := client.New(fast, client.Options{Scheme: env.Scheme})
	if err != nil {
		return fmt.Errorf("creating client: %w", err)
	}
	ca, err := newPKI()
	if err != nil {
		return err
	}
	const ns, rawNS = "bench", "bench-raw"
	catalog, gw, err := setupGateway(ctx, c, root, ns, ca.caPEM)
	if err != nil {
		return err
	}
	fields := catalogFields(catalog)
	res := &result{n: o.n, mode: "cold start (connections exist, manager starts)"}
	if o.storm {
		res.mode = "storm (manager runs, connections are created)"
	}

	if !o.skipRaw {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: rawNS}}); err != nil {
			return fmt.Errorf("creating namespace: %w", err)
		}
		rawCfg := rest.CopyConfig(env.Config)
		rawCfg.QPS, rawCfg.Burst = float32(o.qps), o.burst
		rc, err := client.New(rawCfg, client.Options{Scheme: env.Scheme})
		if err != nil {
			return fmt.Errorf("creating the raw client: %w", err)
		}
		progress("raw: creating the children of %d connections at qps=%g burst=%d workers=%d", o.n, o.qps, o.burst, o.concurrency)
		d, objects, err := rawCreate(ctx, rc, rawNS, o.n, o.concurrency, fields, gw)
		if err != nil {
			return err
		}
		res.rawS, res.rawObjects = d.Seconds(), objects
		progress("raw: %d objects in %.1fs", objects, res.rawS)
	}

	tracker, err := startTracker(ctx, env.Config, env.Scheme, ns)
	if err != nil {
		return err
	}
	if o.heapProfile != "" && o.pprofAddr == "" {
		if o.pprofAddr, err = freeAddr(); err != nil {
			return err
		}
	}
	mopts := managerOptions{
		bin: managerBin, kubeconfig: kubeconfig, logPath: filepath.Join(dir, "manager.log"),
		concurrency: o.concurrency, qps: o.qps, burst: o.burst, pprofAddr: o.pprofAddr,
	}
	if o.managerEnv != "" {
		mopts.extraEnv = strings.Split(o.managerEnv, ",")
	}
	var mgr *manager
	defer func() { mgr.stopIfRunning() }()
	var t0 time.Time
	createConns := func() error {
		progress("creating %d connections", o.n)
		start := time.Now()
		if err := createConnections(ctx, c, ns, 0, o.n, 8, fields); err != nil {
			return err
		}
		res.createS = time.Since(start).Seconds()
		return nil
	}
	if o.storm {
		if mgr, err = startManager(ctx, mopts); err != nil {
			return err
		}
		t0 = time.Now()
		if err := createConns(); err != nil {
			return err
		}
	} else {
		if err := createConns(); err != nil {
			return err
		}
		progress("starting the manager")
		t0 = time.Now()
		if mgr, err = startManager(ctx, mopts); err != nil {
			return err
		}
	}
	if err := waitConverged(ctx, mgr, tracker, o.n, t0); err != nil {
		return err
	}
	res.convergeS = time.Since(t0).Seconds()
	m, err := scrape(ctx, mgr.metricsURL)
	if err != nil {
		return err
	}
	res.requests = m.requestsByVerb()
	res.reconciles = reconcilesByController(m)
	res.reconcileMean = reconcileSeconds(m)
	res.cpuConverge, res.gcsConverge = m.sum("process_cpu_seconds_total", nil), m.sum("go_gc_duration_seconds", nil)
	_, hwm, err := mgr.memory()
	if err != nil {
		return err
	}
	res.hwmAfterConverge = float64(hwm)
	progress("converged in %.1fs; settling", res.convergeS)
	if o.heapProfile != "" {
		if res.liveConverged, err = heapProfile(ctx, o.pprofAddr, mgr.metricsURL, o.heapProfile+"-converged.pb.gz"); err != nil {
			return err
		}
	}

	var quietAt time.Time
	if res.tailWrites, res.idleWrites, quietAt, err = measureIdle(ctx, mgr, o.idle); err != nil {
		return err
	}
	res.quietS = quietAt.Sub(t0).Seconds()

	progress("propagation: starting a gateway in Kubernetes mode")
	before, err := scrape(ctx, mgr.metricsURL)
	if err != nil {
		return err
	}
	g, err := startGateway(ctx, gatewayBin, kubeconfig, dir, ns, ca)
	if err != nil {
		return err
	}
	res.prop, err = measurePropagation(ctx, c, g, ca, ns, o.rounds, o.newConns, o.n, fields)
	g.stop()
	if err != nil {
		return fmt.Errorf("propagation: %w (gateway log: %s)", err, g.log)
	}

	rss, hwm, err := mgr.memory()
	if err != nil {
		return err
	}
	res.rssNow, res.rssHWM = float64(rss), float64(hwm)
	if m, err = scrape(ctx, mgr.metricsURL); err == nil {
		res.heap = m.sum("go_memstats_heap_alloc_bytes", nil)
		res.propReconcileMean = reconcileMeanBetween(before, m)
	}
	if o.heapProfile != "" {
		if res.liveEnd, err = heapProfile(ctx, o.pprofAddr, mgr.metricsURL, o.heapProfile+"-end.pb.gz"); err != nil {
			return err
		}
	}
	mgr.stopIfRunning()
	mgr = nil
	report(os.Stdout, o, res)
	return nil
}

// waitConverged waits until n connections are programmed, reporting progress.
func waitConverged(ctx context.Context, mgr *manager, t *programmedTracker, n int, t0 time.Time) error {
	done := t.atLeast(n)
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			if err := mgr.exited(); err != nil {
				return err
			}
			rss, _, _ := mgr.memory()
			progress("  %6.0fs: %d/%d programmed, manager RSS %.0f MiB", time.Since(t0).Seconds(), t.Count(), n, float64(rss)/(1<<20))
		}
	}
}

// measureIdle waits until the manager's writes stop (its work queues drain
// after convergence: e.g. the gateway's status), then counts its writes
// during idle. It returns the writes while settling and while idle.
func measureIdle(ctx context.Context, mgr *manager, idle time.Duration) (tail, idleWrites float64, quietAt time.Time, err error) {
	quietAt = time.Now()
	m, err := scrape(ctx, mgr.metricsURL)
	if err != nil {
		return 0, 0, quietAt, err
	}
	first := writes(m.requestsByVerb())
	last, stable := first, 0
	deadline := time.Now().Add(2 * time.Minute)
	for stable < 5 && time.Now().Before(deadline) {
		time.Sleep(time.Second)
		if m, err = scrape(ctx, mgr.metricsURL); err != nil {
			return 0, 0, quietAt, err
		}
		w := writes(m.requestsByVerb())
		depth := m.sum("workqueue_depth", nil)
		if w == last && depth == 0 {
			stable++
		} else {
			stable, quietAt = 0, time.Now()
		}
		last = w
	}
	progress("idle: counting writes for %v", idle)
	select {
	case <-time.After(idle):
	case <-ctx.Done():
		return 0, 0, quietAt, ctx.Err()
	}
	if m, err = scrape(ctx, mgr.metricsURL); err != nil {
		return 0, 0, quietAt, err
	}
	return last - first, writes(m.requestsByVerb()) - last, quietAt, nil
}

// reconcileSeconds is the mean reconcile time by controller.
func reconcileSeconds(m metrics) map[string]float64 {
	return reconcileMeanBetween(nil, m)
}

// reconcileMeanBetween is the mean time of the reconciles that ran between
// two scrapes (since the start when before is nil), by controller.
func reconcileMeanBetween(before, after metrics) map[string]float64 {
	sums := func(m metrics) map[string][2]float64 {
		out := map[string][2]float64{}
		mf := m["controller_runtime_reconcile_time_seconds"]
		if mf == nil {
			return out
		}
		for _, s := range mf.Metric {
			h := s.GetHistogram()
			for _, l := range s.Label {
				if h != nil && l.GetName() == "controller" {
					out[l.GetValue()] = [2]float64{h.GetSampleSum(), float64(h.GetSampleCount())}
				}
			}
		}
		return out
	}
	b, a := sums(before), sums(after)
	out := map[string]float64{}
	for c, v := range a {
		if n := v[1] - b[c][1]; n > 0 {
			out[c] = (v[0] - b[c][0]) / n
		}
	}
	return out
}

func reconcilesByController(m metrics) map[string]float64 {
	out := map[string]float64{}
	mf := m["controller_runtime_reconcile_total"]
	if mf == nil {
		return out
	}
	for _, s := range mf.Metric {
		for _, l := range s.Label {
			if l.GetName() == "controller" {
				out[l.GetValue()] += s.Counter.GetValue()
			}
		}
	}
	return out
}

func (m *manager) stopIfRunning() {
	if m != nil {
		m.stop(30 * time.Second)
	}
}

func report(w *os.File, o options, r *result) {
	mib := func(b float64) float64 { return b / (1 << 20) }
	cpu := "unknown"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(line, "model name") {
				cpu = strings.TrimSpace(line[strings.Index(line, ":")+1:])
				break
			}
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "machine\t%d CPUs, %s, %s\n", runtime.NumCPU(), cpu, time.Now().UTC().Format("2006-01-02"))
	fmt.Fprintf(tw, "settings\tn=%d concurrency=%d qps=%g burst=%d\n", r.n, o.concurrency, o.qps, o.burst)
	fmt.Fprintf(tw, "mode\t%s\n", r.mode)
	fmt.Fprintf(tw, "raw create (limit)\t%.1f s for %d objects (%.0f/s)\n", r.rawS, r.rawObjects, float64(r.rawObjects)/max(r.rawS, 1e-9))
	fmt.Fprintf(tw, "connections created by the bench\t%.1f s\n", r.createS)
	fmt.Fprintf(tw, "converge (all Programmed=True)\t%.1f s, ratio %.2f\n", r.convergeS, ratio(r))
	var verbs []string
	var total float64
	for v, n := range r.requests {
		verbs = append(verbs, fmt.Sprintf("%s=%.0f", v, n))
		total += n
	}
	sort.Strings(verbs)
	fmt.Fprintf(tw, "manager API requests to convergence\t%.0f (%.2f per connection): %s\n", total, total/float64(r.n), strings.Join(verbs, " "))
	fmt.Fprintf(tw, "manager writes per connection\t%.2f\n", writes(r.requests)/float64(r.n))
	var recs []string
	for c, n := range r.reconciles {
		recs = append(recs, fmt.Sprintf("%s=%.0f", c, n))
	}
	sort.Strings(recs)
	fmt.Fprintf(tw, "reconciles to convergence\t%s\n", strings.Join(recs, " "))
	var means []string
	for c, v := range r.reconcileMean {
		means = append(means, fmt.Sprintf("%s=%.1fms", c, v*1000))
	}
	sort.Strings(means)
	fmt.Fprintf(tw, "mean reconcile time\t%s\n", strings.Join(means, " "))
	fmt.Fprintf(tw, "manager CPU to convergence\t%.1f s, %.0f garbage collections\n", r.cpuConverge, r.gcsConverge)
	fmt.Fprintf(tw, "writes settling after convergence\t%.0f (the manager's last write at %.1f s, within 1 s)\n", r.tailWrites, r.quietS)
	fmt.Fprintf(tw, "writes while idle\t%.0f in %v\n", r.idleWrites, o.idle)
	fmt.Fprintf(tw, "manager RSS\tpeak %.0f MiB (%.0f MiB at convergence), now %.0f MiB; Go heap %.0f MiB\n",
		mib(r.rssHWM), mib(r.hwmAfterConverge), mib(r.rssNow), mib(r.heap))
	if o.heapProfile != "" {
		fmt.Fprintf(tw, "manager live heap (after a forced GC)\t%.1f MiB at convergence, %.1f MiB at the end (profiles %s-{converged,end}.pb.gz)\n",
			mib(r.liveConverged), mib(r.liveEnd), o.heapProfile)
	}
	if p := r.prop; p != nil {
		fmt.Fprintf(tw, "suspension enforced at the gateway\tp50 %.0f ms, p99 %.0f ms, max %.0f ms (%d rounds)\n",
			percentile(p.suspend, 50), percentile(p.suspend, 99), percentile(p.suspend, 100), len(p.suspend))
		fmt.Fprintf(tw, "access restored at the gateway\tp50 %.0f ms, p99 %.0f ms\n", percentile(p.unsuspend, 50), percentile(p.unsuspend, 99))
		fmt.Fprintf(tw, "revocation (serial) enforced at the gateway\tp50 %.0f ms, p99 %.0f ms, max %.0f ms (%d rounds)\n",
			percentile(p.revoke, 50), percentile(p.revoke, 99), percentile(p.revoke, 100), len(p.revoke))
		fmt.Fprintf(tw, "revocation lifted, certificate pinned again\tp50 %.0f ms, p99 %.0f ms\n", percentile(p.unrevoke, 50), percentile(p.unrevoke, 99))
		renewal := "no"
		if p.renewalRequested {
			renewal = "yes (Issuing=True, ManuallyTriggered; no cert-manager issues it here, so the same certificate is pinned again when the revocation is lifted)"
		}
		fmt.Fprintf(tw, "revocation: operator asked cert-manager to renew\t%s\n", renewal)
		if len(p.newConn) > 0 {
			fmt.Fprintf(tw, "new connection usable at the gateway (incl. simulated issuance)\tp50 %.0f ms, max %.0f ms (%d)\n",
				percentile(p.newConn, 50), percentile(p.newConn, 100), len(p.newConn))
		}
		fmt.Fprintf(tw, "hammer requests (errors)\t%d (%d)%s\n", p.requests, p.errors, lastErr(p.lastErr))
		means = means[:0]
		for c, v := range r.propReconcileMean {
			means = append(means, fmt.Sprintf("%s=%.1fms", c, v*1000))
		}
		sort.Strings(means)
		fmt.Fprintf(tw, "mean reconcile time, propagation\t%s\n", strings.Join(means, " "))
	}
	_ = tw.Flush()
	var p50, p99, r50, r99 float64
	if r.prop != nil {
		p50, p99 = percentile(r.prop.suspend, 50), percentile(r.prop.suspend, 99)
		r50, r99 = percentile(r.prop.revoke, 50), percentile(r.prop.revoke, 99)
	}
	fmt.Fprintf(w, "n=%d converge_s=%.1f raw_s=%.1f ratio=%.2f rss_mib=%.0f idle_writes=%.0f suspend_p50_ms=%.0f suspend_p99_ms=%.0f revoke_p50_ms=%.0f revoke_p99_ms=%.0f\n",
		r.n, r.convergeS, r.rawS, ratio(r), mib(r.rssHWM), r.idleWrites, p50, p99, r50, r99)
}

func lastErr(s string) string {
	if s == "" {
		return ""
	}
	return "; last error: " + s
}

func ratio(r *result) float64 {
	if r.rawS == 0 {
		return 0
	}
	return r.convergeS / r.rawS
}
