package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/popconnect/popconnect/gateway/audit"
	"github.com/popconnect/popconnect/gateway/filter"
	"github.com/popconnect/popconnect/gateway/identity"
	"github.com/popconnect/popconnect/gateway/policy"
)

// exchange is one request in flight: what the handlers fill in for the
// audit record and the metrics. Exchanges are pooled with their buffers, so
// a request in the steady state allocates little beyond what net/http does.
// Nothing may keep a reference into an exchange after ServeHTTP returns:
// the audit logger encodes the record before Write returns, and net/http
// copies the header values (at WriteHeader) and the body (in Write).
type exchange struct {
	w      http.ResponseWriter
	r      *http.Request
	rec    audit.Record
	agency *agencyState
	buf    bytes.Buffer // request body, then the upstream body
	out    []byte       // response body
	seen   filter.Seen
	// id is a Lookup's national ID, parsed from the path ("" when invalid).
	id string
	// body is a Verify or BatchLookup body once read (bodyRead).
	body     []byte
	bodyErr  *apiError
	bodyRead bool
	// caseErr refuses an invalid Popconnect-Case-Reference (admit).
	caseErr *apiError
	// started is when ServeHTTP began, by time.Now: its monotonic
	// reading times the request (latency, the upstream deadline).
	started time.Time

	// Backing storage for the common case, reused with the exchange.
	hash1  [1]string // rec.NationalIDHashes of one ID
	fields []string  // rec.FieldsReturned
	reqID  [32]byte
	// hdr backs the two per-request header values (X-Request-Id and
	// Content-Length): one allocation for both. It is new for every request,
	// never reused: a ResponseWriter may read its header map after
	// ServeHTTP returns (httptest.ResponseRecorder does).
	hdr []string

	// answer is the 200 body writeJSON keeps until the record is committed.
	answer []byte
	// committed: the audit record is in the sink; what happens after
	// (sending the answer) needs no other record.
	committed bool
}

// maxPooledBuffer bounds the buffers an exchange keeps when it goes back
// to the pool: a rare large batch must not pin its memory.
const maxPooledBuffer = 256 << 10

func (g *Gateway) getExchange(w http.ResponseWriter, r *http.Request) *exchange {
	x, _ := g.exchanges.Get().(*exchange)
	if x == nil {
		x = &exchange{}
	}
	x.w, x.r = w, r
	return x
}

func (g *Gateway) putExchange(x *exchange) {
	if x.buf.Cap() > maxPooledBuffer || cap(x.out) > maxPooledBuffer {
		return
	}
	x.buf.Reset()
	x.seen.Reset()
	*x = exchange{
		buf:    x.buf,
		out:    x.out[:0],
		seen:   x.seen,
		fields: x.fields[:0],
	}
	g.exchanges.Put(x)
}

// ServeHTTP authenticates, authorises, rate-limits and dispatches one
// request, commits its audit record, then answers: no answer leaves
// before its record is in the audit sink (see commit.go).
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	started := time.Now()
	x := g.getExchange(w, r)
	x.started = started
	// A panic leaves a record too; its exchange is not reused.
	defer g.recoverPanic(x, started)
	if g.wallClock {
		x.rec.Time = started
	} else {
		x.rec.Time = g.cfg.Now()
	}
	// One allocation for the ID: prefix and sequence are formatted into a
	// reused array and converted once.
	id := append(x.reqID[:0], g.reqPrefix...)
	x.rec.RequestID = string(strconv.AppendUint(id, g.reqSeq.Add(1), 36))
	x.hdr = make([]string, 2)
	x.hdr[0] = x.rec.RequestID
	h := w.Header()
	h["X-Request-Id"] = x.hdr[0:1:1]
	// Constant values share one read-only slice each (len == cap, so an
	// Add elsewhere copies rather than writes into it).
	h["Cache-Control"] = g.hdrNoStore
	h["X-Content-Type-Options"] = g.hdrNosniff

	g.respond(x, g.serve(x), started)
	g.putExchange(x)
}

func (g *Gateway) serve(x *exchange) *apiError {
	op, apiErr := route(x.r)
	x.rec.Operation = string(op)
	x.rec.Batch = op == policy.OperationBatchLookup // its hashes are a list, even an empty one
	if op == policy.OperationLookup || op == policy.OperationAccessHistory {
		// A Lookup or AccessHistory names its citizen in the path, so the
		// audit record carries the hash whatever happens next, refusals
		// included.
		parse := parseLookupPath
		if op == policy.OperationAccessHistory {
			parse = parseHistoryPath
		}
		if id, err := parse(x.r.URL.Path); err == nil {
			x.id = id
			x.hash1[0] = g.cfg.Audit.Hash(id)
			x.rec.NationalIDHashes = x.hash1[:]
		}
	}
	// The case reference is recorded whatever happens next, refusals
	// included; an invalid one is refused once the agency is admitted
	// that far (admit), and never recorded.
	x.rec.CaseReference, x.caseErr = caseReference(x.r.Header)
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
	case policy.OperationAccessHistory:
		return g.accessHistory(x)
	default:
		return g.batchLookup(x)
	}
}

