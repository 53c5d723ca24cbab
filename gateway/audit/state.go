package audit

import (
	"encoding/json"
	"net/http"
)

// State is what a gateway tells about its audit trail at /auditz, for the
// operator's AuditReady condition and for people on call.
type State struct {
	// Sink is "stdout", "file" or "postgres".
	Sink string `json:"sink"`
	// Healthy is false while records cannot be written: requests are then
	// refused with 503 audit_unavailable.
	Healthy bool `json:"healthy"`
	// Stream is the name of this process's stream, LastSeq the seq of its
	// last record known to be in the sink: a verifier that finds fewer
	// records has found a truncated log.
	Stream  string `json:"stream"`
	LastSeq uint64 `json:"lastSeq"`
	// WriteErrors counts failed writes since the process started.
	WriteErrors uint64 `json:"writeErrors"`
	// LastError is the last write's error while the sink fails, empty
	// when it works. It never holds a record's content or a password.
	LastError string `json:"lastError,omitempty"`
}

// State returns the logger's state.
func (l *Logger) State() State {
	s := State{
		Sink:        l.sink.Name(),
		Healthy:     l.Healthy(),
		Stream:      l.stream,
		LastSeq:     l.lastSeq.Load(),
		WriteErrors: l.writeErrors.Load(),
	}
	if !s.Healthy {
		l.mu.Lock()
		s.LastError = l.lastErr
		l.mu.Unlock()
		if s.LastError == "" && l.stalled() {
			s.LastError = errStalled.Error()
		}
	}
	return s
}

// StateHandler serves the logger's State as JSON (GET /auditz): 200 while
// it is healthy, 503 while it is not.
func StateHandler(l *Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s := l.State()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if !s.Healthy {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(s)
	})
}
