package h1server

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

var testLimits = Config{MaxHeaderBytes: testMaxHeaderBytes, MaxHeaderLines: testMaxHeaderLines, MaxBodyBytes: testMaxBody}

// TestServeHeadCases sends each parser case over a connection: the status
// is the expected one, a refusal closes the connection, and an accepted
// request leaves it open for the next one unless it asked otherwise.
func TestServeHeadCases(t *testing.T) {
	ts := start(t, testLimits, http.HandlerFunc(echo))
	for _, tc := range headCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // each waits to see whether its connection closes
			c := ts.dial(t)
			in := tc.in
			if tc.status == http.StatusOK && strings.Contains(in, "Content-Length: ") && !strings.Contains(in, "Expect") {
				var n int
				_, _ = fmt.Sscanf(in[strings.Index(in, "Content-Length: ")+16:], "%d", &n)
				in += strings.Repeat("b", n)
			}
			if strings.Contains(in, "Expect") {
				in += "bb"
			}
			c.send(t, in)
			resp, body := c.response(t)
			if resp.StatusCode == http.StatusContinue {
				resp, body = c.response(t)
			}
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d %q, want %d", resp.StatusCode, body, tc.status)
			}
			if tc.status != http.StatusOK && strings.Contains(body, "citizens") {
				t.Fatalf("the refusal echoes the request: %q", body)
			}
			if got := c.closed(t); got != tc.close {
				t.Fatalf("connection closed = %v, want %v", got, tc.close)
			}
			if !tc.close {
				c.send(t, "GET /again HTTP/1.1\r\nHost: gw\r\n\r\n")
				if resp, body := c.response(t); resp.StatusCode != http.StatusOK || !strings.HasPrefix(body, "GET /again") {
					t.Fatalf("second request: %d %q", resp.StatusCode, body)
				}
			}
		})
	}
}

// TestResponseFormat checks what the server writes: status line, the
// handler's fields (a snapshot at WriteHeader), Date, Content-Length.
func TestResponseFormat(t *testing.T) {
	ts := start(t, Config{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/fields":
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("X-Split", "a\r\nInjected: yes")
			w.Header().Set("Transfer-Encoding", "chunked") // never sent
			w.WriteHeader(http.StatusCreated)
			w.Header().Set("X-Late", "ignored")
			_, _ = io.WriteString(w, "{}")
		case "/empty":
		case "/nocontent":
			w.WriteHeader(http.StatusNoContent)
			if _, err := w.Write([]byte("x")); err != http.ErrBodyNotAllowed {
				panic("a 204 took a body")
			}
		case "/short":
			w.Header().Set("Content-Length", "10")
			_, _ = io.WriteString(w, "abc") // fewer than announced: not sent
		case "/long":
			w.Header().Set("Content-Length", "1")
			if _, err := io.WriteString(w, "abc"); err != http.ErrContentLength {
				panic("wrote past Content-Length")
			}
			_, _ = io.WriteString(w, "a")
		}
	}))
	c := ts.dial(t)
	c.send(t, "GET /fields HTTP/1.1\r\nHost: gw\r\n\r\n")
	resp, body := c.response(t)
	if resp.StatusCode != http.StatusCreated || body != "{}" || resp.ContentLength != 2 || resp.Header.Get("Date") == "" ||
		resp.Header.Get("X-Late") != "" || resp.Header.Get("Injected") != "" || len(resp.TransferEncoding) != 0 ||
		resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("got %d %q %q", resp.StatusCode, resp.Header, body)
	}
	c.send(t, "GET /empty HTTP/1.1\r\nHost: gw\r\n\r\nHEAD /fields HTTP/1.1\r\nHost: gw\r\n\r\nGET /nocontent HTTP/1.1\r\nHost: gw\r\n\r\n")
	if resp, body := c.response(t); resp.StatusCode != http.StatusOK || body != "" || resp.ContentLength != 0 {
		t.Fatalf("empty: %d %d %q", resp.StatusCode, resp.ContentLength, body)
	}
	resp, err := http.ReadResponse(c.br, &http.Request{Method: http.MethodHead})
	if err != nil || resp.StatusCode != http.StatusCreated || resp.ContentLength != 2 {
		t.Fatalf("HEAD: %v %v", resp, err)
	}
	if resp, _ := c.response(t); resp.StatusCode != http.StatusNoContent || resp.Header.Get("Content-Length") != "" {
		t.Fatalf("204: %d %q", resp.StatusCode, resp.Header)
	}
	c.send(t, "GET /long HTTP/1.1\r\nHost: gw\r\n\r\n")
	if resp, body := c.response(t); resp.StatusCode != http.StatusOK || body != "a" {
		t.Fatalf("long: %d %q", resp.StatusCode, body)
	}
	c.send(t, "GET /short HTTP/1.1\r\nHost: gw\r\n\r\n")
	if !c.closed(t) {
		t.Fatal("a response shorter than its Content-Length was sent")
	}
}

