package ratelimit

import (
	"net/http"

	"github.com/popconnect/popconnect/gateway/ratelimit/limitstate"
)

// State returns the store's state, for GET /ratelimitz.
func (r *Redis) State() limitstate.State {
	s := limitstate.State{Store: limitstate.StoreRedis, Shared: r.up.Load(),
		Replicas: r.replicas(), LiveReplicas: int(r.liveReplicas.Load())}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.downSince.IsZero() {
		since := r.downSince.UTC()
		s.FallbackSince, s.LastError = &since, r.lastErr
	}
	return s
}

// StateHandler serves GET /ratelimitz; a nil store is the local one.
func StateHandler(r *Redis) http.Handler {
	if r == nil {
		return limitstate.Handler(func() limitstate.State { return limitstate.State{Store: limitstate.StoreLocal} })
	}
	return limitstate.Handler(r.State)
}
