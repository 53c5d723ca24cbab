package filter

import (
	"bytes"
	"encoding/json"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/popconnect/popconnect/internal/popdb"
)

func BenchmarkFilterRecord(b *testing.B) {
	gen, _ := popdb.NewGenerator(1, 1000)
	rec, _ := json.Marshal(gen.Record(42))
	tr := mustCompile(b, "nationalId", "fullName", "dateOfBirth", "permanentAddress.province",
		"permanentAddress.district", "household.householdId", "idCard.number", "relatives.fullName", "relatives.relation")
	var seen Seen
	out := make([]byte, 0, 4096)
	b.SetBytes(int64(len(rec)))
	b.ReportAllocs()
	start := processCPU(b)
	for b.Loop() {
		seen.Reset()
		var err error
		if out, err = tr.Filter(out[:0], rec, &seen); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(processCPU(b)-start)/float64(b.N), "cpu-ns/op")
}

// BenchmarkFilterHostile filters an upstream answer of 60 KiB made of
// ~6,000 keys and one of the same size made of one long string: a cost
// linear in the size makes the two about equal.
func BenchmarkFilterHostile(b *testing.B) {
	many, _ := manyKeys(hostileSize)
	for _, bc := range []struct {
		name string
		src  []byte
	}{{"manyKeys", many}, {"longString", oneString(len(many))}} {
		b.Run(bc.name, func(b *testing.B) {
			tr := mustCompile(b, "nationalId", "k1")
			var seen Seen
			out := make([]byte, 0, 4096)
			b.SetBytes(int64(len(bc.src)))
			b.ReportAllocs()
			start := processCPU(b)
			for b.Loop() {
				seen.Reset()
				var err error
				if out, err = tr.Filter(out[:0], bc.src, &seen); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(processCPU(b)-start)/float64(b.N), "cpu-ns/op")
		})
	}
}

// processCPU is the process's CPU time (user + system). On a shared
// machine wall time per operation mostly measures the neighbours; CPU time
// is what the code under test costs.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// manyKeys returns {"k0":0,"k1":0,...} of about size bytes and its number
// of keys: the shape that made the duplicate check quadratic.
func manyKeys(size int) ([]byte, int) {
	b := []byte{'{'}
	n := 0
	for len(b) < size-16 {
		if n > 0 {
			b = append(b, ',')
		}
		b = append(b, `"k`...)
		b = strconv.AppendInt(b, int64(n), 10)
		b = append(b, `":0`...)
		n++
	}
	return append(b, '}'), n
}

// oneString returns {"k":"aaa..."} of exactly size bytes: the same size
// as manyKeys' object, with one key.
func oneString(size int) []byte {
	b := []byte(`{"k":"`)
	b = append(b, bytes.Repeat([]byte{'a'}, size-len(b)-2)...)
	return append(b, '"', '}')
}

// hostileSize is the body size of the finding: about 4,700 keys fit in 60
// KiB, the gateway's default request limit being 64 KiB.
const hostileSize = 60 << 10
