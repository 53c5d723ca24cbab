package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/popconnect/popconnect/gateway/testpki"
	"github.com/popconnect/popconnect/internal/popdb"
)

// instance is a gateway process run in-process through run().
type instance struct {
	agencyAddr, metricsAddr string
	dir                     string
	auditPath               string
	stdout                  io.Writer // io.Discard when nil
	cancel                  context.CancelFunc
	done                    chan error
}

// fixtureAuditKey is the fixture's audit hash key.
const fixtureAuditKey = "0123456789abcdef0123456789abcdef"

type fixture struct {
	ca, otherCA *testpki.CA
	dir         string
	upstream    string
	gen         *popdb.Generator
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	gen, err := popdb.NewGenerator(5, 1000)
	if err != nil {
		t.Fatal(err)
	}
	up := httptest.NewServer(popdb.Handler(gen))
	t.Cleanup(up.Close)
	f := &fixture{ca: testpki.NewCA(t, "agencies"), otherCA: testpki.NewCA(t, "other"), dir: t.TempDir(), upstream: up.URL, gen: gen}
	server := f.ca.Issue(t, testpki.Options{IPs: []net.IP{net.ParseIP("127.0.0.1")}, Server: true})
	testpki.WriteFile(t, f.dir, "tls.crt", server.CertPEM)
	testpki.WriteFile(t, f.dir, "tls.key", server.KeyPEM)
	testpki.WriteFile(t, f.dir, "ca.crt", f.ca.CertPEM)
	testpki.WriteFile(t, f.dir, "audit.key", []byte(fixtureAuditKey))
	f.writePolicy(t, false)
	return f
}

func (f *fixture) writePolicy(t *testing.T, suspendBYT bool) {
	t.Helper()
	doc := fmt.Sprintf(`{"version":"v-%v","agencies":[
	{"agencyCode":"BYT","allowedFields":["fullName","permanentAddress.province"],"allowedOperations":["Lookup","Verify"],
	 "rateLimit":{"requestsPerSecond":1000,"burst":1000},"suspended":%v},
	{"agencyCode":"QUOTA","allowedFields":["fullName"],"allowedOperations":["Lookup"],"rateLimit":{"requestsPerSecond":1000,"burst":1000,"dailyQuota":1}},
	{"agencyCode":"ENDED","allowedFields":["fullName"],"allowedOperations":["Lookup"],"rateLimit":{"requestsPerSecond":1,"burst":1},"validUntil":"2020-01-01T00:00:00Z"}]}`,
		suspendBYT, suspendBYT)
	testpki.WriteFile(t, f.dir, "policy.json", []byte(doc))
}

func (f *fixture) start(t *testing.T, extra ...string) *instance {
	t.Helper()
	in := &instance{dir: f.dir, auditPath: filepath.Join(t.TempDir(), "audit.log"), done: make(chan error, 1)}
	return f.launch(t, in, f.args(in.auditPath, extra...))
}

// launch runs the gateway in-process with args.
func (f *fixture) launch(t *testing.T, in *instance, args []string) *instance {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	in.cancel = cancel
	listening := make(chan struct{})
	stdout := in.stdout
	if stdout == nil {
		stdout = io.Discard
	}
	go func() {
		in.done <- run(ctx, args, stdout, io.Discard, func(a, m string) {
			in.agencyAddr, in.metricsAddr = a, m
			close(listening)
		})
	}()
	select {
	case <-listening:
	case err := <-in.done:
		t.Fatalf("gateway exited: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("gateway did not listen within 10s")
	}
	t.Cleanup(func() { in.stop(t) })
	return in
}

// args are the gateway's flags for the fixture, auditing to auditPath (to
// what extra says when auditPath is empty).
func (f *fixture) args(auditPath string, extra ...string) []string {
	args := []string{
		"--policy-file", filepath.Join(f.dir, "policy.json"),
		"--upstream-url", f.upstream,
		"--listen-address", "127.0.0.1:0", "--metrics-address", "127.0.0.1:0",
		"--tls-cert-file", filepath.Join(f.dir, "tls.crt"), "--tls-key-file", filepath.Join(f.dir, "tls.key"),
		"--client-ca-file", filepath.Join(f.dir, "ca.crt"),
		"--audit-hash-key-file", filepath.Join(f.dir, "audit.key"),
	}
	if auditPath != "" {
		args = append(args, "--audit-file", auditPath)
	}
	return append(args, extra...)
}

func (in *instance) stop(t *testing.T) {
	in.cancel()
	select {
	case err := <-in.done:
		if err != nil {
			t.Errorf("gateway run: %v", err)
		}
		in.done <- nil // later stops return at once
	case <-time.After(30 * time.Second):
		t.Error("gateway did not stop within 30s")
	}
}

func (f *fixture) client(cert *testpki.Leaf, maxVersion uint16) *http.Client {
	cfg := &tls.Config{RootCAs: f.ca.Pool(), MaxVersion: maxVersion}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{cert.TLS}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 10 * time.Second}
}

