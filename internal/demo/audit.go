package demo

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
)

// auditLine is the part of an audit record the demo checks.
type auditLine struct {
	raw       string
	stream    string
	seq       uint64
	RequestID string   `json:"requestId"`
	Agency    string   `json:"agency"`
	Hash      any      `json:"nationalIdHash"`
	Fields    []string `json:"fieldsReturned"`
	Status    int      `json:"status"`
}

func countHandshakeErrors(log []byte) int {
	return bytes.Count(log, []byte("TLS handshake error"))
}

func (r *runner) audit(ctx context.Context) error {
	// Every answer waited for its record's commit: no polling needed.
	lines, err := r.readAuditTable(ctx)
	if err != nil {
		return err
	}
	r.n.cmd("psql \"$(cat " + r.rel(r.auditDBURLPath()) + ")\" -c 'SELECT record, chain FROM popconnect_audit_records ORDER BY stream, seq'   # the narrated requests' rows")
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
	if err := r.n.expect(len(lines) == r.responses, "one record per answered request, each committed before its answer left: %d records, %d responses", len(lines), r.responses); err != nil {
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
	if err := r.n.expect(first.Hash == want,
		"nationalIdHash = HMAC-SHA256(audit key from Secret %s-audit-key, ID) = %s...: an auditor with the key can find a citizen's reads, no one else can", gatewayName, want[:16]); err != nil {
		return err
	}
	// The record an insider edits: a read that returned several fields,
	// past the stream's first record.
	for _, l := range lines {
		if l.seq > 1 && l.Status == 200 && len(l.Fields) >= 2 {
			return r.proveAudit(ctx, l)
		}
	}
	return errors.New("no record of a read with two fields or more to edit")
}

// proveAudit runs popconnect-audit verify over the table: intact; then
// after an insider edits one row; then again once the row is restored.
func (r *runner) proveAudit(ctx context.Context, edited auditLine) error {
	out, code, err := r.verifyAudit(ctx)
	if err != nil {
		return err
	}
	r.n.block(strings.TrimSpace(out))
	if err := r.n.expect(code == 0 && strings.Contains(out, "intact"),
		"popconnect-audit verify: every record is numbered (stream, seq) and chained to the one before by an HMAC under a key derived from the audit key: exit %d", code); err != nil {
		return err
	}
	// An insider hides one field of what an agency read.
	record, fields, err := r.auditRow(ctx, edited.stream, edited.seq)
	if err != nil {
		return err
	}
	if len(fields) < 2 {
		return fmt.Errorf("the record to edit returned %d fields", len(fields))
	}
	hidden := fields[0]
	forged := strings.Replace(record, `"fieldsReturned":["`+hidden+`",`, `"fieldsReturned":[`, 1)
	r.n.cmd(fmt.Sprintf(`psql ... -c "UPDATE popconnect_audit_records SET record = <record without %s>, fields_returned = array_remove(fields_returned, '%s') WHERE stream = '%s' AND seq = %d"`,
		hidden, hidden, edited.stream, edited.seq))
	r.n.info("# an insider with write access to the table hides that %s read %s", edited.Agency, hidden)
	const update = `UPDATE popconnect_audit_records SET record = $3, fields_returned = $4 WHERE stream = $1 AND seq = $2`
	if err := r.execAuditDB(ctx, update, edited.stream, edited.seq, forged, fields[1:]); err != nil {
		return err
	}
	out, code, err = r.verifyAudit(ctx)
	if err != nil {
		return err
	}
	r.n.block(strings.TrimSpace(out))
	if err := r.n.expect(code == 1 && strings.Contains(out, fmt.Sprintf("stream %s: BROKEN at seq %d", edited.stream, edited.seq)),
		"the edit is caught: exit %d, naming the stream and the first bad seq (%d)", code, edited.seq); err != nil {
		return err
	}
	// The original row is put back, as a restore from backup would.
	if err := r.execAuditDB(ctx, update, edited.stream, edited.seq, record, fields); err != nil {
		return err
	}
	out, code, err = r.verifyAudit(ctx)
	if err != nil {
		return err
	}
	return r.n.expect(code == 0, "row restored: verify passes again (exit %d). What the chain cannot show, a cut tail, the gateway's metric popconnect_gateway_audit_last_seq does", code)
}

// verifyAudit runs bin/popconnect-audit verify over the audit table and
// returns its output and exit status.
func (r *runner) verifyAudit(ctx context.Context) (string, int, error) {
	keyFile := filepath.Join(r.gatewayDir(), "audit.key")
	urlFile := r.auditDBURLPath()
	args := []string{"verify", "--postgres-url-file", urlFile, "--key-file", keyFile}
	r.n.cmd("bin/popconnect-audit verify --postgres-url-file " + r.rel(urlFile) + " --key-file " + r.rel(keyFile))
	out, err := runCmd(ctx, r.root, nil, filepath.Join(r.opts.BinDir, "popconnect-audit"), args...)
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out, ee.ExitCode(), nil
	}
	if err != nil {
		return out, -1, err
	}
	return out, 0, nil
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
