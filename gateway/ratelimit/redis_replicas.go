package ratelimit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/redis/go-redis/v9"
)

// How a replica knows how many share the limits: while the server answers,
// every replica says it is live every HeartbeatInterval (in the batch the
// dispatcher sends anyway, or alone when idle) and learns how many said so
// within replicaTTLBeats intervals. When the server goes away, the share
// divides by the last count seen, the replicas that were serving then,
// rather than by spec.replicas: a rollout's surge, a scaled-down or a
// crashed pod changes what each live replica may admit. Until a replica
// has seen a count it divides by RedisConfig.Replicas.

// replicaTTLBeats is how many heartbeats a replica may miss before the
// others stop counting it: one late heartbeat on a loaded machine does not
// shrink the count.
const replicaTTLBeats = 3

// newReplicaID names this process in the set of live replicas.
func newReplicaID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

func (r *Redis) replicaTTL() time.Duration {
	return replicaTTLBeats * r.cfg.HeartbeatInterval
}

// heartbeat queues the heartbeat script in pipe.
func (r *Redis) heartbeat(ctx context.Context, pipe redis.Pipeliner) *redis.Cmd {
	return pipe.EvalSha(ctx, r.beat.Hash(), []string{r.replicasKey}, r.id, r.replicaTTL().Milliseconds())
}

// noteReplicas keeps the count a heartbeat returned. A failed heartbeat
// keeps the last count: it is the one the share needs if the server is
// going away.
func (r *Redis) noteReplicas(cmd *redis.Cmd) {
	if n, err := cmd.Int64(); err == nil && n > 0 {
		r.liveReplicas.Store(n)
	}
}

// replicas is what the share divides by: the live replicas last counted
// in Redis (this one included, so at least 1), or RedisConfig.Replicas
// when none was ever counted.
func (r *Redis) replicas() int {
	if n := r.liveReplicas.Load(); n > 0 {
		return int(n)
	}
	return r.cfg.Replicas
}

// leave removes this replica from the live set when it stops, so that the
// others count one fewer at once rather than after the TTL (a rollout
// replaces every pod). Best effort: the TTL does it otherwise.
func (r *Redis) leave() {
	if !r.up.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.Timeout)
	defer cancel()
	_ = r.client.ZRem(ctx, r.replicasKey, r.id).Err()
}
