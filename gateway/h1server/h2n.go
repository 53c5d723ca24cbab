package h1server

import (
	"bufio"
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// HTTP2Server selects what serves the connections that negotiate h2.
type HTTP2Server string

const (
	// HTTP2XNet hands them to golang.org/x/net/http2's server (h2conn.go).
	HTTP2XNet HTTP2Server = "x-net"
	// HTTP2Native serves them with the server's own connection loop
	// (h2n*.go), which uses x/net only for frame and HPACK coding.
	HTTP2Native HTTP2Server = "native"
)

// The native HTTP/2 server's own limits, besides h2MaxConcurrentStreams
// and h2MaxReadFrameSize.
const (
	// h2nStreamWindow is the receive window of each stream
	// (SETTINGS_INITIAL_WINDOW_SIZE), h2nConnWindow the connection's: a
	// request body is buffered up to them until the handler reads it.
	h2nStreamWindow = 256 << 10
	h2nConnWindow   = 1 << 20
	// h2nMaxQueuedControl bounds the control frames (PING and SETTINGS
	// acknowledgements, resets, window updates) queued while the client
	// does not read: past it the connection is closed (PING floods).
	h2nMaxQueuedControl = 10000
	// h2nMaxQueuedStreams bounds the streams that wait for a handler
	// while h2MaxConcurrentStreams handlers run (streams the client reset
	// included): past it the connection ends with ENHANCE_YOUR_CALM
	// (rapid reset, CVE-2023-44487).
	h2nMaxQueuedStreams = 4 * h2MaxConcurrentStreams
	// h2nMaxClientResets is how many streams a client may reset before
	// their answer while they are more than half of its streams: past it
	// the connection ends with ENHANCE_YOUR_CALM (rapid reset, when the
	// streams are reset before any handler starts).
	h2nMaxClientResets = 2 * h2MaxConcurrentStreams
	// h2nResponseChunk is how much of a response body a stream holds
	// before it starts sending it: a response up to it leaves whole, in
	// the write that carries its HEADERS.
	h2nResponseChunk = 32 << 10
	// h2nHighWater is how many bytes of frames may wait for the
	// connection's writer before a handler that adds more waits.
	h2nHighWater = 64 << 10
	// h2nLinger is how long a connection that sent its last GOAWAY reads
	// (and drops) what the client still sends before it closes, so that
	// closing with unread data does not reset the connection before the
	// client has read the GOAWAY; at most h2nLingerBytes are read so.
	h2nLinger      = time.Second
	h2nLingerBytes = 64 << 10
	h2nMaxWindow   = 1<<31 - 1
)

// h2n is one HTTP/2 connection of the native server. Its reader (the
// connection's goroutine) reads and dispatches frames and never waits for
// a write; handlers run on the connection's workers; everything the
// connection writes is framed into one buffer, under mu, and written by
// whoever flushes first (see h2nwrite.go).
type h2n struct {
	c       *conn
	s       *Server
	br      *bufio.Reader
	fr      *http2.Framer // reads; the reader's alone
	dec     *hpack.Decoder
	hb      headerBlock // the header block being read; the reader's alone
	refused func(reason string)
	canon   map[string]string // canonical request header names; the reader's
	work    chan *h2stream
	kick    chan struct{} // wakes the writer goroutine
	wg      sync.WaitGroup
	timers  []*time.Timer

	mu sync.Mutex
	wstate
	streams     map[uint32]*h2stream
	maxStreamID uint32 // highest stream the client opened
	active      int    // streams open or half closed
	idleSince   time.Time
	sendWindow  int64 // the connection's, for DATA
	peerWindow  int64 // the client's SETTINGS_INITIAL_WINDOW_SIZE
	peerFrame   int   // the client's SETTINGS_MAX_FRAME_SIZE
	recvWindow  int64 // what the client may still send on the connection
	recvUnacked int64 // consumed, not yet given back by WINDOW_UPDATE

	free         []*h2stream // finished streams, for reuse
	running      int         // streams in a handler, or about to be
	idle         int         // workers waiting for a stream
	queue        []*h2stream
	goingAway    bool // GOAWAY sent: no new stream
	draining     bool // GOAWAY sent and no stream left: lingering
	closed       bool
	timersOff    bool // end stops the timers: their callbacks re-arm nothing
	resets       int  // streams refused with an error code
	opened       int  // streams opened by the client
	clientResets int  // streams the client reset before their answer
	reported     bool // the connection's refusal was reported
}

func (c *conn) newH2n() *h2n {
	h := &h2n{
		c: c, s: c.s,
		br:         bufio.NewReaderSize(c.rwc, 16<<10),
		canon:      make(map[string]string),
		work:       make(chan *h2stream),
		kick:       make(chan struct{}, 1),
		streams:    make(map[uint32]*h2stream),
		sendWindow: 65535, peerWindow: 65535, peerFrame: 16 << 10,
		recvWindow: 65535,
		idleSince:  time.Now(),
	}
	h.fr = http2.NewFramer(nil, h.br)
	h.fr.SetMaxReadFrameSize(h2MaxReadFrameSize)
	h.dec = hpack.NewDecoder(4096, h.hb.emit)
	h.hb.dec = h.dec
	h.dec.SetMaxStringLength(h.maxHeaderList())
	h.hb.max = h.maxHeaderList()
	h.initWrite()
	if refusal := c.s.cfg.ProtocolRefusal; refusal != nil {
		state := c.tls
		h.refused = func(reason string) { refusal(state, reason) }
	}
	return h
}

// maxHeaderList is the SETTINGS_MAX_HEADER_LIST_SIZE advertised: above
// MaxHeaderBytes, as for x/net (h2limits.go), so that a header list over
// MaxHeaderBytes is answered 431 through Refuse.
func (h *h2n) maxHeaderList() int { return h2HeaderListFactor * h.s.cfg.MaxHeaderBytes }

// serveNativeH2 serves a connection that negotiated h2 with the native
// server.
func (c *conn) serveNativeH2() {
	if !c.state.CompareAndSwap(stateNew, stateH2) || c.s.shuttingDown() {
		c.rwc.Close()
		return
	}
	h := c.newH2n()
	c.h2n.Store(h)
	if c.s.shuttingDown() { // Shutdown may have looked before the Store
		c.rwc.Close()
		return
	}
	h.serve()
}

func (h *h2n) serve() {
	defer h.end()
	s := h.s
	if d := s.headerTimeout; d > 0 {
		_ = h.c.rwc.SetReadDeadline(time.Now().Add(d))
	}
	var preface [len(http2.ClientPreface)]byte
	if _, err := io.ReadFull(h.br, preface[:]); err != nil || string(preface[:]) != http2.ClientPreface {
		return // not HTTP/2: nobody to answer
	}
	h.mu.Lock()
	_ = h.wfr.WriteSettings(
		http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: h2MaxConcurrentStreams},
		http2.Setting{ID: http2.SettingMaxFrameSize, Val: h2MaxReadFrameSize},
		http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: uint32(h.maxHeaderList())},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: h2nStreamWindow},
	)
	_ = h.wfr.WriteWindowUpdate(0, h2nConnWindow-65535)
	h.recvWindow = h2nConnWindow
	h.mu.Unlock()
	h.wg.Add(1)
	go h.writer()
	h.flushAsync()
	// Close and the connection's end cancel the requests in flight.
	stop := context.AfterFunc(h.c.ctx, func() {
		h.mu.Lock()
		for _, s := range h.streams {
			s.abort(errConnGone)
		}
		h.mu.Unlock()
	})
	defer stop()

	f, err := h.readFrame()
	if err != nil {
		h.readError(err)
		return
	}
	if sf, ok := f.(*http2.SettingsFrame); !ok || sf.IsAck() {
		h.connError(http2.ErrCodeProtocol) // the preface's SETTINGS first
		return
	}
	if !h.handle(f) {
		return
	}
	_ = h.c.rwc.SetReadDeadline(time.Time{})
	h.startTimers()
	for {
		f, err := h.readFrame()
		if err != nil {
			if !h.readError(err) {
				return
			}
			continue
		}
		if !h.handle(f) {
			return
		}
	}
}

