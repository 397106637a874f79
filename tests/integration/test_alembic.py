"""Alembic compatibility, with the real Alembic from Debian: the same
revisions as migd files and as an Alembic project on one database.  What migd
writes, `alembic current` reads the same way, and the other way round."""

import os
import subprocess
import textwrap

import pytest

import migdtest
from engine_helpers import connected, ok, versions, write_rev

try:
    import alembic  # noqa: F401  (Debian's python3-alembic)
    import psycopg2  # noqa: F401
    HAVE_ALEMBIC = True
except ImportError:
    HAVE_ALEMBIC = False

pytestmark = pytest.mark.skipif(
    not HAVE_ALEMBIC and os.environ.get("CI") is None,
    reason="python3-alembic and python3-psycopg2 are not installed")

# a -> b -> {c1, c2} -> d (merge); e depends_on c1 on its own branch from a
REVS = [
    ("a", "none", None, "CREATE TABLE public.ta (id int);", "DROP TABLE public.ta;"),
    ("b", "a", None, "CREATE TABLE public.tb (id int);", "DROP TABLE public.tb;"),
    ("c1", "b", None, "CREATE TABLE public.tc1 (id int);", "DROP TABLE public.tc1;"),
    ("c2", "b", None, "CREATE TABLE public.tc2 (id int);", "DROP TABLE public.tc2;"),
    ("d", "c1, c2", None, "", ""),
]


def alembic_project(workdir, pg, db):
    """An Alembic project with the same revisions, op.execute of the same SQL."""
    root = os.path.join(workdir, "alembic")
    os.makedirs(os.path.join(root, "versions"))
    url = "postgresql+psycopg2://postgres@/%s?host=%s&port=%d" % (db, pg.sockdir, pg.port)
    with open(os.path.join(root, "alembic.ini"), "w") as f:
        f.write("[alembic]\nscript_location = %s\nsqlalchemy.url = %s\n" % (root, url))
    with open(os.path.join(root, "env.py"), "w") as f:
        f.write(textwrap.dedent("""\
            from alembic import context
            from sqlalchemy import engine_from_config, pool
            cfg = context.config
            engine = engine_from_config(cfg.get_section(cfg.config_ini_section),
                                        prefix="sqlalchemy.", poolclass=pool.NullPool)
            with engine.connect() as conn:
                context.configure(connection=conn, target_metadata=None)
                with context.begin_transaction():
                    context.run_migrations()
            """))
    with open(os.path.join(root, "script.py.mako"), "w") as f:
        f.write("")
    for rev, down, _, up, dn in REVS:
        downs = "None" if down == "none" else repr(tuple(x.strip() for x in down.split(","))) \
            if "," in down else repr(down)
        with open(os.path.join(root, "versions", "%s.py" % rev), "w") as f:
            f.write(textwrap.dedent("""\
                from alembic import op
                revision = %r
                down_revision = %s
                branch_labels = None
                depends_on = None
                def upgrade():
                    if %r: op.execute(%r)
                def downgrade():
                    if %r: op.execute(%r)
                """ % (rev, downs, up, up, dn, dn)))
    return os.path.join(root, "alembic.ini")


def alembic(ini, *args):
    p = subprocess.run(["/usr/bin/python3", "-m", "alembic", "-c", ini] + list(args),
                       capture_output=True, text=True, timeout=60,
                       env=migdtest.clean_env())
    assert p.returncode == 0, (args, p.stdout, p.stderr)
    return p.stdout + p.stderr


def alembic_current(ini):
    out = alembic(ini, "current")
    return sorted(line.split()[0] for line in out.splitlines()
                  if line and not line.startswith("INFO"))


def make_project(migd_factory):
    m = connected(migd_factory())
    for rev, down, _, up, dn in REVS:
        write_rev(m, "%s.sql" % rev, rev, down=down, up=up, down_sql=dn)
    return m, alembic_project(m.dir, m.pg, m.db)


def test_alembic_reads_what_migd_writes(migd_factory):
    m, ini = make_project(migd_factory)
    ok(m, "upgrade", {"target": "c1"})
    assert alembic_current(ini) == ["c1"] == versions(m)
    ok(m, "upgrade", {"target": "heads"})
    assert alembic_current(ini) == ["d"] == versions(m)
    ok(m, "downgrade", {"target": "-1"})          # reverting a merge: two heads
    assert alembic_current(ini) == ["c1", "c2"] == sorted(versions(m))
    cur = sorted(r["revision"] for r in ok(m, "current")["current"])
    assert cur == ["c1", "c2"]


def test_migd_reads_what_alembic_writes(migd_factory):
    m, ini = make_project(migd_factory)
    alembic(ini, "upgrade", "c2")
    st = ok(m, "status")
    assert [r["revision"] for r in st["current"]] == ["c2"] and st["pending"] == 2, st
    # migd carries on from Alembic's state: applies c1 and the merge
    res = ok(m, "upgrade", {})
    assert [s["revision"] for s in res["steps"]] == ["c1", "d"], res
    assert alembic_current(ini) == ["d"]
    # and Alembic carries on from migd's
    alembic(ini, "downgrade", "b")
    assert versions(m) == ["b"]
    assert ok(m, "status")["pending"] == 3
