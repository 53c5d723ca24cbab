package controllers

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

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

// TestRunPhasesConflict: a status patch refused by its optimistic lock
// after phases that all succeeded requeues without an error; any other
// failure is still the reconcile's error.
func TestRunPhasesConflict(t *testing.T) {
	conflict := apierrors.NewConflict(schema.GroupResource{Group: "popconnect.io", Resource: "populationgateways"}, "gw", errors.New("the object has been modified"))
	phaseErr := errors.New("applying the Deployment: boom")
	patchErr := errors.New("patching status: connection refused")
	tests := []struct {
		desc        string
		phase       error
		patch       error
		wantErr     []error
		wantRequeue bool
		wantAfter   time.Duration
	}{
		{desc: "all good", wantAfter: time.Minute + time.Second},
		{desc: "conflict after good phases", patch: conflict, wantRequeue: true},
		{desc: "conflict after a failed phase", phase: phaseErr, patch: conflict, wantErr: []error{phaseErr, conflict}},
		{desc: "other patch error", patch: patchErr, wantErr: []error{patchErr}},
		{desc: "failed phase", phase: phaseErr, wantErr: []error{phaseErr}},
	}
	for _, tc := range tests {
		o := newObservations(&metav1.ObjectMeta{}, now)
		o.wakeAt = []time.Time{now.Add(time.Minute)}
		var told []bool
		res, err := runPhases(context.Background(), &o, &o,
			func(_ context.Context, _ *observations, succeeded bool) error {
				told = append(told, succeeded)
				return tc.patch
			},
			func(context.Context, *observations) error { return tc.phase })
		if want := []bool{tc.phase == nil}; !slices.Equal(told, want) {
			t.Errorf("%s: patchStatus told %v, want %v", tc.desc, told, want)
		}
		for _, w := range tc.wantErr {
			if !errors.Is(err, w) {
				t.Errorf("%s: error %v does not wrap %v", tc.desc, err, w)
			}
		}
		if len(tc.wantErr) == 0 && err != nil {
			t.Errorf("%s: error %v, want none", tc.desc, err)
		}
		if res.Requeue != tc.wantRequeue || res.RequeueAfter != tc.wantAfter { //nolint:staticcheck // Requeue is what the conflict case sets
			t.Errorf("%s: result %+v, want Requeue %v, RequeueAfter %v", tc.desc, res, tc.wantRequeue, tc.wantAfter)
		}
	}
}
