"""Issue 9 against a real PostgreSQL: what a migration's SQL sends back to
migd.  COPY to or from the client is refused before anything runs (F1); the
rows of a large SELECT are dropped as they arrive, not held (F26); notices
and warnings reach the client that started the run and the log, with the
revision, and a flood of them is capped (F14); a migration that releases
migd's lock stops the run before it is recorded (F12)."""

import json
import os
import re
import subprocess
import time

import pytest

from engine_helpers import (connected, E_MIGRATIONS, E_SQL, X_FAILED, X_OK, call, err,
                            history, line_of, ok, q, rel_exists, versions, write_rev)
import migdtest


def _vm_hwm_kib(m):
    """migd's peak resident set (VmHWM), in KiB."""
    with open("/proc/%d/status" % m.proc.pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM for migd")


@pytest.fixture
def small_quarantine(monkeypatch):
    """Under AddressSanitizer freed memory sits in a quarantine of up to 256 MB,
    so the peak RSS of a daemon that frees row after row grows without any
    leak: shrink it for these daemons, so that RSS means what it says."""
    old = os.environ.get("ASAN_OPTIONS", "")
    monkeypatch.setenv("ASAN_OPTIONS", (old + ":" if old else "") +
                       "quarantine_size_mb=1:thread_local_quarantine_size_kb=64")


def _status_fast(m):
    """migd answers status within 2 s: its event loop is not stuck."""
    t0 = time.monotonic()
    st = m.status()
    assert time.monotonic() - t0 < 2.0, "status took %.1fs" % (time.monotonic() - t0)
    return st


# ---- F1: COPY to or from the client ----------------------------------------

COPY_CASES = {
    # name: (up SQL, down SQL or None, needle on the line named)
    "to_stdout": ("CREATE TABLE public.c2 (id int);\nCOPY public.c1 TO STDOUT;", None,
                  "COPY public.c1 TO STDOUT"),
    "query_to_stdout": ("COPY (SELECT g FROM generate_series(1, 10) g) TO STDOUT "
                        "WITH (FORMAT csv);", None, "COPY (SELECT"),
    "from_stdin_bare": ("CREATE TABLE public.c2 (id int);\nCOPY public.c2 FROM STDIN;",
                        None, "COPY public.c2 FROM STDIN"),
    "from_stdin_inline": ("CREATE TABLE public.c2 (id int, name text);\n"
                          "COPY public.c2 (id, name) FROM stdin;\n"
                          "1\tO'Brien\n2\tx\n\\.\n"
                          "SELECT 1;", None, "FROM stdin"),
    "from_stdin_inline_no_quote": ("CREATE TABLE public.c2 (id int);\n"
                                   "COPY public.c2 FROM stdin;\n1\n2\n\\.",
                                   None, "FROM stdin"),
    "in_down_section": ("CREATE TABLE public.c2 (id int);",
                        "COPY public.c2 TO STDOUT;\nDROP TABLE public.c2;",
                        "TO STDOUT"),
    "non_transactional": ("CREATE INDEX CONCURRENTLY c1_id ON public.c1 (id);\n"
                          "COPY public.c1 FROM STDIN;", None, "FROM STDIN"),
}


@pytest.mark.parametrize("case", sorted(COPY_CASES))
def test_copy_with_the_client_is_refused_before_anything_runs(migd_factory, case):
    m = connected(migd_factory())
    write_rev(m, "c1_ok.sql", "c1", up="CREATE TABLE public.c1 (id int);\n"
              "INSERT INTO public.c1 SELECT generate_series(1, 5);")
    ok(m, "upgrade", {})
    n_hist = len(history(m))
    up, down, needle = COPY_CASES[case]
    f = write_rev(m, "c2_copy.sql", "c2", down="c1", up=up, down_sql=down)
    place = "%s:%d:" % (f, line_of(f, needle))

    for method, params in (("plan", {}), ("upgrade", {}), ("upgrade", {"dry_run": True})):
        e = err(m, method, params, code=E_MIGRATIONS, kind="invalid_migrations")
        errors = e["data"]["errors"]
        assert any(x.startswith(place) and "COPY" in x and "client" in x
                   for x in errors), (place, errors)
        _status_fast(m)
    p = m.migctl("upgrade", timeout=20)
    assert p.returncode == X_FAILED, p.stdout + p.stderr
    assert place in p.stderr and "client" in p.stderr, p.stderr
    # nothing ran, migd is alive and answers at once
    assert versions(m) == ["c1"]
    assert not rel_exists(m, "public.c2")
    assert len(history(m)) == n_hist
    assert _status_fast(m)["state"] == "invalid_migrations"
    assert q(m, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND state = 'idle in transaction'") == "0"
    # once the file says what it means, the run works
    write_rev(m, "c2_copy.sql", "c2", down="c1", up="CREATE TABLE public.c2 (id int);")
    ok(m, "upgrade", {})
    assert versions(m) == ["c2"]
    assert m.proc.poll() is None


def test_copy_with_a_server_file_still_runs(migd_factory):
    m = connected(migd_factory())
    write_rev(m, "f1.sql", "f1", up="""
        CREATE TABLE public.f1 (id int);
        INSERT INTO public.f1 SELECT generate_series(1, 3);
        COPY public.f1 TO '/dev/null';
        COPY (SELECT id FROM public.f1) TO PROGRAM 'cat > /dev/null';
        """)
    ok(m, "upgrade", {})
    assert versions(m) == ["f1"]


def test_sigterm_after_a_refused_copy(migd_factory):
    m = connected(migd_factory())
    write_rev(m, "s1.sql", "s1", up="CREATE TABLE public.s1 (id int);\nCOPY public.s1 TO STDOUT;")
    err(m, "upgrade", {}, code=E_MIGRATIONS)
    m.signal(15)
    assert m.wait_exit(5) == 0


# The same at run time, for SQL no static check reads (a section only the
# scanner split, on a server newer than the parser): migd's own pool, on the
# real server, through tests/probe/pool_probe (built with migd).
PROBE = os.path.join(os.path.dirname(migdtest.MIGD_BIN), "tests", "probe", "pool_probe")

PROBE_CASES = {
    "copy_out": ("simple", ["COPY (SELECT g FROM generate_series(1, 300000) g) TO STDOUT"]),
    "copy_out_in_a_transaction": ("discard", [
        "BEGIN; COPY (SELECT g FROM generate_series(1, 300000) g) TO STDOUT; SELECT 1"]),
    "copy_in": ("simple", ["CREATE TEMP TABLE ct (id int); COPY ct FROM STDIN"]),
    "copy_in_discard": ("discard", ["CREATE TEMP TABLE ct (id int); COPY ct FROM STDIN"]),
    "copy_out_in_a_pipeline": ("pipeline", ["SELECT 1", "COPY (SELECT 1) TO STDOUT",
                                            "SELECT 2"]),
    "copy_in_in_a_pipeline": ("pipeline", ["SELECT 1", "COPY pg_class FROM STDIN",
                                           "SELECT 2"]),
}


@pytest.mark.parametrize("case", sorted(PROBE_CASES))
def test_a_copy_at_run_time_ends_and_the_connection_goes_on(pg, make_db, case):
    assert os.access(PROBE, os.X_OK), "build tests/probe/pool_probe (make) first: " + PROBE
    mode, sqls = PROBE_CASES[case]
    t0 = time.monotonic()
    # a loop that spins never prints; the timeout fails the test
    p = subprocess.run([PROBE, pg.conninfo(make_db(pg)), mode] + sqls, capture_output=True,
                       text=True, timeout=30, env=migdtest.clean_env())
    assert p.returncode == 0, p.stdout + p.stderr
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert time.monotonic() - t0 < 15, out
    if case == "copy_in_in_a_pipeline":
        # the queries after it are already on the wire: the server drops the
        # connection (protocol out of sync); the pool says so, never spins
        assert out["status"] == "lost", out
        return
    if "copy_in" in case:
        assert out["status"] == "PGRES_FATAL_ERROR" and out["sqlstate"] == "57014", out
        assert "COPY from stdin failed: migd has no data" in out["message"], out
        assert "cannot copy from the client" in out["copy_refused"], out
    else:
        assert out["status"] in ("PGRES_COMMAND_OK", "PGRES_TUPLES_OK"), out
        assert "COPY TO STDOUT" in out["copy_refused"], out
    if case == "copy_out_in_a_transaction":
        assert out["transaction"] == 2, out     # PQTRANS_INTRANS: migd rolls it back
    assert out["after"] == "still here", out


# ---- F26: large results ----------------------------------------------------

BIG_ROWS = 3000000


@pytest.mark.parametrize("transactional", [True, False], ids=["pipelined", "bare"])
def test_large_select_in_a_migration_is_not_held(small_quarantine, migd_factory,
                                                 transactional):
    m = connected(migd_factory())
    # 3 M rows of ~110 bytes: some 450 MB if libpq held the result whole
    write_rev(m, "b1_big.sql", "b1", transaction=None if transactional else "none", up="""
        CREATE TABLE public.big AS SELECT g AS id FROM generate_series(1, %d) g;
        SELECT id, repeat('x', 100) AS pad FROM public.big;
        INSERT INTO public.big SELECT -id FROM public.big WHERE id <= 10 RETURNING id, 'y';
        """ % BIG_ROWS)
    write_rev(m, "b2_after.sql", "b2", down="b1", up="CREATE TABLE public.after_big (id int);")
    before = _vm_hwm_kib(m)
    r = ok(m, "upgrade", {}, timeout=120)
    assert [s["revision"] for s in r["steps"]] == ["b1", "b2"], r
    assert versions(m) == ["b2"]
    assert q(m, "SELECT count(*) FROM public.big") == str(BIG_ROWS + 10)
    assert rel_exists(m, "public.after_big")
    grown = _vm_hwm_kib(m) - before
    assert grown < 100 * 1024, "migd's peak RSS grew by %d KiB" % grown


def test_failure_after_a_large_select_names_its_statement(migd_factory):
    m = connected(migd_factory())
    f = write_rev(m, "e1.sql", "e1", up="""
        SELECT g, repeat('x', 50) FROM generate_series(1, 200000) g;
        SELECT 1 / (g - 150000) FROM generate_series(1, 200000) g;
        """)
    e = err(m, "upgrade", {}, code=E_SQL, kind="sql_error")
    assert e["data"]["sqlstate"] == "22012", e
    assert e["message"].startswith("%s:%d:" % (f, line_of(f, "1 / (g"))), e
    assert versions(m) == []


# ---- F14: notices and warnings ---------------------------------------------

NOTICES = """
CREATE TABLE public.n1 (id int);
DO $$BEGIN RAISE NOTICE 'hello %', 42; END$$;
DO $$BEGIN RAISE WARNING 'careful: %', 'tab' USING DETAIL = 'more', HINT = 'do this'; END$$;
"""


def _notice_events(notes):
    return [n["params"] for n in notes
            if n.get("method") == "progress" and n["params"].get("event") == "notice"]


@pytest.mark.parametrize("transactional", [True, False], ids=["pipelined", "bare"])
def test_notices_reach_the_client_and_the_log(migd_factory, transactional):
    m = connected(migd_factory())
    write_rev(m, "n1_say.sql", "n1", up=NOTICES,
              transaction=None if transactional else "none")
    notes, r = call(m, "upgrade", {})
    assert "result" in r, r
    got = _notice_events(notes)
    assert [(g["revision"], g["severity"], g["message"]) for g in got] == [
        ("n1", "NOTICE", "hello 42"), ("n1", "WARNING", "careful: tab")], got
    assert got[1]["detail"] == "more" and got[1]["hint"] == "do this", got
    assert got[0]["direction"] == "up" and got[0]["sqlstate"] == "00000", got
    # between the step's started and finished events
    events = [n["params"]["event"] for n in notes if n.get("method") == "progress"]
    assert events.index("started") < events.index("notice") < events.index("finished"), events
    log = m.log()
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d info: n1 \(.*n1_say\.sql\): "
                     r"NOTICE: hello 42$", log, re.M), log
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d warning: n1 \(.*n1_say\.sql\): "
                     r"WARNING: careful: tab$", log, re.M), log
    # never raw on migd's stderr, as libpq's default printed them
    assert not re.search(r"^(NOTICE|WARNING):  ", log, re.M), log


