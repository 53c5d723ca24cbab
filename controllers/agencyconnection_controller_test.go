package controllers_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/gateway/policy"
	"github.com/popconnect/popconnect/internal/render"
	"github.com/popconnect/popconnect/internal/testenv"
)

var sampleConnections = []string{
	"popconnect_v1alpha1_agencyconnection_byt.yaml",
	"popconnect_v1alpha1_agencyconnection_bhxh.yaml",
	"popconnect_v1alpha1_agencyconnection_stp-hn.yaml",
	"popconnect_v1alpha1_agencyconnection_tct.yaml",
	"popconnect_v1alpha1_agencyconnection_vcb.yaml",
}

// TestSamplesBecomeReady applies the samples and checks every child object.
func TestSamplesBecomeReady(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, "samples")
	var conns []*popv1.AgencyConnection
	for _, file := range sampleConnections {
		conns = append(conns, f.connection(t, file, nil))
	}
	for _, conn := range conns {
		ready := waitCondition(t, conn, popv1.ConditionReady, metav1.ConditionTrue, popv1.ReasonReady, waitLong)
		for _, ct := range []string{popv1.ConditionCertificateReady, popv1.ConditionFieldsValid, popv1.ConditionNetworkReady, popv1.ConditionProgrammed} {
			if c := meta.FindStatusCondition(ready.Status.Conditions, ct); c == nil || c.Status != metav1.ConditionTrue {
				t.Errorf("%s: %s = %+v, want True", conn.Name, ct, c)
			}
		}
		if ready.Status.ObservedGeneration != ready.Generation {
			t.Errorf("%s: observedGeneration %d, want %d", conn.Name, ready.Status.ObservedGeneration, ready.Generation)
		}
		t.Run(conn.Name, func(t *testing.T) {
			checkClientCertificate(t, ready)
			checkNetworkPolicy(t, ready, f.gateway)
			checkShardEntry(t, ready, f.gateway)
		})
	}
	t.Run("gateway children", func(t *testing.T) { checkGatewayChildren(t, f.gateway) })

	gw := &popv1.PopulationGateway{}
	testenv.Poll(t, waitLong, func() (bool, error) {
		err := s.c.Get(ctx, client.ObjectKeyFromObject(f.gateway), gw)
		c := meta.FindStatusCondition(gw.Status.Conditions, popv1.ConditionPolicyReady)
		return err == nil && gw.Status.ActiveConnections == 5 && c != nil && c.Status == metav1.ConditionTrue, err
	})
	if gw.Status.PolicyVersion == "" {
		t.Error("gateway status.policyVersion is empty")
	}
	// No kubelet runs under envtest: the Deployment is never available.
	if c := meta.FindStatusCondition(gw.Status.Conditions, popv1.ConditionAvailable); c == nil || c.Reason != popv1.ReasonDeploymentUnavailable {
		t.Errorf("gateway Available = %+v, want reason DeploymentUnavailable", c)
	}
}

