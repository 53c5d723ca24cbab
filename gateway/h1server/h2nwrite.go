package h1server

import (
	"net/http"
	"sync"
	"time"

	"golang.org/x/net/http2"
)

// wstate is the write side of a native HTTP/2 connection, guarded by
// h2n.mu. Frames are framed into sink.buf; whoever flushes takes the
// buffer and writes it with one Write (one TLS record up to 16 KiB), while
// the others go on framing into a new one: responses finished while a
// write is in progress leave together in the next. A handler flushes its
// own response on its own goroutine (no hand-off); the reader never
// writes, it wakes the writer goroutine, so that a client that does not
// read cannot stop the connection from reading.
type wstate struct {
	sink   h2nSink
	spare  []byte
	wfr    *http2.Framer // writes into sink
	hblock []byte        // the header block being encoded
	// tableSized: the connection's first header block, which sets the
	// HPACK dynamic table's size to 0, is framed (h2nhpack.go).
	tableSized bool
	flushing   bool
	flushed    sync.Cond // a flush wrote, ended or failed
	werr       error
	wdl        time.Time // the write deadline in force (the flusher's)

	queuedControl     int  // control frames framed since the last flush began
	settingsAckQueued bool // a SETTINGS ACK waits in sink

	// names holds response header names (valid ones, as handlers set
	// them) in their HPACK form up to the value: see hpackName.
	names map[string][]byte
	// date is the Date value, formatted at dateAt (by time.Now) and
	// good for dateFor after it: until the next second.
	date    string
	dateAt  time.Time
	dateFor time.Duration
}

// h2nSink collects the framer's frames.
type h2nSink struct{ buf []byte }

func (s *h2nSink) Write(p []byte) (int, error) {
	s.buf = append(s.buf, p...)
	return len(p), nil
}

func (h *h2n) initWrite() {
	h.wfr = http2.NewFramer(&h.sink, nil)
	h.flushed.L = &h.mu
	h.names = make(map[string][]byte)
}

// controlQueued counts a control frame framed by the reader (mu held):
// past h2nMaxQueuedControl since the last flush began, the client is not
// reading what it asks for, and the connection is closed.
func (h *h2n) controlQueued() http2.ErrCode {
	h.queuedControl++
	if h.queuedControl > h2nMaxQueuedControl {
		h.reportLocked("connection", "enhance_your_calm")
		h.closeLocked()
	}
	return h2nGoOn
}

// flushAsync has the writer goroutine write what is framed, unless a
// flush is in progress (it will): for the reader, which must not block.
func (h *h2n) flushAsync() {
	h.mu.Lock()
	if !h.closed && !h.flushing && len(h.sink.buf) > 0 {
		select {
		case h.kick <- struct{}{}:
		default:
		}
	}
	h.mu.Unlock()
}

// writer flushes for the reader until the connection closes.
func (h *h2n) writer() {
	defer h.wg.Done()
	for range h.kick {
		h.mu.Lock()
		h.flushLocked()
		h.mu.Unlock()
	}
}

// flushLocked writes what is framed, and what is framed meanwhile, on the
// calling goroutine (mu held, released while writing); when a flush is in
// progress it returns at once: that one writes it.
func (h *h2n) flushLocked() {
	if h.flushing {
		return
	}
	h.flushing = true
	for len(h.sink.buf) > 0 && h.werr == nil && !h.closed {
		buf := h.sink.buf
		h.sink.buf, h.spare = h.spare[:0], nil
		h.queuedControl, h.settingsAckQueued = 0, false
		h.mu.Unlock()
		err := h.write(buf)
		h.mu.Lock()
		if cap(buf) <= 4*h2nHighWater { // a rare large buffer is not kept
			h.spare = buf[:0]
		}
		if err != nil {
			h.werr = err
			h.closeLocked()
		}
		h.flushed.Broadcast()
	}
	h.flushing = false
	h.flushed.Broadcast()
}

// write writes b under WriteTimeout: a client that takes nothing for that
// long loses the connection (slow read). The deadline is kept while it
// lies within writeSlack of the exact one (deadline.go).
func (h *h2n) write(b []byte) error {
	if wt := h.s.cfg.WriteTimeout; wt > 0 {
		if want := time.Now().Add(wt); !keepDeadline(h.wdl, want, h.s.writeSlack) {
			_ = h.c.rwc.SetWriteDeadline(want)
			h.wdl = want
		}
	}
	_, err := h.c.rwc.Write(b)
	return err
}

// waitFlushed waits until what is framed is written, the connection has
// failed, or h2nLinger has passed (then it closes the connection): for
// the reader, at the connection's end.
func (h *h2n) waitFlushed() {
	t := time.AfterFunc(h2nLinger, func() {
		h.mu.Lock()
		h.closeLocked()
		h.mu.Unlock()
	})
	defer t.Stop()
	h.mu.Lock()
	defer h.mu.Unlock()
	for (h.flushing || len(h.sink.buf) > 0) && h.werr == nil && !h.closed {
		if !h.flushing {
			h.flushLocked()
			continue
		}
		h.flushed.Wait()
	}
}

// flushBlocking writes what is framed on the calling goroutine (a
// handler's; s, when not nil, is its stream, whose reset ends the wait),
// or, when another goroutine is writing, returns at once
// unless more than h2nHighWater bytes wait: then it waits for them to
// leave, so that a client that does not read holds back its handlers
// rather than the server's memory. mu held.
func (h *h2n) flushBlocking(s *h2stream) error {
	for {
		if h.werr != nil || h.closed {
			return errConnGone
		}
		if s != nil && s.resetErr != nil {
			return errStreamReset
		}
		if !h.flushing {
			h.flushLocked()
			if h.werr != nil || h.closed {
				return errConnGone
			}
			return nil
		}
		if len(h.sink.buf) <= h2nHighWater {
			return nil
		}
		h.flushed.Wait()
	}
}

// hpackName is a response header name as a literal field starts in
// HPACK (appendHpackName), in lower case as HTTP/2 requires, or false
// when it is not a valid field name. Handlers use a handful of names, so
// each connection keeps them: one map lookup per field, where the name's
// lower case and its static index were each looked up.
func (h *h2n) hpackName(k string) ([]byte, bool) {
	if e, ok := h.names[k]; ok {
		return e, true
	}
	if !validFieldName(k) {
		return nil, false
	}
	e := appendHpackName(nil, asciiLower(k))
	if len(h.names) < 64 {
		h.names[k] = e
	}
	return e, true
}

func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// dateValue is the Date header value for now, formatted once a second.
// Within the second it was formatted in, only the monotonic clock is
// read (time.Since): on a VM's clock each read is a vDSO call of about
// 75 ns, and time.Now makes two, wall and monotonic.
func (h *h2n) dateValue() string {
	if h.date != "" && time.Since(h.dateAt) < h.dateFor {
		return h.date
	}
	now := time.Now()
	h.date = now.UTC().Format(http.TimeFormat)
	h.dateAt, h.dateFor = now, time.Second-time.Duration(now.Nanosecond())
	return h.date
}
