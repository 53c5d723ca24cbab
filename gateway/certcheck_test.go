package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/popconnect/popconnect/gateway/h1server"
	"github.com/popconnect/popconnect/gateway/policy"
	"github.com/popconnect/popconnect/gateway/testpki"
	"github.com/popconnect/popconnect/gateway/tlsconfig"
)

// tlsHarness serves a harness's gateway over mTLS as cmd/gateway does:
// h1server (HTTP/2 by ALPN), tlsconfig's reloadable files, the gateway's
// connection context and client CA source. The gateway's clock starts at
// the real time, which the handshakes use.
type tlsHarness struct {
	*harness
	ca      *testpki.CA // the client CA
	srvCA   *testpki.CA // signs the serving certificate
	srvTLS  *tlsconfig.Server
	dir     string
	addr    string
	accepts atomic.Int64
}

func newTLSHarness(t *testing.T, maxAge time.Duration) *tlsHarness {
	t.Helper()
	h := newHarness(t, nil)
	h.clock.mu.Lock()
	h.clock.now = time.Now()
	h.clock.mu.Unlock()
	th := &tlsHarness{harness: h, ca: testpki.NewCA(t, "agencies"), srvCA: testpki.NewCA(t, "server"), dir: t.TempDir()}
	serving := th.srvCA.Issue(t, testpki.Options{IPs: []net.IP{net.ParseIP("127.0.0.1")}, Server: true})
	var err error
	th.srvTLS, err = tlsconfig.New(tlsconfig.Files{
		CertFile:     testpki.WriteFile(t, th.dir, "tls.crt", serving.CertPEM),
		KeyFile:      testpki.WriteFile(t, th.dir, "tls.key", serving.KeyPEM),
		ClientCAFile: testpki.WriteFile(t, th.dir, "ca.crt", th.ca.CertPEM),
	}, false)
	if err != nil {
		t.Fatal(err)
	}
	h.gw.cfg.ClientCAs = th.srvTLS.ClientCAs // before serving: nothing reads it yet
	srv, err := h1server.New(h1server.Config{
		Handler: h.gw, TLSConfig: th.srvTLS.Config(), ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout: time.Minute, Refuse: h.gw.Refuse, ConnContext: h.gw.ConnContext, MaxConnectionAge: maxAge,
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	th.addr = ln.Addr().String()
	go srv.Serve(&countingListener{Listener: ln, n: &th.accepts})
	t.Cleanup(func() { srv.Close() })
	return th
}

// countingListener counts accepted connections, to tell a request on an
// open connection from one on a new connection.
type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// client is a keep-alive client presenting cert, over HTTP/2 or HTTP/1.1.
func (th *tlsHarness) client(t *testing.T, cert *testpki.Leaf, h2 bool) *http.Client {
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: th.srvCA.Pool(), Certificates: []tls.Certificate{cert.TLS}}
	if !h2 {
		cfg.NextProtos = []string{"http/1.1"}
	}
	tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: h2, MaxIdleConnsPerHost: 1}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// lookup sends one Lookup and returns its status, error code ("" on 200)
// and protocol.
func (th *tlsHarness) lookup(t *testing.T, c *http.Client) (int, string, string) {
	t.Helper()
	resp, err := c.Get("https://" + th.addr + "/v1/citizens/" + id(t, 7))
	if err != nil {
		t.Fatalf("lookup: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK {
		return resp.StatusCode, "", resp.Proto
	}
	var e struct{ Error, Message string }
	if err := json.Unmarshal(b, &e); err != nil || e.Message == "" {
		t.Fatalf("refusal body %q: %v", b, err)
	}
	return resp.StatusCode, e.Error, resp.Proto
}

// expect sends a Lookup and checks its answer and that it travelled on the
// connectionth connection the server accepted.
func (th *tlsHarness) expect(t *testing.T, c *http.Client, h2 bool, wantStatus int, wantCode string, connection int64) {
	t.Helper()
	status, code, proto := th.lookup(t, c)
	if status != wantStatus || code != wantCode {
		t.Fatalf("got %d %q, want %d %q", status, code, wantStatus, wantCode)
	}
	if wantProto := map[bool]string{true: "HTTP/2.0", false: "HTTP/1.1"}[h2]; proto != wantProto {
		t.Fatalf("protocol %s, want %s", proto, wantProto)
	}
	if n := th.accepts.Load(); n != connection {
		t.Fatalf("the request went on connection %d, want %d", n, connection)
	}
}

// withPins is the default policy with BYT pinned to pins (nil: absent).
func withPins(pins []string) []policy.Agency {
	agencies := defaultAgencies()
	for i := range agencies {
		if agencies[i].AgencyCode == "BYT" {
			agencies[i].CertificateSHA256 = pins
		}
	}
	return agencies
}

func pinOf(t *testing.T, l *testpki.Leaf) string {
	t.Helper()
	b, _ := pem.Decode(l.CertPEM)
	sum := sha256.Sum256(b.Bytes)
	return hex.EncodeToString(sum[:])
}

// lastAudit is the last audit record written.
func (th *tlsHarness) lastAudit(t *testing.T) map[string]any {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(th.out.String()), "\n")
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rec); err != nil {
		t.Fatalf("audit line %q: %v", lines[len(lines)-1], err)
	}
	return rec
}

