// Package metrics holds the gateway's Prometheus metrics, in a registry of
// their own (no global registry).
package metrics

import (
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the gateway's metrics. Agency labels are agency codes from
// verified certificates (or "" before identification), so their cardinality
// is bounded by the certificates the CA issued.
type Metrics struct {
	Registry         *prometheus.Registry
	requests         *prometheus.CounterVec
	latency          *prometheus.HistogramVec
	rateLimited      *prometheus.CounterVec
	quotaRefused     *prometheus.CounterVec
	policyInfo       *prometheus.GaugeVec
	policyLoadErrors prometheus.Counter
	agencies         prometheus.Gauge
	policySwap       prometheus.Histogram
	rateLimitShared  prometheus.Gauge
	rateLimitFalls   prometheus.Counter
}

// New creates the metrics and registers them, with Go and process
// collectors, in a new registry.
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "popconnect_gateway_requests_total",
			Help: "Agency requests by agency, operation and HTTP status code.",
		}, []string{"agency", "operation", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "popconnect_gateway_request_duration_seconds",
			Help:    "Agency request latency by agency and operation.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"agency", "operation"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "popconnect_gateway_rate_limited_total",
			Help: "Requests refused by the agency's token bucket.",
		}, []string{"agency", "operation"}),
		quotaRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "popconnect_gateway_quota_refused_total",
			Help: "Requests refused because the agency's daily quota was spent.",
		}, []string{"agency", "operation"}),
		policyInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "popconnect_gateway_policy_info",
			Help: "The policy version in force (value 1).",
		}, []string{"version"}),
		policyLoadErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "popconnect_gateway_policy_load_errors_total",
			Help: "Policy documents that failed to load, and agency conflicts between shards.",
		}),
		agencies: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "popconnect_gateway_agencies_loaded",
			Help: "Agencies in the policy in force (including suspended ones).",
		}),
		policySwap: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "popconnect_gateway_policy_swap_duration_seconds",
			Help:    "Time to compile and swap in a new policy.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		rateLimitShared: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "popconnect_gateway_ratelimit_shared",
			Help: "1 while rates and quotas are counted in Redis, shared by the replicas; 0 while this replica enforces them alone (no store, or its share while Redis is unreachable).",
		}),
		rateLimitFalls: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "popconnect_gateway_ratelimit_fallbacks_total",
			Help: "Times Redis became unreachable and this replica fell back to its share of the limits.",
		}),
	}
	m.Registry.MustRegister(m.requests, m.latency, m.rateLimited, m.quotaRefused, m.policyInfo,
		m.policyLoadErrors, m.agencies, m.policySwap, m.rateLimitShared, m.rateLimitFalls,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

// Request records one finished request.
func (m *Metrics) Request(agency, operation string, code int, d time.Duration) {
	m.requests.WithLabelValues(agency, operation, strconv.Itoa(code)).Inc()
	m.latency.WithLabelValues(agency, operation).Observe(d.Seconds())
}

// Agency caches one agency's metric children for its successful requests,
// so the hot path does not hash three label values and search the vectors
// on every request. Children are looked up on the first request of each
// operation, not when the policy loads: an agency that never calls must not
// add series. The gateway keeps one Agency per compiled policy entry.
type Agency struct {
	m      *Metrics
	agency string
	slots  [MaxOperationSlots]atomic.Pointer[agencyOp]
}

// MaxOperationSlots is how many operations an Agency caches.
const MaxOperationSlots = 4

type agencyOp struct {
	operation string
	ok        prometheus.Counter
	latency   prometheus.Observer
}

// ForAgency returns the cache for agency.
func (m *Metrics) ForAgency(agency string) *Agency { return &Agency{m: m, agency: agency} }

// Request records one finished request of operation, which the caller
// always passes with the same slot (0 <= slot < MaxOperationSlots). Only
// 200s are cached; other codes are rare and take the general path.
func (a *Agency) Request(slot int, operation string, code int, d time.Duration) {
	if code != http.StatusOK || slot < 0 || slot >= MaxOperationSlots {
		a.m.Request(a.agency, operation, code, d)
		return
	}
	c := a.slots[slot].Load()
	if c == nil || c.operation != operation {
		c = &agencyOp{
			operation: operation,
			ok:        a.m.requests.WithLabelValues(a.agency, operation, "200"),
			latency:   a.m.latency.WithLabelValues(a.agency, operation),
		}
		a.slots[slot].Store(c)
	}
	c.ok.Inc()
	c.latency.Observe(d.Seconds())
}

// RateLimited counts a request refused by the token bucket.
func (m *Metrics) RateLimited(agency, operation string) {
	m.rateLimited.WithLabelValues(agency, operation).Inc()
}

// QuotaRefused counts a request refused by the daily quota.
func (m *Metrics) QuotaRefused(agency, operation string) {
	m.quotaRefused.WithLabelValues(agency, operation).Inc()
}

// PolicyLoaded reports the policy now in force.
func (m *Metrics) PolicyLoaded(version string, agencies int, swap time.Duration) {
	m.policyInfo.Reset()
	m.policyInfo.WithLabelValues(version).Set(1)
	m.agencies.Set(float64(agencies))
	m.policySwap.Observe(swap.Seconds())
}

// PolicyLoadError counts one failed policy document or agency conflict.
func (m *Metrics) PolicyLoadError() { m.policyLoadErrors.Inc() }

// RateLimitShared records whether the limits are counted in Redis (true)
// or by this replica alone; a change to false counts a fallback.
func (m *Metrics) RateLimitShared(shared bool) {
	if shared {
		m.rateLimitShared.Set(1)
		return
	}
	m.rateLimitShared.Set(0)
	m.rateLimitFalls.Inc()
}
