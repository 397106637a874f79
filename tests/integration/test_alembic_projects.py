"""Alembic projects shaped as real teams have them, moved to migd exactly as
docs/from-alembic.md says, with the real Alembic from Debian
(python3-alembic) on the same database for comparison.

tests/fixtures/alembic_accounts: alembic.ini in a subdirectory (db/), with
script_location = %(here)s/migrations, prepend_sys_path = .. and two
version_locations; env.py takes the URL from $ACCOUNTS_DB_URL (the ini has
none) and keeps Alembic's versions in meta.schema_version; a branch root
with a label and depends_on in the second location, a merge, enums created
and dropped, batch_alter_table, bulk_insert, a CREATE INDEX CONCURRENTLY and
an ALTER TYPE ... ADD VALUE in autocommit blocks, a data migration through
op.get_bind(), downgrades that pass."""

import json
import os
import shutil
import subprocess

import alembic_helpers
import migdtest
from alembic_helpers import FIXTURES, import_, read, sql_files
from cli_helpers import migctl_local
from engine_helpers import X_FAILED, X_OK, connected, history, migctl_json, q, versions
from schema_helpers import assert_same_dump
from schema_helpers import dump as schema_dump

pytestmark = alembic_helpers.needs_alembic

ENV = "ACCOUNTS_DB_URL"
VT = "meta.schema_version"
# 1 -> 2 -> 4 -> 5 (merge of 4 and 3) -> 6; 3 is a root (label billing) that
# depends on 2
R1, R2, R3, R4, R5, R6 = ("1a2b3c4d5e01", "2b3c4d5e6f02", "3c4d5e6f7a03",
                          "4d5e6f7a8b04", "5e6f7a8b9c05", "6f7a8b9c0d06")
REVS = [R1, R2, R3, R4, R5, R6]
NOT_APP = ("meta.schema_version", "meta.migd_history", "meta.migd_history_id_seq")


def accounts():
    """A copy of the accounts project; returns its db/alembic.ini."""
    root = os.path.join(migdtest.short_tempdir("alembic-"), "accounts")
    shutil.copytree(os.path.join(FIXTURES, "alembic_accounts"), root,
                    ignore=shutil.ignore_patterns("__pycache__"))
    return os.path.join(root, "db", "alembic.ini")


def offline_env():
    """What the import needs of env.py: only the URL's dialect counts."""
    return {ENV: "postgresql://"}


def alembic(ini, pg, db, *args, fails=False):
    """The alembic CLI on db, run from the directory of alembic.ini as this
    project is run (prepend_sys_path = ..)."""
    p = subprocess.run(["/usr/bin/python3", "-m", "alembic", "-c", ini] + list(args),
                       capture_output=True, text=True, timeout=120,
                       cwd=os.path.dirname(ini),
                       env=migdtest.clean_env({ENV: alembic_helpers.url(pg, db)}))
    assert (p.returncode != 0) == fails, (args, p.returncode, p.stdout, p.stderr)
    return p.stdout + p.stderr


def dump(pg, db):
    return schema_dump(pg, db, NOT_APP)


def daemon(migd_factory, db=None, pg=None):
    """A migd on db with the project's version table, no schemas of its own."""
    m = connected(migd_factory(pg=pg, db=db, overrides={
        ("migrations", "version_table"): VT, ("migrations", "schemas"): ""}))
    return m


