package demo

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"
)

// auditLine is the part of an audit record the demo checks.
type auditLine struct {
	raw       string
	RequestID string `json:"requestId"`
	Hash      any    `json:"nationalIdHash"`
}

func countHandshakeErrors(log []byte) int {
	return bytes.Count(log, []byte("TLS handshake error"))
}

// readAudit parses the audit file's complete lines.
func (r *runner) readAudit() ([]auditLine, error) {
	b, err := os.ReadFile(r.auditPath())
	if err != nil {
		return nil, fmt.Errorf("reading audit log: %w", err)
	}
	var lines []auditLine
	for _, l := range strings.Split(string(b), "\n") {
		if l == "" {
			continue
		}
		var a auditLine
		if err := json.Unmarshal([]byte(l), &a); err != nil {
			return nil, fmt.Errorf("audit line is not JSON: %q: %w", l, err)
		}
		a.raw = l
		lines = append(lines, a)
	}
	return lines, nil
}

func (r *runner) audit(ctx context.Context) error {
	var lines []auditLine
	// Records are flushed every 200ms; wait for the demo's last ones.
	cond := func(context.Context) (bool, error) {
		var err error
		lines, err = r.readAudit()
		return len(lines) >= r.responses, err
	}
	if err := r.poll(ctx, 3*time.Second, cond, func() string {
		return fmt.Sprintf("%d audit records for %d responses", len(lines), r.responses)
	}); err != nil {
		return err
	}
	r.n.cmd("cat " + r.rel(r.auditPath()) + "   # the narrated requests' lines")
	byID := map[string]auditLine{}
	for _, l := range lines {
		byID[l.RequestID] = l
	}
	for _, s := range r.shown {
		l, ok := byID[s.requestID]
		if !ok {
			return fmt.Errorf("no audit record for %s (request id %q)", s.what, s.requestID)
		}
		r.n.info("# %s", s.what)
		r.n.block(l.raw)
	}
	if err := r.n.expect(len(lines) == r.responses, "one record per answered request: %d records, %d responses", len(lines), r.responses); err != nil {
		return err
	}
	var leaked int
	for _, l := range lines {
		for _, id := range r.ids {
			if strings.Contains(l.raw, id) {
				leaked++
			}
		}
	}
	if err := r.n.expect(leaked == 0, "no record contains the national ID %s in clear (%d do)", r.ids[0], leaked); err != nil {
		return err
	}
	mac := hmac.New(sha256.New, r.auditKey)
	mac.Write([]byte(r.ids[0]))
	want := hex.EncodeToString(mac.Sum(nil))
	first := byID[r.shown[0].requestID]
	return r.n.expect(first.Hash == want,
		"nationalIdHash = HMAC-SHA256(audit key from Secret %s-audit-key, ID) = %s...: an auditor with the key can find a citizen's reads, no one else can", gatewayName, want[:16])
}

func (r *runner) summary(ctx context.Context) error {
	ns := r.opts.Namespace
	if _, err := r.kubectl(ctx, true, "get", "popconnect", "-n", ns); err != nil {
		return err
	}
	out, err := r.kubectl(ctx, true, "get", "ac", "-n", ns, "-o", "wide")
	if err != nil {
		return err
	}
	remaining := 5 - len(r.deleted)
	if err := r.n.expect(strings.Count(out, "True") >= remaining, "all %d remaining connections Ready again (deleted: %s)", remaining, strings.Join(r.deleted, ", ")); err != nil {
		return err
	}
	r.n.info("(PopulationGateway Ready=False is expected here: envtest has no kubelet, so its Deployment never gets pods;")
	r.n.info(" the gateway the agencies used ran as a local process, fed by the same policy shards.)")
	return nil
}
