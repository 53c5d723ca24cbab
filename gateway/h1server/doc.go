// Package h1server is a minimal, strict HTTP/1.1 server for the gateway's
// agency listener, with HTTP/2 handed to golang.org/x/net/http2.
//
// It exists for speed and strictness. net/http's server spends, per
// request, a background read goroutine (and an extra read syscall),
// several deadline resets, a header map clone and a text-protocol parser
// built for leniency; on the 2-core gateway that was the largest cost left
// that the gateway could avoid. Here a connection is one goroutine: it
// reads a request head, parses it in place, calls the handler, and sends
// the whole response (status line, header fields, Content-Length, body) in
// one write. Per-connection objects (the *http.Request, its Header map and
// URL, the ResponseWriter, its header map and buffers) are reused from one
// request to the next, so a handler must not keep any of them, nor r.Body,
// after it returns. The request context is new for each request, derived
// from the connection's, and is cancelled when the handler returns, when
// the connection closes and on a forced shutdown.
//
// Strictness, because the gateway is a request-smuggling boundary: only
// `METHOD SP origin-form SP HTTP/1.x CRLF` request lines and `name: value
// CRLF` header lines are accepted; bare LF, folded lines, whitespace before
// a colon, control bytes in values, a missing or repeated Host (HTTP/1.1),
// a repeated or non-numeric Content-Length are 400; heads over
// MaxHeaderBytes or MaxHeaderLines are 431; a Content-Length over
// MaxBodyBytes is 413; any Transfer-Encoding is 411: request bodies must
// have a Content-Length, chunked bodies are refused (the API's bodies are
// small JSON documents of known size); an Expect other than 100-continue
// is 417; HTTP versions other than 1.0 and 1.1 are 505. Every refusal
// closes the connection, and no refusal echoes request data. HTTP/1.0
// requests are served, each on its own connection (no keep-alive).
// HTTP/2 requests get the same header limits (the HPACK size of the header
// list against MaxHeaderBytes), refused with 431 through Refuse as well,
// rather than by golang.org/x/net/http2's own handler (see h2limits.go).
// The HTTP/2 server advertises at most 100 concurrent streams and a 16 KiB
// maximum frame size, and closes a connection when a write to it does
// not complete within WriteTimeout (slow readers). Each HTTP/2 stream it resets with an error
// code and each connection it ends with one is reported to
// ProtocolRefusal, read from the frames it writes (h2conn.go); a
// connection with more than 100 such streams is closed. The same reading
// holds a response's HEADERS frame back until its DATA is written (at
// most 500 µs), so that a small response leaves in one write and one TLS
// record rather than two.
//
// A body the handler leaves unread is read and dropped after it returns
// when at most 256 KiB remain; otherwise the connection closes after the
// answer. Pipelined requests are answered in order.
//
// MaxConnectionAge bounds a connection's life from its accept, so that
// every client comes back through a handshake now and then: an HTTP/1
// connection closes after the response in progress (Connection: close)
// or when idle, an HTTP/2 connection gets a graceful GOAWAY from an
// HTTP/2 server of its own. ConnContext, as net/http's, gives each
// connection a context of the caller's (the gateway keeps its per-
// connection certificate checks there).
//
// Not supported, because the gateway does not need them: streaming
// (http.Flusher; a response is held whole, up to MaxResponseBytes: beyond
// that Write fails with ErrResponseTooLarge and the client gets a 500),
// Hijacker, trailers, 1xx responses from handlers, h2c, Content-Type
// sniffing (handlers set Content-Type). There is no background read, so a
// client that goes away mid-request is noticed only when the response is
// written; the handler's own timeouts (the gateway's upstream timeout)
// still bound it.
package h1server
