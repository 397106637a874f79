/*
 * A job's life: its queries and their results, its outcome, the clean-up
 * that leaves the connection as it was found (job_end), and its reply.
 * What it reads before it acts (connection, lock, tables, state) is in
 * job_state.c.
 */
#include <sys/queue.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "config.h"
#include "migd.h"
#include "engine.h"

static void	job_record_conn(struct pool_conn *, void *);
static void	job_record_timeout(evutil_socket_t, short, void *);
static void	job_record_check(struct job *);
static void	job_record_checked(struct job *, PGresult *);

static void	 migrate_next_run(struct engine *e);
static void	 job_result(struct pool_conn *pc, PGresult *res, void *arg);

void
job_free(struct job *j)
{
	size_t	 i;

	TAILQ_REMOVE(&j->e->all, j, all);
	migrate_files_forget(j->e, j);	/* cancelled while files load */
	if (j->timer != NULL)
		event_free(j->timer);
	if (j->wait_timer != NULL)
		event_free(j->wait_timer);
	if (j->retry_timer != NULL)
		event_free(j->retry_timer);
	free(j->target);
	for (i = 0; i < j->n_targets; i++)
		free(j->targets[i]);
	free(j->targets);
	free(j->resolve_as);
	free(j->adopt_from);
	free(j->adopt_table);
	free(j->adopt_revs);
	json_decref(j->adopt_gone);
	json_decref(j->accept);
	free(j->accept_sql);
	dbstate_clear(&j->st);
	graph_plan_clear(&j->plan);
	revset_unref(j->rs);
	for (i = 0; i < j->n_ensure; i++)
		free(j->ensure[i]);
	free(j->ensure);
	json_decref(j->created);
	json_decref(j->done);
	json_decref(j->result);
	free(j->err_kind);
	free(j->err_msg);
	json_decref(j->err_data);
	free(j->fail_sql);
	free(j->invalid_before);
	errlist_clear(&j->leftovers);
	json_decref(j->step_err_data);
	free(j->step_err);
	free(j->step_err_code);
	free(j->waited_for);
	json_decref(j->step_lint);
	json_decref(j->lint_by_rev);
	free(j->mark_id);
	free(j->cancelled_by);
	free(j->pipe_map);
	free(j->pipe_step);
	free(j->pipe_ends);
	errlist_clear(&j->hist);
	free(j->copy_refused);
	for (i = 0; i < j->n_managed; i++)
		free(j->managed[i]);
	free(j->managed);
	planlint_free(j);
	free(j);
}

/* Records the outcome as an error; the job then cleans up and replies. */
void
job_set_error(struct job *j, int code, const char *kind, json_t *data,
    const char *fmt, ...)
{
	va_list	 ap;

	if (j->err_msg != NULL) {
		json_decref(data);
		return;		/* the first error is the true one */
	}
	va_start(ap, fmt);
	xvasprintf(&j->err_msg, fmt, ap);
	va_end(ap);
	j->err_code = code;
	j->err_kind = xstrdup(kind);
	j->err_data = data;
}

/* Fails the job and starts cleaning up (rollback, history, unlock). */
void
job_fail(struct job *j, int code, const char *kind, json_t *data,
    const char *fmt, ...)
{
	va_list	 ap;
	char	*msg;

	va_start(ap, fmt);
	xvasprintf(&msg, fmt, ap);
	va_end(ap);
	job_set_error(j, code, kind, data, "%s", msg);
	free(msg);
	job_end(j, NULL);
}

/* Starts the next queued mutating job, if any. */
static void
migrate_next_run(struct engine *e)
{
	struct job	*j;

	if (e->draining)
		return;		/* migrate_shutdown refused the rest */
	if ((j = TAILQ_FIRST(&e->queue)) != NULL && j->pc == NULL &&
	    j->waiter == NULL)
		job_read_state(j);
}

