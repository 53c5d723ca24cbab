package filter

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"math/bits"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxDepth bounds object and array nesting; deeper input is rejected rather
// than recursed into.
const MaxDepth = 32

// Errors that make a record invalid. Callers treat every one of them as a
// bad upstream response.
var (
	ErrSyntax       = errors.New("invalid JSON")
	ErrTooDeep      = fmt.Errorf("JSON nested deeper than %d levels", MaxDepth)
	ErrDuplicateKey = errors.New("duplicate key in JSON object")
	ErrNotObject    = errors.New("JSON value is not an object")
)

// scanner is a validating JSON reader over one input. It rejects what
// encoding/json rejects, and also duplicate keys (after unescaping) and
// nesting beyond MaxDepth.
type scanner struct {
	src []byte
	pos int
	// keys is an arena of decoded object keys; spans index it. Both are used
	// as stacks: an object truncates them back when it ends.
	keys  []byte
	spans []span
	// table holds the hash tables of the open objects that have more than
	// linearKeys keys (see dedup.go), used as a stack like keys and spans.
	table  []slot
	seed   maphash.Seed
	seeded bool
	// lax skips the duplicate-key check (and keeps no keys beyond the
	// member being read): for reading one member out of a body, where a
	// duplicate elsewhere changes nothing.
	lax bool
	// cmps counts the keys the duplicate check looked at: tests measure
	// the check's work with it, deterministically, instead of timing it.
	cmps int
}

// span locates a decoded key in the arena. sig packs the key's length and
// its first and last bytes, so the duplicate check of a small object
// compares full keys only when those agree.
type span struct {
	off, end int
	sig      uint32
	hash     uint64 // the key's hash, once its object is hashed (dedup.go)
}

func keySig(k []byte) uint32 {
	if len(k) == 0 {
		return 0
	}
	return uint32(len(k))<<16 | uint32(k[0])<<8 | uint32(k[len(k)-1])
}

func (s *scanner) syntaxErr(what string) error {
	return fmt.Errorf("%w: %s at offset %d", ErrSyntax, what, s.pos)
}

func (s *scanner) ws() {
	for s.pos < len(s.src) {
		switch s.src[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

func (s *scanner) peek() byte {
	if s.pos < len(s.src) && s.src[s.pos] > ' ' { // compact JSON: no whitespace
		return s.src[s.pos]
	}
	s.ws()
	if s.pos >= len(s.src) {
		return 0
	}
	return s.src[s.pos]
}

// end checks that only whitespace follows the top-level value.
func (s *scanner) end() error {
	s.ws()
	if s.pos != len(s.src) {
		return s.syntaxErr("trailing data")
	}
	return nil
}

// skip validates and steps over one value.
func (s *scanner) skip(depth int) error {
	switch c := s.peek(); c {
	case '{':
		return s.object(depth, func(key []byte) error { return s.skip(depth + 1) })
	case '[':
		return s.array(depth, func() error { return s.skip(depth + 1) })
	case '"':
		_, err := s.str(false)
		return err
	case 't':
		return s.literal("true")
	case 'f':
		return s.literal("false")
	case 'n':
		return s.literal("null")
	default:
		if c == '-' || c >= '0' && c <= '9' {
			return s.number()
		}
		return s.syntaxErr("unexpected character")
	}
}

// object reads an object, calling member with each decoded key with the
// scanner at the member's value; member must consume the value. Keys are
// checked for duplicates after decoding.
func (s *scanner) object(depth int, member func(key []byte) error) error {
	if depth >= MaxDepth {
		return ErrTooDeep
	}
	s.pos++ // '{'
	keysMark, spansMark, tableMark := len(s.keys), len(s.spans), len(s.table)
	var sigs uint64 // the object's signature mask (addKey)
	defer func() {
		s.keys, s.spans, s.table = s.keys[:keysMark], s.spans[:spansMark], s.table[:tableMark]
	}()
	if s.peek() == '}' {
		s.pos++
		return nil
	}
	for {
		if s.peek() != '"' {
			return s.syntaxErr("expected object key")
		}
		off := len(s.keys)
		if err := s.key(); err != nil {
			return err
		}
		if !s.lax && !s.addKey(off, spansMark, tableMark, &sigs) {
			return ErrDuplicateKey
		}
		if s.peek() != ':' {
			return s.syntaxErr("expected ':'")
		}
		s.pos++
		s.ws()
		if err := member(s.keys[off:len(s.keys):len(s.keys)]); err != nil {
			return err
		}
		if s.lax {
			s.keys = s.keys[:off]
		}
		switch s.peek() {
		case ',':
			s.pos++
		case '}':
			s.pos++
			return nil
		default:
			return s.syntaxErr("expected ',' or '}'")
		}
	}
}

// array reads an array, calling elem with the scanner at each element.
func (s *scanner) array(depth int, elem func() error) error {
	if depth >= MaxDepth {
		return ErrTooDeep
	}
	s.pos++ // '['
	if s.peek() == ']' {
		s.pos++
		return nil
	}
	for {
		s.ws()
		if err := elem(); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.pos++
		case ']':
			s.pos++
			return nil
		default:
			return s.syntaxErr("expected ',' or ']'")
		}
	}
}

func (s *scanner) literal(lit string) error {
	if len(s.src)-s.pos < len(lit) || string(s.src[s.pos:s.pos+len(lit)]) != lit {
		return s.syntaxErr("invalid literal")
	}
	s.pos += len(lit)
	return nil
}

func (s *scanner) digits() int {
	n := 0
	for s.pos < len(s.src) && s.src[s.pos] >= '0' && s.src[s.pos] <= '9' {
		s.pos++
		n++
	}
	return n
}

// number follows the JSON grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() error {
	if s.src[s.pos] == '-' {
		s.pos++
	}
	if s.pos < len(s.src) && s.src[s.pos] == '0' {
		s.pos++
	} else if s.digits() == 0 {
		return s.syntaxErr("invalid number")
	}
	if s.pos < len(s.src) && s.src[s.pos] == '.' {
		s.pos++
		if s.digits() == 0 {
			return s.syntaxErr("invalid number")
		}
	}
	if s.pos < len(s.src) && (s.src[s.pos] == 'e' || s.src[s.pos] == 'E') {
		s.pos++
		if s.pos < len(s.src) && (s.src[s.pos] == '+' || s.src[s.pos] == '-') {
			s.pos++
		}
		if s.digits() == 0 {
			return s.syntaxErr("invalid number")
		}
	}
	return nil
}

// plainStringByte[c] reports whether c stands for itself inside a JSON
// string: not a quote, a backslash or a control character. Bytes of
// multi-byte UTF-8 sequences are plain; str validates them as a whole.
var plainStringByte = func() (t [256]bool) {
	for c := range t {
		t[c] = c >= 0x20 && c != '"' && c != '\\'
	}
	return t
}()

// plainRun returns the index of the first byte at or after i that is not
// plain (see plainStringByte), or len(src). It looks at eight bytes at a
// time: in each test below, the lowest flagged byte is a true match (a
// borrow only flags bytes above the one that caused it), so the lowest
// flag of the three is the first byte that needs attention.
func plainRun(src []byte, i int) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	for ; i+8 <= len(src); i += 8 {
		x := binary.LittleEndian.Uint64(src[i:])
		q := x ^ ones*'"'
		b := x ^ ones*'\\'
		m := ((x - ones*0x20) &^ x) | ((q - ones) &^ q) | ((b - ones) &^ b)
		if m &= highs; m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
	}
	for i < len(src) && plainStringByte[src[i]] {
		i++
	}
	return i
}

