package controllers

import (
	"crypto/sha256"
	"sort"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/popconnect/popconnect/internal/render"
)

// shardEcho remembers the content of each policy shard as the gateway
// reconciler last wrote it, so that the watch event of its own write does
// not start another full render of the gateway's policy (with 10,000
// connections that costs as much as the change itself). Any other change
// to a shard (a hand edit, a deletion) still brings the reconciler back.
type shardEcho struct {
	mu      sync.Mutex
	written map[types.NamespacedName][sha256.Size]byte
}

func newShardEcho() *shardEcho {
	return &shardEcho{written: map[types.NamespacedName][sha256.Size]byte{}}
}

// remember records a shard's content as written (or found up to date).
func (e *shardEcho) remember(cm *corev1.ConfigMap) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.written[client.ObjectKeyFromObject(cm)] = shardFingerprint(cm)
}

// isEcho reports whether cm is exactly what the reconciler last wrote.
func (e *shardEcho) isEcho(cm *corev1.ConfigMap) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	want, ok := e.written[client.ObjectKeyFromObject(cm)]
	return ok && want == shardFingerprint(cm)
}

// shardFingerprint covers everything the reconciler sets on a shard: its
// data, the labels the gateway selects by, and its controlling owner.
func shardFingerprint(cm *corev1.ConfigMap) [sha256.Size]byte {
	h := sha256.New()
	write := func(s string) {
		_, _ = h.Write([]byte(s))
		_, _ = h.Write([]byte{0})
	}
	keys := make([]string, 0, len(cm.Data))
	for k := range cm.Data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		write(k)
		write(cm.Data[k])
	}
	keys = keys[:0]
	for k := range cm.BinaryData {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		write(k)
		write(string(cm.BinaryData[k]))
	}
	for _, l := range []string{render.LabelGateway, render.LabelManagedBy, render.LabelComponent} {
		write(cm.Labels[l])
	}
	for _, ref := range cm.OwnerReferences {
		if ref.Controller != nil && *ref.Controller {
			write(string(ref.UID))
		}
	}
	var sum [sha256.Size]byte
	copy(sum[:], h.Sum(nil))
	return sum
}

// notOwnShardWrite filters out the update events of the reconciler's own
// shard writes; every other event passes.
func (e *shardEcho) notOwnShardWrite() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(ev event.UpdateEvent) bool {
			cm, ok := ev.ObjectNew.(*corev1.ConfigMap)
			return !ok || !e.isEcho(cm)
		},
	}
}
