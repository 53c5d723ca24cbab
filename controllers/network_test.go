package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/internal/render"
	"github.com/popconnect/popconnect/internal/testenv"
)

// TestNetworkPoliciesOfLookalikeConnectionsCoexist: <p>-hanoi/ministry-of-health
// and <p>/hanoi-ministry-of-health once shared the NetworkPolicy name
// popconnect-<p>-hanoi-ministry-of-health, so each apply overwrote the
// other's sources and deleting one deleted the other's policy. Each must
// have its own policy with its own sources, and keep it when the other goes.
func TestNetworkPoliciesOfLookalikeConnectionsCoexist(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, "lookalike")
	allowAllNamespaces(t, f.gateway)
	hanoi := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: f.ns + "-hanoi"}}
	must(t, s.c.Create(ctx, hanoi), "creating namespace")

	mk := func(ns, name, cidr string) *popv1.AgencyConnection {
		return f.connection(t, sampleConnections[0], func(c *popv1.AgencyConnection) {
			c.Namespace, c.Name = ns, name
			c.Spec.GatewayRef.Namespace = f.ns
			c.Spec.AgencyCode += strings.ToUpper(strings.ReplaceAll(name[:5], "-", ""))
			c.Spec.Network = &popv1.NetworkSpec{SourceCIDRs: []popv1.CIDR{popv1.CIDR(cidr)}}
		})
	}
	a := mk(hanoi.Name, "ministry-of-health", "10.1.0.0/16")
	b := mk(f.ns, "hanoi-ministry-of-health", "10.2.0.0/16")
	if na, nb := render.ConnectionNetworkPolicyName(a), render.ConnectionNetworkPolicyName(b); na == nb {
		t.Errorf("both connections' NetworkPolicies are named %s", na)
	}
	for _, tc := range []struct {
		conn *popv1.AgencyConnection
		cidr string
	}{{a, "10.1.0.0/16"}, {b, "10.2.0.0/16"}} {
		waitCondition(t, tc.conn, popv1.ConditionNetworkReady, metav1.ConditionTrue, popv1.ReasonApplied, waitShort)
		waitPolicySources(t, f.ns, tc.conn, tc.cidr)
	}

	// a lives in another namespace than its policy, so the operator's
	// finalizer deletes the policy (envtest runs no garbage collector, which
	// removes a same-namespace connection's policy through its owner
	// reference). a's goes, b's stays.
	must(t, s.c.Delete(ctx, a), "deleting connection a")
	testenv.Poll(t, waitShort, func() (bool, error) {
		err := s.c.Get(ctx, client.ObjectKeyFromObject(a), &popv1.AgencyConnection{})
		return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
	})
	if left := connectionPolicies(t, f.ns, a); len(left) != 0 {
		t.Errorf("deleted connection a still has NetworkPolicy %s", left[0].Name)
	}
	waitPolicySources(t, f.ns, b, "10.2.0.0/16")
}

// TestForeignNetworkPolicyIsNeverTakenOver: an object that already holds a
// connection's policy name but belongs to no connection (pre-created by a
// tenant of the gateway's namespace, say) is neither overwritten nor
// deleted, and the connection says why it has no network access.
func TestForeignNetworkPolicyIsNeverTakenOver(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, "foreignnp")
	conn := &popv1.AgencyConnection{}
	readSample(t, sampleConnections[0], conn)
	conn.Namespace = f.ns
	foreign := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: render.ConnectionNetworkPolicyName(conn),
			Labels: map[string]string{"team": "tenant"}},
		Spec: networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}},
	}
	must(t, s.c.Create(ctx, foreign), "pre-creating the NetworkPolicy")
	conn = f.connection(t, sampleConnections[0], nil)
	cur := waitCondition(t, conn, popv1.ConditionNetworkReady, metav1.ConditionFalse, popv1.ReasonNameConflict, waitShort)
	if c := meta.FindStatusCondition(cur.Status.Conditions, popv1.ConditionNetworkReady); !strings.Contains(c.Message, foreign.Name) {
		t.Errorf("NetworkReady message %q does not name %s", c.Message, foreign.Name)
	}
	live := &networkingv1.NetworkPolicy{}
	must(t, s.c.Get(ctx, client.ObjectKeyFromObject(foreign), live), "reading the foreign NetworkPolicy")
	if live.Labels[render.LabelManagedBy] != "" || len(live.Spec.Ingress) != 0 || len(live.OwnerReferences) != 0 {
		t.Errorf("the foreign NetworkPolicy was taken over: labels %v, ingress %v, owners %v",
			live.Labels, live.Spec.Ingress, live.OwnerReferences)
	}
	must(t, s.c.Delete(ctx, conn), "deleting the connection")
	testenv.Poll(t, waitShort, func() (bool, error) {
		err := s.c.Get(ctx, client.ObjectKeyFromObject(conn), &popv1.AgencyConnection{})
		return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
	})
	must(t, s.c.Get(ctx, client.ObjectKeyFromObject(foreign), live), "reading the foreign NetworkPolicy after the connection's deletion")
}

