package render

import (
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
)

// GatewayNames are the names of a gateway's children, all in the gateway's
// namespace.
type GatewayNames struct {
	// ServiceAccount, Deployment and PodDisruptionBudget share <gw>-gateway.
	ServiceAccount string
	// Role and RoleBinding share <gw>-gateway-policy-reader.
	Role        string
	RoleBinding string
	// ServingCertificate is <gw>-serving; cert-manager writes its key pair
	// to ServingSecret, <gw>-serving-tls.
	ServingCertificate string
	ServingSecret      string
	// AuditKeySecret, <gw>-audit-key, holds under the data key "key" the
	// HMAC key of the audit log's national-ID hashes. The reconciler creates
	// it with 32 random bytes and never rewrites it: a new key would make
	// hashes in old and new audit records incomparable.
	AuditKeySecret string
	Deployment     string
	// Service is <gw>, so that <gw>.<ns>.svc is the gateway's in-cluster
	// DNS name.
	Service             string
	PodDisruptionBudget string
	// DefaultDenyPolicy is the NetworkPolicy <gw>-gateway-default-deny.
	DefaultDenyPolicy string
}

const (
	// gatewayDNSLabelMax is the length limit of a DNS label (RFC 1123), of a
	// label value, and of names that end up in one: a Service name, or a
	// Deployment name, whose pods' hostnames are cut at 63 characters.
	gatewayDNSLabelMax = validation.DNS1123LabelMaxLength
	// gatewayDNSSubdomainMax is the length limit of most object names.
	gatewayDNSSubdomainMax = validation.DNS1123SubdomainMaxLength
)

// NamesFor returns the names of gw's children. A name that would exceed its
// kind's limit is cut and given a hash of the full name, so it stays unique
// and the same on every reconcile.
func NamesFor(gw *popv1.PopulationGateway) GatewayNames {
	// The Deployment's name should be a DNS label (its pods' hostnames
	// derive from it); the ServiceAccount and PDB share it so that the three
	// are recognisably one workload.
	workload := shortName(gw.Name+"-gateway", gatewayDNSLabelMax)
	policyReader := shortName(gw.Name+"-gateway-policy-reader", gatewayDNSSubdomainMax)
	return GatewayNames{
		ServiceAccount:      workload,
		Role:                policyReader,
		RoleBinding:         policyReader,
		ServingCertificate:  shortName(gw.Name+"-serving", gatewayDNSSubdomainMax),
		ServingSecret:       shortName(gw.Name+"-serving-tls", gatewayDNSSubdomainMax),
		AuditKeySecret:      shortName(gw.Name+"-audit-key", gatewayDNSSubdomainMax),
		Deployment:          workload,
		Service:             gatewayServiceName(gw.Name),
		PodDisruptionBudget: workload,
		DefaultDenyPolicy:   shortName(gw.Name+"-gateway-default-deny", gatewayDNSSubdomainMax),
	}
}

// GatewayLabelValue is the value of the popconnect.io/gateway and
// app.kubernetes.io/instance labels for the gateway named gatewayName. A
// gateway's name may be up to 253 characters but a label value only 63, so
// a longer name is shortened with a hash. Everything that selects a
// gateway's pods or policy shards by label must use this value.
func GatewayLabelValue(gatewayName string) string {
	return labelValue(gatewayName)
}

// gatewayServiceName is the gateway's Service name: the gateway's own name
// whenever it is a valid Service name (an RFC 1035 label: at most 63
// characters, no dots, starting with a letter). Other names are made into
// one, with a hash of the original so that two gateways whose names differ
// only in the replaced characters keep apart.
func gatewayServiceName(gatewayName string) string {
	if len(validation.IsDNS1035Label(gatewayName)) == 0 {
		return gatewayName
	}
	prefix := strings.ReplaceAll(gatewayName, ".", "-")
	if prefix == "" || prefix[0] < 'a' || prefix[0] > 'z' {
		prefix = "gw-" + prefix
	}
	return hashedName(prefix, gatewayName, gatewayDNSLabelMax)
}
