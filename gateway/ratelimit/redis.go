package ratelimit

import (
	"crypto/tls"
	"errors"
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
	// DefaultHeartbeatInterval is how often a replica says it is live.
	DefaultHeartbeatInterval = time.Second
	DefaultKeyPrefix         = "popconnect:"
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
	// HeartbeatInterval is how often the replica says in Redis that it is
	// live (DefaultHeartbeatInterval when zero).
	HeartbeatInterval time.Duration
	// Replicas is how many replicas share the limits until the replica
	// has counted the live ones in Redis: while the server is unreachable
	// each replica enforces limit / the live replicas it last counted, or
	// limit / Replicas when it never counted them (at least 1).
	Replicas int
	// Lease is how long a replica may hold units charged ahead of its
	// requests (redis_lease.go): DefaultLease when zero, none (every
	// request asks Redis) when negative.
	Lease time.Duration
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
// round trip (EVALSHA), the calls of concurrent requests sent together in
// one pipeline (redis_dispatch.go).
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
	beat   *redis.Script

	// The dispatcher's queue and its calls, reused.
	queue chan *call
	calls sync.Pool

	// id names this replica in the set of live ones (replicasKey);
	// liveReplicas is their count as last seen, 0 before.
	id           string
	replicasKey  string
	liveReplicas atomic.Int64

	up      atomic.Bool
	mu      sync.Mutex
	pending map[*Shared]struct{} // charged locally since the server went away
	probing bool
	// Since when the replica enforces its share, and why (State).
	downSince time.Time
	lastErr   string

	// leased are the agencies that hold units or have units to give back
	// (redis_lease.go). leaseMu is taken after a Shared's mu, never before.
	leaseMu sync.Mutex
	leased  map[*Shared]struct{}

	closed  chan struct{} // closed by Close
	stopped chan struct{} // closed when the dispatcher has returned
	once    sync.Once
}

// NewRedis returns a store using the server of cfg and starts its
// dispatcher, whose first heartbeat connects in the background: NewRedis
// does not wait for the server, and a request that cannot reach it falls
// back to the share.
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
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if cfg.KeyPrefix == "" {
		cfg.KeyPrefix = DefaultKeyPrefix
	}
	if cfg.Replicas < 1 {
		cfg.Replicas = 1
	}
	if cfg.Lease == 0 {
		cfg.Lease = DefaultLease
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
		admit:       redis.NewScript(admitScript),
		merge:       redis.NewScript(mergeScript),
		beat:        redis.NewScript(heartbeatScript),
		queue:       make(chan *call, queueLen),
		id:          newReplicaID(),
		replicasKey: cfg.KeyPrefix + "replicas",
		pending:     map[*Shared]struct{}{},
		leased:      map[*Shared]struct{}{},
		closed:      make(chan struct{}),
		stopped:     make(chan struct{}),
	}
	r.up.Store(true)
	go r.dispatch()
	go r.sweepLeases()
	return r, nil
}

// Close stops the dispatcher and the probe, takes the replica out of the
// live ones, and closes the connections.
func (r *Redis) Close() error {
	select {
	case <-r.closed:
	default:
		// While the dispatcher still sends: the units held go back to
		// the replicas that stay.
		r.giveBackLeases(time.Now(), true)
	}
	first := false
	r.once.Do(func() { close(r.closed); first = true })
	<-r.stopped
	if first {
		r.leave()
	}
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
	q := int64(-1)
	if limit.DailyQuota != nil {
		q = *limit.DailyQuota
	}
	s := &Shared{
		r:        r,
		agency:   agency,
		limit:    limit,
		loc:      loc,
		rateKey:  r.cfg.KeyPrefix + "{" + agency + "}:rate",
		quotaKey: r.cfg.KeyPrefix + "{" + agency + "}:quota:",
		rps:      int64(limit.RequestsPerSecond),
		burst:    int64(limit.Burst),
		quota:    q,
	}
	if p, ok := prev.(*Shared); ok && p.r == r {
		p.mu.Lock()
		s.lastDay, s.lastUsed = p.lastDay, p.lastUsed
		p.mu.Unlock()
	}
	return s
}

// Shared is one agency's admitter in a Redis store.
type Shared struct {
	r        *Redis
	agency   string
	limit    policy.RateLimit
	loc      *time.Location
	rateKey  string
	quotaKey string // followed by the local day, yyyymmdd
	// The script's arguments that change with the policy only, boxed once:
	// an int boxed per call is an allocation per call.
	rps, burst, quota any
	// today is the day's quota key and expiry, made once a day.
	today atomic.Pointer[dayKey]

	mu sync.Mutex
	// lastDay and lastUsed are the quota units the server last reported
	// as used, and on which local day.
	lastDay  int
	lastUsed int64
	// Units charged ahead (redis_lease.go): held, and set aside to be
	// given back. leasing is open while a call that asks for a lease is
	// out (closed when it returns): concurrent requests wait for it rather
	// than each ask Redis.
	lease    lease
	giveBack lease
	leasing  chan struct{}
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
		if s.fromLease(now, day, n) {
			return Decision{Allowed: true}
		}
		// Another request is asking for a lease: its units may be enough
		// for this one too. A few leases at most, then Redis.
		for range maxLeaseWaits {
			if !s.waitLease() {
				break
			}
			if s.fromLease(now, day, n) {
				return Decision{Allowed: true}
			}
		}
		d, err := s.allowShared(now, local, day, n)
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

// dayKey is one local day's quota key and what the script needs of it.
type dayKey struct {
	day      int
	key      string
	midnight time.Time // the day's end
	expireAt any       // the key's expiry, Unix seconds, boxed
}

// dayKeyOf returns the quota key of day, made once a day.
func (s *Shared) dayKeyOf(local time.Time, day int) *dayKey {
	if k := s.today.Load(); k != nil && k.day == day {
		return k
	}
	midnight := nextMidnight(local, s.loc)
	k := &dayKey{day: day, key: s.quotaKey + strconv.Itoa(day), midnight: midnight,
		expireAt: midnight.Add(quotaKeyGrace).Unix()}
	s.today.Store(k)
	return k
}

func (s *Shared) allowShared(now, local time.Time, day int, n int) (Decision, error) {
	k := s.dayKeyOf(local, day)
	s.mu.Lock()
	var want int64
	if s.leasing == nil {
		held := int64(0)
		if s.lease.day == day {
			held = s.lease.units
		}
		if want = s.leaseUnits(held); want > 0 {
			s.leasing = make(chan struct{})
		}
	}
	give := s.takeGiveBackLocked(day)
	s.mu.Unlock()
	res, err := s.r.run([2]string{s.rateKey, k.key}, [argsPerCall]any{s.rps, s.burst, n, s.quota, k.expireAt, want, give, s.r.replicas()})
	s.mu.Lock()
	if want > 0 {
		close(s.leasing)
		s.leasing = nil
	}
	if err != nil {
		s.mu.Unlock()
		return Decision{}, err
	}
	s.lastDay, s.lastUsed = day, res[3]
	s.addLeaseLocked(now, k, res[4])
	s.mu.Unlock()
	switch {
	case res[0] == 1:
		return Decision{Allowed: true}, nil
	case res[1] == 1:
		return Decision{QuotaExceeded: true, RetryAfter: k.midnight.Sub(local)}, nil
	default:
		wait := time.Duration(res[2]) * time.Microsecond
		return Decision{RetryAfter: max(wait, time.Millisecond)}, nil
	}
}
