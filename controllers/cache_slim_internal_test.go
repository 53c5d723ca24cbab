package controllers

import (
	"context"
	"testing"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/internal/render"
)

func slimTestObjects() (*networkingv1.NetworkPolicy, *cmapi.Certificate) {
	conn := shardTestConnection("health", "byt", "gw", "BYT")
	conn.Spec.ClientCertificate.IssuerRef = popv1.IssuerReference{Name: "ca", Kind: "ClusterIssuer"}
	conn.Spec.Network = &popv1.NetworkSpec{SourceCIDRs: []popv1.CIDR{"10.1.2.0/24"}}
	gw := &popv1.PopulationGateway{ObjectMeta: metav1.ObjectMeta{Namespace: "health", Name: "gw"}}
	np := render.ConnectionNetworkPolicy(conn, gw)
	np.Annotations = map[string]string{annotationConnectionName: conn.Name}
	return np, render.ClientCertificate(conn)
}

// asLive is obj as the API server returns it: server fields set, no type
// meta, and a label someone else added.
func asLive[T client.Object](obj T) T {
	live := obj.DeepCopyObject().(T)
	live.GetObjectKind().SetGroupVersionKind(live.GetObjectKind().GroupVersionKind().GroupVersion().WithKind(""))
	live.SetResourceVersion("42")
	live.SetUID("uid")
	live.SetGeneration(1)
	l := live.GetLabels()
	l["added-by-someone"] = "x"
	return live
}

func mustSlim(t *testing.T, transform func(any) (any, error), obj client.Object) client.Object {
	t.Helper()
	slim, err := transform(obj)
	if err != nil {
		t.Fatal(err)
	}
	// A second pass (an object already slim) changes nothing.
	again, err := transform(slim)
	if err != nil {
		t.Fatal(err)
	}
	return again.(client.Object)
}

// TestSlimCache: the cache's slim NetworkPolicies and Certificates compare
// equal to their desired objects while nobody changed them, and unequal
// after any change of their spec or of what the operator sets in their
// metadata; a Certificate keeps the fields the reconcilers read.
func TestSlimCache(t *testing.T) {
	np, cert := slimTestObjects()
	tests := []struct {
		desc      string
		desired   client.Object
		transform func(any) (any, error)
		mutate    func(client.Object)
		want      bool
	}{
		{"NetworkPolicy unchanged", np, slimNetworkPolicy, nil, true},
		{"NetworkPolicy port edited", np, slimNetworkPolicy, func(o client.Object) {
			o.(*networkingv1.NetworkPolicy).Spec.Ingress[0].Ports[0].Port.IntVal = 1
		}, false},
		{"NetworkPolicy source added", np, slimNetworkPolicy, func(o client.Object) {
			p := o.(*networkingv1.NetworkPolicy)
			p.Spec.Ingress[0].From = append(p.Spec.Ingress[0].From, networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0"}})
		}, false},
		{"NetworkPolicy label removed", np, slimNetworkPolicy, func(o client.Object) { delete(o.GetLabels(), render.LabelManagedBy) }, false},
		{"NetworkPolicy annotation removed", np, slimNetworkPolicy, func(o client.Object) { o.SetAnnotations(nil) }, false},
		{"Certificate unchanged", cert, slimCertificate, nil, true},
		{"Certificate URI edited", cert, slimCertificate, func(o client.Object) {
			o.(*cmapi.Certificate).Spec.URIs = []string{"spiffe://popconnect/agency/OTHER"}
		}, false},
		{"Certificate issuer edited", cert, slimCertificate, func(o client.Object) {
			o.(*cmapi.Certificate).Spec.IssuerRef.Name = "other"
		}, false},
	}
	for _, tc := range tests {
		live := asLive(tc.desired)
		if tc.mutate != nil {
			tc.mutate(live)
		}
		slim := mustSlim(t, tc.transform, live)
		if got := upToDate(tc.desired, slim); got != tc.want {
			t.Errorf("%s: upToDate = %v, want %v", tc.desc, got, tc.want)
		}
	}

	slim := mustSlim(t, slimCertificate, asLive(cert)).(*cmapi.Certificate)
	if slim.Spec.SecretName != cert.Spec.SecretName || slim.Spec.IssuerRef != cert.Spec.IssuerRef || len(slim.Spec.URIs) != 0 {
		t.Errorf("slim Certificate spec = %+v, want only secretName and issuerRef", slim.Spec)
	}
	if slimNP := mustSlim(t, slimNetworkPolicy, asLive(np)).(*networkingv1.NetworkPolicy); slimNP.Spec.Ingress != nil {
		t.Errorf("slim NetworkPolicy keeps its spec: %+v", slimNP.Spec)
	}
}

// TestCurrentReadsSlimObjectWhole: a slim object whose digest differs only
// because the API server defaulted a field desired leaves unset is read
// whole and found current (no write); a real difference is not.
func TestCurrentReadsSlimObjectWhole(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := networkingv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	desired, _ := slimTestObjects()
	defaulted := asLive(desired)
	defaulted.Spec.Egress = []networkingv1.NetworkPolicyEgressRule{} // stands for a server default
	defaulted.Spec.Ingress[0].From[0].IPBlock.Except = []string{"10.1.2.3/32"}
	edited := asLive(desired)
	edited.Spec.Ingress[0].From[0].IPBlock.CIDR = "0.0.0.0/0"

	for _, tc := range []struct {
		desc string
		live *networkingv1.NetworkPolicy
		want bool
	}{
		{"a field desired leaves unset", defaulted, true},
		{"a field desired sets, edited", edited, false},
	} {
		reader := fake.NewClientBuilder().WithScheme(scheme).WithObjects(tc.live.DeepCopy()).Build()
		slim := mustSlim(t, slimNetworkPolicy, tc.live)
		if upToDate(desired, slim) {
			t.Fatalf("%s: the digest should differ", tc.desc)
		}
		got, err := current(context.Background(), reader, desired, slim)
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("%s: current = %v, want %v", tc.desc, got, tc.want)
		}
	}
}
