package gateway

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/popconnect/popconnect/gateway/audit"
	"github.com/popconnect/popconnect/gateway/metrics"
	"github.com/popconnect/popconnect/gateway/policy"
	"github.com/popconnect/popconnect/internal/popdb"
)

// fakeClock is an injectable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// lockedBuffer is the harness's audit sink; fail makes its writes fail
// (as a full disk does) until it is cleared.
type lockedBuffer struct {
	mu   sync.Mutex
	b    bytes.Buffer
	fail bool
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fail {
		return 0, errSinkFull
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) setFail(fail bool) { l.mu.Lock(); l.fail = fail; l.mu.Unlock() }
func (l *lockedBuffer) String() string    { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

type harness struct {
	gw     *Gateway
	clock  *fakeClock
	audit  *audit.Logger
	out    *lockedBuffer
	gen    *popdb.Generator
	loc    *time.Location
	policy []policy.Agency
}

func quota(n int64) *int64 { return &n }

func defaultAgencies() []policy.Agency {
	until := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	all := []policy.Operation{policy.OperationLookup, policy.OperationVerify, policy.OperationBatchLookup}
	fast := policy.RateLimit{RequestsPerSecond: 1000, Burst: 1000}
	return []policy.Agency{
		{AgencyCode: "BYT", AllowedFields: []string{"fullName", "dateOfBirth", "permanentAddress.province", "relatives.relation"}, AllowedOperations: all, RateLimit: fast},
		{AgencyCode: "VERIFYONLY", AllowedFields: []string{"fullName"}, AllowedOperations: []policy.Operation{policy.OperationVerify}, RateLimit: fast},
		{AgencyCode: "SUSP", AllowedFields: []string{"fullName"}, AllowedOperations: all, RateLimit: fast, Suspended: true},
		{AgencyCode: "ENDED", AllowedFields: []string{"fullName"}, AllowedOperations: all, RateLimit: fast, ValidUntil: &until},
		{AgencyCode: "SLOW", AllowedFields: []string{"fullName"}, AllowedOperations: all, RateLimit: policy.RateLimit{RequestsPerSecond: 1, Burst: 2}},
		{AgencyCode: "QUOTA", AllowedFields: []string{"fullName"}, AllowedOperations: all, RateLimit: policy.RateLimit{RequestsPerSecond: 100, Burst: 100, DailyQuota: quota(1)}},
	}
}

func newHarness(t *testing.T, upstream http.Handler) *harness {
	t.Helper()
	gen, err := popdb.NewGenerator(1, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	if upstream == nil {
		upstream = popdb.Handler(gen)
	}
	srv := httptest.NewServer(upstream)
	t.Cleanup(srv.Close)
	loc, _ := time.LoadLocation("Asia/Ho_Chi_Minh")
	h := &harness{clock: &fakeClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, loc)}, out: &lockedBuffer{}, gen: gen, loc: loc}
	h.audit, err = audit.NewLogger(h.out, []byte("an audit key of at least 32 bytes!!"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.audit.Close() })
	u, _ := url.Parse(srv.URL)
	h.gw, err = New(Config{
		UpstreamURL: u, UpstreamTimeout: 2 * time.Second, MaxUpstreamBodyBytes: 64 << 10,
		Location: loc, Now: h.clock.Now, Audit: h.audit, Metrics: metrics.New(),
		Log: slog.New(slog.NewJSONHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	h.setPolicy(t, defaultAgencies())
	return h
}

func (h *harness) setPolicy(t *testing.T, agencies []policy.Agency) {
	t.Helper()
	h.policy = agencies
	if err := h.gw.SetPolicy(policy.Merge(map[string]*policy.Document{"test": {Version: "v1", Agencies: agencies}})); err != nil {
		t.Fatal(err)
	}
}

// do sends a request as agency (no certificate when agency is "").
func (h *harness) do(agency, method, target, body string) *httptest.ResponseRecorder {
	return h.doRequest(agency, httptest.NewRequest(method, target, strings.NewReader(body)))
}

// doRequest sends r as agency (no certificate when agency is "").
func (h *harness) doRequest(agency string, r *http.Request) *httptest.ResponseRecorder {
	if agency != "" {
		u, _ := url.Parse("spiffe://popconnect.io/agency/" + agency)
		r.TLS = &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{{URIs: []*url.URL{u}, NotAfter: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)}}}}
	} else {
		r.TLS = &tls.ConnectionState{}
	}
	w := httptest.NewRecorder()
	h.gw.ServeHTTP(w, r)
	return w
}

func id(t *testing.T, i int64) string {
	s, err := popdb.NationalID(i)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func errorCode(t *testing.T, w *httptest.ResponseRecorder) string {
	var e struct{ Error, Message string }
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
		t.Fatalf("error body %q: %v", w.Body.String(), err)
	}
	return e.Error
}

func TestRequests(t *testing.T) {
	h := newHarness(t, nil)
	rec := h.gen.Record(7)
	in, missing := id(t, 7), id(t, 20_000)
	tests := []struct {
		name, agency, method, target, body string
		status                             int
		errCode                            string
		check                              func(t *testing.T, body []byte)
	}{
		{"lookup projects to allowed fields", "BYT", "GET", "/v1/citizens/" + in, "", 200, "", func(t *testing.T, b []byte) {
			var got map[string]any
			json.Unmarshal(b, &got)
			if len(got) != 5 || got["fullName"] != rec.FullName || got["nationalId"] != in ||
				got["permanentAddress"].(map[string]any)["province"] != rec.PermanentAddress.Province {
				t.Fatalf("record %s", b)
			}
			for _, r := range got["relatives"].([]any) {
				if len(r.(map[string]any)) != 1 {
					t.Fatalf("relatives not projected: %s", b)
				}
			}
		}},
		{"fields subset", "BYT", "GET", "/v1/citizens/" + in + "?fields=fullName", "", 200, "", func(t *testing.T, b []byte) {
			if string(b) != `{"nationalId":"`+in+`","fullName":"`+rec.FullName+`"}` {
				t.Fatalf("got %s", b)
			}
		}},
		{"field not allowed names it", "BYT", "GET", "/v1/citizens/" + in + "?fields=fullName,religion", "", 403, "field_not_allowed", func(t *testing.T, b []byte) {
			if !strings.Contains(string(b), "religion") {
				t.Fatalf("message does not name the field: %s", b)
			}
		}},
		{"unknown query parameter", "BYT", "GET", "/v1/citizens/" + in + "?field=fullName", "", 400, "invalid_request", nil},
		{"malformed id", "BYT", "GET", "/v1/citizens/12345", "", 400, "invalid_national_id", nil},
		{"id with letters", "BYT", "GET", "/v1/citizens/00109900000a", "", 400, "invalid_national_id", nil},
		{"not found", "BYT", "GET", "/v1/citizens/" + missing, "", 404, "not_found", nil},
		{"no certificate", "", "GET", "/v1/citizens/" + in, "", 403, "unauthenticated", nil},
		{"unknown agency", "NOBODY", "GET", "/v1/citizens/" + in, "", 403, "agency_unknown", nil},
		{"suspended", "SUSP", "GET", "/v1/citizens/" + in, "", 403, "agency_suspended", nil},
		{"expired", "ENDED", "GET", "/v1/citizens/" + in, "", 403, "agency_expired", nil},
		{"operation not allowed", "VERIFYONLY", "GET", "/v1/citizens/" + in, "", 403, "operation_not_allowed", nil},
		{"wrong method", "BYT", "POST", "/v1/citizens/" + in, "", 405, "method_not_allowed", nil},
		{"unknown path", "BYT", "GET", "/v2/x", "", 404, "not_found", nil},
		{"verify match", "VERIFYONLY", "POST", "/v1/citizens:verify", `{"nationalId":"` + in + `","fullName":"` + rec.FullName + `"}`, 200, "", func(t *testing.T, b []byte) {
			if string(b) != `{"match":true}` {
				t.Fatalf("got %s", b)
			}
		}},
		{"verify mismatch", "BYT", "POST", "/v1/citizens:verify", `{"nationalId":"` + in + `","fullName":"X","dateOfBirth":"1990-01-01"}`, 200, "", func(t *testing.T, b []byte) {
			if string(b) != `{"match":false}` {
				t.Fatalf("got %s", b)
			}
		}},
		{"verify field not allowed", "VERIFYONLY", "POST", "/v1/citizens:verify", `{"nationalId":"` + in + `","religion":"Không"}`, 403, "field_not_allowed", nil},
		{"verify duplicate key", "VERIFYONLY", "POST", "/v1/citizens:verify", `{"nationalId":"` + in + `","fullName":"a","full\u004eame":"b"}`, 400, "invalid_request", nil},
		{"verify object value", "VERIFYONLY", "POST", "/v1/citizens:verify", `{"nationalId":"` + in + `","fullName":{"a":1}}`, 400, "invalid_request", nil},
		{"verify bad id", "VERIFYONLY", "POST", "/v1/citizens:verify", `{"nationalId":"1","fullName":"a"}`, 400, "invalid_national_id", nil},
		{"verify body too large", "VERIFYONLY", "POST", "/v1/citizens:verify", `{"fullName":"` + strings.Repeat("a", 70<<10) + `"}`, 413, "body_too_large", nil},
		{"batch", "BYT", "POST", "/v1/citizens:batchLookup", `{"nationalIds":["` + in + `","` + missing + `"]}`, 200, "", func(t *testing.T, b []byte) {
			var got struct {
				Records  []map[string]any
				NotFound []string
			}
			json.Unmarshal(b, &got)
			if len(got.Records) != 1 || len(got.Records[0]) != 5 || len(got.NotFound) != 1 || got.NotFound[0] != missing {
				t.Fatalf("got %s", b)
			}
		}},
		{"batch too large", "BYT", "POST", "/v1/citizens:batchLookup", `{"nationalIds":[` + strings.TrimSuffix(strings.Repeat(`"`+in+`",`, 101), ",") + `]}`, 400, "batch_too_large", nil},
		{"batch bad id", "BYT", "POST", "/v1/citizens:batchLookup", `{"nationalIds":["x"]}`, 400, "invalid_national_id", nil},
		{"batch empty", "BYT", "POST", "/v1/citizens:batchLookup", `{"nationalIds":[]}`, 400, "invalid_request", nil},
		{"batch unknown key", "BYT", "POST", "/v1/citizens:batchLookup", `{"ids":[]}`, 400, "invalid_request", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := h.do(tc.agency, tc.method, tc.target, tc.body)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body.String())
			}
			if tc.errCode != "" && errorCode(t, w) != tc.errCode {
				t.Fatalf("error %s, want %s", w.Body.String(), tc.errCode)
			}
			if w.Header().Get("Content-Type") != "application/json" || w.Header().Get("X-Request-Id") == "" {
				t.Fatalf("headers %v", w.Header())
			}
			if tc.check != nil {
				tc.check(t, w.Body.Bytes())
			}
		})
	}
	h.audit.Close()
	if strings.Contains(h.out.String(), in) {
		t.Fatal("a national ID reached the audit log")
	}
	if n := strings.Count(h.out.String(), "\n"); n != len(tests) {
		t.Fatalf("%d audit records for %d requests", n, len(tests))
	}
}

