package controllers

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
)

// gatewayReady is True when the serving certificate is issued, pods are
// available and the policy is written.
func gatewayReady(s *gatewayState) metav1.Condition {
	var notReady []string
	for _, t := range []string{popv1.ConditionCertificateReady, popv1.ConditionAvailable, popv1.ConditionPolicyReady} {
		c, ok := s.conditions[t]
		if !ok {
			notReady = append(notReady, t+": not yet known")
			continue
		}
		if c.Status != metav1.ConditionTrue {
			notReady = append(notReady, fmt.Sprintf("%s: %s", t, c.Message))
		}
	}
	cond := metav1.Condition{Type: popv1.ConditionReady, ObservedGeneration: s.gw.Generation}
	switch {
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
	types := make([]string, 0, len(s.conditions))
	for t := range s.conditions {
		types = append(types, t)
	}
	sort.Strings(types)
	for _, t := range types {
		meta.SetStatusCondition(&status.Conditions, s.conditions[t])
	}
	status.ActiveConnections = s.activeConnections
	status.AvailableReplicas = s.availableReplicas
	if s.policyVersion != "" {
		status.PolicyVersion = s.policyVersion
	}
	if succeeded {
		status.ObservedGeneration = s.gw.Generation
	}
	if equality.Semantic.DeepEqual(status, s.gw.Status) {
		return nil
	}
	patch := client.MergeFrom(s.gw.DeepCopy())
	s.gw.Status = status
	if err := r.Client.Status().Patch(ctx, s.gw, patch); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("patching status: %w", err)
	}
	return nil
}
