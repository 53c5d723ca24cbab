package controllers

import (
	"context"
	"crypto/sha256"
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
	// The pins of the status this reconcile writes: the gateway reconciler
	// renders the entry from that status once it is stored.
	pins, next := render.CertificatePins(s.certificate, s.conn.Spec.ClientCertificate.RevokedSerialNumbers, s.now)
	if !next.IsZero() {
		s.wakeUpAt(next)
	}
	want := render.PolicyEntry(s.conn, deny, pins)
	name := render.ShardName(s.gateway.Name, render.ShardIndex(s.conn.Spec.AgencyCode))
	cm := &corev1.ConfigMap{}
	exists, err := getCached(ctx, r.Client, types.NamespacedName{Namespace: s.gateway.Namespace, Name: name}, cm)
	if err != nil {
		return err
	}
	written := false
	if exists {
		if written, err = r.shards.holds(cm, want); err != nil {
			return err
		}
	}
	if !written {
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

// shardCache keeps, for each policy shard at its current resourceVersion,
// a digest of every entry it holds: the connections of one shard (about 160
// at 10,000 agencies) all read it, and it is decoded once per change. Only
// digests are kept, not the entries, so that it costs little memory.
type shardCache struct {
	mu      sync.Mutex
	decoded map[types.NamespacedName]shardDigests
}

type shardDigests struct {
	resourceVersion string
	entries         map[string]entryDigest
}

// entryDigest identifies an entry by its canonical encoding.
type entryDigest [sha256.Size / 2]byte

func digestEntry(e policy.Agency) (entryDigest, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return entryDigest{}, fmt.Errorf("encoding the policy entry of %s: %w", e.AgencyCode, err)
	}
	sum := sha256.Sum256(b)
	var d entryDigest
	copy(d[:], sum[:])
	return d, nil
}

func newShardCache() *shardCache {
	return &shardCache{decoded: map[types.NamespacedName]shardDigests{}}
}

// holds reports whether the shard holds want, exactly, as its agency's entry.
func (c *shardCache) holds(cm *corev1.ConfigMap, want policy.Agency) (bool, error) {
	key := types.NamespacedName{Namespace: cm.Namespace, Name: cm.Name}
	c.mu.Lock()
	d, ok := c.decoded[key]
	c.mu.Unlock()
	if !ok || d.resourceVersion != cm.ResourceVersion {
		entries, err := render.ShardEntries(cm)
		if err != nil {
			return false, err
		}
		d = shardDigests{resourceVersion: cm.ResourceVersion, entries: make(map[string]entryDigest, len(entries))}
		for _, e := range entries {
			if d.entries[e.AgencyCode], err = digestEntry(e); err != nil {
				return false, err
			}
		}
		c.mu.Lock()
		c.decoded[key] = d
		c.mu.Unlock()
	}
	got, ok := d.entries[want.AgencyCode]
	if !ok {
		return false, nil
	}
	wantDigest, err := digestEntry(want)
	return err == nil && got == wantDigest, err
}
