"""Reliability under faults (issue 5, items 1-6): PostgreSQL restarted or killed,
migd killed or signalled in the middle of a migration, several daemons and many
clients at once. Each test injects the fault for real and then checks what the
promise is: migd keeps serving, nothing is half-applied or applied twice, and the
history agrees with the version table.

Timing bounds are generous (the suite shares two cores with other test runs) but
always bounded; sleeps inside migrations are a few seconds at most.
"""

import json
import os
import signal
import threading
import time

import pytest

import migdtest
from migdtest import wait_for
from engine_helpers import (E_DB_UNAVAILABLE, E_STATE, X_BUSY, X_OK, Bg, call, chain,
                            connected, err, history, migctl_json, ok, q, rel_exists,
                            step_revs, versions, wait_activity, write_rev)
from reliability_helpers import (advisory_locks, applied_history, assert_alive,
                                 assert_no_crash, call_or_eof, copy_migrations, durable,
                                 run_bg, sigkill, sleeper_chain, up_successes,
                                 wait_no_advisory_lock)


def pool_backends(m):
    out = q(m, "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
               "AND backend_type = 'client backend' AND pid <> pg_backend_pid()")
    return sorted(int(x) for x in out.split()) if out else []


def assert_history_agrees(m, revs_applied):
    """The version table, the history and the tables in the database tell one story
    for a linear chain r1..rN each creating public.<rev>_t or public.t<i>."""
    assert applied_history(m) == sorted(revs_applied), (history(m), revs_applied)
    for r in revs_applied:
        assert up_successes(m, r) == 1, (r, history(m))


# ---- 1. PostgreSQL restarted while migd is idle ----------------------------------

@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_pg_restart_idle_requests_fail_fast_then_work(migd_factory, own_pg, make_db, mode):
    """While PostgreSQL is down, status answers at once (no_database, last_error) and
    mutating requests fail with db_unavailable in bounded time instead of hanging;
    once it is back, migd reconnects by itself with new backends and the very next
    upgrade works (test_pool covers the connected flag alone)."""
    durable(own_pg)
    db = make_db(own_pg)
    m = connected(migd_factory(pg=own_pg, db=db))
    chain(m, 2)
    assert step_revs(ok(m, "upgrade", {"target": "r1"})) == ["r1"]
    before = pool_backends(m)
    assert len(before) == 2, before

    own_pg.stop(mode)
    s = m.wait_connected(False, timeout=10)
    assert s["database"]["last_error"], s
    for _ in range(3):
        t0 = time.monotonic()
        s = m.status()
        assert time.monotonic() - t0 < 2.0, "status slow while PostgreSQL is down"
        assert s["state"] == "no_database" and s["database"]["connected"] is False, s
    t0 = time.monotonic()
    e = err(m, "upgrade", {}, code=E_DB_UNAVAILABLE, kind="db_unavailable", timeout=20)
    # bounded: at most connect_timeout (2 s) of waiting for a connection, plus slack
    assert time.monotonic() - t0 < 6.0, time.monotonic() - t0
    assert e["message"], e
    p = m.migctl("upgrade", timeout=20)
    assert p.returncode not in (X_OK, 3), (p.returncode, p.stdout, p.stderr)
    assert p.stderr.strip(), "migctl said nothing about the failure"

    own_pg.start()
    m.wait_connected(True, timeout=15, full=True)
    after = pool_backends(m)
    assert len(after) == 2 and not set(after) & set(before), (before, after)
    res = ok(m, "upgrade", {})
    assert step_revs(res) == ["r2"]
    assert versions(m) == ["r2"]
    assert_history_agrees(m, ["r1", "r2"])
    assert_alive(m)


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_pg_quick_restart_next_request_works(migd_factory, own_pg, make_db, mode):
    """PostgreSQL restarted (stop + start at once) behind an idle migd: the very first
    request afterwards must not fail on a dead pooled connection. migctl upgrade
    waits for a connecting pool (up to connect_timeout), so it succeeds."""
    durable(own_pg)
    db = make_db(own_pg)
    m = connected(migd_factory(pg=own_pg, db=db, overrides={
        ("database", "connect_timeout"): "10"}))
    chain(m, 2)
    assert step_revs(ok(m, "upgrade", {"target": "r1"})) == ["r1"]
    own_pg.stop(mode)
    own_pg.start()
    p = m.migctl("--json", "upgrade", timeout=30)
    assert p.returncode == X_OK, (p.returncode, p.stdout, p.stderr)
    assert step_revs(json.loads(p.stdout)) == ["r2"]
    assert versions(m) == ["r2"]
    s = m.wait_connected(True, timeout=15, full=True)
    assert s["state"] == "up_to_date", s
    assert_history_agrees(m, ["r1", "r2"])


