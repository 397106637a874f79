"""Hostile clients and hostile configuration (issue 5, items 7 and 8).

Protocol abuse: while one client misbehaves, a second one keeps asking `status`
(over a connection it opened before, and over fresh ones) and every answer must
come within a bound; afterwards migd is alive and its log shows no crash.

Security: the conninfo password never shows, the socket gets its mode, hostile
identifiers in the configuration are quoted, and files or directories writable
by other users are refused.
"""

import json
import os
import random
import resource
import signal
import socket
import stat
import threading
import time

import pytest

import migdtest
from migdtest import assert_error, assert_result, request, wait_for
from engine_helpers import (E_MIGRATIONS, call, connected, err, ok, q, rel_exists,
                            schema_exists, step_revs, versions, write_rev)
from reliability_helpers import (StatusProber, assert_alive, raw_socket, rss_kb)

BOUND = 2.0     # seconds within which every status must be answered


@pytest.fixture
def target(migd_factory):
    """A connected migd with a one-revision migration, the target of the abuse."""
    m = connected(migd_factory())
    write_rev(m, "a1_first.sql", "a1", up="CREATE TABLE public.a1_t (id int);",
              down_sql="DROP TABLE public.a1_t;")
    return m


def usable(conn, id=777):
    """The connection still answers a good request."""
    assert assert_result(conn.call("version", id=id), id)["name"] == "migd"


# ---- 7. protocol abuse -----------------------------------------------------------

BAD_UTF8 = [
    b'{"jsonrpc":"2.0","id":1,"method":"status\xff"}',              # invalid byte
    b'{"jsonrpc":"2.0","id":1,"method":"\xc0\xafstatus"}',          # overlong "/"
    b'{"jsonrpc":"2.0","id":1,"method":"status","params":{"\xed\xa0\x80":1}}',  # surrogate
    b'{"jsonrpc":"2.0","id":"\xe2\x82","method":"status"}',         # truncated sequence
    b'{"jsonrpc":"2.0","id":1,"method":"status","x":"\xf4\x90\x80\x80"}',  # > U+10FFFF
    b'\xfe\xff{"jsonrpc":"2.0","id":1,"method":"status"}',          # stray BOM bytes
    b'{"jsonrpc":"2.0","id":1,"method":"st\x00atus"}',              # raw NUL
]


def test_invalid_utf8(target):
    prober = StatusProber(target, BOUND)
    with target.connect() as c:
        for i, line in enumerate(BAD_UTF8):
            c.send(line + b"\n")
            r = c.recv()
            assert_error(r, -32700, "parse_error", None)
            usable(c, id=100 + i)
    prober.check()
    assert_alive(target)


NOT_OBJECTS = ["[]", "[1,2,3]", '"status"', "42", "-1.5e300", "null", "true", "false",
               '[{"jsonrpc":"2.0","id":1,"method":"status"}]']


def test_json_that_is_not_an_object(target):
    prober = StatusProber(target, BOUND)
    with target.connect() as c:
        for i, line in enumerate(NOT_OBJECTS):
            c.send(line + "\n")
            assert_error(c.recv(), -32600, "invalid_request", None)
            usable(c, id=200 + i)
    prober.check()
    assert_alive(target)


def test_deeply_nested_json(migd_factory):
    # a limit large enough that the nesting reaches the JSON parser
    m = connected(migd_factory(overrides={("control", "max_request_bytes"): "4194304"}))
    prober = StatusProber(m, BOUND)
    n = 100000
    lines = [
        "[" * n + "]" * n,
        '{"a":' * n + "1" + "}" * n,
        '{"jsonrpc":"2.0","id":5,"method":"status","params":{"x":' + "[" * n + "]" * n + "}}",
        '{"jsonrpc":"2.0","id":6,"method":"status","params":{"x":' + "[" * n,  # unclosed
    ]
    with m.connect(timeout=10) as c:
        for i, line in enumerate(lines):
            c.send(line + "\n")
            r = c.recv(10)
            assert "error" in r and r["error"]["code"] in (-32700, -32600, -32602), \
                (i, str(r)[:300])
            assert isinstance(r["error"]["message"], str) and r["error"]["message"], r
            usable(c, id=300 + i)
    # at the default limit the same line is simply too large
    with migd_factory().connect(timeout=10) as c:
        c.send(lines[0] + "\n")
        assert_error(c.recv(10), -32001, "request_too_large", None)
        c.expect_eof(5)
    prober.check()
    assert_alive(m)


