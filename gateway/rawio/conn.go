//go:build linux

package rawio

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"unsafe"
)

// Conn is a *net.TCPConn whose Read and Write issue the read(2) and
// write(2) system calls as raw syscalls, through the connection's
// syscall.RawConn, so that waiting, deadlines and Close still go through
// the runtime's network poller.
type Conn struct {
	*net.TCPConn
	rc syscall.RawConn

	// The state of the Read or Write in progress, for its callback: the
	// callbacks are method values made once, so a call allocates nothing.
	rmu    sync.Mutex
	rbuf   []byte
	rn     int
	rerr   error
	readFn func(fd uintptr) bool

	wmu     sync.Mutex
	w       writeOp
	writeFn func(fd uintptr) bool

	// WriteRead's state, besides the Read's and the Write's: wrFirst is
	// set until its callback has written the request, wrShort when that
	// write could not finish at once.
	wrFirst     bool
	wrShort     bool
	writeReadFn func(fd uintptr) bool
}

// Wrap returns c as a *Conn when it is a TCP connection in non-blocking
// mode, and c otherwise. Under the race detector it always returns c: raw
// calls skip the detector's bookkeeping of system calls, which is what
// lets it see that data written to a socket happens before what reads it,
// so tests that synchronise through a connection would report false
// races.
func Wrap(c net.Conn) net.Conn {
	if raceEnabled {
		return c
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	if rw := wrap(tc); rw != nil {
		return rw
	}
	return c
}

// wrap returns tc as a *Conn, or nil when its socket is not non-blocking.
func wrap(tc *net.TCPConn) *Conn {
	rc, err := tc.SyscallConn()
	if err != nil || !nonBlocking(rc) {
		return nil
	}
	rw := &Conn{TCPConn: tc, rc: rc}
	rw.readFn = rw.read
	rw.writeFn = rw.w.step
	rw.writeReadFn = rw.writeRead
	return rw
}

// nonBlocking reports whether rc's descriptor has O_NONBLOCK. The net
// package always sets it, but a raw call on a blocking socket would hold
// its thread and P for as long as the peer is silent, so Wrap checks
// rather than assumes.
func nonBlocking(rc syscall.RawConn) bool {
	var flags uintptr
	var errno syscall.Errno
	err := rc.Control(func(fd uintptr) {
		flags, _, errno = syscall.RawSyscall(syscall.SYS_FCNTL, fd, syscall.F_GETFL, 0)
	})
	return err == nil && errno == 0 && flags&syscall.O_NONBLOCK != 0
}

func (c *Conn) read(fd uintptr) bool {
	for {
		n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&c.rbuf[0])), uintptr(len(c.rbuf)))
		switch e {
		case 0:
			c.rn = int(n)
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		default:
			c.rerr = os.NewSyscallError("read", e)
			return true
		}
	}
}

// writeRead is WriteRead's callback. Its first call writes the request
// and reports "not ready" without reading, so that the poller waits for the
// answer; the next calls read.
func (c *Conn) writeRead(fd uintptr) bool {
	if !c.wrFirst {
		return c.read(fd)
	}
	c.wrFirst = false
	if !c.w.step(fd) {
		c.wrShort = true // the socket's buffer is full: WriteRead finishes it
		return true
	}
	return c.w.err != nil
}

// WriteRead writes p whole, then reads the answer into b, as Write(p)
// then Read(b) do but without the read that a request-response exchange
// makes in vain: the answer cannot be there as soon as the request is
// written, so a Read right after the Write always finds nothing
// (EAGAIN) before it waits. WriteRead writes p from within the poller's
// read call, after it has armed the wait for readability, then waits
// without reading: whatever arrives after the write wakes it.
//
// Only what the peer sends after p is written wakes it: data or an end
// of the connection (EOF, a reset) that was already waiting in the socket
// is found only by the read that follows the next arrival, or after the
// read deadline. Use it when the connection is known to be quiet (an
// HTTP/1.1 client connection whose previous answer was read to its end,
// used recently); a peer that closes a connection in the meantime resets
// it when p arrives, which wakes the wait. A Write from another goroutine
// waits until WriteRead returns: it is for connections used by one
// goroutine at a time, request then answer.
func (c *Conn) WriteRead(p, b []byte) (int, error) {
	if len(p) == 0 || len(b) == 0 {
		if _, err := c.Write(p); err != nil {
			return 0, err
		}
		return c.Read(b)
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	c.wmu.Lock()
	c.w.buf, c.w.n, c.w.err = p, 0, nil
	c.rbuf, c.rn, c.rerr = b, 0, nil
	c.wrFirst, c.wrShort = true, false
	err := c.rc.Read(c.writeReadFn)
	if err == nil && c.wrShort {
		// The rest of p through the poller's write wait (and the write
		// deadline), then an ordinary read.
		c.wrShort = false
		if err = c.rc.Write(c.writeFn); err == nil && c.w.err == nil {
			err = c.rc.Read(c.readFn)
		}
	}
	wn, werr := c.w.n, c.w.err
	c.w.buf = nil
	c.wmu.Unlock()
	c.rbuf = nil
	switch {
	case wn < len(p):
		if werr == nil {
			werr = err
		}
		if werr == nil {
			werr = io.ErrShortWrite
		}
		return 0, c.opError("write", werr)
	case err != nil:
		return 0, c.opError("read", err)
	case c.rerr != nil:
		return 0, c.opError("read", c.rerr)
	case c.rn == 0:
		return 0, io.EOF
	}
	return c.rn, nil
}

// Read implements net.Conn.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, c.check("read")
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	c.rbuf, c.rn, c.rerr = p, 0, nil
	err := c.rc.Read(c.readFn)
	c.rbuf = nil
	if err == nil {
		err = c.rerr
	}
	if err != nil {
		return 0, c.opError("read", err)
	}
	if c.rn == 0 {
		return 0, io.EOF
	}
	return c.rn, nil
}

// Write implements net.Conn.
func (c *Conn) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, c.check("write")
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	n, err := c.w.write(c.rc, c.writeFn, p)
	if err != nil {
		return n, c.opError("write", err)
	}
	return n, nil
}

// check reports, for an empty Read or Write, what net.Conn would: an
// error once the connection is closed.
func (c *Conn) check(op string) error {
	if err := c.rc.Control(func(uintptr) {}); err != nil {
		return c.opError(op, err)
	}
	return nil
}

// File is refused: the copy it returns shares the socket's file status
// flags, and making the copy blocking (os.File.Fd does) would make this
// connection's raw calls block in the kernel while holding their P,
// stalling deadlines and the garbage collector.
func (c *Conn) File() (*os.File, error) {
	return nil, c.opError("file", errFileUnsupported)
}

var errFileUnsupported = errors.New("rawio: File is not supported; it could make the socket blocking")

func (c *Conn) opError(op string, err error) error {
	if oe, ok := err.(*net.OpError); ok {
		err = oe.Err
	}
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}
