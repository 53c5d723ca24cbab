package controllers

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/popconnect/popconnect/gateway/policy"
	"github.com/popconnect/popconnect/internal/render"
)

func TestShardEcho(t *testing.T) {
	written := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "gw-policy-03",
			Labels:          map[string]string{render.LabelGateway: "gw", render.LabelManagedBy: render.ManagedByValue, render.LabelComponent: "policy"},
			OwnerReferences: []metav1.OwnerReference{{UID: "gw-uid", Controller: ptr.To(true)}}},
		Data: map[string]string{policy.ShardDataKey: `{"version":"a","agencies":[]}`},
	}
	echo := newShardEcho()
	echo.remember(written)
	pred := echo.notOwnShardWrite()
	live := func(mutate func(*corev1.ConfigMap)) *corev1.ConfigMap {
		cm := written.DeepCopy()
		cm.ResourceVersion = "7"
		cm.Annotations = map[string]string{"someone": "else"}
		if mutate != nil {
			mutate(cm)
		}
		return cm
	}
	tests := []struct {
		desc string
		cm   *corev1.ConfigMap
		pass bool
	}{
		{"our own write", live(nil), false},
		{"data edited by hand", live(func(c *corev1.ConfigMap) { c.Data[policy.ShardDataKey] = `{"version":"x","agencies":[]}` }), true},
		{"data key removed", live(func(c *corev1.ConfigMap) { c.Data = nil }), true},
		{"gateway label changed", live(func(c *corev1.ConfigMap) { c.Labels[render.LabelGateway] = "other" }), true},
		{"owner removed", live(func(c *corev1.ConfigMap) { c.OwnerReferences = nil }), true},
		{"a shard never written", live(func(c *corev1.ConfigMap) { c.Name = "gw-policy-04" }), true},
	}
	for _, tc := range tests {
		got := pred.Update(event.UpdateEvent{ObjectOld: written, ObjectNew: tc.cm})
		if got != tc.pass {
			t.Errorf("%s: event passes = %v, want %v", tc.desc, got, tc.pass)
		}
	}
	if !pred.Delete(event.DeleteEvent{Object: written}) {
		t.Error("a deleted shard must bring the reconciler back")
	}
}
