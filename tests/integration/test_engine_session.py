"""Issue 10 against a real PostgreSQL: every migration starts from the same
session state, migd's own writes run as migd, and the checks made before a
step commits (migd's lock still held, managed schemas still there)."""

import pytest

from engine_helpers import (connected, E_SQL, X_FAILED, call, err, history, line_of,
                            ok, q, rel_exists, schema_exists, versions, write_rev)


# A migration leaves every kind of session state behind; the next one
# records what it sees.  Plain psql in a new session would see defaults.
LEAKY = """
SET search_path = app, public;
SET timezone = 'Pacific/Chatham';
SET statement_timeout = '1h';
SET application_name = 'leaky';
SET check_function_bodies = off;
CREATE TEMP TABLE scratch (id int);
PREPARE get_one AS SELECT 1;
DECLARE c CURSOR WITH HOLD FOR SELECT 1;
LISTEN somewhere;
SELECT pg_advisory_lock(4242);
SELECT pg_advisory_lock_shared(7, 8);
CREATE TABLE unqualified_in_app (id int);
"""

SEES = """
CREATE TABLE unqualified_next (id int);
CREATE TABLE public.seen AS
SELECT current_setting('search_path') AS search_path,
       current_setting('TimeZone') AS tz,
       current_setting('application_name') AS app,
       current_setting('check_function_bodies') AS cfb,
       current_user::text AS usr,
       (SELECT count(*) FROM pg_prepared_statements) AS prepared,
       (SELECT count(*) FROM pg_cursors WHERE name <> '') AS cursors,
       (SELECT count(*) FROM pg_listening_channels()) AS listening,
       (SELECT count(*) FROM pg_locks
         WHERE locktype = 'advisory' AND pid = pg_backend_pid()
           AND NOT (objsubid = 1 AND classid = 0 AND objid = 0)
           AND (objid IN (4242, 8))) AS forgotten_locks;
PREPARE get_one AS SELECT 1;
CREATE TEMP TABLE scratch (id int);
"""


def _leaky_set(m):
    write_rev(m, "s1_schema.sql", "s1", up="CREATE SCHEMA app;")
    write_rev(m, "s2_leaky.sql", "s2", down="s1", up=LEAKY,
              down_sql="DROP TABLE app.unqualified_in_app;")
    write_rev(m, "s3_sees.sql", "s3", down="s2", up=SEES,
              down_sql="DROP TABLE public.seen; DROP TABLE public.unqualified_next;")


def _upgrade(m, split):
    """upgrade head, as one request or as one upgrade +1 per revision."""
    if not split:
        ok(m, "upgrade", {})
        return
    while ok(m, "status")["pending"]:
        ok(m, "upgrade", {"target": "+1"})


@pytest.mark.parametrize("split", [False, True], ids=["one_request", "step_by_step"])
def test_nothing_a_migration_sets_reaches_the_next(migd_factory, split):
    m = connected(migd_factory())
    _leaky_set(m)
    _upgrade(m, split)
    assert versions(m) == ["s3"]
    assert rel_exists(m, "app.unqualified_in_app")
    # the unqualified CREATE of the next migration lands where it would in
    # a fresh session: public, not app
    assert rel_exists(m, "public.unqualified_next")
    assert not rel_exists(m, "app.unqualified_next")
    default_tz = q(m, "SHOW TimeZone")
    row = q(m, "SELECT search_path, tz, app, cfb, usr, prepared, cursors, listening, "
               "forgotten_locks FROM public.seen").split("|")
    assert row[0] == '"$user", public', row
    assert row[1] == default_tz, row
    assert row[2] != "leaky", row
    assert row[3] == "on", row
    assert row[5:] == ["0", "0", "0", "0"], row
    # the forgotten advisory locks are gone from migd's connections too
    assert q(m, "SELECT pg_try_advisory_lock(4242)") == "t"
    # and a status on the pooled connection is unaffected
    assert ok(m, "status")["state"] == "up_to_date"