/* Keeps the outcome of a run that held the queue, for status --all. */
static void
job_last_run(struct job *j)
{
	struct tm	 tm;
	time_t		 t = time(NULL);
	char		 at[32];
	json_t		*steps = json_object_get(j->result, "steps");

	gmtime_r(&t, &tm);
	strftime(at, sizeof at, "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_decref(j->db->last_run);
	j->db->last_run = json_pack("{s:s, s:s, s:s, s:s?, s:O?}", "at", at,
	    "action", j->req->rpc.method, "result", j->err_msg != NULL ?
	    "failed" : "ok", "error", j->err_msg, "to",
	    json_object_get(j->result, "to"));
	if (j->err_msg == NULL && json_is_array(steps))
		json_object_set_new(j->db->last_run, "migrations",
		    json_integer((json_int_t)json_array_size(steps)));
}

/* Sends the reply and forgets the job. */
void
job_reply(struct job *j)
{
	struct request	*req = j->req;
	struct engine	*e = j->e;
	int		 was_run = j->mutating &&
			    j == TAILQ_FIRST(&j->e->queue);
	size_t		 i;

	if (j->mutating)
		TAILQ_REMOVE(&j->e->queue, j, entry);
	if (j->e->status_leader == j)
		j->e->status_leader = NULL;
	for (i = 0; i < j->n_joined; i++) {
		/* The same answer for every status that joined this one. */
		if (j->err_msg != NULL)
			cmd_error(j->joined[i], j->err_code, j->err_kind,
			    json_incref(j->err_data), "%s", j->err_msg);
		else
			cmd_reply(j->joined[i], json_incref(j->result));
	}
	free(j->joined);
	j->joined = NULL;
	if (was_run)
		job_last_run(j);
	if (j->err_msg != NULL) {
		log_info("%s%s failed: %s", j->db->tag, req->rpc.method,
		    j->err_msg);
		cmd_error(req, j->err_code, j->err_kind, j->err_data, "%s",
		    j->err_msg);
		j->err_data = NULL;
	} else {
		cmd_reply(req, j->result);
		j->result = NULL;
	}
	job_free(j);
	if (was_run)
		migrate_next_run(e);
}

/* Receives a query's result and passes it on; the result is cleared here. */
static void
job_result(struct pool_conn *pc, PGresult *res, void *arg)
{
	struct job	*j = arg;
	job_fn		 next = j->next;

	if (res != NULL && pool_copy_refused(pc) != NULL &&
	    j->copy_refused == NULL)
		j->copy_refused = xstrdup(pool_copy_refused(pc));
	if (res == NULL && j->refresh == 2) {
		/* Lost after the run ended: its outcome stands; status reads
		 * the state again. */
		j->pc = NULL;
		j->refresh = 0;
		j->e->have_last_db = 0;
		job_end(j, NULL);
		return;
	}
	if (res == NULL) {
		/* The connection died: the server rolled back, the lock is gone. */
		j->pc = NULL;
		j->locked = 0;
		j->session_set = 0;
		j->ran_sql = 0;
		j->lost_step = !j->recording && j->done != NULL &&
		    j->step < j->plan.n_steps;
		job_set_error(j, MIGD_ERR_DB_UNAVAILABLE, "db_unavailable",
		    NULL, "lost the connection to PostgreSQL%s%s: %s",
		    j->lost_step ? " during " : "", j->lost_step ?
		    graph_id(j->rs->graph, j->plan.steps[j->step].idx) : "",
		    pool_last_error(j->db->pool) ?
		    pool_last_error(j->db->pool) :
		    "unknown error");
		job_end(j, NULL);
		return;
	}
	j->next = NULL;
	next(j, res);
	PQclear(res);
}

/* After a query was handed to the pool: a send that failed is the job's
 * failure, or a lost connection's when it died while the job held it idle
 * (between polls). */
static void
job_sent(struct job *j, int rc)
{
	PGconn	*pg = pool_conn_pg(j->pc);

	if (rc == 0)
		return;
	j->next = NULL;
	if (pg == NULL || PQstatus(pg) != CONNECTION_OK) {
		job_result(j->pc, NULL, j);
		return;
	}
	job_fail(j, MIGD_ERR_DB_UNAVAILABLE, "db_unavailable", NULL,
	    "cannot send to PostgreSQL: %s", PQerrorMessage(pg));
}

/* Sends one query; next receives its result. */
void
job_query(struct job *j, const char *sql, int n, const char *const *params,
    job_fn next)
{
	j->next = next;
	job_sent(j, pool_query(j->pc, sql, n, params, job_result, j));
}

/* Sends a migration's SQL, whose rows nobody reads: they are dropped as
 * they arrive; next receives the last result or the first error. */
void
job_query_discard(struct job *j, const char *sql, job_fn next)
{
	j->next = next;
	job_sent(j, pool_query_discard(j->pc, sql, job_result, j));
}

/* Sends SQL with one COPY FROM STDIN, whose data (taken) goes with it:
 * one round trip; next receives the last result or the first error. */
void
job_query_copy(struct job *j, const char *sql, char *copy, job_fn next)
{
	j->next = next;
	job_sent(j, pool_query_copy(j->pc, sql, copy, job_result, j));
}

/* Sends statements (sql's, taken: the pool sends them as the server takes
 * them) in one pipeline; next receives the first error (see
 * pool_pipeline_failed) or the last result.  discard (or NULL) marks the
 * queries whose rows are dropped as they arrive; flush (or NULL), those
 * after which the server sends its results at once (a step's end). */
void
job_pipeline(struct job *j, struct errlist *sql,
    const unsigned char *discard, const unsigned char *flush, job_fn next)
{
	char	**v = sql->v;
	size_t	  n = sql->n;

	sql->v = NULL;
	sql->n = 0;
	j->next = next;
	job_sent(j, pool_pipeline(j->pc, v, discard, flush, n, job_result, j));
}

/* The server's error as JSON: SQLSTATE, message, detail, hint, context. */
json_t *
migrate_pg_error(PGresult *res)
{
	static const struct { int field; const char *name; } fields[] = {
		{ PG_DIAG_SQLSTATE, "sqlstate" },
		{ PG_DIAG_SEVERITY_NONLOCALIZED, "severity" },
		{ PG_DIAG_MESSAGE_PRIMARY, "message" },
		{ PG_DIAG_MESSAGE_DETAIL, "detail" },
		{ PG_DIAG_MESSAGE_HINT, "hint" },
		{ PG_DIAG_CONTEXT, "context" },
		{ PG_DIAG_SCHEMA_NAME, "schema" },
		{ PG_DIAG_TABLE_NAME, "table" },
		{ PG_DIAG_CONSTRAINT_NAME, "constraint" },
	};
	json_t		*o = json_object();
	const char	*v;
	size_t		 i;

	for (i = 0; i < nitems(fields); i++) {
		if ((v = PQresultErrorField(res, fields[i].field)) != NULL)
			json_object_set_new(o, fields[i].name, json_string(v));
	}
	return (o);
}

/*
 * Whether a permission error is about migd's own tables (or their schemas or
 * the history's id sequence): a role that reads them is not their owner,
 * as when another role ran Alembic before.
 */
static int
job_own_tables(const struct config_db *cf, const char *msg)
{
	const char	*names[] = { cf->version_table, cf->history_table,
			    cf->version_schema, cf->history_schema };
	const char	*p;
	size_t		 i, n;

	/* "permission denied for KIND NAME" */
	if ((p = strstr(msg, "permission denied for ")) == NULL)
		return (0);
	p += strlen("permission denied for ");
	p += strcspn(p, " ");
	if (*p++ != ' ')
		return (0);
	for (i = 0; i < nitems(names); i++) {
		n = strlen(names[i]);
		/* a table, a schema, or the sequence history_table_id_seq */
		if (strncmp(p, names[i], n) == 0 && (p[n] == '\0' || (i == 1 &&
		    strcmp(p + n, "_id_seq") == 0)))
			return (1);
	}
	return (0);
}

/* Fails a job whose role may not use migd's tables: which role, which
 * tables, and the grant that fixes it. */
static void
job_fail_grant(struct job *j, json_t *data, const char *msg)
{
	const struct config_db	*cf = j->db->cf;
	PGconn			*pg = j->pc != NULL ? pool_conn_pg(j->pc) : NULL;
	const char		*role = pg != NULL ? PQuser(pg) : NULL;
	char			*vt, *ht;

	vt = migrate_qualify(cf->version_schema, cf->version_table);
	ht = migrate_qualify(cf->history_schema, cf->history_table);
	if (role == NULL || *role == '\0')
		role = "?";
	job_fail(j, MIGD_ERR_SQL, "sql_error", data, "%s (SQLSTATE 42501): "
	    "migd connects as role %s, which may not use its version and "
	    "history tables %s and %s; as their owner, GRANT SELECT, INSERT, "
	    "UPDATE, DELETE ON %s, %s TO %s, and USAGE on their schemas and "
	    "on the sequence of %s's id, or set [database] conninfo to the "
	    "role that owns them", msg, role, vt, ht, vt, ht, role, ht);
	free(vt);
	free(ht);
}

/* Checks a bookkeeping query; on error fails the job with the server's words. */
int
job_ok(struct job *j, PGresult *res)
{
	ExecStatusType	 s = PQresultStatus(res);
	json_t		*data;
	const char	*msg, *code;

	if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK ||
	    s == PGRES_EMPTY_QUERY)
		return (1);
	data = migrate_pg_error(res);
	msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	code = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	if (j->cancelled_by != NULL && code != NULL && strcmp(code,
	    "57014") == 0) {
		json_decref(data);
		job_cancelled(j);
		return (0);
	}
	if (code != NULL && strcmp(code, "42501") == 0 && msg != NULL &&
	    job_own_tables(j->db->cf, msg)) {
		job_fail_grant(j, data, msg);
		return (0);
	}
	job_fail(j, MIGD_ERR_SQL, "sql_error", data, "%s (SQLSTATE %s)",
	    msg ? msg : PQresultErrorMessage(res), code ? code : "?");
	return (0);
}