def test_env_py_failing_offline_is_named_once_and_nothing_is_overwritten():
    ini = accounts()
    out = os.path.join(os.path.dirname(os.path.dirname(ini)), "migrations")
    # without the variable env.py reads, nothing is written: the fault is
    # env.py's, named once with its line, not each revision's
    p = import_(ini, "--out", out)
    assert p.returncode == X_FAILED, (p.stdout, p.stderr)
    assert ("migctl: the project's env.py raised KeyError: '%s' (migrations/env.py line 16) "
            "in offline mode, before revision %s's own code ran: it would fail for every "
            "revision, so nothing is written; env.py reads %s from the environment: set it "
            "for the import too" % (ENV, R1, ENV)) in p.stderr, p.stderr
    assert "cannot be imported" not in p.stderr and "--allow-partial" not in p.stderr, p.stderr
    assert not os.path.exists(out)
    # imported once with it, then again without it and with --allow-partial:
    # no file that held SQL becomes a placeholder
    p = import_(ini, "--out", out, env=offline_env())
    assert p.returncode == X_OK, (p.stdout, p.stderr)
    before = {f: read(os.path.join(out, f)) for f in sql_files(out)}
    assert len(before) == 6 and not any("-- unfinished:" in t for t in before.values())
    p = import_(ini, "--out", out, "--allow-partial")
    assert p.returncode == X_FAILED, (p.stdout, p.stderr)
    assert "env.py raised KeyError: '%s'" % ENV in p.stderr, p.stderr
    assert "placeholder" not in p.stderr + p.stdout, p.stderr
    assert {f: read(os.path.join(out, f)) for f in sql_files(out)} == before
    # --json: one import_failed error
    p = import_(ini, "--out", out, "--allow-partial", "--json")
    assert p.returncode == X_FAILED and '"kind": "import_failed"' in p.stdout, p.stdout
    assert {f: read(os.path.join(out, f)) for f in sql_files(out)} == before
    # an env.py that reads the URL with .get() hands Alembic None
    env_py = os.path.join(os.path.dirname(ini), "migrations", "env.py")
    text = read(env_py)
    with open(env_py, "w") as f:
        f.write(text.replace('os.environ["%s"]' % ENV, 'os.environ.get("%s")' % ENV))
    p = import_(ini, "--out", out, "--allow-partial")
    assert p.returncode == X_FAILED, (p.stdout, p.stderr)
    assert ("env.py raised Exception: Connection, url, or dialect_name is required. "
            "(migrations/env.py line 22) in offline mode") in p.stderr, p.stderr
    assert ("env.py gave context.configure() no URL: offline mode needs only its dialect, so "
            "give it one as env.py reads it") in p.stderr, p.stderr
    assert {f: read(os.path.join(out, f)) for f in sql_files(out)} == before


def test_import_names_the_version_table_env_py_configures(migd_factory):
    ini = accounts()
    out = os.path.join(os.path.dirname(os.path.dirname(ini)), "migrations")
    hint = ("migctl: the project's env.py keeps Alembic's versions in %s, but %%s: set "
            "'version_table = %s' in %%s [migrations] before migd reaches a database Alembic "
            "migrated, or it sees nothing applied there and would run every revision again\n"
            % (VT, VT))
    p = import_(ini, "--out", out, env=offline_env())
    assert p.returncode == X_OK, (p.stdout, p.stderr)
    assert hint % ("migd's default is public.alembic_version", "migd.conf's") in p.stderr, \
        p.stderr
    p = import_(ini, "--out", out, "--json", env=offline_env())
    assert p.returncode == X_OK and p.stderr == "", p.stderr
    doc = json.loads(p.stdout)
    assert doc["version_table"] == VT and "public.alembic_version" in doc["version_table_hint"]
    # a configuration with another version table is named
    m = migd_factory(start=False)
    m.write_config({("migrations", "schemas"): ""})
    p = import_(ini, "-c", m.config_path, env=offline_env())
    assert p.returncode == X_OK, (p.stdout, p.stderr)
    assert hint % ("%s has version_table = public.alembic_version" % m.config_path, "its") \
        in p.stderr, p.stderr
    # one with the project's: nothing to say
    m.write_config({("migrations", "version_table"): VT})
    p = import_(ini, "-c", m.config_path, env=offline_env())
    assert p.returncode == X_OK and "version_table" not in p.stderr, p.stderr
    # a project on Alembic's defaults says nothing either
    p = import_(alembic_helpers.project(), "--out", os.path.join(out, "x"))
    assert p.returncode == X_OK and "version_table" not in p.stderr, p.stderr


