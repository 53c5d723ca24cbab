package gateway

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestUpstreamPool(t *testing.T) {
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.URL.Path)
		if r.Header.Get("X-Request-Id") != "rid" || r.Header.Get("X-Popconnect-Agency") != "BYT" ||
			r.Host != r.Context().Value(http.LocalAddrContextKey).(net.Addr).String() ||
			r.UserAgent() != "popconnect-gateway" || r.Header.Get("Accept") != "application/json" {
			w.WriteHeader(400)
			return
		}
		b, _ := io.ReadAll(r.Body)
		w.(http.Flusher).Flush() // forces a chunked answer
		io.WriteString(w, `{"echo":`+strings.TrimSpace(string(b)+`1`)+`}`)
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL + "/api/")
	p := newUpstreamPool(u, nil, 4, 0)
	defer p.closeIdle()
	ctx := context.Background()
	var buf bytes.Buffer
	call := func(body []byte) (int, string) {
		buf.Reset()
		status, err := p.roundTrip(ctx, time.Now().Add(10*time.Second), "POST", "/v1/x", body, "rid", "BYT", 1<<10, &buf)
		if err != nil {
			t.Fatal(err)
		}
		return status, buf.String()
	}
	if s, b := call(nil); s != 200 || b != `{"echo":1}` {
		t.Fatalf("got %d %q", s, b)
	}
	// The server drops the idle keep-alive connection: the next call is
	// retried on a new one.
	srv.CloseClientConnections()
	if s, b := call([]byte("2")); s != 200 || b != `{"echo":21}` {
		t.Fatalf("after a dropped connection: %d %q", s, b)
	}
	if paths[0] != "/api/v1/x" {
		t.Fatalf("path prefix lost: %v", paths)
	}
	buf.Reset()
	if _, err := p.roundTrip(ctx, time.Now().Add(10*time.Second), "POST", "/v1/x", bytes.Repeat([]byte("9"), 2000), "rid", "BYT", 1<<10, &buf); err != errTooLarge {
		t.Fatalf("oversized chunked body: %v", err)
	}
}

// TestUpstreamPoolHeaderLimit: an upstream whose header never ends is cut
// off at the pool's limit, not read until memory or the timeout runs out.
func TestUpstreamPoolHeaderLimit(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var sent atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				n, _ := io.WriteString(c, "HTTP/1.1 200 OK\r\n")
				sent.Add(int64(n))
				line := "X-Filler: " + strings.Repeat("a", 1000) + "\r\n"
				for sent.Load() < 64<<20 {
					n, err := io.WriteString(c, line)
					sent.Add(int64(n))
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	u, _ := url.Parse("http://" + ln.Addr().String())
	p := newUpstreamPool(u, nil, 4, 8<<10)
	defer p.closeIdle()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var buf bytes.Buffer
	if _, err := p.roundTrip(ctx, time.Now().Add(10*time.Second), "GET", "/v1/x", nil, "rid", "BYT", 1<<10, &buf); !errors.Is(err, errHeaderTooLarge) {
		t.Fatalf("endless header: %v", err)
	}
	if ctx.Err() != nil {
		t.Fatal("the pool read until the deadline")
	}

	// A header within the limit is read as usual.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Filler", strings.Repeat("a", 4<<10))
		io.WriteString(w, `{}`)
	}))
	defer srv.Close()
	u, _ = url.Parse(srv.URL)
	p2 := newUpstreamPool(u, nil, 4, 8<<10)
	defer p2.closeIdle()
	for range 2 { // and again on the kept-alive connection
		buf.Reset()
		if status, err := p2.roundTrip(ctx, time.Now().Add(10*time.Second), "GET", "/v1/x", nil, "rid", "BYT", 1<<10, &buf); err != nil || status != 200 || buf.String() != `{}` {
			t.Fatalf("header under the limit: %d %q %v", status, buf.String(), err)
		}
	}
}

