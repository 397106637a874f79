"""Other tools' layouts read as they are (issue 14, point 1).

tests/fixtures/layouts/<tool>/ holds one project per tool, written the way
that tool writes them (golang-migrate's NNN_name.up.sql/.down.sql pairs,
sqlx's reversible pairs and a simple file, diesel's VERSION_name/up.sql and
down.sql, dbmate's -- migrate:up/down with transaction:false, goose's
annotations with StatementBegin/End, Flyway's V/U files with dotted
versions). Their SQL is that of tests/fixtures/realworld/ (the golang_migrate,
diesel and own_schema projects, in migd's own format), so each layout must
give the very schema migd gives for the same migrations as migd files. For
each: upgrade to head with format = TOOL and with format = auto, the
versions the tool's own, plan/status/revisions as for migd files, downgrade
to base back to the empty schema, `upgrade --sql` offline. A mixed directory
and bad versions are refused, with nothing run. dbmate itself (from npm, as
tests/ci.sh and bench/run.sh install it) migrates the dbmate fixture to the same schema as
migd.
"""

import glob
import hashlib
import json
import os
import shutil
import subprocess

import pytest

import migdtest
import schema_helpers
from schema_helpers import REALWORLD, assert_same_dump, migctl_ok
from engine_helpers import X_FAILED, X_OK, call, connected, ok, versions, write_file

LAYOUTS = os.path.join(migdtest.REPO, "tests", "fixtures", "layouts")
MIGCTL_BIN = migdtest.MIGCTL_BIN

# tool -> (the realworld fixture with the same SQL, the versions in order)
TOOLS = {
    "golang-migrate": ("golang_migrate", ["1", "2", "3", "4", "5", "6"]),
    "sqlx": ("own_schema", ["20240105101500", "20240106093000", "20240201120000",
                            "20240315080000"]),
    "diesel": ("diesel", ["00000000000000", "20240115093012", "20240116141500",
                          "20240202110000", "20240203080000", "20240310170000"]),
    "dbmate": ("golang_migrate", ["20240110090000", "20240110090500", "20240111120000",
                                  "20240112080000", "20240113100000", "20240114110000"]),
    "goose": ("own_schema", ["1", "2", "3", "4"]),
    "flyway": ("golang_migrate", ["1", "1.1", "2", "2.5", "10", "11"]),
}

MIGD_TABLES = ("public.alembic_version", "public.migd_history",
               "public.migd_history_id_seq", "public.schema_migrations")
NO_SCHEMAS = {("migrations", "schemas"): None}


