// Package audit writes one JSON line per gateway request. National IDs are
// recorded only as keyed hashes (HMAC-SHA256), so the audit trail can show
// that two reads concerned the same citizen without revealing who.
package audit

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// MinKeyBytes is the shortest accepted hash key: HMAC-SHA256's block of
// security needs at least 32 bytes of key.
const MinKeyBytes = 32

// Record is one request's audit entry.
type Record struct {
	Time      time.Time
	RequestID string
	Agency    string
	Operation string
	// NationalIDHashes holds the keyed hashes of the IDs the request named:
	// one for Lookup and Verify (written as a string), several for a batch
	// (written as a list).
	NationalIDHashes []string
	Batch            bool
	FieldsReturned   []string
	Status           int
	// Reason is the error code of a refused or failed request.
	Reason  string
	Latency time.Duration
}

// ReadKeyFile reads an audit hash key: the file's bytes as they are.
func ReadKeyFile(path string) ([]byte, error) {
	key, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading audit hash key: %w", err)
	}
	if len(key) < MinKeyBytes {
		return nil, fmt.Errorf("audit hash key %s has %d bytes, at least %d are required", path, len(key), MinKeyBytes)
	}
	return key, nil
}

// Logger is a buffered audit writer. Records reach the output within
// FlushInterval, and Close flushes everything written before it.
type Logger struct {
	hashers sync.Pool
	bufs    sync.Pool

	mu     sync.Mutex
	w      *bufio.Writer
	dirty  bool
	closed bool

	writeErrors atomic.Uint64
	stop        chan struct{}
	done        chan struct{}
}

// FlushInterval is how often buffered records are written out.
const FlushInterval = 200 * time.Millisecond

// NewLogger writes records to out, hashing national IDs under key.
func NewLogger(out io.Writer, key []byte) (*Logger, error) {
	if len(key) < MinKeyBytes {
		return nil, fmt.Errorf("audit hash key has %d bytes, at least %d are required", len(key), MinKeyBytes)
	}
	key = append([]byte(nil), key...)
	l := &Logger{
		w:    bufio.NewWriterSize(out, 256<<10),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	l.hashers.New = func() any { return &hasher{h: hmac.New(sha256.New, key)} }
	l.bufs.New = func() any { b := make([]byte, 0, 512); return &b }
	go l.flushLoop()
	return l, nil
}

// hasher is a pooled HMAC with its scratch space: the input and the sum
// go through the hash.Hash interface and would otherwise escape to the heap
// on every call.
type hasher struct {
	h   hash.Hash
	in  []byte
	sum [sha256.Size]byte
	hex [2 * sha256.Size]byte
}

// Hash returns the hex HMAC-SHA256 of a national ID.
func (l *Logger) Hash(nationalID string) string {
	h := l.hashers.Get().(*hasher)
	h.h.Reset()
	h.in = append(h.in[:0], nationalID...)
	h.h.Write(h.in)
	clear(h.in) // pooled memory keeps no national ID
	hex.Encode(h.hex[:], h.h.Sum(h.sum[:0]))
	s := string(h.hex[:])
	l.hashers.Put(h)
	return s
}

// WriteErrors counts records the output refused.
func (l *Logger) WriteErrors() uint64 { return l.writeErrors.Load() }

// Write encodes rec and queues it for the output.
func (l *Logger) Write(rec *Record) {
	bp := l.bufs.Get().(*[]byte)
	b := appendRecord((*bp)[:0], rec)
	l.mu.Lock()
	if _, err := l.w.Write(b); err != nil {
		l.writeErrors.Add(1)
	}
	l.dirty = true
	if l.closed { // after Close nothing flushes in the background
		l.flushLocked()
	}
	l.mu.Unlock()
	*bp = b
	l.bufs.Put(bp)
}

// Flush writes the buffered records out now, rather than at the next
// FlushInterval.
func (l *Logger) Flush() {
	l.mu.Lock()
	l.flushLocked()
	l.mu.Unlock()
}

func (l *Logger) flushLocked() {
	if err := l.w.Flush(); err != nil {
		l.writeErrors.Add(1)
	}
	l.dirty = false
}

func (l *Logger) flushLoop() {
	defer close(l.done)
	t := time.NewTicker(FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			l.mu.Lock()
			if l.dirty {
				l.flushLocked()
			}
			l.mu.Unlock()
		}
	}
}

// Close stops the background flusher and flushes every record written so
// far. Records written after Close are flushed as they come.
func (l *Logger) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	close(l.stop)
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.w.Flush(); err != nil {
		return fmt.Errorf("flushing audit log: %w", err)
	}
	if l.writeErrors.Load() > 0 {
		return errors.New("audit log: some records could not be written")
	}
	return nil
}

func appendRecord(b []byte, r *Record) []byte {
	b = append(b, `{"time":"`...)
	b = r.Time.UTC().AppendFormat(b, "2006-01-02T15:04:05.000000Z07:00")
	b = append(b, `","requestId":`...)
	b = appendString(b, r.RequestID)
	b = append(b, `,"agency":`...)
	b = appendString(b, r.Agency)
	b = append(b, `,"operation":`...)
	b = appendString(b, r.Operation)
	b = append(b, `,"nationalIdHash":`...)
	switch {
	case r.Batch:
		b = appendStrings(b, r.NationalIDHashes)
	case len(r.NationalIDHashes) > 0:
		b = appendString(b, r.NationalIDHashes[0])
	default:
		b = append(b, "null"...)
	}
	b = append(b, `,"fieldsReturned":`...)
	b = appendStrings(b, r.FieldsReturned)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(r.Status), 10)
	if r.Reason != "" {
		b = append(b, `,"reason":`...)
		b = appendString(b, r.Reason)
	}
	b = append(b, `,"latencyMs":`...)
	b = strconv.AppendFloat(b, float64(r.Latency.Microseconds())/1000, 'f', 3, 64)
	return append(b, '}', '\n')
}

func appendStrings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

// appendString writes s as a JSON string, escaping what JSON requires.
func appendString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
			i++
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			i++
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, `\ufffd`...)
			} else {
				b = append(b, s[i:i+size]...)
			}
			i += size
		}
	}
	return append(b, '"')
}
