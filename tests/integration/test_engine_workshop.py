"""The car-workshop example end to end (issue 3, item 10), Alembic compatibility,
plan forms, dry runs, schemas and history, against a real PostgreSQL."""

import os
import pwd

import pytest

from engine_helpers import (connected, E_MIGRATIONS, X_OK, call, chain, copy_workshop, err,
                            history, line_of, migctl_json, ok, q, rel_exists, rows,
                            schema_exists, step_revs, versions, write_rev)

WORKSHOP_SCHEMAS = ["cars", "participants", "work_shop", "billing"]
WORKSHOP_TABLES = ["cars.models", "cars.cars", "participants.owners",
                   "participants.mechanics", "work_shop.orders", "work_shop.parts",
                   "billing.invoices"]
ALL_REVS = ["0001", "0002", "0003", "0004", "0005", "0006", "0007a", "0007b", "0008"]


@pytest.fixture
def shop(migd_factory):
    m = connected(migd_factory())
    copy_workshop(m)
    ok(m, "reload")
    return m


def assert_workshop_objects(m):
    for t in WORKSHOP_TABLES:
        assert rel_exists(m, t), t
    # columns added by later revisions
    cols = q(m, "SELECT table_schema || '.' || table_name || '.' || column_name "
                "FROM information_schema.columns WHERE column_name IN ('owner_id', 'status') "
                "AND table_schema IN ('cars', 'work_shop') ORDER BY 1").splitlines()
    assert cols == ["cars.cars.owner_id", "work_shop.orders.status"]
    # the PL/pgSQL function with its dollar-quoted body works
    assert q(m, "SELECT work_shop.order_total(42)") == "0"
    # the index built CONCURRENTLY exists and is valid
    assert q(m, "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relname = 'orders_open_idx' AND n.nspname = 'work_shop'") == "t"
    # the enum type from the DO block
    assert q(m, "SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) FROM pg_enum e "
                "JOIN pg_type t ON t.oid = e.enumtypid JOIN pg_namespace n ON n.oid = t.typnamespace "
                "WHERE t.typname = 'order_status' AND n.nspname = 'work_shop'") \
        == "open,waiting_parts,done"
    # string literals with semicolons survived statement splitting
    assert q(m, "SELECT model FROM cars.models ORDER BY id") == "V70; estate\nPanda"
    assert q(m, "SELECT column_default FROM information_schema.columns WHERE "
                "table_schema = 'participants' AND table_name = 'owners' AND column_name = 'note'") \
        == "'call first; never after 8pm'::text"


def assert_no_workshop_objects(m):
    for t in WORKSHOP_TABLES:
        assert not rel_exists(m, t), t
    assert q(m, "SELECT count(*) FROM pg_proc WHERE proname = 'order_total'") == "0"
    assert q(m, "SELECT count(*) FROM pg_type WHERE typname = 'order_status'") == "0"
    assert q(m, "SELECT count(*) FROM pg_class WHERE relname = 'orders_open_idx'") == "0"


