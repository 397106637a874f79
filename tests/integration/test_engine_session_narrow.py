"""The session reset narrowed to what a migration's SQL may change (issue 12):
for each kind of session state, a migration that changes it in exactly one
way (and nothing else that would make migd reset everything), then a
migration that records what it sees.  Each case fails if the parse tree's
classification (sqlscan_session) or the question for event triggers missed
its way of changing the session: the next migration would see the state."""

import pytest

from engine_helpers import call, connected, history, ok, q, versions, write_rev

# What the next migration records: each column has one clean value.
SEES = """
CREATE TABLE public.seen AS
SELECT current_setting('search_path') AS search_path,
       current_user::text AS usr,
       session_user::text AS susr,
       current_setting('TimeZone') AS tz,
       (SELECT count(*) FROM pg_prepared_statements) AS prepared,
       (SELECT count(*) FROM pg_cursors WHERE name <> '') AS cursors,
       (SELECT count(*) FROM pg_listening_channels()) AS listening,
       (SELECT count(*) FROM pg_catalog.pg_class
         WHERE relnamespace = pg_my_temp_schema()) AS temps,
       (SELECT count(*) FROM pg_catalog.pg_proc
         WHERE pronamespace = pg_my_temp_schema()) AS temp_funcs,
       public.migd_t_currval('public.migd_t_sq') AS sq,
       public.migd_t_currval('public.migd_t_rows_n_seq') AS serial;
"""

# Run before the case: what its migration needs, and the probe of a
# sequence's state in this session (currval fails when never called).
SETUP = """
CREATE SCHEMA IF NOT EXISTS app;
CREATE SEQUENCE public.migd_t_sq;
CREATE TABLE public.migd_t_rows (id int);
CREATE TABLE public.migd_t_sq_rows (id int);
INSERT INTO public.migd_t_rows VALUES (1), (2);
CREATE FUNCTION public.migd_t_currval(s text) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN RETURN currval(s::regclass); EXCEPTION WHEN others THEN RETURN NULL; END $$;
CREATE FUNCTION public.migd_t_sneaky(i int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN PERFORM nextval('public.migd_t_sq'); RETURN i; END $$;
CREATE FUNCTION public.migd_t_trg() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM set_config('search_path', 'app', false); RETURN NEW; END $$;
CREATE TRIGGER migd_t_trg BEFORE INSERT ON public.migd_t_rows
    FOR EACH ROW EXECUTE FUNCTION public.migd_t_trg();
CREATE FUNCTION public.migd_t_evt() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM set_config('search_path', 'app', false); END $$;
"""

EVT = ("CREATE EVENT TRIGGER migd_t_evt ON ddl_command_end WHEN TAG IN "
       "('CREATE TABLE') EXECUTE FUNCTION public.migd_t_evt();")

# (id, the migration's SQL, or (SQL run before it in a migration of its own,
# the migration's SQL))
CASES = [
    ("set_search_path", "SET search_path = app, public;\nCREATE TABLE in_app (id int);"),
    # SET LOCAL ends with the migration's COMMIT, but migd's rows are
    # written before it: as that role, they would be refused
    ("set_local_role", "SET LOCAL ROLE migd_t_owner;\nCREATE TABLE public.owned (id int);"),
    ("set_timezone", "SET timezone = 'Pacific/Chatham';\nCREATE TABLE public.t1 (id int);"),
    ("set_role", "SET ROLE migd_t_owner;\nCREATE TABLE public.owned (id int);"),
    ("set_session_authorization",
     "SET SESSION AUTHORIZATION migd_t_owner;\nCREATE TABLE public.owned (id int);"),
    ("prepare", "PREPARE get_one AS SELECT 1;"),
    ("listen", "LISTEN somewhere;"),
    ("declare_with_hold", "DECLARE c CURSOR WITH HOLD FOR SELECT 1;"),
    ("temp_table", "CREATE TEMP TABLE scratch (id int);"),
    ("pg_temp_table", "CREATE TABLE pg_temp.scratch (id int);"),
    ("temp_view", "CREATE TEMP VIEW scratch AS SELECT 1 AS a;"),
    ("temp_sequence", "CREATE TEMP SEQUENCE scratch;"),
    ("pg_temp_function",
     "CREATE FUNCTION pg_temp.f() RETURNS int LANGUAGE sql AS 'SELECT 1';"),
    ("nextval", "SELECT nextval('public.migd_t_sq');"),
    ("set_config", "SELECT set_config('search_path', 'app', false);"),
    ("serial_column_filled",
     "ALTER TABLE public.migd_t_rows ADD COLUMN n bigserial;"),
    ("do_block", "DO $$BEGIN PERFORM set_config('search_path', 'app', false); END$$;"),
    ("trigger_of_a_row", "INSERT INTO public.migd_t_rows VALUES (3);"),
    # an index build puts settings back itself, but not a sequence's state
    ("index_expression",
     "CREATE INDEX migd_t_idx ON public.migd_t_rows (public.migd_t_sneaky(id));"),
    # quiet DDL that fires an event trigger a migration before it made
    ("event_trigger_made_by_a_migration",
     (EVT, "CREATE TABLE public.fires (id int);")),
    # ... and one a DO block made (code the tree does not show)
    ("event_trigger_made_by_code",
     ("DO $$BEGIN EXECUTE %s; END$$;" % ("'" + EVT.replace("'", "''") + "'"),
      "CREATE TABLE public.fires (id int);")),
    # ... with code after it (no question there: the next one runs code
    # too), then the quiet migration that fires it
    ("event_trigger_made_by_code_then_a_row_change",
     ("DO $$BEGIN EXECUTE %s; END$$;" % ("'" + EVT.replace("'", "''") + "'"),
      "INSERT INTO public.migd_t_sq_rows SELECT 1;")),
]


