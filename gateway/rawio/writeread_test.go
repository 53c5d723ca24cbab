//go:build linux

package rawio

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// answerAfter reads n bytes of request on peer, then writes answer; the
// request read is sent on the returned channel.
func answerAfter(peer *net.TCPConn, n int, answer []byte) <-chan []byte {
	got := make(chan []byte, 1)
	go func() {
		req := make([]byte, n)
		if _, err := io.ReadFull(peer, req); err != nil {
			got <- nil
			return
		}
		got <- req
		_, _ = peer.Write(answer)
	}()
	return got
}

// TestWriteRead: the request is written whole and the answer read, small
// or larger than the socket buffers (then the write finishes outside the
// read callback, through the poller's write wait), and with an answer
// longer than b (the rest is left for Read).
func TestWriteRead(t *testing.T) {
	big := make([]byte, 8<<20)
	rand.Read(big)
	tests := []struct {
		name    string
		req     []byte
		answer  []byte
		bufSize int
	}{
		{"small", []byte("GET / HTTP/1.1\r\n\r\n"), []byte("HTTP/1.1 200 OK\r\n\r\n"), 4096},
		{"request larger than socket buffers", big, []byte("done"), 4096},
		{"answer longer than the buffer", []byte("q"), []byte("0123456789"), 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, peer := pair(t)
			if err := c.SetDeadline(time.Now().Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
			got := answerAfter(peer, len(tt.req), tt.answer)
			buf := make([]byte, tt.bufSize)
			n, err := c.WriteRead(tt.req, buf)
			if err != nil {
				t.Fatalf("WriteRead: %v", err)
			}
			if req := <-got; !bytes.Equal(req, tt.req) {
				t.Fatalf("the peer read %d bytes, not the %d-byte request", len(req), len(tt.req))
			}
			// The answer may arrive in pieces: the rest through Read.
			ans := append([]byte(nil), buf[:n]...)
			for len(ans) < len(tt.answer) {
				n, err := c.Read(buf)
				if err != nil {
					t.Fatalf("Read after WriteRead: %v", err)
				}
				ans = append(ans, buf[:n]...)
			}
			if !bytes.Equal(ans, tt.answer) {
				t.Fatalf("answer %q, want %q", ans, tt.answer)
			}
		})
	}
}

// TestWriteReadRepeated: many exchanges on one connection, each answer
// read to its end before the next request, as the upstream pool uses it.
func TestWriteReadRepeated(t *testing.T) {
	c, peer := pair(t)
	go func() { _, _ = io.Copy(peer, peer) }() // every request is its own answer
	buf := make([]byte, 64)
	for i := range 1000 {
		req := []byte{byte(i), byte(i >> 8), 'x'}
		n, err := c.WriteRead(req, buf)
		for err == nil && n < len(req) { // an echo may come back in two reads
			var m int
			m, err = c.Read(buf[n:])
			n += m
		}
		if err != nil || !bytes.Equal(buf[:n], req) {
			t.Fatalf("exchange %d: %q, %v; want %q", i, buf[:n], err, req)
		}
	}
}

// TestWriteReadPeerGone: a connection the peer closed before the request
// (an upstream dropping an idle keep-alive connection) fails, without
// waiting for the deadline: the request makes the peer reset it, and the
// reset wakes the wait.
func TestWriteReadPeerGone(t *testing.T) {
	c, peer := pair(t)
	peer.Close()
	if err := c.SetDeadline(time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	n, err := c.WriteRead([]byte("GET / HTTP/1.1\r\n\r\n"), make([]byte, 16))
	if err == nil || n != 0 {
		t.Fatalf("WriteRead on a closed peer = %d, %v; want an error", n, err)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("WriteRead on a closed peer waited for the deadline: %v", err)
	}
}

// TestWriteReadDeadline: a peer that never answers ends the wait at the
// read deadline, as a Read's.
func TestWriteReadDeadline(t *testing.T) {
	c, _ := pair(t)
	if err := c.SetReadDeadline(time.Now().Add(20 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	_, err := c.WriteRead([]byte("ping"), make([]byte, 16))
	assertTimeout(t, "read", err)
}

// TestWriteReadClosed: on a closed connection WriteRead fails with
// net.ErrClosed, as a Write does; Close during the wait ends it too.
func TestWriteReadClosed(t *testing.T) {
	c, _ := pair(t)
	c.Close()
	if _, err := c.WriteRead([]byte("ping"), make([]byte, 16)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("WriteRead on a closed conn = %v; want net.ErrClosed", err)
	}

	c2, _ := pair(t)
	done := make(chan error, 1)
	go func() {
		_, err := c2.WriteRead([]byte("ping"), make([]byte, 16))
		done <- err
	}()
	c2.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("WriteRead after Close = %v; want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("WriteRead still blocked 10 s after Close")
	}
}

// TestWriteReadEmpty: an empty request or buffer behaves as Write then
// Read.
func TestWriteReadEmpty(t *testing.T) {
	c, peer := pair(t)
	got := answerAfter(peer, 4, []byte("pong"))
	if n, err := c.WriteRead([]byte("ping"), nil); n != 0 || err != nil {
		t.Fatalf("WriteRead(p, nil) = %d, %v", n, err)
	}
	<-got
	buf := make([]byte, 4)
	if _, err := io.ReadFull(onlyReader{c}, buf); err != nil || string(buf) != "pong" {
		t.Fatalf("answer %q, %v", buf, err)
	}
	if _, err := peer.Write([]byte("more")); err != nil {
		t.Fatal(err)
	}
	if n, err := c.WriteRead(nil, buf); err != nil || string(buf[:n]) != "more"[:n] || n == 0 {
		t.Fatalf("WriteRead(nil, b) = %d %q, %v", n, buf[:n], err)
	}
}
