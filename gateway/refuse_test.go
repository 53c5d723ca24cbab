package gateway

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// TestRefuse: a request the HTTP server refused gets the gateway's JSON
// error and headers, and one audit record naming the verified agency.
func TestRefuse(t *testing.T) {
	h := newHarness(t, nil)
	u, _ := url.Parse("spiffe://popconnect.io/agency/BYT")
	state := &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{{URIs: []*url.URL{u}}}}}
	for _, tc := range []struct {
		status int
		code   string
	}{
		{http.StatusLengthRequired, "length_required"},
		{http.StatusRequestEntityTooLarge, "body_too_large"},
		{http.StatusBadRequest, "invalid_request"},
		{http.StatusRequestHeaderFieldsTooLarge, "headers_too_large"},
	} {
		w := httptest.NewRecorder()
		h.gw.Refuse(w, state, tc.status)
		if w.Code != tc.status || errorCode(t, w) != tc.code || w.Header().Get("Content-Type") != "application/json" ||
			w.Header().Get("X-Request-Id") == "" || w.Header().Get("Cache-Control") != "no-store" {
			t.Fatalf("%d: got %d %q %s", tc.status, w.Code, w.Header(), w.Body)
		}
	}
	h.gw.Refuse(httptest.NewRecorder(), nil, http.StatusBadRequest) // plain HTTP: no agency
	h.audit.Close()
	lines := strings.Split(strings.TrimSpace(h.out.String()), "\n")
	if len(lines) != 5 {
		t.Fatalf("%d audit records for 5 refusals:\n%s", len(lines), h.out.String())
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatal(err)
	}
	if rec["agency"] != "BYT" || rec["operation"] != "unknown" || rec["status"] != 411.0 || rec["reason"] != "length_required" ||
		rec["nationalIdHash"] != nil || rec["requestId"] == "" {
		t.Fatalf("audit record %v", rec)
	}
}