def test_take_over_a_database_alembic_migrated_into_meta(pg, make_db, migd_factory):
    """Alembic ran the project up to R2 in production; the team imports it,
    points migd at meta.schema_version as import says, adopts, and goes on
    with +1 and heads as Alembic does on a twin database; both go down to
    base alike."""
    ini = accounts()
    db, twin = make_db(pg), make_db(pg)
    for d in (db, twin):
        alembic(ini, pg, d, "upgrade", R2)
    m = daemon(migd_factory, db=db, pg=pg)
    p = import_(ini, "-c", m.config_path, env=offline_env())
    assert p.returncode == X_OK and "version_table" not in p.stderr, (p.stdout, p.stderr)
    assert m.migctl("reload").returncode == X_OK
    rc, st, p = migctl_json(m, "status")
    assert rc == X_OK and [r["revision"] for r in st["current"]] == [R2], (p.stdout, p.stderr)
    assert st["unverified"] == [R1, R2] and st["pending"] == 4, st
    before = dump(pg, db)
    rc, res, p = migctl_json(m, "adopt")
    assert rc == X_OK and [x["revision"] for x in res["adopted"]] == [R1, R2], p.stdout
    assert dump(pg, db) == before
    assert history(m, table="meta.migd_history", where="direction <> 'adopt'") == []
    # nothing already applied runs again; +1 is Alembic's +1
    alembic(ini, pg, twin, "upgrade", "+1")
    rc, res, p = migctl_json(m, "upgrade", "+1", timeout=120)
    assert rc == X_OK and [s["revision"] for s in res["steps"]] == [R4], (p.stdout, p.stderr)
    assert versions(m, VT) == [R4] == sorted(
        pg.psql("SELECT version_num FROM %s" % VT, db=twin).split())
    alembic(ini, pg, twin, "upgrade", "heads")
    rc, res, p = migctl_json(m, "upgrade", "heads", timeout=120)
    assert rc == X_OK and [s["revision"] for s in res["steps"]] == [R3, R5, R6], p.stdout
    assert versions(m, VT) == [R6]
    assert R6 in alembic(ini, pg, db, "current")
    assert_same_dump(dump(pg, twin), dump(pg, db), "upgrade heads", "alembic", "migd")
    # literals keep their backslashes as Alembic's bound values do
    roles = "SELECT string_agg(name, '|' ORDER BY id) FROM roles"
    assert q(m, roles) == pg.psql(roles, db=twin).strip() == \
        "admin (\\\\fileserver)|it's support|on-call \\ C:\\ops, 100%"
    assert rel_missing(m, "public.alembic_version")
    # down to base alike (downgrades that pass are no-ops in both)
    alembic(ini, pg, twin, "downgrade", "base")
    rc, res, p = migctl_json(m, "downgrade", "base", timeout=120)
    assert rc == X_OK, (p.stdout, p.stderr)
    assert versions(m, VT) == []
    assert_same_dump(dump(pg, twin), dump(pg, db), "downgrade base", "alembic", "migd")


def rel_missing(m, name):
    return q(m, "SELECT to_regclass('%s') IS NULL" % name) == "t"


