"""lint with what only a connected daemon knows (issue 15 points 3 and 4),
against the real migd, migctl and PostgreSQL: the catalog's estimate of a
table's rows deciding a finding's severity (lint_small_table_rows), who
holds or waits for a conflicting lock on its table now (blockers in plan
and --dry-run), and the lint method / `migctl lint` over the socket.
"""

import json
import os
import shutil
import threading
import time

import psycopg2
import migdtest
from engine_helpers import (X_CHECK, X_FAILED, X_OK, X_USAGE, connected, err,
                            line_of, ok, q, rel_exists, versions, write_rev)

ORDERS = "CREATE TABLE public.orders (id bigint PRIMARY KEY, total bigint);"
INDEX = "CREATE INDEX orders_total ON public.orders (total);"
# The marker shows whether anything of r2 ran.
R2 = "CREATE TABLE public.marker (id bigint);\n" + INDEX


def orders_with(m, n, analyze=True, **kw):
    """A daemon whose r1 made public.orders, filled with n rows (analyzed,
    so the catalog knows), and r2 (pending) indexes it without
    CONCURRENTLY: require-concurrent-index-creation."""
    m = connected(m)
    write_rev(m, "0001_orders.sql", "r1", up=ORDERS)
    ok(m, "upgrade", {"target": "head"})
    q(m, "INSERT INTO public.orders SELECT g, g FROM generate_series(1, %d) g"
         % n)
    if analyze:
        q(m, "ANALYZE public.orders")
    write_rev(m, "0002_index.sql", "r2", down="r1", up=R2)
    ok(m, "reload")
    return m


def finding(res, key="lint"):
    f, = [x for x in res[key] if x["rule"] == "require-concurrent-index-creation"]
    return f


def pg_conn(m, appname):
    c = psycopg2.connect(host=m.pg.sockdir, port=m.pg.port, user="postgres",
                         dbname=m.db, application_name=appname)
    return c


# ---- sizes --------------------------------------------------------------------

def test_small_table_is_info_and_not_refused(migd_factory):
    """10 rows, under lint_small_table_rows (10000 by default): the finding
    is info, says why, carries the estimate; refuse lets the run go."""
    m = orders_with(migd_factory(overrides={("migrations", "lint"): "refuse"}), 10)
    plan = ok(m, "plan", {"target": "head"})
    f = finding(plan)
    assert f["severity"] == "info", f
    assert f["rows"] == 10 and f["table"] == "public.orders", f
    assert "table has ~10 rows, under lint_small_table_rows = 10000" in f["message"]
    assert plan["runnable"] is True and plan["problems"] == []
    res = ok(m, "upgrade", {"target": "head"})
    assert finding(res)["severity"] == "info"
    assert versions(m) == ["r2"] and rel_exists(m, "public.orders_total")


def test_large_table_is_error_and_refused_nothing_changes(migd_factory):
    """The same migration on 50 000 rows: error, refused before anything
    runs; the database is as it was."""
    m = orders_with(migd_factory(overrides={("migrations", "lint"): "refuse"}), 50000)
    plan = ok(m, "plan", {"target": "head"})
    f = finding(plan)
    assert f["severity"] == "error" and f["rows"] == 50000, f
    assert "informational" not in f["message"]
    assert plan["runnable"] is False
    assert plan["problems"][0]["kind"] == "lint_refused"
    e = err(m, "upgrade", {"target": "head"}, kind="lint_refused")
    assert "require-concurrent-index-creation" in e["message"]
    assert "(table has ~50000 rows; lock: SHARE" in e["message"], e["message"]
    assert versions(m) == ["r1"]
    assert not rel_exists(m, "public.marker")
    assert not rel_exists(m, "public.orders_total")
    assert q(m, "SELECT count(*) FROM public.orders") == "50000"


EVENTS = """
CREATE TABLE public.events (id bigint, at date NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE public.events_2024 (id bigint, at date NOT NULL);
CREATE TABLE public.events_2019 PARTITION OF public.events
    FOR VALUES FROM ('2019-01-01') TO ('2020-01-01');
"""
ATTACH = ("ALTER TABLE public.events ATTACH PARTITION public.events_2024 "
          "FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');")
BOUNDS = ("ALTER TABLE public.events_2024 ADD CONSTRAINT events_2024_bounds "
          "CHECK (at >= '2024-01-01' AND at < '2025-01-01') NOT VALID;")