// readFrame reads a frame. A HEADERS frame the Framer refuses as a stream
// error (padding longer than the frame) is made a connection error: its
// header block was not decoded, so the HPACK table would no longer follow
// the client's (RFC 9113 makes it a connection error too).
func (h *h2n) readFrame() (http2.Frame, error) {
	fh, err := h.fr.ReadFrameHeader()
	if err != nil {
		return nil, err
	}
	f, err := h.fr.ReadFrameForHeader(fh)
	var se http2.StreamError
	if err != nil && fh.Type == http2.FrameHeaders && errors.As(err, &se) {
		return nil, http2.ConnectionError(se.Code)
	}
	return f, err
}

// readError handles an error of readFrame; true when reading goes on.
func (h *h2n) readError(err error) bool {
	var se http2.StreamError
	var ce http2.ConnectionError
	switch {
	case errors.As(err, &se):
		h.mu.Lock()
		h.resetStream(se.StreamID, se.Code)
		h.mu.Unlock()
		h.flushAsync()
		return !h.isClosed()
	case errors.As(err, &ce):
		h.connError(http2.ErrCode(ce))
	case errors.Is(err, http2.ErrFrameTooLarge):
		h.connError(http2.ErrCodeFrameSize)
	case isTimeout(err) && h.hb.active:
		// A header block not finished within ReadHeaderTimeout.
		h.connError(http2.ErrCodeEnhanceYourCalm)
	}
	return false
}

