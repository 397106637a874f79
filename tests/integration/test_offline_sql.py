"""SQL for review, offline (issue "Runs as teams expect", item 4).

`migctl upgrade --sql FROM:TO` and `downgrade --sql FROM:TO` print, from the
files alone, the SQL that a run of migd would send. Applied with `psql -X -v
ON_ERROR_STOP=1 -f` to a fresh database, it must give the same schema
(`pg_dump --schema-only`, without migd's history table) and the same
version-table rows as a real migd running `migctl upgrade` / `downgrade` on
another fresh database: for the car-workshop example (a branch, a merge, a
CREATE INDEX CONCURRENTLY step) and for every real-world fixture (the file's
own BEGIN/COMMIT and COMMIT AND CHAIN). Then the errors, and the guard that
stops the script on a database that is not at FROM.
"""

import json
import os
import re
import subprocess

import pytest

import migdtest
from migdtest import MIGCTL_BIN, clean_env
from cli_helpers import write_rev
from engine_helpers import (X_FAILED, X_OK, X_USAGE, connected, copy_workshop, ok)
import schema_helpers
from schema_helpers import (FIXTURES, REALWORLD, assert_same_dump, copy_fixture,
                            migctl_ok, psql_file, psql_ok)

# migd's own record: never part of what the SQL makes
HISTORY = ("public.migd_history", "public.migd_history_id_seq")


# ---- helpers ----------------------------------------------------------------