func checkClientCertificate(t *testing.T, conn *popv1.AgencyConnection) {
	t.Helper()
	cert := &cmapi.Certificate{ObjectMeta: metav1.ObjectMeta{Namespace: conn.Namespace, Name: conn.Name + "-client"}}
	get(t, cert)
	spec := cert.Spec
	wantURI := "spiffe://popconnect.io/agency/" + conn.Spec.AgencyCode
	if len(spec.URIs) != 1 || spec.URIs[0] != wantURI {
		t.Errorf("Certificate URIs %v, want [%s]", spec.URIs, wantURI)
	}
	if spec.SecretName != conn.Name+"-client-tls" {
		t.Errorf("secretName %q", spec.SecretName)
	}
	if pk := spec.PrivateKey; pk == nil || pk.Algorithm != cmapi.ECDSAKeyAlgorithm || pk.Size != 256 || pk.RotationPolicy != cmapi.RotationPolicyAlways {
		t.Errorf("privateKey %+v, want ECDSA 256 rotation Always", pk)
	}
	if !hasUsage(spec.Usages, cmapi.UsageClientAuth) || hasUsage(spec.Usages, cmapi.UsageServerAuth) {
		t.Errorf("usages %v, want client auth only", spec.Usages)
	}
	if spec.IssuerRef.Name != conn.Spec.ClientCertificate.IssuerRef.Name || spec.IssuerRef.Kind != "ClusterIssuer" {
		t.Errorf("issuerRef %+v", spec.IssuerRef)
	}
	if spec.Duration == nil || spec.Duration.Duration != conn.Spec.ClientCertificate.Duration.Duration {
		t.Errorf("duration %v, want %v", spec.Duration, conn.Spec.ClientCertificate.Duration)
	}
	if rb := conn.Spec.ClientCertificate.RenewBefore; rb != nil && (spec.RenewBefore == nil || spec.RenewBefore.Duration != rb.Duration) {
		t.Errorf("renewBefore %v, want %v", spec.RenewBefore, rb)
	}
	if spec.SecretTemplate == nil || spec.SecretTemplate.Labels[render.LabelConnection] != conn.Name {
		t.Errorf("secretTemplate labels %+v do not name the connection", spec.SecretTemplate)
	}
	if !metav1.IsControlledBy(cert, conn) {
		t.Error("Certificate is not controlled by the connection")
	}

	secret, st := issuedSecret(t, conn)
	leaf := parseCert(t, secret.Data["tls.crt"])
	if len(leaf.URIs) != 1 || leaf.URIs[0].String() != wantURI {
		t.Errorf("issued certificate URI SANs %v, want %s", leaf.URIs, wantURI)
	}
	if len(leaf.ExtKeyUsage) != 1 || leaf.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth {
		t.Errorf("issued certificate ext key usage %v, want client auth", leaf.ExtKeyUsage)
	}
	if secret.Labels[render.LabelConnection] != conn.Name {
		t.Errorf("Secret labels %v do not name the connection", secret.Labels)
	}
	if st.SecretName != secret.Name {
		t.Errorf("status.certificate.secretName %q, want %q", st.SecretName, secret.Name)
	}
}

// issuedSecret waits until the connection's status.certificate describes
// the certificate its Secret holds (same notAfter and serial number), and
// returns both. Read once each, they can disagree for a moment without a
// fault: cert-manager sometimes issues a new certificate a second time just
// after the first (its trigger controller can judge the Secret from a cache
// older than the Certificate), and the status follows a moment after the
// Secret.
func issuedSecret(t *testing.T, conn *popv1.AgencyConnection) (*corev1.Secret, *popv1.CertificateStatus) {
	t.Helper()
	ctx := context.Background()
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: conn.Namespace, Name: conn.Name + "-client-tls"}}
	cur := &popv1.AgencyConnection{}
	var leaf *x509.Certificate
	defer func() {
		if t.Failed() {
			t.Logf("status.certificate when the wait ended: %+v; the Secret's certificate: %v", cur.Status.Certificate, describeLeaf(leaf))
		}
	}()
	testenv.Poll(t, waitLong, func() (bool, error) {
		if err := s.c.Get(ctx, client.ObjectKeyFromObject(conn), cur); err != nil {
			return false, err
		}
		if err := s.c.Get(ctx, client.ObjectKeyFromObject(secret), secret); err != nil || len(secret.Data["tls.crt"]) == 0 {
			return false, client.IgnoreNotFound(err)
		}
		leaf = parseCert(t, secret.Data["tls.crt"])
		st := cur.Status.Certificate
		return st != nil && st.NotAfter != nil && st.NotAfter.Time.Equal(leaf.NotAfter) &&
			st.SerialNumber == strings.ToUpper(leaf.SerialNumber.Text(16)), nil
	})
	return secret, cur.Status.Certificate
}

func describeLeaf(leaf *x509.Certificate) string {
	if leaf == nil {
		return "none"
	}
	return fmt.Sprintf("serial %s notAfter %s", strings.ToUpper(leaf.SerialNumber.Text(16)), leaf.NotAfter)
}

