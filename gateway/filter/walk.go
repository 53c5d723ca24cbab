package filter

// Members validates src as one JSON object and calls fn with each member's
// decoded key and raw value bytes. Duplicate keys and excess depth are
// errors, as in Filter.
func Members(src []byte, fn func(key, value []byte) error) error {
	s := scanner{src: src}
	if s.peek() != '{' {
		return ErrNotObject
	}
	err := s.object(0, func(key []byte) error {
		start := s.pos
		if err := s.skip(1); err != nil {
			return err
		}
		return fn(key, src[start:s.pos])
	})
	if err != nil {
		return err
	}
	return s.end()
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
