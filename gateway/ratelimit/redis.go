package ratelimit

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/popconnect/popconnect/gateway/policy"
)

// Defaults of RedisConfig.
const (
	DefaultRedisTimeout  = 100 * time.Millisecond
	DefaultProbeInterval = time.Second
	DefaultKeyPrefix     = "popconnect:"
	// quotaKeyGrace keeps a day's quota key past the day's midnight, so
	// that a replica whose clock is a little behind still finds it.
	quotaKeyGrace = time.Hour
)

// RedisConfig configures a Redis store.
type RedisConfig struct {
	// Addr is host:port; DB the database number.
	Addr string
	DB   int
	// Password, when set, authenticates the gateway (AUTH).
	Password string
	// TLS, when set, encrypts the connection.
	TLS *tls.Config
	// KeyPrefix starts every key (DefaultKeyPrefix when empty), so that
	// gateways sharing a server keep their counts apart.
	KeyPrefix string
	// Timeout bounds one call, connecting included (DefaultRedisTimeout
	// when zero): a hung server never holds a request longer.
	Timeout time.Duration
	// ProbeInterval is how often an unreachable server is tried again
	// (DefaultProbeInterval when zero).
	ProbeInterval time.Duration
	// Replicas is how many replicas share the limits: while the server is
	// unreachable each replica enforces limit / Replicas (at least 1).
	Replicas int
	// Log receives one line per transition between the shared count and
	// the per-replica share.
	Log *slog.Logger
	// OnState, when set, is called with true when the store counts in
	// Redis again and false when it falls back to the share (a metric).
	OnState func(shared bool)
}

// Redis is a Store whose agencies are counted in one Redis server by every
// replica: the rate (GCRA, the token bucket's equivalent) and the daily
// quota are checked and charged by one Lua script, atomically and in one
// round trip (EVALSHA; EVAL once after the server lost its script cache).
//
// While the server is unreachable (a call failed or timed out), each
// replica enforces its share of every limit in memory, from the quota the
// server last reported as used; a probe tries the server every
// ProbeInterval and, once it answers, adds what was admitted meanwhile to
// the shared counts before using them again.
type Redis struct {
	cfg    RedisConfig
	client *redis.Client
	admit  *redis.Script
	merge  *redis.Script

	up      atomic.Bool
	mu      sync.Mutex
	pending map[*Shared]struct{} // charged locally since the server went away
	probing bool
	closed  chan struct{}
	once    sync.Once
}

