/*
 * A step that failed on lock_timeout, tried again (lock_retries): who holds
 * the lock, the attempt in the history, the jittered wait on a timer, and
 * the INVALID index a timed-out CREATE INDEX CONCURRENTLY leaves, dropped
 * before the retry or before the revision is marked dirty.
 */
#include <sys/queue.h>

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "config.h"
#include "migd.h"
#include "engine.h"

/* Describes the sessions that held what a step waited for, one row each
 * (pid, application_name, state, transaction age in s, relations, the
 * modes in the way). */
static char *
run_holders_text(PGresult *res, json_t *holders)
{
	struct errlist	 who = { NULL, 0 };
	const char	*modes;
	double		 age;
	char		*s;
	int		 i;

	for (i = 0; i < PQntuples(res); i++) {
		age = atof(PQgetvalue(res, i, 3));
		modes = PQgetvalue(res, i, 5);
		json_array_append_new(holders, json_pack("{s:I, s:s, s:s, "
		    "s:f, s:s, s:s}", "pid", (json_int_t)atoll(PQgetvalue(res,
		    i, 0)), "application_name", PQgetvalue(res, i, 1), "state",
		    PQgetvalue(res, i, 2), "transaction_age_s", age,
		    "relations", PQgetvalue(res, i, 4), "modes", modes));
		errlist_add(&who, "%s%s held by pid %s (app \"%s\", %s, %.*f "
		    "s%s%s)", *PQgetvalue(res, i, 4) == '\0' ? "a transaction" :
		    strchr(PQgetvalue(res, i, 4), ',') != NULL ? "locks on " :
		    "lock on ", PQgetvalue(res, i, 4), PQgetvalue(res, i, 0),
		    PQgetvalue(res, i, 1), *PQgetvalue(res, i, 2) != '\0' ?
		    PQgetvalue(res, i, 2) : "state not visible", age < 10 ? 1 : 0,
		    age, *modes != '\0' ? ", holds " : "", modes);
	}
	if (who.n == 0)
		return (xstrdup("no session holds it any more, or migd's role "
		    "cannot see who does (pg_read_all_stats lets it see other "
		    "roles' sessions)"));
	s = errlist_join(&who, "; ");
	errlist_clear(&who);
	return (s);
}

/* Who held the lock came back: said with the step's failure. */
static void
run_holders_found(struct job *j, PGresult *res)
{
	json_t	*holders = json_array();

	free(j->waited_for);
	j->waited_for = NULL;
	if (run_res_ok(res))
		j->waited_for = run_holders_text(res, holders);
	else
		log_warnx("%scould not look up who held the lock: %s",
		    j->db->tag,
		    PQresultErrorMessage(res));
	if (j->step_err_data != NULL)
		json_object_set_new(j->step_err_data, "lock_holders", holders);
	else
		json_decref(holders);
	run_step_failed_end(j);
}

/*
 * A step hit lock_timeout (55P03): roll back, then look up, at once, who
 * holds locks in this database since before the step began to wait: those
 * holding a lock in the way of its failed statement's (any lock when migd
 * does not know that statement's) on a relation it names, else every old
 * transaction (pg_blocking_pids() is empty once the wait has ended).
 * Returns 1 when the query was sent.
 */
