package render

import (
	"fmt"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
)

// GatewayEgressPeers is what the gateway reconciler read about the peers
// the gateway's pods must reach, beyond what the gateway's spec says.
type GatewayEgressPeers struct {
	// APIServer are the EndpointSlices of the kubernetes Service in
	// namespace default: where the API server really listens.
	APIServer []discoveryv1.EndpointSlice
	// Manager is where the operator's own pods run: they ask each gateway
	// pod for its audit state on the metrics port. The zero value (a
	// manager outside the cluster, which cannot reach pod IPs anyway) lets
	// nothing in.
	Manager ManagerPeer
}

// ManagerPeer names the operator's pods: their namespace and labels.
type ManagerPeer struct {
	// Namespace is the operator's namespace; "" when unknown.
	Namespace string
	// PodLabels select the operator's pods in Namespace; every pod of the
	// namespace when empty.
	PodLabels map[string]string
}

// GatewayEgress is the default-deny policy and what it could not allow.
type GatewayEgress struct {
	Policy *networkingv1.NetworkPolicy
	// Unresolved says, one sentence each, which peer the policy does not
	// let the pods reach yet and why; empty when every peer is named.
	Unresolved []string
}

// GatewayDefaultDenyNetworkPolicy isolates gw's pods in both directions. Its
// only ingress is the operator's pods on the plain-HTTP metrics port, where
// they read each pod's audit state (GET /auditz): each AgencyConnection adds
// its own policy that lets its sources in on the gateway port
// (NetworkPolicies are additive). Egress is allowed only to DNS, the
// upstream, the PostgreSQL audit store and the API server's own endpoints,
// each on its own ports, so that a compromised gateway pod cannot send data
// to any other address. A peer it cannot name gets no egress, and is
// reported in Unresolved.
func GatewayDefaultDenyNetworkPolicy(gw *popv1.PopulationGateway, peers GatewayEgressPeers) GatewayEgress {
	var unresolved []string
	egress := []networkingv1.NetworkPolicyEgressRule{{
		// DNS, wherever the cluster's resolver runs.
		To: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{}}},
		Ports: []networkingv1.NetworkPolicyPort{
			gatewayPolicyPort(corev1.ProtocolUDP, 53),
			gatewayPolicyPort(corev1.ProtocolTCP, 53),
		},
	}}
	if rule, problem := gatewayUpstreamRule(gw.Spec.Upstream); problem != "" {
		unresolved = append(unresolved, problem)
	} else if rule != nil {
		egress = append(egress, *rule)
	}
	if rule, problem := gatewayAuditRule(gw); problem != "" {
		unresolved = append(unresolved, problem)
	} else if rule != nil {
		egress = append(egress, *rule)
	}
	if rule, problem := gatewayRedisRule(gw); problem != "" {
		unresolved = append(unresolved, problem)
	} else if rule != nil {
		egress = append(egress, *rule)
	}
	// The gateway watches its policy shards, so it must reach the API
	// server. It usually runs on the host network or outside the cluster,
	// where no pod or namespace selector can name it, so it is named by the
	// addresses and ports of the kubernetes Service's endpoints (the port
	// NetworkPolicy sees is the endpoint's, after the Service's 443 is
	// translated: 6443 on most clusters).
	apiRules := apiServerRules(peers.APIServer)
	if len(apiRules) == 0 {
		unresolved = append(unresolved, "The API server's endpoints (EndpointSlices of Service default/kubernetes) "+
			"are not known yet, so the gateway pods may not reach the API server.")
	}
	egress = append(egress, apiRules...)

	return GatewayEgress{
		Policy: &networkingv1.NetworkPolicy{
			TypeMeta:   metav1.TypeMeta{APIVersion: networkingv1.SchemeGroupVersion.String(), Kind: "NetworkPolicy"},
			ObjectMeta: gatewayMeta(gw, NamesFor(gw).DefaultDenyPolicy, GatewayComponentDefaultDeny),
			Spec: networkingv1.NetworkPolicySpec{
				PodSelector: *gatewaySelector(gw),
				PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
				Ingress:     managerIngress(peers.Manager),
				Egress:      egress,
			},
		},
		Unresolved: unresolved,
	}
}

