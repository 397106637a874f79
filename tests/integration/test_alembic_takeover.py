"""Taking a database over from Alembic, with the real Alembic from Debian
(python3-alembic 1.8): stamp leaves the same version rows as `alembic stamp`
on the same graph and rows (issue 11, point 3), and `migctl adopt` records
the checksums of what Alembic applied so that edits are drift (point 2)."""

import os
import re
import shutil
import textwrap

import pytest

import migdtest
from engine_helpers import (E_MIGRATIONS, E_STATE, X_CHECK, X_FAILED, X_OK, call,
                            connected, err, history, migctl_json, ok, q, versions,
                            write_file, write_rev)
from test_alembic import alembic, alembic_current, make_project

try:
    import alembic as _alembic  # noqa: F401  (Debian's python3-alembic)
    from alembic import command
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    import psycopg2
    HAVE_ALEMBIC = True
except ImportError:
    HAVE_ALEMBIC = False

pytestmark = pytest.mark.skipif(
    not HAVE_ALEMBIC and os.environ.get("CI") is None,
    reason="python3-alembic and python3-psycopg2 are not installed")

FIXTURE = os.path.join(migdtest.REPO, "tests", "fixtures", "alembic_stamp")
VT = "public.alembic_version"


# ---- one graph, as an Alembic project and as migd files -----------------------

class Stamper:
    """The alembic_stamp fixture as an Alembic project (run in this process, so
    that a hundred stamps take seconds) and as migd files written from Alembic's
    own reading of it: the same ids, down_revision and depends_on, no SQL."""

    def __init__(self, m):
        self.m = m
        root = os.path.join(m.dir, "alembic_stamp")
        shutil.copytree(FIXTURE, root)
        self.cfg = Config()
        self.cfg.set_main_option("script_location", root)
        self.cfg.set_main_option("sqlalchemy.url",
                                 "postgresql+psycopg2://postgres@/%s?host=%s&port=%d"
                                 % (m.db, m.pg.sockdir, m.pg.port))
        for sc in ScriptDirectory.from_config(self.cfg).walk_revisions():
            down = sc.down_revision
            down = "none" if down is None else ", ".join(down) \
                if isinstance(down, tuple) else down
            deps = sc.dependencies
            deps = None if deps is None else ", ".join(deps) \
                if isinstance(deps, tuple) else deps
            labels = getattr(sc.module, "branch_labels", None)   # declared, not inherited
            labels = None if not labels else ", ".join(labels) \
                if isinstance(labels, tuple) else labels
            write_rev(m, "%s.sql" % sc.revision, sc.revision, down=down, depends_on=deps,
                      up="SELECT 1;", message=sc.revision, branch_labels=labels)
        ok(m, "stamp", {"revision": "base"})     # creates migd's tables
        self.script = ScriptDirectory.from_config(self.cfg)
        self.conn = psycopg2.connect(dbname=m.db, host=m.pg.sockdir, port=m.pg.port,
                                     user="postgres")
        self.conn.autocommit = True

    def set_rows(self, rows):
        with self.conn.cursor() as c:
            c.execute("DELETE FROM %s" % VT)
            for r in rows:
                c.execute("INSERT INTO %s VALUES (%%s)" % VT, (r,))

    def rows(self):
        with self.conn.cursor() as c:
            c.execute("SELECT version_num FROM %s ORDER BY 1" % VT)
            return [r[0] for r in c.fetchall()]

    def alembic_is_wrong(self, before, after, said):
        """Whether Alembic's rows lose or contradict what is applied, as migd
        said: a row of before that no row of after is or builds on, or a row
        of after below another one (by Alembic's own graph)."""
        rm = self.script.revision_map

        def below(rev):
            return {r.revision for r in rm._get_ancestor_nodes([rm.get_revision(rev)])}
        implied = set().union(*[below(r) for r in after]) if after else set()
        lost = [r for r in before if r not in implied]
        under = [r for r in after if any(r in below(x) - {x} for x in after)]
        if "would lose" in said:
            return bool(lost) and ("would lose %s," % lost[0]) in said
        return "would list both" in said and bool(under)

    def alembic(self, rows, targets, purge=False):
        """Alembic's rows after the stamp, or ('error', what it raised); the
        table is checked to be unchanged after an error."""
        self.set_rows(rows)
        try:
            command.stamp(self.cfg, list(targets), purge=purge)
        except Exception as e:     # whatever Alembic raises: it changed nothing
            assert self.rows() == sorted(rows), (rows, targets, "alembic wrote")
            return ("error", "%s: %s" % (type(e).__name__, e))
        return self.rows()

    def migd(self, rows, targets, purge=False):
        """migd's rows after the stamp, or ('error', kind, message)."""
        self.set_rows(rows)
        params = {"revision": targets if len(targets) != 1 else targets[0]}
        if purge:
            params["purge"] = True
        _, r = call(self.m, "stamp", params)
        if "error" in r:
            assert self.rows() == sorted(rows), (rows, targets, "migd wrote", r)
            return ("error", r["error"]["data"]["kind"], r["error"]["message"])
        assert sorted(r["result"]["to"]) == self.rows(), r
        return self.rows()


