package h1server

import (
	"bufio"
	"bytes"
	"net/http"
	"net/textproto"
	"strings"
	"testing"
)

// FuzzParseRequest checks the request parser, the boundary against
// request smuggling: what it accepts is well-formed by its own rules, and
// net/http reads the same bytes as the same request (method, target, Host,
// body length, header fields), so no request can mean one thing to the
// gateway and another to an HTTP/1.1 implementation downstream or a
// future replacement. Seeds: the parser table and testdata/fuzz.
func FuzzParseRequest(f *testing.F) {
	for _, tc := range headCases {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		ref, h, hdr, end := parseAll(in)
		if ref.refused() {
			if ref.status < 400 || ref.status > 505 || ref.reason == "" {
				t.Fatalf("refusal %+v", ref)
			}
			return
		}
		if end == 0 {
			return // incomplete
		}
		raw := in[:end]
		if !bytes.HasSuffix(raw, []byte("\r\n\r\n")) || bytes.Count(raw, []byte("\n")) != bytes.Count(raw, []byte("\r\n")) {
			t.Fatalf("accepted a head without CRLF framing: %q", raw)
		}
		checkOwnRules(t, raw, h, hdr)
		checkAgainstNetHTTP(t, raw, h, hdr)
	})
}

func checkOwnRules(t *testing.T, raw []byte, h head, hdr http.Header) {
	t.Helper()
	if h.method == "" || h.target == "" || h.target[0] != '/' || h.contentLength < 0 || h.contentLength > testMaxBody {
		t.Fatalf("accepted %q as %+v", raw, h)
	}
	lower := strings.ToLower(string(raw))
	if strings.Contains(lower, "\r\ntransfer-encoding:") {
		t.Fatalf("accepted a Transfer-Encoding: %q", raw)
	}
	if strings.Count(lower, "\r\ncontent-length:") > 1 || strings.Count(lower, "\r\nhost:") > 1 {
		t.Fatalf("accepted a repeated Content-Length or Host: %q", raw)
	}
	if h.minor == 1 && !strings.Contains(lower, "\r\nhost:") {
		t.Fatalf("accepted HTTP/1.1 without Host: %q", raw)
	}
	for k, vs := range hdr {
		if k != textproto.CanonicalMIMEHeaderKey(k) || !validFieldName(k) {
			t.Fatalf("key %q", k)
		}
		for _, v := range vs {
			if v != trimOWS(v) || strings.ContainsAny(v, "\r\n\x00") {
				t.Fatalf("%s value %q", k, v)
			}
		}
	}
}

func checkAgainstNetHTTP(t *testing.T, raw []byte, h head, hdr http.Header) {
	t.Helper()
	r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatalf("accepted %q, which net/http refuses: %v", raw, err)
	}
	cl := r.ContentLength
	if cl < 0 {
		cl = 0
	}
	switch {
	case r.Method != h.method, r.RequestURI != h.target, r.Host != h.host, cl != h.contentLength,
		r.URL.Path != h.path, r.URL.RawPath != h.rawPath, r.URL.RawQuery != h.rawQuery, r.URL.ForceQuery != h.forceQuery,
		r.ProtoMinor != h.minor, r.Close && !h.close:
		t.Fatalf("%q: net/http reads %s %q host %q length %d path %q/%q query %q close %v; we read %+v",
			raw, r.Method, r.RequestURI, r.Host, r.ContentLength, r.URL.Path, r.URL.RawPath, r.URL.RawQuery, r.Close, h)
	}
	// net/http rewrites Pragma: no-cache into Cache-Control for HTTP/1.0.
	r.Header.Del("Cache-Control")
	delete(hdr, "Cache-Control")
	if len(r.Header) != len(hdr) {
		t.Fatalf("%q: net/http reads fields %q, we read %q", raw, r.Header, hdr)
	}
	for k, vs := range r.Header {
		if strings.Join(vs, "\n") != strings.Join(hdr[k], "\n") {
			t.Fatalf("%q: %s is %q for net/http, %q for us", raw, k, vs, hdr[k])
		}
	}
}
