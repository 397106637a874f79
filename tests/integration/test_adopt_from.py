"""migctl adopt --from TOOL (issue 14, point 2): taking over a database
another tool migrated part-way, from that tool's own state table.

For each tool the fixture's first migrations run with psql (dbmate's with
dbmate itself, which tests/ci.sh installs), the tool's state table gets
the rows the tool writes; adopt --from puts migd's version table at the last
applied revision with an 'adopt' history row per applied one, running no SQL;
upgrade head then runs the rest and the schema equals migd running the
fixture from scratch.  The tool's table is never changed.  Each refusal
(missing table, golang-migrate dirty, a failed row, a version no file
defines, a gap, a version table migd already wrote) changes nothing.
"""

import glob
import os
import re
import subprocess
import tempfile
import zlib

import pytest

import migdtest
import schema_helpers
from schema_helpers import assert_same_dump, migctl_ok
from engine_helpers import E_BUSY, E_STATE, X_BUSY, X_FAILED, X_OK, X_USAGE, connected, \
    err, history, migctl_json, ok, q, versions, write_file
from test_layouts import LAYOUTS, MIGD_TABLES, NO_SCHEMAS, TOOLS, _dbmate_bin, \
    layout_migd, migd_reference

E_PARAMS = -32602

STATE_TABLES = {
    "dbmate": ["public.schema_migrations"],
    "golang-migrate": ["public.schema_migrations"],
    "sqlx": ["public._sqlx_migrations"],
    "diesel": ["public.__diesel_schema_migrations"],
    "goose": ["public.goose_db_version", "public.goose_db_version_id_seq"],
    "flyway": ["public.flyway_schema_history"],
}

# The DDL each tool runs for its state table (their sources, PostgreSQL).
CREATE = {
    "dbmate": "CREATE TABLE IF NOT EXISTS public.schema_migrations "
              "(version character varying(128) NOT NULL PRIMARY KEY)",
    "golang-migrate": "CREATE TABLE IF NOT EXISTS public.schema_migrations "
                      "(version bigint not null primary key, dirty boolean not null)",
    "sqlx": "CREATE TABLE IF NOT EXISTS _sqlx_migrations (version BIGINT PRIMARY KEY, "
            "description TEXT NOT NULL, installed_on TIMESTAMPTZ NOT NULL DEFAULT now(), "
            "success BOOLEAN NOT NULL, checksum BYTEA NOT NULL, "
            "execution_time BIGINT NOT NULL)",
    "diesel": "CREATE TABLE IF NOT EXISTS __diesel_schema_migrations (version "
              "VARCHAR(50) PRIMARY KEY NOT NULL, run_on TIMESTAMP NOT NULL DEFAULT "
              "CURRENT_TIMESTAMP)",
    "goose": "CREATE TABLE goose_db_version (id serial NOT NULL, version_id bigint "
             "NOT NULL, is_applied boolean NOT NULL, tstamp timestamp NULL default "
             "now(), PRIMARY KEY(id))",
    "flyway": 'CREATE TABLE "public"."flyway_schema_history" ("installed_rank" INT '
              'NOT NULL, "version" VARCHAR(50), "description" VARCHAR(200) NOT NULL, '
              '"type" VARCHAR(20) NOT NULL, "script" VARCHAR(1000) NOT NULL, '
              '"checksum" INTEGER, "installed_by" VARCHAR(100) NOT NULL, '
              '"installed_on" TIMESTAMP NOT NULL DEFAULT now(), "execution_time" '
              'INTEGER NOT NULL, "success" BOOLEAN NOT NULL); ALTER TABLE '
              '"public"."flyway_schema_history" ADD CONSTRAINT '
              '"flyway_schema_history_pk" PRIMARY KEY ("installed_rank"); CREATE '
              'INDEX "flyway_schema_history_s_idx" ON "public"."flyway_schema_history" '
              '("success")',
}

ROWS_SQL = {
    "dbmate": "SELECT version FROM schema_migrations ORDER BY 1",
    "golang-migrate": "SELECT version, dirty FROM schema_migrations ORDER BY 1",
    "sqlx": "SELECT version, description, installed_on, success, checksum, "
            "execution_time FROM _sqlx_migrations ORDER BY 1",
    "diesel": "SELECT version, run_on FROM __diesel_schema_migrations ORDER BY 1",
    "goose": "SELECT id, version_id, is_applied, tstamp FROM goose_db_version "
             "ORDER BY 1",
    "flyway": "SELECT * FROM flyway_schema_history ORDER BY 1",
}

PART = {"dbmate": 3, "golang-migrate": 3, "sqlx": 2, "diesel": 3, "goose": 2,
        "flyway": 3}


def migration_files(tool):
    """(version, file holding its up SQL, the up SQL) in the tool's order."""
    d = os.path.join(LAYOUTS, tool)
    order = TOOLS[tool][1]
    out = []
    for v in order:
        if tool == "diesel":
            f = [x for x in glob.glob(os.path.join(d, "*", "up.sql"))
                 if re.sub(r"\D", "", os.path.basename(os.path.dirname(x))) == v][0]
        elif tool == "flyway":
            f = [x for x in glob.glob(os.path.join(d, "V*__*.sql"))
                 if os.path.basename(x)[1:].split("__")[0].replace("_", ".") == v][0]
        else:
            cands = [x for x in sorted(glob.glob(os.path.join(d, "*.sql")))
                     if not x.endswith(".down.sql") and
                     os.path.basename(x).split("_")[0].lstrip("0") == v.lstrip("0")]
            f = cands[0]
        text = open(f).read()
        if tool == "dbmate":
            text = text.split("-- migrate:up", 1)[1].split("\n", 1)[1]
            text = text.split("-- migrate:down")[0]
        elif tool == "goose":
            text = text.split("-- +goose Up", 1)[1].split("-- +goose Down")[0]
        out.append((v, f, text))
    return out


