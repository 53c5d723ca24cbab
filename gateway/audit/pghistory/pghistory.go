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

// PageSQL selects a page (exported for bench/auditstore's EXPLAIN). The
// index of reads gives the citizen's reads newest first, one B-tree range
// per month; each is joined to its record by the record table's primary
// key, and only a record that is still there, is a read of this citizen
// and succeeded counts (the index is derived data: the records are the
// evidence). The LATERAL join fixes the plan's shape, index first and the
// records one by one until the page is full, whatever the statistics say:
// a plan that scans the records first costs a full scan of the table.
// stream and seq order reads of the same microsecond, so that the order
// is stable.
const PageSQL = `SELECT r.time, r.agency, r.agency_name, r.operation, r.fields_returned, r.purpose, r.case_reference
	FROM ` + pgsink.ReadsTable + ` c
	CROSS JOIN LATERAL (
	    SELECT time, agency, agency_name, operation, fields_returned, purpose, case_reference
	    FROM ` + pgsink.Table + `
	    WHERE stream = c.stream AND seq = c.seq AND time = c.time
	      AND status = 200
	      AND operation = ANY($2::text[])
	      AND (disclose_after IS NULL OR disclose_after <= $4)
	      AND $1 = ANY(national_id_hashes)
	    OFFSET 0
	) r
	WHERE c.national_id_hash = $1
	  AND ($3::timestamptz IS NULL OR c.time < $3)
	  AND (c.disclose_after IS NULL OR c.disclose_after <= $4)
	ORDER BY c.time DESC, c.stream DESC, c.seq DESC
	LIMIT $5`

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
	// One plan per connection, made at the first query: the query's shape
	// is fixed (PageSQL), and a plan made for each citizen spends its time
	// planning every daily partition of the record table, which run-time
	// pruning then skips (bench/auditstore: 8 ms planning for 0.4 ms of
	// execution over 31 partitions).
	cfg.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_generic_plan"
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
func (s *Store) History(ctx context.Context, q Query) ([]Entry, error) {
	if q.Limit < 1 {
		return nil, errors.New("pghistory: the limit must be at least 1")
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var before any
	if !q.Before.IsZero() {
		before = q.Before
	}
	rows, err := s.pool.Query(ctx, PageSQL, q.Hash, ReadOperations, before, q.Now, q.Limit)
	if err != nil {
		return nil, fmt.Errorf("pghistory: reading the history: %w", redacted(err, s.pool.Config().ConnConfig.Password))
	}
	entries := []Entry{}
	for rows.Next() {
		var e Entry
		if err := rows.Scan(&e.Time, &e.Agency, &e.AgencyName, &e.Operation, &e.Fields, &e.Purpose, &e.CaseReference); err != nil {
			rows.Close()
			return nil, fmt.Errorf("pghistory: reading the history: %w", err)
		}
		if e.Fields == nil {
			e.Fields = []string{}
		}
		entries = append(entries, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pghistory: reading the history: %w", redacted(err, s.pool.Config().ConnConfig.Password))
	}
	return entries, nil
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
