package h1server

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/popconnect/popconnect/gateway/testpki"
)

// tlsServer is a Server with client certificates required, as the
// gateway runs it.
type tlsServer struct {
	*testServer
	ca     *testpki.CA
	agency *testpki.Leaf
}

// startTLSWith serves h with srv serving HTTP/2.
func startTLSWith(t *testing.T, srv HTTP2Server, h http.Handler) *tlsServer {
	t.Helper()
	ca, server, agency := tlsFixture(t)
	ts := start(t, Config{
		HTTP2Server:       srv,
		TLSConfig:         serverTLS(ca, server),
		ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 10 * time.Second,
	}, h)
	return &tlsServer{testServer: ts, ca: ca, agency: agency}
}

// tlsFixture is a CA, a server certificate for 127.0.0.1 and an agency's.
func tlsFixture(t *testing.T) (ca *testpki.CA, server, agency *testpki.Leaf) {
	t.Helper()
	ca = testpki.NewCA(t, "h1server")
	server = ca.Issue(t, testpki.Options{IPs: []net.IP{net.ParseIP("127.0.0.1")}, Server: true})
	return ca, server, ca.Agency(t, "BYT")
}

func serverTLS(ca *testpki.CA, server *testpki.Leaf) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{server.TLS},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.Pool(),
	}
}

// client returns a client presenting cert, speaking h2 when offered.
func (ts *tlsServer) client(cert *testpki.Leaf, h2 bool) *http.Client {
	cfg := &tls.Config{RootCAs: ts.ca.Pool()}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{cert.TLS}
	}
	if !h2 {
		cfg.NextProtos = []string{"http/1.1"}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: h2}, Timeout: 10 * time.Second}
}

// describe answers with what the handler saw of the protocol and the
// client certificate.
func describe(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	uri := ""
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0][0].URIs) > 0 {
		uri = r.TLS.VerifiedChains[0][0].URIs[0].String()
	}
	w.Header().Set("Content-Type", "text/plain")
	fmt.Fprintf(w, "%s %s %s %s", r.Proto, r.Method, uri, b)
}

// TestALPN: h2 clients are served by HTTP/2 and HTTP/1.1 clients by the
// server itself, with the verified client certificate in r.TLS either way.
func TestALPN(t *testing.T) {
	forEachH2(t, func(t *testing.T, srv HTTP2Server) {
		ts := startTLSWith(t, srv, http.HandlerFunc(describe))
		for _, tc := range []struct {
			h2   bool
			want string
		}{
			{true, "HTTP/2.0 POST spiffe://popconnect.io/agency/BYT body"},
			{false, "HTTP/1.1 POST spiffe://popconnect.io/agency/BYT body"},
		} {
			c := ts.client(ts.agency, tc.h2)
			for range 3 {
				resp, err := c.Post("https://"+ts.addr+"/x", "text/plain", strings.NewReader("body"))
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || string(b) != tc.want {
					t.Fatalf("h2=%v: %d %q, want %q", tc.h2, resp.StatusCode, b, tc.want)
				}
			}
		}
		if n := ts.accepts.count(); n != 2 {
			t.Fatalf("%d connections for two keep-alive clients", n)
		}

		// Without a client certificate the handshake fails, logged at debug.
		if _, err := ts.client(nil, false).Get("https://" + ts.addr + "/x"); err == nil {
			t.Fatal("served a client without a certificate")
		}
		waitFor(t, "the handshake failure in the log", func() bool { return strings.Contains(ts.log.String(), "TLS handshake failed") })
	})
}

// TestShutdownHTTP2 drains an HTTP/2 request in flight: GOAWAY, the
// answer, then the connection ends and Shutdown returns.
func TestShutdownHTTP2(t *testing.T) {
	forEachH2(t, func(t *testing.T, srv HTTP2Server) {
		release := make(chan struct{})
		started := make(chan struct{}, 1)
		ts := startTLSWith(t, srv, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			started <- struct{}{}
			<-release
			describe(w, r)
		}))
		got := ts.getInBackground("/x")
		<-started
		done := make(chan error, 1)
		go func() { done <- shutdownWithin(t, ts.Server, 10*time.Second) }()
		time.Sleep(100 * time.Millisecond)
		select {
		case err := <-done:
			t.Fatalf("Shutdown returned before the request finished: %v", err)
		default:
		}
		close(release)
		if g := <-got; g != "HTTP/2.0 GET spiffe://popconnect.io/agency/BYT " {
			t.Fatalf("in-flight HTTP/2 request: %q", g)
		}
		if err := <-done; err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	})
}

// getInBackground sends GET path over HTTP/2 as the agency and delivers the
// body, or the error's text, when it comes.
func (ts *tlsServer) getInBackground(path string) <-chan string {
	got := make(chan string, 1)
	go func() {
		resp, err := ts.client(ts.agency, true).Get("https://" + ts.addr + path)
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- string(b)
	}()
	return got
}
