"""Helpers for the migd integration tests: a throwaway PostgreSQL cluster, a migd
process with its own socket, and a line-oriented JSON-RPC connection.

Only the standard library is used, so the suite runs with Debian's python3-pytest.
"""

import json
import os
import pwd
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MIGD_BIN = os.environ.get("MIGD_BIN") or os.path.join(REPO, "migd")
MIGCTL_BIN = os.environ.get("MIGCTL_BIN") or os.path.join(REPO, "migctl")

# Default per-read timeout on the control socket, in seconds.
RPC_TIMEOUT = 5.0

LOG_LINE_RE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (error|warning|info|debug): ")


def clean_env(extra=None):
    """The environment for child processes: ours without any PG* or MIGD_* variable."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PG") and not k.startswith("MIGD_")}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    if extra:
        env.update(extra)
    return env


def short_tempdir(prefix):
    """A fresh directory under /tmp with a short path (Unix socket paths are limited)."""
    return tempfile.mkdtemp(prefix=prefix, dir="/tmp")


def wait_for(pred, timeout, interval=0.1, what="condition"):
    """Poll pred() until it returns a true value; return it, or fail after timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = pred()
        except (OSError, ValueError) as e:   # connection hiccups while polling
            last = e
            ok = False
        else:
            ok = bool(last)
        if ok:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(
                "timed out after %.1fs waiting for %s; last value: %r"
                % (timeout, what, last))
        time.sleep(interval)


def request(method, params=None, id=1):
    """A JSON-RPC 2.0 request object (id=None makes a notification)."""
    r = {"jsonrpc": "2.0", "method": method}
    if id is not None:
        r["id"] = id
    if params is not None:
        r["params"] = params
    return r


def assert_error(resp, code, kind, id):
    """Assert that resp is a JSON-RPC error reply with this code, data.kind and id."""
    assert isinstance(resp, dict), resp
    assert resp.get("jsonrpc") == "2.0", resp
    assert "result" not in resp, resp
    assert "id" in resp and resp["id"] == id, ("wrong id", resp)
    err = resp.get("error")
    assert isinstance(err, dict), resp
    assert err.get("code") == code, ("wrong code", resp)
    assert isinstance(err.get("message"), str) and err["message"], resp
    data = err.get("data")
    assert isinstance(data, dict) and data.get("kind") == kind, ("wrong data.kind", resp)


def assert_result(resp, id):
    """Assert that resp is a successful reply with this id; return its result."""
    assert isinstance(resp, dict), resp
    assert resp.get("jsonrpc") == "2.0", resp
    assert "error" not in resp, resp
    assert "id" in resp and resp["id"] == id, ("wrong id", resp)
    assert "result" in resp, resp
    return resp["result"]


