package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/internal/popdb"
	"github.com/popconnect/popconnect/internal/render"
)

// gatewayProc is a bin/gateway process in Kubernetes mode, reading the
// shards the manager writes, in front of an in-process popdb simulator.
type gatewayProc struct {
	*proc
	url        string
	upstream   *http.Server
	metricsURL string
}

func startGateway(ctx context.Context, bin, kubeconfig, dir, ns string, ca *pki) (*gatewayProc, error) {
	gen, err := popdb.NewGenerator(1, 1_000_000)
	if err != nil {
		return nil, fmt.Errorf("creating the popdb generator: %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listening for the upstream: %w", err)
	}
	upstream := &http.Server{Handler: popdb.Handler(gen), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = upstream.Serve(l) }()

	certPEM, keyPEM, err := ca.issue(true, "")
	if err != nil {
		return nil, err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("generating the audit key: %w", err)
	}
	files := map[string][]byte{"tls.crt": certPEM, "tls.key": keyPEM, "ca.crt": ca.caPEM, "audit.key": key}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return nil, fmt.Errorf("writing %s: %w", name, err)
		}
	}
	listen, err := freeAddr()
	if err != nil {
		return nil, err
	}
	metricsAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	p, err := startProc(bin, []string{
		"--kubeconfig=" + kubeconfig,
		"--policy-namespace=" + ns,
		"--policy-selector=" + render.LabelGateway + "=" + render.GatewayLabelValue(gatewayName),
		"--upstream-url=http://" + l.Addr().String(),
		"--listen-address=" + listen,
		"--metrics-address=" + metricsAddr,
		"--tls-cert-file=" + filepath.Join(dir, "tls.crt"),
		"--tls-key-file=" + filepath.Join(dir, "tls.key"),
		"--client-ca-file=" + filepath.Join(dir, "ca.crt"),
		"--audit-hash-key-file=" + filepath.Join(dir, "audit.key"),
		"--audit-file=" + filepath.Join(dir, "audit.log"),
	}, nil, filepath.Join(dir, "gateway.log"))
	if err != nil {
		_ = upstream.Close()
		return nil, err
	}
	g := &gatewayProc{proc: p, url: "https://" + listen, upstream: upstream, metricsURL: "http://" + metricsAddr + "/metrics"}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := http.Get("http://" + metricsAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return g, nil
			}
		}
		if err := p.exited(); err != nil {
			_ = upstream.Close()
			return nil, err
		}
		if time.Now().After(deadline) {
			g.stop()
			return nil, errors.New("the gateway did not become ready within 2 minutes")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (g *gatewayProc) stop() {
	g.proc.stop(30 * time.Second)
	_ = g.upstream.Close()
}

// outcome classifies one gateway answer.
type outcome int

const (
	outAllowed outcome = iota
	outSuspended
	outUnknown
	outNotPinned
	outOther
)

// agencyClient looks one citizen up, as one agency, over and over.
type agencyClient struct {
	http *http.Client
	url  string
}

func newAgencyClient(cc *clientCert, gatewayURL string) (*agencyClient, error) {
	id, err := popdb.NationalID(4242)
	if err != nil {
		return nil, fmt.Errorf("picking a citizen: %w", err)
	}
	tr := &http.Transport{TLSClientConfig: cc.tls.Clone(), MaxIdleConnsPerHost: 16, ForceAttemptHTTP2: false,
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}
	return &agencyClient{http: &http.Client{Transport: tr, Timeout: 10 * time.Second},
		url: gatewayURL + "/v1/citizens/" + id}, nil
}

func (a *agencyClient) do(ctx context.Context) (outcome, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.url, nil)
	if err != nil {
		return outOther, err
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return outOther, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return outOther, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return outAllowed, nil
	case http.StatusForbidden:
		var e struct {
			Error string `json:"error"`
			Code  string `json:"code"`
		}
		_ = json.Unmarshal(body, &e)
		switch {
		case e.Code == "agency_suspended" || e.Error == "agency_suspended":
			return outSuspended, nil
		case e.Code == "agency_unknown" || e.Error == "agency_unknown":
			return outUnknown, nil
		case e.Code == "certificate_not_pinned" || e.Error == "certificate_not_pinned":
			return outNotPinned, nil
		}
	}
	return outOther, fmt.Errorf("unexpected answer %d: %.200s", resp.StatusCode, body)
}

