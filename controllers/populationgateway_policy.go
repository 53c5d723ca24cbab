package controllers

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/internal/policyplan"
	"github.com/popconnect/popconnect/internal/render"
)

// reconcilePolicy plans the gateway's policy from every connection
// (policyplan.Plan: a connection with a problem, or being deleted, is left
// out; a suspended or expired one is kept, denied) and writes the shards
// that changed.
func (r *PopulationGatewayReconciler) reconcilePolicy(ctx context.Context, s *gatewayState) error {
	memo := r.memo.gateway(client.ObjectKeyFromObject(s.gw))
	plan, err := r.plan(ctx, s)
	if err != nil {
		return err
	}
	entries, err := admittedEntries(s, plan, memo)
	if err != nil {
		return err
	}
	docs := memo.encoder.Encode(entries)
	for _, d := range docs {
		if err := r.writeShard(ctx, s.gw, memo, d); err != nil {
			s.setCondition(popv1.ConditionPolicyReady, metav1.ConditionFalse, popv1.ReasonPending,
				"Writing the policy shards failed and will be retried: "+err.Error())
			return err
		}
	}
	memo.keepShards(docs)
	if err := r.deleteOtherShards(ctx, s.gw, docs); err != nil {
		return err
	}
	s.policyVersion = render.PolicyVersion(s.gw.Name, docs)
	if s.catalog == nil {
		s.setCondition(popv1.ConditionPolicyReady, metav1.ConditionFalse, popv1.ReasonCatalogNotFound, fmt.Sprintf(
			"FieldCatalog %q (spec.catalogRef) does not exist, so no connection is admitted; create it or correct spec.catalogRef.",
			s.gw.Spec.CatalogRef.Name))
		return nil
	}
	s.setCondition(popv1.ConditionPolicyReady, metav1.ConditionTrue, popv1.ReasonProgrammed, fmt.Sprintf(
		"%d agencies (%d with access) are written to %d policy shards, version %s.",
		len(entries), s.activeConnections, len(docs), s.policyVersion))
	return nil
}

// plan runs the policy compiler over every connection, cluster-wide: the
// agency-code rule compares each of the gateway's connections with every
// other that claims its code, on any gateway. The connections are the
// cache's own objects (read-only views): this runs on every connection
// change, and deep-copying 10,000 of them every time is pure garbage;
// policyplan modifies nothing.
func (r *PopulationGatewayReconciler) plan(ctx context.Context, s *gatewayState) (*policyplan.Result, error) {
	all, err := r.connections(ctx)
	if err != nil {
		return nil, err
	}
	key := client.ObjectKeyFromObject(s.gw)
	labels, err := namespaceLabelsOf(ctx, r.Client, s.gw, all)
	if err != nil {
		return nil, err
	}
	return policyplan.Plan(policyplan.Input{
		GatewayKey: key, Gateway: s.gw, Catalog: s.catalog, Connections: all, NamespaceLabels: labels, Now: s.now,
	}), nil
}

// admittedEntries encodes the entries of the plan's admitted connections,
// reusing the memo's encoding of an entry that did not change, and counts
// those with access.
func admittedEntries(s *gatewayState, plan *policyplan.Result, memo *gatewayMemo) ([]render.EncodedEntry, error) {
	entries := make([]render.EncodedEntry, 0, len(plan.Verdicts))
	seen := make(map[types.UID]bool, len(plan.Verdicts))
	for i := range plan.Verdicts {
		v := &plan.Verdicts[i]
		if !v.RequeueAt.IsZero() {
			s.wakeAt = append(s.wakeAt, v.RequeueAt)
		}
		if !v.Admitted() {
			continue
		}
		if !v.Denied {
			s.activeConnections++
		}
		entry, err := memo.entry(v)
		if err != nil {
			return nil, err
		}
		seen[v.Connection.UID] = true
		entries = append(entries, entry)
	}
	memo.keepEntries(seen)
	return entries, nil
}

// writeShard makes the live shard hold the document. A shard the memo knows
// to be current at its live resourceVersion costs a cache read only; any
// other is rendered and compared in full, and written if it differs.
func (r *PopulationGatewayReconciler) writeShard(ctx context.Context, gw *popv1.PopulationGateway, memo *gatewayMemo, d render.ShardDocument) error {
	live := &corev1.ConfigMap{}
	exists, err := getCached(ctx, r.Client, client.ObjectKey{Namespace: gw.Namespace, Name: render.ShardName(gw.Name, d.Index)}, live)
	if err != nil {
		return err
	}
	if exists && memo.shardCurrent(d.Index, gw.UID, d.Version, live.ResourceVersion) {
		return nil
	}
	shard, err := render.ShardConfigMap(gw, d)
	if err != nil {
		return err
	}
	shard.SetOwnerReferences([]metav1.OwnerReference{controllerRef(gw, "PopulationGateway")})
	if exists && upToDate(shard, live) {
		memo.shardWritten(d.Index, gw.UID, d.Version, live.ResourceVersion)
		return nil
	}
	if r.echo != nil {
		// Before the write: its watch event may arrive before Apply returns.
		r.echo.remember(shard)
	}
	// A ConfigMap of that name made by someone else (unlabelled, so not
	// cached) is not taken over: its data keys would otherwise stay beside
	// the policy's.
	var existing client.Object
	if exists {
		existing = live
	}
	_, resourceVersion, err := r.ownedWriter().write(ctx, shard, existing, gatewayOwns(gw), readFirst)
	if err != nil {
		return err
	}
	memo.shardWritten(d.Index, gw.UID, d.Version, resourceVersion)
	return nil
}

// deleteOtherShards removes the gateway's shards that hold no entry any more.
func (r *PopulationGatewayReconciler) deleteOtherShards(ctx context.Context, gw *popv1.PopulationGateway, docs []render.ShardDocument) error {
	keep := make(map[string]bool, len(docs))
	for _, d := range docs {
		keep[render.ShardName(gw.Name, d.Index)] = true
	}
	var list corev1.ConfigMapList
	if err := r.Client.List(ctx, &list, client.InNamespace(gw.Namespace),
		client.MatchingLabels{render.LabelGateway: render.GatewayLabelValue(gw.Name)}); err != nil {
		return fmt.Errorf("listing policy shards of %s/%s: %w", gw.Namespace, gw.Name, err)
	}
	for i := range list.Items {
		cm := &list.Items[i]
		if keep[cm.Name] || metav1ControllerName(cm, "PopulationGateway") != gw.Name {
			continue
		}
		if err := r.Client.Delete(ctx, cm); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("deleting policy shard %s/%s: %w", cm.Namespace, cm.Name, err)
		}
	}
	return nil
}
