"""Authorization (issue 4, item 5): peer credentials on every connection,
read-only methods for read_group (and admins), mutating methods for admin_group,
root and migd's own user; the socket's mode and group; the requester recorded
in the history. Refusals are proven with a second uid (setpriv), so these tests
need root; as root they always run.
"""

import grp
import json
import os
import pwd
import stat
import subprocess
import time

import pytest

import migdtest
from migdtest import MIGCTL_BIN, MIGD_BIN, clean_env
from cli_helpers import (X_OK, X_UNREACHABLE, X_CHECK, X_FORBIDDEN,
                         chain, history, migctl, versions)

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0,
    reason="authorization tests switch to a second uid with setpriv, which needs root "
           "(CI runs them as root)")

# Names of this run only: other test runs on the machine may create and delete
# users and groups of their own at the same time.
USER = "migdt2_%d" % os.getpid()
ADMIN = "migdadm_%d" % os.getpid()
READ = "migdread_%d" % os.getpid()

READ_ONLY = [["status"], ["current"], ["heads"], ["history"], ["plan"], ["schemas"],
             ["verify"], ["version"], ["revisions"], ["lint"]]
MUTATING = [["upgrade"], ["upgrade", "--dry-run"], ["downgrade", "base"],
            ["stamp", "head"], ["resolve", "r1", "applied"], ["accept", "r1"], ["adopt"],
            ["reload"]]


def _sh(*cmd, check=True):
    p = subprocess.run(list(cmd), capture_output=True, text=True, timeout=30)
    if check and p.returncode != 0:
        raise RuntimeError("%s failed: %s %s" % (" ".join(cmd), p.stdout, p.stderr))
    return p


