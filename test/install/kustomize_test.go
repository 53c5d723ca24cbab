package install_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/internal/testenv"
)

const dryRunFieldOwner = "popconnect-install-test"

// TestKustomizeDefault checks what config/default installs without a
// cluster: the namespace, prefix, generated RBAC and restricted manager pod.
func TestKustomizeDefault(t *testing.T) {
	objs := buildKustomize(t)

	ns := onlyOne(t, objs, "Namespace")
	if ns.GetName() != releaseNamespace {
		t.Errorf("Namespace is %q, want %q", ns.GetName(), releaseNamespace)
	}
	for _, o := range objs {
		if !strings.HasPrefix(o.GetName(), "popconnect-") && o.GetKind() != "CustomResourceDefinition" {
			t.Errorf("%s: name without the popconnect- prefix", objectKey(o))
		}
		if ns := o.GetNamespace(); ns != "" && ns != releaseNamespace {
			t.Errorf("%s: in namespace %q, want %q", objectKey(o), ns, releaseNamespace)
		}
	}

	want := onlyOne(t, readObjects(t, "config/rbac/role.yaml"), "ClusterRole")
	if diff := cmp.Diff(want.Object["rules"], onlyOne(t, objs, "ClusterRole").Object["rules"]); diff != "" {
		t.Errorf("ClusterRole rules differ from config/rbac/role.yaml:\n%s", diff)
	}

	d := toDeployment(t, onlyOne(t, objs, "Deployment"))
	checkRestricted(t, d)
	if d.Spec.Template.Spec.ServiceAccountName != "popconnect-controller-manager" {
		t.Errorf("serviceAccountName = %q, want popconnect-controller-manager", d.Spec.Template.Spec.ServiceAccountName)
	}
	args := d.Spec.Template.Spec.Containers[0].Args
	for _, arg := range []string{"--leader-elect=true", "--metrics-bind-address=:8080", "--health-probe-bind-address=:8081"} {
		if !slices.Contains(args, arg) {
			t.Errorf("manager args %q lack %s", args, arg)
		}
	}
}

// TestChartMatchesKustomize checks that the chart with its default values
// installs the same operator as config/default: the same objects (the chart
// leaves the Namespace to --create-namespace), the same RBAC, and the same
// manager pod but for labels and image tags.
func TestChartMatchesKustomize(t *testing.T) {
	kustomized := buildKustomize(t)
	charted := decodeObjects(t, renderChart(t))

	keys := func(objs []*unstructured.Unstructured) []string {
		var out []string
		for _, o := range objs {
			if o.GetKind() != "Namespace" {
				out = append(out, objectKey(o))
			}
		}
		slices.Sort(out)
		return out
	}
	if diff := cmp.Diff(keys(kustomized), keys(charted)); diff != "" {
		t.Errorf("objects differ (-kustomize +chart):\n%s", diff)
	}

	for _, kind := range []string{"ClusterRole", "Role"} {
		if diff := cmp.Diff(onlyOne(t, kustomized, kind).Object["rules"], onlyOne(t, charted, kind).Object["rules"]); diff != "" {
			t.Errorf("%s rules differ (-kustomize +chart):\n%s", kind, diff)
		}
	}
	if diff := cmp.Diff(onlyOne(t, kustomized, "Service").Object["spec"].(map[string]any)["ports"],
		onlyOne(t, charted, "Service").Object["spec"].(map[string]any)["ports"]); diff != "" {
		t.Errorf("metrics Service ports differ (-kustomize +chart):\n%s", diff)
	}

	podSpec := func(u *unstructured.Unstructured) corev1.PodSpec {
		spec := toDeployment(t, u).Spec.Template.Spec
		c := &spec.Containers[0]
		c.Image = imageName(c.Image)
		for i, arg := range c.Args {
			if v, ok := strings.CutPrefix(arg, "--gateway-image="); ok {
				c.Args[i] = "--gateway-image=" + imageName(v)
			}
		}
		return spec
	}
	if diff := cmp.Diff(podSpec(onlyOne(t, kustomized, "Deployment")), podSpec(onlyOne(t, charted, "Deployment"))); diff != "" {
		t.Errorf("manager pod specs differ (-kustomize +chart), image tags aside:\n%s", diff)
	}
	kr, cr := toDeployment(t, onlyOne(t, kustomized, "Deployment")).Spec.Replicas, toDeployment(t, onlyOne(t, charted, "Deployment")).Spec.Replicas
	if kr == nil || cr == nil || *kr != *cr {
		t.Errorf("replicas differ: kustomize %v, chart %v", kr, cr)
	}
}

// imageName strips the tag or digest from an image reference.
func imageName(ref string) string {
	if i := strings.Index(ref, "@"); i >= 0 {
		ref = ref[:i]
	}
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		ref = ref[:i]
	}
	return ref
}

// TestInstallDryRun applies every object of config/default and of the
// chart (default values) with server-side dry-run to a real API server, so
// schema, RBAC and admission errors show up before any cluster sees them.
func TestInstallDryRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane")
	}
	kustomized := buildKustomize(t)
	charted := decodeObjects(t, renderChart(t))

	env := testenv.New(t, testenv.Options{
		CRDDirectoryPaths: []string{"config/crd/bases"},
		CertManagerCRDs:   true,
		AddToScheme:       []func(*runtime.Scheme) error{popv1.AddToScheme},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// Dry-run objects in a namespace that does not exist are refused, so
	// the namespace is created for real (dry-run applied first, as written).
	ns := onlyOne(t, kustomized, "Namespace")
	applyDryRun(ctx, t, env.Client, ns)
	if err := env.Client.Create(ctx, ns.DeepCopy()); err != nil {
		t.Fatalf("creating namespace %s: %v", ns.GetName(), err)
	}

	for name, objs := range map[string][]*unstructured.Unstructured{"kustomize": kustomized, "chart": charted} {
		t.Run(name, func(t *testing.T) {
			for _, o := range objs {
				if o.GetKind() == "Namespace" {
					continue
				}
				applyDryRun(ctx, t, env.Client, o)
			}
		})
	}

	// The dry-run wrote nothing.
	var deployments metav1.PartialObjectMetadataList
	deployments.SetGroupVersionKind(appsv1.SchemeGroupVersion.WithKind("DeploymentList"))
	if err := env.Client.List(ctx, &deployments, client.InNamespace(releaseNamespace)); err != nil {
		t.Fatal(err)
	}
	if len(deployments.Items) != 0 {
		t.Errorf("dry-run created %d Deployments", len(deployments.Items))
	}
}

// applyDryRun server-side applies one object with dryRun=All.
func applyDryRun(ctx context.Context, t *testing.T, c client.Client, o *unstructured.Unstructured) {
	t.Helper()
	err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(o.DeepCopy()),
		client.DryRunAll, client.FieldOwner(dryRunFieldOwner), client.ForceOwnership)
	if err != nil {
		t.Errorf("server-side dry-run apply of %s: %v", objectKey(o), err)
	}
}
