package h1server

import (
	"net/http"
	"strings"
	"testing"
)

// Limits of the parser tests: small, so that the "too large" cases stay
// short.
const (
	testMaxHeaderBytes = 1024
	testMaxHeaderLines = 20
	testMaxBody        = 1000
)

// headCase is a request head and what the server must do with it: the
// status (200: handed to the handler) and whether the connection closes
// after the answer. Every refusal closes.
type headCase struct {
	name   string
	in     string
	status int
	close  bool
}

func get(headers string) string { return "GET /v1/citizens/1 HTTP/1.1\r\n" + headers + "\r\n" }

var headCases = []headCase{
	// Accepted.
	{"minimal", get("Host: gw\r\n"), 200, false},
	{"query", "GET /v1/citizens/1?fields=a,b HTTP/1.1\r\nHost: gw\r\n\r\n", 200, false},
	{"lower-case names", get("host: gw\r\nuser-agent: x\r\nx-A: 1\r\n"), 200, false},
	{"optional whitespace", get("Host:\t gw \t\r\nX-A:1\r\n"), 200, false},
	{"empty value", get("Host: gw\r\nX-Empty:\r\n"), 200, false},
	{"tab and obs-text in a value", get("Host: gw\r\nX-Name: Nguy\xe1\xbb\x85n\tV\xc4\x83n\r\n"), 200, false},
	{"repeated field", get("Host: gw\r\nAccept: a\r\nAccept: b\r\n"), 200, false},
	{"body", "POST /v1/citizens:verify HTTP/1.1\r\nHost: gw\r\nContent-Length: 2\r\n\r\n", 200, false},
	{"zero length", "POST /x HTTP/1.1\r\nHost: gw\r\nContent-Length: 0\r\n\r\n", 200, false},
	{"length at the limit", "POST /x HTTP/1.1\r\nHost: gw\r\nContent-Length: 1000\r\n\r\n", 200, false},
	{"percent-encoded path", "GET /a%20b HTTP/1.1\r\nHost: gw\r\n\r\n", 200, false},
	{"empty Host", get("Host:\r\n"), 200, false},
	{"Host with port", get("Host: 127.0.0.1:8443\r\n"), 200, false},
	{"Connection: close", get("Host: gw\r\nConnection: close\r\n"), 200, true},
	{"close in a list", get("Host: gw\r\nConnection: keep-alive, CLOSE\r\n"), 200, true},
	{"HTTP/1.0 without Host", "GET / HTTP/1.0\r\n\r\n", 200, true},
	{"HTTP/1.0 keep-alive is not offered", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 200, true},
	{"Expect: 100-continue", "POST /x HTTP/1.1\r\nHost: gw\r\nExpect: 100-Continue\r\nContent-Length: 2\r\n\r\n", 200, false},

	// Framing.
	{"bare LF ending the request line", "GET / HTTP/1.1\nHost: gw\r\n\r\n", 400, true},
	{"bare LF ending a header line", "GET / HTTP/1.1\r\nHost: gw\n\r\n", 400, true},
	{"bare LF ending the head", "GET / HTTP/1.1\r\nHost: gw\r\n\n", 400, true},
	{"bare CR in a value", get("Host: gw\r\nX-A: a\rb\r\n"), 400, true},
	{"empty line first", "\r\nGET / HTTP/1.1\r\nHost: gw\r\n\r\n", 400, true},
	{"folded line", get("Host: gw\r\nX-A: a\r\n b\r\n"), 400, true},
	{"folded line with a tab", get("Host: gw\r\nX-A: a\r\n\tb\r\n"), 400, true},
	{"space before the colon", get("Host : gw\r\n"), 400, true},
	{"tab before the colon", get("Host\t: gw\r\n"), 400, true},
	{"no colon", get("Host: gw\r\nX-A\r\n"), 400, true},
	{"empty name", get("Host: gw\r\n: a\r\n"), 400, true},
	{"invalid name byte", get("Host: gw\r\nX(A): a\r\n"), 400, true},
	{"NUL in a value", get("Host: gw\r\nX-A: a\x00b\r\n"), 400, true},
	{"control byte in a value", get("Host: gw\r\nX-A: a\x01b\r\n"), 400, true},
	{"DEL in a value", get("Host: gw\r\nX-A: a\x7fb\r\n"), 400, true},
	{"head too large", get("Host: gw\r\nX-A: " + strings.Repeat("a", testMaxHeaderBytes) + "\r\n"), 431, true},
	{"too many lines", get("Host: gw\r\n" + strings.Repeat("X-A: a\r\n", testMaxHeaderLines)), 431, true},

	// Request line.
	{"absolute-form", "GET http://gw/v1/citizens/1 HTTP/1.1\r\nHost: gw\r\n\r\n", 400, true},
	{"authority-form", "CONNECT gw:443 HTTP/1.1\r\nHost: gw\r\n\r\n", 400, true},
	{"asterisk-form", "OPTIONS * HTTP/1.1\r\nHost: gw\r\n\r\n", 400, true},
	{"invalid method byte", "G(T / HTTP/1.1\r\nHost: gw\r\n\r\n", 400, true},
	{"no method", " / HTTP/1.1\r\nHost: gw\r\n\r\n", 400, true},
	{"two spaces", "GET  / HTTP/1.1\r\nHost: gw\r\n\r\n", 400, true},
	{"trailing space", "GET / HTTP/1.1 \r\nHost: gw\r\n\r\n", 400, true},
	{"no version", "GET /\r\nHost: gw\r\n\r\n", 400, true},
	{"lower-case version", "GET / http/1.1\r\nHost: gw\r\n\r\n", 400, true},
	{"HTTP/1.10", "GET / HTTP/1.10\r\nHost: gw\r\n\r\n", 400, true},
	{"HTTP/2.0", "GET / HTTP/2.0\r\nHost: gw\r\n\r\n", 505, true},
	{"HTTP/1.2", "GET / HTTP/1.2\r\nHost: gw\r\n\r\n", 505, true},
	{"fragment", "GET /a#b HTTP/1.1\r\nHost: gw\r\n\r\n", 400, true},
	{"non-ASCII target", "GET /\xc3\xa9 HTTP/1.1\r\nHost: gw\r\n\r\n", 400, true},
	{"control byte in the target", "GET /a\x01 HTTP/1.1\r\nHost: gw\r\n\r\n", 400, true},
	{"invalid escape", "GET /a%zz HTTP/1.1\r\nHost: gw\r\n\r\n", 400, true},

	// Host.
	{"no Host", get(""), 400, true},
	{"two Hosts", get("Host: gw\r\nHost: gw\r\n"), 400, true},
	{"invalid Host", get("Host: gw/x\r\n"), 400, true},

	// Body framing.
	{"two equal lengths", "POST /x HTTP/1.1\r\nHost: gw\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n", 400, true},
	{"length list", "POST /x HTTP/1.1\r\nHost: gw\r\nContent-Length: 2, 2\r\n\r\n", 400, true},
	{"signed length", "POST /x HTTP/1.1\r\nHost: gw\r\nContent-Length: +2\r\n\r\n", 400, true},
	{"negative length", "POST /x HTTP/1.1\r\nHost: gw\r\nContent-Length: -1\r\n\r\n", 400, true},
	{"hex length", "POST /x HTTP/1.1\r\nHost: gw\r\nContent-Length: 0x10\r\n\r\n", 400, true},
	{"empty length", "POST /x HTTP/1.1\r\nHost: gw\r\nContent-Length: \r\n\r\n", 400, true},
	{"huge length", "POST /x HTTP/1.1\r\nHost: gw\r\nContent-Length: 99999999999999999999\r\n\r\n", 400, true},
	{"length over the limit", "POST /x HTTP/1.1\r\nHost: gw\r\nContent-Length: 1001\r\n\r\n", 413, true},
	{"chunked", "POST /x HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n", 411, true},
	{"chunked and a length", "POST /x HTTP/1.1\r\nHost: gw\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n", 411, true},
	{"identity", "POST /x HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: identity\r\n\r\n", 411, true},
	{"lower-case transfer-encoding", "POST /x HTTP/1.1\r\nHost: gw\r\ntransfer-encoding: chunked\r\n\r\n", 411, true},
	{"unknown Expect", "POST /x HTTP/1.1\r\nHost: gw\r\nExpect: 200-ok\r\nContent-Length: 2\r\n\r\n", 417, true},
}

