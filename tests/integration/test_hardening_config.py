"""Hardening of the configuration and the log (issue 9): the conninfo masked
whatever its form (F10), log lines that cannot be forged or drive a terminal
(F11, F27's log half), migd.conf checked like the migration files (F18),
schemas read as SQL identifiers (F24), skipped migration paths said (F25).
Real migd, migctl and PostgreSQL throughout."""

import os
import pwd
import grp
import re
import signal
import stat
import time

import pytest

import migdtest
from migdtest import run_migd, wait_for
from engine_helpers import (E_MIGRATIONS, call, connected, err, ok, q, schema_exists,
                            step_revs, versions, write_rev)

SECRET = "Sh0uld-N3ver-Sh0w"
STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (error|warning|info|debug): ")


def start_fails(path):
    """`migd -c path` for real: it must refuse to start. The CompletedProcess."""
    import subprocess
    p = subprocess.run([migdtest.MIGD_BIN, "-c", path], capture_output=True, text=True,
                       timeout=15, env=migdtest.clean_env(), stdin=subprocess.DEVNULL)
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    return p


def no_secret(where, text):
    assert SECRET not in text, "the secret is shown in %s:\n%s" % (where, text[-3000:])


def log_lines(m, needle):
    return [l for l in m.log().splitlines() if needle in l]


# ---- F10: the conninfo masked whatever its form ----------------------------------

# What libpq cannot parse; its own messages quote the secret in each.
MALFORMED = {
    "uri_bad_percent": "postgresql://u:pa%%ss%s@/db?host=/nonexistent" % SECRET,
    "uri_trailing_percent": "postgresql://u:%s%%@/db?host=/nonexistent" % SECRET,
    "uri_percent_00": "postgresql://u:%s%%00@/db?host=/nonexistent" % SECRET,
    "uri_bad_ipv6": "postgresql://u:%s@[::1/db" % SECRET,
    "uri_encoded_equals": "postgresql://u@/db?password%%3D%s" % SECRET,
    "keyword_unquoted_blank": "host=/nonexistent password=my %s" % SECRET,
    "keyword_blank_then_equals": "host=/nonexistent password=my %s=x" % SECRET,
    "keyword_unterminated": "host=/nonexistent password='%s" % SECRET,
}


@pytest.mark.parametrize("form", sorted(MALFORMED))
def test_malformed_conninfo_never_shown(migd_factory, form):
    m = migd_factory(start=False, conninfo=MALFORMED[form])
    line = m.line_of("database", "conninfo")
    p = run_migd(["-n", "-c", m.config_path])
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert "%s:%d: invalid conninfo: " % (m.config_path, line) in p.stderr, p.stderr
    no_secret("migd -n", p.stdout + p.stderr)
    no_secret("migd start", start_fails(m.config_path).stderr)


def test_bad_percent_says_where(migd_factory):
    m = migd_factory(start=False, conninfo=MALFORMED["uri_bad_percent"])
    p = run_migd(["-n", "-c", m.config_path])
    assert "invalid percent-encoded token" in p.stderr, p.stderr
    assert "in the password of the URI: a % is written %25 there" in p.stderr, p.stderr


def test_malformed_conninfo_on_reload_never_shown(migd_factory):
    m = connected(migd_factory())
    good = m.sections["database"]["conninfo"]
    m.write_config({("database", "conninfo"): MALFORMED["uri_bad_percent"]})
    # the reload method (migctl reload and raw JSON-RPC)
    p = m.migctl("reload")
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert "invalid conninfo" in p.stdout + p.stderr, (p.stdout, p.stderr)
    no_secret("migctl reload", p.stdout + p.stderr)
    e = err(m, "reload", {})
    assert e["data"]["kind"] == "invalid_config", e
    no_secret("reload reply", repr(e))
    # SIGHUP
    before = len(log_lines(m, "reload failed"))
    m.signal(signal.SIGHUP)
    wait_for(lambda: len(log_lines(m, "reload failed")) > before, 10,
             what="the failed reload in the log")
    assert log_lines(m, "invalid conninfo"), m.log()
    no_secret("the log", m.log())
    # the previous settings kept: still connected, still serving
    s = m.status()
    assert s["database"]["connected"] is True, s
    m.write_config({("database", "conninfo"): good})
    ok(m, "reload", {})
    m.stop()
    no_secret("the log", m.log())