def test_ini_outside_the_project_as_alembic_runs_it():
    """deploy/alembic.ini with script_location = src, run from the checkout's
    root as `alembic -c deploy/alembic.ini` is: import finds the project
    where Alembic does, and says where to run it from when it cannot."""
    ini = alembic_helpers.project()
    top = os.path.dirname(os.path.dirname(ini))
    os.rename(os.path.dirname(ini), os.path.join(top, "src"))
    os.mkdir(os.path.join(top, "deploy"))
    ini = os.path.join(top, "deploy", "alembic.ini")
    with open(os.path.join(top, "src", "alembic.ini")) as f:
        text = f.read()
    with open(ini, "w") as f:
        f.write(text.replace("script_location = %(here)s", "script_location = src")
                .replace("prepend_sys_path = .", "prepend_sys_path = src"))
    os.unlink(os.path.join(top, "src", "alembic.ini"))
    p = subprocess.run(["/usr/bin/python3", "-m", "alembic", "-c", ini, "heads"], cwd=top,
                       capture_output=True, text=True, timeout=60, env=migdtest.clean_env())
    assert p.returncode == 0 and alembic_helpers.HEAD in p.stdout, p.stderr
    out = os.path.join(top, "migrations")
    p = migctl_local("import", "alembic", "deploy/alembic.ini", "--out", out, cwd=top,
                     timeout=120)
    assert p.returncode == X_OK, (p.stdout, p.stderr)
    assert "imported 6 revisions into %s (6 written)" % out in p.stdout, p.stdout
    assert "-- imported-from: alembic src/versions/a1b2c3d4e5f0_create_schemas.py " in read(
        os.path.join(out, sql_files(out)[0]))
    # the same files as from the project laid out as usual, but for that line
    usual = alembic_helpers.project()
    out2 = os.path.join(os.path.dirname(usual), "migrations")
    assert import_(usual, "--out", out2).returncode == X_OK
    assert sql_files(out) == sql_files(out2)
    for f in sql_files(out):
        assert read(os.path.join(out, f)).split("-- migrate:up")[1] == \
            read(os.path.join(out2, f)).split("-- migrate:up")[1], f
    # from deploy/, where Alembic too would not find src: said, nothing written
    out3 = os.path.join(top, "other")
    p = migctl_local("import", "alembic", "alembic.ini", "--out", out3,
                     cwd=os.path.join(top, "deploy"), timeout=120)
    assert p.returncode == X_FAILED, (p.stdout, p.stderr)
    assert ("alembic.ini: script_location = src is not a directory under the directory of "
            "alembic.ini (%s/deploy) nor under the current directory (%s/deploy): Alembic reads "
            "it relative to the directory it runs in, so run migctl import from there"
            % (top, top)) in p.stderr, p.stderr
    assert "init" not in p.stderr and not os.path.exists(out3)


def test_env_py_older_than_the_template_imports_the_same_sql():
    """env.py from before Alembic 1.4's template configures offline mode
    without literal_binds and the named paramstyle: the files are still the
    SQL Alembic runs online, values in place and every % single."""
    ini = accounts()
    root = os.path.dirname(os.path.dirname(ini))
    new = os.path.join(root, "new")
    p = import_(ini, "--out", new, env=offline_env())
    assert p.returncode == X_OK, (p.stdout, p.stderr)
    env_py = os.path.join(os.path.dirname(ini), "migrations", "env.py")
    text = read(env_py)
    old_style = text.replace('context.configure(url=URL, literal_binds=True,\n'
                             '                      dialect_opts={"paramstyle": "named"}, **CONF)',
                             'context.configure(url=URL, **CONF)')
    assert old_style != text
    with open(env_py, "w") as f:
        f.write(old_style)
    old = os.path.join(root, "old")
    p = import_(ini, "--out", old, env=offline_env())
    assert p.returncode == X_OK, (p.stdout, p.stderr)
    assert sql_files(old) == sql_files(new)
    for f in sql_files(new):
        body = read(os.path.join(old, f)).split("-- migrate:up")[1]
        assert body == read(os.path.join(new, f)).split("-- migrate:up")[1], f
        assert "%%" not in body and "%(" not in body, body
    data = read(os.path.join(old, [f for f in sql_files(old) if f.startswith(R6)][0]))
    assert "WHERE email LIKE '%@spam.example';" in data, data
    assert "VALUES (3, 'on-call \\ C:\\ops, 100%');" in data, data
    assert "name || ' (\\\\fileserver)' WHERE" in data, data


