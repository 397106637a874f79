"""Signals: SIGTERM/SIGINT stop cleanly, SIGHUP reloads (or keeps the old settings)."""

import os
import signal
import time

import pytest

from migdtest import assert_error, assert_result, wait_for


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stop_signal_removes_socket(migd, sig):
    assert os.path.exists(migd.socket)
    idle = migd.connect()
    try:
        assert_result(idle.call("version", id=1), 1)
        migd.signal(sig)
        assert migd.wait_exit(5) == 0
        assert not os.path.exists(migd.socket), "socket file left behind"
        idle.expect_eof(2)
    finally:
        idle.close()


def test_stop_with_postgresql_down(migd_factory, own_pg, make_db):
    db = make_db(own_pg)
    own_pg.stop()
    m = migd_factory(pg=own_pg, db=db)
    m.signal(signal.SIGTERM)
    assert m.wait_exit(5) == 0
    assert not os.path.exists(m.socket)


def test_sighup_bad_file_keeps_serving(migd):
    migd.wait_connected(True, timeout=10)
    migd.write_config({("database", "pool_size"): "abc"})
    line = migd.line_of("database", "pool_size")
    migd.signal(signal.SIGHUP)
    wait_for(lambda: "%s:%d:" % (migd.config_path, line) in migd.log(), 5,
             what="the FILE:LINE error in the log")
    assert migd.proc.poll() is None, "migd exited on a bad reload"
    assert assert_result(migd.rpc("version", id=1), 1)["name"] == "migd"
    s = migd.status()
    assert s["database"]["pool"]["size"] == 2
    assert s["database"]["connected"] is True

    # an unknown section is rejected as well, and the old settings still hold
    migd.write_config({("database", "pool_size"): "2",
                       ("control", "max_clients"): "1"})
    with open(migd.config_path, "a") as f:
        f.write("[bogus]\nx = 1\n")
    n = migd.log().count("%s:" % migd.config_path)
    migd.signal(signal.SIGHUP)
    wait_for(lambda: migd.log().count("%s:" % migd.config_path) > n, 5,
             what="a second FILE:LINE error in the log")
    # max_clients = 1 was not applied: two clients are still fine
    with migd.connect() as c1, migd.connect() as c2:
        assert_result(c1.call("version", id=1), 1)
        assert_result(c2.call("version", id=2), 2)


def test_sighup_applies_max_clients(migd):
    with migd.connect() as c1, migd.connect() as c2:
        assert_result(c1.call("version", id=1), 1)
        assert_result(c2.call("version", id=2), 2)
    migd.write_config({("control", "max_clients"): "1"})
    migd.signal(signal.SIGHUP)

    def applied():
        with migd.connect() as a, migd.connect() as b:
            assert_result(a.call("version", id=1), 1)
            r = b.call("version", id=2)
            return r.get("error", {}).get("code") == -32002 and r
    r = wait_for(applied, 5, interval=0.2, what="max_clients = 1 applied")
    assert_error(r, -32002, "too_many_clients", None)
    assert migd.proc.poll() is None


def test_sighup_applies_log_level(migd_factory):
    m = migd_factory(overrides={("log", "level"): "error"}, args=())
    for i in range(3):
        m.rpc("status", id=i)
    time.sleep(0.3)
    before = m.log()
    assert " debug: " not in before and " info: " not in before, before
    m.write_config({("log", "level"): "debug"})
    m.signal(signal.SIGHUP)

    def debug_logged():
        m.rpc("status", id=9)
        return " debug: " in m.log()[len(before):]
    wait_for(debug_logged, 5, interval=0.2, what="debug lines after level = debug")


def test_sighup_applies_after_a_bad_one(migd):
    migd.write_config({("log", "level"): "loud"})
    line = migd.line_of("log", "level")
    migd.signal(signal.SIGHUP)
    wait_for(lambda: "%s:%d:" % (migd.config_path, line) in migd.log(), 5,
             what="the FILE:LINE error in the log")
    migd.write_config({("log", "level"): "info", ("control", "max_clients"): "1"})
    migd.signal(signal.SIGHUP)

    def applied():
        with migd.connect() as a, migd.connect() as b:
            assert_result(a.call("version", id=1), 1)
            r = b.call("version", id=2)
            return "error" in r and r
    r = wait_for(applied, 5, interval=0.2, what="max_clients = 1 applied")
    assert_error(r, -32002, "too_many_clients", None)


def test_restart_after_sigkill_with_stale_socket(migd_factory):
    m = migd_factory()
    m.signal(signal.SIGKILL)
    m.wait_exit(5)
    assert os.path.exists(m.socket), "expected a stale socket file after SIGKILL"
    m.stop()
    # the same configuration starts again: the stale socket is replaced
    m.start()
    assert assert_result(m.rpc("version", id=1), 1)["name"] == "migd"


def test_second_instance_does_not_steal_live_socket(migd_factory):
    m1 = migd_factory()
    m2 = migd_factory(start=False)
    m2.write_config({("control", "socket"): m1.socket})
    m2.start(wait=False)
    try:
        rc = m2.wait_exit(10)
    finally:
        m2.stop()
    assert rc != 0, "a second migd started on a socket in use"
    assert m1.socket in m2.log()
    assert os.path.exists(m1.socket)
    s = assert_result(m1.rpc("status", id=1), 1)
    assert s["daemon"]["pid"] == m1.proc.pid
