package h1server

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
)

// Connection states, for Shutdown.
const (
	stateNew     int32 = iota // handshaking, or waiting for its first request
	stateActive               // reading a request, in the handler, or writing
	stateIdle                 // waiting for the next request: Shutdown may close it
	stateH2                   // served by the HTTP/2 server, which handles GOAWAY
	stateClosing              // closed by Shutdown or Close
)

// rstAvoidanceDelay is how long a connection closed while the client may
// still be sending waits after its last response, write side shut, before
// it closes: closing with unread data makes TCP send a reset, which can
// destroy the response before the client reads it (net/http does the
// same, for the same reason).
const rstAvoidanceDelay = 500 * time.Millisecond

// conn is one client connection, served by one goroutine.
type conn struct {
	s      *Server
	raw    net.Conn
	rwc    net.Conn // raw, or the *tls.Conn over it; set before serve starts
	tls    *tls.ConnectionState
	remote string
	ctx    context.Context // cancelled when the connection ends, or by Close
	cancel context.CancelFunc
	cur    atomic.Pointer[requestContext] // the request in the handler
	state  atomic.Int32
	since  int64     // Unix time of accept
	ends   time.Time // accept + MaxConnectionAge; zero: no limit
	// h2Base is the connection's own HTTP/2 base server when it has an
	// age limit: its Shutdown sends this connection alone a GOAWAY.
	h2Base atomic.Pointer[http.Server]
	// h2n is the connection's native HTTP/2 server, for Shutdown's GOAWAY.
	h2n atomic.Pointer[h2n]

	rd   reader
	scan headScan
	h    head
	req  *http.Request
	url  url.URL
	hdr  http.Header
	vals []string
	body body
	resp response

	// The read and write deadlines as last set, and the current request's
	// timing: when the server began waiting for it, when its first byte
	// was seen (zero until then).
	rdl, wdl  time.Time
	waitStart time.Time
	tFirst    time.Time
	first     bool // the connection's first request

	expectContinue bool
	date           []byte
	dateSec        int64
}

func (s *Server) newConn(raw net.Conn) *conn {
	now := time.Now()
	c := &conn{
		s:      s,
		raw:    raw,
		rwc:    raw,
		remote: raw.RemoteAddr().String(),
		since:  now.Unix(),
		ends:   deadline(now, s.cfg.MaxConnectionAge),
		req:    new(http.Request),
		hdr:    make(http.Header, 8),
		vals:   make([]string, 16),
		first:  true,
	}
	if s.tlsConfig != nil {
		c.rwc = tls.Server(raw, s.tlsConfig)
	}
	ctx := s.baseCtx
	if s.cfg.ConnContext != nil {
		if ctx = s.cfg.ConnContext(ctx, raw); ctx == nil {
			panic("h1server: ConnContext returned nil")
		}
	}
	c.ctx, c.cancel = context.WithCancel(ctx)
	context.AfterFunc(c.ctx, c.ctxDone)
	c.rd.src = c.rwc
	c.body.c = c
	c.resp.header = make(http.Header, 8)
	c.resp.maxBody = s.cfg.MaxResponseBytes
	return c
}

func (c *conn) serve() {
	defer c.s.remove(c)
	defer c.cancel()
	if tc, ok := c.rwc.(*tls.Conn); ok {
		if !c.handshake(tc) {
			c.rwc.Close()
			return
		}
		if c.tls.NegotiatedProtocol == http2.NextProtoTLS {
			if c.s.cfg.HTTP2Server == HTTP2Native {
				c.serveNativeH2()
			} else {
				c.serveH2()
			}
			return
		}
	}
	c.waitStart = time.Now()
	linger := c.serveHTTP1()
	if linger {
		if cw, ok := c.rwc.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		t := time.NewTimer(rstAvoidanceDelay)
		select {
		case <-t.C:
		case <-c.ctx.Done():
			t.Stop()
		}
	}
	c.rwc.Close()
}

// ctxDone cancels the request in the handler, if any, when the
// connection's context ends (the connection closed, or Close).
func (c *conn) ctxDone() {
	if rc := c.cur.Load(); rc != nil {
		rc.cancel(c.ctx.Err())
	}
}

// handshake runs the TLS handshake under the smallest server timeout and
// takes the connection state once, for every request on the connection.
func (c *conn) handshake(tc *tls.Conn) bool {
	if d := c.s.handshakeTimeout; d > 0 {
		_ = c.raw.SetDeadline(time.Now().Add(d))
	}
	if err := tc.HandshakeContext(c.ctx); err != nil {
		c.s.log.Debug("TLS handshake failed", "remote", c.remote, "error", err)
		return false
	}
	st := tc.ConnectionState()
	c.tls = &st
	if c.s.handshakeTimeout > 0 {
		_ = c.raw.SetDeadline(time.Time{}) // the request loop sets its own
	}
	return true
}

