package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/popconnect/popconnect/gateway/filter"
)

// MaxDocumentBytes bounds one policy document; a ConfigMap holds at most
// 1 MiB, and a gzip-compressed shard may expand to more.
const MaxDocumentBytes = 64 << 20

// AgencyCodePattern is the AgencyConnection spec.agencyCode rule.
const AgencyCodePattern = `^[A-Z0-9][A-Z0-9-]{1,31}$`

// ValidAgencyCode reports whether code matches AgencyCodePattern.
func ValidAgencyCode(code string) bool {
	if len(code) < 2 || len(code) > 32 {
		return false
	}
	for i := 0; i < len(code); i++ {
		c := code[i]
		ok := c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || (c == '-' && i > 0)
		if !ok {
			return false
		}
	}
	return true
}

// Parse decodes a policy document from JSON or YAML and validates it.
// Unknown keys are errors: a misspelt "suspended" must not silently grant
// access.
func Parse(data []byte) (*Document, error) {
	if len(data) > MaxDocumentBytes {
		return nil, fmt.Errorf("policy document is %d bytes, more than %d", len(data), MaxDocumentBytes)
	}
	var doc Document
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&doc); err != nil {
			return nil, fmt.Errorf("decoding JSON policy document: %w", err)
		}
		if dec.More() {
			return nil, errors.New("decoding JSON policy document: data after the document")
		}
	} else if err := yaml.UnmarshalStrict(data, &doc); err != nil {
		return nil, fmt.Errorf("decoding YAML policy document: %w", err)
	}
	if err := doc.Validate(); err != nil {
		return nil, err
	}
	return &doc, nil
}

// Validate checks the required fields and bounds of every entry.
func (d *Document) Validate() error {
	if d.Agencies == nil {
		return errors.New("policy document: agencies is required (use [] for none)")
	}
	for i := range d.Agencies {
		if err := d.Agencies[i].Validate(); err != nil {
			return fmt.Errorf("policy document: agencies[%d]: %w", i, err)
		}
	}
	return nil
}

// Validate checks one entry.
func (a *Agency) Validate() error {
	if !ValidAgencyCode(a.AgencyCode) {
		return fmt.Errorf("agencyCode %q does not match %s", a.AgencyCode, AgencyCodePattern)
	}
	if len(a.AllowedFields) == 0 {
		return fmt.Errorf("agency %s: allowedFields is required", a.AgencyCode)
	}
	for _, f := range a.AllowedFields {
		if !ValidFieldPath(f) {
			return fmt.Errorf("agency %s: allowedFields: invalid field path %q", a.AgencyCode, f)
		}
	}
	if len(a.AllowedOperations) == 0 {
		return fmt.Errorf("agency %s: allowedOperations is required", a.AgencyCode)
	}
	for _, op := range a.AllowedOperations {
		if !slices.Contains(Operations, op) {
			return fmt.Errorf("agency %s: allowedOperations: unknown operation %q", a.AgencyCode, op)
		}
	}
	for _, pin := range a.CertificateSHA256 {
		if !validSHA256Hex(pin) {
			return fmt.Errorf("agency %s: certificateSHA256: %q is not 64 lowercase hex digits", a.AgencyCode, pin)
		}
	}
	if len(a.Purpose) > MaxPurposeBytes {
		return fmt.Errorf("agency %s: purpose is longer than %d bytes", a.AgencyCode, MaxPurposeBytes)
	}
	if len(a.DisplayName) > MaxDisplayNameBytes {
		return fmt.Errorf("agency %s: displayName is longer than %d bytes", a.AgencyCode, MaxDisplayNameBytes)
	}
	if a.DisclosureDelay != "" {
		d, err := time.ParseDuration(a.DisclosureDelay)
		if err != nil {
			return fmt.Errorf("agency %s: disclosureDelay %q is not a Go duration such as \"8760h\"", a.AgencyCode, a.DisclosureDelay)
		}
		if d < 0 || d > MaxDisclosureDelay {
			return fmt.Errorf("agency %s: disclosureDelay %s is not within 0..%s", a.AgencyCode, a.DisclosureDelay, MaxDisclosureDelay)
		}
	}
	rl := a.RateLimit
	if rl.RequestsPerSecond < 1 {
		return fmt.Errorf("agency %s: rateLimit.requestsPerSecond is required and must be >= 1", a.AgencyCode)
	}
	if rl.Burst < 1 {
		return fmt.Errorf("agency %s: rateLimit.burst is required and must be >= 1", a.AgencyCode)
	}
	if rl.DailyQuota != nil && *rl.DailyQuota < 1 {
		return fmt.Errorf("agency %s: rateLimit.dailyQuota must be >= 1 when set", a.AgencyCode)
	}
	return nil
}

// ValidFieldPath reports whether p is a dotted path of segments made of
// ASCII letters and digits, each starting with a letter (the FieldCatalog
// rule).
func ValidFieldPath(p string) bool { return filter.ValidPath(p) }

// validSHA256Hex reports whether s is a SHA-256 digest in lowercase hex.
func validSHA256Hex(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
