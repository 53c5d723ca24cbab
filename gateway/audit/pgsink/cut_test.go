package pgsink_test

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/popconnect/popconnect/gateway/audit"
	"github.com/popconnect/popconnect/internal/testpg"
)

// cutProxy forwards connections to a PostgreSQL server and, when armed,
// cuts the client off at the client's next message of a given type: the
// server gets that message, the client never gets an answer. The server's
// side of a cut connection stays open, so its backend lives on (and holds
// its locks) until the sink ends it.
type cutProxy struct {
	l      net.Listener
	target string

	mu       sync.Mutex
	armed    byte // message type to cut at; 0: none
	skip     int  // messages of that type to let through first
	answered bool // cut once the server has answered the armed message
	cut      chan struct{}
	server   []net.Conn
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{l: l, target: target}
	t.Cleanup(func() {
		l.Close()
		p.mu.Lock()
		for _, c := range p.server {
			c.Close()
		}
		p.mu.Unlock()
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p
}

func (p *cutProxy) addr() string { return p.l.Addr().String() }

// arm makes the proxy cut the client off as soon as it has forwarded the
// client's next message of type typ; the returned channel is closed when
// it did.
func (p *cutProxy) arm(typ byte) <-chan struct{} { return p.arming(typ, 0, false) }

// answerWait bounds armAnsweredAfter's wait for the server's answer.
const answerWait = 20 * time.Second

// armAnsweredAfter is arm at the message of type typ that follows skip
// others of that type (the sink sends a batch's COPYs in one go, and only
// the last one's CopyDone lets the server commit), but the cut waits for
// the server's answer to the message (its ReadyForQuery), which the client
// never gets: the server has finished the statement, committed or not,
// before the client sees the connection lost. Without the wait, the
// client's driver could reach the server first: pgx sends a
// CancelRequest, on a new connection, when its connection breaks.
func (p *cutProxy) armAnsweredAfter(typ byte, skip int) <-chan struct{} {
	return p.arming(typ, skip, true)
}

func (p *cutProxy) arming(typ byte, skip int, answered bool) <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.armed, p.skip, p.answered, p.cut = typ, skip, answered, make(chan struct{})
	return p.cut
}

func (p *cutProxy) serve(client net.Conn) {
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		client.Close()
		return
	}
	p.mu.Lock()
	p.server = append(p.server, server)
	p.mu.Unlock()
	var cut sync.Once
	var holding atomic.Bool         // the server's messages no longer go to the client
	ready := make(chan struct{}, 1) // a ReadyForQuery arrived while holding
	done := make(chan struct{})
	go func() { // server to client, until the cut
		defer close(done)
		for {
			typ, msg, err := readMessage(server)
			if err != nil {
				return
			}
			if holding.Load() {
				if typ == 'Z' {
					select {
					case ready <- struct{}{}:
					default:
					}
				}
				continue
			}
			if _, err := client.Write(msg); err != nil {
				return
			}
		}
	}()
	defer client.Close()
	// The startup message has no type byte.
	var n [4]byte
	if _, err := io.ReadFull(client, n[:]); err != nil {
		return
	}
	body := make([]byte, binary.BigEndian.Uint32(n[:])-4)
	if _, err := io.ReadFull(client, body); err != nil {
		return
	}
	if _, err := server.Write(append(n[:], body...)); err != nil {
		return
	}
	for {
		typ, msg, err := readMessage(client)
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.armed != 0 && typ == p.armed && p.skip > 0 {
			p.skip--
		} else if p.armed != 0 && typ == p.armed {
			p.armed = 0
			ch, answered := p.cut, p.answered
			p.mu.Unlock()
			if answered {
				// The answer is held back from the client, and the client
				// cut off once the server has sent it.
				holding.Store(true)
				if _, err := server.Write(msg); err == nil {
					select {
					case <-ready:
					case <-done:
					case <-time.After(answerWait):
						// No answer: cut anyway; the test then fails
						// on what the server did, not by hanging.
					}
				}
				cut.Do(func() { _ = client.Close() })
			} else {
				// The client is cut off before the message goes on to the
				// server: cut after, the server's answer could reach the
				// client first (it answers within microseconds), and the
				// client would see an outcome it must not know.
				cut.Do(func() { _ = client.Close() })
				_, _ = server.Write(msg)
			}
			close(ch)
			<-done
			return
		}
		p.mu.Unlock()
		if _, err := server.Write(msg); err != nil {
			return
		}
	}
}

