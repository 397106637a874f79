"""Issue 12, items 1 and 2, against a real PostgreSQL: all-or-nothing runs
(--atomic, [migrations] atomic) and cancelling a run (the cancel method,
migctl cancel, Ctrl-C on migctl upgrade)."""

import datetime
import signal
import subprocess
import time

import migdtest
from engine_helpers import (Bg, E_STATE, X_FAILED, X_OK, call, connected, err, history,
                            ok, q, rel_exists, versions, wait_activity, write_rev)

E_CANCELLED = -32013


def _three(m, last_fails=True):
    write_rev(m, "a1_one.sql", "a1", up="CREATE TABLE public.a1 (id int);",
              down_sql="DROP TABLE public.a1;")
    write_rev(m, "a2_two.sql", "a2", down="a1", up="""
        CREATE TABLE public.a2 (id int);
        INSERT INTO public.a2 VALUES (1);
        """, down_sql="DROP TABLE public.a2;")
    return write_rev(m, "a3_three.sql", "a3", down="a2", up="""
        CREATE TABLE public.a3 (id int);
        %s
        """ % ("SELECT 1 / 0;" if last_fails else "SELECT 1;"),
                     down_sql="DROP TABLE public.a3;")


def test_atomic_run_rolls_everything_back(migd_factory):
    m = connected(migd_factory())
    f = _three(m)
    plan = ok(m, "plan", {"atomic": True})
    assert plan["atomic"] is True and plan["runnable"] is True
    notes, r = call(m, "upgrade", {"atomic": True})
    e = r["error"]
    assert e["data"]["kind"] == "sql_error", e
    assert e["message"].startswith(f + ":"), e
    assert "the whole run rolled back (atomic)" in e["message"], e
    assert [d["revision"] for d in e["data"]["rolled_back"]] == ["a1", "a2"]
    assert e["data"]["done"] == []
    # exactly as before the run: no table, no version row, one failure row
    assert versions(m) == []
    for t in ("a1", "a2", "a3"):
        assert not rel_exists(m, "public." + t)
    h = history(m)
    assert [(r["revision"], r["success"]) for r in h] == [("a3", False)], h
    # without --atomic the same files stop at the last good revision
    err(m, "upgrade", {}, kind="sql_error")
    assert versions(m) == ["a2"]


def test_atomic_run_applies_everything(migd_factory):
    m = connected(migd_factory())
    _three(m, last_fails=False)
    res = ok(m, "upgrade", {"atomic": True})
    assert res["atomic"] is True
    assert versions(m) == ["a3"]
    assert q(m, "SELECT count(*) FROM public.a2") == "1"
    # the steps share one transaction: every row was written by it
    assert q(m, "SELECT count(DISTINCT xmin::text) FROM (SELECT xmin FROM public.migd_history "
                "UNION ALL SELECT xmin FROM public.alembic_version) x") == "1"
    assert [r["success"] for r in history(m)] == [True, True, True]
    res = ok(m, "downgrade", {"target": "base", "atomic": True})
    assert versions(m) == [] and not rel_exists(m, "public.a1")


def test_atomic_refuses_what_cannot_run_in_a_transaction(migd_factory):
    m = connected(migd_factory())
    write_rev(m, "c1_t.sql", "c1", up="CREATE TABLE public.c1 (id int);")
    f = write_rev(m, "c2_idx.sql", "c2", down="c1",
                  up="CREATE INDEX CONCURRENTLY c1_id ON public.c1 (id);")
    write_rev(m, "c3_split.sql", "c3", down="c2", up="""
        CREATE TABLE public.c3 (id int);
        COMMIT AND CHAIN;
        CREATE TABLE public.c3b (id int);
        """)
    plan = ok(m, "plan", {"atomic": True})
    kinds = [(p["kind"], p["revision"]) for p in plan["problems"]]
    assert ("not_atomic", "c2") in kinds and ("not_atomic", "c3") in kinds, kinds
    assert plan["runnable"] is False
    e = err(m, "upgrade", {"atomic": True}, code=E_STATE, kind="not_atomic")
    assert e["message"].startswith(f + ": revision c2 cannot be part of an atomic run: "
                                   "CREATE INDEX CONCURRENTLY at line"), e
    assert "then c2 on its own" in e["message"], e
    assert versions(m) in (None, []) and not rel_exists(m, "public.c1")
    p = m.migctl("plan", "--atomic")
    assert "cannot run:" in p.stdout and "in one transaction" not in p.stdout, p.stdout
    assert "cannot be part of an atomic run" in p.stdout, p.stdout


def test_atomic_default_from_the_configuration(migd_factory):
    m = connected(migd_factory(overrides={("migrations", "atomic"): "true"}))
    _three(m)
    err(m, "upgrade", {}, kind="sql_error")
    assert versions(m) == []
    # a request may still say otherwise
    err(m, "upgrade", {"atomic": False}, kind="sql_error")
    assert versions(m) == ["a2"]
    p = m.migctl("upgrade", "--no-atomic")
    assert p.returncode == X_FAILED
    assert versions(m) == ["a2"]


