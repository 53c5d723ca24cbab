package metrics

import "github.com/prometheus/client_golang/prometheus"

// AuditWriteErrors exports the audit logger's count of failed writes.
func (m *Metrics) AuditWriteErrors(count func() uint64) {
	m.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "popconnect_gateway_audit_write_errors_total",
		Help: "Failed writes to the audit sink (each refused its requests with 503 audit_unavailable), and records dropped while it failed.",
	}, func() float64 { return float64(count()) }))
}

// AuditLastSeq exports the seq of the last audit record of this process's
// stream known to be in the sink. A verifier that finds the stream ending
// earlier has found a truncated audit log, which the chain alone cannot
// show.
func (m *Metrics) AuditLastSeq(stream, sink string, seq func() uint64) {
	m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "popconnect_gateway_audit_last_seq",
		Help:        "Seq of the last audit record of this process's stream known to be in the sink.",
		ConstLabels: prometheus.Labels{"stream": stream, "sink": sink},
	}, func() float64 { return float64(seq()) }))
}

// AuditBatches exports the number of writes (or COPYs) of audit records:
// popconnect_gateway_audit_last_seq divided by it is the records per
// group commit.
func (m *Metrics) AuditBatches(count func() uint64) {
	m.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "popconnect_gateway_audit_batches_total",
		Help: "Writes (or COPYs) of audit records to the sink, each holding every record committed meanwhile.",
	}, func() float64 { return float64(count()) }))
}
