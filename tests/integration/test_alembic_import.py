"""`migctl import alembic` with the real Alembic from Debian (python3-alembic):
the project in tests/fixtures/alembic_project (three schemas, cross-schema
foreign keys, an enum created with checkfirst, a branch with a label and a
merge, a data migration with op.execute and op.bulk_insert, a CREATE INDEX
CONCURRENTLY in an autocommit block) is imported, and from base migd builds
exactly the schema Alembic builds.  A revision whose Python reads rows
(tests/fixtures/alembic_python_only) is named, and only --allow-partial
writes it, as a placeholder that refuses to run."""

import json
import os
import re
import shutil
import subprocess

import alembic_helpers
from alembic_helpers import (FIXTURES, HEAD, REVS, alembic, dump, file_of, import_,
                             import_ok, project, read, sql_files)
from cli_helpers import migctl_local
from engine_helpers import X_FAILED, X_OK, X_USAGE, connected, err, ok, q, versions
from schema_helpers import assert_same_dump

pytestmark = alembic_helpers.needs_alembic

PY_ONLY = "1b2c3d4e5f6a"


def test_import_writes_one_file_per_revision():
    ini = project()
    out = os.path.join(os.path.dirname(ini), "migrations")
    p = import_ok(ini, out)
    assert "imported 6 revisions into %s (6 written)" % out in p.stdout, p.stdout
    # env.py's fileConfig (alembic logger at INFO) says nothing per revision
    assert p.stderr == "migctl: directory %s (--out)\n" % out, p.stderr
    assert [f.split("_")[0] for f in sql_files(out)] == REVS
    texts = {rev: read(file_of(out, rev)) for rev in REVS}
    for rev, text in texts.items():
        assert text.startswith("-- revision: %s\n" % rev), text
        # Alembic's bookkeeping is not there, nor its run's BEGIN/COMMIT
        assert "alembic_version" not in text, text
        assert "-- Running" not in text, text
        assert re.search(r"^-- imported-from: alembic versions/%s_\w+\.py sha256=[0-9a-f]{64}$"
                         % rev, text, re.M), text
        assert os.stat(file_of(out, rev)).st_mode & 0o777 == 0o644
    assert "-- down_revision: none\n" in texts["a1b2c3d4e5f0"]
    assert "-- message: people and cars, with the car kind enum\n" in texts["b2c3d4e5f6a1"]
    assert "-- branch_labels: workshop\n" in texts["c3d4e5f6a7b2"]
    merge = texts["e5f6a7b8c9d4"]
    assert "-- down_revision: c3d4e5f6a7b2, d4e5f6a7b8c3\n" in merge
    # the autocommit block: outside any transaction; the rest inside one
    assert "-- transaction: none\n" in merge
    up = merge.split("-- migrate:up\n")[1].split("-- migrate:down\n")[0]
    assert [x.strip() for x in up.split(";") if x.strip()] == [
        "BEGIN", "ALTER TABLE work_shop.jobs ADD COLUMN done BOOLEAN DEFAULT false NOT NULL",
        "COMMIT", "CREATE INDEX CONCURRENTLY ix_jobs_car ON work_shop.jobs (car_id)",
        "BEGIN", "COMMENT ON TABLE work_shop.jobs IS 'work shop jobs'", "COMMIT"], up
    # a file without an autocommit block has no BEGIN/COMMIT of Alembic's
    assert "BEGIN;" not in texts["d4e5f6a7b8c3"] and "COMMIT;" not in texts["d4e5f6a7b8c3"]
    assert "INSERT INTO cars.colours (code, name) VALUES ('wht', 'O''Brien white');" \
        in texts["d4e5f6a7b8c3"]
    # the files are valid for migd, and the graph is Alembic's
    p = migctl_local("--json", "revisions", "-d", out)
    assert p.returncode == X_OK, p.stderr
    graph = {r["revision"]: sorted(r["parents"]) for r in json.loads(p.stdout)["revisions"]}
    assert graph == {"a1b2c3d4e5f0": [], "b2c3d4e5f6a1": ["a1b2c3d4e5f0"],
                     "c3d4e5f6a7b2": ["b2c3d4e5f6a1"], "d4e5f6a7b8c3": ["b2c3d4e5f6a1"],
                     "e5f6a7b8c9d4": ["c3d4e5f6a7b2", "d4e5f6a7b8c3"],
                     HEAD: ["e5f6a7b8c9d4"]}


