"""Helpers shared by the tests that compare what migd builds with what plain
psql builds (test_realworld.py, test_offline_sql.py): the real-world
fixtures, psql -f, a normalised pg_dump --schema-only, and its diff."""

import difflib
import os
import re
import shutil
import subprocess
import tempfile

import migdtest
from engine_helpers import X_OK, ok

REALWORLD = os.path.join(migdtest.REPO, "tests", "fixtures", "realworld")
FIXTURES = sorted(d for d in os.listdir(REALWORLD)
                  if os.path.isdir(os.path.join(REALWORLD, d)) and not d.startswith("."))

RUN_TIMEOUT = 120   # seconds for one migctl run or one psql file

# Lines of a dump that differ between two dumps of the same schema: versions,
# and the \restrict keys (random per run since pg_dump 15.14).
DUMP_NOISE = re.compile(r"^(-- Dumped (from database|by pg_dump) version .*"
                        r"|\\(un)?restrict \S+)$")


def pg_tool(tool):
    """The cluster's own psql or pg_dump."""
    path = os.path.join(migdtest.pg_bindir(), tool)
    return path if os.access(path, os.X_OK) else (shutil.which(tool) or tool)


def psql_file(pg, db, sql):
    """Run sql as a user does: a file, one fresh psql session, stop at the first
    error; returns the CompletedProcess."""
    fd, path = tempfile.mkstemp(prefix="migd-psql-", suffix=".sql")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(sql)
        os.chmod(path, 0o644)
        return subprocess.run([pg_tool("psql"), "-X", "-v", "ON_ERROR_STOP=1",
                               "-h", pg.sockdir, "-p", str(pg.port), "-U", "postgres",
                               "-d", db, "-f", path],
                              env=migdtest.clean_env(), capture_output=True, text=True,
                              timeout=RUN_TIMEOUT, stdin=subprocess.DEVNULL)
    finally:
        os.unlink(path)


def psql_ok(pg, db, sql, what):
    p = psql_file(pg, db, sql)
    assert p.returncode == 0, "psql failed on %s (rc %d):\n%s\n%s" % (
        what, p.returncode, p.stdout[-2000:], p.stderr[-4000:])


def dump(pg, db, exclude):
    """pg_dump --schema-only of db without the tables in exclude, normalised."""
    cmd = [pg_tool("pg_dump"), "--schema-only", "-h", pg.sockdir, "-p", str(pg.port),
           "-U", "postgres", "-d", db] + ["--exclude-table=%s" % t for t in exclude]
    p = subprocess.run(cmd, env=migdtest.clean_env(), capture_output=True, text=True,
                       timeout=60, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, "pg_dump failed: %s" % p.stderr
    return "".join(line for line in p.stdout.splitlines(True)
                   if not DUMP_NOISE.match(line.rstrip("\n")))


def assert_same_dump(want, got, what, want_name="expected", got_name="got"):
    """Fails with a unified diff (cut at 6000 characters) when they differ."""
    if got == want:
        return
    diff = "".join(difflib.unified_diff(want.splitlines(True), got.splitlines(True),
                                        want_name, got_name, n=2))
    if len(diff) > 6000:
        diff = diff[:6000] + "\n... (diff cut)\n"
    raise AssertionError("%s: schemas differ\n%s" % (what, diff))


def migctl_ok(m, *args):
    p = m.migctl(*args, timeout=RUN_TIMEOUT)
    assert p.returncode == X_OK, "migctl %s: rc %d\n%s%s" % (
        " ".join(args), p.returncode, p.stdout[-3000:], p.stderr[-3000:])
    return p


def copy_fixture(m, name):
    """Copy a real-world fixture into the daemon's migrations directory and reload."""
    src = os.path.join(REALWORLD, name)
    for entry in sorted(os.listdir(src)):
        if entry.endswith(".sql"):
            shutil.copy(os.path.join(src, entry), os.path.join(m.migrations_dir, entry))
    ok(m, "reload")
