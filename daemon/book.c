/*
 * What migd writes for itself around each migration: its history rows, its
 * version-table changes, the statement timeouts, the session put back as migd
 * left it, and the checks before a step commits.  run.c sends them; stamp.c
 * uses the rows and the history too.
 */
#include <sys/queue.h>

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/event.h>

#include "config.h"
#include "migd.h"
#include "engine.h"

/* Puts the session back as migd left it, inside a transaction or not: each
 * statement for what a migration may have changed (SQLSCAN_SESSION_*).  Not
 * DISCARD PLANS: a cached plan holds nothing a migration can see (the
 * server plans again after any change it depends on, search_path and role
 * included), and walking them cost 20 us a migration. */
static const struct book_reset {
	const char	*sql;
	int		 session;
} book_isolate[] = {
	{ "SET SESSION AUTHORIZATION DEFAULT", SQLSCAN_SESSION_SETS },
	{ "RESET ALL", SQLSCAN_SESSION_SETS },
	{ "DEALLOCATE ALL", SQLSCAN_SESSION_PREPARED },
	{ "CLOSE ALL", SQLSCAN_SESSION_CURSORS },
	{ "UNLISTEN *", SQLSCAN_SESSION_LISTEN },
	{ "DISCARD TEMP", SQLSCAN_SESSION_TEMP },
	{ "DISCARD SEQUENCES", SQLSCAN_SESSION_SEQUENCES }
};


/* What a failed check reads like: a schema of that name does not exist. */
#define BOOK_LOCK_LOST	"migd lost its migration lock"


/* An escaped SQL literal, or NULL for a missing value. */
char *
book_literal(struct job *j, const char *s)
{
	PGconn	*pg = pool_conn_pg(j->pc);
	char	*e, *r;

	if (s == NULL)
		return (xstrdup("NULL"));
	if ((e = PQescapeLiteral(pg, s, strlen(s))) == NULL)
		return (xstrdup("NULL"));
	r = xstrdup(e);
	PQfreemem(e);
	return (r);
}

/* The step's lint findings for its history row as JSON text, or NULL when
 * lint is off. */
static char *
book_lint_json(struct job *j)
{
	return (j->step_lint == NULL ? NULL : json_dumps(j->step_lint,
	    JSON_COMPACT));
}

/* The schemas migd created for the run as a text[]'s text, on the run's
 * first step's row (its row may be built before the step runs, with
 * others after it), else NULL. */
static char *
book_created(struct job *j)
{
	char	**names, *arr;
	size_t	  i, n = json_array_size(j->created);

	if (n == 0 || json_array_size(j->done) != 0 || j->step != 0)
		return (NULL);
	names = xcalloc(n, sizeof *names);
	for (i = 0; i < n; i++)
		names[i] = (char *)json_string_value(json_array_get(j->created,
		    i));
	arr = migrate_text_array(names, n);
	free(names);
	return (arr);
}

/* The columns of a history row, in the order book_history_row gives them;
 * a step's row has its attempt and lint findings too (a row outside a run,
 * stamp or adopt, names only the columns every migd's table has). */
#define BOOK_HISTORY_COLUMNS	"(revision, direction, success, dirty, " \
	"checksum, message, file, started_at, finished_at, duration_ms, " \
	"requested_by, requester_uid, requester_pid, host, migd_version, " \
	"sqlstate, error, schemas_created"
#define BOOK_HISTORY_ROW	BOOK_HISTORY_COLUMNS ")"
#define BOOK_HISTORY_STEP_ROW	BOOK_HISTORY_COLUMNS ", attempt, lint)"

/* The values of one history row: who asked, what, how it went.  fin: when
 * the step ended (wall clock), or < 0 for when the row is written; step:
 * the current step's row, with its attempt and lint findings. */