def test_migctl_shows_notices_in_text_and_json(migd_factory):
    m = connected(migd_factory())
    write_rev(m, "n1_say.sql", "n1", up=NOTICES,
              down_sql="DO $$BEGIN RAISE NOTICE 'going down'; END$$; DROP TABLE public.n1;")
    p = m.migctl("upgrade")
    assert p.returncode == X_OK, p.stdout + p.stderr
    assert "NOTICE n1: hello 42\n" in p.stderr, p.stderr
    assert "WARNING n1: careful: tab\n" in p.stderr, p.stderr
    assert "  DETAIL: more\n" in p.stderr and "  HINT: do this\n" in p.stderr, p.stderr
    assert "hello" not in p.stdout, p.stdout
    p = m.migctl("--json", "--stream", "downgrade", "base")
    assert p.returncode == X_OK, p.stdout + p.stderr
    msgs = [json.loads(line) for line in p.stdout.splitlines() if line.strip()]
    notices = [x["params"] for x in msgs if x.get("method") == "progress"
               and x["params"]["event"] == "notice"]
    assert [(n["revision"], n["direction"], n["severity"], n["message"]) for n in notices] == [
        ("n1", "down", "NOTICE", "going down")], msgs
    assert "result" in msgs[-1], msgs


def test_notices_and_progress_lines_in_one_log_do_not_share_a_line(migd_factory):
    """stdout and stderr into one file or pipe, as a CI job's log and the demo's
    output have them: the step's line ended with "... NOTICE n1: hello 42" and
    its "done in 3 ms" stood alone three lines below.  Now the open line ends
    before the first notice, and the step's line is written again, whole, with
    its outcome; a step without notices is one line as before."""
    m = connected(migd_factory())
    write_rev(m, "n1_say.sql", "n1", up=NOTICES)
    write_rev(m, "n2_quiet.sql", "n2", down="n1", up="CREATE TABLE public.n2 (id int);")
    write_rev(m, "n3_fails.sql", "n3", down="n2",
              up="DO $$BEGIN RAISE NOTICE 'about to fail'; END$$; SELECT 1/0;")
    e = migdtest.clean_env()
    e["MIGD_SOCKET"] = m.socket
    p = subprocess.run([migdtest.MIGCTL_BIN, "upgrade"], env=e, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=30,
                       stdin=subprocess.DEVNULL)
    assert p.returncode == X_FAILED, p.stdout
    lines = p.stdout.splitlines()
    for line in lines:
        assert not (" ... " in line and re.search(r"(NOTICE|WARNING) n\d", line)), lines
    step = [x for x in lines if x.startswith("[")]
    assert re.match(r"^\[1/3\] up +n1 .* \.\.\. $", step[0]), step
    assert re.match(r"^\[1/3\] up +n1 .* \.\.\. done in \d+ ms$", step[1]), step
    assert re.match(r"^\[2/3\] up +n2 .* \.\.\. done in \d+ ms$", step[2]), step
    assert re.match(r"^\[3/3\] up +n3 .* \.\.\. $", step[3]), step
    assert re.match(r"^\[3/3\] up +n3 .* \.\.\. FAILED$", step[4]), step
    assert len(step) == 5, step
    i = lines.index(step[0])
    assert lines[i + 1:i + 5] == ["NOTICE n1: hello 42", "WARNING n1: careful: tab",
                                  "  DETAIL: more", "  HINT: do this"], lines
    assert lines[lines.index(step[3]) + 1] == "NOTICE n3: about to fail", lines


