package controllers

import (
	"context"
	"strconv"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/internal/render"
)

// specChanged passes creations, deletions and changes of spec, labels or
// finalizers, and not the status patches the reconcilers make themselves.
var specChanged = predicate.Or(predicate.GenerationChangedPredicate{}, predicate.LabelChangedPredicate{})

// SetupWithManager registers the reconciler and what brings changes back to it.
func (r *AgencyConnectionReconciler) SetupWithManager(mgr ctrl.Manager, opts controller.Options) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("agencyconnection").
		WithOptions(opts).
		For(&popv1.AgencyConnection{}, builder.WithPredicates(specChanged)).
		Owns(&cmapi.Certificate{}).
		// Another connection claiming or releasing the same agency code.
		Watches(&popv1.AgencyConnection{}, handler.EnqueueRequestsFromMapFunc(r.sameCodePeers),
			builder.WithPredicates(specChanged)).
		Watches(&networkingv1.NetworkPolicy{}, handler.EnqueueRequestsFromMapFunc(networkPolicyOwner)).
		Watches(&corev1.ConfigMap{}, handler.EnqueueRequestsFromMapFunc(r.shardConnections)).
		Watches(&popv1.PopulationGateway{}, handler.EnqueueRequestsFromMapFunc(r.gatewayConnections),
			builder.WithPredicates(specChanged)).
		Watches(&popv1.FieldCatalog{}, handler.EnqueueRequestsFromMapFunc(r.catalogConnections),
			builder.WithPredicates(specChanged)).
		WatchesMetadata(namespaceMeta(), handler.EnqueueRequestsFromMapFunc(r.namespaceConnections),
			builder.WithPredicates(namespaceLabelsChanged)).
		Complete(r)
}

// requestsFor are the requests for the objects that keep passes (all when
// keep is nil).
func requestsFor[T any, P interface {
	*T
	client.Object
}](objs []T, keep func(P) bool) []reconcile.Request {
	reqs := make([]reconcile.Request, 0, len(objs))
	for i := range objs {
		if o := P(&objs[i]); keep == nil || keep(o) {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(o)})
		}
	}
	return reqs
}

func (r *AgencyConnectionReconciler) sameCodePeers(ctx context.Context, o client.Object) []reconcile.Request {
	conn := o.(*popv1.AgencyConnection)
	peers, err := connectionsWithCode(ctx, r.Client, conn.Spec.AgencyCode)
	if err != nil {
		return nil
	}
	return requestsFor(peers, func(p *popv1.AgencyConnection) bool {
		return p.Namespace != conn.Namespace || p.Name != conn.Name
	})
}

func networkPolicyOwner(_ context.Context, o client.Object) []reconcile.Request {
	if conn, ok := networkPolicyConnection(o); ok {
		return []reconcile.Request{{NamespacedName: conn}}
	}
	return nil
}

// shardConnections maps a policy shard to the connections whose entry it holds.
func (r *AgencyConnectionReconciler) shardConnections(ctx context.Context, o client.Object) []reconcile.Request {
	keys := configMapShard(ctx, o)
	if len(keys) == 0 {
		return nil
	}
	shard := keys[0]
	var list popv1.AgencyConnectionList
	if err := r.Client.List(ctx, &list, client.UnsafeDisableDeepCopy,
		client.MatchingFields{indexConnectionShard: strconv.Itoa(shard.Index)}); err != nil {
		return nil
	}
	return requestsFor(list.Items, func(c *popv1.AgencyConnection) bool {
		return render.GatewayKey(c) == shard.Gateway
	})
}

// gatewayConnections maps a gateway to the connections that reference it.
func (r *AgencyConnectionReconciler) gatewayConnections(ctx context.Context, o client.Object) []reconcile.Request {
	var list popv1.AgencyConnectionList
	if err := r.Client.List(ctx, &list, client.UnsafeDisableDeepCopy,
		client.MatchingFields{indexConnectionGateway: client.ObjectKeyFromObject(o).String()}); err != nil {
		return nil
	}
	return requestsFor(list.Items, nil)
}

func (r *AgencyConnectionReconciler) catalogConnections(ctx context.Context, o client.Object) []reconcile.Request {
	gateways, err := gatewaysOfCatalog(ctx, r.Client, o.GetName())
	if err != nil {
		return nil
	}
	var reqs []reconcile.Request
	for i := range gateways {
		reqs = append(reqs, r.gatewayConnections(ctx, &gateways[i])...)
	}
	return reqs
}

// metav1ControllerName is the name of o's controlling owner of the given kind.
func metav1ControllerName(o client.Object, kind string) string {
	if ref := metav1.GetControllerOf(o); ref != nil && ref.Kind == kind && ref.APIVersion == popv1.GroupVersion.String() {
		return ref.Name
	}
	return ""
}
