package filter

import (
	"encoding/json"
	"testing"

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
	for b.Loop() {
		seen.Reset()
		var err error
		if out, err = tr.Filter(out[:0], rec, &seen); err != nil {
			b.Fatal(err)
		}
	}
}
