#!/usr/bin/env bash
# A single-node Kubernetes cluster from parts, for `make e2e`:
#   etcd, kube-apiserver            hack/envtest-binaries.sh (Go module proxy)
#   kube-controller-manager, kube-scheduler, kubelet, kube-proxy
#                                   hack/e2e/node-binaries.sh (Go module proxy)
#   containerd, runc, CNI plugins   Debian (node-binaries.sh installs them)
#   kube-router (NetworkPolicy controller only)
#                                   hack/e2e/node-binaries.sh (Go module proxy)
#
# Everything lives under one run directory (E2E_RUN_DIR, default
# /tmp/popconnect-e2e): certificates, kubeconfigs, etcd's data, containerd's
# root, state and socket, the kubelet's root, CNI config, logs. The cluster
# shares the host with other work, so it uses ports of its own, its own
# bridge (popc-e2e0, 10.244.0.1/24), and binds its servers to the bridge
# address or to 127.0.0.1, never to the host's interfaces.
#
# Usage: hack/e2e/cluster.sh up      start it (stops what it started if a step fails)
#        hack/e2e/cluster.sh down    stop every process, unmount, remove the bridge and rules
#        hack/e2e/cluster.sh env     print the KUBECONFIG line for a shell
#
# `up` imports every image tarball in ${E2E_RUN_DIR}/images (hack/e2e/images.sh
# writes them there) into containerd.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "${HERE}/../.." && pwd)"
RUN="${E2E_RUN_DIR:-/tmp/popconnect-e2e}"
NODE="${E2E_NODE_NAME:-popconnect-e2e}"
BRIDGE="popc-e2e0"
NODE_IP="10.244.0.1"
POD_SUBNET="10.244.0.0/24"
CLUSTER_CIDR="10.244.0.0/16"
SERVICE_CIDR="10.96.0.0/16"
KUBERNETES_SVC_IP="10.96.0.1"
DNS_SVC_IP="10.96.0.10"
# Ports below the ephemeral range, so they do not collide with the random
# ports of other suites on the machine.
ETCD_PORT=12379
ETCD_PEER_PORT=12380
APISERVER_PORT=16443
KUBELET_PORT=11250
KUBELET_HEALTHZ_PORT=11248
KCM_PORT=11257
SCHEDULER_PORT=11259
PROXY_HEALTHZ_PORT=11256
PROXY_METRICS_PORT=11249
PAUSE_IMAGE="popconnect.local/pause:e2e"
FWD_CHAIN="POPC-E2E-FORWARD"

log() { echo "cluster: $*" >&2; }
die() { log "$*"; exit 1; }

CONTAINERD_SOCK="${RUN}/containerd/containerd.sock"
ctr_() { ctr --address "${CONTAINERD_SOCK}" -n k8s.io "$@"; }
kubectl_() { "${KUBECTL:-${NODE_BIN}/kubectl}" --kubeconfig "${RUN}/admin.kubeconfig" "$@"; }

# start NAME CMD...: runs CMD in the background, its output in logs/NAME.log,
# its pid in pids/NAME.pid.
start() {
  local name=$1; shift
  log "starting ${name}"
  setsid "$@" >"${RUN}/logs/${name}.log" 2>&1 </dev/null &
  echo $! >"${RUN}/pids/${name}.pid"
}

# wait_for WHAT SECONDS CMD...: polls CMD every half second.
wait_for() {
  local what=$1 secs=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      log "${what} not ready after ${secs}s"
      return 1
    fi
    sleep 0.5
  done
}

alive() { [[ -f "${RUN}/pids/$1.pid" ]] && kill -0 "$(cat "${RUN}/pids/$1.pid")" 2>/dev/null; }

