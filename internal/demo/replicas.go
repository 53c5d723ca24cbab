package demo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"sigs.k8s.io/controller-runtime/pkg/client"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/gateway/ratelimit/limitstate"
	"github.com/popconnect/popconnect/internal/testredis"
)

// The shared quota step: two more gateway processes, configured as the
// operator configures a gateway's pods with spec.rateLimitStore.redis,
// count VCB's daily quota in one Redis server.
const (
	// redisSecret holds the Redis password, as a platform team would
	// create it.
	redisSecret = "ratelimit-redis"
	// sharedQuotaAgency is the agency whose quota the step spends: the
	// steps after this one do not use it.
	sharedQuotaAgency = "VCB"
	// sharedQuota is the daily quota the step gives it.
	sharedQuota = 10
)

// replica is one of the step's gateway processes.
type replica struct {
	name    string
	proc    *proc
	addr    string
	metrics string
}

func (r *runner) sharedQuota(ctx context.Context) error {
	if err := r.startRedis(ctx); err != nil {
		return err
	}
	limitArgs, err := r.rateLimitStoreArgs(ctx)
	if err != nil {
		return err
	}
	if err := r.lowerQuota(ctx); err != nil {
		return err
	}
	for _, name := range []string{"gateway-a", "gateway-b"} {
		rep, err := r.startReplica(ctx, name, limitArgs)
		if err != nil {
			return err
		}
		r.replicas = append(r.replicas, rep)
	}
	// Each replica counts the live ones in Redis every second: the share
	// it would fall back to is half of each limit.
	var states string
	live := func(ctx context.Context) (bool, error) {
		states = ""
		for _, rep := range r.replicas {
			st, err := replicaState(ctx, rep)
			if err != nil {
				return false, err
			}
			states += fmt.Sprintf("%s: %+v; ", rep.name, st)
			if !st.Shared || st.LiveReplicas != len(r.replicas) {
				return false, nil
			}
		}
		return true, nil
	}
	if err := r.poll(ctx, r.opts.ReadyTimeout, live, func() string { return states }); err != nil {
		return err
	}
	r.n.cmd("curl http://<metrics>/ratelimitz   # on each replica")
	st, err := replicaState(ctx, r.replicas[0])
	if err != nil {
		return err
	}
	b, _ := json.Marshal(st)
	r.n.info("-> %s", b)
	if err := r.n.expect(true, "both replicas count in Redis and see each other: 2 live replicas"); err != nil {
		return err
	}
	return r.spendSharedQuota(ctx)
}

// startRedis runs a redis-server of the demo's own, its password in a
// config file, and puts the password in a Secret.
func (r *runner) startRedis(ctx context.Context) error {
	bin, err := testredis.Binary()
	if err != nil {
		return err
	}
	dir := filepath.Join(r.opts.WorkDir, "redis")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	pw := make([]byte, 16)
	_, _ = rand.Read(pw)
	r.redisPassword = hex.EncodeToString(pw)
	r.redisAddr = "127.0.0.1:" + strconv.Itoa(port)
	pwFile := filepath.Join(r.opts.WorkDir, "redis.password")
	conf := filepath.Join(dir, "redis.conf")
	// The password in a file (mode 0600), not on a command line that ps shows.
	confText := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nsave \"\"\nappendonly no\nrequirepass %s\n", port, dir, r.redisPassword)
	if err := os.WriteFile(conf, []byte(confText), 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", conf, err)
	}
	if err := os.WriteFile(pwFile, []byte(r.redisPassword+"\n"), 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", pwFile, err)
	}
	r.n.cmd("redis-server " + r.rel(conf) + "   # Debian's redis-server, port chosen at random, password in its config file")
	if r.redis, err = startProc("redis", r.logDir(), bin, nil, conf); err != nil {
		return err
	}
	rc := r.redisClient()
	defer rc.Close()
	ping := func(ctx context.Context) (bool, error) {
		if err := r.redis.exited(); err != nil {
			return false, err
		}
		return rc.Ping(ctx).Err() == nil, nil
	}
	if err := r.poll(ctx, r.opts.ReadyTimeout, ping, func() string { return "redis-server on " + r.redisAddr }); err != nil {
		return err
	}
	if err := r.n.expect(true, "Redis answers on %s; its password is in %s (mode 0600)", r.redisAddr, r.rel(pwFile)); err != nil {
		return err
	}
	_, err = r.kubectl(ctx, true, "create", "secret", "generic", redisSecret, "-n", r.opts.Namespace, "--from-file=password="+r.rel(pwFile))
	return err
}

func (r *runner) redisClient() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: r.redisAddr, Password: r.redisPassword, MaxRetries: -1})
}

