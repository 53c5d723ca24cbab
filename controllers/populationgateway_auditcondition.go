package controllers

import (
	"fmt"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/gateway/audit"
	"github.com/popconnect/popconnect/gateway/ratelimit/limitstate"
)

// auditRefresh is how often a gateway whose AuditReady is not True is asked
// again without any pod event: a failing sink's lastError and pod count
// change without the pods' readiness changing. A True condition needs no
// refresh: a sink that starts failing makes the pod's /readyz fail, the pod
// turns NotReady, and that event brings the gateway back.
const auditRefresh = 30 * time.Second

// podAudit is what one gateway pod said at GET /auditz.
type podAudit struct {
	// pod is the pod's name, for messages.
	pod string
	// state is the pod's answer; nil when it did not answer.
	state *audit.State
	// err is why it did not answer.
	err string
	// limits is the pod's GET /ratelimitz, asked only of a gateway with
	// spec.rateLimitStore.redis; nil when not asked or not answered,
	// limitsErr then says why.
	limits    *limitstate.State
	limitsErr string
}

// auditObservation is what a reconcile learned about a gateway's audit.
type auditObservation struct {
	// replicas is spec.replicas.
	replicas int32
	// pods counts the gateway's pods that are not being deleted, started
	// or not.
	pods int
	// probed are the running pods with an IP that were asked, in any order.
	probed []podAudit
	// port is the metrics port the pods were asked on, for messages.
	port int
}

// auditReady is the AuditReady condition and whether to look again after
// auditRefresh. One failing pod makes it False, whatever the others say:
// that pod refuses requests. Pods that did not answer are left out (a pod
// starting or stopping is not a failing sink); only when none answered is
// it Unknown, which leaves Ready alone.
func auditReady(o auditObservation) (metav1.ConditionStatus, string, string, bool) {
	probed := slices.Clone(o.probed)
	slices.SortFunc(probed, func(a, b podAudit) int { return strings.Compare(a.pod, b.pod) })
	var answered, failing []podAudit
	for _, p := range probed {
		if p.state == nil {
			continue
		}
		answered = append(answered, p)
		if !p.state.Healthy {
			failing = append(failing, p)
		}
	}
	switch {
	case len(failing) > 0:
		f := failing[0]
		lastError := f.state.LastError
		if lastError == "" {
			lastError = "no error given"
		}
		return metav1.ConditionFalse, popv1.ReasonAuditSinkFailing, fmt.Sprintf(
			"%d of %d gateway pods cannot write audit records to their %s sink and refuse requests "+
				"(503 audit_unavailable); pod %s: %s.",
			len(failing), len(answered), sinks(failing), f.pod, lastError), true
	case len(answered) > 0:
		return metav1.ConditionTrue, popv1.ReasonAuditSinkWritable, fmt.Sprintf(
			"Every gateway pod that answered (%d of %d) writes its audit records to %s.",
			len(answered), max(o.pods, len(answered)), sinks(answered)), false
	case len(probed) > 0:
		// Running pods that do not answer yet are usually starting: look
		// again soon rather than wait for their readiness.
		return metav1.ConditionUnknown, popv1.ReasonAuditStateUnknown, fmt.Sprintf(
			"None of the %d running gateway pods answered GET /auditz on port %d; pod %s: %s.",
			len(probed), o.port, probed[0].pod, probed[0].err), true
	case o.pods > 0:
		// Pods without an IP yet: the event that gives them one comes.
		return metav1.ConditionUnknown, popv1.ReasonAuditStateUnknown,
			fmt.Sprintf("No gateway pod runs yet (%d starting).", o.pods), false
	case o.replicas == 0:
		return metav1.ConditionUnknown, popv1.ReasonAuditStateUnknown,
			"spec.replicas is 0: no gateway pod runs to ask.", false
	default:
		return metav1.ConditionUnknown, popv1.ReasonAuditStateUnknown, "No gateway pod runs yet.", false
	}
}

// sinks names the pods' sinks: one, or several during a rollout that
// changes it.
func sinks(pods []podAudit) string {
	names := make([]string, len(pods))
	for i, p := range pods {
		names[i] = p.state.Sink
	}
	slices.Sort(names)
	return strings.Join(slices.Compact(names), " and ")
}