// countingWriteReader counts the requests sent with WriteRead.
type countingWriteReader struct {
	wr writeReader
	n  int
}

func (c *countingWriteReader) WriteRead(p, b []byte) (int, error) {
	c.n++
	return c.wr.WriteRead(p, b)
}

// TestUpstreamPoolWriteRead: a pooled connection used recently sends its
// request with WriteRead (no read that finds nothing before the answer);
// one whose last call began longer than hotWindow before (by the calls'
// deadlines, all given the same timeout) writes it and reads as usual, so an
// end of the connection already waiting in its socket is found at once.
// Both answer the same.
func TestUpstreamPoolWriteRead(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"path":"`+r.URL.Path+`"}`)
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	p := newUpstreamPool(u, nil, 4, 0)
	defer p.closeIdle()
	var buf bytes.Buffer
	call := func(path string) {
		t.Helper()
		buf.Reset()
		status, err := p.roundTrip(context.Background(), time.Now().Add(10*time.Second), "GET", path, nil, "rid", "BYT", 1<<10, &buf)
		if err != nil || status != 200 || buf.String() != `{"path":"`+path+`"}` {
			t.Fatalf("%s: %d %q %v", path, status, buf.String(), err)
		}
	}
	call("/v1/a")
	if len(p.idle) != 1 {
		t.Fatalf("%d idle connections, want 1", len(p.idle))
	}
	uc := p.idle[0]
	if uc.src.wr == nil {
		t.Skip("the connection has no WriteRead (not Linux, or the race detector: rawio leaves it alone)")
	}
	counter := &countingWriteReader{wr: uc.src.wr}
	uc.src.wr = counter
	tests := []struct {
		name      string
		idleFor   time.Duration
		writeRead bool
	}{
		{"used just now", 0, true},
		{"idle past the window", 2 * hotWindow, false},
		{"used just now again", 0, true},
	}
	for _, tt := range tests {
		before := counter.n
		uc.lastDeadline = time.Now().Add(10*time.Second - tt.idleFor)
		call("/v1/" + strings.ReplaceAll(tt.name, " ", "-"))
		if p.idle[0] != uc {
			t.Fatalf("%s: another connection was used", tt.name)
		}
		if got := counter.n > before; got != tt.writeRead {
			t.Fatalf("%s: sent with WriteRead = %v, want %v", tt.name, got, tt.writeRead)
		}
	}
	// Dropped by the upstream just after an answer: the request sent with
	// WriteRead makes the peer reset the connection, which ends the wait
	// at once, and the call is retried on a new connection.
	srv.CloseClientConnections()
	before := counter.n
	call("/v1/after-close")
	if counter.n != before+1 {
		t.Fatal("the dropped connection was not tried with WriteRead")
	}
}

// TestUpstreamCallInterrupted: a request cancelled while its upstream call
// waits for the answer (the agency went away) ends the call at once rather
// than at its deadline, and the connection is not pooled again.
func TestUpstreamCallInterrupted(t *testing.T) {
	received := make(chan struct{})
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(received)
		<-release // never answers while the call waits
	}))
	defer srv.Close()
	defer close(release)
	u, _ := url.Parse(srv.URL)
	p := newUpstreamPool(u, nil, 4, 0)
	defer p.closeIdle()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-received
		cancel()
	}()
	var buf bytes.Buffer
	// The deadline is far off: only the interruption can end the call
	// before the test's own timeout.
	_, err := p.roundTrip(ctx, time.Now().Add(time.Hour), "GET", "/v1/x", nil, "rid", "BYT", 1<<10, &buf)
	if err == nil {
		t.Fatal("the interrupted call succeeded")
	}
	p.mu.Lock()
	idle := len(p.idle)
	p.mu.Unlock()
	if idle != 0 {
		t.Errorf("%d idle connections after an interrupted call, want 0", idle)
	}
}
