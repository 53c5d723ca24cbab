package h1server

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// trickle writes s a byte every interval, until the server closes.
func trickle(c *rawConn, s string, interval time.Duration) {
	for i := 0; i < len(s); i++ {
		if _, err := c.Write([]byte{s[i]}); err != nil {
			return
		}
		time.Sleep(interval)
	}
}

// closedAfter waits until the server ends c and returns how long after
// start that was, failing beyond limit.
func closedAfter(t *testing.T, c *rawConn, start time.Time, limit time.Duration) (time.Duration, string) {
	t.Helper()
	_ = c.SetReadDeadline(start.Add(limit))
	b, err := io.ReadAll(c.br)
	if err != nil && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("not closed within %v: %v (got %q)", limit, err, b)
	}
	return time.Since(start), string(b)
}

// TestTimeouts checks that the lazily kept deadlines still give
// net/http's bounds.
func TestTimeouts(t *testing.T) {
	const (
		header = 300 * time.Millisecond
		read   = 600 * time.Millisecond
		idle   = 900 * time.Millisecond
		write  = 900 * time.Millisecond
		// A loaded 2-core machine's delay, under -race too. Generous: a
		// server without the bound under test still fails each case, as
		// the trickles last well beyond bound+slop (40 ms a byte).
		slop = time.Second
	)
	ts := start(t, Config{ReadHeaderTimeout: header, ReadTimeout: read, IdleTimeout: idle, WriteTimeout: write},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/slow" {
				time.Sleep(write + slop/2)
			}
			echo(w, r)
		}))
	req := "GET / HTTP/1.1\r\nHost: gw\r\nX-Pad: " + strings.Repeat("p", 40) + "\r\n\r\n"

	t.Run("head trickled on a new connection", func(t *testing.T) {
		c := ts.dial(t)
		start := time.Now()
		go trickle(c, req, 40*time.Millisecond)
		took, got := closedAfter(t, c, start, header+slop)
		if took < header*8/10 || got != "" {
			t.Fatalf("closed after %v with %q", took, got)
		}
	})

	t.Run("idle keep-alive connection", func(t *testing.T) {
		c := ts.dial(t)
		c.send(t, req)
		c.response(t)
		start := time.Now()
		if took, _ := closedAfter(t, c, start, idle+slop); took < idle*8/10 {
			t.Fatalf("idle connection closed after %v, want %v", took, idle)
		}
	})

	// The head's bound counts from its first byte, not from the end of
	// the previous response.
	// A server of its own, whose idle bound is far beyond the wait: on a
	// loaded machine the wait may run long, and the idle bound must not
	// be what closes the connection.
	t.Run("head trickled after an idle wait", func(t *testing.T) {
		ts := start(t, Config{ReadHeaderTimeout: header, ReadTimeout: read, IdleTimeout: 20 * idle, WriteTimeout: write},
			http.HandlerFunc(echo))
		c := ts.dial(t)
		c.send(t, req)
		c.response(t)
		time.Sleep(2 * header) // longer than the head's bound, so a bound kept from the last response would have expired
		start := time.Now()
		go trickle(c, req, 40*time.Millisecond)
		if took, _ := closedAfter(t, c, start, header+slop); took < header*8/10 {
			t.Fatalf("closed %v after the first byte, want %v", took, header)
		}
	})

	// Requests spread over several header timeouts on one connection:
	// none is cut by a deadline kept from an earlier one.
	t.Run("kept deadlines never cut a request", func(t *testing.T) {
		c := ts.dial(t)
		for end := time.Now().Add(3 * header); time.Now().Before(end); {
			c.send(t, req)
			if resp, _ := c.response(t); resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			time.Sleep(header / 7)
		}
	})

	t.Run("body trickled", func(t *testing.T) {
		c := ts.dial(t)
		start := time.Now()
		c.send(t, "POST / HTTP/1.1\r\nHost: gw\r\nContent-Length: 100\r\n\r\n")
		go trickle(c, strings.Repeat("b", 100), 40*time.Millisecond)
		took, got := closedAfter(t, c, start, read+slop)
		if took < read*8/10 || !strings.HasPrefix(got, "HTTP/1.1 400 ") {
			t.Fatalf("closed after %v with %q", took, got)
		}
	})

	// As with net/http, an answer ready after WriteTimeout is not sent.
	t.Run("handler past the write timeout", func(t *testing.T) {
		c := ts.dial(t)
		start := time.Now()
		c.send(t, "GET /slow HTTP/1.1\r\nHost: gw\r\n\r\n")
		if _, got := closedAfter(t, c, start, write+2*slop); got != "" {
			t.Fatalf("sent %q", got)
		}
	})
}
