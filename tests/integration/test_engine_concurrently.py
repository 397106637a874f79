"""CREATE INDEX CONCURRENTLY and its kind in a migration: they wait for every
older transaction by design, so they run with their own timeouts
(concurrent_lock_timeout, concurrent_statement_timeout; no limit by default),
and a failed build's INVALID index is dropped so that a retry works."""

import time

import pytest

from engine_helpers import (E_SQL, connected, err, history, ok, psql_background, q,
                            terminate_app, versions, wait_activity, write_rev)


def invalid_indexes(m):
    out = q(m, "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
               "WHERE NOT i.indisvalid ORDER BY 1")
    return out.splitlines() if out else []


def test_cic_waits_for_an_unrelated_old_transaction(migd_factory):
    m = connected(migd_factory(overrides={("migrations", "lock_timeout"): "500ms"}))
    q(m, "CREATE TABLE public.big (a int); INSERT INTO public.big SELECT generate_series(1, 1000); "
         "CREATE TABLE public.elsewhere (b int)")
    write_rev(m, "0001_idx.sql", "0001", transaction="none", up="""
        CREATE INDEX CONCURRENTLY big_a_idx ON public.big (a);
        """)
    # an unrelated transaction, older than lock_timeout, still open (its snapshot
    # makes CREATE INDEX CONCURRENTLY wait for it)
    old = psql_background(m, "SELECT count(*) FROM public.elsewhere, pg_sleep(4) AS old_txn_marker",
                          "old_txn")
    try:
        wait_activity(m, "old_txn_marker")
        time.sleep(1.0)                     # now older than lock_timeout (500ms)
        t0 = time.monotonic()
        r = ok(m, "upgrade", {"target": "head"}, timeout=60)
        waited = time.monotonic() - t0
    finally:
        terminate_app(m, "old_txn")
        old.wait(10)
    assert [s["revision"] for s in r["steps"]] == ["0001"]
    assert waited > 1.5, waited             # it waited for the old transaction...
    assert versions(m) == ["0001"]          # ...and succeeded once it ended
    assert q(m, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'public.big_a_idx'::regclass") \
        == "t"
    assert invalid_indexes(m) == []


def test_concurrent_lock_timeout_applies_when_set(migd_factory):
    m = connected(migd_factory(overrides={("migrations", "concurrent_lock_timeout"): "300ms"}))
    q(m, "CREATE TABLE public.big (a int); CREATE TABLE public.elsewhere (b int)")
    write_rev(m, "0001_idx.sql", "0001", transaction="none", up="""
        CREATE INDEX CONCURRENTLY big_a_idx ON public.big (a);
        """)
    old = psql_background(m, "SELECT count(*) FROM public.elsewhere, pg_sleep(8) AS old_txn_marker",
                          "old_txn")
    try:
        wait_activity(m, "old_txn_marker")
        e = err(m, "upgrade", {"target": "head"}, code=E_SQL, kind="sql_error", timeout=30)
    finally:
        terminate_app(m, "old_txn")
        old.wait(10)
    assert "lock timeout" in e["message"], e
    assert "dropped the INVALID index" in e["message"] and "not dirty" in e["message"], e
    assert invalid_indexes(m) == []
    assert versions(m) == []
    # nothing left: the retry simply runs
    r = ok(m, "upgrade", {"target": "head"})
    assert [s["revision"] for s in r["steps"]] == ["0001"]


@pytest.mark.parametrize("named", [True, False], ids=["named", "unnamed"])
def test_failed_cic_leaves_no_invalid_index_and_retry_works(migd_factory, named):
    m = connected(migd_factory())
    q(m, "CREATE TABLE public.acct (a int); INSERT INTO public.acct VALUES (1), (2), (2); "
         "CREATE TABLE public.other (b int); INSERT INTO public.other VALUES (1), (1)")
    # someone else's INVALID index from long ago: not migd's to drop
    with pytest.raises(RuntimeError):
        q(m, "CREATE UNIQUE INDEX CONCURRENTLY theirs_bad ON public.other (b)")
    assert invalid_indexes(m) == ["theirs_bad"]
    write_rev(m, "0001_uniq.sql", "0001", transaction="none", up="""
        SET maintenance_work_mem = '64MB';
        CREATE UNIQUE INDEX CONCURRENTLY %s ON public.acct (a);
        ALTER TABLE public.acct ADD COLUMN note text;
        """ % ("acct_a_key" if named else ""))
    for _ in range(2):                      # the retry fails the same way, not "already exists"
        e = err(m, "upgrade", {"target": "head"}, code=E_SQL, kind="sql_error")
        assert "could not create unique index" in e["message"], e
        assert "23505" in e["message"] and "0001_uniq.sql:" in e["message"], e
        assert "dropped the INVALID index" in e["message"], e
        assert "not dirty" in e["message"], e
        assert e["data"]["dirty"] is False, e
        assert invalid_indexes(m) == ["theirs_bad"]
        assert versions(m) == []
        last = history(m)[-1]
        assert last["revision"] == "0001" and not last["success"] and not last["dirty"], last
    assert ok(m, "status")["database"]["connected"] is True
    q(m, "DELETE FROM public.acct WHERE ctid = (SELECT max(ctid) FROM public.acct WHERE a = 2)")
    r = ok(m, "upgrade", {"target": "head"})
    assert [s["revision"] for s in r["steps"]] == ["0001"]
    assert versions(m) == ["0001"]
    assert invalid_indexes(m) == ["theirs_bad"]
    assert q(m, "SELECT count(*) FROM pg_index WHERE indrelid = 'public.acct'::regclass "
                "AND indisunique AND indisvalid") == "1"


def test_failed_cic_after_other_statements_is_dirty_but_leaves_no_index(migd_factory):
    m = connected(migd_factory())
    q(m, "CREATE TABLE public.acct (a int); INSERT INTO public.acct VALUES (1), (1)")
    write_rev(m, "0001_uniq.sql", "0001", transaction="none", up="""
        ALTER TABLE public.acct ADD COLUMN note text;
        CREATE UNIQUE INDEX CONCURRENTLY acct_a_key ON public.acct (a);
        """)
    e = err(m, "upgrade", {"target": "head"}, code=E_SQL, kind="dirty")
    assert "dropped the INVALID index" in e["message"] and "public.acct_a_key" in e["message"], e
    assert e["data"]["dirty"] is True, e
    assert invalid_indexes(m) == []
    assert history(m)[-1]["dirty"] is True


def test_failed_reindex_concurrently_leaves_no_ccnew_index(migd_factory):
    m = connected(migd_factory())
    q(m, "CREATE FUNCTION public.f(int) RETURNS int IMMUTABLE LANGUAGE sql AS 'SELECT $1'; "
         "CREATE TABLE public.t (a int); INSERT INTO public.t VALUES (1), (2); "
         "CREATE INDEX t_f ON public.t (public.f(a))")
    # the index's function now fails for one row: a rebuild fails part-way
    q(m, "CREATE OR REPLACE FUNCTION public.f(x int) RETURNS int IMMUTABLE LANGUAGE plpgsql "
         "AS 'BEGIN IF x = 2 THEN RAISE EXCEPTION ''f refuses 2''; END IF; RETURN x; END'")
    write_rev(m, "0001_reindex.sql", "0001", transaction="none", up="""
        REINDEX INDEX CONCURRENTLY public.t_f;
        """)
    e = err(m, "upgrade", {"target": "head"}, code=E_SQL, kind="sql_error")
    assert "f refuses 2" in e["message"] and "0001_reindex.sql:" in e["message"], e
    assert "t_f_ccnew" in e["data"]["invalid_indexes_dropped"], e
    assert invalid_indexes(m) == []
    assert q(m, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'public.t_f'::regclass") == "t"
    q(m, "CREATE OR REPLACE FUNCTION public.f(x int) RETURNS int IMMUTABLE LANGUAGE sql "
         "AS 'SELECT x'")
    r = ok(m, "upgrade", {"target": "head"})
    assert [s["revision"] for s in r["steps"]] == ["0001"]
    assert invalid_indexes(m) == []
