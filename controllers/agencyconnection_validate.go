package controllers

import (
	"context"
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/internal/policyplan"
	"github.com/popconnect/popconnect/internal/render"
)

// resolve finds the connection's gateway and the gateway's catalog.
func (r *AgencyConnectionReconciler) resolve(ctx context.Context, s *connState) error {
	gw := &popv1.PopulationGateway{}
	found, err := getCached(ctx, r.Client, render.GatewayKey(s.conn), gw)
	if err != nil || !found {
		return err
	}
	s.gateway = gw
	s.catalog, err = catalogOf(ctx, r.Client, gw)
	return err
}

// validate asks the policy compiler for the connection's verdict, as the
// shard reconciler does for the connection's shard, so that the two cannot disagree:
// the connection and every other that claims its agency code (cluster-wide,
// for the ownership rule) are planned against its gateway and catalog.
func (r *AgencyConnectionReconciler) validate(ctx context.Context, s *connState) error {
	peers, err := connectionsWithCode(ctx, r.Client, s.conn.Spec.AgencyCode)
	if err != nil {
		return err
	}
	key := client.ObjectKeyFromObject(s.conn)
	conns := make([]*popv1.AgencyConnection, 0, len(peers)+1)
	conns = append(conns, s.conn) // as read now, not as the cache holds it
	for i := range peers {
		if client.ObjectKeyFromObject(&peers[i]) != key {
			conns = append(conns, &peers[i])
		}
	}
	labels, err := namespaceLabelsOf(ctx, r.Client, s.gateway, conns[:1])
	if err != nil {
		return err
	}
	plan := policyplan.Plan(policyplan.Input{
		GatewayKey: render.GatewayKey(s.conn), Gateway: s.gateway, Catalog: s.catalog,
		Connections: conns, NamespaceLabels: labels, Now: s.now,
	})
	v, ok := plan.Verdict(key)
	if !ok {
		return fmt.Errorf("the policy plan has no verdict on connection %s", key)
	}
	s.verdict = v
	s.setPlanned(v.FieldsValid())
	s.wakeUpAt(v.RequeueAt)
	return nil
}
