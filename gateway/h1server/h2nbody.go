package h1server

import (
	"io"
	"time"

	"golang.org/x/net/http2"
)

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
			s.armTimer(time.Until(s.start.Add(rt)), h2nBodyWait)
			if s.timedOut {
				continue // ReadTimeout had passed before the first wait
			}
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
