package controllers

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/popconnect/popconnect/internal/render"
)

// applier writes children with server-side apply under one field owner,
// and only when the live object differs from the desired one: an unchanged
// child costs a cache read, never an API write.
type applier struct {
	client client.Client
	// apiReader reads a child whose cached copy is slim (cache_slim.go)
	// whole, when its digest differs from desired's; nil: not read.
	apiReader client.Reader
}

// apply makes the live object match desired. existing is the live object
// read from the cache (nil when it does not exist). It reports whether it
// wrote.
func (a applier) apply(ctx context.Context, desired, existing client.Object) (bool, error) {
	if existing != nil {
		same, err := current(ctx, a.apiReader, desired, existing)
		if err != nil || same {
			return false, err
		}
	}
	if _, err := a.write(ctx, desired); err != nil {
		return false, err
	}
	return true, nil
}

// write applies desired unconditionally and returns the resourceVersion the
// API server answered with.
func (a applier) write(ctx context.Context, desired client.Object) (string, error) {
	u, err := toApplyObject(desired)
	if err != nil {
		return "", err
	}
	if err := a.client.Apply(ctx, client.ApplyConfigurationFromUnstructured(u),
		client.FieldOwner(render.FieldOwner), client.ForceOwnership); err != nil {
		return "", fmt.Errorf("applying %s %s/%s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
	}
	return u.GetResourceVersion(), nil
}

// upToDate reports whether every field desired sets has the same value in
// existing. Fields the API server defaults or other controllers own (and
// desired leaves unset) do not count, so they cause no rewrite. Of an
// object the cache keeps slim (cache_slim.go), the spec is compared by its
// digest, which any difference changes.
func upToDate(desired, existing client.Object) bool {
	d, err := runtime.DefaultUnstructuredConverter.ToUnstructured(desired)
	if err != nil {
		return false
	}
	e, err := runtime.DefaultUnstructuredConverter.ToUnstructured(existing)
	if err != nil {
		return false
	}
	if digest, slim := slimCached(existing); slim {
		if want, err := specDigest(desired); err != nil || want != digest {
			return false
		}
		delete(d, "spec")
		delete(e, "spec")
	}
	for _, m := range []map[string]any{d, e} {
		delete(m, "apiVersion")
		delete(m, "kind")
		delete(m, "status")
		if md, ok := m["metadata"].(map[string]any); ok {
			delete(md, "creationTimestamp")
		}
	}
	return equality.Semantic.DeepDerivative(d, e)
}

// toApplyObject turns a typed desired object into an apply configuration:
// no status (it belongs to the subresource) and no empty creationTimestamp.
func toApplyObject(obj client.Object) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("converting %T: %w", obj, err)
	}
	delete(m, "status")
	if md, ok := m["metadata"].(map[string]any); ok {
		delete(md, "creationTimestamp")
	}
	return &unstructured.Unstructured{Object: m}, nil
}

// getCached reads obj from the cache; it returns false when it does not exist.
func getCached(ctx context.Context, c client.Reader, key client.ObjectKey, obj client.Object) (bool, error) {
	if err := c.Get(ctx, key, obj); err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("reading %T %s: %w", obj, key, err)
	}
	return true, nil
}

// controllerRef makes owner the controlling owner of a child.
func controllerRef(owner client.Object, gvkKind string) metav1.OwnerReference {
	yes := true
	return metav1.OwnerReference{
		APIVersion:         "popconnect.io/v1alpha1",
		Kind:               gvkKind,
		Name:               owner.GetName(),
		UID:                owner.GetUID(),
		Controller:         &yes,
		BlockOwnerDeletion: &yes,
	}
}