def test_migctl_atomic_flag(migd_factory):
    m = connected(migd_factory())
    _three(m)
    p = m.migctl("upgrade", "--atomic")
    assert p.returncode == X_FAILED, p.stdout + p.stderr
    assert "rolled back (atomic)" in p.stderr, p.stderr
    assert versions(m) == []
    p = m.migctl("stamp", "a1", "--atomic")
    assert p.returncode == 2, p.stdout + p.stderr


SLEEPY = "CREATE TABLE public.s1 (id int);\nSELECT pg_sleep(60);\n"


def _running(m, needle="pg_sleep"):
    wait_activity(m, needle)


def test_cancel_a_running_transactional_migration(migd_factory):
    m = connected(migd_factory())
    write_rev(m, "s0_ok.sql", "s0", up="CREATE TABLE public.s0 (id int);")
    write_rev(m, "s1_sleep.sql", "s1", down="s0", up=SLEEPY)
    run = Bg(lambda: call(m, "upgrade", {}, timeout=60))
    _running(m)
    t0 = time.monotonic()
    res = ok(m, "cancel")
    assert res["cancelled"] == "running" and res["revision"] == "s1", res
    notes, r = run.join()
    assert time.monotonic() - t0 < 2.0
    e = r["error"]
    assert e["code"] == E_CANCELLED and e["data"]["kind"] == "cancelled", e
    assert "cancelled by" in e["message"] and "rolled back" in e["message"], e
    assert e["data"]["dirty"] is False
    assert versions(m) == ["s0"] and not rel_exists(m, "public.s1")
    assert q(m, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' "
                "AND pid <> pg_backend_pid()") == "0"
    assert history(m)[-1]["revision"] == "s1" and history(m)[-1]["success"] is False
    # the daemon goes on: the next run works
    write_rev(m, "s1_sleep.sql", "s1", down="s0", up="CREATE TABLE public.s1 (id int);")
    ok(m, "upgrade", {})
    assert versions(m) == ["s1"]


def test_cancel_a_non_transactional_migration_leaves_it_dirty(migd_factory):
    m = connected(migd_factory())
    write_rev(m, "n1_bare.sql", "n1", transaction="none", up=SLEEPY)
    run = Bg(lambda: call(m, "upgrade", {}, timeout=60))
    _running(m)
    # migctl cancel says what will happen: no rollback outside a transaction
    # (it said 'the migration rolls back' of every migration)
    p = subprocess.run([migdtest.MIGCTL_BIN, "-s", m.socket, "cancel"],
                       capture_output=True, text=True, timeout=10,
                       env=migdtest.clean_env())
    assert p.returncode == 0, p.stdout + p.stderr
    assert "rolls back" not in p.stdout, p.stdout
    assert "outside a transaction" in p.stdout and "dirty" in p.stdout, p.stdout
    _, r = run.join()
    e = r["error"]
    assert e["data"]["kind"] == "cancelled" and e["data"]["dirty"] is True, e
    assert "dirty" in e["message"], e
    assert rel_exists(m, "public.s1")
    assert ok(m, "status")["dirty"] == ["n1"]


def test_cancel_while_waiting_for_the_lock(migd_factory):
    a = connected(migd_factory())
    b = connected(migd_factory(db=a.db))
    for m in (a, b):
        write_rev(m, "s1_sleep.sql", "s1", up=SLEEPY)
    run_a = Bg(lambda: call(a, "upgrade", {}, timeout=60))
    _running(a)
    run_b = Bg(lambda: call(b, "upgrade", {}, timeout=60))
    time.sleep(0.5)
    assert run_b.t.is_alive()            # waiting for a's lock
    res = ok(b, "cancel")
    assert res["cancelled"] == "running" and res.get("revision") is None, res
    _, r = run_b.join(10)
    assert r["error"]["data"]["kind"] == "cancelled", r
    assert "nothing was applied" in r["error"]["message"], r
    ok(a, "cancel")
    run_a.join()
    assert versions(a) in (None, [])


def test_cancel_with_nothing_running(migd_factory):
    m = connected(migd_factory())
    e = err(m, "cancel", kind="not_running")
    assert "no migration is running" in e["message"]
    p = m.migctl("cancel")
    assert p.returncode == X_FAILED, p.stdout + p.stderr