def workshop_alembic(ini, pg, db, *args):
    p = subprocess.run(["/usr/bin/python3", "-m", "alembic", "-c", ini] + list(args),
                       capture_output=True, text=True, timeout=120,
                       cwd=os.path.dirname(ini),
                       env=migdtest.clean_env({"WORKSHOP_URL": alembic_helpers.url(pg, db)}))
    assert p.returncode == 0, (args, p.stdout, p.stderr)
    return p.stdout + p.stderr


def test_workshop_schemas_per_run_and_a_transaction_per_migration(pg, make_db, migd_factory):
    """tests/fixtures/alembic_workshop: env.py re-creates the schemas before
    every run (offline too) and has transaction_per_migration=True.  Those
    statements are env.py's, outside the transaction Alembic opens per
    migration: a revision without an autocommit block stays one
    transaction; the database Alembic took to 0002 is taken over and goes on
    as Alembic does."""
    ini = alembic_helpers.project("alembic_workshop")
    out = os.path.join(os.path.dirname(ini), "migrations")
    p = import_(ini, "--out", out)
    assert p.returncode == X_OK, (p.stdout, p.stderr)
    texts = {f.split("_")[0]: read(os.path.join(out, f)) for f in sql_files(out)}
    assert sorted(texts) == ["0001", "0002", "0003", "0004"], texts
    for rev, text in texts.items():
        assert ("-- transaction: none\n" in text) == (rev == "0003"), (rev, text)
        up = text.split("-- migrate:up\n")[1]
        assert up.startswith('CREATE SCHEMA IF NOT EXISTS "cars";\n\nCREATE SCHEMA IF NOT '
                             'EXISTS "participants";\n\nCREATE SCHEMA IF NOT EXISTS '
                             '"work_shop";\n\n'), (rev, up)
    assert "BEGIN;" not in texts["0002"] and "COMMIT;" not in texts["0002"], texts["0002"]
    # the autocommit block stays outside the revision's transaction
    up = texts["0003"].split("-- migrate:up\n")[1].split("-- migrate:down\n")[0]
    assert [x.strip().split("(")[0].strip() for x in up.split(";") if x.strip()][3:] == [
        "BEGIN", "CREATE TABLE work_shop.jobs", "COMMIT",
        "CREATE INDEX CONCURRENTLY ix_jobs_car ON work_shop.jobs"], up
    # take-over at 0002, then +1 and head, and base, as Alembic on a twin
    db, twin = make_db(pg), make_db(pg)
    for d in (db, twin):
        workshop_alembic(ini, pg, d, "upgrade", "0002")
    m = connected(migd_factory(pg=pg, db=db))
    for f in sql_files(out):
        shutil.copy(os.path.join(out, f), m.migrations_dir)
    assert m.migctl("reload").returncode == X_OK
    rc, res, p = migctl_json(m, "adopt")
    assert rc == X_OK and [x["revision"] for x in res["adopted"]] == ["0001", "0002"], p.stdout
    workshop_alembic(ini, pg, twin, "upgrade", "+1")
    rc, res, p = migctl_json(m, "upgrade", "+1", timeout=120)
    assert rc == X_OK and [s["revision"] for s in res["steps"]] == ["0003"], (p.stdout, p.stderr)
    workshop_alembic(ini, pg, twin, "upgrade", "head")
    rc, res, p = migctl_json(m, "upgrade", timeout=120)
    assert rc == X_OK and [s["revision"] for s in res["steps"]] == ["0004"], (p.stdout, p.stderr)
    assert versions(m) == ["0004"]
    assert "0004 (head)" in workshop_alembic(ini, pg, db, "current")
    assert_same_dump(alembic_helpers.dump(pg, twin), alembic_helpers.dump(pg, db), "head",
                     "alembic", "migd")
    owners = "SELECT o.name || ':' || c.plate FROM participants.owners o JOIN cars.cars c " \
        "ON c.owner_id = o.id"
    assert q(m, owners) == pg.psql(owners, db=twin).strip() == "O'Brien & Sons:WS-1"
    workshop_alembic(ini, pg, twin, "downgrade", "base")
    rc, res, p = migctl_json(m, "downgrade", "base", timeout=120)
    assert rc == X_OK, (p.stdout, p.stderr)
    assert_same_dump(alembic_helpers.dump(pg, twin), alembic_helpers.dump(pg, db), "base",
                     "alembic", "migd")
    assert q(m, "SELECT count(*) FROM pg_namespace WHERE nspname IN "
             "('cars', 'participants', 'work_shop')") == "3"


