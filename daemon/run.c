/*
 * Running a plan: each migration with its bookkeeping (book.c), statement
 * by statement, so that errors name their line, or in pipelines
 * (run_batch.c); its transactions, failures and cancellation.  The
 * schemas before the run are run_schemas.c's, the server's notices
 * run_notice.c's, lock timeouts and retries run_retry.c's.
 */
#include <sys/inotify.h>
#include <sys/queue.h>

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "config.h"
#include "migd.h"
#include "engine.h"
#include "layout.h"

static int	 run_error_line(const char *stmt, size_t len, int line,
	    const char *pos, size_t skip);
static void	 run_step_done(struct job *j, PGresult *res);
static void	 run_bookkeeping(struct job *j);
static void	 run_stmt(struct job *j, PGresult *res);

/* Sends a progress notification to the requester. */
void
run_notify(struct job *j, const char *event, json_t *params)
{
	if (params == NULL)
		params = json_object();
	json_object_set_new(params, "event", json_string(event));
	cmd_notify(j->req, "progress", params);
}

/* The file of the running step's section: in another tool's layout the
 * down section may be a file of its own. */
const char *
run_file(const struct job *j)
{
	const struct graph_step	*st = &j->plan.steps[j->step];

	return (migfile_path(revset_file(j->rs, st->idx), st->dir ==
	    GRAPH_UP));
}

/* The file line of a server error position inside one statement sent after
 * a prefix of skip characters. */
static int
run_error_line(const char *stmt, size_t len, int line, const char *pos,
    size_t skip)
{
	long	 chars;
	size_t	 i;

	if (pos == NULL || (chars = atol(pos) - (long)skip) <= 1)
		return (line);
	/* The position counts characters from 1; UTF-8 continuation bytes
	 * do not start one. */
	for (i = 0; i < len && chars > 1; i++) {
		if (((unsigned char)stmt[i] & 0xc0) != 0x80) {
			if (--chars == 0)
				break;
		}
		if (stmt[i] == '\n')
			line++;
	}
	return (line);
}


/* The current step's section, analysis and file. */
const struct sqlscan *
run_section(struct job *j, const char **text)
{
	const struct graph_step	*st = &j->plan.steps[j->step];
	const struct migfile	*mf = revset_file(j->rs, st->idx);

	*text = st->dir == GRAPH_UP ? mf->up : mf->down;
	return (st->dir == GRAPH_UP ? &j->rs->up[st->idx] :
	    &j->rs->down[st->idx]);
}

/* The run is over: the reply says what was done. */
void
run_finish(struct job *j)
{
	migrate_plan_ends(j);
	json_object_set(j->result, "steps", j->done);
	json_object_set(j->result, "schemas_created", j->created);
	json_object_set_new(j->result, "atomic", json_boolean(j->atomic));
	json_object_set_new(j->result, "duration_ms", rpc_duration((migd_now() -
	    j->t0) * 1000.0));
	json_object_del(j->result, "problems");
	if (j->plan.n_steps > 0)
		log_info("%s%s to %s done: %zu migration%s in %.0f ms",
		    j->db->tag, j->dir == GRAPH_UP ? "upgrade" : "downgrade",
		    j->target,
		    j->plan.n_steps, j->plan.n_steps == 1 ? "" : "s",
		    (migd_now() - j->t0) * 1000.0);
	job_end(j, NULL);
}

/* The current step ended well: said, logged, and in an atomic run its
 * history row kept for the COMMIT; then the next is current. */
void
run_step_ok(struct job *j)
{
	const struct graph_step	*st = &j->plan.steps[j->step];
	const struct migfile	*mf = revset_file(j->rs, st->idx);
	double			 now = migd_now();
	double			 ms = (now - j->step_t0) * 1000.0;

	run_notices_end(j);
	j->session_set = 0;
	if (j->atomic)
		errlist_take(&j->hist, book_history_copy(j, mf->revision,
		    st->dir == GRAPH_UP ? "up" : "down", mf->checksum,
		    mf->message, run_file(j), j->step_wall, ms, j->step_wall +
		    (now - j->step_t0), j->step < j->out_of_order ?
		    BOOK_OUT_OF_ORDER : NULL));
	json_array_append_new(j->done, json_pack("{s:s, s:s, s:o}",
	    "revision", mf->revision, "direction", st->dir == GRAPH_UP ?
	    "up" : "down", "duration_ms", rpc_duration(ms)));
	run_notify(j, "finished", json_pack("{s:s, s:s, s:I, s:I, s:o}",
	    "revision", mf->revision, "direction", st->dir == GRAPH_UP ?
	    "up" : "down", "index", (json_int_t)j->step + 1, "total",
	    (json_int_t)j->plan.n_steps, "duration_ms", rpc_duration(ms)));
	log_info("%s%s %s (%s) in %.0f ms%s", j->db->tag,
	    st->dir == GRAPH_UP ? "applied" : "reverted", mf->revision,
	    run_file(j), ms, j->atomic ?
	    ", to commit with the rest of the run" : "");
	j->step++;
	if (!j->atomic)
		j->attempt = 0;
}

