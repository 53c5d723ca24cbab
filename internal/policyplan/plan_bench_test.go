package policyplan

import (
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
)

// BenchmarkPlan10k plans a gateway of 10,000 connections at once (the
// encoding of entries is not included). The shard reconciler plans one
// shard, about 1/64 of this, per change; the whole plan is the cost the
// gateway reconciler used to pay on every connection change.
func BenchmarkPlan10k(b *testing.B) {
	gw := &popv1.PopulationGateway{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "gw"}}
	gw.Spec.CatalogRef.Name = "cat"
	catalog := &popv1.FieldCatalog{ObjectMeta: metav1.ObjectMeta{Name: "cat"}}
	catalog.Spec.Fields = []popv1.CatalogField{
		{Name: "fullName", Sensitivity: popv1.SensitivityPersonal},
		{Name: "dateOfBirth", Sensitivity: popv1.SensitivityPersonal},
	}
	conns := make([]*popv1.AgencyConnection, 10000)
	for i := range conns {
		c := &popv1.AgencyConnection{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: fmt.Sprintf("c%d", i)}}
		c.Spec.AgencyCode = fmt.Sprintf("A%05d", i)
		c.Spec.GatewayRef.Name = "gw"
		c.Spec.AllowedFields = []popv1.FieldPath{"fullName", "dateOfBirth"}
		c.Spec.AllowedOperations = []popv1.Operation{popv1.OperationLookup}
		conns[i] = c
	}
	in := Input{GatewayKey: types.NamespacedName{Namespace: "ns", Name: "gw"}, Gateway: gw, Catalog: catalog,
		Connections: conns, Now: time.Now()}
	b.ReportAllocs()
	for b.Loop() {
		if res := Plan(in); len(res.Verdicts) != len(conns) {
			b.Fatal("verdicts missing")
		}
	}
}
