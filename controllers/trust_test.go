package controllers_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"slices"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/gateway/policy"
	"github.com/popconnect/popconnect/internal/render"
	"github.com/popconnect/popconnect/internal/testenv"
)

// handMadeCertificate is what a namespace editor can do without the
// operator: ask the shared ClusterIssuer for a certificate carrying another
// agency's identity. It returns the issued Secret.
func handMadeCertificate(t *testing.T, ns, code string) *corev1.Secret {
	t.Helper()
	ctx := context.Background()
	crt := &cmapi.Certificate{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "borrowed-identity"},
		Spec: cmapi.CertificateSpec{
			SecretName: "borrowed-identity-tls",
			URIs:       []string{"spiffe://popconnect.io/agency/" + code},
			Usages:     []cmapi.KeyUsage{cmapi.UsageClientAuth, cmapi.UsageDigitalSignature},
			PrivateKey: &cmapi.CertificatePrivateKey{Algorithm: cmapi.ECDSAKeyAlgorithm, Size: 256},
			IssuerRef:  cmmeta.IssuerReference{Name: caIssuer, Kind: cmapi.ClusterIssuerKind, Group: cmapi.SchemeGroupVersion.Group},
		},
	}
	must(t, s.c.Create(ctx, crt), "creating the hand-made Certificate")
	secret := &corev1.Secret{}
	testenv.Poll(t, waitLong, func() (bool, error) {
		err := s.c.Get(ctx, client.ObjectKey{Namespace: ns, Name: crt.Spec.SecretName}, secret)
		return err == nil && len(secret.Data["tls.crt"]) > 0, client.IgnoreNotFound(err)
	})
	return secret
}

// leafSHA256 is the lowercase hex SHA-256 of the DER of a PEM's first
// certificate, as the policy pins it.
func leafSHA256(t *testing.T, pemData []byte) string {
	t.Helper()
	block, _ := pem.Decode(pemData)
	if block == nil {
		t.Fatal("no PEM block")
	}
	sum := sha256.Sum256(block.Bytes)
	return hex.EncodeToString(sum[:])
}

// ownSecret waits until the connection's own Secret holds the certificate
// its status names, and returns it.
func ownSecret(t *testing.T, conn *popv1.AgencyConnection) (*corev1.Secret, *popv1.AgencyConnection) {
	t.Helper()
	ctx := context.Background()
	secret, cur := &corev1.Secret{}, &popv1.AgencyConnection{}
	testenv.Poll(t, waitLong, func() (bool, error) {
		if err := s.c.Get(ctx, client.ObjectKeyFromObject(conn), cur); err != nil {
			return false, err
		}
		st := cur.Status.Certificate
		if st == nil || st.SHA256 == "" {
			return false, nil
		}
		err := s.c.Get(ctx, client.ObjectKey{Namespace: conn.Namespace, Name: st.SecretName}, secret)
		return err == nil && len(secret.Data["tls.crt"]) > 0 && leafSHA256(t, secret.Data["tls.crt"]) == st.SHA256, client.IgnoreNotFound(err)
	})
	return secret, cur
}

// ownPins are the digests the connection's status says its entry pins: its
// current certificate's, and the previous one's while the grace of a
// renewal lasts. cert-manager sometimes issues a new certificate a second
// time just after the first (its trigger controller can judge the Secret
// from a cache older than the Certificate); the first is then the previous
// certificate, and pinned too.
func ownPins(t *testing.T, conn *popv1.AgencyConnection) []string {
	t.Helper()
	cur := &popv1.AgencyConnection{}
	must(t, s.c.Get(context.Background(), client.ObjectKeyFromObject(conn), cur), "reading the connection")
	pins, _ := render.CertificatePins(cur.Status.Certificate, cur.Spec.ClientCertificate.RevokedSerialNumbers, time.Now())
	return pins
}

// waitOwnPins waits until the agency's entry pins exactly the connection's
// own certificates (ownPins), among them the digest want.
func waitOwnPins(t *testing.T, gw *popv1.PopulationGateway, conn *popv1.AgencyConnection, what, want string) {
	t.Helper()
	waitShard(t, gw, conn.Spec.AgencyCode, waitShort, what, func(e *policy.Agency) bool {
		return e != nil && slices.Contains(e.CertificateSHA256, want) && slices.Equal(e.CertificateSHA256, ownPins(t, conn))
	})
}

