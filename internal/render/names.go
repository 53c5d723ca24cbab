package render

import (
	"crypto/sha256"
	"encoding/hex"
)

// shortName returns name when it fits in max characters, and otherwise a
// prefix of it followed by a hash of the whole name, so that distinct long
// names stay distinct and the result is stable across reconciles.
func shortName(name string, max int) string {
	if len(name) <= max {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	suffix := hex.EncodeToString(sum[:])[:10]
	prefix := name[:max-len(suffix)-1]
	// A name must not end with '-' or '.' before the suffix separator.
	for len(prefix) > 0 && (prefix[len(prefix)-1] == '-' || prefix[len(prefix)-1] == '.') {
		prefix = prefix[:len(prefix)-1]
	}
	return prefix + "-" + suffix
}

// labelValue makes any string a valid label value (at most 63 characters).
func labelValue(s string) string { return shortName(s, 63) }
