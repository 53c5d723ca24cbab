package h1server

import (
	"bytes"
	"slices"
	"sync"
	"testing"

	"golang.org/x/net/http2"
)

// TestH2ConnScan: the frames a server writes are followed however its
// writes split them, and only resets and GOAWAYs with an error code are
// reported; past maxRefusedStreams the connection is to be closed.
func TestH2ConnScan(t *testing.T) {
	var stream bytes.Buffer
	fr := http2.NewFramer(&stream, nil)
	_ = fr.WriteSettings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 100})
	_ = fr.WriteSettingsAck()
	_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: []byte{0x88}, EndHeaders: true})
	_ = fr.WriteData(1, false, bytes.Repeat([]byte{3}, 300)) // RST_STREAM-like bytes inside a payload
	_ = fr.WriteRSTStream(1, http2.ErrCodeNo)
	_ = fr.WriteRSTStream(3, http2.ErrCodeRefusedStream)
	_ = fr.WriteData(5, true, nil)
	_ = fr.WriteGoAway(5, http2.ErrCodeEnhanceYourCalm, []byte("debug data"))
	_ = fr.WriteGoAway(5, http2.ErrCodeProtocol, nil) // one report per connection
	want := []string{"h2_stream_refused_stream", "h2_connection_enhance_your_calm"}
	b := stream.Bytes()
	for _, size := range []int{1, 2, 5, 9, 13, 64, len(b)} {
		var got []string
		w := &h2Conn{refused: func(r string) { got = append(got, r) }}
		for p := b; len(p) > 0; {
			n := min(size, len(p))
			if w.scan(p[:n]) {
				t.Fatalf("writes of %d: closing", size)
			}
			p = p[n:]
		}
		if !slices.Equal(got, want) {
			t.Errorf("writes of %d bytes: reported %q, want %q", size, got, want)
		}
	}

	var many bytes.Buffer
	fr = http2.NewFramer(&many, nil)
	for i := range maxRefusedStreams + 1 {
		_ = fr.WriteRSTStream(uint32(2*i+1), http2.ErrCodeProtocol)
	}
	n := 0
	w := &h2Conn{refused: func(r string) { n++ }}
	if !w.scan(many.Bytes()) {
		t.Errorf("%d refused streams: the connection is kept", maxRefusedStreams+1)
	}
	if n != maxRefusedStreams+1 {
		t.Errorf("%d reports, want %d (each stream, then the connection)", n, maxRefusedStreams+1)
	}
}

// recordingConn records the writes that reach the connection.
type recordingConn struct {
	tlsConn // nil: only Write is called
	mu      sync.Mutex
	writes  [][]byte
}

func (c *recordingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes = append(c.writes, bytes.Clone(p))
	return len(p), nil
}

func (c *recordingConn) written() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.writes)
}

// TestH2ConnCork: a response's HEADERS frame, its DATA to come, is held
// and written with the next write, in one; alone, after corkDelay, when
// nothing follows (a closed flow-control window). HEADERS that end the
// stream, and other frames, are written at once.
func TestH2ConnCork(t *testing.T) {
	frame := func(write func(fr *http2.Framer)) []byte {
		var b bytes.Buffer
		write(http2.NewFramer(&b, nil))
		return b.Bytes()
	}
	headers := frame(func(fr *http2.Framer) {
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: []byte{0x88}, EndHeaders: true})
	})
	data := frame(func(fr *http2.Framer) { _ = fr.WriteData(1, true, []byte("{}")) })
	final := frame(func(fr *http2.Framer) {
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: []byte{0x88}, EndHeaders: true, EndStream: true})
	})

	rc := &recordingConn{}
	w := newH2Conn(rc, nil, 0)
	for _, p := range [][]byte{headers, data, final} {
		if n, err := w.Write(p); n != len(p) || err != nil {
			t.Fatalf("Write: %d, %v", n, err)
		}
	}
	want := [][]byte{append(bytes.Clone(headers), data...), final}
	if got := rc.written(); !slices.EqualFunc(got, want, bytes.Equal) {
		t.Fatalf("writes %x, want %x", got, want)
	}

	rc = &recordingConn{}
	w = newH2Conn(rc, nil, 0)
	if _, err := w.Write(headers); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the held HEADERS written alone", func() bool { return len(rc.written()) == 1 })
	if got := rc.written()[0]; !bytes.Equal(got, headers) {
		t.Fatalf("wrote %x, want %x", got, headers)
	}
}