def test_migd_builds_the_schema_alembic_builds(pg, make_db, migd_factory):
    ini = project()
    m = connected(migd_factory())
    import_ok(ini, m.migrations_dir)
    ok(m, "reload")
    p = m.migctl("upgrade", timeout=120)
    assert p.returncode == X_OK, (p.stdout, p.stderr)
    assert versions(m) == [HEAD]
    # Alembic, online, on a database of its own
    adb = make_db(pg)
    alembic(ini, pg, adb, "upgrade", "heads")
    assert_same_dump(dump(pg, adb), dump(pg, m.db), "migd from the import against Alembic",
                     "alembic", "migd")
    colours = "SELECT string_agg(code || '=' || name, ',' ORDER BY code) FROM cars.colours"
    assert q(m, colours) == pg.psql(colours, db=adb).strip() == \
        "blk=Black; glossy,red=Red,wht=O'Brien white"
    # Alembic reads migd's version table as its own
    assert HEAD in alembic(ini, pg, m.db, "current")
    # and both go down to base alike (the schemas stay, as Alembic leaves them)
    p = m.migctl("downgrade", "base", timeout=120)
    assert p.returncode == X_OK, (p.stdout, p.stderr)
    alembic(ini, pg, adb, "downgrade", "base")
    assert_same_dump(dump(pg, adb), dump(pg, m.db), "downgrade base", "alembic", "migd")


def test_label_head_resolves_as_alembic(migd_factory):
    ini = project()
    m = connected(migd_factory())
    import_ok(ini, m.migrations_dir)
    ok(m, "reload")
    script = ("import sys; from alembic.config import Config; "
              "from alembic.script import ScriptDirectory; "
              "s = ScriptDirectory.from_config(Config(sys.argv[1])); "
              "print(s.get_revision('workshop@head').revision)")
    p = subprocess.run(["/usr/bin/python3", "-c", script, ini], capture_output=True,
                       text=True, timeout=60, cwd=os.path.dirname(ini))
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == HEAD
    plan = ok(m, "plan", {"target": "workshop@head"})
    assert [s["revision"] for s in plan["steps"]][-1] == HEAD, plan
    res = ok(m, "upgrade", {"target": "workshop@head"})
    assert versions(m) == [HEAD], res
    e = err(m, "plan", {"target": "shop@head"}, kind="plan_error")
    assert "no revision declares the branch label 'shop'" in e["message"], e
    p = migctl_local("upgrade", "--sql", "-d", m.migrations_dir, "workshop@head")
    assert p.returncode == X_OK and "Upgrade from base to %s: 6 migrations" % HEAD in p.stdout, \
        p.stderr


def test_python_only_revision_is_named_and_nothing_written():
    ini = project("alembic_python_only")
    out = os.path.join(os.path.dirname(ini), "migrations")
    p = import_(ini, "--out", out)
    assert p.returncode == X_FAILED, (p.stdout, p.stderr)
    assert ("migctl: %s (versions/%s_round_prices.py) cannot be imported: it reads rows "
            "through op.get_bind() (line 17) (SELECT id, cents FROM prices)" % (
                PY_ONLY, PY_ONLY)) in p.stderr, p.stderr
    assert "nothing written" in p.stderr and "--allow-partial" in p.stderr
    assert not os.path.exists(out)
    p = import_(ini, "--out", out, "--json")
    assert p.returncode == X_FAILED and p.stderr == "", p.stderr
    doc = json.loads(p.stdout)
    assert doc["written"] is False and [x["revision"] for x in doc["problems"]] == [PY_ONLY]
    assert not os.path.exists(out)


