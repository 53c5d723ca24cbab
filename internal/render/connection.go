package render

import (
	"fmt"
	"sort"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
)

// SPIFFEPrefix starts the URI SAN that carries an agency's identity.
const SPIFFEPrefix = "spiffe://popconnect.io/agency/"

// DefaultGatewayPort is the agency port when spec.port is not set.
const DefaultGatewayPort = 8443

// AgencyURI is the URI SAN of an agency's client certificate.
func AgencyURI(agencyCode string) string { return SPIFFEPrefix + agencyCode }

// ClientCertificateName is the name of a connection's Certificate.
func ClientCertificateName(conn *popv1.AgencyConnection) string {
	return shortName(conn.Name+"-client", 253)
}

// ClientSecretName is the Secret holding the agency's key and certificate.
func ClientSecretName(conn *popv1.AgencyConnection) string {
	return shortName(conn.Name+"-client-tls", 253)
}

// ConnectionNetworkPolicyName names a connection's NetworkPolicy, which
// lives in the gateway's namespace and so must not collide across the
// connections' namespaces. A readable "popconnect-<ns>-<name>" alone would:
// moh-hanoi/ministry-of-health and moh/hanoi-ministry-of-health both give
// popconnect-moh-hanoi-ministry-of-health. So the name always ends in a
// 16-hex-digit (64-bit) hash of "<ns>/<name>" ('/' appears in neither part),
// which no one can aim at another connection's; and no gateway child's name
// ends that way (theirs end in a word or in a 10-digit hash).
func ConnectionNetworkPolicyName(conn *popv1.AgencyConnection) string {
	return hashedNameN(fmt.Sprintf("popconnect-%s-%s", conn.Namespace, conn.Name),
		conn.Namespace+"/"+conn.Name, connectionPolicyHashLen, connectionPolicyNameMax)
}

const (
	// connectionPolicyHashLen is the hex digits of the hash in a
	// connection's NetworkPolicy name: 64 bits, beyond a brute-forced
	// collision, where a name in one namespace only needs to avoid chance.
	connectionPolicyHashLen = 16
	// connectionPolicyNameMax keeps the name a valid label value too, so it
	// can be shown and selected like the other children's.
	connectionPolicyNameMax = 63
)

// GatewayKey resolves a connection's gatewayRef: the namespace defaults to
// the connection's own.
func GatewayKey(conn *popv1.AgencyConnection) types.NamespacedName {
	ns := conn.Spec.GatewayRef.Namespace
	if ns == "" {
		ns = conn.Namespace
	}
	return types.NamespacedName{Namespace: ns, Name: conn.Spec.GatewayRef.Name}
}

// ConnectionLabels are the labels of every object made for a connection.
func ConnectionLabels(conn *popv1.AgencyConnection, component string) map[string]string {
	return map[string]string{
		LabelManagedBy:           ManagedByValue,
		LabelConnection:          labelValue(conn.Name),
		LabelConnectionNamespace: conn.Namespace,
		LabelAgencyCode:          conn.Spec.AgencyCode,
		LabelComponent:           component,
	}
}

// ClientCertificate is the agency's mTLS client certificate: client-auth
// only, a fresh ECDSA P-256 key at every renewal, the agency code as the
// SPIFFE URI SAN the gateway reads the identity from.
func ClientCertificate(conn *popv1.AgencyConnection) *cmapi.Certificate {
	spec := conn.Spec.ClientCertificate
	group := spec.IssuerRef.Group
	if group == "" {
		group = "cert-manager.io"
	}
	return &cmapi.Certificate{
		TypeMeta: metav1.TypeMeta{APIVersion: cmapi.SchemeGroupVersion.String(), Kind: cmapi.CertificateKind},
		ObjectMeta: metav1.ObjectMeta{
			Name:      ClientCertificateName(conn),
			Namespace: conn.Namespace,
			Labels:    ConnectionLabels(conn, "client-certificate"),
		},
		Spec: cmapi.CertificateSpec{
			SecretName: ClientSecretName(conn),
			SecretTemplate: &cmapi.CertificateSecretTemplate{
				Labels: ConnectionLabels(conn, "client-certificate"),
			},
			CommonName:  conn.Spec.AgencyCode,
			URIs:        []string{AgencyURI(conn.Spec.AgencyCode)},
			Duration:    spec.Duration,
			RenewBefore: spec.RenewBefore,
			IssuerRef:   cmmeta.IssuerReference{Name: spec.IssuerRef.Name, Kind: spec.IssuerRef.Kind, Group: group},
			Usages:      []cmapi.KeyUsage{cmapi.UsageClientAuth, cmapi.UsageDigitalSignature},
			PrivateKey: &cmapi.CertificatePrivateKey{
				Algorithm:      cmapi.ECDSAKeyAlgorithm,
				Size:           256,
				Encoding:       cmapi.PKCS8,
				RotationPolicy: cmapi.RotationPolicyAlways,
			},
		},
	}
}

// ConnectionNetworkPolicy admits the connection's sources, and nothing else,
// to the gateway's pods on the gateway port. Without spec.network, only pods
// of the connection's own namespace are admitted: a connection never opens
// the gateway to the whole network by omission.
func ConnectionNetworkPolicy(conn *popv1.AgencyConnection, gw *popv1.PopulationGateway) *networkingv1.NetworkPolicy {
	port := intstr.FromInt32(gatewayPort(gw))
	tcp := corev1.ProtocolTCP
	labels := ConnectionLabels(conn, "agency-network-policy")
	labels[LabelGateway] = labelValue(gw.Name)
	return &networkingv1.NetworkPolicy{
		TypeMeta: metav1.TypeMeta{APIVersion: networkingv1.SchemeGroupVersion.String(), Kind: "NetworkPolicy"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      ConnectionNetworkPolicyName(conn),
			Namespace: gw.Namespace,
			Labels:    labels,
		},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: GatewayPodLabels(gw.Name)},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &port}},
				From:  networkPeers(conn),
			}},
		},
	}
}

func gatewayPort(gw *popv1.PopulationGateway) int32 {
	if gw.Spec.Port != nil {
		return *gw.Spec.Port
	}
	return DefaultGatewayPort
}

// networkPeers turns spec.network into NetworkPolicy peers.
func networkPeers(conn *popv1.AgencyConnection) []networkingv1.NetworkPolicyPeer {
	ownNamespace := &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: conn.Namespace}}
	n := conn.Spec.Network
	if n == nil {
		return []networkingv1.NetworkPolicyPeer{{NamespaceSelector: ownNamespace}}
	}
	var peers []networkingv1.NetworkPolicyPeer
	cidrs := make([]string, 0, len(n.SourceCIDRs))
	for _, c := range n.SourceCIDRs {
		cidrs = append(cidrs, string(c))
	}
	sort.Strings(cidrs)
	for _, c := range cidrs {
		peers = append(peers, networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: c}})
	}
	switch {
	case n.NamespaceSelector != nil:
		peers = append(peers, networkingv1.NetworkPolicyPeer{
			NamespaceSelector: n.NamespaceSelector.DeepCopy(),
			PodSelector:       n.PodSelector.DeepCopy(),
		})
	case n.PodSelector != nil:
		peers = append(peers, networkingv1.NetworkPolicyPeer{
			NamespaceSelector: ownNamespace,
			PodSelector:       n.PodSelector.DeepCopy(),
		})
	}
	return peers
}