def test_split_and_whole_runs_give_the_same_schema(migd_factory, make_db, pg):
    dumps = []
    for split in (False, True):
        m = connected(migd_factory(db=make_db(pg)))
        _leaky_set(m)
        _upgrade(m, split)
        dumps.append(q(m, "SELECT string_agg(table_schema || '.' || table_name, ',' "
                          "ORDER BY 1) FROM information_schema.tables WHERE table_schema "
                          "IN ('public', 'app') AND table_name NOT LIKE 'migd%' AND "
                          "table_name <> 'alembic_version'"))
    assert dumps[0] == dumps[1], dumps


def test_set_role_left_behind_does_not_reach_bookkeeping(migd_factory):
    m = connected(migd_factory())
    q(m, "DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = "
         "'migd_t_owner') THEN CREATE ROLE migd_t_owner; END IF; END$$")
    q(m, "GRANT CREATE ON SCHEMA public TO migd_t_owner")
    write_rev(m, "o1_role.sql", "o1", up="""
        SET ROLE migd_t_owner;
        CREATE TABLE public.owned (id int);
        SET search_path = pg_catalog;
        """, down_sql="DROP TABLE public.owned;")
    write_rev(m, "o2_after.sql", "o2", down="o1", up="CREATE TABLE after_role (id int);",
              down_sql="DROP TABLE after_role;")
    ok(m, "upgrade", {})
    assert versions(m) == ["o2"]
    assert q(m, "SELECT tableowner FROM pg_tables WHERE tablename = 'owned'") == "migd_t_owner"
    assert q(m, "SELECT tableowner FROM pg_tables WHERE tablename = 'after_role'") != \
        "migd_t_owner"
    assert rel_exists(m, "public.after_role")
    h = history(m)
    assert [(r["revision"], r["success"]) for r in h] == [("o1", True), ("o2", True)], h
    ok(m, "downgrade", {"target": "base"})
    assert versions(m) == []


def test_lock_released_by_a_migration_fails_the_step(migd_factory):
    m = connected(migd_factory())
    write_rev(m, "l1_ok.sql", "l1", up="CREATE TABLE public.l1 (id int);")
    f = write_rev(m, "l2_unlock.sql", "l2", down="l1", up="""
        CREATE TABLE public.l2 (id int);
        SELECT pg_advisory_unlock_all();
        """)
    notes, r = call(m, "upgrade", {})
    e = r["error"]
    assert e["code"] == E_SQL and e["data"]["kind"] == "sql_error", e
    assert e["message"].startswith(f + ": revision l2: "), e
    assert "lock was released" in e["message"], e
    assert e["data"]["sqlstate"] == "55000"
    assert any(n["params"].get("event") == "failed" and n["params"]["revision"] == "l2"
               for n in notes), notes
    # rolled back: l1 stays, l2 did not happen, and the failure is recorded
    assert versions(m) == ["l1"]
    assert not rel_exists(m, "public.l2")
    h = history(m)
    assert h[-1]["revision"] == "l2" and h[-1]["success"] is False
    assert h[-1]["sqlstate"] == "55000"


def test_managed_schema_dropped_at_run_time_rolls_back(migd_factory):
    m = connected(migd_factory())
    write_rev(m, "d1_ok.sql", "d1", up="CREATE TABLE cars.cars (id int);")
    f = write_rev(m, "d2_sneaky.sql", "d2", down="d1", up="""
        CREATE TABLE public.d2 (id int);
        DO $$BEGIN EXECUTE 'DROP SCHEMA ' || 'cars' || ' CASCADE'; END$$;
        """)
    e = err(m, "upgrade", {}, code=E_SQL, kind="sql_error")
    assert "schema cars is managed by migd" in e["message"], e
    assert e["data"]["sqlstate"] == "3F000", e
    assert e["message"].startswith(f + ":"), e
    assert schema_exists(m, "cars") and rel_exists(m, "cars.cars")
    assert not rel_exists(m, "public.d2")
    assert versions(m) == ["d1"]
    assert history(m)[-1]["success"] is False


