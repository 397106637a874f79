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
from engine_helpers import (E_DB_UNAVAILABLE, E_STATE, X_BUSY, X_FAILED, X_OK, Bg, call,
                            chain, connected, err, history, migctl_json, ok, q, rel_exists,
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
    m = connected(migd_factory(pg=own_pg, db=db, overrides={
        ("database", "connect_timeout"): "1"}))
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
    # bounded: at most connect_timeout (1 s) of waiting for a connection, plus slack
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
    assert "r2" in e["message"], r            # names the migration it was in
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
    # a migctl waiting in the queue behind it
    n = m1.log().count("upgrade from")
    waiter = run_bg([migdtest.MIGCTL_BIN, "upgrade"],
                    migdtest.clean_env({"MIGD_SOCKET": m1.socket}))
    wait_for(lambda: m1.log().count("upgrade from") > n, 5,
             what="the queued migctl request in the log")
    t0 = time.monotonic()
    sigkill(m1)
    _, reply = run.join(10)
    assert reply is None, "a killed migd cannot have replied: %r" % (reply,)
    out, errout = waiter.communicate(timeout=10)
    assert waiter.returncode not in (X_OK, 4), (waiter.returncode, out, errout)
    assert errout.strip(), "migctl said nothing when migd died under it"
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


def test_sigkill_in_a_file_split_by_its_own_commits(migd_factory):
    """migd killed in the second transaction of a file split by its own COMMITs: the
    first committed, the second rolled back. The new daemon refuses to run, naming
    what happened to this file (some of its transactions committed), not calling it
    non-transactional; once the person finished it and said so, the rest runs."""
    m1 = connected(migd_factory())
    write_rev(m1, "p1_split.sql", "p1", up="""
        CREATE TABLE public.p_a (id int);
        COMMIT;
        BEGIN;
        CREATE TABLE public.p_b (id int);
        SELECT pg_sleep(8) AS split_sleeper;
        COMMIT;
        """)
    write_rev(m1, "p2_after.sql", "p2", down="p1", up="CREATE TABLE public.p_c (id int);")
    run = Bg(lambda: call_or_eof(m1, "upgrade", {}))
    wait_activity(m1, "split_sleeper")
    sigkill(m1)
    assert run.join(10)[1] is None
    wait_no_advisory_lock(m1, 6.0)
    assert rel_exists(m1, "public.p_a") and not rel_exists(m1, "public.p_b")
    assert versions(m1) == []

    m2 = connected(migd_factory(db=m1.db))
    copy_migrations(m1, m2)
    assert m2.status()["dirty"] == ["p1"]
    p = m2.migctl("upgrade")
    assert p.returncode == X_FAILED, (p.stdout, p.stderr)
    assert "split by its own COMMITs" in p.stderr, p.stderr
    assert "non-transactional" not in p.stderr, p.stderr
    assert not rel_exists(m2, "public.p_c")
    q(m2, "CREATE TABLE public.p_b (id int)")      # the person finishes it
    assert m2.migctl("resolve", "p1", "applied").returncode == X_OK
    assert step_revs(ok(m2, "upgrade", {})) == ["p2"]
    assert versions(m2) == ["p2"] and up_successes(m2, "p1") == 0


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
    # --json: the message names the holder too, and nothing goes to stderr
    assert isinstance(holders[0]["pid"], int) and str(holders[0]["pid"]) in e["message"], \
        (holders, e["message"])
    assert p.stderr == "", p.stderr
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


# ---- more faults around a run ----------------------------------------------------

def test_sigkill_then_new_daemon_upgrades_at_once(migd_factory):
    """The realistic restart: the new migd asks for an upgrade before the old
    backend has noticed its client died. It waits for the lock (lock_wait) and then
    runs; r2 is applied exactly once."""
    m1 = connected(migd_factory())
    sleeper_chain(m1, sleep="8", marker="restart_sleeper")
    assert step_revs(ok(m1, "upgrade", {"target": "r1"})) == ["r1"]
    run = Bg(lambda: call_or_eof(m1, "upgrade", {}))
    wait_activity(m1, "restart_sleeper")
    m2 = migd_factory(db=m1.db, start=False, overrides={("migrations", "lock_wait"): "15s"})
    copy_migrations(m1, m2)
    write_rev(m2, "r2_sleepy.sql", "r2", down="r1", up="""
        CREATE TABLE public.r2_t (id int);
        SELECT pg_sleep(0.1) AS restart_sleeper;
        """, down_sql="DROP TABLE public.r2_t;", message="sleepy")
    sigkill(m1)
    assert run.join(10)[1] is None
    m2.start()
    connected(m2)
    t0 = time.monotonic()
    res = ok(m2, "upgrade", {}, timeout=30)
    assert time.monotonic() - t0 < 8, "waited for the whole pg_sleep(8) of the dead run"
    assert step_revs(res) == ["r2", "r3"]
    assert versions(m2) == ["r3"]
    assert_history_agrees(m2, ["r1", "r2", "r3"])


def test_sigterm_while_waiting_for_the_lock(migd_factory, pg, make_db):
    """A migd waiting (lock_wait 60 s) for another daemon's lock stops at once on
    SIGTERM: its client gets shutting_down, nothing ran, exit 0."""
    a, b = two_daemons(migd_factory, pg, make_db, "60s", sleep="4")
    write_rev(b, "r5_only_b.sql", "r5", down="r4", up="CREATE TABLE public.r5_t (id int);")
    run = Bg(lambda: call(a, "upgrade", {}, timeout=30))
    wait_activity(a, "duo_sleeper")
    waiting = Bg(lambda: call(b, "upgrade", {}, timeout=30))
    wait_for(lambda: b.status()["running"], 5, what="b's run waiting for the lock")
    time.sleep(0.3)
    t0 = time.monotonic()
    b.signal(signal.SIGTERM)
    _, r = waiting.join(30)
    assert b.wait_exit(15) == 0
    took = time.monotonic() - t0
    assert "error" in r and r["error"]["data"]["kind"] == "shutting_down", r
    assert r["error"]["data"].get("done", []) == [], r
    assert took < 2.5, "SIGTERM took %.1fs while waiting for the lock" % took
    assert not os.path.exists(b.socket)
    _, ra = run.join(30)
    assert "error" not in ra and step_revs(ra["result"]) == ALL4, ra
    for r in ALL4:
        assert up_successes(a, r) == 1
    assert up_successes(a, "r5") == 0 and not rel_exists(a, "public.r5_t"), \
        "b ran r5 after SIGTERM"


def test_sigterm_while_postgresql_is_down_and_a_request_waits(migd_factory, own_pg,
                                                              make_db):
    """connect_timeout = 5 s here: SIGTERM must not wait for it."""
    db = make_db(own_pg)
    m = connected(migd_factory(pg=own_pg, db=db, overrides={
        ("database", "connect_timeout"): "5"}))
    chain(m, 1)
    own_pg.stop("immediate")
    m.wait_connected(False, timeout=10)
    waiting = Bg(lambda: call(m, "upgrade", {}, timeout=40))
    time.sleep(0.5)     # the request waits for a connection
    t0 = time.monotonic()
    m.signal(signal.SIGTERM)
    _, r = waiting.join(40)
    assert m.wait_exit(15) == 0
    took = time.monotonic() - t0
    assert "error" in r and r["error"]["data"]["kind"] in ("shutting_down",
                                                           "db_unavailable"), r
    assert took < 2.5, "SIGTERM took %.1fs while a request waited for PostgreSQL" % took
    assert not os.path.exists(m.socket)


def test_sigterm_during_non_transactional_migration(migd_factory):
    """A bare (transaction: none) migration is not cut in the middle by SIGTERM: it
    runs to its end and is recorded complete, not dirty."""
    m = connected(migd_factory())
    write_rev(m, "b1_bare.sql", "b1", transaction="none", up="""
        CREATE TABLE public.b1_a (id int);
        SELECT pg_sleep(1.5) AS bare_term_sleeper;
        CREATE TABLE public.b1_b (id int);
        """)
    write_rev(m, "b2_next.sql", "b2", down="b1", up="CREATE TABLE public.b2_t (id int);")
    run = Bg(lambda: call(m, "upgrade", {}, timeout=30))
    wait_activity(m, "bare_term_sleeper")
    m.signal(signal.SIGTERM)
    _, r = run.join(30)
    assert m.wait_exit(15) == 0
    assert r["error"]["data"]["kind"] == "shutting_down", r
    assert [d["revision"] for d in r["error"]["data"]["done"]] == ["b1"], r
    assert versions(m) == ["b1"]
    assert rel_exists(m, "public.b1_a") and rel_exists(m, "public.b1_b")
    assert not rel_exists(m, "public.b2_t")
    h = history(m)
    assert [(x["revision"], x["success"], x["dirty"]) for x in h] == [("b1", True, False)], h


def test_pg_immediate_stop_mid_non_transactional_migration(migd_factory, own_pg, make_db):
    """PostgreSQL dies between the statements of a bare migration: the revision is
    dirty once PostgreSQL is back, and runs are refused until it is resolved."""
    durable(own_pg)
    db = make_db(own_pg)
    m = connected(migd_factory(pg=own_pg, db=db))
    write_rev(m, "d1_bare.sql", "d1", transaction="none", up="""
        CREATE TABLE public.d1_a (id int);
        SELECT pg_sleep(3) AS bare_pg_sleeper;
        CREATE TABLE public.d1_b (id int);
        """)
    run = Bg(lambda: call(m, "upgrade", {}, timeout=30))
    wait_activity(m, "bare_pg_sleeper")
    own_pg.stop("immediate")
    _, r = run.join(30)
    assert r["error"]["data"]["kind"] in ("db_unavailable", "dirty"), r
    assert_alive(m)
    own_pg.start()
    m.wait_connected(True, timeout=15, full=True)
    assert versions(m) == []
    assert rel_exists(m, "public.d1_a") and not rel_exists(m, "public.d1_b")
    wait_for(lambda: m.status()["state"] == "dirty", 5, what="state dirty")
    err(m, "upgrade", {}, code=E_STATE, kind="dirty")
    q(m, "CREATE TABLE public.d1_b (id int)")     # finished by hand
    p = m.migctl("resolve", "d1", "applied")
    assert p.returncode == X_OK, p.stdout + p.stderr
    assert versions(m) == ["d1"]
    assert m.status()["state"] == "up_to_date"


def test_clients_vanishing_with_queued_and_running_upgrades(migd_factory):
    """Clients that send an upgrade and leave at once (while one runs, and queued
    behind it) neither crash migd nor make anything run twice."""
    m = connected(migd_factory())
    sleeper_chain(m, sleep="1.5", marker="vanish_sleeper", n_after=2)
    s = migdtest.Conn(m.socket)
    s.send(migdtest.request("upgrade", {}, id=1))
    wait_activity(m, "vanish_sleeper")
    s.close()                                 # the client of the running upgrade leaves
    for i in range(20):
        c = migdtest.Conn(m.socket)
        c.send(migdtest.request("upgrade", {}, id=i))
        if i % 2:
            c.send(migdtest.request("downgrade", {"target": "r1"}, id=100 + i))
        c.close()
    # the run goes on to the end; whatever ran after it ran whole
    wait_for(lambda: not m.status()["running"], 30, what="the runs to end")
    assert_alive(m)
    h = history(m)
    assert not [x for x in h if not x["success"]], h
    v = versions(m)
    assert v in (["r1"], ["r4"]), (v, h)
    # the history replays to the version table (ups and downs may repeat)
    assert applied_history(m) == (ALL4 if v == ["r4"] else ["r1"]), h
    ok(m, "upgrade", {})
    assert versions(m) == ["r4"]


def test_status_with_pool_size_one_during_a_run(migd_factory):
    """pool_size = 1: the only connection runs the migration, and status still
    answers in bounded time from the last known state (stale: true)."""
    m = connected(migd_factory(overrides={("database", "pool_size"): "1"}))
    sleeper_chain(m, sleep="3", marker="pool1_sleeper", n_after=1)
    assert m.status()["state"] == "pending"
    run = Bg(lambda: call(m, "upgrade", {}, timeout=30))
    wait_activity(m, "pool1_sleeper")
    t0 = time.monotonic()
    s = m.status()
    took = time.monotonic() - t0
    assert took < 2.5, "status took %.1fs with the only connection busy" % took
    assert s["running"] is True and s.get("stale") is True, s
    assert s["database"]["connected"] is True, s
    assert s["state"] == "pending" and s["pending"] == 3, s
    _, r = run.join(30)
    assert "error" not in r, r
    s = m.status()
    assert s["state"] == "up_to_date" and not s.get("stale"), s


def test_check_during_a_run_with_pool_size_one_after_new_files(migd_factory):
    """The deploy sequence: new files arrive, `migctl upgrade` starts, and a readiness
    gate calls `migctl check` while the only connection runs the migration. The
    gate must not pass (exit 0) before the database is at head."""
    m = connected(migd_factory(overrides={("database", "pool_size"): "1"}))
    sleeper_chain(m, sleep="3", marker="gate_sleeper", n_after=1)
    run = Bg(lambda: call(m, "upgrade", {}, timeout=30))
    wait_activity(m, "gate_sleeper")
    p = m.migctl("--json", "check")
    s = m.status()
    _, r = run.join(30)
    assert "error" not in r, r
    assert p.returncode != X_OK, "migctl check passed during the run:\n" + p.stdout
    if s.get("stale"):
        assert s["state"] != "up_to_date" and s["pending"] != 0, s


def test_pg_immediate_stop_while_a_run_waits_for_the_lock(migd_factory, own_pg, make_db):
    """Daemon B waits (lock_wait 60 s) for A's lock when PostgreSQL dies: both get
    db_unavailable in bounded time, not after lock_wait; both recover."""
    durable(own_pg)
    a, b = two_daemons(migd_factory, own_pg, make_db, "60s", sleep="3")
    ra = Bg(lambda: call(a, "upgrade", {}, timeout=40))
    wait_activity(a, "duo_sleeper")
    rb = Bg(lambda: call(b, "upgrade", {}, timeout=40))
    wait_for(lambda: b.status()["running"], 5, what="b waiting for the lock")
    time.sleep(0.3)
    t0 = time.monotonic()
    own_pg.stop("immediate")
    for bg in (ra, rb):
        _, r = bg.join(40)
        assert "error" in r and r["error"]["data"]["kind"] == "db_unavailable", r
    assert time.monotonic() - t0 < 8, time.monotonic() - t0
    own_pg.start()
    for m in (a, b):
        m.wait_connected(True, timeout=15, full=True)
        assert_alive(m)
    # A applied r1 before it slept in r2; r2 rolled back
    assert versions(a) == ["r1"] and not rel_exists(a, "public.r2_t")
    res = ok(b, "upgrade", {}, timeout=30)
    assert step_revs(res) == ALL4[1:]
    assert step_revs(ok(a, "upgrade", {})) == []
    for r in ALL4:
        assert up_successes(a, r) == 1


def test_connection_lost_while_waiting_for_the_lock_is_reported_clearly(migd_factory, pg,
                                                                         make_db):
    a, b = two_daemons(migd_factory, pg, make_db, "60s", sleep="2")
    ra = Bg(lambda: call(a, "upgrade", {}, timeout=30))
    wait_activity(a, "duo_sleeper")
    rb = Bg(lambda: call(b, "upgrade", {}, timeout=30))
    wait_for(lambda: q(a, "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                          "'migd-B' AND query LIKE '%advisory%'") != "0",
             5, what="b polling for the lock")
    q(a, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
         "application_name = 'migd-B'")
    _, r = rb.join(30)
    assert "error" not in ra.join(30)[1]
    assert "error" in r and r["error"]["data"]["kind"] == "db_unavailable", r
    msg = r["error"]["message"]
    assert "NULL" not in msg and not msg.endswith("\n"), msg
    assert "connection" in msg.lower(), msg


@pytest.mark.parametrize("atomic", [False, True])
def test_connection_lost_after_the_commit_went_through_says_it_is_applied(
        migd_factory, own_pg, make_db, atomic):
    """A step's COMMIT waits for a synchronous standby that is gone, and its backend
    is terminated (a failover): the server has committed the step locally, then the
    connection dies. The reply says that step is applied and the run stopped after
    it, rather than that it failed; no failure row is written after its success row;
    the next upgrade runs only the rest. In an atomic run (r2 and r3 in one COMMIT)
    the reply says the whole run is applied."""
    durable(own_pg)
    db = make_db(own_pg)
    m = connected(migd_factory(pg=own_pg, db=db))
    chain(m, 3)
    assert step_revs(ok(m, "upgrade", {"target": "r1"})) == ["r1"]
    own_pg.psql("ALTER SYSTEM SET synchronous_standby_names = 'gone_standby'")
    own_pg.psql("SELECT pg_reload_conf()")
    run = Bg(lambda: m.migctl("upgrade", *(["--atomic"] if atomic else []), timeout=40))
    syncrep = "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'"
    wait_for(lambda: own_pg.psql(syncrep) != "0", 10, what="a COMMIT waiting for the standby")
    own_pg.psql("ALTER SYSTEM RESET synchronous_standby_names")
    own_pg.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE wait_event = 'SyncRep'")
    own_pg.psql("SELECT pg_reload_conf()")
    p = run.join(40)
    assert p.returncode not in (X_OK, 4), (p.stdout, p.stderr)
    if atomic:
        assert "the whole run is applied, up to r3" in p.stderr, p.stderr
        assert versions(m) == ["r3"] and rel_exists(m, "public.t3")
        assert step_revs(ok(m, "upgrade", {})) == []
    else:
        assert "r2 is applied" in p.stderr and "run it again" in p.stderr, p.stderr
        assert versions(m) == ["r2"] and rel_exists(m, "public.t2")
        assert step_revs(ok(m, "upgrade", {})) == ["r3"]
    for r in ("r2", "r3"):
        rows_r = [(h["success"], h["dirty"]) for h in history(m) if h["revision"] == r]
        assert rows_r == [(True, False)], history(m)
    assert_history_agrees(m, ["r1", "r2", "r3"])


# ---- 8. migd's own tables changed by hand ---------------------------------------

def test_status_after_the_history_table_was_dropped(migd_factory):
    """The history table dropped behind a daemon that had read it: status (and the
    readiness gate) answer from the version table at once, instead of failing once
    with 'relation ... does not exist'; the next upgrade recreates the history and
    runs nothing again."""
    m = connected(migd_factory())
    chain(m, 3)
    assert step_revs(ok(m, "upgrade", {})) == ["r1", "r2", "r3"]
    assert m.status()["state"] == "up_to_date"      # the history's summary is cached
    q(m, "DROP TABLE public.migd_history")
    s = m.status()
    assert s["state"] == "up_to_date", s
    assert [c["revision"] for c in s["current"]] == ["r3"], s
    p = m.migctl("check")
    assert p.returncode == X_OK, (p.stdout, p.stderr)
    assert step_revs(ok(m, "upgrade", {})) == []
    assert versions(m) == ["r3"]
    assert rel_exists(m, "public.migd_history")
    assert int(q(m, "SELECT count(*) FROM public.migd_history WHERE direction = 'up'")) == 0


@pytest.mark.parametrize("how", ["dropped", "renamed_setting"])
def test_upgrade_refused_when_the_version_table_is_gone_but_the_history_is_not(
        migd_factory, how):
    """The version table dropped (or version_table pointed at a table that does not
    exist yet, history_table left beside it) while the history records applied
    revisions: migd would plan from base and run every revision again, twice over
    the data. The upgrade (and adopt) are refused naming both tables and the way out,
    writing nothing; 'migctl stamp' creates the table, and the next upgrade runs only
    what is left."""
    m = connected(migd_factory())
    chain(m, 2)
    write_rev(m, "r3_data.sql", "r3", down="r2", up="""
        CREATE TABLE IF NOT EXISTS public.ledger (n int);
        INSERT INTO public.ledger VALUES (1);
        """, message="data")
    write_rev(m, "r4_more.sql", "r4", down="r3", up="CREATE TABLE public.t4 (id int);")
    assert step_revs(ok(m, "upgrade", {"target": "r3"})) == ["r1", "r2", "r3"]
    if how == "dropped":
        q(m, "DROP TABLE public.alembic_version")
        vt = "public.alembic_version"
    else:
        m.stop()
        m.write_config({("migrations", "version_table"): "public.app_version"})
        m.start()
        connected(m)
        vt = "public.app_version"
    before = history(m)
    s = m.status()
    assert s["state"] == "inconsistent" and s["pending"] is None, s
    assert "3 applied revisions" in s["inconsistent"], s
    assert m.migctl("check").returncode == 4
    p = m.migctl("upgrade", "--dry-run")
    assert p.returncode == 4 and "migctl stamp" in p.stdout + p.stderr, (p.stdout, p.stderr)
    p = m.migctl("upgrade")
    assert p.returncode == X_FAILED, (p.stdout, p.stderr)
    assert vt in p.stderr and "public.migd_history" in p.stderr, p.stderr
    assert "3 migrations applied" in p.stderr and "r3" in p.stderr, p.stderr
    assert "migctl stamp" in p.stderr and "Nothing was written" in p.stderr, p.stderr
    e = err(m, "upgrade", {}, code=E_STATE, kind="version_table_missing")
    assert e["data"]["latest"] == "r3" and e["data"]["applied"] == 3, e
    err(m, "adopt", {}, code=E_STATE, kind="version_table_missing")
    assert q(m, "SELECT count(*) FROM public.ledger") == "1"
    assert not rel_exists(m, vt), "the version table was created"
    assert history(m) == before, "the history changed"

    p = m.migctl("stamp", "r3")
    assert p.returncode == X_OK, (p.stdout, p.stderr)
    assert versions(m, vt) == ["r3"]
    assert step_revs(ok(m, "upgrade", {})) == ["r4"]
    assert q(m, "SELECT count(*) FROM public.ledger") == "1", "r3's data ran twice"
    for r in ("r1", "r2", "r3", "r4"):
        assert up_successes(m, r) == 1, (r, history(m))


def test_a_new_version_table_beside_an_empty_history_is_created(migd_factory):
    """A history with no applied revision (only failed attempts) does not stand in
    the way: the version table is created and the upgrade runs."""
    m = connected(migd_factory())
    write_rev(m, "r1_bad.sql", "r1", up="SELECT 1/0;")
    err(m, "upgrade", {})
    q(m, "DROP TABLE public.alembic_version")
    write_rev(m, "r1_bad.sql", "r1", up="CREATE TABLE public.t1 (id int);")
    assert step_revs(ok(m, "upgrade", {})) == ["r1"]
    assert versions(m) == ["r1"]


# ---- 9. a dirty revision whose file was taken out of the code ---------------------

def test_dirty_revision_whose_file_was_removed_can_be_resolved_unapplied(migd_factory):
    """A non-transactional migration fails part-way and the team takes the broken
    file out of the code (to write a new one). Every run is refused while it is
    dirty, so 'migctl resolve REV unapplied' must still work without its file: it
    records the resolve row and leaves the version table as it is; 'applied' is
    refused, saying why, and changes nothing. Then the next upgrade runs."""
    m = connected(migd_factory())
    chain(m, 2)
    write_rev(m, "r3_broken.sql", "r3", down="r2", transaction="none",
              up="CREATE TABLE public.t3 (id int);\nSELECT 1/0;")
    e = err(m, "upgrade", {})
    assert e["data"]["kind"] == "dirty", e
    os.unlink(os.path.join(m.migrations_dir, "r3_broken.sql"))
    wait_for(lambda: m.status()["migrations"]["revisions"] == 2, 5,
             what="the file's removal seen")
    s = m.status()
    assert s["state"] == "dirty" and s["dirty"] == ["r3"], s
    e = err(m, "upgrade", {}, code=E_STATE, kind="dirty")
    assert "no file defines it" in e["message"], e      # so not 'applied'
    assert "resolve r3 unapplied" in e["message"] and "applied' or" not in e["message"], e
    q(m, "DROP TABLE public.t3")                 # the person undoes statement 1

    before = history(m)
    p = m.migctl("resolve", "r3", "applied")
    assert p.returncode == X_FAILED, (p.stdout, p.stderr)
    assert "no migration file defines it" in p.stderr and "unapplied" in p.stderr, p.stderr
    assert history(m) == before and versions(m) == ["r2"]

    p = m.migctl("resolve", "r3", "unapplied")
    assert p.returncode == X_OK, (p.stdout, p.stderr)
    assert versions(m) == ["r2"]
    last = history(m)[-1]
    assert (last["revision"], last["direction"], last["error"]) == (
        "r3", "resolve", "resolved as unapplied"), last
    s = m.status()
    assert s["state"] == "up_to_date" and s["dirty"] == [], s
    write_rev(m, "r3_fixed.sql", "r3b", down="r2", up="CREATE TABLE public.t3 (id int);")
    assert step_revs(ok(m, "upgrade", {})) == ["r3b"]
    assert versions(m) == ["r3b"] and rel_exists(m, "public.t3")


# ---- 10. the client goes away --------------------------------------------------

def test_runs_go_on_when_their_migctl_is_killed_or_hung_up(migd_factory):
    """A deploy job times out (SIGKILL to its migctl) while its upgrade runs, and the
    terminal of a second migctl queued behind it closes (SIGHUP): neither run is
    cancelled (only Ctrl-C or 'migctl cancel' cancels), the running one completes and
    the queued one runs after it, each revision once, as migctl.1 says."""
    m = connected(migd_factory())
    sleeper_chain(m, sleep="2", marker="gone_sleeper", n_after=2)
    env = migdtest.clean_env({"MIGD_SOCKET": m.socket})
    first = run_bg([migdtest.MIGCTL_BIN, "upgrade", "r3"], env)
    wait_activity(m, "gone_sleeper")
    n = m.log().count("upgrade from")
    second = run_bg([migdtest.MIGCTL_BIN, "upgrade"], env)
    wait_for(lambda: m.log().count("upgrade from") > n, 5, what="the second run queued")
    second.send_signal(signal.SIGHUP)
    first.kill()
    for p in (first, second):
        p.communicate(timeout=10)
    assert first.returncode == -signal.SIGKILL and second.returncode == -signal.SIGHUP
    wait_for(lambda: versions(m) == ["r4"], 15, what="both runs done")
    assert_history_agrees(m, ["r1", "r2", "r3", "r4"])
    assert not m.status()["running"]
