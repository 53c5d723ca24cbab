package gateway

import (
	"bufio"
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestReadResponse(t *testing.T) {
	errAny := errors.New("any error will do (io errors vary)")
	const next = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext"
	tests := []struct {
		name, raw string
		status    int
		body      string
		reusable  bool
		err       error // nil: success; errBadResponse, errTooLarge, ...
	}{
		{"content-length", "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}", 200, "{}", true, nil},
		{"no reason phrase", "HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n", 404, "", true, nil},
		{"bare LF lines", "HTTP/1.1 200 OK\nContent-Length: 2\n\n{}", 200, "{}", true, nil},
		{"same length twice", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\n{}", 200, "{}", true, nil},
		{"chunked with extension and trailer", "HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n2;x=y\r\n{\"\r\n3\r\na\":\r\n2\r\n1}\r\n0\r\nX-T: 1\r\n\r\n", 200, `{"a":1}`, true, nil},
		{"connection close", "HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 2\r\n\r\n{}", 200, "{}", false, nil},
		{"http/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}", 200, "{}", false, nil},
		{"delimited by close", "HTTP/1.1 200 OK\r\n\r\n{\"a\":1}", 200, `{"a":1}`, false, nil},
		{"no content", "HTTP/1.1 204 No Content\r\n\r\n", 204, "", true, nil},
		{"informational", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", 0, "", false, errBadResponse},
		{"lengths disagree", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}x", 0, "", false, errBadResponse},
		{"chunked and length", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 0, "", false, errBadResponse},
		{"other coding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 0, "", false, errBadResponse},
		{"chunked twice", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 0, "", false, errBadResponse},
		{"folded header", "HTTP/1.1 200 OK\r\nX-A: 1\r\n Content-Length: 2\r\n\r\n{}", 0, "", false, errBadResponse},
		{"space before colon", "HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\n{}", 0, "", false, errBadResponse},
		{"negative length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", 0, "", false, errBadResponse},
		{"signed length", "HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\n{}", 0, "", false, errBadResponse},
		{"not HTTP", "SSH-2.0-x\r\n\r\n", 0, "", false, errBadResponse},
		{"bad status", "HTTP/1.1 2x0 OK\r\n\r\n", 0, "", false, errBadResponse},
		{"status 600", "HTTP/1.1 600 X\r\n\r\n", 0, "", false, errBadResponse},
		{"length over limit", "HTTP/1.1 200 OK\r\nContent-Length: 65\r\n\r\n", 0, "", false, errTooLarge},
		{"chunks over limit", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n20\r\n" + strings.Repeat("a", 32) + "\r\n21\r\n" + strings.Repeat("a", 33) + "\r\n0\r\n\r\n", 0, "", false, errTooLarge},
		{"close-delimited over limit", "HTTP/1.1 200 OK\r\n\r\n" + strings.Repeat("a", 65), 0, "", false, errTooLarge},
		{"bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 0, "", false, errBadResponse},
		{"chunk without CRLF", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}x\r\n0\r\n\r\n", 0, "", false, errBadResponse},
		{"endless trailer", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n" + strings.Repeat("X: 1\r\n", 40) + "\r\n", 0, "", false, errBadResponse},
		{"truncated body", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n{}", 0, "", false, errAny},
		{"truncated header", "HTTP/1.1 200 OK\r\nContent-Le", 0, "", false, errAny},
		{"line over the buffer", "HTTP/1.1 200 OK\r\nX-A: " + strings.Repeat("a", 5000) + "\r\n\r\n", 0, "", false, errHeaderTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := tc.raw
			if tc.reusable {
				raw += next // a kept-alive connection's next answer
			}
			br := bufio.NewReaderSize(strings.NewReader(raw), 4096)
			var buf bytes.Buffer
			status, reusable, err := readResponse(br, nil, 64, &buf)
			switch {
			case tc.err == errAny && err != nil:
				return
			case tc.err != nil:
				if !errors.Is(err, tc.err) {
					t.Fatalf("err %v, want %v", err, tc.err)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			if status != tc.status || buf.String() != tc.body || reusable != tc.reusable {
				t.Fatalf("got %d %q reusable=%v", status, buf.String(), reusable)
			}
			if !reusable {
				return
			}
			// The next answer on the connection starts exactly where this
			// one ended.
			buf.Reset()
			if status, _, err := readResponse(br, nil, 64, &buf); err != nil || status != 200 || buf.String() != "next" {
				t.Fatalf("next response: %d %q %v", status, buf.String(), err)
			}
		})
	}
}
