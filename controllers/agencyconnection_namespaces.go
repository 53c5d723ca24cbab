package controllers

import (
	"context"
	"fmt"
	"reflect"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/internal/policyplan"
	"github.com/popconnect/popconnect/internal/render"
)

// namespaceMeta is an empty Namespace metadata object: the operator reads
// namespaces' labels only (for allowedConnections.namespaces.selector), so
// it caches their metadata, not whole objects.
func namespaceMeta() *metav1.PartialObjectMetadata {
	ns := &metav1.PartialObjectMetadata{}
	ns.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
	return ns
}

// namespaceLabelsOf reads the labels of the namespaces of the gateway's
// connections, for policyplan, when gw admits namespaces by a selector
// (nil otherwise, gw nil too: no read at all). Each namespace is read
// once, from the cache; one that does not exist has no labels.
func namespaceLabelsOf(ctx context.Context, c client.Reader, gw *popv1.PopulationGateway, conns []*popv1.AgencyConnection) (map[string]map[string]string, error) {
	if !policyplan.NeedsNamespaceLabels(gw) {
		return nil, nil
	}
	out := map[string]map[string]string{}
	for _, conn := range conns {
		if _, ok := out[conn.Namespace]; ok {
			continue
		}
		if render.GatewayKey(conn) != client.ObjectKeyFromObject(gw) {
			continue
		}
		meta := namespaceMeta()
		if _, err := getCached(ctx, c, types.NamespacedName{Name: conn.Namespace}, meta); err != nil {
			return nil, fmt.Errorf("reading the labels of namespace %s: %w", conn.Namespace, err)
		}
		out[conn.Namespace] = meta.Labels
	}
	return out, nil
}

// namespaceLabelsChanged passes a namespace's creation and changes of its
// labels: what can change a selector's verdict.
var namespaceLabelsChanged = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		return !reflect.DeepEqual(e.ObjectOld.GetLabels(), e.ObjectNew.GetLabels())
	},
	DeleteFunc:  func(event.DeleteEvent) bool { return false },
	GenericFunc: func(event.GenericEvent) bool { return false },
}

// namespaceConnections maps a namespace to its connections: a change of its
// labels may admit them to, or refuse them from, a gateway with a selector.
func (r *AgencyConnectionReconciler) namespaceConnections(ctx context.Context, o client.Object) []reconcile.Request {
	var list popv1.AgencyConnectionList
	if err := r.Client.List(ctx, &list, client.InNamespace(o.GetName()), client.UnsafeDisableDeepCopy); err != nil {
		return nil
	}
	return requestsFor(list.Items, nil)
}

// pinsChanged passes a connection's status change that changes the
// certificates its policy entry pins: the shard reconciler renders the
// pins from the status, which the generation does not follow.
var pinsChanged = predicate.Funcs{
	CreateFunc: func(event.CreateEvent) bool { return false },
	UpdateFunc: func(e event.UpdateEvent) bool {
		oldConn, ok1 := e.ObjectOld.(*popv1.AgencyConnection)
		newConn, ok2 := e.ObjectNew.(*popv1.AgencyConnection)
		if !ok1 || !ok2 {
			return false
		}
		return !reflect.DeepEqual(pinnedOf(oldConn.Status.Certificate), pinnedOf(newConn.Status.Certificate))
	},
	DeleteFunc:  func(event.DeleteEvent) bool { return false },
	GenericFunc: func(event.GenericEvent) bool { return false },
}

// pinnedOf is the part of a certificate status that pins depend on. A
// missing status pins what an empty one pins (nothing): a new connection's
// first status, which names only the Secret, must not wake its shard's
// reconciler (10,000 new connections would make as many renders).
func pinnedOf(c *popv1.CertificateStatus) pinnedPart {
	if c == nil {
		return pinnedPart{}
	}
	return pinnedPart{c.SerialNumber, c.SHA256, c.Previous}
}

type pinnedPart struct {
	serial, sha string
	previous    *popv1.PreviousCertificate
}