pki() {
  local d="${RUN}/pki"
  mkdir -p "${d}"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=popconnect-e2e-ca" \
    -keyout "${d}/ca.key" -out "${d}/ca.crt" 2>/dev/null
  # The API server's serving certificate: pods reach it as the kubernetes
  # Service (10.96.0.1), host processes on the bridge address.
  cat >"${d}/apiserver.ext" <<EXT
subjectAltName=DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,IP:${KUBERNETES_SVC_IP},IP:${NODE_IP},IP:127.0.0.1
extendedKeyUsage=serverAuth
EXT
  openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" \
    -keyout "${d}/apiserver.key" -out "${d}/apiserver.csr" 2>/dev/null
  openssl x509 -req -in "${d}/apiserver.csr" -CA "${d}/ca.crt" -CAkey "${d}/ca.key" -CAcreateserial \
    -days 2 -extfile "${d}/apiserver.ext" -out "${d}/apiserver.crt" 2>/dev/null
  # The API server's client certificate for the kubelet (logs, exec).
  echo "extendedKeyUsage=clientAuth" >"${d}/client.ext"
  openssl req -newkey rsa:2048 -nodes -subj "/O=system:masters/CN=kube-apiserver-kubelet-client" \
    -keyout "${d}/apiserver-kubelet-client.key" -out "${d}/apiserver-kubelet-client.csr" 2>/dev/null
  openssl x509 -req -in "${d}/apiserver-kubelet-client.csr" -CA "${d}/ca.crt" -CAkey "${d}/ca.key" \
    -CAcreateserial -days 2 -extfile "${d}/client.ext" -out "${d}/apiserver-kubelet-client.crt" 2>/dev/null
  # Service account tokens.
  openssl genrsa -out "${d}/sa.key" 2048 2>/dev/null
  openssl rsa -in "${d}/sa.key" -pubout -out "${d}/sa.pub" 2>/dev/null
  # Every host component authenticates with a static token (user,uid,groups).
  : >"${d}/tokens.csv"
  local who user groups token
  for who in admin kubelet controller-manager scheduler proxy kube-router; do
    case "${who}" in
      admin) user=popconnect-e2e-admin groups=system:masters ;;
      kubelet) user="system:node:${NODE}" groups=system:nodes ;;
      controller-manager) user=system:kube-controller-manager groups= ;;
      scheduler) user=system:kube-scheduler groups= ;;
      proxy) user=system:kube-proxy groups= ;;
      kube-router) user=system:kube-router groups= ;;
    esac
    token="$(openssl rand -hex 24)"
    echo "${token},${user},${user},\"${groups}\"" >>"${d}/tokens.csv"
    kubeconfig "${who}" "${token}"
  done
}

# kubeconfig WHO TOKEN writes ${RUN}/WHO.kubeconfig.
kubeconfig() {
  cat >"${RUN}/$1.kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster:
    server: https://${NODE_IP}:${APISERVER_PORT}
    certificate-authority: ${RUN}/pki/ca.crt
users:
- name: $1
  user:
    token: $2
contexts:
- name: e2e
  context: {cluster: e2e, user: $1}
current-context: e2e
KC
}

