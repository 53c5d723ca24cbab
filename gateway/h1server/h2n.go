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

func (h *h2n) settingsFrame(f *http2.SettingsFrame) http2.ErrCode {
	if f.IsAck() {
		return h2nGoOn
	}
	err := f.ForeachSetting(func(st http2.Setting) error {
		if err := st.Valid(); err != nil {
			return err
		}
		switch st.ID {
		case http2.SettingInitialWindowSize:
			delta := int64(st.Val) - h.peerWindow
			h.peerWindow = int64(st.Val)
			for _, s := range h.streams {
				s.sendWindow += delta
				if s.sendWindow > h2nMaxWindow {
					return http2.ConnectionError(http2.ErrCodeFlowControl)
				}
				s.wait.Broadcast()
			}
		case http2.SettingMaxFrameSize:
			h.peerFrame = int(st.Val)
		case http2.SettingHeaderTableSize:
			h.enc.SetMaxDynamicTableSizeLimit(st.Val)
		}
		return nil
	})
	var ce http2.ConnectionError
	if errors.As(err, &ce) {
		return http2.ErrCode(ce)
	}
	// Acknowledgements owed while the client does not read are sent as
	// one (as x/net does): a SETTINGS flood queues nothing.
	if !h.settingsAckQueued {
		h.settingsAckQueued = true
		_ = h.wfr.WriteSettingsAck()
	}
	return h2nGoOn
}

func (h *h2n) windowUpdate(f *http2.WindowUpdateFrame) http2.ErrCode {
	inc := int64(f.Increment)
	if f.StreamID == 0 {
		h.sendWindow += inc
		if h.sendWindow > h2nMaxWindow {
			return http2.ErrCodeFlowControl
		}
		for _, s := range h.streams {
			if s.waiting {
				s.wait.Broadcast()
			}
		}
		return h2nGoOn
	}
	if f.StreamID > h.maxStreamID {
		return http2.ErrCodeProtocol // an idle stream
	}
	s := h.streams[f.StreamID]
	if s == nil {
		return h2nGoOn // closed: a window update may cross the close
	}
	s.sendWindow += inc
	if s.sendWindow > h2nMaxWindow {
		h.resetStream(f.StreamID, http2.ErrCodeFlowControl)
		return h2nGoOn
	}
	s.wait.Broadcast()
	return h2nGoOn
}

func (h *h2n) rstStream(f *http2.RSTStreamFrame) http2.ErrCode {
	if f.StreamID > h.maxStreamID {
		return http2.ErrCodeProtocol // an idle stream
	}
	if s := h.streams[f.StreamID]; s != nil {
		s.abort(errClientReset)
		// Rapid reset: a stream reset before it is answered costs its
		// header block and a hand-off even when no handler runs (the
		// worker finds it reset). A client that resets most of its
		// streams, past h2nMaxClientResets, loses the connection.
		h.clientResets++
		if h.clientResets > h2nMaxClientResets && 2*h.clientResets > h.opened {
			return http2.ErrCodeEnhanceYourCalm
		}
	}
	return h2nGoOn
}

// resetStream resets stream id with code (mu held) and reports it; past
// maxRefusedStreams the connection is closed, reported once.
func (h *h2n) resetStream(id uint32, code http2.ErrCode) {
	if s := h.streams[id]; s != nil {
		s.abort(errStreamReset)
	}
	if code == http2.ErrCodeNo {
		_ = h.wfr.WriteRSTStream(id, code)
		return
	}
	h.resets++
	if h.resets > maxRefusedStreams {
		h.reportLocked("connection", "too_many_refused_streams")
		h.closeLocked()
		return
	}
	_ = h.wfr.WriteRSTStream(id, code)
	h.report("stream", errCodeName(code))
	h.controlQueued()
}

func (h *h2n) reportLocked(scope, what string) {
	if scope == "connection" {
		if h.reported {
			return
		}
		h.reported = true
	}
	h.report(scope, what)
}

func (h *h2n) report(scope, what string) {
	if h.refused != nil {
		h.refused("h2_" + scope + "_" + what)
	}
}

// connError ends the connection with a GOAWAY carrying code, reported,
// then reads and drops what the client sends for h2nLinger, so that the
// GOAWAY is read before the connection closes.
func (h *h2n) connError(code http2.ErrCode) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.goingAway = true
	_ = h.wfr.WriteGoAway(h.maxStreamID, code, nil)
	if code != http2.ErrCodeNo {
		h.reportLocked("connection", errCodeName(code))
	}
	for _, s := range h.streams {
		s.abort(errConnGone)
	}
	h.mu.Unlock()
	h.flushAsync()
	h.waitFlushed()
	h.linger()
}

// linger reads and drops input for h2nLinger, or until the client closes
// or has sent h2nLingerBytes (a flood is not read on).
func (h *h2n) linger() {
	_ = h.c.rwc.SetReadDeadline(time.Now().Add(h2nLinger))
	_, _ = io.CopyN(io.Discard, h.br, h2nLingerBytes)
}

// shutdown starts a graceful end: GOAWAY (NO_ERROR) with the last stream
// opened, then the connection closes once its streams are done.
// Shutdown, MaxConnectionAge, IdleTimeout, a handler's Connection: close
// and the client's own GOAWAY call it.
func (h *h2n) shutdown() {
	h.mu.Lock()
	if !h.goingAway && !h.closed {
		h.goingAway = true
		_ = h.wfr.WriteGoAway(h.maxStreamID, http2.ErrCodeNo, nil)
	}
	h.maybeDrain()
	h.mu.Unlock()
	h.flushAsync()
}

// maybeDrain (mu held) starts the linger of a connection going away once
// no stream is left: the reader times out after h2nLinger and ends.
func (h *h2n) maybeDrain() {
	if h.goingAway && h.active == 0 && !h.draining {
		h.draining = true
		_ = h.c.rwc.SetReadDeadline(time.Now().Add(h2nLinger))
	}
}

// startTimers arms the idle timeout and the connection's age.
func (h *h2n) startTimers() {
	if d := h.s.idleTimeout; d > 0 {
		var t *time.Timer
		t = time.AfterFunc(d, func() {
			h.mu.Lock()
			idleFor := time.Since(h.idleSince)
			busy := h.active > 0 || h.closed
			h.mu.Unlock()
			switch {
			case busy:
				t.Reset(d)
			case idleFor < d:
				t.Reset(d - idleFor)
			default:
				h.shutdown()
			}
		})
		h.timers = append(h.timers, t)
	}
	if !h.c.ends.IsZero() {
		h.timers = append(h.timers, time.AfterFunc(time.Until(h.c.ends), h.shutdown))
	}
}

// end closes the connection once the reader is done: it stops the
// timers, cancels the streams left, lets the writer finish, and waits for
// the handlers.
func (h *h2n) end() {
	for _, t := range h.timers {
		t.Stop()
	}
	h.waitFlushed()
	h.mu.Lock()
	h.closeLocked()
	for _, s := range h.queue {
		s.abort(errConnGone)
	}
	h.queue = nil
	h.mu.Unlock()
	close(h.work) // the reader is the only sender
	h.wg.Wait()
}

// closeLocked closes the connection (mu held): the raw connection, so
// that no TLS alert waits on a blocked writer; it wakes every waiter and
// stops the workers and the writer.
func (h *h2n) closeLocked() {
	if h.closed {
		return
	}
	h.closed = true
	h.c.raw.Close()
	for _, s := range h.streams {
		s.abort(errConnGone)
	}
	close(h.kick) // sent to under mu only, when not closed
	h.flushed.Broadcast()
}
