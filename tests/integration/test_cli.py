"""migctl for people and deploy hooks (issue 4, items 2-4 and 9): every exit
code through the real migctl, --json output of every command parsed by a real
JSON parser, human output and colour, `wait`, `upgrade --wait-daemon`, and the
offline `new`/`merge` producing files the engine accepts.
"""

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time

import pytest

import migdtest
from migdtest import MIGCTL_BIN, clean_env
from cli_helpers import (X_OK, X_FAILED, X_USAGE, X_UNREACHABLE, X_CHECK, X_BUSY,
                         ANSI_RE, chain, finish, history, jerr, jok, jrun, migctl,
                         migctl_at, migctl_local, no_ansi, popen_migctl, q,
                         versions, wait_activity, write_rev)


@pytest.fixture
def tmpdir_short():
    d = migdtest.short_tempdir("migdcli-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def connected(m):
    m.wait_connected(True, timeout=10)
    return m


# ---- exit 0 -----------------------------------------------------------------

def test_exit_0_status_and_upgrade(migd):
    connected(migd)
    chain(migd.migrations_dir, 3)
    p = migctl(migd, "status")
    assert p.returncode == X_OK, (p.stdout, p.stderr)
    p = migctl(migd, "upgrade")
    assert p.returncode == X_OK, (p.stdout, p.stderr)
    assert versions(migd) == ["r3"]
    # nothing left to do is success too
    p = migctl(migd, "upgrade")
    assert p.returncode == X_OK, (p.stdout, p.stderr)
    assert "nothing to do" in p.stdout


# ---- exit 1 -----------------------------------------------------------------

def test_exit_1_failing_migration(migd):
    connected(migd)
    write_rev(migd.migrations_dir, "r1_ok.sql", "r1", up="CREATE TABLE public.ok1 (id int);")
    write_rev(migd.migrations_dir, "r2_bad.sql", "r2", down="r1",
              up="CREATE TABLE public.bad2 (id int);\nSELECT 1/0;")
    p = migctl(migd, "upgrade")
    assert p.returncode == X_FAILED, (p.returncode, p.stdout, p.stderr)
    assert "division by zero" in p.stderr, p.stderr
    assert re.search(r"^\[1/2\] up\s+r1\b.*done", p.stdout, re.M), p.stdout
    assert re.search(r"\[2/2\] up\s+r2\b.*FAILED", p.stdout), p.stdout
    assert versions(migd) == ["r1"]
    e = jerr(migd, "upgrade", rc=X_FAILED, kind="sql_error")
    assert e["data"]["sqlstate"] == "22012", e
    assert e["data"]["revision"] == "r2", e
    assert versions(migd) == ["r1"]
    assert q(migd, "SELECT to_regclass('public.bad2') IS NULL") == "t"


def test_exit_1_invalid_migration_files(migd):
    connected(migd)
    write_rev(migd.migrations_dir, "r1_bad.sql", "r1", up="CREATE TABLE (;")
    p = migctl(migd, "upgrade")
    assert p.returncode == X_FAILED, (p.returncode, p.stdout, p.stderr)
    assert "r1_bad.sql:" in p.stderr, p.stderr
    e = jerr(migd, "upgrade", rc=X_FAILED, kind="invalid_migrations")
    assert any("r1_bad.sql:" in s for s in e["data"]["errors"]), e
    p = migctl(migd, "plan")
    assert p.returncode == X_FAILED, (p.returncode, p.stdout, p.stderr)
    # status reports it (exit 0: it only shows), check does not pass
    s = jok(migd, "status")
    assert s["state"] == "invalid_migrations", s
    assert any("r1_bad.sql:" in x for x in s["migrations"]["errors"]), s
    p = migctl(migd, "check")
    assert p.returncode == X_CHECK, (p.returncode, p.stdout, p.stderr)
    assert versions(migd) in (None, [])     # nothing ran


def test_exit_1_resolve_not_dirty(migd):
    connected(migd)
    chain(migd.migrations_dir, 2)
    assert migctl(migd, "upgrade").returncode == X_OK
    p = migctl(migd, "resolve", "r1", "applied")
    assert p.returncode == X_FAILED, (p.returncode, p.stdout, p.stderr)
    assert p.stderr.strip()
    jerr(migd, "resolve", "r2", "unapplied", rc=X_FAILED, kind="not_dirty")
    assert versions(migd) == ["r2"]


# ---- exit 2 -----------------------------------------------------------------

USAGE_CASES = [
    ["frobnicate"],
    ["status", "--frobnicate"],
    ["--frobnicate", "status"],
    ["downgrade"],
    ["history", "--limit", "0"],
    ["history", "--limit", "ten"],
    ["history", "--limit"],
    ["status", "--dry-run"],
    ["plan", "--dry-run"],
    ["status", "extra"],
    ["upgrade", "head", "head"],
    ["stamp"],
    ["resolve", "r1"],
    ["resolve", "r1", "maybe"],
    ["wait", "--for", "later"],
    ["wait", "--timeout", "soon"],
    ["wait", "--timeout", "-1"],
    ["upgrade", "--wait-daemon=soon"],
    ["upgrade", "--wait-daemon"],
    ["upgrade", "--wait-daemon", "-5"],
    ["downgrade", "-1", "--wait-daemon=1"],
    ["history", "--limit", "100001"],
    ["history", "--limit=0"],
    ["status", "--timeout", "1"],
    ["status", "-m", "x"],
    ["new"],
    ["new", "-m", ""],
    ["merge"],
    ["new", "-m", "x", "extra"],
    ["merge", "-m", "x", "--head", "r1"],
    [],
]


def test_exit_2_usage_with_daemon(migd, tmpdir_short):
    """Usage errors exit 2 with a message on stderr, and never reach migd."""
    connected(migd)
    chain(migd.migrations_dir, 1)
    bad = []
    for args in USAGE_CASES:
        p = migctl(migd, *args, env={"MIGD_MIGRATIONS": tmpdir_short})
        if p.returncode != X_USAGE or not p.stderr.strip():
            bad.append((args, p.returncode, p.stdout[-300:], p.stderr[-300:]))
    assert not bad, bad
    assert versions(migd) is None, "a usage error changed the database"
    assert os.listdir(tmpdir_short) == [], "a usage error wrote a file"
    assert "upgrade from" not in migd.log() and "resolve from" not in migd.log()


def test_exit_2_usage_without_daemon(tmpdir_short):
    """A usage error is a usage error whether or not migd runs."""
    bad = []
    for args in USAGE_CASES:
        p = migctl_at(os.path.join(tmpdir_short, "none.sock"), *args,
                      env={"MIGD_MIGRATIONS": os.path.join(tmpdir_short, "m")})
        if p.returncode != X_USAGE or not p.stderr.strip():
            bad.append((args, p.returncode, p.stdout[-300:], p.stderr[-300:]))
    assert not bad, bad


def test_help_and_version_exit_0():
    p = migctl_local("--help")
    assert p.returncode == 0 and "usage: migctl" in p.stdout, (p.returncode, p.stdout)
    assert "exit codes" in p.stdout
    p = migctl_local("--version")
    assert p.returncode == 0 and p.stdout.startswith("migctl "), p.stdout


# ---- exit 3 -----------------------------------------------------------------

def unreachable_json(p):
    """--json and no daemon: the JSON error (kind unreachable) on stdout, and
    nothing on stderr; the message."""
    assert p.returncode == X_UNREACHABLE, (p.returncode, p.stdout, p.stderr)
    assert p.stderr == "", p.stderr
    e = json.loads(p.stdout)["error"]
    assert e["data"]["kind"] == "unreachable" and isinstance(e["code"], int), e
    return e["message"]


def test_exit_3_no_socket(tmpdir_short):
    path = os.path.join(tmpdir_short, "nothing.sock")
    for args in (["status"], ["upgrade"], ["check"], ["verify"]):
        p = migctl_at(path, *args)
        assert p.returncode == X_UNREACHABLE, (args, p.returncode, p.stdout, p.stderr)
        assert path in p.stderr, p.stderr
        assert "No such file" in p.stderr, p.stderr
    msg = unreachable_json(migctl_at(path, "--json", "status"))
    assert path in msg and "No such file" in msg, msg
    # and the way to go without one (a CI job, a container)
    assert "without a daemon, migctl --local -c CONFIG runs one" in msg, msg


def test_wait_without_daemon_says_why_and_the_time_asked(tmpdir_short):
    """`wait` that never reached migd: the timeout as given (0.5, not 0) and
    why it could not connect, with the way to name the socket."""
    path = os.path.join(tmpdir_short, "none.sock")
    p = migctl_at(path, "wait", "--for", "ready", "--timeout", "0.5")
    assert p.returncode == X_UNREACHABLE, (p.returncode, p.stdout, p.stderr)
    assert ("migd did not answer at %s within 0.5 s: No such file or directory "
            "(is migd running? -s or $MIGD_SOCKET selects the socket; without a "
            "daemon, migctl --local -c CONFIG runs one for the command)" % path
            in p.stderr), p.stderr
    msg = unreachable_json(migctl_at(path, "--json", "wait", "--timeout", "0"))
    assert "within 0 s: No such file or directory" in msg, msg


def test_exit_3_socket_exists_nobody_listens(tmpdir_short):
    path = os.path.join(tmpdir_short, "dead.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.close()
    for args in (["status"], ["wait", "--timeout", "0"]):
        p = migctl_at(path, *args)
        assert p.returncode == X_UNREACHABLE, (args, p.returncode, p.stdout, p.stderr)
        assert p.stderr.strip()
    for args in (["--json", "upgrade"], ["--json", "wait", "--timeout", "0"]):
        assert path in unreachable_json(migctl_at(path, *args))
    p = migctl_at(path, "status")
    assert "refused" in p.stderr.lower(), p.stderr


def test_exit_3_daemon_dies_before_answering(migd):
    """The connection closes before a reply (migd killed mid-run): exit 3."""
    connected(migd)
    write_rev(migd.migrations_dir, "r1_slow.sql", "r1", up="SELECT pg_sleep(5);")
    u = popen_migctl(migd.socket, "upgrade")
    wait_activity(migd, "pg_sleep(5)")
    migd.signal(signal.SIGKILL)
    rc, out, err, took = finish(u, timeout=10)
    assert rc == X_UNREACHABLE, (rc, out, err)
    assert "closed the connection" in err, err
    assert took < 4


# ---- a migd of another version ----------------------------------------------

class OldMigd:
    """A daemon on a socket that answers `version` as migd VERSION would and knows
    nothing else (method_not_found), or no parameter (unknown parameter), as a
    migd older than this migctl answers what it does not know. Records the
    methods it was sent."""

    def __init__(self, path, version, unknown="method"):
        import threading
        self.methods = []
        self.params = []
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(path)
        self.srv.listen(8)
        self.version, self.unknown = version, unknown
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            with c, c.makefile("rwb") as f:
                for line in f:
                    req = json.loads(line)
                    self.methods.append(req["method"])
                    self.params.append(req.get("params"))
                    if req["method"] == "version":
                        reply = {"result": {"name": "migd", "version": self.version,
                                            "protocol": 1}}
                    elif self.unknown == "method":
                        reply = {"error": {"code": -32601, "message": "unknown method "
                                           "\"%s\"" % req["method"],
                                           "data": {"kind": "method_not_found"}}}
                    else:
                        reply = {"error": {"code": -32602, "message": "invalid params: "
                                           "unknown parameter \"dry_run\"",
                                           "data": {"kind": "invalid_params"}}}
                    reply.update(jsonrpc="2.0", id=req["id"])
                    f.write(json.dumps(reply).encode() + b"\n")
                    f.flush()

    def close(self):
        self.srv.close()


def test_daemon_of_another_version_is_named(tmpdir_short):
    """migctl against an older migd that lacks a method or a parameter: the error
    says which versions meet and what to do, not only 'unknown method'; nothing
    but the request itself and `version` is sent."""
    path = os.path.join(tmpdir_short, "old.sock")
    old = OldMigd(path, "0.0.9")
    try:
        ours = migctl_at(path, "-V").stdout.split()[1]
        p = migctl_at(path, "lint")
        assert p.returncode == X_FAILED, (p.returncode, p.stdout, p.stderr)
        assert 'unknown method "lint": migd at %s is version 0.0.9 (protocol 1) and ' \
            'this migctl is %s (protocol 1)' % (path, ours) in p.stderr, p.stderr
        assert "use the migctl of migd's version, or upgrade migd" in p.stderr, p.stderr
        assert old.methods == ["lint", "version"], old.methods
        # with --db too: the version request carries no database (an old migd
        # may not know the param)
        p = migctl_at(path, "--db", "a", "current")
        assert "migd at %s is version 0.0.9" % path in p.stderr, p.stderr
        assert old.params[-1] is None, old.params
        doc = json.loads(migctl_at(path, "--json", "status").stdout)["error"]
        assert doc["data"] == {"kind": "method_not_found", "daemon_version": "0.0.9"}, doc
        assert "is version 0.0.9" in doc["message"], doc
    finally:
        old.close()
    # an unknown parameter is the same story
    path2 = os.path.join(tmpdir_short, "old2.sock")
    old = OldMigd(path2, "0.0.9", unknown="param")
    try:
        p = migctl_at(path2, "upgrade", "--dry-run")
        assert p.returncode == X_FAILED, (p.returncode, p.stdout, p.stderr)
        assert 'unknown parameter "dry_run": migd at %s is version 0.0.9' % path2 \
            in p.stderr, p.stderr
    finally:
        old.close()
    # the same version: the error stays as migd said it
    path3 = os.path.join(tmpdir_short, "same.sock")
    old = OldMigd(path3, ours)
    try:
        p = migctl_at(path3, "lint")
        assert p.returncode == X_FAILED, (p.returncode, p.stdout, p.stderr)
        assert p.stderr.strip() == 'migctl: unknown method "lint"', p.stderr
    finally:
        old.close()


def test_tables_of_another_role_name_the_role_and_the_grant(migd_factory, pg, make_db):
    """migd pointed at a database whose version and history tables another role
    made (a first migd, or Alembic, run as the owner): status and upgrade say
    which role migd connects as and the GRANT that fixes it, not only the
    server's 'permission denied'; nothing changes; after that GRANT both work."""
    db = make_db(pg)
    owner = connected(migd_factory(pg=pg, db=db))
    write_rev(owner.migrations_dir, "r1_a.sql", "r1", up="SELECT 1;")
    assert migctl(owner, "upgrade").returncode == X_OK
    owner.stop()
    pg.psql("DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = "
            "'migd_reader') THEN CREATE ROLE migd_reader LOGIN; END IF; END$$", db)
    m = migd_factory(pg=pg, db=db, conninfo=pg.conninfo(db).replace(
        "user=postgres", "user=migd_reader"))
    write_rev(m.migrations_dir, "r1_a.sql", "r1", up="SELECT 1;")
    write_rev(m.migrations_dir, "r2_b.sql", "r2", down="r1", up="SELECT 2;")
    before = history(m)
    for args in (["status"], ["upgrade"]):
        p = migctl(m, *args)
        assert p.returncode == X_FAILED, (args, p.returncode, p.stdout, p.stderr)
        assert "permission denied for table alembic_version (SQLSTATE 42501): migd " \
            "connects as role migd_reader" in p.stderr, p.stderr
        assert 'GRANT SELECT, INSERT, UPDATE, DELETE ON "public"."alembic_version", ' \
            '"public"."migd_history" TO migd_reader' in p.stderr, p.stderr
        assert "set [database] conninfo to the role that owns them" in p.stderr, p.stderr
    assert versions(m) == ["r1"] and history(m) == before
    e = jerr(m, "status", rc=X_FAILED, kind="sql_error")
    assert e["data"]["sqlstate"] == "42501" and "migd_reader" in e["message"], e
    # the grant it names is enough
    pg.psql('GRANT SELECT, INSERT, UPDATE, DELETE ON "public"."alembic_version", '
            '"public"."migd_history" TO migd_reader; GRANT USAGE ON SEQUENCE '
            'public.migd_history_id_seq TO migd_reader', db)
    assert migctl(m, "status").returncode == X_OK
    p = migctl(m, "upgrade")
    assert p.returncode == X_OK, (p.stdout, p.stderr)
    assert versions(m) == ["r2"]


def test_database_ahead_of_an_empty_directory_points_at_the_setting(migd_factory, pg, db):
    """migd pointed at a directory with no revision (a wrong [migrations]
    directory) on a database others migrated: the refusal says the directory is
    empty and names the setting, not 'deploy the newer migrations'; a directory
    with files but not this one keeps the usual words. Nothing changes."""
    a = connected(migd_factory(pg=pg, db=db))
    chain(a.migrations_dir, 2)
    assert migctl(a, "upgrade").returncode == X_OK
    b = connected(migd_factory(pg=pg, db=db))
    p = migctl(b, "status")
    assert "migrations:  %s (0 revisions)\n" % b.migrations_dir in p.stdout, p.stdout
    assert migctl(b, "reload").stdout == "reloaded: 0 revisions\n"
    p = migctl(b, "upgrade")
    assert p.returncode == X_FAILED, (p.returncode, p.stdout, p.stderr)
    assert ("the version table names r2, which no migration file defines: the "
            "migrations directory %s holds no revision at all; check [migrations] "
            "directory (and format), or deploy the migrations there"
            % b.migrations_dir) in p.stderr, p.stderr
    write_rev(b.migrations_dir, "x1_other.sql", "x1", up="SELECT 1;")
    migdtest.wait_for(lambda: b.status()["migrations"].get("revisions") == 1, 10,
                      what="the file loaded")
    p = migctl(b, "upgrade")
    assert p.returncode == X_FAILED and "the database is ahead of this code; deploy " \
        "the newer migrations first" in p.stderr, p.stderr
    assert versions(a) == ["r2"]


# ---- exit 4 -----------------------------------------------------------------

def test_exit_4_check_pending_then_0_at_head(migd):
    connected(migd)
    chain(migd.migrations_dir, 2)
    p = migctl(migd, "check")
    assert p.returncode == X_CHECK, (p.returncode, p.stdout, p.stderr)
    doc = jok(migd, "check", rc=X_CHECK)
    assert doc["state"] == "pending" and doc["pending"] == 2, doc
    assert migctl(migd, "upgrade", "+1").returncode == X_OK
    assert migctl(migd, "check").returncode == X_CHECK
    assert migctl(migd, "upgrade").returncode == X_OK
    p = migctl(migd, "check")
    assert p.returncode == X_OK, (p.returncode, p.stdout, p.stderr)
    doc = jok(migd, "check")
    assert doc["state"] == "up_to_date" and doc["pending"] == 0, doc


def test_exit_4_verify_drift(migd):
    connected(migd)
    paths = chain(migd.migrations_dir, 2)
    # pending alone is fine for verify
    p = migctl(migd, "verify")
    assert p.returncode == X_OK, (p.returncode, p.stdout, p.stderr)
    assert migctl(migd, "upgrade").returncode == X_OK
    assert migctl(migd, "verify").returncode == X_OK
    with open(paths[0]) as f:
        text = f.read()
    with open(paths[0], "w") as f:
        f.write(text.replace("(id int)", "(id bigint)"))
    p = migctl(migd, "verify")
    assert p.returncode == X_CHECK, (p.returncode, p.stdout, p.stderr)
    assert "r1" in p.stdout and "drift" in p.stdout, p.stdout
    doc = jok(migd, "verify", rc=X_CHECK)
    assert doc["ok"] is False, doc
    assert [d["revision"] for d in doc["drift"]] == ["r1"], doc
    # at head, but drifted: check is not happy either
    p = migctl(migd, "check")
    assert p.returncode == X_CHECK, (p.returncode, p.stdout, p.stderr)
    # a drifted database refuses to move without --allow-drift
    write_rev(migd.migrations_dir, "r3_step.sql", "r3", down="r2", up="SELECT 1;")
    jerr(migd, "upgrade", rc=X_FAILED, kind="checksum_mismatch")
    p = migctl(migd, "upgrade", "--allow-drift")
    assert p.returncode == X_OK, (p.returncode, p.stdout, p.stderr)


def test_exit_4_wait_timeout_0_when_pending_0_at_head(migd):
    connected(migd)
    chain(migd.migrations_dir, 1)
    t0 = time.monotonic()
    p = migctl(migd, "wait", "--timeout", "0")
    assert p.returncode == X_CHECK, (p.returncode, p.stdout, p.stderr)
    assert time.monotonic() - t0 < 3
    assert "pending" in p.stderr, p.stderr
    assert migctl(migd, "upgrade").returncode == X_OK
    p = migctl(migd, "wait", "--timeout", "0")
    assert p.returncode == X_OK, (p.returncode, p.stdout, p.stderr)
    p = migctl(migd, "wait")
    assert p.returncode == X_OK, (p.returncode, p.stdout, p.stderr)


def test_exit_4_dirty(migd):
    """A non-transactional migration that fails leaves a dirty revision:
    status/check/verify report it, resolve clears it."""
    connected(migd)
    write_rev(migd.migrations_dir, "r1_nt.sql", "r1", transaction="none",
              up="CREATE TABLE public.nt1 (id int);\nSELECT 1/0;",
              down_sql="DROP TABLE public.nt1;", message="non-transactional")
    p = migctl(migd, "upgrade")
    assert p.returncode == X_FAILED, (p.returncode, p.stdout, p.stderr)
    assert migctl(migd, "check").returncode == X_CHECK
    doc = jok(migd, "verify", rc=X_CHECK)
    assert doc["ok"] is False and doc["dirty"] == ["r1"], doc
    # every run refuses while dirty
    jerr(migd, "upgrade", rc=X_FAILED, kind="dirty")
    doc = jok(migd, "resolve", "r1", "unapplied")
    assert doc["revision"] == "r1" and doc["to"] == [], doc
    assert migctl(migd, "verify").returncode == X_OK
    write_rev(migd.migrations_dir, "r1_nt.sql", "r1", transaction="none",
              up="CREATE TABLE IF NOT EXISTS public.nt1 (id int);",
              down_sql="DROP TABLE public.nt1;", message="non-transactional")
    p = migctl(migd, "upgrade")
    assert p.returncode == X_OK, (p.returncode, p.stdout, p.stderr)
    assert migctl(migd, "check").returncode == X_OK


# ---- exit 5 -----------------------------------------------------------------

def test_exit_5_lock_timeout_second_daemon(migd_factory, pg, db):
    a = connected(migd_factory(pg=pg, db=db))
    b = connected(migd_factory(pg=pg, db=db, overrides={("migrations", "lock_wait"): "300ms"}))
    for m in (a, b):
        write_rev(m.migrations_dir, "r1_slow.sql", "r1", up="SELECT pg_sleep(2);",
                  message="slow")
    runner = popen_migctl(a.socket, "upgrade")
    try:
        wait_activity(a, "pg_sleep(2)")
        holder = int(q(a, "SELECT pid FROM pg_stat_activity WHERE query LIKE '%pg_sleep(2)%' "
                          "AND pid <> pg_backend_pid() AND state = 'active'"))
        t0 = time.monotonic()
        p = migctl(b, "upgrade")
        assert p.returncode == X_BUSY, (p.returncode, p.stdout, p.stderr)
        assert time.monotonic() - t0 < 3, "lock_wait = 300ms was not honoured"
        assert "lock" in p.stderr and str(holder) in p.stderr, p.stderr
        e = jerr(b, "upgrade", rc=X_BUSY, kind="lock_timeout")
        assert [h["pid"] for h in e["data"]["holders"]] == [holder], (holder, e)
    finally:
        rc, out, err, _ = finish(runner)
    assert rc == X_OK, (rc, out, err)
    assert versions(a) == ["r1"]


def test_second_daemon_says_it_waits_for_the_lock_then_runs(migd_factory, pg, db):
    """Two migds on one database (two hosts, or two `--local` CI jobs): the
    upgrade that finds the migration lock taken says at once whom it waits for
    and how long it may, instead of sitting silent for up to lock_wait; once
    the lock is free it runs what is left (here nothing) and exits 0."""
    a = connected(migd_factory(pg=pg, db=db))
    b = connected(migd_factory(pg=pg, db=db))
    for m in (a, b):
        write_rev(m.migrations_dir, "r1_slow.sql", "r1", up="SELECT pg_sleep(3);",
                  message="slow")
    runner = popen_migctl(a.socket, "upgrade")
    try:
        wait_activity(a, "pg_sleep(3)")
        holder = int(q(a, "SELECT pid FROM pg_stat_activity WHERE query LIKE '%pg_sleep(3)%' "
                          "AND pid <> pg_backend_pid() AND state = 'active'"))
        waiter = popen_migctl(b.socket, "--json", "--stream", "upgrade")
        rc, out, err, _ = finish(waiter, timeout=30)
    finally:
        rca, outa, erra, _ = finish(runner)
    assert rca == X_OK, (rca, outa, erra)
    assert rc == X_OK, (rc, out, err)
    lines = [json.loads(x) for x in out.splitlines()]
    waits = [x["params"] for x in lines if x.get("method") == "progress"
             and x["params"]["event"] == "waiting_for_lock"]
    assert len(waits) == 1, lines
    assert [h["pid"] for h in waits[0]["holders"]] == [holder], waits
    assert waits[0]["lock_wait_ms"] == 60000 and str(holder) in waits[0]["waiting_for"], waits
    assert lines[-1]["result"]["steps"] == [], lines[-1]
    assert versions(a) == ["r1"]
    # for people, one line on stdout that says it
    write_rev(a.migrations_dir, "r2_slow.sql", "r2", down="r1", up="SELECT pg_sleep(3);")
    write_rev(b.migrations_dir, "r2_slow.sql", "r2", down="r1", up="SELECT pg_sleep(3);")
    runner = popen_migctl(a.socket, "upgrade")
    try:
        wait_activity(a, "pg_sleep(3)")
        p = migctl(b, "upgrade")
    finally:
        finish(runner)
    assert p.returncode == X_OK, (p.returncode, p.stdout, p.stderr)
    assert re.search(r"^waiting for the migration lock, which another run holds \(pid \d+, "
                     r"application_name '[^']*', client local, user postgres\), for up to "
                     r"60\.0 s \(lock_wait\)$", p.stdout, re.M), p.stdout
    assert versions(a) == ["r2"]


def test_exit_5_too_many_clients(migd_factory):
    m = connected(migd_factory(overrides={("control", "max_clients"): "1"}))
    with m.connect() as hold:
        assert hold.call("version")["result"]["name"] == "migd"
        # the race between migd's close and migctl's write is lost about half the
        # time; every try must get the documented answer
        for _ in range(8):
            p = migctl(m, "status")
            assert p.returncode == X_BUSY, (p.returncode, p.stdout, p.stderr)
            assert "too many clients" in p.stderr, p.stderr
            e = jerr(m, "status", rc=X_BUSY, kind="too_many_clients")
            assert e["code"] == -32002, e
    migdtest.wait_for(lambda: migctl(m, "status").returncode == X_OK, 5,
                      what="status once the slot is free")


# ---- targets as typed -------------------------------------------------------

def test_downgrade_minus_one_taken_as_typed(migd):
    connected(migd)
    chain(migd.migrations_dir, 3)
    assert migctl(migd, "upgrade").returncode == X_OK
    p = migctl(migd, "downgrade", "-1")
    assert p.returncode == X_OK, (p.returncode, p.stdout, p.stderr)
    assert versions(migd) == ["r2"]
    doc = jok(migd, "downgrade", "-1", "--dry-run")
    assert [s["revision"] for s in doc["steps"]] == ["r2"], doc
    assert versions(migd) == ["r2"]
    p = migctl(migd, "upgrade", "+1")
    assert p.returncode == X_OK, (p.returncode, p.stdout, p.stderr)
    assert versions(migd) == ["r3"]
    p = migctl(migd, "downgrade", "--", "-2")
    assert p.returncode == X_OK, (p.returncode, p.stdout, p.stderr)
    assert versions(migd) == ["r1"]
    # upgrade never goes down and downgrade never goes up, whatever the target
    assert migctl(migd, "upgrade", "r2").returncode == X_OK
    for args in (["upgrade", "-1"], ["upgrade", "base"], ["upgrade", "r1"],
                 ["downgrade", "+1"], ["downgrade", "head"], ["downgrade", "r3"]):
        p = migctl(migd, *args)
        assert versions(migd) == ["r2"], (args, p.returncode, p.stdout, p.stderr)
        assert p.returncode in (X_OK, X_FAILED), (args, p.returncode, p.stderr)
        if p.returncode == X_OK:
            assert "nothing to do" in p.stdout, (args, p.stdout)
    p = migctl(migd, "downgrade", "base")
    assert p.returncode == X_OK, (p.returncode, p.stdout, p.stderr)
    assert versions(migd) == []


# ---- --json for every command -----------------------------------------------

def test_json_every_command(migd):
    connected(migd)
    chain(migd.migrations_dir, 3)

    v = jok(migd, "version")
    assert v["name"] == "migd" and v["protocol"] == 1 and isinstance(v["version"], str), v

    s = jok(migd, "status")
    assert s["state"] == "pending" and s["pending"] == 3 and s["current"] == [], s
    assert s["daemon"]["pid"] == migd.proc.pid and s["database"]["connected"] is True, s
    assert s["migrations"]["heads"] == ["r3"] and s["migrations"]["revisions"] == 3, s

    c = jok(migd, "current")
    assert c["state"] == "pending" and c["current"] == [] and c["pending"] == 3, c

    h = jok(migd, "heads")
    assert [x["revision"] for x in h["heads"]] == ["r3"], h
    assert h["heads"][0]["applied"] is False and h["heads"][0]["message"] == "step 3", h

    pl = jok(migd, "plan")
    assert pl["direction"] == "up" and pl["target"] == "head", pl
    assert [x["revision"] for x in pl["steps"]] == ["r1", "r2", "r3"], pl
    assert pl["runnable"] is True and pl["to"] == ["r3"], pl
    assert all(x["transactional"] is True for x in pl["steps"]), pl

    d = jok(migd, "upgrade", "--dry-run")
    assert [x["revision"] for x in d["steps"]] == ["r1", "r2", "r3"], d
    assert versions(migd) is None or versions(migd) == []

    u = jok(migd, "upgrade", "+1")
    assert [x["revision"] for x in u["steps"]] == ["r1"] and u["to"] == ["r1"], u
    u = jok(migd, "upgrade")
    assert u["direction"] == "up" and u["from"] == ["r1"] and u["to"] == ["r3"], u
    assert [x["revision"] for x in u["steps"]] == ["r2", "r3"], u
    assert all(isinstance(x["duration_ms"], (int, float)) for x in u["steps"]), u
    assert isinstance(u["duration_ms"], (int, float)), u

    hi = jok(migd, "history")
    revs = [(x["revision"], x["direction"], x["success"]) for x in hi["history"]]
    assert revs == [("r3", "up", True), ("r2", "up", True), ("r1", "up", True)], revs
    assert hi["history"][0]["requested_by"] == "root" or os.geteuid() != 0, hi
    hi = jok(migd, "history", "--limit=100000")
    assert len(hi["history"]) == 3, hi
    hi = jok(migd, "history", "--limit", "1")
    assert len(hi["history"]) == 1 and hi["history"][0]["revision"] == "r3", hi
    hi = jok(migd, "history", "r1")
    assert [x["revision"] for x in hi["history"]] == ["r1"], hi

    dn = jok(migd, "downgrade", "-1")
    assert dn["direction"] == "down" and dn["to"] == ["r2"], dn
    assert [x["revision"] for x in dn["steps"]] == ["r3"], dn

    st = jok(migd, "stamp", "head")
    assert st["from"] == ["r2"] and st["to"] == ["r3"], st
    assert versions(migd) == ["r3"]

    sc = jok(migd, "schemas")
    names = {x["name"]: x for x in sc["schemas"]}
    assert {"cars", "participants", "work_shop"} <= set(names), sc
    assert names["cars"]["source"] == "config" and names["cars"]["exists"] is True, sc

    ve = jok(migd, "verify")
    assert ve["ok"] is True and ve["state"] == "up_to_date", ve
    assert ve["drift"] == [] and ve["dirty"] == [] and ve["unknown"] == [], ve

    ch = jok(migd, "check")
    assert ch["state"] == "up_to_date", ch

    rl = jok(migd, "reload")
    assert rl["migrations"]["revisions"] == 3 and rl["migrations"]["heads"] == ["r3"], rl

    w = jok(migd, "wait", "--timeout", "0")
    assert w["state"] == "up_to_date", w
    w = jok(migd, "wait", "--for", "ready", "--timeout", "0")
    assert w["database"]["connected"] is True, w

    # --stream on a command without progress: one line, the reply itself
    p = migctl(migd, "--json", "--stream", "version")
    assert p.returncode == X_OK and len(p.stdout.splitlines()) == 1, p.stdout
    assert json.loads(p.stdout)["result"]["protocol"] == 1
    # --socket=PATH and -s PATH (the environment points elsewhere)
    for sock in (["--socket=%s" % migd.socket], ["-s", migd.socket]):
        p = migctl(migd, "--json", *sock, "current",
                   env={"MIGD_SOCKET": "/nonexistent/migd.sock"})
        assert p.returncode == X_OK, (sock, p.returncode, p.stderr)
        assert json.loads(p.stdout)["current"][0]["revision"] == "r3"


def test_json_resolve(migd):
    connected(migd)
    write_rev(migd.migrations_dir, "r1_ok.sql", "r1", up="CREATE TABLE public.a (id int);")
    write_rev(migd.migrations_dir, "r2_nt.sql", "r2", down="r1", transaction="none",
              up="CREATE TABLE public.b (id int);\nSELECT 1/0;")
    e = jerr(migd, "upgrade", rc=X_FAILED, kind="dirty")
    assert e["data"]["revision"] == "r2", e
    s = jok(migd, "status")
    assert s["state"] == "dirty" and s["dirty"] == ["r2"], s
    r = jok(migd, "resolve", "r2", "applied")
    assert r["revision"] == "r2" and r["from"] == ["r1"] and r["to"] == ["r2"], r
    assert versions(migd) == ["r2"]
    assert jok(migd, "verify")["ok"] is True


def test_json_errors_on_stdout_message_on_stderr(migd):
    connected(migd)
    chain(migd.migrations_dir, 1)
    e = jerr(migd, "downgrade", "r9", rc=X_FAILED, kind="plan_error")
    assert e["code"] == -32010, e
    e = jerr(migd, "stamp", "nosuch", rc=X_FAILED, kind="plan_error")
    # and the human run has nothing on stdout, the message on stderr
    p = migctl(migd, "stamp", "nosuch")
    assert p.returncode == X_FAILED and p.stdout == "", (p.stdout, p.stderr)
    assert e["message"] in p.stderr


def test_json_stream_progress_lines(migd):
    connected(migd)
    chain(migd.migrations_dir, 3)
    p = migctl(migd, "--json", "--stream", "upgrade")
    assert p.returncode == X_OK, (p.returncode, p.stdout, p.stderr)
    lines = p.stdout.splitlines()
    assert all(lines), "blank line in --stream output: %r" % p.stdout
    msgs = [json.loads(x) for x in lines]
    notes, final = msgs[:-1], msgs[-1]
    assert "result" in final and final.get("id") is not None, final
    assert [x["revision"] for x in final["result"]["steps"]] == ["r1", "r2", "r3"], final
    assert all(n.get("method") == "progress" and "id" not in n for n in notes), notes
    ev = [(n["params"]["event"], n["params"].get("revision"), n["params"].get("index"),
           n["params"].get("total")) for n in notes
          if n["params"]["event"] in ("started", "finished")]
    assert ev == [("started", "r1", 1, 3), ("finished", "r1", 1, 3),
                  ("started", "r2", 2, 3), ("finished", "r2", 2, 3),
                  ("started", "r3", 3, 3), ("finished", "r3", 3, 3)], ev


def test_json_stream_failure(migd):
    connected(migd)
    write_rev(migd.migrations_dir, "r1_ok.sql", "r1", up="SELECT 1;")
    write_rev(migd.migrations_dir, "r2_bad.sql", "r2", down="r1", up="SELECT 1/0;")
    p = migctl(migd, "--json", "--stream", "upgrade")
    assert p.returncode == X_FAILED, (p.returncode, p.stdout, p.stderr)
    msgs = [json.loads(x) for x in p.stdout.splitlines()]
    assert msgs[-1]["error"]["data"]["kind"] == "sql_error", msgs[-1]
    events = [m["params"]["event"] for m in msgs[:-1]]
    assert "failed" in events, events
    assert "division by zero" in msgs[-1]["error"]["message"], msgs[-1]
    assert p.stderr == "", p.stderr         # --json: nothing for people


# ---- output for people --------------------------------------------------------

def test_human_output_and_no_colour_without_tty(migd):
    connected(migd)
    chain(migd.migrations_dir, 3)
    outs = []
    p = migctl(migd, "status")
    assert p.returncode == X_OK
    assert re.search(r"^state:\s+pending", p.stdout, re.M), p.stdout
    assert re.search(r"^current:\s+", p.stdout, re.M), p.stdout
    assert re.search(r"^pending:\s+3", p.stdout, re.M), p.stdout
    outs += [p.stdout, p.stderr]
    p = migctl(migd, "plan")
    assert p.returncode == X_OK
    assert "3 migrations" in p.stdout, p.stdout
    for r in ("r1", "r2", "r3"):
        assert re.search(r"^\s+\d+\.\s+up\s+%s\s+step" % r, p.stdout, re.M), p.stdout
    outs += [p.stdout, p.stderr]
    p = migctl(migd, "upgrade")
    assert p.returncode == X_OK, (p.stdout, p.stderr)
    for i in (1, 2, 3):
        assert len(re.findall(r"^\[%d/3\] up\s+r%d\b.*done" % (i, i), p.stdout, re.M)) == 1, \
            p.stdout
    assert "now at r3" in p.stdout, p.stdout
    outs += [p.stdout, p.stderr]
    for args in (["history"], ["heads"], ["schemas"], ["current"], ["verify"],
                 ["downgrade", "-1"], ["stamp", "head"], ["reload"], ["version"],
                 ["check"], ["wait", "--timeout", "0"]):
        p = migctl(migd, *args)
        assert p.returncode == X_OK, (args, p.returncode, p.stdout, p.stderr)
        assert p.stdout.strip(), args
        with pytest.raises(ValueError):
            json.loads(p.stdout)
        outs += [p.stdout, p.stderr]
    p = migctl(migd, "downgrade", "nosuch")
    assert p.returncode == X_FAILED
    outs += [p.stdout, p.stderr]
    # NO colour even with a colour-capable TERM: stdout is not a terminal
    p = migctl(migd, "status", env={"TERM": "xterm-256color"})
    outs += [p.stdout, p.stderr]
    no_ansi(*outs)


def run_pty(args, env):
    """Run args with stdout and stderr on a pseudo-terminal; the bytes it printed."""
    master, slave = os.openpty()
    try:
        p = subprocess.Popen(args, stdout=slave, stderr=slave, stdin=subprocess.DEVNULL,
                             env=env)
    finally:
        os.close(slave)
    out = b""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            chunk = os.read(master, 65536)
        except OSError:      # EIO: the other side is closed
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    rc = p.wait(10)
    return rc, out.decode(errors="replace")


def test_colour_only_on_terminal_and_never_with_no_color(migd):
    connected(migd)
    chain(migd.migrations_dir, 1)
    env = clean_env({"MIGD_SOCKET": migd.socket, "TERM": "xterm"})
    env.pop("NO_COLOR", None)
    rc, out = run_pty([MIGCTL_BIN, "status"], env)
    assert rc == X_OK, out
    assert ANSI_RE.search(out), "no colour on a terminal: %r" % out
    rc, out = run_pty([MIGCTL_BIN, "upgrade"], env)
    assert rc == X_OK and "[1/1]" in out and ANSI_RE.search(out), out
    rc, out = run_pty([MIGCTL_BIN, "status"], dict(env, NO_COLOR="1"))
    assert rc == X_OK and "state:" in out, out
    assert "\x1b" not in out, "colour with NO_COLOR=1: %r" % out
    rc, out = run_pty([MIGCTL_BIN, "history"], dict(env, NO_COLOR="1"))
    assert rc == X_OK and "\x1b" not in out, out
    # TERM unset or dumb: no colour either (migctl(1))
    bare = {k: v for k, v in env.items() if k != "TERM"}
    for e in (bare, dict(env, TERM="dumb")):
        rc, out = run_pty([MIGCTL_BIN, "status"], e)
        assert rc == X_OK and "state:" in out and "\x1b" not in out, (e.get("TERM"), out)
    # --json on a terminal is JSON, without escape codes
    rc, out = run_pty([MIGCTL_BIN, "--json", "status"], env)
    assert rc == X_OK and "\x1b" not in out, out
    assert json.loads(out)["state"] == "up_to_date"
    # the util-linux way, as a person would check it
    if shutil.which("script"):
        cmd = "%s status" % MIGCTL_BIN
        p = subprocess.run(["script", "-qec", cmd, "/dev/null"], env=env,
                           capture_output=True, text=True, timeout=20,
                           stdin=subprocess.DEVNULL)
        assert p.returncode == 0 and ANSI_RE.search(p.stdout), (p.returncode, p.stdout)
        p = subprocess.run(["script", "-qec", cmd, "/dev/null"], env=dict(env, NO_COLOR="1"),
                           capture_output=True, text=True, timeout=20,
                           stdin=subprocess.DEVNULL)
        assert p.returncode == 0 and "state:" in p.stdout and "\x1b" not in p.stdout, p.stdout


# ---- wait -------------------------------------------------------------------

def test_wait_for_ready(migd):
    connected(migd)
    chain(migd.migrations_dir, 2)      # pending does not matter for ready
    t0 = time.monotonic()
    p = migctl(migd, "wait", "--for", "ready", "--timeout", "5")
    assert p.returncode == X_OK, (p.returncode, p.stdout, p.stderr)
    assert time.monotonic() - t0 < 3


def test_no_daemon_wait_and_wait_daemon_give_up_in_time(tmpdir_short):
    """wait --timeout 1 and upgrade --wait-daemon 1 with no daemon: exit 3 after
    about a second (run side by side)."""
    path = os.path.join(tmpdir_short, "none.sock")
    runs = [popen_migctl(path, "wait", "--timeout", "1"),
            popen_migctl(path, "wait", "--for", "ready", "--timeout", "1"),
            popen_migctl(path, "upgrade", "--wait-daemon=1"),
            popen_migctl(path, "upgrade", "--wait-daemon", "1")]
    t0 = time.monotonic()
    for p in runs:
        rc, out, err, _ = finish(p, timeout=10)
        took = time.monotonic() - t0
        assert rc == X_UNREACHABLE, (p.args, rc, out, err)
        assert 0.9 <= took < 5, (p.args, took)
        assert path in err, err
        # each says how long it tried, and why it could not connect
        assert "within 1 s: No such file or directory" in err, (p.args, err)


def test_wait_succeeds_when_upgrade_happens_during_wait(migd):
    connected(migd)
    chain(migd.migrations_dir, 2)
    w = popen_migctl(migd.socket, "wait", "--timeout", "10")
    time.sleep(0.8)
    assert w.poll() is None, "wait returned before the upgrade: %r" % (w.communicate(),)
    assert migctl(migd, "upgrade").returncode == X_OK
    t_up = time.monotonic()
    rc, out, err, _ = finish(w, timeout=15)
    assert rc == X_OK, (rc, out, err)
    assert time.monotonic() - t_up < 3, "wait noticed the upgrade too late"
    assert "at head" in out, out


def test_wait_and_upgrade_before_migd_exists(migd_factory):
    """A readiness probe and a deploy hook started before migd: both wait for it.
    The config exists; migd starts 0.7 s after them."""
    m = migd_factory(start=False)
    chain(m.migrations_dir, 3)
    w = popen_migctl(m.socket, "wait", "--for", "ready", "--timeout", "15")
    u = popen_migctl(m.socket, "upgrade", "--wait-daemon=10")
    time.sleep(0.7)
    assert w.poll() is None and u.poll() is None, "gave up before migd started"
    m.start(wait=False)
    rc, out, err, _ = finish(u, timeout=20)
    assert rc == X_OK, (rc, out, err)
    assert "[3/3]" in out, out
    rc, out, err, _ = finish(w, timeout=20)
    assert rc == X_OK, (rc, out, err)
    assert versions(m) == ["r3"]


def test_postgres_down_then_up_wait_ready_and_wait_daemon(migd_factory, own_pg):
    """A deploy hook started before migd, while PostgreSQL is still down:
    `upgrade --wait-daemon 15` ends with the database at head once PostgreSQL is
    up (the request waits connect_timeout for the connecting pool). Meanwhile
    `wait --for ready` times out with 4, check says 4 (no_database), and a
    `wait --for ready` running when PostgreSQL comes up returns 0."""
    m = migd_factory(pg=own_pg, start=False,
                     overrides={("database", "connect_timeout"): "8"})
    chain(m.migrations_dir, 3)
    own_pg.stop()
    u = popen_migctl(m.socket, "upgrade", "--wait-daemon", "15")
    time.sleep(0.7)
    assert u.poll() is None, "upgrade gave up before migd started: %r" % (u.communicate(),)
    m.start()
    t0 = time.monotonic()
    p = migctl(m, "wait", "--for", "ready", "--timeout", "1")
    took = time.monotonic() - t0
    assert p.returncode == X_CHECK, (p.returncode, p.stdout, p.stderr)
    assert 0.9 <= took < 4, took
    assert "not connected" in p.stderr, p.stderr
    assert migctl(m, "wait", "--timeout", "0").returncode == X_CHECK
    p = migctl(m, "check")
    assert p.returncode == X_CHECK, (p.returncode, p.stdout, p.stderr)
    assert jok(m, "check", rc=X_CHECK)["state"] == "no_database"
    assert u.poll() is None, "upgrade ended while PostgreSQL was down: %r" % (u.communicate(),)
    w = popen_migctl(m.socket, "wait", "--for", "ready", "--timeout", "20")
    time.sleep(0.3)
    own_pg.start()
    rc, out, err, _ = finish(w, timeout=30)
    assert rc == X_OK, (rc, out, err)
    rc, out, err, _ = finish(u, timeout=30)
    assert rc == X_OK, (rc, out, err)
    assert "[3/3]" in out, out
    assert versions(m) == ["r3"]


# ---- new and merge ------------------------------------------------------------

NEW_RE = re.compile(r"^([0-9a-f]{12})_add_cars\.sql$")


def header(path):
    out = {}
    with open(path) as f:
        for line in f:
            if line.startswith("-- migrate:up"):
                break
            m = re.match(r"^-- ([a-z_]+): (.*)$", line.rstrip("\n"))
            if m:
                out[m.group(1)] = m.group(2)
    return out


def new(directory, message, *extra, env=None):
    p = migctl_local("new", "-m", message, "-d", directory, *extra, env=env)
    assert p.returncode == X_OK, (p.returncode, p.stdout, p.stderr)
    path = p.stdout.strip()
    assert os.path.isfile(path), p.stdout
    return path


def test_new_and_merge_files_the_engine_accepts(migd_factory, tmpdir_short):
    d = os.path.join(tmpdir_short, "migrations")
    os.mkdir(d)
    # the first revision of an empty directory
    p = migctl_local("new", "-m", "Add cars", "-d", d)
    assert p.returncode == X_OK, (p.returncode, p.stdout, p.stderr)
    assert os.listdir(d) and len(os.listdir(d)) == 1
    name = os.listdir(d)[0]
    mt = NEW_RE.match(name)
    assert mt, name
    a = mt.group(1)
    assert p.stdout.strip() == os.path.join(d, name), p.stdout
    h = header(os.path.join(d, name))
    assert h == {"revision": a, "down_revision": "none", "message": "Add cars"}, h
    text = open(os.path.join(d, name)).read()
    assert "\n-- migrate:up\n" in text and "\n-- migrate:down\n" in text, text
    # the next one chains to it
    b_path = new(d, "Add owners")
    b = header(b_path)["revision"]
    assert re.fullmatch(r"[0-9a-f]{12}", b) and b != a
    assert header(b_path)["down_revision"] == a
    assert os.path.basename(b_path) == "%s_add_owners.sql" % b
    # a second branch from a, by hand: two heads
    write_rev(d, "c0ffee000001_branch.sql", "c0ffee000001", down=a,
              up="CREATE TABLE public.branch (id int);", down_sql="DROP TABLE public.branch;")
    p = migctl_local("new", "-m", "Third", "-d", d)
    assert p.returncode == X_FAILED, (p.returncode, p.stdout, p.stderr)
    assert b in p.stderr and "c0ffee000001" in p.stderr, p.stderr
    assert len(os.listdir(d)) == 3
    # --head names the parent
    c_path = new(d, "Third", "--head", b)
    c = header(c_path)["revision"]
    assert header(c_path)["down_revision"] == b
    p = migctl_local("new", "-m", "x", "-d", d, "--head", "nosuch")
    assert p.returncode == X_FAILED, (p.returncode, p.stdout, p.stderr)
    # merge joins both heads
    p = migctl_local("merge", "-m", "Join branches", "-d", d)
    assert p.returncode == X_OK, (p.returncode, p.stdout, p.stderr)
    m_path = p.stdout.strip()
    mh = header(m_path)
    parents = sorted(x.strip() for x in mh["down_revision"].split(","))
    assert parents == sorted([c, "c0ffee000001"]), mh
    assert mh["message"] == "Join branches"
    assert re.fullmatch(r"[0-9a-f]{12}_join_branches\.sql", os.path.basename(m_path))
    # one head again: merge has nothing to do, new chains to the merge
    p = migctl_local("merge", "-m", "again", "-d", d)
    assert p.returncode == X_FAILED, (p.returncode, p.stdout, p.stderr)
    assert "nothing to merge" in p.stderr, p.stderr
    # fill in a's sections as an author would
    a_path = os.path.join(d, name)
    t = open(a_path).read()
    t = t.replace("-- migrate:up\n", "-- migrate:up\nCREATE TABLE cars.cars (id int);\n")
    t = t.replace("-- migrate:down\n", "-- migrate:down\nDROP TABLE cars.cars;\n")
    open(a_path, "w").write(t)

    # the engine accepts all of it
    m = connected(migd_factory(overrides={("migrations", "directory"): d}))
    s = jok(m, "status")
    assert s["migrations"]["valid"] is True and s["migrations"]["revisions"] == 5, s
    assert s["migrations"]["heads"] == [mh["revision"]], s
    p = migctl(m, "upgrade", "head")
    assert p.returncode == X_OK, (p.returncode, p.stdout, p.stderr)
    assert versions(m) == [mh["revision"]]
    applied = {r["revision"] for r in history(m) if r["direction"] == "up" and r["success"]}
    assert applied == {a, b, c, "c0ffee000001", mh["revision"]}, applied
    assert q(m, "SELECT to_regclass('cars.cars') IS NOT NULL") == "t"
    # and back down, through the written (empty) down sections
    p = migctl(m, "downgrade", "base")
    assert p.returncode == X_OK, (p.returncode, p.stdout, p.stderr)
    assert versions(m) == []
    assert q(m, "SELECT to_regclass('cars.cars') IS NULL") == "t"


def test_new_directory_from_env_and_config(tmpdir_short):
    env_dir = os.path.join(tmpdir_short, "from_env")
    cfg_dir = os.path.join(tmpdir_short, "from_cfg")
    os.mkdir(env_dir)
    os.mkdir(cfg_dir)
    p = migctl_local("new", "-m", "Add cars", env={"MIGD_MIGRATIONS": env_dir},
                     cwd=tmpdir_short)
    assert p.returncode == X_OK, (p.returncode, p.stdout, p.stderr)
    assert len(os.listdir(env_dir)) == 1 and NEW_RE.match(os.listdir(env_dir)[0])
    assert not os.path.exists(os.path.join(tmpdir_short, "migrations"))
    # -c CONFIG: [migrations] directory
    sections = migdtest.default_sections("host=/nonexistent dbname=x", cfg_dir,
                                         os.path.join(tmpdir_short, "s.sock"))
    text, _ = migdtest.render_config(sections)
    cfg = os.path.join(tmpdir_short, "migd.conf")
    with open(cfg, "w") as f:
        f.write(text)
    p = migctl_local("new", "-m", "Add cars", "-c", cfg, cwd=tmpdir_short)
    assert p.returncode == X_OK, (p.returncode, p.stdout, p.stderr)
    assert len(os.listdir(cfg_dir)) == 1 and NEW_RE.match(os.listdir(cfg_dir)[0])
    first = os.listdir(cfg_dir)[0]
    p = migctl_local("merge", "-m", "nothing", "-c", cfg, cwd=tmpdir_short)
    assert p.returncode == X_FAILED, (p.returncode, p.stdout, p.stderr)
    p = migctl_local("new", "-m", "Second", "-c", cfg, cwd=tmpdir_short)
    assert p.returncode == X_OK
    assert header(p.stdout.strip())["down_revision"] == first[:12]
    # a relative directory in the config is relative to the config file
    rel = os.path.join(tmpdir_short, "conf")
    os.mkdir(rel)
    with open(os.path.join(rel, "migd.conf"), "w") as f:
        f.write(text.replace("directory = %s" % cfg_dir, "directory = relmig"))
    p = migctl_local("new", "-m", "Add cars", "-c", "conf/migd.conf", cwd=tmpdir_short)
    assert p.returncode == X_OK, (p.returncode, p.stdout, p.stderr)
    assert len(os.listdir(os.path.join(rel, "relmig"))) == 1, p.stdout
    # -d beats the environment
    p = migctl_local("new", "-m", "Add cars", "-d", cfg_dir,
                     env={"MIGD_MIGRATIONS": env_dir})
    assert p.returncode == X_OK
    assert len(os.listdir(env_dir)) == 1 and len(os.listdir(cfg_dir)) == 3
    # a config that does not exist is an error, not a silent fallback
    p = migctl_local("new", "-m", "x", "-c", os.path.join(tmpdir_short, "none.conf"),
                     cwd=tmpdir_short)
    assert p.returncode == X_FAILED, (p.returncode, p.stdout, p.stderr)
    assert not os.path.exists(os.path.join(tmpdir_short, "migrations"))


def test_new_usage_and_refusals(tmpdir_short):
    d = os.path.join(tmpdir_short, "m")
    os.mkdir(d)
    p = migctl_local("new", "-d", d)
    assert p.returncode == X_USAGE, (p.returncode, p.stdout, p.stderr)
    p = migctl_local("merge", "-d", d)
    assert p.returncode == X_USAGE, (p.returncode, p.stdout, p.stderr)
    p = migctl_local("new", "-m", "two\nlines", "-d", d)
    assert p.returncode == X_USAGE, (p.returncode, p.stdout, p.stderr)
    assert os.listdir(d) == []
    # merge of an empty directory, and of a single head
    p = migctl_local("merge", "-m", "x", "-d", d)
    assert p.returncode == X_FAILED, (p.returncode, p.stdout, p.stderr)
    new(d, "only one")
    p = migctl_local("merge", "-m", "x", "-d", d)
    assert p.returncode == X_FAILED, (p.returncode, p.stdout, p.stderr)
    assert len(os.listdir(d)) == 1
    # invalid files in the directory: new refuses and names them
    with open(os.path.join(d, "zz_bad.sql"), "w") as f:
        f.write("-- down_revision: nosuchparent\n\n-- migrate:up\nSELECT 1;\n")
    p = migctl_local("new", "-m", "x", "-d", d)
    assert p.returncode == X_FAILED, (p.returncode, p.stdout, p.stderr)
    assert "zz_bad.sql" in p.stderr, p.stderr
    assert len(os.listdir(d)) == 2


def test_new_creates_the_directories_above_its_directory(tmpdir_short):
    """migctl(1)'s example `migctl new -m "add invoices" --dir=db/migrations`, typed
    in a checkout without db/: the directories are made as mkdir -p makes them (as
    import --out does), not 'cannot create db/migrations: No such file or
    directory'; a path through a file is still refused, writing nothing."""
    p = migctl_local("new", "-m", "add invoices", "--dir=db/migrations", cwd=tmpdir_short)
    assert p.returncode == X_OK, (p.returncode, p.stdout, p.stderr)
    path = os.path.join(tmpdir_short, p.stdout.strip())
    assert os.path.dirname(path) == os.path.join(tmpdir_short, "db", "migrations"), path
    assert header(path)["down_revision"] == "none", path
    # the second one goes on top of it: the directory loads as migd reads it
    second = new(os.path.join(tmpdir_short, "db", "migrations"), "add invoice lines")
    assert header(second)["down_revision"] == header(path)["revision"], second
    deep = os.path.join(tmpdir_short, "a", "b", "c") + "/"
    assert os.path.isfile(new(deep, "deep")), deep
    for d in ("db", "db/migrations", "a", "a/b", "a/b/c"):
        mode = os.stat(os.path.join(tmpdir_short, d)).st_mode & 0o777
        assert mode & 0o022 == 0, (d, oct(mode))  # as migd wants its directories
    open(os.path.join(tmpdir_short, "plain"), "w").close()
    p = migctl_local("new", "-m", "x", "-d", os.path.join(tmpdir_short, "plain", "m"))
    assert p.returncode == X_FAILED, (p.returncode, p.stdout, p.stderr)
    assert "Not a directory" in p.stderr, p.stderr
    assert os.path.getsize(os.path.join(tmpdir_short, "plain")) == 0


def test_new_slug(tmpdir_short):
    d = os.path.join(tmpdir_short, "m")
    path = new(d, "Add index: orders (v2)!")     # the directory is created
    rev = header(path)["revision"]
    assert os.path.basename(path) == "%s_add_index_orders_v2.sql" % rev, path
    assert header(path)["message"] == "Add index: orders (v2)!"
    path = new(d, "x" * 100)
    assert len(os.path.basename(path)) <= 12 + 1 + 40 + 4, path


def test_json_new_and_merge(tmpdir_short):
    d = os.path.join(tmpdir_short, "m")
    p = migctl_local("--json", "new", "-m", "Add cars", "-d", d)
    assert p.returncode == X_OK, (p.returncode, p.stdout, p.stderr)
    doc = json.loads(p.stdout)
    name = os.listdir(d)[0]
    assert doc == {"path": os.path.join(d, name), "revision": name[:12],
                   "down_revision": "none", "message": "Add cars",
                   "directory": d, "directory_from": "option"}, doc
    assert p.stderr == "", p.stderr
    write_rev(d, "b_branch.sql", "b", down=name[:12], up="SELECT 1;")
    write_rev(d, "c_branch.sql", "c", down=name[:12], up="SELECT 1;")
    p = migctl_local("--json", "merge", "-m", "join", "-d", d)
    assert p.returncode == X_OK, (p.returncode, p.stdout, p.stderr)
    doc = json.loads(p.stdout)
    assert os.path.isfile(doc["path"]) and doc["message"] == "join", doc
    assert sorted(x.strip() for x in doc["down_revision"].split(",")) == ["b", "c"], doc
    assert header(doc["path"])["revision"] == doc["revision"]
    p = migctl_local("--json", "new", "-m", "next", "-d", d)
    assert p.returncode == X_OK, (p.returncode, p.stdout, p.stderr)
    assert json.loads(p.stdout)["down_revision"] == doc["revision"]


def test_no_colour_on_stderr_when_stderr_is_not_a_terminal(migd):
    """`migctl upgrade 2>log` on a terminal: the log file gets no escape codes."""
    connected(migd)
    chain(migd.migrations_dir, 1)
    env = clean_env({"MIGD_SOCKET": migd.socket, "TERM": "xterm"})
    master, slave = os.openpty()
    try:
        p = subprocess.Popen([MIGCTL_BIN, "downgrade", "nosuch"], stdout=slave,
                             stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env)
    finally:
        os.close(slave)
    err = p.communicate(timeout=20)[1].decode(errors="replace")
    os.close(master)
    assert p.returncode == X_FAILED, (p.returncode, err)
    assert "nosuch" in err, err
    assert "\x1b" not in err, "colour codes written to a non-terminal stderr: %r" % err


# ---- issue 13: a CLI that fits people's habits --------------------------------

COMMANDS = ["status", "current", "heads", "history", "plan", "upgrade", "downgrade",
            "cancel", "stamp", "resolve", "accept", "adopt", "schemas", "verify", "check",
            "reload", "version", "wait", "new", "merge", "import", "revisions", "lint",
            "help"]

# What `migctl CMD --help` lists (the options each command takes), as
# client/commands.c's command table allows them.
COMMAND_OPTIONS = {
    "status": {"--all", "--fresh"},
    "check": {"--all"},
    "verify": {"--all"},
    "cancel": {"--all"},
    "history": {"--limit"},
    "stamp": {"--purge"},
    "adopt": {"--from", "--table"},
    "plan": {"--atomic", "--no-atomic", "--allow-drift"},
    "upgrade": {"--dry-run", "--sql", "--atomic", "--no-atomic", "--allow-drift",
                "--apply-skipped", "--wait-daemon", "-d", "--dir", "--directory", "-c", "--config",
                "--all", "--parallel", "--canary", "--continue-on-error"},
    "downgrade": {"--dry-run", "--sql", "--atomic", "--no-atomic", "--allow-drift",
                  "-d", "--dir", "--directory", "-c", "--config"},
    "wait": {"--for", "--timeout"},
    "new": {"-m", "--message", "-d", "--dir", "--directory", "-c", "--config", "--head"},
    "merge": {"-m", "--message", "-d", "--dir", "--directory", "-c", "--config"},
    "revisions": {"-d", "--dir", "--directory", "-c", "--config"},
    "import": {"--out", "--allow-partial", "-c", "--config"},
    "lint": {"-d", "--dir", "--directory", "-c", "--config", "--format"},
}
GLOBAL_OPTIONS = {"-s", "--socket", "--db", "-j", "--json", "--stream", "--local", "-v",
                  "--verbose", "-h", "--help", "-V", "--version"}

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def section(text, title):
    """The lines of a help's section ("options:"), up to the next blank line."""
    if "\n%s\n" % title not in text:
        return []
    return text.split("\n%s\n" % title, 1)[1].split("\n\n", 1)[0].splitlines()


def help_options(text):
    """The options a help lists: {"-d", "--dir", "--directory", ...}."""
    out = set()
    for line in section(text, "options:") + section(
            text, "options, before or after the command (a value also as --name=VALUE):"):
        m = re.match(r"^  (?:(-[A-Za-z]), )?\s*(--[a-z][a-z-]*)", line)
        if m:
            out |= {x for x in m.groups() if x}
            assert m.group(1) or not re.match(r"^  -[A-Za-z]\s", line), line
        out |= set(re.findall(r"\(also (--[a-z-]+)\)", line))
    return out


def assert_short_usage_error(p, args):
    """Exit 2; on stderr at most 5 lines: the error, the synopsis, maybe a near
    miss, and where the help is; never the whole usage."""
    lines = p.stderr.splitlines()
    assert p.returncode == X_USAGE, (args, p.returncode, p.stdout, p.stderr)
    assert p.stdout == "", (args, p.stdout)
    assert 3 <= len(lines) <= 5, (args, p.stderr)
    assert lines[0].startswith("migctl: "), (args, p.stderr)
    assert lines[1].startswith("usage: migctl "), (args, p.stderr)
    assert re.fullmatch(r"see 'migctl help( [a-z]+)?'", lines[-1]), (args, p.stderr)
    assert "commands:" not in p.stderr and "exit codes" not in p.stderr, (args, p.stderr)


def test_help_for_every_command():
    """`migctl help`, `--help` and `-h`: the overview; `migctl help CMD`, `CMD
    --help`, `CMD -h`: the command's usage, arguments, options, examples and exit
    codes, on stdout, exit 0, no daemon needed."""
    p = migctl_local("help")
    assert p.returncode == X_OK and p.stderr == "", (p.returncode, p.stderr)
    overview = p.stdout
    listed = re.findall(r"^  ([a-z]+) +\S", "\n".join(section(overview, "commands:")), re.M)
    assert listed == COMMANDS, listed
    assert help_options(overview) == GLOBAL_OPTIONS, help_options(overview)
    for args in (["--help"], ["-h"]):
        p = migctl_local(*args)
        assert p.returncode == X_OK and p.stdout == overview, (args, p.stdout)
    for cmd in COMMANDS:
        runs = [migctl_local("help", cmd), migctl_local(cmd, "--help"),
                migctl_local(cmd, "-h"), migctl_local("--help", cmd)]
        for r in runs:
            assert r.returncode == X_OK and r.stderr == "", (cmd, r.args, r.stderr)
            assert r.stdout == runs[0].stdout, (cmd, r.args)
        text = runs[0].stdout
        assert text.startswith("usage: migctl %s" % cmd), text
        assert text != overview
        examples = section(text, "examples:")
        assert examples and all(x.startswith("  migctl ") for x in examples), text
        assert any(x.startswith("  migctl %s" % cmd) or " %s " % cmd in x for x in examples), text
        codes = [int(x.split()[0]) for x in section(text, "exit codes:") if re.match(r"^  \d ", x)]
        assert codes and codes[0] == 0 and codes == sorted(codes), (cmd, codes)
        if cmd != "help":
            assert 2 in codes, (cmd, codes)
        # what a deploy hook branches on: every command that asks migd can meet an
        # unreachable (3) or untrusted (7) listener, and one that names a database
        # fails (1) on a --db migd does not serve
        if cmd not in ("new", "merge", "import", "help"):
            assert 3 in codes and 7 in codes, (cmd, codes)
        if cmd not in ("new", "merge", "import", "help", "version"):
            assert 1 in codes, (cmd, codes)
        if cmd in ("stamp", "resolve", "accept", "downgrade", "history", "upgrade", "plan"):
            assert section(text, "arguments:"), (cmd, text)
        assert help_options(text) == COMMAND_OPTIONS.get(cmd, set()), (cmd, help_options(text))
    # the exit codes of plan and --dry-run say 4
    assert re.search(r"^  4  the plan cannot run", migctl_local("help", "plan").stdout, re.M)
    assert "4  --dry-run: the plan cannot run" in migctl_local("upgrade", "--help").stdout
    # an unknown command, to help
    p = migctl_local("help", "upgarde")
    assert_short_usage_error(p, ["help", "upgarde"])
    assert "did you mean 'upgrade'?" in p.stderr, p.stderr
    # --version is migctl's, whatever else is on the line
    p = migctl_local("status", "--version")
    assert p.returncode == X_OK and p.stdout.startswith("migctl "), p.stdout


NEAR_MISSES = [
    (["stauts"], "'status'"),
    (["upgarde", "head"], "'upgrade'"),
    (["histroy"], "'history'"),
    (["migrate"], "'upgrade'"),
    (["rollback", "-1"], "'downgrade'"),
    (["status", "--jsn"], "--json"),
    (["--sokcet", "/x", "status"], "--socket"),
    (["new", "-m", "x", "--mesage", "y"], "--message"),
    (["upgrade", "-dir", "x"], "--dir"),
    (["upgrade", "--dry_run"], "--dry-run"),
    (["wait", "--timout", "1"], "--timeout"),
    (["wait", "--for", "heads"], "'head'"),
    (["resolve", "r1", "aplied"], "'applied'"),
    (["status", "-c", "migd.conf"], "'--local -c CONFIG'"),
    # Alembic's words with no one word here: what to type instead
    (["show", "0001"], "'history REV' (what ran for it) or 'revisions' (the graph"),
    (["init"], "'new -m MESSAGE' (it creates the migrations directory)"),
    (["revision", "-m", "x"], "'new'"),
]


def test_usage_errors_are_short_and_name_the_near_miss(tmpdir_short):
    """A usage error: what was wrong, the command's synopsis, "did you mean" for
    a near miss, "see 'migctl help CMD'"; at most 5 lines, exit 2."""
    sock = os.path.join(tmpdir_short, "none.sock")
    for args in USAGE_CASES + [a for a, _ in NEAR_MISSES] + [["plan", "--dry-run"],
                                                             ["upgrade", "--dir", "d"],
                                                             ["--json=yes", "status"]]:
        p = migctl_at(sock, *args, env={"MIGD_MIGRATIONS": os.path.join(tmpdir_short, "m")})
        if args[:1] == ["--json=yes"]:
            assert p.returncode == X_USAGE and p.stderr == "", (p.returncode, p.stderr)
            continue
        assert_short_usage_error(p, args)
        # the synopsis is the command's own, once the command is known
        cmd = next((a for a in args if not a.startswith("-")), None)
        if cmd in COMMANDS:
            assert p.stderr.splitlines()[1].startswith("usage: migctl %s" % cmd), p.stderr
            assert p.stderr.splitlines()[-1] == "see 'migctl help %s'" % cmd, p.stderr
    for args, near in NEAR_MISSES:
        p = migctl_at(sock, *args)
        assert "did you mean %s" % near in p.stderr, (args, p.stderr)
    # nothing near: no guess
    p = migctl_at(sock, "frobnicate")
    assert "did you mean" not in p.stderr, p.stderr
    # with --json, the same as a JSON error object on stdout, nothing on stderr
    p = migctl_at(sock, "--json", "status", "--jsn")
    assert p.returncode == X_USAGE and p.stderr == "", (p.returncode, p.stderr)
    e = json.loads(p.stdout)["error"]
    assert e["data"]["kind"] == "usage" and e["data"]["did_you_mean"] == "--json", e
    assert e["data"]["usage"] == ["migctl status [--all]"] and e["data"]["help"] == "migctl help status", e
    assert e["message"] == "unknown option --jsn" and isinstance(e["code"], int), e


def test_long_options_and_value_forms(migd, tmpdir_short):
    """Every short option has a long form; every valued option takes `--opt
    value` and `--opt=value`; options stand before or after the command."""
    # from the helps: no short option without its long form
    for cmd in [None] + COMMANDS:
        text = migctl_local(*(["help"] + ([cmd] if cmd else []))).stdout
        shorts = re.findall(r"^  (-[A-Za-z])(, --[a-z]+)?", text, re.M)
        assert all(long for _, long in shorts), (cmd, shorts)
    connected(migd)
    chain(migd.migrations_dir, 3)
    assert migctl(migd, "upgrade").returncode == X_OK
    sock = migd.socket
    elsewhere = {"MIGD_SOCKET": "/nonexistent/migd.sock"}
    groups = [
        [["history", "--limit", "1"], ["history", "--limit=1"], ["--limit=1", "history"],
         ["--limit", "1", "history"]],
        [["-j", "current"], ["--json", "current"], ["current", "-j"], ["current", "--json"]],
        [["wait", "--for", "ready", "--timeout", "0"], ["wait", "--for=ready", "--timeout=0"],
         ["--timeout=0", "--for=ready", "wait"]],
        [["plan", "--no-atomic", "base"], ["--no-atomic", "plan", "base"]],
    ]
    for group in groups:
        outs = [migctl(migd, *args) for args in group]
        for args, p in zip(group, outs):
            assert p.returncode == X_OK, (args, p.returncode, p.stdout, p.stderr)
            assert p.stdout == outs[0].stdout, (args, p.stdout, outs[0].stdout)
    for args in (["-s", sock, "version"], ["--socket", sock, "version"],
                 ["--socket=" + sock, "version"], ["version", "--socket=" + sock],
                 ["version", "-s", sock]):
        p = migctl(migd, *args, env=elsewhere)
        assert p.returncode == X_OK and "0.1.0" in p.stdout, (args, p.returncode, p.stderr)
    # new: -m/--message, -d/--dir/--directory, each as VALUE or =VALUE
    d = os.path.join(tmpdir_short, "m")
    forms = [("one", ["new", "-m", "one", "-d", d]),
             ("two", ["new", "--message", "two", "--dir", d]),
             ("three", ["new", "--message=three", "--dir=" + d]),
             ("four", ["--directory=" + d, "new", "-m", "four"]),
             ("five", ["-d", d, "--message", "five", "new"]),
             ("six", ["new", "--directory", d, "-m", "six"])]
    parent = "none"
    for message, args in forms:
        p = migctl_local(*args)
        assert p.returncode == X_OK, (args, p.returncode, p.stderr)
        h = header(p.stdout.strip())
        assert os.path.dirname(p.stdout.strip()) == d, (args, p.stdout)
        assert h["down_revision"] == parent and h["message"] == message, (args, h)
        parent = h["revision"]
    assert len(os.listdir(d)) == len(forms)
    # -c/--config/--config=: the same files, the same graph
    sections = migdtest.default_sections("host=/nonexistent dbname=x", d,
                                         os.path.join(tmpdir_short, "s.sock"))
    cfg = os.path.join(tmpdir_short, "migd.conf")
    with open(cfg, "w") as f:
        f.write(migdtest.render_config(sections)[0])
    outs = [migctl_local(*args) for args in (["revisions", "-c", cfg], ["revisions", "--config", cfg],
                                             ["revisions", "--config=" + cfg],
                                             ["--config=" + cfg, "revisions"],
                                             ["revisions", "--dir=" + d])]
    assert all(p.returncode == X_OK for p in outs), [(p.returncode, p.stderr) for p in outs]
    assert len({p.stdout for p in outs}) == 1 and outs[0].stdout.count("\n") == len(forms)


def test_new_and_merge_choose_and_say_their_directory(tmpdir_short):
    """new/merge: -d, else $MIGD_MIGRATIONS, else -c's, else ./migrations when it
    exists, else the installed configuration's (else ./migrations, created);
    which one is said on stderr, or in the JSON document."""
    cwd = os.path.join(tmpdir_short, "checkout")
    here = os.path.join(cwd, "migrations")
    os.makedirs(here)
    env_dir = os.path.join(tmpdir_short, "env")
    opt_dir = os.path.join(tmpdir_short, "opt")
    cfg_dir = os.path.join(tmpdir_short, "cfg")
    os.mkdir(cfg_dir)
    sections = migdtest.default_sections("host=/nonexistent dbname=x", cfg_dir,
                                         os.path.join(tmpdir_short, "s.sock"))
    cfg = os.path.join(tmpdir_short, "migd.conf")
    with open(cfg, "w") as f:
        f.write(migdtest.render_config(sections)[0])

    def run(*args, env=None, json_too=True):
        p = migctl_local("new", "-m", "x", *args, env=env, cwd=cwd)
        assert p.returncode == X_OK, (args, p.returncode, p.stdout, p.stderr)
        assert p.stderr.count("\n") == 1 and p.stderr.startswith("migctl: directory "), p.stderr
        j = migctl_local("--json", "new", "-m", "y", *args, env=env, cwd=cwd)
        assert j.returncode == X_OK and j.stderr == "", (j.returncode, j.stderr)
        doc = json.loads(j.stdout)
        assert os.path.dirname(doc["path"]) == doc["directory"], doc
        return p.stdout.strip(), p.stderr.strip(), doc

    # ./migrations exists: it is used (the installed configuration's is not)
    path, said, doc = run()
    assert path.startswith("migrations/"), path
    assert said == "migctl: directory migrations (./migrations exists)", said
    assert doc["directory"] == "migrations" and doc["directory_from"] == "current_directory", doc
    # -c CONFIG is asked for: its directory, although ./migrations exists
    path, said, doc = run("-c", cfg)
    assert os.path.dirname(path) == cfg_dir, path
    assert said == "migctl: directory %s (from %s)" % (cfg_dir, cfg), said
    assert doc["directory_from"] == "config", doc
    # $MIGD_MIGRATIONS beats -c and ./migrations
    path, said, doc = run("-c", cfg, env={"MIGD_MIGRATIONS": env_dir})
    assert os.path.dirname(path) == env_dir, path
    assert said == "migctl: directory %s ($MIGD_MIGRATIONS)" % env_dir, said
    assert doc["directory_from"] == "environment", doc
    # -d beats them all
    path, said, doc = run("-d", opt_dir, "-c", cfg, env={"MIGD_MIGRATIONS": env_dir})
    assert os.path.dirname(path) == opt_dir, path
    assert said == "migctl: directory %s (-d)" % opt_dir, said
    assert doc["directory_from"] == "option", doc
    assert [len(os.listdir(x)) for x in (here, cfg_dir, env_dir, opt_dir)] == [2, 2, 2, 2]
    # merge chooses and says the same
    first = next(h["revision"] for h in (header(os.path.join(here, x)) for x in os.listdir(here))
                 if h["down_revision"] == "none")
    write_rev(here, "b1.sql", "b1", down=first, up="SELECT 1;")
    p = migctl_local("merge", "-m", "join", cwd=cwd)
    assert p.returncode == X_OK, (p.returncode, p.stderr)
    assert p.stderr == "migctl: directory migrations (./migrations exists)\n", p.stderr
    assert p.stdout.startswith("migrations/"), p.stdout
    # nothing at all: the installed configuration's, else ./migrations, created
    bare = os.path.join(tmpdir_short, "bare")
    os.mkdir(bare)
    p = migctl_local("--json", "new", "-m", "x", cwd=bare)
    doc = json.loads(p.stdout)
    assert doc.get("directory_from", doc.get("error", {}).get("data", {}).get("kind")) in \
        ("installed_config", "default", "io_error"), doc
    if p.returncode == X_OK and doc["directory_from"] == "default":
        assert os.path.isdir(os.path.join(bare, "migrations"))


def test_plan_and_dry_run_exit_4_when_the_plan_cannot_run(migd):
    """plan and upgrade/downgrade --dry-run exit 4 after "cannot run:"
    (runnable false), 0 when the plan can run, 1 when there is no plan."""
    connected(migd)
    paths = chain(migd.migrations_dir, 2)
    for args in (["plan"], ["upgrade", "--dry-run"]):
        p = migctl(migd, *args)
        assert p.returncode == X_OK and "cannot run" not in p.stdout, (args, p.stdout)
        assert jok(migd, *args)["runnable"] is True
    assert migctl(migd, "upgrade").returncode == X_OK
    # drift: an applied file changed; r3 is pending
    with open(paths[0]) as f:
        text = f.read()
    with open(paths[0], "w") as f:
        f.write(text.replace("(id int)", "(id bigint)"))
    write_rev(migd.migrations_dir, "r3_step.sql", "r3", down="r2", up="SELECT 1;",
              down_sql="SELECT 1;")
    for args in (["plan"], ["upgrade", "--dry-run"], ["plan", "base"],
                 ["downgrade", "-1", "--dry-run"]):
        p = migctl(migd, *args)
        assert p.returncode == X_CHECK, (args, p.returncode, p.stdout, p.stderr)
        assert "cannot run:" in p.stdout, (args, p.stdout)
        doc = jok(migd, *args, rc=X_CHECK)
        assert doc["runnable"] is False and doc["problems"], (args, doc)
    p = migctl(migd, "plan", "--allow-drift")
    assert p.returncode == X_OK, (p.returncode, p.stdout, p.stderr)
    assert versions(migd) == ["r2"]
    # the real run is refused: 1, as before
    jerr(migd, "upgrade", rc=X_FAILED, kind="checksum_mismatch")
    # no plan at all: 1, not 4
    jerr(migd, "plan", "nosuch", rc=X_FAILED, kind="plan_error")
    p = migctl(migd, "upgrade", "nosuch", "--dry-run")
    assert p.returncode == X_FAILED, (p.returncode, p.stdout, p.stderr)


def test_plan_exit_4_for_a_step_without_a_down_section(migd):
    connected(migd)
    write_rev(migd.migrations_dir, "r1_up_only.sql", "r1", up="CREATE TABLE public.u1 (id int);")
    assert migctl(migd, "upgrade").returncode == X_OK
    p = migctl(migd, "plan", "base")
    assert p.returncode == X_CHECK and "cannot run:" in p.stdout, (p.returncode, p.stdout)
    p = migctl(migd, "downgrade", "base", "--dry-run")
    assert p.returncode == X_CHECK and "dry run" in p.stdout, (p.returncode, p.stdout)
    assert versions(migd) == ["r1"]


def test_history_of_a_prefix_and_unknown_or_ambiguous_ids(migd):
    """history REV: a unique prefix works; an unknown id or a prefix of several is
    an error (exit 1) that migctl prints, never "no history yet"."""
    connected(migd)
    d = migd.migrations_dir
    write_rev(d, "a.sql", "abc123def456", up="CREATE TABLE public.h1 (id int);",
              down_sql="DROP TABLE public.h1;", message="first")
    write_rev(d, "b.sql", "abd000000000", down="abc123def456",
              up="CREATE TABLE public.h2 (id int);", down_sql="DROP TABLE public.h2;",
              message="second")
    assert migctl(migd, "upgrade").returncode == X_OK
    assert migctl(migd, "downgrade", "base").returncode == X_OK
    for rev in ("abc1", "abc123def456", "abc"):
        doc = jok(migd, "history", rev)
        got = [r["revision"] for r in doc["history"]]
        assert got == ["abc123def456", "abc123def456"], (rev, doc)
        p = migctl(migd, "history", rev)
        assert p.returncode == X_OK, (rev, p.returncode, p.stderr)
        assert "abc123def456" in p.stdout and "abd000000000" not in p.stdout, p.stdout
    p = migctl(migd, "history", "ab")
    assert p.returncode == X_FAILED and p.stdout == "", (p.returncode, p.stdout, p.stderr)
    assert "ambiguous" in p.stderr and "abc123def456" in p.stderr and \
        "abd000000000" in p.stderr, p.stderr
    e = jerr(migd, "history", "ab", rc=X_FAILED, kind="ambiguous_revision")
    assert "ab" in e["message"], e
    p = migctl(migd, "history", "zz99")
    assert p.returncode == X_FAILED and p.stdout == "", (p.returncode, p.stdout, p.stderr)
    assert "zz99" in p.stderr and "unknown" in p.stderr, p.stderr
    assert "no history yet" not in p.stderr
    jerr(migd, "history", "zz99", rc=X_FAILED, kind="unknown_revision")


def test_json_prints_json_only(migd, tmpdir_short):
    """--json: one JSON document on stdout and nothing on stderr, whatever
    happens; the exit codes are those without --json."""
    connected(migd)
    chain(migd.migrations_dir, 1)
    cases = [(["status"], X_OK), (["upgrade", "--dry-run"], X_OK),
             (["stamp", "nosuch"], X_FAILED), (["downgrade", "nosuch"], X_FAILED),
             (["wait", "--timeout", "0"], X_CHECK), (["check"], X_CHECK),
             (["status", "--bogus"], X_USAGE), (["bogus"], X_USAGE), (["downgrade"], X_USAGE),
             (["history", "--limit", "0"], X_USAGE), (["status", "-v"], X_USAGE)]
    for args, rc in cases:
        code, doc, p = jrun(migd, *args)        # jrun: stderr must be empty
        assert code == rc, (args, code, p.stdout)
        human = migctl(migd, *args)
        assert human.returncode == rc, (args, human.returncode)
        if rc in (X_FAILED, X_USAGE):
            assert set(doc) == {"error"}, (args, doc)
            assert doc["error"]["message"] in human.stderr, (args, doc, human.stderr)
    # no daemon
    p = migctl_at(os.path.join(tmpdir_short, "none.sock"), "--json", "status")
    assert p.returncode == X_UNREACHABLE and p.stderr == "", (p.returncode, p.stderr)
    assert json.loads(p.stdout)["error"]["data"]["kind"] == "unreachable"
    # the commands that need no daemon
    bad = os.path.join(tmpdir_short, "bad")
    empty = os.path.join(tmpdir_short, "empty")
    os.mkdir(bad)
    os.mkdir(empty)
    write_rev(bad, "x1.sql", "x1", down="nosuch", up="SELECT 1;")
    write_rev(bad, "x2.sql", "x2", down="nosuch2", up="SELECT 1;")
    for args, rc, kind in ((["new", "-m", "x", "-d", bad], X_FAILED, "invalid_migrations"),
                           (["revisions", "-d", bad], X_FAILED, "invalid_migrations"),
                           (["merge", "-m", "x", "-d", empty], X_FAILED, "plan_error"),
                           (["new", "-d", bad], X_USAGE, "usage"),
                           (["new", "-m", "two\nlines", "-d", bad], X_USAGE, "usage")):
        p = migctl_local("--json", *args)
        assert p.returncode == rc and p.stderr == "", (args, p.returncode, p.stderr)
        e = json.loads(p.stdout)["error"]
        assert e["data"]["kind"] == kind and isinstance(e["code"], int), (args, e)
        if kind == "invalid_migrations":
            assert len(e["data"]["errors"]) >= 2, e
            human = migctl_local(*args)
            for x in e["data"]["errors"]:
                assert human.stderr.count(x) == 1, (x, human.stderr)
    # --local: a migd that cannot start, its log in the error
    cfg = os.path.join(tmpdir_short, "broken.conf")
    with open(cfg, "w") as f:
        f.write("[database]\nno_such_setting = 1\n")
    p = migctl_local("--json", "--local", "-c", cfg, "status",
                     env={"MIGD_BIN": migdtest.MIGD_BIN, "TMPDIR": tmpdir_short})
    assert p.returncode == X_FAILED and p.stderr == "", (p.returncode, p.stdout, p.stderr)
    e = json.loads(p.stdout)["error"]
    assert e["data"]["kind"] == "local_failed" and cfg in e["data"]["log"], e


def test_file_problems_listed_once_without_pointer(migd):
    """A message that points to its list ("and more: see data.errors") is
    replaced by the list for people: each problem once."""
    connected(migd)
    write_rev(migd.migrations_dir, "r1_bad.sql", "r1", up="CREATE TABLE (;")
    write_rev(migd.migrations_dir, "r2_bad.sql", "r2", down="nosuch", up="SELECT 1;")
    e = jerr(migd, "upgrade", rc=X_FAILED, kind="invalid_migrations")
    assert len(e["data"]["errors"]) >= 2, e
    for args in (["upgrade"], ["plan"]):
        p = migctl(migd, *args)
        assert p.returncode == X_FAILED, (args, p.returncode, p.stderr)
        assert "see data." not in p.stderr and "and more" not in p.stderr, p.stderr
        assert p.stderr.startswith("migctl: "), p.stderr
        for x in e["data"]["errors"]:
            assert p.stderr.count(x) == 1, (x, p.stderr)


PLURAL_RE = re.compile(r"\b1 (revisions|migrations|connections|heads|statements|transactions|"
                       r"problems|runs|rows|arguments)\b|\b([02-9]|\d\d+) (revision|migration|"
                       r"connection|statement|transaction|problem)\b(?! \d)")


def test_plural_agreement(migd_factory):
    m = connected(migd_factory(overrides={("database", "pool_size"): "1"}))
    chain(m.migrations_dir, 1)
    outs = []

    def run(*args, rc=X_OK):
        p = migctl(m, *args)
        assert p.returncode == rc, (args, p.returncode, p.stdout, p.stderr)
        outs.append(p.stdout + p.stderr)
        return p.stdout

    out = run("status")
    assert "1 connection," in out and "(1 revision, head r1)" in out, out
    assert "reloaded: 1 revision, head r1" in run("reload")
    assert "1 migration," in run("plan") and "1 statement," in outs[-1]
    assert "1 migration in" in run("upgrade")
    chain(m.migrations_dir, 3, prefix="s")      # a second root: two heads
    out = run("status")
    assert "(4 revisions, heads r1, s3)" in out, out
    assert "3 migrations," in run("plan", "heads")
    assert "3 migrations in" in run("upgrade", "heads")
    for o in outs:
        assert not PLURAL_RE.search(o), o


def assert_column(lines, header, title, values):
    """Every row has one of values where header has title."""
    at = header.index(title)
    for line in lines:
        assert line[at - 1] == " " and line[at:].startswith(values), (title, header, line)


def test_columns_fit_wide_revision_ids(migd):
    """history, heads, current and plan keep their columns with ids longer than
    14 characters (up to Alembic's 32)."""
    connected(migd)
    long_id = "2024_01_15_add_customer_emails"       # 30 characters
    d = migd.migrations_dir
    write_rev(d, "r1.sql", "r1", up="CREATE TABLE public.w1 (id int);",
              down_sql="DROP TABLE public.w1;", message="short")
    write_rev(d, "long.sql", long_id, down="r1", up="CREATE TABLE public.w2 (id int);",
              down_sql="DROP TABLE public.w2;", message="long")
    for args in (["upgrade"], ["downgrade", "-1"], ["upgrade"]):
        assert migctl(migd, *args).returncode == X_OK
    p = migctl(migd, "history")
    assert p.returncode == X_OK, p.stderr
    header, rows = p.stdout.splitlines()[0], p.stdout.splitlines()[1:]
    assert len(rows) == 4, p.stdout
    assert_column(rows, header, "REVISION", ("r1 ", long_id + " "))
    assert_column(rows, header, "RESULT", ("ok ",))
    assert_column(rows, header, "BY", (rows[0][header.index("BY"):],))
    end = header.index("DURATION") + len("DURATION")
    for r in rows:
        assert r[:end].endswith(("ms", " s")) and r[end] == " ", (header, r)
    assert_column(rows, header, "ACTION", ("up ", "down "))
    # heads and plan
    p = migctl(migd, "heads")
    lines = p.stdout.splitlines()
    assert_column(lines[1:], lines[0], "APPLIED", ("yes", "no"))
    p = migctl(migd, "plan", "base")
    steps = [x for x in p.stdout.splitlines() if re.match(r"^\s+\d+\. ", x)]
    assert len(steps) == 2, p.stdout
    assert len({x.index(" long") if long_id in x else x.index(" short") for x in steps}) == 1, steps


def test_json_durations_are_rounded(migd):
    """Durations in JSON have at most 3 decimals, never a binary fraction's
    noise (0.40200000000000002)."""
    connected(migd)
    chain(migd.migrations_dir, 3)
    texts = []
    for args in (["upgrade"], ["history"], ["status"], ["--stream", "downgrade", "base"],
                 ["--stream", "upgrade"]):
        p = migctl(migd, "--json", *args)
        assert p.returncode == X_OK and p.stderr == "", (args, p.returncode, p.stderr)
        texts.append(p.stdout)
    reals = re.findall(r'"duration_ms":\s*(-?[0-9][0-9.eE+-]*)', "".join(texts))
    assert len(reals) >= 12, texts
    for t in texts:
        for x in re.findall(r'[:\[,]\s*(-?\d+\.\d+(?:[eE][-+]?\d+)?)\b', t):
            assert re.fullmatch(r"-?\d+\.\d{1,3}", x), (x, t[:2000])


def complete(*words):
    """What the bash completion offers after `migctl WORDS` (the last word being
    typed), sourced from contrib/bash-completion/migctl."""
    path = os.path.join(REPO, "contrib", "bash-completion", "migctl")
    script = ('source %s\nCOMP_WORDS=(migctl %s)\nCOMP_CWORD=%d\n_migctl\n'
              'printf "%%s\\n" "${COMPREPLY[@]}"\n'
              % (shlex.quote(path), " ".join(shlex.quote(w) for w in words), len(words)))
    p = subprocess.run(["bash", "--norc", "--noprofile", "-c", script], capture_output=True,
                       text=True, timeout=10, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stderr
    return {x for x in p.stdout.splitlines() if x}


def test_bash_completion_knows_every_command_and_option():
    if not shutil.which("bash"):
        pytest.skip("no bash")
    assert complete("") == set(COMMANDS)
    assert complete("--local", "-c", "x", "") == set(COMMANDS)
    common = {"-s", "--socket", "--db", "-j", "--json", "--stream", "-h", "--help"}
    for cmd in COMMANDS:
        offered = {w for w in complete(cmd, "-") if not re.fullmatch(r"-\d+", w)}
        want = help_options(migctl_local("help", cmd).stdout)
        assert want == COMMAND_OPTIONS.get(cmd, set())
        assert want <= offered, (cmd, want - offered)
        assert offered - want <= common, (cmd, offered - want)
    assert complete("-") >= GLOBAL_OPTIONS - {"-v", "--verbose"}
    assert {"-c", "--config", "-v", "--verbose"} <= complete("--local", "status", "-")
    assert complete("wait", "--for", "") == {"head", "ready"}
    assert complete("wait", "--for", "=", "r") == {"ready"}
    assert complete("help", "up") == {"upgrade"}
    assert complete("resolve", "r1", "") == {"applied", "unapplied"}
    assert complete("new", "--dir", "/nonexistent-") == set()
    assert complete("import", "") == {"alembic"}
    assert complete("adopt", "--from", "g") == {"golang-migrate", "goose"}
    assert complete("lint", "--format", "m") == {"migd"}
    # an option's value is not the command: --format's and --table's too
    assert complete("--format", "goose", "") == set(COMMANDS)
    assert complete("adopt", "--table", "t", "--f") == {"--from"}


def test_man_page_renders_and_names_every_command_and_option():
    page = os.path.join(REPO, "docs", "migctl.1")
    if shutil.which("groff"):
        p = subprocess.run(["groff", "-man", "-ww", "-z", page], capture_output=True,
                           text=True, timeout=30)
        assert p.returncode == 0 and p.stderr == "", p.stderr
    if not shutil.which("man"):
        pytest.skip("no man")
    p = subprocess.run(["man", "-l", page], capture_output=True, text=True, timeout=30,
                       env=dict(clean_env(), MANWIDTH="80", MAN_KEEP_FORMATTING="",
                                LANG="C.UTF-8"))
    assert p.returncode == 0 and p.stderr == "", p.stderr
    text = " ".join(re.sub("\u2010\n\\s*", "", p.stdout).split())
    for cmd in COMMANDS:
        assert re.search(r"\b%s\b" % cmd, text), cmd
    for opt in GLOBAL_OPTIONS.union(*COMMAND_OPTIONS.values()):
        assert opt in text, opt
    assert "plan or --dry-run found that the plan cannot run" in text
    readme = open(os.path.join(REPO, "README.md")).read()
    row = next(x for x in readme.splitlines() if x.startswith("| 4 |"))
    assert "plan" in row and "--dry-run" in row, row
