package controllers

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/event"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
)

// TestPinsChanged: only a change of what the pins are made of wakes the
// shard reconciler, not a status that merely names the Secret.
func TestPinsChanged(t *testing.T) {
	withCert := func(c *popv1.CertificateStatus) *popv1.AgencyConnection {
		return &popv1.AgencyConnection{Status: popv1.AgencyConnectionStatus{Certificate: c}}
	}
	issued := &popv1.CertificateStatus{SecretName: "s", SerialNumber: "AB", SHA256: "aa"}
	renewed := &popv1.CertificateStatus{SecretName: "s", SerialNumber: "CD", SHA256: "bb",
		Previous: &popv1.PreviousCertificate{SerialNumber: "AB", SHA256: "aa", AcceptedUntil: metav1.Unix(100, 0)}}
	tests := []struct {
		name     string
		old, new *popv1.CertificateStatus
		want     bool
	}{
		{"first status names only the Secret", nil, &popv1.CertificateStatus{SecretName: "s"}, false},
		{"notAfter alone", issued, &popv1.CertificateStatus{SecretName: "s", SerialNumber: "AB", SHA256: "aa", NotAfter: &metav1.Time{}}, false},
		{"issued", &popv1.CertificateStatus{SecretName: "s"}, issued, true},
		{"renewed", issued, renewed, true},
		{"grace over", renewed, &popv1.CertificateStatus{SecretName: "s", SerialNumber: "CD", SHA256: "bb"}, true},
		{"unchanged", renewed, renewed, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := pinsChanged.Update(event.UpdateEvent{ObjectOld: withCert(tc.old), ObjectNew: withCert(tc.new)})
			if got != tc.want {
				t.Errorf("pinsChanged = %t, want %t", got, tc.want)
			}
		})
	}
}
