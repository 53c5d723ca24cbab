package controllers

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/event"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/gateway/audit"
)

func healthyPod(name, sink string) podAudit {
	return podAudit{pod: name, state: &audit.State{Sink: sink, Healthy: true, Stream: "s-" + name, LastSeq: 42}}
}

func failingPod(name, lastError string) podAudit {
	return podAudit{pod: name, state: &audit.State{Sink: "postgres", Healthy: false, WriteErrors: 3, LastError: lastError}}
}

func silentPod(name string) podAudit {
	return podAudit{pod: name, err: "dial tcp 10.1.2.3:9090: connect: connection refused"}
}

// TestAuditReady: pod states and answers to the condition, and whether to
// look again without an event.
func TestAuditReady(t *testing.T) {
	tests := []struct {
		desc        string
		obs         auditObservation
		wantStatus  metav1.ConditionStatus
		wantReason  string
		wantMessage []string
		wantRefresh bool
	}{
		{desc: "zero replicas, no pod: Unknown, and nothing to wait for",
			obs:        auditObservation{replicas: 0},
			wantStatus: metav1.ConditionUnknown, wantReason: popv1.ReasonAuditStateUnknown,
			wantMessage: []string{"spec.replicas is 0"}},
		{desc: "no pod yet: Unknown, the pods' events come",
			obs:        auditObservation{replicas: 2},
			wantStatus: metav1.ConditionUnknown, wantReason: popv1.ReasonAuditStateUnknown,
			wantMessage: []string{"No gateway pod runs yet"}},
		{desc: "pods without IPs yet: Unknown, the pods' events come",
			obs:        auditObservation{replicas: 2, pods: 2},
			wantStatus: metav1.ConditionUnknown, wantReason: popv1.ReasonAuditStateUnknown,
			wantMessage: []string{"2 starting"}},
		{desc: "running pods that do not answer: Unknown, look again",
			obs:        auditObservation{replicas: 2, pods: 2, port: 9090, probed: []podAudit{silentPod("b"), silentPod("a")}},
			wantStatus: metav1.ConditionUnknown, wantReason: popv1.ReasonAuditStateUnknown,
			wantMessage: []string{"None of the 2 running gateway pods answered GET /auditz on port 9090", "pod a: dial tcp"},
			wantRefresh: true},
		{desc: "every pod healthy: True, names the sink",
			obs:        auditObservation{replicas: 2, pods: 2, probed: []podAudit{healthyPod("a", "postgres"), healthyPod("b", "postgres")}},
			wantStatus: metav1.ConditionTrue, wantReason: popv1.ReasonAuditSinkWritable,
			wantMessage: []string{"(2 of 2)", "postgres"}},
		{desc: "a pod starting during a rollout does not make it Unknown",
			obs:        auditObservation{replicas: 2, pods: 3, probed: []podAudit{healthyPod("a", "postgres"), healthyPod("b", "postgres"), silentPod("c")}},
			wantStatus: metav1.ConditionTrue, wantReason: popv1.ReasonAuditSinkWritable,
			wantMessage: []string{"(2 of 3)"}},
		{desc: "a rollout from stdout to postgres names both sinks",
			obs:        auditObservation{replicas: 2, pods: 2, probed: []podAudit{healthyPod("a", "stdout"), healthyPod("b", "postgres")}},
			wantStatus: metav1.ConditionTrue, wantReason: popv1.ReasonAuditSinkWritable,
			wantMessage: []string{"postgres and stdout"}},
		{desc: "one failing pod among healthy ones: False, how many of how many, its error",
			obs: auditObservation{replicas: 3, pods: 3, probed: []podAudit{
				healthyPod("a", "postgres"), failingPod("c", "dial tcp 10.40.0.5:5432: i/o timeout"), healthyPod("b", "postgres")}},
			wantStatus: metav1.ConditionFalse, wantReason: popv1.ReasonAuditSinkFailing,
			wantMessage: []string{"1 of 3 gateway pods", "postgres", "pod c: dial tcp 10.40.0.5:5432: i/o timeout"},
			wantRefresh: true},
		{desc: "failing pods and a silent one: the silent one is not counted",
			obs: auditObservation{replicas: 3, pods: 3, probed: []podAudit{
				failingPod("b", "password authentication failed"), silentPod("a"), failingPod("c", "other")}},
			wantStatus: metav1.ConditionFalse, wantReason: popv1.ReasonAuditSinkFailing,
			wantMessage: []string{"2 of 2 gateway pods", "pod b: password authentication failed"},
			wantRefresh: true},
		{desc: "a failing pod without an error still fails",
			obs:        auditObservation{replicas: 1, pods: 1, probed: []podAudit{failingPod("a", "")}},
			wantStatus: metav1.ConditionFalse, wantReason: popv1.ReasonAuditSinkFailing,
			wantMessage: []string{"no error given"}, wantRefresh: true},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			status, reason, msg, refresh := auditReady(tc.obs)
			if status != tc.wantStatus || reason != tc.wantReason || refresh != tc.wantRefresh {
				t.Errorf("got %s/%s refresh %v, want %s/%s refresh %v (%q)", status, reason, refresh,
					tc.wantStatus, tc.wantReason, tc.wantRefresh, msg)
			}
			for _, want := range tc.wantMessage {
				if !strings.Contains(msg, want) {
					t.Errorf("message %q lacks %q", msg, want)
				}
			}
			// The same answers in another order: the same condition, so
			// that nothing is written when nothing changed.
			reversed := auditObservation{replicas: tc.obs.replicas, pods: tc.obs.pods, port: tc.obs.port}
			for i := len(tc.obs.probed) - 1; i >= 0; i-- {
				reversed.probed = append(reversed.probed, tc.obs.probed[i])
			}
			if _, _, again, _ := auditReady(reversed); again != msg {
				t.Errorf("message depends on the pods' order: %q vs %q", msg, again)
			}
		})
	}
}

