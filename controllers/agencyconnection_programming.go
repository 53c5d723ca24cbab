package controllers

import (
	"context"
	"crypto/sha256"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/popconnect/popconnect/gateway/policy"
	"github.com/popconnect/popconnect/internal/render"
)

// reconcileProgramming reports whether the connection's entry, as it should
// be now, is in its gateway's policy shard.
func (r *AgencyConnectionReconciler) reconcileProgramming(ctx context.Context, s *connState) error {
	v := s.verdict
	if !v.Admitted() {
		s.setPlanned(v.Programmed(false))
		return nil
	}
	// The pins of the status this reconcile writes: the shard reconciler
	// renders the entry from that status once it is stored.
	want, next := v.EntryWith(s.certificate, s.now)
	s.wakeUpAt(next)
	_, name := v.Shard()
	cm := &corev1.ConfigMap{}
	exists, err := getCached(ctx, r.Client, types.NamespacedName{Namespace: s.gateway.Namespace, Name: name}, cm)
	if err != nil {
		return err
	}
	written := false
	if exists {
		if written, err = r.shardHolds(cm, want); err != nil {
			return err
		}
	}
	s.setPlanned(v.Programmed(written))
	return nil
}

// shardDigests is, for a policy shard at one resourceVersion, a digest of
// every entry it holds: the connections of one shard (about 160 at 10,000
// agencies) all read it, and it is decoded once per change. Only digests
// are kept, not the entries, so that it costs little memory.
type shardDigests struct {
	resourceVersion string
	entries         map[string]entryDigest
}

// entryDigest identifies an entry by its canonical encoding.
type entryDigest [sha256.Size / 2]byte

func digestEntry(e policy.Agency) (entryDigest, error) {
	b, err := policy.EncodeAgency(e)
	if err != nil {
		return entryDigest{}, err
	}
	sum := sha256.Sum256(b)
	return entryDigest(sum[:len(entryDigest{})]), nil
}

// shardHolds reports whether the shard holds want, exactly, as its agency's entry.
func (r *AgencyConnectionReconciler) shardHolds(cm *corev1.ConfigMap, want policy.Agency) (bool, error) {
	key := client.ObjectKeyFromObject(cm)
	d, ok := r.shards.get(key)
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
		r.shards.put(key, d)
	}
	got, ok := d.entries[want.AgencyCode]
	if !ok {
		return false, nil
	}
	wantDigest, err := digestEntry(want)
	return err == nil && got == wantDigest, err
}