def split(s):
    return [x for x in s.split(",") if x]


# rows before, targets, purge: Alembic and migd leave the same rows
SAME = [
    # one head: up, down, the same
    ("b1", "m2", False), ("m2", "c1", False), ("m2", "m2", False), ("", "b1", False),
    # two heads, a revision on one branch: the other head stays
    ("b2,d1", "b1", False), ("m2,d2", "d1", False), ("b1,c1", "b2", False),
    # below the branch point
    ("b1,c1", "r2", False), ("m2,d2,x2", "r2", False),
    # the merge
    ("b1,c1", "m1", False),
    # a revision on a branch the table does not show
    ("d2", "x1", False), ("x2", "z1", False), ("d2,x2", "c2", False),
    # depends_on is lineage both ways
    ("c1", "x2", False), ("d2", "z1", False), ("z1", "d2", False),
    # several revisions at once
    ("b1,c1", "b2,c2", False), ("b2,c2", "m1,d1", False), ("", "z1,d1", False),
    ("b1", "b1,b1", False),
    # --purge, also over a revision no file defines
    ("b1,d1", "b2", True), ("f00dfeed,m2", "b2", True), ("f00dfeed", "base", True),
    # base, heads
    ("r1", "base", False), ("m2,d2,x2", "base", False), ("b1,d1", "base,b2", False),
    ("", "heads", False), ("m2,x2", "heads", False), ("r2", "heads", False),
    ("d2", "heads", False),
]

# where Alembic raises, migd refuses and changes nothing
BOTH_REFUSE = [
    ("m2,d2", "head", "plan_error", "there are 4 heads"),
    ("b2,d2", "b1,d1", "plan_error", "stamp them one at a time"),
    ("b1,d1", "b2,r2", "plan_error", "stamp them one at a time"),
    ("", "b1,b1", "plan_error", "name it once"),
    ("r1,b1", "r2", "plan_error", "has b1 above it and r1 below it"),
    ("f00dfeed,m2", "b2", "ahead", "stamp --purge replaces the whole table"),
    ("", "nosuch", "plan_error", "unknown revision 'nosuch'"),
]

# where Alembic writes a table that loses or contradicts what is applied,
# migd refuses: (rows, targets, Alembic's rows, what migd says)
MIGD_REFUSES = [
    # two heads and `stamp heads`: Alembic drops m2, though m2 is a head
    ("m2,d1", "heads", ["d2", "x2"], "would lose m2"),
    ("m2,d1", "m2,d2,x2", ["d2", "x2"], "would lose m2"),
    ("b1,c1", "c1,b2", ["b2"], "would lose c1"),
    # x1 under x2 in one table
    ("", "x2,x1", ["x1", "x2"], "would list both x1 and x2"),
    ("b1,d1", "r2,b2", ["b2", "r2"], "would list both r2 and b2"),
]


