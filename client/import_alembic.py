#!/usr/bin/python3
"""migctl-import-alembic: `migctl import alembic ALEMBIC_INI` runs this.

It renders every revision of an Alembic project through Alembic's own
offline mode (the project's env.py and its run_migrations_offline, no
database connection), one revision and one direction at a time, all in one
Python process, and writes one migd file per revision.  Alembic's own
bookkeeping (its version table's DDL and rows, and the BEGIN/COMMIT it wraps
a run in) is left out; statements of an autocommit_block() stay outside any
transaction.  A file this program wrote carries the SHA-256 of what it
wrote, so that a file a person edited since is never overwritten.

Usage: migctl-import-alembic ALEMBIC_INI --out DIR [--allow-partial] [--json]
       [--version-table SCHEMA.TABLE [--config FILE]]
(--version-table: what migd will use, from --config, else migd's default.)
Exit: 0 done; 1 a revision cannot be rendered (nothing written), or the
project cannot be loaded; 2 usage.
"""

import hashlib
import io
import json
import os
import re
import sys
import traceback

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
IMPORT_MARK = "-- imported-from: alembic "
SHA_RE = re.compile(r" sha256=([0-9a-f]{64})$")
ID_RE = re.compile(r"^[A-Za-z0-9_.][A-Za-z0-9_.-]{0,31}$")
RESERVED = ("head", "heads", "base", "none")
REV_RE = re.compile(r"^--[ \t]*revision[ \t]*:[ \t]*(\S+)[ \t]*$", re.M)


class ImportFailure(Exception):
    """The project as a whole cannot be imported: the message says why."""


class OfflineRead(Exception):
    """A revision asked the database for rows, which offline mode has not."""


READ_RE = re.compile(r"^\s*(?:\(\s*)*(SELECT|WITH|VALUES|TABLE|SHOW|FETCH|"
                     r"EXPLAIN)\b", re.I)


def is_read(construct):
    """Whether a statement run through op.get_bind() asks for rows."""
    from sqlalchemy.sql.elements import TextClause

    if getattr(construct, "is_select", False):
        return True
    if isinstance(construct, str):
        return bool(READ_RE.match(construct))
    if isinstance(construct, TextClause):
        return bool(READ_RE.match(construct.text))
    return False


def usage():
    sys.stderr.write("usage: migctl import alembic ALEMBIC_INI [--out DIR] "
                     "[--allow-partial]\n")
    sys.exit(EXIT_USAGE)


def slug(text):
    """A file-name slug of a message, as migctl new makes them."""
    words = re.findall(r"[A-Za-z0-9]+", text.lower())
    s = "_".join(words)[:40].rstrip("_")
    return s or "revision"


