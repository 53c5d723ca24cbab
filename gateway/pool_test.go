package gateway

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestUpstreamPool(t *testing.T) {
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.URL.Path)
		if r.Header.Get("X-Request-Id") != "rid" || r.Header.Get("X-Popconnect-Agency") != "BYT" {
			w.WriteHeader(400)
			return
		}
		b, _ := io.ReadAll(r.Body)
		w.(http.Flusher).Flush() // forces a chunked answer
		io.WriteString(w, `{"echo":`+strings.TrimSpace(string(b)+`1`)+`}`)
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL + "/api/")
	p := newUpstreamPool(u, nil, 4)
	defer p.closeIdle()
	ctx := context.Background()
	var buf bytes.Buffer
	call := func(body []byte) (int, string) {
		buf.Reset()
		status, err := p.roundTrip(ctx, "POST", "/v1/x", body, "rid", "BYT", 1<<10, &buf)
		if err != nil {
			t.Fatal(err)
		}
		return status, buf.String()
	}
	if s, b := call(nil); s != 200 || b != `{"echo":1}` {
		t.Fatalf("got %d %q", s, b)
	}
	// The server drops the idle keep-alive connection: the next call is
	// retried on a new one.
	srv.CloseClientConnections()
	if s, b := call([]byte("2")); s != 200 || b != `{"echo":21}` {
		t.Fatalf("after a dropped connection: %d %q", s, b)
	}
	if paths[0] != "/api/v1/x" {
		t.Fatalf("path prefix lost: %v", paths)
	}
	buf.Reset()
	if _, err := p.roundTrip(ctx, "POST", "/v1/x", bytes.Repeat([]byte("9"), 2000), "rid", "BYT", 1<<10, &buf); err != errTooLarge {
		t.Fatalf("oversized chunked body: %v", err)
	}
}
