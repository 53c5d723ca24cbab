package h1server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
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

// armTimer starts, once, the stream's timer for a wait bounded by d from
// now; its expiry sets timedOut and wakes the waiter.
func (s *h2stream) armTimer(d time.Duration) {
	if s.timer != nil || d <= 0 {
		return
	}
	s.timer = time.AfterFunc(d, func() {
		s.h.mu.Lock()
		s.timedOut = true
		s.wait.Broadcast()
		s.h.mu.Unlock()
	})
}

// refundConn gives n bytes of the connection's receive window back, by
// WINDOW_UPDATE once a quarter of it is owed (mu held).
func (h *h2n) refundConn(n int64) {
	h.recvUnacked += n
	if h.recvUnacked >= h2nConnWindow/4 && !h.closed {
		_ = h.wfr.WriteWindowUpdate(0, uint32(h.recvUnacked))
		h.recvWindow += h.recvUnacked
		h.recvUnacked = 0
	}
}

// refund gives n bytes read by the handler back to the stream's and the
// connection's windows (mu held).
func (h *h2n) refund(s *h2stream, n int64) {
	h.refundConn(n)
	if s.remoteClosed || s.resetErr != nil {
		return
	}
	s.recvUnacked += n
	if s.recvUnacked >= h2nStreamWindow/4 {
		_ = h.wfr.WriteWindowUpdate(s.id, uint32(s.recvUnacked))
		s.recvWindow += s.recvUnacked
		s.recvUnacked = 0
	}
}

// dataFrame takes a request's DATA (mu held).
func (h *h2n) dataFrame(f *http2.DataFrame) http2.ErrCode {
	id, n := f.StreamID, int64(f.Length)
	if id > h.maxStreamID {
		return http2.ErrCodeProtocol // an idle stream
	}
	if n > h.recvWindow {
		return http2.ErrCodeFlowControl
	}
	h.recvWindow -= n
	s := h.streams[id]
	if s == nil || s.remoteClosed {
		h.refundConn(n)
		h.resetStream(id, http2.ErrCodeStreamClosed)
		return h2nGoOn
	}
	if n > s.recvWindow {
		h.refundConn(n)
		h.resetStream(id, http2.ErrCodeFlowControl)
		return h2nGoOn
	}
	s.recvWindow -= n
	data := f.Data()
	if pad := n - int64(len(data)); pad > 0 {
		h.refund(s, pad)
	}
	s.received += int64(len(data))
	if s.declared >= 0 && s.received > s.declared {
		h.refundConn(int64(len(data)))
		h.resetStream(id, http2.ErrCodeProtocol) // more than its content-length
		return h2nGoOn
	}
	if len(data) > 0 {
		s.body.buf = append(s.body.buf, data...)
		s.wait.Broadcast()
	}
	if f.StreamEnded() {
		h.endRemote(s)
	}
	return h2nGoOn
}

// endRemote marks the end of a request body (mu held).
func (h *h2n) endRemote(s *h2stream) {
	s.remoteClosed = true
	if s.declared >= 0 && s.received != s.declared {
		h.resetStream(s.id, http2.ErrCodeProtocol) // less than its content-length
		return
	}
	s.body.eof = true
	s.wait.Broadcast()
}

// h2body is a request body, filled by the reader up to the stream's
// window and read by the handler.
type h2body struct {
	s   *h2stream
	buf []byte
	off int
	eof bool
}

func (b *h2body) Read(p []byte) (int, error) {
	s := b.s
	h := s.h
	h.mu.Lock()
	defer h.mu.Unlock()
	for b.off == len(b.buf) {
		switch {
		case s.resetErr != nil:
			return 0, s.resetErr
		case b.eof:
			return 0, io.EOF
		case len(p) == 0:
			return 0, nil
		case s.timedOut:
			h.resetStream(s.id, http2.ErrCodeCancel)
			_ = h.flushBlocking(nil)
			return 0, errBodyTimeout
		}
		if rt := h.s.cfg.ReadTimeout; rt > 0 {
			s.armTimer(time.Until(s.start.Add(rt)))
		}
		s.wait.Wait()
	}
	n := copy(p, b.buf[b.off:])
	b.off += n
	if b.off == len(b.buf) {
		b.buf, b.off = b.buf[:0], 0
	}
	h.refund(s, int64(n))
	_ = h.flushBlocking(nil)
	return n, nil
}

func (b *h2body) Close() error { return nil }

// h2response is a stream's http.ResponseWriter. It holds the body up to
// h2nResponseChunk: a response within it leaves whole (HEADERS with its
// Content-Length, and DATA) when the handler returns; a larger one is
// sent as it is written, under flow control.
type h2response struct {
	s           *h2stream
	header      http.Header
	status      int
	buf         []byte
	written     int
	isHead      bool
	headersSent bool // guarded by h2n.mu
	closeConn   bool // the handler asked for Connection: close
	err         error
}

