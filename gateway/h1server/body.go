package h1server

import (
	"io"
	"net/http"
)

// maxDiscard bounds the unread body the server reads and drops after the
// handler returned to keep the connection (net/http uses the same bound);
// a larger remainder closes the connection instead.
const maxDiscard = 256 << 10

// body is a request body: exactly Content-Length bytes from the
// connection's reader. One per connection, reset for each request: a
// handler must not keep it after it returns.
type body struct {
	c         *conn
	remaining int64
	err       error // sticky: the body cannot be finished, so neither can the connection
	started   bool  // the first read happened: 100 Continue sent, deadline set
	closed    bool
}

func (b *body) reset(n int64) { *b = body{c: b.c, remaining: n} }

// Read reads the body. The first read answers an Expect: 100-continue and,
// when the body is not all buffered yet, moves the read deadline to the
// request's ReadTimeout.
func (b *body) Read(p []byte) (int, error) {
	switch {
	case b.closed:
		return 0, http.ErrBodyReadAfterClose
	case b.remaining == 0:
		return 0, io.EOF
	case b.err != nil:
		return 0, b.err
	}
	if err := b.start(); err != nil {
		return 0, err
	}
	if int64(len(p)) > b.remaining {
		p = p[:b.remaining]
	}
	n, err := b.c.rd.read(p)
	b.remaining -= int64(n)
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		b.err = err
		return n, err
	}
	if b.remaining == 0 {
		return n, io.EOF
	}
	return n, nil
}

// Close marks the body closed; the server reads or drops what is left.
func (b *body) Close() error {
	b.closed = true
	return nil
}

func (b *body) start() error {
	if b.started {
		return nil
	}
	b.started = true
	if err := b.c.bodyStarting(int64(b.c.rd.buffered()) < b.remaining); err != nil {
		b.err = err
		return err
	}
	return nil
}

// finish reads and drops what the handler left unread, when that is
// small, so the connection can serve its next request. It reports whether
// the body ended cleanly.
func (b *body) finish() bool {
	if b.remaining == 0 {
		return b.err == nil
	}
	if b.err != nil || b.remaining > maxDiscard || (b.c.expectContinue && !b.started) {
		// The client may be waiting for a 100 Continue that will not
		// come, and may or may not send the body: the stream position is
		// unknown, so the connection must close.
		return false
	}
	if err := b.start(); err != nil {
		return false
	}
	rd := &b.c.rd
	for b.remaining > 0 {
		if rd.buffered() == 0 {
			if err := rd.fill(len(rd.buf)); err != nil {
				b.err = err
				return false
			}
		}
		n := int(min(int64(rd.buffered()), b.remaining))
		rd.consume(n)
		b.remaining -= int64(n)
	}
	return true
}
