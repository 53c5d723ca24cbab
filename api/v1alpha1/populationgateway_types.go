package v1alpha1

import (
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// CatalogReference names a cluster-scoped FieldCatalog.
type CatalogReference struct {
	// name is the name of the FieldCatalog.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`
}

// UpstreamSpec says where the population database API is and how to reach it.
type UpstreamSpec struct {
	// url is the base URL of the population database API, http:// or https://.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHostname() != ''",message="url must be an absolute http:// or https:// URL with a host, e.g. https://popdb.example.svc:8443"
	URL string `json:"url"`

	// caSecretRef names a Secret in the gateway's namespace whose ca.crt
	// verifies the upstream's serving certificate. When omitted, an https
	// upstream is verified against the system roots.
	// +optional
	CASecretRef *SecretReference `json:"caSecretRef,omitempty"`

	// timeout bounds each upstream call, as a Go duration (e.g. 5s); 100ms to 5m.
	// +optional
	// +kubebuilder:default="5s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('100ms') && duration(self) <= duration('5m')",message="timeout must be between 100ms and 5m"
	Timeout *metav1.Duration `json:"timeout,omitempty"`

	// cidrs are the IPv4 or IPv6 networks the upstream's addresses are in,
	// for a url whose host is a DNS name outside the cluster. The gateway's
	// default-deny NetworkPolicy lets its pods reach only these networks,
	// on the url's port: NetworkPolicy cannot match a DNS name, and opening
	// the port to every address would let a compromised gateway pod send
	// citizens' data anywhere. Without them such an upstream gets no egress
	// at all (the gateway's NetworkReady condition says so). Not needed, and
	// ignored, when the host is an IP address or an in-cluster Service
	// (<service>.<namespace>.svc).
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	CIDRs []CIDR `json:"cidrs,omitempty"`
}

// ServerCertificateSpec says how the gateway's serving certificate is issued.
type ServerCertificateSpec struct {
	// issuerRef is the cert-manager issuer that signs the serving certificate.
	// +required
	IssuerRef IssuerReference `json:"issuerRef"`

	// dnsNames are the names agencies use to reach the gateway; the first
	// is the certificate's common name.
	// +required
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:items:Pattern=`^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	DNSNames []string `json:"dnsNames"`
}

// ClientCASpec says which CA verifies agencies' client certificates.
type ClientCASpec struct {
	// secretRef names a Secret in the gateway's namespace whose ca.crt
	// verifies agency client certificates.
	// +required
	SecretRef SecretReference `json:"secretRef"`
}

// NamespacesFrom says which namespaces' connections a gateway accepts.
// +kubebuilder:validation:Enum=Same;All;Selector
type NamespacesFrom string

const (
	// NamespacesFromSame accepts connections from the gateway's own namespace only.
	NamespacesFromSame NamespacesFrom = "Same"
	// NamespacesFromAll accepts connections from every namespace.
	NamespacesFromAll NamespacesFrom = "All"
	// NamespacesFromSelector accepts connections from the namespaces whose
	// labels match the selector.
	NamespacesFromSelector NamespacesFrom = "Selector"
)

// AllowedNamespaces says from which namespaces AgencyConnections may use a
// gateway (as Gateway API's allowedRoutes.namespaces).
// +kubebuilder:validation:XValidation:rule="(has(self.from) && self.from == 'Selector') == has(self.selector)",message="selector must be set when from is Selector, and only then"
type AllowedNamespaces struct {
	// from is Same (the gateway's own namespace, the default), All, or
	// Selector (the namespaces selector matches).
	// +optional
	// +kubebuilder:default=Same
	From NamespacesFrom `json:"from,omitempty"`

	// selector selects, by their labels, the namespaces whose connections
	// are accepted; required with from: Selector.
	// +optional
	Selector *metav1.LabelSelector `json:"selector,omitempty"`
}

// AllowedConnections says which AgencyConnections may use a gateway.
type AllowedConnections struct {
	// namespaces says from which namespaces connections are accepted; only
	// the gateway's own namespace when omitted.
	// +optional
	Namespaces *AllowedNamespaces `json:"namespaces,omitempty"`
}

// SecretKeyReference names one data key of a Secret in the namespace of the
// referring object.
type SecretKeyReference struct {
	// name is the name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`

	// key is the data key of the Secret that holds the value: letters,
	// digits, '-', '_' and '.', as every Secret data key.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	// +kubebuilder:validation:XValidation:rule="self != '.' && !self.startsWith('..')",message="key must be a Secret data key: not '.' and not starting with '..'"
	Key string `json:"key"`
}

// PostgresAuditSpec says where the gateway stores its audit records in
// PostgreSQL.
type PostgresAuditSpec struct {
	// urlSecretRef names the Secret, in the gateway's namespace, and its
	// key that holds the database's connection URL
	// (postgres://user:password@host:5432/db?sslmode=verify-full; whitespace
	// around it is ignored). The gateway pods mount that key as a read-only
	// file: a change of the Secret's name or key rolls the pods, a change of
	// its content is read at the pods' next start (restart the Deployment
	// to apply a rotated password).
	// +required
	URLSecretRef SecretKeyReference `json:"urlSecretRef"`

	// to are the networks (ipBlock) or pods (podSelector, namespaceSelector)
	// of the database, as in a NetworkPolicy's egress rule. The gateway's
	// default-deny NetworkPolicy lets its pods reach only these peers, on
	// port, over TCP: a policy cannot match the URL's host name. Without
	// them the gateway pods may not reach the database at all, and the
	// gateway's NetworkReady condition is False (EgressUnresolved).
	// +optional
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:XValidation:rule="self.all(p, has(p.ipBlock) != (has(p.podSelector) || has(p.namespaceSelector)))",message="each peer in to must set either ipBlock, or podSelector and/or namespaceSelector"
	// +kubebuilder:validation:XValidation:rule="self.all(p, !has(p.ipBlock) || isCIDR(p.ipBlock.cidr))",message="to[].ipBlock.cidr must be a valid IPv4 or IPv6 CIDR, e.g. 10.20.0.0/16"
	To []networkingv1.NetworkPolicyPeer `json:"to,omitempty"`

	// port is the database's TCP port that to's peers listen on (the pods'
	// port, for a database behind a Service), 1 to 65535.
	// +optional
	// +kubebuilder:default=5432
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port *int32 `json:"port,omitempty"`
}

// AuditSpec says where the gateway stores its audit records. Without it
// (or without postgres) they are written to the gateway's stdout, one JSON
// line each, for the node's log pipeline.
type AuditSpec struct {
	// postgres stores the audit records in a PostgreSQL database, each
	// committed before the request it records is answered.
	// +optional
	Postgres *PostgresAuditSpec `json:"postgres,omitempty"`
}

// RedisTLSSpec says how the gateway verifies a Redis server over TLS.
type RedisTLSSpec struct {
	// caSecretRef names a Secret in the gateway's namespace whose ca.crt
	// verifies the server's certificate; the system roots when omitted.
	// +optional
	CASecretRef *SecretReference `json:"caSecretRef,omitempty"`
}

// RedisRateLimitStoreSpec says which Redis server the gateway's replicas
// count the agencies' rates and daily quotas in.
type RedisRateLimitStoreSpec struct {
	// address is the server's host:port, e.g. redis.popconnect-system.svc:6379
	// (an IPv6 address in brackets).
	// +required
	// +kubebuilder:validation:MinLength=3
	// +kubebuilder:validation:MaxLength=261
	// +kubebuilder:validation:Pattern=`^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*|\[[0-9a-fA-F:.]+\]):[0-9]{1,5}$`
	Address string `json:"address"`

	// db is the Redis database number, 0 to 15.
	// +optional
	// +kubebuilder:default=0
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=15
	DB *int32 `json:"db,omitempty"`

	// passwordSecretRef names the Secret, in the gateway's namespace, and
	// its key that holds the server's password (whitespace around it is
	// ignored). The gateway pods mount that key as a read-only file, read at
	// their start.
	// +optional
	PasswordSecretRef *SecretKeyReference `json:"passwordSecretRef,omitempty"`

	// tls, when set, connects over TLS (rediss://).
	// +optional
	TLS *RedisTLSSpec `json:"tls,omitempty"`

	// to are the networks (ipBlock) or pods (podSelector, namespaceSelector)
	// of the server, as in a NetworkPolicy's egress rule. The gateway's
	// default-deny NetworkPolicy lets its pods reach only these peers, on
	// port, over TCP. Without them the gateway pods may not reach Redis,
	// each enforces its share of the limits, and the gateway's NetworkReady
	// condition is False (EgressUnresolved).
	// +optional
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:XValidation:rule="self.all(p, has(p.ipBlock) != (has(p.podSelector) || has(p.namespaceSelector)))",message="each peer in to must set either ipBlock, or podSelector and/or namespaceSelector"
	// +kubebuilder:validation:XValidation:rule="self.all(p, !has(p.ipBlock) || isCIDR(p.ipBlock.cidr))",message="to[].ipBlock.cidr must be a valid IPv4 or IPv6 CIDR, e.g. 10.20.0.0/16"
	To []networkingv1.NetworkPolicyPeer `json:"to,omitempty"`

	// port is the server's TCP port that to's peers listen on (the pods'
	// port, for a server behind a Service), 1 to 65535; address's port when
	// omitted.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port *int32 `json:"port,omitempty"`
}

// RateLimitStoreSpec says where the gateway's replicas count the agencies'
// rates and daily quotas. Without it each replica counts alone: with N
// replicas an agency gets up to N times its limits, and a restarted pod
// starts a fresh day's count.
type RateLimitStoreSpec struct {
	// redis counts them in one Redis server shared by every replica, so
	// that an agency gets its declared limits in total, across restarts
	// and rollouts. While the server is unreachable each replica enforces
	// its share (limit / replicas).
	// +optional
	Redis *RedisRateLimitStoreSpec `json:"redis,omitempty"`
}

// PopulationGatewaySpec is the desired state of a gateway.
type PopulationGatewaySpec struct {
	// replicas is the number of gateway pods, 0 to 100.
	// +optional
	// +kubebuilder:default=2
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	Replicas *int32 `json:"replicas,omitempty"`

	// image is the gateway container image; the operator's --gateway-image
	// when omitted.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:Pattern=`^\S+$`
	Image string `json:"image,omitempty"`

	// catalogRef names the FieldCatalog this gateway's connections are
	// checked against.
	// +required
	CatalogRef CatalogReference `json:"catalogRef"`

	// upstream is the population database API the gateway fronts.
	// +required
	Upstream UpstreamSpec `json:"upstream"`

	// serverCertificate says how the gateway's serving certificate is issued.
	// +required
	ServerCertificate ServerCertificateSpec `json:"serverCertificate"`

	// clientCA says which CA verifies agencies' client certificates.
	// +required
	ClientCA ClientCASpec `json:"clientCA"`

	// port is the TCP port agencies connect to, 1 to 65535.
	// +optional
	// +kubebuilder:default=8443
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port *int32 `json:"port,omitempty"`

	// allowedConnections says which AgencyConnections may use this gateway.
	// A connection from a namespace it does not allow gets Ready=False with
	// reason NamespaceNotAllowed, and no certificate, NetworkPolicy or
	// policy entry. Only the gateway's own namespace when omitted.
	// +optional
	AllowedConnections *AllowedConnections `json:"allowedConnections,omitempty"`

	// audit says where the gateway stores its audit records; its stdout
	// when omitted. The gateway's AuditReady condition says whether its
	// pods can write them.
	// +optional
	Audit *AuditSpec `json:"audit,omitempty"`

	// rateLimitStore says where the replicas count the agencies' rates
	// and daily quotas; each replica alone when omitted.
	// +optional
	RateLimitStore *RateLimitStoreSpec `json:"rateLimitStore,omitempty"`

	// privilegedConnections names the connections that may use what only
	// the gateway's owner may grant: the AccessHistory operation (every
	// citizen's access history) and a disclosureDelay (reads hidden from
	// the citizen). A connection lives in its agency's namespace, whose
	// editors could otherwise grant these to themselves; one that asks for
	// them without being named here gets Ready=False with reason
	// PrivilegeNotGranted and no policy entry. Nobody when omitted.
	// +optional
	PrivilegedConnections *PrivilegedConnections `json:"privilegedConnections,omitempty"`
}

// PrivilegedConnections lists, by namespace and name, the connections
// granted each privilege.
type PrivilegedConnections struct {
	// accessHistory: the connections that may hold the AccessHistory
	// operation (the citizen portal's).
	// +optional
	// +listType=map
	// +listMapKey=namespace
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=16
	AccessHistory []ConnectionReference `json:"accessHistory,omitempty"`

	// disclosureDelay: the connections that may set spec.disclosureDelay
	// (covert investigations).
	// +optional
	// +listType=map
	// +listMapKey=namespace
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=256
	DisclosureDelay []ConnectionReference `json:"disclosureDelay,omitempty"`
}

// ConnectionReference names one AgencyConnection.
type ConnectionReference struct {
	// namespace is the connection's namespace.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Namespace string `json:"namespace"`

	// name is the connection's name.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`
}

// PopulationGatewayStatus is the observed state of a gateway.
type PopulationGatewayStatus struct {
	// observedGeneration is the generation this status was computed from.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions are Ready, CertificateReady, Available, PolicyReady,
	// NetworkReady and AuditReady.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// activeConnections is how many agencies the gateway currently serves.
	// +optional
	ActiveConnections int32 `json:"activeConnections,omitempty"`

	// policyVersion is a hash of the policy the gateway has been given.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	PolicyVersion string `json:"policyVersion,omitempty"`

	// availableReplicas is the number of gateway pods ready to serve.
	// +optional
	AvailableReplicas int32 `json:"availableReplicas,omitempty"`
}

// PopulationGateway is one gateway deployment in front of one population
// database API: it enforces the identity, field allow-lists, rate limits and
// audit of the AgencyConnections that reference it.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=pgw,categories=popconnect
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Replicas",type=integer,JSONPath=`.spec.replicas`
// +kubebuilder:printcolumn:name="Available",type=integer,JSONPath=`.status.availableReplicas`
// +kubebuilder:printcolumn:name="Connections",type=integer,JSONPath=`.status.activeConnections`
// +kubebuilder:printcolumn:name="Reason",type=string,priority=1,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Policy",type=string,priority=1,JSONPath=`.status.policyVersion`
// +kubebuilder:printcolumn:name="Audit",type=string,priority=1,JSONPath=`.status.conditions[?(@.type=="AuditReady")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type PopulationGateway struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the object's metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired state of the gateway.
	// +required
	Spec PopulationGatewaySpec `json:"spec"`

	// status is the observed state of the gateway.
	// +optional
	Status PopulationGatewayStatus `json:"status,omitempty"`
}

// PopulationGatewayList is a list of PopulationGateways.
// +kubebuilder:object:root=true
type PopulationGatewayList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []PopulationGateway `json:"items"`
}

func init() {
	SchemeBuilder.Register(&PopulationGateway{}, &PopulationGatewayList{})
}
