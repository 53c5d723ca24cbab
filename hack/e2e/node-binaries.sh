#!/usr/bin/env bash
# Builds the node half of the e2e cluster from the Go module proxy and installs
# the host parts from Debian, because no kind/minikube download and no
# container engine are reachable from our build machines.
#
#   ${E2E_ROOT}/k8s/<version>-linux-<arch>/
#       kubelet kube-controller-manager kube-scheduler kube-proxy kubectl
#       coredns   (only the plugins a cluster's DNS needs)
#       kube-router (run with only its NetworkPolicy controller)
#
# The directory lives outside the clone, beside envtest's cache, so fresh
# clones and CI reuse it; a binary is built only when it is missing. The
# control plane (kube-apiserver, etcd) comes from hack/envtest-binaries.sh.
# Debian packages (containerd, runc, CNI plugins, iptables, conntrack) are
# installed with apt-get when their commands are missing.
#
# Usage: hack/e2e/node-binaries.sh            build/install what is missing, print the dir
#        hack/e2e/node-binaries.sh --print    only print the dir
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-1.37.2}"
# CoreDNS v1.15.0: the newest release; the advisories listed against earlier
# ones (fixed up to v1.14.6) do not apply to it.
COREDNS_VERSION="${COREDNS_VERSION:-1.15.0}"
# kube-router v2.1.0: the only version the Go module proxy serves here. The
# advisories against it (GO-2026-4724, its service proxy; GO-2026-5653, its
# BGP router) are in the controllers cluster.sh does not run; see
# docs/development.md, "NetworkPolicy enforcement".
KUBE_ROUTER_VERSION="${KUBE_ROUTER_VERSION:-2.1.0}"
GOARCH="$(go env GOARCH)"
GOOS="$(go env GOOS)"
DATA_HOME="${XDG_DATA_HOME:-$HOME/.local/share}"
E2E_ROOT="${E2E_ROOT:-${DATA_HOME}/popconnect-e2e}"
BIN="${E2E_ROOT}/k8s/${K8S_VERSION}-${GOOS}-${GOARCH}"

if [[ "${1:-}" == "--print" ]]; then
  echo "${BIN}"
  exit 0
fi

mkdir -p "${BIN}"
log() { echo "node-binaries: $*" >&2; }
# shellcheck source=../lib/k8s-module.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/k8s-module.sh"

k8s_lock_cache "${BIN}"

# Builds are background work on a shared 2-core machine: lowest priority.
NICE=(nice -n 19)

