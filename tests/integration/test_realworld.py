"""Real projects' migrations run unchanged (issue 10, item 6).

tests/fixtures/realworld/ holds one migrations directory per real-world
style (diesel, golang-migrate, Sqitch for psql, a Rails structure.sql with
session habits, big-table changes cut with COMMIT AND CHAIN, a schema of its
own). For each, migd must give the schema that plain psql gives when every
up section is run the way a user runs it, one `psql -X -v ON_ERROR_STOP=1 -f
FILE` session per migration; one `upgrade head` must give the same schema
as N `upgrade +1`; `downgrade base` must give back the empty schema and a
second `upgrade head` the same schema again. Schemas are compared as
`pg_dump --schema-only` text (owners kept), without migd's own tables.

Then regression tests for what such files do to a session: a search_path,
time zone, role, prepared statement, temp table or advisory lock left behind
by one migration must reach neither the next migration nor migd's own
version-table and history writes.
"""

import os
import re

import pytest

import migdtest
import schema_helpers
from schema_helpers import (FIXTURES, REALWORLD, assert_same_dump, copy_fixture,
                            migctl_ok, psql_ok)
from engine_helpers import (X_OK, connected, history, line_of, migctl_json, ok, q,
                            rel_exists, schema_exists, versions, write_rev)


# migd's own tables (default names), never part of the compared schema
MIGD_TABLES = ("public.alembic_version", "public.migd_history",
               "public.migd_history_id_seq")

# No configured schemas: every schema in a dump comes from the migrations, so a
# database after `downgrade base` must dump exactly like a fresh one.
NO_SCHEMAS = {("migrations", "schemas"): None}



# ---- the fixture files ------------------------------------------------------

class Rev:
    def __init__(self, path, revision, down, up, down_sql):
        self.path = path
        self.revision = revision
        self.down = down
        self.up = up
        self.down_sql = down_sql


HEADER_RE = re.compile(r"^--[ \t]*([A-Za-z_]+)[ \t]*:(.*)$")


def parse_rev(path):
    """A revision file as migd reads it (the parts these tests need): the
    headers before `-- migrate:up`, the up and down sections."""
    with open(path, newline="") as f:
        lines = f.read().splitlines(True)
    headers = {}
    state = "header"
    up, down = [], []
    for line in lines:
        bare = line.rstrip("\r\n").rstrip(" \t")
        if bare == "-- migrate:up":
            state = "up"
            continue
        if bare == "-- migrate:down":
            state = "down"
            continue
        if state == "header":
            mt = HEADER_RE.match(bare)
            if mt:
                headers[mt.group(1)] = mt.group(2).strip()
        elif state == "up":
            up.append(line)
        else:
            down.append(line)
    assert state == "down", "%s: no '-- migrate:down' section" % path
    name = os.path.basename(path)
    revision = headers.get("revision") or name[:-len(".sql")].split("_", 1)[0]
    parent = headers["down_revision"]
    return Rev(path, revision, None if parent == "none" else parent,
               "".join(up), "".join(down))


def load_fixture(name):
    """The fixture's revisions in the order of their chain (root first)."""
    d = os.path.join(REALWORLD, name)
    revs = [parse_rev(os.path.join(d, f)) for f in sorted(os.listdir(d))
            if f.endswith(".sql")]
    children = {}
    for r in revs:
        assert "," not in (r.down or ""), "%s: the fixtures are linear" % r.path
        children.setdefault(r.down, []).append(r)
    order = []
    parent = None
    while parent in children:
        kids = children[parent]
        assert len(kids) == 1, "%s: a branch at %s" % (name, parent)
        order.append(kids[0])
        parent = kids[0].revision
    assert len(order) == len(revs), "%s: not one chain from a root" % name
    assert 4 <= len(order) <= 10, name
    return order


def fixture_migd(migd_factory, name=None, db=None):
    m = connected(migd_factory(db=db, overrides=NO_SCHEMAS))
    if name is not None:
        copy_fixture(m, name)
    return m


# ---- psql and pg_dump -------------------------------------------------------

def psql_run(pg, db, sql, what):
    """Run sql as a user does: a file, one fresh psql session, stop at the first
    error, no implicit transaction."""
    psql_ok(pg, db, sql, what)


