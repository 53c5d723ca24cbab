package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// GatewayReference names the PopulationGateway a connection goes through.
type GatewayReference struct {
	// name is the name of the PopulationGateway.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`

	// namespace is the namespace of the PopulationGateway; the connection's
	// own namespace when omitted.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Namespace string `json:"namespace,omitempty"`
}

// RateLimit bounds how fast and how much an agency may read.
// +kubebuilder:validation:XValidation:rule="self.burst >= self.requestsPerSecond",message="burst must be >= requestsPerSecond"
type RateLimit struct {
	// requestsPerSecond is the sustained request rate, 1 to 100000.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100000
	RequestsPerSecond int32 `json:"requestsPerSecond"`

	// burst is how many requests may arrive at once; at least requestsPerSecond.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	Burst int32 `json:"burst"`

	// dailyQuota is how many requests the agency may make per day (local
	// midnight to midnight); unlimited when omitted.
	// +optional
	// +kubebuilder:validation:Minimum=1
	DailyQuota *int64 `json:"dailyQuota,omitempty"`
}

// ClientCertificateSpec says how the agency's mTLS client certificate is issued.
// +kubebuilder:validation:XValidation:rule="!has(self.renewBefore) || duration(self.renewBefore) < duration(has(self.duration) ? self.duration : '2160h')",message="renewBefore must be < duration"
type ClientCertificateSpec struct {
	// issuerRef is the cert-manager issuer that signs the client certificate.
	// +required
	IssuerRef IssuerReference `json:"issuerRef"`

	// duration is the certificate's lifetime, as a Go duration; at least 1h,
	// 2160h (90 days) when omitted.
	// +optional
	// +kubebuilder:default="2160h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1h')",message="duration must be >= 1h"
	Duration *metav1.Duration `json:"duration,omitempty"`

	// renewBefore is how long before expiry cert-manager renews the
	// certificate, as a Go duration; at least 5m and less than duration. When
	// omitted, cert-manager renews at two thirds of the lifetime.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('5m')",message="renewBefore must be >= 5m"
	RenewBefore *metav1.Duration `json:"renewBefore,omitempty"`

	// revokedSerialNumbers are serial numbers, in hex as
	// status.certificate.serialNumber shows them, of this connection's
	// certificates that no gateway may accept any more (a leaked key, a
	// decommissioned client). A listed certificate is refused at once, on
	// connections already open too; when it is the current one, the operator
	// has cert-manager issue a new one.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=256
	RevokedSerialNumbers []SerialNumber `json:"revokedSerialNumbers,omitempty"`
}

// SerialNumber is a certificate serial number in hex, without separators
// (case does not matter), e.g. 3F2A9C0D11.
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=64
// +kubebuilder:validation:Pattern=`^[0-9A-Fa-f]+$`
type SerialNumber string

// CIDR is an IPv4 or IPv6 network in CIDR notation.
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=43
// +kubebuilder:validation:XValidation:rule="isCIDR(self)",message="CIDRs must be valid IPv4 or IPv6 CIDRs, e.g. 203.0.113.0/24 or 2001:db8::/32"
type CIDR string

// NetworkSpec says from where the agency may reach the gateway.
// +kubebuilder:validation:XValidation:rule="has(self.sourceCIDRs) || has(self.namespaceSelector) || has(self.podSelector)",message="network must set at least one of sourceCIDRs, namespaceSelector or podSelector"
type NetworkSpec struct {
	// sourceCIDRs are the IPv4 or IPv6 networks the agency connects from,
	// e.g. 203.0.113.0/24.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	SourceCIDRs []CIDR `json:"sourceCIDRs,omitempty"`

	// namespaceSelector selects in-cluster namespaces whose pods may connect
	// (all their pods, or those podSelector selects).
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`

	// podSelector selects in-cluster pods that may connect: in the namespaces
	// namespaceSelector selects, or in the connection's own namespace when
	// namespaceSelector is omitted.
	// +optional
	PodSelector *metav1.LabelSelector `json:"podSelector,omitempty"`
}

// AgencyConnectionSpec is one agency's connection to one gateway.
// +kubebuilder:validation:XValidation:rule="self.agencyCode == oldSelf.agencyCode",message="agencyCode is immutable: it is the identity in the agency's certificate; create a new AgencyConnection instead"
type AgencyConnectionSpec struct {
	// agencyCode identifies the agency: upper-case letters, digits and
	// hyphens, 2 to 32 characters, starting with a letter or digit. It is
	// carried in the client certificate as the URI SAN
	// spiffe://popconnect.io/agency/<agencyCode>, and is unique per gateway.
	// +required
	// +kubebuilder:validation:MinLength=2
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^[A-Z0-9][A-Z0-9-]{1,31}$`
	AgencyCode string `json:"agencyCode"`

	// displayName is the agency's name for humans.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	DisplayName string `json:"displayName,omitempty"`

	// gatewayRef names the PopulationGateway the agency reads through.
	// +required
	GatewayRef GatewayReference `json:"gatewayRef"`

	// purpose says why the agency reads the data.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self.trim().size() > 0",message="purpose must not be blank: say why the agency reads the data"
	Purpose string `json:"purpose"`

	// legalBasis cites the law or agreement that allows the reading;
	// required when any allowed field is Sensitive.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	LegalBasis string `json:"legalBasis,omitempty"`

	// allowedFields are the catalog fields the agency may read, 1 to 256,
	// without duplicates.
	// +required
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=256
	AllowedFields []FieldPath `json:"allowedFields"`

	// allowedOperations are the operations the agency may perform: Lookup,
	// Verify, BatchLookup and/or AccessHistory (a citizen's access history,
	// for the citizen portal's own connection only).
	// +required
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=4
	AllowedOperations []Operation `json:"allowedOperations"`

	// rateLimit bounds how fast and how much the agency may read.
	// +required
	RateLimit RateLimit `json:"rateLimit"`

	// clientCertificate says how the agency's client certificate is issued.
	// +required
	ClientCertificate ClientCertificateSpec `json:"clientCertificate"`

	// network says from where the agency may reach the gateway.
	// +optional
	Network *NetworkSpec `json:"network,omitempty"`

	// validUntil is the end of the data-sharing agreement (RFC 3339); from
	// then on access stops by itself.
	// +optional
	ValidUntil *metav1.Time `json:"validUntil,omitempty"`

	// suspended, when true, cuts the agency's access at once and keeps
	// everything else in place.
	// +optional
	Suspended bool `json:"suspended,omitempty"`

	// disclosureDelay (a Go duration such as 8760h, 0 to 87600h) hides the
	// agency's reads from the citizen's access history until that long has
	// passed since each read (covert investigations). The time each read
	// becomes visible is fixed in its audit record when it is made: a later
	// change applies to later reads only. Omitted: visible at once.
	// +optional
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('0s') && duration(self) <= duration('87600h')",message="disclosureDelay must be between 0s and 87600h"
	DisclosureDelay *metav1.Duration `json:"disclosureDelay,omitempty"`

	// requireCaseReference, when true, refuses (400 case_reference_required)
	// every request of the agency that does not name its case in the
	// Popconnect-Case-Reference header.
	// +optional
	RequireCaseReference bool `json:"requireCaseReference,omitempty"`
}

