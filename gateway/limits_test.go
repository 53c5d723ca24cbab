package gateway

import (
	"strings"
	"testing"
	"time"

	"github.com/popconnect/popconnect/gateway/policy"
)

// batchOf is a BatchLookup body naming the citizens from, from+1, ...
func batchOf(t *testing.T, from int64, n int) string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = `"` + id(t, from+int64(i)) + `"`
	}
	return `{"nationalIds":[` + strings.Join(ids, ",") + `]}`
}

// TestBatchCostsOneTokenPerID: a BatchLookup of N IDs costs N tokens and N
// quota units, so a batch is not a way around the agency's limits. A batch
// larger than the burst can never pass and is told so.
func TestBatchCostsOneTokenPerID(t *testing.T) {
	h := newHarness(t, nil)
	all := []policy.Operation{policy.OperationLookup, policy.OperationVerify, policy.OperationBatchLookup}
	h.setPolicy(t, append(defaultAgencies(),
		policy.Agency{AgencyCode: "BURST10", AllowedFields: []string{"fullName"}, AllowedOperations: all,
			RateLimit: policy.RateLimit{RequestsPerSecond: 1, Burst: 10}},
		policy.Agency{AgencyCode: "QUOTA100", AllowedFields: []string{"fullName"}, AllowedOperations: all,
			RateLimit: policy.RateLimit{RequestsPerSecond: 1000, Burst: 1000, DailyQuota: quota(100)}},
	))

	w := h.do("BURST10", "POST", "/v1/citizens:batchLookup", batchOf(t, 1, 11))
	if w.Code != 429 || errorCode(t, w) != "rate_limited" || !strings.Contains(w.Body.String(), "burst") {
		t.Fatalf("batch of 11 over a burst of 10: %d %s", w.Code, w.Body.String())
	}
	if ra := w.Header().Get("Retry-After"); ra != "" {
		t.Fatalf("a batch that can never pass has Retry-After %q", ra)
	}
	if w := h.do("BURST10", "POST", "/v1/citizens:batchLookup", batchOf(t, 1, 10)); w.Code != 200 {
		t.Fatalf("batch of 10 (the refused batch spent nothing): %d %s", w.Code, w.Body.String())
	}
	w = h.do("BURST10", "GET", "/v1/citizens/"+id(t, 1), "")
	if w.Code != 429 || errorCode(t, w) != "rate_limited" {
		t.Fatalf("lookup after a batch of 10 spent the burst: %d %s", w.Code, w.Body.String())
	}

	for i := range 10 {
		if w := h.do("QUOTA100", "POST", "/v1/citizens:batchLookup", batchOf(t, int64(10*i+1), 10)); w.Code != 200 {
			t.Fatalf("batch %d of 10 within a quota of 100: %d %s", i+1, w.Code, w.Body.String())
		}
	}
	w = h.do("QUOTA100", "POST", "/v1/citizens:batchLookup", batchOf(t, 1, 10))
	if w.Code != 429 || errorCode(t, w) != "quota_exceeded" {
		t.Fatalf("11th batch of 10 over a quota of 100: %d %s", w.Code, w.Body.String())
	}
	w = h.do("QUOTA100", "POST", "/v1/citizens:batchLookup", batchOf(t, 1, 1))
	if w.Code != 429 || errorCode(t, w) != "quota_exceeded" {
		t.Fatalf("a batch of 1 after the quota: %d %s", w.Code, w.Body.String())
	}
}

// TestVerifyGuessLimit: Verify answers at most 10 mismatches per agency and
// citizen in 24 h; then 429 verify_limit before the upstream is asked, even
// for a value that would match, while other citizens (and other agencies
// for the same citizen) are still served, and 24 h later it is served
// again.
func TestVerifyGuessLimit(t *testing.T) {
	h := newHarness(t, nil)
	a, b := id(t, 7), id(t, 8)
	verify := func(agency, nationalID, name string) (int, string) {
		t.Helper()
		w := h.do(agency, "POST", "/v1/citizens:verify", `{"nationalId":"`+nationalID+`","fullName":"`+name+`"}`)
		if w.Code != 200 {
			return w.Code, errorCode(t, w)
		}
		return w.Code, strings.TrimSpace(w.Body.String())
	}
	for i := range 10 {
		if code, body := verify("BYT", a, "Wrong Guess"); code != 200 || body != `{"match":false}` {
			t.Fatalf("mismatch %d: %d %s", i+1, code, body)
		}
		h.clock.Advance(time.Minute)
	}
	if code, body := verify("BYT", a, "Another Guess"); code != 429 || body != "verify_limit" {
		t.Fatalf("11th guess: %d %s, want 429 verify_limit", code, body)
	}
	nameA := h.gen.Record(7).FullName
	if code, body := verify("BYT", a, nameA); code != 429 || body != "verify_limit" {
		t.Fatalf("a matching value after the limit: %d %s, want 429 verify_limit", code, body)
	}
	if code, body := verify("BYT", b, h.gen.Record(8).FullName); code != 200 || body != `{"match":true}` {
		t.Fatalf("another citizen: %d %s", code, body)
	}
	if code, body := verify("VERIFYONLY", a, nameA); code != 200 || body != `{"match":true}` {
		t.Fatalf("another agency, same citizen: %d %s", code, body)
	}
	h.clock.Advance(24 * time.Hour)
	if code, body := verify("BYT", a, nameA); code != 200 || body != `{"match":true}` {
		t.Fatalf("24 h later: %d %s", code, body)
	}
}

// TestVerifyGuessTableFull: the table of citizens with mismatches is
// bounded; when an agency has filled its share, Verify for a new citizen is
// refused (never answered untracked), a citizen at the limit stays refused,
// and a matching Verify does not take a place.
func TestVerifyGuessTableFull(t *testing.T) {
	h := newHarness(t, nil)
	h.gw.guesses = newGuessGuard(3)
	guess := func(i int64) int {
		return h.do("BYT", "POST", "/v1/citizens:verify", `{"nationalId":"`+id(t, i)+`","fullName":"Wrong Guess"}`).Code
	}
	for range 10 {
		if c := guess(1); c != 200 {
			t.Fatalf("guess on citizen 1: %d", c)
		}
	}
	if c := guess(2); c != 200 {
		t.Fatalf("citizen 2: %d", c)
	}
	if c := guess(3); c != 200 {
		t.Fatalf("citizen 3: %d", c)
	}
	w := h.do("BYT", "POST", "/v1/citizens:verify", `{"nationalId":"`+id(t, 4)+`","fullName":"Wrong Guess"}`)
	if w.Code != 429 || errorCode(t, w) != "verify_limit" {
		t.Fatalf("a 4th citizen with the table full: %d %s", w.Code, w.Body.String())
	}
	if c := guess(1); c != 429 {
		t.Fatalf("citizen 1, at the limit, with the table full: %d", c)
	}
	if c := guess(2); c != 200 {
		t.Fatalf("citizen 2, tracked, with the table full: %d", c)
	}
	// Another agency has its own share.
	if w := h.do("VERIFYONLY", "POST", "/v1/citizens:verify", `{"nationalId":"`+id(t, 4)+`","fullName":"Wrong Guess"}`); w.Code != 200 {
		t.Fatalf("another agency: %d %s", w.Code, w.Body.String())
	}
	h.clock.Advance(24 * time.Hour)
	if c := guess(4); c != 200 {
		t.Fatalf("24 h later, a 4th citizen: %d", c)
	}
}
