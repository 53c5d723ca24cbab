package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/popconnect/popconnect/gateway/audit"
	"github.com/popconnect/popconnect/gateway/h1server"
	"github.com/popconnect/popconnect/gateway/metrics"
	"github.com/popconnect/popconnect/gateway/policy"
	"github.com/popconnect/popconnect/gateway/testpki"
	"github.com/popconnect/popconnect/gateway/tlsconfig"
	"github.com/popconnect/popconnect/internal/popdb"
)

// benchFields is bench/gateway.sh's allow-list, so the in-process numbers
// and the side-by-side run filter the same record the same way.
var benchFields = []string{"fullName", "dateOfBirth", "gender", "permanentAddress.province",
	"permanentAddress.district", "permanentAddress.ward", "household.householdId",
	"idCard.number", "idCard.expiryDate", "relatives.fullName", "relatives.relation"}

const benchRecords = 100_000

// newBenchGateway returns a gateway in front of an in-process popdb-sim
// stand-in over loopback plain HTTP (as bench/gateway.sh runs it), with one agency
// BENCH whose limits never refuse.
func newBenchGateway(b *testing.B) *Gateway { return newBenchGatewayWith(b, nil) }

// newBenchGatewayWith is newBenchGateway with edit applied to the BENCH
// entry first.
func newBenchGatewayWith(b *testing.B, edit func(*policy.Agency)) *Gateway {
	b.Helper()
	gen, err := popdb.NewGenerator(1, benchRecords)
	if err != nil {
		b.Fatal(err)
	}
	// The records are encoded once, as popdb-sim encodes them, so the
	// in-process upstream costs little next to the gateway being measured.
	records := map[string][]byte{}
	for _, id := range benchIDs(b) {
		c, ok := gen.Lookup(id)
		if !ok {
			b.Fatalf("no record %s", id)
		}
		if records[id], err = json.Marshal(c); err != nil {
			b.Fatal(err)
		}
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec, ok := records[strings.TrimPrefix(r.URL.Path, lookupPrefix)]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(rec)
	}))
	b.Cleanup(up.Close)
	u, _ := url.Parse(up.URL)
	// The audit log goes to a file, as in production: each write is a
	// real write(2), which is what committing records before answering
	// costs.
	sink, err := os.CreateTemp(b.TempDir(), "audit")
	if err != nil {
		b.Fatal(err)
	}
	al, err := audit.NewLogger(sink, []byte("an audit key of at least 32 bytes!!"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { al.Close(); sink.Close() })
	g, err := New(Config{
		UpstreamURL: u, Location: time.UTC, Audit: al, Metrics: metrics.New(),
		Log: slog.New(slog.NewJSONHandler(io.Discard, nil)),
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(g.Close)
	doc := &policy.Document{Version: "bench", Agencies: []policy.Agency{{
		AgencyCode: "BENCH", AllowedFields: benchFields,
		AllowedOperations: []policy.Operation{policy.OperationLookup, policy.OperationVerify, policy.OperationBatchLookup},
		RateLimit:         policy.RateLimit{RequestsPerSecond: 1_000_000, Burst: 1_000_000},
	}}}
	if edit != nil {
		edit(&doc.Agencies[0])
	}
	if err := g.SetPolicy(policy.Merge(map[string]*policy.Document{"bench": doc})); err != nil {
		b.Fatal(err)
	}
	return g
}

// BenchmarkLookupMTLS is bench/gateway.sh's gateway leg in one process:
// keep-alive HTTP/1.1 clients over TLS 1.3 with client certificates, the
// gateway served with the production TLS configuration by the agency
// listener's server (h1server) or, for comparison, by net/http, and
// popdb-sim behind it over loopback. Client, gateway and upstream share
// the CPUs, so compare runs of this benchmark with each other (benchstat),
// not with nginx. Profile with -cpuprofile / -memprofile.
func BenchmarkLookupMTLS(b *testing.B) {
	h1 := func(h2 h1server.HTTP2Server) func(g *Gateway, cfg *tls.Config, ln net.Listener) func() {
		return func(g *Gateway, cfg *tls.Config, ln net.Listener) func() {
			srv, err := h1server.New(h1server.Config{Handler: g, TLSConfig: cfg, ReadHeaderTimeout: 10 * time.Second,
				IdleTimeout: 2 * time.Minute, Refuse: g.Refuse, ConnContext: g.ConnContext, MaxConnectionAge: time.Hour,
				HTTP2Server: h2})
			if err != nil {
				b.Fatal(err)
			}
			go srv.Serve(ln)
			return func() { srv.Close() }
		}
	}
	b.Run("server=h1server", func(b *testing.B) { benchLookupMTLS(b, false, h1(h1server.HTTP2XNet)) })
	// HTTP/2: 8 connections (the client's streams spread over them as
	// they fill), x/net's server against the native one.
	b.Run("server=h1server/h2=x-net", func(b *testing.B) { benchLookupMTLS(b, true, h1(h1server.HTTP2XNet)) })
	b.Run("server=h1server/h2=native", func(b *testing.B) { benchLookupMTLS(b, true, h1(h1server.HTTP2Native)) })
	b.Run("server=net-http", func(b *testing.B) {
		benchLookupMTLS(b, false, func(g *Gateway, cfg *tls.Config, ln net.Listener) func() {
			srv := &http.Server{Handler: g, TLSConfig: cfg, ReadHeaderTimeout: 10 * time.Second, ConnContext: g.ConnContext,
				IdleTimeout: 2 * time.Minute, ErrorLog: slog.NewLogLogger(slog.DiscardHandler, slog.LevelWarn)}
			go srv.ServeTLS(ln, "", "")
			return func() { srv.Close() }
		})
	})
}

// benchLookupMTLS runs the lookup load, over HTTP/2 when h2, against the
// gateway served by serve, which returns how to stop the server.
func benchLookupMTLS(b *testing.B, h2 bool, serve func(*Gateway, *tls.Config, net.Listener) func()) {
	g := newBenchGateway(b)
	ca := testpki.NewCA(b, "bench")
	server := ca.Issue(b, testpki.Options{IPs: []net.IP{net.ParseIP("127.0.0.1")}, Server: true})
	dir := b.TempDir()
	srvTLS, err := tlsconfig.New(tlsconfig.Files{
		CertFile:     testpki.WriteFile(b, dir, "tls.crt", server.CertPEM),
		KeyFile:      testpki.WriteFile(b, dir, "tls.key", server.KeyPEM),
		ClientCAFile: testpki.WriteFile(b, dir, "ca.crt", ca.CertPEM),
	}, false)
	if err != nil {
		b.Fatal(err)
	}
	g.cfg.ClientCAs = srvTLS.ClientCAs // as cmd/gateway sets it; nothing serves yet
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(serve(g, srvTLS.Config(), ln))

	client := ca.Agency(b, "BENCH")
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{
			MinVersion: tls.VersionTLS13, RootCAs: ca.Pool(), Certificates: []tls.Certificate{client.TLS},
		},
		MaxIdleConnsPerHost: 64, DisableCompression: true, ForceAttemptHTTP2: h2,
	}
	b.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: tr}
	base := "https://" + ln.Addr().String() + "/v1/citizens/"
	ids := benchIDs(b)
	var next atomic.Uint64
	var failed atomic.Int64
	b.SetParallelism(8) // 16 connections on 2 CPUs: the gateway is never idle
	b.ReportAllocs()
	b.ResetTimer()
	cpu := startCPU(b)
	defer cpu.report(b)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := hc.Get(base + ids[next.Add(1)%uint64(len(ids))])
			if err != nil {
				failed.Add(1)
				continue
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				failed.Add(1)
			}
		}
	})
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d requests failed", n)
	}
}

