"""Issue 10 against a real PostgreSQL: transaction control written in the
files (psql's BEGIN/COMMIT, COMMIT AND CHAIN, COMMIT; BEGIN;) and SQL newer
than libpg_query's parser."""

import os

import migdtest
from engine_helpers import (connected, E_SQL, X_FAILED, X_OK, call, err, history,
                            line_of, ok, q, rel_exists, versions, write_rev)


def test_section_wrapped_in_begin_commit_is_one_transaction(migd_factory):
    m = connected(migd_factory())
    write_rev(m, "p1_ok.sql", "p1", up="""
        BEGIN ISOLATION LEVEL SERIALIZABLE;
        CREATE TABLE public.iso AS SELECT current_setting('transaction_isolation') AS v;
        COMMIT;
        """, down_sql="""
        BEGIN;
        DROP TABLE public.iso;
        COMMIT;
        """)
    f = write_rev(m, "p2_bad.sql", "p2", down="p1", up="""
        BEGIN;
        CREATE TABLE public.p2a (id int);
        INSERT INTO public.p2a VALUES (1), (1);
        CREATE UNIQUE INDEX p2a_id ON public.p2a (id);
        COMMIT;
        """)
    e = err(m, "upgrade", {}, code=E_SQL, kind="sql_error")
    assert e["message"].startswith("%s:%d:" % (f, line_of(f, "CREATE UNIQUE"))), e
    # the file's BEGIN kept its options; the failing one left nothing behind
    assert q(m, "SELECT v FROM public.iso") == "serializable"
    assert versions(m) == ["p1"]
    assert not rel_exists(m, "public.p2a")
    h = history(m)
    assert [(r["revision"], r["success"], r["dirty"]) for r in h] == \
        [("p1", True, False), ("p2", False, False)], h
    ok(m, "downgrade", {"target": "base"})
    assert not rel_exists(m, "public.iso") and versions(m) == []


def test_set_transaction_opening_a_transaction_is_kept(migd_factory):
    """SET TRANSACTION must come before the transaction's first query, which
    psql allows after BEGIN (or at the start of `psql -1 -f`); migd's own
    timeouts and lock witness are queries, so it sends the file's SET
    TRANSACTION right after the BEGIN, in every way a migration runs: one
    transaction (pipelined), several (split by COMMITs), and statement by
    statement (a COPY)."""
    m = connected(migd_factory())
    iso = "current_setting('transaction_isolation')"
    write_rev(m, "s1_wrapped.sql", "s1", up="""
        BEGIN;
        SET TRANSACTION ISOLATION LEVEL SERIALIZABLE;
        SET TRANSACTION READ WRITE;
        CREATE TABLE public.iso (n int, v text DEFAULT %s);
        INSERT INTO public.iso (n) VALUES (1);
        COMMIT;
        """ % iso, down_sql="DROP TABLE public.iso;")
    f2 = write_rev(m, "s2_bare.sql", "s2", down="s1", up="""
        SET TRANSACTION ISOLATION LEVEL REPEATABLE READ;
        INSERT INTO public.iso (n) VALUES (2);
        """, down_sql="DELETE FROM public.iso WHERE n = 2;")
    write_rev(m, "s3_split.sql", "s3", down="s2", up="""
        SET TRANSACTION ISOLATION LEVEL SERIALIZABLE;
        INSERT INTO public.iso (n) VALUES (3);
        COMMIT;
        BEGIN;
        SET TRANSACTION ISOLATION LEVEL REPEATABLE READ;
        INSERT INTO public.iso (n) VALUES (4);
        COMMIT AND CHAIN;
        SET TRANSACTION ISOLATION LEVEL SERIALIZABLE;
        INSERT INTO public.iso (n) VALUES (5);
        """, down_sql="DELETE FROM public.iso WHERE n BETWEEN 3 AND 5;")
    write_rev(m, "s4_copy.sql", "s4", down="s3", up="""
        SET TRANSACTION ISOLATION LEVEL REPEATABLE READ;
        COPY public.iso (n) FROM PROGRAM 'echo 6';
        """, down_sql="DELETE FROM public.iso WHERE n = 6;")
    assert ok(m, "plan", {})["steps"][2]["transactions"]["count"] == 3
    ok(m, "upgrade", {})
    assert versions(m) == ["s4"]
    assert q(m, "SELECT string_agg(n || ' ' || v, ', ' ORDER BY n) "
             "FROM public.iso") == (
        "1 serializable, 2 repeatable read, 3 serializable, "
        "4 repeatable read, 5 serializable, 6 repeatable read")
    h = history(m)
    assert [(r["revision"], r["success"], r["dirty"]) for r in h
            if r["direction"] == "up"] == [
        ("s1", True, False), ("s2", True, False), ("s3", True, False),
        ("s4", True, False)], h
    ok(m, "downgrade", {"target": "base"})
    assert versions(m) == [] and not rel_exists(m, "public.iso")

    # In an atomic run the transaction is the run's: only the first
    # migration's SET TRANSACTION comes before its first query.  The later
    # one fails as in `psql -1`, at its line, and nothing is left.
    e = err(m, "upgrade", {"target": "s2", "atomic": True}, code=E_SQL,
            kind="sql_error")
    assert e["message"].startswith("%s:%d: SET TRANSACTION ISOLATION LEVEL "
                                   "must be called before any query" % (
                                       f2, line_of(f2, "REPEATABLE"))), e
    assert versions(m) == [] and not rel_exists(m, "public.iso")
    ok(m, "upgrade", {"target": "s1", "atomic": True})
    assert q(m, "SELECT n || ' ' || v FROM public.iso") == "1 serializable"


