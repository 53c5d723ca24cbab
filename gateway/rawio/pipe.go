//go:build linux

package rawio

import (
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
)

// PipeWriter writes to a pipe with raw write(2) calls on a non-blocking
// descriptor of its own; when the pipe is full it waits in the network
// poller, holding no thread and no P.
//
// It exists for the audit sink on stdout, which in a pod is a pipe to the
// container runtime. Every write through os.File is a blocking system
// call for the runtime (entersyscall), and one that finds the runtime's
// monitor thread asleep wakes it into 20 µs polling for the next
// millisecond: with a write per audit batch, thousands a second, the
// monitor never slept again (perf counted 35,000 of its sleeps a minute
// under bench/gateway.sh, 2,500 with raw writes). Regular files are not
// served here: a write to a file cannot wait in the poller, and a raw one
// that blocks in the kernel (a hung disk) would hold its P and, at the
// next garbage collection, stop the whole process, where a blocking
// system call leaves the rest of the gateway free to refuse requests and
// report the stalled sink.
type PipeWriter struct {
	f       *os.File
	rc      syscall.RawConn
	mu      sync.Mutex
	w       writeOp
	writeFn func(fd uintptr) bool
}

// OpenPipe returns a *PipeWriter for the pipe or FIFO that f writes to;
// nil when f is something else (a file, a terminal, a socket) or under
// the race detector (see Wrap); nil and an error when f is a pipe that
// cannot be opened anew, which the caller may still write through f.
//
// The pipe is opened again through /proc/self/fd, which gives a new open
// file description: O_NONBLOCK is a property of the description, and f's
// may be shared with other processes (the other commands of a shell
// pipeline, a parent that passed its own stdout on), whose writes must
// not start failing with EAGAIN because this one made it non-blocking.
// The caller closes the PipeWriter; f stays open and unchanged.
func OpenPipe(f *os.File) (io.WriteCloser, error) {
	if raceEnabled {
		return nil, nil
	}
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("inspecting %s: %w", f.Name(), err)
	}
	if info.Mode()&os.ModeNamedPipe == 0 {
		return nil, nil
	}
	fd, err := descriptor(f)
	if err != nil {
		return nil, err
	}
	// Without /proc, or for a process that may not open the pipe (its
	// owner is another user; containerd makes the container's user the
	// owner of its stdio pipes), this fails and the caller writes
	// through f as before.
	own, err := os.OpenFile(fmt.Sprintf("/proc/self/fd/%d", fd), os.O_WRONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("opening the pipe of %s again: %w", f.Name(), err)
	}
	rc, err := own.SyscallConn()
	if err != nil {
		own.Close()
		return nil, fmt.Errorf("reopening %s: %w", f.Name(), err)
	}
	p := &PipeWriter{f: own, rc: rc}
	p.writeFn = p.w.step
	return p, nil
}

// descriptor returns f's descriptor without os.File.Fd, which would make
// a non-blocking f blocking.
func descriptor(f *os.File) (uintptr, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, fmt.Errorf("reading the descriptor of %s: %w", f.Name(), err)
	}
	var fd uintptr
	if err := rc.Control(func(d uintptr) { fd = d }); err != nil {
		return 0, fmt.Errorf("reading the descriptor of %s: %w", f.Name(), err)
	}
	return fd, nil
}

// Write writes b whole, waiting in the poller while the pipe is full.
// It fails once the reader has gone (EPIPE) or the writer is closed.
func (p *PipeWriter) Write(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	n, err := p.w.write(p.rc, p.writeFn, b)
	if err != nil {
		return n, &os.PathError{Op: "write", Path: p.f.Name(), Err: unwrapSyscall(err)}
	}
	return n, nil
}

// Close closes the writer's own descriptor; a Write waiting in the poller
// returns an error.
func (p *PipeWriter) Close() error { return p.f.Close() }

// unwrapSyscall strips the *os.SyscallError that writeOp records, so that
// the PathError reads like os.File's ("write /dev/stdout: broken pipe").
func unwrapSyscall(err error) error {
	if se, ok := err.(*os.SyscallError); ok {
		return se.Err
	}
	return err
}
