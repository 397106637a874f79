"""Hardening (issue 9), the control socket and migctl's side: connections
kept for admins (F16), migctl checking who listens on the socket (F17), plan
SQL only for readers who could read the file (F19), control characters
escaped in migctl's text output (F27), and a daemon unlinking only its own
socket (F28).

A second uid is needed (a reader, an impostor): these tests run as root and
switch to `nobody` with setpriv, as test_auth.py does.
"""

import json
import os
import pty
import pwd
import re
import select
import shutil
import stat
import subprocess
import sys
import time

import pytest

import migdtest
from migdtest import MIGCTL_BIN, Conn, assert_error, clean_env
from cli_helpers import (X_OK, X_FAILED, X_CHECK, X_BUSY, chain, migctl, migctl_at,
                         write_rev)

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0,
    reason="these tests switch to a second uid with setpriv, which needs root "
           "(CI runs them as root)")

X_UNTRUSTED = 7
NOBODY = pwd.getpwnam("nobody")


def as_nobody(*cmd, gid=None):
    """The argv running cmd as nobody, without root's groups."""
    return ["setpriv", "--reuid=%d" % NOBODY.pw_uid,
            "--regid=%d" % (NOBODY.pw_gid if gid is None else gid),
            "--clear-groups"] + list(cmd)


def migctl_as_nobody(m, *args, gid=None, env=None):
    e = clean_env({"MIGD_SOCKET": m.socket})
    if env:
        e.update(env)
    return subprocess.run(as_nobody(MIGCTL_BIN, *args, gid=gid), env=e,
                          capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL)


def at_socket(migd_factory, path, overrides=None, start=True):
    """A migd listening on path (not in its own directory)."""
    o = {("control", "socket"): path}
    o.update(overrides or {})
    m = migd_factory(overrides=o, start=False)
    m.socket = path
    if start:
        m.start()
    return m


def open_daemon(migd_factory, overrides=None, start=True):
    """A migd whose socket everyone may open (mode 0666, directory 0711)."""
    o = {("control", "socket_mode"): "0666"}
    o.update(overrides or {})
    m = migd_factory(overrides=o, start=False)
    os.chmod(m.dir, 0o711)
    if start:
        m.start()
        m.wait_connected(True, timeout=10)
    return m


# ---- F16: a reserve of connections for admins ------------------------------

# Run as nobody: opens N connections, asks status on each, prints what each got
# (ok or the error's kind and message), then holds them until stdin closes.
HOLDER = r"""
import json, socket, sys
path, n = sys.argv[1], int(sys.argv[2])
held, got = [], []
for i in range(n):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    try:
        s.sendall(b'{"jsonrpc":"2.0","id":1,"method":"status"}\n')
    except OSError:
        pass
    buf = b""
    while b"\n" not in buf:
        try:
            d = s.recv(65536)
        except ConnectionResetError:
            d = b""
        if not d:
            break
        buf += d
    r = json.loads(buf.split(b"\n")[0])
    if "result" in r:
        got.append(["ok", ""])
    else:
        got.append([r["error"]["data"]["kind"], r["error"]["message"]])
    held.append(s)
print(json.dumps(got), flush=True)
sys.stdin.read()
"""


def hold(m, n):
    """A reader (nobody) holding n connections: (process, what each got)."""
    p = subprocess.Popen(as_nobody(sys.executable, "-c", HOLDER, m.socket, str(n)),
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=clean_env())
    r, _, _ = select.select([p.stdout], [], [], 30)
    assert r, "the holder did not report within 30 s"
    line = p.stdout.readline()
    assert line, p.stderr.read()
    return p, json.loads(line)


def release(p):
    p.stdin.close()
    p.wait(10)