// gatewayUpstreamRule allows the upstream on its port: an in-cluster
// Service by its namespace, an IP address by itself, a DNS name outside the
// cluster by spec.upstream.cidrs. It returns a problem sentence, and no
// rule, for an external name without cidrs; neither for a URL the API's
// validation would have refused (no upstream traffic is all such a gateway
// could use anyway).
func gatewayUpstreamRule(spec popv1.UpstreamSpec) (*networkingv1.NetworkPolicyEgressRule, string) {
	up, ok := gatewayUpstreamPeer(spec.URL)
	if !ok {
		return nil, ""
	}
	rule := &networkingv1.NetworkPolicyEgressRule{
		Ports: []networkingv1.NetworkPolicyPort{gatewayPolicyPort(corev1.ProtocolTCP, up.port)},
	}
	switch {
	case up.namespace != "":
		rule.To = []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{
			MatchLabels: map[string]string{corev1.LabelMetadataName: up.namespace},
		}}}
	case up.ip.IsValid():
		rule.To = []networkingv1.NetworkPolicyPeer{ipPeer(up.ip)}
	case len(spec.CIDRs) > 0:
		cidrs := make([]string, 0, len(spec.CIDRs))
		for _, c := range spec.CIDRs {
			cidrs = append(cidrs, string(c))
		}
		sort.Strings(cidrs)
		for _, c := range slices.Compact(cidrs) {
			rule.To = append(rule.To, networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: c}})
		}
	default:
		return nil, fmt.Sprintf("The upstream host %s is outside the cluster and spec.upstream.cidrs is empty, "+
			"so the gateway pods may not reach it: list the networks its addresses are in.", up.host)
	}
	return rule, ""
}

// gatewayAuditRule allows the PostgreSQL audit store's peers on its port.
// It returns a problem sentence, and no rule, for a store without peers;
// neither for a gateway whose audit records go to stdout.
func gatewayAuditRule(gw *popv1.PopulationGateway) (*networkingv1.NetworkPolicyEgressRule, string) {
	pg := gatewayAuditPostgres(gw)
	if pg == nil {
		return nil, ""
	}
	if len(pg.To) == 0 {
		return nil, "spec.audit.postgres.to is empty, so the gateway pods may not reach the PostgreSQL audit " +
			"database and refuse every request: list the networks or pods of the database."
	}
	port := int32(gatewayDefaultPostgresPort)
	if pg.Port != nil {
		port = *pg.Port
	}
	return peersOnPort(pg.To, port), ""
}

// peersOnPort is an egress rule to the user's peers (copied, so that the
// rendered object shares no memory with the spec) on one TCP port.
func peersOnPort(peers []networkingv1.NetworkPolicyPeer, port int32) *networkingv1.NetworkPolicyEgressRule {
	to := make([]networkingv1.NetworkPolicyPeer, 0, len(peers))
	for _, p := range peers {
		to = append(to, *p.DeepCopy())
	}
	return &networkingv1.NetworkPolicyEgressRule{
		To:    to,
		Ports: []networkingv1.NetworkPolicyPort{gatewayPolicyPort(corev1.ProtocolTCP, port)},
	}
}

// gatewayRedisRule allows the rate-limit Redis server's peers on its port
// (spec's port, else the address's). It returns a problem sentence, and no
// rule, for a store without peers; neither without a store.
func gatewayRedisRule(gw *popv1.PopulationGateway) (*networkingv1.NetworkPolicyEgressRule, string) {
	r := GatewayRedis(gw)
	if r == nil {
		return nil, ""
	}
	if len(r.To) == 0 {
		return nil, "spec.rateLimitStore.redis.to is empty, so the gateway pods may not reach Redis and each " +
			"enforces only its share of the agencies' limits: list the networks or pods of the Redis server."
	}
	var port int32
	if r.Port != nil {
		port = *r.Port
	} else if _, p, err := net.SplitHostPort(r.Address); err == nil {
		n, _ := strconv.ParseInt(p, 10, 32)
		port = int32(n)
	}
	if port < 1 || port > 65535 {
		return nil, "spec.rateLimitStore.redis.address has no valid port, so the gateway pods may not reach Redis."
	}
	return peersOnPort(r.To, port), ""
}

// managerIngress lets the operator's pods reach the metrics port, and
// nothing else: not the agencies' port, and no other pod of the operator's
// namespace unless the operator's pod labels are unknown.
func managerIngress(m ManagerPeer) []networkingv1.NetworkPolicyIngressRule {
	if m.Namespace == "" {
		return nil
	}
	peer := networkingv1.NetworkPolicyPeer{
		NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: m.Namespace}},
		PodSelector:       &metav1.LabelSelector{},
	}
	if len(m.PodLabels) > 0 {
		peer.PodSelector.MatchLabels = maps.Clone(m.PodLabels)
	}
	return []networkingv1.NetworkPolicyIngressRule{{
		From:  []networkingv1.NetworkPolicyPeer{peer},
		Ports: []networkingv1.NetworkPolicyPort{gatewayPolicyPort(corev1.ProtocolTCP, gatewayMetricsPort)},
	}}
}

