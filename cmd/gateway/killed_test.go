package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/popconnect/popconnect/gateway/audit/verify"
	"github.com/popconnect/popconnect/internal/popdb"
)

// helperArgsEnv carries the flags of the gateway process that
// TestHelperGatewayProcess runs for a test that kills it.
const helperArgsEnv = "POPCONNECT_TEST_GATEWAY_ARGS"

// TestHelperGatewayProcess is not a test of its own: it is the gateway
// process that TestKilledUnderLoad starts from the test binary, and kills.
func TestHelperGatewayProcess(t *testing.T) {
	raw := os.Getenv(helperArgsEnv)
	if raw == "" {
		t.Skip("the gateway process of TestKilledUnderLoad; runs only as its child")
	}
	var args []string
	if err := json.Unmarshal([]byte(raw), &args); err != nil {
		t.Fatal(err)
	}
	err := run(context.Background(), args, io.Discard, os.Stderr, func(agency, metrics string) {
		fmt.Printf("listening %s %s\n", agency, metrics)
	})
	t.Fatalf("gateway returned: %v", err)
}

// startKillable runs the gateway with args as a child process and returns
// it with its agency address.
func startKillable(t *testing.T, args []string) (*exec.Cmd, string) {
	t.Helper()
	raw, _ := json.Marshal(args)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperGatewayProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperArgsEnv+"="+string(raw))
	cmd.Stderr = io.Discard
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "listening ") {
				lines <- sc.Text()
			}
		}
		close(lines)
	}()
	select {
	case line, ok := <-lines:
		if !ok {
			t.Fatal("the gateway process exited before listening")
		}
		return cmd, strings.Fields(line)[1]
	case <-time.After(30 * time.Second):
		t.Fatal("the gateway process did not listen within 30s")
	}
	return nil, ""
}

// loadUntilKilled sends lookups from several clients until the gateway
// stops answering, and returns the request IDs of the 200 answers that
// arrived whole. kill is called once minOK answers arrived.
func loadUntilKilled(t *testing.T, c *http.Client, url string, minOK int, kill func()) []string {
	t.Helper()
	var (
		mu     sync.Mutex
		ok     []string
		killed sync.Once
		wg     sync.WaitGroup
	)
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				id, _ := popdb.NationalID(int64(w*1000+i) % 1000)
				resp, err := c.Get(url + id)
				if err != nil {
					return // the gateway is gone
				}
				_, rerr := io.ReadAll(resp.Body)
				resp.Body.Close()
				if rerr != nil {
					return
				}
				if resp.StatusCode != http.StatusOK {
					t.Errorf("lookup answered %d before the kill", resp.StatusCode)
					return
				}
				mu.Lock()
				ok = append(ok, resp.Header.Get("X-Request-Id"))
				n := len(ok)
				mu.Unlock()
				if n >= minOK {
					killed.Do(kill)
				}
			}
		})
	}
	wg.Wait()
	return ok
}

// TestKilledUnderLoad kills the gateway (SIGKILL, as the OOM killer or a
// node crash would) while agencies read, and then finds a record with
// status 200 in the audit file for every 200 answer an agency received:
// a response never leaves before its record. The log's chain is intact.
func TestKilledUnderLoad(t *testing.T) {
	f := newFixture(t)
	auditPath := t.TempDir() + "/audit.log"
	cmd, addr := startKillable(t, f.args(auditPath))
	c := f.client(f.ca.Agency(t, "BYT"), 0)
	c.Timeout = 5 * time.Second
	ok := loadUntilKilled(t, c, "https://"+addr+"/v1/citizens/", 300, func() { _ = cmd.Process.Kill() })
	_ = cmd.Wait()
	if len(ok) < 300 {
		t.Fatalf("only %d answers before the kill", len(ok))
	}
	recorded := readRecords(t, auditPath, []byte(fixtureAuditKey))
	for _, id := range ok {
		if recorded[id] != http.StatusOK {
			t.Fatalf("request %s was answered 200 but its record says %d (0: no record); %d answers, %d records",
				id, recorded[id], len(ok), len(recorded))
		}
	}
	t.Logf("%d answers of 200 before the kill, %d records", len(ok), len(recorded))
}

// readRecords reads an audit log: each whole record's status by request
// ID. It fails the test unless popconnect-audit's verifier finds every
// stream intact.
func readRecords(t *testing.T, path string, key []byte) map[string]int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	report, err := verify.Run(verify.NewFileSource(bytes.NewReader(b)), key, verify.Options{})
	if err != nil || !report.Intact() {
		t.Fatalf("verifying the audit log: %v; broken streams: %+v, problems: %+v", err, report.Broken(), report.Problems)
	}
	status := map[string]int{}
	for line := range strings.SplitSeq(strings.TrimSuffix(string(b), "\n"), "\n") {
		var rec struct {
			RequestID string `json:"requestId"`
			Status    int    `json:"status"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil {
			status[rec.RequestID] = rec.Status
		}
	}
	return status
}
