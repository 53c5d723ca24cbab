package verify

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/popconnect/popconnect/gateway/audit"
)

var (
	key      = bytes.Repeat([]byte{0x5a}, 32)
	otherKey = bytes.Repeat([]byte{0xa5}, 32)
)

// lines splits a log into its lines, newlines dropped.
func lines(b []byte) [][]byte {
	ls := bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n"))
	for i := range ls {
		ls[i] = bytes.Clone(ls[i])
	}
	return ls
}

func join(ls [][]byte) []byte { return append(bytes.Join(ls, []byte("\n")), '\n') }

// logOf writes n records in one stream.
func logOf(t testing.TB, n int) (*testLog, [][]byte) {
	l := newTestLog(t, key)
	for i := 1; i <= n; i++ {
		l.Commit(rec(i))
	}
	return l, lines(l.Bytes())
}

// forgeLine makes a record line for stream/seq with a well-formed chain
// under a key that is not the gateway's: what someone without the key can
// insert.
func forgeLine(stream string, seq uint64, prevChain []byte) []byte {
	body := fmt.Appendf(nil, `{"time":"2026-11-24T22:46:26.000000Z","requestId":"forged","agency":"BYT","operation":"Lookup","nationalIdHash":"%064x","fieldsReturned":["fullName"],"status":200,"latencyMs":1.000,"stream":"%s","seq":%d}`, 1000, stream, seq)
	chain := audit.NewChainer(otherKey).Next(nil, prevChain, body)
	return append(append(body[:len(body)-1], `,"chain":"`...), append(chain, `"}`...)...)
}

func chainOf(line []byte) []byte { _, c, _ := audit.SplitChain(line); return c }

