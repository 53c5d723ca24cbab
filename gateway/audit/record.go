package audit

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// appendRecord encodes r as a JSON object left open: the sealer ends it
// with the record's stream, seq and chain, and a newline. Strings are
// escaped so that a line never holds a raw newline: the newline ends the
// record.
func appendRecord(b []byte, r *Record) []byte {
	b = append(b, `{"time":"`...)
	b = appendTime(b, r.Time)
	b = append(b, `","requestId":`...)
	b = appendString(b, r.RequestID)
	b = append(b, `,"agency":`...)
	b = appendString(b, r.Agency)
	b = append(b, `,"operation":`...)
	b = appendString(b, r.Operation)
	b = append(b, `,"nationalIdHash":`...)
	switch {
	case r.Batch:
		b = appendStrings(b, r.NationalIDHashes)
	case len(r.NationalIDHashes) > 0:
		b = appendString(b, r.NationalIDHashes[0])
	default:
		b = append(b, "null"...)
	}
	b = append(b, `,"fieldsReturned":`...)
	b = appendStrings(b, r.FieldsReturned)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(r.Status), 10)
	if r.Reason != "" {
		b = append(b, `,"reason":`...)
		b = appendString(b, r.Reason)
	}
	b = append(b, `,"latencyMs":`...)
	b = appendMillis(b, r.Latency.Microseconds())
	if r.Purpose != "" {
		b = append(b, `,"purpose":`...)
		b = appendString(b, r.Purpose)
	}
	if r.CaseReference != "" {
		b = append(b, `,"caseReference":`...)
		b = appendString(b, r.CaseReference)
	}
	if r.AgencyName != "" {
		b = append(b, `,"agencyName":`...)
		b = appendString(b, r.AgencyName)
	}
	if !r.DiscloseAfter.IsZero() {
		b = append(b, `,"discloseAfter":"`...)
		b = appendTime(b, r.DiscloseAfter)
		b = append(b, '"')
	}
	return b
}

func appendStrings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

// appendString writes s as a JSON string, escaping what JSON requires.
// Runs of printable ASCII other than '"' and '\\' (nearly all of a
// record: hashes, codes, field paths) are copied whole rather than byte
// by byte; every other byte takes the escaping path.
func appendString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && plainByte[s[j]] {
			j++
		}
		b = append(b, s[i:j]...)
		if i = j; i == len(s) {
			break
		}
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
			i++
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			i++
		case c < utf8.RuneSelf:
			b = append(b, c) // 0x7f: plainByte keeps to what JSON never escapes
			i++
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, `\ufffd`...)
			} else {
				b = append(b, s[i:i+size]...)
			}
			i += size
		}
	}
	return append(b, '"')
}

// plainByte[c] reports whether appendString copies byte c as it is
// without looking further: printable ASCII but '"' and '\\'.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// timeLayout is the records' time format: UTC, microseconds, "Z".
const timeLayout = "2006-01-02T15:04:05.000000Z07:00"

// appendTime appends t in UTC as timeLayout formats it. Years 0 to 9999
// are written digit by digit (a record per request: AppendFormat's
// general layout walk is most of a record's encoding otherwise); any
// other year goes through AppendFormat.
func appendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(b, timeLayout)
	}
	hour, min, sec := t.Clock()
	b = appendDigits(b, year, 4)
	b = append(b, '-')
	b = appendDigits(b, int(month), 2)
	b = append(b, '-')
	b = appendDigits(b, day, 2)
	b = append(b, 'T')
	b = appendDigits(b, hour, 2)
	b = append(b, ':')
	b = appendDigits(b, min, 2)
	b = append(b, ':')
	b = appendDigits(b, sec, 2)
	b = append(b, '.')
	b = appendDigits(b, t.Nanosecond()/1000, 6) // truncated, as AppendFormat does
	return append(b, 'Z')
}

// appendMillis appends us microseconds as milliseconds with three
// decimals: the bytes strconv.AppendFloat(b, float64(us)/1000, 'f', 3, 64)
// gives, from integers (the float path was a tenth of a record's
// encoding).
func appendMillis(b []byte, us int64) []byte {
	u := uint64(us)
	if us < 0 {
		b = append(b, '-')
		u = -u
	}
	b = strconv.AppendUint(b, u/1000, 10)
	b = append(b, '.')
	return appendDigits(b, int(u%1000), 3)
}

// appendDigits appends v (0 <= v < 10^n) as n decimal digits.
func appendDigits(b []byte, v, n int) []byte {
	b = append(b, "000000"[:n]...)
	for i := len(b) - 1; n > 0; i, n = i-1, n-1 {
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return b
}