def test_workshop_full_cycle(shop):
    m = shop
    assert not schema_exists(m, "billing")

    # upgrade +1: only the first revision, which creates the schemas
    p = m.migctl("upgrade", "+1")
    assert p.returncode == X_OK, p.stdout + p.stderr
    assert versions(m) == ["0001"]
    for s in ("cars", "participants", "work_shop"):
        assert schema_exists(m, s)
    assert not rel_exists(m, "cars.models")
    assert not schema_exists(m, "billing")

    # the plan of the rest says why 0005 is not transactional
    plan = ok(m, "plan", {"target": "head"})
    assert step_revs(plan) == ALL_REVS[1:]
    assert plan["runnable"] is True and plan["problems"] == []
    by_rev = {s["revision"]: s for s in plan["steps"]}
    assert by_rev["0005"]["transactional"] is False
    assert "CONCURRENTLY" in by_rev["0005"]["why_not_transactional"]
    assert "0005_orders_index.sql:9" in by_rev["0005"]["why_not_transactional"]
    for r in ("0002", "0003", "0004", "0006", "0007a", "0007b", "0008"):
        assert by_rev[r]["transactional"] is True, r
    assert "billing" in plan["schemas_to_create"]
    assert by_rev["0008"]["version_delete"] == ["0007a", "0007b"]
    assert by_rev["0008"]["version_insert"] == ["0008"]

    # upgrade head
    notes, r = call(m, "upgrade", {"target": "head"})
    assert "error" not in r, r
    res = r["result"]
    assert step_revs(res) == ALL_REVS[1:]
    assert res["from"] == ["0001"] and res["to"] == ["0008"]
    assert res["schemas_created"] == ["billing"]
    events = [n["params"]["event"] for n in notes if n.get("method") == "progress"]
    assert events.count("started") == 8 and events.count("finished") == 8, events
    started_0005 = [n["params"] for n in notes if n["params"].get("event") == "started"
                    and n["params"].get("revision") == "0005"]
    assert started_0005 and started_0005[0]["transactional"] is False

    assert versions(m) == ["0008"]
    assert schema_exists(m, "billing")
    assert_workshop_objects(m)

    # the history: one successful up row per revision, billing recorded
    h = history(m)
    ups = [x for x in h if x["direction"] == "up" and x["success"]]
    assert [x["revision"] for x in ups] == ALL_REVS
    assert not any(x["dirty"] for x in ups if x["revision"] == "0005")
    created = [s for x in h for s in (x["schemas_created"] or [])]
    assert "billing" in created
    assert sorted(created) == sorted(set(created)), created   # each recorded once
    st = m.status()
    assert st["state"] == "up_to_date" and st["pending"] == 0 and st["dirty"] == []
    assert [c["revision"] for c in st["current"]] == ["0008"]

    # downgrade -1 from the merge: two rows, like Alembic
    p = m.migctl("downgrade", "-1")
    assert p.returncode == X_OK, p.stdout + p.stderr
    assert versions(m) == ["0007a", "0007b"]
    assert rel_exists(m, "work_shop.parts")

    # downgrade base: version table empty, every table gone, schemas stay
    res = ok(m, "downgrade", {"target": "base"})
    assert res["direction"] == "down" and res["to"] == []
    assert set(step_revs(res)) == set(ALL_REVS[:-1])
    assert step_revs(res)[-1] == "0001"
    assert versions(m) == []
    assert_no_workshop_objects(m)
    for s in WORKSHOP_SCHEMAS:
        assert schema_exists(m, s), "a downgrade dropped schema %s" % s
    downs = [x["revision"] for x in history(m) if x["direction"] == "down" and x["success"]]
    assert sorted(downs) == sorted(ALL_REVS)
    assert m.status()["state"] == "pending"

    # and up again: same result, history keeps both runs
    res = ok(m, "upgrade", {})
    assert step_revs(res) == ALL_REVS
    assert versions(m) == ["0008"]
    assert_workshop_objects(m)
    for r in ALL_REVS:
        assert q(m, "SELECT count(*) FROM migd_history WHERE revision = '%s' AND "
                    "direction = 'up' AND success" % r) == "2", r


def test_alembic_compatible_version_table(shop):
    m = shop
    ok(m, "upgrade", {"target": "0004"})
    cur = ok(m, "current")
    assert [c["revision"] for c in cur["current"]] == ["0004"]
    assert q(m, "SELECT version_num FROM alembic_version") == "0004"
    assert rows(m, "SELECT column_name, data_type, character_maximum_length, is_nullable "
                   "FROM information_schema.columns WHERE table_schema = 'public' AND "
                   "table_name = 'alembic_version' ORDER BY ordinal_position") == \
        [["version_num", "character varying", "32", "NO"]]
    assert rows(m, "SELECT c.conname, c.contype FROM pg_constraint c "
                   "WHERE c.conrelid = 'public.alembic_version'::regclass") == \
        [["alembic_version_pkc", "p"]]
    # the history table sits beside it
    assert rel_exists(m, "public.migd_history")
    # a row written by someone else (Alembic) is read back as current
    q(m, "UPDATE alembic_version SET version_num = '0006'")
    cur = ok(m, "current")
    assert [c["revision"] for c in cur["current"]] == ["0006"]
    heads = ok(m, "heads")["heads"]
    assert [h["revision"] for h in heads] == ["0008"]
    assert heads[0]["current"] is False and heads[0]["applied"] is False


def test_migctl_plan_human_output(shop):
    m = shop
    p = m.migctl("plan")
    assert p.returncode == X_OK, p.stderr
    out = p.stdout
    assert "0005" in out and "0001" in out and "0008" in out
    assert "NOT in a transaction" in out and "CREATE INDEX CONCURRENTLY" in out
    assert "in a transaction" in out
    assert "billing" in out   # schemas to create


