package h1server

import "net/http"

// h2HeaderListFactor raises golang.org/x/net/http2's own header list bound
// above MaxHeaderBytes. x/net answers a header list over its bound with a
// 431 of its own handler, which never reaches Refuse and so is never
// audited; above our bound and below x/net's, the request reaches
// serveH2Request, which refuses it through Refuse. x/net advertises its
// bound in SETTINGS_MAX_HEADER_LIST_SIZE, so a conforming client never
// sends more; only a client that ignores it can still get x/net's 431
// (or, for one value longer than the bound, lose the connection to a
// COMPRESSION_ERROR, with no answer at all). The price is that x/net
// holds up to this many times MaxHeaderBytes of a refused request's
// header fields while it is refused. x/net also answers 400 itself, with
// no hook, to a request carrying a connection-specific header field
// (Connection, Keep-Alive, Proxy-Connection, Transfer-Encoding, Upgrade,
// or TE other than "trailers"); RFC 9113 makes such a request malformed,
// and it never reaches the handler.
const h2HeaderListFactor = 4

// hpackFieldOverhead is what RFC 7541 (4.1) adds to each field's name and
// value when it counts a header list's size, as x/net does.
const hpackFieldOverhead = 32

// serveH2Request enforces MaxHeaderBytes and MaxHeaderLines on an HTTP/2
// request, as the HTTP/1 parser does, answering 431 through Refuse, then
// hands the request to the handler.
func (s *Server) serveH2Request(w http.ResponseWriter, r *http.Request) {
	size, fields := h2HeaderListSize(r)
	if size > s.cfg.MaxHeaderBytes || fields > s.cfg.MaxHeaderLines {
		s.log.Debug("HTTP/2 request refused", "status", http.StatusRequestHeaderFieldsTooLarge, "headerListBytes", size, "fields", fields)
		s.refuse(w, r.TLS, http.StatusRequestHeaderFieldsTooLarge)
		return
	}
	s.cfg.Handler.ServeHTTP(w, r)
}

// h2HeaderListSize is the size of r's header list as HPACK counts it
// (pseudo-header fields included), and the number of its regular fields.
func h2HeaderListSize(r *http.Request) (size, fields int) {
	size = len(":method") + len(r.Method) + len(":scheme") + len("https") +
		len(":authority") + len(r.Host) + len(":path") + len(r.RequestURI) + 4*hpackFieldOverhead
	for k, vs := range r.Header {
		for _, v := range vs {
			size += len(k) + len(v) + hpackFieldOverhead
		}
		fields += len(vs)
	}
	return size, fields
}
