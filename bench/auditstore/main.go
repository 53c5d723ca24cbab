// Command auditstore is the benchmark of the PostgreSQL audit store: it
// starts a PostgreSQL server (internal/testpg) in a temporary directory,
// commits N records through the gateway's own audit.Logger over pgsink
// from many goroutines (as a gateway's requests do), and prints a table:
// the commit rate, records per COPY (group commit), bytes per record of
// the table and of each index, the latency of "every read of this
// citizen", and the rate of verifying the table's chain.
//
//	go run ./bench/auditstore                  # 1,000,000 records
//	go run ./bench/auditstore -n 300000 -committers 64
//
// The server is testpg's: fsync=off and shared_buffers=16MB (see
// bench/README.md for what that means for the numbers). It is stopped,
// and its directory removed, at the end, on an error and on SIGINT or
// SIGTERM.
package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"os"
	"os/signal"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/popconnect/popconnect/gateway/audit"
	"github.com/popconnect/popconnect/gateway/audit/pghistory"
	"github.com/popconnect/popconnect/gateway/audit/pgsink"
	"github.com/popconnect/popconnect/gateway/audit/verify"
	"github.com/popconnect/popconnect/internal/testpg"
)

func main() {
	n := flag.Int("n", 1_000_000, "records to commit")
	committers := flag.Int("committers", 64, "goroutines committing records (a gateway's concurrent requests)")
	citizens := flag.Int("citizens", 0, "distinct citizens the records name (default: n)")
	agencies := flag.Int("agencies", 300, "agency codes")
	days := flag.Duration("span", 48*time.Hour, "the records' times are spread over this span, from a UTC midnight")
	queries := flag.Int("queries", 1000, "citizens whose reads are queried")
	doVerify := flag.Bool("verify", true, "time verifying the table (pgsink.NewSource + verify.Run)")
	explain := flag.Int("explain", 0, "print EXPLAIN (ANALYZE, BUFFERS) of the AccessHistory query for this many citizens")
	sinkTimeout := flag.Duration("sink-timeout", audit.DefaultStallTimeout, "bound of each of the sink's COPYs (pgsink.WithTimeout); callgrind.sh raises it for a server under valgrind")
	var settings []testpg.Option
	flag.Func("pg", "a PostgreSQL server setting, name=value (repeatable), e.g. -pg shared_buffers=1GB", func(v string) error {
		name, value, ok := strings.Cut(v, "=")
		if !ok || name == "" {
			return fmt.Errorf("want name=value, got %q", v)
		}
		settings = append(settings, testpg.WithSetting(name, value))
		return nil
	})
	flag.Parse()
	if *citizens <= 0 {
		*citizens = *n
	}

	dir, err := os.MkdirTemp("", "auditstore-")
	if err != nil {
		fatal(err)
	}
	srv, err := testpg.New(dir, settings...)
	if err != nil {
		os.RemoveAll(dir)
		fatal(err)
	}
	var once sync.Once
	cleanup := func() {
		once.Do(func() {
			if err := srv.Close(); err != nil {
				fmt.Fprintln(os.Stderr, "stopping postgres:", err)
			}
			os.RemoveAll(dir)
		})
	}
	defer cleanup()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s := <-sigs
		fmt.Fprintln(os.Stderr, "auditstore:", s, "- stopping postgres")
		cleanup()
		os.Exit(130)
	}()
	if err := run(srv.URL(), dir, *n, *committers, *citizens, *agencies, *days, *queries, *doVerify, *explain, *sinkTimeout); err != nil {
		cleanup()
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "auditstore:", err)
	os.Exit(1)
}

// countingSink counts the Store calls (one COPY each) and their records.
type countingSink struct {
	audit.Sink
	stores, records atomic.Int64
}

func (c *countingSink) Store(ctx context.Context, b *audit.Batch) (int, error) {
	n, err := c.Sink.Store(ctx, b)
	if err == nil {
		c.stores.Add(1)
		c.records.Add(int64(n))
	}
	return n, err
}

