package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/popconnect/popconnect/gateway/audit"
	"github.com/popconnect/popconnect/gateway/identity"
	"github.com/popconnect/popconnect/gateway/policy"
)

// exchange is one request in flight: what the handlers fill in for the
// audit record and the metrics.
type exchange struct {
	w      http.ResponseWriter
	r      *http.Request
	rec    audit.Record
	agency *agencyState
	buf    *bytes.Buffer // upstream body
	out    *bytes.Buffer // response body
	// id is a Lookup's national ID, parsed from the path ("" when invalid).
	id string
	// body is a Verify or BatchLookup body once read (bodyRead).
	body     []byte
	bodyErr  *apiError
	bodyRead bool
}

// ServeHTTP authenticates, authorises, rate-limits and dispatches one
// request, then writes its audit record and metrics.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	started := time.Now()
	x := &exchange{w: w, r: r, buf: g.getBuf(), out: g.getBuf()}
	defer func() { g.putBuf(x.buf); g.putBuf(x.out) }()
	x.rec.Time = g.cfg.Now()
	x.rec.RequestID = g.reqPrefix + strconv.FormatUint(g.reqSeq.Add(1), 36)
	h := w.Header()
	h["X-Request-Id"] = []string{x.rec.RequestID}
	h["Cache-Control"] = []string{"no-store"}
	h["X-Content-Type-Options"] = []string{"nosniff"}

	status := http.StatusOK
	if err := g.serve(x); err != nil {
		status = err.status
		x.rec.Reason = err.code
		err.write(w, x.out.AvailableBuffer())
	}
	x.rec.Status = status
	x.rec.Latency = time.Since(started)
	g.cfg.Audit.Write(&x.rec)
	g.cfg.Metrics.Request(x.rec.Agency, x.rec.Operation, status, x.rec.Latency)
}

func (g *Gateway) serve(x *exchange) *apiError {
	op, apiErr := route(x.r)
	x.rec.Operation = string(op)
	x.rec.Batch = op == policy.OperationBatchLookup // its hashes are a list, even an empty one
	if op == policy.OperationLookup {
		// A Lookup names its citizen in the path, so the audit record carries
		// the hash whatever happens next, refusals included.
		if id, err := parseLookupPath(x.r.URL.Path); err == nil {
			x.id = id
			x.rec.NationalIDHashes = []string{g.cfg.Audit.Hash(id)}
		}
	}
	if apiErr != nil {
		if op == "" {
			x.rec.Operation = "unknown"
		}
		return apiErr
	}
	if x.r.TLS == nil {
		return errorf(http.StatusForbidden, "unauthenticated", "a verified client certificate is required")
	}
	code, err := identity.AgencyFromChains(x.r.TLS.VerifiedChains)
	if err != nil {
		return errorf(http.StatusForbidden, "unauthenticated", err.Error())
	}
	x.rec.Agency = code
	if apiErr := g.admit(x, op, code); apiErr != nil {
		g.auditBodyIDs(x, op)
		return apiErr
	}
	switch op {
	case policy.OperationLookup:
		return g.lookup(x)
	case policy.OperationVerify:
		return g.verify(x)
	default:
		return g.batchLookup(x)
	}
}

// auditBodyIDs records the citizens a refused Verify or BatchLookup of an
// identified agency named: a suspended, expired or throttled agency asking
// about someone is what an auditor looks for. The body is read (bounded, as
// always) only for this; net/http would read and discard it anyway to keep
// the connection. What cannot be parsed is left out, and the refusal stays
// the answer.
func (g *Gateway) auditBodyIDs(x *exchange, op policy.Operation) {
	if op != policy.OperationVerify && op != policy.OperationBatchLookup {
		return
	}
	body, err := g.readBody(x)
	if err != nil {
		return
	}
	if op == policy.OperationVerify {
		req, _ := parseVerifyBody(body)
		g.auditVerifyID(x, req)
	} else {
		ids, _ := parseBatchBody(body)
		g.auditBatchIDs(x, ids)
	}
}