int
run_lock_failed(struct job *j)
{
	const struct config_db	*cf = j->db->cf;
	PGconn			*pg = j->pc != NULL ? pool_conn_pg(j->pc) : NULL;
	PGTransactionStatusType	 ts;
	const char		*text, *conf;
	char			*stmt, *lit, *clit, *named, *sql, *p;
	long			 timeout;

	if (j->holders_asked || j->step_err_code == NULL ||
	    strcmp(j->step_err_code, "55P03") != 0 || j->cancelled_by !=
	    NULL || pg == NULL || PQstatus(pg) != CONNECTION_OK)
		return (0);
	j->holders_asked = 1;
	run_section(j, &text);
	if (j->sent != NULL)
		stmt = xstrndup(text + j->sent->offset, j->sent->len >
		    65536 ? 65536 : j->sent->len);
	else
		stmt = xstrndup(text, 65536);
	for (p = stmt; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	lit = book_literal(j, stmt);
	timeout = !j->tx && j->sent != NULL && (j->sent->flags &
	    SQLSCAN_CONCURRENT) ? cf->concurrent_lock_timeout_ms :
	    cf->lock_timeout_ms;
	conf = j->sent != NULL ? lint_lock_conflicts(j->sent->lock) : NULL;
	clit = conf != NULL ? book_literal(j, conf) : xstrdup("NULL");
	/* named: on a relation the statement names, in a mode in its way. */
	named = xprintf("pg_catalog.strpos(%s, pg_catalog.lower("
	    "c.relname::text)) > 0 AND (%s::text IS NULL OR l.mode = ANY("
	    "pg_catalog.string_to_array(%s, ',')))", lit, clit, clit);
	ts = PQtransactionStatus(pg);
	sql = xprintf("%sWITH h AS (SELECT a.pid, coalesce("
	    "a.application_name, '') AS app, coalesce(a.state, '') AS st, "
	    "extract(epoch FROM pg_catalog.now() - a.xact_start) AS age, "
	    "a.xact_start, pg_catalog.string_agg(DISTINCT "
	    "pg_catalog.quote_ident(n.nspname) || '.' || "
	    "pg_catalog.quote_ident(c.relname), ', ') AS rels, "
	    "pg_catalog.string_agg(DISTINCT pg_catalog.quote_ident(n.nspname) "
	    "|| '.' || pg_catalog.quote_ident(c.relname), ', ') FILTER (WHERE "
	    "%s) AS named, pg_catalog.string_agg(DISTINCT l.mode, ', ') "
	    "FILTER (WHERE %s) AS modes FROM pg_catalog.pg_locks l JOIN "
	    "pg_catalog.pg_stat_activity "
	    "a ON a.pid = l.pid LEFT JOIN pg_catalog.pg_class c ON c.oid = "
	    "l.relation AND c.relnamespace <> 'pg_catalog'::regnamespace LEFT "
	    "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE "
	    "l.granted AND l.pid <> pg_catalog.pg_backend_pid() AND a.datname "
	    "= pg_catalog.current_database() AND a.xact_start <= "
	    "pg_catalog.now() - interval '%ld milliseconds' GROUP BY a.pid, "
	    "a.application_name, a.state, a.xact_start) SELECT pid, app, st, "
	    "round(age::numeric, 1)::text, coalesce(named, rels, ''), "
	    "coalesce(modes, '') FROM h "
	    "WHERE named IS NOT NULL OR NOT EXISTS (SELECT 1 FROM h WHERE "
	    "named IS NOT NULL) ORDER BY named IS NULL, xact_start LIMIT 5",
	    ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR ? "ROLLBACK; " : "",
	    named, named, timeout);
	job_query(j, sql, 0, NULL, run_holders_found);
	free(sql);
	free(named);
	free(clit);
	free(lit);
	free(stmt);
	return (1);
}

/* Why a step that hit lock_timeout is not tried again (to free), or NULL
 * when it is: nothing of it may be left, and retries must remain. */
char *
run_no_retry(struct job *j)
{
	const struct config_db	*cf = j->db->cf;

	if (j->cancelled_by != NULL || j->e->draining || j->copy_refused !=
	    NULL || j->pc == NULL || pool_conn_pg(j->pc) == NULL)
		return (xstrdup("not retried (cancelled or stopping)"));
	if (run_partly_done(j) && j->tx)
		return (xprintf("not retried: %zu of its transactions had "
		    "committed, so it cannot start again from the top",
		    j->seg_committed));
	if (!j->tx && !j->clean_fail)
		return (xstrdup("not retried: it runs outside a transaction "
		    "and statements before this one may have changed the "
		    "database (only a first statement that builds an index is "
		    "retried in such a migration)"));
	if (j->leftover_failed)
		return (xstrdup("not retried: the INVALID index it left could "
		    "not be dropped"));
	if (j->attempt > cf->lock_retries)
		return (xprintf("gave up after %d attempts (lock_retries = %d)",
		    j->attempt, cf->lock_retries));
	return (NULL);
}

/* The wait before a retry is over: start the step again, or in an atomic
 * run the whole run, from the top. */
static void
run_retry_timer(evutil_socket_t fd, short events, void *arg)
{
	struct job	*j = arg;

	(void)fd;
	(void)events;
	if (job_cancelled(j))
		return;
	if (j->e->draining) {
		run_retry_stop(j);
		return;
	}
	j->attempt++;
	j->evt = RUN_EVT_UNKNOWN;	/* a rollback may bring one back */
	if (j->atomic) {
		j->step = 0;
		json_array_clear(j->done);
		errlist_clear(&j->hist);	/* rolled back with the run */
	}
	run_step(j);
}

/* migd stops while a step waits to be retried: the run ends there. */
void
run_retry_stop(struct job *j)
{
	const struct migfile	*mf = revset_file(j->rs,
				    j->plan.steps[j->step].idx);
	size_t			 kept = j->atomic ? 0 : json_array_size(j->done);

	job_fail(j, MIGD_ERR_SHUTTING_DOWN, "shutting_down", json_pack("{s:O}",
	    "done", kept ? j->done : json_array()), "migd is shutting down: "
	    "stopped waiting to retry %s after a lock timeout; it is not "
	    "applied and not dirty%s", mf->revision, kept ? ", the migrations "
	    "before it stay applied" : j->atomic ? ", and the atomic run rolled "
	    "back: nothing was applied" : "");
}

/* Whether a step waits to be retried (migd stopping ends the wait). */
int
run_retry_waiting(struct job *j)
{
	return (j->retry_timer != NULL && evtimer_pending(j->retry_timer,
	    NULL) && !j->ending);
}

/* The failed attempt is recorded: wait, on the loop, then retry. */
static void
run_retry_recorded(struct job *j, PGresult *res)
{
	struct timeval	 tv;
	long		 ms = j->retry_wait_ms;

	if (!job_ok(j, res) || job_cancelled(j))
		return;
	if (j->e->draining) {
		run_retry_stop(j);
		return;
	}
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	if (j->retry_timer == NULL)
		j->retry_timer = evtimer_new(j->db->base, run_retry_timer, j);
	evtimer_add(j->retry_timer, &tv);
}

/*
 * A step hit lock_timeout with nothing of it left, and retries remain:
 * record the attempt (a failed history row, not dirty, saying it is
 * retried), tell the requester what it waits for, and wait a jittered,
 * doubling time, capped (lock_retry_wait, lock_retry_max_wait).
 */
void
run_retry(struct job *j, json_t *data, char *error)
{
	const struct config_db	*cf = j->db->cf;
	const struct graph_step	*st = &j->plan.steps[j->step];
	const struct migfile	*mf = revset_file(j->rs, st->idx);
	char			*note, *hist, *sql;
	long			 wait;

	wait = backoff_jittered(cf->lock_retry_wait_ms,
	    cf->lock_retry_max_wait_ms, j->attempt, (unsigned long)rand_r(
	    &j->rnd));
	j->retry_wait_ms = wait;
	note = xprintf("%s; retried: attempt %d of %d, the next in %.1f s",
	    error, j->attempt, cf->lock_retries + 1, (double)wait / 1000.0);
	if (j->clean_fail && j->mark_id != NULL)
		hist = book_mark_sql(j, 0, 0, j->step_err_code, note);
	else
		hist = book_step_history_sql(j, 0, 0, (migd_now() -
		    j->step_t0) * 1000.0, j->step_err_code, note);
	log_info("%s (%s): lock timeout on attempt %d of %d%s%s; retrying in "
	    "%.1f s%s", mf->revision, run_file(j), j->attempt,
	    cf->lock_retries + 1, j->waited_for ? ", blocked by: " : "",
	    j->waited_for ? j->waited_for : "", (double)wait / 1000.0,
	    j->atomic ? " (the whole atomic run)" : "");
	run_notify(j, "waiting", json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, "
	    "s:I, s:s, s:O, s:s, s:b}", "revision", mf->revision, "direction",
	    st->dir == GRAPH_UP ? "up" : "down", "sqlstate", "55P03",
	    "attempt", (json_int_t)j->attempt, "retry", (json_int_t)j->attempt,
	    "retries", (json_int_t)cf->lock_retries, "wait_ms",
	    (json_int_t)wait, "waiting_for", j->waited_for ? j->waited_for :
	    "the lock", "holders", json_object_get(data, "lock_holders") ?
	    json_object_get(data, "lock_holders") : json_null(), "error",
	    error, "whole_run", j->atomic));
	sql = xprintf(BOOK_AS_MIGD "%s", hist);
	j->session_set = 0;
	job_query(j, sql, 0, NULL, run_retry_recorded);
	free(sql);
	free(hist);
	free(note);
	free(error);
	json_decref(data);
	free(j->step_err_code);
	j->step_err_code = NULL;
}

