#!/usr/bin/env bash
# Gateway benchmark: the same mTLS lookup workload (GET /v1/citizens/{id},
# random existing citizens, HTTP/1.1 keep-alive) at fixed concurrency against
#   (a) popdb-sim directly (HTTPS),
#   (b) nginx as an mTLS reverse proxy (TLS 1.3, ssl_verify_client on,
#       proxy_pass to a keepalive upstream),
#   (c) the popconnect gateway (mTLS, policy, field filtering, rate limiting
#       with limits set high, audit records on stdout into a pipe, as in a
#       pod; AUDIT_SINK=file writes them to a file instead).
# Prints a table (with the CPU each target process spent per request, and
# its write system calls per request) and the ratios. Not part of go test.
#
# Environment: DURATION (20s), CONCURRENCY (64), RECORDS (1000000),
# PROFILE=1 to also write a CPU profile of the gateway run (gateway.pprof in
# the work directory, which is then kept; with AUDIT_POSTGRES=1 also
# gateway-pg.pprof, of the PostgreSQL gateway), ROUNDS (1): run every target
# ROUNDS times, interleaved (even rounds in reverse order; an even ROUNDS
# balances the order), each leg DURATION long, and report the means,
# so that a load change on a shared machine hits all targets alike;
# BASELINE_GATEWAY=path/to/gateway adds that binary as a fourth target
# (e.g. one built from the previous commit) for a side-by-side comparison;
# GATEWAY_ARGS: extra flags for the gateway under test (not the baseline),
# split on spaces, e.g. GATEWAY_ARGS='--http2-server native';
# PROTO (h1): h2 drives every target over HTTP/2 instead, CONCURRENCY
# streams in flight shared by H2_CONNECTIONS (8) connections;
# AUDIT_POSTGRES=1 adds the gateway once more, its audit records committed
# to a PostgreSQL server of its own (bench/pgserver: Debian's binaries,
# `make postgres`) instead of a file; RATELIMIT_REDIS=1 adds the gateway
# once more, its rate limits and quota counted in a redis-server of its own
# (`make redis`; no persistence, a password); the checks of concurrent
# requests go to Redis together, one script call per round trip;
# RATELIMIT_REDIS_TIMEOUT (100ms, the gateway's default) is its
# --ratelimit-redis-timeout: on a loaded machine, calls past it make the
# gateway fall back to its share for a second or more (counted at the end),
# which flatters its throughput; 1s keeps every request counted in Redis;
# PURPOSE=1 adds the gateway once more with a purpose, a display name and
# requireCaseReference in its policy and a Popconnect-Case-Reference header
# on every request, so that every record carries both (against the plain
# gateway: the cost of the purpose fields).
# AUDIT_SINK (stdout): the plain gateway and the baseline binary run with
# `--audit-file -`, their stdout a pipe that another process (cat; in a pod
# the container runtime) appends to the log file: the operator deploys
# every gateway so, unless its records go to PostgreSQL. file gives them
# `--audit-file` on a file instead, as the gateway run by hand or by
# `make demo` writes them (until 2026-12-03 the only choice, and the
# figures in bench/README.md before then are with a file).
# PIN_DATABASE=1 (with AUDIT_POSTGRES=1) gives the PostgreSQL server (the
# postmaster and every backend) CPU 1 and everything else (popdb-sim, nginx
# with one worker, every gateway, loadgen, Redis if asked for) CPU 0, as in a
# deployment where the database has a server of its own: every target's
# request path gets the same one core, and only the PostgreSQL gateway has a
# database beside it. The CPUs each part ran on are read back and printed;
# the Go programs see one CPU (GOMAXPROCS 1). The machine's other load is not
# pinned: the busy share of each CPU during each target's legs is printed.
set -euo pipefail

DURATION=${DURATION:-20s}
CONCURRENCY=${CONCURRENCY:-64}
RECORDS=${RECORDS:-1000000}
PROFILE=${PROFILE:-0}
ROUNDS=${ROUNDS:-1}
BASELINE_GATEWAY=${BASELINE_GATEWAY:-}
read -r -a gateway_args <<<"${GATEWAY_ARGS:-}"
AUDIT_POSTGRES=${AUDIT_POSTGRES:-0}
RATELIMIT_REDIS=${RATELIMIT_REDIS:-0}
PURPOSE=${PURPOSE:-0}
PIN_DATABASE=${PIN_DATABASE:-0}
AUDIT_SINK=${AUDIT_SINK:-stdout}
case "$AUDIT_SINK" in
file | stdout) ;;
*)
	echo "AUDIT_SINK must be file or stdout, not $AUDIT_SINK" >&2
	exit 2
	;;
