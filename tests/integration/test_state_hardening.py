"""Issue 9, the state of the database against the files: revisions skipped by a
rebase (F5), an inconsistent version table (F6), accepting an intended edit of
an applied file (F20), and lock holders of this database only (F23)."""

import subprocess

import migdtest
from engine_helpers import (connected, E_BUSY, E_MIGRATIONS, E_STATE, X_CHECK, X_FAILED, X_OK,
                            err, history, ok, q, rel_exists, versions, write_rev)


def lock_key(schema="public", table="alembic_version"):
    """migd's advisory lock key (FNV-1a of migd:SCHEMA.TABLE, 63 bits)."""
    h = 14695981039346656037
    for b in ("migd:%s.%s" % (schema, table)).encode():
        h ^= b
        h = (h * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h & 0x7FFFFFFFFFFFFFFF


def hold_lock(pg, db, appname, key, seconds=6):
    """A psql session in database db holding the advisory lock key."""
    sql = "SELECT pg_advisory_lock(%d); SELECT pg_sleep(%d);" % (key, seconds)
    return subprocess.Popen([pg.psql_bin, "-X", "-q", "-h", pg.sockdir, "-p", str(pg.port),
                             "-U", "postgres", "-d", db, "-c", sql],
                            env=migdtest.clean_env({"PGAPPNAME": appname}),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL)


# ---- F23: lock holders of this database only -------------------------------------

def test_lock_holders_are_those_of_this_database(migd_factory, pg, make_db):
    """The same advisory key held in another database of the cluster is another
    lock: it must not be listed as a holder (an operator could kill it)."""
    m = connected(migd_factory(overrides={("migrations", "lock_wait"): "300ms"}))
    write_rev(m, "a1.sql", "a1", up="CREATE TABLE public.a1 (id int);")
    other = make_db(pg)
    key = lock_key()
    procs = [hold_lock(pg, other, "holder_elsewhere", key),
             hold_lock(pg, m.db, "holder_here", key)]
    try:
        migdtest.wait_for(lambda: pg.psql(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND objid = %d" % (key & 0xFFFFFFFF)) == "2", 10, what="both locks held")
        e = err(m, "upgrade", {}, code=E_BUSY, kind="lock_timeout")
        names = [h["application_name"] for h in e["data"]["holders"]]
        assert names == ["holder_here"], e
        assert "holder_here" in e["message"] and "holder_elsewhere" not in e["message"], e
        p = m.migctl("upgrade")
        assert p.returncode != X_OK and "holder_elsewhere" not in p.stderr, p.stderr
    finally:
        for p in procs:
            p.kill()
            p.wait()
    # nothing ran
    assert q(m, "SELECT to_regclass('public.a1') IS NULL") == "t"


# ---- F5: a revision slipped below applied ones by a rebase -------------------------

def chain3(m):
    write_rev(m, "0001_a.sql", "0001", up="CREATE TABLE public.t1 (id int);",
              down_sql="DROP TABLE public.t1;")
    write_rev(m, "0002_b.sql", "0002", down="0001", up="CREATE TABLE public.t2 (id int);",
              down_sql="DROP TABLE public.t2;")
    write_rev(m, "0003_c.sql", "0003", down="0002", up="CREATE TABLE public.t3 (id int);",
              down_sql="DROP TABLE public.t3;")


def rebase_0002b(m):
    """The rebase: 0002b lands between applied 0002 and 0003 (0003's SQL, hence its
    checksum, unchanged)."""
    write_rev(m, "0002b_rebased.sql", "0002b", down="0002",
              up="CREATE TABLE public.t2b (id int);", down_sql="DROP TABLE public.t2b;")
    write_rev(m, "0003_c.sql", "0003", down="0002b", up="CREATE TABLE public.t3 (id int);",
              down_sql="DROP TABLE public.t3;")


def test_rebased_revision_below_applied_ones_is_reported_and_refused(migd_factory):
    m = connected(migd_factory())
    chain3(m)
    ok(m, "upgrade", {})
    rebase_0002b(m)

    s = m.status()
    assert s["state"] == "skipped", s
    assert [r["revision"] for r in s["skipped"]] == ["0002b"], s
    assert s["skipped"][0]["file"].endswith("0002b_rebased.sql"), s
    v = ok(m, "verify")
    assert v["ok"] is False and v["state"] == "skipped", v
    p = m.migctl("check")
    assert p.returncode == X_CHECK and "0002b" in p.stdout, p.stdout + p.stderr
    p = m.migctl("verify")
    assert p.returncode == X_CHECK and "0002b" in p.stdout and "resolve" in p.stdout, \
        p.stdout + p.stderr

    e = err(m, "upgrade", {}, code=E_STATE, kind="skipped_revisions")
    assert "0002b" in e["message"] and "0002b_rebased.sql" in e["message"], e
    assert "resolve 0002b applied" in e["message"] and "--apply-skipped" in e["message"], e
    assert [pr["revision"] for pr in e["data"]["problems"]] == ["0002b"], e
    p = m.migctl("upgrade")
    assert p.returncode != X_OK and "0002b" in p.stderr, p.stdout + p.stderr
    # nothing ran, nothing moved
    assert not rel_exists(m, "public.t2b") and versions(m) == ["0003"]
    plan = ok(m, "plan", {"target": "head"})
    assert plan["runnable"] is False, plan

    # the way out: run its SQL, then say so; recorded in the history
    q(m, "CREATE TABLE public.t2b (id int)")
    p = m.migctl("resolve", "0002b", "applied")
    assert p.returncode == X_OK, p.stdout + p.stderr
    rows = history(m, where="revision = '0002b'")
    assert [(r["direction"], r["error"]) for r in rows] == \
        [("resolve", "resolved as applied")], rows
    s = m.status()
    assert s["state"] == "up_to_date" and s["skipped"] == [], s
    assert m.migctl("check").returncode == X_OK
    assert versions(m) == ["0003"]


def test_apply_skipped_runs_them_first_and_says_so_in_the_history(migd_factory):
    m = connected(migd_factory())
    chain3(m)
    ok(m, "upgrade", {})
    rebase_0002b(m)
    write_rev(m, "0004_d.sql", "0004", down="0003", up="CREATE TABLE public.t4 (id int);")
    # a dry run shows them first; a downgrade does not take the flag
    plan = ok(m, "upgrade", {"dry_run": True, "apply_skipped": True})
    assert [s["revision"] for s in plan["steps"]] == ["0002b", "0004"], plan
    assert plan["steps"][0]["version_insert"] == [] and plan["runnable"], plan
    err(m, "downgrade", {"target": "0001", "apply_skipped": True}, kind="invalid_params")
    assert not rel_exists(m, "public.t2b") and versions(m) == ["0003"]

    p = m.migctl("upgrade", "--apply-skipped")
    assert p.returncode == X_OK, p.stdout + p.stderr
    assert rel_exists(m, "public.t2b") and rel_exists(m, "public.t4")
    assert versions(m) == ["0004"]
    rows = history(m, where="revision IN ('0002b', '0004')")
    assert [(r["revision"], r["direction"], r["success"]) for r in rows] == \
        [("0002b", "up", True), ("0004", "up", True)], rows
    assert "out of order" in rows[0]["error"] and rows[1]["error"] is None, rows
    s = m.status()
    assert s["state"] == "up_to_date" and s["skipped"] == [], s
    assert ok(m, "upgrade", {})["steps"] == []


def test_resolve_refuses_what_is_neither_dirty_nor_skipped(migd_factory):
    m = connected(migd_factory())
    chain3(m)
    ok(m, "upgrade", {})
    rebase_0002b(m)
    e = err(m, "resolve", {"revision": "0002", "state": "applied"}, code=E_STATE,
            kind="not_dirty")
    assert "0002" in e["message"], e
    e = err(m, "resolve", {"revision": "0002b", "state": "unapplied"}, code=E_STATE,
            kind="plan_error")
    assert "below applied revisions" in e["message"], e
    assert versions(m) == ["0003"] and history(m, where="direction = 'resolve'") == []
    assert m.status()["state"] == "skipped"


def test_no_skipped_revisions_in_a_database_taken_over_from_alembic(migd_factory):
    """Alembic applied 0001..0003 (no history rows of migd's); migd runs 0004 on top.
    Nothing below migd's first run may be reported as skipped."""
    m = connected(migd_factory())
    chain3(m)
    q(m, "CREATE TABLE public.alembic_version (version_num varchar(32) NOT NULL, "
         "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)); "
         "INSERT INTO public.alembic_version VALUES ('0003'); "
         "CREATE TABLE public.t1 (id int); CREATE TABLE public.t2 (id int); "
         "CREATE TABLE public.t3 (id int);")
    s = m.status()
    assert s["state"] == "up_to_date" and s["skipped"] == [], s
    write_rev(m, "0004_d.sql", "0004", down="0003", up="CREATE TABLE public.t4 (id int);")
    assert [st["revision"] for st in ok(m, "upgrade", {})["steps"]] == ["0004"]
    s = m.status()
    assert s["state"] == "up_to_date" and s["skipped"] == [], s
    assert m.migctl("check").returncode == X_OK
    assert ok(m, "verify")["ok"] is True


def test_no_skipped_revisions_below_a_stamp(migd_factory):
    """migd ran 0001; a person stamped 0003 (0002 applied by hand); migd ran 0004:
    the stamp vouches for 0002."""
    m = connected(migd_factory())
    chain3(m)
    write_rev(m, "0004_d.sql", "0004", down="0003", up="CREATE TABLE public.t4 (id int);")
    ok(m, "upgrade", {"target": "0001"})
    ok(m, "stamp", {"revision": "0003"})
    ok(m, "upgrade", {})
    s = m.status()
    assert s["state"] == "up_to_date" and s["skipped"] == [], s
    # a rebase above the stamp is still seen
    write_rev(m, "0003b_x.sql", "0003b", down="0003", up="CREATE TABLE public.t3b (id int);")
    write_rev(m, "0004_d.sql", "0004", down="0003b", up="CREATE TABLE public.t4 (id int);")
    s = m.status()
    assert s["state"] == "skipped" and [r["revision"] for r in s["skipped"]] == ["0003b"], s


# ---- F6: an inconsistent version table ---------------------------------------------

def test_overlapping_version_rows_are_inconsistent(migd_factory):
    m = connected(migd_factory())
    chain3(m)
    ok(m, "upgrade", {"target": "0002"})
    q(m, "INSERT INTO public.alembic_version VALUES ('0001')")
    s = m.status()
    assert s["state"] == "inconsistent" and s["pending"] is None, s
    assert "0001" in s["inconsistent"] and "0002" in s["inconsistent"], s
    v = ok(m, "verify")
    assert v["ok"] is False and v["state"] == "inconsistent", v
    p = m.migctl("check")
    assert p.returncode == X_CHECK and "inconsistent" in p.stdout, p.stdout + p.stderr
    p = m.migctl("verify")
    assert p.returncode == X_CHECK and "inconsistent" in p.stdout, p.stdout + p.stderr
    p = m.migctl("status")
    assert "up_to_date" not in p.stdout and "inconsistent" in p.stdout, p.stdout
    e = err(m, "upgrade", {}, code=E_MIGRATIONS, kind="plan_error")
    assert "inconsistent" in e["message"], e
    assert versions(m) == ["0001", "0002"] and not rel_exists(m, "public.t3")
    # a plain stamp of 0002 would leave both rows, as Alembic's does: refused,
    # naming --purge, and nothing changed; stamp --purge puts it right
    e = err(m, "stamp", {"revision": "0002"}, code=E_MIGRATIONS, kind="plan_error")
    assert "already lists both 0001 and 0002" in e["message"], e
    assert "stamp --purge 0002" in e["message"], e
    assert versions(m) == ["0001", "0002"]
    ok(m, "stamp", {"revision": "0002", "purge": True})
    assert versions(m) == ["0002"]
    assert m.status()["state"] == "pending"


# ---- F20: accepting an intended edit of an applied file ----------------------------

def edit_0002(m, extra="-- reviewed: keep the column nullable"):
    write_rev(m, "0002_b.sql", "0002", down="0001",
              up="CREATE TABLE public.t2 (id int);\n%s" % extra,
              down_sql="DROP TABLE public.t2;")


def test_accept_an_edit_of_an_applied_revision(migd_factory):
    m = connected(migd_factory())
    chain3(m)
    ok(m, "upgrade", {})
    edit_0002(m)
    s = m.status()
    assert s["state"] == "drift" and [d["revision"] for d in s["drift"]] == ["0002"], s
    old, new = s["drift"][0]["applied_checksum"], s["drift"][0]["file_checksum"]
    before = len(history(m))
    # the refused upgrade names the way out for an edit that was meant, not only
    # restore or --allow-drift (which holds for one run, then refuses again)
    p = m.migctl("upgrade")
    assert p.returncode == X_FAILED, p.stdout + p.stderr
    assert "0002_b.sql changed since revision 0002 was applied" in p.stderr, p.stderr
    assert "run 'migctl accept 0002' if the edit was meant" in p.stderr, p.stderr
    assert len(history(m)) == before and versions(m) == ["0003"]

    p = m.migctl("accept", "0002")
    assert p.returncode == X_OK and "0002" in p.stdout, p.stdout + p.stderr
    s = m.status()
    assert s["state"] == "up_to_date" and s["drift"] == [], s
    assert m.migctl("check").returncode == X_OK
    assert ok(m, "verify")["ok"] is True
    assert versions(m) == ["0003"]
    rows = history(m)
    assert len(rows) == before + 1, rows
    r = rows[-1]
    assert (r["revision"], r["direction"], r["success"], r["checksum"]) == \
        ("0002", "accept", True, new), r
    assert old in r["error"] and new in r["error"] and r["requested_by"], r
    # nothing ran: the table 0002 makes was not made again, 0003's still there
    assert rel_exists(m, "public.t2") and rel_exists(m, "public.t3")

    # the next edit is drift again
    edit_0002(m, "-- reviewed twice")
    assert m.status()["state"] == "drift"
    assert m.migctl("check").returncode == X_CHECK


def test_accept_refuses_what_is_not_an_applied_edit(migd_factory):
    m = connected(migd_factory())
    chain3(m)
    ok(m, "upgrade", {"target": "0002"})
    edit_0002(m)
    before = history(m)
    e = err(m, "accept", {"revisions": ["0001"]}, code=E_STATE, kind="not_edited")
    assert "0001" in e["message"] and "unchanged" in e["message"], e
    e = err(m, "accept", {"revisions": ["0002", "0003"]}, code=E_STATE, kind="not_applied")
    assert "0003" in e["message"] and "nothing accepted" in e["message"], e
    e = err(m, "accept", {"revisions": ["nope"]}, code=E_MIGRATIONS, kind="plan_error")
    assert "nope" in e["message"], e
    for bad in ({}, {"revisions": []}, {"revisions": "0002"}, {"revisions": [2]}):
        err(m, "accept", bad, kind="invalid_params")
    p = m.migctl("accept")
    assert p.returncode == 2, p.stderr
    p = m.migctl("accept", "0001")
    assert p.returncode == 1 and "unchanged" in p.stderr, p.stderr
    # all or nothing: still drift, no row written, the table did not move
    assert history(m) == before
    assert m.status()["state"] == "drift" and versions(m) == ["0002"]


def test_accept_widens_an_older_history_table(migd_factory):
    """A history table created before 'accept' existed has a CHECK without it."""
    m = connected(migd_factory())
    chain3(m)
    ok(m, "upgrade", {})
    q(m, "ALTER TABLE public.migd_history DROP CONSTRAINT migd_history_direction_check; "
         "ALTER TABLE public.migd_history ADD CONSTRAINT migd_history_direction_check "
         "CHECK (direction IN ('up', 'down', 'stamp', 'resolve'))")
    edit_0002(m)
    res = ok(m, "accept", {"revisions": ["0002"]})
    assert [a["revision"] for a in res["accepted"]] == ["0002"], res
    assert m.status()["state"] == "up_to_date"
    d = q(m, "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE "
             "conname = 'migd_history_direction_check'")
    # one list of directions for every table: adopt's too, as a new table has
    assert all("'%s'" % w in d for w in ("up", "down", "stamp", "resolve", "accept",
                                         "adopt")), d
    assert ok(m, "adopt")["adopted"] == []


def test_a_stamp_of_several_revisions_counts_whole_as_the_newest_stamp(migd_factory):
    """stamp b1 c1 writes a history row per revision; all of them are the newest
    stamp, so a rebase above b1 (the first row) is still seen."""
    m = connected(migd_factory())
    write_rev(m, "a1.sql", "a1", up="CREATE TABLE public.a1 (id int);")
    write_rev(m, "b1.sql", "b1", down="a1", up="CREATE TABLE public.b1 (id int);")
    write_rev(m, "c1.sql", "c1", down="a1", up="CREATE TABLE public.c1 (id int);")
    write_rev(m, "b2.sql", "b2", down="b1", up="CREATE TABLE public.b2 (id int);")
    ok(m, "upgrade", {"target": "a1"})
    ok(m, "stamp", {"revision": ["b1", "c1"]})
    ok(m, "upgrade", {"target": "b2"})
    assert m.status()["skipped"] == []
    write_rev(m, "b1x.sql", "b1x", down="b1", up="CREATE TABLE public.b1x (id int);")
    write_rev(m, "b2.sql", "b2", down="b1x", up="CREATE TABLE public.b2 (id int);")
    s = m.status()
    assert s["state"] == "skipped" and [r["revision"] for r in s["skipped"]] == ["b1x"], s


# ---- adopt (issue 11) and skipped revisions ------------------------------------------

def test_adopt_refuses_while_revisions_are_skipped(migd_factory):
    """A skipped revision never ran: it is not listed as unverified, and adopt
    (which would record it as applied) refuses, naming both ways out."""
    m = connected(migd_factory())
    chain3(m)
    ok(m, "upgrade", {})
    rebase_0002b(m)
    s = m.status()
    assert s["state"] == "skipped" and s["unverified"] == [] and s["unverified_count"] == 0, s
    e = err(m, "adopt", {}, code=E_STATE, kind="skipped_revisions")
    assert "0002b" in e["message"] and "--apply-skipped" in e["message"], e
    assert "resolve 0002b applied" in e["message"], e
    assert [r["revision"] for r in e["data"]["skipped"]] == ["0002b"], e
    p = m.migctl("adopt")
    assert p.returncode != X_OK and "0002b" in p.stderr, p.stdout + p.stderr
    assert history(m, where="direction = 'adopt'") == [] and versions(m) == ["0003"]
    # resolved, it has a checksum: nothing left to adopt
    q(m, "CREATE TABLE public.t2b (id int)")
    ok(m, "resolve", {"revision": "0002b", "state": "applied"})
    assert ok(m, "adopt", {})["adopted"] == []
    assert m.status()["state"] == "up_to_date"


def test_adopted_revisions_are_not_skipped_when_migd_runs_above_them(migd_factory):
    """migd ran 0001, another tool applied 0002 and 0003, adopt recorded them, migd
    ran 0004: 0002 and 0003 are between migd runs but adopted, so not skipped."""
    m = connected(migd_factory())
    chain3(m)
    write_rev(m, "0004_d.sql", "0004", down="0003", up="CREATE TABLE public.t4 (id int);")
    ok(m, "upgrade", {"target": "0001"})
    q(m, "CREATE TABLE public.t2 (id int); CREATE TABLE public.t3 (id int); "
         "UPDATE public.alembic_version SET version_num = '0003'")
    s = m.status()
    assert s["unverified"] == ["0002", "0003"] and s["skipped"] == [], s
    assert [r["revision"] for r in ok(m, "adopt", {})["adopted"]] == ["0002", "0003"]
    ok(m, "upgrade", {})
    s = m.status()
    assert s["state"] == "up_to_date" and s["skipped"] == [] and s["unverified"] == [], s
    assert m.migctl("check").returncode == X_OK


def test_run_above_unrecorded_revisions_is_refused_until_adopted(migd_factory):
    """migd ran 0001, another tool applied 0002 and 0003 (Alembic, while both
    ran): migd does not run 0004 above them unrecorded, which made them look
    skipped (never ran) right after, and suggested running them again; it
    says to adopt them, changing nothing; adopted, the run goes on."""
    m = connected(migd_factory())
    chain3(m)
    write_rev(m, "0004_d.sql", "0004", down="0003", up="CREATE TABLE public.t4 (id int);")
    ok(m, "upgrade", {"target": "0001"})
    q(m, "CREATE TABLE public.t2 (id int); CREATE TABLE public.t3 (id int); "
         "UPDATE public.alembic_version SET version_num = '0003'")
    rows = history(m)
    e = err(m, "upgrade", {}, code=E_STATE, kind="unadopted_revisions")
    assert [x["revision"] for x in e["data"]["problems"]] == ["0002", "0003"], e
    assert "0002_b.sql: revision 0002 was applied by another tool" in e["message"], e
    assert "'migctl adopt'" in e["message"] and "(and 1 more problem)" in e["message"], e
    assert history(m) == rows and versions(m) == ["0003"]
    assert not rel_exists(m, "public.t4")
    # plan shows it without refusing; status says adopt, not skipped
    plan = ok(m, "plan", {"target": "head"})
    assert [x["kind"] for x in plan["problems"]] == ["unadopted_revisions"] * 2, plan
    s = m.status()
    assert s["skipped"] == [] and s["unverified"] == ["0002", "0003"], s
    assert "migctl adopt" in s["unverified_hint"], s
    # adopted, the run goes on
    ok(m, "adopt", {})
    res = ok(m, "upgrade", {})
    assert [x["revision"] for x in res["steps"]] == ["0004"], res
    s = m.status()
    assert s["state"] == "up_to_date" and s["skipped"] == [] and s["unverified"] == [], s
