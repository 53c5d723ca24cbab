package controllers

import (
	"context"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/internal/policyplan"
	"github.com/popconnect/popconnect/internal/render"
)

// SetupWithManager registers the reconciler, keyed by shard, and maps
// every event that can change a shard to the shards it changes.
func (r *PolicyShardReconciler) SetupWithManager(mgr ctrl.Manager, opts controller.TypedOptions[shardKey]) error {
	log := mgr.GetLogger().WithValues("controller", "policyshard")
	return builder.TypedControllerManagedBy[shardKey](mgr).
		Named("policyshard").
		WithOptions(opts).
		WithLogConstructor(func(k *shardKey) logr.Logger {
			if k == nil {
				return log
			}
			return log.WithValues("gateway", k.Gateway.String(), "shard", k.Index)
		}).
		// A connection's change changes its own shard, and on every other
		// gateway the shard of the same index where its agency code is
		// claimed (who owns the code). Its pins come from its status.
		Watches(&popv1.AgencyConnection{}, handler.TypedEnqueueRequestsFromMapFunc(r.connectionShards),
			builder.WithPredicates(predicate.Or(specChanged, pinsChanged))).
		// The gateway's spec decides admission and privileges for all its shards.
		Watches(&popv1.PopulationGateway{}, handler.TypedEnqueueRequestsFromMapFunc(gatewayShards),
			builder.WithPredicates(specChanged)).
		Watches(&popv1.FieldCatalog{}, handler.TypedEnqueueRequestsFromMapFunc(r.catalogShards),
			builder.WithPredicates(specChanged)).
		WatchesMetadata(namespaceMeta(), handler.TypedEnqueueRequestsFromMapFunc(r.namespaceShards),
			builder.WithPredicates(namespaceLabelsChanged)).
		// A shard edited or deleted by someone else is put back. The
		// reconciler's own writes come back here too, and find nothing to do.
		Watches(&corev1.ConfigMap{}, handler.TypedEnqueueRequestsFromMapFunc(configMapShard)).
		Complete(r)
}

// connectionShards maps a connection to its shard and to the shards of
// the same index of the other gateways where its code is claimed.
func (r *PolicyShardReconciler) connectionShards(ctx context.Context, o client.Object) []shardKey {
	conn := o.(*popv1.AgencyConnection)
	index := render.ShardIndex(conn.Spec.AgencyCode)
	keys := []shardKey{{Gateway: render.GatewayKey(conn), Index: index}}
	peers, err := connectionsWithCode(ctx, r.Client, conn.Spec.AgencyCode)
	if err != nil {
		return keys
	}
	for i := range peers {
		keys = append(keys, shardKey{Gateway: render.GatewayKey(&peers[i]), Index: index})
	}
	return keys
}

// allShards are the keys of every shard of the gateways requested.
func allShards(gateways []reconcile.Request) []shardKey {
	keys := make([]shardKey, 0, len(gateways)*render.ShardCount)
	for _, gw := range gateways {
		for i := range render.ShardCount {
			keys = append(keys, shardKey{Gateway: gw.NamespacedName, Index: i})
		}
	}
	return keys
}

func gatewayShards(_ context.Context, o client.Object) []shardKey {
	return allShards([]reconcile.Request{{NamespacedName: client.ObjectKeyFromObject(o)}})
}

func (r *PolicyShardReconciler) catalogShards(ctx context.Context, o client.Object) []shardKey {
	gateways, err := gatewaysOfCatalog(ctx, r.Client, o.GetName())
	if err != nil {
		return nil
	}
	return allShards(requestsFor(gateways, nil))
}

// namespaceShards maps a namespace's labels to the shards of the gateways
// that admit namespaces by a label selector.
func (r *PolicyShardReconciler) namespaceShards(ctx context.Context, _ client.Object) []shardKey {
	var list popv1.PopulationGatewayList
	if err := r.Client.List(ctx, &list, client.UnsafeDisableDeepCopy); err != nil {
		return nil
	}
	return allShards(requestsFor(list.Items, policyplan.NeedsNamespaceLabels))
}

// configMapShard maps a shard ConfigMap to its key: the gateway that
// controls it, and the index its name carries.
func configMapShard(_ context.Context, o client.Object) []shardKey {
	gw := metav1ControllerName(o, "PopulationGateway")
	if gw == "" {
		return nil
	}
	index, ok := render.ShardIndexOf(gw, o.GetName())
	if !ok {
		return nil
	}
	return []shardKey{{Gateway: types.NamespacedName{Namespace: o.GetNamespace(), Name: gw}, Index: index}}
}
