package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/popconnect/popconnect/gateway/audit"
	"github.com/popconnect/popconnect/internal/popdb"
)

// TestAuditSinkFull runs the gateway with its audit file on a full
// filesystem (/dev/full: every write fails with ENOSPC): a lookup gets 503
// audit_unavailable and no data, /readyz answers 503, the write errors are
// counted, and shutdown reports the records it could not write.
func TestAuditSinkFull(t *testing.T) {
	f := newFixture(t)
	gw := f.start(t, "--audit-file", "/dev/full")
	id, _ := popdb.NationalID(9)
	name := f.gen.Record(9).FullName
	byt := f.client(f.ca.Agency(t, "BYT"), 0)
	status, body, err := get(t, byt, "https://"+gw.agencyAddr+"/v1/citizens/"+id)
	if err != nil || status != http.StatusServiceUnavailable || !strings.Contains(body, `"error":"audit_unavailable"`) || strings.Contains(body, name) {
		t.Fatalf("lookup with a full audit disk: %d %s %v", status, body, err)
	}
	plain := &http.Client{}
	status, body, err = get(t, plain, "http://"+gw.metricsAddr+"/readyz")
	if err != nil || status != http.StatusServiceUnavailable || !strings.Contains(body, "audit") {
		t.Fatalf("/readyz with a full audit disk: %d %s %v", status, body, err)
	}
	status, body, err = get(t, plain, "http://"+gw.metricsAddr+"/auditz")
	var state audit.State
	if err != nil || status != http.StatusServiceUnavailable || json.Unmarshal([]byte(body), &state) != nil ||
		state.Healthy || state.Sink != "file" || !strings.Contains(state.LastError, "no space left") || len(state.Stream) != 32 {
		t.Fatalf("/auditz with a full audit disk: %d %s %v", status, body, err)
	}
	_, metrics, err := get(t, plain, "http://"+gw.metricsAddr+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if n := counterValue(metrics, "popconnect_gateway_audit_write_errors_total"); n < 1 {
		t.Fatalf("popconnect_gateway_audit_write_errors_total = %v:\n%s", n, metrics)
	}
	gw.cancel()
	if err := <-gw.done; err == nil || !strings.Contains(err.Error(), "audit") {
		t.Fatalf("shutdown with unwritten records returned %v", err)
	}
	gw.done <- nil // the cleanup's stop returns at once
}

// counterValue reads an unlabelled sample from a Prometheus text page (-1
// when absent).
func counterValue(page, name string) float64 {
	for line := range strings.SplitSeq(page, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err == nil {
				return n
			}
		}
	}
	return -1
}

// TestAuditFsync: with --audit-fsync the record is in the file when the
// answer arrives.
func TestAuditFsync(t *testing.T) {
	f := newFixture(t)
	gw := f.start(t, "--audit-fsync")
	id, _ := popdb.NationalID(9)
	resp, err := f.client(f.ca.Agency(t, "BYT"), 0).Get("https://" + gw.agencyAddr + "/v1/citizens/" + id)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("lookup: %v %v", resp, err)
	}
	resp.Body.Close()
	log, err := os.ReadFile(gw.auditPath)
	if err != nil || !strings.Contains(string(log), `"requestId":"`+resp.Header.Get("X-Request-Id")+`"`) {
		t.Fatalf("record not in the audit file when the answer arrived: %v\n%s", err, log)
	}
}

// TestH2HeadersTooLargeAudited: an HTTP/2 request over --max-header-bytes
// is answered 431 headers_too_large by the gateway, and audited.
func TestH2HeadersTooLargeAudited(t *testing.T) {
	forEachHTTP2Server(t, func(t *testing.T, srv string) {
		f := newFixture(t)
		gw := f.start(t, "--max-header-bytes", "4096", "--http2-server", srv)
		c := f.client(f.ca.Agency(t, "BYT"), 0)
		c.Transport.(*http.Transport).ForceAttemptHTTP2 = true
		req, _ := http.NewRequest("GET", "https://"+gw.agencyAddr+"/v1/citizens/001099000001", nil)
		for i := range 10 {
			req.Header.Set("X-Filler-"+strconv.Itoa(i), strings.Repeat("a", 500))
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge || !strings.Contains(string(body), `"error":"headers_too_large"`) {
			t.Fatalf("%s %d %s", resp.Proto, resp.StatusCode, body)
		}
		log, err := os.ReadFile(gw.auditPath)
		if err != nil || !strings.Contains(string(log), `"requestId":"`+resp.Header.Get("X-Request-Id")+`"`) ||
			!strings.Contains(string(log), `"agency":"BYT"`) || !strings.Contains(string(log), `"reason":"headers_too_large"`) {
			t.Fatalf("no audit record of the 431: %v\n%s", err, log)
		}
	})
}
