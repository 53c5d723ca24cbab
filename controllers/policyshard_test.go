package controllers_test

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/gateway/policy"
	"github.com/popconnect/popconnect/internal/render"
	"github.com/popconnect/popconnect/internal/testenv"
)

// TestOneChangeRewritesOneShard: a connection's change is written to its
// own shard and to no other, and the gateway's status, summed from the
// shards, follows.
func TestOneChangeRewritesOneShard(t *testing.T) {
	f := newFixture(t, "oneshard")
	var conns []*popv1.AgencyConnection
	for _, file := range sampleConnections {
		conns = append(conns, f.connection(t, file, nil))
	}
	for _, c := range conns {
		waitCondition(t, c, popv1.ConditionReady, metav1.ConditionTrue, popv1.ReasonReady, waitLong)
	}
	waitActive(t, f.gateway, len(conns))
	before := shardVersions(t, f.gateway)

	target := conns[0]
	setSuspended(t, target, true)
	waitShard(t, f.gateway, target.Spec.AgencyCode, waitShort, "denied", func(e *policy.Agency) bool { return e != nil && e.Suspended })
	waitCondition(t, target, popv1.ConditionReady, metav1.ConditionFalse, popv1.ReasonSuspended, waitShort)
	waitActive(t, f.gateway, len(conns)-1)

	after := shardVersions(t, f.gateway)
	own := render.ShardName(f.gateway.Name, render.ShardIndex(target.Spec.AgencyCode))
	if len(after) != len(before) {
		t.Errorf("%d shards after the change, %d before", len(after), len(before))
	}
	for name, rv := range before {
		switch changed := after[name] != rv; {
		case name == own && !changed:
			t.Errorf("the connection's shard %s was not rewritten", name)
		case name != own && changed:
			t.Errorf("shard %s was rewritten, but only %s holds the changed entry", name, own)
		}
	}
}

// shardVersions are the resourceVersions of the gateway's shards, by name.
func shardVersions(t *testing.T, gw *popv1.PopulationGateway) map[string]string {
	t.Helper()
	var list corev1.ConfigMapList
	must(t, s.c.List(context.Background(), &list, client.InNamespace(gw.Namespace),
		client.MatchingLabels{render.LabelGateway: render.GatewayLabelValue(gw.Name)}), "listing shards")
	out := map[string]string{}
	for _, cm := range list.Items {
		out[cm.Name] = cm.ResourceVersion
	}
	return out
}

// waitActive waits until the gateway's status counts n agencies with access.
func waitActive(t *testing.T, gw *popv1.PopulationGateway, n int) {
	t.Helper()
	testenv.Poll(t, waitShort, func() (bool, error) {
		got := &popv1.PopulationGateway{}
		err := s.c.Get(context.Background(), client.ObjectKeyFromObject(gw), got)
		return err == nil && got.Status.ActiveConnections == int32(n), err
	})
}
