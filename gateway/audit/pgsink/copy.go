package pgsink

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/popconnect/popconnect/gateway/audit"
)

// # One message, one transaction, no trigger
//
// A batch goes to the server as one simple-protocol Query holding a COPY
// per day partition of its records and a COPY per month partition of
// their reads, followed at once by every COPY's data: one round trip, and
// one implicit transaction (a Query's statements commit together, or an
// error rolls all of them back). The rows go to the partitions by name:
// the record table's statement trigger (readsDDL) fires only for rows
// inserted through the parent table, so it does not index these rows a
// second time, and without a trigger that captures a transition table
// PostgreSQL inserts the rows in groups rather than one by one, and skips
// the routing of each row to its partition. The trigger stays for rows
// inserted through the parent (older gateways, restored archives).
//
// The rows are encoded here in COPY's binary format rather than by pgx's
// CopyFrom, which boxes every value and streams through a pipe and a
// goroutine per COPY.

// copyStatement is one COPY of a batch and its data.
type copyStatement struct {
	sql     string
	data    []byte
	records bool // a COPY of records (its row count is checked), not of reads
}

// copyPlan holds a batch's COPYs, records first.
type copyPlan struct {
	stmts []copyStatement
	rows  int // records in the batch
}

// recordsColumnList and readsColumnList are the COPYs' column lists.
var (
	recordsColumnList = strings.Join(columns, ", ")
	readsColumnList   = "national_id_hash, time, stream, seq, disclose_after"
)

// pgEpoch is PostgreSQL's timestamp zero, in Unix microseconds.
const pgEpoch = 946684800 * 1000000

// copyHeader is the binary COPY header: signature, flags, extension length.
var copyHeader = []byte("PGCOPY\n\377\r\n\000\000\000\000\000\000\000\000\000")

// planCopy encodes b's records, grouped by day partition, and their reads,
// grouped by month partition, each group in b's order.
func planCopy(b *audit.Batch) *copyPlan {
	p := &copyPlan{rows: len(b.Records)}
	days := map[string]int{}   // partition suffix -> index in p.stmts
	months := map[string]int{} // the same, for the reads
	var readStmts []copyStatement
	for i := range b.Records {
		r := b.Records[i].Record
		day := r.Time.UTC().Format("20060102")
		k, ok := days[day]
		if !ok {
			k = len(p.stmts)
			days[day] = k
			p.stmts = append(p.stmts, copyStatement{
				sql:     "COPY " + Table + "_" + day + " (" + recordsColumnList + ") FROM STDIN BINARY",
				data:    append(make([]byte, 0, 1024*len(b.Records)), copyHeader...),
				records: true,
			})
		}
		st := &p.stmts[k]
		st.data = appendRecordRow(st.data, b, i)

		hashes := readHashes(r)
		if len(hashes) == 0 {
			continue
		}
		month := day[:6]
		m, ok := months[month]
		if !ok {
			m = len(readStmts)
			months[month] = m
			readStmts = append(readStmts, copyStatement{
				sql:  "COPY " + ReadsTable + "_" + month + " (" + readsColumnList + ") FROM STDIN BINARY",
				data: append(make([]byte, 0, 256*len(b.Records)), copyHeader...),
			})
		}
		rs := &readStmts[m]
		for _, h := range hashes {
			rs.data = appendReadRow(rs.data, h, r, b.Stream, b.Records[i].Seq)
		}
	}
	p.stmts = append(p.stmts, readStmts...)
	for i := range p.stmts {
		p.stmts[i].data = binary.BigEndian.AppendUint16(p.stmts[i].data, 0xffff) // trailer: -1
	}
	return p
}

// readHashes are the hashes a record adds to the index of reads, as the
// trigger does: each distinct stored hash of a successful read, none for
// anything else.
func readHashes(r *audit.Record) []string {
	if r.Status != 200 || !isRead(Text(r.Operation)) {
		return nil
	}
	stored := storedHashes(r)
	out := make([]string, 0, len(stored))
	for _, h := range stored {
		h = Text(h)
		dup := false
		for _, o := range out {
			if o == h {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, h)
		}
	}
	return out
}

func isRead(op string) bool {
	for _, r := range ReadOperations {
		if op == r {
			return true
		}
	}
	return false
}

// storedHashes are the hashes the national_id_hashes column holds.
func storedHashes(r *audit.Record) []string {
	hashes := r.NationalIDHashes
	if !r.Batch && len(hashes) > 1 {
		hashes = hashes[:1] // the record holds the first only
	}
	return hashes
}

// appendRecordRow appends record i of b as a binary COPY row, its fields
// in columns' order.
func appendRecordRow(buf []byte, b *audit.Batch, i int) []byte {
	r := b.Records[i].Record
	buf = binary.BigEndian.AppendUint16(buf, uint16(len(columns)))
	buf = appendTime(buf, r.Time)
	buf = appendText(buf, b.Stream)
	buf = appendInt64(buf, int64(b.Records[i].Seq))
	buf = appendText(buf, Text(r.RequestID))
	buf = appendText(buf, Text(r.Agency))
	buf = appendText(buf, Text(r.Operation))
	buf = appendTextArray(buf, storedHashes(r))
	buf = appendTextArray(buf, r.FieldsReturned)
	buf = binary.BigEndian.AppendUint32(buf, 4)
	buf = binary.BigEndian.AppendUint32(buf, uint32(int32(r.Status)))
	buf = appendText(buf, Text(r.Reason))
	buf = appendBytes(buf, b.Body(i))
	buf = appendText(buf, b.Chain(i))
	buf = appendText(buf, Text(r.Purpose))
	buf = appendText(buf, Text(r.CaseReference))
	buf = appendText(buf, Text(r.AgencyName))
	return appendNullableTime(buf, r.DiscloseAfter)
}

