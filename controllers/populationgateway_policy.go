package controllers

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/internal/render"
)

// reconcilePolicy reports the gateway's policy as its shards hold it. The
// PolicyShardReconciler writes each shard; this sums the counts each shard
// carries in its annotations (agencies, and those with access) and
// combines their versions into status.policyVersion, without decoding
// them: 64 cached objects, whatever the number of connections.
func (r *PopulationGatewayReconciler) reconcilePolicy(ctx context.Context, s *gatewayState) error {
	var list corev1.ConfigMapList
	if err := r.Client.List(ctx, &list, client.InNamespace(s.gw.Namespace),
		client.MatchingLabels{render.LabelGateway: render.GatewayLabelValue(s.gw.Name)}); err != nil {
		return fmt.Errorf("listing policy shards of %s/%s: %w", s.gw.Namespace, s.gw.Name, err)
	}
	var docs []render.ShardDocument
	var uncounted []string
	agencies := 0
	for i := range list.Items {
		cm := &list.Items[i]
		index, ok := render.ShardIndexOf(s.gw.Name, cm.Name)
		if !ok || !gatewayOwns(s.gw)(cm) {
			continue
		}
		d, ok := shardCounts(cm, index)
		if !ok {
			uncounted = append(uncounted, cm.Name)
		}
		docs = append(docs, d)
		agencies += d.Agencies
		s.activeConnections += int32(d.Active)
	}
	// In index order, as render.PolicyVersion expects.
	slices.SortFunc(docs, func(a, b render.ShardDocument) int { return a.Index - b.Index })
	s.policyVersion = render.PolicyVersion(s.gw.Name, docs)
	switch failed := r.failures.of(client.ObjectKeyFromObject(s.gw)); {
	case len(failed) > 0:
		s.setCondition(popv1.ConditionPolicyReady, metav1.ConditionFalse, popv1.ReasonPending,
			"Writing the policy shards failed and will be retried: "+strings.Join(failed, "; "))
	case len(uncounted) > 0:
		// Written by an operator before the counts; the shard reconciler
		// rewrites them, and each rewrite brings this reconciler back.
		slices.Sort(uncounted)
		s.setCondition(popv1.ConditionPolicyReady, metav1.ConditionFalse, popv1.ReasonPending,
			"Waiting for the policy shards to be rewritten with their counts: "+strings.Join(uncounted, ", "))
	case s.catalog == nil:
		s.setCondition(popv1.ConditionPolicyReady, metav1.ConditionFalse, popv1.ReasonCatalogNotFound, fmt.Sprintf(
			"FieldCatalog %q (spec.catalogRef) does not exist, so no connection is admitted; create it or correct spec.catalogRef.",
			s.gw.Spec.CatalogRef.Name))
	default:
		s.setCondition(popv1.ConditionPolicyReady, metav1.ConditionTrue, popv1.ReasonProgrammed, fmt.Sprintf(
			"%d agencies (%d with access) are written to %d policy shards, version %s.",
			agencies, s.activeConnections, len(docs), s.policyVersion))
	}
	return nil
}

// shardCounts reads a shard's version and counts from its annotations;
// false when a count is missing or not a count (a shard written before the
// counts, or edited by hand: the shard reconciler rewrites it).
func shardCounts(cm *corev1.ConfigMap, index int) (render.ShardDocument, bool) {
	d := render.ShardDocument{Index: index, Version: cm.Annotations[render.AnnotationPolicyVersion]}
	agencies, err1 := strconv.Atoi(cm.Annotations[render.AnnotationPolicyAgencies])
	active, err2 := strconv.Atoi(cm.Annotations[render.AnnotationPolicyActive])
	if err1 != nil || err2 != nil || agencies < 0 || active < 0 || active > agencies {
		return d, false
	}
	d.Agencies, d.Active = agencies, active
	return d, true
}
