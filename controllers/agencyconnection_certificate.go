package controllers

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/internal/render"
)

// reconcileCertificate requests the agency's client certificate from
// cert-manager and reports whether it is issued and current. A connection
// whose agency code belongs to someone else never gets one.
func (r *AgencyConnectionReconciler) reconcileCertificate(ctx context.Context, s *connState) error {
	key := types.NamespacedName{Namespace: s.conn.Namespace, Name: render.ClientCertificateName(s.conn)}
	live := &cmapi.Certificate{}
	exists, err := getCached(ctx, r.Client, key, live)
	if err != nil {
		return err
	}
	if s.identityRefused {
		if exists && ownedCertificate(live, s.conn) {
			if err := r.Client.Delete(ctx, live); client.IgnoreNotFound(err) != nil {
				return fmt.Errorf("deleting Certificate %s of a refused connection: %w", key, err)
			}
		}
		s.setCondition(popv1.ConditionCertificateReady, metav1.ConditionFalse, popv1.ReasonNotRequested,
			"No certificate is requested: "+s.problem.Message)
		return nil
	}

	desired := render.ClientCertificate(s.conn)
	desired.OwnerReferences = []metav1.OwnerReference{controllerRef(s.conn, "AgencyConnection")}
	var existing *cmapi.Certificate
	if exists {
		existing = live
	}
	wrote, err := (applier{client: r.Client}).apply(ctx, desired, existing)
	if err != nil {
		s.setCondition(popv1.ConditionCertificateReady, metav1.ConditionFalse, popv1.ReasonPending,
			"Writing the Certificate failed and will be retried: "+err.Error())
		return err
	}
	if wrote || !exists {
		s.setCondition(popv1.ConditionCertificateReady, metav1.ConditionFalse, popv1.ReasonIssuing, requestedMessage(desired))
		s.certificate = s.conn.Status.Certificate
		if s.certificate == nil {
			// What observeCertificate reports for a Certificate cert-manager
			// has not touched yet: the reconcile that its creation triggers
			// then finds the status unchanged and writes nothing (one status
			// patch per new connection instead of two).
			s.certificate = &popv1.CertificateStatus{SecretName: desired.Spec.SecretName}
		}
		return nil
	}
	return r.observeCertificate(ctx, s, live)
}

// observeCertificate reads the issued certificate's state from its
// Certificate and, once per issuance, its serial from the CertificateRequest
// (never from the Secret: the operator does not read private keys).
func (r *AgencyConnectionReconciler) observeCertificate(ctx context.Context, s *connState, cert *cmapi.Certificate) error {
	status := &popv1.CertificateStatus{SecretName: cert.Spec.SecretName}
	if cert.Status.NotAfter != nil {
		status.NotAfter = cert.Status.NotAfter.DeepCopy()
	}
	prev := s.conn.Status.Certificate
	if prev != nil && prev.SerialNumber != "" && prev.NotAfter != nil && status.NotAfter != nil && prev.NotAfter.Equal(status.NotAfter) {
		status.SerialNumber = prev.SerialNumber
	} else if status.NotAfter != nil {
		serial, err := r.issuedSerial(ctx, cert)
		if err != nil {
			return err
		}
		status.SerialNumber = serial
	}
	s.certificate = status

	ready := certificateCondition(cert)
	switch {
	case ready == nil:
		// cert-manager has not picked it up yet: the same words as when it
		// was written, so that observing it costs no status write.
		s.setCondition(popv1.ConditionCertificateReady, metav1.ConditionFalse, popv1.ReasonIssuing, requestedMessage(cert))
	case ready.Status != cmmeta.ConditionTrue:
		msg := fmt.Sprintf("cert-manager is issuing Certificate %s.", cert.Name)
		if ready.Message != "" {
			msg = fmt.Sprintf("Certificate %s: %s", cert.Name, ready.Message)
		}
		s.setCondition(popv1.ConditionCertificateReady, metav1.ConditionFalse, popv1.ReasonIssuing, msg)
	case status.NotAfter != nil && !s.now.Before(status.NotAfter.Time):
		s.setCondition(popv1.ConditionCertificateReady, metav1.ConditionFalse, popv1.ReasonIssuing,
			fmt.Sprintf("Certificate %s expired at %s and is not renewed yet.", cert.Name, status.NotAfter.UTC().Format("2006-01-02T15:04:05Z")))
	default:
		msg := fmt.Sprintf("Certificate %s is issued into Secret %s", cert.Name, cert.Spec.SecretName)
		if status.NotAfter != nil {
			msg += ", valid until " + status.NotAfter.UTC().Format("2006-01-02T15:04:05Z")
			s.wakeUpAt(status.NotAfter.Time)
		}
		s.setCondition(popv1.ConditionCertificateReady, metav1.ConditionTrue, popv1.ReasonIssued, msg+".")
	}
	return nil
}

// requestedMessage is CertificateReady's message while cert-manager has not
// reported on the Certificate yet.
func requestedMessage(cert *cmapi.Certificate) string {
	return fmt.Sprintf("Certificate %s is requested from %s %q.", cert.Name, cert.Spec.IssuerRef.Kind, cert.Spec.IssuerRef.Name)
}

func certificateCondition(cert *cmapi.Certificate) *cmapi.CertificateCondition {
	for i := range cert.Status.Conditions {
		if cert.Status.Conditions[i].Type == cmapi.CertificateConditionReady {
			return &cert.Status.Conditions[i]
		}
	}
	return nil
}

// issuedSerial finds the CertificateRequest of the certificate's current
// revision and returns the serial of the certificate it was signed with.
func (r *AgencyConnectionReconciler) issuedSerial(ctx context.Context, cert *cmapi.Certificate) (string, error) {
	if cert.Status.Revision == nil {
		return "", nil
	}
	var list cmapi.CertificateRequestList
	if err := r.APIReader.List(ctx, &list, client.InNamespace(cert.Namespace)); err != nil {
		if apierrors.IsForbidden(err) {
			return "", nil
		}
		return "", fmt.Errorf("listing CertificateRequests of %s/%s: %w", cert.Namespace, cert.Name, err)
	}
	revision := fmt.Sprint(*cert.Status.Revision)
	for _, cr := range list.Items {
		if cr.Annotations[cmapi.CertificateNameKey] != cert.Name ||
			cr.Annotations[cmapi.CertificateRequestRevisionAnnotationKey] != revision {
			continue
		}
		block, _ := pem.Decode(cr.Status.Certificate)
		if block == nil {
			return "", nil
		}
		parsed, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return "", fmt.Errorf("parsing the certificate of CertificateRequest %s/%s: %w", cr.Namespace, cr.Name, err)
		}
		return strings.ToUpper(parsed.SerialNumber.Text(16)), nil
	}
	return "", nil
}