esac
PORT_GW_PURPOSE=${PORT_GW_PURPOSE:-18448}
PORT_GW_PURPOSE_METRICS=${PORT_GW_PURPOSE_METRICS:-19094}
RATELIMIT_REDIS_TIMEOUT=${RATELIMIT_REDIS_TIMEOUT:-100ms}
PORT_REDIS=${PORT_REDIS:-16379}
PORT_GW_REDIS=${PORT_GW_REDIS:-18447}
PORT_GW_REDIS_METRICS=${PORT_GW_REDIS_METRICS:-19093}
PORT_GW_PG=${PORT_GW_PG:-18446}
PORT_GW_PG_METRICS=${PORT_GW_PG_METRICS:-19092}
PROTO=${PROTO:-h1}
H2_CONNECTIONS=${H2_CONNECTIONS:-8}
case "$PROTO" in
h1) nginx_listen_http2='' load_proto=() ;;
h2) nginx_listen_http2=' http2' load_proto=(--http2 --h2-connections "$H2_CONNECTIONS") ;;
*)
	echo "PROTO must be h1 or h2, not $PROTO" >&2
	exit 2
	;;
esac
PORT_GW_BASE=${PORT_GW_BASE:-18445}
PORT_GW_BASE_METRICS=${PORT_GW_BASE_METRICS:-19091}
PORT_UP=${PORT_UP:-18080}
PORT_UP_TLS=${PORT_UP_TLS:-18081}
PORT_NGINX=${PORT_NGINX:-18443}
PORT_GW=${PORT_GW:-18444}
PORT_GW_METRICS=${PORT_GW_METRICS:-19090}

# The two CPUs of PIN_DATABASE=1: the request path's and the database's.
pin_request_cpu=0
pin_database_cpu=1
nginx_workers=auto
if [ "$PIN_DATABASE" = 1 ]; then
	if [ "$AUDIT_POSTGRES" != 1 ]; then
		echo "PIN_DATABASE=1 needs AUDIT_POSTGRES=1 (it pins the PostgreSQL server)" >&2
		exit 2
	fi
	allowed=$(taskset -c -p $$ | sed 's/.*: //')
	if ! taskset -c "$pin_request_cpu" true 2>/dev/null || ! taskset -c "$pin_database_cpu" true 2>/dev/null; then
		echo "PIN_DATABASE=1 needs CPUs $pin_request_cpu and $pin_database_cpu; this shell may run on $allowed" >&2
		exit 2
	fi
	# One core, one worker: nginx 1.22's "auto" counts the machine's CPUs,
	# not the ones it may run on.
	nginx_workers=1
fi

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	if [ "$PROFILE" = 1 ]; then
		echo "work directory kept: $work"
		for f in "$work"/gateway*.pprof; do
			if [ -e "$f" ]; then echo "CPU profile: $f (go tool pprof $work/gateway $f)"; fi
		done
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT

if ! command -v nginx >/dev/null; then
	apt-get install -y nginx-light >/dev/null
fi

echo "building..." >&2
(cd "$root" && go build -o "$work/" ./cmd/gateway ./cmd/popdb-sim ./bench/loadgen ./bench/pgserver)

echo "generating certificates..." >&2
cd "$work"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=bench-ca \
	-keyout ca.key -out ca.crt 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
	-keyout server.key -out server.csr 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >server.ext
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 -extfile server.ext -out server.crt 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=BENCH \
	-keyout client.key -out client.csr 2>/dev/null
printf 'subjectAltName=URI:spiffe://popconnect.io/agency/BENCH\nextendedKeyUsage=clientAuth\n' >client.ext
openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 -extfile client.ext -out client.crt 2>/dev/null
head -c 32 /dev/urandom >audit.key

cat >policy.json <<'JSON'
{"version": "bench", "agencies": [{
  "agencyCode": "BENCH",
  "allowedFields": ["fullName", "dateOfBirth", "gender", "permanentAddress.province",
    "permanentAddress.district", "permanentAddress.ward", "household.householdId",
    "idCard.number", "idCard.expiryDate", "relatives.fullName", "relatives.relation"],
  "allowedOperations": ["Lookup", "Verify", "BatchLookup"],
  "rateLimit": {"requestsPerSecond": 1000000, "burst": 1000000}
}]}
JSON