def offline(*args):
    return subprocess.run([MIGCTL_BIN] + list(args), env=migdtest.clean_env(),
                          capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


def copy_tree(src, dst):
    """The fixture's files into the daemon's directory, subdirectories too."""
    for entry in sorted(os.listdir(src)):
        s = os.path.join(src, entry)
        if os.path.isdir(s):
            shutil.copytree(s, os.path.join(dst, entry))
        else:
            shutil.copy(s, os.path.join(dst, entry))


def layout_migd(migd_factory, tool, fmt, db=None):
    over = dict(NO_SCHEMAS)
    over[("migrations", "format")] = fmt
    m = connected(migd_factory(db=db, overrides=over))
    copy_tree(os.path.join(LAYOUTS, tool), m.migrations_dir)
    ok(m, "reload")
    return m


def dump(pg, db):
    return schema_helpers.dump(pg, db, MIGD_TABLES)


_reference = {}


def migd_reference(migd_factory, pg, make_db, realworld):
    """The schema migd gives for the same SQL as migd's own files."""
    if realworld not in _reference:
        db = make_db(pg)
        m = connected(migd_factory(db=db, overrides=NO_SCHEMAS))
        schema_helpers.copy_fixture(m, realworld)
        migctl_ok(m, "upgrade")
        _reference[realworld] = dump(pg, db)
    return _reference[realworld]


@pytest.mark.parametrize("fmt", ["tool", "auto"])
@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_layout_up_down_like_migd_files(migd_factory, pg, make_db, tool, fmt):
    realworld, order = TOOLS[tool]
    want = migd_reference(migd_factory, pg, make_db, realworld)
    empty = dump(pg, make_db(pg))
    db = make_db(pg)
    m = layout_migd(migd_factory, tool, tool if fmt == "tool" else "auto", db=db)

    # what the daemon read, and that it says so
    st = m.status()
    assert st["migrations"]["valid"] is True, st
    assert st["pending"] == len(order) and st["state"] == "pending", st
    assert "are read as %s migrations" % tool in m.log(), m.log()[-2000:]
    if fmt == "auto":
        assert "format = auto detected them" in m.log()
    revs = ok(m, "revisions")["revisions"]
    assert [r["revision"] for r in revs] == list(reversed(order)), revs
    assert revs[0]["parents"] == [order[-2]] and revs[-1]["parents"] == [], revs
    plan = ok(m, "plan", {})
    assert [s["revision"] for s in plan["steps"]] == order, plan

    # up: the schema of the same migrations as migd files
    migctl_ok(m, "upgrade")
    assert versions(m) == [order[-1]]
    assert m.status()["state"] == "up_to_date"
    assert_same_dump(want, dump(pg, db), "%s (format %s) against migd files" % (tool, fmt))

    if tool == "sqlx":
        # sqlx's simple files have no down: the last one cannot be undone
        p = m.migctl("downgrade", "-1")
        assert p.returncode == X_FAILED, (p.stdout, p.stderr)
        assert "revision %s has no .down.sql file" % order[-1] in \
            p.stdout + p.stderr, p.stdout + p.stderr
        assert versions(m) == [order[-1]]
        return
    # down one, then to base: back to the empty schema
    migctl_ok(m, "downgrade", "-1")
    assert versions(m) == [order[-2]]
    migctl_ok(m, "downgrade", "base")
    assert versions(m) == []
    assert_same_dump(empty, dump(pg, db), "%s: downgrade base" % tool)
    # and up again, one step at a time
    for _ in order:
        migctl_ok(m, "upgrade", "+1")
    assert versions(m) == [order[-1]]
    assert_same_dump(want, dump(pg, db), "%s: up again by steps" % tool)


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_layout_offline(migd_factory, tool):
    """migctl's offline commands read the layout as migd does: revisions with
    -d (auto) and -c (the configured format), upgrade --sql."""
    realworld, order = TOOLS[tool]
    over = dict(NO_SCHEMAS)
    over[("migrations", "format")] = tool
    m = migd_factory(overrides=over, start=False)
    copy_tree(os.path.join(LAYOUTS, tool), m.migrations_dir)
    p = offline("--json", "revisions", "-d", m.migrations_dir)
    assert p.returncode == X_OK, p.stderr
    assert [r["revision"] for r in json.loads(p.stdout)["revisions"]] == \
        list(reversed(order))
    p = offline("--json", "revisions", "-c", m.config_path)
    assert p.returncode == X_OK, p.stderr
    p = offline("-c", m.config_path, "upgrade", "--sql", "base:head")
    assert p.returncode == X_OK, p.stderr
    for v in order:
        assert "'%s'" % v in p.stdout, (v, p.stdout[-2000:])
    # migd -n says what it read
    p = migdtest.run_migd(["-n", "-c", m.config_path])
    assert "# format: %s\n" % tool in p.stdout, p.stdout + p.stderr
    assert "format = %s\n" % tool in p.stdout, p.stdout


def test_auto_detects_and_migd_n_says_so(migd_factory):
    m = migd_factory(overrides=NO_SCHEMAS, start=False)
    copy_tree(os.path.join(LAYOUTS, "goose"), m.migrations_dir)
    p = migdtest.run_migd(["-n", "-c", m.config_path])
    assert p.returncode == 0, p.stderr
    assert "# format: goose (detected)\n" in p.stdout, p.stdout
    assert "format = auto\n" in p.stdout, p.stdout


def test_status_names_the_detected_layout(migd_factory, pg):
    m = layout_migd(migd_factory, "diesel", "auto")
    assert m.status()["migrations"]["format"] == "diesel"
    p = m.migctl("status")
    assert "(diesel files, 6 revisions, head 20240310170000)" in p.stdout, p.stdout
    own = connected(migd_factory(overrides=NO_SCHEMAS))
    write_file(own, "0001_a.sql", "-- revision: 0001\n-- down_revision: none\n"
               "-- migrate:up\nSELECT 1;\n")
    ok(own, "reload")
    assert own.status()["migrations"]["format"] == "migd"
    assert "(1 revision, head 0001)" in own.migctl("status").stdout


def test_mixed_directory_refused(migd_factory, pg):
    m = layout_migd(migd_factory, "golang-migrate", "auto")
    # a dbmate file beside golang-migrate's: nothing may run
    write_file(m, "20240101000000_extra.sql", "-- migrate:up\nCREATE TABLE public.x ();\n"
               "-- migrate:down\nDROP TABLE public.x;\n")
    st = m.status()
    assert st["state"] == "invalid_migrations", st
    errors = "\n".join(st["migrations"]["errors"])
    assert "files of 2 migration layouts in one directory: 1 dbmate" in errors, errors
    assert "12 golang-migrate (" in errors, errors
    assert "set format = TOOL under [migrations]" in errors, errors
    p = m.migctl("upgrade")
    assert p.returncode == X_FAILED, (p.stdout, p.stderr)
    assert versions(m) == []
    assert pg.psql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public' "
                   "AND tablename IN ('accounts', 'x')", m.db) == "0"
    # format = golang-migrate reads its own files and skips the other, saying so
    m.update({("migrations", "format"): "golang-migrate"})
    m.write_config()
    ok(m, "reload")
    st = m.status()
    assert st["migrations"]["valid"] is True, st
    assert "20240101000000_extra.sql: skipped: not a golang-migrate migration name" \
        in m.log(), m.log()[-2000:]


@pytest.mark.parametrize("tool,fmt", [("dbmate", "sqlx"), ("goose", "sqlx"),
                                      ("goose", "golang-migrate")])