/* Whether the run stops before its next step (migd is stopping): then it
 * has failed.  Once every step ran, an atomic run still commits. */
int
run_stopping(struct job *j)
{
	const struct migfile	*mf;

	if (!j->e->draining || j->step == j->plan.n_steps)
		return (0);
	mf = revset_file(j->rs, j->plan.steps[j->step - 1].idx);
	if (j->atomic) {
		job_fail(j, MIGD_ERR_SHUTTING_DOWN, "shutting_down",
		    json_pack("{s:[]}", "done"), "migd is shutting down: the "
		    "atomic run stopped after %s and rolled back; nothing was "
		    "applied", mf->revision);
		return (1);
	}
	job_fail(j, MIGD_ERR_SHUTTING_DOWN, "shutting_down", json_pack(
	    "{s:O}", "done", j->done), "migd is shutting down: stopped "
	    "after %s; %zu migration%s not run", mf->revision,
	    j->plan.n_steps - j->step, j->plan.n_steps - j->step == 1 ?
	    "" : "s");
	return (1);
}

/* An atomic run's COMMIT came back: the run is over, or it failed at its
 * end, which the last step's history row tells. */
static void
run_committed(struct job *j, PGresult *res)
{
	const char	*text;

	if (!run_res_ok(res)) {
		/* Not done after all: the failure is the last step's. */
		json_array_remove(j->done, json_array_size(j->done) - 1);
		run_section(j, &text);
		run_step_failed(j, res, NULL, text);
		return;
	}
	j->step = j->plan.n_steps;
	run_finish(j);
}

/* Every step of an atomic run passed its checks: the version rows, the
 * history rows (a COPY) and COMMIT, in one round trip. */
void
run_atomic_commit(struct job *j)
{
	struct errlist	 sql = { NULL, 0 };
	char		*s, *copy;

	if (job_cancelled(j))
		return;
	j->step = j->plan.n_steps - 1;	/* a failure is the last step's */
	book_atomic_end_sql(j, &sql, &copy);
	s = book_joined(&sql);
	job_query_copy(j, s, copy, run_committed);
	errlist_clear(&sql);
	free(s);
}

/* A step sent statement by statement ended (its bookkeeping came back):
 * the next step, the atomic run's COMMIT, or the run's end. */
static void
run_step_done(struct job *j, PGresult *res)
{
	const char	*text;

	if (!run_res_ok(res)) {
		run_section(j, &text);
		run_step_failed(j, res, NULL, text);
		return;
	}
	run_step_ok(j);
	if (j->atomic && j->step == j->plan.n_steps) {
		run_atomic_commit(j);
		return;
	}
	if (run_stopping(j))
		return;
	if (j->step < j->plan.n_steps)
		run_step(j);
	else
		run_finish(j);
}

/* The history of a step whose connection died: a failed row, or the
 * completed dirty mark of a bare step (which may have run in part). */
char *
run_lost_sql(struct job *j)
{
	if ((run_partly_done(j) || j->seg_end_sent) && j->mark_id != NULL)
		return (book_mark_sql(j, 0, 1, "08006", j->err_msg));
	return (book_step_history_sql(j, 0, run_partly_done(j), (migd_now() -
	    j->step_t0) * 1000.0, "08006", j->err_msg));
}

/* Whether a result is a success of any kind. */
int
run_res_ok(PGresult *res)
{
	ExecStatusType	 s = PQresultStatus(res);

	return (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK ||
	    s == PGRES_EMPTY_QUERY);
}

