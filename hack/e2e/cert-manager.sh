#!/usr/bin/env bash
# Builds cert-manager's controller, webhook and cainjector for the e2e
# cluster from the cert-manager module that popconnect's go.mod pins, with
# the entry points in hack/e2e/cert-manager (the Go module proxy does not
# serve cert-manager's own cmd/* modules; see that directory's README.md).
#
#   ${E2E_ROOT}/cert-manager/<version>-<entry points' hash>-<os>-<arch>/
#       controller webhook cainjector     (static, CGO_ENABLED=0)
#
# Like node-binaries.sh, the directory is outside the clone and a binary is
# built only when it is missing; a hash of hack/e2e/cert-manager and of this
# script in the directory's name makes a change to either build anew.
#
# Usage: hack/e2e/cert-manager.sh            build what is missing, print the dir
#        hack/e2e/cert-manager.sh --print    only print the dir
#        hack/e2e/cert-manager.sh --version  print the cert-manager version
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "${HERE}/../.." && pwd)"
SRC="${HERE}/cert-manager"
MODULE=github.com/cert-manager/cert-manager
log() { echo "cert-manager: $*" >&2; }

version="$(go -C "${REPO}" list -m -f '{{.Version}}' "${MODULE}")"
if [[ "${1:-}" == "--version" ]]; then
  echo "${version}"
  exit 0
fi
built_from="$(go -C "${SRC}" list -m -f '{{.Version}}' "${MODULE}")"
if [[ "${built_from}" != "${version}" ]]; then
  log "go.mod pins ${MODULE} ${version} but hack/e2e/cert-manager/go.mod has ${built_from}:"
  log "run: cd hack/e2e/cert-manager && go get ${MODULE}@${version} && go mod tidy"
  exit 1
fi
# The cache key: the entry points' sources and this script (their build
# flags), so that a change to either builds anew.
hash="$(cd "${SRC}" && { find . -type f \( -name '*.go' -o -name go.mod -o -name go.sum \) | LC_ALL=C sort \
  | xargs sha256sum; sha256sum < "${HERE}/cert-manager.sh"; } | sha256sum | cut -c1-12)"
DATA_HOME="${XDG_DATA_HOME:-$HOME/.local/share}"
E2E_ROOT="${E2E_ROOT:-${DATA_HOME}/popconnect-e2e}"
BIN="${E2E_ROOT}/cert-manager/${version}-${hash}-$(go env GOOS)-$(go env GOARCH)"
if [[ "${1:-}" == "--print" ]]; then
  echo "${BIN}"
  exit 0
fi

mkdir -p "${BIN}"
# shellcheck source=../lib/k8s-module.sh
source "${HERE}/../lib/k8s-module.sh"
k8s_lock_cache "${BIN}"

cmds=(controller webhook cainjector)
missing=()
for c in "${cmds[@]}"; do [[ -x "${BIN}/${c}" ]] || missing+=("${c}"); done
if ((${#missing[@]} > 0)); then
  log "building ${missing[*]} from ${MODULE} ${version} (once; about 9 minutes of CPU: 5 of wall on 2 quiet cores)"
  start=$SECONDS
  out="$(mktemp -d)"
  trap 'rm -rf "${out}"' EXIT
  pkgs=()
  for c in "${missing[@]}"; do pkgs+=("./${c}"); done
  # One go build for the three: they share most of cert-manager's packages.
  # AppVersion is what they report, in their user agent among others.
  (cd "${SRC}" && CGO_ENABLED=0 nice -n 19 go build -trimpath \
    -ldflags "-s -w -X ${MODULE}/pkg/util.AppVersion=${version}" -o "${out}/" "${pkgs[@]}")
  for c in "${missing[@]}"; do mv "${out}/${c}" "${BIN}/${c}"; done
  log "${missing[*]} built in $((SECONDS - start))s"
fi
echo "${BIN}"
