// Package testpg runs a real PostgreSQL server for a test: its own cluster
// (initdb) in the test's temporary directory, listening on a free port of
// 127.0.0.1, stopped when the test ends. New does the same for a program
// (the demo), in a directory it chooses.
//
// The server binaries are Debian's (`make postgres` installs them): the
// directory named by POSTGRES_BIN (the Makefile sets it), or else the newest
// /usr/lib/postgresql/<version>/bin. A test that needs a server fails, and
// says to run `make postgres`, when they are missing.
//
// PostgreSQL refuses to run as root. When the test runs as root, initdb and
// postgres run as the `postgres` user that Debian's package creates, in a
// directory chowned to it; otherwise they run as the test's own user.
//
// Clients log in as the superuser "popconnect" with a password, over TCP,
// with scram-sha-256, as a gateway would; the cluster has no trust rule.
package testpg

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// BinEnv names the variable that points at PostgreSQL's bin directory.
const BinEnv = "POSTGRES_BIN"

// User is the role clients log in as (the cluster's superuser), and
// Database the database they connect to.
const (
	User     = "popconnect"
	Database = "postgres"
)

const (
	// readyTimeout bounds the wait for a server to accept connections
	// (crash recovery after Kill included).
	readyTimeout = 60 * time.Second
	// stopTimeout bounds a fast shutdown before the server is killed.
	stopTimeout = 30 * time.Second
)

// Server is a PostgreSQL server run by a test (or the demo).
type Server struct {
	t testing.TB // nil for New's

	bin      string
	dir      string // the test's temporary directory: data/, run/, server.log
	data     string
	sockDir  string // "" when the temporary path is too long for a socket
	port     int
	password string
	cred     *syscall.Credential // nil when not running as root

	settings []string // extra "-c" name=value, after the defaults (WithSetting)

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// Start creates a cluster in t.TempDir(), starts its server and waits until
// it accepts connections. The server is stopped when the test ends, also
// when it fails (and its log is then shown).
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s.t = t
	t.Cleanup(s.cleanup)
	return s
}

