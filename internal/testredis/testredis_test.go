package testredis

import (
	"net"
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
