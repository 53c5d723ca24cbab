package h1server

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestShutdownDrains: Shutdown closes idle connections at once, lets the
// request in flight finish and answers it with Connection: close, then
// returns; nothing new is accepted.
func TestShutdownDrains(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	ts := start(t, Config{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			started <- struct{}{}
			<-release
		}
		echo(w, r)
	}))
	idle := ts.dial(t)
	idle.send(t, "GET /fast HTTP/1.1\r\nHost: gw\r\n\r\n")
	idle.response(t)
	busy := ts.dial(t)
	busy.send(t, "GET /slow HTTP/1.1\r\nHost: gw\r\n\r\n")
	<-started

	done := make(chan error, 1)
	go func() { done <- shutdownWithin(t, ts.Server, 10*time.Second) }()
	if !idle.closed(t) {
		t.Fatal("the idle connection was not closed")
	}
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned with a request in flight: %v", err)
	default:
	}
	if c, err := net.DialTimeout("tcp", ts.addr, time.Second); err == nil {
		c.Close()
		t.Fatal("a connection was accepted after Shutdown")
	}
	close(release)
	resp, body := busy.response(t)
	if resp.StatusCode != http.StatusOK || body != "GET /slow  " || !resp.Close {
		t.Fatalf("in-flight request: %d %q close=%v", resp.StatusCode, body, resp.Close)
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if !busy.closed(t) {
		t.Fatal("the drained connection stayed open")
	}
}

// TestShutdownForced: at the deadline, Shutdown closes what is left and
// cancels the requests' contexts.
func TestShutdownForced(t *testing.T) {
	cancelled := make(chan error, 1)
	started := make(chan struct{}, 1)
	ts := start(t, Config{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-r.Context().Done()
		cancelled <- r.Context().Err()
	}))
	c := ts.dial(t)
	c.send(t, "GET /stuck HTTP/1.1\r\nHost: gw\r\n\r\n")
	<-started
	if err := shutdownWithin(t, ts.Server, 200*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v", err)
	}
	select {
	case err := <-cancelled:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("request context: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the request context was not cancelled")
	}
	if !c.closed(t) {
		t.Fatal("connection left open")
	}
}

// TestShutdownNewConnection: a connection that has not sent its first
// request is left a grace period, and closed once Shutdown gives up.
func TestShutdownNewConnection(t *testing.T) {
	ts := start(t, Config{}, http.HandlerFunc(echo))
	c := ts.dial(t)
	// Tracked by the server, not only accepted: a Shutdown between the two
	// would find no connection to wait for.
	waitFor(t, "the connection to be tracked", func() bool { return ts.tracked() == 1 })
	if err := shutdownWithin(t, ts.Server, 300*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v (a new connection gets %v)", err, newConnGrace)
	}
	if !c.closed(t) {
		t.Fatal("connection left open")
	}
}