// gen makes the records: one per call of next, safe for concurrent use.
type gen struct {
	l        *audit.Logger
	n        int64
	start    time.Time
	step     time.Duration
	citizens int
	agencies []string
	purposes []string
	i        atomic.Int64
}

var fields = []string{"fullName", "dateOfBirth", "gender", "nationalId", "permanentAddress.province",
	"permanentAddress.district", "permanentAddress.ward", "currentAddress.province", "nationality",
	"ethnicity", "religion", "bloodType", "maritalStatus", "healthInsuranceNumber"}

var reasons = []string{"field_not_allowed", "rate_limited", "quota_exceeded", "operation_not_allowed",
	"agency_suspended", "not_found"}

var purposeList = []string{"Social insurance eligibility", "Tax registration", "Criminal investigation",
	"Health insurance enrolment", "Land registry transfer", "Passport issuance", "Bank KYC (licensed)",
	"Voter roll maintenance"}

func newGen(l *audit.Logger, n int, span time.Duration, citizens, agencies int) *gen {
	g := &gen{l: l, n: int64(n), start: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
		step: span / time.Duration(n), citizens: citizens}
	for i := 0; i < agencies; i++ {
		// Codes like the agencies': 2-5 capital letters, here made unique.
		g.agencies = append(g.agencies, fmt.Sprintf("%c%c%c%03d", 'A'+i%26, 'A'+i/26%26, 'A'+i/7%26, i))
		g.purposes = append(g.purposes, purposeList[i%len(purposeList)])
	}
	return g
}

// citizen returns the national ID of citizen k: 12 digits.
func citizen(k int) string { return fmt.Sprintf("%012d", 1_000_000_000+k) }

func (g *gen) hash(r *mrand.Rand) string { return g.l.Hash(citizen(r.IntN(g.citizens))) }

// next returns the next record, or nil when all were made. The request
// ID's prefix is the committer's, as a gateway's is the process's.
func (g *gen) next(r *mrand.Rand, prefix string, seq *uint64) *audit.Record {
	i := g.i.Add(1) - 1
	if i >= g.n {
		return nil
	}
	*seq++
	a := r.IntN(len(g.agencies))
	rec := &audit.Record{
		Time:      g.start.Add(time.Duration(i) * g.step),
		RequestID: prefix + strconv.FormatUint(*seq, 36),
		Agency:    g.agencies[a],
		Purpose:   g.purposes[a],
		Status:    200,
		Latency:   time.Duration(2000+r.IntN(28000)) * time.Microsecond,
	}
	if r.IntN(5) == 0 {
		rec.CaseReference = fmt.Sprintf("HS-2026/%06d", r.IntN(1_000_000))
	}
	p := r.IntN(1000)
	switch {
	case p < 10: // 1% BatchLookup of 100 IDs
		rec.Operation, rec.Batch = "BatchLookup", true
		rec.NationalIDHashes = make([]string, 100)
		for j := range rec.NationalIDHashes {
			rec.NationalIDHashes[j] = g.hash(r)
		}
		rec.FieldsReturned = pickFields(r)
	case p < 60: // 5% Verify
		rec.Operation = "Verify"
		rec.NationalIDHashes = []string{g.hash(r)}
		rec.FieldsReturned = []string{}
	default:
		rec.Operation = "Lookup"
		rec.NationalIDHashes = []string{g.hash(r)}
		rec.FieldsReturned = pickFields(r)
	}
	if r.IntN(100) < 3 { // 3% refused
		rec.Status, rec.Reason, rec.FieldsReturned = 403, reasons[r.IntN(len(reasons))], []string{}
		if rec.Reason == "rate_limited" || rec.Reason == "quota_exceeded" {
			rec.Status = 429
		}
	}
	return rec
}

