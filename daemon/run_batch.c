/*
 * Steps in pipelines: a transactional step with its bookkeeping in one
 * round trip, an atomic run's steps up to RUN_BATCH_MAX at a time; which
 * query failed, and the event-trigger question that decides the reset.
 */
#include <sys/queue.h>

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "config.h"
#include "migd.h"
#include "engine.h"

/* Steps of an atomic run sent in one pipeline: a round trip for as many,
 * and a stop asked for (migd shutting down, which rolls the run back) waits
 * for no more than that.  A run of one transaction per migration sends one
 * at a time: a stop lets the running one commit, and no other begin. */
#define RUN_BATCH_MAX	32

/* Whether step i may go as one pipeline, with its neighbours: one
 * transaction, and no COPY (which needs the simple protocol's flow). */
int
run_batchable(struct job *j, size_t i)
{
	const struct graph_step	*st = &j->plan.steps[i];
	const struct migfile	*mf = revset_file(j->rs, st->idx);
	int			 up = st->dir == GRAPH_UP;

	return (revset_transactional(j->rs, st->idx, up) &&
	    revset_segments(revset_section(j->rs, st->idx, up), NULL) <= 1 &&
	    run_pipelined(up ? mf->up : mf->down));
}

/* The rollback of an atomic run that met an event trigger it made: the
 * run from its first step again, the whole reset after any step that ran
 * code (an event trigger's code may leave session state). */
static void
run_batch_redo(struct job *j, PGresult *res)
{
	if (!run_res_ok(res)) {
		job_ok(j, res);		/* the failure, said as any other */
		return;
	}
	if (job_cancelled(j))
		return;
	if (j->e->draining) {
		job_fail(j, MIGD_ERR_SHUTTING_DOWN, "shutting_down",
		    json_pack("{s:[]}", "done"), "migd is shutting down: the "
		    "atomic run rolled back to run again; nothing was applied");
		return;
	}
	j->step = 0;
	j->evt = RUN_EVT_UNKNOWN;
	json_array_clear(j->done);
	errlist_clear(&j->hist);
	run_step(j);
}

/* An atomic batch's steps went without the reset where an event trigger
 * (made by a step before them, in this run) may have left session state
 * for them: the run is rolled back and run again, carefully. */
static void
run_batch_undone(struct job *j)
{
	log_info("%san event trigger appeared during the atomic run (made by "
	    "one of its migrations): the run rolled back and runs again with "
	    "the whole session reset after every migration that runs code",
	    j->db->tag);
	j->evt_verify = 0;
	j->evt_careful = 1;
	job_query(j, "ROLLBACK", 0, NULL, run_batch_redo);
}

/* A query of a batch ended well: at a step's last, that step is done
 * (said as it happens: the server flushes there) and the next one has
 * begun. */
static void
run_batch_progress(struct pool_conn *pc, size_t i, void *arg)
{
	struct job	*j = arg;
	const char	*text;
	double		 t0 = migd_now(), wall = migrate_wall();

	(void)pc;
	if (j->pipe_ends == NULL || !j->pipe_ends[i] || j->pipe_step[i] !=
	    j->step)
		return;
	run_step_ok(j);
	if (j->step < j->batch_end) {
		run_step_begin(j, &text);
		/* The server went on as the step before it ended, not once
		 * that step's row and progress were made. */
		j->step_t0 = t0;
		j->step_wall = wall;
	}
}

/* A batch came back: the first failure says which step and which query
 * (migd's BEGIN and timeouts, the file's statement, or the step's end); else
 * the next steps, or an atomic run's COMMIT. */
