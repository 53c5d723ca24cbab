package admission

import (
	"fmt"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
)

// PrivilegeRule is a gateway's spec.privilegedConnections, compiled once to
// check many connections.
type PrivilegeRule struct {
	gateway         string // namespace/name, for messages
	accessHistory   map[popv1.ConnectionReference]bool
	disclosureDelay map[popv1.ConnectionReference]bool
}

// CompilePrivilegeRule compiles the gateway's rule; omitted grants nothing.
func CompilePrivilegeRule(gw *popv1.PopulationGateway) *PrivilegeRule {
	r := &PrivilegeRule{gateway: gw.Namespace + "/" + gw.Name,
		accessHistory: map[popv1.ConnectionReference]bool{}, disclosureDelay: map[popv1.ConnectionReference]bool{}}
	if p := gw.Spec.PrivilegedConnections; p != nil {
		for _, c := range p.AccessHistory {
			r.accessHistory[c] = true
		}
		for _, c := range p.DisclosureDelay {
			r.disclosureDelay[c] = true
		}
	}
	return r
}

// Check refuses a connection that asks for a privilege the gateway's owner
// did not grant it: the AccessHistory operation, or a disclosureDelay above
// zero. The connection's own namespace is the agency's, whose editors
// could otherwise read every citizen's access history, or hide their own
// reads from the citizens, by editing their connection.
func (r *PrivilegeRule) Check(conn *popv1.AgencyConnection) *Problem {
	ref := popv1.ConnectionReference{Namespace: conn.Namespace, Name: conn.Name}
	for _, op := range conn.Spec.AllowedOperations {
		if op == popv1.OperationAccessHistory && !r.accessHistory[ref] {
			return &Problem{Reason: popv1.ReasonPrivilegeNotGranted, Message: fmt.Sprintf(
				"spec.allowedOperations includes AccessHistory, which gateway %s grants only to the connections its spec.privilegedConnections.accessHistory names; "+
					"ask the gateway's owner to add %s/%s there, or remove the operation", r.gateway, conn.Namespace, conn.Name)}
		}
	}
	if d := conn.Spec.DisclosureDelay; d != nil && d.Duration > 0 && !r.disclosureDelay[ref] {
		return &Problem{Reason: popv1.ReasonPrivilegeNotGranted, Message: fmt.Sprintf(
			"spec.disclosureDelay hides this connection's reads from the citizens, which gateway %s allows only for the connections its spec.privilegedConnections.disclosureDelay names; "+
				"ask the gateway's owner to add %s/%s there, or remove the delay", r.gateway, conn.Namespace, conn.Name)}
	}
	return nil
}
