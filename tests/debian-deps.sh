# Sourced by tests/ci.sh and examples/demo.sh: installs what migd needs to
# build and test on Debian 12, when run as root; otherwise checks and says
# which command to run.
MIGD_DEPS="build-essential autoconf automake pkgconf libevent-dev libpq-dev
libjansson-dev libpg-query-dev libinih-dev libsystemd-dev nettle-dev
postgresql-15 postgresql-client-15 python3 python3-pytest python3-pytest-xdist
python3-alembic python3-psycopg2 pgbouncer socat procps clang libclang-rt-14-dev llvm-14 valgrind
util-linux ca-certificates"

migd_install_deps() {
    local missing=""
    for p in $MIGD_DEPS; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
            missing="$missing $p"
    done
    [ -z "$missing" ] && return 0
    if [ "$(id -u)" != 0 ]; then
        echo "missing packages:$missing" >&2
        echo "run as root, or: sudo apt-get install -y$missing" >&2
        return 1
    fi
    echo "==> installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # Debian's postgresql package would start a cluster: we run our own.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        MIGD_REMOVE_POLICY=1
    fi
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
    [ -n "${MIGD_REMOVE_POLICY:-}" ] && rm -f /usr/sbin/policy-rc.d
    return 0
}

# dbmate from npm, for the tests and benches that run the real tool: the
# package brings a prebuilt binary in an optional dependency
# (@dbmate/linux-x64), called directly, as the node wrapper would (it adds
# node's start-up to every call).  Sets MIGD_DBMATE, or MIGD_DBMATE_WHY
# (said) and returns 1.  npm: Debian's, unless one is there (NodeSource's nodejs ships
# its own and conflicts with Debian's npm).
migd_install_dbmate() {
    local cache=${XDG_CACHE_HOME:-$HOME/.cache}/migd-bench why="" f
    MIGD_DBMATE="" MIGD_DBMATE_WHY=""
    if ! command -v npm >/dev/null 2>&1; then
        MIGD_DEPS="nodejs npm" migd_install_deps || return 1
    fi
    mkdir -p "$cache/npm"
    if [ ! -x "$cache/npm/node_modules/.bin/dbmate" ]; then
        (cd "$cache/npm" && { [ -f package.json ] || npm init -y >/dev/null 2>&1; } &&
            npm install --no-audit --no-fund dbmate >npm.log 2>&1) ||
            why="npm install dbmate failed: $(tail -3 "$cache/npm/npm.log" 2>/dev/null | tr '\n' ' ')"
    fi
    for f in "$cache"/npm/node_modules/@dbmate/*/bin/dbmate; do
        [ -x "$f" ] && "$f" --version >/dev/null 2>&1 && MIGD_DBMATE=$f && return 0
    done
    MIGD_DBMATE_WHY=${why:-the npm package installed no runnable binary for $(uname -m)}
    echo "dbmate not installed: $MIGD_DBMATE_WHY" >&2
    return 1
}