def sha256(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def without_mark(text):
    """The file's text less its import line, which holds the checksum."""
    return "".join(line for line in text.splitlines(True)
                   if not line.startswith(IMPORT_MARK))


def one_line(text):
    """Header values are one line of printable text."""
    return re.sub(r"[\x00-\x1f\x7f]+", " ", text).strip()


class Renderer:
    """Renders one revision, one direction, through the project's env.py in
    offline mode, capturing each statement Alembic emits as it emits it."""

    def __init__(self, cfg, script):
        from alembic.ddl.impl import DefaultImpl
        from alembic.runtime.environment import EnvironmentContext
        from alembic.runtime.migration import RevisionStep

        self.cfg = cfg
        self.script = script
        self.chunks = None
        self.version_re = None
        self.version_table = None
        self.EnvironmentContext = EnvironmentContext
        self.RevisionStep = RevisionStep
        renderer = self

        # Every statement, BEGIN and COMMIT of offline mode goes through
        # static_output, one call each: the split needs no SQL parsing.
        def static_output(impl, text):
            if renderer.chunks is None:
                raise ImportFailure("Alembic wrote output outside a render")
            renderer.chunks.append(text)

        DefaultImpl.static_output = static_output

        # op.get_bind() in offline mode is a mock that writes what it is
        # given: a query would come out as SQL and hand None to the Python
        # that wanted rows.  Stop such a revision and say why.
        from alembic.runtime.migration import MigrationContext
        from sqlalchemy.engine.mock import MockConnection

        def stdout_connection(mc, connection):
            def dump(construct, *multiparams, **params):
                if is_read(construct):
                    raise OfflineRead(" ".join(str(getattr(
                        construct, "text", construct)).split())[:80])
                mc.impl._exec(construct)
            return MockConnection(mc.dialect, dump)

        MigrationContext._stdout_connection = stdout_connection
        force_literal_sql(EnvironmentContext)
        # Offline, SQLAlchemy's PostgreSQL dialect never learns the server's
        # standard_conforming_strings and assumes off (as before 9.1): it
        # doubles every backslash of a literal (bulk_insert, bound values),
        # and 'C:\temp' would arrive as C:\\temp.  Online, Alembic sends
        # the value itself; with the servers' default (on since 9.1) a
        # literal keeps its backslashes as they are.
        from sqlalchemy.dialects.postgresql.base import PGDialect
        PGDialect._backslash_escapes = False
        # Nothing of offline mode reaches our stdout.
        cfg.output_buffer = io.StringIO()

    def render(self, rev, upgrade):
        """The statements of rev's upgrade() or downgrade(): a list of
        (sql, in_transaction), and whether Alembic wrapped it in BEGIN."""
        from alembic import util as alembic_util

        parents = list(alembic_util.to_tuple(rev.down_revision, default=()))
        step = self.RevisionStep(self.script.revision_map, rev, upgrade)
        start = (parents or None) if upgrade else [rev.revision]
        dest = rev.revision if upgrade else (parents or None)

        def fn(heads, context):
            return [step]

        self.chunks = []
        ectx = self.EnvironmentContext(
            self.cfg, self.script, fn=fn, as_sql=True, starting_rev=start,
            destination_rev=dest, tag=None)
        try:
            with ectx:
                self.script.run_env()
                mc = ectx.get_context() if ectx._migration_context else None
                if mc is not None and self.version_re is None:
                    self.version_re = version_pattern(mc)
                    self.version_table = "%s.%s" % (
                        mc._version.schema or "public", mc._version.name)
        finally:
            chunks, self.chunks = self.chunks, None
        if self.version_re is None:
            raise ImportFailure("the project's env.py did not configure "
                                "Alembic's context in offline mode (is "
                                "context.configure() called in "
                                "run_migrations_offline()?)")
        return self.split(chunks)

    def split(self, chunks):
        """(sql, in_transaction, own): own is false for what env.py itself
        ran around the revision (before Alembic's "-- Running" line, after
        its version-table statement), such as a CREATE SCHEMA IF NOT EXISTS
        before every run: kept, but it decides nothing about transactions."""
        stmts, in_tx, began, phase = [], False, False, "env"
        for chunk in chunks:
            s = chunk.strip()
            if not s:
                continue
            if s.startswith("-- Running "):
                phase = "own"
                continue
            word = s.rstrip(";").strip().upper()
            if word in ("BEGIN", "BEGIN TRANSACTION", "START TRANSACTION"):
                in_tx = began = True
                continue
            if word in ("COMMIT", "END"):
                in_tx = False
                continue
            if self.version_re.match(s):
                if phase == "own":
                    phase = "after"
                continue
            stmts.append((s, in_tx, phase == "own"))
        return stmts, began


def force_literal_sql(EnvironmentContext):
    """The files must hold the SQL Alembic ran online, values and all.  An
    env.py written before Alembic's template had them (1.4) configures
    offline mode without literal_binds (values come out as %(name)s
    placeholders) or without the named paramstyle (every % of a statement
    or a value comes out doubled, as '100%%'): both are set here, whatever
    env.py says."""
    import inspect

    configure = EnvironmentContext.configure
    signature = inspect.signature(configure)
    rest = next(p.name for p in signature.parameters.values()
                if p.kind == p.VAR_KEYWORD)

    def literal_configure(ectx, *args, **kw):
        bound = signature.bind(ectx, *args, **kw)
        a = bound.arguments
        if a.get("connection") is None:
            a.setdefault(rest, {})["literal_binds"] = True
            a["dialect_opts"] = dict(a.get("dialect_opts") or {},
                                     paramstyle="named")
        return configure(*bound.args, **bound.kwargs)

    EnvironmentContext.configure = literal_configure


def version_pattern(mc):
    """Alembic's own statements on its version table, to leave out."""
    table = mc._version
    names = [re.escape(table.name), re.escape('"%s"' % table.name)]
    name = "(?:%s)" % "|".join(names)
    if table.schema:
        name = r'(?:(?:"?%s"?)\.)?%s' % (re.escape(table.schema), name)
    else:
        name = r'(?:(?:"?\w+"?)\.)?%s' % name
    return re.compile(r"^(?:CREATE TABLE|DROP TABLE|INSERT INTO|UPDATE|"
                      r"DELETE FROM)\s+%s(?:\s|\(|;|$)" % name, re.I)


def section(stmts, began, bare):
    """A section's text.  In a transaction: the statements as they are.  A
    file outside a transaction keeps each run of statements Alembic had in a
    transaction between BEGIN and COMMIT, as it ran them."""
    if not bare or not began:
        return "\n\n".join(s for s, _, _ in stmts)
    out, open_ = [], False
    for s, in_tx, _ in stmts:
        if in_tx and not open_:
            out.append("BEGIN;")
            open_ = True
        elif not in_tx and open_:
            out.append("COMMIT;")
            open_ = False
        out.append(s)
    if open_:
        out.append("COMMIT;")
    return "\n\n".join(out)


def needs_bare(stmts, began):
    """Statements of the revision Alembic emitted between its COMMIT and
    BEGIN: an autocommit_block(), which must not run in a transaction.
    env.py's own statements outside the transaction Alembic opens per
    migration (transaction_per_migration=True) are not the revision's: they
    run in its transaction then, as each file repeats them."""
    return began and any(not in_tx for _, in_tx, own in stmts if own)


def in_file(exc, path):
    """Whether the traceback of exc passes through the file at path."""
    return any(os.path.abspath(fs.filename) == os.path.abspath(path)
               for fs in traceback.extract_tb(exc.__traceback__))


def env_failure(exc, rev, root):
    """A failure that never reached the revision's own code: the project's
    env.py (or what it needs) fails offline, for every revision alike, so
    no revision is to blame and no placeholder would help."""
    where = ""
    for fs in traceback.extract_tb(exc.__traceback__):
        if os.path.basename(fs.filename) == "env.py":
            where = " (%s line %d)" % (os.path.relpath(fs.filename, root),
                                       fs.lineno)
    text = "%s: %s" % (type(exc).__name__, exc) if str(exc) else \
        type(exc).__name__
    hint = ""
    if isinstance(exc, KeyError) and exc.args and isinstance(exc.args[0],
                                                             str):
        hint = ("; env.py reads %s from the environment: set it for the "
                "import too (offline mode connects to nothing, and only "
                "the dialect of the URL counts, e.g. %s=postgresql://)" % (
                    exc.args[0], exc.args[0]))
    if "url, or dialect_name is required" in str(exc):
        hint = ("; env.py gave context.configure() no URL: offline mode "
                "needs only its dialect, so give it one as env.py reads it "
                "(sqlalchemy.url in alembic.ini, or the environment "
                "variable env.py takes it from), such as postgresql://")
    return ("the project's env.py raised %s%s in offline mode, before "
            "revision %s's own code ran: it would fail for every revision, "
            "so nothing is written%s" % (text, where, rev.revision, hint))


def irreversible(exc, rev_path):
    """A downgrade() that raises NotImplementedError itself says the
    revision cannot be undone: the file then has no down section, which
    migd refuses to downgrade, as Alembic refuses.  Returns what it said
    and where, or None when the error came from anywhere else."""
    tb = traceback.extract_tb(exc.__traceback__)
    if not tb or os.path.abspath(tb[-1].filename) != os.path.abspath(
            rev_path) or tb[-1].name != "downgrade":
        return None
    text = "%s: %s" % (type(exc).__name__, exc) if str(exc) else \
        type(exc).__name__
    return "%s (line %d)" % (text, tb[-1].lineno)


def describe_failure(exc, rev_path):
    """Why a revision cannot be rendered offline, for a person."""
    line = None
    for fs in traceback.extract_tb(exc.__traceback__):
        if os.path.abspath(fs.filename) == os.path.abspath(rev_path):
            line = fs.lineno
    where = " (line %d)" % line if line else ""
    if isinstance(exc, OfflineRead):
        return ("it reads rows through op.get_bind()%s (%s): offline mode "
                "has no database to answer, and its Python decides what to "
                "do from the rows" % (where, exc))
    text = "%s: %s" % (type(exc).__name__, exc) if str(exc) else \
        type(exc).__name__
    tb = traceback.extract_tb(exc.__traceback__)
    own = bool(tb) and os.path.abspath(tb[-1].filename) == os.path.abspath(
        rev_path)
    if (isinstance(exc, NotImplementedError) and not own) or \
            "MockConnection" in text:
        return ("it runs queries through op.get_bind()%s, which offline mode "
                "cannot answer (%s): its Python decides what to do from rows "
                "of the database" % (where, text))
    return "rendering it offline raised %s%s" % (text, where)


def header(rev, message, transaction_none, unfinished, source):
    from alembic import util as alembic_util

    down = list(alembic_util.to_tuple(rev.down_revision, default=()))
    deps = list(getattr(rev, "_resolved_dependencies", ()) or ())
    labels = list(getattr(rev, "_orig_branch_labels", ()) or ())
    lines = ["-- revision: %s" % rev.revision,
             "-- down_revision: %s" % (", ".join(down) if down else "none")]
    if deps:
        lines.append("-- depends_on: %s" % ", ".join(deps))
    if labels:
        lines.append("-- branch_labels: %s" % ", ".join(labels))
    if message:
        lines.append("-- message: %s" % message)
    if transaction_none:
        lines.append("-- transaction: none")
    if unfinished:
        lines.append("-- unfinished: %s" % unfinished)
    return "\n".join(lines) + "\n"


def existing_files(out):
    """revision id -> path of the .sql files already in the directory."""
    found = {}
    if not os.path.isdir(out):
        return found
    for dirpath, dirnames, filenames in os.walk(out):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if name.startswith(".") or not name.endswith(".sql"):
                continue
            path = os.path.join(dirpath, name)
            try:
                with open(path, encoding="utf-8", errors="replace") as f:
                    head = f.read(8192)
            except OSError:
                continue
            m = REV_RE.search(head.split("-- migrate:up", 1)[0])
            rev = m.group(1) if m else name[:-4].split("_", 1)[0]
            found.setdefault(rev, path)
    return found


def write_atomic(path, text):
    tmp = "%s.%d.tmp" % (path, os.getpid())
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)    # migd refuses files others may write
        os.replace(tmp, path)
    except OSError:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise


def place(out, existing, rev, message, text, source):
    """Writes one file unless a person edited it since it was imported:
    returns (action, path, why)."""
    body = text
    # The import line goes last in the header, before -- migrate:up.
    head, sep, rest = body.partition("\n\n-- migrate:up\n")
    full = head + "\n%s%s sha256=%s" % (IMPORT_MARK, source, sha256(body)) + \
        sep + rest
    path = existing.get(rev.revision)
    if path is None:
        path = os.path.join(out, "%s_%s.sql" % (rev.revision, slug(message)))
        if os.path.exists(path):
            return ("kept", path, "a file of that name exists and does not "
                    "name revision %s" % rev.revision)
        write_atomic(path, full)
        return ("written", path, None)
    with open(path, encoding="utf-8", errors="replace") as f:
        old = f.read()
    mark = [line for line in old.splitlines() if line.startswith(IMPORT_MARK)]
    m = SHA_RE.search(mark[0]) if mark else None
    if m is None:
        return ("kept", path, "it was not written by import (no "
                "'%s... sha256=' line)" % IMPORT_MARK.strip())
    if sha256(without_mark(old)) != m.group(1):
        return ("kept", path, "it was edited since it was imported")
    if old == full:
        return ("unchanged", path, None)
    write_atomic(path, full)
    return ("updated", path, None)