def test_readers_holding_every_connection_cannot_lock_admins_out(migd_factory):
    # the default admin_reserve: 4
    m = open_daemon(migd_factory, {("control", "max_clients"): "8"})
    time.sleep(0.5)     # the harness's own connections are gone
    p, got = hold(m, 8)
    try:
        kinds = [k for k, _ in got]
        # four for readers; the last four are kept for admins
        assert kinds == ["ok"] * 4 + ["too_many_clients"] * 4, got
        assert "admin_reserve" in got[-1][1], got
        # an admin's migctl still works
        r = migctl(m, "status")
        assert r.returncode == X_OK, (r.returncode, r.stdout, r.stderr)
        # a reader's migctl is refused, and says why (exit 5)
        r = migctl_as_nobody(m, "status")
        assert r.returncode == X_BUSY, (r.returncode, r.stdout, r.stderr)
        assert "too many clients" in r.stderr and "admin_reserve" in r.stderr, r.stderr
        # admins have the reserve, and max_clients still bounds them
        admins = [Conn(m.socket) for _ in range(4)]
        try:
            for a in admins:
                assert "result" in a.call("version")
            with Conn(m.socket) as c:
                assert_error(c.call("version"), -32002, "too_many_clients", None)
        finally:
            for a in admins:
                a.close()
    finally:
        release(p)
    assert "the last 4 of max_clients 8 are kept for admins" in m.log()
    # the slots are free again once the reader left
    migdtest.wait_for(lambda: migctl_as_nobody(m, "status").returncode == X_OK, 10,
                      what="the reader's slots to be freed")


def test_admin_reserve_setting(tmp_path, migd_factory):
    m = migd_factory(start=False)
    # the default, shown by migd -n
    r = migdtest.run_migd(["-n", "-c", m.config_path])
    assert r.returncode == 0, r.stderr
    assert "max_clients = 64\nadmin_reserve = 4\n" in r.stdout, r.stdout
    # the default shrinks to leave readers one connection
    m.write_config({("control", "max_clients"): "3"})
    r = migdtest.run_migd(["-n", "-c", m.config_path])
    assert r.returncode == 0, r.stderr
    assert "admin_reserve = 2\n" in r.stdout, r.stdout
    # a value that leaves readers nothing is refused, naming its line
    m.write_config({("control", "max_clients"): "4", ("control", "admin_reserve"): "4"})
    r = migdtest.run_migd(["-n", "-c", m.config_path])
    assert r.returncode != 0, r.stdout
    assert "%s:%d: admin_reserve (4) must be less than max_clients (4)" % (
        m.config_path, m.line_of("control", "admin_reserve")) in r.stderr, r.stderr
    for bad in ("-1", "x", "10000"):
        m.write_config({("control", "admin_reserve"): bad})
        r = migdtest.run_migd(["-n", "-c", m.config_path])
        assert r.returncode != 0 and "admin_reserve" in r.stderr, (bad, r.stderr)
    # 0: no reserve, as before
    m.write_config({("control", "max_clients"): "4", ("control", "admin_reserve"): "0"})
    r = migdtest.run_migd(["-n", "-c", m.config_path])
    assert r.returncode == 0 and "admin_reserve = 0\n" in r.stdout, r.stderr


def test_admin_reserve_zero_lets_readers_take_every_connection(migd_factory):
    m = open_daemon(migd_factory, {("control", "max_clients"): "4",
                                   ("control", "admin_reserve"): "0"})
    time.sleep(0.5)
    p, got = hold(m, 5)
    try:
        assert [k for k, _ in got] == ["ok"] * 4 + ["too_many_clients"], got
        r = migctl(m, "status")
        assert r.returncode == X_BUSY, (r.returncode, r.stdout, r.stderr)
    finally:
        release(p)


# ---- F17: migctl checks who listens on the socket ---------------------------

# Run as another user: listens on a path, records every byte any client sends
# to a file, and answers each line with a status that says all is well.
IMPOSTOR = r"""
import json, os, socket, sys
path, record = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
os.chmod(path, 0o666)
s.listen(16)
print("listening", flush=True)
answer = {"jsonrpc": "2.0", "id": 1, "result": {
    "state": "up_to_date", "running": False, "pending": 0, "current": [],
    "daemon": {"version": "0.1.0", "pid": os.getpid(), "uptime": 1.0},
    "database": {"connected": True}, "migrations": {}}}
while True:
    c, _ = s.accept()
    c.settimeout(2)
    try:
        data = c.recv(65536)
    except OSError:
        data = b""
    with open(record, "ab") as f:
        f.write(data)
    if data:
        c.sendall((json.dumps(answer) + "\n").encode())
    c.close()
"""


