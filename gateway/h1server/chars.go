package h1server

// Character classes of RFC 9110, as bit sets in constants (no tables in
// mutable package state). Bit c of mask (c < 128) is set when c belongs.

// tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
// "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
const (
	tokenLo = 1<<'!' | 1<<'#' | 1<<'$' | 1<<'%' | 1<<'&' | 1<<'\'' | 1<<'*' | 1<<'+' | 1<<'-' | 1<<'.' |
		0x3ff<<'0' // digits
	tokenHi = 0x3ffffff<<('A'-64) | 0x3ffffff<<('a'-64) | 1<<('^'-64) | 1<<('_'-64) | 1<<('`'-64) | 1<<('|'-64) | 1<<('~'-64)
)

// isToken reports whether c is a tchar (method and header-name bytes).
func isToken(c byte) bool {
	if c < 64 {
		return tokenLo&(uint64(1)<<c) != 0
	}
	if c < 128 {
		return tokenHi&(uint64(1)<<(c-64)) != 0
	}
	return false
}

// isValueByte reports whether c may appear in a header field value: HTAB,
// SP, visible ASCII and obs-text (bytes >= 0x80, accepted as net/http
// does). Every other control byte, CR and LF included, is refused.
func isValueByte(c byte) bool {
	return c == '\t' || (c >= 0x20 && c != 0x7f)
}

// isTargetByte reports whether c may appear in a request target: visible
// ASCII except '#' (a fragment is never sent in a request). Non-ASCII
// bytes must be percent-encoded.
func isTargetByte(c byte) bool {
	return c > 0x20 && c < 0x7f && c != '#'
}

// isPlainPathByte reports whether net/url leaves c as is when it encodes a
// path, so that a path made only of such bytes (and no '%') is its own
// decoded form with an empty RawPath: unreserved characters and
// "$&+,/:;=@".
func isPlainPathByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '-', '_', '.', '~', '$', '&', '+', ',', '/', ':', ';', '=', '@':
		return true
	}
	return false
}

func isOWS(c byte) bool { return c == ' ' || c == '\t' }

// trimOWS removes optional whitespace (SP, HTAB) around a field value.
func trimOWS(s string) string {
	for len(s) > 0 && isOWS(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isOWS(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

// lowerASCII folds an ASCII letter to lower case.
func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// equalFold compares ASCII strings case-insensitively; b must be lower case.
func equalFold(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if lowerASCII(s[i]) != lower[i] {
			return false
		}
	}
	return true
}
