package h1server

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// h2nStreamOf is the native stream behind a handler's ResponseWriter.
func h2nStreamOf(w http.ResponseWriter) *h2stream { return w.(*h2response).s }

// h2nPoll polls cond under the connection's lock, bounded (10 s, a bound
// for a loaded machine); false when it never held. For handlers, which
// must not call t.Fatal.
func h2nPoll(s *h2stream, cond func() bool) bool {
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		s.h.mu.Lock()
		ok := cond()
		s.h.mu.Unlock()
		if ok {
			return true
		}
	}
	return false
}

// TestH2NativeWriteWaitAfterBodyWait: a handler that had to wait for its
// request body (arming the ReadTimeout timer), and then writes a
// response larger than the client's window, must get WriteTimeout to see
// that window open. The stream's single timer used to be the body's: once
// ReadTimeout (from the stream's start) had passed, the first wait for a
// window failed at once and the stream was reset CANCEL.
func TestH2NativeWriteWaitAfterBodyWait(t *testing.T) {
	streams := make(chan *h2stream, 1)
	returned := make(chan error, 1)
	// ReadTimeout counts from the stream's start, and the body must come
	// within it: 200 ms was too short for a machine at load 20.
	ts, _ := startH2(t, HTTP2Native, Config{ReadTimeout: time.Second, WriteTimeout: 10 * time.Second},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s := h2nStreamOf(w)
			streams <- s
			if _, err := io.ReadAll(r.Body); err != nil {
				returned <- err
				return
			}
			// The body timer fires: the body is in, the handler works on.
			if !h2nPoll(s, func() bool { return s.timedOut }) {
				returned <- errors.New("the body's timer never fired")
				return
			}
			_, err := w.Write(bytes.Repeat([]byte("a"), 100<<10))
			returned <- err
		}))
	c := ts.dialH2(t, true)
	if err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: c.headers(), EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	s := <-streams
	waitFor(t, "the handler to wait for its body", func() bool {
		s.h.mu.Lock()
		defer s.h.mu.Unlock()
		return s.timer != nil
	})
	if err := c.fr.WriteData(1, true, []byte("body")); err != nil {
		t.Fatal(err)
	}
	// The response fills the client's 64 KiB window; the client opens
	// more only once the handler waits for it.
	waitFor(t, "the handler to wait for a window, or return", func() bool {
		s.h.mu.Lock()
		defer s.h.mu.Unlock()
		return s.waiting || len(returned) > 0
	})
	if err := c.fr.WriteWindowUpdate(0, 1<<20); err != nil {
		t.Fatal(err)
	}
	if err := c.fr.WriteWindowUpdate(1, 1<<20); err != nil {
		t.Fatal(err)
	}
	if err := <-returned; err != nil {
		t.Fatalf("the handler's write failed: %v", err)
	}
}

// TestH2NativeResponseTooLarge: as over HTTP/1 (TestResponseTooLarge), a
// handler that writes more than MaxResponseBytes gets ErrResponseTooLarge
// and the client a 500; the native server used to send it all.
func TestH2NativeResponseTooLarge(t *testing.T) {
	werr := make(chan error, 1)
	ts, _ := startH2(t, HTTP2Native, Config{MaxResponseBytes: 1000}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(make([]byte, 600))
		_, err := w.Write(make([]byte, 600))
		werr <- err
	}))
	resp, err := ts.client(ts.agency, true).Get("https://" + ts.addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError || len(body) >= 1000 {
		t.Errorf("status %d with %d bytes, want 500 without the body", resp.StatusCode, len(body))
	}
	if err := <-werr; err != ErrResponseTooLarge {
		t.Errorf("Write returned %v, want ErrResponseTooLarge", err)
	}
}

// TestH2NativeContentLengthExceeded: a handler that writes more than its
// own Content-Length gets http.ErrContentLength (as over HTTP/1 and with
// x/net); the native server used to send the longer body under the
// shorter content-length, a malformed response (RFC 9113, 8.1.1).
func TestH2NativeContentLengthExceeded(t *testing.T) {
	werr := make(chan error, 1)
	ts, _ := startH2(t, HTTP2Native, Config{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "5")
		_, err := w.Write([]byte("0123456789"))
		werr <- err
	}))
	resp, err := ts.client(ts.agency, true).Get("https://" + ts.addr + "/")
	if err == nil {
		_, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err := <-werr; err != http.ErrContentLength {
		t.Errorf("Write returned %v, want http.ErrContentLength", err)
	}
}

