package render

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/gateway/policy"
)

const (
	// ShardCount is how many policy shards a gateway's agencies are spread
	// over, by a hash of the agency code. Fixed, so an agency never moves
	// between shards and one connection's change rewrites one shard: 10,000
	// agencies make shards of about 160 entries (~100 KiB), far below the
	// 1 MiB limit of a ConfigMap.
	ShardCount = 64
	// AnnotationPolicyVersion carries a shard's version (a content hash).
	AnnotationPolicyVersion = "popconnect.io/policy-version"
	// AnnotationPolicyAgencies and AnnotationPolicyActive carry how many
	// entries a shard holds and how many of them allow access: the
	// gateway's status sums them without decoding the shards.
	AnnotationPolicyAgencies = "popconnect.io/policy-agencies"
	AnnotationPolicyActive   = "popconnect.io/policy-active-agencies"
)

// PolicyEntry is a connection's entry in its gateway's policy. deny marks an
// entry the gateway must refuse (a suspended or expired connection): it is
// kept so that the refusal is explicit and immediate. pins are the
// certificate digests the agency is pinned to (CertificatePins); the entry
// always carries the key, and a nil pins pins to nothing, never to "any".
func PolicyEntry(conn *popv1.AgencyConnection, deny bool, pins []string) policy.Agency {
	fields := make([]string, 0, len(conn.Spec.AllowedFields))
	for _, f := range conn.Spec.AllowedFields {
		fields = append(fields, string(f))
	}
	sort.Strings(fields)
	ops := make([]policy.Operation, 0, len(conn.Spec.AllowedOperations))
	for _, op := range conn.Spec.AllowedOperations {
		ops = append(ops, policy.Operation(op))
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i] < ops[j] })
	entry := policy.Agency{
		AgencyCode:        conn.Spec.AgencyCode,
		AllowedFields:     fields,
		AllowedOperations: ops,
		RateLimit: policy.RateLimit{
			RequestsPerSecond: conn.Spec.RateLimit.RequestsPerSecond,
			Burst:             conn.Spec.RateLimit.Burst,
		},
		Suspended:            deny || conn.Spec.Suspended,
		CertificateSHA256:    append(make([]string, 0, len(pins)), pins...),
		Purpose:              conn.Spec.Purpose,
		DisplayName:          conn.Spec.DisplayName,
		RequireCaseReference: conn.Spec.RequireCaseReference,
	}
	if d := conn.Spec.DisclosureDelay; d != nil && d.Duration > 0 {
		entry.DisclosureDelay = d.Duration.String()
	}
	if q := conn.Spec.RateLimit.DailyQuota; q != nil {
		v := *q
		entry.RateLimit.DailyQuota = &v
	}
	if conn.Spec.ValidUntil != nil {
		t := conn.Spec.ValidUntil.UTC().Truncate(time.Second)
		entry.ValidUntil = &t
	}
	return entry
}

// ShardIndex is the shard an agency's entry lives in.
func ShardIndex(agencyCode string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(agencyCode))
	return int(h.Sum32() % ShardCount)
}

// ShardName is the name of a gateway's policy shard.
func ShardName(gatewayName string, index int) string {
	return shortName(gatewayName, 253-len("-policy-00")) + fmt.Sprintf("-policy-%02d", index)
}

// ShardIndexOf is the index of the gateway's shard named name; false when
// name is not one of the gateway's shard names.
func ShardIndexOf(gatewayName, name string) (int, bool) {
	first := ShardName(gatewayName, 0)
	prefix := first[:len(first)-2]
	if len(name) != len(first) || !strings.HasPrefix(name, prefix) {
		return 0, false
	}
	i, err := strconv.Atoi(name[len(prefix):])
	if err != nil || i < 0 || i >= ShardCount || ShardName(gatewayName, i) != name {
		return 0, false
	}
	return i, true
}

// ShardLabels are the labels of a gateway's policy shards; the gateway
// selects its shards with LabelGateway.
func ShardLabels(gatewayName string) map[string]string {
	return map[string]string{
		LabelManagedBy: ManagedByValue,
		LabelGateway:   labelValue(gatewayName),
		LabelComponent: "policy",
	}
}

// EncodedEntry is one agency's entry as a policy shard holds it: its JSON
// encoding, and whether it refuses the agency (for the shard's counts).
type EncodedEntry struct {
	AgencyCode string
	Suspended  bool
	JSON       []byte
}

// EncodeEntry encodes an entry for EncodeShards, as policy.EncodeAgency does.
func EncodeEntry(e policy.Agency) (EncodedEntry, error) {
	b, err := policy.EncodeAgency(e)
	if err != nil {
		return EncodedEntry{}, err
	}
	return EncodedEntry{AgencyCode: e.AgencyCode, Suspended: e.Suspended, JSON: b}, nil
}

// ShardDocument is one shard's policy document, encoded, and its version: a
// hash of its entries, which changes whenever any of them does. Agencies
// and Active count its entries and those that allow access.
type ShardDocument struct {
	Index    int
	Version  string
	Doc      []byte
	Agencies int
	Active   int
}