def quiet_logging():
    """env.py usually calls fileConfig(alembic.ini), whose alembic logger
    says INFO lines on stderr for every run: once per revision and direction
    here.  The project's logging setup has no part in an import."""
    import logging
    import logging.config

    logging.config.fileConfig = lambda *args, **kwargs: None
    logging.getLogger("alembic").setLevel(logging.WARNING)


def bad_id(value, what):
    """Why an Alembic id or label cannot be one in a migd file, or None."""
    if not ID_RE.match(value):
        return ("its %s '%s' is not valid in migd: 1 to 32 characters of "
                "letters, digits, '_', '.', '-', not starting with '-'" % (
                    what, value))
    if value.lower() in RESERVED:
        return "its %s '%s' is reserved in migd (head, heads, base, none)" % (
            what, value)
    return None


def run_directory(ini, loc):
    """Where Alembic would be run: a relative script_location (and
    prepend_sys_path) is relative to the directory Alembic runs in.  Projects
    are usually run from the directory of alembic.ini; one whose ini sits
    elsewhere (alembic -c deploy/alembic.ini, from the root) is run from
    where its script_location is, which is where migctl runs then."""
    here, cwd = os.path.dirname(ini), os.getcwd()
    if os.path.isabs(loc) or ":" in loc:    # a path, or package:resource
        return here
    for d in (here, cwd):
        if os.path.isdir(os.path.join(d, loc)):
            return d
    raise ImportFailure(
        "%s: script_location = %s is not a directory under the directory of "
        "alembic.ini (%s) nor under the current directory (%s): Alembic "
        "reads it relative to the directory it runs in, so run migctl "
        "import from there (or write script_location = %%(here)s/...)" % (
            ini, loc, here, cwd))


