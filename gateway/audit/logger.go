package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// ErrUnavailable is wrapped by Commit's error when the record did not reach
// the sink: the request must not be answered with data.
var ErrUnavailable = errors.New("audit sink unavailable")

// DefaultRetryInterval is how often a failed sink is tried again when no
// request comes to try it (a gateway that is not ready gets no traffic).
const DefaultRetryInterval = time.Second

// DefaultStallTimeout is how long one write to the sink may take before
// the sink counts as unavailable: a write that blocks (a full pipe whose
// reader stopped, a hung network filesystem, a database that stopped
// answering) would otherwise hold every request, unseen by /readyz.
const DefaultStallTimeout = 5 * time.Second

// maxOwedBytes bounds the records kept for a failed sink (those of the
// requests answered 503 while it failed): a sink that stays down must not
// grow the gateway's memory without bound.
const maxOwedBytes = 4 << 20

// maxSpareBytes bounds the buffers kept for the next batch.
const maxSpareBytes = 1 << 20

// Option configures a Logger.
type Option func(*Logger)

// WithSync calls sync after every write to a writer given to NewLogger,
// before the batch's commits return (--audit-fsync: os.File.Sync).
func WithSync(sync func() error) Option { return func(l *Logger) { l.writerSync = sync } }

// WithRetryInterval sets how often a failed sink is tried again while no
// commit tries it.
func WithRetryInterval(d time.Duration) Option { return func(l *Logger) { l.retry = d } }

// WithStallTimeout sets how long a write may take before the sink counts
// as unavailable (see DefaultStallTimeout).
func WithStallTimeout(d time.Duration) Option { return func(l *Logger) { l.stall = d } }

// WithStream sets the stream name instead of a random one (tests).
func WithStream(stream string) Option { return func(l *Logger) { l.stream = stream } }

// Logger commits audit records to a sink. Every record is sealed into the
// logger's stream: numbered (seq, from 1) and chained to the one before by
// an HMAC, so that a record edited, removed, inserted or moved afterwards
// shows. It is safe for concurrent use.
type Logger struct {
	hashers sync.Pool
	bufs    sync.Pool

	sink       Sink
	writerSync func() error
	retry      time.Duration
	stall      time.Duration
	stream     string
	// base is the logger's creation: writeStart counts from it, on the
	// monotonic clock.
	base time.Time
	// writeStart is when the write in progress began (time since base,
	// plus one), 0 when none is.
	writeStart atomic.Int64

	// wmu is held by the goroutine writing to the sink: the writer
	// goroutine, or Flush. Each write seals and stores every record
	// committed so far (group commit). The fields below it, up to wake,
	// belong to its holder.
	wmu     sync.Mutex
	chainer *Chainer
	batch   Batch
	// seq and chain are those of the last record in the sink.
	seq   uint64
	chain [ChainHexLen]byte
	// unknown is set when a store's outcome is unknown: the sink is asked
	// where the stream stands before the next batch is sealed.
	unknown *unknownStore

	// wake tells the writer goroutine that records wait; quit stops it,
	// and writerDone says it stopped.
	wake, quit, writerDone chan struct{}

	mu   sync.Mutex
	pend records // records committed since the last write began
	cur  *batch  // the outcome pend's records will share; nil when pend is empty
	// spare is the buffer of the previous write, reused for pend.
	spare records
	// owed holds records of requests already answered without theirs
	// (503 audit_unavailable), stored before the next batch.
	owed    records
	timer   *time.Timer // the pending retry, if any
	closed  bool
	lastErr string

	healthy     atomic.Bool
	writeErrors atomic.Uint64
	lastSeq     atomic.Uint64
	batches     atomic.Uint64
}

// unknownStore remembers a batch whose store may or may not have happened.
type unknownStore struct {
	firstSeq uint64 // the seq its first record was given
	owed     int    // how many of its records, at its front, were owed ones
}

// records is a run of encoded records waiting to be sealed: their open
// JSON bodies back to back, where each ends, and their fields.
type records struct {
	buf  []byte
	ends []int
	recs []*Record
}