// serveH2 hands a connection that negotiated h2 to the HTTP/2 server.
//
// With MaxConnectionAge, the connection gets an HTTP/2 server of its own:
// x/net/http2 sends GOAWAY only to all the connections of a server at
// once (on its base http.Server's Shutdown), so one server per connection
// is what lets the age close this connection alone, gracefully (requests
// in flight finish). The age timer starts at the server's first
// ConnState call, which x/net makes once the connection is registered for
// GOAWAY, so that an early timer cannot miss it.
func (c *conn) serveH2() {
	if !c.state.CompareAndSwap(stateNew, stateH2) || c.s.shuttingDown() {
		c.rwc.Close() // too late for GOAWAY: the client retries elsewhere
		return
	}
	h2, base := c.s.h2, c.s.h2Base
	var ageTimer *time.Timer // set and read on this goroutine only
	if !c.ends.IsZero() {
		var err error
		if base, h2, err = c.s.newHTTP2(); err != nil {
			c.s.log.Error("HTTP/2 connection not served", "error", err)
			c.rwc.Close()
			return
		}
		base.ConnState = func(net.Conn, http.ConnState) {
			if ageTimer == nil {
				ageTimer = time.AfterFunc(time.Until(c.ends), func() { _ = base.Shutdown(context.Background()) })
			}
		}
		c.h2Base.Store(base)
		if c.s.shuttingDown() { // Shutdown may have looked before the Store
			c.rwc.Close()
			return
		}
	}
	var refused func(string)
	if refusal := c.s.cfg.ProtocolRefusal; refusal != nil {
		state := c.tls
		refused = func(reason string) { refusal(state, reason) }
	}
	rwc := newH2Conn(c.rwc.(*tls.Conn), refused, c.s.cfg.WriteTimeout) // serveH2 runs only after a TLS handshake
	h2.ServeConn(rwc, &http2.ServeConnOpts{Context: c.ctx, BaseConfig: base, Handler: c.s.h2Handler})
	if ageTimer != nil {
		ageTimer.Stop()
	}
	c.rwc.Close()
}

// aged reports whether the connection has reached MaxConnectionAge.
func (c *conn) aged(now time.Time) bool { return !c.ends.IsZero() && !now.Before(c.ends) }

// capAge brings a deadline for the wait for a request forward to the
// connection's end of life: an idle connection closes when its age passes.
func (c *conn) capAge(t time.Time) time.Time {
	if !c.ends.IsZero() && (t.IsZero() || c.ends.Before(t)) {
		return c.ends
	}
	return t
}

// serveHTTP1 serves requests in order until the connection must close. It
// reports whether the client may still be sending (the close should then
// linger).
func (c *conn) serveHTTP1() (linger bool) {
	for {
		if !c.first && c.rd.buffered() == 0 {
			c.state.Store(stateIdle)
			if c.s.shuttingDown() { // Shutdown may have looked before the store
				return false
			}
		}
		ref, err := c.readHead()
		if err != nil {
			return false // EOF, timeout, or closed by Shutdown: nobody to answer
		}
		if ref.refused() {
			c.s.log.Debug("Request refused", "remote", c.remote, "status", ref.status, "reason", ref.reason)
			c.writeRefusal(ref.status)
			return true
		}
		keep, linger := c.serveRequest()
		if !keep {
			return linger
		}
		c.first = false
		c.rd.shrink(initialReadBuffer)
	}
}

// activate marks the connection busy once a request's first byte arrived;
// false when Shutdown closed it meanwhile.
func (c *conn) activate() bool {
	return c.state.CompareAndSwap(stateIdle, stateActive) || c.state.CompareAndSwap(stateNew, stateActive) ||
		c.state.Load() == stateActive
}

// readHead reads and parses a request head. A nil error with a refusal is
// a request to refuse; an error is a connection to drop silently.
func (c *conn) readHead() (refusal, error) {
	s := c.s
	c.scan = headScan{}
	c.tFirst = time.Time{}
	wait := s.headerTimeout
	if !c.first && s.idleTimeout > 0 && (wait == 0 || s.idleTimeout < wait) {
		wait = s.idleTimeout
	}
	// One deadline, usually left as it is, covers the wait for the
	// request and its head; see keepDeadline and extendHeadDeadline.
	if want := c.capAge(deadline(c.waitStart, wait)); !keepDeadline(c.rdl, want, s.readSlack) {
		c.setReadDeadline(want)
	}
	for {
		if c.rd.buffered() > 0 {
			if c.tFirst.IsZero() {
				if !c.activate() {
					return refusal{}, net.ErrClosed
				}
				c.tFirst = time.Now()
				// After a long idle wait the deadline in force is the
				// idle one: the head gets its own from its first byte.
				if d := deadline(c.tFirst, s.headerTimeout); !d.IsZero() && (c.rdl.IsZero() || d.Before(c.rdl)) {
					c.setReadDeadline(d)
				}
			}
			end, ref := c.scan.scan(c.rd.unread(), s.cfg.MaxHeaderBytes, s.cfg.MaxHeaderLines)
			if ref.refused() {
				return ref, nil
			}
			if end > 0 {
				return c.parse(end), nil
			}
		}
		err := c.rd.fill(s.cfg.MaxHeaderBytes)
		switch {
		case err == nil:
		case errors.Is(err, errBufferFull):
			return refuse(http.StatusRequestHeaderFieldsTooLarge, "header too large"), nil
		case isTimeout(err) && c.extendHeadDeadline():
		default:
			return refusal{}, err
		}
	}
}

// parse parses the complete head of end bytes at the front of the buffer.
func (c *conn) parse(end int) refusal {
	// One allocation per request: every string of the request (method,
	// path, header values) is a substring of this one.
	block := string(c.rd.unread()[:end])
	c.rd.consume(end)
	if n := c.scan.lines; n > len(c.vals) {
		c.vals = make([]string, n)
	}
	clear(c.hdr)
	return parseHead(block, c.hdr, c.vals, c.s.cfg.MaxBodyBytes, &c.h)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
