package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/internal/render"
)

// issueAsCertManager plays cert-manager's part for one connection, since no
// cert-manager runs in the bench: once the operator has created the
// connection's Certificate, it records the bench's client certificate as
// revision 1 of it, as cert-manager's issuing controller would. First the
// CertificateRequest (the Certificate's labels, the certificate-name and
// certificate-revision annotations, controlled by the Certificate, the
// signed certificate in status.certificate), then the Certificate's status
// (revision 1, notBefore/notAfter of that certificate, Ready=True): the
// operator reads the digest it pins from that request, matched to the
// Certificate's current revision and notAfter.
func issueAsCertManager(ctx context.Context, c client.Client, conn *popv1.AgencyConnection, cc *clientCert, timeout time.Duration) error {
	key := types.NamespacedName{Namespace: conn.Namespace, Name: render.ClientCertificateName(conn)}
	cert := &cmapi.Certificate{}
	// The operator creates the Certificate on its first reconcile of the
	// connection; the bench's client reads the API server directly.
	err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, key, cert); err != nil {
			if apierrors.IsNotFound(err) {
				return false, nil
			}
			return false, fmt.Errorf("reading Certificate %s: %w", key, err)
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for the operator to create Certificate %s: %w", key, err)
	}

	const revision = 1
	now := metav1.Now()
	yes := true
	cr := &cmapi.CertificateRequest{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: cert.Namespace,
			// cert-manager names a request <certificate>-<random>.
			Name:   fmt.Sprintf("%s-%d", shorten(cert.Name, 240), revision),
			Labels: cert.Labels,
			Annotations: map[string]string{
				cmapi.CertificateNameKey:                      cert.Name,
				cmapi.CertificateRequestRevisionAnnotationKey: fmt.Sprint(revision),
			},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: cmapi.SchemeGroupVersion.String(), Kind: "Certificate",
				Name: cert.Name, UID: cert.UID, Controller: &yes, BlockOwnerDeletion: &yes,
			}},
		},
		Spec: cmapi.CertificateRequestSpec{
			Request:   cc.csrPEM,
			IssuerRef: cert.Spec.IssuerRef,
			Usages:    cert.Spec.Usages,
		},
	}
	if err := c.Create(ctx, cr); err != nil {
		return fmt.Errorf("creating CertificateRequest %s/%s: %w", cr.Namespace, cr.Name, err)
	}
	cr.Status = cmapi.CertificateRequestStatus{
		Certificate: cc.pem,
		Conditions: []cmapi.CertificateRequestCondition{{
			Type: cmapi.CertificateRequestConditionReady, Status: cmmeta.ConditionTrue,
			Reason: cmapi.CertificateRequestReasonIssued, Message: "Certificate fetched from issuer successfully",
			LastTransitionTime: &now,
		}},
	}
	if err := c.Status().Update(ctx, cr); err != nil {
		return fmt.Errorf("recording the certificate in CertificateRequest %s/%s: %w", cr.Namespace, cr.Name, err)
	}

	issued := cert.DeepCopy()
	rev := revision
	notBefore, notAfter := metav1.NewTime(cc.cert.NotBefore), metav1.NewTime(cc.cert.NotAfter)
	issued.Status.Revision = &rev
	issued.Status.NotBefore, issued.Status.NotAfter = &notBefore, &notAfter
	issued.Status.Conditions = []cmapi.CertificateCondition{{
		Type: cmapi.CertificateConditionReady, Status: cmmeta.ConditionTrue, Reason: "Ready",
		Message: "Certificate is up to date and has not expired", LastTransitionTime: &now,
		ObservedGeneration: cert.Generation,
	}}
	if err := c.Status().Patch(ctx, issued, client.MergeFrom(cert)); err != nil {
		return fmt.Errorf("marking Certificate %s issued: %w", key, err)
	}
	return nil
}

// shorten cuts a name to at most n bytes.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// currentSerial waits until the connection's status shows the serial of its
// certificate (as status.certificate.serialNumber spells it, which is what
// an operator copies into revokedSerialNumbers) and checks it is the one the
// bench issued.
func currentSerial(ctx context.Context, c client.Client, key types.NamespacedName, cc *clientCert, timeout time.Duration) (string, error) {
	want := strings.ToUpper(cc.cert.SerialNumber.Text(16))
	var serial string
	err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		conn := &popv1.AgencyConnection{}
		if err := c.Get(ctx, key, conn); err != nil {
			return false, fmt.Errorf("reading %s: %w", key, err)
		}
		if conn.Status.Certificate != nil {
			serial = conn.Status.Certificate.SerialNumber
		}
		return serial != "", nil
	})
	if err != nil {
		return "", fmt.Errorf("waiting for %s's status.certificate.serialNumber: %w", key, err)
	}
	if render.NormalizeSerial(serial) != want {
		return "", fmt.Errorf("%s's status shows serial %s, the bench issued %s", key, serial, want)
	}
	return serial, nil
}

// setRevoked revokes serial on the connection, or lifts every revocation
// when serial is empty (a merge patch with null removes the list).
func setRevoked(ctx context.Context, c client.Client, key types.NamespacedName, serial string) error {
	patch := []byte(`{"spec":{"clientCertificate":{"revokedSerialNumbers":null}}}`)
	if serial != "" {
		patch = fmt.Appendf(nil, `{"spec":{"clientCertificate":{"revokedSerialNumbers":[%q]}}}`, serial)
	}
	conn := &popv1.AgencyConnection{}
	conn.Namespace, conn.Name = key.Namespace, key.Name
	if err := c.Patch(ctx, conn, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return fmt.Errorf("patching %s revokedSerialNumbers=%q: %w", key, serial, err)
	}
	return nil
}

// renewalRequested waits, up to timeout, for the operator to ask
// cert-manager to replace a revoked certificate (the Issuing condition with
// reason ManuallyTriggered on the connection's Certificate), and reports
// whether it did. No cert-manager acts on it in the bench.
func renewalRequested(ctx context.Context, c client.Client, conn *popv1.AgencyConnection, timeout time.Duration) (bool, error) {
	key := types.NamespacedName{Namespace: conn.Namespace, Name: render.ClientCertificateName(conn)}
	err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		cert := &cmapi.Certificate{}
		if err := c.Get(ctx, key, cert); err != nil {
			return false, fmt.Errorf("reading Certificate %s: %w", key, err)
		}
		for _, cond := range cert.Status.Conditions {
			if cond.Type == cmapi.CertificateConditionIssuing && cond.Status == cmmeta.ConditionTrue && cond.Reason == "ManuallyTriggered" {
				return true, nil
			}
		}
		return false, nil
	})
	if wait.Interrupted(err) {
		return false, nil
	}
	return err == nil, err
}
