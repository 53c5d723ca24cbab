package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/popconnect/popconnect/internal/render"
)

// A child's name is computed, so someone else can hold it first: a tenant
// of the gateway's namespace who pre-creates a NetworkPolicy or ConfigMap of
// that name, or (before names were hashed) another connection. Server-side
// apply with ForceOwnership would take such an object over, keeping
// whatever fields its author set that the operator does not, and a later
// cleanup would delete it. So the operator writes a child only when it is
// absent or already its own, and otherwise reports a NameConflict.

// nameConflictRecheck is how long after a NameConflict the owner looks
// again: the object in the way may go without a watch event reaching the
// operator (its cache holds only objects labelled as the operator's).
const nameConflictRecheck = time.Minute

// errNameConflict marks a write refused because the name is taken; its
// message follows the kind and name of the object in the way (nameConflict).
var errNameConflict = errors.New("already exists and was not made by popconnect for this object; " +
	"popconnect neither overwrites nor deletes it: delete or rename it")

// nameConflict is errNameConflict for the object that holds a child's name.
func nameConflict(kind, namespace, name string) error {
	return fmt.Errorf("%s %s/%s %w", kind, namespace, name, errNameConflict)
}

// absentPolicy says how write treats a child the cache does not hold.
type absentPolicy int

const (
	// readFirst reads the name past the cache (metadata only), then
	// applies when it is free. For children with fields merged key by key
	// (a Deployment's env, a ConfigMap's data): server-side apply alone
	// then owns every field, so a field later dropped from the desired
	// object is removed.
	readFirst absentPolicy = iota
	// createFirst creates the child, and reads only when the name is taken.
	// No read per creation (a connection's NetworkPolicy: 10,000 of them);
	// only for children whose spec is made of atomic fields, since a
	// field written by a create is not removed by a later apply that drops
	// it.
	createFirst
)

// writeOwned makes the child desired live, unless its name is held by an
// object that is not this owner's (errNameConflict). It reads the child from
// the cache first, so that an unchanged one costs no write; ours says
// whether a live object is the one this owner made.
func (w writer) writeOwned(ctx context.Context, desired client.Object, ours func(client.Object) bool, absent absentPolicy) error {
	kind := desired.GetObjectKind().GroupVersionKind().Kind
	live := desired.DeepCopyObject().(client.Object)
	found, err := getCached(ctx, w.client, client.ObjectKeyFromObject(desired), live)
	if err != nil {
		return err
	}
	existing := ifExists(found, live)
	if existing == nil && absent == createFirst {
		err := w.client.Create(ctx, desired.DeepCopyObject().(client.Object), client.FieldOwner(render.FieldOwner))
		if err == nil {
			return nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating %s %s/%s: %w", kind, desired.GetNamespace(), desired.GetName(), err)
		}
	}
	if existing == nil {
		// Not cached: free, someone else's (unlabelled), or ours and not
		// yet seen by the cache.
		meta := &metav1.PartialObjectMetadata{}
		meta.SetGroupVersionKind(desired.GetObjectKind().GroupVersionKind())
		err := w.apiReader.Get(ctx, client.ObjectKeyFromObject(desired), meta)
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			return fmt.Errorf("reading %s %s/%s: %w", kind, desired.GetNamespace(), desired.GetName(), err)
		default:
			existing = meta
		}
	}
	if existing != nil && !ours(existing) {
		return nameConflict(kind, desired.GetNamespace(), desired.GetName())
	}
	_, err = w.apply(ctx, desired, existing)
	return err
}