func get(t *testing.T, c *http.Client, url string) (int, string, error) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// eventually polls cond, bounded, for conditions that depend on file
// watching.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestGatewayEndToEnd(t *testing.T) {
	f := newFixture(t)
	gw := f.start(t)
	base := "https://" + gw.agencyAddr
	id, _ := popdb.NationalID(9)
	rec := f.gen.Record(9)
	byt := f.client(f.ca.Agency(t, "BYT"), 0)

	status, body, err := get(t, byt, base+"/v1/citizens/"+id)
	if err != nil || status != 200 {
		t.Fatalf("lookup: %d %s %v", status, body, err)
	}
	want := fmt.Sprintf(`{"nationalId":"%s","fullName":"%s","permanentAddress":{"province":"%s"}}`, id, rec.FullName, rec.PermanentAddress.Province)
	if body != want {
		t.Fatalf("lookup body %s, want %s", body, want)
	}

	cases := []struct {
		name    string
		client  *http.Client
		path    string
		status  int
		errCode string
	}{
		{"field not allowed", byt, "/v1/citizens/" + id + "?fields=religion", 403, "field_not_allowed"},
		{"unknown agency", f.client(f.ca.Agency(t, "NOBODY"), 0), "/v1/citizens/" + id, 403, "agency_unknown"},
		{"expired agency", f.client(f.ca.Agency(t, "ENDED"), 0), "/v1/citizens/" + id, 403, "agency_expired"},
		{"no URI SAN", f.client(f.ca.Issue(t, testpki.Options{DNSNames: []string{"byt.example"}}), 0), "/v1/citizens/" + id, 403, "unauthenticated"},
		{"quota first", f.client(f.ca.Agency(t, "QUOTA"), 0), "/v1/citizens/" + id, 200, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body, err := get(t, tc.client, base+tc.path)
			if err != nil || status != tc.status || tc.errCode != "" && !strings.Contains(body, `"error":"`+tc.errCode+`"`) {
				t.Fatalf("got %d %s %v; want %d %s", status, body, err, tc.status, tc.errCode)
			}
		})
	}
	quota := f.client(f.ca.Agency(t, "QUOTA"), 0)
	if status, body, _ := get(t, quota, base+"/v1/citizens/"+id); status != 429 || !strings.Contains(body, "quota_exceeded") {
		t.Fatalf("quota: %d %s", status, body)
	}

	refused := []struct {
		name   string
		client *http.Client
	}{
		{"no client certificate", f.client(nil, 0)},
		{"certificate from another CA", f.client(f.otherCA.Agency(t, "BYT"), 0)},
		{"expired certificate", f.client(f.ca.Issue(t, testpki.Options{URIs: []string{"spiffe://popconnect.io/agency/BYT"},
			NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)}), 0)},
		{"certificate not yet valid", f.client(f.ca.Issue(t, testpki.Options{URIs: []string{"spiffe://popconnect.io/agency/BYT"},
			NotBefore: time.Now().Add(24 * time.Hour), NotAfter: time.Now().Add(48 * time.Hour)}), 0)},
		{"server certificate used as a client certificate", f.client(f.ca.Issue(t, testpki.Options{URIs: []string{"spiffe://popconnect.io/agency/BYT"},
			Server: true}), 0)},
		{"TLS 1.2 by default", f.client(f.ca.Agency(t, "BYT"), tls.VersionTLS12)},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			if status, body, err := get(t, tc.client, base+"/v1/citizens/"+id); err == nil {
				t.Fatalf("accepted: %d %s", status, body)
			}
		})
	}

	// Metrics and probes on the plain-HTTP port.
	for _, p := range []string{"/healthz", "/readyz", "/auditz"} {
		if status, _, err := get(t, http.DefaultClient, "http://"+gw.metricsAddr+p); err != nil || status != 200 {
			t.Fatalf("%s: %d %v", p, status, err)
		}
	}
	_, metrics, _ := get(t, http.DefaultClient, "http://"+gw.metricsAddr+"/metrics")
	for _, m := range []string{`popconnect_gateway_requests_total{agency="BYT",code="200",operation="Lookup"} 1`,
		`popconnect_gateway_quota_refused_total{agency="QUOTA",operation="Lookup"} 1`, `popconnect_gateway_policy_info{version="v-false"} 1`,
		`popconnect_gateway_agencies_loaded 3`, `popconnect_gateway_audit_last_seq{sink="file",stream="`} {
		if !strings.Contains(metrics, m) {
			t.Fatalf("metrics lack %s", m)
		}
	}

	// Policy reload: a suspension written to the file takes effect.
	f.writePolicy(t, true)
	eventually(t, "the suspension", func() bool {
		status, body, _ := get(t, byt, base+"/v1/citizens/"+id)
		return status == 403 && strings.Contains(body, "agency_suspended")
	})
	// A broken file keeps the last good policy.
	testpki.WriteFile(t, f.dir, "policy.json", []byte(`{"version":`))
	eventually(t, "the load error", func() bool {
		_, m, _ := get(t, http.DefaultClient, "http://"+gw.metricsAddr+"/metrics")
		return strings.Contains(m, "popconnect_gateway_policy_load_errors_total 1")
	})
	if status, _, _ := get(t, byt, base+"/v1/citizens/"+id); status != 403 {
		t.Fatalf("broken file changed the policy: %d", status)
	}

	// Serving certificate reload: a new certificate from another CA is used
	// for new connections without a restart.
	newCA := testpki.NewCA(t, "rotated")
	newServer := newCA.Issue(t, testpki.Options{IPs: []net.IP{net.ParseIP("127.0.0.1")}, Server: true})
	testpki.WriteFile(t, f.dir, "tls.key", newServer.KeyPEM)
	testpki.WriteFile(t, f.dir, "tls.crt", newServer.CertPEM)
	rotated := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: newCA.Pool(),
		Certificates: []tls.Certificate{f.ca.Agency(t, "QUOTA").TLS}}}}
	eventually(t, "the rotated serving certificate", func() bool {
		_, _, err := get(t, rotated, base+"/v1/citizens/"+id)
		rotated.CloseIdleConnections()
		return err == nil
	})

	gw.stop(t)
	audit, err := os.ReadFile(gw.auditPath)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(audit), id) {
		t.Fatal("national ID in the audit file")
	}
	lines := strings.Split(strings.TrimSpace(string(audit)), "\n")
	var first map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil || first["agency"] != "BYT" || first["status"] != 200.0 {
		t.Fatalf("first audit record %s (%v)", lines[0], err)
	}
}

