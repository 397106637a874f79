"""migd's command line and configuration file: -n, -h, bad options, FILE:LINE errors,
password masking."""

import os
import re
import shutil
import subprocess

import pytest

import migdtest
from migdtest import MIGD_BIN, clean_env, default_sections, render_config, run_migd


@pytest.fixture
def cfgdir():
    d = migdtest.short_tempdir("migdcfg-")
    os.makedirs(os.path.join(d, "migrations"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def sections_for(d, conninfo="host=/nonexistent/sock port=5433 dbname=test user=postgres"):
    return default_sections(conninfo, os.path.join(d, "migrations"),
                            os.path.join(d, "migd.sock"))


def write(d, text):
    path = os.path.join(d, "migd.conf")
    with open(path, "w") as f:
        f.write(text)
    return path


def start_expect_failure(path):
    """Run `migd -c path` for real; it must exit 1 quickly. The CompletedProcess."""
    try:
        return subprocess.run([MIGD_BIN, "-c", path], capture_output=True, text=True,
                              timeout=10, env=clean_env(), stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise AssertionError("migd kept running with an invalid configuration")


def test_check_good_config(cfgdir):
    secs = sections_for(cfgdir)
    secs["database"]["pool_size"] = "7"
    path = write(cfgdir, render_config(secs)[0])
    p = run_migd(["-n", "-c", path])
    assert p.returncode == 0, p.stderr
    assert re.search(r"pool_size\s*[=:]\s*7\b", p.stdout), p.stdout
    assert os.path.join(cfgdir, "migrations") in p.stdout
    assert "public.alembic_version" in p.stdout
    assert not os.path.exists(os.path.join(cfgdir, "migd.sock")), "-n created the socket"


def test_check_defaults(cfgdir):
    text = ("[database]\nconninfo = host=/nonexistent dbname=x\n"
            "[control]\nsocket = %s/migd.sock\n" % cfgdir)
    path = write(cfgdir, text)
    p = run_migd(["-n", "-c", path])
    assert p.returncode == 0, p.stderr
    assert re.search(r"pool_size\s*[=:]\s*2\b", p.stdout), p.stdout
    assert "public.alembic_version" in p.stdout
    assert "0660" in p.stdout


def test_check_relative_directory(cfgdir):
    secs = sections_for(cfgdir)
    secs["migrations"]["directory"] = "rel/migs"
    os.makedirs(os.path.join(cfgdir, "rel", "migs"))
    path = write(cfgdir, render_config(secs)[0])
    # run from another directory: relative to the config file, not to the cwd
    p = run_migd(["-n", "-c", path], cwd="/")
    assert p.returncode == 0, p.stderr
    assert os.path.join(cfgdir, "rel", "migs") in p.stdout, p.stdout


def test_spec_example_with_inline_comments(cfgdir):
    text = """\
[database]
conninfo = host=/tmp/x port=5433 dbname=test user=postgres   ; any libpq conninfo or URI
pool_size = 2              ; 1..64
connect_timeout = 5        ; seconds
[migrations]
directory = migrations     ; relative paths are relative to the config file's directory
schemas = cars, participants, work_shop
version_table = public.alembic_version
[control]
socket = %s/migd.sock
socket_mode = 0660
admin_group =
read_group =
max_clients = 64
max_request_bytes = 65536
idle_timeout = 300          ; seconds, 0 = never
[log]
level = info                ; error, warning, info, debug
""" % cfgdir
    path = write(cfgdir, text)
    p = run_migd(["-n", "-c", path])
    assert p.returncode == 0, p.stdout + p.stderr
    assert "any libpq" not in p.stdout and "seconds" not in p.stdout, p.stdout
    assert os.path.join(cfgdir, "migrations") in p.stdout


BAD_VALUES = [
    ("database", "pool_size", "0"),
    ("database", "pool_size", "abc"),
    ("database", "pool_size", "65"),
    ("database", "pool_size", "2x"),
    ("database", "pool_size", ""),
    ("database", "connect_timeout", "abc"),
    ("control", "socket_mode", "999"),
    ("control", "socket_mode", "rw-rw----"),
    ("control", "max_clients", "abc"),
    ("control", "max_request_bytes", "lots"),
    ("control", "idle_timeout", "-1"),
    ("control", "idle_timeout", "soon"),
    ("log", "level", "loud"),
    # unknown keys, also a known key in the wrong section
    ("database", "colour", "blue"),
    ("control", "sockets", "/tmp/x"),
    ("log", "pool_size", "2"),
]


def _bad_config(cfgdir, section, key, value):
    secs = sections_for(cfgdir)
    secs[section][key] = value
    text, where = render_config(secs)
    return write(cfgdir, text), where[(section, key)]


@pytest.mark.parametrize("section,key,value", BAD_VALUES,
                         ids=["%s.%s=%s" % b for b in BAD_VALUES])
def test_bad_value_check(cfgdir, section, key, value):
    path, line = _bad_config(cfgdir, section, key, value)
    p = run_migd(["-n", "-c", path])
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    assert "%s:%d: " % (path, line) in p.stderr, p.stderr


@pytest.mark.parametrize("section,key,value", BAD_VALUES[::3] + BAD_VALUES[-3:],
                         ids=["%s.%s=%s" % b for b in BAD_VALUES[::3] + BAD_VALUES[-3:]])
def test_bad_value_start(cfgdir, section, key, value):
    path, line = _bad_config(cfgdir, section, key, value)
    p = start_expect_failure(path)
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert "%s:%d: " % (path, line) in p.stderr, p.stderr
    assert not os.path.exists(os.path.join(cfgdir, "migd.sock"))


def test_check_error_is_file_line_message(cfgdir):
    # -n is for people and editors: the error line itself starts with FILE:LINE:
    path, line = _bad_config(cfgdir, "log", "level", "loud")
    p = run_migd(["-n", "-c", path])
    assert p.returncode == 1
    assert any(l.startswith("%s:%d: " % (path, line)) for l in p.stderr.splitlines()), \
        p.stderr


def _unknown_section(cfgdir):
    secs = sections_for(cfgdir)
    log = secs.pop("log")
    secs["bogus"] = {"x": "1"}
    secs["log"] = log
    text, where = render_config(secs)
    return write(cfgdir, text), (where["bogus"], where[("bogus", "x")])


def test_unknown_section_check(cfgdir):
    path, lines = _unknown_section(cfgdir)
    p = run_migd(["-n", "-c", path])
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert any("%s:%d: " % (path, l) in p.stderr for l in lines), (lines, p.stderr)
    assert "bogus" in p.stderr


def test_unknown_section_start(cfgdir):
    path, lines = _unknown_section(cfgdir)
    p = start_expect_failure(path)
    assert p.returncode == 1, p.stderr
    assert any("%s:%d: " % (path, l) in p.stderr for l in lines), (lines, p.stderr)


def test_syntax_error_line(cfgdir):
    text, _ = render_config(sections_for(cfgdir))
    lines = text.splitlines()
    lines.insert(3, "this line has no equals sign")
    path = write(cfgdir, "\n".join(lines) + "\n")
    p = run_migd(["-n", "-c", path])
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert "%s:4: " % path in p.stderr, p.stderr


def test_missing_config_file(cfgdir):
    path = os.path.join(cfgdir, "absent.conf")
    p = run_migd(["-n", "-c", path])
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert path in p.stderr


@pytest.mark.parametrize("conninfo", [
    "host=/tmp/x port=5433 dbname=test user=postgres password=secret",
    "host=/tmp/x password='secret' dbname=test user=postgres",
    "password=secret host=/tmp/x dbname=test",
    "postgresql://u:secret@/db?host=/tmp/x&port=5433",
    "postgres://u:secret@localhost:5433/db",
    "postgresql://u@/db?host=/tmp/x&password=secret",
])
def test_check_masks_password(cfgdir, conninfo):
    path = write(cfgdir, render_config(sections_for(cfgdir, conninfo))[0])
    p = run_migd(["-n", "-c", path])
    assert p.returncode == 0, p.stderr
    assert "********" in p.stdout, p.stdout
    assert "secret" not in p.stdout + p.stderr, p.stdout + p.stderr


def test_usage(cfgdir):
    p = run_migd(["-h"])
    assert p.returncode == 0, (p.returncode, p.stderr)
    assert "usage" in (p.stdout + p.stderr).lower()
    assert "-c" in p.stdout + p.stderr


def test_version_flag():
    p = run_migd(["-V"])
    assert p.returncode == 0, p.stderr
    assert "0.1.0" in p.stdout


@pytest.mark.parametrize("args", [["-Z"], ["--no-such-option"], ["-c"]])
def test_bad_option(args):
    p = run_migd(args)
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    assert p.stderr.strip(), "no message on stderr"


# ---- long options and settings as written (issue 13) --------------------------

@pytest.mark.parametrize("args", [
    ["--check", "--config", "@"],
    ["--check", "--config=@"],
    ["-n", "--config=@"],
    ["--config", "@", "-n"],
    ["--chec", "--conf=@"],          # unambiguous prefixes, as getopt_long allows
])
def test_long_options_check(cfgdir, args):
    path = write(cfgdir, render_config(sections_for(cfgdir))[0])
    p = run_migd([a.replace("@", path) for a in args])
    assert p.returncode == 0, (args, p.stdout, p.stderr)
    assert "# effective settings of %s" % path in p.stdout, p.stdout


def test_long_help_and_version():
    p = run_migd(["--help"])
    assert p.returncode == 0, p.stderr
    for opt in ("--config", "--check", "--verbose", "--version", "--help", "--socket",
                "--private"):
        assert opt in p.stdout, (opt, p.stdout)
    p = run_migd(["--version"])
    assert p.returncode == 0 and "0.1.0" in p.stdout, (p.stdout, p.stderr)


@pytest.mark.parametrize("args", [["--config"], ["--chek"], ["--check", "extra"],
                                  ["--socket="]])
def test_long_option_usage_errors(args):
    p = run_migd(args)
    assert p.returncode == 2, (args, p.returncode, p.stdout, p.stderr)
    # short: what was wrong and the synopsis, not the whole help
    assert p.stderr.strip() and len(p.stderr.splitlines()) <= 4, p.stderr
    assert "usage: migd" in p.stderr, p.stderr


def test_long_options_start(cfgdir):
    """A real start with --config=FILE --socket PATH --verbose."""
    path = write(cfgdir, render_config(sections_for(cfgdir))[0])
    sock = os.path.join(cfgdir, "other.sock")
    proc = subprocess.Popen([MIGD_BIN, "--config=" + path, "--socket", sock, "--verbose"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=clean_env(), stdin=subprocess.DEVNULL)
    try:
        r = migdtest.wait_for(lambda: os.path.exists(sock) and migdtest.rpc(sock, "version"),
                              10, what="migd answering on --socket")
        assert r["result"]["name"] == "migd", r
    finally:
        proc.terminate()
        out = proc.communicate(timeout=10)[0]
    assert " debug: " in out, out


def test_check_prints_durations_as_written(cfgdir):
    secs = sections_for(cfgdir)
    secs["migrations"]["lock_timeout"] = "5s"
    secs["migrations"]["statement_timeout"] = "2min"
    secs["migrations"]["lock_wait"] = "90"
    path = write(cfgdir, render_config(secs)[0])
    p = run_migd(["-n", "-c", path])
    assert p.returncode == 0, p.stderr
    assert re.search(r"^lock_timeout = 5s$", p.stdout, re.M), p.stdout
    assert re.search(r"^statement_timeout = 2min$", p.stdout, re.M), p.stdout
    assert re.search(r"^lock_wait = 90$", p.stdout, re.M), p.stdout
    assert "5000ms" not in p.stdout
    # what it prints is a file migd accepts, with the same values
    again = write(cfgdir, p.stdout.replace("# effective", "; effective"))
    q = run_migd(["-n", "-c", again])
    assert q.returncode == 0, q.stderr
    assert re.search(r"^lock_timeout = 5s$", q.stdout, re.M), q.stdout


def test_check_default_durations(cfgdir):
    text = ("[database]\nconninfo = host=/nonexistent dbname=x\n"
            "[control]\nsocket = %s/migd.sock\n" % cfgdir)
    path = write(cfgdir, text)
    p = run_migd(["-n", "-c", path])
    assert p.returncode == 0, p.stderr
    for line in ("lock_timeout = 5s", "statement_timeout = 0", "lock_wait = 60s"):
        assert re.search("^%s$" % line, p.stdout, re.M), (line, p.stdout)


# ---- the control socket: what a new install hits, said with the fix ----------------

def _socket_config(cfgdir, sock):
    secs = sections_for(cfgdir)
    secs["control"]["socket"] = sock
    path = write(cfgdir, render_config(secs)[0])
    os.chmod(path, 0o644)
    return path


def test_socket_directory_missing_names_setting_and_fix(cfgdir):
    """migd run by hand after `make install` has no /run/migd (systemd makes it): the
    error names the directory, the setting and the file, and what to do."""
    sock = os.path.join(cfgdir, "run", "migd", "migd.sock")
    path = _socket_config(cfgdir, sock)
    p = start_expect_failure(path)
    assert p.returncode == 1, (p.stdout, p.stderr)
    err = p.stderr
    assert "cannot listen on %s" % sock in err, err
    assert "its directory %s does not exist" % os.path.dirname(sock) in err, err
    assert "RuntimeDirectory=migd" in err, err
    assert "[control] socket in %s" % path in err, err
    assert "-S PATH" in err, err
    assert not os.path.exists(os.path.join(cfgdir, "run")), "migd created the directory"


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="runs migd as nobody with setpriv, which needs root")
def test_socket_directory_not_writable_names_user_and_fix(cfgdir):
    """A socket in a directory migd's user may not write: which user, which
    directory, which setting."""
    import pwd
    nobody = pwd.getpwnam("nobody")
    rundir = os.path.join(cfgdir, "run")
    os.makedirs(rundir)
    os.chmod(rundir, 0o755)                     # root's, not nobody's
    os.chmod(cfgdir, 0o755)
    os.chmod(os.path.join(cfgdir, "migrations"), 0o755)
    sock = os.path.join(rundir, "migd.sock")
    path = _socket_config(cfgdir, sock)
    p = subprocess.run(["setpriv", "--reuid=%d" % nobody.pw_uid,
                        "--regid=%d" % nobody.pw_gid, "--clear-groups",
                        MIGD_BIN, "-c", path], capture_output=True, text=True,
                       timeout=10, env=clean_env(), stdin=subprocess.DEVNULL)
    assert p.returncode == 1, (p.stdout, p.stderr)
    err = p.stderr
    assert ("cannot listen on %s: migd's user nobody may not create it in %s "
            "(Permission denied)" % (sock, rundir)) in err, err
    assert "[control] socket in %s" % path in err, err
    assert os.listdir(rundir) == []


def test_second_migd_on_the_socket_names_the_first(cfgdir):
    """Starting migd twice on one socket: the second says which pid holds it and
    how to proceed, and the first keeps its socket and keeps answering."""
    sock = os.path.join(cfgdir, "migd.sock")
    path = _socket_config(cfgdir, sock)
    first = subprocess.Popen([MIGD_BIN, "-c", path], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env=clean_env(),
                             stdin=subprocess.DEVNULL)
    try:
        migdtest.wait_for(lambda: os.path.exists(sock) and
                          "result" in migdtest.rpc(sock, "version", timeout=2.0),
                          10, what="the first migd")
        p = start_expect_failure(path)
        assert p.returncode == 1, (p.stdout, p.stderr)
        assert ("another migd (pid %d) is already listening on %s" % (first.pid, sock)
                in p.stderr), p.stderr
        assert "[control] socket in %s or migd -S PATH" % path in p.stderr, p.stderr
        assert "result" in migdtest.rpc(sock, "version", timeout=2.0)
    finally:
        first.terminate()
        first.wait(10)


def test_missing_migrations_directory_said_then_picked_up(migd_factory):
    """A first start before the migrations are deployed: migd starts, says in
    its log and in status that the directory is missing (one problem, said in
    the singular), runs nothing, and picks the files up once they arrive."""
    from cli_helpers import write_rev
    m = migd_factory(start=False)
    shutil.rmtree(m.migrations_dir)
    m.start()
    m.wait_connected(True)
    log = m.log()
    assert ("migrations in %s are invalid (1 problem); nothing will run until they "
            "are fixed" % m.migrations_dir) in log, log
    assert "%s: cannot open migrations directory: No such file or directory" \
        % m.migrations_dir in log, log
    p = m.migctl("status")
    assert p.returncode == 0 and "invalid_migrations" in p.stdout, (p.stdout, p.stderr)
    assert "cannot open migrations directory" in p.stdout, p.stdout
    p = m.migctl("upgrade")
    assert p.returncode == 1 and "cannot open migrations directory" in p.stderr, p.stderr
    os.makedirs(m.migrations_dir)
    write_rev(m.migrations_dir, "r1_a.sql", "r1", up="SELECT 1;")
    migdtest.wait_for(lambda: m.status()["state"] == "pending", 10,
                      what="the files picked up")
    assert m.migctl("upgrade").returncode == 0


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="runs migd as nobody with setpriv, which needs root")
def check_as(user, path):
    """migd -n -c path run as user (a pwd entry), as systemd would start it."""
    return subprocess.run(["setpriv", "--reuid=%d" % user.pw_uid,
                           "--regid=%d" % user.pw_gid, "--clear-groups",
                           MIGD_BIN, "-n", "-c", path], capture_output=True, text=True,
                          timeout=10, env=clean_env(), stdin=subprocess.DEVNULL)


def test_config_unreadable_by_migds_user_says_who_and_the_fix(cfgdir):
    """A configuration root keeps 0600 (the password in it): migd's user cannot
    read it. The error names that user and the chgrp/chmod that lets it, and
    the file is left as it was."""
    import grp
    import pwd
    nobody = pwd.getpwnam("nobody")
    group = grp.getgrgid(nobody.pw_gid).gr_name
    os.chmod(cfgdir, 0o755)
    path = write(cfgdir, render_config(sections_for(cfgdir))[0])
    os.chmod(path, 0o600)
    p = check_as(nobody, path)
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert p.stderr.strip() == (
        "%s: Permission denied: migd runs as user nobody, who must be able to read "
        "it (e.g. chgrp %s %s; chmod 0640 %s)" % (path, group, path, path)), p.stderr
    st = os.stat(path)
    assert (st.st_uid, st.st_mode & 0o7777) == (0, 0o600)
    # what it says works
    os.chown(path, 0, nobody.pw_gid)
    os.chmod(path, 0o640)
    p = check_as(nobody, path)
    assert p.returncode == 0, (p.stdout, p.stderr)


def test_example_config_shows_every_setting_at_its_default(cfgdir):
    """conf/migd.conf, installed as /etc/migd/migd.conf, is where an operator
    first reads the settings: it names every key `migd -n` prints (lock_timeout,
    lock_wait, lint... included), each at its default as it says."""
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(repo, "conf", "migd.conf")) as f:
        example = f.read()
    path = write(cfgdir, example)
    p = run_migd(["-n", "-c", path])
    assert p.returncode == 0, p.stderr
    printed = [l.split(" =", 1)[0] for l in p.stdout.splitlines()
               if re.match(r"^[a-z_]+ =", l)]
    assert printed, p.stdout
    keys = set(re.findall(r"^#?([a-z_]+) =", example, re.M))
    missing = [k for k in printed if k not in keys]
    assert not missing, "not in conf/migd.conf: %s" % missing
    # the values it shows are the defaults, but for what it notes it sets
    minimal = write(cfgdir, "[database]\nconninfo = dbname=app\n[migrations]\n"
                    "directory = /etc/migd/migrations\n")
    q = run_migd(["-n", "-c", minimal])
    assert q.returncode == 0, q.stderr
    strip = lambda out: [l for l in out.splitlines() if not l.startswith("#")]
    assert strip(p.stdout) == strip(q.stdout), (p.stdout, q.stdout)
