package controllers

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/internal/admission"
	"github.com/popconnect/popconnect/internal/render"
)

// reconcilePolicy renders the policy from every admitted connection of the
// gateway and writes the shards that changed. A connection with a problem
// (namespace not admitted, unknown field, missing legal basis, agency code
// owned elsewhere), or being deleted, is left out; a suspended or expired
// one is kept, denied.
func (r *PopulationGatewayReconciler) reconcilePolicy(ctx context.Context, s *gatewayState) error {
	memo := r.memo.gateway(client.ObjectKeyFromObject(s.gw))
	var entries []render.EncodedEntry
	if s.catalog != nil {
		var err error
		if entries, err = r.admittedEntries(ctx, s, memo); err != nil {
			return err
		}
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

// admittedEntries computes the entries of the gateway's admitted
// connections. It reads every connection once, cluster-wide, because the
// agency-code rule compares each connection with the others that use its
// code, on any gateway: counting claims per code in that one list leaves
// the index lookup to the few codes with more than one claimant, instead of
// one per connection (10,000 lists of one at 10,000 connections).
func (r *PopulationGatewayReconciler) admittedEntries(ctx context.Context, s *gatewayState, memo *gatewayMemo) ([]render.EncodedEntry, error) {
	// Read-only views of the cached objects: this runs on every connection
	// change, and deep-copying 10,000 connections every time is pure
	// garbage. Nothing below modifies them (PolicyEntry copies what it keeps).
	all, err := r.connections(ctx)
	if err != nil {
		return nil, err
	}
	claims := make(map[string]int, len(all))
	for _, conn := range all {
		claims[conn.Spec.AgencyCode]++
	}
	catalog, stamp := admission.IndexCatalog(s.catalog), stampOf(s.catalog)
	namespaces := admission.CompileNamespaceRule(s.gw)
	privileges := admission.CompilePrivilegeRule(s.gw)
	nsLabels := namespaceLabelReader(ctx, r.Client)
	entries := make([]render.EncodedEntry, 0, len(all))
	seen := make(map[types.UID]bool, len(all))
	for _, conn := range all {
		if ns, name := render.GatewayKey(conn); ns != s.gw.Namespace || name != s.gw.Name {
			continue
		}
		if !conn.DeletionTimestamp.IsZero() {
			continue
		}
		if p, err := namespaceProblem(namespaces, conn.Namespace, nsLabels); err != nil {
			return nil, err
		} else if p != nil {
			continue
		}
		if privileges.Check(conn) != nil {
			continue // a privilege its gateway did not grant it: no entry
		}
		if !memo.fieldsAdmitted(conn, stamp, func() bool { return catalog.CheckFields(conn) == nil }) {
			continue
		}
		if claims[conn.Spec.AgencyCode] > 1 {
			// Rare: only then are the code's claimants looked up.
			peers, err := connectionsWithCode(ctx, r.Client, conn.Spec.AgencyCode, client.UnsafeDisableDeepCopy)
			if err != nil {
				return nil, err
			}
			if admission.CheckAgencyCode(conn, peers) != nil {
				continue
			}
		}
		deny := conn.Spec.Suspended || admission.Expired(conn, s.now)
		if !deny {
			s.activeConnections++
			if conn.Spec.ValidUntil != nil {
				// Rewrite the entry as denied when the agreement ends.
				s.wakeAt = append(s.wakeAt, conn.Spec.ValidUntil.Time)
			}
		}
		pins, next := render.CertificatePins(conn.Status.Certificate, conn.Spec.ClientCertificate.RevokedSerialNumbers, s.now)
		if !next.IsZero() {
			// Drop the previous certificate's pin when its grace ends.
			s.wakeAt = append(s.wakeAt, next)
		}
		entry, err := memo.entry(conn, deny, pins)
		if err != nil {
			return nil, err
		}
		seen[conn.UID] = true
		entries = append(entries, entry)
	}
	memo.keepEntries(seen)
	return entries, nil
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
