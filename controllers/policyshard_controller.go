package controllers

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/internal/policyplan"
	"github.com/popconnect/popconnect/internal/render"
)

// shardKey names one policy shard: a gateway and the index of the shard
// among its render.ShardCount. An agency's shard index depends only on its
// agency code, so every connection that claims a code, on any gateway, is
// planned by a reconcile of that index: the agency-code rule needs nothing
// from other shards.
type shardKey struct {
	Gateway types.NamespacedName
	Index   int
}

func (k shardKey) String() string {
	return render.ShardName(k.Gateway.Name, k.Index) + " of " + k.Gateway.String()
}

// PolicyShardReconciler writes one policy shard of one gateway: it plans
// the connections whose agency code hashes to the shard (policyplan.Plan,
// as the AgencyConnection reconciler does for one connection) and applies
// the shard's ConfigMap when it differs, or removes it when it holds no
// entry. One connection's change costs its shard's ~N/64 connections, not
// the gateway's N.
type PolicyShardReconciler struct {
	Client client.Client
	// APIReader reads past the cache: whether a shard's name is taken by
	// someone else's ConfigMap, which the cache does not hold.
	APIReader client.Reader
	Clock     clock.PassiveClock
	// Recorder reports on the gateway a shard that cannot be written.
	Recorder events.EventRecorder

	// failures tells the gateway reconciler which shards cannot be written.
	failures *shardFailures
}

// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile brings one shard in line with the verdicts of its connections.
func (r *PolicyShardReconciler) Reconcile(ctx context.Context, key shardKey) (ctrl.Result, error) {
	gw := &popv1.PopulationGateway{}
	found, err := getCached(ctx, r.Client, key.Gateway, gw)
	if err != nil || !found || !gw.DeletionTimestamp.IsZero() {
		// A gateway's shards carry its owner reference: the garbage
		// collector removes them with it.
		if err == nil {
			r.failures.record(ctx, key, nil)
		}
		return ctrl.Result{}, err
	}
	plan, err := r.plan(ctx, key, gw)
	if err != nil {
		return ctrl.Result{}, err
	}
	docs, err := plan.Documents()
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("encoding %s: %w", key, err)
	}
	if len(docs) > 1 || len(docs) == 1 && docs[0].Index != key.Index {
		return ctrl.Result{}, fmt.Errorf("planning %s gave the documents of other shards", key)
	}
	wake := requeueTimes(plan)
	err = r.write(ctx, gw, key, docs)
	r.failures.record(ctx, key, err)
	if err != nil {
		if r.Recorder != nil {
			r.Recorder.Eventf(gw, nil, corev1.EventTypeWarning, "PolicyShardFailed", "Reconcile",
				"Writing policy shard %s failed and will be retried: %s", render.ShardName(gw.Name, key.Index), err.Error())
		}
		if !errors.Is(err, errNameConflict) {
			return ctrl.Result{}, err
		}
		// The ConfigMap in the way may go without a watch event: the
		// cache holds only the operator's own.
		wake = append(wake, r.Clock.Now().Add(nameConflictRecheck))
	}
	return ctrl.Result{RequeueAfter: nextWake(r.Clock.Now(), wake)}, nil
}

// plan judges the gateway's connections of the shard. The shard index
// lists the claimants of the shard's codes on every gateway, which the
// agency-code rule compares; Plan judges only the gateway's own. The
// connections are the cache's objects: Plan modifies nothing.
func (r *PolicyShardReconciler) plan(ctx context.Context, key shardKey, gw *popv1.PopulationGateway) (*policyplan.Result, error) {
	var list popv1.AgencyConnectionList
	if err := r.Client.List(ctx, &list, client.UnsafeDisableDeepCopy,
		client.MatchingFields{indexConnectionShard: strconv.Itoa(key.Index)}); err != nil {
		return nil, fmt.Errorf("listing the connections of %s: %w", key, err)
	}
	conns := make([]*popv1.AgencyConnection, len(list.Items))
	for i := range list.Items {
		conns[i] = &list.Items[i]
	}
	catalog, err := catalogOf(ctx, r.Client, gw)
	if err != nil {
		return nil, err
	}
	labels, err := namespaceLabelsOf(ctx, r.Client, gw, conns)
	if err != nil {
		return nil, err
	}
	return policyplan.Plan(policyplan.Input{
		GatewayKey: key.Gateway, Gateway: gw, Catalog: catalog, Connections: conns, NamespaceLabels: labels, Now: r.Clock.Now(),
	}), nil
}

// write makes the live shard hold the document, or removes it when there
// is none. A shard whose name someone else's ConfigMap holds is left alone
// (errNameConflict).
func (r *PolicyShardReconciler) write(ctx context.Context, gw *popv1.PopulationGateway, key shardKey, docs []render.ShardDocument) error {
	if len(docs) == 0 {
		live := &corev1.ConfigMap{}
		exists, err := getCached(ctx, r.Client, client.ObjectKey{Namespace: gw.Namespace, Name: render.ShardName(gw.Name, key.Index)}, live)
		if err != nil || !exists || !gatewayOwns(gw)(live) {
			return err
		}
		if err := r.Client.Delete(ctx, live, client.Preconditions{UID: &live.UID}); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("deleting policy shard %s/%s: %w", live.Namespace, live.Name, err)
		}
		return nil
	}
	shard, err := render.ShardConfigMap(gw, docs[0])
	if err != nil {
		return err
	}
	shard.SetOwnerReferences([]metav1.OwnerReference{controllerRef(gw, "PopulationGateway")})
	return newWriter(r.Client, r.APIReader).writeOwned(ctx, shard, gatewayOwns(gw), readFirst)
}

// requeueTimes are the moments the plan's verdicts change by themselves (zero: never).
func requeueTimes(plan *policyplan.Result) []time.Time {
	at := make([]time.Time, len(plan.Verdicts))
	for i := range plan.Verdicts {
		at[i] = plan.Verdicts[i].RequeueAt
	}
	return at
}
