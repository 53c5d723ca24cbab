package h1server

import (
	"bytes"
	"crypto/tls"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/popconnect/popconnect/internal/h2test"
)

// h2Request sends one HTTP/2 request with the extra header fields over a
// raw framer (a client that ignores the server's advertised header list
// limit, as a hostile one would) and returns the response's status.
func (ts *tlsServer) h2Request(t *testing.T, fields ...hpack.HeaderField) int {
	t.Helper()
	conn, fr := h2test.Dial(t, ts.addr, ts.ca.Pool(), ts.agency.TLS)
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	for _, f := range append([]hpack.HeaderField{
		{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "https"},
		{Name: ":authority", Value: ts.addr}, {Name: ":path", Value: "/x"},
	}, fields...) {
		_ = enc.WriteField(f)
	}
	const chunk = 16 << 10 // the default SETTINGS_MAX_FRAME_SIZE
	b := block.Bytes()
	first := b[:min(chunk, len(b))]
	b = b[len(first):]
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: first, EndStream: true, EndHeaders: len(b) == 0}); err != nil {
		t.Fatal(err)
	}
	for len(b) > 0 {
		next := b[:min(chunk, len(b))]
		b = b[len(next):]
		if err := fr.WriteContinuation(1, len(b) == 0, next); err != nil {
			t.Fatal(err)
		}
	}
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("reading the answer: %v", err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = fr.WriteSettingsAck()
			}
		case *http2.MetaHeadersFrame:
			status, _ := strconv.Atoi(f.PseudoValue("status"))
			return status
		case *http2.RSTStreamFrame:
			t.Fatalf("stream reset: %v", f.ErrCode)
		case *http2.GoAwayFrame:
			t.Fatalf("GOAWAY: %v", f.ErrCode)
		}
	}
}

// TestH2HeaderLimitRefused: an HTTP/2 request whose header list is over
// MaxHeaderBytes (or has more than MaxHeaderLines fields) is answered 431
// by Refuse, which audits it, not by golang.org/x/net/http2's own handler,
// which nothing audits; one within the limits reaches the handler.
func TestH2HeaderLimitRefused(t *testing.T) {
	forEachH2(t, func(t *testing.T, srv HTTP2Server) {
		refused := make(chan int, 10)
		ca, server, agency := tlsFixture(t)
		ts := &tlsServer{testServer: start(t, Config{
			TLSConfig: serverTLS(ca, server), ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 10 * time.Second,
			HTTP2Server:    srv,
			MaxHeaderBytes: 4 << 10, MaxHeaderLines: 20,
			Refuse: func(w http.ResponseWriter, state *tls.ConnectionState, status int) {
				if state == nil || len(state.VerifiedChains) == 0 {
					t.Error("Refuse got no verified client certificate")
				}
				refused <- status
				w.WriteHeader(status)
			},
		}, http.HandlerFunc(describe)), ca: ca, agency: agency}

		for _, tc := range []struct {
			name   string
			fields []hpack.HeaderField
			status int
		}{
			{"within the limits", []hpack.HeaderField{{Name: "x-filler", Value: strings.Repeat("a", 3<<10)}}, http.StatusOK},
			{"over MaxHeaderBytes", []hpack.HeaderField{{Name: "x-filler", Value: strings.Repeat("a", 6<<10)}}, http.StatusRequestHeaderFieldsTooLarge},
			{"over MaxHeaderBytes in many fields", manyFields(12, 500), http.StatusRequestHeaderFieldsTooLarge},
			{"over MaxHeaderLines", manyFields(21, 1), http.StatusRequestHeaderFieldsTooLarge},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if got := ts.h2Request(t, tc.fields...); got != tc.status {
					t.Fatalf("status %d, want %d", got, tc.status)
				}
				if tc.status == http.StatusOK {
					return
				}
				select {
				case s := <-refused:
					if s != tc.status {
						t.Fatalf("Refuse got %d", s)
					}
				default:
					t.Fatal("answered without Refuse: the refusal is not audited")
				}
			})
		}
	})
}

func manyFields(n, size int) []hpack.HeaderField {
	fs := make([]hpack.HeaderField, n)
	for i := range fs {
		fs[i] = hpack.HeaderField{Name: "x-f" + strconv.Itoa(i), Value: strings.Repeat("v", size)}
	}
	return fs
}
