#!/usr/bin/env bash
# Makes sure Debian's PostgreSQL server binaries (initdb, postgres) are on the
# machine, for the tests that run a real database (internal/testpg), and
# prints their directory, e.g. /usr/lib/postgresql/15/bin. The Makefile passes
# it to the tests as POSTGRES_BIN.
#
# Only Debian's packaged server is used: the tests run initdb and postgres
# as the unprivileged `postgres` user that the package creates (PostgreSQL
# refuses to run as root). /usr/local/bin/initdb and friends, where present,
# are only links into /usr/lib/postgresql/<version>/bin.
#
# Usage: hack/postgres.sh            install if missing, print the bin dir
#        hack/postgres.sh --print    only print the bin dir (empty if none)
set -euo pipefail

log() { echo "postgres: $*" >&2; }

# bindir prints the newest /usr/lib/postgresql/<version>/bin holding both
# initdb and postgres.
bindir() {
  local d best="" bestv=-1 v
  for d in /usr/lib/postgresql/*/bin; do
    [[ -x "${d}/initdb" && -x "${d}/postgres" ]] || continue
    v="${d#/usr/lib/postgresql/}"
    v="${v%%/*}"
    v="${v%%.*}"
    [[ "${v}" =~ ^[0-9]+$ ]] || continue
    if (( v > bestv )); then best="${d}" bestv="${v}"; fi
  done
  [[ -n "${best}" ]] && echo "${best}"
}

if [[ "${1:-}" == "--print" ]]; then
  bindir || true
  exit 0
fi

if dir="$(bindir)" && id postgres >/dev/null 2>&1; then
  echo "${dir}"
  exit 0
fi

if [[ "$(id -u)" != 0 ]]; then
  log "PostgreSQL's server is not installed, and installing it needs root: run 'sudo apt-get install -y postgresql'"
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  log "PostgreSQL's server is not installed and this is not a Debian-like system: install PostgreSQL's server so that /usr/lib/postgresql/<version>/bin/postgres exists"
  exit 1
fi
log "installing Debian's postgresql package (once)"
export DEBIAN_FRONTEND=noninteractive
# The package index may be missing on a fresh machine: update it only when
# the install cannot find the package.
if ! apt-get install -y -q postgresql >&2; then
  apt-get update -q >&2
  apt-get install -y -q postgresql >&2
fi
# The package creates and starts a cluster of its own on port 5432 where
# services run; the tests do not use it and run their own servers.
if ! dir="$(bindir)"; then
  log "the postgresql package installed no server under /usr/lib/postgresql/*/bin"
  exit 1
fi
if ! id postgres >/dev/null 2>&1; then
  log "the postgresql package did not create the postgres user"
  exit 1
fi
echo "${dir}"