def test_schema_created_by_migd_is_managed(migd_factory):
    m = connected(migd_factory())
    write_rev(m, "c1_extra.sql", "c1", up="CREATE TABLE extra.t (id int);",
              down_sql="DROP TABLE extra.t;")
    ok(m, "upgrade", {})
    assert schema_exists(m, "extra")
    f = write_rev(m, "c2_drop.sql", "c2", down="c1", up="DROP SCHEMA extra CASCADE;")
    plan = ok(m, "plan", {})
    assert plan["runnable"] is False
    kinds = [p["kind"] for p in plan["problems"]]
    assert "managed_schema" in kinds, plan["problems"]
    e = err(m, "upgrade", {}, kind="managed_schema")
    assert e["message"].startswith("%s:%d:" % (f, line_of(f, "DROP SCHEMA"))), e
    assert "migd created that schema" in e["message"], e
    assert schema_exists(m, "extra") and versions(m) == ["c1"]
    # downgrades never drop it either
    ok(m, "downgrade", {"target": "base"})
    assert schema_exists(m, "extra")


def test_managed_schemas_survive_downgrade_base(migd_factory):
    m = connected(migd_factory())
    write_rev(m, "w1_schemas.sql", "w1", up="""
        CREATE SCHEMA IF NOT EXISTS cars;
        CREATE SCHEMA IF NOT EXISTS participants;
        CREATE SCHEMA IF NOT EXISTS work_shop;
        """, down_sql="SELECT 1;")
    write_rev(m, "w2_tables.sql", "w2", down="w1", up="""
        CREATE TABLE cars.cars (id int);
        CREATE TABLE participants.people (id int);
        """, down_sql="DROP TABLE participants.people; DROP TABLE cars.cars;")
    ok(m, "upgrade", {})
    ok(m, "downgrade", {"target": "base"})
    for s in ("cars", "participants", "work_shop"):
        assert schema_exists(m, s), s
    assert versions(m) == []


def test_own_schema_goes_up_down_and_up_again(migd_factory):
    m = connected(migd_factory())
    write_rev(m, "u1_utils.sql", "u1", up="""
        CREATE SCHEMA utils;
        CREATE FUNCTION utils.slug(t text) RETURNS text LANGUAGE sql IMMUTABLE
            AS $$ SELECT lower(regexp_replace(t, '[^a-zA-Z0-9]+', '-', 'g')) $$;
        CREATE TABLE utils.settings (k text PRIMARY KEY, v text);
        """, down_sql="DROP SCHEMA utils CASCADE;")
    write_rev(m, "u2_use.sql", "u2", down="u1", up="""
        CREATE TABLE public.posts (title text, slug text GENERATED ALWAYS AS
            (utils.slug(title)) STORED);
        """, down_sql="DROP TABLE public.posts;")
    ok(m, "upgrade", {})
    assert schema_exists(m, "utils")
    ok(m, "downgrade", {"target": "base"})
    assert not schema_exists(m, "utils")
    ok(m, "upgrade", {})
    assert schema_exists(m, "utils") and rel_exists(m, "public.posts")
    assert versions(m) == ["u2"]
    # utils was the migration's own: migd never recorded creating it
    assert all(not r["schemas_created"] or "utils" not in r["schemas_created"]
               for r in history(m))


def test_migctl_shows_the_failure_of_bookkeeping(migd_factory):
    m = connected(migd_factory())
    f = write_rev(m, "b1_unlock.sql", "b1", up="SELECT pg_advisory_unlock_all();")
    p = m.migctl("upgrade")
    assert p.returncode == X_FAILED, p.stdout + p.stderr
    assert f in p.stderr and "b1" in (p.stdout + p.stderr), p.stdout + p.stderr
    assert "FAILED" in (p.stdout + p.stderr), p.stdout + p.stderr