// parseAll runs the scanner and the parser on a whole head.
func parseAll(in []byte) (refusal, head, http.Header, int) {
	var sc headScan
	var h head
	hdr := http.Header{}
	end, ref := sc.scan(in, testMaxHeaderBytes, testMaxHeaderLines)
	if ref.refused() || end == 0 {
		return ref, h, hdr, end
	}
	return parseHead(string(in[:end]), hdr, make([]string, sc.lines), testMaxBody, &h), h, hdr, end
}

func TestParseHead(t *testing.T) {
	for _, tc := range headCases {
		t.Run(tc.name, func(t *testing.T) {
			ref, h, _, end := parseAll([]byte(tc.in))
			status := ref.status
			if status == 0 {
				if end != len(tc.in) {
					t.Fatalf("head ends at %d of %d", end, len(tc.in))
				}
				status = http.StatusOK
			}
			if status != tc.status {
				t.Fatalf("status %d (%s), want %d", status, ref.reason, tc.status)
			}
			if status == http.StatusOK && h.close != tc.close {
				t.Fatalf("close = %v, want %v", h.close, tc.close)
			}
		})
	}
}

// TestParseHeadFields checks what an accepted head turns into.
func TestParseHeadFields(t *testing.T) {
	in := "POST /a%20b/c?x=1&y HTTP/1.1\r\nhost: gw:8443\r\nx-multi: a\r\nX-Multi:  b \r\n" +
		"Content-Length: 12\r\nExpect: 100-continue\r\n\r\n"
	ref, h, hdr, _ := parseAll([]byte(in))
	if ref.refused() {
		t.Fatalf("refused: %s", ref.reason)
	}
	want := head{method: "POST", target: "/a%20b/c?x=1&y", path: "/a b/c", rawQuery: "x=1&y", minor: 1,
		host: "gw:8443", contentLength: 12, expectContinue: true}
	if h != want {
		t.Fatalf("got %+v\nwant %+v", h, want)
	}
	if got := hdr["X-Multi"]; len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Fatalf("X-Multi = %q", got)
	}
	if _, ok := hdr["Host"]; ok {
		t.Fatal("Host kept in the header map")
	}
	if got := hdr.Get("Content-Length"); got != "12" {
		t.Fatalf("Content-Length = %q", got)
	}
}

// TestScanHeadTrickled feeds a head a byte at a time: the result is the
// same as in one piece, and the scan resumes rather than restarts.
func TestScanHeadTrickled(t *testing.T) {
	in := []byte(get("Host: gw\r\nX-A: b\r\n"))
	var sc headScan
	for n := 1; n <= len(in); n++ {
		end, ref := sc.scan(in[:n], testMaxHeaderBytes, testMaxHeaderLines)
		if ref.refused() {
			t.Fatalf("refused at %d: %s", n, ref.reason)
		}
		if (end != 0) != (n == len(in)) {
			t.Fatalf("end %d after %d of %d bytes", end, n, len(in))
		}
	}
	if sc.lines != 3 {
		t.Fatalf("lines = %d, want 3", sc.lines)
	}
}
