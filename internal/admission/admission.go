// Package admission holds the rules, as pure functions, that decide whether
// an AgencyConnection may have access: its fields against the gateway's
// FieldCatalog, its agency code against every other connection that claims
// it, its namespace and privileges against the gateway's rules. The policy
// compiler (internal/policyplan) composes them into one verdict, which both
// reconcilers use.
package admission

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
)

// Problem is a reason a connection gets no access that only its author can
// fix; Reason is a condition reason of the API.
type Problem struct {
	Reason  string
	Message string
}

func (p *Problem) Error() string { return p.Reason + ": " + p.Message }

// CheckFields checks a connection's allowed fields against a catalog: every
// field must be in it, and a Sensitive field needs a legal basis.
func CheckFields(conn *popv1.AgencyConnection, catalog *popv1.FieldCatalog) *Problem {
	return IndexCatalog(catalog).CheckFields(conn)
}

// CatalogIndex is a catalog's fields by name, built once to check many
// connections (a gateway's policy render checks every one of them).
type CatalogIndex struct {
	name        string
	sensitivity map[popv1.FieldPath]popv1.Sensitivity
}

// IndexCatalog indexes a catalog's fields by name.
func IndexCatalog(catalog *popv1.FieldCatalog) *CatalogIndex {
	idx := &CatalogIndex{name: catalog.Name, sensitivity: make(map[popv1.FieldPath]popv1.Sensitivity, len(catalog.Spec.Fields))}
	for _, f := range catalog.Spec.Fields {
		idx.sensitivity[f.Name] = f.Sensitivity
	}
	return idx
}

// CheckFields is CheckFields against the indexed catalog.
func (idx *CatalogIndex) CheckFields(conn *popv1.AgencyConnection) *Problem {
	var unknown, sensitive []string
	for _, f := range conn.Spec.AllowedFields {
		s, ok := idx.sensitivity[f]
		switch {
		case !ok:
			unknown = append(unknown, string(f))
		case s == popv1.SensitivitySensitive:
			sensitive = append(sensitive, string(f))
		}
	}
	if len(unknown) > 0 {
		return &Problem{
			Reason: popv1.ReasonUnknownField,
			Message: fmt.Sprintf("spec.allowedFields: %s %s not in FieldCatalog %q; remove %s from allowedFields or add %s to the catalog",
				quoteList(unknown), isAre(unknown), idx.name, itThem(unknown), itThem(unknown)),
		}
	}
	if len(sensitive) > 0 && strings.TrimSpace(conn.Spec.LegalBasis) == "" {
		return &Problem{
			Reason: popv1.ReasonLegalBasisRequired,
			Message: fmt.Sprintf("spec.allowedFields: %s %s Sensitive in FieldCatalog %q; set spec.legalBasis to the law or agreement that allows reading %s, or remove %s",
				quoteList(sensitive), isAre(sensitive), idx.name, itThem(sensitive), itThem(sensitive)),
		}
	}
	return nil
}

// CheckAgencyCode applies the ownership rule of agency codes. A code is an
// identity that every gateway trusting the same CA accepts, so it belongs to
// the namespace of the oldest connection that uses it, cluster-wide; within
// that namespace, the oldest connection to a gateway keeps it on that
// gateway. peers are the connections that use the same code (conn itself
// may be among them); connections being deleted no longer count. Nothing
// is modified.
func CheckAgencyCode(conn *popv1.AgencyConnection, peers []*popv1.AgencyConnection) *Problem {
	claimants := []*popv1.AgencyConnection{conn}
	for _, p := range peers {
		if p.Spec.AgencyCode != conn.Spec.AgencyCode || p.DeletionTimestamp != nil ||
			(p.Namespace == conn.Namespace && p.Name == conn.Name) {
			continue
		}
		claimants = append(claimants, p)
	}
	sort.Slice(claimants, func(i, j int) bool { return older(claimants[i], claimants[j]) })
	owner := claimants[0]
	if owner.Namespace != conn.Namespace {
		return &Problem{
			Reason: popv1.ReasonDuplicateAgencyCode,
			Message: fmt.Sprintf("spec.agencyCode: %q belongs to namespace %q (AgencyConnection %s/%s is the oldest that uses it); no certificate is issued here: use another agency code, or manage this agency from namespace %q",
				conn.Spec.AgencyCode, owner.Namespace, owner.Namespace, owner.Name, owner.Namespace),
		}
	}
	gwNS, gwName := gatewayOf(conn)
	for _, c := range claimants {
		if c == conn {
			break
		}
		if ns, name := gatewayOf(c); c.Namespace == conn.Namespace && ns == gwNS && name == gwName {
			return &Problem{
				Reason: popv1.ReasonDuplicateAgencyCode,
				Message: fmt.Sprintf("spec.agencyCode: %q is already used on gateway %s/%s by AgencyConnection %s/%s, which is older and keeps it; use another agency code or delete one of the two connections",
					conn.Spec.AgencyCode, gwNS, gwName, c.Namespace, c.Name),
			}
		}
	}
	return nil
}

// Expired reports whether the connection's agreement has ended at now.
func Expired(conn *popv1.AgencyConnection, now time.Time) bool {
	return conn.Spec.ValidUntil != nil && !now.Before(conn.Spec.ValidUntil.Time)
}

// older orders connections by age. Creation times have a one-second
// resolution, so within a second the incumbent (a connection already
// admitted) wins, and a newcomer never takes a code from an agency that
// holds it; remaining ties are broken by namespace and name so every
// reader agrees.
func older(a, b *popv1.AgencyConnection) bool {
	ta, tb := a.CreationTimestamp.Time, b.CreationTimestamp.Time
	if !ta.Equal(tb) {
		return ta.Before(tb)
	}
	if ia, ib := incumbent(a), incumbent(b); ia != ib {
		return ia
	}
	if a.Namespace != b.Namespace {
		return a.Namespace < b.Namespace
	}
	return a.Name < b.Name
}

func gatewayOf(conn *popv1.AgencyConnection) (string, string) {
	ns := conn.Spec.GatewayRef.Namespace
	if ns == "" {
		ns = conn.Namespace
	}
	return ns, conn.Spec.GatewayRef.Name
}

func quoteList(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

func isAre(items []string) string {
	if len(items) == 1 {
		return "is"
	}
	return "are"
}

func itThem(items []string) string {
	if len(items) == 1 {
		return "it"
	}
	return "them"
}

// incumbent reports whether the connection was admitted: it has a Ready
// condition that is not a refusal of its agency code.
func incumbent(c *popv1.AgencyConnection) bool {
	ready := meta.FindStatusCondition(c.Status.Conditions, popv1.ConditionReady)
	return ready != nil && ready.Reason != popv1.ReasonDuplicateAgencyCode
}
