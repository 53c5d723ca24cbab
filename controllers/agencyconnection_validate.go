package controllers

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/internal/admission"
	"github.com/popconnect/popconnect/internal/render"
)

// resolve finds the connection's gateway and the gateway's catalog.
func (r *AgencyConnectionReconciler) resolve(ctx context.Context, s *connState) error {
	ns, name := render.GatewayKey(s.conn)
	gw := &popv1.PopulationGateway{}
	found, err := getCached(ctx, r.Client, types.NamespacedName{Namespace: ns, Name: name}, gw)
	if err != nil || !found {
		return err
	}
	s.gateway = gw
	catalog := &popv1.FieldCatalog{}
	found, err = getCached(ctx, r.Client, types.NamespacedName{Name: gw.Spec.CatalogRef.Name}, catalog)
	if err != nil || !found {
		return err
	}
	s.catalog = catalog
	return nil
}

// validate applies the agency-code ownership rule, then checks the fields
// against the catalog; the first problem found is the one reported in Ready.
func (r *AgencyConnectionReconciler) validate(ctx context.Context, s *connState) error {
	peers, err := connectionsWithCode(ctx, r.Client, s.conn.Spec.AgencyCode)
	if err != nil {
		return err
	}
	if p := admission.CheckAgencyCode(s.conn, peers); p != nil {
		s.problem, s.identityRefused = p, true
	}
	if s.gateway != nil {
		if err := r.checkNamespace(ctx, s); err != nil {
			return err
		}
	}
	ns, name := render.GatewayKey(s.conn)
	switch {
	case s.gateway == nil:
		p := &admission.Problem{Reason: popv1.ReasonGatewayNotFound, Message: fmt.Sprintf(
			"spec.gatewayRef: PopulationGateway %s/%s does not exist; create it or correct spec.gatewayRef", ns, name)}
		s.setCondition(popv1.ConditionFieldsValid, metav1.ConditionUnknown, p.Reason, p.Message)
		s.addProblem(p)
	case s.catalog == nil:
		p := &admission.Problem{Reason: popv1.ReasonCatalogNotFound, Message: fmt.Sprintf(
			"FieldCatalog %q, the catalog of gateway %s/%s, does not exist; create it or correct the gateway's spec.catalogRef",
			s.gateway.Spec.CatalogRef.Name, ns, name)}
		s.setCondition(popv1.ConditionFieldsValid, metav1.ConditionUnknown, p.Reason, p.Message)
		s.addProblem(p)
	default:
		if p := admission.CompilePrivilegeRule(s.gateway).Check(s.conn); p != nil {
			s.addProblem(p)
		}
		if p := admission.CheckFields(s.conn, s.catalog); p != nil {
			s.setCondition(popv1.ConditionFieldsValid, metav1.ConditionFalse, p.Reason, p.Message)
			s.addProblem(p)
		} else {
			s.setCondition(popv1.ConditionFieldsValid, metav1.ConditionTrue, popv1.ReasonFieldsValid,
				fmt.Sprintf("Every allowed field is in FieldCatalog %q.", s.catalog.Name))
		}
	}
	return nil
}

// addProblem records p unless an earlier problem is already recorded.
func (s *connState) addProblem(p *admission.Problem) {
	if s.problem == nil {
		s.problem = p
	}
}

// checkNamespace applies the gateway's allowedConnections.namespaces: a
// connection from a namespace it does not admit is refused like one whose
// agency code is someone else's (no certificate, no network access, no
// policy entry), since anyone who may create it in any namespace would
// otherwise get a certificate the gateway trusts.
func (r *AgencyConnectionReconciler) checkNamespace(ctx context.Context, s *connState) error {
	p, err := namespaceProblem(admission.CompileNamespaceRule(s.gateway), s.conn.Namespace, namespaceLabelReader(ctx, r.Client))
	if err != nil {
		return err
	}
	if p != nil {
		s.addProblem(p)
		s.identityRefused = true
	}
	return nil
}
