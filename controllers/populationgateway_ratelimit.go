package controllers

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/gateway/ratelimit/limitstate"
)

// The RateLimitShared condition: where the gateway pods count the agencies'
// limits, asked of each pod at GET /ratelimitz alongside GET /auditz, for
// a gateway with spec.rateLimitStore.redis only.

// DefaultRateLimitRefresh is how often a gateway with a Redis store is
// asked again. A pod falls back to its share, or back to the shared count,
// without any Kubernetes event (its readiness does not change: it keeps
// serving), so only asking again sees it.
const DefaultRateLimitRefresh = 30 * time.Second

func (r *PopulationGatewayReconciler) rateLimitRefresh() time.Duration {
	if r.RateLimitRefresh > 0 {
		return r.RateLimitRefresh
	}
	return DefaultRateLimitRefresh
}

// rateLimitShared is the RateLimitShared condition from the pods' answers.
// A pod on its share makes it False first (the agencies get less than
// their limits there, and less is counted in Redis), then a pod counting
// alone (a pod older than the store, during a rollout). Pods that did not
// answer are left out; only when none answered is it Unknown.
func rateLimitShared(o auditObservation) (metav1.ConditionStatus, string, string) {
	probed := slices.Clone(o.probed)
	slices.SortFunc(probed, func(a, b podAudit) int { return strings.Compare(a.pod, b.pod) })
	var answered, fallback, alone []podAudit
	for _, p := range probed {
		switch {
		case p.limits == nil:
			continue
		case p.limits.Store != limitstate.StoreRedis:
			alone = append(alone, p)
		case !p.limits.Shared:
			fallback = append(fallback, p)
		}
		answered = append(answered, p)
	}
	switch {
	case len(fallback) > 0:
		f := fallback[0]
		since := "a moment ago"
		if f.limits.FallbackSince != nil {
			since = f.limits.FallbackSince.UTC().Format(time.RFC3339)
		}
		lastError := f.limits.LastError
		if lastError == "" {
			lastError = "no error given"
		}
		return metav1.ConditionFalse, popv1.ReasonFallbackToShare, fmt.Sprintf(
			"%d of %d gateway pods cannot reach Redis and enforce their share of every agency's limits "+
				"(each limit divided by %d, the replicas last counted live) until it answers; pod %s since %s: %s.",
			len(fallback), len(answered), max(1, f.limits.Replicas), f.pod, since, lastError)
	case len(alone) > 0:
		return metav1.ConditionFalse, popv1.ReasonNoStore, fmt.Sprintf(
			"%d of %d gateway pods count the agencies' limits alone, without Redis (pods from before "+
				"spec.rateLimitStore, until the rollout replaces them); pod %s.",
			len(alone), len(answered), alone[0].pod)
	case len(answered) > 0:
		return metav1.ConditionTrue, popv1.ReasonSharedCountInUse, fmt.Sprintf(
			"Every gateway pod that answered (%d of %d) counts the agencies' limits in Redis, one count for all.",
			len(answered), max(o.pods, len(answered)))
	case len(probed) > 0:
		return metav1.ConditionUnknown, popv1.ReasonRateLimitStateUnknown, fmt.Sprintf(
			"None of the %d running gateway pods answered GET /ratelimitz on port %d; pod %s: %s.",
			len(probed), o.port, probed[0].pod, probed[0].limitsErr)
	default:
		return metav1.ConditionUnknown, popv1.ReasonRateLimitStateUnknown, "No gateway pod runs yet."
	}
}

// getRateLimitState is one pod's GET /ratelimitz, or why there is none.
func (r *PopulationGatewayReconciler) getRateLimitState(ctx context.Context, podIP string) (*limitstate.State, string) {
	var state limitstate.State
	// A gateway older than GET /ratelimitz answers 404.
	url, _, err := r.getPodJSON(ctx, podIP, "/ratelimitz", "a rate-limit state", &state, http.StatusOK)
	if err != nil {
		return nil, err.Error()
	}
	if state.Store == "" {
		return nil, fmt.Sprintf("GET %s: not a rate-limit state (no store)", url)
	}
	return &state, ""
}