/*
 * Cleans the connection up, in order: roll back an open transaction, write
 * the failure's history row, reset session settings, release the advisory
 * lock, return the connection; then reply.  Each step re-enters here.
 */
void
job_end(struct job *j, PGresult *res)
{
	PGconn			*pg;
	PGTransactionStatusType	 ts;
	struct timeval		 tv = { 0, 0 };
	char			 key[32];
	const char		*params[1];
	char			*sql;

	(void)res;
	j->ending = 1;
	migrate_files_forget(j->e, j);	/* cancelled while files load */
	if (j->waiter != NULL) {
		pool_cancel_wait(j->db->pool, j->waiter);
		j->waiter = NULL;
	}
	if (j->timer != NULL)
		evtimer_del(j->timer);
	if (j->wait_timer != NULL)
		evtimer_del(j->wait_timer);
	if (j->retry_timer != NULL)
		evtimer_del(j->retry_timer);
	if (j->pc != NULL && (pg = pool_conn_pg(j->pc)) != NULL &&
	    PQstatus(pg) == CONNECTION_OK) {
		ts = PQtransactionStatus(pg);
		if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR) {
			job_query(j, "ROLLBACK", 0, NULL, job_end);
			return;
		}
		if (j->fail_sql != NULL) {
			sql = j->fail_sql;
			j->fail_sql = NULL;
			job_query(j, sql, 0, NULL, job_end);
			free(sql);
			return;
		}
		if (j->session_set) {
			j->session_set = 0;
			job_query(j, migrate_reset_sql(j) + 2, 0, NULL,
			    job_end);
			return;
		}
		if (j->locked) {
			j->locked = 0;
			snprintf(key, sizeof key, "%lld",
			    migrate_lock_key(j->db->cf));
			params[0] = key;
			job_query(j, "SELECT pg_advisory_unlock($1::bigint)", 1,
			    params, job_end);
			return;
		}
		if (j->ran_sql) {
			/* A migration's SET, SET ROLE or temp table must not
			 * follow the connection into the next request. */
			j->ran_sql = 0;
			job_query(j, "DISCARD ALL", 0, NULL, job_end);
			return;
		}
		if (j->refresh == 1 && j->e->tables_known) {
			/* What status --all answers from while this database
			 * has no connection: the state this run left. */
			job_state_refresh(j);
			return;
		}
	}
	if (j->refresh == 1) {
		/* Not read: the cached state may be wrong now. */
		j->refresh = 0;
		j->e->have_last_db = 0;
	}
	if (j->pc != NULL) {
		pool_release(j->pc);
		j->pc = NULL;
	} else if (j->lost_step) {
		/* Record the failure once a connection comes back, if it does
		 * within connect_timeout; the reply waits for it. */
		j->lost_step = 0;
		j->recording = 1;
		if (j->wait_timer != NULL)
			event_free(j->wait_timer);
		j->wait_timer = evtimer_new(j->db->base, job_record_timeout, j);
		tv.tv_sec = j->db->cf->connect_timeout;
		evtimer_add(j->wait_timer, &tv);
		j->waiter = pool_acquire(j->db->pool, job_record_conn, j);
		return;
	}
	job_reply(j);
}

