package audit

import (
	"bytes"
	"testing"
	"time"
)

// TestSealBatch: the batch's lines split into bodies and chains that
// chain from prevChain, and a second batch continues the first.
func TestSealBatch(t *testing.T) {
	key := bytes.Repeat([]byte{7}, MinKeyBytes)
	rec := &Record{Time: time.Unix(1, 0), RequestID: "r", Agency: "a", Operation: "Lookup", NationalIDHashes: []string{"h"}, Status: 200}
	b1 := SealBatch(key, "s", 1, "", []*Record{rec, rec})
	b2 := SealBatch(key, "s", 3, b1.Chain(1), []*Record{rec})
	all := SealBatch(key, "s", 1, "", []*Record{rec, rec, rec})
	if b2.Chain(0) != all.Chain(2) || string(b2.Line(0)) != string(all.Line(2)) {
		t.Fatalf("a batch sealed after another differs from one sealed at once:\n%s\n%s", b2.Line(0), all.Line(2))
	}
	c := NewChainer(key)
	prev := []byte(nil)
	for i := range all.Records {
		body, chain, ok := SplitChain(all.Line(i))
		if !ok || !bytes.Equal(body, all.Body(i)) || string(chain) != all.Chain(i) {
			t.Fatalf("record %d: SplitChain(%s) = %q %q %v", i, all.Line(i), body, chain, ok)
		}
		// The appending forms give the same bytes after what dst holds.
		if got := all.AppendBody([]byte("x"), i); string(got) != "x"+string(body) {
			t.Fatalf("record %d: AppendBody = %q, want x%s", i, got, body)
		}
		if got := all.AppendChain([]byte("x"), i); string(got) != "x"+string(chain) {
			t.Fatalf("record %d: AppendChain = %q, want x%s", i, got, chain)
		}
		if want := c.Next(nil, prev, body); !bytes.Equal(want, chain) {
			t.Fatalf("record %d: chain %s, want %s", i, chain, want)
		}
		if !bytes.HasSuffix(body, []byte(`,"stream":"s","seq":`+string(rune('1'+i))+`}`)) {
			t.Fatalf("record %d: body %s", i, body)
		}
		prev = chain
	}
	if !bytes.HasSuffix(all.Lines, []byte("\"}\n")) || bytes.Count(all.Lines, []byte("\n")) != 3 {
		t.Fatalf("lines: %q", all.Lines)
	}
}