char *
book_history_row(struct job *j, const char *revision, const char *direction,
    int success, int dirty, const char *checksum, const char *message,
    const char *file, double wall, double ms, double fin,
    const char *sqlstate, const char *error, int step)
{
	const struct peer	*peer = control_peer(j->req->client);
	char			*v[9], *created, *sql, *arr, *dur, *end, *lint;
	char			*tail, *start;
	size_t			 i;

	v[0] = book_literal(j, revision);
	v[1] = book_literal(j, checksum);
	v[2] = book_literal(j, message);
	v[3] = book_literal(j, file);
	v[4] = book_literal(j, peer->user);
	v[5] = book_literal(j, j->e->host);
	v[6] = book_literal(j, PACKAGE_VERSION);
	v[7] = book_literal(j, sqlstate);
	v[8] = book_literal(j, error);
	arr = book_created(j);
	created = book_literal(j, arr);
	free(arr);
	/* A row written in the same pipeline as the step's statements is built
	 * before they run: the server measures the step (ms < 0), from its
	 * transaction's start, or in an atomic run from the step's start. */
	if (ms >= 0)
		dur = xprintf("%.3f", ms);
	else if (!j->atomic || j->step == 0)
		dur = xstrdup("round((extract(epoch FROM "
		    "pg_catalog.clock_timestamp() - pg_catalog.now()) * "
		    "1000)::numeric, 3)");
	else
		dur = xprintf("round((extract(epoch FROM "
		    "pg_catalog.clock_timestamp() - to_timestamp(%.6f)) * "
		    "1000)::numeric, 3)", wall);
	end = fin >= 0 ? book_time(fin) : NULL;
	start = book_time(wall);
	if (step) {
		arr = book_lint_json(j);
		lint = book_literal(j, arr);
		free(arr);
		tail = xprintf(", %d, %s", j->attempt > 0 ? j->attempt : 1,
		    lint);
		free(lint);
	} else
		tail = xstrdup("");
	sql = xprintf("(%s, '%s', %s, %s, %s, %s, %s, '%s'::timestamptz, "
	    "%s%s%s, %s, %s, %ld, %ld, %s, %s, %s, %s, %s::text[]%s)", v[0],
	    direction, success ? "true" : "false", dirty ? "true" : "false",
	    v[1], v[2], v[3], start, end != NULL ? "'" : "", end != NULL ? end :
	    "pg_catalog.clock_timestamp()", end != NULL ? "'::timestamptz" : "",
	    dur, v[4], (long)peer->uid, (long)peer->pid, v[5], v[6], v[7], v[8],
	    created, tail);
	free(start);
	free(tail);
	free(dur);
	free(end);
	for (i = 0; i < nitems(v); i++)
		free(v[i]);
	free(created);
	return (sql);
}

/* A field of COPY's text format: backslashes and line and field breaks
 * escaped, NULL as \N. */
static char *
book_copy_field(const char *s)
{
	char	*out, *p;

	if (s == NULL)
		return (xstrdup("\\N"));
	p = out = xmalloc(2 * strlen(s) + 1);
	for (; *s != '\0'; s++) {
		if (*s == '\\' || *s == '\t' || *s == '\n' || *s == '\r') {
			*p++ = '\\';
			*p++ = *s == '\t' ? 't' : *s == '\n' ? 'n' : *s == '\r' ?
			    'r' : '\\';
		} else
			*p++ = *s;
	}
	*p = '\0';
	return (out);
}

/* A wall-clock time as timestamptz input, in UTC to the microsecond: the
 * one conversion every history row and the lookup of a row by its start use
 * (to_timestamp() of the printed seconds rounds otherwise one time in 8). */
char *
book_time(double t)
{
	long long	 us = (long long)(t * 1e6 + (t < 0 ? -0.5 : 0.5));
	time_t		 sec = (time_t)(us / 1000000);
	long		 frac = (long)(us % 1000000);
	struct tm	 tm;
	char		 buf[32];

	if (frac < 0) {
		frac += 1000000;
		sec--;
	}
	gmtime_r(&sec, &tm);
	strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
	return (xprintf("%s.%06ld+00", buf, frac));
}

/* A step of an atomic run that went well, as a line of its history COPY
 * (book_atomic_end_sql): the values book_history_row gives, all known when
 * the step ended.  COPY, because a thousand rows' VALUES cost the server
 * 0.1 s to parse and plan, five times their COPY. */
