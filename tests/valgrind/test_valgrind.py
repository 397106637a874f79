"""migd under valgrind memcheck (issue 5, item 11).

A plain (non-sanitizer) migd, from $MIGD_VALGRIND_BIN (default build/plain/migd),
runs under `valgrind --leak-check=full --errors-for-leak-kinds=definite
--error-exitcode=99` through a whole life: start, status, upgrade of a few
revisions, a failing migration, bad requests, downgrade, reload (SIGHUP, with a
changed pool size and a new revision), a conninfo change, stop (SIGTERM). The
test fails if valgrind reports any memory error or a definite leak, or migd does
not exit 0. A throwaway PostgreSQL is started with the integration tests' harness.

Run it with tests/valgrind/run.sh (which builds build/plain when needed).
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

import migdtest  # noqa: E402
from migdtest import Migd, PgCluster, assert_error, assert_result, wait_for  # noqa: E402
from engine_helpers import Bg, call, versions, wait_activity, write_rev  # noqa: E402

BIN = os.environ.get("MIGD_VALGRIND_BIN") or os.path.join(REPO, "build", "plain", "migd")
VALGRIND = shutil.which("valgrind") or "/usr/bin/valgrind"
SLOW = 60.0      # seconds: everything is 20-50 times slower under memcheck


class VgMigd(Migd):
    """A Migd started under valgrind; valgrind's report goes to its own file."""

    def start(self, wait=True, timeout=SLOW):
        self.vg_log = os.path.join(self.dir, "valgrind.log")
        self._logf = open(self.log_path, "ab")
        cmd = [VALGRIND, "--tool=memcheck", "--leak-check=full",
               "--show-leak-kinds=definite", "--errors-for-leak-kinds=definite",
               "--error-exitcode=99", "--num-callers=40", "--track-fds=no",
               "--log-file=" + self.vg_log, BIN, "-c", self.config_path] + self.args
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._logf,
                                     stderr=self._logf, env=migdtest.clean_env(),
                                     cwd=self.dir)
        if wait:
            self.wait_ready(timeout)
        return self

    def vg(self):
        try:
            with open(self.vg_log, errors="replace") as f:
                return f.read()
        except OSError as e:
            return "(no valgrind log: %s)" % e


@pytest.fixture(scope="module")
def cluster():
    assert os.access(BIN, os.X_OK), (
        "no plain migd at %s: build one (tests/valgrind/run.sh does) or set "
        "MIGD_VALGRIND_BIN" % BIN)
    assert os.access(VALGRIND, os.X_OK), "valgrind is not installed (apt-get install valgrind)"
    ldd = subprocess.run(["ldd", BIN], capture_output=True, text=True).stdout
    assert "libasan" not in ldd and "libubsan" not in ldd, \
        "%s is a sanitizer build; valgrind needs a plain one (./configure without " \
        "--enable-sanitizers)" % BIN
    bindir = migdtest.pg_bindir()
    assert bindir, "PostgreSQL server binaries not found (set PG_BINDIR)"
    c = PgCluster(bindir, migdtest.pg_runas_user())
    try:
        c.start()
        yield c
    finally:
        c.destroy()


@pytest.fixture
def vg_migd(cluster, request):
    db = cluster.create_db("vg_%d" % os.getpid())
    workdir = migdtest.short_tempdir("migdvg-")
    m = VgMigd(workdir, cluster.conninfo(db), db=db, pg=cluster)
    m.write_config({("database", "connect_timeout"): "10"})
    yield m
    if m.proc is not None and m.proc.poll() is None:
        m.proc.kill()
        m.proc.wait()
    failed = getattr(request.node, "_vg_failed", True)
    if failed:
        sys.stderr.write("\n--- migd log ---\n%s\n--- valgrind log ---\n%s\n"
                         % (m.log()[-6000:], m.vg()[-20000:]))
    cluster.drop_db(db)
    if not os.environ.get("MIGD_TEST_KEEP"):
        shutil.rmtree(workdir, ignore_errors=True)


def ok(m, method, params=None):
    _, r = call(m, method, params, timeout=SLOW)
    assert "error" not in r, (method, params, r)
    return r["result"]