// TestPipelining sends three requests in one write: they are answered in
// order, on the one connection.
func TestPipelining(t *testing.T) {
	ts := start(t, Config{}, http.HandlerFunc(echo))
	c := ts.dial(t)
	c.send(t, "GET /a HTTP/1.1\r\nHost: gw\r\n\r\n"+
		"POST /b HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\n\r\nhello"+
		"GET /c?q HTTP/1.1\r\nHost: gw\r\n\r\n")
	for _, want := range []string{"GET /a  ", "POST /b  hello", "GET /c q "} {
		if resp, body := c.response(t); resp.StatusCode != http.StatusOK || body != want {
			t.Fatalf("got %d %q, want %q", resp.StatusCode, body, want)
		}
	}
	if ts.accepts.count() != 1 {
		t.Fatalf("%d connections", ts.accepts.count())
	}
}

// TestKeepAlive serves many requests of a net/http client over one
// connection, bodies read or not.
func TestKeepAlive(t *testing.T) {
	ts := start(t, Config{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/read" {
			_, _ = io.Copy(io.Discard, r.Body)
		} // else the small body is dropped by the server
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "ok")
	}))
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	defer client.CloseIdleConnections()
	for i := range 50 {
		path := []string{"/read", "/unread"}[i%2]
		resp, err := client.Post("http://"+ts.addr+path, "text/plain", strings.NewReader(strings.Repeat("x", 1000)))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(b) != "ok" {
			t.Fatalf("%d %q", resp.StatusCode, b)
		}
	}
	if n := ts.accepts.count(); n != 1 {
		t.Fatalf("%d connections for 50 keep-alive requests", n)
	}
}

// TestLargeUnreadBody: a body the handler leaves unread beyond what the
// server drops closes the connection after the answer.
func TestLargeUnreadBody(t *testing.T) {
	ts := start(t, Config{MaxBodyBytes: 1 << 20}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	c := ts.dial(t)
	go func() {
		_, _ = io.WriteString(c, fmt.Sprintf("POST / HTTP/1.1\r\nHost: gw\r\nContent-Length: %d\r\n\r\n%s", maxDiscard+1, strings.Repeat("x", maxDiscard+1)))
	}()
	resp, _ := c.response(t)
	if resp.StatusCode != http.StatusOK || !resp.Close {
		t.Fatalf("%d close=%v", resp.StatusCode, resp.Close)
	}
}

// TestExpectContinue: 100 Continue is sent when the handler first reads
// the body, and not at all when it does not read it (the connection then
// closes: the client may or may not send the body).
func TestExpectContinue(t *testing.T) {
	ts := start(t, Config{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/refuse" {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		echo(w, r)
	}))
	c := ts.dial(t)
	c.send(t, "POST /read HTTP/1.1\r\nHost: gw\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
	line, err := c.br.ReadString('\n')
	if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("got %q %v before sending the body", line, err)
	}
	if blank, _ := c.br.ReadString('\n'); blank != "\r\n" {
		t.Fatalf("100 Continue not terminated: %q", blank)
	}
	c.send(t, "hello")
	if resp, body := c.response(t); resp.StatusCode != http.StatusOK || body != "POST /read  hello" || resp.Close {
		t.Fatalf("%d %q close=%v", resp.StatusCode, body, resp.Close)
	}

	c.send(t, "POST /refuse HTTP/1.1\r\nHost: gw\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
	resp, _ := c.response(t)
	if resp.StatusCode != http.StatusForbidden || !resp.Close || !c.closed(t) {
		t.Fatalf("%d close=%v", resp.StatusCode, resp.Close)
	}
}

// TestResponseTooLarge: a handler that writes more than MaxResponseBytes
// gets an error from Write, and the client a 500; the connection closes.
func TestResponseTooLarge(t *testing.T) {
	werr := make(chan error, 1)
	ts := start(t, Config{MaxResponseBytes: 1000}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(make([]byte, 600))
		_, err := w.Write(make([]byte, 600))
		werr <- err
	}))
	c := ts.dial(t)
	c.send(t, "GET / HTTP/1.1\r\nHost: gw\r\n\r\n")
	resp, _ := c.response(t)
	if resp.StatusCode != http.StatusInternalServerError || !c.closed(t) {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if err := <-werr; err != ErrResponseTooLarge {
		t.Fatalf("Write returned %v", err)
	}
}

