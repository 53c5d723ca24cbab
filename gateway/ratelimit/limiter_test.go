package ratelimit

import (
	"testing"
	"time"

	"github.com/popconnect/popconnect/gateway/policy"
)

func hcm(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Asia/Ho_Chi_Minh")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func quota(n int64) *int64 { return &n }

func TestTokenBucket(t *testing.T) {
	loc := hcm(t)
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, loc)
	l := New(policy.RateLimit{RequestsPerSecond: 2, Burst: 3}, loc)
	steps := []struct {
		advance time.Duration
		allowed bool
		retry   time.Duration
	}{
		{0, true, 0}, {0, true, 0}, {0, true, 0}, // the burst
		{0, false, 500 * time.Millisecond}, // empty: one token in 1/2 s
		{250 * time.Millisecond, false, 250 * time.Millisecond},
		{250 * time.Millisecond, true, 0},
		{0, false, 500 * time.Millisecond},
		{10 * time.Second, true, 0}, // refilled, capped at burst
		{0, true, 0}, {0, true, 0}, {0, false, 500 * time.Millisecond},
	}
	for i, s := range steps {
		now = now.Add(s.advance)
		d := l.Allow(now)
		if d.Allowed != s.allowed || d.RetryAfter != s.retry || d.QuotaExceeded {
			t.Fatalf("step %d: %+v, want allowed=%v retry=%v", i, d, s.allowed, s.retry)
		}
	}
}

func TestDailyQuotaResetsAtLocalMidnight(t *testing.T) {
	loc := hcm(t)
	l := New(policy.RateLimit{RequestsPerSecond: 1000, Burst: 1000, DailyQuota: quota(2)}, loc)
	// 23:59:30 local is 16:59:30 UTC: the UTC day is not the quota day.
	now := time.Date(2026, 3, 1, 23, 59, 30, 0, loc)
	for i := range 2 {
		if d := l.Allow(now); !d.Allowed {
			t.Fatalf("request %d refused: %+v", i, d)
		}
	}
	d := l.Allow(now)
	if d.Allowed || !d.QuotaExceeded || d.RetryAfter != 30*time.Second {
		t.Fatalf("over quota: %+v", d)
	}
	if l.Used(now) != 2 {
		t.Fatalf("used %d", l.Used(now))
	}
	now = time.Date(2026, 3, 2, 0, 0, 0, 0, loc)
	if d := l.Allow(now); !d.Allowed {
		t.Fatalf("new day refused: %+v", d)
	}
}

func TestNextKeepsStateAcrossReloads(t *testing.T) {
	loc := hcm(t)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, loc)
	limit := policy.RateLimit{RequestsPerSecond: 1, Burst: 1, DailyQuota: quota(5)}
	l := New(limit, loc)
	if !l.Allow(now).Allowed {
		t.Fatal("first request refused")
	}
	same := Next(l, policy.RateLimit{RequestsPerSecond: 1, Burst: 1, DailyQuota: quota(5)}, loc)
	if same != l {
		t.Fatal("unchanged limit must keep the limiter")
	}
	if same.Allow(now).Allowed {
		t.Fatal("bucket was reset by a reload")
	}
	changed := Next(l, policy.RateLimit{RequestsPerSecond: 10, Burst: 10, DailyQuota: quota(2)}, loc)
	if changed == l || changed.Used(now) != 1 {
		t.Fatalf("changed limit: same=%v used=%d", changed == l, changed.Used(now))
	}
	if !changed.Allow(now).Allowed || changed.Allow(now).Allowed {
		t.Fatal("quota count must carry over a limit change")
	}
}

// TestAllowNChargesN: a request that costs n takes n tokens and n quota
// units, or nothing when refused; one above the burst or the quota can
// never pass.
func TestAllowNChargesN(t *testing.T) {
	loc := hcm(t)
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, loc)
	l := New(policy.RateLimit{RequestsPerSecond: 1, Burst: 10, DailyQuota: quota(25)}, loc)
	steps := []struct {
		advance time.Duration
		n       int
		want    Decision
	}{
		{0, 11, Decision{Never: true}},                          // above the burst: never
		{0, 26, Decision{Never: true}},                          // above the burst and the quota
		{0, 10, Decision{Allowed: true}},                        // the whole burst
		{0, 1, Decision{RetryAfter: time.Second}},               // empty
		{5 * time.Second, 6, Decision{RetryAfter: time.Second}}, // 5 tokens, one missing: spends nothing
		{time.Second, 6, Decision{Allowed: true}},
		{time.Hour, 10, Decision{QuotaExceeded: true, RetryAfter: 13*time.Hour + 59*time.Minute + 59*time.Second}}, // 16+10 > 25
		{0, 9, Decision{Allowed: true}}, // 25 of 25
		{0, 1, Decision{QuotaExceeded: true, RetryAfter: 13*time.Hour + 59*time.Minute + 59*time.Second}},
	}
	for i, s := range steps {
		now = now.Add(s.advance)
		if s.want.RetryAfter > time.Hour {
			s.want.RetryAfter = time.Date(2026, 3, 2, 0, 0, 0, 0, loc).Sub(now)
		}
		if got := l.AllowN(now, s.n); got != s.want {
			t.Fatalf("step %d (n=%d): %+v, want %+v", i, s.n, got, s.want)
		}
	}
	if got := l.Used(now); got != 25 {
		t.Fatalf("used %d, want 25", got)
	}
	q := New(policy.RateLimit{RequestsPerSecond: 100, Burst: 100, DailyQuota: quota(5)}, loc)
	if got := q.AllowN(now, 6); got != (Decision{QuotaExceeded: true, Never: true}) {
		t.Fatalf("n above the quota: %+v", got)
	}
}
