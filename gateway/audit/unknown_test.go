package audit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// lossySink keeps lines like a database table and can lose the answer
// to a store it made (a connection dropped after the commit was sent), or
// fail before storing anything.
type lossySink struct {
	mu      sync.Mutex
	lines   []string
	seqs    []uint64
	chains  []string
	loseAck bool // the next store is made but reported as unknown
	down    bool // stores and Last fail, nothing is stored
}

func (s *lossySink) Name() string { return "postgres" }

func (s *lossySink) Store(_ context.Context, b *Batch) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return 0, errors.New("connection refused")
	}
	for i := range b.Records {
		s.lines = append(s.lines, string(b.Line(i)))
		s.seqs = append(s.seqs, b.Records[i].Seq)
		s.chains = append(s.chains, b.Chain(i))
	}
	if s.loseAck {
		s.loseAck = false
		return 0, fmt.Errorf("connection reset after commit: %w", ErrOutcomeUnknown)
	}
	return len(b.Records), nil
}

func (s *lossySink) Last(context.Context, string) (uint64, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return 0, "", errors.New("connection refused")
	}
	if len(s.seqs) == 0 {
		return 0, "", nil
	}
	return s.seqs[len(s.seqs)-1], s.chains[len(s.chains)-1], nil
}

func (s *lossySink) Close() error { return nil }

func (s *lossySink) set(f func(*lossySink)) { s.mu.Lock(); f(s); s.mu.Unlock() }

// TestOutcomeUnknown: when the sink stored a batch but its answer was
// lost, the request is refused; the next batch continues the stream after
// what the sink holds, so no seq is used twice and the chain is intact,
// and the owed record of the refusal is stored once.
func TestOutcomeUnknown(t *testing.T) {
	s := &lossySink{}
	l, err := New(s, testKey(), WithStream(testStream))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	mustCommit(t, l, &Record{RequestID: "a", Status: 200})
	s.set(func(s *lossySink) { s.loseAck = true })
	rec := &Record{RequestID: "b", Status: 200}
	if err := l.Commit(rec); !errors.Is(err, ErrUnavailable) || !errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("commit whose store was not confirmed: %v", err)
	}
	rec.Status, rec.Reason = 503, "audit_unavailable"
	l.Queue(rec)
	// The sink goes down before the next try: Last fails, nothing is lost.
	s.set(func(s *lossySink) { s.down = true })
	if err := l.Commit(&Record{RequestID: "c"}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("commit while the sink is down: %v", err)
	}
	s.set(func(s *lossySink) { s.down = false })
	mustCommit(t, l, &Record{RequestID: "d", Status: 200})
	if !l.Healthy() {
		t.Fatal("unhealthy after a store succeeded")
	}
	out := strings.Join(s.lines, "\n") + "\n"
	if n := checkChain(t, out); n != 4 || l.LastSeq() != 4 {
		t.Fatalf("%d records in the chain, last seq %d; want a, b (stored, answer lost), b's 503, d", n, l.LastSeq())
	}
	for i, want := range []string{`"requestId":"a"`, `"requestId":"b","agency":"","operation":"","nationalIdHash":null,"fieldsReturned":[],"status":200`,
		`"requestId":"b","agency":"","operation":"","nationalIdHash":null,"fieldsReturned":[],"status":503,"reason":"audit_unavailable"`, `"requestId":"d"`} {
		if !strings.Contains(s.lines[i], want) {
			t.Fatalf("record %d is %s, want %s", i+1, s.lines[i], want)
		}
	}
}
