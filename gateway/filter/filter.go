package filter

import "unicode/utf8"

// Seen records which allowed paths a filter emitted, for the audit log. It
// also keeps the scanner's scratch space (decoded keys) between calls, so a
// Seen reused across records makes filtering allocation-free once the
// buffers have grown.
type Seen struct {
	bits  []uint64
	keys  []byte
	spans []span
	table []slot
}

func (s *Seen) mark(id int) {
	if w := id / 64; w >= len(s.bits) {
		s.bits = append(s.bits, make([]uint64, w+1-len(s.bits))...)
	}
	s.bits[id/64] |= 1 << (id % 64)
}

// Paths appends the emitted paths of t to dst, in sorted order.
func (s *Seen) Paths(t *Trie, dst []string) []string {
	for w, word := range s.bits {
		for b := 0; word != 0 && b < 64; b++ {
			if word&(1<<b) != 0 && w*64+b < len(t.paths) {
				dst = append(dst, t.paths[w*64+b])
			}
		}
	}
	return dst
}

// Reset forgets what was seen, keeping the storage.
func (s *Seen) Reset() { clear(s.bits) }

// Filter appends to dst the JSON object src projected onto the allow-list
// and returns the extended buffer. Rules:
//   - src must be one JSON object; anything invalid, nested deeper than
//     MaxDepth, or holding a duplicate key anywhere (compared after
//     unescaping) is an error: the record is rejected as a whole rather than
//     guessing which duplicate a client would believe.
//   - keys are matched after unescaping, and written back in plain form.
//   - an allowed path copies its whole value; a path under an array applies
//     to every element of the array.
//   - a container on the way to an allowed path is written only when
//     something inside it is; scalars where an object was expected are
//     dropped.
//
// seen, when not nil, records which allowed paths were written.
func (t *Trie) Filter(dst, src []byte, seen *Seen) ([]byte, error) {
	out, _, err := t.filter(dst, src, seen, nil)
	return out, err
}

// FilterKey is Filter that also returns the raw JSON value of the top-level
// member key, as written to the output, or nil when the record has none.
// key must be an allowed top-level path of t (otherwise value is always
// nil). It lets a caller check which record it got (the national ID)
// without parsing the record a second time. value aliases the returned
// buffer.
func (t *Trie) FilterKey(dst, src []byte, seen *Seen, key string) (out, value []byte, err error) {
	c := &capture{node: t.root.children[key]}
	if c.node == nil || !c.node.leaf {
		c = nil
	}
	return t.filter(dst, src, seen, c)
}

// capture remembers where a top-level leaf's value went in the output.
type capture struct {
	node       *node
	start, end int
}

func (t *Trie) filter(dst, src []byte, seen *Seen, c *capture) ([]byte, []byte, error) {
	var s scanner
	return t.filterWith(&s, dst, src, seen, c)
}

// filterWith is filter with the scanner given, so a test can read its
// counters afterwards.
func (t *Trie) filterWith(s *scanner, dst, src []byte, seen *Seen, c *capture) ([]byte, []byte, error) {
	s.src = src
	if seen != nil {
		s.keys, s.spans, s.table = seen.keys[:0], seen.spans[:0], seen.table[:0]
		defer func() { seen.keys, seen.spans, seen.table = s.keys[:0], s.spans[:0], s.table[:0] }()
	}
	if s.peek() != '{' {
		if s.pos >= len(src) {
			return dst, nil, s.syntaxErr("empty input")
		}
		return dst, nil, ErrNotObject
	}
	mark := len(dst)
	out, _, err := t.interior(s, t.root, 0, dst, seen, c)
	if err != nil {
		return dst[:mark], nil, err
	}
	if len(out) == mark { // nothing allowed: still an object
		out = append(out, '{', '}')
	}
	if err := s.end(); err != nil {
		return dst[:mark], nil, err
	}
	var value []byte
	if c != nil && c.end > c.start {
		value = out[c.start:c.end:c.end]
	}
	return out, value, nil
}

// interior filters the value at the scanner through an interior trie node,
// reporting whether it wrote anything.
func (t *Trie) interior(s *scanner, n *node, depth int, dst []byte, seen *Seen, c *capture) ([]byte, bool, error) {
	switch s.peek() {
	case '{':
		mark := len(dst)
		dst = append(dst, '{')
		wrote := false
		err := s.object(depth, func(key []byte) error {
			child := n.child(key)
			if child == nil {
				return s.skip(depth + 1)
			}
			m := len(dst)
			if wrote {
				dst = append(dst, ',')
			}
			dst = appendKey(dst, key)
			var ok bool
			var err error
			if child.leaf {
				start := len(dst)
				dst, err = copyValue(s, depth+1, dst)
				ok = err == nil
				if ok && seen != nil {
					seen.mark(child.id)
				}
				if ok && depth == 0 && c != nil && child == c.node {
					c.start, c.end = start, len(dst)
				}
			} else {
				dst, ok, err = t.interior(s, child, depth+1, dst, seen, c)
			}
			if err != nil {
				return err
			}
			if ok {
				wrote = true
			} else {
				dst = dst[:m]
			}
			return nil
		})
		if err != nil || !wrote {
			return dst[:mark], false, err
		}
		return append(dst, '}'), true, nil
	case '[':
		mark := len(dst)
		dst = append(dst, '[')
		wrote := false
		err := s.array(depth, func() error {
			m := len(dst)
			if wrote {
				dst = append(dst, ',')
			}
			var ok bool
			var err error
			dst, ok, err = t.interior(s, n, depth+1, dst, seen, c)
			if err != nil {
				return err
			}
			if ok {
				wrote = true
			} else {
				dst = dst[:m]
			}
			return nil
		})
		if err != nil || !wrote {
			return dst[:mark], false, err
		}
		return append(dst, ']'), true, nil
	default:
		return dst, false, s.skip(depth)
	}
}

// copyValue validates the value at the scanner and appends it verbatim. The
// bytes are those of a validated JSON value, so they cannot break out of it;
// strings are checked for valid UTF-8 so nothing malformed reaches a client.
func copyValue(s *scanner, depth int, dst []byte) ([]byte, error) {
	start := s.pos
	if s.peek() == '"' {
		if _, err := s.str(true); err != nil {
			return dst, err
		}
	} else {
		if err := s.skip(depth); err != nil {
			return dst, err
		}
		if !utf8.Valid(s.src[start:s.pos]) {
			return dst, s.syntaxErr("invalid UTF-8")
		}
	}
	return append(dst, s.src[start:s.pos]...), nil
}

// appendKey writes a decoded key as a JSON string. Allowed keys are ASCII
// letters and digits (see ValidPath), so no escaping is ever needed.
func appendKey(dst, key []byte) []byte {
	dst = append(dst, '"')
	dst = append(dst, key...)
	return append(dst, '"', ':')
}

// filterCounting is Filter that also returns how many keys the duplicate
// check looked at, for the tests that prove the check linear.
func (t *Trie) filterCounting(dst, src []byte) ([]byte, int, error) {
	var s scanner
	out, _, err := t.filterWith(&s, dst, src, nil, nil)
	return out, s.cmps, err
}