/* The file's BEGIN for the next transaction (its options kept), or BEGIN. */
char *
run_begin(struct job *j, const char *text)
{
	const struct sqlscan_stmt	*b = j->seg_begin;

	j->seg_begin = NULL;
	if (b == NULL)
		return (xstrdup("BEGIN"));
	return (xprintf("%.*s", (int)b->len, text + b->offset));
}

/* The file's SET TRANSACTIONs opening the next transaction, each ended by
 * "; ", or "": PostgreSQL takes them only before the transaction's first
 * query, so they go right after the BEGIN, before migd's timeouts and
 * witness (which are queries). */
static char *
run_tx_sets(struct job *j, const char *text)
{
	const struct sqlscan_stmt	*s = j->seg_sets;
	char				*out = xstrdup(""), *t;
	size_t				 i;

	for (i = 0; i < j->n_seg_sets; i++) {
		t = xprintf("%s%.*s; ", out, (int)s[i].len, text +
		    s[i].offset);
		free(out);
		out = t;
	}
	j->seg_sets = NULL;
	j->n_seg_sets = 0;
	return (out);
}

/* Notes a SET TRANSACTION that opens the next transaction (run_tx_sets). */
static void
run_tx_set(struct job *j, const struct sqlscan_stmt *s)
{
	if (j->seg_sets == NULL)
		j->seg_sets = s;
	j->n_seg_sets++;
}

/* The statements that open a section's first transaction, from i: its
 * BEGIN (noted for run_begin) and the SET TRANSACTIONs after it (for
 * run_tx_sets).  Returns the index of the statement after them. */
size_t
run_opening(struct job *j, const struct sqlscan *sc, size_t i)
{
	j->seg_begin = NULL;
	j->seg_sets = NULL;
	j->n_seg_sets = 0;
	for (; i < sc->n_stmts && (sc->stmts[i].flags & SQLSCAN_TX_BEGIN);
	    i++)
		j->seg_begin = &sc->stmts[i];	/* options */
	for (; i < sc->n_stmts && (sc->stmts[i].flags & SQLSCAN_TX_SET); i++)
		run_tx_set(j, &sc->stmts[i]);
	return (i);
}

/* What must go before the next statement of a transactional step: the
 * first BEGIN, or the COMMIT ending the last transaction and the next BEGIN. */
static char *
run_segment_start(struct job *j, const char *text)
{
	char	*begin, *set, *s, *sets;

	if (j->seg_open && j->seg_end == NULL)
		return (xstrdup(""));
	set = book_timeouts(j, 1);
	sets = run_tx_sets(j, text);
	if (!j->seg_open) {
		begin = run_begin(j, text);
		s = xprintf("%s; %s%s", begin, sets, set);
		free(begin);
		j->seg_open = 1;
	} else if (j->seg_end->flags & SQLSCAN_TX_CHAIN) {
		s = xprintf("COMMIT AND CHAIN; %s%s", sets, set);
		j->seg_begin = NULL;
	} else {
		begin = run_begin(j, text);
		s = xprintf("COMMIT; %s; %s%s", begin, sets, set);
		free(begin);
	}
	free(sets);
	if (j->seg_end != NULL) {
		j->seg_end_line = j->seg_end->line;
		j->seg_end = NULL;
		j->seg_end_sent = 1;
	}
	j->segment++;
	free(set);
	return (s);
}

/* Whether the failing step had committed part of its work (a bare step, or
 * a later transaction of a segmented one): then it is dirty. */
int
run_partly_done(struct job *j)
{
	return (!j->clean_fail && (!j->tx || j->seg_committed > 0));
}

/* The hint for a CALL or DO that ended a transaction inside the step's
 * (SQLSTATE 2D000, which PostgreSQL gives without one): psql runs such a
 * file in autocommit, migd in a transaction unless the file says not. */
static json_t *
run_termination_hint(const struct migfile *mf)
{
	if (layout_no_tx(mf) == NULL)
		return (json_sprintf("a procedure or DO block that runs "
		    "COMMIT or ROLLBACK cannot run inside the migration's "
		    "transaction, and %s files cannot say to run outside "
		    "one: write the batches into the file instead, each "
		    "ended by COMMIT (migd runs each in a transaction of its "
		    "own)", layout_name(mf->layout)));
	return (json_sprintf("a procedure or DO block that runs COMMIT or "
	    "ROLLBACK cannot run inside the migration's transaction: declare "
	    "%s in the file to run it statement by statement, as psql does "
	    "(then not in an atomic run)", layout_no_tx(mf)));
}