// pickFields returns 6 to 10 fields, in their sorted order as the gateway
// writes them.
func pickFields(r *mrand.Rand) []string {
	k := 6 + r.IntN(5)
	idx := r.Perm(len(fields))[:k]
	out := make([]string, k)
	for j, x := range idx {
		out[j] = fields[x]
	}
	sort.Strings(out)
	return out
}

func run(url, dir string, n, committers, citizens, agencies int, span time.Duration, queries int, doVerify bool, explain int, sinkTimeout time.Duration) error {
	ctx := context.Background()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	sink, err := pgsink.New(url, pgsink.WithTimeout(sinkTimeout))
	if err != nil {
		return err
	}
	cs := &countingSink{Sink: sink}
	l, err := audit.New(cs, key)
	if err != nil {
		return err
	}
	g := newGen(l, n, span, citizens, agencies)

	fmt.Printf("auditstore: %d records, %d committers, %d citizens, %d agencies, span %v; GOMAXPROCS %d\n",
		n, committers, citizens, agencies, span, runtime.GOMAXPROCS(0))
	var failed atomic.Int64
	var wg sync.WaitGroup
	// Under callgrind.sh the server runs as valgrind, whose processes
	// serverCPU cannot find: the CPU time is then not measured.
	cpuServer0, errCPU := serverCPU(dir)
	cpuSelf0 := selfCPU()
	began := time.Now()
	progressDone := make(chan struct{})
	go func() {
		t := time.NewTicker(30 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-progressDone:
				return
			case <-t.C:
				done := cs.records.Load()
				fmt.Fprintf(os.Stderr, "  %v: %d records stored (%.0f/s)\n", time.Since(began).Round(time.Second),
					done, float64(done)/time.Since(began).Seconds())
			}
		}
	}()
	for c := 0; c < committers; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			r := mrand.New(mrand.NewPCG(uint64(c), 0x5eed))
			var b [6]byte
			for j := range b {
				b[j] = byte(r.Uint32())
			}
			prefix := fmt.Sprintf("%x-", b)
			var seq uint64
			for {
				rec := g.next(r, prefix, &seq)
				if rec == nil {
					return
				}
				if err := l.Commit(rec); err != nil {
					if failed.Add(1) == 1 {
						fmt.Fprintln(os.Stderr, "commit:", err)
					}
				}
			}
		}(c)
	}
	wg.Wait()
	elapsed := time.Since(began)
	cpuServer1, err := serverCPU(dir)
	if errCPU == nil && err != nil {
		return err
	}
	cpuSelf := selfCPU() - cpuSelf0
	cpuServer := time.Duration(cpuServer1-cpuServer0) * time.Second / time.Duration(clockTicks)
	close(progressDone)
	if err := l.Close(); err != nil {
		return err
	}
	if f := failed.Load(); f > 0 {
		return fmt.Errorf("%d commits failed", f)
	}

	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)

	var inserted int64
	if err := conn.QueryRow(ctx, `SELECT coalesce(sum(n_tup_ins), 0)::bigint FROM pg_stat_user_tables
		WHERE relname LIKE 'popconnect_audit_records_%'`).Scan(&inserted); err != nil {
		return err
	}
	vacBegan := time.Now()
	if _, err := conn.Exec(ctx, `VACUUM (ANALYZE) `+pgsink.Table+`, `+pgsink.ReadsTable); err != nil {
		return err
	}
	vacuum := time.Since(vacBegan)

	var heap, toast, table, pk, total, parts int64
	if err := conn.QueryRow(ctx, `
		SELECT count(*),
		       sum(pg_relation_size(c.oid)),
		       sum(coalesce(pg_total_relation_size(nullif(c.reltoastrelid, 0)), 0)),
		       sum(pg_table_size(c.oid)),
		       sum((SELECT coalesce(sum(pg_relation_size(i.indexrelid)), 0) FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)),
		       sum(pg_total_relation_size(c.oid))
		FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid
		WHERE h.inhparent = $1::regclass`, pgsink.Table).Scan(&parts, &heap, &toast, &table, &pk, &total); err != nil {
		return err
	}
	// The index of reads (pgsink.ReadsTable): its rows and B-trees.
	var readsTable, readsIndex, readsRows, readsParts int64
	if err := conn.QueryRow(ctx, `
		SELECT count(*), sum(pg_table_size(c.oid)), sum(pg_indexes_size(c.oid)), coalesce(sum(c.reltuples), 0)::bigint
		FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid
		WHERE h.inhparent = $1::regclass`, pgsink.ReadsTable).Scan(&readsParts, &readsTable, &readsIndex, &readsRows); err != nil {
		return err
	}
	total += readsTable + readsIndex
	var rows, hashes, recordBytes int64
	if err := conn.QueryRow(ctx, `SELECT count(*), sum(cardinality(national_id_hashes))::bigint,
		sum(octet_length(record))::bigint FROM `+pgsink.Table).Scan(&rows, &hashes, &recordBytes); err != nil {
		return err
	}
	if rows != int64(n) {
		return fmt.Errorf("%d rows in the table, want %d", rows, n)
	}

	// Every read of this citizen: the AccessHistory query itself
	// (pghistory, as the gateway runs it: successful reads, disclosure
	// delays applied, newest first, a page of 50).
	hist, err := pghistory.New(url)
	if err != nil {
		return err
	}
	defer hist.Close()
	r := mrand.New(mrand.NewPCG(42, 42))
	lat := make([]time.Duration, 0, queries)
	var found int64
	for k := 0; k < queries; k++ {
		h := l.Hash(citizen(r.IntN(citizens)))
		t0 := time.Now()
		entries, err := hist.History(ctx, pghistory.Query{Hash: h, Now: time.Now().Add(10 * 365 * 24 * time.Hour), Limit: 50})
		if err != nil {
			return err
		}
		found += int64(len(entries))
		lat = append(lat, time.Since(t0))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[int(math.Ceil(p*float64(len(lat))))-1]
	}

	if explain > 0 {
		if err := explainHistory(ctx, conn, l, citizens, explain); err != nil {
			return err
		}
	}

	var vElapsed time.Duration
	var vOK bool
	if doVerify {
		t0 := time.Now()
		src, err := pgsink.NewSource(ctx, url)
		if err != nil {
			return err
		}
		rep, err := verify.Run(src, key, verify.Options{})
		src.Close()
		if err != nil {
			return err
		}
		vElapsed, vOK = time.Since(t0), rep.Intact()
	}

	per := func(b int64) string { return fmt.Sprintf("%.0f B", float64(b)/float64(n)) }
	stores := cs.stores.Load()
	fmt.Printf("\n%-46s %s\n", "measure", "value")
	row := func(k, v string) { fmt.Printf("%-46s %s\n", k, v) }
	row("records committed", fmt.Sprint(n))
	row("commit wall time", elapsed.Round(time.Millisecond).String())
	row("commit rate (Logger over COPY)", fmt.Sprintf("%.0f records/s", float64(n)/elapsed.Seconds()))
	if errCPU == nil {
		row("server CPU per record (postgres processes)", fmt.Sprintf("%.1f µs", float64(cpuServer.Microseconds())/float64(n)))
	} else {
		row("server CPU per record (postgres processes)", "n/a: "+errCPU.Error())
	}
	row("client CPU per record (this process)", fmt.Sprintf("%.1f µs", float64(cpuSelf.Microseconds())/float64(n)))
	row("COPY statements (Store calls)", fmt.Sprint(stores))
	row("records per COPY (mean)", fmt.Sprintf("%.1f", float64(cs.records.Load())/float64(stores)))
	row("rows inserted (pg_stat_user_tables)", fmt.Sprint(inserted))
	row("national ID hashes per record (mean)", fmt.Sprintf("%.2f", float64(hashes)/float64(n)))
	row("record column bytes per record (mean)", per(recordBytes))
	row("partitions", fmt.Sprint(parts))
	row("VACUUM (ANALYZE) after the load", vacuum.Round(time.Millisecond).String())
	row("table heap per record", per(heap))
	row("table TOAST per record", per(toast))
	row("table total (heap+TOAST+maps) per record", per(table))
	row("reads index: rows (estimate), monthly partitions", fmt.Sprintf("%d, %d", readsRows, readsParts))
	row("reads index: table per record", per(readsTable))
	row("reads index: B-tree per record", per(readsIndex))
	row("primary key index per record", per(pk))
	row("total (records and reads index) per record", per(total))
	row("total size", fmt.Sprintf("%.1f MiB", float64(total)/(1<<20)))
	row(fmt.Sprintf("AccessHistory query p50 (%d citizens, pghistory)", queries), pct(0.50).Round(time.Microsecond).String())
	row("AccessHistory query p99", pct(0.99).Round(time.Microsecond).String())
	row("AccessHistory query max", pct(1).Round(time.Microsecond).String())
	row("entries per AccessHistory page (mean)", fmt.Sprintf("%.2f", float64(found)/float64(queries)))
	if doVerify {
		row("verify (pgsink.NewSource + verify.Run)", fmt.Sprintf("%v, intact=%v", vElapsed.Round(time.Millisecond), vOK))
		row("verify rate", fmt.Sprintf("%.0f records/s", float64(n)/vElapsed.Seconds()))
	}
	return nil
}

