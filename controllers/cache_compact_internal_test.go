package controllers

import (
	"testing"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
)

// TestCompactConnection: the connection cache's transform changes no value
// (metadata included)
// (only how the strings and slices are held), drops what dropUnread drops,
// and leaves no spare capacity in the slices it copies.
func TestCompactConnection(t *testing.T) {
	conn := shardTestConnection("health", "byt", "gw", "BYT")
	conn.Finalizers = append(make([]string, 0, 4), FinalizerNetworkPolicy)
	conn.Labels = map[string]string{"team": "health", "tier": "1"}
	yes := true
	conn.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Namespace", Name: "health", UID: "u", Controller: &yes}}
	conn.Spec.Purpose, conn.Spec.LegalBasis = "Identify applicants.", "Decree 13/2023"
	conn.Spec.AllowedFields = append(make([]popv1.FieldPath, 0, 8), "fullName", "birthDate", "gender")
	conn.Spec.AllowedOperations = []popv1.Operation{popv1.OperationLookup}
	conn.Spec.ClientCertificate.IssuerRef = popv1.IssuerReference{Name: "ca", Kind: "ClusterIssuer"}
	conn.Status.Conditions = append(make([]metav1.Condition, 0, 8),
		metav1.Condition{Type: popv1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Ready", Message: "ok"},
		metav1.Condition{Type: popv1.ConditionProgrammed, Status: metav1.ConditionFalse, Reason: "Pending", Message: "wait"})
	want := conn.DeepCopy()
	conn.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}
	conn.Annotations = map[string]string{lastAppliedAnnotation: "{}"}

	out, err := compactConnection(conn)
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*popv1.AgencyConnection)
	if !equality.Semantic.DeepEqual(got, want) {
		t.Errorf("compacted connection differs:\n got %+v\nwant %+v", got, want)
	}
	for name, c := range map[string][2]int{
		"finalizers":        {len(got.Finalizers), cap(got.Finalizers)},
		"allowedFields":     {len(got.Spec.AllowedFields), cap(got.Spec.AllowedFields)},
		"allowedOperations": {len(got.Spec.AllowedOperations), cap(got.Spec.AllowedOperations)},
		"conditions":        {len(got.Status.Conditions), cap(got.Status.Conditions)},
	} {
		if c[0] != c[1] {
			t.Errorf("%s: len %d, cap %d", name, c[0], c[1])
		}
	}
}
