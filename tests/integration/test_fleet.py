"""The fleet's test bed against what this build does (issue 16 points 2 and 5): 60
databases on a PostgreSQL with max_connections 25, one [database NAME] section each.
migd -n reads and prints them all; 60 pools of one connection are more than the cap of 8,
which is allowed: connections open on demand within the daemon's budget
(max_connections_total), close after idle_close, and never exceed the cap, also across
a server restart. The sampler is shown to see migd's connections, so its zero means
something.

A few databases within the cap run in one daemon, each its own object: `migctl --db`
and the `database` param pick one, a run on one does not hold up another, and a reload
adds and removes databases (not one with a run in progress).  Databases reading one
directory alike share one loaded set of files (one load, one watch)."""

import json
import os
import re
import shutil
import signal
import subprocess
import time

import pytest

import migdtest
from fleet_helpers import (FLEET_MAX_CONNECTIONS, FLEET_TEMPLATE, ConnSampler, FleetCluster,
                           fleet_config)
from migdtest import MIGD_BIN, Migd, clean_env, wait_for, write_atomic

N_DATABASES = 60
CAP = 8


@pytest.fixture(scope="module")
def fleet():
    cluster = FleetCluster()
    try:
        names = cluster.create_fleet(N_DATABASES, template_sql=(
            "CREATE TABLE tenant_marker (id int PRIMARY KEY);\n"))
        yield cluster, names
    finally:
        cluster.destroy()


