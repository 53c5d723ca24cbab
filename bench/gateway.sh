#!/usr/bin/env bash
# Gateway benchmark: the same mTLS lookup workload (GET /v1/citizens/{id},
# random existing citizens, HTTP/1.1 keep-alive) at fixed concurrency against
#   (a) popdb-sim directly (HTTPS),
#   (b) nginx as an mTLS reverse proxy (TLS 1.3, ssl_verify_client on,
#       proxy_pass to a keepalive upstream),
#   (c) the popconnect gateway (mTLS, policy, field filtering, rate limiting
#       with limits set high, audit log written to a file).
# Prints a table (with the CPU each target process spent per request) and the
# ratios. Not part of go test.
#
# Environment: DURATION (20s), CONCURRENCY (64), RECORDS (1000000),
# PROFILE=1 to also write a CPU profile of the gateway run (gateway.pprof in
# the work directory, which is then kept).
set -euo pipefail

DURATION=${DURATION:-20s}
CONCURRENCY=${CONCURRENCY:-64}
RECORDS=${RECORDS:-1000000}
PROFILE=${PROFILE:-0}
PORT_UP=${PORT_UP:-18080}
PORT_UP_TLS=${PORT_UP_TLS:-18081}
PORT_NGINX=${PORT_NGINX:-18443}
PORT_GW=${PORT_GW:-18444}
PORT_GW_METRICS=${PORT_GW_METRICS:-19090}

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	if [ "$PROFILE" = 1 ]; then echo "work directory kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

if ! command -v nginx >/dev/null; then
	apt-get install -y nginx-light >/dev/null
fi

echo "building..." >&2
(cd "$root" && go build -o "$work/" ./cmd/gateway ./cmd/popdb-sim ./bench/loadgen)

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
worker_processes auto;
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
    listen 127.0.0.1:$PORT_NGINX ssl;
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
	echo "port $1 did not open" >&2
	return 1
}

./popdb-sim --listen-address "127.0.0.1:$PORT_UP" --records "$RECORDS" 2>popdb.log &
pids+=($!)
./popdb-sim --listen-address "127.0.0.1:$PORT_UP_TLS" --records "$RECORDS" \
	--tls-cert-file server.crt --tls-key-file server.key 2>popdb-tls.log &
direct_pid=$!
pids+=($direct_pid)
nginx -c "$work/nginx.conf" -p "$work" -g 'daemon off;' &
nginx_pid=$!
pids+=($nginx_pid)
profile_args=()
if [ "$PROFILE" = 1 ]; then profile_args=(--cpu-profile "$work/gateway.pprof"); fi
./gateway --policy-file policy.json --upstream-url "http://127.0.0.1:$PORT_UP" \
	--listen-address "127.0.0.1:$PORT_GW" --metrics-address "127.0.0.1:$PORT_GW_METRICS" \
	--tls-cert-file server.crt --tls-key-file server.key --client-ca-file ca.crt \
	--audit-file "$work/audit.log" --audit-hash-key-file audit.key --log-level warn \
	"${profile_args[@]}" 2>gateway.log &
gw_pid=$!
pids+=($gw_pid)
for p in "$PORT_UP" "$PORT_UP_TLS" "$PORT_NGINX" "$PORT_GW"; do wait_port "$p"; done

load() {
	./loadgen --url "$1" --cert client.crt --key client.key --ca ca.crt \
		--concurrency "$CONCURRENCY" --duration "$DURATION" --records "$RECORDS"
}
field() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" <<<"$2"; }

# CPU time (user + system, in clock ticks) of the given processes, from
# /proc/PID/stat fields 14 and 15. nginx's workers are children of its master.
cpu_ticks() {
	local t=0 p f
	for p in "$@"; do
		read -r -a f <"/proc/$p/stat"
		t=$((t + f[13] + f[14]))
	done
	echo "$t"
}
# load_measured NAME URL PID...: runs the load and appends the CPU the target
# processes spent during it, in microseconds per successful request.
load_measured() {
	local url=$1 before after out
	shift
	before=$(cpu_ticks "$@")
	out=$(load "$url")
	after=$(cpu_ticks "$@")
	awk -v o="$out" -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" -v ok="$(field ok "$out")" \
		'BEGIN { printf "%s cpu_us=%.0f\n", o, (ok > 0 ? t * 1e6 / hz / ok : 0) }'
}

echo "running: $CONCURRENCY connections, $DURATION each..." >&2
direct=$(load_measured "https://127.0.0.1:$PORT_UP_TLS" "$direct_pid")
# shellcheck disable=SC2046 # one PID per word
proxy=$(load_measured "https://127.0.0.1:$PORT_NGINX" "$nginx_pid" $(pgrep -P "$nginx_pid"))
gateway=$(load_measured "https://127.0.0.1:$PORT_GW" "$gw_pid")
audit_lines_running=$(wc -l <audit.log)
kill -TERM "$gw_pid"
wait "$gw_pid" || true
audit_lines=$(wc -l <audit.log)

printf '\n%-28s %10s %9s %9s %8s %12s\n' target "req/s" "p50 ms" "p99 ms" errors "CPU µs/req"
for row in "popdb-sim direct (HTTPS)|$direct" "nginx mTLS proxy|$proxy" "popconnect gateway|$gateway"; do
	name=${row%%|*}
	r=${row#*|}
	printf '%-28s %10s %9s %9s %8s %11s\n' "$name" "$(field rps "$r")" "$(field p50_ms "$r")" "$(field p99_ms "$r")" "$(field errors "$r")" "$(field cpu_us "$r")"
done
g=$(field rps "$gateway")
n=$(field rps "$proxy")
d=$(field rps "$direct")
echo
awk -v g="$g" -v n="$n" -v d="$d" 'BEGIN { printf "gateway/nginx = %.2f   gateway/direct = %.2f\n", g / n, g / d }'
echo "audit records: $audit_lines (requests served: $(field ok "$gateway") ok + $(field errors "$gateway") errors; $audit_lines_running flushed before shutdown)"
echo "machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(date -u +%Y-%m-%dT%H:%MZ)"
