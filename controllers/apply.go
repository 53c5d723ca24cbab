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

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/internal/render"
)

// writer writes children with server-side apply under one field owner,
// and only when the live object differs from the desired one: an unchanged
// child costs a cache read, never an API write.
type writer struct {
	client client.Client
	// apiReader reads past the cache: a name the cache does not hold (it
	// holds only objects labelled as the operator's), and a child whose
	// cached copy is slim (cache_slim.go) and whose digest differs.
	apiReader client.Reader
}

// newWriter is a writer that reads past the cache with uncached(c, apiReader).
func newWriter(c client.Client, apiReader client.Reader) writer {
	return writer{client: c, apiReader: uncached(c, apiReader)}
}

// uncached is the reader past the cache: apiReader, or c when it is nil
// (a reconciler made by a test).
func uncached(c client.Client, apiReader client.Reader) client.Reader {
	if apiReader == nil {
		return c
	}
	return apiReader
}

// apply makes the live object match desired. existing is the live object
// read from the cache (nil when it does not exist). It reports whether it
// wrote (or tried to).
func (w writer) apply(ctx context.Context, desired, existing client.Object) (bool, error) {
	if existing != nil {
		same, err := current(ctx, w.apiReader, desired, existing)
		if err != nil || same {
			return false, err
		}
	}
	m, err := fieldsOf(desired)
	if err != nil {
		return true, err
	}
	u := &unstructured.Unstructured{Object: m}
	if err := w.client.Apply(ctx, client.ApplyConfigurationFromUnstructured(u),
		client.FieldOwner(render.FieldOwner), client.ForceOwnership); err != nil {
		return true, fmt.Errorf("applying %s %s/%s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
	}
	return true, nil
}

// upToDate reports whether every field desired sets has the same value in
// existing. Fields the API server defaults or other controllers own (and
// desired leaves unset) do not count, so they cause no rewrite. Of an
// object the cache keeps slim (cache_slim.go), the spec is compared by its
// digest, which any difference changes.
func upToDate(desired, existing client.Object) bool {
	d, err := fieldsOf(desired, "apiVersion", "kind")
	if err != nil {
		return false
	}
	e, err := fieldsOf(existing, "apiVersion", "kind")
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
	return equality.Semantic.DeepDerivative(d, e)
}

// fieldsOf is obj as a map, without the keys named, its status (it belongs
// to the subresource) and its creationTimestamp (empty in a desired object).
func fieldsOf(obj client.Object, drop ...string) (map[string]any, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("converting %T: %w", obj, err)
	}
	for _, k := range append(drop, "status") {
		delete(m, k)
	}
	if md, ok := m["metadata"].(map[string]any); ok {
		delete(md, "creationTimestamp")
	}
	return m, nil
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

// ifExists is obj when it exists, else a nil interface, as the writer
// expects of a child the cache does not hold (a nil *Certificate in an
// interface would not be nil).
func ifExists(exists bool, obj client.Object) client.Object {
	if !exists {
		return nil
	}
	return obj
}

// controllerRef makes owner, of the popconnect kind given, the controlling
// owner of a child.
func controllerRef(owner client.Object, kind string) metav1.OwnerReference {
	return *metav1.NewControllerRef(owner, popv1.GroupVersion.WithKind(kind))
}
