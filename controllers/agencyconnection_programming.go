package controllers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/gateway/policy"
	"github.com/popconnect/popconnect/internal/admission"
	"github.com/popconnect/popconnect/internal/render"
)

// reconcileProgramming reports whether the connection's entry, as it should
// be now, is in its gateway's policy shard.
func (r *AgencyConnectionReconciler) reconcileProgramming(ctx context.Context, s *connState) error {
	if s.problem != nil {
		s.setCondition(popv1.ConditionProgrammed, metav1.ConditionFalse, popv1.ReasonNotProgrammed,
			"The connection is left out of the gateway's policy: "+s.problem.Message)
		return nil
	}
	if vu := s.conn.Spec.ValidUntil; vu != nil {
		s.wakeUpAt(vu.Time)
	}
	deny := s.conn.Spec.Suspended || admission.Expired(s.conn, s.now)
	want := render.PolicyEntry(s.conn, deny)
	name := render.ShardName(s.gateway.Name, render.ShardIndex(s.conn.Spec.AgencyCode))
	cm := &corev1.ConfigMap{}
	exists, err := getCached(ctx, r.Client, types.NamespacedName{Namespace: s.gateway.Namespace, Name: name}, cm)
	if err != nil {
		return err
	}
	var got *policy.Agency
	if exists {
		if got, err = r.shards.entry(cm, s.conn.Spec.AgencyCode); err != nil {
			return err
		}
	}
	if got == nil || !sameEntry(*got, want) {
		s.setCondition(popv1.ConditionProgrammed, metav1.ConditionFalse, popv1.ReasonPending,
			fmt.Sprintf("Waiting for the entry to be written to policy shard %s/%s.", s.gateway.Namespace, name))
		return nil
	}
	state := "allowed"
	if deny {
		state = "denied"
	}
	// The message leaves out the shard's version: it changes whenever any
	// of the shard's ~160 agencies changes, and would cost each of them a
	// status write for a change that is not theirs (the gateway's
	// status.policyVersion reports the version).
	s.setCondition(popv1.ConditionProgrammed, metav1.ConditionTrue, popv1.ReasonProgrammed,
		fmt.Sprintf("The entry is written, %s, to policy shard %s/%s.", state, s.gateway.Namespace, name))
	return nil
}

func sameEntry(a, b policy.Agency) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(ja, jb)
}

// shardCache keeps each policy shard decoded once per resourceVersion: the
// connections of one shard (about 160 at 10,000 agencies) all read it.
type shardCache struct {
	mu      sync.Mutex
	decoded map[types.NamespacedName]decodedShard
}

type decodedShard struct {
	resourceVersion string
	entries         map[string]policy.Agency
}

func newShardCache() *shardCache {
	return &shardCache{decoded: map[types.NamespacedName]decodedShard{}}
}

func (c *shardCache) entry(cm *corev1.ConfigMap, code string) (*policy.Agency, error) {
	key := types.NamespacedName{Namespace: cm.Namespace, Name: cm.Name}
	c.mu.Lock()
	d, ok := c.decoded[key]
	c.mu.Unlock()
	if !ok || d.resourceVersion != cm.ResourceVersion {
		entries, err := render.ShardEntries(cm)
		if err != nil {
			return nil, err
		}
		d = decodedShard{resourceVersion: cm.ResourceVersion, entries: make(map[string]policy.Agency, len(entries))}
		for _, e := range entries {
			d.entries[e.AgencyCode] = e
		}
		c.mu.Lock()
		c.decoded[key] = d
		c.mu.Unlock()
	}
	e, ok := d.entries[code]
	if !ok {
		return nil, nil
	}
	return &e, nil
}
