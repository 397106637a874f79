"""Big and many migration files (issue 9, F7 and F8):

- a big migration file loads on migd's loader thread: the socket answers
  at once, and status answers while the file loads (state "loading", or the
  previous files with migrations.loading), migctl check does not pass then;
  the plan reply shows the SQL of a big section capped, with its size;
- without inotify (MIGD_TEST_NO_INOTIFY, the test hook) migd says so in its
  log and still picks up an edited or a new file: status within a few
  seconds (the check every second), plan at once (the files are checked
  before a request that uses them);
- a reload reads again only the files whose stat changed.

Timings are never asserted: bench/files.py measures them.
"""

import json
import os
import re
import time

import migdtest
from engine_helpers import (X_CHECK, X_OK, chain, connected, ok, rel_exists, versions,
                            write_file, write_rev)


# Big enough that its load (1.5 s in a plain build, 10 s under ASan) outlasts
# a status request many times over; 20 MB took 25 s under ASan, twice.
BIG = 8 * 1000 * 1000


def _bulk_sql(size):
    """About size bytes of multi-row INSERTs into public.big."""
    rows = []
    n = 0
    i = 0
    while n < size:
        vals = ",".join("(%d,'name %d','a note for row %d')" % (k, k, k)
                        for k in range(i * 20, i * 20 + 20))
        s = "INSERT INTO public.big VALUES %s;\n" % vals
        rows.append(s)
        n += len(s)
        i += 1
    return "CREATE TABLE public.big (id int, name text, note text);\n" + "".join(rows)


def _big_file(m, size=BIG):
    write_rev(m, "b1_big.sql", "b1", up=_bulk_sql(size), down_sql="DROP TABLE public.big;")


def test_big_file_status_answers_while_it_loads(migd_factory):
    m = migd_factory(start=False)
    _big_file(m)
    m.start()                      # the socket answers version: it listens
    st = m.status(settled=False)
    # answered before the load ended: nothing loaded yet to judge by
    assert st["migrations"]["loading"] is True, st
    assert st["state"] == "loading", st
    assert "revisions" not in st["migrations"], st
    p = m.migctl("check")
    assert p.returncode == X_CHECK, (p.returncode, p.stdout, p.stderr)
    connected(m)
    migdtest.wait_for(lambda: not m.status(settled=False)["migrations"]["loading"], 300,
                      interval=0.2, what="the big file loaded")
    st = m.status()
    assert st["state"] == "pending" and st["migrations"]["revisions"] == 1, st
    assert "loaded 1 revision from" in m.log()

    # the plan shows the big section capped, with its real size
    plan = ok(m, "plan", {"target": "head"}, timeout=120)
    step = plan["steps"][0]
    assert step["sql_truncated"] is True, {k: v for k, v in step.items() if k != "sql"}
    assert step["sql_bytes"] >= BIG, step["sql_bytes"]
    assert len(step["sql"]) < 200 * 1024, len(step["sql"])
    assert step["sql"].startswith("CREATE TABLE public.big"), step["sql"][:100]
    assert re.search(r"-- \[migd: \d+ more statements \(\d+ bytes\) not shown", step["sql"])
    assert step["statements"] > 1000, step["statements"]

    # an edit of the big file: loaded again, status answers meanwhile
    with open(os.path.join(m.migrations_dir, "b1_big.sql"), "a") as f:
        f.write("\n-- one more line\n")
    st = m.status(settled=False)
    assert st["migrations"]["loading"] is True, st["migrations"]
    assert st["migrations"]["revisions"] == 1 and st["state"] == "pending", st
    p = m.migctl("check")
    assert p.returncode == X_CHECK, (p.returncode, p.stdout, p.stderr)
    # a run waits for the files off the loop; cancelled meanwhile, it ends
    # cleanly and is not resumed when the load ends
    with migdtest.Conn(m.socket, 300) as c:
        c.send(migdtest.request("upgrade", {}, 7))
        time.sleep(0.5)
        assert m.status(settled=False)["migrations"]["loading"] is True
        ok(m, "cancel")
        while True:
            r = json.loads(c.readline(300))
            if r.get("id") == 7:
                break
        assert (r.get("error") or {}).get("data", {}).get("kind") == "cancelled", r
    migdtest.wait_for(lambda: not m.status(settled=False)["migrations"]["loading"], 300,
                      interval=0.2, what="the big file loaded again")
    assert versions(m) in (None, []) and not rel_exists(m, "public.big")
    assert m.status()["state"] == "pending"


