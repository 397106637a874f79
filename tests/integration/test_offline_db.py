"""migctl's offline commands and --db (issue 16): `-c CONFIG` with several
[database NAME] sections reads the settings of the database --db names.

`upgrade --sql`, `downgrade --sql`, `revisions`, `lint` and `new` read the
files with the daemon's parser and no daemon. With two databases whose
directories, formats, schemas, version tables and timeouts differ, each reads
the one named; an unknown name is refused with the configured names (as migd
refuses it: exit 1, kind invalid_params) and nothing is written; without
--db, the only database or the unnamed one ('default') is read, as migd picks
it, else the first when every database agrees on what the command reads, and
otherwise the command is refused as ambiguous.
"""

import json
import os
import subprocess

import migdtest
from migdtest import MIGCTL_BIN, clean_env
from cli_helpers import write_rev
from engine_helpers import X_FAILED, X_OK, X_USAGE

DBMATE_B = "20240101000000_create_tb.sql"


def offline(*args, cwd=None):
    """migctl with no daemon to talk to (no MIGD_SOCKET, no MIGD_MIGRATIONS)."""
    env = clean_env()
    env.pop("MIGD_SOCKET", None)
    env.pop("MIGD_MIGRATIONS", None)
    return subprocess.run([MIGCTL_BIN] + list(args), env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


def tree(top):
    """Every file under top with its content: what a refused command must not change."""
    out = {}
    for d, _, files in os.walk(top):
        for f in files:
            p = os.path.join(d, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, top)] = fh.read()
    return out


def two_databases(tmp):
    """a: migd files in ma, public.va; b: dbmate files in mb, schema bs,
    bs.vb, lock_timeout 7s, atomic. Returns the config's path."""
    ma, mb = os.path.join(tmp, "ma"), os.path.join(tmp, "mb")
    os.makedirs(ma)
    os.makedirs(mb)
    write_rev(ma, "0001_a.sql", "a001", up="CREATE TABLE ta (id bigint);",
              down_sql="DROP TABLE ta;", message="table a")
    with open(os.path.join(mb, DBMATE_B), "w") as f:
        f.write("-- migrate:up\nCREATE TABLE bs.tb (id bigint);\n\n"
                "-- migrate:down\nDROP TABLE bs.tb;\n")
    path = os.path.join(tmp, "migd.conf")
    with open(path, "w") as f:
        f.write("[database a]\nconninfo = dbname=offdb_a\ndirectory = ma\n"
                "version_table = public.va\n\n"
                "[database b]\nconninfo = dbname=offdb_b\ndirectory = mb\n"
                "format = dbmate\nschemas = bs\nversion_table = bs.vb\n"
                "lock_timeout = 7s\natomic = true\n")
    return path