@pytest.fixture
def workdir(request, fleet):
    d = migdtest.short_tempdir("migdfleet-")
    os.makedirs(os.path.join(d, "migrations"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _write_fleet(workdir, cluster, names, filename="fleet.conf", **kw):
    path = os.path.join(workdir, filename)
    write_atomic(path, fleet_config(cluster, names, os.path.join(workdir, "migrations"),
                                    os.path.join(workdir, "migd.sock"), **kw))
    return path


def test_fleet_cluster(fleet):
    cluster, names = fleet
    assert cluster.psql("SHOW max_connections") == str(FLEET_MAX_CONNECTIONS)
    assert cluster.databases() == names
    assert len(names) == N_DATABASES
    # every copy carries the template's table
    assert cluster.psql("SELECT count(*) FROM tenant_marker", db=names[-1]) == "0"


def test_fleet_check_prints_every_database(fleet, workdir):
    cluster, names = fleet
    path = _write_fleet(workdir, cluster, names, cap=CAP)
    p = subprocess.run([MIGD_BIN, "-n", "-c", path], capture_output=True, text=True,
                       timeout=30, env=clean_env(), stdin=subprocess.DEVNULL)
    # read and printed; 60 pools above a cap of 8 are fine: connections open on demand
    assert p.returncode == 0, (p.returncode, p.stderr)
    assert "# %d databases: %s" % (N_DATABASES, names[0]) in p.stdout, p.stdout[:500]
    sections = re.findall(r"^\[database (\S+)\]$", p.stdout, re.M)
    assert sections == names, sections
    for name in (names[0], names[-1]):
        block = p.stdout.split("[database %s]\n" % name, 1)[1]
        assert block.startswith("conninfo = user=postgres dbname=%s host=%s port=%d\n"
                                % (name, cluster.sockdir, cluster.port)), block[:300]
        assert "\npool_size = 1\n" in block.split("\n\n", 1)[0]
    assert "max_connections_total = %d\nidle_close = 60s\n" % CAP in p.stdout
    assert "above max_connections_total" not in p.stderr, p.stderr
    # one directory, checked once
    assert p.stderr.count("cannot open migrations directory") == 0
    assert p.stdout.count("# migrations: 0 revisions in") == 1, p.stdout[-500:]
    assert not os.path.exists(os.path.join(workdir, "migd.sock"))


def _sessions(cluster):
    """Sessions ever opened to the fleet's databases (pg_stat_database.sessions, counted
    when a session ends): exact, where a sampler could miss a short one."""
    return int(cluster.psql("SELECT coalesce(sum(sessions), 0) FROM pg_stat_database "
                            "WHERE left(datname, 6) = 'fleet_' "
                            "AND datname <> 'fleet_template'"))


def test_fleet_pool_size_above_the_cap_is_refused(fleet, workdir):
    """The sum of pool sizes may exceed the cap; one pool_size above it may not: migd
    refuses to start, before its socket and before any connection."""
    cluster, names = fleet
    path = _write_fleet(workdir, cluster, names[:2], cap=3,
                        extra_db={names[1]: {"pool_size": 4}})
    sock = os.path.join(workdir, "migd.sock")
    before = _sessions(cluster)
    p = subprocess.run([MIGD_BIN, "-c", path], capture_output=True, text=True,
                       timeout=15, env=clean_env(), stdin=subprocess.DEVNULL)
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert ("pool_size (4) of [database %s] is above max_connections_total (3): no "
            "database may hold more connections than the whole daemon" % names[1]
            ) in p.stderr, p.stderr
    assert not os.path.exists(sock), "the refused daemon left its socket"
    time.sleep(1.5)
    assert _sessions(cluster) == before, "the refused daemon connected to the fleet"


def test_fleet_reload_from_one_database_to_three(fleet, workdir):
    """A daemon started with one database takes two more on reload (SIGHUP or migctl
    reload): each is served at once, the first keeps its connection."""
    cluster, names = fleet
    path = _write_fleet(workdir, cluster, names[:1], cap=CAP)
    m = Migd(workdir, cluster.conninfo(names[0]), pg=cluster)
    m.config_path = path
    m.start()
    try:
        m.wait_connected()
        pid = _migd_backends(cluster, names[0])
        assert len(pid) == 1, pid
        _write_fleet(workdir, cluster, names[:3], cap=CAP)
        m.signal(signal.SIGHUP)
        wait_for(lambda: "configuration reloaded" in m.log(), 10, what="SIGHUP reload")
        st = _json(m.migctl("status", "--all", "--json"))
        assert [d["name"] for d in st["databases"]] == names[:3], st
        for name in names[1:3]:
            st = migdtest.assert_result(m.rpc("status", {"database": name}), 1)
            assert st["database"]["database"] == name, st["database"]
        assert _migd_backends(cluster, names[0]) == pid, "the first one reconnected"
        assert "database %s added" % names[2] in m.log(), m.log()[-2000:]
        assert m.proc.poll() is None
    finally:
        assert m.stop() == 0, m.log()


def _migd_backends(cluster, db):
    """The pids of migd's connections to db, sorted."""
    out = cluster.psql("SELECT pid FROM pg_stat_activity WHERE datname = '%s' "
                       "AND application_name = 'migd' ORDER BY 1" % db)
    return out.split("\n") if out else []


# ---- several databases in one daemon (issue 16 point 2) ---------------------------------

def _rev(directory, name, revision, down, up):
    with open(os.path.join(directory, name), "w") as f:
        f.write("-- revision: %s\n-- down_revision: %s\n\n-- migrate:up\n%s\n"
                % (revision, down, up))


def _chain(directory, n=2, prefix="f"):
    """n linear revisions f1..fn, each creating table public.fleet_t<i>."""
    os.makedirs(directory, exist_ok=True)
    for i in range(1, n + 1):
        _rev(directory, "%s%d.sql" % (prefix, i), "%s%d" % (prefix, i),
             "none" if i == 1 else "%s%d" % (prefix, i - 1),
             "CREATE TABLE public.fleet_t%d (id int);" % i)


def _versions(cluster, db):
    """The version table's rows of db, or None when it has none."""
    if cluster.psql("SELECT to_regclass('public.alembic_version') IS NOT NULL",
                    db=db) != "t":
        return None
    out = cluster.psql("SELECT version_num FROM public.alembic_version ORDER BY 1", db=db)
    return out.split("\n") if out else []


def _fleet_migd(workdir, cluster, dbs, filename="several.conf", **kw):
    m = Migd(workdir, cluster.conninfo(dbs[0]), pg=cluster)
    m.config_path = _write_fleet(workdir, cluster, dbs, filename, cap=CAP, **kw)
    return m


def _json(r):
    import json
    assert r.stdout, (r.returncode, r.stderr)
    return json.loads(r.stdout)


def _wait_all_connected(m, dbs):
    for name in dbs:
        wait_for(lambda: migdtest.assert_result(m.rpc("status", {"database": name}), 1)
                 ["database"]["connected"], 15, what="%s connected" % name)


def test_fleet_check_several_databases_within_the_cap(fleet, workdir):
    cluster, names = fleet
    path = _write_fleet(workdir, cluster, names[:3], cap=CAP)
    p = subprocess.run([MIGD_BIN, "-n", "-c", path], capture_output=True, text=True,
                       timeout=30, env=clean_env(), stdin=subprocess.DEVNULL)
    # three pools of one connection, cap 8: this build starts with it
    assert p.returncode == 0, (p.returncode, p.stderr)
    assert re.findall(r"^\[database (\S+)\]$", p.stdout, re.M) == names[:3]
    assert "max_connections_total" not in p.stderr, p.stderr


def test_fleet_db_option_picks_the_database(fleet, workdir):
    cluster, names = fleet
    dbs = names[3:6]
    _chain(os.path.join(workdir, "migrations"))
    m = _fleet_migd(workdir, cluster, dbs)
    with ConnSampler(cluster) as s:
        m.start()
        try:
            _wait_all_connected(m, dbs)
            # each database its own pool of pool_size 1: three connections, one each
            wait_for(lambda: s.max_migd_dbs == 3, 5, what="one connection per database")
            r = m.migctl("--db", dbs[0], "upgrade")
            assert r.returncode == 0, (r.stdout, r.stderr)
            assert _versions(cluster, dbs[0]) == ["f2"]
            assert _versions(cluster, dbs[1]) is None
            assert _versions(cluster, dbs[2]) is None
            # the option goes anywhere, --db=NAME too
            r = m.migctl("status", "--json", "--db=%s" % dbs[1])
            assert r.returncode == 0, (r.stdout, r.stderr)
            st = _json(r)
            assert st["database"]["name"] == dbs[1], st["database"]
            assert st["database"]["database"] == dbs[1], st["database"]
            assert st["state"] == "pending", st
            st = _json(m.migctl("--db", dbs[0], "status", "--json"))
            assert st["database"]["name"] == dbs[0]
            assert st["state"] == "up_to_date", st
            # the log says which database ran
            assert "%s: applied f1 (" % dbs[0] in m.log(), m.log()[-2000:]
            assert "%s: upgrade to head done: 2 migrations" % dbs[0] in m.log()
            assert "serving 3 databases (%s, %s, ...)" % tuple(dbs[:2]) in m.log()
            assert s.max_migd <= 3, s.summary()
        finally:
            assert m.stop() == 0, m.log()


def test_fleet_db_unknown_or_missing_is_refused(fleet, workdir):
    cluster, names = fleet
    dbs = names[6:8]
    _chain(os.path.join(workdir, "migrations"))
    m = _fleet_migd(workdir, cluster, dbs)
    m.start()
    try:
        _wait_all_connected(m, dbs)
        # an unknown name: a clear error naming the databases, exit 1, nothing ran
        r = m.migctl("--db", "nosuch", "upgrade")
        assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
        assert ("no database nosuch; databases: %s, %s" % tuple(dbs)) in r.stderr, r.stderr
        # several databases and none named: which one is not guessed
        r = m.migctl("upgrade")
        assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
        assert ("migd serves 2 databases: name one with the database param "
                "(migctl --db NAME); databases: %s, %s" % tuple(dbs)) in r.stderr, r.stderr
        r = m.migctl("--db", "", "status")
        assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
        assert "--db needs a database name" in r.stderr
        for db in dbs:
            assert _versions(cluster, db) is None, db
        # version needs no database
        r = m.migctl("version")
        assert r.returncode == 0, (r.stdout, r.stderr)
    finally:
        assert m.stop() == 0, m.log()


def test_fleet_database_param_on_the_socket(fleet, workdir):
    cluster, names = fleet
    dbs = names[8:10]
    _chain(os.path.join(workdir, "migrations"))
    m = _fleet_migd(workdir, cluster, dbs)
    m.start()
    try:
        _wait_all_connected(m, dbs)
        for db in dbs:
            st = migdtest.assert_result(m.rpc("status", {"database": db}), 1)
            assert st["database"]["database"] == db, st["database"]
        r = m.rpc("status")
        assert r["error"]["data"]["kind"] == "invalid_params", r
        assert r["error"]["data"]["databases"] == dbs, r
        r = m.rpc("upgrade", {"database": "nosuch"})
        assert r["error"]["data"]["kind"] == "invalid_params", r
        assert r["error"]["message"] == "no database nosuch; databases: %s, %s" % tuple(dbs)
        r = m.rpc("upgrade", {"database": 7})
        assert r["error"]["data"]["kind"] == "invalid_params", r
        assert "\"database\" must be a string" in r["error"]["message"], r
        # the param is the dispatcher's: the method's own params are checked as before
        r = m.rpc("upgrade", {"database": dbs[1], "nonsense": 1})
        assert r["error"]["data"]["kind"] == "invalid_params", r
        assert "unknown parameter \"nonsense\"" in r["error"]["message"], r
        for db in dbs:
            assert _versions(cluster, db) is None, db
        with migdtest.Conn(m.socket, 30) as c:    # progress first, then the reply
            c.send(migdtest.request("upgrade", {"database": dbs[1]}, 1))
            while "id" not in (r := c.recv(30)):
                assert r["method"] == "progress", r
        migdtest.assert_result(r, 1)
        assert _versions(cluster, dbs[1]) == ["f2"]
        assert _versions(cluster, dbs[0]) is None
        assert migdtest.assert_result(m.rpc("version"), 1)["name"] == "migd"
    finally:
        assert m.stop() == 0, m.log()


def test_fleet_run_on_one_does_not_hold_up_another(fleet, workdir):
    """Two run queues, two advisory locks (one per database): a slow run on a leaves
    status and a run on b free."""
    cluster, names = fleet
    a, b = names[10:12]
    da, db_ = os.path.join(workdir, "mig_a"), os.path.join(workdir, "mig_b")
    os.makedirs(da)
    _rev(da, "slow.sql", "slow", "none", "SELECT pg_sleep(4) AS fleet_slow_one;")
    _chain(db_)
    m = _fleet_migd(workdir, cluster, [a, b],
                    extra_db={a: {"directory": da}, b: {"directory": db_}})
    m.start()
    try:
        _wait_all_connected(m, [a, b])
        slow = subprocess.Popen([migdtest.MIGCTL_BIN, "--db", a, "upgrade"],
                                env=dict(clean_env(), MIGD_SOCKET=m.socket),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_for(lambda: cluster.psql(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE "
                "'%%fleet_slow_one%%' AND pid <> pg_backend_pid() AND datname = '%s'"
                % a) == "1", 10, what="the slow run on a")
            t0 = time.monotonic()
            st = _json(m.migctl("--db", b, "status", "--json"))
            assert st["state"] == "pending", st
            assert st["running"] is False, st
            r = m.migctl("--db", b, "upgrade")
            took = time.monotonic() - t0
            assert r.returncode == 0, (r.stdout, r.stderr)
            assert _versions(cluster, b) == ["f2"]
            # b finished while a's run still held a's lock and slept
            assert slow.poll() is None, "a's run ended before b's: nothing was shown"
            assert took < 3.0, took
            st = _json(m.migctl("--db", a, "status", "--json"))
            assert st["running"] is True, st
            assert not _versions(cluster, a)    # the table, empty: still running
        finally:
            out, errs = slow.communicate(timeout=30)
        assert slow.returncode == 0, (out, errs)
        assert _versions(cluster, a) == ["slow"]
    finally:
        assert m.stop() == 0, m.log()


def test_fleet_reload_adds_and_removes_databases(fleet, workdir):
    """A reload that adds c and removes a (and lists b after c): c is served (status
    --all lists it, upgrade --db c works), a's name is refused as any unknown one and
    its connection closes, b keeps its connection and its state."""
    cluster, names = fleet
    a, b, c = names[12:15]
    _chain(os.path.join(workdir, "migrations"))
    m = _fleet_migd(workdir, cluster, [a, b])
    m.start()
    try:
        _wait_all_connected(m, [a, b])
        r = m.migctl("--db", b, "upgrade")
        assert r.returncode == 0, (r.stdout, r.stderr)
        b_pid = _migd_backends(cluster, b)
        assert len(b_pid) == 1 and len(_migd_backends(cluster, a)) == 1
        _write_fleet(workdir, cluster, [c, b], "several.conf", cap=CAP)
        r = m.migctl("--db", b, "reload")
        assert r.returncode == 0, (r.stdout, r.stderr)
        assert r.stdout == "reloaded: 2 revisions, head f2\n", r.stdout
        st = _json(m.migctl("status", "--all", "--json"))
        assert [d["name"] for d in st["databases"]] == [c, b], st
        assert [d["state"] for d in st["databases"]] == ["pending", "up_to_date"], st
        r = m.migctl("--db", c, "upgrade")
        assert r.returncode == 0, (r.stdout, r.stderr)
        assert _versions(cluster, c) == ["f2"]
        # a: unknown now, as a name never served; nothing ran there
        r = m.migctl("--db", a, "upgrade")
        assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
        assert "no database %s; databases: %s, %s" % (a, c, b) in r.stderr, r.stderr
        r = m.rpc("status", {"database": a})
        assert r["error"]["data"]["kind"] == "invalid_params", r
        assert r["error"]["data"]["databases"] == [c, b], r
        assert _versions(cluster, a) is None
        wait_for(lambda: _migd_backends(cluster, a) == [], 5, what="a's connection closed")
        assert "database %s removed: its connections are closed" % a in m.log(), m.log()[-2000:]
        # b: the same connection, the same state
        assert _migd_backends(cluster, b) == b_pid
        assert _versions(cluster, b) == ["f2"]
        # reload with no --db reads every database's files again
        r = m.migctl("reload")
        assert r.returncode == 0, (r.stdout, r.stderr)
        assert r.stdout.startswith("reloaded: the configuration; every database's"), r.stdout
        assert m.proc.poll() is None
    finally:
        assert m.stop() == 0, m.log()


def test_fleet_reload_applies_one_databases_settings(fleet, workdir):
    """A reload of the same databases applies each one's settings to it alone: b's
    directory changes, a keeps its own."""
    cluster, names = fleet
    a, b = names[15:17]
    da, db_, dc = (os.path.join(workdir, d) for d in ("mig_a", "mig_b", "mig_c"))
    _chain(da, 1)
    _chain(db_, 2)
    _chain(dc, 3)
    m = _fleet_migd(workdir, cluster, [a, b],
                    extra_db={a: {"directory": da}, b: {"directory": db_}})
    m.start()
    try:
        _wait_all_connected(m, [a, b])
        st = _json(m.migctl("--db", b, "status", "--json"))
        assert (st["migrations"]["directory"], st["migrations"]["revisions"]) == (db_, 2)
        _write_fleet(workdir, cluster, [a, b], "several.conf", cap=CAP,
                     extra_db={a: {"directory": da}, b: {"directory": dc}})
        r = m.migctl("--db", b, "reload")
        assert r.returncode == 0, (r.stdout, r.stderr)
        assert r.stdout == "reloaded: 3 revisions, head f3\n", r.stdout
        st = _json(m.migctl("--db", b, "status", "--json"))
        assert (st["migrations"]["directory"], st["migrations"]["revisions"]) == (dc, 3)
        assert st["pending"] == 3, st
        st = _json(m.migctl("--db", a, "status", "--json"))
        assert (st["migrations"]["directory"], st["migrations"]["revisions"]) == (da, 1)
        r = m.migctl("--db", b, "upgrade")
        assert r.returncode == 0, (r.stdout, r.stderr)
        assert _versions(cluster, b) == ["f3"]
        assert _versions(cluster, a) is None
    finally:
        assert m.stop() == 0, m.log()


# ---- one loaded set of files per directory; reload adding and removing -----------------

def _fresh_dbs(cluster, prefix, n):
    """n databases of the fleet's template, made anew for one test (not fleet_*: the
    fleet's own count stays 60)."""
    dbs = ["%s_%d" % (prefix, i) for i in range(n)]
    cluster.psql_script("".join('DROP DATABASE IF EXISTS "%s";\nCREATE DATABASE "%s" '
                                'TEMPLATE "%s";\n' % (d, d, FLEET_TEMPLATE) for d in dbs))
    return dbs


def _inotify_fds(pid):
    """How many inotify instances process pid holds."""
    n = 0
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            if os.readlink("/proc/%d/fd/%s" % (pid, fd)) == "anon_inode:inotify":
                n += 1
        except OSError:
            pass
    return n


def _revisions(m, db):
    return _json(m.migctl("--db", db, "status", "--json"))["migrations"].get("revisions")


def test_fleet_databases_on_one_directory_share_one_set(fleet, workdir):
    """a and b read one directory, c its own: the shared files load once (one log line
    naming both, one inotify watch for the two), a new file there is seen by a and b at
    once (inotify, then reload), and c is unaffected."""
    cluster, names = fleet
    a, b, c = _fresh_dbs(cluster, "share", 3)
    shared, own = os.path.join(workdir, "migrations"), os.path.join(workdir, "mig_c")
    _chain(shared, 2)
    _chain(own, 1, prefix="c")
    m = _fleet_migd(workdir, cluster, [a, b, c], extra_db={c: {"directory": own}})
    m.start()
    try:
        _wait_all_connected(m, [a, b, c])
        log = m.log()
        assert log.count("loaded 2 revisions from %s" % shared) == 1, log[-3000:]
        assert "%s, %s: loaded 2 revisions from %s" % (a, b, shared) in log, log[-3000:]
        assert "%s: loaded 1 revision from %s" % (c, own) in log, log[-3000:]
        assert _inotify_fds(m.proc.pid) == 2, "one watch per directory"
        assert [_revisions(m, d) for d in (a, b, c)] == [2, 2, 1]
        # a new file: inotify, and status waits a moment for its load
        _rev(shared, "f3.sql", "f3", "f2", "CREATE TABLE public.fleet_t3 (id int);")
        wait_for(lambda: _revisions(m, a) == 3, 5, what="a sees f3")
        assert _revisions(m, b) == 3, "b reads the same set as a"
        assert _revisions(m, c) == 1
        # another, then a reload of a alone: b has it the moment a's answer comes
        _rev(shared, "f4.sql", "f4", "f3", "CREATE TABLE public.fleet_t4 (id int);")
        r = m.migctl("--db", a, "reload")
        assert r.returncode == 0, (r.stdout, r.stderr)
        assert r.stdout == "reloaded: 4 revisions, head f4\n", r.stdout
        st = _json(m.migctl("--db", b, "status", "--json"))
        assert (st["migrations"]["revisions"], st["migrations"]["heads"],
                st["pending"]) == (4, ["f4"], 4), st
        assert _revisions(m, c) == 1
        # an invalid file there: both see the problem, c does not
        with open(os.path.join(shared, "broken.sql"), "w") as f:
            f.write("-- revision: f5\n-- down_revision: nosuch\n\n-- migrate:up\nSELECT 1;\n")
        r = m.migctl("--db", b, "reload")
        assert r.returncode != 0, (r.stdout, r.stderr)
        for d in (a, b):
            st = _json(m.migctl("--db", d, "status", "--json"))
            assert st["migrations"]["valid"] is False, st["migrations"]
            assert "nosuch" in st["migrations"]["errors"][0], st["migrations"]
            r = m.migctl("--db", d, "upgrade")
            assert r.returncode != 0 and "nosuch" in r.stderr, (r.stdout, r.stderr)
        st = _json(m.migctl("--db", c, "status", "--json"))
        assert st["migrations"]["valid"] is True, st["migrations"]
        assert "%s, %s: migrations in %s are invalid" % (a, b, shared) in m.log()
        for d in (a, b):
            assert not _versions(cluster, d), d     # nothing applied
        assert _inotify_fds(m.proc.pid) == 2
    finally:
        assert m.stop() == 0, m.log()


def test_fleet_run_keeps_its_set_when_shared_files_change(fleet, workdir):
    """A run on a keeps the revisions it planned with while a new file arrives in the
    directory a and b share (and a reload reads it): a stops at its head, b (idle) sees
    the new one pending at once, and a's next run applies it."""
    cluster, names = fleet
    a, b = _fresh_dbs(cluster, "keep", 2)
    shared = os.path.join(workdir, "migrations")
    _rev(shared, "slow.sql", "slow", "none", "SELECT pg_sleep(3) AS fleet_keep_slow;")
    m = _fleet_migd(workdir, cluster, [a, b])
    m.start()
    try:
        _wait_all_connected(m, [a, b])
        run = subprocess.Popen([migdtest.MIGCTL_BIN, "--db", a, "upgrade", "--json"],
                               env=dict(clean_env(), MIGD_SOCKET=m.socket),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_for(lambda: cluster.psql(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE "
                "'%%fleet_keep_slow%%' AND pid <> pg_backend_pid() AND datname = '%s'"
                % a) == "1", 10, what="the slow run on a")
            _rev(shared, "after.sql", "after", "slow", "CREATE TABLE public.keep_after (id int);")
            r = m.migctl("--db", b, "reload")
            assert r.returncode == 0, (r.stdout, r.stderr)
            st = _json(m.migctl("--db", b, "status", "--json"))
            assert (st["migrations"]["heads"], st["pending"]) == (["after"], 2), st
        finally:
            out, errs = run.communicate(timeout=30)
        assert run.returncode == 0, (out, errs)
        res = json.loads(out)
        assert res["to"] == ["slow"], res
        assert [x["revision"] for x in res["steps"]] == ["slow"], res
        assert _versions(cluster, a) == ["slow"]
        assert cluster.psql("SELECT to_regclass('public.keep_after') IS NULL", db=a) == "t"
        r = m.migctl("--db", a, "upgrade")
        assert r.returncode == 0, (r.stdout, r.stderr)
        assert _versions(cluster, a) == ["after"]
        assert _versions(cluster, b) is None
    finally:
        assert m.stop() == 0, m.log()


def test_fleet_reload_removing_a_database_mid_run_is_refused(fleet, workdir):
    """A reload that removes a database with a run in progress (or queued) is refused,
    naming it, and changes nothing (the database it adds is not added); once the run
    ended, the same reload removes it."""
    cluster, names = fleet
    a, b, c = _fresh_dbs(cluster, "midrun", 3)
    da = os.path.join(workdir, "mig_a")
    os.makedirs(da)
    _rev(da, "slow.sql", "slow", "none", "SELECT pg_sleep(3) AS fleet_midrun_slow;")
    _chain(os.path.join(workdir, "migrations"))
    m = _fleet_migd(workdir, cluster, [a, b], extra_db={a: {"directory": da}})
    m.start()
    try:
        _wait_all_connected(m, [a, b])
        run = subprocess.Popen([migdtest.MIGCTL_BIN, "--db", a, "upgrade"],
                               env=dict(clean_env(), MIGD_SOCKET=m.socket),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_for(lambda: cluster.psql(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE "
                "'%%fleet_midrun_slow%%' AND pid <> pg_backend_pid() AND datname = '%s'"
                % a) == "1", 10, what="the slow run on a")
            _write_fleet(workdir, cluster, [b, c], "several.conf", cap=CAP)
            r = m.migctl("--db", b, "reload")
            assert r.returncode != 0, (r.stdout, r.stderr)
            assert ("%s no longer has database %s, which has a run in progress or queued: "
                    "reload again once it ends, or cancel it (migctl --db %s cancel); the "
                    "running settings are kept" % (m.config_path, a, a)) in r.stderr, r.stderr
            m.signal(signal.SIGHUP)
            wait_for(lambda: m.log().count("reload failed: keeping the previous settings")
                     >= 2, 10, what="SIGHUP refused too")
            st = _json(m.migctl("status", "--all", "--json"))
            assert [d["name"] for d in st["databases"]] == [a, b], st
            r = m.rpc("status", {"database": c})
            assert r["error"]["data"]["kind"] == "invalid_params", r
        finally:
            out, errs = run.communicate(timeout=30)
        assert run.returncode == 0, (out, errs)
        assert _versions(cluster, a) == ["slow"]
        r = m.migctl("--db", b, "reload")
        assert r.returncode == 0, (r.stdout, r.stderr)
        st = _json(m.migctl("status", "--all", "--json"))
        assert [d["name"] for d in st["databases"]] == [b, c], st
        wait_for(lambda: _migd_backends(cluster, a) == [], 5, what="a's connection closed")
    finally:
        assert m.stop() == 0, m.log()


def test_fleet_reload_removing_a_database_a_rollout_counts_is_refused(fleet, workdir):
    """upgrade --all --parallel 1 runs a (slow) while b waits its turn: a reload that
    removes b is refused, naming the rollout; b is then upgraded by it, and the same
    reload afterwards removes b."""
    cluster, names = fleet
    a, b = _fresh_dbs(cluster, "rollout", 2)
    da = os.path.join(workdir, "mig_a")
    os.makedirs(da)
    _rev(da, "slow.sql", "slow", "none", "SELECT pg_sleep(3) AS fleet_rollout_slow;")
    _chain(os.path.join(workdir, "migrations"))
    m = _fleet_migd(workdir, cluster, [a, b], extra_db={a: {"directory": da}})
    m.start()
    try:
        _wait_all_connected(m, [a, b])
        run = subprocess.Popen([migdtest.MIGCTL_BIN, "upgrade", "--all", "--parallel", "1"],
                               env=dict(clean_env(), MIGD_SOCKET=m.socket),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_for(lambda: cluster.psql(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE "
                "'%%fleet_rollout_slow%%' AND pid <> pg_backend_pid() AND datname = '%s'"
                % a) == "1", 10, what="the rollout's slow run on a")
            _write_fleet(workdir, cluster, [a], "several.conf", cap=CAP,
                         extra_db={a: {"directory": da}})
            r = m.migctl("reload")
            assert r.returncode != 0, (r.stdout, r.stderr)
            assert ("%s no longer has database %s, which an upgrade --all in progress "
                    "counts: reload again once it ends, or cancel it (migctl cancel "
                    "--all); the running settings are kept" % (m.config_path, b)
                    ) in r.stderr, r.stderr
        finally:
            out, errs = run.communicate(timeout=30)
        assert run.returncode == 0, (out, errs)
        assert _versions(cluster, a) == ["slow"] and _versions(cluster, b) == ["f2"]
        r = m.migctl("reload")
        assert r.returncode == 0, (r.stdout, r.stderr)
        st = _json(m.migctl("status", "--all", "--json"))
        assert [d["name"] for d in st["databases"]] == [a], st
    finally:
        assert m.stop() == 0, m.log()


def test_fleet_removed_database_answers_the_request_under_way(fleet, workdir):
    """A request under way on a database a reload removes is answered (the database
    goes once it is): with a cap of 1 held by b's slow run, a's plan waits for a
    connection while a is removed; it gets its answer, a's name is refused from the
    reload on, and a is gone once the plan ended."""
    cluster, names = fleet
    a, b = _fresh_dbs(cluster, "underway", 2)
    db_ = os.path.join(workdir, "mig_b")
    os.makedirs(db_)
    _rev(db_, "slow.sql", "slow", "none", "SELECT pg_sleep(3) AS fleet_underway_slow;")
    _chain(os.path.join(workdir, "migrations"))
    m = Migd(workdir, cluster.conninfo(a), pg=cluster)
    m.config_path = _write_fleet(workdir, cluster, [a, b], "several.conf", cap=1,
                                 extra_db={b: {"directory": db_}})
    m.start()
    try:
        run = subprocess.Popen([migdtest.MIGCTL_BIN, "--db", b, "upgrade"],
                               env=dict(clean_env(), MIGD_SOCKET=m.socket),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_for(lambda: cluster.psql(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE "
                "'%%fleet_underway_slow%%' AND pid <> pg_backend_pid() AND datname = '%s'"
                % b) == "1", 10, what="the slow run on b")
            with migdtest.Conn(m.socket, 30) as c:
                c.send(migdtest.request("plan", {"database": a}, 7))
                time.sleep(0.3)
                _write_fleet(workdir, cluster, [b], "several.conf", cap=1,
                             extra_db={b: {"directory": db_}})
                m.signal(signal.SIGHUP)
                wait_for(lambda: "database %s is no longer in" % a in m.log(), 10,
                         what="a removed")
                r = m.rpc("status", {"database": a})
                assert r["error"]["data"]["kind"] == "invalid_params", r
                assert "database %s removed" % a not in m.log(), "freed under its request"
                r = c.recv(30)
                assert r["id"] == 7, r
                assert "result" in r or r["error"]["data"]["kind"] == "db_unavailable", r
        finally:
            out, errs = run.communicate(timeout=30)
        assert run.returncode == 0, (out, errs)
        wait_for(lambda: "database %s removed: its connections are closed" % a in m.log(),
                 5, what="a freed")
        assert _versions(cluster, a) is None
        st = _json(m.migctl("status", "--all", "--json"))
        assert [d["name"] for d in st["databases"]] == [b], st
    finally:
        assert m.stop() == 0, m.log()


@pytest.mark.parametrize("mistake", ["syntax", "no_conninfo", "bad_name"])
def test_fleet_bad_config_on_reload_changes_nothing(fleet, workdir, mistake):
    """A file with a mistake, which also adds one database and removes another, is
    refused as a whole: the same databases, the same connections, the same files."""
    cluster, names = fleet
    a, b = _fresh_dbs(cluster, "badrl", 2)
    _chain(os.path.join(workdir, "migrations"))
    m = _fleet_migd(workdir, cluster, [a, b])
    m.start()
    try:
        _wait_all_connected(m, [a, b])
        pids = {d: _migd_backends(cluster, d) for d in (a, b)}
        text = fleet_config(cluster, [b, "fleet_new"], os.path.join(workdir, "other"),
                            m.socket, cap=CAP)
        text += {"syntax": "[database\n",
                 "no_conninfo": "[database nothing]\npool_size = 1\n",
                 "bad_name": "[database -x]\nconninfo = dbname=x\n"}[mistake]
        write_atomic(m.config_path, text)
        r = m.migctl("--db", b, "reload")
        assert r.returncode != 0, (r.stdout, r.stderr)
        assert m.config_path in r.stderr, r.stderr
        st = _json(m.migctl("status", "--all", "--json"))
        assert [d["name"] for d in st["databases"]] == [a, b], st
        assert all(d["migrations"]["directory"] == os.path.join(workdir, "migrations")
                   for d in st["databases"]), st
        r = m.rpc("status", {"database": "fleet_new"})
        assert r["error"]["data"]["kind"] == "invalid_params", r
        assert {d: _migd_backends(cluster, d) for d in (a, b)} == pids
        r = m.migctl("--db", a, "upgrade")
        assert r.returncode == 0, (r.stdout, r.stderr)
        assert _versions(cluster, a) == ["f2"]
    finally:
        assert m.stop() == 0, m.log()


def test_fleet_local_passes_db_through(fleet, workdir):
    """migctl --local -c FILE --db NAME: the private migd serves every database of the
    file, and the request names the one asked for."""
    cluster, names = fleet
    dbs = names[17:19]
    _chain(os.path.join(workdir, "migrations"))
    path = _write_fleet(workdir, cluster, dbs, cap=CAP)
    env = clean_env()
    env.pop("MIGD_SOCKET", None)
    run = lambda *a: subprocess.run([migdtest.MIGCTL_BIN, "--local", "-c", path] + list(a),
                                    env=env, capture_output=True, text=True, timeout=60,
                                    stdin=subprocess.DEVNULL)
    r = run("--db", dbs[1], "upgrade")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert _versions(cluster, dbs[1]) == ["f2"]
    assert _versions(cluster, dbs[0]) is None
    r = run("--db", dbs[0], "status", "--json")
    st = _json(r)
    assert st["database"]["name"] == dbs[0] and st["state"] == "pending", st
    r = run("--db", "nosuch", "upgrade")
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert "no database nosuch; databases: %s, %s" % tuple(dbs) in r.stderr, r.stderr
    assert _versions(cluster, dbs[0]) is None


# ---- the fleet commands: --all (issue 16 point 3) ----------------------------------------

def _history(cluster, db):
    """(revision, success, started_at epoch, finished_at epoch) of db's upgrade rows."""
    if cluster.psql("SELECT to_regclass('public.migd_history') IS NOT NULL", db=db) != "t":
        return []
    out = cluster.psql("SELECT revision, success, extract(epoch FROM started_at), "
                       "extract(epoch FROM finished_at) FROM public.migd_history "
                       "WHERE direction = 'up' ORDER BY id", db=db)
    rows = []
    for line in out.split("\n") if out else []:
        rev, ok, t0, t1 = line.split("|")
        rows.append((rev, ok == "t", float(t0), float(t1) if t1 else None))
    return rows


def _started(m, dbs):
    m.start()
    _wait_all_connected(m, dbs)


def test_fleet_status_check_verify_all(fleet, workdir):
    cluster, names = fleet
    dbs = names[20:26]
    _chain(os.path.join(workdir, "migrations"))
    m = _fleet_migd(workdir, cluster, dbs)
    _started(m, dbs)
    try:
        r = m.migctl("--db", dbs[1], "upgrade")
        assert r.returncode == 0, (r.stdout, r.stderr)
        # text: a header and a line per database, in the file's order
        r = m.migctl("status", "--all")
        assert r.returncode == 0, (r.stdout, r.stderr)
        lines = r.stdout.strip().split("\n")
        assert lines[0].split()[:5] == ["DATABASE", "STATE", "CURRENT", "PENDING",
                                        "LAST", ], lines[0]
        assert [l.split()[0] for l in lines[1:]] == dbs, r.stdout
        row = dict((l.split()[0], l.split()) for l in lines[1:])
        assert row[dbs[0]][1:4] == ["pending", "base", "2"], row[dbs[0]]
        assert row[dbs[1]][1:4] == ["up_to_date", "f2", "0"], row[dbs[1]]
        assert row[dbs[1]][5:7] == ["upgrade", "ok"], row[dbs[1]]   # its last run
        assert row[dbs[0]][4] == "-", row[dbs[0]]
        # JSON: {"databases": [...]}, each a database's status with its name
        st = _json(m.migctl("--json", "status", "--all"))
        assert [d["name"] for d in st["databases"]] == dbs
        assert [d["state"] for d in st["databases"]] == \
            ["pending", "up_to_date"] + ["pending"] * 4, st
        assert all(d["database"]["database"] == d["name"] for d in st["databases"])
        assert st["databases"][1]["last_run"]["result"] == "ok"
        assert st["databases"][1]["last_run"]["migrations"] == 2
        assert st["databases"][0]["last_run"] is None
        # over the socket: one request
        res = migdtest.assert_result(m.rpc("status", {"all": True}), 1)
        assert len(res["databases"]) == 6
        # check --all: 4, naming those not up to date
        r = m.migctl("check", "--all")
        assert r.returncode == 4, (r.returncode, r.stdout, r.stderr)
        assert "not up to date: %s" % " ".join([dbs[0]] + dbs[2:]) in r.stdout, r.stdout
        # verify --all: nothing drifted anywhere
        r = m.migctl("verify", "--all")
        assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
        assert "verify --all: 6 databases, 0 with problems" in r.stdout, r.stdout
        # a drifted database: verify --all names it, exit 4
        with open(os.path.join(workdir, "migrations", "f1.sql"), "a") as f:
            f.write("-- changed after it was applied\n")
        migdtest.assert_result(m.rpc("reload", {"database": dbs[1]}), 1)
        r = m.migctl("verify", "--all")
        assert r.returncode == 4, (r.returncode, r.stdout, r.stderr)
        assert "%s: problems found" % dbs[1] in r.stdout, r.stdout
        assert "verify --all: 6 databases, 1 with problems" in r.stdout, r.stdout
        v = _json(m.migctl("--json", "verify", "--all"))
        assert v["ok"] is False
        assert [d["name"] for d in v["databases"] if not d["ok"]] == [dbs[1]]
    finally:
        assert m.stop() == 0, m.log()


def test_fleet_upgrade_all_canary_first(fleet, workdir):
    cluster, names = fleet
    dbs = names[26:32]
    d = os.path.join(workdir, "migrations")
    _chain(d)
    _rev(d, "f3.sql", "f3", "f2", "SELECT pg_sleep(0.2);")
    canary = dbs[3]
    m = _fleet_migd(workdir, cluster, dbs)
    _started(m, dbs)
    try:
        t0 = time.monotonic()
        r = m.migctl("upgrade", "--all", "--canary", canary, "--parallel", "3")
        took = time.monotonic() - t0
        assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
        for db in dbs:
            assert _versions(cluster, db) == ["f3"], db
        # progress lines carry the database's name; the canary's come first
        out = r.stdout.split("\n")
        assert out[0] == "%s: started" % canary, r.stdout
        assert "%s: [1/3] up f1" % canary in r.stdout, r.stdout
        first_other = min(i for i, l in enumerate(out) if l.endswith(": started")
                          and not l.startswith(canary))
        assert "%s: finished" % canary in out[:first_other], r.stdout
        # the summary names every database
        for db in dbs:
            assert re.search(r"^%s +upgraded base \(nothing applied\) -> f3, 3 "
                             r"migrations in" % db, r.stdout, re.M), r.stdout
        assert "6 upgraded, 0 already up to date, 0 failed, 0 not started" in r.stdout
        # the history: the canary's last step ended before anyone else's first began
        canary_end = max(h[3] for h in _history(cluster, canary))
        for db in dbs:
            if db != canary:
                assert min(h[2] for h in _history(cluster, db)) >= canary_end, db
        # again: every one is up to date; JSON summary
        res = _json(m.migctl("--json", "upgrade", "--all"))
        assert [e["result"] for e in res["databases"]] == ["up_to_date"] * 6, res
        assert res["up_to_date"] == 6 and res["failed"] == 0
        print("rollout of 6 databases x 3 revisions, --parallel 3: %.2f s" % took)
    finally:
        assert m.stop() == 0, m.log()


def test_fleet_upgrade_all_stops_at_first_failure(fleet, workdir):
    cluster, names = fleet
    dbs = names[32:38]
    _chain(os.path.join(workdir, "migrations"))
    bad = dbs[2]
    cluster.psql("CREATE TABLE public.fleet_t2 (x int)", db=bad)   # f2 will fail there
    m = _fleet_migd(workdir, cluster, dbs)
    _started(m, dbs)
    try:
        r = m.migctl("upgrade", "--all", "--parallel", "1")
        assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
        assert re.search(r"^%s +FAILED: .*fleet_t2.* already exists" % bad, r.stdout,
                         re.M), r.stdout
        for db in dbs[3:]:
            assert re.search(r"^%s +not started \(database %s failed\)" % (db, bad),
                             r.stdout, re.M), r.stdout
            assert _versions(cluster, db) is None, db
        assert "2 upgraded, 0 already up to date, 1 failed, 3 not started" in r.stdout
        assert _versions(cluster, dbs[0]) == ["f2"] and _versions(cluster, dbs[1]) == ["f2"]
        assert _versions(cluster, bad) == ["f1"]    # f1 stayed; f2 rolled back
        # --continue-on-error: the rest run; the bad one fails again, named; exit 1
        res = m.migctl("--json", "upgrade", "--all", "--continue-on-error")
        assert res.returncode == 1, (res.returncode, res.stdout, res.stderr)
        res = _json(res)
        by = {e["name"]: e for e in res["databases"]}
        assert by[bad]["result"] == "failed", by[bad]
        assert "fleet_t2" in by[bad]["error"]["message"]
        assert [by[db]["result"] for db in dbs[:2]] == ["up_to_date"] * 2
        assert [by[db]["result"] for db in dbs[3:]] == ["upgraded"] * 3
        assert (res["upgraded"], res["failed"], res["not_started"]) == (3, 1, 0)
        for db in dbs[3:]:
            assert _versions(cluster, db) == ["f2"], db
    finally:
        assert m.stop() == 0, m.log()


def test_fleet_upgrade_all_canary_failure_starts_nothing(fleet, workdir):
    cluster, names = fleet
    dbs = names[38:41]
    _chain(os.path.join(workdir, "migrations"))
    cluster.psql("CREATE TABLE public.fleet_t1 (x int)", db=dbs[1])
    m = _fleet_migd(workdir, cluster, dbs)
    _started(m, dbs)
    try:
        r = m.migctl("upgrade", "--all", "--canary", dbs[1], "--continue-on-error")
        assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
        assert "%s: started" % dbs[0] not in r.stdout, r.stdout
        assert "not started (the canary %s failed)" % dbs[1] in r.stdout, r.stdout
        assert "0 upgraded, 0 already up to date, 1 failed, 2 not started" in r.stdout
        for db in dbs:
            assert not _versions(cluster, db), db
    finally:
        assert m.stop() == 0, m.log()


def test_fleet_upgrade_all_two_daemons_apply_once(fleet, workdir):
    """Two daemons on the same fleet (two hosts, say) rolling out at once: PostgreSQL's
    advisory lock, one per database, has each revision applied once per database."""
    cluster, names = fleet
    dbs = names[41:47]
    d = os.path.join(workdir, "migrations")
    _chain(d)
    _rev(d, "f3.sql", "f3", "f2", "SELECT pg_sleep(0.3);")
    m1 = _fleet_migd(workdir, cluster, dbs)
    other = os.path.join(workdir, "b")
    os.makedirs(other)
    m2 = Migd(other, cluster.conninfo(dbs[0]), pg=cluster)
    m2.config_path = os.path.join(other, "fleet.conf")
    write_atomic(m2.config_path, fleet_config(cluster, dbs, d, os.path.join(other, "migd.sock"),
                                              cap=CAP))
    _started(m1, dbs)
    try:
        _started(m2, dbs)
        env = lambda m: dict(clean_env(), MIGD_SOCKET=m.socket)
        ps = [subprocess.Popen([migdtest.MIGCTL_BIN, "--json", "upgrade", "--all",
                                "--parallel", "3"], env=env(m), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True) for m in (m1, m2)]
        outs = [p.communicate(timeout=120) for p in ps]
        for p, (out, err) in zip(ps, outs):
            assert p.returncode == 0, (p.returncode, out, err)
        results = [json.loads(out) for out, _ in outs]
        for db in dbs:
            assert _versions(cluster, db) == ["f3"], db
            applied = [h[0] for h in _history(cluster, db) if h[1]]
            assert sorted(applied) == ["f1", "f2", "f3"], (db, applied)
            # between them, the two daemons upgraded each database once
            got = [next(e for e in res["databases"] if e["name"] == db) for res in results]
            assert sum(e.get("migrations", 0) for e in got) == 3, (db, got)
    finally:
        try:
            assert m2.stop() == 0, m2.log()
        finally:
            assert m1.stop() == 0, m1.log()


def test_fleet_upgrade_all_database_gone_midway(fleet, workdir):
    cluster, names = fleet
    dbs = names[47:53]
    canary, gone = dbs[0], dbs[4]
    slow = os.path.join(workdir, "slow")
    os.makedirs(slow)
    _rev(slow, "s1.sql", "f1", "none", "SELECT pg_sleep(2) AS fleet_canary_sleep;")
    _chain(os.path.join(workdir, "migrations"))
    m = _fleet_migd(workdir, cluster, dbs, extra_db={canary: {"directory": slow}})
    _started(m, dbs)
    try:
        p = subprocess.Popen([migdtest.MIGCTL_BIN, "--json", "upgrade", "--all", "--canary",
                              canary, "--parallel", "2", "--continue-on-error"],
                             env=dict(clean_env(), MIGD_SOCKET=m.socket),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: cluster.psql(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%%fleet_canary_sleep%%'"
            " AND pid <> pg_backend_pid()") == "1", 10, what="the canary's run")
        cluster.psql('DROP DATABASE "%s" WITH (FORCE)' % gone)
        out, err = p.communicate(timeout=120)
        assert p.returncode == 1, (p.returncode, out, err)
        res = json.loads(out)
        by = {e["name"]: e for e in res["databases"]}
        assert by[gone]["result"] == "failed", by[gone]
        assert by[gone]["error"]["message"], by[gone]
        for db in dbs:
            if db != gone:
                assert by[db]["result"] == "upgraded", by[db]
                assert _versions(cluster, db) == (["f1"] if db == canary else ["f2"]), db
        assert (res["upgraded"], res["failed"], res["not_started"]) == (5, 1, 0), res
        r = m.migctl("check", "--all")
        assert r.returncode == 4, (r.returncode, r.stdout, r.stderr)
        assert "not up to date: %s" % gone in r.stdout, r.stdout
    finally:
        assert m.stop() == 0, m.log()
        # the fleet's other tests count on every database being there
        cluster.psql('CREATE DATABASE "%s" TEMPLATE "%s"' % (gone, FLEET_TEMPLATE))


def test_fleet_all_bad_inputs(fleet, workdir):
    cluster, names = fleet
    dbs = names[53:55]
    _chain(os.path.join(workdir, "migrations"))
    m = _fleet_migd(workdir, cluster, dbs)
    _started(m, dbs)
    try:
        for args, code, msg in (
                (["upgrade", "--all", "--canary", "nosuch"], 1,
                 "no database nosuch to be the canary: name one migd serves; "
                 "databases: %s" % ", ".join(dbs)),
                (["upgrade", "--all", "--parallel", "0"], 2,
                 "--parallel takes a number of databases from 1 to 1000, not '0'"),
                (["upgrade", "--all", "--parallel", "x"], 2,
                 "--parallel takes a number of databases from 1 to 1000, not 'x'"),
                (["upgrade", "--all", "--db", dbs[0]], 2,
                 "--all and --db do not go together"),
                (["status", "--all", "--db", dbs[0]], 2,
                 "--all and --db do not go together"),
                (["upgrade", "--parallel", "2", "--db", dbs[0]], 2,
                 "--parallel goes with --all"),
                (["upgrade", "--canary", dbs[0]], 2, "--canary goes with --all"),
                (["history", "--all"], 2, "history takes no --all"),
                (["upgrade", "--all", "--sql", "head"], 2,
                 "--all asks migd about every database: --sql does not go with it"),
                (["upgrade", "--all", "--parallel"], 2, "--parallel needs a value"),
        ):
            r = m.migctl(*args)
            assert r.returncode == code, (args, r.returncode, r.stdout, r.stderr)
            assert msg in r.stderr, (args, r.stderr)
        # the socket checks the same
        r = m.rpc("upgrade", {"all": True, "parallel": 0})
        assert r["error"]["data"]["kind"] == "invalid_params", r
        r = m.rpc("upgrade", {"all": True, "database": dbs[0]})
        assert "\"all\" and \"database\" do not go together" in r["error"]["message"], r
        r = m.rpc("status", {"all": True, "canary": dbs[0]})
        assert "unknown parameter \"canary\"" in r["error"]["message"], r
        r = m.rpc("upgrade", {"all": True, "canary": "nosuch"})
        assert r["error"]["data"]["databases"] == dbs, r
        for db in dbs:
            assert _versions(cluster, db) is None, db
    finally:
        assert m.stop() == 0, m.log()


def test_fleet_upgrade_all_passes_target_dry_run_atomic(fleet, workdir):
    cluster, names = fleet
    dbs = names[55:57]
    _chain(os.path.join(workdir, "migrations"), 3)
    m = _fleet_migd(workdir, cluster, dbs)
    _started(m, dbs)
    try:
        r = m.migctl("upgrade", "--all", "--dry-run")
        assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
        for db in dbs:
            assert re.search(r"^%s +dry run: 3 migrations would run$" % db, r.stdout,
                             re.M), r.stdout
            assert _versions(cluster, db) is None, db
        r = m.migctl("--json", "upgrade", "--all", "f2", "--atomic")
        assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
        for e in _json(r)["databases"]:
            assert (e["result"], e["to"], e["migrations"]) == ("upgraded", ["f2"], 2), e
        for db in dbs:
            assert _versions(cluster, db) == ["f2"], db
    finally:
        assert m.stop() == 0, m.log()


def _rollout_started(cluster, m, marker):
    """migctl upgrade --all, one database at a time, past failures, its first run
    (a statement carrying marker) under way."""
    p = subprocess.Popen([migdtest.MIGCTL_BIN, "upgrade", "--all", "--parallel", "1",
                          "--continue-on-error"],
                         env=dict(clean_env(), MIGD_SOCKET=m.socket),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: _sleeping(cluster, marker), 10, what="the first run")
    return p


def test_fleet_upgrade_all_ctrl_c_cancels_the_rollout(fleet, workdir):
    """Ctrl-C on migctl upgrade --all cancels the whole rollout: the running database's
    run rolls back, the rest never start."""
    cluster, names = fleet
    dbs = names[57:60]
    d = os.path.join(workdir, "migrations")
    _rev(d, "s1.sql", "s1", "none", "SELECT pg_sleep(5) AS fleet_cancel_sleep;")
    m = _fleet_migd(workdir, cluster, dbs)
    _started(m, dbs)
    try:
        p = _rollout_started(cluster, m, "fleet_cancel_sleep")
        t0 = time.monotonic()
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
        assert time.monotonic() - t0 < 4, (out, err)
        assert p.returncode == 1, (p.returncode, out, err)
        assert "cancelling the run" in err, err
        assert re.search(r"^%s +FAILED: .*cancelled by .*rolled back" % dbs[0], out,
                         re.M), out
        for db in dbs[1:]:
            assert re.search(r"^%s +not started \(cancelled by" % db, out, re.M), out
        for db in dbs:
            assert not _versions(cluster, db), db
        # no rollout left to cancel
        r = m.rpc("cancel", {"all": True})
        assert r["error"]["data"]["kind"] == "not_running", r
    finally:
        assert m.stop() == 0, m.log()


def test_fleet_cancel_all_stops_a_rollout_whose_migctl_is_gone(fleet, workdir):
    """A pipeline cancelled kills its migctl upgrade --all (SIGTERM): the rollout goes on
    in migd, as documented.  `migctl cancel --all` stops it from another shell: the
    running run rolls back, no other database starts; with none left it exits 1.
    (migctl had no way to send the protocol's cancel {"all": true}: 'cancel takes no
    --all', exit 2, and `--db NAME cancel` stopped one run while --continue-on-error
    went on with the rest.)"""
    cluster, names = fleet
    dbs = _fresh_dbs(cluster, "cancelall", 3)
    d = os.path.join(workdir, "migrations")
    _rev(d, "s1.sql", "s1", "none", "SELECT pg_sleep(5) AS fleet_cancel_all_sleep;")
    m = _fleet_migd(workdir, cluster, dbs)
    _started(m, dbs)
    try:
        p = _rollout_started(cluster, m, "fleet_cancel_all_sleep")
        p.send_signal(signal.SIGTERM)
        p.communicate(timeout=10)
        assert p.returncode == -signal.SIGTERM, p.returncode
        r = m.migctl("cancel", "--all")
        assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
        assert r.stdout == ("cancelling the rollout: no more databases start; the runs "
                            "of %s are cancelled and their migrations roll back\n"
                            % dbs[0]), r.stdout
        wait_for(lambda: "upgrade --all: " in m.log() and re.search(
            r"upgrade --all: .*0 upgraded", m.log()), 10, what="the rollout's end")
        time.sleep(1)   # a database started after the cancel would show by now
        for db in dbs:
            assert not _versions(cluster, db), db
        assert cluster.psql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE "
                            "'%%fleet_cancel_all_sleep%%' AND pid <> pg_backend_pid()") == "0"
        r = m.migctl("--json", "cancel", "--all")
        assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
        assert _json(r)["error"]["data"]["kind"] == "not_running", r.stdout
        r = m.migctl("--db", dbs[0], "cancel", "--all")
        assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    finally:
        assert m.stop() == 0, m.log()


def test_fleet_log_names_the_database_of_each_line(fleet, workdir):
    """With several databases on one server, each log line about one of them starts with
    its name: its connection's failure (a role that may not log in names the role, not
    the section), its connection, the tables a run creates, a cancel.  These said
    'database: ...' (and 'creating the version table ...', 's1: cancel asked by ...')
    whichever database it was.  A cancel of the database with no run names it ('no
    migration is running' read as if the other database's run were over)."""
    cluster, names = fleet
    db = _fresh_dbs(cluster, "lognames", 1)[0]
    cluster.psql("DROP ROLE IF EXISTS fleet_nologin")
    cluster.psql("CREATE ROLE fleet_nologin NOLOGIN")
    d = os.path.join(workdir, "migrations")
    _rev(d, "s1.sql", "s1", "none", "SELECT pg_sleep(5) AS fleet_log_sleep;")
    m = Migd(workdir, cluster.conninfo(db), pg=cluster)
    m.config_path = os.path.join(workdir, "tenants.conf")
    text = fleet_config(cluster, [], d, m.socket, cap=CAP)
    # a schema per tenant in one database: the same server and dbname for both
    text += ("[database acme]\nconninfo = %s user=fleet_nologin\n"
             "version_table = acme_version\nhistory_table = acme_history\n\n"
             "[database globex]\nconninfo = %s\n"
             "version_table = globex_version\nhistory_table = globex_history\n"
             % (cluster.conninfo(db), cluster.conninfo(db)))
    write_atomic(m.config_path, text)
    m.start()
    try:
        for name in ("acme", "globex"):
            m.migctl("--db", name, "status")
        wait_for(lambda: "not permitted to log in" in m.log(), 10, what="acme's failure")
        log = m.log()
        line = [l for l in log.splitlines() if "not permitted to log in" in l][0]
        assert re.search(r" warning: acme: connection to server .*role \"fleet_nologin\" "
                         r"is not permitted to log in$", line), line
        assert re.search(r" info: globex: connected to %s on " % db, log), log[-2000:]
        assert " database: " not in log, log[-3000:]
        p = subprocess.Popen([migdtest.MIGCTL_BIN, "--db", "globex", "upgrade"],
                             env=dict(clean_env(), MIGD_SOCKET=m.socket),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: cluster.psql(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%%fleet_log_sleep%%'"
            " AND pid <> pg_backend_pid()") == "1", 10, what="globex's run")
        # a cancel sent to the other database says which one has no run
        r = m.migctl("--db", "acme", "cancel")
        assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
        assert r.stderr == "migctl: no migration is running on acme\n", r.stderr
        assert p.poll() is None, "globex's run was cancelled by acme's cancel"
        r = m.migctl("--db", "globex", "cancel")
        assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
        p.communicate(timeout=30)
        assert p.returncode == 1, p.returncode
        log = m.log()
        assert re.search(r" info: globex: creating the version table and the history "
                         r"table$", log, re.M), log[-2000:]
        assert re.search(r" info: globex: s1: cancel asked by ", log), log[-2000:]
        assert cluster.psql("SELECT to_regclass('public.acme_version') IS NULL", db=db) == "t"
    finally:
        assert m.stop() == 0, m.log()
        cluster.psql('DROP DATABASE IF EXISTS "%s"' % db)
        cluster.psql("DROP ROLE IF EXISTS fleet_nologin")


def test_fleet_dirty_hint_names_the_database(fleet, workdir):
    """A non-transactional migration that stops part-way on one database of several: the
    failure and the next upgrade's refusal advise 'migctl --db NAME resolve ...', and
    that command, run as advised, works.  They advised 'migctl resolve b1 applied',
    which migd refuses when it serves several databases ('name one with --db')."""
    cluster, names = fleet
    dbs = _fresh_dbs(cluster, "dirtyhint", 2)
    d = os.path.join(workdir, "migrations")
    with open(os.path.join(d, "b1.sql"), "w") as f:
        f.write("-- revision: b1\n-- down_revision: none\n-- transaction: none\n\n"
                "-- migrate:up\nCREATE TABLE fleet_dirty (id int);\nSELECT 1/0;\n")
    m = _fleet_migd(workdir, cluster, dbs)
    _started(m, dbs)
    try:
        r = m.migctl("--db", dbs[1], "upgrade")
        assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
        assert ("now dirty: check the database, then run 'migctl --db %s resolve' to say "
                "whether it is applied" % dbs[1]) in r.stderr, r.stderr
        r = m.migctl("--db", dbs[1], "upgrade")
        assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
        hint = re.search(r"then run '(migctl [^']*)' or 'unapplied'", r.stderr)
        assert hint and hint.group(1) == "migctl --db %s resolve b1 applied" % dbs[1], \
            r.stderr
        # the command as advised, with 'unapplied': the table is dropped first
        cluster.psql("DROP TABLE fleet_dirty", db=dbs[1])
        r = m.migctl(*hint.group(1).replace(" applied", " unapplied").split()[1:])
        assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
        assert _versions(cluster, dbs[1]) == [], dbs[1]
        assert _versions(cluster, dbs[0]) is None, "the other database was touched"
    finally:
        assert m.stop() == 0, m.log()


def test_fleet_cancel_rollout_queued_behind_another_run(fleet, workdir):
    """The rollout's first database is queued behind another client's run there: Ctrl-C
    cancels the queued run at once (it never starts) and the rollout answers."""
    cluster, names = fleet
    dbs = names[57:60]
    d = os.path.join(workdir, "migrations")
    _rev(d, "s1.sql", "s1", "none", "SELECT pg_sleep(8) AS fleet_blocker_sleep;")
    m = _fleet_migd(workdir, cluster, dbs)
    _started(m, dbs)
    env = dict(clean_env(), MIGD_SOCKET=m.socket)
    try:
        blocker = subprocess.Popen([migdtest.MIGCTL_BIN, "--db", dbs[0], "upgrade"], env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: cluster.psql(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%%fleet_blocker_sleep%%'"
            " AND pid <> pg_backend_pid()") == "1", 10, what="the other client's run")
        p = subprocess.Popen([migdtest.MIGCTL_BIN, "upgrade", "--all", "--parallel", "1"],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        wait_for(lambda: "upgrade --all: 3 databases" in m.log(), 10, what="the rollout")
        time.sleep(0.3)
        t0 = time.monotonic()
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
        assert time.monotonic() - t0 < 3, (out, err)
        assert p.returncode == 1, (p.returncode, out, err)
        assert re.search(r"^%s +FAILED: cancelled by .* before it started" % dbs[0], out,
                         re.M), out
        for db in dbs[1:]:
            assert re.search(r"^%s +not started \(cancelled by" % db, out, re.M), out
        assert blocker.poll() is None, "the other client's run was cancelled too"
        r = m.migctl("--db", dbs[0], "cancel")
        assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
        bout, berr = blocker.communicate(timeout=30)
        assert blocker.returncode == 1, (bout, berr)
        for db in dbs:
            assert not _versions(cluster, db), db
    finally:
        assert m.stop() == 0, m.log()


def test_fleet_sigterm_during_rollout_starts_no_more(fleet, workdir):
    """SIGTERM while the canary runs: its run finishes its step, no other database
    starts, the client gets the summary, migd exits 0."""
    cluster, names = fleet
    dbs = names[57:60]
    d = os.path.join(workdir, "migrations")
    _rev(d, "s1.sql", "s1", "none", "SELECT pg_sleep(2) AS fleet_term_sleep;")
    m = _fleet_migd(workdir, cluster, dbs)
    _started(m, dbs)
    p = subprocess.Popen([migdtest.MIGCTL_BIN, "--json", "upgrade", "--all", "--canary",
                          dbs[1]], env=dict(clean_env(), MIGD_SOCKET=m.socket),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: cluster.psql(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%%fleet_term_sleep%%'"
            " AND pid <> pg_backend_pid()") == "1", 10, what="the canary's run")
        m.proc.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=30)
        res = json.loads(out)
        by = {e["name"]: e for e in res["databases"]}
        assert res["databases"][0]["name"] == dbs[1], res
        assert by[dbs[1]]["result"] == "upgraded", by[dbs[1]]   # its step finished
        for db in (dbs[0], dbs[2]):
            assert by[db] == {"name": db, "result": "not_started",
                              "reason": "migd is shutting down"}, by[db]
            assert not _versions(cluster, db), db
        assert _versions(cluster, dbs[1]) == ["s1"]
        assert p.returncode == 0, (p.returncode, out, err)
    finally:
        assert m.stop() == 0, m.log()


# ---- the connection budget: on demand, idle close, the cap (issue 16 points 1, 4, 5) ----


def _fresh(cluster, dbs):
    """The databases as the template made them: another test of the file may have
    migrated (or dropped) some of them."""
    cluster.psql_script("".join('DROP DATABASE IF EXISTS "%s" WITH (FORCE);\n'
                                'CREATE DATABASE "%s" TEMPLATE "%s";\n'
                                % (d, d, FLEET_TEMPLATE) for d in dbs))

FLEET_CAP = 10


def _status(m, db):
    r = m.migctl("--db", db, "status", "--json")
    assert r.returncode in (0, 1), (r.returncode, r.stdout, r.stderr)
    return _json(r)


def test_fleet_sixty_databases_within_the_cap(fleet, workdir):
    """60 databases, pool_size 2, max_connections_total 10 on a server of 25: migd starts
    without connecting; status of each database in turn reads it (an idle connection of
    another database is closed for it); 20 upgrades at once all succeed; migd never holds
    more than 10 connections; idle ones close after idle_close."""
    cluster, names = fleet
    _fresh(cluster, names[29:51])
    _chain(os.path.join(workdir, "migrations"))
    m = Migd(workdir, cluster.conninfo(names[0]), pg=cluster)
    m.config_path = _write_fleet(workdir, cluster, names, "sixty.conf", cap=FLEET_CAP,
                                 pool_size=2, idle_close="1s")
    upgraded = names[30:50]
    with ConnSampler(cluster) as s:
        m.start()
        try:
            # on demand: nothing opened at start
            time.sleep(0.5)
            assert s.sample_once()[1] == 0, s.summary()
            st = migdtest.assert_result(m.rpc("status", {"database": names[59]}), 1)
            # that status opened one connection and read the database
            assert st["database"]["connected"] is True, st["database"]
            assert st["database"]["connection"] == "open", st["database"]
            assert st["database"]["pool"]["on_demand"] is True, st["database"]
            assert st["state"] == "pending" and "stale" not in st, st
            for name in names:
                st = _status(m, name)
                assert st["database"]["name"] == name, st["database"]
                assert st["database"]["database"] == name, st["database"]
                assert "stale" not in st, st
                v = _versions(cluster, name)
                if v is None or v == ["f2"]:
                    want = "pending" if v is None else "up_to_date"
                    assert st["state"] == want, (name, st)
                else:       # another test's revisions: read, whatever they say
                    assert st["state"] not in ("unknown", "no_database"), (name, st)
            # past the cap, another database's idle connection was closed for
            # each status, unless the statuses ran slower than idle_close and
            # idle ones closed by themselves first (seen under ASan and load;
            # the eviction itself: test_fleet_server_restart_no_storm_above_the_cap)
            log = m.log()
            assert ("closing an idle connection for another database" in log or
                    "closing a connection idle for 1000 ms" in log), log[-2000:]
            assert s.max_migd <= FLEET_CAP, s.summary()

            procs = [subprocess.Popen([migdtest.MIGCTL_BIN, "--db", name, "upgrade"],
                                      env=dict(clean_env(), MIGD_SOCKET=m.socket),
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True) for name in upgraded]
            outs = [(p.communicate(timeout=60), p.returncode) for p in procs]
            # idle_close = 1s: the sampler sees them go
            t0 = time.monotonic()
            assert s.sample_once()[1] > 0, s.summary()
            wait_for(lambda: s.sample_once()[1] == 0, 10,
                     what="idle connections closed after idle_close")
            assert time.monotonic() - t0 >= 0.3, "closed before idle_close"
            assert "closing a connection idle for 1000 ms" in m.log()
            for name, ((out, errs), rc) in zip(upgraded, outs):
                assert rc == 0, (name, out, errs)
                assert _versions(cluster, name) == ["f2"], name
            assert _versions(cluster, names[29]) is None
            assert _versions(cluster, names[50]) is None
            assert s.max_migd >= 2, s.summary()     # the sampler saw migd at work
            assert s.max_migd <= FLEET_CAP, s.summary()
            # closed is not down: status opens one again and reads the database
            st = _status(m, upgraded[0])
            assert st["state"] == "up_to_date" and "stale" not in st, st
            assert m.proc.poll() is None
        finally:
            assert m.stop() == 0, m.log()
    assert s.max_migd <= FLEET_CAP, s.summary()
    assert s.max_total <= FLEET_MAX_CONNECTIONS, s.summary()


def test_fleet_no_budget_answers_from_cache_at_once(fleet, workdir):
    """Cap 1: while a run holds the only connection, status of another database answers
    at once from its cache (stale), or "unknown" when it was never read; an upgrade of
    another database waits in the budget's queue and runs once the connection is back."""
    cluster, names = fleet
    _fresh(cluster, names[50:53])
    a, b, c = names[50:53]
    da = os.path.join(workdir, "mig_a")
    os.makedirs(da)
    _rev(da, "slow.sql", "slow", "none", "SELECT pg_sleep(3) AS fleet_budget_slow;")
    m = Migd(workdir, cluster.conninfo(a), pg=cluster)
    _chain(os.path.join(workdir, "migrations"))
    # b's upgrade waits for the budget (its connect_timeout counts from its slot)
    m.config_path = _write_fleet(workdir, cluster, [a, b, c], "one.conf", cap=1,
                                 extra_db={a: {"directory": da},
                                           b: {"connect_timeout": 15}})
    with ConnSampler(cluster) as s:
        m.start()
        try:
            st = _status(m, b)        # read once: cached
            assert st["state"] == "pending" and "stale" not in st, st
            slow = subprocess.Popen([migdtest.MIGCTL_BIN, "--db", a, "upgrade"],
                                    env=dict(clean_env(), MIGD_SOCKET=m.socket),
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True)
            try:
                wait_for(lambda: cluster.psql(
                    "SELECT count(*) FROM pg_stat_activity WHERE query LIKE "
                    "'%%fleet_budget_slow%%' AND pid <> pg_backend_pid()") == "1", 10,
                    what="the slow run on a")
                t0 = time.monotonic()
                st = _status(m, b)
                took = time.monotonic() - t0
                assert st.get("stale") is True, st
                assert st["state"] == "pending", st
                assert st["database"]["connected"] is False, st["database"]
                assert st["database"]["connection"] == "no_budget", st["database"]
                assert took < 1.0, took       # at once, not after the 1.5 s wait
                st = _status(m, c)            # never read: nothing to say
                assert st["state"] == "unknown", st
                assert st["database"]["connection"] == "no_budget", st["database"]
                # an upgrade of b waits for the budget, then runs
                r = m.migctl("--db", b, "upgrade", timeout=30)
                assert r.returncode == 0, (r.stdout, r.stderr)
                assert _versions(cluster, b) == ["f2"]
            finally:
                out, errs = slow.communicate(timeout=30)
            assert slow.returncode == 0, (out, errs)
            assert _versions(cluster, a) == ["slow"]
        finally:
            assert m.stop() == 0, m.log()
    assert s.max_migd <= 1, s.summary()


def _sleeping(cluster, tag):
    return cluster.psql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%%%s%%' "
                        "AND pid <> pg_backend_pid()" % tag) == "1"


def test_fleet_run_waits_for_a_slot_beyond_connect_timeout(fleet, workdir):
    """Cap 1, connect_timeout 2 s: a run on a holds the only slot for 5 s; an upgrade of
    b waits for the slot (waiting for the cap is not a connection failure), says so in
    its progress and in b's status, then runs; a run waiting for the slot is cancelled
    at once, nothing applied; a rollout at --parallel 2 waits its turn for the slot;
    migd never holds more than one connection."""
    cluster, names = fleet
    a, b = names[53:55]
    _fresh(cluster, [a, b])
    da = os.path.join(workdir, "mig_a")
    os.makedirs(da)
    _rev(da, "s1.sql", "s1", "none", "SELECT pg_sleep(5) AS fleet_slot_one;")
    _chain(os.path.join(workdir, "migrations"))
    m = Migd(workdir, cluster.conninfo(a), pg=cluster)
    m.config_path = _write_fleet(workdir, cluster, [a, b], "slot.conf", cap=1,
                                 extra_db={a: {"directory": da}})
    env = dict(clean_env(), MIGD_SOCKET=m.socket)
    run = lambda db: subprocess.Popen([migdtest.MIGCTL_BIN, "--db", db, "upgrade"], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True)
    with ConnSampler(cluster) as s:
        m.start()
        try:
            slow = run(a)
            wait_for(lambda: _sleeping(cluster, "fleet_slot_one"), 10, what="a's slow run")
            t0 = time.monotonic()
            waiter = run(b)
            # b's status shows the wait, at once, from the cache
            st = wait_for(lambda: (lambda st: st if "waiting_for_slot" in st else None)(
                _status(m, b)), 3, what="b waiting for a slot")
            assert st["waiting_for_slot"]["in_use"] == 1, st
            assert st["waiting_for_slot"]["max_connections_total"] == 1, st
            assert st["running"] is True and st["database"]["connection"] == "no_budget", st
            r = m.migctl("--db", b, "status")
            assert "a run waits for a connection slot (1 of 1 in use, " \
                   "max_connections_total)" in r.stdout, r.stdout
            r = m.migctl("status", "--all")
            assert re.search(r"^%s +waiting-slot " % b, r.stdout, re.M), r.stdout
            out, err = waiter.communicate(timeout=30)
            took = time.monotonic() - t0
            assert waiter.returncode == 0, (out, err, m.log())
            assert "waiting for a connection slot: 1 of 1 in use (max_connections_total)" \
                in out, out
            assert took > 2.5, took          # past connect_timeout, waiting for a's run
            assert _versions(cluster, b) == ["f2"]
            sout, serr = slow.communicate(timeout=30)
            assert slow.returncode == 0, (sout, serr)
            assert _versions(cluster, a) == ["s1"]
            assert "waiting for a connection slot: 1 of 1 in use" in m.log()

            # a run waiting for the slot is cancelled at once; nothing of it ran
            _rev(da, "s2.sql", "s2", "s1", "SELECT pg_sleep(5) AS fleet_slot_two;")
            _rev(os.path.join(workdir, "migrations"), "f3.sql", "f3", "f2",
                 "CREATE TABLE public.fleet_t3 (id int);")
            m.migctl("--db", a, "reload")
            m.migctl("--db", b, "reload")
            slow = run(a)
            wait_for(lambda: _sleeping(cluster, "fleet_slot_two"), 10, what="a's second run")
            waiter = run(b)
            wait_for(lambda: "waiting_for_slot" in _status(m, b), 3, what="b waiting again")
            t0 = time.monotonic()
            r = m.migctl("--db", b, "cancel")
            assert r.returncode == 0, (r.stdout, r.stderr)
            out, err = waiter.communicate(timeout=10)
            assert time.monotonic() - t0 < 2, (out, err)
            assert waiter.returncode == 1, (waiter.returncode, out, err)
            assert "cancelled by" in err and "nothing was applied" in err, err
            assert _versions(cluster, b) == ["f2"]
            assert cluster.psql("SELECT to_regclass('public.fleet_t3') IS NULL", db=b) == "t"
            assert slow.poll() is None, "a's run was cancelled too"
            sout, serr = slow.communicate(timeout=30)
            assert slow.returncode == 0, (sout, serr)
            assert _versions(cluster, a) == ["s2"]
            st = _status(m, b)
            assert "waiting_for_slot" not in st and st["running"] is False, st

            # a rollout wider than the cap: the second database waits, then runs
            _rev(da, "s3.sql", "s3", "s2", "SELECT pg_sleep(3);")
            _rev(os.path.join(workdir, "migrations"), "f4.sql", "f4", "f3",
                 "SELECT pg_sleep(3);")
            m.migctl("--db", a, "reload")
            m.migctl("--db", b, "reload")
            r = m.migctl("upgrade", "--all", "--parallel", "2", timeout=60)
            assert r.returncode == 0, (r.stdout, r.stderr)
            assert re.search(r"^(%s|%s): waiting for a connection slot: 1 of 1 in use "
                             r"\(max_connections_total\)$" % (a, b), r.stdout, re.M), r.stdout
            assert _versions(cluster, a) == ["s3"] and _versions(cluster, b) == ["f4"]
        finally:
            assert m.stop() == 0, m.log()
    assert s.max_migd <= 1, s.summary()


def test_fleet_sigterm_answers_a_run_waiting_for_a_slot(fleet, workdir):
    """Cap 1: SIGTERM while b's run waits for the slot a's run holds: b is answered
    shutting_down at once, nothing ran on b; a's run finishes its migration; migd
    exits 0."""
    cluster, names = fleet
    a, b = names[55:57]
    _fresh(cluster, [a, b])
    da = os.path.join(workdir, "mig_a")
    os.makedirs(da)
    _rev(da, "s1.sql", "s1", "none", "SELECT pg_sleep(4) AS fleet_slot_term;")
    _chain(os.path.join(workdir, "migrations"))
    m = Migd(workdir, cluster.conninfo(a), pg=cluster)
    m.config_path = _write_fleet(workdir, cluster, [a, b], "term.conf", cap=1,
                                 extra_db={a: {"directory": da}})
    env = dict(clean_env(), MIGD_SOCKET=m.socket)
    m.start()
    try:
        slow = subprocess.Popen([migdtest.MIGCTL_BIN, "--db", a, "upgrade"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: _sleeping(cluster, "fleet_slot_term"), 10, what="a's slow run")
        waiter = subprocess.Popen([migdtest.MIGCTL_BIN, "--db", b, "upgrade"], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: "waiting_for_slot" in _status(m, b), 3, what="b waiting")
        t0 = time.monotonic()
        m.proc.send_signal(signal.SIGTERM)
        out, err = waiter.communicate(timeout=10)
        assert time.monotonic() - t0 < 2, (out, err)
        assert waiter.returncode == 1, (waiter.returncode, out, err)
        assert "shutting down" in err and "nothing ran" in err, err
        sout, serr = slow.communicate(timeout=30)
        assert slow.returncode == 0, (sout, serr)
        assert _versions(cluster, a) == ["s1"]
        assert _versions(cluster, b) is None
        # it exits by itself after the run (a second SIGTERM would mean "now")
        assert m.proc.wait(timeout=10) == 0, m.log()
    finally:
        assert m.stop() == 0, m.log()


def test_fleet_server_restart_no_storm_above_the_cap(fleet, workdir):
    """idle_close = 0 with a cap: connections stay open until another database needs
    the slot. A server restart while they are idle loses them; the pools do not
    reconnect by themselves (no storm), and the next requests open connections within
    the cap again."""
    cluster, names = fleet
    _fresh(cluster, names[40:56])
    dbs = names[40:56]
    _chain(os.path.join(workdir, "migrations"))
    m = Migd(workdir, cluster.conninfo(dbs[0]), pg=cluster)
    m.config_path = _write_fleet(workdir, cluster, dbs, "restart.conf", cap=FLEET_CAP,
                                 pool_size=2, idle_close="0")
    m.start()
    try:
        with ConnSampler(cluster) as s:
            for name in dbs:
                assert "stale" not in _status(m, name)
            wait_for(lambda: s.sample_once()[1] == FLEET_CAP, 5,
                     what="the cap's connections held idle")
        assert s.max_migd == FLEET_CAP, s.summary()
        # 16 databases, a cap of 10, nothing closing by itself: the statuses
        # past the cap closed other databases' idle connections
        assert "closing an idle connection for another database" in m.log()
        cluster.stop()
        cluster.start()
        with ConnSampler(cluster) as s:
            time.sleep(2.5)       # more than the pools' backoff
            assert s.max_migd == 0, s.summary()
            for name in dbs:
                wait_for(lambda: "stale" not in _status(m, name), 10,
                         what="%s read after the restart" % name)
            assert s.max_migd <= FLEET_CAP, s.summary()
        assert m.proc.poll() is None
    finally:
        assert m.stop() == 0, m.log()


def test_fleet_on_demand_database_created_later(fleet, workdir):
    """On demand nothing retries in the background: a database that does not exist
    yet fails a run at once (permanent), status says down at once; once it is created
    the next run gets a fresh attempt and succeeds."""
    cluster, names = fleet
    _fresh(cluster, names[56:57])
    late = "fleet_late_created"
    cluster.psql('DROP DATABASE IF EXISTS "%s"' % late)
    _chain(os.path.join(workdir, "migrations"))
    m = Migd(workdir, cluster.conninfo(names[0]), pg=cluster)
    m.config_path = _write_fleet(workdir, cluster, [names[56], late], "late.conf", cap=2)
    m.start()
    try:
        t0 = time.monotonic()
        r = m.migctl("--db", late, "upgrade")
        assert r.returncode == 1, (r.stdout, r.stderr)
        assert "does not exist" in r.stderr, r.stderr
        assert time.monotonic() - t0 < 2.0
        st = _status(m, late)
        assert st["state"] == "no_database", st
        assert st["database"]["connection"] == "down", st["database"]
        assert "does not exist" in st["database"]["last_error"], st["database"]
        cluster.psql('CREATE DATABASE "%s"' % late)
        r = m.migctl("--db", late, "upgrade")
        assert r.returncode == 0, (r.stdout, r.stderr)
        assert _versions(cluster, late) == ["f2"]
        st = _status(m, late)
        assert st["state"] == "up_to_date" and st["database"]["connection"] == "open", st
    finally:
        assert m.stop() == 0, m.log()
        cluster.psql('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % late)


def test_fleet_one_database_idle_close(fleet, workdir):
    """One database with idle_close (no cap) is honoured, without a warning: nothing
    opens at start, a status opens a connection, it closes after idle_close (the
    sampler sees it go, status says "closed"), and the next status reads live again."""
    cluster, names = fleet
    _fresh(cluster, names[57:58])
    db = names[57]
    _chain(os.path.join(workdir, "migrations"))
    m = Migd(workdir, cluster.conninfo(db), pg=cluster)
    m.config_path = _write_fleet(workdir, cluster, [db], "idle.conf", idle_close="1s")
    with ConnSampler(cluster) as s:
        m.start()
        try:
            time.sleep(0.5)
            assert s.sample_once()[1] == 0, s.summary()
            st = migdtest.assert_result(m.rpc("status", {"database": db}), 1)
            assert st["database"]["connection"] == "open", st["database"]
            assert st["database"]["pool"]["on_demand"] is True
            assert st["state"] == "pending", st
            assert s.sample_once()[1] == 1, s.summary()
            wait_for(lambda: s.sample_once()[1] == 0, 5, what="closed after idle_close")
            st = _status(m, db)     # closed is not down: opens one again, live
            assert st["state"] == "pending" and "stale" not in st, st
            assert "idle_close is not honoured" not in m.log()
        finally:
            assert m.stop() == 0, m.log()
    assert s.max_migd == 1, s.summary()


def test_fleet_status_all_answers_from_kept_state(fleet, workdir):
    """status --all does not open a connection per database under the cap: a database
    with no connection up answers from the state its last status or run read (stale,
    with checked_at and age_ms); one never read is read now; --fresh reads every one;
    check --all, a gate, always reads; a run leaves its state kept."""
    cluster, names = fleet
    dbs = names[40:52]
    _fresh(cluster, dbs)
    _chain(os.path.join(workdir, "migrations"))
    m = Migd(workdir, cluster.conninfo(dbs[0]), pg=cluster)
    m.config_path = _write_fleet(workdir, cluster, dbs, "kept.conf", cap=3, pool_size=1,
                                 idle_close="1s")
    with ConnSampler(cluster) as s:
        m.start()
        try:
            def idle_closed():
                wait_for(lambda: s.sample_once()[1] == 0, 15,
                         what="idle connections closed after idle_close")
            # never read since start: read now, whatever it costs
            st = _json(m.migctl("--json", "status", "--all"))
            assert [d["state"] for d in st["databases"]] == ["pending"] * 12, st
            assert not any(d.get("stale") for d in st["databases"]), st
            r = m.migctl("upgrade", "--all", "--parallel", "2", timeout=120)
            assert r.returncode == 0, (r.stdout, r.stderr)
            idle_closed()
            # behind migd's back (another host's downgrade): the kept state still says f2
            cluster.psql("DROP TABLE public.fleet_t2; "
                         "UPDATE public.alembic_version SET version_num = 'f1'", db=dbs[0])
            st = _json(m.migctl("--json", "status", "--all"))
            assert [d["name"] for d in st["databases"]] == dbs
            for d in st["databases"]:
                assert d["state"] == "up_to_date", d
                assert d["current"] == ["f2"] or [c.get("revision", c) for c in
                                                  d["current"]] == ["f2"], d
                assert d["stale"] is True, d
                assert d["database"]["connected"] is False, d["database"]
                assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", d["checked_at"]), d
                assert 0 <= d["age_ms"] < 120000, d
                assert d["last_run"]["result"] == "ok", d
            assert s.sample_once()[1] == 0, "status --all opened connections"
            r = m.migctl("status", "--all")
            assert r.returncode == 0, (r.stdout, r.stderr)
            assert "12 of 12 from the state kept from their last status or run" in \
                r.stdout, r.stdout
            assert "--fresh reads them now" in r.stdout, r.stdout
            # --fresh reads every one: dbs[0] is at f1 now
            st = _json(m.migctl("--json", "status", "--all", "--fresh"))
            assert [d["state"] for d in st["databases"]] == \
                ["pending"] + ["up_to_date"] * 11, st
            assert not any(d.get("stale") for d in st["databases"]), st
            assert s.max_migd <= 3, s.summary()
            idle_closed()
            # what --fresh read is kept
            st = _json(m.migctl("--json", "status", "--all"))
            assert st["databases"][0]["state"] == "pending", st["databases"][0]
            assert st["databases"][0]["stale"] is True, st["databases"][0]
            # check --all reads every database, kept state or not
            cluster.psql("DROP TABLE public.fleet_t2; "
                         "UPDATE public.alembic_version SET version_num = 'f1'", db=dbs[5])
            r = m.migctl("check", "--all")
            assert r.returncode == 4, (r.returncode, r.stdout, r.stderr)
            assert "not up to date: %s %s" % (dbs[0], dbs[5]) in r.stdout, r.stdout
            # a run leaves its state kept: dbs[0] upgraded, then answered from it
            r = m.migctl("--db", dbs[0], "upgrade")
            assert r.returncode == 0, (r.stdout, r.stderr)
            idle_closed()
            st = _json(m.migctl("--json", "status", "--all"))
            assert st["databases"][0]["state"] == "up_to_date", st["databases"][0]
            assert st["databases"][0]["stale"] is True, st["databases"][0]
            assert st["databases"][5]["state"] == "pending", st["databases"][5]
            # bad inputs: --fresh alone, fresh on verify, fresh not a boolean
            r = m.migctl("status", "--fresh")
            assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
            assert "--fresh goes with --all" in r.stderr, r.stderr
            r = m.migctl("verify", "--fresh")
            assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
            e = m.rpc("verify", {"all": True, "fresh": True})
            assert e["error"]["data"]["kind"] == "invalid_params", e
            e = m.rpc("status", {"all": True, "fresh": "yes"})
            assert e["error"]["data"]["kind"] == "invalid_params", e
            assert _versions(cluster, dbs[1]) == ["f2"]
            # a reload that points a database at another version table: its kept
            # state is of the old table, so it is read again
            idle_closed()
            _write_fleet(workdir, cluster, dbs, "kept.conf", cap=3, pool_size=1,
                         idle_close="1s", extra_db={dbs[2]: {"version_table": "kept_v2"}})
            migdtest.assert_result(m.rpc("reload", {}), 1)
            st = _json(m.migctl("--json", "status", "--all"))
            d2 = st["databases"][2]
            # read again: kept_v2 does not exist, and the history beside it
            # (public.migd_history) says f1 and f2 were applied, so nothing can
            # be planned from base (version_table_missing)
            assert d2["state"] == "inconsistent" and not d2.get("stale"), d2
            assert "applied revision" in d2["inconsistent"], d2
            assert st["databases"][3]["stale"] is True, st["databases"][3]
        finally:
            assert m.stop() == 0, m.log()
    assert s.max_migd <= 3, s.summary()