def psql_up(pg, db, revs):
    for r in revs:
        psql_run(pg, db, r.up, "the up section of %s" % r.path)


def psql_down(pg, db, revs):
    for r in reversed(revs):
        psql_run(pg, db, r.down_sql, "the down section of %s" % r.path)


def dump(pg, db):
    """pg_dump --schema-only of db without migd's tables, normalised."""
    return schema_helpers.dump(pg, db, MIGD_TABLES)


_psql_dumps = {}


def psql_reference(pg, make_db, name):
    """The schema that plain psql makes of the fixture (computed once)."""
    if name not in _psql_dumps:
        db = make_db(pg)
        psql_up(pg, db, load_fixture(name))
        _psql_dumps[name] = dump(pg, db)
    return _psql_dumps[name]


def empty_schema(pg, make_db):
    return dump(pg, make_db(pg))


# ---- migd runs --------------------------------------------------------------

def upgrade_by_steps(m, n):
    """`migctl upgrade +1` until the status says up_to_date; the number of steps."""
    steps = 0
    while m.status()["state"] != "up_to_date":
        assert steps < n, "still not up to date after %d single steps: %r" % (
            steps, m.status())
        migctl_ok(m, "upgrade", "+1")
        steps += 1
    return steps


def assert_up_history(m, revs):
    """One successful up row per revision, in chain order, nothing failed."""
    h = history(m)
    assert [(x["revision"], x["direction"], x["success"], x["dirty"]) for x in h] == \
        [(r.revision, "up", True, False) for r in revs], h


def assert_up_to_date(m, revs):
    st = m.status()
    assert st["state"] == "up_to_date", st
    assert st["pending"] == 0 and st["dirty"] == [], st
    assert [c["revision"] for c in st["current"]] == [revs[-1].revision], st
    rc, data, p = migctl_json(m, "status")
    assert rc == X_OK and data is not None, p.stdout + p.stderr
    assert data["state"] == "up_to_date", data
    assert versions(m) == [revs[-1].revision]


# ---- the fixtures themselves -------------------------------------------------

@pytest.mark.parametrize("name", FIXTURES)
def test_fixture_with_psql_alone(pg, make_db, name):
    """The fixture is right: every up section in order, each in its own psql
    session, then every down section in reverse order, leave the empty schema."""
    revs = load_fixture(name)
    empty = empty_schema(pg, make_db)
    db = make_db(pg)
    psql_up(pg, db, revs)
    full = dump(pg, db)
    assert full != empty
    _psql_dumps.setdefault(name, full)
    psql_down(pg, db, revs)
    assert_same_dump(empty, dump(pg, db), "%s: psql up then down" % name)


# ---- migd against psql, and against itself ----------------------------------

@pytest.mark.parametrize("name", FIXTURES)
def test_upgrade_downgrade_upgrade(pg, make_db, migd_factory, name):
    """upgrade head, downgrade base (back to the empty schema), upgrade head
    (the same schema as the first time); history and status along the way."""
    revs = load_fixture(name)
    empty = empty_schema(pg, make_db)
    m = fixture_migd(migd_factory, name)

    migctl_ok(m, "upgrade", "head")
    first = dump(pg, m.db)
    assert first != empty
    assert_up_history(m, revs)
    assert_up_to_date(m, revs)

    migctl_ok(m, "downgrade", "base")
    assert versions(m) == []
    downs = [(x["revision"], x["success"]) for x in history(m) if x["direction"] == "down"]
    assert downs == [(r.revision, True) for r in reversed(revs)], downs
    assert_same_dump(empty, dump(pg, m.db), "%s: after downgrade base" % name)
    assert m.status()["state"] == "pending"

    migctl_ok(m, "upgrade", "head")
    assert_same_dump(first, dump(pg, m.db), "%s: second upgrade head" % name)
    assert_up_to_date(m, revs)


@pytest.mark.parametrize("name", FIXTURES)
def test_migd_matches_psql(pg, make_db, migd_factory, name):
    """migd's upgrade head gives the schema that psql gives, file by file."""
    want = psql_reference(pg, make_db, name)
    m = fixture_migd(migd_factory, name)
    migctl_ok(m, "upgrade", "head")
    assert_same_dump(want, dump(pg, m.db), "%s: migd upgrade head against psql" % name)