CHAINED = """
CREATE TABLE public.big (id int PRIMARY KEY, v int);
INSERT INTO public.big SELECT g, g FROM generate_series(1, 1000) g;
COMMIT AND CHAIN;
ALTER TABLE public.big ADD COLUMN w int;
UPDATE public.big SET w = v * 2;
COMMIT;
BEGIN;
CREATE INDEX big_w ON public.big (w);
"""


def test_commit_and_chain_splits_a_migration(migd_factory):
    m = connected(migd_factory())
    f = write_rev(m, "k1_big.sql", "k1", up=CHAINED,
                  down_sql="DROP TABLE public.big;")
    plan = ok(m, "plan", {})
    step = plan["steps"][0]
    assert step["transactional"] is True
    assert step["transactions"]["count"] == 3, step
    assert step["transactions"]["first_lines"] == [
        line_of(f, "CREATE TABLE"), line_of(f, "ALTER TABLE"), line_of(f, "CREATE INDEX")]
    p = m.migctl("plan")
    assert p.returncode == X_OK, p.stdout + p.stderr
    assert "3 transactions, starting at lines %d, %d, %d" % tuple(
        step["transactions"]["first_lines"]) in p.stdout, p.stdout
    notes, r = call(m, "upgrade", {})
    assert "result" in r, r
    started = [n["params"] for n in notes if n["params"].get("event") == "started"]
    assert started[0]["transactions"] == 3
    assert versions(m) == ["k1"]
    assert q(m, "SELECT count(*) FROM public.big WHERE w = 2 * v") == "1000"
    assert rel_exists(m, "public.big_w")
    h = history(m)
    assert [(r["revision"], r["success"], r["dirty"]) for r in h] == [("k1", True, False)], h
    assert ok(m, "status")["state"] == "up_to_date"


def test_failure_after_a_commit_leaves_the_revision_dirty(migd_factory):
    m = connected(migd_factory())
    write_rev(m, "k0_base.sql", "k0", up="CREATE TABLE public.base (id int);")
    f = write_rev(m, "k1_big.sql", "k1", down="k0", up="""
        CREATE TABLE public.part1 (id int);
        COMMIT;
        BEGIN;
        CREATE TABLE public.part2 (id int);
        SELECT 1 / 0;
        COMMIT;
        CREATE TABLE public.part3 (id int);
        """, down_sql="DROP TABLE public.part1;")
    e = err(m, "upgrade", {}, code=E_SQL, kind="dirty")
    assert e["message"].startswith("%s:%d:" % (f, line_of(f, "1 / 0"))), e
    assert "1 of its 3 transactions committed" in e["message"], e
    assert e["data"]["transactions"] == {"total": 3, "committed": 1}, e["data"]
    assert rel_exists(m, "public.part1")
    assert not rel_exists(m, "public.part2") and not rel_exists(m, "public.part3")
    assert versions(m) == ["k0"]
    st = ok(m, "status")
    assert st["state"] == "dirty" and st["dirty"] == ["k1"], st
    h = history(m)
    assert h[-1]["revision"] == "k1" and h[-1]["dirty"] is True and h[-1]["success"] is False
    assert len([r for r in h if r["revision"] == "k1"]) == 1, h
    # further runs refuse until resolved
    err(m, "upgrade", {}, kind="dirty")
    ok(m, "resolve", {"revision": "k1", "state": "unapplied"})
    q(m, "DROP TABLE public.part1")
    write_rev(m, "k1_big.sql", "k1", down="k0", up="""
        CREATE TABLE public.part1 (id int);
        COMMIT;
        BEGIN;
        CREATE TABLE public.part2 (id int);
        COMMIT;
        CREATE TABLE public.part3 (id int);
        """, down_sql="DROP TABLE public.part3; DROP TABLE public.part2; "
                      "DROP TABLE public.part1;")
    ok(m, "upgrade", {})
    assert versions(m) == ["k1"] and rel_exists(m, "public.part3")


def test_failure_in_the_first_transaction_is_clean(migd_factory):
    m = connected(migd_factory())
    f = write_rev(m, "k1_big.sql", "k1", up="""
        CREATE TABLE public.part1 (id int);
        SELECT 1 / 0;
        COMMIT AND CHAIN;
        CREATE TABLE public.part2 (id int);
        """)
    e = err(m, "upgrade", {}, code=E_SQL, kind="sql_error")
    assert e["message"].startswith("%s:%d:" % (f, line_of(f, "1 / 0"))), e
    assert not rel_exists(m, "public.part1")
    assert ok(m, "status")["dirty"] == []
    h = history(m)
    assert [(r["revision"], r["success"], r["dirty"]) for r in h] == [("k1", False, False)], h