func (r *records) add(body []byte, rec *Record) {
	r.buf = append(r.buf, body...)
	r.ends = append(r.ends, len(r.buf))
	r.recs = append(r.recs, rec)
}

func (r *records) len() int { return len(r.ends) }

func (r *records) body(i int) []byte {
	start := 0
	if i > 0 {
		start = r.ends[i-1]
	}
	return r.buf[start:r.ends[i]]
}

// dropFront removes the first n records.
func (r *records) dropFront(n int) {
	if n == 0 {
		return
	}
	if n >= r.len() {
		*r = records{}
		return
	}
	cut := r.ends[n-1]
	rest := records{buf: append([]byte(nil), r.buf[cut:]...), recs: append([]*Record(nil), r.recs[n:]...)}
	for _, e := range r.ends[n:] {
		rest.ends = append(rest.ends, e-cut)
	}
	*r = rest
}

// appendAll appends o's records after r's.
func (r *records) appendAll(o records) {
	base := len(r.buf)
	r.buf = append(r.buf, o.buf...)
	for _, e := range o.ends {
		r.ends = append(r.ends, base+e)
	}
	r.recs = append(r.recs, o.recs...)
}

func (r *records) reset() {
	clear(r.recs) // no pointers kept into requests' memory
	r.buf, r.ends, r.recs = r.buf[:0], r.ends[:0], r.recs[:0]
}

// batch is the outcome of one store, shared by its commits: err is set
// by the writer before it closes done.
type batch struct {
	done chan struct{}
	err  error
}

// NewLogger writes records to out (a file, or stdout), one JSON line each,
// hashing national IDs under key.
func NewLogger(out io.Writer, key []byte, opts ...Option) (*Logger, error) {
	name := "file"
	if out == io.Writer(os.Stdout) {
		name = "stdout"
	}
	l, err := newLogger(key, opts)
	if err != nil {
		return nil, err
	}
	l.sink = NewWriterSink(name, out, l.writerSync)
	return l, nil
}

// New commits records to sink, hashing national IDs under key.
func New(sink Sink, key []byte, opts ...Option) (*Logger, error) {
	l, err := newLogger(key, opts)
	if err != nil {
		return nil, err
	}
	if l.writerSync != nil {
		return nil, errors.New("WithSync applies to a writer given to NewLogger")
	}
	l.sink = sink
	return l, nil
}

func newLogger(key []byte, opts []Option) (*Logger, error) {
	if len(key) < MinKeyBytes {
		return nil, fmt.Errorf("audit hash key has %d bytes, at least %d are required", len(key), MinKeyBytes)
	}
	key = append([]byte(nil), key...)
	l := &Logger{retry: DefaultRetryInterval, stall: DefaultStallTimeout, base: time.Now(), chainer: NewChainer(key)}
	for _, o := range opts {
		o(l)
	}
	if l.retry <= 0 || l.stall <= 0 {
		return nil, errors.New("audit retry interval and stall timeout must be positive")
	}
	if l.stream == "" {
		s, err := NewStream()
		if err != nil {
			return nil, err
		}
		l.stream = s
	}
	l.healthy.Store(true)
	l.wake, l.quit, l.writerDone = make(chan struct{}, 1), make(chan struct{}), make(chan struct{})
	go l.writer()
	l.hashers.New = func() any { return newHasher(key) }
	l.bufs.New = func() any { b := make([]byte, 0, 512); return &b }
	return l, nil
}

// Stream is the name of the logger's stream: its records' "stream".
func (l *Logger) Stream() string { return l.stream }

// LastSeq is the seq of the last record known to be in the sink.
func (l *Logger) LastSeq() uint64 { return l.lastSeq.Load() }

// SinkName says what the sink is: "stdout", "file" or "postgres".
func (l *Logger) SinkName() string { return l.sink.Name() }

// Healthy reports whether the last write to the sink succeeded and the
// one in progress, if any, has not stalled.
func (l *Logger) Healthy() bool { return l.healthy.Load() && !l.stalled() }

// errStalled is why a commit is refused while a write is stalled.
var errStalled = errors.New("a write to the audit sink has not returned")

