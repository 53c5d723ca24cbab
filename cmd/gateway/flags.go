package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/popconnect/popconnect/gateway/h1server"
	"github.com/popconnect/popconnect/gateway/ratelimit"
)

// options are the gateway's command-line flags. The names are a contract
// (docs/architecture.md, "Binaries and flags other tools rely on").
type options struct {
	policyFile      string
	policyNamespace string
	policySelector  string
	kubeconfig      string

	upstreamURL     string
	upstreamCAFile  string
	upstreamTimeout time.Duration

	listenAddress  string
	tlsCertFile    string
	tlsKeyFile     string
	clientCAFile   string
	allowTLS12     bool
	metricsAddress string

	auditFile        string
	auditFileSet     bool
	auditFsync       bool
	auditPostgresURL string
	auditHashKeyFile string
	timezone         string

	rateLimitRedisURL      string
	rateLimitRedisPassword string
	rateLimitRedisCAFile   string
	rateLimitRedisTimeout  time.Duration
	rateLimitRedisLease    time.Duration
	rateLimitRedisPrefix   string
	rateLimitReplicas      int

	maxRequestBody  int64
	maxUpstreamBody int64
	maxHeaderBytes  int

	readHeaderTimeout time.Duration
	readTimeout       time.Duration
	idleTimeout       time.Duration
	maxConnectionAge  time.Duration
	http2Server       string
	shutdownGrace     time.Duration
	logLevel          string
	cpuProfile        string
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.policyFile, "policy-file", "", "standalone mode: JSON or YAML policy file, reloaded when it changes")
	fs.StringVar(&o.policyNamespace, "policy-namespace", "", "Kubernetes mode: namespace of the policy shard ConfigMaps")
	fs.StringVar(&o.policySelector, "policy-selector", "", "Kubernetes mode: label selector of the policy shard ConfigMaps, e.g. popconnect.io/gateway=gw1")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "Kubernetes mode: kubeconfig file (default $KUBECONFIG, then in-cluster config)")
	fs.StringVar(&o.upstreamURL, "upstream-url", "", "population-database API base URL, http:// or https://")
	fs.StringVar(&o.upstreamCAFile, "upstream-ca-file", "", "PEM CA bundle that verifies an https upstream (default: system roots)")
	fs.DurationVar(&o.upstreamTimeout, "upstream-timeout", 5*time.Second, "timeout of one upstream call")
	fs.StringVar(&o.listenAddress, "listen-address", ":8443", "address agencies connect to (mTLS)")
	fs.StringVar(&o.tlsCertFile, "tls-cert-file", "", "serving certificate (PEM), reloaded when it changes")
	fs.StringVar(&o.tlsKeyFile, "tls-key-file", "", "serving private key (PEM), reloaded when it changes")
	fs.StringVar(&o.clientCAFile, "client-ca-file", "", "CA bundle (PEM) that verifies agency certificates, reloaded when it changes")
	fs.BoolVar(&o.allowTLS12, "allow-tls12", false, "accept TLS 1.2 clients (default: TLS 1.3 only)")
	fs.StringVar(&o.metricsAddress, "metrics-address", ":9090", "plain-HTTP address for /metrics, /healthz and /readyz")
	fs.StringVar(&o.auditFile, "audit-file", "-", "audit log file, appended to; - is stdout")
	fs.StringVar(&o.auditPostgresURL, "audit-postgres-url-file", "", "file holding the URL of the PostgreSQL database that stores the audit records (surrounding whitespace ignored), instead of --audit-file")
	fs.BoolVar(&o.auditFsync, "audit-fsync", false, "sync the audit file to disk before each batch of answers leaves (needs --audit-file)")
	fs.StringVar(&o.auditHashKeyFile, "audit-hash-key-file", "", "file whose bytes (at least 32) key the HMAC-SHA256 of national IDs in the audit log")
	fs.StringVar(&o.timezone, "timezone", "Asia/Ho_Chi_Minh", "time zone whose midnight resets daily quotas")
	fs.StringVar(&o.rateLimitRedisURL, "ratelimit-redis-url", "", "redis://HOST:PORT[/DB] (rediss:// for TLS): count rates and daily quotas in this Redis, shared by every replica (default: each replica counts alone)")
	fs.StringVar(&o.rateLimitRedisPassword, "ratelimit-redis-password-file", "", "file holding the Redis password (surrounding whitespace ignored)")
	fs.StringVar(&o.rateLimitRedisCAFile, "ratelimit-redis-ca-file", "", "PEM CA bundle that verifies a rediss:// server (default: system roots)")
	fs.DurationVar(&o.rateLimitRedisTimeout, "ratelimit-redis-timeout", 100*time.Millisecond, "bound of one Redis call, connecting included; past it the replica enforces its share")
	fs.DurationVar(&o.rateLimitRedisLease, "ratelimit-redis-lease", ratelimit.DefaultLease, "how long a replica may hold units of a busy agency's rate and quota charged in Redis ahead of its requests, so that most requests need no round trip (0: none, every request asks Redis); see docs/operations.md")
	fs.StringVar(&o.rateLimitRedisPrefix, "ratelimit-redis-key-prefix", "popconnect:", "prefix of the Redis keys, so that gateways sharing a server keep their counts apart")
	fs.IntVar(&o.rateLimitReplicas, "ratelimit-replicas", 1, "replicas sharing the limits, until this replica has counted the live ones in Redis: while Redis is unreachable each enforces limit / the live replicas it last counted, or limit / this")
	fs.Int64Var(&o.maxRequestBody, "max-request-body-bytes", 64<<10, "largest Verify or BatchLookup body")
	fs.Int64Var(&o.maxUpstreamBody, "max-upstream-body-bytes", 8<<20, "largest upstream response read")
	fs.IntVar(&o.maxHeaderBytes, "max-header-bytes", 32<<10, "largest request header an agency may send (larger: 431)")
	fs.DurationVar(&o.readHeaderTimeout, "read-header-timeout", 10*time.Second, "how long a client may take to send its request headers (bounds slowloris clients)")
	fs.DurationVar(&o.readTimeout, "read-timeout", 30*time.Second, "how long a client may take to send a whole request, body included")
	fs.DurationVar(&o.idleTimeout, "idle-timeout", 120*time.Second, "how long an idle keep-alive connection is kept")
	fs.DurationVar(&o.maxConnectionAge, "max-connection-age", time.Hour, "how long an agency connection is served before it is closed (HTTP/1.1: after the response in progress; HTTP/2: GOAWAY), so that every client comes back through a handshake that checks its certificate against the client CA in force")
	fs.StringVar(&o.http2Server, "http2-server", string(h1server.HTTP2Native), "what serves agencies' HTTP/2 connections: native (the gateway's own connection loop, x/net's frame and HPACK coding) or x-net (golang.org/x/net/http2's server); see gateway/h1server")
	fs.DurationVar(&o.shutdownGrace, "shutdown-grace", 25*time.Second, "how long SIGTERM waits for requests in flight")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&o.cpuProfile, "cpu-profile", "", "write a CPU profile (pprof) covering the whole run to this file")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	fs.Visit(func(f *flag.Flag) { o.auditFileSet = o.auditFileSet || f.Name == "audit-file" })
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	return o, o.validate()
}