// TestPinnedCertificates: two leaves from the same CA with the same URI
// SAN; only the pinned one is served, and dropping its pin (revocation)
// refuses the next request on its open keep-alive connection.
func TestPinnedCertificates(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		t.Run(map[bool]string{true: "h2", false: "http1"}[h2], func(t *testing.T) {
			th := newTLSHarness(t, 0)
			pinned, other := th.ca.Agency(t, "BYT"), th.ca.Agency(t, "BYT")
			th.setPolicy(t, withPins([]string{pinOf(t, pinned)}))

			pc := th.client(t, pinned, h2)
			th.expect(t, pc, h2, http.StatusOK, "", 1)
			th.expect(t, th.client(t, other, h2), h2, http.StatusForbidden, "certificate_not_pinned", 2)
			th.waitAudit(t, "BYT", "certificate_not_pinned")
			th.expect(t, pc, h2, http.StatusOK, "", 2) // still its first connection, the first accepted

			// The operator removes the digest (the certificate was revoked):
			// the open connection's next request is refused.
			th.setPolicy(t, withPins([]string{}))
			th.expect(t, pc, h2, http.StatusForbidden, "certificate_not_pinned", 2)
			th.waitAudit(t, "BYT", "certificate_not_pinned")

			// Without the key, any certificate the CA verifies is accepted.
			th.setPolicy(t, withPins(nil))
			th.expect(t, th.client(t, other, h2), h2, http.StatusOK, "", 3)
		})
	}
}

// TestExpiredCertificateOnOpenConnection: a certificate that expires while
// its keep-alive connection is open is refused on that connection.
func TestExpiredCertificateOnOpenConnection(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		t.Run(map[bool]string{true: "h2", false: "http1"}[h2], func(t *testing.T) {
			th := newTLSHarness(t, 0)
			leaf := th.ca.Issue(t, testpki.Options{URIs: []string{"spiffe://popconnect.io/agency/BYT"}, NotAfter: time.Now().Add(time.Hour)})
			c := th.client(t, leaf, h2)
			th.expect(t, c, h2, http.StatusOK, "", 1)
			th.clock.Advance(2 * time.Hour)
			th.expect(t, c, h2, http.StatusForbidden, "certificate_expired", 1)
			th.waitAudit(t, "BYT", "certificate_expired")
		})
	}
}

// TestClientCARotationOnOpenConnection: after the client CA file is
// rotated, a connection made under the old CA keeps working while the
// bundle still holds the old CA, and is refused once it does not.
func TestClientCARotationOnOpenConnection(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		t.Run(map[bool]string{true: "h2", false: "http1"}[h2], func(t *testing.T) {
			th := newTLSHarness(t, 0)
			c := th.client(t, th.ca.Agency(t, "BYT"), h2)
			th.expect(t, c, h2, http.StatusOK, "", 1)

			next := testpki.NewCA(t, "agencies-next")
			th.rotateClientCA(t, bytes.Join([][]byte{th.ca.CertPEM, next.CertPEM}, nil))
			th.expect(t, c, h2, http.StatusOK, "", 1)

			th.rotateClientCA(t, next.CertPEM)
			th.expect(t, c, h2, http.StatusForbidden, "certificate_untrusted", 1)
			th.waitAudit(t, "BYT", "certificate_untrusted")
		})
	}
}

func (th *tlsHarness) rotateClientCA(t *testing.T, bundle []byte) {
	t.Helper()
	testpki.WriteFile(t, th.dir, "ca.crt", bundle)
	if err := th.srvTLS.Reload(); err != nil {
		t.Fatal(err)
	}
}

