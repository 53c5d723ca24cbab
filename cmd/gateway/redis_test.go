package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/popconnect/popconnect/gateway/ratelimit/limitstate"
	"github.com/popconnect/popconnect/gateway/testpki"
	"github.com/popconnect/popconnect/internal/popdb"
	"github.com/popconnect/popconnect/internal/testredis"
)

// sharedQuota is the daily quota of the agency SHARED in these tests.
const sharedQuota = 100

// redisFixture is the gateway fixture with a policy of one agency, SHARED,
// whose daily quota is sharedQuota (and whose rate never refuses), and a
// Redis server with its password in a file.
func redisFixture(t *testing.T) (*fixture, *testredis.Server) {
	t.Helper()
	f := newFixture(t)
	doc := fmt.Sprintf(`{"version":"v-shared","agencies":[
	{"agencyCode":"SHARED","allowedFields":["fullName"],"allowedOperations":["Lookup","BatchLookup"],
	 "rateLimit":{"requestsPerSecond":10000,"burst":10000,"dailyQuota":%d}}]}`, sharedQuota)
	testpki.WriteFile(t, f.dir, "policy.json", []byte(doc))
	srv := testredis.Start(t)
	testpki.WriteFile(t, f.dir, "redis.password", []byte(srv.Password()+"\n"))
	return f, srv
}

// startShared starts a gateway of replicas counting in srv.
func startShared(t *testing.T, f *fixture, srv *testredis.Server, replicas int, extra ...string) *instance {
	t.Helper()
	return f.start(t, append([]string{
		"--ratelimit-redis-url", srv.URL(0),
		"--ratelimit-redis-password-file", filepath.Join(f.dir, "redis.password"),
		"--ratelimit-replicas", strconv.Itoa(replicas),
	}, extra...)...)
}

// spread sends n Lookups of SHARED, spread round-robin over gws by
// len(gws) concurrent clients, and counts the answers by status.
func spread(t *testing.T, f *fixture, c *http.Client, gws []*instance, n int) map[int]int {
	t.Helper()
	id, _ := popdb.NationalID(9)
	var mu sync.Mutex
	counts := map[int]int{}
	var wg sync.WaitGroup
	for w := range gws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += len(gws) {
				status, body, err := get(t, c, "https://"+gws[i%len(gws)].agencyAddr+"/v1/citizens/"+id)
				if err != nil {
					t.Errorf("request %d: %v", i, err)
					continue
				}
				if status == 429 && !strings.Contains(body, "quota_exceeded") {
					t.Errorf("request %d: 429 for another reason than the quota: %s", i, body)
				}
				mu.Lock()
				counts[status]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return counts
}

func metricValue(t *testing.T, in *instance, name string) string {
	t.Helper()
	_, m, err := get(t, http.DefaultClient, "http://"+in.metricsAddr+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(m, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	t.Fatalf("no metric %s", name)
	return ""
}

// rateLimitState is the gateway's GET /ratelimitz.
func rateLimitState(t *testing.T, in *instance) limitstate.State {
	t.Helper()
	status, body, err := get(t, http.DefaultClient, "http://"+in.metricsAddr+"/ratelimitz")
	if err != nil || status != 200 {
		t.Fatalf("GET /ratelimitz: %d %s %v", status, body, err)
	}
	var st limitstate.State
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("GET /ratelimitz: %v: %s", err, body)
	}
	return st
}

func redisCount(t *testing.T, srv *testredis.Server) int64 {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), Password: srv.Password()})
	defer c.Close()
	ctx := context.Background()
	keys, err := c.Keys(ctx, "popconnect:{SHARED}:quota:*").Result()
	if err != nil || len(keys) != 1 {
		t.Fatalf("quota keys %v, %v", keys, err)
	}
	v, err := c.Get(ctx, keys[0]).Int64()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestRedisQuotaSharedByThreeGateways: three gateways share one daily