// appendReadRow appends one row of the index of reads.
func appendReadRow(buf []byte, hash string, r *audit.Record, stream string, seq uint64) []byte {
	buf = binary.BigEndian.AppendUint16(buf, 5)
	buf = appendText(buf, hash)
	buf = appendTime(buf, r.Time)
	buf = appendText(buf, stream)
	buf = appendInt64(buf, int64(seq))
	return appendNullableTime(buf, r.DiscloseAfter)
}

// appendTime appends a timestamptz: microseconds since 2000-01-01 UTC,
// the time truncated to the microsecond as the record's is.
func appendTime(buf []byte, t time.Time) []byte {
	return appendInt64(buf, t.UnixMicro()-pgEpoch)
}

// appendNullableTime appends t, or NULL when it is zero (disclose_after).
func appendNullableTime(buf []byte, t time.Time) []byte {
	if t.IsZero() {
		return binary.BigEndian.AppendUint32(buf, 0xffffffff) // NULL
	}
	return appendTime(buf, t)
}

func appendInt64(buf []byte, v int64) []byte {
	buf = binary.BigEndian.AppendUint32(buf, 8)
	return binary.BigEndian.AppendUint64(buf, uint64(v))
}

func appendText(buf []byte, s string) []byte {
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(s)))
	return append(buf, s...)
}

func appendBytes(buf, s []byte) []byte {
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(s)))
	return append(buf, s...)
}

// textOID is the type of a text[] column's elements.
const textOID = 25

// appendTextArray appends a one-dimensional text[] (no NULLs), each
// element through Text; an empty array has no dimension, as PostgreSQL
// writes it.
func appendTextArray(buf []byte, ss []string) []byte {
	lenAt := len(buf)
	buf = binary.BigEndian.AppendUint32(buf, 0) // the field's length, set below
	if len(ss) == 0 {
		buf = binary.BigEndian.AppendUint32(buf, 0) // dimensions
	} else {
		buf = binary.BigEndian.AppendUint32(buf, 1)
	}
	buf = binary.BigEndian.AppendUint32(buf, 0) // no NULLs
	buf = binary.BigEndian.AppendUint32(buf, textOID)
	if len(ss) > 0 {
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(ss)))
		buf = binary.BigEndian.AppendUint32(buf, 1) // lower bound
		for _, s := range ss {
			buf = appendText(buf, Text(s))
		}
	}
	binary.BigEndian.PutUint32(buf[lenAt:], uint32(len(buf)-lenAt-4))
	return buf
}

// copyBatch sends p on conn as one Query and reads its outcome. It
// returns the records stored; an error wraps audit.ErrOutcomeUnknown when
// the batch may have committed, and is a *pgconn.PgError when the server
// refused it (nothing stored).
func copyBatch(ctx context.Context, conn *pgx.Conn, p *copyPlan) (int, error) {
	pc := conn.PgConn()
	if pc.IsBusy() {
		return 0, errors.New("the connection is busy")
	}
	var sql strings.Builder
	for i, st := range p.stmts {
		if i > 0 {
			sql.WriteString("; ")
		}
		sql.WriteString(st.sql)
	}
	fe := pc.Frontend()
	fe.Send(&pgproto3.Query{String: sql.String()})
	for _, st := range p.stmts {
		fe.Send(&pgproto3.CopyData{Data: st.data})
		fe.Send(&pgproto3.CopyDone{})
	}
	// The server reads a COPY's data after its CopyInResponse; sending it
	// at once is allowed (and data after a failed statement is dropped).
	if dl, ok := ctx.Deadline(); ok {
		_ = pc.Conn().SetWriteDeadline(dl)
	}
	err := fe.Flush()
	_ = pc.Conn().SetWriteDeadline(time.Time{})
	if err != nil {
		return 0, fmt.Errorf("%w: sending the batch: %w", audit.ErrOutcomeUnknown, err)
	}
	stored, stmt := 0, 0
	var pgErr *pgconn.PgError
	for {
		msg, err := pc.ReceiveMessage(ctx)
		if err != nil {
			if pgErr != nil {
				return 0, pgErr // the error rolled the batch back
			}
			return 0, fmt.Errorf("%w: reading the outcome: %w", audit.ErrOutcomeUnknown, err)
		}
		switch msg := msg.(type) {
		case *pgproto3.CommandComplete:
			if stmt < len(p.stmts) && p.stmts[stmt].records {
				stored += int(pgconn.NewCommandTag(string(msg.CommandTag)).RowsAffected())
			}
			stmt++
		case *pgproto3.ErrorResponse:
			if pgErr == nil {
				pgErr = pgconn.ErrorResponseToPgError(msg)
			}
		case *pgproto3.ReadyForQuery:
			if pgErr != nil {
				return 0, pgErr
			}
			if stmt != len(p.stmts) || stored != p.rows {
				return 0, fmt.Errorf("%w: the database completed %d of %d COPYs, %d of %d audit records",
					audit.ErrOutcomeUnknown, stmt, len(p.stmts), stored, p.rows)
			}
			return stored, nil
		}
	}
}
