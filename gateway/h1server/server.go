package h1server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"github.com/popconnect/popconnect/gateway/rawio"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
)

// Config configures a Server. Timeouts mean what they mean for
// http.Server; zero is no limit.
type Config struct {
	// Handler serves every request, HTTP/1 and HTTP/2.
	Handler http.Handler
	// TLSConfig serves TLS and offers h2 and http/1.1 by ALPN; nil serves
	// plain HTTP/1.1 (tests).
	TLSConfig *tls.Config
	// ReadHeaderTimeout bounds reading a request head, from its first
	// byte (from the end of the TLS handshake for a connection's first
	// request). Zero: ReadTimeout.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included, from
	// its first byte.
	ReadTimeout time.Duration
	// WriteTimeout bounds sending a response, counted from its request's
	// first byte (net/http counts from the end of the head, the same
	// instant for a request that arrives in one piece); an answer ready
	// after it is not sent, as with net/http.
	WriteTimeout time.Duration
	// IdleTimeout bounds the wait for a keep-alive connection's next
	// request. Zero: ReadTimeout.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request head, request line and final CRLF
	// included (DefaultMaxHeaderBytes when zero).
	MaxHeaderBytes int
	// MaxHeaderLines bounds the header lines of a request
	// (DefaultMaxHeaderLines when zero).
	MaxHeaderLines int
	// MaxBodyBytes bounds the Content-Length a request may announce
	// (DefaultMaxBodyBytes when zero).
	MaxBodyBytes int64
	// MaxResponseBytes bounds the body a handler may write
	// (DefaultMaxResponseBytes when zero).
	MaxResponseBytes int
	// Refuse writes the answer to a request the server refuses before
	// the handler sees it (status 400, 411, 413, 417, 431, 505) or whose
	// response could not be sent (500). It gets the connection's TLS
	// state (nil in plain HTTP), so that the refusal can be attributed to
	// a verified client, and no request: nothing of a refused request is
	// echoed. nil: the status text as plain text.
	Refuse func(w http.ResponseWriter, state *tls.ConnectionState, status int)
	// ProtocolRefusal, when set, is told of each HTTP/2 stream the server
	// resets with an error code and each HTTP/2 connection it ends with
	// one (RST_STREAM or GOAWAY other than NO_ERROR), with the
	// connection's TLS state, so that the refusal can be attributed to a
	// verified client, and a reason such as "h2_stream_refused_stream" or
	// "h2_connection_enhance_your_calm". It runs on the connection's
	// writer and must not block. See h2conn.go.
	ProtocolRefusal func(state *tls.ConnectionState, reason string)
	// Log receives accept errors, handler panics (debug: TLS handshake
	// failures and refusals). nil: discarded.
	Log *slog.Logger
	// ConnContext, when set, derives a connection's context (the parent
	// of its requests' contexts, HTTP/2 included) from the server's, as
	// http.Server.ConnContext does: it is called once per accepted
	// connection, before the TLS handshake. It must not return nil.
	ConnContext func(ctx context.Context, c net.Conn) context.Context
	// MaxConnectionAge, when positive, bounds how long a connection is
	// served, from its accept: an HTTP/1 connection closes after the
	// response in progress (sent with Connection: close) or, when idle,
	// at once; an HTTP/2 connection gets a graceful GOAWAY (requests in
	// flight finish). Clients then reconnect, with a new handshake that
	// checks their certificate against the CA in force.
	MaxConnectionAge time.Duration
	// HTTP2Server selects what serves HTTP/2 connections: HTTP2Native
	// (the default, "") or HTTP2XNet.
	HTTP2Server HTTP2Server
}

// Defaults for the zero values of Config.
const (
	DefaultMaxHeaderBytes   = 32 << 10
	DefaultMaxHeaderLines   = 100
	DefaultMaxBodyBytes     = 1 << 20
	DefaultMaxResponseBytes = 8 << 20
)

// Server serves HTTP/1.1 (and HTTP/2 by ALPN) on the listeners given to
// Serve, until Shutdown or Close.
type Server struct {
	cfg       Config
	log       *slog.Logger
	tlsConfig *tls.Config
	refuse    func(http.ResponseWriter, *tls.ConnectionState, int)
	h2        *http2.Server
	h2Base    *http.Server // the HTTP/2 connections' settings and GOAWAY on Shutdown; never serves
	h2Handler http.Handler // serveH2Request

	headerTimeout    time.Duration // ReadHeaderTimeout, or ReadTimeout
	idleTimeout      time.Duration // IdleTimeout, or ReadTimeout
	handshakeTimeout time.Duration // the smallest of the three, as net/http
	readSlack        time.Duration // see keepDeadline
	writeSlack       time.Duration

	baseCtx    context.Context // parent of every connection's; cancelled by Close
	cancelBase context.CancelFunc
	inShutdown atomic.Bool

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	connGone  chan struct{} // a connection ended (capacity 1)
}

