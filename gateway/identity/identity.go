// Package identity derives an agency's identity from its verified client
// certificate: the URI SAN spiffe://popconnect.io/agency/<agencyCode>.
package identity

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/popconnect/popconnect/gateway/policy"
)

// TrustDomain and PathPrefix make up the agency SPIFFE ID.
const (
	TrustDomain = "popconnect.io"
	PathPrefix  = "/agency/"
)

// Errors returned when a certificate carries no usable identity.
var (
	ErrNoCertificate = errors.New("no verified client certificate")
	ErrNoAgencyURI   = errors.New("client certificate has no spiffe://popconnect.io/agency/<code> URI SAN")
	ErrManyAgencies  = errors.New("client certificate names more than one agency")
)

// AgencyFromURI returns the agency code of one URI SAN, or ok=false when the
// URI is not an agency SPIFFE ID.
func AgencyFromURI(u *url.URL) (code string, ok bool) {
	if u == nil || u.Scheme != "spiffe" || u.Host != TrustDomain || u.User != nil || u.Port() != "" ||
		u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" || u.RawPath != "" {
		return "", false
	}
	code, found := strings.CutPrefix(u.Path, PathPrefix)
	if !found || !policy.ValidAgencyCode(code) {
		return "", false
	}
	return code, true
}

// AgencyFromChains returns the agency named by the leaf of the verified
// chains. Only verified chains count: the TLS layer has checked the CA,
// validity period and client-auth usage before this is called.
func AgencyFromChains(chains [][]*x509.Certificate) (string, error) {
	if len(chains) == 0 || len(chains[0]) == 0 {
		return "", ErrNoCertificate
	}
	return AgencyFromCertificate(chains[0][0])
}

// AgencyFromCertificate returns the agency code of a certificate that has
// exactly one agency URI SAN (repeated SANs for the same code are fine).
func AgencyFromCertificate(cert *x509.Certificate) (string, error) {
	var found string
	for _, u := range cert.URIs {
		code, ok := AgencyFromURI(u)
		if !ok {
			continue
		}
		if found != "" && found != code {
			return "", fmt.Errorf("%w: %s and %s", ErrManyAgencies, found, code)
		}
		found = code
	}
	if found == "" {
		return "", ErrNoAgencyURI
	}
	return found, nil
}