// TestGatewayReadyFollowsAuditReady: a False AuditReady makes Ready False
// with its reason, over any other problem; Unknown leaves Ready alone.
func TestGatewayReadyFollowsAuditReady(t *testing.T) {
	base := func() *gatewayState {
		gw := &popv1.PopulationGateway{ObjectMeta: metav1.ObjectMeta{Generation: 2}}
		s := &gatewayState{observations: newObservations(gw, time.Time{}), gw: gw}
		for _, c := range []string{popv1.ConditionCertificateReady, popv1.ConditionAvailable, popv1.ConditionPolicyReady} {
			s.setCondition(c, metav1.ConditionTrue, "OK", c)
		}
		return s
	}
	tests := []struct {
		desc       string
		mutate     func(*gatewayState)
		wantStatus metav1.ConditionStatus
		wantReason string
	}{
		{"audit True", func(s *gatewayState) {
			s.setCondition(popv1.ConditionAuditReady, metav1.ConditionTrue, popv1.ReasonAuditSinkWritable, "ok")
		}, metav1.ConditionTrue, popv1.ReasonReady},
		{"audit Unknown leaves Ready alone", func(s *gatewayState) {
			s.setCondition(popv1.ConditionAuditReady, metav1.ConditionUnknown, popv1.ReasonAuditStateUnknown, "?")
		}, metav1.ConditionTrue, popv1.ReasonReady},
		{"audit False", func(s *gatewayState) {
			s.setCondition(popv1.ConditionAuditReady, metav1.ConditionFalse, popv1.ReasonAuditSinkFailing, "failing")
		}, metav1.ConditionFalse, popv1.ReasonAuditSinkFailing},
		{"audit False wins over a missing catalog", func(s *gatewayState) {
			s.setCondition(popv1.ConditionPolicyReady, metav1.ConditionFalse, popv1.ReasonCatalogNotFound, "no catalog")
			s.setCondition(popv1.ConditionAuditReady, metav1.ConditionFalse, popv1.ReasonAuditSinkFailing, "failing")
		}, metav1.ConditionFalse, popv1.ReasonAuditSinkFailing},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			s := base()
			tc.mutate(s)
			got := gatewayReady(s)
			if got.Status != tc.wantStatus || got.Reason != tc.wantReason {
				t.Errorf("Ready = %s/%s %q, want %s/%s", got.Status, got.Reason, got.Message, tc.wantStatus, tc.wantReason)
			}
			if tc.wantReason == popv1.ReasonAuditSinkFailing && got.Message != "failing" {
				t.Errorf("Ready message %q, want AuditReady's", got.Message)
			}
		})
	}
}

func gatewayPod(ip string, ready corev1.ConditionStatus) *corev1.Pod {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", Annotations: map[string]string{"a": "b"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubelet"}}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "gateway", Image: "i"}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, Conditions: []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue},
			{Type: corev1.PodReady, Status: ready, Message: "long"},
		}},
	}
	return pod
}