// New creates a cluster in dir, an empty directory, starts its server and
// waits until it accepts connections: for programs (the demo); tests use
// Start. The caller stops the server with Close; should the program die
// first, the server shuts down at once by itself.
func New(dir string, opts ...Option) (*Server, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	s := &Server{bin: bin, dir: dir}
	for _, o := range opts {
		o(s)
	}
	s.data = filepath.Join(s.dir, "data")
	s.password = "pw-" + randomHex(12)
	if os.Geteuid() == 0 {
		if s.cred, err = postgresUser(); err != nil {
			return nil, err
		}
	}
	if err := s.prepareDir(); err != nil {
		return nil, err
	}
	if err := s.initdb(); err != nil {
		return nil, err
	}
	// A free port may be taken by someone else before postgres binds it:
	// try a few.
	for attempt := 0; ; attempt++ {
		if s.port, err = freePort(); err != nil {
			return nil, err
		}
		err = s.start()
		if err == nil || attempt == 4 || !strings.Contains(s.log(), "could not bind") {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Option configures a Server made by New.
type Option func(*Server)

// WithSetting sets a server parameter (postgres -c name=value), after and
// over the defaults: the benchmarks use it to run the server as a
// deployment would (shared_buffers, fsync) rather than as a test's.
func WithSetting(name, value string) Option {
	return func(s *Server) { s.settings = append(s.settings, "-c", name+"="+value) }
}

// Close stops the server (fast shutdown).
func (s *Server) Close() error {
	return s.signalAndWait(syscall.SIGINT, stopTimeout)
}

// LogPath is the server's log file.
func (s *Server) LogPath() string { return s.logPath() }

// URL returns the server's connection URL, password included.
func (s *Server) URL() string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(User, s.password),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)),
		Path:     "/" + Database,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Password returns the password of User, for tests that check it is never
// shown.
func (s *Server) Password() string { return s.password }

// Port returns the server's TCP port; it stays the same across Stop and
// Start.
func (s *Server) Port() int { return s.port }

// Stop shuts the server down (fast shutdown: sessions are ended, the data
// is checkpointed) and waits for it to exit. Stop, Kill and Start fail the
// test on an error (they panic on a Server made by New).
func (s *Server) Stop() {
	if s.t != nil {
		s.t.Helper()
	}
	s.fail(s.signalAndWait(syscall.SIGINT, stopTimeout))
}

// Kill ends the server and its processes at once with SIGKILL, as a crash
// would: clients see their connections cut, with no goodbye; Start then
// recovers the cluster from its WAL.
func (s *Server) Kill() {
	if s.t != nil {
		s.t.Helper()
	}
	s.fail(s.signalAndWait(syscall.SIGKILL, stopTimeout))
}

// Start starts the server again after Stop or Kill, on the same data
// directory and port, and waits until it accepts connections.
func (s *Server) Start() {
	if s.t != nil {
		s.t.Helper()
	}
	s.fail(s.start())
}

func (s *Server) fail(err error) {
	if err == nil {
		return
	}
	if s.t == nil {
		panic(err)
	}
	s.t.Helper()
	s.t.Fatal(err)
}

// BinDir returns the directory of PostgreSQL's server binaries: $POSTGRES_BIN,
// or the newest /usr/lib/postgresql/<version>/bin holding initdb and
// postgres.
func BinDir() (string, error) {
	if d := os.Getenv(BinEnv); d != "" {
		if !isServerBin(d) {
			return "", fmt.Errorf("%s=%s holds no initdb and postgres: run `make postgres`", BinEnv, d)
		}
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	var found []string
	for _, d := range dirs {
		if isServerBin(d) {
			found = append(found, d)
		}
	}
	if len(found) == 0 {
		return "", fmt.Errorf("PostgreSQL's server is not installed (%s is unset and no /usr/lib/postgresql/*/bin has initdb and postgres): run `make postgres`", BinEnv)
	}
	sort.Slice(found, func(i, j int) bool { return majorOf(found[i]) > majorOf(found[j]) })
	return found[0], nil
}

func majorOf(binDir string) int {
	v := filepath.Base(filepath.Dir(binDir))
	v, _, _ = strings.Cut(v, ".")
	n, _ := strconv.Atoi(v)
	return n
}

func isServerBin(d string) bool {
	for _, name := range []string{"initdb", "postgres"} {
		fi, err := os.Stat(filepath.Join(d, name))
		if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

// postgresUser returns the credential of Debian's postgres user.
func postgresUser() (*syscall.Credential, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL refuses to run as root and there is no postgres user to run it as (%v): run `make postgres`", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("postgres user has uid %q gid %q", u.Uid, u.Gid)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
}

// prepareDir makes the temporary directory the server's: owned by the user
// it runs as, and reachable through its parents (t.TempDir's are 0700).
func (s *Server) prepareDir() error {
	sock := filepath.Join(s.dir, "run")
	// A Unix socket path has at most 107 bytes; without one the server
	// listens on TCP only, which is all the tests use.
	if len(sock)+len("/.s.PGSQL.65535") < 100 {
		s.sockDir = sock
		if err := os.Mkdir(sock, 0o700); err != nil {
			return err
		}
	}
	if s.cred == nil {
		return nil
	}
	// Directories under the temporary directory (t.TempDir's are 0700)
	// are opened to others for traversal (o+x); others are left as they
	// are, and must be reachable already.
	dir, _ := filepath.Abs(s.dir)
	tmp := filepath.Clean(os.TempDir())
	for p := dir; strings.HasPrefix(p, tmp+string(filepath.Separator)); p = filepath.Dir(p) {
		if fi, err := os.Stat(p); err == nil && fi.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(p, fi.Mode().Perm()|0o001); err != nil {
				return fmt.Errorf("opening %s to the postgres user: %w", p, err)
			}
		}
	}
	return filepath.Walk(s.dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, int(s.cred.Uid), int(s.cred.Gid))
	})
}

func (s *Server) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(s.bin, name), args...)
	cmd.Dir = s.dir
	cmd.Env = []string{"LC_ALL=C", "LANG=C", "TZ=UTC", "PATH=" + s.bin + ":/usr/bin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: s.cred,
		// Should the test binary die without its cleanups (a -timeout
		// panic), the server shuts down at once rather than stray.
		Pdeathsig: syscall.SIGQUIT,
	}
	return cmd
}

