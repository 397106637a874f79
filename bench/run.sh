#!/usr/bin/env bash
# migd's benchmarks in one command, on Debian 12 as root (it installs what
# it needs with apt-get and npm) or as a user who has it all:
#
#   bash bench/run.sh                 # N = 200 and 1000, 5 runs each, daemon
#   BENCH_N=200 BENCH_REPS=5 bash bench/run.sh
#   MIGD_BIN=… MIGCTL_BIN=… bash bench/run.sh    # benchmark given binaries
#   bash bench/run.sh --keep          # leave PostgreSQL and the files
#
# Starts a throwaway PostgreSQL 15 (fsync on, defaults otherwise) on a Unix
# socket in a temporary directory, as the unprivileged postgres user when
# run as root; generates the car-workshop migrations for every tool
# (bench/gen.py); times apply-all, status and rollback-all of migd, the psql
# floors, Alembic, dbmate and Sqitch on a fresh database per run, after
# checking they all build the same schema (bench/bench.py); measures the
# daemon (bench/daemon.py: status load, RSS, 10k/100k revisions) and the
# per-migration cost of session isolation (bench/isolation.py); writes
# bench/results/DATE-*.txt|json and the measured block of
# docs/performance.md (bench/report.py).
#
# Settings (environment): BENCH_N (default "200 1000"), BENCH_REPS (5),
# BENCH_STATUS_REPS (10 status calls per run), BENCH_TOOLS (all),
# BENCH_DAEMON (1: run the daemon figures), BENCH_LOAD_SECONDS (5),
# BENCH_FILES (1: a 50 MB file and 5000 files, bench/files.py),
# BENCH_WORK (a temporary directory), MIGD_BIN and MIGCTL_BIN, MIGD_BASE_BIN
# (another build timed beside it as migd_base, for a ratio), BENCH_TAG
# (suffix of the result files; a tagged run leaves docs/performance.md alone).
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
keep=0
[ "${1:-}" = "--keep" ] && keep=1

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

# ---- packages ---------------------------------------------------------
. tests/debian-deps.sh
MIGD_DEPS="$MIGD_DEPS python3-alembic alembic python3-psycopg2
python3-sqlalchemy sqitch libdbd-pg-perl"
migd_install_deps

py=/usr/bin/python3    # Debian's, with alembic and psycopg2
pgbin=/usr/lib/postgresql/15/bin
psql=$pgbin/psql       # the binary: /usr/bin/psql is a Perl wrapper (+25 ms)
[ -x "$psql" ] || { echo "no PostgreSQL 15 in $pgbin" >&2; exit 1; }

# dbmate from npm (tests/debian-deps.sh)
migd_install_dbmate
dbmate=$MIGD_DBMATE dbmate_why=$MIGD_DBMATE_WHY

# ---- migd --------------------------------------------------------------
work=${BENCH_WORK:-$(mktemp -d /tmp/migd-bench.XXXXXX)}
mkdir -p "$work"
chmod 755 "$work"
if [ -z "${MIGD_BIN:-}" ] || [ -z "${MIGCTL_BIN:-}" ]; then
    say "building migd (-O2 -g) in $work/src"
    rm -rf "$work/src"
    mkdir -p "$work/src"
    # A copy, so that an in-tree configured checkout is left alone.
    tar -C "$top" --exclude=./.git --exclude=./build --exclude=./bench/results \
        -cf - . | tar -C "$work/src" -xf -
    (cd "$work/src" && { make distclean >/dev/null 2>&1 || true; } &&
        autoreconf -fi >/dev/null 2>&1 && ./configure -q CFLAGS='-O2 -g' &&
        make -j"$(nproc)" migd migctl >"$work/build.log" 2>&1) ||
        { tail -30 "$work/build.log" >&2; exit 1; }
    MIGD_BIN=$work/src/migd
    MIGCTL_BIN=$work/src/migctl
    src=$work/src
else
    src=$top
fi
cc -O2 -Wall -pthread -o "$work/status_load" bench/status_load.c
graph_scale=""
if [ -f "$src/config.h" ]; then
    cc -O2 -D_GNU_SOURCE -I"$src" -I"$src/daemon" -I"$src/include" \
        -o "$work/graph_scale" bench/graph_scale.c "$src/daemon/graph.c" \
        "$src/daemon/util.c" && graph_scale=$work/graph_scale
fi

# ---- PostgreSQL --------------------------------------------------------
say "starting a throwaway PostgreSQL 15 in $work"
run_pg() { "$@"; }
if [ "$(id -u)" = 0 ]; then
    chown postgres "$work"
    run_pg() { runuser -u postgres -- "$@"; }
