package pghistory_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/popconnect/popconnect/gateway/audit"
	"github.com/popconnect/popconnect/gateway/audit/pghistory"
	"github.com/popconnect/popconnect/gateway/audit/pgsink"
	"github.com/popconnect/popconnect/internal/testpg"
)

// TestIndexIsNotEvidence: the index of reads is derived data. A row
// added to it by hand, pointing at a refused record or at another
// citizen's read, shows nothing; a read whose record was deleted (a day
// dropped by retention) leaves the history with it.
func TestIndexIsNotEvidence(t *testing.T) {
	srv := testpg.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sink, err := pgsink.Open(ctx, srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	stream, err := audit.NewStream()
	if err != nil {
		t.Fatal(err)
	}
	day1 := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	day2 := day1.AddDate(0, 0, 1)
	read := func(at time.Time, hash string, status int) *audit.Record {
		return &audit.Record{Time: at, RequestID: "r" + hash, Agency: "TAX", Operation: "Lookup",
			NationalIDHashes: []string{hash}, FieldsReturned: []string{"fullName"}, Status: status}
	}
	recs := []*audit.Record{read(day1, "X", 200), read(day2, "X", 200), read(day2, "Y", 200), read(day2, "X", 403)}
	key := bytes.Repeat([]byte("k"), audit.MinKeyBytes)
	if n, err := sink.Store(ctx, audit.SealBatch(key, stream, 1, "", recs)); err != nil || n != len(recs) {
		t.Fatalf("Store: %d, %v", n, err)
	}

	hist, err := pghistory.New(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer hist.Close()
	times := func(limit int) string {
		t.Helper()
		entries, err := hist.History(ctx, pghistory.Query{Hash: "X", Now: day2.Add(time.Hour), Limit: limit})
		if err != nil {
			t.Fatal(err)
		}
		var s []string
		for _, e := range entries {
			s = append(s, e.Time.UTC().Format("01-02"))
		}
		return strings.Join(s, ",")
	}
	if got := times(50); got != "11-03,11-02" {
		t.Fatalf("X's history: %q, want 11-03,11-02", got)
	}

	conn, err := pgx.Connect(ctx, srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// Rows forged into the index: X "read" by Y's record (seq 3) and by the
	// refused request (seq 4).
	if _, err := conn.Exec(ctx, `INSERT INTO `+pgsink.ReadsTable+` (national_id_hash, time, stream, seq)
		VALUES ('X', $1, $2, 3), ('X', $1, $2, 4)`, day2, stream); err != nil {
		t.Fatal(err)
	}
	if got := times(50); got != "11-03,11-02" {
		t.Errorf("with forged index rows: %q, want 11-03,11-02", got)
	}
	// The forged rows sort first (seq 4, 3, then the real 2): a page of
	// one takes more references until it has its entry.
	if got := times(1); got != "11-03" {
		t.Errorf("a page of 1 with forged index rows first: %q, want 11-03", got)
	}
	// Retention drops the first day's records; its index rows stay.
	if _, err := conn.Exec(ctx, `DROP TABLE `+pgsink.Table+`_20261102`); err != nil {
		t.Fatal(err)
	}
	if got := times(50); got != "11-03" {
		t.Errorf("after the 2nd of November was dropped: %q, want 11-03", got)
	}
}
