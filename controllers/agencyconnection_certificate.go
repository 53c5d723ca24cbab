package controllers

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"strings"
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
	if s.verdict.IdentityRefused {
		if exists && ownedCertificate(live, s.conn) {
			if err := r.Client.Delete(ctx, live); client.IgnoreNotFound(err) != nil {
				return fmt.Errorf("deleting Certificate %s of a refused connection: %w", key, err)
			}
		}
		s.setCondition(popv1.ConditionCertificateReady, metav1.ConditionFalse, popv1.ReasonNotRequested,
			"No certificate is requested: "+s.verdict.Problem.Message)
		return nil
	}

	desired := render.ClientCertificate(s.conn)
	desired.OwnerReferences = []metav1.OwnerReference{controllerRef(s.conn, "AgencyConnection")}
	wrote, err := newWriter(r.Client, r.APIReader).apply(ctx, desired, ifExists(exists, live))
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
// Certificate and, once per issuance, its serial and digest from the
// CertificateRequest (never from the Secret: the operator does not read
// private keys). The digest is what the gateway's policy pins the agency to.
func (r *AgencyConnectionReconciler) observeCertificate(ctx context.Context, s *connState, cert *cmapi.Certificate) error {
	status := &popv1.CertificateStatus{SecretName: cert.Spec.SecretName, NotAfter: cert.Status.NotAfter.DeepCopy()}
	issued, err := r.currentIssued(ctx, s.conn, cert)
	if err != nil {
		return err
	}
	status.SerialNumber, status.SHA256 = issued.serial, issued.sha256
	old := s.conn.Status.Certificate
	if issued.serial == "" && cert.Status.NotAfter != nil {
		// cert-manager updates the Certificate in several steps; the
		// request of the new revision is readable a moment later.
		s.wakeUpAt(s.now.Add(serialRetryDelay))
		if old != nil && old.SHA256 != "" {
			// Meanwhile the certificate known so far stays pinned: an
			// empty pin list would cut the agency off for that moment.
			status.NotAfter, status.SerialNumber, status.SHA256 = old.NotAfter.DeepCopy(), old.SerialNumber, old.SHA256
		}
	}
	status.Previous = previousCertificate(old, status, s.now, r.certificateGrace())
	if status.Previous != nil {
		s.wakeUpAt(status.Previous.AcceptedUntil.Time)
	}
	s.certificate = status

	revoked := render.SerialRevoked(status.SerialNumber, s.conn.Spec.ClientCertificate.RevokedSerialNumbers)
	ready := certificateCondition(cert, cmapi.CertificateConditionReady)
	if !revoked && ready != nil && ready.Status == cmmeta.ConditionTrue && cert.Status.Revision == nil {
		// cert-manager found a valid certificate already in the Secret (a
		// connection refused, then admitted again, finds the Secret its
		// deleted Certificate left) and issued nothing, so no request
		// tells which certificate that is: have a fresh one issued, whose
		// digest its request records.
		if err := r.renew(ctx, cert, "no CertificateRequest records the certificate in the Secret", "uid:"+string(cert.UID)); err != nil {
			return err
		}
	}
	switch {
	case revoked:
		if err := r.renew(ctx, cert, "serial "+status.SerialNumber+" is revoked", render.NormalizeSerial(status.SerialNumber)); err != nil {
			return err
		}
		s.setCondition(popv1.ConditionCertificateReady, metav1.ConditionFalse, popv1.ReasonIssuing, fmt.Sprintf(
			"The current certificate (serial %s) is revoked by spec.clientCertificate.revokedSerialNumbers and refused by the gateway; cert-manager is issuing a new one into Secret %s.",
			status.SerialNumber, cert.Spec.SecretName))
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

// previousCertificate is the replaced certificate the gateway keeps
// accepting after a renewal: when the current digest differs from the one
// the status knew, that one, until now+grace (or its own expiry if
// earlier); otherwise the one already recorded while its grace lasts.
func previousCertificate(old, cur *popv1.CertificateStatus, now time.Time, grace time.Duration) *popv1.PreviousCertificate {
	if old == nil {
		return nil
	}
	if old.SHA256 != "" && cur.SHA256 != "" && old.SHA256 != cur.SHA256 {
		// Truncated as the API stores it, so the next reconcile finds the
		// status unchanged.
		until := now.Add(grace).Truncate(time.Second)
		if old.NotAfter != nil && old.NotAfter.Time.Before(until) {
			until = old.NotAfter.Time
		}
		if grace <= 0 || !until.After(now) {
			return nil
		}
		return &popv1.PreviousCertificate{SerialNumber: old.SerialNumber, SHA256: old.SHA256, AcceptedUntil: metav1.NewTime(until)}
	}
	if p := old.Previous; p != nil && now.Before(p.AcceptedUntil.Time) && p.SHA256 != cur.SHA256 {
		return p.DeepCopy()
	}
	return nil
}

// DefaultCertificateGrace is how long a renewed connection's previous
// certificate stays accepted: the agency's clients must load the new one
// from the Secret first (kubelet refreshes a mounted Secret within about a
// minute, clients outside the cluster sync on their own schedule), and an
// hour is also the gateway's default --max-connection-age, so a connection
// opened just before the renewal lives out its life. Revocation is not
// subject to it.
const DefaultCertificateGrace = time.Hour

func (r *AgencyConnectionReconciler) certificateGrace() time.Duration {
	if r.CertificateGrace > 0 {
		return r.CertificateGrace
	}
	return DefaultCertificateGrace
}

// renew has cert-manager issue a new certificate in place of the current
// one, as `cmctl renew` does: the Issuing condition with reason
// ManuallyTriggered, through the status subresource. It does so once per
// once (a revoked serial, a Certificate's UID; remembered per process) and
// not while an issuance is under way, so a failing issuer is not hammered.
func (r *AgencyConnectionReconciler) renew(ctx context.Context, cert *cmapi.Certificate, why, once string) error {
	key := types.NamespacedName{Namespace: cert.Namespace, Name: cert.Name}
	if c := certificateCondition(cert, cmapi.CertificateConditionIssuing); c != nil && c.Status == cmmeta.ConditionTrue {
		return nil
	}
	if last, _ := r.renewals.get(key); last == once {
		return nil
	}
	patched := cert.DeepCopy()
	now := metav1.NewTime(r.Clock.Now())
	cond := cmapi.CertificateCondition{
		Type: cmapi.CertificateConditionIssuing, Status: cmmeta.ConditionTrue, Reason: "ManuallyTriggered",
		Message:            "Certificate re-issuance triggered by popconnect: " + why,
		LastTransitionTime: &now, ObservedGeneration: cert.Generation,
	}
	if c := certificateCondition(patched, cmapi.CertificateConditionIssuing); c != nil {
		*c = cond
	} else {
		patched.Status.Conditions = append(patched.Status.Conditions, cond)
	}
	if err := r.Client.Status().Patch(ctx, patched, client.MergeFromWithOptions(cert, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("triggering the renewal of Certificate %s (%s): %w", key, why, err)
	}
	r.renewals.put(key, once)
	return nil
}

// issuedCert is what the operator knows of an issued certificate.
type issuedCert struct {
	serial string
	sha256 string
}

// currentIssued is the serial and digest of the certificate's current
// revision. They are remembered per revision, so the CertificateRequests
// are listed once per issuance; after a restart, the status's are trusted
// while the certificate's notAfter is unchanged.
func (r *AgencyConnectionReconciler) currentIssued(ctx context.Context, conn *popv1.AgencyConnection, cert *cmapi.Certificate) (issuedCert, error) {
	if cert.Status.Revision == nil || cert.Status.NotAfter == nil {
		return issuedCert{}, nil
	}
	key := types.NamespacedName{Namespace: cert.Namespace, Name: cert.Name}
	revision := *cert.Status.Revision
	known, seen := r.serials.get(key)
	if seen && known.revision == revision {
		return known.issued, nil
	}
	if prev := conn.Status.Certificate; prev != nil && prev.SerialNumber != "" && prev.SHA256 != "" && prev.NotAfter != nil &&
		prev.NotAfter.Equal(cert.Status.NotAfter) && !seen {
		issued := issuedCert{serial: prev.SerialNumber, sha256: prev.SHA256}
		r.serials.put(key, revisionSerial{revision: revision, issued: issued})
		return issued, nil
	}
	issued, err := r.issuedCertificate(ctx, cert)
	if err != nil || issued.serial == "" {
		return issued, err
	}
	r.serials.put(key, revisionSerial{revision: revision, issued: issued})
	return issued, nil
}

// revisionSerial is the serial and digest of a Certificate's revision.
type revisionSerial struct {
	revision int
	issued   issuedCert
}

// requestedMessage is CertificateReady's message while cert-manager has not
// reported on the Certificate yet.
func requestedMessage(cert *cmapi.Certificate) string {
	return fmt.Sprintf("Certificate %s is requested from %s %q.", cert.Name, cert.Spec.IssuerRef.Kind, cert.Spec.IssuerRef.Name)
}

// certificateCondition is the Certificate's condition of type t; nil when it has none.
func certificateCondition(cert *cmapi.Certificate, t cmapi.CertificateConditionType) *cmapi.CertificateCondition {
	for i := range cert.Status.Conditions {
		if cert.Status.Conditions[i].Type == t {
			return &cert.Status.Conditions[i]
		}
	}
	return nil
}

// issuedCertificate finds the CertificateRequest of the certificate's
// current revision (its status names one, and its notAfter) and returns the serial and SHA-256 of the certificate it
// was signed with. Only a request that cert-manager made for this very
// Certificate counts: controlled by it (owner UID), annotated with its name
// and current revision, and whose certificate expires when the Certificate's
// status (which only cert-manager writes) says. A request a namespace
// editor made up cannot slip another digest into the pins that way; if
// several requests still qualify with different certificates, none is
// trusted and the agency is pinned to nothing until it is resolved.
func (r *AgencyConnectionReconciler) issuedCertificate(ctx context.Context, cert *cmapi.Certificate) (issuedCert, error) {
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
			return issuedCert{}, nil
		}
		return issuedCert{}, fmt.Errorf("listing CertificateRequests of %s/%s: %w", cert.Namespace, cert.Name, err)
	}
	revision := fmt.Sprint(*cert.Status.Revision)
	var found issuedCert
	for _, cr := range list.Items {
		if cr.Annotations[cmapi.CertificateNameKey] != cert.Name ||
			cr.Annotations[cmapi.CertificateRequestRevisionAnnotationKey] != revision ||
			!metav1.IsControlledBy(&cr, cert) {
			continue
		}
		block, _ := pem.Decode(cr.Status.Certificate)
		if block == nil {
			continue
		}
		parsed, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return issuedCert{}, fmt.Errorf("parsing the certificate of CertificateRequest %s/%s: %w", cr.Namespace, cr.Name, err)
		}
		if !parsed.NotAfter.Equal(cert.Status.NotAfter.Time) {
			continue
		}
		sum := sha256.Sum256(block.Bytes)
		this := issuedCert{serial: strings.ToUpper(parsed.SerialNumber.Text(16)), sha256: hex.EncodeToString(sum[:])}
		if found.sha256 != "" && found != this {
			return issuedCert{}, nil
		}
		found = this
	}
	return found, nil
}
