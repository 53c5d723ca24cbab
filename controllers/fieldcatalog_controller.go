package controllers

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
)

// FieldCatalogReconciler reports a catalog's field count and readiness. The
// catalog's meaning is enforced by the AgencyConnection reconciler, which
// re-validates every connection whose gateway uses the catalog when it changes.
type FieldCatalogReconciler struct {
	Client client.Client
}

// +kubebuilder:rbac:groups=popconnect.io,resources=fieldcatalogs,verbs=get;list;watch
// +kubebuilder:rbac:groups=popconnect.io,resources=fieldcatalogs/status,verbs=get;patch

// Reconcile writes the catalog's status when it differs from what it should be.
func (r *FieldCatalogReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	catalog := &popv1.FieldCatalog{}
	if err := r.Client.Get(ctx, req.NamespacedName, catalog); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	_, err := writeStatus(ctx, r.Client, catalog, &catalog.Status, fieldCatalogStatus(catalog), client.MergeFromWithOptimisticLock{})
	if apierrors.IsConflict(err) {
		// A newer version will be reconciled.
		return ctrl.Result{Requeue: true}, nil
	}
	return ctrl.Result{}, err
}

// fieldCatalogStatus is the status a catalog should have. The API server
// already guarantees the fields are well formed and unique, so a catalog
// that exists is ready.
func fieldCatalogStatus(catalog *popv1.FieldCatalog) popv1.FieldCatalogStatus {
	status := *catalog.Status.DeepCopy()
	status.ObservedGeneration = catalog.Generation
	status.FieldCount = int32(len(catalog.Spec.Fields))
	meta.SetStatusCondition(&status.Conditions, metav1.Condition{
		Type:               popv1.ConditionReady,
		Status:             metav1.ConditionTrue,
		Reason:             popv1.ReasonReady,
		Message:            fmt.Sprintf("The catalog lists %d fields.", len(catalog.Spec.Fields)),
		ObservedGeneration: catalog.Generation,
	})
	return status
}

// SetupWithManager registers the reconciler; it only reacts to spec changes.
func (r *FieldCatalogReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&popv1.FieldCatalog{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Named("fieldcatalog").
		Complete(r)
}
