package controllers

import (
	"context"
	"fmt"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/internal/render"
)

// Options configure the operator's reconcilers.
type Options struct {
	// GatewayImage is the image of gateways that do not set spec.image.
	GatewayImage string
	// Clock is the time source; the real clock when nil.
	Clock clock.PassiveClock
	// MaxConcurrentReconciles per controller; 1 when 0.
	MaxConcurrentReconciles int
	// CertificateGrace is how long a renewed client certificate's
	// predecessor stays pinned; DefaultCertificateGrace when 0.
	CertificateGrace time.Duration
	// Manager names the operator's own pods (namespace and labels), which
	// gateways' NetworkPolicies let reach the pods' metrics port for
	// GET /auditz; nothing is let in when its namespace is empty.
	Manager render.ManagerPeer
	// AuditProbePort is the gateway pods' port of GET /auditz;
	// DefaultAuditProbePort when 0.
	AuditProbePort int
	// RateLimitRefresh is how often a gateway with a Redis store is asked
	// again where its pods count the limits; DefaultRateLimitRefresh when 0.
	RateLimitRefresh time.Duration
}

// CacheOptions limit the manager's informers to the objects the operator
// writes (by their managed-by label) and drop what no reconciler reads
// (dropUnread): with 10,000 connections, caching every ConfigMap, Secret or
// NetworkPolicy of the cluster would cost far more memory than the
// operator's own objects. The connections' NetworkPolicies and Certificates
// are cached slim, their specs replaced by a digest (cache_slim.go), and the
// connections compact (cache_compact.go).
func CacheOptions() cache.Options {
	managed := cache.ByObject{Label: labels.SelectorFromSet(labels.Set{render.LabelManagedBy: render.ManagedByValue})}
	return cache.Options{
		DefaultTransform: dropUnread,
		ByObject: map[client.Object]cache.ByObject{
			&corev1.ConfigMap{}:             managed,
			&corev1.ServiceAccount{}:        managed,
			&corev1.Service{}:               managed,
			&appsv1.Deployment{}:            managed,
			&policyv1.PodDisruptionBudget{}: managed,
			&rbacv1.Role{}:                  managed,
			&rbacv1.RoleBinding{}:           managed,
			// Slim: see cache_slim.go.
			&networkingv1.NetworkPolicy{}: {Label: managed.Label, Transform: slimNetworkPolicy},
			&cmapi.Certificate{}:          {Label: managed.Label, Transform: slimCertificate},
			&popv1.AgencyConnection{}:     {Transform: compactConnection},
			// Gateway pods, slimmed to what AuditReady reads.
			&corev1.Pod{}: {Label: managed.Label, Transform: auditPodFields},
			// Only the API server's own endpoints, which gateways' egress
			// policies name.
			&discoveryv1.EndpointSlice{}: {
				Namespaces: map[string]cache.Config{apiServerServiceNamespace: {}},
				Label:      labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: apiServerServiceName}),
			},
		},
	}
}

// lastAppliedAnnotation is where client-side kubectl apply keeps a whole
// copy of the object as last applied.
const lastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"

// dropUnread removes, before an object enters the cache, the metadata no
// reconciler reads and that can be as large as the object itself:
// managedFields, and the copy client-side kubectl apply leaves in an
// annotation (an AgencyConnection applied with kubectl carries its whole
// spec twice). Patches are computed between two in-memory copies, so what
// is dropped here is never written back or removed from the server.
func dropUnread(obj any) (any, error) {
	obj, err := cache.TransformStripManagedFields()(obj)
	if err != nil {
		return obj, err
	}
	if m, ok := obj.(metav1.Object); ok {
		if a := m.GetAnnotations(); a[lastAppliedAnnotation] != "" {
			delete(a, lastAppliedAnnotation)
			if len(a) == 0 {
				m.SetAnnotations(nil)
			}
		}
	}
	return obj, nil
}

// SetupWithManager registers the indexes and the four reconcilers: one per
// kind, and one per policy shard of a gateway.
func SetupWithManager(ctx context.Context, mgr ctrl.Manager, opts Options) error {
	clk := opts.Clock
	if clk == nil {
		clk = clock.RealClock{}
	}
	copts := controller.Options{MaxConcurrentReconciles: max(opts.MaxConcurrentReconciles, 1)}
	if err := setupIndexes(ctx, mgr); err != nil {
		return err
	}
	if err := (&FieldCatalogReconciler{Client: mgr.GetClient()}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the FieldCatalog controller: %w", err)
	}
	failures := newShardFailures()
	if err := (&PopulationGatewayReconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Clock: clk, GatewayImage: opts.GatewayImage,
		Recorder: mgr.GetEventRecorder("popconnect-manager"), Manager: opts.Manager, AuditProbePort: opts.AuditProbePort,
		RateLimitRefresh: opts.RateLimitRefresh, failures: failures,
	}).SetupWithManager(mgr, copts); err != nil {
		return fmt.Errorf("setting up the PopulationGateway controller: %w", err)
	}
	if err := (&PolicyShardReconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Clock: clk, Recorder: mgr.GetEventRecorder("popconnect-manager"),
		failures: failures,
	}).SetupWithManager(mgr, controller.TypedOptions[shardKey]{MaxConcurrentReconciles: copts.MaxConcurrentReconciles}); err != nil {
		return fmt.Errorf("setting up the policy shard controller: %w", err)
	}
	if err := (&AgencyConnectionReconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Recorder:  mgr.GetEventRecorder("popconnect-manager"),
		Clock:     clk,

		CertificateGrace: opts.CertificateGrace,
	}).SetupWithManager(mgr, copts); err != nil {
		return fmt.Errorf("setting up the AgencyConnection controller: %w", err)
	}
	return nil
}