def test_stamp_leaves_the_rows_alembic_leaves(migd_factory):
    m = connected(migd_factory())
    s = Stamper(m)
    for rows, targets, purge in SAME:
        a = s.alembic(split(rows), split(targets), purge)
        assert not isinstance(a, tuple), (rows, targets, purge, a)
        assert s.migd(split(rows), split(targets), purge) == a, (rows, targets, purge, a)
    for rows, targets, kind, words in BOTH_REFUSE:
        a = s.alembic(split(rows), split(targets))
        assert isinstance(a, tuple), (rows, targets, "alembic accepted", a)
        r = s.migd(split(rows), split(targets))
        assert r[0] == "error" and r[1] == kind and words in r[2], (rows, targets, r, a)
    for rows, targets, alembic_rows, words in MIGD_REFUSES:
        assert s.alembic(split(rows), split(targets)) == alembic_rows, (rows, targets)
        r = s.migd(split(rows), split(targets))
        assert r[0] == "error" and r[1] == "plan_error" and words in r[2], (rows, targets, r)
        assert s.alembic_is_wrong(split(rows), alembic_rows, r[2]), (rows, targets)


def test_stamp_one_revision_on_every_table_as_alembic(migd_factory):
    """Every single target (each revision, base, heads) on tables of one and of
    several heads: the same rows as Alembic, or, where Alembic's rows lose a
    head ('heads' over several rows), a refusal that names it."""
    m = connected(migd_factory())
    s = Stamper(m)
    revs = sorted(x[:-3] for x in os.listdir(os.path.join(FIXTURE, "versions"))
                  if x.endswith(".py"))
    tables = ["", "r1", "b1,c1", "b2,d1", "m2,d2,x2", "x1,c2", "d1,z1", "m1,d2"]
    refused = []
    for rows in tables:
        for target in revs + ["base", "heads"]:
            a = s.alembic(split(rows), [target])
            r = s.migd(split(rows), [target])
            if r != a and r[0] == "error" and not isinstance(a, tuple):
                assert s.alembic_is_wrong(split(rows), a, r[2]), (rows, target, a, r)
                refused.append((rows, target))
                continue
            assert r == a or (r[0] == a[0] == "error"), (rows, target, a, r)
    # only 'heads' over several heads, where Alembic drops one
    assert refused and all(t == "heads" for _, t in refused), refused


# LABEL@head targets (labels cee on c1, dee on d1, ex on x1): the same rows as
# Alembic's stamp, resolved as its RevisionMap resolves them
LABELS_SAME = [
    ("b1,d1", "cee@head"), ("b1,d1", "dee@head"), ("m2,d1", "dee@head"),
    ("", "cee@head,dee@head"), ("m2,x1", "ex@head"), ("d2", "ex@head"),
    ("b1,c1", "dee@head,ex@head"),
]


def test_stamp_label_head_as_alembic(migd_factory):
    m = connected(migd_factory())
    s = Stamper(m)
    for rows, targets in LABELS_SAME:
        a = s.alembic(split(rows), split(targets))
        assert not isinstance(a, tuple), (rows, targets, a)
        assert s.migd(split(rows), split(targets)) == a, (rows, targets, a)
    # an unknown label: both refuse, nothing changes
    assert isinstance(s.alembic(["b1"], ["nosuch@head"]), tuple)
    r = s.migd(["b1"], ["nosuch@head"])
    assert r[0] == "error" and r[1] == "plan_error" and \
        "no revision declares the branch label 'nosuch'" in r[2], r
    # LABEL@base and LABEL@REV, which Alembic takes, migd refuses (as for
    # upgrade): only @head is supported; nothing changes
    r = s.migd(["b1"], ["cee@base"])
    assert r[0] == "error" and r[1] == "plan_error" and \
        "only 'head' is supported" in r[2], r
    # from migctl, with the history row of the head it names
    s.set_rows(["b1", "d1"])
    before = len(history(m, where="direction = 'stamp'"))
    p = m.migctl("stamp", "dee@head")
    assert p.returncode == X_OK, p.stdout + p.stderr
    assert versions(m) == ["b1", "d2"]
    rows = history(m, where="direction = 'stamp'")
    assert [r["revision"] for r in rows[before:]] == ["d2"], rows[before:]


