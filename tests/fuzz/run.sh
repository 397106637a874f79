#!/usr/bin/env bash
# Builds migd's libFuzzer targets (tests/fuzz/fuzz_*.c) with clang and
# -fsanitize=fuzzer,address,undefined, then runs each for FUZZ_SECONDS
# (default 30).  Usage: tests/fuzz/run.sh [BUILD_DIR]   (default /tmp/migd-fuzz)
#
# The seed corpora in tests/fuzz/corpus/<target>/ are only read: new inputs
# go to BUILD_DIR/corpus/<target>/, crashes to BUILD_DIR/artifacts/<target>/.
# Prints per target the executions, coverage and exit status; exits 1 if any
# target crashed, leaked or hit a check, 2 if the build failed.
#
# Environment: FUZZ_SECONDS (per target), FUZZ_TARGETS (e.g. "rpc config"),
# CC (default clang), FUZZ_JOBS (libFuzzer -jobs/-workers, default 1),
# FUZZ_ARGS (extra libFuzzer flags), FUZZ_COVERAGE=1 (then report line
# coverage of daemon/*.c by each target's corpus; needs llvm-14).
# Debian 12 packages: clang libclang-rt-14-dev (libFuzzer and the sanitizer
# runtimes; not pulled in by clang with --no-install-recommends), llvm-14
# (llvm-symbolizer, for stack traces with function names), plus migd's own
# build dependencies (libpq-dev libjansson-dev libpg-query-dev libinih-dev
# nettle-dev pkgconf).
set -uo pipefail
# Flag lists ($cflags, $libs, $objs) are split on purpose.
# shellcheck disable=SC2086

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
build=${1:-/tmp/migd-fuzz}
seconds=${FUZZ_SECONDS:-30}
jobs=${FUZZ_JOBS:-1}
CC=${CC:-clang}

mkdir -p "$build/obj" "$build/bin" || exit 2
build=$(cd "$build" && pwd)

die() { echo "fuzz: $*" >&2; exit 2; }
# An LLVM tool by its plain name or Debian's versioned one.
tool() { command -v "$1" 2>/dev/null || command -v "$1-14" 2>/dev/null; }

command -v "$CC" >/dev/null 2>&1 ||
    die "no $CC; on Debian 12: apt-get install clang libclang-rt-14-dev"
printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n)'\
' { (void)d; (void)n; return 0; }\n' > "$build/obj/probe.c"
"$CC" -fsanitize=fuzzer,address,undefined "$build/obj/probe.c" \
    -o "$build/obj/probe" 2>"$build/obj/probe.log" ||
    die "$CC cannot link -fsanitize=fuzzer,address,undefined (libFuzzer" \
        "missing?): on Debian 12: apt-get install libclang-rt-14-dev;" \
        "see $build/obj/probe.log"

pc_cflags=$(pkg-config --cflags libpq jansson nettle 2>/dev/null ||
    echo "-I/usr/include/postgresql")
san="-fsanitize=address,undefined -fno-sanitize-recover=all"
cflags="-std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer $san
    -I$top/include -I$top/daemon -I$here $pc_cflags -Wall -Wextra"
# As Makefile.am links libmigd.a (SHA-256 comes from nettle).
libs="-linih -lpg_query -ljansson -lpq -lnettle"
# The pure modules: libmigd.a's C files, as Makefile.am lists them.
modules=$(sed -n '/^libmigd_a_SOURCES/,/^$/p' "$top/Makefile.am" |
    grep -o 'daemon/[a-z_]*\.c' | sed 's|daemon/||; s|\.c$||' | tr '\n' ' ')
[ -n "$modules" ] || die "no libmigd_a_SOURCES in Makefile.am"

echo "==> building into $build"
objs=""
for m in $modules; do
    # The daemon code gets coverage instrumentation but no libFuzzer main.
    $CC $cflags -fsanitize=fuzzer-no-link -c "$top/daemon/$m.c" \
        -o "$build/obj/$m.o" || die "cannot compile daemon/$m.c"
    objs="$objs $build/obj/$m.o"
done

targets=${FUZZ_TARGETS:-}
if [ -z "$targets" ]; then
    for f in "$here"/fuzz_*.c; do
        t=$(basename "$f" .c)
        targets="$targets ${t#fuzz_}"
    done
fi
for t in $targets; do
    $CC $cflags -fsanitize=fuzzer "$here/fuzz_$t.c" $objs $libs \
        -o "$build/bin/fuzz_$t" || die "cannot build fuzz_$t"
done

