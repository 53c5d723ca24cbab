package h1server

import (
	"bytes"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// The HTTP/2 protections of the agency port, each measured by what the
// client observes (a reset, a GOAWAY and its code, the connection's end)
// and by what the server did (handler invocations, audit reports), never
// by how fast. Every refusal of a stream or connection is reported to
// ProtocolRefusal with the client's verified certificate.

// blockingHandler counts its invocations and blocks until the test ends,
// whatever the request's context says: the worst case, a handler waiting
// on a slow upstream.
func blockingHandler(t *testing.T) (http.Handler, *atomic.Int64) {
	var calls atomic.Int64
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		<-release
	}), &calls
}

// TestH2Settings: the server advertises the limits the other tests rely
// on.
func TestH2Settings(t *testing.T) {
	forEachH2(t, func(t *testing.T, srv HTTP2Server) {
		ts, _ := startH2(t, srv, Config{MaxHeaderBytes: 4 << 10}, http.HandlerFunc(describe))
		c := ts.dialH2(t, true)
		ev := c.await(t, "the server's SETTINGS", func(ev h2Event) bool { return ev.typ == http2.FrameSettings && !ev.ack })
		got := map[http2.SettingID]uint32{}
		for _, s := range ev.settings {
			got[s.ID] = s.Val
		}
		for id, want := range map[http2.SettingID]uint32{
			http2.SettingMaxConcurrentStreams: h2MaxConcurrentStreams,
			http2.SettingMaxFrameSize:         h2MaxReadFrameSize,
			http2.SettingHeaderTableSize:      4096, // RFC 7541's default, when not advertised
		} {
			if v, ok := got[id]; ok && v != want || !ok && id != http2.SettingHeaderTableSize {
				t.Errorf("%v = %d (advertised: %v), want %d", id, v, ok, want)
			}
		}
		// x/net adds a little to the bound it is given (see h2limits.go).
		const list = h2HeaderListFactor * 4 << 10
		if v := got[http2.SettingMaxHeaderListSize]; v < list || v > list+1024 {
			t.Errorf("MAX_HEADER_LIST_SIZE = %d, want %d to %d", v, list, list+1024)
		}
	})
}

// TestH2RapidReset (CVE-2023-44487): streams opened and reset at once, in
// a loop, start at most MAX_CONCURRENT_STREAMS handlers while the handlers
// are busy, and the connection is ended with ENHANCE_YOUR_CALM after a
// bounded number of streams; the refusal is reported.
func TestH2RapidReset(t *testing.T) {
	forEachH2(t, func(t *testing.T, srv HTTP2Server) {
		h, calls := blockingHandler(t)
		ts, ref := startH2(t, srv, Config{}, h)
		c := ts.dialH2(t, true)
		const maxStreams = 20 * h2MaxConcurrentStreams
		sent := 0
		for i := range maxStreams {
			id := uint32(2*i + 1)
			if c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.headers(), EndStream: true, EndHeaders: true}) != nil ||
				c.fr.WriteRSTStream(id, http2.ErrCodeCancel) != nil {
				break // the server has closed the connection
			}
			sent++
		}
		if code := c.ended(t); code != int(http2.ErrCodeEnhanceYourCalm) {
			t.Fatalf("after %d streams opened and reset: GOAWAY code %d, want ENHANCE_YOUR_CALM", sent, code)
		}
		if n := calls.Load(); n > h2MaxConcurrentStreams {
			t.Errorf("%d handler invocations, want at most %d", n, h2MaxConcurrentStreams)
		}
		waitFor(t, "the refusal's report", func() bool { return ref.count("h2_connection_enhance_your_calm") == 1 })
		t.Logf("%d streams sent, %d handlers started", sent, calls.Load())
	})
}

