// Package gateway is the popconnect data plane: an mTLS reverse proxy in
// front of the population-database API that identifies agencies by their
// client certificates and enforces their policy (operations, field
// allow-list, rate limit, daily quota, suspension and end date), auditing
// every request.
package gateway

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/popconnect/popconnect/gateway/audit"
	"github.com/popconnect/popconnect/gateway/metrics"
	"github.com/popconnect/popconnect/gateway/policy"
	"github.com/popconnect/popconnect/gateway/ratelimit"
	"github.com/popconnect/popconnect/gateway/verifylimit"
)

// Config configures a Gateway.
type Config struct {
	// UpstreamURL is the population-database API base URL.
	UpstreamURL *url.URL
	// UpstreamTLS verifies an https upstream (nil: system roots).
	UpstreamTLS *tls.Config
	// MaxIdleUpstreamConns bounds the idle keep-alive connections kept to
	// the upstream.
	MaxIdleUpstreamConns int
	// UpstreamTimeout bounds one upstream call.
	UpstreamTimeout time.Duration
	// MaxRequestBodyBytes bounds Verify and BatchLookup bodies.
	MaxRequestBodyBytes int64
	// MaxUpstreamBodyBytes bounds what the gateway reads from upstream.
	MaxUpstreamBodyBytes int64
	// MaxUpstreamHeaderBytes bounds an upstream response header
	// (DefaultMaxUpstreamHeaderBytes when zero).
	MaxUpstreamHeaderBytes int64
	// Location is the zone whose midnight resets daily quotas.
	Location *time.Location
	// RateLimits counts the agencies' rates and daily quotas: nil counts
	// them in this process (ratelimit.Local), a *ratelimit.Redis in Redis,
	// shared by the replicas.
	RateLimits ratelimit.Store
	// Now is the clock; tests inject one.
	Now func() time.Time
	// Audit receives one record per request.
	Audit *audit.Logger
	// Metrics receives request and policy metrics.
	Metrics *metrics.Metrics
	// Log is the operational log. It never receives national IDs.
	Log *slog.Logger
	// ClientCAs, when set, returns the client CA pool in force and its
	// generation (tlsconfig.Server.ClientCAs): the chain of an open
	// connection is verified again against the pool whenever the
	// generation changes, so a rotated-out CA stops being trusted on
	// connections made before the rotation. nil: the handshake's
	// verification is the only one (tests of the handler alone).
	ClientCAs func() (*x509.CertPool, uint64)
	// VerifyGuessCitizens bounds, per agency, the citizens whose Verify
	// mismatches in the last 24 h are remembered (DefaultVerifyGuessCitizens
	// when zero); see verify.go.
	VerifyGuessCitizens int
	// History answers AccessHistory from the audit store; nil without the
	// PostgreSQL sink (AccessHistory is then 503 history_unavailable).
	History HistoryStore
}

// Gateway serves agencies. Create it with New, give it a policy with
// SetPolicy, and serve it over TLS with client certificates required.
type Gateway struct {
	cfg       Config
	upstream  *upstreamPool
	state     atomic.Pointer[state]
	swapMu    sync.Mutex // serialises compiles; readers never take it
	reqPrefix string
	reqSeq    atomic.Uint64
	exchanges sync.Pool // *exchange
	guesses   *verifylimit.Guard
	// Header values the gateway always sends, shared by every response:
	// net/http only reads them (and clones the map at WriteHeader).
	hdrNoStore, hdrNosniff, hdrJSON []string
	// wallClock: cfg.Now is time.Now, so a request's start time is its
	// record's time too (one clock read fewer per request).
	wallClock bool
}

// New validates cfg and returns a gateway with no policy: every request is
// refused with 503 until SetPolicy is called.
func New(cfg Config) (*Gateway, error) {
	if cfg.UpstreamURL == nil || (cfg.UpstreamURL.Scheme != "http" && cfg.UpstreamURL.Scheme != "https") || cfg.UpstreamURL.Host == "" {
		return nil, errors.New("gateway: the upstream URL must be an absolute http:// or https:// URL")
	}
	if cfg.Audit == nil || cfg.Metrics == nil || cfg.Log == nil || cfg.Location == nil {
		return nil, errors.New("gateway: Audit, Metrics, Log and Location are required")
	}
	if cfg.MaxIdleUpstreamConns <= 0 {
		cfg.MaxIdleUpstreamConns = 1024
	}
	if cfg.RateLimits == nil {
		cfg.RateLimits = ratelimit.Local{}
	}
	wallClock := cfg.Now == nil
	if wallClock {
		cfg.Now = time.Now
	}
	if cfg.UpstreamTimeout <= 0 {
		cfg.UpstreamTimeout = 5 * time.Second
	}
	if cfg.MaxRequestBodyBytes <= 0 {
		cfg.MaxRequestBodyBytes = 64 << 10
	}
	if cfg.MaxUpstreamBodyBytes <= 0 {
		cfg.MaxUpstreamBodyBytes = 8 << 20
	}
	if cfg.VerifyGuessCitizens <= 0 {
		cfg.VerifyGuessCitizens = DefaultVerifyGuessCitizens
	}
	var prefix [6]byte
	if _, err := rand.Read(prefix[:]); err != nil {
		return nil, fmt.Errorf("gateway: request ID prefix: %w", err)
	}
	// The pool never follows redirects: a redirect could send the agency's
	// request somewhere the operator did not configure.
	g := &Gateway{
		cfg:        cfg,
		upstream:   newUpstreamPool(cfg.UpstreamURL, cfg.UpstreamTLS, cfg.MaxIdleUpstreamConns, cfg.MaxUpstreamHeaderBytes),
		reqPrefix:  hex.EncodeToString(prefix[:]) + "-",
		hdrNoStore: []string{"no-store"}, hdrNosniff: []string{"nosniff"}, hdrJSON: []string{"application/json"},
		guesses:   newGuessGuard(cfg.VerifyGuessCitizens),
		wallClock: wallClock,
	}
	return g, nil
}

// Close releases the idle upstream connections.
func (g *Gateway) Close() { g.upstream.closeIdle() }

// SetPolicy compiles m and swaps it in atomically. Requests in flight finish
// with the policy they started with.
func (g *Gateway) SetPolicy(m policy.Merged) error {
	start := time.Now()
	g.swapMu.Lock()
	defer g.swapMu.Unlock()
	next, err := compileWith(m, g.state.Load(), g.cfg.Location, g.cfg.RateLimits)
	if err != nil {
		g.cfg.Metrics.PolicyLoadError()
		return fmt.Errorf("compiling policy %q: %w", m.Version, err)
	}
	g.state.Store(next)
	g.cfg.Metrics.PolicyLoaded(m.Version, len(next.agencies), time.Since(start))
	g.cfg.Log.Info("policy loaded", "version", m.Version, "agencies", len(m.Agencies), "conflicts", m.Conflicts)
	return nil
}

// PolicyVersion is the version of the policy in force, "" before the first.
func (g *Gateway) PolicyVersion() string {
	if s := g.state.Load(); s != nil {
		return s.version
	}
	return ""
}

// Ready reports whether a policy has been loaded.
func (g *Gateway) Ready() bool { return g.state.Load() != nil }
