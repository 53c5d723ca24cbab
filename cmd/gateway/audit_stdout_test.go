package main

import (
	"bytes"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/popconnect/popconnect/internal/popdb"
)

// stdoutPipe is the reading end of a gateway's stdout, as the container
// runtime holds it in a pod. Reading can be paused, as a stuck runtime
// would.
type stdoutPipe struct {
	w *os.File // the gateway's stdout: blocking, as a process's is

	mu      sync.Mutex
	read    bytes.Buffer
	paused  bool
	resumed *sync.Cond
}

func newStdoutPipe(t *testing.T) *stdoutPipe {
	t.Helper()
	var fds [2]int
	if err := syscall.Pipe2(fds[:], syscall.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	r, w := os.NewFile(uintptr(fds[0]), "stdout-r"), os.NewFile(uintptr(fds[1]), "stdout-w")
	p := &stdoutPipe{w: w}
	p.resumed = sync.NewCond(&p.mu)
	go func() {
		buf := make([]byte, 4096)
		for {
			p.mu.Lock()
			for p.paused {
				p.resumed.Wait()
			}
			p.mu.Unlock()
			n, err := r.Read(buf)
			p.mu.Lock()
			p.read.Write(buf[:n])
			p.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		p.pause(false)
		w.Close()
	})
	return p
}

func (p *stdoutPipe) pause(paused bool) {
	p.mu.Lock()
	p.paused = paused
	p.mu.Unlock()
	p.resumed.Broadcast()
}

func (p *stdoutPipe) contains(s string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Contains(p.read.String(), s)
}

// TestAuditOnStdoutPipe runs the gateway as a pod does, its records on
// stdout into a pipe (written by rawio's non-blocking writer): each
// answered request's record comes through the pipe; when the reader
// stops, the full pipe is a stalled sink (503 audit_unavailable, /readyz
// 503, no data), and once it reads again the gateway serves again.
func TestAuditOnStdoutPipe(t *testing.T) {
	f := newFixture(t)
	out := newStdoutPipe(t)
	in := &instance{dir: f.dir, stdout: out.w, done: make(chan error, 1)}
	gw := f.launch(t, in, f.args("", "--audit-file", "-"))
	byt := f.client(f.ca.Agency(t, "BYT"), 0)
	byt.Timeout = 30 * time.Second // longer than a stall: see below
	id, _ := popdb.NationalID(9)
	url := "https://" + gw.agencyAddr + "/v1/citizens/" + id
	resp, err := byt.Get(url)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("lookup: %v %v", resp, err)
	}
	resp.Body.Close()
	eventually(t, "the record in the pipe", func() bool {
		return out.contains(`"requestId":"` + resp.Header.Get("X-Request-Id") + `"`)
	})

	// The reader stops: requests go on until the pipe is full and a write
	// waits for it, which answers nothing until the sink counts as stalled.
	out.pause(true)
	filling, stop := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(filling)
		for {
			select {
			case <-stop:
				return
			default:
			}
			resp, err := byt.Get(url)
			if err != nil {
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return
			}
		}
	}()
	plain := &http.Client{Timeout: 10 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		status, _, err := get(t, plain, "http://"+gw.metricsAddr+"/readyz")
		if err == nil && status == http.StatusServiceUnavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("/readyz stayed ready with the stdout pipe full for 60s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	name := f.gen.Record(9).FullName
	status, body, err := get(t, byt, url)
	if err != nil || status != http.StatusServiceUnavailable || !strings.Contains(body, `"error":"audit_unavailable"`) || strings.Contains(body, name) {
		t.Fatalf("lookup while the pipe is full: %d %s %v", status, body, err)
	}
	close(stop)

	// The reader resumes: the waiting write finishes and serving resumes.
	out.pause(false)
	eventually(t, "a 200 after the pipe drained", func() bool {
		status, _, err := get(t, byt, url)
		return err == nil && status == http.StatusOK
	})
	<-filling
}
