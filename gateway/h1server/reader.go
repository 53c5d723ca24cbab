package h1server

import (
	"errors"
	"io"
)

// reader buffers what a connection receives. Request heads are scanned
// and parsed in place; bodies are read from the buffer first. Unlike
// bufio.Reader it grows, up to a bound, only when a head does not fit, and
// a failed read consumes nothing, so a read that timed out can be retried
// after the deadline was moved.
type reader struct {
	src  io.Reader
	buf  []byte
	r, w int // unread bytes are buf[r:w]
}

// initialReadBuffer holds a typical request head and a small body; larger
// heads grow the buffer up to MaxHeaderBytes.
const initialReadBuffer = 4 << 10

// errBufferFull reports that fill found the buffer at its bound.
var errBufferFull = errors.New("h1server: read buffer full")

func (b *reader) buffered() int  { return b.w - b.r }
func (b *reader) unread() []byte { return b.buf[b.r:b.w] }

// consume drops n unread bytes.
func (b *reader) consume(n int) {
	b.r += n
	if b.r == b.w {
		b.r, b.w = 0, 0
	}
}

// fill reads once from src, after making room: unread bytes move to the
// front, and a full buffer grows (doubling) up to limit bytes. It returns
// errBufferFull when the unread bytes already fill limit.
func (b *reader) fill(limit int) error {
	if b.buf == nil {
		b.buf = make([]byte, initialReadBuffer)
	}
	if b.w == len(b.buf) && b.r > 0 {
		b.w = copy(b.buf, b.buf[b.r:b.w])
		b.r = 0
	}
	if b.w == len(b.buf) {
		if len(b.buf) >= limit {
			return errBufferFull
		}
		grown := make([]byte, min(2*len(b.buf), max(limit, initialReadBuffer)))
		b.w = copy(grown, b.buf[b.r:b.w])
		b.r = 0
		b.buf = grown
	}
	n, err := b.src.Read(b.buf[b.w:])
	b.w += n
	if n > 0 {
		return nil // an error comes back on the next read
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// shrink drops a buffer grown for a large head once it holds nothing, so
// an idle connection keeps at most max bytes.
func (b *reader) shrink(max int) {
	if b.buffered() == 0 && len(b.buf) > max {
		b.buf = nil
		b.r, b.w = 0, 0
	}
}

// read copies buffered bytes into p, or reads from src when nothing is
// buffered: directly into p when p is at least a buffer long, else through
// the buffer.
func (b *reader) read(p []byte) (int, error) {
	if b.buffered() == 0 {
		if len(p) >= initialReadBuffer {
			return b.src.Read(p)
		}
		if err := b.fill(len(b.buf)); err != nil {
			return 0, err
		}
	}
	n := copy(p, b.buf[b.r:b.w])
	b.consume(n)
	return n, nil
}
