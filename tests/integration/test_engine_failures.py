"""Error paths of the engine against a real PostgreSQL: failing migrations
(transactional and not), dirty revisions and resolve, drift, several heads,
targets, a database ahead of the files, stamp, missing down sections."""

import os

import pytest

from engine_helpers import (connected, E_MIGRATIONS, E_SQL, E_STATE, X_CHECK, X_FAILED, X_OK,
                            call, chain, err, history, line_of, migctl_json, ok, q,
                            rel_exists, step_revs, versions, write_file,
                            write_rev)


# ---- a failure in the middle of a chain -------------------------------------

BAD_R2 = """
CREATE TABLE public.t2a (id int);

-- the error is on the third line of this statement
INSERT INTO public.t2a (id)
SELECT id
  FROM public.no_such_table;

CREATE TABLE public.t2b (id int);
"""

GOOD_R2 = """
CREATE TABLE public.t2a (id int);
CREATE TABLE public.t2b (id int);
"""


def test_failure_in_the_middle_of_a_chain(migd_factory):
    m = connected(migd_factory())
    write_rev(m, "r1_a.sql", "r1", up="CREATE TABLE public.t1 (id int);",
              down_sql="DROP TABLE public.t1;")
    f2 = write_rev(m, "r2_b.sql", "r2", down="r1", up=BAD_R2, message="two tables",
                   down_sql="DROP TABLE public.t2b; DROP TABLE public.t2a;")
    write_rev(m, "r3_c.sql", "r3", down="r2", up="CREATE TABLE public.t3 (id int);")

    notes, r = call(m, "upgrade", {"target": "head"})
    assert "error" in r, r
    e = r["error"]
    assert e["code"] == E_SQL and e["data"]["kind"] == "sql_error", e
    d = e["data"]
    assert d["sqlstate"] == "42P01"
    assert "no_such_table" in d["message"]
    assert d["revision"] == "r2"
    assert d["file"] == f2
    assert d["line"] == line_of(f2, "FROM public.no_such_table"), d
    assert d["statement"].startswith("INSERT INTO public.t2a")
    assert "%s:%d:" % (f2, d["line"]) in e["message"]
    failed = [n["params"] for n in notes if n["params"].get("event") == "failed"]
    assert failed and failed[0]["revision"] == "r2", notes

    # the database is at the last good revision; nothing of r2 survived
    assert versions(m) == ["r1"]
    assert rel_exists(m, "public.t1")
    assert not rel_exists(m, "public.t2a"), "partial migration was not rolled back"
    assert not rel_exists(m, "public.t3")
    h = history(m)
    assert [(x["revision"], x["direction"], x["success"]) for x in h] == \
        [("r1", "up", True), ("r2", "up", False)]
    assert h[1]["sqlstate"] == "42P01" and "no_such_table" in h[1]["error"]
    assert h[1]["dirty"] is False
    st = m.status()
    assert st["state"] == "pending" and st["pending"] == 2
    assert [c["revision"] for c in st["current"]] == ["r1"]

    # migctl says it failed, with FILE:LINE
    p = m.migctl("upgrade")
    assert p.returncode == X_FAILED, p.stdout + p.stderr
    assert "%s:%d" % (f2, d["line"]) in p.stderr
    assert versions(m) == ["r1"]

    # fix the file: the run completes
    write_rev(m, "r2_b.sql", "r2", down="r1", up=GOOD_R2, message="two tables",
              down_sql="DROP TABLE public.t2b; DROP TABLE public.t2a;")
    res = ok(m, "upgrade", {"target": "head"})
    assert step_revs(res) == ["r2", "r3"]
    assert versions(m) == ["r3"]
    assert rel_exists(m, "public.t2a") and rel_exists(m, "public.t2b") and rel_exists(m, "public.t3")
    assert m.status()["state"] == "up_to_date"


def test_error_line_of_a_statement_after_comments_and_literals(migd_factory):
    m = connected(migd_factory())
    f = write_rev(m, "r1_a.sql", "r1", up="""
        /* a block comment; with a semicolon
           on two lines */
        CREATE TABLE public.a (s text DEFAULT 'x;y');
        SELECT 'one; two',
               1 / 0 AS boom;
        """)
    e = err(m, "upgrade", {}, code=E_SQL, kind="sql_error")
    assert e["data"]["sqlstate"] == "22012"
    assert e["data"]["line"] in (line_of(f, "SELECT 'one; two'"), line_of(f, "1 / 0")), e
    assert versions(m) == []
    assert not rel_exists(m, "public.a")


