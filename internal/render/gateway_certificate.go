package render

import (
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
)

const (
	// gatewayCertDuration is 90 days; renewing 30 days before the end
	// leaves a month to notice and fix a failing issuer.
	gatewayCertDuration    = 2160 * time.Hour
	gatewayCertRenewBefore = 720 * time.Hour
	// gatewayCertIssuerGroup is cert-manager's own issuers' group, what an
	// empty issuerRef.group means anyway.
	gatewayCertIssuerGroup = "cert-manager.io"
)

// GatewayServingCertificate asks cert-manager for gw's serving certificate,
// written to the Secret the gateway pods mount. dnsNames keep the spec's
// order, as its first entry is the common name.
func GatewayServingCertificate(gw *popv1.PopulationGateway) *cmapi.Certificate {
	names := NamesFor(gw)
	issuer := gw.Spec.ServerCertificate.IssuerRef
	group := issuer.Group
	if group == "" {
		group = gatewayCertIssuerGroup
	}
	dnsNames := append([]string(nil), gw.Spec.ServerCertificate.DNSNames...)
	var commonName string
	if len(dnsNames) > 0 {
		commonName = dnsNames[0]
	}

	return &cmapi.Certificate{
		TypeMeta:   metav1.TypeMeta{APIVersion: cmapi.SchemeGroupVersion.String(), Kind: cmapi.CertificateKind},
		ObjectMeta: gatewayMeta(gw, names.ServingCertificate, GatewayComponentServingCertificate),
		Spec: cmapi.CertificateSpec{
			SecretName: names.ServingSecret,
			// The Secret carries the same labels, so the operator's
			// label-filtered cache sees it.
			SecretTemplate: &cmapi.CertificateSecretTemplate{
				Labels: gatewayLabels(gw, GatewayComponentServingCertificate),
			},
			IssuerRef: cmmeta.IssuerReference{
				Name:  issuer.Name,
				Kind:  issuer.Kind,
				Group: group,
			},
			CommonName:  commonName,
			DNSNames:    dnsNames,
			Duration:    &metav1.Duration{Duration: gatewayCertDuration},
			RenewBefore: &metav1.Duration{Duration: gatewayCertRenewBefore},
			Usages:      []cmapi.KeyUsage{cmapi.UsageServerAuth, cmapi.UsageDigitalSignature},
			// A new key on every renewal limits what a leaked key exposes.
			PrivateKey: &cmapi.CertificatePrivateKey{
				Algorithm:      cmapi.ECDSAKeyAlgorithm,
				Size:           256,
				RotationPolicy: cmapi.RotationPolicyAlways,
			},
		},
	}
}
