package controllers_test

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/internal/render"
	"github.com/popconnect/popconnect/internal/testenv"
)

// TestGatewayRateLimitRedis: spec.rateLimitStore.redis points the gateway
// pods at Redis (URL, a key prefix of their own, the replica count, the
// password's Secret key as a file); the NetworkPolicy opens
// spec.rateLimitStore.redis.to on the address's port, and without to
// NetworkReady says what is missing.
func TestGatewayRateLimitRedis(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, "rl-redis")
	t.Cleanup(func() { _ = s.c.Delete(context.Background(), f.gateway) })
	store := &popv1.RateLimitStoreSpec{Redis: &popv1.RedisRateLimitStoreSpec{
		Address:           "redis.redis.svc:6379",
		PasswordSecretRef: &popv1.SecretKeyReference{Name: "ratelimit-redis", Key: "pw"},
	}}
	setRateLimitStore(t, f.gateway, store)
	waitGateway(t, f.gateway, "NetworkReady to name spec.rateLimitStore.redis.to", func(gw *popv1.PopulationGateway) bool {
		c := meta.FindStatusCondition(gw.Status.Conditions, popv1.ConditionNetworkReady)
		return c != nil && c.Status == metav1.ConditionFalse && c.Reason == popv1.ReasonEgressUnresolved &&
			strings.Contains(c.Message, "spec.rateLimitStore.redis.to") && c.ObservedGeneration == gw.Generation
	})

	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: render.NamesFor(f.gateway).Deployment}}
	testenv.Poll(t, waitShort, func() (bool, error) {
		err := s.c.Get(ctx, client.ObjectKeyFromObject(dep), dep)
		return err == nil && slices.Contains(dep.Spec.Template.Spec.Containers[0].Args,
			"--ratelimit-redis-url=redis://redis.redis.svc:6379/0"), client.IgnoreNotFound(err)
	})
	args := dep.Spec.Template.Spec.Containers[0].Args
	replicas := int32(2)
	if dep.Spec.Replicas != nil && *dep.Spec.Replicas > 0 {
		replicas = *dep.Spec.Replicas
	}
	for _, want := range []string{
		"--ratelimit-redis-key-prefix=popconnect:" + f.ns + "/" + f.gateway.Name + ":",
		"--ratelimit-redis-password-file=/etc/popconnect/ratelimit-redis/password",
		"--ratelimit-replicas=" + strconv.Itoa(int(replicas)),
	} {
		if !slices.Contains(args, want) {
			t.Errorf("args %v lack %s", args, want)
		}
	}
	i := slices.IndexFunc(dep.Spec.Template.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == "ratelimit-redis" })
	if i < 0 || dep.Spec.Template.Spec.Volumes[i].Secret == nil || dep.Spec.Template.Spec.Volumes[i].Secret.SecretName != "ratelimit-redis" ||
		len(dep.Spec.Template.Spec.Volumes[i].Secret.Items) != 1 || dep.Spec.Template.Spec.Volumes[i].Secret.Items[0] != (corev1.KeyToPath{Key: "pw", Path: "password"}) {
		t.Errorf("volumes = %+v, want key pw of Secret ratelimit-redis as file password", dep.Spec.Template.Spec.Volumes)
	}

	store.Redis.To = []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "10.50.0.0/24"}}}
	setRateLimitStore(t, f.gateway, store)
	np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: render.NamesFor(f.gateway).DefaultDenyPolicy}}
	hasRedis := func() bool {
		for _, r := range np.Spec.Egress {
			if len(r.To) == 1 && r.To[0].IPBlock != nil && r.To[0].IPBlock.CIDR == "10.50.0.0/24" &&
				len(r.Ports) == 1 && r.Ports[0].Port.IntVal == 6379 && *r.Ports[0].Protocol == corev1.ProtocolTCP {
				return true
			}
		}
		return false
	}
	testenv.Poll(t, waitShort, func() (bool, error) {
		err := s.c.Get(ctx, client.ObjectKeyFromObject(np), np)
		return err == nil && hasRedis(), client.IgnoreNotFound(err)
	})
	waitGateway(t, f.gateway, "NetworkReady to stop naming spec.rateLimitStore.redis.to", func(gw *popv1.PopulationGateway) bool {
		c := meta.FindStatusCondition(gw.Status.Conditions, popv1.ConditionNetworkReady)
		return c != nil && !strings.Contains(c.Message, "spec.rateLimitStore.redis.to") && c.ObservedGeneration == gw.Generation
	})
}

func setRateLimitStore(t *testing.T, gw *popv1.PopulationGateway, spec *popv1.RateLimitStoreSpec) {
	t.Helper()
	ctx := context.Background()
	cur := &popv1.PopulationGateway{}
	must(t, s.c.Get(ctx, client.ObjectKeyFromObject(gw), cur), "reading the gateway")
	patch := client.MergeFrom(cur.DeepCopy())
	cur.Spec.RateLimitStore = spec.DeepCopy()
	must(t, s.c.Patch(ctx, cur, patch), "setting spec.rateLimitStore")
}