def test_control_characters_in_a_notice_are_escaped_for_people(migd_factory):
    m = connected(migd_factory())
    write_rev(m, "n1_esc.sql", "n1",
              up="DO $$BEGIN RAISE NOTICE E'two\\nlines \\x1b[31mred'; END$$;",
              down_sql="DO $$BEGIN RAISE NOTICE E'bell\\x07'; END$$;")
    p = m.migctl("upgrade")
    assert p.returncode == X_OK, p.stdout + p.stderr
    assert "NOTICE n1: two\\nlines \\x1b[31mred\n" in p.stderr, repr(p.stderr)
    assert "\x1b" not in p.stderr, repr(p.stderr)
    log = m.log()
    assert "NOTICE: two\\nlines \\x1b[31mred" in log and "\x1b" not in log, log
    # the protocol carries the text as it is; JSON escapes it
    notes, r = call(m, "downgrade", {"target": "base"})
    assert "result" in r, r
    assert [g["message"] for g in _notice_events(notes)] == ["bell\x07"], notes


def test_a_flood_of_notices_is_capped(small_quarantine, migd_factory):
    m = connected(migd_factory())
    n = 200000
    write_rev(m, "n1_flood.sql", "n1", up="""
        DO $$BEGIN FOR i IN 1..%d LOOP RAISE NOTICE 'tick %%', i; END LOOP; END$$;
        CREATE TABLE public.flooded (id int);
        """ % n)
    write_rev(m, "n2_quiet.sql", "n2", down="n1",
              up="DO $$BEGIN RAISE NOTICE 'second'; END$$;")
    before = _vm_hwm_kib(m)
    notes, r = call(m, "upgrade", {}, timeout=120)
    assert "result" in r, r
    got = _notice_events(notes)
    first = [g for g in got if g["revision"] == "n1"]
    assert len(first) == 100, len(first)
    assert first[0]["message"] == "tick 1" and first[-1]["message"] == "tick 100"
    supp = [x["params"] for x in notes if x["params"].get("event") == "notices_suppressed"]
    assert supp == [{"event": "notices_suppressed", "revision": "n1", "direction": "up",
                     "count": n - 100}], supp
    # the cap is per migration: the next one's notice comes through
    assert [g["message"] for g in got if g["revision"] == "n2"] == ["second"]
    log = m.log()
    assert log.count("NOTICE: tick ") == 100, log.count("NOTICE: tick ")
    assert "%d more notices and warnings suppressed" % (n - 100) in log
    assert _vm_hwm_kib(m) - before < 64 * 1024
    p = m.migctl("status")
    assert p.returncode == X_OK, p.stdout + p.stderr


