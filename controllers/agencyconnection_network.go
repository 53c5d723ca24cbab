package controllers

import (
	"context"
	"errors"
	"fmt"

	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/internal/render"
)

// annotationConnectionName carries the full name of the connection a
// NetworkPolicy belongs to (a label value is limited to 63 characters).
const annotationConnectionName = "popconnect.io/agency-connection-name"

// needsFinalizer: the connection's NetworkPolicy lives in another namespace.
func needsFinalizer(conn *popv1.AgencyConnection) bool {
	return render.GatewayKey(conn).Namespace != conn.Namespace
}

// reconcileFinalizer adds the cleanup finalizer before anything is created
// in another namespace.
func (r *AgencyConnectionReconciler) reconcileFinalizer(ctx context.Context, s *connState) error {
	if !needsFinalizer(s.conn) {
		return nil
	}
	return r.setFinalizer(ctx, s.conn, true)
}

// setFinalizer adds (present) or removes the cleanup finalizer, when it
// is not so already.
func (r *AgencyConnectionReconciler) setFinalizer(ctx context.Context, conn *popv1.AgencyConnection, present bool) error {
	if controllerutil.ContainsFinalizer(conn, FinalizerNetworkPolicy) == present {
		return nil
	}
	patch := client.MergeFrom(conn.DeepCopy())
	if present {
		controllerutil.AddFinalizer(conn, FinalizerNetworkPolicy)
	} else {
		controllerutil.RemoveFinalizer(conn, FinalizerNetworkPolicy)
	}
	// A connection gone meanwhile needs no finalizer removed, but one
	// must not be given children in other namespaces.
	if err := r.Client.Patch(ctx, conn, patch); err != nil && (present || !apierrors.IsNotFound(err)) {
		return fmt.Errorf("setting finalizer %s to %t: %w", FinalizerNetworkPolicy, present, err)
	}
	return nil
}

// reconcileNetwork applies the NetworkPolicy that admits the agency's
// sources to its gateway, and removes any other the connection left behind
// (e.g. in the namespace of a gateway it no longer uses).
func (r *AgencyConnectionReconciler) reconcileNetwork(ctx context.Context, s *connState) error {
	var desired *networkingv1.NetworkPolicy
	switch {
	case s.verdict.IdentityRefused:
		s.setCondition(popv1.ConditionNetworkReady, metav1.ConditionFalse, popv1.ReasonNotRequested,
			"No network access is opened: "+s.verdict.Problem.Message)
	case s.gateway == nil:
		s.setCondition(popv1.ConditionNetworkReady, metav1.ConditionFalse, popv1.ReasonGatewayNotFound,
			"No network access is opened: the gateway does not exist.")
	default:
		desired = render.ConnectionNetworkPolicy(s.conn, s.gateway)
		desired.Annotations = map[string]string{annotationConnectionName: s.conn.Name}
		if desired.Namespace == s.conn.Namespace {
			desired.OwnerReferences = []metav1.OwnerReference{controllerRef(s.conn, "AgencyConnection")}
		}
	}
	// The new policy is written before stale ones go, so that a rename
	// (an upgrade from the old names, say) never leaves the agency without
	// one in between.
	if desired != nil {
		if err := r.applyNetworkPolicy(ctx, s, desired); err != nil {
			return err
		}
	}
	if err := r.removeStaleNetworkPolicies(ctx, s.conn, desired); err != nil {
		return err
	}
	if needsFinalizer(s.conn) {
		return nil
	}
	// The gateway moved to the connection's own namespace.
	return r.setFinalizer(ctx, s.conn, false)
}

// applyNetworkPolicy writes the connection's policy unless its name is held
// by an object that is not this connection's.
func (r *AgencyConnectionReconciler) applyNetworkPolicy(ctx context.Context, s *connState, desired *networkingv1.NetworkPolicy) error {
	ours := func(o client.Object) bool {
		conn, ok := networkPolicyConnection(o)
		return ok && o.GetLabels()[render.LabelManagedBy] == render.ManagedByValue && conn == client.ObjectKeyFromObject(s.conn)
	}
	err := newWriter(r.Client, r.APIReader).writeOwned(ctx, desired, ours, createFirst)
	switch {
	case errors.Is(err, errNameConflict):
		// Only the other object's owner can fix it, and its deletion may
		// bring no event (the cache holds only labelled objects): look
		// again later instead of retrying with backoff.
		s.wakeUpAt(s.now.Add(nameConflictRecheck))
		s.setCondition(popv1.ConditionNetworkReady, metav1.ConditionFalse, popv1.ReasonNameConflict,
			"No network access is opened: "+err.Error()+".")
		return nil
	case err != nil:
		s.setCondition(popv1.ConditionNetworkReady, metav1.ConditionFalse, popv1.ReasonPending,
			"Writing the NetworkPolicy failed and will be retried: "+err.Error())
		return err
	}
	s.setCondition(popv1.ConditionNetworkReady, metav1.ConditionTrue, popv1.ReasonApplied,
		fmt.Sprintf("NetworkPolicy %s/%s admits the agency's sources to the gateway on port %d.",
			desired.Namespace, desired.Name, desired.Spec.Ingress[0].Ports[0].Port.IntVal))
	return nil
}

// removeStaleNetworkPolicies deletes every NetworkPolicy made for the
// connection, in any namespace, except keep: those of its bucket, filtered
// by connection. The list holds the cache's own objects (no deep copy).
func (r *AgencyConnectionReconciler) removeStaleNetworkPolicies(ctx context.Context, conn *popv1.AgencyConnection, keep *networkingv1.NetworkPolicy) error {
	key := client.ObjectKeyFromObject(conn)
	var list networkingv1.NetworkPolicyList
	if err := r.Client.List(ctx, &list, client.UnsafeDisableDeepCopy,
		client.MatchingFields{indexNetworkPolicyConnection: bucket(key.String())}); err != nil {
		return fmt.Errorf("listing NetworkPolicies of connection %s: %w", key, err)
	}
	for i := range list.Items {
		np := &list.Items[i]
		if c, ok := networkPolicyConnection(np); !ok || c != key ||
			keep != nil && np.Namespace == keep.Namespace && np.Name == keep.Name {
			continue
		}
		// Only the object the index showed (labelled and annotated as this
		// connection's), never one that took its place since.
		if err := r.Client.Delete(ctx, np, client.Preconditions{UID: &np.UID}); client.IgnoreNotFound(err) != nil && !apierrors.IsConflict(err) {
			return fmt.Errorf("deleting stale NetworkPolicy %s/%s: %w", np.Namespace, np.Name, err)
		}
	}
	return nil
}

// finalize removes what the connection has in other namespaces, then lets
// it go. The policy entry disappears with it: the shard reconciler leaves
// out connections that are being deleted.
func (r *AgencyConnectionReconciler) finalize(ctx context.Context, conn *popv1.AgencyConnection) error {
	if !controllerutil.ContainsFinalizer(conn, FinalizerNetworkPolicy) {
		return nil
	}
	if err := r.removeStaleNetworkPolicies(ctx, conn, nil); err != nil {
		return err
	}
	return r.setFinalizer(ctx, conn, false)
}
