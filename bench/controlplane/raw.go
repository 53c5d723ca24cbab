package main

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/uuid"
	"sigs.k8s.io/controller-runtime/pkg/client"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/gateway/policy"
	"github.com/popconnect/popconnect/internal/render"
)

// rawCreate is the limit the operator is compared with: a plain client,
// with the manager's request rate and concurrency, creating the objects the
// operator creates for n connections (a Certificate and a NetworkPolicy
// each, and the gateway's policy shards), rendered by the same functions.
// It writes nothing else (no status), reads nothing, and knows the desired
// state up front. It returns the elapsed time and how many objects it made.
func rawCreate(ctx context.Context, c client.Client, ns string, n, workers int, fields []popv1.FieldPath, gw *popv1.PopulationGateway) (time.Duration, int, error) {
	gw = gw.DeepCopy()
	gw.Namespace = ns
	gw.UID = uuid.NewUUID()
	yes := true
	gwRef := metav1.OwnerReference{APIVersion: popv1.GroupVersion.String(), Kind: "PopulationGateway",
		Name: gw.Name, UID: gw.UID, Controller: &yes, BlockOwnerDeletion: &yes}

	start := time.Now()
	conns := make([]*popv1.AgencyConnection, n)
	entries := make([]policy.Agency, n)
	for i := range n {
		conns[i] = connection(ns, i, fields)
		conns[i].UID = types.UID(uuid.NewUUID())
		entries[i] = render.PolicyEntry(conns[i], false, nil)
	}
	shards, err := render.PolicyShards(gw, entries)
	if err != nil {
		return 0, 0, fmt.Errorf("rendering shards: %w", err)
	}
	total := 2*n + len(shards)
	err = parallel(ctx, total, workers, func(ctx context.Context, i int) error {
		var obj client.Object
		switch {
		case i < 2*n && i%2 == 0:
			conn := conns[i/2]
			cert := render.ClientCertificate(conn)
			cert.OwnerReferences = []metav1.OwnerReference{{APIVersion: popv1.GroupVersion.String(),
				Kind: "AgencyConnection", Name: conn.Name, UID: conn.UID, Controller: &yes, BlockOwnerDeletion: &yes}}
			obj = cert
		case i < 2*n:
			conn := conns[i/2]
			np := render.ConnectionNetworkPolicy(conn, gw)
			np.Annotations = map[string]string{"popconnect.io/agency-connection-name": conn.Name}
			obj = np
		default:
			cm := shards[i-2*n]
			cm.OwnerReferences = []metav1.OwnerReference{gwRef}
			obj = cm
		}
		// Not the operator's label: the manager, started later, caches
		// what carries it, and deleting 10,000 objects in one request
		// times out. The objects stay; nothing watches them.
		labels := obj.GetLabels()
		labels[render.LabelManagedBy] = "bench-raw"
		obj.SetLabels(labels)
		if err := c.Create(ctx, obj); err != nil {
			return fmt.Errorf("creating %T %s: %w", obj, obj.GetName(), err)
		}
		return nil
	})
	return time.Since(start), total, err
}
