"""The connection pool against a real PostgreSQL: connected state, PostgreSQL down at
start, restarts, killed backends, passwords never shown."""

import json
import time

import pytest

from migdtest import wait_for


def backends(pg, db):
    """PIDs of the client backends connected to db."""
    out = pg.psql("SELECT pid FROM pg_stat_activity WHERE datname = '%s' "
                  "AND backend_type = 'client backend' AND pid <> pg_backend_pid() "
                  "ORDER BY pid" % db)
    return [int(x) for x in out.split()] if out else []


def assert_down(s):
    db = s["database"]
    assert db["connected"] is False, s
    assert isinstance(db["last_error"], str) and db["last_error"].strip(), s
    assert db["server_version"] is None, s
    assert db["pool"]["connected"] == 0, s
    assert db["pool"]["size"] == 2, s


def test_pool_connections_are_real(migd_factory, pg):
    m = migd_factory(overrides={("database", "pool_size"): "3"})
    s = m.wait_connected(True, timeout=10, full=True)
    pool = s["database"]["pool"]
    assert pool["size"] == 3 and pool["connected"] == 3, pool
    # idle apart from the query status itself may be running
    assert pool["busy"] <= 1 and pool["busy"] + pool["idle"] == 3, pool
    wait_for(lambda: len(backends(pg, m.db)) == 3, 5,
             what="3 backends on the test database")


def test_backends_terminated_reconnect(migd, pg):
    migd.wait_connected(True, timeout=10, full=True)
    old = wait_for(lambda: len(backends(pg, migd.db)) == 2 and backends(pg, migd.db), 5,
                   what="2 backends")
    pg.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = '%s' AND pid <> pg_backend_pid()" % migd.db)

    def replaced():
        now = backends(pg, migd.db)
        return len(now) == 2 and not set(now) & set(old) and now
    wait_for(replaced, 10, what="two new backends replacing the terminated ones")
    s = migd.wait_connected(True, timeout=10, full=True)
    assert s["database"]["pool"]["connected"] == 2


def test_start_while_postgresql_down_then_up(migd_factory, own_pg, make_db):
    db = make_db(own_pg)
    own_pg.stop()
    m = migd_factory(pg=own_pg, db=db)
    err = wait_for(lambda: m.status()["database"]["last_error"], 5, what="last_error set")
    # libpq's lines read as sentences on one line, not run together
    assert "No such file or directory. Is the server running" in err, err
    assert "\n" not in err and "\t" not in err, err
    # migd answers at once and keeps saying "down" while PostgreSQL is down
    t_end = time.monotonic() + 5
    while time.monotonic() < t_end:
        t0 = time.monotonic()
        s = m.status()
        assert time.monotonic() - t0 < 1.0, "status took too long while PostgreSQL is down"
        assert_down(s)
        time.sleep(0.5)
    r = m.migctl("status")
    assert r.returncode in (0, 1), (r.returncode, r.stdout, r.stderr)
    assert "connected" in r.stdout, r.stdout

    own_pg.start()
    t0 = time.monotonic()
    s = m.wait_connected(True, timeout=15)
    took = time.monotonic() - t0
    assert s["database"]["server_version"].startswith(own_pg.major + ".")
    assert s["database"]["database"] == db
    # PostgreSQL was down for more than 5 s: an uncapped exponential backoff would wait
    # longer than this by now; the contract is a cap of about 2-3 s.
    assert took < 6.0, "reconnect took %.1fs after PostgreSQL came back" % took
    m.wait_connected(True, timeout=10, full=True)
    wait_for(lambda: len(backends(own_pg, db)) == 2, 5, what="2 backends")


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_postgresql_restart(migd_factory, own_pg, make_db, mode):
    db = make_db(own_pg)
    m = migd_factory(pg=own_pg, db=db)
    m.wait_connected(True, timeout=10, full=True)

    own_pg.stop(mode)
    s = m.wait_connected(False, timeout=10)
    assert isinstance(s["database"]["last_error"], str) and s["database"]["last_error"]
    s = wait_for(lambda: (lambda st: st["database"]["pool"]["connected"] == 0 and st)(
        m.status()), 10, what="pool.connected == 0")
    assert_down(s)

    own_pg.start()
    s = m.wait_connected(True, timeout=15)
    assert s["database"]["server_version"].startswith(own_pg.major + ".")
    m.wait_connected(True, timeout=10, full=True)

    # and once more: the reconnect logic is not one-shot
    own_pg.stop(mode)
    m.wait_connected(False, timeout=10)
    own_pg.start()
    m.wait_connected(True, timeout=15, full=True)


