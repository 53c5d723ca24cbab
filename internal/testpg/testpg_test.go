package testpg_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/popconnect/popconnect/internal/testpg"
)

func query(t *testing.T, url string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil {
		t.Fatalf("query: %v", err)
	}
	return n
}

// TestServer starts a server, writes to it, stops it (a client then cannot
// connect), starts it again on the same port and data, kills it and
// recovers; a wrong password is refused.
func TestServer(t *testing.T) {
	s := testpg.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.URL())
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE t (x int); INSERT INTO t VALUES (1), (2)"); err != nil {
		t.Fatalf("create: %v", err)
	}
	conn.Close(ctx)

	wrong := strings.Replace(s.URL(), s.Password(), "wrong", 1)
	if c, err := pgx.Connect(ctx, wrong); err == nil {
		c.Close(ctx)
		t.Fatal("a wrong password was accepted")
	} else if !strings.Contains(err.Error(), "password authentication failed") {
		t.Fatalf("wrong password: %v", err)
	}

	port := s.Port()
	s.Stop()
	if c, err := pgx.Connect(ctx, s.URL()); err == nil {
		c.Close(ctx)
		t.Fatal("connected to a stopped server")
	}
	s.Start()
	if s.Port() != port {
		t.Fatalf("port %d after restart, was %d", s.Port(), port)
	}
	if n := query(t, s.URL()); n != 2 {
		t.Fatalf("%d rows after restart, want 2", n)
	}
	s.Kill()
	s.Start()
	if n := query(t, s.URL()); n != 2 {
		t.Fatalf("%d rows after a crash, want 2", n)
	}
}

// TestMissingBinaries: without the server binaries the error names the
// make target that installs them.
func TestMissingBinaries(t *testing.T) {
	t.Setenv(testpg.BinEnv, t.TempDir())
	_, err := testpg.BinDir()
	if err == nil || !strings.Contains(err.Error(), "make postgres") {
		t.Fatalf("BinDir with an empty %s: %v", testpg.BinEnv, err)
	}
}

// TestNew: a server for a program, in a directory it names, stopped by
// Close.
func TestNew(t *testing.T) {
	s, err := testpg.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.URL())
	if err != nil {
		s.Close()
		t.Fatalf("connect: %v", err)
	}
	conn.Close(ctx)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if c, err := pgx.Connect(ctx, s.URL()); err == nil {
		c.Close(ctx)
		t.Fatal("connected after Close")
	}
}