// CertificateStatus describes the agency's issued client certificate.
type CertificateStatus struct {
	// secretName is the Secret, in the connection's namespace, that holds the
	// agency's key, certificate and CA.
	// +optional
	SecretName string `json:"secretName,omitempty"`

	// notAfter is when the current certificate expires.
	// +optional
	NotAfter *metav1.Time `json:"notAfter,omitempty"`

	// serialNumber is the current certificate's serial number, in hex.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	SerialNumber string `json:"serialNumber,omitempty"`

	// sha256 is the lowercase hex SHA-256 of the current certificate's DER,
	// as cert-manager issued it for this connection's own Certificate. The
	// operator pins the agency to it in the gateway's policy, so that any
	// other certificate, even one with the same URI SAN from the same CA, is
	// refused.
	// +optional
	// +kubebuilder:validation:Pattern=`^[0-9a-f]{64}$`
	SHA256 string `json:"sha256,omitempty"`

	// previous is the certificate the current one replaced, still accepted
	// until previous.acceptedUntil so that a renewal drops no client that
	// has not loaded the new certificate yet.
	// +optional
	Previous *PreviousCertificate `json:"previous,omitempty"`
}

// PreviousCertificate is a replaced certificate still accepted for a grace
// period after a renewal.
type PreviousCertificate struct {
	// serialNumber is the replaced certificate's serial number, in hex.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	SerialNumber string `json:"serialNumber"`

	// sha256 is the lowercase hex SHA-256 of the replaced certificate's DER.
	// +required
	// +kubebuilder:validation:Pattern=`^[0-9a-f]{64}$`
	SHA256 string `json:"sha256"`

	// acceptedUntil is when gateways stop accepting the replaced
	// certificate: the end of the grace period, or its own notAfter if
	// earlier.
	// +required
	AcceptedUntil metav1.Time `json:"acceptedUntil"`
}

// AgencyConnectionStatus is the observed state of a connection.
type AgencyConnectionStatus struct {
	// observedGeneration is the generation this status was computed from.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions are Ready, CertificateReady, FieldsValid, NetworkReady and
	// Programmed.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// certificate describes the issued client certificate.
	// +optional
	Certificate *CertificateStatus `json:"certificate,omitempty"`
}

// AgencyConnection is one agency's connection to one PopulationGateway: its
// mTLS client certificate, the fields it may read, its rate limits, its
// network sources and the end of its data-sharing agreement.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=ac,categories=popconnect
// +kubebuilder:printcolumn:name="Agency",type=string,JSONPath=`.spec.agencyCode`
// +kubebuilder:printcolumn:name="Gateway",type=string,JSONPath=`.spec.gatewayRef.name`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,priority=1,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Suspended",type=boolean,JSONPath=`.spec.suspended`
// +kubebuilder:printcolumn:name="Expires",type=string,format=date-time,JSONPath=`.spec.validUntil`
// +kubebuilder:printcolumn:name="Cert-Expiry",type=string,format=date-time,priority=1,JSONPath=`.status.certificate.notAfter`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type AgencyConnection struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the object's metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the agency's connection.
	// +required
	Spec AgencyConnectionSpec `json:"spec"`

	// status is the observed state of the connection.
	// +optional
	Status AgencyConnectionStatus `json:"status,omitempty"`
}

// AgencyConnectionList is a list of AgencyConnections.
// +kubebuilder:object:root=true
type AgencyConnectionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AgencyConnection `json:"items"`
}

func init() {
	SchemeBuilder.Register(&AgencyConnection{}, &AgencyConnectionList{})
}