def test_ten_megabyte_line(target_lean):
    target = target_lean
    prober = StatusProber(target, BOUND)
    base = rss_kb(target.proc.pid)
    s = raw_socket(target.socket, timeout=10)
    sent = [0]

    def flood():
        chunk = b'{"jsonrpc":"2.0","id":1,"method":"status","params":{"x":"' + \
            b"A" * (1 << 20)
        try:
            for _ in range(10):
                s.sendall(chunk)
                sent[0] += len(chunk)
            s.sendall(b'"}}\n')
        except OSError:        # migd closed after the error: expected
            pass
    t = threading.Thread(target=flood, daemon=True)
    t.start()
    buf = b""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            break
        buf += chunk
    t.join(15)
    s.close()
    lines = [l for l in buf.split(b"\n") if l]
    assert len(lines) == 1, buf[:500]
    assert_error(json.loads(lines[0]), -32001, "request_too_large", None)
    grown = rss_kb(target.proc.pid) - base
    assert grown < 16 * 1024, "migd grew by %d kB reading a 10 MB line" % grown
    prober.check()
    assert_alive(target)


def test_line_without_newline_held_open(migd_factory):
    m = connected(migd_factory(overrides={("control", "idle_timeout"): "2"}))
    prober = StatusProber(m, BOUND)
    with m.connect(timeout=10) as held:
        held.send('{"jsonrpc":"2.0","id":1,"method":"sta')
        t0 = time.monotonic()
        # others are served meanwhile (the prober), and the held one is cut off
        # after about idle_timeout
        line = held.readline(10)
        if line is not None:
            r = json.loads(line)
            assert "error" in r, r
            held.expect_eof(5)
        took = time.monotonic() - t0
        assert 1.5 < took < 6.0, took
    prober.check()
    assert_alive(m)


def raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        want = n if hard == resource.RLIM_INFINITY else min(n, hard)
        if want < n and os.geteuid() == 0:
            want = n
            hard = max(hard, n)
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def test_thousand_simultaneous_connections(migd_factory):
    assert raise_nofile(4096) >= 1100, "cannot raise RLIMIT_NOFILE for 1000 sockets"
    maxc = 64
    m = connected(migd_factory(overrides={("control", "max_clients"): str(maxc)}))
    # the prober holds its slot from before the flood (a fresh connection would
    # rightly be refused while all slots are taken)
    prober = StatusProber(m, BOUND, fresh=False)
    socks = []
    try:
        for _ in range(1000):
            socks.append(raw_socket(m.socket, timeout=10))
        served, refused = [], []
        for s in socks:
            try:
                s.sendall(b'{"jsonrpc":"2.0","id":1,"method":"version"}\n')
            except OSError:     # refused and closed already: read the refusal below
                pass
        for s in socks:
            s.settimeout(10)
            buf = b""
            while b"\n" not in buf:
                try:
                    d = s.recv(4096)
                except ConnectionResetError:
                    d = b""
                if not d:
                    break
                buf += d
            r = json.loads(buf.split(b"\n")[0])
            if "result" in r:
                served.append(s)
            else:
                assert_error(r, -32002, "too_many_clients", None)
                refused.append(s)
        # the prober holds one slot; a client of the harness that just left may
        # still hold one for a moment
        assert maxc - 3 <= len(served) <= maxc - 1, (len(served), len(refused))
        assert len(served) + len(refused) == 1000
        # the refused ones are closed
        for s in refused[:50]:
            s.settimeout(5)
            rest = b""
            while True:
                try:
                    d = s.recv(4096)
                except ConnectionResetError:
                    d = b""
                if not d:
                    break
                rest += d
            assert rest.count(b"\n") <= 1, rest
    finally:
        for s in socks:
            s.close()
    prober.check()
    # the slots are free again
    wait_for(lambda: "result" in m.rpc("version", id=3), 5, what="a slot free again")
    with m.connect() as c:
        assert "daemon" in assert_result(c.call("status", id=4), 4)
    assert_alive(m)
    n_fd = len(os.listdir("/proc/%d/fd" % m.proc.pid))
    assert n_fd < 64, "migd keeps %d fds open after the clients left" % n_fd


