package gateway

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/popconnect/popconnect/gateway/audit"
	"github.com/popconnect/popconnect/gateway/metrics"
	"github.com/popconnect/popconnect/internal/popdb"
)

// TestRecordTime: a record's time comes from Config.Now when one is
// given, and otherwise from the wall clock, read once for the request's
// start (wallClock): it lies between the moments before and after the
// request.
func TestRecordTime(t *testing.T) {
	injected := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		now  func() time.Time
	}{
		{"injected clock", func() time.Time { return injected }},
		{"wall clock", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gen, err := popdb.NewGenerator(1, 100)
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(popdb.Handler(gen))
			defer srv.Close()
			out := &lockedBuffer{}
			al, err := audit.NewLogger(out, []byte("an audit key of at least 32 bytes!!"))
			if err != nil {
				t.Fatal(err)
			}
			u, _ := url.Parse(srv.URL)
			g, err := New(Config{UpstreamURL: u, Location: time.UTC, Now: tt.now, Audit: al, Metrics: metrics.New(),
				Log: slog.New(slog.NewJSONHandler(io.Discard, nil))})
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			if g.wallClock != (tt.now == nil) {
				t.Fatalf("wallClock = %v with Now %v", g.wallClock, tt.now != nil)
			}
			h := &harness{gw: g, audit: al, out: out}
			h.setPolicy(t, defaultAgencies())
			before := time.Now()
			h.do("BYT", "GET", "/v1/citizens/"+id(t, 3), "")
			after := time.Now()
			al.Close()
			var rec struct{ Time time.Time }
			if err := json.Unmarshal([]byte(out.String()), &rec); err != nil {
				t.Fatal(err)
			}
			if tt.now != nil {
				if !rec.Time.Equal(injected) {
					t.Fatalf("record time %v, want the injected %v", rec.Time, injected)
				}
				return
			}
			// The record keeps microseconds: compare at that precision.
			if rec.Time.Before(before.Truncate(time.Microsecond)) || rec.Time.After(after) {
				t.Fatalf("record time %v not between %v and %v", rec.Time, before, after)
			}
		})
	}
}
