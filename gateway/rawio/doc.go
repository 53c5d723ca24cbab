// Package rawio is a TCP connection, and a pipe writer (PipeWriter, for
// the audit records on stdout), whose reads and writes skip the Go
// runtime's blocking-syscall bookkeeping.
//
// The gateway's sockets are non-blocking: a read or write either completes
// or fails with EAGAIN, and waiting is the network poller's job. net.Conn
// still issues them as blocking system calls (entersyscall/exitsyscall),
// and on loopback a write runs the receiver's TCP processing inline, so it
// often outlasts the 20 µs after which the runtime's monitor thread hands
// the caller's P to another thread. Under bench/gateway.sh's load, perf
// stat counted per request 0.6 context switches, 0.25 monitor sleeps and
// 0.15 futex calls with net.Conn's calls, and 0.33 (nginx: 0.33), 0.04 and
// 0.06 with raw ones. Raw system calls keep the P, and the poller still
// does the waiting, so deadlines, Close and the rest of net.Conn's
// behaviour are unchanged, except that File is refused (see Conn.File).
// Under the race detector Wrap leaves connections alone (see Wrap).
//
// Linux only: elsewhere Wrap returns the connection as it is.
package rawio
