"""The fleet's test bed against what this build does (issue 16 point 5): 60 databases on
a PostgreSQL with max_connections 25, one [database NAME] section each. migd -n reads
and prints them all; migd refuses to start with them (several databases per daemon are
not built yet), before its socket and before any connection; a reload to such a file
keeps the running settings. The sampler is shown to see migd's connections, so its
zero means something."""

import os
import re
import shutil
import signal
import subprocess
import time

import pytest

import migdtest
from fleet_helpers import FLEET_MAX_CONNECTIONS, ConnSampler, FleetCluster, fleet_config
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
    # read and printed, but this build would not start with it: -n says so, exit 1
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert "# %d databases: %s" % (N_DATABASES, names[0]) in p.stdout, p.stdout[:500]
    sections = re.findall(r"^\[database (\S+)\]$", p.stdout, re.M)
    assert sections == names, sections
    for name in (names[0], names[-1]):
        block = p.stdout.split("[database %s]\n" % name, 1)[1]
        assert block.startswith("conninfo = user=postgres dbname=%s host=%s port=%d\n"
                                % (name, cluster.sockdir, cluster.port)), block[:300]
        assert "\npool_size = 1\n" in block.split("\n\n", 1)[0]
    assert "max_connections_total = %d\nidle_close = 60s\n" % CAP in p.stdout
    assert ("migd: %s defines %d databases (%s, %s, ...): this build of migd serves one "
            "database per daemon, and running several from one daemon is not built yet"
            % (path, N_DATABASES, names[0], names[1])) in p.stderr, p.stderr
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


def test_fleet_start_refused_without_socket_or_connections(fleet, workdir):
    cluster, names = fleet
    path = _write_fleet(workdir, cluster, names, cap=CAP)
    sock = os.path.join(workdir, "migd.sock")
    with ConnSampler(cluster) as s:
        # Both measures see migd: a daemon with one of the databases runs today.
        before_one = _sessions(cluster)
        m = Migd(workdir, cluster.conninfo(names[0]), pg=cluster)
        m.config_path = _write_fleet(workdir, cluster, names[:1], "one.conf", cap=CAP)
        m.start()
        try:
            st = m.wait_connected(full=True)
            assert st["database"]["pool"]["size"] == 1
            wait_for(lambda: s.max_migd >= 1, 5, what="the sampler sees migd")
        finally:
            assert m.stop() == 0, m.log()
        wait_for(lambda: s.sample_once()[1] == 0, 10, what="migd's connection closed")
        before = wait_for(lambda: _sessions(cluster) > before_one and _sessions(cluster),
                          10, what="pg_stat_database counts migd's session")
        s.max_migd = 0

        p = subprocess.run([MIGD_BIN, "-c", path], capture_output=True, text=True,
                           timeout=15, env=clean_env(), stdin=subprocess.DEVNULL)
        s.sample_once()
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert ("migd: %s defines %d databases (%s, %s, ...): this build of migd serves one "
            "database per daemon, and running several from one daemon is not built yet; "
            "run one migd per database (one configuration file each) until it is\n"
            % (path, N_DATABASES, names[0], names[1])) in p.stderr, p.stderr
    assert not os.path.exists(sock), "the refused daemon left its socket"
    assert s.max_migd == 0, s.summary()
    assert s.max_total <= FLEET_MAX_CONNECTIONS, s.summary()
    # a session ended within the time a stats flush takes would show by now
    time.sleep(1.5)
    assert _sessions(cluster) == before, "the refused daemon connected to the fleet"


def test_fleet_reload_keeps_one_database(fleet, workdir):
    cluster, names = fleet
    path = _write_fleet(workdir, cluster, names[:1], cap=CAP)
    m = Migd(workdir, cluster.conninfo(names[0]), pg=cluster)
    m.config_path = path
    m.start()
    try:
        m.wait_connected()
        _write_fleet(workdir, cluster, names, cap=CAP)
        r = m.migctl("reload")
        assert r.returncode != 0, (r.stdout, r.stderr)
        assert "not built yet" in r.stdout + r.stderr, (r.stdout, r.stderr)
        m.signal(signal.SIGHUP)
        wait_for(lambda: m.log().count("reload failed: keeping the previous settings") >= 2,
                 10, what="SIGHUP refused too")
        st = m.status()
        assert st["database"]["connected"] is True
        assert st["database"]["database"] == names[0], st["database"]
        assert m.proc.poll() is None
    finally:
        assert m.stop() == 0, m.log()