def test_stamp_from_migctl(migd_factory):
    """migctl stamp A B and stamp A,B: several revisions; --purge; the history
    has a row per revision; the old one-string param still works."""
    m = connected(migd_factory())
    s = Stamper(m)
    s.set_rows(["b1", "c1"])
    p = m.migctl("stamp", "b2", "c2")
    assert p.returncode == X_OK, p.stdout + p.stderr
    assert versions(m) == ["b2", "c2"]
    assert "version table: b2, c2 (was b1, c1)" in p.stdout, p.stdout
    stamps = history(m, where="direction = 'stamp' AND revision IN ('b2', 'c2')")
    assert sorted(h["revision"] for h in stamps) == ["b2", "c2"], stamps
    assert all(h["checksum"] for h in stamps), stamps
    s.set_rows(["b1", "c1"])
    rc, res, p = migctl_json(m, "stamp", "b2,c2")
    assert rc == X_OK and sorted(res["to"]) == ["b2", "c2"], (rc, res, p.stderr)
    assert res["revisions"] == ["b2", "c2"] and res["purged"] is False, res
    # two heads and one of them stamped: the other stays (the bug of issue 11)
    s.set_rows(["b2", "d1"])
    assert m.migctl("stamp", "b1").returncode == X_OK
    assert versions(m) == ["b1", "d1"]
    # an unknown row: refused, and --purge replaces the whole table
    s.set_rows(["f00dfeed", "m2"])
    p = m.migctl("stamp", "b2")
    assert p.returncode == X_FAILED and "--purge" in p.stderr, p.stderr
    assert versions(m) == ["f00dfeed", "m2"]
    rc, res, p = migctl_json(m, "stamp", "--purge", "b2")
    assert rc == X_OK and res["to"] == ["b2"] and res["purged"] is True, (rc, res)
    assert versions(m) == ["b2"]
    assert history(m)[-1]["error"] == "purged: the version table was emptied first"
    # Alembic agrees with what migd wrote
    assert alembic_current_cfg(s) == ["b2"]
    # refusals change nothing and say why
    s.set_rows(["m2", "d1"])
    p = m.migctl("stamp", "heads")
    assert p.returncode == X_FAILED and "would lose m2" in p.stderr, p.stderr
    assert versions(m) == ["d1", "m2"]
    p = m.migctl("stamp", "b1", "--purg")
    assert p.returncode == 2 and "--purge" in p.stderr, p.stderr
    # the params: a list of strings, or one
    e = err(m, "stamp", {"revision": []}, code=-32602, kind="invalid_params")
    assert "non-empty array of strings" in e["message"], e
    err(m, "stamp", {"revision": ["b1", 3]}, code=-32602, kind="invalid_params")
    err(m, "stamp", {"revision": "b1", "purge": "yes"}, code=-32602, kind="invalid_params")
    err(m, "stamp", {"revision": "b1,,b2"}, code=E_MIGRATIONS, kind="plan_error")
    assert versions(m) == ["d1", "m2"]


def alembic_current_cfg(s):
    import io
    buf = io.StringIO()
    cfg = Config(stdout=buf)
    for k in ("script_location", "sqlalchemy.url"):
        cfg.set_main_option(k, s.cfg.get_main_option(k))
    command.current(cfg)
    return sorted(line.split()[0] for line in buf.getvalue().splitlines() if line.strip())


# ---- adopt -----------------------------------------------------------------------

def adopt_rows(m):
    return history(m, where="direction = 'adopt'")


