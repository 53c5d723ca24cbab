package gateway

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"strconv"

	"github.com/popconnect/popconnect/gateway/audit"
	"github.com/popconnect/popconnect/gateway/identity"
)

// Refuse answers a request that the agency listener's HTTP server refused
// before ServeHTTP saw it (malformed, a body too large or not framed by
// Content-Length, an unknown Expect or HTTP version, a response too large
// to send), with the gateway's JSON error and headers, so that agencies
// get one error format. It is audited and counted like any refusal: the
// agency from the connection's verified certificate (when there is one),
// operation "unknown", the status and the error code. Nothing of the
// refused request is read, so nothing of it is echoed or recorded. As
// every answer, it leaves only once its record is committed (else 503
// audit_unavailable).
func (g *Gateway) Refuse(w http.ResponseWriter, state *tls.ConnectionState, status int) {
	e := protocolError(status, g.cfg.MaxRequestBodyBytes)
	rec := audit.Record{Time: g.cfg.Now(), Operation: "unknown", Status: status, Reason: e.code}
	if state != nil {
		if code, err := identity.AgencyFromChains(state.VerifiedChains); err == nil {
			rec.Agency = code
		}
	}
	var id [32]byte
	rec.RequestID = string(strconv.AppendUint(append(id[:0], g.reqPrefix...), g.reqSeq.Add(1), 36))
	h := w.Header()
	h["X-Request-Id"] = []string{rec.RequestID}
	h["Cache-Control"] = g.hdrNoStore
	h["X-Content-Type-Options"] = g.hdrNosniff
	if !g.commit(&rec) {
		e, status = errAuditUnavailable(), http.StatusServiceUnavailable
	}
	e.write(w, nil)
	g.cfg.Metrics.Request(rec.Agency, rec.Operation, status, 0)
}

// protocolError is the error answered for an HTTP-level refusal.
func protocolError(status int, maxBody int64) *apiError {
	switch status {
	case http.StatusRequestEntityTooLarge:
		return errorf(status, "body_too_large", fmt.Sprintf("the body is limited to %d bytes", maxBody))
	case http.StatusLengthRequired:
		return errorf(status, "length_required", "a request body needs a Content-Length; chunked transfer coding is not accepted")
	case http.StatusRequestHeaderFieldsTooLarge:
		return errorf(status, "headers_too_large", "the request header is too large")
	case http.StatusExpectationFailed:
		return errorf(status, "expectation_failed", "only Expect: 100-continue is supported")
	case http.StatusHTTPVersionNotSupported:
		return errorf(status, "http_version_not_supported", "use HTTP/1.1 or HTTP/2")
	case http.StatusInternalServerError:
		return errorf(status, "internal", "the response could not be sent")
	default:
		return errorf(status, "invalid_request", "malformed HTTP request")
	}
}

// RefuseProtocol audits an HTTP/2 stream or connection that the agency
// listener's HTTP/2 server refused on its own, below any request (a stream
// reset with an error code, a connection ended with one; see
// h1server.Config.ProtocolRefusal): the agency from the connection's
// verified certificate, operation "unknown", status 0 (no HTTP answer was
// sent) and the reason, e.g. "h2_stream_refused_stream". Nothing of the
// refused frames is recorded. The record is queued, not waited for: it
// runs on the connection's writer, and there is no answer to hold back.
func (g *Gateway) RefuseProtocol(state *tls.ConnectionState, reason string) {
	rec := audit.Record{Time: g.cfg.Now(), Operation: "unknown", Reason: reason}
	if state != nil {
		if code, err := identity.AgencyFromChains(state.VerifiedChains); err == nil {
			rec.Agency = code
		}
	}
	var id [32]byte
	rec.RequestID = string(strconv.AppendUint(append(id[:0], g.reqPrefix...), g.reqSeq.Add(1), 36))
	g.cfg.Audit.Queue(&rec)
}
