package policy

import "slices"

// Equality of entries decides whether a gateway's reload keeps an agency's
// compiled state (its filter, its rate limiter) or builds it anew, and
// whether two shards that both hold an agency agree. A field left out here
// would be ignored on hot reload: TestSameEntryCoversEveryField fails when
// a field of Agency is not compared.

// SameEntry reports whether two entries grant exactly the same thing;
// the order of fields and operations does not matter.
func SameEntry(a, b Agency) bool {
	if a.AgencyCode != b.AgencyCode || a.Suspended != b.Suspended || !a.RateLimit.Equal(b.RateLimit) {
		return false
	}
	if (a.ValidUntil == nil) != (b.ValidUntil == nil) || a.ValidUntil != nil && !a.ValidUntil.Equal(*b.ValidUntil) {
		return false
	}
	if a.Purpose != b.Purpose || a.DisplayName != b.DisplayName || a.RequireCaseReference != b.RequireCaseReference ||
		a.Delay() != b.Delay() {
		return false
	}
	if (a.CertificateSHA256 == nil) != (b.CertificateSHA256 == nil) { // absent pins any certificate, empty none
		return false
	}
	return sameSet(a.AllowedFields, b.AllowedFields) && sameSet(a.AllowedOperations, b.AllowedOperations) &&
		sameSet(a.CertificateSHA256, b.CertificateSHA256)
}

// Equal reports whether two rate limits are the same.
func (r RateLimit) Equal(o RateLimit) bool {
	if r.RequestsPerSecond != o.RequestsPerSecond || r.Burst != o.Burst {
		return false
	}
	if (r.DailyQuota == nil) != (o.DailyQuota == nil) {
		return false
	}
	return r.DailyQuota == nil || *r.DailyQuota == *o.DailyQuota
}

func sameSet[T ~string](a, b []T) bool {
	if slices.Equal(a, b) { // the usual case: the operator renders in a stable order
		return true
	}
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(slices.Compact(x), slices.Compact(y))
}
