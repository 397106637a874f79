"""The revision graph (issue "Runs as teams expect", item 5).

`migctl revisions` lists the revisions newest first, one line each as
`alembic history` prints them; `--json` for scripts. With -d DIR or -c CONFIG
it reads the files itself (no daemon); otherwise it asks migd with the
read-only `revisions` method, which needs no database. Both must give the
same answer, and the lines must be those real Alembic prints for the same
graph.
"""

import json
import os
import shutil
import subprocess
import textwrap

import pytest

import migdtest
from migdtest import MIGCTL_BIN, clean_env
from cli_helpers import write_rev
from engine_helpers import (E_MIGRATIONS, X_FAILED, X_OK, X_USAGE, connected, copy_workshop,
                            err, ok)

WORKSHOP_HISTORY = """\
0007a, 0007b -> 0008 (head) (mergepoint), merge parts and order status
0006 -> 0007a, spare parts inventory (one branch)
0006 -> 0007b, order status (another branch)
0005 -> 0006 (branchpoint), invoices, in a schema no configuration lists
0004 -> 0005, index open orders without locking the table
0003 -> 0004, work orders and their total
0002 -> 0003, owners and mechanics
0001 -> 0002, cars and their models
<base> -> 0001, create the workshop's schemas
"""

# a -> b -> {c1, c2} -> m (merge) -> n; x on its own, depending on c1; y on a
# second root, depended on by nothing; z depends on y only (y: effective head)
GRAPH = [
    ("a", "none", None, "root"),
    ("b", "a", None, "second"),
    ("c1", "b", None, "one branch"),
    ("c2", "b", None, "another branch"),
    ("m", "c1, c2", None, "merge"),
    ("n", "m", None, "after the merge"),
    ("x", "a", "c1", "x needs c1"),
    ("r", "none", None, "a second root"),
    ("z", "r", "y", "z needs y"),
    ("y", "r", None, "y"),
]


