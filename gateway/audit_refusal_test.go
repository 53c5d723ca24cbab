package gateway

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/popconnect/popconnect/gateway/policy"
	"github.com/popconnect/popconnect/internal/popdb"
)

// TestAuditHashOnEveryPath: once a valid national ID (or a whole valid
// batch list) is known, the request's audit record carries its keyed hash,
// whatever the outcome: refused by policy, by the rate limiter, for a bad
// request after the ID, or failed upstream.
func TestAuditHashOnEveryPath(t *testing.T) {
	gen, err := popdb.NewGenerator(1, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	real := popdb.Handler(gen)
	var mu sync.Mutex
	mode := ""
	upstream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		m := mode
		mu.Unlock()
		switch m {
		case "hang":
			// The server notices the gateway hanging up only once the body
			// has been read.
			_, _ = io.Copy(io.Discard, r.Body)
			<-r.Context().Done()
		case "500":
			w.WriteHeader(500)
		case "garbage":
			io.WriteString(w, `{"match":"yes","records":[{"nationalId":"000000000000"}]}`)
		case "huge header":
			w.Header().Set("X-Filler", strings.Repeat("a", 100<<10))
			io.WriteString(w, `{}`)
		default:
			real.ServeHTTP(w, r)
		}
	})
	h := newHarness(t, upstream)
	all := []policy.Operation{policy.OperationLookup, policy.OperationVerify, policy.OperationBatchLookup}
	agencies := append(defaultAgencies(),
		policy.Agency{AgencyCode: "LOOKUPONLY", AllowedFields: []string{"fullName"}, AllowedOperations: []policy.Operation{policy.OperationLookup}, RateLimit: policy.RateLimit{RequestsPerSecond: 1000, Burst: 1000}},
		policy.Agency{AgencyCode: "ONCE", AllowedFields: []string{"fullName"}, AllowedOperations: all, RateLimit: policy.RateLimit{RequestsPerSecond: 1, Burst: 1}},
	)
	h.setPolicy(t, agencies)

	a, b := id(t, 7), id(t, 8)
	hashA := h.audit.Hash(a)
	batchAB := `{"nationalIds":["` + a + `","` + b + `"]}`
	verifyA := `{"nationalId":"` + a + `","fullName":"X"}`
	tests := []struct {
		name, agency, method, target, body, upstream string
		burn                                         bool // spend ONCE's only token first
		status                                       int
		want                                         any // string hash, []any of hashes, or nil
	}{
		{"lookup ok", "BYT", "GET", "/v1/citizens/" + a, "", "", false, 200, hashA},
		{"lookup field not allowed", "BYT", "GET", "/v1/citizens/" + a + "?fields=religion", "", "", false, 403, hashA},
		{"lookup unknown parameter", "BYT", "GET", "/v1/citizens/" + a + "?x=1", "", "", false, 400, hashA},
		{"lookup operation not allowed", "VERIFYONLY", "GET", "/v1/citizens/" + a, "", "", false, 403, hashA},
		{"lookup suspended", "SUSP", "GET", "/v1/citizens/" + a, "", "", false, 403, hashA},
		{"lookup expired", "ENDED", "GET", "/v1/citizens/" + a, "", "", false, 403, hashA},
		{"lookup unknown agency", "NOBODY", "GET", "/v1/citizens/" + a, "", "", false, 403, hashA},
		{"lookup no certificate", "", "GET", "/v1/citizens/" + a, "", "", false, 403, hashA},
		{"lookup wrong method", "BYT", "POST", "/v1/citizens/" + a, "", "", false, 405, hashA},
		{"lookup rate limited", "ONCE", "GET", "/v1/citizens/" + a, "", "", true, 429, hashA},
		{"lookup not found", "BYT", "GET", "/v1/citizens/" + id(t, 20_000), "", "", false, 404, h.audit.Hash(id(t, 20_000))},
		{"lookup upstream 500", "BYT", "GET", "/v1/citizens/" + a, "", "500", false, 502, hashA},
		{"lookup upstream invalid", "BYT", "GET", "/v1/citizens/" + a, "", "garbage", false, 502, hashA},
		{"lookup upstream header too large", "BYT", "GET", "/v1/citizens/" + a, "", "huge header", false, 502, hashA},
		{"lookup upstream timeout", "BYT", "GET", "/v1/citizens/" + a, "", "hang", false, 504, hashA},
		{"lookup invalid id", "BYT", "GET", "/v1/citizens/123", "", "", false, 400, nil},

		{"verify ok", "BYT", "POST", "/v1/citizens:verify", verifyA, "", false, 200, hashA},
		{"verify field not allowed", "VERIFYONLY", "POST", "/v1/citizens:verify", `{"nationalId":"` + a + `","religion":"x"}`, "", false, 403, hashA},
		{"verify object after the id", "BYT", "POST", "/v1/citizens:verify", `{"nationalId":"` + a + `","fullName":{"a":1}}`, "", false, 400, hashA},
		{"verify no field", "BYT", "POST", "/v1/citizens:verify", `{"nationalId":"` + a + `"}`, "", false, 400, hashA},
		{"verify duplicate key after the id", "BYT", "POST", "/v1/citizens:verify", `{"nationalId":"` + a + `","fullName":"a","fullName":"b"}`, "", false, 400, hashA},
		{"verify operation not allowed", "LOOKUPONLY", "POST", "/v1/citizens:verify", verifyA, "", false, 403, hashA},
		{"verify suspended", "SUSP", "POST", "/v1/citizens:verify", verifyA, "", false, 403, hashA},
		{"verify rate limited", "ONCE", "POST", "/v1/citizens:verify", verifyA, "", true, 429, hashA},
		{"verify upstream invalid", "BYT", "POST", "/v1/citizens:verify", verifyA, "garbage", false, 502, hashA},
		{"verify upstream timeout", "BYT", "POST", "/v1/citizens:verify", verifyA, "hang", false, 504, hashA},
		{"verify invalid id", "BYT", "POST", "/v1/citizens:verify", `{"nationalId":"1","fullName":"a"}`, "", false, 400, nil},
		{"verify no certificate", "", "POST", "/v1/citizens:verify", verifyA, "", false, 403, nil},

		{"batch ok", "BYT", "POST", "/v1/citizens:batchLookup", batchAB, "", false, 200, []string{a, b}},
		{"batch unknown key after the list", "BYT", "POST", "/v1/citizens:batchLookup", `{"nationalIds":["` + a + `"],"x":1}`, "", false, 400, []string{a}},
		{"batch operation not allowed", "LOOKUPONLY", "POST", "/v1/citizens:batchLookup", batchAB, "", false, 403, []string{a, b}},
		{"batch expired", "ENDED", "POST", "/v1/citizens:batchLookup", batchAB, "", false, 403, []string{a, b}},
		{"batch rate limited", "ONCE", "POST", "/v1/citizens:batchLookup", batchAB, "", true, 429, []string{a, b}},
		{"batch upstream invalid", "BYT", "POST", "/v1/citizens:batchLookup", batchAB, "garbage", false, 502, []string{a, b}},
		{"batch upstream timeout", "BYT", "POST", "/v1/citizens:batchLookup", batchAB, "hang", false, 504, []string{a, b}},
		{"batch list cut short", "BYT", "POST", "/v1/citizens:batchLookup", `{"nationalIds":["` + a + `","x"]}`, "", false, 400, []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.burn {
				h.clock.Advance(time.Hour) // a full bucket, then spend it
				h.do("ONCE", "GET", "/v1/citizens/"+b, "")
			}
			mu.Lock()
			mode = tc.upstream
			mu.Unlock()
			// A short upstream bound only where the upstream hangs: a call
			// that answers must never meet it, however loaded the machine.
			h.gw.cfg.UpstreamTimeout = 30 * time.Second
			if tc.upstream == "hang" {
				h.gw.cfg.UpstreamTimeout = 200 * time.Millisecond
			}
			w := h.do(tc.agency, tc.method, tc.target, tc.body)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body.String())
			}
			rec := h.auditRecord(t, w.Header().Get("X-Request-Id"))
			want := tc.want
			if ids, ok := want.([]string); ok {
				hashes := []any{}
				for _, id := range ids {
					hashes = append(hashes, h.audit.Hash(id))
				}
				want = hashes
			}
			got, _ := json.Marshal(rec["nationalIdHash"])
			wantJSON, _ := json.Marshal(want)
			if string(got) != string(wantJSON) {
				t.Fatalf("nationalIdHash %s, want %s (record %v)", got, wantJSON, rec)
			}
		})
	}
	h.audit.Close()
	if strings.Contains(h.out.String(), a) || strings.Contains(h.out.String(), b) {
		t.Fatal("a national ID reached the audit log")
	}
}

// auditRecord flushes the audit log and returns the record of requestID.
func (h *harness) auditRecord(t *testing.T, requestID string) map[string]any {
	t.Helper()
	h.audit.Flush()
	for line := range strings.SplitSeq(h.out.String(), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		if rec["requestId"] == requestID {
			return rec
		}
	}
	t.Fatalf("no audit record for request %q", requestID)
	return nil
}
