package filter

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func mustCompile(t testing.TB, paths ...string) *Trie {
	t.Helper()
	tr, err := Compile(paths)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestFilter(t *testing.T) {
	record := `{"nationalId":"001099000001","fullName":"Nguyễn Văn An","secret":"x",
		"permanentAddress":{"province":"Hà Nội","street":"Số 1","district":"Ba Đình"},
		"relatives":[{"fullName":"A","relation":"father","nationalId":"1"},{"relation":"mother"},"junk",[{"fullName":"B"}]],
		"spouse":null,"father":{"fullName":"C","nationalId":"2"}}`
	tests := []struct {
		name    string
		allowed []string
		in      string
		want    string
		seen    []string
		err     error
	}{
		{"top-level fields", []string{"fullName", "nationalId"}, record,
			`{"nationalId":"001099000001","fullName":"Nguyễn Văn An"}`, []string{"fullName", "nationalId"}, nil},
		{"nested path", []string{"permanentAddress.province"}, record,
			`{"permanentAddress":{"province":"Hà Nội"}}`, []string{"permanentAddress.province"}, nil},
		{"whole object", []string{"father"}, record,
			`{"father":{"fullName":"C","nationalId":"2"}}`, []string{"father"}, nil},
		{"array elements", []string{"relatives.fullName"}, record,
			`{"relatives":[{"fullName":"A"},[{"fullName":"B"}]]}`, []string{"relatives.fullName"}, nil},
		{"null where object expected dropped", []string{"spouse.fullName"}, record, `{}`, nil, nil},
		{"nothing allowed", []string{"photoHash"}, record, `{}`, nil, nil},
		{"escaped key decoded then matched", []string{"fullName"},
			`{"full\u004eame":"X","fullname":"Y"}`, `{"fullName":"X"}`, []string{"fullName"}, nil},
		{"escaped key not allowed", []string{"fullName"}, `{"secr\u0065t":"X"}`, `{}`, nil, nil},
		{"duplicate key rejected", []string{"fullName"}, `{"fullName":"A","fullName":"B"}`, "", nil, ErrDuplicateKey},
		{"escaped duplicate rejected", []string{"fullName"}, `{"fullName":"A","full\u004eame":"B"}`, "", nil, ErrDuplicateKey},
		{"duplicate in dropped subtree rejected", []string{"fullName"}, `{"fullName":"A","x":{"k":1,"k":2}}`, "", nil, ErrDuplicateKey},
		{"too deep rejected", []string{"a"}, `{"b":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`, "", nil, ErrTooDeep},
		{"not an object", []string{"a"}, `[{"a":1}]`, "", nil, ErrNotObject},
		{"trailing garbage", []string{"a"}, `{"a":1} {"a":2}`, "", nil, ErrSyntax},
		{"bad escape", []string{"a"}, `{"a":"\x"}`, "", nil, ErrSyntax},
		{"invalid utf8 in allowed string", []string{"a"}, "{\"a\":\"\xff\"}", "", nil, ErrSyntax},
		{"numbers and literals kept", []string{"n", "t", "z"}, `{"n":-1.5e3,"t":true,"z":null}`, `{"n":-1.5e3,"t":true,"z":null}`, []string{"n", "t", "z"}, nil},
		{"bad number", []string{"n"}, `{"n":01}`, "", nil, ErrSyntax},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := mustCompile(t, tc.allowed...)
			var seen Seen
			out, err := tr.Filter(nil, []byte(tc.in), &seen)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != tc.want {
				t.Fatalf("got  %s\nwant %s", out, tc.want)
			}
			if got := seen.Paths(tr, nil); strings.Join(got, ",") != strings.Join(tc.seen, ",") {
				t.Fatalf("seen %v, want %v", got, tc.seen)
			}
		})
	}
}

func TestFilterAppendsAndRollsBackOnError(t *testing.T) {
	tr := mustCompile(t, "a")
	out, err := tr.Filter([]byte("prefix"), []byte(`{"a":1,"a":2}`), nil)
	if err == nil || string(out) != "prefix" {
		t.Fatalf("got %q, %v", out, err)
	}
}

func TestCompileAndAllows(t *testing.T) {
	if _, err := Compile([]string{"a..b"}); err == nil {
		t.Fatal("accepted a..b")
	}
	if _, err := Compile([]string{"1a"}); err == nil {
		t.Fatal("accepted 1a")
	}
	tr := mustCompile(t, "father", "permanentAddress.province")
	for path, want := range map[string]bool{
		"father": true, "father.fullName": true, "permanentAddress.province": true,
		"permanentAddress": false, "permanentAddress.street": false, "mother": false,
	} {
		if tr.Allows(path) != want {
			t.Errorf("Allows(%q) = %v", path, !want)
		}
	}
}

