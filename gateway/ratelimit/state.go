package ratelimit

import (
	"encoding/json"
	"net/http"
	"time"
)

// State is what a gateway tells about where it counts the agencies' limits,
// at GET /ratelimitz: for the operator's RateLimitShared condition and for
// people on call.
type State struct {
	// Store is "local" (each replica counts alone) or "redis".
	Store string `json:"store"`
	// Shared is true while the replicas share one count in Redis; false
	// while this replica enforces its share alone (or counts alone).
	Shared bool `json:"shared"`
	// FallbackSince is when this replica fell back to its share.
	FallbackSince *time.Time `json:"fallbackSince,omitempty"`
	// LastError is why, and while it lasts the probe's last error. It
	// never holds a password.
	LastError string `json:"lastError,omitempty"`
	// Replicas is what the share divides the limits by (the live
	// replicas last counted in Redis, else --ratelimit-replicas);
	// LiveReplicas the live ones last counted, 0 before the first count.
	Replicas     int `json:"replicas,omitempty"`
	LiveReplicas int `json:"liveReplicas,omitempty"`
}

// State returns the store's state.
func (r *Redis) State() State {
	s := State{Store: "redis", Shared: r.up.Load(), Replicas: r.replicas(), LiveReplicas: int(r.liveReplicas.Load())}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.downSince.IsZero() {
		since := r.downSince.UTC()
		s.FallbackSince, s.LastError = &since, r.lastErr
	}
	return s
}

// StateHandler serves the store's State as JSON (GET /ratelimitz); a nil
// store is the local one. Always 200: falling back to the share is how the
// replica keeps serving, not a failure of it.
func StateHandler(r *Redis) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s := State{Store: "local"}
		if r != nil {
			s = r.State()
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(s)
	})
}
