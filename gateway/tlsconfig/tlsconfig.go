// Package tlsconfig builds the gateway's server TLS configuration from
// certificate, key and client-CA files that can be replaced while the
// gateway runs (cert-manager renewals, CA rotation): each new handshake uses
// the latest files. Established connections keep their TLS session; the
// gateway re-checks their client chains against the CA in force (see
// ClientCAs).
package tlsconfig

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
)

// Files names the PEM files the server configuration is read from.
type Files struct {
	CertFile, KeyFile, ClientCAFile string
}

// Server holds the current configuration and swaps it on Reload.
type Server struct {
	files     Files
	allowTLS  uint16
	current   atomic.Pointer[snapshot]
	reloadMu  sync.Mutex // orders Reloads, so generations only grow
	nextProto []string
}

// snapshot is one loaded configuration. gen counts the client CA bundles
// loaded: it changes only when the client CA file's bytes do, so that a
// renewal of the serving certificate does not make the gateway re-verify
// every open connection.
type snapshot struct {
	cfg   *tls.Config
	caPEM []byte
	gen   uint64
}

// New reads the files and returns a Server. TLS 1.3 is the minimum unless
// allowTLS12 is set.
func New(files Files, allowTLS12 bool) (*Server, error) {
	s := &Server{files: files, allowTLS: tls.VersionTLS13, nextProto: []string{"h2", "http/1.1"}}
	if allowTLS12 {
		s.allowTLS = tls.VersionTLS12
	}
	if err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload rereads the files. On error the previous configuration stays in
// force, so a half-written renewal never takes the gateway down.
func (s *Server) Reload() error {
	cert, err := tls.LoadX509KeyPair(s.files.CertFile, s.files.KeyFile)
	if err != nil {
		return fmt.Errorf("loading serving certificate: %w", err)
	}
	caPEM, err := os.ReadFile(s.files.ClientCAFile)
	if err != nil {
		return fmt.Errorf("reading client CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return errors.New("client CA file holds no PEM certificate")
	}
	cfg := &tls.Config{
		MinVersion:   s.allowTLS,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		NextProtos:   s.nextProto,
	}
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	next := &snapshot{cfg: cfg, caPEM: caPEM, gen: 1}
	if prev := s.current.Load(); prev != nil {
		next.gen = prev.gen
		if !bytes.Equal(prev.caPEM, caPEM) {
			next.gen++
		}
	}
	s.current.Store(next)
	return nil
}

// ClientCAs returns the client CA pool in force and its generation, which
// grows by one each time Reload loads a different client CA bundle. The
// gateway re-verifies a live connection's chain when the generation it
// last verified under is no longer the current one. The generation is
// read before a connection's handshake and again at its requests: when
// both are equal, the handshake was verified by this very pool.
func (s *Server) ClientCAs() (*x509.CertPool, uint64) {
	cur := s.current.Load()
	return cur.cfg.ClientCAs, cur.gen
}

// Config returns the configuration to give http.Server: its
// GetConfigForClient hands each handshake the configuration in force.
func (s *Server) Config() *tls.Config {
	return &tls.Config{
		MinVersion: s.allowTLS,
		ClientAuth: tls.RequireAndVerifyClientCert,
		NextProtos: s.nextProto,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return s.current.Load().cfg, nil
		},
	}
}

// Files returns the files the server reads.
func (s *Server) Files() Files { return s.files }