char *
book_history_copy(struct job *j, const char *revision, const char *direction,
    const char *checksum, const char *message, const char *file,
    double wall, double ms, double fin, const char *sqlstate)
{
	const struct peer	*peer = control_peer(j->req->client);
	struct errlist		 f = { NULL, 0 };
	char			*t, *line;

	errlist_take(&f, book_copy_field(revision));
	errlist_take(&f, book_copy_field(direction));
	errlist_add(&f, "t");
	errlist_add(&f, "f");
	errlist_take(&f, book_copy_field(checksum));
	errlist_take(&f, book_copy_field(message));
	errlist_take(&f, book_copy_field(file));
	errlist_take(&f, book_time(wall));
	errlist_take(&f, book_time(fin));
	errlist_add(&f, "%.3f", ms);
	errlist_take(&f, book_copy_field(peer->user));
	errlist_add(&f, "%ld", (long)peer->uid);
	errlist_add(&f, "%ld", (long)peer->pid);
	errlist_take(&f, book_copy_field(j->e->host));
	errlist_take(&f, book_copy_field(PACKAGE_VERSION));
	errlist_take(&f, book_copy_field(sqlstate));
	errlist_take(&f, book_copy_field(NULL));	/* error */
	t = book_created(j);
	errlist_take(&f, book_copy_field(t));
	free(t);
	errlist_add(&f, "%d", j->attempt > 0 ? j->attempt : 1);
	t = book_lint_json(j);
	errlist_take(&f, book_copy_field(t));
	free(t);
	line = errlist_join(&f, "\t");
	errlist_clear(&f);
	return (line);
}

/* The INSERT of the current step's history row, with its attempt and its
 * lint findings. */
char *
book_step_history_sql(struct job *j, int success, int dirty, double ms,
    const char *sqlstate, const char *error)
{
	const struct config_db	*cf = j->db->cf;
	const struct graph_step	*st = &j->plan.steps[j->step];
	const struct migfile	*mf = revset_file(j->rs, st->idx);
	char			*ht, *row, *sql;

	ht = migrate_qualify(cf->history_schema, cf->history_table);
	row = book_history_row(j, mf->revision, st->dir == GRAPH_UP ? "up" :
	    "down", success, dirty, mf->checksum, mf->message,
	    migfile_path(mf, st->dir == GRAPH_UP), j->step_wall, ms, -1.0,
	    sqlstate, error, 1);
	sql = xprintf("INSERT INTO %s " BOOK_HISTORY_STEP_ROW " VALUES %s", ht,
	    row);
	free(row);
	free(ht);
	return (sql);
}

/* The INSERT of one history row (book_history_row). */
char *
book_history_sql(struct job *j, const char *revision, const char *direction,
    int success, int dirty, const char *checksum, const char *message,
    const char *file, double wall, double ms, const char *sqlstate,
    const char *error)
{
	const struct config_db	*cf = j->db->cf;
	char			*ht, *row, *sql;

	ht = migrate_qualify(cf->history_schema, cf->history_table);
	row = book_history_row(j, revision, direction, success, dirty,
	    checksum, message, file, wall, ms, -1.0, sqlstate, error, 0);
	sql = xprintf("INSERT INTO %s " BOOK_HISTORY_ROW " VALUES %s", ht,
	    row);
	free(row);
	free(ht);
	return (sql);
}

/* The version-table change of a step: delete some rows, insert others; one
 * statement each, appended to sql, a deleted row replaced by an inserted one
 * in one UPDATE (as Alembic writes a step on a line). */
void
book_rows_sql(struct job *j, const size_t *del, size_t n_del,
    const size_t *ins, size_t n_ins, struct errlist *sql)
{
	const struct config_db	*cf = j->db->cf;
	char			*vt, *lit, *old;
	size_t			 i, n_upd = n_del < n_ins ? n_del : n_ins;

	vt = migrate_qualify(cf->version_schema, cf->version_table);
	for (i = 0; i < n_upd; i++) {
		old = book_literal(j, graph_id(j->rs->graph, del[i]));
		lit = book_literal(j, graph_id(j->rs->graph, ins[i]));
		errlist_add(sql, "UPDATE %s SET version_num = %s WHERE "
		    "version_num = %s", vt, lit, old);
		free(old);
		free(lit);
	}
	for (i = n_upd; i < n_del; i++) {
		lit = book_literal(j, graph_id(j->rs->graph, del[i]));
		errlist_add(sql, "DELETE FROM %s WHERE version_num = %s", vt,
		    lit);
		free(lit);
	}
	for (i = n_upd; i < n_ins; i++) {
		lit = book_literal(j, graph_id(j->rs->graph, ins[i]));
		errlist_add(sql, "INSERT INTO %s (version_num) VALUES (%s)", vt,
		    lit);
		free(lit);
	}
	free(vt);
}

