package gateway

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"github.com/popconnect/popconnect/gateway/rawio"
	"io"
	"net"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// upstreamPool is a small HTTP/1.1 client for the one upstream. Each call
// writes its request and reads the answer on the calling goroutine, over a
// pooled keep-alive connection. net/http's Transport hands every request
// between three goroutines (caller, writeLoop, readLoop); on a busy 2-core
// machine those handoffs cost more than the rest of the gateway's work, and
// profiling showed them as the largest avoidable cost.
type upstreamPool struct {
	addr string // host:port to dial
	host string // Host header
	// head is the part of every request between its target and its
	// X-Request-Id value, Host included: one append instead of five.
	head    string
	prefix  string // path prefix of the upstream URL, without trailing slash
	tls     *tls.Config
	dialer  net.Dialer
	maxIdle int
	// maxHeader bounds the bytes read from the connection until the
	// response header is parsed: an upstream that never ends its header
	// must not keep the gateway reading (and, with net/http's
	// ReadResponse, which has no limit, growing its memory) until the
	// timeout.
	maxHeader int64

	mu   sync.Mutex
	idle []*upConn
}

type upConn struct {
	c   net.Conn
	src upReader      // reads c, after sending the request it holds
	lr  limitedReader // between src and br: what br may still pull from c
	br  *bufio.Reader
	req []byte // the request being sent, reused
	// lastDeadline is the deadline given to the connection's last
	// exchange (see hotWindow).
	lastDeadline time.Time
	// interrupt ends the exchange in progress (a deadline in the past):
	// what a cancelled request runs. Made once per connection, not per
	// call.
	interrupt func()
}

// writeReader is a connection that writes a request and waits for its
// answer without the read that would find nothing (rawio.Conn).
type writeReader interface {
	WriteRead(p, b []byte) (int, error)
}

// upReader is what the buffered reader pulls from: the connection, whose
// first read sends the request held in send first, with WriteRead.
type upReader struct {
	c    net.Conn
	wr   writeReader // c's WriteRead, nil when it has none
	send []byte
}

func (u *upReader) Read(p []byte) (int, error) {
	if u.send != nil {
		req := u.send
		u.send = nil
		return u.wr.WriteRead(req, p)
	}
	return u.c.Read(p)
}

// hotWindow is how recently a pooled connection must have begun its last
// exchange for the next request to be sent with WriteRead, which
// learns of an end of the connection that was already waiting in the
// socket only from what the request makes the peer send (a reset, when
// it closed the connection). An upstream drops idle connections after
// seconds, not within this window; one that did without a reset (a
// half-close it keeps open) would cost that request its timeout. The
// callers give every call the same timeout, so the difference between
// two calls' deadlines is the time between their starts, and no clock is
// read for this.
const hotWindow = time.Second

// limitedReader fails reads once n bytes have been read. Unlike
// io.LimitedReader it reports an error rather than io.EOF, so a header cut
// short by the limit is never mistaken for the upstream closing.
type limitedReader struct {
	r io.Reader
	n int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errHeaderTooLarge
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

// DefaultMaxUpstreamHeaderBytes bounds an upstream response header when the
// configuration does not. popdb answers with a few hundred bytes.
const DefaultMaxUpstreamHeaderBytes = 64 << 10

func newUpstreamPool(u *url.URL, tlsConfig *tls.Config, maxIdle int, maxHeader int64) *upstreamPool {
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	p := &upstreamPool{
		addr:    net.JoinHostPort(host, port),
		host:    u.Host,
		prefix:  u.EscapedPath(),
		dialer:  net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second},
		maxIdle: maxIdle,
	}
	p.head = " HTTP/1.1\r\nHost: " + p.host + "\r\nUser-Agent: popconnect-gateway\r\nAccept: application/json\r\nX-Request-Id: "
	p.maxHeader = maxHeader
	if p.maxHeader <= 0 {
		p.maxHeader = DefaultMaxUpstreamHeaderBytes
	}
	if len(p.prefix) > 0 && p.prefix[len(p.prefix)-1] == '/' {
		p.prefix = p.prefix[:len(p.prefix)-1]
	}
	if u.Scheme == "https" {
		cfg := tlsConfig.Clone()
		if cfg == nil {
			cfg = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		if cfg.ServerName == "" {
			cfg.ServerName = host
		}
		cfg.NextProtos = []string{"http/1.1"}
		p.tls = cfg
	}
	return p
}

func (p *upstreamPool) get(ctx context.Context, deadline time.Time) (*upConn, bool, error) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		c := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return c, true, nil
	}
	p.mu.Unlock()
	// Dialing is rare (the pool keeps connections), so a derived context
	// is fine here.
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	conn, err := p.dialer.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return nil, false, err
	}
	conn = rawio.Wrap(conn)
	if p.tls != nil {
		tc := tls.Client(conn, p.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, false, err
		}
		conn = tc
	}
	uc := &upConn{c: conn, src: upReader{c: conn}, req: make([]byte, 0, 512)}
	uc.interrupt = func() { _ = conn.SetDeadline(time.Unix(1, 0)) }
	uc.src.wr, _ = conn.(writeReader)
	uc.lr.r = &uc.src
	uc.br = bufio.NewReaderSize(&uc.lr, 16<<10)
	return uc, false, nil
}