def test_adopt_takes_over_what_alembic_applied(migd_factory):
    m, ini = make_project(migd_factory)
    alembic(ini, "upgrade", "c1")                   # Alembic part-way: a, b, c1
    st = m.status()
    assert st["state"] == "pending" and st["pending"] == 2, st
    assert st["unverified"] == ["a", "b", "c1"] and st["unverified_count"] == 3, st
    assert "migctl adopt" in st["unverified_hint"], st
    p = m.migctl("verify")
    assert p.returncode == X_OK, p.stdout + p.stderr     # nothing wrong, but said
    assert "unverified: a, b, c1" in p.stdout and "migctl adopt" in p.stdout, p.stdout
    p = m.migctl("status")
    assert "unverified: a, b, c1" in p.stdout, p.stdout

    rc, res, p = migctl_json(m, "adopt")
    assert rc == X_OK, (rc, p.stdout, p.stderr)
    assert [x["revision"] for x in res["adopted"]] == ["a", "b", "c1"], res
    assert res["applied"] == 3 and res["already_verified"] == 0, res
    rows = adopt_rows(m)
    assert [(h["revision"], h["success"]) for h in rows] == \
        [("a", True), ("b", True), ("c1", True)], rows
    assert [h["checksum"] for h in rows] == [x["checksum"] for x in res["adopted"]]
    assert all(h["requested_by"] for h in rows), rows
    assert versions(m) == ["c1"] and alembic_current(ini) == ["c1"]   # nothing ran
    st = m.status()
    assert st["unverified"] == [] and st["unverified_count"] == 0, st
    assert "unverified_hint" not in st, st

    # idempotent: a second adopt records nothing, and says so
    p = m.migctl("adopt")
    assert p.returncode == X_OK and "nothing to adopt" in p.stdout, p.stdout
    assert len(adopt_rows(m)) == 3

    # an edit of an adopted file is drift, as for a file migd applied
    path = os.path.join(m.migrations_dir, "b.sql")
    text = open(path).read()
    write_file(m, "b.sql", text.replace("CREATE TABLE public.tb (id int);",
                                        "CREATE TABLE public.tb (id bigint);"))
    p = m.migctl("verify")
    assert p.returncode == X_CHECK and "drift:" in p.stdout and "b.sql" in p.stdout, p.stdout
    e = err(m, "upgrade", {}, code=E_STATE, kind="checksum_mismatch")
    assert "b.sql" in e["message"], e
    write_file(m, "b.sql", text)
    assert m.migctl("verify").returncode == X_OK

    # migd carries on from there, and Alembic agrees
    rc, res, p = migctl_json(m, "upgrade", "head")
    assert rc == X_OK, (rc, p.stdout, p.stderr)
    assert [x["revision"] for x in res["steps"]] == ["c2", "d"], res
    assert alembic_current(ini) == ["d"] == versions(m)
    assert m.status()["state"] == "up_to_date"

    # Alembic steps again: status says what it applied is unverified
    alembic(ini, "downgrade", "b")
    alembic(ini, "upgrade", "c2")
    st = m.status()
    assert [r["revision"] for r in st["current"]] == ["c2"], st
    assert st["unverified_count"] == 0, st      # c2 was applied by migd before
    alembic(ini, "upgrade", "heads")
    st = m.status()
    assert st["unverified"] == [] and st["state"] == "up_to_date", st


def test_adopt_refuses_what_it_cannot_take_over(migd_factory):
    m, ini = make_project(migd_factory)
    alembic(ini, "upgrade", "b")
    # a revision no file defines
    q(m, "INSERT INTO %s VALUES ('f00dfeed')" % VT)
    e = err(m, "adopt", code=E_STATE, kind="ahead")
    assert "f00dfeed" in e["message"] and e["data"]["unknown"] == ["f00dfeed"], e
    assert adopt_rows(m) == []
    q(m, "DELETE FROM %s WHERE version_num = 'f00dfeed'" % VT)
    # a dirty revision (a non-transactional migration that stopped part-way)
    q(m, "INSERT INTO public.migd_history (revision, direction, success, dirty, "
         "started_at) VALUES ('b', 'up', false, true, now())")
    p = m.migctl("adopt")
    assert p.returncode == X_FAILED and "resolve b" in p.stderr, p.stderr
    assert adopt_rows(m) == []
    q(m, "DELETE FROM public.migd_history")
    # a version table that contradicts itself
    q(m, "INSERT INTO %s VALUES ('a')" % VT)
    e = err(m, "adopt", code=E_STATE, kind="plan_error")
    assert "inconsistent" in e["message"], e
    assert adopt_rows(m) == []
    q(m, "DELETE FROM %s WHERE version_num = 'a'" % VT)
    # nothing applied: nothing to adopt
    alembic(ini, "downgrade", "base")
    assert ok(m, "adopt")["adopted"] == []
    # readers may not adopt (it is mutating): test_auth's MUTATING
    assert versions(m) == [] and adopt_rows(m) == []


