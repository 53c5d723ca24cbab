#!/usr/bin/env bash
# Builds the e2e images without a container engine: static binaries
# (CGO_ENABLED=0, as in the Dockerfile) packed by hack/e2e/images into OCI
# image tarballs that hack/e2e/cluster.sh imports into its containerd:
#   popconnect.local/popconnect-manager:e2e    /manager
#   popconnect.local/popconnect-gateway:e2e    /gateway
#   popconnect.local/popconnect-gateway:e2e-next  the same, under a second tag:
#                                              the image a rolling update moves to
#   popconnect.local/popconnect-popdb-sim:e2e  /popdb-sim
#   popconnect.local/agency-client:e2e         /agency-client, the agency pods' client
#   popconnect.local/pause:e2e                 the pods' sandbox image
#   popconnect.local/coredns:e2e               the cluster's DNS (node-binaries.sh builds it)
#   popconnect.local/cert-manager-controller:<v>  cert-manager's controller, webhook and
#   popconnect.local/cert-manager-webhook:<v>     cainjector, <v> the version go.mod pins
#   popconnect.local/cert-manager-cainjector:<v>  (hack/e2e/cert-manager.sh builds them)
# Each runs as 65532:65532 with no shell, like the Dockerfile's distroless
# targets.
#
# Usage: hack/e2e/images.sh    writes ${E2E_RUN_DIR:-/tmp/popconnect-e2e}/images/*.tar
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "${HERE}/../.." && pwd)"
RUN="${E2E_RUN_DIR:-/tmp/popconnect-e2e}"
OUT="${RUN}/images"
BIN="${OUT}/bin"
TAG="${E2E_IMAGE_TAG:-e2e}"
mkdir -p "${BIN}"
log() { echo "images: $*" >&2; }

start=$SECONDS
export CGO_ENABLED=0
build() { (cd "$1" && nice -n 19 go build -trimpath -ldflags "-s -w" -o "$2" "$3"); }
build "${REPO}" "${BIN}/manager" .
build "${REPO}" "${BIN}/gateway" ./cmd/gateway
build "${REPO}" "${BIN}/popdb-sim" ./cmd/popdb-sim
build "${HERE}/images" "${BIN}/pause" ./pause
build "${HERE}/images" "${BIN}/agency-client" ./agency-client
build "${HERE}/images" "${BIN}/images" .
log "binaries built in $((SECONDS - start))s"

# image NAME BINARY [TAG]
image() {
  local tag="${3:-${TAG}}"
  "${BIN}/images" -o "${OUT}/$1-${tag}.tar" -ref "popconnect.local/$1:${tag}" -bin "${BIN}/$2=/$2"
}
rm -f "${OUT}"/*.tar
image popconnect-manager manager
image popconnect-gateway gateway
image popconnect-gateway gateway "${TAG}-next"
image popconnect-popdb-sim popdb-sim
image agency-client agency-client
image pause pause
NODE_BIN="$("${HERE}/node-binaries.sh" --print)"
if [[ -x "${NODE_BIN}/coredns" ]]; then
  cp "${NODE_BIN}/coredns" "${BIN}/coredns"
  image coredns coredns
else
  log "no ${NODE_BIN}/coredns (run hack/e2e/node-binaries.sh): no coredns image"
fi
CM_BIN="$("${HERE}/cert-manager.sh")"
CM_VERSION="$("${HERE}/cert-manager.sh" --version)"
for c in controller webhook cainjector; do
  cp "${CM_BIN}/${c}" "${BIN}/cert-manager-${c}"
  image "cert-manager-${c}" "cert-manager-${c}" "${CM_VERSION}"
done
log "images in ${OUT} ($((SECONDS - start))s)"
