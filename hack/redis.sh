#!/usr/bin/env bash
# Makes sure Debian's Redis server (redis-server) is on the machine, for the
# tests that run a real Redis (internal/testredis), and prints its path, e.g.
# /usr/bin/redis-server. The Makefile passes it to the tests as REDIS_SERVER.
#
# The tests start servers of their own (on a free port of 127.0.0.1, in their
# temporary directory); the service the package may start is not used.
#
# Usage: hack/redis.sh            install if missing, print the binary's path
#        hack/redis.sh --print    only print the path (empty if none)
set -euo pipefail

log() { echo "redis: $*" >&2; }

binary() {
  local b
  for b in "$(command -v redis-server 2>/dev/null || true)" /usr/bin/redis-server /usr/sbin/redis-server; do
    [[ -n "${b}" && -x "${b}" ]] && { echo "${b}"; return 0; }
  done
  return 1
}

if [[ "${1:-}" == "--print" ]]; then
  binary || true
  exit 0
fi

if b="$(binary)"; then
  echo "${b}"
  exit 0
fi

if [[ "$(id -u)" != 0 ]]; then
  log "Redis's server is not installed, and installing it needs root: run 'sudo apt-get install -y redis-server'"
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  log "Redis's server is not installed and this is not a Debian-like system: install redis-server so that it is on PATH"
  exit 1
fi
log "installing Debian's redis-server package (once)"
export DEBIAN_FRONTEND=noninteractive
# The package index may be missing on a fresh machine: update it only when
# the install cannot find the package.
if ! apt-get install -y -q redis-server >&2; then
  apt-get update -q >&2
  apt-get install -y -q redis-server >&2
fi
if ! b="$(binary)"; then
  log "the redis-server package installed no redis-server binary"
  exit 1
fi
echo "${b}"
