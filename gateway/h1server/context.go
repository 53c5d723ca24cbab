package h1server

import (
	"context"
	"sync"
	"time"
)

// requestContext is an HTTP/1 request's context: the connection's context
// (its values, deadline and cancellation) that is also cancelled when the
// request's handler returns, which is what context.WithCancel(connection)
// gives. It exists for cost: context.WithCancel registers every request in
// the connection's context, and a context.AfterFunc on it (the gateway
// arms one per upstream call, to interrupt the call if the request is
// cancelled) allocates a channel and a child map per request; together
// they were 6 % of the gateway's CPU under load. Here a request costs one
// allocation plus two per AfterFunc, no channel unless Done is called, and
// the connection cancels its current request itself (see conn.ctxDone).
//
// The context package supports such implementations: context.AfterFunc,
// WithCancel and friends use the AfterFunc method, and context.Cause
// falls back to Err.
type requestContext struct {
	parent context.Context

	mu    sync.Mutex
	err   error
	done  chan struct{} // made by the first Done
	first *afterFunc    // registered, neither run nor stopped
	more  []*afterFunc
}

type afterFunc struct{ f func() }

func (c *requestContext) Deadline() (time.Time, bool) { return c.parent.Deadline() }
func (c *requestContext) Value(key any) any           { return c.parent.Value(key) }
func (c *requestContext) String() string              { return "h1server.requestContext" }

func (c *requestContext) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *requestContext) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
		if c.err != nil {
			close(c.done)
		}
	}
	return c.done
}

// AfterFunc calls f in its own goroutine once the context is cancelled,
// as context.AfterFunc does; stop reports whether it kept f from running.
func (c *requestContext) AfterFunc(f func()) (stop func() bool) {
	a := &afterFunc{f: f}
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	if c.first == nil {
		c.first = a
	} else {
		c.more = append(c.more, a)
	}
	c.mu.Unlock()
	return func() bool { return c.unregister(a) }
}

func (c *requestContext) unregister(a *afterFunc) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.first == a {
		c.first = nil
		return true
	}
	for i, x := range c.more {
		if x == a {
			c.more = append(c.more[:i], c.more[i+1:]...)
			return true
		}
	}
	return false
}

// cancel ends the context with err (once) and starts its AfterFuncs.
func (c *requestContext) cancel(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	if c.done != nil {
		close(c.done)
	}
	first, more := c.first, c.more
	c.first, c.more = nil, nil
	c.mu.Unlock()
	if first != nil {
		go first.f()
	}
	for _, a := range more {
		go a.f()
	}
}
