package admission

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
)

// NamespaceRule is a gateway's spec.allowedConnections.namespaces, compiled
// once to check many connections (a gateway's policy render checks every
// one of them).
type NamespaceRule struct {
	gwNamespace, gwName string
	from                popv1.NamespacesFrom
	selector            labels.Selector
	selectorErr         error
}

// CompileNamespaceRule compiles the gateway's rule; omitted means Same.
func CompileNamespaceRule(gw *popv1.PopulationGateway) *NamespaceRule {
	rule := &NamespaceRule{gwNamespace: gw.Namespace, gwName: gw.Name, from: popv1.NamespacesFromSame}
	ac := gw.Spec.AllowedConnections
	if ac == nil || ac.Namespaces == nil {
		return rule
	}
	if ac.Namespaces.From != "" {
		rule.from = ac.Namespaces.From
	}
	if rule.from == popv1.NamespacesFromSelector {
		if ac.Namespaces.Selector == nil {
			rule.selectorErr = fmt.Errorf("spec.allowedConnections.namespaces.selector is not set")
		} else {
			rule.selector, rule.selectorErr = metav1.LabelSelectorAsSelector(ac.Namespaces.Selector)
		}
	}
	return rule
}

// NeedsLabels reports whether Check reads the namespace's labels.
func (r *NamespaceRule) NeedsLabels() bool { return r.from == popv1.NamespacesFromSelector }

// Check decides whether a connection from namespace ns, whose labels are
// nsLabels (read only when NeedsLabels), may use the gateway. Anything the
// rule does not clearly admit is refused: an unknown "from" or a selector
// that does not parse admits nobody from another namespace.
func (r *NamespaceRule) Check(ns string, nsLabels map[string]string) *Problem {
	if ns == r.gwNamespace {
		return nil
	}
	switch r.from {
	case popv1.NamespacesFromAll:
		return nil
	case popv1.NamespacesFromSelector:
		if r.selectorErr == nil && r.selector.Matches(labels.Set(nsLabels)) {
			return nil
		}
		why := "its labels do not match the gateway's spec.allowedConnections.namespaces.selector"
		if r.selectorErr != nil {
			why = "the gateway's spec.allowedConnections.namespaces.selector is invalid (" + r.selectorErr.Error() + ")"
		}
		return &Problem{
			Reason: popv1.ReasonNamespaceNotAllowed,
			Message: fmt.Sprintf("PopulationGateway %s/%s does not accept connections from namespace %q: %s; no certificate, network access or policy entry is made. Ask the gateway's owner to label namespace %q to match the selector, or create the connection in an admitted namespace",
				r.gwNamespace, r.gwName, ns, why, ns),
		}
	default:
		return &Problem{
			Reason: popv1.ReasonNamespaceNotAllowed,
			Message: fmt.Sprintf("PopulationGateway %s/%s accepts connections from its own namespace only (spec.allowedConnections.namespaces.from: %s), not from namespace %q; no certificate, network access or policy entry is made. Create the connection in namespace %q, or ask the gateway's owner to set spec.allowedConnections.namespaces to admit namespace %q (from: All, or from: Selector)",
				r.gwNamespace, r.gwName, r.from, ns, r.gwNamespace, ns),
		}
	}
}

// CheckNamespace is CompileNamespaceRule(gw).Check for one connection.
func CheckNamespace(conn *popv1.AgencyConnection, gw *popv1.PopulationGateway, nsLabels map[string]string) *Problem {
	return CompileNamespaceRule(gw).Check(conn.Namespace, nsLabels)
}
