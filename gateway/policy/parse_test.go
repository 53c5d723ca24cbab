package policy

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	good := `{"version":"v1","agencies":[{"agencyCode":"BYT","allowedFields":["fullName","permanentAddress.province"],
		"allowedOperations":["Lookup","Verify"],"rateLimit":{"requestsPerSecond":50,"burst":100,"dailyQuota":100000},
		"validUntil":"2027-12-31T00:00:00Z","suspended":false}]}`
	goodYAML := `
version: v2
agencies:
- agencyCode: BCA-01
  allowedFields: [fullName]
  allowedOperations: [BatchLookup]
  rateLimit: {requestsPerSecond: 1, burst: 1}
`
	entry := func(s string) string { return `{"version":"v","agencies":[` + s + `]}` }
	tests := []struct {
		name, in string
		errHas   string
	}{
		{"json", good, ""},
		{"yaml", goodYAML, ""},
		{"empty agencies", `{"version":"v","agencies":[]}`, ""},
		{"agencies missing", `{"version":"v"}`, "agencies is required"},
		{"unknown key", entry(`{"agencyCode":"BYT","allowedFields":["a"],"allowedOperations":["Lookup"],"rateLimit":{"requestsPerSecond":1,"burst":1},"suspend":true}`), "unknown field"},
		{"unknown key yaml", "version: v\nagencies: []\nextra: 1\n", "unknown field"},
		{"no code", entry(`{"allowedFields":["a"],"allowedOperations":["Lookup"],"rateLimit":{"requestsPerSecond":1,"burst":1}}`), "agencyCode"},
		{"bad code", entry(`{"agencyCode":"byt","allowedFields":["a"],"allowedOperations":["Lookup"],"rateLimit":{"requestsPerSecond":1,"burst":1}}`), "agencyCode"},
		{"no fields", entry(`{"agencyCode":"BYT","allowedOperations":["Lookup"],"rateLimit":{"requestsPerSecond":1,"burst":1}}`), "allowedFields is required"},
		{"bad field", entry(`{"agencyCode":"BYT","allowedFields":["a..b"],"allowedOperations":["Lookup"],"rateLimit":{"requestsPerSecond":1,"burst":1}}`), "invalid field path"},
		{"no ops", entry(`{"agencyCode":"BYT","allowedFields":["a"],"rateLimit":{"requestsPerSecond":1,"burst":1}}`), "allowedOperations is required"},
		{"bad op", entry(`{"agencyCode":"BYT","allowedFields":["a"],"allowedOperations":["Delete"],"rateLimit":{"requestsPerSecond":1,"burst":1}}`), "unknown operation"},
		{"no rps", entry(`{"agencyCode":"BYT","allowedFields":["a"],"allowedOperations":["Lookup"],"rateLimit":{"burst":1}}`), "requestsPerSecond"},
		{"no burst", entry(`{"agencyCode":"BYT","allowedFields":["a"],"allowedOperations":["Lookup"],"rateLimit":{"requestsPerSecond":1}}`), "burst"},
		{"zero quota", entry(`{"agencyCode":"BYT","allowedFields":["a"],"allowedOperations":["Lookup"],"rateLimit":{"requestsPerSecond":1,"burst":1,"dailyQuota":0}}`), "dailyQuota"},
		{"purpose keys", entry(`{"agencyCode":"BYT","allowedFields":["a"],"allowedOperations":["Lookup","AccessHistory"],"rateLimit":{"requestsPerSecond":1,"burst":1},"purpose":"p","displayName":"Bộ Y tế","disclosureDelay":"8760h","requireCaseReference":true}`), ""},
		{"zero delay", entry(`{"agencyCode":"BYT","allowedFields":["a"],"allowedOperations":["Lookup"],"rateLimit":{"requestsPerSecond":1,"burst":1},"disclosureDelay":"0s"}`), ""},
		{"bad delay", entry(`{"agencyCode":"BYT","allowedFields":["a"],"allowedOperations":["Lookup"],"rateLimit":{"requestsPerSecond":1,"burst":1},"disclosureDelay":"1 year"}`), "disclosureDelay"},
		{"negative delay", entry(`{"agencyCode":"BYT","allowedFields":["a"],"allowedOperations":["Lookup"],"rateLimit":{"requestsPerSecond":1,"burst":1},"disclosureDelay":"-1h"}`), "disclosureDelay"},
		{"delay too long", entry(`{"agencyCode":"BYT","allowedFields":["a"],"allowedOperations":["Lookup"],"rateLimit":{"requestsPerSecond":1,"burst":1},"disclosureDelay":"87601h"}`), "disclosureDelay"},
		{"purpose too long", entry(`{"agencyCode":"BYT","allowedFields":["a"],"allowedOperations":["Lookup"],"rateLimit":{"requestsPerSecond":1,"burst":1},"purpose":"` + strings.Repeat("p", 2049) + `"}`), "purpose"},
		{"displayName too long", entry(`{"agencyCode":"BYT","allowedFields":["a"],"allowedOperations":["Lookup"],"rateLimit":{"requestsPerSecond":1,"burst":1},"displayName":"` + strings.Repeat("n", 257) + `"}`), "displayName"},
		{"requireCaseReference not bool", entry(`{"agencyCode":"BYT","allowedFields":["a"],"allowedOperations":["Lookup"],"rateLimit":{"requestsPerSecond":1,"burst":1},"requireCaseReference":"yes"}`), "decoding JSON"},
		{"trailing data", good + `{}`, "data after"},
		{"not json", `{"version":`, "decoding JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc, err := Parse([]byte(tc.in))
			if tc.errHas == "" {
				if err != nil || doc == nil {
					t.Fatalf("Parse: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.errHas) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.errHas)
			}
		})
	}
	doc, _ := Parse([]byte(good))
	a := doc.Agencies[0]
	if a.ValidUntil == nil || a.ValidUntil.Year() != 2027 || *a.RateLimit.DailyQuota != 100000 {
		t.Fatalf("parsed entry %+v", a)
	}
}