// TestHandMadeCertificateIsNotPinned (issue 13, finding 1): a Certificate
// made by hand in another namespace with an agency's URI, from the same
// issuer, is not among the certificates the operator pins the agency to;
// the connection's own certificates are, and only they.
func TestHandMadeCertificateIsNotPinned(t *testing.T) {
	f := newFixture(t, "pin")
	conn := f.connection(t, sampleConnections[3], nil)
	waitCondition(t, conn, popv1.ConditionReady, metav1.ConditionTrue, popv1.ReasonReady, waitLong)
	own, cur := ownSecret(t, conn)
	ownDigest := leafSHA256(t, own.Data["tls.crt"])

	evil := newNamespace(t, "evil")
	stolen := handMadeCertificate(t, evil, conn.Spec.AgencyCode)
	stolenDigest := leafSHA256(t, stolen.Data["tls.crt"])
	if parseCert(t, stolen.Data["tls.crt"]).URIs[0].String() != "spiffe://popconnect.io/agency/"+conn.Spec.AgencyCode {
		t.Fatal("the hand-made certificate does not carry the agency's URI")
	}

	waitOwnPins(t, f.gateway, conn, "pinned", ownDigest)
	e := shardEntry(t, f.gateway, conn.Spec.AgencyCode)
	if slices.Contains(e.CertificateSHA256, stolenDigest) {
		t.Errorf("the hand-made certificate %s is pinned: %v", stolenDigest, e.CertificateSHA256)
	}
	if cur.Status.Certificate.SHA256 != ownDigest {
		t.Errorf("status.certificate.sha256 = %s, want the own certificate's %s", cur.Status.Certificate.SHA256, ownDigest)
	}
}

// TestNewConnectionIsPinnedToNothing: before its certificate is issued, a
// connection's entry pins to nothing (present and empty), never to "any".
func TestNewConnectionIsPinnedToNothing(t *testing.T) {
	f := newFixture(t, "nopin")
	conn := f.connection(t, sampleConnections[3], func(c *popv1.AgencyConnection) {
		// An issuer that does not exist: no certificate is ever issued.
		c.Spec.ClientCertificate.IssuerRef.Name = "no-such-issuer"
	})
	waitShard(t, f.gateway, conn.Spec.AgencyCode, waitShort, "empty pin list", func(e *policy.Agency) bool {
		return e != nil && e.CertificateSHA256 != nil && len(e.CertificateSHA256) == 0
	})
}

// TestRevokedCurrentCertificate (issue 13, finding 1): listing the current
// serial in revokedSerialNumbers removes its pin at once, has cert-manager
// issue a new certificate, and pins the new one; the revoked one never
// comes back, not even as the previous certificate of the renewal.
func TestRevokedCurrentCertificate(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, "revoke")
	conn := f.connection(t, sampleConnections[3], nil)
	waitCondition(t, conn, popv1.ConditionReady, metav1.ConditionTrue, popv1.ReasonReady, waitLong)
	_, cur := ownSecret(t, conn)
	oldSerial, oldDigest := cur.Status.Certificate.SerialNumber, cur.Status.Certificate.SHA256
	waitOwnPins(t, f.gateway, conn, "pinned", oldDigest)
	renewal := "PATCH /apis/cert-manager.io/v1/namespaces/" + f.ns + "/certificates/" + render.ClientCertificateName(conn) + "/status"

	patch := client.MergeFrom(cur.DeepCopy())
	// As a user may copy it from openssl: lower case, a leading zero.
	cur.Spec.ClientCertificate.RevokedSerialNumbers = []popv1.SerialNumber{popv1.SerialNumber("0" + strings.ToLower(oldSerial))}
	must(t, s.c.Patch(ctx, cur, patch), "revoking the current serial")

	// A new certificate is issued and pinned, the revoked one is not.
	var newDigest string
	testenv.Poll(t, waitLong, func() (bool, error) {
		c := &popv1.AgencyConnection{}
		if err := s.c.Get(ctx, client.ObjectKeyFromObject(conn), c); err != nil {
			return false, err
		}
		st := c.Status.Certificate
		if st == nil || st.SHA256 == "" || st.SerialNumber == oldSerial {
			return false, nil
		}
		newDigest = st.SHA256
		return true, nil
	})
	if newDigest == oldDigest {
		t.Fatal("the new certificate has the revoked one's digest")
	}
	waitShard(t, f.gateway, conn.Spec.AgencyCode, waitShort, "re-pinned", func(e *policy.Agency) bool {
		return e != nil && slices.Contains(e.CertificateSHA256, newDigest) && !slices.Contains(e.CertificateSHA256, oldDigest) &&
			slices.Equal(e.CertificateSHA256, ownPins(t, conn))
	})
	waitCondition(t, conn, popv1.ConditionReady, metav1.ConditionTrue, popv1.ReasonReady, waitLong)
	own, cur := ownSecret(t, conn)
	if d := leafSHA256(t, own.Data["tls.crt"]); d == oldDigest || d != cur.Status.Certificate.SHA256 {
		t.Error("the Secret does not hold the newly pinned certificate")
	}
	// Once per revoked serial: the operator asked cert-manager for one
	// renewal, not one per reconcile. (Not the Certificate's revision:
	// cert-manager sometimes issues a certificate a second time by itself.
	// None when it did so just before the revocation, which then found the
	// revoked certificate already replaced.)
	if n := s.writes.succeeded(renewal); n > 1 {
		t.Errorf("the operator triggered %d renewals of the Certificate for one revoked serial, want 1", n)
	}
}

