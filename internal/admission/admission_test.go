package admission

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func catalog() *popv1.FieldCatalog {
	return &popv1.FieldCatalog{
		ObjectMeta: metav1.ObjectMeta{Name: "citizen"},
		Spec: popv1.FieldCatalogSpec{Fields: []popv1.CatalogField{
			{Name: "fullName", Sensitivity: popv1.SensitivityPersonal},
			{Name: "permanentAddress.province", Sensitivity: popv1.SensitivityPersonal},
			{Name: "religion", Sensitivity: popv1.SensitivitySensitive},
			{Name: "ethnicity", Sensitivity: popv1.SensitivitySensitive},
		}},
	}
}

func conn(ns, name, code, gw string, age time.Duration, fields ...popv1.FieldPath) *popv1.AgencyConnection {
	return &popv1.AgencyConnection{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, CreationTimestamp: metav1.NewTime(t0.Add(-age))},
		Spec: popv1.AgencyConnectionSpec{
			AgencyCode:    code,
			GatewayRef:    popv1.GatewayReference{Name: gw},
			AllowedFields: fields,
		},
	}
}

func TestCheckFields(t *testing.T) {
	tests := []struct {
		desc       string
		fields     []popv1.FieldPath
		legalBasis string
		wantReason string
		wantInMsg  []string
	}{
		{"all known and non-sensitive", []popv1.FieldPath{"fullName", "permanentAddress.province"}, "", "", nil},
		{"sensitive with legal basis", []popv1.FieldPath{"fullName", "religion"}, "Decree 13", "", nil},
		{"unknown field", []popv1.FieldPath{"fullName", "salary"}, "", popv1.ReasonUnknownField,
			[]string{`"salary" is not in FieldCatalog "citizen"`, "remove it"}},
		{"two unknown fields", []popv1.FieldPath{"salary", "bankAccount"}, "", popv1.ReasonUnknownField,
			[]string{`"salary", "bankAccount" are not in`}},
		{"parent of a catalog field is not the field", []popv1.FieldPath{"permanentAddress"}, "", popv1.ReasonUnknownField,
			[]string{`"permanentAddress"`}},
		{"sensitive without legal basis", []popv1.FieldPath{"fullName", "religion", "ethnicity"}, "", popv1.ReasonLegalBasisRequired,
			[]string{`"religion", "ethnicity" are Sensitive`, "spec.legalBasis"}},
		{"blank legal basis counts as none", []popv1.FieldPath{"religion"}, "   ", popv1.ReasonLegalBasisRequired, nil},
		{"unknown is reported before legal basis", []popv1.FieldPath{"religion", "salary"}, "", popv1.ReasonUnknownField, nil},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			c := conn("ns", "c", "BYT", "gw", 0, tc.fields...)
			c.Spec.LegalBasis = tc.legalBasis
			p := CheckFields(c, catalog())
			if tc.wantReason == "" {
				if p != nil {
					t.Fatalf("got problem %v, want none", p)
				}
				return
			}
			if p == nil || p.Reason != tc.wantReason {
				t.Fatalf("got %v, want reason %s", p, tc.wantReason)
			}
			for _, s := range tc.wantInMsg {
				if !strings.Contains(p.Message, s) {
					t.Errorf("message %q does not contain %q", p.Message, s)
				}
			}
		})
	}
}

func TestCheckAgencyCode(t *testing.T) {
	deleting := conn("ns-a", "old-deleting", "BYT", "gw", 3*time.Hour)
	now := metav1.NewTime(t0)
	deleting.DeletionTimestamp = &now

	tests := []struct {
		desc      string
		conn      *popv1.AgencyConnection
		peers     []*popv1.AgencyConnection
		wantOwner string // "" when no problem; else a substring of the message
	}{
		{"alone", conn("ns-a", "c", "BYT", "gw", time.Hour), nil, ""},
		{"itself among peers", conn("ns-a", "c", "BYT", "gw", time.Hour),
			[]*popv1.AgencyConnection{conn("ns-a", "c", "BYT", "gw", time.Hour)}, ""},
		{"younger on the same gateway is refused", conn("ns-a", "young", "BYT", "gw", time.Minute),
			[]*popv1.AgencyConnection{conn("ns-a", "old", "BYT", "gw", time.Hour)}, "ns-a/old, which is older"},
		{"older on the same gateway keeps it", conn("ns-a", "old", "BYT", "gw", time.Hour),
			[]*popv1.AgencyConnection{conn("ns-a", "young", "BYT", "gw", time.Minute)}, ""},
		{"same namespace, another gateway is fine", conn("ns-a", "second", "BYT", "gw2", time.Minute),
			[]*popv1.AgencyConnection{conn("ns-a", "first", "BYT", "gw", time.Hour)}, ""},
		{"another namespace is refused, even on another gateway", conn("ns-b", "c", "BYT", "gw2", time.Minute),
			[]*popv1.AgencyConnection{conn("ns-a", "first", "BYT", "gw", time.Hour)}, `belongs to namespace "ns-a"`},
		{"the oldest namespace owns it", conn("ns-a", "first", "BYT", "gw", time.Hour),
			[]*popv1.AgencyConnection{conn("ns-b", "c", "BYT", "gw", time.Minute)}, ""},
		{"a connection being deleted no longer owns it", conn("ns-b", "c", "BYT", "gw", time.Minute),
			[]*popv1.AgencyConnection{deleting}, ""},
		{"other codes are ignored", conn("ns-b", "c", "BYT", "gw", time.Minute),
			[]*popv1.AgencyConnection{conn("ns-a", "x", "TCT", "gw", time.Hour)}, ""},
		{"same creation second: namespace then name decide", conn("ns-b", "c", "BYT", "gw", time.Hour),
			[]*popv1.AgencyConnection{conn("ns-a", "z", "BYT", "gw", time.Hour)}, `belongs to namespace "ns-a"`},
		{"same creation second: the incumbent keeps it", admitted(conn("ns-b", "c", "BYT", "gw", time.Hour)),
			[]*popv1.AgencyConnection{conn("ns-a", "z", "BYT", "gw", time.Hour)}, ""},
		{"same creation second: a newcomer is refused", conn("ns-a", "z", "BYT", "gw", time.Hour),
			[]*popv1.AgencyConnection{admitted(conn("ns-b", "c", "BYT", "gw", time.Hour))}, `belongs to namespace "ns-b"`},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			p := CheckAgencyCode(tc.conn, tc.peers)
			if tc.wantOwner == "" {
				if p != nil {
					t.Fatalf("got %v, want no problem", p)
				}
				return
			}
			if p == nil || p.Reason != popv1.ReasonDuplicateAgencyCode || !strings.Contains(p.Message, tc.wantOwner) {
				t.Fatalf("got %v, want DuplicateAgencyCode mentioning %q", p, tc.wantOwner)
			}
		})
	}
}