func hasUsage(usages []cmapi.KeyUsage, u cmapi.KeyUsage) bool {
	for _, x := range usages {
		if x == u {
			return true
		}
	}
	return false
}

func checkNetworkPolicy(t *testing.T, conn *popv1.AgencyConnection, gw *popv1.PopulationGateway) {
	t.Helper()
	np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: gw.Namespace, Name: render.ConnectionNetworkPolicyName(conn)}}
	get(t, np)
	if got := np.Spec.PodSelector.MatchLabels; got[render.LabelInstance] != gw.Name || got[render.LabelName] != render.GatewayAppName {
		t.Errorf("podSelector %v does not select the gateway's pods", got)
	}
	if len(np.Spec.PolicyTypes) != 1 || np.Spec.PolicyTypes[0] != networkingv1.PolicyTypeIngress {
		t.Errorf("policyTypes %v, want [Ingress]", np.Spec.PolicyTypes)
	}
	if len(np.Spec.Ingress) != 1 || len(np.Spec.Ingress[0].Ports) != 1 || np.Spec.Ingress[0].Ports[0].Port.IntVal != 8443 {
		t.Fatalf("ingress %+v, want one rule on port 8443", np.Spec.Ingress)
	}
	var cidrs []string
	for _, peer := range np.Spec.Ingress[0].From {
		if peer.IPBlock != nil {
			cidrs = append(cidrs, peer.IPBlock.CIDR)
		}
	}
	if len(cidrs) != len(conn.Spec.Network.SourceCIDRs) {
		t.Errorf("ipBlocks %v, want %v", cidrs, conn.Spec.Network.SourceCIDRs)
	}
	if sel := conn.Spec.Network.NamespaceSelector; sel != nil {
		found := false
		for _, peer := range np.Spec.Ingress[0].From {
			found = found || (peer.NamespaceSelector != nil && peer.NamespaceSelector.MatchLabels["popconnect.io/agency"] == sel.MatchLabels["popconnect.io/agency"])
		}
		if !found {
			t.Errorf("no peer with the connection's namespaceSelector in %+v", np.Spec.Ingress[0].From)
		}
	}
}

func checkShardEntry(t *testing.T, conn *popv1.AgencyConnection, gw *popv1.PopulationGateway) {
	t.Helper()
	e := shardEntry(t, gw, conn.Spec.AgencyCode)
	if e == nil {
		t.Fatal("no entry in the policy shard")
	}
	if e.Suspended || len(e.AllowedFields) != len(conn.Spec.AllowedFields) || len(e.AllowedOperations) != len(conn.Spec.AllowedOperations) {
		t.Errorf("entry %+v does not match the spec", e)
	}
	if e.RateLimit.RequestsPerSecond != conn.Spec.RateLimit.RequestsPerSecond || e.RateLimit.Burst != conn.Spec.RateLimit.Burst {
		t.Errorf("entry rate limit %+v, want %+v", e.RateLimit, conn.Spec.RateLimit)
	}
}

