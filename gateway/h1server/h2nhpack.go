package h1server

// The native server encodes its response headers without HPACK's dynamic
// table, as nginx does: every field is an entry of the static table (a
// :status it holds) or a literal that is not indexed, its name taken from
// the static table when it is there, its strings sent as they are (no
// Huffman coding). Nothing is searched, hashed or inserted per field, and
// the encoder has no state but one flag; x/net's encoder searched its
// tables for every field and Huffman-coded every value, most of the cost
// of a response's header block. The block is a few dozen bytes longer
// than an indexed one, on a connection that carries kilobytes of body.
//
// The first header block of a connection starts with a dynamic table size
// update to 0, so that whatever SETTINGS_HEADER_TABLE_SIZE the client
// sends later, the encoder's table (empty) is within it (RFC 7541, 4.2
// and 6.3).

// hpackStaticName maps the names of the static table (RFC 7541, appendix
// A) that responses use to their index; the first index of each name.
var hpackStaticName = map[string]uint8{
	"accept-ranges": 18, "access-control-allow-origin": 20, "age": 21, "allow": 22,
	"cache-control": 24, "content-disposition": 25, "content-encoding": 26,
	"content-language": 27, "content-length": 28, "content-location": 29,
	"content-range": 30, "content-type": 31, "date": 33, "etag": 34, "expires": 36,
	"last-modified": 44, "link": 45, "location": 46, "proxy-authenticate": 48,
	"refresh": 52, "retry-after": 53, "server": 54, "set-cookie": 55,
	"strict-transport-security": 56, "vary": 59, "via": 60, "www-authenticate": 61,
}

// hpackStatusIndex is the static table's index of a complete :status
// field, 0 when the table has none for the code.
func hpackStatusIndex(code int) uint64 {
	switch code {
	case 200:
		return 8
	case 204:
		return 9
	case 206:
		return 10
	case 304:
		return 11
	case 400:
		return 12
	case 404:
		return 13
	case 500:
		return 14
	}
	return 0
}

// hpackStatusName is the static index of the name :status.
const hpackStatusName = 8

// appendHpackInt appends i with an n-bit prefix whose high bits are
// first's (RFC 7541, 5.1).
func appendHpackInt(dst []byte, first byte, n uint, i uint64) []byte {
	limit := uint64(1)<<n - 1
	if i < limit {
		return append(dst, first|byte(i))
	}
	dst = append(dst, first|byte(limit))
	for i -= limit; i >= 128; i >>= 7 {
		dst = append(dst, byte(i&0x7f)|0x80)
	}
	return append(dst, byte(i))
}

// appendHpackString appends s as a string literal without Huffman coding
// (RFC 7541, 5.2).
func appendHpackString[T string | []byte](dst []byte, s T) []byte {
	dst = appendHpackInt(dst, 0, 7, uint64(len(s)))
	return append(dst, s...)
}

// appendHpackIndexed appends a field of the static table by its index
// (RFC 7541, 6.1).
func appendHpackIndexed(dst []byte, index uint64) []byte {
	return appendHpackInt(dst, 0x80, 7, index)
}

// appendHpackLiteral appends name: value as a literal without indexing
// (RFC 7541, 6.2.2), its name by static index when the table has it. name
// must be lower case.
func appendHpackLiteral(dst []byte, name, value string) []byte {
	return appendHpackString(appendHpackName(dst, name), value)
}

// appendHpackName appends the start of a literal without indexing up to
// its value: the representation's first byte with the name's static
// index, or a zero index and the name as a string literal. name must be
// lower case.
func appendHpackName(dst []byte, name string) []byte {
	if idx, ok := hpackStaticName[name]; ok {
		return appendHpackInt(dst, 0, 4, uint64(idx))
	}
	dst = append(dst, 0)
	return appendHpackString(dst, name)
}

// appendHpackStatus appends the :status field of code.
func appendHpackStatus(dst []byte, code int) []byte {
	if idx := hpackStatusIndex(code); idx != 0 {
		return appendHpackIndexed(dst, idx)
	}
	var b [3]byte
	b[0], b[1], b[2] = byte('0'+code/100%10), byte('0'+code/10%10), byte('0'+code%10)
	dst = appendHpackInt(dst, 0, 4, hpackStatusName)
	return appendHpackString(dst, b[:])
}

// appendHpackTableSizeZero appends a dynamic table size update to 0
// (RFC 7541, 6.3).
func appendHpackTableSizeZero(dst []byte) []byte { return append(dst, 0x20) }
