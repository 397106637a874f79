"""migd under systemd: sd_notify messages (READY, STATUS, STOPPING, RELOADING),
watchdog pings, and socket activation through LISTEN_FDS, with the real
protocol of systemd (a datagram socket in NOTIFY_SOCKET, fd 3 passed)."""

import os
import signal
import socket
import subprocess
import time

import pytest

import migdtest
from migdtest import MIGD_BIN, clean_env, rpc, wait_for

pytestmark = pytest.mark.skipif(
    b"sd_notify" not in open(MIGD_BIN, "rb").read() and
    subprocess.run(["ldd", MIGD_BIN], capture_output=True).stdout.find(b"libsystemd") < 0,
    reason="migd built without libsystemd (--with-systemd=no)")


class Notify:
    """A NOTIFY_SOCKET that records every message migd sends."""

    def __init__(self, workdir):
        self.path = os.path.join(workdir, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.setblocking(False)
        self.messages = []

    def drain(self):
        """Every message queued so far; never waits."""
        while True:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except BlockingIOError:
                return self.messages

    def seen(self, prefix):
        self.drain()
        return [m for m in self.messages for line in m.split("\n")
                if line.startswith(prefix)]

    def close(self):
        self.sock.close()


def start(m, env_extra, pass_fd=None):
    env = clean_env(env_extra)
    logf = open(m.log_path, "ab")
    if pass_fd is None:
        cmd = [MIGD_BIN, "-c", m.config_path, "-v"]
        return subprocess.Popen(cmd, stdout=logf, stderr=logf, env=env)
    # LISTEN_PID must be migd's own pid: set it in the shell that execs migd.
    cmd = ["/bin/sh", "-c", 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" -c "$1" -v',
           MIGD_BIN, m.config_path]

    def child():
        os.dup2(pass_fd, 3)
        os.set_inheritable(3, True)
    return subprocess.Popen(cmd, stdout=logf, stderr=logf, env=env,
                            preexec_fn=child, pass_fds=(pass_fd, 3))


def test_notify_ready_status_watchdog_reload_stopping(migd_factory):
    m = migd_factory(start=False)
    n = Notify(m.dir)
    p = start(m, {"NOTIFY_SOCKET": n.path, "WATCHDOG_USEC": "200000"})
    try:
        wait_for(lambda: n.seen("READY=1"), 10, what="READY=1")
        assert rpc(m.socket, "version")["result"]["name"] == "migd"
        assert any("listening on" in s for s in n.seen("STATUS="))
        # pings every WATCHDOG_USEC/2 from the event loop
        wait_for(lambda: len(n.seen("WATCHDOG=1")) >= 3, 5, what="3 watchdog pings")
        p.send_signal(signal.SIGHUP)
        wait_for(lambda: n.seen("RELOADING=1"), 5, what="RELOADING=1")
        wait_for(lambda: len(n.seen("READY=1")) >= 2, 5, what="READY=1 after reload")
        p.send_signal(signal.SIGTERM)
        assert p.wait(10) == 0
        assert n.seen("STOPPING=1")
    finally:
        if p.poll() is None:
            p.kill()
        n.close()


def test_no_watchdog_pings_unless_asked(migd_factory):
    m = migd_factory(start=False)
    n = Notify(m.dir)
    p = start(m, {"NOTIFY_SOCKET": n.path})
    try:
        wait_for(lambda: n.seen("READY=1"), 10, what="READY=1")
        time.sleep(0.5)
        assert n.seen("WATCHDOG=1") == []
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(10)
        n.close()


def test_socket_activation(migd_factory):
    m = migd_factory(start=False)
    # systemd's socket: bound and listening before migd exists
    path = os.path.join(m.dir, "activated.sock")
    ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ls.bind(path)
    ls.listen(16)
    p = start(m, {}, pass_fd=ls.fileno())
    try:
        r = wait_for(lambda: rpc(path, "status"), 10, what="status on the passed socket")
        assert r["result"]["daemon"]["pid"] == p.pid
        # migd did not bind its configured path: the passed socket is the one
        assert not os.path.exists(m.socket)
        assert "a socket passed by systemd" in open(m.log_path).read()
        p.send_signal(signal.SIGTERM)
        assert p.wait(10) == 0
        # systemd owns the socket file: migd must not unlink it
        assert os.path.exists(path)
    finally:
        if p.poll() is None:
            p.kill()
        ls.close()


def test_socket_activation_refuses_a_non_listening_fd(migd_factory):
    m = migd_factory(start=False)
    a, b = socket.socketpair()
    p = start(m, {}, pass_fd=a.fileno())
    try:
        assert p.wait(10) == 1
        assert "not a listening Unix stream socket" in open(m.log_path).read()
    finally:
        if p.poll() is None:
            p.kill()
        a.close()
        b.close()