@pytest.mark.parametrize("name", FIXTURES)
def test_head_equals_single_steps(pg, make_db, migd_factory, name):
    """One upgrade head and N upgrade +1 give byte-identical schemas."""
    revs = load_fixture(name)
    a = fixture_migd(migd_factory, name)
    migctl_ok(a, "upgrade", "head")
    b = fixture_migd(migd_factory, name)
    assert upgrade_by_steps(b, len(revs)) == len(revs)
    assert_up_history(b, revs)
    assert_up_to_date(b, revs)
    assert_same_dump(dump(pg, a.db), dump(pg, b.db),
                     "%s: N x upgrade +1 against one upgrade head" % name)


# ---- regression tests ---------------------------------------------------------

def run_mode(m, mode, n):
    if mode == "head":
        migctl_ok(m, "upgrade", "head")
    else:
        assert upgrade_by_steps(m, n) == n


@pytest.mark.parametrize("mode", ["head", "+1"])
def test_search_path_does_not_reach_next_migration(migd_factory, mode):
    """SET search_path = app, public at the end of migration k; migration k+1's
    unqualified CREATE TABLE lands in public."""
    m = fixture_migd(migd_factory)
    write_rev(m, "0001_app.sql", "0001", up="""
        CREATE TABLE app.settings (key text PRIMARY KEY, value text);
        SET search_path = app, public;
        CREATE TABLE app_local (id int);
        """, down_sql="DROP TABLE app.app_local; DROP TABLE app.settings;")
    write_rev(m, "0002_x.sql", "0002", down="0001", up="""
        CREATE TABLE x (id int);
        """, down_sql="DROP TABLE public.x;")
    ok(m, "reload")
    run_mode(m, mode, 2)
    assert rel_exists(m, "app.app_local")
    assert rel_exists(m, "public.x"), "migration 0002's table is not in public"
    assert not rel_exists(m, "app.x"), "the search_path of 0001 reached 0002"
    assert versions(m) == ["0002"]


@pytest.mark.parametrize("mode", ["head", "+1"])
def test_sqitch_unqualified_names_land_in_public(migd_factory, mode):
    """The same with the Sqitch-style fixture: 03-insert_user ends with
    search_path = app, public; 04-flips creates unqualified objects."""
    revs = load_fixture("sqitch_psql")
    m = fixture_migd(migd_factory, "sqitch_psql")
    run_mode(m, mode, len(revs))
    assert rel_exists(m, "app.users")
    assert rel_exists(m, "public.flips") and not rel_exists(m, "app.flips")
    assert rel_exists(m, "public.recent_flips")
    assert q(m, "SELECT n.nspname FROM pg_type t JOIN pg_namespace n "
                "ON n.oid = t.typnamespace WHERE t.typname = 'flip_mood'") == "public"
    assert q(m, "SELECT count(*) FROM app.flip_log") == "2"


def test_set_role_left_in_place(migd_factory):
    """A migration that ends with SET ROLE app_owner (no rights on migd's tables)
    succeeds; its history row is written, as migd; the next migration runs as
    migd's own user again."""
    m = fixture_migd(migd_factory)
    write_rev(m, "0001_owned.sql", "0001", message="owned by app_owner", up="""
        DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname='app_owner') THEN CREATE ROLE app_owner; END IF; END$$;
        GRANT CREATE ON SCHEMA public TO app_owner;
        SET ROLE app_owner;
        CREATE TABLE owned_by_app (id bigserial PRIMARY KEY);
        """, down_sql="""
        DROP TABLE owned_by_app;
        REVOKE CREATE ON SCHEMA public FROM app_owner;
        """)
    write_rev(m, "0002_after.sql", "0002", down="0001", up="""
        CREATE TABLE after_role (id int);
        """, down_sql="DROP TABLE after_role;")
    ok(m, "reload")

    migctl_ok(m, "upgrade", "head")
    assert versions(m) == ["0002"]
    h = history(m)
    assert [(x["revision"], x["direction"], x["success"]) for x in h] == \
        [("0001", "up", True), ("0002", "up", True)], h
    assert q(m, "SELECT tableowner FROM pg_tables WHERE tablename = 'owned_by_app'") \
        == "app_owner"
    assert q(m, "SELECT tableowner FROM pg_tables WHERE tablename = 'after_role'") \
        == "postgres", "migration 0002 ran as the role 0001 left behind"
    # migd's tables are still migd's, and app_owner got no rights on them
    assert q(m, "SELECT string_agg(tableowner, ',') FROM pg_tables WHERE schemaname = "
                "'public' AND tablename IN ('alembic_version', 'migd_history')") \
        == "postgres,postgres"
    assert q(m, "SELECT has_table_privilege('app_owner', 'public.alembic_version', "
                "'INSERT')") == "f"

    migctl_ok(m, "downgrade", "base")
    assert versions(m) == []
    assert not rel_exists(m, "public.owned_by_app")


