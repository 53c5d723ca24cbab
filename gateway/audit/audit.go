// Package audit writes one JSON line per gateway request. National IDs are
// recorded only as keyed hashes (HMAC-SHA256), so the audit trail can show
// that two reads concerned the same citizen without revealing who.
//
// A record is committed before its request is answered: Commit returns once
// the record's bytes were handed to the sink by write(2) (and synced, with
// WithSync). Concurrent commits share one write (group commit), so the cost
// is one system call per batch rather than per request. When the sink fails,
// Commit says so and the gateway answers 503 instead of the data (it fails
// closed); the next write that succeeds makes the logger healthy again.
package audit

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"os"
	"time"
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
	// Purpose is the purpose of the agency's connection, and
	// CaseReference the case the request named: written only when set,
	// so that records without them keep their bytes.
	Purpose       string
	CaseReference string
	// AgencyName is the display name of the agency's connection when the
	// request was made (written only when set): a citizen's access history
	// names the agency by it.
	AgencyName string
	// DiscloseAfter, when not zero, is when the read may appear in the
	// citizen's access history: the record's time plus the connection's
	// disclosureDelay, fixed when the record is made, so that a later change
	// of the delay neither hides nor reveals reads already made. Written
	// only when set; zero means at once.
	DiscloseAfter time.Time
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

// hasher is a pooled HMAC with its scratch space: the input and the sum
// go through the hash.Hash interface and would otherwise escape to the heap
// on every call.
type hasher struct {
	h   hash.Hash
	in  []byte
	sum [sha256.Size]byte
	hex [2 * sha256.Size]byte
}

func newHasher(key []byte) *hasher { return &hasher{h: hmac.New(sha256.New, key)} }

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
