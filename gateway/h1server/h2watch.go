package h1server

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"strings"

	"golang.org/x/net/http2"
)

// maxRefusedStreams bounds the streams golang.org/x/net/http2 may reset
// with an error on one connection: past it the connection is closed. A
// client that makes the server refuse streams in a loop (malformed
// headers, streams over MAX_CONCURRENT_STREAMS, windows overflowed) gets a
// bounded number of refusals, and of audit records, per handshake.
const maxRefusedStreams = 100

// errTooManyRefusedStreams ends a connection past maxRefusedStreams.
var errTooManyRefusedStreams = errors.New("h1server: too many HTTP/2 streams refused on one connection")

// h2Watch is an HTTP/2 connection as golang.org/x/net/http2 sees it: it
// reads the frame headers of what the server writes, before writing them,
// and reports each stream the server resets with an error code
// (RST_STREAM other than NO_ERROR) and each connection it ends with one
// (GOAWAY other than NO_ERROR) to refused. x/net has no hook for either;
// its frames are what it decided, whichever of its checks decided it. The
// frames are read before they are written, so a refusal is reported even
// when the client does not read it.
//
// x/net writes from one goroutine at a time, so Write needs no lock.
type h2Watch struct {
	*tls.Conn // ConnectionState too: x/net reads the TLS state through it
	refused   func(reason string)

	head     [9]byte // the frame header being read
	headLen  int
	typ      http2.FrameType
	payload  [8]byte // the start of a RST_STREAM or GOAWAY payload
	want     int     // bytes of payload to keep (4 or 8), 0 for others
	kept     int
	skip     uint32 // payload bytes left in the current frame
	resets   int    // streams refused so far
	goneAway bool   // a GOAWAY with an error was reported
}

func newH2Watch(tc *tls.Conn, refused func(reason string)) *h2Watch {
	return &h2Watch{Conn: tc, refused: refused}
}

func (w *h2Watch) Write(p []byte) (int, error) {
	if w.scan(p) {
		w.Conn.Close()
		return 0, errTooManyRefusedStreams
	}
	return w.Conn.Write(p)
}

// scan follows the frames in p, a continuation of what was written
// before; it reports whether the connection is to be closed.
func (w *h2Watch) scan(p []byte) (closeConn bool) {
	for len(p) > 0 {
		if w.headLen < len(w.head) {
			n := copy(w.head[w.headLen:], p)
			w.headLen += n
			p = p[n:]
			if w.headLen < len(w.head) {
				return false
			}
			w.skip = uint32(w.head[0])<<16 | uint32(w.head[1])<<8 | uint32(w.head[2])
			w.typ = http2.FrameType(w.head[3])
			w.kept, w.want = 0, 0
			switch w.typ {
			case http2.FrameRSTStream:
				w.want = 4
			case http2.FrameGoAway:
				w.want = 8
			}
			w.want = min(w.want, int(w.skip))
			if w.skip == 0 && w.frameDone() {
				return true
			}
			continue
		}
		n := min(len(p), int(w.skip))
		if k := min(n, w.want-w.kept); k > 0 {
			copy(w.payload[w.kept:], p[:k])
			w.kept += k
		}
		w.skip -= uint32(n)
		p = p[n:]
		if w.skip == 0 && w.frameDone() {
			return true
		}
	}
	return false
}

// frameDone ends the current frame: it reports a refusal in it, and
// whether the connection is to be closed.
func (w *h2Watch) frameDone() (closeConn bool) {
	w.headLen = 0
	switch {
	case w.typ == http2.FrameRSTStream && w.kept == 4:
		code := http2.ErrCode(binary.BigEndian.Uint32(w.payload[:4]))
		if code == http2.ErrCodeNo {
			return false // a complete answer before the whole request (RFC 9113, 8.1)
		}
		w.resets++
		if w.resets > maxRefusedStreams {
			w.report("connection", "too_many_refused_streams")
			return true
		}
		w.report("stream", errCodeName(code))
	case w.typ == http2.FrameGoAway && w.kept == 8:
		code := http2.ErrCode(binary.BigEndian.Uint32(w.payload[4:8]))
		if code != http2.ErrCodeNo {
			w.report("connection", errCodeName(code))
		}
	}
	return false
}

func (w *h2Watch) report(scope, what string) {
	if scope == "connection" {
		if w.goneAway {
			return // one record per connection
		}
		w.goneAway = true
	}
	w.refused("h2_" + scope + "_" + what)
}

// errCodeName is an HTTP/2 error code's name in lower case
// ("refused_stream"), or its number for an unknown code.
func errCodeName(c http2.ErrCode) string {
	return strings.ReplaceAll(strings.ToLower(c.String()), " ", "_")
}
