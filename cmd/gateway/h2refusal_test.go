package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/popconnect/popconnect/internal/h2test"
)

// TestH2ProtocolRefusalAudited: an HTTP/2 stream and an HTTP/2 connection
// that the server refuses below any request (a malformed request's stream
// reset with PROTOCOL_ERROR; a connection ended with COMPRESSION_ERROR)
// are audited, with the agency of the verified certificate, status 0 and
// the refusal as the reason. Before, neither left a record.
func TestH2ProtocolRefusalAudited(t *testing.T) {
	forEachHTTP2Server(t, func(t *testing.T, srv string) {
		f := newFixture(t)
		gw := f.start(t, "--http2-server", srv)
		conn, fr := h2test.Dial(t, gw.agencyAddr, f.ca.Pool(), f.ca.Agency(t, "BYT").TLS)
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		var block bytes.Buffer
		enc := hpack.NewEncoder(&block)
		fields := func(fs ...hpack.HeaderField) []byte {
			block.Reset()
			for _, f := range fs {
				_ = enc.WriteField(f)
			}
			return bytes.Clone(block.Bytes())
		}
		method, scheme := hpack.HeaderField{Name: ":method", Value: "GET"}, hpack.HeaderField{Name: ":scheme", Value: "https"}
		path := hpack.HeaderField{Name: ":path", Value: "/v1/citizens/001099000001"}
		// A pseudo-header field after a regular one: a malformed request.
		malformed := fields(method, scheme, hpack.HeaderField{Name: "x-a", Value: "1"}, path)
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: malformed, EndStream: true, EndHeaders: true}); err != nil {
			t.Fatal(err)
		}
		await := func(typ http2.FrameType) http2.ErrCode {
			t.Helper()
			for {
				f, err := fr.ReadFrame()
				if err != nil {
					t.Fatalf("waiting for %v: %v", typ, err)
				}
				switch f := f.(type) {
				case *http2.SettingsFrame:
					if !f.IsAck() {
						_ = fr.WriteSettingsAck()
					}
				case *http2.RSTStreamFrame:
					if typ == http2.FrameRSTStream {
						return f.ErrCode
					}
				case *http2.GoAwayFrame:
					if typ == http2.FrameGoAway {
						return f.ErrCode
					}
					t.Fatalf("GOAWAY %v while waiting for %v", f.ErrCode, typ)
				}
			}
		}
		if code := await(http2.FrameRSTStream); code != http2.ErrCodeProtocol {
			t.Fatalf("RST_STREAM %v, want PROTOCOL_ERROR", code)
		}
		// A dynamic table larger than the server's SETTINGS_HEADER_TABLE_SIZE.
		enc.SetMaxDynamicTableSizeLimit(1 << 20)
		enc.SetMaxDynamicTableSize(1 << 20)
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: fields(method, scheme, path), EndStream: true, EndHeaders: true}); err != nil {
			t.Fatal(err)
		}
		if code := await(http2.FrameGoAway); code != http2.ErrCodeCompression {
			t.Fatalf("GOAWAY %v, want COMPRESSION_ERROR", code)
		}
		// The records are queued, not waited for: poll the file, bounded.
		for _, reason := range []string{"h2_stream_protocol_error", "h2_connection_compression_error"} {
			eventually(t, "the record of "+reason, func() bool {
				log, _ := os.ReadFile(gw.auditPath)
				for _, line := range strings.Split(string(log), "\n") {
					if strings.Contains(line, `"reason":"`+reason+`"`) {
						if !strings.Contains(line, `"agency":"BYT"`) || !strings.Contains(line, `"status":0`) {
							t.Fatalf("record of %s: %s", reason, line)
						}
						return true
					}
				}
				return false
			})
		}
	})
}

// http2Servers are the values of --http2-server that every HTTP/2 test of
// the gateway runs against.
var http2Servers = []string{"x-net", "native"}

// forEachHTTP2Server runs test as a subtest for each HTTP/2 server.
func forEachHTTP2Server(t *testing.T, test func(t *testing.T, srv string)) {
	for _, srv := range http2Servers {
		t.Run(srv, func(t *testing.T) { test(t, srv) })
	}
}
