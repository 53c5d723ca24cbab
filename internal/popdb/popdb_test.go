package popdb

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestNationalIDRoundTrip(t *testing.T) {
	for _, i := range []int64{0, 1, 62, 63, 125, 126, 11465, 999_999, 123_456_789, MaxRecords - 1} {
		id, err := NationalID(i)
		if err != nil {
			t.Fatalf("NationalID(%d): %v", i, err)
		}
		if !ValidNationalID(id) {
			t.Fatalf("NationalID(%d) = %q, not 12 digits", i, id)
		}
		back, err := RecordIndex(id)
		if err != nil || back != i {
			t.Fatalf("RecordIndex(%q) = %d, %v; want %d", id, back, err, i)
		}
	}
	if _, err := NationalID(MaxRecords); err == nil {
		t.Fatal("NationalID(MaxRecords) succeeded")
	}
}

func TestRecordIndexRejects(t *testing.T) {
	for _, id := range []string{"", "12345678901", "1234567890123", "00100000000a", "003000000001", "001400000001", "001029000001", "001221000001"} {
		if _, err := RecordIndex(id); err == nil {
			t.Errorf("RecordIndex(%q) succeeded", id)
		}
	}
}

// leafPaths lists the dotted paths of every scalar in v, arrays transparent.
func leafPaths(prefix string, v any, out map[string]bool) {
	switch t := v.(type) {
	case map[string]any:
		for k, c := range t {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			leafPaths(p, c, out)
		}
	case []any:
		for _, e := range t {
			leafPaths(prefix, e, out)
		}
	default:
		out[prefix] = true
	}
}

func TestRecordHasExactlyTheCatalogPaths(t *testing.T) {
	g, err := NewGenerator(7, 100_000)
	if err != nil {
		t.Fatal(err)
	}
	want := append([]string{"nationalId"}, FieldPaths()...)
	slices.Sort(want)
	for i := int64(0); i < 2000; i += 13 {
		raw, _ := json.Marshal(g.Record(i))
		var doc any
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		leafPaths("", doc, got)
		keys := slices.Sorted(func(yield func(string) bool) {
			for k := range got {
				if !yield(k) {
					return
				}
			}
		})
		if !reflect.DeepEqual(keys, want) {
			t.Fatalf("record %d paths:\n got %v\nwant %v", i, keys, want)
		}
	}
}

func TestDeterministicAndSeeded(t *testing.T) {
	a, _ := NewGenerator(1, 1000)
	b, _ := NewGenerator(1, 1000)
	c, _ := NewGenerator(2, 1000)
	if !reflect.DeepEqual(a.Record(42), b.Record(42)) {
		t.Fatal("same seed, different records")
	}
	if reflect.DeepEqual(a.Record(42), c.Record(42)) {
		t.Fatal("different seeds, same record")
	}
	if a.Record(42).NationalID != c.Record(42).NationalID {
		t.Fatal("national IDs must not depend on the seed")
	}
}

func TestHandler(t *testing.T) {
	g, _ := NewGenerator(3, 1000)
	srv := httptest.NewServer(Handler(g))
	defer srv.Close()
	in, _ := NationalID(5)
	out, _ := NationalID(1000)
	rec := g.Record(5)

	tests := []struct {
		name, method, path, body string
		status                   int
		contains                 string
	}{
		{"lookup", "GET", "/v1/citizens/" + in, "", 200, rec.FullName},
		{"beyond records", "GET", "/v1/citizens/" + out, "", 404, "no such citizen"},
		{"malformed", "GET", "/v1/citizens/12ab", "", 400, "12 digits"},
		{"verify match", "POST", "/v1/citizens:verify", `{"nationalId":"` + in + `","fullName":"` + rec.FullName + `","permanentAddress.province":"` + rec.PermanentAddress.Province + `"}`, 200, `{"match":true}`},
		{"verify mismatch", "POST", "/v1/citizens:verify", `{"nationalId":"` + in + `","fullName":"Nobody"}`, 200, `{"match":false}`},
		{"verify array path", "POST", "/v1/citizens:verify", `{"nationalId":"` + in + `","relatives.relation":"mother"}`, 200, `{"match":true}`},
		{"verify unknown field", "POST", "/v1/citizens:verify", `{"nationalId":"` + in + `","shoeSize":"42"}`, 400, "unknown field"},
		{"batch", "POST", "/v1/citizens:batchLookup", `{"nationalIds":["` + in + `","` + out + `"]}`, 200, `"notFound":["` + out + `"]`},
		{"batch too big", "POST", "/v1/citizens:batchLookup", `{"nationalIds":[` + strings.Repeat(`"`+in+`",`, 100) + `"` + in + `"]}`, 400, "1..100"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var b strings.Builder
			_, _ = io.Copy(&b, resp.Body)
			if resp.StatusCode != tc.status || !strings.Contains(b.String(), tc.contains) {
				t.Fatalf("got %d %s; want %d containing %q", resp.StatusCode, b.String(), tc.status, tc.contains)
			}
		})
	}
}
