//go:build linux

package rawio

import (
	"io"
	"os"
	"syscall"
	"unsafe"
)

// writeOp is a write in progress on a non-blocking descriptor, for the
// callback a syscall.RawConn's Write calls each time the poller finds the
// descriptor writable.
type writeOp struct {
	buf []byte
	n   int // bytes of buf written so far
	err error
}

// step writes what is left of buf with raw write(2) calls. It returns
// false when the descriptor is full (EAGAIN), so that the poller waits,
// and true when buf is written or an error is recorded.
func (w *writeOp) step(fd uintptr) bool {
	for w.n < len(w.buf) {
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&w.buf[w.n])), uintptr(len(w.buf)-w.n))
		switch e {
		case 0:
			if n == 0 { // neither sockets nor pipes do this; do not spin if one did
				w.err = io.ErrUnexpectedEOF
				return true
			}
			w.n += int(n)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			w.err = os.NewSyscallError("write", e)
			return true
		}
	}
	return true
}

// write writes p whole through rc, whose Write calls fn (the op's step,
// bound once by the owner so that no method value is allocated per
// call). It returns the bytes written and the poller's error (a closed
// descriptor, a deadline), else step's.
func (w *writeOp) write(rc syscall.RawConn, fn func(fd uintptr) bool, p []byte) (int, error) {
	w.buf, w.n, w.err = p, 0, nil
	err := rc.Write(fn)
	w.buf = nil
	if err == nil {
		err = w.err
	}
	return w.n, err
}
