package main

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/popconnect/popconnect/internal/popdb"
)

// TestMaxConnectionAgeFlag: with --max-connection-age, a keep-alive
// agency is moved to a new connection (and so through a new handshake)
// once its connection's age passes, over HTTP/1.1 and HTTP/2, without a
// failed request.
func TestMaxConnectionAgeFlag(t *testing.T) {
	f := newFixture(t)
	gw := f.start(t, "--max-connection-age", "300ms", "--idle-timeout", "1m")
	id, _ := popdb.NationalID(2)
	for _, h2 := range []bool{false, true} {
		t.Run(map[bool]string{true: "h2", false: "http1"}[h2], func(t *testing.T) {
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
