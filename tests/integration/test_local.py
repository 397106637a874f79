"""migctl --local -c CONF: any command without a running migd.  migctl starts
a private migd on a socket in a fresh directory, runs the command with the
usual output and exit codes, and stops it, leaving nothing behind: no
process, no socket, no directory (the tests look in the TMPDIR they set).
"""

import json
import os
import pwd
import shutil
import signal
import subprocess
import time

import pytest

import migdtest
from migdtest import MIGCTL_BIN, MIGD_BIN, clean_env
from cli_helpers import (X_OK, X_FAILED, X_USAGE, X_UNREACHABLE, X_CHECK,
                         chain, versions, wait_activity, write_rev)


class Project:
    """A configuration and migrations for a database, and no migd."""

    def __init__(self, pg, db, base):
        self.pg = pg
        self.db = db
        self.dir = base
        self.migrations_dir = os.path.join(base, "migrations")
        os.makedirs(self.migrations_dir)
        self.tmp = os.path.join(base, "tmp")     # the private dirs' parent
        os.makedirs(self.tmp)
        # migd listens where migctl says, never on the configured socket.
        self.config_socket = os.path.join(base, "configured.sock")
        self.sections = migdtest.default_sections(
            pg.conninfo(db), self.migrations_dir, self.config_socket)
        self.config = os.path.join(base, "migd.conf")
        self.write_config()

    def write_config(self, text=None):
        if text is None:
            text, self.where = migdtest.render_config(self.sections)
        with open(self.config, "w") as f:
            f.write(text)

    def env(self, extra=None):
        e = clean_env({"TMPDIR": self.tmp, "MIGD_BIN": MIGD_BIN})
        e.pop("XDG_RUNTIME_DIR", None)
        if extra:
            e.update(extra)
        return e

    def argv(self, *args, config=True):
        return [MIGCTL_BIN, "--local"] + (["-c", self.config] if config else []) \
            + list(args)

    def run(self, *args, env=None, config=True, timeout=60):
        """migctl --local -c CONF ARGS; then checks that nothing is left."""
        p = subprocess.run(self.argv(*args, config=config), env=self.env(env),
                           capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL, cwd=self.dir)
        self.assert_clean()
        return p

    def popen(self, *args, env=None):
        return subprocess.Popen(self.argv(*args), env=self.env(env),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, stdin=subprocess.DEVNULL, cwd=self.dir)

    def json(self, *args, rc=X_OK, **kw):
        p = self.run("--json", *args, **kw)
        assert p.returncode == rc, (args, p.returncode, p.stdout, p.stderr)
        try:
            return json.loads(p.stdout)
        except ValueError:
            raise AssertionError("not JSON: %r (stderr %r)" % (p.stdout, p.stderr))

    def migd_pids(self):
        """Processes whose command line names our temp dir (the private migd)."""
        pids = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    cmd = f.read().decode(errors="replace")
            except OSError:
                continue
            if self.tmp in cmd:
                pids.append(int(pid))
        return pids

    def assert_clean(self):
        assert os.listdir(self.tmp) == [], "left behind: %r" % os.listdir(self.tmp)
        assert not os.path.exists(self.config_socket), "migd used [control] socket"
        # migctl reaps its migd before it exits: none may be left, not even
        # for a moment
        assert self.migd_pids() == [], "private migd still running"


@pytest.fixture
def proj(pg, db):
    base = migdtest.short_tempdir("migdloc-")
    yield Project(pg, db, base)
    shutil.rmtree(base, ignore_errors=True)


def test_upgrade_without_daemon(proj):
    chain(proj.migrations_dir, 3)
    p = proj.run("upgrade")
    assert p.returncode == X_OK, (p.stdout, p.stderr)
    assert "r3" in p.stdout, p.stdout
    assert p.stderr == "", "migd's log shown on success: %r" % p.stderr
    assert versions(proj) == ["r3"]
    assert proj.run("check").returncode == X_OK