// rateLimitStoreArgs points the PopulationGateway at the demo's Redis and
// returns the --ratelimit-* flags the operator renders for its pods.
func (r *runner) rateLimitStoreArgs(ctx context.Context) ([]string, error) {
	ns := r.opts.Namespace
	patch := fmt.Sprintf(`{"spec":{"rateLimitStore":{"redis":{"address":%q,"passwordSecretRef":{"name":%q,"key":"password"},"to":[{"ipBlock":{"cidr":"127.0.0.1/32"}}]}}}}`,
		r.redisAddr, redisSecret)
	if _, err := r.kubectl(ctx, true, "patch", "populationgateway", gatewayName, "-n", ns, "--type=merge", "-p", patch); err != nil {
		return nil, err
	}
	var out string
	cond := func(ctx context.Context) (bool, error) {
		var err error
		out, err = r.kubectl(ctx, false, "get", "deployment", gatewayName+"-gateway", "-n", ns,
			"-o", `jsonpath={.spec.template.spec.containers[0].args}`)
		return err == nil && strings.Contains(out, "--ratelimit-redis-url="), nil
	}
	if err := r.poll(ctx, r.opts.ReadyTimeout, cond, func() string { return "gateway Deployment args: " + out }); err != nil {
		return nil, err
	}
	var deployed []string
	if err := json.Unmarshal([]byte(out), &deployed); err != nil {
		return nil, fmt.Errorf("reading the Deployment's args %q: %w", out, err)
	}
	files, err := r.secretFiles(ctx, redisSecret, r.gatewayDir(), map[string]string{"password": "redis.password"})
	if err != nil {
		return nil, err
	}
	var args, shown []string
	for _, a := range deployed {
		if !strings.HasPrefix(a, "--ratelimit-") {
			continue
		}
		shown = append(shown, a)
		if strings.HasPrefix(a, "--ratelimit-redis-password-file=") {
			// Where the pod mounts the Secret; here, where the demo wrote it.
			a = "--ratelimit-redis-password-file=" + files["password"]
		}
		args = append(args, a)
	}
	r.n.info("the Deployment's rate-limit flags: %s", strings.Join(shown, " "))
	return args, r.n.expect(len(args) >= 4 && strings.Contains(out, "--ratelimit-replicas=2"),
		"the operator passes each pod the Redis URL, a key prefix of this gateway's own, the password Secret as a file and --ratelimit-replicas=2 (spec.replicas)")
}

// lowerQuota sets VCB's daily quota to sharedQuota, so that the step can
// spend it, and waits until its policy entry says so.
func (r *runner) lowerQuota(ctx context.Context) error {
	name := r.connNames[sharedQuotaAgency]
	patch := fmt.Sprintf(`{"spec":{"rateLimit":{"dailyQuota":%d}}}`, sharedQuota)
	if _, err := r.kubectl(ctx, true, "patch", "ac", name, "-n", r.opts.Namespace, "--type=merge", "-p", patch); err != nil {
		return err
	}
	var state string
	programmed := func(ctx context.Context) (bool, error) {
		var ac popv1.AgencyConnection
		if err := r.env.Client.Get(ctx, client.ObjectKey{Namespace: r.opts.Namespace, Name: name}, &ac); err != nil {
			return false, fmt.Errorf("reading connection %s: %w", name, err)
		}
		ok, st := readyState(&ac)
		state = st
		return ok && ac.Status.ObservedGeneration == ac.Generation, nil
	}
	return r.poll(ctx, r.opts.ReadyTimeout, programmed, func() string { return name + ": " + state })
}

// startReplica starts one gateway process counting in Redis, with the
// main gateway's certificate, keys and policy, and an audit file of its
// own (the audit step reads the main gateway's records).
func (r *runner) startReplica(ctx context.Context, name string, limitArgs []string) (*replica, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	mport, err := freePort()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(r.opts.WorkDir, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating %s: %w", dir, err)
	}
	gw := r.gatewayDir()
	rep := &replica{name: name, addr: "127.0.0.1:" + strconv.Itoa(port), metrics: "http://127.0.0.1:" + strconv.Itoa(mport)}
	args := append([]string{
		"--kubeconfig=" + r.kubeconfigPath(),
		"--policy-namespace=" + r.opts.Namespace,
		"--policy-selector=popconnect.io/gateway=" + gatewayName,
		"--upstream-url=" + r.simURL,
		"--listen-address=" + rep.addr,
		"--metrics-address=127.0.0.1:" + strconv.Itoa(mport),
		"--tls-cert-file=" + filepath.Join(gw, "tls.crt"),
		"--tls-key-file=" + filepath.Join(gw, "tls.key"),
		"--client-ca-file=" + filepath.Join(gw, "client-ca.crt"),
		"--audit-file=" + filepath.Join(dir, "audit.log"),
		"--audit-hash-key-file=" + filepath.Join(gw, "audit.key"),
		"--shutdown-grace=2s",
	}, limitArgs...)
	// The step checks that both replicas count in Redis. A Redis call
	// past --ratelimit-redis-timeout (100ms by default) makes a replica
	// admit the request on its share, rightly, and Redis then counts
	// fewer requests than were served: a loaded machine leaves the
	// demo's redis-server unscheduled that long now and then. Allowed
	// this long, a slow call is still a shared one.
	args = append(args, "--ratelimit-redis-timeout=2s")
	shown := make([]string, 0, len(args))
	for _, a := range args {
		if strings.HasPrefix(a, "--ratelimit-") || strings.HasPrefix(a, "--listen-") || strings.HasPrefix(a, "--audit-file") {
			shown = append(shown, r.relFlag(a))
		}
	}
	r.n.cmd("bin/gateway ... " + strings.Join(shown, " ") + "   # " + name + ", same certificate, keys and policy as the first")
	if rep.proc, err = startProc(name, r.logDir(), filepath.Join(r.opts.BinDir, "gateway"), nil, args...); err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, rep.proc, rep.metrics+"/readyz", r.opts.ReadyTimeout); err != nil {
		return nil, err
	}
	return rep, nil
}