/* Completes the history row a bare step wrote before it began. */
char *
book_mark_sql(struct job *j, int success, int dirty, const char *sqlstate,
    const char *error)
{
	const struct config_db	*cf = j->db->cf;
	char			*ht, *st, *er, *sql;

	ht = migrate_qualify(cf->history_schema, cf->history_table);
	st = book_literal(j, sqlstate);
	er = book_literal(j, error);
	sql = xprintf("UPDATE %s SET success = %s, dirty = %s, finished_at = "
	    "clock_timestamp(), duration_ms = %.3f, sqlstate = %s, error = %s "
	    "WHERE id = %s", ht, success ? "true" : "false", dirty ?
	    "true" : "false", (migd_now() - j->step_t0) * 1000.0, st, er,
	    j->mark_id);
	free(ht);
	free(st);
	free(er);
	return (sql);
}

/* The statement timeouts of a transaction or a session, as set_config calls
 * (one statement rather than a SET each: they are sent twice a migration). */
static char *
book_timeouts_cols(struct job *j, int local)
{
	const struct config_db	*cf = j->db->cf;
	const char		*l = local ? "true" : "false";
	int			 v14 = PQserverVersion(pool_conn_pg(j->pc)) >=
				    140000;

	/* If migd dies mid-statement, the server stops it within a second
	 * instead of holding the lock until it ends (PostgreSQL 14+). */
	return (xprintf("pg_catalog.set_config('lock_timeout', '%ldms', %s), "
	    "pg_catalog.set_config('statement_timeout', '%ldms', %s)%s%s%s",
	    cf->lock_timeout_ms, l, cf->statement_timeout_ms, l, v14 ?
	    ", pg_catalog.set_config('client_connection_check_interval', "
	    "'1s', " : "", v14 ? l : "", v14 ? ")" : ""));
}

/* The statement timeouts of a step, for its transaction or its session. */
void
book_timeouts_sql(struct job *j, int local, struct errlist *sql)
{
	char	*cols = book_timeouts_cols(j, local);

	errlist_add(sql, "SELECT %s", cols);
	free(cols);
}

/* A transaction's timeouts and the step's lock witness (book_witness_sql),
 * in one statement. */
void
book_timeouts_witness_sql(struct job *j, struct errlist *sql)
{
	char	*cols = book_timeouts_cols(j, 1);

	errlist_add(sql, "SELECT %s, pg_catalog.pg_try_advisory_lock_shared("
	    "%lld)", cols, migrate_lock_key(j->db->cf));
	free(cols);
}

/* The session timeouts of a bare step's next statement: its own for those
 * that wait for older transactions by design (CREATE INDEX CONCURRENTLY and
 * its kind), so an unrelated old transaction does not fail them. */
char *
book_session_timeouts(struct job *j, int concurrent)
{
	const struct config_db	*cf = j->db->cf;

	if (!concurrent)
		return (book_timeouts(j, 0));
	return (xprintf("SET lock_timeout = '%ldms'; SET statement_timeout = "
	    "'%ldms'; ", cf->concurrent_lock_timeout_ms,
	    cf->concurrent_statement_timeout_ms));
}

/* The same as one string, each statement ended by "; ". */
char *
book_timeouts(struct job *j, int local)
{
	struct errlist	 sql = { NULL, 0 };
	char		*s;

	book_timeouts_sql(j, local, &sql);
	s = book_joined(&sql);
	errlist_clear(&sql);
	return (s);
}

/* Statements as one simple query: each ended by "; ". */
char *
book_joined(const struct errlist *sql)
{
	return (errlist_join_in("", sql, "; ", sql->n > 0 ? "; " : ""));
}

/*
 * The witness of migd's lock for one step: a shared hold of the lock's own
 * key, taken as the step begins, given back by the check before the step
 * commits (book_guard_sql).  pg_advisory_unlock_all() and DISCARD ALL, also
 * from inside a function, drop it with the lock, and then giving it back
 * fails: the loss shows for two function calls, where reading pg_locks
 * scans the server's whole lock table (+0.3 ms a migration) and taking the
 * lock again (pg_try_advisory_lock) would hide it.  Held shared, it never
 * waits for and never blocks another migd's polling more than the lock does.
 */
char *
book_witness_sql(struct job *j)
{
	return (xprintf("SELECT pg_catalog.pg_try_advisory_lock_shared(%lld)",
	    migrate_lock_key(j->db->cf)));
}