// TestForeignGatewayChildIsNeverTakenOver: the same for a gateway's own
// default-deny NetworkPolicy, pre-created before the gateway.
func TestForeignGatewayChildIsNeverTakenOver(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t, "foreigngw")
	gw := &popv1.PopulationGateway{}
	readSample(t, "popconnect_v1alpha1_populationgateway.yaml", gw)
	gw.Namespace = ns
	foreign := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: render.NamesFor(gw).DefaultDenyPolicy},
		Spec: networkingv1.NetworkPolicySpec{
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress:     []networkingv1.NetworkPolicyIngressRule{{}},
		},
	}
	must(t, s.c.Create(ctx, foreign), "pre-creating the NetworkPolicy")
	must(t, s.c.Create(ctx, gw), "creating gateway")
	testenv.Poll(t, waitShort, func() (bool, error) {
		cur := &popv1.PopulationGateway{}
		if err := s.c.Get(ctx, client.ObjectKeyFromObject(gw), cur); err != nil {
			return false, err
		}
		for _, c := range cur.Status.Conditions {
			if c.Type == popv1.ConditionAvailable && c.Reason == popv1.ReasonNameConflict {
				return strings.Contains(c.Message, foreign.Name), nil
			}
		}
		return false, nil
	})
	live := &networkingv1.NetworkPolicy{}
	must(t, s.c.Get(ctx, client.ObjectKeyFromObject(foreign), live), "reading the foreign NetworkPolicy")
	if len(live.OwnerReferences) != 0 || live.Labels[render.LabelManagedBy] != "" || len(live.Spec.Ingress) != 1 {
		t.Errorf("the foreign NetworkPolicy was taken over: labels %v, owners %v", live.Labels, live.OwnerReferences)
	}
}

// TestForeignAuditKeyIsNeverUsed: a Secret pre-created under the gateway's
// audit key name holds a key its author knows; the gateway must not be
// deployed with it (nor may the operator overwrite it).
func TestForeignAuditKeyIsNeverUsed(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t, "foreignkey")
	gw := &popv1.PopulationGateway{}
	readSample(t, "popconnect_v1alpha1_populationgateway.yaml", gw)
	gw.Namespace = ns
	names := render.NamesFor(gw)
	foreign := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: names.AuditKeySecret},
		StringData: map[string]string{"key": "known-to-the-tenant"},
	}
	must(t, s.c.Create(ctx, foreign), "pre-creating the audit key Secret")
	must(t, s.c.Create(ctx, gw), "creating gateway")
	testenv.Poll(t, waitShort, func() (bool, error) {
		cur := &popv1.PopulationGateway{}
		if err := s.c.Get(ctx, client.ObjectKeyFromObject(gw), cur); err != nil {
			return false, err
		}
		c := meta.FindStatusCondition(cur.Status.Conditions, popv1.ConditionAvailable)
		return c != nil && c.Reason == popv1.ReasonNameConflict && strings.Contains(c.Message, foreign.Name), nil
	})
	err := s.c.Get(ctx, client.ObjectKey{Namespace: ns, Name: names.Deployment}, &appsv1.Deployment{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("the gateway's Deployment exists (or cannot be read: %v) while its audit key is someone else's", err)
	}
}

func allowAllNamespaces(t *testing.T, gw *popv1.PopulationGateway) {
	t.Helper()
	cur := &popv1.PopulationGateway{}
	must(t, s.c.Get(context.Background(), client.ObjectKeyFromObject(gw), cur), "reading gateway")
	patch := client.MergeFrom(cur.DeepCopy())
	cur.Spec.AllowedConnections = &popv1.AllowedConnections{Namespaces: &popv1.AllowedNamespaces{From: popv1.NamespacesFromAll}}
	must(t, s.c.Patch(context.Background(), cur, patch), "allowing all namespaces")
}

