package controllers

import (
	"reflect"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
)

func TestDropUnread(t *testing.T) {
	tests := []struct {
		desc        string
		annotations map[string]string
		want        map[string]string
	}{
		{"no annotations", nil, nil},
		{"only the last-applied copy", map[string]string{lastAppliedAnnotation: `{"big":"copy"}`}, nil},
		{"other annotations are kept", map[string]string{lastAppliedAnnotation: "{}", "team": "a"}, map[string]string{"team": "a"}},
		{"nothing to drop", map[string]string{"team": "a"}, map[string]string{"team": "a"}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			conn := &popv1.AgencyConnection{ObjectMeta: metav1.ObjectMeta{
				Name: "c", Annotations: tc.annotations, Labels: map[string]string{"l": "v"},
				ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
			}, Spec: popv1.AgencyConnectionSpec{AgencyCode: "BYT"}}
			out, err := dropUnread(conn)
			if err != nil {
				t.Fatal(err)
			}
			got := out.(*popv1.AgencyConnection)
			if !reflect.DeepEqual(got.Annotations, tc.want) {
				t.Errorf("annotations %v, want %v", got.Annotations, tc.want)
			}
			if got.ManagedFields != nil {
				t.Error("managedFields must be dropped")
			}
			if got.Labels["l"] != "v" || got.Spec.AgencyCode != "BYT" {
				t.Error("everything else must be kept")
			}
		})
	}
}