# ---- non-transactional migrations -----------------------------------------

def nontx(m, second):
    return write_rev(m, "n2_nt.sql", "n2", down="n1", transaction="none", up="""
        CREATE TABLE public.nt_first (id int);
        %s
        """ % second, down_sql="DROP TABLE public.nt_first;")


def test_non_transactional_failure_then_resolve_unapplied(migd_factory):
    m = connected(migd_factory())
    write_rev(m, "n1_base.sql", "n1", up="CREATE TABLE public.base (id int);")
    f = nontx(m, "CREATE TABLE public.nt_first (id int);")   # fails: exists
    write_rev(m, "n3_after.sql", "n3", down="n2", up="CREATE TABLE public.after (id int);")

    plan = ok(m, "plan", {})
    step = [s for s in plan["steps"] if s["revision"] == "n2"][0]
    assert step["transactional"] is False and step["why_not_transactional"]

    e = err(m, "upgrade", {}, code=E_SQL, kind="dirty")
    assert e["data"].get("sqlstate") == "42P07", e
    assert e["data"].get("revision") == "n2", e
    assert e["data"].get("line") == line_of(f, "CREATE TABLE public.nt_first", 2), e
    # the first statement stays (no transaction), the revision is dirty
    assert rel_exists(m, "public.nt_first")
    assert not rel_exists(m, "public.after")
    assert versions(m) == ["n1"]
    st = m.status()
    assert st["state"] == "dirty" and st["dirty"] == ["n2"], st
    assert any(x["revision"] == "n2" and x["dirty"] for x in history(m))
    rc, data, p = migctl_json(m, "verify")
    assert rc == X_CHECK, p.stdout + p.stderr
    assert m.migctl("check").returncode == X_CHECK

    # every run refuses until resolved, and touches nothing
    e = err(m, "upgrade", {}, code=E_STATE, kind="dirty")
    assert "n2" in e["message"]
    err(m, "downgrade", {"target": "base"}, code=E_STATE, kind="dirty")
    assert versions(m) == ["n1"] and rel_exists(m, "public.base")
    p = m.migctl("upgrade")
    assert p.returncode == X_FAILED and "n2" in p.stderr, p.stdout + p.stderr

    # resolve on a revision that is not dirty
    err(m, "resolve", {"revision": "n1", "state": "unapplied"}, code=E_STATE, kind="not_dirty")
    err(m, "resolve", {"revision": "n3", "state": "applied"}, code=E_STATE, kind="not_dirty")
    assert versions(m) == ["n1"]

    # resolve unapplied (after cleaning up by hand), fix the file, run again
    q(m, "DROP TABLE public.nt_first")
    p = m.migctl("resolve", "n2", "unapplied")
    assert p.returncode == X_OK, p.stdout + p.stderr
    assert versions(m) == ["n1"]
    assert m.status()["state"] == "pending"
    assert [x["direction"] for x in history(m) if x["revision"] == "n2"][-1] == "resolve"
    nontx(m, "CREATE TABLE public.nt_second (id int);")
    res = ok(m, "upgrade", {})
    assert step_revs(res) == ["n2", "n3"]
    assert versions(m) == ["n3"]
    assert rel_exists(m, "public.nt_second") and rel_exists(m, "public.after")
    st = m.status()
    assert st["state"] == "up_to_date" and st["dirty"] == [], st
    # n2 is clean now: resolving it again is refused
    err(m, "resolve", {"revision": "n2", "state": "applied"}, code=E_STATE, kind="not_dirty")


