package install_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/popconnect/popconnect/internal/golden"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

const (
	overridesFile  = "test/install/testdata/values-overrides.yaml"
	keepAnnotation = "helm.sh/resource-policy"
)

// chartCase is a value set to render the chart with.
type chartCase struct {
	name string
	args []string
}

// chartCases are the value sets every chart test renders: the defaults and
// a file that overrides every value.
func chartCases() []chartCase {
	return []chartCase{
		{name: "default"},
		{name: "overrides", args: []string{"-f", overridesFile}},
	}
}

// TestChartLint runs `helm lint --strict` with each value set.
func TestChartLint(t *testing.T) {
	for _, tc := range chartCases() {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"lint", "--strict", chartDir, "--kube-version", kubeVersion}, tc.args...)
			runHelm(t, args...)
		})
	}
}

// TestChartGolden compares `helm template` with testdata/chart-*.golden.yaml;
// -update rewrites them. What is generated from config/ (the CRDs, the
// ClusterRole's rules) is left out of the golden files, so an API or RBAC
// change needs no golden update: TestChartCRDsMatchConfig and
// TestChartRBACMatchesConfig check it against config/ instead.
func TestChartGolden(t *testing.T) {
	for _, tc := range chartCases() {
		t.Run(tc.name, func(t *testing.T) {
			got := goldenView(t, renderChart(t, tc.args...))
			golden.Check(t, filepath.Join("testdata", "chart-"+tc.name+".golden.yaml"), got)
		})
	}
}