@pytest.fixture
def shared_dir():
    """A world-writable (sticky, as /tmp) directory, as a careless setup has."""
    d = migdtest.short_tempdir("migdshr-")
    os.chmod(d, 0o1777)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def impostor(shared_dir):
    """Another user (nobody) listening on <shared_dir>/migd.sock."""
    path = os.path.join(shared_dir, "migd.sock")
    record = os.path.join(shared_dir, "received")
    p = subprocess.Popen(as_nobody(sys.executable, "-c", IMPOSTOR, path, record),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=clean_env())
    r, _, _ = select.select([p.stdout], [], [], 10)
    assert r and p.stdout.readline() == "listening\n", p.stderr.read()
    assert os.stat(path).st_uid == NOBODY.pw_uid

    def received():
        try:
            with open(record, "rb") as f:
                return f.read()
        except FileNotFoundError:
            return b""
    yield path, received
    p.kill()
    p.wait()


def test_migctl_refuses_a_socket_taken_by_another_user(impostor, migd_factory):
    path, received = impostor
    for args in (["check"], ["status"], ["upgrade"], ["wait", "--timeout", "5"]):
        t0 = time.monotonic()
        r = migctl_at(path, *args)
        assert r.returncode == X_UNTRUSTED, (args, r.returncode, r.stdout, r.stderr)
        assert time.monotonic() - t0 < 3, args      # wait does not retry it
        assert ("refusing to talk to %s" % path) in r.stderr, r.stderr
        assert "runs as nobody (uid %d)" % NOBODY.pw_uid in r.stderr, r.stderr
        assert "MIGD_DAEMON_USER=nobody" in r.stderr, r.stderr
        assert r.stdout == "", r.stdout
    r = migctl_at(path, "--json", "check")
    assert r.returncode == X_UNTRUSTED, (r.returncode, r.stdout, r.stderr)
    err = json.loads(r.stdout)["error"]
    assert err["data"]["kind"] == "untrusted_daemon", err
    assert err["data"]["uid"] == NOBODY.pw_uid and err["data"]["user"] == "nobody", err
    assert r.stderr == ""
    # nothing at all was sent to it
    assert received() == b"", received()
    # a real migd refuses to start there (the path is taken) ...
    m = at_socket(migd_factory, path, start=False)
    m.start(wait=False)
    assert m.wait_exit(10) != 0
    assert re.search(r"another migd \(pid \d+\) is already listening on %s"
                     % re.escape(path), m.log()), m.log()
    # ... and the impostor fools a migctl told to trust its user: what 0.1.0 did
    r = migctl_at(path, "check", env={"MIGD_DAEMON_USER": "nobody"})
    assert r.returncode == X_OK, (r.returncode, r.stdout, r.stderr)
    assert b'"method":"status"' in received()
    r = migctl_at(path, "check", env={"MIGD_DAEMON_USER": str(NOBODY.pw_uid)})
    assert r.returncode == X_OK, (r.returncode, r.stdout, r.stderr)
    r = migctl_at(path, "check", env={"MIGD_DAEMON_USER": "no-such-user-x"})
    assert r.returncode == 2 and "MIGD_DAEMON_USER" in r.stderr, r.stderr


