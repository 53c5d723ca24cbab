package policyplan

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/gateway/policy"
	"github.com/popconnect/popconnect/internal/golden"
	"github.com/popconnect/popconnect/internal/render"
)

// goldenInput is a testdata/*.in.yaml file: the objects a plan is made
// from. The gateway is optional (gatewayRef names a missing one); a
// connection's status gives the conditions other phases decided
// (CertificateReady, NetworkReady), which Ready sums up.
type goldenInput struct {
	Now         time.Time                    `json:"now"`
	GatewayRef  *types.NamespacedName        `json:"gatewayRef,omitempty"`
	Gateway     *popv1.PopulationGateway     `json:"gateway,omitempty"`
	Catalog     *popv1.FieldCatalog          `json:"catalog,omitempty"`
	Namespaces  map[string]map[string]string `json:"namespaces,omitempty"`
	Connections []*popv1.AgencyConnection    `json:"connections"`
}

// goldenOutput is a testdata/*.out.yaml file: every judged connection's
// verdict and conditions, and the shards, decoded.
type goldenOutput struct {
	Connections []goldenVerdict `json:"connections"`
	Shards      []goldenShard   `json:"shards"`
}

type goldenVerdict struct {
	Connection      string      `json:"connection"`
	Admitted        bool        `json:"admitted"`
	IdentityRefused bool        `json:"identityRefused,omitempty"`
	Denied          bool        `json:"denied,omitempty"`
	Shard           string      `json:"shard,omitempty"`
	RequeueAt       string      `json:"requeueAt,omitempty"`
	Conditions      []Condition `json:"conditions"`
}

type goldenShard struct {
	Name     string          `json:"name"`
	Version  string          `json:"version"`
	Agencies []policy.Agency `json:"agencies"`
}

// TestGolden plans each testdata/<case>.in.yaml and compares the verdicts
// and shards with <case>.out.yaml; -update rewrites the out files.
func TestGolden(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("testdata", "*.in.yaml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no testdata/*.in.yaml: %v", err)
	}
	for _, path := range paths {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".in.yaml"), func(t *testing.T) {
			got := planCase(t, readCase(t, path))
			golden.Check(t, strings.TrimSuffix(path, ".in.yaml")+".out.yaml", got)
		})
	}
}

// inputOf is a case as Plan takes it.
func inputOf(t *testing.T, c goldenInput) Input {
	t.Helper()
	in := Input{Gateway: c.Gateway, Catalog: c.Catalog, Connections: c.Connections, NamespaceLabels: c.Namespaces, Now: c.Now}
	switch {
	case c.GatewayRef != nil:
		in.GatewayKey = *c.GatewayRef
	case c.Gateway != nil:
		in.GatewayKey = types.NamespacedName{Namespace: c.Gateway.Namespace, Name: c.Gateway.Name}
	default:
		t.Fatal("a case needs a gateway or a gatewayRef")
	}
	return in
}

func readCase(t *testing.T, path string) goldenInput {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var in goldenInput
	if err := yaml.UnmarshalStrict(raw, &in); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return in
}

// planCase plans a case and renders what users would see: each verdict's
// FieldsValid, Programmed (as once the shard is written) and Ready.
func planCase(t *testing.T, c goldenInput) []byte {
	t.Helper()
	in := inputOf(t, c)
	res := Plan(in)
	var out goldenOutput
	for i := range res.Verdicts {
		out.Connections = append(out.Connections, goldenVerdictOf(&res.Verdicts[i]))
	}
	slices.SortFunc(out.Connections, func(a, b goldenVerdict) int { return strings.Compare(a.Connection, b.Connection) })
	docs, err := res.Documents()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range docs {
		doc, err := policy.DecodeShardValue(policy.ShardDataKey, d.Doc, false)
		if err != nil {
			t.Fatalf("shard %d does not decode: %v", d.Index, err)
		}
		out.Shards = append(out.Shards, goldenShard{Name: render.ShardName(in.GatewayKey.Name, d.Index), Version: d.Version, Agencies: doc.Agencies})
	}
	b, err := yaml.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func goldenVerdictOf(v *Verdict) goldenVerdict {
	conn := v.Connection
	g := goldenVerdict{
		Connection:      conn.Namespace + "/" + conn.Name,
		Admitted:        v.Admitted(),
		IdentityRefused: v.IdentityRefused,
		Denied:          v.Denied,
	}
	if v.Admitted() {
		_, g.Shard = v.Shard()
	}
	if !v.RequeueAt.IsZero() {
		g.RequeueAt = v.RequeueAt.UTC().Format(time.RFC3339)
	}
	conds := map[string]Condition{}
	for _, t := range []string{popv1.ConditionCertificateReady, popv1.ConditionNetworkReady} {
		if c := meta.FindStatusCondition(conn.Status.Conditions, t); c != nil {
			conds[t] = Condition{c.Type, c.Status, c.Reason, c.Message}
		}
	}
	conds[popv1.ConditionFieldsValid] = v.FieldsValid()
	conds[popv1.ConditionProgrammed] = v.Programmed(true)
	g.Conditions = []Condition{conds[popv1.ConditionFieldsValid], conds[popv1.ConditionProgrammed], v.Ready(conds)}
	return g
}
