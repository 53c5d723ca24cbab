// Package pgsink stores the gateway's audit records in PostgreSQL.
//
// # Schema
//
// The sink creates its schema itself, idempotently, under a transaction
// advisory lock so that gateway replicas starting together do not race:
//
//	CREATE TABLE popconnect_audit_records (
//	    time               timestamptz NOT NULL, -- the record's time (UTC, µs)
//	    stream             text COLLATE "C" NOT NULL, -- 32 hex: one gateway process (compared bytewise, whatever the database's locale)
//	    seq                bigint      NOT NULL, -- 1, 2, … within the stream
//	    request_id         text        NOT NULL,
//	    agency             text        NOT NULL,
//	    operation          text        NOT NULL,
//	    national_id_hashes text[]      NOT NULL, -- one (Lookup, Verify), several (BatchLookup) or none
//	    fields_returned    text[]      NOT NULL,
//	    status             integer     NOT NULL,
//	    reason             text        NOT NULL, -- '' when none
//	    record             text        NOT NULL, -- the record's exact bytes, without its chain field
//	    chain              text        NOT NULL, -- hex HMAC-SHA256 over the previous chain and record
//	    purpose            text        NOT NULL DEFAULT '', -- the connection's purpose, '' when none
//	    case_reference     text        NOT NULL DEFAULT '', -- Popconnect-Case-Reference, '' when none
//	    agency_name        text        NOT NULL DEFAULT '', -- the connection's displayName, '' when none
//	    disclose_after     timestamptz,                     -- when the read may be disclosed; NULL: at once
//	    PRIMARY KEY (stream, seq, time)
//	) PARTITION BY RANGE (time);
//
// with one partition per UTC day, popconnect_audit_records_YYYYMMDD, FOR
// VALUES FROM (day 00:00 UTC) TO (next day 00:00 UTC), and the citizens'
// reads index, ReadsTable (see reads.go), with one partition per UTC month.
// The sink creates the partitions of the days (and months) a batch
// touches, and of the day after, before it stores the batch; dropping old
// partitions is retention's business.
//
// The primary key's index, (stream, seq, time) in every partition, serves
// Last (the newest seq of a stream) and the verifier's scan in (stream,
// seq) order. PostgreSQL cannot make (stream, seq) alone unique across
// partitions; the chain and the verifier catch a seq stored twice.
//
// "Every read of this citizen" is answered from ReadsTable, which the
// sink fills in the same transaction as the records (reads.go).
//
// record holds the bytes the chain covers; the columns repeat the record's
// fields for queries. Strings in columns are the record's strings with each
// byte that is not UTF-8, and each NUL, replaced by U+FFFD (PostgreSQL text
// holds neither), as the record's JSON encoding does for invalid bytes;
// Row.CheckColumns compares the two.
//
// # Privileges
//
// The gateway's role needs CREATE on its schema (the table once, a
// partition a day; PostgreSQL 15 no longer grants it to everyone on
// public), and INSERT and SELECT on what it creates, which it owns. Ending
// its own earlier backend (see below) needs no more: a role may end its
// own backends.
//
// # Writes
//
// Store writes a batch in one Query message: a COPY per day partition of
// its records and per month partition of their index rows, sent with
// their data in one round trip, one implicit transaction (all of the
// batch or none of it; copy.go). The connection that writes a stream holds a
// session advisory lock keyed by the stream; a new connection (after an
// error) takes it over, ending the old connection's backend if it is still
// there, so that Last never reads while an earlier COPY of the stream may
// still commit.
package pgsink

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/popconnect/popconnect/gateway/audit"
	"github.com/popconnect/popconnect/gateway/rawio"
)

// Table is the audit table; its partitions are Table_YYYYMMDD.
const Table = "popconnect_audit_records"

// schemaLockKey is the advisory lock key held (for a transaction) around
// the schema's DDL: "popaudit" in ASCII.
const schemaLockKey int64 = 0x706f7061_75646974