def test_allow_partial_placeholder_refuses_to_run(migd_factory):
    ini = project("alembic_python_only")
    m = connected(migd_factory())
    p = import_(ini, "--out", m.migrations_dir, "--allow-partial")
    assert p.returncode == X_OK, (p.stdout, p.stderr)
    holder = file_of(m.migrations_dir, PY_ONLY)
    assert "migctl: wrote placeholder %s: it refuses to run until its SQL is written" % holder \
        in p.stderr, p.stderr
    text = read(holder)
    assert "\n-- unfinished: not imported from versions/%s_round_prices.py" % PY_ONLY in text
    ok(m, "reload")
    assert m.status()["state"] == "pending"     # the files load
    # a plan through it is refused before anything runs
    e = err(m, "upgrade", {}, kind="plan_error")
    assert re.search(r"%s:4: revision %s is unfinished \(not imported from " % (
        re.escape(holder), PY_ONLY), e["message"]), e
    assert versions(m) == []
    assert q(m, "SELECT to_regclass('public.prices') IS NULL") == "t"
    p = m.migctl("upgrade")
    assert p.returncode == X_FAILED and "is unfinished" in p.stderr, p.stderr
    p = migctl_local("upgrade", "--sql", "-d", m.migrations_dir)
    assert p.returncode == X_FAILED and "is unfinished" in p.stderr, p.stderr
    # what comes before it runs
    ok(m, "upgrade", {"target": "0a1b2c3d4e5f"})
    assert versions(m) == ["0a1b2c3d4e5f"]
    # a person writes its SQL and removes the line: it runs, and the next one
    with open(holder, "w") as f:
        f.write(re.sub(r"(?m)^-- unfinished: .*\n", "", text).replace(
            "-- migrate:down\n",
            "UPDATE prices SET cents = round(cents, -2);\n\n-- migrate:down\n"))
    ok(m, "reload")
    ok(m, "upgrade", {})
    assert versions(m) == ["2c3d4e5f6a7b"]
    # re-importing keeps the file the person wrote, and says so
    p = import_(ini, "--out", m.migrations_dir, "--allow-partial")
    assert p.returncode == X_OK, p.stderr
    assert "migctl: kept %s: it was edited since it was imported" % holder in p.stderr
    assert "UPDATE prices SET cents" in read(holder)


def test_reimport_keeps_edited_files_and_updates_the_rest():
    ini = project()
    root = os.path.dirname(ini)
    out = os.path.join(root, "migrations")
    import_ok(ini, out)
    before = {f: read(os.path.join(out, f)) for f in sql_files(out)}
    # nothing changed: nothing written
    p = import_ok(ini, out)
    assert "(6 unchanged)" in p.stdout, p.stdout
    assert {f: read(os.path.join(out, f)) for f in sql_files(out)} == before
    # a person edits one file; the Alembic project changes two revisions
    edited = file_of(out, "c3d4e5f6a7b2")
    with open(edited, "a") as f:
        f.write("-- reviewed: keep the check constraint\n")
    mine = read(edited)
    hand = file_of(out, "a1b2c3d4e5f0")
    with open(hand, "w") as f:          # rewritten by hand, import line gone
        f.write("-- revision: a1b2c3d4e5f0\n-- down_revision: none\n\n-- migrate:up\n"
                "CREATE SCHEMA IF NOT EXISTS cars;\n")
    for rev in ("c3d4e5f6a7b2", "d4e5f6a7b8c3"):
        path = [os.path.join(root, "versions", f) for f in os.listdir(os.path.join(root, "versions"))
                if f.startswith(rev)][0]
        src = read(path).replace('server_default=""', 'server_default="-"').replace(
            "'blk' WHERE", "'red' WHERE")
        with open(path, "w") as f:
            f.write(src)
    p = import_ok(ini, out)
    assert "migctl: kept %s: it was edited since it was imported" % edited in p.stderr, p.stderr
    assert "migctl: kept %s: it was not written by import" % hand in p.stderr, p.stderr
    assert "updated %s" % file_of(out, "d4e5f6a7b8c3") in p.stdout, p.stdout
    assert "(1 updated, 3 unchanged, 2 kept)" in p.stdout, p.stdout
    assert read(edited) == mine
    assert "SET colour = 'red'" in read(file_of(out, "d4e5f6a7b8c3"))
    assert len(sql_files(out)) == 6


