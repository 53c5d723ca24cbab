package controllers_test

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/gateway/policy"
)

// TestPurposeKeysReachTheShard: a connection asking for AccessHistory and
// a disclosureDelay is refused (PrivilegeNotGranted, no entry) until its
// gateway's spec.privilegedConnections names it for both; then its
// purpose, displayName, disclosureDelay, requireCaseReference and the
// AccessHistory operation reach its policy entry, and a change to them is
// written again.
func TestPurposeKeysReachTheShard(t *testing.T) {
	f := newFixture(t, "purpose")
	conn := f.connection(t, sampleConnections[3], func(c *popv1.AgencyConnection) {
		c.Spec.DisplayName = "Portal of the citizens"
		c.Spec.DisclosureDelay = &metav1.Duration{Duration: 8760 * time.Hour}
		c.Spec.RequireCaseReference = true
		c.Spec.AllowedOperations = append(c.Spec.AllowedOperations, popv1.OperationAccessHistory)
	})
	code := conn.Spec.AgencyCode
	// Not granted by the gateway: the connection's namespace cannot give
	// itself AccessHistory or a delay.
	waitCondition(t, conn, popv1.ConditionReady, metav1.ConditionFalse, popv1.ReasonPrivilegeNotGranted, waitLong)
	if e := shardEntry(t, f.gateway, code); e != nil {
		t.Fatalf("a connection refused for its privileges has a policy entry: %+v", e)
	}
	ref := popv1.ConnectionReference{Namespace: conn.Namespace, Name: conn.Name}
	grant := func(p *popv1.PrivilegedConnections) {
		t.Helper()
		gw := f.gateway.DeepCopy()
		get(t, gw)
		patch := client.MergeFrom(gw.DeepCopy())
		gw.Spec.PrivilegedConnections = p
		must(t, s.c.Patch(context.Background(), gw, patch), "granting privileges")
	}
	grant(&popv1.PrivilegedConnections{AccessHistory: []popv1.ConnectionReference{ref}})
	waitCondition(t, conn, popv1.ConditionReady, metav1.ConditionFalse, popv1.ReasonPrivilegeNotGranted, waitShort) // the delay is still not granted
	if e := shardEntry(t, f.gateway, code); e != nil {
		t.Fatalf("a connection whose delay is not granted has a policy entry: %+v", e)
	}
	grant(&popv1.PrivilegedConnections{AccessHistory: []popv1.ConnectionReference{ref}, DisclosureDelay: []popv1.ConnectionReference{ref}})
	waitShard(t, f.gateway, code, waitLong, "purpose keys", func(e *policy.Agency) bool {
		return e != nil && e.Purpose == conn.Spec.Purpose && e.DisplayName == "Portal of the citizens" &&
			e.Delay() == 8760*time.Hour && e.RequireCaseReference &&
			hasOperation(e.AllowedOperations, policy.OperationAccessHistory)
	})
	if e := shardEntry(t, f.gateway, code); e.Validate() != nil {
		t.Fatalf("the gateway refuses the entry: %v", e.Validate())
	}

	patch := []byte(`{"spec":{"disclosureDelay":"1h","requireCaseReference":false,"purpose":"another purpose"}}`)
	must(t, s.c.Patch(context.Background(), conn, client.RawPatch("application/merge-patch+json", patch)), "patching the purpose keys")
	waitShard(t, f.gateway, code, waitShort, "changed purpose keys", func(e *policy.Agency) bool {
		return e != nil && e.Purpose == "another purpose" && e.Delay() == time.Hour && !e.RequireCaseReference
	})
}

func hasOperation(ops []policy.Operation, op policy.Operation) bool {
	for _, o := range ops {
		if o == op {
			return true
		}
	}
	return false
}
