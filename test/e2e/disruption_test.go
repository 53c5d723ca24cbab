//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/internal/popdb"
	"github.com/popconnect/popconnect/internal/render"
)

// loadSummary is `agency-client load`'s last line.
type loadSummary struct {
	Requests    int            `json:"requests"`
	OK          int            `json:"ok"`
	Outcomes    map[string]int `json:"outcomes"`
	FirstNotOK  int64          `json:"firstNotOK"`
	LastNotOK   int64          `json:"lastNotOK"`
	LastRequest int64          `json:"lastRequest"`
}

// startLoad starts `agency-client load` in the pod against path and waits
// for its first 200; stopLoad ends it and returns its summary.
func (a *agency) startLoad(ctx context.Context, t *testing.T, pod, path string, workers int) (stopLoad func() loadSummary) {
	t.Helper()
	lines, wait := a.cl.clientExecStream(ctx, t, a.ns, pod, "load", "-url", a.cl.gatewayURL(t)+path,
		"-server-name", servingName, "-workers", fmt.Sprint(workers), "-interval", "20ms", "-duration", "10m")
	if l, ok := nextLine(t, lines, "waiting for the load's first 200"); !ok {
		t.Fatalf("load ended before its first 200: %v", wait())
	} else {
		t.Logf("load: %s", l)
	}
	return func() loadSummary {
		t.Helper()
		if _, err := a.cl.clientExec(ctx, a.ns, pod, "stop"); err != nil {
			t.Fatal(err)
		}
		var last string
		for l := range lines {
			last = l
		}
		if err := wait(); err != nil {
			t.Fatal(err)
		}
		var s loadSummary
		if err := json.Unmarshal([]byte(last), &s); err != nil {
			t.Fatalf("load's summary %q: %v", last, err)
		}
		t.Logf("load: %d requests, %d answered 200: %v", s.Requests, s.OK, s.Outcomes)
		return s
	}
}

// gatewayPods are the sample gateway's pods.
func (cl *cluster) gatewayPods(ctx context.Context, t *testing.T) []corev1.Pod {
	t.Helper()
	var pods corev1.PodList
	if err := cl.client.List(ctx, &pods, client.InNamespace(systemNamespace), client.MatchingLabels(render.GatewayPodLabels(gatewayName))); err != nil {
		t.Fatal(err)
	}
	return pods.Items
}

// waitGatewayRolledOut waits until the gateway's Deployment has all its
// replicas updated, ready and available, and no other pod is left.
func (cl *cluster) waitGatewayRolledOut(ctx context.Context, t *testing.T) {
	t.Helper()
	var gw popv1.PopulationGateway
	if err := cl.client.Get(ctx, client.ObjectKey{Namespace: systemNamespace, Name: gatewayName}, &gw); err != nil {
		t.Fatal(err)
	}
	deployment := render.NamesFor(&gw).Deployment
	err := poll(ctx, installTimeout, func() (bool, string, error) {
		var d appsv1.Deployment
		if err := cl.client.Get(ctx, client.ObjectKey{Namespace: systemNamespace, Name: deployment}, &d); err != nil {
			return false, err.Error(), nil
		}
		want := ptrValue(d.Spec.Replicas, 1)
		pods := cl.gatewayPods(ctx, t)
		state := fmt.Sprintf("gateway deployment: %d updated, %d ready, %d available of %d; %d pods",
			d.Status.UpdatedReplicas, d.Status.ReadyReplicas, d.Status.AvailableReplicas, want, len(pods))
		return d.Status.ObservedGeneration == d.Generation && d.Status.UpdatedReplicas == want &&
			d.Status.ReadyReplicas == want && d.Status.AvailableReplicas == want && d.Status.Replicas == want &&
			int32(len(pods)) == want, state, nil
	})
	if err != nil {
		cl.dump(t)
		t.Fatal(err)
	}
}

