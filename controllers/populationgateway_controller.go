package controllers

import (
	"context"
	"net/http"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/internal/render"
)

// PopulationGatewayReconciler runs a gateway: its workload (ServiceAccount,
// policy-reader Role, serving Certificate, Deployment, Service,
// PodDisruptionBudget, default-deny NetworkPolicy, audit key) and its
// status, which sums what its policy shards hold (the PolicyShardReconciler
// writes them); and it asks the gateway's pods whether they can write
// their audit records.
type PopulationGatewayReconciler struct {
	Client client.Client
	// APIReader reads past the cache: whether a name the cache does not
	// know is taken by someone else's object.
	APIReader client.Reader
	Clock     clock.PassiveClock
	// Recorder emits the Warning event of a gateway whose audit sink fails.
	Recorder events.EventRecorder
	// GatewayImage, Manager, AuditProbePort (tests point it at a local
	// server) and RateLimitRefresh are the Options of the same names.
	GatewayImage     string
	Manager          render.ManagerPeer
	AuditProbePort   int
	RateLimitRefresh time.Duration
	// AuditProbeClient asks the pods; newAuditProbeClient's when nil.
	AuditProbeClient *http.Client

	// auditKeys are the gateways (by name, with their UID: a gateway made
	// again under the same name checks again) whose audit key Secret is
	// known to exist, so that a reconcile costs no API request for it (the
	// manager does not watch Secrets).
	auditKeys memo[types.NamespacedName, types.UID]
	// failures are the policy shards the shard reconciler cannot write.
	failures *shardFailures
}

// +kubebuilder:rbac:groups=popconnect.io,resources=populationgateways,verbs=get;list;watch
// +kubebuilder:rbac:groups=popconnect.io,resources=populationgateways/status,verbs=get;patch
// +kubebuilder:rbac:groups=popconnect.io,resources=populationgateways/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups="",resources=serviceaccounts;services,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=create;get
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=roles;rolebindings,verbs=get;list;watch;create;patch

// gatewayState is what one reconcile of a gateway learns, phase by phase.
type gatewayState struct {
	observations
	gw      *popv1.PopulationGateway
	catalog *popv1.FieldCatalog

	activeConnections int32
	policyVersion     string
	availableReplicas int32
	// auditKeyConflict is set when the audit key's name is taken by a
	// Secret the gateway does not control.
	auditKeyConflict error
}

// Reconcile brings one gateway's children, policy and status in line.
func (r *PopulationGatewayReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	gw := &popv1.PopulationGateway{}
	if err := r.Client.Get(ctx, req.NamespacedName, gw); err != nil {
		if apierrors.IsNotFound(err) {
			// Children carry owner references: the garbage collector removes them.
			r.auditKeys.forget(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !gw.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	s := &gatewayState{observations: newObservations(gw, r.Clock.Now()), gw: gw}
	return runPhases(ctx, s, &s.observations, r.patchStatus,
		r.resolveCatalog,
		r.reconcileAuditKey,
		r.reconcileWorkload,
		r.reconcilePolicy,
		r.reconcileAudit,
	)
}

func (r *PopulationGatewayReconciler) resolveCatalog(ctx context.Context, s *gatewayState) (err error) {
	s.catalog, err = catalogOf(ctx, r.Client, s.gw)
	return err
}

// applyOwned applies a child the gateway controls. A child whose name is
// held by an object the gateway does not control is left alone
// (errNameConflict).
func (r *PopulationGatewayReconciler) applyOwned(ctx context.Context, gw *popv1.PopulationGateway, desired client.Object) error {
	desired.SetOwnerReferences([]metav1.OwnerReference{controllerRef(gw, "PopulationGateway")})
	return newWriter(r.Client, r.APIReader).writeOwned(ctx, desired, gatewayOwns(gw), readFirst)
}

// gatewayOwns says whether an object is one of gw's children: controlled
// by a PopulationGateway of gw's name. The name, not the UID, so that a
// gateway deleted and made again adopts the children the garbage collector
// has not removed yet instead of reporting them as conflicts.
func gatewayOwns(gw *popv1.PopulationGateway) func(client.Object) bool {
	return func(o client.Object) bool { return metav1ControllerName(o, "PopulationGateway") == gw.Name }
}
