// Package ratelimit enforces an agency's token bucket and daily quota.
package ratelimit

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/popconnect/popconnect/gateway/policy"
)

// Decision is the outcome of one admission check.
type Decision struct {
	// Allowed is true when the request may proceed.
	Allowed bool
	// QuotaExceeded is true when the daily quota, not the rate, refused it.
	QuotaExceeded bool
	// RetryAfter is how long to wait before the request could succeed.
	RetryAfter time.Duration
	// Never is true when the request costs more than the burst (or the
	// daily quota, with QuotaExceeded): waiting will not help.
	Never bool
}

// Limiter is one agency's admission state. It is safe for concurrent use.
type Limiter struct {
	limit  policy.RateLimit
	loc    *time.Location
	bucket *rate.Limiter

	mu   sync.Mutex
	day  int // local date as yyyymmdd; used counts requests on it
	used int64
}

// New returns a limiter for limit whose quota days are calendar days in loc.
func New(limit policy.RateLimit, loc *time.Location) *Limiter {
	return &Limiter{
		limit:  limit,
		loc:    loc,
		bucket: rate.NewLimiter(rate.Limit(limit.RequestsPerSecond), int(limit.Burst)),
	}
}

// Next returns the limiter to use after a policy reload. An unchanged limit
// keeps prev itself, so the bucket and the quota count carry over; a changed
// limit gets a fresh bucket but keeps today's quota count, so editing a
// policy never hands an agency a new day's quota.
func Next(prev *Limiter, limit policy.RateLimit, loc *time.Location) *Limiter {
	if prev != nil && prev.limit.Equal(limit) && prev.loc == loc {
		return prev
	}
	l := New(limit, loc)
	if prev != nil {
		prev.mu.Lock()
		l.day, l.used = prev.day, prev.used
		prev.mu.Unlock()
	}
	return l
}

// Limit is the limit the limiter enforces.
func (l *Limiter) Limit() policy.RateLimit { return l.limit }

func localDay(t time.Time) int {
	y, m, d := t.Date()
	return y*10000 + int(m)*100 + d
}

// Allow admits or refuses one request at now. A refused request consumes
// neither a token nor quota.
func (l *Limiter) Allow(now time.Time) Decision { return l.AllowN(now, 1) }

// AllowN admits or refuses, as a whole, a request that costs n requests (a
// BatchLookup of n IDs) at now. A refused request consumes neither tokens
// nor quota. A cost above the burst or the daily quota can never be
// admitted: it is refused with Never set and no RetryAfter, rather than
// charged in part, since what the agency must do is split the request.
func (l *Limiter) AllowN(now time.Time, n int) Decision {
	local := now.In(l.loc)
	day := localDay(local)
	quota := l.limit.DailyQuota
	if n > int(l.limit.Burst) {
		return Decision{Never: true}
	}
	if quota != nil && int64(n) > *quota {
		return Decision{QuotaExceeded: true, Never: true}
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	if l.day != day {
		l.day, l.used = day, 0
	}
	if quota != nil && l.used+int64(n) > *quota {
		y, m, d := local.Date()
		midnight := time.Date(y, m, d+1, 0, 0, 0, 0, l.loc)
		return Decision{QuotaExceeded: true, RetryAfter: midnight.Sub(now)}
	}
	if !l.bucket.AllowN(now, n) {
		missing := float64(n) - l.bucket.TokensAt(now)
		wait := time.Duration(math.Ceil(missing / float64(l.limit.RequestsPerSecond) * float64(time.Second)))
		return Decision{RetryAfter: max(wait, time.Millisecond)}
	}
	l.used += int64(n)
	return Decision{Allowed: true}
}

// Used reports the requests admitted on the local day of now.
func (l *Limiter) Used(now time.Time) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.day != localDay(now.In(l.loc)) {
		return 0
	}
	return l.used
}