// TestH2MaxConcurrentStreams: a stream over MAX_CONCURRENT_STREAMS is
// reset without reaching the handler, and reported.
func TestH2MaxConcurrentStreams(t *testing.T) {
	forEachH2(t, func(t *testing.T, srv HTTP2Server) {
		h, calls := blockingHandler(t)
		ts, ref := startH2(t, srv, Config{}, h)
		c := ts.dialH2(t, true)
		c.await(t, "the server's SETTINGS ACK", func(ev h2Event) bool { return ev.typ == http2.FrameSettings && ev.ack })
		for i := range h2MaxConcurrentStreams {
			c.get(t, uint32(2*i+1))
		}
		waitFor(t, "every allowed stream in its handler", func() bool { return calls.Load() == h2MaxConcurrentStreams })
		over := uint32(2*h2MaxConcurrentStreams + 1)
		c.get(t, over)
		ev := c.await(t, "RST_STREAM of the stream over the limit", func(ev h2Event) bool { return ev.typ == http2.FrameRSTStream })
		if ev.stream != over || (ev.code != http2.ErrCodeRefusedStream && ev.code != http2.ErrCodeProtocol) {
			t.Fatalf("RST_STREAM %d %v, want %d REFUSED_STREAM or PROTOCOL_ERROR", ev.stream, ev.code, over)
		}
		if n := calls.Load(); n != h2MaxConcurrentStreams {
			t.Errorf("%d handler invocations, want %d", n, h2MaxConcurrentStreams)
		}
		reason := "h2_stream_" + errCodeName(ev.code)
		waitFor(t, "the refusal's report", func() bool { return ref.count(reason) == 1 })
	})
}

// TestH2RefusedStreamsBounded: a client that makes the server refuse
// streams in a loop loses the connection after maxRefusedStreams
// refusals, each reported, and one report for the connection.
func TestH2RefusedStreamsBounded(t *testing.T) {
	forEachH2(t, func(t *testing.T, srv HTTP2Server) {
		h, calls := blockingHandler(t)
		ts, ref := startH2(t, srv, Config{}, h)
		c := ts.dialH2(t, true)
		c.await(t, "the server's SETTINGS ACK", func(ev h2Event) bool { return ev.typ == http2.FrameSettings && ev.ack })
		// A request with a pseudo-header field after a regular one is
		// malformed: a stream error, PROTOCOL_ERROR.
		bad := c.headers(hpack.HeaderField{Name: "x-a", Value: "1"}, hpack.HeaderField{Name: ":path", Value: "/y"})
		for i := range 10 * maxRefusedStreams {
			if c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: uint32(2*i + 1), BlockFragment: bad, EndStream: true, EndHeaders: true}) != nil {
				break
			}
		}
		if code := c.ended(t); code != -1 {
			t.Fatalf("GOAWAY %d, want the connection closed", code)
		}
		if n := calls.Load(); n != 0 {
			t.Errorf("%d handler invocations for malformed requests", n)
		}
		waitFor(t, "the connection's report", func() bool { return ref.count("h2_connection_too_many_refused_streams") == 1 })
		if n := ref.count("h2_stream_protocol_error"); n != maxRefusedStreams {
			t.Errorf("%d stream refusals reported, want %d", n, maxRefusedStreams)
		}
	})
}

// TestH2ContinuationFlood (CVE-2023-45288): a header block that never
// ends (CONTINUATION frames without END_HEADERS) ends the connection
// within a bounded number of bytes, without reaching the handler.
func TestH2ContinuationFlood(t *testing.T) {
	forEachH2(t, func(t *testing.T, srv HTTP2Server) {
		h, calls := blockingHandler(t)
		const maxHeaderBytes = 4 << 10
		ts, ref := startH2(t, srv, Config{MaxHeaderBytes: maxHeaderBytes}, h)
		c := ts.dialH2(t, true)
		first := c.headers()
		if err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: first, EndStream: true}); err != nil {
			t.Fatal(err)
		}
		var frag bytes.Buffer
		enc := hpack.NewEncoder(&frag)
		for frag.Len() < h2MaxReadFrameSize-1100 {
			_ = enc.WriteField(hpack.HeaderField{Name: "x-filler", Value: strings.Repeat("a", 1000)})
		}
		// What the server must read before it may give up: its header list
		// bound (advertised) twice, as x/net counts, and a frame.
		const bound = 2*h2HeaderListFactor*maxHeaderBytes + h2MaxReadFrameSize
		// Written in all: far beyond the bound and the socket buffers (up to
		// a few MB each way on loopback), which is as close as the client
		// can see what the server read.
		const limit = 32 << 20
		written := len(first)
		for written < limit {
			if c.fr.WriteContinuation(1, false, frag.Bytes()) != nil {
				break
			}
			written += frag.Len()
		}
		if code := c.ended(t); code != int(http2.ErrCodeProtocol) && code != -1 {
			t.Fatalf("GOAWAY code %d, want PROTOCOL_ERROR or the connection closed", code)
		}
		if written >= limit {
			t.Fatalf("the server read %d bytes of one header block (bound %d)", written, bound)
		}
		if n := calls.Load(); n != 0 {
			t.Errorf("%d handler invocations", n)
		}
		waitFor(t, "the refusal's report", func() bool { return ref.count("h2_connection_protocol_error") == 1 })
		t.Logf("connection ended after %d bytes written (server bound %d, the rest in socket buffers)", written, bound)
	})
}

