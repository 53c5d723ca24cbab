package controllers

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
	"sync"
	"time"

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

// serialRetryDelay is how long to wait before looking again for the
// serial of a certificate whose CertificateRequest was not found yet.
const serialRetryDelay = 2 * time.Second

// observeCertificate reads the issued certificate's state from its
// Certificate and, once per issuance, its serial from the CertificateRequest
// (never from the Secret: the operator does not read private keys).
func (r *AgencyConnectionReconciler) observeCertificate(ctx context.Context, s *connState, cert *cmapi.Certificate) error {
	status := &popv1.CertificateStatus{SecretName: cert.Spec.SecretName}
	if cert.Status.NotAfter != nil {
		status.NotAfter = cert.Status.NotAfter.DeepCopy()
	}
	serial, err := r.currentSerial(ctx, s.conn, cert)
	if err != nil {
		return err
	}
	status.SerialNumber = serial
	if serial == "" && cert.Status.NotAfter != nil {
		// cert-manager updates the Certificate in several steps; the
		// request of the new revision is readable a moment later.
		s.wakeUpAt(s.now.Add(serialRetryDelay))
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
	case status.SerialNumber == "":
		// Ready implies a complete status.certificate: cert-manager records
		// the revision a moment after the certificate is ready.
		s.setCondition(popv1.ConditionCertificateReady, metav1.ConditionFalse, popv1.ReasonIssuing,
			fmt.Sprintf("Certificate %s is issued; waiting for cert-manager to record its revision.", cert.Name))
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

// currentSerial is the serial of the certificate's current revision. It is
// remembered per revision, so the CertificateRequests are listed once per
// issuance; after a restart, the status's serial is trusted while the
// certificate's notAfter is unchanged.
func (r *AgencyConnectionReconciler) currentSerial(ctx context.Context, conn *popv1.AgencyConnection, cert *cmapi.Certificate) (string, error) {
	if cert.Status.Revision == nil || cert.Status.NotAfter == nil {
		return "", nil
	}
	key := types.NamespacedName{Namespace: cert.Namespace, Name: cert.Name}
	revision := *cert.Status.Revision
	if known, ok := r.serials.get(key, revision); ok {
		return known, nil
	}
	if prev := conn.Status.Certificate; prev != nil && prev.SerialNumber != "" && prev.NotAfter != nil &&
		prev.NotAfter.Equal(cert.Status.NotAfter) && !r.serials.seen(key) {
		r.serials.put(key, revision, prev.SerialNumber)
		return prev.SerialNumber, nil
	}
	serial, err := r.issuedSerial(ctx, cert)
	if err != nil || serial == "" {
		return serial, err
	}
	r.serials.put(key, revision, serial)
	return serial, nil
}

// serialCache remembers the serial of each Certificate's current revision.
type serialCache struct {
	mu sync.Mutex
	m  map[types.NamespacedName]revisionSerial
}

type revisionSerial struct {
	revision int
	serial   string
}

func newSerialCache() *serialCache {
	return &serialCache{m: map[types.NamespacedName]revisionSerial{}}
}

func (c *serialCache) get(key types.NamespacedName, revision int) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[key]
	return v.serial, ok && v.revision == revision
}

func (c *serialCache) seen(key types.NamespacedName) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.m[key]
	return ok
}

func (c *serialCache) put(key types.NamespacedName, revision int, serial string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[key] = revisionSerial{revision: revision, serial: serial}
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
	// cert-manager copies a Certificate's labels to its CertificateRequests:
	// select by the connection's labels, so that the API server returns this
	// certificate's few requests, not every request of the namespace.
	selector := client.MatchingLabels{}
	for _, l := range []string{render.LabelConnection, render.LabelConnectionNamespace} {
		if v, ok := cert.Labels[l]; ok {
			selector[l] = v
		}
	}
	var list cmapi.CertificateRequestList
	if err := r.APIReader.List(ctx, &list, client.InNamespace(cert.Namespace), selector); err != nil {
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
