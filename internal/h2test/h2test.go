// Package h2test opens raw HTTP/2 connections for tests that must send
// what a well-behaved client never would (malformed headers, floods,
// resets): TLS with a client certificate and ALPN h2, the client preface
// and a SETTINGS frame, then a bare x/net Framer.
package h2test

import (
	"crypto/tls"
	"crypto/x509"
	"testing"

	"golang.org/x/net/http2"
)

// Dial connects to addr as the holder of cert (verifying the server
// against roots), checks that h2 was negotiated, and sends the preface and
// a SETTINGS frame with settings. The connection is closed when the test
// ends.
func Dial(t testing.TB, addr string, roots *x509.CertPool, cert tls.Certificate, settings ...http2.Setting) (*tls.Conn, *http2.Framer) {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{
		RootCAs: roots, Certificates: []tls.Certificate{cert}, NextProtos: []string{http2.NextProtoTLS},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if p := conn.ConnectionState().NegotiatedProtocol; p != http2.NextProtoTLS {
		t.Fatalf("negotiated %q, not h2", p)
	}
	if _, err := conn.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(conn, conn)
	if err := fr.WriteSettings(settings...); err != nil {
		t.Fatal(err)
	}
	return conn, fr
}
