package pgsink

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/url"
	"reflect"
	"testing"
	"time"

	"github.com/popconnect/popconnect/gateway/audit"
	"github.com/popconnect/popconnect/gateway/rawio"
	"github.com/popconnect/popconnect/internal/testpg"
)

// TestConnectionIsRaw: the sink's connection to the database is a
// rawio connection (the type rawio.Wrap gives a TCP connection: a plain
// one under the race detector), and batches stored through it, then
// after a reconnect, come back whole.
func TestConnectionIsRaw(t *testing.T) {
	srv := testpg.Start(t)
	u, err := url.Parse(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	probe, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	want := reflect.TypeOf(rawio.Wrap(probe))
	probe.Close()

	s, err := New(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	key := bytes.Repeat([]byte("k"), audit.MinKeyBytes)
	stream, err := audit.NewStream()
	if err != nil {
		t.Fatal(err)
	}
	seq, chain := uint64(1), ""
	for round := range 2 {
		var recs []*audit.Record
		for i := range 50 {
			recs = append(recs, &audit.Record{Time: time.Now().UTC(), RequestID: fmt.Sprint("r", round, "-", i), Agency: "tax",
				Operation: "Lookup", NationalIDHashes: []string{fmt.Sprintf("%064d", i)}, FieldsReturned: []string{"name"}, Status: 200})
		}
		b := audit.SealBatch(key, stream, seq, chain, recs)
		if n, err := s.Store(ctx, b); err != nil || n != len(recs) {
			t.Fatalf("round %d: stored %d of %d: %v", round, n, len(recs), err)
		}
		seq, chain = seq+uint64(len(recs)), b.Chain(len(recs)-1)
		if got := reflect.TypeOf(s.conn.PgConn().Conn()); got != want {
			t.Fatalf("round %d: the sink's connection is a %v, want %v", round, got, want)
		}
		s.drop() // the second round dials again
	}
	last, lastChain, err := s.Last(ctx, stream)
	if err != nil || last != 100 || lastChain != chain {
		t.Fatalf("Last = %d %q %v; want 100 %q", last, lastChain, err, chain)
	}
}
