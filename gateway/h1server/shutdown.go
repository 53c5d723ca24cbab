package h1server

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"
)

// Shutdown stops accepting, closes idle connections, asks HTTP/2 clients
// to go away, and waits for requests in flight to be answered (each
// connection closes after its answer). When ctx ends first, it closes
// every connection, cancels the requests' contexts and returns ctx's
// error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.inShutdown.Store(true)
	err := s.closeListeners()
	if s.h2Base != nil {
		// h2Base tracks no connection itself: this returns at once,
		// after starting the GOAWAY of every HTTP/2 connection.
		_ = s.h2Base.Shutdown(ctx)
	}
	s.goAwayHTTP2(ctx)
	// The ticker only matters for new connections, which become
	// closable after a while (see closeIdle); ends are signalled.
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		if s.closeIdle() == 0 {
			return err
		}
		select {
		case <-ctx.Done():
			s.Close()
			return ctx.Err()
		case <-s.connGone:
		case <-tick.C:
		}
	}
}

// Close stops accepting and closes every connection at once, cancelling
// the contexts of the requests in flight.
func (s *Server) Close() error {
	s.inShutdown.Store(true)
	err := s.closeListeners()
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.state.Store(stateClosing)
		c.raw.Close() // the raw connection: never blocks on a TLS alert
	}
	// Cancel only once every connection is closed: a handler that returns
	// as soon as its context ends must not get its answer out first.
	s.cancelBase()
	return err
}

// goAwayHTTP2 starts the GOAWAY of the HTTP/2 connections that h2Base's
// Shutdown does not reach: those with an x/net server of their own
// (MaxConnectionAge) and those of the native server. Each returns at once.
func (s *Server) goAwayHTTP2(ctx context.Context) {
	var bases []*http.Server
	var natives []*h2n
	s.mu.Lock()
	for c := range s.conns {
		if b := c.h2Base.Load(); b != nil {
			bases = append(bases, b)
		}
		if h := c.h2n.Load(); h != nil {
			natives = append(natives, h)
		}
	}
	s.mu.Unlock()
	for _, b := range bases {
		_ = b.Shutdown(ctx)
	}
	for _, h := range natives {
		h.shutdown()
	}
}

func (s *Server) track(ln net.Listener) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inShutdown.Load() {
		return false
	}
	s.listeners[ln] = struct{}{}
	return true
}

func (s *Server) untrack(ln net.Listener) {
	s.mu.Lock()
	delete(s.listeners, ln)
	s.mu.Unlock()
	ln.Close()
}

func (s *Server) closeListeners() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for ln := range s.listeners {
		if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
		delete(s.listeners, ln)
	}
	return errors.Join(errs...)
}

func (s *Server) add(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inShutdown.Load() {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) remove(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	select {
	case s.connGone <- struct{}{}:
	default:
	}
}

// newConnGrace is how long a connection that has not sent its first
// request yet is left alone by Shutdown (net/http waits 5 s too): it may
// be about to send one.
const newConnGrace = 5 * time.Second

// closeIdle closes the connections waiting for a request and returns how
// many connections are left.
func (s *Server) closeIdle() int {
	var idle []*conn
	oldNew := time.Now().Add(-newConnGrace).Unix()
	s.mu.Lock()
	for c := range s.conns {
		if c.state.CompareAndSwap(stateIdle, stateClosing) ||
			c.since < oldNew && c.state.CompareAndSwap(stateNew, stateClosing) {
			idle = append(idle, c)
		}
	}
	n := len(s.conns)
	s.mu.Unlock()
	for _, c := range idle {
		c.rwc.Close()
	}
	return n
}