/* What the error adds about a step that committed part of its work. */
static char *
run_dirty_note(struct job *j)
{
	if (j->tx)
		return (xprintf("; %zu of its %zu transactions committed (up "
		    "to the COMMIT at line %d) and the rest rolled back, so "
		    "it is now dirty: check the database, then run 'migctl "
		    "%sresolve' to say whether it is applied", j->seg_committed,
		    j->segments, j->seg_end_line, j->db->cli));
	return (xprintf("; this non-transactional migration stopped part-way "
	    "and is now dirty: check the database, then run 'migctl "
	    "%sresolve' to say whether it is applied", j->db->cli));
}

/* What a lost step's error adds once migd knows it did not commit: dirty,
 * or rolled back by the server. */
char *
run_lost_note(struct job *j)
{
	if (run_partly_done(j) || (j->seg_end_sent && j->mark_id != NULL))
		return (run_dirty_note(j));
	return (xstrdup("; it was not committed: the server rolled it back, "
	    "and the database is at the last good revision"));
}

/*
 * A step failed, at a statement (s) or at its end (s NULL: session clean-up,
 * checks, bookkeeping, COMMIT): roll back, record it as the revision's
 * failure, and say exactly where.
 */
void
run_step_failed(struct job *j, PGresult *res, const struct sqlscan_stmt *s,
    const char *text)
{
	const struct graph_step	*st = &j->plan.steps[j->step];
	const struct migfile	*mf = revset_file(j->rs, st->idx);
	PGconn			*pg = pool_conn_pg(j->pc);
	const char		*msg, *code;
	json_t			*data;
	char			*excerpt = NULL, *error, *why;
	int			 line = 0, commit_failed = 0;

	run_notices_end(j);
	if (res != NULL) {
		msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
		code = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		if (msg == NULL)
			msg = PQresultErrorMessage(res);
	} else if (j->copy_refused != NULL) {
		/* A COPY to the client, which migd read to its end. */
		msg = j->copy_refused;
		code = "0A000";	/* feature_not_supported */
	} else {
		/* Cancelled between two statements. */
		msg = "canceling statement due to user request";
		code = "57014";
	}
	if (j->seg_end_sent) {
		/* The COMMIT sent before this statement: did it go through? */
		j->seg_end_sent = 0;
		if (PQtransactionStatus(pg) == PQTRANS_INERROR)
			j->seg_committed++;
		else
			commit_failed = 1;
	}
	data = res != NULL ? migrate_pg_error(res) : json_pack("{s:s, s:s}",
	    "sqlstate", code, "message", msg);
	json_object_set_new(data, "revision", json_string(mf->revision));
	json_object_set_new(data, "direction", json_string(st->dir ==
	    GRAPH_UP ? "up" : "down"));
	json_object_set_new(data, "file", json_string(run_file(j)));
	if (s != NULL && j->tx && code != NULL && strcmp(code, "2D000") ==
	    0 && json_object_get(data, "hint") == NULL)
		json_object_set_new(data, "hint", run_termination_hint(mf));
	if (commit_failed) {
		json_object_set_new(data, "line", json_integer(j->seg_end_line));
		error = xprintf("%s:%d: COMMIT failed: %s (SQLSTATE %s)",
		    run_file(j), j->seg_end_line, msg, code ? code : "?");
	} else if (s != NULL) {
		line = run_error_line(text + s->offset, s->len, s->line,
		    res != NULL ? PQresultErrorField(res,
		    PG_DIAG_STATEMENT_POSITION) : NULL, j->prefix_len);
		excerpt = xstrndup(text + s->offset, s->len >
		    MIGRATE_SQL_EXCERPT ? MIGRATE_SQL_EXCERPT : s->len);
		/* Never cut a character in two: JSON needs whole UTF-8. */
		excerpt[utf8_valid_prefix(excerpt, strlen(excerpt))] = '\0';
		json_object_set_new(data, "line", json_integer(line));
		json_object_set_new(data, "statement_line",
		    json_integer(s->line));
		json_object_set_new(data, "statement", json_string(excerpt));
		error = xprintf("%s:%d: %s (SQLSTATE %s)", run_file(j), line,
		    msg, code ? code : "?");
	} else if (res != NULL && (why = book_guard_failure(j, res, &code)) !=
	    NULL) {
		error = xprintf("%s: revision %s: %s", run_file(j),
		    mf->revision, why);
		json_object_set_new(data, "sqlstate", json_string(code));
		json_object_set_new(data, "message", json_string(why));
		free(why);
	} else
		error = xprintf("%s: revision %s failed at its end (session "
		    "clean-up, checks, bookkeeping and COMMIT): %s (SQLSTATE "
		    "%s)", run_file(j), mf->revision, msg, code ? code : "?");
	json_object_set_new(data, "transactional", json_boolean(j->tx));
	if (j->tx && j->segments > 1)
		json_object_set_new(data, "transactions", json_pack("{s:I, "
		    "s:I}", "total", (json_int_t)j->segments, "committed",
		    (json_int_t)j->seg_committed));
	json_object_set(data, "done", j->done);
	json_decref(j->step_err_data);
	free(j->step_err);
	free(j->step_err_code);
	j->step_err_data = data;
	j->step_err = error;
	j->step_err_code = code != NULL ? xstrdup(code) : NULL;
	free(excerpt);
	if (s != NULL && !j->tx && (s->flags & SQLSCAN_BUILDS_INDEX) &&
	    j->invalid_before != NULL && j->cancelled_by == NULL &&
	    res != NULL && pool_conn_pg(j->pc) != NULL) {
		/* A failed CREATE INDEX or REINDEX CONCURRENTLY leaves an
		 * INVALID index, which would fail its retry: drop it first. */
		run_leftovers(j);
		return;
	}
	run_step_failed_end(j);
}