def test_non_transactional_failure_then_resolve_applied(migd_factory):
    m = connected(migd_factory())
    write_rev(m, "n1_base.sql", "n1", up="CREATE TABLE public.base (id int);")
    nontx(m, "CREATE INDEX CONCURRENTLY nt_idx ON public.nope (id);")   # fails: no table
    write_rev(m, "n3_after.sql", "n3", down="n2", up="CREATE TABLE public.after (id int);")
    e = err(m, "upgrade", {}, code=E_SQL, kind="dirty")
    assert e["data"].get("sqlstate") == "42P01", e
    assert versions(m) == ["n1"] and rel_exists(m, "public.nt_first")

    # the operator finishes the job by hand and says so
    res = ok(m, "resolve", {"revision": "n2", "state": "applied"})
    assert res["to"] == ["n2"], res
    assert versions(m) == ["n2"]
    last = history(m)[-1]
    assert (last["revision"], last["direction"], last["success"]) == ("n2", "resolve", True)
    st = m.status()
    assert st["state"] == "pending" and st["dirty"] == [] and st["pending"] == 1, st
    res = ok(m, "upgrade", {})
    assert step_revs(res) == ["n3"]
    assert versions(m) == ["n3"] and rel_exists(m, "public.after")
    # n2 was never run again
    assert not any(x["revision"] == "n2" and x["direction"] == "up" and x["success"]
                   for x in history(m))


def test_resolve_bad_arguments(migd_factory):
    m = connected(migd_factory())
    chain(m, 1)
    p = m.migctl("resolve", "r1", "maybe")
    assert p.returncode == 2, p.stdout + p.stderr
    err(m, "resolve", {"revision": "r1", "state": "maybe"}, code=-32602, kind="invalid_params")
    err(m, "resolve", {"revision": "zzz", "state": "applied"}, kind="plan_error")
    assert versions(m) in (None, [])


# ---- drift ----------------------------------------------------------------

def test_drift(migd_factory):
    m = connected(migd_factory())
    chain(m, 2)
    ok(m, "upgrade", {})
    assert versions(m) == ["r2"]
    write_rev(m, "r3_step.sql", "r3", down="r2", up="CREATE TABLE public.t3 (id int);")

    # a change to the down section only is not drift
    write_rev(m, "r2_step.sql", "r2", down="r1", up="CREATE TABLE public.t2 (id int);",
              down_sql="DROP TABLE IF EXISTS public.t2;", message="step 2")
    ok(m, "reload")
    assert m.status()["state"] == "pending"

    # the applied up section changes: drift
    f2 = write_rev(m, "r2_step.sql", "r2", down="r1",
                   up="CREATE TABLE public.t2 (id int, extra text);",
                   down_sql="DROP TABLE public.t2;", message="step 2")
    ok(m, "reload")
    st = m.status()
    assert st["state"] == "drift", st
    assert [d["revision"] for d in st["drift"]] == ["r2"]
    assert st["drift"][0]["file"] == f2
    rc, data, p = migctl_json(m, "verify")
    assert rc == X_CHECK, p.stdout + p.stderr
    assert data["state"] == "drift" and data["ok"] is False
    assert [d["revision"] for d in data["drift"]] == ["r2"]
    p = m.migctl("verify")
    assert p.returncode == X_CHECK and "r2" in p.stdout + p.stderr
    assert m.migctl("check").returncode == X_CHECK

    e = err(m, "upgrade", {}, code=E_STATE, kind="checksum_mismatch")
    assert "r2" in e["message"]
    plan = ok(m, "plan", {})
    assert plan["runnable"] is False
    assert [(x["kind"], x["revision"]) for x in plan["problems"]] == [("checksum_mismatch", "r2")]
    assert versions(m) == ["r2"] and not rel_exists(m, "public.t3")
    p = m.migctl("upgrade")
    assert p.returncode == X_FAILED, p.stdout + p.stderr

    # an explicit override runs the rest (and never re-runs r2)
    p = m.migctl("upgrade", "--allow-drift")
    assert p.returncode == X_OK, p.stdout + p.stderr
    assert versions(m) == ["r3"] and rel_exists(m, "public.t3")
    assert q(m, "SELECT count(*) FROM information_schema.columns WHERE table_name = 't2' "
                "AND column_name = 'extra'") == "0"


