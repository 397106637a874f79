"""The run's connection dies in the middle of a migration (its backend is
terminated): the request fails with db_unavailable, the server has rolled the
step back, and the failure is still recorded in the history, written on
another connection once one is back."""

from engine_helpers import (Bg, call, connected, history, ok, q, rel_exists,
                            versions, wait_activity, write_rev)


def kill_run_backend(m):
    wait_activity(m, "pg_sleep")
    q(m, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
         "WHERE query LIKE '%pg_sleep(3)%' AND pid <> pg_backend_pid()")


def test_lost_connection_in_a_transactional_step_is_recorded(migd_factory):
    m = connected(migd_factory())
    write_rev(m, "r1.sql", "r1", up="CREATE TABLE public.t1 (id int);")
    write_rev(m, "r2.sql", "r2", down="r1",
              up="CREATE TABLE public.t2 (id int);\nSELECT pg_sleep(3);")
    bg = Bg(lambda: call(m, "upgrade", {}))
    kill_run_backend(m)
    notes, reply = bg.join(30)
    e = reply["error"]
    assert e["data"]["kind"] == "db_unavailable", reply
    assert "during r2" in e["message"], e
    # what became of r2, once migd could look: rolled back, not dirty
    assert "not committed" in e["message"] and "last good revision" in e["message"], e
    assert versions(m) == ["r1"]
    assert not rel_exists(m, "public.t2")
    failed = [h for h in history(m) if h["revision"] == "r2"]
    assert len(failed) == 1 and failed[0]["success"] is False, failed
    assert failed[0]["sqlstate"] == "08006" and not failed[0]["dirty"], failed
    # the daemon carries on: the next upgrade completes
    write_rev(m, "r2.sql", "r2", down="r1", up="CREATE TABLE public.t2 (id int);")
    ok(m, "upgrade", {})
    assert versions(m) == ["r2"] and rel_exists(m, "public.t2")


def test_lost_connection_in_a_bare_step_leaves_it_dirty(migd_factory):
    m = connected(migd_factory())
    write_rev(m, "r1.sql", "r1", transaction="none",
              up="CREATE TABLE public.t1 (id int);\nSELECT pg_sleep(3);")
    bg = Bg(lambda: call(m, "upgrade", {}))
    kill_run_backend(m)
    _, reply = bg.join(30)
    assert reply["error"]["data"]["kind"] == "db_unavailable", reply
    # the reply says what the next run would find: r1 is dirty, and what to do
    msg = reply["error"]["message"]
    assert "now dirty" in msg and "migctl resolve" in msg, msg
    rows = [h for h in history(m) if h["revision"] == "r1"]
    # one row: the dirty mark written before the step, completed with the error
    assert len(rows) == 1 and rows[0]["dirty"] and not rows[0]["success"], rows
    assert rows[0]["sqlstate"] == "08006", rows
    assert "dirty" not in rows[0]["error"], rows     # the row keeps the error alone
    assert ok(m, "status")["state"] == "dirty"
