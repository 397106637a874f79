"""The switch-over from Alembic to migd, end to end, with the real Alembic from
Debian (python3-alembic) and the realistic project of
tests/fixtures/alembic_project (issue 11, point 5): Alembic migrates a
database part-way, `migctl import alembic` and `migctl adopt` take it over,
and migd carries on step by step while `alembic current` agrees after every
step; Alembic and migd take turns on a fresh database and each reads what the
other wrote, building the schema Alembic alone builds; an edit of an adopted
revision is drift."""

import alembic_helpers
from alembic_helpers import (HEAD, REVS, alembic, alembic_current, dump, import_ok,
                             project)
from engine_helpers import X_FAILED, X_OK, connected, history, migctl_json, ok, versions
from schema_helpers import assert_same_dump

pytestmark = alembic_helpers.needs_alembic

A, B, C, D, E, F = REVS          # a -> b -> {c, d} -> e (merge) -> f
ORDER = {rev: i for i, rev in enumerate(REVS)}


def status(m):
    """`migctl --json status`: the document, checked to be migctl's exit 0."""
    rc, st, p = migctl_json(m, "status", timeout=60)
    assert rc == X_OK and st is not None, (rc, p.stdout, p.stderr)
    return st


def current(st):
    return sorted(r["revision"] for r in st["current"])


def applied_below(heads):
    """The revisions a version table of heads says are applied (the fixture's
    graph: everything below a head, both branches below the merge)."""
    parents = {A: [], B: [A], C: [B], D: [B], E: [C, D], F: [E]}
    seen, todo = set(), list(heads)
    while todo:
        r = todo.pop()
        if r not in seen:
            seen.add(r)
            todo.extend(parents[r])
    return sorted(seen, key=ORDER.get)


def agree(m, ini, want=None):
    """migd's status and `alembic current` name the same revisions (and want,
    when given); the status' pending count is what is left of the graph.
    Returns the status."""
    st = status(m)
    cur = current(st)
    assert alembic_current(ini, m.pg, m.db) == cur == sorted(versions(m)), (
        cur, versions(m))
    if want is not None:
        assert cur == sorted(want), (cur, want)
    assert st["pending"] == len(REVS) - len(applied_below(cur)), st
    assert st["state"] == ("up_to_date" if cur == [HEAD] else "pending"), st
    return st


def take_over(migd_factory, *targets):
    """A database Alembic migrated to targets (one `alembic upgrade` each),
    the project imported into the daemon's directory, and `migctl adopt`:
    returns (m, ini)."""
    ini = project()
    m = connected(migd_factory())
    for t in targets:
        alembic(ini, m.pg, m.db, "upgrade", t)
    # one command imports the project
    import_ok(ini, m.migrations_dir)
    ok(m, "reload")
    applied = applied_below(targets)
    st = agree(m, ini, targets)
    assert st["unverified"] == applied and st["unverified_count"] == len(applied), st
    assert "migctl adopt" in st["unverified_hint"], st
    p = m.migctl("verify")
    assert p.returncode == X_OK and "migctl adopt" in p.stdout, p.stdout + p.stderr
    # one command takes the database over: nothing runs, the checksums are recorded
    before = dump(m.pg, m.db)
    rc, res, p = migctl_json(m, "adopt")
    assert rc == X_OK, (rc, p.stdout, p.stderr)
    assert [x["revision"] for x in res["adopted"]] == applied, res
    assert [h["revision"] for h in history(m, where="direction = 'adopt'")] == applied
    assert history(m, where="direction <> 'adopt'") == []
    assert dump(m.pg, m.db) == before
    st = agree(m, ini, targets)
    assert st["unverified"] == [] and "unverified_hint" not in st, st
    assert m.migctl("verify").returncode == X_OK
    return m, ini


def migd_step(m, ini, target="+1"):
    """One `migctl upgrade TARGET` that must apply exactly one revision; then
    `alembic current` must agree. Returns the revision applied."""
    before = set(applied_below(current(status(m))))
    rc, res, p = migctl_json(m, "upgrade", target, timeout=120)
    assert rc == X_OK, (target, rc, p.stdout, p.stderr)
    assert len(res["steps"]) == 1, (target, res)
    rev = res["steps"][0]["revision"]
    st = agree(m, ini)
    assert set(applied_below(current(st))) == before | {rev}, (target, rev, st)
    return rev


def refused_as_alembic_refuses(m, ini, target, says, alembic_says):
    """`migctl upgrade TARGET` refused (plan_error, naming why), and nothing
    changed; `alembic upgrade TARGET` on the same state refuses too."""
    before = versions(m)
    rc, res, p = migctl_json(m, "upgrade", target, timeout=60)
    assert rc == X_FAILED and res["error"]["data"]["kind"] == "plan_error", (rc, p.stdout)
    assert says in res["error"]["message"], (target, res)
    assert versions(m) == before
    a = alembic(ini, m.pg, m.db, "upgrade", target, fails=True)
    assert alembic_says in a, a
    assert versions(m) == before and history(m, where="direction <> 'adopt'") == []


def test_take_over_with_two_heads(pg, make_db, migd_factory):
    m, ini = take_over(migd_factory, C, D)
    # from two heads, +1 is ambiguous to Alembic and to migd alike: the
    # merge is named, then +1 goes on
    refused_as_alembic_refuses(m, ini, "+1", "'+1' needs a single current revision, but "
                               "the version table has 2 (%s, %s)" % (C, D),
                               "Ambiguous upgrade from multiple current revisions")
    assert migd_step(m, ini, E) == E
    assert migd_step(m, ini) == F
    assert current(status(m)) == [HEAD]
    assert [h["revision"] for h in history(m, where="direction = 'up'")] == [E, F]
    assert m.migctl("verify").returncode == X_OK
    # the same schema as Alembic alone builds
    adb = make_db(pg)
    alembic(ini, pg, adb, "upgrade", "heads")
    assert_same_dump(dump(pg, adb), dump(pg, m.db), "taken over with two heads",
                     "alembic", "migd")


def test_take_over_at_a_merge(migd_factory):
    m, ini = take_over(migd_factory, E)
    assert migd_step(m, ini) == F
    assert current(status(m)) == [HEAD]
    assert [h["revision"] for h in history(m, where="direction = 'up'")] == [F]
    assert m.migctl("verify").returncode == X_OK

