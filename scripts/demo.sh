#!/usr/bin/env bash
# The main job: the whole story of DESIGN.md §1 on one machine. A PostgreSQL server for the
# "bank", a hub, a bank node with an outlet and a relay, an analysis node with a classic and a
# transparent inlet, and psql querying the database through both. Each node lives in its own
# home.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH=/usr/local/go/bin:$PATH
go build -o bin/adjacent ./cmd/adjacent
adj=$PWD/bin/adjacent
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)

work=$(mktemp -d /tmp/adjacent-demo.XXXXXX)
chmod 755 "$work"
# The packet-mode outlet turns on loopback's accept_local and route_localnet and leaves them on
# (README, packet mode); the demo puts back what it found, as it removes everything else it made.
lo_sysctls=$(sysctl -n net.ipv4.conf.lo.accept_local net.ipv4.conf.lo.route_localnet 2>/dev/null | tr '\n' ' ')
cleanup() {
  for n in analysis bank hub; do "$adj" --home "$work/$n" node stop >/dev/null 2>&1 || true; done
  [ -f "$work/pg/postmaster.pid" ] && as_pg "$pgbin/pg_ctl" -D "$work/pg" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$work"
  if [ -n "$lo_sysctls" ]; then
    set -- $lo_sysctls
    sysctl -qw net.ipv4.conf.lo.accept_local="$1" net.ipv4.conf.lo.route_localnet="$2" 2>/dev/null || true
  fi
}
trap cleanup EXIT

as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 30000))
    ss -ltnH "( sport = :$p )" | grep -q . || { echo "$p"; return; }
  done
}
say() { printf '\n\033[1m%s\033[0m\n' "$*"; }
run() { printf '\033[2m$ %s\033[0m\n' "$*"; "$@"; }

pgport=$(free_port); hubport=$(free_port); inport=$(free_port)

say "1. The bank's database: PostgreSQL on 127.0.0.1:$pgport, reachable from nowhere else."
mkdir -p "$work/pg"; [ "$(id -u)" = 0 ] && chown postgres "$work/pg"
as_pg "$pgbin/initdb" -D "$work/pg" -U postgres --auth=trust -E UTF8 --locale=C >/dev/null
as_pg "$pgbin/pg_ctl" -D "$work/pg" -l "$work/pg/log" -o "-h 127.0.0.1 -p $pgport -k $work/pg" -w start >/dev/null
"$pgbin/psql" -h 127.0.0.1 -p "$pgport" -U postgres -q -c \
  "CREATE TABLE accounts (id int PRIMARY KEY, owner text, balance numeric);
   INSERT INTO accounts VALUES (1, 'ada', 1815.12), (2, 'grace', 1906.09), (3, 'linus', 1969.12);"

say "2. The hub: the project's membership authority and relay service. Only the hub listens."
run "$adj" --home "$work/hub" project create acme --listen "127.0.0.1:$hubport"
run "$adj" --home "$work/hub" project ticket --relay postgres --output json >"$work/bank.json"
run "$adj" --home "$work/hub" project ticket --attribute role=analyst --output json >"$work/analysis.json"
ticket() { sed -n 's/.*"ticket": "\(.*\)".*/\1/p' "$1"; }

say "3. The bank enrolls, opens an outlet to its database and a relay at the hub."
run "$adj" --home "$work/bank" enroll "$(ticket "$work/bank.json")"
run "$adj" --home "$work/bank" tcp-outlet create --to "$pgport"
run "$adj" --home "$work/bank" relay create postgres

say "4. Analysis enrolls and opens an inlet on a local port, through the relay to the outlet."
run "$adj" --home "$work/analysis" enroll "$(ticket "$work/analysis.json")"
run "$adj" --home "$work/analysis" tcp-inlet create --from "$inport" --via postgres

say "5. psql on the analysis side talks to the bank's database as if it were local:"
run "$pgbin/psql" --host localhost --port "$inport" --username postgres \
  --command "SELECT owner, balance FROM accounts ORDER BY id"

say "6. The transparent inlet: psql keeps the database's own name and port."
# The node maps db.bank.internal to an address of its TUN device in a managed block of a hosts
# file. The demo gives it a file of its own and shows psql that file as /etc/hosts in a
# private mount namespace, so the machine's /etc/hosts stays as it is.
printf '127.0.0.1\tlocalhost\n' >"$work/hosts"
if run "$adj" --home "$work/analysis" tcp-inlet create --from db.bank.internal:5432 --via postgres --tun --hosts-file "$work/hosts"; then
  run cat "$work/hosts"
  printf '\033[2m$ %s\033[0m\n' "psql --host db.bank.internal --port 5432 --username postgres --command \"SELECT ...\""
  unshare -m sh -c 'mount --bind "$0" /etc/hosts && exec "$@"' "$work/hosts" \
    "$pgbin/psql" --host db.bank.internal --port 5432 --username postgres \
    --command "SELECT owner, balance FROM accounts ORDER BY id"
  say "7. Packet mode: the same name, and now psql's own TCP segments travel to the bank's node,"
  say "   which injects them toward PostgreSQL with a raw socket: no stack in between."
  run "$adj" --home "$work/analysis" tcp-inlet delete db.bank.internal:5432
  if run "$adj" --home "$work/analysis" tcp-inlet create --from db.bank.internal:5432 --via postgres --tun --raw --hosts-file "$work/hosts"; then
    printf '\033[2m$ %s\033[0m\n' "psql --host db.bank.internal --port 5432 --username postgres --command \"SELECT ...\""
    unshare -m sh -c 'mount --bind "$0" /etc/hosts && exec "$@"' "$work/hosts" \
      "$pgbin/psql" --host db.bank.internal --port 5432 --username postgres \
      --command "SELECT owner, balance FROM accounts ORDER BY id"
  fi
else
  echo "(the transparent inlet needs CAP_NET_ADMIN and /dev/net/tun: run the demo as root to see it)"
fi

say "8. What each node saw:"
run "$adj" --home "$work/analysis" status
run "$adj" --home "$work/bank" status
run "$adj" --home "$work/hub" status

"$adj" --home "$work/analysis" tcp-inlet delete db.bank.internal:5432 >/dev/null 2>&1 || true

cat <<'MSG'

What happened: psql's bytes were encrypted inside the analysis node on an end-to-end Noise XX
channel to the bank node, nested in each node's channel to the hub. The hub relayed ciphertext
it cannot read. Both nodes proved their identities and showed credentials from the project's
authority; the outlet's policy admitted the analysis member. Neither the bank nor analysis
listened on any network port. With --tun, the analysis node answered for db.bank.internal:5432
itself, on a TUN device through a userspace TCP stack, so the client needed no new port; the
device, its route and the hosts entry went away with the inlet. With --raw, no stack stood in
between: psql's kernel and PostgreSQL's talked TCP to each other, and the nodes moved, checked
and translated their packets.
MSG