def test_crlf_only_change_is_not_drift(migd_factory):
    m = connected(migd_factory())
    chain(m, 2)
    ok(m, "upgrade", {})
    path = os.path.join(m.migrations_dir, "r2_step.sql")
    with open(path) as f:
        text = f.read()
    with open(path, "w", newline="") as f:
        f.write(text.replace("\n", "\r\n"))
    ok(m, "reload")
    st = m.status()
    assert st["state"] == "up_to_date" and st["drift"] == [], st
    rc, data, p = migctl_json(m, "verify")
    assert rc == X_OK and data["ok"] is True, p.stdout + p.stderr
    write_rev(m, "r3_step.sql", "r3", down="r2", up="CREATE TABLE public.t3 (id int);")
    ok(m, "upgrade", {})
    assert versions(m) == ["r3"]


# ---- several heads, targets ---------------------------------------------------

def test_several_heads_and_targets(migd_factory):
    m = connected(migd_factory())
    write_rev(m, "root.sql", "aa0001", up="CREATE TABLE public.root (id int);",
              down_sql="DROP TABLE public.root;")
    write_rev(m, "left.sql", "abc123", down="aa0001", up="CREATE TABLE public.l (id int);",
              down_sql="DROP TABLE public.l;")
    write_rev(m, "right.sql", "abd456", down="aa0001", up="CREATE TABLE public.r (id int);",
              down_sql="DROP TABLE public.r;")

    e = err(m, "upgrade", {"target": "head"}, code=E_MIGRATIONS)
    assert "abc123" in e["message"] and "abd456" in e["message"], e
    assert "heads" in e["message"]
    assert versions(m) in (None, [])
    assert not rel_exists(m, "public.root")
    p = m.migctl("upgrade")
    assert p.returncode == X_FAILED and "abc123" in p.stderr and "abd456" in p.stderr

    # ambiguous prefix lists the candidates, unknown is an error; nothing runs
    e = err(m, "upgrade", {"target": "ab"}, code=E_MIGRATIONS)
    assert "abc123" in e["message"] and "abd456" in e["message"], e
    e = err(m, "upgrade", {"target": "zz99"}, code=E_MIGRATIONS)
    assert "zz99" in e["message"]
    assert versions(m) in (None, [])

    # a unique prefix works
    res = ok(m, "upgrade", {"target": "abc"})
    assert step_revs(res) == ["aa0001", "abc123"] and res["target"] == "abc"
    assert versions(m) == ["abc123"]
    # the other branch, then both heads
    p = m.migctl("upgrade", "heads")
    assert p.returncode == X_OK, p.stdout + p.stderr
    assert versions(m) == ["abc123", "abd456"]
    assert rel_exists(m, "public.l") and rel_exists(m, "public.r")
    st = m.status()
    assert st["state"] == "up_to_date", st
    assert sorted(st["migrations"]["heads"]) == ["abc123", "abd456"]

    # downgrading one branch by prefix keeps the other
    res = ok(m, "downgrade", {"target": "aa0"})
    assert sorted(step_revs(res)) == ["abc123", "abd456"]
    assert versions(m) == ["aa0001"]

    # a merge makes head work again
    write_rev(m, "merge.sql", "mm01", down="abc123, abd456", up="")
    res = ok(m, "upgrade", {"target": "head"})
    assert step_revs(res)[-1] == "mm01" and versions(m) == ["mm01"]


def test_depends_on(migd_factory):
    m = connected(migd_factory())
    write_rev(m, "a1.sql", "a1", up="CREATE TABLE public.a1 (id int);")
    write_rev(m, "b1.sql", "b1", up="CREATE TABLE public.b1 (id int PRIMARY KEY);")
    write_rev(m, "a2.sql", "a2", down="a1", depends_on="b1",
              up="CREATE TABLE public.a2 (id int REFERENCES public.b1 (id));")
    ok(m, "upgrade", {"target": "a2"})
    assert rel_exists(m, "public.b1") and rel_exists(m, "public.a2")
    order = [x["revision"] for x in history(m)]
    assert order.index("b1") < order.index("a2")


# ---- a database ahead of the files --------------------------------------------

