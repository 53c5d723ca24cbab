package controllers

import (
	"context"
	"fmt"
	"sort"

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
	types := make([]string, 0, len(s.conditions))
	for t := range s.conditions {
		types = append(types, t)
	}
	sort.Strings(types)
	for _, t := range types {
		meta.SetStatusCondition(&status.Conditions, s.conditions[t])
	}
	status.Certificate = s.certificate
	if succeeded {
		status.ObservedGeneration = s.conn.Generation
	}
	return status
}

// patchStatus writes the status when it changed, and emits a Warning event,
// with the condition's reason, when the connection enters a problem state.
func (r *AgencyConnectionReconciler) patchStatus(ctx context.Context, s *connState, succeeded bool) error {
	before := meta.FindStatusCondition(s.conn.Status.Conditions, popv1.ConditionReady)
	status := desiredStatus(s, succeeded)
	if equality.Semantic.DeepEqual(status, s.conn.Status) {
		return nil
	}
	after := meta.FindStatusCondition(status.Conditions, popv1.ConditionReady)
	patch := client.MergeFrom(s.conn.DeepCopy())
	s.conn.Status = status
	if err := r.Client.Status().Patch(ctx, s.conn, patch); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("patching status: %w", err)
	}
	if after != nil && (before == nil || before.Reason != after.Reason) {
		r.recordReadyEvent(s.conn, after)
	}
	return nil
}

func (r *AgencyConnectionReconciler) recordReadyEvent(conn *popv1.AgencyConnection, ready *metav1.Condition) {
	if r.Recorder == nil {
		return
	}
	switch ready.Reason {
	case popv1.ReasonPending:
		return
	case popv1.ReasonReady:
		r.Recorder.Eventf(conn, nil, corev1.EventTypeNormal, ready.Reason, "Reconcile", "%s", ready.Message)
	case popv1.ReasonSuspended, popv1.ReasonExpired:
		r.Recorder.Eventf(conn, nil, corev1.EventTypeNormal, ready.Reason, "Reconcile", "%s", ready.Message)
	default:
		r.Recorder.Eventf(conn, nil, corev1.EventTypeWarning, ready.Reason, "Reconcile", "%s", ready.Message)
	}
}
