package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// ErrOutcomeUnknown is returned (wrapped) by a Sink's Store when it cannot
// tell whether the batch was stored: a database connection lost after the
// commit was sent. The Logger then asks the sink with Last where the stream
// stands before it seals the next batch, so that sequence numbers are never
// used twice.
var ErrOutcomeUnknown = errors.New("the audit sink did not confirm the write")

// Sink stores sealed records. The Logger calls Store, Last and Close from
// one goroutine at a time.
type Sink interface {
	// Name says what the sink is, for status and logs: "stdout", "file"
	// or "postgres".
	Name() string
	// Store appends b's records, in order. nil means every record is
	// stored (and durable, where the sink promises that). With an error,
	// stored is how many records, a prefix of b, are in the sink all the
	// same: the chain goes on from the last of them; the error wraps
	// ErrOutcomeUnknown when the sink cannot tell.
	Store(ctx context.Context, b *Batch) (stored int, err error)
	// Last returns the seq and chain of the last record of stream in the
	// sink: 0 and "" when it holds none.
	Last(ctx context.Context, stream string) (seq uint64, chain string, err error)
	// Close releases the sink's resources; the Logger does not close a
	// writer it was given.
	Close() error
}

// Sealed is one record of a Batch.
type Sealed struct {
	// Record holds the record's fields, for sinks that store columns. It
	// is valid only during Store.
	Record *Record
	Seq    uint64
	// start and end delimit the record's line in Batch.Lines, newline
	// included.
	start, end int
}

// Batch is a run of consecutive records of one stream.
type Batch struct {
	Stream string
	// Lines holds every record as written to a file: one JSON object per
	// line, its chain field last.
	Lines   []byte
	Records []Sealed
}

// Line returns the i-th record's line without its newline.
func (b *Batch) Line(i int) []byte { return b.Lines[b.Records[i].start : b.Records[i].end-1] }

// Body returns the i-th record's bytes without its chain field: what the
// chain covers, and what a database stores as the record.
func (b *Batch) Body(i int) []byte {
	body, _, _ := SplitChain(b.Line(i))
	return body
}

// AppendBody appends Body(i) to dst: the same bytes, without a copy of
// their own (a database sink encodes every record of every batch).
func (b *Batch) AppendBody(dst []byte, i int) []byte {
	l := b.Line(i)
	return append(append(dst, l[:len(l)-chainSuffixLen]...), '}')
}

// Chain returns the i-th record's chain value (hex).
func (b *Batch) Chain(i int) string { return string(b.chain(i)) }

// AppendChain appends Chain(i) to dst.
func (b *Batch) AppendChain(dst []byte, i int) []byte { return append(dst, b.chain(i)...) }

func (b *Batch) chain(i int) []byte {
	l := b.Line(i)
	return l[len(l)-2-ChainHexLen : len(l)-2]
}

// appendSealed appends the record whose open body (appendRecord's) is
// body as record seq of b's stream, chained after prev, and returns its
// chain value (which stays valid while b is not reset).
func (b *Batch) appendSealed(c *Chainer, seq uint64, prev, body []byte, rec *Record) []byte {
	var chain [ChainHexLen]byte
	start := len(b.Lines)
	b.Lines = append(b.Lines, body...)
	b.Lines = appendSeal(b.Lines, b.Stream, seq)
	c.nextOpen(chain[:0], prev, b.Lines[start:])
	b.Lines = append(b.Lines, `,"chain":"`...)
	b.Lines = append(b.Lines, chain[:]...)
	b.Lines = append(b.Lines, '"', '}', '\n')
	b.Records = append(b.Records, Sealed{Record: rec, Seq: seq, start: start, end: len(b.Lines)})
	return b.Lines[len(b.Lines)-3-ChainHexLen : len(b.Lines)-3]
}

func (b *Batch) reset(stream string) {
	b.Stream, b.Lines, b.Records = stream, b.Lines[:0], b.Records[:0]
}

// WriterSink writes records to a file or stdout, one line each.
type WriterSink struct {
	name string
	out  io.Writer
	sync func() error
	// midLine: the last write stopped inside a record; the next one
	// starts a new line, so that the cut record stays one (invalid) line
	// and the following records stay whole.
	midLine bool
}

// NewWriterSink writes to out. name is "file" or "stdout"; sync, if not
// nil, is called after every write (--audit-fsync: os.File.Sync).
func NewWriterSink(name string, out io.Writer, sync func() error) *WriterSink {
	return &WriterSink{name: name, out: out, sync: sync}
}

// Name implements Sink.
func (w *WriterSink) Name() string { return w.name }

// Store writes the batch in one write. A write cut short stores the
// records whose whole line was written; the rest of the cut line stays
// in the file as a fragment, which the verifier reports and skips.
func (w *WriterSink) Store(_ context.Context, b *Batch) (int, error) {
	if len(b.Records) == 0 {
		return 0, nil
	}
	buf, prefix := b.Lines, 0
	if w.midLine {
		buf = make([]byte, 0, 1+len(b.Lines))
		buf = append(append(buf, '\n'), b.Lines...)
		prefix = 1
	}
	n, err := w.out.Write(buf)
	if err == nil && n < len(buf) {
		err = io.ErrShortWrite
	}
	if err != nil {
		if n >= prefix {
			w.midLine = false // the newline that ended the cut record went out
		}
		written := max(n-prefix, 0)
		stored := 0
		for stored < len(b.Records) && b.Records[stored].end <= written {
			stored++
		}
		if stored < len(b.Records) && written > b.Records[stored].start {
			w.midLine = true
		}
		return stored, fmt.Errorf("writing audit records: %w", err)
	}
	w.midLine = false
	if w.sync != nil {
		if err := w.sync(); err != nil {
			// The records are in the file, not known to be on disk: the
			// requests are refused, and the chain goes on after them.
			return len(b.Records), fmt.Errorf("syncing audit sink: %w", err)
		}
	}
	return len(b.Records), nil
}

// Last is never needed for a writer: Store always knows what it wrote.
func (w *WriterSink) Last(context.Context, string) (uint64, string, error) {
	return 0, "", errors.New("a file sink cannot be read back")
}

// Close implements Sink; the writer is closed by its owner.
func (w *WriterSink) Close() error { return nil }
