package controllers

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestUpToDate(t *testing.T) {
	desired := &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "n", Labels: map[string]string{"a": "1"}},
		Data:       map[string]string{"policy.json": "{}"},
	}
	live := func(mutate func(*corev1.ConfigMap)) *corev1.ConfigMap {
		cm := desired.DeepCopy()
		cm.TypeMeta = metav1.TypeMeta{}
		cm.ResourceVersion, cm.UID = "42", "uid"
		cm.Labels["added-by-someone"] = "x"
		if mutate != nil {
			mutate(cm)
		}
		return cm
	}
	tests := []struct {
		desc string
		live *corev1.ConfigMap
		want bool
	}{
		{"same, plus server fields and extra labels", live(nil), true},
		{"data edited", live(func(c *corev1.ConfigMap) { c.Data["policy.json"] = `{"agencies":[]}` }), false},
		{"label removed", live(func(c *corev1.ConfigMap) { delete(c.Labels, "a") }), false},
		{"data key removed", live(func(c *corev1.ConfigMap) { c.Data = nil }), false},
	}
	for _, tc := range tests {
		if got := upToDate(desired, tc.live); got != tc.want {
			t.Errorf("%s: upToDate = %v, want %v", tc.desc, got, tc.want)
		}
	}
}
