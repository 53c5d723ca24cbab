package render

import (
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
)

func TestGatewayUpstreamPeer(t *testing.T) {
	tests := []struct {
		url       string
		want      gatewayUpstream
		wantValid bool
	}{
		{url: "http://popdb.popconnect-system.svc:8080", want: gatewayUpstream{8080, "popconnect-system"}, wantValid: true},
		{url: "http://popdb.data.svc.cluster.local:9000/v1", want: gatewayUpstream{9000, "data"}, wantValid: true},
		{url: "https://popdb.data.svc.cluster.local.", want: gatewayUpstream{443, "data"}, wantValid: true},
		{url: "HTTPS://PopDB.Data.SVC", want: gatewayUpstream{443, "data"}, wantValid: true},
		{url: "http://popdb.data.svc", want: gatewayUpstream{80, "data"}, wantValid: true},
		// Anything else may be outside the cluster.
		{url: "https://api.popdb.example.gov.vn/v2", want: gatewayUpstream{443, ""}, wantValid: true},
		{url: "http://popdb.data:8080", want: gatewayUpstream{8080, ""}, wantValid: true},
		{url: "http://popdb:8080", want: gatewayUpstream{8080, ""}, wantValid: true},
		{url: "http://a.b.svc.example.com", want: gatewayUpstream{80, ""}, wantValid: true},
		{url: "http://popdb.data.svc.other.local", want: gatewayUpstream{80, ""}, wantValid: true},
		{url: "http://10.20.30.40:8080", want: gatewayUpstream{8080, ""}, wantValid: true},
		{url: "https://[fd00::1]", want: gatewayUpstream{443, ""}, wantValid: true},
		{url: "http://popdb.Bad_NS.svc", want: gatewayUpstream{80, ""}, wantValid: true},
		// What the API refuses allows no upstream traffic at all.
		{url: "ftp://popdb.data.svc"},
		{url: "popdb.data.svc:8080"},
		{url: "http://popdb:0"},
		{url: "http://popdb:70000"},
		{url: "http://"},
		{url: "://bad"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			got, ok := gatewayUpstreamPeer(tt.url)
			if ok != tt.wantValid || got != tt.want {
				t.Errorf("gatewayUpstreamPeer(%q) = %+v, %v; want %+v, %v", tt.url, got, ok, tt.want, tt.wantValid)
			}
		})
	}
}

func TestGatewayDefaultDenyWithoutUpstream(t *testing.T) {
	gw := gatewayNamed("gw")
	gw.Spec.Upstream.URL = "ftp://popdb"
	np := GatewayDefaultDenyNetworkPolicy(gw)
	if len(np.Spec.Ingress) != 0 {
		t.Errorf("ingress rules: %+v", np.Spec.Ingress)
	}
	want := []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}
	if len(np.Spec.PolicyTypes) != 2 || np.Spec.PolicyTypes[0] != want[0] || np.Spec.PolicyTypes[1] != want[1] {
		t.Errorf("policyTypes = %v, want %v", np.Spec.PolicyTypes, want)
	}
	// DNS and the API server only.
	if len(np.Spec.Egress) != 2 {
		t.Errorf("egress = %+v, want DNS and API rules only", np.Spec.Egress)
	}
}