// TestNamespaceNotAllowed (issue 13, finding 8): a connection from a
// namespace the gateway does not admit gets Ready=False
// NamespaceNotAllowed and nothing else; Selector admits it once its
// namespace is labelled, All admits it, back to Same refuses it again and
// removes what it had.
func TestNamespaceNotAllowed(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, "nsgw")
	other := newNamespace(t, "nsagency")
	conn := &popv1.AgencyConnection{}
	readSample(t, sampleConnections[3], conn)
	conn.Namespace = other
	conn.Spec.AgencyCode += "-" + strings.ToUpper(other[len(other)-5:])
	conn.Spec.GatewayRef.Namespace = f.ns
	must(t, s.c.Create(ctx, conn), "creating the connection in another namespace")

	refusedNothingElse := func(what, says string) {
		t.Helper()
		waitCondition(t, conn, popv1.ConditionReady, metav1.ConditionFalse, popv1.ReasonNamespaceNotAllowed, waitShort)
		testenv.Poll(t, waitShort, func() (bool, error) {
			c := &popv1.AgencyConnection{}
			err := s.c.Get(ctx, client.ObjectKeyFromObject(conn), c)
			return err == nil && strings.Contains(findReady(c).Message, says), err
		})
		t.Logf("%s: Ready=False NamespaceNotAllowed, %q in the message", what, says)
		testenv.Poll(t, waitShort, func() (bool, error) {
			crt := &cmapi.Certificate{}
			err := s.c.Get(ctx, client.ObjectKey{Namespace: other, Name: render.ClientCertificateName(conn)}, crt)
			return err != nil && client.IgnoreNotFound(err) == nil, client.IgnoreNotFound(err)
		})
		testenv.Poll(t, waitShort, func() (bool, error) {
			return shardEntry(t, f.gateway, conn.Spec.AgencyCode) == nil, nil
		})
		var nps networkingv1.NetworkPolicyList
		must(t, s.c.List(ctx, &nps, client.InNamespace(f.ns)), "listing NetworkPolicies")
		for _, np := range nps.Items {
			if np.Labels[render.LabelConnectionNamespace] == other {
				t.Errorf("%s: NetworkPolicy %s exists for a refused connection", what, np.Name)
			}
		}
	}
	setFrom := func(ns *popv1.AllowedNamespaces) {
		t.Helper()
		gw := &popv1.PopulationGateway{}
		must(t, s.c.Get(ctx, client.ObjectKeyFromObject(f.gateway), gw), "reading the gateway")
		patch := client.MergeFrom(gw.DeepCopy())
		gw.Spec.AllowedConnections = &popv1.AllowedConnections{Namespaces: ns}
		must(t, s.c.Patch(ctx, gw, patch), "setting allowedConnections")
	}

	refusedNothingElse("Same (default)", "accepts connections from its own namespace only")

	setFrom(&popv1.AllowedNamespaces{From: popv1.NamespacesFromSelector,
		Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"popconnect.io/agencies": "true"}}})
	refusedNothingElse("Selector, namespace not labelled", "do not match the gateway's spec.allowedConnections.namespaces.selector")

	nsObj := &corev1.Namespace{}
	must(t, s.c.Get(ctx, client.ObjectKey{Name: other}, nsObj), "reading the namespace")
	patch := client.MergeFrom(nsObj.DeepCopy())
	nsObj.Labels = map[string]string{"popconnect.io/agencies": "true"}
	must(t, s.c.Patch(ctx, nsObj, patch), "labelling the namespace")
	waitCondition(t, conn, popv1.ConditionReady, metav1.ConditionTrue, popv1.ReasonReady, waitLong)
	waitShard(t, f.gateway, conn.Spec.AgencyCode, waitShort, "admitted by selector", func(e *policy.Agency) bool {
		return e != nil && len(e.CertificateSHA256) > 0 && slices.Equal(e.CertificateSHA256, ownPins(t, conn))
	})

	setFrom(&popv1.AllowedNamespaces{From: popv1.NamespacesFromAll})
	waitCondition(t, conn, popv1.ConditionReady, metav1.ConditionTrue, popv1.ReasonReady, waitShort)
	waitShard(t, f.gateway, conn.Spec.AgencyCode, waitShort, "admitted by All", func(e *policy.Agency) bool {
		return e != nil && len(e.CertificateSHA256) > 0 && slices.Equal(e.CertificateSHA256, ownPins(t, conn))
	})

	// Refused again: its certificate, NetworkPolicy and entry go. (Not
	// admitted a third time: without a garbage collector, envtest keeps the
	// deleted Certificate's CertificateRequests, which block cert-manager
	// from issuing for a new Certificate of the same name.)
	setFrom(&popv1.AllowedNamespaces{From: popv1.NamespacesFromSame})
	refusedNothingElse("back to Same", "accepts connections from its own namespace only")
}

func findReady(c *popv1.AgencyConnection) *metav1.Condition {
	for i := range c.Status.Conditions {
		if c.Status.Conditions[i].Type == popv1.ConditionReady {
			return &c.Status.Conditions[i]
		}
	}
	return &metav1.Condition{}
}