// TestH2HPACKTableSize: a header block that resizes the server's decoding
// table above the SETTINGS_HEADER_TABLE_SIZE it advertised (4096) ends
// the connection with COMPRESSION_ERROR; the table never grows.
func TestH2HPACKTableSize(t *testing.T) {
	forEachH2(t, func(t *testing.T, srv HTTP2Server) {
		h, calls := blockingHandler(t)
		ts, ref := startH2(t, srv, Config{}, h)
		c := ts.dialH2(t, true)
		var block bytes.Buffer
		enc := hpack.NewEncoder(&block)
		enc.SetMaxDynamicTableSizeLimit(1 << 20)
		enc.SetMaxDynamicTableSize(1 << 20) // a size update opens the next block
		for _, f := range []hpack.HeaderField{{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "https"},
			{Name: ":authority", Value: ts.addr}, {Name: ":path", Value: "/x"}} {
			_ = enc.WriteField(f)
		}
		if err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
			t.Fatal(err)
		}
		if code := c.ended(t); code != int(http2.ErrCodeCompression) {
			t.Fatalf("GOAWAY code %d, want COMPRESSION_ERROR", code)
		}
		if n := calls.Load(); n != 0 {
			t.Errorf("%d handler invocations", n)
		}
		waitFor(t, "the refusal's report", func() bool { return ref.count("h2_connection_compression_error") == 1 })
	})
}

// floodBatch is n frames written by frame, framed into one buffer so that
// they are written in a few TLS records rather than one each.
func floodBatch(n int, frame func(fr *http2.Framer) error) []byte {
	var batch bytes.Buffer
	fr := http2.NewFramer(&batch, nil)
	for range n {
		_ = frame(fr)
	}
	return batch.Bytes()
}

// TestH2PingFlood: a client that sends PING frames without reading their
// acknowledgements makes the server queue them; past x/net's bound on
// queued control frames (10,000) the connection is closed, so the queue
// cannot grow without bound.
func TestH2PingFlood(t *testing.T) {
	forEachH2(t, func(t *testing.T, srv HTTP2Server) {
		ts, _ := startH2(t, srv, Config{}, http.HandlerFunc(describe))
		c := ts.dialH2(t, false)
		batch := floodBatch(1000, func(fr *http2.Framer) error { return fr.WritePing(false, [8]byte{1}) })
		// Sent at most: far beyond the socket buffers (a few MB on loopback),
		// the acknowledgements they hold, and the bound.
		const limit = 4 << 20
		sent := 0
		for sent < limit {
			if _, err := c.conn.Write(batch); err != nil {
				break
			}
			sent += 1000
		}
		if sent >= limit {
			t.Fatalf("%d PING frames sent unread and the connection is still open", sent)
		}
		waitFor(t, "the connection's end on the server", func() bool { return ts.tracked() == 0 })
		t.Logf("closed after %d PING frames", sent)
	})
}

// TestH2SettingsFlood: SETTINGS frames sent without reading their
// acknowledgements queue nothing: x/net owes at most one acknowledgement
// at a time (a flag, not a queue), so the server's memory does not grow
// with the flood. Measured as the live heap of the test process, server
// included, after a flood whose acknowledgements, queued, would take
// hundreds of megabytes.
func TestH2SettingsFlood(t *testing.T) {
	forEachH2(t, func(t *testing.T, srv HTTP2Server) {
		ts, _ := startH2(t, srv, Config{}, http.HandlerFunc(describe))
		c := ts.dialH2(t, false)
		batch := floodBatch(1000, func(fr *http2.Framer) error { return fr.WriteSettings() })
		before := liveHeap()
		const frames = 2_000_000
		for sent := 0; sent < frames; sent += 1000 {
			if _, err := c.conn.Write(batch); err != nil {
				t.Fatalf("the connection ended after %d SETTINGS frames: %v", sent, err)
			}
		}
		// A SETTINGS frame after the flood, and a PING: once the PING's
		// acknowledgement is read, every SETTINGS frame before it was read.
		// The writes return with the end of the flood still in the socket
		// buffers, hundreds of thousands of frames that a server under the
		// race detector on a loaded machine reads in more than 10 s: the
		// wait lasts while acknowledgements keep coming.
		c.startReading()
		if err := c.fr.WritePing(false, [8]byte{2}); err != nil {
			t.Fatal(err)
		}
		acks := 0
		waited := time.Now()
		c.awaitMoving(t, "the PING's acknowledgement", func(ev h2Event) bool {
			if ev.typ == http2.FrameSettings && ev.ack {
				acks++
			}
			return ev.typ == http2.FramePing && ev.ack
		})
		grown := int64(liveHeap()) - int64(before)
		t.Logf("%d SETTINGS frames, %d acknowledgements sent, the last in %v, live heap %+d bytes",
			frames, acks, time.Since(waited).Round(time.Millisecond), grown)
		if grown > 8<<20 {
			t.Errorf("the live heap grew by %d bytes over a flood of %d SETTINGS frames", grown, frames)
		}
	})
}