def test_migctl_trusts_the_owner_of_a_private_socket_directory(impostor, migd_factory):
    """The same listener in a directory nobody owns and no one else can write:
    only nobody (or root) could have made it, so it is migd's user."""
    path, received = impostor
    own = migdtest.short_tempdir("migdown-")
    try:
        os.chown(own, NOBODY.pw_uid, NOBODY.pw_gid)
        os.chmod(own, 0o755)
        moved = os.path.join(own, "migd.sock")
        os.rename(path, moved)
        r = migctl_at(moved, "check")
        assert r.returncode == X_OK, (r.returncode, r.stdout, r.stderr)
        # group- or world-writable: no longer proof
        for mode in (0o775, 0o757):
            os.chmod(own, mode)
            r = migctl_at(moved, "check")
            assert r.returncode == X_UNTRUSTED, (oct(mode), r.returncode, r.stderr)
        os.chmod(own, 0o755)
        # an ancestor another user owns: no longer proof either
        inner = os.path.join(own, "sub")
        os.mkdir(inner)
        os.chown(inner, NOBODY.pw_uid, NOBODY.pw_gid)
        os.chown(own, 1, 1)     # daemon, a third uid
        os.rename(moved, os.path.join(inner, "migd.sock"))
        r = migctl_at(os.path.join(inner, "migd.sock"), "check")
        assert r.returncode == X_UNTRUSTED, (r.returncode, r.stderr)
    finally:
        shutil.rmtree(own, ignore_errors=True)


def test_migd_warns_about_a_socket_directory_others_can_write(shared_dir,
                                                                migd_factory):
    for mode, words in ((0o1777, "writable by other users (mode 1777): one of them "
                                 "can take the path while migd is stopped"),
                        (0o777, "writable by other users and not sticky (mode "
                                "0777): one of them can replace the socket")):
        os.chmod(shared_dir, mode)
        path = os.path.join(shared_dir, "m%o.sock" % mode)
        m = at_socket(migd_factory, path, {("control", "socket_mode"): "0666"})
        assert ("the socket's directory %s is %s" % (shared_dir, words)) in m.log(), \
            m.log()
        # root's daemon: root's and a reader's migctl talk to it
        r = migctl(m, "status")
        assert r.returncode == X_OK, (r.returncode, r.stderr)
        r = migctl_as_nobody(m, "status")
        assert r.returncode == X_OK, (r.returncode, r.stderr)
        m.stop()
    # a private directory: no warning
    m = migd_factory()
    assert "socket's directory" not in m.log(), m.log()


# ---- F19: plan SQL only for readers who could read the file -----------------

def test_plan_hides_the_sql_of_files_a_reader_cannot_read(migd_factory):
    m = open_daemon(migd_factory, start=False)
    write_rev(m.migrations_dir, "r1_public.sql", "r1", up="CREATE TABLE public.p (id int);",
              message="public")
    secret = write_rev(m.migrations_dir, "r2_role.sql", "r2", down="r1",
                       up="CREATE ROLE r2_role LOGIN PASSWORD 'sekrit-9';",
                       message="a role")
    os.chmod(secret, 0o600)
    m.start()
    m.wait_connected(True, timeout=10)

    def plan_as_nobody(**kw):
        r = migctl_as_nobody(m, "--json", "plan", **kw)
        assert r.returncode == X_OK, (r.returncode, r.stdout, r.stderr)
        return r.stdout, {s["revision"]: s for s in json.loads(r.stdout)["steps"]}

    out, steps = plan_as_nobody()
    assert "sekrit-9" not in out, out
    assert steps["r1"]["sql"] == "CREATE TABLE public.p (id int);\n", steps["r1"]
    assert "sql_hidden" not in steps["r1"], steps["r1"]
    assert steps["r2"]["sql"] is None, steps["r2"]
    assert steps["r2"]["sql_hidden"] == ("file not readable by uid %d (mode 0600, owner "
                                         "uid 0)" % NOBODY.pw_uid), steps["r2"]
    # the rest of the step is there
    assert steps["r2"]["statements"] == 1 and steps["r2"]["message"] == "a role"
    # the text output says nothing of it either
    r = migctl_as_nobody(m, "plan")
    assert r.returncode == X_OK and "sekrit" not in r.stdout + r.stderr, r.stdout
    # admins always see it
    r = migctl(m, "--json", "plan")
    steps_root = {s["revision"]: s for s in json.loads(r.stdout)["steps"]}
    assert "PASSWORD 'sekrit-9'" in steps_root["r2"]["sql"], steps_root["r2"]
    assert "sql_hidden" not in steps_root["r2"]
    # readable by the reader's group: shown
    os.chown(secret, 0, NOBODY.pw_gid)
    os.chmod(secret, 0o640)
    out, steps = plan_as_nobody()
    assert "PASSWORD 'sekrit-9'" in steps["r2"]["sql"], steps["r2"]
    # the group class decides even when "other" could read (as the kernel does)
    os.chmod(secret, 0o604)
    out, steps = plan_as_nobody()
    assert steps["r2"]["sql"] is None and "sekrit" not in out, steps["r2"]
    os.chmod(secret, 0o644)
    out, steps = plan_as_nobody()
    assert "sekrit-9" in steps["r2"]["sql"]
    # a directory the reader cannot search hides every file below it
    os.chmod(m.migrations_dir, 0o700)
    out, steps = plan_as_nobody()
    assert "sekrit" not in out and "CREATE TABLE" not in out, out
    for rev in ("r1", "r2"):
        assert steps[rev]["sql"] is None, steps[rev]
        assert steps[rev]["sql_hidden"] == "directory %s is not searchable by uid %d" % (
            os.path.realpath(m.migrations_dir), NOBODY.pw_uid), steps[rev]
    # nothing ran or changed
    r = migctl(m, "--json", "status")
    assert json.loads(r.stdout)["pending"] == 2