@pytest.fixture
def small_quarantine(monkeypatch):
    """Under AddressSanitizer, freed memory sits in a quarantine of up to 256 MB,
    so the RSS of a daemon that merely churns through requests grows without any
    leak. Shrink it for the daemons of this test so RSS means what it says."""
    old = os.environ.get("ASAN_OPTIONS", "")
    monkeypatch.setenv("ASAN_OPTIONS", (old + ":" if old else "") +
                       "quarantine_size_mb=1:thread_local_quarantine_size_kb=64")


@pytest.fixture
def target_lean(small_quarantine, migd_factory):
    m = connected(migd_factory())
    return m


def test_client_that_never_reads_replies(target_lean):
    """200k status requests written, no reply read: migd stops reading that client
    once its replies back up (1 MiB), so its memory stays bounded and everyone
    else is served."""
    target = target_lean
    prober = StatusProber(target, BOUND)
    pid = target.proc.pid
    base = rss_kb(pid)
    s = raw_socket(target.socket)
    s.setblocking(False)
    payload = b"".join(b'{"jsonrpc":"2.0","id":%d,"method":"status"}\n' % i
                       for i in range(200000))
    off = 0
    peak = base
    deadline = time.monotonic() + 15
    stalled_since = None
    while off < len(payload) and time.monotonic() < deadline:
        try:
            off += s.send(payload[off:off + 65536])
            stalled_since = None
        except BlockingIOError:
            if stalled_since is None:
                stalled_since = time.monotonic()
            elif time.monotonic() - stalled_since > 3:
                break          # migd stopped reading us: as designed
            time.sleep(0.02)
        peak = max(peak, rss_kb(pid))
    for _ in range(10):      # and while we still do not read
        peak = max(peak, rss_kb(pid))
        time.sleep(0.1)
    assert off < len(payload), "migd read all 200k requests of a client that reads " \
        "no replies: the replies must be buffered somewhere"
    grown = peak - base
    print("never-reads: wrote %d bytes; RSS %d kB -> peak %d kB" % (off, base, peak))
    assert peak < 64 * 1024 and grown < 32 * 1024, \
        "migd grew by %d MB for one client that does not read (%d bytes written)" \
        % (grown // 1024, off)
    # others are served meanwhile
    prober.check(min_answers=5)
    assert_alive(target)
    # the replies that are there come in order, and reading unblocks the client
    s.setblocking(True)
    s.settimeout(10)
    c = migdtest.Conn.__new__(migdtest.Conn)
    c.sock, c.buf, c.eof, c.timeout = s, b"", False, 10
    for i in range(50):
        r = c.recv(10)
        assert r.get("id") == i and "result" in r, r
    c.close()
    assert_alive(target)


def test_half_closed_sockets(target):
    prober = StatusProber(target, BOUND)
    # one request, then shutdown(SHUT_WR): the reply still comes, then EOF
    c = target.connect()
    c.send(request("status", id=1))
    c.sock.shutdown(socket.SHUT_WR)
    assert "daemon" in assert_result(c.recv(), 1)
    c.expect_eof(5)
    c.close()
    # pipelined, the last one without its newline
    c = target.connect()
    c.send(json.dumps(request("version", id=1)) + "\n" + json.dumps(request("status", id=2))
           + "\n" + json.dumps(request("version", id=3)))
    c.sock.shutdown(socket.SHUT_WR)
    assert [c.recv()["id"] for _ in range(3)] == [1, 2, 3]
    c.expect_eof(5)
    c.close()
    # garbage, then half-close: a parse error, then EOF
    c = target.connect()
    c.send(b"\x00\x01garbage")
    c.sock.shutdown(socket.SHUT_WR)
    assert_error(c.recv(), -32700, "parse_error", None)
    c.expect_eof(5)
    c.close()
    # a long request (an upgrade) after which the client half-closes is not
    # abandoned: it runs to the end and the client gets progress and the result
    write_rev(target, "a2_slow.sql", "a2", down="a1",
              up="SELECT pg_sleep(1) AS half_closed_slow;\nCREATE TABLE public.a2_t (id int);")
    c = target.connect(timeout=20)
    c.send(request("upgrade", {}, id=9))
    c.sock.shutdown(socket.SHUT_WR)
    while True:
        msg = c.recv(20)
        if "id" in msg:
            break
        assert msg.get("method") == "progress", msg
    assert step_revs(assert_result(msg, 9)) == ["a1", "a2"]
    c.expect_eof(5)
    c.close()
    assert versions(target) == ["a2"]
    prober.check()
    assert_alive(target)


def test_garbage_bytes(target):
    prober = StatusProber(target, BOUND)
    rnd = random.Random(20260505)
    replies = []
    for conn_no in range(20):
        s = raw_socket(target.socket, timeout=5)
        got = [b""]

        def drain(sock=s, out=got):
            while True:
                try:
                    d = sock.recv(65536)
                except OSError:
                    return
                if not d:
                    return
                out[0] += d
        t = threading.Thread(target=drain, daemon=True)
        t.start()
        try:
            for _ in range(rnd.randrange(1, 40)):
                n = rnd.choice([1, 7, 100, 1000, 5000, 70000])
                data = rnd.randbytes(n)
                if rnd.random() < 0.5:
                    data += b"\n"
                s.sendall(data)
            if rnd.random() < 0.5:
                s.shutdown(socket.SHUT_WR)
        except OSError:
            pass                       # closed for a too large line: fine
        time.sleep(0.05)
        try:
            s.shutdown(socket.SHUT_RDWR)     # wakes the drain thread's recv
        except OSError:
            pass
        t.join(5)
        s.close()
        replies.append(got[0])
    # everything migd said was a JSON-RPC error line
    kinds = set()
    for raw in replies:
        for line in raw.split(b"\n"):
            if line.strip():
                r = json.loads(line)
                assert "error" in r and r["error"]["data"]["kind"] in (
                    "parse_error", "invalid_request", "request_too_large"), r
                kinds.add(r["error"]["data"]["kind"])
    assert "parse_error" in kinds, kinds
    # random bytes with no newline at all, past max_request_bytes (64 KiB)
    with target.connect(timeout=10) as c:
        c.send(rnd.randbytes(200000).replace(b"\n", b"."))
        assert_error(c.recv(10), -32001, "request_too_large", None)
        c.expect_eof(5)
    prober.check()
    assert_alive(target)
    # and it still works for real
    assert step_revs(ok(target, "upgrade", {})) == ["a1"]


# ---- 8. security -----------------------------------------------------------------

GOOD_PW = "Right-Pw-3x7q"
WRONG_PW = "Wr0ngPw-SeCrEt-91z"


def password_cluster(cluster):
    """Password authentication on the cluster for role migduser (postgres keeps
    trust, so the harness's psql still works)."""
    cluster.psql("SET password_encryption = 'scram-sha-256'; "
                 "CREATE ROLE migduser LOGIN SUPERUSER PASSWORD '%s'" % GOOD_PW)
    hba = os.path.join(cluster.data, "pg_hba.conf")
    with open(hba, "w") as f:      # truncates in place: the owner stays postgres
        f.write("local all postgres trust\n"
                "local all all scram-sha-256\n"
                "local replication all trust\n")
    cluster.psql("SELECT pg_reload_conf()")
    wait_for(lambda: cluster.psql(
        "SELECT count(*) FROM pg_hba_file_rules WHERE auth_method = 'scram-sha-256'")
        == "1", 5, what="pg_hba.conf reloaded")


def no_secret(where, text):
    for pw in (WRONG_PW, GOOD_PW):
        assert pw not in text, "password shown in %s:\n%s" % (where, text[-3000:])


def test_password_never_shown(migd_factory, own_pg, make_db):
    password_cluster(own_pg)
    db = make_db(own_pg)
    forms = {
        "keyword": "host=%s port=%d dbname=%s user=migduser password=%s"
                   % (own_pg.sockdir, own_pg.port, db, WRONG_PW),
        "uri": "postgresql://migduser:%s@/%s?host=%s&port=%d"
               % (WRONG_PW, db, own_pg.sockdir, own_pg.port),
    }
    daemons = []
    for form, conninfo in forms.items():
        m = migd_factory(pg=own_pg, db=db, conninfo=conninfo,
                         overrides={("database", "connect_timeout"): "1"})
        write_rev(m, "p1_first.sql", "p1", up="CREATE TABLE public.p1_t (id int);")
        daemons.append((form, m))
        s = wait_for(lambda: m.status()["database"]["last_error"], 10,
                     what="an authentication error in status")
        s = m.status()
        assert s["database"]["connected"] is False
        assert "password" in s["database"]["last_error"].lower(), s   # an error exists
        no_secret(form + " status", json.dumps(s))
        for args in (["status"], ["--json", "status"], ["upgrade"], ["--json", "upgrade"],
                     ["history"]):
            p = m.migctl(*args, timeout=20)
            assert p.returncode != 0 or args[-1] == "status", (args, p.stdout, p.stderr)
            no_secret("%s migctl %s" % (form, " ".join(args)), p.stdout + p.stderr)
        _, r = call(m, "upgrade", {}, timeout=20)
        assert r["error"]["data"]["kind"] == "db_unavailable", r
        no_secret(form + " upgrade error", json.dumps(r))
        p = migdtest.run_migd(["-n", "-c", m.config_path])
        assert p.returncode == 0, p.stdout + p.stderr
        no_secret(form + " migd -n", p.stdout + p.stderr)
        assert "migduser" in p.stdout, p.stdout      # it printed the conninfo, masked

    # the right password, given by a reload: connects, and still never shows
    form, m = daemons[0]
    m.write_config({("database", "conninfo"): forms["keyword"].replace(WRONG_PW, GOOD_PW)})
    m.signal(signal.SIGHUP)
    m.wait_connected(True, timeout=15)
    assert step_revs(ok(m, "upgrade", {})) == ["p1"]
    for args in (["status"], ["--json", "history"], ["--json", "status"]):
        p = m.migctl(*args)
        assert p.returncode == 0, p.stdout + p.stderr
        no_secret("migctl " + " ".join(args), p.stdout + p.stderr)
    no_secret("history table", q(m, "SELECT row_to_json(h)::text FROM migd_history h"))
    no_secret("pg_stat_activity", own_pg.psql(
        "SELECT string_agg(coalesce(application_name, '') || query, ' ') "
        "FROM pg_stat_activity", db))
    for form, m in daemons:
        m.stop()
        no_secret(form + " log", m.log())
        no_secret(form + " config dump", migdtest.run_migd(["-n", "-c", m.config_path]).stdout)


@pytest.mark.parametrize("mode", [0o600, 0o640], ids=["0600", "0640"])
def test_socket_file_mode(migd_factory, mode):
    m = migd_factory(overrides={("control", "socket_mode"): "%04o" % mode})
    st = os.stat(m.socket)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == mode, oct(st.st_mode)
    # a reload does not change it; a restart over a stale socket (SIGKILL) sets it again
    m.signal(signal.SIGHUP)
    wait_for(lambda: "reload" in m.log().lower(), 5, what="the reload in the log")
    assert stat.S_IMODE(os.stat(m.socket).st_mode) == mode
    m.signal(signal.SIGKILL)
    m.wait_exit(5)
    os.chmod(m.socket, 0o777)
    m.stop()
    m.start()
    assert stat.S_IMODE(os.stat(m.socket).st_mode) == mode


# Names that would change the SQL if pasted unquoted or mis-quoted into an identifier
# ("...") or a literal ('...'). migd refuses ';' and '#' in schema names (they
# start comments in migd.conf), and '"' and '.' in version and history table names.
HOSTILE_SCHEMA = 'x" CASCADE DROP TABLE public.victim --'
HOSTILE_SCHEMA2 = "y') OR true OR ('"
HOSTILE_VSCHEMA = "v'x') OR true --"
HOSTILE_HTABLE = "h'ist) DROP TABLE victim --"


def exact_versions(m):
    out = q(m, 'SELECT version_num FROM "%s".alembic_version ORDER BY 1' % HOSTILE_VSCHEMA)
    return out.splitlines() if out else []


def test_hostile_identifiers_in_configuration_are_quoted(migd_factory):
    m = migd_factory(start=False)
    m.write_config({
        ("migrations", "schemas"): '"%s", "%s"' % (HOSTILE_SCHEMA.replace('"', '""'),
                                                   HOSTILE_SCHEMA2.replace('"', '""')),
        ("migrations", "version_table"): HOSTILE_VSCHEMA + ".alembic_version",
        ("migrations", "history_table"): "public." + HOSTILE_HTABLE,
    })
    q(m, "CREATE TABLE public.victim (id int); INSERT INTO public.victim VALUES (1)")
    p = migdtest.run_migd(["-n", "-c", m.config_path])
    assert p.returncode == 0, p.stdout + p.stderr
    m.start()
    connected(m)
    write_rev(m, "h1_first.sql", "h1", up="CREATE TABLE public.h1_t (id int);",
              down_sql="DROP TABLE public.h1_t;")
    write_rev(m, "h2_bare.sql", "h2", down="h1", transaction="none",
              up="CREATE TABLE public.h2_t (id int);", down_sql="DROP TABLE public.h2_t;")
    plan = ok(m, "plan", {})
    assert set(plan["schemas_to_create"]) >= {HOSTILE_SCHEMA, HOSTILE_SCHEMA2}, plan
    res = ok(m, "upgrade", {})
    assert step_revs(res) == ["h1", "h2"]
    assert set(res["schemas_created"]) >= {HOSTILE_SCHEMA, HOSTILE_SCHEMA2}, res
    for name in (HOSTILE_SCHEMA, HOSTILE_SCHEMA2, HOSTILE_VSCHEMA):
        assert schema_exists(m, name), name
    assert exact_versions(m) == ["h2"]
    assert q(m, 'SELECT string_agg(revision, \',\' ORDER BY id) FROM public."%s"'
             % HOSTILE_HTABLE) == "h1,h2"
    assert q(m, "SELECT count(*) FROM public.victim") == "1", "victim dropped: injection"
    # every other path that names these tables
    assert [x["revision"] for x in ok(m, "history")["history"]] == ["h2", "h1"]
    assert ok(m, "current")["state"] == "up_to_date"
    assert ok(m, "verify")["ok"] is True
    ok(m, "stamp", {"revision": "h1"})
    assert exact_versions(m) == ["h1"]
    ok(m, "stamp", {"revision": "h2"})
    assert step_revs(ok(m, "downgrade", {"target": "base"})) == ["h2", "h1"]
    assert exact_versions(m) == []
    assert m.status()["state"] == "pending"
    assert rel_exists(m, "public.victim")
    assert q(m, "SELECT count(*) FROM public.victim") == "1"
    assert_alive(m)


@pytest.mark.parametrize("what", ["directory", "subdirectory", "file"])
def test_world_writable_migrations_refused(migd_factory, what):
    m = connected(migd_factory())
    write_rev(m, "w1_first.sql", "w1", up="CREATE TABLE public.w1_t (id int);")
    path = write_rev(m, "sub/w2_second.sql", "w2", down="w1",
                     up="CREATE TABLE public.w2_t (id int);")
    target = {"directory": m.migrations_dir, "subdirectory": os.path.dirname(path),
              "file": path}[what]
    os.chmod(target, os.stat(target).st_mode | stat.S_IWOTH)
    e = err(m, "upgrade", {}, code=E_MIGRATIONS, kind="invalid_migrations")
    text = json.dumps(e)
    assert target in text, "the error does not name %s: %s" % (target, text)
    assert "writable" in text, text
    p = m.migctl("upgrade")
    assert p.returncode == 1 and target in p.stdout + p.stderr, (p.stdout, p.stderr)
    err(m, "plan", {}, code=E_MIGRATIONS, kind="invalid_migrations")
    # nothing ran
    assert versions(m) is None or versions(m) == []
    assert not rel_exists(m, "public.w1_t") and not rel_exists(m, "public.w2_t")
    s = m.status()
    assert s["migrations"]["valid"] is False, s
    assert any(target in x for x in s["migrations"].get("errors", [])), s
    # a migd started on it says so too, and still serves
    m2 = connected(migd_factory(db=m.db, overrides={("migrations", "directory"):
                                                     m.migrations_dir}))
    s = m2.status()
    assert s["migrations"]["valid"] is False and s["state"] == "invalid_migrations", s
    # fixed: runs
    os.chmod(target, os.stat(target).st_mode & ~stat.S_IWOTH)
    assert step_revs(ok(m, "upgrade", {})) == ["w1", "w2"]


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root "
                    "(CI runs as root)")
