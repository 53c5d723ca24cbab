#!/usr/bin/env bash
# Builds the envtest control-plane binaries (kube-apiserver, etcd) from source
# through the Go module proxy, because their usual download site is not
# reachable from our build machines. The binaries are cached outside the clone,
# where setup-envtest keeps them, so fresh clones and CI reuse them:
#   ${ENVTEST_ROOT}/k8s/<version>-linux-<arch>/{kube-apiserver,etcd,kubectl}
# A build is skipped when the binary is already there.
#
# Usage: hack/envtest-binaries.sh            build what is missing, print the dir
#        hack/envtest-binaries.sh --print    only print the dir
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-1.37.2}"
ETCD_VERSION="${ETCD_VERSION:-3.7.3}"
GOARCH="$(go env GOARCH)"
GOOS="$(go env GOOS)"
ENVTEST_ROOT="${ENVTEST_ROOT:-${XDG_DATA_HOME:-$HOME/.local/share}/kubebuilder-envtest}"
ASSETS="${ENVTEST_ROOT}/k8s/${K8S_VERSION}-${GOOS}-${GOARCH}"

if [[ "${1:-}" == "--print" ]]; then
  echo "${ASSETS}"
  exit 0
fi

mkdir -p "${ASSETS}"
log() { echo "envtest-binaries: $*" >&2; }
# shellcheck source=lib/k8s-module.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/k8s-module.sh"

k8s_lock_cache "${ASSETS}"

build_kube_apiserver() {
  local out="${ASSETS}/kube-apiserver"
  if [[ -x "${out}" ]]; then return 0; fi
  log "building kube-apiserver v${K8S_VERSION} from the Go module proxy (about 6 minutes on 2 cores, once)"
  local start=$SECONDS work
  work="$(mktemp -d)"
  trap 'rm -rf "${work}"' RETURN
  (
    cd "${work}"
    go mod init envtest.local/kube-apiserver >/dev/null 2>&1
    go mod edit -require="k8s.io/kubernetes@v${K8S_VERSION}"
    k8s_pin_staging
    cat > main.go <<'GO'
package main

import _ "k8s.io/kubernetes/cmd/kube-apiserver/app"
GO
    GOFLAGS=-mod=mod go mod tidy >/dev/null 2>&1 || true
    local pkg="k8s.io/kubernetes/cmd/kube-apiserver"
    CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "$(k8s_ldflags)" -o "${out}.tmp" "${pkg}"
  )
  mv "${out}.tmp" "${out}"
  log "kube-apiserver built in $((SECONDS - start))s"
}

build_etcd() {
  local out="${ASSETS}/etcd"
  if [[ -x "${out}" ]]; then return 0; fi
  log "building etcd v${ETCD_VERSION} from the Go module proxy (about 1 minute on 2 cores, once)"
  local start=$SECONDS work
  work="$(mktemp -d)"
  trap 'rm -rf "${work}"' RETURN
  (
    cd "${work}"
    # A throw-away wrapper module: etcd's own go.mod has replace directives,
    # so `go install module@version` refuses it.
    go mod init envtest.local/etcd >/dev/null 2>&1
    go mod edit -require="go.etcd.io/etcd/server/v3@v${ETCD_VERSION}"
    cat > main.go <<'GO'
package main

import _ "go.etcd.io/etcd/server/v3/etcdmain"
GO
    GOFLAGS=-mod=mod go mod tidy >/dev/null 2>&1 || true
    CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath \
      -ldflags "-s -w" -o "${out}.tmp" go.etcd.io/etcd/server/v3
  )
  mv "${out}.tmp" "${out}"
  log "etcd built in $((SECONDS - start))s"
}

link_kubectl() {
  # envtest only needs kubectl for its optional helpers; reuse the machine's.
  local out="${ASSETS}/kubectl"
  if [[ -e "${out}" ]]; then return 0; fi
  if command -v kubectl >/dev/null 2>&1; then
    ln -sf "$(command -v kubectl)" "${out}"
  fi
}

build_etcd
build_kube_apiserver
link_kubectl
echo "${ASSETS}"
