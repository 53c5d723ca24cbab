package ratelimit

import (
	"context"
	"strconv"
	"time"

	"github.com/popconnect/popconnect/gateway/policy"
)

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
		s.share, s.shareDay = New(shareOf(s.limit, s.r.replicas(), remaining), s.loc), day
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
	r.downSince, r.lastErr = time.Now(), err.Error()
	r.cfg.Log.Warn("rate limits: Redis is unreachable, each replica enforces its share until it is back",
		"redis", r.cfg.Addr, "replicas", r.replicas(), "error", err.Error())
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
		if err == nil {
			err = r.mergePending()
		}
		if err != nil {
			r.mu.Lock()
			r.lastErr = err.Error()
			r.mu.Unlock()
			continue
		}
		r.mu.Lock()
		r.up.Store(true)
		r.probing = false
		r.downSince, r.lastErr = time.Time{}, ""
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