func (o *options) validate() error {
	kube := o.policyNamespace != "" || o.policySelector != ""
	switch {
	case o.policyFile != "" && kube:
		return errors.New("use either --policy-file or --policy-namespace with --policy-selector, not both")
	case o.policyFile == "" && !kube:
		return errors.New("a policy source is required: --policy-file, or --policy-namespace with --policy-selector")
	case kube && (o.policyNamespace == "" || o.policySelector == ""):
		return errors.New("--policy-namespace and --policy-selector go together")
	case o.upstreamURL == "":
		return errors.New("--upstream-url is required")
	case o.tlsCertFile == "" || o.tlsKeyFile == "" || o.clientCAFile == "":
		return errors.New("--tls-cert-file, --tls-key-file and --client-ca-file are required")
	case o.auditPostgresURL != "" && (o.auditFileSet || o.auditFsync):
		return errors.New("--audit-postgres-url-file stores the audit records in PostgreSQL: it goes with neither --audit-file nor --audit-fsync")
	case o.auditFsync && (o.auditFile == "" || o.auditFile == "-"):
		return errors.New("--audit-fsync needs an --audit-file to sync")
	case o.auditHashKeyFile == "":
		return errors.New("--audit-hash-key-file is required")
	case o.rateLimitRedisURL == "" && (o.rateLimitRedisPassword != "" || o.rateLimitRedisCAFile != ""):
		return errors.New("--ratelimit-redis-password-file and --ratelimit-redis-ca-file need --ratelimit-redis-url")
	case o.http2Server != string(h1server.HTTP2XNet) && o.http2Server != string(h1server.HTTP2Native):
		return fmt.Errorf("--http2-server must be %s or %s, not %q", h1server.HTTP2XNet, h1server.HTTP2Native, o.http2Server)
	case o.rateLimitReplicas < 1 || o.rateLimitRedisTimeout <= 0:
		return errors.New("--ratelimit-replicas and --ratelimit-redis-timeout must be positive")
	case o.rateLimitRedisLease < 0:
		return errors.New("--ratelimit-redis-lease must not be negative (0: no lease)")
	case o.upstreamTimeout <= 0 || o.shutdownGrace < 0 || o.maxRequestBody <= 0 || o.maxUpstreamBody <= 0 ||
		o.maxHeaderBytes <= 0 || o.readHeaderTimeout <= 0 || o.readTimeout <= 0 || o.idleTimeout <= 0 || o.maxConnectionAge <= 0:
		return errors.New("timeouts and sizes must be positive")
	}
	return nil
}