/* Records a failed step (run_step_failed) and cleans up: the history row,
 * the error's note (rolled back, dirty), the reply. */
void
run_step_failed_end(struct job *j)
{
	const struct graph_step	*st = &j->plan.steps[j->step];
	const struct migfile	*mf = revset_file(j->rs, st->idx);
	json_t			*data = j->step_err_data;
	const char		*code = j->step_err_code;
	char			*error = j->step_err, *hist, *note, *t;

	if (run_lock_failed(j))
		return;		/* back here once the holders are known */
	j->step_err_data = NULL;
	j->step_err = NULL;
	if (j->leftovers.n > 0 && !j->leftover_failed) {
		t = errlist_join(&j->leftovers, ", ");
		json_object_set_new(data, "invalid_indexes_dropped",
		    json_string(t));
		hist = error;
		error = xprintf("%s; migd dropped the INVALID index%s it left "
		    "(%s)", hist, j->leftovers.n == 1 ? "" : "es", t);
		free(hist);
		free(t);
	}
	if (j->waited_for != NULL) {
		hist = error;
		error = xprintf("%s; blocked by: %s", hist, j->waited_for);
		free(hist);
	}
	if (code != NULL && strcmp(code, "55P03") == 0 &&
	    j->db->cf->lock_retries > 0) {
		if ((t = run_no_retry(j)) == NULL) {
			run_retry(j, data, error);
			return;
		}
		hist = error;
		error = xprintf("%s; %s", hist, t);
		free(hist);
		free(t);
		json_object_set_new(data, "attempts", json_integer(j->attempt));
	}
	if (j->leftovers.n > 0 || j->clean_fail)
		json_object_set_new(data, "dirty", json_boolean(
		    run_partly_done(j)));
	if ((run_partly_done(j) || j->clean_fail) && j->mark_id != NULL)
		hist = book_mark_sql(j, 0, run_partly_done(j), code, error);
	else
		hist = book_step_history_sql(j, 0, 0, (migd_now() -
		    j->step_t0) * 1000.0, code, error);
	j->fail_sql = xprintf(BOOK_AS_MIGD "%s", hist);
	free(hist);
	run_notify(j, "failed", json_pack("{s:s, s:s}", "revision",
	    mf->revision, "error", error));
	if (run_partly_done(j))
		note = run_dirty_note(j);
	else if (j->clean_fail)
		note = xstrdup("; nothing ran before it in this "
		    "non-transactional migration but settings, so nothing of "
		    "it is left and it is not dirty: fix the cause and run it "
		    "again");
	else if (j->atomic) {
		/* Nothing of the run is left: say what was undone. */
		json_object_set_new(data, "rolled_back", json_deep_copy(
		    j->done));
		json_object_set_new(data, "done", json_array());
		note = xprintf("; the whole run rolled back (atomic), %zu "
		    "migration%s before it included: the database is as it "
		    "was before the run", json_array_size(j->done),
		    json_array_size(j->done) == 1 ? "" : "s");
	} else
		note = xstrdup("; rolled back, the database is at the last "
		    "good revision");
	if (j->cancelled_by != NULL) {
		json_object_set_new(data, "dirty", json_boolean(
		    run_partly_done(j)));
		json_object_set_new(data, "cancelled_by", json_string(
		    j->cancelled_by));
		job_set_error(j, MIGD_ERR_CANCELLED, "cancelled", data,
		    "%s: cancelled by %s%s", error, j->cancelled_by, note);
	} else
		job_set_error(j, MIGD_ERR_SQL, run_partly_done(j) ? "dirty" :
		    "sql_error", data, "%s%s", error, note);
	free(note);
	free(error);
	job_end(j, NULL);
}