// TestChartCRDsMatchConfig checks that the chart installs exactly the CRDs
// in config/crd/bases: the same objects once the keep annotation is removed,
// and, with crds.keep=false, the same text line for line.
func TestChartCRDsMatchConfig(t *testing.T) {
	bases, err := filepath.Glob(filepath.Join(repoRoot(t), "config/crd/bases/*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(bases) == 0 {
		t.Fatal("no CRDs in config/crd/bases: run `make manifests`")
	}
	want := map[string]*unstructured.Unstructured{}
	for _, base := range bases {
		rel, err := filepath.Rel(repoRoot(t), base)
		if err != nil {
			t.Fatal(err)
		}
		for _, crd := range readObjects(t, rel) {
			want[crd.GetName()] = crd
		}
	}

	t.Run("objects", func(t *testing.T) {
		got := byKind(decodeObjects(t, renderChart(t)), "CustomResourceDefinition")
		if len(got) != len(want) {
			t.Fatalf("chart renders %d CRDs, config/crd/bases has %d: run `make chart-crds`", len(got), len(want))
		}
		for _, crd := range got {
			annotations := crd.GetAnnotations()
			if annotations[keepAnnotation] != "keep" {
				t.Errorf("%s: want annotation %s: keep by default, got %q", crd.GetName(), keepAnnotation, annotations[keepAnnotation])
			}
			delete(annotations, keepAnnotation)
			crd.SetAnnotations(annotations)
			w, ok := want[crd.GetName()]
			if !ok {
				t.Errorf("chart CRD %s is not in config/crd/bases: run `make chart-crds`", crd.GetName())
				continue
			}
			if diff := cmp.Diff(w.Object, crd.Object); diff != "" {
				t.Errorf("chart CRD %s differs from config/crd/bases (-config +chart); run `make manifests chart-crds`:\n%s", crd.GetName(), diff)
			}
		}
	})

	t.Run("text", func(t *testing.T) {
		rendered := renderChart(t, "--set", "crds.keep=false")
		for _, base := range bases {
			content, err := os.ReadFile(base)
			if err != nil {
				t.Fatal(err)
			}
			name := strings.TrimPrefix(filepath.Base(base), "popconnect.io_")
			doc, ok := renderedTemplate(rendered, "templates/crds/"+name)
			if !ok {
				t.Errorf("chart renders no templates/crds/%s: run `make chart-crds`", name)
				continue
			}
			wantText := strings.TrimPrefix(string(content), "---\n")
			if strings.TrimRight(doc, "\n") != strings.TrimRight(wantText, "\n") {
				t.Errorf("templates/crds/%s renders other text than %s (-config +chart); run `make chart-crds`:\n%s",
					name, filepath.Base(base), cmp.Diff(wantText, doc))
			}
		}
	})

	t.Run("disabled", func(t *testing.T) {
		objs := decodeObjects(t, renderChart(t, "--set", "crds.enabled=false"))
		if n := len(byKind(objs, "CustomResourceDefinition")); n != 0 {
			t.Errorf("crds.enabled=false: want no CRDs, got %d", n)
		}
	})

	t.Run("not kept", func(t *testing.T) {
		for _, crd := range byKind(decodeObjects(t, renderChart(t, "--set", "crds.keep=false")), "CustomResourceDefinition") {
			if v, ok := crd.GetAnnotations()[keepAnnotation]; ok {
				t.Errorf("crds.keep=false: %s has %s: %s", crd.GetName(), keepAnnotation, v)
			}
		}
	})
}

// goldenView is the rendered chart without the documents of templates/crds/
// and with the ClusterRole's generated rules replaced by a marker.
func goldenView(t *testing.T, rendered []byte) []byte {
	t.Helper()
	role, err := os.ReadFile(filepath.Join(repoRoot(t), "config/rbac/role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	_, rules, ok := strings.Cut(string(role), "\nrules:\n")
	if !ok {
		t.Fatal("config/rbac/role.yaml has no rules")
	}
	var out strings.Builder
	out.WriteString("# Generated from config/ and left out here: templates/crds/*, and the ClusterRole rules.\n")
	for doc := range strings.SplitSeq(string(rendered), "---\n") {
		if doc == "" || strings.HasPrefix(doc, "# Source: popconnect/templates/crds/") {
			continue
		}
		out.WriteString("---\n")
		out.WriteString(strings.Replace(doc, "rules:\n"+rules, "rules: <generated from config/rbac/role.yaml, checked by TestChartRBACMatchesConfig>\n", 1))
	}
	return []byte(out.String())
}

// renderedTemplate returns the text helm template rendered for one template
// file of the chart, without its "# Source:" line.
func renderedTemplate(rendered []byte, template string) (string, bool) {
	source := "# Source: popconnect/" + template + "\n"
	for doc := range strings.SplitSeq(string(rendered), "---\n") {
		if after, ok := strings.CutPrefix(doc, source); ok {
			return after, true
		}
	}
	return "", false
}

// TestChartRBACMatchesConfig checks that the chart's ClusterRole grants
// exactly what config/rbac/role.yaml (controller-gen) grants.
func TestChartRBACMatchesConfig(t *testing.T) {
	want := onlyOne(t, readObjects(t, "config/rbac/role.yaml"), "ClusterRole")
	for _, tc := range chartCases() {
		t.Run(tc.name, func(t *testing.T) {
			got := onlyOne(t, decodeObjects(t, renderChart(t, tc.args...)), "ClusterRole")
			if diff := cmp.Diff(want.Object["rules"], got.Object["rules"]); diff != "" {
				t.Errorf("chart ClusterRole rules differ from config/rbac/role.yaml (-config +chart); run `make manifests chart-crds`:\n%s", diff)
			}
		})
	}
}

// TestChartPodSecurityRestricted checks the manager pod against the
// "restricted" Pod Security Standard with each value set.
func TestChartPodSecurityRestricted(t *testing.T) {
	for _, tc := range chartCases() {
		t.Run(tc.name, func(t *testing.T) {
			checkRestricted(t, toDeployment(t, onlyOne(t, decodeObjects(t, renderChart(t, tc.args...)), "Deployment")))
		})
	}
}

// TestChartToggles checks the values that remove objects or change flags.
func TestChartToggles(t *testing.T) {
	t.Run("metrics off", func(t *testing.T) {
		objs := decodeObjects(t, renderChart(t, "--set", "metrics.enabled=false", "--set", "metrics.serviceMonitor.enabled=true"))
		if n := len(byKind(objs, "Service")) + len(byKind(objs, "ServiceMonitor")); n != 0 {
			t.Errorf("metrics.enabled=false: want no Service or ServiceMonitor, got %d", n)
		}
		args := toDeployment(t, onlyOne(t, objs, "Deployment")).Spec.Template.Spec.Containers[0].Args
		if !slices.Contains(args, "--metrics-bind-address=0") {
			t.Errorf("metrics.enabled=false: want --metrics-bind-address=0 in %q", args)
		}
	})
	t.Run("no rbac, existing service account", func(t *testing.T) {
		objs := decodeObjects(t, renderChart(t, "--set", "rbac.create=false", "--set", "serviceAccount.create=false",
			"--set", "serviceAccount.name=platform-sa"))
		for _, kind := range []string{"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"} {
			if n := len(byKind(objs, kind)); n != 0 {
				t.Errorf("want no %s, got %d", kind, n)
			}
		}
		if sa := toDeployment(t, onlyOne(t, objs, "Deployment")).Spec.Template.Spec.ServiceAccountName; sa != "platform-sa" {
			t.Errorf("serviceAccountName = %q, want platform-sa", sa)
		}
	})
	t.Run("no leader election", func(t *testing.T) {
		objs := decodeObjects(t, renderChart(t, "--set", "leaderElection.enabled=false", "--set", "replicaCount=1"))
		if n := len(byKind(objs, "Role")); n != 0 {
			t.Errorf("leaderElection.enabled=false: want no leader-election Role, got %d", n)
		}
		args := toDeployment(t, onlyOne(t, objs, "Deployment")).Spec.Template.Spec.Containers[0].Args
		if !slices.Contains(args, "--leader-elect=false") {
			t.Errorf("want --leader-elect=false in %q", args)
		}
	})
}
