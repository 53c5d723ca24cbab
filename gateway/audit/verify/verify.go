// Package verify proves an audit trail: it checks, stream by stream, that
// the records' seq run 1, 2, 3... without a gap, a repeat or a swap, and
// that every record's chain is the HMAC of the previous chain and the
// record's body under the gateway's audit key (see audit.Chainer).
//
// What it proves: no record was edited, removed from, inserted into or
// moved within the part of a stream that is present, up to its last
// record. What it cannot see: records cut from the end of a stream (a
// truncated tail) and a stream removed whole. The report gives each
// stream's last seq, for the operator to compare with the gateway's own
// count (the metric popconnect_gateway_audit_last_seq and the gateway's log
// line at shutdown); see docs/operations.md.
//
// The records come from a Source, so that a file and a database table are
// checked by the same code: FileSource reads a file; a database source
// yields its rows ordered by stream, then seq.
package verify

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/popconnect/popconnect/gateway/audit"
)

// Entry is one record as a Source holds it.
type Entry struct {
	// Stream and Seq are what the source files the record under (a
	// table's columns); they must agree with the body's. Leave them
	// empty when the source has only the body (a file).
	Stream string
	Seq    uint64
	// Body is the record without its chain field: `{...,"seq":n}`.
	Body []byte
	// Chain is the record's chain value, 64 hex digits when intact.
	Chain []byte
	// Loc says where the record is, for messages: "line 12".
	Loc string
	// Fragment marks what is not a record but the start of one whose
	// write was cut short; Note may say more ("longer than 16 MiB").
	// Only Loc and Note are set.
	Fragment bool
	Note     string
	// Mismatch, from a source whose columns repeat the record's fields,
	// names the columns that disagree with the record (edited in place,
	// where the chain does not reach); empty when they agree.
	Mismatch string
}

// Source yields the entries to verify. The records of one stream must come
// in the order they were written (a file's order, or ordered by seq);
// several streams may come one after the other or interleaved. Next
// returns io.EOF after the last entry. The Body and Chain of an entry may
// be reused by the next call.
type Source interface {
	Next() (Entry, error)
}

// Options changes what is accepted.
type Options struct {
	// TrustHead accepts a stream whose first record present is not seq 1
	// (its head was removed by retention): that record is trusted as the
	// anchor of the chain, unchecked. This weakens the proof: the
	// anchor's content is not proven (only its chain value is used), and
	// records removed before it, beyond what retention removed, go
	// unseen. A stream that does start at seq 1 is checked in full.
	TrustHead bool
}

// Failure is the first thing wrong in a stream.
type Failure struct {
	// Seq is the seq the message is about first.
	Seq uint64
	// Loc is where the source found the entry that broke the stream.
	Loc string
	// Message says what is wrong, for an operator.
	Message string
}

// StreamReport sums up one stream.
type StreamReport struct {
	Stream string
	// Records counts the stream's records present, bad ones included.
	Records uint64
	// FirstSeq is the seq of its first record present, LastSeq the highest.
	FirstSeq, LastSeq uint64
	// FirstTime and LastTime are the "time" fields of its first and last
	// records present.
	FirstTime, LastTime string
	// Verified is the last seq up to which the stream is proven intact
	// (from FirstSeq); it is LastSeq when Failure is nil.
	Verified uint64
	// Anchored: the stream did not start at seq 1 and its first record
	// was trusted (Options.TrustHead).
	Anchored bool
	// Failure is nil when the stream is intact.
	Failure *Failure
}

// Problem is an entry that belongs to no stream: a line that ends in a
// chain field but whose body lacks a stream or seq.
type Problem struct {
	Loc     string
	Message string
}

// Skipped is a fragment: an entry that is not a record.
type Skipped struct {
	Loc  string
	Note string
}

// Report is the outcome of a verification.
type Report struct {
	// Streams in the order their first record came.
	Streams []*StreamReport
	// Problems are records not attributable to a stream; each fails the
	// verification.
	Problems []Problem
	// Fragments are the cut records skipped; they fail nothing by
	// themselves (a record removed in their place shows as a gap).
	Fragments []Skipped
}

// Intact reports whether every stream verified and no record was malformed.
func (r *Report) Intact() bool {
	if len(r.Problems) > 0 {
		return false
	}
	for _, s := range r.Streams {
		if s.Failure != nil {
			return false
		}
	}
	return true
}

// Broken returns the streams that failed.
func (r *Report) Broken() []*StreamReport {
	var b []*StreamReport
	for _, s := range r.Streams {
		if s.Failure != nil {
			b = append(b, s)
		}
	}
	return b
}

// Verifier checks entries one at a time; Report sums up. Memory grows with
// the number of streams, not of records.
type Verifier struct {
	chainer *audit.Chainer
	opts    Options
	streams map[string]*streamState
	report  Report
	scratch []byte
}

// streamState is a stream's progress.
type streamState struct {
	rep *StreamReport
	// prev and prevChain are the seq and chain of the last record
	// verified (0 and empty before the first).
	prev      uint64
	prevChain []byte
	// A gap found: seq gapTo+1 came after prev = gapFrom-1. Whether a seq
	// of the gap comes later tells a deletion from a reordering; the
	// failure's message is written at the end.
	gap            bool
	gapFrom, gapTo uint64
	gapLoc         string
	gapSeen        bool
}

// New returns a Verifier for the records of a gateway whose audit hash key
// is hashKey.
func New(hashKey []byte, opts Options) *Verifier {
	return &Verifier{chainer: audit.NewChainer(hashKey), opts: opts, streams: map[string]*streamState{}}
}

