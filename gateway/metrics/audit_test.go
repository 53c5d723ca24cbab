package metrics

import (
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestAuditWriteErrors(t *testing.T) {
	m := New()
	var n atomic.Uint64
	m.AuditWriteErrors(n.Load)
	n.Add(3)
	want := `
# HELP popconnect_gateway_audit_write_errors_total Failed writes to the audit sink (each refused its requests with 503 audit_unavailable), and records dropped while it failed.
# TYPE popconnect_gateway_audit_write_errors_total counter
popconnect_gateway_audit_write_errors_total 3
`
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want), "popconnect_gateway_audit_write_errors_total"); err != nil {
		t.Fatal(err)
	}
}