def test_another_tools_down_marker_refused_under_the_wrong_format(migd_factory, pg,
                                                                  tool, fmt):
    """A dbmate or goose project under format = sqlx (its names are sqlx's
    simple files): read whole, each file's down SQL would run with its up
    and drop what the up made. Refused, naming the format to set; nothing
    runs."""
    m = layout_migd(migd_factory, tool, "auto")
    if fmt == "golang-migrate":     # the team renamed goose's files, kept the text
        for f in glob.glob(os.path.join(m.migrations_dir, "*.sql")):
            os.rename(f, f[:-4] + ".up.sql")
    m.update({("migrations", "format"): fmt})
    m.write_config()
    m.migctl("reload")
    st = m.status()
    assert st["state"] == "invalid_migrations", st
    errors = "\n".join(st["migrations"]["errors"])
    mark = "-- migrate:down" if tool == "dbmate" else "-- +goose Down"
    assert "'%s' begins a down section" % mark in errors, errors
    assert "but a %s file is one migration, run whole" % fmt in errors, errors
    assert "would run with the up; if this is a %s project, set format = %s" % (
        tool, tool) in errors, errors
    p = m.migctl("upgrade")
    assert p.returncode == X_FAILED, (p.stdout, p.stderr)
    assert versions(m) in ([], None)
    assert pg.psql("SELECT count(*) FROM pg_tables WHERE schemaname NOT IN "
                   "('pg_catalog', 'information_schema') AND tablename NOT IN "
                   "('alembic_version', 'migd_history')", m.db) == "0"
    # the right format reads them
    m.update({("migrations", "format"): tool if fmt != "golang-migrate" else "goose"})
    m.write_config()
    if fmt == "golang-migrate":
        for f in glob.glob(os.path.join(m.migrations_dir, "*.up.sql")):
            os.rename(f, f[:-7] + ".sql")
    ok(m, "reload")
    assert m.status()["migrations"]["valid"] is True


@pytest.mark.parametrize("name,text,want", [
    ("V1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16__long.sql", "SELECT 1;\n",
     "flyway version '1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16' cannot be a revision id: "
     "it is 38 bytes long, the limit is 32 (migd keeps versions in "
     "alembic_version.version_num, varchar(32)); rename the file"),
    ("R__views.sql", "SELECT 1;\n",
     "a Flyway repeatable migration (R__): migd runs each migration once"),
    ("V1__again.sql", "SELECT 1;\n", "version 1 is also"),
    # a callback Flyway runs at every migrate: never silently left out
    ("afterMigrate__grants.sql", "GRANT SELECT ON ALL TABLES IN SCHEMA public TO "
     "PUBLIC;\n", "afterMigrate__grants.sql: a Flyway callback (afterMigrate), which "
     "Flyway runs at every migrate and migd never runs"),
    # Flyway substitutes placeholders; migd does not, and says so at the line
    ("V12__Grants.sql", "-- read access\nGRANT SELECT ON accounts TO ${appUser};\n",
     "V12__Grants.sql:2: ${appUser} is a placeholder (as Flyway writes them), "
     "which migd sends as it is, not substituted: write its value into the file"),
])
def test_bad_flyway_versions_refused(migd_factory, pg, name, text, want):
    m = layout_migd(migd_factory, "flyway", "flyway")
    write_file(m, name, text)
    st = m.status()
    assert st["state"] == "invalid_migrations", st
    errors = "\n".join(st["migrations"]["errors"])
    assert want in errors, errors
    assert m.migctl("upgrade").returncode == X_FAILED
    assert versions(m) == []
    assert pg.psql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public' "
                   "AND tablename = 'accounts'", m.db) == "0"


def test_bad_numeric_versions_refused(migd_factory, pg):
    m = layout_migd(migd_factory, "golang-migrate", "golang-migrate")
    write_file(m, "99999999999999999999_big.up.sql", "SELECT 1;\n")
    st = m.status()
    assert st["state"] == "invalid_migrations", st
    errors = "\n".join(st["migrations"]["errors"])
    assert "version 99999999999999999999 is too large for golang-migrate (a uint64)" \
        in errors, errors
    assert m.migctl("upgrade").returncode == X_FAILED
    assert versions(m) == []


@pytest.mark.parametrize("tool,up,down", [
    ("golang-migrate", "7_orders.up.sql", "7_orders.down.sql"),
    ("diesel", "2024-04-01-000000_orders/up.sql", "2024-04-01-000000_orders/down.sql"),
])
def test_down_file_is_named_in_plan_lint_and_errors(migd_factory, pg, tool, up, down):
    """A down section in a file of its own: the plan, lint, the error of a
    failing statement and the history name that file and its line, not the
    up file's."""
    m = layout_migd(migd_factory, tool, tool)
    write_file(m, up, "CREATE TABLE orders7 (id int);\n")
    write_file(m, down, "-- the down file\n\nDROP TABLE orders7_typo;\n")
    migctl_ok(m, "upgrade")
    head = versions(m)
    plan = ok(m, "plan", {"target": "-1"})
    step = plan["steps"][0]
    assert step["file"].endswith(down), step
    assert any(f["file"].endswith(down) and f["line"] == 3 and
               f["rule"] == "ban-drop-table" for f in plan.get("lint", [])), plan
    p = m.migctl("downgrade", "-1")
    assert p.returncode == X_FAILED, (p.stdout, p.stderr)
    assert "%s:3: table \"orders7_typo\" does not exist" % down in p.stderr, p.stderr
    assert up not in p.stderr, p.stderr
    assert versions(m) == head
    assert pg.psql("SELECT to_regclass('orders7') IS NOT NULL", m.db) == "t"
    row = pg.psql("SELECT file || ' ' || success FROM migd_history "
                  "ORDER BY id DESC LIMIT 1", m.db)
    assert row.endswith(down + " false"), row
    # refused when the files load: the down file and its line
    write_file(m, down, "-- the down file\nDROP TABLE orders7;\nROLLBACK;\n")
    st = m.status()
    assert st["state"] == "invalid_migrations", st
    errors = "\n".join(st["migrations"]["errors"])
    assert "%s:3: ROLLBACK inside a migration" % down in errors, errors


