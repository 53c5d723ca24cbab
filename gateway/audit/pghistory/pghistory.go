// Package pghistory answers a citizen's access history from the audit
// records the PostgreSQL sink (package pgsink) stores: the successful reads
// of the citizen's record by every agency, through every gateway sharing
// the store, newest first.
//
// # What counts as a read
//
// A record of status 200 whose operation is Lookup, Verify or BatchLookup
// and whose national_id_hashes holds the citizen's keyed hash. Verify
// counts: it tells the agency whether the values it holds match the
// citizen's record, which is a disclosure of that record. A BatchLookup
// counts when it named the citizen, even if the upstream had no record for
// the citizen in that batch (the record does not tell). Refused and failed
// requests are not reads; AccessHistory requests (the portal showing the
// history) are never entries.
//
// # Disclosure delay
//
// A record made with a disclosure delay carries disclose_after, the read's
// time plus the connection's disclosureDelay, written when the read was
// made. A read whose disclose_after is after now is left out. Fixing the
// time in the record, rather than looking the delay up in today's policy,
// means a later change of a connection's delay (or its deletion) neither
// hides reads already disclosed nor reveals reads made under a delay: what
// the agency was promised when it read is what holds.
//
// # Connections
//
// A small pgx pool, separate from the sink's single writing connection, so
// that a slow history query never holds up audit commits; every query is
// bounded by a timeout, connecting included.
package pghistory

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/popconnect/popconnect/gateway/audit/pgsink"
)

// ReadOperations are the operations whose successful records are reads of
// a citizen's record (pgsink's index of reads holds those only).
var ReadOperations = pgsink.ReadOperations

// DefaultTimeout bounds one history query, connecting included.
const DefaultTimeout = 5 * time.Second

// DefaultMaxConns is the pool's size.
const DefaultMaxConns = 4

// Entry is one read of a citizen's record.
type Entry struct {
	Time time.Time
	// Agency is the agency code; AgencyName its connection's displayName
	// at the time of the read ('' when it had none).
	Agency        string
	AgencyName    string
	Operation     string
	Fields        []string
	Purpose       string
	CaseReference string
}

// Query asks for one page of a citizen's history.
type Query struct {
	// Hash is the keyed hash of the citizen's national ID (audit.Logger.Hash).
	Hash string
	// Before, when not zero, keeps only reads strictly before it.
	Before time.Time
	// Now is the time disclosure delays are measured against.
	Now time.Time
	// Limit is the most entries answered (1 or more).
	Limit int
}

// RefsSQL selects the next reads of a citizen from the index of reads,
// newest first, after the keyset ($2, $3, $4) = (time, stream, seq) when
// $2 is not NULL: one B-tree range per monthly partition. stream and seq
// order reads of the same microsecond, so that the order is stable.
const RefsSQL = `SELECT time, stream, seq
	FROM ` + pgsink.ReadsTable + `
	WHERE national_id_hash = $1
	  AND ($2::timestamptz IS NULL OR (time, stream, seq) < ($2, $3::text, $4::bigint))
	  AND (disclose_after IS NULL OR disclose_after <= $5)
	ORDER BY time DESC, stream DESC, seq DESC
	LIMIT $6`

// RecordsSQL fetches the records of those reads by their primary key. The
// times are in the query as a list, so that PostgreSQL plans (and locks)
// only the daily partitions they fall on, not the years of them a
// join would. Only a record that is still there, succeeded, is a read and
// names the citizen counts: the index is derived data, the records are
// the evidence.
const RecordsSQL = `SELECT time, stream, seq, agency, agency_name, operation, fields_returned, purpose, case_reference
	FROM ` + pgsink.Table + `
	WHERE time = ANY($1::timestamptz[])
	  AND (stream, seq, time) IN (SELECT * FROM unnest($2::text[], $3::bigint[], $1::timestamptz[]))
	  AND status = 200
	  AND operation = ANY($4::text[])
	  AND (disclose_after IS NULL OR disclose_after <= $5)
	  AND $6 = ANY(national_id_hashes)`

// Store reads the history from PostgreSQL.
type Store struct {
	pool    *pgxpool.Pool
	timeout time.Duration
}

// Option configures a Store.
type Option func(*Store, *pgxpool.Config)

// WithTimeout bounds each query, connecting included (default DefaultTimeout).
func WithTimeout(d time.Duration) Option {
	return func(s *Store, _ *pgxpool.Config) { s.timeout = d }
}

// WithMaxConns sets the pool's size (default DefaultMaxConns).
func WithMaxConns(n int32) Option {
	return func(_ *Store, c *pgxpool.Config) { c.MaxConns = n }
}

