"""Engine settings from the configuration: version and history table names,
schema lists with hostile names, identifiers named by the files."""


import migdtest
from engine_helpers import (connected, call, history, ok, q, rel_exists, rows, schema_exists,
                            step_revs, versions, write_rev)


def test_custom_version_table(migd_factory):
    m = connected(migd_factory(overrides={("migrations", "version_table"): "ops.versions"}))
    write_rev(m, "v1_a.sql", "v1", up="CREATE TABLE public.v1 (id int);",
              down_sql="DROP TABLE public.v1;")
    write_rev(m, "v2_b.sql", "v2", down="v1", up="CREATE TABLE public.v2 (id int);",
              down_sql="DROP TABLE public.v2;")
    assert not schema_exists(m, "ops")
    ok(m, "upgrade", {})
    assert schema_exists(m, "ops")
    assert versions(m, "ops.versions") == ["v2"]
    assert not rel_exists(m, "public.alembic_version")
    assert not rel_exists(m, "public.migd_history")
    # primary key, Alembic style: <table>_pkc
    assert rows(m, "SELECT conname, contype FROM pg_constraint "
                   "WHERE conrelid = 'ops.versions'::regclass") == [["versions_pkc", "p"]]
    # the history table sits in the version table's schema
    h = history(m, "ops.migd_history")
    assert [(x["revision"], x["direction"]) for x in h] == [("v1", "up"), ("v2", "up")]
    assert [c["revision"] for c in ok(m, "current")["current"]] == ["v2"]
    ok(m, "downgrade", {"target": "-1"})
    assert versions(m, "ops.versions") == ["v1"]
    assert m.status()["state"] == "pending"


def test_custom_history_table(migd_factory):
    m = connected(migd_factory(overrides={
        ("migrations", "version_table"): "meta.alembic_version",
        ("migrations", "history_table"): "runs"}))
    write_rev(m, "v1_a.sql", "v1", up="CREATE TABLE public.v1 (id int);")
    ok(m, "upgrade", {})
    assert versions(m, "meta.alembic_version") == ["v1"]
    assert [x["revision"] for x in history(m, "meta.runs")] == ["v1"]
    assert [x["revision"] for x in ok(m, "history")["history"]] == ["v1"]


def test_hostile_schema_names_are_quoted(migd_factory):
    # unquoted, this would close the name and add a schema element
    # (';' and '#' are refused in migd.conf, see the test below); in migd.conf
    # such names are written as SQL writes them: double-quoted, " doubled
    evil = 'x" CREATE TABLE pwned (id int) --'
    m = connected(migd_factory(overrides={
        ("migrations", "schemas"): 'cars, "we""ird", "%s", "MixedCase"'
                                   % evil.replace('"', '""')}))
    write_rev(m, "h1_a.sql", "h1", up='''
        CREATE TABLE "we""ird".t (id int);
        CREATE TABLE "Odd Name".t (id int);
        CREATE TABLE UpperFolded.t (id int);
        ''')
    listed = {s["name"]: s for s in ok(m, "schemas")["schemas"]}
    assert {'we"ird', evil, "MixedCase", "Odd Name", "upperfolded"} <= set(listed), listed
    assert listed['we"ird']["source"] == "config"
    assert listed["Odd Name"]["will_create"] is True
    res = ok(m, "upgrade", {})
    assert set(res["schemas_created"]) == {"cars", 'we"ird', evil, "MixedCase",
                                           "Odd Name", "upperfolded"}, res
    for name in ('we"ird', evil, "MixedCase", "Odd Name", "upperfolded"):
        assert schema_exists(m, name), name
    assert not schema_exists(m, "mixedcase")
    assert not schema_exists(m, "UpperFolded")
    assert q(m, "SELECT count(*) FROM pg_class WHERE relname = 'pwned'") == "0", \
        "SQL injection through a schema name"
    assert rel_exists(m, '"we""ird".t') and rel_exists(m, '"Odd Name".t')
    assert versions(m) == ["h1"]


def test_comment_characters_in_schema_names_are_refused(migd_factory):
    m = migd_factory(start=False, overrides={
        ("migrations", "schemas"): 'cars, x"; DROP TABLE t; --'})
    m.write_config()
    p = migdtest.run_migd(["-n", "-c", m.config_path])
    assert p.returncode == 1, p
    assert "%s:%d: schema name" % (m.config_path, m.line_of("migrations", "schemas")) \
        in p.stderr and "contains ';' or '#'" in p.stderr, p.stderr


