//go:build e2e

package e2e

import (
	"context"
	"testing"

	"github.com/popconnect/popconnect/internal/popdb"
)

// TestPodWithoutAConnectionCannotReachTheGateway: a pod in a namespace that
// has no AgencyConnection cannot even open a TCP connection to the gateway
// Service (the gateway's default-deny NetworkPolicy, enforced by
// kube-router), while it reaches another Service (popdb, which no policy
// selects) and the gateway accepts connections from the node.
func TestPodWithoutAConnectionCannotReachTheGateway(t *testing.T) {
	cl := setup(t)
	ctx := context.Background()
	const ns = "e2e-stranger"
	cl.createAgencyNamespace(t, ns, nil)
	pod := cl.clientPod(t, ns, "stranger", map[string]string{agencyPodLabel: agencyApp}, "")
	cl.gatewayReachableFromNode(t)
	if ok, why := cl.dial(ctx, t, ns, pod, cl.popdbAddr(t)); !ok {
		t.Fatalf("the pod cannot reach the popdb Service either (%s): the network is broken, not policed", why)
	}
	if ok, _ := cl.dial(ctx, t, ns, pod, cl.gatewayServiceAddr(t)); ok {
		cl.dump(t)
		t.Fatalf("a pod of namespace %s, which has no AgencyConnection, opened a TCP connection to the gateway Service", ns)
	}
}

// TestAgencyPodOutsideItsNetworkRulesCannotReachTheGateway: in an agency's
// namespace, with the Secret the operator had issued mounted, the pod the
// connection's network rules select reads through the gateway (200), and a
// pod they do not select cannot open a TCP connection to it.
func TestAgencyPodOutsideItsNetworkRulesCannotReachTheGateway(t *testing.T) {
	cl := setup(t)
	ctx := context.Background()
	a := cl.newAgency(t, "netrules", "E2E-NET", nil)
	id, err := popdb.NationalID(1)
	if err != nil {
		t.Fatal(err)
	}
	admitted := cl.clientPod(t, a.ns, "admitted", map[string]string{agencyPodLabel: agencyApp}, a.secret)
	outsider := cl.clientPod(t, a.ns, "outsider", map[string]string{agencyPodLabel: "batch-job"}, a.secret)
	a.waitForOK(ctx, t, admitted, "/v1/citizens/"+id)
	if ok, why := cl.dial(ctx, t, a.ns, outsider, cl.popdbAddr(t)); !ok {
		t.Fatalf("the outsider pod cannot reach the popdb Service either (%s): the network is broken, not policed", why)
	}
	if ok, _ := cl.dial(ctx, t, a.ns, outsider, cl.gatewayServiceAddr(t)); ok {
		cl.dump(t)
		t.Fatalf("pod %s/%s, which the connection's network rules do not select, opened a TCP connection to the gateway Service", a.ns, outsider)
	}
	if got := a.get(ctx, t, outsider, "/v1/citizens/"+id, 1); len(got) != 1 || got[0].Status != 0 {
		t.Fatalf("pod %s/%s, outside the network rules, with the agency's certificate: %v, want a connection error", a.ns, outsider, got)
	}
}