// stalled reports whether the write in progress has taken longer than the
// stall timeout.
func (l *Logger) stalled() bool {
	start := l.writeStart.Load()
	return start != 0 && time.Since(l.base)-time.Duration(start-1) > l.stall
}

// Batches counts the writes (or COPYs) of records to the sink: the
// records stored divided by it is the group commit's batch size.
func (l *Logger) Batches() uint64 { return l.batches.Load() }

// WriteErrors counts failed writes to the sink, and records dropped
// because too many were waiting for a failed sink.
func (l *Logger) WriteErrors() uint64 { return l.writeErrors.Load() }

// Commit stores rec in the sink and returns when it is there: nil once
// the sink took it (write(2) returned, synced with WithSync; a database
// committed). An error wraps ErrUnavailable; the record may then be in
// the sink or not, and the caller answers 503 and Queues the record of
// that answer. rec must not change until Commit returns.
func (l *Logger) Commit(rec *Record) error {
	if l.stalled() {
		// Not queued behind the stalled write: refused now.
		return fmt.Errorf("%w: %w", ErrUnavailable, errStalled)
	}
	bp := l.bufs.Get().(*[]byte)
	b := appendRecord((*bp)[:0], rec)
	l.mu.Lock()
	if l.cur == nil {
		l.cur = &batch{done: make(chan struct{})}
	}
	bt := l.cur
	l.pend.add(b, rec)
	closed := l.closed
	l.mu.Unlock()
	*bp = b
	l.bufs.Put(bp)

	if closed {
		l.Flush() // no writer goroutine any more
	} else {
		select {
		case l.wake <- struct{}{}:
		default: // the writer is already woken
		}
	}
	<-bt.done
	if bt.err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, bt.err)
	}
	return nil
}

// Queue keeps rec for the next write without waiting for it: for the
// record of a request already answered 503 audit_unavailable, or of an
// HTTP/2 stream or connection refused below any request. A retry is
// scheduled, so it is written when the sink works again even if no
// request comes. rec is copied.
func (l *Logger) Queue(rec *Record) {
	c := *rec
	c.NationalIDHashes = append([]string(nil), rec.NationalIDHashes...)
	c.FieldsReturned = append([]string(nil), rec.FieldsReturned...)
	b := appendRecord(nil, &c)
	l.mu.Lock()
	if len(l.owed.buf)+len(b) > maxOwedBytes {
		l.writeErrors.Add(1)
	} else {
		l.owed.add(b, &c)
	}
	l.scheduleRetryLocked()
	l.mu.Unlock()
}

// Flush writes the queued records now. With nothing queued, it checks
// that the sink works (a database is reachable).
func (l *Logger) Flush() {
	l.wmu.Lock()
	l.writeLocked()
	l.wmu.Unlock()
}

// writer stores the records that commits leave, in batches, until the
// logger is closed.
func (l *Logger) writer() {
	defer close(l.writerDone)
	for {
		select {
		case <-l.wake:
		case <-l.quit:
			return
		}
		// Let the requests that are about to commit do so first: under
		// load they join this batch, and one write serves them all; on
		// an idle gateway this returns at once.
		runtime.Gosched()
		l.Flush()
	}
}

// Close writes what is still queued, closes the sink and reports whether
// everything committed or queued reached it. Commits after Close still
// work: each is written as it comes.
func (l *Logger) Close() error {
	l.mu.Lock()
	already := l.closed
	l.closed = true
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	l.mu.Unlock()
	if !already {
		close(l.quit)
		<-l.writerDone
	}
	l.Flush()
	l.mu.Lock()
	owed := len(l.owed.buf)
	l.mu.Unlock()
	err := l.sink.Close()
	if owed > 0 || !l.Healthy() {
		return errors.Join(fmt.Errorf("audit log: %d bytes of records could not be written (%d write errors)", owed, l.WriteErrors()), err)
	}
	return err
}

