// Package render builds the objects popconnect creates, as pure functions of
// the custom resources: the reconcilers apply what these return, and golden
// files under testdata/ pin their output.
package render

const (
	// LabelGateway names the PopulationGateway a child object belongs to;
	// policy shards carry it and the gateway selects its shards by it.
	LabelGateway = "popconnect.io/gateway"
	// LabelConnection names the AgencyConnection a child object belongs to.
	LabelConnection = "popconnect.io/agency-connection"
	// LabelConnectionNamespace is the namespace of that AgencyConnection:
	// its NetworkPolicy lives in the gateway's namespace.
	LabelConnectionNamespace = "popconnect.io/agency-connection-namespace"
	// LabelAgencyCode is the agency code of the connection.
	LabelAgencyCode = "popconnect.io/agency-code"
	// LabelComponent says what a child object is for.
	LabelComponent = "popconnect.io/component"

	// LabelManagedBy marks every object the operator writes, so its caches
	// can hold only those.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// ManagedByValue is LabelManagedBy's value.
	ManagedByValue = "popconnect"
	// LabelName and LabelInstance select a gateway's pods.
	LabelName     = "app.kubernetes.io/name"
	LabelInstance = "app.kubernetes.io/instance"
	// GatewayAppName is LabelName's value on gateway pods.
	GatewayAppName = "popconnect-gateway"

	// FieldOwner is the server-side apply field manager of every write.
	FieldOwner = "popconnect-manager"
)

// GatewayPodLabels are the labels that select a gateway's pods; a long
// gateway name is shortened to a valid label value.
func GatewayPodLabels(gatewayName string) map[string]string {
	return map[string]string{
		LabelName:     GatewayAppName,
		LabelInstance: labelValue(gatewayName),
	}
}
