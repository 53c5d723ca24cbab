//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	admissionregv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/popconnect/popconnect/internal/cmrunner"
)

const (
	certManagerModule = "github.com/cert-manager/cert-manager"
	// certManagerNamespace is where its chart is installed, and so its
	// cluster resource namespace, where the CA ClusterIssuer's Secret lives.
	certManagerNamespace = cmrunner.DefaultClusterResourceNamespace
	certManagerRelease   = "cert-manager"
	// certManagerWebhook names, for that release, the webhook's Deployment,
	// Service and webhook configurations; the webhook keeps the CA of its
	// serving certificate in the Secret certManagerWebhook+"-ca".
	certManagerWebhook = certManagerRelease + "-webhook"
	// webhookName is the admission webhook the chart registers.
	webhookName = "webhook.cert-manager.io"
)

// certManagerComponents are the release's Deployments, the chart value
// that sets each one's image, and that image: hack/e2e/images.sh builds
// them, tagged with the module's version.
var certManagerComponents = []struct{ deployment, values, image string }{
	{certManagerRelease, "image", "cert-manager-controller"},
	{certManagerWebhook, "webhook.image", "cert-manager-webhook"},
	{certManagerRelease + "-cainjector", "cainjector.image", "cert-manager-cainjector"},
}

// module is what `go mod download -json` says of a module.
type module struct {
	Version string
	Dir     string
}

// certManager locates the cert-manager module popconnect's go.mod pins: its
// chart is in deploy/charts/cert-manager, and its version tags the images.
func (cl *cluster) certManager(ctx context.Context) (module, error) {
	out, err := cl.run(ctx, "go", "mod", "download", "-json", certManagerModule)
	if err != nil {
		return module{}, err
	}
	var m module
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		return module{}, fmt.Errorf("go mod download -json %s: %w", certManagerModule, err)
	}
	if m.Dir == "" || m.Version == "" {
		return module{}, fmt.Errorf("go mod download -json %s: no directory or version in %q", certManagerModule, out)
	}
	return m, nil
}

// installCertManager installs cert-manager as a platform engineer does: its
// own Helm chart, CRDs included, from its module's deploy/charts, running
// the controller, webhook and cainjector images built from that module. It
// then waits until the webhook admits cert-manager's objects over the CA
// the cainjector injected, and creates the CA ClusterIssuer.
func (cl *cluster) installCertManager(ctx context.Context) error {
	mod, err := cl.certManager(ctx)
	if err != nil {
		return err
	}
	if err := cl.createNamespace(ctx, certManagerNamespace); err != nil {
		return err
	}
	args := []string{"install", certManagerRelease, filepath.Join(mod.Dir, "deploy", "charts", "cert-manager"),
		"--namespace", certManagerNamespace,
		"--set", "crds.enabled=true",
		// Its image (startupapicheck) is not built here; the wait below
		// checks what it checks, that the webhook answers.
		"--set", "startupapicheck.enabled=false",
		"--wait", "--timeout", installTimeout.String(),
	}
	// The chart in the module names the release placeholder v0.0.0 as
	// its images' tag: every image is set here.
	for _, c := range certManagerComponents {
		args = append(args,
			"--set", c.values+".repository="+imageRegistry+"/"+c.image,
			"--set", c.values+".tag="+mod.Version,
			"--set", c.values+".pullPolicy=Never")
	}
	if _, err := cl.run(ctx, cl.helm, args...); err != nil {
		return err
	}
	if err := cl.waitCertManagerWebhook(ctx); err != nil {
		return err
	}
	return cmrunner.BootstrapCA(ctx, cl.client, cmrunner.CA{Name: caName, Namespace: certManagerNamespace})
}

// waitCertManagerWebhook waits until the API server sends cert-manager's
// objects to the webhook and gets its answer: the cainjector has put the
// webhook's CA into both webhook configurations, and the webhook denies a
// Certificate that names no subject (a dry run: nothing is stored).
func (cl *cluster) waitCertManagerWebhook(ctx context.Context) error {
	if err := poll(ctx, installTimeout, func() (bool, string, error) {
		return cl.webhookCAInjected(ctx)
	}); err != nil {
		return err
	}
	return poll(ctx, installTimeout, func() (bool, string, error) {
		err := cl.createInvalidCertificate(ctx)
		if err == nil {
			return false, "", fmt.Errorf("a Certificate without a subject was admitted: the webhook did not see it")
		}
		return deniedByWebhook(err), err.Error(), nil
	})
}

