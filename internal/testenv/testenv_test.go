package testenv_test

import (
	"context"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/popconnect/popconnect/internal/testenv"
)

func TestStartInstallsCertManagerCRDs(t *testing.T) {
	env := testenv.New(t, testenv.Options{CertManagerCRDs: true})
	ctx := context.Background()

	for _, name := range []string{
		"certificates.cert-manager.io",
		"certificaterequests.cert-manager.io",
		"issuers.cert-manager.io",
		"clusterissuers.cert-manager.io",
	} {
		var crd apiextensionsv1.CustomResourceDefinition
		if err := env.Client.Get(ctx, client.ObjectKey{Name: name}, &crd); err != nil {
			t.Fatalf("get CRD %s: %v", name, err)
		}
		if !established(&crd) {
			t.Errorf("CRD %s is not Established", name)
		}
	}

	// The scheme knows cert-manager's kinds and the API serves them.
	var certs cmapi.CertificateList
	if err := env.Client.List(ctx, &certs); err != nil {
		t.Fatalf("list Certificates: %v", err)
	}
}

func TestStartRejectsMissingCRDPath(t *testing.T) {
	_, err := testenv.Start(testenv.Options{CRDDirectoryPaths: []string{"config/crd/does-not-exist"}})
	if err == nil || !strings.Contains(err.Error(), "config/crd/does-not-exist") {
		t.Fatalf("Start with a missing CRD path: got error %v, want one naming the path", err)
	}
}

func established(crd *apiextensionsv1.CustomResourceDefinition) bool {
	for _, c := range crd.Status.Conditions {
		if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
			return true
		}
	}
	return false
}

// TestRestartAPIServer: a client made before the restart keeps working
// after it (same address, same CA, same client certificate), etcd keeps
// the data, and while the API server is down requests fail rather than
// hang.
func TestRestartAPIServer(t *testing.T) {
	env := testenv.New(t, testenv.Options{})
	ctx := context.Background()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "survives-restart"}, Data: map[string]string{"k": "v"}}
	if err := env.Client.Create(ctx, cm); err != nil {
		t.Fatal(err)
	}
	if err := env.StopAPIServer(); err != nil {
		t.Fatal(err)
	}
	downCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := env.Client.Get(downCtx, client.ObjectKeyFromObject(cm), &corev1.ConfigMap{}); err == nil {
		t.Fatal("a read succeeded while the API server was stopped")
	}
	if err := env.StartAPIServer(); err != nil {
		t.Fatal(err)
	}
	got := &corev1.ConfigMap{}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(cm), got); err != nil {
		t.Fatalf("reading after the restart with the old client: %v", err)
	}
	if got.Data["k"] != "v" {
		t.Fatalf("data after the restart: %v", got.Data)
	}
	if err := env.StartAPIServer(); err == nil {
		t.Error("StartAPIServer on a running API server did not fail")
	}
}