// TestH2NativeBodyWaitPastReadTimeout: a handler that first reads its
// body once ReadTimeout (from the stream's start) has passed, from a
// client that sends none, gets errBodyTimeout. The timer used to be armed
// only with a positive delay, so that read waited for as long as the
// client kept the connection.
func TestH2NativeBodyWaitPastReadTimeout(t *testing.T) {
	const rt = 100 * time.Millisecond
	returned := make(chan error, 1)
	ts, _ := startH2(t, HTTP2Native, Config{ReadTimeout: rt}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := h2nStreamOf(w)
		if !h2nPoll(s, func() bool { return time.Since(s.start) > rt }) {
			returned <- errors.New("ReadTimeout never passed")
			return
		}
		_, err := r.Body.Read(make([]byte, 10))
		returned <- err
	}))
	c := ts.dialH2(t, true)
	if err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: c.headers(), EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-returned:
		if err != errBodyTimeout {
			t.Fatalf("the body read returned %v, want errBodyTimeout", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the body read still waits 10 s after ReadTimeout")
	}
}

// stacksContain reports whether some goroutine's stack mentions each of
// what (a goroutine dump: to know that a goroutine waits where the test
// needs it, without timing).
func stacksContain(what ...string) bool {
	buf := make([]byte, 1<<20)
	dump := string(buf[:runtime.Stack(buf, true)])
	for _, w := range what {
		if !strings.Contains(dump, w) {
			return false
		}
	}
	return true
}

// TestH2NativeIdleTimerStopsAtEnd: the idle timer's callback, when it
// fires just as the connection ends (after end has stopped the timers),
// must not re-arm the timer. It used to re-arm it when it found the
// connection busy or closed, and then every IdleTimeout for ever: the
// timer kept the ended connection (buffers, streams) from being freed.
func TestH2NativeIdleTimerStopsAtEnd(t *testing.T) {
	started := make(chan struct{}, 1)
	// The idle timeout must outlast the request's way to its handler on a
	// loaded machine: a connection that idled out first never ran it.
	ts, _ := startH2(t, HTTP2Native, Config{IdleTimeout: 500 * time.Millisecond}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-r.Context().Done() // busy until the connection ends
	}))
	c := ts.dialH2(t, true)
	c.get(t, 1)
	select {
	case <-started:
	case <-time.After(20 * time.Second):
		t.Fatal("the handler did not start")
	}
	var h *h2n
	ts.Server.mu.Lock()
	for conn := range ts.Server.conns {
		h = conn.h2n.Load()
	}
	ts.Server.mu.Unlock()
	if h == nil {
		t.Fatal("no native HTTP/2 connection")
	}
	// Hold the lock while the idle timer fires and the connection ends:
	// its callback then runs after end has stopped the timers.
	// The reader must wait in a read, not for the lock: the client's
	// SETTINGS acknowledgement is written (before its event), then a PING
	// answered shows the server has handled it.
	c.await(t, "the server's SETTINGS", func(ev h2Event) bool { return ev.typ == http2.FrameSettings && !ev.ack })
	if err := c.fr.WritePing(false, [8]byte{1}); err != nil {
		t.Fatal(err)
	}
	c.await(t, "the PING's answer", func(ev h2Event) bool { return ev.typ == http2.FramePing && ev.ack })
	// A failed wait must not leave the lock held (the cleanup needs it).
	h.mu.Lock()
	locked := true
	defer func() {
		if locked {
			h.mu.Unlock()
		}
	}()
	waitFor(t, "the idle timer's callback to wait for the lock", func() bool { return stacksContain("(*h2n).startTimers.func1") })
	_ = c.conn.Close()
	waitFor(t, "the connection's end to wait for the lock", func() bool { return stacksContain("h1server.(*h2n).end") })
	locked = false
	h.mu.Unlock()
	waitFor(t, "the connection's end", func() bool { return ts.tracked() == 0 })
	waitFor(t, "the idle timer's callback to return", func() bool { return !stacksContain("(*h2n).startTimers.func1") })
	if h.timers[0].Stop() {
		t.Fatal("the idle timer of an ended connection was armed again")
	}
}
