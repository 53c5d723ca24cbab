package main

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"testing"

	"golang.org/x/net/http2"

	"github.com/popconnect/popconnect/gateway/testpki"
)

// h2Forwarder is a test-only TLS forwarder for clients that have no client
// certificate (h2spec): it terminates their TLS with a certificate of its
// own, offering only h2 by ALPN, dials the gateway's agency port as an
// agency (client certificate, ALPN h2) and copies bytes both ways. The
// HTTP/2 frames are the client's, untouched: the forwarder only supplies
// the identity, so the server under test is the gateway exactly as
// deployed, client authentication included.
type h2Forwarder struct {
	ln       net.Listener
	upstream string
	client   *tls.Config // to the gateway

	wg sync.WaitGroup
	mu sync.Mutex
	// conns are the open connections, closed with the forwarder.
	conns map[net.Conn]struct{}
}

// startH2Forwarder forwards to the gateway at upstream as agency, trusting
// the gateway's certificate from ca. Its own certificate is issued by ca
// too (clients connect with -k).
func startH2Forwarder(t *testing.T, ca *testpki.CA, agency *testpki.Leaf, upstream string) *h2Forwarder {
	t.Helper()
	serverCert := ca.Issue(t, testpki.Options{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true})
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{serverCert.TLS},
		NextProtos:   []string{http2.NextProtoTLS},
		MinVersion:   tls.VersionTLS12,
	})
	if err != nil {
		t.Fatal(err)
	}
	fw := &h2Forwarder{
		ln:       ln,
		upstream: upstream,
		client: &tls.Config{
			RootCAs: ca.Pool(), Certificates: []tls.Certificate{agency.TLS}, NextProtos: []string{http2.NextProtoTLS},
		},
		conns: map[net.Conn]struct{}{},
	}
	fw.wg.Add(1)
	go fw.accept(t)
	t.Cleanup(fw.close)
	return fw
}

// Addr is where clients connect.
func (fw *h2Forwarder) Addr() *net.TCPAddr { return fw.ln.Addr().(*net.TCPAddr) }

func (fw *h2Forwarder) accept(t *testing.T) {
	defer fw.wg.Done()
	for {
		c, err := fw.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				t.Errorf("forwarder: accepting: %v", err)
			}
			return
		}
		if !fw.track(c) {
			c.Close()
			return
		}
		fw.wg.Add(1)
		go func() {
			defer fw.wg.Done()
			fw.forward(t, c.(*tls.Conn))
		}()
	}
}

// forward copies one client connection to a new gateway connection and
// back; when either side ends, both are closed, so that a connection the
// gateway closes (a connection error) is closed for the client too.
func (fw *h2Forwarder) forward(t *testing.T, in *tls.Conn) {
	defer fw.untrack(in)
	if err := in.Handshake(); err != nil {
		return // the client gave up; nothing to forward
	}
	out, err := tls.Dial("tcp", fw.upstream, fw.client)
	if err != nil {
		t.Errorf("forwarder: dialling the gateway: %v", err)
		return
	}
	if !fw.track(out) {
		out.Close()
		return
	}
	defer fw.untrack(out)
	if p := out.ConnectionState().NegotiatedProtocol; p != http2.NextProtoTLS {
		t.Errorf("forwarder: the gateway negotiated %q, not h2", p)
		return
	}
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go pipe(out, in)
	go pipe(in, out)
	<-done
	in.Close()
	out.Close()
	<-done
}

func (fw *h2Forwarder) track(c net.Conn) bool {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if fw.conns == nil {
		return false
	}
	fw.conns[c] = struct{}{}
	return true
}

func (fw *h2Forwarder) untrack(c net.Conn) {
	c.Close()
	fw.mu.Lock()
	defer fw.mu.Unlock()
	delete(fw.conns, c)
}

// close stops accepting, closes every connection and waits for the
// goroutines.
func (fw *h2Forwarder) close() {
	fw.ln.Close()
	fw.mu.Lock()
	for c := range fw.conns {
		c.Close()
	}
	fw.conns = nil
	fw.mu.Unlock()
	fw.wg.Wait()
}
