package controllers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/internal/render"
)

func shardTestConnection(ns, name, gateway, code string) *popv1.AgencyConnection {
	c := &popv1.AgencyConnection{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	c.Spec.GatewayRef.Name = gateway
	c.Spec.AgencyCode = code
	return c
}

// TestConnectionShards: a connection's event reaches its own shard and the
// shard of the same index of every other gateway where its code is
// claimed, since the owner of the code may change there; no other shard,
// not even one of a code that shares the claimants' index bucket.
func TestConnectionShards(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := popv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	conn := shardTestConnection("health", "byt", "gw", "BYT")
	peer := shardTestConnection("police", "byt", "gw", "BYT")
	other := shardTestConnection("police", "ca", "gw", "CA")
	collision := shardTestConnection("tax", "tx", "gw", sameBucketAs(t, "BYT"))
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(conn, peer, other, collision).
		WithIndex(&popv1.AgencyConnection{}, indexConnectionCode, connectionCodeBucket).Build()
	r := &PolicyShardReconciler{Client: c}

	index := render.ShardIndex("BYT")
	want := []shardKey{
		{Gateway: types.NamespacedName{Namespace: "health", Name: "gw"}, Index: index},
		{Gateway: types.NamespacedName{Namespace: "police", Name: "gw"}, Index: index},
	}
	got := map[shardKey]bool{}
	for _, k := range r.connectionShards(context.Background(), conn) {
		got[k] = true
	}
	if len(got) != len(want) {
		t.Errorf("mapped to %v, want %v", got, want)
	}
	for _, k := range want {
		if !got[k] {
			t.Errorf("mapped to %v, missing %v", got, k)
		}
	}
}

// sameBucketAs is another agency code in code's index bucket.
func sameBucketAs(t *testing.T, code string) string {
	t.Helper()
	for i := range 100 * indexBuckets {
		if other := fmt.Sprintf("C%d", i); other != code && codeBucket(other) == codeBucket(code) {
			return other
		}
	}
	t.Fatalf("no code shares %s's bucket", code)
	return ""
}

// TestConfigMapShard: a shard's event maps to the gateway that controls it
// and the index of its name; any other ConfigMap maps to nothing.
func TestConfigMapShard(t *testing.T) {
	gw := &popv1.PopulationGateway{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "gw", UID: "u"}}
	shard := func(name string, owner *popv1.PopulationGateway) *corev1.ConfigMap {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}}
		if owner != nil {
			cm.OwnerReferences = []metav1.OwnerReference{controllerRef(owner, "PopulationGateway")}
		}
		return cm
	}
	other := &popv1.PopulationGateway{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "other", UID: "o"}}
	tests := []struct {
		desc string
		cm   *corev1.ConfigMap
		want []shardKey
	}{
		{"the gateway's shard", shard(render.ShardName("gw", 7), gw), []shardKey{{Gateway: client.ObjectKeyFromObject(gw), Index: 7}}},
		{"no controlling gateway", shard(render.ShardName("gw", 7), nil), nil},
		{"a shard's name, another gateway's ConfigMap", shard(render.ShardName("gw", 7), other), nil},
		{"not a shard's name", shard("gw-audit", gw), nil},
	}
	for _, tc := range tests {
		if got := configMapShard(context.Background(), tc.cm); !slices.Equal(got, tc.want) {
			t.Errorf("%s: mapped to %v, want %v", tc.desc, got, tc.want)
		}
	}
}

// TestShardFailures: a shard's failure is reported for its gateway only,
// and the gateway is woken when its failures change, not when a failure
// repeats.
func TestShardFailures(t *testing.T) {
	ctx := context.Background()
	f := newShardFailures()
	gw := types.NamespacedName{Namespace: "ns", Name: "gw"}
	other := types.NamespacedName{Namespace: "ns", Name: "other"}
	woken := func() int {
		n := 0
		for {
			select {
			case <-f.changed:
				n++
			default:
				return n
			}
		}
	}

	f.record(ctx, shardKey{Gateway: gw, Index: 9}, errors.New("name taken"))
	f.record(ctx, shardKey{Gateway: gw, Index: 2}, errors.New("timeout"))
	f.record(ctx, shardKey{Gateway: other, Index: 9}, errors.New("name taken"))
	if n := woken(); n != 3 {
		t.Errorf("woken %d times by three new failures, want 3", n)
	}
	want := []string{render.ShardName("gw", 2) + ": timeout", render.ShardName("gw", 9) + ": name taken"}
	if got := f.of(gw); !slices.Equal(got, want) {
		t.Errorf("failures of gw = %q, want %q", got, want)
	}

	f.record(ctx, shardKey{Gateway: gw, Index: 9}, errors.New("name taken"))
	f.record(ctx, shardKey{Gateway: gw, Index: 5}, nil)
	if n := woken(); n != 0 {
		t.Errorf("woken %d times by a repeated failure and a success that changed nothing, want 0", n)
	}

	f.record(ctx, shardKey{Gateway: gw, Index: 9}, nil)
	f.record(ctx, shardKey{Gateway: gw, Index: 2}, errors.New("conflict"))
	if n := woken(); n != 2 {
		t.Errorf("woken %d times by a recovery and a new error, want 2", n)
	}
	want = []string{render.ShardName("gw", 2) + ": conflict"}
	if got := f.of(gw); !slices.Equal(got, want) {
		t.Errorf("failures of gw = %q, want %q", got, want)
	}
	if got := f.of(other); len(got) != 1 {
		t.Errorf("failures of other = %q, want its one", got)
	}
}
