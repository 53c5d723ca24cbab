package demo

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// demoAgencyCodes are the agencies whose certificates the demo uses.
func demoAgencyCodes() []string { return []string{"BYT", "VCB", "TCT", deletedAgency} }

// agency is one agency's mTLS client, built from the Secret cert-manager
// issued for its connection.
type agency struct {
	code   string
	client *http.Client
}

// response is what the demo needs of a gateway answer.
type response struct {
	status     int
	body       []byte
	requestID  string
	retryAfter string
}

func (r *runner) loadAgencies(ctx context.Context) error {
	r.agencies = map[string]*agency{}
	for _, code := range demoAgencyCodes() {
		if err := r.loadAgency(ctx, code); err != nil {
			return err
		}
	}
	return nil
}

// loadAgency builds the agency's client from its connection's Secret.
func (r *runner) loadAgency(ctx context.Context, code string) error {
	name, ok := r.connNames[code]
	if !ok {
		return fmt.Errorf("no connection for agency %s", code)
	}
	dir := filepath.Join(r.agenciesDir(), code)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	files, err := r.secretFiles(ctx, name+"-client-tls", dir, map[string]string{"tls.crt": "tls.crt", "tls.key": "tls.key", "ca.crt": "ca.crt"})
	if err != nil {
		return err
	}
	pair, err := tls.LoadX509KeyPair(files["tls.crt"], files["tls.key"])
	if err != nil {
		return fmt.Errorf("agency %s key pair: %w", code, err)
	}
	leaf := pair.Leaf
	if len(leaf.URIs) != 1 {
		return fmt.Errorf("agency %s certificate has %d URI SANs, want 1", code, len(leaf.URIs))
	}
	roots, err := r.roots(files["ca.crt"])
	if err != nil {
		return err
	}
	r.agencies[code] = &agency{code: code, client: newClient(roots, &pair)}
	if err := r.n.expect(leaf.URIs[0].String() == "spiffe://popconnect.io/agency/"+code,
		"%s certificate from Secret %s-client-tls: %s, valid until %s", code, name, leaf.URIs[0], leaf.NotAfter.UTC().Format(time.DateOnly)); err != nil {
		return err
	}
	return nil
}

func (r *runner) roots(caFile string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("reading CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no certificate", caFile)
	}
	return pool, nil
}

// newClient is an agency's HTTP client: TLS 1.3 only, verifying the
// gateway under its certificate's DNS name while dialling 127.0.0.1.
// cert, when set, is always presented: with tls.Config.Certificates Go
// would withhold a certificate whose issuer the server does not list as
// acceptable, and the foreign-CA case must really reach the gateway.
func newClient(roots *x509.CertPool, cert *tls.Certificate) *http.Client {
	cfg := &tls.Config{RootCAs: roots, ServerName: servingName, MinVersion: tls.VersionTLS13}
	if cert != nil {
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:     cfg,
			MaxIdleConnsPerHost: 100,
			DisableCompression:  true,
		},
	}
}

// call sends one request to the gateway; body, when set, is JSON.
func (r *runner) call(ctx context.Context, c *http.Client, method, path string, body []byte) (*response, error) {
	return r.callAt(ctx, c, r.gwAddr, method, path, body)
}

// callAt is call to the gateway process listening on addr.
func (r *runner) callAt(ctx context.Context, c *http.Client, addr, method, path string, body []byte) (*response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, "https://"+addr+path, rd)
	if err != nil {
		return nil, fmt.Errorf("building request: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.caseReference != "" {
		req.Header.Set("Popconnect-Case-Reference", r.caseReference)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("reading response: %w", err)
	}
	return &response{status: resp.StatusCode, body: b, requestID: resp.Header.Get("X-Request-Id"), retryAfter: resp.Header.Get("Retry-After")}, nil
}

// agencyCall is call for a demo agency, narrated and counted for the audit
// check; what labels the request in the audit step when non-empty.
func (r *runner) agencyCall(ctx context.Context, code, method, path string, body []byte, what string) (*response, error) {
	a, ok := r.agencies[code]
	if !ok {
		return nil, fmt.Errorf("agency %s has no client", code)
	}
	line := fmt.Sprintf("%s %s  (as %s)", method, path, code)
	if body != nil {
		line = fmt.Sprintf("%s %s %s  (as %s)", method, path, body, code)
	}
	if r.caseReference != "" {
		line += "  Popconnect-Case-Reference: " + r.caseReference
	}
	r.n.cmd(line)
	resp, err := r.call(ctx, a.client, method, path, body)
	if err != nil {
		return nil, fmt.Errorf("%s %s as %s: %w", method, path, code, err)
	}
	r.responses++
	if what != "" {
		r.shown = append(r.shown, shownRequest{requestID: resp.requestID, what: what})
	}
	shown := strings.TrimSpace(string(resp.body))
	if len(shown) > 160 {
		shown = fmt.Sprintf("(%d bytes of JSON)", len(resp.body))
	}
	r.n.info("-> %d %s  %s", resp.status, http.StatusText(resp.status), shown)
	return resp, nil
}

// errorCode extracts "error" from a gateway error body.
func errorCode(body []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		return ""
	}
	return e.Error
}