func (h *h2n) isClosed() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.closed
}

// handle processes one frame; false when the connection is done.
func (h *h2n) handle(f http2.Frame) bool {
	switch f := f.(type) {
	case *http2.HeadersFrame:
		return h.headersFrame(f)
	case *http2.ContinuationFrame:
		return h.continuationFrame(f)
	case *http2.DataFrame:
		return h.locked(func() http2.ErrCode { return h.dataFrame(f) })
	case *http2.SettingsFrame:
		return h.locked(func() http2.ErrCode { return h.settingsFrame(f) })
	case *http2.PingFrame:
		if f.IsAck() {
			return true
		}
		return h.locked(func() http2.ErrCode {
			_ = h.wfr.WritePing(true, f.Data)
			return h.controlQueued()
		})
	case *http2.WindowUpdateFrame:
		return h.locked(func() http2.ErrCode { return h.windowUpdate(f) })
	case *http2.RSTStreamFrame:
		return h.locked(func() http2.ErrCode { return h.rstStream(f) })
	case *http2.PriorityFrame:
		if f.StreamDep == f.StreamID {
			return h.locked(func() http2.ErrCode { h.resetStream(f.StreamID, http2.ErrCodeProtocol); return 0 })
		}
	case *http2.GoAwayFrame:
		h.shutdown() // the client goes: finish its streams, then close
	case *http2.PushPromiseFrame:
		h.connError(http2.ErrCodeProtocol) // clients do not push
		return false
	}
	return true // PRIORITY, unknown extension frames: ignored
}

// locked runs fn under mu, then flushes what it queued (on the writer);
// fn returns a connection error code, or 0.
func (h *h2n) locked(fn func() http2.ErrCode) bool {
	h.mu.Lock()
	code := fn()
	closed := h.closed
	h.mu.Unlock()
	if code != 0 {
		h.connError(code)
		return false
	}
	h.flushAsync()
	return !closed
}

// h2nGoOn is what the handlers of frames return to go on: no connection
// error (a connection error is never NO_ERROR).
const h2nGoOn http2.ErrCode = 0