def test_deferred_constraint_failing_at_a_commit(migd_factory):
    m = connected(migd_factory())
    f = write_rev(m, "k1_fk.sql", "k1", up="""
        CREATE TABLE public.parent (id int PRIMARY KEY);
        CREATE TABLE public.child (pid int REFERENCES public.parent
            DEFERRABLE INITIALLY DEFERRED);
        COMMIT;
        INSERT INTO public.child VALUES (42);
        COMMIT;
        CREATE TABLE public.after (id int);
        """)
    e = err(m, "upgrade", {}, code=E_SQL, kind="dirty")
    assert "COMMIT failed" in e["message"], e
    assert e["message"].startswith("%s:%d:" % (f, line_of(f, "COMMIT", 2))), e
    assert rel_exists(m, "public.child") and not rel_exists(m, "public.after")
    assert q(m, "SELECT count(*) FROM public.child") == "0"


def test_bare_migration_with_its_own_transactions(migd_factory):
    m = connected(migd_factory())
    write_rev(m, "n1_bare.sql", "n1", transaction="none", up="""
        BEGIN;
        CREATE TABLE public.n1 (id int);
        COMMIT AND CHAIN;
        INSERT INTO public.n1 VALUES (1);
        COMMIT;
        CREATE INDEX CONCURRENTLY n1_id ON public.n1 (id);
        """, down_sql="DROP TABLE public.n1;")
    ok(m, "upgrade", {})
    assert versions(m) == ["n1"]
    assert q(m, "SELECT count(*) FROM public.n1") == "1"
    assert rel_exists(m, "public.n1_id")


# Valid since PostgreSQL 16 (a subquery in FROM without an alias): libpg_query
# 15 refuses it.
NEWER = "SELECT * FROM (SELECT 1);"


def test_newer_sql_in_a_down_section_loads_and_is_judged_when_run(migd_factory):
    m = connected(migd_factory())
    f = write_rev(m, "v1_new.sql", "v1", up="CREATE TABLE public.v1 (id int);",
                  down_sql="DROP TABLE public.v1;\n" + NEWER)
    write_rev(m, "v2_next.sql", "v2", down="v1", up="CREATE TABLE public.v2 (id int);",
              down_sql="DROP TABLE public.v2;")
    ok(m, "reload")     # answers once the files are read: status said loading before
    st = ok(m, "status")
    assert st["migrations"]["valid"] is True, st
    ok(m, "upgrade", {})
    assert versions(m) == ["v2"]
    ok(m, "downgrade", {"target": "v1"})
    # this server is PostgreSQL 15: the down section of v1 is a syntax error
    plan = ok(m, "plan", {"target": "base"})
    assert plan["runnable"] is False
    probs = [p for p in plan["problems"] if p["kind"] == "invalid_sql"]
    assert probs and probs[0]["message"].startswith(
        "%s:%d:" % (f, line_of(f, "SELECT * FROM"))), plan["problems"]
    assert "unanalyzed" in plan["steps"][0], plan["steps"][0]
    p = m.migctl("plan", "base")
    assert "parser cannot read this section" in p.stdout, p.stdout
    assert "cannot run:" in p.stdout and f in p.stdout, p.stdout
    e = err(m, "downgrade", {"target": "base"}, kind="invalid_sql")
    assert e["message"].startswith("%s:%d:" % (f, line_of(f, "SELECT * FROM"))), e
    assert versions(m) == ["v1"] and rel_exists(m, "public.v1")


def test_newer_sql_in_an_up_section_is_an_error_against_this_server(migd_factory):
    m = connected(migd_factory())
    f = write_rev(m, "v1_new.sql", "v1", up="CREATE TABLE public.v1 (id int);\n" + NEWER)
    e = err(m, "upgrade", {}, kind="invalid_migrations")
    assert any(x.startswith("%s:%d:" % (f, line_of(f, "SELECT * FROM")))
               for x in e["data"]["errors"]), e
    st = ok(m, "status")
    assert st["migrations"]["valid"] is False
    assert not rel_exists(m, "public.v1")


def test_offline_check_says_what_it_assumed(tmp_path):
    d = tmp_path / "migrations"
    d.mkdir()
    (d / "v1_new.sql").write_text("-- revision: v1\n-- down_revision: none\n\n"
                                  "-- migrate:up\n" + NEWER + "\n")
    conf = tmp_path / "migd.conf"
    conf.write_text("[database]\nconninfo = dbname=nowhere\n[migrations]\n"
                    "directory = %s\n[control]\nsocket = %s\n"
                    % (d, tmp_path / "s.sock"))
    p = migdtest.run_migd(["-n", "-c", str(conf)])
    assert p.returncode == 0, p.stdout + p.stderr
    assert "%s:5:" % os.path.join(str(d), "v1_new.sql") in p.stderr, p.stderr
    assert "assumes newer SQL" in p.stderr, p.stderr