// connectionPolicies lists the NetworkPolicies in ns labelled and annotated
// as conn's.
func connectionPolicies(t *testing.T, ns string, conn *popv1.AgencyConnection) []networkingv1.NetworkPolicy {
	t.Helper()
	var list networkingv1.NetworkPolicyList
	must(t, s.c.List(context.Background(), &list, client.InNamespace(ns),
		client.MatchingLabels{render.LabelConnectionNamespace: conn.Namespace}), "listing NetworkPolicies")
	var out []networkingv1.NetworkPolicy
	for _, np := range list.Items {
		if np.Annotations["popconnect.io/agency-connection-name"] == conn.Name {
			out = append(out, np)
		}
	}
	return out
}

// waitPolicySources waits until conn has exactly one NetworkPolicy, named
// as render names it, admitting exactly cidr.
func waitPolicySources(t *testing.T, ns string, conn *popv1.AgencyConnection, cidr string) {
	t.Helper()
	deadline := time.Now().Add(waitShort)
	for {
		last := connectionPolicies(t, ns, conn)
		if len(last) == 1 && last[0].Name == render.ConnectionNetworkPolicyName(conn) {
			from := last[0].Spec.Ingress[0].From
			if len(from) == 1 && from[0].IPBlock != nil && from[0].IPBlock.CIDR == cidr {
				return
			}
		}
		if time.Now().After(deadline) {
			var got []string
			for _, np := range last {
				got = append(got, fmt.Sprintf("%s from %+v", np.Name, np.Spec.Ingress))
			}
			t.Fatalf("connection %s/%s: NetworkPolicies %v after %v, want one named %s admitting %s",
				conn.Namespace, conn.Name, got, waitShort, render.ConnectionNetworkPolicyName(conn), cidr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestGatewayEgressFollowsAPIServerEndpoints: the gateway's default-deny
// policy lets its pods reach the API server only at the addresses and ports
// of the kubernetes Service's EndpointSlices, and follows them as they
// change; it never opens a port to every address.
func TestGatewayEgressFollowsAPIServerEndpoints(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, "egress")
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: metav1.NamespaceDefault, Name: f.ns + "-apiserver",
			Labels: map[string]string{discoveryv1.LabelServiceName: "kubernetes"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"192.0.2.10"}}},
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("https"), Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To[int32](16443)}},
	}
	must(t, s.c.Create(ctx, slice), "creating an API server EndpointSlice")
	t.Cleanup(func() { _ = s.c.Delete(context.Background(), slice) })
	np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: render.NamesFor(f.gateway).DefaultDenyPolicy}}
	hasRule := func() bool {
		for _, r := range np.Spec.Egress {
			if len(r.To) == 0 {
				t.Fatalf("egress rule %+v allows its ports to every address", r)
			}
			for _, p := range r.To {
				if p.IPBlock != nil && p.IPBlock.CIDR == "192.0.2.10/32" && len(r.Ports) == 1 && r.Ports[0].Port.IntVal == 16443 {
					return true
				}
			}
		}
		return false
	}
	testenv.Poll(t, waitShort, func() (bool, error) {
		err := s.c.Get(ctx, client.ObjectKeyFromObject(np), np)
		return err == nil && hasRule(), client.IgnoreNotFound(err)
	})
	// The status is written after the policy: wait for it rather than
	// read it at once.
	gw := &popv1.PopulationGateway{}
	testenv.Poll(t, waitShort, func() (bool, error) {
		if err := s.c.Get(ctx, client.ObjectKeyFromObject(f.gateway), gw); err != nil {
			return false, err
		}
		c := meta.FindStatusCondition(gw.Status.Conditions, popv1.ConditionNetworkReady)
		return c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == gw.Generation, nil
	})
	must(t, s.c.Delete(ctx, slice), "deleting the EndpointSlice")
	testenv.Poll(t, waitShort, func() (bool, error) {
		err := s.c.Get(ctx, client.ObjectKeyFromObject(np), np)
		return err == nil && !hasRule(), err
	})
}
