package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
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

// errNameConflict marks a write refused because the name is taken.
var errNameConflict = errors.New("name taken")

// nameConflict describes the object that holds a child's name.
type nameConflict struct {
	kind, namespace, name string
}

func (c *nameConflict) Error() string {
	return fmt.Sprintf("%s %s/%s already exists and was not made by popconnect for this object; "+
		"popconnect neither overwrites nor deletes it: delete or rename it", c.kind, c.namespace, c.name)
}

func (c *nameConflict) Is(target error) bool { return target == errNameConflict }

// ownedWriter writes children that must not take over someone else's object.
type ownedWriter struct {
	client client.Client
	// apiReader reads past the cache, which holds only objects labelled
	// as the operator's.
	apiReader client.Reader
}

// write makes the child desired live. existing is the cached object (nil
// when the cache has none); ours says whether a live object is the one this
// owner made. An object the cache does not hold is created, never applied:
// if the name is taken after all, the object is someone else's unless an
// uncached read shows it to be ours (a creation of ours the cache has not
// seen yet). It reports whether it wrote and the resourceVersion written.
func (w ownedWriter) write(ctx context.Context, desired, existing client.Object, ours func(client.Object) bool) (bool, string, error) {
	kind := desired.GetObjectKind().GroupVersionKind().Kind
	if existing == nil {
		created := desired.DeepCopyObject().(client.Object)
		err := w.client.Create(ctx, created, client.FieldOwner(render.FieldOwner))
		if err == nil {
			return true, created.GetResourceVersion(), nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return false, "", fmt.Errorf("creating %s %s/%s: %w", kind, desired.GetNamespace(), desired.GetName(), err)
		}
		live := desired.DeepCopyObject().(client.Object)
		if err := w.apiReader.Get(ctx, client.ObjectKeyFromObject(desired), live); err != nil {
			return false, "", fmt.Errorf("reading %s %s/%s: %w", kind, desired.GetNamespace(), desired.GetName(), err)
		}
		existing = live
	}
	if !ours(existing) {
		return false, "", &nameConflict{kind: kind, namespace: desired.GetNamespace(), name: desired.GetName()}
	}
	if upToDate(desired, existing) {
		return false, existing.GetResourceVersion(), nil
	}
	rv, err := (applier{client: w.client}).write(ctx, desired)
	return err == nil, rv, err
}