func TestAuditRecord(t *testing.T) {
	h := newHarness(t, nil)
	in := id(t, 3)
	h.do("BYT", "GET", "/v1/citizens/"+in+"?fields=fullName", "")
	h.audit.Close()
	var rec map[string]any
	if err := json.Unmarshal([]byte(h.out.String()), &rec); err != nil {
		t.Fatal(err)
	}
	if rec["agency"] != "BYT" || rec["operation"] != "Lookup" || rec["status"] != 200.0 ||
		rec["nationalIdHash"] != h.audit.Hash(in) || rec["requestId"] == "" || rec["latencyMs"] == nil {
		t.Fatalf("audit record %v", rec)
	}
	if f, _ := rec["fieldsReturned"].([]any); len(f) != 2 || f[0] != "fullName" || f[1] != "nationalId" {
		t.Fatalf("fieldsReturned %v", rec["fieldsReturned"])
	}
}

func TestRateLimitAndQuota(t *testing.T) {
	h := newHarness(t, nil)
	path := "/v1/citizens/" + id(t, 1)
	for i := range 2 {
		if w := h.do("SLOW", "GET", path, ""); w.Code != 200 {
			t.Fatalf("request %d: %d", i, w.Code)
		}
	}
	w := h.do("SLOW", "GET", path, "")
	if w.Code != 429 || errorCode(t, w) != "rate_limited" || w.Header().Get("Retry-After") != "1" {
		t.Fatalf("over rate: %d %s %v", w.Code, w.Body.String(), w.Header())
	}
	// A reload with the same limits keeps the empty bucket.
	h.setPolicy(t, h.policy)
	if w := h.do("SLOW", "GET", path, ""); w.Code != 429 {
		t.Fatalf("reload refilled the bucket: %d", w.Code)
	}
	h.clock.Advance(time.Second)
	if w := h.do("SLOW", "GET", path, ""); w.Code != 200 {
		t.Fatalf("after a second: %d", w.Code)
	}

	if w := h.do("QUOTA", "GET", path, ""); w.Code != 200 {
		t.Fatalf("quota first: %d", w.Code)
	}
	w = h.do("QUOTA", "GET", path, "")
	if w.Code != 429 || errorCode(t, w) != "quota_exceeded" || w.Header().Get("Retry-After") != "43199" { // 11:59:59 before midnight
		t.Fatalf("quota spent: %d %s %v", w.Code, w.Body.String(), w.Header())
	}
	h.clock.Advance(12*time.Hour - time.Second) // local midnight in Asia/Ho_Chi_Minh
	if w := h.do("QUOTA", "GET", path, ""); w.Code != 200 {
		t.Fatalf("next day: %d", w.Code)
	}
}