/*
 * The checks every step passes before it commits, as plain SQL that fails the
 * step (a PL/pgSQL block would cost a compile per migration): migd still holds
 * its lock (the step's witness is still there to give back), and every
 * managed schema still exists under its name (DROP OWNED ... CASCADE, dynamic
 * SQL and renames are only seen here).  A failed check is a cast to
 * regnamespace that fails (3F000), which run_step_failed() rewords.
 */
static void
book_guard_sql(struct job *j, int timeouts, struct errlist *sql)
{
	char	*q, *lit, *t, *retake, *cols, *list = xstrdup("");
	size_t	 i;

	/* Each managed schema as a constant cast (cheaper to plan than a
	 * subquery over an array: it is planned every migration). */
	for (i = 0; i < j->n_managed; i++) {
		q = sqlscan_quote_ident(j->managed[i]);
		lit = book_literal(j, q);
		t = xprintf("%s, %s::pg_catalog.regnamespace", list, lit);
		free(list);
		free(lit);
		free(q);
		list = t;
	}
	/* One statement: the witness given back (not holding it only warns,
	 * and the check says it better), then every managed schema; in an
	 * atomic run's batch, the next step's witness taken again. */
	retake = j->guard_retake ? xprintf(", pg_catalog."
	    "pg_try_advisory_lock_shared(%lld)",
	    migrate_lock_key(j->db->cf)) : xstrdup("");
	/* The transaction's timeouts again first (RESET ALL dropped them),
	 * for the version and history rows after it; still in force when
	 * nothing was reset. */
	cols = timeouts ? book_timeouts_cols(j, 1) : xstrdup("");
	errlist_add(sql, "SELECT %s%s(CASE WHEN pg_catalog.pg_backend_pid() <> "
	    "%d THEN '\"" BOOK_LOCK_LOST "\"' WHEN NOT "
	    "pg_catalog.pg_advisory_unlock_shared(%lld) THEN '\"" BOOK_LOCK_LOST
	    "\"' END)::pg_catalog.regnamespace%s%s", cols, timeouts ? ", " :
	    "", pool_conn_server_pid(j->pc), migrate_lock_key(j->db->cf), list,
	    retake);
	free(cols);
	free(retake);
	free(list);
}

/*
 * For a section that names advisory locks: migd's lock is checked exactly
 * (held by this session), and the session-level ones the migration took and
 * did not release are released, so they do not reach the next migration;
 * migd's own key, in either mode (the step's witness), is kept.  Others are
 * released with the session when the run ends.
 */
static void
book_advisory_sql(struct job *j, struct errlist *sql)
{
	unsigned long long	 key = (unsigned long long)migrate_lock_key(
				    j->db->cf);
	unsigned long		 hi = (unsigned long)(key >> 32);
	unsigned long		 lo = (unsigned long)(key & 0xffffffffULL);

	errlist_add(sql, "SET LOCAL client_min_messages = error");
	errlist_add(sql, "SELECT (CASE WHEN NOT coalesce(bool_or(mine AND "
	    "mode = 'ExclusiveLock'), false) THEN '\"" BOOK_LOCK_LOST "\"' "
	    "END)::pg_catalog.regnamespace, sum(CASE WHEN mine THEN 0 WHEN "
	    "objsubid = 1 AND mode = 'ShareLock' THEN "
	    "pg_catalog.pg_advisory_unlock_shared((classid::int8 << 32) | "
	    "objid::int8)::int WHEN objsubid = 1 THEN "
	    "pg_catalog.pg_advisory_unlock((classid::int8 << 32) | "
	    "objid::int8)::int WHEN mode = 'ShareLock' THEN "
	    "pg_catalog.pg_advisory_unlock_shared(classid::int4, "
	    "objid::int4)::int ELSE pg_catalog.pg_advisory_unlock("
	    "classid::int4, objid::int4)::int END) FROM (SELECT l.classid, "
	    "l.objid, l.objsubid, l.mode, (l.objsubid = 1 AND l.classid = %lu "
	    "AND l.objid = %lu) AS mine FROM "
	    "pg_catalog.pg_locks l, pg_catalog.generate_series(1, 64) WHERE "
	    "l.locktype = 'advisory' AND l.pid = pg_catalog.pg_backend_pid() AND "
	    "l.granted) l", hi, lo);
	errlist_add(sql, "RESET client_min_messages");
}

