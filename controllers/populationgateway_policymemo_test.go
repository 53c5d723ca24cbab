package controllers

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/internal/policyplan"
	"github.com/popconnect/popconnect/internal/render"
)

func TestGatewayMemoShardCurrent(t *testing.T) {
	m := newPolicyMemo().gateway(types.NamespacedName{Namespace: "ns", Name: "gw"})
	m.shardWritten(3, "uid-1", "v1", "100")
	tests := []struct {
		desc            string
		index           int
		uid             types.UID
		version, liveRV string
		want            bool
	}{
		{"same version, live unchanged since", 3, "uid-1", "v1", "100", true},
		{"the entries changed", 3, "uid-1", "v2", "100", false},
		{"someone else wrote the shard", 3, "uid-1", "v1", "101", false},
		{"the gateway was re-created", 3, "uid-2", "v1", "100", false},
		{"a shard never written", 4, "uid-1", "v1", "100", false},
		{"no resourceVersion known", 3, "uid-1", "v1", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			if got := m.shardCurrent(tc.index, tc.uid, tc.version, tc.liveRV); got != tc.want {
				t.Errorf("shardCurrent = %v, want %v", got, tc.want)
			}
		})
	}
	m.keepShards([]render.ShardDocument{{Index: 4}})
	if m.shardCurrent(3, "uid-1", "v1", "100") {
		t.Error("a shard that no longer exists must be forgotten")
	}
}

func TestGatewayMemoEntry(t *testing.T) {
	m := newPolicyMemo().gateway(types.NamespacedName{Namespace: "ns", Name: "gw"})
	conn := &popv1.AgencyConnection{
		ObjectMeta: metav1.ObjectMeta{UID: "c1", Generation: 1},
		Spec: popv1.AgencyConnectionSpec{
			AgencyCode: "BYT", AllowedFields: []popv1.FieldPath{"fullName"},
			AllowedOperations: []popv1.Operation{popv1.OperationLookup},
			RateLimit:         popv1.RateLimit{RequestsPerSecond: 1, Burst: 1},
		},
	}
	first, err := m.entry(&policyplan.Verdict{Connection: conn, Denied: false, Pins: nil})
	if err != nil {
		t.Fatal(err)
	}
	// Same generation and standing: the memo answers, even if the object
	// in hand were to differ (it cannot without a new generation).
	conn.Spec.AllowedFields = []popv1.FieldPath{"fullName", "gender"}
	same, _ := m.entry(&policyplan.Verdict{Connection: conn, Denied: false, Pins: nil})
	if string(same.JSON) != string(first.JSON) {
		t.Error("an unchanged generation must reuse the encoding")
	}
	conn.Generation = 2
	changed, _ := m.entry(&policyplan.Verdict{Connection: conn, Denied: false, Pins: nil})
	if string(changed.JSON) == string(first.JSON) {
		t.Error("a new generation must be encoded again")
	}
	// A renewal changes only the status: the new pins are encoded again.
	pinned, _ := m.entry(&policyplan.Verdict{Connection: conn, Denied: false, Pins: []string{"aa"}})
	if string(pinned.JSON) == string(changed.JSON) {
		t.Error("changed pins must be encoded again")
	}
	if again, _ := m.entry(&policyplan.Verdict{Connection: conn, Denied: false, Pins: nil}); string(again.JSON) != string(changed.JSON) {
		t.Error("pins back to none must be encoded again")
	}
	denied, _ := m.entry(&policyplan.Verdict{Connection: conn, Denied: true, Pins: nil})
	if string(denied.JSON) == string(changed.JSON) {
		t.Error("a change of standing (suspended, expired) must be encoded again")
	}
	m.keepEntries(map[types.UID]bool{})
	if len(m.entries) != 0 {
		t.Error("entries of connections no longer seen must be dropped")
	}
}
