package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/popconnect/popconnect/gateway/audit"
	"github.com/popconnect/popconnect/gateway/audit/pgsink"
	"github.com/popconnect/popconnect/gateway/audit/verify"
	"github.com/popconnect/popconnect/internal/popdb"
	"github.com/popconnect/popconnect/internal/testpg"
)

// postgresArgs writes url to a file, as the Secret volume holds it (with
// a trailing newline), and returns the flag that names it.
func postgresArgs(t *testing.T, url string) []string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "url")
	if err := os.WriteFile(path, []byte("  "+url+"\n"), 0o400); err != nil {
		t.Fatal(err)
	}
	return []string{"--audit-postgres-url-file", path}
}

// startPostgres runs the gateway in-process with its audit records in the
// database at url.
func (f *fixture) startPostgres(t *testing.T, url string) *instance {
	t.Helper()
	in := &instance{dir: f.dir, done: make(chan error, 1)}
	return f.launch(t, in, f.args("", postgresArgs(t, url)...))
}

// tableRecords verifies the audit table with popconnect-audit's verifier
// (every stream intact, the columns agreeing with the records) and returns
// each record's status by request ID.
func tableRecords(t *testing.T, url string) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	src, err := pgsink.NewSource(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	report, err := verify.Run(src, []byte(fixtureAuditKey), verify.Options{})
	src.Close()
	if err != nil || !report.Intact() {
		t.Fatalf("verifying the audit table: %v; broken streams: %+v, problems: %+v", err, report.Broken(), report.Problems)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rows, err := conn.Query(ctx, `SELECT request_id, status FROM `+pgsink.Table)
	if err != nil {
		t.Fatal(err)
	}
	status := map[string]int{}
	for rows.Next() {
		var id string
		var s int32
		if err := rows.Scan(&id, &s); err != nil {
			t.Fatal(err)
		}
		status[id] = int(s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return status
}

// TestKilledUnderLoadPostgres is TestKilledUnderLoad with the records in
// PostgreSQL: every 200 an agency received has its committed row.
func TestKilledUnderLoadPostgres(t *testing.T) {
	db := testpg.Start(t)
	f := newFixture(t)
	cmd, addr := startKillable(t, f.args("", postgresArgs(t, db.URL())...))
	c := f.client(f.ca.Agency(t, "BYT"), 0)
	c.Timeout = 5 * time.Second
	ok := loadUntilKilled(t, c, "https://"+addr+"/v1/citizens/", 300, func() { _ = cmd.Process.Kill() })
	_ = cmd.Wait()
	if len(ok) < 300 {
		t.Fatalf("only %d answers before the kill", len(ok))
	}
	recorded := tableRecords(t, db.URL())
	for _, id := range ok {
		if recorded[id] != http.StatusOK {
			t.Fatalf("request %s was answered 200 but its row says %d (0: no row); %d answers, %d rows", id, recorded[id], len(ok), len(recorded))
		}
	}
	t.Logf("%d answers of 200 before the kill, %d rows", len(ok), len(recorded))
}

// TestAuditDatabaseDown: with the database stopped, a lookup gets 503
// audit_unavailable without data, /readyz and /auditz say why; started
// again, the gateway serves by itself, and the table holds every request,
// the refused ones included, in one intact stream. A gateway started while
// the database is down is unready, not dead.
func TestAuditDatabaseDown(t *testing.T) {
	db := testpg.Start(t)
	f := newFixture(t)
	db.Stop()
	gw := f.startPostgres(t, db.URL())
	plain := &http.Client{Timeout: 10 * time.Second}
	auditz := func() (int, audit.State) {
		status, body, err := get(t, plain, "http://"+gw.metricsAddr+"/auditz")
		var st audit.State
		if err != nil || json.Unmarshal([]byte(body), &st) != nil {
			t.Fatalf("/auditz: %d %s %v", status, body, err)
		}
		return status, st
	}
	if status, st := auditz(); status != http.StatusServiceUnavailable || st.Healthy || st.Sink != "postgres" ||
		!strings.Contains(st.LastError, "connecting to the audit database") || strings.Contains(st.LastError, db.Password()) {
		t.Fatalf("/auditz with the database down at start: %d %+v", status, st)
	}
	db.Start()
	byt := f.client(f.ca.Agency(t, "BYT"), 0)
	id, _ := popdb.NationalID(9)
	name := f.gen.Record(9).FullName
	eventually(t, "serving once the database is up", func() bool {
		status, _, _ := get(t, plain, "http://"+gw.metricsAddr+"/readyz")
		return status == http.StatusOK
	})
	var served []string
	lookup := func(want int) {
		t.Helper()
		resp, err := byt.Get("https://" + gw.agencyAddr + "/v1/citizens/" + id)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want || (want != http.StatusOK && strings.Contains(string(body), name)) {
			t.Fatalf("lookup: %d %s, want %d", resp.StatusCode, body, want)
		}
		served = append(served, resp.Header.Get("X-Request-Id"))
	}
	lookup(http.StatusOK)

	db.Stop()
	lookup(http.StatusServiceUnavailable)
	if status, st := auditz(); status != http.StatusServiceUnavailable || st.Healthy || st.LastSeq != 1 {
		t.Fatalf("/auditz with the database stopped: %d %+v", status, st)
	}
	if status, body, _ := get(t, plain, "http://"+gw.metricsAddr+"/readyz"); status != http.StatusServiceUnavailable || !strings.Contains(body, "audit") {
		t.Fatalf("/readyz with the database stopped: %d %s", status, body)
	}
	db.Start()
	eventually(t, "ready again without a request", func() bool {
		status, _, _ := get(t, plain, "http://"+gw.metricsAddr+"/readyz")
		return status == http.StatusOK
	})
	lookup(http.StatusOK)
	rows := tableRecords(t, db.URL())
	for i, want := range []int{http.StatusOK, http.StatusServiceUnavailable, http.StatusOK} {
		if rows[served[i]] != want {
			t.Fatalf("request %d (%s): row status %d, want %d; rows %v", i+1, served[i], rows[served[i]], want, rows)
		}
	}
}
