"""migd behind a real PgBouncer (Debian's /usr/sbin/pgbouncer): a pooler in
transaction or statement mode shares server sessions between its clients, so
migd refuses it (its advisory lock and its settings would land on other
clients' sessions, and two daemons could run one migration twice); a
PgBouncer database in session mode works."""

import os
import pwd
import random
import shutil
import signal
import subprocess
import time

import pytest

import migdtest
from conftest import _logs
from engine_helpers import (E_DB_UNAVAILABLE, X_FAILED, Bg, call, connected, err, ok, q,
                            rel_exists, versions, write_rev)

PGBOUNCER = "/usr/sbin/pgbouncer"

pytestmark = pytest.mark.skipif(not os.access(PGBOUNCER, os.X_OK),
                                reason="pgbouncer is not installed")


class Bouncer:
    """One PgBouncer process in front of one database of a test cluster,
    listening on a Unix socket in its own directory, as an unprivileged user."""

    def __init__(self, pg, db, mode):
        self.pg = pg
        self.db = db
        self.mode = mode
        self.dir = migdtest.short_tempdir("migdpgb-")
        self.log_path = os.path.join(self.dir, "pgbouncer.log")
        self.ini = os.path.join(self.dir, "pgbouncer.ini")
        self.proc = None
        self.port = None
        user = pg.user
        if user:
            pw = pwd.getpwnam(user)
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)

    def _write(self):
        with open(os.path.join(self.dir, "users.txt"), "w") as f:
            f.write('"postgres" ""\n')
        with open(self.ini, "w") as f:
            f.write("[databases]\n"
                    "%s = host=%s port=%d dbname=%s user=postgres\n"
                    "[pgbouncer]\n"
                    "listen_addr =\n"
                    "unix_socket_dir = %s\n"
                    "listen_port = %d\n"
                    "auth_type = trust\n"
                    "auth_file = %s/users.txt\n"
                    "pool_mode = %s\n"
                    "default_pool_size = 10\n"
                    "logfile = %s\n"
                    "pidfile = %s/pgbouncer.pid\n"
                    % (self.db, self.pg.sockdir, self.pg.port, self.db, self.dir,
                       self.port, self.dir, self.mode, self.log_path, self.dir))

    def start(self):
        for _ in range(8):
            self.port = 40000 + random.randrange(0, 8000)
            self._write()
            cmd = [PGBOUNCER, self.ini]
            if self.pg.user:
                cmd = ["runuser", "-u", self.pg.user, "--"] + cmd
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                         env=migdtest.clean_env())
            sock = os.path.join(self.dir, ".s.PGSQL.%d" % self.port)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.proc.poll() is None:
                if os.path.exists(sock):
                    return self
                time.sleep(0.05)
            self.stop()
        raise RuntimeError("pgbouncer did not start:\n%s" % self.log())

    def conninfo(self):
        return "host=%s port=%d dbname=%s user=postgres" % (self.dir, self.port, self.db)

    def psql(self, sql):
        """SQL through the pooler, as an application would send it."""
        p = subprocess.run([self.pg.psql_bin, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                            "-h", self.dir, "-p", str(self.port), "-U", "postgres",
                            "-d", self.db, "-c", sql],
                           env=migdtest.clean_env(), capture_output=True, text=True,
                           timeout=30)
        assert p.returncode == 0, p.stderr
        return p.stdout.strip()

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError as e:
            return "(no log: %s)" % e

    def set_mode(self, mode):
        """Change pool_mode and reload PgBouncer (SIGHUP), as an operator would."""
        self.mode = mode
        self._write()
        before = self.log().count("SIGHUP")
        with open(os.path.join(self.dir, "pgbouncer.pid")) as f:
            os.kill(int(f.read().strip()), signal.SIGHUP)
        migdtest.wait_for(lambda: self.log().count("SIGHUP") > before or None, 5,
                          what="pgbouncer to reload")

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@pytest.fixture
def bouncer(request, pg, db):
    """bouncer(mode) -> a running PgBouncer in front of the test's database."""
    made = []

    def make(mode):
        b = Bouncer(pg, db, mode).start()
        made.append(b)
        _logs(request.node).append(("pgbouncer log %s" % b.log_path, b.log))
        return b
    yield make
    for b in made:
        b.stop()
        shutil.rmtree(b.dir, ignore_errors=True)


def behind(migd_factory, pg, db, b, **kw):
    return migd_factory(pg=pg, db=db, conninfo=b.conninfo(), **kw)


def refused_status(m):
    """Wait until status says migd refused the pooler; returns that status."""
    seen = []

    def check():
        s = m.status()
        d = s["database"]
        seen[:] = [d]
        if d["connected"] is False and "pool_mode = session" in (d.get("last_error") or ""):
            return s
        return None
    try:
        return migdtest.wait_for(check, 15, interval=0.1, what="the pooler refused")
    except AssertionError as e:
        raise AssertionError("%s; last status: %r" % (e, seen)) from None


