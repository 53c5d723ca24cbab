package controllers

import (
	"context"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
)

// SetupWithManager registers the reconciler and what brings changes back to it.
func (r *PopulationGatewayReconciler) SetupWithManager(mgr ctrl.Manager, opts controller.Options) error {
	if r.AuditProbeClient == nil {
		r.AuditProbeClient = newAuditProbeClient()
	}
	b := ctrl.NewControllerManagedBy(mgr)
	if r.failures != nil {
		// A policy shard that fails to be written, or is written again.
		b = b.WatchesRawSource(source.Channel(r.failures.changed, &handler.TypedEnqueueRequestForObject[*popv1.PopulationGateway]{}))
	}
	return b.
		Named("populationgateway").
		WithOptions(opts).
		For(&popv1.PopulationGateway{}, builder.WithPredicates(specChanged)).
		Owns(&corev1.ServiceAccount{}).
		Owns(&rbacv1.Role{}).
		Owns(&rbacv1.RoleBinding{}).
		Owns(&cmapi.Certificate{}).
		Owns(&appsv1.Deployment{}).
		Owns(&corev1.Service{}).
		Owns(&policyv1.PodDisruptionBudget{}).
		Owns(&networkingv1.NetworkPolicy{}).
		// Its policy shards, written by the PolicyShardReconciler: the
		// status sums them.
		Owns(&corev1.ConfigMap{}).
		Watches(&popv1.FieldCatalog{}, handler.EnqueueRequestsFromMapFunc(r.catalogGateways),
			builder.WithPredicates(specChanged)).
		// The API server's endpoints, which every gateway's egress names.
		Watches(&discoveryv1.EndpointSlice{}, handler.EnqueueRequestsFromMapFunc(r.allGateways)).
		// The gateway's pods, for AuditReady: whom to ask, and when again.
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(r.podGateway),
			builder.WithPredicates(gatewayPodChanged)).
		Complete(r)
}

func (r *PopulationGatewayReconciler) catalogGateways(ctx context.Context, o client.Object) []reconcile.Request {
	gateways, err := gatewaysOfCatalog(ctx, r.Client, o.GetName())
	if err != nil {
		return nil
	}
	return requestsFor(gateways, nil)
}