@pytest.mark.parametrize("mode", ["head", "+1"])
def test_session_state_does_not_reach_next_migration(pg, migd_factory, mode):
    """A time zone, a GUC, a prepared statement, a temp table and a session
    advisory lock left by one migration: the next one starts clean, and the lock
    is not held once the run is over."""
    m = fixture_migd(migd_factory)
    default_tz = q(m, "SHOW timezone")
    write_rev(m, "0001_leave.sql", "0001", up="""
        SET TIME ZONE 'America/Chicago';
        SET statement_timeout = 0;
        SET check_function_bodies = false;
        SET application_name = 'leaky migration';
        PREPARE backfill_row (int) AS SELECT $1;
        CREATE TEMP TABLE backfill_batch AS SELECT 1 AS id;
        SELECT pg_advisory_lock(12345);
        CREATE TABLE t1 (id int);
        """, down_sql="DROP TABLE t1;")
    write_rev(m, "0002_again.sql", "0002", down="0001", up="""
        PREPARE backfill_row (int) AS SELECT $1;
        CREATE TEMP TABLE backfill_batch AS SELECT 1 AS id;
        DO $$
        BEGIN
            IF current_setting('TimeZone') <> '%s' THEN
                RAISE EXCEPTION 'TimeZone is %%', current_setting('TimeZone');
            END IF;
            IF current_setting('check_function_bodies') <> 'on' THEN
                RAISE EXCEPTION 'check_function_bodies is off';
            END IF;
            IF current_setting('application_name') = 'leaky migration' THEN
                RAISE EXCEPTION 'application_name leaked';
            END IF;
            IF EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory'
                       AND objid = 12345 AND pid = pg_backend_pid()) THEN
                RAISE EXCEPTION 'advisory lock 12345 is held by this session';
            END IF;
        END
        $$;
        CREATE TABLE t2 (at timestamptz DEFAULT '2024-01-01 00:00:00');
        """ % default_tz, down_sql="DROP TABLE t2;")
    ok(m, "reload")
    run_mode(m, mode, 2)
    assert versions(m) == ["0002"]
    # the default was read in the server's time zone, not in Chicago's
    assert q(m, "SELECT column_default FROM information_schema.columns WHERE "
                "table_name = 't2' AND column_name = 'at'") == \
        q(m, "SELECT quote_literal('2024-01-01 00:00:00'::timestamptz::text) "
             "|| '::timestamp with time zone'")
    migdtest.wait_for(
        lambda: q(m, "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = "
                     "l.database WHERE l.locktype = 'advisory' AND l.objid = 12345 AND "
                     "d.datname = current_database()") == "0",
        5.0, what="advisory lock 12345 released after the run")


def test_own_schema_up_down_up(migd_factory):
    """A migration that creates schema utils with a plain CREATE SCHEMA may drop
    it in its down section; up, down and up again."""
    revs = load_fixture("own_schema")
    m = fixture_migd(migd_factory, "own_schema")
    plan = ok(m, "plan", {"target": "head"})
    assert plan["runnable"] is True, plan
    assert "utils" not in plan["schemas_to_create"], plan

    migctl_ok(m, "upgrade", "head")
    assert schema_exists(m, "utils")
    assert q(m, "SELECT slug FROM public.articles ORDER BY id") == \
        "hello-world\nschemas-and-why-we-keep-helpers-apart"

    migctl_ok(m, "downgrade", "base")
    assert not schema_exists(m, "utils"), "the down section's DROP SCHEMA did not run"
    assert not rel_exists(m, "public.articles")
    assert versions(m) == []

    migctl_ok(m, "upgrade", "head")
    assert schema_exists(m, "utils")
    assert q(m, "SELECT utils.slugify('Up, Down & Up Again')") == "up-down-up-again"
    assert_up_to_date(m, revs)
    ups = [x["revision"] for x in history(m) if x["direction"] == "up" and x["success"]]
    assert ups == [r.revision for r in revs] * 2


