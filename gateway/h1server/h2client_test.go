package h1server

import (
	"bytes"
	"crypto/tls"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/popconnect/popconnect/internal/h2test"
)

// h2Event is what the raw client saw of one frame from the server (the
// framer reuses its frames, so the reader copies what the tests need).
type h2Event struct {
	typ      http2.FrameType
	stream   uint32
	code     http2.ErrCode // RST_STREAM, GOAWAY
	status   int           // HEADERS
	ack      bool          // SETTINGS, PING
	settings []http2.Setting
	err      error // the connection ended (EOF, reset, timeout)
}

// h2Client is a raw HTTP/2 client over TLS with the agency's certificate:
// it writes frames as a hostile client would, ignoring the server's
// settings, and reads the server's frames into events.
type h2Client struct {
	conn   *tls.Conn
	fr     *http2.Framer
	enc    *hpack.Encoder
	block  bytes.Buffer
	addr   string
	events chan h2Event
}

// dialH2 connects with ALPN h2 and sends the preface and an empty
// SETTINGS frame; it starts reading only when read is true (the flood
// tests read nothing, so that what the server writes backs up).
func (ts *tlsServer) dialH2(t *testing.T, read bool, settings ...http2.Setting) *h2Client {
	t.Helper()
	conn, fr := h2test.Dial(t, ts.addr, ts.ca.Pool(), ts.agency.TLS, settings...)
	c := &h2Client{conn: conn, fr: fr, addr: ts.addr, events: make(chan h2Event, 1<<16)}
	c.enc = hpack.NewEncoder(&c.block)
	if read {
		c.startReading()
	}
	return c
}

// startReading reads frames until the connection ends, acknowledging the
// server's SETTINGS.
func (c *h2Client) startReading() {
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	// A framer of its own for the acknowledgements: the test writes with
	// c.fr meanwhile (a tls.Conn takes concurrent writes, a Framer not).
	acks := http2.NewFramer(c.conn, nil)
	go func() {
		for {
			f, err := c.fr.ReadFrame()
			if err != nil {
				c.events <- h2Event{err: err}
				close(c.events)
				return
			}
			ev := h2Event{typ: f.Header().Type, stream: f.Header().StreamID}
			switch f := f.(type) {
			case *http2.RSTStreamFrame:
				ev.code = f.ErrCode
			case *http2.GoAwayFrame:
				ev.code = f.ErrCode
			case *http2.MetaHeadersFrame:
				ev.status, _ = strconv.Atoi(f.PseudoValue("status"))
			case *http2.SettingsFrame:
				ev.ack = f.IsAck()
				_ = f.ForeachSetting(func(s http2.Setting) error { ev.settings = append(ev.settings, s); return nil })
				if !ev.ack {
					_ = acks.WriteSettingsAck()
				}
			case *http2.PingFrame:
				ev.ack = f.IsAck()
			}
			c.events <- ev
		}
	}()
}

// headers encodes a GET request's header block with extra fields.
func (c *h2Client) headers(extra ...hpack.HeaderField) []byte {
	c.block.Reset()
	for _, f := range append([]hpack.HeaderField{
		{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "https"},
		{Name: ":authority", Value: c.addr}, {Name: ":path", Value: "/x"},
	}, extra...) {
		_ = c.enc.WriteField(f)
	}
	return bytes.Clone(c.block.Bytes())
}

// get opens stream id with a complete GET request.
func (c *h2Client) get(t *testing.T, id uint32) {
	t.Helper()
	if err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.headers(), EndStream: true, EndHeaders: true}); err != nil {
		t.Fatalf("writing HEADERS on stream %d: %v", id, err)
	}
}

// await returns the first event for which match is true, failing the test
// when the connection ends first or nothing matches within 10 s (a bound
// for a loaded machine, not a measure: the tests assert on what arrives).
func (c *h2Client) await(t *testing.T, what string, match func(h2Event) bool) h2Event {
	t.Helper()
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case ev, ok := <-c.events:
			if !ok {
				t.Fatalf("waiting for %s: the connection had ended", what)
			}
			if match(ev) {
				return ev
			}
			if ev.err != nil {
				t.Fatalf("waiting for %s: the connection ended: %v", what, ev.err)
			}
		case <-timeout.C:
			t.Fatalf("no %s within 10s", what)
		}
	}
}

// awaitMoving is await for a wait as long as the work the server has left:
// it fails when the connection ends first or no frame at all arrives for
// 10 s (the server stopped), however long the whole wait; the number of
// frames seen is returned with the match.
func (c *h2Client) awaitMoving(t *testing.T, what string, match func(h2Event) bool) (h2Event, int) {
	t.Helper()
	const still = 10 * time.Second
	timeout := time.NewTimer(still)
	defer timeout.Stop()
	for seen := 1; ; seen++ {
		select {
		case ev, ok := <-c.events:
			if !ok {
				t.Fatalf("waiting for %s: the connection had ended", what)
			}
			if match(ev) {
				return ev, seen
			}
			if ev.err != nil {
				t.Fatalf("waiting for %s: the connection ended: %v", what, ev.err)
			}
			timeout.Reset(still)
		case <-timeout.C:
			t.Fatalf("no %s, and no frame for %v after %d frames", what, still, seen-1)
		}
	}
}

// ended waits for the end of the connection, or a GOAWAY, and returns the
// GOAWAY's code (-1: closed without one).
func (c *h2Client) ended(t *testing.T) int {
	t.Helper()
	ev := c.await(t, "GOAWAY or the connection's end", func(ev h2Event) bool { return ev.err != nil || ev.typ == http2.FrameGoAway })
	if ev.err != nil {
		return -1
	}
	return int(ev.code)
}

// refusals records what the server reports through ProtocolRefusal,
// checking that each comes with a verified client certificate.
type refusals struct {
	t       *testing.T
	mu      sync.Mutex
	reasons []string
}

func (r *refusals) record(state *tls.ConnectionState, reason string) {
	if state == nil || len(state.VerifiedChains) == 0 {
		r.t.Errorf("refusal %q without a verified client certificate", reason)
	}
	r.mu.Lock()
	r.reasons = append(r.reasons, reason)
	r.mu.Unlock()
}

func (r *refusals) count(reason string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, s := range r.reasons {
		if s == reason {
			n++
		}
	}
	return n
}

func (r *refusals) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.reasons...)
}

// startH2 serves h over TLS with cfg's limits and records the refusals.
func startH2(t *testing.T, srv HTTP2Server, cfg Config, h http.Handler) (*tlsServer, *refusals) {
	t.Helper()
	ca, server, agency := tlsFixture(t)
	ref := &refusals{t: t}
	cfg.TLSConfig = serverTLS(ca, server)
	cfg.ProtocolRefusal = ref.record
	cfg.HTTP2Server = srv
	if cfg.ReadHeaderTimeout == 0 {
		cfg.ReadHeaderTimeout = 5 * time.Second
	}
	return &tlsServer{testServer: start(t, cfg, h), ca: ca, agency: agency}, ref
}

// h2Servers are the HTTP/2 servers that every HTTP/2 test runs against.
var h2Servers = []HTTP2Server{HTTP2XNet, HTTP2Native}

// forEachH2 runs test as a subtest for each HTTP/2 server.
func forEachH2(t *testing.T, test func(t *testing.T, srv HTTP2Server)) {
	for _, srv := range h2Servers {
		t.Run(string(srv), func(t *testing.T) { test(t, srv) })
	}
}
