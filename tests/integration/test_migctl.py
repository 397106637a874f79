"""migctl: status for people and for scripts, socket selection, exit codes."""

import json
import os
import shutil
import socket

import pytest

import migdtest
from migdtest import run_migctl


def test_status_human(migd):
    s = migd.wait_connected(True, timeout=10, full=True)
    r = migd.migctl("status")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert "connected" in r.stdout
    assert s["database"]["server_version"] in r.stdout
    assert migd.db in r.stdout
    # for a person, not JSON
    with pytest.raises(ValueError):
        json.loads(r.stdout)


@pytest.mark.parametrize("args", [["--json", "status"], ["status", "--json"],
                                  ["-s", None, "--json", "status"]])
def test_status_json(migd, args):
    migd.wait_connected(True, timeout=10)
    args = [migd.socket if a is None else a for a in args]
    r = migd.migctl(*args)
    assert r.returncode == 0, (r.stdout, r.stderr)
    doc = json.loads(r.stdout)
    assert set(doc) >= {"daemon", "database", "migrations"}, doc
    assert doc["daemon"]["pid"] == migd.proc.pid
    assert doc["database"]["connected"] is True
    assert doc["database"]["database"] == migd.db
    assert doc["migrations"]["directory"] == migd.migrations_dir


def test_version_command(migd):
    r = migd.migctl("version")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert "0.1.0" in r.stdout
    r = migd.migctl("--json", "version")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert json.loads(r.stdout)["version"] == "0.1.0"


def test_socket_option_beats_environment(migd):
    r = migd.migctl("-s", migd.socket, "--json", "status",
                    env={"MIGD_SOCKET": "/nonexistent/migd.sock"})
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert json.loads(r.stdout)["daemon"]["pid"] == migd.proc.pid


def test_socket_from_environment(migd):
    r = migd.migctl("--json", "status", env={"MIGD_SOCKET": migd.socket})
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert json.loads(r.stdout)["daemon"]["pid"] == migd.proc.pid


@pytest.mark.parametrize("args", [["bogus"], ["--bogus", "status"], ["status", "--bogus"],
                                  ["-s"], []])
def test_usage_errors(migd, args):
    r = migd.migctl(*args)
    assert r.returncode == 2, (args, r.returncode, r.stdout, r.stderr)
    assert r.stderr.strip(), "usage error without a message on stderr"


def test_unreachable_no_socket():
    r = run_migctl(["-s", "/nonexistent/dir/migd.sock", "status"])
    assert r.returncode == 3, (r.returncode, r.stdout, r.stderr)
    assert r.stderr.strip()
    r = run_migctl(["--json", "status"], env={"MIGD_SOCKET": "/nonexistent/dir/migd.sock"})
    assert r.returncode == 3, (r.returncode, r.stdout, r.stderr)


def test_unreachable_connection_refused():
    d = migdtest.short_tempdir("migdctl-")
    try:
        path = os.path.join(d, "dead.sock")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)          # a socket file nobody listens on
        s.close()
        r = run_migctl(["-s", path, "status"])
        assert r.returncode == 3, (r.returncode, r.stdout, r.stderr)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_unreachable_default_socket():
    if os.path.exists("/run/migd/migd.sock"):
        pytest.skip("a migd is running on the default socket")
    r = run_migctl(["status"])
    assert r.returncode == 3, (r.returncode, r.stdout, r.stderr)
    assert "/run/migd/migd.sock" in r.stderr


def test_unreachable_after_daemon_stopped(migd):
    assert migd.migctl("status").returncode == 0
    assert migd.stop() == 0
    r = migd.migctl("status")
    assert r.returncode == 3, (r.returncode, r.stdout, r.stderr)
