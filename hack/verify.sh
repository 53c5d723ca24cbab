#!/usr/bin/env bash
# Regenerates every generated file and fails when the result differs from the
# committed tree, or when Go code is not gofmt'ed: CI runs this so a stale
# CRD, RBAC rule or deepcopy function can never land.
set -euo pipefail
cd "$(dirname "$0")/.."

unformatted="$(gofmt -l $(git ls-files '*.go'))"
if [[ -n "${unformatted}" ]]; then
  echo "verify: these files are not gofmt'ed:" >&2
  echo "${unformatted}" >&2
  exit 1
fi

make --no-print-directory manifests generate >/dev/null
if [[ -f charts/popconnect/Chart.yaml ]] && grep -q '^chart-crds:' Makefile; then
  make --no-print-directory chart-crds >/dev/null
fi
make --no-print-directory api-docs >/dev/null

# Untracked generated files count as a difference too.
git add -N config api charts docs 2>/dev/null || true
if ! git diff --exit-code --stat -- config api charts docs; then
  echo "verify: generated files are out of date; run 'make manifests generate' (and 'make chart-crds') and commit the result" >&2
  exit 1
fi
echo "verify: generated files are up to date"
