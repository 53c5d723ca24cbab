package pgsink_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/popconnect/popconnect/gateway/audit"
	"github.com/popconnect/popconnect/gateway/audit/pgsink"
	"github.com/popconnect/popconnect/internal/testpg"
)

// TestReadsIndex: the records' trigger indexes every national ID hash of
// each successful read, once per record, in the month partition of its
// time (made by the sink, across a month's end too), and nothing else:
// no refusal, no AccessHistory, no record without IDs.
func TestReadsIndex(t *testing.T) {
	srv := testpg.Start(t)
	s := open(t, srv.URL())
	endOfNov := time.Date(2026, 11, 30, 23, 59, 59, 0, time.UTC)
	dec := time.Date(2026, 12, 1, 0, 0, 1, 0, time.UTC)

	batch := &audit.Record{Time: dec, RequestID: "b", Agency: "tax", Operation: "BatchLookup", Batch: true,
		NationalIDHashes: []string{"A", "B", "A"}, FieldsReturned: []string{"name"}, Status: 200}
	refused := lookup(dec, "A")
	refused.Status, refused.Reason = 403, "field_not_allowed"
	history := lookup(dec, "A")
	history.Operation = "AccessHistory"
	verifyRead := lookup(dec, "C")
	verifyRead.Operation = "Verify"
	verifyRead.DiscloseAfter = dec.Add(24 * time.Hour)
	health := &audit.Record{Time: dec, RequestID: "h", Agency: "tax", Operation: "Lookup", Status: 404, Reason: "not_found"}
	st := newStream(t)
	store(t, s, st.seal(lookup(endOfNov, "A"), batch, refused, history, verifyRead, health))

	conn := connect(t, srv.URL())
	rows, err := conn.Query(ctxT(t, 10*time.Second), `SELECT national_id_hash, seq, tableoid::regclass::text,
		coalesce(disclose_after::text, '') FROM `+pgsink.ReadsTable+` ORDER BY seq, national_id_hash`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var h, part, after string
		var seq int64
		if err := rows.Scan(&h, &seq, &part, &after); err != nil {
			t.Fatal(err)
		}
		got = append(got, strings.TrimSpace(fmt.Sprintf("%s %d %s %s", h, seq, part, after)))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"A 1 popconnect_audit_reads_202611",
		"A 2 popconnect_audit_reads_202612",
		"B 2 popconnect_audit_reads_202612",
		"C 5 popconnect_audit_reads_202612 2026-12-02 00:00:01+00",
	}
	if !slices.Equal(got, want) {
		t.Errorf("index rows:\n got %q\nwant %q", got, want)
	}

	// Retention drops a month of the index behind the sink's back: the
	// next batch of that month makes it again rather than fail.
	if _, err := conn.Exec(ctxT(t, 10*time.Second), `DROP TABLE `+pgsink.ReadsTable+`_202612`); err != nil {
		t.Fatal(err)
	}
	store(t, s, st.seal(lookup(dec.Add(time.Hour), "D")))
	var n int
	if err := conn.QueryRow(ctxT(t, 10*time.Second), `SELECT count(*) FROM `+pgsink.ReadsTable+`_202612 WHERE national_id_hash = 'D'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("after the month was dropped: %d rows of D, %v", n, err)
	}
	verify(t, scan(t, srv.URL()))
}

// TestReadsIndexSameAsTrigger: the sink writes a batch's index rows
// itself, into the partitions, where the record table's trigger does not
// fire; rows inserted through the parent table (an older gateway's COPY,
// an archive restored) are still indexed by the trigger. Both must give
// the same rows: the same records, inserted again through the parent
// under another stream name, are indexed exactly as the sink indexed
// them, and the sink's rows are there once.
func TestReadsIndexSameAsTrigger(t *testing.T) {
	srv := testpg.Start(t)
	s := open(t, srv.URL())
	at := time.Date(2026, 12, 31, 23, 59, 59, 999999000, time.UTC)
	batch := &audit.Record{Time: at, RequestID: "b", Agency: "tax", Operation: "BatchLookup", Batch: true,
		NationalIDHashes: []string{"A", "B\xff", "A", "C\x00"}, FieldsReturned: []string{"name"}, Status: 200}
	two := lookup(at.Add(time.Microsecond), "D")             // the next year's, month's and day's partitions
	two.NationalIDHashes = append(two.NationalIDHashes, "E") // not a batch: the record holds D only
	refused := lookup(at, "F")
	refused.Status, refused.Reason = 429, "rate_limited"
	delayed := lookup(at, "G")
	delayed.Operation, delayed.DiscloseAfter = "Verify", at.Add(time.Hour)
	odd := lookup(at, "H")
	odd.Operation = "Look\xffup"
	st := newStream(t)
	store(t, s, st.seal(batch, two, refused, delayed, odd))

	conn := connect(t, srv.URL())
	ctx := ctxT(t, 30*time.Second)
	if _, err := conn.Exec(ctx, `INSERT INTO `+pgsink.Table+`
		SELECT time, 'restored', seq, request_id, agency, operation, national_id_hashes, fields_returned, status,
		       reason, record, chain, purpose, case_reference, agency_name, disclose_after
		FROM `+pgsink.Table); err != nil {
		t.Fatal(err)
	}
	index := func(stream string) []string {
		rows, err := conn.Query(ctx, `SELECT national_id_hash, time, seq, coalesce(disclose_after::text, ''),
			tableoid::regclass::text FROM `+pgsink.ReadsTable+` WHERE stream = $1
			ORDER BY seq, national_id_hash`, stream)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for rows.Next() {
			var h, after, part string
			var tm time.Time
			var seq int64
			if err := rows.Scan(&h, &tm, &seq, &after, &part); err != nil {
				t.Fatal(err)
			}
			got = append(got, fmt.Sprintf("%q %s %d %s %s", h, tm.UTC().Format(time.RFC3339Nano), seq, after, part))
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return got
	}
	sink, trigger := index(st.name), index("restored")
	if len(sink) != 5 {
		t.Errorf("the sink's index rows: %q, want 5 (A, B, C of the batch lookup; D of the lookup; G)", sink)
	}
	if !slices.Equal(sink, trigger) {
		t.Errorf("index rows:\nsink    %q\ntrigger %q", sink, trigger)
	}
}