func TestPolicySwapSuspends(t *testing.T) {
	h := newHarness(t, nil)
	path := "/v1/citizens/" + id(t, 1)
	if w := h.do("BYT", "GET", path, ""); w.Code != 200 {
		t.Fatalf("before: %d", w.Code)
	}
	agencies := defaultAgencies()
	agencies[0].Suspended = true
	h.setPolicy(t, agencies)
	if w := h.do("BYT", "GET", path, ""); w.Code != 403 || errorCode(t, w) != "agency_suspended" {
		t.Fatalf("after suspension: %d %s", w.Code, w.Body.String())
	}
	conflicting := defaultAgencies()[0]
	conflicting.AllowedFields = []string{"religion"}
	m := policy.Merge(map[string]*policy.Document{
		"a": {Agencies: defaultAgencies()[:1]}, "b": {Agencies: []policy.Agency{conflicting}},
	})
	if err := h.gw.SetPolicy(m); err != nil {
		t.Fatal(err)
	}
	if w := h.do("BYT", "GET", path, ""); w.Code != 403 || errorCode(t, w) != "policy_conflict" {
		t.Fatalf("conflict: %d %s", w.Code, w.Body.String())
	}
}

// TestHostileUpstream: whatever the upstream sends, nothing outside the
// allow-list and none of its headers or error bodies reach the agency.
func TestHostileUpstream(t *testing.T) {
	in := id(t, 1)
	other := id(t, 2)
	var mu sync.Mutex
	var status int
	var body string
	upstream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		s, b := status, body
		mu.Unlock()
		if s == 0 { // hang until the gateway gives up
			<-r.Context().Done()
			return
		}
		w.Header().Set("X-Upstream-Secret", "leak")
		w.Header().Set("Set-Cookie", "session=leak")
		w.WriteHeader(s)
		io.WriteString(w, b)
	})
	h := newHarness(t, upstream)
	tests := []struct {
		name, method, target, reqBody string
		upStatus                      int
		upBody                        string
		status                        int
		want                          string
	}{
		{"unexpected and escaped keys", "GET", "/v1/citizens/" + in, "", 200,
			`{"nationalId":"` + in + `","full\u004eame":"A","religion":"secret","fullName ":"x","permanentAddress":{"province":"P","street":"secret"},"extra":{"fullName":"secret"}}`,
			200, `{"nationalId":"` + in + `","fullName":"A","permanentAddress":{"province":"P"}}`},
		{"duplicate keys", "GET", "/v1/citizens/" + in, "", 200, `{"fullName":"A","fullName":"B"}`, 502, "upstream_invalid"},
		{"record of another citizen", "GET", "/v1/citizens/" + in, "", 200, `{"nationalId":"` + other + `","fullName":"secret"}`, 502, "upstream_invalid"},
		{"record without nationalId", "GET", "/v1/citizens/" + in, "", 200, `{"fullName":"secret"}`, 502, "upstream_invalid"},
		{"nationalId not a string", "GET", "/v1/citizens/" + in, "", 200, `{"nationalId":` + in + `,"fullName":"secret"}`, 502, "upstream_invalid"},
		{"nationalId only nested", "GET", "/v1/citizens/" + in, "", 200, `{"father":{"nationalId":"` + in + `"},"fullName":"secret"}`, 502, "upstream_invalid"},
		{"record of another citizen with fields", "GET", "/v1/citizens/" + in + "?fields=fullName", "", 200, `{"nationalId":"` + other + `","fullName":"secret"}`, 502, "upstream_invalid"},
		{"escaped nationalId of the right citizen", "GET", "/v1/citizens/" + in, "", 200, `{"nationalId":"\u00` + fmt.Sprintf("%x", in[0]) + in[1:] + `","fullName":"A"}`,
			200, `{"nationalId":"\u00` + fmt.Sprintf("%x", in[0]) + in[1:] + `","fullName":"A"}`},
		{"deep nesting", "GET", "/v1/citizens/" + in, "", 200, `{"x":` + strings.Repeat(`{"a":`, 100) + "1" + strings.Repeat("}", 100) + `}`, 502, "upstream_invalid"},
		{"not JSON", "GET", "/v1/citizens/" + in, "", 200, `<html>secret</html>`, 502, "upstream_invalid"},
		{"too large", "GET", "/v1/citizens/" + in, "", 200, `{"fullName":"` + strings.Repeat("a", 70<<10) + `"}`, 502, "upstream_error"},
		{"error body not passed", "GET", "/v1/citizens/" + in, "", 500, `secret stack trace`, 502, "upstream_error"},
		{"timeout", "GET", "/v1/citizens/" + in, "", 0, "", 504, "upstream_timeout"},
		{"verify answer with more than match", "POST", "/v1/citizens:verify", `{"nationalId":"` + in + `","fullName":"A"}`, 200, `{"match":true,"fullName":"secret"}`, 200, `{"match":true}`},
		{"verify answer not boolean", "POST", "/v1/citizens:verify", `{"nationalId":"` + in + `","fullName":"A"}`, 200, `{"match":"yes"}`, 502, "upstream_invalid"},
		{"batch record not asked for", "POST", "/v1/citizens:batchLookup", `{"nationalIds":["` + in + `"]}`, 200, `{"records":[{"nationalId":"` + other + `","fullName":"B"}],"notFound":[]}`, 502, "upstream_invalid"},
		{"batch filtered", "POST", "/v1/citizens:batchLookup", `{"nationalIds":["` + in + `"]}`, 200, `{"records":[{"nationalId":"` + in + `","fullName":"B","religion":"x"}],"notFound":[],"debug":"secret"}`, 200, `{"records":[{"nationalId":"` + in + `","fullName":"B"}],"notFound":[]}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			status, body = tc.upStatus, tc.upBody
			mu.Unlock()
			// Short only where the upstream hangs: a loaded machine may
			// take longer than that to answer the others.
			h.gw.cfg.UpstreamTimeout = 10 * time.Second
			if tc.upStatus == 0 {
				h.gw.cfg.UpstreamTimeout = 100 * time.Millisecond
			}
			w := h.do("BYT", tc.method, tc.target, tc.reqBody)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body.String())
			}
			if tc.status == 200 && w.Body.String() != tc.want || tc.status != 200 && errorCode(t, w) != tc.want {
				t.Fatalf("body %s, want %s", w.Body.String(), tc.want)
			}
			if strings.Contains(w.Body.String(), "secret") || w.Header().Get("X-Upstream-Secret") != "" || w.Header().Get("Set-Cookie") != "" {
				t.Fatalf("upstream content leaked: %v %s", w.Header(), w.Body.String())
			}
		})
	}
}

func TestNoPolicyYet(t *testing.T) {
	h := newHarness(t, nil)
	h.gw.state.Store(nil)
	if w := h.do("BYT", "GET", "/v1/citizens/"+id(t, 1), ""); w.Code != 503 || h.gw.Ready() {
		t.Fatalf("no policy: %d", w.Code)
	}
}