/* Whether a bare step's statement needs the session prepared first: its
 * timeouts differ from the last one's, or it builds an index (the INVALID
 * indexes before it are noted, to drop only what it leaves). */
static int
run_needs_prepare(struct job *j, const struct sqlscan_stmt *s)
{
	int	 conc = (s->flags & SQLSCAN_CONCURRENT) != 0;

	return (!j->tx && (conc != j->conc_timeouts ||
	    (s->flags & SQLSCAN_BUILDS_INDEX)));
}

/* The session is prepared: send the statement. */
static void
run_prepared(struct job *j, PGresult *res)
{
	const struct sqlscan	*sc;
	const struct sqlscan_stmt *s;
	const char		*text;

	if (!job_ok(j, res))
		return;
	sc = run_section(j, &text);
	s = &sc->stmts[j->stmt];
	j->conc_timeouts = (s->flags & SQLSCAN_CONCURRENT) != 0;
	free(j->invalid_before);
	j->invalid_before = NULL;
	if ((s->flags & SQLSCAN_BUILDS_INDEX) && PQntuples(res) == 1)
		j->invalid_before = xstrdup(PQgetvalue(res, 0, 0));
	j->prepared = 1;
	run_stmt(j, NULL);
}

/* Sets a bare step's session up for its next statement (run_needs_prepare). */
static void
run_prepare(struct job *j, const struct sqlscan_stmt *s)
{
	char	*set, *sql;

	set = book_session_timeouts(j, (s->flags & SQLSCAN_CONCURRENT) != 0);
	if (s->flags & SQLSCAN_BUILDS_INDEX)
		sql = xprintf("%sSELECT coalesce(pg_catalog.array_agg("
		    "indexrelid)::text, '{}') FROM pg_catalog.pg_index WHERE "
		    "NOT indisvalid", set);
	else
		sql = xstrdup(set);
	job_query(j, sql, 0, NULL, run_prepared);
	free(set);
	free(sql);
}

/* The step's lock witness after sql, before the step's first statement (or
 * its bookkeeping, when none ran): once a step.  Takes sql. */
static char *
run_witness(struct job *j, char *sql)
{
	char	*w, *t;

	if (j->witness)
		return (sql);
	w = book_witness_sql(j);
	t = xprintf("%s%s; ", sql, w);
	free(sql);
	free(w);
	j->witness = 1;
	return (t);
}

