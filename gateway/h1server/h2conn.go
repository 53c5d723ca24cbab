package h1server

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"net"
	"strings"
	"sync"
	"time"

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

// h2Conn is an HTTP/2 connection as golang.org/x/net/http2 sees it. It
// reads the frame headers of what the server writes, before writing them,
// for two ends: it writes a response's HEADERS frame together with the
// DATA that follows (see corkDelay), and it reports each stream the server resets with an error code
// (RST_STREAM other than NO_ERROR) and each connection it ends with one
// (GOAWAY other than NO_ERROR) to refused (when set). x/net has no hook for either;
// its frames are what it decided, whichever of its checks decided it. The
// frames are read before they are written, so a refusal is reported even
// when the client does not read it.
//
// x/net writes from one goroutine at a time; the lock orders its writes
// with the timer's, which writes a held HEADERS frame.
type h2Conn struct {
	tlsConn // ConnectionState too: x/net reads the TLS state through it
	refused func(reason string)
	// writeTimeout bounds each write: a client that takes nothing of
	// what it is sent for that long loses the connection (slow read).
	// The connection sets it rather than x/net (its WriteByteTimeout),
	// so that a held HEADERS frame, written by the timer, is bounded
	// too.
	writeTimeout time.Duration

	head     [9]byte // the frame header being read
	headLen  int
	typ      http2.FrameType
	payload  [8]byte // the start of a RST_STREAM or GOAWAY payload
	want     int     // bytes of payload to keep (4 or 8), 0 for others
	kept     int
	skip     uint32 // payload bytes left in the current frame
	resets   int    // streams refused so far
	goneAway bool   // a GOAWAY with an error was reported

	// The last complete frame's type and flags (see cork).
	lastTyp   http2.FrameType
	lastFlags http2.Flags

	// A response's HEADERS frame held back so that its DATA goes out in
	// the same write (see Write); mu guards it against the timer.
	mu      sync.Mutex
	held    []byte
	timer   *time.Timer
	heldErr error
}

// corkDelay bounds how long a response's HEADERS frame waits for its DATA
// before it is written alone: x/net writes the HEADERS frame, flushes
// (the handler waits for that frame before it sends its DATA), then
// writes the DATA and flushes again, two writes and two TLS records per
// response. Holding the HEADERS until the next write, bounded by
// corkDelay for a response whose DATA cannot follow at once (a closed
// flow-control window), makes that one.
const corkDelay = 500 * time.Microsecond

// tlsConn is a *tls.Conn (an interface, for the tests).
type tlsConn interface {
	net.Conn
	ConnectionState() tls.ConnectionState
}

func newH2Conn(tc tlsConn, refused func(reason string), writeTimeout time.Duration) *h2Conn {
	return &h2Conn{tlsConn: tc, refused: refused, writeTimeout: writeTimeout}
}

func (w *h2Conn) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.scan(p) {
		w.tlsConn.Close()
		return 0, errTooManyRefusedStreams
	}
	if err := w.heldErr; err != nil {
		return 0, err
	}
	if len(w.held) == 0 && w.headLen == 0 && w.lastTyp == http2.FrameHeaders &&
		w.lastFlags&(http2.FlagHeadersEndStream|http2.FlagHeadersEndHeaders) == http2.FlagHeadersEndHeaders {
		// A response's HEADERS, its DATA to come: hold it.
		w.held = append(w.held[:0], p...)
		if w.timer == nil {
			w.timer = time.AfterFunc(corkDelay, w.flushHeld)
		} else {
			w.timer.Reset(corkDelay)
		}
		return len(p), nil
	}
	if len(w.held) > 0 {
		w.timer.Stop()
		w.held = append(w.held, p...)
		_, err := w.write(w.held)
		w.held = w.held[:0]
		if err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return w.write(p)
}

// write writes p under the write timeout; w.mu is held.
func (w *h2Conn) write(p []byte) (int, error) {
	if w.writeTimeout > 0 {
		// Not cleared after: every write sets its own. A TLS connection
		// whose write timed out is broken, so there is no retrying.
		_ = w.tlsConn.SetWriteDeadline(time.Now().Add(w.writeTimeout))
	}
	return w.tlsConn.Write(p)
}

// flushHeld writes a HEADERS frame held for corkDelay.
func (w *h2Conn) flushHeld() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.held) == 0 {
		return
	}
	if _, err := w.write(w.held); err != nil {
		w.heldErr = err
	}
	w.held = w.held[:0]
}

// scan follows the frames in p, a continuation of what was written
// before; it reports whether the connection is to be closed.
func (w *h2Conn) scan(p []byte) (closeConn bool) {
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
func (w *h2Conn) frameDone() (closeConn bool) {
	w.headLen = 0
	w.lastTyp, w.lastFlags = w.typ, http2.Flags(w.head[4])
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

func (w *h2Conn) report(scope, what string) {
	if scope == "connection" {
		if w.goneAway {
			return // one record per connection
		}
		w.goneAway = true
	}
	if w.refused != nil {
		w.refused("h2_" + scope + "_" + what)
	}
}

// errCodeName is an HTTP/2 error code's name in lower case
// ("refused_stream"), or its number for an unknown code.
func errCodeName(c http2.ErrCode) string {
	return strings.ReplaceAll(strings.ToLower(c.String()), " ", "_")
}
