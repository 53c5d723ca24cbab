package pgsink

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
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

// # Nothing allocated per batch
//
// The sink stores one batch at a time, so a copyEncoder keeps its buffers
// from one batch to the next and the whole Query, COPY data included, is
// built in one of them and written with one write. Profiled in the
// gateway bench (bench/README.md), the earlier form (a buffer per COPY
// per batch, a copy of each record's body and chain, pgx's Frontend,
// which copies every message into a buffer it lets go after each flush,
// a context registered for each message read) cost the gateway about
// 100 kB of garbage per batch, and the collector's work to match.

// copyPart is the data of one COPY: the binary header, rows, trailer.
type copyPart struct {
	key  int // the partition: yyyymmdd for records, yyyymm for reads
	data []byte
}

// copyEncoder encodes a batch as the Query copyBatch sends.
type copyEncoder struct {
	days, months   []copyPart // records by day, reads by month; the first nDays, nMonths in use
	nDays, nMonths int
	rows           int      // records in the batch
	hashes         []string // readHashes' result, reused
	wire           []byte   // the messages, as sent
}

// maxKeptBytes bounds a buffer kept for the next batch: one grown by a
// large batch (a sink that was down, and the records owed meanwhile) is
// let go rather than held for good.
const maxKeptBytes = 1 << 20

// recordsColumnList and readsColumnList are the COPYs' column lists.
var (
	recordsColumnList = strings.Join(columns, ", ")
	readsColumnList   = "national_id_hash, time, stream, seq, disclose_after"
)

// pgEpoch is PostgreSQL's timestamp zero, in Unix microseconds.
const pgEpoch = 946684800 * 1000000

// copyHeader is the binary COPY header: signature, flags, extension length.
var copyHeader = []byte("PGCOPY\n\377\r\n\000\000\000\000\000\000\000\000\000")

// statements is how many COPYs the encoded batch holds, records first.
func (e *copyEncoder) statements() int { return e.nDays + e.nMonths }

// encode builds b's Query in e.wire: a COPY of b's records per day
// partition, then one of their reads per month partition, each group in
// b's order, and every COPY's data behind it.
func (e *copyEncoder) encode(b *audit.Batch) {
	e.nDays, e.nMonths, e.rows = 0, 0, len(b.Records)
	day, month := -1, -1 // the part the previous record went to
	for i := range b.Records {
		r := b.Records[i].Record
		y, m, d := r.Time.UTC().Date()
		dayKey := y*10000 + int(m)*100 + d
		if day < 0 || e.days[day].key != dayKey {
			day = e.part(&e.days, &e.nDays, dayKey)
		}
		e.days[day].data = appendRecordRow(e.days[day].data, b, i)

		e.hashes = readHashes(e.hashes[:0], r)
		if len(e.hashes) == 0 {
			continue
		}
		if month < 0 || e.months[month].key != dayKey/100 {
			month = e.part(&e.months, &e.nMonths, dayKey/100)
		}
		for _, h := range e.hashes {
			e.months[month].data = appendReadRow(e.months[month].data, h, r, b.Stream, b.Records[i].Seq)
		}
	}
	clear(e.hashes[:cap(e.hashes)]) // no strings of the requests kept

	w := append(e.wire[:0], 'Q', 0, 0, 0, 0)
	for i := range e.nDays {
		if i > 0 {
			w = append(w, "; "...)
		}
		w = appendCopySQL(w, Table, e.days[i].key, 8, recordsColumnList)
	}
	for i := range e.nMonths {
		w = appendCopySQL(append(w, "; "...), ReadsTable, e.months[i].key, 6, readsColumnList)
	}
	w = append(w, 0)
	binary.BigEndian.PutUint32(w[1:], uint32(len(w)-1))
	for _, p := range [2][]copyPart{e.days[:e.nDays], e.months[:e.nMonths]} {
		for i := range p {
			data := binary.BigEndian.AppendUint16(p[i].data, 0xffff) // trailer: -1
			w = append(w, 'd')
			w = binary.BigEndian.AppendUint32(w, uint32(4+len(data)))
			w = append(w, data...)
			w = append(w, 'c', 0, 0, 0, 4) // CopyDone
			if cap(data) > maxKeptBytes {
				data = nil
			}
			p[i].data = data
		}
	}
	e.wire = w
}