// quota of 100: of 300 Lookups spread over them exactly 100 succeed, and
// a gateway restarted afterwards (a rolling update) does not refill it.
func TestRedisQuotaSharedByThreeGateways(t *testing.T) {
	f, srv := redisFixture(t)
	// A generous bound per call: on a slow machine a late answer must not
	// send a replica to its share in this test.
	gws := []*instance{
		startShared(t, f, srv, 3, "--ratelimit-redis-timeout", "2s"),
		startShared(t, f, srv, 3, "--ratelimit-redis-timeout", "2s"),
		startShared(t, f, srv, 3, "--ratelimit-redis-timeout", "2s"),
	}
	c := f.client(f.ca.Agency(t, "SHARED"), 0)
	counts := spread(t, f, c, gws, 3*sharedQuota)
	if counts[200] != sharedQuota || counts[429] != 2*sharedQuota {
		t.Fatalf("answers %v, want %d 200s and %d 429s", counts, sharedQuota, 2*sharedQuota)
	}
	for i, gw := range gws {
		if v := metricValue(t, gw, "popconnect_gateway_ratelimit_shared"); v != "1" {
			t.Fatalf("gateway %d: popconnect_gateway_ratelimit_shared %s", i, v)
		}
		if st := rateLimitState(t, gw); st.Store != "redis" || !st.Shared || st.FallbackSince != nil {
			t.Fatalf("gateway %d: GET /ratelimitz %+v", i, st)
		}
	}
	gws[0].stop(t)
	gws[0] = startShared(t, f, srv, 3)
	if counts := spread(t, f, c, gws, 30); counts[200] != 0 {
		t.Fatalf("after a restart: %v", counts)
	}
	if got := redisCount(t, srv); got != sharedQuota {
		t.Fatalf("count in Redis %d, want %d", got, sharedQuota)
	}
}

// TestRedisStoppedMidRun: Redis stops after 30 of the quota's 100 units;
// requests keep flowing, none with a 5xx, each gateway admitting its share
// of what was left; Redis comes back (empty: no persistence) and the
// shared count resumes, holding what the gateways admitted on their own.
func TestRedisStoppedMidRun(t *testing.T) {
	f, srv := redisFixture(t)
	const replicas = 3
	var gws []*instance
	for range replicas {
		gws = append(gws, startShared(t, f, srv, replicas))
	}
	// The share divides by the live replicas each gateway last counted:
	// wait until each has counted the three.
	for i, gw := range gws {
		eventually(t, fmt.Sprintf("gateway %d counting 3 live replicas", i), func() bool {
			return rateLimitState(t, gw).LiveReplicas == replicas
		})
	}
	c := f.client(f.ca.Agency(t, "SHARED"), 0)
	// Sequential, so that the gateways' last view of the count is close.
	id, _ := popdb.NationalID(9)
	for i := range 30 {
		if status, body, err := get(t, c, "https://"+gws[i%replicas].agencyAddr+"/v1/citizens/"+id); err != nil || status != 200 {
			t.Fatalf("before the outage, request %d: %d %s %v", i, status, body, err)
		}
	}

	srv.Stop()
	during := spread(t, f, c, gws, 150)
	for status := range during {
		if status != 200 && status != 429 {
			t.Fatalf("during the outage: %v", during)
		}
	}
	// Each admits about (100-30)/3 = 23: never more than what was left.
	if during[200] < 60 || during[200] > 70 {
		t.Fatalf("during the outage %d admitted, want about 70 (each gateway's share): %v", during[200], during)
	}
	for i, gw := range gws {
		if v := metricValue(t, gw, "popconnect_gateway_ratelimit_shared"); v != "0" {
			t.Fatalf("gateway %d: popconnect_gateway_ratelimit_shared %s during the outage", i, v)
		}
		if v := metricValue(t, gw, "popconnect_gateway_ratelimit_fallbacks_total"); v != "1" {
			t.Fatalf("gateway %d: popconnect_gateway_ratelimit_fallbacks_total %s", i, v)
		}
		if st := rateLimitState(t, gw); st.Store != "redis" || st.Shared || st.FallbackSince == nil || st.LastError == "" || st.Replicas != replicas {
			t.Fatalf("gateway %d: GET /ratelimitz during the outage: %+v", i, st)
		}
	}

	srv.Start()
	for i, gw := range gws {
		eventually(t, fmt.Sprintf("gateway %d back on Redis", i), func() bool {
			return metricValue(t, gw, "popconnect_gateway_ratelimit_shared") == "1"
		})
	}
	// The empty server got back the count: at least what the gateways
	// admitted on their own, plus the most they last saw there (28 to 30).
	if got := redisCount(t, srv); got < int64(during[200])+28 || got > int64(during[200])+30 {
		t.Fatalf("count in Redis after the outage %d, want 30 + %d (the outage), give or take 2", got, during[200])
	}
	after := spread(t, f, c, gws, 60)
	total := 30 + during[200] + after[200]
	if after[500]+after[502]+after[503] != 0 || total < sharedQuota || total > sharedQuota+replicas-1 {
		t.Fatalf("after the outage %v: %d admitted in all, want %d (+%d at most: what the gateways last saw)", after, total, sharedQuota, replicas-1)
	}
	// The shared count is the one in force again: spent, for every gateway.
	if got := redisCount(t, srv); got < sharedQuota {
		t.Fatalf("count in Redis %d at the end, want %d", got, sharedQuota)
	}
	if counts := spread(t, f, c, gws, 9); counts[429] != 9 {
		t.Fatalf("after the quota: %v", counts)
	}
}

