package audit

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"strconv"
)

// chainKeyLabel derives the chain key from the audit hash key, so that the
// key which hashes national IDs is never used directly for the chain.
const chainKeyLabel = "popconnect audit chain v1"

// ChainHexLen is the length of a chain value: a hex HMAC-SHA256.
const ChainHexLen = 2 * sha256.Size

// chainSuffixLen is the length of `,"chain":"<64 hex>"}` that ends a record.
const chainSuffixLen = len(`,"chain":"`) + ChainHexLen + len(`"}`)

// ChainKey derives the key of the records' chain from the audit hash key:
// HMAC-SHA256(hashKey, "popconnect audit chain v1").
func ChainKey(hashKey []byte) []byte {
	m := hmac.New(sha256.New, hashKey)
	m.Write([]byte(chainKeyLabel))
	return m.Sum(nil)
}

// NewStream returns a new stream name: 128 random bits in hex. Each gateway
// process writes one stream, numbered from 1.
func NewStream() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("choosing an audit stream name: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// Chainer computes chain values: chain(n) = hex(HMAC-SHA256(chainKey,
// chain(n-1) || body(n))), where chain(n-1) is the previous record's chain
// in hex (empty before seq 1) and body(n) is the record's bytes without its
// chain field, i.e. `{...,"stream":"…","seq":n}`. It is not safe for
// concurrent use.
type Chainer struct {
	mac hash.Hash
	sum [sha256.Size]byte
}

// NewChainer returns a Chainer keyed by the audit hash key (the chain key is
// derived from it by ChainKey).
func NewChainer(hashKey []byte) *Chainer {
	return &Chainer{mac: hmac.New(sha256.New, ChainKey(hashKey))}
}

// Next appends to dst the hex chain of a record whose body is body, after a
// record whose chain was prev (hex; empty for the first record).
func (c *Chainer) Next(dst, prev, body []byte) []byte {
	c.mac.Reset()
	c.mac.Write(prev)
	c.mac.Write(body)
	return hex.AppendEncode(dst, c.mac.Sum(c.sum[:0]))
}

// nextOpen is Next for a body given without its closing brace (the form in
// which the sealer holds it), saving a copy.
func (c *Chainer) nextOpen(dst, prev, open []byte) []byte {
	c.mac.Reset()
	c.mac.Write(prev)
	c.mac.Write(open)
	c.mac.Write(closingBrace)
	return hex.AppendEncode(dst, c.mac.Sum(c.sum[:0]))
}

var closingBrace = []byte{'}'}

// SplitChain splits a record line (without its newline) into its body, the
// bytes the chain covers (`{...,"seq":n}`), and its chain value. ok is false
// when the line does not end in a chain field.
func SplitChain(line []byte) (body, chain []byte, ok bool) {
	if len(line) < chainSuffixLen+2 {
		return nil, nil, false
	}
	cut := len(line) - chainSuffixLen
	suffix := line[cut:]
	if string(suffix[:len(`,"chain":"`)]) != `,"chain":"` || string(suffix[len(suffix)-2:]) != `"}` {
		return nil, nil, false
	}
	chain = suffix[len(`,"chain":"`) : len(suffix)-2]
	for _, c := range chain {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return nil, nil, false
		}
	}
	body = make([]byte, 0, cut+1)
	body = append(append(body, line[:cut]...), '}')
	return body, chain, true
}

// appendSeal ends an open record body (`{...,"latencyMs":1.000`) with its
// stream and seq, and returns the body's open form extended by them.
func appendSeal(b []byte, stream string, seq uint64) []byte {
	b = append(b, `,"stream":"`...)
	b = append(b, stream...)
	b = append(b, `","seq":`...)
	return strconv.AppendUint(b, seq, 10)
}
