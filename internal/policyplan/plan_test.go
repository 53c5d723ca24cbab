package policyplan

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/types"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/internal/render"
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
// with just those, the shard reconciler with every connection whose code
// hashes to the connection's shard (on any gateway); this is what makes
// them agree, and it holds for a plan of every connection as well.
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
				shard := in
				shard.Connections = nil
				for _, c := range in.Connections {
					if render.ShardIndex(c.Spec.AgencyCode) == render.ShardIndex(conn.Spec.AgencyCode) {
						shard.Connections = append(shard.Connections, c)
					}
				}
				key := types.NamespacedName{Namespace: conn.Namespace, Name: conn.Name}
				want := goldenVerdictOf(&whole.Verdicts[i])
				for _, p := range []struct {
					name string
					in   Input
				}{{"alone", local}, {"with its shard", shard}} {
					v, ok := Plan(p.in).Verdict(key)
					if !ok {
						t.Fatalf("%s: no verdict when planned %s", key, p.name)
					}
					if got := goldenVerdictOf(v); !reflect.DeepEqual(got, want) {
						t.Errorf("%s: planned %s\n%+v\nwith every connection\n%+v", key, p.name, got, want)
					}
				}
			}
		})
	}
}

// TestPlanModifiesNothing: the shard reconciler passes the informer
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
