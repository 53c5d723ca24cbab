package h1server

import (
	"bytes"
	"slices"
	"testing"

	"golang.org/x/net/http2"
)

// TestH2WatchScan: the frames a server writes are followed however its
// writes split them, and only resets and GOAWAYs with an error code are
// reported; past maxRefusedStreams the connection is to be closed.
func TestH2WatchScan(t *testing.T) {
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
		w := &h2Watch{refused: func(r string) { got = append(got, r) }}
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
	w := &h2Watch{refused: func(r string) { n++ }}
	if !w.scan(many.Bytes()) {
		t.Errorf("%d refused streams: the connection is kept", maxRefusedStreams+1)
	}
	if n != maxRefusedStreams+1 {
		t.Errorf("%d reports, want %d (each stream, then the connection)", n, maxRefusedStreams+1)
	}
}