// replicaState is a replica's GET /ratelimitz.
func replicaState(ctx context.Context, rep *replica) (limitstate.State, error) {
	var st limitstate.State
	if err := rep.proc.exited(); err != nil {
		return st, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rep.metrics+"/ratelimitz", nil)
	if err != nil {
		return st, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, nil // not up yet: asked again
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil {
		return st, nil
	}
	return st, json.Unmarshal(b, &st)
}

// spendSharedQuota sends VCB's requests to the two replicas in turn: the
// quota's worth pass, the next on each replica gets 429 quota_exceeded,
// and Redis holds one count.
func (r *runner) spendSharedQuota(ctx context.Context) error {
	c, err := r.citizen()
	if err != nil {
		return err
	}
	vcb := r.agencies[sharedQuotaAgency]
	body := []byte(fmt.Sprintf(`{"nationalId":%q,"fullName":%q}`, c.NationalID, c.FullName))
	n := sharedQuota + len(r.replicas)
	r.n.cmd(fmt.Sprintf("%d x POST /v1/citizens:verify, to gateway-a and gateway-b in turn  (as %s, daily quota %d)", n, sharedQuotaAgency, sharedQuota))
	var line []string
	var over []*response
	ok := map[string]int{}
	for i := range n {
		rep := r.replicas[i%len(r.replicas)]
		resp, err := r.callAt(ctx, vcb.client, rep.addr, http.MethodPost, "/v1/citizens:verify", body)
		if err != nil {
			return fmt.Errorf("request %d to %s: %w", i+1, rep.name, err)
		}
		line = append(line, fmt.Sprintf("%s:%d", strings.TrimPrefix(rep.name, "gateway-"), resp.status))
		switch {
		case i < sharedQuota && resp.status == http.StatusOK:
			ok[rep.name]++
		case i >= sharedQuota && resp.status == http.StatusTooManyRequests && errorCode(resp.body) == "quota_exceeded":
			over = append(over, resp)
		default:
			return fmt.Errorf("request %d to %s: %d %s", i+1, rep.name, resp.status, resp.body)
		}
	}
	r.n.info("-> %s", strings.Join(line, " "))
	r.n.info("-> 429 Retry-After: %s  %s", over[0].retryAfter, strings.TrimSpace(string(over[0].body)))
	if err := r.n.expect(ok["gateway-a"]+ok["gateway-b"] == sharedQuota && len(over) == len(r.replicas),
		"%d served in all (%d by gateway-a, %d by gateway-b), then each replica refuses: the quota is spent for both",
		sharedQuota, ok["gateway-a"], ok["gateway-b"]); err != nil {
		return err
	}
	rc := r.redisClient()
	defer rc.Close()
	keys, err := rc.Keys(ctx, "*{"+sharedQuotaAgency+"}:quota:*").Result()
	if err != nil || len(keys) != 1 {
		return fmt.Errorf("the quota key in Redis: %v %v", keys, err)
	}
	count, err := rc.Get(ctx, keys[0]).Int64()
	if err != nil {
		return fmt.Errorf("reading %s: %w", keys[0], err)
	}
	ttl, _ := rc.TTL(ctx, keys[0]).Result()
	r.n.cmd("redis-cli GET '" + keys[0] + "'")
	r.n.info("-> %d  (expires in %s: an hour after midnight Asia/Ho_Chi_Minh)", count, ttl.Round(time.Minute))
	if err := r.n.expect(count == sharedQuota, "one count for both replicas in Redis; without spec.rateLimitStore each would have admitted %d, %d in all", sharedQuota, sharedQuota*len(r.replicas)); err != nil {
		return err
	}
	return nil
}
