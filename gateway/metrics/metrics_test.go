package metrics

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestAgencyCache(t *testing.T) {
	m := New()
	a := m.ForAgency("BYT")
	if n := testutil.CollectAndCount(m.requests); n != 0 {
		t.Fatalf("%d series before any request: an agency that never calls must not add series", n)
	}
	a.Request(0, "Lookup", 200, time.Millisecond)
	a.Request(0, "Lookup", 200, time.Millisecond)
	a.Request(0, "Lookup", 403, time.Millisecond)
	a.Request(1, "Verify", 200, time.Millisecond)
	m.Request("BYT", "Lookup", 200, time.Millisecond) // the uncached path counts into the same series
	for _, tc := range []struct {
		op, code string
		want     float64
	}{{"Lookup", "200", 3}, {"Lookup", "403", 1}, {"Verify", "200", 1}} {
		if got := testutil.ToFloat64(m.requests.WithLabelValues("BYT", tc.op, tc.code)); got != tc.want {
			t.Errorf("%s %s = %v, want %v", tc.op, tc.code, got, tc.want)
		}
	}
	if got := testutil.CollectAndCount(m.latency); got != 2 {
		t.Errorf("%d latency series, want 2", got)
	}
}
