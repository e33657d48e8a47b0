#!/usr/bin/env bash
# Installs what building and testing adjacent needs on a Debian machine, as root, and
# nothing that is already there. Safe to run again.
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have ip || need+=(iproute2)
have tc || need+=(iproute2)
have make || need+=(make)
have gcc || need+=(gcc)
have git || need+=(git)
have psql || need+=(postgresql-client)
# A PostgreSQL server for the portal tests (postgres in the bank namespace) and the
# PostgreSQL member store.
[ -n "$(ls /usr/lib/postgresql/*/bin/postgres 2>/dev/null)" ] || need+=(postgresql)

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: missing ${need[*]}; run as root to install them" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # Debian starts a cluster on install; the tests run their own servers.
  systemctl disable --now postgresql >/dev/null 2>&1 || true
fi

# Go: any go >= 1.21 fetches the toolchain go.mod asks for from the module proxy.
if ! have go && [ -x /usr/local/go/bin/go ]; then
  export PATH=/usr/local/go/bin:$PATH
fi
if ! have go; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: no Go toolchain; run as root to install golang-go" >&2
    exit 1
  fi
  apt-get install -y -qq --no-install-recommends golang-go >/dev/null
fi
go version >/dev/null
