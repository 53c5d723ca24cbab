package v1alpha1_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/internal/testenv"
)

// obj is an object as a user writes it in YAML.
type obj = map[string]any

// validationCase is one object the API server must refuse: base is the name
// of a sample to start from, mutate breaks it, and every string of wantErrors
// must appear in the API server's error (so each names the field).
type validationCase struct {
	desc       string
	base       string
	mutate     func(o obj)
	wantErrors []string
}

const (
	catalogSample = "popconnect_v1alpha1_fieldcatalog.yaml"
	gatewaySample = "popconnect_v1alpha1_populationgateway.yaml"
	connSample    = "popconnect_v1alpha1_agencyconnection_byt.yaml"
	vcbSample     = "popconnect_v1alpha1_agencyconnection_vcb.yaml"
)

func TestAPIServerValidation(t *testing.T) {
	env := testenv.New(t, testenv.Options{
		CRDDirectoryPaths: []string{"config/crd/bases"},
		CertManagerCRDs:   true,
		AddToScheme:       []func(*runtime.Scheme) error{popv1.AddToScheme},
	})
	ctx := context.Background()

	t.Run("samples are accepted", func(t *testing.T) {
		for name, o := range loadSamples(t) {
			u := toUnstructured(o)
			u.SetNamespace(nsFor(u))
			if err := env.Client.Create(ctx, u, client.FieldValidation("Strict"), client.DryRunAll); err != nil {
				t.Errorf("sample %s refused: %v", name, err)
			}
		}
	})

	t.Run("audit postgres is accepted and its port defaulted", func(t *testing.T) {
		o := loadSample(t, gatewaySample)
		set("spec.audit", auditPostgres(map[string]any{"name": "audit-db", "key": "url"}, map[string]any{"to": []any{
			map[string]any{"ipBlock": map[string]any{"cidr": "10.20.0.0/16"}},
			map[string]any{"namespaceSelector": map[string]any{"matchLabels": map[string]any{"kubernetes.io/metadata.name": "db"}},
				"podSelector": map[string]any{"matchLabels": map[string]any{"app": "postgres"}}},
		}}))(o)
		u := toUnstructured(o)
		u.SetNamespace(nsFor(u))
		if err := env.Client.Create(ctx, u, client.FieldValidation("Strict"), client.DryRunAll); err != nil {
			t.Fatalf("refused: %v", err)
		}
		port, found, err := unstructured.NestedInt64(u.Object, "spec", "audit", "postgres", "port")
		if err != nil || !found || port != 5432 {
			t.Errorf("spec.audit.postgres.port = %d (found %v, %v), want the default 5432", port, found, err)
		}
	})

	for _, tc := range invalidObjects() {
		t.Run(tc.desc, func(t *testing.T) {
			o := loadSample(t, tc.base)
			tc.mutate(o)
			u := toUnstructured(o)
			u.SetNamespace(nsFor(u))
			err := env.Client.Create(ctx, u, client.FieldValidation("Strict"), client.DryRunAll)
			if err == nil {
				t.Fatalf("object accepted, want an error containing %q", tc.wantErrors)
			}
			for _, want := range tc.wantErrors {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error does not contain %q:\n%v", want, err)
				}
			}
		})
	}

	t.Run("agencyCode is immutable", func(t *testing.T) {
		u := toUnstructured(loadSample(t, connSample))
		u.SetNamespace("default")
		u.SetName("immutable-code")
		if err := env.Client.Create(ctx, u); err != nil {
			t.Fatalf("creating connection: %v", err)
		}
		t.Cleanup(func() { _ = env.Client.Delete(ctx, u) })
		if err := unstructured.SetNestedField(u.Object, "BYT-2", "spec", "agencyCode"); err != nil {
			t.Fatal(err)
		}
		err := env.Client.Update(ctx, u)
		if err == nil || !strings.Contains(err.Error(), "agencyCode is immutable") {
			t.Fatalf("update of agencyCode: got %v, want an immutability error", err)
		}
	})
}

// nsFor gives namespaced kinds the default namespace.
func nsFor(u *unstructured.Unstructured) string {
	if u.GetKind() == "FieldCatalog" {
		return ""
	}
	return "default"
}

func toUnstructured(o obj) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: o}
}

func samplesDir(t testing.TB) string {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "config", "samples")
}

// loadSample reads one sample as a fresh map, so a case can mutate it freely.
func loadSample(t testing.TB, name string) obj {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(samplesDir(t), name))
	if err != nil {
		t.Fatal(err)
	}
	o := obj{}
	if err := yaml.Unmarshal(data, &o); err != nil {
		t.Fatalf("parsing %s: %v", name, err)
	}
	return o
}

// loadSamples reads every object sample (not the kustomization).
func loadSamples(t testing.TB) map[string]obj {
	t.Helper()
	entries, err := os.ReadDir(samplesDir(t))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]obj{}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "popconnect_") {
			continue
		}
		out[e.Name()] = loadSample(t, e.Name())
	}
	if len(out) < 7 {
		t.Fatalf("found %d samples, want at least 7", len(out))
	}
	return out
}

// set writes value at a dotted path of maps (list indexes as numbers).
func set(path string, value any) func(obj) {
	return func(o obj) { setPath(o, strings.Split(path, "."), value) }
}

// del removes the value at a dotted path.
func del(path string) func(obj) {
	return func(o obj) { setPath(o, strings.Split(path, "."), deleteMarker{}) }
}

type deleteMarker struct{}

func setPath(cur any, parts []string, value any) {
	for i, p := range parts {
		last := i == len(parts)-1
		switch node := cur.(type) {
		case map[string]any:
			if last {
				if _, isDel := value.(deleteMarker); isDel {
					delete(node, p)
				} else {
					node[p] = value
				}
				return
			}
			next, ok := node[p]
			if !ok {
				next = map[string]any{}
				node[p] = next
			}
			cur = next
		case []any:
			var idx int
			if _, err := fmt.Sscanf(p, "%d", &idx); err != nil {
				panic(fmt.Sprintf("path segment %q is not an index", p))
			}
			if last {
				node[idx] = value
				return
			}
			cur = node[idx]
		default:
			panic(fmt.Sprintf("cannot descend into %T at %q", cur, p))
		}
	}
}

// both applies several mutations.
func both(fs ...func(obj)) func(obj) {
	return func(o obj) {
		for _, f := range fs {
			f(o)
		}
	}
}

// manyStrings returns n distinct strings from a pattern with one %d.
func manyStrings(n int, pattern string) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = fmt.Sprintf(pattern, i)
	}
	return out
}

func manyCatalogFields(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = map[string]any{"name": fmt.Sprintf("field%d", i), "sensitivity": "Public"}
	}
	return out
}
