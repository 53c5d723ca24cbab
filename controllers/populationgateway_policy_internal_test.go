package controllers

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/internal/render"
)

// TestGatewayPolicyStatus: the gateway's policy status is summed from its
// shards' annotations; a shard that cannot be written, or one without its
// counts, makes PolicyReady Pending and names it.
func TestGatewayPolicyStatus(t *testing.T) {
	gw := &popv1.PopulationGateway{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "gw", UID: "gw-uid", Generation: 1}}
	shard := func(index int, owner *popv1.PopulationGateway, counts ...string) *corev1.ConfigMap {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
			Namespace: "ns", Name: render.ShardName("gw", index), Labels: render.ShardLabels("gw"),
			Annotations: map[string]string{render.AnnotationPolicyVersion: "v" + render.ShardName("gw", index)},
		}}
		if owner != nil {
			cm.OwnerReferences = []metav1.OwnerReference{controllerRef(owner, "PopulationGateway")}
		}
		if len(counts) == 2 {
			cm.Annotations[render.AnnotationPolicyAgencies] = counts[0]
			cm.Annotations[render.AnnotationPolicyActive] = counts[1]
		}
		return cm
	}
	stranger := &popv1.PopulationGateway{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "stranger", UID: "s"}}
	counted := []client.Object{shard(3, gw, "5", "4"), shard(10, gw, "2", "2"), shard(12, stranger, "9", "9"), shard(13, nil, "9", "9")}
	wantVersion := render.PolicyVersion("gw", []render.ShardDocument{
		{Index: 3, Version: "v" + render.ShardName("gw", 3)}, {Index: 10, Version: "v" + render.ShardName("gw", 10)},
	})
	catalog := &popv1.FieldCatalog{ObjectMeta: metav1.ObjectMeta{Name: "cat"}}

	tests := []struct {
		desc                  string
		objs                  []client.Object
		catalog               *popv1.FieldCatalog
		failed                *shardKey
		wantStatus            metav1.ConditionStatus
		wantReason, wantInMsg string
		wantActive            int32
	}{
		{"every shard counted", counted, catalog, nil, metav1.ConditionTrue, popv1.ReasonProgrammed,
			"7 agencies (6 with access) are written to 2 policy shards, version " + wantVersion, 6},
		{"a shard without its counts", append(counted, shard(20, gw), shard(21, gw, "1", "2")), catalog, nil,
			metav1.ConditionFalse, popv1.ReasonPending, render.ShardName("gw", 20) + ", " + render.ShardName("gw", 21), 6},
		{"a shard that cannot be written", counted, catalog, &shardKey{Gateway: client.ObjectKeyFromObject(gw), Index: 40},
			metav1.ConditionFalse, popv1.ReasonPending, render.ShardName("gw", 40) + ": name taken", 6},
		{"no catalog", nil, nil, nil, metav1.ConditionFalse, popv1.ReasonCatalogNotFound, `FieldCatalog ""`, 0},
	}
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{popv1.AddToScheme, corev1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			r := &PopulationGatewayReconciler{
				Client:   fake.NewClientBuilder().WithScheme(scheme).WithObjects(tc.objs...).Build(),
				failures: newShardFailures(),
			}
			if tc.failed != nil {
				r.failures.record(context.Background(), *tc.failed, errors.New("name taken"))
			}
			s := &gatewayState{observations: newObservations(gw, time.Unix(0, 0)), gw: gw, catalog: tc.catalog}
			if err := r.reconcilePolicy(context.Background(), s); err != nil {
				t.Fatal(err)
			}
			c := s.conditions[popv1.ConditionPolicyReady]
			if c.Status != tc.wantStatus || c.Reason != tc.wantReason || !strings.Contains(c.Message, tc.wantInMsg) {
				t.Errorf("PolicyReady = %s %s %q, want %s %s containing %q", c.Status, c.Reason, c.Message, tc.wantStatus, tc.wantReason, tc.wantInMsg)
			}
			if s.activeConnections != tc.wantActive {
				t.Errorf("activeConnections = %d, want %d", s.activeConnections, tc.wantActive)
			}
		})
	}
}