func (w *h2response) Header() http.Header { return w.header }

func (w *h2response) WriteHeader(code int) {
	if w.status != 0 {
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("h1server: invalid WriteHeader code %v", code))
	}
	if code < 200 {
		return // 1xx responses from handlers are not supported
	}
	w.status = code
}

func (w *h2response) Write(p []byte) (int, error) {
	if err := w.start(len(p)); err != nil || w.isHead {
		return len(p), err
	}
	w.buf = append(w.buf, p...)
	return w.sendFull(len(p))
}

func (w *h2response) WriteString(p string) (int, error) {
	if err := w.start(len(p)); err != nil || w.isHead {
		return len(p), err
	}
	w.buf = append(w.buf, p...)
	return w.sendFull(len(p))
}

func (w *h2response) start(n int) error {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		return w.err
	}
	if !bodyAllowed(w.status) {
		return http.ErrBodyNotAllowed
	}
	w.written += n
	return nil
}

// sendFull sends the held body once it reaches h2nResponseChunk.
func (w *h2response) sendFull(n int) (int, error) {
	if len(w.buf) < h2nResponseChunk {
		return n, nil
	}
	h := w.s.h
	h.mu.Lock()
	err := h.sendLocked(w.s, w.buf, false)
	if err == nil {
		err = h.flushBlocking(w.s)
	}
	h.mu.Unlock()
	w.buf = w.buf[:0]
	if err != nil {
		w.err = err
		return 0, err
	}
	return n, nil
}

// sendLocked frames the response's HEADERS, when not yet sent, and data
// as DATA frames within the flow-control windows, waiting (up to
// WriteTimeout) for them to open; mu held.
func (h *h2n) sendLocked(s *h2stream, data []byte, end bool) error {
	if s.resetErr != nil {
		return s.resetErr
	}
	if h.closed || h.werr != nil {
		return errConnGone
	}
	w := &s.w
	if !w.headersSent {
		w.headersSent = true
		length := -1
		if end {
			length = w.written
		}
		h.writeHeaders(s, end && len(data) == 0, length)
	}
	for len(data) > 0 {
		n := int64(min(len(data), h.peerFrame))
		n = min(n, s.sendWindow, h.sendWindow)
		if n <= 0 {
			if err := h.waitWindow(s); err != nil {
				return err
			}
			continue
		}
		_ = h.wfr.WriteData(s.id, end && int(n) == len(data), data[:n])
		s.sendWindow -= n
		h.sendWindow -= n
		data = data[n:]
		if len(h.sink.buf) > h2nHighWater {
			if err := h.flushBlocking(s); err != nil {
				return err
			}
		}
	}
	return nil
}

// waitWindow waits for the client to open a send window (mu held), up
// to WriteTimeout from the stream's first wait: then the stream is reset
// (CANCEL), so that a client that never opens it cannot hold the handler.
func (h *h2n) waitWindow(s *h2stream) error {
	if err := h.flushBlocking(s); err != nil {
		return err
	}
	s.waiting = true
	defer func() { s.waiting = false }()
	s.armTimer(h.s.cfg.WriteTimeout)
	for s.sendWindow <= 0 || h.sendWindow <= 0 {
		switch {
		case s.resetErr != nil:
			return s.resetErr
		case h.closed:
			return errConnGone
		case s.timedOut:
			h.resetStream(s.id, http2.ErrCodeCancel)
			_ = h.flushBlocking(nil)
			return errWriteTimeout
		}
		s.wait.Wait()
	}
	return nil
}

// writeHeaders frames the response's header block (mu held): HEADERS,
// and CONTINUATION frames when it exceeds the client's frame size.
func (h *h2n) writeHeaders(s *h2stream, endStream bool, length int) {
	w := &s.w
	h.ebuf.Reset()
	_ = h.enc.WriteField(hpack.HeaderField{Name: ":status", Value: strconv.Itoa(w.status)})
	hasLength, hasDate := false, false
	for k, vs := range w.header {
		switch k {
		case "Connection":
			for _, v := range vs {
				w.closeConn = w.closeConn || hasToken(v, "close")
			}
			continue
		case "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade":
			continue // connection-specific: not in HTTP/2
		case "Content-Length":
			hasLength = true
		case "Date":
			hasDate = true
		}
		if !validFieldName(k) {
			continue
		}
		name := h.lowerName(k)
		unique := h2nUnique(name)
		for _, v := range vs {
			if httpguts.ValidHeaderFieldValue(v) {
				_ = h.enc.WriteField(hpack.HeaderField{Name: name, Value: v, Sensitive: unique})
			}
		}
	}
	if !hasLength && length >= 0 && bodyAllowed(w.status) {
		_ = h.enc.WriteField(hpack.HeaderField{Name: "content-length", Value: strconv.Itoa(length), Sensitive: true})
	}
	if !hasDate {
		_ = h.enc.WriteField(hpack.HeaderField{Name: "date", Value: h.dateValue(time.Now())})
	}
	block := h.ebuf.Bytes()
	first := block[:min(len(block), h.peerFrame)]
	block = block[len(first):]
	_ = h.wfr.WriteHeaders(http2.HeadersFrameParam{StreamID: s.id, BlockFragment: first, EndStream: endStream, EndHeaders: len(block) == 0})
	for len(block) > 0 {
		next := block[:min(len(block), h.peerFrame)]
		block = block[len(next):]
		_ = h.wfr.WriteContinuation(s.id, len(block) == 0, next)
	}
}