def test_adopt_widens_an_older_history_table(migd_factory):
    """A history table made by migd 0.1 allows up/down/stamp/resolve only:
    adopt widens its CHECK in the same transaction as its rows."""
    m, ini = make_project(migd_factory)
    ok(m, "upgrade", {"target": "a"})            # migd makes its tables
    q(m, "ALTER TABLE public.migd_history DROP CONSTRAINT migd_history_direction_check, "
         "ADD CONSTRAINT migd_history_direction_check CHECK (direction IN "
         "('up', 'down', 'stamp', 'resolve'))")
    alembic(ini, "upgrade", "c2")
    assert m.status()["unverified"] == ["b", "c2"]
    res = ok(m, "adopt")
    assert [x["revision"] for x in res["adopted"]] == ["b", "c2"], res
    d = q(m, "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = "
             "'migd_history_direction_check'")
    assert "'adopt'" in d and "'resolve'" in d and "'accept'" in d, d
    assert m.status()["unverified_count"] == 0
    # the same CHECK as a new table's
    assert d == q(m, "CREATE TEMP TABLE fresh (direction text CHECK (direction IN "
                     "('up', 'down', 'stamp', 'resolve', 'accept', 'adopt'))); "
                     "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                     "WHERE conname = 'fresh_direction_check'"), d


def test_stamp_says_what_it_leaves_unverified(migd_factory):
    """A database made by hand, stamped at head: the revisions below have no
    checksum, and status suggests adopt."""
    m, ini = make_project(migd_factory)
    alembic(ini, "upgrade", "heads")
    q(m, "DELETE FROM %s" % VT)
    ok(m, "stamp", {"revision": "d"})
    st = m.status()
    assert st["unverified"] == ["a", "b", "c1", "c2"], st
    assert ok(m, "verify")["ok"] is True
    assert [x["revision"] for x in ok(m, "adopt")["adopted"]] == ["a", "b", "c1", "c2"]
    assert m.status()["unverified"] == []


def finish_placeholder(holder):
    """Writes the placeholder's SQL, as the person finishing the import does:
    the 'unfinished' header gone, an UPDATE as its up section."""
    with open(holder) as f:
        text = f.read()
    with open(holder, "w") as f:
        f.write(re.sub(r"(?m)^-- unfinished: .*\n", "", text).replace(
            "-- migrate:down\n", "UPDATE prices SET cents = round(cents, -2);\n\n"
            "-- migrate:down\n"))


def test_adopt_a_placeholder_then_its_sql(pg, make_db, migd_factory):
    """docs/from-alembic.md's path for a revision import cannot render:
    Alembic applied it, import --allow-partial writes a placeholder, adopt
    takes the database over, a person writes its SQL.  The placeholder is
    recorded as applied without a checksum (it is not what ran), so writing
    the SQL is no drift, runs above it go on meanwhile, and a second adopt
    records the SQL's checksum: an edit after that is drift."""
    import alembic_helpers
    ini = alembic_helpers.project("alembic_python_only")
    m = connected(migd_factory(pg=pg))
    alembic_helpers.alembic(ini, pg, m.db, "upgrade", "head")
    p = alembic_helpers.import_(ini, "--out", m.migrations_dir, "--allow-partial")
    assert p.returncode == X_OK, p.stderr
    holder = alembic_helpers.file_of(m.migrations_dir, "1b2c3d4e5f6a")
    ok(m, "reload")
    p = m.migctl("adopt")
    assert p.returncode == X_OK, (p.stdout, p.stderr)
    assert "adopted 1b2c3d4e5f6a  -  %s\n  unfinished (an import placeholder): recorded as " \
        "applied, without a checksum; write its SQL, remove the 'unfinished' header, then " \
        "adopt again\n" % holder in p.stdout, p.stdout
    rows = {h["revision"]: h["checksum"] for h in adopt_rows(m)}
    assert sorted(rows) == ["0a1b2c3d4e5f", "1b2c3d4e5f6a", "2c3d4e5f6a7b"], rows
    assert rows["1b2c3d4e5f6a"] is None and rows["0a1b2c3d4e5f"] is not None
    rc, res, p = migctl_json(m, "adopt")
    assert rc == X_OK and res["adopted"] == [] and res["message"] == (
        "nothing to adopt: 1 applied revision is unfinished (an import placeholder): write "
        "its SQL, remove the 'unfinished' header, then adopt again"), res
    assert len(adopt_rows(m)) == 3
    # a new revision above runs meanwhile
    write_rev(m, "3d4e_more.sql", "3d4e", "2c3d4e5f6a7b", "CREATE TABLE more (id int);",
              down_sql="DROP TABLE more;")
    ok(m, "reload")
    ok(m, "upgrade", {})
    assert versions(m) == ["3d4e"]
    # the person writes the SQL: no drift, still unverified until adopted
    finish_placeholder(holder)
    ok(m, "reload")
    p = m.migctl("verify")
    assert p.returncode == X_OK and "drift" not in p.stdout, p.stdout + p.stderr
    assert "unverified: 1b2c3d4e5f6a" in p.stdout, p.stdout
    rc, res, p = migctl_json(m, "adopt")
    assert rc == X_OK and [x["revision"] for x in res["adopted"]] == ["1b2c3d4e5f6a"], res
    assert res["adopted"][0]["checksum"] is not None and res["already_verified"] == 3, res
    p = m.migctl("verify")
    assert p.returncode == X_OK and "unverified" not in p.stdout, p.stdout
    with open(holder) as f:
        text = f.read()
    with open(holder, "w") as f:
        f.write(text.replace("round(cents, -2)", "round(cents, -1)"))
    ok(m, "reload")
    p = m.migctl("verify")
    assert p.returncode == X_CHECK and "drift: %s" % holder in p.stdout, p.stdout


def test_stamp_at_a_placeholder_records_no_checksum(pg, migd_factory):
    """`stamp` through or at an unfinished file is allowed: stamped at it,
    the placeholder's checksum is not recorded either, so writing its SQL is
    no drift; adopt records the SQL's checksum."""
    import alembic_helpers
    ini = alembic_helpers.project("alembic_python_only")
    m = connected(migd_factory(pg=pg))
    alembic_helpers.alembic(ini, pg, m.db, "upgrade", "1b2c3d4e5f6a")
    p = alembic_helpers.import_(ini, "--out", m.migrations_dir, "--allow-partial")
    assert p.returncode == X_OK, p.stderr
    holder = alembic_helpers.file_of(m.migrations_dir, "1b2c3d4e5f6a")
    ok(m, "reload")
    ok(m, "stamp", {"revision": "1b2c3d4e5f6a"})
    assert [(h["revision"], h["checksum"]) for h in history(m, where="direction = 'stamp'")] \
        == [("1b2c3d4e5f6a", None)]
    finish_placeholder(holder)
    ok(m, "reload")
    p = m.migctl("verify")
    assert p.returncode == X_OK and "drift" not in p.stdout, p.stdout + p.stderr
    rc, res, p = migctl_json(m, "adopt")
    assert rc == X_OK and [x["revision"] for x in res["adopted"]] == [
        "0a1b2c3d4e5f", "1b2c3d4e5f6a"], res
    ok(m, "upgrade", {})
    assert versions(m) == ["2c3d4e5f6a7b"]
