package filter

import (
	"errors"
	"math/rand/v2"
	"testing"
)

// plainRunBytewise is plainRun's definition, one byte at a time.
func plainRunBytewise(src []byte, i int) int {
	for i < len(src) && plainStringByte[src[i]] {
		i++
	}
	return i
}

func TestPlainRunMatchesBytewise(t *testing.T) {
	// Every special byte at every offset of a 24-byte run of each filler,
	// including fillers next to the borrow boundaries (0x00, 0x20, 0x21,
	// 0x7f, 0x80, 0xff) and multi-byte UTF-8.
	specials := []byte{'"', '\\', 0x00, 0x1f, 0x0a}
	fillers := []byte{'a', ' ', '!', 0x7f, 0x80, 0xc3, 0xff, '#', ']', '['}
	for _, f := range fillers {
		for _, sp := range specials {
			for at := 0; at < 24; at++ {
				src := make([]byte, 24)
				for i := range src {
					src[i] = f
				}
				src[at] = sp
				for start := 0; start <= len(src); start++ {
					if got, want := plainRun(src, start), plainRunBytewise(src, start); got != want {
						t.Fatalf("filler %#x special %#x at %d from %d: plainRun = %d, want %d", f, sp, at, start, got, want)
					}
				}
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		src := make([]byte, rng.IntN(40))
		for i := range src {
			switch rng.IntN(8) {
			case 0:
				src[i] = specials[rng.IntN(len(specials))]
			default:
				src[i] = byte(rng.IntN(256))
			}
		}
		start := 0
		if len(src) > 0 {
			start = rng.IntN(len(src) + 1)
		}
		if got, want := plainRun(src, start), plainRunBytewise(src, start); got != want {
			t.Fatalf("%q from %d: plainRun = %d, want %d", src, start, got, want)
		}
	}
}

// Keys with the same length and the same first and last bytes share a
// signature; only equal keys are duplicates.
func TestDuplicateCheckComparesWholeKeys(t *testing.T) {
	tr := mustCompile(t, "axb", "ayb")
	out, err := tr.Filter(nil, []byte(`{"axb":1,"ayb":2}`), nil)
	if err != nil || string(out) != `{"axb":1,"ayb":2}` {
		t.Fatalf("Filter = %s, %v", out, err)
	}
	for _, in := range []string{`{"axb":1,"ayb":2,"axb":3}`, `{"axb":1,"a\u0078b":2}`} {
		if _, err := tr.Filter(nil, []byte(in), nil); !errors.Is(err, ErrDuplicateKey) {
			t.Fatalf("Filter(%s) error = %v, want ErrDuplicateKey", in, err)
		}
	}
}

// Nodes with more children than linearLookupMax use the map; both paths
// must find the same children.
func TestChildLookupAboveLinearLimit(t *testing.T) {
	var paths []string
	for i := range linearLookupMax + 4 {
		paths = append(paths, "f"+string(rune('a'+i)))
	}
	tr := mustCompile(t, paths...)
	if len(tr.root.names) <= linearLookupMax {
		t.Fatalf("root has %d children, want more than %d", len(tr.root.names), linearLookupMax)
	}
	out, err := tr.Filter(nil, []byte(`{"fa":1,"ft":2,"zz":3}`), nil)
	if err != nil || string(out) != `{"fa":1,"ft":2}` {
		t.Fatalf("Filter = %s, %v", out, err)
	}
}
