package h1server

import (
	"strings"
	"testing"

	"golang.org/x/net/http2/hpack"
)

// TestHpackEncoding decodes what the native server's encoder writes with
// x/net's decoder: the same fields come back, by static index or as
// literals, and the decoder's dynamic table stays empty.
func TestHpackEncoding(t *testing.T) {
	long := strings.Repeat("v", 300) // a length past the 7-bit prefix
	tests := []struct {
		name   string
		encode func([]byte) []byte
		want   []hpack.HeaderField
		size   int // encoded bytes, when checked (0: not)
	}{
		{"status 200 indexed", func(b []byte) []byte { return appendHpackStatus(b, 200) },
			[]hpack.HeaderField{{Name: ":status", Value: "200"}}, 1},
		{"status 404 indexed", func(b []byte) []byte { return appendHpackStatus(b, 404) },
			[]hpack.HeaderField{{Name: ":status", Value: "404"}}, 1},
		{"status 429 literal", func(b []byte) []byte { return appendHpackStatus(b, 429) },
			[]hpack.HeaderField{{Name: ":status", Value: "429"}}, 5},
		{"status 999 literal", func(b []byte) []byte { return appendHpackStatus(b, 999) },
			[]hpack.HeaderField{{Name: ":status", Value: "999"}}, 5},
		{"static name", func(b []byte) []byte { return appendHpackLiteral(b, "allow", "GET") },
			[]hpack.HeaderField{{Name: "allow", Value: "GET"}}, 2 + 1 + 3},
		{"static name, index past the 4-bit prefix", func(b []byte) []byte {
			return appendHpackLiteral(b, "content-type", "application/json")
		}, []hpack.HeaderField{{Name: "content-type", Value: "application/json"}}, 2 + 1 + 16},
		{"new name", func(b []byte) []byte { return appendHpackLiteral(b, "x-request-id", "gw-1a2b") },
			[]hpack.HeaderField{{Name: "x-request-id", Value: "gw-1a2b"}}, 1 + 1 + 12 + 1 + 7},
		{"long value", func(b []byte) []byte { return appendHpackLiteral(b, "x-filler", long) },
			[]hpack.HeaderField{{Name: "x-filler", Value: long}}, 0},
		{"empty value", func(b []byte) []byte { return appendHpackLiteral(b, "x-empty", "") },
			[]hpack.HeaderField{{Name: "x-empty", Value: ""}}, 0},
		{"a gateway answer", func(b []byte) []byte {
			b = appendHpackTableSizeZero(b)
			b = appendHpackStatus(b, 200)
			b = appendHpackLiteral(b, "content-type", "application/json")
			b = appendHpackLiteral(b, "cache-control", "no-store")
			b = appendHpackLiteral(b, "x-content-type-options", "nosniff")
			b = appendHpackLiteral(b, "content-length", "1234")
			return appendHpackLiteral(b, "date", "Wed, 02 Dec 2026 17:00:00 GMT")
		}, []hpack.HeaderField{{Name: ":status", Value: "200"}, {Name: "content-type", Value: "application/json"},
			{Name: "cache-control", Value: "no-store"}, {Name: "x-content-type-options", Value: "nosniff"},
			{Name: "content-length", Value: "1234"}, {Name: "date", Value: "Wed, 02 Dec 2026 17:00:00 GMT"}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			block := tt.encode(nil)
			if tt.size != 0 && len(block) != tt.size {
				t.Errorf("encoded in %d bytes, want %d: % x", len(block), tt.size, block)
			}
			dec := hpack.NewDecoder(4096, nil)
			got, err := dec.DecodeFull(block)
			if err != nil {
				t.Fatalf("decode: %v (% x)", err, block)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("decoded %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i].Name != tt.want[i].Name || got[i].Value != tt.want[i].Value {
					t.Fatalf("field %d = %v, want %v", i, got[i], tt.want[i])
				}
			}
			// Nothing was added to the decoder's table: a block that refers
			// to its first dynamic entry fails.
			if _, err := dec.DecodeFull([]byte{0x80 | 62}); err == nil {
				t.Fatal("the decoder's dynamic table has an entry")
			}
		})
	}
}

// TestHpackTableSizeZero: a client that allows no dynamic table at all
// (SETTINGS_HEADER_TABLE_SIZE 0) decodes the connection's first block,
// whose size update is within its limit.
func TestHpackTableSizeZero(t *testing.T) {
	block := appendHpackTableSizeZero(nil)
	block = appendHpackStatus(block, 200)
	block = appendHpackLiteral(block, "content-type", "application/json")
	dec := hpack.NewDecoder(4096, nil)
	dec.SetAllowedMaxDynamicTableSize(0)
	got, err := dec.DecodeFull(block)
	if err != nil || len(got) != 2 {
		t.Fatalf("decoded %v, %v", got, err)
	}
}

// TestHpackInt: the integer coding at the prefix boundaries (RFC 7541,
// 5.1 and its examples C.1).
func TestHpackInt(t *testing.T) {
	tests := []struct {
		n    uint
		i    uint64
		want []byte
	}{
		{5, 10, []byte{10}},
		{5, 1337, []byte{31, 154, 10}},
		{8, 42, []byte{42}},
		{4, 14, []byte{14}},
		{4, 15, []byte{15, 0}},
		{4, 16, []byte{15, 1}},
		{7, 127, []byte{127, 0}},
		{7, 255, []byte{127, 128, 1}},
	}
	for _, tt := range tests {
		if got := appendHpackInt(nil, 0, tt.n, tt.i); string(got) != string(tt.want) {
			t.Errorf("%d with a %d-bit prefix = % x, want % x", tt.i, tt.n, got, tt.want)
		}
	}
}

// TestHpackName: a handler's header name becomes the lower-case name of a
// literal field (by static index when the table has it), the same from
// the connection's cache as the first time; an invalid name is refused
// and not kept.
func TestHpackName(t *testing.T) {
	h := &h2n{}
	h.initWrite()
	for _, tt := range []struct {
		key, want string // want "": refused
	}{
		{"Content-Type", "content-type"},
		{"X-Request-Id", "x-request-id"},
		{"X-Content-Type-Options", "x-content-type-options"},
		{"Bad Name", ""},
		{"", ""},
	} {
		for round := range 2 { // the second from the cache
			name, ok := h.hpackName(tt.key)
			if ok != (tt.want != "") {
				t.Fatalf("%q (round %d): ok %v, want %v", tt.key, round, ok, tt.want != "")
			}
			if !ok {
				if _, kept := h.names[tt.key]; kept {
					t.Fatalf("%q: an invalid name was kept", tt.key)
				}
				continue
			}
			block := appendHpackString(append([]byte(nil), name...), "v")
			got, err := hpack.NewDecoder(4096, nil).DecodeFull(block)
			if err != nil || len(got) != 1 || got[0].Name != tt.want || got[0].Value != "v" {
				t.Fatalf("%q (round %d): decoded %v, %v; want %s: v", tt.key, round, got, err, tt.want)
			}
		}
	}
}