@pytest.mark.parametrize("conninfo,shown", [
    ("host=/nonexistent dbname=x sslpassword=%s sslkey=/k.pem" % SECRET,
     "sslpassword=********"),
    ("postgresql:///x?host=/nonexistent&sslpassword=%s" % SECRET,
     "sslpassword=********"),
    ("postgresql://u:pa%%25ss%s@/db?host=/nonexistent" % SECRET, "password=********"),
    ("host=/nonexistent password='with blank \\' and %s' dbname=x" % SECRET,
     "password=********"),
], ids=["sslpassword", "uri_sslpassword", "uri_encoded_percent",
        "quoted_blank_and_quote"])
def test_check_masks_every_secret(migd_factory, conninfo, shown):
    m = migd_factory(start=False, conninfo=conninfo)
    os.chmod(m.config_path, 0o600)
    p = run_migd(["-n", "-c", m.config_path])
    assert p.returncode == 0, p.stderr
    assert shown in p.stdout, p.stdout
    no_secret("migd -n", p.stdout + p.stderr)


@pytest.mark.parametrize("nested", [
    "postgresql://u:%s@/{db}" % SECRET,
    "host={sock} password=%s dbname={db}" % SECRET,
], ids=["uri", "keywords"])
def test_conninfo_in_dbname_refused(migd_factory, pg, make_db, nested):
    """libpq expands only the conninfo it is given, not one nested in its dbname:
    that one would reach the server as a database name, and the server's log and
    its "database ... does not exist" would quote it, password and all."""
    db = make_db(pg)
    conninfo = ("host=%s port=%d user=postgres dbname='%s'"
                % (pg.sockdir, pg.port, nested.format(db=db, sock=pg.sockdir)))
    m = migd_factory(pg=pg, db=db, start=False, conninfo=conninfo)
    os.chmod(m.config_path, 0o600)
    want = ("%s:%d: invalid conninfo: dbname holds a connection string"
            % (m.config_path, m.line_of("database", "conninfo")))
    p = run_migd(["-n", "-c", m.config_path])
    assert p.returncode == 1 and want in p.stderr, (p.stdout, p.stderr)
    no_secret("migd -n", p.stdout + p.stderr)
    no_secret("migd start", start_fails(m.config_path).stderr)
    # a running daemon given it on reload refuses it, and keeps its connection
    m.write_config({("database", "conninfo"): pg.conninfo(db)})
    m.start()
    connected(m)
    m.write_config({("database", "conninfo"): conninfo})
    e = err(m, "reload", {})
    assert "dbname holds a connection string" in e["message"], e
    no_secret("reload reply", repr(e))
    assert m.status()["database"]["connected"] is True
    m.stop()
    no_secret("the log", m.log())
    no_secret("the server's log", pg.log_tail(400))


# ---- F11: one log line per message, control characters escaped ------------------

FORGED = "nope\n2026-11-30 12:00:00 error: FORGED line \x1b[31mred\x1b]0;title\x07\r\x9b"


def test_request_cannot_forge_log_lines(migd_factory):
    m = connected(migd_factory(args=()))      # info level: the failure is logged once
    write_rev(m, "f1_first.sql", "f1", up="CREATE TABLE public.f1_t (id int);")
    e = err(m, "plan", {"target": FORGED})
    assert "unknown revision" in e["message"], e
    m.stop()
    log = m.log()
    assert "\x1b" not in log and "\x07" not in log and "\r" not in log, repr(log[-2000:])
    hits = [l for l in log.splitlines() if "FORGED" in l]
    assert len(hits) == 1, hits
    assert STAMP.match(hits[0]), hits
    assert ("nope\\n2026-11-30 12:00:00 error: FORGED line \\x1b[31mred\\x1b]0;title"
            "\\x07\\r\\u009b") in hits[0], hits
    for l in log.splitlines():
        assert STAMP.match(l) or l.startswith("***"), "a line without its stamp: %r" % l


def test_file_text_escaped_in_the_log(migd_factory):
    """The server's error quotes the file's SQL; the log gets it escaped."""
    m = connected(migd_factory(args=()))
    write_rev(m, "e1_first.sql", "e1",
              up="SELECT 'x\x1b[2J\x1b[H\nFAKE 2026-11-30 12:00:00 error: FAKE'::int;")
    e = err(m, "upgrade", {})
    assert "invalid input syntax" in e["message"], e
    assert versions(m) in (None, [])
    m.stop()
    log = m.log()
    assert "\x1b" not in log, repr(log[-2000:])
    assert any("\\x1b[2J" in l and STAMP.match(l) for l in log.splitlines()), log
    assert not any(l.startswith("FAKE") for l in log.splitlines()), log


