package testenv

import (
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"
)

// fakeTB records Fatalf instead of failing the real test; like testing.T it
// ends the calling goroutine.
type fakeTB struct {
	testing.TB
	msg string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// runPoll runs Poll on its own goroutine, because a failing fakeTB exits it.
func runPoll(timeout time.Duration, cond func() (bool, error)) string {
	tb := &fakeTB{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Poll(tb, timeout, cond)
	}()
	<-done
	return tb.msg
}

func TestPoll(t *testing.T) {
	calls := 0
	if msg := runPoll(time.Minute, func() (bool, error) { calls++; return calls == 3, nil }); msg != "" {
		t.Errorf("Poll failed: %s", msg)
	}
	if calls != 3 {
		t.Errorf("cond called %d times, want 3", calls)
	}

	if msg := runPoll(50*time.Millisecond, func() (bool, error) { return false, nil }); msg == "" {
		t.Error("Poll did not fail on timeout")
	}

	calls = 0
	msg := runPoll(time.Minute, func() (bool, error) { calls++; return false, errors.New("boom") })
	if msg == "" || calls != 1 {
		t.Errorf("Poll on error: msg %q after %d calls, want a failure after 1", msg, calls)
	}
}