// apiServerRules allows each EndpointSlice's ready addresses on its ports,
// sorted so that the policy does not change with the slices' order.
func apiServerRules(endpointSlices []discoveryv1.EndpointSlice) []networkingv1.NetworkPolicyEgressRule {
	var rules []networkingv1.NetworkPolicyEgressRule
	for _, slice := range endpointSlices {
		var ips []netip.Addr
		for _, ep := range slice.Endpoints {
			if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
				continue
			}
			for _, a := range ep.Addresses {
				if ip, err := netip.ParseAddr(a); err == nil {
					ips = append(ips, ip.Unmap())
				}
			}
		}
		var ports []networkingv1.NetworkPolicyPort
		for _, p := range slice.Ports {
			if p.Port == nil {
				continue // "all ports": never opened
			}
			protocol := corev1.ProtocolTCP
			if p.Protocol != nil {
				protocol = *p.Protocol
			}
			ports = append(ports, gatewayPolicyPort(protocol, *p.Port))
		}
		if len(ips) == 0 || len(ports) == 0 {
			continue
		}
		slices.SortFunc(ips, func(a, b netip.Addr) int { return a.Compare(b) })
		ips = slices.Compact(ips)
		rule := networkingv1.NetworkPolicyEgressRule{Ports: ports}
		for _, ip := range ips {
			rule.To = append(rule.To, ipPeer(ip))
		}
		rules = append(rules, rule)
	}
	sort.SliceStable(rules, func(i, j int) bool { return rules[i].To[0].IPBlock.CIDR < rules[j].To[0].IPBlock.CIDR })
	return rules
}

// ipPeer is the peer of exactly one address: /32 or /128.
func ipPeer(ip netip.Addr) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: netip.PrefixFrom(ip, ip.BitLen()).String()}}
}

func gatewayPolicyPort(protocol corev1.Protocol, port int32) networkingv1.NetworkPolicyPort {
	return networkingv1.NetworkPolicyPort{Protocol: ptr.To(protocol), Port: ptr.To(intstr.FromInt32(port))}
}

// gatewayUpstream is where the gateway's upstream URL points, as far as a
// NetworkPolicy can tell.
type gatewayUpstream struct {
	// port is the URL's port, or its scheme's default.
	port int32
	// namespace is the namespace of an in-cluster Service host, "" for any
	// other host.
	namespace string
	// ip is the host when it is an IP address.
	ip netip.Addr
	// host is the URL's host name, for messages.
	host string
}

// gatewayUpstreamPeer reads rawURL. It reports false for a URL the API's
// validation would have refused; the policy then allows no upstream traffic,
// which is all such a gateway could use anyway.
//
// The port is the URL's, but NetworkPolicy matches the port of the pod
// behind a Service: an in-cluster upstream must use the same port for its
// Service and its pods.
func gatewayUpstreamPeer(rawURL string) (gatewayUpstream, bool) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Hostname() == "" {
		return gatewayUpstream{}, false
	}
	var port int
	switch p := u.Port(); {
	case p != "":
		port, err = strconv.Atoi(p)
		if err != nil || port < 1 || port > 65535 {
			return gatewayUpstream{}, false
		}
	case strings.EqualFold(u.Scheme, "https"):
		port = 443
	case strings.EqualFold(u.Scheme, "http"):
		port = 80
	default:
		return gatewayUpstream{}, false
	}
	up := gatewayUpstream{port: int32(port), namespace: gatewayServiceNamespace(u.Hostname()), host: u.Hostname()}
	if ip, err := netip.ParseAddr(u.Hostname()); err == nil && ip.Zone() == "" {
		up.ip = ip.Unmap()
	}
	return up, true
}

// gatewayServiceNamespace returns <ns> for a host <svc>.<ns>.svc or
// <svc>.<ns>.svc.cluster.local, and "" for any other host: those may be
// anywhere, including outside the cluster.
func gatewayServiceNamespace(host string) string {
	labels := strings.Split(strings.TrimSuffix(strings.ToLower(host), "."), ".")
	switch {
	case len(labels) == 3 && labels[2] == "svc":
	case len(labels) == 5 && labels[2] == "svc" && labels[3] == "cluster" && labels[4] == "local":
	default:
		return ""
	}
	if labels[0] == "" || len(validation.IsDNS1123Label(labels[1])) != 0 {
		return ""
	}
	return labels[1]
}
