package audit

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for concurrent committers and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func mustCommit(t *testing.T, l *Logger, rec *Record) {
	t.Helper()
	if err := l.Commit(rec); err != nil {
		t.Fatal(err)
	}
}

func testKey() []byte { return []byte("0123456789abcdef0123456789abcdef") }

func TestKeyLength(t *testing.T) {
	if _, err := NewLogger(&bytes.Buffer{}, []byte("short")); err == nil {
		t.Fatal("short key accepted")
	}
	dir := t.TempDir()
	short := filepath.Join(dir, "short")
	os.WriteFile(short, make([]byte, 31), 0o600)
	if _, err := ReadKeyFile(short); err == nil {
		t.Fatal("31-byte key file accepted")
	}
	good := filepath.Join(dir, "good")
	os.WriteFile(good, append(make([]byte, 32), '\n'), 0o600)
	if k, err := ReadKeyFile(good); err != nil || len(k) != 33 {
		t.Fatalf("key file read as %d bytes, %v; the bytes are the key as is", len(k), err)
	}
}

func TestRecordsAndHash(t *testing.T) {
	out := &syncBuffer{}
	l, err := NewLogger(out, testKey())
	if err != nil {
		t.Fatal(err)
	}
	const id = "001099000001"
	h := l.Hash(id)
	mac := hmac.New(sha256.New, testKey())
	mac.Write([]byte(id))
	if h != hex.EncodeToString(mac.Sum(nil)) {
		t.Fatalf("hash %s is not HMAC-SHA256", h)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 600_000_000, time.UTC)
	mustCommit(t, l, &Record{Time: now, RequestID: "r1", Agency: "BYT", Operation: "Lookup", NationalIDHashes: []string{h},
		FieldsReturned: []string{"fullName"}, Status: 200, Latency: 1500 * time.Microsecond})
	mustCommit(t, l, &Record{Time: now, RequestID: "r2\"\n", Agency: "BYT", Operation: "BatchLookup", Batch: true,
		NationalIDHashes: []string{h, h}, Status: 429, Reason: "rate_limited"})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("lines: %q", lines)
	}
	var first, second map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &second); err != nil {
		t.Fatal(err)
	}
	if first["nationalIdHash"] != h || first["latencyMs"] != 1.5 || first["time"] != "2026-01-02T03:04:05.600000Z" {
		t.Fatalf("first: %v", first)
	}
	if hs, ok := second["nationalIdHash"].([]any); !ok || len(hs) != 2 || second["reason"] != "rate_limited" || second["requestId"] != "r2\"\n" {
		t.Fatalf("second: %v", second)
	}
	if strings.Contains(out.String(), id) {
		t.Fatal("national ID in the audit log")
	}
}

func TestNoneLostOnClose(t *testing.T) {
	out := &syncBuffer{}
	l, _ := NewLogger(out, testKey())
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				if err := l.Commit(&Record{RequestID: strings.Repeat("x", g+i%7), Status: 200}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), "\n"); n != 8000 {
		t.Fatalf("%d lines, want 8000", n)
	}
}

// TestRecordLine pins a record's bytes: the fields in order, the purpose
// and case reference only when set (JSON-escaped), then stream, seq and
// chain last; the chain checks out.
func TestRecordLine(t *testing.T) {
	out := &syncBuffer{}
	l, err := NewLogger(out, testKey(), WithStream(testStream))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 600_000_000, time.UTC)
	mustCommit(t, l, &Record{Time: now, RequestID: "r1", Agency: "BYT", Operation: "Lookup", NationalIDHashes: []string{"ab"},
		FieldsReturned: []string{"fullName"}, Status: 200, Latency: 1500 * time.Microsecond})
	mustCommit(t, l, &Record{Time: now, RequestID: "r2", Agency: "CA", Operation: "Lookup", Status: 403, Reason: "field_not_allowed",
		Purpose: "Criminal investigation", CaseReference: "HN-2026/\"77\"\n"})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	want := []string{
		`{"time":"2026-01-02T03:04:05.600000Z","requestId":"r1","agency":"BYT","operation":"Lookup","nationalIdHash":"ab","fieldsReturned":["fullName"],"status":200,"latencyMs":1.500,"stream":"` + testStream + `","seq":1,"chain":"`,
		`{"time":"2026-01-02T03:04:05.600000Z","requestId":"r2","agency":"CA","operation":"Lookup","nationalIdHash":null,"fieldsReturned":[],"status":403,"reason":"field_not_allowed","latencyMs":0.000,"purpose":"Criminal investigation","caseReference":"HN-2026/\"77\"\u000a","stream":"` + testStream + `","seq":2,"chain":"`,
	}
	if len(lines) != len(want) {
		t.Fatalf("lines %q", lines)
	}
	for i := range want {
		if !strings.HasPrefix(lines[i], want[i]) || len(lines[i]) != len(want[i])+ChainHexLen+2 {
			t.Fatalf("line %d:\n got %s\nwant %s<64 hex>\"}", i+1, lines[i], want[i])
		}
	}
	if n := checkChain(t, out.String()); n != 2 {
		t.Fatalf("chain of %d records", n)
	}
}

// TestSealBatchAsLogger: the batches SealBatch builds for sink and verifier
// tests hold exactly the lines the Logger writes.
func TestSealBatchAsLogger(t *testing.T) {
	out := &syncBuffer{}
	l, err := NewLogger(out, testKey(), WithStream(testStream))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	recs := []*Record{
		{Time: now, RequestID: "r1", Agency: "BYT", Operation: "Lookup", NationalIDHashes: []string{"ab"}, Status: 200},
		{Time: now, RequestID: "r2", Agency: "CA", Operation: "Lookup", Status: 403, Reason: "field_not_allowed", Purpose: "p", CaseReference: "c"},
	}
	for _, r := range recs {
		mustCommit(t, l, r)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := string(SealBatch(testKey(), testStream, 1, "", recs).Lines); got != out.String() {
		t.Fatalf("SealBatch:\n%s\nLogger:\n%s", got, out.String())
	}
}

// TestRecordLineAgencyNameDiscloseAfter: agencyName and discloseAfter come
// after the case reference, only when set.
func TestRecordLineAgencyNameDiscloseAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 600_000_000, time.UTC)
	got := string(appendRecord(nil, &Record{Time: now, RequestID: "r", Agency: "CA", Operation: "Lookup", Status: 200,
		Purpose: "p", AgencyName: "Công an \"HN\"", DiscloseAfter: now.Add(8760 * time.Hour)}))
	want := `{"time":"2026-01-02T03:04:05.600000Z","requestId":"r","agency":"CA","operation":"Lookup","nationalIdHash":null,"fieldsReturned":[],"status":200,"latencyMs":0.000,"purpose":"p","agencyName":"Công an \"HN\"","discloseAfter":"2027-01-02T03:04:05.600000Z"`
	if got != want {
		t.Fatalf("record\n%s\nwant\n%s", got, want)
	}
}