// idleCheck: a connection unused for longer is pinged before a COPY, so
// that a server restarted meanwhile costs a reconnect rather than a
// batch whose outcome is unknown.
const idleCheck = time.Second

// closeTimeout bounds the goodbye to a connection being dropped.
const closeTimeout = time.Second

var schemaDDL = `
CREATE TABLE IF NOT EXISTS ` + Table + ` (
    time               timestamptz NOT NULL,
    stream             text COLLATE "C" NOT NULL,
    seq                bigint      NOT NULL,
    request_id         text        NOT NULL,
    agency             text        NOT NULL,
    operation          text        NOT NULL,
    national_id_hashes text[]      NOT NULL,
    fields_returned    text[]      NOT NULL,
    status             integer     NOT NULL,
    reason             text        NOT NULL,
    record             text        NOT NULL,
    chain              text        NOT NULL,
    PRIMARY KEY (stream, seq, time)
) PARTITION BY RANGE (time);
` + columnsAddedDDL + storageDDL + readsDDL

// columnsAddedDDL adds the columns that came after the table's first
// version, so that a table made by an older gateway takes them: this is
// how the schema grows (a column added with a constant default is cheap).
const columnsAddedDDL = `ALTER TABLE ` + Table + `
    ADD COLUMN IF NOT EXISTS purpose text NOT NULL DEFAULT '',
    ADD COLUMN IF NOT EXISTS case_reference text NOT NULL DEFAULT '',
    ADD COLUMN IF NOT EXISTS agency_name text NOT NULL DEFAULT '',
    ADD COLUMN IF NOT EXISTS disclose_after timestamptz;
`

// storageDDL stores the two columns that grow with a batch lookup's IDs
// (record, national_id_hashes: about 7 kB for 100 IDs) out of line without
// compression. Their bytes are hex hashes, which PostgreSQL's default
// compression (pglz) cannot shrink by the quarter it requires, so it
// tried and gave up on every such row: 14 % of the database's
// instructions per record in bench/auditstore's mix, for nothing. A
// table made by an older gateway is changed too (a change of metadata,
// which recurses to the existing partitions; new partitions inherit it);
// its rows stay as they are. Checked first, so that the ALTER (and its
// lock) happens once, not at every connect.
const storageDDL = `DO $do$ BEGIN
    IF EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = '` + Table + `'::regclass
               AND attname IN ('record', 'national_id_hashes') AND attstorage <> 'e') THEN
        ALTER TABLE ` + Table + ` ALTER COLUMN record SET STORAGE EXTERNAL,
            ALTER COLUMN national_id_hashes SET STORAGE EXTERNAL;
    END IF;
END $do$;
`

// columns are COPY's columns, in appendRecordRow's order.
var columns = []string{"time", "stream", "seq", "request_id", "agency", "operation",
	"national_id_hashes", "fields_returned", "status", "reason", "record", "chain", "purpose", "case_reference",
	"agency_name", "disclose_after"}

// Option configures a Sink.
type Option func(*Sink)

// WithTimeout bounds each Store and Last, connecting included (default
// audit.DefaultStallTimeout): the Logger gives them no deadline of its own.
func WithTimeout(d time.Duration) Option {
	return func(s *Sink) { s.timeout = d }
}

// WithApplicationName sets the connection's application_name, which the
// database shows in pg_stat_activity (default "popconnect-gateway"; a name
// in the URL wins).
func WithApplicationName(name string) Option {
	return func(s *Sink) { s.appName = name }
}

// Sink is an audit.Sink writing to PostgreSQL over one connection. Like
// every audit.Sink, it is called from one goroutine at a time.
type Sink struct {
	cfg     *pgx.ConnConfig
	secrets []string // removed from every error message
	appName string
	timeout time.Duration

	conn     *pgx.Conn // nil after an error: the next call reconnects
	lastUsed time.Time
	locked   map[string]bool // streams whose lock conn holds
	schema   bool            // the schema was created (or found)
	days     map[string]bool // partitions created (or found): "20261202", and "202612" of ReadsTable
	enc      copyEncoder     // the batch being stored, its buffers kept for the next
}

