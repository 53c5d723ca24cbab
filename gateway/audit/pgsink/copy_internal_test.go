package pgsink

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/popconnect/popconnect/gateway/audit"
)

// TestEncodeAllocatesNothing: once its buffers have grown, the encoder
// builds a batch's Query without allocating, whatever the day and month
// partitions the batch touches. The sink's garbage was most of the
// PostgreSQL gateway's extra collector work (bench/README.md).
func TestEncodeAllocatesNothing(t *testing.T) {
	key := bytes.Repeat([]byte("k"), audit.MinKeyBytes)
	endOfNov := time.Date(2026, 11, 30, 23, 59, 59, 0, time.UTC)
	var recs []*audit.Record
	for i := range 20 {
		at := endOfNov.Add(time.Duration(i%2) * 2 * time.Second) // two days, two months
		recs = append(recs, &audit.Record{Time: at, RequestID: fmt.Sprint("r", i), Agency: "tax", Operation: "Lookup",
			NationalIDHashes: []string{fmt.Sprintf("%064d", i)}, FieldsReturned: []string{"name", "birthDate"}, Status: 200})
	}
	b := audit.SealBatch(key, "stream", 1, "", recs)
	var e copyEncoder
	e.encode(b)
	if e.nDays != 2 || e.nMonths != 2 || e.rows != 20 {
		t.Fatalf("encoded %d day COPYs, %d month COPYs, %d rows; want 2, 2, 20", e.nDays, e.nMonths, e.rows)
	}
	// The Query names the partitions as ensurePartitions makes them.
	end := 5 + bytes.IndexByte(e.wire[5:], 0) // after the type and length
	wantSQL := "COPY popconnect_audit_records_20261130 (" + recordsColumnList + ") FROM STDIN BINARY; " +
		"COPY popconnect_audit_records_20261201 (" + recordsColumnList + ") FROM STDIN BINARY; " +
		"COPY popconnect_audit_reads_202611 (" + readsColumnList + ") FROM STDIN BINARY; " +
		"COPY popconnect_audit_reads_202612 (" + readsColumnList + ") FROM STDIN BINARY"
	if e.wire[0] != 'Q' || end < 5 || string(e.wire[5:end]) != wantSQL {
		t.Fatalf("Query message: %q", e.wire[:min(len(e.wire), 400)])
	}
	if allocs := testing.AllocsPerRun(20, func() { e.encode(b) }); allocs != 0 {
		t.Errorf("encode allocates %.0f times per batch, want 0", allocs)
	}
}
