package ratelimit

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/popconnect/popconnect/gateway/policy"
	"github.com/popconnect/popconnect/internal/testredis"
)

// replica is one gateway's store against srv.
func replica(t *testing.T, srv *testredis.Server, replicas int, onState func(bool)) *Redis {
	t.Helper()
	r, err := NewRedis(RedisConfig{
		Addr: srv.Addr(), Password: srv.Password(), Replicas: replicas,
		// Generous: a slow shared machine must not make the tests of the
		// shared count fall back.
		Timeout:       time.Second,
		ProbeInterval: 50 * time.Millisecond,
		OnState:       onState,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// waitFor polls cond, for at most 10 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func client(t *testing.T, srv *testredis.Server) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), Password: srv.Password()})
	t.Cleanup(func() { c.Close() })
	return c
}

func quotaCount(t *testing.T, srv *testredis.Server, agency string, day time.Time) int64 {
	t.Helper()
	v, err := client(t, srv).Get(context.Background(), DefaultKeyPrefix+"{"+agency+"}:quota:"+strconv.Itoa(localDay(day))).Int64()
	if err != nil && err != redis.Nil {
		t.Fatal(err)
	}
	return v
}

// TestRedisSharesTheQuota: three replicas share one daily quota of 10, and
// a replica that restarts (a new store) does not get it again.
func TestRedisSharesTheQuota(t *testing.T) {
	srv := testredis.Start(t)
	loc := hcm(t)
	limit := policy.RateLimit{RequestsPerSecond: 1000, Burst: 1000, DailyQuota: quota(10)}
	var as []Admitter
	for range 3 {
		as = append(as, replica(t, srv, 3, nil).Next(nil, "A1", limit, loc))
	}
	now := time.Now()
	allowed := 0
	for i := range 30 {
		d := as[i%3].AllowN(now, 1)
		if d.Allowed {
			allowed++
		} else if !d.QuotaExceeded || d.RetryAfter <= 0 || d.RetryAfter > 24*time.Hour {
			t.Fatalf("request %d: %+v", i, d)
		}
	}
	if allowed != 10 {
		t.Fatalf("%d allowed, want 10", allowed)
	}
	restarted := replica(t, srv, 3, nil).Next(nil, "A1", limit, loc)
	if d := restarted.AllowN(now, 1); d.Allowed || !d.QuotaExceeded {
		t.Fatalf("a restarted replica got more quota: %+v", d)
	}
	if got := quotaCount(t, srv, "A1", now.In(loc)); got != 10 {
		t.Fatalf("count in Redis %d, want 10", got)
	}
	// The key goes after the day (and its hour of grace).
	ttl, err := client(t, srv).TTL(context.Background(), DefaultKeyPrefix+"{A1}:quota:"+strconv.Itoa(localDay(now.In(loc)))).Result()
	if err != nil || ttl <= 0 || ttl > 25*time.Hour {
		t.Fatalf("quota key TTL %v, %v", ttl, err)
	}
	// Another agency has a count of its own.
	if d := as[0].(*Shared).r.Next(nil, "B2", limit, loc).AllowN(now, 1); !d.Allowed {
		t.Fatalf("B2: %+v", d)
	}
}

// TestRedisSharesTheRate: the burst is shared by the replicas, the refusal
// says how long to wait, and a BatchLookup's N is charged all or nothing.
func TestRedisSharesTheRate(t *testing.T) {
	srv := testredis.Start(t)
	loc := hcm(t)
	limit := policy.RateLimit{RequestsPerSecond: 1, Burst: 10, DailyQuota: quota(25)}
	a := replica(t, srv, 2, nil).Next(nil, "A1", limit, loc)
	b := replica(t, srv, 2, nil).Next(nil, "A1", limit, loc)
	now := time.Now()
	if d := a.AllowN(now, 11); d != (Decision{Never: true}) {
		t.Fatalf("above the burst: %+v", d)
	}
	if d := a.AllowN(now, 26); d != (Decision{Never: true}) {
		t.Fatalf("above the burst and quota: %+v", d)
	}
	if d := a.AllowN(now, 6); !d.Allowed {
		t.Fatalf("6 of 10: %+v", d)
	}
	d := b.AllowN(now, 6) // 4 tokens left: refused, nothing spent
	if d.Allowed || d.QuotaExceeded || d.RetryAfter < time.Second || d.RetryAfter > 2*time.Second {
		t.Fatalf("6 with 4 left: %+v", d)
	}
	if d := b.AllowN(now, 4); !d.Allowed {
		t.Fatalf("the 4 left: %+v", d)
	}
	if d := a.AllowN(now, 1); d.Allowed || d.RetryAfter <= 0 || d.RetryAfter > time.Second {
		t.Fatalf("empty bucket: %+v", d)
	}
	if got := quotaCount(t, srv, "A1", now.In(loc)); got != 10 {
		t.Fatalf("quota used %d, want 10 (refusals spend nothing)", got)
	}
}

// TestRedisUnreachableFallsToTheShare: with the server stopped, each of two
// live replicas admits its share of the quota left (as last seen), says so
// once through OnState, and once the server is back (without its data)
// adds what it admitted to the shared count, which then goes on.
func TestRedisUnreachableFallsToTheShare(t *testing.T) {
	srv := testredis.Start(t)
	loc := hcm(t)
	limit := policy.RateLimit{RequestsPerSecond: 1000, Burst: 1000, DailyQuota: quota(100)}
	var mu sync.Mutex
	var states []bool
	r := replica(t, srv, 2, func(shared bool) { mu.Lock(); states = append(states, shared); mu.Unlock() })
	replica(t, srv, 2, nil) // the other live replica
	waitFor(t, "2 live replicas", func() bool { return r.State().LiveReplicas == 2 })
	a := r.Next(nil, "A1", limit, loc)
	now := time.Now()
	for range 30 {
		if d := a.AllowN(now, 1); !d.Allowed {
			t.Fatalf("%+v", d)
		}
	}
	srv.Stop()
	allowed := 0
	for range 100 {
		d := a.AllowN(now, 1)
		if d.Allowed {
			allowed++
		} else if !d.QuotaExceeded {
			t.Fatalf("on the share: %+v", d)
		}
	}
	if allowed != 35 || r.Shared() { // (100-30)/2
		t.Fatalf("%d allowed on the share (shared=%v), want 35", allowed, r.Shared())
	}
	if st := r.State(); st.Shared || st.FallbackSince == nil || st.LastError == "" || st.Replicas != 2 {
		t.Fatalf("state during the outage: %+v", st)
	}
	srv.Start()
	deadline := time.Now().Add(10 * time.Second)
	for !r.Shared() {
		if time.Now().After(deadline) {
			t.Fatal("the store did not return to Redis")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := quotaCount(t, srv, "A1", now.In(loc)); got != 65 {
		t.Fatalf("count in Redis after the outage %d, want 30+35", got)
	}
	allowed = 0
	for range 50 {
		if a.AllowN(now, 1).Allowed {
			allowed++
		}
	}
	if allowed != 35 {
		t.Fatalf("%d allowed after the outage, want 35", allowed)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(states) != 2 || states[0] || !states[1] {
		t.Fatalf("OnState calls %v, want [false true]", states)
	}
}

// TestRedisHungServerIsBounded: a server that accepts but never answers
// holds one request for the timeout, then none; the share takes over.
func TestRedisHungServerIsBounded(t *testing.T) {
	srv := testredis.Start(t)
	loc := hcm(t)
	// No lease: this test is about the round trip each request makes.
	r, err := NewRedis(RedisConfig{Addr: srv.Addr(), Password: srv.Password(), Replicas: 2,
		Timeout: 80 * time.Millisecond, ProbeInterval: 50 * time.Millisecond, Lease: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	a := r.Next(nil, "A1", policy.RateLimit{RequestsPerSecond: 100, Burst: 100, DailyQuota: quota(1000)}, loc)
	if d := a.AllowN(time.Now(), 1); !d.Allowed {
		t.Fatalf("%+v", d)
	}
	srv.Freeze()
	start := time.Now()
	if d := a.AllowN(time.Now(), 1); !d.Allowed {
		t.Fatalf("first request on a hung server: %+v", d)
	}
	if el := time.Since(start); el > 500*time.Millisecond {
		t.Fatalf("a hung server held the request %v", el)
	}
	start = time.Now()
	for range 20 {
		a.AllowN(time.Now(), 1)
	}
	if el := time.Since(start); el > 50*time.Millisecond {
		t.Fatalf("20 requests on the share took %v", el)
	}
	srv.Thaw()
	deadline := time.Now().Add(10 * time.Second)
	for !r.Shared() {
		if time.Now().After(deadline) {
			t.Fatal("the store did not return to Redis")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Nothing lost: 1 before, 21 on the share, all in the count; the
	// call that timed out was queued in the frozen server, which ran it
	// when thawed: counted twice, never lost.
	if got := quotaCount(t, srv, "A1", time.Now().In(loc)); got != 22 && got != 23 {
		t.Fatalf("count %d, want 22 (23 with the timed-out call)", got)
	}
}

// BenchmarkRedisAllowN: one admission through the script, the round trip
// to a local redis-server included, from 32 callers per CPU (64 on two, as
// bench/gateway.sh's connections): their calls go together.
func BenchmarkRedisAllowN(b *testing.B) { benchmarkRedisAllowN(b, 32) }

// BenchmarkRedisAllowNAlone: one caller per CPU, nothing to send together:
// the latency of one admission.
func BenchmarkRedisAllowNAlone(b *testing.B) { benchmarkRedisAllowN(b, 1) }

func benchmarkRedisAllowN(b *testing.B, parallelism int) {
	srv := testredis.Start(b)
	r, err := NewRedis(RedisConfig{Addr: srv.Addr(), Password: srv.Password(), Timeout: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	q := int64(1 << 50)
	a := r.Next(nil, "BENCH", policy.RateLimit{RequestsPerSecond: 1 << 30, Burst: 1 << 30, DailyQuota: &q}, time.UTC)
	b.ReportAllocs()
	b.SetParallelism(parallelism)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if !a.AllowN(time.Now(), 1).Allowed {
				b.Error("refused")
				return
			}
		}
	})
	if !r.Shared() {
		b.Fatal("fell back to the share")
	}
}

// TestRedisOutageUnderLoad: callers in parallel while Redis goes away and
// comes back (the share's accounting and the probe's merge contend for the
// same locks): every call returns, and the store ends on Redis.
func TestRedisOutageUnderLoad(t *testing.T) {
	srv := testredis.Start(t)
	r := replica(t, srv, 2, nil)
	a := r.Next(nil, "A1", policy.RateLimit{RequestsPerSecond: 1 << 20, Burst: 1 << 20, DailyQuota: quota(1 << 40)}, hcm(t))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if d := a.AllowN(time.Now(), 1); !d.Allowed {
					t.Errorf("refused: %+v", d)
					return
				}
				// Paced far below the share's rate and burst: in memory,
				// an unpaced loop spends a burst of 2^19 within the
				// outage, and a refusal would then be right.
				time.Sleep(100 * time.Microsecond)
			}
		}()
	}
	time.Sleep(100 * time.Millisecond)
	srv.Stop()
	time.Sleep(200 * time.Millisecond)
	srv.Start()
	deadline := time.Now().Add(10 * time.Second)
	for !r.Shared() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()
	if !r.Shared() {
		t.Fatal("the store did not return to Redis")
	}
}
