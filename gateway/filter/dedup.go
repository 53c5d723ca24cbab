package filter

import "hash/maphash"

// The duplicate-key check. An object's first linearKeys keys are compared
// one by one, which for a record's few dozen members is cheaper than
// hashing; from then on the object's keys are indexed in an open-addressing
// hash table, so an object of n keys costs O(n) however many there are (a
// 60 KiB body of ~6,000 keys cost 20 million comparisons when every key was
// compared with every other). The hash is maphash with a seed drawn per
// scan, so the sender of the JSON cannot choose keys that collide.

// linearKeys is the most keys an object checks by comparison alone: up to
// linearKeys²/2 (512) comparisons of a packed signature.
const linearKeys = 32

// sigBit is the bit of an object's signature mask (see addKey) that stands
// for keys of signature sig: 6 bits of a multiplicative hash of it.
func sigBit(sig uint32) uint64 { return 1 << ((sig * 0x9e3779b1) >> 26) }

// slot is one entry of an object's hash table: the key's hash and its
// index among the object's spans, plus one (0 is an empty slot).
type slot struct {
	hash uint64
	idx  int32
}

// addKey records the key just decoded at s.keys[off:] in the object whose
// spans start at spansMark and whose hash table (once it has one) starts at
// tableMark. It reports false when the object already has the key.
//
// sigs is the object's signature mask: the sigBit of every key it has so
// far. A key whose bit is not set has a signature no earlier key has, so
// it cannot be a duplicate and the comparisons are skipped: a record's
// top-level object of 30 keys costs a few dozen comparisons instead of
// 435. A bit already set (a duplicate, or two signatures sharing a bit)
// leads to the comparisons as before, so the worst case is unchanged.
func (s *scanner) addKey(off, spansMark, tableMark int, sigs *uint64) bool {
	key := s.keys[off:]
	n := len(s.spans) - spansMark
	if n < linearKeys {
		sig := keySig(key)
		bit := sigBit(sig)
		if *sigs&bit != 0 {
			for _, sp := range s.spans[spansMark:] {
				s.cmps++
				if sp.sig == sig && string(s.keys[sp.off:sp.end]) == string(key) {
					return false
				}
			}
		}
		*sigs |= bit
		s.spans = append(s.spans, span{off: off, end: len(s.keys), sig: sig})
		return true
	}
	if n == linearKeys {
		s.index(spansMark, tableMark)
	}
	h := s.hash(key)
	tab := s.table[tableMark:]
	mask := len(tab) - 1
	for i := int(h) & mask; tab[i].idx != 0; i = (i + 1) & mask {
		s.cmps++
		if sl := tab[i]; sl.hash == h {
			sp := s.spans[spansMark+int(sl.idx)-1]
			if string(s.keys[sp.off:sp.end]) == string(key) {
				return false
			}
		}
	}
	s.spans = append(s.spans, span{off: off, end: len(s.keys), hash: h})
	idx := len(s.spans) - spansMark
	insert(tab, slot{h, int32(idx)})
	if 2*idx > len(tab) { // keep the load at most 1/2
		s.grow(spansMark, tableMark)
	}
	return true
}

func (s *scanner) hash(key []byte) uint64 {
	if !s.seeded {
		s.seed, s.seeded = maphash.MakeSeed(), true
	}
	return maphash.Bytes(s.seed, key)
}

// index builds the hash table of an object that has just reached
// linearKeys keys. The object's nested objects have ended, so its table
// goes on top of the table stack.
func (s *scanner) index(spansMark, tableMark int) {
	s.table = append(s.table[:tableMark], make([]slot, 4*linearKeys)...)
	tab := s.table[tableMark:]
	for i := range s.spans[spansMark:] {
		sp := &s.spans[spansMark+i]
		sp.hash = s.hash(s.keys[sp.off:sp.end])
		insert(tab, slot{sp.hash, int32(i + 1)})
	}
}

// grow doubles the object's table, which is on top of the stack: it is
// rebuilt in place from the object's spans, read in order, which costs
// less than moving the old table's slots.
func (s *scanner) grow(spansMark, tableMark int) {
	size := 2 * (len(s.table) - tableMark)
	s.table = append(s.table[:tableMark], make([]slot, size)...)
	tab := s.table[tableMark:]
	for i, sp := range s.spans[spansMark:] {
		insert(tab, slot{sp.hash, int32(i + 1)})
	}
}

// insert puts sl in the first free slot of its probe sequence.
func insert(tab []slot, sl slot) {
	mask := len(tab) - 1
	i := int(sl.hash) & mask
	for tab[i].idx != 0 {
		i = (i + 1) & mask
	}
	tab[i] = sl
}