def test_import_errors_are_clear(migd_factory):
    ini = project()
    root = os.path.dirname(ini)
    out = os.path.join(root, "migrations")
    # no such file
    p = import_(os.path.join(root, "nope.ini"), "--out", out)
    assert p.returncode == X_FAILED and "nope.ini: no such file (give the project's " \
        "alembic.ini)" in p.stderr, p.stderr
    # a Python without Alembic
    wrapper = os.path.join(root, "python-without-site")
    with open(wrapper, "w") as f:
        f.write("#!/bin/sh\nexec /usr/bin/python3 -S \"$@\"\n")
    os.chmod(wrapper, 0o755)
    p = import_(ini, "--out", out, env={"MIGCTL_PYTHON": wrapper})
    assert p.returncode == X_FAILED and "Alembic is not installed for /usr/bin/python3" \
        in p.stderr and "python3-alembic" in p.stderr, p.stderr
    p = import_(ini, "--out", out, env={"MIGCTL_PYTHON": "/nonexistent/python3"})
    assert p.returncode == X_FAILED and "cannot run /nonexistent/python3" in p.stderr, p.stderr
    # the project's own imports missing (env.py imports its models package)
    shutil.rmtree(os.path.join(root, "app"))
    p = import_(ini, "--out", out)
    assert p.returncode == X_FAILED, p.stderr
    assert "No module named 'app'" in p.stderr and "PYTHONPATH" in p.stderr, p.stderr
    assert not os.path.exists(out)
    # an Alembic id migd cannot take: refused, also with --allow-partial
    shutil.copytree(os.path.join(FIXTURES, "alembic_project", "app"), os.path.join(root, "app"))
    bad = os.path.join(root, "versions", "f6a7b8c9d0e5_invoices.py")
    with open(bad) as f:
        src = f.read()
    with open(bad, "w") as f:
        f.write(src.replace('branch_labels = None', 'branch_labels = ("base",)'))
    p = import_(ini, "--out", out, "--allow-partial")
    assert p.returncode == X_FAILED, p.stderr
    assert "f6a7b8c9d0e5 (versions/f6a7b8c9d0e5_invoices.py) cannot be imported: its branch " \
        "label 'base' is reserved in migd" in p.stderr, p.stderr
    assert not os.path.exists(out)
    # --out names a file: said, no Python traceback
    with open(bad, "w") as f:
        f.write(src)
    with open(out, "w") as f:
        f.write("not a directory\n")
    p = import_(ini, "--out", out)
    assert p.returncode == X_FAILED, p.stderr
    assert "migctl: --out %s exists and is not a directory; nothing written\n" % out in \
        p.stderr and "Traceback" not in p.stderr, p.stderr
    os.unlink(out)
    # usage
    p = import_(ini, "--out", out, "-c", "/nonexistent.conf")
    assert p.returncode == X_USAGE and "give --out DIR or -c CONFIG, not both" in p.stderr
    p = migctl_local("import", "alembix", ini)
    assert p.returncode == X_USAGE and "did you mean 'alembic'?" in p.stderr, p.stderr
    p = migctl_local("import", "alembic")
    assert p.returncode == X_USAGE, p.stderr
    assert not os.path.exists(out)


def test_import_into_the_configured_directory(migd_factory):
    ini = project()
    m = migd_factory(start=False)
    m.write_config()
    p = migctl_local("import", "alembic", ini, "-c", m.config_path, timeout=120)
    assert p.returncode == X_OK, p.stderr
    assert "migctl: directory %s (from %s)" % (m.migrations_dir, m.config_path) in p.stderr
    assert len(sql_files(m.migrations_dir)) == 6
