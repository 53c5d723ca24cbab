// Package verifylimit stops Verify from being a guessing oracle: an agency
// may get at most a few mismatches per citizen in a sliding window (10 in
// 24 h at the gateway); after that its Verify for that citizen is refused
// until the oldest mismatch leaves the window.
//
// Citizens are keyed by the keyed hash of their national ID (the audit
// hash), never by the ID. Memory is bounded: each agency tracks at most a
// fixed number of citizens with mismatches in the window. When an agency's
// table is full, its Verify for a citizen not in the table is refused
// rather than answered untracked, and nothing is evicted: dropping an entry
// would hand a guesser a fresh allowance. So a full table costs only the
// agency that filled it, and only for new citizens, and frees itself as
// mismatches age out of the window.
//
// The state is per gateway process: replicas count apart.
package verifylimit

import (
	"sync"
	"time"
)

// Guard counts Verify mismatches per agency and citizen. It is safe for
// concurrent use.
type Guard struct {
	max      int
	window   time.Duration
	citizens int

	mu     sync.Mutex
	tables map[string]*table
}

// table is one agency's citizens with mismatches (or a Verify in flight)
// in the window.
type table struct {
	entries map[string]*entry
	// events are the agency's mismatches in the order recorded, oldest at
	// head: expiry pops them, so it costs O(1) per mismatch.
	events []event
	head   int
}

type entry struct {
	// times are the citizen's mismatches in the window (Unix nanoseconds:
	// a third of a time.Time's size), oldest first: the citizen's own
	// events, in the same order as in the table's queue.
	times []int64
	// inflight counts Verify calls admitted and not yet answered: they
	// count against the limit, so concurrent guesses cannot overshoot it.
	inflight int
}

type event struct {
	citizen string
	at      int64 // Unix nanoseconds
}

// New returns a guard that allows max mismatches per agency and citizen in
// window, tracking at most citizens citizens per agency.
func New(max int, window time.Duration, citizens int) *Guard {
	return &Guard{max: max, window: window, citizens: citizens, tables: map[string]*table{}}
}

// Verdict is the outcome of Begin.
type Verdict struct {
	// Allowed is true when the Verify may be asked upstream; the caller
	// must then call End exactly once.
	Allowed bool
	// Full is true when the refusal is because the agency's table is full.
	Full bool
	// RetryAfter is when the citizen's next Verify could be allowed.
	RetryAfter time.Duration
}

// Begin admits or refuses a Verify of citizen (its keyed hash) by agency
// at now. An admitted Verify counts as a mismatch until End says otherwise.
func (g *Guard) Begin(agency, citizen string, now time.Time) Verdict {
	g.mu.Lock()
	defer g.mu.Unlock()
	t := g.tables[agency]
	if t == nil {
		t = &table{entries: map[string]*entry{}}
		g.tables[agency] = t
	}
	g.expire(t, now)
	e := t.entries[citizen]
	if e == nil {
		if len(t.entries) >= g.citizens {
			return Verdict{Full: true, RetryAfter: g.retryFull(t, now)}
		}
		e = &entry{}
		t.entries[citizen] = e
	}
	if len(e.times)+e.inflight >= g.max {
		retry := time.Second // only Verify calls in flight: they end soon
		if len(e.times) > 0 {
			retry = max(g.until(e.times[0], now), time.Second)
		}
		return Verdict{RetryAfter: retry}
	}
	e.inflight++
	return Verdict{Allowed: true}
}

// End settles a Verify that Begin allowed: a mismatch is counted at now;
// anything else (a match, an upstream failure) is forgotten.
func (g *Guard) End(agency, citizen string, now time.Time, mismatch bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	t := g.tables[agency]
	if t == nil {
		return
	}
	e := t.entries[citizen]
	if e == nil {
		return
	}
	e.inflight--
	if mismatch {
		e.times = append(e.times, now.UnixNano())
		t.events = append(t.events, event{citizen, now.UnixNano()})
	}
	g.forgetIfIdle(t, agency, citizen, e)
}

// expire drops the agency's mismatches that have left the window at now.
func (g *Guard) expire(t *table, now time.Time) {
	for t.head < len(t.events) && g.until(t.events[t.head].at, now) <= 0 {
		ev := t.events[t.head]
		t.events[t.head] = event{}
		t.head++
		if e := t.entries[ev.citizen]; e != nil && len(e.times) > 0 {
			e.times = e.times[1:]
			if len(e.times) == 0 && e.inflight == 0 {
				delete(t.entries, ev.citizen)
			}
		}
	}
	// Reclaim the queue's dead head once it is half of it.
	if t.head > 0 && 2*t.head >= len(t.events) {
		n := copy(t.events, t.events[t.head:])
		clear(t.events[n:])
		t.events, t.head = t.events[:n], 0
	}
}

// forgetIfIdle drops a citizen with no mismatch and nothing in flight, and
// an agency with no citizen.
func (g *Guard) forgetIfIdle(t *table, agency, citizen string, e *entry) {
	if len(e.times) == 0 && e.inflight == 0 {
		delete(t.entries, citizen)
	}
	if len(t.entries) == 0 {
		delete(g.tables, agency)
	}
}

// retryFull is when a full table next frees a place: when its oldest
// mismatch leaves the window.
func (g *Guard) retryFull(t *table, now time.Time) time.Duration {
	if t.head < len(t.events) {
		return max(g.until(t.events[t.head].at, now), time.Second)
	}
	return time.Second
}

// until is how long after now a mismatch at at leaves the window.
func (g *Guard) until(at int64, now time.Time) time.Duration {
	return time.Duration(at + int64(g.window) - now.UnixNano())
}