func checkGatewayChildren(t *testing.T, gw *popv1.PopulationGateway) {
	names := render.NamesFor(gw)
	ns := gw.Namespace
	children := []client.Object{
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: names.ServiceAccount}},
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: names.Role}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: names.RoleBinding}},
		&cmapi.Certificate{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: names.ServingCertificate}},
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: names.Deployment}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: names.Service}},
		&policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: names.PodDisruptionBudget}},
		&networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: names.DefaultDenyPolicy}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: names.AuditKeySecret}},
	}
	live := &popv1.PopulationGateway{}
	must(t, s.c.Get(context.Background(), client.ObjectKeyFromObject(gw), live), "reading gateway")
	for _, child := range children {
		get(t, child)
		if !metav1.IsControlledBy(child, live) {
			t.Errorf("%T %s is not controlled by the gateway", child, child.GetName())
		}
	}
	dep := children[4].(*appsv1.Deployment)
	args := strings.Join(dep.Spec.Template.Spec.Containers[0].Args, " ")
	for _, want := range []string{"--policy-namespace=" + ns, "--policy-selector=popconnect.io/gateway=" + gw.Name, "--upstream-url=" + gw.Spec.Upstream.URL} {
		if !strings.Contains(args, want) {
			t.Errorf("gateway args %q lack %q", args, want)
		}
	}
	if key := children[8].(*corev1.Secret).Data["key"]; len(key) < 32 {
		t.Errorf("audit key has %d bytes, want >= 32", len(key))
	}
	serving := &corev1.Secret{}
	testenv.Poll(t, waitLong, func() (bool, error) {
		err := s.c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: names.ServingSecret}, serving)
		return err == nil && len(serving.Data["tls.crt"]) > 0, nil
	})
	leaf := parseCert(t, serving.Data["tls.crt"])
	if len(leaf.DNSNames) == 0 || leaf.DNSNames[0] != gw.Spec.ServerCertificate.DNSNames[0] {
		t.Errorf("serving certificate DNS names %v, want %v", leaf.DNSNames, gw.Spec.ServerCertificate.DNSNames)
	}
}

// TestSuspendAndResume: suspension shows in the shard as denied and in
// Ready; resuming restores access.
func TestSuspendAndResume(t *testing.T) {
	f := newFixture(t, "suspend")
	conn := f.connection(t, sampleConnections[3], nil)
	waitCondition(t, conn, popv1.ConditionProgrammed, metav1.ConditionTrue, "", waitLong)
	code := conn.Spec.AgencyCode

	setSuspended(t, conn, true)
	waitShard(t, f.gateway, code, waitShort, "denied", func(e *policy.Agency) bool { return e != nil && e.Suspended })
	waitCondition(t, conn, popv1.ConditionReady, metav1.ConditionFalse, popv1.ReasonSuspended, waitShort)

	setSuspended(t, conn, false)
	waitShard(t, f.gateway, code, waitShort, "allowed", func(e *policy.Agency) bool { return e != nil && !e.Suspended })
	waitCondition(t, conn, popv1.ConditionReady, metav1.ConditionTrue, popv1.ReasonReady, waitLong)
}

func setSuspended(t *testing.T, conn *popv1.AgencyConnection, suspended bool) {
	t.Helper()
	patch := []byte(`{"spec":{"suspended":` + map[bool]string{true: "true", false: "false"}[suspended] + `}}`)
	must(t, s.c.Patch(context.Background(), conn, client.RawPatch("application/merge-patch+json", patch)), "patching suspended")
}

// TestValidUntil: an agreement that ended is never programmed as allowed;
// one that ends soon is refused once it ends, with no write by the test.
func TestValidUntil(t *testing.T) {
	f := newFixture(t, "expiry")
	past := f.connection(t, sampleConnections[3], func(c *popv1.AgencyConnection) {
		c.Name = "expired"
		c.Spec.AgencyCode += "-X"
		c.Spec.ValidUntil = &metav1.Time{Time: time.Now().Add(-time.Hour)}
	})
	waitCondition(t, past, popv1.ConditionReady, metav1.ConditionFalse, popv1.ReasonExpired, waitShort)
	if e := shardEntry(t, f.gateway, past.Spec.AgencyCode); e != nil && !e.Suspended {
		t.Fatalf("expired connection programmed as allowed: %+v", e)
	}

	end := time.Now().Add(8 * time.Second).Truncate(time.Second)
	soon := f.connection(t, sampleConnections[3], func(c *popv1.AgencyConnection) {
		c.Name = "ends-soon"
		c.Spec.AgencyCode += "-S"
		c.Spec.ValidUntil = &metav1.Time{Time: end}
	})
	// A loaded machine may program the connection only after its end
	// (the manager busy with an earlier test's hundreds of connections):
	// its entry is then rightly denied from the start. Denied before the
	// end is the fault this test looks for.
	var first *policy.Agency
	waitShard(t, f.gateway, soon.Spec.AgencyCode, waitShort, "programmed", func(e *policy.Agency) bool { first = e; return e != nil })
	switch seen := time.Now(); {
	case first.Suspended && seen.Before(end):
		t.Fatalf("entry denied before validUntil: %+v", first)
	case first.Suspended:
		t.Skip("the machine is too slow: the connection was first programmed after its agreement ended")
	}
	waitShard(t, f.gateway, soon.Spec.AgencyCode, waitShort, "allowed", func(e *policy.Agency) bool { return e != nil && !e.Suspended })
	if time.Now().After(end) {
		t.Skip("the machine is too slow to observe the connection before its agreement ends")
	}
	waitShard(t, f.gateway, soon.Spec.AgencyCode, waitShort+10*time.Second, "denied", func(e *policy.Agency) bool { return e != nil && e.Suspended })
	if time.Now().Before(end) {
		t.Fatalf("entry denied before validUntil")
	}
	waitCondition(t, soon, popv1.ConditionReady, metav1.ConditionFalse, popv1.ReasonExpired, waitShort)
}