def test_goose_migrates_with_annotations(migd_factory, pg):
    """NO TRANSACTION: a goose file with CREATE INDEX CONCURRENTLY runs."""
    m = layout_migd(migd_factory, "goose", "goose")
    write_file(m, "00005_concurrently.sql",
               "-- +goose NO TRANSACTION\n-- +goose Up\n"
               "CREATE INDEX CONCURRENTLY articles_title_idx ON articles (title);\n"
               "-- +goose Down\nDROP INDEX CONCURRENTLY articles_title_idx;\n")
    migctl_ok(m, "upgrade")
    assert versions(m) == ["5"]
    assert pg.psql("SELECT count(*) FROM pg_indexes WHERE indexname = "
                   "'articles_title_idx'", m.db) == "1"
    migctl_ok(m, "downgrade", "-1")
    assert versions(m) == ["4"]


def _dbmate_bin():
    cache = os.path.join(os.environ.get("XDG_CACHE_HOME") or
                         os.path.expanduser("~/.cache"), "migd-bench", "npm")
    for f in sorted(glob.glob(os.path.join(cache, "node_modules", "@dbmate", "*",
                                           "bin", "dbmate"))):
        if os.access(f, os.X_OK):
            return f
    return shutil.which("dbmate")


def test_dbmate_itself_gives_the_same_schema(migd_factory, pg, make_db):
    """dbmate (npm, installed by bench/run.sh) migrating the fixture and migd
    migrating it give the same pg_dump --schema-only."""
    dbmate = _dbmate_bin()
    if dbmate is None:
        pytest.skip("dbmate is not installed (tests/ci.sh installs it from npm)")
    ref = make_db(pg)
    url = "postgres://postgres@localhost/%s?socket=%s&port=%d&sslmode=disable" % (
        ref, pg.sockdir, pg.port)
    p = subprocess.run([dbmate, "--url", url, "--migrations-dir",
                        os.path.join(LAYOUTS, "dbmate"), "--no-dump-schema", "up"],
                       env=migdtest.clean_env(), capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    db = make_db(pg)
    m = layout_migd(migd_factory, "dbmate", "auto", db=db)
    migctl_ok(m, "upgrade")
    assert_same_dump(dump(pg, ref), dump(pg, db), "dbmate against migd",
                     "dbmate", "migd")
    # the versions are dbmate's own
    got = pg.psql("SELECT version FROM schema_migrations ORDER BY 1", ref).split()
    assert got == TOOLS["dbmate"][1] and versions(m) == [got[-1]]


def test_file_inserted_below_applied_ones_is_reported_not_run(migd_factory, pg):
    """The chain follows the tool's order: a dbmate file dated between two
    applied ones becomes a revision the version table skips, which status
    reports and upgrade refuses until asked (apply_skipped), as for migd's
    own files after a rebase."""
    m = layout_migd(migd_factory, "dbmate", "dbmate")
    migctl_ok(m, "upgrade")
    write_file(m, "20240111000000_late.sql",
               "-- migrate:up\nCREATE TABLE public.late ();\n"
               "-- migrate:down\nDROP TABLE public.late;\n")
    st = m.status()
    assert st["state"] == "skipped", st
    assert [s["revision"] for s in st["skipped"]] == ["20240111000000"], st
    p = m.migctl("upgrade")
    assert p.returncode == X_FAILED, (p.stdout, p.stderr)
    assert pg.psql("SELECT count(*) FROM pg_tables WHERE tablename = 'late'", m.db) == "0"
    ok(m, "upgrade", {"apply_skipped": True})
    assert pg.psql("SELECT count(*) FROM pg_tables WHERE tablename = 'late'", m.db) == "1"
    assert m.status()["state"] == "up_to_date"


NEW_FILES = {
    "golang-migrate": ["000007_add_things.up.sql", "000007_add_things.down.sql"],
    "goose": ["00005_add_things.sql"],
    "flyway": ["V12__add_things.sql", "U12__add_things.sql"],
}


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_migctl_new_writes_the_tools_own_files(tmp_path, tool):
    """new in another tool's directory writes the next migration as that
    tool's create command would; the directory stays one layout, and the
    new migration is the head."""
    d = str(tmp_path / tool)
    shutil.copytree(os.path.join(LAYOUTS, tool), d)
    before = set(glob.glob(d + "/**", recursive=True))
    p = offline("--json", "new", "-m", "Add things", "-d", d)
    assert p.returncode == X_OK, (p.stdout, p.stderr)
    doc = json.loads(p.stdout)
    assert doc["format"] == tool and doc["down_revision"] == TOOLS[tool][1][-1], doc
    made = set(glob.glob(d + "/**", recursive=True)) - before
    paths = [doc["path"]] + ([doc["down_path"]] if doc["down_path"] else [])
    assert set(paths) <= made, (paths, made)
    if tool in NEW_FILES:
        assert [os.path.relpath(x, d) for x in paths] == NEW_FILES[tool], paths
    revs = json.loads(offline("--json", "revisions", "-d", d).stdout)["revisions"]
    assert revs[0]["revision"] == doc["revision"] and revs[0]["head"], revs[0]
    assert revs[1]["revision"] == TOOLS[tool][1][-1], revs[1]
    # a second one goes on top of the first
    p = offline("new", "-m", "more", "-d", d)
    assert p.returncode == X_OK, p.stderr
    revs = json.loads(offline("--json", "revisions", "-d", d).stdout)["revisions"]
    assert revs[1]["revision"] == doc["revision"], revs[:2]


def test_migctl_new_in_empty_directory_follows_configured_format(tmp_path):
    d = tmp_path / "db"
    d.mkdir()
    conf = tmp_path / "migd.conf"
    conf.write_text("[database]\nconninfo = dbname=x\n[migrations]\n"
                    "directory = db\nformat = dbmate\n")
    p = offline("new", "-m", "init", "-c", str(conf))
    assert p.returncode == X_OK, p.stderr
    (f,) = os.listdir(str(d))
    assert f.endswith("_init.sql") and len(f.split("_")[0]) == 14, f
    assert (d / f).read_text() == "-- migrate:up\n\n\n-- migrate:down\n\n"


def test_migctl_merge_and_head_refused_in_another_tools_directory(tmp_path):
    """Another tool's migrations form one line: merge and --head refuse,
    and nothing is written."""
    d = str(tmp_path / "goose")
    shutil.copytree(os.path.join(LAYOUTS, "goose"), d)
    before = sorted(os.listdir(d))
    p = offline("merge", "-m", "merge", "-d", d)
    assert p.returncode == X_FAILED, (p.stdout, p.stderr)
    assert "holds goose migrations, which form one line ordered by version: " \
        "there are no branches to merge" in p.stderr, p.stderr
    p = offline("new", "-m", "x", "--head", "3", "-d", d)
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert "--head: goose migrations form one line ordered by version" in p.stderr
    assert sorted(os.listdir(d)) == before


def test_migctl_new_flyway_timestamped_versions_stay_timestamps(tmp_path):
    """A Flyway project versioned by timestamps gets the next timestamp, not
    the next small number (which would sort below the newest)."""
    d = str(tmp_path / "fw")
    os.mkdir(d)
    with open(os.path.join(d, "V1__init.sql"), "w") as f:
        f.write("CREATE TABLE a (id int);\n")
    with open(os.path.join(d, "V20240101120000__later.sql"), "w") as f:
        f.write("CREATE TABLE b (id int);\n")
    p = offline("new", "-m", "next", "-d", d)
    assert p.returncode == X_OK, p.stderr
    new = set(os.listdir(d)) - {"V1__init.sql", "V20240101120000__later.sql"}
    (f,) = new
    assert f.startswith("V2026") or f.startswith("V20"), f
    assert len(f[1:f.index("__")]) == 14 and f > "V20240101120000", f


# tool -> a file to edit (an up or whole file of a migration in the middle)
EDITS = {
    "diesel": "2024-02-02-110000_add_archived_post_status/up.sql",
    "golang-migrate": "000005_create_bookings.up.sql",
    "dbmate": "20240113100000_create_bookings.sql",
    "flyway": "V2__Add_accounts_profile.sql",
    "sqlx": "20240201120000_utils_audit.up.sql",
    "goose": "00003_utils_audit.sql",
}


@pytest.mark.parametrize("tool", sorted(EDITS))
def test_reload_reads_only_changed_files_of_another_layout(migd_factory, tool):
    """After an edit, a reload of another tool's directory reads that file
    again and takes the others from the last load unread (their parents
    settled afresh), as for migd's own files: the load's log line counts
    them; the edit is in the plan."""
    order = TOOLS[tool][1]
    m = layout_migd(migd_factory, tool, tool)
    assert m.status()["pending"] == len(order)
    path = os.path.join(m.migrations_dir, EDITS[tool])
    with open(path) as f:
        lines = f.read().splitlines(True)
    # in the up section: after dbmate's or goose's up marker, else at the end
    at = [i for i, l in enumerate(lines) if "migrate:up" in l or "+goose Up" in l]
    lines.insert(at[0] + 1 if at else len(lines), "-- edited by test_layouts\n")
    with open(path, "w") as f:
        f.write("".join(lines))
    plan = ok(m, "plan", {"target": "head"})
    assert "edited by test_layouts" in json.dumps(plan), plan
    assert [s["revision"] for s in plan["steps"]] == order, plan
    want = "(%d of %d unchanged)" % (len(order) - 1, len(order))
    migdtest.wait_for(lambda: want in m.log(), 10,
                      what="a load that reused the unchanged files: " + want)
    # and the whole chain still runs
    migctl_ok(m, "upgrade")
    assert versions(m) == [order[-1]]


def _step_sql(plan, version):
    """What the plan says of one step, as text to search."""
    return json.dumps([s for s in plan["steps"] if s["revision"] == version])


def test_diesel_watches_stand_across_reloads(migd_factory):
    """A reload of diesel's directories keeps the watches on the directories
    that are still the same (none is added again); one removed and made
    again is watched anew: every edit, before and after, is in the next
    plan."""
    m = layout_migd(migd_factory, "diesel", "diesel")
    posts = os.path.join(m.migrations_dir, "2024-01-16-141500_create_posts")
    status = os.path.join(m.migrations_dir,
                          "2024-02-02-110000_add_archived_post_status")

    def edit(d, text):
        with open(os.path.join(d, "up.sql"), "a") as f:
            f.write(text)

    # an edit: a reload of the same directories
    edit(posts, "-- first edit\n")
    plan = ok(m, "plan", {"target": "head"})
    assert "first edit" in _step_sql(plan, "20240116141500"), plan
    # another directory's file after that reload: its watch still stands
    edit(status, "-- second edit\n")
    plan = ok(m, "plan", {"target": "head"})
    assert "second edit" in _step_sql(plan, "20240202110000"), plan
    # a directory removed and made again before any load (the same path,
    # another inode): the next load sees the same directories, but the
    # old one's watch ended with it; the new one is watched
    keep = open(os.path.join(posts, "up.sql")).read()
    shutil.rmtree(posts)
    write_file(m, os.path.join(os.path.basename(posts), "up.sql"),
               keep.replace("-- first edit\n", "-- made again\n"))
    plan = ok(m, "plan", {"target": "head"})
    assert "made again" in _step_sql(plan, "20240116141500"), plan
    # nothing pending now: a plan loads nothing
    loads = m.log().count("loaded again")
    ok(m, "plan", {"target": "head"})
    assert m.log().count("loaded again") == loads, m.log()[-2000:]
    edit(posts, "-- third edit\n")
    plan = ok(m, "plan", {"target": "head"})
    assert "third edit" in _step_sql(plan, "20240116141500"), plan
    # removed: gone from the next plan
    shutil.rmtree(posts)
    plan = ok(m, "plan", {"target": "head"})
    assert _step_sql(plan, "20240116141500") == "[]", plan
    assert "cannot watch" not in m.log()


def _diesel_step(plan, version):
    return [s for s in plan["steps"] if s["revision"] == version][0]


def test_diesel_metadata_run_in_transaction_false(migd_factory, pg):
    """diesel's metadata.toml: run_in_transaction = false runs the migration
    outside a transaction (CREATE INDEX CONCURRENTLY among others), true or
    no file keeps it in one; an edit of metadata.toml alone is seen."""
    m = layout_migd(migd_factory, "diesel", "diesel")
    write_file(m, "2024-04-01-000000_comments_index/up.sql",
               "CREATE INDEX CONCURRENTLY comments_body_idx ON comments (body);\n")
    write_file(m, "2024-04-01-000000_comments_index/down.sql",
               "DROP INDEX CONCURRENTLY comments_body_idx;\n")
    write_file(m, "2024-04-01-000000_comments_index/metadata.toml",
               "# CREATE INDEX CONCURRENTLY cannot run in a transaction\n"
               "run_in_transaction = false\n")
    # plain SQL migd would run in a transaction but for metadata.toml
    plain = "CREATE TABLE public.%s (id int);\nINSERT INTO public.%s VALUES (1);\n"
    for d, t in (("2024-04-02-000000_notx", "notx"), ("2024-04-03-000000_intx", "intx"),
                 ("2024-04-04-000000_default", "dflt")):
        write_file(m, d + "/up.sql", plain % (t, t))
        write_file(m, d + "/down.sql", "DROP TABLE public.%s;\n" % t)
    write_file(m, "2024-04-02-000000_notx/metadata.toml", "run_in_transaction = false\n")
    write_file(m, "2024-04-03-000000_intx/metadata.toml", "run_in_transaction = true\n")
    plan = ok(m, "plan", {"target": "head"})
    assert _diesel_step(plan, "20240401000000")["transactional"] is False, plan
    step = _diesel_step(plan, "20240402000000")
    assert step["transactional"] is False, plan
    assert step["why_not_transactional"] == \
        "declared 'run_in_transaction = false' in its metadata.toml", step
    assert _diesel_step(plan, "20240403000000")["transactional"] is True, plan
    assert _diesel_step(plan, "20240404000000")["transactional"] is True, plan

    # metadata.toml alone edited: seen (the file is watched)
    write_file(m, "2024-04-03-000000_intx/metadata.toml", "run_in_transaction = false\n")
    plan = ok(m, "plan", {"target": "head"})
    assert _diesel_step(plan, "20240403000000")["transactional"] is False, plan

    migctl_ok(m, "upgrade")
    assert versions(m) == ["20240404000000"]
    assert pg.psql("SELECT indisvalid FROM pg_index WHERE indexrelid = "
                   "'public.comments_body_idx'::regclass", m.db) == "t"
    assert pg.psql("SELECT count(*) FROM public.notx, public.intx, public.dflt",
                   m.db) == "1"
    migctl_ok(m, "downgrade", "20240310170000")
    assert pg.psql("SELECT count(*) FROM pg_class WHERE relname = 'comments_body_idx'",
                   m.db) == "0"


@pytest.mark.parametrize("text,want", [
    ("run_in_transaction = \"false\"\n",
     "2024-04-01-000000_x/metadata.toml:1: run_in_transaction must be true or false "
     "(a TOML boolean, unquoted), not '\"false\"'"),
    ("[migration]\nrun_in_transaction = false\n",
     "2024-04-01-000000_x/metadata.toml:1: cannot read '[migration]': migd reads only "
     "'run_in_transaction = true' or '= false' (and comments) in a diesel metadata.toml"),
])
def test_diesel_bad_metadata_refused(migd_factory, pg, text, want):
    """A metadata.toml migd cannot read refuses the whole directory, naming
    the file and the line; nothing runs."""
    m = layout_migd(migd_factory, "diesel", "diesel")
    write_file(m, "2024-04-01-000000_x/up.sql", "CREATE TABLE public.x (id int);\n")
    write_file(m, "2024-04-01-000000_x/metadata.toml", text)
    st = m.status()
    assert st["state"] == "invalid_migrations", st
    errors = "\n".join(st["migrations"]["errors"])
    assert want in errors, errors
    p = m.migctl("upgrade")
    assert p.returncode == X_FAILED, (p.stdout, p.stderr)
    assert versions(m) == []
    assert pg.psql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public' "
                   "AND tablename IN ('users', 'x')", m.db) == "0"


