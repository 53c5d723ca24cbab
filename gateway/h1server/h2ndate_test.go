package h1server

import (
	"net/http"
	"testing"
	"time"
)

// TestH2nDateValue: the Date value is formatted from the clock when none
// is kept or the kept one's second is over, and reused within it.
func TestH2nDateValue(t *testing.T) {
	h := &h2n{}
	before := time.Now().Truncate(time.Second)
	got := h.dateValue()
	after := time.Now()
	d, err := http.ParseTime(got)
	if err != nil {
		t.Fatalf("Date %q: %v", got, err)
	}
	if d.Before(before) || d.After(after) {
		t.Errorf("Date %s, want between %s and %s", d, before, after)
	}
	if h.dateFor <= 0 || h.dateFor > time.Second {
		t.Errorf("kept for %s, want within (0, 1s]", h.dateFor)
	}

	for _, tc := range []struct {
		name    string
		dateFor time.Duration
		reused  bool
	}{
		{"within its second", time.Hour, true},
		{"its second over", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const kept = "Thu, 01 Jan 1970 00:00:00 GMT"
			h.date, h.dateAt, h.dateFor = kept, time.Now(), tc.dateFor
			if got := h.dateValue(); (got == kept) != tc.reused {
				t.Errorf("dateValue() = %q, want the kept value: %v", got, tc.reused)
			}
		})
	}
}