// TestCatalogFieldRemoved: removing a field from the catalog invalidates
// the connections that read it and takes them out of the policy.
func TestCatalogFieldRemoved(t *testing.T) {
	f := newFixture(t, "catalog")
	conn := f.connection(t, sampleConnections[3], nil) // TCT reads taxCode
	waitCondition(t, conn, popv1.ConditionProgrammed, metav1.ConditionTrue, "", waitLong)

	catalog := &popv1.FieldCatalog{ObjectMeta: metav1.ObjectMeta{Name: f.catalog.Name, Namespace: f.catalog.Namespace}}
	edit(t, catalog, "updating catalog", func() {
		var fields []popv1.CatalogField
		for _, fld := range catalog.Spec.Fields {
			if fld.Name != "taxCode" {
				fields = append(fields, fld)
			}
		}
		catalog.Spec.Fields = fields
	})

	got := waitCondition(t, conn, popv1.ConditionFieldsValid, metav1.ConditionFalse, popv1.ReasonUnknownField, waitShort)
	if c := meta.FindStatusCondition(got.Status.Conditions, popv1.ConditionFieldsValid); !strings.Contains(c.Message, `"taxCode"`) {
		t.Errorf("FieldsValid message %q does not name the field", c.Message)
	}
	waitCondition(t, conn, popv1.ConditionReady, metav1.ConditionFalse, popv1.ReasonUnknownField, waitShort)
	waitShard(t, f.gateway, conn.Spec.AgencyCode, waitShort, "absent", func(e *policy.Agency) bool { return e == nil })
	waitWarningEvent(t, conn, popv1.ReasonUnknownField)
}