func TestMembersAndElements(t *testing.T) {
	var keys []string
	err := Members([]byte(`{"records":[{"a":1},{"b":2}],"n\u006ftFound":["x"]}`), func(k, v []byte) error {
		keys = append(keys, string(k))
		if string(k) == "records" {
			n := 0
			if err := Elements(v, func([]byte) error { n++; return nil }); err != nil || n != 2 {
				t.Fatalf("elements: %d %v", n, err)
			}
		}
		return nil
	})
	if err != nil || strings.Join(keys, ",") != "records,notFound" {
		t.Fatalf("keys %v err %v", keys, err)
	}
	if err := Members([]byte(`{"a":1,"a":1}`), func(k, v []byte) error { return nil }); !errors.Is(err, ErrDuplicateKey) {
		t.Fatalf("duplicate: %v", err)
	}
}

// reference is the filter's semantics written plainly over decoded JSON.
func reference(n *node, v any) (any, bool) {
	switch t := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, c := range t {
			child := n.children[k]
			switch {
			case child == nil:
			case child.leaf:
				out[k] = c
			default:
				if fc, ok := reference(child, c); ok {
					out[k] = fc
				}
			}
		}
		return out, len(out) > 0
	case []any:
		var out []any
		for _, e := range t {
			if fe, ok := reference(n, e); ok {
				out = append(out, fe)
			}
		}
		return out, len(out) > 0
	}
	return nil, false
}

func decode(t testing.TB, b []byte) any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("decoding %q: %v", b, err)
	}
	return v
}

// checkOnlyAllowed fails when out holds a key path the trie does not allow.
func checkOnlyAllowed(t testing.TB, tr *Trie, prefix string, v any) {
	switch x := v.(type) {
	case map[string]any:
		for k, c := range x {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			if tr.Allows(p) {
				continue
			}
			if !tr.allowsPrefix(p) {
				t.Fatalf("output holds %q, which the allow-list %v does not reach", p, tr.paths)
			}
			checkOnlyAllowed(t, tr, p, c)
		}
	case []any:
		for _, e := range x {
			checkOnlyAllowed(t, tr, prefix, e)
		}
	default:
		if prefix != "" && !tr.Allows(prefix) {
			t.Fatalf("output holds a scalar at %q, not allowed by %v", prefix, tr.paths)
		}
	}
}

// allowsPrefix reports whether path leads towards an allowed path.
func (t *Trie) allowsPrefix(path string) bool {
	n := t.root
	for seg := range strings.SplitSeq(path, ".") {
		if n = n.children[seg]; n == nil {
			return false
		}
	}
	return true
}

func TestFilterKey(t *testing.T) {
	tr := mustCompile(t, "nationalId", "fullName", "relatives.nationalId")
	tests := []struct{ in, value string }{
		{`{"fullName":"A","nationalId":"001099000001"}`, `"001099000001"`},
		// Only the top-level member counts, not one nested deeper.
		{`{"relatives":[{"nationalId":"2"}],"fullName":"A"}`, ``},
		{`{"relatives":[{"nationalId":"2"}],"nationalId":"1"}`, `"1"`},
		{`{"nation\u0061lId":{"x":1}}`, `{"x":1}`},
	}
	for _, tc := range tests {
		out, value, err := tr.FilterKey(nil, []byte(tc.in), nil, "nationalId")
		if err != nil || string(value) != tc.value {
			t.Errorf("%s: value %q err %v, want %q", tc.in, value, err, tc.value)
		}
		plain, _ := tr.Filter(nil, []byte(tc.in), nil)
		if string(out) != string(plain) {
			t.Errorf("%s: FilterKey wrote %s, Filter %s", tc.in, out, plain)
		}
	}
	if _, value, err := tr.FilterKey(nil, []byte(`{"nationalId":"1","nationalId":"2"}`), nil, "nationalId"); err == nil || value != nil {
		t.Errorf("duplicate: value %q err %v", value, err)
	}
	// A key that is not an allowed top-level leaf is never captured.
	if _, value, _ := tr.FilterKey(nil, []byte(`{"relatives":{"nationalId":"1"}}`), nil, "relatives"); value != nil {
		t.Errorf("captured an interior node: %q", value)
	}
}