def test_attach_partition_of_a_filled_table_refused_until_proved(migd_factory):
    """ATTACH PARTITION of an existing table of 50 000 rows scans it under
    ACCESS EXCLUSIVE: an error, refused, nothing changed; after a CHECK of
    the bounds added NOT VALID and validated, the ATTACH is no finding and
    runs. DETACH without CONCURRENTLY is a warning, not refused."""
    m = connected(migd_factory(overrides={("migrations", "lint"): "refuse"}))
    write_rev(m, "0001_events.sql", "r1", up=EVENTS)
    ok(m, "upgrade", {"target": "head"})
    q(m, "INSERT INTO public.events_2024 SELECT g, date '2024-01-01' + g % 300 "
         "FROM generate_series(1, 50000) g; ANALYZE public.events_2024")
    write_rev(m, "0002_attach.sql", "r2", down="r1", up=ATTACH)
    ok(m, "reload")
    plan = ok(m, "plan", {"target": "head"})
    f, = [x for x in plan["lint"] if x["rule"] == "attach-partition-existing-table"]
    assert f["severity"] == "error" and f["rows"] == 50000, f
    assert f["table"] == "public.events_2024", f
    assert plan["runnable"] is False
    e = err(m, "upgrade", {"target": "head"}, kind="lint_refused")
    assert "attach-partition-existing-table" in e["message"], e
    assert versions(m) == ["r1"]
    assert q(m, "SELECT count(*) FROM pg_inherits WHERE inhparent = "
                "'public.events'::regclass") == "1"

    write_rev(m, "0002_attach.sql", "r2", down="r1", up=BOUNDS)
    write_rev(m, "0003_attach.sql", "r3", down="r2", up=(
        "ALTER TABLE public.events_2024 VALIDATE CONSTRAINT events_2024_bounds;\n"
        + ATTACH + "\nALTER TABLE public.events DETACH PARTITION public.events_2019;"))
    ok(m, "reload")
    plan = ok(m, "plan", {"target": "head"})
    rules = [x["rule"] for x in plan["lint"]]
    assert "attach-partition-existing-table" not in rules, plan["lint"]
    d, = [x for x in plan["lint"] if x["rule"] == "require-concurrent-partition-detach"]
    assert d["severity"] == "warning", d
    assert d["blockers"] == [], d  # looked up: nobody uses public.events
    assert plan["runnable"] is True, plan
    ok(m, "upgrade", {"target": "head"})
    assert versions(m) == ["r3"]
    assert q(m, "SELECT string_agg(inhrelid::regclass::text, ',') FROM pg_inherits "
                "WHERE inhparent = 'public.events'::regclass") == "events_2024"


def test_small_table_rows_is_configurable(migd_factory):
    """lint_small_table_rows = 0: no table is small, 10 rows stay an error;
    = 100000: 50 000 rows are info."""
    m = orders_with(migd_factory(overrides={
        ("migrations", "lint"): "refuse",
        ("migrations", "lint_small_table_rows"): "0"}), 10)
    f = finding(ok(m, "plan", {"target": "head"}))
    assert f["severity"] == "error" and f["rows"] == 10, f
    err(m, "upgrade", {"target": "head"}, kind="lint_refused")
    assert versions(m) == ["r1"]
    m2 = orders_with(migd_factory(overrides={
        ("migrations", "lint_small_table_rows"): "100000"}), 50000)
    f = finding(ok(m2, "plan", {"target": "head"}))
    assert f["severity"] == "info" and f["rows"] == 50000, f
    assert "under lint_small_table_rows = 100000" in f["message"]


def test_unknown_size_leaves_the_severity(migd_factory):
    """Never analyzed (reltuples -1): the catalog does not know, so the
    finding keeps its severity and carries no rows."""
    m = orders_with(migd_factory(overrides={("migrations", "lint"): "refuse"}),
                    10, analyze=False)
    assert q(m, "SELECT reltuples < 0 FROM pg_class WHERE oid = "
                "'public.orders'::regclass") == "t"
    f = finding(ok(m, "plan", {"target": "head"}))
    assert f["severity"] == "error" and "rows" not in f, f
    err(m, "upgrade", {"target": "head"}, kind="lint_refused")
    assert versions(m) == ["r1"]


def test_bad_small_table_rows_is_refused(migd_factory, tmp_path):
    """A value that is not a whole number in range: migd -n says which key
    and what it takes."""
    m = migd_factory(overrides={("migrations", "lint_small_table_rows"): "-1"},
                     start=False)
    p = migdtest.run_migd(["-n", "-c", m.config_path])
    assert p.returncode != 0
    assert "lint_small_table_rows must be a whole number from 0 to " \
        "2000000000, not '-1'" in p.stdout + p.stderr


# ---- blockers -----------------------------------------------------------------

