package h1server

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// FuzzH2Frames feeds the native HTTP/2 server's frame dispatch whatever a
// client may send after the preface, and checks that it ends (no
// deadlock: the input ends, the connection ends, and every handler and
// writer goroutine with it), that what it writes is well-formed HTTP/2
// (every frame parses, with HPACK state kept across them), and that the
// handler sees only well-formed requests. Seeds: a conversation of each
// frame type, and testdata/fuzz/FuzzH2Frames.
func FuzzH2Frames(f *testing.F) {
	for _, seed := range h2FuzzSeeds() {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var handled sync.Mutex
		s, err := New(Config{
			HTTP2Server: HTTP2Native, MaxHeaderBytes: 4 << 10, MaxBodyBytes: 1 << 10, ReadTimeout: 100 * time.Millisecond, WriteTimeout: 100 * time.Millisecond,
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				handled.Lock()
				defer handled.Unlock()
				checkH2Request(t, r)
				b, _ := io.ReadAll(r.Body)
				w.Header().Set("Content-Type", "text/plain")
				_, _ = w.Write(bytes.Repeat(b, 50)) // large enough to need windows
			}),
		})
		if err != nil {
			t.Fatal(err)
		}
		fc := newFuzzConn(in)
		serveFuzz(t, s.newConn(fc), fc)
		checkH2Output(t, fc.written())
	})
}

// checkH2Request: what reaches the handler is a well-formed request.
func checkH2Request(t *testing.T, r *http.Request) {
	if r.Method == "" || r.URL == nil || !strings.HasPrefix(r.RequestURI, "/") || r.Proto != "HTTP/2.0" {
		t.Fatalf("handler got %q %q %q", r.Method, r.RequestURI, r.Proto)
	}
	for k := range r.Header {
		if k != http.CanonicalHeaderKey(k) || !validFieldName(k) {
			t.Fatalf("header key %q", k)
		}
		switch strings.ToLower(k) {
		case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
			t.Fatalf("connection-specific field %q reached the handler", k)
		}
	}
}

// checkH2Output parses what the server wrote: frames and header blocks.
func checkH2Output(t *testing.T, out []byte) {
	fr := http2.NewFramer(nil, bytes.NewReader(out))
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	fr.SetMaxReadFrameSize(1 << 24)
	for {
		f, err := fr.ReadFrame()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return // the connection may end mid-frame (a write cut short)
		}
		if err != nil {
			t.Fatalf("the server wrote a malformed frame: %v", err)
		}
		if mh, ok := f.(*http2.MetaHeadersFrame); ok {
			if st := mh.PseudoValue("status"); len(st) != 3 || mh.StreamID%2 != 1 {
				t.Fatalf("response HEADERS on stream %d with :status %q", mh.StreamID, st)
			}
		}
	}
}

// fuzzConn is a connection that reads its input, then, once released
// (the server has nothing left in progress), EOF; it records what is
// written to it.
type fuzzConn struct {
	in      *bytes.Reader
	release chan struct{}
	done    chan struct{} // closed by Close
	mu      sync.Mutex
	out     bytes.Buffer
	writes  [][]byte
	closed  bool
}

func newFuzzConn(in []byte) *fuzzConn {
	return &fuzzConn{in: bytes.NewReader(append([]byte(http2.ClientPreface), in...)),
		release: make(chan struct{}), done: make(chan struct{})}
}

func (c *fuzzConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return 0, net.ErrClosed
	}
	if c.in.Len() > 0 {
		defer c.mu.Unlock()
		return c.in.Read(p)
	}
	c.mu.Unlock()
	select {
	case <-c.release:
		return 0, io.EOF
	case <-c.done:
		return 0, net.ErrClosed
	}
}

// serveFuzz serves fc on c and ends its input once the server is idle
// (its streams answered or reset), bounded.
func serveFuzz(t *testing.T, c *conn, fc *fuzzConn) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.serveNativeH2()
	}()
	idle := func() bool {
		h := c.h2n.Load()
		if h == nil {
			return false
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.closed || fc.in.Len() == 0 && h.active == 0 && h.running == 0 && !h.flushing && len(h.sink.buf) == 0
	}
	for deadline := time.Now().Add(2 * time.Second); !idle() && time.Now().Before(deadline); {
		select {
		case <-done:
		case <-time.After(time.Millisecond):
		}
		if isDone(done) {
			break
		}
	}
	close(fc.release)
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the connection did not end with its input")
	}
	c.cancel()
}

func isDone(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func (c *fuzzConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	c.writes = append(c.writes, bytes.Clone(p))
	return c.out.Write(p)
}

func (c *fuzzConn) written() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.out.Bytes())
}

func (c *fuzzConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.closed = true
		close(c.done)
	}
	return nil
}