class Conn:
    """One client connection to the control socket, read line by line."""

    def __init__(self, path, timeout=RPC_TIMEOUT):
        self.path = path
        self.timeout = timeout
        self.buf = b""
        self.eof = False
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(path)
        except OSError:
            self.sock.close()
            raise

    def send(self, data):
        """Send a dict (as one JSON line), a str or bytes as is. False if the peer is gone."""
        if isinstance(data, dict) or isinstance(data, list):
            data = json.dumps(data) + "\n"
        if isinstance(data, str):
            data = data.encode()
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False

    def readline(self, timeout=None):
        """The next line (bytes, without newline), or None at EOF; raises socket.timeout."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while b"\n" not in self.buf:
            if self.eof:
                if self.buf:
                    line, self.buf = self.buf, b""
                    return line
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("no complete line within timeout; buffered %r"
                                     % self.buf[:200])
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                self.eof = True
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def recv(self, timeout=None):
        """The next reply, decoded; fails at EOF or on a line that is not JSON."""
        line = self.readline(timeout)
        assert line is not None, "server closed the connection instead of replying"
        try:
            return json.loads(line)
        except ValueError:
            raise AssertionError("reply is not JSON: %r" % line[:500])

    def call(self, method, params=None, id=1, timeout=None):
        """Send a request and return the decoded reply (or a line already pending:
        the server may have sent an error and closed before reading it)."""
        self.send(request(method, params, id))
        return self.recv(timeout)

    def expect_eof(self, timeout=3.0):
        """Assert that the server closes the connection, with no further line, in time."""
        try:
            line = self.readline(timeout)
        except socket.timeout:
            raise AssertionError("server did not close the connection within %.1fs"
                                 % timeout)
        assert line is None, "expected EOF, got another line: %r" % line[:500]

    def expect_silence(self, timeout=0.5):
        """Assert that nothing arrives (and the connection stays open) for timeout."""
        try:
            line = self.readline(timeout)
        except socket.timeout:
            return
        raise AssertionError("expected no reply, got %r" % (line,))

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def rpc(path, method, params=None, id=1, timeout=RPC_TIMEOUT):
    """One request over a fresh connection; the decoded reply."""
    with Conn(path, timeout) as c:
        return c.call(method, params, id)


def pg_bindir():
    """The directory holding initdb, pg_ctl and postgres."""
    cands = []
    if os.environ.get("PG_BINDIR"):
        cands.append(os.environ["PG_BINDIR"])
    try:
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True,
                             text=True, timeout=10)
        if out.returncode == 0:
            cands.append(out.stdout.strip())
    except OSError:
        pass
    cands.append("/usr/lib/postgresql/15/bin")
    for d in cands:
        if all(os.access(os.path.join(d, p), os.X_OK)
               for p in ("initdb", "pg_ctl", "postgres")):
            return d
    return None


def pg_runas_user():
    """None when not root; else the unprivileged user that runs initdb/pg_ctl."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "migdtest"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            pass
    subprocess.run(["useradd", "--system", "--no-create-home",
                    "--shell", "/usr/sbin/nologin", "migdtest"],
                   check=True, capture_output=True)
    return "migdtest"