IRREVERSIBLE = {
    "alembic.ini": "[alembic]\nscript_location = %(here)s\n",
    "env.py": '''import os
import sqlalchemy as sa
from alembic import context

if context.is_offline_mode():
    context.configure(url="postgresql://", literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    engine = sa.create_engine(os.environ["LEGACY_URL"], poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        context.configure(connection=conn)
        with context.begin_transaction():
            context.run_migrations()
''',
    "versions/c1_people.py": '''"""people"""
from alembic import op
import sqlalchemy as sa

revision = "c1"
down_revision = None


def upgrade():
    op.create_table("people", sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("legacy_name", sa.Text))


def downgrade():
    op.drop_table("people")
''',
    "versions/c2_drop_legacy.py": '''"""drop the legacy names"""
from alembic import op

revision = "c2"
down_revision = "c1"


def upgrade():
    op.drop_column("people", "legacy_name")


def downgrade():
    raise NotImplementedError("the legacy names are gone")
''',
}


def test_irreversible_downgrade_has_no_down_section(pg, make_db, migd_factory):
    """A downgrade() that raises NotImplementedError, as teams mark a
    revision that cannot be undone: its upgrade is imported, without a down
    section, and migd refuses to go below it as Alembic does."""
    root = migdtest.short_tempdir("alembic-")
    for name, text in IRREVERSIBLE.items():
        os.makedirs(os.path.dirname(os.path.join(root, name)), exist_ok=True)
        with open(os.path.join(root, name), "w") as f:
            f.write(text)
    ini = os.path.join(root, "alembic.ini")
    m = connected(migd_factory(pg=pg))
    p = import_(ini, "--out", m.migrations_dir)
    assert p.returncode == X_OK, (p.stdout, p.stderr)
    c2 = os.path.join(m.migrations_dir, "c2_drop_the_legacy_names.sql")
    assert ("migctl: %s has no down section: its downgrade() raises NotImplementedError: the "
            "legacy names are gone (line 13), so migd refuses to downgrade it, as Alembic does"
            % c2) in p.stderr, p.stderr
    text = read(c2)
    assert text.endswith("-- migrate:up\nALTER TABLE people DROP COLUMN legacy_name;\n"), text
    assert "-- migrate:down" in read(os.path.join(m.migrations_dir, "c1_people.sql"))
    assert m.migctl("reload").returncode == X_OK
    rc, res, p = migctl_json(m, "upgrade", timeout=60)
    assert rc == X_OK and versions(m) == ["c2"], (p.stdout, p.stderr)
    twin = make_db(pg)
    env = migdtest.clean_env({"LEGACY_URL": alembic_helpers.url(pg, twin)})
    run = lambda *a: subprocess.run(["/usr/bin/python3", "-m", "alembic", "-c", ini] + list(a),
                                    cwd=root, env=env, capture_output=True, text=True,
                                    timeout=60)
    assert run("upgrade", "head").returncode == 0
    a = run("downgrade", "c1")
    assert a.returncode != 0 and "the legacy names are gone" in a.stderr, a.stderr
    rc, res, p = migctl_json(m, "downgrade", "c1", timeout=60)
    assert rc == X_FAILED and res["error"]["data"]["kind"] == "plan_error", p.stdout
    assert "c2" in res["error"]["message"], res
    assert versions(m) == ["c2"] and q(m, "SELECT to_regclass('people') IS NOT NULL") == "t"
    # NotImplementedError from an upgrade() is the revision's own failure,
    # named as such (not as a query through op.get_bind())
    with open(os.path.join(root, "versions", "c2_drop_legacy.py"), "a") as f:
        f.write('\n\ndef upgrade():\n    raise NotImplementedError("not yet")\n')
    out = os.path.join(root, "out")
    p = import_(ini, "--out", out)
    assert p.returncode == X_FAILED, (p.stdout, p.stderr)
    assert ("c2 (versions/c2_drop_legacy.py) cannot be imported: rendering it offline raised "
            "NotImplementedError: not yet (line 17)") in p.stderr, p.stderr
    assert "op.get_bind()" not in p.stderr.split("nothing written")[0], p.stderr
    assert not os.path.exists(out)