/* Whether a section's text names advisory locks (or DISCARD): then the
 * exact, costlier check and clean-up of book_advisory_sql() are worth it. */
static int
book_mentions_advisory(const char *text)
{
	const char	*p;

	for (p = text; *p != '\0'; p++) {
		if (strncasecmp(p, "advisory", 8) == 0 ||
		    strncasecmp(p, "discard", 7) == 0)
			return (1);
	}
	return (0);
}

/* What a failed check before the commit means, or NULL for another error. */
char *
book_guard_failure(struct job *j, PGresult *res, const char **sqlstate)
{
	const char	*code = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	const char	*msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	size_t		 i;
	char		*name;

	if (code == NULL || msg == NULL || strcmp(code, "3F000") != 0)
		return (NULL);
	if (strcmp(msg, "schema \"" BOOK_LOCK_LOST "\" does not exist") == 0) {
		*sqlstate = "55000";	/* object_not_in_prerequisite_state */
		if (!j->tx)
			return (xstrdup("migd's migration lock was released "
			    "during this non-transactional migration "
			    "(pg_advisory_unlock_all() or DISCARD ALL?): its "
			    "statements after that ran without the lock and "
			    "are committed, and another migd could have run "
			    "migrations at the same time; migd stopped the run "
			    "before recording it. A migration must not release "
			    "the lock"));
		return (xstrdup("migd's migration lock was released during this "
		    "migration (pg_advisory_unlock_all() or DISCARD ALL?), or "
		    "its session moved to another server process (a connection "
		    "pooler in transaction mode?), so another migd could have "
		    "run migrations at the same time; migd stopped the run "
		    "before recording it. A migration must not release the lock"));
	}
	for (i = 0; i < j->n_managed; i++) {
		name = xprintf("schema \"%s\" does not exist", j->managed[i]);
		if (strcmp(msg, name) == 0) {
			free(name);
			return (xprintf("schema %s is managed by migd and no "
			    "longer exists under its name: this migration dropped "
			    "or renamed it, and migd never lets a migration drop "
			    "a schema it manages (configured, or created by migd "
			    "for a run), so that no data is lost",
			    j->managed[i]));
		}
		free(name);
	}
	return (NULL);
}

/* The end of a step, after its statements: the session put back as migd
 * left it (what session, SQLSCAN_SESSION_*, says it may have changed), the
 * checks, the version rows, the history row, and COMMIT (in an atomic run,
 * the last three once for the run: book_atomic_end_sql). */
void
book_step_sql(struct job *j, const char *text, int ahead, int session,
    struct errlist *sql)
{
	const struct graph_step	*st = &j->plan.steps[j->step];
	size_t			 i;

	if (session & SQLSCAN_SESSION_CODE)
		session = SQLSCAN_SESSION_ALL;
	for (i = 0; i < nitems(book_isolate); i++)
		if (session & book_isolate[i].session)
			errlist_add(sql, "%s", book_isolate[i].sql);
	if (book_mentions_advisory(text))
		book_advisory_sql(j, sql);
	/* With the timeouts when RESET ALL dropped them (or SET changed
	 * them). */
	book_guard_sql(j, (session & SQLSCAN_SESSION_SETS) != 0, sql);
	if (j->atomic)
		return;		/* rows, history, COMMIT: book_atomic_end_sql */
	book_rows_sql(j, st->row_del, st->n_row_del, st->row_ins,
	    st->n_row_ins, sql);
	if (j->mark_id != NULL)
		errlist_take(sql, book_mark_sql(j, 1, 0, NULL, j->step <
		    j->out_of_order ? BOOK_OUT_OF_ORDER : NULL));
	else
		errlist_take(sql, book_step_history_sql(j, 1, 0, ahead ? -1.0 :
		    (migd_now() - j->step_t0) * 1000.0, NULL, j->step <
		    j->out_of_order ? BOOK_OUT_OF_ORDER : NULL));
	if (!j->atomic || j->step + 1 == j->plan.n_steps)
		errlist_add(sql, "COMMIT");
}

/*
 * The end of an atomic run, after every step passed its checks: the version
 * table changed once from the rows before the run to those after it (a row
 * a step inserted and a later one deleted is never written), every step's
 * history row (j->hist, in order) in one INSERT, and COMMIT.
 */