network() {
  # Our own bridge with the node's address: the API server and the kubelet
  # listen on it, and the CNI bridge plugin attaches pods to it.
  if ! ip link show "${BRIDGE}" >/dev/null 2>&1; then
    ip link add "${BRIDGE}" type bridge
    touch "${RUN}/state/bridge-created"
  fi
  ip addr replace "${NODE_IP}/24" dev "${BRIDGE}"
  ip link set "${BRIDGE}" up
  # Service traffic from a pod is DNATed on the host and forwarded back onto
  # the bridge, which needs forwarding; remember the old value for `down`.
  cat /proc/sys/net/ipv4/ip_forward >"${RUN}/state/ip_forward"
  echo 1 >/proc/sys/net/ipv4/ip_forward
  # Forwarding is for traffic between pods only: nothing from the bridge
  # leaves through the host's other interfaces, and nothing comes in.
  iptables -w -N "${FWD_CHAIN}" 2>/dev/null || iptables -w -F "${FWD_CHAIN}"
  iptables -w -A "${FWD_CHAIN}" -i "${BRIDGE}" ! -o "${BRIDGE}" -j DROP
  iptables -w -A "${FWD_CHAIN}" ! -i "${BRIDGE}" -o "${BRIDGE}" -j DROP
  iptables -w -C FORWARD -j "${FWD_CHAIN}" 2>/dev/null || iptables -w -I FORWARD 1 -j "${FWD_CHAIN}"

  mkdir -p "${RUN}/cni/net.d" "${RUN}/cni/ipam"
  cat >"${RUN}/cni/net.d/10-popconnect-e2e.conflist" <<CNI
{
  "cniVersion": "1.0.0",
  "name": "popconnect-e2e",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "${BRIDGE}",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "${RUN}/cni/ipam",
        "ranges": [[{"subnet": "${POD_SUBNET}", "gateway": "${NODE_IP}"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    }
  ]
}
CNI
}

containerd_up() {
  mkdir -p "${RUN}/containerd"
  cat >"${RUN}/containerd/config.toml" <<TOML
version = 2
root = "${RUN}/containerd/root"
state = "${RUN}/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "${CONTAINERD_SOCK}"
[ttrpc]
  address = "${CONTAINERD_SOCK}.ttrpc"
[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "${RUN}/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${PAUSE_IMAGE}"
  # Root in this VM may not lower its oom_score_adj; without this runc fails
  # with "can't get final child's PID from pipe: EOF".
  restrict_oom_score_adj = true
  # Pod network namespaces under our state dir, not /var/run/netns.
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "${RUN}/cni/net.d"
TOML
  start containerd containerd --config "${RUN}/containerd/config.toml"
  wait_for containerd 30 ctr_ version
  local img
  for img in "${RUN}"/images/*.tar; do
    [[ -e "${img}" ]] || continue
    log "importing $(basename "${img}")"
    ctr_ images import --all-platforms "${img}" >/dev/null
  done
  ctr_ images ls -q | grep -x "${PAUSE_IMAGE}" >/dev/null || die "no ${PAUSE_IMAGE} in containerd: run hack/e2e/images.sh first"
}

control_plane_up() {
  mkdir -p "${RUN}/etcd"
  start etcd "${ENVTEST_BIN}/etcd" --name e2e --data-dir "${RUN}/etcd" \
    --listen-client-urls "http://127.0.0.1:${ETCD_PORT}" --advertise-client-urls "http://127.0.0.1:${ETCD_PORT}" \
    --listen-peer-urls "http://127.0.0.1:${ETCD_PEER_PORT}" --initial-advertise-peer-urls "http://127.0.0.1:${ETCD_PEER_PORT}" \
    --initial-cluster "e2e=http://127.0.0.1:${ETCD_PEER_PORT}" --unsafe-no-fsync
  start kube-apiserver "${ENVTEST_BIN}/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:${ETCD_PORT}" \
    --bind-address "${NODE_IP}" --advertise-address "${NODE_IP}" --secure-port "${APISERVER_PORT}" \
    --cert-dir "${RUN}/pki" --tls-cert-file "${RUN}/pki/apiserver.crt" --tls-private-key-file "${RUN}/pki/apiserver.key" \
    --client-ca-file "${RUN}/pki/ca.crt" --token-auth-file "${RUN}/pki/tokens.csv" \
    --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
    --service-cluster-ip-range "${SERVICE_CIDR}" --allow-privileged=true \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "${RUN}/pki/sa.pub" --service-account-signing-key-file "${RUN}/pki/sa.key" \
    --kubelet-client-certificate "${RUN}/pki/apiserver-kubelet-client.crt" \
    --kubelet-client-key "${RUN}/pki/apiserver-kubelet-client.key" \
    --kubelet-preferred-address-types InternalIP --profiling=false
  wait_for kube-apiserver 90 kubectl_ get --raw /readyz
  start kube-controller-manager "${NODE_BIN}/kube-controller-manager" \
    --kubeconfig "${RUN}/controller-manager.kubeconfig" \
    --authentication-kubeconfig "${RUN}/controller-manager.kubeconfig" \
    --authorization-kubeconfig "${RUN}/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "${KCM_PORT}" --leader-elect=false \
    --service-account-private-key-file "${RUN}/pki/sa.key" --root-ca-file "${RUN}/pki/ca.crt" \
    --use-service-account-credentials=true --cluster-name popconnect-e2e \
    --service-cluster-ip-range "${SERVICE_CIDR}" --allocate-node-cidrs=false \
    --cluster-signing-cert-file "${RUN}/pki/ca.crt" --cluster-signing-key-file "${RUN}/pki/ca.key"
  start kube-scheduler "${NODE_BIN}/kube-scheduler" \
    --kubeconfig "${RUN}/scheduler.kubeconfig" \
    --authentication-kubeconfig "${RUN}/scheduler.kubeconfig" \
    --authorization-kubeconfig "${RUN}/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "${SCHEDULER_PORT}" --leader-elect=false
}

node_up() {
  mkdir -p "${RUN}/kubelet"
  cat >"${RUN}/kubelet/config.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: ${NODE_IP}
port: ${KUBELET_PORT}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: ${KUBELET_HEALTHZ_PORT}
containerRuntimeEndpoint: unix://${CONTAINERD_SOCK}
# The host is cgroup v1 (hybrid): kubelet 1.35+ refuses it unless told.
failCgroupV1: false
cgroupDriver: cgroupfs
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: ${RUN}/pki/ca.crt}
authorization:
  mode: Webhook
clusterDomain: cluster.local
clusterDNS: [${DNS_SVC_IP}]
resolvConf: /etc/resolv.conf
failSwapOn: false
serializeImagePulls: false
# The imported images are all there is: never collect them, never evict on
# a busy shared disk.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: "100Mi"
  nodefs.available: "1%"
  nodefs.inodesFree: "1%"
  imagefs.available: "1%"
YAML
  start kubelet "${NODE_BIN}/kubelet" --config "${RUN}/kubelet/config.yaml" \
    --kubeconfig "${RUN}/kubelet.kubeconfig" --root-dir "${RUN}/kubelet" \
    --cert-dir "${RUN}/kubelet/pki" --hostname-override "${NODE}" --node-ip "${NODE_IP}"

  cat >"${RUN}/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection:
  kubeconfig: ${RUN}/proxy.kubeconfig
hostnameOverride: ${NODE}
bindAddress: ${NODE_IP}
healthzBindAddress: 127.0.0.1:${PROXY_HEALTHZ_PORT}
metricsBindAddress: 127.0.0.1:${PROXY_METRICS_PORT}
clusterCIDR: ${CLUSTER_CIDR}
nodePortAddresses: ["${NODE_IP}/32"]
iptables:
  # true would set route_localnet on the host.
  localhostNodePorts: false
conntrack:
  # 0: leave the host's conntrack sysctls alone.
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
YAML
  start kube-proxy "${NODE_BIN}/kube-proxy" --config "${RUN}/kube-proxy.yaml"
  wait_for "node ${NODE} Ready" 120 kubectl_ wait --for=condition=Ready "node/${NODE}" --timeout=2s
}

# netpol_up runs kube-router with only its NetworkPolicy controller (iptables
# and ipsets): no BGP router, no service proxy (kube-proxy is the proxy), no
# health or metrics server (its health server would listen on every host
# interface). It needs the node object, so it starts once the node is Ready.
netpol_up() {
  kubectl_ apply -f "${HERE}/kube-router-rbac.yaml" >/dev/null
  start kube-router "${NODE_BIN}/kube-router" --kubeconfig "${RUN}/kube-router.kubeconfig" \
    --hostname-override "${NODE}" \
    --run-firewall=true --run-router=false --run-service-proxy=false --enable-cni=false \
    --health-port=0 --metrics-port=0 \
    --service-cluster-ip-range "${SERVICE_CIDR}"
  # Its chain hooked into FORWARD is the sign that it synced once; until
  # then no policy is enforced.
  wait_for "kube-router's NetworkPolicy chains" 60 netpol_synced
}

netpol_synced() {
  alive kube-router && iptables -w -S FORWARD | grep -q -- '-j KUBE-ROUTER-FORWARD'
}

# netpol_down removes what kube-router's NetworkPolicy controller added to
# the filter table (its chains and the jumps to them from INPUT, FORWARD and
# OUTPUT) and its ipsets. kube-router --cleanup-config does not do it in
# v2.1.0 (its cleanup works on the state of a running controller), so it is
# done here, in one iptables-restore.
netpol_down() {
  local chains
  chains="$(iptables-save -t filter 2>/dev/null | sed -n -E 's/^:((KUBE-ROUTER-|KUBE-POD-FW-|KUBE-NWPLCY-)[^ ]*) .*/\1/p')"
  if [[ -n "${chains}" ]]; then
    {
      echo "*filter"
      iptables-save -t filter | grep -E '^-A (INPUT|FORWARD|OUTPUT) .*-j KUBE-ROUTER-' | sed 's/^-A /-D /'
      local c
      for c in ${chains}; do echo "-F ${c}"; done
      for c in ${chains}; do echo "-X ${c}"; done
      echo "COMMIT"
    } | iptables-restore -w --noflush
  fi
  # Only names of kube-router's form (a prefix and 16 base32 characters):
  # the host may hold other ipsets.
  if command -v ipset >/dev/null; then
    local set
    for set in $(ipset list -n 2>/dev/null | grep -E '^(KUBE-SRC-|KUBE-DST-|TMP-)[A-Z2-7]{16}$'); do ipset destroy "${set}"; done
  fi
}

dns_up() {
  if ! ctr_ images ls -q | grep -x "popconnect.local/coredns:e2e" >/dev/null; then
    log "no coredns image (hack/e2e/images.sh): the cluster has no DNS"
    return 0
  fi
  log "starting coredns"
  kubectl_ apply -f "${HERE}/coredns.yaml" >/dev/null
  kubectl_ -n kube-system rollout status deployment/coredns --timeout=120s >/dev/null
}

up() {
  [[ "$(id -u)" == 0 ]] || die "the kubelet and containerd need root"
  if [[ -d "${RUN}/pids" ]] && ls "${RUN}"/pids/*.pid >/dev/null 2>&1; then
    log "a cluster seems to be running in ${RUN}; stopping it first"
    down
  fi
  # The binaries are built beforehand (make e2e, or the two scripts): up
  # never starts a half-hour compile by surprise.
  ENVTEST_BIN="$(K8S_VERSION="${K8S_VERSION:-1.37.2}" "${REPO}/hack/envtest-binaries.sh" --print)"
  NODE_BIN="$("${HERE}/node-binaries.sh" --print)"
  local b
  for b in "${ENVTEST_BIN}/etcd" "${ENVTEST_BIN}/kube-apiserver" "${NODE_BIN}/kubelet" "${NODE_BIN}/kube-proxy" \
    "${NODE_BIN}/kube-controller-manager" "${NODE_BIN}/kube-scheduler" "${NODE_BIN}/kubectl" "${NODE_BIN}/kube-router"; do
    [[ -x "${b}" ]] || die "${b} is missing: run make envtest and hack/e2e/node-binaries.sh"
  done
  for b in containerd runc ctr iptables ipset; do
    command -v "${b}" >/dev/null || die "${b} is missing: run hack/e2e/node-binaries.sh"
  done
  local images="${RUN}/images"
  rm -rf "${RUN:?}/logs" "${RUN}/pids" "${RUN}/state" "${RUN}/etcd" "${RUN}/pki" "${RUN}/kubelet" \
    "${RUN}/containerd" "${RUN}/cni"
  mkdir -p "${RUN}/logs" "${RUN}/pids" "${RUN}/state" "${images}"
  # Whatever step fails, stop what was started (and say where the logs are).
  trap 'rc=$?; if ((rc != 0)); then log "start failed; stopping what was started"; down; fi' EXIT
  local t0=$SECONDS
  pki
  network
  containerd_up
  control_plane_up
  node_up
  netpol_up
  dns_up
  trap - EXIT
  log "up in $((SECONDS - t0))s; export KUBECONFIG=${RUN}/admin.kubeconfig; logs in ${RUN}/logs"
}

stop_pid() {
  local name=$1 pid
  [[ -f "${RUN}/pids/${name}.pid" ]] || return 0
  pid="$(cat "${RUN}/pids/${name}.pid")"
  if kill -0 "${pid}" 2>/dev/null; then
    kill -TERM "${pid}" 2>/dev/null || true
    local i
    for i in $(seq 1 40); do kill -0 "${pid}" 2>/dev/null || break; sleep 0.25; done
    kill -KILL "${pid}" 2>/dev/null || true
  fi
  rm -f "${RUN}/pids/${name}.pid"
}

down() {
  set +e
  log "stopping the cluster in ${RUN}"
  stop_pid kube-router
  stop_pid kube-proxy
  stop_pid kubelet
  # The kubelet is gone; stop the containers it left, through containerd,
  # so their shims exit and their mounts go.
  if alive containerd; then
    local t c
    for t in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks kill -s SIGKILL "${t}" >/dev/null 2>&1; done
    sleep 1
    for t in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks delete -f "${t}" >/dev/null 2>&1; done
    for c in $(ctr_ containers ls -q 2>/dev/null); do ctr_ containers delete "${c}" >/dev/null 2>&1; done
  fi
  stop_pid kube-scheduler
  stop_pid kube-controller-manager
  stop_pid kube-apiserver
  stop_pid etcd
  stop_pid containerd
  # Shims that outlived their containerd: only those started for this run
  # directory's socket, by pid.
  local pid
  for pid in $(pgrep -f -- "-address ${CONTAINERD_SOCK}" 2>/dev/null); do kill -KILL "${pid}" 2>/dev/null; done
  # Everything mounted under the run directory (container rootfs, pod
  # volumes, network namespaces), innermost first.
  local m
  for m in $(awk -v run="${RUN}/" 'index($5, run) == 1 {print $5}' /proc/self/mountinfo | sort -r); do
    umount "${m}" 2>/dev/null || umount -l "${m}" 2>/dev/null
  done
  # kube-proxy's chains (KUBE-*), as kube-proxy itself removes them.
  if [[ -x "${NODE_BIN:-}/kube-proxy" ]] || NODE_BIN="$("${HERE}/node-binaries.sh" --print)"; then
    [[ -x "${NODE_BIN}/kube-proxy" ]] && "${NODE_BIN}/kube-proxy" --cleanup >"${RUN}/logs/kube-proxy-cleanup.log" 2>&1
  fi
  # The kubelet's chains: its canaries, and KUBE-FIREWALL (which drops
  # packets to 127.0.0.0/8 from elsewhere) with its jumps from INPUT and OUTPUT.
  local table ipt
  for ipt in iptables ip6tables; do
    for c in INPUT OUTPUT; do
      while "${ipt}" -w -D "${c}" -j KUBE-FIREWALL 2>/dev/null; do :; done
    done
    "${ipt}" -w -F KUBE-FIREWALL 2>/dev/null && "${ipt}" -w -X KUBE-FIREWALL 2>/dev/null
    for table in mangle nat filter; do
      for c in KUBE-KUBELET-CANARY KUBE-IPTABLES-HINT; do
        "${ipt}" -w -t "${table}" -F "${c}" 2>/dev/null && "${ipt}" -w -t "${table}" -X "${c}" 2>/dev/null
      done
    done
  done
  netpol_down
  while iptables -w -D FORWARD -j "${FWD_CHAIN}" 2>/dev/null; do :; done
  iptables -w -F "${FWD_CHAIN}" 2>/dev/null && iptables -w -X "${FWD_CHAIN}" 2>/dev/null
  if [[ -f "${RUN}/state/ip_forward" ]]; then
    cat "${RUN}/state/ip_forward" >/proc/sys/net/ipv4/ip_forward
    rm -f "${RUN}/state/ip_forward"
  fi
  ip link show "${BRIDGE}" >/dev/null 2>&1 && ip link delete "${BRIDGE}"
  log "stopped; logs are in ${RUN}/logs"
  return 0
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  env) echo "export KUBECONFIG=${RUN}/admin.kubeconfig" ;;
  *) echo "usage: $0 up|down|env" >&2; exit 2 ;;
esac
