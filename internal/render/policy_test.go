package render

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/gateway/policy"
)

func testGateway() *popv1.PopulationGateway {
	return &popv1.PopulationGateway{ObjectMeta: metav1.ObjectMeta{Name: "gw", Namespace: "ns"}}
}

func entriesN(n, fields int) []policy.Agency {
	out := make([]policy.Agency, n)
	for i := range out {
		fs := make([]string, fields)
		for j := range fs {
			fs[j] = fmt.Sprintf("someRatherLongFieldName%03d.nestedPart", j)
		}
		out[i] = policy.Agency{
			AgencyCode:        fmt.Sprintf("AGENCY-%05d", i),
			AllowedFields:     fs,
			AllowedOperations: []policy.Operation{policy.OperationLookup},
			RateLimit:         policy.RateLimit{RequestsPerSecond: 10, Burst: 20},
		}
	}
	return out
}

func TestPolicyShardsRoundTripAndSize(t *testing.T) {
	tests := []struct {
		desc           string
		n, fields      int
		wantCompressed bool
	}{
		{"a few agencies", 5, 3, false},
		{"10,000 agencies of 10 fields", 10000, 10, false},
		{"large entries are compressed", 3000, 256, true},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			entries := entriesN(tc.n, tc.fields)
			shards, err := PolicyShards(testGateway(), entries)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			compressed := false
			for _, cm := range shards {
				size := len(cm.Data[policy.ShardDataKey]) + len(cm.BinaryData[policy.ShardGzipKey])
				if size > 768<<10 {
					t.Errorf("shard %s holds %d bytes, want well under 1 MiB", cm.Name, size)
				}
				compressed = compressed || len(cm.BinaryData[policy.ShardGzipKey]) > 0
				got, err := ShardEntries(cm)
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range got {
					if ShardName("gw", ShardIndex(e.AgencyCode)) != cm.Name {
						t.Errorf("%s is in shard %s, not its own", e.AgencyCode, cm.Name)
					}
					seen[e.AgencyCode] = true
				}
				if cm.Labels[LabelGateway] != "gw" || cm.Annotations[AnnotationPolicyVersion] == "" {
					t.Errorf("shard %s lacks its label or version: %v %v", cm.Name, cm.Labels, cm.Annotations)
				}
			}
			if len(seen) != tc.n {
				t.Errorf("%d agencies came back, want %d", len(seen), tc.n)
			}
			if compressed != tc.wantCompressed {
				t.Errorf("compressed = %v, want %v", compressed, tc.wantCompressed)
			}
		})
	}
}

func TestPolicyShardsOneChangeRewritesOneShard(t *testing.T) {
	entries := entriesN(1000, 5)
	before, err := PolicyShards(testGateway(), entries)
	if err != nil {
		t.Fatal(err)
	}
	entries[417].Suspended = true
	after, err := PolicyShards(testGateway(), entries)
	if err != nil {
		t.Fatal(err)
	}
	if len(before) != len(after) {
		t.Fatalf("shard count changed: %d -> %d", len(before), len(after))
	}
	changed := 0
	for i := range before {
		if before[i].Name != after[i].Name {
			t.Fatalf("shard order changed")
		}
		if before[i].Data[policy.ShardDataKey] != after[i].Data[policy.ShardDataKey] {
			changed++
		}
	}
	if changed != 1 {
		t.Errorf("%d shards changed for one agency, want 1", changed)
	}
	if v1, v2 := PolicyVersion("gw", encodeAll(t, entries[:417])), PolicyVersion("gw", encodeAll(t, entries)); v1 == v2 {
		t.Error("the gateway's policy version did not change")
	}
}

func encodeAll(t *testing.T, entries []policy.Agency) []ShardDocument {
	t.Helper()
	encoded := make([]EncodedEntry, 0, len(entries))
	for _, e := range entries {
		ee, err := EncodeEntry(e)
		if err != nil {
			t.Fatal(err)
		}
		encoded = append(encoded, ee)
	}
	return EncodeShards(encoded)
}

