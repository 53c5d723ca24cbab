package demo

import (
	"context"
	"crypto/tls"
	"fmt"
	"path/filepath"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// borrowedNamespace is where the demo's namespace editor works: not BYT's.
const borrowedNamespace = "someone-else"

// borrowedIdentity is issue 13's finding 1 as a user would try it: anyone
// allowed to create Certificates in some namespace asks the shared
// ClusterIssuer for one with BYT's URI. The CA signs it, so the TLS
// handshake succeeds; the gateway refuses it all the same, because the
// operator pins BYT to the certificates issued for BYT's own connection.
func (r *runner) borrowedIdentity(ctx context.Context) error {
	c, err := r.citizen()
	if err != nil {
		return err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: borrowedNamespace}}
	if err := r.env.Client.Create(ctx, ns); client.IgnoreAlreadyExists(err) != nil {
		return fmt.Errorf("creating namespace %s: %w", borrowedNamespace, err)
	}
	crt := &cmapi.Certificate{
		ObjectMeta: metav1.ObjectMeta{Namespace: borrowedNamespace, Name: "byt-lookalike"},
		Spec: cmapi.CertificateSpec{
			SecretName: "byt-lookalike-tls",
			URIs:       []string{"spiffe://popconnect.io/agency/BYT"},
			Usages:     []cmapi.KeyUsage{cmapi.UsageClientAuth, cmapi.UsageDigitalSignature},
			PrivateKey: &cmapi.CertificatePrivateKey{Algorithm: cmapi.ECDSAKeyAlgorithm, Size: 256},
			IssuerRef:  cmmeta.IssuerReference{Name: caName, Kind: cmapi.ClusterIssuerKind, Group: cmapi.SchemeGroupVersion.Group},
		},
	}
	r.n.cmd(fmt.Sprintf("kubectl -n %s create -f certificate.yaml  # URI spiffe://popconnect.io/agency/BYT, issuer %s", borrowedNamespace, caName))
	if err := r.env.Client.Create(ctx, crt); client.IgnoreAlreadyExists(err) != nil {
		return fmt.Errorf("creating the look-alike Certificate: %w", err)
	}
	var secret corev1.Secret
	deadline := time.Now().Add(time.Minute)
	for {
		err := r.env.Client.Get(ctx, client.ObjectKey{Namespace: borrowedNamespace, Name: crt.Spec.SecretName}, &secret)
		if err == nil && len(secret.Data["tls.crt"]) > 0 {
			break
		}
		if client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("reading the look-alike Secret: %w", err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cert-manager did not issue the look-alike certificate within a minute")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	r.n.info("cert-manager issued it: the same CA, the same URI as BYT's own certificate")
	pair, err := tls.X509KeyPair(secret.Data["tls.crt"], secret.Data["tls.key"])
	if err != nil {
		return fmt.Errorf("loading the look-alike key pair: %w", err)
	}
	roots, err := r.roots(filepath.Join(r.gatewayDir(), "client-ca.crt"))
	if err != nil {
		return err
	}
	return r.refused(ctx, newClient(roots, &pair), "BYT's URI, from the real CA, but not BYT's pinned certificate",
		"/v1/citizens/"+c.NationalID)
}
