package render

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
)

func TestGatewayUpstreamPeer(t *testing.T) {
	tests := []struct {
		url       string
		want      gatewayUpstream
		wantValid bool
	}{
		{url: "http://popdb.popconnect-system.svc:8080", want: gatewayUpstream{port: 8080, namespace: "popconnect-system"}, wantValid: true},
		{url: "http://popdb.data.svc.cluster.local:9000/v1", want: gatewayUpstream{port: 9000, namespace: "data"}, wantValid: true},
		{url: "https://popdb.data.svc.cluster.local.", want: gatewayUpstream{port: 443, namespace: "data"}, wantValid: true},
		{url: "HTTPS://PopDB.Data.SVC", want: gatewayUpstream{port: 443, namespace: "data"}, wantValid: true},
		{url: "http://popdb.data.svc", want: gatewayUpstream{port: 80, namespace: "data"}, wantValid: true},
		// Anything else may be outside the cluster.
		{url: "https://api.popdb.example.gov.vn/v2", want: gatewayUpstream{port: 443}, wantValid: true},
		{url: "http://popdb.data:8080", want: gatewayUpstream{port: 8080}, wantValid: true},
		{url: "http://popdb:8080", want: gatewayUpstream{port: 8080}, wantValid: true},
		{url: "http://a.b.svc.example.com", want: gatewayUpstream{port: 80}, wantValid: true},
		{url: "http://popdb.data.svc.other.local", want: gatewayUpstream{port: 80}, wantValid: true},
		{url: "http://10.20.30.40:8080", want: gatewayUpstream{port: 8080, ip: netip.MustParseAddr("10.20.30.40")}, wantValid: true},
		{url: "https://[fd00::1]", want: gatewayUpstream{port: 443, ip: netip.MustParseAddr("fd00::1")}, wantValid: true},
		{url: "http://[::ffff:10.1.2.3]", want: gatewayUpstream{port: 80, ip: netip.MustParseAddr("10.1.2.3")}, wantValid: true},
		{url: "http://popdb.Bad_NS.svc", want: gatewayUpstream{port: 80}, wantValid: true},
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
			got.host = ""
			if ok != tt.wantValid || got != tt.want {
				t.Errorf("gatewayUpstreamPeer(%q) = %+v, %v; want %+v, %v", tt.url, got, ok, tt.want, tt.wantValid)
			}
		})
	}
}

