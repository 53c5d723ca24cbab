package filter

import "errors"

// ErrStop, returned by a MembersUntil callback, ends the walk early
// without an error.
var ErrStop = errors.New("stop")

// Members validates src as one JSON object and calls fn with each member's
// decoded key and raw value bytes. A duplicate key among the members and
// excess depth are errors, as in Filter. Values are validated for syntax
// and depth only: a caller that uses the members of a nested object reads
// them with Members, Elements or Filter, which check its keys, and one that
// refuses or drops it need not pay for checking keys it never uses.
func Members(src []byte, fn func(key, value []byte) error) error {
	s := scanner{src: src}
	if s.peek() != '{' {
		return ErrNotObject
	}
	err := s.object(0, func(key []byte) error {
		start := s.pos
		s.lax = true
		err := s.skip(1)
		s.lax = false
		if err != nil {
			return err
		}
		return fn(key, src[start:s.pos])
	})
	if err != nil {
		return err
	}
	return s.end()
}

// MembersUntil is Members that stops when fn returns ErrStop, without
// reading (or validating) the rest of src. It returns how many bytes of src
// it read: up to the end of the member fn stopped at, or the whole object.
// A caller that needs only one member (the national ID a refusal's audit
// records) reads no further than it. It checks syntax and depth but not
// duplicate keys: the first of two members with a key is the one fn sees,
// and a duplicate inside a value fn does not look at changes nothing.
func MembersUntil(src []byte, fn func(key, value []byte) error) (int, error) {
	s := scanner{src: src, lax: true}
	if s.peek() != '{' {
		return s.pos, ErrNotObject
	}
	err := s.object(0, func(key []byte) error {
		start := s.pos
		if err := s.skip(1); err != nil {
			return err
		}
		return fn(key, src[start:s.pos])
	})
	if errors.Is(err, ErrStop) {
		return s.pos, nil
	}
	if err != nil {
		return s.pos, err
	}
	return s.pos, s.end()
}

// Elements validates src as one JSON array and calls fn with each element's
// raw bytes.
func Elements(src []byte, fn func(value []byte) error) error {
	s := scanner{src: src}
	if s.peek() != '[' {
		return s.syntaxErr("expected an array")
	}
	err := s.array(0, func() error {
		start := s.pos
		if err := s.skip(1); err != nil {
			return err
		}
		return fn(src[start:s.pos])
	})
	if err != nil {
		return err
	}
	return s.end()
}