@pytest.mark.parametrize("what", ["directory", "file"])
def test_migrations_owned_by_another_user_refused(migd_factory, what):
    """StrictModes also looks at the owner: a file or directory owned by a user other
    than root or migd's own is writable by that user, who could change what migd
    runs. (migd checks only the o+w bit.)"""
    import pwd
    m = connected(migd_factory())
    path = write_rev(m, "o1_first.sql", "o1", up="CREATE TABLE public.o1_t (id int);")
    target = {"directory": m.migrations_dir, "file": path}[what]
    nobody = pwd.getpwnam("nobody")
    os.chmod(target, 0o755 if what == "directory" else 0o644)
    os.chown(target, nobody.pw_uid, nobody.pw_gid)
    e = err(m, "upgrade", {}, code=E_MIGRATIONS, kind="invalid_migrations")
    assert target in json.dumps(e), e
    assert not rel_exists(m, "public.o1_t")


def test_a_line_dripping_in_is_cut_off_after_idle_timeout(migd_factory):
    """One byte every 0.3 s resets any idle timer; the line as a whole must
    still arrive within idle_timeout, or the client's slot is taken back."""
    import socket as _socket
    m = migd_factory(overrides={("control", "idle_timeout"): "1"})
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    s.connect(m.socket)
    s.settimeout(0.1)
    got = b""
    deadline = time.monotonic() + 6
    request = b'{"jsonrpc":"2.0","id":1,"method":"status"}'
    i = 0
    while time.monotonic() < deadline:
        try:
            s.sendall(request[i % len(request):i % len(request) + 1])
        except OSError:
            break
        i += 1
        try:
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
        except _socket.timeout:
            pass
        time.sleep(0.3)
    try:    # the refusal may still wait in the socket after EPIPE
        s.settimeout(1)
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
    except OSError:
        pass
    s.close()
    assert b'"request_timeout"' in got, got
    assert time.monotonic() < deadline, "never disconnected"
    # others are still served
    assert m.rpc("version")["result"]["name"] == "migd"