// TestDuplicateAgencyCode: the younger claimant is refused, gets no
// certificate, and the older is untouched.
func TestDuplicateAgencyCode(t *testing.T) {
	f := newFixture(t, "dup")
	first := f.connection(t, sampleConnections[3], nil)
	waitCondition(t, first, popv1.ConditionReady, metav1.ConditionTrue, "", waitLong)
	// The Certificate's revision first: a re-issuance between the two reads
	// then shows as a revision past it.
	revisionBefore := certificateRevision(t, first)
	before := &popv1.AgencyConnection{}
	must(t, s.c.Get(context.Background(), client.ObjectKeyFromObject(first), before), "reading first")

	second := f.connection(t, sampleConnections[3], func(c *popv1.AgencyConnection) {
		c.Name, c.Spec.AgencyCode = "tax-authority-copy", first.Spec.AgencyCode
	})
	got := waitCondition(t, second, popv1.ConditionReady, metav1.ConditionFalse, popv1.ReasonDuplicateAgencyCode, waitShort)
	if c := meta.FindStatusCondition(got.Status.Conditions, popv1.ConditionReady); !strings.Contains(c.Message, first.Name) {
		t.Errorf("message %q does not name the connection that keeps the code", c.Message)
	}

	waitWarningEvent(t, second, popv1.ReasonDuplicateAgencyCode)

	other := f2(t, "dup-other")
	third := other.connection(t, sampleConnections[3], func(c *popv1.AgencyConnection) {
		c.Name, c.Spec.AgencyCode = "foreign-claim", first.Spec.AgencyCode
	})
	waitCondition(t, third, popv1.ConditionReady, metav1.ConditionFalse, popv1.ReasonDuplicateAgencyCode, waitShort)

	for _, refused := range []*popv1.AgencyConnection{second, third} {
		cert := &cmapi.Certificate{}
		err := s.c.Get(context.Background(), client.ObjectKey{Namespace: refused.Namespace, Name: refused.Name + "-client"}, cert)
		if err == nil {
			t.Errorf("a Certificate was requested for refused connection %s/%s", refused.Namespace, refused.Name)
		}
	}
	after := &popv1.AgencyConnection{}
	must(t, s.c.Get(context.Background(), client.ObjectKeyFromObject(first), after), "reading first")
	if after.ResourceVersion != before.ResourceVersion {
		// cert-manager may issue the older connection's certificate a
		// second time (its trigger controller can judge the Secret from a
		// cache older than the Certificate); the status then rightly pins
		// the new certificate. That is a write of its own, not the
		// duplicate's, and it leaves every verdict as it was, once the
		// shard holds the new pin (Programmed, and Ready, are Pending for
		// that moment).
		revision := certificateRevision(t, first)
		if revision <= revisionBefore {
			t.Fatalf("the older connection was rewritten: %+v", after.Status.Conditions)
		}
		t.Logf("the older connection was rewritten after cert-manager issued its certificate again (revision %d, then %d)", revisionBefore, revision)
		defer func() {
			if t.Failed() {
				t.Logf("the older connection's conditions went from %v to %v", verdicts(before), verdicts(after))
			}
		}()
		testenv.Poll(t, waitShort, func() (bool, error) {
			err := s.c.Get(context.Background(), client.ObjectKeyFromObject(first), after)
			return err == nil && slices.Equal(verdicts(before), verdicts(after)), err
		})
	}
}

// certificateRevision is the status.revision of the connection's
// Certificate: how many times cert-manager has issued it.
func certificateRevision(t *testing.T, conn *popv1.AgencyConnection) int {
	t.Helper()
	cert := &cmapi.Certificate{ObjectMeta: metav1.ObjectMeta{Namespace: conn.Namespace, Name: render.ClientCertificateName(conn)}}
	get(t, cert)
	if cert.Status.Revision == nil {
		return 0
	}
	return *cert.Status.Revision
}

// verdicts are the connection's conditions without their messages and
// times: type, status, reason and the generation they speak of.
func verdicts(conn *popv1.AgencyConnection) []string {
	var out []string
	for _, c := range conn.Status.Conditions {
		out = append(out, fmt.Sprintf("%s=%s/%s@%d", c.Type, c.Status, c.Reason, c.ObservedGeneration))
	}
	slices.Sort(out)
	return out
}

// f2 is a second fixture for tests that need another namespace.
func f2(t *testing.T, prefix string) *fixture { return newFixture(t, prefix) }

// waitWarningEvent waits for a Warning event about conn with the reason.
func waitWarningEvent(t *testing.T, conn *popv1.AgencyConnection, reason string) {
	t.Helper()
	testenv.Poll(t, waitShort, func() (bool, error) {
		var list eventsv1.EventList
		if err := s.c.List(context.Background(), &list, client.InNamespace(conn.Namespace)); err != nil {
			return false, err
		}
		for _, e := range list.Items {
			if e.Regarding.Name == conn.Name && e.Reason == reason && e.Type == corev1.EventTypeWarning {
				return true, nil
			}
		}
		return false, nil
	})
}
