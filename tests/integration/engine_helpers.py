"""Helpers for the migration-engine integration tests (test_engine*.py).

They drive a real migd (JSON-RPC over its socket, or migctl) against a real
PostgreSQL database and look at the database itself with psql.
"""

import json
import os
import shutil
import subprocess
import textwrap

import migdtest

REPO = migdtest.REPO
WORKSHOP = os.path.join(REPO, "examples", "workshop", "migrations")

# Error codes of the engine (see the contract in DESIGN.md / issue 3).
E_DB_UNAVAILABLE = -32004
E_BUSY = -32005
E_MIGRATIONS = -32010
E_SQL = -32011
E_STATE = -32012

# migctl exit codes
X_OK, X_FAILED, X_USAGE, X_UNREACHABLE, X_CHECK, X_BUSY, X_FORBIDDEN = range(7)


# ---- migration files --------------------------------------------------------

def copy_workshop(m):
    """Copy the car-workshop example into the daemon's migrations directory."""
    for entry in os.listdir(WORKSHOP):
        src = os.path.join(WORKSHOP, entry)
        dst = os.path.join(m.migrations_dir, entry)
        if os.path.isdir(src):
            shutil.copytree(src, dst)
        else:
            shutil.copy(src, dst)


def rev_text(revision, down="none", up="", down_sql=None, message=None,
             transaction=None, depends_on=None, header_revision=True,
             branch_labels=None):
    """The text of one revision file."""
    lines = []
    if header_revision:
        lines.append("-- revision: %s" % revision)
    lines.append("-- down_revision: %s" % down)
    if message is not None:
        lines.append("-- message: %s" % message)
    if transaction is not None:
        lines.append("-- transaction: %s" % transaction)
    if depends_on is not None:
        lines.append("-- depends_on: %s" % depends_on)
    if branch_labels is not None:
        lines.append("-- branch_labels: %s" % branch_labels)
    lines.append("")
    lines.append("-- migrate:up")
    lines.extend(textwrap.dedent(up).strip("\n").splitlines())
    if down_sql is not None:
        lines.append("")
        lines.append("-- migrate:down")
        lines.extend(textwrap.dedent(down_sql).strip("\n").splitlines())
    return "\n".join(lines) + "\n"


