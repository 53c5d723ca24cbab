package h1server

import (
	"errors"

	"golang.org/x/net/http2"
)

// settingsFrame applies the client's settings (mu held): its initial
// window to every stream's send window, its frame size to what the
// connection writes.
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
			// Nothing to follow: the encoder sets its dynamic table's
			// size to 0 in its first block (h2nhpack.go).
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

// windowUpdate opens a send window (mu held) and wakes its writers.
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

// rstStream ends a stream the client reset (mu held).
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
