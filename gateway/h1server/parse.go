package h1server

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// refusal is why a request is refused before the handler sees it: the
// status answered and a short reason for the debug log and the tests. It
// never carries request data.
type refusal struct {
	status int
	reason string
}

func refuse(status int, reason string) refusal { return refusal{status: status, reason: reason} }

func (r refusal) refused() bool { return r.status != 0 }

// head is what parseHead takes from a request head besides the header
// fields themselves.
type head struct {
	method, target string
	// The target split as net/url splits a request URI.
	path, rawPath, rawQuery string
	forceQuery              bool
	minor                   int // HTTP/1.minor
	host                    string
	contentLength           int64
	expectContinue          bool
	close                   bool // HTTP/1.0, or Connection: close
}

// headScan finds the end of a request head (its empty line) in the bytes
// received so far, resuming where the previous call stopped, so a head
// trickled a byte at a time is scanned once, not once per byte. The zero
// value starts a new head.
type headScan struct {
	pos   int // where to resume looking for LF
	lines int // lines ended so far, the request line included
}

// scan looks at b (the head's bytes so far: b grows between calls, from
// the same start). When the head is complete it returns its length, final
// CRLF included; otherwise 0. It refuses, as soon as they show, a bare LF
// (400), an empty line before the request line (400), a head longer than
// maxBytes or with more than maxLines header lines (431).
func (s *headScan) scan(b []byte, maxBytes, maxLines int) (end int, ref refusal) {
	for {
		j := bytes.IndexByte(b[s.pos:], '\n')
		if j < 0 {
			s.pos = len(b)
			if len(b) > maxBytes {
				return 0, refuse(http.StatusRequestHeaderFieldsTooLarge, "header too large")
			}
			return 0, refusal{}
		}
		k := s.pos + j // b[k] == '\n'
		s.pos = k + 1
		switch {
		case k == 0 || b[k-1] != '\r':
			return 0, refuse(http.StatusBadRequest, "bare LF")
		case k+1 > maxBytes:
			return 0, refuse(http.StatusRequestHeaderFieldsTooLarge, "header too large")
		case k == 1:
			return 0, refuse(http.StatusBadRequest, "empty line before the request line")
		case k >= 3 && b[k-2] == '\n':
			return k + 1, refusal{} // CRLF CRLF
		}
		if s.lines++; s.lines > maxLines+1 { // the request line is not a header line
			return 0, refuse(http.StatusRequestHeaderFieldsTooLarge, "too many header lines")
		}
	}
}

// parseHead parses a complete request head s (as scanHead delimited it)
// into p and the header map h, which must be empty. Header values are
// substrings of s; each gets its one-element slice from vals (len(vals) >=
// the number of header lines) so that the map costs no allocation per
// field. Host is moved to p.host and not kept in h, as net/http does.
func parseHead(s string, h http.Header, vals []string, maxBody int64, p *head) refusal {
	*p = head{}
	line, rest, _ := strings.Cut(s, "\r\n")
	if ref := parseRequestLine(line, p); ref.refused() {
		return ref
	}
	hosts, lengths := 0, 0
	for n := 0; ; n++ {
		line, rest, _ = strings.Cut(rest, "\r\n")
		if line == "" {
			break
		}
		if isOWS(line[0]) {
			return refuse(http.StatusBadRequest, "folded header line")
		}
		colon := strings.IndexByte(line, ':')
		if colon <= 0 {
			return refuse(http.StatusBadRequest, "header line without a name")
		}
		name := line[:colon]
		for i := 0; i < len(name); i++ {
			if !isToken(name[i]) {
				return refuse(http.StatusBadRequest, "invalid header name")
			}
		}
		value := trimOWS(line[colon+1:])
		for i := 0; i < len(value); i++ {
			if !isValueByte(value[i]) {
				return refuse(http.StatusBadRequest, "invalid header value")
			}
		}
		key := canonicalKey(name)
		switch key {
		case "Host":
			if hosts++; hosts > 1 {
				return refuse(http.StatusBadRequest, "more than one Host")
			}
			if !httpguts.ValidHostHeader(value) {
				return refuse(http.StatusBadRequest, "invalid Host")
			}
			p.host = value
			continue
		case "Content-Length":
			if lengths++; lengths > 1 {
				return refuse(http.StatusBadRequest, "more than one Content-Length")
			}
			cl, ok := parseLength(value)
			if !ok {
				return refuse(http.StatusBadRequest, "invalid Content-Length")
			}
			if cl > maxBody {
				return refuse(http.StatusRequestEntityTooLarge, "body too large")
			}
			p.contentLength = cl
		case "Transfer-Encoding":
			// Only Content-Length bodies are accepted: chunked framing is
			// where request-smuggling disagreements live, and the API's
			// bodies are small and of known size.
			return refuse(http.StatusLengthRequired, "Transfer-Encoding")
		case "Expect":
			switch {
			case !equalFold(value, "100-continue"):
				return refuse(http.StatusExpectationFailed, "unsupported Expect")
			case p.minor == 1:
				p.expectContinue = true
			} // RFC 9110 10.1.1: ignored from an HTTP/1.0 client
		case "Connection":
			if hasToken(value, "close") {
				p.close = true
			}
		}
		if n < len(vals) {
			vals[n] = value
			if prev, ok := h[key]; ok {
				h[key] = append(prev, value) // len == cap: copies, never overwrites vals
			} else {
				h[key] = vals[n : n+1 : n+1]
			}
		} else {
			h[key] = append(h[key], value)
		}
	}
	if hosts == 0 && p.minor == 1 {
		return refuse(http.StatusBadRequest, "no Host")
	}
	if p.contentLength == 0 {
		p.expectContinue = false // nothing to wait for
	}
	return refusal{}
}