fi
port=$(( 20000 + RANDOM % 20000 ))
run_pg mkdir -p "$work/pg"
run_pg "$pgbin/initdb" -D "$work/pg/data" -A trust -U postgres >/dev/null
run_pg "$pgbin/pg_ctl" -D "$work/pg/data" -l "$work/pg/log" -w \
    -o "-k $work/pg -p $port -c listen_addresses=''" start >/dev/null
migd_pids=""
cleanup() {
    [ "$keep" = 1 ] && { echo "kept: $work (PostgreSQL on $work/pg port $port)"; return; }
    run_pg "$pgbin/pg_ctl" -D "$work/pg/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
export PGHOST=$work/pg PGPORT=$port PGUSER=postgres
"$psql" -XAtc "select 'PostgreSQL ' || current_setting('server_version') || ', fsync ' || current_setting('fsync') || ', synchronous_commit ' || current_setting('synchronous_commit')"

# ---- apply / status / rollback ------------------------------------------
tools=${BENCH_TOOLS:-migd,migd_atomic,floor_1tx,floor_each,floor_nobook,floor_batched,alembic,alembic_1tx,dbmate,sqitch}
[ -z "$dbmate" ] && tools=$(echo "$tools" | sed 's/,dbmate//; s/^dbmate,//')
[ -n "${MIGD_BASE_BIN:-}" ] && [ -z "${BENCH_TOOLS:-}" ] && tools="migd,migd_base,${tools#migd,}"
date=$(date +%Y-%m-%d)
out=$work/out
mkdir -p "$out"
for n in ${BENCH_N:-200 1000}; do
    say "N = $n: generating, checking, timing (${BENCH_REPS:-5} runs)"
    "$py" bench/gen.py workshop "$n" "$work/gen$n"
    mkdir -p "$work/w$n"
    "$py" bench/bench.py --gen "$work/gen$n" --n "$n" --pg-host "$PGHOST" \
        --pg-port "$port" --work "$work/w$n" --reps "${BENCH_REPS:-5}" \
        --status-reps "${BENCH_STATUS_REPS:-10}" --tools "$tools" \
        --migd "$MIGD_BIN" --migctl "$MIGCTL_BIN" ${dbmate:+--dbmate "$dbmate"} \
        ${MIGD_BASE_BIN:+--migd-base "$MIGD_BASE_BIN"} \
        --psql "$psql" --json "$out/$n.json"
done

if [ "${BENCH_DAEMON:-1}" = 1 ]; then
    say "daemon: status load, memory, 10k and 100k revisions"
    mkdir -p "$work/daemon"
    "$py" bench/daemon.py --pg-host "$PGHOST" --pg-port "$port" \
        --work "$work/daemon" --migd "$MIGD_BIN" --migctl "$MIGCTL_BIN" \
        --status-load "$work/status_load" ${graph_scale:+--graph-scale "$graph_scale"} \
        --workshop "$top/examples/workshop/migrations" --psql "$psql" \
        --seconds "${BENCH_LOAD_SECONDS:-5}" --json "$out/daemon.json" 2>&1
fi

if [ "${BENCH_FILES:-1}" = 1 ]; then
    say "files: one 50 MB migration, 5000 files without inotify"
    mkdir -p "$work/files"
    "$py" bench/files.py --pg-host "$PGHOST" --pg-port "$port" \
        --work "$work/files" --migd "$MIGD_BIN" \
        --json "bench/results/$date-files${BENCH_TAG:+-$BENCH_TAG}.json" 2>&1
fi

if [ "${BENCH_LAYOUTS:-1}" = 1 ] && [ -f "$src/libmigd.a" ]; then
    say "layouts: loading and planning 1000 migrations in each tool's layout"
    cc -O2 -D_GNU_SOURCE -I"$src" -I"$top/daemon" -I"$top/include" \
        -I/usr/include/postgresql -o "$work/layouts" bench/layouts.c \
        "$src/libmigd.a" -levent -ljansson -lpq -lpg_query -lnettle -linih &&
        "$work/layouts" 1000 21 |
        tee "bench/results/$date-layouts${BENCH_TAG:+-$BENCH_TAG}.txt"
fi

say "session isolation: what it adds to each migration's bookkeeping"
"$py" bench/isolation.py --pg-host "$PGHOST" --pg-port "$port" \
    | tee "bench/results/$date-isolation${BENCH_TAG:+-$BENCH_TAG}.txt"

say "writing bench/results and docs/performance.md"
"$py" bench/report.py --out "$out" --results bench/results --date "$date" \
    --doc docs/performance.md --migd "$MIGD_BIN" --migctl "$MIGCTL_BIN" \
    --psql "$psql" ${dbmate:+--dbmate "$dbmate"} --dbmate-why "$dbmate_why" \
    --tag="${BENCH_TAG:-}"
