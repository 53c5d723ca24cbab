package gateway

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/popconnect/popconnect/gateway/policy"
)

// purposeAgencies are the default agencies with purposes, and CASE, which
// must name its case.
func purposeAgencies() []policy.Agency {
	agencies := defaultAgencies()
	for i := range agencies {
		agencies[i].Purpose = "purpose of " + agencies[i].AgencyCode
	}
	return append(agencies, policy.Agency{AgencyCode: "CASE", AllowedFields: []string{"fullName"},
		AllowedOperations: []policy.Operation{policy.OperationLookup, policy.OperationVerify, policy.OperationBatchLookup},
		RateLimit:         policy.RateLimit{RequestsPerSecond: 1, Burst: 1},
		Purpose:           "criminal investigations", RequireCaseReference: true})
}

// TestCaseReferenceAndPurpose: every record carries the agency's purpose
// and the request's case reference, refusals included; an invalid case
// reference is 400 invalid_case_reference (and not recorded), a missing one
// for an agency that requires it 400 case_reference_required; neither
// costs the agency's rate.
func TestCaseReferenceAndPurpose(t *testing.T) {
	h := newHarness(t, nil)
	h.setPolicy(t, purposeAgencies())
	in := id(t, 7)
	lookup := "/v1/citizens/" + in + "?fields=fullName"
	verify := `{"nationalId":"` + in + `","fullName":"x"}`
	batch := `{"nationalIds":["` + in + `"]}`
	tests := []struct {
		name, agency, method, target, body string
		caseRef                            []string // nil: no header
		status                             int
		errCode                            string
		wantCase, wantPurpose              string
	}{
		{"lookup with a case", "BYT", "GET", lookup, "", []string{"HS-2026/000123"}, 200, "", "HS-2026/000123", "purpose of BYT"},
		{"lookup without a case", "BYT", "GET", lookup, "", nil, 200, "", "", "purpose of BYT"},
		{"verify with a case", "BYT", "POST", "/v1/citizens:verify", verify, []string{"V-1"}, 200, "", "V-1", "purpose of BYT"},
		{"batch with a case", "BYT", "POST", "/v1/citizens:batchLookup", batch, []string{"B 1"}, 200, "", "B 1", "purpose of BYT"},
		{"128 bytes", "BYT", "GET", lookup, "", []string{strings.Repeat("~", 128)}, 200, "", strings.Repeat("~", 128), "purpose of BYT"},
		{"129 bytes", "BYT", "GET", lookup, "", []string{strings.Repeat("a", 129)}, 400, "invalid_case_reference", "", "purpose of BYT"},
		{"empty", "BYT", "GET", lookup, "", []string{""}, 400, "invalid_case_reference", "", "purpose of BYT"},
		{"control byte", "BYT", "GET", lookup, "", []string{"HS\x01"}, 400, "invalid_case_reference", "", "purpose of BYT"},
		{"DEL", "BYT", "GET", lookup, "", []string{"HS\x7f"}, 400, "invalid_case_reference", "", "purpose of BYT"},
		{"not ASCII", "BYT", "GET", lookup, "", []string{"Hồ sơ 1"}, 400, "invalid_case_reference", "", "purpose of BYT"},
		{"two values", "BYT", "GET", lookup, "", []string{"A", "B"}, 400, "invalid_case_reference", "", "purpose of BYT"},
		{"invalid on a verify", "BYT", "POST", "/v1/citizens:verify", verify, []string{"\t"}, 400, "invalid_case_reference", "", "purpose of BYT"},
		{"required and given", "CASE", "GET", lookup, "", []string{"HS-1"}, 200, "", "HS-1", "criminal investigations"},
		{"required and missing", "CASE", "GET", lookup, "", nil, 400, "case_reference_required", "", "criminal investigations"},
		{"required, batch missing", "CASE", "POST", "/v1/citizens:batchLookup", batch, nil, 400, "case_reference_required", "", "criminal investigations"},
		{"required and invalid", "CASE", "GET", lookup, "", []string{strings.Repeat("a", 200)}, 400, "invalid_case_reference", "", "criminal investigations"},
		{"suspended keeps both", "SUSP", "GET", lookup, "", []string{"HS-2"}, 403, "agency_suspended", "HS-2", "purpose of SUSP"},
		{"not allowed keeps both", "VERIFYONLY", "GET", lookup, "", []string{"HS-3"}, 403, "operation_not_allowed", "HS-3", "purpose of VERIFYONLY"},
		{"unknown agency: no purpose", "NOBODY", "GET", lookup, "", []string{"HS-4"}, 403, "agency_unknown", "HS-4", ""},
		{"required, suspended first", "SUSP", "GET", lookup, "", []string{"\x00"}, 403, "agency_suspended", "", "purpose of SUSP"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, tc.target, strings.NewReader(tc.body))
			if tc.caseRef != nil {
				r.Header[CaseReferenceHeader] = tc.caseRef
			}
			w := h.doRequest(tc.agency, r)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			if tc.errCode != "" && errorCode(t, w) != tc.errCode {
				t.Fatalf("error %s, want %s", errorCode(t, w), tc.errCode)
			}
			rec := h.auditRecord(t, w.Header().Get("X-Request-Id"))
			if got, _ := rec["caseReference"].(string); got != tc.wantCase {
				t.Errorf("record's caseReference %q, want %q", got, tc.wantCase)
			}
			if got, _ := rec["purpose"].(string); got != tc.wantPurpose {
				t.Errorf("record's purpose %q, want %q", got, tc.wantPurpose)
			}
			if tc.errCode != "" {
				if rec["reason"] != tc.errCode || rec["status"] != float64(tc.status) {
					t.Errorf("record %v", rec)
				}
			}
		})
	}
	// CASE has a burst of 1: its refusals above spent none of it.
	r := httptest.NewRequest("GET", lookup, nil)
	r.Header.Set(CaseReferenceHeader, "HS-5")
	h.clock.Advance(2e9)
	if w := h.doRequest("CASE", r); w.Code != http.StatusOK {
		t.Fatalf("CASE after its refusals: %d %s", w.Code, w.Body)
	}
}

func TestValidCaseReference(t *testing.T) {
	for s, want := range map[string]bool{"": false, "a": true, " ": true, "~": true, "\x1f": false, "\x7f": false,
		"é": false, strings.Repeat("x", 128): true, strings.Repeat("x", 129): false, "HS-2026/000123 (Hà)": false} {
		if ValidCaseReference(s) != want {
			t.Errorf("ValidCaseReference(%q) = %v", s, !want)
		}
	}
}

func FuzzCaseReference(f *testing.F) {
	f.Add("HS-2026/000123")
	f.Add("")
	f.Add(" ")
	f.Add(strings.Repeat("a", 128))
	f.Add(strings.Repeat("a", 129))
	f.Add("a\x00b")
	f.Add("Hồ sơ")
	f.Add("\x7f")
	f.Fuzz(func(t *testing.T, v string) {
		got, err := caseReference(http.Header{CaseReferenceHeader: {v}})
		if err != nil {
			if got != "" {
				t.Fatalf("%q: refused but returned %q", v, got)
			}
			return
		}
		if got != v || len(got) < 1 || len(got) > MaxCaseReferenceBytes {
			t.Fatalf("%q: accepted as %q", v, got)
		}
		for i := 0; i < len(got); i++ {
			if got[i] < 0x20 || got[i] > 0x7e {
				t.Fatalf("%q: accepted byte %#x", v, got[i])
			}
		}
	})
}
