package ratelimit

import (
	"time"
)

// Leases: units a replica charges in Redis ahead of its requests, so that
// most requests of a busy agency are admitted from memory rather than with
// a round trip.
//
// When a request goes to Redis, the replica asks for up to leaseUnits
// more units than the request needs; the script charges them to the rate
// and the day's quota with the request, so the shared count never admits
// more than the declared limits: a leased unit was counted before it is
// used. What a replica may hold is bounded three ways:
//   - by the rate: the units that Lease's time is worth at the declared
//     rate, divided by the live replicas (so all replicas together hold at
//     most one Lease's worth of the rate: 5 % of a second by default), and
//     at most maxLeaseUnits. An agency whose rate earns less than one unit
//     per Lease and replica gets no lease: every request asks Redis.
//   - by what is left: the script grants at most an eighth of what the
//     bucket still holds after the request, divided by the live replicas,
//     and nothing unless the day's quota keeps eight times the lease per
//     live replica after it (512 units per replica for a full lease). The
//     last units of a quota are therefore admitted request by request, by
//     whichever replica asks: one replica's lease does not leave another
//     refused at the end of the day, unless it took that lease less than
//     Lease ago.
//   - by time: units not used within Lease of being charged are given
//     back, taken off the rate and the count, with the agency's next call
//     to Redis or by the sweep, every HeartbeatInterval, when the agency is
//     idle.
//
// What this costs the limits: over any interval, an agency may be admitted
// up to one Lease's worth of its rate more than the GCRA alone would (units
// charged just before the interval and used in it); the daily quota is
// never exceeded, and units a replica held when it stopped or lost Redis
// are not given back (the agency loses at most maxLeaseUnits each).

// DefaultLease is RedisConfig.Lease's default.
const DefaultLease = 50 * time.Millisecond

// maxLeaseUnits bounds the units one replica holds for one agency.
const maxLeaseUnits = 64

// maxLeaseWaits bounds the leases a request waits for, each bounded by the
// store's Timeout, before it asks Redis itself.
const maxLeaseWaits = 4

// lease is what a replica holds of one agency's units, on one local day.
type lease struct {
	day     int
	key     *dayKey // the day's quota key, where units are given back
	units   int64
	expires time.Time
}

// leaseUnits is how many units to ask for ahead of a request: the rate's
// worth of the lease time, divided by the replicas, less what is held.
func (s *Shared) leaseUnits(held int64) int64 {
	if s.r.cfg.Lease <= 0 {
		return 0
	}
	worth := float64(s.limit.RequestsPerSecond) * s.r.cfg.Lease.Seconds() / float64(s.r.replicas())
	return max(0, min(maxLeaseUnits, int64(worth))-held)
}

// fromLease admits n from the units held, when they are today's, still
// fresh, and enough. Expired units are set aside to be given back.
func (s *Shared) fromLease(now time.Time, day int, n int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := &s.lease
	switch {
	case l.units == 0:
		return false
	case l.day != day:
		// Yesterday's units: their count went with their day.
		*l = lease{}
		return false
	case !now.Before(l.expires):
		s.expireLeaseLocked()
		return false
	case l.units < int64(n):
		return false
	}
	l.units -= int64(n)
	return true
}

// waitLease waits for the call that asks for a lease, if one is out (it is
// bounded by the store's Timeout), and says whether it waited.
func (s *Shared) waitLease() bool {
	s.mu.Lock()
	ch := s.leasing
	s.mu.Unlock()
	if ch == nil {
		return false
	}
	<-ch
	return true
}

// expireLeaseLocked moves the units held to those to give back.
func (s *Shared) expireLeaseLocked() {
	l := &s.lease
	if l.units > 0 {
		if s.giveBack.day != l.day {
			s.giveBack = lease{day: l.day, key: l.key}
		}
		s.giveBack.units += l.units
	}
	*l = lease{}
}

// takeGiveBackLocked returns the units to give back with a call on day's
// key, and forgets them: a call that fails loses them (the agency loses
// capacity, never gains it). Units of another day are dropped.
func (s *Shared) takeGiveBackLocked(day int) int64 {
	g := s.giveBack
	s.giveBack = lease{}
	if g.day != day {
		return 0
	}
	return g.units
}

// addLeaseLocked keeps units charged ahead by a call made at now.
func (s *Shared) addLeaseLocked(now time.Time, k *dayKey, units int64) {
	if units <= 0 {
		return
	}
	if s.lease.day != k.day || s.lease.units == 0 {
		s.lease = lease{day: k.day, key: k}
	}
	s.lease.units += units
	s.lease.expires = now.Add(s.r.cfg.Lease)
	s.r.noteLease(s)
}

func (r *Redis) noteLease(s *Shared) {
	r.leaseMu.Lock()
	r.leased[s] = struct{}{}
	r.leaseMu.Unlock()
}

// sweepLeases gives back, every HeartbeatInterval, the units of agencies
// that held them past their lease without a request to take them.
func (r *Redis) sweepLeases() {
	t := time.NewTicker(r.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-r.closed:
			return
		case <-t.C:
			r.giveBackLeases(time.Now(), false)
		}
	}
}

// giveBackLeases gives back the units held past their lease at now (all
// of them when all is set: the replica is stopping), one call per agency,
// the calls sent together by the dispatcher.
func (r *Redis) giveBackLeases(now time.Time, all bool) {
	if !r.up.Load() {
		return
	}
	r.leaseMu.Lock()
	list := make([]*Shared, 0, len(r.leased))
	for s := range r.leased {
		list = append(list, s)
	}
	r.leaseMu.Unlock()
	done := make(chan struct{}, len(list))
	sent := 0
	for _, s := range list {
		s.mu.Lock()
		if s.lease.units > 0 && (all || !now.Before(s.lease.expires)) {
			s.expireLeaseLocked()
		}
		g := s.giveBack
		s.giveBack = lease{}
		if s.lease.units == 0 {
			// Under s.mu, as addLeaseLocked notes a lease: a lease
			// taken meanwhile is not forgotten here.
			r.leaseMu.Lock()
			delete(r.leased, s)
			r.leaseMu.Unlock()
		}
		s.mu.Unlock()
		if g.units == 0 {
			continue
		}
		sent++
		go func() {
			defer func() { done <- struct{}{} }()
			_, _ = r.run([2]string{s.rateKey, g.key.key}, [argsPerCall]any{s.rps, s.burst, 0, s.quota, g.key.expireAt, 0, g.units, r.replicas()})
		}()
	}
	for range sent {
		<-done
	}
}
