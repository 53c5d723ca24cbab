package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// CatalogField is one field the population database exposes.
type CatalogField struct {
	// name is the dotted path of the field in a citizen record: segments of
	// letters and digits starting with a letter, e.g. permanentAddress.province.
	// +required
	Name FieldPath `json:"name"`

	// sensitivity is how the field is classified: Public, Personal, Sensitive
	// (reading it needs a legalBasis) or Identifier.
	// +required
	Sensitivity Sensitivity `json:"sensitivity"`

	// description says what the field holds.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Description string `json:"description,omitempty"`
}

// FieldCatalogSpec lists what the population database exposes.
type FieldCatalogSpec struct {
	// fields are the fields of a citizen record, one entry per field, unique
	// by name.
	// +required
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=1024
	Fields []CatalogField `json:"fields"`
}

// FieldCatalogStatus is the observed state of a FieldCatalog.
type FieldCatalogStatus struct {
	// observedGeneration is the generation this status was computed from.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// fieldCount is the number of fields in the catalog.
	// +optional
	FieldCount int32 `json:"fieldCount,omitempty"`

	// conditions describe the catalog's state; Ready is True once it was read.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// FieldCatalog describes the fields of a citizen record that the population
// database exposes and how sensitive each is. Connections are checked against it.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=fc,categories=popconnect
// +kubebuilder:printcolumn:name="Fields",type=integer,JSONPath=`.status.fieldCount`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type FieldCatalog struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the object's metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec lists the fields of a citizen record.
	// +required
	Spec FieldCatalogSpec `json:"spec"`

	// status is the observed state of the catalog.
	// +optional
	Status FieldCatalogStatus `json:"status,omitempty"`
}

// FieldCatalogList is a list of FieldCatalogs.
// +kubebuilder:object:root=true
type FieldCatalogList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []FieldCatalog `json:"items"`
}

func init() {
	SchemeBuilder.Register(&FieldCatalog{}, &FieldCatalogList{})
}