def offline(*args, env=None, cwd=None):
    return subprocess.run([MIGCTL_BIN] + list(args), env=clean_env(env), cwd=cwd,
                          capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


def write_graph(directory):
    for rev, down, dep, msg in GRAPH:
        text = ["-- revision: %s" % rev, "-- down_revision: %s" % down,
                "-- message: %s" % msg]
        if dep:
            text.append("-- depends_on: %s" % dep)
        text += ["", "-- migrate:up", "SELECT 1;", "", "-- migrate:down", "SELECT 1;", ""]
        with open(os.path.join(directory, "%s.sql" % rev), "w") as f:
            f.write("\n".join(text))


def assert_newest_first(revs):
    """Every revision comes after all that build on it."""
    pos = {r["revision"]: i for i, r in enumerate(revs)}
    for r in revs:
        for p in r["parents"] + r["depends_on"]:
            assert pos[p] > pos[r["revision"]], (p, r["revision"], list(pos))


# ---- offline and over the socket --------------------------------------------

def test_workshop_offline_and_over_the_socket(migd_factory):
    m = connected(migd_factory())
    copy_workshop(m)
    ok(m, "reload")
    # files only: -d, and -c (the daemon's own configuration)
    p = offline("revisions", "-d", m.migrations_dir)
    assert p.returncode == X_OK, p.stderr
    assert p.stdout == WORKSHOP_HISTORY, p.stdout
    p = offline("revisions", "-c", m.config_path)
    assert p.returncode == X_OK, p.stderr
    assert p.stdout == WORKSHOP_HISTORY, p.stdout
    # over the socket
    p = m.migctl("revisions")
    assert p.returncode == X_OK, p.stderr
    assert p.stdout == WORKSHOP_HISTORY, p.stdout
    # --json: the same document both ways, and migd's method returns it
    j_off = offline("--json", "revisions", "-d", m.migrations_dir)
    j_sock = m.migctl("--json", "revisions")
    assert j_off.returncode == X_OK and j_sock.returncode == X_OK
    assert j_off.stdout == j_sock.stdout
    doc = json.loads(j_sock.stdout)
    assert doc == ok(m, "revisions")
    revs = doc["revisions"]
    assert [r["revision"] for r in revs] == ["0008", "0007a", "0007b", "0006", "0005",
                                             "0004", "0003", "0002", "0001"]
    assert revs[0] == {"revision": "0008", "parents": ["0007a", "0007b"], "depends_on": [],
                       "message": "merge parts and order status",
                       "file": os.path.join(m.migrations_dir, "0008_merge.sql"),
                       "head": True, "mergepoint": True, "branchpoint": False}
    assert [r["revision"] for r in revs if r["branchpoint"]] == ["0006"]
    assert [r["revision"] for r in revs if r["head"]] == ["0008"]
    assert revs[-1]["parents"] == []
    assert_newest_first(revs)


def test_graph_with_depends_on(migd_factory):
    m = connected(migd_factory())
    write_graph(m.migrations_dir)
    ok(m, "reload")
    res = ok(m, "revisions")
    p = offline("--json", "revisions", "-d", m.migrations_dir)
    assert p.returncode == X_OK, p.stderr
    assert json.loads(p.stdout) == res
    revs = {r["revision"]: r for r in res["revisions"]}
    assert len(res["revisions"]) == len(GRAPH)
    assert_newest_first(res["revisions"])
    assert revs["x"]["depends_on"] == ["c1"] and revs["x"]["parents"] == ["a"]
    assert {k for k, r in revs.items() if r["head"]} == {"n", "x", "z", "y"}
    assert {k for k, r in revs.items() if r["branchpoint"]} == {"a", "b", "r"}
    assert {k for k, r in revs.items() if r["mergepoint"]} == {"m"}
    text = m.migctl("revisions").stdout
    assert text == offline("revisions", "-d", m.migrations_dir).stdout
    lines = text.splitlines()
    assert "c1, c2 -> m (mergepoint), merge" in lines
    assert "a (c1) -> x (head), x needs c1" in lines
    assert "r -> y (effective head), y" in lines
    assert "<base> -> a (branchpoint), root" in lines


def test_no_database_needed(migd_factory):
    """The files are enough: migd answers with PostgreSQL unreachable."""
    m = migd_factory(conninfo="host=/nonexistent port=1 dbname=x connect_timeout=1")
    write_graph(m.migrations_dir)
    res = ok(m, "revisions")
    assert len(res["revisions"]) == len(GRAPH)
    p = m.migctl("revisions")
    assert p.returncode == X_OK, p.stderr
    assert len(p.stdout.splitlines()) == len(GRAPH)
    # a new file is seen at once
    write_rev(m.migrations_dir, "o.sql", "o", down="n", up="SELECT 1;", message="newer")
    res = ok(m, "revisions")
    assert res["revisions"][0]["revision"] == "o", res["revisions"][0]


def test_invalid_files_and_usage(migd_factory, tmp_path):
    m = connected(migd_factory())
    write_rev(m.migrations_dir, "a.sql", "a", up="SELECT 1;")
    write_rev(m.migrations_dir, "b_bad.sql", "b", down="nosuch", up="SELECT 1;")
    e = err(m, "revisions", code=E_MIGRATIONS, kind="invalid_migrations")
    assert "b_bad.sql" in e["message"], e
    p = m.migctl("revisions")
    assert p.returncode == X_FAILED and "b_bad.sql" in p.stderr, p.stderr
    p = offline("revisions", "-d", m.migrations_dir)
    assert p.returncode == X_FAILED and "b_bad.sql" in p.stderr, p.stderr
    assert p.stdout == ""
    for args in (("revisions", "x"), ("revisions", "-m", "x", "-d", str(tmp_path)),
                 ("revisions", "--head", "a", "-d", str(tmp_path))):
        p = offline(*args)
        assert p.returncode == X_USAGE, (args, p.returncode, p.stderr)
    # an empty directory: nothing to list
    empty = tmp_path / "empty"
    empty.mkdir()
    p = offline("revisions", "-d", str(empty))
    assert p.returncode == X_OK and p.stdout == "", (p.stdout, p.stderr)
    p = offline("--json", "revisions", "-d", str(empty))
    assert json.loads(p.stdout) == {"revisions": []}


# ---- against real Alembic ----------------------------------------------------

try:
    import alembic  # noqa: F401  (Debian's python3-alembic)
    HAVE_ALEMBIC = True
except ImportError:
    HAVE_ALEMBIC = False


def alembic_history(tmp, graph):
    """`alembic history` of a project with the same revisions."""
    root = os.path.join(tmp, "alembic")
    os.makedirs(os.path.join(root, "versions"))
    with open(os.path.join(root, "alembic.ini"), "w") as f:
        f.write("[alembic]\nscript_location = %s\n" % root)
    with open(os.path.join(root, "script.py.mako"), "w") as f:
        f.write("")
    for rev, down, dep, msg in graph:
        downs = None if down == "none" else tuple(x.strip() for x in down.split(","))
        if downs is not None and len(downs) == 1:
            downs = downs[0]
        with open(os.path.join(root, "versions", "%s.py" % rev), "w") as f:
            f.write(textwrap.dedent('''\
                """%s

                Revision ID: %s
                """
                revision = %r
                down_revision = %r
                branch_labels = None
                depends_on = %r
                def upgrade():
                    pass
                def downgrade():
                    pass
                ''' % (msg, rev, rev, downs, dep)))
    p = subprocess.run(["/usr/bin/python3", "-m", "alembic", "-c",
                        os.path.join(root, "alembic.ini"), "history"],
                       capture_output=True, text=True, timeout=60, env=clean_env())
    assert p.returncode == 0, (p.stdout, p.stderr)
    return p.stdout


@pytest.mark.skipif(not HAVE_ALEMBIC, reason="python3-alembic is not installed")
def test_lines_as_alembic_prints_them(tmp_path):
    # the workshop: Alembic's order does not depend on its directory listing
    workshop = os.path.join(migdtest.REPO, "examples", "workshop", "migrations")
    graph = []
    for r in json.loads(offline("--json", "revisions", "-d", workshop).stdout)["revisions"]:
        graph.append((r["revision"], ", ".join(r["parents"]) or "none", None, r["message"]))
    assert alembic_history(str(tmp_path / "w"), graph) == WORKSHOP_HISTORY
    # a graph with depends_on and an effective head: the same lines (Alembic's
    # order of unrelated branches follows its directory listing)
    d = tmp_path / "g"
    d.mkdir()
    write_graph(str(d))
    ours = offline("revisions", "-d", str(d)).stdout
    theirs = alembic_history(str(tmp_path / "a"), GRAPH)
    assert sorted(ours.splitlines()) == sorted(theirs.splitlines()), (ours, theirs)
