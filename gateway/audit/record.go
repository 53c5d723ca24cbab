package audit

import (
	"strconv"
	"unicode/utf8"
)

// appendRecord encodes r as a JSON object left open: the sealer ends it
// with the record's stream, seq and chain, and a newline. Strings are
// escaped so that a line never holds a raw newline: the newline ends the
// record.
func appendRecord(b []byte, r *Record) []byte {
	b = append(b, `{"time":"`...)
	b = r.Time.UTC().AppendFormat(b, "2006-01-02T15:04:05.000000Z07:00")
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
	b = strconv.AppendFloat(b, float64(r.Latency.Microseconds())/1000, 'f', 3, 64)
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
		b = r.DiscloseAfter.UTC().AppendFormat(b, "2006-01-02T15:04:05.000000Z07:00")
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
func appendString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
			i++
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			i++
		case c < utf8.RuneSelf:
			b = append(b, c)
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
