package audit

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkCommit commits records from many goroutines at once to a file,
// as the gateway's requests do: it measures the group commit (records
// per write) and the hand-off between committers and the writer.
func BenchmarkCommit(b *testing.B) {
	f, err := os.OpenFile(filepath.Join(b.TempDir(), "audit.log"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	cw := &countingWriter{f: f}
	l, err := NewLogger(cw, testKey())
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	rec := Record{
		Time: time.Now(), RequestID: "0123456789ab-1", Agency: "BYT", Operation: "Lookup",
		NationalIDHashes: []string{l.Hash("001099000009")}, FieldsReturned: []string{"fullName", "permanentAddress.province"},
		Status: 200, Latency: time.Millisecond,
	}
	b.SetParallelism(32) // 64 committers on 2 cores, as the gateway bench's concurrency
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		r := rec
		for pb.Next() {
			if err := l.Commit(&r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/float64(cw.writes), "records/write")
}

// countingWriter counts the writes to f; the logger calls it from one
// goroutine at a time.
type countingWriter struct {
	f      *os.File
	writes int
}

func (w *countingWriter) Write(p []byte) (int, error) { w.writes++; return w.f.Write(p) }
