package render

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/gateway/policy"
	"github.com/popconnect/popconnect/internal/golden"
)

// TestConnectionGolden renders each testdata/connection/<case>.in.yaml (a
// gateway, then connections) into its Certificates, NetworkPolicies and
// policy shards, and compares with <case>.out.yaml.
func TestConnectionGolden(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("testdata", "connection", "*.in.yaml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no testdata/connection/*.in.yaml: %v", err)
	}
	for _, path := range paths {
		name := strings.TrimSuffix(filepath.Base(path), ".in.yaml")
		t.Run(name, func(t *testing.T) {
			gw, conns := readConnectionCase(t, path)
			var out bytes.Buffer
			entries := policyEntries(conns)
			for _, conn := range conns {
				writeYAML(t, &out, ClientCertificate(conn))
				writeYAML(t, &out, ConnectionNetworkPolicy(conn, gw))
			}
			shards, err := PolicyShards(gw, entries)
			if err != nil {
				t.Fatal(err)
			}
			for _, shard := range shards {
				writeYAML(t, &out, shard)
			}
			golden.Check(t, strings.TrimSuffix(path, ".in.yaml")+".out.yaml", out.Bytes())
		})
	}
}

// goldenNow is the moment the golden cases' pins are computed at.
var goldenNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// policyEntries is the entries of connections that are all allowed (no
// suspension beyond their own spec): a helper of the golden test.
func policyEntries(conns []*popv1.AgencyConnection) []policy.Agency {
	out := make([]policy.Agency, 0, len(conns))
	for _, c := range conns {
		pins, _ := CertificatePins(c.Status.Certificate, c.Spec.ClientCertificate.RevokedSerialNumbers, goldenNow)
		out = append(out, PolicyEntry(c, false, pins))
	}
	return out
}

func readConnectionCase(t *testing.T, path string) (*popv1.PopulationGateway, []*popv1.AgencyConnection) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(string(data), "\n---\n")
	gw := &popv1.PopulationGateway{}
	if err := yaml.UnmarshalStrict([]byte(docs[0]), gw); err != nil {
		t.Fatalf("%s: gateway: %v", path, err)
	}
	var conns []*popv1.AgencyConnection
	for _, doc := range docs[1:] {
		conn := &popv1.AgencyConnection{}
		if err := yaml.UnmarshalStrict([]byte(doc), conn); err != nil {
			t.Fatalf("%s: connection: %v", path, err)
		}
		conns = append(conns, conn)
	}
	return gw, conns
}

func writeYAML(t *testing.T, out *bytes.Buffer, obj any) {
	t.Helper()
	data, err := yaml.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	out.WriteString("---\n")
	out.Write(data)
}
