package controllers

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/internal/policyplan"
)

var now = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func stateWith(mutate func(*connState)) *connState {
	conn := &popv1.AgencyConnection{ObjectMeta: metav1.ObjectMeta{Generation: 3}}
	s := &connState{observations: newObservations(conn, now), conn: conn}
	s.verdict = &policyplan.Verdict{Connection: s.conn}
	for _, t := range []string{popv1.ConditionCertificateReady, popv1.ConditionFieldsValid, popv1.ConditionNetworkReady, popv1.ConditionProgrammed} {
		s.setCondition(t, metav1.ConditionTrue, "OK", t+" ok")
	}
	if mutate != nil {
		mutate(s)
	}
	return s
}

func TestDesiredStatusObservedGeneration(t *testing.T) {
	s := stateWith(nil)
	s.conn.Status.ObservedGeneration = 2
	if got := desiredStatus(s, false); got.ObservedGeneration != 2 {
		t.Errorf("failed reconcile stamped observedGeneration %d, want 2 kept", got.ObservedGeneration)
	}
	got := desiredStatus(stateWith(nil), true)
	if got.ObservedGeneration != 3 {
		t.Errorf("observedGeneration %d, want 3", got.ObservedGeneration)
	}
	for _, c := range got.Conditions {
		if c.ObservedGeneration != 3 {
			t.Errorf("condition %s has observedGeneration %d, want 3", c.Type, c.ObservedGeneration)
		}
	}
	// Recomputing the same status is a no-op: LastTransitionTime is kept.
	s2 := stateWith(nil)
	s2.conn.Status = got
	again := desiredStatus(s2, true)
	for i := range again.Conditions {
		if !again.Conditions[i].LastTransitionTime.Equal(&got.Conditions[i].LastTransitionTime) {
			t.Errorf("condition %s changed its transition time", again.Conditions[i].Type)
		}
	}
}

func TestNextWake(t *testing.T) {
	tests := []struct {
		desc string
		at   []time.Time
		want time.Duration
	}{
		{"nothing", nil, 0},
		{"past only", []time.Time{now.Add(-time.Hour)}, 0},
		{"earliest future, plus a second", []time.Time{now.Add(time.Hour), now.Add(time.Minute)}, time.Minute + time.Second},
	}
	for _, tc := range tests {
		if got := nextWake(now, tc.at); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.desc, got, tc.want)
		}
	}
}