# ---- 2. PostgreSQL stopped (immediate) in the middle of a migration --------------

def test_pg_immediate_stop_mid_migration(migd_factory, own_pg, make_db):
    durable(own_pg)
    db = make_db(own_pg)
    m = connected(migd_factory(pg=own_pg, db=db))
    sleeper_chain(m, sleep="3", marker="pg_stop_sleeper")
    assert step_revs(ok(m, "upgrade", {"target": "r1"})) == ["r1"]
    run = Bg(lambda: call(m, "upgrade", {"target": "head"}))
    wait_activity(m, "pg_stop_sleeper")
    t0 = time.monotonic()
    own_pg.stop("immediate")
    _, r = run.join(20)
    took = time.monotonic() - t0
    assert "error" in r, r
    e = r["error"]
    assert e["code"] == E_DB_UNAVAILABLE and e["data"]["kind"] == "db_unavailable", r
    assert e["message"].strip(), r
    assert took < 8, "the failed run answered %.1fs after PostgreSQL stopped" % took
    # migd stays up and says what happened
    assert_alive(m)
    s = m.wait_connected(False, timeout=10)
    assert s["database"]["last_error"], s
    assert s["running"] is False, s

    own_pg.start()
    m.wait_connected(True, timeout=15, full=True)
    # the last good revision; r2's table rolled back with its transaction
    assert versions(m) == ["r1"]
    assert not rel_exists(m, "public.r2_t")
    assert up_successes(m, "r2") == 0
    assert_history_agrees(m, ["r1"])
    assert m.status()["state"] == "pending"
    # and a new upgrade completes, applying r2 exactly once
    q(m, "SELECT 1")   # (the database is reachable through psql as well)
    res = ok(m, "upgrade", {}, timeout=30)
    assert step_revs(res) == ["r2", "r3"]
    assert versions(m) == ["r3"]
    assert rel_exists(m, "public.r2_t")
    assert_history_agrees(m, ["r1", "r2", "r3"])


# ---- 3. migd killed with SIGKILL in the middle of a migration ---------------------

def test_sigkill_mid_transactional_migration(migd_factory):
    m1 = connected(migd_factory())
    sleeper_chain(m1, sleep="8", marker="kill_sleeper")
    assert step_revs(ok(m1, "upgrade", {"target": "r1"})) == ["r1"]
    run = Bg(lambda: call_or_eof(m1, "upgrade", {"target": "head"}))
    wait_activity(m1, "kill_sleeper")
    assert advisory_locks(m1) >= 1, "no advisory lock held during the run"
    t0 = time.monotonic()
    sigkill(m1)
    _, reply = run.join(10)
    assert reply is None, "a killed migd cannot have replied: %r" % (reply,)
    # client_connection_check_interval = 1s: the backend notices the dead client and
    # aborts pg_sleep(8) long before it would end, releasing the lock
    wait_no_advisory_lock(m1, 6.0)
    took = time.monotonic() - t0
    assert took < 6.0, took
    assert q(m1, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE "
                 "'%kill_sleeper%' AND pid <> pg_backend_pid()") == "0"
    assert versions(m1) == ["r1"]
    assert not rel_exists(m1, "public.r2_t")
    assert up_successes(m1, "r2") == 0

    m2 = connected(migd_factory(db=m1.db, overrides={("migrations", "lock_wait"): "2s"}))
    copy_migrations(m1, m2)
    s = m2.status()
    assert s["state"] == "pending" and s["dirty"] == [], s
    assert [c["revision"] for c in s["current"]] == ["r1"], s
    # r2 no longer sleeps long; the lock is free, so lock_wait = 2s is plenty
    write_rev(m2, "r2_sleepy.sql", "r2", down="r1", up="""
        CREATE TABLE public.r2_t (id int);
        SELECT pg_sleep(0.1) AS kill_sleeper;
        """, down_sql="DROP TABLE public.r2_t;", message="sleepy")
    res = ok(m2, "upgrade", {})
    assert step_revs(res) == ["r2", "r3"]
    assert versions(m2) == ["r3"]
    assert_history_agrees(m2, ["r1", "r2", "r3"])
    assert advisory_locks(m2) == 0


