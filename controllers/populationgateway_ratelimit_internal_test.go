package controllers

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/gateway/ratelimit/limitstate"
)

func limitsPod(name string, st limitstate.State) podAudit {
	return podAudit{pod: name, limits: &st}
}

// TestRateLimitShared: pods' GET /ratelimitz answers to the condition.
func TestRateLimitShared(t *testing.T) {
	since := time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)
	shared := limitstate.State{Store: limitstate.StoreRedis, Shared: true, Replicas: 2, LiveReplicas: 2}
	onShare := limitstate.State{Store: limitstate.StoreRedis, Replicas: 2, LiveReplicas: 2,
		FallbackSince: &since, LastError: "dial tcp 10.0.0.9:6379: connect: connection refused"}
	local := limitstate.State{Store: limitstate.StoreLocal}
	silent := podAudit{pod: "z", limitsErr: "GET http://10.1.2.3:9090/ratelimitz: HTTP 404"}
	tests := []struct {
		desc        string
		obs         auditObservation
		wantStatus  metav1.ConditionStatus
		wantReason  string
		wantMessage []string
	}{
		{desc: "no pod: Unknown",
			obs:        auditObservation{replicas: 2},
			wantStatus: metav1.ConditionUnknown, wantReason: popv1.ReasonRateLimitStateUnknown,
			wantMessage: []string{"No gateway pod runs yet"}},
		{desc: "no pod answers (an older gateway): Unknown, with why",
			obs:        auditObservation{pods: 1, port: 9090, probed: []podAudit{silent}},
			wantStatus: metav1.ConditionUnknown, wantReason: popv1.ReasonRateLimitStateUnknown,
			wantMessage: []string{"None of the 1 running gateway pods answered GET /ratelimitz on port 9090", "HTTP 404"}},
		{desc: "every pod shares: True",
			obs:        auditObservation{pods: 3, probed: []podAudit{limitsPod("a", shared), limitsPod("b", shared), silent}},
			wantStatus: metav1.ConditionTrue, wantReason: popv1.ReasonSharedCountInUse,
			wantMessage: []string{"(2 of 3)"}},
		{desc: "one pod on its share: False, whatever the others say",
			obs:        auditObservation{pods: 3, probed: []podAudit{limitsPod("c", local), limitsPod("b", onShare), limitsPod("a", shared)}},
			wantStatus: metav1.ConditionFalse, wantReason: popv1.ReasonFallbackToShare,
			wantMessage: []string{"1 of 3", "divided by 2", "pod b since 2026-12-02T08:00:00Z", "connection refused"}},
		{desc: "a pod counting alone (a rollout): False",
			obs:        auditObservation{pods: 2, probed: []podAudit{limitsPod("b", local), limitsPod("a", shared)}},
			wantStatus: metav1.ConditionFalse, wantReason: popv1.ReasonNoStore,
			wantMessage: []string{"1 of 2", "pod b"}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			status, reason, message := rateLimitShared(tc.obs)
			if status != tc.wantStatus || reason != tc.wantReason {
				t.Fatalf("got %s/%s (%s), want %s/%s", status, reason, message, tc.wantStatus, tc.wantReason)
			}
			for _, want := range tc.wantMessage {
				if !strings.Contains(message, want) {
					t.Errorf("message %q lacks %q", message, want)
				}
			}
		})
	}
}