/* Sends the next statement of the step, or its bookkeeping. */
static void
run_stmt(struct job *j, PGresult *res)
{
	const struct sqlscan		*sc;
	const struct sqlscan_stmt	*s;
	const char			*text;
	char				*sql, *pre;

	sc = run_section(j, &text);
	if (res != NULL && !run_res_ok(res)) {
		if (j->sent == NULL)
			job_ok(j, res);	/* BEGIN, SET or the dirty mark */
		else
			run_step_failed(j, res, j->sent, text);
		return;
	}
	if (res != NULL && j->sent == NULL && j->mark_id == NULL) {
		/* The dirty mark's id, to complete it when the step ends. */
		j->mark_id = xstrdup(PQntuples(res) == 1 ? PQgetvalue(res, 0,
		    0) : "0");
	}
	if (j->seg_end_sent) {
		j->seg_end_sent = 0;
		j->seg_committed++;
	}
	if (j->cancelled_by != NULL || (j->copy_refused != NULL &&
	    j->sent != NULL)) {
		run_step_failed(j, NULL, j->sent, text);
		return;
	}
	/* The file's BEGIN and COMMIT say where its transactions start and
	 * end; migd sends its own, with its timeouts. */
	while (j->tx && j->stmt < sc->n_stmts) {
		s = &sc->stmts[j->stmt];
		if (s->flags & SQLSCAN_TX_BEGIN) {
			if (!j->seg_open || j->seg_end != NULL)
				j->seg_begin = s;
		} else if (s->flags & SQLSCAN_TX_COMMIT) {
			if (j->seg_open)
				j->seg_end = s;
		} else if ((s->flags & SQLSCAN_TX_SET) && (!j->seg_open ||
		    j->seg_end != NULL))
			run_tx_set(j, s);	/* opens the next one */
		else
			break;
		j->stmt++;
	}
	if (j->stmt == sc->n_stmts) {
		run_bookkeeping(j);
		return;
	}
	s = &sc->stmts[j->stmt];
	if (!j->prepared && run_needs_prepare(j, s)) {
		run_prepare(j, s);
		return;
	}
	j->prepared = 0;
	pre = j->tx ? run_segment_start(j, text) : xstrdup("");
	pre = run_witness(j, pre);
	/* BEGIN and SET LOCAL travel with the statement: one round trip less
	 * per migration; error positions are shifted back. */
	sql = xprintf("%s%.*s", pre, (int)s->len, text + s->offset);
	j->prefix_len = strlen(pre);
	j->sent = s;
	j->stmt++;
	job_query_discard(j, sql, run_stmt);
	free(pre);
	free(sql);
}

/* Every statement ran: the bookkeeping, in one round trip. */
static void
run_bookkeeping(struct job *j)
{
	struct errlist	 sql = { NULL, 0 };
	const char	*text;
	char		*begin, *all, *s;

	run_section(j, &text);
	if (!j->tx)
		begin = xstrdup("BEGIN; ");
	else if (!j->seg_open) {
		/* Nothing ran yet (a merge revision, say): begin here. */
		s = run_begin(j, text);
		all = run_tx_sets(j, text);
		begin = xprintf("%s; %s", s, all);
		free(s);
		free(all);
	} else
		begin = xstrdup("");
	begin = run_witness(j, begin);
	book_step_sql(j, text, 0, SQLSCAN_SESSION_ALL, &sql);
	all = book_joined(&sql);
	s = xprintf("%s%s%s", begin, all, j->tx ? "" : migrate_reset_sql(j) +
	    2);
	j->sent = NULL;
	j->seg_end = NULL;
	job_query(j, s, 0, NULL, run_step_done);
	errlist_clear(&sql);
	free(begin);
	free(all);
	free(s);
}

/* Whether a step may go as one pipeline: COPY, which needs the simple
 * protocol's flow, goes statement by statement. */
int
run_pipelined(const char *text)
{
	const char	*p;

	for (p = text; *p != '\0'; p++) {
		if (strncasecmp(p, "copy", 4) == 0)
			return (0);
	}
	return (1);
}

/* The lint findings of the plan (lint = warn or refuse) that are the
 * step's, for its history row; NULL when lint is off.  They are sorted by
 * revision once, so a plan of many steps costs no scan per step. */
static void
run_step_lint(struct job *j, const char *revision)
{
	json_t		*all = json_object_get(j->result, "lint"), *o, *a;
	const char	*rev;
	size_t		 i;

	json_decref(j->step_lint);
	j->step_lint = NULL;
	if (all == NULL)
		return;
	if (j->lint_by_rev == NULL) {
		j->lint_by_rev = json_object();
		json_array_foreach(all, i, o) {
			if ((rev = json_string_value(json_object_get(o,
			    "revision"))) == NULL)
				continue;
			if ((a = json_object_get(j->lint_by_rev, rev)) == NULL) {
				a = json_array();
				json_object_set_new(j->lint_by_rev, rev, a);
			}
			json_array_append(a, o);
		}
	}
	if ((a = json_object_get(j->lint_by_rev, revision)) != NULL)
		j->step_lint = json_incref(a);
	else
		j->step_lint = json_array();
}

