package controllers

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/gateway/audit"
	"github.com/popconnect/popconnect/internal/render"
)

// Asking the gateway pods for their audit state.
const (
	// DefaultAuditProbePort is the gateway's plain-HTTP metrics port, where
	// it serves GET /auditz.
	DefaultAuditProbePort = 9090
	// auditProbeTimeout bounds one pod's answer: /auditz reads memory only,
	// so a pod that takes longer is not answering.
	auditProbeTimeout = 2 * time.Second
	// auditProbeParallel bounds the pods asked at once.
	auditProbeParallel = 8
	// auditStateMaxBytes bounds an answer read; a State is ~200 bytes.
	auditStateMaxBytes = 64 << 10
)

// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch

// newAuditProbeClient is the client that asks gateway pods for their audit
// state: never through a proxy (pod IPs are reached directly), no
// connection kept between reconciles.
func newAuditProbeClient() *http.Client {
	return &http.Client{
		Timeout: auditProbeTimeout,
		Transport: &http.Transport{
			Proxy:             nil,
			DialContext:       (&net.Dialer{Timeout: auditProbeTimeout}).DialContext,
			DisableKeepAlives: true,
		},
		// /auditz does not redirect; a redirect is not an answer.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// reconcileAudit asks every running gateway pod for its audit state and
// sets AuditReady from the answers. It writes nothing.
func (r *PopulationGatewayReconciler) reconcileAudit(ctx context.Context, s *gatewayState) error {
	// Only a gateway with a Redis store is asked where its pods count the
	// limits (RateLimitShared).
	limits := render.GatewayRedis(s.gw) != nil
	var pods corev1.PodList
	if err := r.Client.List(ctx, &pods, client.InNamespace(s.gw.Namespace), client.MatchingLabels{
		render.LabelGateway:   render.GatewayLabelValue(s.gw.Name),
		render.LabelComponent: render.GatewayComponentGateway,
	}); err != nil {
		s.setCondition(popv1.ConditionAuditReady, metav1.ConditionUnknown, popv1.ReasonAuditStateUnknown,
			"Listing the gateway pods failed and will be retried.")
		if limits {
			s.setCondition(popv1.ConditionRateLimitShared, metav1.ConditionUnknown, popv1.ReasonRateLimitStateUnknown,
				"Listing the gateway pods failed and will be retried.")
		}
		return fmt.Errorf("listing the gateway pods: %w", err)
	}
	obs := auditObservation{replicas: render.GatewayReplicas(s.gw), port: r.auditProbePort()}
	var ask []*corev1.Pod
	for i := range pods.Items {
		pod := &pods.Items[i]
		if !pod.DeletionTimestamp.IsZero() || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			continue
		}
		obs.pods++
		if pod.Status.Phase == corev1.PodRunning && pod.Status.PodIP != "" {
			ask = append(ask, pod)
		}
	}
	obs.probed = r.probeAudit(ctx, ask, limits)
	status, reason, message, refresh := auditReady(obs)
	s.setCondition(popv1.ConditionAuditReady, status, reason, message)
	if refresh {
		s.wakeUpAt(s.now.Add(auditRefresh))
	}
	if limits {
		status, reason, message := rateLimitShared(obs)
		s.setCondition(popv1.ConditionRateLimitShared, status, reason, message)
		// A pod falls back to its share, or back, without any pod event:
		// only asking again sees it.
		s.wakeUpAt(s.now.Add(r.rateLimitRefresh()))
	}
	return nil
}

// probeAudit asks the pods, a few at a time, and returns one answer each;
// with limits, each pod's rate-limit state too.
func (r *PopulationGatewayReconciler) probeAudit(ctx context.Context, pods []*corev1.Pod, limits bool) []podAudit {
	out := make([]podAudit, len(pods))
	sem := make(chan struct{}, auditProbeParallel)
	var wg sync.WaitGroup
	for i, pod := range pods {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			out[i] = podAudit{pod: pod.Name}
			if limits {
				out[i].limits, out[i].limitsErr = r.getRateLimitState(ctx, pod.Status.PodIP)
			}
			state, err := r.getAuditState(ctx, pod.Status.PodIP)
			if err != nil {
				out[i].err = err.Error()
				return
			}
			out[i].state = state
		})
	}
	wg.Wait()
	return out
}

// getAuditState is one pod's GET /auditz: its State, whether the pod says
// 200 (healthy) or 503 (failing).
func (r *PopulationGatewayReconciler) getAuditState(ctx context.Context, podIP string) (*audit.State, error) {
	var state audit.State
	// An older gateway that does not serve /auditz answers 404.
	url, status, err := r.getPodJSON(ctx, podIP, "/auditz", "an audit state", &state, http.StatusOK, http.StatusServiceUnavailable)
	if err != nil {
		return nil, err
	}
	if state.Sink == "" {
		return nil, fmt.Errorf("GET %s: HTTP %d, not an audit state (no sink)", url, status)
	}
	return &state, nil
}

// getPodJSON is one pod's GET path on the probe port, its JSON answer (what
// it should be, for the error) decoded into v when the status is one of ok. It returns the URL asked
// and the status, for the caller's messages.
func (r *PopulationGatewayReconciler) getPodJSON(ctx context.Context, podIP, path, what string, v any, ok ...int) (string, int, error) {
	ctx, cancel := context.WithTimeout(ctx, auditProbeTimeout)
	defer cancel()
	url := "http://" + net.JoinHostPort(podIP, strconv.Itoa(r.auditProbePort())) + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return url, 0, err
	}
	resp, err := r.AuditProbeClient.Do(req)
	if err != nil {
		// The URL (pod IP and port) is in the error already.
		return url, 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	if !slices.Contains(ok, resp.StatusCode) {
		return url, resp.StatusCode, fmt.Errorf("GET %s: HTTP %d", url, resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, auditStateMaxBytes)).Decode(v); err != nil {
		return url, resp.StatusCode, fmt.Errorf("GET %s: HTTP %d, not %s: %w", url, resp.StatusCode, what, err)
	}
	return url, resp.StatusCode, nil
}

func (r *PopulationGatewayReconciler) auditProbePort() int {
	return cmp.Or(r.AuditProbePort, DefaultAuditProbePort)
}