def test_plan_forms_and_dry_run(migd_factory):
    m = connected(migd_factory())
    chain(m, 4)

    # a dry run on a fresh database changes nothing at all
    p = m.migctl("upgrade", "--dry-run")
    assert p.returncode == X_OK, p.stdout + p.stderr
    assert versions(m) is None, "dry run created the version table"
    assert not rel_exists(m, "public.t1")
    assert not rel_exists(m, "public.migd_history")
    res = ok(m, "upgrade", {"target": "head", "dry_run": True})
    assert step_revs(res) == ["r1", "r2", "r3", "r4"]
    assert not rel_exists(m, "public.t1")

    ok(m, "upgrade", {"target": "r2"})
    assert versions(m) == ["r2"]

    def plan(target):
        r = ok(m, "plan", {"target": target})
        return r["direction"], step_revs(r), r["to"]

    assert plan("+1") == ("up", ["r3"], ["r3"])
    assert plan("+2") == ("up", ["r3", "r4"], ["r4"])
    assert plan("head") == ("up", ["r3", "r4"], ["r4"])
    assert plan("heads") == ("up", ["r3", "r4"], ["r4"])
    assert plan("r4") == ("up", ["r3", "r4"], ["r4"])
    assert plan("-1") == ("down", ["r2"], ["r1"])
    assert plan("-2") == ("down", ["r2", "r1"], [])
    assert plan("base") == ("down", ["r2", "r1"], [])
    assert plan("r1") == ("down", ["r2"], ["r1"])
    full = ok(m, "plan", {"target": "+1"})["steps"][0]
    assert full["sql"].strip() == "CREATE TABLE public.t3 (id int);"
    assert full["statements"] == 1 and full["has_down"] is True
    assert full["file"].endswith("r3_step.sql") and full["message"] == "step 3"
    assert full["version_delete"] == ["r2"] and full["version_insert"] == ["r3"]

    # too far is an error, not a silent partial plan
    err(m, "plan", {"target": "+3"}, code=E_MIGRATIONS)
    err(m, "plan", {"target": "-3"}, code=E_MIGRATIONS)

    # migctl: downgrade -1 typed as is, dry run first
    before = len(history(m))
    p = m.migctl("downgrade", "-1", "--dry-run")
    assert p.returncode == X_OK, p.stdout + p.stderr
    assert versions(m) == ["r2"] and rel_exists(m, "public.t2")
    assert len(history(m)) == before
    rc, data, p = migctl_json(m, "plan", "-1")
    assert rc == X_OK and step_revs(data) == ["r2"], p.stdout + p.stderr
    p = m.migctl("downgrade", "-1")
    assert p.returncode == X_OK, p.stdout + p.stderr
    assert versions(m) == ["r1"]
    assert not rel_exists(m, "public.t2") and rel_exists(m, "public.t1")
    p = m.migctl("upgrade", "+2")
    assert p.returncode == X_OK, p.stdout + p.stderr
    assert versions(m) == ["r3"]
    # downgrade needs a target
    p = m.migctl("downgrade")
    assert p.returncode == 2, p.stdout + p.stderr
    e = err(m, "downgrade", {})
    assert versions(m) == ["r3"], e


def test_migctl_dry_run_human_output(migd_factory):
    m = connected(migd_factory())
    chain(m, 2)
    p = m.migctl("upgrade", "--dry-run")
    assert p.returncode == X_OK, p.stdout + p.stderr
    assert versions(m) is None
    # it shows what would run and does not claim to have done it
    assert "r1" in p.stdout and "r2" in p.stdout, p.stdout
    assert "upgraded" not in p.stdout, p.stdout