def test_offline_commands_read_the_database_named(tmp_path):
    tmp = str(tmp_path)
    cfg = two_databases(tmp)

    # upgrade --sql: b's files, version table, schema and timeouts
    p = offline("-c", cfg, "--db", "b", "upgrade", "--sql", "base:head")
    assert p.returncode == X_OK, p.stderr
    assert "-- With the settings of [database b] of %s.\n" % cfg in p.stdout, p.stdout[:600]
    assert 'CREATE TABLE IF NOT EXISTS "bs"."vb"' in p.stdout
    assert 'CREATE SCHEMA IF NOT EXISTS "bs";' in p.stdout
    assert "CREATE TABLE bs.tb (id bigint);" in p.stdout
    assert "INSERT INTO \"bs\".\"vb\" (version_num) VALUES ('20240101000000');" in p.stdout
    assert "SET LOCAL lock_timeout = '7000ms'" in p.stdout
    assert "CREATE TABLE ta" not in p.stdout
    assert '"va"' not in p.stdout and "a001" not in p.stdout
    # the same file, --db a: a's
    p = offline("-c", cfg, "--db", "a", "upgrade", "--sql", "base:head")
    assert p.returncode == X_OK, p.stderr
    assert 'CREATE TABLE IF NOT EXISTS "public"."va"' in p.stdout
    assert "CREATE TABLE ta (id bigint);" in p.stdout
    assert "bs" not in p.stdout and "7000ms" not in p.stdout
    # downgrade --sql, --db given before or after the command
    p = offline("-c", cfg, "downgrade", "--sql", "head:base", "--db", "b")
    assert p.returncode == X_OK, p.stderr
    assert "DROP TABLE bs.tb;" in p.stdout and 'DELETE FROM "bs"."vb"' in p.stdout

    # revisions: each one's graph
    p = offline("-c", cfg, "--db", "b", "--json", "revisions")
    assert p.returncode == X_OK, p.stderr
    ids = [r["revision"] for r in json.loads(p.stdout)["revisions"]]
    assert ids == ["20240101000000"], p.stdout
    p = offline("-c", cfg, "--db", "a", "revisions")
    assert p.returncode == X_OK and "a001" in p.stdout and "2024" not in p.stdout, p

    # lint of the directory: b's files; of FILEs: b's schemas are managed
    p = offline("-c", cfg, "--db", "b", "--json", "lint")
    assert p.returncode == X_OK, p.stderr
    assert json.loads(p.stdout)["files"] == 1
    # in b's layout (dbmate), which is how a FILE is read with b's settings
    drop = os.path.join(tmp, "20240301000000_drop.sql")
    with open(drop, "w") as f:
        f.write("-- migrate:up\nDROP SCHEMA bs CASCADE;\n\n-- migrate:down\n")
    p = offline("-c", cfg, "--db", "b", "--json", "lint", drop)
    rules = [f["rule"] for f in json.loads(p.stdout)["findings"]]
    assert p.returncode == 4 and "drop-managed-schema" in rules, (p.returncode, p.stdout)
    p = offline("-c", cfg, "--db", "a", "--json", "lint", drop)
    rules = [f["rule"] for f in json.loads(p.stdout)["findings"]]
    assert "drop-managed-schema" not in rules, p.stdout

    # new: in b's directory, as dbmate names it; a untouched
    before_a = tree(os.path.join(tmp, "ma"))
    p = offline("-c", cfg, "--db", "b", "new", "-m", "add tc")
    assert p.returncode == X_OK, p.stderr
    assert "directory %s (from %s, [database b])" % (os.path.join(tmp, "mb"), cfg) \
        in p.stderr, p.stderr
    made = p.stdout.strip()
    assert os.path.dirname(made) == os.path.join(tmp, "mb"), made
    assert made.endswith("_add_tc.sql") and not os.path.basename(made).startswith("0"), made
    with open(made) as f:
        assert f.read().startswith("-- migrate:up"), made
    assert tree(os.path.join(tmp, "ma")) == before_a
    # new --db a: a migd file on a001
    p = offline("-c", cfg, "--db", "a", "--json", "new", "-m", "add td")
    assert p.returncode == X_OK, p.stderr
    doc = json.loads(p.stdout)
    assert doc["directory"] == os.path.join(tmp, "ma") and doc["down_revision"] == "a001", doc
    assert len(os.listdir(os.path.join(tmp, "mb"))) == 2


def test_offline_unknown_db_is_refused_and_changes_nothing(tmp_path):
    tmp = str(tmp_path)
    cfg = two_databases(tmp)
    before = tree(tmp)
    msg = "no database nosuch in %s; databases: a, b" % cfg
    for args in (["upgrade", "--sql", "base:head"], ["downgrade", "--sql", "head:base"],
                 ["revisions"], ["lint"], ["lint", os.path.join(tmp, "ma", "0001_a.sql")],
                 ["new", "-m", "x"], ["merge", "-m", "x"],
                 ["new", "-m", "x", "-d", os.path.join(tmp, "ma")]):
        p = offline("-c", cfg, "--db", "nosuch", *args)
        assert p.returncode == X_FAILED, (args, p.returncode, p.stdout, p.stderr)
        assert msg in p.stderr, (args, p.stderr)
        assert p.stdout == "", (args, p.stdout)
        if "--sql" in args:
            continue            # --sql prints SQL: no --json
        p = offline("-c", cfg, "--db", "nosuch", "--json", *args)
        assert p.returncode == X_FAILED, (args, p.stdout, p.stderr)
        e = json.loads(p.stdout)["error"]
        assert e["message"] == msg and e["code"] == -32602, e
        assert e["data"] == {"kind": "invalid_params", "databases": ["a", "b"]}, e
    # matched as migd matches its database param: exactly
    p = offline("-c", cfg, "--db", "B", "revisions")
    assert p.returncode == X_FAILED and "no database B in" in p.stderr, p.stderr
    assert tree(tmp) == before


