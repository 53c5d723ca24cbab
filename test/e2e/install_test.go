//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/internal/render"
)

// TestManagerRunsFromTheChart: `helm install` of charts/popconnect with our
// images gives a manager Deployment whose pods become Ready.
func TestManagerRunsFromTheChart(t *testing.T) {
	cl := setup(t)
	ctx := context.Background()
	if err := cl.waitDeploymentAvailable(ctx, releaseName+"-controller-manager"); err != nil {
		cl.dump(t)
		t.Fatal(err)
	}
}

// TestSampleGatewayPodsBecomeReady: the sample PopulationGateway's
// Deployment, as the operator renders it, runs the gateway image and its
// pods pass their readiness probe; the gateway reports Ready.
func TestSampleGatewayPodsBecomeReady(t *testing.T) {
	cl := setup(t)
	ctx := context.Background()
	gw := &popv1.PopulationGateway{}
	key := client.ObjectKey{Namespace: systemNamespace, Name: gatewayName}
	if err := cl.client.Get(ctx, key, gw); err != nil {
		t.Fatal(err)
	}
	names := render.NamesFor(gw)
	err := poll(ctx, installTimeout, func() (bool, string, error) {
		var d appsv1.Deployment
		if err := cl.client.Get(ctx, client.ObjectKey{Namespace: systemNamespace, Name: names.Deployment}, &d); err != nil {
			return false, err.Error(), nil
		}
		var pods corev1.PodList
		if err := cl.client.List(ctx, &pods, client.InNamespace(systemNamespace), client.MatchingLabels(render.GatewayPodLabels(gw.Name))); err != nil {
			return false, "", err
		}
		ready := 0
		for _, p := range pods.Items {
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
					ready++
				}
			}
		}
		want := int32(1)
		if d.Spec.Replicas != nil {
			want = *d.Spec.Replicas
		}
		return int32(ready) == want && d.Status.ReadyReplicas == want,
			fmt.Sprintf("%d of %d gateway pods Ready (%d pods)", ready, want, len(pods.Items)), nil
	})
	if err != nil {
		cl.dump(t)
		t.Fatalf("gateway pods: %v", err)
	}
	err = poll(ctx, installTimeout, func() (bool, string, error) {
		if err := cl.client.Get(ctx, key, gw); err != nil {
			return false, "", err
		}
		ok, state := conditionTrue(gw.Status.Conditions, popv1.ConditionReady)
		return ok, state, nil
	})
	if err != nil {
		cl.dump(t)
		t.Fatalf("PopulationGateway %s: %v", gatewayName, err)
	}
}

// TestPodsMeetRestrictedPodSecurity: popconnect's and cert-manager's
// namespaces enforce the "restricted" Pod Security Standard, and no
// ReplicaSet there failed to create a pod (admission would refuse a pod
// that does not meet it).
func TestPodsMeetRestrictedPodSecurity(t *testing.T) {
	cl := setup(t)
	for _, namespace := range []string{certManagerNamespace, systemNamespace} {
		checkRestrictedNamespace(t, cl, namespace)
	}
}

func checkRestrictedNamespace(t *testing.T, cl *cluster, namespace string) {
	t.Helper()
	ctx := context.Background()
	var ns corev1.Namespace
	if err := cl.client.Get(ctx, client.ObjectKey{Name: namespace}, &ns); err != nil {
		t.Fatal(err)
	}
	if got := ns.Labels[podSecurityEnforceLabel]; got != "restricted" {
		t.Fatalf("namespace %s: %s=%q, want restricted", namespace, podSecurityEnforceLabel, got)
	}
	var sets appsv1.ReplicaSetList
	if err := cl.client.List(ctx, &sets, client.InNamespace(namespace)); err != nil {
		t.Fatal(err)
	}
	if len(sets.Items) == 0 {
		t.Fatalf("no ReplicaSets in %s", namespace)
	}
	for _, rs := range sets.Items {
		for _, c := range rs.Status.Conditions {
			if c.Type == appsv1.ReplicaSetReplicaFailure && c.Status == corev1.ConditionTrue {
				cl.dump(t)
				t.Errorf("ReplicaSet %s cannot create pods: %s: %s", rs.Name, c.Reason, c.Message)
			}
		}
		if want := ptrValue(rs.Spec.Replicas, 1); rs.Status.ReadyReplicas != want {
			t.Errorf("ReplicaSet %s: %d of %d pods ready", rs.Name, rs.Status.ReadyReplicas, want)
		}
	}
}

func ptrValue[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}
