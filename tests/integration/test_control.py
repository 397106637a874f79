"""The control socket: JSON-RPC 2.0 framing, errors, bounds, version and status."""

import json
import os
import re
import socket
import time

import pytest

from migdtest import (LOG_LINE_RE, Conn, assert_error, assert_result, request,
                      wait_for)


def test_version(migd):
    r = migd.rpc("version", id=1)
    assert r == {"jsonrpc": "2.0", "id": 1,
                 "result": {"name": "migd", "version": "0.1.0", "protocol": 1}}


def test_status_connected(migd, pg):
    s = migd.wait_connected(True, timeout=10, full=True)
    d = s["daemon"]
    assert d["version"] == "0.1.0"
    assert d["protocol"] == 1
    assert d["pid"] == migd.proc.pid
    assert isinstance(d["uptime"], (int, float)) and 0 <= d["uptime"] < 60

    db = s["database"]
    assert db["connected"] is True
    assert isinstance(db["server_version"], str)
    assert db["server_version"].startswith(pg.major + "."), db["server_version"]
    assert pg.major == "15" or os.environ.get("PG_BINDIR"), "expected PostgreSQL 15"
    assert db["database"] == migd.db
    assert db["user"] == "postgres"
    assert db["host"] == pg.sockdir
    assert str(db["port"]) == str(pg.port)
    assert db["last_error"] is None
    pool = db["pool"]
    assert pool["size"] == 2
    assert pool["connected"] == 2
    assert pool["busy"] + pool["idle"] == pool["connected"]
    # nothing else runs; status may use one connection to read the database state
    assert pool["busy"] <= 1 and pool["idle"] >= 1, pool

    assert s["migrations"]["directory"] == migd.migrations_dir


def test_status_uptime_grows(migd):
    u1 = migd.status()["daemon"]["uptime"]
    time.sleep(0.3)
    u2 = migd.status()["daemon"]["uptime"]
    assert u2 - u1 >= 0.2, (u1, u2)
    assert isinstance(u2, float)


def test_status_pool_size_and_relative_directory(migd_factory):
    m = migd_factory(overrides={("database", "pool_size"): "3",
                                ("migrations", "directory"): "migs"},
                     start=False)
    os.makedirs(os.path.join(m.dir, "migs"))
    m.start()
    s = m.wait_connected(True, timeout=10, full=True)
    assert s["database"]["pool"]["size"] == 3
    assert s["database"]["pool"]["connected"] == 3
    # relative to the config file's directory, reported absolute
    assert s["migrations"]["directory"] == os.path.join(m.dir, "migs")


def test_ids_echoed(migd):
    with migd.connect() as c:
        for id in ("abc", 0, -5, 123456789, ""):
            r = c.call("version", id=id)
            assert_result(r, id)
            assert isinstance(r["id"], type(id))


def test_params_empty_object_accepted(migd):
    with migd.connect() as c:
        assert assert_result(c.call("version", {}, id=1), 1)["name"] == "migd"
        assert "daemon" in assert_result(c.call("status", {}, id=2), 2)


def test_parse_error_keeps_connection(migd):
    with migd.connect() as c:
        c.send(b'{"jsonrpc":"2.0","id":1,"method":"version"\n')   # missing }
        assert_error(c.recv(), -32700, "parse_error", None)
        c.send(b"this is not json\n")
        assert_error(c.recv(), -32700, "parse_error", None)
        c.send(b'\xff\xfe{"x":\n')
        assert_error(c.recv(), -32700, "parse_error", None)
        # same connection still usable
        assert assert_result(c.call("version", id=7), 7)["name"] == "migd"


INVALID_REQUESTS = [
    # (line, id expected in the reply: a value, or a tuple of acceptable values)
    ("42", None),
    ('"status"', None),
    ("null", None),
    ("[]", None),
    ('{"id":1,"method":"version"}', (1, None)),                       # no jsonrpc
    ('{"jsonrpc":"1.0","id":2,"method":"version"}', (2, None)),       # wrong version
    ('{"jsonrpc":2.0,"id":3,"method":"version"}', (3, None)),         # not a string
    ('{"jsonrpc":"2.0","id":4}', (4, None)),                          # no method
    ('{"jsonrpc":"2.0","id":5,"method":5}', (5, None)),               # method not string
    ('{"jsonrpc":"2.0","id":6,"method":null}', (6, None)),
    ('{"jsonrpc":"2.0","id":{"a":1},"method":"version"}', None),     # bad id types
    ('{"jsonrpc":"2.0","id":[1],"method":"version"}', None),
    ('{"jsonrpc":"2.0","id":true,"method":"version"}', None),
    ('{"jsonrpc":"2.0","id":9,"method":"status","params":"x"}', (9, None)),
    ('{"jsonrpc":"2.0","id":10,"method":"status","params":3}', (10, None)),
]