def test_plan_shows_blockers_and_does_not_wait(migd_factory):
    """A transaction holding ROW EXCLUSIVE on orders (psycopg2), and one
    queued for ACCESS EXCLUSIVE behind it: plan names both with pid and
    application_name, and answers at once (it takes no lock on orders: a
    lock request would queue behind the waiting ACCESS EXCLUSIVE)."""
    m = orders_with(migd_factory(), 50000)
    holder = pg_conn(m, "lintlive-holder")
    waiter = pg_conn(m, "lintlive-waiter")
    t = threading.Thread(target=lambda: _lock_quietly(waiter), daemon=True)
    try:
        cur = holder.cursor()
        cur.execute("UPDATE public.orders SET total = total WHERE id = 1")
        holder_pid = holder.get_backend_pid()
        waiter_pid = waiter.get_backend_pid()
        waiter.cursor().execute("SET lock_timeout = '60s'")
        waiter.commit()
        t.start()
        migdtest.wait_for(lambda: q(m, "SELECT count(*) FROM pg_locks WHERE pid = %d "
                                       "AND NOT granted" % waiter_pid) == "1",
                          10, interval=0.05, what="the waiter queued")
        t0 = time.monotonic()
        plan = ok(m, "plan", {"target": "head"}, timeout=10)
        assert time.monotonic() - t0 < 5
        f = finding(plan)
        by_pid = {b["pid"]: b for b in f["blockers"]}
        h = by_pid[holder_pid]
        assert h["application_name"] == "lintlive-holder"
        assert h["granted"] is True and h["conflicts"] is True
        assert "RowExclusiveLock" in h["modes"]
        assert h["usename"] == "postgres" and h["xact_age_s"] >= 0
        assert h["state"] == "idle in transaction"
        assert "UPDATE public.orders" in h["query"]
        w = by_pid[waiter_pid]
        assert w["application_name"] == "lintlive-waiter"
        assert w["granted"] is False and w["modes"] == "AccessExclusiveLock"
        # migctl's text: indented lines under the finding
        p = m.migctl("plan", "head", timeout=10)
        assert p.returncode == X_OK, p.stderr
        assert ("blocker: pid %d, user postgres, application_name "
                "'lintlive-holder', idle in transaction" % holder_pid) in p.stdout
        assert "waits for AccessExclusiveLock" in p.stdout
        # upgrade --dry-run too
        dry = ok(m, "upgrade", {"target": "head", "dry_run": True}, timeout=10)
        assert holder_pid in [b["pid"] for b in finding(dry)["blockers"]]
    finally:
        holder.rollback()
        holder.close()
        if t.is_alive() or t.ident is not None:
            t.join(10)
        waiter.close()
    # gone: no blockers
    plan = ok(m, "plan", {"target": "head"})
    assert finding(plan)["blockers"] == []
    assert versions(m) == ["r1"]


def _lock_quietly(conn):
    try:
        conn.cursor().execute("LOCK TABLE public.orders IN ACCESS EXCLUSIVE MODE")
        conn.rollback()
    except psycopg2.Error:
        pass


def test_blockers_are_those_of_each_statements_lock(migd_factory):
    """One migration indexes orders (SHARE) and then changes a column's type
    (ACCESS EXCLUSIVE) while a transaction has read orders: the reader is in
    the way of the ALTER, not of the CREATE INDEX, whose blockers are only
    the writer (PostgreSQL's table of conflicting lock modes)."""
    m = orders_with(migd_factory(), 50000)
    write_rev(m, "0002_index.sql", "r2", down="r1",
              up=INDEX + "\nALTER TABLE public.orders ALTER COLUMN total TYPE numeric;")
    ok(m, "reload")
    reader, writer = pg_conn(m, "lintlive-reader"), pg_conn(m, "lintlive-writer")
    try:
        reader.cursor().execute("SELECT count(*) FROM public.orders")
        writer.cursor().execute("UPDATE public.orders SET total = total WHERE id = 1")
        rpid, wpid = reader.get_backend_pid(), writer.get_backend_pid()
        plan = ok(m, "plan", {"target": "head"}, timeout=10)
        idx = finding(plan)
        alter, = [f for f in plan["lint"] if f["rule"] == "changing-column-type"]
        assert [b["pid"] for b in idx["blockers"]] == [wpid], idx["blockers"]
        assert idx["blockers"][0]["conflicts"] is True
        assert sorted(b["pid"] for b in alter["blockers"]) == sorted([rpid, wpid])
        assert all(b["conflicts"] for b in alter["blockers"]), alter["blockers"]
        p = m.migctl("plan", "head", timeout=10)
        text = p.stdout.split("changing-column-type")
        assert "lintlive-reader" not in text[0] and "lintlive-reader" in text[1], p.stdout
    finally:
        reader.close()
        writer.close()


def test_no_blockers_on_a_run(migd_factory):
    """A real run does not look for blockers (lock_timeout decides there):
    its findings carry rows, not blockers."""
    m = orders_with(migd_factory(), 10)
    res = ok(m, "upgrade", {"target": "head"})
    f = finding(res)
    assert "blockers" not in f and f["rows"] == 10


# ---- the lint method and migctl lint over the socket --------------------------

def test_lint_method_pending_given_and_all(migd_factory):
    """lint: the pending plan by default (info included), the revisions
    given, or all of them each alone; live context in each."""
    m = orders_with(migd_factory(overrides={("migrations", "lint"): "off"}), 50000)
    res = ok(m, "lint")
    assert res["live"] is True and res["files"] == 1
    f = finding(res, "findings")
    assert f["severity"] == "error" and f["rows"] == 50000 and f["revision"] == "r2"
    assert f["blockers"] == []
    assert res["errors"] == 1
    res = ok(m, "lint", {"revisions": ["r1", "r2"]})
    # r1 creates orders in the same run: its index is no finding
    assert res["files"] == 2 and res["findings"] == [] and res["errors"] == 0
    res = ok(m, "lint", {"all": True})
    assert res["files"] == 2 and res["errors"] == 1
    assert versions(m) == ["r1"]


