package controllers

import (
	"slices"
	"sync"

	"k8s.io/apimachinery/pkg/types"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/internal/policyplan"
	"github.com/popconnect/popconnect/internal/render"
)

// policyMemo is what the gateway reconciler remembers between reconciles of
// a gateway so that one connection's change costs one shard's work, not
// 10,000 entries encoded and 64 shards rendered and compared: each
// connection's encoded entry while its spec (generation), standing (denied
// or not) and pins stay the same, and each shard as last written or found
// up to date. It is only a cache: an empty memo gives the same result,
// slower. The verdicts themselves are not cached: policyplan.Plan is cheap
// next to encoding.
type policyMemo struct {
	mu       sync.Mutex
	gateways map[types.NamespacedName]*gatewayMemo
}

// gatewayMemo belongs to one gateway. Reconciles of one gateway never run
// concurrently (the workqueue holds a key once), so it needs no lock.
type gatewayMemo struct {
	entries map[types.UID]memoEntry
	shards  map[int]memoShard
	encoder render.ShardEncoder
}

// memoEntry is a connection's encoded entry at one generation of its
// spec, for standing deny and pins.
type memoEntry struct {
	generation int64
	deny       bool
	pins       []string
	encoded    *render.EncodedEntry
}

// memoShard is a shard known to hold a document version: the live ConfigMap
// had that content at resourceVersion, for the gateway with that UID. Any
// other write to the ConfigMap (a hand edit, a deletion and re-creation)
// changes its resourceVersion, so it is compared in full again.
type memoShard struct {
	gatewayUID      types.UID
	version         string
	resourceVersion string
}

func newPolicyMemo() *policyMemo {
	return &policyMemo{gateways: map[types.NamespacedName]*gatewayMemo{}}
}

// gateway returns the memo of a gateway, creating it.
func (m *policyMemo) gateway(key types.NamespacedName) *gatewayMemo {
	m.mu.Lock()
	defer m.mu.Unlock()
	g, ok := m.gateways[key]
	if !ok {
		g = &gatewayMemo{entries: map[types.UID]memoEntry{}, shards: map[int]memoShard{}}
		m.gateways[key] = g
	}
	return g
}

// forget drops a gateway's memo (the gateway is gone).
func (m *policyMemo) forget(key types.NamespacedName) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.gateways, key)
}

// current returns what is known of the connection at its generation.
func (g *gatewayMemo) current(conn *popv1.AgencyConnection) memoEntry {
	e, ok := g.entries[conn.UID]
	if !ok || e.generation != conn.Generation {
		return memoEntry{generation: conn.Generation}
	}
	return e
}

// entry returns the verdict's encoded entry, encoding it only when the
// connection's spec, standing or pinned certificates changed since the
// last time.
func (g *gatewayMemo) entry(v *policyplan.Verdict) (render.EncodedEntry, error) {
	e := g.current(v.Connection)
	if e.encoded != nil && e.deny == v.Denied && slices.Equal(e.pins, v.Pins) {
		return *e.encoded, nil
	}
	encoded, err := render.EncodeEntry(v.Entry())
	if err != nil {
		return render.EncodedEntry{}, err
	}
	e.deny, e.pins, e.encoded = v.Denied, v.Pins, &encoded
	g.entries[v.Connection.UID] = e
	return encoded, nil
}

// keepEntries drops the entries of connections not in seen (deleted, or no
// longer admitted to this gateway).
func (g *gatewayMemo) keepEntries(seen map[types.UID]bool) {
	for uid := range g.entries {
		if !seen[uid] {
			delete(g.entries, uid)
		}
	}
}

// shardCurrent reports whether the live shard, at resourceVersion, is known
// to hold the document version for the gateway.
func (g *gatewayMemo) shardCurrent(index int, gatewayUID types.UID, version, resourceVersion string) bool {
	s, ok := g.shards[index]
	return ok && resourceVersion != "" && s == memoShard{gatewayUID: gatewayUID, version: version, resourceVersion: resourceVersion}
}

// shardWritten records that the live shard holds version at resourceVersion.
func (g *gatewayMemo) shardWritten(index int, gatewayUID types.UID, version, resourceVersion string) {
	g.shards[index] = memoShard{gatewayUID: gatewayUID, version: version, resourceVersion: resourceVersion}
}

// keepShards drops what is known of shards that no longer exist.
func (g *gatewayMemo) keepShards(docs []render.ShardDocument) {
	for i := range g.shards {
		if !slices.ContainsFunc(docs, func(d render.ShardDocument) bool { return d.Index == i }) {
			delete(g.shards, i)
		}
	}
}
