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
	"time"
)

// serveRequest runs the handler on the parsed request and writes its
// response. It reports whether the connection can serve another request
// and, when not, whether the client may still be sending.
func (c *conn) serveRequest() (keep, linger bool) {
	h := &c.h
	c.url = url.URL{Path: h.path, RawPath: h.rawPath, RawQuery: h.rawQuery, ForceQuery: h.forceQuery}
	c.body.reset(h.contentLength)
	var body io.ReadCloser = http.NoBody
	if h.contentLength > 0 {
		body = &c.body
	}
	c.expectContinue = h.expectContinue
	proto := "HTTP/1.1"
	if h.minor == 0 {
		proto = "HTTP/1.0"
	}
	ctx := &requestContext{parent: c.ctx}
	c.cur.Store(ctx)
	if err := c.ctx.Err(); err != nil { // ctxDone ran before the Store
		ctx.cancel(err)
	}
	r := http.Request{
		Method: h.method, URL: &c.url, Proto: proto, ProtoMajor: 1, ProtoMinor: h.minor,
		Header: c.hdr, Body: body, ContentLength: h.contentLength, Close: h.close,
		Host: h.host, RemoteAddr: c.remote, RequestURI: h.target, TLS: c.tls,
	}
	// WithContext is inlined and its copy stays on the stack: the
	// connection's one Request is reused without an allocation.
	*c.req = *r.WithContext(ctx)
	c.resp.reset(h.method == http.MethodHead)
	ok := c.callHandler()
	ctx.cancel(context.Canceled)
	c.cur.Store(nil)
	if !ok {
		return false, false // panicked: no answer, as net/http
	}
	// Like net/http, finish the body before answering, so the answer can
	// say whether the connection stays open.
	bodyDone := c.body.finish()
	now := time.Now()
	keep = bodyDone && !h.close && !c.resp.closeConn && !c.s.shuttingDown() && !c.aged(now)
	if c.resp.tooLarge {
		c.s.log.Error("Response dropped: the handler wrote more than MaxResponseBytes", "limit", c.s.cfg.MaxResponseBytes)
		c.writeRefusal(http.StatusInternalServerError)
		return false, !bodyDone
	}
	if !c.writeResponse(now, !keep) {
		return false, false
	}
	return keep, !bodyDone
}

// callHandler runs the handler; a panic is recovered, logged (logPanic)
// and reported as false.
func (c *conn) callHandler() (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			ok = false
			c.s.logPanic(v, "connection closed")
		}
	}()
	c.s.cfg.Handler.ServeHTTP(&c.resp, c.req)
	return true
}

// writeResponse sends the buffered response in one write; false when it
// could not be sent.
func (c *conn) writeResponse(now time.Time, closing bool) bool {
	out, err := c.resp.finish(c.dateValue(now), closing)
	if err != nil {
		c.s.log.Error("Response dropped", "error", err)
		return false
	}
	if !c.write(now, out) {
		return false
	}
	c.waitStart = now
	return true
}

// writeRefusal answers a refused request (the connection then closes).
func (c *conn) writeRefusal(status int) {
	c.resp.reset(false)
	c.s.refuse(&c.resp, c.tls, status)
	now := time.Now()
	if out, err := c.resp.finish(c.dateValue(now), true); err == nil {
		c.write(now, out)
	}
}

// write sends b under the request's write deadline.
func (c *conn) write(now time.Time, b []byte) bool {
	start := c.tFirst
	if start.IsZero() {
		start = now
	}
	if want := deadline(start, c.s.cfg.WriteTimeout); !keepDeadline(c.wdl, want, c.s.writeSlack) {
		c.setWriteDeadline(want)
	}
	_, err := c.rwc.Write(b)
	return err == nil
}

// bodyStarting runs before a handler's first read of the request body:
// it answers Expect: 100-continue and, when the body is not all buffered
// yet, moves the read deadline to the end of the request's ReadTimeout.
func (c *conn) bodyStarting(needsRead bool) error {
	if c.expectContinue {
		c.expectContinue = false
		if !c.write(time.Now(), []byte("HTTP/1.1 100 Continue\r\n\r\n")) {
			return errors.New("h1server: writing 100 Continue failed")
		}
	}
	if needsRead {
		c.setReadDeadline(deadline(c.tFirst, c.s.cfg.ReadTimeout))
	}
	return nil
}

// dateValue is the Date header value for now, formatted once a second.
func (c *conn) dateValue(now time.Time) []byte {
	if sec := now.Unix(); sec != c.dateSec || c.date == nil {
		c.date = now.UTC().AppendFormat(c.date[:0], http.TimeFormat)
		c.dateSec = sec
	}
	return c.date
}

// logPanic logs a handler's recovered panic v without request data: only a
// runtime error's text, else the value's type, and the stack (called from
// the deferred recover, so the stack still shows where it panicked).
// http.ErrAbortHandler, the documented way to abort quietly, is not logged.
func (s *Server) logPanic(v any, outcome string) {
	if v == http.ErrAbortHandler {
		return
	}
	what := fmt.Sprintf("%T", v)
	if re, isRuntime := v.(runtime.Error); isRuntime {
		what = re.Error()
	}
	s.log.Error("Handler panicked; "+outcome, "panic", what, "stack", string(debug.Stack()))
}
