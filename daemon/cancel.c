/*
 * Cancelling a run: the statement in progress is cancelled on the server
 * (PQcancel, off the event loop), and the run fails as it would on any error,
 * rolling back or leaving a dirty mark.
 */
#include <sys/queue.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "config.h"
#include "migd.h"
#include "engine.h"

/* Sends the server's cancel request off the event loop: PQcancel opens a
 * connection of its own and waits for it. */
static void *
cancel_thread(void *arg)
{
	PGcancel	*cancel = arg;
	char		 err[256];

	if (!PQcancel(cancel, err, sizeof err))
		log_warnx("could not cancel the statement: %s", err);
	PQfreeCancel(cancel);
	return (NULL);
}

/* Cancels what the server is running for a job, if anything. */
static void
cancel_statement(struct job *j)
{
	PGconn		*pg;
	PGcancel	*cancel;
	pthread_attr_t	 attr;
	pthread_t	 t;

	if (j->pc == NULL || j->next == NULL ||
	    (pg = pool_conn_pg(j->pc)) == NULL)
		return;
	/* A pipeline's statements not yet sent never run: one that fails
	 * stands for them (the server's cancel may fall between two). */
	(void)pool_pipeline_stop(j->pc);
	if ((cancel = PQgetCancel(pg)) == NULL)
		return;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, cancel_thread, cancel) != 0) {
		log_warnx("%scould not cancel the statement: no thread",
		    j->db->tag);
		PQfreeCancel(cancel);
	}
	pthread_attr_destroy(&attr);
}

/* Whether a run was cancelled; if so it fails (and rolls back) now.
 * Called between the queries of a run. */
int
job_cancelled(struct job *j)
{
	if (j->cancelled_by == NULL)
		return (0);
	int	 kept = j->done != NULL && json_array_size(j->done) > 0 &&
		    !j->atomic;

	job_fail(j, MIGD_ERR_CANCELLED, "cancelled", json_pack("{s:o}",
	    "done", kept ? json_incref(j->done) : json_array()),
	    "cancelled by %s%s", j->cancelled_by, kept ? "; the migrations "
	    "before it stay applied" : j->atomic && j->done != NULL ?
	    "; the whole run rolled back (atomic): nothing was applied" :
	    "; nothing was applied");
	return (1);
}

/*
 * cancel: stops the running run (or, with requester_pid, that client's run,
 * running or queued).  A statement in progress is cancelled on the server;
 * the step rolls back, or goes dirty if it ran outside a transaction.
 */
void
migrate_cancel(struct request *req)
{
	const struct peer	*peer = control_peer(req->client);
	json_t			*pid = json_object_get(req->rpc.params,
				    "requester_pid");
	struct engine		*e = req->db->engine;
	struct job		*j, *run = TAILQ_FIRST(&e->queue);
	const char		*rev = NULL;

	TAILQ_FOREACH(j, &e->queue, entry) {
		if (pid == NULL || (json_int_t)control_peer(
		    j->req->client)->pid == json_integer_value(pid))
			break;
	}
	if (j == NULL) {
		/* Named in a fleet: a cancel sent to the wrong --db says so. */
		cmd_error(req, MIGD_ERR_STATE, "not_running", NULL, "%s%s%s",
		    pid != NULL ? "that process has no run here" :
		    "no migration is running", req->db->cf->line != 0 ?
		    " on " : "", req->db->cf->line != 0 ? req->db->name : "");
		return;
	}
	if (j == run && (j->ending || j->err_msg != NULL)) {
		cmd_error(req, MIGD_ERR_STATE, "not_running", NULL, "the run is "
		    "already ending");
		return;
	}
	if (j != run) {
		/* Queued: it never starts. */
		TAILQ_REMOVE(&e->queue, j, entry);
		j->mutating = 0;
		job_set_error(j, MIGD_ERR_CANCELLED, "cancelled", NULL,
		    "cancelled by %s (pid %ld) before it started; nothing ran",
		    peer->user, (long)peer->pid);
		job_reply(j);
		cmd_reply(req, json_pack("{s:s}", "cancelled", "queued"));
		return;
	}
	if (j->cancelled_by == NULL)
		j->cancelled_by = xprintf("%s (pid %ld)", peer->user,
		    (long)peer->pid);
	if (j->done != NULL && j->step < j->plan.n_steps)
		rev = graph_id(j->rs->graph, j->plan.steps[j->step].idx);
	log_info("%s%s: cancel asked by %s", j->db->tag, rev ? rev : "run",
	    j->cancelled_by);
	cmd_reply(req, json_pack("{s:s, s:s?, s:o?}", "cancelled", "running",
	    "revision", rev, "transactional", rev != NULL ?
	    json_boolean(j->tx || j->atomic) : NULL));
	if (j->next != NULL)
		cancel_statement(j);	/* its failure ends the run */
	else if (!j->recording)
		job_cancelled(j);	/* waiting for the lock or a connection */
}