// BenchmarkServeLookup is the handler alone: ServeHTTP with a verified
// agency certificate already in the request, the upstream call over
// loopback included, TLS and the client excluded. Its allocation count is
// the gateway's own. purpose=on gives the entry a purpose, a display name
// and requireCaseReference, and every request a case reference, as
// bench/gateway.sh's PURPOSE=1 leg does: the cost of those fields.
func BenchmarkServeLookup(b *testing.B) {
	b.Run("purpose=off", func(b *testing.B) { benchServeLookup(b, nil, "") })
	b.Run("purpose=on", func(b *testing.B) {
		benchServeLookup(b, func(a *policy.Agency) {
			a.Purpose = "Social insurance eligibility checks under Decree 115/2015 art. 12"
			a.DisplayName = "Vietnam Social Security, Hanoi branch"
			a.RequireCaseReference = true
		}, "HS-2026/004211-CSDT")
	})
}

func benchServeLookup(b *testing.B, edit func(*policy.Agency), caseRef string) {
	g := newBenchGatewayWith(b, edit)
	agency, _ := url.Parse("spiffe://popconnect.io/agency/BENCH")
	tlsState := &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{{URIs: []*url.URL{agency}, NotAfter: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)}}}}
	// One connection's context, as the agency listener gives every request.
	conn := g.ConnContext(context.Background(), nil)
	ids := benchIDs(b)
	reqs := make([]*http.Request, len(ids))
	for i, id := range ids {
		reqs[i] = httptest.NewRequestWithContext(conn, http.MethodGet, "/v1/citizens/"+id, nil)
		reqs[i].TLS = tlsState
		if caseRef != "" {
			reqs[i].Header.Set(CaseReferenceHeader, caseRef)
		}
	}
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	cpu := startCPU(b)
	defer cpu.report(b)
	i := 0
	for b.Loop() {
		clear(w.h)
		w.code = 0
		g.ServeHTTP(w, reqs[i%len(reqs)])
		if w.code != http.StatusOK {
			b.Fatalf("status %d", w.code)
		}
		i++
	}
}

func benchIDs(b *testing.B) []string {
	ids := make([]string, 1024)
	for i := range ids {
		id, err := popdb.NationalID(int64(i*97) % benchRecords)
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = id
	}
	return ids
}

// discardWriter is a ResponseWriter that keeps only the headers and status,
// so the benchmark measures the handler rather than a recorder.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}
func (w *discardWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return len(p), nil
}

// cpuMeter reports the process's CPU time (user + system) per operation.
// On a machine shared with other work, wall time per operation mostly
// measures the neighbours; CPU time is what the code under test costs.
// Client and upstream run in the process too, but they are the same code
// before and after a gateway change, so differences are the gateway's.
type cpuMeter struct{ start time.Duration }

func startCPU(b *testing.B) cpuMeter { return cpuMeter{processCPU(b)} }

func (c cpuMeter) report(b *testing.B) {
	if b.N > 0 {
		b.ReportMetric(float64(processCPU(b)-c.start)/float64(b.N), "cpu-ns/op")
	}
}

func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
