package audit

import (
	"math"
	"math/big"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// referenceString is appendString as it was written first, one byte at a
// time: the fast path must give the same bytes for every input.
func referenceString(b []byte, s string) []byte {
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

func TestAppendString(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", `""`},
		{"fullName", `"fullName"`},
		{`HN-2026/"77"` + "\n", `"HN-2026/\"77\"\u000a"`},
		{`a\b`, `"a\\b"`},
		{"\x00\x1f\x7f", `"\u0000\u001f` + "\x7f" + `"`},
		{"Công an", `"Công an"`},
		{"bad\xffutf8\xc3", `"bad\ufffdutf8\ufffd"`},
		{"tail\"", `"tail\""`},
	}
	for _, c := range cases {
		if got := string(appendString([]byte("x"), c.in)); got != "x"+c.want {
			t.Errorf("appendString(%q) = %s, want %s", c.in, got, c.want)
		}
	}
	// Every byte alone, and between plain runs.
	for c := range 256 {
		for _, s := range []string{string(rune(c)), string([]byte{byte(c)}), "ab" + string([]byte{byte(c)}) + "cd"} {
			if got, want := string(appendString(nil, s)), string(referenceString(nil, s)); got != want {
				t.Fatalf("appendString(%q) = %s, want %s", s, got, want)
			}
		}
	}
	// Random strings from an alphabet heavy in what needs escaping.
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"a", "Z", "0", " ", "~", `"`, `\`, "\n", "\x00", "\x7f", "\x80", "\xff", "é", "ệ", "😀", "\xe1\xbb"}
	for range 20_000 {
		var sb strings.Builder
		for range rng.IntN(24) {
			sb.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		s := sb.String()
		if got, want := string(appendString(nil, s)), string(referenceString(nil, s)); got != want {
			t.Fatalf("appendString(%q) = %s, want %s", s, got, want)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	f.Add("HN-2026/\"77\"\n")
	f.Add("Công an \xff")
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := string(appendString(nil, s)), string(referenceString(nil, s)); got != want {
			t.Fatalf("appendString(%q) = %s, want %s", s, got, want)
		}
	})
}

// TestAppendTime: the digit-by-digit form is AppendFormat's with
// timeLayout, in UTC, for every time including years it hands back.
func TestAppendTime(t *testing.T) {
	hcm := time.FixedZone("ICT", 7*3600)
	times := []time.Time{
		{},
		time.Date(2026, 1, 2, 3, 4, 5, 600_000_000, time.UTC),
		time.Date(2026, 12, 31, 23, 59, 59, 999_999_999, time.UTC), // truncated, not rounded
		time.Date(2027, 1, 1, 6, 0, 0, 1_999, hcm),                 // another zone: written in UTC
		time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999_999_000, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 6, 1, 0, 0, 0, 0, time.UTC),
		time.Date(999, 3, 4, 5, 6, 7, 8_000, time.UTC),
		time.Now(),
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 10_000 {
		times = append(times, time.Unix(rng.Int64N(400*365*86400)-100*365*86400, rng.Int64N(1e9)).In(hcm))
	}
	for _, tm := range times {
		got := string(appendTime([]byte("x"), tm))
		want := "x" + tm.UTC().Format(timeLayout)
		if got != want {
			t.Fatalf("appendTime(%v) = %s, want %s", tm, got, want)
		}
	}
}

// TestAppendMillis checks the integer formatting of a record's latency
// against the float formatting it replaced, byte for byte.
func TestAppendMillis(t *testing.T) {
	cases := []int64{0, 1, 5, 999, 1000, 1001, 1234, 999_999, -1, -5, -1000, -1234,
		math.MaxInt64, math.MinInt64 + 1, math.MinInt64}
	rng := rand.New(rand.NewPCG(5, 6))
	for range 100_000 {
		cases = append(cases, rng.Int64N(1<<40)-1<<39)
	}
	for _, us := range cases {
		got := string(appendMillis([]byte("x"), us))
		want := "x" + strconv.FormatFloat(float64(us)/1000, 'f', 3, 64)
		if us <= -1<<53 || us >= 1<<53 {
			// Beyond float64's integers the float path rounds the value
			// itself; the integers are exact (no request takes 285 years).
			want = "x" + exactMillis(us)
		}
		if got != want {
			t.Fatalf("appendMillis(%d) = %s, want %s", us, got, want)
		}
	}
}

// exactMillis formats us/1000 with three decimals through big arithmetic.
func exactMillis(us int64) string {
	r := new(big.Rat).SetFrac(big.NewInt(us), big.NewInt(1000))
	return r.FloatString(3)
}

// BenchmarkAppendRecord encodes a lookup's record, as every request does.
func BenchmarkAppendRecord(b *testing.B) {
	rec := &Record{
		Time: time.Now(), RequestID: "0123456789ab-1", Agency: "BENCH", Operation: "Lookup",
		NationalIDHashes: []string{strings.Repeat("ab", 32)},
		FieldsReturned: []string{"fullName", "dateOfBirth", "gender", "permanentAddress.province",
			"permanentAddress.district", "permanentAddress.ward", "household.householdId",
			"idCard.number", "idCard.expiryDate", "relatives.fullName", "relatives.relation"},
		Status: 200, Latency: 1234 * time.Microsecond,
	}
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = appendRecord(buf[:0], rec)
	}
}
