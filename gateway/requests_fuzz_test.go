package gateway

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/popconnect/popconnect/gateway/policy"
)

// The request parsers stand between agencies and the upstream: whatever
// they accept must be well-formed, because it is forwarded.

func FuzzLookupPath(f *testing.F) {
	f.Add("/v1/citizens/001099000001")
	f.Add("/v1/citizens/00109900000１")
	f.Add("/v1/citizens/../admin")
	f.Fuzz(func(t *testing.T, path string) {
		id, err := parseLookupPath(path)
		if err == nil && (!validNationalID(id) || path != lookupPrefix+id) {
			t.Fatalf("accepted %q as %q", path, id)
		}
	})
}

func FuzzFields(f *testing.F) {
	f.Add("fields=fullName,permanentAddress.province")
	f.Add("fields=a&fields=b")
	f.Add("fields=%2e%2e")
	f.Add("x=1")
	f.Fuzz(func(t *testing.T, query string) {
		fields, err := parseFields(query)
		if err != nil {
			return
		}
		if query != "" && len(fields) == 0 {
			t.Fatalf("%q: accepted no fields", query)
		}
		for _, f := range fields {
			if !policy.ValidFieldPath(f) {
				t.Fatalf("%q: accepted field %q", query, f)
			}
		}
	})
}

func FuzzVerifyBody(f *testing.F) {
	f.Add([]byte(`{"nationalId":"001099000001","fullName":"Nguyễn Văn An"}`))
	f.Add([]byte(`{"nationalId":"001099000001","fullName":"a","full\u004eame":"b"}`))
	f.Add([]byte(`{"nationalId":"001099000001","a.b":1,"c":null,"d":true}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := parseVerifyBody(body)
		if req.nationalID != "" && !validNationalID(req.nationalID) {
			t.Fatalf("%q: returned ID %q for the audit log", body, req.nationalID)
		}
		if err != nil {
			return
		}
		if !validNationalID(req.nationalID) || len(req.fields) == 0 {
			t.Fatalf("accepted %q as %+v", body, req)
		}
		for _, fl := range req.fields {
			var v any
			if !policy.ValidFieldPath(fl.path) || json.Unmarshal(fl.value, &v) != nil {
				t.Fatalf("accepted field %q = %q", fl.path, fl.value)
			}
			if _, scalar := v.(map[string]any); scalar {
				t.Fatalf("accepted an object for %q", fl.path)
			}
		}
	})
}

func FuzzBatchBody(f *testing.F) {
	f.Add([]byte(`{"nationalIds":["001099000001","001099000002"]}`))
	f.Add([]byte(`{"nationalIds":["001099000001"],"nationalIds":[]}`))
	f.Add([]byte(`{"nationalIds":[1]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ids, err := parseBatchBody(body)
		if err != nil && len(ids) == 0 {
			return
		}
		if len(ids) == 0 || len(ids) > MaxBatch {
			t.Fatalf("accepted %d IDs", len(ids))
		}
		for _, id := range ids {
			if !validNationalID(id) {
				t.Fatalf("accepted ID %q", id)
			}
		}
	})
}

func FuzzPolicyDocument(f *testing.F) {
	f.Add([]byte(`{"version":"v","agencies":[{"agencyCode":"BYT","allowedFields":["fullName"],"allowedOperations":["Lookup"],"rateLimit":{"requestsPerSecond":1,"burst":1}}]}`))
	f.Add([]byte("version: v\nagencies:\n- agencyCode: BYT\n  allowedFields: [a.b]\n  allowedOperations: [Verify]\n  rateLimit: {requestsPerSecond: 2, burst: 3, dailyQuota: 4}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, err := policy.Parse(data)
		if err != nil {
			return
		}
		for _, a := range doc.Agencies {
			if !policy.ValidAgencyCode(a.AgencyCode) || len(a.AllowedFields) == 0 || len(a.AllowedOperations) == 0 ||
				a.RateLimit.RequestsPerSecond < 1 || a.RateLimit.Burst < 1 {
				t.Fatalf("accepted invalid entry %+v", a)
			}
			if _, err := compile(policy.Merge(map[string]*policy.Document{"f": doc}), nil, nil); err != nil && !strings.Contains(err.Error(), "agency") {
				t.Fatalf("accepted document does not compile: %v", err)
			}
		}
	})
}

func FuzzHistoryPath(f *testing.F) {
	f.Add("/v1/citizens/001099000001/accessHistory")
	f.Add("/v1/citizens//accessHistory")
	f.Add("/v1/citizens/001099000001/accessHistory/accessHistory")
	f.Fuzz(func(t *testing.T, path string) {
		id, err := parseHistoryPath(path)
		if err == nil && (!validNationalID(id) || path != lookupPrefix+id+historySuffix) {
			t.Fatalf("accepted %q as %q", path, id)
		}
	})
}
