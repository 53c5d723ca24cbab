package filter

import (
	"encoding/json"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/popconnect/popconnect/internal/popdb"
)

// wrap nests an object as shape does: at the top, as a member's value, or
// as an array element, which are the ways the gateway meets objects (an
// upstream record, a Verify value, a batch record).
func wrap(shape string, obj []byte) []byte {
	switch shape {
	case "member":
		return append(append([]byte(`{"a":`), obj...), '}')
	case "element":
		return append(append([]byte(`{"records":[`), obj...), ']', '}')
	}
	return obj
}

// TestDuplicateCheckLinear: the duplicate-key check of an object of n keys
// looks at O(n) keys, not n²/2. It counts the keys looked at (scanner.cmps)
// rather than timing anything, comparing a 60 KiB object of ~4,700 keys
// with one of one key and a long string, through every entry point.
func TestDuplicateCheckLinear(t *testing.T) {
	many, n := manyKeys(hostileSize)
	one := oneString(len(many))
	trie := mustCompile(t, "a.k1", "records.k1", "k1")
	// perKey bounds the keys looked at per key inserted; the quadratic
	// check looked at n/2 on average (about 2,350 here).
	const perKey = 8
	for _, shape := range []string{"top", "member", "element"} {
		entries := map[string]func(src []byte) (int, error){
			"skip": func(src []byte) (int, error) {
				s := scanner{src: src}
				err := s.skip(0)
				return s.cmps, err
			},
			"filter": func(src []byte) (int, error) {
				_, cmps, err := trie.filterCounting(nil, src)
				return cmps, err
			},
		}
		for entry, run := range entries {
			gotMany, err := run(wrap(shape, many))
			if err != nil {
				t.Fatalf("%s %s: %v", shape, entry, err)
			}
			gotOne, err := run(wrap(shape, one))
			if err != nil {
				t.Fatalf("%s %s: %v", shape, entry, err)
			}
			t.Logf("%s %s: %d keys: %d key comparisons; one key, same size: %d", shape, entry, n, gotMany, gotOne)
			if gotMany > perKey*n {
				t.Errorf("%s %s: %d keys: %d key comparisons (one key, same size: %d), want at most %d", shape, entry, n, gotMany, gotOne, perKey*n)
			}
		}
	}
}

// TestDuplicateKeyFoundAtAnySize: the check still finds a duplicate
// however many keys come before it, escaped or not, and in small objects
// (a linear search) as in large ones (a hash table).
func TestDuplicateKeyFoundAtAnySize(t *testing.T) {
	for _, n := range []int{1, 2, 7, 8, 9, 16, 17, 100, 4700} {
		for _, dup := range []string{`"k0"`, `"k\u0030"`, `"k` + strconv.Itoa(n-1) + `"`} {
			b := []byte{'{'}
			for i := range n {
				b = append(b, `"k`...)
				b = strconv.AppendInt(b, int64(i), 10)
				b = append(b, `":0,`...)
			}
			b = append(b, dup...)
			b = append(b, `:1}`...)
			s := scanner{src: b}
			if err := s.skip(0); err != ErrDuplicateKey {
				t.Errorf("%d keys then %s: %v, want ErrDuplicateKey", n, dup, err)
			}
			// The same keys nested twice, each object on its own: no
			// duplicate across objects.
			ok := append([]byte(`{"x":`), b[:len(b)-len(dup)-4]...)
			ok = append(ok, `},"y":`...)
			ok = append(ok, b[:len(b)-len(dup)-4]...)
			ok = append(ok, `}}`...)
			s = scanner{src: ok}
			if err := s.skip(0); err != nil {
				t.Errorf("%d keys in two sibling objects: %v", n, err)
			}
		}
	}
}

// TestDuplicateCheckMatchesReference: on random objects of up to 300 keys
// drawn from a small alphabet (so that duplicates are common, in linear
// and hashed objects, nested and escaped), the check finds a duplicate
// exactly when a set of the decoded keys does.
func TestDuplicateCheckMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 3000 {
		n := 1 + rng.IntN(300)
		space := n + rng.IntN(4*n) // keys drawn from space names
		seen := map[string]bool{}
		dup := false
		b := []byte(`{"outer":[1,{`)
		for i := range n {
			k := "f" + strconv.Itoa(rng.IntN(space))
			dup = dup || seen[k]
			seen[k] = true
			if i > 0 {
				b = append(b, ',')
			}
			if rng.IntN(8) == 0 { // the same key, escaped
				b = append(b, `"\u0066`+k[1:]+`":`...)
			} else {
				b = append(b, `"`+k+`":`...)
			}
			if rng.IntN(20) == 0 { // a nested object reusing names: never a duplicate of its parent's
				b = append(b, `{"f1":1,"f2":{"f1":2}}`...)
			} else {
				b = strconv.AppendInt(b, int64(i), 10)
			}
		}
		b = append(b, `}]}`...)
		s := scanner{src: b}
		err := s.skip(0)
		if dup != (err == ErrDuplicateKey) || (!dup && err != nil) {
			t.Fatalf("%d keys, duplicate %v: %v\n%s", n, dup, err, b)
		}
	}
}

// TestDuplicateCheckRecord: on a population record (28 top-level keys,
// several small nested objects) the signature mask leaves few key
// comparisons: the linear check alone made one per pair of keys of an
// object (408 per record, 378 of them at the top level). The bound is on
// the count, so the test is deterministic.
func TestDuplicateCheckRecord(t *testing.T) {
	gen, err := popdb.NewGenerator(1, 1000)
	if err != nil {
		t.Fatal(err)
	}
	trie := mustCompile(t, "nationalId", "fullName", "relatives.fullName")
	for i := range int64(50) {
		rec, err := json.Marshal(gen.Record(i))
		if err != nil {
			t.Fatal(err)
		}
		_, cmps, err := trie.filterCounting(nil, rec)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if cmps > 120 {
			t.Errorf("record %d: %d key comparisons, want at most 120 (73 with the mask, 408 comparing every pair)", i, cmps)
		}
	}
}
