package gateway

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

var errSinkFull = errors.New("no space left on device")

// TestAuditFailsClosed: while the audit sink refuses writes, a request
// gets 503 audit_unavailable and none of the citizen's data; the gateway
// recovers by itself when the sink does, and the 503 answers are recorded
// then.
func TestAuditFailsClosed(t *testing.T) {
	h := newHarness(t, nil)
	in := id(t, 7)
	name := h.gen.Record(7).FullName
	if w := h.do("BYT", "GET", "/v1/citizens/"+in, ""); w.Code != http.StatusOK {
		t.Fatalf("healthy sink: %d %s", w.Code, w.Body)
	}

	h.out.setFail(true)
	var refused []string
	for _, req := range []struct{ method, target, body string }{
		{"GET", "/v1/citizens/" + in, ""},
		{"POST", "/v1/citizens:verify", `{"nationalId":"` + in + `","fullName":"` + name + `"}`},
		{"POST", "/v1/citizens:batchLookup", `{"nationalIds":["` + in + `"]}`},
		{"GET", "/v1/citizens/12345", ""}, // a refusal needs its record too
	} {
		w := h.do("BYT", req.method, req.target, req.body)
		if w.Code != http.StatusServiceUnavailable || errorCode(t, w) != "audit_unavailable" {
			t.Fatalf("%s %s with a failing audit sink: %d %s", req.method, req.target, w.Code, w.Body)
		}
		if strings.Contains(w.Body.String(), name) {
			t.Fatalf("citizen data answered without its audit record: %s", w.Body)
		}
		refused = append(refused, w.Header().Get("X-Request-Id"))
	}
	w := httptest.NewRecorder()
	h.gw.Refuse(w, nil, http.StatusBadRequest) // refused by the HTTP server
	if w.Code != http.StatusServiceUnavailable || errorCode(t, w) != "audit_unavailable" {
		t.Fatalf("HTTP-level refusal with a failing audit sink: %d %s", w.Code, w.Body)
	}
	refused = append(refused, w.Header().Get("X-Request-Id"))
	if h.audit.WriteErrors() == 0 {
		t.Fatal("no write error counted")
	}
	if h.audit.Healthy() {
		t.Fatal("audit reports healthy while its sink fails")
	}

	h.out.setFail(false)
	w = h.do("BYT", "GET", "/v1/citizens/"+in, "")
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), name) {
		t.Fatalf("after the sink recovered: %d %s", w.Code, w.Body)
	}
	if !h.audit.Healthy() {
		t.Fatal("audit still unhealthy after a successful write")
	}
	for _, id := range refused {
		rec := h.auditRecord(t, id)
		if rec["status"] != 503.0 || rec["reason"] != "audit_unavailable" {
			t.Fatalf("record of a refused request: %v", rec)
		}
	}
}

// panicBody panics when the handler reads the request body: a bug
// anywhere under ServeHTTP.
type panicBody struct{}

func (panicBody) Read([]byte) (int, error) { panic("reading the body failed badly") }
func (panicBody) Close() error             { return nil }

// TestPanicLeavesRecord: a handler panic is answered 500 internal, closes
// the connection, and leaves an audit record.
func TestPanicLeavesRecord(t *testing.T) {
	h := newHarness(t, nil)
	r := httptest.NewRequest("POST", "/v1/citizens:verify", nil)
	r.Body = panicBody{}
	u, _ := url.Parse("spiffe://popconnect.io/agency/BYT")
	r.TLS = &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{{URIs: []*url.URL{u}}}}}
	w := httptest.NewRecorder()
	func() {
		defer func() {
			if v := recover(); v != nil {
				t.Errorf("the panic escaped ServeHTTP: %v", v)
			}
		}()
		h.gw.ServeHTTP(w, r)
	}()
	if w.Code != http.StatusInternalServerError || errorCode(t, w) != "internal" || w.Header().Get("Connection") != "close" {
		t.Fatalf("answer to a panic: %d %v %s", w.Code, w.Header(), w.Body)
	}
	rec := h.auditRecord(t, w.Header().Get("X-Request-Id"))
	if rec["status"] != 500.0 || rec["reason"] != "internal" || rec["agency"] != "BYT" || rec["operation"] != "Verify" {
		t.Fatalf("record of a panicking request: %v", rec)
	}
	var again map[string]any
	if err := json.Unmarshal(h.do("BYT", "GET", "/v1/citizens/"+id(t, 7), "").Body.Bytes(), &again); err != nil || again["fullName"] == nil {
		t.Fatalf("the gateway serves on after a panic: %v %v", again, err)
	}
}
