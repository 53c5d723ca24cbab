package render

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// nameHashLen is how many hex digits of SHA-256 a shortened name keeps:
// 40 bits, enough that two objects of one namespace do not meet.
const nameHashLen = 10

// shortName returns name when it fits in max characters, and otherwise a
// prefix of it followed by "-" and a hash of the whole name, so that
// distinct long names stay distinct and the result is stable across
// reconciles. name must be a DNS subdomain (every object name is), and so is
// the result; a subdomain of at most 63 characters is also a label value.
func shortName(name string, max int) string {
	if len(name) <= max {
		return name
	}
	return hashedName(name, name, max)
}

// hashedName cuts prefix to leave room for a hash of source and appends it.
// The cut prefix is trimmed of trailing '-' and '.' so that every DNS label
// in the result still ends with a letter or digit.
func hashedName(prefix, source string, max int) string {
	return hashedNameN(prefix, source, nameHashLen, max)
}

// hashedNameN is hashedName with hashLen hex digits of hash.
func hashedNameN(prefix, source string, hashLen, max int) string {
	sum := sha256.Sum256([]byte(source))
	hash := hex.EncodeToString(sum[:])[:hashLen]
	if keep := max - len(hash) - 1; len(prefix) > keep {
		prefix = prefix[:keep]
	}
	prefix = strings.TrimRight(prefix, "-.")
	if prefix == "" {
		return hash
	}
	return prefix + "-" + hash
}

// labelValue makes any object name a valid label value (at most 63 characters).
func labelValue(s string) string { return shortName(s, 63) }
