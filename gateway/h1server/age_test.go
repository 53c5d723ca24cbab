package h1server

import (
	"crypto/tls"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/popconnect/popconnect/gateway/testpki"
)

// ageLimit is the MaxConnectionAge of these tests: far below their idle
// timeout (a minute), so a connection that closes closed for its age.
const ageLimit = 300 * time.Millisecond

// TestMaxConnectionAgeHTTP1Busy: a request in progress when the
// connection's age passes is answered, with Connection: close, and the
// connection then closes.
func TestMaxConnectionAgeHTTP1Busy(t *testing.T) {
	// The handler outlasts the age: the connection was accepted before
	// the request began, so it has aged by the time the handler returns.
	ts := start(t, Config{ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute, MaxConnectionAge: ageLimit},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(ageLimit)
			echo(w, r)
		}))
	c := ts.dial(t)
	c.send(t, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
	resp, body := c.response(t)
	if resp.StatusCode != http.StatusOK || body != "GET /x  " || !resp.Close {
		t.Fatalf("%d %q close=%v, want 200 with Connection: close", resp.StatusCode, body, resp.Close)
	}
	if !c.closed(t) {
		t.Fatal("the connection stayed open after Connection: close")
	}
}

// TestMaxConnectionAgeHTTP1Idle: an idle keep-alive connection is closed
// when its age passes, well before its idle timeout.
func TestMaxConnectionAgeHTTP1Idle(t *testing.T) {
	ts := start(t, Config{ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute, MaxConnectionAge: ageLimit}, http.HandlerFunc(echo))
	c := ts.dial(t)
	c.send(t, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp, _ := c.response(t); resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	waitFor(t, "the server to close the idle connection", func() bool { return ts.tracked() == 0 })
	if !c.closed(t) {
		t.Fatal("the client's end is still open")
	}
}

// startTLSAged is startTLS with a MaxConnectionAge and a long idle timeout.
func startTLSAged(t *testing.T, srv HTTP2Server, h http.Handler, age time.Duration) *tlsServer {
	t.Helper()
	ca := testpki.NewCA(t, "h1server")
	server := ca.Issue(t, testpki.Options{IPs: []net.IP{net.ParseIP("127.0.0.1")}, Server: true})
	ts := start(t, Config{
		TLSConfig: &tls.Config{
			MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{server.TLS},
			ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.Pool(),
		},
		ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute, MaxConnectionAge: age, HTTP2Server: srv,
	}, h)
	return &tlsServer{testServer: ts, ca: ca, agency: ca.Agency(t, "BYT")}
}

// TestMaxConnectionAgeHTTP2: a busy HTTP/2 connection is sent GOAWAY when
// its age passes (its requests all succeed; the client moves to a new
// connection), and an idle one is closed.
func TestMaxConnectionAgeHTTP2(t *testing.T) {
	forEachH2(t, func(t *testing.T, srv HTTP2Server) {
		ts := startTLSAged(t, srv, http.HandlerFunc(describe), ageLimit)
		c := ts.client(ts.agency, true)
		get := func() {
			resp, err := c.Get("https://" + ts.addr + "/x")
			if err != nil {
				t.Fatalf("request failed: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 {
				t.Fatalf("%d %s", resp.StatusCode, resp.Proto)
			}
		}
		// At least two: under load a new connection can age out before
		// its first request, and the client goes on to a third.
		waitFor(t, "a second connection", func() bool {
			get()
			return ts.accepts.count() >= 2
		})
		// Now idle: the second connection is closed for its age too.
		waitFor(t, "the idle HTTP/2 connection to close", func() bool { return ts.tracked() == 0 })
	})
}

// TestShutdownHTTP2OwnServer: Shutdown sends GOAWAY to the HTTP/2
// connections that have their own server (an age limit) too, and waits
// for their requests in flight.
func TestShutdownHTTP2OwnServer(t *testing.T) {
	forEachH2(t, func(t *testing.T, srv HTTP2Server) {
		release := make(chan struct{})
		started := make(chan struct{}, 1)
		ts := startTLSAged(t, srv, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			started <- struct{}{}
			<-release
			describe(w, r)
		}), time.Hour)
		got := ts.getInBackground("/x")
		<-started
		done := make(chan error, 1)
		go func() { done <- shutdownWithin(t, ts.Server, 10*time.Second) }()
		waitFor(t, "Shutdown to start", ts.Server.shuttingDown)
		close(release)
		if g := <-got; g != "HTTP/2.0 GET spiffe://popconnect.io/agency/BYT " {
			t.Fatalf("in-flight HTTP/2 request: %q", g)
		}
		if err := <-done; err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	})
}
