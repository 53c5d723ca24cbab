package controllers_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/gateway/policy"
	"github.com/popconnect/popconnect/internal/render"
	"github.com/popconnect/popconnect/internal/testenv"
)

// readSample decodes a file of config/samples into obj.
func readSample(t *testing.T, file string, obj any) {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, "config", "samples", file))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(data, obj); err != nil {
		t.Fatalf("decoding %s: %v", file, err)
	}
}

// fixture is a catalog and a gateway of one test, in its own namespace.
type fixture struct {
	ns      string
	catalog *popv1.FieldCatalog
	gateway *popv1.PopulationGateway
}

// newFixture creates the sample catalog (under a name of this test) and the
// sample gateway in a fresh namespace.
func newFixture(t *testing.T, prefix string) *fixture {
	t.Helper()
	ctx := context.Background()
	ns := newNamespace(t, prefix)
	catalog := &popv1.FieldCatalog{}
	readSample(t, "popconnect_v1alpha1_fieldcatalog.yaml", catalog)
	catalog.Name = ns + "-catalog"
	if err := s.c.Create(ctx, catalog); err != nil {
		t.Fatalf("creating catalog: %v", err)
	}
	t.Cleanup(func() { _ = s.c.Delete(context.Background(), catalog) })
	gw := &popv1.PopulationGateway{}
	readSample(t, "popconnect_v1alpha1_populationgateway.yaml", gw)
	gw.Namespace = ns
	gw.Spec.CatalogRef.Name = catalog.Name
	if err := s.c.Create(ctx, gw); err != nil {
		t.Fatalf("creating gateway: %v", err)
	}
	return &fixture{ns: ns, catalog: catalog, gateway: gw}
}

// connection creates the sample connection from file in the fixture's
// namespace, after mutate.
func (f *fixture) connection(t *testing.T, file string, mutate func(*popv1.AgencyConnection)) *popv1.AgencyConnection {
	t.Helper()
	conn := &popv1.AgencyConnection{}
	readSample(t, file, conn)
	conn.Namespace = f.ns
	// Agency codes are unique cluster-wide: each test gets its own.
	conn.Spec.AgencyCode += "-" + strings.ToUpper(f.ns[strings.LastIndex(f.ns, "-")+1:])
	if mutate != nil {
		mutate(conn)
	}
	if err := s.c.Create(context.Background(), conn); err != nil {
		t.Fatalf("creating connection %s: %v", conn.Name, err)
	}
	return conn
}

// get reads the current version of obj.
func get(t *testing.T, obj client.Object) {
	t.Helper()
	if err := s.c.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
		t.Fatalf("reading %T %s: %v", obj, client.ObjectKeyFromObject(obj), err)
	}
}

// waitCondition waits until the connection's condition has status and
// reason (reason "" matches any) for its current generation.
func waitCondition(t *testing.T, conn *popv1.AgencyConnection, condType string, status metav1.ConditionStatus, reason string, timeout time.Duration) *popv1.AgencyConnection {
	t.Helper()
	var last *metav1.Condition
	cur := &popv1.AgencyConnection{}
	deadline := time.Now().Add(timeout)
	for {
		if err := s.c.Get(context.Background(), client.ObjectKeyFromObject(conn), cur); err != nil {
			t.Fatalf("reading connection: %v", err)
		}
		last = meta.FindStatusCondition(cur.Status.Conditions, condType)
		if last != nil && last.Status == status && (reason == "" || last.Reason == reason) &&
			last.ObservedGeneration == cur.Generation {
			return cur
		}
		if time.Now().After(deadline) {
			t.Fatalf("connection %s: %s is %+v after %v, want %s/%s (all: %+v)", conn.Name, condType, last, timeout, status, reason, cur.Status.Conditions)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// shardEntry returns the connection's entry in its gateway's shard, or nil.
func shardEntry(t *testing.T, gw *popv1.PopulationGateway, code string) *policy.Agency {
	t.Helper()
	cm := &corev1.ConfigMap{}
	key := client.ObjectKey{Namespace: gw.Namespace, Name: render.ShardName(gw.Name, render.ShardIndex(code))}
	if err := s.c.Get(context.Background(), key, cm); err != nil {
		return nil
	}
	entries, err := render.ShardEntries(cm)
	if err != nil {
		t.Fatalf("decoding shard %s: %v", key, err)
	}
	for i := range entries {
		if entries[i].AgencyCode == code {
			return &entries[i]
		}
	}
	return nil
}

// waitShard waits until the agency's shard entry satisfies ok.
func waitShard(t *testing.T, gw *popv1.PopulationGateway, code string, timeout time.Duration, what string, ok func(*policy.Agency) bool) {
	t.Logf("waiting for the %s entry of %s", what, code)
	t.Helper()
	var last *policy.Agency
	defer func() {
		if t.Failed() {
			// What the shard held last, for a wait that timed out.
			t.Logf("the %s entry of %s when the wait ended: %+v", what, code, last)
		}
	}()
	testenv.Poll(t, timeout, func() (bool, error) {
		last = shardEntry(t, gw, code)
		return ok(last), nil
	})
}

// parseCert decodes the first PEM certificate.
func parseCert(t *testing.T, data []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatal("no PEM block")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// edit reads obj, applies mutate and sends the difference as a merge patch,
// the way kubectl edit does. A patch carries no resourceVersion, so a write
// by a controller between the read and the patch (a status update, a pinned
// digest) does not fail the edit with a conflict.
func edit(t *testing.T, obj client.Object, what string, mutate func()) {
	t.Helper()
	get(t, obj)
	base := obj.DeepCopyObject().(client.Object)
	mutate()
	must(t, s.c.Patch(context.Background(), obj, client.MergeFrom(base)), what)
}

func must(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// admitAllNamespaces lets connections from any namespace use the gateway
// (spec.allowedConnections.namespaces.from: All).
func admitAllNamespaces(t *testing.T, gw *popv1.PopulationGateway) {
	t.Helper()
	ctx := context.Background()
	cur := &popv1.PopulationGateway{}
	must(t, s.c.Get(ctx, client.ObjectKeyFromObject(gw), cur), "reading the gateway")
	patch := client.MergeFrom(cur.DeepCopy())
	cur.Spec.AllowedConnections = &popv1.AllowedConnections{Namespaces: &popv1.AllowedNamespaces{From: popv1.NamespacesFromAll}}
	must(t, s.c.Patch(ctx, cur, patch), "admitting every namespace to the gateway")
}
