package metrics

import "github.com/prometheus/client_golang/prometheus"

// AuditWriteErrors exposes popconnect_gateway_audit_write_errors_total,
// read from count (the audit logger's own counter) at every scrape, so
// the logger needs no reference to the metrics.
func (m *Metrics) AuditWriteErrors(count func() uint64) {
	m.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "popconnect_gateway_audit_write_errors_total",
		Help: "Failed writes to the audit sink (each refused its requests with 503 audit_unavailable), and records dropped while it failed.",
	}, func() float64 { return float64(count()) }))
}