// NewRedis returns a store using the server of cfg. It does not connect:
// the first request does (and falls back to the share if it cannot).
func NewRedis(cfg RedisConfig) (*Redis, error) {
	if cfg.Addr == "" {
		return nil, errors.New("ratelimit: a Redis address is required")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultRedisTimeout
	}
	if cfg.ProbeInterval <= 0 {
		cfg.ProbeInterval = DefaultProbeInterval
	}
	if cfg.KeyPrefix == "" {
		cfg.KeyPrefix = DefaultKeyPrefix
	}
	if cfg.Replicas < 1 {
		cfg.Replicas = 1
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	r := &Redis{
		cfg: cfg,
		client: redis.NewClient(&redis.Options{
			Addr:      cfg.Addr,
			DB:        cfg.DB,
			Password:  cfg.Password,
			TLSConfig: cfg.TLS,
			// Every wait is bounded by Timeout, and nothing is retried:
			// a request rather falls back to the share.
			DialTimeout:           cfg.Timeout,
			ReadTimeout:           cfg.Timeout,
			WriteTimeout:          cfg.Timeout,
			PoolTimeout:           cfg.Timeout,
			ContextTimeoutEnabled: true,
			MaxRetries:            -1,
			DisableIdentity:       true,
		}),
		admit:   redis.NewScript(admitScript),
		merge:   redis.NewScript(mergeScript),
		pending: map[*Shared]struct{}{},
		closed:  make(chan struct{}),
	}
	r.up.Store(true)
	return r, nil
}

// Close stops the probe and closes the connections.
func (r *Redis) Close() error {
	r.once.Do(func() { close(r.closed) })
	return r.client.Close()
}

// Shared reports whether the store counts in Redis (true) or each replica
// enforces its share (false).
func (r *Redis) Shared() bool { return r.up.Load() }

// Next implements Store.
func (r *Redis) Next(prev Admitter, agency string, limit policy.RateLimit, loc *time.Location) Admitter {
	if p, ok := prev.(*Shared); ok && p.r == r && p.limit.Equal(limit) && p.loc == loc {
		return p
	}
	s := &Shared{
		r:        r,
		agency:   agency,
		limit:    limit,
		loc:      loc,
		rateKey:  r.cfg.KeyPrefix + "{" + agency + "}:rate",
		quotaKey: r.cfg.KeyPrefix + "{" + agency + "}:quota:",
	}
	if p, ok := prev.(*Shared); ok && p.r == r {
		p.mu.Lock()
		s.lastDay, s.lastUsed = p.lastDay, p.lastUsed
		p.mu.Unlock()
	}
	return s
}

// admitScript charges n to the agency's rate (KEYS[1], the GCRA's
// theoretical arrival time in microseconds of the server's clock) and its
// quota of the day (KEYS[2], the units used), all or nothing. ARGV: the
// rate per second, the burst, n, the daily quota (-1: none) and the Unix
// time at which the quota key expires. It returns {allowed (0/1), quota
// exceeded (0/1), microseconds to wait for the rate, units used today}.
// The quota key gets its expiry when INCRBY creates it.
const admitScript = `
local rps = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local quota = tonumber(ARGV[4])
local used = tonumber(redis.call('GET', KEYS[2]) or '0')
if quota >= 0 and used + n > quota then
  return {0, 1, 0, used}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = 1000000 / rps
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new_tat = tat + n * interval
local wait = new_tat - burst * interval - now
if wait > 0 then
  return {0, 0, math.ceil(wait), used}
end
redis.call('SET', KEYS[1], string.format('%.0f', math.ceil(new_tat)), 'PX', math.ceil((new_tat - now) / 1000) + 1000)
used = redis.call('INCRBY', KEYS[2], n)
if used == n then
  redis.call('EXPIREAT', KEYS[2], ARGV[5])
end
return {1, 0, 0, used}
`

// mergeScript adds, after an outage, the units a replica admitted on its
// own (ARGV[2]) to the day's quota count (KEYS[1]), first raising it to
// what the replica last saw there (ARGV[1]): a server that restarted
// without its data forgets nothing the replicas knew. ARGV[3] is the key's
// expiry (Unix time). It returns the new count.
const mergeScript = `
local v = tonumber(redis.call('GET', KEYS[1]) or '0')
local floor = tonumber(ARGV[1])
if v < floor then v = floor end
v = v + tonumber(ARGV[2])
redis.call('SET', KEYS[1], v)
redis.call('EXPIREAT', KEYS[1], ARGV[3])
return v
`

// Shared is one agency's admitter in a Redis store.
type Shared struct {
	r        *Redis
	agency   string
	limit    policy.RateLimit
	loc      *time.Location
	rateKey  string
	quotaKey string // followed by the local day, yyyymmdd

	mu sync.Mutex
	// lastDay and lastUsed are the quota units the server last reported
	// as used, and on which local day.
	lastDay  int
	lastUsed int64
	// During an outage: the share (nil before the first request of the
	// outage), its day, and the units it admitted, not yet in Redis.
	share      *Limiter
	shareDay   int
	pendingDay int
	pending    int64
	floor      int64 // lastUsed on pendingDay when the outage began
}

// Limit implements Admitter.
func (s *Shared) Limit() policy.RateLimit { return s.limit }

// AllowN implements Admitter: one script call to Redis, or the share when
// the server is unreachable.
func (s *Shared) AllowN(now time.Time, n int) Decision {
	quota := s.limit.DailyQuota
	if n > int(s.limit.Burst) {
		return Decision{Never: true}
	}
	if quota != nil && int64(n) > *quota {
		return Decision{QuotaExceeded: true, Never: true}
	}
	local := now.In(s.loc)
	day := localDay(local)
	if s.r.up.Load() {
		d, err := s.allowShared(local, day, n)
		if err == nil {
			return d
		}
		s.r.down(err)
	}
	return s.allowShare(now, local, day, n)
}

func nextMidnight(local time.Time, loc *time.Location) time.Time {
	y, m, d := local.Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, loc)
}

func (s *Shared) allowShared(local time.Time, day int, n int) (Decision, error) {
	q := int64(-1)
	if s.limit.DailyQuota != nil {
		q = *s.limit.DailyQuota
	}
	midnight := nextMidnight(local, s.loc)
	ctx, cancel := context.WithTimeout(context.Background(), s.r.cfg.Timeout)
	defer cancel()
	res, err := s.r.admit.Run(ctx, s.r.client,
		[]string{s.rateKey, s.quotaKey + strconv.Itoa(day)},
		s.limit.RequestsPerSecond, s.limit.Burst, n, q, midnight.Add(quotaKeyGrace).Unix()).Int64Slice()
	if err != nil {
		return Decision{}, err
	}
	if len(res) != 4 {
		return Decision{}, fmt.Errorf("ratelimit: the admission script answered %v", res)
	}
	s.mu.Lock()
	s.lastDay, s.lastUsed = day, res[3]
	s.mu.Unlock()
	switch {
	case res[0] == 1:
		return Decision{Allowed: true}, nil
	case res[1] == 1:
		return Decision{QuotaExceeded: true, RetryAfter: midnight.Sub(local)}, nil
	default:
		wait := time.Duration(res[2]) * time.Microsecond
		return Decision{RetryAfter: max(wait, time.Millisecond)}, nil
	}
}