// Run verifies every entry of src. The error is the source's, not a
// verdict: see Report.Intact.
func Run(src Source, hashKey []byte, opts Options) (*Report, error) {
	v := New(hashKey, opts)
	for {
		e, err := src.Next()
		if errors.Is(err, io.EOF) {
			return v.Report(), nil
		}
		if err != nil {
			return v.Report(), err
		}
		v.Add(e)
	}
}

// Add checks one entry.
func (v *Verifier) Add(e Entry) {
	if e.Fragment {
		v.report.Fragments = append(v.report.Fragments, Skipped{Loc: e.Loc, Note: e.Note})
		return
	}
	stream, seq, ts, err := ParseBody(e.Body)
	if err != nil {
		v.report.Problems = append(v.report.Problems, Problem{Loc: e.Loc,
			Message: "a record without a valid stream and seq: " + err.Error() + " (the record was altered, or is the end of a line split in parts)"})
		return
	}
	st := v.streams[stream]
	if st == nil {
		st = &streamState{rep: &StreamReport{Stream: stream, FirstSeq: seq, FirstTime: ts}}
		v.streams[stream] = st
		v.report.Streams = append(v.report.Streams, st.rep)
	}
	rep := st.rep
	rep.Records++
	rep.LastSeq = max(rep.LastSeq, seq)
	rep.LastTime = ts

	if rep.Failure != nil || st.gap {
		if st.gap && seq >= st.gapFrom && seq <= st.gapTo {
			st.gapSeen = true
		}
		return
	}
	fail := func(s uint64, format string, a ...any) {
		rep.Failure = &Failure{Seq: s, Loc: e.Loc, Message: fmt.Sprintf(format, a...)}
	}
	if (e.Stream != "" && e.Stream != stream) || (e.Seq != 0 && e.Seq != seq) {
		fail(seq, "filed as stream %s seq %d, but the record says stream %s seq %d (the record or its columns were altered)",
			e.Stream, e.Seq, stream, seq)
		return
	}
	if e.Mismatch != "" {
		fail(seq, "seq %d: the table's columns disagree with the record (%s): a column was edited", seq, e.Mismatch)
		return
	}
	if len(e.Chain) != audit.ChainHexLen || !allHex(e.Chain) {
		fail(seq, "seq %d: its chain field is not %d hex digits (the record was altered)", seq, audit.ChainHexLen)
		return
	}
	switch p := st.prev; {
	case p == 0 && seq != 1 && v.opts.TrustHead && rep.Records == 1:
		// The head was removed by retention: the first record present
		// anchors the chain.
		rep.Anchored = true
		st.prev, st.prevChain = seq, append(st.prevChain[:0], e.Chain...)
		rep.Verified = seq
		return
	case seq == p+1:
		v.scratch = v.chainer.Next(v.scratch[:0], st.prevChain, e.Body)
		if !bytes.Equal(v.scratch, e.Chain) {
			if seq == 1 {
				fail(seq, "seq 1: chain does not match (the record was edited, or this is not the gateway's audit key)")
			} else {
				fail(seq, "seq %d: chain does not match (the record was edited, or one before it was removed or replaced)", seq)
			}
			return
		}
		st.prev, st.prevChain = seq, append(st.prevChain[:0], e.Chain...)
		rep.Verified = seq
	case seq == p && bytes.Equal(e.Chain, st.prevChain):
		fail(seq, "seq %d appears twice (the line was copied)", seq)
	case seq <= p:
		fail(seq, "seq %d appears twice (found again after %d: a record was copied or inserted)", seq, p)
	default: // seq > p+1
		st.gap, st.gapFrom, st.gapTo, st.gapLoc = true, p+1, seq-1, e.Loc
	}
}

// Report sums up the entries added; call it after the last Add.
func (v *Verifier) Report() *Report {
	for _, s := range v.report.Streams {
		st := v.streams[s.Stream]
		if !st.gap || s.Failure != nil {
			continue
		}
		f := &Failure{Loc: st.gapLoc}
		found, after := st.gapTo+1, st.gapFrom-1
		switch {
		case st.gapSeen:
			f.Seq = found
			if after == 0 {
				f.Message = fmt.Sprintf("seq %d appears first, before seq 1 (records reordered or inserted)", found)
			} else {
				f.Message = fmt.Sprintf("seq %d appears after %d, before %d (records reordered or inserted)", found, after, st.gapFrom)
			}
		case after == 0:
			f.Seq = 1
			f.Message = fmt.Sprintf("the stream starts at seq %d: %s missing (the head of the stream was deleted; if retention removed it, see the option to trust the first record)",
				found, span(1, st.gapTo))
		default:
			f.Seq = st.gapFrom
			what := "a record was deleted"
			if st.gapTo > st.gapFrom {
				what = "records were deleted"
			}
			f.Message = fmt.Sprintf("%s missing (found %d after %d: %s)", span(st.gapFrom, st.gapTo), found, after, what)
		}
		s.Failure = f
	}
	for _, s := range v.report.Streams {
		if s.Failure == nil {
			s.Verified = s.LastSeq
		}
	}
	return &v.report
}

func span(from, to uint64) string {
	if from == to {
		return fmt.Sprintf("seq %d", from)
	}
	return fmt.Sprintf("seq %d to %d", from, to)
}

func allHex(b []byte) bool {
	for _, c := range b {
		if !isHex(c) {
			return false
		}
	}
	return true
}