def test_migd_on_the_default_table_beside_alembics_writes_nothing(pg, make_db, migd_factory):
    """A database Alembic migrated into meta.schema_version, and migd left on
    its default public.alembic_version (import's warning missed): adopt and
    upgrade refuse, naming the table to configure, before migd creates
    anything; with the right table they go on.  'stamp base' is the way to
    say that table is another application's."""
    ini = accounts()
    db = make_db(pg)
    alembic(ini, pg, db, "upgrade", R2)
    m = connected(migd_factory(pg=pg, db=db, overrides={("migrations", "schemas"): ""}))
    p = import_(ini, "--out", m.migrations_dir, env=offline_env())
    assert p.returncode == X_OK, p.stderr
    assert m.migctl("reload").returncode == X_OK
    before = dump(pg, db)
    says = ("the version table public.alembic_version does not exist, but this database has "
            "meta.schema_version, shaped as Alembic's version table: if Alembic migrated this "
            "database, set 'version_table = meta.schema_version' in migd.conf ([migrations]) "
            "and reload, or migd would run every revision again from base; if it is another "
            "application's, create public.alembic_version with 'migctl stamp base' first. "
            "Nothing was written")
    for cmd in ("adopt", "upgrade"):
        rc, res, p = migctl_json(m, cmd, timeout=60)
        assert rc == X_FAILED and res["error"]["data"]["kind"] == "version_table_elsewhere", \
            (cmd, p.stdout)
        assert res["error"]["message"] == says, res
        assert res["error"]["data"]["tables"] == "meta.schema_version", res
    assert q(m, "SELECT to_regclass('public.alembic_version') IS NULL AND "
             "to_regclass('public.migd_history') IS NULL") == "t"
    assert dump(pg, db) == before
    assert versions(m, VT) == [R2]
    # pointed at Alembic's table, migd takes over
    m.stop()
    m.write_config({("migrations", "version_table"): VT})
    m.start()
    connected(m)
    rc, res, p = migctl_json(m, "adopt")
    assert rc == X_OK and [x["revision"] for x in res["adopted"]] == [R1, R2], p.stdout
    # another application's table: stamp base makes migd's own, then it runs
    other = make_db(pg)
    pg.psql("CREATE SCHEMA billing_app; CREATE TABLE billing_app.alembic_version "
            "(version_num varchar(32) NOT NULL PRIMARY KEY); "
            "INSERT INTO billing_app.alembic_version VALUES ('b9')", db=other)
    m2 = connected(migd_factory(pg=pg, db=other, overrides={("migrations", "schemas"): ""}))
    shutil.rmtree(m2.migrations_dir)
    shutil.copytree(m.migrations_dir, m2.migrations_dir)
    assert m2.migctl("reload").returncode == X_OK
    rc, res, p = migctl_json(m2, "upgrade", timeout=60)
    assert rc == X_FAILED and "billing_app.alembic_version" in res["error"]["message"], p.stdout
    assert m2.migctl("stamp", "base").returncode == X_OK
    rc, res, p = migctl_json(m2, "upgrade", R1, timeout=60)
    assert rc == X_OK and versions(m2) == [R1], p.stdout