# ---- F27: control characters escaped in migctl's text output ----------------

EVIL = "evil \x1b[2J\x07 \x9b31m msg"
EVIL_SHOWN = "evil \\x1b[2J\\x07 \\u009b31m msg"


def assert_escaped(texts, needle=EVIL_SHOWN):
    """needle is shown, and no raw control byte (ESC, BEL, C1 CSI) is printed."""
    whole = "".join(texts)
    assert needle in whole, whole[-3000:]
    for raw in ("\x1b", "\x07", "\x9b", "\r"):
        assert raw not in whole, (raw, whole[-3000:])


def test_control_characters_are_escaped_in_text_output(migd_factory):
    m = migd_factory(start=False)
    write_rev(m.migrations_dir, "r1_evil.sql", "r1", up="CREATE TABLE public.e1 (id int);",
              message=EVIL)
    write_rev(m.migrations_dir, "r2_fail.sql", "r2", down="r1",
              up="DO $$ BEGIN RAISE EXCEPTION E'boom \\x1b[31m\\x07 red' "
                 "USING DETAIL = E'line one\\nline two \\x1b]0;title\\x07', "
                 "HINT = E'tab\\there \\r over'; END $$;",
              message="fails")
    m.start()
    m.wait_connected(True, timeout=10)
    for args in (["plan"], ["revisions"]):
        r = migctl(m, *args)
        assert r.returncode == X_OK, (args, r.returncode, r.stderr)
        assert_escaped([r.stdout, r.stderr])
    # a run: the progress line (message), then the error (from PostgreSQL)
    r = migctl(m, "upgrade")
    assert r.returncode == X_FAILED, (r.returncode, r.stdout, r.stderr)
    assert_escaped([r.stdout, r.stderr])
    assert_escaped([r.stderr], "boom \\x1b[31m\\x07 red")
    # multi-line fields keep their newline and tab, never a carriage return
    assert "line one\n" in r.stderr and "line two \\x1b]0;title\\x07" in r.stderr, r.stderr
    assert "tab\there \\r over" in r.stderr, r.stderr
    for args in (["current"], ["history"]):
        r = migctl(m, *args)
        assert r.returncode == X_OK, (args, r.returncode, r.stderr)
        assert_escaped([r.stdout, r.stderr],
                       "boom \\x1b[31m\\x07 red" if args == ["history"] else EVIL_SHOWN)
    # JSON is exact: jansson escapes it, the reader decodes the same text
    r = migctl(m, "--json", "revisions")
    msgs = {v["revision"]: v["message"] for v in json.loads(r.stdout)["revisions"]}
    assert msgs["r1"] == EVIL, msgs
    assert "\x1b" not in r.stdout        # \u001b on the wire
    # status shows a problem of the files (a file name is text from a
    # repository too): escaped as well
    with open(os.path.join(m.migrations_dir, "r3_\x1b[2J\x07.sql"), "w") as f:
        f.write("-- revision: r3\n-- down_revision: r2\n-- message: bad\n\n"
                "-- migrate:up\nSELECT 1 +;\n")
    errors = migd_wait_status_errors(m)
    assert "r3_\x1b[2J\x07.sql" in errors[0], errors
    r = migctl(m, "status")
    assert r.returncode == X_OK, (r.returncode, r.stderr)
    assert_escaped([r.stdout, r.stderr], "r3_\\x1b[2J\\x07.sql")


