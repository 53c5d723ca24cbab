package cmrunner_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"testing"
	"time"

	apiutil "github.com/cert-manager/cert-manager/pkg/api/util"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/popconnect/popconnect/internal/cmrunner"
	"github.com/popconnect/popconnect/internal/testenv"
)

const (
	issueTimeout = 2 * time.Minute
	agencyURI    = "spiffe://popconnect.io/agency/TEST"
)

func TestIssuesClientCertificateFromCA(t *testing.T) {
	env := testenv.New(t, testenv.Options{CertManagerCRDs: true})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	opts := cmrunner.Options{Logger: testLogger(t)}

	started := time.Now()
	r, err := cmrunner.Start(ctx, env.Config, opts)
	if err != nil {
		t.Fatalf("start runner: %v", err)
	}
	// Registered after testenv.New, so it runs first: the controllers stop
	// before the API server they watch.
	t.Cleanup(func() {
		if err := r.Stop(); err != nil {
			t.Errorf("stop runner: %v", err)
		}
	})
	t.Logf("runner started in %v", time.Since(started))

	started = time.Now()
	ca := cmrunner.CA{Name: "popconnect-test-ca"}
	if err := cmrunner.BootstrapCA(ctx, env.Client, ca); err != nil {
		t.Fatal(err)
	}
	t.Logf("CA ready in %v", time.Since(started))

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "agency-test"}}
	if err := env.Client.Create(ctx, ns); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	secret := issue(t, env.Client, ns.Name, "agency-test", ca.Name, nil)
	leaf := parseCert(t, secret.Data[corev1.TLSCertKey])
	checkLeaf(t, leaf)

	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(secret.Data[cmmeta.TLSCAKey]) {
		t.Fatal("ca.crt holds no certificate")
	}
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots:     roots,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}); err != nil {
		t.Errorf("certificate does not verify against ca.crt as a client certificate: %v", err)
	}
	if caCert := parseCert(t, secret.Data[cmmeta.TLSCAKey]); caCert.Subject.CommonName != ca.Name || !caCert.IsCA {
		t.Errorf("ca.crt is %q (isCA %v), want the bootstrapped CA", caCert.Subject.CommonName, caCert.IsCA)
	}

	// Stop is idempotent (the cleanup calls it again), and Run serves the
	// same API server afterwards: BootstrapCA finds its objects in place.
	if err := r.Stop(); err != nil {
		t.Fatalf("stop runner: %v", err)
	}
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	runErr := make(chan error, 1)
	go func() { runErr <- cmrunner.Run(runCtx, env.Config, opts) }()
	if err := cmrunner.BootstrapCA(ctx, env.Client, ca); err != nil {
		t.Fatal(err)
	}
	issue(t, env.Client, ns.Name, "agency-test-run", ca.Name, runErr)
	stopRun()
	select {
	case err := <-runErr:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Run did not return within a minute of its context ending")
	}
}

// issue creates a client Certificate for the test agency, waits until it is
// Ready (failing early if runErr delivers) and returns its Secret.
func issue(t *testing.T, c client.Client, ns, name, issuer string, runErr <-chan error) corev1.Secret {
	t.Helper()
	ctx := context.Background()
	crt := &cmapi.Certificate{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: cmapi.CertificateSpec{
			SecretName: name + "-tls",
			URIs:       []string{agencyURI},
			Usages:     []cmapi.KeyUsage{cmapi.UsageClientAuth, cmapi.UsageDigitalSignature},
			PrivateKey: &cmapi.CertificatePrivateKey{Algorithm: cmapi.ECDSAKeyAlgorithm, Size: 256},
			Duration:   &metav1.Duration{Duration: 24 * time.Hour},
			IssuerRef: cmmeta.IssuerReference{
				Name: issuer, Kind: cmapi.ClusterIssuerKind, Group: cmapi.SchemeGroupVersion.Group,
			},
		},
	}
	started := time.Now()
	if err := c.Create(ctx, crt); err != nil {
		t.Fatalf("create certificate: %v", err)
	}
	t.Cleanup(func() { deleteCertificate(t, c, crt) })

	testenv.Poll(t, issueTimeout, func() (bool, error) {
		select {
		case err := <-runErr: // nil channel: never ready
			return false, fmt.Errorf("runner exited early: %v", err)
		default:
		}
		if err := c.Get(ctx, client.ObjectKeyFromObject(crt), crt); err != nil {
			return false, err
		}
		return apiutil.CertificateHasConditionWithObservedGeneration(crt, cmapi.CertificateCondition{
			Type: cmapi.CertificateConditionReady, Status: cmmeta.ConditionTrue, ObservedGeneration: crt.Generation,
		}), nil
	})
	t.Logf("certificate %s issued in %v", name, time.Since(started))

	var secret corev1.Secret
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: crt.Spec.SecretName}, &secret); err != nil {
		t.Fatalf("get secret: %v", err)
	}
	return secret
}

func checkLeaf(t *testing.T, leaf *x509.Certificate) {
	t.Helper()
	if len(leaf.URIs) != 1 || leaf.URIs[0].String() != agencyURI {
		t.Errorf("URI SANs = %v, want [%s]", leaf.URIs, agencyURI)
	}
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Errorf("public key is %T, want ECDSA P-256", leaf.PublicKey)
	}
	if len(leaf.ExtKeyUsage) != 1 || leaf.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth {
		t.Errorf("extended key usages = %v, want [ClientAuth]", leaf.ExtKeyUsage)
	}
	if leaf.IsCA {
		t.Error("leaf certificate is a CA")
	}
}

func parseCert(t *testing.T, data []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("no PEM certificate in %q", data)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("parse certificate: %v", err)
	}
	return c
}

// deleteCertificate removes what cert-manager made for crt. envtest runs no
// garbage collector, so owned CertificateRequests would otherwise remain,
// and cert-manager never owns the Secret (EnableOwnerRef is off by default).
func deleteCertificate(t *testing.T, c client.Client, crt *cmapi.Certificate) {
	ctx := context.Background()
	for _, obj := range []client.Object{
		crt,
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: crt.Namespace, Name: crt.Spec.SecretName}},
	} {
		if err := c.Delete(ctx, obj); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete %s: %v", obj.GetName(), err)
		}
	}
	if err := c.DeleteAllOf(ctx, &cmapi.CertificateRequest{}, client.InNamespace(crt.Namespace)); err != nil {
		t.Errorf("delete certificate requests: %v", err)
	}
}