# A batched data migration as teams write it: a procedure that commits after
# each batch, then its CALL.  psql runs the file in autocommit; migd runs it
# in a transaction unless the file says not, in its tool's own words.
BATCHES = """CREATE TABLE public.orders (id bigint PRIMARY KEY, done bool NOT NULL DEFAULT false);
INSERT INTO public.orders (id) SELECT g FROM generate_series(1, 250) g;
CREATE PROCEDURE public.mark_done(batch int) LANGUAGE plpgsql AS $proc$
DECLARE n int;
BEGIN
  LOOP
    UPDATE public.orders SET done = true
     WHERE id IN (SELECT id FROM public.orders WHERE NOT done LIMIT batch);
    GET DIAGNOSTICS n = ROW_COUNT;
    EXIT WHEN n = 0;
    COMMIT;
  END LOOP;
END
$proc$;
CALL public.mark_done(100);
"""
BATCHES_DOWN = "DROP PROCEDURE public.mark_done(int);\nDROP TABLE public.orders;\n"

# tool -> (file name, its text without and with the declaration, the words)
NO_TX = {
    "migd": ("0001_orders.sql",
             "-- down_revision: none\n-- migrate:up\n%s-- migrate:down\n%s",
             "-- down_revision: none\n-- transaction: none\n-- migrate:up\n%s"
             "-- migrate:down\n%s", "'transaction: none'"),
    "dbmate": ("20240101000000_orders.sql",
               "-- migrate:up\n%s\n-- migrate:down\n%s",
               "-- migrate:up transaction:false\n%s\n-- migrate:down\n%s",
               "'-- migrate:up transaction:false'"),
    "goose": ("00001_orders.sql", "-- +goose Up\n%s\n-- +goose Down\n%s",
              "-- +goose NO TRANSACTION\n-- +goose Up\n%s\n-- +goose Down\n%s",
              "'-- +goose NO TRANSACTION'"),
    "sqlx": ("20240101000000_orders.sql", "%s", "-- no-transaction\n%s",
             "'-- no-transaction' on its first line"),
    "golang-migrate": ("000001_orders.up.sql", "%s", None, None),
    "flyway": ("V1__Orders.sql", "%s", None, None),
}


