package admission

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
)

func TestCheckPrivileges(t *testing.T) {
	gw := &popv1.PopulationGateway{ObjectMeta: metav1.ObjectMeta{Namespace: "gw", Name: "national"}}
	granted := gw.DeepCopy()
	granted.Spec.PrivilegedConnections = &popv1.PrivilegedConnections{
		AccessHistory:   []popv1.ConnectionReference{{Namespace: "portal", Name: "citizen-portal"}},
		DisclosureDelay: []popv1.ConnectionReference{{Namespace: "police", Name: "c06"}},
	}
	conn := func(ns, name string, delay time.Duration, ops ...popv1.Operation) *popv1.AgencyConnection {
		c := &popv1.AgencyConnection{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		c.Spec.AllowedOperations = ops
		if delay != 0 {
			c.Spec.DisclosureDelay = &metav1.Duration{Duration: delay}
		}
		return c
	}
	year := 8760 * time.Hour
	cases := []struct {
		name string
		gw   *popv1.PopulationGateway
		conn *popv1.AgencyConnection
		want string // a part of the message; "" admits
	}{
		{"plain reads need nothing", gw, conn("moh", "byt", 0, popv1.OperationLookup, popv1.OperationVerify), ""},
		{"a zero delay is no delay", gw, conn("moh", "byt", 0, popv1.OperationLookup), ""},
		{"access history, nothing granted", gw, conn("portal", "citizen-portal", 0, popv1.OperationAccessHistory), "spec.allowedOperations includes AccessHistory"},
		{"access history, granted", granted, conn("portal", "citizen-portal", 0, popv1.OperationAccessHistory), ""},
		{"access history, same name elsewhere", granted, conn("moh", "citizen-portal", 0, popv1.OperationAccessHistory), "moh/citizen-portal"},
		{"access history granted is not a delay", granted, conn("portal", "citizen-portal", year, popv1.OperationAccessHistory), "spec.disclosureDelay"},
		{"delay, nothing granted", gw, conn("police", "c06", year, popv1.OperationLookup), "spec.disclosureDelay hides"},
		{"delay, granted", granted, conn("police", "c06", year, popv1.OperationLookup), ""},
		{"delay granted is not access history", granted, conn("police", "c06", year, popv1.OperationLookup, popv1.OperationAccessHistory), "AccessHistory"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := CompilePrivilegeRule(c.gw).Check(c.conn)
			switch {
			case c.want == "" && p != nil:
				t.Fatalf("refused: %s", p.Message)
			case c.want != "" && (p == nil || p.Reason != popv1.ReasonPrivilegeNotGranted || !strings.Contains(p.Message, c.want)):
				t.Fatalf("got %+v, want PrivilegeNotGranted naming %q", p, c.want)
			}
		})
	}
}