// parseRequestLine parses `method SP origin-form SP HTTP/1.x`.
func parseRequestLine(line string, p *head) refusal {
	method, rest, ok1 := strings.Cut(line, " ")
	target, version, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 || method == "" || target == "" {
		return refuse(http.StatusBadRequest, "malformed request line")
	}
	for i := 0; i < len(method); i++ {
		if !isToken(method[i]) {
			return refuse(http.StatusBadRequest, "invalid method")
		}
	}
	switch version {
	case "HTTP/1.1":
		p.minor, p.close = 1, false
	case "HTTP/1.0":
		p.minor, p.close = 0, true // no keep-alive for HTTP/1.0
	default:
		if len(version) == 8 && strings.HasPrefix(version, "HTTP/") && isDigit(version[5]) && version[6] == '.' && isDigit(version[7]) {
			return refuse(http.StatusHTTPVersionNotSupported, "unsupported HTTP version")
		}
		return refuse(http.StatusBadRequest, "malformed HTTP version")
	}
	if target[0] != '/' {
		// absolute-form, authority-form (CONNECT) and asterisk-form
		// (OPTIONS *) are not served: a gateway has no use for them.
		return refuse(http.StatusBadRequest, "request target not in origin-form")
	}
	plain, valid := plainTarget(target)
	if !valid {
		return refuse(http.StatusBadRequest, "invalid byte in request target")
	}
	p.method, p.target = method, target
	if !parseOriginForm(target, plain, p) {
		return refuse(http.StatusBadRequest, "invalid request target")
	}
	return refusal{}
}

// parseOriginForm sets p's path, raw path, query and forceQuery from an
// origin-form target; plain: the target holds no escape or character
// net/url would re-encode, so it is split without net/url (and without
// an allocation). False when net/url refuses it.
func parseOriginForm(target string, plain bool, p *head) bool {
	if !plain {
		// Escapes and characters net/url would re-encode: let net/url
		// decide Path and RawPath, exactly as net/http does. Rare.
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return false
		}
		p.path, p.rawPath, p.rawQuery, p.forceQuery = u.Path, u.RawPath, u.RawQuery, u.ForceQuery
		return true
	}
	path, query, hasQuery := strings.Cut(target, "?")
	if hasQuery && query == "" && strings.Count(target, "?") == 1 {
		p.forceQuery = true // "/a?" as net/url parses it
	}
	p.path, p.rawQuery = path, query
	return true
}

// plainTarget reports whether an origin-form target needs no net/url
// decoding (see parseOriginForm); false also when it holds a byte not
// allowed in a request target.
func plainTarget(target string) (plain, valid bool) {
	plain, inPath := true, true
	for i := 0; i < len(target); i++ {
		c := target[i]
		if !isTargetByte(c) {
			return false, false
		}
		inPath = inPath && c != '?'
		plain = plain && (!inPath || isPlainPathByte(c))
	}
	return plain, true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// parseLength parses a Content-Length value: 1 to 18 digits, nothing else
// (no sign, no list: "5, 5" is refused).
func parseLength(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, false
		}
		n = n*10 + int64(s[i]-'0')
	}
	return n, true
}

// hasToken reports whether the comma-separated list v holds token
// (lower case), case-insensitively.
func hasToken(v, token string) bool {
	for v != "" {
		var item string
		item, v, _ = strings.Cut(v, ",")
		if equalFold(trimOWS(item), token) {
			return true
		}
	}
	return false
}

// canonicalKey returns the canonical form of a header name (a token), as
// textproto.CanonicalMIMEHeaderKey does; the name itself when it already
// is canonical, which is what well-behaved clients send, so the common
// case does not allocate.
func canonicalKey(name string) string {
	upper := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			return http.CanonicalHeaderKey(name)
		}
		upper = c == '-'
	}
	return name
}
