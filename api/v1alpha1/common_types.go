package v1alpha1

// Sensitivity classifies a field of a citizen record.
// +kubebuilder:validation:Enum=Public;Personal;Sensitive;Identifier
type Sensitivity string

const (
	// SensitivityPublic is information the state publishes anyway.
	SensitivityPublic Sensitivity = "Public"
	// SensitivityPersonal is personal data: names, dates, addresses.
	SensitivityPersonal Sensitivity = "Personal"
	// SensitivitySensitive is sensitive personal data in the sense of
	// personal-data-protection law (ethnicity, religion, health, biometrics,
	// criminal record...): reading it needs a legal basis.
	SensitivitySensitive Sensitivity = "Sensitive"
	// SensitivityIdentifier is a number that identifies a person or a document.
	SensitivityIdentifier Sensitivity = "Identifier"
)

// Operation is something an agency may do through the gateway.
// +kubebuilder:validation:Enum=Lookup;Verify;BatchLookup;AccessHistory
type Operation string

const (
	// OperationLookup reads one record, projected to the allowed fields.
	OperationLookup Operation = "Lookup"
	// OperationVerify checks submitted values against a record.
	OperationVerify Operation = "Verify"
	// OperationBatchLookup reads up to 100 records in one request.
	OperationBatchLookup Operation = "BatchLookup"
	// OperationAccessHistory answers a citizen's access history; it is for
	// the citizen portal's own connection.
	OperationAccessHistory Operation = "AccessHistory"
)

// FieldPath is a dotted path into a citizen record: segments of letters and
// digits, each starting with a letter, e.g. permanentAddress.province.
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=253
// +kubebuilder:validation:Pattern=`^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9]*)*$`
type FieldPath string

// IssuerReference names a cert-manager issuer.
type IssuerReference struct {
	// name is the name of the Issuer or ClusterIssuer.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`

	// kind is Issuer (in the certificate's namespace) or ClusterIssuer.
	// +required
	// +kubebuilder:validation:Enum=Issuer;ClusterIssuer
	Kind string `json:"kind"`

	// group is the API group of the issuer; cert-manager.io unless an
	// external issuer is used.
	// +optional
	// +kubebuilder:default=cert-manager.io
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Group string `json:"group,omitempty"`
}

// SecretReference names a Secret in the namespace of the referring object.
type SecretReference struct {
	// name is the name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`
}