// New makes a Store for the database at url (as pgsink.New takes it)
// without connecting: the first query connects. Error messages never show
// the URL's password.
func New(url string, opts ...Option) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, errors.New("pghistory: the audit database URL is not valid")
	}
	s := &Store{timeout: DefaultTimeout}
	cfg.MaxConns = DefaultMaxConns
	cfg.MinConns = 0
	cfg.MaxConnIdleTime = time.Minute
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "popconnect-gateway-history"
	}
	// A plan for the query's own values, never a generic one: RecordsSQL
	// names the days of the page's records, and only with them in the
	// plan does PostgreSQL plan and lock those days' partitions alone.
	cfg.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_custom_plan"
	// No JIT compilation: a page is a few index lookups, and compiling
	// costs far more than it can save. It is what made the history slow
	// at 10 million records before the index of reads (bench/README.md):
	// the planner's estimate for a GIN probe of every daily partition
	// passed jit_above_cost, and each page spent 0.6-0.9 s compiling 185
	// functions for 14 ms of execution.
	cfg.ConnConfig.RuntimeParams["jit"] = "off"
	for _, o := range opts {
		o(s, cfg)
	}
	if s.timeout <= 0 || cfg.MaxConns < 1 {
		return nil, errors.New("pghistory: the timeout and the pool size must be positive")
	}
	cfg.ConnConfig.ConnectTimeout = s.timeout
	s.pool, err = pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("pghistory: %w", redacted(err, cfg.ConnConfig.Password))
	}
	return s, nil
}

// History answers one page of the citizen's reads, newest first. It
// returns all of the page or an error, never part of it.
//
// It takes the page's references from the index of reads, then their
// records. An index row without a valid record (a day dropped by
// retention, a row that is not a read of this citizen) is skipped, and
// more references are taken until the page is full or the index has no
// more: each round reads at most Limit references.
func (s *Store) History(ctx context.Context, q Query) ([]Entry, error) {
	if q.Limit < 1 {
		return nil, errors.New("pghistory: the limit must be at least 1")
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, s.fail(err)
	}
	defer conn.Release()

	entries := []Entry{}
	var after *ref // the keyset: the last reference read
	if !q.Before.IsZero() {
		// Strictly before q.Before: below every (q.Before, stream, seq).
		after = &ref{time: q.Before}
	}
	for len(entries) < q.Limit {
		want := q.Limit - len(entries)
		refs, err := s.refs(ctx, conn, q, after, want)
		if err != nil {
			return nil, err
		}
		if len(refs) == 0 {
			break
		}
		found, err := s.records(ctx, conn, q, refs)
		if err != nil {
			return nil, err
		}
		for _, r := range refs {
			if e, ok := found[r.key()]; ok {
				entries = append(entries, e)
			}
		}
		if len(refs) < want {
			break // the index has no more
		}
		after = &refs[len(refs)-1]
	}
	return entries, nil
}

// ref is a read's reference in the index: its record's key.
type ref struct {
	time   time.Time
	stream string
	seq    int64
}

// refKey identifies a record: its primary key, the time in µs as stored.
type refKey struct {
	stream string
	seq    int64
	micros int64
}

func (r ref) key() refKey { return refKey{r.stream, r.seq, r.time.UnixMicro()} }

func (s *Store) refs(ctx context.Context, conn *pgxpool.Conn, q Query, after *ref, limit int) ([]ref, error) {
	var t, stream, seq any
	if after != nil {
		t, stream, seq = after.time, after.stream, after.seq
		// A bare time (q.Before) is (time, "", 0): every read at that
		// time sorts above it, so "strictly before the time" holds.
	}
	rows, err := conn.Query(ctx, RefsSQL, q.Hash, t, stream, seq, q.Now, limit)
	if err != nil {
		return nil, s.fail(err)
	}
	var out []ref
	for rows.Next() {
		var r ref
		if err := rows.Scan(&r.time, &r.stream, &r.seq); err != nil {
			rows.Close()
			return nil, s.fail(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail(err)
	}
	return out, nil
}

func (s *Store) records(ctx context.Context, conn *pgxpool.Conn, q Query, refs []ref) (map[refKey]Entry, error) {
	times := make([]time.Time, len(refs))
	streams := make([]string, len(refs))
	seqs := make([]int64, len(refs))
	for i, r := range refs {
		times[i], streams[i], seqs[i] = r.time, r.stream, r.seq
	}
	rows, err := conn.Query(ctx, RecordsSQL, times, streams, seqs, ReadOperations, q.Now, q.Hash)
	if err != nil {
		return nil, s.fail(err)
	}
	found := make(map[refKey]Entry, len(refs))
	for rows.Next() {
		var r ref
		var e Entry
		if err := rows.Scan(&r.time, &r.stream, &r.seq, &e.Agency, &e.AgencyName, &e.Operation, &e.Fields, &e.Purpose, &e.CaseReference); err != nil {
			rows.Close()
			return nil, s.fail(err)
		}
		e.Time = r.time
		if e.Fields == nil {
			e.Fields = []string{}
		}
		found[r.key()] = e
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail(err)
	}
	return found, nil
}

// fail describes a failed history query, without the password.
func (s *Store) fail(err error) error {
	return fmt.Errorf("pghistory: reading the history: %w", redacted(err, s.pool.Config().ConnConfig.Password))
}

// Close closes the pool.
func (s *Store) Close() { s.pool.Close() }

// redacted is err without the password in its message.
func redacted(err error, password string) error {
	if password == "" {
		return err
	}
	msg := err.Error()
	if !strings.Contains(msg, password) {
		return err
	}
	return &redactedError{msg: strings.ReplaceAll(msg, password, "xxxxx"), err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