func (p *upstreamPool) put(c *upConn) {
	p.mu.Lock()
	if len(p.idle) < p.maxIdle {
		p.idle = append(p.idle, c)
		c = nil
	}
	p.mu.Unlock()
	if c != nil {
		c.c.Close()
	}
}

// closeIdle closes the pooled connections.
func (p *upstreamPool) closeIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, c := range idle {
		c.c.Close()
	}
}

// errTooLarge reports an upstream body over the limit, errHeaderTooLarge a
// response header over the pool's limit.
var (
	errTooLarge       = errors.New("upstream response too large")
	errHeaderTooLarge = errors.New("upstream response header too large")
)

// roundTrip sends one request and reads at most limit body bytes into buf.
// A failure on a reused connection before any answer arrived (the upstream
// closed an idle keep-alive connection) is retried once on a new one; the
// gateway's upstream calls are all reads, so a retry is safe.
//
// deadline bounds the whole call: it is the call's start plus a timeout
// that is the same for every call (hotWindow); ctx cancels it (the agency
// went away), and its deadline, when earlier, bounds it too.
func (p *upstreamPool) roundTrip(ctx context.Context, deadline time.Time, method, path string, body []byte, reqID, agency string, limit int64, buf *bytes.Buffer) (int, error) {
	callDeadline := deadline
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	for attempt := 0; ; attempt++ {
		c, reused, err := p.get(ctx, deadline)
		if err != nil {
			return 0, err
		}
		hot := !reused || callDeadline.Sub(c.lastDeadline) < hotWindow
		c.lastDeadline = callDeadline
		status, answered, err := p.exchange(ctx, deadline, c, hot, method, path, body, reqID, agency, limit, buf)
		if err == nil {
			return status, nil
		}
		c.c.Close()
		if !reused || answered || attempt > 0 || ctx.Err() != nil {
			return 0, err
		}
		buf.Reset()
	}
}

// maxPooledRequest bounds the request buffer a connection keeps: a rare
// large batch body must not stay pinned to it.
const maxPooledRequest = 16 << 10

// hot says that nothing can be waiting in c's socket (see hotWindow).
func (p *upstreamPool) exchange(ctx context.Context, deadline time.Time, c *upConn, hot bool, method, path string, body []byte, reqID, agency string, limit int64, buf *bytes.Buffer) (status int, answered bool, err error) {
	_ = c.c.SetDeadline(deadline)
	// A cancelled request (the agency went away) interrupts the exchange.
	stop := afterFunc(ctx, c.interrupt)
	defer stop()

	w := append(c.req[:0], method...)
	w = append(w, ' ')
	w = append(w, p.prefix...)
	w = append(w, path...)
	w = append(w, p.head...)
	w = append(w, reqID...)
	w = append(w, "\r\nX-Popconnect-Agency: "...)
	w = append(w, agency...)
	if body != nil {
		w = append(w, "\r\nContent-Type: application/json\r\nContent-Length: "...)
		w = strconv.AppendInt(w, int64(len(body)), 10)
	}
	w = append(w, "\r\n\r\n"...)
	w = append(w, body...)
	if cap(w) <= maxPooledRequest {
		c.req = w
	}
	if c.src.wr != nil && hot {
		// Sent by the first read below, which then waits for the answer
		// without first finding nothing (see writeReader).
		c.src.send = w
	} else if _, err := c.c.Write(w); err != nil {
		return 0, false, err
	}
	// The limit counts what the buffered reader pulls from the connection,
	// so it bounds the header to maxHeader plus at most one buffer of body
	// read along with it. Nothing is buffered from a previous answer: each
	// is read to its end before the connection goes back to the pool.
	c.lr.n = p.maxHeader
	if _, err := c.br.Peek(1); err != nil {
		return 0, false, err
	}
	status, reusable, err := readResponse(c.br, &c.lr, limit, buf)
	if err != nil {
		if c.lr.n <= 0 {
			err = errHeaderTooLarge
		}
		return 0, true, err
	}
	// The whole answer is read, so the connection can be reused unless
	// either side asked to close it or the body ran to the end of it.
	if !reusable {
		c.c.Close()
	} else if !stop() { // the AfterFunc fired: the deadline is poisoned
		c.c.Close()
	} else {
		// The deadline stays: an idle connection reads nothing, and the
		// next exchange sets its own (one timer update per call, not two).
		p.put(c)
	}
	return status, true, nil
}

// afterFunc is context.AfterFunc, calling the context's own AfterFunc
// method directly when it has one (the agency listener's request contexts
// do, see h1server): context.AfterFunc would call it too, but only after
// allocating bookkeeping of its own on every upstream call.
func afterFunc(ctx context.Context, f func()) (stop func() bool) {
	if a, ok := ctx.(interface{ AfterFunc(func()) func() bool }); ok {
		return a.AfterFunc(f)
	}
	return context.AfterFunc(ctx, f)
}

func (p *upstreamPool) String() string { return fmt.Sprintf("upstream %s", p.addr) }