def psql_file(pg, db, text):
    """The tool ran this SQL: psql, a statement at a time."""
    p = subprocess.run([pg.psql_bin, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h",
                        pg.sockdir, "-p", str(pg.port), "-U", "postgres", "-d", db],
                       input=text, env=migdtest.clean_env(), capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr


def flyway_sum(path):
    """Flyway's checksum of a script: CRC-32 of its lines without their
    breaks (ChecksumCalculator), as a Java int."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    v = zlib.crc32(raw.replace(b"\r", b"").replace(b"\n", b""))
    return v - (1 << 32) if v >= (1 << 31) else v


def tool_rows(tool, applied):
    """The INSERTs the tool makes for the versions applied (in order)."""
    if tool == "dbmate":
        return ["INSERT INTO public.schema_migrations (version) VALUES ('%s')" % v
                for v, _, _ in applied]
    if tool == "golang-migrate":
        # one row: the current version, dirty while it runs, then clean
        return ["INSERT INTO schema_migrations (version, dirty) VALUES (%s, false)"
                % applied[-1][0]] if applied else []
    if tool == "sqlx":
        return ["INSERT INTO _sqlx_migrations (version, description, success, "
                "checksum, execution_time) VALUES (%s, '%s', TRUE, "
                "sha384(convert_to(%s, 'UTF8')), 1234)" % (
                    v, os.path.basename(f).split("_", 1)[1].split(".")[0],
                    "$sql$%s$sql$" % t) for v, f, t in applied]
    if tool == "diesel":
        return ["INSERT INTO __diesel_schema_migrations (version) VALUES ('%s')" % v
                for v, _, _ in applied]
    if tool == "goose":
        return ["INSERT INTO goose_db_version (version_id, is_applied) VALUES (0, true)"] + \
            ["INSERT INTO goose_db_version (version_id, is_applied) VALUES (%s, true)"
             % v for v, _, _ in applied]
    if tool == "flyway":
        return ["INSERT INTO flyway_schema_history (installed_rank, version, "
                "description, type, script, checksum, installed_by, execution_time, "
                "success) VALUES (%d, '%s', '%s', 'SQL', '%s', %s, 'postgres', 7, true)"
                % (i + 1, v, os.path.basename(f).split("__")[1][:-4].replace("_", " "),
                   os.path.basename(f), flyway_sum(f) if os.path.exists(f) else 1000 + i)
                for i, (v, f, _) in enumerate(applied)]
    raise AssertionError(tool)


def migrate_part_way(pg, db, tool, k):
    """The schema and the state table the tool leaves after k migrations."""
    applied = migration_files(tool)[:k]
    dbmate = _dbmate_bin() if tool == "dbmate" else None
    if dbmate is not None:
        # dbmate itself, up to the k-th version (dbmate up has no target:
        # a directory with only the first k files)
        d = tempfile.mkdtemp(prefix="adopt-from-dbmate-")
        for _, f, _ in applied:
            with open(f) as src, open(os.path.join(d, os.path.basename(f)), "w") as dst:
                dst.write(src.read())
        url = "postgres://postgres@localhost/%s?socket=%s&port=%d&sslmode=disable" % (
            db, pg.sockdir, pg.port)
        p = subprocess.run([dbmate, "--url", url, "--migrations-dir", d,
                            "--no-dump-schema", "up"], env=migdtest.clean_env(),
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stdout + p.stderr
        return "dbmate"
    for _, _, text in applied:
        psql_file(pg, db, text)
    psql_file(pg, db, CREATE[tool] + ";\n" + "".join(s + ";\n" for s in tool_rows(tool, applied)))
    return "psql"


def snapshot(pg, db, tool):
    """The tool's rows, and the schema but for migd's own tables."""
    return pg.psql(ROWS_SQL[tool], db), schema_helpers.dump(pg, db, MIGD_TABLES)


def adopt_rows(m):
    return history(m, where="direction = 'adopt'")


def unchanged(m, tool, before):
    """A refusal: migd wrote nothing and the tool's table is as it was."""
    assert versions(m) in ([], None)
    assert adopt_rows(m) == []
    assert snapshot(m.pg, m.db, tool) == before


DONE = ["dbmate", "golang-migrate", "sqlx", "diesel", "goose", "flyway"]


@pytest.mark.parametrize("tool", DONE)
def test_adopt_from_then_upgrade_like_migd_from_scratch(migd_factory, pg, make_db, tool):
    realworld, order = TOOLS[tool]
    exclude = MIGD_TABLES + tuple(STATE_TABLES[tool])
    want = migd_reference(migd_factory, pg, make_db, realworld)
    db = make_db(pg)
    k = PART[tool]
    how = migrate_part_way(pg, db, tool, k)
    before = snapshot(pg, db, tool)
    assert before[0]
    m = layout_migd(migd_factory, tool, tool, db=db)
    assert versions(m) in ([], None)

    rc, res, p = migctl_json(m, "adopt", "--from", tool)
    assert rc == X_OK, (how, p.stdout, p.stderr)
    assert [x["revision"] for x in res["adopted"]] == order[:k], res
    assert res["from"] == tool and res["applied"] == k, res
    assert versions(m) == [order[k - 1]]
    rows = adopt_rows(m)
    assert [h["revision"] for h in rows] == order[:k], rows
    assert [h["checksum"] for h in rows] == [x["checksum"] for x in res["adopted"]]
    assert all(h["success"] and h["checksum"] for h in rows), rows
    assert "adopt --from %s: at %s" % (tool, order[k - 1]) in m.log()
    st = m.status()
    assert st["pending"] == len(order) - k and st["unverified_count"] == 0, st
    assert m.migctl("verify").returncode == X_OK
    assert snapshot(pg, db, tool) == before         # read, never written, no SQL ran

    # a second adopt --from: migd manages it now
    e = err(m, "adopt", {"from": tool}, code=E_STATE, kind="version_table_not_empty")
    assert "plain 'migctl adopt'" in e["message"], e
    assert len(adopt_rows(m)) == k

    migctl_ok(m, "upgrade", "head")
    assert versions(m) == [order[-1]]
    assert_same_dump(want, schema_helpers.dump(pg, db, exclude),
                     "%s part-way (%s), adopt --from, upgrade head" % (tool, how),
                     "migd from scratch", "adopted")
    assert snapshot(pg, db, tool)[0] == before[0]


def test_adopt_from_auto_picks_the_one_table(migd_factory, pg, make_db):
    db = make_db(pg)
    migrate_part_way(pg, db, "golang-migrate", 2)
    m = layout_migd(migd_factory, "golang-migrate", "golang-migrate", db=db)
    p = m.migctl("adopt", "--from", "auto")
    assert p.returncode == X_OK, p.stdout + p.stderr
    assert "adopted from golang-migrate: 2 applied revisions, checksums recorded; " \
        "version table at 2" in p.stdout, p.stdout
    assert versions(m) == ["2"]
    assert [h["revision"] for h in adopt_rows(m)] == ["1", "2"]


def fresh(migd_factory, pg, make_db, tool, k=3):
    db = make_db(pg)
    if k:
        for _, _, text in migration_files(tool)[:k]:
            psql_file(pg, db, text)
    return layout_migd(migd_factory, tool, tool, db=db), db


def test_adopt_from_refuses_a_missing_table(migd_factory, pg, make_db):
    m, db = fresh(migd_factory, pg, make_db, "dbmate", k=0)
    e = err(m, "adopt", {"from": "dbmate"}, code=E_STATE, kind="no_state_table")
    assert 'relation "schema_migrations" does not exist' in e["message"], e
    assert versions(m) in ([], None) and adopt_rows(m) == []
    # auto: none at all
    e = err(m, "adopt", {"from": "auto"}, code=E_STATE, kind="no_state_table")
    assert "migctl upgrade head" in e["message"], e
    # the other tool's schema_migrations: said which it is
    q(m, CREATE["golang-migrate"])
    q(m, "INSERT INTO schema_migrations VALUES (2, false)")
    before = snapshot(pg, db, "golang-migrate")
    p = m.migctl("adopt", "--from", "dbmate")
    assert p.returncode == X_FAILED, p.stdout + p.stderr
    assert "schema_migrations is golang-migrate's" in p.stderr, p.stderr
    assert "--from golang-migrate" in p.stderr, p.stderr
    unchanged(m, "golang-migrate", before)
    # several tools' tables: auto does not guess
    q(m, CREATE["goose"])
    before = snapshot(pg, db, "golang-migrate")
    e = err(m, "adopt", {"from": "auto"}, code=E_STATE, kind="ambiguous_state_table")
    assert "golang-migrate" in e["message"] and "goose" in e["message"], e
    unchanged(m, "golang-migrate", before)


def test_adopt_from_refuses_golang_migrate_dirty(migd_factory, pg, make_db):
    m, db = fresh(migd_factory, pg, make_db, "golang-migrate")
    q(m, CREATE["golang-migrate"])
    q(m, "INSERT INTO schema_migrations (version, dirty) VALUES (3, true)")
    before = snapshot(pg, db, "golang-migrate")
    p = m.migctl("adopt", "--from", "golang-migrate")
    assert p.returncode == X_FAILED, p.stdout + p.stderr
    assert "Dirty database version 3. Fix and force version." in p.stderr, p.stderr
    assert "migrate force 3" in p.stderr, p.stderr
    unchanged(m, "golang-migrate", before)
    # forced clean: adopted
    q(m, "UPDATE schema_migrations SET dirty = false")
    assert ok(m, "adopt", {"from": "golang-migrate"})["applied"] == 3
    assert versions(m) == ["3"]


@pytest.mark.parametrize("tool", ["dbmate", "golang-migrate", "diesel", "goose",
                                  "sqlx", "flyway"])
def test_adopt_from_refuses_a_version_no_file_defines(migd_factory, pg, make_db, tool):
    m, db = fresh(migd_factory, pg, make_db, tool, k=0)
    q(m, CREATE[tool])
    fake = [("20991231000000", os.path.join(LAYOUTS, "x", "20991231000000_x__y.sql"),
             "SELECT 1;")]
    for s in tool_rows(tool, fake):
        q(m, s)
    before = snapshot(pg, db, tool)
    e = err(m, "adopt", {"from": tool}, code=E_STATE, kind="ahead")
    assert "records version 20991231000000, which no migration file defines" in \
        e["message"], e
    assert "deploy the migration files" in e["message"], e
    unchanged(m, tool, before)


@pytest.mark.parametrize("tool,fmt", [("dbmate", "golang-migrate"),
                                      ("sqlx", "golang-migrate"), ("flyway", "sqlx")])
def test_adopt_from_says_the_files_are_read_as_another_layout(migd_factory, pg,
                                                              make_db, tool, fmt):
    """format set to the wrong tool: the files of the versions applied are
    there, but skipped (a dbmate name is no golang-migrate one; sqlx's
    simple files are not golang-migrate's). The refusal says which file and
    the format to set, not to deploy files that are deployed."""
    m, db = fresh(migd_factory, pg, make_db, tool, k=0)
    files = migration_files(tool)
    for _, _, text in files:
        psql_file(pg, db, text)
    q(m, CREATE[tool])
    for s in tool_rows(tool, files):
        q(m, s)
    m.update({("migrations", "format"): fmt})
    m.write_config()
    ok(m, "reload")
    before = snapshot(pg, db, tool)
    e = err(m, "adopt", {"from": tool}, code=E_STATE, kind="ahead")
    assert "a file of that version is there but not read as a migration" in \
        e["message"], e
    assert ": skipped: not a %s migration name" % fmt in e["message"], e
    assert "the files are read as %s migrations; if this is a %s project, set " \
        "format = %s" % (fmt, tool, tool) in e["message"], e
    assert "deploy the migration files" not in e["message"], e
    unchanged(m, tool, before)
    m.update({("migrations", "format"): tool})
    m.write_config()
    ok(m, "reload")
    res = ok(m, "adopt", {"from": tool})
    assert res["applied"] == len(files), res
    assert versions(m) == [files[-1][0]]


@pytest.mark.parametrize("tool", ["dbmate", "diesel", "goose", "sqlx", "flyway"])
def test_adopt_from_refuses_a_gap(migd_factory, pg, make_db, tool):
    order = TOOLS[tool][1]
    files = migration_files(tool)
    m, db = fresh(migd_factory, pg, make_db, tool, k=0)
    q(m, CREATE[tool])
    # the first and the third applied, not the second (run out of order)
    for s in tool_rows(tool, [files[0], files[2]]):
        q(m, s)
    before = snapshot(pg, db, tool)
    e = err(m, "adopt", {"from": tool}, code=E_STATE, kind="gap")
    assert "applied version %s but not %s before it" % (order[2], order[1]) in \
        e["message"], e
    assert e["data"]["missing"] == order[1] and e["data"]["applied"] == order[2], e
    unchanged(m, tool, before)


def test_adopt_from_refuses_failed_rows(migd_factory, pg, make_db):
    # sqlx: success = false (a migration that failed part-way)
    m, db = fresh(migd_factory, pg, make_db, "sqlx", k=1)
    q(m, CREATE["sqlx"])
    files = migration_files("sqlx")
    for s in tool_rows("sqlx", files[:2]):
        q(m, s)
    q(m, "UPDATE _sqlx_migrations SET success = false WHERE version = %s" % files[1][0])
    before = snapshot(pg, db, "sqlx")
    e = err(m, "adopt", {"from": "sqlx"}, code=E_STATE, kind="failed_migration")
    assert "migration %s is partially applied" % files[1][0] in e["message"], e
    unchanged(m, "sqlx", before)
    # Flyway: a failed row
    m, db = fresh(migd_factory, pg, make_db, "flyway", k=1)
    q(m, CREATE["flyway"])
    files = migration_files("flyway")
    for s in tool_rows("flyway", files[:2]):
        q(m, s)
    q(m, "UPDATE flyway_schema_history SET success = false WHERE installed_rank = 2")
    before = snapshot(pg, db, "flyway")
    e = err(m, "adopt", {"from": "flyway"}, code=E_STATE, kind="failed_migration")
    assert "Detected failed migration to version 1.1" in e["message"], e
    assert "flyway repair" in e["message"], e
    unchanged(m, "flyway", before)


@pytest.mark.parametrize("tool", ["sqlx", "flyway"])
def test_adopt_from_refuses_an_applied_file_edited_since(migd_factory, pg, make_db,
                                                         tool):
    """sqlx and Flyway keep the checksum of each file they ran and refuse one
    edited since: adopting it would record the edited file as what ran, and
    migd would never see the edit as drift."""
    m, db = fresh(migd_factory, pg, make_db, tool, k=2)
    q(m, CREATE[tool])
    files = migration_files(tool)
    for s in tool_rows(tool, files[:2]):
        q(m, s)
    v, src, text = files[1]
    path = os.path.join(m.migrations_dir, os.path.relpath(src, os.path.join(
        LAYOUTS, tool)))
    with open(path, "a") as f:          # edited after it ran
        f.write("\n-- backfill later\nSELECT 1;\n")
    ok(m, "reload")
    before = snapshot(pg, db, tool)
    e = err(m, "adopt", {"from": tool}, code=E_STATE, kind="modified")
    if tool == "sqlx":
        assert "migration %s was previously applied but has been modified" % v \
            in e["message"], e
    else:
        assert "Migration checksum mismatch for migration version %s" % v in \
            e["message"], e
        assert "-> Applied to database : %d" % flyway_sum(src) in e["message"], e
        assert "run repair" in e["message"], e
    assert e["data"]["version"] == v and e["data"]["file"].endswith(
        os.path.basename(path)), e
    unchanged(m, tool, before)
    # put back as it ran, saved with CRLF: sqlx ran those bytes (its sum is
    # of them); Flyway's sum does not see line breaks
    with open(path, "wb") as f:
        f.write(open(src, "rb").read().replace(b"\n", b"\r\n"))
    if tool == "sqlx":
        q(m, "UPDATE _sqlx_migrations SET checksum = sha384(%s) WHERE version = %s"
          % ("'\\x%s'::bytea" % open(path, "rb").read().hex(), v))
    ok(m, "reload")
    res = ok(m, "adopt", {"from": tool})
    assert [x["revision"] for x in res["adopted"]] == [f[0] for f in files[:2]], res
    assert versions(m) == [v]


def test_adopt_from_goose_reads_the_latest_row_per_version(migd_factory, pg, make_db):
    """goose up to 3, then down one: 3's last row says is_applied = false."""
    m, db = fresh(migd_factory, pg, make_db, "goose", k=2)
    q(m, CREATE["goose"])
    files = migration_files("goose")
    for s in tool_rows("goose", files[:3]):
        q(m, s)
    q(m, "INSERT INTO goose_db_version (version_id, is_applied) VALUES (3, false)")
    before = snapshot(pg, db, "goose")
    res = ok(m, "adopt", {"from": "goose"})
    assert [x["revision"] for x in res["adopted"]] == ["1", "2"], res
    assert versions(m) == ["2"]
    assert snapshot(pg, db, "goose") == before


def test_adopt_from_refuses_a_migd_database_and_unknown_tools(migd_factory, pg, make_db):
    m, db = fresh(migd_factory, pg, make_db, "dbmate", k=0)
    migctl_ok(m, "upgrade", "+1")
    q(m, CREATE["dbmate"])
    before = snapshot(pg, db, "dbmate")
    p = m.migctl("adopt", "--from", "dbmate")
    assert p.returncode == X_FAILED, p.stdout + p.stderr
    assert "migd never managed" in p.stderr and "plain 'migctl adopt'" in p.stderr, \
        p.stderr
    assert adopt_rows(m) == [] and snapshot(pg, db, "dbmate") == before
    e = err(m, "adopt", {"from": "liquibase"}, kind="invalid_params")
    assert "unknown tool" in e["message"] and "golang-migrate" in e["message"], e
    p = m.migctl("adopt", "--from")
    assert p.returncode == X_USAGE, p.stdout + p.stderr


@pytest.mark.parametrize("tool", ["dbmate", "diesel"])
def test_adopt_from_passes_over_a_removed_migration(migd_factory, pg, make_db, tool):
    """dbmate and diesel run the files their table does not record and pass
    over a recorded version whose file the team removed (an abandoned
    migration's directory deleted): so does adopt, saying so. A recorded
    version past every applied file is still a database ahead of the
    files."""
    order = TOOLS[tool][1]
    m, db = fresh(migd_factory, pg, make_db, tool, k=3)
    q(m, CREATE[tool])
    files = migration_files(tool)
    removed = str(int(order[1]) - 1)        # between the first two
    rows = tool_rows(tool, [files[0], (removed, "", ""), files[1], files[2]])
    for s in rows:
        q(m, s)
    before = snapshot(pg, db, tool)
    rc, res, p = migctl_json(m, "adopt", "--from", tool)
    assert rc == X_OK, (p.stdout, p.stderr)
    assert [x["revision"] for x in res["adopted"]] == order[:3], res
    assert res["removed"] == [removed], res
    assert versions(m) == [order[2]]
    assert "records version %s, whose file was removed: passed over" % removed \
        in m.log(), m.log()[-2000:]
    assert snapshot(pg, db, tool) == before
    migctl_ok(m, "upgrade", "head")
    assert versions(m) == [order[-1]]
    # the plain output says it
    m2, db2 = fresh(migd_factory, pg, make_db, tool, k=3)
    q(m2, CREATE[tool])
    for s in rows:
        q(m2, s)
    p = m2.migctl("adopt", "--from", tool)
    assert p.returncode == X_OK, p.stdout + p.stderr
    assert "passed over %s: recorded by %s, its file removed" % (removed, tool) in \
        p.stdout, p.stdout
    # past every applied file: ahead, nothing written
    m3, db3 = fresh(migd_factory, pg, make_db, tool, k=3)
    q(m3, CREATE[tool])
    for s in rows + tool_rows(tool, [("20991231000000", "", "")]):
        q(m3, s)
    before = snapshot(pg, db3, tool)
    e = err(m3, "adopt", {"from": tool}, code=E_STATE, kind="ahead")
    assert "records version 20991231000000, which no migration file defines" in \
        e["message"], e
    unchanged(m3, tool, before)


def test_adopt_from_flyway_skips_what_repair_marked_deleted(migd_factory, pg,
                                                          make_db):
    """V1_05__Tmp.sql ran, then the team removed the file and ran 'flyway
    repair', which marks it deleted (a DELETE row after it): Flyway ignores
    that version from then on, and so does adopt."""
    m, db = fresh(migd_factory, pg, make_db, "flyway", k=3)
    q(m, CREATE["flyway"])
    files = migration_files("flyway")
    ins = ("INSERT INTO flyway_schema_history (installed_rank, version, "
           "description, type, script, checksum, installed_by, execution_time, "
           "success) VALUES (%d, '%s', '%s', '%s', '%s', %s, 'postgres', 3, true)")
    rows = [(1, files[0]), (2, files[1]), (4, files[2])]
    for rank, (v, f, _) in rows:
        q(m, ins % (rank, v, "x", "SQL", os.path.basename(f), flyway_sum(f)))
    q(m, ins % (3, "1.05", "Tmp", "SQL", "V1_05__Tmp.sql", "-4242"))
    before = snapshot(pg, db, "flyway")
    e = err(m, "adopt", {"from": "flyway"}, code=E_STATE, kind="ahead")
    assert "records version 1.05, which no migration file defines" in e["message"], e
    assert "'flyway repair' marks its version deleted" in e["message"], e
    unchanged(m, "flyway", before)
    # flyway repair: "Marking missing migration 1.05 as deleted"
    q(m, ins % (5, "1.05", "Tmp", "DELETE", "V1_05__Tmp.sql", "-4242"))
    before = snapshot(pg, db, "flyway")
    res = ok(m, "adopt", {"from": "flyway"})
    assert [x["revision"] for x in res["adopted"]] == ["1", "1.1", "2"], res
    assert versions(m) == ["2"]
    assert snapshot(pg, db, "flyway") == before


def test_adopt_from_flyway_baseline(migd_factory, pg, make_db):
    """flyway baseline -baselineVersion=1.5 on a database that had 1 and 1.1
    (no file at 1.5), then flyway migrate ran 2: 1, 1.1 and 2 are applied."""
    realworld, order = TOOLS["flyway"]
    want = migd_reference(migd_factory, pg, make_db, realworld)
    m, db = fresh(migd_factory, pg, make_db, "flyway", k=3)
    q(m, CREATE["flyway"])
    q(m, "INSERT INTO flyway_schema_history (installed_rank, version, description, "
         "type, script, checksum, installed_by, execution_time, success) VALUES "
         "(1, '1.5', '<< Flyway Baseline >>', 'BASELINE', '<< Flyway Baseline >>', "
         "NULL, 'postgres', 0, true)")
    q(m, "INSERT INTO flyway_schema_history (installed_rank, version, description, "
         "type, script, checksum, installed_by, execution_time, success) VALUES "
         "(2, '2', 'Add accounts profile', 'SQL', 'V2__Add_accounts_profile.sql', "
         "%d, 'postgres', 9, true)" % flyway_sum(os.path.join(
             LAYOUTS, "flyway", "V2__Add_accounts_profile.sql")))
    before = snapshot(pg, db, "flyway")
    res = ok(m, "adopt", {"from": "flyway"})
    assert [x["revision"] for x in res["adopted"]] == ["1", "1.1", "2"], res
    assert versions(m) == ["2"]
    migctl_ok(m, "upgrade", "head")
    assert versions(m) == [order[-1]]
    assert_same_dump(want, schema_helpers.dump(pg, db, MIGD_TABLES + tuple(
        STATE_TABLES["flyway"])), "flyway baseline, adopt --from, upgrade head")
    assert snapshot(pg, db, "flyway")[0] == before[0]


# A Flyway project kept in its own schema (flyway.defaultSchema = app).
APP_FLYWAY = {
    "V1__Customers.sql": "CREATE TABLE customers (id bigserial PRIMARY KEY, "
                         "name text NOT NULL);\n",
    "V1_1__Customer_email.sql": "ALTER TABLE customers ADD COLUMN email text;\n"
                                "CREATE UNIQUE INDEX customers_email ON customers "
                                "(email);\n",
    "V2__Orders.sql": "CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id "
                      "bigint NOT NULL REFERENCES customers (id), total "
                      "numeric(10,2));\n",
    "V2_1__Seed.sql": "INSERT INTO customers (name, email) VALUES ('seed', "
                      "'seed@example.com');\n",
}


def test_adopt_from_a_state_table_in_another_schema(migd_factory, pg, make_db):
    """Flyway with defaultSchema = app keeps flyway_schema_history in app and
    runs its migrations with search_path = app, public. adopt names the
    table it found off migd's search_path and how to give migd's sessions
    Flyway's search_path (the role's, as the docs said before, does not
    reach migd's open sessions); done so, upgrade runs the rest in app, as
    Flyway would have, instead of making a second customers in public."""
    db = make_db(pg)
    over = dict(NO_SCHEMAS)
    over[("migrations", "format")] = "flyway"
    m = connected(migd_factory(db=db, overrides=over))
    for name, text in APP_FLYWAY.items():
        write_file(m, name, text)
    ok(m, "reload")
    # flyway migrate with two files, as Flyway does it
    psql_file(pg, db, "CREATE SCHEMA app;\n" + CREATE["flyway"].replace(
        '"public"', '"app"') + ";\nINSERT INTO app.flyway_schema_history VALUES "
        "(0, NULL, '<< Flyway Schema Creation >>', 'SCHEMA', '\"app\"', NULL, "
        "'postgres', now(), 0, true);\n")
    rank = 0
    for name in ("V1__Customers.sql", "V1_1__Customer_email.sql"):
        rank += 1
        psql_file(pg, db, "SET search_path = app, public;\n" + APP_FLYWAY[name])
        psql_file(pg, db, "INSERT INTO app.flyway_schema_history VALUES (%d, '%s', "
                  "'x', 'SQL', '%s', %d, 'postgres', now(), 5, true)" % (
                      rank, name[1:].split("__")[0].replace("_", "."), name,
                      flyway_sum(os.path.join(m.migrations_dir, name))))
    before = pg.psql("SELECT * FROM app.flyway_schema_history ORDER BY 1", db)
    for tool in ("flyway", "auto"):
        e = err(m, "adopt", {"from": tool}, code=E_STATE, kind="no_state_table")
        assert "but app.flyway_schema_history is: the tool kept its table in " \
            "schema app" in e["message"], e
        assert "add options='-c search_path=app,public' to conninfo under " \
            "[database], run 'migctl reload', then adopt" in e["message"], e
        assert e["data"]["elsewhere"] == "app.flyway_schema_history", e
        assert versions(m) in ([], None) and adopt_rows(m) == []
    # what the message says
    m.update({("database", "conninfo"): m.sections["database"]["conninfo"] +
              " options='-c search_path=app,public'"})
    m.write_config()
    ok(m, "reload")
    res = ok(m, "adopt", {"from": "flyway"})
    assert [x["revision"] for x in res["adopted"]] == ["1", "1.1"], res
    migctl_ok(m, "upgrade", "head")
    assert versions(m) == ["2.1"]
    assert pg.psql("SELECT string_agg(schemaname || '.' || tablename, ' ' ORDER BY "
                   "1) FROM pg_tables WHERE tablename IN ('customers', 'orders')",
                   db) == "app.customers app.orders"
    assert pg.psql("SELECT email FROM app.customers", db) == "seed@example.com"
    assert pg.psql("SELECT * FROM app.flyway_schema_history ORDER BY 1", db) == before


def test_adopt_from_waits_for_the_lock_then_refuses(migd_factory, pg, make_db):
    """Another migd (another host) holds the lock of this database's version
    table, as during its upgrade: adopt --from writes nothing and names the
    holder; once it is gone, adopt goes through."""
    from engine_helpers import E_BUSY
    from test_state_hardening import hold_lock, lock_key
    db = make_db(pg)
    migrate_part_way(pg, db, "goose", 2)
    m = layout_migd(migd_factory, "goose", "goose", db=db)
    m.update({("migrations", "lock_wait"): "300ms"})
    m.write_config()
    ok(m, "reload")
    before = snapshot(pg, db, "goose")
    holder = hold_lock(pg, db, "migd_on_host_b", lock_key(), seconds=30)
    try:
        migdtest.wait_for(lambda: pg.psql(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND objid = %d" % (lock_key() & 0xFFFFFFFF), db) == "1", 10,
            what="the lock held")
        e = err(m, "adopt", {"from": "goose"}, code=E_BUSY, kind="lock_timeout")
        assert "migd_on_host_b" in e["message"], e
        assert versions(m) in ([], None) and adopt_rows(m) == []
        assert snapshot(pg, db, "goose") == before
    finally:
        pg.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                "application_name = 'migd_on_host_b'", db)
        holder.wait()
    assert ok(m, "adopt", {"from": "goose"})["applied"] == 2
    assert versions(m) == ["2"]


def test_adopt_from_dbmate_versions_are_strings(migd_factory, pg, make_db):
    """dbmate keeps the version as written: its table's 1 is not the file
    001_init.sql (renamed from 1_init.sql to sort), which dbmate would run
    as pending. adopt does not take one for the other: 1 is a version no
    file defines, and nothing is written."""
    db = make_db(pg)
    over = dict(NO_SCHEMAS)
    over[("migrations", "format")] = "dbmate"
    m = connected(migd_factory(db=db, overrides=over))
    write_file(m, "001_init.sql", "-- migrate:up\nCREATE TABLE t1 (id int);\n"
               "-- migrate:down\nDROP TABLE t1;\n")
    write_file(m, "002_more.sql", "-- migrate:up\nCREATE TABLE t2 (id int);\n"
               "-- migrate:down\nDROP TABLE t2;\n")
    ok(m, "reload")
    q(m, "CREATE TABLE t1 (id int)")
    q(m, CREATE["dbmate"])
    q(m, "INSERT INTO schema_migrations VALUES ('1')")
    before = snapshot(pg, db, "dbmate")
    e = err(m, "adopt", {"from": "dbmate"}, code=E_STATE, kind="ahead")
    assert "records version 1, which no migration file defines" in e["message"], e
    unchanged(m, "dbmate", before)
    q(m, "UPDATE schema_migrations SET version = '001'")
    res = ok(m, "adopt", {"from": "dbmate"})
    assert [x["revision"] for x in res["adopted"]] == ["001"], res


# The state table under the name the team gave the tool: golang-migrate's
# x-migrations-table (quoted by golang-migrate, so capitals stay), goose's
# -table (schema-qualified), dbmate's --migrations-table, Flyway's table in
# its own schema.
RENAMED = {
    "golang-migrate": ('"SvcMigrations"', "schema_migrations", '"SvcMigrations"'),
    "goose": ("ops.goose_versions", "goose_db_version", "ops.goose_versions"),
    "dbmate": ("svc_migrations", "schema_migrations", "svc_migrations"),
    "flyway": ("ops.history", "flyway_schema_history", '"ops"."history"'),
}


def renamed_part_way(pg, db, tool, k):
    """The tool ran k migrations with its state table renamed."""
    _, bare, written = RENAMED[tool]
    applied = migration_files(tool)[:k]
    for _, _, text in applied:
        psql_file(pg, db, text)
    table = re.compile(r'(?:"public"\.|public\.)?"?%s"?(?!\w)' % bare)
    psql_file(pg, db, ("CREATE SCHEMA IF NOT EXISTS ops;\n" if "ops" in written else "") +
              "".join(table.sub(written, x) + ";\n"
                      for x in [CREATE[tool]] + tool_rows(tool, applied)))
    return pg.psql("SELECT count(*) FROM %s" % written, db)


@pytest.mark.parametrize("tool", sorted(RENAMED))
def test_adopt_from_a_state_table_under_another_name(migd_factory, pg, make_db, tool):
    """A team gave the tool its own table name: adopt --from TOOL alone says it
    found no table and names --table; with --table NAME (as written in SQL) it
    reads that table, never writes it, and upgrade runs the rest to the same
    schema as migd from scratch."""
    realworld, order = TOOLS[tool]
    name, _, written = RENAMED[tool]
    want = migd_reference(migd_factory, pg, make_db, realworld)
    db = make_db(pg)
    k = PART[tool]
    assert renamed_part_way(pg, db, tool, k) != "0"
    before = pg.psql("SELECT * FROM %s ORDER BY 1" % written, db)
    m = layout_migd(migd_factory, tool, tool, db=db)

    e = err(m, "adopt", {"from": tool}, code=E_STATE, kind="no_state_table")
    assert "under another name (--table NAME)" in e["message"], e
    assert versions(m) in ([], None) and adopt_rows(m) == []

    rc, res, p = migctl_json(m, "adopt", "--from", tool, "--table", name)
    assert rc == X_OK, (p.stdout, p.stderr)
    assert [x["revision"] for x in res["adopted"]] == order[:k], res
    assert versions(m) == [order[k - 1]]
    assert pg.psql("SELECT * FROM %s ORDER BY 1" % written, db) == before
    migctl_ok(m, "upgrade", "head")
    assert versions(m) == [order[-1]]
    assert pg.psql("SELECT * FROM %s ORDER BY 1" % written, db) == before
    # the tool's table (and its schema) aside, the schema is migd's from scratch
    pg.psql("DROP TABLE %s; DROP SCHEMA IF EXISTS ops" % written, db)
    assert_same_dump(want, schema_helpers.dump(pg, db, MIGD_TABLES),
                     "%s part-way under %s, adopt --from --table, upgrade"
                     % (tool, name), "migd from scratch", "adopted")


def test_adopt_from_table_refuses_what_is_not_the_tools_table(migd_factory, pg, make_db):
    """--table names a table that is missing, has another tool's columns, or is
    not a name; or comes without --from TOOL: each refused, nothing written."""
    m, db = fresh(migd_factory, pg, make_db, "goose", k=2)
    renamed_part_way(pg, db, "goose", 0)
    before = pg.psql("SELECT * FROM ops.goose_versions ORDER BY 1", db)

    def refused(params, kind, *says, code=E_STATE):
        e = err(m, "adopt", params, code=code, kind=kind)
        for s in says:
            assert s in e["message"], e
        assert versions(m) in ([], None) and adopt_rows(m) == []
        assert pg.psql("SELECT * FROM ops.goose_versions ORDER BY 1", db) == before
        return e

    refused({"from": "goose", "table": "goose_versions"}, "no_state_table",
            'relation "goose_versions" does not exist', "unquoted names are lower case")
    e = refused({"from": "flyway", "table": "ops.goose_versions"}, "no_state_table",
                "ops.goose_versions has no column installed_rank", "not flyway's table")
    assert e["data"]["missing"] == "installed_rank", e
    refused({"from": "goose", "table": "a.b.c.d"}, "invalid_params",
            "adopt --table 'a.b.c.d': improper relation name", code=E_PARAMS)
    refused({"from": "goose", "table": '"ops'}, "invalid_params",
            "invalid name syntax", code=E_PARAMS)
    refused({"from": "goose", "table": "otherdb.ops.goose_versions"}, "invalid_params",
            "cross-database references are not implemented", code=E_PARAMS)
    refused({"table": "ops.goose_versions"}, "invalid_params",
            "give --from TOOL (not auto) with it", code=E_PARAMS)
    refused({"from": "auto", "table": "ops.goose_versions"}, "invalid_params",
            "give --from TOOL (not auto) with it", code=E_PARAMS)
    refused({"from": "goose", "table": ""}, "invalid_params",
            "a table name, TABLE or SCHEMA.TABLE", code=E_PARAMS)
    # golang-migrate's table named to dbmate: said which tool's it is
    q(m, 'CREATE TABLE "SvcMigrations" (version bigint not null primary key, '
         'dirty boolean not null)')
    refused({"from": "dbmate", "table": '"SvcMigrations"'}, "no_state_table",
            "is golang-migrate's (it has a dirty column)",
            "adopt --from golang-migrate --table")
    # the migctl flag: --table is adopt's, and unquoted names fold as in SQL
    p = m.migctl("status", "--table", "x")
    assert p.returncode == X_USAGE, p.stdout + p.stderr
    res = ok(m, "adopt", {"from": "goose", "table": "OPS.GOOSE_VERSIONS"})
    assert res["applied"] == 0 and versions(m) in ([], None), res


def test_adopt_from_dbmate_itself_with_its_migrations_table(migd_factory, pg, make_db):
    """dbmate itself (npm) migrated part-way with --migrations-table: adopt
    --from dbmate --table reads the table dbmate made, and upgrade head
    finishes to the schema migd gives from scratch."""
    dbmate = _dbmate_bin()
    if dbmate is None:
        pytest.skip("dbmate is not installed (tests/ci.sh installs it from npm)")
    realworld, order = TOOLS["dbmate"]
    want = migd_reference(migd_factory, pg, make_db, realworld)
    db = make_db(pg)
    d = tempfile.mkdtemp(prefix="adopt-from-dbmate-table-")
    for _, f, _ in migration_files("dbmate")[:PART["dbmate"]]:
        with open(f) as src, open(os.path.join(d, os.path.basename(f)), "w") as dst:
            dst.write(src.read())
    url = "postgres://postgres@localhost/%s?socket=%s&port=%d&sslmode=disable" % (
        db, pg.sockdir, pg.port)
    p = subprocess.run([dbmate, "--url", url, "--migrations-dir", d,
                        "--migrations-table", "svc_migrations", "--no-dump-schema", "up"],
                       env=migdtest.clean_env(), capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    before = pg.psql("SELECT version FROM svc_migrations ORDER BY 1", db)
    assert before.split() == order[:PART["dbmate"]]
    m = layout_migd(migd_factory, "dbmate", "dbmate", db=db)
    res = ok(m, "adopt", {"from": "dbmate", "table": "svc_migrations"})
    assert [x["revision"] for x in res["adopted"]] == order[:PART["dbmate"]], res
    migctl_ok(m, "upgrade", "head")
    assert versions(m) == [order[-1]]
    assert pg.psql("SELECT version FROM svc_migrations ORDER BY 1", db) == before
    pg.psql("DROP TABLE svc_migrations", db)
    assert_same_dump(want, schema_helpers.dump(pg, db, MIGD_TABLES),
                     "dbmate --migrations-table part-way, adopt, upgrade",
                     "migd from scratch", "adopted")


def _tool_session(pg, db, appname):
    """A psql session of the other tool, its transaction left open."""
    return subprocess.Popen([pg.psql_bin, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h",
                             pg.sockdir, "-p", str(pg.port), "-U", "postgres", "-d", db],
                            env=migdtest.clean_env({"PGAPPNAME": appname}),
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def test_adopt_from_refuses_while_the_tool_is_migrating(migd_factory, pg, make_db):
    """goose is applying its third migration: its transaction holds the DDL's
    locks and has not yet inserted the version row, so goose_db_version says
    2. adopt --from refuses (busy, naming the session) and writes nothing,
    rather than put migd at 2 for upgrade to run 3 a second time. An
    application's own temporary table is not taken for a migration. Once goose
    committed, adopt takes 3."""
    db = make_db(pg)
    migrate_part_way(pg, db, "goose", 2)
    m = layout_migd(migd_factory, "goose", "goose", db=db)
    before = snapshot(pg, db, "goose")
    third = migration_files("goose")[2]
    app = _tool_session(pg, db, "app_with_temp")
    app.stdin.write("BEGIN;\nCREATE TEMP TABLE scratch (id int);\nSELECT pg_sleep(60);\n")
    app.stdin.flush()
    goose = _tool_session(pg, db, "goose")
    goose.stdin.write("BEGIN;\n" + third[2] + "\nSELECT pg_sleep(60);\n")
    goose.stdin.flush()
    try:
        migdtest.wait_for(lambda: pg.psql(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name IN "
            "('goose', 'app_with_temp') AND wait_event = 'PgSleep'", db) == "2", 20,
            what="goose mid-migration and the application's temp table")
        e = err(m, "adopt", {"from": "goose"}, code=E_BUSY, kind="schema_changing")
        assert "another session is changing the schema now" in e["message"], e
        assert "if goose is still migrating" in e["message"], e
        assert e["data"]["holder"]["application_name"] == "goose", e
        assert e["data"]["holder"]["pid"] > 0, e
        assert versions(m) in ([], None) and adopt_rows(m) == []
        assert snapshot(pg, db, "goose") == before
        p = m.migctl("adopt", "--from", "auto")
        assert p.returncode == X_BUSY, p.stdout + p.stderr
        assert "if the other tool is still migrating" in p.stderr, p.stderr
    finally:
        pg.psql("SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE "
                "application_name = 'goose'", db)
        goose.stdin.close()
        goose.wait(20)
    # goose finished 3 (here: it ran again, committed, with its row)
    psql_file(pg, db, third[2] + ";\nINSERT INTO goose_db_version (version_id, "
              "is_applied) VALUES (%s, true);\n" % third[0])
    # the application's temporary table alone is no migration
    try:
        res = ok(m, "adopt", {"from": "goose"})
        assert [x["revision"] for x in res["adopted"]] == TOOLS["goose"][1][:3], res
    finally:
        pg.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                "application_name = 'app_with_temp'", db)
        app.stdin.close()
        app.wait(20)


GOOSE_GO = {
    "00001_users.sql": "-- +goose Up\nCREATE TABLE users (id bigint PRIMARY KEY, "
                       "name text, full_name text);\n-- +goose Down\nDROP TABLE users;\n",
    "00002_backfill_full_names.go": (
        "package migrations\n\nimport (\n\t\"context\"\n\t\"database/sql\"\n\n"
        "\t\"github.com/pressly/goose/v3\"\n)\n\nfunc init() {\n"
        "\tgoose.AddMigrationContext(upBackfill, downBackfill)\n}\n\n"
        "func upBackfill(ctx context.Context, tx *sql.Tx) error {\n"
        "\t_, err := tx.ExecContext(ctx, `UPDATE users SET full_name = name`)\n"
        "\treturn err\n}\n\nfunc downBackfill(ctx context.Context, tx *sql.Tx) error "
        "{\n\treturn nil\n}\n"),
    "00003_users_name_index.sql": "-- +goose Up\nCREATE INDEX users_name ON users "
                                  "(name);\n-- +goose Down\nDROP INDEX users_name;\n",
    "embed.go": "package migrations\n\nimport \"embed\"\n\n//go:embed *.sql\n"
                "var FS embed.FS\n",
}


@pytest.mark.parametrize("fmt", ["goose", "auto"])
def test_goose_go_migration_holds_its_place_and_stops_a_run(migd_factory, pg, make_db,
                                                            fmt):
    """A goose project with a Go migration (00002_*.go) between SQL ones, and the
    embed.go that serves the SQL files. Skipping the Go file would let a fresh
    database miss its backfill without a word: it is a revision that stops a
    run at it, naming the file and what to do; a database goose migrated past
    it is adopted with it recorded (no checksum: it is no SQL) and upgrade runs
    the rest; once it is written as SQL, plain adopt records its checksum."""
    db = make_db(pg)
    over = dict(NO_SCHEMAS)
    over[("migrations", "format")] = fmt
    m = connected(migd_factory(db=db, overrides=over))
    for name, text in GOOSE_GO.items():
        write_file(m, name, text)
    ok(m, "reload")
    go = os.path.join(m.migrations_dir, "00002_backfill_full_names.go")

    # a fresh database: refused before anything runs, in goose's terms
    e = err(m, "upgrade", {}, kind="plan_error")
    assert "%s:1: revision 2 is unfinished (a goose Go migration: migd runs SQL, " \
        "not Go code)" % go in e["message"], e
    assert "remove the .go file" in e["message"], e
    assert versions(m) in ([], None)
    assert q(m, "SELECT to_regclass('public.users') IS NULL") == "t"
    p = m.migctl("upgrade")
    assert p.returncode == X_FAILED and "a goose Go migration" in p.stderr, p.stderr
    ok(m, "upgrade", {"target": "1"})                  # what is before it runs
    assert versions(m) == ["1"]

    # another database goose migrated to 2 (Go code and all): adopt, upgrade
    rc, res, p = migctl_json(m, "plan")
    assert "remove the .go file" in p.stdout + p.stderr, (p.stdout, p.stderr)
    db2 = make_db(pg)
    psql_file(pg, db2, "CREATE TABLE users (id bigint PRIMARY KEY, name text, "
              "full_name text);\nUPDATE users SET full_name = name;\n" +
              CREATE["goose"] + ";\n" + "".join(
                  "INSERT INTO goose_db_version (version_id, is_applied) VALUES "
                  "(%d, true);\n" % v for v in (0, 1, 2)))
    m2 = connected(migd_factory(db=db2, overrides=over))
    for name, text in GOOSE_GO.items():
        write_file(m2, name, text)
    ok(m2, "reload")
    p = m2.migctl("adopt", "--from", "goose")
    assert p.returncode == X_OK, p.stdout + p.stderr
    assert "  unfinished (a goose Go migration): recorded as applied, without a " \
        "checksum; write what it does as SQL" in p.stdout, p.stdout
    assert [(h["revision"], h["checksum"] is None) for h in adopt_rows(m2)] == \
        [("1", False), ("2", True)]
    migctl_ok(m2, "upgrade", "head")
    assert versions(m2) == ["3"]
    assert q(m2, "SELECT count(*) FROM pg_indexes WHERE indexname = 'users_name'") == "1"

    # written as SQL, the .go removed: plain adopt records its checksum
    os.unlink(os.path.join(m2.migrations_dir, "00002_backfill_full_names.go"))
    write_file(m2, "00002_backfill_full_names.sql", "-- +goose Up\nUPDATE users SET "
               "full_name = name;\n")
    ok(m2, "reload")
    res = ok(m2, "adopt")
    assert [x["revision"] for x in res["adopted"]] == ["2"], res
    assert res["adopted"][0]["checksum"], res
    assert m2.migctl("verify").returncode == X_OK
