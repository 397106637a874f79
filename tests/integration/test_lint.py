"""Deploy-safety lint (issue 15): `migctl lint` offline, and the
`[migrations] lint = off|warn|refuse` policy at apply time, against the real
migd and PostgreSQL.

The rules themselves are unit-tested (tests/unit/test_lint.c); here: exit
codes, FILE:LINE:COL, --json, the ignore annotations, a table created earlier
in the same run being new, and a refused run changing nothing.
"""

import json
import os
import subprocess

import migdtest
from migdtest import MIGCTL_BIN, clean_env
from engine_helpers import (X_CHECK, X_FAILED, X_OK, X_USAGE, connected, err, q,
                            ok, rel_exists, rev_text, versions, write_rev)

ORDERS = "CREATE TABLE public.orders (id bigint PRIMARY KEY, total bigint);"
INDEX = "CREATE INDEX orders_total ON public.orders (total);"


def offline(*args, cwd=None):
    """migctl with no daemon to talk to."""
    return subprocess.run([MIGCTL_BIN] + list(args), env=clean_env(), cwd=cwd,
                          capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


def files(tmp_path, *revs):
    """Revision files r1, r2... in a directory; revs are their up SQL."""
    paths = []
    for i, up in enumerate(revs, 1):
        p = tmp_path / ("%04d_r%d.sql" % (i, i))
        p.write_text(rev_text("r%d" % i, "none" if i == 1 else "r%d" % (i - 1),
                              up))
        paths.append(str(p))
    return paths


# ---- migctl lint, offline -----------------------------------------------------

def test_lint_files_exit_codes_and_positions(tmp_path):
    """An error finding exits 4 naming FILE:LINE:COL, the rule, the lock and
    the alternative; a warning alone exits 0."""
    bad, warn = files(tmp_path, "SELECT 1;\n  " + INDEX,
                      "ALTER TABLE public.orders RENAME TO purchases;")
    p = offline("lint", bad)
    assert p.returncode == X_CHECK, p.stdout + p.stderr
    # the header takes 4 lines: SELECT is on line 5, the index on line 6
    assert ("%s:6:3: error: require-concurrent-index-creation: CREATE INDEX "
            "orders_total on public.orders without CONCURRENTLY" % bad) in p.stdout
    assert "lock: SHARE on the table (blocks writes)" in p.stdout
    assert "instead: CREATE INDEX CONCURRENTLY" in p.stdout
    assert "1 file: 1 error, 0 warnings" in p.stdout
    p = offline("lint", warn)
    assert p.returncode == X_OK, p.stdout + p.stderr
    assert "warning: renaming-table" in p.stdout


def test_lint_json(tmp_path):
    bad, = files(tmp_path, INDEX)
    p = offline("lint", "--json", bad)
    assert p.returncode == X_CHECK, p.stderr
    doc = json.loads(p.stdout)
    assert doc["errors"] == 1 and doc["files"] == 1
    f, = doc["findings"]
    assert f == {"file": bad, "line": 5, "column": 1, "severity": "error",
                 "rule": "require-concurrent-index-creation",
                 "message": "CREATE INDEX orders_total on public.orders "
                            "without CONCURRENTLY",
                 "lock": f["lock"], "safe": f["safe"], "ignored": None}
    assert f["lock"].startswith("SHARE")


def test_lint_files_are_one_run_directory_revisions_alone(tmp_path):
    """FILE...: a table an earlier FILE creates is new (no finding for its
    index); without FILE each revision of the directory is linted alone, so
    the same index is a finding."""
    paths = files(tmp_path, ORDERS, INDEX)
    p = offline("lint", *paths)
    assert p.returncode == X_OK, p.stdout + p.stderr
    assert "require-concurrent-index-creation" not in p.stdout
    p = offline("lint", paths[1])
    assert p.returncode == X_CHECK, p.stdout
    p = offline("lint", "-d", str(tmp_path))
    assert p.returncode == X_CHECK, p.stdout + p.stderr
    assert "0002_r2.sql:5:1: error: require-concurrent-index-creation" in p.stdout
    assert "2 files: 1 error" in p.stdout


def test_lint_ignore_annotations(tmp_path):
    """'-- migd:lint-ignore RULE why' above a statement and '-- lint-ignore:'
    in the header: the finding is shown as ignored and does not count."""
    p = tmp_path / "0001_a.sql"
    p.write_text("-- down_revision: none\n-- lint-ignore: ban-drop-table "
                 "archived in ticket 12\n-- migrate:up\n"
                 "DROP TABLE public.old;\n"
                 "-- migd:lint-ignore require-concurrent-index-creation "
                 "the table is tiny\n" + INDEX + "\n")
    r = offline("lint", str(p))
    assert r.returncode == X_OK, r.stdout + r.stderr
    assert ("ban-drop-table: DROP TABLE public.old (ignored, line 2: "
            "lint-ignore: ban-drop-table archived in ticket 12)") in r.stdout
    assert ("(ignored, line 5: migd:lint-ignore "
            "require-concurrent-index-creation the table is tiny)") in r.stdout
    assert "0 errors, 0 warnings, 0 info, 2 ignored" in r.stdout
    # an ignore comment for another rule does not hide this one
    p.write_text(p.read_text().replace("-- migd:lint-ignore require-concurrent-"
                                       "index-creation", "-- migd:lint-ignore "
                                       "ban-drop-column"))
    r = offline("lint", str(p))
    assert r.returncode == X_CHECK, r.stdout


TEAMS = os.path.join(migdtest.REPO, "tests", "fixtures", "lint_teams")


def test_lint_files_of_other_tools_and_plain_sql(tmp_path):
    """FILE... are read as migd reads them in a directory: goose's and
    dbmate's files with their annotations, golang-migrate's up files, and
    plain SQL under a name no tool reads is linted whole, as Squawk does."""
    goose = os.path.join(TEAMS, "goose", "20240303120000_invoices_amount_bigger.sql")
    p = offline("lint", goose)
    assert p.returncode == X_CHECK, p.stdout + p.stderr
    assert goose + ":2:1: error: changing-column-type: ALTER COLUMN amount TYPE" in p.stdout
    assert goose + ":3:1: error: adding-required-field" in p.stdout
    # goose's NO TRANSACTION: statement by statement, so prefer-robust-stmts
    cic = os.path.join(TEAMS, "goose", "20240302090000_invoices_customer_idx.sql")
    p = offline("lint", cic)
    assert p.returncode == X_OK, p.stdout + p.stderr
    assert cic + ":3:1: warning: prefer-robust-stmts" in p.stdout
    dbmate = os.path.join(TEAMS, "dbmate", "20240403000000_tickets_unique_title.sql")
    p = offline("lint", dbmate)
    assert p.returncode == X_CHECK, p.stdout + p.stderr
    assert dbmate + ":2:1: error: disallowed-unique-constraint" in p.stdout
    assert dbmate + ":3:1: error: adding-foreign-key-constraint" in p.stdout
    # the directory as one run: the tables are created in its first files
    d = sorted(os.listdir(os.path.join(TEAMS, "dbmate")))
    p = offline("lint", *[os.path.join(TEAMS, "dbmate", f) for f in d])
    assert p.returncode == X_OK, p.stdout + p.stderr
    up = tmp_path / "000002_index.up.sql"
    up.write_text("SELECT 1;\nCREATE INDEX i ON t (a);\n")
    down = tmp_path / "000002_index.down.sql"
    down.write_text("DROP INDEX i;\n")
    plain = tmp_path / "add_index.sql"
    plain.write_text("\n  CREATE INDEX j ON t (a);\n")
    p = offline("lint", "--json", str(up), str(down), str(plain))
    assert p.returncode == X_CHECK, p.stdout + p.stderr
    doc = json.loads(p.stdout)
    assert [(f["file"], f["line"], f["column"], f["rule"])
            for f in doc["findings"]] == [
        (str(up), 2, 1, "require-concurrent-index-creation"),
        (str(plain), 2, 3, "require-concurrent-index-creation")]
    assert doc["notes"] == ["%s: not linted: a down migration's file (lint "
                            "reads what upgrades run)" % down]
    # with -c, the configuration's format: a goose file is no dbmate one
    conf = tmp_path / "migd.conf"
    conf.write_text("[database]\nconninfo = dbname=x\n[migrations]\n"
                    "directory = %s\nformat = flyway\n" % tmp_path)
    p = offline("lint", "-c", str(conf), goose)
    assert p.returncode == X_FAILED, p.stdout + p.stderr
    assert "not a flyway migration name" in p.stdout + p.stderr


def test_lint_ignore_header_in_other_tools_files(tmp_path):
    """'-- lint-ignore:' above goose's and dbmate's up marker, and among the
    leading comments of a golang-migrate up file, is read as in migd's
    header; an unknown rule there is an error of the file."""
    goose = os.path.join(TEAMS, "goose", "20240304080000_drop_invoice_drafts.sql")
    dbmate = os.path.join(TEAMS, "dbmate", "20240404000000_drop_ticket_notes.sql")
    up = tmp_path / "000003_drop_legacy.up.sql"
    up.write_text("-- drop the legacy table\n-- lint-ignore: ban-drop-table "
                  "unused since 2023\n\nDROP TABLE legacy;\n"
                  "-- lint-ignore: ban-drop-column too late: SQL came first\n"
                  "ALTER TABLE t DROP COLUMN c;\n")
    p = offline("lint", "--json", goose, dbmate, str(up))
    assert p.returncode == X_OK, p.stdout + p.stderr
    got = [(f["file"], f["line"], f["rule"], f["ignored"])
           for f in json.loads(p.stdout)["findings"]]
    assert got == [
        (goose, 3, "ban-drop-table", "line 1: lint-ignore: ban-drop-table "
         "invoice_drafts was never read by the app (ticket 88)"),
        (dbmate, 4, "ban-drop-column", "line 2: lint-ignore: ban-drop-column,"
         "ban-drop-table moved to the comments service"),
        (dbmate, 5, "ban-drop-table", "line 2: lint-ignore: ban-drop-column,"
         "ban-drop-table moved to the comments service"),
        (str(up), 4, "ban-drop-table", "line 2: lint-ignore: ban-drop-table "
         "unused since 2023"),
        (str(up), 6, "ban-drop-column", None)], got
    # the directories load it too (as the daemon does)
    p = offline("lint", "-d", os.path.join(TEAMS, "goose"))
    assert "(ignored, line 1: lint-ignore: ban-drop-table" in p.stdout, p.stdout
    bad = tmp_path / "20240101000000_bad.sql"
    bad.write_text("-- lint-ignore: ban-drop-tabel typo\n-- +goose Up\n"
                   "DROP TABLE x;\n")
    p = offline("lint", str(bad))
    assert p.returncode == X_FAILED, p.stdout + p.stderr
    assert ("%s:1: unknown lint rule 'ban-drop-tabel' in 'lint-ignore'" % bad
            in p.stderr), p.stderr


def test_lint_bad_input(tmp_path):
    """A file with problems, a missing file, an unknown rule in the header:
    exit 1 naming each; an option lint does not take: exit 2."""
    good, = files(tmp_path, INDEX)
    broken = tmp_path / "b.sql"
    broken.write_text("-- down_revision: none\n-- lint-ignore: no-such-rule "
                      "x\n-- migrate:up\nSELEC 1;\n")
    r = offline("lint", "--json", good, str(broken), str(tmp_path / "gone.sql"))
    assert r.returncode == X_FAILED, r.stdout + r.stderr
    e = json.loads(r.stdout)["error"]
    errors = e["data"]["errors"]
    assert e["data"]["kind"] == "invalid_migrations"
    assert any("b.sql:2: unknown lint rule 'no-such-rule'" in x for x in errors), errors
    assert any("gone.sql: No such file or directory" in x for x in errors), errors
    r = offline("lint", "-d", str(tmp_path), good)
    assert r.returncode == X_USAGE, r.stdout + r.stderr
    assert "lint takes -d DIR or FILE..., not both" in r.stderr
    r = offline("lint", "--dry-run", good)
    assert r.returncode == X_USAGE, r.stderr
    assert "lint takes no --dry-run" in r.stderr


# ---- lint at apply time ---------------------------------------------------------

def test_warn_shows_findings_in_plan_and_upgrade(migd_factory):
    """The default, warn: the plan and the run's reply carry the findings;
    the run goes ahead."""
    m = connected(migd_factory())
    write_rev(m, "0001_orders.sql", "r1", up=ORDERS)
    ok(m, "upgrade", {"target": "head"})
    write_rev(m, "0002_index.sql", "r2", down="r1", up=INDEX)
    ok(m, "reload")
    plan = ok(m, "plan", {"target": "head"})
    f, = plan["lint"]
    assert f["rule"] == "require-concurrent-index-creation"
    assert f["file"].endswith("0002_index.sql") and f["line"] == 5
    assert f["revision"] == "r2" and plan["runnable"] is True
    p = m.migctl("plan", "head")
    assert p.returncode == X_OK, p.stderr
    assert "lint: " in p.stdout and "0002_index.sql:5:1: error: " \
        "require-concurrent-index-creation" in p.stdout
    p = m.migctl("upgrade", "head")
    assert p.returncode == X_OK, p.stdout + p.stderr
    assert "require-concurrent-index-creation" in p.stdout
    assert versions(m) == ["r2"]


def test_refuse_stops_the_run_before_anything_runs(migd_factory):
    """lint = refuse: an error finding refuses the run (lint_refused, naming
    rule and FILE:LINE:COL), nothing runs; the ignore comment lets it run."""
    m = connected(migd_factory(overrides={("migrations", "lint"): "refuse"}))
    write_rev(m, "0001_orders.sql", "r1", up=ORDERS)
    ok(m, "upgrade", {"target": "head"})
    path = write_rev(m, "0002_index.sql", "r2", down="r1",
                     up="CREATE TABLE public.marker (id bigint);\n" + INDEX)
    ok(m, "reload")
    e = err(m, "upgrade", {"target": "head"}, kind="lint_refused")
    assert ("%s:6:1: require-concurrent-index-creation" % path) in e["message"]
    assert e["data"]["problems"][0]["rule"] == "require-concurrent-index-creation"
    assert not rel_exists(m, "public.marker")
    assert versions(m) == ["r1"]
    plan = ok(m, "plan", {"target": "head"})
    assert plan["runnable"] is False
    assert plan["problems"][0]["kind"] == "lint_refused"
    p = m.migctl("upgrade", "head")
    assert p.returncode == X_FAILED, p.stdout + p.stderr
    assert "require-concurrent-index-creation" in p.stderr
    # opted out on the line above: shown as ignored, and it runs
    write_rev(m, "0002_index.sql", "r2", down="r1",
              up="CREATE TABLE public.marker (id bigint);\n"
                 "-- migd:lint-ignore require-concurrent-index-creation "
                 "orders has 10 rows\n" + INDEX)
    ok(m, "reload")
    res = ok(m, "upgrade", {"target": "head"})
    assert res["lint"][0]["ignored"].startswith("line 6: migd:lint-ignore")
    assert versions(m) == ["r2"] and rel_exists(m, "public.marker")


def test_refuse_knows_a_table_created_in_the_same_run(migd_factory):
    """A table created by an earlier step of the run is new: its index, its
    foreign key and its NOT NULL are no finding, so refuse lets it run."""
    m = connected(migd_factory(overrides={("migrations", "lint"): "refuse"}))
    write_rev(m, "0001_orders.sql", "r1", up=ORDERS)
    write_rev(m, "0002_index.sql", "r2", down="r1", up=INDEX + "\n"
              "ALTER TABLE public.orders ALTER COLUMN total SET NOT NULL;")
    ok(m, "reload")
    res = ok(m, "upgrade", {"target": "head"})
    assert res.get("lint") == []
    assert versions(m) == ["r2"]


def test_off_does_not_lint(migd_factory):
    m = connected(migd_factory(overrides={("migrations", "lint"): "off"}))
    write_rev(m, "0001_orders.sql", "r1", up=ORDERS)
    ok(m, "upgrade", {"target": "head"})
    write_rev(m, "0002_index.sql", "r2", down="r1", up=INDEX)
    ok(m, "reload")
    assert "lint" not in ok(m, "plan", {"target": "head"})
    ok(m, "upgrade", {"target": "head"})
    assert versions(m) == ["r2"]


def test_refuse_lints_the_down_sections_a_downgrade_runs(migd_factory):
    """A downgrade is judged by the down sections it runs: an index built
    without CONCURRENTLY there refuses it, and nothing is undone."""
    m = connected(migd_factory(overrides={("migrations", "lint"): "refuse"}))
    write_rev(m, "0001_orders.sql", "r1", up=ORDERS, down_sql="DROP TABLE public.orders;")
    write_rev(m, "0002_col.sql", "r2", down="r1",
              up="ALTER TABLE public.orders ADD COLUMN note text;",
              down_sql="ALTER TABLE public.orders DROP COLUMN note;\n" + INDEX)
    ok(m, "reload")
    ok(m, "upgrade", {"target": "head"})
    e = err(m, "downgrade", {"target": "r1"}, kind="lint_refused")
    assert "0002_col.sql" in e["message"]
    assert "require-concurrent-index-creation" in e["message"]
    assert versions(m) == ["r2"]
    assert q(m, "SELECT count(*) FROM information_schema.columns "
                "WHERE table_name = 'orders' AND column_name = 'note'") == "1"
