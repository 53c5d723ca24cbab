package controllers

import (
	"context"
	"fmt"
	"sync"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/event"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/internal/render"
)

// shardFailures carries, from the shard reconciler to the gateway
// reconciler, the shards that could not be written: the gateway's
// PolicyReady is False while one of its shards fails, which the shards
// themselves cannot say (a shard whose name someone else's ConfigMap holds
// is never written). It is state of the running manager only: after a
// restart the shard reconciles run again and fail again.
type shardFailures struct {
	mu     sync.Mutex
	failed map[shardKey]string
	// changed wakes the gateway reconciler when a gateway's failures change.
	changed chan event.TypedGenericEvent[*popv1.PopulationGateway]
}

func newShardFailures() *shardFailures {
	return &shardFailures{
		failed:  map[shardKey]string{},
		changed: make(chan event.TypedGenericEvent[*popv1.PopulationGateway], 64),
	}
}

// record sets (err non-nil) or clears the failure of a shard, and wakes
// the gateway's reconciler when that changes what it reports.
func (f *shardFailures) record(ctx context.Context, key shardKey, err error) {
	if f == nil {
		return
	}
	f.mu.Lock()
	before, had := f.failed[key]
	if err == nil {
		delete(f.failed, key)
	} else {
		f.failed[key] = err.Error()
	}
	after, has := f.failed[key]
	f.mu.Unlock()
	if had == has && before == after {
		return
	}
	gw := &popv1.PopulationGateway{}
	gw.Namespace, gw.Name = key.Gateway.Namespace, key.Gateway.Name
	select {
	case f.changed <- event.TypedGenericEvent[*popv1.PopulationGateway]{Object: gw}:
	case <-ctx.Done():
	}
}

// of describes the failing shards of a gateway, in index order; empty
// when none fails.
func (f *shardFailures) of(gw types.NamespacedName) []string {
	if f == nil {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for i := range render.ShardCount {
		if msg, ok := f.failed[shardKey{Gateway: gw, Index: i}]; ok {
			out = append(out, fmt.Sprintf("%s: %s", render.ShardName(gw.Name, i), msg))
		}
	}
	return out
}
