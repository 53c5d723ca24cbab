package render

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
)

func gatewayNamed(name string) *popv1.PopulationGateway {
	return &popv1.PopulationGateway{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"}}
}

func TestNamesForShortNames(t *testing.T) {
	got := NamesFor(gatewayNamed("national-gateway"))
	want := GatewayNames{
		ServiceAccount:      "national-gateway-gateway",
		Role:                "national-gateway-gateway-policy-reader",
		RoleBinding:         "national-gateway-gateway-policy-reader",
		ServingCertificate:  "national-gateway-serving",
		ServingSecret:       "national-gateway-serving-tls",
		AuditKeySecret:      "national-gateway-audit-key",
		Deployment:          "national-gateway-gateway",
		Service:             "national-gateway",
		PodDisruptionBudget: "national-gateway-gateway",
		DefaultDenyPolicy:   "national-gateway-gateway-default-deny",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("NamesFor (-want +got):\n%s", diff)
	}
}

func TestNamesForShortening(t *testing.T) {
	// name55 is the longest name whose <name>-gateway still fits in 63.
	name55 := strings.Repeat("a", 55)
	tests := []struct {
		name string
		// shortened lists the fields that must carry a hash suffix.
		shortened []string
	}{
		{name: name55},
		{name: name55 + "b", shortened: []string{"ServiceAccount", "Deployment", "PodDisruptionBudget"}},
		// A dot is fine in a subdomain but not in a Service name.
		{name: "gw.prod", shortened: []string{"Service"}},
		// A Service name must start with a letter.
		{name: "1gw", shortened: []string{"Service"}},
		// The longest name the API allows: every name is shortened.
		{name: strings.Repeat("abcdefghi.", 25) + "xyz", shortened: []string{
			"ServiceAccount", "Role", "RoleBinding", "ServingCertificate", "ServingSecret", "AuditKeySecret",
			"Deployment", "Service", "PodDisruptionBudget", "DefaultDenyPolicy",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name[:min(len(tt.name), 20)], func(t *testing.T) {
			if len(tt.name) > validation.DNS1123SubdomainMaxLength {
				t.Fatalf("test name is %d characters, longer than the API allows", len(tt.name))
			}
			n := NamesFor(gatewayNamed(tt.name))
			fields := map[string]struct {
				value, suffix string
				max           int
			}{
				"ServiceAccount":      {n.ServiceAccount, "-gateway", 63},
				"Role":                {n.Role, "-gateway-policy-reader", 253},
				"RoleBinding":         {n.RoleBinding, "-gateway-policy-reader", 253},
				"ServingCertificate":  {n.ServingCertificate, "-serving", 253},
				"ServingSecret":       {n.ServingSecret, "-serving-tls", 253},
				"AuditKeySecret":      {n.AuditKeySecret, "-audit-key", 253},
				"Deployment":          {n.Deployment, "-gateway", 63},
				"Service":             {n.Service, "", 63},
				"PodDisruptionBudget": {n.PodDisruptionBudget, "-gateway", 63},
				"DefaultDenyPolicy":   {n.DefaultDenyPolicy, "-gateway-default-deny", 253},
			}
			short := map[string]bool{}
			for _, f := range tt.shortened {
				short[f] = true
			}
			for field, f := range fields {
				if len(f.value) > f.max {
					t.Errorf("%s %q is %d characters, over %d", field, f.value, len(f.value), f.max)
				}
				errs := validation.IsDNS1123Subdomain(f.value)
				if field == "Service" {
					errs = validation.IsDNS1035Label(f.value)
				}
				if len(errs) != 0 {
					t.Errorf("%s %q: %v", field, f.value, errs)
				}
				if full := tt.name + f.suffix; short[field] == (f.value == full) {
					t.Errorf("%s = %q; shortened %v, want %v", field, f.value, f.value != full, short[field])
				}
			}
			if n != NamesFor(gatewayNamed(tt.name)) {
				t.Error("NamesFor is not deterministic")
			}
		})
	}
}

// TestNamesForDistinct checks that the hash keeps apart names that are cut to
// the same prefix, or made equal by replacing dots.
func TestNamesForDistinct(t *testing.T) {
	long := strings.Repeat("x", 80)
	for _, pair := range [][2]string{
		{long + "-one", long + "-two"},
		{"gw.prod", "gw-prod"},
	} {
		a, b := NamesFor(gatewayNamed(pair[0])), NamesFor(gatewayNamed(pair[1]))
		if a.Deployment == b.Deployment || a.Service == b.Service || a.Role == b.Role {
			t.Errorf("%q and %q share names: %+v", pair[0], pair[1], a)
		}
		if GatewayLabelValue(pair[0]) == GatewayLabelValue(pair[1]) && len(pair[0]) > 63 {
			t.Errorf("%q and %q share a label value", pair[0], pair[1])
		}
	}
}

// TestGatewayLabelValueSelectsShards checks that the gateway's
// --policy-selector matches the labels its policy shards are written with.
func TestGatewayLabelValueSelectsShards(t *testing.T) {
	for _, name := range []string{"national-gateway", strings.Repeat("g", 63), strings.Repeat("g.", 40) + "g"} {
		value := GatewayLabelValue(name)
		if errs := validation.IsValidLabelValue(value); len(errs) != 0 {
			t.Errorf("GatewayLabelValue(%q) = %q: %v", name, value, errs)
		}
		if shard := ShardLabels(name)[LabelGateway]; shard != value {
			t.Errorf("gateway %q: shards labelled %q, gateway selects %q", name, shard, value)
		}
	}
}
