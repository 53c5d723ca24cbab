package demo

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/popconnect/popconnect/internal/testenv"
)

// buildBinaries builds what the demo runs into dir, from this checkout, so
// the test exercises the code under test rather than a stale bin/.
func buildBinaries(t *testing.T, dir string) {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	for name, pkg := range map[string]string{"manager": ".", "gateway": "./cmd/gateway", "popdb-sim": "./cmd/popdb-sim", "popconnect-audit": "./cmd/popconnect-audit"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, name), pkg)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, out)
		}
	}
}

// TestDemoScenario runs the whole demo non-interactively: it fails when
// any narrated expectation does not hold, and checks the transcript has
// every section.
func TestDemoScenario(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane and three binaries; skipped with -short")
	}
	bin := t.TempDir()
	buildBinaries(t, bin)

	ctx := context.Background()
	if d, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		// Leave time for teardown and for reporting the transcript.
		ctx, cancel = context.WithDeadline(ctx, d.Add(-30*time.Second))
		defer cancel()
	}
	var out bytes.Buffer
	work := t.TempDir()
	secrets := &sensitive{}
	err := Run(ctx, Options{Out: &out, WorkDir: work, BinDir: bin, sensitive: secrets})
	transcript := out.String()
	if err != nil {
		t.Fatalf("demo failed: %v\ntranscript:\n%s", err, transcript)
	}
	// No secret in any log: the national IDs asked about, PEM blocks, the
	// audit key and every private key of the run's Secrets.
	if len(secrets.nationalIDs) == 0 || len(secrets.secrets) < 7 {
		t.Errorf("the leak check collected %d national IDs and %d secrets; the demo has at least 1 and 7 (5 agencies, serving, CA, audit key, audit database password)",
			len(secrets.nationalIDs), len(secrets.secrets))
	}
	// The operator records Events (e.g. Ready) in every run: none means the
	// Events were not collected and their scan would prove nothing.
	if !strings.Contains(secrets.events, "Ready") {
		t.Errorf("the leak check collected no Ready Event of the operator; got:\n%s", secrets.events)
	}
	leaks := scanDemoLogs(t, work, transcript, secrets)
	for i, f := range leaks {
		if i == 20 {
			t.Errorf("... and %d more lines with secrets", len(leaks)-i)
			break
		}
		t.Errorf("secret in a log: %s", f)
	}
	t.Logf("leak check: %d log files, %d Events and the transcript scanned for %d national IDs, %d secrets and PEM blocks",
		countLogs(t, work), strings.Count(secrets.events, "\n"), len(secrets.nationalIDs), len(secrets.secrets))
	for _, l := range strings.Split(transcript, "\n") {
		if strings.Contains(l, "revocation measured:") {
			t.Log(strings.TrimSpace(l))
		}
	}
	for _, marker := range []string{
		"[1/19] Start a local control plane",
		"[8/19] Data minimisation",
		`"error":"field_not_allowed"`,
		`"error":"operation_not_allowed"`,
		`{"match":true}`,
		`{"match":false}`,
		"429 Retry-After:",
		"[13/19] Two replicas, one daily quota",
		"then each replica refuses: the quota is spent for both",
		"one count for both replicas in Redis",
		`"error":"agency_suspended"`,
		`"error":"agency_unknown"`,
		"revocation measured: suspension -> refusal",
		"[15/19] Identity comes only from a verified certificate",
		"[16/19] A borrowed identity from the real CA",
		`"error":"certificate_not_pinned"`,
		"[6/19] An audit database",
		"nationalIdHash = HMAC-SHA256",
		"popconnect-audit verify: every record is numbered",
		"the edit is caught: exit 1, naming the stream and the first bad seq",
		"[17/19] The citizen's access history",
		`"error":"case_reference_required"`,
		"the citizen's access history has two entries",
		"[19/19] What kubectl shows",
		"stopped PostgreSQL",
		"stopped redis",
		"DEMO OK",
		"stopped kube-apiserver and etcd",
		"total time",
	} {
		if !strings.Contains(transcript, marker) {
			t.Errorf("transcript lacks %q", marker)
		}
	}
	if strings.Contains(transcript, "\x1b[") {
		t.Error("transcript has ANSI colour codes although Color was false")
	}
	if t.Failed() {
		t.Logf("transcript:\n%s", transcript)
	}
}

func TestLeaves(t *testing.T) {
	doc := map[string]any{
		"a": "x",
		"b": map[string]any{"c": 1.0, "d": []any{map[string]any{"e": true}, map[string]any{"e": false}}},
	}
	got := map[string]string{}
	leaves("", doc, got)
	want := map[string]string{"a": "x", "b.c": "1", "b.d.e": "true"}
	if len(got) != len(want) {
		t.Fatalf("leaves = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("leaves[%q] = %q, want %q", k, got[k], v)
		}
	}
}

func TestOptionsRequireOutAndBinaries(t *testing.T) {
	if _, err := (Options{}).withDefaults(t.TempDir()); err == nil {
		t.Error("no error without Out")
	}
	_, err := (Options{Out: os.Stdout, BinDir: t.TempDir()}).withDefaults(t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "make build") {
		t.Errorf("missing binaries: err = %v, want a hint to run make build", err)
	}
}

func countLogs(t *testing.T, work string) int {
	files, err := filepath.Glob(filepath.Join(work, "logs", "*"))
	if err != nil {
		t.Fatal(err)
	}
	return len(files) + 1 // and the audit file
}
