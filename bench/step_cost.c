/*
 * The server's CPU for migd's own statements around one migration, sent as
 * migd sends them (one libpq pipeline per migration, extended protocol):
 * variants with and without the session reset, the timeouts again, a
 * version and history row merged into one statement, and the question for
 * event triggers.  The variants alternate migration by migration, so the
 * load of a shared machine falls on all alike; the backend's CPU comes from
 * /proc/PID/schedstat (same machine).  The statements follow daemon/book.c.
 *
 *   cc -O2 -I/usr/include/postgresql -o /tmp/step_cost bench/step_cost.c -lpq
 *   /tmp/step_cost "host=SOCKDIR port=PORT dbname=postgres" 6000
 *
 * Run it on a server with synchronous_commit = off (the WAL flush of each
 * COMMIT is the same in every variant and only adds noise).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#define KEY	1234567
#define NV	8

static const char *const names[NV] = {
	"floor: BEGIN, INSERT, UPDATE version, COMMIT",
	"floor + history INSERT",
	"migd, whole reset (as before)",
	"migd, no reset (quiet migration)",
	"migd, no reset, no timeouts again",
	"migd, whole reset, rows in one CTE",
	"migd, whole reset + event-trigger question",
	"migd, DISCARD SEQUENCES only, no timeouts",
};

static const char *const reset[] = {
	"SET SESSION AUTHORIZATION DEFAULT", "RESET ALL", "DEALLOCATE ALL",
	"CLOSE ALL", "UNLISTEN *", "DISCARD TEMP", "DISCARD SEQUENCES",
	"DISCARD PLANS"
};

#define TIMEOUTS "pg_catalog.set_config('lock_timeout', '5000ms', true), " \
	"pg_catalog.set_config('statement_timeout', '0ms', true), " \
	"pg_catalog.set_config('client_connection_check_interval', '1s', true)"
#define HCOLS "(revision, direction, success, dirty, checksum, message, " \
	"file, started_at, finished_at, duration_ms, requested_by, " \
	"requester_uid, requester_pid, host, migd_version, sqlstate, error, " \
	"schemas_created, attempt, lint)"
#define HVALS "('abcdef012345', 'up', true, false, 'e3b0c44298fc1c149afbf4" \
	"c8996fb92427ae41e4649b934ca495991b7852b855', 'add cars', " \
	"'/tmp/x/0001_cars.sql', to_timestamp(1764567890.123456), " \
	"pg_catalog.clock_timestamp(), round((extract(epoch FROM " \
	"pg_catalog.clock_timestamp() - pg_catalog.now()) * 1000)::numeric, " \
	"3), 'root', 0, 1234, 'host', '0.1.0', NULL, NULL, NULL::text[], 1, " \
	"NULL)"
#define EVT "SELECT EXISTS (SELECT FROM pg_catalog.pg_event_trigger WHERE " \
	"evtenabled <> 'D')"

/* The backend's CPU time so far, in seconds. */
static double
backend_cpu(int pid)
{
	char			 path[64];
	unsigned long long	 ns = 0;
	FILE			*f;

	snprintf(path, sizeof path, "/proc/%d/schedstat", pid);
	if ((f = fopen(path, "r")) != NULL) {
		if (fscanf(f, "%llu", &ns) != 1)
			ns = 0;
		fclose(f);
	}
	return (ns / 1e9);
}

/* Sends the queries as one pipeline and reads every result. */
static void
pipeline(PGconn *c, const char **q, int n)
{
	PGresult	*r;
	int		 i;

	PQenterPipelineMode(c);
	for (i = 0; i < n; i++)
		if (!PQsendQueryParams(c, q[i], 0, NULL, NULL, NULL, NULL, 0)) {
			fprintf(stderr, "send: %s", PQerrorMessage(c));
			exit(1);
		}
	PQpipelineSync(c);
	for (i = 0; i < n; i++)
		while ((r = PQgetResult(c)) != NULL) {
			if (PQresultStatus(r) == PGRES_FATAL_ERROR) {
				fprintf(stderr, "%s: %s", q[i],
				    PQresultErrorMessage(r));
				exit(1);
			}
			PQclear(r);
		}
	PQclear(PQgetResult(c));	/* the sync */
	PQexitPipelineMode(c);
}

