package controllers

import (
	"context"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
)

// TestFieldCatalogConflictIsRetriedQuietly: an optimistic-lock conflict on
// the status patch is retried (requeued) without surfacing an error, and
// the retry writes the status.
func TestFieldCatalogConflictIsRetriedQuietly(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := popv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	catalog := &popv1.FieldCatalog{
		ObjectMeta: metav1.ObjectMeta{Name: "cat", Generation: 1},
		Spec:       popv1.FieldCatalogSpec{Fields: []popv1.CatalogField{{Name: "fullName", Sensitivity: popv1.SensitivityPersonal}}},
	}
	conflicts := 1
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(catalog).WithStatusSubresource(catalog).
		WithInterceptorFuncs(interceptor.Funcs{
			SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
				if conflicts > 0 {
					conflicts--
					return apierrors.NewConflict(schema.GroupResource{Group: "popconnect.io", Resource: "fieldcatalogs"}, obj.GetName(), nil)
				}
				return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
			},
		}).Build()
	r := &FieldCatalogReconciler{Client: c}
	req := ctrl.Request{NamespacedName: client.ObjectKey{Name: "cat"}}

	res, err := r.Reconcile(context.Background(), req)
	if err != nil || !res.Requeue {
		t.Fatalf("on a conflict: got %+v, %v; want a requeue and no error", res, err)
	}
	if res, err = r.Reconcile(context.Background(), req); err != nil || res.Requeue {
		t.Fatalf("retry: got %+v, %v", res, err)
	}
	got := &popv1.FieldCatalog{}
	if err := c.Get(context.Background(), req.NamespacedName, got); err != nil {
		t.Fatal(err)
	}
	if got.Status.FieldCount != 1 || got.Status.ObservedGeneration != 1 {
		t.Errorf("status after the retry: %+v", got.Status)
	}
}
