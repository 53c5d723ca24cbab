package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/popconnect/popconnect/gateway/testpki"
	"github.com/popconnect/popconnect/internal/popdb"
)

// The server limits of the hostile-client tests, set far below the
// defaults so that the tests run in seconds; the properties are the same.
const (
	hostileReadHeaderTimeout = time.Second
	hostileReadTimeout       = 5 * time.Second
	hostileMaxHeaderBytes    = 8 << 10
	hostileMaxBody           = 256 << 10
	// closeSlack is what a loaded 2-core machine may add to a server
	// timeout before the client sees the connection close.
	closeSlack = 2 * time.Second
)

// hostile is a gateway started with small limits, in front of an upstream
// that counts what reaches it.
type hostile struct {
	f        *fixture
	gw       *instance
	agency   *testpki.Leaf
	upstream atomic.Int64
}

func newHostile(t *testing.T) *hostile {
	t.Helper()
	h := &hostile{f: newFixture(t)}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.upstream.Add(1)
		popdb.Handler(h.f.gen).ServeHTTP(w, r)
	}))
	t.Cleanup(up.Close)
	h.f.upstream = up.URL
	// One agency allowed everything, with a rate no test here reaches: a
	// refusal below is the hostile input's, never the rate limiter's.
	testpki.WriteFile(t, h.f.dir, "policy.json", []byte(`{"version":"hostile","agencies":[
	{"agencyCode":"EVIL","allowedFields":["fullName","dateOfBirth"],"allowedOperations":["Lookup","Verify","BatchLookup"],
	 "rateLimit":{"requestsPerSecond":100000,"burst":100000}}]}`))
	h.gw = h.f.start(t,
		"--read-header-timeout", hostileReadHeaderTimeout.String(),
		"--read-timeout", hostileReadTimeout.String(),
		"--max-header-bytes", fmt.Sprint(hostileMaxHeaderBytes),
		"--max-request-body-bytes", fmt.Sprint(hostileMaxBody))
	h.agency = h.f.ca.Agency(t, "EVIL")
	return h
}