class PgCluster:
    """A throwaway PostgreSQL cluster listening only on a Unix socket in its temp dir."""

    def __init__(self, bindir, user):
        self.bindir = bindir
        self.user = user
        self.base = short_tempdir("migdpg-")
        self.data = os.path.join(self.base, "data")
        self.sockdir = self.base
        self.log_path = os.path.join(self.base, "postgresql.log")
        self.port = None
        self.destroyed = False
        self.psql_bin = os.path.join(bindir, "psql")
        if not os.access(self.psql_bin, os.X_OK):
            self.psql_bin = shutil.which("psql") or "psql"
        if user:
            pw = pwd.getpwnam(user)
            os.chown(self.base, pw.pw_uid, pw.pw_gid)
        os.chmod(self.base, 0o700)
        v = subprocess.run([os.path.join(bindir, "postgres"), "-V"],
                           capture_output=True, text=True).stdout
        m = re.search(r"(\d+)", v)
        self.major = m.group(1) if m else ""
        self._run([os.path.join(bindir, "initdb"), "-D", self.data, "-A", "trust",
                   "-U", "postgres", "--no-sync", "--no-locale", "-E", "UTF8"],
                  timeout=120)
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write("\ninclude 'migdtest.conf'\n")

    def _run(self, cmd, check=True, timeout=60):
        """Run a server-side command, as the unprivileged user when we are root."""
        if self.user:
            cmd = ["runuser", "-u", self.user, "--"] + cmd
        p = subprocess.run(cmd, cwd=self.base, env=clean_env({"LC_ALL": "C"}),
                           capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise RuntimeError("%s failed (rc %d):\n%s\n%s"
                               % (" ".join(cmd), p.returncode, p.stdout, p.stderr))
        return p

    def _write_settings(self):
        path = os.path.join(self.data, "migdtest.conf")
        with open(path, "w") as f:
            f.write("listen_addresses = ''\n"
                    "unix_socket_directories = '%s'\n"
                    "port = %d\n"
                    "fsync = off\n"
                    "synchronous_commit = off\n"
                    "full_page_writes = off\n"
                    "max_connections = 100\n"
                    "shared_buffers = 16MB\n"
                    "log_min_messages = warning\n"
                    "log_connections = off\n"
                    "log_checkpoints = off\n" % (self.sockdir, self.port))
        if self.user:
            pw = pwd.getpwnam(self.user)
            os.chown(path, pw.pw_uid, pw.pw_gid)

    def start(self):
        """Start the server (pg_ctl -w); choose a free port the first time."""
        if self.port is not None:
            self._run([os.path.join(self.bindir, "pg_ctl"), "-D", self.data,
                       "-l", self.log_path, "-w", "-t", "30", "start"])
            return
        last = None
        for _ in range(8):
            self.port = 54321 + random.randrange(0, 2000)
            self._write_settings()
            p = self._run([os.path.join(self.bindir, "pg_ctl"), "-D", self.data,
                           "-l", self.log_path, "-w", "-t", "30", "start"], check=False)
            if p.returncode == 0:
                return
            last = p
            self._run([os.path.join(self.bindir, "pg_ctl"), "-D", self.data,
                       "-m", "immediate", "stop"], check=False)
        self.port = None
        raise RuntimeError("could not start PostgreSQL: %s %s\n%s"
                           % (last.stdout, last.stderr, self.log_tail()))

    def stop(self, mode="fast"):
        """Stop the server: mode fast or immediate."""
        self._run([os.path.join(self.bindir, "pg_ctl"), "-D", self.data,
                   "-m", mode, "-w", "-t", "30", "stop"])

    def running(self):
        if self.destroyed:
            return False
        p = self._run([os.path.join(self.bindir, "pg_ctl"), "-D", self.data, "status"],
                      check=False)
        return p.returncode == 0

    def psql(self, sql, db="postgres"):
        """Run SQL through psql as the superuser; its unaligned, tuples-only output."""
        p = subprocess.run([self.psql_bin, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                            "-h", self.sockdir, "-p", str(self.port), "-U", "postgres",
                            "-d", db, "-c", sql],
                           env=clean_env(), capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            raise RuntimeError("psql %r failed: %s" % (sql, p.stderr))
        return p.stdout.strip()

    def create_db(self, name):
        self.psql('CREATE DATABASE "%s"' % name)
        return name

    def drop_db(self, name):
        try:
            self.psql('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)
        except (RuntimeError, subprocess.SubprocessError):
            pass

    def conninfo(self, db, extra=""):
        s = "host=%s port=%d dbname=%s user=postgres" % (self.sockdir, self.port, db)
        return s + (" " + extra if extra else "")

    def log_tail(self, lines=80):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError as e:
            return "(no log: %s)" % e

    def destroy(self):
        if self.destroyed:
            return
        self.destroyed = True
        if self.port is not None:
            self._run([os.path.join(self.bindir, "pg_ctl"), "-D", self.data,
                       "-m", "immediate", "-w", "stop"], check=False)
        shutil.rmtree(self.base, ignore_errors=True)


def render_config(sections):
    """INI text from {section: {key: value}} (value None drops the key); also the
    line number (1-based) of every key, as {(section, key): line} and of every
    section header as {section: line}."""
    lines = []
    where = {}
    for sec, kv in sections.items():
        lines.append("[%s]" % sec)
        where[sec] = len(lines)
        for k, v in kv.items():
            if v is None:
                continue
            lines.append("%s = %s" % (k, v))
            where[(sec, k)] = len(lines)
        lines.append("")
    return "\n".join(lines) + "\n", where


def default_sections(conninfo, directory, socket_path):
    return {
        "database": {
            "conninfo": conninfo,
            "pool_size": "2",
            "connect_timeout": "2",
        },
        "migrations": {
            "directory": directory,
            "schemas": "cars, participants, work_shop",
            "version_table": "public.alembic_version",
        },
        "control": {
            "socket": socket_path,
            "socket_mode": "0660",
            "admin_group": "",
            "read_group": "",
            "max_clients": "64",
            "max_request_bytes": "65536",
            "idle_timeout": "300",
        },
        "log": {
            "level": "info",
        },
    }


def write_atomic(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


class Migd:
    """One migd process with its own directory, config file, socket and log."""

    def __init__(self, workdir, conninfo, overrides=None, args=("-v",), db=None, pg=None):
        self.dir = workdir
        self.db = db
        self.pg = pg
        self.args = list(args)
        self.config_path = os.path.join(workdir, "migd.conf")
        self.socket = os.path.join(workdir, "migd.sock")
        self.migrations_dir = os.path.join(workdir, "migrations")
        os.makedirs(self.migrations_dir, exist_ok=True)
        self.log_path = os.path.join(workdir, "migd.log")
        self.sections = default_sections(conninfo, self.migrations_dir, self.socket)
        self.update(overrides)
        self.where = {}
        self.proc = None
        self._logf = None
        self.env = {}       # extra environment (e.g. MIGD_TEST_NO_INOTIFY)

    def update(self, overrides):
        """Apply {(section, key): value} to the settings (not written yet)."""
        for (sec, key), val in (overrides or {}).items():
            self.sections.setdefault(sec, {})[key] = val

    def write_config(self, overrides=None, text=None):
        """Write the config file from the settings (or the given raw text)."""
        self.update(overrides)
        if text is None:
            text, self.where = render_config(self.sections)
        write_atomic(self.config_path, text)
        return text

    def line_of(self, section, key=None):
        return self.where[(section, key)] if key is not None else self.where[section]

    def start(self, wait=True, timeout=10.0):
        """Start migd -c FILE and wait until the socket answers version."""
        if not os.path.exists(self.config_path):
            self.write_config()
        self._logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen([MIGD_BIN, "-c", self.config_path] + self.args,
                                     stdin=subprocess.DEVNULL, stdout=self._logf,
                                     stderr=self._logf, env=clean_env(self.env),
                                     cwd=self.dir)
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                raise AssertionError("migd exited with status %d during start-up:\n%s"
                                     % (rc, self.log()))
            if os.path.exists(self.socket):
                try:
                    r = rpc(self.socket, "version", timeout=2.0)
                    if isinstance(r, dict) and "result" in r:
                        return
                    last = r
                except (OSError, AssertionError) as e:
                    last = e
            time.sleep(0.05)
        raise AssertionError("migd did not answer version on %s within %.0fs (last: %r)"
                             % (self.socket, timeout, last))

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError as e:
            return "(no log: %s)" % e

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait_exit(self, timeout=10.0):
        """The exit status; fails if migd is still running after timeout."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("migd still running %.0fs later" % timeout)

    def stop(self, timeout=10.0):
        """SIGTERM and wait; SIGKILL if it hangs. Returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                with open(self.log_path, "a") as f:
                    f.write("\n*** test harness: migd ignored SIGTERM for %.0fs; killed\n"
                            % timeout)
        if self._logf:
            self._logf.close()
            self._logf = None
        return self.proc.returncode

    def connect(self, timeout=RPC_TIMEOUT):
        return Conn(self.socket, timeout)

    def rpc(self, method, params=None, id=1, timeout=RPC_TIMEOUT):
        return rpc(self.socket, method, params, id, timeout)

    def status(self, settled=True):
        """The status result (fails on an error reply). settled: once the files are
        loaded: a status right after a file was written may answer while the change
        loads (migrations.loading, the files' verdict not yet there), sooner under
        load; test_load asks with settled=False to see that."""
        deadline = time.monotonic() + 60
        while True:
            st = assert_result(self.rpc("status", id=1), 1)
            if not settled or not (st.get("migrations") or {}).get("loading") or \
                    time.monotonic() > deadline:
                return st
            time.sleep(0.05)

    def wait_connected(self, want=True, timeout=15.0, full=False):
        """Poll status until database.connected == want (and, with full, the whole
        pool is connected); return that status."""
        def check():
            s = self.status()
            db = s["database"]
            if db["connected"] is not want:
                return None
            if full and db["pool"]["connected"] != db["pool"]["size"]:
                return None
            return s
        return wait_for(check, timeout, interval=0.1,
                        what="database.connected == %s%s" % (want, " (full pool)" if full else ""))

    def migctl(self, *args, env=None, use_env_socket=True, timeout=15):
        """Run migctl; MIGD_SOCKET points at this daemon unless use_env_socket is False."""
        e = clean_env()
        if use_env_socket:
            e["MIGD_SOCKET"] = self.socket
        if env:
            e.update(env)
        return subprocess.run([MIGCTL_BIN] + list(args), env=e, capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def run_migd(args, timeout=15, cwd=None):
    """Run migd to completion (for -n, -h and bad options)."""
    return subprocess.run([MIGD_BIN] + list(args), capture_output=True, text=True,
                          timeout=timeout, env=clean_env(), cwd=cwd,
                          stdin=subprocess.DEVNULL)


def run_migctl(args, env=None, timeout=15):
    e = clean_env()
    if env:
        e.update(env)
    return subprocess.run([MIGCTL_BIN] + list(args), env=e, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)
