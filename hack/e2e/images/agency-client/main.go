// Command agency-client is the agency side of the e2e scenarios: it runs in
// a pod of an agency's namespace, with the Secret the operator had issued
// for the agency's AgencyConnection mounted, and reads through the gateway
// Service as an agency's application would. The test drives it with
// `kubectl exec` (the image has no shell); every subcommand writes JSON to
// stdout, one object a line, so the test reads what the pod saw.
//
//	agency-client idle                      wait for SIGTERM (the pod's main process)
//	agency-client dial -addr IP:PORT        open a TCP connection, no TLS: {"connected":...}
//	agency-client get -url URL [-n N]       N requests in a row, one line each
//	agency-client watch -url URL            one request every -interval; a line at each change
//	                                        of outcome; ends at the first refusal after a 200
//	agency-client load -url URL             -workers loops until -stop-file exists (or for
//	                                        -duration); a line at the first 200, then a summary
//	agency-client stop                      create -stop-file: a running load finishes
//
// Certificates come from -cert-dir (tls.crt, tls.key, ca.crt); the gateway
// is verified as -server-name.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: agency-client idle|dial|get|watch|load [flags]")
		os.Exit(2)
	}
	cmd, args := os.Args[1], os.Args[2:]
	var err error
	switch cmd {
	case "idle":
		idle()
	case "dial":
		err = dial(args)
	case "get":
		err = get(args)
	case "watch":
		err = watch(args)
	case "load":
		err = load(args)
	case "stop":
		err = stop(args)
	default:
		err = fmt.Errorf("unknown command %q", cmd)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "agency-client:", err)
		os.Exit(1)
	}
}

func idle() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
	<-ch
}

// out writes one JSON line to stdout, unbuffered, so that a reader of a
// running `kubectl exec` sees it at once.
var outMu sync.Mutex

func out(v any) {
	b, _ := json.Marshal(v)
	outMu.Lock()
	defer outMu.Unlock()
	_, _ = os.Stdout.Write(append(b, '\n'))
}

func dial(args []string) error {
	fs := flag.NewFlagSet("dial", flag.ContinueOnError)
	addr := fs.String("addr", "", "host:port")
	timeout := fs.Duration("timeout", 3*time.Second, "connect timeout")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c, err := net.DialTimeout("tcp", *addr, *timeout)
	if err != nil {
		out(DialResult{Error: err.Error()})
		return nil
	}
	_ = c.Close()
	out(DialResult{Connected: true})
	return nil
}

// clientFlags are the flags of the subcommands that make HTTPS requests.
type clientFlags struct {
	url        *string
	certDir    *string
	serverName *string
	timeout    *time.Duration
}

func addClientFlags(fs *flag.FlagSet) clientFlags {
	return clientFlags{
		url:        fs.String("url", "", "the request URL"),
		certDir:    fs.String("cert-dir", "/var/run/popconnect/agency", "directory with tls.crt, tls.key and ca.crt"),
		serverName: fs.String("server-name", "", "the name to verify the gateway's certificate as (default: the URL's host)"),
		timeout:    fs.Duration("timeout", 2*time.Second, "timeout of one request"),
	}
}

func (f clientFlags) client() (*http.Client, error) {
	pair, err := tls.LoadX509KeyPair(filepath.Join(*f.certDir, "tls.crt"), filepath.Join(*f.certDir, "tls.key"))
	if err != nil {
		return nil, err
	}
	caPEM, err := os.ReadFile(filepath.Join(*f.certDir, "ca.crt"))
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("ca.crt holds no certificate")
	}
	cfg := &tls.Config{RootCAs: roots, ServerName: *f.serverName, MinVersion: tls.VersionTLS13,
		Certificates: []tls.Certificate{pair}}
	return &http.Client{Timeout: *f.timeout, Transport: &http.Transport{TLSClientConfig: cfg, MaxIdleConnsPerHost: 64}}, nil
}

// do makes one GET and classifies it.
func do(ctx context.Context, c *http.Client, url string) (Outcome, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return Outcome{Error: err.Error()}, ""
	}
	resp, err := c.Do(req)
	if err != nil {
		return Outcome{Error: err.Error()}, ""
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return Outcome{Error: "reading the body: " + err.Error()}, ""
	}
	return Classify(resp.StatusCode, body), string(body)
}

func get(args []string) error {
	fs := flag.NewFlagSet("get", flag.ContinueOnError)
	cf := addClientFlags(fs)
	n := fs.Int("n", 1, "requests to make, one after the other")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	for i := 0; i < *n; i++ {
		o, body := do(context.Background(), c, *cf.url)
		out(GetResult{Outcome: o, Body: body})
	}
	return nil
}

func watch(args []string) error {
	fs := flag.NewFlagSet("watch", flag.ContinueOnError)
	cf := addClientFlags(fs)
	interval := fs.Duration("interval", 10*time.Millisecond, "pause between two requests")
	duration := fs.Duration("duration", time.Minute, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(*duration)
	var last Outcome
	seenOK := false
	for first := true; time.Now().Before(deadline); first = false {
		sent := time.Now()
		o, _ := do(context.Background(), c, *cf.url)
		if first || o != last {
			// The time the refused request was sent: the pod asked, and
			// was refused, no later than this.
			out(Change{Time: sent.UnixNano(), Outcome: o})
		}
		last = o
		if o.OK() {
			seenOK = true
		} else if seenOK && o.Status != 0 {
			return nil
		}
		time.Sleep(*interval)
	}
	return errors.New("no refusal after a 200 within -duration")
}

const defaultStopFile = "/run/agency-client/stop"

func load(args []string) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	cf := addClientFlags(fs)
	workers := fs.Int("workers", 4, "concurrent request loops")
	duration := fs.Duration("duration", 5*time.Minute, "stop after this long at the latest")
	interval := fs.Duration("interval", 20*time.Millisecond, "pause between two requests of a loop")
	stopFile := fs.String("stop-file", defaultStopFile, "stop once this file exists")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	if err := os.Remove(*stopFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	var (
		mu      sync.Mutex
		sum     = NewSummary()
		wg      sync.WaitGroup
		firstOK sync.Once
	)
	ctx, cancel := context.WithTimeout(context.Background(), *duration)
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			if _, err := os.Stat(*stopFile); err == nil {
				cancel()
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	for w := 0; w < *workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				sent := time.Now()
				// Not ctx: a request in flight when the test says stop
				// is finished and counted.
				o, _ := do(context.Background(), c, *cf.url)
				mu.Lock()
				sum.Add(sent, o)
				mu.Unlock()
				if o.OK() {
					// The load is on: the test may now disturb the gateway.
					firstOK.Do(func() { out(Change{Time: sent.UnixNano(), Outcome: o}) })
				}
				time.Sleep(*interval)
			}
		}()
	}
	wg.Wait()
	out(sum)
	return nil
}

func stop(args []string) error {
	fs := flag.NewFlagSet("stop", flag.ContinueOnError)
	stopFile := fs.String("stop-file", defaultStopFile, "the file a running load watches")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return os.WriteFile(*stopFile, nil, 0o600)
}