def test_json_and_exit_codes(proj):
    chain(proj.migrations_dir, 2)
    st = proj.json("status")
    assert st["state"] == "pending", st
    assert st["database"]["connected"] is True, st
    assert st["database"]["database"] == proj.db
    assert st["migrations"]["directory"] == proj.migrations_dir
    # check exits 4 while something is pending
    p = proj.run("check")
    assert p.returncode == X_CHECK, (p.stdout, p.stderr)
    doc = proj.json("upgrade", "+1")
    assert [s["revision"] for s in doc["steps"]] == ["r1"], doc
    assert proj.json("plan")["steps"], "plan shows r2"
    doc = proj.json("upgrade")
    assert [s["revision"] for s in doc["steps"]] == ["r2"], doc
    assert proj.run("check").returncode == X_OK
    assert proj.json("verify")["ok"] is True
    assert len(proj.json("history")["history"]) == 2
    doc = proj.json("downgrade", "base")
    assert [s["revision"] for s in doc["steps"]] == ["r2", "r1"], doc
    assert versions(proj) == []
    proj.json("stamp", "head")
    assert versions(proj) == ["r2"]


def test_failing_migration_exits_1(proj):
    chain(proj.migrations_dir, 1)
    write_rev(proj.migrations_dir, "r2_bad.sql", "r2", down="r1",
              up="CREATE TABLE public.bad (id int);\nSELECT no_such_function();",
              down_sql="DROP TABLE public.bad;")
    p = proj.run("upgrade")
    assert p.returncode == X_FAILED, (p.stdout, p.stderr)
    assert "no_such_function" in p.stderr, p.stderr
    assert versions(proj) == ["r1"]
    # the same error as JSON on stdout
    doc = proj.json("upgrade", rc=X_FAILED)
    assert set(doc) == {"error"}, doc
    assert "no_such_function" in doc["error"]["message"]


def test_verbose_shows_the_log(proj):
    p = proj.run("-v", "version")
    assert p.returncode == X_OK, (p.stdout, p.stderr)
    assert "listening on %s/migctl-local." % proj.tmp in p.stderr, p.stderr
    assert "listening" not in p.stdout
    # --json stdout stays one document with -v
    p = proj.run("-v", "--json", "version")
    assert json.loads(p.stdout)["name"] == "migd"


def test_private_dir_under_xdg_runtime_dir(proj):
    xdg = os.path.join(proj.dir, "xdg")
    os.makedirs(xdg, mode=0o700)
    p = proj.run("-v", "version", env={"XDG_RUNTIME_DIR": xdg})
    assert p.returncode == X_OK, (p.stdout, p.stderr)
    assert "listening on %s/migctl-local." % xdg in p.stderr, p.stderr
    assert os.listdir(xdg) == []


def test_bad_config(proj):
    proj.sections["database"]["pool_size"] = "many"
    proj.write_config()
    p = proj.run("upgrade")
    assert p.returncode == X_FAILED, (p.stdout, p.stderr)
    line = proj.where[("database", "pool_size")]
    assert "migd cannot start with %s" % proj.config in p.stderr, p.stderr
    assert "%s:%d:" % (proj.config, line) in p.stderr, p.stderr
    assert p.stdout == ""


def test_missing_config(proj):
    p = subprocess.run([MIGCTL_BIN, "--local", "-c", "/nonexistent/migd.conf",
                        "status"], env=proj.env(), capture_output=True, text=True,
                       timeout=30, stdin=subprocess.DEVNULL)
    assert p.returncode == X_FAILED, (p.stdout, p.stderr)
    assert "/nonexistent/migd.conf" in p.stderr
    proj.assert_clean()


@pytest.mark.parametrize("args", [
    ["status"],                                   # no -c
    ["-s", "/tmp/x.sock", "status"],              # a socket of its own
])
def test_usage_errors(proj, args):
    p = proj.run(*args, config=False)
    assert p.returncode == X_USAGE, (p.stdout, p.stderr)
    assert "--local" in p.stderr, p.stderr


def test_verbose_needs_local():
    p = subprocess.run([MIGCTL_BIN, "-v", "status"], env=clean_env(),
                       capture_output=True, text=True, timeout=10)
    assert p.returncode == X_USAGE, (p.stdout, p.stderr)


def test_migd_not_found(proj):
    p = proj.run("status", env={"MIGD_BIN": "/nonexistent/migd"})
    assert p.returncode == X_UNREACHABLE, (p.stdout, p.stderr)
    assert "/nonexistent/migd" in p.stderr, p.stderr


def test_wait_for_ready(proj):
    p = proj.run("wait", "--for", "ready", "--timeout", "10")
    assert p.returncode == X_OK, (p.stdout, p.stderr)
    chain(proj.migrations_dir, 1)
    p = proj.run("wait", "--timeout", "0")
    assert p.returncode == X_CHECK, (p.stdout, p.stderr)


