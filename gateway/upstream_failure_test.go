package gateway

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestUpstreamDownOrEndless: an upstream that drops the connection, or streams a
// body without end, costs a bounded time and gives the agency a 502 or
// 504 with the gateway's own error, never a partial record.
func TestUpstreamDownOrEndless(t *testing.T) {
	t.Run("connection dropped", func(t *testing.T) {
		// The upstream process dies mid-request: the TCP connection closes
		// before any answer (the gateway's one retry meets the same).
		drop := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
		})
		h := newHarness(t, drop)
		start := time.Now()
		w := h.do("BYT", "GET", "/v1/citizens/"+id(t, 1), "")
		if w.Code != http.StatusBadGateway && w.Code != http.StatusGatewayTimeout {
			t.Fatalf("status %d, want 502 or 504: %s", w.Code, w.Body.String())
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("took %v with the upstream down", d)
		}
	})
	t.Run("endless body", func(t *testing.T) {
		endless := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(200)
			chunk := []byte(`{"fullName":"` + strings.Repeat("a", 4096))
			for r.Context().Err() == nil {
				if _, err := w.Write(chunk); err != nil {
					return
				}
				w.(http.Flusher).Flush()
			}
		})
		h := newHarness(t, endless)
		h.gw.cfg.UpstreamTimeout = 500 * time.Millisecond
		start := time.Now()
		w := h.do("BYT", "GET", "/v1/citizens/"+id(t, 1), "")
		if w.Code != http.StatusBadGateway && w.Code != http.StatusGatewayTimeout {
			t.Fatalf("status %d, want 502 or 504: %s", w.Code, w.Body.String())
		}
		if strings.Contains(w.Body.String(), "aaaa") {
			t.Fatalf("upstream body passed through: %.100s", w.Body.String())
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("took %v against an endless body", d)
		}
	})
}
