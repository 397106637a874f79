"""What migd answers when the files are broken, and when asked about one
revision (issue 13, the daemon's side):

- with an invalid file, status says invalid_migrations with every problem of
  every file (header, SQL, graph) in one pass, never "ahead" because a file did
  not load; the revision count and heads are the last valid set's, marked
  stale; current and heads go on answering from it, marked stale;
- history REV takes a unique prefix, finds a deleted file's revision by its
  id, and refuses an unknown or ambiguous one;
- durations in JSON carry 3 decimals at most, no float noise.
"""

import json
import os
import re

import migdtest
from engine_helpers import (E_MIGRATIONS, X_FAILED, chain, connected, err, ok, versions,
                            write_file, write_rev)


def _broken(m):
    """Break r2 (a header problem and an SQL problem in the same file) and add r3
    with an SQL problem and r4 naming an unknown parent: one pass finds all four."""
    write_file(m, "r2_step.sql",
               "-- revision: r2\n-- down_revision: r1\n-- mesage: typo\n\n"
               "-- migrate:up\nCREATE TABLE public.t2 (id int);\nROLLBACK;\n")
    write_rev(m, "r3_more.sql", "r3", down="r2", up="CREATE TABLE public.t3 (id int;")
    write_rev(m, "r4_lost.sql", "r4", down="nowhere", up="SELECT 1;")


def _assert_all_problems(errors):
    text = "\n".join(errors)
    assert re.search(r"r2_step\.sql:3: unknown header 'mesage'", text), text
    assert re.search(r"r2_step\.sql:7: ROLLBACK", text), text
    assert re.search(r"r3_more\.sql:\d+: .*syntax error", text), text
    assert re.search(r"r4_lost\.sql:2: down_revision 'nowhere' names no known revision",
                     text), text
    assert len(errors) == 4, errors


def test_status_with_invalid_files_is_not_ahead(migd_factory):
    m = connected(migd_factory())
    chain(m, 2)
    ok(m, "upgrade", {})
    assert versions(m) == ["r2"]
    with open(os.path.join(m.migrations_dir, "r2_step.sql")) as f:
        good_r2 = f.read()
    _broken(m)

    st = m.status()
    assert st["state"] == "invalid_migrations", st
    assert st["unknown"] == [], st            # never "ahead" because a file is broken
    assert st["pending"] is None and st["drift"] == [], st
    assert [c["revision"] for c in st["current"]] == ["r2"], st
    assert st["current"][0]["message"] == "step 2", st   # from the last valid set
    mig = st["migrations"]
    assert mig["valid"] is False and mig["stale"] is True, mig
    assert mig["revisions"] == 2 and mig["heads"] == ["r2"], mig
    _assert_all_problems(mig["errors"])
    assert "stale" not in st, st              # the database part is fresh

    # current and heads keep answering, from the last valid set, marked stale
    cur = ok(m, "current")
    assert cur["state"] == "invalid_migrations" and cur["stale"] is True, cur
    assert [c["revision"] for c in cur["current"]] == ["r2"] and cur["unknown"] == [], cur
    _assert_all_problems(cur["errors"])
    heads = ok(m, "heads")
    assert heads["stale"] is True, heads
    assert [(h["revision"], h["current"], h["applied"]) for h in heads["heads"]] == \
        [("r2", True, True)], heads

    # a run is still refused, naming every problem
    e = err(m, "upgrade", {}, code=E_MIGRATIONS, kind="invalid_migrations")
    _assert_all_problems(e["data"]["errors"])
    assert "and 3 more problems" in e["message"], e
    p = m.migctl("status")
    assert "ahead" not in p.stdout + p.stderr, p.stdout + p.stderr

    # fixed: fresh again
    write_file(m, "r2_step.sql", good_r2)
    os.unlink(os.path.join(m.migrations_dir, "r3_more.sql"))
    os.unlink(os.path.join(m.migrations_dir, "r4_lost.sql"))
    st = m.status()
    assert st["state"] == "up_to_date" and st["migrations"]["stale"] is False, st
    assert "stale" not in ok(m, "current") and "stale" not in ok(m, "heads")


def test_invalid_from_the_start(migd_factory):
    """No valid set ever loaded: status and current still answer, and the
    database's revision is not called ahead; heads has nothing to answer from."""
    m = connected(migd_factory())
    chain(m, 2)
    ok(m, "upgrade", {})
    m.stop()
    _broken(m)
    m.start()
    connected(m)
    st = m.status()
    assert st["state"] == "invalid_migrations" and st["unknown"] == [], st
    assert st["current"] == [{"revision": "r2"}], st
    assert "revisions" not in st["migrations"], st
    _assert_all_problems(st["migrations"]["errors"])
    cur = ok(m, "current")
    assert cur["stale"] is True and cur["unknown"] == [], cur
    err(m, "heads", {}, code=E_MIGRATIONS, kind="invalid_migrations")


