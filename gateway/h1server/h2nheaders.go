package h1server

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// headerBlock is the request header block being read: a HEADERS frame and
// its CONTINUATION frames, decoded field by field as they arrive (the
// HPACK state must follow every block, even one that is refused). The
// x/net Framer checks that nothing comes between the frames of a block;
// the bounds are the server's: the encoded bytes (2 × the header list
// bound: a CONTINUATION flood ends the connection), the decoded size
// (over it the request is answered 431, audited) and, when the block
// spans frames, ReadHeaderTimeout.
type headerBlock struct {
	dec         *hpack.Decoder
	active      bool // a block is open (no END_HEADERS yet)
	timed       bool // its read deadline is set
	streamID    uint32
	endStream   bool
	selfDep     bool // a priority on the stream itself
	encoded     int
	max         int // decoded size bound (the advertised list size)
	size        int // decoded size, as HPACK counts it
	truncated   bool
	malformed   bool
	sawRegular  bool
	pseudo      int // pseudo-header fields seen
	method      string
	scheme      string
	authority   string
	path        string
	host        string
	length      string // content-length, "" when absent
	lengthFound bool
	fields      []hpack.HeaderField // regular fields, the reader's scratch
}

func (b *headerBlock) start(f *http2.HeadersFrame) {
	*b = headerBlock{dec: b.dec, max: b.max, fields: b.fields[:0], active: true, streamID: f.StreamID,
		endStream: f.StreamEnded(), selfDep: f.HasPriority() && f.Priority.StreamDep == f.StreamID}
	b.dec.SetEmitEnabled(true)
}

// emit takes one decoded field. Malformed requests (RFC 9113, 8.2 and
// 8.3) are marked, to be reset with PROTOCOL_ERROR once the block ends.
func (b *headerBlock) emit(f hpack.HeaderField) {
	b.size += len(f.Name) + len(f.Value) + hpackFieldOverhead
	if b.size > b.max {
		b.truncated = true
		b.dec.SetEmitEnabled(false) // the rest is decoded, not kept
		return
	}
	if b.malformed {
		return
	}
	if strings.HasPrefix(f.Name, ":") {
		var dst *string
		switch f.Name {
		case ":method":
			dst = &b.method
		case ":scheme":
			dst = &b.scheme
		case ":authority":
			dst = &b.authority
		case ":path":
			dst = &b.path
		}
		if b.sawRegular || dst == nil || *dst != "" || f.Value == "" {
			b.malformed = true // after a regular field, unknown, repeated or empty
			return
		}
		*dst = f.Value
		b.pseudo++
		return
	}
	b.sawRegular = true
	if !validLowerName(f.Name) || !httpguts.ValidHeaderFieldValue(f.Value) {
		b.malformed = true
		return
	}
	switch f.Name {
	case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
		b.malformed = true // connection-specific (RFC 9113, 8.2.2)
		return
	case "te":
		if f.Value != "trailers" {
			b.malformed = true
			return
		}
	case "content-length":
		if b.lengthFound && f.Value != b.length {
			b.malformed = true
			return
		}
		b.length, b.lengthFound = f.Value, true
	case "host":
		b.host = f.Value
	}
	b.fields = append(b.fields, f)
}

// validLowerName: a token without upper-case letters (RFC 9113, 8.2.1).
func validLowerName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isToken(c) || 'A' <= c && c <= 'Z' {
			return false
		}
	}
	return true
}

func (h *h2n) headersFrame(f *http2.HeadersFrame) bool {
	h.hb.start(f)
	return h.headerFragment(f.HeaderBlockFragment(), f.HeadersEnded())
}

func (h *h2n) continuationFrame(f *http2.ContinuationFrame) bool {
	if !h.hb.active { // the Framer orders the frames; kept as a safeguard
		h.connError(http2.ErrCodeProtocol)
		return false
	}
	return h.headerFragment(f.HeaderBlockFragment(), f.HeadersEnded())
}

func (h *h2n) headerFragment(frag []byte, end bool) bool {
	b := &h.hb
	b.encoded += len(frag)
	if b.encoded > 2*b.max {
		h.connError(http2.ErrCodeProtocol) // a CONTINUATION flood
		return false
	}
	if _, err := h.dec.Write(frag); err != nil {
		h.connError(http2.ErrCodeCompression)
		return false
	}
	if !end {
		if !b.timed && h.s.headerTimeout > 0 {
			b.timed = true
			h.setHeaderDeadline(time.Now().Add(h.s.headerTimeout))
		}
		return true
	}
	b.active = false
	if b.timed {
		h.setHeaderDeadline(time.Time{})
	}
	if err := h.dec.Close(); err != nil {
		h.connError(http2.ErrCodeCompression)
		return false
	}
	return h.locked(h.openStream)
}

