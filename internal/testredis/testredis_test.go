package testredis

import (
	"net"
	"strings"
	"testing"
)

// TestStartStopStart: the server answers, is gone after Stop, and answers
// again on the same port after Start.
func TestStartStopStart(t *testing.T) {
	s := Start(t)
	if err := s.ping(); err != nil {
		t.Fatal(err)
	}
	addr := s.Addr()
	s.Stop()
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatal("the server still accepts connections after Stop")
	}
	s.Start()
	if s.Addr() != addr {
		t.Fatalf("address changed: %s, then %s", addr, s.Addr())
	}
	if err := s.ping(); err != nil {
		t.Fatal(err)
	}
}

// TestBinaryMissingNamesMakeRedis: without the server, the error says how
// to get it (tests fail with it rather than skip).
func TestBinaryMissingNamesMakeRedis(t *testing.T) {
	t.Setenv(BinEnv, t.TempDir()+"/no-redis-server")
	if _, err := Binary(); err == nil || !strings.Contains(err.Error(), "make redis") {
		t.Fatalf("Binary() = %v, want an error naming `make redis`", err)
	}
}
