"""One run at a time: requests queued inside one daemon, two daemons on one
database (advisory lock, bounded wait naming the holder), status during a run,
and the per-migration lock_timeout / statement_timeout."""

import os
import shutil
import subprocess
import time

import migdtest
from engine_helpers import (connected, E_BUSY, E_SQL, X_BUSY, X_OK, Bg, call, err, history,
                            migctl_json, ok, psql_background, q, rel_exists, step_revs,
                            terminate_app, versions, wait_activity, write_rev)


def slow_chain(m, sleep="0.5", marker="slow_one"):
    """s1 (slow), s2, s3; each creates a table."""
    write_rev(m, "s1_slow.sql", "s1", up="""
        CREATE TABLE public.s1 (id int);
        SELECT pg_sleep(%s) AS %s;
        """ % (sleep, marker), down_sql="DROP TABLE public.s1;")
    write_rev(m, "s2_b.sql", "s2", down="s1", up="CREATE TABLE public.s2 (id int);",
              down_sql="DROP TABLE public.s2;")
    write_rev(m, "s3_c.sql", "s3", down="s2", up="CREATE TABLE public.s3 (id int);",
              down_sql="DROP TABLE public.s3;")


def copy_files(src, dst):
    for name in os.listdir(src.migrations_dir):
        shutil.copy(os.path.join(src.migrations_dir, name), dst.migrations_dir)


def assert_each_applied_once(m, revs):
    for r in revs:
        assert q(m, "SELECT count(*) FROM migd_history WHERE revision = '%s' AND "
                    "direction = 'up' AND success" % r) == "1", (r, history(m))
    assert not any(not x["success"] for x in history(m)), history(m)


def test_two_concurrent_upgrades_in_one_daemon(migd_factory):
    m = connected(migd_factory())
    slow_chain(m)
    first = Bg(lambda: call(m, "upgrade", {"target": "head"}))
    wait_activity(m, "slow_one")
    second = Bg(lambda: call(m, "upgrade", {"target": "head"}))
    n1, r1 = first.join()
    n2, r2 = second.join()
    assert "error" not in r1 and "error" not in r2, (r1, r2)
    assert step_revs(r1["result"]) == ["s1", "s2", "s3"]
    assert step_revs(r2["result"]) == []          # nothing left to do
    assert r2["result"]["to"] == ["s3"]
    queued = [n["params"] for n in n2 if n["params"].get("event") == "queued"]
    assert queued, n2
    assert versions(m) == ["s3"]
    assert_each_applied_once(m, ["s1", "s2", "s3"])


