package controllers

import (
	"unique"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
)

// The manager caches every AgencyConnection, decoded from JSON: each string
// is allocated on its own, and each slice grows by doubling while it is
// decoded. Most strings of a connection repeat across connections (field
// names, operations, condition types and reasons, the gateway, the issuer,
// often the purpose and legal basis). compactConnection, the connection
// cache's transform, makes the repeated strings share one copy and trims
// the slices to their length; the values are unchanged, so no reader can
// tell.

// compactConnection is the AgencyConnection cache's transform.
func compactConnection(obj any) (any, error) {
	obj, err := dropUnread(obj)
	conn, ok := obj.(*popv1.AgencyConnection)
	if err != nil || !ok {
		return obj, err
	}
	compactMeta(conn)
	spec := &conn.Spec
	spec.GatewayRef.Name, spec.GatewayRef.Namespace = intern(spec.GatewayRef.Name), intern(spec.GatewayRef.Namespace)
	spec.Purpose, spec.LegalBasis = intern(spec.Purpose), intern(spec.LegalBasis)
	spec.AllowedFields = internAll(spec.AllowedFields)
	spec.AllowedOperations = internAll(spec.AllowedOperations)
	issuer := &spec.ClientCertificate.IssuerRef
	issuer.Name, issuer.Kind, issuer.Group = intern(issuer.Name), intern(issuer.Kind), intern(issuer.Group)
	if len(conn.Status.Conditions) > 0 {
		conds := make([]metav1.Condition, len(conn.Status.Conditions))
		for i, c := range conn.Status.Conditions {
			c.Type, c.Status, c.Reason = intern(c.Type), intern(c.Status), intern(c.Reason)
			conds[i] = c
		}
		conn.Status.Conditions = conds
	}
	return conn, nil
}

// compactMeta interns what repeats across objects in their metadata: the
// namespace, finalizers, labels, and the owner references' API version and
// kind. Label maps are rebuilt at their size with interned keys and values.
func compactMeta(obj metav1.Object) {
	obj.SetNamespace(intern(obj.GetNamespace()))
	obj.SetFinalizers(internAll(obj.GetFinalizers()))
	if l := obj.GetLabels(); len(l) > 0 {
		m := make(map[string]string, len(l))
		for k, v := range l {
			m[intern(k)] = intern(v)
		}
		obj.SetLabels(m)
	}
	refs := obj.GetOwnerReferences()
	for i := range refs {
		refs[i].APIVersion, refs[i].Kind = intern(refs[i].APIVersion), intern(refs[i].Kind)
	}
}

// intern returns s backed by the runtime's canonical copy of its value
// (package unique). The runtime forgets a canonical copy once no handle
// to it remains, after a garbage collection; a string decoded later then
// gets a new one. So the sharing holds among the objects decoded between
// two collections (thousands at start), and is never worse than a copy per
// object, as without it.
func intern[S ~string](s S) S {
	if s == "" {
		return s
	}
	return S(unique.Make(string(s)).Value())
}

// internAll interns every element, in a slice of exactly their number.
func internAll[S ~string](in []S) []S {
	if len(in) == 0 {
		return in
	}
	out := make([]S, len(in))
	for i, s := range in {
		out[i] = intern(s)
	}
	return out
}