func TestValidAgencyCode(t *testing.T) {
	for code, want := range map[string]bool{"BYT": true, "B1": true, "A-B": true, "-AB": false, "A": false, "ab": false,
		strings.Repeat("A", 32): true, strings.Repeat("A", 33): false, "A_B": false} {
		if ValidAgencyCode(code) != want {
			t.Errorf("ValidAgencyCode(%q) = %v", code, !want)
		}
	}
}

func TestMerge(t *testing.T) {
	rl := RateLimit{RequestsPerSecond: 1, Burst: 1}
	a := Agency{AgencyCode: "A1", AllowedFields: []string{"x", "y"}, AllowedOperations: []Operation{OperationLookup}, RateLimit: rl}
	aReordered := Agency{AgencyCode: "A1", AllowedFields: []string{"y", "x"}, AllowedOperations: []Operation{OperationLookup}, RateLimit: rl}
	aWider := Agency{AgencyCode: "A1", AllowedFields: []string{"x", "y", "z"}, AllowedOperations: []Operation{OperationLookup}, RateLimit: rl}
	b := Agency{AgencyCode: "B1", AllowedFields: []string{"x"}, AllowedOperations: []Operation{OperationVerify}, RateLimit: rl}

	m := Merge(map[string]*Document{"s1": {Version: "v1", Agencies: []Agency{a}}, "s2": {Version: "v1", Agencies: []Agency{b, aReordered}}})
	if len(m.Agencies) != 2 || len(m.Conflicts) != 0 || m.Version != "v1" {
		t.Fatalf("union: %+v", m)
	}
	m = Merge(map[string]*Document{"s1": {Version: "v1", Agencies: []Agency{a}}, "s2": {Version: "v2", Agencies: []Agency{b, aWider}}, "s3": {Version: "v2", Agencies: []Agency{a}}})
	if _, ok := m.Agencies["A1"]; ok || len(m.Conflicts) != 1 || m.Conflicts[0] != "A1" || len(m.Agencies) != 1 {
		t.Fatalf("conflict must drop A1: %+v", m)
	}
	if !strings.HasPrefix(m.Version, "sha256:") {
		t.Fatalf("mixed versions: %q", m.Version)
	}
}

// TestSameEntryPurposeKeys: each purpose key is part of an entry's
// identity, so that a change to any of them reaches a running gateway
// (compile reuses an entry SameEntry calls unchanged).
func TestSameEntryPurposeKeys(t *testing.T) {
	rl := RateLimit{RequestsPerSecond: 1, Burst: 1}
	base := Agency{AgencyCode: "A1", AllowedFields: []string{"x"}, AllowedOperations: []Operation{OperationLookup}, RateLimit: rl,
		Purpose: "p", DisplayName: "n", DisclosureDelay: "1h"}
	for name, change := range map[string]func(*Agency){
		"purpose":              func(a *Agency) { a.Purpose = "q" },
		"displayName":          func(a *Agency) { a.DisplayName = "m" },
		"disclosureDelay":      func(a *Agency) { a.DisclosureDelay = "2h" },
		"no disclosureDelay":   func(a *Agency) { a.DisclosureDelay = "" },
		"requireCaseReference": func(a *Agency) { a.RequireCaseReference = true },
		"AccessHistory":        func(a *Agency) { a.AllowedOperations = append(a.AllowedOperations, OperationAccessHistory) },
	} {
		b := base
		b.AllowedOperations = append([]Operation(nil), base.AllowedOperations...)
		change(&b)
		if SameEntry(base, b) {
			t.Errorf("%s: SameEntry ignores the change", name)
		}
	}
	same := base
	same.DisclosureDelay = "60m" // the same duration, written otherwise
	if !SameEntry(base, same) {
		t.Errorf("1h and 60m must be the same disclosureDelay")
	}
	zero := base
	zero.DisclosureDelay, base.DisclosureDelay = "0s", ""
	if !SameEntry(base, zero) {
		t.Errorf("an absent disclosureDelay and 0s must be the same")
	}
}
