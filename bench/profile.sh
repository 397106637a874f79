#!/usr/bin/env bash
# Where migd's time goes, for the lead who optimises it: round trips per
# migration and per status (counted in PostgreSQL's statement log), the CPU
# split between migd and PostgreSQL during an apply, and perf profiles of
# migd during an apply of N migrations, during the status load at 32
# clients and during `migctl plan` on 10 000 revisions.  As root on Debian
# 12 (needs linux-perf; installs it), after bench/run.sh has installed the
# rest:
#
#   MIGD_BIN=… MIGCTL_BIN=… bash bench/profile.sh [N]     # N default 1000
#
# Writes bench/results/DATE-profile.txt; perf data stays in the work
# directory with --keep.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
n=${1:-1000}
keep=0
[ "${2:-}" = "--keep" ] && keep=1
py=/usr/bin/python3
pgbin=/usr/lib/postgresql/15/bin
psql=$pgbin/psql
command -v perf >/dev/null || {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-perf >/dev/null; }
[ -n "${MIGD_BIN:-}" ] && [ -n "${MIGCTL_BIN:-}" ] || {
    echo "set MIGD_BIN and MIGCTL_BIN (e.g. a -O2 -g build)" >&2; exit 2; }

work=${BENCH_WORK:-$(mktemp -d /tmp/migd-profile.XXXXXX)}
mkdir -p "$work"
chmod 755 "$work"
cc -O2 -Wall -pthread -o "$work/status_load" bench/status_load.c
cc -O2 -Wall -o "$work/status_once" bench/status_once.c
cc -O2 -Wall -I/usr/include/postgresql -o "$work/pq_idle" bench/pq_idle.c -lpq
run_pg() { "$@"; }
if [ "$(id -u)" = 0 ]; then
    chown postgres "$work"
    run_pg() { runuser -u postgres -- "$@"; }
fi
port=$(( 20000 + RANDOM % 20000 ))
run_pg mkdir -p "$work/pg"
run_pg "$pgbin/initdb" -D "$work/pg/data" -A trust -U postgres >/dev/null
run_pg "$pgbin/pg_ctl" -D "$work/pg/data" -l "$work/pg/log" -w \
    -o "-k $work/pg -p $port -c listen_addresses='' -c log_line_prefix='%p %d '" \
    start >/dev/null