def load_project(ini):
    try:
        from alembic.config import Config
        from alembic.script import ScriptDirectory
        from alembic import util as alembic_util
    except ImportError as e:
        raise ImportFailure(
            "Alembic is not installed for %s (%s): install it (Debian: "
            "apt-get install python3-alembic), or run migctl with "
            "MIGCTL_PYTHON set to a python that has it" % (sys.executable, e))
    if not os.path.isfile(ini):
        raise ImportFailure("%s: no such file (give the project's "
                            "alembic.ini)" % ini)
    ini = os.path.abspath(ini)
    cfg = Config(ini)
    loc = cfg.get_main_option("script_location")
    if not loc:
        raise ImportFailure("%s: no script_location in [alembic]: is this "
                            "the project's alembic.ini?" % ini)
    os.chdir(run_directory(ini, loc))
    try:
        script = ScriptDirectory.from_config(cfg)
        revs = list(script.walk_revisions("base", "heads"))
    except ImportError as e:
        raise ImportFailure(import_hint(e, "loading the revision files"))
    except alembic_util.CommandError as e:
        raise ImportFailure("%s: %s" % (ini, e))
    revs.reverse()      # parents first
    return cfg, script, revs


def import_hint(exc, what):
    return ("%s failed: %s: %s. The project's own imports must be importable: "
            "run this from a checkout with its dependencies installed, or set "
            "PYTHONPATH (or prepend_sys_path in alembic.ini)" % (
                what, type(exc).__name__, exc))