// TestGatewayPodChanged: only a pod's readiness, IP or deletion brings its
// gateway back.
func TestGatewayPodChanged(t *testing.T) {
	ready := gatewayPod("10.0.0.1", corev1.ConditionTrue)
	tests := []struct {
		desc string
		new  func(*corev1.Pod)
		want bool
	}{
		{"nothing relevant changed", func(p *corev1.Pod) { p.Annotations = map[string]string{"x": "y"}; p.Status.Message = "m" }, false},
		{"readiness changed", func(p *corev1.Pod) { p.Status.Conditions[1].Status = corev1.ConditionFalse }, true},
		{"IP changed", func(p *corev1.Pod) { p.Status.PodIP = "10.0.0.2" }, true},
		{"deletion started", func(p *corev1.Pod) { now := metav1.Now(); p.DeletionTimestamp = &now }, true},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			updated := ready.DeepCopy()
			tc.new(updated)
			if got := gatewayPodChanged.Update(event.UpdateEvent{ObjectOld: ready, ObjectNew: updated}); got != tc.want {
				t.Errorf("Update = %v, want %v", got, tc.want)
			}
		})
	}
	if gatewayPodChanged.Create(event.CreateEvent{Object: gatewayPod("", "")}) {
		t.Error("a new pod without an IP passed")
	}
	if !gatewayPodChanged.Create(event.CreateEvent{Object: ready}) {
		t.Error("a pod with an IP, first seen, did not pass")
	}
	if !gatewayPodChanged.Delete(event.DeleteEvent{Object: ready}) {
		t.Error("a deleted pod did not pass")
	}
}

// TestAuditPodFields: the pod cache keeps what AuditReady and the
// predicate read, and nothing else.
func TestAuditPodFields(t *testing.T) {
	pod := gatewayPod("10.0.0.1", corev1.ConditionTrue)
	pod.Labels = map[string]string{"popconnect.io/gateway": "gw"}
	out, err := auditPodFields(pod)
	if err != nil {
		t.Fatal(err)
	}
	slim := out.(*corev1.Pod)
	if slim.Name != "p" || slim.Namespace != "ns" || slim.Labels["popconnect.io/gateway"] != "gw" ||
		slim.Status.PodIP != "10.0.0.1" || slim.Status.Phase != corev1.PodRunning || podReady(slim) != corev1.ConditionTrue {
		t.Errorf("lost what is read: %+v", slim)
	}
	if len(slim.Spec.Containers) != 0 || slim.Annotations != nil || slim.ManagedFields != nil || len(slim.Status.Conditions) != 1 || slim.Status.Conditions[0].Message != "" {
		t.Errorf("kept what is not read: %+v", slim)
	}
	if other, _ := auditPodFields("x"); other != "x" {
		t.Errorf("a non-pod changed: %v", other)
	}
}

// TestGetAuditState: 200 and 503 with a State are answers; anything else
// (an old gateway's 404, not JSON) is not.
func TestGetAuditState(t *testing.T) {
	var status int
	var body string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/auditz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	defer srv.Close()
	host, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	r := &PopulationGatewayReconciler{AuditProbeClient: newAuditProbeClient()}
	r.AuditProbePort, _ = strconv.Atoi(port)

	failing, _ := json.Marshal(audit.State{Sink: "postgres", Healthy: false, LastError: "boom"})
	tests := []struct {
		status  int
		body    string
		want    *audit.State
		wantErr string
	}{
		{200, `{"sink":"postgres","healthy":true,"stream":"s","lastSeq":7}`, &audit.State{Sink: "postgres", Healthy: true, Stream: "s", LastSeq: 7}, ""},
		{503, string(failing), &audit.State{Sink: "postgres", LastError: "boom"}, ""},
		{404, "404 page not found", nil, "HTTP 404"},
		{200, "ok", nil, "not an audit state"},
		{200, `{}`, nil, "no sink"},
	}
	for _, tc := range tests {
		status, body = tc.status, tc.body
		got, err := r.getAuditState(context.Background(), host)
		switch {
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%d %q: err %v, want %q", tc.status, tc.body, err, tc.wantErr)
		case tc.wantErr == "" && (err != nil || *got != *tc.want):
			t.Errorf("%d %q: got %+v, %v; want %+v", tc.status, tc.body, got, err, tc.want)
		}
	}
}
