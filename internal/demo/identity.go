package demo

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

// foreignCertificate makes a CA on the fly and a client certificate from
// it that claims BYT's identity, as an attacker without access to the real
// CA could.
func foreignCertificate(code string) (tls.Certificate, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("generating CA key: %w", err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "not-popconnect-ca"},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("creating CA certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("parsing CA certificate: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("generating client key: %w", err)
	}
	id, err := url.Parse("spiffe://popconnect.io/agency/" + code)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("agency URI: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: code},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		URIs:         []*url.URL{id},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("creating client certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der, caDER}, PrivateKey: key}, nil
}

// refused runs one request that must not be served: a TLS error, or an
// HTTP 403 if the gateway answered at all.
func (r *runner) refused(ctx context.Context, c *http.Client, label, path string) error {
	r.n.cmd(fmt.Sprintf("GET %s  (%s)", path, label))
	resp, err := r.call(ctx, c, http.MethodGet, path, nil)
	if err != nil {
		r.n.info("-> %v", err)
		return r.n.expect(true, "refused during the TLS handshake: no HTTP request reached the gateway")
	}
	r.responses++
	r.n.info("-> %d %s", resp.status, resp.body)
	return r.n.expect(resp.status == http.StatusForbidden, "refused with 403 (got %d)", resp.status)
}

func (r *runner) identity(ctx context.Context) error {
	c, err := r.citizen()
	if err != nil {
		return err
	}
	path := "/v1/citizens/" + c.NationalID
	roots, err := r.roots(filepath.Join(r.gatewayDir(), "client-ca.crt"))
	if err != nil {
		return err
	}
	if err := r.refused(ctx, newClient(roots, nil), "no client certificate", path); err != nil {
		return err
	}
	foreign, err := foreignCertificate("BYT")
	if err != nil {
		return err
	}
	if err := r.refused(ctx, newClient(roots, &foreign), "a certificate for spiffe://popconnect.io/agency/BYT from a CA made up on the spot", path); err != nil {
		return err
	}
	// The gateway logs each refused handshake, a moment after the client
	// sees the alert; give it that moment, then show that it noticed.
	var seen int
	for deadline := time.Now().Add(time.Second); seen < 2 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		log, err := os.ReadFile(r.gateway.log)
		if err != nil {
			return fmt.Errorf("reading gateway log: %w", err)
		}
		seen = countHandshakeErrors(log)
	}
	r.n.info("gateway log (%s): %d TLS handshake errors recorded", r.rel(r.gateway.log), seen)
	return nil
}