@pytest.mark.parametrize("tool", sorted(NO_TX))
def test_procedure_that_commits_hint_names_the_layouts_words(migd_factory, pg, tool):
    """CALL of a procedure that COMMITs fails inside migd's transaction with
    PostgreSQL's bare 'invalid transaction termination' (2D000): the error's
    hint says how this layout runs a file outside a transaction (or that it
    cannot), nothing is left; with the declaration, plan names it in the
    tool's words and the run gives what psql gives."""
    name, bare, declared, words = NO_TX[tool]
    over = dict(NO_SCHEMAS)
    over[("migrations", "format")] = tool
    m = connected(migd_factory(overrides=over))

    def text(t):
        return t % (BATCHES, BATCHES_DOWN) if t.count("%s") == 2 else t % BATCHES

    path = write_file(m, name, text(bare))
    ok(m, "reload")
    _, r = call(m, "upgrade", {})
    e = r["error"]
    assert e["data"]["kind"] == "sql_error", r
    assert e["data"]["sqlstate"] == "2D000", r
    with open(path) as f:
        call_line = f.read().splitlines().index("CALL public.mark_done(100);") + 1
    assert e["message"].startswith("%s:%d: invalid transaction termination"
                                   % (path, call_line)), r
    hint = e["data"]["hint"]
    if words is None:
        assert "%s files cannot say to run outside one" % tool in hint, hint
        assert "each ended by COMMIT" in hint, hint
    else:
        assert "declare %s in the file" % words in hint, hint
    p = m.migctl("upgrade")
    assert p.returncode == X_FAILED and "hint: " + hint in p.stderr, p.stderr
    # nothing of it is left
    assert versions(m) in (None, [])
    assert pg.psql("SELECT to_regclass('public.orders') IS NULL", m.db) == "t"
    if declared is None:
        return

    write_file(m, name, text(declared))
    ok(m, "reload")
    step = ok(m, "plan", {})["steps"][0]
    assert step["transactional"] is False, step
    assert step["why_not_transactional"] == "declared " + words, step
    ok(m, "upgrade", {})
    assert pg.psql("SELECT count(*) FILTER (WHERE done), count(*) "
                   "FROM public.orders", m.db) == "250|250"
    # as psql runs the same SQL (autocommit)
    ref = "ref_" + m.db
    pg.create_db(ref)
    p = subprocess.run([pg.psql_bin, "-X", "-q", "-v", "ON_ERROR_STOP=1",
                        "-h", pg.sockdir, "-p", str(pg.port), "-U", "postgres",
                        "-d", ref], input=BATCHES, env=migdtest.clean_env(),
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert pg.psql("SELECT count(*) FILTER (WHERE done), count(*) "
                   "FROM public.orders", ref) == "250|250"
    assert dump(pg, m.db) == dump(pg, ref)
    pg.drop_db(ref)


# As goose files are often written: no ';' after a $$ body, the block ended
# by StatementEnd alone (goose sends the block as one statement).
GOOSE_NO_SEMICOLON = """-- +goose Up
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION touch_updated_at()
    RETURNS TRIGGER
    LANGUAGE plpgsql
    AS
$$
BEGIN
    NEW.touched_at := now();
    RETURN NEW;
END;
$$
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER articles_touch BEFORE UPDATE ON articles
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at()
-- +goose StatementEnd
ALTER TABLE articles ADD COLUMN touched_at timestamptz;

-- +goose Down
-- +goose StatementBegin
DROP TRIGGER articles_touch ON articles
-- +goose StatementEnd
ALTER TABLE articles DROP COLUMN touched_at;
DROP FUNCTION touch_updated_at();
"""


def test_goose_statement_end_ends_a_statement(migd_factory, pg):
    """goose ends a statement at StatementEnd, ';' or not; migd did not, and
    refused such a file with 'syntax error at or near "CREATE"' at the next
    block. It runs now, up and down, and its checksum is that of the file's
    own text (the ';' migd adds is no edit: no drift)."""
    m = layout_migd(migd_factory, "goose", "goose")
    path = write_file(m, "00005_touch.sql", GOOSE_NO_SEMICOLON)
    ok(m, "reload")
    st = m.status()
    assert st["migrations"]["valid"] is True, st
    step = [s for s in ok(m, "plan", {})["steps"] if s["revision"] == "5"][0]
    assert step["statements"] == 3 and step["transactional"] is True, step
    migctl_ok(m, "upgrade")
    assert versions(m) == ["5"]
    assert pg.psql("SELECT count(*) FROM pg_trigger WHERE tgname = 'articles_touch'",
                   m.db) == "1"
    up = GOOSE_NO_SEMICOLON.split("-- +goose Up\n", 1)[1].split("-- +goose Down\n")[0]
    assert pg.psql("SELECT checksum FROM migd_history WHERE revision = '5' AND "
                   "direction = 'up' AND success", m.db) == \
        hashlib.sha256(up.encode()).hexdigest()
    assert m.migctl("verify").returncode == X_OK
    migctl_ok(m, "downgrade", "4")
    assert pg.psql("SELECT count(*) FROM pg_proc WHERE proname = 'touch_updated_at'",
                   m.db) == "0"
    assert path


def test_another_tools_down_section_in_a_whole_file_is_refused(migd_factory, pg):
    """sql-migrate's files (-- +migrate Up / Down) look like plain SQL, and
    auto asks for format = sqlx: read so, each file was one migration with
    its down SQL in it, and `upgrade` created the table and dropped it again,
    saying it was applied. The down marker is refused now, at its line, for
    every layout whose files are run whole; nothing runs."""
    over = dict(NO_SCHEMAS)
    over[("migrations", "format")] = "sqlx"
    m = connected(migd_factory(overrides=over))
    write_file(m, "1_people.sql", "-- +migrate Up\nCREATE TABLE people (id int);\n"
               "INSERT INTO people VALUES (1);\n\n"
               "-- +migrate Down\nDROP TABLE people;\n")
    write_file(m, "2_name.sql", "-- +migrate Up\n"
               "ALTER TABLE people ADD COLUMN name text;\n"
               "-- +migrate Down\nALTER TABLE people DROP COLUMN name;\n")
    ok_reload = m.rpc("reload")
    assert "error" in ok_reload, ok_reload
    st = m.status()
    assert st["state"] == "invalid_migrations", st
    errors = st["migrations"]["errors"]
    for f, line in (("1_people.sql", 5), ("2_name.sql", 3)):
        want = ("%s:%d: '-- +migrate Down' begins a down section (sql-migrate's "
                "annotation), but a sqlx file is one migration, run whole: the SQL "
                "after this line would run with the up"
                % (os.path.join(m.migrations_dir, f), line))
        assert any(e.startswith(want) for e in errors), errors
    p = m.migctl("upgrade")
    assert p.returncode == X_FAILED, p.stdout + p.stderr
    assert versions(m) in (None, [])
    assert pg.psql("SELECT to_regclass('public.people') IS NULL", m.db) == "t"
    assert pg.psql("SELECT count(*) FROM pg_tables WHERE tablename = 'migd_history'",
                   m.db) == "0" or pg.psql("SELECT count(*) FROM migd_history",
                                           m.db) == "0"