def test_cancel_a_queued_run_by_its_requester(migd_factory):
    m = connected(migd_factory())
    write_rev(m, "q1_sleep.sql", "q1", up="SELECT pg_sleep(60);")
    write_rev(m, "q2_t.sql", "q2", down="q1", up="CREATE TABLE public.q2 (id int);")
    first = Bg(lambda: call(m, "upgrade", {"target": "q1"}, timeout=60))
    _running(m)
    queued = subprocess.Popen([migdtest.MIGCTL_BIN, "-s", m.socket, "upgrade"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=migdtest.clean_env())
    time.sleep(0.5)
    res = ok(m, "cancel", {"requester_pid": queued.pid})
    assert res["cancelled"] == "queued", res
    out, errout = queued.communicate(timeout=10)
    assert queued.returncode == X_FAILED, out + errout
    assert "before it started" in errout, errout
    # the running one goes on until it is cancelled itself
    assert first.t.is_alive()
    ok(m, "cancel")
    _, r = first.join()
    assert r["error"]["data"]["kind"] == "cancelled"
    assert versions(m) in (None, [])


def test_ctrl_c_on_migctl_upgrade_cancels_its_run(migd_factory):
    m = connected(migd_factory())
    write_rev(m, "s1_sleep.sql", "s1", up=SLEEPY)
    p = subprocess.Popen([migdtest.MIGCTL_BIN, "-s", m.socket, "upgrade"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=migdtest.clean_env())
    _running(m)
    t0 = time.monotonic()
    p.send_signal(signal.SIGINT)
    out, errout = p.communicate(timeout=10)
    assert time.monotonic() - t0 < 2.0
    assert p.returncode == X_FAILED, out + errout
    assert "cancelling the run" in errout and "cancelled by" in errout, errout
    assert versions(m) in (None, []) and not rel_exists(m, "public.s1")
    assert p.returncode != X_OK


def test_history_durations_measure_each_step(migd_factory):
    """The history row goes in the same pipeline as the step's statements,
    built before they run: its duration is the server's measure of the step."""
    m = connected(migd_factory())
    write_rev(m, "d1_slow.sql", "d1", up="SELECT pg_sleep(0.3);", down_sql="SELECT 1;")
    write_rev(m, "d2_slow.sql", "d2", down="d1", up="SELECT pg_sleep(0.2);",
              down_sql="SELECT 1;")
    for atomic in (False, True):
        ok(m, "upgrade", {"atomic": atomic})
        rows = [r for r in history(m) if r["direction"] == "up"][-2:]
        d1, d2 = (r["duration_ms"] for r in rows)
        # an atomic run's steps are timed by migd from hearing the end of the
        # step before (the server went on without waiting): a few ms late
        # or early under load, never a whole step off
        slack = 10 if atomic else 0
        assert 300 - slack <= d1 < 1500 and 200 - slack <= d2 < 1200, (atomic, rows)
        ok(m, "downgrade", {"target": "base"})


def test_atomic_history_rows_say_what_a_per_step_run_says(migd_factory):
    """An atomic run writes its history rows with one COPY: the values come
    out as the per-step INSERT writes them, hostile text included (quotes,
    backslashes, a tab, COPY's \\N), with the schemas created, the lint
    findings and times that measure each step."""
    odd = 'we"ird\\N'
    m = connected(migd_factory(overrides={
        ("migrations", "schemas"): 'cars, "%s"' % odd.replace('"', '""')}))
    q(m, "CREATE TABLE public.pre (id int)")
    msg = "it's \\N a\ttab, \"quoted\" \\back\\slash"
    write_rev(m, "o1 odd\\name.sql", "o1", message=msg, up="""
        CREATE INDEX pre_id ON public.pre (id);
        CREATE TABLE public.o1 (id int, note text);
        INSERT INTO public.o1 VALUES (1, E'a\\tb\\\\c');
        """, down_sql="DROP TABLE public.o1;\nDROP INDEX public.pre_id;")
    write_rev(m, "o2_two.sql", "o2", down="o1", message="two",
              up="ALTER TABLE public.pre ADD COLUMN v int;",
              down_sql="ALTER TABLE public.pre DROP COLUMN v;")
    t0 = time.time()
    res = ok(m, "upgrade", {"atomic": True})
    t1 = time.time()
    assert set(res["schemas_created"]) == {"cars", odd}, res
    atomic = history(m)
    assert [r["revision"] for r in atomic] == ["o1", "o2"], atomic
    assert sorted(atomic[0]["schemas_created"]) == sorted(["cars", odd]), atomic
    assert atomic[1]["schemas_created"] is None
    assert atomic[0]["message"] == msg and atomic[0]["file"].endswith("o1 odd\\name.sql")
    assert any(f["rule"] == "require-concurrent-index-creation"
               for f in atomic[0]["lint"]), atomic[0]
    for r in atomic:
        s = datetime.datetime.fromisoformat(r["started_at"]).timestamp()
        e = datetime.datetime.fromisoformat(r["finished_at"]).timestamp()
        assert t0 - 0.001 <= s <= e <= t1 + 0.001, (t0, t1, r)
        assert abs((e - s) * 1000 - r["duration_ms"]) < 0.01, r
    # the same migrations one transaction each: rows written by INSERT
    ok(m, "downgrade", {"target": "base"})
    ok(m, "upgrade", {})
    each = [r for r in history(m) if r["direction"] == "up"][2:]
    same = ("revision", "direction", "success", "dirty", "checksum", "message", "file",
            "requested_by", "requester_uid", "requester_pid", "host", "migd_version",
            "sqlstate", "error", "attempt", "lint")
    for a, b in zip(atomic, each):
        assert {k: a[k] for k in same} == {k: b[k] for k in same}, (a, b)
    assert q(m, "SELECT note FROM public.o1") == "a\tb\\c"
