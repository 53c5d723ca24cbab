package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/popconnect/popconnect/gateway/audit"
)

var testKey = bytes.Repeat([]byte{7}, 32)

// chainedLog writes n records in each of the streams named, with the
// gateway's Logger under key, and returns the lines.
func chainedLog(key []byte, n int, streams ...string) [][]byte {
	var out [][]byte
	for _, s := range streams {
		var buf bytes.Buffer
		l, err := audit.NewLogger(&buf, key, audit.WithStream(s))
		if err != nil {
			panic(err)
		}
		for seq := 1; seq <= n; seq++ {
			rec := &audit.Record{
				Time:      time.Date(2026, 11, 24, 22, 46, 25, seq*1000, time.UTC),
				RequestID: fmt.Sprintf("r-%d", seq), FieldsReturned: []string{"fullName"}, Status: 200, Latency: time.Millisecond,
			}
			if err := l.Commit(rec); err != nil {
				panic(err)
			}
		}
		if err := l.Close(); err != nil {
			panic(err)
		}
		out = append(out, bytes.Split(bytes.TrimSuffix(buf.Bytes(), []byte("\n")), []byte("\n"))...)
	}
	return out
}

const (
	streamA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	streamB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

func TestRun(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	join := func(ls [][]byte) []byte { return append(bytes.Join(ls, []byte("\n")), '\n') }
	keyFile := write("key", testKey)
	otherKey := write("other", bytes.Repeat([]byte{8}, 32))
	shortKey := write("short", []byte("short"))

	intact := write("intact.log", join(chainedLog(testKey, 5, streamA, streamB)))
	ls := chainedLog(testKey, 5, streamA, streamB)
	ls = append(ls[:2:2], ls[3:]...) // stream A's seq 3 deleted
	broken := write("broken.log", join(ls))
	ls = chainedLog(testKey, 5, streamA)
	ls = append(ls[:2:2], append([][]byte{ls[2][:30]}, ls[2:]...)...)
	fragment := write("fragment.log", join(ls))
	empty := write("empty.log", nil)

	cases := []struct {
		name       string
		args       []string
		code       int
		out, err   []string
		outMissing []string
	}{
		{"intact", []string{"verify", "--file", intact, "--key-file", keyFile}, 0,
			[]string{"stream " + streamA + ": intact; 5 record(s), last seq 5, time 2026-11-24T22:46:25.000001Z to 2026-11-24T22:46:25.000005Z",
				"stream " + streamB + ": intact; 5 record(s), last seq 5", "verdict: INTACT: 2 stream(s), 10 record(s)", "popconnect_gateway_audit_last_seq"}, nil, []string{"fragments"}},
		{"broken", []string{"verify", "--file", broken, "--key-file", keyFile}, 1,
			[]string{"stream " + streamA + ": BROKEN at seq 3 (line 3): seq 3 missing (found 4 after 2: a record was deleted); seq 1 to 2 verified",
				"stream " + streamB + ": intact", "verdict: BROKEN: stream " + streamA + " at seq 3\n"}, nil, nil},
		{"fragment", []string{"verify", "--file", fragment, "--key-file", keyFile}, 0,
			[]string{"fragments: 1 cut record(s) skipped, not a failure by themselves: line 3", "verdict: INTACT"}, nil, nil},
		{"stdin", []string{"verify", "--file", "-", "--key-file", keyFile}, 0, []string{"verdict: INTACT: 2 stream(s)"}, nil, nil},
		{"wrong key", []string{"verify", "--file", intact, "--key-file", otherKey}, 1,
			[]string{"BROKEN at seq 1 (line 1): seq 1: chain does not match", "nothing verified", "check that --key-file is this gateway's audit key"}, nil, nil},
		{"empty file", []string{"verify", "--file", empty, "--key-file", keyFile}, 1, []string{"verdict: NOTHING PROVEN"}, nil, nil},
		{"postgres unreachable", []string{"verify", "--postgres-url", "postgres://u:pw@127.0.0.1:1/db", "--key-file", keyFile}, 2, nil, []string{"connecting to the audit database"}, nil},
		{"file and postgres", []string{"verify", "--file", intact, "--postgres-url", "postgres://x", "--key-file", keyFile}, 2, nil, []string{"one of --file and --postgres-url"}, nil},
		{"no key", []string{"verify", "--file", intact}, 2, nil, []string{"--key-file is required"}, nil},
		{"short key", []string{"verify", "--file", intact, "--key-file", shortKey}, 2, nil, []string{"at least 32 are required"}, nil},
		{"no file", []string{"verify", "--file", filepath.Join(dir, "nope"), "--key-file", keyFile}, 2, nil, []string{"no such file"}, nil},
		{"no command", nil, 2, nil, []string{"usage:"}, nil},
		{"unknown command", []string{"check"}, 2, nil, []string{"usage:"}, nil},
		{"unknown flag", []string{"verify", "--since", "x"}, 2, nil, nil, nil},
		{"extra argument", []string{"verify", "--file", intact, "--key-file", keyFile, "more"}, 2, nil, []string{`unexpected argument "more"`}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			stdin := bytes.NewReader(join(chainedLog(testKey, 3, streamA, streamB)))
			code := run(tc.args, stdin, &stdout, &stderr)
			if code != tc.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, stdout.String(), stderr.String())
			}
			for _, s := range tc.out {
				if !strings.Contains(stdout.String(), s) {
					t.Errorf("stdout lacks %q:\n%s", s, stdout.String())
				}
			}
			for _, s := range tc.outMissing {
				if strings.Contains(stdout.String(), s) {
					t.Errorf("stdout has %q:\n%s", s, stdout.String())
				}
			}
			for _, s := range tc.err {
				if !strings.Contains(stderr.String(), s) {
					t.Errorf("stderr lacks %q:\n%s", s, stderr.String())
				}
			}
		})
	}
}

// One line per stream, plus the verdict.
func TestOutputLines(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "key")
	log := filepath.Join(dir, "log")
	os.WriteFile(key, testKey, 0o600)
	os.WriteFile(log, append(bytes.Join(chainedLog(testKey, 4, streamA, streamB), []byte("\n")), '\n'), 0o600)
	var stdout, stderr bytes.Buffer
	if code := run([]string{"verify", "--file", log, "--key-file", key}, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if n := strings.Count(stdout.String(), "\n"); n != 3 {
		t.Errorf("%d lines, want 3:\n%s", n, stdout.String())
	}
}