/* A connection again after a lost one: write the step's failure. */
static void
job_record_conn(struct pool_conn *pc, void *arg)
{
	struct job	*j = arg;

	j->waiter = NULL;
	j->pc = pc;
	evtimer_del(j->wait_timer);
	if (pc == NULL) {
		log_warnx("%scould not record the failure of %s in the "
		    "history: %s", j->db->tag, graph_id(j->rs->graph,
		    j->plan.steps[j->step].idx),
		    pool_last_error(j->db->pool) ?
		    pool_last_error(j->db->pool) :
		    "no connection");
		job_end(j, NULL);
		return;
	}
	job_record_check(j);
}

/*
 * The connection may have died after the server committed the step (a
 * COMMIT waiting for a synchronous standby, then terminated): its success
 * row is there, with the step's start.  Ask before writing a failure.
 */
static void
job_record_check(struct job *j)
{
	const struct graph_step	*st = &j->plan.steps[j->step];
	const char		*params[3];
	char			*ht, *sql, *wall;

	ht = migrate_qualify(j->db->cf->history_schema,
	    j->db->cf->history_table);
	sql = xprintf("SELECT EXISTS (SELECT 1 FROM %s WHERE revision = $1 "
	    "AND direction = $2 AND success AND started_at = "
	    "$3::timestamptz)", ht);
	wall = book_time(j->step_wall);
	params[0] = revset_file(j->rs, st->idx)->revision;
	params[1] = st->dir == GRAPH_UP ? "up" : "down";
	params[2] = wall;
	job_query(j, sql, 3, params, job_record_checked);
	free(wall);
	free(sql);
	free(ht);
}

