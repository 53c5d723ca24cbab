package controllers

import (
	"context"
	"fmt"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/internal/policyplan"
)

// readyCondition is the policy compiler's summary of the other conditions.
func readyCondition(s *connState) policyplan.Condition {
	conds := make(map[string]policyplan.Condition, len(s.conditions))
	for t, c := range s.conditions {
		conds[t] = policyplan.Condition{Type: c.Type, Status: c.Status, Reason: c.Reason, Message: c.Message}
	}
	return s.verdict.Ready(conds)
}

// desiredStatus is the status the connection should have after this reconcile.
func desiredStatus(s *connState, succeeded bool) popv1.AgencyConnectionStatus {
	status := *s.conn.Status.DeepCopy()
	s.setPlanned(readyCondition(s))
	setConditions(&status.Conditions, s.conditions)
	status.Certificate = s.certificate
	if succeeded {
		status.ObservedGeneration = s.conn.Generation
	}
	return status
}

// setConditions sets the conditions a reconcile decided on a status, in
// type order, so that the same decisions make the same status.
func setConditions(dst *[]metav1.Condition, conds map[string]metav1.Condition) {
	for _, t := range slices.Sorted(maps.Keys(conds)) {
		meta.SetStatusCondition(dst, conds[t])
	}
}

// patchStatus writes the status when it changed, and emits a Warning event,
// with the condition's reason, when the connection enters a problem state.
func (r *AgencyConnectionReconciler) patchStatus(ctx context.Context, s *connState, succeeded bool) error {
	before := meta.FindStatusCondition(s.conn.Status.Conditions, popv1.ConditionReady)
	if wrote, err := writeStatus(ctx, r.Client, s.conn, &s.conn.Status, desiredStatus(s, succeeded)); err != nil || !wrote {
		return err
	}
	after := meta.FindStatusCondition(s.conn.Status.Conditions, popv1.ConditionReady)
	if after != nil && (before == nil || before.Reason != after.Reason) {
		r.recordReadyEvent(s.conn, after)
	}
	return nil
}

// writeStatus patches obj's status, which status points to, to want when
// they differ, with the merge options given. It reports whether it wrote:
// an object deleted meanwhile is not an error.
func writeStatus[S any](ctx context.Context, c client.Client, obj client.Object, status *S, want S, opts ...client.MergeFromOption) (bool, error) {
	if equality.Semantic.DeepEqual(want, *status) {
		return false, nil
	}
	patch := client.MergeFromWithOptions(obj.DeepCopyObject().(client.Object), opts...)
	*status = want
	if err := c.Status().Patch(ctx, obj, patch); err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("patching status: %w", err)
	}
	return true, nil
}

func (r *AgencyConnectionReconciler) recordReadyEvent(conn *popv1.AgencyConnection, ready *metav1.Condition) {
	if r.Recorder == nil {
		return
	}
	switch ready.Reason {
	case popv1.ReasonPending:
		return
	case popv1.ReasonReady, popv1.ReasonSuspended, popv1.ReasonExpired:
		r.Recorder.Eventf(conn, nil, corev1.EventTypeNormal, ready.Reason, "Reconcile", "%s", ready.Message)
	default:
		r.Recorder.Eventf(conn, nil, corev1.EventTypeWarning, ready.Reason, "Reconcile", "%s", ready.Message)
	}
}