// TestHandlerPanic: the connection closes without an answer, the panic is
// logged without request data, and the server keeps serving.
func TestHandlerPanic(t *testing.T) {
	ts := start(t, Config{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/boom/001099000001" {
			panic("secret " + r.URL.Path)
		}
		if r.URL.Path == "/index" {
			_ = []int{}[len(r.URL.Path)]
		}
		echo(w, r)
	}))
	for _, path := range []string{"/boom/001099000001", "/index"} {
		c := ts.dial(t)
		c.send(t, "GET "+path+" HTTP/1.1\r\nHost: gw\r\n\r\n")
		if !c.closed(t) {
			t.Fatal("connection kept after a panic")
		}
	}
	log := ts.log.String()
	if strings.Count(log, "Handler panicked") != 2 || strings.Contains(log, "001099000001") || !strings.Contains(log, "index out of range") {
		t.Fatalf("log: %s", log)
	}
	c := ts.dial(t)
	c.send(t, "GET /fine HTTP/1.1\r\nHost: gw\r\n\r\n")
	if resp, _ := c.response(t); resp.StatusCode != http.StatusOK {
		t.Fatalf("after panics: %d", resp.StatusCode)
	}
}

// TestRequestFields checks the *http.Request a handler gets, and that
// the reused header map does not carry fields between requests.
func TestRequestFields(t *testing.T) {
	got := make(chan string, 2)
	ts := start(t, Config{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- fmt.Sprintf("%s %s %s %s host=%s len=%d close=%v tls=%v remote=%v ctx=%v fields=%v",
			r.Method, r.RequestURI, r.URL.Path, r.Proto, r.Host, r.ContentLength, r.Close, r.TLS != nil,
			r.RemoteAddr != "", r.Context().Err() == nil, r.Header)
	}))
	c := ts.dial(t)
	c.send(t, "GET /a%2Fb?x HTTP/1.1\r\nHost: gw\r\nX-One: 1\r\n\r\nGET /c HTTP/1.1\r\nHost: h2\r\nX-Two: 2\r\n\r\n")
	c.response(t)
	c.response(t)
	for _, want := range []string{
		"GET /a%2Fb?x /a/b HTTP/1.1 host=gw len=0 close=false tls=false remote=true ctx=true fields=map[X-One:[1]]",
		"GET /c /c HTTP/1.1 host=h2 len=0 close=false tls=false remote=true ctx=true fields=map[X-Two:[2]]",
	} {
		if g := <-got; g != want {
			t.Fatalf("got  %s\nwant %s", g, want)
		}
	}
}

// TestContextCancelledAfterHandler: the request's context ends when the
// handler returns.
func TestContextCancelledAfterHandler(t *testing.T) {
	ctxs := make(chan func() error, 1)
	ts := start(t, Config{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctxs <- r.Context().Err
	}))
	c := ts.dial(t)
	c.send(t, "GET / HTTP/1.1\r\nHost: gw\r\n\r\n")
	c.response(t)
	if err := (<-ctxs)(); err == nil {
		t.Fatal("the request context is still live after the handler returned")
	}
}