/* Whether only session settings (SET, RESET) ran before statement s of a
 * bare section: then a failure there left nothing of it in the database. */
static int
run_nothing_before(const struct sqlscan *sc, const char *text,
    const struct sqlscan_stmt *s)
{
	const struct sqlscan_stmt	*p;
	const char			*t;

	if (s == NULL)
		return (0);
	for (p = sc->stmts; p < s; p++) {
		t = text + p->offset;
		if (!((strncasecmp(t, "set", 3) == 0 && p->len > 3 &&
		    isspace((unsigned char)t[3])) || (strncasecmp(t, "reset",
		    5) == 0 && p->len > 5 && isspace((unsigned char)t[5]))))
			return (0);
	}
	return (1);
}

/* The next INVALID index a failed build left, dropped as the build ran
 * (DROP INDEX CONCURRENTLY, with the concurrent timeouts); then the step's
 * failure is recorded, not dirty if that build was its first statement. */
static void
run_leftover_dropped(struct job *j, PGresult *res)
{
	const struct sqlscan	*sc;
	const char		*text, *msg;
	char			*sql, *t;

	sc = run_section(j, &text);
	if (res != NULL && !run_res_ok(res)) {
		msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
		t = j->step_err;
		j->step_err = xprintf("%s; the INVALID index %s it left could "
		    "not be dropped (%s): drop it (DROP INDEX CONCURRENTLY) "
		    "before running it again", t, j->leftovers.v[j->leftover],
		    msg != NULL ? msg : PQresultErrorMessage(res));
		free(t);
		j->leftover_failed = 1;
		run_step_failed_end(j);
		return;
	}
	if (res != NULL)
		j->leftover++;
	if (j->leftover < j->leftovers.n) {
		sql = xprintf("DROP INDEX CONCURRENTLY IF EXISTS %s",
		    j->leftovers.v[j->leftover]);
		log_info("%sdropping INVALID index %s left by the failed "
		    "statement", j->db->tag, j->leftovers.v[j->leftover]);
		job_query(j, sql, 0, NULL, run_leftover_dropped);
		free(sql);
		return;
	}
	j->clean_fail = run_nothing_before(sc, text, j->sent);
	run_step_failed_end(j);
}

