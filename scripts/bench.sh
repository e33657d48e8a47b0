#!/usr/bin/env bash
# The side-by-side comparison of issue 6, as root: installs what the portal is compared
# with when it is missing (Debian's openssh, stunnel4, iperf3, socat, wireguard-tools, nebula
# for nebula and nebula-cert, linux-perf to count the portal's system calls, and postgresql
# for the PostgreSQL server and pgbench of the tps measure;
# wireguard-go's current module version with go install into bin/peers), then runs
# bench/compare, which builds bin/adjacent, bin/blast and the namespaces, runs every mode,
# prints the table and writes bench/out/results.{md,svg,json} and bench/out/logs/. A peer
# that cannot be installed is skipped with a note in the table rather than failing the run.
# Arguments go to bench/compare (e.g. -modes raw,ssh,adjacent -t 2 -measures rtt,connect,tps).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "bench: the comparison builds network namespaces; run it as root (sudo make bench)" >&2
  exit 1
fi
export PATH=/usr/local/go/bin:$PATH
export DEBIAN_FRONTEND=noninteractive

have() { command -v "$1" >/dev/null 2>&1; }
need=()
have ip || need+=(iproute2)
have ss || need+=(iproute2)
have go || need+=(golang-go) # any Go >= 1.21 fetches the toolchain go.mod names
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
have ssh || need+=(openssh-client)
have ssh-keygen || need+=(openssh-client)
have stunnel4 || have stunnel || need+=(stunnel4)
have iperf3 || need+=(iperf3)
have perf || need+=(linux-perf)
have socat || need+=(socat)
have wg || need+=(wireguard-tools)
have nebula || need+=(nebula) # its systemd unit is a template: installing it starts nothing
have nebula-cert || need+=(nebula)
# The server, its initdb and pgbench, all from one installation (Debian's postgresql-N).
[ -n "$(ls /usr/lib/postgresql/*/bin/pgbench 2>/dev/null)" ] || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing ${need[*]}"
  apt-get update -qq || echo "bench: apt-get update failed; trying the installs anyway" >&2
  # One package at a time, so one that cannot be had does not keep the others out.
  for p in $(printf '%s\n' "${need[@]}" | sort -u); do
    apt-get install -y -qq --no-install-recommends "$p" >/dev/null ||
      echo "bench: could not install $p; the modes that need it will be skipped" >&2
  done
  # Debian starts sshd when it installs it; the comparison runs its own, in namespaces only.
  if printf '%s\n' "${need[@]}" | grep -qx openssh-server; then
    systemctl disable --now ssh >/dev/null 2>&1 || service ssh stop >/dev/null 2>&1 || true
  fi
  # Likewise its cluster: the comparison runs its own servers, in B's namespaces.
  if printf '%s\n' "${need[@]}" | grep -qx postgresql; then
    systemctl disable --now postgresql >/dev/null 2>&1 || service postgresql stop >/dev/null 2>&1 || true
  fi
fi

# wireguard-go at the module's current version: the module root is its main package and the
# binary is named wireguard. Into bin/peers; when the proxy cannot be reached, an earlier
# build there is used (its version is in the report).
peers=$PWD/bin/peers
echo "== go install golang.zx2c4.com/wireguard@latest"
mkdir -p "$peers"
if ! GOBIN=$peers go install golang.zx2c4.com/wireguard@latest; then
  if [ -x "$peers/wireguard" ]; then
    echo "bench: could not update wireguard-go; using the one in bin/peers" >&2
  else
    echo "bench: could not build wireguard-go; its mode will be skipped" >&2
  fi
fi

echo "== go run ./bench/compare"
exec go run ./bench/compare -out bench/out -wireguard "$peers/wireguard" "$@"
