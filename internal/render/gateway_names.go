package render

import (
	"crypto/sha256"
	"encoding/hex"
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
	// gatewayNameHashLen is how many hex digits of SHA-256 a shortened name
	// keeps: 40 bits, enough that two gateways of one namespace do not meet.
	gatewayNameHashLen = 10
)

// NamesFor returns the names of gw's children. A name that would exceed its
// kind's limit is cut and given a hash of the full name, so it stays unique
// and the same on every reconcile.
func NamesFor(gw *popv1.PopulationGateway) GatewayNames {
	// The Deployment's name should be a DNS label (its pods' hostnames
	// derive from it); the ServiceAccount and PDB share it so that the three
	// are recognisably one workload.
	workload := gatewayShortenName(gw.Name+"-gateway", gatewayDNSLabelMax)
	policyReader := gatewayShortenName(gw.Name+"-gateway-policy-reader", gatewayDNSSubdomainMax)
	return GatewayNames{
		ServiceAccount:      workload,
		Role:                policyReader,
		RoleBinding:         policyReader,
		ServingCertificate:  gatewayShortenName(gw.Name+"-serving", gatewayDNSSubdomainMax),
		ServingSecret:       gatewayShortenName(gw.Name+"-serving-tls", gatewayDNSSubdomainMax),
		AuditKeySecret:      gatewayShortenName(gw.Name+"-audit-key", gatewayDNSSubdomainMax),
		Deployment:          workload,
		Service:             gatewayServiceName(gw.Name),
		PodDisruptionBudget: workload,
		DefaultDenyPolicy:   gatewayShortenName(gw.Name+"-gateway-default-deny", gatewayDNSSubdomainMax),
	}
}

// GatewayLabelValue is the value of the popconnect.io/gateway and
// app.kubernetes.io/instance labels for the gateway named gatewayName. A
// gateway's name may be up to 253 characters but a label value only 63, so
// a longer name is shortened with a hash. Everything that selects a
// gateway's pods or policy shards by label must use this value.
func GatewayLabelValue(gatewayName string) string {
	return gatewayShortenName(gatewayName, gatewayDNSLabelMax)
}

// gatewayShortenName returns name when it fits in maxLen, and otherwise a
// prefix of it followed by "-" and a hash of the whole name. name must be a
// DNS subdomain (which every object name is), and so is the result; a
// subdomain of at most 63 characters is also a valid label value.
func gatewayShortenName(name string, maxLen int) string {
	if len(name) <= maxLen {
		return name
	}
	return gatewayHashedName(name, name, maxLen)
}

// gatewayHashedName cuts prefix to leave room for a hash of source and
// appends it. The cut prefix is trimmed of trailing '-' and '.' so that every
// DNS label in the result still ends with a letter or digit.
func gatewayHashedName(prefix, source string, maxLen int) string {
	sum := sha256.Sum256([]byte(source))
	hash := hex.EncodeToString(sum[:])[:gatewayNameHashLen]
	keep := maxLen - len(hash) - 1
	if len(prefix) > keep {
		prefix = prefix[:keep]
	}
	prefix = strings.TrimRight(prefix, "-.")
	if prefix == "" {
		return hash
	}
	return prefix + "-" + hash
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
	return gatewayHashedName(prefix, gatewayName, gatewayDNSLabelMax)
}