def test_notices_of_migd_own_queries_are_not_sent(migd_factory):
    # migd's unlock at the end of this run warns (the migration released the
    # lock): that goes to the log at debug level, never to the client
    m = connected(migd_factory())
    write_rev(m, "u1.sql", "u1", up="SELECT pg_advisory_unlock_all();")
    notes, r = call(m, "upgrade", {})
    assert "error" in r, r
    assert _notice_events(notes) == [], notes
    assert re.search(r"debug: database: WARNING: you don't own a lock", m.log()), m.log()


# ---- F12: the lock released by a migration ---------------------------------

LET_GO = """
CREATE FUNCTION public.let_go() RETURNS void LANGUAGE plpgsql AS
$$BEGIN PERFORM pg_catalog.pg_advisory_unlock_all(); END$$;
"""


def test_lock_released_through_a_function_fails_the_transactional_step(migd_factory):
    # the step's text never says "advisory": only the check sees it
    m = connected(migd_factory())
    write_rev(m, "l1_fn.sql", "l1", up=LET_GO)
    f = write_rev(m, "l2_call.sql", "l2", down="l1", up="""
        CREATE TABLE public.l2 (id int);
        SELECT public.let_go();
        """)
    write_rev(m, "l3_next.sql", "l3", down="l2", up="CREATE TABLE public.l3 (id int);")
    e = err(m, "upgrade", {}, code=E_SQL, kind="sql_error")
    assert e["message"].startswith(f + ": revision l2: "), e
    assert "lock was released" in e["message"] and "stopped the run" in e["message"], e
    assert e["data"]["sqlstate"] == "55000", e
    assert versions(m) == ["l1"]
    assert not rel_exists(m, "public.l2") and not rel_exists(m, "public.l3")
    h = history(m)
    assert [(x["revision"], x["success"]) for x in h] == [("l1", True), ("l2", False)], h


