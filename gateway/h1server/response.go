package h1server

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// ErrResponseTooLarge is what Write returns once a handler has written
// more than MaxResponseBytes. The server then answers 500 instead and
// closes the connection: it never streams, so it cannot send a response
// it did not hold whole.
var ErrResponseTooLarge = errors.New("h1server: response larger than MaxResponseBytes")

// response is the http.ResponseWriter of an HTTP/1 request. It holds the
// whole response until the handler returns, then the connection writes
// status line, header fields, Content-Length and body in one write. One
// per connection, reset for each request: a handler must not keep it, or
// its Header map, after it returns.
//
// It implements no optional interface (http.Flusher, http.Hijacker...):
// nothing is sent before the handler returns.
type response struct {
	header http.Header
	status int
	head   []byte // status line and header fields, as of WriteHeader
	body   []byte
	keys   []string // scratch for sorting header keys

	maxBody   int
	declared  int64 // the handler's Content-Length, -1 when it set none
	isHead    bool  // a HEAD request: no body is sent
	hasDate   bool
	closeConn bool // the handler asked for Connection: close
	tooLarge  bool
}

// maxKeptBuffer bounds the buffers a connection keeps between requests:
// a rare large response must not pin its memory for the connection's life.
const maxKeptBuffer = 64 << 10

func (w *response) reset(isHead bool) {
	clear(w.header)
	if cap(w.body) > maxKeptBuffer {
		w.body = nil
	}
	if cap(w.head) > maxKeptBuffer {
		w.head = nil
	}
	w.status, w.head, w.body = 0, w.head[:0], w.body[:0]
	w.declared, w.isHead, w.hasDate, w.closeConn, w.tooLarge = -1, isHead, false, false, false
}

func (w *response) Header() http.Header { return w.header }

// WriteHeader records the status and takes a snapshot of the header
// fields, as net/http does: later changes to the map are not sent. Only
// the first call counts. 1xx statuses are ignored (the server sends 100
// Continue itself); a code outside 100-999 panics, as with net/http.
func (w *response) WriteHeader(code int) {
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("h1server: invalid WriteHeader code %v", code))
	}
	if w.status != 0 || code < 200 {
		return
	}
	w.status = code
	w.head = appendStatusLine(w.head[:0], code)
	keys := w.keys[:0]
	for k := range w.header {
		keys = append(keys, k)
	}
	slices.Sort(keys) // a stable order, as net/http writes them
	w.keys = keys
	for _, k := range keys {
		vs := w.header[k]
		switch k {
		case "Content-Length":
			// Sent by the server from what was written; kept only to
			// check the handler wrote what it announced.
			if len(vs) > 0 {
				if n, ok := parseLength(trimOWS(vs[0])); ok {
					w.declared = n
				}
			}
			continue
		case "Transfer-Encoding", "Trailer":
			continue // never chunked
		case "Connection":
			for _, v := range vs {
				w.closeConn = w.closeConn || hasToken(v, "close")
			}
			continue // the server writes its own
		case "Date":
			w.hasDate = true
		}
		if !validFieldName(k) {
			continue // as net/http: dropped rather than sent broken
		}
		for _, v := range vs {
			w.head = appendField(w.head, k, v)
		}
	}
}

// Write buffers p. It writes the header first (200) when the handler did
// not; it fails when the status allows no body, when p goes beyond the
// handler's own Content-Length, or beyond MaxResponseBytes.
func (w *response) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	switch {
	case !bodyAllowed(w.status):
		return 0, http.ErrBodyNotAllowed
	case w.declared >= 0 && int64(len(w.body)+len(p)) > w.declared:
		return 0, http.ErrContentLength
	case len(w.body)+len(p) > w.maxBody:
		w.tooLarge = true
		return 0, ErrResponseTooLarge
	}
	w.body = append(w.body, p...)
	return len(p), nil
}

// WriteString is Write without the conversion.
func (w *response) WriteString(s string) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !bodyAllowed(w.status) || (w.declared >= 0 && int64(len(w.body)+len(s)) > w.declared) || len(w.body)+len(s) > w.maxBody {
		return w.Write([]byte(s)) // the error path
	}
	w.body = append(w.body, s...)
	return len(s), nil
}

// errLengthMismatch reports a handler that set a Content-Length and wrote
// fewer bytes: the response cannot be sent as announced.
var errLengthMismatch = errors.New("h1server: handler wrote less than its Content-Length")

// finish appends the whole response (header fields the server adds,
// then the body) to the snapshot in w.head and returns it. date is the
// current Date value; closing adds Connection: close.
func (w *response) finish(date []byte, closing bool) ([]byte, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	out := w.head
	if !w.hasDate {
		out = append(out, "Date: "...)
		out = append(out, date...)
		out = append(out, "\r\n"...)
	}
	n := int64(len(w.body))
	if bodyAllowed(w.status) {
		switch {
		case w.isHead && w.declared >= 0:
			n = w.declared // what a GET would have sent
		case w.declared >= 0 && w.declared != n:
			return nil, errLengthMismatch
		}
		out = append(out, "Content-Length: "...)
		out = strconv.AppendInt(out, n, 10)
		out = append(out, "\r\n"...)
	}
	if closing {
		out = append(out, "Connection: close\r\n"...)
	}
	out = append(out, "\r\n"...)
	if bodyAllowed(w.status) && !w.isHead {
		out = append(out, w.body...)
	}
	w.head = out
	return out, nil
}

// bodyAllowed reports whether a response with this status has a body.
func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}

func appendStatusLine(b []byte, code int) []byte {
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, ' ')
	if text := http.StatusText(code); text != "" {
		b = append(b, text...)
	} else {
		b = append(b, "status code "...)
		b = strconv.AppendInt(b, int64(code), 10)
	}
	return append(b, "\r\n"...)
}

// appendField appends "k: v\r\n", with CR and LF in v turned into spaces
// (as net/http does) so that no value can end the head early.
func appendField(b []byte, k, v string) []byte {
	b = append(b, k...)
	b = append(b, ": "...)
	v = strings.TrimSpace(v)
	if !strings.ContainsAny(v, "\r\n") {
		b = append(b, v...)
		return append(b, "\r\n"...)
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '\r' || c == '\n' {
			c = ' '
		}
		b = append(b, c)
	}
	return append(b, "\r\n"...)
}

func validFieldName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		if !isToken(k[i]) {
			return false
		}
	}
	return true
}

// defaultRefusal answers a refused request when the server has no Refuse
// function: the status text as plain text.
func defaultRefusal(w http.ResponseWriter, _ *tls.ConnectionState, status int) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(http.StatusText(status) + "\n"))
}
