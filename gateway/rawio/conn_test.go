//go:build linux

package rawio

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
)

// pair returns a wrapped client connection and the server side of it.
func pair(t *testing.T) (*Conn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { c.Close(); peer.Close() })
	w := wrap(c.(*net.TCPConn))
	if w == nil {
		t.Fatal("a new TCP connection was not wrapped")
	}
	return w, peer.(*net.TCPConn)
}

func TestWrapTCP(t *testing.T) {
	c, _ := pair(t)
	got := Wrap(c.TCPConn)
	if _, wrapped := got.(*Conn); wrapped == raceEnabled {
		t.Fatalf("Wrap(*net.TCPConn) = %T with the race detector %v", got, raceEnabled)
	}
}

func TestWrapLeavesOtherConnsAlone(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if got := Wrap(a); got != a {
		t.Fatalf("Wrap(net.Pipe) = %T, want the conn itself", got)
	}
}

func TestNonBlockingCheck(t *testing.T) {
	var fds [2]int
	if err := syscall.Pipe(fds[:]); err != nil {
		t.Fatal(err)
	}
	r, w := os.NewFile(uintptr(fds[0]), "r"), os.NewFile(uintptr(fds[1]), "w")
	defer r.Close()
	defer w.Close()
	rc, err := r.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	if nonBlocking(rc) {
		t.Fatal("a blocking pipe was reported non-blocking")
	}
	if err := syscall.SetNonblock(fds[1], true); err != nil {
		t.Fatal(err)
	}
	wc, err := w.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	if !nonBlocking(wc) {
		t.Fatal("a non-blocking pipe was reported blocking")
	}
	c, _ := pair(t)
	if !nonBlocking(c.rc) {
		t.Fatal("a net.TCPConn was reported blocking")
	}
}

// A payload much larger than the socket buffers makes Write wait for the
// peer to drain (EAGAIN, then the poller) and Read see many short reads.
func TestRoundTripLargerThanSocketBuffers(t *testing.T) {
	c, peer := pair(t)
	payload := make([]byte, 8<<20)
	rand.Read(payload)

	var wg sync.WaitGroup
	var echoErr error
	wg.Add(1)
	go func() { // the peer echoes everything back, then closes its write side
		defer wg.Done()
		if _, err := io.Copy(peer, peer); err != nil {
			echoErr = err
		}
		echoErr = errors.Join(echoErr, peer.CloseWrite())
	}()
	var got bytes.Buffer
	var readErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, readErr = io.Copy(&got, onlyReader{c}) // until io.EOF
	}()
	n, err := c.Write(payload)
	if err != nil || n != len(payload) {
		t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(payload))
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if echoErr != nil || readErr != nil {
		t.Fatalf("echo: %v; read: %v", echoErr, readErr)
	}
	if !bytes.Equal(got.Bytes(), payload) {
		t.Fatalf("echoed %d bytes, not the %d written", got.Len(), len(payload))
	}
}

// onlyReader hides io.WriterTo and the like so that io.Copy calls Read.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func TestReadEOF(t *testing.T) {
	c, peer := pair(t)
	if _, err := peer.Write([]byte("bye")); err != nil {
		t.Fatal(err)
	}
	peer.Close()
	b, err := io.ReadAll(onlyReader{c})
	if err != nil || string(b) != "bye" {
		t.Fatalf("ReadAll = %q, %v; want \"bye\", nil", b, err)
	}
	if n, err := c.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("Read after EOF = %d, %v", n, err)
	}
}

func TestZeroLengthIO(t *testing.T) {
	c, _ := pair(t)
	if n, err := c.Read(nil); n != 0 || err != nil {
		t.Fatalf("Read(nil) = %d, %v", n, err)
	}
	if n, err := c.Write(nil); n != 0 || err != nil {
		t.Fatalf("Write(nil) = %d, %v", n, err)
	}
}

func TestZeroLengthIOOnClosedConn(t *testing.T) {
	c, _ := pair(t)
	c.Close()
	if _, err := c.Read(nil); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Read(nil) on a closed conn = %v, want net.ErrClosed", err)
	}
	if _, err := c.Write(nil); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write(nil) on a closed conn = %v, want net.ErrClosed", err)
	}
}

// File would hand out a copy whose Fd method makes the shared socket
// blocking; a raw call on a blocking socket would hold its P.
func TestFileIsRefused(t *testing.T) {
	c, _ := pair(t)
	if f, err := c.File(); err == nil || f != nil {
		t.Fatalf("File() = %v, %v; want an error", f, err)
	}
	if !nonBlocking(c.rc) {
		t.Fatal("the socket is no longer non-blocking")
	}
}

func TestReadDeadline(t *testing.T) {
	c, _ := pair(t)
	if err := c.SetReadDeadline(time.Now().Add(20 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	_, err := c.Read(make([]byte, 16))
	assertTimeout(t, "read", err)
	// An expired deadline fails at once, before any system call.
	_, err = c.Read(make([]byte, 16))
	assertTimeout(t, "read", err)
}

func TestWriteDeadlineWhenPeerDoesNotRead(t *testing.T) {
	c, _ := pair(t)
	if err := c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	var err error
	total := 0
	for i := 0; i < 256 && err == nil; i++ { // at most 256 MiB: far above any socket buffer
		var n int
		n, err = c.Write(chunk)
		total += n
	}
	assertTimeout(t, "write", err)
	if total == 0 {
		t.Fatal("nothing was written before the deadline")
	}
}

func assertTimeout(t *testing.T, op string, err error) {
	t.Helper()
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("%s error = %v; want a net.Error timeout wrapping os.ErrDeadlineExceeded", op, err)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != op {
		t.Fatalf("%s error = %#v; want a *net.OpError with Op %q", op, err, op)
	}
}

func TestCloseUnblocksRead(t *testing.T) {
	c, _ := pair(t)
	done := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 16))
		done <- err
	}()
	// Whether Close lands before or during the Read, the Read must fail
	// with net.ErrClosed.
	c.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Read after Close = %v; want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Read still blocked 10 s after Close")
	}
}

func TestResetIsAnError(t *testing.T) {
	c, peer := pair(t)
	if _, err := c.Write([]byte("unread")); err != nil {
		t.Fatal(err)
	}
	// Closing with unread data (and linger 0) makes the peer send a reset.
	if err := peer.SetLinger(0); err != nil {
		t.Fatal(err)
	}
	peer.Close()
	var err error
	for i := 0; i < 100 && err == nil; i++ { // the reset arrives asynchronously
		_, err = c.Read(make([]byte, 16))
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("Read after reset = %v; want ECONNRESET", err)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "read" || oe.Addr == nil {
		t.Fatalf("Read error = %#v; want a *net.OpError for read with the peer address", err)
	}
}

// Read and Write run at the same time from two goroutines, as the TLS
// layer and HTTP/2 use a connection.
func TestConcurrentReadAndWrite(t *testing.T) {
	c, peer := pair(t)
	go func() { _, _ = io.Copy(peer, peer) }()
	const rounds = 2000
	msg := []byte("0123456789abcdef")
	errc := make(chan error, 1)
	go func() {
		for range rounds {
			if _, err := c.Write(msg); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	got := 0
	buf := make([]byte, 4096)
	for got < rounds*len(msg) {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("Read after %d bytes: %v", got, err)
		}
		got += n
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}
