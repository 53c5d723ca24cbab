// Package testredis runs a real Redis server for a test: its own
// redis-server on a free port of 127.0.0.1, with its working directory in
// the test's temporary directory, no persistence (no RDB snapshots, no AOF: --save "" --appendonly
// no), a random password, stopped when the test ends.
//
// The server is Debian's (`make redis` installs it): the binary named by
// REDIS_SERVER (the Makefile sets it), or else redis-server on PATH or in
// /usr/bin. A test that needs a server fails, and says to run `make redis`,
// when it is missing.
package testredis

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BinEnv names the variable that points at the redis-server binary.
const BinEnv = "REDIS_SERVER"

const (
	readyTimeout = 20 * time.Second
	stopTimeout  = 10 * time.Second
)

// Server is a Redis server run by a test.
type Server struct {
	t        testing.TB
	bin      string
	dir      string
	port     int
	password string

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{}
	frozen bool
}

// Start starts a server in t.TempDir() and waits until it answers PING. The
// server is stopped when the test ends (and its log shown if the test
// failed).
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{t: t, bin: bin, dir: t.TempDir(), password: "pw-" + randomHex(12)}
	t.Cleanup(s.cleanup)
	// A free port may be taken by someone else before redis-server binds
	// it: try a few.
	for attempt := 0; ; attempt++ {
		if s.port, err = freePort(); err != nil {
			t.Fatal(err)
		}
		err = s.start()
		if err == nil || attempt == 4 || !strings.Contains(s.log(), "ddress already in use") {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Binary returns the path of redis-server: $REDIS_SERVER, or redis-server on
// PATH, or /usr/bin/redis-server.
func Binary() (string, error) {
	if b := os.Getenv(BinEnv); b != "" {
		if !isExec(b) {
			return "", fmt.Errorf("%s=%s is not an executable redis-server: run `make redis`", BinEnv, b)
		}
		return b, nil
	}
	if b, err := exec.LookPath("redis-server"); err == nil {
		return b, nil
	}
	for _, b := range []string{"/usr/bin/redis-server", "/usr/sbin/redis-server"} {
		if isExec(b) {
			return b, nil
		}
	}
	return "", fmt.Errorf("Redis's server is not installed (%s is unset and there is no redis-server on PATH): run `make redis`", BinEnv)
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// Addr is the server's host:port; it stays the same across Stop and Start.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// URL is redis://127.0.0.1:PORT/db, without the password.
func (s *Server) URL(db int) string { return fmt.Sprintf("redis://%s/%d", s.Addr(), db) }

// Password is the password clients authenticate with (requirepass).
func (s *Server) Password() string { return s.password }

// LogPath is the server's log file.
func (s *Server) LogPath() string { return filepath.Join(s.dir, "server.log") }

// Stop shuts the server down (SIGTERM) and waits for it to exit; with no
// persistence, its data is gone when Start brings it back.
func (s *Server) Stop() {
	s.t.Helper()
	if err := s.signalAndWait(syscall.SIGTERM); err != nil {
		s.t.Fatal(err)
	}
}

// Start starts the server again after Stop, on the same port.
func (s *Server) Start() {
	s.t.Helper()
	if err := s.start(); err != nil {
		s.t.Fatal(err)
	}
}

// Freeze stops the server's process (SIGSTOP): connections stay open and
// the port accepts connections, but nothing is answered, as with a hung
// server. Thaw resumes it.
func (s *Server) Freeze() { s.signal(syscall.SIGSTOP, true) }

// Thaw resumes a frozen server (SIGCONT).
func (s *Server) Thaw() { s.signal(syscall.SIGCONT, false) }

func (s *Server) signal(sig syscall.Signal, frozen bool) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		s.t.Fatal("redis-server is not running")
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatal(err)
	}
	s.frozen = frozen
}

func (s *Server) log() string {
	b, _ := os.ReadFile(s.LogPath())
	return string(b)
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return fmt.Errorf("redis-server is already running")
	}
	cmd := exec.Command(s.bin,
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--dir", s.dir,
		"--save", "",
		"--appendonly", "no",
		"--requirepass", s.password,
		"--logfile", s.LogPath(),
		"--daemonize", "no",
		"--protected-mode", "yes",
	)
	cmd.Dir = s.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Should the test binary die without its cleanups (a -timeout
		// panic), the server goes with it rather than stray.
		Pdeathsig: syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting redis-server: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.cmd, s.done, s.frozen = cmd, done, false

	deadline := time.Now().Add(readyTimeout)
	for {
		select {
		case <-done:
			s.cmd, s.done = nil, nil
			return fmt.Errorf("redis-server exited at start: %v\n%s", cmd.ProcessState, tail(s.log()))
		default:
		}
		err := s.ping()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			s.cmd, s.done = nil, nil
			return fmt.Errorf("redis-server did not answer within %v: %v\n%s", readyTimeout, err, tail(s.log()))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ping authenticates and sends PING over a plain RESP connection.
func (s *Server) ping() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", s.Addr())
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := fmt.Fprintf(c, "AUTH %s\r\nPING\r\n", s.password); err != nil {
		return err
	}
	r := bufio.NewReader(c)
	for _, want := range []string{"+OK", "+PONG"} {
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		if got := strings.TrimSpace(line); got != want {
			return fmt.Errorf("redis-server answered %q, want %q", got, want)
		}
	}
	return nil
}

func (s *Server) signalAndWait(sig syscall.Signal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return nil
	}
	if s.frozen {
		_ = s.cmd.Process.Signal(syscall.SIGCONT)
	}
	_ = s.cmd.Process.Signal(sig)
	select {
	case <-s.done:
	case <-time.After(stopTimeout):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd, s.done, s.frozen = nil, nil, false
	return nil
}

func (s *Server) cleanup() {
	_ = s.signalAndWait(syscall.SIGTERM)
	if s.t.Failed() {
		s.t.Logf("redis-server log (%s):\n%s", s.LogPath(), tail(s.log()))
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func tail(s string) string {
	const max = 4000
	if len(s) > max {
		return "…" + s[len(s)-max:]
	}
	return s
}
