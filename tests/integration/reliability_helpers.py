"""Helpers for the reliability, abuse and failover tests (issue 5).

They inject real faults (PostgreSQL stopped, migd killed, hostile clients) into a
real migd and a real PostgreSQL, and check what survives: the daemon, the other
clients, and the state in the database.
"""

import json
import os
import re
import signal
import socket
import subprocess
import threading
import time

import migdtest
from engine_helpers import q, rows, write_rev

# Markers of a crash or a sanitizer report in migd's log.
CRASH_RE = re.compile(r"AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|"
                      r"runtime error:|Segmentation fault|SIGSEGV|SIGABRT|"
                      r"Assertion .* failed|stack-overflow|heap-use-after-free|"
                      r"double free|core dumped")


def durable(cluster):
    """The test clusters run with synchronous_commit = off: a commit may still be in
    PostgreSQL's WAL buffers when it is stopped with -m immediate, and then it is
    lost for reasons that have nothing to do with migd. Tests that kill PostgreSQL
    turn it back on (postgresql.auto.conf wins over the harness's settings)."""
    cluster.psql("ALTER SYSTEM SET synchronous_commit = on")
    cluster.psql("SELECT pg_reload_conf()")
    migdtest.wait_for(lambda: cluster.psql("SHOW synchronous_commit") == "on", 5,
                      what="synchronous_commit = on")


def assert_alive(m):
    """migd is still running, answers version, and its log shows no crash."""
    rc = m.proc.poll()
    assert rc is None, "migd exited with status %r:\n%s" % (rc, m.log()[-4000:])
    r = m.rpc("version", id=424242, timeout=5)
    assert migdtest.assert_result(r, 424242)["name"] == "migd"
    assert_no_crash(m)


def assert_no_crash(m):
    bad = [l for l in m.log().splitlines() if CRASH_RE.search(l)]
    assert not bad, "crash markers in migd's log:\n" + "\n".join(bad[:20])


def advisory_locks(m):
    """Advisory locks held or awaited on m's database, by anyone."""
    return int(q(m, "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = "
                    "l.database WHERE l.locktype = 'advisory' AND d.datname = "
                    "current_database()"))


def up_successes(m, revision, table="public.migd_history"):
    return int(q(m, "SELECT count(*) FROM %s WHERE revision = '%s' AND direction = 'up' "
                    "AND success" % (table, revision)))


def applied_history(m, table="public.migd_history"):
    """Revisions whose latest successful up/down/stamp/resolve row says applied, by
    replaying the history: what the history claims the version table should hold
    for a linear chain (the last successful up not followed by a successful down)."""
    out = rows(m, "SELECT revision, direction FROM %s WHERE success AND NOT dirty "
                  "ORDER BY id" % table)
    state = {}
    for rev, direction in out:
        if direction == "up":
            state[rev] = True
        elif direction == "down":
            state[rev] = False
    return sorted(r for r, on in state.items() if on)


def sleeper_chain(m, sleep="3", marker="rel_sleeper", n_after=1):
    """r1 (quick), r2 (CREATE TABLE public.r2_t; pg_sleep), r3.. (quick)."""
    write_rev(m, "r1_first.sql", "r1", up="CREATE TABLE public.r1_t (id int);",
              down_sql="DROP TABLE public.r1_t;", message="first")
    write_rev(m, "r2_sleepy.sql", "r2", down="r1", up="""
        CREATE TABLE public.r2_t (id int);
        SELECT pg_sleep(%s) AS %s;
        """ % (sleep, marker), down_sql="DROP TABLE public.r2_t;", message="sleepy")
    prev = "r2"
    for i in range(3, 3 + n_after):
        write_rev(m, "r%d_after.sql" % i, "r%d" % i, down=prev,
                  up="CREATE TABLE public.r%d_t (id int);" % i,
                  down_sql="DROP TABLE public.r%d_t;" % i, message="after %d" % i)
        prev = "r%d" % i


