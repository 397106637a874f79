"""Failover (issue 5, item 9): a primary and a streaming standby, both on Unix
sockets of their own; migd's conninfo names both hosts with
target_session_attrs=read-write. After the standby is promoted and the old primary
stopped, migd reconnects to the new primary by itself and upgrades continue from
the version table that was replicated. migd never runs on a read-only standby.

As root, both clusters run as the unprivileged user the harness uses.
"""

import os
import random
import time

import pytest

import migdtest
from migdtest import PgCluster, wait_for
from engine_helpers import (E_DB_UNAVAILABLE, connected, err, history, ok, step_revs,
                            versions, write_rev)
from reliability_helpers import assert_alive, up_successes


def make_standby(primary):
    """A streaming standby of primary (pg_basebackup -R), started on its own port and
    socket directory. Built on PgCluster without running initdb."""
    s = PgCluster.__new__(PgCluster)
    s.bindir = primary.bindir
    s.user = primary.user
    s.base = migdtest.short_tempdir("migdsb-")
    s.data = os.path.join(s.base, "data")
    s.sockdir = s.base
    s.log_path = os.path.join(s.base, "postgresql.log")
    s.port = None
    s.destroyed = False
    s.psql_bin = primary.psql_bin
    s.major = primary.major
    if s.user:
        import pwd
        pw = pwd.getpwnam(s.user)
        os.chown(s.base, pw.pw_uid, pw.pw_gid)
    os.chmod(s.base, 0o700)
    assert primary.psql("SHOW wal_level") in ("replica", "logical")
    s._run([os.path.join(s.bindir, "pg_basebackup"), "-D", s.data, "-h", primary.sockdir,
            "-p", str(primary.port), "-U", "postgres", "-R", "-X", "stream", "--no-sync",
            "-c", "fast"], timeout=120)
    last = None
    for _ in range(8):
        s.port = 54321 + random.randrange(2000, 4000)
        s._write_settings()          # its own port and socket directory
        p = s._run([os.path.join(s.bindir, "pg_ctl"), "-D", s.data, "-l", s.log_path,
                    "-w", "-t", "30", "start"], check=False)
        if p.returncode == 0:
            break
        last = p
        s._run([os.path.join(s.bindir, "pg_ctl"), "-D", s.data, "-m", "immediate",
                "stop"], check=False)
    else:
        raise RuntimeError("standby did not start: %s %s\n%s"
                           % (last.stdout, last.stderr, s.log_tail()))
    assert s.psql("SELECT pg_is_in_recovery()") == "t"
    return s


@pytest.fixture
def standby(request, own_pg):
    s = make_standby(own_pg)
    request.node._migd_logs = getattr(request.node, "_migd_logs", [])
    request.node._migd_logs.append(("standby postgresql log %s" % s.log_path,
                                    lambda: s.log_tail(80)))
    yield s
    s.destroy()


def conninfo(primary, standby, db):
    return ("host=%s,%s port=%d,%d dbname=%s user=postgres "
            "target_session_attrs=read-write"
            % (primary.sockdir, standby.sockdir, primary.port, standby.port, db))


def caught_up(primary, standby, db):
    """Wait until the standby has replayed everything the primary wrote so far."""
    lsn = primary.psql("SELECT pg_current_wal_lsn()")
    wait_for(lambda: standby.psql("SELECT pg_last_wal_replay_lsn() >= '%s'::pg_lsn" % lsn)
             == "t", 15, what="the standby to replay up to " + lsn)
    assert standby.psql("SELECT count(*) FROM pg_database WHERE datname = '%s'" % db) == "1"


def promote(s):
    s._run([os.path.join(s.bindir, "pg_ctl"), "-D", s.data, "-w", "-t", "30", "promote"])
    wait_for(lambda: s.psql("SELECT pg_is_in_recovery()") == "f", 15,
             what="the standby to leave recovery")


def chain3(m):
    for i in (1, 2, 3):
        write_rev(m, "f%d.sql" % i, "f%d" % i, down="none" if i == 1 else "f%d" % (i - 1),
                  up="CREATE TABLE public.f%d_t (id int);" % i,
                  down_sql="DROP TABLE public.f%d_t;" % i)


def on(m, cluster):
    """Point the test's psql helpers (q, versions, history) at cluster."""
    m.pg = cluster
    return m


def test_failover_promote_standby_then_stop_primary(migd_factory, own_pg, standby, make_db):
    primary = own_pg
    db = make_db(primary)
    m = connected(migd_factory(pg=primary, db=db, conninfo=conninfo(primary, standby, db)))
    s = m.status()["database"]
    assert (s["host"], s["port"]) == (primary.sockdir, str(primary.port)), s
    chain3(m)
    assert step_revs(ok(m, "upgrade", {"target": "f2"})) == ["f1", "f2"]
    caught_up(primary, standby, db)
    assert versions(on(m, standby)) == ["f2"]          # replicated

    promote(standby)
    primary.stop("fast")
    t0 = time.monotonic()

    def on_new_primary():
        st = m.status()["database"]
        return (st["connected"] and (st["host"], st["port"]) ==
                (standby.sockdir, str(standby.port)) and st)
    st = wait_for(on_new_primary, 20, what="migd connected to the promoted standby")
    assert time.monotonic() - t0 < 20
    assert st["database"] == db
    m.wait_connected(True, timeout=15, full=True)

    # the upgrade continues from what was replicated
    res = ok(m, "upgrade", {})
    assert step_revs(res) == ["f3"]
    assert res["from"] == ["f2"] and res["to"] == ["f3"], res
    assert versions(m) == ["f3"]
    for r in ("f1", "f2", "f3"):
        assert up_successes(m, r) == 1, (r, history(m))
    assert m.status()["state"] == "up_to_date"
    assert_alive(m)


def test_failover_refuses_read_only_standby_until_promoted(migd_factory, own_pg, standby,
                                                            make_db):
    primary = own_pg
    db = make_db(primary)
    m = connected(migd_factory(pg=primary, db=db, overrides={
        ("database", "connect_timeout"): "2"}, conninfo=conninfo(primary, standby, db)))
    chain3(m)
    assert step_revs(ok(m, "upgrade", {"target": "f1"})) == ["f1"]
    caught_up(primary, standby, db)

    # the primary goes away; the standby is up but read-only: migd must not use it
    primary.stop("fast")
    st = m.wait_connected(False, timeout=15)
    assert st["database"]["last_error"], st
    time.sleep(1.0)     # a few connection attempts against the standby
    st = m.status()
    assert st["database"]["connected"] is False, st
    assert "read-only" in st["database"]["last_error"] or \
        "read-write" in st["database"]["last_error"], st
    err(m, "upgrade", {}, code=E_DB_UNAVAILABLE, kind="db_unavailable", timeout=20)
    assert versions(on(m, standby)) == ["f1"]

    promote(standby)
    st = wait_for(lambda: (lambda d: d["connected"] and d)(m.status()["database"]), 20,
                  what="migd connected to the promoted standby")
    assert (st["host"], st["port"]) == (standby.sockdir, str(standby.port)), st
    res = ok(m, "upgrade", {})
    assert step_revs(res) == ["f2", "f3"]
    assert versions(m) == ["f3"]
    for r in ("f1", "f2", "f3"):
        assert up_successes(m, r) == 1, (r, history(m))
    assert_alive(m)
