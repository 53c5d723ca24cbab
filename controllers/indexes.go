// Package controllers holds one reconciler per popconnect kind (FieldCatalog,
// PopulationGateway and AgencyConnection) and one per policy shard of a
// gateway (PolicyShardReconciler). Each reconciler computes the desired
// state with pure functions (internal/render, internal/admission) and applies
// it with server-side apply, writing nothing when nothing changed.
package controllers

import (
	"context"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/internal/render"
)

// Cache indexes, so that every mapping from one object to the objects that
// depend on it is a lookup, not a scan of 10,000 connections. client-go
// keeps a set per index value, per namespace and cluster-wide: an index
// with one value per object costs about 1 KiB per object, 10 MiB at 10,000
// connections. So the indexes with a value per connection index a bucket
// of it (bucket) instead.
const (
	// indexConnectionGateway indexes connections by "namespace/name" of their gateway.
	indexConnectionGateway = "popconnect.io/gateway"
	// indexConnectionShard indexes connections by the index of the policy
	// shard their entry belongs in (render.ShardIndex of the agency code),
	// on whichever gateway: a shard's reconcile, and a shard's change,
	// concern ~80 connections at 10,000, not all of its gateway's.
	indexConnectionShard = "popconnect.io/shard-index"
	// indexConnectionCode indexes connections by the bucket of their agency
	// code (codeBucket), to find a code's claimants (connectionsWithCode)
	// at every connection event and reconcile. Not by the shard index: a
	// list copies every connection it returns, and ~80 per call, three
	// calls per event, made 3 GB of garbage during a cold start at 10,000
	// (bench/README.md).
	indexConnectionCode = "popconnect.io/agency-code-bucket"
	// indexGatewayCatalog indexes gateways by the name of their FieldCatalog.
	indexGatewayCatalog = "popconnect.io/catalog"
	// indexNetworkPolicyConnection indexes the NetworkPolicies made for
	// connections by the bucket of their connection's "namespace/name". A
	// label selector would do, but the cache evaluates one against every
	// NetworkPolicy it holds: 10,000 per reconcile at 10,000 connections.
	indexNetworkPolicyConnection = "popconnect.io/connection-bucket"
	// indexBuckets is how many buckets the two bucket indexes have: two or
	// three objects in each at 10,000 connections, so a lookup copies
	// little, and at most 4,096 sets per index (two when every object has
	// a namespace of its own: per namespace and cluster-wide).
	indexBuckets = 4096
)

// codeBucket is the indexConnectionCode value of an agency code.
func codeBucket(code string) string {
	return bucket(code)
}

// connectionCodeBucket is the indexConnectionCode function.
func connectionCodeBucket(o client.Object) []string {
	return []string{codeBucket(o.(*popv1.AgencyConnection).Spec.AgencyCode)}
}

func bucket(s string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(s))
	return strconv.Itoa(int(h.Sum32() % indexBuckets))
}

// setupIndexes registers the cache indexes the reconcilers use.
func setupIndexes(ctx context.Context, mgr manager.Manager) error {
	idx := mgr.GetFieldIndexer()
	if err := idx.IndexField(ctx, &popv1.AgencyConnection{}, indexConnectionGateway, func(o client.Object) []string {
		return []string{render.GatewayKey(o.(*popv1.AgencyConnection)).String()}
	}); err != nil {
		return fmt.Errorf("indexing connections by gateway: %w", err)
	}
	if err := idx.IndexField(ctx, &popv1.AgencyConnection{}, indexConnectionShard, func(o client.Object) []string {
		return []string{strconv.Itoa(render.ShardIndex(o.(*popv1.AgencyConnection).Spec.AgencyCode))}
	}); err != nil {
		return fmt.Errorf("indexing connections by policy shard: %w", err)
	}
	if err := idx.IndexField(ctx, &popv1.AgencyConnection{}, indexConnectionCode, connectionCodeBucket); err != nil {
		return fmt.Errorf("indexing connections by agency code: %w", err)
	}
	if err := idx.IndexField(ctx, &popv1.PopulationGateway{}, indexGatewayCatalog, func(o client.Object) []string {
		return []string{o.(*popv1.PopulationGateway).Spec.CatalogRef.Name}
	}); err != nil {
		return fmt.Errorf("indexing gateways by catalog: %w", err)
	}
	if err := idx.IndexField(ctx, &networkingv1.NetworkPolicy{}, indexNetworkPolicyConnection, func(o client.Object) []string {
		if conn, ok := networkPolicyConnection(o); ok {
			return []string{bucket(conn.String())}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("indexing NetworkPolicies by connection: %w", err)
	}
	return nil
}

// networkPolicyConnection is the connection a NetworkPolicy was made for:
// the namespace from its label, the full name from its annotation (a label
// value is limited to 63 characters).
func networkPolicyConnection(o client.Object) (types.NamespacedName, bool) {
	ns, name := o.GetLabels()[render.LabelConnectionNamespace], o.GetAnnotations()[annotationConnectionName]
	return types.NamespacedName{Namespace: ns, Name: name}, ns != "" && name != ""
}

// connectionsWithCode lists every connection, cluster-wide, that claims a
// code: those of the code's bucket (two or three at 10,000 connections),
// filtered by code. The objects are the cache's own (no deep copy): callers
// only read them.
func connectionsWithCode(ctx context.Context, c client.Reader, code string) ([]popv1.AgencyConnection, error) {
	var list popv1.AgencyConnectionList
	if err := c.List(ctx, &list, client.UnsafeDisableDeepCopy,
		client.MatchingFields{indexConnectionCode: codeBucket(code)}); err != nil {
		return nil, fmt.Errorf("listing connections with agency code %s: %w", code, err)
	}
	return slices.DeleteFunc(list.Items, func(c popv1.AgencyConnection) bool { return c.Spec.AgencyCode != code }), nil
}

// catalogOf is the gateway's FieldCatalog; nil when it does not exist.
func catalogOf(ctx context.Context, c client.Reader, gw *popv1.PopulationGateway) (*popv1.FieldCatalog, error) {
	catalog := &popv1.FieldCatalog{}
	found, err := getCached(ctx, c, client.ObjectKey{Name: gw.Spec.CatalogRef.Name}, catalog)
	if err != nil || !found {
		return nil, err
	}
	return catalog, nil
}

// gatewaysOfCatalog lists the gateways that use a catalog.
func gatewaysOfCatalog(ctx context.Context, c client.Reader, catalog string) ([]popv1.PopulationGateway, error) {
	var list popv1.PopulationGatewayList
	if err := c.List(ctx, &list, client.MatchingFields{indexGatewayCatalog: catalog}); err != nil {
		return nil, fmt.Errorf("listing gateways of catalog %s: %w", catalog, err)
	}
	return list.Items, nil
}
