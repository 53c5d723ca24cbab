package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// build compiles a package of the repository into dir.
func build(ctx context.Context, root, pkg, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, pkg)
	cmd.Dir = root
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("building %s: %w", pkg, err)
	}
	return nil
}

// writeKubeconfig writes cfg (envtest's admin client certificate) as a
// kubeconfig file the manager and the gateway read.
func writeKubeconfig(cfg *rest.Config, path string) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{
		ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken,
	}
	kc.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "admin"}
	kc.CurrentContext = "envtest"
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		return fmt.Errorf("writing kubeconfig: %w", err)
	}
	return nil
}

// freeAddr returns a loopback address with a port that was free just now.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// proc is a child process (the manager or the gateway) whose output goes to
// a log file.
type proc struct {
	cmd  *exec.Cmd
	done chan error
	log  string
}

func startProc(bin string, args, env []string, logPath string) (*proc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("creating log: %w", err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting %s: %w", filepath.Base(bin), err)
	}
	p := &proc{cmd: cmd, done: make(chan error, 1), log: logPath}
	go func() {
		p.done <- cmd.Wait()
		f.Close()
	}()
	return p, nil
}

// stop sends SIGTERM, then SIGKILL after grace; it only signals its own child.
func (p *proc) stop(grace time.Duration) {
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// exited reports an early exit of the process, with the tail of its log.
func (p *proc) exited() error {
	select {
	case err := <-p.done:
		p.done <- err
		data, _ := os.ReadFile(p.log)
		if len(data) > 2000 {
			data = data[len(data)-2000:]
		}
		return fmt.Errorf("%s exited (%v): %s", filepath.Base(p.cmd.Path), err, data)
	default:
		return nil
	}
}

// memory reads the process's current and peak resident set (VmRSS, VmHWM),
// in bytes, from /proc.
func (p *proc) memory() (rss, hwm int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, 0, fmt.Errorf("reading process status: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(fields[1], 10, 64)
		switch fields[0] {
		case "VmRSS:":
			rss = kb << 10
		case "VmHWM:":
			hwm = kb << 10
		}
	}
	return rss, hwm, sc.Err()
}

// metrics is one scrape of a Prometheus endpoint.
type metrics map[string]*dto.MetricFamily

func scrape(ctx context.Context, url string) (metrics, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scraping %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scraping %s: %s", url, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mf, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("parsing metrics of %s: %w", url, err)
	}
	return metrics(mf), nil
}

// sum adds the values of a counter or gauge family (of a summary, its
// sample count) over the series whose labels pass keep (nil keeps all).
func (m metrics) sum(name string, keep func(labels map[string]string) bool) float64 {
	mf := m[name]
	if mf == nil {
		return 0
	}
	var total float64
	for _, s := range mf.Metric {
		labels := map[string]string{}
		for _, l := range s.Label {
			labels[l.GetName()] = l.GetValue()
		}
		if keep != nil && !keep(labels) {
			continue
		}
		switch {
		case s.Counter != nil:
			total += s.Counter.GetValue()
		case s.Gauge != nil:
			total += s.Gauge.GetValue()
		case s.Untyped != nil:
			total += s.Untyped.GetValue()
		case s.Summary != nil:
			total += float64(s.Summary.GetSampleCount())
		}
	}
	return total
}

// requestsByVerb sums rest_client_requests_total by HTTP method.
func (m metrics) requestsByVerb() map[string]float64 {
	out := map[string]float64{}
	mf := m["rest_client_requests_total"]
	if mf == nil {
		return out
	}
	for _, s := range mf.Metric {
		for _, l := range s.Label {
			if l.GetName() == "method" {
				out[l.GetValue()] += s.Counter.GetValue()
			}
		}
	}
	return out
}

// writes is the number of requests that are not reads.
func writes(byVerb map[string]float64) float64 {
	var n float64
	for verb, v := range byVerb {
		switch verb {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
		default:
			n += v
		}
	}
	return n
}

// manager is the operator running as a child process.
type manager struct {
	*proc
	metricsURL string
}

type managerOptions struct {
	bin, kubeconfig, logPath string
	concurrency              int
	qps                      float64
	burst                    int
	extraEnv                 []string
	// pprofAddr, when set, serves the manager's pprof endpoints there.
	pprofAddr string
}

func startManager(ctx context.Context, o managerOptions) (*manager, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	p, err := startProc(o.bin, []string{
		"--leader-elect=false",
		"--metrics-bind-address=" + addr,
		"--health-probe-bind-address=0",
		"--gateway-image=ghcr.io/popconnect/popconnect-gateway:bench",
		"--concurrency=" + strconv.Itoa(o.concurrency),
		"--kube-api-qps=" + strconv.FormatFloat(o.qps, 'f', -1, 64),
		"--kube-api-burst=" + strconv.Itoa(o.burst),
		"--pprof-bind-address=" + o.pprofAddr,
	}, append([]string{"KUBECONFIG=" + o.kubeconfig}, o.extraEnv...), o.logPath)
	if err != nil {
		return nil, err
	}
	m := &manager{proc: p, metricsURL: "http://" + addr + "/metrics"}
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := scrape(ctx, m.metricsURL); err == nil {
			return m, nil
		}
		if err := p.exited(); err != nil {
			return nil, err
		}
		if time.Now().After(deadline) {
			p.stop(5 * time.Second)
			return nil, errors.New("the manager's metrics endpoint did not come up within a minute")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// heapProfile writes the manager's heap profile to path, after the garbage
// collection that ?gc=1 forces, and returns its live heap then
// (go_memstats_heap_alloc_bytes scraped right after).
func heapProfile(ctx context.Context, pprofAddr, metricsURL, path string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+pprofAddr+"/debug/pprof/heap?gc=1", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("reading the manager's heap profile: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("reading the manager's heap profile: %s", resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return 0, fmt.Errorf("creating %s: %w", path, err)
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return 0, fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return 0, fmt.Errorf("writing %s: %w", path, err)
	}
	m, err := scrape(ctx, metricsURL)
	if err != nil {
		return 0, err
	}
	return m.sum("go_memstats_heap_alloc_bytes", nil), nil
}
