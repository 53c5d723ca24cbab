// Command loadgen drives the mTLS lookup workload of bench/gateway.sh: a
// fixed number of keep-alive connections, each sending GET
// /v1/citizens/{id} for random existing citizens back to back, for a fixed
// time. It prints one key=value line: rps, p50_ms, p99_ms, ok, errors.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/popconnect/popconnect/internal/popdb"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func run() error {
	base := flag.String("url", "", "base URL, e.g. https://127.0.0.1:8443")
	certFile := flag.String("cert", "", "client certificate (PEM)")
	keyFile := flag.String("key", "", "client key (PEM)")
	caFile := flag.String("ca", "", "CA that verifies the server (PEM)")
	concurrency := flag.Int("concurrency", 64, "connections, each with one request in flight")
	duration := flag.Duration("duration", 20*time.Second, "how long to send")
	records := flag.Int64("records", 1_000_000, "citizens to pick from (must match popdb-sim --records)")
	query := flag.String("query", "", "query string appended to each lookup, e.g. fields=fullName")
	useH2 := flag.Bool("http2", false, "HTTP/2: the workers share --h2-connections connections, one stream in flight each (default HTTP/1.1, one connection per worker)")
	h2Conns := flag.Int("h2-connections", 8, "HTTP/2 connections, with --http2")
	header := http.Header{}
	flag.Func("header", "a request header sent with every request, as 'Name: value' (repeatable)", func(v string) error {
		name, value, ok := strings.Cut(v, ":")
		if !ok || strings.TrimSpace(name) == "" {
			return fmt.Errorf("want 'Name: value', got %q", v)
		}
		header.Add(strings.TrimSpace(name), strings.TrimSpace(value))
		return nil
	})
	flag.Parse()
	if *base == "" {
		return fmt.Errorf("--url is required")
	}

	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if *certFile != "" {
		cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			return err
		}
		tlsCfg.Certificates = []tls.Certificate{cert}
	}
	if *caFile != "" {
		pem, err := os.ReadFile(*caFile)
		if err != nil {
			return err
		}
		tlsCfg.RootCAs = x509.NewCertPool()
		tlsCfg.RootCAs.AppendCertsFromPEM(pem)
	}
	// One Transport per HTTP/2 connection: a Transport multiplexes all its
	// requests to a host over one connection, and the bench wants a fixed
	// number of them.
	transports := 1
	if *useH2 {
		transports = max(*h2Conns, 1)
	}
	clients := make([]*http.Client, transports)
	for i := range clients {
		tr := &http.Transport{
			TLSClientConfig:     tlsCfg.Clone(),
			MaxIdleConns:        *concurrency,
			MaxIdleConnsPerHost: *concurrency,
			MaxConnsPerHost:     *concurrency,
			DisableCompression:  true,
			ForceAttemptHTTP2:   *useH2, // otherwise HTTP/1.1 keep-alive, as nginx is driven
		}
		clients[i] = &http.Client{Transport: tr, Timeout: 10 * time.Second}
	}
	wantProto := 1
	if *useH2 {
		wantProto = 2
	}
	suffix := ""
	if *query != "" {
		suffix = "?" + *query
	}

	ctx, cancel := context.WithTimeout(context.Background(), *duration)
	defer cancel()
	type result struct {
		lat         []time.Duration
		ok, errors  int
		firstErrMsg string
	}
	results := make([]result, *concurrency)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range *concurrency {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 42))
			client := clients[w%len(clients)]
			res := &results[w]
			res.lat = make([]time.Duration, 0, 1<<16)
			for ctx.Err() == nil {
				id, _ := popdb.NationalID(r.Int64N(*records))
				t0 := time.Now()
				req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, *base+"/v1/citizens/"+id+suffix, nil)
				if err != nil {
					res.errors++
					res.firstErrMsg = err.Error()
					return
				}
				if len(header) > 0 {
					// Shared, read only: the client writes the request's
					// headers without changing them, so no copy per request
					// costs this leg CPU that the others do not pay.
					req.Header = header
				}
				resp, err := client.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						res.errors++
						if res.firstErrMsg == "" {
							res.firstErrMsg = err.Error()
						}
					}
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				res.lat = append(res.lat, time.Since(t0))
				if resp.ProtoMajor != wantProto { // never measure the wrong protocol silently
					res.errors++
					if res.firstErrMsg == "" {
						res.firstErrMsg = fmt.Sprintf("answered over %s, not HTTP/%d", resp.Proto, wantProto)
					}
				} else if resp.StatusCode == http.StatusOK {
					res.ok++
				} else {
					res.errors++
					if res.firstErrMsg == "" {
						res.firstErrMsg = resp.Status
					}
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	ok, errs := 0, 0
	for _, r := range results {
		all = append(all, r.lat...)
		ok += r.ok
		errs += r.errors
		if r.firstErrMsg != "" {
			fmt.Fprintln(os.Stderr, "loadgen: first error:", r.firstErrMsg)
		}
	}
	slices.Sort(all)
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[int(p*float64(len(all)-1))].Microseconds()) / 1000
	}
	fmt.Printf("rps=%.0f p50_ms=%.2f p99_ms=%.2f ok=%d errors=%d\n", float64(ok)/elapsed.Seconds(), pct(0.50), pct(0.99), ok, errs)
	return nil
}
