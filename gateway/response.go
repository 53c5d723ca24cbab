package gateway

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math"
)

// errBadResponse is an upstream answer that is not a well-formed
// HTTP/1.1 response. The connection is never reused after it.
var errBadResponse = errors.New("malformed upstream response")

// maxTrailerLines bounds the trailer of a chunked answer.
const maxTrailerLines = 32

// readResponse reads one response from br: its status, and its body (at
// most limit bytes) into buf. reusable reports whether the connection is
// positioned at the start of the next response and may serve another
// request.
//
// It replaces http.ReadResponse, which builds a header map, canonicalises
// every key and allocates a Response and a body reader per call, when the
// gateway needs three headers and discards the rest (no upstream header
// ever reaches an agency). It is stricter than net/http where leniency
// could let a response boundary be misread on a kept-alive connection and
// hand one request the answer to another: a header line folded onto the
// next, a field name with whitespace before the colon, Content-Length
// values that disagree, Transfer-Encoding other than chunked or together
// with Content-Length, and 1xx answers are all errors. A line that does
// not fit br's buffer is an error too (header lines, chunk sizes,
// trailers); the header as a whole is bounded by lr (when not nil), whose
// limit is lifted once the header is read: the body has its own.
func readResponse(br *bufio.Reader, lr *limitedReader, limit int64, buf *bytes.Buffer) (status int, reusable bool, err error) {
	line, err := readLine(br)
	if err != nil {
		return 0, false, err
	}
	var http10 bool
	switch {
	case bytes.HasPrefix(line, []byte("HTTP/1.1 ")):
	case bytes.HasPrefix(line, []byte("HTTP/1.0 ")):
		http10 = true
	default:
		return 0, false, errBadResponse
	}
	line = line[len("HTTP/1.1 "):]
	if len(line) < 3 || (len(line) > 3 && line[3] != ' ') {
		return 0, false, errBadResponse
	}
	for _, c := range line[:3] {
		if c < '0' || c > '9' {
			return 0, false, errBadResponse
		}
		status = status*10 + int(c-'0')
	}
	if status < 200 || status > 599 {
		// 1xx would be followed by the real answer; nothing the gateway
		// sends asks for one.
		return 0, false, errBadResponse
	}

	contentLength := int64(-1)
	chunked, closeAfter := false, http10
	for {
		line, err := readLine(br)
		if err != nil {
			return 0, false, err
		}
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			return 0, false, errBadResponse // obsolete line folding
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !validFieldName(line[:colon]) {
			return 0, false, errBadResponse
		}
		name, value := line[:colon], bytes.Trim(line[colon+1:], " \t")
		switch {
		case asciiEqualFold(name, "Content-Length"):
			n, ok := parseContentLength(value)
			if !ok || contentLength >= 0 && n != contentLength {
				return 0, false, errBadResponse
			}
			contentLength = n
		case asciiEqualFold(name, "Transfer-Encoding"):
			if chunked || !asciiEqualFold(value, "chunked") {
				return 0, false, errBadResponse
			}
			chunked = true
		case asciiEqualFold(name, "Connection"):
			for tok := range bytes.SplitSeq(value, []byte(",")) {
				if asciiEqualFold(bytes.Trim(tok, " \t"), "close") {
					closeAfter = true
				}
			}
		}
	}
	if chunked && contentLength >= 0 {
		return 0, false, errBadResponse
	}
	if lr != nil {
		lr.n = math.MaxInt64
	}

	switch {
	case status == 204 || status == 304:
		return status, !closeAfter, nil
	case chunked:
		if err := readChunked(br, limit, buf); err != nil {
			return 0, false, err
		}
		return status, !closeAfter, nil
	case contentLength >= 0:
		if contentLength > limit {
			return 0, false, errTooLarge
		}
		if err := readN(br, contentLength, buf); err != nil {
			return 0, false, err
		}
		return status, !closeAfter, nil
	default: // delimited by the end of the connection
		n, err := buf.ReadFrom(io.LimitReader(br, limit+1))
		if err != nil {
			return 0, false, err
		}
		if n > limit {
			return 0, false, errTooLarge
		}
		return status, false, nil
	}
}

// readLine returns one line without its line ending. The line aliases br's
// buffer and is valid until the next read.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return nil, errHeaderTooLarge
	}
	if err != nil {
		if err == io.EOF && len(line) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// readN appends exactly n bytes from br to buf.
func readN(br *bufio.Reader, n int64, buf *bytes.Buffer) error {
	buf.Grow(int(n))
	b := buf.AvailableBuffer()[:n]
	if _, err := io.ReadFull(br, b); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	buf.Write(b) // b is buf's own free space: this only extends its length
	return nil
}

// readChunked appends a chunked body (at most limit bytes) to buf and
// consumes its trailer.
func readChunked(br *bufio.Reader, limit int64, buf *bytes.Buffer) error {
	var total int64
	for {
		line, err := readLine(br)
		if err != nil {
			return err
		}
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i] // chunk extensions are ignored
		}
		line = bytes.TrimRight(line, " \t")
		if len(line) == 0 || len(line) > 15 {
			return errBadResponse
		}
		var size int64
		for _, c := range line {
			switch {
			case c >= '0' && c <= '9':
				c -= '0'
			case c >= 'a' && c <= 'f':
				c -= 'a' - 10
			case c >= 'A' && c <= 'F':
				c -= 'A' - 10
			default:
				return errBadResponse
			}
			size = size<<4 | int64(c)
		}
		if size == 0 {
			break
		}
		if total += size; total > limit {
			return errTooLarge
		}
		if err := readN(br, size, buf); err != nil {
			return err
		}
		if end, err := readLine(br); err != nil || len(end) != 0 {
			return errBadResponse
		}
	}
	for range maxTrailerLines {
		line, err := readLine(br)
		if err != nil {
			return err
		}
		if len(line) == 0 {
			return nil
		}
	}
	return errBadResponse
}

func parseContentLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// validFieldName reports whether b is an RFC 9110 token.
func validFieldName(b []byte) bool {
	for _, c := range b {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case bytes.IndexByte([]byte("!#$%&'*+-.^_`|~"), c) >= 0:
		default:
			return false
		}
	}
	return len(b) > 0
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
