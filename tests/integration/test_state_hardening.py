"""Issue 9, the state of the database against the files: revisions skipped by a
rebase (F5), an inconsistent version table (F6), accepting an intended edit of
an applied file (F20), and lock holders of this database only (F23)."""

import subprocess

import migdtest
from engine_helpers import connected, E_BUSY, X_OK, err, q, write_rev


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
