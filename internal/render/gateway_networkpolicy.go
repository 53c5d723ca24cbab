package render

import (
	"net/url"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
)

// GatewayDefaultDenyNetworkPolicy isolates gw's pods in both directions. It
// allows no ingress at all: each AgencyConnection adds its own policy that
// lets its sources in on the gateway port (NetworkPolicies are additive).
// Egress is allowed only to DNS, the upstream and the Kubernetes API.
func GatewayDefaultDenyNetworkPolicy(gw *popv1.PopulationGateway) *networkingv1.NetworkPolicy {
	egress := []networkingv1.NetworkPolicyEgressRule{{
		// DNS, wherever the cluster's resolver runs.
		To: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{}}},
		Ports: []networkingv1.NetworkPolicyPort{
			gatewayPolicyPort(corev1.ProtocolUDP, 53),
			gatewayPolicyPort(corev1.ProtocolTCP, 53),
		},
	}}
	if up, ok := gatewayUpstreamPeer(gw.Spec.Upstream.URL); ok {
		rule := networkingv1.NetworkPolicyEgressRule{
			Ports: []networkingv1.NetworkPolicyPort{gatewayPolicyPort(corev1.ProtocolTCP, up.port)},
		}
		if up.namespace != "" {
			rule.To = []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{
				MatchLabels: map[string]string{corev1.LabelMetadataName: up.namespace},
			}}}
		}
		egress = append(egress, rule)
	}
	// The gateway watches its policy shards, so it must reach the API
	// server. The API server usually runs on the host network or outside
	// the cluster, where no pod or namespace selector can name it, and
	// NetworkPolicy sees the endpoint's port after the kubernetes Service's
	// 443 is translated: 6443 on most clusters, 443 on some managed ones.
	egress = append(egress, networkingv1.NetworkPolicyEgressRule{
		Ports: []networkingv1.NetworkPolicyPort{
			gatewayPolicyPort(corev1.ProtocolTCP, 443),
			gatewayPolicyPort(corev1.ProtocolTCP, 6443),
		},
	})

	return &networkingv1.NetworkPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: networkingv1.SchemeGroupVersion.String(), Kind: "NetworkPolicy"},
		ObjectMeta: gatewayMeta(gw, NamesFor(gw).DefaultDenyPolicy, GatewayComponentDefaultDeny),
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: *gatewaySelector(gw),
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
			Egress:      egress,
		},
	}
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
	return gatewayUpstream{port: int32(port), namespace: gatewayServiceNamespace(u.Hostname())}, true
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
