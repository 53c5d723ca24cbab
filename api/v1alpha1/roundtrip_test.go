package v1alpha1_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/internal/testenv"
)

// typedFor returns an empty Go object of the sample's kind.
func typedFor(t *testing.T, kind string) any {
	t.Helper()
	switch kind {
	case "FieldCatalog":
		return &popv1.FieldCatalog{}
	case "PopulationGateway":
		return &popv1.PopulationGateway{}
	case "AgencyConnection":
		return &popv1.AgencyConnection{}
	}
	t.Fatalf("unknown kind %q", kind)
	return nil
}

// TestSamplesRoundTripGoTypes checks that every field of every sample has a
// Go field (strict decoding) and that nothing is lost or changed when the
// Go object is written back.
func TestSamplesRoundTripGoTypes(t *testing.T) {
	for name, o := range loadSamples(t) {
		t.Run(name, func(t *testing.T) {
			data, err := json.Marshal(o)
			if err != nil {
				t.Fatal(err)
			}
			typed := typedFor(t, o["kind"].(string))
			if err := yaml.UnmarshalStrict(data, typed); err != nil {
				t.Fatalf("strict decoding: %v", err)
			}
			back, err := json.Marshal(typed)
			if err != nil {
				t.Fatal(err)
			}
			var got obj
			if err := json.Unmarshal(back, &got); err != nil {
				t.Fatal(err)
			}
			delete(got, "status")
			if md, ok := got["metadata"].(map[string]any); ok {
				delete(md, "creationTimestamp")
			}
			// Both ways: nothing lost, nothing added.
			if err := subset("", normalise(t, o), got); err != nil {
				t.Errorf("round trip lost or changed a value: %v", err)
			}
			if err := subset("", got, normalise(t, o)); err != nil {
				t.Errorf("round trip added a value: %v", err)
			}
		})
	}
}

// TestSamplesRoundTripAPIServer stores every sample and reads it back: what
// the user wrote must come back unchanged (defaults may be added).
func TestSamplesRoundTripAPIServer(t *testing.T) {
	env := testenv.New(t, testenv.Options{
		CRDDirectoryPaths: []string{"config/crd/bases"},
		AddToScheme:       []func(*runtime.Scheme) error{popv1.AddToScheme},
	})
	ctx := context.Background()
	for name, o := range loadSamples(t) {
		t.Run(name, func(t *testing.T) {
			u := toUnstructured(normalise(t, o))
			u.SetNamespace(nsFor(u))
			if err := env.Client.Create(ctx, u, client.FieldValidation("Strict")); err != nil {
				t.Fatalf("create: %v", err)
			}
			got := &unstructured.Unstructured{}
			got.SetGroupVersionKind(u.GroupVersionKind())
			if err := env.Client.Get(ctx, client.ObjectKeyFromObject(u), got); err != nil {
				t.Fatalf("get: %v", err)
			}
			if err := subset("", normalise(t, o)["spec"], got.Object["spec"]); err != nil {
				t.Errorf("stored object differs: %v", err)
			}
			typed := typedFor(t, u.GetKind())
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(got.Object, typed); err != nil {
				t.Errorf("stored object does not decode into the Go type: %v", err)
			}
		})
	}
}

// normalise turns YAML-decoded numbers into the float64 JSON uses.
func normalise(t *testing.T, o obj) obj {
	t.Helper()
	data, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	out := obj{}
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// subset reports where want has a value that got lacks or differs on.
func subset(path string, want, got any) error {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: want an object, got %T", path, got)
		}
		for k, v := range w {
			if err := subset(path+"."+k, v, g[k]); err != nil {
				return err
			}
		}
		return nil
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return fmt.Errorf("%s: want %v, got %v", path, w, got)
		}
		for i := range w {
			if err := subset(fmt.Sprintf("%s[%d]", path, i), w[i], g[i]); err != nil {
				return err
			}
		}
		return nil
	case string:
		// metav1.Duration writes 2160h as 2160h0m0s: the same duration.
		if g, ok := got.(string); ok && sameDuration(w, g) {
			return nil
		}
		if want != got {
			return fmt.Errorf("%s: want %v, got %v", path, want, got)
		}
		return nil
	case float64:
		if g, ok := asFloat(got); ok && g == w {
			return nil
		}
		return fmt.Errorf("%s: want %v, got %v", path, want, got)
	default:
		if fmt.Sprint(want) != fmt.Sprint(got) {
			return fmt.Errorf("%s: want %v, got %v", path, want, got)
		}
		return nil
	}
}

func sameDuration(a, b string) bool {
	da, errA := time.ParseDuration(a)
	db, errB := time.ParseDuration(b)
	return errA == nil && errB == nil && da == db
}

// asFloat reads a JSON number whether it was decoded as float64 or int64.
func asFloat(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case int64:
		return float64(n), true
	case int:
		return float64(n), true
	}
	return 0, false
}