def test_system_schemas_are_never_created(migd_factory):
    m = connected(migd_factory())
    write_rev(m, "p1_a.sql", "p1", up="""
        CREATE TABLE public.p (id int);
        CREATE FUNCTION pg_temp.f() RETURNS int LANGUAGE sql AS 'SELECT 1';
        CREATE VIEW public.v AS SELECT relname FROM pg_catalog.pg_class
            UNION ALL SELECT table_name::name FROM information_schema.tables;
        """)
    plan = ok(m, "plan", {})
    bad = {"pg_catalog", "information_schema", "pg_toast", "pg_temp", "public"}
    assert not bad & set(plan["schemas_to_create"]), plan["schemas_to_create"]
    notes, r = call(m, "upgrade", {})
    assert "error" not in r, r
    assert not bad & set(r["result"]["schemas_created"])
    assert step_revs(r["result"]) == ["p1"]
    assert q(m, "SELECT count(*) FROM pg_namespace WHERE nspname = 'pg_temp'") == "0"


def test_session_settings_do_not_leak_between_runs(migd_factory):
    # one connection, so the second run surely uses the first run's session
    m = connected(migd_factory(overrides={("database", "pool_size"): "1"}))
    write_rev(m, "e1.sql", "e1", up="""
        CREATE SCHEMA elsewhere;
        SET search_path = elsewhere;
        """)
    ok(m, "upgrade", {})
    write_rev(m, "e2.sql", "e2", down="e1", up="CREATE TABLE unqualified (id int);")
    ok(m, "upgrade", {})
    assert q(m, "SELECT relnamespace::regnamespace FROM pg_class "
                "WHERE relname = 'unqualified'") == "public"


DETECTED = """
    CREATE TABLE tabs.t (id int PRIMARY KEY);
    CREATE UNLOGGED TABLE IF NOT EXISTS unl.t (id int);
    CREATE TABLE ctas.t AS SELECT 1 AS x;
    SELECT 1 AS x INTO selinto.t;
    CREATE MATERIALIZED VIEW mv.v AS SELECT 1 AS x;
    CREATE VIEW views.v AS SELECT 1 AS x;
    CREATE SEQUENCE seqs.s;
    CREATE TYPE types.t AS (a int);
    CREATE TYPE enums.e AS ENUM ('a');
    CREATE DOMAIN doms.d AS int;
    CREATE FUNCTION funcs.f() RETURNS int LANGUAGE sql AS 'SELECT 1';
    CREATE PROCEDURE procs.p() LANGUAGE sql AS 'SELECT 1';
    CREATE FUNCTION atom.g() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END;
    CREATE TABLE parts.p (id int) PARTITION BY RANGE (id);
    CREATE TABLE partc.c PARTITION OF parts.p FOR VALUES FROM (1) TO (10);
    CREATE TABLE public.x (id int);
    ALTER TABLE public.x SET SCHEMA moved;
    CREATE AGGREGATE aggs.mysum(int) (SFUNC = int4pl, STYPE = int);
    CREATE OPERATOR ops.=== (LEFTARG = int, RIGHTARG = int, FUNCTION = int4eq);
    CREATE COLLATION colls.c FROM "C";
    CREATE TEXT SEARCH CONFIGURATION tsc.c (COPY = pg_catalog.simple);
    CREATE TEXT SEARCH DICTIONARY tsd.d (TEMPLATE = pg_catalog.simple);
    CREATE FUNCTION public.f() RETURNS int LANGUAGE sql AS 'SELECT 1';
    ALTER FUNCTION public.f() SET SCHEMA fmoved;
    CREATE TYPE public.ty AS (a int);
    ALTER TYPE public.ty SET SCHEMA tymoved;
    """
DETECTED_SCHEMAS = {"tabs", "unl", "ctas", "selinto", "mv", "views", "seqs", "types", "enums",
                    "doms", "funcs", "procs", "atom", "parts", "partc", "moved", "aggs", "ops",
                    "colls", "tsc", "tsd", "fmoved", "tymoved"}


def test_schemas_found_by_parsing(migd_factory):
    m = connected(migd_factory(overrides={("migrations", "schemas"): ""}))
    write_rev(m, "p1_many.sql", "p1", up=DETECTED)
    plan = ok(m, "plan", {})
    assert set(plan["schemas_to_create"]) == DETECTED_SCHEMAS
    assert plan["steps"][0]["statements"] == 26    # BEGIN ATOMIC body kept whole
    res = ok(m, "upgrade", {})
    assert set(res["schemas_created"]) == DETECTED_SCHEMAS
    for s in DETECTED_SCHEMAS:
        assert schema_exists(m, s), s
    assert q(m, "SELECT atom.g()") == "2"


def test_schemas_found_by_parsing_rarer_objects(migd_factory):
    m = connected(migd_factory(overrides={("migrations", "schemas"): ""}))
    write_rev(m, "p1_rare.sql", "p1", up="""
        CREATE TABLE public.u (id int, b int);
        CREATE STATISTICS stats.s ON id, b FROM public.u;
        CREATE OPERATOR FAMILY opf.f USING btree;
        CREATE CONVERSION convs.c FOR 'LATIN1' TO 'UTF8' FROM iso8859_1_to_utf8;
        """)
    plan = ok(m, "plan", {})
    assert {"stats", "opf", "convs"} <= set(plan["schemas_to_create"]), plan["schemas_to_create"]
    _, r = call(m, "upgrade", {})
    assert "error" not in r, r