def migd_wait_status_errors(m):
    return migdtest.wait_for(
        lambda: m.status()["migrations"].get("errors"), 10,
        what="status to report the broken file")


def test_offline_sql_is_exact_to_a_pipe_and_escaped_on_a_terminal(tmp_path):
    d = tmp_path / "migrations"
    d.mkdir()
    write_rev(str(d), "r1_evil.sql", "r1", message=EVIL,
              up="INSERT INTO t VALUES (E'\x1b[2J', '\x07');")
    r = subprocess.run([MIGCTL_BIN, "upgrade", "--sql", "-d", str(d)], env=clean_env(),
                       capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
    assert r.returncode == X_OK, r.stderr
    # to a file or a pipe: byte for byte, what psql must receive
    assert b"INSERT INTO t VALUES (E'\x1b[2J', '\x07');" in r.stdout, r.stdout
    # on a terminal: shown, not obeyed
    master, slave = pty.openpty()
    p = subprocess.Popen([MIGCTL_BIN, "upgrade", "--sql", "-d", str(d)], env=clean_env(),
                         stdout=slave, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:         # EIO: the other side closed
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    assert p.wait(30) == X_OK, p.stderr.read()
    text = out.decode()
    assert "INSERT INTO t VALUES (E'\\x1b[2J', '\\x07');" in text, text
    assert "\x1b" not in text and "\x07" not in text, text
    # revisions from the files
    r = subprocess.run([MIGCTL_BIN, "revisions", "-d", str(d)], env=clean_env(),
                       capture_output=True, text=True, timeout=30,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == X_OK, r.stderr
    assert_escaped([r.stdout, r.stderr])
    # migctl's own words about a file quote its name: escaped too
    os.rename(str(d / "r1_evil.sql"), str(d / "r1_\x1b[2J.sql"))
    r = subprocess.run([MIGCTL_BIN, "downgrade", "--sql", "r1:base", "-d", str(d)],
                       env=clean_env(), capture_output=True, text=True, timeout=30,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == X_FAILED, (r.returncode, r.stderr)
    assert "r1_\\x1b[2J.sql: revision r1 has no '-- migrate:down' section" in r.stderr, \
        r.stderr
    assert "\x1b" not in r.stderr + r.stdout, r.stderr


# ---- F28: a daemon unlinks only the socket it made --------------------------

def test_an_exiting_daemon_leaves_a_newer_daemons_socket(migd_factory):
    a = migd_factory()
    ino_a = os.stat(a.socket).st_ino
    # A's socket is removed (by hand, or by a careless script) and B takes the path
    os.unlink(a.socket)
    b = at_socket(migd_factory, a.socket)
    assert os.stat(a.socket).st_ino != ino_a
    assert a.proc.poll() is None, "A is still running"
    assert a.stop() == 0
    assert "%s is no longer the socket this migd made: left in place" % a.socket \
        in a.log(), a.log()
    assert stat.S_ISSOCK(os.stat(a.socket).st_mode), "A removed B's socket"
    pid_b = b.status()["daemon"]["pid"]
    assert pid_b == b.proc.pid
    r = migctl_at(a.socket, "status")
    assert r.returncode == X_OK, (r.returncode, r.stderr)
    # B removes its own at exit
    assert b.stop() == 0
    assert not os.path.exists(a.socket)


def test_an_exiting_daemon_leaves_a_file_put_in_its_place(migd_factory):
    a = migd_factory()
    os.unlink(a.socket)
    with open(a.socket, "w") as f:
        f.write("not a socket\n")
    assert a.stop() == 0
    with open(a.socket) as f:
        assert f.read() == "not a socket\n"
