"""The switch-over from Alembic to migd, end to end, with the real Alembic from
Debian (python3-alembic) and the realistic project of
tests/fixtures/alembic_project (issue 11, point 5): Alembic migrates a
database part-way, `migctl import alembic` and `migctl adopt` take it over,
and migd carries on step by step while `alembic current` agrees after every
step; Alembic and migd take turns on a fresh database and each reads what the
other wrote, building the schema Alembic alone builds; an edit of an adopted
revision is drift."""

import os

import alembic_helpers
from alembic_helpers import (HEAD, REVS, alembic, alembic_current, dump, file_of,
                             import_ok, project, read)
from engine_helpers import (X_CHECK, X_FAILED, X_OK, connected, history, migctl_json,
                            ok, versions)
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
    assert alembic_current(ini, m.pg, m.db) == cur == sorted(versions(m) or []), (
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
    before, rows = versions(m), history(m)
    rc, res, p = migctl_json(m, "upgrade", target, timeout=60)
    assert rc == X_FAILED and res["error"]["data"]["kind"] == "plan_error", (rc, p.stdout)
    assert says in res["error"]["message"], (target, res)
    assert versions(m) == before
    a = alembic(ini, m.pg, m.db, "upgrade", target, fails=True)
    assert alembic_says in a, a
    assert versions(m) == before and history(m) == rows


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



def alembic_step(m, ini, target="+1"):
    """One `alembic upgrade TARGET` that must apply exactly one revision; then
    `migctl status` must agree. Returns (the revision applied, the status)."""
    before = set(applied_below(alembic_current(ini, m.pg, m.db)))
    alembic(ini, m.pg, m.db, "upgrade", target)
    st = agree(m, ini)
    new = set(applied_below(current(st))) - before
    assert len(new) == 1, (target, new, st)
    return new.pop(), st


def test_alembic_and_migd_take_turns(pg, make_db, migd_factory):
    """A fresh database, the imported files, and both tools stepping up in
    turn: after every Alembic step migd's status names its rows, says what is
    pending and that what Alembic applied is unverified (suggesting adopt);
    after every migd step `alembic current` names migd's rows."""
    ini = project()
    m = connected(migd_factory())
    import_ok(ini, m.migrations_dir)
    ok(m, "reload")
    st = agree(m, ini, [])
    assert st["pending"] == 6 and st["unverified"] == [], st
    by_alembic = []           # applied by Alembic and not adopted since

    def by_alembic_step(target="+1"):
        rev, st = alembic_step(m, ini, target)
        by_alembic.append(rev)
        # what Alembic applied has no checksum; what migd applied has one
        applied = applied_below(current(st))
        assert st["unverified"] == [r for r in applied if r in by_alembic], st
        assert st["unverified_count"] == len(st["unverified"]), st
        assert "migctl adopt" in st["unverified_hint"], st
        assert st["skipped"] == [], st
        p = m.migctl("status")
        assert p.returncode == X_OK, p.stdout + p.stderr
        assert "unverified: %s" % st["unverified"][0] in p.stdout, p.stdout
        assert "migctl adopt" in p.stdout, p.stdout
        return rev

    assert by_alembic_step() == A
    assert migd_step(m, ini) == B
    # above the branch point +1 is ambiguous to both: each names a revision
    refused_as_alembic_refuses(m, ini, "+1", "'+1' is ambiguous: '%s' has 2 revisions "
                               "above it (%s, %s)" % (B, C, D), "Ambiguous walk")
    assert by_alembic_step(C) == C
    assert by_alembic_step(D) == D                      # two heads, written by Alembic
    assert current(status(m)) == [C, D]
    # Alembic applied c and d above b, which migd ran: migd would not run the
    # merge above them unrecorded (they would look skipped, never ran) and
    # says to adopt them first; nothing changes
    rows = history(m)
    rc, res, p = migctl_json(m, "upgrade", E)
    assert rc == X_FAILED and res["error"]["data"]["kind"] == "unadopted_revisions", (
        rc, p.stdout, p.stderr)
    assert [x["revision"] for x in res["error"]["data"]["problems"]] == [C, D], res
    assert file_of(m.migrations_dir, C) in res["error"]["message"], res
    assert "'migctl adopt'" in res["error"]["message"], res
    assert history(m) == rows and current(agree(m, ini)) == [C, D]
    rc, res, p = migctl_json(m, "adopt")
    assert rc == X_OK and [x["revision"] for x in res["adopted"]] == [A, C, D], (
        rc, p.stdout, p.stderr)
    by_alembic.clear()
    assert migd_step(m, ini, E) == E                    # migd merges them
    assert by_alembic_step() == F
    st = agree(m, ini, [HEAD])
    assert st["unverified"] == [F] and st["skipped"] == [], st
    assert m.migctl("verify").returncode == X_OK
    # adopt records only what Alembic applied since; then nothing is unverified
    rc, res, p = migctl_json(m, "adopt")
    assert rc == X_OK and [x["revision"] for x in res["adopted"]] == [F], (
        rc, p.stdout, p.stderr)
    assert res["already_verified"] == 5, res
    assert status(m)["unverified"] == [] and m.migctl("verify").returncode == X_OK
    # the schema built in turns is the one Alembic alone builds (and the data)
    adb = make_db(pg)
    alembic(ini, pg, adb, "upgrade", "heads")
    assert_same_dump(dump(pg, adb), dump(pg, m.db), "built by Alembic and migd in turns",
                     "alembic", "alembic and migd")
    colours = "SELECT string_agg(code || '=' || name, ',' ORDER BY code) FROM cars.colours"
    assert pg.psql(colours, db=m.db) == pg.psql(colours, db=adb)


def test_drift_after_adopt_is_reported(migd_factory):
    """An edit of a revision Alembic applied and migd adopted is drift, as for
    a revision migd ran: verify exits 4 naming the file, runs are refused,
    nothing changes; restoring the file ends it."""
    m, ini = take_over(migd_factory, C, D)
    path = file_of(m.migrations_dir, D)
    text = read(path)
    edited = text.replace("'blk' WHERE colour IS NULL", "'red' WHERE colour IS NULL")
    assert edited != text
    with open(path, "w") as f:
        f.write(edited)
    p = m.migctl("verify")
    assert p.returncode == X_CHECK, p.stdout + p.stderr
    assert "drift:" in p.stdout and os.path.basename(path) in p.stdout, p.stdout
    rc, res, p = migctl_json(m, "upgrade", E)
    assert rc == X_CHECK or rc == X_FAILED, (rc, p.stdout)
    assert res["error"]["data"]["kind"] == "checksum_mismatch", res
    assert os.path.basename(path) in res["error"]["message"], res
    assert sorted(versions(m)) == [C, D]
    assert history(m, where="direction <> 'adopt'") == []
    # a second adopt does not paper over it
    p = m.migctl("adopt")
    assert p.returncode == X_OK and "nothing to adopt" in p.stdout, p.stdout + p.stderr
    assert m.migctl("verify").returncode == X_CHECK
    # restored: no drift, and migd goes on
    with open(path, "w") as f:
        f.write(text)
    assert m.migctl("verify").returncode == X_OK
    assert migd_step(m, ini, E) == E