def test_migctl_lint_over_the_socket(migd_factory):
    """migctl lint with $MIGD_SOCKET (or -s) asks migd: --json, exit 4 on
    an error finding, 0 once the table is small."""
    m = orders_with(migd_factory(), 50000)
    p = m.migctl("--json", "lint")
    assert p.returncode == X_CHECK, p.stdout + p.stderr
    res = json.loads(p.stdout)
    assert res["live"] is True and res["errors"] == 1
    assert finding(res, "findings")["rows"] == 50000
    p = m.migctl("lint", "-s", m.socket)
    assert p.returncode == X_CHECK, p.stdout + p.stderr
    assert "error: require-concurrent-index-creation" in p.stdout
    assert "[table has ~50000 rows]" in p.stdout
    assert "live: migd's catalog" in p.stdout
    q(m, "DELETE FROM public.orders WHERE id > 10")
    q(m, "VACUUM ANALYZE public.orders")
    p = m.migctl("--json", "lint")
    assert p.returncode == X_OK, p.stdout + p.stderr
    f = finding(json.loads(p.stdout), "findings")
    assert f["severity"] == "info" and f["rows"] == 10
    # offline stays offline: -d reads the files, knows no size
    p = m.migctl("--json", "lint", "-d", m.migrations_dir)
    assert p.returncode == X_CHECK, p.stdout + p.stderr
    res = json.loads(p.stdout)
    assert "live" not in res and "rows" not in finding(res, "findings")


def test_lint_bad_inputs(migd_factory):
    """An unknown revision, params of the wrong type, revisions with all,
    -s with FILE: clear errors, nothing linted, nothing changed."""
    m = orders_with(migd_factory(), 10)
    e = err(m, "lint", {"revisions": ["nope"]}, kind="plan_error")
    assert "nope" in e["message"] and "nothing linted" in e["message"]
    e = err(m, "lint", {"revisions": "r2"}, kind="invalid_params")
    assert "revisions" in e["message"]
    e = err(m, "lint", {"all": "yes"}, kind="invalid_params")
    assert "all" in e["message"]
    e = err(m, "lint", {"revisions": ["r2"], "all": True}, kind="invalid_params")
    assert "not both" in e["message"]
    e = err(m, "lint", {"target": "head"}, kind="invalid_params")
    p = m.migctl("lint", "-s", m.socket, "-d", m.migrations_dir)
    assert p.returncode == X_USAGE, p.stdout + p.stderr
    assert "give one or the other" in p.stderr
    assert versions(m) == ["r1"] and not rel_exists(m, "public.marker")


# ---- files sent over the socket (lint -s SOCKET FILE...) ----------------------

PR_INDEX = "CREATE INDEX orders_total_pr ON public.orders (total);"


def pr_file(tmp_path, name="0003_pr.sql", revision="r3", up=PR_INDEX,
            down="r2"):
    """A migration of a pull request: a file outside migd's directory."""
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("-- revision: %s\n-- down_revision: %s\n\n-- migrate:up\n"
                    "%s\n\n-- migrate:down\nSELECT 1;\n" % (revision, down, up))
    return str(path)


def lint_sent(m, *args):
    p = m.migctl("--json", "lint", "-s", m.socket, *args)
    return p, (json.loads(p.stdout) if p.stdout.strip() else None)


def test_lint_files_sent_get_live_context(migd_factory, tmp_path):
    """A file migd has not loaded, linted over the socket: the catalog's
    size decides its severity (50 000 rows: error, exit 4; 10: info, exit
    0), while offline the same file keeps the size-free error.  Nothing
    runs, nothing is written, the directory is as it was."""
    m = orders_with(migd_factory(), 50000)
    f = pr_file(tmp_path)
    before = sorted(os.listdir(m.migrations_dir))
    p, res = lint_sent(m, f)
    assert p.returncode == X_CHECK, p.stdout + p.stderr
    assert res["live"] is True and res["files"] == 1 and res["errors"] == 1
    x = finding(res, "findings")
    assert x["file"] == f and x["revision"] == "r3" and x["rows"] == 50000
    assert x["severity"] == "error" and x["blockers"] == [], x
    p = m.migctl("lint", "-s", m.socket, f)
    assert p.returncode == X_CHECK, p.stdout + p.stderr
    assert f + ":5:1: error: require-concurrent-index-creation" in p.stdout
    assert "[table has ~50000 rows]" in p.stdout
    assert "1 file: 1 error" in p.stdout and "live: migd's catalog" in p.stdout
    q(m, "DELETE FROM public.orders WHERE id > 10")
    q(m, "VACUUM ANALYZE public.orders")
    p, res = lint_sent(m, f)
    assert p.returncode == X_OK, p.stdout + p.stderr
    x = finding(res, "findings")
    assert x["severity"] == "info" and x["rows"] == 10 and res["errors"] == 0
    # offline ($MIGD_SOCKET alone does not send FILE...): no size known
    p = m.migctl("--json", "lint", f)
    assert p.returncode == X_CHECK, p.stdout + p.stderr
    res = json.loads(p.stdout)
    x = finding(res, "findings")
    assert "live" not in res and "rows" not in x and x["severity"] == "error"
    # several files are one run in the order given, as offline: a table the
    # first creates is new in the second
    g = pr_file(tmp_path, "0004_new.sql", "r4", down="r3",
                up="CREATE TABLE public.fresh (id bigint, v bigint);")
    h = pr_file(tmp_path, "0005_idx.sql", "r5", down="r4",
                up="CREATE INDEX fresh_v ON public.fresh (v);")
    p, res = lint_sent(m, g, h)
    assert p.returncode == X_OK and res["files"] == 2, p.stdout + p.stderr
    assert res["findings"] == [], res
    p, res = lint_sent(m, h)
    assert res["errors"] == 1 and "rows" not in finding(res, "findings")
    assert versions(m) == ["r1"] and not rel_exists(m, "public.orders_total_pr")
    assert not rel_exists(m, "public.marker") and not rel_exists(m, "public.fresh")
    assert sorted(os.listdir(m.migrations_dir)) == before
    assert ok(m, "status")["migrations"]["revisions"] == 2