var _ audit.Sink = (*Sink)(nil)

// Open connects to the database at url (postgres://user:password@host/db
// or key=value, as libpq) and creates the schema if it is not there. After
// Open, a lost connection is made again by the next Store or Last.
func Open(ctx context.Context, url string, opts ...Option) (*Sink, error) {
	s, err := New(url, opts...)
	if err != nil {
		return nil, err
	}
	if _, err := s.connect(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// New is Open without connecting: the first Store connects and creates the
// schema. A gateway starts with it, so that a database down at its start
// makes it unready (and ready again when the database is back) rather
// than fail to start.
func New(url string, opts ...Option) (*Sink, error) {
	s := &Sink{appName: "popconnect-gateway", days: map[string]bool{}, timeout: audit.DefaultStallTimeout}
	for _, o := range opts {
		o(s)
	}
	if s.timeout <= 0 {
		return nil, errors.New("pgsink: the timeout must be positive")
	}
	secrets := guessSecrets(url)
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, errors.New(redact("pgsink: the audit database URL is not valid: "+err.Error(), secrets))
	}
	s.cfg = cfg
	s.secrets = append(secrets, cfg.Password)
	if _, ok := cfg.RuntimeParams["application_name"]; !ok && s.appName != "" {
		cfg.RuntimeParams["application_name"] = s.appName
	}
	// No JIT compilation on the audit path: Last's lookup of a stream in
	// every daily partition can pass jit_above_cost on a large table, and
	// compiling costs up to a second (seen on the history's query at 10
	// million records) while requests wait.
	if _, ok := cfg.RuntimeParams["jit"]; !ok {
		cfg.RuntimeParams["jit"] = "off"
	}
	cfg.DialFunc = rawDial(cfg.DialFunc)
	return s, nil
}

// rawDial makes dial's TCP connections rawio.Conns: each batch is a write
// and a few reads, and through net.Conn every one of them is a blocking
// system call for the runtime, which keeps waking its monitor thread
// into 20 µs polling (see rawio). TLS, if asked for, runs over the
// wrapped connection; a Unix socket is left as it is.
func rawDial(dial pgconn.DialFunc) pgconn.DialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return rawio.Wrap(c), nil
	}
}

// Name implements audit.Sink.
func (s *Sink) Name() string { return "postgres" }

// Store implements audit.Sink: the batch in one transaction, all or nothing. An
// error that leaves the outcome unknown (the connection lost, or ctx done,
// after the rows were sent) wraps audit.ErrOutcomeUnknown; any other error
// means nothing was stored.
// An empty batch checks that the database can be reached.
func (s *Sink) Store(ctx context.Context, b *audit.Batch) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if len(b.Records) == 0 {
		_, err := s.connect(ctx)
		return 0, err
	}
	n, err, retry := s.store(ctx, b)
	if retry {
		// A partition or the table was dropped behind the sink's back:
		// it made them again, and the batch is tried once more.
		n, err, _ = s.store(ctx, b)
	}
	return n, err
}

func (s *Sink) store(ctx context.Context, b *audit.Batch) (stored int, err error, retry bool) {
	conn, err := s.connect(ctx)
	if err != nil {
		return 0, err, false
	}
	if err := s.lockStream(ctx, conn, b.Stream); err != nil {
		s.drop()
		return 0, err, false
	}
	if err := s.ensurePartitions(ctx, conn, b); err != nil {
		s.drop()
		return 0, err, false
	}
	s.enc.encode(b)
	n, err := copyBatch(ctx, conn, &s.enc)
	s.enc.release()
	s.lastUsed = time.Now()
	if err == nil {
		return n, nil, false
	}
	var pgErr *pgconn.PgError
	if !errors.Is(err, audit.ErrOutcomeUnknown) && errors.As(err, &pgErr) {
		// The server refused the batch: its transaction was rolled back.
		switch pgErr.Code {
		case "23514": // check_violation: a row outside its partition
			s.days, retry = map[string]bool{}, true
		case "42P01": // undefined_table: a partition (or the table) was dropped
			s.days, s.schema, retry = map[string]bool{}, false, true
		}
		if pgErr.SeverityUnlocalized != "ERROR" || conn.IsClosed() {
			s.drop()
		}
		return 0, s.wrap("storing audit records", err), retry
	}
	s.drop()
	return 0, s.wrap("storing audit records", err), false
}