// dial opens an HTTP/1.1 mTLS connection as the agency, handshake done.
func (h *hostile) dial(t *testing.T) *tls.Conn {
	t.Helper()
	conn, err := tls.Dial("tcp", h.gw.agencyAddr, &tls.Config{
		RootCAs: h.f.ca.Pool(), Certificates: []tls.Certificate{h.agency.TLS}, NextProtos: []string{"http/1.1"},
	})
	if err != nil {
		t.Fatalf("dialling the gateway: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// closedWithin waits until the server ends conn (a read returns an error,
// EOF included, after anything the server wrote) and returns what it
// wrote and how long after start the end came; it fails the test when that
// takes longer than limit.
func closedWithin(t *testing.T, conn net.Conn, start time.Time, limit time.Duration) ([]byte, time.Duration) {
	t.Helper()
	_ = conn.SetReadDeadline(start.Add(limit))
	var got bytes.Buffer
	buf := make([]byte, 4096)
	for {
		n, err := conn.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("the server kept the connection open for %v (got %q)", limit, got.Bytes())
			}
			return got.Bytes(), time.Since(start)
		}
	}
}

func (h *hostile) assertNoUpstreamCall(t *testing.T) {
	t.Helper()
	if n := h.upstream.Load(); n != 0 {
		t.Fatalf("the upstream received %d requests; hostile input must be refused before any upstream call", n)
	}
}

// checkJSONError asserts a 400-class answer with the gateway's JSON error.
func checkJSONError(t *testing.T, status int, header http.Header, body []byte, wantStatus int, wantCode string) {
	t.Helper()
	var e struct{ Error, Message string }
	if status != wantStatus || !strings.HasPrefix(header.Get("Content-Type"), "application/json") ||
		json.Unmarshal(body, &e) != nil || e.Error == "" || e.Message == "" || (wantCode != "" && e.Error != wantCode) {
		t.Fatalf("got %d %q %s, want %d with a JSON error %q", status, header.Get("Content-Type"), body, wantStatus, wantCode)
	}
}

// TestHostileClients runs attacks a hostile (or broken) agency client can
// make with a valid certificate against the real gateway server: each is
// refused within the server's bounds, none reaches the upstream, and the
// gateway still serves afterwards.
func TestHostileClients(t *testing.T) {
	h := newHostile(t)
	id, _ := popdb.NationalID(7)

	// Slowloris: a request's headers trickled a byte at a time, never
	// finished. The connection is closed within ReadHeaderTimeout of the
	// request's start, so such clients cannot pin connections and
	// goroutines indefinitely.
	t.Run("slowloris headers", func(t *testing.T) {
		conn := h.dial(t)
		start := time.Now()
		go func() {
			req := "GET /v1/citizens/" + id + " HTTP/1.1\r\nHost: gateway\r\nX-Slow: " + strings.Repeat("a", 10_000)
			for i := 0; i < len(req); i++ {
				if _, err := conn.Write([]byte{req[i]}); err != nil {
					return // the server closed the connection
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
		got, took := closedWithin(t, conn, start, hostileReadHeaderTimeout+closeSlack)
		if bytes.Contains(got, []byte(" 200 ")) {
			t.Fatalf("an unfinished request was answered: %q", got)
		}
		if took < hostileReadHeaderTimeout*8/10 {
			t.Fatalf("closed after %v, before the header timeout (%v): something else closed it", took, hostileReadHeaderTimeout)
		}
		t.Logf("closed %v after the first byte (read-header-timeout %v)", took.Round(time.Millisecond), hostileReadHeaderTimeout)
	})

	// A TCP connection that never starts its TLS handshake is closed too:
	// the handshake is bounded by the smallest server timeout.
	t.Run("silent TCP connection", func(t *testing.T) {
		conn, err := net.Dial("tcp", h.gw.agencyAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_, took := closedWithin(t, conn, time.Now(), hostileReadHeaderTimeout+closeSlack)
		t.Logf("closed after %v", took.Round(time.Millisecond))
	})

	// Headers complete, body trickled: ReadTimeout bounds the whole
	// request, and the half-read body never reaches the upstream.
	t.Run("slow body", func(t *testing.T) {
		conn := h.dial(t)
		start := time.Now()
		body := fmt.Sprintf(`{"nationalId":%q,"fullName":"%s"}`, id, strings.Repeat("x", 2000))
		head := fmt.Sprintf("POST /v1/citizens:verify HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(body))
		if _, err := conn.Write([]byte(head)); err != nil {
			t.Fatal(err)
		}
		go func() {
			for i := 0; i < len(body); i++ {
				if _, err := conn.Write([]byte{body[i]}); err != nil {
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
		got, took := closedWithin(t, conn, start, hostileReadTimeout+closeSlack)
		if bytes.Contains(got, []byte(" 200 ")) {
			t.Fatalf("a trickled body was served: %q", got)
		}
		t.Logf("answered %q and closed %v after the headers (read-timeout %v)", firstLine(got), took.Round(time.Millisecond), hostileReadTimeout)
	})

	// Headers beyond MaxHeaderBytes: 431, connection closed, nothing
	// buffered beyond the limit (the agency listener reads at most
	// MaxHeaderBytes of a request head).
	t.Run("huge headers", func(t *testing.T) {
		conn := h.dial(t)
		go func() {
			req := "GET /v1/citizens/" + id + " HTTP/1.1\r\nHost: gateway\r\n"
			for i := range 64 {
				req += fmt.Sprintf("X-Junk-%d: %s\r\n", i, strings.Repeat("j", 1024))
			}
			_, _ = conn.Write([]byte(req + "\r\n"))
		}()
		got, _ := closedWithin(t, conn, time.Now(), closeSlack)
		if line := firstLine(got); line != "" && !strings.Contains(line, " 431 ") {
			t.Fatalf("huge headers answered %q, want 431 or a closed connection", line)
		}
		t.Logf("answered %q", firstLine(got))
	})

	// A body far over --max-request-body-bytes: announced with its
	// Content-Length it is refused with 413 and a JSON error before any of
	// it is read; streamed without a length (chunked) it is refused with
	// 411, as the agency listener takes only Content-Length bodies. Either
	// way the server stops reading and closes, so the client cannot push
	// more than socket buffers and the gateway's memory stays bounded.
	// (Under net/http the chunked stream was read up to the limit and
	// answered 413; the strict server refuses its framing outright.)
	for _, tc := range []struct {
		name, framing string
		chunked       bool
		status        int
		code          string
	}{
		{"huge body", fmt.Sprintf("Content-Length: %d", 1<<30), false, http.StatusRequestEntityTooLarge, "body_too_large"},
		{"huge chunked body", "Transfer-Encoding: chunked", true, http.StatusLengthRequired, "length_required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn := h.dial(t)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			const offered = 1 << 30
			var written atomic.Int64
			writerDone := make(chan struct{})
			go func() {
				defer close(writerDone)
				head := "POST /v1/citizens:verify HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n" + tc.framing + "\r\n\r\n"
				if _, err := conn.Write([]byte(head)); err != nil {
					return
				}
				chunk := []byte(strings.Repeat(" ", 32<<10))
				if tc.chunked {
					chunk = []byte(fmt.Sprintf("%x\r\n%s\r\n", 32<<10, chunk))
				}
				for written.Load() < offered {
					n, err := conn.Write(chunk)
					written.Add(int64(n))
					if err != nil {
						return
					}
				}
			}()
			_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("no response to a huge body: %v", err)
			}
			body, _ := io.ReadAll(resp.Body)
			checkJSONError(t, resp.StatusCode, resp.Header, body, tc.status, tc.code)
			// The server closes the connection after the refusal; the
			// writer then fails instead of pushing the whole gigabyte.
			conn.Close()
			select {
			case <-writerDone:
			case <-time.After(10 * time.Second):
				t.Fatal("the client could keep writing after the refusal")
			}
			runtime.ReadMemStats(&after)
			grown := int64(after.TotalAlloc - before.TotalAlloc)
			if w := written.Load(); w >= offered || grown > 64<<20 {
				t.Fatalf("client wrote %d bytes, process allocated %d bytes: the body was not cut off at the limit", w, grown)
			}
			t.Logf("%d after the client wrote %d KiB of the %d MiB offered; %d KiB allocated meanwhile", resp.StatusCode, written.Load()>>10, offered>>20, grown>>10)
		})
	}

	client := h.f.client(h.agency, 0)
	post := func(t *testing.T, path string, body []byte) (int, http.Header, []byte) {
		t.Helper()
		resp, err := client.Post("https://"+h.gw.agencyAddr+path, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, b
	}

	// Malformed bodies are refused with 400 and a JSON error, never passed
	// on, never a 500, and never crash a parser (deep nesting).
	t.Run("malformed JSON", func(t *testing.T) {
		deep := `{"nationalId":"` + id + `","fullName":` + strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000) + `}`
		cases := map[string][]string{
			"/v1/citizens:verify": {
				``, `not json`, `{`, `}`, `[]`, `"x"`, `null`, `{"nationalId":"` + id + `","fullName":"A"`,
				`{"nationalId":"` + id + `","nationalId":"` + id + `","fullName":"A"}`,
				`{"nationalId":"` + id + `","fullName":"A","fullName":"B"}`,
				`{"nationalId":"` + id + `","fullName":"A"} trailing`,
				`{"nationalId":12,"fullName":"A"}`, `{"nationalId":"12345","fullName":"A"}`,
				"{\"nationalId\":\"\xff\xfe\",\"fullName\":\"A\"}", "{\"nationalId\":\"" + id + "\",\"fullName\":\"A\x00\"}",
				`{"nationalId":"` + id + `","fullName":{"nested":1}}`, `{"nationalId":"` + id + `"}`, deep,
			},
			"/v1/citizens:batchLookup": {
				``, `{`, `[]`, `{"nationalIds":"` + id + `"}`, `{"nationalIds":[1,2]}`, `{"nationalIds":[]}`,
				`{"nationalIds":["` + id + `"],"nationalIds":["` + id + `"]}`, `{"other":1}`,
				`{"nationalIds":["` + id + `"]`, `{"nationalIds":["abc"]}`, `{"nationalIds":[` + strings.Repeat("[", 50_000) + `]}`,
			},
		}
		for path, bodies := range cases {
			for _, b := range bodies {
				status, header, got := post(t, path, []byte(b))
				if status != http.StatusBadRequest {
					t.Errorf("POST %s %.60q: %d %s, want 400", path, b, status, got)
					continue
				}
				checkJSONError(t, status, header, got, http.StatusBadRequest, "")
			}
		}
		h.assertNoUpstreamCall(t)
	})

	// A batch of 10,000 IDs is refused whole (400 batch_too_large) before
	// any upstream call: the gateway never fans out more than MaxBatch.
	t.Run("batch of 10000", func(t *testing.T) {
		ids := make([]string, 10_000)
		for i := range ids {
			ids[i], _ = popdb.NationalID(int64(i))
		}
		body, _ := json.Marshal(map[string][]string{"nationalIds": ids})
		status, header, got := post(t, "/v1/citizens:batchLookup", body)
		checkJSONError(t, status, header, got, http.StatusBadRequest, "batch_too_large")
		h.assertNoUpstreamCall(t)
	})

	// Nothing above reached the upstream, and the gateway still serves.
	h.assertNoUpstreamCall(t)
	status, body, err := get(t, client, "https://"+h.gw.agencyAddr+"/v1/citizens/"+id)
	if err != nil || status != http.StatusOK {
		t.Fatalf("after the hostile clients: %d %s %v", status, body, err)
	}
	if n := h.upstream.Load(); n != 1 {
		t.Fatalf("upstream saw %d requests for one lookup", n)
	}
}

func firstLine(b []byte) string {
	line, _, _ := strings.Cut(string(b), "\r\n")
	return line
}
