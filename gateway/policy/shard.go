package policy

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// The shard format. The operator splits a gateway's policy into shards
// (ConfigMaps, each under the 1 MiB object limit); every data value of a
// shard is one policy document, and every binaryData value whose key ends
// in ".gz" is a gzip-compressed one. The operator writes one document per
// shard, under ShardDataKey, or under ShardGzipKey once it is larger than
// ShardGzipThreshold. This package alone encodes and decodes it, so that
// what the operator believes it wrote is what the gateway reads.
const (
	// ShardDataKey is the data key of a shard's policy document.
	ShardDataKey = "policy.json"
	// ShardGzipKey is the binaryData key used instead when the document is
	// larger than ShardGzipThreshold.
	ShardGzipKey = "policy.json.gz"
	// ShardGzipThreshold keeps a shard well under the 1 MiB object limit.
	ShardGzipThreshold = 512 << 10
	// shardGzipSuffix marks a compressed binaryData value.
	shardGzipSuffix = ".gz"
)

// EncodeAgency is the canonical JSON encoding of an entry, the form a shard
// document holds it in.
func EncodeAgency(a Agency) ([]byte, error) {
	b, err := json.Marshal(a)
	if err != nil {
		return nil, fmt.Errorf("encoding the policy entry of %s: %w", a.AgencyCode, err)
	}
	return b, nil
}

// Compress gzips a document that is too large for a data value.
func Compress(doc []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, fmt.Errorf("compressing a policy document: %w", err)
	}
	if _, err := zw.Write(doc); err != nil {
		return nil, fmt.Errorf("compressing a policy document: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("compressing a policy document: %w", err)
	}
	return buf.Bytes(), nil
}

// Decompress gunzips a compressed document, refusing to expand it beyond
// MaxDocumentBytes: a forged shard cannot exhaust memory.
func Decompress(b []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	defer zr.Close()
	out, err := io.ReadAll(io.LimitReader(zr, MaxDocumentBytes+1))
	if err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	if len(out) > MaxDocumentBytes {
		return nil, fmt.Errorf("gzip: document expands beyond %d bytes", MaxDocumentBytes)
	}
	return out, nil
}

// DecodeShardValue decodes one value of a shard: a data value (binary
// false) or a binaryData value, which must be a compressed document under
// a key ending in ".gz". It applies Parse's rules: unknown keys and invalid
// entries are errors.
func DecodeShardValue(key string, value []byte, binary bool) (*Document, error) {
	if binary {
		if !strings.HasSuffix(key, shardGzipSuffix) {
			return nil, fmt.Errorf("binaryData key %q does not end in %s", key, shardGzipSuffix)
		}
		var err error
		if value, err = Decompress(value); err != nil {
			return nil, err
		}
	}
	return Parse(value)
}

// DecodeShard decodes every document of a shard, keyed by data key; the
// first value that does not decode is the error.
func DecodeShard(data map[string]string, binaryData map[string][]byte) (map[string]*Document, error) {
	docs := make(map[string]*Document, len(data)+len(binaryData))
	for key, value := range data {
		doc, err := DecodeShardValue(key, []byte(value), false)
		if err != nil {
			return nil, fmt.Errorf("data %s: %w", key, err)
		}
		docs[key] = doc
	}
	for key, value := range binaryData {
		doc, err := DecodeShardValue(key, value, true)
		if err != nil {
			return nil, fmt.Errorf("binaryData %s: %w", key, err)
		}
		docs[key] = doc
	}
	return docs, nil
}
