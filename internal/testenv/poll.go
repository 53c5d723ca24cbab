package testenv

import (
	"testing"
	"time"
)

// pollInterval is short because conditions are cheap API reads against a
// local API server, and long enough not to starve a 2-core machine.
const pollInterval = 100 * time.Millisecond

// Poll calls cond until it returns true, failing the test (t.Fatalf) when
// cond returns an error or timeout passes first. A condition that may
// legitimately fail for a while (e.g. NotFound before a controller creates an
// object) should return (false, nil) for that case. Call Poll only from the
// test's own goroutine, like t.Fatalf.
func Poll(t testing.TB, timeout time.Duration, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		done, err := cond()
		if err != nil {
			t.Fatalf("poll: %v", err)
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("poll: condition not met within %v", timeout)
		}
		time.Sleep(pollInterval)
	}
}
