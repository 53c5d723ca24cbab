package render

import (
	"strings"
	"time"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
)

// CertificatePins is the list of certificate digests a connection's policy
// entry pins the agency to: the current certificate's, and the previous
// one's while its grace period lasts, leaving out any whose serial number is
// revoked. It is never nil: a connection without a usable certificate pins
// to nothing, so nobody gets in as that agency (a nil list would mean "any
// certificate the CA verifies" to the gateway). next is when the list
// changes by itself (the previous certificate's acceptedUntil), zero when
// it does not.
func CertificatePins(cert *popv1.CertificateStatus, revoked []popv1.SerialNumber, now time.Time) (pins []string, next time.Time) {
	pins = []string{}
	if cert == nil {
		return pins, time.Time{}
	}
	isRevoked := func(serial string) bool { return SerialRevoked(serial, revoked) }
	if cert.SHA256 != "" && cert.SerialNumber != "" && !isRevoked(cert.SerialNumber) {
		pins = append(pins, cert.SHA256)
	}
	if p := cert.Previous; p != nil && p.SHA256 != "" && now.Before(p.AcceptedUntil.Time) && !isRevoked(p.SerialNumber) &&
		p.SHA256 != cert.SHA256 {
		pins = append(pins, p.SHA256)
		next = p.AcceptedUntil.Time
	}
	return pins, next
}

// NormalizeSerial is a hex serial number in the one form serials are
// compared in: upper case, without leading zeros (status shows serials so,
// users may copy them from openssl with zeros or in lower case).
func NormalizeSerial(serial string) string {
	s := strings.TrimLeft(strings.ToUpper(strings.TrimSpace(serial)), "0")
	if s == "" && serial != "" {
		return "0"
	}
	return s
}

// SerialRevoked reports whether serial is among the revoked serial numbers.
func SerialRevoked(serial string, revoked []popv1.SerialNumber) bool {
	if serial == "" {
		return false
	}
	n := NormalizeSerial(serial)
	for _, r := range revoked {
		if NormalizeSerial(string(r)) == n {
			return true
		}
	}
	return false
}