func TestGatewayDefaultDenyWithoutUpstream(t *testing.T) {
	gw := gatewayNamed("gw")
	gw.Spec.Upstream.URL = "ftp://popdb"
	np := GatewayDefaultDenyNetworkPolicy(gw, goldenEgressPeers()).Policy
	if diff := cmp.Diff(managerIngress(goldenEgressPeers().Manager), np.Spec.Ingress); diff != "" || len(np.Spec.Ingress) != 1 {
		t.Errorf("ingress rules: want the manager's only (-want +got):\n%s", diff)
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

func apiServerSlice(port int32, addresses ...string) discoveryv1.EndpointSlice {
	return discoveryv1.EndpointSlice{
		Endpoints: []discoveryv1.Endpoint{{Addresses: addresses}},
		Ports:     []discoveryv1.EndpointPort{{Name: ptr.To("https"), Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To(port)}},
	}
}

// egressSummary reads an egress rule as "proto/port,... -> peer,...", the
// DNS rule left out.
func egressSummary(rules []networkingv1.NetworkPolicyEgressRule) []string {
	var out []string
	for _, r := range rules[1:] {
		var ports, peers []string
		for _, p := range r.Ports {
			if p.Port == nil {
				ports = append(ports, string(*p.Protocol)+"/ALL")
				continue
			}
			ports = append(ports, fmt.Sprintf("%s/%s", *p.Protocol, p.Port.String()))
		}
		for _, p := range r.To {
			switch {
			case p.IPBlock != nil:
				peers = append(peers, p.IPBlock.CIDR)
			case p.NamespaceSelector != nil:
				peers = append(peers, "ns="+p.NamespaceSelector.MatchLabels[corev1.LabelMetadataName])
			}
		}
		if len(peers) == 0 {
			peers = []string{"ANYWHERE"}
		}
		out = append(out, strings.Join(ports, ",")+" -> "+strings.Join(peers, ","))
	}
	return out
}

// TestGatewayEgressNamesItsPeers: the gateway's pods may reach the upstream
// and the API server at their own addresses only, never a port on any
// address; a peer that cannot be named gets no rule and is reported.
func TestGatewayEgressNamesItsPeers(t *testing.T) {
	notReady := apiServerSlice(6443, "10.0.0.9")
	notReady.Endpoints[0].Conditions.Ready = ptr.To(false)
	allPorts := apiServerSlice(6443, "10.0.0.8")
	allPorts.Ports[0].Port = nil
	tests := []struct {
		name           string
		url            string
		cidrs          []popv1.CIDR
		apiServer      []discoveryv1.EndpointSlice
		want           []string
		wantUnresolved []string
	}{{
		name:      "in-cluster upstream, one API server",
		url:       "http://popdb.data.svc:8080",
		apiServer: []discoveryv1.EndpointSlice{apiServerSlice(6443, "192.168.1.10")},
		want:      []string{"TCP/8080 -> ns=data", "TCP/6443 -> 192.168.1.10/32"},
	}, {
		name: "IP upstream, API servers in two slices, dual-stack, duplicates",
		url:  "https://[2001:db8::7]:8443",
		apiServer: []discoveryv1.EndpointSlice{
			apiServerSlice(443, "fd00::1", "fd00::1"),
			apiServerSlice(6443, "10.0.0.3", "10.0.0.1"),
		},
		want: []string{"TCP/8443 -> 2001:db8::7/128", "TCP/6443 -> 10.0.0.1/32,10.0.0.3/32", "TCP/443 -> fd00::1/128"},
	}, {
		name:      "external upstream with cidrs",
		url:       "https://api.popdb.example.gov.vn",
		cidrs:     []popv1.CIDR{"203.0.113.0/24", "198.51.100.0/28", "203.0.113.0/24"},
		apiServer: []discoveryv1.EndpointSlice{apiServerSlice(6443, "10.0.0.1")},
		want:      []string{"TCP/443 -> 198.51.100.0/28,203.0.113.0/24", "TCP/6443 -> 10.0.0.1/32"},
	}, {
		name:           "external upstream without cidrs: no rule, reported",
		url:            "https://api.popdb.example.gov.vn",
		apiServer:      []discoveryv1.EndpointSlice{apiServerSlice(6443, "10.0.0.1")},
		want:           []string{"TCP/6443 -> 10.0.0.1/32"},
		wantUnresolved: []string{"api.popdb.example.gov.vn is outside the cluster and spec.upstream.cidrs is empty"},
	}, {
		name:           "API server unknown: no rule, reported",
		url:            "http://popdb.data.svc:8080",
		apiServer:      []discoveryv1.EndpointSlice{notReady, allPorts},
		want:           []string{"TCP/8080 -> ns=data"},
		wantUnresolved: []string{"API server's endpoints"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gw := gatewayNamed("gw")
			gw.Spec.Upstream.URL, gw.Spec.Upstream.CIDRs = tt.url, tt.cidrs
			got := GatewayDefaultDenyNetworkPolicy(gw, GatewayEgressPeers{APIServer: tt.apiServer})
			if diff := cmp.Diff(tt.want, egressSummary(got.Policy.Spec.Egress)); diff != "" {
				t.Errorf("egress (-want +got):\n%s", diff)
			}
			if len(got.Unresolved) != len(tt.wantUnresolved) {
				t.Fatalf("unresolved = %q, want %d matching %q", got.Unresolved, len(tt.wantUnresolved), tt.wantUnresolved)
			}
			for i, w := range tt.wantUnresolved {
				if !strings.Contains(got.Unresolved[i], w) {
					t.Errorf("unresolved[%d] = %q, want it to contain %q", i, got.Unresolved[i], w)
				}
			}
		})
	}
}

func TestGatewayAuditRule(t *testing.T) {
	db := networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: "10.20.0.0/16"}}
	pods := networkingv1.NetworkPolicyPeer{
		NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: "db"}},
		PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"app": "postgres"}},
	}
	tests := []struct {
		name        string
		audit       *popv1.AuditSpec
		wantRule    *networkingv1.NetworkPolicyEgressRule
		wantProblem string
	}{
		{name: "no audit spec: stdout, no rule"},
		{name: "audit without postgres: stdout, no rule", audit: &popv1.AuditSpec{}},
		{name: "postgres without to: unresolved",
			audit:       &popv1.AuditSpec{Postgres: &popv1.PostgresAuditSpec{}},
			wantProblem: "spec.audit.postgres.to is empty"},
		{name: "postgres to, default port",
			audit: &popv1.AuditSpec{Postgres: &popv1.PostgresAuditSpec{To: []networkingv1.NetworkPolicyPeer{db, pods}}},
			wantRule: &networkingv1.NetworkPolicyEgressRule{To: []networkingv1.NetworkPolicyPeer{db, pods},
				Ports: []networkingv1.NetworkPolicyPort{gatewayPolicyPort(corev1.ProtocolTCP, 5432)}}},
		{name: "postgres to, own port",
			audit: &popv1.AuditSpec{Postgres: &popv1.PostgresAuditSpec{To: []networkingv1.NetworkPolicyPeer{db}, Port: ptr.To[int32](6432)}},
			wantRule: &networkingv1.NetworkPolicyEgressRule{To: []networkingv1.NetworkPolicyPeer{db},
				Ports: []networkingv1.NetworkPolicyPort{gatewayPolicyPort(corev1.ProtocolTCP, 6432)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gw := gatewayNamed("gw")
			gw.Spec.Audit = tt.audit
			rule, problem := gatewayAuditRule(gw)
			if diff := cmp.Diff(tt.wantRule, rule); diff != "" {
				t.Errorf("rule (-want +got):\n%s", diff)
			}
			if (tt.wantProblem == "") != (problem == "") || !strings.Contains(problem, tt.wantProblem) {
				t.Errorf("problem = %q, want one containing %q", problem, tt.wantProblem)
			}
			egress := GatewayDefaultDenyNetworkPolicy(gw, goldenEgressPeers())
			if got := strings.Join(egress.Unresolved, " "); tt.wantProblem != "" && !strings.Contains(got, tt.wantProblem) {
				t.Errorf("Unresolved = %q, want it to contain %q", got, tt.wantProblem)
			}
			if rule != nil {
				rule.To[0].IPBlock.CIDR = "0.0.0.0/0"
				if gw.Spec.Audit.Postgres.To[0].IPBlock.CIDR != "10.20.0.0/16" {
					t.Error("the rule shares its peers with the spec")
				}
			}
		})
	}
}

