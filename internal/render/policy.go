package render

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"sort"
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
	// ShardDataKey is the data key of a shard's policy document.
	ShardDataKey = "policy.json"
	// ShardGzipKey is the binaryData key used instead when the document is
	// larger than ShardGzipThreshold.
	ShardGzipKey = "policy.json.gz"
	// ShardGzipThreshold keeps a shard well under the 1 MiB object limit.
	ShardGzipThreshold = 512 << 10
	// maxShardExpansion bounds how far a compressed shard is expanded.
	maxShardExpansion = 64 << 20
	// AnnotationPolicyVersion carries a shard's version (a content hash).
	AnnotationPolicyVersion = "popconnect.io/policy-version"
)

// PolicyEntry is a connection's entry in its gateway's policy. deny marks an
// entry the gateway must refuse (a suspended or expired connection): it is
// kept so that the refusal is explicit and immediate.
func PolicyEntry(conn *popv1.AgencyConnection, deny bool) policy.Agency {
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
		Suspended: deny || conn.Spec.Suspended,
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

// ShardLabels are the labels of a gateway's policy shards; the gateway
// selects its shards with LabelGateway.
func ShardLabels(gatewayName string) map[string]string {
	return map[string]string{
		LabelManagedBy: ManagedByValue,
		LabelGateway:   labelValue(gatewayName),
		LabelComponent: "policy",
	}
}

// PolicyShards spreads the entries over the gateway's shards. Only shards
// holding at least one entry are returned, in index order; entries are
// sorted by agency code so that the output is byte-for-byte stable.
func PolicyShards(gw *popv1.PopulationGateway, entries []policy.Agency) ([]*corev1.ConfigMap, error) {
	buckets := map[int][]policy.Agency{}
	for _, e := range entries {
		i := ShardIndex(e.AgencyCode)
		buckets[i] = append(buckets[i], e)
	}
	indexes := make([]int, 0, len(buckets))
	for i := range buckets {
		indexes = append(indexes, i)
	}
	sort.Ints(indexes)
	shards := make([]*corev1.ConfigMap, 0, len(indexes))
	for _, i := range indexes {
		cm, err := policyShard(gw, i, buckets[i])
		if err != nil {
			return nil, err
		}
		shards = append(shards, cm)
	}
	return shards, nil
}

func policyShard(gw *popv1.PopulationGateway, index int, agencies []policy.Agency) (*corev1.ConfigMap, error) {
	sort.Slice(agencies, func(a, b int) bool { return agencies[a].AgencyCode < agencies[b].AgencyCode })
	body, err := json.Marshal(agencies)
	if err != nil {
		return nil, fmt.Errorf("encoding policy shard %d: %w", index, err)
	}
	sum := sha256.Sum256(body)
	version := hex.EncodeToString(sum[:8])
	doc, err := json.Marshal(policy.Document{Version: version, Agencies: agencies})
	if err != nil {
		return nil, fmt.Errorf("encoding policy shard %d: %w", index, err)
	}
	cm := &corev1.ConfigMap{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        ShardName(gw.Name, index),
			Namespace:   gw.Namespace,
			Labels:      ShardLabels(gw.Name),
			Annotations: map[string]string{AnnotationPolicyVersion: version},
		},
	}
	if len(doc) <= ShardGzipThreshold {
		cm.Data = map[string]string{ShardDataKey: string(doc)}
		return cm, nil
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(doc); err != nil {
		return nil, fmt.Errorf("compressing policy shard %d: %w", index, err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("compressing policy shard %d: %w", index, err)
	}
	cm.BinaryData = map[string][]byte{ShardGzipKey: buf.Bytes()}
	return cm, nil
}

// PolicyVersion combines the shards' versions into the gateway's version.
func PolicyVersion(shards []*corev1.ConfigMap) string {
	h := sha256.New()
	for _, s := range shards {
		fmt.Fprintf(h, "%s=%s\n", s.Name, s.Annotations[AnnotationPolicyVersion])
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// ShardEntries decodes the entries of a shard as written by PolicyShards.
func ShardEntries(cm *corev1.ConfigMap) ([]policy.Agency, error) {
	var raw []byte
	switch {
	case cm.Data[ShardDataKey] != "":
		raw = []byte(cm.Data[ShardDataKey])
	case len(cm.BinaryData[ShardGzipKey]) > 0:
		zr, err := gzip.NewReader(bytes.NewReader(cm.BinaryData[ShardGzipKey]))
		if err != nil {
			return nil, fmt.Errorf("reading shard %s: %w", cm.Name, err)
		}
		var buf bytes.Buffer
		// A shard may expand at most this much: a forged one cannot exhaust memory.
		if _, err := buf.ReadFrom(io.LimitReader(zr, maxShardExpansion)); err != nil {
			return nil, fmt.Errorf("reading shard %s: %w", cm.Name, err)
		}
		raw = buf.Bytes()
	default:
		return nil, nil
	}
	var doc policy.Document
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("decoding shard %s: %w", cm.Name, err)
	}
	return doc.Agencies, nil
}
