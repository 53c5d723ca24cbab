package controllers

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/internal/render"
)

// The gateway reconciler watches its pods for AuditReady: which pods to ask
// for their audit state, and when to ask again. The pod cache holds only
// pods labelled managed-by=popconnect (CacheOptions), and of each only
// what is read here (auditPodFields): a pod object is several kilobytes,
// what AuditReady needs is a few dozen bytes.

// gatewayPodChanged passes the pod events that can change AuditReady: a
// pod's readiness (a gateway whose sink fails answers /readyz 503, so its
// pod turns NotReady; a recovered one turns Ready), its IP (where to ask
// it), its deletion, and a pod that already has an IP when first seen (the
// manager's start). Nothing else about a pod matters here.
var gatewayPodChanged = predicate.Funcs{
	CreateFunc: func(e event.CreateEvent) bool { return podIP(e.Object) != "" },
	UpdateFunc: func(e event.UpdateEvent) bool {
		return podIP(e.ObjectOld) != podIP(e.ObjectNew) || podReady(e.ObjectOld) != podReady(e.ObjectNew) ||
			podDeleting(e.ObjectOld) != podDeleting(e.ObjectNew)
	},
	DeleteFunc:  func(event.DeleteEvent) bool { return true },
	GenericFunc: func(event.GenericEvent) bool { return false },
}

func podIP(o client.Object) string {
	if pod, ok := o.(*corev1.Pod); ok {
		return pod.Status.PodIP
	}
	return ""
}

func podDeleting(o client.Object) bool { return !o.GetDeletionTimestamp().IsZero() }

// podReady is the pod's Ready condition, "" when it has none.
func podReady(o client.Object) corev1.ConditionStatus {
	pod, ok := o.(*corev1.Pod)
	if !ok {
		return ""
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status
		}
	}
	return ""
}

// podGateway maps a gateway pod to its gateway, by the gateway label. The
// label holds a shortened name for long gateway names, so it is matched
// against the gateways of the pod's namespace (a handful) rather than read
// as a name.
func (r *PopulationGatewayReconciler) podGateway(ctx context.Context, o client.Object) []reconcile.Request {
	value := o.GetLabels()[render.LabelGateway]
	if value == "" || o.GetLabels()[render.LabelComponent] != render.GatewayComponentGateway {
		return nil
	}
	var list popv1.PopulationGatewayList
	if err := r.Client.List(ctx, &list, client.InNamespace(o.GetNamespace())); err != nil {
		return nil
	}
	return requestsFor(list.Items, func(gw *popv1.PopulationGateway) bool {
		return render.GatewayLabelValue(gw.Name) == value
	})
}

// auditPodFields is the pod cache's transform: it keeps of a pod only its
// identity, labels, deletion and the status AuditReady reads (phase, IPs,
// Ready condition), so that the cache costs little per gateway pod.
func auditPodFields(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	slim := &corev1.Pod{
		TypeMeta: pod.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{
			Name:              pod.Name,
			Namespace:         pod.Namespace,
			UID:               pod.UID,
			ResourceVersion:   pod.ResourceVersion,
			Labels:            pod.Labels,
			DeletionTimestamp: pod.DeletionTimestamp,
		},
		Status: corev1.PodStatus{
			Phase:  pod.Status.Phase,
			PodIP:  pod.Status.PodIP,
			PodIPs: pod.Status.PodIPs,
		},
	}
	if ready := podReady(pod); ready != "" {
		slim.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: ready}}
	}
	return slim, nil
}