@pytest.mark.parametrize("resolution", ["applied", "unapplied"])
def test_sigkill_mid_non_transactional_migration(migd_factory, resolution):
    """transaction: none, killed after statement 1: the revision is dirty for the new
    daemon, which refuses to run until a person resolves it."""
    m1 = connected(migd_factory())
    write_rev(m1, "n1_knob.sql", "n1", up="CREATE TABLE public.knob (s float8);\n"
              "INSERT INTO public.knob VALUES (8);")
    write_rev(m1, "n2_bare.sql", "n2", down="n1", transaction="none", up="""
        CREATE TABLE public.n2_t (id int);
        SELECT pg_sleep((SELECT s FROM public.knob)) AS bare_sleeper;
        """, message="bare")
    write_rev(m1, "n3_after.sql", "n3", down="n2", up="CREATE TABLE public.n3_t (id int);")
    assert step_revs(ok(m1, "upgrade", {"target": "n1"})) == ["n1"]
    run = Bg(lambda: call_or_eof(m1, "upgrade", {}))
    wait_activity(m1, "bare_sleeper")
    sigkill(m1)
    _, reply = run.join(10)
    assert reply is None, reply
    wait_no_advisory_lock(m1, 6.0)
    assert versions(m1) == ["n1"]
    assert rel_exists(m1, "public.n2_t"), "statement 1 ran (no transaction)"
    assert up_successes(m1, "n2") == 0, "n2 marked applied though it did not finish"

    m2 = connected(migd_factory(db=m1.db))
    copy_migrations(m1, m2)
    s = m2.status()
    assert s["state"] == "dirty", s
    assert [d if isinstance(d, str) else d.get("revision") for d in s["dirty"]] == ["n2"], s
    e = err(m2, "upgrade", {}, code=E_STATE, kind="dirty")
    assert "n2" in json.dumps(e), e
    p = m2.migctl("upgrade")
    assert p.returncode != X_OK and "n2" in p.stdout + p.stderr, (p.stdout, p.stderr)
    assert versions(m2) == ["n1"] and not rel_exists(m2, "public.n3_t"), "ran while dirty"

    q(m2, "UPDATE public.knob SET s = 0")
    if resolution == "unapplied":
        q(m2, "DROP TABLE public.n2_t")        # the person undid statement 1
    p = m2.migctl("resolve", "n2", resolution)
    assert p.returncode == X_OK, (p.stdout, p.stderr)
    assert m2.status()["dirty"] == []
    res = ok(m2, "upgrade", {})
    if resolution == "applied":
        assert step_revs(res) == ["n3"]
        assert up_successes(m2, "n2") == 0      # resolved, not run
    else:
        assert step_revs(res) == ["n2", "n3"]
        assert up_successes(m2, "n2") == 1
    assert versions(m2) == ["n3"]
    assert rel_exists(m2, "public.n2_t") and rel_exists(m2, "public.n3_t")
    assert up_successes(m2, "n3") == 1
    assert advisory_locks(m2) == 0


# ---- 4. two daemons on one database ----------------------------------------------

def two_daemons(migd_factory, pg, make_db, lock_wait, sleep="1.5"):
    """Two daemons on one database, told apart by application_name."""
    db = make_db(pg)
    a, b = [connected(migd_factory(pg=pg, db=db, overrides={
        ("migrations", "lock_wait"): lock_wait,
        ("database", "conninfo"): pg.conninfo(db, "application_name=migd-" + n)}))
        for n in "AB"]
    sleeper_chain(a, sleep=sleep, marker="duo_sleeper", n_after=2)
    copy_migrations(a, b)
    return a, b


def migctl_both(a, b):
    """`migctl --json upgrade head` on both daemons at the same moment."""
    go = threading.Barrier(2)
    out = {}

    def one(name, m):
        go.wait(10)
        out[name] = migctl_json(m, "upgrade", "head", timeout=60)
    ts = [threading.Thread(target=one, args=(n, m)) for n, m in (("A", a), ("B", b))]
    for t in ts:
        t.start()
    for t in ts:
        t.join(70)
    assert len(out) == 2, out
    return out


ALL4 = ["r1", "r2", "r3", "r4"]