func TestExpired(t *testing.T) {
	c := conn("ns", "c", "BYT", "gw", 0)
	if Expired(c, t0) {
		t.Error("no validUntil: not expired")
	}
	vu := metav1.NewTime(t0)
	c.Spec.ValidUntil = &vu
	if !Expired(c, t0) {
		t.Error("at validUntil: expired")
	}
	if Expired(c, t0.Add(-time.Nanosecond)) {
		t.Error("before validUntil: not expired")
	}
}

// admitted marks a connection as holding its code (Ready with a reason
// other than DuplicateAgencyCode).
func admitted(c *popv1.AgencyConnection) *popv1.AgencyConnection {
	c.Status.Conditions = []metav1.Condition{{Type: popv1.ConditionReady, Status: metav1.ConditionTrue, Reason: popv1.ReasonReady}}
	return c
}

func TestCheckNamespace(t *testing.T) {
	gw := func(ac *popv1.AllowedNamespaces) *popv1.PopulationGateway {
		g := &popv1.PopulationGateway{ObjectMeta: metav1.ObjectMeta{Namespace: "popdb", Name: "gw"}}
		if ac != nil {
			g.Spec.AllowedConnections = &popv1.AllowedConnections{Namespaces: ac}
		}
		return g
	}
	tenants := &metav1.LabelSelector{MatchLabels: map[string]string{"popconnect.io/tenant": "true"}}
	tests := []struct {
		desc     string
		gw       *popv1.PopulationGateway
		ns       string
		labels   map[string]string
		wantDeny bool
	}{
		{desc: "omitted is Same: own namespace", gw: gw(nil), ns: "popdb"},
		{desc: "omitted is Same: other namespace refused", gw: gw(nil), ns: "evil", wantDeny: true},
		{desc: "Same: other namespace refused", gw: gw(&popv1.AllowedNamespaces{From: popv1.NamespacesFromSame}), ns: "evil", wantDeny: true},
		{desc: "All admits any namespace", gw: gw(&popv1.AllowedNamespaces{From: popv1.NamespacesFromAll}), ns: "evil"},
		{desc: "Selector admits a matching namespace", gw: gw(&popv1.AllowedNamespaces{From: popv1.NamespacesFromSelector, Selector: tenants}),
			ns: "byt", labels: map[string]string{"popconnect.io/tenant": "true"}},
		{desc: "Selector refuses a namespace without the label", gw: gw(&popv1.AllowedNamespaces{From: popv1.NamespacesFromSelector, Selector: tenants}),
			ns: "evil", labels: map[string]string{"team": "x"}, wantDeny: true},
		{desc: "Selector admits the gateway's own namespace", gw: gw(&popv1.AllowedNamespaces{From: popv1.NamespacesFromSelector, Selector: tenants}),
			ns: "popdb"},
		{desc: "Selector without selector admits no other namespace", gw: gw(&popv1.AllowedNamespaces{From: popv1.NamespacesFromSelector}),
			ns: "byt", labels: map[string]string{"popconnect.io/tenant": "true"}, wantDeny: true},
		{desc: "invalid selector fails closed", gw: gw(&popv1.AllowedNamespaces{From: popv1.NamespacesFromSelector, Selector: &metav1.LabelSelector{
			MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "a", Operator: "Bogus"}}}}), ns: "byt", wantDeny: true},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			c := conn(tt.ns, "c", "BYT", "gw", 0)
			c.Spec.GatewayRef.Namespace = "popdb"
			p := CheckNamespace(c, tt.gw, tt.labels)
			if (p != nil) != tt.wantDeny {
				t.Fatalf("CheckNamespace = %v, want refused %v", p, tt.wantDeny)
			}
			if p != nil && (p.Reason != popv1.ReasonNamespaceNotAllowed || !strings.Contains(p.Message, tt.ns)) {
				t.Errorf("problem %+v: want reason NamespaceNotAllowed and a message naming namespace %q", p, tt.ns)
			}
		})
	}
}
