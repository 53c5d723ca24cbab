package controllers

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"
)

// auditKeyMemo remembers which gateways' audit key Secrets are known to
// exist, so that a reconcile costs no API request for it: the manager does
// not watch Secrets. Keyed by the gateway's name and UID, so that a gateway
// made again under the same name checks again.
type auditKeyMemo struct {
	mu    sync.Mutex
	known map[types.NamespacedName]types.UID
}

func newAuditKeyMemo() *auditKeyMemo {
	return &auditKeyMemo{known: map[types.NamespacedName]types.UID{}}
}

func (m *auditKeyMemo) isKnown(gw types.NamespacedName, uid types.UID) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.known[gw] == uid
}

func (m *auditKeyMemo) remember(gw types.NamespacedName, uid types.UID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.known[gw] = uid
}

func (m *auditKeyMemo) forget(gw types.NamespacedName) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.known, gw)
}