def test_password_never_shown(migd_factory, pg, make_db):
    db = make_db(pg)
    # trust authentication ignores the password, so this connects
    m = migd_factory(pg=pg, db=db, conninfo=pg.conninfo(db, "password=secret"))
    s = m.wait_connected(True, timeout=10, full=True)
    raw = json.dumps(s)
    assert "secret" not in raw
    r = m.migctl("status")
    assert r.returncode == 0 and "secret" not in r.stdout + r.stderr
    r = m.migctl("--json", "status")
    assert r.returncode == 0 and "secret" not in r.stdout + r.stderr
    assert "secret" not in m.log()


def test_password_not_in_last_error(migd_factory, own_pg, make_db):
    db = make_db(own_pg)
    own_pg.stop()
    m = migd_factory(pg=own_pg, db=db,
                     conninfo="postgresql://postgres:secret@/%s?host=%s&port=%d"
                              % (db, own_pg.sockdir, own_pg.port))
    wait_for(lambda: m.status()["database"]["last_error"], 5, what="last_error set")
    s = m.status()
    assert_down(s)
    assert "secret" not in json.dumps(s)
    assert "secret" not in m.log()
    own_pg.start()
    s = m.wait_connected(True, timeout=15)
    assert s["database"]["database"] == db
    assert s["database"]["user"] == "postgres"


# ---- permanent connection errors fail at once (issue 13) ----------------------

E_DB_UNAVAILABLE = -32004


@pytest.mark.parametrize("what", ["database", "role"])
def test_permanent_connection_error_fails_at_once(migd_factory, pg, what):
    """No such database or role: a request fails within about a second with the
    server's message, though connect_timeout is 10 s; status still answers."""
    conninfo = ("host=%s port=%d dbname=no_such_db_i13 user=postgres" % (pg.sockdir, pg.port)
                if what == "database" else
                "host=%s port=%d dbname=postgres user=no_such_role_i13" % (pg.sockdir, pg.port))
    m = migd_factory(pg=pg, conninfo=conninfo,
                     overrides={("database", "connect_timeout"): "10"})
    # at once, even before the first attempt has failed
    for method in ("current", "upgrade", "current"):
        t0 = time.monotonic()
        r = m.rpc(method, {}, timeout=15)
        took = time.monotonic() - t0
        assert "error" in r, r
        e = r["error"]
        assert e["code"] == E_DB_UNAVAILABLE and e["data"]["kind"] == "db_unavailable", e
        assert took < 1.5, "%s took %.1fs (connect_timeout is 10 s)" % (method, took)
        assert "does not exist" in e["message"], e
        assert e["data"]["permanent"] is True, e
        assert e["data"]["sqlstate"] == ("3D000" if what == "database" else "28000"), e
        # the message as people know it: no SQLSTATE, no LOCATION line
        assert "3D000" not in e["message"] and "LOCATION" not in e["message"], e
    s = m.status()
    assert_down(s)
    assert "does not exist" in s["database"]["last_error"], s
    assert "LOCATION" not in s["database"]["last_error"], s
    p = m.migctl("upgrade", timeout=15)
    assert p.returncode != 0 and "does not exist" in p.stderr, (p.returncode, p.stderr)


def test_permanent_error_fixed_connects_by_itself(migd_factory, pg):
    """migd keeps retrying after a permanent error: once the database exists, it
    connects without a reload."""
    name = "i13_later_%d" % int(time.time() * 1000 % 1000000)
    m = migd_factory(pg=pg, conninfo="host=%s port=%d dbname=%s user=postgres"
                     % (pg.sockdir, pg.port, name),
                     overrides={("database", "connect_timeout"): "10"})
    try:
        wait_for(lambda: m.status()["database"]["last_error"], 5, what="last_error set")
        pg.create_db(name)
        m.wait_connected(True, timeout=10)
        r = m.rpc("current", {}, timeout=15)
        assert "result" in r, r
    finally:
        m.stop()
        pg.drop_db(name)


def test_server_down_is_waited_for(migd_factory, own_pg, make_db):
    """A server that is down is not a permanent error: a request waits up to
    connect_timeout (here 2 s) and says so."""
    db = make_db(own_pg)
    own_pg.stop()
    m = migd_factory(pg=own_pg, db=db)
    wait_for(lambda: m.status()["database"]["last_error"], 5, what="last_error set")
    t0 = time.monotonic()
    r = m.rpc("current", {}, timeout=15)
    took = time.monotonic() - t0
    assert "error" in r and r["error"]["data"]["kind"] == "db_unavailable", r
    assert took >= 1.5, "gave up after %.1fs: a server that is down is waited for" % took
    assert r["error"]["data"].get("permanent") is not True, r