/* Committed: say so, and write no failure over it; else record it. */
static void
job_record_checked(struct job *j, PGresult *res)
{
	const char	*rev = graph_id(j->rs->graph, j->plan.steps[j->step].idx);
	char		*msg, *why;

	if (PQresultStatus(res) != PGRES_TUPLES_OK ||
	    PQgetvalue(res, 0, 0)[0] != 't') {
		j->fail_sql = run_lost_sql(j);	/* the row without the note */
		if (PQresultStatus(res) == PGRES_TUPLES_OK) {
			why = run_lost_note(j);
			msg = xprintf("%s%s", j->err_msg, why);
			free(j->err_msg);
			j->err_msg = msg;
			free(why);
		}
		job_end(j, NULL);
		return;
	}
	log_info("%s%s committed before the connection was lost", j->db->tag,
	    rev);
	msg = j->err_msg;
	j->err_msg = NULL;
	json_decref(j->err_data);
	j->err_data = NULL;
	free(j->err_kind);
	why = strstr(msg, ": ");
	why = why != NULL ? why + 2 : msg;
	if (j->atomic)
		/* One COMMIT for the whole run: all of it went through. */
		job_set_error(j, j->err_code, "db_unavailable", json_pack(
		    "{s:s}", "committed", rev), "lost the connection to "
		    "PostgreSQL as the run committed, and its COMMIT went "
		    "through (the history rows and version-table change are "
		    "there): the whole run is applied, up to %s (%s)", rev,
		    why);
	else
		job_set_error(j, j->err_code, "db_unavailable", json_pack(
		    "{s:s}", "committed", rev), "lost the connection to "
		    "PostgreSQL as %s committed, and its COMMIT went through "
		    "(its history row and version-table change are there): %s "
		    "is applied and the run stopped after it; run it again "
		    "for the rest (%s)", rev, rev, why);
	free(msg);
	job_end(j, NULL);
}

/* No connection came back in time: reply without the history row. */
static void
job_record_timeout(evutil_socket_t fd, short events, void *arg)
{
	struct job	*j = arg;

	(void)fd;
	(void)events;
	log_warnx("%scould not record the failure of %s in the history: no "
	    "connection", j->db->tag, graph_id(j->rs->graph,
	    j->plan.steps[j->step].idx));
	pool_cancel_wait(j->db->pool, j->waiter);
	j->waiter = NULL;
	job_end(j, NULL);
}



