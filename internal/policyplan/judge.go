package policyplan

import (
	"fmt"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/internal/admission"
	"github.com/popconnect/popconnect/internal/render"
)

// judge holds the gateway's rules, compiled once for every connection.
type judge struct {
	in         Input
	catalog    *admission.CatalogIndex
	namespaces *admission.NamespaceRule
	privileges *admission.PrivilegeRule
	// claims counts the connections that claim each agency code; only
	// codes with more than one claimant need the ownership rule.
	claims map[string]int
	// peersOf are the claimants of each contested code, gathered once.
	peersOf map[string][]*popv1.AgencyConnection
}

func newJudge(in Input) *judge {
	j := &judge{in: in, claims: make(map[string]int, len(in.Connections)), peersOf: map[string][]*popv1.AgencyConnection{}}
	for _, c := range in.Connections {
		j.claims[c.Spec.AgencyCode]++
	}
	if in.Gateway != nil {
		j.namespaces = admission.CompileNamespaceRule(in.Gateway)
		j.privileges = admission.CompilePrivilegeRule(in.Gateway)
	}
	if in.Catalog != nil {
		j.catalog = admission.IndexCatalog(in.Catalog)
	}
	return j
}

// judge decides one connection's verdict. The order of the checks is the
// order problems are reported in: identity first (the agency code, then
// the namespace), because a refused identity gets no certificate and no
// network access either; then the gateway and catalog; then what the
// connection asks for (privileges, fields).
func (j *judge) judge(conn *popv1.AgencyConnection) Verdict {
	v := Verdict{Connection: conn, gateway: j.in.GatewayKey}
	addProblem := func(p *admission.Problem) {
		if p != nil && v.Problem == nil {
			v.Problem = p
		}
	}
	if j.claims[conn.Spec.AgencyCode] > 1 {
		if p := admission.CheckAgencyCode(conn, j.peers(conn.Spec.AgencyCode)); p != nil {
			addProblem(p)
			v.IdentityRefused = true
		}
	}
	if j.namespaces != nil {
		if p := j.namespaces.Check(conn.Namespace, j.in.NamespaceLabels[conn.Namespace]); p != nil {
			addProblem(p)
			v.IdentityRefused = true
		}
	}
	switch {
	case j.in.Gateway == nil:
		p := &admission.Problem{Reason: popv1.ReasonGatewayNotFound, Message: fmt.Sprintf(
			"spec.gatewayRef: PopulationGateway %s does not exist; create it or correct spec.gatewayRef", j.in.GatewayKey)}
		v.fields = fieldsVerdict{unknown: p}
		addProblem(p)
	case j.catalog == nil:
		p := &admission.Problem{Reason: popv1.ReasonCatalogNotFound, Message: fmt.Sprintf(
			"FieldCatalog %q, the catalog of gateway %s, does not exist; create it or correct the gateway's spec.catalogRef",
			j.in.Gateway.Spec.CatalogRef.Name, j.in.GatewayKey)}
		v.fields = fieldsVerdict{unknown: p}
		addProblem(p)
	default:
		addProblem(j.privileges.Check(conn))
		v.fields = fieldsVerdict{catalog: j.in.Catalog.Name, problem: j.catalog.CheckFields(conn)}
		addProblem(v.fields.problem)
	}
	v.expired = admission.Expired(conn, j.in.Now)
	v.Denied = conn.Spec.Suspended || v.expired
	if vu := conn.Spec.ValidUntil; vu != nil && !conn.Spec.Suspended && vu.After(j.in.Now) {
		// The verdict turns to Expired then, and the entry to denied.
		v.RequeueAt = vu.Time
	}
	if v.Admitted() {
		if next := v.computePins(j.in.Now); !next.IsZero() && (v.RequeueAt.IsZero() || next.Before(v.RequeueAt)) {
			// The previous certificate's pin is dropped when its grace ends.
			v.RequeueAt = next
		}
	}
	return v
}

// peers are the connections that claim code, for the ownership rule. A
// contested code is rare, so its claimants are gathered when first needed
// rather than indexed for every code.
func (j *judge) peers(code string) []*popv1.AgencyConnection {
	if out, ok := j.peersOf[code]; ok {
		return out
	}
	var out []*popv1.AgencyConnection
	for _, c := range j.in.Connections {
		if c.Spec.AgencyCode == code {
			out = append(out, c)
		}
	}
	j.peersOf[code] = out
	return out
}

// shardOf is the index and name of the shard an agency's entry lives in.
func shardOf(gatewayName, agencyCode string) (int, string) {
	i := render.ShardIndex(agencyCode)
	return i, render.ShardName(gatewayName, i)
}