func TestGatewayRedisRule(t *testing.T) {
	pods := networkingv1.NetworkPolicyPeer{
		NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: "redis"}},
		PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"app": "redis"}},
	}
	tests := []struct {
		name        string
		store       *popv1.RateLimitStoreSpec
		wantRule    *networkingv1.NetworkPolicyEgressRule
		wantProblem string
	}{
		{name: "no store: each replica alone, no rule"},
		{name: "store without redis: no rule", store: &popv1.RateLimitStoreSpec{}},
		{name: "redis without to: unresolved",
			store:       &popv1.RateLimitStoreSpec{Redis: &popv1.RedisRateLimitStoreSpec{Address: "redis.redis.svc:6379"}},
			wantProblem: "spec.rateLimitStore.redis.to is empty"},
		{name: "redis to, the address's port",
			store: &popv1.RateLimitStoreSpec{Redis: &popv1.RedisRateLimitStoreSpec{Address: "redis.redis.svc:6379", To: []networkingv1.NetworkPolicyPeer{pods}}},
			wantRule: &networkingv1.NetworkPolicyEgressRule{To: []networkingv1.NetworkPolicyPeer{pods},
				Ports: []networkingv1.NetworkPolicyPort{gatewayPolicyPort(corev1.ProtocolTCP, 6379)}}},
		{name: "redis to, the pods' own port",
			store: &popv1.RateLimitStoreSpec{Redis: &popv1.RedisRateLimitStoreSpec{Address: "[fd00::1]:6379", To: []networkingv1.NetworkPolicyPeer{pods}, Port: ptr.To[int32](7000)}},
			wantRule: &networkingv1.NetworkPolicyEgressRule{To: []networkingv1.NetworkPolicyPeer{pods},
				Ports: []networkingv1.NetworkPolicyPort{gatewayPolicyPort(corev1.ProtocolTCP, 7000)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gw := gatewayNamed("gw")
			gw.Spec.RateLimitStore = tt.store
			rule, problem := gatewayRedisRule(gw)
			if diff := cmp.Diff(tt.wantRule, rule); diff != "" {
				t.Errorf("rule (-want +got):\n%s", diff)
			}
			if (tt.wantProblem == "") != (problem == "") || !strings.Contains(problem, tt.wantProblem) {
				t.Errorf("problem = %q, want one containing %q", problem, tt.wantProblem)
			}
			egress := GatewayDefaultDenyNetworkPolicy(gw, goldenEgressPeers())
			if got := strings.Join(egress.Unresolved, " "); tt.wantProblem != "" && !strings.Contains(got, tt.wantProblem) {
				t.Errorf("Unresolved = %q, want it to contain %q", got, tt.wantProblem)
			}
		})
	}
}

func TestManagerIngress(t *testing.T) {
	metrics := []networkingv1.NetworkPolicyPort{gatewayPolicyPort(corev1.ProtocolTCP, gatewayMetricsPort)}
	nsSelector := &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: "popconnect-system"}}
	tests := []struct {
		name string
		in   ManagerPeer
		want []networkingv1.NetworkPolicyIngressRule
	}{
		{name: "namespace unknown: no ingress at all"},
		{name: "labels unknown: the namespace's pods", in: ManagerPeer{Namespace: "popconnect-system"},
			want: []networkingv1.NetworkPolicyIngressRule{{Ports: metrics, From: []networkingv1.NetworkPolicyPeer{
				{NamespaceSelector: nsSelector, PodSelector: &metav1.LabelSelector{}}}}}},
		{name: "the manager's pods", in: ManagerPeer{Namespace: "popconnect-system", PodLabels: map[string]string{"app.kubernetes.io/component": "manager"}},
			want: []networkingv1.NetworkPolicyIngressRule{{Ports: metrics, From: []networkingv1.NetworkPolicyPeer{
				{NamespaceSelector: nsSelector, PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/component": "manager"}}}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, managerIngress(tt.in)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
