package controllers

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/internal/render"
)

// gatewayReady is True when the serving certificate is issued, pods are
// available and the policy is written, and no pod says it cannot write its
// audit records: such a pod refuses every request, so AuditReady=False
// makes Ready False with its reason, first. AuditReady Unknown (no pod
// could be asked) leaves Ready alone: Available says whether pods run.
func gatewayReady(s *gatewayState) metav1.Condition {
	var notReady []string
	for _, t := range []string{popv1.ConditionCertificateReady, popv1.ConditionAvailable, popv1.ConditionPolicyReady} {
		switch c, ok := s.conditions[t]; {
		case !ok:
			notReady = append(notReady, t+": not yet known")
		case c.Status != metav1.ConditionTrue:
			notReady = append(notReady, fmt.Sprintf("%s: %s", t, c.Message))
		}
	}
	cond := metav1.Condition{Type: popv1.ConditionReady, ObservedGeneration: s.gw.Generation}
	auditReady, auditKnown := s.conditions[popv1.ConditionAuditReady]
	switch {
	case auditKnown && auditReady.Status == metav1.ConditionFalse:
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, auditReady.Reason, auditReady.Message
	case len(notReady) == 0:
		cond.Status, cond.Reason, cond.Message = metav1.ConditionTrue, popv1.ReasonReady,
			fmt.Sprintf("The gateway serves %d agencies.", s.activeConnections)
	case s.conditions[popv1.ConditionPolicyReady].Reason == popv1.ReasonCatalogNotFound:
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, popv1.ReasonCatalogNotFound,
			s.conditions[popv1.ConditionPolicyReady].Message
	default:
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, popv1.ReasonPending,
			"Waiting for "+strings.Join(notReady, "; ")
	}
	return cond
}

func (r *PopulationGatewayReconciler) patchStatus(ctx context.Context, s *gatewayState, succeeded bool) error {
	status := *s.gw.Status.DeepCopy()
	s.conditions[popv1.ConditionReady] = gatewayReady(s)
	setConditions(&status.Conditions, s.conditions)
	if render.GatewayRedis(s.gw) == nil {
		// Said only of a gateway with a Redis store: gone with the store.
		meta.RemoveStatusCondition(&status.Conditions, popv1.ConditionRateLimitShared)
	}
	status.ActiveConnections = s.activeConnections
	status.AvailableReplicas = s.availableReplicas
	if s.policyVersion != "" {
		status.PolicyVersion = s.policyVersion
	}
	if succeeded {
		status.ObservedGeneration = s.gw.Generation
	}
	// The patch is refused (409) when the cache's copy, which the status
	// and the events' "before" were computed from, is older than the
	// object: a reconcile that starts before the cache has seen this
	// reconciler's last patch would otherwise write that patch again and
	// emit its Warning twice. runPhases requeues it quietly, on a fresh
	// copy.
	before := s.gw.Status.Conditions
	if wrote, err := writeStatus(ctx, r.Client, s.gw, &s.gw.Status, status, client.MergeFromWithOptimisticLock{}); err != nil || !wrote {
		return err
	}
	for _, t := range []string{popv1.ConditionAuditReady, popv1.ConditionRateLimitShared} {
		r.recordTransitionEvent(s.gw, meta.FindStatusCondition(before, t), meta.FindStatusCondition(s.gw.Status.Conditions, t))
	}
	return nil
}

// recordTransitionEvent emits one event per transition of AuditReady or
// RateLimitShared into False (Warning: the gateway refuses requests until
// someone fixes the audit sink; its pods enforce a share of the limits
// until Redis answers) and out of it to True (Normal), never for a refresh
// that changed only the message, nor for Unknown, which says nothing.
func (r *PopulationGatewayReconciler) recordTransitionEvent(gw *popv1.PopulationGateway, before, after *metav1.Condition) {
	if r.Recorder == nil || after == nil {
		return
	}
	wasFalse := before != nil && before.Status == metav1.ConditionFalse
	switch {
	case after.Status == metav1.ConditionFalse && !wasFalse:
		r.Recorder.Eventf(gw, nil, corev1.EventTypeWarning, after.Reason, "Reconcile", "%s", after.Message)
	case after.Status == metav1.ConditionTrue && wasFalse:
		r.Recorder.Eventf(gw, nil, corev1.EventTypeNormal, after.Reason, "Reconcile", "%s", after.Message)
	}
}
