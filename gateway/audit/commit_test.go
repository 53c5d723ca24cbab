package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

var errFull = errors.New("no space left on device")

// sink is an audit output that fails, cuts or holds writes on demand.
type sink struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
	fail   bool
	// accept, when >= 0, lets the next write through for that many bytes
	// only, then fails it (a disk filling up mid-write).
	accept int
	// hold, when set, makes the next write wait until it is closed;
	// held is closed once that write started.
	hold, held chan struct{}
}

func newSink() *sink { return &sink{accept: -1} }

func (s *sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	hold, held := s.hold, s.held
	s.hold = nil
	s.mu.Unlock()
	if hold != nil {
		close(held)
		<-hold
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	switch {
	case s.fail:
		return 0, errFull
	case s.accept >= 0:
		n := min(s.accept, len(p))
		s.accept = -1
		s.b.Write(p[:n])
		return n, errFull
	}
	return s.b.Write(p)
}

func (s *sink) set(f func(s *sink)) { s.mu.Lock(); f(s); s.mu.Unlock() }

func (s *sink) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// holdNext makes the next write wait; it returns the channel that releases
// it and the one closed once the write is waiting.
func (s *sink) holdNext() (release, held chan struct{}) {
	release, held = make(chan struct{}), make(chan struct{})
	s.set(func(s *sink) { s.hold, s.held = release, held })
	return release, held
}

// waitPending polls (bounded) until n bytes of records wait for the next write.
func waitPending(t *testing.T, l *Logger, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		l.mu.Lock()
		got := len(l.pend.buf)
		l.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes pending, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func recordLen(r *Record) int { return len(appendRecord(nil, r)) }

// sealedLen is the length of r's line in a stream named testStream, for
// seqs of one digit.
func sealedLen(r *Record) int {
	return len(appendSeal(appendRecord(nil, r), testStream, 1)) + chainSuffixLen + 1
}

const testStream = "0123456789abcdef0123456789abcdef"

// checkChain checks every whole line of out against the chain under
// testKey (fragments, lines without a chain, are skipped) and returns how
// many records it checked.
func checkChain(t *testing.T, out string) int {
	t.Helper()
	c := NewChainer(testKey())
	var prev []byte
	var n uint64
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		body, chain, ok := SplitChain([]byte(line))
		if !ok {
			continue
		}
		var head struct {
			Stream string `json:"stream"`
			Seq    uint64 `json:"seq"`
		}
		if err := json.Unmarshal(body, &head); err != nil {
			t.Fatalf("record %q: %v", line, err)
		}
		n++
		if head.Seq != n {
			t.Fatalf("record %d has seq %d: %q", n, head.Seq, line)
		}
		if want := c.Next(nil, prev, body); string(want) != string(chain) {
			t.Fatalf("seq %d: chain %s, want %s", n, chain, want)
		}
		prev = chain
	}
	return int(n)
}

// TestCommitFailsAndRecovers: a commit to a failing sink returns
// ErrUnavailable, marks the logger unhealthy and counts; with no commit
// coming, the retry writes the queued records once the sink works, and the
// logger is healthy again.
func TestCommitFailsAndRecovers(t *testing.T) {
	s := newSink()
	l, err := NewLogger(s, testKey(), WithRetryInterval(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	mustCommit(t, l, &Record{RequestID: "before", Status: 200})
	s.set(func(s *sink) { s.fail = true })
	rec := &Record{RequestID: "during", Status: 200}
	if err := l.Commit(rec); !errors.Is(err, ErrUnavailable) || !errors.Is(err, errFull) {
		t.Fatalf("commit to a failing sink: %v", err)
	}
	if l.Healthy() || l.WriteErrors() == 0 {
		t.Fatalf("healthy %v, %d write errors after a failed write", l.Healthy(), l.WriteErrors())
	}
	rec.Status, rec.Reason = 503, "audit_unavailable"
	l.Queue(rec)
	s.set(func(s *sink) { s.fail = false })
	deadline := time.Now().Add(10 * time.Second)
	for !l.Healthy() || !strings.Contains(s.String(), `"during"`) {
		if time.Now().After(deadline) {
			t.Fatalf("not recovered without traffic: healthy %v, output %q", l.Healthy(), s.String())
		}
		time.Sleep(time.Millisecond)
	}
	mustCommit(t, l, &Record{RequestID: "after", Status: 200})
	lines := strings.Split(strings.TrimSpace(s.String()), "\n")
	if len(lines) != 3 || !strings.Contains(lines[1], `"reason":"audit_unavailable"`) {
		t.Fatalf("records: %q", lines)
	}
}

// TestGroupCommit: commits that arrive while a write is under way share
// the next write, and none returns before its record was written.
func TestGroupCommit(t *testing.T) {
	s := newSink()
	l, _ := NewLogger(s, testKey())
	defer l.Close()
	release, held := s.holdNext()
	first := make(chan error, 1)
	go func() { first <- l.Commit(&Record{RequestID: "first"}) }()
	<-held
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	one := &Record{RequestID: "queued"}
	for range n {
		wg.Go(func() { errs <- l.Commit(one) })
	}
	waitPending(t, l, n*recordLen(one))
	select {
	case err := <-errs:
		t.Fatalf("a commit returned before its write: %v", err)
	default:
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	writes := s.writes
	s.mu.Unlock()
	if writes != 2 || strings.Count(s.String(), "\n") != n+1 {
		t.Fatalf("%d writes for %d records, want 2", writes, strings.Count(s.String(), "\n"))
	}
}

// TestShortWrite: when a write stops inside a batch, every commit of the
// batch is refused, the records written whole stay in the chain, the cut
// one stays a fragment on its own line, and the next record takes the cut
// one's seq, so the chain goes on unbroken.
func TestShortWrite(t *testing.T) {
	s := newSink()
	l, _ := NewLogger(s, testKey(), WithStream(testStream))
	defer l.Close()
	release, held := s.holdNext()
	go func() { _ = l.Commit(&Record{RequestID: "a"}) }()
	<-held
	b, c := &Record{RequestID: "b"}, &Record{RequestID: "c"}
	errB, errC := make(chan error, 1), make(chan error, 1)
	go func() { errB <- l.Commit(b) }()
	waitPending(t, l, recordLen(b))
	go func() { errC <- l.Commit(c) }()
	waitPending(t, l, recordLen(b)+recordLen(c))
	release2, held2 := s.holdNext() // b and c's write
	close(release)
	<-held2
	s.set(func(s *sink) { s.accept = sealedLen(b) + 5 })
	close(release2)
	for name, ch := range map[string]chan error{"b": errB, "c": errC} {
		if err := <-ch; !errors.Is(err, ErrUnavailable) {
			t.Fatalf("commit %s of a cut write: %v", name, err)
		}
	}
	mustCommit(t, l, &Record{RequestID: "d"})
	lines := strings.Split(strings.TrimSpace(s.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("lines %q", lines)
	}
	for i, want := range []string{"a", "b", "", "d"} {
		var rec map[string]any
		err := json.Unmarshal([]byte(lines[i]), &rec)
		if want == "" {
			if err == nil {
				t.Fatalf("line %d, the cut record, parses: %q", i, lines[i])
			}
			continue
		}
		if err != nil || rec["requestId"] != want {
			t.Fatalf("line %d %q: %v", i, lines[i], err)
		}
	}
	if got := checkChain(t, s.String()); got != 3 || l.LastSeq() != 3 {
		t.Fatalf("chain of %d records, last seq %d; want a, b, d as 1, 2, 3", got, l.LastSeq())
	}
}

// TestSyncFailureRefuses: with WithSync, a failed sync fails the batch.
func TestSyncFailureRefuses(t *testing.T) {
	s := newSink()
	var syncErr error // read by the committing goroutine, the test's own
	l, _ := NewLogger(s, testKey(), WithSync(func() error { return syncErr }))
	defer l.Close()
	mustCommit(t, l, &Record{RequestID: "a"})
	syncErr = errFull
	if err := l.Commit(&Record{RequestID: "b"}); !errors.Is(err, ErrUnavailable) || l.Healthy() {
		t.Fatalf("commit with a failing sync: %v, healthy %v", err, l.Healthy())
	}
	syncErr = nil
	mustCommit(t, l, &Record{RequestID: "c"})
	if !l.Healthy() {
		t.Fatal("unhealthy after a synced write")
	}
}

// TestStalledWrite: while a write blocks longer than the stall timeout,
// the logger is unhealthy and new commits are refused at once rather than
// queued behind it; when the write returns, all is well again.
func TestStalledWrite(t *testing.T) {
	s := newSink()
	l, _ := NewLogger(s, testKey(), WithStallTimeout(time.Millisecond))
	defer l.Close()
	release, held := s.holdNext()
	first := make(chan error, 1)
	go func() { first <- l.Commit(&Record{RequestID: "first"}) }()
	<-held
	deadline := time.Now().Add(10 * time.Second)
	for l.Healthy() {
		if time.Now().After(deadline) {
			t.Fatal("healthy while a write is stalled")
		}
		time.Sleep(time.Millisecond)
	}
	if err := l.Commit(&Record{RequestID: "second"}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("commit during a stalled write: %v", err)
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if !l.Healthy() {
		t.Fatal("unhealthy after the write returned")
	}
	mustCommit(t, l, &Record{RequestID: "third"})
}