// Last implements audit.Sink. It first takes the stream's lock, so that a
// COPY sent on an earlier connection has committed or failed when it reads.
func (s *Sink) Last(ctx context.Context, stream string) (uint64, string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	conn, err := s.connect(ctx)
	if err != nil {
		return 0, "", err
	}
	if err := s.lockStream(ctx, conn, stream); err != nil {
		s.drop()
		return 0, "", err
	}
	var seq int64
	var chain string
	err = conn.QueryRow(ctx, `SELECT seq, chain FROM `+Table+` WHERE stream = $1 ORDER BY seq DESC LIMIT 1`, stream).Scan(&seq, &chain)
	s.lastUsed = time.Now()
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return 0, "", nil
	case err != nil:
		s.drop()
		return 0, "", s.wrap("reading the last audit record", err)
	}
	return uint64(seq), chain, nil
}

// Close implements audit.Sink.
func (s *Sink) Close() error {
	s.drop()
	return nil
}

// connect returns the connection, made anew after an error, and makes sure
// the schema exists.
func (s *Sink) connect(ctx context.Context) (*pgx.Conn, error) {
	if s.conn != nil && !s.conn.IsClosed() && time.Since(s.lastUsed) >= idleCheck {
		if err := s.conn.Ping(ctx); err != nil {
			s.drop()
		} else {
			s.lastUsed = time.Now()
		}
	}
	if s.conn == nil || s.conn.IsClosed() {
		s.drop()
		conn, err := pgx.ConnectConfig(ctx, s.cfg.Copy())
		if err != nil {
			return nil, s.wrap("connecting to the audit database", err)
		}
		s.conn, s.lastUsed, s.locked = conn, time.Now(), map[string]bool{}
	}
	if !s.schema {
		if err := s.ddl(ctx, s.conn, schemaDDL); err != nil {
			s.drop()
			return nil, s.wrap("creating the audit schema", err)
		}
		s.schema = true
	}
	return s.conn, nil
}

// ddl runs statements in one transaction under the schema lock.
func (s *Sink) ddl(ctx context.Context, conn *pgx.Conn, statements string) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, schemaLockKey); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, statements); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// ensurePartitions creates the partitions of the days b's records fall on,
// and of the day after each, unless this sink already did.
func (s *Sink) ensurePartitions(ctx context.Context, conn *pgx.Conn, b *audit.Batch) error {
	var ddl strings.Builder
	var made []string
	var prev time.Time
	for i := range b.Records {
		day := dayOf(b.Records[i].Record.Time)
		if i > 0 && day.Equal(prev) {
			continue // the records of a batch share a day, but for one at midnight
		}
		prev = day
		for _, d := range []time.Time{day, day.AddDate(0, 0, 1)} {
			name := d.Format("20060102")
			if s.days[name] || contains(made, name) {
				continue
			}
			made = append(made, name)
			fmt.Fprintf(&ddl, "CREATE TABLE IF NOT EXISTS %s_%s PARTITION OF %s FOR VALUES FROM ('%s') TO ('%s');\n",
				Table, name, Table, d.Format(time.RFC3339), d.AddDate(0, 0, 1).Format(time.RFC3339))
			// The day's reads go to its month's partition of the index,
			// which must exist before the records' trigger fills it.
			if month, monthDDL := monthPartitionDDL(d); !s.days[month] && !contains(made, month) {
				made = append(made, month)
				ddl.WriteString(monthDDL)
			}
		}
	}
	if len(made) == 0 {
		return nil
	}
	if err := s.ddl(ctx, conn, ddl.String()); err != nil {
		return s.wrap("creating audit partitions "+strings.Join(made, ", "), err)
	}
	s.lastUsed = time.Now()
	for _, name := range made {
		s.days[name] = true
	}
	return nil
}