def _setup(m):
    q(m, "DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = "
         "'migd_t_owner') THEN CREATE ROLE migd_t_owner; END IF; END$$")
    q(m, "GRANT CREATE ON SCHEMA public TO migd_t_owner")
    q(m, "GRANT USAGE ON SCHEMA public TO migd_t_owner")


def _write(m, sql):
    """r1 setup, [r2 before], r3 the case, r4 a quiet migration, r5 sees."""
    before, case = sql if isinstance(sql, tuple) else (None, sql)
    write_rev(m, "r1_setup.sql", "r1", up=SETUP)
    prev = "r1"
    if before is not None:
        write_rev(m, "r2_before.sql", "r2", down=prev, up=before)
        prev = "r2"
    write_rev(m, "r3_case.sql", "r3", down=prev, up=case)
    # quiet: its own reset is skipped, so the case's state must be gone
    # already; it fires the event trigger of the event-trigger cases
    write_rev(m, "r4_quiet.sql", "r4", down="r3",
              up="CREATE TABLE public.quiet (id int);\n"
                 "COMMENT ON TABLE public.quiet IS 'q';")
    write_rev(m, "r5_sees.sql", "r5", down="r4", up=SEES)


def _clean(m):
    return {
        "search_path": '"$user", public',
        "usr": q(m, "SELECT current_user"),
        "susr": q(m, "SELECT current_user"),
        "tz": q(m, "SHOW TimeZone"),
        # migd's own timeout, which the reset puts back for its rows
        "prepared": "0", "cursors": "0", "listening": "0", "temps": "0",
        "temp_funcs": "0", "sq": "", "serial": "",
    }


# Each case per migration and in an atomic run, but LISTEN there: it takes
# effect at the run's COMMIT, after which migd discards the session anyway.
PARAMS = [pytest.param(sql, atomic, id="%s-%s" % (name, "atomic" if atomic else
                                                   "per_migration"))
          for name, sql in CASES for atomic in (False, True)
          if not (atomic and name == "listen")]


@pytest.mark.parametrize("case,atomic", PARAMS)
def test_state_a_migration_leaves_does_not_reach_the_next(migd_factory, case, atomic):
    m = connected(migd_factory())
    _setup(m)
    _write(m, case)
    notes, r = call(m, "upgrade", {"atomic": True} if atomic else {})
    assert "error" not in r, r
    assert versions(m) == ["r5"]
    # one history row per migration, also when an atomic run met an event
    # trigger it made and ran again from the top
    revs = [h["revision"] for h in history(m)]
    assert revs == ["r1", "r2", "r3", "r4", "r5"] if isinstance(case, tuple) else \
        revs == ["r1", "r3", "r4", "r5"], revs
    cols = ["search_path", "usr", "susr", "tz", "prepared", "cursors", "listening",
            "temps", "temp_funcs", "sq", "serial"]
    row = dict(zip(cols, q(m, "SELECT %s FROM public.seen" % ", ".join(cols)).split("|")))
    assert row == _clean(m), row
    # the quiet migration's table is where a fresh session puts it
    assert q(m, "SELECT to_regclass('public.quiet') IS NOT NULL") == "t"
    # and a status on the pooled connection is unaffected
    assert ok(m, "status")["state"] == "up_to_date"


def test_event_trigger_made_before_the_run(migd_factory):
    """An event trigger that was there before the run: the first migration
    asks the server, so quiet DDL after it still gets the whole reset."""
    m = connected(migd_factory())
    q(m, "CREATE SCHEMA IF NOT EXISTS app")
    q(m, "CREATE FUNCTION public.migd_t_evt() RETURNS event_trigger LANGUAGE plpgsql AS "
         "$$BEGIN PERFORM set_config('search_path', 'app', false); END$$")
    q(m, EVT)
    write_rev(m, "e1.sql", "e1", up="COMMENT ON SCHEMA app IS 'a';")
    write_rev(m, "e2.sql", "e2", down="e1", up="CREATE TABLE public.fires (id int);")
    write_rev(m, "e3.sql", "e3", down="e2", up="CREATE TABLE unqualified (id int);")
    write_rev(m, "e4.sql", "e4", down="e3",
              up="CREATE TABLE public.seen AS SELECT current_setting('search_path') AS sp;")
    ok(m, "upgrade", {})
    assert versions(m) == ["e4"]
    # e2's trigger set search_path = app: e3 must not have seen it
    assert q(m, "SELECT to_regclass('public.unqualified') IS NOT NULL") == "t"
    assert q(m, "SELECT sp FROM public.seen") == '"$user", public'