@pytest.mark.parametrize("line,want_id", INVALID_REQUESTS,
                         ids=[l for l, _ in INVALID_REQUESTS])
def test_invalid_request(migd, line, want_id):
    with migd.connect() as c:
        c.send(line + "\n")
        r = c.recv()
        ids = want_id if isinstance(want_id, tuple) else (want_id,)
        assert r.get("id", "missing") in ids, ("id", r)
        assert_error(r, -32600, "invalid_request", r["id"])
        assert assert_result(c.call("version", id=99), 99)["name"] == "migd"


def test_invalid_request_without_id_is_answered(migd):
    # The example from the JSON-RPC 2.0 specification: an invalid request is not a
    # notification, it gets an error with id null.
    with migd.connect() as c:
        c.send('{"jsonrpc":"2.0","method":1,"params":"bar"}\n')
        assert_error(c.recv(), -32600, "invalid_request", None)


@pytest.mark.parametrize("method", ["nope", "Status", "status ", "rpc.discover"])
def test_method_not_found(migd, method):
    with migd.connect() as c:
        assert_error(c.call(method, id=11), -32601, "method_not_found", 11)
        assert assert_result(c.call("version", id=12), 12)["protocol"] == 1


def test_empty_method_name(migd):
    # "" is a string naming no method: -32601 by the letter, -32600 is defensible
    with migd.connect() as c:
        r = c.call("", id=14)
        assert r.get("error", {}).get("code") in (-32601, -32600), r
        assert_error(r, r["error"]["code"],
                     {-32601: "method_not_found", -32600: "invalid_request"}[r["error"]["code"]],
                     14)
        assert assert_result(c.call("version", id=15), 15)["protocol"] == 1


@pytest.mark.parametrize("method,params", [
    ("status", {"bogus": 1}),
    ("version", {"x": True}),
    ("status", {"verbose": "yes", "bogus": []}),
    # JSON-RPC 2.0 allows array params in a request, so an array is a valid request
    # that no migd method accepts: -32602, not -32600 (non-structured params are -32600)
    ("version", []),
    ("status", [1, 2]),
])
def test_invalid_params(migd, method, params):
    with migd.connect() as c:
        assert_error(c.call(method, params, id="p"), -32602, "invalid_params", "p")
        assert assert_result(c.call("status", id=13), 13)["daemon"]["pid"] == migd.proc.pid


def test_pipelined_requests_answered_in_order(migd):
    with migd.connect() as c:
        data = "".join(json.dumps(r) + "\n" for r in (
            request("status", id=1),
            request("version", id="two"),
            request("nope", id=3),
            request("version", id=4),
        ))
        c.send(data)
        r1, r2, r3, r4 = (c.recv() for _ in range(4))
        assert "daemon" in assert_result(r1, 1)
        assert assert_result(r2, "two")["name"] == "migd"
        assert_error(r3, -32601, "method_not_found", 3)
        assert assert_result(r4, 4)["name"] == "migd"
        c.expect_silence(0.3)


def test_many_pipelined_requests(migd):
    n = 200
    with migd.connect() as c:
        c.send("".join(json.dumps(request("version", id=i)) + "\n" for i in range(n)))
        got = [c.recv()["id"] for _ in range(n)]
        assert got == list(range(n))


def test_request_split_across_writes(migd):
    line = (json.dumps(request("version", id=21)) + "\n").encode()
    with migd.connect() as c:
        for i in range(len(line)):
            c.send(line[i:i + 1])
            if i % 7 == 0:
                time.sleep(0.005)
        assert assert_result(c.recv(), 21)["name"] == "migd"


def test_notification_gets_no_reply(migd):
    with migd.connect() as c:
        c.send(request("version", id=None))
        c.send(request("nope", id=None))            # even an unknown method: silence
        c.send(request("status", {"bogus": 1}, id=None))
        c.expect_silence(0.5)
        # the next reply is the one for the request with an id
        assert assert_result(c.call("version", id=31), 31)["name"] == "migd"
        c.send(request("version", id=None))
        c.send(request("version", id=32))
        assert assert_result(c.recv(), 32)["name"] == "migd"


def test_oversize_line_closes_connection(migd_factory):
    m = migd_factory(overrides={("control", "max_request_bytes"): "1024"})
    # just under the bound: served
    pad = " " * (1024 - 100)
    with m.connect() as c:
        c.send('{"jsonrpc":"2.0","id":1,"method":"version"%s}\n' % pad)
        assert assert_result(c.recv(), 1)["name"] == "migd"
    # over the bound: error with id null, then the server closes
    with m.connect() as c:
        c.send('{"jsonrpc":"2.0","id":2,"method":"version"%s}\n' % (" " * 3000))
        assert_error(c.recv(), -32001, "request_too_large", None)
        c.expect_eof(3)
    # others are still served
    assert assert_result(m.rpc("version", id=3), 3)["name"] == "migd"