install_debian_packages() {
  local want=()
  command -v containerd >/dev/null 2>&1 || want+=(containerd)
  command -v runc >/dev/null 2>&1 || want+=(runc)
  [[ -x /usr/lib/cni/bridge ]] || want+=(containernetworking-plugins)
  command -v iptables >/dev/null 2>&1 || want+=(iptables)
  command -v conntrack >/dev/null 2>&1 || want+=(conntrack)
  # nft shows what kube-proxy programmed (iptables here is the nft backend).
  command -v nft >/dev/null 2>&1 || want+=(nftables)
  # kube-router's NetworkPolicy controller keeps its address sets with ipset.
  command -v ipset >/dev/null 2>&1 || want+=(ipset)
  if ((${#want[@]} == 0)); then return 0; fi
  log "installing Debian packages: ${want[*]}"
  if [[ "$(id -u)" != 0 ]]; then
    log "not root: install them yourself (apt-get install ${want[*]})"
    return 1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${want[@]}" >/dev/null \
    || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${want[@]}" >/dev/null; }
  # The package enables containerd's own service where systemd runs; the e2e
  # cluster starts its own containerd on its own socket and does not use it.
}

build_k8s_node() {
  local cmds=(kubelet kube-controller-manager kube-scheduler kube-proxy kubectl) missing=() c
  for c in "${cmds[@]}"; do [[ -x "${BIN}/${c}" ]] || missing+=("${c}"); done
  if ((${#missing[@]} == 0)); then return 0; fi
  log "building ${missing[*]} v${K8S_VERSION} from the Go module proxy (one go build, about 15 minutes on 2 cores, once)"
  local start=$SECONDS work
  work="$(mktemp -d)"
  trap 'rm -rf "${work}"' RETURN
  (
    cd "${work}"
    go mod init e2e.local/k8s-node >/dev/null 2>&1
    go mod edit -require="k8s.io/kubernetes@v${K8S_VERSION}"
    k8s_pin_staging
    {
      echo "package main"
      echo
      echo "import ("
      for c in "${missing[@]}"; do
        # Only for go mod tidy: kubectl's command lives in its staging module.
        case "${c}" in
          kubectl) echo "	_ \"k8s.io/kubectl/pkg/cmd\"" ;;
          *) echo "	_ \"k8s.io/kubernetes/cmd/${c}/app\"" ;;
        esac
      done
      echo ")"
    } > main.go
    GOFLAGS=-mod=mod go mod tidy >/dev/null 2>&1 || true
    mkdir -p out
    local pkgs=()
    for c in "${missing[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/${c}"); done
    # One go build for all of them: they share most packages, which are then
    # compiled once.
    CGO_ENABLED=0 GOFLAGS=-mod=mod "${NICE[@]}" go build -trimpath -ldflags "$(k8s_ldflags)" -o out/ "${pkgs[@]}"
    for c in "${missing[@]}"; do mv "out/${c}" "${BIN}/${c}"; done
  )
  log "${missing[*]} built in $((SECONDS - start))s"
}

build_coredns() {
  local out="${BIN}/coredns"
  if [[ -x "${out}" ]]; then return 0; fi
  log "building coredns v${COREDNS_VERSION} from the Go module proxy (about 3 minutes on 2 cores, once)"
  local start=$SECONDS work
  work="$(mktemp -d)"
  trap 'rm -rf "${work}"' RETURN
  (
    cd "${work}"
    go mod init e2e.local/coredns >/dev/null 2>&1
    go mod edit -require="github.com/coredns/coredns@v${COREDNS_VERSION}"
    # coredns.go with only the plugins the cluster's Corefile uses
    # (hack/e2e/coredns.yaml): not the cloud providers' DNS plugins, which
    # would triple the build.
    cat > main.go <<'GO'
package main

import (
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/ready"
)

func main() { coremain.Run() }
GO
    GOFLAGS=-mod=mod go mod tidy >/dev/null 2>&1 || true
    CGO_ENABLED=0 GOFLAGS=-mod=mod "${NICE[@]}" go build -trimpath -ldflags "-s -w" -o "${out}.tmp" .
  )
  mv "${out}.tmp" "${out}"
  log "coredns built in $((SECONDS - start))s"
}

build_kube_router() {
  local out="${BIN}/kube-router"
  if [[ -x "${out}" ]]; then return 0; fi
  log "building kube-router v${KUBE_ROUTER_VERSION} from the Go module proxy (about 3 minutes on 2 cores, once)"
  local start=$SECONDS gobin
  gobin="$(mktemp -d)"
  trap 'rm -rf "${gobin}"' RETURN
  # go install pkg@version builds with the release's own go.mod: the
  # dependency versions kube-router was released and tested with.
  local v="github.com/cloudnativelabs/kube-router/v2/pkg/version"
  CGO_ENABLED=0 GOBIN="${gobin}" "${NICE[@]}" go install -trimpath \
    -ldflags "-s -w -X ${v}.Version=v${KUBE_ROUTER_VERSION} -X ${v}.BuildDate=1970-01-01T00:00:00Z" \
    "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router@v${KUBE_ROUTER_VERSION}"
  mv "${gobin}/kube-router" "${out}"
  log "kube-router built in $((SECONDS - start))s"
}

install_debian_packages
build_kube_router
build_k8s_node
build_coredns
echo "${BIN}"