def test_lint_files_sent_not_the_loaded_ones(migd_factory, tmp_path):
    """A file whose id is a loaded revision's (r2) is linted from the text
    sent, the pull request's version; a path naming a file on migd's side
    only names the text: migd never opens it."""
    m = orders_with(migd_factory(), 50000)
    safe = ("CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_total "
            "ON public.orders (total);")
    f = pr_file(tmp_path, "0002_index.sql", "r2", up=safe, down="r1")
    p, res = lint_sent(m, f)
    assert p.returncode == X_OK, p.stdout + p.stderr
    assert res["files"] == 1 and res["errors"] == 0 and res["findings"] == []
    assert ok(m, "lint", {"revisions": ["r2"]})["errors"] == 1
    # the path of migd's own r2 (unsafe on disk), with the safe text
    loaded = os.path.join(m.migrations_dir, "0002_index.sql")
    res = ok(m, "lint", {"files": [{"path": loaded, "text": open(f).read()}]})
    assert res["errors"] == 0 and res["findings"] == [], res
    res = ok(m, "lint", {"files": [{"path": "/nonexistent/x.sql",
                                    "text": open(loaded).read()}]})
    assert res["errors"] == 1 and finding(res, "findings")["file"] == \
        "/nonexistent/x.sql"
    assert versions(m) == ["r1"] and not rel_exists(m, "public.orders_total")


def test_lint_files_sent_in_other_tools_layouts(migd_factory, tmp_path):
    """A goose file (auto-detected, and with --format goose) and a diesel
    migration (its directory's name from the path): read as offline lint
    reads them, with live context; --format dbmate misreads the goose file
    as offline -c with format = dbmate would."""
    m = orders_with(migd_factory(), 50000)
    goose = tmp_path / "00003_pr.sql"
    goose.write_text("-- +goose Up\n" + PR_INDEX + "\n\n-- +goose Down\n"
                     "DROP INDEX public.orders_total_pr;\n")
    diesel = tmp_path / "2024-05-01-000000_pr" / "up.sql"
    diesel.parent.mkdir()
    diesel.write_text(PR_INDEX + "\n")
    (diesel.parent / "down.sql").write_text("DROP INDEX public.orders_total_pr;\n")
    for args in ([str(goose)], ["--format", "goose", str(goose)],
                 [str(diesel)], ["--format=diesel", str(diesel)]):
        p, res = lint_sent(m, *args)
        assert p.returncode == X_CHECK, (args, p.stdout + p.stderr)
        x = finding(res, "findings")
        assert x["rows"] == 50000 and x["severity"] == "error", (args, x)
        assert x["line"] == (2 if args[-1] == str(goose) else 1), x
        off = m.migctl("--json", "lint", *args[-1:])
        assert off.returncode == X_CHECK, off.stdout + off.stderr
        y = finding(json.loads(off.stdout), "findings")
        assert (y["file"], y["line"], y["column"]) == \
            (x["file"], x["line"], x["column"])
    p, res = lint_sent(m, "--format", "dbmate", str(goose))
    assert p.returncode == X_FAILED, p.stdout + p.stderr
    assert "00003_pr.sql" in res["error"]["data"]["errors"][0]
    assert versions(m) == ["r1"] and not rel_exists(m, "public.orders_total_pr")