// webhookCAInjected reports whether the caBundle of both cert-manager webhook
// configurations is the CA in the webhook's Secret.
func (cl *cluster) webhookCAInjected(ctx context.Context) (bool, string, error) {
	var ca corev1.Secret
	if err := cl.client.Get(ctx, client.ObjectKey{Namespace: certManagerNamespace, Name: certManagerWebhook + "-ca"}, &ca); err != nil {
		return false, err.Error(), nil
	}
	want := ca.Data["ca.crt"]
	if len(want) == 0 {
		return false, "the webhook's CA Secret has no ca.crt yet", nil
	}
	var vwc admissionregv1.ValidatingWebhookConfiguration
	if err := cl.client.Get(ctx, client.ObjectKey{Name: certManagerWebhook}, &vwc); err != nil {
		return false, err.Error(), nil
	}
	var mwc admissionregv1.MutatingWebhookConfiguration
	if err := cl.client.Get(ctx, client.ObjectKey{Name: certManagerWebhook}, &mwc); err != nil {
		return false, err.Error(), nil
	}
	for _, w := range vwc.Webhooks {
		if !bytes.Equal(w.ClientConfig.CABundle, want) {
			return false, "validating webhook " + w.Name + ": caBundle not injected yet", nil
		}
	}
	for _, w := range mwc.Webhooks {
		if !bytes.Equal(w.ClientConfig.CABundle, want) {
			return false, "mutating webhook " + w.Name + ": caBundle not injected yet", nil
		}
	}
	return len(vwc.Webhooks) > 0 && len(mwc.Webhooks) > 0, "no webhooks in the configurations", nil
}

// deniedByWebhook reports whether err is cert-manager's webhook refusing an
// object.
func deniedByWebhook(err error) bool {
	return err != nil && strings.Contains(err.Error(), "admission webhook \""+webhookName+"\" denied the request")
}

// createInvalidCertificate asks the API server to create (dry run) a
// Certificate with no common name and no subject alternative name, which
// only cert-manager's webhook refuses: its CRD's schema cannot say that one
// of them is required.
func (cl *cluster) createInvalidCertificate(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return cl.client.Create(ctx, &cmapi.Certificate{
		ObjectMeta: metav1.ObjectMeta{Name: "e2e-no-subject", Namespace: certManagerNamespace},
		Spec: cmapi.CertificateSpec{
			SecretName: "e2e-no-subject",
			IssuerRef:  cmmeta.IssuerReference{Name: caName, Kind: cmapi.ClusterIssuerKind},
		},
	}, client.DryRunAll)
}

// TestCertManagerRunsFromItsChart: cert-manager's own chart runs the
// controller, webhook and cainjector images built from the module go.mod
// pins; the cainjector keeps the webhook's CA in both webhook
// configurations, and the API server sends cert-manager's objects through
// the webhook, which refuses an invalid one.
func TestCertManagerRunsFromItsChart(t *testing.T) {
	cl := setup(t)
	ctx := context.Background()
	mod, err := cl.certManager(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range certManagerComponents {
		var d appsv1.Deployment
		if err := cl.client.Get(ctx, client.ObjectKey{Namespace: certManagerNamespace, Name: c.deployment}, &d); err != nil {
			t.Fatal(err)
		}
		if got, want := d.Spec.Template.Spec.Containers[0].Image, imageRegistry+"/"+c.image+":"+mod.Version; got != want {
			t.Errorf("deployment %s runs %s, want %s", c.deployment, got, want)
		}
		if d.Status.AvailableReplicas < 1 {
			t.Errorf("deployment %s: no available replica", c.deployment)
		}
	}
	if ok, state, err := cl.webhookCAInjected(ctx); err != nil || !ok {
		t.Errorf("webhook CA not injected: %s %v", state, err)
	}
	err = cl.createInvalidCertificate(ctx)
	if !deniedByWebhook(err) {
		t.Errorf("a Certificate without a subject: got %v, want a denial by %s", err, webhookName)
	}
	if t.Failed() {
		cl.dump(t)
	}
}