// TestDeletingAGatewayPodUnderLoadLosesOnlyRequestsInFlight: while an
// agency pod reads with 4 concurrent loops, one of the gateway's two pods
// is deleted; the Service keeps answering (the Deployment replaces the pod,
// readiness keeps the new one out until it can serve), and no more requests
// fail than were in flight: at most one per loop.
func TestDeletingAGatewayPodUnderLoadLosesOnlyRequestsInFlight(t *testing.T) {
	cl := setup(t)
	ctx := context.Background()
	a := cl.newAgency(t, "podloss", "E2E-DEL", nil)
	pod := cl.clientPod(t, a.ns, "loader", map[string]string{agencyPodLabel: agencyApp}, a.secret)
	id, err := popdb.NationalID(4)
	if err != nil {
		t.Fatal(err)
	}
	path := "/v1/citizens/" + id
	a.waitForOK(ctx, t, pod, path)
	cl.waitGatewayRolledOut(ctx, t)

	const workers = 4
	stopLoad := a.startLoad(ctx, t, pod, path, workers)
	victim := cl.gatewayPods(ctx, t)[0]
	deletedAt := time.Now()
	if err := cl.client.Delete(ctx, &victim); err != nil {
		t.Fatal(err)
	}
	err = poll(ctx, installTimeout, func() (bool, string, error) {
		err := cl.client.Get(ctx, client.ObjectKeyFromObject(&victim), &corev1.Pod{})
		return apierrors.IsNotFound(err), fmt.Sprintf("pod %s still there (%v)", victim.Name, err), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	cl.waitGatewayRolledOut(ctx, t)
	recoveredAt := time.Now()
	// A little load on the replaced pods before stopping: the summary must
	// cover the time after the recovery too.
	s := stopLoad()
	t.Logf("pod %s deleted; gateway back to full strength after %s", victim.Name, recoveredAt.Sub(deletedAt).Round(time.Millisecond))
	if s.LastRequest < recoveredAt.UnixNano() {
		t.Errorf("the load stopped before the gateway recovered")
	}
	if failed := s.Requests - s.OK; failed > workers {
		t.Errorf("%d of %d requests failed while a gateway pod was deleted (%v), want at most %d (those in flight)",
			failed, s.Requests, s.Outcomes, workers)
	}
}

// TestRollingUpdateUnderLoadFailsNoRequest: while an agency pod reads with
// 4 concurrent loops, the gateway's image changes; the Deployment rolls
// (maxUnavailable 0, maxSurge 1) and not one request fails.
func TestRollingUpdateUnderLoadFailsNoRequest(t *testing.T) {
	cl := setup(t)
	ctx := context.Background()
	a := cl.newAgency(t, "rollout", "E2E-ROLL", nil)
	pod := cl.clientPod(t, a.ns, "loader", map[string]string{agencyPodLabel: agencyApp}, a.secret)
	id, err := popdb.NationalID(5)
	if err != nil {
		t.Fatal(err)
	}
	path := "/v1/citizens/" + id
	a.waitForOK(ctx, t, pod, path)
	cl.waitGatewayRolledOut(ctx, t)
	before := map[string]bool{}
	for _, p := range cl.gatewayPods(ctx, t) {
		before[p.Name] = true
	}

	stopLoad := a.startLoad(ctx, t, pod, path, 4)
	var gw popv1.PopulationGateway
	if err := cl.client.Get(ctx, client.ObjectKey{Namespace: systemNamespace, Name: gatewayName}, &gw); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(gw.DeepCopy())
	gw.Spec.Image = imageRegistry + "/popconnect-gateway:" + imageTag + "-next"
	start := time.Now()
	if err := cl.client.Patch(ctx, &gw, patch); err != nil {
		t.Fatal(err)
	}
	err = poll(ctx, installTimeout, func() (bool, string, error) {
		pods := cl.gatewayPods(ctx, t)
		for _, p := range pods {
			if before[p.Name] || p.Spec.Containers[0].Image != gw.Spec.Image {
				return false, "old pods left: " + p.Name, nil
			}
		}
		return true, "", nil
	})
	if err != nil {
		cl.dump(t)
		t.Fatal(err)
	}
	cl.waitGatewayRolledOut(ctx, t)
	t.Logf("rolling update to %s done in %s", gw.Spec.Image, time.Since(start).Round(time.Millisecond))
	s := stopLoad()
	if s.OK != s.Requests {
		t.Errorf("%d of %d requests failed during the rolling update: %v", s.Requests-s.OK, s.Requests, s.Outcomes)
	}
}
