package verifylimit

import (
	"fmt"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// TestSlidingWindow: max mismatches per agency and citizen in any window;
// each mismatch frees its place when it is window old, one at a time.
func TestSlidingWindow(t *testing.T) {
	g := New(3, 24*time.Hour, 100)
	mismatch := func(at time.Time) {
		t.Helper()
		if v := g.Begin("A", "c1", at); !v.Allowed {
			t.Fatalf("at %v: %+v", at.Sub(t0), v)
		}
		g.End("A", "c1", at, true)
	}
	mismatch(t0)
	mismatch(t0.Add(time.Hour))
	mismatch(t0.Add(2 * time.Hour))
	steps := []struct {
		at   time.Duration
		want Verdict
	}{
		{3 * time.Hour, Verdict{RetryAfter: 21 * time.Hour}},
		{24*time.Hour - time.Second, Verdict{RetryAfter: time.Second}},
		{24 * time.Hour, Verdict{Allowed: true}}, // the first is 24 h old
	}
	for _, s := range steps {
		if v := g.Begin("A", "c1", t0.Add(s.at)); v != s.want {
			t.Fatalf("at %v: %+v, want %+v", s.at, v, s.want)
		}
	}
	g.End("A", "c1", t0.Add(24*time.Hour), true) // 3 again: hours 1, 2, 24
	if v := g.Begin("A", "c1", t0.Add(24*time.Hour)); v.Allowed || v.RetryAfter != time.Hour {
		t.Fatalf("after the 4th mismatch: %+v", v)
	}
	// Other citizens and other agencies count apart.
	if v := g.Begin("A", "c2", t0.Add(24*time.Hour)); !v.Allowed {
		t.Fatalf("another citizen: %+v", v)
	}
	if v := g.Begin("B", "c1", t0.Add(24*time.Hour)); !v.Allowed {
		t.Fatalf("another agency: %+v", v)
	}
}

// TestMatchesAndFailuresAreNotCounted: End without a mismatch forgets the
// attempt, and leaves no entry behind.
func TestMatchesAndFailuresAreNotCounted(t *testing.T) {
	g := New(2, time.Hour, 1)
	for range 10 {
		if v := g.Begin("A", "c1", t0); !v.Allowed {
			t.Fatalf("%+v", v)
		}
		g.End("A", "c1", t0, false)
	}
	if len(g.tables) != 0 {
		t.Fatalf("tables left: %v", g.tables)
	}
}

// TestInFlightCountsAgainstTheLimit: Verify calls in flight count as
// mismatches until they end, so concurrent guesses cannot overshoot.
func TestInFlightCountsAgainstTheLimit(t *testing.T) {
	g := New(3, time.Hour, 10)
	for i := range 3 {
		if v := g.Begin("A", "c1", t0); !v.Allowed {
			t.Fatalf("call %d: %+v", i, v)
		}
	}
	if v := g.Begin("A", "c1", t0); v.Allowed || v.RetryAfter != time.Second {
		t.Fatalf("a 4th call while 3 are in flight: %+v", v)
	}
	g.End("A", "c1", t0, false) // a match frees its place
	if v := g.Begin("A", "c1", t0); !v.Allowed {
		t.Fatalf("after a match: %+v", v)
	}
}

// TestFullTableFailsClosed: with the agency's table full, a new citizen is
// refused (never tracked-less), citizens in the table are unchanged (one at
// the limit stays refused: nothing is evicted), other agencies are served,
// and places free as mismatches age out. Memory stays bounded by the
// table's size however many citizens are tried.
func TestFullTableFailsClosed(t *testing.T) {
	g := New(2, time.Hour, 3)
	for i := range 3 {
		for range 2 {
			c := fmt.Sprint("c", i)
			if v := g.Begin("A", c, t0); !v.Allowed {
				t.Fatalf("%s: %+v", c, v)
			}
			g.End("A", c, t0, true)
		}
	}
	for i := range 1000 {
		if v := g.Begin("A", fmt.Sprint("new", i), t0.Add(time.Minute)); v.Allowed || !v.Full || v.RetryAfter != 59*time.Minute {
			t.Fatalf("new citizen %d with the table full: %+v", i, v)
		}
	}
	if v := g.Begin("A", "c0", t0.Add(time.Minute)); v.Allowed || v.Full {
		t.Fatalf("citizen at the limit with the table full: %+v", v)
	}
	if n := len(g.tables["A"].entries); n != 3 {
		t.Fatalf("%d entries, want 3", n)
	}
	if v := g.Begin("B", "new0", t0.Add(time.Minute)); !v.Allowed {
		t.Fatalf("another agency: %+v", v)
	}
	if v := g.Begin("A", "new0", t0.Add(time.Hour)); !v.Allowed {
		t.Fatalf("an hour later: %+v", v)
	}
	if n, q := len(g.tables["A"].entries), len(g.tables["A"].events); n != 1 || q != 0 {
		t.Fatalf("an hour later: %d entries, %d queued events, want 1 and 0", n, q)
	}
}