# ---- F18: migd.conf trusted like the migration files ------------------------------

def _reload_refused(m, needle):
    """The running daemon refuses the file on reload (method and SIGHUP) and serves on."""
    e = err(m, "reload", {})
    assert e["data"]["kind"] == "invalid_config" and needle in e["message"], e
    before = len(log_lines(m, "reload failed"))
    m.signal(signal.SIGHUP)
    wait_for(lambda: len(log_lines(m, "reload failed")) > before, 10,
             what="the refused reload in the log")
    assert m.status()["database"]["connected"] is True


@pytest.mark.parametrize("how", ["world_writable", "group_writable"])
def test_config_writable_by_others_refused(migd_factory, how):
    m = connected(migd_factory())
    me = pwd.getpwuid(os.geteuid()).pw_name
    if how == "world_writable":
        os.chmod(m.config_path, 0o646)
        want = ("%s: refusing a configuration file writable by other users (owner %s, "
                "mode 0646): chmod o-w %s" % (m.config_path, me, m.config_path))
    else:
        # a group other than the owner's private one (nobody's group has no members
        # named like root); chown needs root
        if os.geteuid() != 0:
            pytest.skip("chgrp to another group needs root (CI runs as root)")
        g = grp.getgrnam("nogroup")
        os.chown(m.config_path, -1, g.gr_gid)
        os.chmod(m.config_path, 0o664)
        want = ("%s: refusing a configuration file writable by group nogroup (owner %s, "
                "mode 0664): chmod g-w %s" % (m.config_path, me, m.config_path))
    p = run_migd(["-n", "-c", m.config_path])
    assert p.returncode == 1 and want in p.stderr, (p.stdout, p.stderr)
    assert want in start_fails(m.config_path).stderr
    _reload_refused(m, "refusing a configuration file")
    # fixed: accepted again
    os.chmod(m.config_path, 0o644)
    ok(m, "reload", {})


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root "
                    "(CI runs as root)")
def test_config_owned_by_another_user_refused(migd_factory):
    m = connected(migd_factory())
    nobody = pwd.getpwnam("nobody")
    os.chmod(m.config_path, 0o644)
    os.chown(m.config_path, nobody.pw_uid, nobody.pw_gid)
    want = ("%s: refusing a configuration file owned by nobody (mode 0644), not by root "
            "or migd's user root: nobody could change what migd does (chown root %s)"
            % (m.config_path, m.config_path))
    p = run_migd(["-n", "-c", m.config_path])
    assert p.returncode == 1 and want in p.stderr, (p.stdout, p.stderr)
    assert want in start_fails(m.config_path).stderr
    _reload_refused(m, "owned by nobody")
    os.chown(m.config_path, 0, 0)
    ok(m, "reload", {})


def test_config_with_password_readable_by_others_warned(migd_factory, pg, make_db):
    db = make_db(pg)
    m = migd_factory(pg=pg, db=db, start=False,
                     conninfo=pg.conninfo(db, "password=%s" % SECRET))
    warning = "holds a password and is readable by every user (mode 0644)"
    os.chmod(m.config_path, 0o644)
    p = run_migd(["-n", "-c", m.config_path])
    assert p.returncode == 0, p.stderr
    assert "warning: %s: %s" % (m.config_path, warning) in p.stderr, p.stderr
    no_secret("migd -n", p.stdout + p.stderr)
    m.start()
    connected(m)                       # a warning, not a refusal
    assert len(log_lines(m, warning)) == 1, m.log()
    # 0640: no warning, at reload either
    os.chmod(m.config_path, 0o640)
    p = run_migd(["-n", "-c", m.config_path])
    assert p.returncode == 0 and "readable by every user" not in p.stderr, p.stderr
    ok(m, "reload", {})
    assert len(log_lines(m, warning)) == 1, m.log()
    m.stop()
    no_secret("the log", m.log())


def test_config_without_password_readable_is_fine(migd_factory):
    m = migd_factory(start=False)
    os.chmod(m.config_path, 0o644)
    p = run_migd(["-n", "-c", m.config_path])
    assert p.returncode == 0 and "warning" not in p.stderr, p.stderr


# ---- F24: schemas follow SQL identifier rules ------------------------------------

