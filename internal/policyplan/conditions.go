package policyplan

import (
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
)

// Condition is a condition without its bookkeeping (observedGeneration,
// lastTransitionTime), which the reconciler adds.
type Condition struct {
	Type    string                 `json:"type"`
	Status  metav1.ConditionStatus `json:"status"`
	Reason  string                 `json:"reason"`
	Message string                 `json:"message"`
}

// FieldsValid is the connection's FieldsValid condition.
func (v *Verdict) FieldsValid() Condition {
	f := v.fields
	switch {
	case f.unknown != nil:
		return Condition{popv1.ConditionFieldsValid, metav1.ConditionUnknown, f.unknown.Reason, f.unknown.Message}
	case f.problem != nil:
		return Condition{popv1.ConditionFieldsValid, metav1.ConditionFalse, f.problem.Reason, f.problem.Message}
	}
	return Condition{popv1.ConditionFieldsValid, metav1.ConditionTrue, popv1.ReasonFieldsValid,
		fmt.Sprintf("Every allowed field is in FieldCatalog %q.", f.catalog)}
}

// Programmed is the connection's Programmed condition, given whether its
// shard holds its entry as it should be now (written).
func (v *Verdict) Programmed(written bool) Condition {
	if v.Problem != nil {
		return Condition{popv1.ConditionProgrammed, metav1.ConditionFalse, popv1.ReasonNotProgrammed,
			"The connection is left out of the gateway's policy: " + v.Problem.Message}
	}
	_, name := v.Shard()
	if !written {
		return Condition{popv1.ConditionProgrammed, metav1.ConditionFalse, popv1.ReasonPending,
			fmt.Sprintf("Waiting for the entry to be written to policy shard %s/%s.", v.gateway.Namespace, name)}
	}
	state := "allowed"
	if v.Denied {
		state = "denied"
	}
	// The message leaves out the shard's version: it changes whenever any
	// of the shard's ~160 agencies changes, and would cost each of them a
	// status write for a change that is not theirs (the gateway's
	// status.policyVersion reports the version).
	return Condition{popv1.ConditionProgrammed, metav1.ConditionTrue, popv1.ReasonProgrammed,
		fmt.Sprintf("The entry is written, %s, to policy shard %s/%s.", state, v.gateway.Namespace, name)}
}

// Ready sums up the connection's other conditions (by type): True only
// when every one is True and access is allowed now. A suspension or an
// expiry is reported first, as it is what the user did or agreed to; then
// the problem; Pending while any other condition is not True yet.
func (v *Verdict) Ready(conditions map[string]Condition) Condition {
	conn := v.Connection
	switch {
	case conn.Spec.Suspended:
		return Condition{popv1.ConditionReady, metav1.ConditionFalse, popv1.ReasonSuspended,
			"The connection is suspended (spec.suspended): the gateway refuses the agency. Set spec.suspended to false to restore access."}
	case v.expired:
		return Condition{popv1.ConditionReady, metav1.ConditionFalse, popv1.ReasonExpired, fmt.Sprintf(
			"The data-sharing agreement ended at %s (spec.validUntil): the gateway refuses the agency. Extend spec.validUntil to restore access.",
			conn.Spec.ValidUntil.UTC().Format("2006-01-02T15:04:05Z"))}
	case v.Problem != nil:
		return Condition{popv1.ConditionReady, metav1.ConditionFalse, v.Problem.Reason, v.Problem.Message}
	}
	var pending []string
	for _, t := range []string{popv1.ConditionCertificateReady, popv1.ConditionFieldsValid, popv1.ConditionNetworkReady, popv1.ConditionProgrammed} {
		c, ok := conditions[t]
		if !ok || c.Status != metav1.ConditionTrue {
			msg := "not yet known"
			if ok {
				msg = c.Message
			}
			pending = append(pending, fmt.Sprintf("%s: %s", t, msg))
		}
	}
	if len(pending) > 0 {
		return Condition{popv1.ConditionReady, metav1.ConditionFalse, popv1.ReasonPending, "Waiting for " + strings.Join(pending, "; ")}
	}
	return Condition{popv1.ConditionReady, metav1.ConditionTrue, popv1.ReasonReady, "The agency has access through the gateway."}
}