# Leaks are failures; UBSan stops at the first report (recover is off).
# Stack traces get function names when llvm-symbolizer is around.
if [ -z "${ASAN_SYMBOLIZER_PATH:-}" ] && sym=$(tool llvm-symbolizer); then
    export ASAN_SYMBOLIZER_PATH=$sym
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# A libpg_query leak that is not ours (tests/lsan.supp says which).
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$(cd "$(dirname "$0")/.." && pwd)/lsan.supp}

failed=0
summary=""
echo "==> running each target for ${seconds}s"
for t in $targets; do
    work="$build/corpus/$t" art="$build/artifacts/$t" log="$build/fuzz_$t.log"
    mkdir -p "$work" "$art"
    args=(-max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048
        -print_final_stats=1 -artifact_prefix="$art/")
    [ -f "$here/$t.dict" ] && args+=(-dict="$here/$t.dict")
    [ "$jobs" -gt 1 ] && args+=(-jobs="$jobs" -workers="$jobs")
    seeds=()
    [ -d "$here/corpus/$t" ] && seeds=("$here/corpus/$t")
    touch "$log.start"
    # The first corpus directory is where libFuzzer writes: the build dir's.
    (cd "$build" && "$build/bin/fuzz_$t" "${args[@]}" ${FUZZ_ARGS:-} \
        "$work" "${seeds[@]}") >"$log" 2>&1
    rc=$?
    if [ "$jobs" -gt 1 ]; then
        cat "$build"/fuzz-*.log >>"$log" 2>/dev/null
        rm -f "$build"/fuzz-*.log
    fi
    # Final stats when the run ended normally, else the last status line.
    execs=$(awk '/stat::number_of_executed_units/{s+=$NF; f=1}
        /^#[0-9]+/{l=substr($1, 2)} END{print f ? s : l + 0}' "$log")
    cov=$(grep -aoE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$log" | tail -1)
    status=ok
    if [ "$rc" -ne 0 ]; then
        status="FAILED (exit $rc)"
        failed=1
        echo "---- fuzz_$t failed; end of $log:"
        grep -aE '^(==[0-9]+==ERROR|SUMMARY|FUZZ CHECK|.*runtime error|    #[0-9] )' \
            "$log" | head -40
        find "$art" -type f -newer "$log.start" | sed 's/^/input: /'
    fi
    line=$(printf '%-8s %10s execs  %-32s %s' "$t" "$execs" "${cov:-cov: ?}" "$status")
    echo "$line"
    summary="$summary$line"$'\n'
done

# Optional: line coverage of the daemon code by each target's whole corpus
# (seeds plus what this run found), with clang's source-based coverage.
if [ "${FUZZ_COVERAGE:-0}" = 1 ] && ! { profdata=$(tool llvm-profdata) &&
    llvmcov=$(tool llvm-cov); }; then
    echo "fuzz: no coverage report: llvm-profdata and llvm-cov are missing" \
        "(apt-get install llvm-14)" >&2
elif [ "${FUZZ_COVERAGE:-0}" = 1 ]; then
    echo
    echo "==> line coverage of daemon/ by each corpus"
    cov="$build/cov"
    mkdir -p "$cov/obj"
    covcflags="-std=c11 -D_GNU_SOURCE -g -O0 -fprofile-instr-generate
        -fcoverage-mapping -I$top/include -I$top/daemon -I$here $pc_cflags"
    cobjs=""
    for m in $modules; do
        $CC $covcflags -c "$top/daemon/$m.c" -o "$cov/obj/$m.o" ||
            die "cannot compile daemon/$m.c for coverage"
        cobjs="$cobjs $cov/obj/$m.o"
    done
    for t in $targets; do
        $CC $covcflags -fsanitize=fuzzer "$here/fuzz_$t.c" $cobjs $libs \
            -o "$cov/fuzz_$t" || die "cannot build fuzz_$t for coverage"
        rm -f "$cov/$t"-*.profraw
        # One input per process: a crashing input loses only its own profile.
        find "$build/corpus/$t" "$here/corpus/$t" -type f 2>/dev/null |
        while read -r f; do
            LLVM_PROFILE_FILE="$cov/$t-%4m.profraw" "$cov/fuzz_$t" "$f" \
                >/dev/null 2>&1
        done
        "$profdata" merge -sparse "$cov/$t"-*.profraw -o "$cov/$t.profdata" &&
        "$llvmcov" report "$cov/fuzz_$t" -instr-profile="$cov/$t.profdata" \
            "$top/daemon/" 2>/dev/null |
            awk -v t="$t" '$1 ~ /\.c$/ && $8 != "-" && $(NF-3) != "0.00%" {
                printf "%-8s %-10s lines %7s of %4s  branches %7s of %4s\n",
                    t, $1, $(NF-3), $(NF-5), $NF, $(NF-2)}'
    done
fi

echo
echo "==> summary (logs in $build/fuzz_<target>.log)"
printf '%s' "$summary"
exit $failed