def test_two_daemons_upgrade_at_once_loser_waits(migd_factory, pg, make_db):
    a, b = two_daemons(migd_factory, pg, make_db, "60s")
    out = migctl_both(a, b)
    for name, (rc, data, p) in out.items():
        assert rc == X_OK, (name, p.returncode, p.stdout, p.stderr)
        assert data["to"] == ["r4"], (name, data)
    done = step_revs(out["A"][1]) + step_revs(out["B"][1])
    # one run did the work; the loser waited for the lock and found nothing (or the
    # remainder) to do
    assert sorted(done) == ALL4, out
    assert versions(a) == ["r4"]
    for r in ALL4:
        assert up_successes(a, r) == 1, (r, history(a))
    assert not [h for h in history(a) if not h["success"]], history(a)
    assert advisory_locks(a) == 0
    for m in (a, b):
        assert m.status()["state"] == "up_to_date"


def test_two_daemons_upgrade_at_once_loser_reports_holder(migd_factory, pg, make_db):
    """lock_wait = 300ms on both and a 2 s migration: whoever loses the race must
    fail with lock_timeout naming the winner's session, and change nothing."""
    a, b = two_daemons(migd_factory, pg, make_db, "300ms", sleep="2")
    out = migctl_both(a, b)
    rcs = sorted(v[0] for v in out.values())
    assert rcs == [X_OK, X_BUSY], {k: (v[0], v[2].stdout, v[2].stderr)
                                   for k, v in out.items()}
    winner = [k for k, v in out.items() if v[0] == X_OK][0]
    loser = "B" if winner == "A" else "A"
    rc, data, p = out[loser]
    assert data is not None and "error" in data, p.stdout
    e = data["error"]
    assert e["data"]["kind"] == "lock_timeout", data
    holders = e["data"]["holders"]
    assert len(holders) == 1, holders
    assert holders[0]["application_name"] == "migd-" + winner, holders
    assert isinstance(holders[0]["pid"], int) and str(holders[0]["pid"]) in p.stderr, \
        (holders, p.stderr)
    assert step_revs(out[winner][1]) == ALL4
    assert versions(a) == ["r4"]
    for r in ALL4:
        assert up_successes(a, r) == 1, (r, history(a))
    # the loser recorded nothing (it never held the lock) and can run again: nothing to do
    m_loser = a if loser == "A" else b
    assert step_revs(ok(m_loser, "upgrade", {})) == []


# ---- 5. fifty concurrent migctl upgrade head -------------------------------------

def test_fifty_concurrent_migctl_upgrades(migd_factory):
    m = connected(migd_factory(overrides={("control", "max_clients"): "100"}))
    sleeper_chain(m, sleep="1", marker="fifty_sleeper", n_after=2)
    env = migdtest.clean_env({"MIGD_SOCKET": m.socket})
    procs = [run_bg([migdtest.MIGCTL_BIN, "--json", "upgrade", "head"], env)
             for _ in range(50)]
    results = []
    for p in procs:
        out, errout = p.communicate(timeout=90)
        results.append((p.returncode, out, errout))
    bad = [r for r in results if r[0] != X_OK]
    assert not bad, "%d of 50 failed; first: %r" % (len(bad), bad[:3])
    data = [json.loads(r[1]) for r in results]
    for d in data:
        assert d["to"] == ["r4"], d           # everyone gets the true outcome
    steps = [len(d["steps"]) for d in data]
    assert sum(steps) == 4, steps
    assert sorted(steps)[-1] == 4 and steps.count(0) == 49, steps
    assert versions(m) == ["r4"]
    for r in ALL4:
        assert up_successes(m, r) == 1, (r, history(m))
    assert len(history(m)) == 4, history(m)
    assert_alive(m)


# ---- 6. SIGTERM and SIGHUP during a run ------------------------------------------

def test_sigterm_during_long_migration_migctl_sees_what_ran(migd_factory):
    m = connected(migd_factory())
    sleeper_chain(m, sleep="2", marker="term_sleeper", n_after=2)
    assert step_revs(ok(m, "upgrade", {"target": "r1"})) == ["r1"]
    env = migdtest.clean_env({"MIGD_SOCKET": m.socket})
    first = run_bg([migdtest.MIGCTL_BIN, "upgrade", "head"], env)
    wait_activity(m, "term_sleeper")
    queued = [run_bg([migdtest.MIGCTL_BIN, "--json", "upgrade", "head"], env)
              for _ in range(3)]
    wait_for(lambda: m.status()["running"], 5, what="status running")
    time.sleep(0.3)    # the queued requests are inside migd
    t0 = time.monotonic()
    m.signal(signal.SIGTERM)
    out, errout = first.communicate(timeout=30)
    assert m.wait_exit(15) == 0, m.log()[-3000:]
    took = time.monotonic() - t0
    assert took < 10, took
    assert not os.path.exists(m.socket), "socket file left behind"
    # the running migration completed; nothing after it started
    assert versions(m) == ["r2"]
    assert rel_exists(m, "public.r2_t") and not rel_exists(m, "public.r3_t")
    assert_history_agrees(m, ["r1", "r2"])
    assert not [h for h in history(m) if not h["success"]], history(m)
    # the client was told: shutting down, and what ran
    text = out + errout
    assert first.returncode != X_OK, text
    assert "shutting" in text.lower() or "stopping" in text.lower(), text
    assert "r2" in text, "migctl output does not say that r2 ran:\n" + text
    for p in queued:
        o, e = p.communicate(timeout=30)
        assert p.returncode != X_OK, o + e
        d = json.loads(o)
        assert d["error"]["data"]["kind"] == "shutting_down", d
        assert d["error"]["data"].get("done", []) == [], d
    assert_no_crash(m)


