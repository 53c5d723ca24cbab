package controllers

import (
	"context"
	"errors"
	"slices"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/internal/policyplan"
)

// FinalizerNetworkPolicy guards the NetworkPolicy a connection has in its
// gateway's namespace: an owner reference cannot cross namespaces, so the
// connection removes it itself before it goes.
const FinalizerNetworkPolicy = "popconnect.io/network-policy-cleanup"

// AgencyConnectionReconciler turns an AgencyConnection into its client
// Certificate, its NetworkPolicy and its status; the connection's policy
// entry is written by the PolicyShardReconciler, which this one
// checks to report Programmed.
type AgencyConnectionReconciler struct {
	Client client.Client
	// APIReader reads what the cache does not hold (CertificateRequests,
	// read once per issued certificate for its serial number).
	APIReader client.Reader
	Recorder  events.EventRecorder
	Clock     clock.PassiveClock
	// CertificateGrace is the Options field of the same name.
	CertificateGrace time.Duration

	// shards are the digests of the policy shards' entries (reconcileProgramming).
	shards memo[types.NamespacedName, shardDigests]
	// serials are the serial and digest of each Certificate's current
	// revision (currentIssued), renewals the last renewal requested of
	// each Certificate (renew).
	serials  memo[types.NamespacedName, revisionSerial]
	renewals memo[types.NamespacedName, string]
}

// +kubebuilder:rbac:groups=popconnect.io,resources=agencyconnections,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=popconnect.io,resources=agencyconnections/status,verbs=get;patch
// +kubebuilder:rbac:groups=popconnect.io,resources=agencyconnections/finalizers,verbs=update
// +kubebuilder:rbac:groups=cert-manager.io,resources=certificates,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=cert-manager.io,resources=certificates/status,verbs=get;patch
// +kubebuilder:rbac:groups=cert-manager.io,resources=certificaterequests,verbs=get;list
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups=networking.k8s.io,resources=networkpolicies,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// connState is what one reconcile of a connection learns, phase by phase.
type connState struct {
	observations
	conn *popv1.AgencyConnection

	gateway *popv1.PopulationGateway // nil when it does not exist
	catalog *popv1.FieldCatalog      // nil when it does not exist

	// verdict is the policy compiler's: whether the connection is admitted
	// (and why not), whether its identity is refused (no certificate, no
	// network access), whether its entry denies it.
	verdict *policyplan.Verdict

	certificate *popv1.CertificateStatus
}

// observations are what one reconcile of a connection or a gateway decides
// for the object's status, phase by phase.
type observations struct {
	// obj is the object reconciled: its conditions observe its generation.
	obj        metav1.Object
	now        time.Time
	conditions map[string]metav1.Condition
	// wakeAt are future moments the status depends on (validUntil, expiry,
	// a look again).
	wakeAt []time.Time
}

func newObservations(obj metav1.Object, now time.Time) observations {
	return observations{obj: obj, now: now, conditions: map[string]metav1.Condition{}}
}

func (o *observations) setCondition(condType string, status metav1.ConditionStatus, reason, message string) {
	o.conditions[condType] = metav1.Condition{
		Type: condType, Status: status, Reason: reason, Message: message, ObservedGeneration: o.obj.GetGeneration(),
	}
}

func (o *observations) wakeUpAt(t time.Time) {
	if t.After(o.now) {
		o.wakeAt = append(o.wakeAt, t)
	}
}

// setPlanned sets a condition the policy compiler decided.
func (s *connState) setPlanned(c policyplan.Condition) {
	s.setCondition(c.Type, c.Status, c.Reason, c.Message)
}

// Reconcile brings one connection's children and status in line with its spec.
func (r *AgencyConnectionReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	conn := &popv1.AgencyConnection{}
	if err := r.Client.Get(ctx, req.NamespacedName, conn); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !conn.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, r.finalize(ctx, conn)
	}
	s := &connState{observations: newObservations(conn, r.Clock.Now()), conn: conn}

	// resolve and validate decide what the other phases do: stop on error.
	if err := r.resolve(ctx, s); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.validate(ctx, s); err != nil {
		return ctrl.Result{}, err
	}
	return runPhases(ctx, s, &s.observations, r.patchStatus,
		r.reconcileFinalizer,
		r.reconcileCertificate,
		r.reconcileNetwork,
		r.reconcileProgramming,
	)
}

// runPhases runs every phase, whatever the others returned, then
// patchStatus, told whether they all succeeded; then it requeues at the
// earliest moment the status depends on. A status patch refused as a
// conflict (its optimistic lock: the cached copy was older than the
// object) after phases that all succeeded is no error: the object is
// reconciled again on a fresh copy, without a "Reconciler error" in the
// log for what is the lock doing its job.
func runPhases[S any](ctx context.Context, s S, o *observations, patchStatus func(context.Context, S, bool) error, phases ...func(context.Context, S) error) (ctrl.Result, error) {
	var errs []error
	for _, phase := range phases {
		if err := phase(ctx, s); err != nil {
			errs = append(errs, err)
		}
	}
	if err := patchStatus(ctx, s, len(errs) == 0); err != nil {
		if apierrors.IsConflict(err) && len(errs) == 0 {
			return ctrl.Result{Requeue: true}, nil
		}
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: nextWake(o.now, o.wakeAt)}, nil
}

// nextWake is how long until the earliest future moment, or 0 for none.
func nextWake(now time.Time, at []time.Time) time.Duration {
	var next time.Duration
	for _, t := range at {
		// A second past the moment, so the clock has surely passed it.
		d := t.Sub(now) + time.Second
		if d > 0 && (next == 0 || d < next) {
			next = d
		}
	}
	return next
}

// ownedCertificate reports whether the Certificate was made for conn.
func ownedCertificate(cert *cmapi.Certificate, conn *popv1.AgencyConnection) bool {
	return slices.ContainsFunc(cert.OwnerReferences, func(ref metav1.OwnerReference) bool { return ref.UID == conn.UID })
}
