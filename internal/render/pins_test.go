package render

import (
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
)

func TestCertificatePins(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	cur, old := strings.Repeat("a", 64), strings.Repeat("b", 64)
	withPrev := func(until time.Time) *popv1.CertificateStatus {
		return &popv1.CertificateStatus{SerialNumber: "0ABC", SHA256: cur,
			Previous: &popv1.PreviousCertificate{SerialNumber: "12", SHA256: old, AcceptedUntil: metav1.NewTime(until)}}
	}
	tests := []struct {
		desc     string
		cert     *popv1.CertificateStatus
		revoked  []popv1.SerialNumber
		want     []string
		wantNext time.Time
	}{
		{desc: "no certificate yet pins to nothing", cert: nil, want: []string{}},
		{desc: "certificate without a digest yet pins to nothing", cert: &popv1.CertificateStatus{SerialNumber: "1"}, want: []string{}},
		{desc: "current only", cert: &popv1.CertificateStatus{SerialNumber: "ABC", SHA256: cur}, want: []string{cur}},
		{desc: "previous within its grace", cert: withPrev(now.Add(time.Minute)), want: []string{cur, old}, wantNext: now.Add(time.Minute)},
		{desc: "previous at the end of its grace", cert: withPrev(now), want: []string{cur}},
		{desc: "previous after its grace", cert: withPrev(now.Add(-time.Second)), want: []string{cur}},
		{desc: "current revoked, case and leading zeros ignored", cert: &popv1.CertificateStatus{SerialNumber: "ABC", SHA256: cur},
			revoked: []popv1.SerialNumber{"000abc"}, want: []string{}},
		{desc: "previous revoked within its grace", cert: withPrev(now.Add(time.Hour)), revoked: []popv1.SerialNumber{"12"}, want: []string{cur}},
		{desc: "both revoked", cert: withPrev(now.Add(time.Hour)), revoked: []popv1.SerialNumber{"12", "abc"}, want: []string{}},
		{desc: "another serial revoked", cert: &popv1.CertificateStatus{SerialNumber: "ABC", SHA256: cur},
			revoked: []popv1.SerialNumber{"ABCD"}, want: []string{cur}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			got, next := CertificatePins(tt.cert, tt.revoked, now)
			if got == nil || !slices.Equal(got, tt.want) {
				t.Errorf("pins = %#v, want %#v", got, tt.want)
			}
			if !next.Equal(tt.wantNext) {
				t.Errorf("next = %v, want %v", next, tt.wantNext)
			}
		})
	}
}

func TestNormalizeSerial(t *testing.T) {
	for in, want := range map[string]string{"0a1B": "A1B", "A1B": "A1B", "00": "0", "": "", " ff ": "FF"} {
		if got := NormalizeSerial(in); got != want {
			t.Errorf("NormalizeSerial(%q) = %q, want %q", in, got, want)
		}
	}
}
