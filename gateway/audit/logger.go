package audit

import (
	"errors"
	"fmt"
	"io"
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
// reader stopped, a hung network filesystem) would otherwise hold every
// request, unseen by /readyz.
const DefaultStallTimeout = 5 * time.Second

// maxOwedBytes bounds the records kept for a failed sink (those of the
// requests answered 503 while it failed): a sink that stays down must not
// grow the gateway's memory without bound.
const maxOwedBytes = 4 << 20

// maxSpareBytes bounds the write buffer kept for the next batch.
const maxSpareBytes = 1 << 20

// Option configures a Logger.
type Option func(*Logger)

// WithSync calls sync after every write, before the batch's commits
// return (--audit-fsync: os.File.Sync).
func WithSync(sync func() error) Option { return func(l *Logger) { l.sync = sync } }

// WithRetryInterval sets how often a failed sink is tried again while no
// commit tries it.
func WithRetryInterval(d time.Duration) Option { return func(l *Logger) { l.retry = d } }

// WithStallTimeout sets how long a write may take before the sink counts
// as unavailable (see DefaultStallTimeout).
func WithStallTimeout(d time.Duration) Option { return func(l *Logger) { l.stall = d } }

// Logger commits audit records to a sink, one JSON line each. It is safe
// for concurrent use.
type Logger struct {
	hashers sync.Pool
	bufs    sync.Pool

	out   io.Writer
	sync  func() error
	retry time.Duration
	stall time.Duration
	// base is the logger's creation: writeStart counts from it, on the
	// monotonic clock.
	base time.Time
	// writeStart is when the write in progress began (time since base,
	// plus one), 0 when none is.
	writeStart atomic.Int64

	// wmu is held by the goroutine writing to out: the first committer
	// to take it writes every record committed so far, the others find
	// their batch done when they get it (group commit).
	wmu sync.Mutex

	mu   sync.Mutex
	pend []byte // records committed since the last write began
	cur  *batch // the batch pend belongs to; nil when pend is empty
	// spare is the buffer of the previous write, reused for pend.
	spare []byte
	// owed holds records of requests already answered without theirs
	// (503 audit_unavailable), written before the next batch.
	owed []byte
	// midLine: the last write stopped inside a record; the next one
	// starts a new line, so the cut record stays one (invalid) line and
	// the following records stay whole.
	midLine bool
	timer   *time.Timer // the pending retry, if any
	closed  bool

	healthy     atomic.Bool
	writeErrors atomic.Uint64
}

// batch is the outcome of one write, shared by its commits. Its fields
// are set by the writer while it holds wmu, and read by the commits after
// they took wmu in turn.
type batch struct {
	done bool
	// committed counts the bytes of the batch that reached the sink (and
	// were synced, with WithSync): a commit whose record ends within
	// them succeeded.
	committed int
	err       error
}

// NewLogger writes records to out, hashing national IDs under key.
func NewLogger(out io.Writer, key []byte, opts ...Option) (*Logger, error) {
	if len(key) < MinKeyBytes {
		return nil, fmt.Errorf("audit hash key has %d bytes, at least %d are required", len(key), MinKeyBytes)
	}
	key = append([]byte(nil), key...)
	l := &Logger{out: out, retry: DefaultRetryInterval, stall: DefaultStallTimeout, base: time.Now()}
	for _, o := range opts {
		o(l)
	}
	if l.retry <= 0 || l.stall <= 0 {
		return nil, errors.New("audit retry interval and stall timeout must be positive")
	}
	l.healthy.Store(true)
	l.hashers.New = func() any { return newHasher(key) }
	l.bufs.New = func() any { b := make([]byte, 0, 512); return &b }
	return l, nil
}

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

// WriteErrors counts failed writes to the sink, and records dropped
// because too many were waiting for a failed sink.
func (l *Logger) WriteErrors() uint64 { return l.writeErrors.Load() }

// Commit writes rec to the sink and returns when it is there: nil once
// write(2) returned for it (and the sink was synced, with WithSync). An
// error wraps ErrUnavailable; the record may then be in the sink in part
// or not at all, and the caller answers 503 and Queues the record of that
// answer.
func (l *Logger) Commit(rec *Record) error {
	if l.stalled() {
		// Not queued behind the stalled write: refused now.
		return fmt.Errorf("%w: %w", ErrUnavailable, errStalled)
	}
	bp := l.bufs.Get().(*[]byte)
	b := appendRecord((*bp)[:0], rec)
	l.mu.Lock()
	if l.cur == nil {
		l.cur = &batch{}
	}
	bt := l.cur
	l.pend = append(l.pend, b...)
	end := len(l.pend)
	l.mu.Unlock()
	*bp = b
	l.bufs.Put(bp)

	l.wmu.Lock()
	if !bt.done {
		l.writeLocked()
	}
	l.wmu.Unlock()
	if end > bt.committed {
		return fmt.Errorf("%w: %w", ErrUnavailable, bt.err)
	}
	return nil
}

// Queue keeps rec for the next write without waiting for it: for the
// record of a request already answered 503 audit_unavailable. A retry is
// scheduled, so it is written when the sink works again even if no
// request comes.
func (l *Logger) Queue(rec *Record) {
	bp := l.bufs.Get().(*[]byte)
	b := appendRecord((*bp)[:0], rec)
	l.mu.Lock()
	if len(l.owed)+len(b) > maxOwedBytes {
		l.writeErrors.Add(1)
	} else {
		l.owed = append(l.owed, b...)
	}
	l.scheduleRetryLocked()
	l.mu.Unlock()
	*bp = b
	l.bufs.Put(bp)
}

// Flush writes the queued records now.
func (l *Logger) Flush() {
	l.wmu.Lock()
	l.writeLocked()
	l.wmu.Unlock()
}

// Close writes what is still queued and reports whether everything
// committed or queued reached the sink. Commits after Close still work:
// each is written as it comes.
func (l *Logger) Close() error {
	l.mu.Lock()
	l.closed = true
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	l.mu.Unlock()
	l.Flush()
	l.mu.Lock()
	owed := len(l.owed)
	l.mu.Unlock()
	if owed > 0 || !l.Healthy() {
		return fmt.Errorf("audit log: %d bytes of records could not be written (%d write errors)", owed, l.WriteErrors())
	}
	return nil
}

// writeLocked writes everything pending in one write: the owed records,
// then the current batch. The caller holds wmu.
func (l *Logger) writeLocked() {
	l.mu.Lock()
	bt, pend, owed, midLine := l.cur, l.pend, l.owed, l.midLine
	l.cur, l.pend, l.spare = nil, l.spare[:0], nil
	l.mu.Unlock()

	buf, prefix := pend, 0
	if midLine || len(owed) > 0 { // only after a failure
		buf = make([]byte, 0, 1+len(owed)+len(pend))
		if midLine {
			buf = append(buf, '\n')
		}
		buf = append(buf, owed...)
		prefix = len(buf)
		buf = append(buf, pend...)
	}
	n, err := l.write(buf)
	committed := max(n-prefix, 0)
	if err == nil && l.sync != nil && len(buf) > 0 {
		if serr := l.sync(); serr != nil {
			// The bytes are in the file but not known to be on disk:
			// the batch's requests are refused, and nothing is written
			// again (n stands), so no record appears twice.
			err, committed = fmt.Errorf("syncing audit sink: %w", serr), 0
		}
	}

	l.mu.Lock()
	wrote := n
	if midLine && wrote > 0 {
		wrote-- // the newline that ended the cut record
		midLine = false
	}
	ow := min(wrote, len(owed))
	l.owed = l.owed[ow:]
	if len(l.owed) == 0 {
		l.owed = nil
	}
	// A cut inside owed is resumed exactly by the next write; a cut inside
	// the batch leaves a fragment whose request was refused.
	pw := wrote - ow
	l.midLine = midLine || (pw > 0 && pw < len(pend) && pend[pw-1] != '\n')
	if cap(pend) <= maxSpareBytes {
		l.spare = pend[:0]
	}
	if err != nil {
		l.scheduleRetryLocked()
	}
	l.mu.Unlock()

	if bt != nil {
		bt.done, bt.committed, bt.err = true, committed, err
	}
	if err != nil {
		l.writeErrors.Add(1)
		l.healthy.Store(false)
		return
	}
	l.healthy.Store(true)
}

// write hands b to the sink; a short write without an error is one.
func (l *Logger) write(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	l.writeStart.Store(int64(time.Since(l.base)) + 1)
	n, err := l.out.Write(b)
	l.writeStart.Store(0)
	if err == nil && n < len(b) {
		err = io.ErrShortWrite
	}
	if err != nil {
		return n, fmt.Errorf("writing audit records: %w", err)
	}
	return n, nil
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
