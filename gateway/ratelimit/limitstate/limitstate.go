// Package limitstate is what a gateway tells about where it counts the
// agencies' rate limits and quotas, at GET /ratelimitz: the contract
// between the gateway, which serves it, and the operator, which reads it
// for the RateLimitShared condition. It is a package of its own so that
// the operator reads it without linking the gateway's Redis client.
package limitstate

import (
	"encoding/json"
	"net/http"
	"time"
)

// Stores.
const (
	// StoreLocal: each replica counts alone.
	StoreLocal = "local"
	// StoreRedis: the replicas share one count in Redis.
	StoreRedis = "redis"
)

// State is one gateway process's answer at GET /ratelimitz.
type State struct {
	// Store is StoreLocal or StoreRedis.
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

// Handler serves state() as JSON. Always 200: falling back to the share is
// how a replica keeps serving, not a failure of it.
func Handler(state func() State) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(state())
	})
}