// auditBodyIDs records the citizens a refused Verify or BatchLookup of an
// identified agency named: a suspended, expired or throttled agency asking
// about someone is what an auditor looks for. The body is read (bounded, as
// always) only for this; net/http would read and discard it anyway to keep
// the connection. Only the IDs are extracted (bodyIDs), not the request
// parsed: what the refusal does not need costs nothing. What cannot be
// parsed is left out, and the refusal stays the answer.
func (g *Gateway) auditBodyIDs(x *exchange, op policy.Operation) {
	if op != policy.OperationVerify && op != policy.OperationBatchLookup {
		return
	}
	body, err := g.readBody(x)
	if err != nil {
		return
	}
	ids, _ := bodyIDs(op, body)
	if op == policy.OperationVerify {
		if len(ids) == 1 {
			g.auditVerifyID(x, &verifyRequest{nationalID: ids[0]})
		}
	} else {
		g.auditBatchIDs(x, ids)
	}
}

// admit applies the agency's policy: known, in agreement, not suspended or
// expired, the operation allowed, the connection's certificate still valid,
// trusted and pinned (certcheck.go), within its rate and quota. These cheap
// refusals happen before the body is read. A BatchLookup is charged later,
// by batchLookup, once its IDs are counted: it costs one request per ID.
func (g *Gateway) admit(x *exchange, op policy.Operation, code string) *apiError {
	st := g.state.Load()
	if st == nil {
		return errorf(http.StatusServiceUnavailable, "policy_not_loaded", "the gateway has not loaded its policy yet")
	}
	a := st.agencies[code]
	if a != nil {
		// Every record of a known agency carries its purpose and name,
		// refusals too, and, with a disclosure delay, when the read may be
		// disclosed to the citizen: fixed now, so that a later change of
		// the delay neither hides nor reveals this read.
		x.rec.Purpose, x.rec.AgencyName = a.entry.Purpose, a.entry.DisplayName
		if a.delay > 0 {
			x.rec.DiscloseAfter = x.rec.Time.Add(a.delay)
		}
	}
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
	// Before the limiter: a certificate refused here must not spend the
	// agency's tokens.
	if e := g.checkCertificate(x, a); e != nil {
		return e
	}
	// Before the limiter too: a request the agency must correct costs
	// nothing of its rate.
	if x.caseErr != nil {
		return x.caseErr
	}
	if a.entry.RequireCaseReference && x.rec.CaseReference == "" {
		return errorf(http.StatusBadRequest, "case_reference_required",
			fmt.Sprintf("agency %s must name its case in the %s header", code, CaseReferenceHeader))
	}
	x.agency = a
	if op == policy.OperationBatchLookup {
		return nil
	}
	return g.charge(x, op, 1)
}

// charge takes n requests (n national IDs) from the admitted agency's rate
// and daily quota, all or nothing.
func (g *Gateway) charge(x *exchange, op policy.Operation, n int) *apiError {
	a, code := x.agency, x.rec.Agency
	d := a.limiter.AllowN(x.rec.Time, n)
	switch {
	case d.Allowed:
		return nil
	case d.QuotaExceeded:
		g.cfg.Metrics.QuotaRefused(code, string(op))
		q := *a.entry.RateLimit.DailyQuota
		msg := fmt.Sprintf("agency %s has used its daily quota of %d requests", code, q)
		if d.Never {
			msg = fmt.Sprintf("a batch of %d national IDs costs %d requests, more than agency %s's daily quota of %d: split it", n, n, code, q)
		} else if n > 1 {
			msg = fmt.Sprintf("a batch of %d national IDs costs %d requests, more than agency %s has left of its daily quota of %d", n, n, code, q)
		}
		e := errorf(http.StatusTooManyRequests, "quota_exceeded", msg)
		e.retryAfter = d.RetryAfter
		return e
	default:
		g.cfg.Metrics.RateLimited(code, string(op))
		msg := fmt.Sprintf("agency %s is over its rate of %d requests per second", code, a.entry.RateLimit.RequestsPerSecond)
		if d.Never {
			// No Retry-After: waiting never makes such a batch pass.
			msg = fmt.Sprintf("a batch of %d national IDs costs %d requests, more than agency %s's burst of %d: it can never pass, split it", n, n, code, a.entry.RateLimit.Burst)
		}
		e := errorf(http.StatusTooManyRequests, "rate_limited", msg)
		e.retryAfter = d.RetryAfter
		return e
	}
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
	case len(p) >= len(lookupPrefix)+len(historySuffix) && p[:len(lookupPrefix)] == lookupPrefix &&
		p[len(p)-len(historySuffix):] == historySuffix:
		op, method = policy.OperationAccessHistory, http.MethodGet
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

// writeJSON keeps the 200 answer: ServeHTTP sends it (sendJSON) once the
// audit record is committed.
func (x *exchange) writeJSON(_ *Gateway, body []byte) { x.answer = body }

// sendJSON answers 200 with the gateway's own headers and body; the
// Content-Length lets net/http send it without chunking.
func (x *exchange) sendJSON(g *Gateway) {
	h := x.w.Header()
	h["Content-Type"] = g.hdrJSON
	var n [20]byte
	x.hdr[1] = string(strconv.AppendInt(n[:0], int64(len(x.answer)), 10))
	h["Content-Length"] = x.hdr[1:2:2]
	x.w.WriteHeader(http.StatusOK)
	_, _ = x.w.Write(x.answer)
}

func fieldNotAllowed(agency, field string) *apiError {
	return errorf(http.StatusForbidden, "field_not_allowed", fmt.Sprintf("agency %s may not read field %s", agency, field))
}