def copy_migrations(src, dst):
    for name in os.listdir(src.migrations_dir):
        p = os.path.join(src.migrations_dir, name)
        if os.path.isfile(p):
            with open(p) as f, open(os.path.join(dst.migrations_dir, name), "w") as g:
                g.write(f.read())


def call_or_eof(m, method, params=None, timeout=30.0, id=1):
    """Like engine_helpers.call, but returns (notes, None) when migd closes the
    connection before replying (it was killed)."""
    notes = []
    with migdtest.Conn(m.socket, timeout) as c:
        c.send(migdtest.request(method, params, id))
        while True:
            line = c.readline(timeout)
            if line is None:
                return notes, None
            msg = json.loads(line)
            if "id" in msg:
                return notes, msg
            notes.append(msg)


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


class StatusProber:
    """A second client that keeps asking `status` while something else goes on.

    Two ways at once: over one persistent connection (opened before the abuse
    starts, so it keeps its slot under max_clients), and, if fresh=True, over a
    new connection each time. Every answer must come within `bound` seconds; a
    missing or late answer is recorded, and check() fails on any.
    """

    def __init__(self, m, bound=2.0, fresh=True, interval=0.05):
        self.m = m
        self.bound = bound
        self.fresh = fresh
        self.interval = interval
        self.latencies = []
        self.failures = []
        self._stop = threading.Event()
        self._conn = m.connect(timeout=bound + 3)
        migdtest.assert_result(self._conn.call("status", id=0), 0)
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _one(self, conn, i):
        t0 = time.monotonic()
        try:
            r = conn.call("status", id=i, timeout=self.bound + 3)
        except Exception as e:   # recorded; check() reports it
            self.failures.append("status %d: %r" % (i, e))
            return False
        took = time.monotonic() - t0
        self.latencies.append(took)
        if not (isinstance(r, dict) and r.get("id") == i and "result" in r):
            self.failures.append("status %d: bad reply %r" % (i, r))
        elif took > self.bound:
            self.failures.append("status %d took %.2fs (bound %.1fs)" % (i, took, self.bound))
        return True

    def _run(self):
        i = 1
        while not self._stop.is_set():
            if not self._one(self._conn, i):
                return
            i += 1
            if self.fresh:
                try:
                    with self.m.connect(timeout=self.bound + 3) as c:
                        self._one(c, i)
                except OSError as e:
                    self.failures.append("fresh connection %d: %r" % (i, e))
                i += 1
            self._stop.wait(self.interval)

    def check(self, min_answers=3):
        """Stop (after at least min_answers) and assert that every status was
        answered within the bound."""
        deadline = time.monotonic() + min_answers * (self.bound + 0.5)
        while (len(self.latencies) < min_answers and not self.failures
               and self._t.is_alive() and time.monotonic() < deadline):
            time.sleep(0.05)
        self._stop.set()
        self._t.join(self.bound + 10)
        self._conn.close()
        assert not self._t.is_alive(), "status prober stuck"
        assert not self.failures, "status prober: %d problems: %s (answered %d, max %.2fs)" \
            % (len(self.failures), self.failures[:10], len(self.latencies),
               max(self.latencies or [0]))
        assert len(self.latencies) >= min_answers, \
            "status prober got only %d answers" % len(self.latencies)
        return self.latencies


def raw_socket(path, timeout=5.0):
    """A connected socket. A full listen backlog makes a Unix-socket connect with a
    timeout fail with EAGAIN at once: retry until timeout."""
    deadline = time.monotonic() + timeout
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(path)
            return s
        except BlockingIOError:
            s.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def wait_no_advisory_lock(m, timeout):
    """Seconds until no advisory lock is left on m's database; fails after timeout."""
    t0 = time.monotonic()
    migdtest.wait_for(lambda: advisory_locks(m) == 0, timeout, interval=0.1,
                      what="the advisory (migration) lock to be released")
    return time.monotonic() - t0


def sigkill(m):
    m.proc.send_signal(signal.SIGKILL)
    m.proc.wait(10)


def run_bg(cmd, env):
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, stdin=subprocess.DEVNULL)
