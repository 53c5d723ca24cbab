package gateway

import (
	"fmt"
	"net/http"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/popconnect/popconnect/gateway/audit"
	"github.com/popconnect/popconnect/gateway/policy"
)

// respond commits the request's audit record, then sends its answer: the
// kept 200 body, or apiErr. When the record cannot be committed the agency
// gets 503 audit_unavailable instead, whatever the answer was (the gateway
// fails closed), and the record of that 503 is queued for when the sink
// works again.
func (g *Gateway) respond(x *exchange, apiErr *apiError, started time.Time) {
	status := http.StatusOK
	if apiErr != nil {
		status = apiErr.status
		x.rec.Reason = apiErr.code
	}
	x.rec.Status = status
	x.rec.Latency = time.Since(started)
	if !g.commit(&x.rec) {
		apiErr, status = errAuditUnavailable(), http.StatusServiceUnavailable
	}
	x.committed = true
	if apiErr != nil {
		x.out = apiErr.write(x.w, x.out[:0])
	} else {
		x.sendJSON(g)
	}
	if x.agency != nil {
		op := policy.Operation(x.rec.Operation)
		x.agency.metricsOf(g.cfg.Metrics).Request(opSlot(op), x.rec.Operation, status, x.rec.Latency)
	} else {
		g.cfg.Metrics.Request(x.rec.Agency, x.rec.Operation, status, x.rec.Latency)
	}
}

// errAuditUnavailable is the answer to a request whose audit record could
// not be written.
func errAuditUnavailable() *apiError {
	return errorf(http.StatusServiceUnavailable, "audit_unavailable", "the gateway cannot write its audit log; retry later")
}

// commit writes rec to the audit sink and reports whether it is there.
// If not, rec becomes the record of the 503 audit_unavailable answered
// instead (no fields returned), queued for when the sink works again.
func (g *Gateway) commit(rec *audit.Record) bool {
	if err := g.cfg.Audit.Commit(rec); err == nil {
		return true
	}
	rec.Status, rec.Reason, rec.FieldsReturned = http.StatusServiceUnavailable, "audit_unavailable", nil
	g.cfg.Audit.Queue(rec)
	return false
}

// recoverPanic, deferred by ServeHTTP, turns a panic under it into a 500
// internal answer with its audit record, and closes the connection
// (Connection: close; HTTP/2 sends GOAWAY): the request's state is not to
// be trusted, so the exchange is dropped rather than pooled. A panic after
// the record was committed (while sending the answer) needs no other
// record; it goes on to the server, which drops the connection.
func (g *Gateway) recoverPanic(x *exchange, started time.Time) {
	v := recover()
	if v == nil {
		return
	}
	if x.committed {
		panic(v)
	}
	what := fmt.Sprintf("%T", v)
	if re, ok := v.(runtime.Error); ok {
		what = re.Error()
	}
	// Only the panic's type (or a runtime error's text) and the stack: a
	// panic value may hold request data.
	g.cfg.Log.Error("Handler panicked; request answered 500 and connection closed",
		"panic", what, "requestId", x.rec.RequestID, "stack", string(debug.Stack()))
	if x.rec.Time.IsZero() {
		x.rec.Time = g.cfg.Now()
	}
	x.rec.Status, x.rec.Reason, x.rec.FieldsReturned = http.StatusInternalServerError, "internal", nil
	x.rec.Latency = time.Since(started)
	status := http.StatusInternalServerError
	apiErr := errorf(status, "internal", "the gateway failed to process the request")
	if !g.commit(&x.rec) {
		apiErr, status = errAuditUnavailable(), http.StatusServiceUnavailable
	}
	x.committed = true
	if v == http.ErrAbortHandler {
		panic(v) // the handler asked for the connection to be dropped
	}
	x.w.Header().Set("Connection", "close")
	x.out = apiErr.write(x.w, nil)
	g.cfg.Metrics.Request(x.rec.Agency, x.rec.Operation, status, x.rec.Latency)
}
