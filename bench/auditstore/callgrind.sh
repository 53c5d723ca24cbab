#!/usr/bin/env bash
# Counts the instructions the PostgreSQL backend that runs the audit sink's
# COPYs executes per record, with valgrind's callgrind: a figure that, unlike
# CPU time, does not move with the machine's load (the same binary and input
# give the same count). It runs bench/auditstore at two sizes with the server
# under callgrind and prints the difference per record, so that the server's
# start, the load's end and the bench's queries cancel out, and the backend's
# heaviest functions (inclusive, per record, of the larger run).
#
#   bash bench/auditstore/callgrind.sh              # 5,000 and 15,000 records
#   N1=2000 N2=6000 COMMITTERS=16 bash bench/auditstore/callgrind.sh
#
# COMMITTERS (16) bounds the records per COPY, as a gateway's concurrency
# does (the gateway bench's batches hold 10-20); under callgrind the server is
# ~50 times slower, so batches fill to that bound. Needs valgrind
# (callgrind_annotate) and Debian's PostgreSQL (`make postgres`).
set -euo pipefail
cd "$(dirname "$0")/../.."

N1=${N1:-5000}
N2=${N2:-15000}
COMMITTERS=${COMMITTERS:-16}
PGBIN=${POSTGRES_BIN:-$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)}

for tool in valgrind callgrind_annotate; do
	command -v "$tool" >/dev/null || { echo "callgrind.sh: $tool is missing (apt-get install valgrind)" >&2; exit 1; }
done

work=$(mktemp -d /tmp/auditstore-callgrind-XXXXXX)
chmod 755 "$work"
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
mkdir -m 777 "$work/out"

# A bin directory like PostgreSQL's whose postgres runs the server (not
# initdb's bootstrap, which finds the real binary beside initdb) under
# callgrind, one output file per process.
mkdir "$work/bin"
for f in "$PGBIN"/*; do ln -s "$f" "$work/bin/"; done
rm "$work/bin/postgres"
cat >"$work/bin/postgres" <<EOF
#!/bin/sh
case " \$* " in
*" -D "*" -p "*) exec valgrind --tool=callgrind --trace-children=yes --callgrind-out-file=$work/out/callgrind.%p $PGBIN/postgres "\$@" ;;
*) exec $PGBIN/postgres "\$@" ;;
esac
EOF
chmod 755 "$work/bin/postgres"

go build -o "$work/auditstore" ./bench/auditstore

# copy_backend N: runs N records and prints the COPY backend's total
# instructions and the path of its profile.
copy_backend() {
	rm -f "$work"/out/callgrind.*
	POSTGRES_BIN="$work/bin" "$work/auditstore" -n "$1" -committers "$COMMITTERS" -queries 1 -verify=false -sink-timeout 2m >"$work/run-$1.txt" 2>&1 ||
		{ echo "callgrind.sh: bench/auditstore failed:" >&2; cat "$work/run-$1.txt" >&2; exit 1; }
	for f in "$work"/out/callgrind.*; do
		if grep -q DoCopy "$f"; then
			echo "$(awk '/^(summary|totals):/{print $2; exit}' "$f") $f"
			return
		fi
	done
	echo "callgrind.sh: no backend ran a COPY (see $work/run-$1.txt)" >&2
	exit 1
}

read -r ir1 _ < <(copy_backend "$N1")
read -r ir2 profile < <(copy_backend "$N2")
per_copy=$(awk '/^records per COPY/{print $NF}' "$work/run-$N2.txt")
echo "records: $N1 and $N2, committers $COMMITTERS, records per COPY $per_copy"
echo "COPY backend: $(( (ir2 - ir1) / (N2 - N1) )) instructions per record (the difference of the two runs)"
echo
echo "heaviest functions of the $N2-record run, inclusive, instructions per record:"
callgrind_annotate --inclusive=yes "$profile" 2>/dev/null |
	grep -E '\?\?\?:(DoCopy|CopyFrom|NextCopyFrom|array_recv|ExecInsertIndexTuples|btinsert|heap_insert|heap_multi_insert|pglz_compress|raw_parser|XLogInsert|AfterTriggerEndQuery|plpgsql_exec_trigger|ExecFindPartition|CommitTransactionCommand) ' |
	awk -v n="$N2" '{gsub(",", "", $1); printf "  %8d  %s\n", $1 / n, $2 == "(" ? $4 : $3}'
