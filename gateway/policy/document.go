// Package policy is the gateway's policy model: the document format shared by
// the operator (which renders it into policy shards) and the gateway (which
// loads it from a file or from the shards). It alone encodes a document
// (EncodeAgency, Compress), decodes one (Parse, DecodeShard) and compares
// entries (SameEntry), so that the operator and the gateway cannot read the
// format differently.
package policy

import "time"

// Operation names an operation an agency may perform.
type Operation string

const (
	// OperationLookup reads one citizen record, projected to the allowed fields.
	OperationLookup Operation = "Lookup"
	// OperationVerify compares submitted values with a record and answers match or not.
	OperationVerify Operation = "Verify"
	// OperationBatchLookup reads up to 100 records in one request.
	OperationBatchLookup Operation = "BatchLookup"
	// OperationAccessHistory answers a citizen's access history: the
	// successful reads of the citizen's record by every agency. It is meant
	// for the citizen portal's own connection only.
	OperationAccessHistory Operation = "AccessHistory"
)

// Operations are the known operations, in the order of their metrics slots.
var Operations = []Operation{OperationLookup, OperationVerify, OperationBatchLookup, OperationAccessHistory}

// MaxDisclosureDelay bounds disclosureDelay (ten years), as the
// AgencyConnection API does.
const MaxDisclosureDelay = 87600 * time.Hour

// MaxPurposeBytes and MaxDisplayNameBytes bound purpose and displayName, as
// the AgencyConnection API does.
const (
	MaxPurposeBytes     = 2048
	MaxDisplayNameBytes = 256
)

// Document is one policy document: the whole --policy-file, or one data value
// of a policy shard. A gateway's policy is the union of its documents.
type Document struct {
	// Version is any string naming this policy; the gateway reports it.
	Version string `json:"version"`
	// Agencies are the agencies this document grants (or denies) access to.
	Agencies []Agency `json:"agencies"`
}

// Agency is one agency's entry in a policy document.
type Agency struct {
	// AgencyCode is the identity carried by the agency's client certificate
	// as the URI SAN spiffe://popconnect.io/agency/<AgencyCode>.
	AgencyCode string `json:"agencyCode"`
	// AllowedFields are the dotted record paths the agency may read.
	AllowedFields []string `json:"allowedFields"`
	// AllowedOperations are the operations the agency may perform.
	AllowedOperations []Operation `json:"allowedOperations"`
	// RateLimit bounds how fast and how much the agency may read.
	RateLimit RateLimit `json:"rateLimit"`
	// ValidUntil, when set, is the end of the data-sharing agreement: the
	// gateway refuses the agency from then on.
	ValidUntil *time.Time `json:"validUntil,omitempty"`
	// Suspended, when true, refuses every request of the agency.
	Suspended bool `json:"suspended,omitempty"`
	// CertificateSHA256, when present (even empty), pins the agency to
	// these leaf certificates: the lowercase hex SHA-256 of each DER the
	// agency may present. Any other certificate is refused, whatever CA
	// signed it. Absent (nil) means any certificate the client CA verifies,
	// as hand-written policy files have it. omitzero keeps an empty list:
	// an operator-written entry with no usable certificate pins to nothing.
	CertificateSHA256 []string `json:"certificateSHA256,omitzero"`
	// Purpose says why the agency reads the data; every audit record of the
	// agency's requests carries it.
	Purpose string `json:"purpose,omitempty"`
	// DisplayName is the agency's name for humans: a citizen's access
	// history names the agency by it (by the code when empty).
	DisplayName string `json:"displayName,omitempty"`
	// DisclosureDelay, when set, is a Go duration (such as "8760h"): a read
	// of the agency appears in the citizen's access history only once that
	// long has passed since the read (covert investigations). Absent or
	// zero: at once.
	DisclosureDelay string `json:"disclosureDelay,omitempty"`
	// RequireCaseReference, when true, refuses a request of the agency
	// without a Popconnect-Case-Reference header.
	RequireCaseReference bool `json:"requireCaseReference,omitempty"`
}

// Delay is the parsed DisclosureDelay: zero when absent. The entry must
// have been validated.
func (a *Agency) Delay() time.Duration {
	if a.DisclosureDelay == "" {
		return 0
	}
	d, err := time.ParseDuration(a.DisclosureDelay)
	if err != nil {
		return 0
	}
	return d
}

// RateLimit is an agency's token bucket and daily quota.
type RateLimit struct {
	// RequestsPerSecond is the sustained rate.
	RequestsPerSecond int32 `json:"requestsPerSecond"`
	// Burst is the bucket size.
	Burst int32 `json:"burst"`
	// DailyQuota, when set, is the number of requests allowed per local day.
	DailyQuota *int64 `json:"dailyQuota,omitempty"`
}