@pytest.mark.parametrize("how", ["discard_all", "function"])
def test_lock_released_in_a_non_transactional_step_stops_the_run(migd_factory, how):
    m = connected(migd_factory())
    write_rev(m, "l1_fn.sql", "l1", up=LET_GO)
    release = "DISCARD ALL;" if how == "discard_all" else "SELECT public.let_go();"
    f = write_rev(m, "l2_bare.sql", "l2", down="l1", transaction="none", up="""
        CREATE TABLE public.before_release (id int);
        %s
        CREATE TABLE public.after_release (id int);
        """ % release)
    write_rev(m, "l3_next.sql", "l3", down="l2", up="CREATE TABLE public.l3 (id int);")
    notes, r = call(m, "upgrade", {})
    e = r["error"]
    assert e["code"] == E_SQL and e["data"]["kind"] == "dirty", e
    assert e["message"].startswith(f + ": revision l2: "), e
    assert "ran without the lock" in e["message"], e
    assert "now dirty" in e["message"], e
    assert e["data"]["sqlstate"] == "55000", e
    # its SQL ran (committed statement by statement), nothing was recorded
    # as applied, and the run stopped there
    assert rel_exists(m, "public.after_release")
    assert versions(m) == ["l1"]
    assert not rel_exists(m, "public.l3")
    h = history(m)
    assert h[-1]["revision"] == "l2" and h[-1]["dirty"] is True and \
        h[-1]["success"] is False, h
    assert any(n["params"].get("event") == "failed" for n in notes), notes
    # the next run refuses until resolve
    err(m, "upgrade", {}, kind="dirty")
    p = m.migctl("upgrade")
    assert p.returncode != X_OK and "l2" in p.stderr, p.stderr


