package filter

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"
)

// propertyKeys is small so random records and allow-lists overlap often.
func propertyKeys() []string { return []string{"a", "b", "c", "fullName", "address", "x1"} }

func randomValue(r *rand.Rand, depth int) any {
	switch k := r.IntN(7); {
	case depth > 4 || k < 2:
		return r.IntN(100)
	case k == 2:
		return "s\u00e9\"\\"
	case k == 3:
		return nil
	case k == 4:
		n := r.IntN(4)
		arr := make([]any, n)
		for i := range arr {
			arr[i] = randomValue(r, depth+1)
		}
		return arr
	default:
		m := map[string]any{}
		for range r.IntN(5) {
			m[pick(r)] = randomValue(r, depth+1)
		}
		return m
	}
}

func randomPath(r *rand.Rand) string {
	p := pick(r)
	for r.IntN(2) == 0 {
		p += "." + pick(r)
	}
	return p
}

// TestFilterProperty: for random records and allow-lists, the output never
// holds a key outside the allow-list and equals a plain reference filter.
func TestFilterProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 5000 {
		rec := map[string]any{}
		for range r.IntN(6) {
			rec[pick(r)] = randomValue(r, 1)
		}
		var paths []string
		for range 1 + r.IntN(4) {
			paths = append(paths, randomPath(r))
		}
		tr := mustCompile(t, paths...)
		in, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		out, err := tr.Filter(nil, in, nil)
		if err != nil {
			t.Fatalf("case %d: %v on %s", i, err, in)
		}
		got := decode(t, out)
		checkOnlyAllowed(t, tr, "", got)
		want, _ := reference(tr.root, decode(t, in))
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("case %d allow %v\n in  %s\n got %s\nwant %v", i, paths, in, out, want)
		}
	}
}

func pick(r *rand.Rand) string {
	keys := propertyKeys()
	return keys[r.IntN(len(keys))]
}