def test_lint_files_sent_bad_inputs(migd_factory, tmp_path):
    """files of the wrong shape, with revisions or all, an unknown format,
    a format without files, a file the parser refuses, one that is not
    there or not UTF-8, and usage mistakes: clear errors, nothing linted,
    nothing changed, and migd goes on serving."""
    m = orders_with(migd_factory(), 10)
    for bad in ("x", [], ["x"], [{"path": "a.sql"}], [{"text": "SELECT 1;"}],
                [{"path": 1, "text": "x"}], [{"path": "", "text": "x"}],
                [{"path": "a.sql", "text": None}],
                [{"path": "a.sql", "text": "x", "mode": "0644"}]):
        e = err(m, "lint", {"files": bad}, kind="invalid_params")
        assert 'parameter "files" must be a non-empty array of objects' \
            in e["message"], (bad, e)
    one = [{"path": "a.sql", "text": PR_INDEX}]
    e = err(m, "lint", {"files": one, "revisions": ["r2"]}, kind="invalid_params")
    assert "lint takes files or revisions, not both" in e["message"]
    e = err(m, "lint", {"files": one, "all": True}, kind="invalid_params")
    assert "lint takes files or all, not both" in e["message"]
    e = err(m, "lint", {"format": "goose"}, kind="invalid_params")
    assert "format goes with files" in e["message"]
    e = err(m, "lint", {"files": one, "format": "liquibase"}, kind="invalid_params")
    assert "format 'liquibase': unknown layout; one of auto, migd" in e["message"]
    f = pr_file(tmp_path)
    p, res = lint_sent(m, "--format", "liquibase", f)
    assert p.returncode == X_FAILED, p.stdout + p.stderr
    assert "unknown layout" in res["error"]["message"]
    # a file that cannot be read as a migration: as offline, exit 1
    broken = tmp_path / "0006_broken.sql"
    broken.write_text("-- revision: r6\n-- colour: blue\n\n-- migrate:up\n"
                      "SELECT 1;\n")
    broken = str(broken)
    p, res = lint_sent(m, f, broken)
    assert p.returncode == X_FAILED, p.stdout + p.stderr
    assert res["error"]["data"]["kind"] == "invalid_migrations"
    assert "nothing linted" in res["error"]["message"]
    off = m.migctl("--json", "lint", f, broken)
    assert off.returncode == X_FAILED, off.stdout + off.stderr
    assert res["error"]["data"]["errors"] == \
        json.loads(off.stdout)["error"]["data"]["errors"]
    assert broken + ":2: unknown header 'colour'" in \
        res["error"]["data"]["errors"][1]
    p = m.migctl("lint", "-s", m.socket, f, broken)
    assert p.returncode == X_FAILED and broken + ":2:" in p.stderr, p.stderr
    # SQL the parser refuses (a newer server's, maybe): a note, as offline
    refused = pr_file(tmp_path, "0008_refused.sql", "r8",
                      up="CREATE INDEX ON public.orders (total;")
    p, res = lint_sent(m, refused)
    assert p.returncode == X_OK, p.stdout + p.stderr
    off = m.migctl("--json", "lint", refused)
    assert off.returncode == X_OK and res["files"] == 1, off.stdout
    assert res["notes"] == json.loads(off.stdout)["notes"]
    assert res["notes"][0].startswith(refused + ": not linted: " + refused +
                                      ":5: syntax error")
    # not there, not UTF-8: said before anything is sent
    latin = tmp_path / "0007_latin.sql"
    latin.write_bytes(b"-- migrate:up\nSELECT 'caf\xe9';\n")
    p, res = lint_sent(m, f, str(tmp_path / "missing.sql"), str(latin))
    assert p.returncode == X_FAILED, p.stdout + p.stderr
    errors = res["error"]["data"]["errors"]
    assert errors[0] == str(tmp_path / "missing.sql") + \
        ": No such file or directory", errors
    assert "0007_latin.sql: not UTF-8 text" in errors[1]
    assert "without -s" in errors[1]
    # usage
    p = m.migctl("lint", "-s", m.socket, "-c", m.config_path, f)
    assert p.returncode == X_USAGE and "give one or the other" in p.stderr
    p = m.migctl("lint", "--format", "goose", f)
    assert p.returncode == X_USAGE, p.stdout + p.stderr
    assert "--format goes with -s SOCKET FILE..." in p.stderr
    p = m.migctl("lint", "-s", m.socket, "--format", "goose")
    assert p.returncode == X_USAGE, p.stdout + p.stderr
    assert versions(m) == ["r1"] and not rel_exists(m, "public.marker")
    assert not rel_exists(m, "public.orders_total_pr")
    assert ok(m, "status")["state"] == "pending"


def test_lint_files_sent_limits(migd_factory, tmp_path):
    """Over 256 files or 256 KiB of text: refused by migctl before it
    connects and by migd, each naming the limit and the offline way; a
    request over max_request_bytes: migctl says how to lint instead."""
    m = orders_with(migd_factory(overrides={
        ("control", "max_request_bytes"): "4194304"}), 10)
    many = [{"path": "f%d.sql" % i, "text": "SELECT 1;"} for i in range(257)]
    e = err(m, "lint", {"files": many}, kind="invalid_params")
    assert "257 files: lint takes at most 256 in one request" in e["message"]
    assert "migctl lint [-c CONFIG] FILE..., without -s" in e["message"]
    big = "SELECT 1;\n" * 13108      # 131 080 bytes: two are over 256 KiB
    e = err(m, "lint", {"files": [{"path": "a.sql", "text": big},
                                  {"path": "b.sql", "text": big}]},
            kind="invalid_params")
    assert "262160 bytes of text: lint takes at most 262144 (256 KiB)" \
        in e["message"] and "without -s" in e["message"], e
    assert ok(m, "lint", {"files": [{"path": "a.sql", "text": big}]})["files"] == 1
    paths = []
    for i in range(257):
        paths.append(str(tmp_path / ("%04d_x.sql" % i)))
        with open(paths[-1], "w") as fh:
            fh.write("SELECT 1;\n")
    p, res = lint_sent(m, *paths)
    assert p.returncode == X_FAILED, p.stdout + p.stderr
    assert "257 files: lint -s takes at most 256" in res["error"]["message"]
    p, res = lint_sent(m, *paths[:256])
    assert p.returncode == X_OK and res["files"] == 256, p.stdout + p.stderr
    for name in ("a.sql", "b.sql"):
        (tmp_path / name).write_text(big)
    p, res = lint_sent(m, str(tmp_path / "a.sql"), str(tmp_path / "b.sql"))
    assert p.returncode == X_FAILED, p.stdout + p.stderr
    assert "b.sql: over 262144 bytes (256 KiB) of text" in res["error"]["message"]
    # the default max_request_bytes (64 KiB) is the smaller limit
    m2 = orders_with(migd_factory(), 10)
    p = m2.migctl("lint", "-s", m2.socket, str(tmp_path / "a.sql"))
    assert p.returncode == X_FAILED, p.stdout + p.stderr
    assert "request larger than 65536 bytes (max_request_bytes in [control])" \
        in p.stderr, p.stderr
    assert "lint them offline (migctl lint [-c CONFIG] FILE..., without -s)" \
        in p.stderr
    assert ok(m2, "status")["state"] == "pending"
    assert versions(m) == ["r1"] and versions(m2) == ["r1"]