def test_endless_line_without_newline_is_cut_off(migd_factory):
    m = migd_factory(overrides={("control", "max_request_bytes"): "1024"})
    with m.connect() as c:
        c.send(b"{" + b" " * 8192)   # never a newline
        assert_error(c.recv(), -32001, "request_too_large", None)
        c.expect_eof(3)
    assert assert_result(m.rpc("version", id=3), 3)["name"] == "migd"


def test_too_many_clients(migd_factory):
    m = migd_factory(overrides={("control", "max_clients"): "2"})
    c1, c2 = m.connect(), m.connect()
    try:
        assert_result(c1.call("version", id=1), 1)
        assert_result(c2.call("version", id=2), 2)
        with m.connect() as c3:
            assert_error(c3.recv(), -32002, "too_many_clients", None)
            c3.expect_eof(3)
        # the first two still work
        assert "daemon" in assert_result(c1.call("status", id=3), 3)
        assert "daemon" in assert_result(c2.call("status", id=4), 4)
        # a slot freed is a slot available again
        c1.close()

        def fourth_served():
            with m.connect() as c4:
                r = c4.call("version", id=5)
                return "result" in r and r
        wait_for(fourth_served, 5, what="a new client accepted after one left")
        assert_result(c2.call("version", id=6), 6)
    finally:
        c1.close()
        c2.close()


def test_idle_client_closed(migd_factory):
    m = migd_factory(overrides={("control", "idle_timeout"): "1"})
    with m.connect() as idle, m.connect() as busy:
        t0 = time.monotonic()
        idle.expect_silence(0.4)          # not closed early
        # the busy one keeps talking for longer than the timeout and stays open
        while time.monotonic() - t0 < 2.2:
            assert_result(busy.call("version", id=1), 1)
            time.sleep(0.3)
        # the idle one has been closed by then (an error line before EOF is allowed)
        line = idle.readline(3)
        if line is not None:
            json.loads(line)
            idle.expect_eof(3)
        assert time.monotonic() - t0 < 4.5
        assert_result(busy.call("version", id=2), 2)


def test_partial_line_does_not_block_others(migd):
    with migd.connect() as slow:
        slow.send('{"jsonrpc":"2.0","id":1,')
        t0 = time.monotonic()
        assert assert_result(migd.rpc("status", id=2), 2)["daemon"]["pid"] == migd.proc.pid
        assert time.monotonic() - t0 < 1.0
        slow.send('"method":"version"}\n')
        assert assert_result(slow.recv(), 1)["name"] == "migd"


def test_many_concurrent_clients(migd):
    conns = [migd.connect() for _ in range(20)]
    try:
        for i, c in enumerate(conns):
            c.send(request("status", id=i))
        for i, c in enumerate(conns):
            assert assert_result(c.recv(), i)["daemon"]["pid"] == migd.proc.pid
    finally:
        for c in conns:
            c.close()


def test_client_vanishing_mid_reply_does_not_kill_daemon(migd):
    # SIGPIPE must be ignored: write many requests and close without reading.
    for _ in range(5):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(migd.socket)
        s.sendall(("".join(json.dumps(request("status", id=i)) + "\n"
                           for i in range(300))).encode())
        s.close()
    time.sleep(0.3)
    assert migd.proc.poll() is None, "migd died"
    assert assert_result(migd.rpc("version", id=1), 1)["name"] == "migd"


def test_log_format(migd):
    migd.rpc("status")
    lines = [l for l in migd.log().splitlines() if l.strip()]
    assert lines, "migd -v logged nothing"
    good = [l for l in lines if LOG_LINE_RE.match(l)]
    assert good, "no line like 'YYYY-MM-DD HH:MM:SS level: ...':\n" + "\n".join(lines[:20])
    assert any(" debug: " in l for l in good), "-v shows no debug lines"


def test_start_log_names_socket_config_directory_and_database(migd):
    """What an operator reads at start: the socket and the configuration file,
    the migrations directory and how many revisions, the database reached."""
    with open(os.path.join(migd.migrations_dir, "r1_a.sql"), "w") as f:
        f.write("-- revision: r1\n-- down_revision: none\n\n-- migrate:up\nSELECT 1;\n")
    migd.stop()
    migd.start()
    migd.wait_connected(True)
    log = migd.log().split("SIGTERM")[-1]
    assert re.search(r"info: migd \S+ listening on %s, configuration %s$"
                     % (re.escape(migd.socket), re.escape(migd.config_path)), log, re.M), log
    assert "loaded 1 revision from %s, 1 head: r1" % migd.migrations_dir in log, log
    assert "database: connected to %s" % migd.db in log, log


def test_socket_mode(migd_factory):
    m = migd_factory(overrides={("control", "socket_mode"): "0600"})
    assert os.stat(m.socket).st_mode & 0o777 == 0o600
    m2 = migd_factory()
    assert os.stat(m2.socket).st_mode & 0o777 == 0o660