mkdir -p nginx-tmp
cat >nginx.conf <<NGINX
worker_processes $nginx_workers;
error_log $work/nginx-error.log warn;
pid $work/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/nginx-tmp/body;
  proxy_temp_path $work/nginx-tmp/proxy;
  fastcgi_temp_path $work/nginx-tmp/fastcgi;
  uwsgi_temp_path $work/nginx-tmp/uwsgi;
  scgi_temp_path $work/nginx-tmp/scgi;
  upstream popdb { server 127.0.0.1:$PORT_UP; keepalive 128; }
  server {
    listen 127.0.0.1:$PORT_NGINX ssl$nginx_listen_http2;
    ssl_protocols TLSv1.3;
    ssl_certificate $work/server.crt;
    ssl_certificate_key $work/server.key;
    ssl_client_certificate $work/ca.crt;
    ssl_verify_client on;
    keepalive_requests 1000000;
    location / {
      proxy_pass http://popdb;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
NGINX

wait_port() {
	for _ in $(seq 1 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	echo "port $1 did not open; the ends of the logs:" >&2
	# The work directory goes at exit: say why a server did not start.
	tail -n 3 ./*.log >&2 || true
	return 1
}

if [ "$PIN_DATABASE" = 1 ]; then
	# Every process started from here on is a child of this shell and
	# inherits its CPU; the PostgreSQL server alone is started on the other.
	taskset -c -p "$pin_request_cpu" $$ >/dev/null
fi
./popdb-sim --listen-address "127.0.0.1:$PORT_UP" --records "$RECORDS" 2>popdb.log &
up_pid=$!
pids+=("$up_pid")
./popdb-sim --listen-address "127.0.0.1:$PORT_UP_TLS" --records "$RECORDS" \
	--tls-cert-file server.crt --tls-key-file server.key 2>popdb-tls.log &
direct_pid=$!
pids+=("$direct_pid")
nginx -c "$work/nginx.conf" -p "$work" -g 'daemon off;' &
nginx_pid=$!
pids+=("$nginx_pid")
profile_args=()
pg_profile_args=()
if [ "$PROFILE" = 1 ]; then
	profile_args=(--cpu-profile "$work/gateway.pprof")
	pg_profile_args=(--cpu-profile "$work/gateway-pg.pprof")
fi
# start_gateway BINARY PORT METRICS_PORT AUDIT_FILE [ARGS...]: the gateway
# with the bench policy; its PID is left in gateway_pid, that of the
# reader of its stdout (AUDIT_SINK=stdout) in reader_pid.
start_gateway() {
	local bin=$1 port=$2 metrics=$3 audit=$4 sink out=/dev/null
	shift 4
	sink=(--audit-file "$audit")
	reader_pid=
	if [ "$AUDIT_SINK" = stdout ]; then
		out=$audit.pipe
		mkfifo "$out"
		cat "$out" >>"$audit" &
		reader_pid=$!
		pids+=("$reader_pid")
		sink=(--audit-file -)
	fi
	"$bin" --policy-file policy.json --upstream-url "http://127.0.0.1:$PORT_UP" \
		--listen-address "127.0.0.1:$port" --metrics-address "127.0.0.1:$metrics" \
		--tls-cert-file server.crt --tls-key-file server.key --client-ca-file ca.crt \
		"${sink[@]}" --audit-hash-key-file audit.key --log-level warn \
		"$@" >"$out" 2>>gateway.log &
	gateway_pid=$!
	pids+=("$gateway_pid")
}
# The audit files are in a directory of their own, as in a deployment: the
# gateway watches the directories of its certificate and policy files, and
# every audit write there would wake its file watcher.
mkdir -p audit
start_gateway ./gateway "$PORT_GW" "$PORT_GW_METRICS" "$work/audit/audit.log" "${profile_args[@]}" "${gateway_args[@]}"
gw_pid=$gateway_pid
gw_reader_pid=$reader_pid
ports=("$PORT_UP" "$PORT_UP_TLS" "$PORT_NGINX" "$PORT_GW")
if [ -n "$BASELINE_GATEWAY" ]; then
	start_gateway "$BASELINE_GATEWAY" "$PORT_GW_BASE" "$PORT_GW_BASE_METRICS" "$work/audit/audit-baseline.log"
	base_pid=$gateway_pid
	ports+=("$PORT_GW_BASE")
fi
if [ "$AUDIT_POSTGRES" = 1 ]; then
	pg_cpu=()
	if [ "$PIN_DATABASE" = 1 ]; then pg_cpu=(taskset -c "$pin_database_cpu"); fi
	# taskset execs pgserver, which starts initdb and postgres: they inherit
	# its CPU, and the postmaster's backends inherit the postmaster's.
	"${pg_cpu[@]}" ./pgserver --url-file "$work/audit-db.url" 2>pgserver.log &
	pgserver_pid=$!
	pids+=("$pgserver_pid")
	for _ in $(seq 1 600); do [ -s "$work/audit-db.url" ] && break; sleep 0.1; done
	[ -s "$work/audit-db.url" ] || { echo "the PostgreSQL server did not start" >&2; cat pgserver.log >&2; exit 1; }
	"./gateway" --policy-file policy.json --upstream-url "http://127.0.0.1:$PORT_UP" \
		--listen-address "127.0.0.1:$PORT_GW_PG" --metrics-address "127.0.0.1:$PORT_GW_PG_METRICS" \
		--tls-cert-file server.crt --tls-key-file server.key --client-ca-file ca.crt \
		--audit-postgres-url-file "$work/audit-db.url" --audit-hash-key-file audit.key --log-level warn \
		"${pg_profile_args[@]}" 2>>gateway-pg.log &
	pg_gw_pid=$!
	pids+=("$pg_gw_pid")
	ports+=("$PORT_GW_PG")
fi
if [ "$RATELIMIT_REDIS" = 1 ]; then
	redis_bin=$("$root/hack/redis.sh")
	# Its files in a directory of their own: the gateways watch this one.
	mkdir -p redis
	head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' >redis.password
	"$redis_bin" --port "$PORT_REDIS" --bind 127.0.0.1 --dir "$work/redis" --save '' --appendonly no \
		--requirepass "$(cat redis.password)" --logfile "$work/redis/redis.log" &
	redis_pid=$!
	pids+=("$redis_pid")
	wait_port "$PORT_REDIS"
	# The daily quota is set far above what the run spends, so that every
	# request runs the whole script (rate and quota), as an admitted one does.
	sed 's/"burst": 1000000}/"burst": 1000000, "dailyQuota": 1000000000000}/' policy.json >policy-redis.json
	"./gateway" --policy-file policy-redis.json --upstream-url "http://127.0.0.1:$PORT_UP" \
		--listen-address "127.0.0.1:$PORT_GW_REDIS" --metrics-address "127.0.0.1:$PORT_GW_REDIS_METRICS" \
		--tls-cert-file server.crt --tls-key-file server.key --client-ca-file ca.crt \
		--audit-file "$work/audit/audit-redis.log" --audit-hash-key-file audit.key --log-level warn \
		--ratelimit-redis-url "redis://127.0.0.1:$PORT_REDIS/0" --ratelimit-redis-password-file redis.password \
		--ratelimit-redis-timeout "$RATELIMIT_REDIS_TIMEOUT" 2>>gateway-redis.log &
	redis_gw_pid=$!
	pids+=("$redis_gw_pid")
	ports+=("$PORT_GW_REDIS")
fi
if [ "$PURPOSE" = 1 ]; then
	# A purpose and a display name of realistic length; the case reference
	# required, so that a request without it would be refused (and counted
	# as an error by loadgen).
	sed 's/"agencyCode": "BENCH",/"agencyCode": "BENCH", "purpose": "Social insurance eligibility checks under Decree 115\/2015 art. 12", "displayName": "Vietnam Social Security, Hanoi branch", "requireCaseReference": true,/' \
		policy.json >policy-purpose.json
	"./gateway" --policy-file policy-purpose.json --upstream-url "http://127.0.0.1:$PORT_UP" \
		--listen-address "127.0.0.1:$PORT_GW_PURPOSE" --metrics-address "127.0.0.1:$PORT_GW_PURPOSE_METRICS" \
		--tls-cert-file server.crt --tls-key-file server.key --client-ca-file ca.crt \
		--audit-file "$work/audit/audit-purpose.log" --audit-hash-key-file audit.key --log-level warn 2>>gateway-purpose.log &
	purpose_gw_pid=$!
	pids+=("$purpose_gw_pid")
	ports+=("$PORT_GW_PURPOSE")
fi
for p in "${ports[@]}"; do wait_port "$p"; done

# load URL [LOADGEN_ARGS...]
load() {
	local url=$1
	shift
	./loadgen --url "$url" --cert client.crt --key client.key --ca ca.crt \
		--concurrency "$CONCURRENCY" --duration "$DURATION" --records "$RECORDS" "${load_proto[@]}" "$@"
}
field() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" <<<"$2"; }

# CPU time in clock ticks of the given processes, as "user system", from
# /proc/PID/stat fields 14 and 15. nginx's workers are children of its master.
cpu_ticks() {
	local u=0 s=0 p f
	for p in "$@"; do
		read -r -a f <"/proc/$p/stat"
		u=$((u + f[13]))
		s=$((s + f[14]))
	done
	echo "$u $s"
}

# The targets, as name|URL|PIDs whose CPU is counted[|one loadgen header].
targets=("popdb-sim direct (HTTPS)|https://127.0.0.1:$PORT_UP_TLS|$direct_pid"
	"nginx mTLS proxy|https://127.0.0.1:$PORT_NGINX|$nginx_pid $(pgrep -P "$nginx_pid" | tr '\n' ' ')"
	"popconnect gateway|https://127.0.0.1:$PORT_GW|$gw_pid")
if [ -n "$BASELINE_GATEWAY" ]; then
	targets+=("gateway (baseline binary)|https://127.0.0.1:$PORT_GW_BASE|$base_pid")
fi
if [ "$AUDIT_POSTGRES" = 1 ]; then
	# The database's CPU is the gateway's cost too: count its processes.
	# (the postmaster and its children: the gateway's backend among them).
	postmaster=$(pgrep -u postgres -f "popconnect-bench-postgres-" | head -1)
	pg_pids="$postmaster $(pgrep -P "$postmaster" | tr '\n' ' ')"
	targets+=("gateway, PostgreSQL audit|https://127.0.0.1:$PORT_GW_PG|$pg_gw_pid $pg_pids")
fi
if [ "$RATELIMIT_REDIS" = 1 ]; then
	# Redis's CPU is the gateway's cost too.
	targets+=("gateway, Redis rate limits|https://127.0.0.1:$PORT_GW_REDIS|$redis_gw_pid $redis_pid")
fi
if [ "$PURPOSE" = 1 ]; then
	targets+=("gateway, purpose + case ref|https://127.0.0.1:$PORT_GW_PURPOSE|$purpose_gw_pid|Popconnect-Case-Reference: HS-2026/004211-CSDT")
fi

if [ "$PROTO" = h2 ]; then
	echo "running: HTTP/2, $CONCURRENCY streams over $H2_CONNECTIONS connections, $DURATION per leg, $ROUNDS round(s)..." >&2
else
	echo "running: $CONCURRENCY connections, $DURATION per leg, $ROUNDS round(s)..." >&2
fi
# Write system calls of the given processes, from /proc/PID/io (syscw):
# a count the machine's load does not distort, unlike a rate. nginx's
# workers are children of its master.
write_calls() {
	local n=0 p k v
	for p in "$@"; do
		while read -r k v; do
			if [ "$k" = "syscw:" ]; then n=$((n + v)); fi
		done <"/proc/$p/io"
	done
	echo "$n"
}

# Busy and total clock ticks of the two CPUs PIN_DATABASE uses, from
# /proc/stat, as "busy total busy total" (busy: all but idle and iowait;
# the guest fields are already in user). Whole-machine figures: another
# session's processes count too.
cpu_stat() {
	awk -v a="cpu$pin_request_cpu" -v b="cpu$pin_database_cpu" '$1 == a || $1 == b {
		t = 0; for (i = 2; i <= 9; i++) t += $i
		v[$1] = (t - $5 - $6) " " t
	} END { print v[a], v[b] }' /proc/stat
}
# cpus_of PID...: the CPUs the given processes, every thread of them, may
# run on, read back from the kernel (distinct lists, space-separated).
cpus_of() {
	local p
	for p in "$@"; do taskset -c -a -p "$p" 2>/dev/null || true; done | sed 's/.*: //' | sort -u | paste -sd ' ' -
}
loadgen_cpus=''

declare -A sum_rps sum_p50 sum_p99 sum_ok sum_err sum_user sum_sys sum_writes
declare -A pin_busy0 pin_total0 pin_busy1 pin_total1
pg_db_ticks=0
for ((round = 1; round <= ROUNDS; round++)); do
	# Even rounds take the targets in reverse order: over an even number
	# of rounds each target runs as often just before as just after each
	# other one, so that what a leg leaves behind (a warmer or busier
	# machine) does not favour the target that always follows it.
	order=("${targets[@]}")
	if ((round % 2 == 0)); then
		order=()
		for ((i = ${#targets[@]} - 1; i >= 0; i--)); do order+=("${targets[$i]}"); done
	fi
	for t in "${order[@]}"; do
		IFS='|' read -r name url tpids theader <<<"$t"
		header_args=()
		if [ -n "$theader" ]; then header_args=(--header "$theader"); fi
		# shellcheck disable=SC2086 # one PID per word
		read -r user_before sys_before < <(cpu_ticks $tpids)
		# shellcheck disable=SC2086
		writes_before=$(write_calls $tpids)
		if [ "$name" = "gateway, Redis rate limits" ]; then read -r ru_before rs_before < <(cpu_ticks "$redis_pid"); fi
		# shellcheck disable=SC2086
		if [ "$name" = "gateway, PostgreSQL audit" ]; then read -r pu_before ps_before < <(cpu_ticks $pg_pids); fi
		if [ "$PIN_DATABASE" = 1 ]; then read -r b0_before t0_before b1_before t1_before < <(cpu_stat); fi
		if [ "$PIN_DATABASE" = 1 ] && [ -z "$loadgen_cpus" ]; then
			# The first leg runs loadgen in the background, to read back
			# its CPUs once its threads have started.
			load "$url" "${header_args[@]}" >leg.out &
			leg_pid=$!
			sleep 1
			lg_pid=$(pgrep -x loadgen -P "$leg_pid" || echo "$leg_pid")
			loadgen_cpus=$(cpus_of "$lg_pid")
			wait "$leg_pid"
			out=$(<leg.out)
		else
			out=$(load "$url" "${header_args[@]}")
		fi
		if [ "$PIN_DATABASE" = 1 ]; then
			read -r b0_after t0_after b1_after t1_after < <(cpu_stat)
			pin_busy0[$name]=$((${pin_busy0[$name]:-0} + b0_after - b0_before))
			pin_total0[$name]=$((${pin_total0[$name]:-0} + t0_after - t0_before))
			pin_busy1[$name]=$((${pin_busy1[$name]:-0} + b1_after - b1_before))
			pin_total1[$name]=$((${pin_total1[$name]:-0} + t1_after - t1_before))
		fi
		if [ "$name" = "gateway, PostgreSQL audit" ]; then
			# shellcheck disable=SC2086
			read -r pu_after ps_after < <(cpu_ticks $pg_pids)
			pg_db_ticks=$((pg_db_ticks + pu_after + ps_after - pu_before - ps_before))
		fi
		# shellcheck disable=SC2086
		read -r user_after sys_after < <(cpu_ticks $tpids)
		# shellcheck disable=SC2086
		writes_after=$(write_calls $tpids)
		if [ "$name" = "gateway, Redis rate limits" ]; then
			read -r ru_after rs_after < <(cpu_ticks "$redis_pid")
			redis_ticks=$((${redis_ticks:-0} + ru_after + rs_after - ru_before - rs_before))
		fi
		sum_rps[$name]=$(awk -v a="${sum_rps[$name]:-0}" -v b="$(field rps "$out")" 'BEGIN { print a + b }')
		sum_p50[$name]=$(awk -v a="${sum_p50[$name]:-0}" -v b="$(field p50_ms "$out")" 'BEGIN { print a + b }')
		sum_p99[$name]=$(awk -v a="${sum_p99[$name]:-0}" -v b="$(field p99_ms "$out")" 'BEGIN { print a + b }')
		sum_ok[$name]=$((${sum_ok[$name]:-0} + $(field ok "$out")))
		sum_err[$name]=$((${sum_err[$name]:-0} + $(field errors "$out")))
		sum_user[$name]=$((${sum_user[$name]:-0} + user_after - user_before))
		sum_sys[$name]=$((${sum_sys[$name]:-0} + sys_after - sys_before))
		sum_writes[$name]=$((${sum_writes[$name]:-0} + writes_after - writes_before))
	done
done
if [ "$PIN_DATABASE" = 1 ]; then
	# Read back at the end, so that processes started during the run (the
	# postmaster's autovacuum workers, say) are included.
	nginx_all="$nginx_pid $(pgrep -P "$nginx_pid" | tr '\n' ' ')"
	# shellcheck disable=SC2086
	pins=("popdb-sim upstream|$(cpus_of "$up_pid")"
		"popdb-sim direct (HTTPS)|$(cpus_of "$direct_pid")"
		"nginx (master + $(($(wc -w <<<"$nginx_all") - 1)) worker)|$(cpus_of $nginx_all)"
		"popconnect gateway|$(cpus_of "$gw_pid")")
	if [ -n "$BASELINE_GATEWAY" ]; then pins+=("gateway (baseline binary)|$(cpus_of "$base_pid")"); fi
	pg_all="$postmaster $(pgrep -P "$postmaster" | tr '\n' ' ')"
	# shellcheck disable=SC2086
	pins+=("gateway, PostgreSQL audit|$(cpus_of "$pg_gw_pid")"
		"pgserver (starts PostgreSQL)|$(cpus_of "$pgserver_pid")"
		"PostgreSQL ($(wc -w <<<"$pg_all") processes)|$(cpus_of $pg_all)")
	if [ "$RATELIMIT_REDIS" = 1 ]; then pins+=("gateway, Redis rate limits|$(cpus_of "$redis_gw_pid")" "redis-server|$(cpus_of "$redis_pid")"); fi
	if [ "$PURPOSE" = 1 ]; then pins+=("gateway, purpose + case ref|$(cpus_of "$purpose_gw_pid")"); fi
	pins+=("loadgen (first leg)|$loadgen_cpus")
fi
audit_lines_running=$(wc -l <audit/audit.log)
audit_batches=$(curl -s "http://127.0.0.1:$PORT_GW_METRICS/metrics" | sed -n 's/^popconnect_gateway_audit_batches_total \(.*\)/\1/p')
kill -TERM "$gw_pid"
wait "$gw_pid" || true
if [ -n "$gw_reader_pid" ]; then wait "$gw_reader_pid" || true; fi
audit_lines=$(wc -l <audit/audit.log)
if [ "$AUDIT_POSTGRES" = 1 ]; then
	pg_page=$(curl -s "http://127.0.0.1:$PORT_GW_PG_METRICS/metrics")
	pg_records=$(sed -n 's/^popconnect_gateway_audit_last_seq{[^}]*} \(.*\)/\1/p' <<<"$pg_page")
	pg_batches=$(sed -n 's/^popconnect_gateway_audit_batches_total \(.*\)/\1/p' <<<"$pg_page")
	if [ "$PROFILE" = 1 ]; then
		# Stopped here so that its profile is complete when the paths are printed.
		kill -TERM "$pg_gw_pid"
		wait "$pg_gw_pid" || true
	fi
fi

hz=$(getconf CLK_TCK)
printf '\n%-28s %10s %9s %9s %8s %12s %14s %11s\n' target "req/s" "p50 ms" "p99 ms" errors "CPU µs/req" "(user + sys)" "writes/req"
declare -A rps
for t in "${targets[@]}"; do
	name=${t%%|*}
	rps[$name]=$(awk -v s="${sum_rps[$name]}" -v n="$ROUNDS" 'BEGIN { printf "%.0f", s / n }')
	awk -v name="$name" -v rps="${rps[$name]}" -v p50="${sum_p50[$name]}" -v p99="${sum_p99[$name]}" -v n="$ROUNDS" \
		-v err="${sum_err[$name]}" -v u="${sum_user[$name]}" -v s="${sum_sys[$name]}" -v ok="${sum_ok[$name]}" -v hz="$hz" -v w="${sum_writes[$name]}" \
		'BEGIN { k = (ok > 0 ? 1e6 / hz / ok : 0)
			printf "%-28s %10s %9.2f %9.2f %8d %11.0f %8.0f + %3.0f %11.2f\n", name, rps, p50 / n, p99 / n, err, (u + s) * k, u * k, s * k, (ok > 0 ? w / ok : 0) }'
done
g=${rps["popconnect gateway"]}
n=${rps["nginx mTLS proxy"]}
d=${rps["popdb-sim direct (HTTPS)"]}
echo
awk -v g="$g" -v n="$n" -v d="$d" 'BEGIN { printf "gateway/nginx = %.2f   gateway/direct = %.2f\n", g / n, g / d }'
if [ -n "$BASELINE_GATEWAY" ]; then
	awk -v g="$g" -v b="${rps["gateway (baseline binary)"]}" 'BEGIN { printf "gateway/baseline = %.2f\n", g / b }'
fi
if [ "$AUDIT_POSTGRES" = 1 ]; then
	awk -v s="$AUDIT_SINK" -v g="$g" -v p="${rps["gateway, PostgreSQL audit"]}" 'BEGIN { printf "gateway PostgreSQL/%s sink = %.2f\n", s, p / g }'
	if [ -n "$BASELINE_GATEWAY" ]; then
		awk -v p="${rps["gateway, PostgreSQL audit"]}" -v b="${rps["gateway (baseline binary)"]}" 'BEGIN { printf "gateway PostgreSQL/baseline = %.2f\n", p / b }'
	fi
fi
if [ "$RATELIMIT_REDIS" = 1 ]; then
	awk -v g="$g" -v r="${rps["gateway, Redis rate limits"]}" 'BEGIN { printf "gateway Redis/in-memory limits = %.2f\n", r / g }'
	redis_page=$(curl -s "http://127.0.0.1:$PORT_GW_REDIS_METRICS/metrics")
	awk -v t="$redis_ticks" -v ok="${sum_ok["gateway, Redis rate limits"]}" -v hz="$hz" \
		'BEGIN { printf "Redis rate limits: redis-server CPU %.0f µs per request (of the row above; the rest is the gateway)\n", t * 1e6 / hz / ok }'
	echo "Redis rate limits: fallbacks to the share $(sed -n 's/^popconnect_gateway_ratelimit_fallbacks_total \(.*\)/\1/p' <<<"$redis_page") (0: every request counted in Redis)"
fi
if [ "$PURPOSE" = 1 ]; then
	awk -v g="$g" -v p="${rps["gateway, purpose + case ref"]}" 'BEGIN { printf "gateway purpose + case reference/plain = %.2f\n", p / g }'
	echo "a purpose record: $(tail -n 1 audit/audit-purpose.log | grep -o '"purpose":"[^"]*","caseReference":"[^"]*"' || echo 'none: the purpose leg wrote no purpose')"
fi
echo "audit sink: $AUDIT_SINK; audit writes: ${audit_batches:-?} for $audit_lines_running records ($(awk -v r="$audit_lines_running" -v b="${audit_batches:-0}" 'BEGIN { if (b > 0) printf "%.1f", r / b; else print "?" }') per write)"
if [ "$AUDIT_POSTGRES" = 1 ]; then
	# The row above counts the gateway and the database together; apart,
	# the gateway's share is what competes with the request path when the
	# database has a CPU of its own (PIN_DATABASE=1).
	awk -v t="$pg_db_ticks" -v u="${sum_user["gateway, PostgreSQL audit"]}" -v s="${sum_sys["gateway, PostgreSQL audit"]}" \
		-v ok="${sum_ok["gateway, PostgreSQL audit"]}" -v hz="$hz" \
		'BEGIN { if (ok > 0) printf "PostgreSQL audit: CPU µs per request, gateway process %.0f + database %.0f (postmaster and its children)\n", (u + s - t) * 1e6 / hz / ok, t * 1e6 / hz / ok }'
	echo "PostgreSQL audit: ${pg_batches:-?} COPYs for ${pg_records:-?} records ($(awk -v r="${pg_records:-0}" -v b="${pg_batches:-0}" 'BEGIN { if (b > 0) printf "%.1f", r / b; else print "?" }') per COPY)"
fi
echo "audit records: $audit_lines (requests served: ${sum_ok["popconnect gateway"]} ok + ${sum_err["popconnect gateway"]} errors; $audit_lines_running flushed before shutdown)"
if [ "$PIN_DATABASE" = 1 ]; then
	echo
	echo "CPUs each part may run on (taskset -p, every thread):"
	for p in "${pins[@]}"; do printf '  %-34s %s\n' "${p%%|*}" "${p#*|}"; done
	echo "busy share of each CPU during each target's legs (whole machine, other sessions included):"
	for t in "${targets[@]}"; do
		name=${t%%|*}
		awk -v name="$name" -v b0="${pin_busy0[$name]}" -v t0="${pin_total0[$name]}" -v b1="${pin_busy1[$name]}" -v t1="${pin_total1[$name]}" \
			-v c0="$pin_request_cpu" -v c1="$pin_database_cpu" \
			'BEGIN { printf "  %-34s CPU %d %3.0f %%   CPU %d %3.0f %%\n", name, c0, (t0 > 0 ? 100 * b0 / t0 : 0), c1, (t1 > 0 ? 100 * b1 / t1 : 0) }'
	done
	echo "(the CPU µs per request above add the gateway's and the database's: pinned, they ran on different CPUs, and only the gateway's competed with the request path)"
fi
# nproc counts the CPUs this shell may run on: one, pinned.
cpus=$(nproc)
if [ "$PIN_DATABASE" = 1 ]; then cpus="$(nproc --all) (pinned as above)"; fi
echo "machine: $cpus CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(date -u +%Y-%m-%dT%H:%MZ)"