def test_concurrent_migctl_upgrades_to_different_targets(migd_factory):
    m = connected(migd_factory())
    slow_chain(m)
    env = migdtest.clean_env({"MIGD_SOCKET": m.socket})
    a = subprocess.Popen([migdtest.MIGCTL_BIN, "--json", "upgrade", "s1"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_activity(m, "slow_one")
    b = subprocess.Popen([migdtest.MIGCTL_BIN, "--json", "upgrade", "head"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out_a, err_a = a.communicate(timeout=30)
    out_b, err_b = b.communicate(timeout=30)
    assert a.returncode == X_OK, out_a + err_a
    assert b.returncode == X_OK, out_b + err_b
    import json
    ra, rb = json.loads(out_a), json.loads(out_b)
    # the second request planned after the first finished: it got the rest
    assert step_revs(ra) == ["s1"]
    assert step_revs(rb) == ["s2", "s3"]
    assert versions(m) == ["s3"]
    assert_each_applied_once(m, ["s1", "s2", "s3"])


def test_queued_request_gets_its_own_outcome(migd_factory):
    m = connected(migd_factory())
    slow_chain(m)
    first = Bg(lambda: call(m, "upgrade", {"target": "head"}))
    wait_activity(m, "slow_one")
    # queued behind the run: a downgrade to a revision, and a bad target
    bad = Bg(lambda: call(m, "upgrade", {"target": "nonexistent"}))
    down = Bg(lambda: call(m, "downgrade", {"target": "s2"}))
    _, r1 = first.join()
    _, rb = bad.join()
    _, rd = down.join()
    assert "error" not in r1, r1
    assert rb["error"]["data"]["kind"] == "plan_error", rb
    assert "error" not in rd, rd
    assert step_revs(rd["result"]) == ["s3"]
    assert versions(m) == ["s2"]
    assert not rel_exists(m, "public.s3")


def test_two_daemons_on_one_database(migd_factory):
    m1 = connected(migd_factory())
    slow_chain(m1)
    m2 = connected(migd_factory(db=m1.db))
    copy_files(m1, m2)
    a = Bg(lambda: call(m1, "upgrade", {"target": "head"}))
    b = Bg(lambda: call(m2, "upgrade", {"target": "head"}))
    _, ra = a.join()
    _, rb = b.join()
    assert "error" not in ra and "error" not in rb, (ra, rb)
    done = step_revs(ra["result"]) + step_revs(rb["result"])
    assert sorted(done) == ["s1", "s2", "s3"], (ra, rb)
    assert versions(m1) == ["s3"]
    assert_each_applied_once(m1, ["s1", "s2", "s3"])


def test_lock_wait_timeout_names_the_holder(migd_factory):
    m1 = connected(migd_factory())
    slow_chain(m1, sleep="2", marker="long_one")
    m2 = connected(migd_factory(db=m1.db, overrides={("migrations", "lock_wait"): "300ms"}))
    copy_files(m1, m2)
    winner = Bg(lambda: call(m1, "upgrade", {"target": "head"}))
    wait_activity(m1, "long_one")

    t0 = time.monotonic()
    e = err(m2, "upgrade", {"target": "head"}, code=E_BUSY, kind="lock_timeout")
    took = time.monotonic() - t0
    assert took < 1.5, took
    holders = e["data"]["holders"]
    assert holders and isinstance(holders[0]["pid"], int) and holders[0]["pid"] > 0, e
    lockers = q(m1, "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted")
    assert str(holders[0]["pid"]) in lockers.split(), (holders, lockers)

    rc, data, p = migctl_json(m2, "upgrade")
    assert rc == X_BUSY, p.stdout + p.stderr
    p = m2.migctl("upgrade")
    assert p.returncode == X_BUSY and str(holders[0]["pid"]) in p.stderr, p.stdout + p.stderr

    _, r = winner.join()
    assert "error" not in r, r
    assert versions(m1) == ["s3"]
    assert_each_applied_once(m1, ["s1", "s2", "s3"])
    # the loser has nothing to do now, and can run again
    res = ok(m2, "upgrade", {})
    assert step_revs(res) == []


def test_status_answers_while_a_migration_runs(migd_factory):
    m = connected(migd_factory())
    slow_chain(m, sleep="2", marker="long_one")
    run = Bg(lambda: call(m, "upgrade", {"target": "head"}))
    wait_activity(m, "long_one")
    t0 = time.monotonic()
    st = m.status()
    took = time.monotonic() - t0
    assert took < 1.0, took
    assert st["running"] is True
    assert st["database"]["connected"] is True
    t0 = time.monotonic()
    p = m.migctl("status")
    assert p.returncode == X_OK and time.monotonic() - t0 < 1.0, p.stdout + p.stderr
    # read-only questions that read the database answer too
    t0 = time.monotonic()
    ok(m, "current", timeout=5)
    ok(m, "history", timeout=5)
    assert time.monotonic() - t0 < 1.5
    _, r = run.join()
    assert "error" not in r, r
    st = m.status()
    assert st["running"] is False and st["state"] == "up_to_date"


# ---- per-migration timeouts -----------------------------------------------------

def test_lock_timeout(migd_factory):
    m = connected(migd_factory(overrides={("migrations", "lock_timeout"): "300ms"}))
    write_rev(m, "l1_a.sql", "l1", up="CREATE TABLE public.locked (id int);")
    ok(m, "upgrade", {})
    write_rev(m, "l2_b.sql", "l2", down="l1", up="""
        CREATE TABLE public.before_alter (id int);
        ALTER TABLE public.locked ADD COLUMN x int;
        """)
    locker = psql_background(
        m, "BEGIN; LOCK TABLE public.locked; SELECT pg_sleep(5) AS lock_holder;",
        "engine-test-locker")
    try:
        wait_activity(m, "lock_holder")
        t0 = time.monotonic()
        e = err(m, "upgrade", {}, code=E_SQL, kind="sql_error")
        took = time.monotonic() - t0
        assert e["data"]["sqlstate"] == "55P03", e
        assert took < 2.5, took
        assert versions(m) == ["l1"]
        assert not rel_exists(m, "public.before_alter")
        assert q(m, "SELECT count(*) FROM information_schema.columns WHERE "
                    "table_name = 'locked' AND column_name = 'x'") == "0"
    finally:
        terminate_app(m, "engine-test-locker")
        locker.wait(10)
    # without the other session, it goes through
    ok(m, "upgrade", {})
    assert versions(m) == ["l2"]


def test_statement_timeout(migd_factory):
    m = connected(migd_factory(overrides={("migrations", "statement_timeout"): "300ms"}))
    write_rev(m, "w1_a.sql", "w1", up="""
        CREATE TABLE public.w1 (id int);
        SELECT pg_sleep(2);
        """)
    t0 = time.monotonic()
    e = err(m, "upgrade", {}, code=E_SQL, kind="sql_error")
    assert time.monotonic() - t0 < 1.8
    assert e["data"]["sqlstate"] == "57014", e
    assert versions(m) == []
    assert not rel_exists(m, "public.w1")
    # the setting is per migration (SET LOCAL): the daemon's other queries are not hurt
    assert m.status()["state"] == "pending"


def test_queued_request_after_a_failure_gets_its_own_failure(migd_factory):
    m = connected(migd_factory())
    write_rev(m, "f1_slow.sql", "f1", up="SELECT pg_sleep(0.5) AS slow_one;\nSELECT 1/0;")
    first = Bg(lambda: call(m, "upgrade", {}))
    wait_activity(m, "slow_one")
    second = Bg(lambda: call(m, "upgrade", {}))
    _, r1 = first.join()
    _, r2 = second.join()
    for r in (r1, r2):
        assert r["error"]["data"]["kind"] == "sql_error", r
        assert r["error"]["data"]["sqlstate"] == "22012", r
    assert versions(m) == []
    assert q(m, "SELECT count(*) FROM migd_history WHERE NOT success") == "2"


def test_lock_released_after_failures(migd_factory):
    m1 = connected(migd_factory())
    m2 = connected(migd_factory(db=m1.db, overrides={("migrations", "lock_wait"): "300ms"}))
    for m in (m1, m2):
        write_rev(m, "k1.sql", "k1", up="CREATE TABLE public.k1 (id int);")
    write_rev(m1, "k2.sql", "k2", down="k1", up="SELECT 1/0;")
    write_rev(m2, "k2.sql", "k2", down="k1", up="SELECT 1;")
    err(m1, "upgrade", {}, kind="sql_error")
    assert versions(m1) == ["k1"]
    res = ok(m2, "upgrade", {})                  # no lock_timeout: m1 let go
    assert step_revs(res) == ["k2"]
    # the same after a dirty failure
    write_rev(m1, "k2.sql", "k2", down="k1", up="SELECT 1;")    # as applied by m2
    write_rev(m2, "k3.sql", "k3", down="k2", up="SELECT 1;")
    write_rev(m1, "k3.sql", "k3", down="k2", transaction="none", up="SELECT 1;\nSELECT 1/0;")
    err(m1, "upgrade", {}, kind="dirty")
    e = err(m2, "upgrade", {}, kind="dirty")     # refused because dirty, not lock_timeout
    assert "k3" in e["message"]
    assert q(m1, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") == "0"


def test_lock_is_per_version_table(migd_factory):
    m1 = connected(migd_factory())
    write_rev(m1, "s1.sql", "s1", up="SELECT pg_sleep(1.5) AS slow_one;")
    m2 = connected(migd_factory(db=m1.db, overrides={
        ("migrations", "version_table"): "other.versions",
        ("migrations", "lock_wait"): "300ms"}))
    write_rev(m2, "o1.sql", "o1", up="CREATE TABLE public.o1 (id int);")
    run = Bg(lambda: call(m1, "upgrade", {}))
    wait_activity(m1, "slow_one")
    res = ok(m2, "upgrade", {})
    assert step_revs(res) == ["o1"]
    assert versions(m2, "other.versions") == ["o1"]
    _, r = run.join()
    assert "error" not in r, r
    assert versions(m1) == ["s1"]


def test_backend_killed_mid_migration(migd_factory):
    m = connected(migd_factory())
    slow_chain(m, sleep="3", marker="long_one")
    run = Bg(lambda: call(m, "upgrade", {}))
    wait_activity(m, "long_one")
    q(m, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
         "WHERE query LIKE '%long_one%' AND pid <> pg_backend_pid()")
    _, r = run.join(10)
    assert r["error"]["data"]["kind"] in ("db_unavailable", "sql_error"), r
    assert versions(m) == []
    assert not rel_exists(m, "public.s1")
    # the daemon reconnects and a later run works
    m.wait_connected(True, full=True)
    write_rev(m, "s1_slow.sql", "s1", up="CREATE TABLE public.s1 (id int);",
              down_sql="DROP TABLE public.s1;")
    res = ok(m, "upgrade", {})
    assert step_revs(res) == ["s1", "s2", "s3"]
    assert versions(m) == ["s3"]


def test_sigterm_lets_the_running_step_finish(migd_factory):
    import signal
    m = connected(migd_factory())
    slow_chain(m, sleep="1", marker="long_one")
    first = Bg(lambda: call(m, "upgrade", {}))
    wait_activity(m, "long_one")
    queued = Bg(lambda: call(m, "upgrade", {}))
    time.sleep(0.2)
    m.signal(signal.SIGTERM)
    _, r1 = first.join()
    notes, r2 = queued.join()
    assert r1["error"]["data"]["kind"] == "shutting_down", r1
    assert [d["revision"] for d in r1["error"]["data"]["done"]] == ["s1"]
    assert r2["error"]["data"]["kind"] == "shutting_down", r2
    assert m.wait_exit() == 0
    # s1 committed completely, nothing after it ran
    assert versions(m) == ["s1"]
    assert rel_exists(m, "public.s1") and not rel_exists(m, "public.s2")
    assert [(x["revision"], x["success"]) for x in history(m)] == [("s1", True)]