def test_history(migd_factory):
    m = connected(migd_factory())
    chain(m, 3)
    version = ok(m, "version")
    ok(m, "upgrade", {"target": "+1"})
    ok(m, "upgrade", {"target": "head"})
    ok(m, "downgrade", {"target": "-1"})
    me = pwd.getpwuid(os.getuid()).pw_name

    h = ok(m, "history")["history"]
    assert [(x["revision"], x["direction"]) for x in h] == \
        [("r3", "down"), ("r3", "up"), ("r2", "up"), ("r1", "up")]
    ids = [x["id"] for x in h]
    assert ids == sorted(ids, reverse=True)
    for x in h:
        assert x["success"] is True and x["dirty"] is False
        assert x["requested_by"] == me
        assert x["requester_uid"] == os.getuid()
        assert x["requester_pid"] == os.getpid()
        assert x["migd_version"] == version["version"]
        assert x["host"]
        assert x["file"].endswith("_step.sql")
        assert x["duration_ms"] is not None and x["duration_ms"] >= 0
    assert h[1]["checksum"] and len(h[1]["checksum"]) == 64
    assert h[0]["message"] == "step 3"

    assert len(ok(m, "history", {"limit": 2})["history"]) == 2
    only = ok(m, "history", {"revision": "r3"})["history"]
    assert [x["direction"] for x in only] == ["down", "up"]

    rc, data, p = migctl_json(m, "history", "--limit", "1")
    assert rc == X_OK, p.stderr
    assert len(data["history"]) == 1 and data["history"][0]["direction"] == "down"
    # through migctl the requester is migctl's process, not us
    ok_rows = history(m)
    assert len(ok_rows) == 4
    p = m.migctl("history")
    assert p.returncode == X_OK and "r2" in p.stdout, p.stdout + p.stderr
    p = m.migctl("upgrade")
    assert p.returncode == X_OK
    last = ok(m, "history", {"limit": 1})["history"][0]
    assert last["revision"] == "r3" and last["direction"] == "up"
    assert last["requester_pid"] != os.getpid() and last["requested_by"] == me


def test_schemas_listing(migd_factory):
    m = connected(migd_factory())
    a = write_rev(m, "a1_audit.sql", "a1", up="""
        -- the audit schema is named here first
        CREATE TABLE audit.log (id int);
        """, down_sql="DROP TABLE audit.log;")
    b = write_rev(m, "a2_reports.sql", "a2", down="a1", up="""
        CREATE SCHEMA reports;
        CREATE TABLE reports.daily (id int);
        CREATE VIEW audit.v AS SELECT 1 AS x;
        """, down_sql="DROP VIEW audit.v; DROP TABLE reports.daily;")
    ok(m, "reload")

    def listing():
        return {s["name"]: s for s in ok(m, "schemas")["schemas"]}

    s = listing()
    for name in ("cars", "participants", "work_shop"):
        assert s[name]["source"] == "config"
        assert s[name]["exists"] is False and s[name]["will_create"] is True
    assert s["audit"]["source"] == "%s:%d" % (a, line_of(a, "CREATE TABLE audit.log"))
    assert s["audit"]["exists"] is False and s["audit"]["will_create"] is True
    assert s["reports"]["source"].startswith(b + ":")
    # a schema a migration creates itself is not created beforehand
    assert s["reports"]["will_create"] is False
    assert "public" not in s or s["public"]["will_create"] is False
    plan = ok(m, "plan", {})
    assert sorted(plan["schemas_to_create"]) == ["audit", "cars", "participants", "work_shop"]

    res = ok(m, "upgrade", {})
    assert sorted(res["schemas_created"]) == ["audit", "cars", "participants", "work_shop"]
    for name in ("audit", "reports", "cars", "participants", "work_shop"):
        assert schema_exists(m, name)
    s = listing()
    for name in ("audit", "reports", "cars"):
        assert s[name]["exists"] is True and s[name]["will_create"] is False, s[name]

    # configured schemas that vanished are recreated by the next run
    q(m, "DROP SCHEMA participants")
    write_rev(m, "a3_more.sql", "a3", down="a2", up="CREATE TABLE audit.more (id int);",
              down_sql="DROP TABLE audit.more;")
    s = listing()
    assert s["participants"]["exists"] is False and s["participants"]["will_create"] is True
    res = ok(m, "upgrade", {})
    assert res["schemas_created"] == ["participants"]
    assert schema_exists(m, "participants")
    # downgrades never drop schemas
    ok(m, "downgrade", {"target": "base"})
    assert versions(m) == []
    assert not rel_exists(m, "audit.log") and not rel_exists(m, "reports.daily")
    for name in ("audit", "reports", "cars", "participants", "work_shop"):
        assert schema_exists(m, name)


def test_migctl_stream(shop):
    m = shop
    import json
    p = m.migctl("--json", "--stream", "upgrade", "+2")
    assert p.returncode == X_OK, p.stdout + p.stderr
    msgs = [json.loads(line) for line in p.stdout.splitlines() if line.strip()]
    progress = [x["params"]["event"] for x in msgs if x.get("method") == "progress"]
    assert progress.count("started") == 2 and progress.count("finished") == 2, msgs
    assert "result" in msgs[-1] and step_revs(msgs[-1]["result"]) == ["0001", "0002"]
    assert versions(m) == ["0002"]
