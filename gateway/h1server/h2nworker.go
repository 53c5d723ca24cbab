package h1server

import (
	"context"
	"net/http"
	"runtime"

	"golang.org/x/net/http2"
)

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

func (h *h2n) callHandler(s *h2stream) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			ok = false
			h.s.logPanic(v, "stream reset")
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
		case w.tooLarge && w.headersSent:
			h.s.log.Error("Response cut: the handler wrote more than MaxResponseBytes", "limit", h.s.cfg.MaxResponseBytes)
			h.resetStream(s.id, http2.ErrCodeInternal)
		case w.tooLarge:
			h.s.log.Error("Response dropped: the handler wrote more than MaxResponseBytes", "limit", h.s.cfg.MaxResponseBytes)
			clear(w.header)
			w.status, w.buf, w.written = http.StatusInternalServerError, w.buf[:0], 0
			if h.sendLocked(s, nil, true) == nil && !s.remoteClosed {
				h.resetStream(s.id, http2.ErrCodeNo)
			}
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
	if h.running > 1 && !h.flushing && len(h.sink.buf) <= h2nHighWater {
		// Other streams of the connection are in their handlers, and
		// under load they often finish together (an audit batch commits
		// them at once): one yield lets those that are ready frame their
		// responses too, and one write carries them all, where each would
		// have made its own.
		h.mu.Unlock()
		runtime.Gosched()
		h.mu.Lock()
	}
	_ = h.flushBlocking(nil)
	closeConn := w.closeConn
	h.freeStream(s)
	h.mu.Unlock()
	if closeConn {
		h.shutdown()
	}
}