// waitAudit waits (bounded) for the last audit record to be the refusal.
func (th *tlsHarness) waitAudit(t *testing.T, agency, reason string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		th.audit.Flush()
		rec := th.lastAudit(t)
		if rec["agency"] == agency && rec["reason"] == reason {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("last audit record %v, want agency %s reason %s", rec, agency, reason)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestExpiredIntermediateOnOpenConnection: the chain expires with its
// earliest certificate, an intermediate CA included.
func TestExpiredIntermediateOnOpenConnection(t *testing.T) {
	th := newTLSHarness(t, 0)
	inter := th.ca.Intermediate(t, "agencies-issuing", time.Now().Add(time.Hour))
	leaf := inter.Issue(t, testpki.Options{URIs: []string{"spiffe://popconnect.io/agency/BYT"}}) // valid for a day
	c := th.client(t, leaf, false)
	th.expect(t, c, false, http.StatusOK, "", 1)
	th.clock.Advance(2 * time.Hour)
	th.expect(t, c, false, http.StatusForbidden, "certificate_expired", 1)
}

// TestCertificateChecksWithoutConnectionCache: a server that gives the
// gateway no connection context (ServeHTTP called directly) gets the same
// verdicts, computed per request; a refused certificate keeps its audit
// record and spends none of the agency's tokens.
func TestCertificateChecksWithoutConnectionCache(t *testing.T) {
	h := newHarness(t, nil)
	// The harness's certificates have no DER: their digest is that of
	// nothing.
	empty := sha256.Sum256(nil)
	mine, other := hex.EncodeToString(empty[:]), strings.Repeat("ab", sha256.Size)
	for _, tc := range []struct {
		name string
		pins []string
		code string
	}{
		{"absent: any certificate", nil, ""},
		{"listed", []string{other, mine}, ""},
		{"not listed", []string{other}, "certificate_not_pinned"},
		{"empty: none", []string{}, "certificate_not_pinned"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			agencies := defaultAgencies()
			for i := range agencies {
				if agencies[i].AgencyCode == "SLOW" { // burst 2
					agencies[i].CertificateSHA256 = tc.pins
				}
			}
			h.setPolicy(t, agencies)
			w := h.do("SLOW", http.MethodGet, "/v1/citizens/"+id(t, 1), "")
			if tc.code == "" {
				if w.Code != http.StatusOK {
					t.Fatalf("%d %s", w.Code, w.Body)
				}
				return
			}
			if w.Code != http.StatusForbidden || errorCode(t, w) != tc.code || w.Header().Get("Connection") != "close" {
				t.Fatalf("%d %s %v, want 403 %s with Connection: close", w.Code, w.Body, w.Header(), tc.code)
			}
			rec := h.auditRecord(t, w.Header().Get("X-Request-Id"))
			if rec["agency"] != "SLOW" || rec["reason"] != tc.code || rec["status"] != float64(http.StatusForbidden) {
				t.Fatalf("audit record %v", rec)
			}
			for range 5 { // more than the burst: refusals spend no token
				if w := h.do("SLOW", http.MethodGet, "/v1/citizens/"+id(t, 1), ""); w.Code != http.StatusForbidden {
					t.Fatalf("%d", w.Code)
				}
			}
		})
	}
	h.setPolicy(t, defaultAgencies())
	h.clock.Advance(time.Minute) // the bucket refills whatever the earlier cases spent
	for range 2 {
		if w := h.do("SLOW", http.MethodGet, "/v1/citizens/"+id(t, 1), ""); w.Code != http.StatusOK {
			t.Fatalf("after the refusals: %d %s", w.Code, w.Body)
		}
	}
}

func TestValidUntil(t *testing.T) {
	at := func(h int) *x509.Certificate {
		return &x509.Certificate{NotAfter: time.Date(2030, 1, 1, h, 0, 0, 0, time.UTC)}
	}
	for _, tc := range []struct {
		name   string
		chains [][]*x509.Certificate
		want   time.Time
	}{
		{"none", nil, time.Time{}},
		{"leaf first", [][]*x509.Certificate{{at(1), at(5), at(9)}}, at(1).NotAfter},
		{"intermediate first", [][]*x509.Certificate{{at(7), at(2), at(9)}}, at(2).NotAfter},
		{"root first", [][]*x509.Certificate{{at(7), at(5), at(3)}}, at(3).NotAfter},
		{"the longest-lived chain counts", [][]*x509.Certificate{{at(7), at(2)}, {at(7), at(6)}}, at(6).NotAfter},
	} {
		if got := validUntil(tc.chains); !got.Equal(tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// BenchmarkCheckCertificate is the per-request cost of the certificate
// checks on a connection whose verdict is cached: what every request pays.
func BenchmarkCheckCertificate(b *testing.B) {
	g := newBenchGateway(b)
	ca := testpki.NewCA(b, "bench")
	leaf := ca.Agency(b, "BENCH")
	cert, _ := x509.ParseCertificate(leaf.TLS.Certificate[0])
	pool := ca.Pool()
	g.cfg.ClientCAs = func() (*x509.CertPool, uint64) { return pool, 1 }
	sum := sha256.Sum256(cert.Raw)
	a := &agencyState{entry: policy.Agency{AgencyCode: "BENCH"}, pinned: true, pins: pinSet{sum: {}}}
	r := httptest.NewRequestWithContext(g.ConnContext(context.Background(), nil), http.MethodGet, "/v1/citizens/x", nil)
	r.TLS = &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{cert, ca.Cert}}, PeerCertificates: []*x509.Certificate{cert}}
	x := &exchange{r: r, w: httptest.NewRecorder()}
	x.rec.Time = time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if e := g.checkCertificate(x, a); e != nil {
			b.Fatal(e)
		}
	}
}
