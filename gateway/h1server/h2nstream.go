package h1server

import (
	"errors"
	"net/http"
	"net/url"
	"sync"
	"time"
)

var (
	errStreamReset  = errors.New("h1server: HTTP/2 stream reset")
	errClientReset  = errors.New("h1server: HTTP/2 stream reset by the client")
	errConnGone     = errors.New("h1server: HTTP/2 connection closed")
	errWriteTimeout = errors.New("h1server: HTTP/2 flow-control window not opened within WriteTimeout")
	errBodyTimeout  = errors.New("h1server: HTTP/2 request body not received within ReadTimeout")
)

// h2stream is one request of a native HTTP/2 connection. The fields
// after the first block are guarded by h2n.mu.
type h2stream struct {
	h      *h2n
	id     uint32
	start  time.Time
	refuse int // a status for Refuse instead of the handler; 0: none
	req    http.Request
	url    url.URL
	hdr    http.Header
	vals   []string
	ctx    *requestContext // new for each stream: a handler's AfterFunc may outlive it
	body   h2body
	w      h2response

	wait         sync.Cond // window opened, data arrived, reset (L: h2n.mu)
	waiting      bool      // for a send window
	sendWindow   int64
	recvWindow   int64 // what the client may still send on the stream
	recvUnacked  int64
	declared     int64 // the request's content-length, -1 when absent
	received     int64
	remoteClosed bool  // END_STREAM received
	resetErr     error // reset, by either side: writes fail with it
	closed       bool  // no longer counted or in h2n.streams
	timer        *time.Timer
	timerKind    int // h2nBodyWait or h2nWindowWait
	timedOut     bool
}

// abort ends the stream for err (mu held): its writes fail, its body
// read fails, its context is cancelled, and it stops counting.
func (s *h2stream) abort(err error) {
	if s.resetErr == nil {
		s.resetErr = err
	}
	if s.ctx != nil {
		s.ctx.cancel(err)
	}
	s.wait.Broadcast()
	s.h.closeStream(s)
}

// closeStream takes s out of the connection's streams (mu held) and gives
// back the flow-control window of its unread body.
func (h *h2n) closeStream(s *h2stream) {
	if s.closed {
		return
	}
	s.closed = true
	delete(h.streams, s.id)
	h.active--
	if n := int64(len(s.body.buf) - s.body.off); n > 0 {
		h.refundConn(n)
	}
	s.body.buf, s.body.off = nil, 0
	if h.active == 0 {
		h.idleSince = time.Now()
		h.maybeDrain()
	}
}

// The waits a stream's timer bounds: its body's (ReadTimeout from the
// stream's start) and its response's (WriteTimeout from its first wait
// for a send window).
const (
	h2nBodyWait = iota + 1
	h2nWindowWait
)

// armTimer starts, once per kind of wait, the stream's timer for a wait
// bounded by d from now (mu held); its expiry sets timedOut and wakes the
// waiter. The timer of the other kind is stopped and its expiry forgotten:
// a body wait that ran out after the body came must not fail the
// response's first wait for a window. A callback that fires for a timer no
// longer the stream's (replaced, or the stream reused) does nothing. d <=
// 0: the bound has passed already.
func (s *h2stream) armTimer(d time.Duration, kind int) {
	if s.timer != nil && s.timerKind == kind {
		return
	}
	if s.timer != nil {
		s.timer.Stop()
	}
	s.timerKind, s.timedOut = kind, d <= 0
	if d <= 0 {
		s.timer = nil
		return
	}
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		s.h.mu.Lock()
		if s.timer == t {
			s.timedOut = true
			s.wait.Broadcast()
		}
		s.h.mu.Unlock()
	})
	s.timer = t
}

// h2nFreeStreams bounds the finished streams a connection keeps for
// reuse (their request, header maps and buffers).
const h2nFreeStreams = 16

// takeStream returns a reset stream, reused when one is free (mu held).
// A handler must not keep the request, its Header, or the
// ResponseWriter after it returns (as for HTTP/1).
func (h *h2n) takeStream() *h2stream {
	var s *h2stream
	if n := len(h.free); n > 0 {
		s = h.free[n-1]
		h.free[n-1] = nil
		h.free = h.free[:n-1]
		clear(s.hdr)
		clear(s.w.header)
		clear(s.vals[:cap(s.vals)])
		*s = h2stream{h: h, hdr: s.hdr, vals: s.vals[:0], body: h2body{buf: s.body.buf[:0]},
			w: h2response{header: s.w.header, buf: s.w.buf[:0]}}
	} else {
		s = &h2stream{h: h, hdr: make(http.Header, 8), w: h2response{header: make(http.Header, 8)}}
	}
	s.wait.L = &h.mu
	s.body.s = s
	s.w.s = s
	s.ctx = &requestContext{parent: h.c.ctx}
	return s
}

// freeStream keeps a finished stream for reuse (mu held), unless its
// buffers grew large.
func (h *h2n) freeStream(s *h2stream) {
	if len(h.free) < h2nFreeStreams && cap(s.w.buf) <= maxKeptBuffer && cap(s.body.buf) <= maxKeptBuffer {
		h.free = append(h.free, s)
	}
}