// lockStream makes conn hold stream's advisory lock. A holder other than
// conn is an earlier connection of this sink (a stream is one process's),
// whose backend may still be finishing a COPY: it is ended, and the lock
// is taken once its transaction has committed or rolled back.
func (s *Sink) lockStream(ctx context.Context, conn *pgx.Conn, stream string) error {
	if s.locked[stream] {
		return nil
	}
	key := streamKey(stream)
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&ok); err != nil {
		return s.wrap("locking the audit stream", err)
	}
	if !ok {
		if _, err := conn.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_locks
			WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
			AND classid = $1 AND objid = $2 AND objsubid = 1 AND granted AND pid <> pg_backend_pid()`,
			uint32(uint64(key)>>32), uint32(key)); err != nil {
			return s.wrap("ending the audit stream's earlier connection", err)
		}
		if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, key); err != nil {
			return s.wrap("locking the audit stream", err)
		}
	}
	s.lastUsed = time.Now()
	s.locked[stream] = true
	return nil
}

// streamKey is the advisory lock key of a stream: its first 64 bits.
func streamKey(stream string) int64 {
	if len(stream) >= 16 {
		if k, err := strconv.ParseUint(stream[:16], 16, 64); err == nil {
			return int64(k)
		}
	}
	// Not a hex stream name (tests): FNV-1a.
	h := uint64(14695981039346656037)
	for i := 0; i < len(stream); i++ {
		h = (h ^ uint64(stream[i])) * 1099511628211
	}
	return int64(h)
}

// drop closes the connection, if any; the next call connects again.
func (s *Sink) drop() {
	if s.conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	_ = s.conn.Close(ctx)
	s.conn, s.locked = nil, nil
}

func dayOf(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// Text is how a record's string is stored in a column: each byte that is
// not UTF-8 (as the record's encoding does) and each NUL (which PostgreSQL
// text cannot hold) becomes U+FFFD.
func Text(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if s[i] == 0 || s[i] >= utf8.RuneSelf {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == 0 || (r == utf8.RuneError && size == 1) {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// secretError is an error whose message had the secrets taken out; its
// Unwrap still gives the cause.
type secretError struct {
	msg string
	err error
}

func (e *secretError) Error() string { return e.msg }
func (e *secretError) Unwrap() error { return e.err }

// wrap describes err, without the connection's secrets.
func (s *Sink) wrap(what string, err error) error {
	return &secretError{msg: redact("pgsink: "+what+": "+err.Error(), s.secrets), err: err}
}

func redact(msg string, secrets []string) string {
	for _, sec := range secrets {
		if sec != "" {
			msg = strings.ReplaceAll(msg, sec, "xxxxx")
		}
	}
	return msg
}

var kvPassword = regexp.MustCompile(`(?:^|\s)(?:ssl)?password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)`)

// guessSecrets finds what may be a password in a connection string, even
// one that does not parse, so that no message shows it.
func guessSecrets(conn string) []string {
	var out []string
	if i := strings.Index(conn, "://"); i >= 0 {
		rest := conn[i+3:]
		if j := strings.IndexAny(rest, "/?#"); j >= 0 {
			rest = rest[:j]
		}
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			if _, pw, ok := strings.Cut(rest[:at], ":"); ok && pw != "" {
				out = append(out, pw)
				if dec, err := url.PathUnescape(pw); err == nil && dec != pw {
					out = append(out, dec)
				}
			}
		}
		if _, query, ok := strings.Cut(conn, "?"); ok {
			if q, err := url.ParseQuery(query); err == nil {
				out = append(out, q["password"]...)
				out = append(out, q["sslpassword"]...)
			}
		}
	}
	for _, m := range kvPassword.FindAllStringSubmatch(conn, -1) {
		v := strings.Trim(m[1], "'")
		out = append(out, v)
	}
	return out
}