def test_memcheck_whole_life(vg_migd, request):
    m = vg_migd
    m.start()
    m.wait_connected(True, timeout=SLOW, full=True)
    for i in (1, 2, 3):
        write_rev(m, "v%d.sql" % i, "v%d" % i, down="none" if i == 1 else "v%d" % (i - 1),
                  up="CREATE TABLE public.v%d_t (id int);" % i,
                  down_sql="DROP TABLE public.v%d_t;" % i, message="step %d" % i)
    # read-only requests
    for method in ("version", "status", "plan", "schemas", "heads", "current", "verify"):
        assert_result(m.rpc(method, id=1, timeout=SLOW), 1)
    # bad input on the wire
    with m.connect(timeout=SLOW) as c:
        c.send(b"\xff\xfe not json\n")
        assert_error(c.recv(), -32700, "parse_error", None)
        c.send("[1]\n")
        assert_error(c.recv(), -32600, "invalid_request", None)
        c.send('{"jsonrpc":"2.0","id":2,"method":"nope"}\n')
        assert_error(c.recv(), -32601, "method_not_found", 2)
        c.send('{"jsonrpc":"2.0","id":3,"method":"status","params":{"x":1}}\n')
        assert_error(c.recv(), -32602, "invalid_params", 3)
    with m.connect(timeout=SLOW) as c:
        c.send(b"[" * 70000 + b"\n")
        assert_error(c.recv(), -32001, "request_too_large", None)
        c.expect_eof(SLOW)
    # upgrade, then a failing migration (rolled back), then downgrade
    res = ok(m, "upgrade", {"target": "head"})
    assert [s["revision"] for s in res["steps"]] == ["v1", "v2", "v3"]
    write_rev(m, "v4.sql", "v4", down="v3", up="CREATE TABLE public.v4_t (id int);\n"
              "SELECT 1/0;")
    _, r = call(m, "upgrade", {}, timeout=SLOW)
    assert r["error"]["data"]["kind"] == "sql_error", r
    os.unlink(os.path.join(m.migrations_dir, "v4.sql"))
    res = ok(m, "downgrade", {"target": "-1"})
    assert [s["revision"] for s in res["steps"]] == ["v3"]
    assert versions(m) == ["v2"]
    assert_result(m.rpc("history", {"limit": 10}, id=3, timeout=SLOW), 3)
    # reload: a bigger pool, a new revision, then a changed conninfo
    n = m.log().count("reload")
    m.write_config({("database", "pool_size"): "3"})
    m.signal(signal.SIGHUP)
    wait_for(lambda: m.log().count("reload") > n, SLOW, what="the reload in the log")
    m.wait_connected(True, timeout=SLOW, full=True)
    assert m.status()["database"]["pool"]["size"] == 3
    write_rev(m, "v4.sql", "v4", down="v3", up="CREATE TABLE public.v4_t (id int);")
    res = ok(m, "upgrade", {})
    assert [s["revision"] for s in res["steps"]] == ["v3", "v4"]
    n = m.log().count("reload")
    m.write_config({("database", "conninfo"): m.pg.conninfo(m.db, "application_name=vg2"),
                    ("database", "pool_size"): "1"})
    m.signal(signal.SIGHUP)
    wait_for(lambda: m.log().count("reload") > n, SLOW, what="the second reload")
    m.wait_connected(True, timeout=SLOW, full=True)
    assert_result(m.rpc("status", id=4, timeout=SLOW), 4)
    # a client that leaves in the middle of a request
    with m.connect(timeout=SLOW) as c:
        c.send('{"jsonrpc":"2.0","id":5,"method":"status"}\n')
    time.sleep(0.5)
    # stop in the middle of a run, with a request queued behind it
    write_rev(m, "v5.sql", "v5", down="v4", up="SELECT pg_sleep(2) AS vg_sleeper;")
    run = Bg(lambda: call(m, "upgrade", {}, timeout=SLOW))
    wait_activity(m, "vg_sleeper", timeout=SLOW)
    queued = Bg(lambda: call(m, "upgrade", {}, timeout=SLOW))
    time.sleep(0.5)
    m.signal(signal.SIGTERM)
    for b in (run, queued):
        _, r = b.join(SLOW * 2)
        assert "result" in r or r["error"]["data"]["kind"] == "shutting_down", r
    try:
        rc = m.proc.wait(SLOW * 2)
    except subprocess.TimeoutExpired:
        raise AssertionError("migd under valgrind did not stop within %ds" % (SLOW * 2))
    report = m.vg()
    errors = re.search(r"ERROR SUMMARY: (\d+) errors", report)
    assert errors, "no valgrind summary:\n" + report[-5000:]
    definite = re.search(r"definitely lost: ([\d,]+) bytes", report)
    assert rc == 0, "migd exited %d under valgrind (99: valgrind found errors):\n%s" \
        % (rc, report[-20000:])
    assert errors.group(1) == "0", report[-20000:]
    assert definite is None or definite.group(1) == "0", report[-20000:]
    assert not os.path.exists(m.socket)
    request.node._vg_failed = False