// EncodeShards spreads the entries over the shards by ShardIndex and encodes
// each non-empty shard, in index order, its entries sorted by agency code,
// so that the output is byte-for-byte stable. The document is exactly what
// json.Marshal makes of a policy.Document; it is assembled from the entries'
// encodings.
func EncodeShards(entries []EncodedEntry) []ShardDocument {
	var buckets [ShardCount][]EncodedEntry
	for _, e := range entries {
		i := ShardIndex(e.AgencyCode)
		buckets[i] = append(buckets[i], e)
	}
	var docs []ShardDocument
	for i, b := range buckets {
		if len(b) == 0 {
			continue
		}
		sort.Slice(b, func(x, y int) bool { return b[x].AgencyCode < b[y].AgencyCode })
		docs = append(docs, encodeShard(i, b))
	}
	return docs
}

// encodeShard assembles a shard's document from its entries, sorted by code.
func encodeShard(index int, entries []EncodedEntry) ShardDocument {
	size := 2
	active := 0
	for _, e := range entries {
		size += len(e.JSON) + 1
		if !e.Suspended {
			active++
		}
	}
	const head, tail = `{"version":"`, `"}`
	versionLen := 16 // hex of 8 bytes
	doc := make([]byte, 0, len(head)+versionLen+len(`","agencies":`)+size+len(tail))
	doc = append(doc, head...)
	doc = append(doc, make([]byte, versionLen)...) // the version, filled in below
	doc = append(doc, `","agencies":`...)
	bodyStart := len(doc)
	doc = append(doc, '[')
	for i, e := range entries {
		if i > 0 {
			doc = append(doc, ',')
		}
		doc = append(doc, e.JSON...)
	}
	doc = append(doc, ']')
	sum := sha256.Sum256(doc[bodyStart:])
	version := hex.EncodeToString(sum[:8])
	copy(doc[len(head):], version)
	doc = append(doc, '}')
	return ShardDocument{Index: index, Version: version, Doc: doc, Agencies: len(entries), Active: active}
}

// ShardConfigMap is the ConfigMap that carries a shard document of the
// gateway; a document larger than ShardGzipThreshold is compressed.
func ShardConfigMap(gw *popv1.PopulationGateway, d ShardDocument) (*corev1.ConfigMap, error) {
	cm := &corev1.ConfigMap{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      ShardName(gw.Name, d.Index),
			Namespace: gw.Namespace,
			Labels:    ShardLabels(gw.Name),
			Annotations: map[string]string{
				AnnotationPolicyVersion:  d.Version,
				AnnotationPolicyAgencies: strconv.Itoa(d.Agencies),
				AnnotationPolicyActive:   strconv.Itoa(d.Active),
			},
		},
	}
	if len(d.Doc) <= policy.ShardGzipThreshold {
		cm.Data = map[string]string{policy.ShardDataKey: string(d.Doc)}
		return cm, nil
	}
	compressed, err := policy.Compress(d.Doc)
	if err != nil {
		return nil, fmt.Errorf("policy shard %d: %w", d.Index, err)
	}
	cm.BinaryData = map[string][]byte{policy.ShardGzipKey: compressed}
	return cm, nil
}

// PolicyShards renders the gateway's shards for the entries: only shards
// holding at least one entry, in index order.
func PolicyShards(gw *popv1.PopulationGateway, entries []policy.Agency) ([]*corev1.ConfigMap, error) {
	encoded := make([]EncodedEntry, 0, len(entries))
	for _, e := range entries {
		ee, err := EncodeEntry(e)
		if err != nil {
			return nil, err
		}
		encoded = append(encoded, ee)
	}
	docs := EncodeShards(encoded)
	shards := make([]*corev1.ConfigMap, 0, len(docs))
	for _, d := range docs {
		cm, err := ShardConfigMap(gw, d)
		if err != nil {
			return nil, err
		}
		shards = append(shards, cm)
	}
	return shards, nil
}

// PolicyVersion combines the shards' versions into the gateway's version.
func PolicyVersion(gatewayName string, docs []ShardDocument) string {
	h := sha256.New()
	for _, d := range docs {
		fmt.Fprintf(h, "%s=%s\n", ShardName(gatewayName, d.Index), d.Version)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// ShardEntries decodes the entries of a shard with the gateway's own
// decoder (policy.DecodeShard): an entry the gateway would refuse is not
// reported as written.
func ShardEntries(cm *corev1.ConfigMap) ([]policy.Agency, error) {
	docs, err := policy.DecodeShard(cm.Data, cm.BinaryData)
	if err != nil {
		return nil, fmt.Errorf("decoding shard %s: %w", cm.Name, err)
	}
	var entries []policy.Agency
	for _, key := range slices.Sorted(maps.Keys(docs)) {
		entries = append(entries, docs[key].Agencies...)
	}
	return entries, nil
}