def write_file(m, name, text):
    """Write a file (name may contain a subdirectory) in the migrations dir."""
    path = os.path.join(m.migrations_dir, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", newline="") as f:
        f.write(text)
    return path


def write_rev(m, name, revision, down="none", up="", **kw):
    """Write one revision file; returns its path."""
    return write_file(m, name, rev_text(revision, down, up, **kw))


def line_of(path, needle, nth=1):
    """1-based line number of the nth line containing needle."""
    with open(path) as f:
        seen = 0
        for i, line in enumerate(f, 1):
            if needle in line:
                seen += 1
                if seen == nth:
                    return i
    raise AssertionError("%r not found in %s" % (needle, path))


def chain(m, n, prefix="r", table_prefix="t"):
    """n linear revisions r1..rn, each creating table public.t<i> (with down)."""
    for i in range(1, n + 1):
        write_rev(m, "%s%d_step.sql" % (prefix, i), "%s%d" % (prefix, i),
                  down="none" if i == 1 else "%s%d" % (prefix, i - 1),
                  up="CREATE TABLE public.%s%d (id int);" % (table_prefix, i),
                  down_sql="DROP TABLE public.%s%d;" % (table_prefix, i),
                  message="step %d" % i)


# ---- JSON-RPC ---------------------------------------------------------------

def call(m, method, params=None, timeout=30.0, id=1):
    """One request; returns (notifications, reply). Progress notifications that
    arrive before the reply are collected."""
    notes = []
    with migdtest.Conn(m.socket, timeout) as c:
        c.send(migdtest.request(method, params, id))
        while True:
            msg = c.recv(timeout)
            if "id" in msg:
                return notes, msg
            notes.append(msg)


def ok(m, method, params=None, timeout=30.0):
    """The result of a request that must succeed."""
    _, r = call(m, method, params, timeout)
    assert "error" not in r, (method, params, r)
    return r["result"]


def err(m, method, params=None, code=None, kind=None, timeout=30.0):
    """The error object of a request that must fail (with code/kind if given)."""
    _, r = call(m, method, params, timeout)
    assert "error" in r, ("expected an error", method, params, r)
    e = r["error"]
    if code is not None:
        assert e.get("code") == code, ("wrong code", method, params, r)
    if kind is not None:
        assert (e.get("data") or {}).get("kind") == kind, \
            ("wrong data.kind", method, params, r)
    assert isinstance(e.get("message"), str) and e["message"], r
    return e


def step_revs(result):
    return [s["revision"] for s in result["steps"]]


def migctl_json(m, *args, timeout=30):
    """Run migctl --json ARGS; returns (rc, parsed stdout or None, proc)."""
    p = m.migctl("--json", *args, timeout=timeout)
    try:
        data = json.loads(p.stdout) if p.stdout.strip() else None
    except ValueError:
        data = None
    return p.returncode, data, p


# ---- the database -----------------------------------------------------------

def q(m, sql):
    """psql output (unaligned, tuples only) in the daemon's database."""
    return m.pg.psql(sql, m.db)


def rows(m, sql):
    out = q(m, sql)
    return [line.split("|") for line in out.splitlines()] if out else []


def versions(m, table="public.alembic_version"):
    """Sorted version_num values, or None when the table does not exist."""
    if q(m, "SELECT to_regclass('%s') IS NOT NULL" % table) != "t":
        return None
    out = q(m, "SELECT version_num FROM %s ORDER BY 1" % table)
    return out.splitlines() if out else []


def rel_exists(m, name):
    return q(m, "SELECT to_regclass('%s') IS NOT NULL" % name) == "t"


def schema_exists(m, name):
    return q(m, "SELECT count(*) FROM pg_namespace WHERE nspname = '%s'"
             % name.replace("'", "''")) == "1"


def history(m, table="public.migd_history", where="true"):
    """History rows (dicts) oldest first, or [] when the table is missing."""
    if q(m, "SELECT to_regclass('%s') IS NOT NULL" % table) != "t":
        return []
    out = q(m, "SELECT row_to_json(h) FROM %s h WHERE %s ORDER BY id" % (table, where))
    return [json.loads(line) for line in out.splitlines()] if out else []


def applied_up_count(m, revision, table="public.migd_history"):
    return int(q(m, "SELECT count(*) FROM %s WHERE revision = '%s' AND direction = 'up' "
                 "AND success" % (table, revision)))


# ---- background sessions ----------------------------------------------------

def psql_background(m, sql, appname):
    """Start psql running sql in the background (e.g. holding a lock), as
    application_name appname (see terminate_app)."""
    pg = m.pg
    return subprocess.Popen([pg.psql_bin, "-X", "-q", "-h", pg.sockdir, "-p", str(pg.port),
                             "-U", "postgres", "-d", m.db, "-c", sql],
                            env=migdtest.clean_env({"PGAPPNAME": appname}),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL)


def terminate_app(m, appname):
    q(m, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
         "WHERE application_name = '%s'" % appname)


def wait_activity(m, needle, timeout=10.0):
    """Wait until a backend runs a query containing needle."""
    migdtest.wait_for(
        lambda: q(m, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%%%s%%' "
                     "AND pid <> pg_backend_pid() AND state = 'active'" % needle) != "0",
        timeout, interval=0.05, what="a backend running %r" % needle)


class Bg:
    """Run f() in a thread; .join() returns its value or raises its exception."""

    def __init__(self, f):
        import threading
        self.value = None
        self.exc = None

        def run():
            try:
                self.value = f()
            except BaseException as e:   # handed to join()
                self.exc = e
        self.t = threading.Thread(target=run, daemon=True)
        self.t.start()

    def join(self, timeout=60):
        self.t.join(timeout)
        assert not self.t.is_alive(), "background call did not finish"
        if self.exc is not None:
            raise self.exc
        return self.value


def connected(m):
    """Wait until the daemon's whole pool is connected (a request sent before the
    first connection is made gets db_unavailable 'connecting'); returns m."""
    m.wait_connected(True, full=True)
    return m