def test_names_the_catalog_cannot_resolve(migd_factory):
    """A table that exists nowhere, a quoted mixed-case one, and a
    three-part name (to_regclass would raise on it): the plan answers, the
    unknown ones get no live context, the quoted one is found."""
    m = connected(migd_factory())
    write_rev(m, "0001_orders.sql", "r1",
              up='CREATE TABLE public."Orders" (id bigint, total bigint);')
    ok(m, "upgrade", {"target": "head"})
    q(m, 'INSERT INTO public."Orders" SELECT g, g FROM generate_series(1, 20) g')
    q(m, 'ANALYZE public."Orders"')
    write_rev(m, "0002_x.sql", "r2", down="r1",
              up='CREATE INDEX i1 ON public."Orders" (total);\n'
                 "CREATE INDEX i2 ON public.nowhere (total);\n"
                 "DROP TABLE otherdb.public.gone;")
    ok(m, "reload")
    res = ok(m, "lint")
    by_msg = {f["message"].split(" (")[0]: f for f in res["findings"]}
    f = [x for x in res["findings"] if "i1" in x["message"]][0]
    assert f["rows"] == 20 and f["severity"] == "info", f
    f = [x for x in res["findings"] if "i2" in x["message"]][0]
    assert "rows" not in f and f["severity"] == "error", f
    f = [x for x in res["findings"] if x["rule"] == "ban-drop-table"][0]
    assert "rows" not in f and "blockers" not in f, f
    assert ok(m, "plan", {"target": "head"})["lint"], by_msg


def test_statement_by_statement_patterns_pass_refuse(migd_factory):
    """Two safe patterns that were errors under lint = refuse, on tables of
    50 000 rows: a CHECK added NOT VALID then VALIDATEd in one migration of
    transaction: none (the ADD commits before the VALIDATE scans, so its
    ACCESS EXCLUSIVE is gone), and a partitioned table's index as
    PostgreSQL documents it (CREATE INDEX ON ONLY the parent builds
    nothing; each partition's CONCURRENTLY, then ATTACH). Both run, and
    PostgreSQL ends with the constraint and the index valid; the same
    VALIDATE inside the file's BEGIN is still refused."""
    m = connected(migd_factory(overrides={("migrations", "lint"): "refuse"}))
    write_rev(m, "0001_events.sql", "r1", up=EVENTS + ORDERS)
    ok(m, "upgrade", {"target": "head"})
    q(m, "INSERT INTO public.events_2019 SELECT g, date '2019-01-01' + g % 300 "
         "FROM generate_series(1, 50000) g; ANALYZE public.events_2019")
    q(m, "INSERT INTO public.orders SELECT g, g FROM generate_series(1, 50000) g;"
         " ANALYZE public.orders")
    write_rev(m, "0002_total.sql", "r2", down="r1", transaction="none", up=(
        "ALTER TABLE public.orders ADD CONSTRAINT orders_total_pos "
        "CHECK (total > 0) NOT VALID;\n"
        "ALTER TABLE public.orders VALIDATE CONSTRAINT orders_total_pos;\n"
        "CREATE INDEX IF NOT EXISTS events_at ON ONLY public.events (at);"))
    write_rev(m, "0003_events_at.sql", "r3", down="r2", transaction="none", up=(
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS events_2019_at "
        "ON public.events_2019 (at);\n"
        "ALTER INDEX public.events_at ATTACH PARTITION public.events_2019_at;"))
    ok(m, "reload")
    plan = ok(m, "plan", {"target": "head"})
    assert plan["runnable"] is True, plan["problems"]
    assert [f for f in plan["lint"] if f["severity"] == "error"] == [], plan["lint"]
    ok(m, "upgrade", {"target": "head"})
    assert versions(m) == ["r3"]
    assert q(m, "SELECT convalidated FROM pg_constraint "
                "WHERE conname = 'orders_total_pos'") == "t"
    assert q(m, "SELECT indisvalid FROM pg_index "
                "WHERE indexrelid = 'public.events_at'::regclass") == "t"

    write_rev(m, "0004_total.sql", "r4", down="r3", up=(
        "BEGIN;\nALTER TABLE public.orders ADD CONSTRAINT orders_total_max "
        "CHECK (total < 10000000) NOT VALID;\n"
        "ALTER TABLE public.orders VALIDATE CONSTRAINT orders_total_max;\n"
        "COMMIT;"))
    ok(m, "reload")
    e = err(m, "upgrade", {"target": "head"}, kind="lint_refused")
    assert "constraint-missing-not-valid" in e["message"], e
    assert versions(m) == ["r3"]
    assert q(m, "SELECT count(*) FROM pg_constraint "
                "WHERE conname = 'orders_total_max'") == "0"