class Ident:
    """The second user and the two groups, created for this module."""

    def __init__(self):
        self.made_groups = []
        self.made_user = False
        for g in (ADMIN, READ):
            try:
                grp.getgrnam(g)
            except KeyError:
                _sh("groupadd", "--system", g)
                self.made_groups.append(g)
        try:
            pwd.getpwnam(USER)
        except KeyError:
            _sh("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                "-N", "-g", "nogroup", USER)
            self.made_user = True
        pw = pwd.getpwnam(USER)
        self.uid, self.gid = pw.pw_uid, pw.pw_gid
        for g in (ADMIN, READ):
            self.leave(g)

    def gid_of(self, group):
        return grp.getgrnam(group).gr_gid

    def join(self, group):
        _sh("gpasswd", "-a", USER, group)
        assert USER in grp.getgrnam(group).gr_mem

    def leave(self, group):
        if USER in grp.getgrnam(group).gr_mem:
            _sh("gpasswd", "-d", USER, group)

    def cleanup(self):
        for g in (ADMIN, READ):
            try:
                self.leave(g)
            except (KeyError, RuntimeError):
                pass
        if self.made_user:
            _sh("userdel", USER, check=False)
        for g in self.made_groups:
            _sh("groupdel", g, check=False)


@pytest.fixture(scope="module")
def ident():
    for tool in ("setpriv", "useradd", "groupadd", "gpasswd"):
        assert subprocess.run(["which", tool], capture_output=True).returncode == 0, \
            "%s is needed to run the authorization tests as root" % tool
    i = Ident()
    yield i
    i.cleanup()


def as_user(ident, m, *args, init_groups=False, regid=None, uid=None, env=None):
    """Run migctl against m as the second user (or uid), without root's groups."""
    cmd = ["setpriv", "--reuid=%d" % (ident.uid if uid is None else uid),
           "--regid=%d" % (ident.gid if regid is None else regid),
           "--init-groups" if init_groups else "--clear-groups", MIGCTL_BIN] + list(args)
    e = clean_env({"MIGD_SOCKET": m.socket})
    if env:
        e.update(env)
    return subprocess.run(cmd, env=e, capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL)


def as_user_json(ident, m, *args, **kw):
    p = as_user(ident, m, "--json", *args, **kw)
    try:
        doc = json.loads(p.stdout)
    except ValueError:
        raise AssertionError("not JSON: %r (stderr %r)" % (p.stdout, p.stderr))
    return p, doc


def daemon(migd_factory, mode, admin="", read="", start=True, **kw):
    """A migd whose socket directory the second user may traverse."""
    m = migd_factory(overrides={("control", "socket_mode"): mode,
                                ("control", "admin_group"): admin,
                                ("control", "read_group"): read}, start=False, **kw)
    os.chmod(m.dir, 0o711)
    chain(m.migrations_dir, 2)
    if start:
        m.start()
        m.wait_connected(True, timeout=10)
    return m


def assert_forbidden(ident, m, args, **kw):
    p = as_user(ident, m, *args, **kw)
    assert p.returncode == X_FORBIDDEN, (args, p.returncode, p.stdout, p.stderr)
    assert "not allowed" in p.stderr and USER in p.stderr, (args, p.stderr)
    p, doc = as_user_json(ident, m, *args, **kw)
    assert p.returncode == X_FORBIDDEN, (args, p.returncode, p.stdout, p.stderr)
    assert doc["error"]["data"]["kind"] == "forbidden", doc
    assert doc["error"]["code"] == -32003, doc
    assert p.stderr == "", p.stderr         # --json: nothing for people


def test_open_socket_everyone_reads_nobody_else_mutates(ident, migd_factory):
    m = daemon(migd_factory, "0666")
    assert stat.S_IMODE(os.stat(m.socket).st_mode) == 0o666
    for args in READ_ONLY:
        p = as_user(ident, m, *args)
        assert p.returncode == X_OK, (args, p.returncode, p.stdout, p.stderr)
    for args in (["check"], ["wait", "--timeout", "0"]):
        p = as_user(ident, m, *args)
        assert p.returncode == X_CHECK, (args, p.returncode, p.stdout, p.stderr)
    p, doc = as_user_json(ident, m, "status")
    assert p.returncode == X_OK and doc["state"] == "pending", doc
    for args in MUTATING:
        assert_forbidden(ident, m, args)
    assert versions(m) is None, "a refused request touched the database"
    log = m.log()
    for method in ("upgrade", "downgrade", "stamp", "resolve", "accept", "adopt", "reload"):
        assert "%s refused to %s (uid %d" % (method, USER, ident.uid) in log, log[-3000:]
    # root may
    p = migctl(m, "upgrade")
    assert p.returncode == X_OK, (p.returncode, p.stdout, p.stderr)
    rows = history(m)
    assert rows and all(r["requested_by"] == "root" and r["requester_uid"] == 0
                        for r in rows), rows


def test_read_group_only_members_read(ident, migd_factory):
    m = daemon(migd_factory, "0666", read=READ)
    for args in (["status"], ["version"], ["history"], ["plan"], ["check"], ["verify"],
                 ["revisions"], ["lint"]):
        assert_forbidden(ident, m, args)
    # wait: refused at once, not after its timeout, and not taken for "unreachable"
    for args in (["wait", "--timeout", "5"], ["wait", "--for", "ready", "--timeout", "5"]):
        t0 = time.monotonic()
        p = as_user(ident, m, *args)
        assert p.returncode == X_FORBIDDEN, (args, p.returncode, p.stdout, p.stderr)
        assert "not allowed" in p.stderr, p.stderr
        assert time.monotonic() - t0 < 3
    assert "status refused to %s" % USER in m.log()
    ident.join(READ)
    try:
        for args in READ_ONLY:
            p = as_user(ident, m, *args)
            assert p.returncode == X_OK, (args, p.returncode, p.stdout, p.stderr)
        for args in MUTATING:
            assert_forbidden(ident, m, args)
    finally:
        ident.leave(READ)
    assert_forbidden(ident, m, ["status"])
    # the peer's own (primary) gid counts as membership too
    p = as_user(ident, m, "status", regid=ident.gid_of(READ))
    assert p.returncode == X_OK, (p.returncode, p.stdout, p.stderr)
    assert versions(m) is None


def test_json_wait_refused_prints_error(ident, migd_factory):
    m = daemon(migd_factory, "0666", read=READ)
    p, doc = as_user_json(ident, m, "wait", "--timeout", "0")
    assert p.returncode == X_FORBIDDEN, (p.returncode, p.stdout, p.stderr)
    assert doc["error"]["data"]["kind"] == "forbidden", doc


def test_admin_group_member_upgrades_and_is_recorded(ident, migd_factory):
    m = daemon(migd_factory, "0666", admin=ADMIN, read=READ)
    assert_forbidden(ident, m, ["upgrade"])
    assert_forbidden(ident, m, ["status"])
    ident.join(ADMIN)
    try:
        # admins read too, without being in read_group
        p = as_user(ident, m, "status")
        assert p.returncode == X_OK, (p.returncode, p.stdout, p.stderr)
        p = as_user(ident, m, "upgrade", "+1")
        assert p.returncode == X_OK, (p.returncode, p.stdout, p.stderr)
        p, doc = as_user_json(ident, m, "upgrade")
        assert p.returncode == X_OK, (p.returncode, p.stdout, p.stderr)
        assert doc["to"] == ["r2"], doc
        p = as_user(ident, m, "stamp", "r1")
        assert p.returncode == X_OK, (p.returncode, p.stdout, p.stderr)
        p = as_user(ident, m, "stamp", "r2")
        assert p.returncode == X_OK, (p.returncode, p.stdout, p.stderr)
        p, hist = as_user_json(ident, m, "history")
        assert p.returncode == X_OK, (p.stdout, p.stderr)
    finally:
        ident.leave(ADMIN)
    assert versions(m) == ["r2"]
    rows = history(m)
    assert [r["revision"] for r in rows if r["direction"] == "up"] == ["r1", "r2"], rows
    assert len(rows) == 4, rows         # and the two stamps
    for r in rows:
        assert r["requested_by"] == USER, r
        assert r["requester_uid"] == ident.uid, r
        assert isinstance(r["requester_pid"], int) and r["requester_pid"] > 0, r
    assert {h["requested_by"] for h in hist["history"]} == {USER}, hist
    assert {h["requester_uid"] for h in hist["history"]} == {ident.uid}, hist
    # membership is looked up on every connection: out of the group, out of rights
    assert_forbidden(ident, m, ["downgrade", "base"])
    assert versions(m) == ["r2"]


def test_requester_pid_and_unknown_uid(ident, migd_factory):
    """The history's requester_pid is the client's pid; a uid with no passwd entry
    is named by its number, may read on an open socket and may not mutate."""
    m = daemon(migd_factory, "0666", admin=ADMIN)
    ident.join(ADMIN)
    try:
        e = clean_env({"MIGD_SOCKET": m.socket})
        p = subprocess.Popen(["setpriv", "--reuid=%d" % ident.uid, "--regid=%d" % ident.gid,
                              "--clear-groups", MIGCTL_BIN, "upgrade", "+1"], env=e,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = p.communicate(timeout=30)
        assert p.returncode == X_OK, (p.returncode, out, err)
    finally:
        ident.leave(ADMIN)
    rows = history(m)
    assert len(rows) == 1 and rows[0]["revision"] == "r1", rows
    assert rows[0]["requester_pid"] == p.pid, (rows[0], p.pid)   # setpriv execs migctl
    assert rows[0]["requested_by"] == USER and rows[0]["requester_uid"] == ident.uid
    ghost = 54000 + os.getpid() % 1000
    while True:
        try:
            pwd.getpwuid(ghost)
            ghost += 1
        except KeyError:
            break
    p = as_user(ident, m, "status", uid=ghost, regid=ghost)
    assert p.returncode == X_OK, (p.returncode, p.stdout, p.stderr)
    p = as_user(ident, m, "upgrade", uid=ghost, regid=ghost)
    assert p.returncode == X_FORBIDDEN, (p.returncode, p.stdout, p.stderr)
    assert str(ghost) in p.stderr, p.stderr
    assert versions(m) == ["r1"]


def test_reload_changes_admin_group(ident, migd_factory):
    m = daemon(migd_factory, "0666")
    ident.join(ADMIN)
    try:
        assert_forbidden(ident, m, ["upgrade"])
        m.write_config({("control", "admin_group"): ADMIN})
        p = migctl(m, "reload")
        assert p.returncode == X_OK, (p.returncode, p.stdout, p.stderr)
        p = as_user(ident, m, "upgrade")
        assert p.returncode == X_OK, (p.returncode, p.stdout, p.stderr)
    finally:
        ident.leave(ADMIN)
    assert versions(m) == ["r2"]


def test_socket_mode_and_group(ident, migd_factory):
    m = daemon(migd_factory, "0640", admin=ADMIN, read=READ)
    st = os.stat(m.socket)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o640, oct(st.st_mode)
    assert st.st_gid == ident.gid_of(READ), (st.st_gid, ident.gid_of(READ))
    m2 = daemon(migd_factory, "0660", admin=ADMIN)
    st = os.stat(m2.socket)
    assert stat.S_IMODE(st.st_mode) == 0o660, oct(st.st_mode)
    assert st.st_gid == ident.gid_of(ADMIN), (st.st_gid, ident.gid_of(ADMIN))
    # 0660 and group read_group: a member opens it, a stranger cannot
    m3 = daemon(migd_factory, "0660", read=READ)
    st = os.stat(m3.socket)
    assert stat.S_IMODE(st.st_mode) == 0o660 and st.st_gid == ident.gid_of(READ)
    p = as_user(ident, m3, "status")
    assert p.returncode == X_UNREACHABLE, (p.returncode, p.stdout, p.stderr)
    assert "Permission denied" in p.stderr, p.stderr
    ident.join(READ)
    try:
        p = as_user(ident, m3, "status", init_groups=True)
        assert p.returncode == X_OK, (p.returncode, p.stdout, p.stderr)
        assert_forbidden(ident, m3, ["upgrade"], init_groups=True)
    finally:
        ident.leave(READ)


def test_socket_0600_other_user_cannot_connect(ident, migd_factory):
    m = daemon(migd_factory, "0600")
    assert stat.S_IMODE(os.stat(m.socket).st_mode) == 0o600
    for args in (["status"], ["upgrade"]):
        p = as_user(ident, m, *args)
        assert p.returncode == X_UNREACHABLE, (args, p.returncode, p.stdout, p.stderr)
        assert "Permission denied" in p.stderr, p.stderr
    p = as_user(ident, m, "wait", "--timeout", "0")
    assert p.returncode == X_UNREACHABLE, (p.returncode, p.stdout, p.stderr)
    assert migctl(m, "status").returncode == X_OK       # root still can
    assert versions(m) is None


def test_daemon_user_is_admin(ident, migd_factory, monkeypatch):
    """migd's own user may mutate without any group (here migd runs as the second
    user; nobody, a third uid, may not)."""
    wrapper = os.path.join(migdtest.short_tempdir("migdwrap-"), "migd-as-user")
    os.chmod(os.path.dirname(wrapper), 0o755)
    with open(wrapper, "w") as f:
        f.write("#!/bin/sh\nexec setpriv --reuid=%d --regid=%d --clear-groups %s \"$@\"\n"
                % (ident.uid, ident.gid, MIGD_BIN))
    os.chmod(wrapper, 0o755)
    monkeypatch.setattr(migdtest, "MIGD_BIN", wrapper)
    try:
        m = daemon(migd_factory, "0666", start=False)
        os.chown(m.dir, ident.uid, ident.gid)
        os.chmod(m.config_path, 0o644)
        m.start()
        nobody = pwd.getpwnam("nobody")
        # (this migd cannot reach PostgreSQL's socket directory: reload is the
        # mutating method that needs no database)
        # the daemon's own user may
        p = as_user(ident, m, "reload")
        assert p.returncode == X_OK, (p.returncode, p.stdout, p.stderr)
        # root may
        p = migctl(m, "reload")
        assert p.returncode == X_OK, (p.returncode, p.stdout, p.stderr)
        # a third uid may not, but may read
        for args in (["reload"], ["upgrade"]):
            p = as_user(ident, m, *args, uid=nobody.pw_uid, regid=nobody.pw_gid)
            assert p.returncode == X_FORBIDDEN, (args, p.returncode, p.stdout, p.stderr)
        p = as_user(ident, m, "status", uid=nobody.pw_uid, regid=nobody.pw_gid)
        assert p.returncode == X_OK, (p.returncode, p.stdout, p.stderr)
        assert "upgrade refused to nobody" in m.log()
    finally:
        import shutil
        shutil.rmtree(os.path.dirname(wrapper), ignore_errors=True)


def test_all_forms_are_authorized_as_their_method(ident, migd_factory):
    """status/check/verify --all are read-only, upgrade --all (and cancel of a rollout)
    mutating: the fleet forms are authorized as the method, before anything fans out."""
    m = daemon(migd_factory, "0666")
    p, doc = as_user_json(ident, m, "status", "--all")
    assert p.returncode == X_OK, (p.returncode, p.stdout, p.stderr)
    assert [d["state"] for d in doc["databases"]] == ["pending"], doc
    for args in (["check", "--all"], ["verify", "--all"]):
        p = as_user(ident, m, *args)
        assert p.returncode in (X_OK, X_CHECK), (args, p.returncode, p.stdout, p.stderr)
    assert_forbidden(ident, m, ["upgrade", "--all"])
    assert_forbidden(ident, m, ["upgrade", "--all", "--parallel", "2", "--continue-on-error"])
    assert versions(m) is None, "a refused rollout touched the database"
    assert "upgrade refused to %s (uid %d" % (USER, ident.uid) in m.log()
    # root may: the single database is the whole fleet
    p = migctl(m, "upgrade", "--all")
    assert p.returncode == X_OK, (p.returncode, p.stdout, p.stderr)
    assert versions(m) == ["r2"], versions(m)
