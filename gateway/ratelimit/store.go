package ratelimit

import (
	"time"

	"github.com/popconnect/popconnect/gateway/policy"
)

// Admitter is one agency's admission state: a Limiter (counted in this
// process) or a Shared (counted in Redis by every replica). It is safe for
// concurrent use.
type Admitter interface {
	// AllowN admits or refuses, as a whole, a request that costs n at now
	// (see Limiter.AllowN).
	AllowN(now time.Time, n int) Decision
	// Limit is the limit it enforces.
	Limit() policy.RateLimit
}

// Store makes the agencies' admitters when a policy is compiled.
type Store interface {
	// Next returns the admitter of agency after a policy reload; prev is
	// the one it had (nil for a new agency). Like the package's Next, an
	// unchanged limit keeps prev, and today's quota count never restarts.
	Next(prev Admitter, agency string, limit policy.RateLimit, loc *time.Location) Admitter
}

// Local counts in this process: each replica enforces the whole limit on
// its own, and a restart forgets the day's count.
type Local struct{}

// Next implements Store with the package's Next.
func (Local) Next(prev Admitter, _ string, limit policy.RateLimit, loc *time.Location) Admitter {
	p, _ := prev.(*Limiter)
	return Next(p, limit, loc)
}
