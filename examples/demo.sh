#!/usr/bin/env bash
# The migd demo on a fresh Debian 12 machine: installs what is needed, builds
# migd, starts a throwaway PostgreSQL and migd on the car-workshop example,
# and shows what a person sees: status before, the upgrade with progress,
# status, schemas and history after.  Everything lives in one temporary
# directory; --keep leaves PostgreSQL and migd running to explore, and says
# how to stop them.  MIGD_BIN and MIGCTL_BIN, as for the tests, run a build
# of one's own instead of building build/demo.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
keep=0
[ "${1:-}" = "--keep" ] && keep=1

. tests/debian-deps.sh
migd_install_deps

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

build=$top/build/demo
migd=${MIGD_BIN:-$build/migd}
migctl=${MIGCTL_BIN:-$build/migctl}
if [ ! -x "$migd" ] || [ ! -x "$migctl" ]; then
    say "building migd"
    autoreconf -fi >/dev/null 2>&1
    mkdir -p "$build"
    (cd "$build" && "$top/configure" -q && make -j"$(nproc)" >/dev/null)
    migd=$build/migd migctl=$build/migctl
fi

say "starting a throwaway PostgreSQL"
bindir=$(pg_config --bindir 2>/dev/null || true)
[ -x "$bindir/initdb" ] || bindir=/usr/lib/postgresql/15/bin
work=$(mktemp -d /tmp/migd-demo.XXXXXX)
chmod 755 "$work"
run_pg() { "$@"; }
as_pg=
if [ "$(id -u)" = 0 ]; then
    # initdb refuses root: PostgreSQL runs as the unprivileged postgres user.
    chown postgres "$work"
    run_pg() { runuser -u postgres -- "$@"; }
    as_pg="runuser -u postgres -- "
fi
port=$(( 20000 + RANDOM % 20000 ))
run_pg "$bindir/initdb" -D "$work/data" -A trust -U postgres --no-sync >/dev/null
run_pg "$bindir/pg_ctl" -D "$work/data" -l "$work/postgresql.log" -w \
    -o "-k $work -p $port -c listen_addresses=''" start >/dev/null
psql -h "$work" -p "$port" -U postgres -qc "CREATE DATABASE workshop"
echo "PostgreSQL 15 on socket $work, port $port, database workshop"

cleanup() {
    [ "$keep" = 1 ] && return
    [ -n "${migd_pid:-}" ] && kill "$migd_pid" 2>/dev/null && wait "$migd_pid" 2>/dev/null
    run_pg "$bindir/pg_ctl" -D "$work/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

say "starting migd on examples/workshop/migrations"
cat > "$work/migd.conf" <<CONF
[database]
conninfo = host=$work port=$port user=postgres dbname=workshop
[migrations]
directory = $top/examples/workshop/migrations
schemas = cars, participants, work_shop
[control]
socket = $work/migd.sock
CONF
"$migd" -c "$work/migd.conf" 2>"$work/migd.log" &
migd_pid=$!
export MIGD_SOCKET=$work/migd.sock
for _ in $(seq 50); do
    "$migctl" version >/dev/null 2>&1 && break
    sleep 0.1
done

say "migctl status (before)"
"$migctl" status || true
say "migctl plan"
"$migctl" plan
say "migctl upgrade +1"
"$migctl" upgrade +1
say "migctl upgrade head"
"$migctl" upgrade head
say "migctl status (after)"
"$migctl" status
say "migctl schemas"
"$migctl" schemas
say "migctl history"
"$migctl" history
say "migctl downgrade -1, then upgrade again"
"$migctl" downgrade -1
"$migctl" upgrade

if [ "$keep" = 1 ]; then
    say "left running"
    echo "export MIGD_SOCKET=$work/migd.sock    # then: $migctl status"
    echo "psql -h $work -p $port -U postgres workshop"
    # pg_ctl, like initdb, refuses root: the line says who runs it.
    echo "stop: kill $migd_pid; $as_pg$bindir/pg_ctl -D $work/data stop; rm -rf $work"
fi
