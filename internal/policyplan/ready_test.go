package policyplan

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
)

var readyNow = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

// readyCase plans one connection on a gateway whose catalog has fullName
// (Personal) and religion (Sensitive), after mutate.
func readyCase(mutate func(*popv1.AgencyConnection)) *Verdict {
	gw := &popv1.PopulationGateway{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "gw"}}
	gw.Spec.CatalogRef.Name = "cat"
	catalog := &popv1.FieldCatalog{ObjectMeta: metav1.ObjectMeta{Name: "cat"}}
	catalog.Spec.Fields = []popv1.CatalogField{
		{Name: "fullName", Sensitivity: popv1.SensitivityPersonal},
		{Name: "religion", Sensitivity: popv1.SensitivitySensitive},
	}
	conn := &popv1.AgencyConnection{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "c"}}
	conn.Spec.AgencyCode = "BYT"
	conn.Spec.GatewayRef.Name = "gw"
	conn.Spec.AllowedFields = []popv1.FieldPath{"fullName"}
	conn.Spec.AllowedOperations = []popv1.Operation{popv1.OperationLookup}
	if mutate != nil {
		mutate(conn)
	}
	res := Plan(Input{GatewayKey: types.NamespacedName{Namespace: "ns", Name: "gw"}, Gateway: gw, Catalog: catalog,
		Connections: []*popv1.AgencyConnection{conn}, Now: readyNow})
	return &res.Verdicts[0]
}

// allTrue are the other conditions, all True.
func allTrue() map[string]Condition {
	out := map[string]Condition{}
	for _, t := range []string{popv1.ConditionCertificateReady, popv1.ConditionFieldsValid, popv1.ConditionNetworkReady, popv1.ConditionProgrammed} {
		out[t] = Condition{Type: t, Status: metav1.ConditionTrue, Reason: "OK", Message: t + " ok"}
	}
	return out
}

func TestReady(t *testing.T) {
	past := metav1.NewTime(readyNow.Add(-time.Minute))
	future := metav1.NewTime(readyNow.Add(time.Hour))
	tests := []struct {
		desc       string
		mutate     func(*popv1.AgencyConnection)
		conditions func(map[string]Condition)
		wantStatus metav1.ConditionStatus
		wantReason string
	}{
		{"all true", nil, nil, metav1.ConditionTrue, popv1.ReasonReady},
		{"validUntil ahead is still ready", func(c *popv1.AgencyConnection) { c.Spec.ValidUntil = &future }, nil,
			metav1.ConditionTrue, popv1.ReasonReady},
		{"suspended wins over everything", func(c *popv1.AgencyConnection) {
			c.Spec.Suspended = true
			c.Spec.AllowedFields = []popv1.FieldPath{"nickname"}
		}, nil, metav1.ConditionFalse, popv1.ReasonSuspended},
		{"expired", func(c *popv1.AgencyConnection) { c.Spec.ValidUntil = &past }, nil, metav1.ConditionFalse, popv1.ReasonExpired},
		{"expired at the very moment", func(c *popv1.AgencyConnection) { c.Spec.ValidUntil = &metav1.Time{Time: readyNow} }, nil,
			metav1.ConditionFalse, popv1.ReasonExpired},
		{"user problem keeps its reason", func(c *popv1.AgencyConnection) {
			c.Spec.AllowedFields = []popv1.FieldPath{"religion"}
		}, nil, metav1.ConditionFalse, popv1.ReasonLegalBasisRequired},
		{"certificate issuing is pending", nil, func(m map[string]Condition) {
			m[popv1.ConditionCertificateReady] = Condition{Status: metav1.ConditionFalse, Reason: popv1.ReasonIssuing, Message: "issuing"}
		}, metav1.ConditionFalse, popv1.ReasonPending},
		{"missing condition is pending", nil, func(m map[string]Condition) { delete(m, popv1.ConditionProgrammed) },
			metav1.ConditionFalse, popv1.ReasonPending},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			conds := allTrue()
			if tc.conditions != nil {
				tc.conditions(conds)
			}
			got := readyCase(tc.mutate).Ready(conds)
			if got.Type != popv1.ConditionReady || got.Status != tc.wantStatus || got.Reason != tc.wantReason || got.Message == "" {
				t.Errorf("got %+v, want %s/%s with a message", got, tc.wantStatus, tc.wantReason)
			}
		})
	}
}