def advisory_locks(m):
    return q(m, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")


def doubling(m):
    """A bare migration that doubles a balance: run twice, it shows."""
    q(m, "CREATE TABLE public.acct (id int PRIMARY KEY, balance int NOT NULL); "
         "INSERT INTO public.acct VALUES (1, 100)")
    write_rev(m, "0001_double.sql", "0001", transaction="none", up="""
        UPDATE public.acct SET balance = balance * 2;
        CREATE INDEX CONCURRENTLY acct_balance_idx ON public.acct (balance);
        """)


@pytest.mark.parametrize("mode", ["transaction", "statement"])
def test_transaction_pooling_is_refused(migd_factory, pg, db, bouncer, mode):
    b = bouncer(mode)
    m = behind(migd_factory, pg, db, b)
    doubling(m)
    s = refused_status(m)
    msg = s["database"]["last_error"]
    assert "shares server sessions" in msg and "point conninfo at PostgreSQL" in msg, msg
    t0 = time.monotonic()
    e = err(m, "upgrade", {"target": "head"}, code=E_DB_UNAVAILABLE, kind="db_unavailable")
    assert time.monotonic() - t0 < 2.0      # refused at once, not after connect_timeout
    assert "pool_mode = session" in e["message"] and "nothing ran" in e["message"], e
    assert e["data"]["pooler"] is True, e
    p = m.migctl("upgrade")
    assert p.returncode == X_FAILED and "pool_mode = session" in p.stderr, (p.stdout, p.stderr)
    p = m.migctl("resolve", "0001", "applied")
    assert p.returncode == X_FAILED and "pool_mode = session" in p.stderr, (p.stdout, p.stderr)
    p = m.migctl("status")
    assert "pool_mode = session" in p.stdout + p.stderr, (p.stdout, p.stderr)
    # nothing applied, no lock left on any server session, no setting on any
    assert q(m, "SELECT balance FROM public.acct") == "100"
    assert versions(m) is None and not rel_exists(m, "public.acct_balance_idx")
    assert advisory_locks(m) == "0"
    assert int(q(m, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid()")) > 0     # migd's checks used server sessions
    for _ in range(5):
        assert b.psql("SELECT current_setting('lock_timeout') || ' ' || "
                      "current_setting('statement_timeout')") == "0 0"
    assert "shares server sessions" in m.log()


def test_two_daemons_behind_transaction_pooling_run_nothing(migd_factory, pg, db, bouncer):
    b = bouncer("transaction")
    m1 = behind(migd_factory, pg, db, b)
    m2 = behind(migd_factory, pg, db, b)
    doubling(m1)
    write_rev(m2, "0001_double.sql", "0001", transaction="none", up="""
        UPDATE public.acct SET balance = balance * 2;
        CREATE INDEX CONCURRENTLY acct_balance_idx ON public.acct (balance);
        """)
    refused_status(m1)
    refused_status(m2)
    r1 = Bg(lambda: call(m1, "upgrade", {"target": "head"}))
    r2 = Bg(lambda: call(m2, "upgrade", {"target": "head"}))
    for _, r in (r1.join(), r2.join()):
        assert r["error"]["data"]["kind"] == "db_unavailable", r
    assert q(m1, "SELECT balance FROM public.acct") == "100"
    assert versions(m1) is None
    assert advisory_locks(m1) == "0"


def test_session_pooling_works(migd_factory, pg, db, bouncer):
    b = bouncer("session")
    m = connected(behind(migd_factory, pg, db, b))
    doubling(m)
    write_rev(m, "0002_more.sql", "0002", down="0001", up="""
        ALTER TABLE public.acct ADD COLUMN note text;
        """)
    r = ok(m, "upgrade", {"target": "head"})
    assert [s["revision"] for s in r["steps"]] == ["0001", "0002"]
    assert q(m, "SELECT balance FROM public.acct") == "200"
    assert versions(m) == ["0002"]
    assert rel_exists(m, "public.acct_balance_idx")
    assert advisory_locks(m) == "0"
    assert "a session of its own" in m.log()
    # a second run has nothing to do and runs nothing twice
    r = ok(m, "upgrade", {"target": "head"})
    assert r["steps"] == []
    assert q(m, "SELECT balance FROM public.acct") == "200"


def test_pooler_switched_to_transaction_mode_is_refused_before_the_lock(
        migd_factory, pg, db, bouncer):
    b = bouncer("session")
    m = connected(behind(migd_factory, pg, db, b))
    doubling(m)
    b.set_mode("transaction")
    e = err(m, "upgrade", {"target": "head"}, code=E_DB_UNAVAILABLE, kind="db_unavailable")
    assert "shares server sessions" in e["message"] and "nothing ran" in e["message"], e
    assert e["data"]["pooler"] is True, e
    assert q(m, "SELECT balance FROM public.acct") == "100"
    assert versions(m) is None
    assert advisory_locks(m) == "0"
    # its connections come back refused; back in session mode, it runs
    refused_status(m)
    b.set_mode("session")
    connected(m)
    r = ok(m, "upgrade", {"target": "head"})
    assert [s["revision"] for s in r["steps"]] == ["0001"]
    assert q(m, "SELECT balance FROM public.acct") == "200"
    assert advisory_locks(m) == "0"