// The shard document is assembled from the entries' encodings; it must be
// exactly what encoding/json makes of the policy.Document, with the version
// the hash of the agencies array.
func TestEncodeShardsIsTheJSONDocument(t *testing.T) {
	quota := int64(5)
	until := time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC)
	entries := entriesN(300, 3)
	entries[7].Suspended = true
	entries[8].RateLimit.DailyQuota = &quota
	entries[9].ValidUntil = &until
	entries[10].AllowedFields = []string{`needs "escaping" <&>`}
	for _, d := range encodeAll(t, entries) {
		var doc policy.Document
		if err := json.Unmarshal(d.Doc, &doc); err != nil {
			t.Fatalf("shard %d: %v", d.Index, err)
		}
		want, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(d.Doc, want) {
			t.Fatalf("shard %d:\n got %s\nwant %s", d.Index, d.Doc, want)
		}
		agencies, err := json.Marshal(doc.Agencies)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(agencies)
		if d.Version != hex.EncodeToString(sum[:8]) || doc.Version != d.Version {
			t.Errorf("shard %d: version %q in the document, %q reported, want the agencies' hash", d.Index, doc.Version, d.Version)
		}
		for i := 1; i < len(doc.Agencies); i++ {
			if doc.Agencies[i-1].AgencyCode >= doc.Agencies[i].AgencyCode {
				t.Fatalf("shard %d is not sorted by agency code", d.Index)
			}
		}
	}
}

func TestPolicyEntry(t *testing.T) {
	quota := int64(7)
	conn := &popv1.AgencyConnection{Spec: popv1.AgencyConnectionSpec{
		AgencyCode:        "BYT",
		AllowedFields:     []popv1.FieldPath{"zeta", "alpha"},
		AllowedOperations: []popv1.Operation{popv1.OperationVerify, popv1.OperationLookup},
		RateLimit:         popv1.RateLimit{RequestsPerSecond: 3, Burst: 4, DailyQuota: &quota},
	}}
	e := PolicyEntry(conn, false, nil)
	if strings.Join(e.AllowedFields, ",") != "alpha,zeta" || e.AllowedOperations[0] != policy.OperationLookup {
		t.Errorf("entry not sorted: %+v", e)
	}
	if e.Suspended || *e.RateLimit.DailyQuota != 7 {
		t.Errorf("entry %+v", e)
	}
	if !PolicyEntry(conn, true, nil).Suspended {
		t.Error("a denied entry must be suspended")
	}
	conn.Spec.Suspended = true
	if !PolicyEntry(conn, false, nil).Suspended {
		t.Error("a suspended connection must be suspended")
	}
	if err := e.Validate(); err != nil {
		t.Errorf("the gateway refuses the entry: %v", err)
	}
	// The operator's entries always pin: nil pins means "no certificate",
	// encoded as an empty list, never as an absent key ("any certificate").
	if e.CertificateSHA256 == nil {
		t.Error("an operator-written entry must carry certificateSHA256, even empty")
	}
	encoded, err := EncodeEntry(e)
	if err != nil || !strings.Contains(string(encoded.JSON), `"certificateSHA256":[]`) {
		t.Errorf("encoded entry %s (%v) lacks an empty certificateSHA256", encoded.JSON, err)
	}
	if strings.Contains(string(encoded.JSON), "disclosureDelay") || strings.Contains(string(encoded.JSON), "requireCaseReference") {
		t.Errorf("encoded entry %s carries keys its connection does not set", encoded.JSON)
	}
}