// New checks cfg and returns a Server.
func New(cfg Config) (*Server, error) {
	if cfg.Handler == nil {
		return nil, errors.New("h1server: a Handler is required")
	}
	if cfg.ReadHeaderTimeout < 0 || cfg.ReadTimeout < 0 || cfg.WriteTimeout < 0 || cfg.IdleTimeout < 0 || cfg.MaxConnectionAge < 0 ||
		cfg.MaxHeaderBytes < 0 || cfg.MaxHeaderLines < 0 || cfg.MaxBodyBytes < 0 || cfg.MaxResponseBytes < 0 {
		return nil, errors.New("h1server: timeouts and limits must not be negative")
	}
	switch cfg.HTTP2Server {
	case "":
		cfg.HTTP2Server = HTTP2Native
	case HTTP2XNet, HTTP2Native:
	default:
		return nil, fmt.Errorf("h1server: unknown HTTP/2 server %q (want %q or %q)", cfg.HTTP2Server, HTTP2XNet, HTTP2Native)
	}
	cfg.MaxHeaderBytes = cmpOr(cfg.MaxHeaderBytes, DefaultMaxHeaderBytes)
	cfg.MaxHeaderLines = cmpOr(cfg.MaxHeaderLines, DefaultMaxHeaderLines)
	cfg.MaxBodyBytes = cmpOr(cfg.MaxBodyBytes, DefaultMaxBodyBytes)
	cfg.MaxResponseBytes = cmpOr(cfg.MaxResponseBytes, DefaultMaxResponseBytes)
	s := &Server{
		cfg:           cfg,
		log:           cfg.Log,
		refuse:        cfg.Refuse,
		headerTimeout: cmpOr(cfg.ReadHeaderTimeout, cfg.ReadTimeout),
		idleTimeout:   cmpOr(cfg.IdleTimeout, cfg.ReadTimeout),
		listeners:     map[net.Listener]struct{}{},
		conns:         map[*conn]struct{}{},
		connGone:      make(chan struct{}, 1),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.refuse == nil {
		s.refuse = defaultRefusal
	}
	for _, d := range []time.Duration{cfg.ReadHeaderTimeout, cfg.ReadTimeout, cfg.WriteTimeout} {
		if d > 0 && (s.handshakeTimeout == 0 || d < s.handshakeTimeout) {
			s.handshakeTimeout = d
		}
	}
	s.readSlack = slack(s.headerTimeout)
	s.writeSlack = slack(cfg.WriteTimeout)
	s.baseCtx, s.cancelBase = context.WithCancel(context.Background())
	if cfg.TLSConfig != nil {
		if err := s.configureTLS(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// configureTLS offers h2 and http/1.1 by ALPN (as http.Server.ServeTLS
// does) and prepares the HTTP/2 server with the same limits.
func (s *Server) configureTLS() error {
	s.tlsConfig = s.cfg.TLSConfig.Clone()
	for _, p := range []string{http2.NextProtoTLS, "http/1.1"} {
		if !slices.Contains(s.tlsConfig.NextProtos, p) {
			s.tlsConfig.NextProtos = append(s.tlsConfig.NextProtos, p)
		}
	}
	s.h2Handler = http.HandlerFunc(s.serveH2Request)
	var err error
	s.h2Base, s.h2, err = s.newHTTP2()
	return err
}

// newHTTP2 returns an HTTP/2 server with the server's limits and the base
// http.Server whose Shutdown sends GOAWAY to its connections.
func (s *Server) newHTTP2() (*http.Server, *http2.Server, error) {
	base := &http.Server{
		Handler:           s.h2Handler,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		// Above ours, which serveH2Request enforces (see h2limits.go).
		MaxHeaderBytes: h2HeaderListFactor * s.cfg.MaxHeaderBytes,
		ErrorLog:       slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	h2 := &http2.Server{
		// Explicit, rather than x/net's defaults, because the protection
		// tests (h2protect_test.go) measure against them.
		MaxConcurrentStreams: h2MaxConcurrentStreams,
		// The smallest frame size, as RFC 9113 starts with: x/net's
		// default of 1 MiB lets one frame pin a 1 MiB read buffer per
		// connection, and a request of the gateway needs no large frame.
		MaxReadFrameSize: h2MaxReadFrameSize,
		// No WriteByteTimeout: h2Conn bounds every write by WriteTimeout
		// itself (slow readers), its own timer's writes included.
	}
	// Registers the GOAWAY that base's Shutdown sends to the HTTP/2
	// connections, and takes base's idle timeout.
	if err := http2.ConfigureServer(base, h2); err != nil {
		return nil, nil, fmt.Errorf("h1server: configuring HTTP/2: %w", err)
	}
	return base, h2, nil
}

// The HTTP/2 settings the server advertises.
const (
	h2MaxConcurrentStreams = 100
	h2MaxReadFrameSize     = 16 << 10
)

// slack is how early a lazily kept deadline may be (see keepDeadline): an eighth of the timeout, at most a second.
func slack(timeout time.Duration) time.Duration { return min(timeout/8, time.Second) }

func cmpOr[T int | int64 | time.Duration](v, def T) T {
	if v != 0 {
		return v
	}
	return def
}

// Serve accepts connections on ln and serves each on its own goroutine
// until Shutdown or Close, when it returns http.ErrServerClosed. It closes
// ln when it returns.
func (s *Server) Serve(ln net.Listener) error {
	if !s.track(ln) {
		ln.Close()
		return http.ErrServerClosed
	}
	defer s.untrack(ln)
	var delay time.Duration
	for {
		raw, err := ln.Accept()
		if err != nil {
			if s.inShutdown.Load() {
				return http.ErrServerClosed
			}
			if te, ok := err.(interface{ Temporary() bool }); ok && te.Temporary() {
				// Out of file descriptors and the like: back off as
				// net/http does, rather than spin.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.log.Error("Accepting a connection failed; retrying", "error", err, "delay", delay)
				time.Sleep(delay)
				continue
			}
			return fmt.Errorf("h1server: accepting: %w", err)
		}
		delay = 0
		c := s.newConn(rawio.Wrap(raw))
		if !s.add(c) {
			raw.Close()
			continue
		}
		go c.serve()
	}
}

// shuttingDown reports whether Shutdown or Close was called.
func (s *Server) shuttingDown() bool { return s.inShutdown.Load() }