func (s *Server) initdb() error {
	pwfile := filepath.Join(s.dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(s.password+"\n"), 0o600); err != nil {
		return err
	}
	defer os.Remove(pwfile)
	if s.cred != nil {
		if err := os.Chown(pwfile, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			return err
		}
	}
	cmd := s.command("initdb", "-D", s.data, "-U", User, "--pwfile", pwfile,
		"--auth=scram-sha-256", "-E", "UTF8", "--no-locale", "--no-sync")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("initdb: %v\n%s", err, out)
	}
	return nil
}

func (s *Server) logPath() string { return filepath.Join(s.dir, "server.log") }

// log returns the server's log so far.
func (s *Server) log() string {
	b, _ := os.ReadFile(s.logPath())
	return string(b)
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return fmt.Errorf("postgres is already running")
	}
	logf, err := os.OpenFile(s.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	args := []string{"-D", s.data,
		"-p", strconv.Itoa(s.port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories=" + s.sockDir,
		"-c", "timezone=UTC",
		"-c", "max_connections=30",
		"-c", "shared_buffers=16MB",
		// A test's data need not survive the machine: no fsync. A Kill
		// still loses only what a crash of the server would.
		"-c", "fsync=off",
		"-c", "full_page_writes=off",
		"-c", "log_min_messages=warning",
	}
	cmd := s.command("postgres", append(args, s.settings...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting postgres: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.cmd, s.done = cmd, done

	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	for {
		select {
		case <-done:
			s.cmd, s.done = nil, nil
			return fmt.Errorf("postgres exited at start: %v\n%s", cmd.ProcessState, tail(s.log()))
		default:
		}
		if err := s.ping(ctx); err == nil {
			return nil
		} else if ctx.Err() != nil {
			_ = s.signalAndWaitLocked(syscall.SIGKILL, stopTimeout)
			return fmt.Errorf("postgres did not accept connections within %v: %v\n%s", readyTimeout, err, tail(s.log()))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ping connects once, logging in as a client would.
func (s *Server) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.URL())
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return conn.Ping(ctx)
}

// signalAndWait sends sig to the server and waits for it to exit; past
// timeout it kills it. SIGKILL goes to its children too: they run in
// sessions of their own (PostgreSQL calls setsid), and would otherwise
// outlive the postmaster until they notice it died.
func (s *Server) signalAndWait(sig syscall.Signal, timeout time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.signalAndWaitLocked(sig, timeout)
}

func (s *Server) signalAndWaitLocked(sig syscall.Signal, timeout time.Duration) error {
	if s.cmd == nil {
		return nil
	}
	pid := s.cmd.Process.Pid
	kill := func() {
		children := childrenOf(pid)
		_ = syscall.Kill(pid, syscall.SIGKILL)
		for _, c := range children {
			_ = syscall.Kill(c, syscall.SIGKILL)
		}
		<-s.done
		waitGone(children, timeout)
	}
	var err error
	if sig == syscall.SIGKILL {
		kill()
	} else {
		_ = syscall.Kill(pid, sig) // the postmaster ends its backends
		select {
		case <-s.done:
		case <-time.After(timeout):
			kill()
			err = fmt.Errorf("postgres did not stop within %v after %v; killed it", timeout, sig)
		}
	}
	s.cmd, s.done = nil, nil
	return err
}

// cleanup is the test's: a fast shutdown, and the server's log when the
// test failed.
func (s *Server) cleanup() {
	if err := s.Close(); err != nil {
		s.t.Error(err)
	}
	if s.t.Failed() {
		if l := s.log(); l != "" {
			s.t.Logf("postgres log (%s):\n%s", s.dir, tail(l))
		}
	}
}

// childrenOf returns the processes whose parent is pid, from /proc.
func childrenOf(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		c, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppidOf(c) == pid {
			out = append(out, c)
		}
	}
	return out
}

// ppidOf returns the parent of pid and -1 when pid is gone or a zombie.
func ppidOf(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return -1
	}
	// pid (comm) state ppid ...; comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 || f[0] == "Z" || f[0] == "X" {
		return -1
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

// waitGone waits (bounded) until none of pids runs any more, so that a
// restart finds the killed server's shared memory released.
func waitGone(pids []int, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for _, p := range pids {
		for ppidOf(p) != -1 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func tail(s string) string {
	const max = 4000
	if len(s) > max {
		return "…" + s[len(s)-max:]
	}
	return s
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
