"""Fixtures for the migd integration tests.

pg        session-wide throwaway PostgreSQL cluster (Unix socket only, in a temp dir)
own_pg    a private cluster for one test (for tests that stop and start PostgreSQL)
db        a fresh database in the session cluster for this test
migd      a running migd on db with the default generated config
migd_factory(pg=None, db=None, overrides=None, args=("-v",), start=True, ...)
          more daemons, or daemons with other settings

Binaries: $MIGD_BIN and $MIGCTL_BIN, default <repo>/migd and <repo>/migctl.
$PG_BINDIR overrides where initdb/pg_ctl/postgres are looked for.
$MIGD_TEST_KEEP=1 keeps each migd's directory (config, log) after the test.
On any failure, the logs of every migd of the test and of PostgreSQL are shown.
"""

import os
import re
import shutil

import pytest

import migdtest
from migdtest import MIGD_BIN, MIGCTL_BIN, Migd, PgCluster


def pytest_sessionstart(session):
    missing = [p for p in (MIGD_BIN, MIGCTL_BIN) if not os.access(p, os.X_OK)]
    if missing:
        pytest.exit("migd integration tests: binary not found or not executable: %s\n"
                    "build first (autoreconf -fi && ./configure && make) or set "
                    "MIGD_BIN / MIGCTL_BIN" % ", ".join(missing), returncode=1)
    if migdtest.pg_bindir() is None:
        pytest.exit("migd integration tests: PostgreSQL server binaries (initdb, pg_ctl, "
                    "postgres) not found; install postgresql-15 or set PG_BINDIR",
                    returncode=1)


def _logs(item):
    if not hasattr(item, "_migd_logs"):
        item._migd_logs = []
    return item._migd_logs


def _tail(text, lines=200):
    parts = text.splitlines()
    if len(parts) > lines:
        parts = ["... (%d earlier lines)" % (len(parts) - lines)] + parts[-lines:]
    return "\n".join(parts)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
    if not rep.failed:
        return
    for title, getter in getattr(item, "_migd_logs", []):
        try:
            text = getter()
        except Exception as e:   # a log we cannot read must not hide the failure
            text = "(cannot read: %s)" % e
        rep.sections.append(("%s [%s]" % (title, rep.when), _tail(text)))


def _new_cluster():
    c = PgCluster(migdtest.pg_bindir(), migdtest.pg_runas_user())
    try:
        c.start()
    except Exception:
        c.destroy()
        raise
    return c


@pytest.fixture(scope="session")
def pg_session():
    c = _new_cluster()
    yield c
    c.destroy()


@pytest.fixture
def pg(request, pg_session):
    """The shared cluster; its log is shown when the test fails."""
    if not pg_session.running():
        pg_session.start()   # a test that stopped it must not break the next ones
    _logs(request.node).append(("postgresql log %s" % pg_session.log_path,
                                lambda: pg_session.log_tail(80)))
    return pg_session


@pytest.fixture
def own_pg(request):
    """A private cluster, destroyed after the test."""
    c = _new_cluster()
    _logs(request.node).append(("private postgresql log %s" % c.log_path,
                                lambda: c.log_tail(80)))
    yield c
    c.destroy()


_counter = [0]


def _dbname(node):
    _counter[0] += 1
    base = re.sub(r"[^a-z0-9_]", "_", node.name.lower())[:40]
    return "t%d_%d_%s" % (os.getpid(), _counter[0], base)


@pytest.fixture
def make_db(request):
    """make_db(cluster) -> name of a fresh database there, dropped afterwards."""
    made = []

    def make(cluster):
        name = cluster.create_db(_dbname(request.node))
        made.append((cluster, name))
        return name
    yield make
    for cluster, name in made:
        if cluster.running():
            cluster.drop_db(name)


@pytest.fixture
def db(pg, make_db):
    return make_db(pg)


@pytest.fixture
def migd_factory(request, make_db):
    """Start migd processes; all are stopped (SIGTERM) and cleaned up after the test."""
    daemons = []
    dirs = []

    def factory(pg=None, db=None, overrides=None, args=("-v",), start=True,
                conninfo=None, wait=True):
        if pg is None and conninfo is None:
            pg = request.getfixturevalue("pg")
        if db is None and pg is not None:
            db = make_db(pg)
        workdir = migdtest.short_tempdir("migd-")
        dirs.append(workdir)
        if conninfo is None:
            conninfo = pg.conninfo(db)
        m = Migd(workdir, conninfo, overrides=overrides, args=args, db=db, pg=pg)
        m.write_config()
        _logs(request.node).append(("migd log %s" % m.log_path, m.log))
        daemons.append(m)
        if start:
            m.start(wait=wait)
        return m

    yield factory
    for m in daemons:
        m.stop()
    # the logs are already in the failure report; MIGD_TEST_KEEP=1 keeps the files too
    if not os.environ.get("MIGD_TEST_KEEP"):
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def migd(migd_factory):
    """A running migd on a fresh database of the shared cluster."""
    return migd_factory()