def test_history_revision_lookup(migd_factory):
    m = connected(migd_factory())
    write_rev(m, "a1_one.sql", "abc111", up="CREATE TABLE public.h1 (id int);",
              down_sql="DROP TABLE public.h1;")
    write_rev(m, "a2_two.sql", "abc222", down="abc111",
              up="CREATE TABLE public.h2 (id int);", down_sql="DROP TABLE public.h2;")
    write_rev(m, "a3_three.sql", "d3f333", down="abc222",
              up="CREATE TABLE public.h3 (id int);", down_sql="DROP TABLE public.h3;")
    ok(m, "upgrade", {})

    # a unique prefix selects the revision
    h = ok(m, "history", {"revision": "d3f"})["history"]
    assert [r["revision"] for r in h] == ["d3f333"], h
    h = ok(m, "history", {"revision": "abc2"})["history"]
    assert [r["revision"] for r in h] == ["abc222"], h
    # the exact id, as ever
    h = ok(m, "history", {"revision": "abc111"})["history"]
    assert [r["revision"] for r in h] == ["abc111"], h

    # an ambiguous prefix names the candidates
    e = err(m, "history", {"revision": "abc"}, code=E_MIGRATIONS, kind="ambiguous_revision")
    assert sorted(e["data"]["candidates"]) == ["abc111", "abc222"], e
    assert e["data"]["matches"] == 2 and "abc111" in e["message"], e
    # an unknown id is an error, not an empty history
    e = err(m, "history", {"revision": "zzz"}, code=E_MIGRATIONS, kind="unknown_revision")
    assert "zzz" in e["message"], e
    p = m.migctl("history", "zzz")
    assert p.returncode == X_FAILED, (p.returncode, p.stdout, p.stderr)
    assert "no history yet" not in p.stdout, p.stdout

    # a revision whose file was deleted is still found in the history by its id
    ok(m, "downgrade", {"target": "abc222"})
    os.unlink(os.path.join(m.migrations_dir, "a3_three.sql"))
    h = ok(m, "history", {"revision": "d3f333"})["history"]
    assert [r["direction"] for r in h] == ["down", "up"], h
    # and by a prefix too, when nothing else starts so
    h = ok(m, "history", {"revision": "d3f"})["history"]
    assert [r["revision"] for r in h] == ["d3f333", "d3f333"], h

    # a known revision with no history yet is an empty list, not an error
    write_rev(m, "a4_four.sql", "e4e444", down="abc222", up="SELECT 1;")
    assert ok(m, "history", {"revision": "e4e"})["history"] == []

    # invalid files: the last valid set still resolves prefixes
    write_file(m, "a5_bad.sql", "-- revision: f5\n-- down_revision: e4e444\n-- bogus: 1\n"
               "-- migrate:up\nSELECT 1;\n")
    h = ok(m, "history", {"revision": "abc1"})["history"]
    assert [r["revision"] for r in h] == ["abc111"], h


def _raw_reply(m, method, params=None):
    """The reply line exactly as migd wrote it."""
    with migdtest.Conn(m.socket, 30) as c:
        c.send(migdtest.request(method, params, 1))
        while True:
            line = c.readline(30)
            if b'"id"' in line:
                return line.decode()


def _reals(line):
    """Every number with a fraction in a JSON text."""
    return re.findall(r'(?<![\w."])-?\d+\.\d+(?:[eE][-+]?\d+)?', line)


def test_durations_have_three_decimals(migd_factory):
    m = connected(migd_factory())
    chain(m, 3)
    run = _raw_reply(m, "upgrade", {})
    res = json.loads(run)["result"]
    assert len(res["steps"]) == 3, res
    hist = _raw_reply(m, "history", {})
    status = _raw_reply(m, "status")
    for line in (run, hist, status):
        nums = _reals(line)
        assert nums, line
        for n in nums:
            assert "e" not in n.lower() and len(n.split(".")[1]) <= 3, (n, line)
    assert all(isinstance(s["duration_ms"], (int, float)) for s in res["steps"])
    # and what migctl --json prints
    p = m.migctl("--json", "history")
    assert p.returncode == 0, p.stderr
    for n in _reals(p.stdout):
        assert len(n.split(".")[1]) <= 3, (n, p.stdout)
