package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/popconnect/popconnect/gateway/testpki"
	"github.com/popconnect/popconnect/internal/popdb"
)

// secretVolume writes files the way the kubelet updates a mounted Secret:
// each version in its own ..<timestamp> directory, an ..data symlink
// swapped to it by rename (atomic: a reader sees the old set or the new
// set, never a certificate with the other version's key), user-visible
// names that are symlinks through ..data, and the old version removed.
type secretVolume struct {
	dir string
	n   int
	old string
}

func (v *secretVolume) write(t *testing.T, files map[string][]byte) {
	t.Helper()
	v.n++
	version := fmt.Sprintf("..%s.%d", time.Now().UTC().Format("2006_01_02_15_04_05"), v.n)
	if err := os.Mkdir(filepath.Join(v.dir, version), 0o700); err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(v.dir, version, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tmp := filepath.Join(v.dir, "..data_tmp")
	if err := os.Symlink(version, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(v.dir, "..data")); err != nil {
		t.Fatal(err)
	}
	for name := range files {
		link := filepath.Join(v.dir, name)
		if _, err := os.Lstat(link); os.IsNotExist(err) {
			if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
				t.Fatal(err)
			}
		}
	}
	if v.old != "" {
		if err := os.RemoveAll(filepath.Join(v.dir, v.old)); err != nil {
			t.Fatal(err)
		}
	}
	v.old = version
}

// rotationLoad is an agency calling the gateway without pause from
// keep-alive and from new connections, counting every outcome.
type rotationLoad struct {
	addr, path string
	roots      atomic.Pointer[x509.CertPool]
	clientCert atomic.Pointer[tls.Certificate]

	ok, keepAlive, fresh atomic.Int64
	// Once the old CA is dropped (untrustedExpected), a keep-alive
	// connection still holding a certificate of that CA is refused with
	// certificate_untrusted and closed; those refusals are counted in
	// untrusted, not as failures.
	untrustedExpected atomic.Bool
	untrusted         atomic.Int64
	mu                sync.Mutex
	failures          []string
	failed            int
	// presented counts handshakes by the client certificate presented;
	// served, by the serving certificate's serial the client saw.
	presented map[*tls.Certificate]int
	served    map[string]int
}

func (l *rotationLoad) tlsConfig() *tls.Config {
	return &tls.Config{
		// The pool is read at each handshake, so clients can be told to
		// trust a new CA the way a CA bundle update would.
		InsecureSkipVerify: true, //nolint:gosec // verified below against the current roots
		VerifyConnection: func(cs tls.ConnectionState) error {
			opts := x509.VerifyOptions{Roots: l.roots.Load(), Intermediates: x509.NewCertPool()}
			for _, c := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(c)
			}
			if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
				return err
			}
			if err := cs.PeerCertificates[0].VerifyHostname("127.0.0.1"); err != nil {
				return err
			}
			l.mu.Lock()
			l.served[cs.PeerCertificates[0].SerialNumber.String()]++
			l.mu.Unlock()
			return nil
		},
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			c := l.clientCert.Load()
			l.mu.Lock()
			l.presented[c]++
			l.mu.Unlock()
			return c, nil
		},
		MinVersion: tls.VersionTLS13,
	}
}

func (l *rotationLoad) run(stop <-chan struct{}, c *http.Client, count *atomic.Int64) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		resp, err := c.Get("https://" + l.addr + l.path)
		if err == nil {
			var body []byte
			body, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil && resp.StatusCode == http.StatusForbidden && l.untrustedExpected.Load() &&
				bytes.Contains(body, []byte(`"error":"certificate_untrusted"`)) {
				l.untrusted.Add(1)
				continue
			}
			if err == nil && resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("status %d: %s", resp.StatusCode, body)
			}
		}
		if err != nil {
			l.mu.Lock()
			l.failed++
			if len(l.failures) < 10 {
				l.failures = append(l.failures, err.Error())
			}
			l.mu.Unlock()
			continue
		}
		l.ok.Add(1)
		count.Add(1)
	}
}

func (l *rotationLoad) seen(serial string, cert *tls.Certificate) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return (serial == "" || l.served[serial] > 0) && (cert == nil || l.presented[cert] > 0)
}

