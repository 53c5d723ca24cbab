package gateway

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// A TLS handshake verifies the client's chain once, but a keep-alive
// connection can live for hours: its certificate can expire, its CA can be
// rotated out and its digest can be removed from the agency's pins (that
// is how a certificate is revoked) while it keeps sending requests. So
// every request re-checks the connection's certificate, cheaply: what is
// costly (the leaf's digest, a chain verification) is computed once per
// connection and kept in the connection's context until the client CA
// changes; a request then costs a context lookup, a time comparison and a
// map lookup.

// connCertKey is the context key of a connection's *connCert.
type connCertKey struct{}

// connCert is what the gateway remembers of one client connection.
type connCert struct {
	// acceptGen is the client CA generation in force when the connection
	// was accepted, before its handshake. Generations only grow, so when a
	// request sees the same generation, the handshake was verified by
	// this very pool and need not be repeated.
	acceptGen uint64
	verdict   atomic.Pointer[certVerdict]
}

// certVerdict is the result of checking a connection's chain under one
// client CA generation. Immutable once published.
type certVerdict struct {
	leaf      *x509.Certificate // the chain this verdict is about
	caGen     uint64
	digest    [sha256.Size]byte // of the leaf's DER, what pins name
	notAfter  time.Time         // when the chain stops being valid
	untrusted bool              // no chain to the current client CA pool
}

// ConnContext gives a client connection its certificate cache. The agency
// listener's server calls it for every accepted connection, before the
// TLS handshake (h1server.Config.ConnContext, http.Server.ConnContext).
// Without it the gateway stays correct but checks every request from
// scratch, a chain verification included when ClientCAs is set.
func (g *Gateway) ConnContext(ctx context.Context, _ net.Conn) context.Context {
	cc := &connCert{}
	if g.cfg.ClientCAs != nil {
		_, cc.acceptGen = g.cfg.ClientCAs()
	}
	return context.WithValue(ctx, connCertKey{}, cc)
}

// checkCertificate refuses a request whose connection's certificate chain
// has expired (by the gateway's clock), no longer verifies against the
// client CA in force, or is not among the agency's pinned certificates.
// Each refusal also closes the connection: the client has to come back
// with a new handshake, which the TLS layer checks in full.
func (g *Gateway) checkCertificate(x *exchange, a *agencyState) *apiError {
	v := g.certVerdict(x.r, x.rec.Time)
	var e *apiError
	switch {
	case x.rec.Time.After(v.notAfter):
		e = errorf(http.StatusForbidden, "certificate_expired", fmt.Sprintf(
			"the client certificate chain expired at %s; connect again with a renewed certificate",
			v.notAfter.UTC().Format(time.RFC3339)))
	case v.untrusted:
		e = errorf(http.StatusForbidden, "certificate_untrusted",
			"the client certificate no longer verifies against the gateway's client CA; connect again with a certificate issued by the current CA")
	case a.pinned && !a.pins.has(v.digest):
		e = errorf(http.StatusForbidden, "certificate_not_pinned", fmt.Sprintf(
			"the client certificate (SHA-256 %s) is not one of the certificates issued for agency %s's connection, or it was revoked; connect with the agency's current certificate",
			hex.EncodeToString(v.digest[:]), a.entry.AgencyCode))
	default:
		return nil
	}
	x.w.Header()["Connection"] = connectionClose
	return e
}

// connectionClose is the Connection header value of a refusal that ends
// its connection (h1server and net/http close after the answer; HTTP/2
// sends GOAWAY). Shared and read-only: len == cap, so nothing appends
// into it.
var connectionClose = []string{"close"}

// certVerdict returns the verdict on the request's chain under the client
// CA in force, from the connection's cache when it is still current.
func (g *Gateway) certVerdict(r *http.Request, now time.Time) *certVerdict {
	st := r.TLS
	leaf := st.VerifiedChains[0][0] // identity.AgencyFromChains checked there is one
	var pool *x509.CertPool
	var gen uint64
	if g.cfg.ClientCAs != nil {
		pool, gen = g.cfg.ClientCAs()
	}
	cc, _ := r.Context().Value(connCertKey{}).(*connCert)
	if cc != nil {
		if v := cc.verdict.Load(); v != nil && v.leaf == leaf && v.caGen == gen {
			return v
		}
	}
	v := &certVerdict{leaf: leaf, caGen: gen, digest: sha256.Sum256(leaf.Raw)}
	chains := st.VerifiedChains
	if pool != nil && (cc == nil || cc.acceptGen != gen) {
		var err error
		chains, err = leaf.Verify(x509.VerifyOptions{
			Roots:         pool,
			Intermediates: intermediates(st),
			CurrentTime:   now,
			KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		})
		if err != nil {
			v.untrusted = true
			chains = st.VerifiedChains // still tells when it expires
		}
	}
	v.notAfter = validUntil(chains)
	if cc != nil {
		cc.verdict.Store(v)
	}
	return v
}

// intermediates are the certificates the client sent after its leaf, as
// the TLS handshake used them.
func intermediates(st *tls.ConnectionState) *x509.CertPool {
	p := x509.NewCertPool()
	if len(st.PeerCertificates) > 1 {
		for _, c := range st.PeerCertificates[1:] {
			p.AddCert(c)
		}
		return p
	}
	for _, c := range st.VerifiedChains[0][1:] {
		p.AddCert(c)
	}
	return p
}

// validUntil is the last instant at which one of the chains is still
// valid: a chain is valid until the earliest NotAfter among its
// certificates (leaf, intermediates and root, as x509 verification checks
// them all).
func validUntil(chains [][]*x509.Certificate) time.Time {
	var best time.Time
	for _, chain := range chains {
		var end time.Time
		for i, c := range chain {
			if i == 0 || c.NotAfter.Before(end) {
				end = c.NotAfter
			}
		}
		if end.After(best) {
			best = end
		}
	}
	return best
}

// pinSet is an agency's pinned certificate digests.
type pinSet map[[sha256.Size]byte]struct{}

func (p pinSet) has(d [sha256.Size]byte) bool {
	_, ok := p[d]
	return ok
}

// compilePins decodes an entry's certificateSHA256 (already validated as
// 64 lowercase hex digits each) into a set.
func compilePins(hexDigests []string) (pinSet, error) {
	p := make(pinSet, len(hexDigests))
	for _, h := range hexDigests {
		var d [sha256.Size]byte
		if len(h) != hex.EncodedLen(len(d)) {
			return nil, fmt.Errorf("certificateSHA256 %q is not a hex SHA-256", h)
		}
		if _, err := hex.Decode(d[:], []byte(h)); err != nil {
			return nil, fmt.Errorf("certificateSHA256 %q is not a hex SHA-256", h)
		}
		p[d] = struct{}{}
	}
	return p, nil
}