// str steps over a string, validating escapes, control characters and
// (when checkUTF8) UTF-8. It returns whether the string held an escape.
func (s *scanner) str(checkUTF8 bool) (escaped bool, err error) {
	src := s.src
	start := s.pos
	i := s.pos + 1 // after the opening quote
	for {
		i = plainRun(src, i)
		if i >= len(src) {
			s.pos = i
			return escaped, s.syntaxErr("unterminated string")
		}
		switch src[i] {
		case '"':
			s.pos = i + 1
			if checkUTF8 && !utf8.Valid(src[start:s.pos]) {
				return escaped, s.syntaxErr("invalid UTF-8 in string")
			}
			return escaped, nil
		case '\\':
			escaped = true
			if i+1 >= len(src) {
				s.pos = i
				return escaped, s.syntaxErr("truncated escape")
			}
			switch src[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if _, ok := hex4(src, i+2); !ok {
					s.pos = i
					return escaped, s.syntaxErr("invalid \\u escape")
				}
				i += 6
			default:
				s.pos = i
				return escaped, s.syntaxErr("invalid escape")
			}
		default:
			s.pos = i
			return escaped, s.syntaxErr("control character in string")
		}
	}
}

// key reads a string and appends its decoded bytes to s.keys.
func (s *scanner) key() error {
	start := s.pos
	escaped, err := s.str(false)
	if err != nil {
		return err
	}
	raw := s.src[start+1 : s.pos-1]
	if !escaped {
		s.keys = append(s.keys, raw...)
		return nil
	}
	s.keys = unescape(s.keys, raw)
	return nil
}

func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// unescape appends the decoded form of an already validated string body,
// turning lone surrogates into U+FFFD as encoding/json does.
func unescape(dst, raw []byte) []byte {
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			dst = append(dst, c)
			i++
			continue
		}
		switch raw[i+1] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, _ := hex4(raw, i+2)
			i += 6
			if utf16.IsSurrogate(r) {
				r2, ok := rune(0), false
				if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
					r2, ok = hex4(raw, i+2)
				}
				if dec := utf16.DecodeRune(r, r2); ok && dec != utf8.RuneError {
					r = dec
					i += 6
				} else {
					r = utf8.RuneError
				}
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default: // '"', '\\', '/'
			dst = append(dst, raw[i+1])
		}
		i += 2
	}
	return dst
}
