package policyplan

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/types"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
)

// goldenCases are the inputs of the golden files, as Plan takes them.
func goldenCases(t *testing.T) map[string]Input {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "*.in.yaml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no testdata/*.in.yaml: %v", err)
	}
	out := map[string]Input{}
	for _, path := range paths {
		out[strings.TrimSuffix(filepath.Base(path), ".in.yaml")] = inputOf(t, readCase(t, path))
	}
	return out
}

// TestVerdictIsLocal: a connection's verdict depends only on itself and
// the other claimants of its agency code. The connection reconciler plans
// with just those, the gateway reconciler with every connection; this is
// what makes them agree.
func TestVerdictIsLocal(t *testing.T) {
	for name, in := range goldenCases(t) {
		t.Run(name, func(t *testing.T) {
			whole := Plan(in)
			for i := range whole.Verdicts {
				conn := whole.Verdicts[i].Connection
				local := in
				local.Connections = []*popv1.AgencyConnection{conn}
				for _, c := range in.Connections {
					if c != conn && c.Spec.AgencyCode == conn.Spec.AgencyCode {
						local.Connections = append(local.Connections, c)
					}
				}
				v, ok := Plan(local).Verdict(types.NamespacedName{Namespace: conn.Namespace, Name: conn.Name})
				if !ok {
					t.Fatalf("%s/%s: no verdict when planned alone", conn.Namespace, conn.Name)
				}
				if got, want := goldenVerdictOf(v), goldenVerdictOf(&whole.Verdicts[i]); !reflect.DeepEqual(got, want) {
					t.Errorf("%s/%s: planned alone\n%+v\nwith every connection\n%+v", conn.Namespace, conn.Name, got, want)
				}
			}
		})
	}
}

// TestPlanModifiesNothing: the gateway reconciler passes the informer
// cache's own objects, which nobody may modify.
func TestPlanModifiesNothing(t *testing.T) {
	for name, in := range goldenCases(t) {
		t.Run(name, func(t *testing.T) {
			before := make([]*popv1.AgencyConnection, len(in.Connections))
			for i, c := range in.Connections {
				before[i] = c.DeepCopy()
			}
			gw, catalog := in.Gateway.DeepCopy(), in.Catalog.DeepCopy()
			res := Plan(in)
			if _, err := res.Documents(); err != nil {
				t.Fatal(err)
			}
			for i := range res.Verdicts {
				v := &res.Verdicts[i]
				v.Entry()
				v.FieldsValid()
				v.Programmed(true)
				v.Ready(nil)
			}
			for i, c := range in.Connections {
				if !reflect.DeepEqual(c, before[i]) {
					t.Errorf("connection %s/%s was modified", c.Namespace, c.Name)
				}
			}
			if !reflect.DeepEqual(gw, in.Gateway) || !reflect.DeepEqual(catalog, in.Catalog) {
				t.Error("the gateway or the catalog was modified")
			}
		})
	}
}
