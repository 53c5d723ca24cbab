package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/popconnect/popconnect/gateway/filter"
	"github.com/popconnect/popconnect/gateway/policy"
)

// MaxBatch is the most national IDs one BatchLookup may name.
const MaxBatch = 100

// maxVerifyFields bounds the fields one Verify may compare.
const maxVerifyFields = 256

const lookupPrefix = "/v1/citizens/"

// validNationalID reports whether s is exactly 12 ASCII digits. It is
// checked before anything is sent upstream.
func validNationalID(s string) bool {
	if len(s) != 12 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func invalidID() *apiError {
	return errorf(http.StatusBadRequest, "invalid_national_id", "a national ID is exactly 12 digits")
}

// parseLookupPath extracts the national ID from /v1/citizens/{nationalId}.
func parseLookupPath(path string) (string, *apiError) {
	id, ok := strings.CutPrefix(path, lookupPrefix)
	if !ok {
		return "", errorf(http.StatusNotFound, "not_found", "no such endpoint")
	}
	if !validNationalID(id) {
		return "", invalidID()
	}
	return id, nil
}

// parseFields reads the optional ?fields=a,b of a Lookup. It returns nil
// when the parameter is absent. Any other parameter is refused, so a typo
// does not silently widen a response.
func parseFields(rawQuery string) ([]string, *apiError) {
	if rawQuery == "" {
		return nil, nil
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "invalid_request", "malformed query string")
	}
	var fields []string
	for k, vs := range q {
		if k != "fields" {
			return nil, errorf(http.StatusBadRequest, "invalid_request", fmt.Sprintf("unknown query parameter %q", truncate(k)))
		}
		for _, v := range vs {
			for f := range strings.SplitSeq(v, ",") {
				if !policy.ValidFieldPath(f) {
					return nil, errorf(http.StatusBadRequest, "invalid_request", fmt.Sprintf("invalid field name %q", truncate(f)))
				}
				fields = append(fields, f)
			}
		}
	}
	if len(fields) == 0 || len(fields) > maxVerifyFields {
		return nil, errorf(http.StatusBadRequest, "invalid_request", "fields must name 1..256 fields")
	}
	return fields, nil
}

// verifyRequest is a parsed Verify body: the ID and each compared field
// with its raw JSON scalar value.
type verifyRequest struct {
	nationalID string
	fields     []verifyField
}

type verifyField struct {
	path  string
	value []byte
}

// parseVerifyBody parses {"nationalId": "...", "<field>": scalar...}.
// Duplicate keys (after unescaping) are refused: which of two values would
// be compared is exactly the ambiguity an attacker wants. The request is
// returned even with an error, its nationalID set when a valid one was read
// before the error, so the refusal's audit record can name it.
func parseVerifyBody(body []byte) (*verifyRequest, *apiError) {
	req := &verifyRequest{}
	var bad *apiError
	err := filter.Members(body, func(key, value []byte) error {
		if string(key) == "nationalId" {
			var id string
			if json.Unmarshal(value, &id) != nil || !validNationalID(id) {
				bad = invalidID()
				return bad
			}
			req.nationalID = id
			return nil
		}
		if !policy.ValidFieldPath(string(key)) {
			bad = errorf(http.StatusBadRequest, "invalid_request", fmt.Sprintf("invalid field name %q", truncate(string(key))))
			return bad
		}
		if value[0] == '{' || value[0] == '[' {
			bad = errorf(http.StatusBadRequest, "invalid_request", fmt.Sprintf("field %s: compare a single value, not an object or array", key))
			return bad
		}
		if len(req.fields) == maxVerifyFields {
			bad = errorf(http.StatusBadRequest, "invalid_request", "too many fields to verify")
			return bad
		}
		req.fields = append(req.fields, verifyField{path: string(key), value: value})
		return nil
	})
	if bad != nil {
		return req, bad
	}
	if err != nil {
		return req, errorf(http.StatusBadRequest, "invalid_request", "body must be one JSON object without duplicate keys")
	}
	if req.nationalID == "" {
		return req, invalidID()
	}
	if len(req.fields) == 0 {
		return req, errorf(http.StatusBadRequest, "invalid_request", "name at least one field to verify")
	}
	return req, nil
}

// parseBatchBody parses {"nationalIds": [...]} with 1..MaxBatch valid IDs.
// With an error, it still returns the list when the list itself was whole
// and valid (the error came after it), so the refusal's audit record can
// name the citizens; a list cut short by an error is not returned.
func parseBatchBody(body []byte) ([]string, *apiError) {
	var ids, complete []string
	seen := false
	var bad *apiError
	err := filter.Members(body, func(key, value []byte) error {
		if string(key) != "nationalIds" {
			bad = errorf(http.StatusBadRequest, "invalid_request", fmt.Sprintf("unknown key %q", truncate(string(key))))
			return bad
		}
		seen = true
		err := filter.Elements(value, func(elem []byte) error {
			if len(ids) == MaxBatch {
				bad = errorf(http.StatusBadRequest, "batch_too_large", fmt.Sprintf("a batch names at most %d national IDs", MaxBatch))
				return bad
			}
			var id string
			if json.Unmarshal(elem, &id) != nil || !validNationalID(id) {
				bad = invalidID()
				return bad
			}
			ids = append(ids, id)
			return nil
		})
		if err == nil && bad == nil {
			complete = ids
		}
		return err
	})
	if bad != nil {
		return complete, bad
	}
	if err != nil {
		return complete, errorf(http.StatusBadRequest, "invalid_request", `body must be {"nationalIds": [...]} without duplicate keys`)
	}
	if !seen || len(ids) == 0 {
		return nil, errorf(http.StatusBadRequest, "invalid_request", "nationalIds must name at least one national ID")
	}
	return ids, nil
}

// CaseReferenceHeader names the case a request is made for; the audit
// record carries it.
const CaseReferenceHeader = "Popconnect-Case-Reference"

// MaxCaseReferenceBytes bounds a case reference.
const MaxCaseReferenceBytes = 128

// caseReference returns the request's Popconnect-Case-Reference: "" when
// absent, an error when present but not one value of 1..128 printable
// ASCII bytes (0x20..0x7E). net/http has already removed the whitespace
// around the value, so a value of spaces only is empty, and refused.
func caseReference(h http.Header) (string, *apiError) {
	vs, ok := h[CaseReferenceHeader]
	if !ok {
		return "", nil
	}
	if len(vs) != 1 || !ValidCaseReference(vs[0]) {
		return "", errorf(http.StatusBadRequest, "invalid_case_reference",
			fmt.Sprintf("%s must be one value of 1 to %d printable ASCII characters", CaseReferenceHeader, MaxCaseReferenceBytes))
	}
	return vs[0], nil
}

// ValidCaseReference reports whether s is 1..MaxCaseReferenceBytes bytes,
// each printable ASCII (0x20..0x7E).
func ValidCaseReference(s string) bool {
	if len(s) == 0 || len(s) > MaxCaseReferenceBytes {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// truncate keeps client-supplied text in error messages short.
func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
