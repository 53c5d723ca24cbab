package verify

import (
	"bytes"
	"errors"
	"strconv"

	"github.com/popconnect/popconnect/gateway/audit"
)

// LineKind is what a line of an audit file is.
type LineKind int

const (
	// Record: the line ends in a chain field of 64 hex digits.
	Record LineKind = iota
	// Fragment: the line is the start of a record whose write was cut
	// short (it does not end in a chain field, or ends inside one). The
	// gateway gave its seq to the next record, so it breaks no chain.
	Fragment
	// BadChain: the line ends in a chain field, closed, whose value is
	// not 64 lowercase hex digits. No write cut short leaves that: the
	// line was altered.
	BadChain
)

const chainField = `,"chain":"`

// ParseLine sorts a line of an audit file (without its newline) and, for
// Record and BadChain, splits it into its body (the bytes the chain
// covers, `{...,"seq":n}`) and its chain value. It never fails: a line
// that is not a record is a Fragment.
func ParseLine(line []byte) (kind LineKind, body, chain []byte) {
	if body, chain, ok := audit.SplitChain(line); ok {
		return Record, body, chain
	}
	// Strings in a record are escaped, so `,"chain":"` with raw quotes
	// only occurs as the chain field itself.
	i := bytes.LastIndex(line, []byte(chainField))
	if i < 0 {
		return Fragment, nil, nil
	}
	rest := line[i+len(chainField):]
	if isChainPrefix(rest) {
		return Fragment, nil, nil // cut inside the chain field
	}
	body = make([]byte, 0, i+1)
	body = append(append(body, line[:i]...), '}')
	chain = rest
	if j := bytes.IndexByte(rest, '"'); j >= 0 {
		chain = rest[:j]
	}
	return BadChain, body, chain
}

// isChainPrefix reports whether b is a proper prefix of `<64 hex>"}`:
// what a write cut inside the chain field leaves.
func isChainPrefix(b []byte) bool {
	if len(b) >= audit.ChainHexLen+2 {
		return false
	}
	for i, c := range b {
		switch {
		case i < audit.ChainHexLen:
			if !isHex(c) {
				return false
			}
		case i == audit.ChainHexLen:
			if c != '"' {
				return false
			}
		}
	}
	return true
}

func isHex(c byte) bool { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') }

// streamHexLen is the length of a stream name: 128 bits in hex.
const streamHexLen = 32

var errNoSeal = errors.New(`the record does not end in "stream" and "seq" fields`)

// ParseBody reads a record body's stream and seq, which end it
// (`...,"stream":"<32 hex>","seq":n}`), and its time, which starts it
// (`{"time":"...",`; empty when absent).
func ParseBody(body []byte) (stream string, seq uint64, time string, err error) {
	b := body
	if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' {
		return "", 0, "", errNoSeal
	}
	b = b[:len(b)-1]
	d := len(b)
	for d > 0 && b[d-1] >= '0' && b[d-1] <= '9' {
		d--
	}
	digits := b[d:]
	// The gateway writes seq from 1, without leading zeros.
	if len(digits) == 0 || len(digits) > 20 || digits[0] == '0' {
		return "", 0, "", errNoSeal
	}
	seq, perr := strconv.ParseUint(string(digits), 10, 64)
	if perr != nil {
		return "", 0, "", errNoSeal
	}
	b = b[:d]
	const seqField, streamField = `","seq":`, `,"stream":"`
	if !bytes.HasSuffix(b, []byte(seqField)) {
		return "", 0, "", errNoSeal
	}
	b = b[:len(b)-len(seqField)]
	if len(b) < streamHexLen+len(streamField) {
		return "", 0, "", errNoSeal
	}
	s := b[len(b)-streamHexLen:]
	for _, c := range s {
		if !isHex(c) {
			return "", 0, "", errNoSeal
		}
	}
	if !bytes.HasSuffix(b[:len(b)-streamHexLen], []byte(streamField)) {
		return "", 0, "", errNoSeal
	}
	const timeField = `{"time":"`
	if t, ok := bytes.CutPrefix(body, []byte(timeField)); ok {
		if j := bytes.IndexByte(t, '"'); j >= 0 && j <= 64 {
			time = string(t[:j])
		}
	}
	return string(s), seq, time, nil
}
