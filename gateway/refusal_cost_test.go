package gateway

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/popconnect/popconnect/gateway/audit"
	"github.com/popconnect/popconnect/gateway/metrics"
	"github.com/popconnect/popconnect/gateway/policy"
)

// hostileObject is {"k0":0,"k1":0,...} of about size bytes: the body shape
// of finding 2 (~4,700 keys in 60 KiB once nested in a request).
func hostileObject(size int) []byte {
	b := []byte{'{'}
	for n := 0; len(b) < size-16; n++ {
		if n > 0 {
			b = append(b, ',')
		}
		b = append(b, `"key`...)
		b = strconv.AppendInt(b, int64(n), 10)
		b = append(b, `":0`...)
	}
	return append(b, '}')
}

// longStringOf is a JSON string of exactly size bytes, quotes included.
func longStringOf(size int) []byte {
	return append(append([]byte{'"'}, bytes.Repeat([]byte{'a'}, size-2)...), '"')
}

// TestRefusalReadsOnlyTheIDs: a refused Verify or BatchLookup reads its
// body only as far as the national IDs the audit records, whatever
// follows them; IDs are found wherever they are among the members.
func TestRefusalReadsOnlyTheIDs(t *testing.T) {
	a, b := id(t, 7), id(t, 8)
	hostile := string(hostileObject(60 << 10))
	tests := []struct {
		name string
		op   policy.Operation
		head string // read up to its end at most
		tail string
		want []string
	}{
		{"verify, hostile after the id", policy.OperationVerify, `{"nationalId":"` + a + `"`, `,"fullName":` + hostile + `}`, []string{a}},
		{"verify, invalid after the id", policy.OperationVerify, `{"nationalId":"` + a + `"`, `,"fullName":{{{`, []string{a}},
		{"verify, id after another member", policy.OperationVerify, `{"fullName":{"a":1},"nationalId":"` + a + `"`, `}`, []string{a}},
		{"verify, duplicates before the id", policy.OperationVerify, `{"x":{"a":1,"a":2},"x":1,"nationalId":"` + a + `"`, `}`, []string{a}},
		{"verify, the first of two ids", policy.OperationVerify, `{"nationalId":"` + a + `"`, `,"nationalId":"` + b + `"}`, []string{a}},
		{"verify, invalid id", policy.OperationVerify, `{"nationalId":"123"`, `,"fullName":` + hostile + `}`, nil},
		{"batch, hostile after the list", policy.OperationBatchLookup, `{"nationalIds":["` + a + `","` + b + `"]`, `,"x":` + hostile + `}`, []string{a, b}},
		{"batch, list with an invalid id", policy.OperationBatchLookup, `{"nationalIds":["` + a + `","1"]`, `,"x":` + hostile + `}`, nil},
		{"lookup has no body ids", policy.OperationLookup, ``, `{"nationalId":"` + a + `"}`, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ids, read := bodyIDs(tc.op, []byte(tc.head+tc.tail))
			if !slices.Equal(ids, tc.want) {
				t.Fatalf("ids %v, want %v", ids, tc.want)
			}
			if read > len(tc.head) {
				t.Fatalf("read %d bytes of %d, want at most %d (up to the ids)", read, len(tc.head+tc.tail), len(tc.head))
			}
		})
	}
}

// BenchmarkRefusedVerify serves a Verify of a suspended agency whose 60 KiB
// body holds an object of ~4,700 keys (after the ID, or before it), and one
// whose body holds one string of the same size: a refusal costs about the
// same for all three.
func BenchmarkRefusedVerify(b *testing.B) {
	al, err := audit.NewLogger(io.Discard, []byte("an audit key of at least 32 bytes!!"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { al.Close() })
	u, _ := url.Parse("http://127.0.0.1:1") // never called: every request is refused
	g, err := New(Config{UpstreamURL: u, Location: time.UTC, Audit: al, Metrics: metrics.New(),
		Log: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(g.Close)
	if err := g.SetPolicy(policy.Merge(map[string]*policy.Document{"bench": {Version: "v1", Agencies: defaultAgencies()}})); err != nil {
		b.Fatal(err)
	}
	obj := string(hostileObject(60 << 10))
	hostile := `{"nationalId":"001030000000","fullName":` + obj + `}`
	// The same keys before the ID: read (and checked for duplicates) to
	// reach it, in linear time.
	before := `{"fullName":` + obj + `,"nationalId":"001030000000"}`
	same := `{"nationalId":"001030000000","fullName":` + string(longStringOf(len(hostile)-len(`{"nationalId":"001030000000","fullName":}`))) + `}`
	for _, bc := range []struct{ name, body string }{{"manyKeys", hostile}, {"manyKeysBeforeID", before}, {"longString", same}} {
		b.Run(bc.name, func(b *testing.B) {
			w := &discardWriter{h: http.Header{}}
			b.SetBytes(int64(len(bc.body)))
			b.ReportAllocs()
			cpu := startCPU(b)
			for b.Loop() {
				r := httptest.NewRequest("POST", "/v1/citizens:verify", strings.NewReader(bc.body))
				r.TLS = agencyTLS("SUSP")
				clear(w.h)
				w.code = 0
				g.ServeHTTP(w, r)
				if w.code != http.StatusForbidden {
					b.Fatalf("status %d", w.code)
				}
			}
			cpu.report(b)
		})
	}
}

// agencyTLS is the connection state of a client certificate verified for
// agency.
func agencyTLS(agency string) *tls.ConnectionState {
	u, _ := url.Parse("spiffe://popconnect.io/agency/" + agency)
	return &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{{URIs: []*url.URL{u}}}}}
}

// BenchmarkParseVerifyBody parses an admitted agency's Verify body of 60
// KiB holding an object of ~4,700 keys (refused: a value must be a
// scalar), and one holding one string of the same size.
func BenchmarkParseVerifyBody(b *testing.B) {
	obj := string(hostileObject(60 << 10))
	hostile := `{"nationalId":"001030000000","fullName":` + obj + `}`
	same := `{"nationalId":"001030000000","fullName":` + string(longStringOf(len(obj))) + `}`
	for _, bc := range []struct {
		name, body string
		ok         bool
	}{{"manyKeys", hostile, false}, {"longString", same, true}} {
		b.Run(bc.name, func(b *testing.B) {
			body := []byte(bc.body)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			cpu := startCPU(b)
			for b.Loop() {
				if _, err := parseVerifyBody(body); (err == nil) != bc.ok {
					b.Fatal(err)
				}
			}
			cpu.report(b)
		})
	}
}