def test_ahead(migd_factory):
    m = connected(migd_factory())
    chain(m, 2)
    ok(m, "upgrade", {"target": "r1"})
    q(m, "UPDATE alembic_version SET version_num = 'f00dfeed'")
    st = m.status()
    assert st["state"] == "ahead", st
    assert st["unknown"] == ["f00dfeed"]
    e = err(m, "upgrade", {}, code=E_STATE, kind="ahead")
    assert "f00dfeed" in e["message"]
    err(m, "downgrade", {"target": "base"}, code=E_STATE, kind="ahead")
    assert versions(m) == ["f00dfeed"] and not rel_exists(m, "public.t2")
    assert rel_exists(m, "public.t1")
    assert m.migctl("check").returncode == X_CHECK
    assert m.migctl("verify").returncode == X_CHECK
    # stamping an unknown revision is refused
    err(m, "stamp", {"revision": "f00dfeed"}, kind="plan_error")
    assert versions(m) == ["f00dfeed"]


# ---- stamp ------------------------------------------------------------------

def test_stamp(migd_factory):
    m = connected(migd_factory())
    chain(m, 3)
    p = m.migctl("stamp", "r2")
    assert p.returncode == X_OK, p.stdout + p.stderr
    assert versions(m) == ["r2"]
    assert not rel_exists(m, "public.t1") and not rel_exists(m, "public.t2")
    last = history(m)[-1]
    assert (last["revision"], last["direction"], last["success"]) == ("r2", "stamp", True)
    assert len(history(m)) == 1
    st = m.status()
    assert st["state"] == "pending" and st["pending"] == 1

    res = ok(m, "stamp", {"revision": "base"})
    assert res["to"] == []
    assert versions(m) == []
    assert history(m)[-1]["direction"] == "stamp"
    res = ok(m, "upgrade", {})
    assert step_revs(res) == ["r1", "r2", "r3"]
    ok(m, "stamp", {"revision": "r1"})
    assert versions(m) == ["r1"] and rel_exists(m, "public.t3")   # stamp drops nothing
    err(m, "stamp", {"revision": "nope"}, kind="plan_error")
    assert versions(m) == ["r1"]


# ---- down section missing -----------------------------------------------------

def test_missing_down_section_refused_before_anything_runs(migd_factory):
    m = connected(migd_factory())
    f1 = write_rev(m, "r1_a.sql", "r1", up="CREATE TABLE public.t1 (id int);")   # no down
    write_rev(m, "r2_b.sql", "r2", down="r1", up="CREATE TABLE public.t2 (id int);",
              down_sql="DROP TABLE public.t2;")
    ok(m, "upgrade", {})
    n_hist = len(history(m))

    plan = ok(m, "plan", {"target": "base"})
    assert plan["runnable"] is False
    assert [(x["kind"], x["revision"]) for x in plan["problems"]] == [("no_down", "r1")]
    assert f1 in plan["problems"][0]["message"]
    assert [s["has_down"] for s in plan["steps"]] == [True, False]

    e = err(m, "downgrade", {"target": "base"}, kind="plan_error")
    assert e["code"] in (E_MIGRATIONS, E_STATE)
    assert "r1" in e["message"]
    # r2's down section would have run first: it must not have
    assert versions(m) == ["r2"] and rel_exists(m, "public.t2")
    assert len(history(m)) == n_hist
    p = m.migctl("downgrade", "base")
    assert p.returncode == X_FAILED, p.stdout + p.stderr
    # one step down is fine
    ok(m, "downgrade", {"target": "-1"})
    assert versions(m) == ["r1"] and not rel_exists(m, "public.t2")


# ---- invalid migration files ------------------------------------------------

# Each case writes its files and returns the places ([(path, needle)]) an error
# may point at: FILE:LINE of the line holding needle (None: line 1).

def _dup(m):
    a = write_rev(m, "x2_a.sql", "x2", down="x1", up="CREATE TABLE public.y (id int);")
    b = write_rev(m, "sub/x2_b.sql", "x2", down="x1", up="CREATE TABLE public.z (id int);")
    return [(a, "-- revision: x2"), (b, "-- revision: x2")]


def _cycle(m):
    a = write_rev(m, "x2_a.sql", "x2", down="x3", up="SELECT 1;")
    b = write_rev(m, "x3_a.sql", "x3", down="x2", up="SELECT 1;")
    return [(a, "-- down_revision"), (b, "-- down_revision")]


def _one(path, needle):
    return [(path, needle)]


