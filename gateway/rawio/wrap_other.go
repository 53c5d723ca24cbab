//go:build !linux

package rawio

import (
	"io"
	"net"
	"os"
)

// Wrap returns c: raw system calls are used on Linux only, where the
// gateway runs in production and was measured.
func Wrap(c net.Conn) net.Conn { return c }

// OpenPipe returns nil: f is written as it is.
func OpenPipe(*os.File) (io.WriteCloser, error) { return nil, nil }
