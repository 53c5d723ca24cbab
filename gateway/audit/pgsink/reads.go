package pgsink

import (
	"fmt"
	"strings"
	"time"
)

// ReadsTable indexes the citizens' reads: one row per national ID hash of
// every successful read (ReadOperations, status 200), pointing at its
// record by (stream, seq, time). Its partitions are ReadsTable_YYYYMM, one
// per UTC month.
//
// # Why a second table
//
// "Every read of this citizen" has no time bound. Asked of the record
// table, it probes an index in every daily partition: 31 a month, 1,826 in
// five years, each a plan node and an index descent, and at 10 million
// records (bench/auditstore, bench/README.md) 174 ms a page with a GIN
// index on national_id_hashes. Here the citizen's rows are one B-tree
// range per monthly partition, already in time order, so the query reads
// the newest months first and stops at the page's end; the records are
// then fetched by their primary key, one partition each.
//
// # Kept in step, in the records' transaction
//
// The sink writes a batch's index rows itself, in the same Query, and so
// the same transaction, as its records (copy.go): a record and its index
// rows commit together or not at all, with no second round trip on the
// audit path. It copies both into their partitions by name.
//
// A statement-level trigger on the record table fills the index the same
// way from rows inserted through the parent table: records restored from
// an archive, and the COPYs of gateways older than the sink's own index
// rows, during a rolling upgrade. It does not fire for rows inserted into
// a partition directly, so the sink's rows are not indexed twice
// (TestReadsIndexSameAsTrigger checks that both give the same rows). The
// sink no longer goes through it because it cost half of the database's
// work per record: a trigger with a transition table makes PostgreSQL
// insert the records one by one, keep them in a tuple store, and run a
// PL/pgSQL INSERT ... SELECT DISTINCT over them (bench/README.md).
//
// It is derived data, not evidence: the chain covers the records only.
// The history joins every index row to its record and keeps only rows
// whose record is still there, is a read and succeeded, so a stale or
// forged index row shows nothing, and a day dropped by retention leaves
// the history with its partition.
const ReadsTable = "popconnect_audit_reads"

// ReadOperations are the operations whose successful records are reads of
// a citizen's record.
var ReadOperations = []string{"Lookup", "Verify", "BatchLookup"}

// readsDDL creates the index table and its trigger. The hash and the
// stream are hex, compared byte by byte (COLLATE "C"): in a database
// created with a language's collation, every B-tree comparison of a text
// key would otherwise go through the locale's rules, for keys that have no
// language. DISTINCT: a batch
// lookup that names a citizen twice is one read of the citizen. The
// trigger is created only when missing: CREATE TRIGGER locks the record
// table against every replica's COPY, and a sink runs this DDL at each
// (re)connect.
var readsDDL = `
CREATE TABLE IF NOT EXISTS ` + ReadsTable + ` (
    national_id_hash text COLLATE "C" NOT NULL,
    time             timestamptz NOT NULL,
    stream           text COLLATE "C" NOT NULL,
    seq              bigint      NOT NULL,
    disclose_after   timestamptz
) PARTITION BY RANGE (time);
CREATE INDEX IF NOT EXISTS ` + ReadsTable + `_citizen ON ` + ReadsTable + ` (national_id_hash, time DESC);
CREATE OR REPLACE FUNCTION ` + ReadsTable + `_index() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    INSERT INTO ` + ReadsTable + ` (national_id_hash, time, stream, seq, disclose_after)
    SELECT DISTINCT h, n.time, n.stream, n.seq, n.disclose_after
    FROM new_records n, unnest(n.national_id_hashes) AS h
    WHERE n.status = 200 AND n.operation IN (` + sqlList(ReadOperations) + `);
    RETURN NULL;
END
$fn$;
DO $do$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = '` + ReadsTable + `_index'
                   AND tgrelid = '` + Table + `'::regclass) THEN
        CREATE TRIGGER ` + ReadsTable + `_index AFTER INSERT ON ` + Table + `
            REFERENCING NEW TABLE AS new_records
            FOR EACH STATEMENT EXECUTE FUNCTION ` + ReadsTable + `_index();
    END IF;
END $do$;
`

// monthPartitionDDL creates the index table's partition of t's UTC month.
func monthPartitionDDL(t time.Time) (name, ddl string) {
	y, m, _ := t.UTC().Date()
	start := time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)
	name = start.Format("200601")
	return name, fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s_%s PARTITION OF %s FOR VALUES FROM ('%s') TO ('%s');\n",
		ReadsTable, name, ReadsTable, start.Format(time.RFC3339), start.AddDate(0, 1, 0).Format(time.RFC3339))
}

// sqlList is ss as SQL string literals, comma-separated (ss are constants
// without quotes).
func sqlList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = "'" + s + "'"
	}
	return strings.Join(q, ", ")
}
