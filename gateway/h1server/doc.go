// Package h1server is a minimal, strict HTTP/1.1 server for the gateway's
// agency listener, with HTTP/2 handed to golang.org/x/net/http2 or served
// by its own HTTP/2 connection loop (Config.HTTP2Server).
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
// Config.HTTP2Server = HTTP2Native (the default) serves HTTP/2 with the
// package's own connection loop instead (h2n*.go), for the costs x/net's server pays per
// request on the gateway (a goroutine per stream, channel hand-offs
// between its reader, serve loop and handler, writes scheduled through a
// write scheduler). golang.org/x/net/http2's Framer reads and writes the
// frames and x/net/http2/hpack decodes the request header blocks;
// response header blocks are encoded without HPACK's dynamic table
// (h2nhpack.go: static-table indexes and plain literals, as nginx does).
// The connection is the server's: one reader goroutine parses frames and
// dispatches them without ever waiting for a write; handlers run on the
// connection's workers, reused from one stream to the next; a response of
// up to 32 KiB is framed (HEADERS, then DATA) into the connection's buffer
// and leaves in one write, with the other responses finished meanwhile,
// written by the handler that flushes first (a handler that finishes while
// others of its connection run yields once first, so that responses
// finishing together share a write). Its rules, each a refusal reported to
// ProtocolRefusal (as "h2_stream_<code>" or "h2_connection_<code>") with
// the verified client certificate:
//
//   - A malformed request (a pseudo-header field unknown, repeated, empty
//     or after a regular field; a missing :method, :scheme or :path; a
//     :path not in origin form; an upper-case or invalid field name or
//     value; a connection-specific field, or TE other than "trailers"; a
//     content-length that is invalid, repeated with another value, or
//     contradicted by the DATA frames), a priority on the stream itself,
//     a second HEADERS without END_STREAM, DATA or HEADERS on a stream
//     the client ended: the stream is reset (PROTOCOL_ERROR or
//     STREAM_CLOSED, RFC 9113) and never reaches the handler.
//   - A stream beyond 100 open ones is reset REFUSED_STREAM. Streams that
//     arrive while 100 handlers run (streams the client reset included)
//     wait in a queue of at most 400; past it the connection ends with
//     GOAWAY ENHANCE_YOUR_CALM (rapid reset: the handlers started stay
//     at 100 whatever the client resets). A client that has reset more
//     than 200 streams before their answer, more than half of the
//     streams it opened, loses the connection the same way (streams
//     reset before a handler starts cost no handler, but still work).
//   - A header block (HEADERS and CONTINUATION frames) larger, encoded,
//     than twice the advertised SETTINGS_MAX_HEADER_LIST_SIZE ends the
//     connection (PROTOCOL_ERROR), and one not finished within
//     ReadHeaderTimeout too (ENHANCE_YOUR_CALM). A header list larger,
//     decoded, than MaxHeaderBytes (or with more than MaxHeaderLines
//     fields) is decoded to keep the HPACK state but not kept, and the
//     request is answered 431 through Refuse, audited like an HTTP/1
//     one; a content-length over MaxBodyBytes is 413 through Refuse.
//   - An HPACK error (a dynamic table size update above the 4096 bytes
//     of SETTINGS_HEADER_TABLE_SIZE, a string longer than the header list
//     bound) ends the connection with COMPRESSION_ERROR.
//   - DATA beyond a receive window (256 KiB per stream, 1 MiB for the
//     connection, given back as the handler reads), a WINDOW_UPDATE that
//     takes a send window above 2^31-1, and frames on an idle stream end
//     the stream or the connection as RFC 9113 says.
//   - More than 10,000 control frames (PING and SETTINGS
//     acknowledgements, resets, window updates) queued while the client
//     reads nothing close the connection; acknowledgements of SETTINGS
//     frames owed meanwhile are sent as one, so a SETTINGS flood queues
//     nothing.
//   - More than 100 streams reset with an error on one connection close
//     it (one report for the connection).
//   - A response that waits for a send window longer than WriteTimeout is
//     reset CANCEL, and a request body not received within ReadTimeout
//     of its stream's start too; a write that does not complete within
//     WriteTimeout closes the connection (slow readers).
//
// A connection without streams for IdleTimeout, at MaxConnectionAge, on
// Shutdown, after a response with Connection: close, or after the
// client's GOAWAY gets a GOAWAY (NO_ERROR): the streams already opened
// are served, later ones ignored, and the connection closes once they
// are done. A connection error's GOAWAY is followed by up to a second,
// or 64 KiB, of reading what the client still sends, so that the GOAWAY
// is read before the close. Responses over 32 KiB are sent as they are
// written, within the client's windows; handlers must not keep the
// request, its Header or the ResponseWriter after they return.
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
