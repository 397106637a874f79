#!/usr/bin/python3
"""The server-side cost of what migd adds to each migration's bookkeeping
round trip for session isolation (issue 10): the session reset (SET SESSION
AUTHORIZATION DEFAULT; RESET ALL; DEALLOCATE ALL; ...), the timeouts again,
and the checks (migd's lock, the managed schemas).  The statements are those
of daemon/book.c (book_isolate, book_timeouts_sql, book_witness_sql,
book_guard_sql); keep them in
step.  Both variants run the same small migration and bookkeeping N times on
one connection, alternating, and the medians are printed with their
difference: a per-migration figure, free of process start-up and of the
machine's drift between separate runs.

usage: bench/isolation.py --pg-host DIR --pg-port PORT [--n 3000] [--rounds 7]
"""
import argparse
import statistics
import time

import psycopg2

KEY = 1234567
# The timeouts as one statement (book_timeouts_sql).
TIMEOUTS = ("SELECT pg_catalog.set_config('lock_timeout', '5000ms', true), "
            "pg_catalog.set_config('statement_timeout', '0ms', true), "
            "pg_catalog.set_config('client_connection_check_interval', "
            "'1s', true); ")
MIGRATION = ("BEGIN; " + TIMEOUTS +
             "CREATE TABLE IF NOT EXISTS bench_iso_t (a int); "
             "INSERT INTO bench_iso_t VALUES (1); ")
BOOKKEEPING = ("DELETE FROM bench_iso_v WHERE version_num = 'a'; "
               "INSERT INTO bench_iso_v (version_num) VALUES ('a'); "
               "INSERT INTO bench_iso_h (revision, success, started_at) "
               "VALUES ('a', true, now()); COMMIT")
ISOLATE = ("SET SESSION AUTHORIZATION DEFAULT; RESET ALL; DEALLOCATE ALL; "
           "CLOSE ALL; UNLISTEN *; DISCARD TEMP; DISCARD SEQUENCES; "
           "DISCARD PLANS; " + TIMEOUTS)
# The step's lock witness, taken as it begins (book_witness_sql) and given
# back by the check (book_guard_sql).
WITNESS = "SELECT pg_catalog.pg_try_advisory_lock_shared(%d); " % KEY
GUARD = ("SELECT (CASE WHEN pg_catalog.pg_backend_pid() <> "
         "pg_catalog.pg_backend_pid() THEN '\"migd lost its migration lock\"' "
         "WHEN NOT pg_catalog.pg_advisory_unlock_shared(%d) THEN "
         "'\"migd lost its migration lock\"' END)::pg_catalog.regnamespace, "
         "(SELECT pg_catalog.count(pg_catalog.quote_ident(n)::"
         "pg_catalog.regnamespace) FROM pg_catalog.unnest('{\"cars\","
         "\"participants\",\"work_shop\",\"public\"}'::text[]) n); " % KEY)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--pg-host", required=True)
    p.add_argument("--pg-port", type=int, required=True)
    p.add_argument("--dbname", default="postgres")
    p.add_argument("--n", type=int, default=3000)
    p.add_argument("--rounds", type=int, default=7)
    a = p.parse_args()
    c = psycopg2.connect(host=a.pg_host, port=a.pg_port, user="postgres",
                         dbname=a.dbname)
    c.autocommit = True
    cur = c.cursor()
    cur.execute("SELECT pg_advisory_lock(%d)" % KEY)
    cur.execute("CREATE TABLE IF NOT EXISTS bench_iso_v (version_num "
                "varchar(32) PRIMARY KEY); CREATE TABLE IF NOT EXISTS "
                "bench_iso_h (id bigserial PRIMARY KEY, revision text, "
                "success bool, started_at timestamptz); CREATE SCHEMA IF NOT "
                "EXISTS cars; CREATE SCHEMA IF NOT EXISTS participants; "
                "CREATE SCHEMA IF NOT EXISTS work_shop")
    # A migration whose parse tree shows no session change (quiet DDL):
    # no reset, and its timeouts still in force (issue 12).
    variants = {"0.1 bookkeeping": MIGRATION + BOOKKEEPING,
                "isolated bookkeeping": MIGRATION + WITNESS + ISOLATE + GUARD +
                BOOKKEEPING,
                "quiet bookkeeping": MIGRATION + WITNESS + GUARD + BOOKKEEPING}
    ms = {k: [] for k in variants}
    for _ in range(a.rounds):
        for k, sql in variants.items():
            t0 = time.perf_counter()
            for _ in range(a.n):
                cur.execute(sql)
            ms[k].append((time.perf_counter() - t0) / a.n * 1000)
    cur.execute("DROP TABLE bench_iso_t, bench_iso_v, bench_iso_h")
    for k, v in ms.items():
        print("%-22s median %.3f ms per migration (min %.3f, max %.3f, %d "
              "rounds of %d)" % (k, statistics.median(v), min(v), max(v),
                                 a.rounds, a.n))
    d = statistics.median(ms["isolated bookkeeping"]) - \
        statistics.median(ms["0.1 bookkeeping"])
    print("added by session isolation and checks: %.3f ms per migration" % d)
    d = statistics.median(ms["isolated bookkeeping"]) - \
        statistics.median(ms["quiet bookkeeping"])
    print("saved when the reset is skipped (a quiet migration): %.3f ms per "
          "migration" % d)


if __name__ == "__main__":
    main()
