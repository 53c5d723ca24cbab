package h1server

import (
	"io"
	"time"

	"golang.org/x/net/http2"
)

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
			// The timer is armed again under mu: end sets timersOff under
			// mu and then stops the timers, so it either stops a timer
			// armed here or is seen here first. Re-armed after releasing
			// mu, the timer could start again after end had stopped it.
			h.mu.Lock()
			idleFor := time.Since(h.idleSince)
			switch {
			case h.timersOff:
				// end has stopped the timer (or is about to): armed
				// again, it would keep the ended connection for ever.
				h.mu.Unlock()
			case h.active > 0:
				t.Reset(d)
				h.mu.Unlock()
			case idleFor < d:
				t.Reset(d - idleFor)
				h.mu.Unlock()
			default:
				h.mu.Unlock()
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
	h.mu.Lock()
	h.timersOff = true // a callback that runs from now on re-arms nothing
	h.mu.Unlock()
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