def test_offline_without_db(tmp_path):
    tmp = str(tmp_path)
    cfg = two_databases(tmp)
    before = tree(tmp)
    # different directories: which one is not guessed
    msg = ("%s has 2 databases and their directory differs: name one with --db NAME; "
           "databases: a, b" % cfg)
    for args in (["upgrade", "--sql", "base:head"], ["revisions"], ["lint"],
                 ["new", "-m", "x"]):
        p = offline("-c", cfg, *args)
        assert p.returncode == X_FAILED, (args, p.returncode, p.stdout, p.stderr)
        assert msg in p.stderr, (args, p.stderr)
    assert tree(tmp) == before

    # one directory for the fleet: new, revisions and lint need no name; the SQL
    # of a run does when the databases' run settings differ
    shared = os.path.join(tmp, "shared.conf")
    with open(shared, "w") as f:
        f.write("[migrations]\ndirectory = ma\n\n[database t1]\nconninfo = dbname=t1\n\n"
                "[database t2]\nconninfo = dbname=t2\nlock_timeout = 10s\n")
    p = offline("-c", shared, "--json", "new", "-m", "for all")
    assert p.returncode == X_OK, p.stderr
    assert json.loads(p.stdout)["directory"] == os.path.join(tmp, "ma")
    p = offline("-c", shared, "revisions")
    assert p.returncode == X_OK and "a001" in p.stdout, p
    p = offline("-c", shared, "lint")
    assert p.returncode == X_OK, p.stderr
    p = offline("-c", shared, "upgrade", "--sql", "base:head")
    assert p.returncode == X_FAILED and p.stdout == "", p
    assert ("%s has 2 databases and their lock_timeout differs: name one with --db NAME; "
            "databases: t1, t2" % shared) in p.stderr, p.stderr
    p = offline("-c", shared, "--db", "t2", "upgrade", "--sql", "base:head")
    assert p.returncode == X_OK and "'10000ms'" in p.stdout, p.stderr

    # the unnamed [database] beside a named one is 'default', as migd picks it
    mixed = os.path.join(tmp, "mixed.conf")
    with open(mixed, "w") as f:
        f.write("[database]\nconninfo = dbname=d\n[migrations]\ndirectory = ma\n\n"
                "[database x]\nconninfo = dbname=x\ndirectory = mb\nformat = dbmate\n")
    p = offline("-c", mixed, "--json", "revisions")
    assert p.returncode == X_OK, p.stderr
    ids = [r["revision"] for r in json.loads(p.stdout)["revisions"]]
    assert "a001" in ids and "20240101000000" not in ids, ids   # and "for all"'s
    p = offline("-c", mixed, "--db", "x", "--json", "revisions")
    assert [r["revision"] for r in json.loads(p.stdout)["revisions"]] == ["20240101000000"]


def test_offline_db_needs_a_config(tmp_path):
    """--db picks a database of -c CONFIG: without one it is a usage error, not
    silently ignored; nothing is written."""
    tmp = str(tmp_path)
    two_databases(tmp)
    before = tree(tmp)
    ma = os.path.join(tmp, "ma")
    for args, cwd in ((["-d", ma, "revisions"], None), (["-d", ma, "new", "-m", "x"], None),
                      (["-d", ma, "upgrade", "--sql", "base:head"], None),
                      (["lint", os.path.join(ma, "0001_a.sql")], None),
                      (["new", "-m", "x"], tmp)):
        os.makedirs(os.path.join(tmp, "migrations"), exist_ok=True)
        p = offline("--db", "a", *args, cwd=cwd)
        assert p.returncode == X_USAGE, (args, p.returncode, p.stdout, p.stderr)
        assert "--db a picks a database of a configuration file" in p.stderr, p.stderr
        assert "-c CONFIG" in p.stderr
        os.rmdir(os.path.join(tmp, "migrations"))
    assert tree(tmp) == before
