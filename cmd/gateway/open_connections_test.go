package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/popconnect/popconnect/gateway/testpki"
	"github.com/popconnect/popconnect/internal/popdb"
)

// TestMaxConnectionAgeFlag: with --max-connection-age, a keep-alive
// agency is moved to a new connection (and so through a new handshake)
// once its connection's age passes, over HTTP/1.1 and HTTP/2, without a
// failed request.
func TestMaxConnectionAgeFlag(t *testing.T) {
	f := newFixture(t)
	id, _ := popdb.NationalID(2)
	for _, tc := range []struct {
		name, srv string
		h2        bool
	}{{"http1", "x-net", false}, {"h2/x-net", "x-net", true}, {"h2/native", "native", true}} {
		h2 := tc.h2
		t.Run(tc.name, func(t *testing.T) {
			gw := f.start(t, "--max-connection-age", "300ms", "--idle-timeout", "1m", "--http2-server", tc.srv)
			var dials atomic.Int64
			cfg := &tls.Config{RootCAs: f.ca.Pool(), Certificates: []tls.Certificate{f.ca.Agency(t, "BYT").TLS}}
			if !h2 {
				cfg.NextProtos = []string{"http/1.1"}
			}
			d := &net.Dialer{}
			tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: h2,
				DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
					dials.Add(1)
					return d.DialContext(ctx, network, addr)
				}}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			eventually(t, "a second connection", func() bool {
				resp, err := c.Get("https://" + gw.agencyAddr + "/v1/citizens/" + id)
				if err != nil {
					t.Fatalf("request failed: %v", err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || (resp.ProtoMajor == 2) != h2 {
					t.Fatalf("%d %s", resp.StatusCode, resp.Proto)
				}
				return dials.Load() >= 2
			})
		})
	}
	if _, err := parseFlags([]string{"--policy-file", "p", "--upstream-url", f.upstream, "--tls-cert-file", "c", "--tls-key-file", "k",
		"--client-ca-file", "ca", "--audit-hash-key-file", "key", "--max-connection-age", "0s"}, io.Discard); err == nil || !strings.Contains(err.Error(), "positive") {
		t.Fatalf("--max-connection-age 0s: %v, want an error", err)
	}
}

// TestUnpinOnOpenConnection: the operator revokes a certificate by
// removing its digest from the agency's entry; the gateway refuses the
// next request on the agency's open keep-alive connection once it has
// reloaded the policy (here the --policy-file; the shards go the same
// way), and a connection with another pinned certificate goes on.
func TestUnpinOnOpenConnection(t *testing.T) {
	f := newFixture(t)
	revoked, kept := f.ca.Agency(t, "PIN"), f.ca.Agency(t, "PIN")
	writePins := func(version string, pins ...*testpki.Leaf) {
		digests := []string{}
		for _, l := range pins {
			sum := sha256.Sum256(l.TLS.Certificate[0])
			digests = append(digests, `"`+hex.EncodeToString(sum[:])+`"`)
		}
		testpki.WriteFile(t, f.dir, "policy.json", []byte(`{"version":"`+version+`","agencies":[
	{"agencyCode":"PIN","allowedFields":["fullName"],"allowedOperations":["Lookup"],"rateLimit":{"requestsPerSecond":1000,"burst":1000},
	 "certificateSHA256":[`+strings.Join(digests, ",")+`]}]}`))
	}
	writePins("both", revoked, kept)
	gw := f.start(t)
	id, _ := popdb.NationalID(4)
	url := "https://" + gw.agencyAddr + "/v1/citizens/" + id
	keepAlive := func(l *testpki.Leaf) (*http.Client, *atomic.Int64) {
		var dials atomic.Int64
		d := &net.Dialer{}
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: f.ca.Pool(), Certificates: []tls.Certificate{l.TLS}},
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				dials.Add(1)
				return d.DialContext(ctx, network, addr)
			}}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr, Timeout: 10 * time.Second}, &dials
	}
	rc, rDials := keepAlive(revoked)
	kc, _ := keepAlive(kept)
	for _, c := range []*http.Client{rc, kc} {
		if status, body, err := get(t, c, url); err != nil || status != http.StatusOK {
			t.Fatalf("before the revocation: %d %s %v", status, body, err)
		}
	}

	writePins("revoked", kept)
	changed := time.Now()
	var body string
	eventually(t, "the revoked certificate refused on its open connection", func() bool {
		var status int
		var err error
		status, body, err = get(t, rc, url)
		if err != nil {
			t.Fatalf("request failed: %v", err)
		}
		return status == http.StatusForbidden
	})
	t.Logf("refused %v after the policy file changed", time.Since(changed).Round(time.Millisecond))
	if !strings.Contains(body, `"certificate_not_pinned"`) || rDials.Load() != 1 {
		t.Fatalf("refusal %s on connection %d, want certificate_not_pinned on the first", body, rDials.Load())
	}
	if status, body, err := get(t, kc, url); err != nil || status != http.StatusOK {
		t.Fatalf("the certificate still pinned: %d %s %v", status, body, err)
	}
}