migd_pid=""
cleanup() {
    [ -n "$migd_pid" ] && kill "$migd_pid" 2>/dev/null && wait "$migd_pid" 2>/dev/null
    [ "$keep" = 1 ] && { echo "kept: $work"; return; }
    run_pg "$pgbin/pg_ctl" -D "$work/pg/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
export PGHOST=$work/pg PGPORT=$port PGUSER=postgres
P="$psql -X -q -v ON_ERROR_STOP=1"
out=$work/profile.txt
: > "$out"
say() { printf '\n## %s\n\n' "$*" | tee -a "$out"; }
note() { echo "$*" | tee -a "$out"; }

"$py" bench/gen.py workshop "$n" "$work/gen"
"$py" bench/gen.py small 10000 "$work/small"

fresh() {  # fresh DB [logged]
    $P -d postgres -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1"
    [ "${2:-}" = logged ] && $P -d postgres -c "ALTER DATABASE $1 SET log_statement = 'all'"
    return 0
}
start_migd() {  # DB DIR
    cat > "$work/$1.conf" <<CONF
[database]
conninfo = host=$PGHOST port=$port user=postgres dbname=$1
[migrations]
directory = $2
[control]
socket = $work/$1.sock
[log]
level = warning
CONF
    "$MIGD_BIN" -c "$work/$1.conf" 2>>"$work/migd.log" &
    migd_pid=$!
    export MIGD_SOCKET=$work/$1.sock
    "$MIGCTL_BIN" wait --for ready --timeout 60 >/dev/null
}
stop_migd() { kill "$migd_pid"; wait "$migd_pid" 2>/dev/null || true; migd_pid=""; }
logpos() { wc -l < "$work/pg/log"; }
# statements (one line each: a simple query, however many statements in it)
# logged for database $1 since line $2
count() { tail -n +"$(( $2 + 1 ))" "$work/pg/log" | grep -c " $1 LOG:  statement: " || true; }
cpu_of() {  # summed utime+stime in seconds of the given pids
    local t=0 p
    for p in "$@"; do
        [ -r "/proc/$p/stat" ] && t=$(( t + $(awk '{sub(/.*\) /, ""); print $12 + $13}' "/proc/$p/stat") ))
    done
    calc "$t / $(getconf CLK_TCK)"
}
calc() { awk "BEGIN { printf \"%.3f\", $* }"; }
tmed() {  # K CMD...: median wall time in ms of K runs, output discarded
    local k=$1; shift
    "$py" - "$k" "$@" <<'PY'
import statistics, subprocess, sys, time
k = int(sys.argv[1]); v = []
for _ in range(k):
    t0 = time.perf_counter()
    subprocess.run(sys.argv[2:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    v.append((time.perf_counter() - t0) * 1000)
print("%.2f" % statistics.median(v))
PY
}
pg_pids() { pgrep -d' ' -P "$(head -1 "$work/pg/data/postmaster.pid")" || true; }

say "Round trips (statements logged by PostgreSQL, log_statement=all), N=$n"
fresh rt logged
start_migd rt "$work/gen/migd"
a=$(logpos); "$MIGCTL_BIN" upgrade head >/dev/null; up=$(count rt "$a")
a=$(logpos); "$MIGCTL_BIN" status >/dev/null; st=$(count rt "$a")
a=$(logpos); "$work/status_load" "$MIGD_SOCKET" 1 1 > "$work/rt_status.json"
st_n=$("$py" -c "import json,sys; print(json.load(open(sys.argv[1]))['requests'])" "$work/rt_status.json")
st_q=$(count rt "$a")
a=$(logpos); "$work/status_load" "$MIGD_SOCKET" 32 2 > "$work/rt_status32.json"
st32_n=$("$py" -c "import json,sys; print(json.load(open(sys.argv[1]))['requests'])" "$work/rt_status32.json")
st32_q=$(count rt "$a")
a=$(logpos); "$MIGCTL_BIN" downgrade base >/dev/null; down=$(count rt "$a")
stop_migd
stmts=$(grep -c ';$' "$work/gen/floor/up_1tx.sql" || true)
fresh rtf logged
$P -d rtf -f "$work/gen/floor/setup.sql"
a=$(logpos); $P -d rtf -f "$work/gen/floor/up_each.sql"; fup=$(count rtf "$a")
a=$(logpos); $P -d rtf -f "$work/gen/floor/down_each.sql"; fdown=$(count rtf "$a")
note "migration statements (up sections, all files): $stmts"
note "migd upgrade head:   $up queries for $n migrations ($(calc "$up / $n") per migration)"
note "migd downgrade base: $down queries ($(calc "$down / $n") per migration)"
note "floor_each up:       $fup queries ($(calc "$fup / $n") per migration); down: $fdown"
note "migd status (one migctl status): $st queries; status load 1 client 1 s: $st_q queries for $st_n requests ($(calc "$st_q / $st_n") per request)"
note "status load 32 clients 2 s: $st32_q queries for $st32_n requests ($(calc "$st32_q / $st32_n") per request)"
note ""
note "What migd sends for one migration (the third of the upgrade), one line per query:"
grep " rt LOG:  statement: " "$work/pg/log" | cut -c1-180 |
    awk '/statement: BEGIN; SET LOCAL/{k++} k==3' | sed -n '1,20p' | tee -a "$out" >/dev/null

say "CPU split during upgrade head, N=$n (fresh database)"
fresh cpu
start_migd cpu "$work/gen/migd"
pgp=$(pg_pids)
m0=$(cpu_of "$migd_pid"); g0=$(cpu_of $pgp)
t0=$(date +%s.%N)
perf record -F 999 --call-graph dwarf,16384 -p "$migd_pid" -o "$work/perf.apply.data" -- \
    "$MIGCTL_BIN" upgrade head >/dev/null 2>"$work/perf.apply.log"
t1=$(date +%s.%N)
pgp2=$(pg_pids)
m1=$(cpu_of "$migd_pid"); g1=$(cpu_of $pgp2)
note "wall $(calc "$t1 - $t0") s; migd CPU $(calc "$m1 - $m0") s; PostgreSQL processes CPU $(calc "$g1 - $g0") s (perf recording at 999 Hz)"
note ""
note "perf: migd during upgrade head (self time, top 25):"
perf report -i "$work/perf.apply.data" --no-children --sort symbol,dso --stdio 2>/dev/null |
    grep -E '^ +[0-9.]+%' | grep -vE '\] 0x[0-9a-f]+ |\] [0-9a-f]{16} ' | sed -n '1,25p' | tee -a "$out" >/dev/null
note ""
note "perf: migd during upgrade head (with callees, user space, top 40):"
perf report -i "$work/perf.apply.data" --children --sort symbol --stdio -g none 2>/dev/null |
    grep -E '^ +[0-9.]+%' | grep -vE '\] 0x[0-9a-f]+ |\] [0-9a-f]{16} ' | grep -v '\[k\]' | sed -n '1,40p' | tee -a "$out" >/dev/null

say "Fixed costs at head, N=$n (medians; whole processes)"
note "migctl upgrade head, nothing pending (lock, state, load $n files, plan): $(tmed 5 "$MIGCTL_BIN" upgrade head) ms"
note "migctl plan (load $n files, plan, nothing to do):                         $(tmed 5 "$MIGCTL_BIN" plan) ms"
note "migctl status:                                                         $(tmed 20 "$MIGCTL_BIN" status) ms"
note "bench/status_once (libc only, one status request):                     $(tmed 20 "$work/status_once" "$MIGD_SOCKET") ms"
note "migctl version (no database):                                          $(tmed 20 "$MIGCTL_BIN" version) ms"
note "migctl --help (no daemon: exec, dynamic loading of $(ldd "$MIGCTL_BIN" | wc -l) objects):         $(tmed 20 "$MIGCTL_BIN" --help) ms"
note "psql -c 'select 1':                                                    $(tmed 20 $psql -X -q -d cpu -c 'select 1') ms"
note "/bin/true:                                                             $(tmed 20 /bin/true) ms"

say "perf: migd during the status load, 32 clients, 5 s"
"$MIGCTL_BIN" status >/dev/null
perf record -F 499 --call-graph dwarf,16384 -p "$migd_pid" -o "$work/perf.status.data" -- \
    "$work/status_load" "$MIGD_SOCKET" 32 5 > "$work/status32.json" 2>"$work/perf.status.log"
note "load: $(cat "$work/status32.json")"
perf report -i "$work/perf.status.data" --no-children --sort symbol,dso --stdio 2>/dev/null |
    grep -E '^ +[0-9.]+%' | grep -vE '\] 0x[0-9a-f]+ |\] [0-9a-f]{16} ' | sed -n '1,30p' | tee -a "$out" >/dev/null
note ""
note "with callees:"
perf report -i "$work/perf.status.data" --children --sort symbol --stdio -g none 2>/dev/null |
    grep -E '^ +[0-9.]+%' | grep -vE '\] 0x[0-9a-f]+ |\] [0-9a-f]{16} ' | sed -n '1,30p' | tee -a "$out" >/dev/null
say "perf: migd during 5 upgrades with nothing pending, N=$n"
perf record -F 999 --call-graph dwarf,16384 -p "$migd_pid" -o "$work/perf.noop.data" -- \
    sh -c 'for i in 1 2 3 4 5; do "$0" upgrade head >/dev/null; done' "$MIGCTL_BIN" 2>"$work/perf.noop.log"
note "with callees (user space, top 30):"
perf report -i "$work/perf.noop.data" --children --sort symbol --stdio -g none 2>/dev/null |
    grep -E '^ +[0-9.]+%' | grep -vE '\] 0x[0-9a-f]+ |\] [0-9a-f]{16} ' | grep -v '\[k\]' | sed -n '1,30p' | tee -a "$out" >/dev/null

say "perf: migd during downgrade base, N=$n"
m0=$(cpu_of "$migd_pid"); t0=$(date +%s.%N)
perf record -F 999 --call-graph dwarf,16384 -p "$migd_pid" -o "$work/perf.down.data" -- \
    "$MIGCTL_BIN" downgrade base >/dev/null 2>"$work/perf.down.log"
t1=$(date +%s.%N); m1=$(cpu_of "$migd_pid")
note "wall $(calc "$t1 - $t0") s; migd CPU $(calc "$m1 - $m0") s"
note "with callees (migd's own functions and libraries, top 40):"
perf report -i "$work/perf.down.data" --children --sort symbol --stdio -g none 2>/dev/null |
    grep -E '^ +[0-9.]+%' | grep -vE '\] 0x[0-9a-f]+ |\] [0-9a-f]{16} ' | grep -v '\[k\]' | sed -n '1,40p' | tee -a "$out" >/dev/null

stop_migd

say "perf: migd during migctl plan on 10 000 revisions"
fresh plan
start_migd plan "$work/small"
"$MIGCTL_BIN" status >/dev/null
t0=$(date +%s.%N)
perf record -F 499 --call-graph dwarf,16384 -p "$migd_pid" -o "$work/perf.plan.data" -- \
    "$MIGCTL_BIN" plan >/dev/null 2>"$work/perf.plan.log"
t1=$(date +%s.%N)
note "migctl plan: $(calc "$t1 - $t0") s"
perf report -i "$work/perf.plan.data" --no-children --sort symbol,dso --stdio 2>/dev/null |
    grep -E '^ +[0-9.]+%' | grep -vE '\] 0x[0-9a-f]+ |\] [0-9a-f]{16} ' | sed -n '1,15p' | tee -a "$out" >/dev/null
note ""
note "with callees:"
perf report -i "$work/perf.plan.data" --children --sort symbol --stdio -g none 2>/dev/null |
    grep -E '^ +[0-9.]+%' | grep -vE '\] 0x[0-9a-f]+ |\] [0-9a-f]{16} ' | sed -n '1,20p' | tee -a "$out" >/dev/null
stop_migd

say "Idle memory: migd with the 9 workshop revisions, mappings by RSS"
fresh idle
start_migd idle "$top/examples/workshop/migrations"
"$MIGCTL_BIN" status >/dev/null
sleep 1
grep -E 'VmRSS|RssAnon|RssFile' "/proc/$migd_pid/status" | tee -a "$out" >/dev/null
awk '/^[0-9a-f]+-[0-9a-f]+ /{n=($6==""?"[anon]":$6)} /^Rss:/{r[n]+=$2} END{for(k in r) if (r[k] >= 100) printf "%6d kB %s\n", r[k], k}' \
    "/proc/$migd_pid/smaps" | sort -rn | sed -n '1,15p' | tee -a "$out" >/dev/null
stop_migd
note ""
note "For comparison, a bare libpq client with two connections (bench/pq_idle.c):"
"$work/pq_idle" "host=$PGHOST port=$port user=postgres dbname=postgres" | tee -a "$out" >/dev/null

mkdir -p bench/results
cp "$out" "bench/results/$(date +%Y-%m-%d)-profile.txt"
echo "written: bench/results/$(date +%Y-%m-%d)-profile.txt"
