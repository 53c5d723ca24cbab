package pgsink

import (
	"context"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"

	"github.com/popconnect/popconnect/gateway/audit/verify"
)

// Source yields the table's records to a verifier, ordered by stream and
// seq, as the rows arrive. Each entry carries its stream and seq columns,
// and names the other columns that disagree with its record.
type Source struct {
	ctx     context.Context
	conn    *pgx.Conn
	rows    pgx.Rows
	secrets []string
}

var _ verify.Source = (*Source)(nil)

// NewSource connects to the database at url and starts reading. Close it.
// Error messages do not show the URL's password.
func NewSource(ctx context.Context, url string) (*Source, error) {
	conn, secrets, err := connectURL(ctx, url)
	if err != nil {
		return nil, err
	}
	rows, err := conn.Query(ctx, ScanQuery)
	if err != nil {
		_ = conn.Close(context.WithoutCancel(ctx))
		return nil, &secretError{msg: redact("pgsink: reading the audit records: "+err.Error(), secrets), err: err}
	}
	return &Source{ctx: ctx, conn: conn, rows: rows, secrets: secrets}, nil
}

// Next implements verify.Source.
func (s *Source) Next() (verify.Entry, error) {
	if !s.rows.Next() {
		if err := s.rows.Err(); err != nil {
			return verify.Entry{}, &secretError{msg: redact("pgsink: reading the audit records: "+err.Error(), s.secrets), err: err}
		}
		return verify.Entry{}, io.EOF
	}
	r, err := scanRow(s.rows)
	if err != nil {
		return verify.Entry{}, err
	}
	e := verify.Entry{
		Stream: r.Stream, Seq: r.Seq, Body: r.Record, Chain: []byte(r.Chain),
		Loc: fmt.Sprintf("row stream=%s seq=%d", r.Stream, r.Seq),
	}
	if err := r.CheckColumns(); err != nil {
		e.Mismatch = err.Error()
	}
	return e, nil
}

// Close ends the read and the connection.
func (s *Source) Close() error {
	s.rows.Close()
	return s.conn.Close(context.WithoutCancel(s.ctx))
}