func TestAllowTLS12(t *testing.T) {
	f := newFixture(t)
	gw := f.start(t, "--allow-tls12")
	id, _ := popdb.NationalID(1)
	status, body, err := get(t, f.client(f.ca.Agency(t, "BYT"), tls.VersionTLS12), "https://"+gw.agencyAddr+"/v1/citizens/"+id)
	if err != nil || status != 200 {
		t.Fatalf("TLS 1.2 with --allow-tls12: %d %s %v", status, body, err)
	}
}

func TestFlags(t *testing.T) {
	f := newFixture(t)
	base := []string{"--upstream-url", f.upstream, "--tls-cert-file", "c", "--tls-key-file", "k", "--client-ca-file", "ca", "--audit-hash-key-file", "key"}
	tests := []struct {
		name string
		args []string
		err  string
	}{
		{"no policy source", base, "policy source"},
		{"both sources", append([]string{"--policy-file", "p", "--policy-namespace", "n", "--policy-selector", "s"}, base...), "not both"},
		{"namespace without selector", append([]string{"--policy-namespace", "n"}, base...), "go together"},
		{"no upstream", []string{"--policy-file", "p"}, "--upstream-url"},
		{"fsync of stdout", append([]string{"--policy-file", "p", "--audit-fsync"}, base...), "--audit-fsync needs"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := parseFlags(tc.args, io.Discard); err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err %v, want %q", err, tc.err)
			}
		})
	}
	short := testpki.WriteFile(t, t.TempDir(), "short.key", []byte("too short"))
	args := []string{"--policy-file", filepath.Join(f.dir, "policy.json"), "--upstream-url", f.upstream,
		"--tls-cert-file", filepath.Join(f.dir, "tls.crt"), "--tls-key-file", filepath.Join(f.dir, "tls.key"),
		"--client-ca-file", filepath.Join(f.dir, "ca.crt"), "--audit-hash-key-file", short}
	if err := run(context.Background(), args, io.Discard, io.Discard, nil); err == nil || !strings.Contains(err.Error(), "at least 32") {
		t.Fatalf("short audit key: %v", err)
	}
}