def message_of(rev):
    doc = (rev.module.__doc__ or "").strip() if rev.module else ""
    first = doc.splitlines()[0] if doc else ""
    return one_line(first)


def version_table_hint(project, migd, config):
    """The project's env.py names the table Alembic keeps its versions in
    (context.configure's version_table, version_table_schema).  migd must
    read the same one, or a database Alembic migrated looks empty to it and
    every revision would run again: say so when they differ."""
    if project is None or project == migd:
        return None
    where = ("%s has version_table = %s" % (config, migd) if config else
             "migd's default is %s" % migd)
    return ("the project's env.py keeps Alembic's versions in %s, but %s: "
            "set 'version_table = %s' in %s [migrations] before migd "
            "reaches a database Alembic migrated, or it sees nothing "
            "applied there and would run every revision again" % (
                project, where, project, "its" if config else "migd.conf's"))


def run(ini, out, allow_partial, migd_table, config):
    quiet_logging()
    cfg, script, revs = load_project(ini)
    root = os.getcwd()      # where load_project runs the project
    renderer = Renderer(cfg, script)
    rendered, problems, irreversibles = [], [], {}
    for rev in revs:
        source = os.path.relpath(rev.path, root)
        message = message_of(rev)
        why = bad_id(rev.revision, "revision id") or next(
            (bad_id(x, "branch label") for x in
             getattr(rev, "_orig_branch_labels", ()) or ()
             if bad_id(x, "branch label")), None)
        if why is not None:
            problems.append({"revision": rev.revision, "file": source,
                             "reason": why + "; rename it in Alembic first",
                             "placeholder": False})
            rendered.append((rev, message, source, None))
            continue
        no_down = None
        try:
            up, up_began = renderer.render(rev, True)
            try:
                down, down_began = renderer.render(rev, False)
            except NotImplementedError as e:
                no_down = irreversible(e, rev.path)
                if no_down is None:
                    raise
                down, down_began = [], False
        except ImportFailure:
            raise
        except ImportError as e:
            raise ImportFailure(import_hint(e, "running env.py for %s" %
                                            rev.revision))
        except Exception as e:      # noqa: BLE001 (the revision's own code)
            if not in_file(e, rev.path):
                raise ImportFailure(env_failure(e, rev, root))
            problems.append({"revision": rev.revision, "file": source,
                             "reason": describe_failure(e, rev.path)})
            rendered.append((rev, message, source, None))
            continue
        bare = needs_bare(up, up_began) or needs_bare(down, down_began)
        text = header(rev, message, bare, None, source) + \
            "\n-- migrate:up\n" + section(up, up_began, bare) + "\n"
        if no_down is None:
            text += "\n-- migrate:down\n" + section(down, down_began, bare) + \
                "\n"
        else:
            irreversibles[rev.revision] = no_down
        rendered.append((rev, message, source, text))
    # A placeholder keeps the graph whole; an id migd refuses cannot.
    if problems and (not allow_partial or not all(
            p.get("placeholder", True) for p in problems)):
        return {"directory": out, "revisions": [], "problems": problems,
                "written": False, "version_table": renderer.version_table}
    if os.path.exists(out) and not os.path.isdir(out):
        raise ImportFailure("--out %s exists and is not a directory; nothing "
                            "written" % out)
    try:
        os.makedirs(out, mode=0o755, exist_ok=True)
    except OSError as e:
        raise ImportFailure("cannot create the directory %s: %s; nothing "
                            "written" % (out, e.strerror or e))
    existing = existing_files(out)
    results = []
    for rev, message, source, text in rendered:
        placeholder = text is None
        if placeholder:
            why = next(p["reason"] for p in problems
                       if p["revision"] == rev.revision)
            text = header(rev, message, False, "not imported from %s: "
                          "write its SQL, then remove this line" % source,
                          source) + \
                "\n-- migrate:up\n-- %s could not be rendered offline:\n-- %s\n" \
                "\n-- migrate:down\n" % (source, why)
        try:
            action, path, why = place(out, existing, rev, message, text,
                                      source)
        except OSError as e:
            raise ImportFailure(
                "cannot write the file of revision %s into %s: %s; the "
                "files of the %d revisions before it are in place (import "
                "again once it can write: it updates what it wrote)" % (
                    rev.revision, out, e.strerror or e, len(results)))
        if placeholder and action in ("written", "updated"):
            action = "placeholder"
        results.append({"revision": rev.revision, "file": path,
                        "action": action, **({"reason": why} if why else {}),
                        **({"irreversible": irreversibles[rev.revision]}
                           if rev.revision in irreversibles else {})})
    res = {"directory": out, "revisions": results, "problems": problems,
           "written": True, "version_table": renderer.version_table}
    hint = version_table_hint(renderer.version_table, migd_table, config)
    if hint:
        res["version_table_hint"] = hint
    return res


