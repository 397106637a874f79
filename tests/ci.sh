#!/usr/bin/env bash
# Sets up and runs migd's whole test suite on a fresh Debian 12 machine:
# installs the packages, builds with warnings as errors and with
# AddressSanitizer + UBSan, runs the C unit tests and the integration tests
# (a throwaway PostgreSQL, the real migd and migctl), checks the tarball
# with distcheck, and ends with "N passed, N failed, N skipped".
set -uo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
. tests/debian-deps.sh
migd_install_deps || exit 1
# the real dbmate, for the tests that compare with it (npm registry)
migd_install_dbmate

build=${MIGD_BUILD_DIR:-$top/build/ci}
passed=0 failed=0 skipped=0

step() { echo; echo "==> $*"; }

step "configure and build ($build, -Werror, ASan+UBSan)"
autoreconf -fi >/dev/null 2>&1 || { autoreconf -fi; exit 1; }
rm -rf "$build" && mkdir -p "$build" && cd "$build" || exit 1
"$top/configure" -q --enable-werror --enable-sanitizers || exit 1
make -j"$(nproc)" >/dev/null || { make; exit 1; }

# ASan: report leaks, fail on errors; UBSan: fail on the first report.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=23
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# A libpg_query leak that is not ours (tests/lsan.supp says which).
export LSAN_OPTIONS=suppressions=$top/tests/lsan.supp

step "unit tests"
make -j"$(nproc)" check >/dev/null 2>&1
crc=$?
for log in tests/unit/*.log; do
    grep -E '^(not ok|ok|Bail out)|^#   ' "$log" | grep -vE '^ok' || true
done
read -r up uf us < <(awk '/^# PASS:/{p=$3} /^# FAIL:/{f+=$3} /^# ERROR:/{f+=$3}
    /^# SKIP:/{s=$3} END{print p+0, f+0, s+0}' test-suite.log 2>/dev/null ||
    echo 0 0 0)
# A unit program that crashed or could not be built leaves no summary.
if [ "$crc" -ne 0 ] && [ "$uf" -eq 0 ]; then
    echo "unit: make check failed (exit $crc) without a failing test counted"
    grep -hE 'ERROR:|runtime error|AddressSanitizer' tests/unit/*.log | head -20
    uf=$((uf + 1))
fi
echo "unit: $up passed, $uf failed, $us skipped"
passed=$((passed + up)) failed=$((failed + uf)) skipped=$((skipped + us))

# Runs pytest on a directory with a JUnit report and adds its counts.
pytest_counted() {
    local name=$1 xml=$2; shift 2
    rm -f "$xml"
    /usr/bin/python3 -m pytest -p no:cacheprovider -q -rfEs --junitxml="$xml" "$@"
    local prc=$? p f k
    read -r p f k < <(/usr/bin/python3 - "$xml" <<'PY'
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except Exception:
    print(0, 1, 0); sys.exit()
suites = [root] if root.tag == "testsuite" else list(root)
t = sum(int(s.get("tests", 0)) for s in suites)
f = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
k = sum(int(s.get("skipped", 0)) for s in suites)
print(t - f - k, f, k)
PY
)
    # pytest exits 0 or 1 when it ran tests; anything else means it could not.
    if [ "$prc" -gt 1 ] || [ "$((p + f))" -eq 0 ]; then
        echo "$name: pytest could not run (exit $prc)"
        f=$((f + 1))
    fi
    echo "$name: $p passed, $f failed, $k skipped"
    passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + k))
}

step "integration tests (real PostgreSQL, migd and migctl)"
# Two or more at once (pytest-xdist, one PostgreSQL per worker): the tests
# mostly wait on servers and timers; 16 min one at a time, 11 min two at a
# time on the 2-core CI machine.
workers=$(nproc); [ "$workers" -lt 2 ] && workers=2; [ "$workers" -gt 4 ] && workers=4
MIGD_BIN="$build/migd" MIGCTL_BIN="$build/migctl" \
    pytest_counted integration "$build/integration.xml" -n "$workers" -m "not plain" \
    "$top/tests/integration"

step "valgrind memcheck of a plain build (start, runs, errors, reload, stop)"
plain=$top/build/plain
rm -rf "$plain" && mkdir -p "$plain" &&
    (cd "$plain" && "$top/configure" -q >/dev/null && make -j"$(nproc)" migd >/dev/null)
MIGD_VALGRIND_BIN="$plain/migd" \
    pytest_counted valgrind "$plain/valgrind.xml" "$top/tests/valgrind"

step "timings of migd's loop on the plain build (integration tests marked plain)"
MIGD_BIN="$plain/migd" MIGCTL_BIN="$build/migctl" \
    pytest_counted plain "$plain/plain.xml" -m plain "$top/tests/integration"

step "fuzz smoke (libFuzzer, ${FUZZ_SECONDS:-10} s per target, seeds and reproducers first)"
FUZZ_SECONDS=${FUZZ_SECONDS:-10} bash "$top/tests/fuzz/run.sh" "$build/fuzz" > "$build/fuzz.log" 2>&1
frc=$?
sed -n '/==> summary/,$p' "$build/fuzz.log"
fp=$(sed -n '/==> summary/,$p' "$build/fuzz.log" | grep -c ' ok$')
ff=$(sed -n '/==> summary/,$p' "$build/fuzz.log" | grep -c 'FAILED')
if [ "$frc" -ne 0 ] && [ "$ff" -eq 0 ]; then
    tail -30 "$build/fuzz.log"; ff=1
fi
echo "fuzz: $fp passed, $ff failed"
passed=$((passed + fp)) failed=$((failed + ff))

if [ "${MIGD_SKIP_DISTCHECK:-}" != 1 ]; then
    step "make distcheck (plain build of the release tarball)"
    dist=$top/build/dist
    rm -rf "$dist" && mkdir -p "$dist" && cd "$dist" &&
        "$top/configure" -q >/dev/null &&
        make -j"$(nproc)" distcheck >distcheck.log 2>&1
    if [ $? -eq 0 ]; then
        passed=$((passed + 1)); echo "distcheck: ok"
    else
        failed=$((failed + 1)); tail -40 "$dist/distcheck.log"
        echo "distcheck: FAILED"
    fi
fi

echo
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
