package identity

import (
	"crypto/x509"
	"errors"
	"net/url"
	"testing"
)

func TestAgencyFromURI(t *testing.T) {
	tests := []struct {
		uri  string
		code string
		ok   bool
	}{
		{"spiffe://popconnect.io/agency/BYT", "BYT", true},
		{"spiffe://popconnect.io/agency/BCA-01", "BCA-01", true},
		{"spiffe://popconnect.io/agency/byt", "", false},
		{"spiffe://popconnect.io/agency/", "", false},
		{"spiffe://popconnect.io/agency/BYT/extra", "", false},
		{"spiffe://evil.io/agency/BYT", "", false},
		{"spiffe://popconnect.io:443/agency/BYT", "", false},
		{"https://popconnect.io/agency/BYT", "", false},
		{"spiffe://popconnect.io/agency/BYT?x=1", "", false},
		{"spiffe://popconnect.io/agency/BY%54", "", false},
		{"spiffe://user@popconnect.io/agency/BYT", "", false},
		{"spiffe://popconnect.io/workload/BYT", "", false},
	}
	for _, tc := range tests {
		u, err := url.Parse(tc.uri)
		if err != nil {
			t.Fatal(err)
		}
		code, ok := AgencyFromURI(u)
		if code != tc.code || ok != tc.ok {
			t.Errorf("AgencyFromURI(%s) = %q, %v; want %q, %v", tc.uri, code, ok, tc.code, tc.ok)
		}
	}
}

func TestAgencyFromCertificate(t *testing.T) {
	uris := func(ss ...string) *x509.Certificate {
		c := &x509.Certificate{}
		for _, s := range ss {
			u, _ := url.Parse(s)
			c.URIs = append(c.URIs, u)
		}
		return c
	}
	tests := []struct {
		name string
		cert *x509.Certificate
		code string
		err  error
	}{
		{"one", uris("spiffe://popconnect.io/agency/BYT"), "BYT", nil},
		{"other URIs ignored", uris("https://example.vn", "spiffe://popconnect.io/agency/BYT"), "BYT", nil},
		{"same twice", uris("spiffe://popconnect.io/agency/BYT", "spiffe://popconnect.io/agency/BYT"), "BYT", nil},
		{"two agencies", uris("spiffe://popconnect.io/agency/BYT", "spiffe://popconnect.io/agency/BCA"), "", ErrManyAgencies},
		{"none", uris(), "", ErrNoAgencyURI},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, err := AgencyFromCertificate(tc.cert)
			if code != tc.code || !errors.Is(err, tc.err) {
				t.Fatalf("got %q, %v; want %q, %v", code, err, tc.code, tc.err)
			}
		})
	}
	if _, err := AgencyFromChains(nil); !errors.Is(err, ErrNoCertificate) {
		t.Fatalf("no chains: %v", err)
	}
}
