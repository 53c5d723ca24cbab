package filter

import (
	"errors"
	"testing"
)

// TestMembersChecksItsOwnKeys: Members refuses a duplicate among the
// members, escaped or not, and validates values for syntax and depth
// without checking their keys (the caller re-reads what it uses);
// MembersUntil stops at ErrStop without reading further and checks no
// duplicates.
func TestMembersChecksItsOwnKeys(t *testing.T) {
	nop := func(k, v []byte) error { return nil }
	tests := []struct {
		src  string
		want error
	}{
		{`{"a":1,"\u0061":2}`, ErrDuplicateKey},
		{`{"a":{"x":1,"x":2},"b":[{"y":1,"y":2}]}`, nil},
		{`{"a":{"x":1,"x":}}`, ErrSyntax},
		{`{"a":` + deep(MaxDepth) + `}`, ErrTooDeep},
	}
	for _, tc := range tests {
		if err := Members([]byte(tc.src), nop); !errors.Is(err, tc.want) && err != tc.want {
			t.Errorf("Members(%.40s): %v, want %v", tc.src, err, tc.want)
		}
	}
	src := []byte(`{"a":1,"a":2,"id":"x","rest":{{{`)
	var got string
	n, err := MembersUntil(src, func(k, v []byte) error {
		if string(k) == "id" {
			got = string(v)
			return ErrStop
		}
		return nil
	})
	if err != nil || got != `"x"` || n != len(`{"a":1,"a":2,"id":"x"`) {
		t.Fatalf("MembersUntil: read %d, value %s, %v", n, got, err)
	}
}

// deep is n nested arrays.
func deep(n int) string {
	b := make([]byte, 0, 2*n)
	for range n {
		b = append(b, '[')
	}
	for range n {
		b = append(b, ']')
	}
	return string(b)
}