// setHeaderDeadline bounds a header block in time, unless the connection
// is draining (its own deadline then holds).
func (h *h2n) setHeaderDeadline(t time.Time) {
	h.mu.Lock()
	if !h.draining {
		_ = h.c.rwc.SetReadDeadline(t)
	}
	h.mu.Unlock()
}

// openStream acts on a complete header block (mu held): a new stream, a
// request's trailers, or a stream or connection error.
func (h *h2n) openStream() http2.ErrCode {
	b := &h.hb
	id := b.streamID
	if id%2 == 0 {
		return http2.ErrCodeProtocol // clients open odd streams
	}
	if s := h.streams[id]; s != nil { // trailers
		switch {
		case s.remoteClosed:
			h.resetStream(id, http2.ErrCodeStreamClosed)
		case !b.endStream || b.pseudo > 0 || b.malformed || b.truncated:
			h.resetStream(id, http2.ErrCodeProtocol)
		default:
			h.endRemote(s) // the trailer fields are not kept
		}
		return h2nGoOn
	}
	if id <= h.maxStreamID {
		return http2.ErrCodeProtocol // a closed stream, or an id reused
	}
	h.maxStreamID = id
	switch {
	case h.goingAway:
		return h2nGoOn // after GOAWAY: ignored (RFC 9113, 6.8)
	case b.selfDep || b.malformed:
		h.resetStream(id, http2.ErrCodeProtocol)
		return h2nGoOn
	case h.active >= h2MaxConcurrentStreams:
		h.resetStream(id, http2.ErrCodeRefusedStream)
		return h2nGoOn
	}
	s := h.newStream(b)
	if s == nil {
		h.resetStream(id, http2.ErrCodeProtocol)
		return h2nGoOn
	}
	h.streams[id] = s
	h.active++
	h.opened++
	return h.dispatch(s)
}

// newStream makes the stream and request of a complete header block; nil
// when the request is malformed. A request over the header limits, or
// announcing a body over MaxBodyBytes, gets a stream that Refuse answers.
func (h *h2n) newStream(b *headerBlock) *h2stream {
	s := h.takeStream()
	s.id, s.sendWindow, s.recvWindow, s.declared, s.remoteClosed = b.streamID, h.peerWindow, h2nStreamWindow, -1, b.endStream
	if !b.endStream {
		s.start = time.Now() // bounds the body's reading (ReadTimeout); a request without one needs no clock
	}
	if b.truncated {
		s.refuse = http.StatusRequestHeaderFieldsTooLarge
		return s
	}
	if b.method == "" || b.scheme == "" || b.path == "" || b.path[0] != '/' {
		return nil // CONNECT, OPTIONS * and absolute forms are not served either
	}
	if b.lengthFound {
		n, ok := parseLength(b.length)
		if !ok || b.endStream && n > 0 {
			return nil
		}
		s.declared = n
	}
	plain, valid := plainTarget(b.path)
	var target head
	if !valid || !parseOriginForm(b.path, plain, &target) {
		return nil
	}
	s.url = url.URL{Path: target.path, RawPath: target.rawPath, RawQuery: target.rawQuery, ForceQuery: target.forceQuery}
	hdr := s.hdr
	if len(b.fields) > cap(s.vals) {
		s.vals = make([]string, len(b.fields))
	}
	vals := s.vals[:len(b.fields)]
	for i, f := range b.fields {
		k := h.canonical(f.Name)
		vals[i] = f.Value
		if vs, ok := hdr[k]; ok {
			hdr[k] = append(vs, f.Value)
			continue
		}
		hdr[k] = vals[i : i+1 : i+1]
	}
	host := b.authority
	if host == "" {
		host = b.host
	}
	var body io.ReadCloser = http.NoBody
	length := int64(0)
	if !b.endStream {
		body, length = &s.body, s.declared
	}
	s.req = http.Request{
		Method: b.method, URL: &s.url, Proto: "HTTP/2.0", ProtoMajor: 2,
		Header: hdr, Body: body, ContentLength: length, Host: host,
		RemoteAddr: h.c.remote, RequestURI: b.path, TLS: h.c.tls,
	}
	s.w.isHead = b.method == http.MethodHead
	switch {
	case b.size > h.s.cfg.MaxHeaderBytes || len(b.fields) > h.s.cfg.MaxHeaderLines:
		s.refuse = http.StatusRequestHeaderFieldsTooLarge
	case s.declared > h.s.cfg.MaxBodyBytes:
		s.refuse = http.StatusRequestEntityTooLarge
	}
	return s
}

// canonical is a request header name in its canonical form, cached.
func (h *h2n) canonical(name string) string {
	if v, ok := h.canon[name]; ok {
		return v
	}
	v := http.CanonicalHeaderKey(name)
	if len(h.canon) < 64 {
		h.canon[name] = v
	}
	return v
}
