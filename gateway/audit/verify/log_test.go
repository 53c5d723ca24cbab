package verify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/popconnect/popconnect/gateway/audit"
)

// testLog writes audit records as the gateway does: one stream per process
// start, seq from 1, each line chained to the one before.
//
// It builds the lines with audit.Chainer because the Logger does not seal
// records yet. Once it does, Commit becomes audit.Logger.Commit on a
// buffer and Restart a new Logger on the same buffer; the tests only use
// Commit, Restart, Bytes and Seq.
type testLog struct {
	t       testing.TB
	buf     bytes.Buffer
	chainer *audit.Chainer
	stream  string
	seq     uint64
	prev    []byte
}

func newTestLog(t testing.TB, key []byte) *testLog {
	l := &testLog{t: t, chainer: audit.NewChainer(key)}
	l.Restart()
	return l
}

// Restart starts a new stream, as a gateway restarted on the same file.
func (l *testLog) Restart() {
	s, err := audit.NewStream()
	if err != nil {
		l.t.Fatal(err)
	}
	l.stream, l.seq, l.prev = s, 0, nil
}

// Seq is the seq of the last record written: what the gateway's metric
// popconnect_gateway_audit_last_seq shows.
func (l *testLog) Seq() uint64 { return l.seq }

// Stream is the current stream's name.
func (l *testLog) Stream() string { return l.stream }

// Commit writes rec.
func (l *testLog) Commit(rec *audit.Record) {
	l.seq++
	body := sealedBody(rec, l.stream, l.seq)
	chain := l.chainer.Next(nil, l.prev, body)
	l.buf.Write(body[:len(body)-1])
	l.buf.WriteString(`,"chain":"`)
	l.buf.Write(chain)
	l.buf.WriteString("\"}\n")
	l.prev = chain
}

func (l *testLog) Bytes() []byte { return bytes.Clone(l.buf.Bytes()) }

// sealedBody encodes rec as the gateway's record body, ended by its stream
// and seq: what the chain covers.
func sealedBody(r *audit.Record, stream string, seq uint64) []byte {
	str := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	var b bytes.Buffer
	b.WriteString(`{"time":"` + r.Time.UTC().Format("2006-01-02T15:04:05.000000Z07:00") + `"`)
	b.WriteString(`,"requestId":` + str(r.RequestID))
	b.WriteString(`,"agency":` + str(r.Agency))
	b.WriteString(`,"operation":` + str(r.Operation))
	b.WriteString(`,"nationalIdHash":`)
	switch {
	case r.Batch:
		h, _ := json.Marshal(r.NationalIDHashes)
		b.Write(h)
	case len(r.NationalIDHashes) > 0:
		b.WriteString(str(r.NationalIDHashes[0]))
	default:
		b.WriteString("null")
	}
	f, _ := json.Marshal(r.FieldsReturned)
	b.WriteString(`,"fieldsReturned":` + string(f))
	b.WriteString(`,"status":` + strconv.Itoa(r.Status))
	b.WriteString(`,"latencyMs":` + strconv.FormatFloat(float64(r.Latency.Microseconds())/1000, 'f', 3, 64))
	b.WriteString(`,"stream":"` + stream + `","seq":` + strconv.FormatUint(seq, 10) + `}`)
	return b.Bytes()
}

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
