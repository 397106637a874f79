#!/usr/bin/env bash
# Whole runs of two migd builds, interleaved on one throwaway PostgreSQL: the
# wall time and the server CPU (every backend of the cluster, from
# /proc/PID/schedstat, which a shared machine disturbs less than wall time) of
# `upgrade head` then `downgrade base` of the N workshop migrations, a fresh
# database per run.  As root (initdb runs as postgres):
#
#   MIGD_BIN=… MIGCTL_BIN=… MIGD_BASE_BIN=… bash bench/server_cpu.sh N REPS
set -euo pipefail
n=$1; reps=$2
top=$(cd "$(dirname "$0")/.." && pwd)
pgbin=/usr/lib/postgresql/15/bin; psql=$pgbin/psql
[ -n "${MIGD_BIN:-}" ] && [ -n "${MIGCTL_BIN:-}" ] && [ -n "${MIGD_BASE_BIN:-}" ] || {
    echo "set MIGD_BIN, MIGCTL_BIN and MIGD_BASE_BIN" >&2; exit 2; }
w=$(mktemp -d /tmp/migd-srvcpu.XXXXXX); chmod 755 "$w"; chown postgres "$w"
port=$(( 20000 + RANDOM % 20000 ))
runuser -u postgres -- "$pgbin/initdb" -D "$w/data" -A trust -U postgres >/dev/null
runuser -u postgres -- "$pgbin/pg_ctl" -D "$w/data" -l "$w/log" -w -o "-k $w -p $port -c listen_addresses=''" start >/dev/null
mp=""
trap '[ -n "$mp" ] && kill $mp 2>/dev/null; wait 2>/dev/null; runuser -u postgres -- "$pgbin/pg_ctl" -D "$w/data" -m fast -w stop >/dev/null; rm -rf "$w"' EXIT
export PGHOST=$w PGPORT=$port PGUSER=postgres
P="$psql -X -q -v ON_ERROR_STOP=1"
/usr/bin/python3 $top/bench/gen.py workshop "$n" $w/gen >/dev/null
pgcpu() { local t=0 p; for p in $(pgrep -P "$(head -1 $w/data/postmaster.pid)"); do [ -r /proc/$p/schedstat ] && t=$(( t + $(cut -d' ' -f1 /proc/$p/schedstat) )); done; echo $t; }
now() { date +%s%N; }
for r in $(seq 1 $reps); do
  for v in new base; do
    if [ $v = new ]; then M=$MIGD_BIN; else M=$MIGD_BASE_BIN; fi
    PGOPTIONS='-c client_min_messages=warning' $P -d postgres -c "DROP DATABASE IF EXISTS b WITH (FORCE)" -c "CREATE DATABASE b"
    cat > "$w/m.conf" <<CONF
[database]
conninfo = host=$w port=$port user=postgres dbname=b
[migrations]
directory = $w/gen/migd
[control]
socket = $w/m.sock
[log]
level = warning
CONF
    "$M" -c "$w/m.conf" 2>>"$w/migd.log" & mp=$!
    export MIGD_SOCKET=$w/m.sock
    $MIGCTL_BIN wait --for ready --timeout 60 >/dev/null
    $MIGCTL_BIN status >/dev/null
    c0=$(pgcpu); t0=$(now); $MIGCTL_BIN upgrade head >/dev/null; t1=$(now); c1=$(pgcpu)
    $MIGCTL_BIN downgrade base >/dev/null; t2=$(now); c2=$(pgcpu)
    # one line per run; the pairs (same r) are what to compare
    echo "$r $v up_wall_ms $(( (t1-t0)/1000000 )) up_pgcpu_ms $(( (c1-c0)/1000000 )) down_wall_ms $(( (t2-t1)/1000000 )) down_pgcpu_ms $(( (c2-c1)/1000000 ))"
    kill $mp; wait $mp 2>/dev/null || true; mp=""
  done
done
