package controllers

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/gateway/policy"
	"github.com/popconnect/popconnect/internal/admission"
	"github.com/popconnect/popconnect/internal/render"
)

// reconcilePolicy renders the policy from every admitted connection of the
// gateway and writes the shards that changed. A connection with a problem
// (unknown field, missing legal basis, agency code owned elsewhere), or
// being deleted, is left out; a suspended or expired one is kept, denied.
func (r *PopulationGatewayReconciler) reconcilePolicy(ctx context.Context, s *gatewayState) error {
	var entries []policy.Agency
	if s.catalog != nil {
		var err error
		if entries, err = r.admittedEntries(ctx, s); err != nil {
			return err
		}
	}
	shards, err := render.PolicyShards(s.gw, entries)
	if err != nil {
		return err
	}
	keep := map[string]bool{}
	for _, shard := range shards {
		keep[shard.Name] = true
		shard.SetOwnerReferences([]metav1.OwnerReference{controllerRef(s.gw, "PopulationGateway")})
		if r.echo != nil {
			// Before the write: its watch event may arrive before Apply returns.
			r.echo.remember(shard)
		}
		if err := r.applyOwned(ctx, s.gw, shard); err != nil {
			s.setCondition(popv1.ConditionPolicyReady, metav1.ConditionFalse, popv1.ReasonPending,
				"Writing the policy shards failed and will be retried: "+err.Error())
			return err
		}
	}
	if err := r.deleteOtherShards(ctx, s.gw, keep); err != nil {
		return err
	}
	s.policyVersion = render.PolicyVersion(shards)
	if s.catalog == nil {
		s.setCondition(popv1.ConditionPolicyReady, metav1.ConditionFalse, popv1.ReasonCatalogNotFound, fmt.Sprintf(
			"FieldCatalog %q (spec.catalogRef) does not exist, so no connection is admitted; create it or correct spec.catalogRef.",
			s.gw.Spec.CatalogRef.Name))
		return nil
	}
	s.setCondition(popv1.ConditionPolicyReady, metav1.ConditionTrue, popv1.ReasonProgrammed, fmt.Sprintf(
		"%d agencies (%d with access) are written to %d policy shards, version %s.",
		len(entries), s.activeConnections, len(shards), s.policyVersion))
	return nil
}

func (r *PopulationGatewayReconciler) admittedEntries(ctx context.Context, s *gatewayState) ([]policy.Agency, error) {
	// Read-only views of the cached objects: this runs on every connection
	// change, and deep-copying 10,000 connections (and each one's peers)
	// every time is pure garbage. Nothing below modifies them
	// (PolicyEntry copies what it keeps).
	conns, err := connectionsOfGateway(ctx, r.Client, s.gw.Namespace, s.gw.Name, client.UnsafeDisableDeepCopy)
	if err != nil {
		return nil, err
	}
	catalog := admission.IndexCatalog(s.catalog)
	entries := make([]policy.Agency, 0, len(conns))
	for i := range conns {
		conn := &conns[i]
		if !conn.DeletionTimestamp.IsZero() || catalog.CheckFields(conn) != nil {
			continue
		}
		peers, err := connectionsWithCode(ctx, r.Client, conn.Spec.AgencyCode, client.UnsafeDisableDeepCopy)
		if err != nil {
			return nil, err
		}
		if admission.CheckAgencyCode(conn, peers) != nil {
			continue
		}
		deny := conn.Spec.Suspended || admission.Expired(conn, s.now)
		if !deny {
			s.activeConnections++
			if conn.Spec.ValidUntil != nil {
				// Rewrite the entry as denied when the agreement ends.
				s.wakeAt = append(s.wakeAt, conn.Spec.ValidUntil.Time)
			}
		}
		entries = append(entries, render.PolicyEntry(conn, deny))
	}
	return entries, nil
}

// deleteOtherShards removes the gateway's shards that hold no entry any more.
func (r *PopulationGatewayReconciler) deleteOtherShards(ctx context.Context, gw *popv1.PopulationGateway, keep map[string]bool) error {
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