/* The step's state reset, and the requester told it started. */
const struct sqlscan *
run_step_begin(struct job *j, const char **text)
{
	const struct graph_step	*st = &j->plan.steps[j->step];
	const struct migfile	*mf = revset_file(j->rs, st->idx);
	const struct sqlscan	*sc;

	sc = run_section(j, text);
	if (j->attempt == 0)
		j->attempt = 1;
	if (j->rnd == 0)
		j->rnd = (unsigned int)getpid() ^ (unsigned int)(migd_now() *
		    1e6);
	j->holders_asked = 0;
	free(j->waited_for);
	j->waited_for = NULL;
	run_step_lint(j, mf->revision);
	j->stmt = 0;
	j->prefix_len = 0;
	j->sent = NULL;
	j->ran_sql = 1;
	j->segment = j->seg_committed = 0;
	/* An atomic run's steps share the transaction its first one began. */
	j->seg_open = j->atomic && j->step > 0;
	j->seg_end_sent = j->seg_end_line = 0;
	j->seg_begin = j->seg_end = NULL;
	j->seg_sets = NULL;
	j->n_seg_sets = 0;
	free(j->mark_id);
	j->mark_id = NULL;
	j->conc_timeouts = j->prepared = j->clean_fail = 0;
	j->leftover_failed = 0;
	free(j->invalid_before);
	j->invalid_before = NULL;
	errlist_clear(&j->leftovers);
	j->tx = revset_transactional(j->rs, st->idx, st->dir == GRAPH_UP);
	j->segments = j->tx ? revset_segments(sc, NULL) : 0;
	free(j->copy_refused);
	j->copy_refused = NULL;
	j->witness = 0;
	j->notices = j->notices_dropped = 0;
	pool_set_notice(j->pc, run_notice, j);
	j->step_t0 = migd_now();
	j->step_wall = migrate_wall();
	run_notify(j, "started", json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, "
	    "s:b, s:I, s:i}", "revision", mf->revision, "message", mf->message,
	    "file", run_file(j), "direction", st->dir == GRAPH_UP ? "up" :
	    "down", "index", (json_int_t)j->step + 1, "total",
	    (json_int_t)j->plan.n_steps, "transactional", j->tx,
	    "transactions", (json_int_t)(j->tx ? (j->segments > 1 ?
	    j->segments : 1) : 0), "attempt", j->attempt));
	return (sc);
}

/* Starts a step.  A transactional one sends its BEGIN with its first
 * statement; one in several transactions, or a bare one, first writes a
 * dirty mark that its last transaction completes.  An atomic run's steps
 * go in batches (run_batch). */
void
run_step(struct job *j)
{
	const struct sqlscan	*sc;
	const char		*text;
	char			*sql, *mark, *set, *begin, *witness, *sets;

	if (job_cancelled(j))
		return;
	sc = run_step_begin(j, &text);
	if (run_batchable(j, j->step)) {
		run_batch(j);
		return;
	}
	/* Not pipelined: its reset is whole, and it may make an event
	 * trigger. */
	j->evt = RUN_EVT_UNKNOWN;
	if (j->tx && j->segments <= 1) {
		run_stmt(j, NULL);	/* COPY: statement by statement */
		return;
	}
	/* Marked dirty first: a crash part-way leaves the mark; the lock's
	 * witness is taken with it. */
	witness = book_witness_sql(j);
	mark = book_step_history_sql(j, 0, 1, 0, NULL, "started; not "
	    "finished");
	if (j->tx) {
		/* In with the first transaction: if that fails, so does it. */
		j->stmt = run_opening(j, sc, 0);
		begin = run_begin(j, text);
		sets = run_tx_sets(j, text);
		set = book_timeouts(j, 1);
		sql = xprintf("%s; %s%s%s; %s RETURNING id", begin, sets, set,
		    witness, mark);
		free(begin);
		free(sets);
		j->seg_open = 1;
		j->segment = 1;
	} else {
		set = book_timeouts(j, 0);
		sql = xprintf("%s%s; %s RETURNING id", set, witness, mark);
		j->session_set = 1;
	}
	j->witness = 1;
	job_query(j, sql, 0, NULL, run_stmt);
	free(witness);
	free(set);
	free(mark);
	free(sql);
}


