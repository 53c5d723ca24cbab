package verify

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/popconnect/popconnect/gateway/audit"
)

// testLog writes audit records with the gateway's own Logger: one stream
// per process start, seq from 1, each line chained to the one before.
type testLog struct {
	t   testing.TB
	key []byte
	buf bytes.Buffer
	l   *audit.Logger
}

func newTestLog(t testing.TB, key []byte) *testLog {
	l := &testLog{t: t, key: key}
	l.Restart()
	return l
}

// Restart starts a new stream, as a gateway restarted on the same file.
func (l *testLog) Restart() {
	if l.l != nil {
		if err := l.l.Close(); err != nil {
			l.t.Fatal(err)
		}
	}
	lg, err := audit.NewLogger(&l.buf, l.key)
	if err != nil {
		l.t.Fatal(err)
	}
	l.l = lg
	l.t.Cleanup(func() { _ = lg.Close() })
}

// Seq is the seq of the last record written: what the gateway's metric
// popconnect_gateway_audit_last_seq shows.
func (l *testLog) Seq() uint64 { return l.l.LastSeq() }

// Stream is the current stream's name.
func (l *testLog) Stream() string { return l.l.Stream() }

// Commit writes rec.
func (l *testLog) Commit(rec *audit.Record) {
	if err := l.l.Commit(rec); err != nil {
		l.t.Fatal(err)
	}
}

func (l *testLog) Bytes() []byte { return bytes.Clone(l.buf.Bytes()) }

var t0 = time.Date(2026, 11, 24, 22, 46, 25, 0, time.UTC)

// rec returns the i-th test record: a Lookup, or a BatchLookup of n IDs.
func rec(i int) *audit.Record {
	return &audit.Record{
		Time:             t0.Add(time.Duration(i) * time.Millisecond),
		RequestID:        fmt.Sprintf("5211bc7372d1-%d", i),
		Agency:           "BYT",
		Operation:        "Lookup",
		NationalIDHashes: []string{fmt.Sprintf("%064x", i)},
		FieldsReturned:   []string{"dateOfBirth", "fullName", "gender"},
		Status:           200,
		Latency:          time.Millisecond,
	}
}

func batchRec(i, n int) *audit.Record {
	r := rec(i)
	r.Operation, r.Batch, r.NationalIDHashes = "BatchLookup", true, nil
	for j := range n {
		r.NationalIDHashes = append(r.NationalIDHashes, fmt.Sprintf("%064x", i*n+j))
	}
	return r
}
