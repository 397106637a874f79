#!/usr/bin/env bash
# Runs a plain (non-sanitizer) migd under valgrind memcheck over a whole life
# (start, status, upgrade, a failing migration, bad requests, downgrade, reload,
# stop during a run) against a throwaway PostgreSQL, and fails on any memory
# error or definite leak. See tests/valgrind/test_valgrind.py.
#
#   tests/valgrind/run.sh                  # uses $MIGD_VALGRIND_BIN, else build/plain/migd
#                                          # (configured and built there if missing)
#   MIGD_VALGRIND_BIN=/path/to/migd tests/valgrind/run.sh
#
# Needs valgrind, PostgreSQL 15 server binaries and python3-pytest. As root the
# cluster runs as the postgres user, like the integration tests.
set -euo pipefail
cd "$(dirname "$0")/../.."
top=$(pwd)

if ! command -v valgrind >/dev/null 2>&1; then
    echo "valgrind: not installed (apt-get install valgrind)" >&2
    exit 1
fi

if [ -z "${MIGD_VALGRIND_BIN:-}" ]; then
    MIGD_VALGRIND_BIN=$top/build/plain/migd
    if [ ! -x "$MIGD_VALGRIND_BIN" ]; then
        echo "==> building a plain migd in build/plain"
        [ -x "$top/configure" ] || autoreconf -fi
        mkdir -p "$top/build/plain"
        (cd "$top/build/plain" && "$top/configure" -q && make -j"$(nproc)" migd >/dev/null) || {
            echo "valgrind: could not build a plain migd in build/plain" \
                 "(an in-tree build must be 'make distclean'ed first)" >&2
            exit 1
        }
    fi
fi
export MIGD_VALGRIND_BIN

echo "==> valgrind memcheck of $MIGD_VALGRIND_BIN"
exec /usr/bin/python3 -m pytest -p no:cacheprovider -q -rfEs "$top/tests/valgrind" "$@"
