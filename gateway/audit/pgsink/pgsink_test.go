package pgsink_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/popconnect/popconnect/gateway/audit"
	"github.com/popconnect/popconnect/gateway/audit/pgsink"
	"github.com/popconnect/popconnect/internal/testpg"
)

var hashKey = bytes.Repeat([]byte("k"), audit.MinKeyBytes)

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func open(t *testing.T, url string) *pgsink.Sink {
	t.Helper()
	s, err := pgsink.Open(ctxT(t, 30*time.Second), url)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(ctxT(t, 10*time.Second), url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

func lookup(at time.Time, hash string) *audit.Record {
	return &audit.Record{Time: at, RequestID: "req-" + hash, Agency: "tax", Operation: "Lookup",
		NationalIDHashes: []string{hash}, FieldsReturned: []string{"name", "birthDate"}, Status: 200, Latency: 1500 * time.Microsecond}
}

// stream is a writer of one stream, sealing batches as the Logger does.
type stream struct {
	name  string
	seq   uint64
	chain string
}

func newStream(t *testing.T) *stream {
	name, err := audit.NewStream()
	if err != nil {
		t.Fatal(err)
	}
	return &stream{name: name}
}

func (st *stream) seal(recs ...*audit.Record) *audit.Batch {
	b := audit.SealBatch(hashKey, st.name, st.seq+1, st.chain, recs)
	st.seq += uint64(len(recs))
	st.chain = b.Chain(len(recs) - 1)
	return b
}

func store(t *testing.T, s *pgsink.Sink, b *audit.Batch) {
	t.Helper()
	n, err := s.Store(ctxT(t, 30*time.Second), b)
	if err != nil || n != len(b.Records) {
		t.Fatalf("Store: %d of %d, %v", n, len(b.Records), err)
	}
}

func scan(t *testing.T, url string) []pgsink.Row {
	t.Helper()
	var rows []pgsink.Row
	if err := pgsink.ScanURL(ctxT(t, 30*time.Second), url, func(r pgsink.Row) error {
		rows = append(rows, r)
		return nil
	}); err != nil {
		t.Fatalf("Scan: %v", err)
	}
	return rows
}

// verify checks what the verifier will: each stream numbered from 1
// without gaps, its chain over Record, and the columns against Record.
func verify(t *testing.T, rows []pgsink.Row) {
	t.Helper()
	c := audit.NewChainer(hashKey)
	var prev []byte
	for i, r := range rows {
		if i == 0 || r.Stream != rows[i-1].Stream {
			prev = nil
			if r.Seq != 1 {
				t.Errorf("stream %s starts at seq %d", r.Stream, r.Seq)
			}
		} else if r.Seq != rows[i-1].Seq+1 {
			t.Errorf("stream %s: seq %d after %d", r.Stream, r.Seq, rows[i-1].Seq)
		}
		want := c.Next(nil, prev, r.Record)
		if string(want) != r.Chain {
			t.Errorf("stream %s seq %d: chain %s, want %s", r.Stream, r.Seq, r.Chain, want)
		}
		if err := r.CheckColumns(); err != nil {
			t.Errorf("stream %s seq %d: %v", r.Stream, r.Seq, err)
		}
		prev = []byte(r.Chain)
	}
}

// TestSchemaConcurrent: four sinks opened at once on an empty database
// all create (or find) the schema, and store at once into the same new
// day's partitions; opening again is harmless.
func TestSchemaConcurrent(t *testing.T) {
	srv := testpg.Start(t)
	at := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := range 4 {
		st := newStream(t)
		wg.Go(func() {
			s, err := pgsink.Open(ctxT(t, 30*time.Second), srv.URL())
			if err != nil {
				errs <- fmt.Errorf("Open %d: %w", i, err)
				return
			}
			defer s.Close()
			if _, err := s.Store(ctxT(t, 30*time.Second), st.seal(lookup(at, fmt.Sprint("h", i)))); err != nil {
				errs <- fmt.Errorf("Store %d: %w", i, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	open(t, srv.URL()) // a fifth time, serially
	conn := connect(t, srv.URL())
	var parts []string
	rows, _ := conn.Query(ctxT(t, 10*time.Second), `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'popconnect_audit_records'::regclass AND c.relkind = 'r' ORDER BY 1`)
	parts, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"popconnect_audit_records_20261202", "popconnect_audit_records_20261203"}; !slices.Equal(parts, want) {
		t.Fatalf("partitions %v, want %v", parts, want)
	}
	if got := scan(t, srv.URL()); len(got) != 4 {
		t.Fatalf("%d records, want 4", len(got))
	}
}

// TestStoreAndScan stores a batch of a lookup, a batch lookup, a refused
// request and one with a NUL and bytes that are not UTF-8, and reads it
// back: columns, record bytes and chain. A column edited in place is then
// caught by CheckColumns.
func TestStoreAndScan(t *testing.T) {
	srv := testpg.Start(t)
	s := open(t, srv.URL())
	if s.Name() != "postgres" {
		t.Fatalf("Name %q", s.Name())
	}
	at := time.Date(2026, 12, 2, 9, 30, 0, 123456789, time.UTC)
	recs := []*audit.Record{
		lookup(at, "aa"),
		{Time: at, RequestID: "r2", Agency: "police", Operation: "BatchLookup", Batch: true,
			NationalIDHashes: []string{"b1", "b2", "b3"}, FieldsReturned: []string{"address"}, Status: 200},
		{Time: at, RequestID: "r3", Agency: "police", Operation: "Verify", Status: 403, Reason: "forbidden_field",
			Purpose: "Criminal investigation", CaseReference: "HN-2026/77", AgencyName: "Công an", DiscloseAfter: at.Add(8760 * time.Hour)},
		{Time: at, RequestID: "nul\x00bad\xff\xfe", Agency: "x\"y", Operation: "Lookup", Status: 400, Reason: "bad_request"},
	}
	st := newStream(t)
	b := st.seal(recs...)
	if n, err := s.Store(ctxT(t, 30*time.Second), &audit.Batch{Stream: st.name}); n != 0 || err != nil {
		t.Fatalf("empty batch: %d, %v", n, err)
	}
	store(t, s, b)

	rows := scan(t, srv.URL())
	if len(rows) != len(recs) {
		t.Fatalf("%d rows, want %d", len(rows), len(recs))
	}
	verify(t, rows)
	for i, r := range rows {
		if !bytes.Equal(r.Record, b.Body(i)) || r.Chain != b.Chain(i) || !bytes.Equal(r.Line(), b.Line(i)) {
			t.Errorf("row %d: record %s chain %s, want %s %s", i, r.Record, r.Chain, b.Body(i), b.Chain(i))
		}
		if r.Stream != st.name || r.Seq != uint64(i+1) || !r.Time.Equal(at.Truncate(time.Microsecond)) {
			t.Errorf("row %d: stream %s seq %d time %v", i, r.Stream, r.Seq, r.Time)
		}
	}
	if r := rows[0]; r.RequestID != "req-aa" || r.Agency != "tax" || r.Operation != "Lookup" || !slices.Equal(r.NationalIDHashes, []string{"aa"}) ||
		!slices.Equal(r.FieldsReturned, []string{"name", "birthDate"}) || r.Status != 200 || r.Reason != "" {
		t.Errorf("lookup row: %+v", r)
	}
	if r := rows[1]; !slices.Equal(r.NationalIDHashes, []string{"b1", "b2", "b3"}) || r.Operation != "BatchLookup" {
		t.Errorf("batch row: %+v", r)
	}
	if r := rows[2]; len(r.NationalIDHashes) != 0 || r.NationalIDHashes == nil || len(r.FieldsReturned) != 0 || r.Status != 403 || r.Reason != "forbidden_field" ||
		r.Purpose != "Criminal investigation" || r.CaseReference != "HN-2026/77" || rows[0].Purpose != "" ||
		r.AgencyName != "Công an" || r.DiscloseAfter == nil || !r.DiscloseAfter.Equal(at.Add(8760*time.Hour).Truncate(time.Microsecond)) ||
		rows[0].DiscloseAfter != nil || rows[0].AgencyName != "" {
		t.Errorf("refused row: %+v", r)
	}
	if r := rows[3]; r.RequestID != "nul\uFFFDbad\uFFFD\uFFFD" || r.Agency != `x"y` {
		t.Errorf("odd row: %q %q", r.RequestID, r.Agency)
	}

	// The citizen index finds both reads of a hash, in a batch or not.
	conn := connect(t, srv.URL())
	var n int
	if err := conn.QueryRow(ctxT(t, 10*time.Second), `SELECT count(*) FROM popconnect_audit_records WHERE national_id_hashes @> ARRAY[$1]`, "b2").Scan(&n); err != nil || n != 1 {
		t.Fatalf("reads of b2: %d, %v", n, err)
	}

	// Columns edited in place: the chain still holds, CheckColumns does not.
	// (Row 3, seq 3, has a purpose and a case reference to edit.)
	for col, set := range map[string]string{
		"agency":             "agency = 'health'",
		"national_id_hashes": "national_id_hashes = '{b1,b3}'",
		"status":             "status = 500",
		"time":               "time = time + interval '1 microsecond'",
		"purpose":            "purpose = 'Statistics'",
		"case_reference":     "case_reference = 'HN-2026/78'",
		"agency_name":        "agency_name = 'Bộ Công an'",
		"disclose_after":     "disclose_after = NULL",
	} {
		t.Run(col, func(t *testing.T) {
			tx, err := conn.Begin(ctxT(t, 10*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(context.Background())
			if _, err := tx.Exec(ctxT(t, 10*time.Second), `UPDATE popconnect_audit_records SET `+set+` WHERE seq = 3`); err != nil {
				t.Fatal(err)
			}
			var caught error
			err = pgsink.Scan(ctxT(t, 10*time.Second), tx.Conn(), func(r pgsink.Row) error {
				if e := r.CheckColumns(); e != nil {
					caught = fmt.Errorf("seq %d: %w", r.Seq, e)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if caught == nil || !strings.Contains(caught.Error(), "seq 3:") || !strings.Contains(caught.Error(), col) {
				t.Fatalf("edit of %s: %v", col, caught)
			}
		})
	}
}

// TestLast: a stream's last seq and chain, from the sink and from a new
// one; nothing for an unknown stream.
func TestLast(t *testing.T) {
	srv := testpg.Start(t)
	s := open(t, srv.URL())
	at := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	a, other := newStream(t), newStream(t)
	if seq, chain, err := s.Last(ctxT(t, 10*time.Second), a.name); seq != 0 || chain != "" || err != nil {
		t.Fatalf("Last of an empty stream: %d %q %v", seq, chain, err)
	}
	store(t, s, a.seal(lookup(at, "1"), lookup(at, "2")))
	store(t, s, other.seal(lookup(at, "x")))
	store(t, s, a.seal(lookup(at, "3")))
	for _, sink := range []*pgsink.Sink{s, open(t, srv.URL())} {
		seq, chain, err := sink.Last(ctxT(t, 10*time.Second), a.name)
		if err != nil || seq != 3 || chain != a.chain {
			t.Fatalf("Last: %d %s %v, want 3 %s", seq, chain, err, a.chain)
		}
	}
	// The second sink took over the stream (as a reconnected one does):
	// the first one's next Store fails, and the one after succeeds.
	if _, err := s.Store(ctxT(t, 10*time.Second), a.seal(lookup(at, "4"))); err == nil {
		t.Log("the first sink's connection survived the takeover") // allowed: its backend may not have been ended yet
	} else {
		seq, chain, err := s.Last(ctxT(t, 10*time.Second), a.name)
		if err != nil {
			t.Fatalf("Last after takeover: %v", err)
		}
		a.seq, a.chain = seq, chain
	}
	store(t, s, a.seal(lookup(at, "5")))
	verify(t, scan(t, srv.URL()))
}

// TestPartitionsAcrossMidnight: one batch across a UTC midnight (times in
// another zone) lands in two daily partitions, the day after is made
// ahead, and a partition dropped behind the sink's back is made again
// rather than losing a record.
func TestPartitionsAcrossMidnight(t *testing.T) {
	srv := testpg.Start(t)
	s := open(t, srv.URL())
	zone := time.FixedZone("UTC+5", 5*3600)
	midnight := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	st := newStream(t)
	store(t, s, st.seal(
		lookup(midnight.Add(-time.Microsecond).In(zone), "before"),
		lookup(midnight.In(zone), "at"),
		lookup(midnight.Add(time.Hour).In(zone), "after")))

	conn := connect(t, srv.URL())
	where := func() map[string]string {
		rows, _ := conn.Query(ctxT(t, 10*time.Second), `SELECT national_id_hashes[1], tableoid::regclass::text FROM popconnect_audit_records`)
		m := map[string]string{}
		for rows.Next() {
			var h, part string
			if err := rows.Scan(&h, &part); err != nil {
				t.Fatal(err)
			}
			m[h] = part
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return m
	}
	got := where()
	want := map[string]string{"before": "popconnect_audit_records_20261202", "at": "popconnect_audit_records_20261203", "after": "popconnect_audit_records_20261203"}
	for h, p := range want {
		if got[h] != p {
			t.Errorf("%s in %q, want %s", h, got[h], p)
		}
	}
	var ahead bool
	if err := conn.QueryRow(ctxT(t, 10*time.Second), `SELECT to_regclass('popconnect_audit_records_20261204') IS NOT NULL`).Scan(&ahead); err != nil || !ahead {
		t.Errorf("the day after's partition: %v %v", ahead, err)
	}

	// Retention drops the partition of the 4th that the sink made ahead.
	if _, err := conn.Exec(ctxT(t, 10*time.Second), `DROP TABLE popconnect_audit_records_20261204`); err != nil {
		t.Fatal(err)
	}
	store(t, s, st.seal(lookup(time.Date(2026, 12, 4, 8, 0, 0, 0, time.UTC), "later")))
	if got := where()["later"]; got != "popconnect_audit_records_20261204" {
		t.Fatalf("later in %q", got)
	}
	verify(t, scan(t, srv.URL()))

	// The whole table dropped: the sink makes it again.
	if _, err := conn.Exec(ctxT(t, 10*time.Second), `DROP TABLE popconnect_audit_records`); err != nil {
		t.Fatal(err)
	}
	store(t, s, st.seal(lookup(time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC), "after drop")))
	if rows := scan(t, srv.URL()); len(rows) != 1 || rows[0].NationalIDHashes[0] != "after drop" {
		t.Fatalf("after the table was dropped: %+v", rows)
	}
}

// TestStoreWhileStopped: with the database stopped, Store and Last fail
// within their context, storing nothing; once it is back, the sink
// reconnects and the stream goes on.
func TestStoreWhileStopped(t *testing.T) {
	srv := testpg.Start(t)
	s := open(t, srv.URL())
	at := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	st := newStream(t)
	store(t, s, st.seal(lookup(at, "1")))

	srv.Stop()
	for i := range 2 { // once on the old connection, once reconnecting
		seq, chain := st.seq, st.chain
		b := st.seal(lookup(at, fmt.Sprint("lost", i)))
		start := time.Now()
		n, err := s.Store(ctxT(t, 3*time.Second), b)
		if err == nil || n != 0 {
			t.Fatalf("Store with the database stopped: %d, %v", n, err)
		}
		if d := time.Since(start); d > 4*time.Second {
			t.Fatalf("Store took %v", d)
		}
		if strings.Contains(err.Error(), srv.Password()) {
			t.Fatalf("error shows the password: %v", err)
		}
		t.Logf("Store %d: %v (outcome unknown: %v)", i, err, errors.Is(err, audit.ErrOutcomeUnknown))
		// The Logger asks where the stream stands; the database is down.
		if _, _, err := s.Last(ctxT(t, 3*time.Second), st.name); err == nil {
			t.Fatal("Last with the database stopped succeeded")
		}
		st.seq, st.chain = seq, chain // nothing was stored: the same seq again
	}
	srv.Start()
	seq, chain, err := s.Last(ctxT(t, 30*time.Second), st.name)
	if err != nil || seq != 1 {
		t.Fatalf("Last after restart: %d %v", seq, err)
	}
	st.seq, st.chain = seq, chain
	store(t, s, st.seal(lookup(at, "2")))
	rows := scan(t, srv.URL())
	if len(rows) != 2 {
		t.Fatalf("%d rows, want 2", len(rows))
	}
	verify(t, rows)
}

// TestKilledMidStream: a crash of the database (SIGKILL) between batches;
// the next Store either fails or, reconnected, succeeds, and Last tells
// where the stream stands either way.
func TestKilledMidStream(t *testing.T) {
	srv := testpg.Start(t)
	s := open(t, srv.URL())
	at := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	st := newStream(t)
	store(t, s, st.seal(lookup(at, "1"), lookup(at, "2")))
	srv.Kill()
	srv.Start()
	b := st.seal(lookup(at, "3"))
	if _, err := s.Store(ctxT(t, 10*time.Second), b); err != nil {
		if !errors.Is(err, audit.ErrOutcomeUnknown) {
			t.Logf("Store after the crash, nothing stored: %v", err)
		}
		seq, chain, err := s.Last(ctxT(t, 10*time.Second), st.name)
		if err != nil {
			t.Fatalf("Last: %v", err)
		}
		st.seq, st.chain = seq, chain
	}
	store(t, s, st.seal(lookup(at, "4")))
	verify(t, scan(t, srv.URL()))
}

// TestUnresponsive: a server that accepts connections and never answers
// holds Open no longer than its context.
func TestUnresponsive(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	start := time.Now()
	_, err = pgsink.Open(ctxT(t, time.Second), "postgres://u:sekrit-pw@"+l.Addr().String()+"/db?sslmode=disable")
	if err == nil || time.Since(start) > 3*time.Second {
		t.Fatalf("Open: %v after %v", err, time.Since(start))
	}
	if strings.Contains(err.Error(), "sekrit-pw") {
		t.Fatalf("error shows the password: %v", err)
	}
}

// TestSecretsNotShown: the password is in no error message, whatever the
// URL's form and whatever failed.
func TestSecretsNotShown(t *testing.T) {
	srv := testpg.Start(t)
	ctx := ctxT(t, 30*time.Second)
	wrongPW := strings.Replace(srv.URL(), srv.Password(), "wrong-Pa55-word", 1)
	for _, url := range []string{
		wrongPW,
		fmt.Sprintf("postgres://popconnect:wrong-Pa55-word@127.0.0.1:%d/postgres?sslmode=disable&connect_timeout=2", freePort(t)),
		"postgres://popconnect:wrong-Pa55-word@127.0.0.1:99999x/postgres",
		"postgres://popconnect:wrong-Pa55-word@[::1/postgres",
		fmt.Sprintf("host=127.0.0.1 port=%d user=popconnect password=wrong-Pa55-word dbname=postgres sslmode=disable", srv.Port()),
		fmt.Sprintf("host=127.0.0.1 port=%d user=popconnect password='wrong-Pa55-word' dbname=nodb sslmode=disable", srv.Port()),
		"host=127.0.0.1 port=notaport password=wrong-Pa55-word",
	} {
		_, err := pgsink.Open(ctx, url)
		if err == nil {
			t.Errorf("Open(%s) succeeded", url)
			continue
		}
		if strings.Contains(err.Error(), "wrong-Pa55-word") {
			t.Errorf("error shows the password: %v", err)
		}
		if err := pgsink.ScanURL(ctx, url, func(pgsink.Row) error { return nil }); err == nil || strings.Contains(err.Error(), "wrong-Pa55-word") {
			t.Errorf("ScanURL: %v", err)
		}
	}
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestRestartWhileIdle: the database restarts while the sink is idle; the
// next Store finds its connection dead before the COPY (it pings a
// connection idle for a second), reconnects and succeeds at once.
func TestRestartWhileIdle(t *testing.T) {
	srv := testpg.Start(t)
	s := open(t, srv.URL())
	at := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	st := newStream(t)
	store(t, s, st.seal(lookup(at, "1")))
	srv.Stop()
	srv.Start()
	time.Sleep(1100 * time.Millisecond)
	store(t, s, st.seal(lookup(at, "2")))
	verify(t, scan(t, srv.URL()))
}

// TestStoreBlocked: a COPY held up by a lock in the database returns when
// its context ends, its outcome unknown (the rows went out); once the lock
// goes, Last tells whether the batch committed, and the stream goes on
// from there without a gap or a seq used twice.
func TestStoreBlocked(t *testing.T) {
	srv := testpg.Start(t)
	s := open(t, srv.URL())
	at := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	st := newStream(t)
	store(t, s, st.seal(lookup(at, "1")))

	locker := connect(t, srv.URL())
	tx, err := locker.Begin(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctxT(t, 10*time.Second), `LOCK TABLE popconnect_audit_records IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	seq0, chain0 := st.seq, st.chain
	b := st.seal(lookup(at, "2"))
	start := time.Now()
	n, err := s.Store(ctxT(t, time.Second), b)
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Store blocked for %v with a 1s context", d)
	}
	if n != 0 || !errors.Is(err, audit.ErrOutcomeUnknown) {
		t.Fatalf("Store blocked: %d, %v; want an unknown outcome", n, err)
	}
	if err := tx.Commit(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	seq, chain, err := s.Last(ctxT(t, 10*time.Second), st.name)
	switch {
	case err != nil:
		t.Fatalf("Last: %v", err)
	case seq == 2 && chain == b.Chain(0):
		t.Log("the blocked COPY committed once the lock went")
	case seq == seq0 && chain == chain0:
		t.Log("the blocked COPY was rolled back")
	default:
		t.Fatalf("Last: %d %s", seq, chain)
	}
	st.seq, st.chain = seq, chain
	store(t, s, st.seal(lookup(at, "3")))
	rows := scan(t, srv.URL())
	if len(rows) != int(st.seq) {
		t.Fatalf("%d rows, want %d", len(rows), st.seq)
	}
	verify(t, rows)
}

// TestStorageMigrated: a table made by an older gateway (the columns
// compressed, PostgreSQL's default, with a partition and a record) gets
// record and national_id_hashes stored without compression, on the
// parent, its existing partition and the partitions made after; the old
// record still reads back and the stream goes on after it.
func TestStorageMigrated(t *testing.T) {
	srv := testpg.Start(t)
	at := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	st := newStream(t)
	s := open(t, srv.URL())
	store(t, s, st.seal(lookup(at, "1")))
	s.Close()
	conn := connect(t, srv.URL())
	ctx := ctxT(t, 30*time.Second)
	// As an older gateway left it.
	if _, err := conn.Exec(ctx, `ALTER TABLE popconnect_audit_records ALTER COLUMN record SET STORAGE EXTENDED,
		ALTER COLUMN national_id_hashes SET STORAGE EXTENDED`); err != nil {
		t.Fatal(err)
	}
	storage := func() []string {
		rows, err := conn.Query(ctx, `SELECT c.relname || '.' || a.attname || '=' || a.attstorage::text
			FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
			WHERE c.relname LIKE 'popconnect_audit_records%' AND c.relkind IN ('p', 'r')
			  AND a.attname IN ('record', 'national_id_hashes') ORDER BY 1`)
		if err != nil {
			t.Fatal(err)
		}
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := storage(); len(got) != 6 || strings.Count(strings.Join(got, " "), "=x") != 6 {
		t.Fatalf("before: %q, want 6 columns stored compressed (x)", got)
	}

	s = open(t, srv.URL())
	store(t, s, st.seal(lookup(at.AddDate(0, 0, 2), "2"))) // a new day's partition
	got := storage()
	if len(got) != 10 || strings.Count(strings.Join(got, " "), "=e") != 10 {
		t.Fatalf("after: %q, want 10 columns stored out of line uncompressed (e)", got)
	}
	rows := scan(t, srv.URL())
	if len(rows) != 2 {
		t.Fatalf("%d rows, want 2", len(rows))
	}
	verify(t, rows)
}