// shareOf is limit divided between replicas; remaining is the quota left
// today as last seen in Redis.
func shareOf(limit policy.RateLimit, replicas int, remaining *int64) policy.RateLimit {
	r := int32(replicas)
	share := policy.RateLimit{
		RequestsPerSecond: max(1, limit.RequestsPerSecond/r),
		Burst:             max(1, limit.Burst/r),
	}
	if remaining != nil {
		q := max(0, *remaining) / int64(replicas)
		share.DailyQuota = &q
	}
	return share
}

// allowShare admits against this replica's share while the server is
// unreachable.
func (s *Shared) allowShare(now, local time.Time, day int, n int) Decision {
	d := s.chargeShare(now, local, day, n)
	if d.Allowed {
		// Outside s.mu: mergePending takes r.mu, then s.mu.
		s.r.notePending(s)
	}
	return d
}

func (s *Shared) chargeShare(now, local time.Time, day int, n int) Decision {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.share == nil || s.shareDay != day {
		var remaining *int64
		if q := s.limit.DailyQuota; q != nil {
			left := *q
			if s.lastDay == day {
				left -= s.lastUsed
			}
			remaining = &left
		}
		s.share, s.shareDay = New(shareOf(s.limit, s.r.cfg.Replicas, remaining), s.loc), day
		if s.pendingDay != day {
			s.pendingDay, s.pending, s.floor = day, 0, 0
			if s.lastDay == day {
				s.floor = s.lastUsed
			}
		}
	}
	d := s.share.AllowN(now, n)
	switch {
	case d.Allowed:
		s.pending += int64(n)
	case d.Never && d.QuotaExceeded:
		// More than this replica's share of what is left today.
		d = Decision{QuotaExceeded: true, RetryAfter: nextMidnight(local, s.loc).Sub(now)}
	case d.Never:
		// Above this replica's share of the burst, not the burst: it
		// may pass once the shared count is back.
		d = Decision{RetryAfter: s.r.cfg.ProbeInterval}
	}
	return d
}

// down switches to the share after a failed call, and starts the probe.
func (r *Redis) down(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.up.Load() {
		return
	}
	r.up.Store(false)
	r.cfg.Log.Warn("rate limits: Redis is unreachable, each replica enforces its share until it is back",
		"redis", r.cfg.Addr, "replicas", r.cfg.Replicas, "error", err.Error())
	if r.cfg.OnState != nil {
		r.cfg.OnState(false)
	}
	if !r.probing {
		r.probing = true
		go r.probe()
	}
}

func (r *Redis) notePending(s *Shared) {
	r.mu.Lock()
	r.pending[s] = struct{}{}
	r.mu.Unlock()
}

// probe tries the server every ProbeInterval; once it answers, it merges
// what the replica admitted on its own and returns to the shared count.
func (r *Redis) probe() {
	t := time.NewTicker(r.cfg.ProbeInterval)
	defer t.Stop()
	for {
		select {
		case <-r.closed:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), r.cfg.Timeout)
		err := r.client.Ping(ctx).Err()
		cancel()
		if err != nil {
			continue
		}
		if err := r.mergePending(); err != nil {
			continue
		}
		r.mu.Lock()
		r.up.Store(true)
		r.probing = false
		r.mu.Unlock()
		// Requests that were still on the share while the first merge ran.
		_ = r.mergePending()
		r.cfg.Log.Info("rate limits: Redis is reachable again, the replicas share one count", "redis", r.cfg.Addr)
		if r.cfg.OnState != nil {
			r.cfg.OnState(true)
		}
		return
	}
}

// mergePending adds each agency's units admitted on the share to its count
// in Redis, and forgets the shares.
func (r *Redis) mergePending() error {
	r.mu.Lock()
	list := make([]*Shared, 0, len(r.pending))
	for s := range r.pending {
		list = append(list, s)
	}
	r.mu.Unlock()
	for _, s := range list {
		if err := s.merge(); err != nil {
			return err
		}
		r.mu.Lock()
		s.mu.Lock()
		if s.pending == 0 {
			delete(r.pending, s)
		}
		s.mu.Unlock()
		r.mu.Unlock()
	}
	return nil
}

func (s *Shared) merge() error {
	s.mu.Lock()
	day, add, floor := s.pendingDay, s.pending, s.floor
	s.mu.Unlock()
	if add > 0 {
		y, m, d := day/10000, time.Month(day/100%100), day%100
		expire := time.Date(y, m, d+1, 0, 0, 0, 0, s.loc).Add(quotaKeyGrace)
		ctx, cancel := context.WithTimeout(context.Background(), s.r.cfg.Timeout)
		v, err := s.r.merge.Run(ctx, s.r.client, []string{s.quotaKey + strconv.Itoa(day)}, floor, add, expire.Unix()).Int64()
		cancel()
		if err != nil {
			return err
		}
		s.mu.Lock()
		if s.lastDay <= day {
			s.lastDay, s.lastUsed = day, v
		}
		s.mu.Unlock()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Units admitted while the merge ran stay pending; the next outage
	// starts a new share from the count last seen.
	s.pending -= add
	s.floor = 0
	s.share = nil
	return nil
}