def test_do_block_foreign_key_refused_then_not_valid_runs(migd_factory):
    """The idempotent way to add a constraint, a DO block with IF NOT EXISTS,
    adding a foreign key without NOT VALID to orders of 50 000 rows: refused
    under lint = refuse naming the line inside the block, nothing changed;
    the same block with NOT VALID runs and PostgreSQL has the constraint."""
    m = orders_with(migd_factory(overrides={("migrations", "lint"): "refuse"}),
                    50000)
    q(m, "CREATE TABLE public.customers (id bigint PRIMARY KEY)")
    block = ("DO $$\nBEGIN\n  IF NOT EXISTS (SELECT 1 FROM pg_constraint "
             "WHERE conname = 'orders_total_fk') THEN\n"
             "    ALTER TABLE public.orders ADD CONSTRAINT orders_total_fk "
             "FOREIGN KEY (total) REFERENCES public.customers (id)%s;\n"
             "  END IF;\nEND\n$$;")
    path = write_rev(m, "0002_index.sql", "r2", down="r1", up=block % "")
    ok(m, "reload")
    e = err(m, "upgrade", {"target": "head"}, kind="lint_refused")
    line = line_of(path, "ALTER TABLE public.orders ADD CONSTRAINT")
    assert line == 8
    assert ("0002_index.sql:%d:5: adding-foreign-key-constraint: "
            "ADD CONSTRAINT orders_total_fk FOREIGN KEY without NOT VALID"
            % line in e["message"]), e
    assert "(table has ~50000 rows" in e["message"], e
    assert versions(m) == ["r1"]
    assert q(m, "SELECT count(*) FROM pg_constraint "
                "WHERE conname = 'orders_total_fk'") == "0"
    write_rev(m, "0002_index.sql", "r2", down="r1", up=block % " NOT VALID")
    ok(m, "reload")
    ok(m, "upgrade", {"target": "head"})
    assert versions(m) == ["r2"]
    assert q(m, "SELECT convalidated FROM pg_constraint "
                "WHERE conname = 'orders_total_fk'") == "f"
    assert path


# ---- migrations as teams write them (tests/fixtures/lint_teams/shop) ----------

SHOP = os.path.join(migdtest.REPO, "tests", "fixtures", "lint_teams", "shop")


def shop_upto(m, last):
    """The shop chain's files up to revision `last` in the daemon's directory."""
    for f in sorted(os.listdir(SHOP)):
        if f[:4] <= last:
            shutil.copy(os.path.join(SHOP, f), m.migrations_dir)
    ok(m, "reload")


def test_shop_chain_safe_patterns_pass_refuse(migd_factory):
    """strong_migrations' patterns under lint = refuse, on real tables with
    rows: status added nullable and backfilled, CHECK NOT VALID, VALIDATE
    then SET NOT NULL, CONCURRENTLY in transaction: none, a foreign key NOT
    VALID then VALIDATE, an enum value used after ADD VALUE statement by
    statement, a partitioned table, a rename with a view. None is refused,
    and each runs on PostgreSQL; psql-style 0012 indexes orders, 20 000 rows,
    without CONCURRENTLY: refused naming FILE:LINE:COL, nothing of it ran."""
    m = connected(migd_factory(overrides={("migrations", "lint"): "refuse"}))
    shop_upto(m, "0001")
    ok(m, "upgrade", {"target": "head"})
    q(m, "INSERT INTO users (email) SELECT 'u' || g FROM generate_series(1, 20000) g")
    q(m, "INSERT INTO orders (user_id, total_cents) SELECT 1 + g % 20000, g - 5 "
         "FROM generate_series(1, 20000) g")
    q(m, "ANALYZE users")
    q(m, "ANALYZE orders")
    shop_upto(m, "0011")
    plan = ok(m, "plan", {"target": "head"})
    assert plan["runnable"] is True, plan["problems"]
    assert plan["lint"] == [], plan["lint"]
    ok(m, "upgrade", {"target": "head"})
    assert versions(m) == ["0011"]
    assert q(m, "SELECT count(*) FROM orders WHERE state = 'refunded'") == "4"
    assert q(m, "SELECT attnotnull FROM pg_attribute WHERE attrelid = "
                "'accounts'::regclass AND attname = 'status'") == "t"
    shop_upto(m, "0012")
    p = m.migctl("upgrade", "head")
    assert p.returncode != X_OK, p.stdout + p.stderr
    assert ("0012_psql_style.sql:7:1: require-concurrent-index-creation: "
            "CREATE INDEX orders_created_at_idx on orders without CONCURRENTLY "
            "(table has ~20000 rows"
            in p.stdout + p.stderr), p.stdout + p.stderr
    assert versions(m) == ["0011"] and not rel_exists(m, "public.orders_created_at_idx")
    assert q(m, "SELECT count(*) FROM pg_attribute WHERE attrelid = "
                "'orders'::regclass AND attname = 'note'") == "0"