def report(res, as_json):
    if as_json:
        json.dump(res, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    for p in res["problems"]:
        sys.stderr.write("migctl: %s (%s) cannot be imported: %s\n" % (
            p["revision"], p["file"], p["reason"]))
    if not res["written"]:
        sys.stderr.write("migctl: nothing written; rewrite those revisions "
                         "so that they need no database, or import with "
                         "--allow-partial and fill in the placeholders\n")
        return
    counts = {}
    for r in res["revisions"]:
        counts[r["action"]] = counts.get(r["action"], 0) + 1
        if r["action"] == "kept":
            sys.stderr.write("migctl: kept %s: %s\n" % (r["file"], r["reason"]))
        elif r["action"] == "placeholder":
            sys.stderr.write("migctl: wrote placeholder %s: it refuses to run "
                             "until its SQL is written\n" % r["file"])
        elif r["action"] in ("written", "updated"):
            print("%s %s" % (r["action"], r["file"]))
        if "irreversible" in r and r["action"] in ("written", "updated"):
            sys.stderr.write("migctl: %s has no down section: its downgrade() "
                             "raises %s, so migd refuses to downgrade it, "
                             "as Alembic does\n" % (r["file"],
                                                     r["irreversible"]))
    print("imported %d revisions into %s (%s)" % (
        len(res["revisions"]), res["directory"], ", ".join(
            "%d %s" % (counts[k], k) for k in
            ("written", "updated", "unchanged", "kept", "placeholder")
            if k in counts)))
    if "version_table_hint" in res:
        sys.stderr.write("migctl: %s\n" % res["version_table_hint"])


def main(argv):
    ini, out, allow_partial, as_json = None, None, False, False
    migd_table, config = "public.alembic_version", None
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--out" and i + 1 < len(argv):
            out = argv[i + 1]
            i += 1
        elif a == "--version-table" and i + 1 < len(argv):
            migd_table = argv[i + 1]
            i += 1
        elif a == "--config" and i + 1 < len(argv):
            config = argv[i + 1]
            i += 1
        elif a == "--allow-partial":
            allow_partial = True
        elif a == "--json":
            as_json = True
        elif ini is None and not a.startswith("-"):
            ini = a
        else:
            usage()
        i += 1
    if ini is None or out is None:
        usage()
    out = os.path.abspath(out)
    try:
        res = run(ini, out, allow_partial, migd_table, config)
    except ImportFailure as e:
        if as_json:
            json.dump({"error": {"message": str(e), "data": {
                "kind": "import_failed"}}}, sys.stdout)
            sys.stdout.write("\n")
        else:
            sys.stderr.write("migctl: %s\n" % e)
        return EXIT_FAILED
    report(res, as_json)
    return EXIT_FAILED if res["problems"] and not res["written"] else EXIT_OK


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
