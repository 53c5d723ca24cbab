package gateway

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"net"
	"net/http"
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