static void
run_batch_done(struct job *j, PGresult *res)
{
	const char	*text;
	ssize_t		 failed = pool_pipeline_failed(j->pc);

	/* The question for event triggers: asked after a step's COMMIT, its
	 * failure (a cancel) leaves the step done and the answer unknown; in
	 * an atomic run, asked inside the run's transaction, it fails the
	 * run as any query would. */
	if (j->pipe_evt >= 0 && failed == j->pipe_evt && !j->atomic)
		failed = -1;
	else if (j->pipe_evt >= 0 && failed < 0 && res != NULL &&
	    PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		j->evt = strcmp(PQgetvalue(res, 0, 0), "f") == 0 ?
		    RUN_EVT_NONE : RUN_EVT_SOME;
	j->pipe_evt = -1;
	if (failed >= 0 || j->copy_refused != NULL)
		j->evt = RUN_EVT_UNKNOWN;	/* a rollback may bring one back */
	if (j->evt_verify && failed < 0 && j->copy_refused == NULL &&
	    j->evt != RUN_EVT_NONE) {
		run_batch_undone(j);
		return;
	}
	j->evt_verify = 0;
	if (failed < 0 && j->copy_refused != NULL) {
		if (j->step == j->batch_end) {
			/* Heard of as done: the batch's last step it is. */
			j->step--;
			json_array_remove(j->done, json_array_size(j->done) -
			    1);
		}
		run_section(j, &text);
		run_step_failed(j, NULL, NULL, text);
		return;
	}
	if (failed >= 0) {
		if ((size_t)failed < j->pipe_own) {
			job_ok(j, res);
			return;
		}
		j->step = j->pipe_step[failed];
		j->prefix_len = 0;	/* positions count in the statement */
		j->sent = j->pipe_map[failed];
		run_section(j, &text);
		run_step_failed(j, res, j->sent, text);
		return;
	}
	if (j->step < j->batch_end) {
		/* Every query ended well, but not every step was heard of. */
		job_fail(j, MIGD_ERR_INTERNAL, "internal", NULL, "the run's "
		    "pipeline ended at step %zu of %zu", j->step + 1,
		    j->batch_end);
		return;
	}
	if (j->step == j->plan.n_steps && j->atomic)
		run_atomic_commit(j);
	else if (j->step == j->plan.n_steps)
		run_finish(j);
	else if (!run_stopping(j))
		run_step(j);
}

/*
 * Steps from the current one (an atomic run's, up to RUN_BATCH_MAX; else
 * one) in one pipeline: each
 * with its BEGIN and timeouts (an atomic run's first only), its lock
 * witness, its statements and its end (the session put back, the timeouts,
 * the checks, and but in an atomic run the version and history rows and
 * COMMIT), the server flushing after each step so that its end is heard as
 * it happens.  A failure stops the server until the pipeline's end: no step
 * after it runs.  An atomic run's rows and COMMIT follow once
 * (run_atomic_commit).
 */
void
run_batch(struct job *j)
{
	struct errlist		 sql = { NULL, 0 };
	const struct graph_step	*st;
	const struct sqlscan	*sc;
	const struct migfile	*mf;
	const char		*text;
	unsigned char		*discard;
	size_t			 first = j->step, s, i, k, n0, opening;
	const struct sqlscan	*next;
	int			 evt = j->evt, session, code = 0;
	/* In an atomic run, the steps of a batch after one that ran code go
	 * on the word of the question before it, checked after it (an event
	 * trigger made in the run undoes the run: run_batch_done). */
	int			 hope = j->atomic && !j->evt_careful &&
				    evt == RUN_EVT_NONE;

	free(j->pipe_map);
	free(j->pipe_step);
	free(j->pipe_ends);
	j->pipe_map = NULL;
	j->pipe_step = NULL;
	j->pipe_ends = NULL;
	j->pipe_own = 0;
	for (s = first; s < j->plan.n_steps; s++) {
		if (s > first && (!j->atomic || s - first == RUN_BATCH_MAX ||
		    !run_batchable(j, s)))
			break;
		st = &j->plan.steps[s];
		mf = revset_file(j->rs, st->idx);
		sc = revset_section(j->rs, st->idx, st->dir == GRAPH_UP);
		text = st->dir == GRAPH_UP ? mf->up : mf->down;
		n0 = sql.n;
		opening = 0;
		if (!j->seg_open || !j->atomic) {
			opening = run_opening(j, sc, 0);
			errlist_take(&sql, run_begin(j, text));
			for (i = 0; i < j->n_seg_sets; i++)
				errlist_add(&sql, "%.*s", (int)j->seg_sets[i].len,
				    text + j->seg_sets[i].offset);
			j->seg_sets = NULL;
			j->n_seg_sets = 0;
			book_timeouts_witness_sql(j, &sql);
			j->seg_open = 1;
			if (s == first)
				j->pipe_own = sql.n;
		} else if (s == first || !j->guard_retake)
			/* The witness, unless the step before took it again. */
			errlist_take(&sql, book_witness_sql(j));
		k = sql.n;	/* the file's statements, from here */
		for (i = opening; i < sc->n_stmts; i++) {
			if (sc->stmts[i].flags & (SQLSCAN_TX_BEGIN |
			    SQLSCAN_TX_COMMIT))
				continue;
			errlist_add(&sql, "%.*s", (int)sc->stmts[i].len, text +
			    sc->stmts[i].offset);
		}
		j->step = s;	/* book_step_sql's step */
		j->guard_retake = j->atomic && s + 1 < j->plan.n_steps &&
		    s + 1 - first < RUN_BATCH_MAX && run_batchable(j, s + 1);
		/* The reset of what its SQL may have changed, or of all when
		 * an event trigger may run code in it; code it runs may have
		 * made one, so that is unknown again after it. */
		session = evt == RUN_EVT_NONE || hope ? sc->session :
		    SQLSCAN_SESSION_ALL;
		if (code && session != SQLSCAN_SESSION_ALL)
			j->evt_verify = 1;
		if (sc->session & SQLSCAN_SESSION_CODE) {
			evt = RUN_EVT_UNKNOWN;
			code = 1;
		}
		book_step_sql(j, text, 1, session, &sql);
		j->pipe_map = xreallocarray(j->pipe_map, sql.n,
		    sizeof *j->pipe_map);
		j->pipe_step = xreallocarray(j->pipe_step, sql.n,
		    sizeof *j->pipe_step);
		j->pipe_ends = xrealloc(j->pipe_ends, sql.n);
		for (i = n0; i < sql.n; i++) {
			j->pipe_map[i] = NULL;	/* migd's own */
			j->pipe_step[i] = s;
			j->pipe_ends[i] = i + 1 == sql.n;
		}
		for (i = opening; i < sc->n_stmts; i++) {
			if (sc->stmts[i].flags & (SQLSCAN_TX_BEGIN |
			    SQLSCAN_TX_COMMIT))
				continue;
			j->pipe_map[k++] = &sc->stmts[i];
		}
	}
	/* Asked only when unknown and the next step would go without the
	 * reset: the question costs as much server time as the reset (a
	 * catalog query, 40 us). */
	next = s < j->plan.n_steps ? revset_section(j->rs,
	    j->plan.steps[s].idx, j->plan.steps[s].dir == GRAPH_UP) : NULL;
	j->evt = evt;
	j->pipe_evt = -1;
	if (j->evt_verify || (evt == RUN_EVT_UNKNOWN && next != NULL &&
	    !(next->session & SQLSCAN_SESSION_CODE) && run_batchable(j, s))) {
		/* After the COMMIT (an atomic run's: before its last round
		 * trip); its answer is the pipeline's last result. */
		j->pipe_evt = (ssize_t)sql.n;
		errlist_add(&sql, "%s", book_evt_sql());
		j->pipe_map = xreallocarray(j->pipe_map, sql.n,
		    sizeof *j->pipe_map);
		j->pipe_step = xreallocarray(j->pipe_step, sql.n,
		    sizeof *j->pipe_step);
		j->pipe_ends = xrealloc(j->pipe_ends, sql.n);
		j->pipe_map[sql.n - 1] = NULL;
		j->pipe_step[sql.n - 1] = s - 1;
		j->pipe_ends[sql.n - 1] = 0;
	}
	j->guard_retake = 0;
	j->step = first;
	j->batch_end = s;
	j->segment = 1;
	j->stmt = 0;
	/* The file's statements' rows are dropped as they arrive. */
	discard = xcalloc(sql.n + 1, 1);
	for (i = 0; i < sql.n; i++)
		discard[i] = j->pipe_map[i] != NULL;
	pool_pipeline_progress(j->pc, run_batch_progress, j);
	job_pipeline(j, &sql, discard, j->pipe_ends, run_batch_done);
	free(discard);
	errlist_clear(&sql);
}