// appendCopySQL appends `COPY table_<key> (columns) FROM STDIN BINARY`,
// key in digits zero-padded to width (as the partitions are named:
// 20261202, 202612), without fmt, which allocates for its arguments.
func appendCopySQL(w []byte, table string, key, width int, columns string) []byte {
	w = append(append(append(w, "COPY "...), table...), '_')
	var digits [20]byte
	d := strconv.AppendInt(digits[:0], int64(key), 10)
	for range width - len(d) {
		w = append(w, '0')
	}
	w = append(append(append(w, d...), " ("...), columns...)
	return append(w, ") FROM STDIN BINARY"...)
}

// release lets go of e.wire if a large batch grew it.
func (e *copyEncoder) release() {
	if cap(e.wire) > maxKeptBytes {
		e.wire = nil
	}
}

// part returns the index of key's part among (*parts)[:*n], adding it
// (its buffer reused, holding the header) when it is not there.
func (e *copyEncoder) part(parts *[]copyPart, n *int, key int) int {
	for i := range *n {
		if (*parts)[i].key == key {
			return i
		}
	}
	if *n == len(*parts) {
		*parts = append(*parts, copyPart{})
	}
	p := &(*parts)[*n]
	p.key, p.data = key, append(p.data[:0], copyHeader...)
	*n++
	return *n - 1
}

// readHashes appends to dst the hashes a record adds to the index of
// reads, as the trigger does: each distinct stored hash of a successful
// read, none for anything else.
func readHashes(dst []string, r *audit.Record) []string {
	if r.Status != 200 || !isRead(Text(r.Operation)) {
		return dst
	}
	start := len(dst)
	for _, h := range storedHashes(r) {
		h = Text(h)
		dup := false
		for _, o := range dst[start:] {
			if o == h {
				dup = true
				break
			}
		}
		if !dup {
			dst = append(dst, h)
		}
	}
	return dst
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
	buf = appendBody(buf, b, i)
	buf = appendChain(buf, b, i)
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

// appendBody appends record i's body as a text field.
func appendBody(buf []byte, b *audit.Batch, i int) []byte {
	lenAt := len(buf)
	buf = b.AppendBody(binary.BigEndian.AppendUint32(buf, 0), i)
	binary.BigEndian.PutUint32(buf[lenAt:], uint32(len(buf)-lenAt-4))
	return buf
}

// appendChain appends record i's chain as a text field.
func appendChain(buf []byte, b *audit.Batch, i int) []byte {
	buf = binary.BigEndian.AppendUint32(buf, audit.ChainHexLen)
	return b.AppendChain(buf, i)
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

// copyBatch sends e's encoded batch on conn as one Query, in one write,
// and reads its outcome. It returns the records stored; an error wraps
// audit.ErrOutcomeUnknown when the batch may have committed, and is a
// *pgconn.PgError when the server refused it (nothing stored).
//
// It is bounded by ctx's deadline (Store always sets one), set on the
// socket for the write and for the reads: pgx would otherwise register
// ctx, and allocate, for each message read.
func copyBatch(ctx context.Context, conn *pgx.Conn, e *copyEncoder) (int, error) {
	pc := conn.PgConn()
	if pc.IsBusy() {
		return 0, errors.New("the connection is busy")
	}
	if err := ctx.Err(); err != nil {
		return 0, err // nothing sent
	}
	dl, _ := ctx.Deadline() // none: the zero time, no deadline
	nc := pc.Conn()
	// The server reads a COPY's data after its CopyInResponse; sending it
	// at once is allowed (and data after a failed statement is dropped).
	_ = nc.SetWriteDeadline(dl)
	_, err := nc.Write(e.wire)
	_ = nc.SetWriteDeadline(time.Time{})
	if err != nil {
		return 0, fmt.Errorf("%w: sending the batch: %w", audit.ErrOutcomeUnknown, err)
	}
	_ = nc.SetReadDeadline(dl)
	defer func() { _ = nc.SetReadDeadline(time.Time{}) }()
	stored, stmt := 0, 0
	var pgErr *pgconn.PgError
	for {
		msg, err := pc.ReceiveMessage(context.Background())
		if err != nil {
			if pgErr != nil {
				return 0, pgErr // the error rolled the batch back
			}
			return 0, fmt.Errorf("%w: reading the outcome: %w", audit.ErrOutcomeUnknown, err)
		}
		switch msg := msg.(type) {
		case *pgproto3.CommandComplete:
			if stmt < e.nDays {
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
			if stmt != e.statements() || stored != e.rows {
				return 0, fmt.Errorf("%w: the database completed %d of %d COPYs, %d of %d audit records",
					audit.ErrOutcomeUnknown, stmt, e.statements(), stored, e.rows)
			}
			return stored, nil
		}
	}
}
