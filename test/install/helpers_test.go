package install_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	psaapi "k8s.io/pod-security-admission/api"
	psapolicy "k8s.io/pod-security-admission/policy"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/popconnect/popconnect/internal/testenv"
)

const (
	// releaseName and releaseNamespace make the chart's object names equal
	// to config/default's (namePrefix popconnect-, namespace popconnect-system).
	releaseName      = "popconnect"
	releaseNamespace = "popconnect-system"
	// kubeVersion pins .Capabilities.KubeVersion: a go-installed helm
	// otherwise assumes v1.20, below the chart's kubeVersion.
	kubeVersion = "1.37.0"
	chartDir    = "charts/popconnect"
)

// repoRoot returns the repository root (the directory holding go.mod).
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// helmBinary returns $HELM, or bin/helm that `make helm` installs. A missing
// binary fails the test: CI installs it, so a skip would hide the chart
// tests.
func helmBinary(t testing.TB) string {
	t.Helper()
	path := os.Getenv("HELM")
	if path == "" {
		path = filepath.Join(repoRoot(t), "bin", "helm")
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("helm binary not found at %s: run `make helm` (or set HELM to a helm v3 binary): %v", path, err)
	}
	return path
}

// runHelm runs helm in the repository root and returns its stdout.
func runHelm(t testing.TB, args ...string) []byte {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(helmBinary(t), args...)
	cmd.Dir = repoRoot(t)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("helm %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.Bytes()
}

// renderChart runs `helm template` for the test release with the given
// extra arguments (-f FILE, --set K=V).
func renderChart(t testing.TB, extra ...string) []byte {
	t.Helper()
	args := append([]string{"template", releaseName, chartDir,
		"--namespace", releaseNamespace, "--kube-version", kubeVersion}, extra...)
	return runHelm(t, args...)
}

// buildKustomize builds config/default with kustomize's Go API, as
// `kubectl kustomize` would.
func buildKustomize(t testing.TB) []*unstructured.Unstructured {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	resources, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join(repoRoot(t), "config", "default"))
	if err != nil {
		t.Fatalf("kustomize build config/default: %v", err)
	}
	out, err := resources.AsYaml()
	if err != nil {
		t.Fatalf("kustomize build config/default: %v", err)
	}
	return decodeObjects(t, out)
}

// decodeObjects splits a multi-document YAML stream into objects, skipping
// empty documents (helm emits comment-only ones).
func decodeObjects(t testing.TB, data []byte) []*unstructured.Unstructured {
	t.Helper()
	var objs []*unstructured.Unstructured
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return objs
		}
		if err != nil {
			t.Fatalf("reading YAML: %v", err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(doc, &m); err != nil {
			t.Fatalf("parsing YAML document: %v\n%s", err, doc)
		}
		if len(m) == 0 {
			continue
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
}

// readObjects reads every object of a YAML file, relative to the repository root.
func readObjects(t testing.TB, rel string) []*unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	return decodeObjects(t, data)
}

// byKind returns the objects of one kind.
func byKind(objs []*unstructured.Unstructured, kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

// onlyOne returns the single object of a kind, failing otherwise.
func onlyOne(t testing.TB, objs []*unstructured.Unstructured, kind string) *unstructured.Unstructured {
	t.Helper()
	found := byKind(objs, kind)
	if len(found) != 1 {
		t.Fatalf("want exactly one %s, got %d", kind, len(found))
	}
	return found[0]
}

// toDeployment converts an unstructured Deployment to its typed form.
func toDeployment(t testing.TB, u *unstructured.Unstructured) *appsv1.Deployment {
	t.Helper()
	var d appsv1.Deployment
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &d); err != nil {
		t.Fatalf("converting Deployment %s: %v", u.GetName(), err)
	}
	return &d
}

// checkRestricted evaluates the Deployment's pod template with the checks
// the PodSecurity admission plugin runs, at the latest "restricted" level.
func checkRestricted(t *testing.T, d *appsv1.Deployment) {
	t.Helper()
	evaluator, err := psapolicy.NewEvaluator(psapolicy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	level := psaapi.LevelVersion{Level: psaapi.LevelRestricted, Version: psaapi.LatestVersion()}
	tmpl := d.Spec.Template
	for _, result := range evaluator.EvaluatePod(level, &tmpl.ObjectMeta, &tmpl.Spec) {
		if !result.Allowed {
			t.Errorf("%s: restricted check failed: %s: %s", d.Name, result.ForbiddenReason, result.ForbiddenDetail)
		}
	}
}

// objectKey names an object for messages and set comparisons.
func objectKey(o *unstructured.Unstructured) string {
	return fmt.Sprintf("%s/%s/%s", o.GetKind(), o.GetNamespace(), o.GetName())
}