STEP_KINDS = {
    "pipelined": dict(up="CREATE TABLE public.k1 (id int);"),
    "statement_by_statement": dict(up="CREATE TABLE public.k1 (id int);\n"
                                   "COPY public.k1 TO '/dev/null';"),
    "bare": dict(up="CREATE TABLE public.k1 (id int);", transaction="none"),
    "split_by_commit": dict(up="CREATE TABLE public.k1 (id int);\nCOMMIT;\n"
                            "CREATE TABLE public.k1b (id int);"),
    "no_statement": dict(up="-- nothing to do"),
}


@pytest.mark.parametrize("kind,atomic", [
    (k, a) for k in sorted(STEP_KINDS) for a in (False, True)
    if not (a and k in ("bare", "split_by_commit"))])     # those cannot be atomic
def test_every_kind_of_step_passes_the_lock_check_and_leaves_no_lock(migd_factory, kind,
                                                                      atomic):
    m = connected(migd_factory())
    write_rev(m, "k0.sql", "k0", up="CREATE TABLE public.k0 (id int);")
    write_rev(m, "k1.sql", "k1", down="k0", **STEP_KINDS[kind])
    write_rev(m, "k2.sql", "k2", down="k1", up="SELECT 1;")
    r = ok(m, "upgrade", {"atomic": atomic})
    assert [s["revision"] for s in r["steps"]] == ["k0", "k1", "k2"], r
    assert versions(m) == ["k2"]
    # no advisory lock of this database is left, in either mode
    assert q(m, "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = "
                "l.database WHERE l.locktype = 'advisory' AND d.datname = "
                "current_database()") == "0"