func TestParseRedisURL(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want redisTarget
		err  string
	}{
		{"redis://redis.ns.svc:6379", redisTarget{addr: "redis.ns.svc:6379"}, ""},
		{"redis://10.0.0.1:6379/2", redisTarget{addr: "10.0.0.1:6379", db: 2}, ""},
		{"rediss://redis:6380/0", redisTarget{addr: "redis:6380", tls: true}, ""},
		{"redis://:pw@redis:6379", redisTarget{}, "password-file"},
		{"http://redis:6379", redisTarget{}, "redis://HOST:PORT"},
		{"redis://redis", redisTarget{}, "HOST:PORT"},
		{"redis://redis:6379/x", redisTarget{}, "not a number"},
		{"redis://redis:6379?db=1", redisTarget{}, "no query"},
	} {
		got, err := parseRedisURL(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: %v, want an error with %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: %+v %v, want %+v", tc.in, got, err, tc.want)
		}
	}
}

// TestRedisBatchChargesPerID: a BatchLookup charges its N IDs to the shared
// quota, all or nothing, whichever gateway it reaches.
func TestRedisBatchChargesPerID(t *testing.T) {
	f, srv := redisFixture(t)
	gws := []*instance{startShared(t, f, srv, 2, "--ratelimit-redis-timeout", "2s"), startShared(t, f, srv, 2, "--ratelimit-redis-timeout", "2s")}
	c := f.client(f.ca.Agency(t, "SHARED"), 0)
	batch := func(gw *instance, n int) (int, string) {
		t.Helper()
		ids := make([]string, n)
		for i := range ids {
			ids[i], _ = popdb.NationalID(int64(i + 1))
		}
		body := `{"nationalIds":["` + strings.Join(ids, `","`) + `"]}`
		resp, err := c.Post("https://"+gw.agencyAddr+"/v1/citizens:batchLookup", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for i, want := range []struct {
		n      int
		status int
	}{{60, 200}, {35, 200}, {10, 429}, {5, 200}, {1, 429}} {
		status, body := batch(gws[i%2], want.n)
		if status != want.status || status == 429 && !strings.Contains(body, "quota_exceeded") {
			t.Fatalf("batch %d of %d: %d %s, want %d", i, want.n, status, body, want.status)
		}
	}
	if got := redisCount(t, srv); got != sharedQuota {
		t.Fatalf("count in Redis %d, want %d", got, sharedQuota)
	}
}

// TestRedisHungServer: a Redis that accepts connections but never answers
// holds a request at most --ratelimit-redis-timeout, once; the gateway then
// answers from its share, without a 5xx, until Redis answers again.
func TestRedisHungServer(t *testing.T) {
	f, srv := redisFixture(t)
	gw := startShared(t, f, srv, 2, "--ratelimit-redis-timeout", "100ms")
	c := f.client(f.ca.Agency(t, "SHARED"), 0)
	id, _ := popdb.NationalID(9)
	url := "https://" + gw.agencyAddr + "/v1/citizens/" + id
	if status, body, err := get(t, c, url); err != nil || status != 200 {
		t.Fatalf("before: %d %s %v", status, body, err)
	}
	srv.Freeze()
	var slowest time.Duration
	for i := range 20 {
		start := time.Now()
		status, body, err := get(t, c, url)
		slowest = max(slowest, time.Since(start))
		if err != nil || status != 200 {
			t.Fatalf("request %d with Redis hung: %d %s %v", i, status, body, err)
		}
	}
	if slowest > time.Second {
		t.Fatalf("a request took %v with Redis hung (timeout 100ms)", slowest)
	}
	if v := metricValue(t, gw, "popconnect_gateway_ratelimit_shared"); v != "0" {
		t.Fatalf("popconnect_gateway_ratelimit_shared %s with Redis hung", v)
	}
	srv.Thaw()
	eventually(t, "the gateway back on Redis", func() bool {
		return metricValue(t, gw, "popconnect_gateway_ratelimit_shared") == "1"
	})
	// 1 before, 20 on the share (the call that timed out may count twice).
	if got := redisCount(t, srv); got != 21 && got != 22 {
		t.Fatalf("count in Redis %d, want 21 (22 with the call that timed out)", got)
	}
}

// TestRateLimitStateLocal: without Redis, GET /ratelimitz says each
// replica counts alone.
func TestRateLimitStateLocal(t *testing.T) {
	gw := newFixture(t).start(t)
	if st := rateLimitState(t, gw); st != (limitstate.State{Store: "local"}) {
		t.Fatalf("GET /ratelimitz %+v", st)
	}
}
