package controllers

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
)

func TestPreviousCertificate(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	a, b, c := strings.Repeat("a", 64), strings.Repeat("b", 64), strings.Repeat("c", 64)
	at := func(d time.Duration) *metav1.Time { t := metav1.NewTime(now.Add(d)); return &t }
	status := func(serial, sha string, notAfter *metav1.Time, prev *popv1.PreviousCertificate) *popv1.CertificateStatus {
		return &popv1.CertificateStatus{SerialNumber: serial, SHA256: sha, NotAfter: notAfter, Previous: prev}
	}
	prevB := &popv1.PreviousCertificate{SerialNumber: "B", SHA256: b, AcceptedUntil: *at(30 * time.Minute)}
	tests := []struct {
		desc     string
		old, cur *popv1.CertificateStatus
		want     *popv1.PreviousCertificate
	}{
		{desc: "first issuance has no previous", old: nil, cur: status("A", a, at(time.Hour), nil)},
		{desc: "unchanged certificate keeps no previous", old: status("A", a, at(time.Hour), nil), cur: status("A", a, at(time.Hour), nil)},
		{desc: "a renewal keeps the old one for the grace",
			old: status("B", b, at(24*time.Hour), nil), cur: status("A", a, at(48*time.Hour), nil),
			want: &popv1.PreviousCertificate{SerialNumber: "B", SHA256: b, AcceptedUntil: *at(time.Hour)}},
		{desc: "the grace ends at the old certificate's expiry if earlier",
			old: status("B", b, at(10*time.Minute), nil), cur: status("A", a, at(48*time.Hour), nil),
			want: &popv1.PreviousCertificate{SerialNumber: "B", SHA256: b, AcceptedUntil: *at(10 * time.Minute)}},
		{desc: "an expired old certificate is not kept",
			old: status("B", b, at(-time.Minute), nil), cur: status("A", a, at(48*time.Hour), nil)},
		{desc: "a recorded previous is kept during its grace",
			old: status("A", a, at(time.Hour), prevB), cur: status("A", a, at(time.Hour), nil), want: prevB},
		{desc: "a recorded previous goes after its grace",
			old: status("A", a, at(time.Hour), &popv1.PreviousCertificate{SerialNumber: "B", SHA256: b, AcceptedUntil: *at(0)}),
			cur: status("A", a, at(time.Hour), nil)},
		{desc: "a second renewal within the grace replaces the previous",
			old: status("A", a, at(time.Hour), prevB), cur: status("C", c, at(48*time.Hour), nil),
			want: &popv1.PreviousCertificate{SerialNumber: "A", SHA256: a, AcceptedUntil: *at(time.Hour)}},
		{desc: "a digest not known yet makes no previous", old: status("B", b, at(time.Hour), nil), cur: status("", "", at(48*time.Hour), nil)},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			got := previousCertificate(tt.old, tt.cur, now, time.Hour)
			if (got == nil) != (tt.want == nil) || (got != nil && (got.SerialNumber != tt.want.SerialNumber ||
				got.SHA256 != tt.want.SHA256 || !got.AcceptedUntil.Equal(&tt.want.AcceptedUntil))) {
				t.Errorf("previousCertificate = %+v, want %+v", got, tt.want)
			}
		})
	}
}
