"""Helpers for test_cli.py and test_auth.py: revision files, migctl runs and
database checks, all through the real migd/migctl binaries and psql.
"""

import json
import os
import re
import subprocess
import textwrap
import time

import migdtest
from migdtest import MIGCTL_BIN, clean_env

# migctl exit codes (README, migctl(1))
X_OK, X_FAILED, X_USAGE, X_UNREACHABLE, X_CHECK, X_BUSY, X_FORBIDDEN = range(7)

ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")


# ---- revision files ---------------------------------------------------------

def rev_text(revision, down="none", up="", down_sql=None, message=None,
             transaction=None):
    lines = ["-- revision: %s" % revision, "-- down_revision: %s" % down]
    if message is not None:
        lines.append("-- message: %s" % message)
    if transaction is not None:
        lines.append("-- transaction: %s" % transaction)
    lines += ["", "-- migrate:up"]
    lines += textwrap.dedent(up).strip("\n").splitlines()
    if down_sql is not None:
        lines += ["", "-- migrate:down"]
        lines += textwrap.dedent(down_sql).strip("\n").splitlines()
    return "\n".join(lines) + "\n"


def write_rev(directory, name, revision, down="none", up="", **kw):
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        f.write(rev_text(revision, down, up, **kw))
    return path


def chain(directory, n, prefix="r"):
    """n linear revisions r1..rn, each creating (and dropping) public.t<i>."""
    paths = []
    for i in range(1, n + 1):
        paths.append(write_rev(
            directory, "%s%d_step.sql" % (prefix, i), "%s%d" % (prefix, i),
            down="none" if i == 1 else "%s%d" % (prefix, i - 1),
            up="CREATE TABLE public.%s_t%d (id int);" % (prefix, i),
            down_sql="DROP TABLE public.%s_t%d;" % (prefix, i),
            message="step %d" % i))
    return paths


# ---- migctl -----------------------------------------------------------------

def migctl(m, *args, env=None, timeout=30):
    """Run migctl against daemon m (MIGD_SOCKET set); returns CompletedProcess."""
    return m.migctl(*args, env=env, timeout=timeout)


def migctl_at(socket_path, *args, env=None, timeout=30, cwd=None):
    """Run migctl against a socket path (which may not exist)."""
    e = clean_env({"MIGD_SOCKET": socket_path})
    if env:
        e.update(env)
    return subprocess.run([MIGCTL_BIN] + list(args), env=e, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                          cwd=cwd)


def migctl_local(*args, env=None, cwd=None, timeout=30):
    """Run migctl with no socket set (new, merge)."""
    e = clean_env(env)
    return subprocess.run([MIGCTL_BIN] + list(args), env=e, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                          cwd=cwd)


def jrun(m, *args, env=None, timeout=30):
    """migctl --json ARGS: (rc, parsed stdout, proc); stdout must be one JSON
    document, and stderr empty: nothing for people with --json (issue 13)."""
    p = migctl(m, "--json", *args, env=env, timeout=timeout)
    assert p.stdout.strip(), ("migctl --json %s printed nothing" % " ".join(args),
                              p.returncode, p.stderr)
    try:
        doc = json.loads(p.stdout)
    except ValueError as e:
        raise AssertionError("migctl --json %s: stdout is not JSON (%s): %r"
                             % (" ".join(args), e, p.stdout[:1000]))
    assert p.stderr == "", ("migctl --json %s wrote to stderr" % " ".join(args),
                            p.stderr)
    return p.returncode, doc, p


def jok(m, *args, rc=X_OK, **kw):
    """migctl --json ARGS that must exit rc (default 0); the parsed output."""
    code, doc, p = jrun(m, *args, **kw)
    assert code == rc, ("migctl --json %s" % " ".join(args), code, p.stdout, p.stderr)
    return doc


def jerr(m, *args, rc, kind, **kw):
    """migctl --json ARGS that must fail with exit rc and data.kind; the error object."""
    code, doc, p = jrun(m, *args, **kw)
    assert code == rc, ("migctl --json %s" % " ".join(args), code, p.stdout, p.stderr)
    assert isinstance(doc, dict) and set(doc) == {"error"}, doc
    e = doc["error"]
    assert isinstance(e.get("code"), int), e
    assert isinstance(e.get("message"), str) and e["message"], e
    assert e.get("data", {}).get("kind") == kind, e
    return e


def no_ansi(*texts):
    for t in texts:
        assert "\x1b" not in t, "colour escape codes in output: %r" % t[:500]


# ---- the database -----------------------------------------------------------

def q(m, sql):
    return m.pg.psql(sql, m.db)


def versions(m):
    if q(m, "SELECT to_regclass('public.alembic_version') IS NOT NULL") != "t":
        return None
    out = q(m, "SELECT version_num FROM public.alembic_version ORDER BY 1")
    return out.splitlines() if out else []


def history(m):
    """History rows (dicts), oldest first; [] when the table does not exist."""
    if q(m, "SELECT to_regclass('public.migd_history') IS NOT NULL") != "t":
        return []
    out = q(m, "SELECT row_to_json(h) FROM public.migd_history h ORDER BY id")
    return [json.loads(line) for line in out.splitlines()] if out else []


def wait_activity(m, needle, timeout=10.0):
    """Wait until another backend is running a query containing needle."""
    migdtest.wait_for(
        lambda: q(m, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%%%s%%' "
                     "AND pid <> pg_backend_pid() AND state = 'active'" % needle) != "0",
        timeout, interval=0.05, what="a backend running %r" % needle)


def popen_migctl(socket_path, *args, env=None):
    e = clean_env({"MIGD_SOCKET": socket_path})
    if env:
        e.update(env)
    return subprocess.Popen([MIGCTL_BIN] + list(args), env=e, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)


def finish(p, timeout=30):
    """(rc, stdout, stderr, seconds waited) of a Popen."""
    t0 = time.monotonic()
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        raise AssertionError("migctl did not finish within %ss: %r %r" % (timeout, out, err))
    return p.returncode, out, err, time.monotonic() - t0
