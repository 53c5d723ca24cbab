package controllers

import (
	"context"
	"fmt"

	networkingv1 "k8s.io/api/networking/v1"
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
	ns, _ := render.GatewayKey(conn)
	return ns != conn.Namespace
}

// reconcileFinalizer adds the cleanup finalizer before anything is created
// in another namespace.
func (r *AgencyConnectionReconciler) reconcileFinalizer(ctx context.Context, s *connState) error {
	if !needsFinalizer(s.conn) || controllerutil.ContainsFinalizer(s.conn, FinalizerNetworkPolicy) {
		return nil
	}
	patch := client.MergeFrom(s.conn.DeepCopy())
	controllerutil.AddFinalizer(s.conn, FinalizerNetworkPolicy)
	if err := r.Client.Patch(ctx, s.conn, patch); err != nil {
		return fmt.Errorf("adding finalizer: %w", err)
	}
	return nil
}

// reconcileNetwork applies the NetworkPolicy that admits the agency's
// sources to its gateway, and removes any other the connection left behind
// (e.g. in the namespace of a gateway it no longer uses).
func (r *AgencyConnectionReconciler) reconcileNetwork(ctx context.Context, s *connState) error {
	var desired *networkingv1.NetworkPolicy
	switch {
	case s.identityRefused:
		s.setCondition(popv1.ConditionNetworkReady, metav1.ConditionFalse, popv1.ReasonNotRequested,
			"No network access is opened: "+s.problem.Message)
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
	if err := r.removeStaleNetworkPolicies(ctx, s.conn, desired); err != nil {
		return err
	}
	if desired == nil {
		return r.dropFinalizerIfDone(ctx, s.conn)
	}
	live := &networkingv1.NetworkPolicy{}
	exists, err := getCached(ctx, r.Client, client.ObjectKeyFromObject(desired), live)
	if err != nil {
		return err
	}
	var existing *networkingv1.NetworkPolicy
	if exists {
		existing = live
	}
	if _, err := (applier{client: r.Client}).apply(ctx, desired, existing); err != nil {
		s.setCondition(popv1.ConditionNetworkReady, metav1.ConditionFalse, popv1.ReasonPending,
			"Writing the NetworkPolicy failed and will be retried: "+err.Error())
		return err
	}
	s.setCondition(popv1.ConditionNetworkReady, metav1.ConditionTrue, popv1.ReasonApplied,
		fmt.Sprintf("NetworkPolicy %s/%s admits the agency's sources to the gateway on port %d.",
			desired.Namespace, desired.Name, desired.Spec.Ingress[0].Ports[0].Port.IntVal))
	return r.dropFinalizerIfDone(ctx, s.conn)
}

// connectionNetworkPolicies lists the NetworkPolicies made for a connection,
// in every namespace.
func (r *AgencyConnectionReconciler) connectionNetworkPolicies(ctx context.Context, conn *popv1.AgencyConnection) ([]networkingv1.NetworkPolicy, error) {
	var list networkingv1.NetworkPolicyList
	if err := r.Client.List(ctx, &list,
		client.MatchingFields{indexNetworkPolicyConnection: conn.Namespace + "/" + conn.Name}); err != nil {
		return nil, fmt.Errorf("listing NetworkPolicies of connection %s/%s: %w", conn.Namespace, conn.Name, err)
	}
	return list.Items, nil
}

func (r *AgencyConnectionReconciler) removeStaleNetworkPolicies(ctx context.Context, conn *popv1.AgencyConnection, keep *networkingv1.NetworkPolicy) error {
	nps, err := r.connectionNetworkPolicies(ctx, conn)
	if err != nil {
		return err
	}
	for i := range nps {
		np := &nps[i]
		if keep != nil && np.Namespace == keep.Namespace && np.Name == keep.Name {
			continue
		}
		if err := r.Client.Delete(ctx, np); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("deleting stale NetworkPolicy %s/%s: %w", np.Namespace, np.Name, err)
		}
	}
	return nil
}

// dropFinalizerIfDone removes the finalizer once the connection no longer
// needs one (its gateway moved to its own namespace).
func (r *AgencyConnectionReconciler) dropFinalizerIfDone(ctx context.Context, conn *popv1.AgencyConnection) error {
	if needsFinalizer(conn) || !controllerutil.ContainsFinalizer(conn, FinalizerNetworkPolicy) {
		return nil
	}
	patch := client.MergeFrom(conn.DeepCopy())
	controllerutil.RemoveFinalizer(conn, FinalizerNetworkPolicy)
	if err := r.Client.Patch(ctx, conn, patch); err != nil {
		return fmt.Errorf("removing finalizer: %w", err)
	}
	return nil
}

// finalize removes what the connection has in other namespaces, then lets
// it go. The policy entry disappears with it: the gateway reconciler leaves
// out connections that are being deleted.
func (r *AgencyConnectionReconciler) finalize(ctx context.Context, conn *popv1.AgencyConnection) error {
	if !controllerutil.ContainsFinalizer(conn, FinalizerNetworkPolicy) {
		return nil
	}
	if err := r.removeStaleNetworkPolicies(ctx, conn, nil); err != nil {
		return err
	}
	patch := client.MergeFrom(conn.DeepCopy())
	controllerutil.RemoveFinalizer(conn, FinalizerNetworkPolicy)
	if err := r.Client.Patch(ctx, conn, patch); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("removing finalizer: %w", err)
	}
	return nil
}