// TestPolicyEntryPurposeKeys: the connection's purpose, displayName,
// disclosureDelay and requireCaseReference reach its entry, and a zero
// delay is written as none.
func TestPolicyEntryPurposeKeys(t *testing.T) {
	conn := &popv1.AgencyConnection{Spec: popv1.AgencyConnectionSpec{
		AgencyCode: "CA-HN", DisplayName: "Công an Hà Nội", Purpose: "criminal investigations",
		AllowedFields:        []popv1.FieldPath{"fullName"},
		AllowedOperations:    []popv1.Operation{popv1.OperationLookup},
		RateLimit:            popv1.RateLimit{RequestsPerSecond: 1, Burst: 1},
		DisclosureDelay:      &metav1.Duration{Duration: 365 * 24 * time.Hour},
		RequireCaseReference: true,
	}}
	e := PolicyEntry(conn, false, nil)
	if e.Purpose != "criminal investigations" || e.DisplayName != "Công an Hà Nội" || e.DisclosureDelay != "8760h0m0s" ||
		e.Delay() != 365*24*time.Hour || !e.RequireCaseReference {
		t.Fatalf("entry %+v", e)
	}
	if err := e.Validate(); err != nil {
		t.Fatalf("the gateway refuses the entry: %v", err)
	}
	conn.Spec.DisclosureDelay = &metav1.Duration{}
	if e := PolicyEntry(conn, false, nil); e.DisclosureDelay != "" {
		t.Errorf("a zero delay must be absent, got %q", e.DisclosureDelay)
	}
}

func TestShortName(t *testing.T) {
	long := strings.Repeat("a", 300)
	got := shortName(long, 253)
	if len(got) != 253 || shortName(long, 253) != got || shortName(long+"b", 253) == got {
		t.Errorf("shortName not a stable, distinct, bounded name: %d", len(got))
	}
	if shortName("short", 63) != "short" {
		t.Error("a short name must be kept")
	}
}

// A shard's name gives back its index, for its gateway only: the shard
// reconciler maps a shard's watch event to the shard by its name.
func TestShardIndexOf(t *testing.T) {
	long := strings.Repeat("g", 250)
	for _, gw := range []string{"gw", "gw-policy", long} {
		for i := range ShardCount {
			got, ok := ShardIndexOf(gw, ShardName(gw, i))
			if !ok || got != i {
				t.Errorf("ShardIndexOf(%.10s, %s) = %d, %t; want %d", gw, ShardName(gw, i), got, ok, i)
			}
		}
	}
	for _, tc := range []struct{ gw, name string }{
		{"gw", "gw-policy-64"},
		{"gw", "gw-policy-7"},
		{"gw", "gw-policy-+7"},
		{"gw", "other-policy-07"},
		{"gw", "gw-policy-007"},
		{"gw-policy", "gw-policy-07"},
		{long + "x", ShardName(long, 3)},
	} {
		if i, ok := ShardIndexOf(tc.gw, tc.name); ok {
			t.Errorf("ShardIndexOf(%.10s, %.20s) = %d, want not a shard name", tc.gw, tc.name, i)
		}
	}
}

// A shard counts its entries and those that allow access, and its
// ConfigMap says so: the gateway's status sums the counts.
func TestShardCounts(t *testing.T) {
	entries := entriesN(400, 2)
	denied := map[string]bool{}
	for i := 0; i < len(entries); i += 3 {
		entries[i].Suspended = true
		denied[entries[i].AgencyCode] = true
	}
	agencies, active := 0, 0
	for _, d := range encodeAll(t, entries) {
		var doc policy.Document
		if err := json.Unmarshal(d.Doc, &doc); err != nil {
			t.Fatal(err)
		}
		wantActive := 0
		for _, a := range doc.Agencies {
			if !denied[a.AgencyCode] {
				wantActive++
			}
		}
		if d.Agencies != len(doc.Agencies) || d.Active != wantActive {
			t.Errorf("shard %d counts %d/%d, holds %d/%d", d.Index, d.Active, d.Agencies, wantActive, len(doc.Agencies))
		}
		cm, err := ShardConfigMap(testGateway(), d)
		if err != nil {
			t.Fatal(err)
		}
		if cm.Annotations[AnnotationPolicyAgencies] != fmt.Sprint(d.Agencies) || cm.Annotations[AnnotationPolicyActive] != fmt.Sprint(d.Active) {
			t.Errorf("shard %s annotated %v, want %d and %d", cm.Name, cm.Annotations, d.Agencies, d.Active)
		}
		agencies += d.Agencies
		active += d.Active
	}
	if agencies != len(entries) || active != len(entries)-len(denied) {
		t.Errorf("shards count %d agencies, %d active; want %d, %d", agencies, active, len(entries), len(entries)-len(denied))
	}
}
