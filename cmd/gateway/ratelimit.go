package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/popconnect/popconnect/gateway/metrics"
	"github.com/popconnect/popconnect/gateway/ratelimit"
)

// redisTarget is --ratelimit-redis-url parsed.
type redisTarget struct {
	addr string
	db   int
	tls  bool
}

// parseRedisURL accepts redis://HOST:PORT[/DB] and rediss:// (TLS). The
// password is never in the URL (it would show in the pod's arguments): it
// comes from --ratelimit-redis-password-file.
func parseRedisURL(s string) (redisTarget, error) {
	u, err := url.Parse(s)
	if err != nil {
		return redisTarget{}, fmt.Errorf("--ratelimit-redis-url: %w", err)
	}
	var t redisTarget
	switch u.Scheme {
	case "redis":
	case "rediss":
		t.tls = true
	default:
		return redisTarget{}, errors.New("--ratelimit-redis-url must be redis://HOST:PORT[/DB] or rediss://HOST:PORT[/DB]")
	}
	if u.User != nil {
		return redisTarget{}, errors.New("--ratelimit-redis-url must not hold credentials: put the password in --ratelimit-redis-password-file")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return redisTarget{}, errors.New("--ratelimit-redis-url takes no query or fragment")
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil || host == "" || port == "" {
		return redisTarget{}, fmt.Errorf("--ratelimit-redis-url needs HOST:PORT, got %q", u.Host)
	}
	t.addr = u.Host
	if db := strings.TrimPrefix(u.Path, "/"); db != "" {
		if t.db, err = strconv.Atoi(db); err != nil || t.db < 0 {
			return redisTarget{}, fmt.Errorf("--ratelimit-redis-url: database %q is not a number", db)
		}
	}
	return t, nil
}

// rateLimitStore builds the Redis store of the flags, nil without
// --ratelimit-redis-url (each replica then counts alone).
func rateLimitStore(o *options, log *slog.Logger, m *metrics.Metrics) (*ratelimit.Redis, error) {
	if o.rateLimitRedisURL == "" {
		log.Info("rate limits and daily quotas are counted by this replica alone (no --ratelimit-redis-url)")
		return nil, nil
	}
	t, err := parseRedisURL(o.rateLimitRedisURL)
	if err != nil {
		return nil, err
	}
	cfg := ratelimit.RedisConfig{
		Addr:      t.addr,
		DB:        t.db,
		KeyPrefix: o.rateLimitRedisPrefix,
		Timeout:   o.rateLimitRedisTimeout,
		Lease:     o.rateLimitRedisLease,
		Replicas:  o.rateLimitReplicas,
		Log:       log,
		OnState:   m.RateLimitShared,
	}
	if cfg.Lease == 0 {
		cfg.Lease = -1 // the flag's 0: no lease (the config's 0 is the default)
	}
	if o.rateLimitRedisPassword != "" {
		b, err := os.ReadFile(o.rateLimitRedisPassword)
		if err != nil {
			return nil, fmt.Errorf("--ratelimit-redis-password-file: %w", err)
		}
		if cfg.Password = strings.TrimSpace(string(b)); cfg.Password == "" {
			return nil, errors.New("--ratelimit-redis-password-file is empty")
		}
	}
	if t.tls {
		host, _, _ := net.SplitHostPort(t.addr)
		cfg.TLS = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
		if o.rateLimitRedisCAFile != "" {
			pem, err := os.ReadFile(o.rateLimitRedisCAFile)
			if err != nil {
				return nil, fmt.Errorf("--ratelimit-redis-ca-file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, errors.New("--ratelimit-redis-ca-file holds no PEM certificate")
			}
			cfg.TLS.RootCAs = pool
		}
	} else if o.rateLimitRedisCAFile != "" {
		return nil, errors.New("--ratelimit-redis-ca-file needs a rediss:// URL")
	}
	// go-redis logs its own dial failures; the store says once per
	// transition what matters, so they go to the debug level.
	redis.SetLogger(redisLog{log})
	r, err := ratelimit.NewRedis(cfg)
	if err != nil {
		return nil, err
	}
	m.RateLimitShared(true)
	log.Info("rate limits and daily quotas are counted in Redis, shared by the replicas",
		"redis", t.addr, "db", t.db, "tls", t.tls, "replicas", o.rateLimitReplicas)
	return r, nil
}

// redisLog sends go-redis's own messages to the debug level.
type redisLog struct{ log *slog.Logger }

func (l redisLog) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, "redis client: "+fmt.Sprintf(format, v...))
}
