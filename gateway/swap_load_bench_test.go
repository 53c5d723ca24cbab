package gateway

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/popconnect/popconnect/gateway/audit"
	"github.com/popconnect/popconnect/gateway/metrics"
	"github.com/popconnect/popconnect/gateway/policy"
	"github.com/popconnect/popconnect/internal/popdb"
)

// BenchmarkServeDuringSwaps10k serves lookups (one agency of 10,000, all
// CPUs in parallel) while another goroutine swaps the policy every 100 ms,
// each time suspending or restoring a different agency, as the shard
// loader does when the operator rewrites a shard. It reports the swap time,
// the live heap with the policy loaded, and the requests that did not get
// 200: a swap must never fail or delay a request into an error. Run it
// for long enough to see many swaps, e.g. -benchtime 10s.
func BenchmarkServeDuringSwaps10k(b *testing.B) {
	gen, err := popdb.NewGenerator(1, 10_000)
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(popdb.Handler(gen))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	al, err := audit.NewLogger(io.Discard, []byte("an audit key of at least 32 bytes!!"))
	if err != nil {
		b.Fatal(err)
	}
	defer al.Close()
	g, err := New(Config{
		UpstreamURL: u, Location: time.UTC, Audit: al, Metrics: metrics.New(),
		Log: slog.New(slog.NewJSONHandler(io.Discard, nil)),
	})
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close()

	docs := manyAgencies(10_000)
	// AG00000 (shard-0) is the client; no rate limit may answer 429.
	docs["shard-0"].Agencies[0].RateLimit = policy.RateLimit{RequestsPerSecond: 100_000, Burst: 100_000}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	if err := g.SetPolicy(policy.Merge(docs)); err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)

	target := "/v1/citizens/" + mustID(b, 4242)
	agency, _ := url.Parse("spiffe://popconnect.io/agency/AG00000")
	tlsState := &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{{URIs: []*url.URL{agency}, NotAfter: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)}}}}

	stop := make(chan struct{})
	var swaps atomic.Int64
	var swapTime atomic.Int64
	var swapErr atomic.Value
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		shard := docs["shard-3"] // the swapper alone touches it
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			shard.Agencies[i%len(shard.Agencies)].Suspended = !shard.Agencies[i%len(shard.Agencies)].Suspended
			start := time.Now()
			if err := g.SetPolicy(policy.Merge(docs)); err != nil {
				swapErr.Store(err)
			}
			swapTime.Add(int64(time.Since(start)))
			swaps.Add(1)
		}
	})

	var bad atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := httptest.NewRequest(http.MethodGet, target, nil)
			r.TLS = tlsState
			w := httptest.NewRecorder()
			g.ServeHTTP(w, r)
			if w.Code != http.StatusOK {
				bad.Add(1)
			}
		}
	})
	b.StopTimer()
	close(stop)
	wg.Wait()

	if err, ok := swapErr.Load().(error); ok {
		b.Errorf("a policy swap failed: %v", err)
	}
	if n := bad.Load(); n > 0 {
		b.Errorf("%d requests did not get 200 while the policy was swapped", n)
	}
	n := swaps.Load()
	b.ReportMetric(float64(n), "swaps")
	if n > 0 {
		b.ReportMetric(float64(swapTime.Load())/float64(n)/1e6, "ms/swap")
	}
	b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/(1<<20), "policy-MiB")
	b.ReportMetric(float64(bad.Load()), "errors")
}

func mustID(b *testing.B, i int64) string {
	b.Helper()
	s, err := popdb.NationalID(i)
	if err != nil {
		b.Fatal(err)
	}
	return s
}
