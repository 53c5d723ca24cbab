package controllers_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/gateway"
	"github.com/popconnect/popconnect/gateway/audit"
	"github.com/popconnect/popconnect/gateway/metrics"
	"github.com/popconnect/popconnect/gateway/policy"
	"github.com/popconnect/popconnect/internal/popdb"
	"github.com/popconnect/popconnect/internal/render"
)

// TestHandMadeCertificateRefusedByGateway is issue 13's "Done when" from
// the real pieces: the operator writes the gateway's shards; a gateway
// loaded from those shards serves over TLS with the agency client CA; the
// connection's own certificate is served, a Certificate made by hand in
// another namespace with the same URI from the same issuer is refused with
// 403 certificate_not_pinned. (The gateway's pin check is the gateway
// side of the finding: this test passes once it enforces certificateSHA256.)
func TestHandMadeCertificateRefusedByGateway(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, "pine2e")
	conn := f.connection(t, sampleConnections[3], nil)
	waitCondition(t, conn, popv1.ConditionReady, metav1.ConditionTrue, popv1.ReasonReady, waitLong)
	own, cur := ownSecret(t, conn)
	stolen := handMadeCertificate(t, newNamespace(t, "evile2e"), conn.Spec.AgencyCode)
	waitCondition(t, conn, popv1.ConditionProgrammed, metav1.ConditionTrue, popv1.ReasonProgrammed, waitShort)
	waitOwnPins(t, f.gateway, conn, "pinned to the own certificate", cur.Status.Certificate.SHA256)

	gw := gatewayFromShards(t, f.gateway)
	caSecret := &corev1.Secret{}
	must(t, s.c.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: clientCASecr}, caSecret), "reading the client CA")
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caSecret.Data["ca.crt"]) {
		t.Fatal("no CA in the client CA Secret")
	}
	srv := httptest.NewUnstartedServer(gw)
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool, MinVersion: tls.VersionTLS13}
	srv.StartTLS()
	t.Cleanup(srv.Close)

	id, err := popdb.NationalID(1)
	must(t, err, "making a national ID")
	call := func(secret *corev1.Secret) (int, string) {
		t.Helper()
		pair, err := tls.X509KeyPair(secret.Data["tls.crt"], secret.Data["tls.key"])
		must(t, err, "loading the key pair of "+secret.Name)
		// A transport of its own: a shared one would reuse the connection
		// (and the certificate) of the previous call.
		tr := srv.Client().Transport.(*http.Transport).Clone()
		tr.TLSClientConfig.Certificates = []tls.Certificate{pair}
		t.Cleanup(tr.CloseIdleConnections)
		c := &http.Client{Transport: tr}
		resp, err := c.Get(srv.URL + "/v1/citizens/" + id)
		must(t, err, "calling the gateway")
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var e struct{ Error string }
		_ = json.Unmarshal(body, &e)
		return resp.StatusCode, e.Error
	}
	if code, errCode := call(own); code != http.StatusOK {
		t.Errorf("the connection's own certificate: %d %s, want 200", code, errCode)
	}
	if code, errCode := call(stolen); code != http.StatusForbidden || errCode != "certificate_not_pinned" {
		t.Errorf("the hand-made certificate with the agency's URI: %d %q, want 403 certificate_not_pinned", code, errCode)
	}
}

// gatewayFromShards is a gateway whose policy is the union of the shards
// the operator wrote for gw, in front of a simulated population database.
func gatewayFromShards(t *testing.T, pgw *popv1.PopulationGateway) *gateway.Gateway {
	t.Helper()
	var shards corev1.ConfigMapList
	must(t, s.c.List(context.Background(), &shards, client.InNamespace(pgw.Namespace),
		client.MatchingLabels{render.LabelGateway: render.GatewayLabelValue(pgw.Name)}), "listing the shards")
	docs := map[string]*policy.Document{}
	for i := range shards.Items {
		cm := &shards.Items[i]
		doc, err := policy.Parse([]byte(cm.Data[policy.ShardDataKey]))
		must(t, err, "parsing shard "+cm.Name)
		docs[cm.Name] = doc
	}
	gen, err := popdb.NewGenerator(1, 100)
	must(t, err, "making the population")
	upstream := httptest.NewServer(popdb.Handler(gen))
	t.Cleanup(upstream.Close)
	u, _ := url.Parse(upstream.URL)
	al, err := audit.NewLogger(io.Discard, []byte("an audit key of at least 32 bytes!!"))
	must(t, err, "making the audit logger")
	t.Cleanup(func() { al.Close() })
	gw, err := gateway.New(gateway.Config{
		UpstreamURL: u, UpstreamTimeout: 5 * time.Second, MaxUpstreamBodyBytes: 64 << 10,
		Location: time.UTC, Audit: al, Metrics: metrics.New(),
		Log: slog.New(slog.NewJSONHandler(io.Discard, nil)),
	})
	must(t, err, "making the gateway")
	must(t, gw.SetPolicy(policy.Merge(docs)), "setting the policy")
	return gw
}