// hammer runs workers goroutines of back-to-back requests and reports, to
// whoever waits, the first answer of the wanted kind received after a moment.
type hammer struct {
	mu       sync.Mutex
	since    time.Time
	want     outcome
	hit      chan time.Time
	requests atomic.Int64
	errors   atomic.Int64
	lastErr  atomic.Value
}

func (h *hammer) run(ctx context.Context, c *agencyClient, workers int) *sync.WaitGroup {
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				out, err := c.do(ctx)
				recv := time.Now()
				if ctx.Err() != nil {
					return
				}
				h.requests.Add(1)
				if err != nil {
					h.errors.Add(1)
					h.lastErr.Store(err.Error())
					time.Sleep(10 * time.Millisecond)
					continue
				}
				h.mu.Lock()
				if h.hit != nil && out == h.want && recv.After(h.since) {
					h.hit <- recv
					h.hit = nil
				}
				h.mu.Unlock()
			}
		})
	}
	return &wg
}

// expect arms the hammer: the returned channel gets the receive time of the
// first answer of kind want after since.
func (h *hammer) expect(want outcome, since time.Time) <-chan time.Time {
	ch := make(chan time.Time, 1)
	h.mu.Lock()
	h.want, h.since, h.hit = want, since, ch
	h.mu.Unlock()
	return ch
}

// propagation holds the measured delays, in milliseconds.
type propagation struct {
	suspend, unsuspend, newConn []float64
	revoke, unrevoke            []float64
	requests, errors            int64
	lastErr                     string
	// renewalRequested: the operator asked cert-manager for a new
	// certificate when the current one was revoked.
	renewalRequested bool
}

func setSuspended(ctx context.Context, c client.Client, key types.NamespacedName, suspended bool) error {
	patch := fmt.Appendf(nil, `{"spec":{"suspended":%t}}`, suspended)
	conn := &popv1.AgencyConnection{}
	conn.Namespace, conn.Name = key.Namespace, key.Name
	if err := c.Patch(ctx, conn, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return fmt.Errorf("patching %s suspended=%t: %w", key, suspended, err)
	}
	return nil
}