// TestCertificateRotationUnderLoad: while an agency calls the gateway
// without pause over keep-alive and new connections, its client
// certificate and the gateway's serving certificate are replaced several
// times (serving files as the kubelet swaps a Secret volume), and finally
// the CA itself is rotated (CA bundle first, then new certificates, then
// the old CA dropped). Not one request fails, but for the requests on
// keep-alive connections still holding a certificate of the dropped CA,
// which are refused with certificate_untrusted (an open connection does
// not outlive the trust in its certificate); the load's handshakes show
// every new certificate was used on both sides.
func TestCertificateRotationUnderLoad(t *testing.T) {
	const rotations = 4
	f := newFixture(t)
	testpki.WriteFile(t, f.dir, "policy.json", []byte(`{"version":"rotation","agencies":[
	{"agencyCode":"LOAD","allowedFields":["fullName"],"allowedOperations":["Lookup"],"rateLimit":{"requestsPerSecond":100000,"burst":100000}}]}`))
	vol := &secretVolume{dir: t.TempDir()}
	serving := func(ca *testpki.CA) *testpki.Leaf {
		return ca.Issue(t, testpki.Options{IPs: []net.IP{net.ParseIP("127.0.0.1")}, Server: true})
	}
	first := serving(f.ca)
	vol.write(t, map[string][]byte{"tls.crt": first.CertPEM, "tls.key": first.KeyPEM, "ca.crt": f.ca.CertPEM})
	gw := f.start(t, "--tls-cert-file", filepath.Join(vol.dir, "tls.crt"), "--tls-key-file", filepath.Join(vol.dir, "tls.key"),
		"--client-ca-file", filepath.Join(vol.dir, "ca.crt"))

	id, _ := popdb.NationalID(3)
	l := &rotationLoad{addr: gw.agencyAddr, path: "/v1/citizens/" + id, presented: map[*tls.Certificate]int{}, served: map[string]int{}}
	l.roots.Store(f.ca.Pool())
	l.clientCert.Store(&f.ca.Agency(t, "LOAD").TLS)
	keepAliveTr := &http.Transport{TLSClientConfig: l.tlsConfig(), MaxIdleConnsPerHost: 4}
	freshTr := &http.Transport{TLSClientConfig: l.tlsConfig(), DisableKeepAlives: true}
	defer keepAliveTr.CloseIdleConnections()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() { l.run(stop, &http.Client{Transport: keepAliveTr, Timeout: 10 * time.Second}, &l.keepAlive) })
	}
	for range 2 {
		wg.Go(func() { l.run(stop, &http.Client{Transport: freshTr, Timeout: 10 * time.Second}, &l.fresh) })
	}
	stopLoad := func() {
		select {
		case <-stop:
		default:
			close(stop)
			wg.Wait()
		}
	}
	defer stopLoad()

	// rotate installs new certificates and waits, bounded, until new
	// handshakes of the load use both; a little load then runs on them.
	rotate := func(what string, server *testpki.Leaf, caFile []byte, client *testpki.Leaf) {
		t.Helper()
		l.clientCert.Store(&client.TLS)
		vol.write(t, map[string][]byte{"tls.crt": server.CertPEM, "tls.key": server.KeyPEM, "ca.crt": caFile})
		serial := server.TLS.Leaf.SerialNumber.String()
		start := time.Now()
		eventually(t, what, func() bool { return l.seen(serial, &client.TLS) })
		// Connections kept alive keep their certificates, as they may; new
		// ones pick the new certificates up.
		keepAliveTr.CloseIdleConnections()
		before := l.ok.Load()
		eventually(t, what+": load continuing", func() bool { return l.ok.Load() > before+150 })
		t.Logf("%s: in use %v after the files changed", what, time.Since(start).Round(time.Millisecond))
	}

	for i := range rotations {
		rotate(fmt.Sprintf("rotation %d", i+1), serving(f.ca), f.ca.CertPEM, f.ca.Agency(t, "LOAD"))
	}

	// CA rotation, in the order cert-manager + trust distribution would do
	// it: the gateway trusts both CAs and agencies trust both; then new
	// certificates from the new CA; then the old CA is dropped.
	newCA := testpki.NewCA(t, "agencies-2")
	both := append(append([]byte{}, f.ca.CertPEM...), newCA.CertPEM...)
	bothPool := f.ca.Pool()
	bothPool.AddCert(newCA.Cert)
	l.roots.Store(bothPool)
	rotate("CA bundle", serving(f.ca), both, f.ca.Agency(t, "LOAD"))
	// The gateway must have reloaded the bundle before an agency presents
	// a certificate from the new CA; a probe (not the load) checks it.
	probeCert := newCA.Agency(t, "LOAD")
	probe := presenting(bothPool, probeCert)
	eventually(t, "the gateway trusting the new CA", func() bool {
		status, _, err := get(t, probe, "https://"+gw.agencyAddr+l.path)
		return err == nil && status == http.StatusOK
	})
	rotate("certificates from the new CA", serving(newCA), both, newCA.Agency(t, "LOAD"))
	// Keep-alive connections made with a certificate of the old CA are
	// refused from now on (each once: the refusal closes it).
	l.untrustedExpected.Store(true)
	rotate("old CA dropped", serving(newCA), newCA.CertPEM, newCA.Agency(t, "LOAD"))

	stopLoad()
	l.mu.Lock()
	defer l.mu.Unlock()
	t.Logf("%d requests served during %d certificate rotations and a CA rotation (%d over keep-alive connections, %d on a new connection each), %d failed, %d refused as certificate_untrusted on connections of the dropped CA",
		l.ok.Load(), rotations, l.keepAlive.Load(), l.fresh.Load(), l.failed, l.untrusted.Load())
	if l.failed > 0 {
		t.Fatalf("%d requests failed during rotation; first errors: %q", l.failed, l.failures)
	}
	if l.keepAlive.Load() == 0 || l.fresh.Load() == 0 {
		t.Fatalf("the load did not run both ways: %d keep-alive, %d new-connection requests", l.keepAlive.Load(), l.fresh.Load())
	}

	// After the old CA is dropped, its certificates are refused: the
	// reload really replaced the trust, it did not only add to it.
	old := presenting(newCA.Pool(), f.ca.Agency(t, "LOAD"))
	if status, _, err := get(t, old, "https://"+gw.agencyAddr+l.path); err == nil {
		t.Fatalf("a certificate from the dropped CA was accepted: %d", status)
	}
}

// presenting is a client on new connections that always presents cert:
// with tls.Config.Certificates Go would withhold a certificate whose
// issuer the gateway does not list, and the gateway must really judge it.
func presenting(roots *x509.CertPool, cert *testpki.Leaf) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, TLSClientConfig: &tls.Config{
		RootCAs:              roots,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert.TLS, nil },
	}}}
}