void
book_atomic_end_sql(struct job *j, struct errlist *sql, char **copy)
{
	const struct config_db	*cf = j->db->cf;
	const struct graph_step	*st;
	size_t			*del = NULL, *ins = NULL, n_del = 0, n_ins = 0;
	size_t			 i, k, m;
	char			*ht;

	for (i = 0; i < j->plan.n_steps; i++) {
		st = &j->plan.steps[i];
		for (k = 0; k < st->n_row_del; k++) {
			for (m = 0; m < n_ins && ins[m] != st->row_del[k]; m++)
				;
			if (m < n_ins) {	/* inserted by this run */
				ins[m] = ins[--n_ins];
				continue;
			}
			del = xreallocarray(del, n_del + 1, sizeof *del);
			del[n_del++] = st->row_del[k];
		}
		for (k = 0; k < st->n_row_ins; k++) {
			for (m = 0; m < n_del && del[m] != st->row_ins[k]; m++)
				;
			if (m < n_del) {	/* deleted by this run */
				del[m] = del[--n_del];
				continue;
			}
			ins = xreallocarray(ins, n_ins + 1, sizeof *ins);
			ins[n_ins++] = st->row_ins[k];
		}
	}
	book_rows_sql(j, del, n_del, ins, n_ins, sql);
	free(del);
	free(ins);
	*copy = NULL;
	if (j->hist.n > 0) {
		ht = migrate_qualify(cf->history_schema, cf->history_table);
		errlist_add(sql, "COPY %s " BOOK_HISTORY_STEP_ROW " FROM STDIN",
		    ht);
		*copy = errlist_join_in("", &j->hist, "\n", "\n");
		free(ht);
	}
	errlist_add(sql, "COMMIT");
}

/* Whether the server has an enabled event trigger: code that any DDL
 * statement may run, which no migration's parse tree shows. */
const char *
book_evt_sql(void)
{
	return ("SELECT EXISTS (SELECT FROM pg_catalog.pg_event_trigger WHERE "
	    "evtenabled <> 'D')");
}

/* Every direction a history row may have; the table's CHECK lists them. */
static const char *const book_direction_names[] = {
	"up", "down", "stamp", "resolve", "accept", "adopt"
};

/* The directions as an SQL list: 'up', 'down', ... */
char *
book_directions(void)
{
	char	*s = xstrdup(""), *t;
	size_t	 i;

	for (i = 0; i < nitems(book_direction_names); i++) {
		t = xprintf("%s%s'%s'", s, i ? ", " : "",
		    book_direction_names[i]);
		free(s);
		s = t;
	}
	return (s);
}

/* The history's CHECK on direction, by name and definition ($1: the
 * table); book_directions_sql judges the answer. */
const char *
book_directions_query(void)
{
	return ("SELECT c.conname::text, pg_catalog.pg_get_constraintdef(c.oid) "
	    "FROM pg_catalog.pg_constraint c WHERE c.conrelid = $1::regclass "
	    "AND c.contype = 'c' AND pg_catalog.pg_get_constraintdef(c.oid) "
	    "LIKE '%direction%'");
}

/*
 * A history table an older migd made allows fewer directions: its CHECK
 * is replaced, in the caller's transaction, by one with them all, before
 * a row of a newer direction is written.
 */
void
book_directions_sql(struct job *j, PGresult *res, struct errlist *sql)
{
	const struct config_db	*cf = j->db->cf;
	char			*ht, *name, *want, *dirs;
	size_t			 i;
	int			 r;

	(void)j;
	for (r = 0; r < PQntuples(res); r++) {
		for (i = 0; i < nitems(book_direction_names); i++) {
			want = xprintf("'%s'", book_direction_names[i]);
			if (strstr(PQgetvalue(res, r, 1), want) == NULL) {
				free(want);
				break;
			}
			free(want);
		}
		if (i == nitems(book_direction_names))
			continue;
		ht = migrate_qualify(cf->history_schema, cf->history_table);
		name = sqlscan_quote_ident(PQgetvalue(res, r, 0));
		dirs = book_directions();
		log_info("%sallowing every direction (%s) in %s",
		    j->db->tag, dirs, ht);
		errlist_add(sql, "ALTER TABLE %s DROP CONSTRAINT %s, ADD "
		    "CONSTRAINT %s CHECK (direction IN (%s))", ht, name, name,
		    dirs);
		free(dirs);
		free(name);
		free(ht);
	}
}