# ---- a pg_dump of an existing database as the baseline migration ---------------

BASELINE_SOURCE = r"""
CREATE SCHEMA app;
CREATE TYPE app.status AS ENUM ('new', 'done');
CREATE TABLE app.tasks (id serial PRIMARY KEY, title text NOT NULL,
    st app.status DEFAULT 'new', tags text[] DEFAULT '{}');
CREATE TABLE app.notes (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task_id int REFERENCES app.tasks (id) ON DELETE CASCADE, body text,
    len int GENERATED ALWAYS AS (length(body)) STORED);
CREATE INDEX notes_task ON app.notes (task_id);
CREATE VIEW app.open_tasks AS SELECT * FROM app.tasks WHERE st = 'new';
CREATE FUNCTION app.trim_title() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.title := trim(NEW.title); RETURN NEW; END $$;
CREATE TRIGGER tasks_trim BEFORE INSERT OR UPDATE ON app.tasks
    FOR EACH ROW EXECUTE FUNCTION app.trim_title();
CREATE TABLE app.events (at date NOT NULL, what text) PARTITION BY RANGE (at);
CREATE TABLE app.events_2024 PARTITION OF app.events
    FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
COMMENT ON TABLE app.tasks IS 'what; to do';
"""


def test_pg_dump_baseline_as_first_migration(pg, make_db, migd_factory):
    """Teams start from `pg_dump --schema-only` of the database they have. Its
    SET and set_config lines run as they are; the \\restrict and \\unrestrict
    lines today's pg_dump writes (15.14 and later) are psql's: refused at
    load, at the first one's line, saying they are pg_dump's and to delete
    both, with nothing run; without them the baseline gives the very schema
    it was dumped from, and the next migration starts from a clean session."""
    src = make_db(pg)
    psql_run(pg, src, BASELINE_SOURCE, "the source schema")
    p = schema_helpers.subprocess.run(
        [schema_helpers.pg_tool("pg_dump"), "--schema-only", "-h", pg.sockdir,
         "-p", str(pg.port), "-U", "postgres", "-d", src],
        env=migdtest.clean_env(), capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    baseline = p.stdout
    assert "SELECT pg_catalog.set_config('search_path', '', false);" in baseline
    m = fixture_migd(migd_factory)
    path = write_rev(m, "0001_baseline.sql", "0001", up=baseline,
                     down_sql="DROP SCHEMA app CASCADE;")
    write_rev(m, "0002_more.sql", "0002", down="0001",
              up="CREATE TABLE more (id int);", down_sql="DROP TABLE more;")
    lines = [ln.rstrip("\n") for ln in baseline.splitlines()]
    restrict = [ln for ln in lines if re.match(r"\\(un)?restrict ", ln)]
    if restrict:
        r = m.migctl("upgrade")
        assert r.returncode != X_OK, r.stdout + r.stderr
        want = ("%s:%d: \\restrict is a psql meta-command: migd sends SQL to "
                "the server, not psql scripts; pg_dump writes \\restrict KEY at "
                "the top of a dump and \\unrestrict KEY at its end (since "
                "PostgreSQL 17.6, 16.10, 15.14, 14.19 and 13.22), to guard "
                "psql's restore: delete both lines"
                % (path, line_of(path, "\\restrict ")))
        assert want in r.stderr, r.stderr
        assert versions(m) in (None, []) and not schema_exists(m, "app")
        baseline = "".join(ln + "\n" for ln in lines if ln not in restrict)
        write_rev(m, "0001_baseline.sql", "0001", up=baseline,
                  down_sql="DROP SCHEMA app CASCADE;")
    migctl_ok(m, "upgrade", "0001")
    assert_same_dump(dump(pg, src), dump(pg, m.db), "pg_dump baseline")
    # the dump's empty search_path stayed in its migration
    migctl_ok(m, "upgrade")
    assert rel_exists(m, "public.more")
    migctl_ok(m, "downgrade", "base")
    assert not schema_exists(m, "app") and not rel_exists(m, "public.more")
