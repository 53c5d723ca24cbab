package pgsink

import (
	"context"
	"errors"
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
	secrets := guessSecrets(url)
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, errors.New(redact("pgsink: the audit database URL is not valid: "+err.Error(), secrets))
	}
	secrets = append(secrets, cfg.Password)
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, &secretError{msg: redact("pgsink: connecting to the audit database: "+err.Error(), secrets), err: err}
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
	var r Row
	var seq int64
	var status int32
	if err := s.rows.Scan(&r.Time, &r.Stream, &seq, &r.RequestID, &r.Agency, &r.Operation,
		&r.NationalIDHashes, &r.FieldsReturned, &status, &r.Reason, &r.Record, &r.Chain, &r.Purpose, &r.CaseReference, &r.AgencyName, &r.DiscloseAfter); err != nil {
		return verify.Entry{}, fmt.Errorf("pgsink: reading an audit record: %w", err)
	}
	r.Seq, r.Status = uint64(seq), int(status)
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
