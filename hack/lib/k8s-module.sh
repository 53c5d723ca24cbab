# shellcheck shell=bash
# Building Kubernetes commands from the Go module proxy: shared by
# hack/envtest-binaries.sh and hack/e2e/node-binaries.sh. Source it with
# K8S_VERSION set.

# k8s_pin_staging, run in a throw-away module that requires
# k8s.io/kubernetes@v$K8S_VERSION: k8s.io/kubernetes requires its staging
# modules at v0.0.0 and maps them to ./staging with replace directives,
# which a dependent module ignores, so each one is pinned to its published
# version instead.
k8s_pin_staging() {
  go mod download -json "k8s.io/kubernetes@v${K8S_VERSION}" >/dev/null
  local modfile minor="0.${K8S_VERSION#1.}"
  modfile="$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/v${K8S_VERSION}.mod"
  grep -E '^\s*k8s\.io/[a-z0-9-]+ => \./staging/' "${modfile}" | awk '{print $1}' | while read -r mod; do
    go mod edit -replace="${mod}=${mod}@v${minor}"
  done
}

# k8s_ldflags stamps the version as the Kubernetes release build does, so
# that the binaries report v$K8S_VERSION and version skew checks pass.
k8s_ldflags() {
  local major="${K8S_VERSION%%.*}" minorv ldflags="-s -w"
  minorv="$(echo "${K8S_VERSION}" | cut -d. -f2)"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X ${p}.gitVersion=v${K8S_VERSION} -X ${p}.gitMajor=${major} -X ${p}.gitMinor=${minorv}"
    ldflags+=" -X ${p}.gitTreeState=clean -X ${p}.buildDate=1970-01-01T00:00:00Z"
  done
  echo "${ldflags}"
}

# k8s_lock_cache DIR holds DIR's build lock for the rest of the script (fd
# 9): one build at a time per cache, so that a second caller (another
# clone, a parallel CI job) waits for the first and then finds the binaries
# there, instead of compiling the same commands beside it on the same
# cores. The caller defines log.
k8s_lock_cache() {
  command -v flock >/dev/null 2>&1 || return 0
  exec 9>"$1/.build.lock"
  if ! flock -n 9; then
    log "another build of these binaries is running; waiting for it"
    flock 9
  fi
}
