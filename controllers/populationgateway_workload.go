package controllers

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/internal/render"
)

// auditKeyBytes is the size of a generated audit HMAC key.
const auditKeyBytes = 32

// reconcileAuditKey creates the gateway's audit HMAC key once. It is never
// rewritten (a new key would make old and new audit hashes incomparable,
// and break the audit chain) and never read: the manager may get Secrets by
// name and create them, but not list or watch them, so it holds no Secret
// in memory and cannot enumerate the cluster's. One metadata-only read by
// name per gateway and process start tells whether the key exists and is
// this gateway's; the answer is remembered. Someone else's Secret under
// that name (pre-created, so its author knows the key) is never used: the
// Deployment that would mount it is not written.
func (r *PopulationGatewayReconciler) reconcileAuditKey(ctx context.Context, s *gatewayState) error {
	key := client.ObjectKeyFromObject(s.gw)
	if uid, ok := r.auditKeys.get(key); ok && uid == s.gw.UID {
		return nil
	}
	name := render.NamesFor(s.gw).AuditKeySecret
	meta := &metav1.PartialObjectMetadata{}
	meta.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	err := uncached(r.Client, r.APIReader).Get(ctx, client.ObjectKey{Namespace: s.gw.Namespace, Name: name}, meta)
	switch {
	case err == nil && !gatewayOwns(s.gw)(meta):
		s.auditKeyConflict = nameConflict("Secret", s.gw.Namespace, name)
		return nil
	case err == nil:
	case apierrors.IsNotFound(err):
		secret, err := auditKeySecret(s.gw, name)
		if err != nil {
			return err
		}
		// AlreadyExists (made since the read) is retried: the read then
		// says whose it is.
		if err := r.Client.Create(ctx, secret, client.FieldOwner(render.FieldOwner)); err != nil {
			return fmt.Errorf("creating audit key Secret %s/%s: %w", s.gw.Namespace, name, err)
		}
	default:
		return fmt.Errorf("reading audit key Secret %s/%s: %w", s.gw.Namespace, name, err)
	}
	r.auditKeys.put(key, s.gw.UID)
	return nil
}

// auditKeySecret is a new audit key: 32 random bytes.
func auditKeySecret(gw *popv1.PopulationGateway, name string) (*corev1.Secret, error) {
	key := make([]byte, auditKeyBytes)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("generating the audit key: %w", err)
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name:            name,
			Namespace:       gw.Namespace,
			Labels:          map[string]string{render.LabelManagedBy: render.ManagedByValue, render.LabelGateway: render.GatewayLabelValue(gw.Name), render.LabelComponent: "audit-key"},
			OwnerReferences: []metav1.OwnerReference{controllerRef(gw, "PopulationGateway")},
		},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{"key": key},
	}, nil
}

// reconcileWorkload applies the gateway's workload and reports its
// serving certificate and availability.
func (r *PopulationGatewayReconciler) reconcileWorkload(ctx context.Context, s *gatewayState) error {
	gw := s.gw
	egress, err := r.gatewayEgress(ctx, s)
	if err != nil {
		return err
	}
	desired := []client.Object{
		render.GatewayServiceAccount(gw),
		render.GatewayRole(gw),
		render.GatewayRoleBinding(gw),
		render.GatewayServingCertificate(gw),
	}
	var conflicts []string
	if s.auditKeyConflict == nil {
		desired = append(desired, render.GatewayDeployment(gw, render.GatewayOptions{DefaultImage: r.GatewayImage}))
	} else {
		// Without the key it would mount, no Deployment is written.
		conflicts = append(conflicts, s.auditKeyConflict.Error())
	}
	desired = append(desired, render.GatewayService(gw), render.GatewayPodDisruptionBudget(gw), egress.Policy)
	for _, obj := range desired {
		err := r.applyOwned(ctx, gw, obj)
		switch {
		case errors.Is(err, errNameConflict):
			conflicts = append(conflicts, err.Error())
		case err != nil:
			s.setCondition(popv1.ConditionAvailable, metav1.ConditionFalse, popv1.ReasonPending,
				"Writing the gateway's objects failed and will be retried: "+err.Error())
			return err
		}
	}
	names := render.NamesFor(gw)
	if err := r.observeServingCertificate(ctx, s, names.ServingCertificate); err != nil {
		return err
	}
	if len(conflicts) > 0 {
		// Only the other objects' owners can fix this; look again later.
		s.wakeUpAt(s.now.Add(nameConflictRecheck))
		s.setCondition(popv1.ConditionAvailable, metav1.ConditionFalse, popv1.ReasonNameConflict,
			strings.Join(conflicts, "; ")+".")
		return nil
	}
	return r.observeDeployment(ctx, s, names.Deployment)
}

func (r *PopulationGatewayReconciler) observeServingCertificate(ctx context.Context, s *gatewayState, name string) error {
	// An absent Certificate stays empty: it has no Ready condition.
	cert := &cmapi.Certificate{}
	if _, err := getCached(ctx, r.Client, client.ObjectKey{Namespace: s.gw.Namespace, Name: name}, cert); err != nil {
		return err
	}
	ready := certificateCondition(cert, cmapi.CertificateConditionReady)
	if ready == nil || ready.Status != cmmeta.ConditionTrue {
		msg := fmt.Sprintf("cert-manager is issuing the serving Certificate %s.", name)
		if ready != nil && ready.Message != "" {
			msg = fmt.Sprintf("Serving Certificate %s: %s", name, ready.Message)
		}
		s.setCondition(popv1.ConditionCertificateReady, metav1.ConditionFalse, popv1.ReasonIssuing, msg)
		return nil
	}
	msg := fmt.Sprintf("Serving Certificate %s is issued into Secret %s", name, cert.Spec.SecretName)
	if cert.Status.NotAfter != nil {
		msg += ", valid until " + cert.Status.NotAfter.UTC().Format("2006-01-02T15:04:05Z")
	}
	s.setCondition(popv1.ConditionCertificateReady, metav1.ConditionTrue, popv1.ReasonIssued, msg+".")
	return nil
}

func (r *PopulationGatewayReconciler) observeDeployment(ctx context.Context, s *gatewayState, name string) error {
	// An absent Deployment stays empty: no pod available, no condition.
	dep := &appsv1.Deployment{}
	if _, err := getCached(ctx, r.Client, client.ObjectKey{Namespace: s.gw.Namespace, Name: name}, dep); err != nil {
		return err
	}
	want := render.GatewayReplicas(s.gw)
	s.availableReplicas = dep.Status.AvailableReplicas
	switch {
	case want == 0:
		s.setCondition(popv1.ConditionAvailable, metav1.ConditionFalse, popv1.ReasonScaledToZero,
			"spec.replicas is 0: no gateway pod runs.")
	case deploymentAvailable(dep):
		s.setCondition(popv1.ConditionAvailable, metav1.ConditionTrue, popv1.ConditionAvailable,
			fmt.Sprintf("%d of %d gateway pods are available.", dep.Status.AvailableReplicas, want))
	default:
		s.setCondition(popv1.ConditionAvailable, metav1.ConditionFalse, popv1.ReasonDeploymentUnavailable,
			fmt.Sprintf("%d of %d gateway pods are available (Deployment %s).", s.availableReplicas, want, name))
	}
	return nil
}

func deploymentAvailable(dep *appsv1.Deployment) bool {
	if dep.Status.ObservedGeneration < dep.Generation {
		return false
	}
	for _, c := range dep.Status.Conditions {
		if c.Type == appsv1.DeploymentAvailable {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