def offline(*args, env=None, cwd=None):
    """migctl with no daemon to talk to."""
    return subprocess.run([MIGCTL_BIN] + list(args), env=clean_env(env), cwd=cwd,
                          capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


def sql_of(m, direction, rng):
    """The SQL of a run, from the daemon's own configuration (-c)."""
    p = offline("-c", m.config_path, direction, "--sql", rng)
    assert p.returncode == X_OK, "%s --sql %s: rc %d\n%s" % (
        direction, rng, p.returncode, p.stderr)
    assert p.stdout.startswith("-- migctl %s --sql" % direction), p.stdout[:300]
    return p.stdout


def dump(pg, db):
    """pg_dump --schema-only without migd's history table, normalised."""
    return schema_helpers.dump(pg, db, HISTORY)


def rows_of(pg, db):
    out = pg.psql("SELECT version_num FROM public.alembic_version ORDER BY 1", db)
    return out.splitlines() if out else []


def assert_same(pg, migd_db, psql_db, what):
    assert_same_dump(dump(pg, migd_db), dump(pg, psql_db), what, "migd", "psql -f")
    assert rows_of(pg, psql_db) == rows_of(pg, migd_db), what


# ---- psql reaches what migd reaches ------------------------------------------

def test_workshop_sql_matches_migd(migd_factory, make_db):
    """Branch, merge and CREATE INDEX CONCURRENTLY: up to head and back to base,
    in one script or in two (FROM a revision of one branch)."""
    m = connected(migd_factory())
    copy_workshop(m)
    ok(m, "reload")
    pg = m.pg
    up = sql_of(m, "upgrade", "base:head")
    down = sql_of(m, "downgrade", "head:base")
    # what the script says of itself and of each step
    assert "-- Running upgrade  -> 0001, create the workshop's schemas\n" in up
    assert "-- Running upgrade 0007a, 0007b -> 0008, merge parts and order status\n" in up
    assert "-- Running downgrade 0008 -> 0007a, 0007b, merge parts and order status\n" in down
    assert "UPDATE \"public\".\"alembic_version\" SET version_num='0002' WHERE " \
        "\"public\".\"alembic_version\".version_num = '0001';" in up
    assert "INSERT INTO \"public\".\"alembic_version\" (version_num) VALUES ('0007b');" in up
    assert "DELETE FROM \"public\".\"alembic_version\" WHERE " \
        "\"public\".\"alembic_version\".version_num = '0001';" in down
    assert "migd_history" not in up.split("\n\n", 1)[1], "history is migd's own"
    for s in ("cars", "participants", "work_shop", "billing"):
        assert "CREATE SCHEMA IF NOT EXISTS \"%s\";" % s in up
    # CREATE INDEX CONCURRENTLY outside any transaction, its version change in one
    idx = up.index("CREATE INDEX CONCURRENTLY")
    before = up[:idx]
    assert before.rfind("COMMIT;") > before.rfind("BEGIN;"), "inside a transaction"
    assert "statement by statement (CREATE INDEX CONCURRENTLY at line 9" in up
    assert up.count("BEGIN;") == up.count("COMMIT;") == 10

    migctl_ok(m, "upgrade")
    db = make_db(pg)
    psql_ok(pg, db, up, "upgrade base:head")
    assert rows_of(pg, db) == ["0008"]
    assert_same(pg, m.db, db, "upgrade base:head")

    # in two scripts, from one branch's revision
    db2 = make_db(pg)
    psql_ok(pg, db2, sql_of(m, "upgrade", "base:0007a"), "upgrade base:0007a")
    assert rows_of(pg, db2) == ["0007a"]
    psql_ok(pg, db2, sql_of(m, "upgrade", "0007a:head"), "upgrade 0007a:head")
    assert_same(pg, m.db, db2, "upgrade in two scripts")

    migctl_ok(m, "downgrade", "base")
    psql_ok(pg, db, down, "downgrade head:base")
    assert rows_of(pg, db) == []
    assert_same(pg, m.db, db, "downgrade head:base")


@pytest.mark.parametrize("name", FIXTURES)
def test_realworld_sql_matches_migd(migd_factory, make_db, name):
    """The file's own transaction control (BEGIN ... COMMIT, COMMIT AND CHAIN),
    session habits, an own schema: up and down, as migd runs them."""
    m = connected(migd_factory(overrides={("migrations", "schemas"): None}))
    copy_fixture(m, name)
    pg = m.pg
    up = sql_of(m, "upgrade", "base:head")
    down = sql_of(m, "downgrade", "head:base")
    migctl_ok(m, "upgrade")
    db = make_db(pg)
    psql_ok(pg, db, up, "%s: upgrade base:head" % name)
    assert_same(pg, m.db, db, "%s: upgrade" % name)
    migctl_ok(m, "downgrade", "base")
    psql_ok(pg, db, down, "%s: downgrade head:base" % name)
    assert rows_of(pg, db) == []
    assert_same(pg, m.db, db, "%s: downgrade" % name)


def test_atomic_run_sql_matches_migd(migd_factory, make_db):
    """--atomic (or atomic = true in the configuration): one transaction for
    the whole run, as migd runs it; a step that cannot be in it is refused."""
    m = connected(migd_factory(overrides={("migrations", "atomic"): "true"}))
    copy_workshop(m)
    ok(m, "reload")
    pg = m.pg
    p = offline("-c", m.config_path, "upgrade", "--sql", "base:head")
    assert p.returncode == X_FAILED, p.stdout
    assert "revision 0005 cannot be part of an atomic run: CREATE INDEX CONCURRENTLY" \
        in p.stderr, p.stderr
    first = sql_of(m, "upgrade", "base:0004")
    assert "4 migrations, atomic: all in one transaction" in first
    steps = first[first.index("-- Running"):]
    assert steps.count("BEGIN;") == 1 and steps.count("COMMIT;") == 1, steps
    p = offline("-c", m.config_path, "upgrade", "--sql", "--no-atomic", "base:0004")
    assert p.returncode == X_OK, p.stderr
    assert p.stdout.count("BEGIN;") == 5, p.stdout
    p = offline("-c", m.config_path, "upgrade", "--sql", "--no-atomic", "0004:0005")
    assert p.returncode == X_OK, p.stderr
    rest = sql_of(m, "upgrade", "0005:head")
    migctl_ok(m, "upgrade", "0004")
    migctl_ok(m, "upgrade", "--no-atomic", "0005")
    migctl_ok(m, "upgrade")
    db = make_db(pg)
    psql_ok(pg, db, first, "upgrade base:0004, atomic")
    psql_ok(pg, db, p.stdout, "upgrade 0004:0005, not atomic")
    psql_ok(pg, db, rest, "upgrade 0005:head, atomic")
    assert_same(pg, m.db, db, "atomic upgrade")
    # an atomic downgrade back to 0005, the same both ways
    migctl_ok(m, "downgrade", "0005")
    psql_ok(pg, db, sql_of(m, "downgrade", "head:0005"), "downgrade head:0005")
    assert rows_of(pg, db) == ["0005"]
    assert_same(pg, m.db, db, "atomic downgrade")


def test_commit_and_chain_as_migd_sends_it(tmp_path):
    """The file's COMMIT AND CHAIN ends one of migd's transactions and begins the
    next (with migd's timeouts); its BEGIN ... COMMIT pairs likewise; its last
    COMMIT is the one that also writes the version table."""
    d = os.path.join(REALWORLD, "chain")
    p = offline("upgrade", "--sql", "base:0003", "-d", d)
    assert p.returncode == X_OK, p.stderr
    step = p.stdout[p.stdout.index("-- Running upgrade 0002 -> 0003"):]
    assert "6 transactions, split by its own COMMITs" in step.splitlines()[1]
    assert step.count("COMMIT AND CHAIN;") == 5
    assert step.count("BEGIN;") == 1 and step.count("\nCOMMIT;") == 1
    body = [ln for ln in step.splitlines()[2:] if ln]
    assert body[0] == "BEGIN;"
    assert body[1].startswith("SET LOCAL lock_timeout")
    assert body[2] == "ALTER TABLE events ADD COLUMN source text;"
    assert body[3] == "COMMIT AND CHAIN;" and body[4].startswith("SET LOCAL")
    assert body[-1] == "COMMIT;"
    assert body[-2].startswith("UPDATE \"public\".\"alembic_version\" SET version_num='0003'")
    # two BEGIN ... COMMIT blocks: two transactions
    p = offline("upgrade", "--sql", "0005:0006", "-d", d)
    assert p.returncode == X_OK, p.stderr
    assert "2 transactions, split by its own COMMITs" in p.stdout
    step = p.stdout[p.stdout.index("-- Running upgrade"):]
    assert re.search(r"\nCOMMIT;\nBEGIN;\nSET LOCAL lock_timeout", step), step


def test_config_tables_and_schemas(tmp_path):
    """-c: the configured version table and schemas, quoted; defaults without."""
    d = tmp_path / "m"
    d.mkdir()
    write_rev(str(d), "a_one.sql", "a", up="CREATE TABLE \"We ird\".t (id int);",
              down_sql="DROP TABLE \"We ird\".t;", message="it's one")
    sections = migdtest.default_sections("host=/nonexistent dbname=x", str(d),
                                         str(tmp_path / "s.sock"))
    sections["migrations"]["version_table"] = "ops.versions"
    text, _ = migdtest.render_config(sections)
    cfg = tmp_path / "migd.conf"
    cfg.write_text(text)
    p = offline("-c", str(cfg), "upgrade", "--sql")
    assert p.returncode == X_OK, p.stderr
    out = p.stdout
    assert "CREATE SCHEMA IF NOT EXISTS \"ops\";" in out, out
    assert "CREATE TABLE IF NOT EXISTS \"ops\".\"versions\" (version_num varchar(32) " \
        "NOT NULL, CONSTRAINT \"versions_pkc\" PRIMARY KEY (version_num));" in out, out
    assert "INSERT INTO \"ops\".\"versions\" (version_num) VALUES ('a');" in out
    for s in ("cars", "participants", "work_shop", "We ird"):
        assert "CREATE SCHEMA IF NOT EXISTS \"%s\";" % s in out, (s, out)
    assert "-- Running upgrade  -> a, it's one" in out
    # without a configuration: migd's defaults
    p = offline("upgrade", "--sql", "-d", str(d))
    assert p.returncode == X_OK, p.stderr
    assert "CREATE TABLE IF NOT EXISTS \"public\".\"alembic_version\" (version_num " \
        "varchar(32) NOT NULL, CONSTRAINT \"alembic_version_pkc\" PRIMARY KEY " \
        "(version_num));" in p.stdout
    assert "\"cars\"" not in p.stdout


def test_script_refuses_a_database_not_at_from(migd_factory, make_db):
    """The script checks the version table first: run twice, or on a database
    elsewhere, it stops before changing anything."""
    m = connected(migd_factory())
    copy_workshop(m)
    ok(m, "reload")
    pg = m.pg
    db = make_db(pg)
    up = sql_of(m, "upgrade", "base:0002")
    psql_ok(pg, db, up, "first run")
    before = dump(pg, db)
    p = psql_file(pg, db, up)
    assert p.returncode != 0
    assert "the version table is not at base" in p.stderr, p.stderr
    assert dump(pg, db) == before and rows_of(pg, db) == ["0002"]
    p = psql_file(pg, db, sql_of(m, "upgrade", "0003:head"))
    assert p.returncode != 0 and "is not at 0003" in p.stderr, p.stderr
    assert rows_of(pg, db) == ["0002"]
    psql_ok(pg, db, sql_of(m, "upgrade", "0002:0003"), "from the right state")
    assert rows_of(pg, db) == ["0003"]


# ---- errors -----------------------------------------------------------------

def test_errors(tmp_path):
    d = str(tmp_path)
    write_rev(d, "a.sql", "a", up="CREATE TABLE public.a (id int);",
              down_sql="DROP TABLE public.a;")
    write_rev(d, "b.sql", "b", down="a", up="CREATE TABLE public.b (id int);")  # no down
    write_rev(d, "c1.sql", "c1", down="b", up="SELECT 1;", down_sql="SELECT 1;")
    write_rev(d, "c2.sql", "c2", down="b", up="SELECT 2;", down_sql="SELECT 2;")

    def run(*args):
        return offline(*args, "-d", d)

    p = run("upgrade", "--sql", "base:zz")
    assert p.returncode == X_FAILED and "unknown revision 'zz'" in p.stderr, p.stderr
    assert p.stdout == ""
    p = run("upgrade", "--sql", "zz:heads")
    assert p.returncode == X_FAILED and "unknown revision 'zz'" in p.stderr, p.stderr
    p = run("upgrade", "--sql", "c:heads")
    assert p.returncode == X_FAILED and "ambiguous revision 'c'" in p.stderr, p.stderr
    # FROM that no database can be at: a row and one built on it
    p = run("upgrade", "--sql", "a,c1:heads")
    assert p.returncode == X_FAILED and "FROM a,c1 is no state" in p.stderr, p.stderr
    # head with two heads
    p = run("upgrade", "--sql", "base:head")
    assert p.returncode == X_FAILED and "2 heads" in p.stderr, p.stderr
    # a down step without a down section
    p = run("downgrade", "--sql", "c1,c2:base")
    assert p.returncode == X_FAILED, p.stderr
    assert "b.sql: revision b has no '-- migrate:down' section" in p.stderr, p.stderr
    assert p.stdout == ""
    p = run("downgrade", "--sql", "c1,c2:b")
    assert p.returncode == X_OK, p.stderr
    assert p.stdout.count("-- Running downgrade") == 2
    # wrong direction
    p = run("upgrade", "--sql", "heads:base")
    assert p.returncode == X_FAILED and "downgrade target" in p.stderr, p.stderr
    # usage: downgrade needs FROM, a relative FROM, empty parts, other options
    for args in (("downgrade", "--sql", "base"), ("upgrade", "--sql", "+1:head"),
                 ("upgrade", "--sql", ":head"), ("upgrade", "--sql", "base:"),
                 ("upgrade", "--sql", "base:a:b"), ("upgrade", "--sql", "--dry-run"),
                 ("upgrade", "--sql", "-m", "x"), ("upgrade", "a"), ("revisions", "--sql")):
        p = run(*args)
        assert p.returncode == X_USAGE, (args, p.returncode, p.stdout, p.stderr)
        assert p.stdout == "", args
    # --sql prints SQL, not JSON: with --json, the usage error is JSON
    p = run("--json", "upgrade", "--sql")
    assert p.returncode == X_USAGE and p.stderr == "", (p.returncode, p.stderr)
    assert json.loads(p.stdout)["error"]["data"]["kind"] == "usage", p.stdout
    # invalid files: named, nothing printed
    write_rev(d, "z_bad.sql", "z", down="nosuch", up="SELECT 1;")
    p = run("upgrade", "--sql", "base:heads")
    assert p.returncode == X_FAILED and "z_bad.sql" in p.stderr, p.stderr
    assert p.stdout == ""
    # a configuration that is not there
    p = offline("-c", os.path.join(d, "none.conf"), "upgrade", "--sql")
    assert p.returncode == X_FAILED and "none.conf" in p.stderr, p.stderr


def test_plain_upgrade_prints_from_base(tmp_path):
    """upgrade --sql TO: from base; nothing to do is a script that does nothing."""
    d = str(tmp_path)
    write_rev(d, "a.sql", "a", up="CREATE TABLE public.a (id int);")
    p = offline("upgrade", "--sql", "-d", d)
    assert p.returncode == X_OK, p.stderr
    assert "-- Upgrade from base to a: 1 migration." in p.stdout
    p = offline("upgrade", "--sql", "a:head", "-d", d)
    assert p.returncode == X_OK, p.stderr
    assert "-- Nothing to do" in p.stdout and "-- Running" not in p.stdout
