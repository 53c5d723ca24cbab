package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/popconnect/popconnect/gateway"
	"github.com/popconnect/popconnect/gateway/audit"
	"github.com/popconnect/popconnect/gateway/audit/pghistory"
	"github.com/popconnect/popconnect/gateway/h1server"
	"github.com/popconnect/popconnect/gateway/loader"
	"github.com/popconnect/popconnect/gateway/metrics"
	"github.com/popconnect/popconnect/gateway/ratelimit"
	"github.com/popconnect/popconnect/gateway/tlsconfig"
	"github.com/popconnect/popconnect/gateway/watch"
)

// server is the assembled gateway process.
type server struct {
	opts      *options
	log       *slog.Logger
	gw        *gateway.Gateway
	metrics   *metrics.Metrics
	audit     *audit.Logger
	auditFile io.Closer
	history   *pghistory.Store // nil without the PostgreSQL sink
	tls       *tlsconfig.Server
	target    loader.Target
	limits    *ratelimit.Redis // nil: each replica counts alone
}

func newServer(ctx context.Context, o *options, stdout, stderr io.Writer) (*server, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
	loc, err := time.LoadLocation(o.timezone)
	if err != nil {
		return nil, fmt.Errorf("--timezone: %w", err)
	}
	key, err := audit.ReadKeyFile(o.auditHashKeyFile)
	if err != nil {
		return nil, err
	}
	s := &server{opts: o, log: log, metrics: metrics.New()}
	if s.audit, s.auditFile, err = openAudit(o, stdout, key, log); err != nil {
		return nil, err
	}
	s.metrics.AuditWriteErrors(s.audit.WriteErrors)
	s.metrics.AuditBatches(s.audit.Batches)
	s.metrics.AuditLastSeq(s.audit.Stream(), s.audit.SinkName(), s.audit.LastSeq)
	log.Info("audit stream started", "stream", s.audit.Stream(), "sink", s.audit.SinkName())
	if s.audit.SinkName() == "postgres" {
		// Connect now, so that a database out of reach shows at once
		// (/readyz 503) rather than at the first request; the logger
		// keeps trying every second and the gateway serves when it can.
		s.audit.Flush()
		if st := s.audit.State(); !st.Healthy {
			log.Warn("audit database unreachable; requests are refused until it is", "error", st.LastError)
		}
	}
	if s.history, err = openHistory(o); err != nil {
		return nil, err
	}
	upstreamURL, err := url.Parse(o.upstreamURL)
	if err != nil {
		return nil, fmt.Errorf("--upstream-url: %w", err)
	}
	var upstreamTLS *tls.Config
	if o.upstreamCAFile != "" {
		pem, err := os.ReadFile(o.upstreamCAFile)
		if err != nil {
			return nil, fmt.Errorf("--upstream-ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("--upstream-ca-file holds no PEM certificate")
		}
		upstreamTLS = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	s.tls, err = tlsconfig.New(tlsconfig.Files{CertFile: o.tlsCertFile, KeyFile: o.tlsKeyFile, ClientCAFile: o.clientCAFile}, o.allowTLS12)
	if err != nil {
		return nil, err
	}
	if s.limits, err = rateLimitStore(o, log, s.metrics); err != nil {
		return nil, err
	}
	var limits ratelimit.Store
	if s.limits != nil {
		limits = s.limits
	}
	cfg := gateway.Config{
		UpstreamURL:          upstreamURL,
		UpstreamTLS:          upstreamTLS,
		UpstreamTimeout:      o.upstreamTimeout,
		MaxRequestBodyBytes:  o.maxRequestBody,
		MaxUpstreamBodyBytes: o.maxUpstreamBody,
		Location:             loc,
		RateLimits:           limits,
		Audit:                s.audit,
		Metrics:              s.metrics,
		Log:                  log,
		// Open connections are re-verified when the client CA changes.
		ClientCAs: s.tls.ClientCAs,
	}
	if s.history != nil {
		// Only when set: a nil *pghistory.Store would be a non-nil
		// HistoryStore.
		cfg.History = s.history
	}
	s.gw, err = gateway.New(cfg)
	if err != nil {
		if s.limits != nil {
			s.limits.Close()
		}
		return nil, err
	}
	s.target = loader.Target{Apply: s.gw.SetPolicy, LoadError: s.metrics.PolicyLoadError}
	return s, nil
}

// serve runs until ctx ends, then shuts down gracefully: it stops accepting,
// waits for requests in flight (up to --shutdown-grace), and flushes the
// audit log.
func (s *server) serve(ctx context.Context, onListen listening) (err error) {
	defer s.gw.Close()
	if s.limits != nil {
		defer s.limits.Close()
	}
	if s.history != nil {
		defer s.history.Close()
	}
	defer func() {
		cerr := s.audit.Close()
		// The last seq, shipped off the node with the pod's log, shows a
		// truncated audit log for what it is.
		s.log.Info("audit stream closed", "stream", s.audit.Stream(), "lastSeq", s.audit.LastSeq(), "healthy", cerr == nil)
		if cerr != nil && err == nil {
			err = cerr
		}
		if s.auditFile != nil {
			if cerr := s.auditFile.Close(); cerr != nil && err == nil {
				err = fmt.Errorf("closing audit file: %w", cerr)
			}
		}
	}()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := s.startPolicy(ctx); err != nil {
		return err
	}
	if err := watch.Files(ctx, []string{s.opts.tlsCertFile, s.opts.tlsKeyFile, s.opts.clientCAFile}, func() {
		if err := s.tls.Reload(); err != nil {
			s.log.Error("TLS files reload failed; keeping the previous ones", "error", err)
			return
		}
		s.log.Info("TLS certificate and client CA reloaded")
	}, func(err error) { s.log.Error("TLS file watcher", "error", err) }); err != nil {
		return err
	}

	agencyLn, err := net.Listen("tcp", s.opts.listenAddress)
	if err != nil {
		return fmt.Errorf("--listen-address: %w", err)
	}
	metricsLn, err := net.Listen("tcp", s.opts.metricsAddress)
	if err != nil {
		agencyLn.Close()
		return fmt.Errorf("--metrics-address: %w", err)
	}
	errorLog := slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)
	// Agencies get the strict HTTP/1.1 server (HTTP/2 by ALPN), with
	// net/http's timeout semantics; see gateway/h1server.
	agencySrv, err := h1server.New(h1server.Config{
		Handler:           s.gw,
		TLSConfig:         s.tls.Config(),
		ReadHeaderTimeout: s.opts.readHeaderTimeout,
		ReadTimeout:       s.opts.readTimeout,
		WriteTimeout:      s.opts.upstreamTimeout + 30*time.Second,
		IdleTimeout:       s.opts.idleTimeout,
		MaxHeaderBytes:    s.opts.maxHeaderBytes,
		MaxBodyBytes:      s.opts.maxRequestBody,
		// A filtered answer is never larger than the upstream body it
		// came from, plus the batch envelope.
		MaxResponseBytes: int(s.opts.maxUpstreamBody) + 64<<10,
		Refuse:           s.gw.Refuse,
		// HTTP/2 streams and connections refused below any request.
		ProtocolRefusal: s.gw.RefuseProtocol,
		Log:             s.log,
		// Each connection caches its certificate checks (gateway/certcheck.go).
		ConnContext:      s.gw.ConnContext,
		MaxConnectionAge: s.opts.maxConnectionAge,
		HTTP2Server:      h1server.HTTP2Server(s.opts.http2Server),
	})
	if err != nil {
		agencyLn.Close()
		metricsLn.Close()
		return err
	}
	metricsSrv := &http.Server{
		Handler:           s.metricsMux(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          errorLog,
	}
	errc := make(chan error, 2)
	go func() { errc <- agencySrv.Serve(agencyLn) }()
	go func() { errc <- metricsSrv.Serve(metricsLn) }()
	s.log.Info("serving", "agencies", agencyLn.Addr().String(), "metrics", metricsLn.Addr().String())
	if onListen != nil {
		onListen(agencyLn.Addr().String(), metricsLn.Addr().String())
	}

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	s.log.Info("shutting down", "grace", s.opts.shutdownGrace)
	shutdownCtx, done := context.WithTimeout(context.Background(), s.opts.shutdownGrace)
	defer done()
	if err := agencySrv.Shutdown(shutdownCtx); err != nil {
		serveErr = errors.Join(serveErr, fmt.Errorf("draining agency requests: %w", err))
	}
	if err := metricsSrv.Shutdown(shutdownCtx); err != nil {
		serveErr = errors.Join(serveErr, fmt.Errorf("stopping metrics server: %w", err))
	}
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	return serveErr
}

func (s *server) metricsMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metrics.Handler())
	mux.Handle("GET /auditz", audit.StateHandler(s.audit))
	// Where the limits are counted, for the operator's RateLimitShared.
	mux.Handle("GET /ratelimitz", ratelimit.StateHandler(s.limits))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !s.gw.Ready() {
			http.Error(w, "policy not loaded", http.StatusServiceUnavailable)
			return
		}
		// Requests are refused while audit records cannot be written:
		// send them to another replica until the sink works again.
		if !s.audit.Healthy() {
			http.Error(w, "audit sink unavailable", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok\n")
	})
	return mux
}