def test_sigterm_during_last_migration_completes_and_replies(migd_factory):
    m = connected(migd_factory())
    write_rev(m, "t1_last.sql", "t1", up="""
        CREATE TABLE public.t1_t (id int);
        SELECT pg_sleep(2) AS last_sleeper;
        INSERT INTO public.t1_t VALUES (1);
        """, down_sql="DROP TABLE public.t1_t;")
    conn = m.connect(timeout=30)
    conn.send(migdtest.request("upgrade", {}, id=9))
    wait_activity(m, "last_sleeper")
    m.signal(signal.SIGTERM)
    while True:
        msg = conn.recv(30)
        if "id" in msg:
            break
    conn.expect_eof(10)
    conn.close()
    assert m.wait_exit(15) == 0
    assert not os.path.exists(m.socket)
    assert msg["id"] == 9
    # completed: a success, or shutting_down that says t1 was done
    if "error" in msg:
        assert msg["error"]["data"]["kind"] == "shutting_down", msg
        assert [d["revision"] for d in msg["error"]["data"]["done"]] == ["t1"], msg
    else:
        assert step_revs(msg["result"]) == ["t1"], msg
    assert versions(m) == ["t1"]
    assert q(m, "SELECT count(*) FROM public.t1_t") == "1"
    assert_history_agrees(m, ["t1"])


def test_sighup_during_run_does_not_disturb_it(migd_factory):
    m = connected(migd_factory())
    sleeper_chain(m, sleep="2", marker="hup_sleeper", n_after=1)
    run = Bg(lambda: call(m, "upgrade", {"target": "head"}, timeout=30))
    wait_activity(m, "hup_sleeper")
    before = m.log()
    # a new revision and a changed setting arrive during the run
    write_rev(m, "r4_new.sql", "r4", down="r3", up="CREATE TABLE public.r4_t (id int);")
    m.write_config({("control", "idle_timeout"): "120"})
    m.signal(signal.SIGHUP)
    notes, r = run.join(30)
    assert "error" not in r, r
    assert step_revs(r["result"]) == ["r1", "r2", "r3"], r   # the plan it started with
    assert [n["params"]["event"] for n in notes].count("failed") == 0, notes
    new = m.log()[len(before):]
    assert "reload" in new.lower(), "no reload in the log:\n" + new
    assert versions(m) == ["r3"]
    assert_history_agrees(m, ["r1", "r2", "r3"])
    assert step_revs(ok(m, "upgrade", {})) == ["r4"]
    assert_alive(m)


def test_sighup_changing_conninfo_during_run(migd_factory):
    """A reload that changes conninfo reconnects idle connections at once and the busy
    one only when its run ends: the run is not cut off."""
    m = connected(migd_factory())
    sleeper_chain(m, sleep="2", marker="ci_sleeper", n_after=1)
    run = Bg(lambda: call(m, "upgrade", {"target": "head"}, timeout=30))
    wait_activity(m, "ci_sleeper")
    m.write_config({("database", "conninfo"): m.pg.conninfo(m.db, "application_name=reloaded")})
    m.signal(signal.SIGHUP)
    _, r = run.join(30)
    assert "error" not in r, r
    assert step_revs(r["result"]) == ["r1", "r2", "r3"]
    assert_history_agrees(m, ["r1", "r2", "r3"])
    wait_for(lambda: q(m, "SELECT string_agg(DISTINCT application_name, ',') FROM "
                          "pg_stat_activity WHERE datname = current_database() AND "
                          "backend_type = 'client backend' AND pid <> pg_backend_pid()")
             == "reloaded", 10, what="every pooled connection made with the new conninfo")
    m.wait_connected(True, full=True)
    assert_alive(m)