/* The INVALID indexes that were not there before the failed build, and that
 * no other session is building on the same table. */
static void
run_leftovers_found(struct job *j, PGresult *res)
{
	int	 i;

	if (!run_res_ok(res)) {
		j->leftover_failed = 1;
		run_step_failed_end(j);
		return;
	}
	for (i = 0; i < PQntuples(res); i++)
		errlist_add(&j->leftovers, "%s", PQgetvalue(res, i, 0));
	j->leftover = 0;
	run_leftover_dropped(j, NULL);
}

/* Looks for what a failed CREATE INDEX or REINDEX CONCURRENTLY left. */
void
run_leftovers(struct job *j)
{
	char	*before, *sql;

	before = book_literal(j, j->invalid_before);
	sql = xprintf("SELECT pg_catalog.quote_ident(n.nspname) || '.' || "
	    "pg_catalog.quote_ident(c.relname) FROM pg_catalog.pg_index i "
	    "JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid JOIN "
	    "pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE NOT "
	    "i.indisvalid AND i.indexrelid <> ALL (%s::pg_catalog.oid[]) AND "
	    "NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_progress_create_index "
	    "p WHERE p.pid <> pg_catalog.pg_backend_pid() AND (p.relid IS NULL "
	    "OR p.relid = i.indrelid)) ORDER BY 1", before);
	errlist_clear(&j->leftovers);
	job_query(j, sql, 0, NULL, run_leftovers_found);
	free(before);
	free(sql);
}
