"""Lock-aware retries ([migrations] lock_retries, issue 15 point 6) and lint
findings in the history (point 5), against a real PostgreSQL: a psycopg2
session holds a lock in an open transaction while migd's step waits for it
with a short lock_timeout."""

import os
import signal
import threading
import time

import psycopg2
import pytest

from engine_helpers import (E_SQL, X_OK, Bg, call, connected, err, history, ok, q,
                            rel_exists, versions, write_rev)

HOLDER_APP = "lock-holder-test"


def holder(m, sql="SELECT count(*) FROM cars.car", isolation=None):
    """A session that runs sql in a transaction it leaves open: it keeps the
    locks (and snapshot) the statement took until commit() or close()."""
    c = psycopg2.connect(dbname=m.db, host=m.pg.sockdir, port=m.pg.port,
                         user="postgres", application_name=HOLDER_APP)
    if isolation is not None:
        c.set_session(isolation_level=isolation)
    with c.cursor() as cur:
        cur.execute(sql)
    return c


def retry_migd(migd_factory, retries="3", wait="300ms", max_wait="1s", **more):
    ov = {("migrations", "lock_timeout"): "200ms",
          ("migrations", "lock_retries"): retries,
          ("migrations", "lock_retry_wait"): wait,
          ("migrations", "lock_retry_max_wait"): max_wait}
    for k, v in more.items():
        ov[("migrations", k)] = v
    m = connected(migd_factory(overrides=ov))
    q(m, "CREATE SCHEMA cars; CREATE TABLE cars.car (id int); "
         "INSERT INTO cars.car VALUES (1), (2)")
    return m


def columns(m, table="car"):
    return q(m, "SELECT string_agg(column_name, ',' ORDER BY ordinal_position) FROM "
                "information_schema.columns WHERE table_name = '%s'" % table)


def runs(m, revision):
    return [h for h in history(m) if h["revision"] == revision and h["direction"] == "up"]


def test_retry_succeeds_once_the_holder_commits(migd_factory):
    m = retry_migd(migd_factory, retries="5")
    write_rev(m, "0001_color.sql", "0001", up="ALTER TABLE cars.car ADD COLUMN color text;")
    c = holder(m)
    pid = c.get_backend_pid()
    t = threading.Timer(1.0, c.commit)
    t.start()
    try:
        t0 = time.monotonic()
        p = m.migctl("upgrade", timeout=30)
        took = time.monotonic() - t0
    finally:
        t.cancel()
        c.close()
    assert p.returncode == X_OK, p.stdout + p.stderr
    assert took >= 0.9, took                # it did wait for the holder
    out = p.stdout + p.stderr
    # the progress named the holder: pid, application_name, state, age
    assert "waiting " in out and "(retry 1/5): lock on cars.car held by pid %d (app \"%s\", " \
        "idle in transaction, " % (pid, HOLDER_APP) in out, out
    assert versions(m) == ["0001"]
    assert columns(m) == "id,color"
    h = runs(m, "0001")
    failed, last = h[:-1], h[-1]
    assert len(failed) >= 1, h
    for n, f in enumerate(failed, 1):
        assert f["success"] is False and f["dirty"] is False and f["sqlstate"] == "55P03", f
        assert f["attempt"] == n, f
        assert "retried: attempt %d of 6" % n in f["error"], f
        assert "held by pid %d" % pid in f["error"], f
    assert last["success"] is True and last["attempt"] == len(failed) + 1, last
    st = m.status()
    assert st["state"] == "up_to_date", st
    # history (the request and migctl's table) says which attempt it was
    hr = ok(m, "history", {})["history"]
    assert hr[0]["attempt"] == last["attempt"] and hr[1]["attempt"] == last["attempt"] - 1, hr
    p = m.migctl("history")
    assert "attempt %d (lock_retries)" % last["attempt"] in p.stdout, p.stdout


