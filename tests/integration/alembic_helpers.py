"""Helpers shared by the tests that run the real Alembic from Debian
(python3-alembic) on the fixture projects of tests/fixtures
(test_alembic_import.py, test_alembic_switch.py): a copy of a project, the
alembic CLI pointed at a test database, `alembic current`, `migctl import
alembic`, and a pg_dump of the app schemas without the version tables."""

import os
import shutil
import subprocess

import pytest

import migdtest
import schema_helpers
from cli_helpers import migctl_local
from engine_helpers import X_OK

try:
    import alembic as _alembic  # noqa: F401  (Debian's python3-alembic)
    import psycopg2  # noqa: F401
    HAVE_ALEMBIC = True
except ImportError:
    HAVE_ALEMBIC = False

# pytestmark of every test file that needs them: skipped without them,
# except in CI, whose test command installs them
needs_alembic = pytest.mark.skipif(
    not HAVE_ALEMBIC and os.environ.get("CI") is None,
    reason="python3-alembic and python3-psycopg2 are not installed")

FIXTURES = os.path.join(migdtest.REPO, "tests", "fixtures")
MIGD_TABLES = ("public.alembic_version", "public.migd_history",
               "public.migd_history_id_seq")

# tests/fixtures/alembic_project: a -> b -> {c (label workshop), d} -> e (merge) -> f
HEAD = "f6a7b8c9d0e5"
REVS = ["a1b2c3d4e5f0", "b2c3d4e5f6a1", "c3d4e5f6a7b2", "d4e5f6a7b8c3",
        "e5f6a7b8c9d4", HEAD]


def project(name="alembic_project"):
    """A copy of a fixture project (Alembic writes __pycache__ into it, and
    some tests change it); returns its alembic.ini."""
    root = os.path.join(migdtest.short_tempdir("alembic-"), name)
    shutil.copytree(os.path.join(FIXTURES, name), root,
                    ignore=shutil.ignore_patterns("__pycache__"))
    return os.path.join(root, "alembic.ini")


def url(pg, db):
    return "postgresql+psycopg2://postgres@/%s?host=%s&port=%d" % (db, pg.sockdir, pg.port)


def alembic(ini, pg, db, *args, fails=False):
    """The output of the alembic CLI on the project of ini, run from its root
    as Alembic projects are, against db (the fixture's env.py reads
    ALEMBIC_URL); it must succeed, or fail when fails is true."""
    p = subprocess.run(["/usr/bin/python3", "-m", "alembic", "-c", ini] + list(args),
                       capture_output=True, text=True, timeout=120,
                       cwd=os.path.dirname(ini),
                       env=migdtest.clean_env({"ALEMBIC_URL": url(pg, db)}))
    assert (p.returncode != 0) == fails, (args, p.returncode, p.stdout, p.stderr)
    return p.stdout + p.stderr


def alembic_current(ini, pg, db):
    """The revisions `alembic current` names, sorted (its INFO lines left out)."""
    out = alembic(ini, pg, db, "current")
    return sorted(line.split()[0] for line in out.splitlines()
                  if line.strip() and not line.startswith("INFO"))


def import_(ini, *args, env=None):
    return migctl_local("import", "alembic", ini, *args, env=env, timeout=120)


def import_ok(ini, out, *args):
    p = import_(ini, "--out", out, *args)
    assert p.returncode == X_OK, (p.stdout, p.stderr)
    return p


def sql_files(out):
    return sorted(f for f in os.listdir(out) if f.endswith(".sql"))


def file_of(out, rev):
    names = [f for f in sql_files(out) if f.startswith(rev + "_")]
    assert len(names) == 1, (rev, sql_files(out))
    return os.path.join(out, names[0])


def read(path):
    with open(path) as f:
        return f.read()


def dump(pg, db):
    """pg_dump --schema-only of the app schemas: all but the version tables."""
    return schema_helpers.dump(pg, db, MIGD_TABLES)
