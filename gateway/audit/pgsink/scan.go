package pgsink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Row is one stored record: its columns as they are in the table.
type Row struct {
	Time             time.Time
	Stream           string
	Seq              uint64
	RequestID        string
	Agency           string
	Operation        string
	NationalIDHashes []string
	FieldsReturned   []string
	Status           int
	Reason           string
	// Record is the record's bytes without its chain field: what the chain
	// covers (audit.Batch.Body).
	Record []byte
	// Chain is the record's chain value (hex).
	Chain string
	// Purpose and CaseReference are '' when the record has none.
	Purpose       string
	CaseReference string
	// AgencyName is '' when the record has none; DiscloseAfter is nil
	// when the record has none (disclosed at once).
	AgencyName    string
	DiscloseAfter *time.Time
}

// Line returns the record as the file sink writes it (without the
// newline): Record with its chain field put back, the form the verifier
// reads from a file.
func (r *Row) Line() []byte {
	if len(r.Record) == 0 || r.Record[len(r.Record)-1] != '}' {
		return append([]byte(nil), r.Record...)
	}
	line := make([]byte, 0, len(r.Record)+len(`,"chain":""}`)+len(r.Chain))
	line = append(line, r.Record[:len(r.Record)-1]...)
	line = append(line, `,"chain":"`...)
	line = append(line, r.Chain...)
	return append(line, `"}`...)
}

// ScanQuery is the query Scan runs: every record, in (stream, seq) order,
// which the primary key's index gives without a sort.
const ScanQuery = `SELECT time, stream, seq, request_id, agency, operation, national_id_hashes,
	fields_returned, status, reason, record, chain, purpose, case_reference, agency_name, disclose_after FROM ` + Table + ` ORDER BY stream, seq, time`

// Scan calls fn with every record in the table, ordered by stream and then
// seq, as the rows arrive (the table is never held in memory). It stops at
// fn's first error and returns it. A verifier checks each stream's chain
// over Row.Record (or Row.Line) and, with Row.CheckColumns, that the columns
// say what the record says.
func Scan(ctx context.Context, conn *pgx.Conn, fn func(Row) error) error {
	rows, err := conn.Query(ctx, ScanQuery)
	if err != nil {
		return fmt.Errorf("pgsink: reading the audit records: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanRow(rows)
		if err != nil {
			return err
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42P01" {
			return fmt.Errorf("pgsink: the database has no %s table: %w", Table, err)
		}
		return fmt.Errorf("pgsink: reading the audit records: %w", err)
	}
	return nil
}

// scanRow reads the current row of ScanQuery.
func scanRow(rows pgx.Rows) (Row, error) {
	var r Row
	var seq int64
	var status int32
	if err := rows.Scan(&r.Time, &r.Stream, &seq, &r.RequestID, &r.Agency, &r.Operation,
		&r.NationalIDHashes, &r.FieldsReturned, &status, &r.Reason, &r.Record, &r.Chain, &r.Purpose, &r.CaseReference, &r.AgencyName, &r.DiscloseAfter); err != nil {
		return Row{}, fmt.Errorf("pgsink: reading an audit record: %w", err)
	}
	r.Seq, r.Status = uint64(seq), int(status)
	return r, nil
}

// connectURL connects to the database at url for reading, and returns the
// strings to remove from error messages (the URL's password).
func connectURL(ctx context.Context, url string) (*pgx.Conn, []string, error) {
	secrets := guessSecrets(url)
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, nil, errors.New(redact("pgsink: the audit database URL is not valid: "+err.Error(), secrets))
	}
	secrets = append(secrets, cfg.Password)
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, nil, &secretError{msg: redact("pgsink: connecting to the audit database: "+err.Error(), secrets), err: err}
	}
	return conn, secrets, nil
}

// ScanURL connects to the database at url, runs Scan, and disconnects.
// Error messages do not show the URL's password.
func ScanURL(ctx context.Context, url string, fn func(Row) error) error {
	conn, secrets, err := connectURL(ctx, url)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	err = Scan(ctx, conn, fn)
	var pgErr *pgconn.PgError
	if err != nil && (errors.As(err, &pgErr) || conn.IsClosed()) {
		return &secretError{msg: redact(err.Error(), secrets), err: err}
	}
	return err
}

// recordFields are the fields of a record's JSON that have columns.
type recordFields struct {
	Time           string          `json:"time"`
	RequestID      string          `json:"requestId"`
	Agency         string          `json:"agency"`
	Operation      string          `json:"operation"`
	NationalIDHash json.RawMessage `json:"nationalIdHash"`
	FieldsReturned []string        `json:"fieldsReturned"`
	Status         int             `json:"status"`
	Reason         string          `json:"reason"`
	Stream         string          `json:"stream"`
	Seq            uint64          `json:"seq"`
	Purpose        string          `json:"purpose"`
	CaseReference  string          `json:"caseReference"`
	AgencyName     string          `json:"agencyName"`
	DiscloseAfter  string          `json:"discloseAfter"`
}

// CheckColumns reports whether the row's columns hold what its record
// says: a column edited in place (which the chain does not cover) is an
// error naming the column. It does not check the chain.
func (r *Row) CheckColumns() error {
	var f recordFields
	if err := json.Unmarshal(r.Record, &f); err != nil {
		return fmt.Errorf("record is not valid JSON: %w", err)
	}
	var hashes []string
	switch h := bytes.TrimSpace(f.NationalIDHash); {
	case len(h) == 0 || string(h) == "null":
	case h[0] == '"':
		var one string
		if err := json.Unmarshal(h, &one); err != nil {
			return fmt.Errorf("record's nationalIdHash: %w", err)
		}
		hashes = []string{one}
	default:
		if err := json.Unmarshal(h, &hashes); err != nil {
			return fmt.Errorf("record's nationalIdHash: %w", err)
		}
	}
	t, err := time.Parse(time.RFC3339Nano, f.Time)
	if err != nil {
		return fmt.Errorf("record's time: %w", err)
	}
	var bad []string
	check := func(col string, ok bool) {
		if !ok {
			bad = append(bad, col)
		}
	}
	check("time", t.Equal(r.Time))
	check("stream", f.Stream == r.Stream)
	check("seq", f.Seq == r.Seq)
	check("request_id", Text(f.RequestID) == r.RequestID)
	check("agency", Text(f.Agency) == r.Agency)
	check("operation", Text(f.Operation) == r.Operation)
	check("national_id_hashes", slices.Equal(texts(hashes), r.NationalIDHashes))
	check("fields_returned", slices.Equal(texts(f.FieldsReturned), r.FieldsReturned))
	check("status", f.Status == r.Status)
	check("reason", Text(f.Reason) == r.Reason)
	check("purpose", Text(f.Purpose) == r.Purpose)
	check("case_reference", Text(f.CaseReference) == r.CaseReference)
	check("agency_name", Text(f.AgencyName) == r.AgencyName)
	if f.DiscloseAfter == "" {
		check("disclose_after", r.DiscloseAfter == nil)
	} else {
		d, err := time.Parse(time.RFC3339Nano, f.DiscloseAfter)
		check("disclose_after", err == nil && r.DiscloseAfter != nil && d.Equal(*r.DiscloseAfter))
	}
	if len(bad) > 0 {
		return fmt.Errorf("columns %v differ from the record", bad)
	}
	return nil
}

// texts is ss as the columns hold them (Text of each).
func texts(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = Text(s)
	}
	return out
}