// h2nUnique reports whether a response field's value is (nearly) new in
// every response: it is then sent as a literal that is not indexed, which
// spares both ends adding it to their HPACK tables only to evict it (the
// encoder's table upkeep was most of its cost). Sensitive marks that in
// x/net's encoder.
func h2nUnique(name string) bool {
	switch name {
	case "content-length", "x-request-id":
		return true
	}
	return false
}

// dispatch hands a new stream to an idle worker, a new one, or the queue
// (mu held; released while handing over).
func (h *h2n) dispatch(s *h2stream) http2.ErrCode {
	if h.running >= h2MaxConcurrentStreams {
		if len(h.queue) >= h2nMaxQueuedStreams {
			return http2.ErrCodeEnhanceYourCalm
		}
		h.queue = append(h.queue, s)
		return h2nGoOn
	}
	h.running++
	if h.idle > 0 {
		// That worker is committed to receive: the send does not wait
		// long, and only the reader sends or closes h.work.
		h.idle--
		h.mu.Unlock()
		h.work <- s
		h.mu.Lock()
		return h2nGoOn
	}
	h.wg.Add(1)
	go h.worker(s)
	return h2nGoOn
}

// worker runs streams until the connection ends; its stack, grown by the
// first handler, serves the next ones.
func (h *h2n) worker(s *h2stream) {
	defer h.wg.Done()
	for {
		h.runStream(s)
		h.mu.Lock()
		h.running--
		if h.closed {
			h.mu.Unlock()
			return
		}
		if len(h.queue) > 0 {
			s = h.queue[0]
			h.queue[0] = nil
			h.queue = h.queue[1:]
			h.running++
			h.mu.Unlock()
			continue
		}
		h.idle++
		h.mu.Unlock()
		var ok bool
		if s, ok = <-h.work; !ok {
			return
		}
	}
}

// runStream runs the handler of s (or Refuse) and sends its response.
func (h *h2n) runStream(s *h2stream) {
	h.mu.Lock()
	gone := s.resetErr != nil
	h.mu.Unlock()
	if gone {
		return // reset while it waited in the queue: no handler
	}
	// WithContext is inlined and its copy stays on the stack.
	s.req = *s.req.WithContext(s.ctx)
	ok := h.callHandler(s)
	s.ctx.cancel(context.Canceled)
	h.finish(s, ok)
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

func (h *h2n) callHandler(s *h2stream) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			ok = false
			if v == http.ErrAbortHandler {
				return
			}
			what := fmt.Sprintf("%T", v)
			if re, isRuntime := v.(runtime.Error); isRuntime {
				what = re.Error()
			}
			h.s.log.Error("Handler panicked; stream reset", "panic", what, "stack", string(debug.Stack()))
		}
	}()
	if s.refuse != 0 {
		h.s.log.Debug("HTTP/2 request refused", "status", s.refuse)
		h.s.refuse(&s.w, h.c.tls, s.refuse)
		return true
	}
	h.s.cfg.Handler.ServeHTTP(&s.w, &s.req)
	return true
}

// finish sends the rest of the response with END_STREAM, resets the
// stream (NO_ERROR) when the request body was not all received (RFC
// 9113, 8.1), and closes it; a panicked handler's stream is reset with
// INTERNAL_ERROR.
func (h *h2n) finish(s *h2stream, ok bool) {
	w := &s.w
	h.mu.Lock()
	if s.timer != nil {
		s.timer.Stop()
	}
	if s.resetErr == nil && !h.closed {
		switch {
		case !ok:
			h.resetStream(s.id, http2.ErrCodeInternal)
		default:
			if w.status == 0 {
				w.status = http.StatusOK
			}
			if h.sendLocked(s, w.buf, true) == nil && !s.remoteClosed {
				h.resetStream(s.id, http2.ErrCodeNo)
			}
		}
	}
	h.closeStream(s)
	_ = h.flushBlocking(nil)
	closeConn := w.closeConn
	h.freeStream(s)
	h.mu.Unlock()
	if closeConn {
		h.shutdown()
	}
}