func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestH2FlowControlWindow: a client that never opens its flow-control
// window does not keep the response, and the handler, waiting: the
// stream is reset when WriteTimeout passes, and the reset reported.
func TestH2FlowControlWindow(t *testing.T) {
	forEachH2(t, func(t *testing.T, srv HTTP2Server) {
		returned := make(chan error, 1)
		ts, ref := startH2(t, srv, Config{WriteTimeout: time.Second}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, err := w.Write(bytes.Repeat([]byte("a"), 64<<10))
			returned <- err
		}))
		c := ts.dialH2(t, true, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
		c.get(t, 1)
		ev := c.await(t, "RST_STREAM of the stream", func(ev h2Event) bool { return ev.typ == http2.FrameRSTStream || ev.typ == http2.FrameGoAway })
		if ev.typ != http2.FrameRSTStream || ev.stream != 1 {
			t.Fatalf("got frame %v on stream %d, want RST_STREAM on 1", ev.typ, ev.stream)
		}
		select {
		case err := <-returned:
			if err == nil {
				t.Error("the handler's write succeeded into a closed window")
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the handler is still writing after its stream was reset")
		}
		waitFor(t, "the refusal's report", func() bool { return ref.count("h2_stream_"+errCodeName(ev.code)) == 1 })
	})
}

// TestH2IdleTimeout: a connection with no stream is ended (GOAWAY, then
// closed) after IdleTimeout; that is not a refusal.
func TestH2IdleTimeout(t *testing.T) {
	forEachH2(t, func(t *testing.T, srv HTTP2Server) {
		ts, ref := startH2(t, srv, Config{IdleTimeout: 300 * time.Millisecond}, http.HandlerFunc(describe))
		c := ts.dialH2(t, true)
		if code := c.ended(t); code != int(http2.ErrCodeNo) && code != -1 {
			t.Fatalf("GOAWAY code %d, want NO_ERROR", code)
		}
		waitFor(t, "the connection's end on the server", func() bool { return ts.tracked() == 0 })
		if r := ref.all(); len(r) != 0 {
			t.Errorf("reported as refusals: %q", r)
		}
	})
}

// TestH2SlowRead: a client that opens its windows wide and then reads
// nothing loses its connection once WriteTimeout passes without a byte
// taken (WriteByteTimeout), so it cannot pin the connection and the
// handler's response.
func TestH2SlowRead(t *testing.T) {
	forEachH2(t, func(t *testing.T, srv HTTP2Server) {
		returned := make(chan struct{})
		ts, _ := startH2(t, srv, Config{WriteTimeout: time.Second}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer close(returned)
			chunk := bytes.Repeat([]byte("a"), 64<<10)
			for range 256 { // 16 MiB: beyond any socket buffer
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		}))
		c := ts.dialH2(t, false, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1<<31 - 1})
		if err := c.fr.WriteWindowUpdate(0, 1<<31-1-65535); err != nil {
			t.Fatal(err)
		}
		_ = c.fr.WriteSettingsAck() // the server's SETTINGS, unread, acknowledged blind
		c.get(t, 1)
		waitFor(t, "the connection's end on the server", func() bool { return ts.tracked() == 0 })
		select {
		case <-returned:
		case <-time.After(10 * time.Second):
			t.Fatal("the handler is still writing after its connection ended")
		}
	})
}