// admit applies the agency's policy: known, in agreement, not suspended or
// expired, the operation allowed, within its rate and quota.
func (g *Gateway) admit(x *exchange, op policy.Operation, code string) *apiError {
	st := g.state.Load()
	if st == nil {
		return errorf(http.StatusServiceUnavailable, "policy_not_loaded", "the gateway has not loaded its policy yet")
	}
	a := st.agencies[code]
	now := x.rec.Time
	switch {
	case a == nil:
		return errorf(http.StatusForbidden, "agency_unknown", fmt.Sprintf("agency %s has no connection to this gateway", code))
	case a.conflict:
		return errorf(http.StatusForbidden, "policy_conflict", fmt.Sprintf("agency %s has conflicting policy entries; access is denied until they agree", code))
	case a.entry.Suspended:
		return errorf(http.StatusForbidden, "agency_suspended", fmt.Sprintf("agency %s is suspended", code))
	case a.entry.ValidUntil != nil && !now.Before(*a.entry.ValidUntil):
		return errorf(http.StatusForbidden, "agency_expired", fmt.Sprintf("the data-sharing agreement of agency %s ended at %s", code, a.entry.ValidUntil.UTC().Format(time.RFC3339)))
	case !a.ops.has(op):
		return errorf(http.StatusForbidden, "operation_not_allowed", fmt.Sprintf("agency %s may not perform %s", code, op))
	}
	x.agency = a
	if d := a.limiter.Allow(now); !d.Allowed {
		if d.QuotaExceeded {
			g.cfg.Metrics.QuotaRefused(code, string(op))
			e := errorf(http.StatusTooManyRequests, "quota_exceeded", fmt.Sprintf("agency %s has used its daily quota of %d requests", code, *a.entry.RateLimit.DailyQuota))
			e.retryAfter = d.RetryAfter
			return e
		}
		g.cfg.Metrics.RateLimited(code, string(op))
		e := errorf(http.StatusTooManyRequests, "rate_limited", fmt.Sprintf("agency %s is over its rate of %d requests per second", code, a.entry.RateLimit.RequestsPerSecond))
		e.retryAfter = d.RetryAfter
		return e
	}
	return nil
}

// route maps method and path to an operation.
func route(r *http.Request) (policy.Operation, *apiError) {
	var op policy.Operation
	method := http.MethodPost
	switch p := r.URL.Path; {
	case p == "/v1/citizens:verify":
		op = policy.OperationVerify
	case p == "/v1/citizens:batchLookup":
		op = policy.OperationBatchLookup
	case len(p) > len(lookupPrefix) && p[:len(lookupPrefix)] == lookupPrefix:
		op, method = policy.OperationLookup, http.MethodGet
	default:
		return "", errorf(http.StatusNotFound, "not_found", "no such endpoint")
	}
	if r.Method != method {
		e := errorf(http.StatusMethodNotAllowed, "method_not_allowed", fmt.Sprintf("%s takes %s", op, method))
		return op, e
	}
	return op, nil
}

// readBody reads a bounded request body, once.
func (g *Gateway) readBody(x *exchange) ([]byte, *apiError) {
	if x.bodyRead {
		return x.body, x.bodyErr
	}
	x.bodyRead = true
	_, err := x.buf.ReadFrom(http.MaxBytesReader(x.w, x.r.Body, g.cfg.MaxRequestBodyBytes))
	if err != nil {
		x.buf.Reset()
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			x.bodyErr = errorf(http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("the body is limited to %d bytes", g.cfg.MaxRequestBodyBytes))
		} else {
			x.bodyErr = errorf(http.StatusBadRequest, "invalid_request", "could not read the request body")
		}
		return nil, x.bodyErr
	}
	// x.buf is about to receive the upstream answer.
	x.body = append([]byte(nil), x.buf.Bytes()...)
	x.buf.Reset()
	return x.body, nil
}

// writeJSON answers 200 with the gateway's own headers and body.
func writeJSON(w http.ResponseWriter, body []byte) {
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

func fieldNotAllowed(agency, field string) *apiError {
	return errorf(http.StatusForbidden, "field_not_allowed", fmt.Sprintf("agency %s may not read field %s", agency, field))
}