def test_holder_never_releases_fails_after_every_attempt(migd_factory):
    m = retry_migd(migd_factory, retries="3")
    write_rev(m, "0001_color.sql", "0001", up="""
        CREATE TABLE public.before_alter (id int);
        ALTER TABLE cars.car ADD COLUMN color text;
        """)
    c = holder(m)
    pid = c.get_backend_pid()
    try:
        t0 = time.monotonic()
        notes, r = call(m, "upgrade", {}, timeout=30)
        took = time.monotonic() - t0
    finally:
        c.close()
    e = r["error"]
    assert e["code"] == E_SQL and e["data"]["kind"] == "sql_error", e
    assert e["data"]["sqlstate"] == "55P03" and e["data"]["attempts"] == 4, e
    msg = e["message"]
    assert "gave up after 4 attempts (lock_retries = 3)" in msg, msg
    assert "lock on cars.car held by pid %d (app \"%s\", idle in transaction" % (
        pid, HOLDER_APP) in msg, msg
    assert "rolled back" in msg and "dirty" not in msg, msg
    holders = e["data"]["lock_holders"]
    assert holders[0]["pid"] == pid and holders[0]["application_name"] == HOLDER_APP, holders
    # three waits, each saying who it waits for; four attempts in all
    waits = [n["params"] for n in notes if n.get("params", {}).get("event") == "waiting"]
    assert [w["retry"] for w in waits] == [1, 2, 3], waits
    assert all(w["holders"][0]["pid"] == pid for w in waits), waits
    assert took < 4 * 0.2 + 3 * 1.0 + 3.0, took
    # nothing changed, nothing applied, not dirty
    assert versions(m) == []
    assert columns(m) == "id"
    assert not rel_exists(m, "public.before_alter")
    h = runs(m, "0001")
    assert [x["attempt"] for x in h] == [1, 2, 3, 4], h
    assert all(not x["success"] and not x["dirty"] and x["sqlstate"] == "55P03" for x in h), h
    assert all("retried" in x["error"] for x in h[:3]) and "gave up" in h[3]["error"], h
    st = m.status()
    assert st["state"] != "dirty" and not st.get("dirty"), st
    # once the holder is gone, the same upgrade simply runs
    ok(m, "upgrade", {})
    assert versions(m) == ["0001"]