def test_plan_caps_a_long_statement(migd_factory):
    m = connected(migd_factory())
    long_values = ",".join("(%d,'%s')" % (k, "x" * 40) for k in range(3000))
    up = ("CREATE TABLE public.lv (id int, v text);\n"
          "INSERT INTO public.lv VALUES %s;\n" % long_values +
          "".join("INSERT INTO public.lv VALUES (%d, 'y');\n" % k for k in range(2000)))
    write_rev(m, "l1_long.sql", "l1", up=up)
    step = ok(m, "plan", {"target": "head"})["steps"][0]
    assert step["sql_truncated"] is True, step.keys()
    assert step["sql_bytes"] >= len(up), (step["sql_bytes"], len(up))
    assert len(step["sql"]) < 80 * 1024, len(step["sql"])
    assert re.search(r"-- \[migd: this statement \(line \d+\) has \d+ bytes; the first "
                     r"\d+ are shown here", step["sql"]), step["sql"][:5000]
    assert re.search(r"-- \[migd: \d+ more statements \(\d+ bytes\) not shown",
                     step["sql"]), step["sql"][-500:]
    assert step["sql"].startswith("CREATE TABLE public.lv"), step["sql"][:100]
    # a small file is shown whole, as before
    write_rev(m, "l2_small.sql", "l2", down="l1", up="SELECT 1;")
    steps = ok(m, "plan", {"target": "head"})["steps"]
    assert steps[1]["sql"].strip() == "SELECT 1;" and "sql_truncated" not in steps[1], steps[1]
    # and it all runs: the file has every statement
    res = ok(m, "upgrade", {}, timeout=120)
    assert [s["revision"] for s in res["steps"]] == ["l1", "l2"], res


def _no_inotify(migd_factory):
    m = migd_factory(start=False)
    m.env = {"MIGD_TEST_NO_INOTIFY": "1"}
    chain(m, 2)
    m.start()
    return connected(m)


def test_edit_picked_up_without_inotify(migd_factory):
    m = _no_inotify(migd_factory)
    migdtest.wait_for(lambda: "cannot watch the migration files" in m.log(), 10,
                      what="the inotify warning")
    assert "every second" in m.log(), m.log()
    migdtest.wait_for(lambda: m.status()["migrations"].get("revisions") == 2, 10,
                      what="the first load")
    assert ok(m, "upgrade", {})["to"] == ["r2"]

    # a new file: a request that uses the files sees it at once
    write_rev(m, "r3_step.sql", "r3", down="r2", up="CREATE TABLE public.t3 (id int);")
    plan = ok(m, "plan", {"target": "head"})
    assert [s["revision"] for s in plan["steps"]] == ["r3"], plan
    # status within the check every second (no timing asserted: polled)
    migdtest.wait_for(lambda: m.status().get("pending") == 1, 15, interval=0.2,
                      what="status seeing r3")

    # an edit of an existing file (same name, new content) is picked up
    write_rev(m, "r3_step.sql", "r3", down="r2", up="CREATE TABLE public.t3b (id int);")
    plan = ok(m, "plan", {"target": "head"})
    assert "t3b" in plan["steps"][0]["sql"], plan
    res = ok(m, "upgrade", {})
    assert [s["revision"] for s in res["steps"]] == ["r3"], res
    p = m.migctl("check")
    assert p.returncode == X_OK, (p.stdout, p.stderr)

    # a broken edit is reported, and a fix is seen too
    write_file(m, "r4_bad.sql", "-- revision: r4\n-- down_revision: r3\n-- migrate:up\n"
               "CREATE TABLE public.t4 (id int;\n")
    migdtest.wait_for(lambda: m.status()["migrations"]["valid"] is False, 15,
                      interval=0.2, what="status seeing the broken file")
    write_file(m, "r4_bad.sql", "-- revision: r4\n-- down_revision: r3\n-- migrate:up\n"
               "CREATE TABLE public.t4 (id int);\n")
    migdtest.wait_for(lambda: m.status()["migrations"]["valid"] is True, 15,
                      interval=0.2, what="status seeing the fix")


def test_reload_reads_only_changed_files(migd_factory):
    m = connected(migd_factory())          # -v: debug lines in the log
    chain(m, 3)
    ok(m, "reload")
    write_rev(m, "r2_step.sql", "r2", down="r1", up="CREATE TABLE public.t2b (id int);",
              message="step 2 edited")
    res = ok(m, "plan", {"target": "head"})
    assert "t2b" in json.dumps(res), res
    migdtest.wait_for(lambda: "(2 of 3 unchanged)" in m.log(), 10,
                      what="a load that reused the two unchanged files")
    # SIGHUP and reload also reuse them; the outcome is logged
    ok(m, "reload")
    assert re.search(r"loaded 3 revisions from .* \(\d+\.\d+ s\)", m.log()), m.log()