// writeLocked seals everything pending, the owed records first, and
// stores it in one batch. The caller holds wmu.
func (l *Logger) writeLocked() {
	l.mu.Lock()
	bt, pend, owed := l.cur, l.pend, l.owed
	l.cur, l.pend, l.spare, l.owed = nil, l.spare, records{}, records{}
	l.pend.reset()
	l.mu.Unlock()

	// No deadline here: a write(2) cannot be cancelled, and a database
	// sink bounds its own calls; the stall check refuses new commits
	// meanwhile.
	l.writeStart.Store(int64(time.Since(l.base)) + 1)
	stored, err := l.storeLocked(context.Background(), owed, pend)
	l.writeStart.Store(0)

	l.mu.Lock()
	owed.dropFront(min(stored, owed.len()))
	owed.appendAll(l.owed) // owed first: those queued during the write come after
	l.owed = owed
	if cap(pend.buf) <= maxSpareBytes {
		pend.reset()
		l.spare = pend
	}
	if err != nil {
		l.lastErr = err.Error()
		l.scheduleRetryLocked()
	}
	l.mu.Unlock()

	// The health and the error count first, then the committers: a
	// request answered 503 must find /readyz failing and the error
	// counted, not a moment later.
	if err != nil {
		l.writeErrors.Add(1)
		l.healthy.Store(false)
	} else {
		l.healthy.Store(true)
	}
	if bt != nil {
		bt.err = err
		close(bt.done)
	}
}

// storeLocked seals owed then pend into the stream and stores them. It
// returns how many of the sealed records (owed ones first) are in the sink.
func (l *Logger) storeLocked(ctx context.Context, owed, pend records) (int, error) {
	if l.unknown != nil {
		seq, chain, err := l.sink.Last(ctx, l.stream)
		if err != nil {
			return 0, fmt.Errorf("finding the last audit record after a failed write: %w", err)
		}
		if len(chain) != ChainHexLen && seq != 0 {
			return 0, fmt.Errorf("the audit sink's last record of stream %s has a malformed chain", l.stream)
		}
		// The owed records of that batch which the sink holds are done.
		done := int(min(max(int64(seq)-int64(l.unknown.firstSeq)+1, 0), int64(l.unknown.owed)))
		owed.dropFront(min(done, owed.len()))
		l.seq = seq
		copy(l.chain[:], chain)
		l.unknown = nil
		l.lastSeq.Store(seq)
	}
	l.seal(owed, pend)
	if len(l.batch.Records) > 0 {
		l.batches.Add(1)
	}
	stored, err := l.sink.Store(ctx, &l.batch)
	if err != nil && errors.Is(err, ErrOutcomeUnknown) {
		l.unknown = &unknownStore{firstSeq: l.seq + 1, owed: owed.len()}
		return 0, err
	}
	stored = min(max(stored, 0), len(l.batch.Records))
	if stored > 0 {
		l.seq += uint64(stored)
		copy(l.chain[:], l.batch.chain(stored-1))
		l.lastSeq.Store(l.seq)
	}
	l.batch.Records = l.batch.Records[:0] // no pointers kept into requests
	return stored, err
}

// seal numbers and chains the records of owed then pend into l.batch,
// after the last record in the sink.
func (l *Logger) seal(owed, pend records) {
	b := &l.batch
	b.reset(l.stream)
	prev := l.chain[:]
	if l.seq == 0 {
		prev = nil
	}
	seq := l.seq
	for _, rs := range [2]*records{&owed, &pend} {
		for i := range rs.len() {
			seq++
			prev = b.appendSealed(l.chainer, seq, prev, rs.body(i), rs.recs[i])
		}
	}
	if cap(b.Lines) > maxSpareBytes && len(b.Lines) < maxSpareBytes/4 {
		b.Lines = append([]byte(nil), b.Lines...)
	}
}

// scheduleRetryLocked makes sure a write is tried again after the retry
// interval, for the owed records and to notice a sink that recovered. The
// caller holds mu.
func (l *Logger) scheduleRetryLocked() {
	if l.closed || l.timer != nil {
		return
	}
	l.timer = time.AfterFunc(l.retry, l.retryWrite)
}

func (l *Logger) retryWrite() {
	l.mu.Lock()
	l.timer = nil
	l.mu.Unlock()
	l.Flush()
}