def wait_for_retry_row(m, revision, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if any("retried" in (h["error"] or "") for h in runs(m, revision)):
            return
        time.sleep(0.05)
    raise AssertionError("no retried attempt recorded")


def test_status_answers_and_cancel_stops_during_the_wait(migd_factory):
    m = retry_migd(migd_factory, retries="3", wait="5s", max_wait="5s")
    write_rev(m, "0001_color.sql", "0001", up="ALTER TABLE cars.car ADD COLUMN color text;")
    c = holder(m)
    try:
        run = Bg(lambda: call(m, "upgrade", {}, timeout=30))
        wait_for_retry_row(m, "0001")
        time.sleep(0.3)         # inside the wait (at least 2.5 s of it)
        # (d) status answers at once, and says a run is going on
        t0 = time.monotonic()
        st = m.status()
        assert time.monotonic() - t0 < 1.0
        assert st["running"] is True, st
        # (c) cancel ends the wait, not the backoff's end
        t0 = time.monotonic()
        ok(m, "cancel", {})
        notes, r = run.join(10)
        took = time.monotonic() - t0
    finally:
        c.close()
    assert took < 2.0, took
    e = r["error"]
    assert e["data"]["kind"] == "cancelled", e
    assert "nothing was applied" in e["message"], e
    waits = [n for n in notes if n.get("params", {}).get("event") == "waiting"]
    assert len(waits) == 1 and waits[0]["params"]["wait_ms"] >= 2500, waits
    assert versions(m) == [] and columns(m) == "id"
    assert [x["attempt"] for x in runs(m, "0001")] == [1]
    assert m.status()["running"] is False


def test_sigterm_during_the_wait_stops_the_run(migd_factory):
    m = retry_migd(migd_factory, retries="3", wait="10s", max_wait="10s")
    write_rev(m, "0001_t.sql", "0001", up="CREATE TABLE public.first_one (id int);")
    write_rev(m, "0002_color.sql", "0002", down="0001",
              up="ALTER TABLE cars.car ADD COLUMN color text;")
    c = holder(m)
    try:
        run = Bg(lambda: call(m, "upgrade", {}, timeout=30))
        wait_for_retry_row(m, "0002")
        time.sleep(0.3)
        t0 = time.monotonic()
        m.signal(signal.SIGTERM)
        _, r = run.join(15)
        assert m.wait_exit(15) == 0
        took = time.monotonic() - t0
    finally:
        c.close()
    assert took < 2.5, took                  # not the 5-10 s of the wait
    e = r["error"]
    assert e["data"]["kind"] == "shutting_down", e
    assert "stopped waiting to retry 0002" in e["message"], e
    assert [d["revision"] for d in e["data"]["done"]] == ["0001"], e
    assert not os.path.exists(m.socket)
    assert versions(m) == ["0001"] and columns(m) == "id"


def invalid_indexes(m):
    out = q(m, "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
               "WHERE NOT i.indisvalid ORDER BY 1")
    return out.splitlines() if out else []


def test_cic_that_times_out_is_dropped_then_retried(migd_factory):
    m = retry_migd(migd_factory, retries="4", concurrent_lock_timeout="300ms")
    q(m, "CREATE TABLE public.big (a int); INSERT INTO public.big SELECT generate_series(1, 1000); "
         "CREATE TABLE public.elsewhere (b int)")
    write_rev(m, "0001_idx.sql", "0001", transaction="none", up="""
        CREATE INDEX CONCURRENTLY big_a_idx ON public.big (a);
        """)
    # an unrelated transaction's snapshot: CREATE INDEX CONCURRENTLY waits for it
    c = holder(m, "SELECT count(*) FROM public.elsewhere", isolation="REPEATABLE READ")
    t = threading.Timer(1.2, c.commit)
    t.start()
    try:
        notes, r = call(m, "upgrade", {}, timeout=30)
    finally:
        t.cancel()
        c.close()
    assert "error" not in r, r
    assert versions(m) == ["0001"]
    assert q(m, "SELECT indisvalid FROM pg_index WHERE indexrelid = "
                "'public.big_a_idx'::regclass") == "t"
    assert invalid_indexes(m) == []
    h = runs(m, "0001")
    assert len(h) >= 2 and h[-1]["success"] and h[-1]["attempt"] == len(h), h
    for f in h[:-1]:
        # each failed build's INVALID index was dropped before the retry
        assert not f["success"] and not f["dirty"], f
        assert "migd dropped the INVALID index it left (public.big_a_idx)" in f["error"], f
        assert "retried" in f["error"], f
    waits = [n["params"] for n in notes if n.get("params", {}).get("event") == "waiting"]
    assert waits and "public.elsewhere" in waits[0]["waiting_for"], waits


def test_cic_that_never_gets_through_leaves_no_invalid_index(migd_factory):
    m = retry_migd(migd_factory, retries="1", concurrent_lock_timeout="300ms")
    q(m, "CREATE TABLE public.big (a int); CREATE TABLE public.elsewhere (b int)")
    write_rev(m, "0001_idx.sql", "0001", transaction="none", up="""
        CREATE INDEX CONCURRENTLY big_a_idx ON public.big (a);
        """)
    c = holder(m, "SELECT count(*) FROM public.elsewhere", isolation="REPEATABLE READ")
    try:
        e = err(m, "upgrade", {}, code=E_SQL, kind="sql_error", timeout=30)
    finally:
        c.close()
    assert "gave up after 2 attempts" in e["message"], e
    assert "not dirty" in e["message"], e
    assert invalid_indexes(m) == [] and versions(m) == []


def test_atomic_run_retries_the_whole_run(migd_factory):
    m = retry_migd(migd_factory, retries="5", atomic="true")
    write_rev(m, "0001_t.sql", "0001", up="CREATE TABLE public.first_one (id int);")
    write_rev(m, "0002_color.sql", "0002", down="0001",
              up="ALTER TABLE cars.car ADD COLUMN color text;")
    c = holder(m)
    t = threading.Timer(1.0, c.commit)
    t.start()
    try:
        notes, r = call(m, "upgrade", {}, timeout=30)
    finally:
        t.cancel()
        c.close()
    assert "error" not in r, r
    assert versions(m) == ["0002"] and rel_exists(m, "public.first_one")
    waits = [n["params"] for n in notes if n.get("params", {}).get("event") == "waiting"]
    assert waits and all(w["whole_run"] is True and w["revision"] == "0002" for w in waits)
    # the first step ran again with each attempt of the run: one success row
    # each, of the last attempt (the others rolled back with the run)
    first = runs(m, "0001")
    second = runs(m, "0002")
    n = len(waits) + 1
    assert [x["attempt"] for x in first] == [n] and first[0]["success"], first
    assert [x["attempt"] for x in second] == list(range(1, n + 1)), second
    assert second[-1]["success"] and not any(x["success"] for x in second[:-1]), second
    starts = [(p["params"]["revision"], p["params"]["attempt"]) for p in notes
              if p.get("params", {}).get("event") == "started"]
    assert starts == [(r, k) for k in range(1, n + 1) for r in ("0001", "0002")], starts


def test_split_migration_is_not_retried_after_its_first_commit(migd_factory):
    m = retry_migd(migd_factory, retries="3")
    write_rev(m, "0001_split.sql", "0001", up="""
        BEGIN;
        CREATE TABLE public.part_one (id int);
        COMMIT;
        BEGIN;
        ALTER TABLE cars.car ADD COLUMN color text;
        COMMIT;
        """)
    c = holder(m)
    try:
        notes, r = call(m, "upgrade", {}, timeout=30)
    finally:
        c.close()
    e = r["error"]
    assert e["data"]["kind"] == "dirty", e
    assert "not retried: 1 of its transactions had committed" in e["message"], e
    assert not [n for n in notes if n.get("params", {}).get("event") == "waiting"]
    assert rel_exists(m, "public.part_one") and columns(m) == "id"


def test_split_migration_is_retried_when_its_first_transaction_waits(migd_factory):
    m = retry_migd(migd_factory, retries="5")
    write_rev(m, "0001_split.sql", "0001", up="""
        BEGIN;
        ALTER TABLE cars.car ADD COLUMN color text;
        COMMIT;
        BEGIN;
        CREATE TABLE public.part_two (id int);
        COMMIT;
        """)
    c = holder(m)
    t = threading.Timer(1.0, c.commit)
    t.start()
    try:
        r = ok(m, "upgrade", {})
    finally:
        t.cancel()
        c.close()
    assert versions(m) == ["0001"] and rel_exists(m, "public.part_two")
    h = runs(m, "0001")
    # the dirty mark written with the first transaction rolled back with it:
    # each failed attempt is a row of its own, then the completed mark
    assert h[-1]["success"] and not h[-1]["dirty"] and h[-1]["attempt"] == len(h), h
    assert all(not x["success"] and not x["dirty"] for x in h[:-1]), h


def test_bare_statement_after_others_is_not_retried(migd_factory):
    m = retry_migd(migd_factory, retries="3")
    write_rev(m, "0001_bare.sql", "0001", transaction="none", up="""
        CREATE TABLE public.bare_one (id int);
        ALTER TABLE cars.car ADD COLUMN color text;
        """)
    c = holder(m)
    try:
        notes, r = call(m, "upgrade", {}, timeout=30)
    finally:
        c.close()
    e = r["error"]
    assert e["data"]["kind"] == "dirty", e
    assert "not retried: it runs outside a transaction" in e["message"], e
    assert not [n for n in notes if n.get("params", {}).get("event") == "waiting"]


def test_no_retries_by_default_but_the_holder_is_named(migd_factory):
    m = connected(migd_factory(overrides={("migrations", "lock_timeout"): "200ms"}))
    q(m, "CREATE SCHEMA cars; CREATE TABLE cars.car (id int)")
    write_rev(m, "0001_color.sql", "0001", up="ALTER TABLE cars.car ADD COLUMN color text;")
    c = holder(m)
    pid = c.get_backend_pid()
    try:
        notes, r = call(m, "upgrade", {}, timeout=30)
    finally:
        c.close()
    e = r["error"]
    assert e["data"]["sqlstate"] == "55P03", e
    assert "blocked by: lock on cars.car held by pid %d" % pid in e["message"], e
    assert "retried" not in e["message"] and "attempts" not in e["data"], e
    assert [x["attempt"] for x in runs(m, "0001")] == [1]


def test_only_sessions_in_the_way_of_the_statements_lock_are_named(migd_factory):
    """CREATE INDEX asks for SHARE: a reader's ACCESS SHARE is not in its way,
    a writer's ROW EXCLUSIVE is; an ALTER TABLE's ACCESS EXCLUSIVE meets both."""
    m = connected(migd_factory(overrides={("migrations", "lock_timeout"): "200ms"}))
    q(m, "CREATE SCHEMA cars; CREATE TABLE cars.car (id int)")
    write_rev(m, "0001_idx.sql", "0001", up="CREATE INDEX car_id ON cars.car (id);")
    reader = holder(m)
    writer = holder(m, "INSERT INTO cars.car VALUES (3)")
    rpid, wpid = reader.get_backend_pid(), writer.get_backend_pid()
    try:
        _, r = call(m, "upgrade", {}, timeout=30)
        e = r["error"]
        assert e["data"]["sqlstate"] == "55P03", e
        assert ("blocked by: lock on cars.car held by pid %d" % wpid) in e["message"], e
        assert "holds RowExclusiveLock" in e["message"], e
        assert "pid %d" % rpid not in e["message"], e
        assert [(h["pid"], h["modes"]) for h in e["data"]["lock_holders"]] == \
            [(wpid, "RowExclusiveLock")], e
        assert not rel_exists(m, "cars.car_id")

        write_rev(m, "0001_idx.sql", "0001", up="ALTER TABLE cars.car ADD COLUMN c text;")
        call(m, "reload", {})
        _, r = call(m, "upgrade", {}, timeout=30)
        e = r["error"]
        assert sorted(h["pid"] for h in e["data"]["lock_holders"]) == sorted([rpid, wpid]), e
        assert "holds AccessShareLock" in e["message"], e
    finally:
        reader.close()
        writer.close()
    assert columns(m) == "id"


# ---- the history table: new columns, upgraded in place ----------------------

# The history table as migd made it before attempt and lint (job.c on main,
# before this change), with a row of its own.
OLD_HISTORY = """
CREATE TABLE IF NOT EXISTS public.migd_history (
    id bigserial PRIMARY KEY, revision varchar(32) NOT NULL,
    direction text NOT NULL CHECK (direction IN ('up', 'down', 'stamp', 'resolve',
                                                 'accept', 'adopt')),
    success boolean NOT NULL, dirty boolean NOT NULL DEFAULT false,
    checksum text, message text, file text, started_at timestamptz NOT NULL,
    finished_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    duration_ms double precision, requested_by text, requester_uid bigint,
    requester_pid bigint, host text, migd_version text, sqlstate text, error text,
    schemas_created text[]);
CREATE INDEX IF NOT EXISTS migd_history_revision_idx ON public.migd_history (revision, id);
CREATE TABLE public.alembic_version (version_num varchar(32) NOT NULL,
    CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num));
INSERT INTO public.migd_history (revision, direction, success, started_at, error)
    VALUES ('0000', 'stamp', true, '2026-01-01 00:00:00+00', 'an old row');
"""


def table_shape(m, table):
    return q(m, "SELECT string_agg(column_name || ' ' || data_type || ' ' || is_nullable, ', ' "
                "ORDER BY ordinal_position) FROM information_schema.columns "
                "WHERE table_schema = 'public' AND table_name = '%s'" % table)


def test_old_history_table_gets_the_new_columns_and_keeps_its_rows(migd_factory):
    m = connected(migd_factory())
    q(m, OLD_HISTORY)
    version_before = table_shape(m, "alembic_version")
    old = history(m)
    assert "attempt" not in old[0] and "lint" not in old[0]
    # read-only answers do not touch it
    ok(m, "status", {})
    ok(m, "plan", {})
    hr = ok(m, "history", {})["history"]      # reads an old table too
    assert hr[0]["attempt"] is None and hr[0]["lint"] is None, hr
    assert "attempt" not in history(m)[0]
    write_rev(m, "0001_t.sql", "0001", up="CREATE TABLE public.t1 (id int);")
    ok(m, "upgrade", {})
    h = history(m)
    assert h[0]["id"] == old[0]["id"] and h[0]["error"] == "an old row", h
    assert h[0]["attempt"] is None and h[0]["lint"] is None, h
    assert h[1]["revision"] == "0001" and h[1]["attempt"] == 1, h
    assert table_shape(m, "alembic_version") == version_before
    assert q(m, "SELECT data_type FROM information_schema.columns WHERE table_name = "
                "'migd_history' AND column_name = 'lint'") == "jsonb"
    # and a second migd start finds nothing to add
    ok(m, "upgrade", {})
    assert len(history(m)) == 2


def _nonowner(pg, db):
    pg.psql("DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = "
            "'migd_nonowner') THEN CREATE ROLE migd_nonowner LOGIN; END IF; END$$", db)
    return pg.conninfo(db).replace("user=postgres", "user=migd_nonowner")


def test_history_table_the_role_may_not_alter_is_said_with_the_fix(migd_factory, pg,
                                                                   make_db):
    """An older history table owned by another role: migd may write rows but
    not add its columns; the run stops before anything, saying the ALTER to
    run as the owner."""
    db = make_db(pg)
    pg.psql(OLD_HISTORY, db)
    conninfo = _nonowner(pg, db)
    pg.psql("GRANT SELECT, INSERT, UPDATE, DELETE ON public.migd_history, "
            "public.alembic_version TO migd_nonowner; GRANT USAGE ON SEQUENCE "
            "public.migd_history_id_seq TO migd_nonowner", db)
    m = connected(migd_factory(pg=pg, db=db, conninfo=conninfo))
    before = history(m)
    write_rev(m, "0001_t.sql", "0001", up="CREATE TABLE public.t1 (id int);")
    e = err(m, "upgrade", {}, code=E_SQL)
    msg = e["message"]
    assert 'the history table "public"."migd_history" lacks the columns attempt and ' \
        'lint' in msg and 'as the table\'s owner, run: ALTER TABLE "public"."migd_history" ADD ' \
        "COLUMN IF NOT EXISTS attempt integer, ADD COLUMN IF NOT EXISTS lint jsonb" \
        in msg, msg
    assert e["data"]["sqlstate"] == "42501", e
    assert history(m) == before and versions(m) == []
    assert not rel_exists(m, "public.t1")
    # the owner runs it: the next upgrade works as the role
    pg.psql("ALTER TABLE public.migd_history ADD COLUMN IF NOT EXISTS attempt integer, "
            "ADD COLUMN IF NOT EXISTS lint jsonb", db)
    pg.psql("GRANT CREATE ON SCHEMA public TO migd_nonowner", db)
    # the configured schemas need CREATE on the database: said so
    e = err(m, "upgrade", {}, code=E_SQL)
    assert e["message"].startswith("creating the schemas cars, participants, work_shop "
                                   "before the run: permission denied for database"), e
    assert "grant migd's role CREATE on the database" in e["message"], e
    assert versions(m) == [] and len(history(m)) == len(before)
    pg.psql("GRANT CREATE ON DATABASE \"%s\" TO migd_nonowner" % db, db)
    ok(m, "upgrade", {})
    assert versions(m) == ["0001"]


def test_tables_the_role_may_not_create_are_said_with_the_fix(migd_factory, pg, make_db):
    db = make_db(pg)
    conninfo = _nonowner(pg, db)
    pg.psql("REVOKE CREATE ON SCHEMA public FROM PUBLIC", db)
    m = connected(migd_factory(pg=pg, db=db, conninfo=conninfo))
    write_rev(m, "0001_t.sql", "0001", up="SELECT 1;")
    e = err(m, "upgrade", {}, code=E_SQL)
    msg = e["message"]
    assert msg.startswith("migd's role may not create its version and history tables: ") \
        and "grant it CREATE on their schema" in msg, msg
    assert "(docs/migrations.md, 'State in the database')" in msg, msg
    assert q(m, "SELECT to_regclass('public.alembic_version') IS NULL AND "
                "to_regclass('public.migd_history') IS NULL") == "t"


def test_schema_of_the_tables_the_role_may_not_create_asks_the_database_grant(
        migd_factory, pg, make_db):
    """version_table in a schema that does not exist yet (a schema per service), and a
    role without CREATE on the database: the refusal names that schema and the grant on
    the database.  It advised 'CREATE on their schema' (a schema that is not there) and
    a section docs/migrations.md does not have."""
    db = make_db(pg)
    conninfo = _nonowner(pg, db)
    m = connected(migd_factory(pg=pg, db=db, conninfo=conninfo, overrides={
        ("migrations", "version_table"): "billing_meta.alembic_version",
        ("migrations", "schemas"): ""}))
    write_rev(m, "0001_t.sql", "0001", up="SELECT 1;")
    e = err(m, "upgrade", {}, code=E_SQL)
    msg = e["message"]
    assert msg.startswith("migd's role may not create the schema billing_meta of its "
                          "version and history tables: permission denied for database"), msg
    assert ("grant it CREATE on the database, or create the schema as its owner and "
            "grant migd's role CREATE on it (docs/migrations.md, 'State in the "
            "database')") in msg, msg
    assert e["data"]["sqlstate"] == "42501", e
    assert q(m, "SELECT count(*) FROM pg_namespace WHERE nspname = 'billing_meta'") == "0"
    # the advice works
    pg.psql("GRANT CREATE ON DATABASE \"%s\" TO migd_nonowner" % db, db)
    ok(m, "upgrade", {})
    assert q(m, "SELECT version_num FROM billing_meta.alembic_version") == "0001"


def test_lint_findings_recorded_in_history_under_warn(migd_factory):
    m = connected(migd_factory())
    q(m, "CREATE TABLE public.accounts (id int, email text)")
    write_rev(m, "0001_idx.sql", "0001", up="CREATE INDEX accounts_email ON public.accounts (email);")
    write_rev(m, "0002_t.sql", "0002", down="0001", up="CREATE TABLE public.clean (id int);")
    r = ok(m, "upgrade", {})
    assert any(f["rule"] == "require-concurrent-index-creation" for f in r["lint"]), r
    h = {x["revision"]: x for x in history(m)}
    lint = h["0001"]["lint"]
    assert [f["rule"] for f in lint] == ["require-concurrent-index-creation"], lint
    assert lint[0]["line"] > 0 and lint[0]["file"].endswith("0001_idx.sql"), lint
    assert h["0002"]["lint"] == [], h["0002"]      # linted, nothing found
    hr = {x["revision"]: x for x in ok(m, "history", {})["history"]}
    assert hr["0001"]["lint"] == lint and hr["0002"]["lint"] == [], hr


def test_lint_off_records_nothing(migd_factory):
    m = connected(migd_factory(overrides={("migrations", "lint"): "off"}))
    q(m, "CREATE TABLE public.accounts (id int, email text)")
    write_rev(m, "0001_idx.sql", "0001", up="CREATE INDEX accounts_email ON public.accounts (email);")
    ok(m, "upgrade", {})
    assert history(m)[0]["lint"] is None


def test_resolve_mentions_an_invalid_index_left(migd_factory):
    m = connected(migd_factory())
    q(m, "CREATE TABLE public.other (b int); INSERT INTO public.other VALUES (1), (1)")
    write_rev(m, "0001_bare.sql", "0001", transaction="none", up="""
        CREATE TABLE public.bare_one (id int);
        SELECT 1/0;
        """)
    err(m, "upgrade", {}, kind="dirty")
    # someone's failed build, by hand, while the revision is dirty
    with pytest.raises(RuntimeError):
        q(m, "CREATE UNIQUE INDEX CONCURRENTLY by_hand ON public.other (b)")
    p = m.migctl("resolve", "0001", "unapplied")
    assert p.returncode == X_OK, p.stdout + p.stderr
    assert "INVALID index in the database: public.by_hand" in p.stdout, p.stdout
