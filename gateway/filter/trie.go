// Package filter projects JSON records onto an allow-list of dotted field
// paths. It parses the JSON (never matches on text), so escaped key names,
// duplicate keys, unexpected keys and deep nesting cannot smuggle a field past
// the allow-list.
package filter

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Trie is a compiled allow-list. It is immutable once built and safe for
// concurrent use; the gateway builds one per agency per policy load.
type Trie struct {
	root  *node
	paths []string // the allowed paths, sorted; a leaf's id indexes it
}

type node struct {
	children map[string]*node
	// names and kids list children again, for lookups by a decoded key
	// during filtering: below about 16 entries comparing lengths and
	// bytes is several times cheaper than hashing the key for the map.
	names []string
	kids  []*node
	// leaf means the path ending here is allowed as a whole, with everything
	// below it.
	leaf bool
	id   int
}

// ValidPath reports whether p is a dotted path of segments made of ASCII
// letters and digits, each starting with a letter (the FieldCatalog rule).
func ValidPath(p string) bool {
	if p == "" || len(p) > 256 {
		return false
	}
	for seg := range strings.SplitSeq(p, ".") {
		if seg == "" || !isLetter(seg[0]) {
			return false
		}
		for i := 1; i < len(seg); i++ {
			if !isLetter(seg[i]) && (seg[i] < '0' || seg[i] > '9') {
				return false
			}
		}
	}
	return true
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// Compile builds a trie from allowed paths. A path that is a prefix of
// another allows the whole subtree, so the longer one adds nothing.
func Compile(paths []string) (*Trie, error) {
	sorted := slices.Clone(paths)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	t := &Trie{root: &node{}, paths: sorted}
	for id, p := range sorted {
		if !ValidPath(p) {
			return nil, fmt.Errorf("invalid field path %q", p)
		}
		n := t.root
		for seg := range strings.SplitSeq(p, ".") {
			if n.children == nil {
				n.children = map[string]*node{}
			}
			c := n.children[seg]
			if c == nil {
				c = &node{}
				n.children[seg] = c
			}
			n = c
		}
		n.leaf, n.id = true, id
	}
	t.root.index()
	return t, nil
}

// index fills names and kids below n, in sorted order.
func (n *node) index() {
	n.names = slices.Sorted(maps.Keys(n.children))
	n.kids = make([]*node, len(n.names))
	for i, name := range n.names {
		n.kids[i] = n.children[name]
		n.kids[i].index()
	}
}

// linearLookupMax is the most children a node searches linearly.
const linearLookupMax = 16

// child returns n's child named key, or nil.
func (n *node) child(key []byte) *node {
	if len(n.names) > linearLookupMax {
		return n.children[string(key)]
	}
	for i, name := range n.names {
		if len(name) == len(key) && name == string(key) {
			return n.kids[i]
		}
	}
	return nil
}

// Paths returns the allowed paths, sorted. The caller must not modify it.
func (t *Trie) Paths() []string { return t.paths }

// Allows reports whether path is allowed: it or one of its prefixes is in
// the allow-list.
func (t *Trie) Allows(path string) bool {
	n := t.root
	for seg := range strings.SplitSeq(path, ".") {
		n = n.children[seg]
		if n == nil {
			return false
		}
		if n.leaf {
			return true
		}
	}
	return false
}
