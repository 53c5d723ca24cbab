//go:build linux

package rawio

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// blockingPipe is a pipe whose ends are blocking, as a process's stdout
// is (os.Pipe's are not: it registers them with the poller), closed at
// the end of the test.
func blockingPipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	var fds [2]int
	if err := syscall.Pipe2(fds[:], syscall.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	r, w = os.NewFile(uintptr(fds[0]), "pipe-r"), os.NewFile(uintptr(fds[1]), "pipe-w")
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

// pipeWriter is a blocking pipe and OpenPipe's writer for it, closed at
// the end of the test.
func pipeWriter(t *testing.T) (r, pw *os.File, w io.WriteCloser) {
	t.Helper()
	r, pw = blockingPipe(t)
	w, err := OpenPipe(pw)
	if err != nil || w == nil {
		t.Fatalf("OpenPipe(pipe) = %v, %v", w, err)
	}
	t.Cleanup(func() { w.Close() })
	return r, pw, w
}

// rawConn is f's syscall.RawConn.
func rawConn(t *testing.T, f *os.File) syscall.RawConn {
	t.Helper()
	rc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	return rc
}

func skipUnderRace(t *testing.T) {
	t.Helper()
	if raceEnabled {
		t.Skip("OpenPipe leaves pipes alone under the race detector")
	}
}

// TestOpenPipeOnlyPipes: files, devices and terminals are written as they
// are; only pipes get a raw writer.
func TestOpenPipeOnlyPipes(t *testing.T) {
	skipUnderRace(t)
	file, err := os.Create(filepath.Join(t.TempDir(), "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	for _, f := range []*os.File{file, null} {
		w, err := OpenPipe(f)
		if err != nil || w != nil {
			t.Errorf("OpenPipe(%s) = %v, %v; want nil, nil", f.Name(), w, err)
		}
	}
	pipeWriter(t) // fails the test unless it is a PipeWriter
}

// TestPipeWriterWritesWhole: writes far larger than the pipe's buffer,
// read slowly in small pieces, arrive whole and in order; the descriptor
// the pipe was opened from stays blocking, so that other writers sharing
// it do not start failing with EAGAIN.
func TestPipeWriterWritesWhole(t *testing.T) {
	skipUnderRace(t)
	r, pw, w := pipeWriter(t)
	var want bytes.Buffer
	for i := range 300_000 {
		want.WriteByte(byte('a' + i%26))
		if i%97 == 0 {
			want.WriteByte('\n')
		}
	}
	done := make(chan error, 1)
	go func() {
		defer w.Close()
		rest := want.Bytes()
		for size := 1; len(rest) > 0; size = size*3 + 1 {
			n := min(size, len(rest))
			if m, err := w.Write(rest[:n]); err != nil || m != n {
				done <- errors.Join(err, io.ErrShortWrite)
				return
			}
			rest = rest[n:]
		}
		done <- nil
	}()
	// pw is still open here: the read ends at the expected length, not EOF.
	got := make([]byte, 0, want.Len())
	buf := make([]byte, 1000)
	for len(got) < want.Len() {
		n, err := r.Read(buf)
		if err != nil {
			t.Fatalf("reading after %d bytes: %v", len(got), err)
		}
		got = append(got, buf[:n]...)
	}
	if err := <-done; err != nil {
		t.Fatalf("write: %v", err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatal("the bytes read differ from those written")
	}
	if nonBlocking(rawConn(t, pw)) {
		t.Fatal("OpenPipe made the original descriptor non-blocking")
	}
}

// TestPipeWriterReaderGone: once the reader has gone, a write fails with
// EPIPE (the audit sink then refuses requests), and the process, which
// ignores SIGPIPE for descriptors other than stdout and stderr, lives on.
func TestPipeWriterReaderGone(t *testing.T) {
	skipUnderRace(t)
	r, _, w := pipeWriter(t)
	r.Close()
	if _, err := w.Write([]byte("record\n")); !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("write with the reader gone: %v, want EPIPE", err)
	}
}

// TestPipeWriterCloseWakesWrite: a write waiting for a full pipe's reader
// waits in the poller, and Close ends it with an error.
func TestPipeWriterCloseWakesWrite(t *testing.T) {
	skipUnderRace(t)
	r, _, w := pipeWriter(t)
	done := make(chan error, 1)
	go func() {
		_, err := w.Write(make([]byte, 4<<20)) // more than any pipe holds
		done <- err
	}()
	// The write cannot finish while nobody reads: wait until it has filled
	// the pipe (bounded), then close.
	deadline := time.Now().Add(10 * time.Second)
	for pipeQueued(t, r) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the write put nothing in the pipe within 10s")
		}
		time.Sleep(time.Millisecond)
	}
	w.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a write cut short by Close reported no error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end the waiting write within 10s")
	}
}

// pipeQueued is the number of bytes waiting in the pipe r reads (FIONREAD).
func pipeQueued(t *testing.T, r *os.File) int {
	t.Helper()
	var n int32
	var errno syscall.Errno
	if err := rawConn(t, r).Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCINQ, uintptr(unsafe.Pointer(&n)))
	}); err != nil || errno != 0 {
		t.Fatalf("FIONREAD: %v %v", err, errno)
	}
	return int(n)
}
