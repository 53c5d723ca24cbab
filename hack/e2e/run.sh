#!/usr/bin/env bash
# `make e2e`: builds the images, brings the single-node cluster up, runs the
# e2e tests (go test -tags e2e ./test/e2e/) and always brings the cluster
# down again, even when a test fails or the run is interrupted. E2E_KEEP=1
# leaves it running (hack/e2e/cluster.sh down stops it).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "${HERE}/../.." && pwd)"
RUN="${E2E_RUN_DIR:-/tmp/popconnect-e2e}"
export E2E_RUN_DIR="${RUN}"
log() { echo "e2e: $*" >&2; }

start=$SECONDS
NODE_BIN="$("${HERE}/node-binaries.sh")"
log "node binaries ready ($((SECONDS - start))s)"
"${HERE}/images.sh"
log "images ready ($((SECONDS - start))s)"

finish() {
  local rc=$?
  if [[ "${E2E_KEEP:-}" == 1 ]]; then
    log "cluster left running (E2E_KEEP=1): $("${HERE}/cluster.sh" env); stop it with hack/e2e/cluster.sh down"
  else
    "${HERE}/cluster.sh" down
  fi
  log "finished in $((SECONDS - start))s (exit ${rc}); logs in ${RUN}/logs"
  exit "${rc}"
}
trap finish EXIT
trap 'exit 130' INT TERM
"${HERE}/cluster.sh" up
log "cluster up ($((SECONDS - start))s)"

cd "${REPO}"
KUBECONFIG="${RUN}/admin.kubeconfig" KUBECTL="${NODE_BIN}/kubectl" HELM="${HELM:-${REPO}/bin/helm}" \
  go test -tags e2e -count=1 -v -timeout "${E2E_TIMEOUT:-30m}" ./test/e2e/ 2>&1 | tee "${RUN}/logs/go-test.log"
