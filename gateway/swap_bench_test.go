package gateway

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/popconnect/popconnect/gateway/policy"
	"github.com/popconnect/popconnect/internal/popdb"
)

func manyAgencies(n int) map[string]*policy.Document {
	fields := popdb.FieldPaths()
	docs := map[string]*policy.Document{}
	for s := range 10 { // ten shards
		doc := &policy.Document{Version: "bench"}
		for i := s; i < n; i += 10 {
			doc.Agencies = append(doc.Agencies, policy.Agency{
				AgencyCode:        fmt.Sprintf("AG%05d", i),
				AllowedFields:     fields[i%7 : 10+i%23],
				AllowedOperations: []policy.Operation{policy.OperationLookup, policy.OperationVerify},
				RateLimit:         policy.RateLimit{RequestsPerSecond: 100, Burst: 200},
			})
		}
		docs[fmt.Sprintf("shard-%d", s)] = doc
	}
	return docs
}

// BenchmarkPolicySwap10k measures merging and compiling 10,000 agencies in
// ten shards: from nothing (cold) and when one agency changed (the
// suspension path, which reuses every unchanged entry).
func BenchmarkPolicySwap10k(b *testing.B) {
	loc := time.UTC
	docs := manyAgencies(10_000)
	b.Run("cold", func(b *testing.B) {
		b.ReportAllocs()
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		var s *state
		for b.Loop() {
			var err error
			if s, err = compile(policy.Merge(docs), nil, loc); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "live-MiB")
		runtime.KeepAlive(s)
	})
	b.Run("one-suspended", func(b *testing.B) {
		b.ReportAllocs()
		prev, err := compile(policy.Merge(docs), nil, loc)
		if err != nil {
			b.Fatal(err)
		}
		shard := docs["shard-3"]
		for i := 0; b.Loop(); i++ {
			shard.Agencies[0].Suspended = i%2 == 0
			next, err := compile(policy.Merge(docs), prev, loc)
			if err != nil {
				b.Fatal(err)
			}
			prev = next
		}
	})
}
