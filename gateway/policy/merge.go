package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"slices"
	"strings"
)

// Merged is the union of several documents (a gateway's shards).
type Merged struct {
	// Version names the union: the documents' version when they all agree,
	// otherwise a digest of their sorted versions.
	Version string
	// Agencies holds every agency that appears consistently.
	Agencies map[string]Agency
	// Conflicts are agency codes that appear with different entries in two
	// places. They are absent from Agencies: the gateway denies them (fails
	// closed) until the operator writes one consistent entry.
	Conflicts []string
}

// Merge returns the union of docs, keyed by where each came from (a shard's
// namespace/name/key, or the file name). The keys only make the result
// deterministic: the same documents merge to the same Merged.
func Merge(docs map[string]*Document) Merged {
	m := Merged{Agencies: map[string]Agency{}}
	conflicts := map[string]bool{}
	versions := map[string]bool{}
	for _, name := range slices.Sorted(maps.Keys(docs)) {
		doc := docs[name]
		versions[doc.Version] = true
		for _, a := range doc.Agencies {
			if conflicts[a.AgencyCode] {
				continue
			}
			if prev, ok := m.Agencies[a.AgencyCode]; ok && !SameEntry(prev, a) {
				conflicts[a.AgencyCode] = true
				delete(m.Agencies, a.AgencyCode)
				continue
			}
			m.Agencies[a.AgencyCode] = a
		}
	}
	m.Conflicts = slices.Sorted(maps.Keys(conflicts))
	vs := slices.Sorted(maps.Keys(versions))
	switch len(vs) {
	case 0:
	case 1:
		m.Version = vs[0]
	default:
		sum := sha256.Sum256([]byte(strings.Join(vs, "\x00")))
		m.Version = "sha256:" + hex.EncodeToString(sum[:8])
	}
	return m
}
