package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/popconnect/popconnect/gateway/audit"
	"github.com/popconnect/popconnect/gateway/audit/pgsink"
	"github.com/popconnect/popconnect/internal/testpg"
)

// TestVerifyPostgres runs verify over a real PostgreSQL audit table that
// the gateway's Logger filled (two streams: a restart), intact, then after
// each kind of tampering an insider with write access to the table could
// do, each undone before the next.
func TestVerifyPostgres(t *testing.T) {
	srv := testpg.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	streams := fillTable(t, srv.URL(), 2, 5)
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, testKey, 0o600); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := conn.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	urlFile := filepath.Join(t.TempDir(), "url")
	if err := os.WriteFile(urlFile, []byte(srv.URL()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	calls := 0
	verifyDB := func() (int, string) {
		// Both ways of naming the database, in turn.
		args := []string{"verify", "--postgres-url", srv.URL(), "--key-file", keyFile}
		if calls++; calls%2 == 0 {
			args = []string{"verify", "--postgres-url-file", urlFile, "--key-file", keyFile}
		}
		var out, errOut bytes.Buffer
		code := run(args, nil, &out, &errOut)
		return code, out.String() + errOut.String()
	}
	if code, out := verifyDB(); code != 0 || strings.Count(out, "intact") != 2 || strings.Contains(out, srv.Password()) {
		t.Fatalf("intact table: exit %d\n%s", code, out)
	}
	a := streams[0]
	cases := []struct {
		name       string
		tamper     func()
		undo       func()
		wantInLine string
	}{
		{"column edited", func() { exec(`UPDATE popconnect_audit_records SET agency = 'CA' WHERE stream = $1 AND seq = 3`, a) },
			func() { exec(`UPDATE popconnect_audit_records SET agency = 'BYT' WHERE stream = $1 AND seq = 3`, a) },
			"BROKEN at seq 3"},
		{"record edited", func() {
			exec(`UPDATE popconnect_audit_records SET record = replace(record, '"status":200', '"status":403') WHERE stream = $1 AND seq = 4`, a)
		}, func() {
			exec(`UPDATE popconnect_audit_records SET record = replace(record, '"status":403', '"status":200') WHERE stream = $1 AND seq = 4`, a)
		}, "BROKEN at seq 4"},
		{"row deleted", func() {
			exec(`CREATE TABLE saved AS SELECT * FROM popconnect_audit_records WHERE stream = $1 AND seq = 2`, a)
			exec(`DELETE FROM popconnect_audit_records WHERE stream = $1 AND seq = 2`, a)
		}, func() {
			exec(`INSERT INTO popconnect_audit_records SELECT * FROM saved`)
			exec(`DROP TABLE saved`)
		}, "BROKEN at seq 2"},
	}
	for _, c := range cases {
		c.tamper()
		code, out := verifyDB()
		if code != 1 || !strings.Contains(out, "stream "+a+": BROKEN") || !strings.Contains(out, c.wantInLine) {
			t.Fatalf("%s: exit %d, want 1 naming stream %s and %q:\n%s", c.name, code, a, c.wantInLine, out)
		}
		c.undo()
		if code, out := verifyDB(); code != 0 {
			t.Fatalf("after undoing %s: exit %d\n%s", c.name, code, out)
		}
	}
}

// fillTable stores n records in each of streams new streams with the
// gateway's Logger over the PostgreSQL sink, and returns the streams.
func fillTable(t *testing.T, url string, streams, n int) []string {
	t.Helper()
	var names []string
	for range streams {
		sink, err := pgsink.New(url)
		if err != nil {
			t.Fatal(err)
		}
		l, err := audit.New(sink, testKey)
		if err != nil {
			t.Fatal(err)
		}
		for i := 1; i <= n; i++ {
			rec := &audit.Record{Time: time.Now(), RequestID: fmt.Sprintf("r-%d", i), Agency: "BYT", Operation: "Lookup",
				NationalIDHashes: []string{l.Hash(fmt.Sprintf("0010990000%02d", i))}, FieldsReturned: []string{"fullName"}, Status: 200}
			if err := l.Commit(rec); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		names = append(names, l.Stream())
	}
	return names
}
