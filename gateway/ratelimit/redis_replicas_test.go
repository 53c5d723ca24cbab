package ratelimit

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/popconnect/popconnect/gateway/policy"
	"github.com/popconnect/popconnect/internal/testredis"
)

// TestRedisShareDividesByLiveReplicas: the share divides by the replicas
// live in Redis when it went away, not by the configured count: three
// replicas count each other, one stops (and says so), and the two left
// each take half of the quota when the server stops.
func TestRedisShareDividesByLiveReplicas(t *testing.T) {
	srv := testredis.Start(t)
	loc := hcm(t)
	limit := policy.RateLimit{RequestsPerSecond: 1000, Burst: 1000, DailyQuota: quota(90)}
	var rs []*Redis
	for range 3 {
		rs = append(rs, replica(t, srv, 5, nil))
	}
	for i, r := range rs {
		waitFor(t, fmt.Sprintf("3 live replicas seen by replica %d", i), func() bool { return r.State().LiveReplicas == 3 })
	}
	if err := rs[2].Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "2 live replicas once one stopped", func() bool { return rs[0].State().LiveReplicas == 2 })

	srv.Stop()
	a := rs[0].Next(nil, "A1", limit, loc)
	allowed := 0
	for range 90 {
		if a.AllowN(time.Now(), 1).Allowed {
			allowed++
		}
	}
	if st := rs[0].State(); allowed != 45 || st.Shared || st.Replicas != 2 {
		t.Fatalf("%d allowed on the share (state %+v), want 90/2 = 45", allowed, st)
	}
}

// TestRedisShareBeforeAnyCount: a replica that never reached the server
// divides by the configured replicas.
func TestRedisShareBeforeAnyCount(t *testing.T) {
	srv := testredis.Start(t)
	srv.Stop()
	r := replica(t, srv, 4, nil)
	a := r.Next(nil, "A1", policy.RateLimit{RequestsPerSecond: 1000, Burst: 1000, DailyQuota: quota(100)}, hcm(t))
	allowed := 0
	for range 100 {
		if a.AllowN(time.Now(), 1).Allowed {
			allowed++
		}
	}
	if st := r.State(); allowed != 25 || st.LiveReplicas != 0 || st.Replicas != 4 {
		t.Fatalf("%d allowed (state %+v), want 100/4 = 25", allowed, st)
	}
}

// TestRedisConcurrentCallsShareTheQuota: many concurrent callers on two
// replicas, their calls sent together: each gets its own answer, and
// exactly the quota is admitted.
func TestRedisConcurrentCallsShareTheQuota(t *testing.T) {
	srv := testredis.Start(t)
	loc := hcm(t)
	limit := policy.RateLimit{RequestsPerSecond: 1 << 20, Burst: 1 << 20, DailyQuota: quota(1000)}
	as := []Admitter{replica(t, srv, 2, nil).Next(nil, "A1", limit, loc), replica(t, srv, 2, nil).Next(nil, "A1", limit, loc)}
	var allowed, refused atomic.Int64
	var wg sync.WaitGroup
	for g := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 25 {
				d := as[g%2].AllowN(time.Now(), 1)
				switch {
				case d.Allowed:
					allowed.Add(1)
				case d.QuotaExceeded:
					refused.Add(1)
				default:
					t.Errorf("neither admitted nor over the quota: %+v", d)
				}
			}
		}()
	}
	wg.Wait()
	if allowed.Load() != 1000 || refused.Load() != 600 {
		t.Fatalf("%d allowed, %d over the quota, want 1000 and 600", allowed.Load(), refused.Load())
	}
}

// TestRedisScriptCacheFlushed: a server that lost its scripts (SCRIPT
// FLUSH, as after a restart) gets them again, and no call falls back.
func TestRedisScriptCacheFlushed(t *testing.T) {
	srv := testredis.Start(t)
	r := replica(t, srv, 1, nil)
	// 10 a second earns no unit in a lease: both calls go to Redis.
	a := r.Next(nil, "A1", policy.RateLimit{RequestsPerSecond: 10, Burst: 1000, DailyQuota: quota(100)}, hcm(t))
	if d := a.AllowN(time.Now(), 1); !d.Allowed {
		t.Fatalf("%+v", d)
	}
	if err := client(t, srv).ScriptFlush(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	if d := a.AllowN(time.Now(), 1); !d.Allowed || !r.Shared() {
		t.Fatalf("after SCRIPT FLUSH: %+v, shared %v", d, r.Shared())
	}
	if got := quotaCount(t, srv, "A1", time.Now().In(hcm(t))); got != 2 {
		t.Fatalf("count %d, want 2", got)
	}
}