// measurePropagation suspends and restores agency 0 rounds times while a
// client hammers the gateway as that agency, and times how long each change
// takes to be enforced; then as many times revokes agency 0's certificate by
// its serial and lifts the revocation; then it creates newConns connections
// and times how long each takes to become usable. The bench issues the
// probed agencies' certificates in cert-manager's place (issueAsCertManager),
// so that the operator pins them; a new connection's time includes that
// simulated issuance.
func measurePropagation(ctx context.Context, c client.Client, g *gatewayProc, ca *pki, ns string, rounds, newConns, nextIndex int, fields []popv1.FieldPath) (*propagation, error) {
	const timeout = 30 * time.Second
	key := types.NamespacedName{Namespace: ns, Name: connectionName(0)}
	cc, err := ca.issueClient(agencyCode(0))
	if err != nil {
		return nil, err
	}
	conn0 := &popv1.AgencyConnection{}
	if err := c.Get(ctx, key, conn0); err != nil {
		return nil, fmt.Errorf("reading %s: %w", key, err)
	}
	if err := issueAsCertManager(ctx, c, conn0, cc, timeout); err != nil {
		return nil, err
	}
	serial, err := currentSerial(ctx, c, key, cc, timeout)
	if err != nil {
		return nil, err
	}
	ac, err := newAgencyClient(cc, g.url)
	if err != nil {
		return nil, err
	}
	hctx, stop := context.WithCancel(ctx)
	h := &hammer{}
	wg := h.run(hctx, ac, 2)
	defer func() { stop(); wg.Wait() }()

	res := &propagation{}
	wait := func(ch <-chan time.Time, what string) (time.Time, error) {
		select {
		case t := <-ch:
			return t, nil
		case <-time.After(timeout):
			return time.Time{}, fmt.Errorf("%s not seen at the gateway within %v (last error: %v)", what, timeout, h.lastErr.Load())
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		}
	}
	// change applies a change and returns how long until the gateway's
	// answer is of kind want.
	change := func(want outcome, what string, apply func() error) (float64, error) {
		t0 := time.Now()
		ch := h.expect(want, t0)
		if err := apply(); err != nil {
			return 0, err
		}
		t, err := wait(ch, what)
		if err != nil {
			return 0, err
		}
		return ms(t.Sub(t0)), nil
	}
	if _, err := wait(h.expect(outAllowed, time.Now()), "agency 0 allowed"); err != nil {
		return nil, err
	}
	for range rounds {
		d, err := change(outSuspended, "suspension", func() error { return setSuspended(ctx, c, key, true) })
		if err != nil {
			return nil, err
		}
		res.suspend = append(res.suspend, d)
		if d, err = change(outAllowed, "restored access", func() error { return setSuspended(ctx, c, key, false) }); err != nil {
			return nil, err
		}
		res.unsuspend = append(res.unsuspend, d)
	}
	// Revoking the current certificate also has the operator ask
	// cert-manager for a new one (the Issuing condition); nobody issues it
	// here, so lifting the revocation pins the same certificate again.
	for range rounds {
		d, err := change(outNotPinned, "revocation", func() error { return setRevoked(ctx, c, key, serial) })
		if err != nil {
			return nil, err
		}
		res.revoke = append(res.revoke, d)
		if len(res.revoke) == 1 {
			if res.renewalRequested, err = renewalRequested(ctx, c, conn0, 10*time.Second); err != nil {
				return nil, err
			}
		}
		if d, err = change(outAllowed, "revocation lifted", func() error { return setRevoked(ctx, c, key, "") }); err != nil {
			return nil, err
		}
		res.unrevoke = append(res.unrevoke, d)
	}
	res.requests, res.errors = h.requests.Load(), h.errors.Load()
	if s, ok := h.lastErr.Load().(string); ok {
		res.lastErr = s
	}

	for j := range newConns {
		d, err := newConnection(ctx, c, g, ca, ns, nextIndex+j, fields, timeout)
		if err != nil {
			return nil, err
		}
		res.newConn = append(res.newConn, d)
	}
	return res, nil
}

// newConnection creates the i-th connection, issues its certificate as
// cert-manager would once the operator has requested it, and returns how
// long from the create until the gateway lets the agency in.
func newConnection(ctx context.Context, c client.Client, g *gatewayProc, ca *pki, ns string, i int, fields []popv1.FieldPath, timeout time.Duration) (float64, error) {
	cc, err := ca.issueClient(agencyCode(i))
	if err != nil {
		return 0, err
	}
	nc, err := newAgencyClient(cc, g.url)
	if err != nil {
		return 0, err
	}
	conn := connection(ns, i, fields)
	conn.Spec.AllowedOperations = []popv1.Operation{popv1.OperationLookup}
	t0 := time.Now()
	if err := c.Create(ctx, conn); err != nil {
		return 0, fmt.Errorf("creating connection %s: %w", conn.Name, err)
	}
	if err := issueAsCertManager(ctx, c, conn, cc, timeout); err != nil {
		return 0, err
	}
	for {
		out, err := nc.do(ctx)
		if err == nil && out == outAllowed {
			break
		}
		if err != nil && !errors.Is(err, context.Canceled) && out == outOther {
			return 0, fmt.Errorf("new connection %s: %w", conn.Name, err)
		}
		if time.Since(t0) > timeout {
			return 0, fmt.Errorf("new connection %s not usable within %v (last answer: %v)", conn.Name, timeout, out)
		}
	}
	return ms(time.Since(t0)), nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// percentile is the p-th percentile (0..100) by nearest rank.
func percentile(v []float64, p float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	rank := int(p/100*float64(len(s))+0.999999) - 1
	return s[min(max(rank, 0), len(s)-1)]
}
