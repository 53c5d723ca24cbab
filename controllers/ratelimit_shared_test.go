package controllers_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/gateway/policy"
	"github.com/popconnect/popconnect/gateway/ratelimit"
	"github.com/popconnect/popconnect/internal/render"
	"github.com/popconnect/popconnect/internal/testenv"
	"github.com/popconnect/popconnect/internal/testredis"
)

// TestGatewayRateLimitSharedFromPods: RateLimitShared follows what a
// gateway pod answers at GET /ratelimitz, served by a real Redis store on
// a real redis-server that stops and comes back; it is said only of a
// gateway with spec.rateLimitStore.redis.
func TestGatewayRateLimitSharedFromPods(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, "rlshared")
	t.Cleanup(func() { _ = s.c.Delete(context.Background(), f.gateway) })

	srv := testredis.Start(t)
	store, err := ratelimit.NewRedis(ratelimit.RedisConfig{Addr: srv.Addr(), Password: srv.Password(),
		Timeout: time.Second, ProbeInterval: 50 * time.Millisecond, Replicas: 2})
	must(t, err, "creating the Redis store")
	t.Cleanup(func() { _ = store.Close() })
	mux := http.NewServeMux()
	mux.Handle("GET /ratelimitz", ratelimit.StateHandler(store))
	s.auditz.serve(t, mux)

	setRateLimitStore(t, f.gateway, &popv1.RateLimitStoreSpec{Redis: &popv1.RedisRateLimitStoreSpec{Address: "redis.redis.svc:6379"}})
	waitRateLimitShared(t, f.gateway, metav1.ConditionUnknown, popv1.ReasonRateLimitStateUnknown)

	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: render.NamesFor(f.gateway).Deployment}}
	testenv.Poll(t, waitShort, func() (bool, error) {
		err := s.c.Get(ctx, client.ObjectKeyFromObject(dep), dep)
		return err == nil, client.IgnoreNotFound(err)
	})
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: dep.Name + "-0", Labels: dep.Spec.Template.Labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "gateway", Image: "gateway:test"}}},
	}
	must(t, s.c.Create(ctx, pod), "creating the gateway pod")
	t.Cleanup(func() { _ = s.c.Delete(context.Background(), pod, client.GracePeriodSeconds(0)) })
	setPodReady(t, pod, corev1.ConditionTrue)
	waitRateLimitShared(t, f.gateway, metav1.ConditionTrue, popv1.ReasonSharedCountInUse)

	// Redis stops; the pod's next request finds it gone and falls back.
	// Nothing changes in Kubernetes: the operator sees it by asking again.
	srv.Stop()
	q := int64(100)
	a := store.Next(nil, "A1", policy.RateLimit{RequestsPerSecond: 10, Burst: 10, DailyQuota: &q}, time.UTC)
	a.AllowN(time.Now(), 1)
	if store.Shared() {
		t.Fatal("the store did not fall back with Redis stopped")
	}
	gw := waitRateLimitShared(t, f.gateway, metav1.ConditionFalse, popv1.ReasonFallbackToShare)
	c := meta.FindStatusCondition(gw.Status.Conditions, popv1.ConditionRateLimitShared)
	for _, want := range []string{"1 of 1", pod.Name, "divided by 1", "since"} {
		if !strings.Contains(c.Message, want) {
			t.Errorf("RateLimitShared message %q lacks %q", c.Message, want)
		}
	}
	if ready := meta.FindStatusCondition(gw.Status.Conditions, popv1.ConditionReady); ready != nil && ready.Reason == popv1.ReasonFallbackToShare {
		t.Errorf("Ready = %+v: a pod on its share keeps serving", ready)
	}
	testenv.Poll(t, waitShort, func() (bool, error) {
		return len(auditEvents(t, gw, corev1.EventTypeWarning, popv1.ReasonFallbackToShare)) > 0, nil
	})

	srv.Start()
	testenv.Poll(t, waitShort, func() (bool, error) { return store.Shared(), nil })
	waitRateLimitShared(t, f.gateway, metav1.ConditionTrue, popv1.ReasonSharedCountInUse)

	// Without the store, nothing is said.
	setRateLimitStore(t, f.gateway, nil)
	waitGateway(t, f.gateway, "RateLimitShared removed", func(cur *popv1.PopulationGateway) bool {
		return meta.FindStatusCondition(cur.Status.Conditions, popv1.ConditionRateLimitShared) == nil
	})
}

func waitRateLimitShared(t *testing.T, gw *popv1.PopulationGateway, status metav1.ConditionStatus, reason string) *popv1.PopulationGateway {
	t.Helper()
	return waitGateway(t, gw, "RateLimitShared "+string(status)+"/"+reason, func(cur *popv1.PopulationGateway) bool {
		c := meta.FindStatusCondition(cur.Status.Conditions, popv1.ConditionRateLimitShared)
		return c != nil && c.Status == status && c.Reason == reason
	})
}