// readMessage reads one message of the protocol after startup: a type
// byte, then a length that counts itself. msg is the whole message.
func readMessage(r io.Reader) (typ byte, msg []byte, err error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	size := binary.BigEndian.Uint32(hdr[1:])
	if size < 4 {
		return 0, nil, errors.New("message length below 4")
	}
	msg = make([]byte, 1+size)
	copy(msg, hdr[:])
	if _, err := io.ReadFull(r, msg[5:]); err != nil {
		return 0, nil, err
	}
	return hdr[0], msg, nil
}

// TestOutcomeUnknown: the connection is lost after the COPY's end reached
// the server (which commits it) and before its answer: Store says the
// outcome is unknown, and Last, from a new connection, finds the batch
// stored, although the old backend still held the stream; the stream goes
// on after it.
func TestOutcomeUnknown(t *testing.T) {
	srv := testpg.Start(t)
	p := newCutProxy(t, "127.0.0.1:"+itoa(srv.Port()))
	url := "postgres://popconnect:" + srv.Password() + "@" + p.addr() + "/postgres?sslmode=disable"
	s := open(t, url)
	at := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	st := newStream(t)
	store(t, s, st.seal(lookup(at, "1")))

	// The batch's COPYs: its records, then their reads; the cut comes
	// after the second CopyDone, which ends the transaction.
	cut := p.armAnsweredAfter('c', 1)
	b := st.seal(lookup(at, "2"), lookup(at, "3"))
	n, err := s.Store(ctxT(t, 10*time.Second), b)
	<-cut
	if n != 0 || !errors.Is(err, audit.ErrOutcomeUnknown) {
		t.Fatalf("Store cut after CopyDone: %d, %v; want an unknown outcome", n, err)
	}
	// The server commits on its own; the old backend lives on, holding
	// the stream.
	conn := connect(t, srv.URL())
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var n int
		if err := conn.QueryRow(ctxT(t, 10*time.Second), `SELECT count(*) FROM popconnect_audit_records`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d records committed, want 3", n)
		}
	}
	if n := streamHolders(t, srv.URL()); n != 1 {
		t.Fatalf("%d backends hold the stream's lock, want 1 (the cut one)", n)
	}
	seq, chain, err := s.Last(ctxT(t, 10*time.Second), st.name)
	if err != nil || seq != 3 || chain != b.Chain(1) {
		t.Fatalf("Last: %d %s %v, want 3 %s (the batch committed)", seq, chain, err, b.Chain(1))
	}
	store(t, s, st.seal(lookup(at, "4")))
	rows := scan(t, srv.URL())
	if len(rows) != 4 {
		t.Fatalf("%d rows, want 4", len(rows))
	}
	verify(t, rows)
}

// TestCutMidCopy: the connection is lost while the rows are sent, the
// server's backend still waiting for the rest: Last ends that backend
// (its COPY rolls back) and finds the stream where it was.
func TestCutMidCopy(t *testing.T) {
	srv := testpg.Start(t)
	p := newCutProxy(t, "127.0.0.1:"+itoa(srv.Port()))
	url := "postgres://popconnect:" + srv.Password() + "@" + p.addr() + "/postgres?sslmode=disable"
	s := open(t, url)
	at := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	st := newStream(t)
	store(t, s, st.seal(lookup(at, "1")))

	seq0, chain0 := st.seq, st.chain
	cut := p.arm('d') // CopyData
	n, err := s.Store(ctxT(t, 10*time.Second), st.seal(lookup(at, "2")))
	<-cut
	if n != 0 || err == nil {
		t.Fatalf("Store cut mid-COPY: %d, %v", n, err)
	}
	t.Logf("Store cut mid-COPY: %v", err)
	if n := streamHolders(t, srv.URL()); n != 1 {
		t.Fatalf("%d backends hold the stream's lock, want 1 (the cut one)", n)
	}
	seq, chain, err := s.Last(ctxT(t, 10*time.Second), st.name)
	if err != nil || seq != seq0 || chain != chain0 {
		t.Fatalf("Last: %d %s %v, want %d %s (nothing committed)", seq, chain, err, seq0, chain0)
	}
	st.seq, st.chain = seq, chain
	store(t, s, st.seal(lookup(at, "2 again")))
	rows := scan(t, srv.URL())
	if len(rows) != 2 {
		t.Fatalf("%d rows, want 2", len(rows))
	}
	verify(t, rows)
}

func itoa(n int) string { return strconv.Itoa(n) }

// streamHolders counts the backends holding an advisory lock (the sinks'
// stream locks; the schema lock is held only during DDL).
func streamHolders(t *testing.T, url string) int {
	var n int
	if err := connect(t, url).QueryRow(ctxT(t, 10*time.Second),
		`SELECT count(DISTINCT pid) FROM pg_locks WHERE locktype = 'advisory' AND granted`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