// explainHistory prints the plan of the AccessHistory query, run with the
// arguments pghistory gives it, for k random citizens: where its time goes
// (buffers read from outside shared_buffers, I/O timings).
func explainHistory(ctx context.Context, conn *pgx.Conn, l *audit.Logger, citizens, k int) error {
	if _, err := conn.Exec(ctx, `SET track_io_timing = on`); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, `SET plan_cache_mode = force_custom_plan`); err != nil {
		return err
	}
	r := mrand.New(mrand.NewPCG(7, 7))
	for i := 0; i < k; i++ {
		h := l.Hash(citizen(r.IntN(citizens)))
		fmt.Printf("\nEXPLAIN (ANALYZE, BUFFERS), citizen %d of %d, the index of reads:\n", i+1, k)
		var ts []time.Time
		var streams []string
		var seqs []int64
		refs, err := conn.Query(ctx, pghistory.RefsSQL, h, nil, nil, nil, time.Now().Add(10*365*24*time.Hour), 50)
		if err != nil {
			return err
		}
		for refs.Next() {
			var t time.Time
			var s string
			var q int64
			if err := refs.Scan(&t, &s, &q); err != nil {
				refs.Close()
				return err
			}
			ts, streams, seqs = append(ts, t), append(streams, s), append(seqs, q)
		}
		if err := refs.Err(); err != nil {
			return err
		}
		if err := printPlan(ctx, conn, pghistory.RefsSQL, h, nil, nil, nil, time.Now().Add(10*365*24*time.Hour), 50); err != nil {
			return err
		}
		fmt.Printf("\nEXPLAIN (ANALYZE, BUFFERS), citizen %d of %d, its %d records:\n", i+1, k, len(ts))
		if err := printPlan(ctx, conn, pghistory.RecordsSQL, ts, streams, seqs, pghistory.ReadOperations,
			time.Now().Add(10*365*24*time.Hour), h); err != nil {
			return err
		}
	}
	return nil
}

func printPlan(ctx context.Context, conn *pgx.Conn, sql string, args ...any) error {
	rows, err := conn.Query(ctx, `EXPLAIN (ANALYZE, BUFFERS) `+sql, args...)
	if err != nil {
		return err
	}
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			rows.Close()
			return err
		}
		fmt.Println("  " + line)
	}
	return rows.Err()
}
