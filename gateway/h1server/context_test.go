package h1server

import (
	"context"
	"errors"
	"testing"
	"time"
)

type ctxKey struct{}

// TestRequestContext checks requestContext against context.Context's
// contract, as the context package and the gateway use it.
func TestRequestContext(t *testing.T) {
	parent := context.WithValue(context.Background(), ctxKey{}, "v")
	rc := &requestContext{parent: parent}
	if rc.Value(ctxKey{}) != "v" || rc.Err() != nil {
		t.Fatal("values or state not the parent's")
	}
	ran := make(chan string, 4)
	stopped := rc.AfterFunc(func() { ran <- "stopped" })
	rc.AfterFunc(func() { ran <- "first" })
	rc.AfterFunc(func() { ran <- "second" })
	if !stopped() || stopped() {
		t.Fatal("stop did not report stopping exactly once")
	}
	child, cancelChild := context.WithCancel(rc)
	defer cancelChild()
	done := rc.Done()

	rc.cancel(context.Canceled)
	rc.cancel(context.DeadlineExceeded) // only the first counts
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed")
	}
	got := map[string]bool{<-ran: true, <-ran: true}
	if !got["first"] || !got["second"] {
		t.Fatalf("AfterFuncs run: %v", got)
	}
	if !errors.Is(rc.Err(), context.Canceled) || !errors.Is(context.Cause(rc), context.Canceled) {
		t.Fatalf("Err %v, Cause %v", rc.Err(), context.Cause(rc))
	}
	select {
	case <-child.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("a derived context was not cancelled")
	}
	// After the end: Done is closed at once, an AfterFunc runs at once.
	if _, open := <-(&requestContext{parent: parent, err: context.Canceled}).Done(); open {
		t.Fatal("Done open after the end")
	}
	if rc.AfterFunc(func() { ran <- "late" })() {
		t.Fatal("stopped an AfterFunc of a cancelled context")
	}
	if <-ran != "late" {
		t.Fatal("late AfterFunc not run")
	}
}
