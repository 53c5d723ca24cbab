package filter

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// FuzzFilter checks, for any input and allow-list: invalid JSON is never
// accepted; accepted input yields valid JSON holding only allowed paths and
// equal to the reference filter; valid JSON is refused only for a duplicate
// key, excess depth, invalid UTF-8 or not being an object.
func FuzzFilter(f *testing.F) {
	f.Add([]byte(`{"fullName":"A","b":{"c":[{"d":1},{"e":2}]}}`), "fullName,b.c.d")
	f.Add([]byte(`{"full\u004eame":"A","fullName":"B"}`), "fullName")
	f.Add([]byte(`{"a":[[{"b":"\ud800"}]],"c":null}`), "a.b,c")
	f.Fuzz(func(t *testing.T, in []byte, allow string) {
		var paths []string
		for p := range strings.SplitSeq(allow, ",") {
			if ValidPath(p) {
				paths = append(paths, p)
			}
		}
		tr, err := Compile(paths)
		if err != nil {
			t.Fatal(err)
		}
		out, err := tr.Filter(nil, in, nil)
		valid := json.Valid(in)
		if err != nil {
			if valid && !errors.Is(err, ErrDuplicateKey) && !errors.Is(err, ErrTooDeep) &&
				!errors.Is(err, ErrNotObject) && !strings.Contains(err.Error(), "UTF-8") {
				t.Fatalf("valid JSON %q refused: %v", in, err)
			}
			return
		}
		if !valid {
			t.Fatalf("invalid JSON %q accepted as %q", in, out)
		}
		if !json.Valid(out) {
			t.Fatalf("output %q is not JSON", out)
		}
		got := decode(t, out)
		checkOnlyAllowed(t, tr, "", got)
		want, _ := reference(tr.root, decode(t, in))
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("in %q allow %v: got %q want %v", in, paths, out, want)
		}
	})
}
