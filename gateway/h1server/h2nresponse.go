package h1server

import (
	"fmt"
	"net/http"
	"strconv"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
)

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
	declared    int64 // the handler's Content-Length at WriteHeader, -1: none
	tooLarge    bool  // more than MaxResponseBytes was written: 500 or reset
	headersSent bool  // guarded by h2n.mu
	closeConn   bool  // the handler asked for Connection: close
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
	w.declared = -1
	if vs := w.header["Content-Length"]; len(vs) > 0 {
		if n, ok := parseLength(trimOWS(vs[0])); ok {
			w.declared = n
		}
	}
}

func (w *h2response) Write(p []byte) (int, error) {
	if err := w.start(len(p)); err != nil {
		return 0, err
	}
	if w.isHead {
		return len(p), nil
	}
	w.buf = append(w.buf, p...)
	return w.sendFull(len(p))
}

func (w *h2response) WriteString(p string) (int, error) {
	if err := w.start(len(p)); err != nil {
		return 0, err
	}
	if w.isHead {
		return len(p), nil
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
	// As over HTTP/1 (response.go): no more than the handler announced,
	// nor than MaxResponseBytes (then the answer is a 500, or a reset
	// once the response has begun to leave).
	if w.declared >= 0 && int64(w.written+n) > w.declared {
		return http.ErrContentLength
	}
	if w.written+n > w.s.h.s.cfg.MaxResponseBytes {
		w.tooLarge = true
		w.err = ErrResponseTooLarge
		return w.err
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
	if wt := h.s.cfg.WriteTimeout; wt > 0 {
		s.armTimer(wt, h2nWindowWait)
	}
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
// and CONTINUATION frames when it exceeds the client's frame size. The
// block is encoded without HPACK's dynamic table (h2nhpack.go).
func (h *h2n) writeHeaders(s *h2stream, endStream bool, length int) {
	w := &s.w
	block := h.hblock[:0]
	if !h.tableSized {
		h.tableSized = true
		block = appendHpackTableSizeZero(block)
	}
	block = appendHpackStatus(block, w.status)
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
		name, ok := h.hpackName(k)
		if !ok {
			continue
		}
		for _, v := range vs {
			if httpguts.ValidHeaderFieldValue(v) {
				block = appendHpackString(append(block, name...), v)
			}
		}
	}
	if !hasLength && length >= 0 && bodyAllowed(w.status) {
		var n [20]byte
		block = appendHpackInt(block, 0, 4, hpackContentLength)
		block = appendHpackString(block, strconv.AppendInt(n[:0], int64(length), 10))
	}
	if !hasDate {
		block = appendHpackLiteral(block, "date", h.dateValue())
	}
	if cap(block) <= maxKeptBuffer {
		h.hblock = block
	}
	first := block[:min(len(block), h.peerFrame)]
	block = block[len(first):]
	_ = h.wfr.WriteHeaders(http2.HeadersFrameParam{StreamID: s.id, BlockFragment: first, EndStream: endStream, EndHeaders: len(block) == 0})
	for len(block) > 0 {
		next := block[:min(len(block), h.peerFrame)]
		block = block[len(next):]
		_ = h.wfr.WriteContinuation(s.id, len(block) == 0, next)
	}
}

// hpackContentLength is the static index of the name content-length.
const hpackContentLength = 28
