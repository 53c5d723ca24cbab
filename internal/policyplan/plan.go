// Package policyplan is the policy compiler: from a gateway, its
// FieldCatalog and the AgencyConnections that reference it, it decides each
// connection's verdict (admitted or refused and why, allowed or denied, the
// conditions users read, when the verdict changes by itself) and the
// gateway's policy shards. It is pure: it reads no API server and keeps no
// state, so the policy shard reconciler (which writes the shards) and
// the AgencyConnection reconciler (which reports the conditions) call the
// same function and cannot disagree.
package policyplan

import (
	"time"

	"k8s.io/apimachinery/pkg/types"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/internal/admission"
	"github.com/popconnect/popconnect/internal/render"
)

// Input is what a plan is computed from. Nothing in it is modified, so a
// caller may pass the informer cache's own objects.
type Input struct {
	// GatewayKey names the gateway; Gateway is nil when it does not exist.
	GatewayKey types.NamespacedName
	Gateway    *popv1.PopulationGateway
	// Catalog is the gateway's FieldCatalog; nil when it does not exist.
	Catalog *popv1.FieldCatalog
	// Connections are the connections to judge (those that reference the
	// gateway) and, for the agency-code rule, every other connection,
	// cluster-wide, that claims one of their codes. Others are ignored.
	Connections []*popv1.AgencyConnection
	// NamespaceLabels are the labels of the connections' namespaces, needed
	// only when NeedsNamespaceLabels; a namespace missing here has none.
	NamespaceLabels map[string]map[string]string
	// Now is the moment the plan is for: validUntil and certificate grace
	// periods are compared with it.
	Now time.Time
}

// NeedsNamespaceLabels reports whether the gateway admits connections of
// other namespaces by a label selector, so that Plan reads Input.NamespaceLabels.
func NeedsNamespaceLabels(gw *popv1.PopulationGateway) bool {
	return gw != nil && admission.CompileNamespaceRule(gw).NeedsLabels()
}

// Result is a plan: a verdict for every connection of the gateway that is
// not being deleted, in the order of Input.Connections.
type Result struct {
	Gateway  types.NamespacedName
	Verdicts []Verdict
}

// Plan judges every connection of in.Gateway. A connection gets an entry
// in the policy unless it has a problem only its author can fix (a
// namespace the gateway does not admit, a privilege it did not grant, an
// unknown or unjustified field, an agency code owned elsewhere, a missing
// gateway or catalog); a suspended or expired one keeps its entry, denied,
// so that the gateway refuses it explicitly.
func Plan(in Input) *Result {
	j := newJudge(in)
	// Room for every connection: at 10,000, growing the slice by doubling
	// would copy the verdicts about a dozen times.
	res := &Result{Gateway: in.GatewayKey, Verdicts: make([]Verdict, 0, len(in.Connections))}
	for _, conn := range in.Connections {
		if render.GatewayKey(conn) != in.GatewayKey {
			continue
		}
		if !conn.DeletionTimestamp.IsZero() {
			continue // its entry goes with it
		}
		res.Verdicts = append(res.Verdicts, j.judge(conn))
	}
	return res
}

// Verdict returns the verdict of the connection key, if it was judged.
func (r *Result) Verdict(key types.NamespacedName) (*Verdict, bool) {
	for i := range r.Verdicts {
		if c := r.Verdicts[i].Connection; c.Namespace == key.Namespace && c.Name == key.Name {
			return &r.Verdicts[i], true
		}
	}
	return nil, false
}

// Documents encodes the admitted connections' entries into the gateway's
// shard documents (render.EncodeShards): only shards that hold an entry,
// in index order.
func (r *Result) Documents() ([]render.ShardDocument, error) {
	var entries []render.EncodedEntry
	for i := range r.Verdicts {
		v := &r.Verdicts[i]
		if !v.Admitted() {
			continue
		}
		e, err := render.EncodeEntry(v.Entry())
		if err != nil {
			return nil, err
		}
		entries = append(entries, e)
	}
	return render.EncodeShards(entries), nil
}