def test_schemas_quoted_and_folded_as_sql(migd_factory):
    m = migd_factory(start=False, overrides={
        ("migrations", "schemas"): '"Work Shop", Sales, "we""ird", "Mixed"'})
    p = run_migd(["-n", "-c", m.config_path])
    assert p.returncode == 0, p.stderr
    assert 'schemas = "Work Shop", sales, "we""ird", "Mixed"\n' in p.stdout, p.stdout
    m.start()
    connected(m)
    write_rev(m, "s1_first.sql", "s1", up='''
        CREATE TABLE "Work Shop".bays (id int);
        CREATE TABLE Sales.orders (id int);
        ''')
    listed = {s["name"]: s for s in ok(m, "schemas")["schemas"]}
    assert {"Work Shop", "sales", 'we"ird', "Mixed"} <= set(listed), listed
    assert listed["Work Shop"]["source"] == "config", listed
    assert '"Work Shop"' not in listed and "Sales" not in listed, listed
    res = ok(m, "upgrade", {})
    assert step_revs(res) == ["s1"]
    assert set(res["schemas_created"]) == {"Work Shop", "sales", 'we"ird', "Mixed"}, res
    for name in ("Work Shop", "sales", 'we"ird', "Mixed"):
        assert schema_exists(m, name), name
    for name in ('"Work Shop"', "Sales", "mixed"):
        assert not schema_exists(m, name), name
    assert q(m, 'SELECT count(*) FROM "Work Shop".bays') == "0"


@pytest.mark.parametrize("value,why", [
    ('"Work Shop', 'schema name "Work Shop has no closing double quote'),
    ('cars, ""', 'empty quoted schema name ""'),
    ("cars,, sales", "empty schema name in list"),
    ("Work Shop", "schema name 'Work Shop' is not a plain SQL identifier"),
    ('we"ird', "schema name 'we\"ird' has a double quote inside"),
    ('"a" b', 'unexpected text after the schema name "a"'),
    ("PG_Catalog", "'pg_catalog' is a system schema"),
], ids=["unbalanced", "empty_quoted", "empty", "blank_unquoted", "inner_quote",
        "text_after_quote", "system_folded"])
def test_schemas_invalid_entries_refused(migd_factory, value, why):
    m = connected(migd_factory())
    m.write_config({("migrations", "schemas"): value})
    line = m.line_of("migrations", "schemas")
    p = run_migd(["-n", "-c", m.config_path])
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert "%s:%d: %s" % (m.config_path, line, why) in p.stderr, p.stderr
    # a running daemon keeps its schemas
    e = err(m, "reload", {})
    assert why in e["message"], e
    listed = {s["name"] for s in ok(m, "schemas")["schemas"]}
    assert {"cars", "participants", "work_shop"} <= listed, listed


# ---- F25: skipped paths said once per load -------------------------------------

def test_skipped_paths_logged_once(migd_factory):
    m = migd_factory(start=False)
    write_rev(m, "k1_first.sql", "k1", up="CREATE TABLE public.k1_t (id int);")
    real = os.path.join(m.dir, "elsewhere")
    os.makedirs(real)
    with open(os.path.join(real, "k2_second.sql"), "w") as f:
        f.write("-- revision: k2\n-- down_revision: k1\n\n-- migrate:up\n"
                "CREATE TABLE public.k2_t (id int);\n")
    linked = os.path.join(m.migrations_dir, "linked")
    os.symlink(real, linked)
    upper = write_rev(m, "K3_third.SQL", "k3", down="k1", up="SELECT 1;")
    said = "%s: skipped: a symbolic link to a directory" % linked
    said_upper = "%s: skipped: only names ending in .sql, in lower case" % upper

    p = run_migd(["-n", "-c", m.config_path])
    assert p.returncode == 0, p.stderr
    assert "warning: " + said in p.stderr and "warning: " + said_upper in p.stderr, p.stderr

    m.start()
    connected(m)
    hits = log_lines(m, said)
    assert len(hits) == 1 and " warning: " in hits[0], m.log()
    assert len(log_lines(m, said_upper)) == 1, m.log()
    for _ in range(5):
        m.status()
        ok(m, "plan", {})
    # a change to the files reloads them: the same skips are not said again
    write_rev(m, "k4_fourth.sql", "k4", down="k1", up="SELECT 1;")
    assert step_revs(ok(m, "upgrade", {})) == ["k1", "k4"]
    assert len(log_lines(m, said)) == 1, m.log()
    # an explicit reload says them again
    ok(m, "reload", {})
    assert len(log_lines(m, said)) == 2, m.log()
    # nothing from the linked directory ran
    assert q(m, "SELECT to_regclass('public.k2_t') IS NULL") == "t"