func (c *fuzzConn) LocalAddr() net.Addr                { return &net.TCPAddr{} }
func (c *fuzzConn) RemoteAddr() net.Addr               { return &net.TCPAddr{} }
func (c *fuzzConn) SetDeadline(t time.Time) error      { return nil }
func (c *fuzzConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *fuzzConn) SetWriteDeadline(t time.Time) error { return nil }

// h2FuzzSeeds are client conversations, one per concern of the dispatch.
func h2FuzzSeeds() [][]byte {
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	fields := func(fs ...string) []byte {
		block.Reset()
		for i := 0; i+1 < len(fs); i += 2 {
			_ = enc.WriteField(hpack.HeaderField{Name: fs[i], Value: fs[i+1]})
		}
		return bytes.Clone(block.Bytes())
	}
	get := []string{":method", "GET", ":scheme", "https", ":authority", "gw", ":path", "/v1/x?a=1"}
	post := []string{":method", "POST", ":scheme", "https", ":path", "/v1/y", "content-length", "4", "content-type", "text/plain"}
	conv := func(write func(fr *http2.Framer)) []byte {
		var b bytes.Buffer
		fr := http2.NewFramer(&b, nil)
		_ = fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 100})
		write(fr)
		return b.Bytes()
	}
	return [][]byte{
		conv(func(fr *http2.Framer) {
			_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: fields(get...), EndStream: true, EndHeaders: true})
			_ = fr.WritePing(false, [8]byte{1})
			_ = fr.WriteSettingsAck()
		}),
		conv(func(fr *http2.Framer) {
			_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: fields(post...), EndHeaders: true})
			_ = fr.WriteData(3, false, []byte("bo"))
			_ = fr.WriteDataPadded(3, true, []byte("dy"), []byte{0, 0})
			_ = fr.WriteWindowUpdate(0, 1000)
			_ = fr.WriteWindowUpdate(3, 1000)
		}),
		conv(func(fr *http2.Framer) {
			b := fields(get...)
			_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 5, BlockFragment: b[:3], EndStream: true})
			_ = fr.WriteContinuation(5, true, b[3:])
			_ = fr.WriteRSTStream(5, http2.ErrCodeCancel)
			_ = fr.WritePriority(7, http2.PriorityParam{StreamDep: 7})
		}),
		conv(func(fr *http2.Framer) {
			_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: fields(":method", "GET", "connection", "close", ":path", "/"), EndStream: true, EndHeaders: true})
			_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: fields(append(get, "x-a", strings.Repeat("a", 5000))...), EndStream: true, EndHeaders: true})
			_ = fr.WriteGoAway(0, http2.ErrCodeNo, nil)
		}),
		conv(func(fr *http2.Framer) {
			_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: fields(post...), EndHeaders: true})
			_ = fr.WriteData(1, true, []byte("too long body"))
			_ = fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 31})
		}),
	}
}

// TestH2FuzzSeedsServe: the seeds are answered (a sanity check that the
// fuzz harness drives the server, not only its refusals).
func TestH2FuzzSeedsServe(t *testing.T) {
	s, err := New(Config{HTTP2Server: HTTP2Native, Handler: http.HandlerFunc(describe)})
	if err != nil {
		t.Fatal(err)
	}
	fc := newFuzzConn(h2FuzzSeeds()[0])
	serveFuzz(t, s.newConn(fc), fc)
	fr := http2.NewFramer(nil, bytes.NewReader(fc.written()))
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("no response to the first seed's GET: %v", err)
		}
		if mh, ok := f.(*http2.MetaHeadersFrame); ok && mh.StreamID == 1 {
			if st := mh.PseudoValue("status"); st != "200" {
				t.Fatalf(":status %q", st)
			}
			return
		}
	}
}

// TestH2NativeOneWritePerResponse: a small response's HEADERS and DATA
// frames leave in one write (one TLS record), the point of the native
// server's write path.
func TestH2NativeOneWritePerResponse(t *testing.T) {
	s, err := New(Config{HTTP2Server: HTTP2Native, Handler: http.HandlerFunc(describe)})
	if err != nil {
		t.Fatal(err)
	}
	fc := newFuzzConn(h2FuzzSeeds()[0])
	serveFuzz(t, s.newConn(fc), fc)
	fc.mu.Lock()
	writes := fc.writes
	fc.mu.Unlock()
	for _, w := range writes {
		var types []http2.FrameType
		fr := http2.NewFramer(nil, bytes.NewReader(w))
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				break
			}
			if f.Header().StreamID == 1 {
				types = append(types, f.Header().Type)
			}
		}
		switch {
		case len(types) == 0:
		case len(types) == 2 && types[0] == http2.FrameHeaders && types[1] == http2.FrameData:
			return
		default:
			t.Fatalf("stream 1's frames written as %v in one write, want HEADERS and DATA together", types)
		}
	}
	t.Fatalf("no write held stream 1's response (%d writes)", len(writes))
}
