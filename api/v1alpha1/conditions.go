package v1alpha1

// Condition types of AgencyConnection and PopulationGateway.
const (
	// ConditionReady is True when the object does its job now: for a
	// connection, every other condition is True and access is allowed.
	ConditionReady = "Ready"
	// ConditionCertificateReady is True when the certificate is issued and current.
	ConditionCertificateReady = "CertificateReady"
	// ConditionFieldsValid is False when a connection's spec conflicts with
	// the gateway's FieldCatalog.
	ConditionFieldsValid = "FieldsValid"
	// ConditionNetworkReady is True when the connection's NetworkPolicy is in
	// place; on a gateway, when its default-deny NetworkPolicy names every
	// peer its pods must reach (DNS, upstream, API server).
	ConditionNetworkReady = "NetworkReady"
	// ConditionProgrammed is True when the connection's entry is written to
	// its gateway's policy objects.
	ConditionProgrammed = "Programmed"
	// ConditionAvailable is True when the gateway's Deployment has enough
	// available pods.
	ConditionAvailable = "Available"
	// ConditionPolicyReady is True when the gateway's policy objects are
	// written and current.
	ConditionPolicyReady = "PolicyReady"
	// ConditionAuditReady is True when every gateway pod that answered
	// GET /auditz can write its audit records; False when one cannot (it
	// then refuses requests); Unknown when no pod could be asked.
	ConditionAuditReady = "AuditReady"
	// ConditionRateLimitShared is set on a gateway with
	// spec.rateLimitStore.redis: True when every gateway pod that answered
	// GET /ratelimitz counts the agencies' limits in Redis, shared; False
	// when one enforces its share alone (Redis unreachable) or counts
	// alone (no store); Unknown when no pod could be asked. It does not
	// change Ready: a pod on its share keeps serving.
	ConditionRateLimitShared = "RateLimitShared"
)

// Condition reasons. A reason that names a problem only the user can fix is
// also the reason of the Warning event emitted for it.
const (
	// ReasonReady: everything is in place.
	ReasonReady = "Ready"
	// ReasonPending: work is in progress that needs nothing from the user.
	ReasonPending = "Pending"
	// ReasonSuspended: spec.suspended is true.
	ReasonSuspended = "Suspended"
	// ReasonExpired: spec.validUntil has passed.
	ReasonExpired = "Expired"
	// ReasonUnknownField: an allowed field is not in the catalog.
	ReasonUnknownField = "UnknownField"
	// ReasonLegalBasisRequired: a Sensitive field is allowed without legalBasis.
	ReasonLegalBasisRequired = "LegalBasisRequired"
	// ReasonDuplicateAgencyCode: another, older connection owns the agency code.
	ReasonDuplicateAgencyCode = "DuplicateAgencyCode"
	// ReasonNamespaceNotAllowed: the gateway's spec.allowedConnections does
	// not admit connections from the connection's namespace.
	ReasonNamespaceNotAllowed = "NamespaceNotAllowed"
	// ReasonPrivilegeNotGranted: the connection asks for the AccessHistory
	// operation or a disclosureDelay, and the gateway's
	// spec.privilegedConnections does not name it.
	ReasonPrivilegeNotGranted = "PrivilegeNotGranted"
	// ReasonGatewayNotFound: the referenced PopulationGateway does not exist.
	ReasonGatewayNotFound = "GatewayNotFound"
	// ReasonCatalogNotFound: the gateway's FieldCatalog does not exist.
	ReasonCatalogNotFound = "CatalogNotFound"
	// ReasonFieldsValid: every allowed field is in the catalog and allowed.
	ReasonFieldsValid = "FieldsValid"
	// ReasonIssued: the certificate is issued and current.
	ReasonIssued = "Issued"
	// ReasonIssuing: cert-manager is issuing the certificate.
	ReasonIssuing = "Issuing"
	// ReasonNotRequested: no certificate is requested for a refused connection.
	ReasonNotRequested = "NotRequested"
	// ReasonApplied: the child object is written.
	ReasonApplied = "Applied"
	// ReasonNotProgrammed: the connection was left out of the gateway's policy.
	ReasonNotProgrammed = "NotProgrammed"
	// ReasonProgrammed: the connection's policy entry is written.
	ReasonProgrammed = "Programmed"
	// ReasonDeploymentUnavailable: the gateway's Deployment has too few available pods.
	ReasonDeploymentUnavailable = "DeploymentUnavailable"
	// ReasonScaledToZero: the gateway has zero replicas by request.
	ReasonScaledToZero = "ScaledToZero"
	// ReasonNameConflict: an object the operator would write already exists
	// under that name and belongs to someone else; the operator neither
	// overwrites nor deletes it.
	ReasonNameConflict = "NameConflict"
	// ReasonEgressUnresolved: the gateway's egress policy cannot name a peer
	// (the API server's endpoints are not known yet, or the upstream is a
	// DNS name outside the cluster and spec.upstream.cidrs is empty), so no
	// egress to it is opened.
	ReasonEgressUnresolved = "EgressUnresolved"
	// ReasonAuditSinkWritable: every gateway pod that answered writes its
	// audit records.
	ReasonAuditSinkWritable = "AuditSinkWritable"
	// ReasonAuditSinkFailing: a gateway pod cannot write its audit records
	// (the database is unreachable, refuses the login, is full...), so it
	// refuses requests with 503 audit_unavailable.
	ReasonAuditSinkFailing = "AuditSinkFailing"
	// ReasonAuditStateUnknown: no gateway pod could be asked for its audit
	// state (none runs, or none answered).
	ReasonAuditStateUnknown = "AuditStateUnknown"
	// ReasonSharedCountInUse: every gateway pod that answered counts the
	// limits in Redis, one count for all.
	ReasonSharedCountInUse = "SharedCountInUse"
	// ReasonFallbackToShare: a gateway pod cannot reach Redis and enforces
	// its share of every limit (limit / the live replicas it last counted)
	// until Redis answers again.
	ReasonFallbackToShare = "FallbackToShare"
	// ReasonNoStore: a gateway pod counts the limits alone, without Redis
	// (a pod from before spec.rateLimitStore was set, during a rollout).
	ReasonNoStore = "NoStore"
	// ReasonRateLimitStateUnknown: no gateway pod could be asked where it
	// counts the limits (none runs, or none answered).
	ReasonRateLimitStateUnknown = "RateLimitStateUnknown"
)