func verifyBytes(t *testing.T, b []byte, k []byte, opts Options) *Report {
	t.Helper()
	r, err := Run(NewFileSource(bytes.NewReader(b)), k, opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// want is what a stream's report must say.
type want struct {
	records, firstSeq, lastSeq, verified uint64
	// failSeq and failMsg: the failure's seq and a part of its message;
	// failMsg empty means intact.
	failSeq uint64
	failMsg string
	failLoc string
}

func TestVerify(t *testing.T) {
	cases := []struct {
		name  string
		build func(t *testing.T) []byte
		key   []byte
		opts  Options
		want  []want
		// fragments are the Locs of the fragments reported.
		fragments []string
		problems  int
	}{{
		name: "intact single stream",
		build: func(t *testing.T) []byte {
			_, ls := logOf(t, 10)
			return join(ls)
		},
		want: []want{{records: 10, firstSeq: 1, lastSeq: 10, verified: 10}},
	}, {
		name: "intact two streams, the gateway restarted",
		build: func(t *testing.T) []byte {
			l := newTestLog(t, key)
			for i := 1; i <= 5; i++ {
				l.Commit(rec(i))
			}
			l.Restart()
			for i := 6; i <= 8; i++ {
				l.Commit(rec(i))
			}
			return l.Bytes()
		},
		want: []want{{records: 5, firstSeq: 1, lastSeq: 5, verified: 5}, {records: 3, firstSeq: 1, lastSeq: 3, verified: 3}},
	}, {
		name: "intact with a BatchLookup of 1000 IDs",
		build: func(t *testing.T) []byte {
			l := newTestLog(t, key)
			l.Commit(rec(1))
			l.Commit(batchRec(2, 1000))
			l.Commit(rec(3))
			return l.Bytes()
		},
		want: []want{{records: 3, firstSeq: 1, lastSeq: 3, verified: 3}},
	}, {
		name: "a byte of fieldsReturned edited",
		build: func(t *testing.T) []byte {
			_, ls := logOf(t, 10)
			ls[3] = bytes.Replace(ls[3], []byte(`"fullName"`), []byte(`"fullNamf"`), 1)
			return join(ls)
		},
		want: []want{{records: 10, firstSeq: 1, lastSeq: 10, verified: 3, failSeq: 4, failLoc: "line 4",
			failMsg: "seq 4: chain does not match (the record was edited, or one before it was removed or replaced)"}},
	}, {
		name: "first record deleted",
		build: func(t *testing.T) []byte {
			_, ls := logOf(t, 10)
			return join(ls[1:])
		},
		want: []want{{records: 9, firstSeq: 2, lastSeq: 10, verified: 0, failSeq: 1, failLoc: "line 1",
			failMsg: "the stream starts at seq 2: seq 1 missing (the head of the stream was deleted"}},
	}, {
		name: "a middle record deleted",
		build: func(t *testing.T) []byte {
			_, ls := logOf(t, 10)
			return join(append(ls[:4:4], ls[5:]...))
		},
		want: []want{{records: 9, firstSeq: 1, lastSeq: 10, verified: 4, failSeq: 5, failLoc: "line 5",
			failMsg: "seq 5 missing (found 6 after 4: a record was deleted)"}},
	}, {
		name: "three middle records deleted",
		build: func(t *testing.T) []byte {
			_, ls := logOf(t, 10)
			return join(append(ls[:4:4], ls[7:]...))
		},
		want: []want{{records: 7, firstSeq: 1, lastSeq: 10, verified: 4, failSeq: 5,
			failMsg: "seq 5 to 7 missing (found 8 after 4: records were deleted)"}},
	}, {
		// The chain cannot show a truncated tail: the stream verifies,
		// and only its last seq (9, where the gateway counted 10) tells.
		name: "last record deleted: intact, last seq one short",
		build: func(t *testing.T) []byte {
			_, ls := logOf(t, 10)
			return join(ls[:9])
		},
		want: []want{{records: 9, firstSeq: 1, lastSeq: 9, verified: 9}},
	}, {
		name: "a forged record inserted before seq 5",
		build: func(t *testing.T) []byte {
			l, ls := logOf(t, 10)
			forged := forgeLine(l.Stream(), 5, chainOf(ls[3]))
			return join(append(ls[:4:4], append([][]byte{forged}, ls[4:]...)...))
		},
		want: []want{{records: 11, firstSeq: 1, lastSeq: 10, verified: 4, failSeq: 5, failLoc: "line 5",
			failMsg: "seq 5: chain does not match"}},
	}, {
		name: "a forged record appended as seq 11",
		build: func(t *testing.T) []byte {
			l, ls := logOf(t, 10)
			return join(append(ls, forgeLine(l.Stream(), 11, chainOf(ls[9]))))
		},
		want: []want{{records: 11, firstSeq: 1, lastSeq: 11, verified: 10, failSeq: 11, failLoc: "line 11",
			failMsg: "seq 11: chain does not match"}},
	}, {
		name: "two records swapped",
		build: func(t *testing.T) []byte {
			_, ls := logOf(t, 10)
			ls[3], ls[4] = ls[4], ls[3]
			return join(ls)
		},
		want: []want{{records: 10, firstSeq: 1, lastSeq: 10, verified: 3, failSeq: 5, failLoc: "line 4",
			failMsg: "seq 5 appears after 3, before 4 (records reordered or inserted)"}},
	}, {
		name: "a record moved forward",
		build: func(t *testing.T) []byte {
			_, ls := logOf(t, 10)
			// 1..6, 9, 7, 8, 10
			out := append(ls[:6:6], ls[8], ls[6], ls[7], ls[9])
			return join(out)
		},
		want: []want{{records: 10, firstSeq: 1, lastSeq: 10, verified: 6, failSeq: 9,
			failMsg: "seq 9 appears after 6, before 7 (records reordered or inserted)"}},
	}, {
		name: "a line duplicated",
		build: func(t *testing.T) []byte {
			_, ls := logOf(t, 10)
			return join(append(ls[:3:3], append([][]byte{ls[2]}, ls[3:]...)...))
		},
		want: []want{{records: 11, firstSeq: 1, lastSeq: 10, verified: 3, failSeq: 3, failLoc: "line 4",
			failMsg: "seq 3 appears twice"}},
	}, {
		name: "an earlier line copied further on",
		build: func(t *testing.T) []byte {
			_, ls := logOf(t, 10)
			return join(append(ls[:6:6], append([][]byte{ls[1]}, ls[6:]...)...))
		},
		want: []want{{records: 11, firstSeq: 1, lastSeq: 10, verified: 6, failSeq: 2,
			failMsg: "seq 2 appears twice (found again after 6"}},
	}, {
		// A write cut short leaves the start of seq 5; the gateway gives
		// seq 5 to the next record, which follows whole.
		name: "a fragment followed by the same seq whole",
		build: func(t *testing.T) []byte {
			_, ls := logOf(t, 10)
			cut := ls[4][:len(ls[4])/2]
			return join(append(ls[:4:4], append([][]byte{cut}, ls[4:]...)...))
		},
		want:      []want{{records: 10, firstSeq: 1, lastSeq: 10, verified: 10}},
		fragments: []string{"line 5"},
	}, {
		name: "fragments cut inside the chain field, and a last line cut",
		build: func(t *testing.T) []byte {
			_, ls := logOf(t, 10)
			a := ls[2][:len(ls[2])-10]
			b := ls[5][:len(ls[5])-1]
			out := append(ls[:2:2], a)
			out = append(out, ls[2:5]...)
			out = append(out, b)
			out = append(out, ls[5:]...)
			return append(join(out), ls[0][:20]...) // no newline at the end
		},
		want:      []want{{records: 10, firstSeq: 1, lastSeq: 10, verified: 10}},
		fragments: []string{"line 3", "line 7", "line 13"},
	}, {
		name: "the wrong key fails every stream at seq 1",
		build: func(t *testing.T) []byte {
			l := newTestLog(t, key)
			l.Commit(rec(1))
			l.Commit(rec(2))
			l.Restart()
			l.Commit(rec(3))
			return l.Bytes()
		},
		key: otherKey,
		want: []want{
			{records: 2, firstSeq: 1, lastSeq: 2, verified: 0, failSeq: 1, failMsg: "seq 1: chain does not match (the record was edited, or this is not the gateway's audit key)"},
			{records: 1, firstSeq: 1, lastSeq: 1, verified: 0, failSeq: 1, failMsg: "seq 1: chain does not match"},
		},
	}, {
		name: "a chain field of 63 hex digits",
		build: func(t *testing.T) []byte {
			_, ls := logOf(t, 5)
			l := ls[2]
			ls[2] = append(l[:len(l)-3:len(l)-3], `"}`...)
			return join(ls)
		},
		want: []want{{records: 5, firstSeq: 1, lastSeq: 5, verified: 2, failSeq: 3, failLoc: "line 3",
			failMsg: "seq 3: its chain field is not 64 hex digits"}},
	}, {
		name: "a chain field in upper case",
		build: func(t *testing.T) []byte {
			_, ls := logOf(t, 5)
			l := ls[2]
			copy(l[len(l)-66:], bytes.ToUpper(l[len(l)-66:len(l)-2]))
			return join(ls)
		},
		want: []want{{records: 5, firstSeq: 1, lastSeq: 5, verified: 2, failSeq: 3,
			failMsg: "seq 3: its chain field is not 64 hex digits"}},
	}, {
		name: "a record whose seq field was removed",
		build: func(t *testing.T) []byte {
			_, ls := logOf(t, 5)
			ls[2] = bytes.Replace(ls[2], []byte(`,"seq":3`), nil, 1)
			return join(ls)
		},
		// The record is no stream's: a problem, and seq 3 is missing.
		want: []want{{records: 4, firstSeq: 1, lastSeq: 5, verified: 2, failSeq: 3,
			failMsg: "seq 3 missing (found 4 after 2: a record was deleted)"}},
		problems: 1,
	}, {
		// A collector that does not join a line the container runtime
		// split: the first part is a fragment, the last a malformed
		// record, and the seq is missing.
		name: "a long record split in two lines",
		build: func(t *testing.T) []byte {
			l := newTestLog(t, key)
			l.Commit(rec(1))
			l.Commit(batchRec(2, 1000))
			l.Commit(rec(3))
			ls := lines(l.Bytes())
			split := [][]byte{ls[1][:16<<10], ls[1][16<<10:]}
			return join(append(ls[:1:1], append(split, ls[2])...))
		},
		want: []want{{records: 2, firstSeq: 1, lastSeq: 3, verified: 1, failSeq: 2,
			failMsg: "seq 2 missing (found 3 after 1: a record was deleted)"}},
		fragments: []string{"line 2"},
		problems:  1,
	}, {
		name: "head removed by retention, trusted",
		build: func(t *testing.T) []byte {
			_, ls := logOf(t, 10)
			return join(ls[3:])
		},
		opts: Options{TrustHead: true},
		want: []want{{records: 7, firstSeq: 4, lastSeq: 10, verified: 10}},
	}, {
		// What TrustHead gives up: the anchor's body is not proven.
		name: "head trusted: an edited anchor goes unseen",
		build: func(t *testing.T) []byte {
			_, ls := logOf(t, 10)
			ls[3] = bytes.Replace(ls[3], []byte(`"fullName"`), []byte(`"fullNamf"`), 1)
			return join(ls[3:])
		},
		opts: Options{TrustHead: true},
		want: []want{{records: 7, firstSeq: 4, lastSeq: 10, verified: 10}},
	}, {
		name: "head trusted: an edit after the anchor fails",
		build: func(t *testing.T) []byte {
			_, ls := logOf(t, 10)
			ls[5] = bytes.Replace(ls[5], []byte(`"status":200`), []byte(`"status":404`), 1)
			return join(ls[3:])
		},
		opts: Options{TrustHead: true},
		want: []want{{records: 7, firstSeq: 4, lastSeq: 10, verified: 5, failSeq: 6,
			failMsg: "seq 6: chain does not match"}},
	}, {
		name: "a broken stream does not stop the next one",
		build: func(t *testing.T) []byte {
			l := newTestLog(t, key)
			for i := 1; i <= 4; i++ {
				l.Commit(rec(i))
			}
			l.Restart()
			for i := 5; i <= 7; i++ {
				l.Commit(rec(i))
			}
			l.Restart()
			for i := 8; i <= 9; i++ {
				l.Commit(rec(i))
			}
			ls := lines(l.Bytes())
			ls[1] = bytes.Replace(ls[1], []byte(`"BYT"`), []byte(`"BYU"`), 1)
			ls[5] = bytes.Replace(ls[5], []byte(`"BYT"`), []byte(`"BYU"`), 1)
			return join(ls)
		},
		want: []want{
			{records: 4, firstSeq: 1, lastSeq: 4, verified: 1, failSeq: 2, failLoc: "line 2", failMsg: "seq 2: chain does not match"},
			{records: 3, firstSeq: 1, lastSeq: 3, verified: 1, failSeq: 2, failLoc: "line 6", failMsg: "seq 2: chain does not match"},
			{records: 2, firstSeq: 1, lastSeq: 2, verified: 2},
		},
	}, {
		name: "two streams interleaved",
		build: func(t *testing.T) []byte {
			a, la := logOf(t, 4)
			_ = a
			_, lb := logOf(t, 4)
			var out [][]byte
			for i := range 4 {
				out = append(out, la[i], lb[i])
			}
			return join(out)
		},
		want: []want{{records: 4, firstSeq: 1, lastSeq: 4, verified: 4}, {records: 4, firstSeq: 1, lastSeq: 4, verified: 4}},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			k := tc.key
			if k == nil {
				k = key
			}
			r := verifyBytes(t, tc.build(t), k, tc.opts)
			if len(r.Streams) != len(tc.want) {
				t.Fatalf("%d streams, want %d", len(r.Streams), len(tc.want))
			}
			for i, w := range tc.want {
				s := r.Streams[i]
				if s.Records != w.records || s.FirstSeq != w.firstSeq || s.LastSeq != w.lastSeq || s.Verified != w.verified {
					t.Errorf("stream %d: records %d, seq %d-%d, verified %d; want %d, %d-%d, %d",
						i, s.Records, s.FirstSeq, s.LastSeq, s.Verified, w.records, w.firstSeq, w.lastSeq, w.verified)
				}
				switch {
				case w.failMsg == "" && s.Failure != nil:
					t.Errorf("stream %d: failed: %+v", i, *s.Failure)
				case w.failMsg != "" && s.Failure == nil:
					t.Errorf("stream %d: intact, want a failure at seq %d: %s", i, w.failSeq, w.failMsg)
				case w.failMsg != "":
					f := s.Failure
					if f.Seq != w.failSeq || !strings.Contains(f.Message, w.failMsg) || (w.failLoc != "" && f.Loc != w.failLoc) {
						t.Errorf("stream %d: failure at seq %d (%s): %q; want seq %d (%s): %q", i, f.Seq, f.Loc, f.Message, w.failSeq, w.failLoc, w.failMsg)
					}
				}
			}
			var frags []string
			for _, f := range r.Fragments {
				frags = append(frags, f.Loc)
			}
			if strings.Join(frags, ",") != strings.Join(tc.fragments, ",") {
				t.Errorf("fragments %v, want %v", frags, tc.fragments)
			}
			if len(r.Problems) != tc.problems {
				t.Errorf("problems %+v, want %d", r.Problems, tc.problems)
			}
			wantIntact := tc.problems == 0
			for _, w := range tc.want {
				wantIntact = wantIntact && w.failMsg == ""
			}
			if r.Intact() != wantIntact {
				t.Errorf("Intact() = %v, want %v", r.Intact(), wantIntact)
			}
		})
	}
}

// The summary gives what the chain cannot: the last seq and the times, to
// compare with the gateway's count.
func TestSummaryTimesAndLastSeq(t *testing.T) {
	l, ls := logOf(t, 10)
	r := verifyBytes(t, join(ls[:7]), key, Options{})
	s := r.Streams[0]
	if s.Stream != l.Stream() || s.FirstTime != "2026-11-24T22:46:25.001000Z" || s.LastTime != "2026-11-24T22:46:25.007000Z" {
		t.Errorf("summary %+v", *s)
	}
	if s.LastSeq == l.Seq() {
		t.Errorf("last seq %d: a truncated tail must show as a last seq below the gateway's %d", s.LastSeq, l.Seq())
	}
}

// rowSource yields rows as a database would: stream and seq in columns.
type rowSource struct{ rows []Entry }

func (s *rowSource) Next() (Entry, error) {
	if len(s.rows) == 0 {
		return Entry{}, io.EOF
	}
	e := s.rows[0]
	s.rows = s.rows[1:]
	return e, nil
}

func TestRowSourceColumns(t *testing.T) {
	l, ls := logOf(t, 3)
	rows := func() []Entry {
		var rs []Entry
		for i, line := range ls {
			body, chain, _ := audit.SplitChain(line)
			rs = append(rs, Entry{Stream: l.Stream(), Seq: uint64(i + 1), Body: body, Chain: chain, Loc: "row"})
		}
		return rs
	}
	r, err := Run(&rowSource{rows()}, key, Options{})
	if err != nil || !r.Intact() {
		t.Fatalf("rows: %v %+v", err, r.Streams[0].Failure)
	}
	rs := rows()
	rs[1].Seq = 7 // a column edited, the body left
	r, _ = Run(&rowSource{rs}, key, Options{})
	if r.Intact() || r.Streams[0].Failure.Seq != 2 || !strings.Contains(r.Streams[0].Failure.Message, "filed as stream") {
		t.Errorf("column edit: %+v", r.Streams[0].Failure)
	}
}

func TestLongLineIsSkipped(t *testing.T) {
	_, ls := logOf(t, 3)
	long := bytes.Repeat([]byte("x"), 600)
	b := join(append(ls[:1:1], append([][]byte{long}, ls[1:]...)...))
	src := newFileSource(bytes.NewReader(b), 64, 512)
	r, err := Run(src, key, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Intact() || len(r.Fragments) != 1 || r.Fragments[0].Loc != "line 2" || !strings.Contains(r.Fragments[0].Note, "600 bytes") {
		t.Errorf("report: intact %v, fragments %+v", r.Intact(), r.Fragments)
	}
}

func TestParseLine(t *testing.T) {
	_, ls := logOf(t, 1)
	line := ls[0]
	chain := line[len(line)-66 : len(line)-2]
	cases := []struct {
		name string
		line []byte
		kind LineKind
	}{
		{"record", line, Record},
		{"empty", nil, Fragment},
		{"cut in the body", line[:40], Fragment},
		{"cut after the chain's name", line[:len(line)-66], Fragment},
		{"cut in the chain", line[:len(line)-30], Fragment},
		{"cut before the brace", line[:len(line)-1], Fragment},
		{"short chain", append(bytes.Clone(line[:len(line)-4]), `"}`...), BadChain},
		{"long chain", append(bytes.Clone(line[:len(line)-2]), `0"}`...), BadChain},
		{"junk after", append(bytes.Clone(line), 'x'), BadChain},
		{"not hex", append(bytes.Clone(line[:len(line)-66]), append(bytes.Repeat([]byte("g"), 64), `"}`...)...), BadChain},
	}
	for _, tc := range cases {
		kind, body, c := ParseLine(tc.line)
		if kind != tc.kind {
			t.Errorf("%s: kind %d, want %d", tc.name, kind, tc.kind)
		}
		if kind == Record && (!bytes.Equal(c, chain) || !bytes.HasSuffix(body, []byte(`,"seq":1}`))) {
			t.Errorf("%s: body %q chain %q", tc.name, body, c)
		}
	}
}

func TestParseBody(t *testing.T) {
	s := strings.Repeat("ab", 16)
	cases := []struct {
		body   string
		stream string
		seq    uint64
		time   string
		ok     bool
	}{
		{`{"time":"T1","stream":"` + s + `","seq":12}`, s, 12, "T1", true},
		{`{"x":1,"stream":"` + s + `","seq":1}`, s, 1, "", true},
		{`{"x":1,"stream":"` + s + `","seq":18446744073709551615}`, s, 1<<64 - 1, "", true},
		{`{"stream":"` + s + `","seq":1}`, "", 0, "", false}, // never first
		{`{"stream":"` + s + `","seq":18446744073709551616}`, "", 0, "", false},
		{`{"stream":"` + s + `","seq":0}`, "", 0, "", false},
		{`{"stream":"` + s + `","seq":07}`, "", 0, "", false},
		{`{"stream":"` + s + `","seq":}`, "", 0, "", false},
		{`{"stream":"` + s[:31] + `","seq":1}`, "", 0, "", false},
		{`{"stream":"` + strings.ToUpper(s) + `","seq":1}`, "", 0, "", false},
		{`{"stream":"` + s + `","seq":1`, "", 0, "", false},
		{`{"seq":1}`, "", 0, "", false},
		{``, "", 0, "", false},
	}
	for _, tc := range cases {
		stream, seq, tm, err := ParseBody([]byte(tc.body))
		if (err == nil) != tc.ok || stream != tc.stream || seq != tc.seq || tm != tc.time {
			t.Errorf("%s: %q %d %q %v", tc.body, stream, seq, tm, err)
		}
	}
}

func FuzzParseLine(f *testing.F) {
	l := newTestLog(f, key)
	l.Commit(rec(1))
	l.Commit(batchRec(2, 3))
	for _, line := range lines(l.Bytes()) {
		f.Add(line)
		f.Add(line[:len(line)-20])
		f.Add(append(bytes.Clone(line[:len(line)-3]), `"}`...))
	}
	f.Add([]byte(`,"chain":"`))
	f.Add([]byte(`{"stream":"` + strings.Repeat("0", 32) + `","seq":1,"chain":"` + strings.Repeat("0", 64) + `"}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		kind, body, chain := ParseLine(line)
		switch kind {
		case Record:
			// The parts are the line again.
			re := append(append(bytes.Clone(body[:len(body)-1]), `,"chain":"`...), append(bytes.Clone(chain), `"}`...)...)
			if !bytes.Equal(re, line) || len(chain) != audit.ChainHexLen {
				t.Fatalf("record %q split into %q and %q", line, body, chain)
			}
			if _, err := hex.DecodeString(string(chain)); err != nil {
				t.Fatal(err)
			}
		case BadChain:
			// (SplitChain wants two bytes of body at least.)
			if len(body) > 2 && len(chain) == audit.ChainHexLen && allHex(chain) && bytes.HasSuffix(line, []byte(`"}`)) &&
				len(line) == len(body)-1+len(`,"chain":"`)+audit.ChainHexLen+2 {
				t.Fatalf("a well-formed chain called bad: %q", line)
			}
		case Fragment:
			if body != nil || chain != nil {
				t.Fatal("a fragment with parts")
			}
		}
		if body != nil {
			if stream, seq, _, err := ParseBody(body); err == nil && (len(stream) != 32 || seq == 0) {
				t.Fatalf("body %q: stream %q seq %d", body, stream, seq)
			}
		}
		// A whole file of such lines verifies without a panic.
		v := New(key, Options{})
		src := newFileSource(bytes.NewReader(append(bytes.Clone(line), '\n')), 64, 1<<10)
		for {
			e, err := src.Next()
			if err != nil {
				break
			}
			v.Add(e)
		}
		v.Report()
	})
}

func BenchmarkVerifyFile(b *testing.B) {
	l := newTestLog(b, key)
	for i := range 10000 {
		l.Commit(rec(i))
	}
	log := l.Bytes()
	b.SetBytes(int64(len(log)))
	for b.Loop() {
		r, err := Run(NewFileSource(bytes.NewReader(log)), key, Options{})
		if err != nil || !r.Intact() {
			b.Fatal(err)
		}
	}
}