int
main(int argc, char **argv)
{
	static char	 wit[512], guard[1024], guard_to[1024], upd[128];
	static char	 hist[2048], cte[2048];
	double		 cpu[NV] = { 0 }, wall[NV] = { 0 }, c0;
	struct timespec	 t0, t1;
	const char	*q[32];
	PGconn		*c;
	int		 n, i, k, v, pid, flip = 0;
	long		 iters;

	if (argc != 3) {
		fprintf(stderr, "usage: step_cost CONNINFO MIGRATIONS\n");
		return (2);
	}
	iters = atol(argv[2]);
	c = PQconnectdb(argv[1]);
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "%s", PQerrorMessage(c));
		return (1);
	}
	pid = PQbackendPID(c);
	PQclear(PQexec(c, "SET client_min_messages = warning; "
	    "DROP TABLE IF EXISTS sc_v, sc_h, sc_t; "
	    "CREATE TABLE sc_v (version_num varchar(32) PRIMARY KEY); "
	    "INSERT INTO sc_v VALUES ('a'); CREATE TABLE sc_t (id int); "
	    "CREATE TABLE sc_h (id bigserial PRIMARY KEY, revision varchar(32) "
	    "NOT NULL, direction text NOT NULL CHECK (direction IN ('up', "
	    "'down', 'stamp', 'resolve', 'accept', 'adopt')), success boolean "
	    "NOT NULL, dirty boolean NOT NULL DEFAULT false, checksum text, "
	    "message text, file text, started_at timestamptz NOT NULL, "
	    "finished_at timestamptz NOT NULL DEFAULT clock_timestamp(), "
	    "duration_ms double precision, requested_by text, requester_uid "
	    "bigint, requester_pid bigint, host text, migd_version text, "
	    "sqlstate text, error text, schemas_created text[], attempt "
	    "integer, lint jsonb); CREATE INDEX ON sc_h (revision, id); "
	    "CREATE SCHEMA IF NOT EXISTS cars; SELECT pg_advisory_lock(1234567)"));
	snprintf(wit, sizeof wit, "SELECT " TIMEOUTS ", "
	    "pg_catalog.pg_try_advisory_lock_shared(%d)", KEY);
#define GUARD "(CASE WHEN pg_catalog.pg_backend_pid() <> %d THEN '\"lost\"' " \
	"WHEN NOT pg_catalog.pg_advisory_unlock_shared(%d) THEN '\"lost\"' " \
	"END)::pg_catalog.regnamespace, '\"cars\"'::pg_catalog.regnamespace, " \
	"'\"public\"'::pg_catalog.regnamespace"
	snprintf(guard_to, sizeof guard_to, "SELECT " TIMEOUTS ", " GUARD, pid,
	    KEY);
	snprintf(guard, sizeof guard, "SELECT " GUARD, pid, KEY);
	snprintf(hist, sizeof hist, "INSERT INTO sc_h " HCOLS " VALUES " HVALS);
	for (i = 0; i < iters; i++) {
		for (k = 0; k < NV; k++) {
			v = (k + i) % NV;
			n = 0;
			snprintf(upd, sizeof upd, "UPDATE sc_v SET version_num "
			    "= '%s' WHERE version_num = '%s'", flip ? "a" : "b",
			    flip ? "b" : "a");
			snprintf(cte, sizeof cte, "WITH v AS (%s) INSERT INTO "
			    "sc_h " HCOLS " VALUES " HVALS, upd);
			flip = !flip;
			q[n++] = "BEGIN";
			if (v >= 2)
				q[n++] = wit;
			q[n++] = "INSERT INTO sc_t VALUES (1)";
			if (v == 2 || v == 5 || v == 6)
				for (int r = 0; r < 8; r++)
					q[n++] = reset[r];
			if (v == 7)
				q[n++] = "DISCARD SEQUENCES";
			if (v >= 2)
				q[n++] = v == 4 || v == 7 ? guard : guard_to;
			if (v == 5)
				q[n++] = cte;
			else {
				q[n++] = upd;
				if (v >= 1)
					q[n++] = hist;
			}
			q[n++] = "COMMIT";
			if (v == 6)
				q[n++] = EVT;
			c0 = backend_cpu(pid);
			clock_gettime(CLOCK_MONOTONIC, &t0);
			pipeline(c, q, n);
			clock_gettime(CLOCK_MONOTONIC, &t1);
			cpu[v] += backend_cpu(pid) - c0;
			wall[v] += (t1.tv_sec - t0.tv_sec) +
			    (t1.tv_nsec - t0.tv_nsec) / 1e9;
		}
	}
	PQclear(PQexec(c, "DROP TABLE sc_v, sc_h, sc_t"));
	printf("%ld migrations per variant, alternating\n", iters);
	for (v = 0; v < NV; v++)
		printf("%-46s server CPU %6.1f us  wall %6.1f us\n", names[v],
		    cpu[v] / iters * 1e6, wall[v] / iters * 1e6);
	PQfinish(c);
	return (0);
}