def test_sigint_during_wait_stops_everything(proj):
    chain(proj.migrations_dir, 1)        # never at head: wait would poll on
    p = proj.popen("wait", "--timeout", "60")
    migdtest.wait_for(lambda: proj.migd_pids(), 10, what="the private migd")
    time.sleep(0.3)
    t0 = time.monotonic()
    p.send_signal(signal.SIGINT)
    p.communicate(timeout=15)
    assert p.returncode == -signal.SIGINT, p.returncode
    assert time.monotonic() - t0 < 5
    proj.assert_clean()


def test_sigterm_lets_the_running_step_finish(proj):
    write_rev(proj.migrations_dir, "r1_slow.sql", "r1",
              up="SELECT pg_sleep(1.5);\nCREATE TABLE public.slow (id int);",
              down_sql="DROP TABLE public.slow;")
    p = proj.popen("upgrade")
    wait_activity(proj, "pg_sleep")
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=30)
    assert p.returncode == -signal.SIGTERM, (p.returncode, out, err)
    # the step that was running finished, in its transaction
    assert versions(proj) == ["r1"], (out, err)
    proj.assert_clean()


def test_migctl_killed_migd_follows(proj):
    chain(proj.migrations_dir, 1)
    p = proj.popen("wait", "--timeout", "60")
    migdtest.wait_for(lambda: proj.migd_pids(), 10, what="the private migd")
    p.kill()
    p.wait(10)
    migdtest.wait_for(lambda: not proj.migd_pids(), 10,
                      what="the private migd to exit after migctl was killed")
    # only the empty private directory can remain after SIGKILL
    for d in os.listdir(proj.tmp):
        assert os.listdir(os.path.join(proj.tmp, d)) == []


def test_unprivileged_user_may_upgrade(proj):
    """The private migd runs as the caller, who is migd's own user: an
    ordinary user may run mutating commands (no admin_group needed)."""
    user = proj.pg.user
    if os.geteuid() != 0 or not user:
        pytest.skip("needs root, to run migctl as another user")
    pw = pwd.getpwnam(user)
    proj.sections["control"]["admin_group"] = "root"    # not the caller's
    proj.write_config()
    os.chmod(proj.dir, 0o755)
    os.chmod(proj.config, 0o644)
    os.chown(proj.tmp, pw.pw_uid, pw.pw_gid)
    chain(proj.migrations_dir, 2)
    p = subprocess.run(["runuser", "-u", user, "--"] + proj.argv("--json", "upgrade"),
                       env=proj.env(), capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL, cwd="/")
    assert p.returncode == X_OK, (p.stdout, p.stderr)
    assert [s["revision"] for s in json.loads(p.stdout)["steps"]] == ["r1", "r2"]
    assert versions(proj) == ["r2"]
    proj.assert_clean()


def test_migd_socket_and_private_options(proj):
    """migd -S/--socket and --private, which --local passes: -n shows them."""
    p = migdtest.run_migd(["-n", "-c", proj.config, "--socket", "/tmp/elsewhere.sock",
                           "--private"])
    assert p.returncode == 0, p.stderr
    assert "socket = /tmp/elsewhere.sock\n" in p.stdout, p.stdout
    assert "socket_mode = 0600\n" in p.stdout, p.stdout
    p = migdtest.run_migd(["-n", "-c", proj.config, "-S", "/tmp/x.sock"])
    assert "socket = /tmp/x.sock\n" in p.stdout, p.stdout
    assert "socket_mode = 0660\n" in p.stdout, p.stdout
    assert migdtest.run_migd(["-S"]).returncode == 2


def test_database_down_check_waits_for_the_files(proj):
    """PostgreSQL not running in a CI job: the private migd fails to connect at
    once, before it has read the files. `--local check` and `status` answer
    about the files all the same (no_database, N revisions), never 'loading'
    because they asked too soon."""
    chain(proj.migrations_dir, 300)
    proj.sections["database"]["conninfo"] = (
        "host=%s port=1 dbname=x user=postgres" % proj.dir)   # no server there
    proj.write_config()
    for _ in range(5):
        st = proj.json("check", rc=X_CHECK)
        assert st["state"] == "no_database", st
        assert st["migrations"]["revisions"] == 300, st["migrations"]
        assert st["database"]["last_error"], st["database"]
    p = proj.run("status")
    assert p.returncode == X_OK, (p.returncode, p.stdout, p.stderr)
    assert "300 revisions" in p.stdout and "loading" not in p.stdout, p.stdout
