package pgsink_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/popconnect/popconnect/gateway/audit"
	"github.com/popconnect/popconnect/internal/testpg"
)

// TestBatchesInARow: the sink keeps its encoding buffers from one batch
// to the next. Batches of different shapes in a row (two days and two
// months, then one day with fewer COPYs than before, then one over the
// size of the buffers it keeps, then a small one again) each store
// exactly their own records and index rows: none left over from the
// batch before, none lost.
func TestBatchesInARow(t *testing.T) {
	srv := testpg.Start(t)
	s := open(t, srv.URL())
	endOfNov := time.Date(2026, 11, 30, 23, 59, 59, 0, time.UTC)
	dec := time.Date(2026, 12, 1, 0, 0, 1, 0, time.UTC)

	hashes := func(prefix string, n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("%s%063d", prefix, i)
		}
		return out
	}
	batchLookup := func(at time.Time, ids []string) *audit.Record {
		return &audit.Record{Time: at, RequestID: "b", Agency: "tax", Operation: "BatchLookup", Batch: true,
			NationalIDHashes: ids, FieldsReturned: []string{"name"}, Status: 200}
	}
	var large []*audit.Record // over 1 MB encoded: about 20 kB a record
	for i := range 60 {
		large = append(large, batchLookup(dec.Add(time.Duration(i)*time.Second), hashes(fmt.Sprintf("%c", 'a'+i%26), 100)))
	}
	refused := lookup(dec, "R")
	refused.Status = 403
	batches := [][]*audit.Record{
		{lookup(endOfNov, "A"), batchLookup(dec, []string{"B", "C", "B"}), refused, lookup(endOfNov, "D")},
		{lookup(dec, "E")},
		large,
		{lookup(endOfNov, "F"), lookup(dec, "G")},
	}

	st := newStream(t)
	var want []string // "hash seq" of every index row
	for _, recs := range batches {
		for i, r := range recs {
			if r.Status != 200 {
				continue
			}
			seen := map[string]bool{}
			for _, h := range r.NationalIDHashes {
				if !seen[h] {
					seen[h] = true
					want = append(want, fmt.Sprintf("%s %d", h, st.seq+uint64(i)+1))
				}
			}
		}
		store(t, s, st.seal(recs...))
	}
	rows := scan(t, srv.URL())
	if len(rows) != int(st.seq) {
		t.Fatalf("%d records, want %d", len(rows), st.seq)
	}
	verify(t, rows)

	conn := connect(t, srv.URL())
	q, err := conn.Query(ctxT(t, 10*time.Second), `SELECT national_id_hash || ' ' || seq FROM popconnect_audit_reads`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for q.Next() {
		var r string
		if err := q.Scan(&r); err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	if err := q.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("index rows: got %d, want %d (first got %q, first want %q)", len(got), len(want), got[:min(3, len(got))], want[:min(3, len(want))])
	}
}