INVALID = {
    "unknown_header": lambda m: _one(write_file(m, "x2_a.sql",
                                            "-- revision: x2\n-- down_revision: x1\n"
                                            "-- revison: typo\n-- migrate:up\nSELECT 1;\n"),
                                 "-- revison"),
    "missing_up_marker": lambda m: _one(write_file(m, "x2_a.sql",
                                               "-- revision: x2\n-- down_revision: x1\n\n"
                                               "CREATE TABLE public.y (id int);\n"), None),
    "duplicate_revision": _dup,
    "unknown_parent": lambda m: _one(write_rev(m, "x2_a.sql", "x2", down="nosuch",
                                           up="SELECT 1;"), "-- down_revision"),
    "cycle": _cycle,
    "syntax_error": lambda m: _one(write_rev(m, "x2_a.sql", "x2", down="x1", up="""
        CREATE TABLE public.y (id int);
        CREATE TABLE public.z (
            id int,
            oops oops oops
        );
        """), "oops oops"),
    "drop_schema_in_down": lambda m: _one(write_rev(m, "x2_a.sql", "x2", down="x1",
                                                up="CREATE TABLE public.y (id int);",
                                                down_sql="DROP TABLE public.y;\n"
                                                         "DROP SCHEMA cars CASCADE;"),
                                      "DROP SCHEMA"),
    "drop_schema_up_did_not_create": lambda m: _one(write_rev(
        m, "x2_a.sql", "x2", down="x1", up="CREATE SCHEMA IF NOT EXISTS legacy;",
        down_sql="DROP SCHEMA legacy;"), "DROP SCHEMA"),
    "drop_configured_among_several": lambda m: _one(write_rev(
        m, "x2_a.sql", "x2", down="x1", up="CREATE SCHEMA mine;",
        down_sql="DROP SCHEMA mine, work_shop CASCADE;"), "DROP SCHEMA"),
    "rename_configured_schema": lambda m: _one(write_rev(
        m, "x2_a.sql", "x2", down="x1", up="ALTER SCHEMA cars RENAME TO autos;",
        down_sql="ALTER SCHEMA autos RENAME TO cars;"), "ALTER SCHEMA cars"),
    "rollback_in_migration": lambda m: _one(write_rev(m, "x2_a.sql", "x2", down="x1", up="""
        CREATE TABLE public.y (id int);
        ROLLBACK;
        CREATE TABLE public.z (id int);
        """), "ROLLBACK"),
    "begin_inside_open_transaction": lambda m: _one(write_rev(m, "x2_a.sql", "x2", down="x1", up="""
        CREATE TABLE public.y (id int);
        BEGIN;
        CREATE TABLE public.z (id int);
        COMMIT;
        """), "BEGIN"),
    "prepare_transaction": lambda m: _one(write_rev(m, "x2_a.sql", "x2", down="x1", up="""
        BEGIN;
        CREATE TABLE public.y (id int);
        PREPARE TRANSACTION 'x';
        """), "PREPARE"),
    "chain_without_begin_when_bare": lambda m: _one(write_rev(
        m, "x2_a.sql", "x2", down="x1", transaction="none", up="""
        CREATE TABLE public.y (id int);
        COMMIT AND CHAIN;
        CREATE TABLE public.z (id int);
        """), "COMMIT AND CHAIN"),
    "concurrently_inside_begin": lambda m: _one(write_rev(m, "x2_a.sql", "x2", down="x1", up="""
        CREATE TABLE public.y (id int);
        BEGIN;
        CREATE INDEX CONCURRENTLY y_idx ON public.y (id);
        COMMIT;
        """), "CONCURRENTLY"),
    "never_committed_when_bare": lambda m: _one(write_rev(
        m, "x2_a.sql", "x2", down="x1", transaction="none", up="""
        BEGIN;
        CREATE TABLE public.y (id int);
        """), "BEGIN"),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_files(migd_factory, case):
    m = connected(migd_factory())
    write_rev(m, "x1_ok.sql", "x1", up="CREATE TABLE public.x (id int);")
    ok(m, "upgrade", {})
    assert versions(m) == ["x1"]
    n_hist = len(history(m))
    places = ["%s:%d:" % (path, line_of(path, needle) if needle else 1)
              for path, needle in INVALID[case](m)]

    def pointed(errors):
        return any(x.startswith(p) for x in errors for p in places)

    def check_errors(e):
        assert e["code"] == E_MIGRATIONS and e["data"]["kind"] == "invalid_migrations", e
        errors = e["data"]["errors"]
        assert errors and all(isinstance(x, str) for x in errors)
        assert pointed(errors), (places, errors)

    for method, params in (("upgrade", {}), ("plan", {}), ("upgrade", {"dry_run": True}),
                           ("downgrade", {"target": "base"}), ("stamp", {"revision": "x1"})):
        _, r = call(m, method, params)
        assert "error" in r, (method, r)
        check_errors(r["error"])
    _, r = call(m, "reload")
    assert "error" in r, r
    check_errors(r["error"])
    st = m.status()
    assert st["migrations"]["valid"] is False
    assert pointed(st["migrations"]["errors"]), st["migrations"]
    p = m.migctl("upgrade")
    assert p.returncode == X_FAILED and any(x in p.stderr for x in places), p.stdout + p.stderr

    # the database is untouched
    assert versions(m) == ["x1"]
    assert rel_exists(m, "public.x")
    assert not rel_exists(m, "public.y") and not rel_exists(m, "public.z")
    assert len(history(m)) == n_hist
    assert q(m, "SELECT count(*) FROM pg_namespace WHERE nspname = 'cars'") == "1"


def test_status_state_with_invalid_files(migd_factory):
    m = connected(migd_factory())
    chain(m, 1)
    ok(m, "upgrade", {})
    write_rev(m, "r2_bad.sql", "r2", down="r1", up="CREATE TABLE public.t2 (id int;")
    _, r = call(m, "reload")
    assert "error" in r
    st = m.status()
    assert st["migrations"]["valid"] is False
    assert st["state"] == "invalid_migrations", st
    assert m.migctl("check").returncode == X_CHECK


def test_revision_defaults_to_file_name_prefix(migd_factory):
    m = connected(migd_factory())
    write_rev(m, "sub/dir/c0ffee_first_thing.sql", "unused", header_revision=False,
              up="CREATE TABLE public.cf (id int);")
    res = ok(m, "upgrade", {})
    assert step_revs(res) == ["c0ffee"]
    assert versions(m) == ["c0ffee"]


def test_database_unavailable(own_pg, make_db, migd_factory):
    db = make_db(own_pg)
    m = connected(migd_factory(pg=own_pg, db=db))
    chain(m, 2)
    own_pg.stop()
    m.wait_connected(False)
    err(m, "upgrade", {}, code=-32004, kind="db_unavailable")
    err(m, "plan", {}, code=-32004, kind="db_unavailable")
    assert m.status()["state"] == "no_database"
    p = m.migctl("upgrade")
    assert p.returncode not in (X_OK, 3), p.stdout + p.stderr   # 3 is for the daemon itself
    assert m.migctl("check").returncode == X_CHECK
    own_pg.start()
    m.wait_connected(True)
    res = ok(m, "upgrade", {})
    assert step_revs(res) == ["r1", "r2"]
    assert versions(m) == ["r2"]


def test_adopting_an_alembic_database(migd_factory):
    """A database Alembic managed: its version table, no history table."""
    m = connected(migd_factory())
    chain(m, 3)
    q(m, "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
         "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)); "
         "INSERT INTO alembic_version VALUES ('r1'); CREATE TABLE public.t1 (id int);")
    ok(m, "reload")
    st = m.status()
    assert st["state"] == "pending" and st["pending"] == 2, st
    v = ok(m, "verify")
    assert v["ok"] is True and v["drift"] == []
    res = ok(m, "upgrade", {})
    assert step_revs(res) == ["r2", "r3"]
    assert versions(m) == ["r3"]
    assert [x["revision"] for x in history(m)] == ["r2", "r3"]
    # a downgrade through the revision migd never applied works too
    ok(m, "downgrade", {"target": "base"})
    assert versions(m) == [] and not rel_exists(m, "public.t1")


def test_configured_schema_created_by_a_migration(migd_factory):
    """A configured schema that a pending step creates with plain CREATE SCHEMA is
    not created beforehand (the step would fail with 42P06)."""
    m = connected(migd_factory())    # [migrations] schemas = cars, participants, work_shop
    write_rev(m, "c1.sql", "c1", up="""
        CREATE SCHEMA cars;
        CREATE TABLE cars.c (id int);
        """)
    plan = ok(m, "plan", {})
    assert sorted(plan["schemas_to_create"]) == ["participants", "work_shop"]
    res = ok(m, "upgrade", {})
    assert sorted(res["schemas_created"]) == ["participants", "work_shop"]
    assert versions(m) == ["c1"] and rel_exists(m, "cars.c")


def test_schemas_listing_agrees_with_plan(migd_factory):
    m = connected(migd_factory())
    write_rev(m, "c1.sql", "c1", up="CREATE SCHEMA cars;\nCREATE TABLE cars.c (id int);")
    plan = ok(m, "plan", {})
    listed = {s["name"]: s for s in ok(m, "schemas")["schemas"]}
    will = sorted(n for n, s in listed.items() if s["will_create"])
    assert will == sorted(plan["schemas_to_create"]), (listed, plan["schemas_to_create"])


def test_check_sees_a_new_revision_file(migd_factory):
    m = connected(migd_factory())
    chain(m, 1)
    ok(m, "upgrade", {})
    assert m.migctl("check").returncode == X_OK
    write_rev(m, "r2_new.sql", "r2", down="r1", up="CREATE TABLE public.t2 (id int);")
    # (no reload, plan or verify first: any of those refreshes the daemon's file set)
    p = m.migctl("check")
    st = m.status()
    assert st["state"] == "pending" and st["pending"] == 1, st
    assert p.returncode == X_CHECK, p.stdout


def test_exact_id_beats_prefix_and_bad_targets(migd_factory):
    m = connected(migd_factory())
    write_rev(m, "a.sql", "ab", up="CREATE TABLE public.ab (id int);")
    write_rev(m, "b.sql", "abc", down="ab", up="CREATE TABLE public.abc (id int);")
    write_rev(m, "c.sql", "abcd", down="abc", up="CREATE TABLE public.abcd (id int);")
    res = ok(m, "upgrade", {"target": "ab"})
    assert step_revs(res) == ["ab"] and versions(m) == ["ab"]
    for target in ("+0", "-0", "+x", "", "+99999999999999999999"):
        err(m, "upgrade", {"target": target}, code=E_MIGRATIONS, kind="plan_error")
    err(m, "upgrade", {"target": 5}, code=-32602, kind="invalid_params")
    err(m, "upgrade", {"dry_run": "yes"}, code=-32602, kind="invalid_params")
    err(m, "history", {"limit": 0}, code=-32602, kind="invalid_params")
    assert versions(m) == ["ab"] and not rel_exists(m, "public.abc")
    res = ok(m, "upgrade", {"target": "abc"})
    assert step_revs(res) == ["abc"]


def test_status_follows_the_files_without_reload(migd_factory):
    m = connected(migd_factory())
    chain(m, 2)
    ok(m, "upgrade", {})
    assert m.status()["state"] == "up_to_date"
    # an applied file changes: drift, at once
    write_rev(m, "r2_step.sql", "r2", down="r1", up="CREATE TABLE public.t2 (id int, z int);",
              down_sql="DROP TABLE public.t2;", message="step 2")
    st = m.status()
    assert st["state"] == "drift" and [d["revision"] for d in st["drift"]] == ["r2"], st
    chain(m, 2)   # restored
    assert m.status()["state"] == "up_to_date"
    # a new file in a new subdirectory
    write_rev(m, "later/deeper/r3_new.sql", "r3", down="r2", up="SELECT 1;")
    st = m.status()
    assert st["state"] == "pending" and st["pending"] == 1, st
    # and a file in it changes again
    write_rev(m, "later/deeper/r3_new.sql", "r3", down="r2", up="SELECT 1;")
    write_rev(m, "later/deeper/r4_new.sql", "r4", down="r3", up="SELECT 2;")
    assert m.status()["pending"] == 2
    # a file removed
    os.unlink(os.path.join(m.migrations_dir, "later/deeper/r4_new.sql"))
    assert m.status()["pending"] == 1
    assert m.migctl("check").returncode == X_CHECK
