package render

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/internal/golden"
)

// gatewayTestImage is the operator's --gateway-image in these tests.
const gatewayTestImage = "ghcr.io/popconnect/gateway:v0.1.0"

// gatewayObjects renders every workload object of gw, in the order of the
// golden files.
func gatewayObjects(gw *popv1.PopulationGateway, opts GatewayOptions) []client.Object {
	return []client.Object{
		GatewayServiceAccount(gw),
		GatewayRole(gw),
		GatewayRoleBinding(gw),
		GatewayServingCertificate(gw),
		GatewayDeployment(gw, opts),
		GatewayService(gw),
		GatewayPodDisruptionBudget(gw),
		GatewayDefaultDenyNetworkPolicy(gw, goldenEgressPeers()).Policy,
	}
}

// goldenEgressPeers is an API server with two addresses behind one slice
// (the dual-stack case) on 6443, as the reconciler would read it, and the
// operator installed by config/default.
func goldenEgressPeers() GatewayEgressPeers {
	return GatewayEgressPeers{
		APIServer: []discoveryv1.EndpointSlice{apiServerSlice(6443, "10.0.0.2", "fd00::2")},
		Manager: ManagerPeer{Namespace: "popconnect-system", PodLabels: map[string]string{
			LabelName: "popconnect", "app.kubernetes.io/component": "manager",
		}},
	}
}

// gatewayCases reads testdata/gateway/*.in.yaml, keyed by case name.
func gatewayCases(t *testing.T) map[string]*popv1.PopulationGateway {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "gateway", "*.in.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatal("no testdata/gateway/*.in.yaml")
	}
	cases := map[string]*popv1.PopulationGateway{}
	for _, path := range paths {
		cases[strings.TrimSuffix(filepath.Base(path), ".in.yaml")] = readGateway(t, path)
	}
	return cases
}

func readGateway(t *testing.T, path string) *popv1.PopulationGateway {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	gw := &popv1.PopulationGateway{}
	if err := yaml.UnmarshalStrict(data, gw); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return gw
}

func TestGatewayGolden(t *testing.T) {
	for name, gw := range gatewayCases(t) {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			for i, obj := range gatewayObjects(gw, GatewayOptions{DefaultImage: gatewayTestImage}) {
				if i > 0 {
					out.WriteString("---\n")
				}
				data, err := yaml.Marshal(obj)
				if err != nil {
					t.Fatalf("marshal %T: %v", obj, err)
				}
				out.Write(data)
			}

			golden.Check(t, filepath.Join("testdata", "gateway", name+".out.yaml"), out.Bytes())
		})
	}
}

// TestGatewaySampleCase keeps the sample case the gateway of config/samples.
func TestGatewaySampleCase(t *testing.T) {
	sample := readGateway(t, filepath.Join("..", "..", "config", "samples", "popconnect_v1alpha1_populationgateway.yaml"))
	golden := readGateway(t, filepath.Join("testdata", "gateway", "sample.in.yaml"))
	if sample.Name != golden.Name {
		t.Errorf("name: sample %q, testdata %q", sample.Name, golden.Name)
	}
	if diff := cmp.Diff(sample.Spec, golden.Spec); diff != "" {
		t.Errorf("testdata/gateway/sample.in.yaml drifted from config/samples (-sample +testdata):\n%s", diff)
	}
}

// TestGatewayObjectsInvariants checks what every rendered object must have to
// be applied with server-side apply and found again by label.
func TestGatewayObjectsInvariants(t *testing.T) {
	for name, gw := range gatewayCases(t) {
		t.Run(name, func(t *testing.T) {
			before := gw.DeepCopy()
			objs := gatewayObjects(gw, GatewayOptions{DefaultImage: gatewayTestImage})
			if diff := cmp.Diff(before, gw); diff != "" {
				t.Errorf("rendering changed its input:\n%s", diff)
			}
			if diff := cmp.Diff(objs, gatewayObjects(gw, GatewayOptions{DefaultImage: gatewayTestImage})); diff != "" {
				t.Errorf("two renderings differ:\n%s", diff)
			}

			for _, obj := range objs {
				kind := obj.GetObjectKind().GroupVersionKind()
				if kind.Kind == "" || kind.Version == "" {
					t.Errorf("%T has no apiVersion/kind", obj)
				}
				if obj.GetNamespace() != gw.Namespace {
					t.Errorf("%s namespace = %q, want %q", kind.Kind, obj.GetNamespace(), gw.Namespace)
				}
				if len(obj.GetOwnerReferences()) != 0 {
					t.Errorf("%s has owner references; the reconciler sets them", kind.Kind)
				}
				if errs := metav1validation.ValidateLabels(obj.GetLabels(), field.NewPath("metadata", "labels")); len(errs) != 0 {
					t.Errorf("%s labels: %v", kind.Kind, errs.ToAggregate())
				}
				wantLabels := map[string]string{
					LabelManagedBy: ManagedByValue,
					LabelGateway:   GatewayLabelValue(gw.Name),
					LabelName:      GatewayAppName,
					LabelInstance:  GatewayLabelValue(gw.Name),
				}
				for k, v := range wantLabels {
					if got := obj.GetLabels()[k]; got != v {
						t.Errorf("%s label %s = %q, want %q", kind.Kind, k, got, v)
					}
				}
				if obj.GetLabels()[LabelComponent] == "" {
					t.Errorf("%s has no %s label", kind.Kind, LabelComponent)
				}

				nameErrs := validation.IsDNS1123Subdomain(obj.GetName())
				switch kind.Kind {
				case "Service":
					nameErrs = validation.IsDNS1035Label(obj.GetName())
				case "Deployment":
					if len(obj.GetName()) > validation.DNS1123LabelMaxLength {
						nameErrs = append(nameErrs, "longer than 63 characters")
					}
				}
				if len(nameErrs) != 0 {
					t.Errorf("%s name %q: %v", kind.Kind, obj.GetName(), nameErrs)
				}
			}
		})
	}
}
