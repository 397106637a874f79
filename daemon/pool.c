/*
 * A small pool of PostgreSQL connections driven asynchronously on the event
 * loop: PQconnectStartParams/PQconnectPoll with the socket re-read at every
 * step, PQsendQuery results drained with PQconsumeInput/PQisBusy.  Lost
 * connections come back by themselves with capped exponential backoff.
 *
 * A pool either keeps its pool_size connections open (one database, no
 * max_connections_total, no idle_close: as migd always did) or opens them on
 * demand, within the daemon's budget (struct pool_budget: every database's
 * connections open or opening, at most max_connections_total), and closes
 * one idle for idle_close.
 */
#include <sys/queue.h>

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "conninfo.h"
#include "migd.h"
#include "pool_int.h"

static void	pool_open(struct pool *);
static void	pool_renew(struct pool_conn *);
static void	pool_io(evutil_socket_t, short, void *);
static void	pool_pipeline_input(struct pool_conn *);
static int	pool_pipeline_send(struct pool_conn *);
static void	pool_pipe_clear(struct pool_conn *);
static int	pool_copy(struct pool_conn *, PGresult *);

/* A pipeline's queries are given to libpq this many bytes at a time, each
 * time only if the server took the ones before. */
#define POOL_PIPE_CHUNK	65536


/* Keeps the latest error, on one line, for status and the log; a server's
 * "database ... does not exist" may quote a conninfo nested in dbname. */
void
pool_set_error(struct pool *p, const char *msg)
{
	const char	*in;
	char		*s, *out, *scrubbed;

	/* libpq's messages span lines with tabs: fold blanks into one space,
	 * and end a sentence a line ends before another begins. */
	msg = msg && *msg ? msg : "unknown error";
	s = out = xmalloc(strlen(msg) * 2 + 1);
	for (in = msg; *in != '\0'; in++) {
		if (*in == '\n' && out != s && isalnum((unsigned char)out[-1]) &&
		    isupper((unsigned char)in[1 + strspn(in + 1, " \t")]))
			*out++ = '.';
		if (*in == '\n' || *in == '\t' || *in == '\r' || *in == ' ') {
			if (out != s && out[-1] != ' ')
				*out++ = ' ';
		} else
			*out++ = *in;
	}
	while (out != s && out[-1] == ' ')
		out--;
	*out = '\0';
	scrubbed = conninfo_scrub(p->conninfo, s);
	free(s);
	s = scrubbed;
	if (p->last_error == NULL || strcmp(p->last_error, s) != 0)
		log_warnx("%s%s", p->tag, s);
	free(p->last_error);
	p->last_error = s;
}

/* Watches the connection's socket for the events libpq asked for. */
void
pool_watch(struct pool_conn *pc, short what)
{
	evutil_socket_t	 fd = PQsocket(pc->pg);

	if (pc->io != NULL && (pc->fd != fd || pc->want != what)) {
		event_free(pc->io);
		pc->io = NULL;
	}
	if (pc->io == NULL) {
		pc->io = event_new(pc->pool->base, fd, what | EV_PERSIST,
		    pool_io, pc);
		pc->fd = fd;
		pc->want = what;
		event_add(pc->io, NULL);
	}
}

/* Sends what libpq holds; the rest goes when the socket is writable.
 * 1 when some is left, 0 when all went, -1 when the connection failed. */
static int
pool_flush(struct pool_conn *pc)
{
	int	 r;

	if ((r = PQflush(pc->pg)) == 1) {
		pc->flushing = 1;
		pool_watch(pc, EV_READ | EV_WRITE);
	}
	return (r);
}


/* Forgets the server connection and its watchers. */
void
pool_drop(struct pool_conn *pc)
{
	if (pc->io != NULL) {
		event_free(pc->io);
		pc->io = NULL;
	}
	evtimer_del(pc->timer);
	if (pc->token && pc->pg != NULL && pc->pool->budget != NULL &&
	    pc->pool->budget->cap > 0) {
		/* Under a cap, the slot comes back when the server's backend
		 * is gone (pool_budget_closing), not when migd hangs up. */
		pool_token(pc, 0);
		pool_budget_closing(pc->pool->budget, pc->pg);
		pc->pg = NULL;
	}
	if (pc->pg != NULL) {
		PQfinish(pc->pg);
		pc->pg = NULL;
	}
	if (pc->token) {
		pool_token(pc, 0);
		pool_budget_put(pc->pool->budget);
	}
	if (pc->result != NULL) {
		PQclear(pc->result);
		pc->result = NULL;
	}
	pool_check_drop(pc);
	pool_check_end(pc);
	pc->fd = -1;
	pc->state = PC_DOWN;
	pool_pipe_clear(pc);
	pc->server_pid = 0;
	pc->pooled = 0;
	pc->pipe_progress = NULL;
	pc->pipe_progress_arg = NULL;
	free(pc->copy_refused);
	pc->copy_refused = NULL;
	free(pc->copy_in);
	pc->copy_in = NULL;
	pc->notice_cb = NULL;
	pc->notice_arg = NULL;
}

/* Connection lost or failed: tell the query's owner, retry after a pause. */
void
pool_fail(struct pool_conn *pc, const char *why)
{
	struct timeval	 tv;
	pool_result_cb	 cb = pc->cb;
	void		*arg = pc->cb_arg;
	int		 was_busy = pc->state == PC_BUSY;
	pool_check_cb	 done = pc->check.done;
	void		*done_arg = pc->check.done_arg;

	/* An on-demand pool's idle connection lost (a server restart) is no
	 * failure to report: the next request opens another. */
	if (pc->state == PC_IDLE && !pool_eager(pc->pool))
		log_info("%san idle connection was lost (%s); the next "
		    "request opens another", pc->pool->tag, why != NULL ? why :
		    "");
	else
		pool_set_error(pc->pool, why);
	pool_drop(pc);
	pc->cb = NULL;
	pc->cb_arg = NULL;
	pc->check.done = NULL;
	pc->check.done_arg = NULL;
	if (cb == pool_check_result)
		cb = NULL;	/* the check's own query: its owner hears */
	if (was_busy && cb != NULL)
		cb(pc, NULL, arg);	/* NULL result: the connection is gone */
	else if (was_busy && done != NULL)
		done(pc, "lost the connection to PostgreSQL", done_arg);
	if (pc->state != PC_DOWN || evtimer_pending(pc->timer, NULL))
		return;
	tv.tv_sec = pc->backoff_ms / 1000;
	tv.tv_usec = (pc->backoff_ms % 1000) * 1000;
	evtimer_add(pc->timer, &tv);
	pc->backoff_ms *= 2;
	if (pc->backoff_ms > POOL_BACKOFF_MAX_MS)
		pc->backoff_ms = POOL_BACKOFF_MAX_MS;
}

/* Whether the pool keeps pool_size connections open (one database, no cap,
 * no idle_close: as ever), rather than opening them on demand. */
int
pool_eager(struct pool *p)
{
	return (p->budget == NULL || (p->budget->cap == 0 &&
	    p->budget->idle_ms == 0));
}

/* How many more connections the pool's waiters need, beyond those opening
 * or about to retry. */
int
pool_need(struct pool *p)
{
	struct pool_waiter	*w;
	int			 n = 0, i;

	TAILQ_FOREACH(w, &p->waiters, entry)
		n++;
	for (i = 0; i < p->size; i++) {
		switch (p->conns[i]->state) {
		case PC_CONNECTING:
		case PC_CHECKING:
			n--;
			break;
		case PC_DOWN:
			if (evtimer_pending(p->conns[i]->timer, NULL))
				n--;
			break;
		default:
			break;
		}
	}
	return (n);
}

/* An idle connection of an on-demand pool closes after idle_close. */
static void
pool_idle_start(struct pool_conn *pc)
{
	struct timeval	 tv;
	long		 ms = pc->pool->budget != NULL ?
			    pc->pool->budget->idle_ms : 0;

	struct pool_budget	*b = pc->pool->budget;

	if (b != NULL)
		pc->idle_since = ++b->clock;
	if (b != NULL && b->cap > 0 && TAILQ_EMPTY(&pc->pool->waiters) &&
	    !TAILQ_EMPTY(&b->waiting) && TAILQ_FIRST(&b->waiting) !=
	    pc->pool) {
		/* Another database waits for a slot of the cap: this one
		 * is not needed here, so it closes for it. */
		log_debug("%smax_connections_total (%d) reached: closing an "
		    "idle connection for another database", pc->pool->tag,
		    b->cap);
		pool_drop(pc);
		return;
	}
	if (pool_eager(pc->pool) || ms <= 0)
		return;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(pc->timer, &tv);
}

/* The timer: start a connection after backoff, or give up a slow one. */
static void
pool_timer(evutil_socket_t fd, short events, void *arg)
{
	struct pool_conn	*pc = arg;

	(void)fd;
	(void)events;
	if (pc->state == PC_CONNECTING || pc->state == PC_CHECKING) {
		pc->pool->permanent = 0;
		pc->pool->refused = 0;
		pool_fail(pc, pc->state == PC_CONNECTING ? "timeout expired "
		    "while connecting" : "timeout expired while checking that "
		    "the connection has a server session of its own");
		return;
	}
	if (pc->state == PC_BUSY && pc->check.done != NULL) {
		pool_check_failed(pc, "timeout expired");
		return;
	}
	if (pc->state == PC_IDLE) {
		/* Idle for idle_close: give its slot back to the budget. */
		log_debug("%sclosing a connection idle for %ld ms",
		    pc->pool->tag, pc->pool->budget->idle_ms);
		pool_drop(pc);
		return;
	}
	if (pc->state == PC_DOWN && (pool_eager(pc->pool) ||
	    pool_need(pc->pool) > 0))
		pool_connect(pc);
}

/* A connection became usable. */
void
pool_ready(struct pool_conn *pc)
{
	struct pool	*p = pc->pool;
	char		*db;

	evtimer_del(pc->timer);
	pool_check_end(pc);
	pc->state = PC_IDLE;
	pc->backoff_ms = POOL_BACKOFF_MIN_MS;
	if (!p->ever_connected || p->last_error != NULL) {
		db = conninfo_scrub(p->conninfo, PQdb(pc->pg));
		log_info("%sconnected to %s on %s:%s (server %s)",
		    p->tag, db, PQhost(pc->pg), PQport(pc->pg),
		    PQparameterStatus(pc->pg, "server_version"));
		migd_notify("STATUS=connected to database %s", db);
		free(db);
	}
	p->ever_connected = 1;
	p->permanent = 0;
	p->refused = 0;
	free(p->last_error);
	p->last_error = NULL;
	pool_watch(pc, EV_READ);
	pool_idle_start(pc);
	event_active(p->grant_ev, EV_TIMEOUT, 0);
}

/*
 * A connection attempt failed: keep why, as the default verbosity says it,
 * and whether retrying can help (pqerr_startup).  The pool retries either
 * way, but requests waiting for a connection fail at once when it cannot.
 */
static void
pool_connect_failed(struct pool_conn *pc, const char *msg)
{
	struct pool	*p = pc->pool;
	char		*shown;

	p->permanent = pqerr_startup(msg, &shown, p->sqlstate);
	p->refused = 0;
	pool_fail(pc, shown);
	free(shown);
	if (p->permanent)
		event_active(p->grant_ev, EV_TIMEOUT, 0);
}

/* One PQconnectPoll step; libpq may change the socket between steps. */
static void
pool_connect_step(struct pool_conn *pc)
{
	switch (PQconnectPoll(pc->pg)) {
	case PGRES_POLLING_READING:
		pool_watch(pc, EV_READ);
		break;
	case PGRES_POLLING_WRITING:
		pool_watch(pc, EV_WRITE);
		break;
	case PGRES_POLLING_OK:
		if (pc->io != NULL) {
			event_free(pc->io);
			pc->io = NULL;
		}
		PQsetnonblocking(pc->pg, 1);
		/* Verbose was for the start-up's SQLSTATE (pool_connect_failed). */
		PQsetErrorVerbosity(pc->pg, PQERRORS_DEFAULT);
		pool_check_start(pc);
		break;
	default:
		pool_connect_failed(pc, PQerrorMessage(pc->pg));
		break;
	}
}

/* Notices and warnings of the server: to the sink a run set for its step,
 * else (migd's own queries) to the log at debug level. */
static void
pool_notice(void *arg, const PGresult *res)
{
	struct pool_conn	*pc = arg;
	const char		*sev, *msg;

	if (pc->notice_cb != NULL) {
		pc->notice_cb(pc, res, pc->notice_arg);
		return;
	}
	pqerr_notice(res, &sev, &msg);
	log_debug("%s%s: %s", pc->pool->tag, sev, msg);
}

/* Starts a non-blocking connection with the current conninfo. */
void
pool_connect(struct pool_conn *pc)
{
	const char	*keys[] = { "dbname", "fallback_application_name",
			    NULL };
	const char	*vals[] = { pc->pool->conninfo, "migd", NULL };
	struct timeval	 tv;
	int		 token = pc->token;

	/* A reconnect keeps its slot of the budget; a new one takes one, or
	 * waits in the budget's queue (pool_budget_wake calls again). */
	pool_token(pc, 0);
	pool_drop(pc);
	pool_token(pc, token);
	if (!pc->token) {
		if (!pool_budget_take(pc->pool->budget)) {
			pool_budget_wait(pc->pool);
			return;
		}
		pool_token(pc, 1);
	}
	pc->generation = pc->pool->generation;
	pc->retire = 0;
	pc->pg = PQconnectStartParams(keys, vals, 1);
	if (pc->pg == NULL) {
		pool_fail(pc, "out of memory");
		return;
	}
	if (PQstatus(pc->pg) == CONNECTION_BAD) {
		pool_connect_failed(pc, PQerrorMessage(pc->pg));
		return;
	}
	PQsetNoticeReceiver(pc->pg, pool_notice, pc);
	/* libpq keeps a failed start-up's SQLSTATE to itself, except in a
	 * verbose message; pool_ready sets the default back. */
	PQsetErrorVerbosity(pc->pg, PQERRORS_VERBOSE);
	pc->state = PC_CONNECTING;
	tv.tv_sec = pc->pool->connect_timeout;
	tv.tv_usec = 0;
	evtimer_add(pc->timer, &tv);
	pool_watch(pc, EV_WRITE);
}


/* Hands the query's outcome to its owner; the owner clears the result. */
static void
pool_complete(struct pool_conn *pc)
{
	pool_result_cb	 cb = pc->cb;
	void		*arg = pc->cb_arg;
	PGresult	*res = pc->result;

	pc->cb = NULL;
	pc->cb_arg = NULL;
	pc->result = NULL;
	free(pc->copy_in);	/* a statement before the COPY failed */
	pc->copy_in = NULL;
	pool_watch(pc, EV_READ);
	if (cb != NULL)
		cb(pc, res, arg);
	else
		PQclear(res);
}

/* Ends a COPY FROM STDIN, with why it failed or NULL, and sends what libpq
 * holds; 0, or -1 when the connection failed. */
static int
pool_copy_end(struct pool_conn *pc, const char *why)
{
	if (PQputCopyEnd(pc->pg, why) != 1 || pool_flush(pc) == -1) {
		pool_fail(pc, PQerrorMessage(pc->pg));
		return (-1);
	}
	return (0);
}

/* Sends migd's own data to the query's first COPY FROM STDIN (pool_query_copy),
 * in pieces libpq's int lengths hold; 0, or -1 when the connection failed. */
static int
pool_copy_in(struct pool_conn *pc)
{
	size_t	 len = strlen(pc->copy_in), off, k;
	int	 r = 1;

	for (off = 0; off < len && r == 1; off += k) {
		k = len - off < (1 << 20) ? len - off : (1 << 20);
		r = PQputCopyData(pc->pg, pc->copy_in + off, (int)k);
	}
	free(pc->copy_in);
	pc->copy_in = NULL;
	if (r != 1) {
		pool_fail(pc, PQerrorMessage(pc->pg));
		return (-1);
	}
	return (pool_copy_end(pc, NULL));
}

/*
 * A COPY to or from migd: migd's own data goes to the first COPY FROM STDIN
 * of a query that brought some (pool_query_copy).  Any other has no data to
 * send and wants none: a COPY FROM STDIN is ended with an error (the server
 * fails the statement), a COPY TO STDOUT's rows are read and dropped as
 * they come.  The owner learns why (pool_copy_refused).  libpq answers a
 * COPY state again on every PQgetResult, so a loop that only reads results
 * would never end.  Returns 0 to read on, 1 to wait for more input, -1 when
 * the connection failed.
 */
static int
pool_copy(struct pool_conn *pc, PGresult *res)
{
	ExecStatusType	 s = PQresultStatus(res);
	char		*buf;
	int		 n;

	PQclear(res);
	if (s == PGRES_COPY_IN && pc->copy_in != NULL)
		return (pool_copy_in(pc));
	if (pc->copy_refused == NULL)
		pc->copy_refused = xstrdup(s == PGRES_COPY_OUT ?
		    POOL_COPY_OUT_REFUSED : POOL_COPY_IN_REFUSED);
	if (s == PGRES_COPY_IN || s == PGRES_COPY_BOTH) {
		if (pool_copy_end(pc, pc->copy_refused) != 0)
			return (-1);
		if (s == PGRES_COPY_IN)
			return (0);	/* the server's error comes next */
	}
	/* COPY TO STDOUT (or what is left of COPY BOTH): drop its rows. */
	while ((n = PQgetCopyData(pc->pg, &buf, 1)) > 0)
		PQfreemem(buf);
	if (n == 0)
		return (1);
	if (n == -2) {
		pool_fail(pc, PQerrorMessage(pc->pg));
		return (-1);
	}
	return (0);
}

/*
 * Results of a pipeline: each query's results end with NULL, the sync point
 * with PGRES_PIPELINE_SYNC; after a failure the rest come back aborted.  The
 * owner gets the first error (pool_pipeline_failed says whose), else the last
 * result, once the sync point is read.  A query whose rows are not wanted
 * goes in single-row mode, set before its first result is read.
 */
static void
pool_pipeline_input(struct pool_conn *pc)
{
	PGresult	*res;

	while (!PQisBusy(pc->pg)) {
		/* Every query given so far has ended; the rest are still to be
		 * sent (libpq has nothing more to say until then). */
		if (pc->pipe_sent < pc->pipe_n && pc->pipe_done >= pc->pipe_sent)
			return;
		if ((res = PQgetResult(pc->pg)) == NULL) {
			if (pc->pipe_done < pc->pipe_n &&
			    pc->pipe_progress != NULL && pc->pipe_failed < 0)
				pc->pipe_progress(pc, pc->pipe_done,
				    pc->pipe_progress_arg);
			if (pc->pipe_done < pc->pipe_n)
				pc->pipe_done++;
			if (pc->pipe_discard != NULL &&
			    pc->pipe_done < pc->pipe_sent &&
			    pc->pipe_discard[pc->pipe_done])
				PQsetSingleRowMode(pc->pg);
			continue;
		}
		switch (PQresultStatus(res)) {
		case PGRES_PIPELINE_SYNC:
			PQclear(res);
			PQexitPipelineMode(pc->pg);
			pool_pipe_clear(pc);
			pc->pipe_progress = NULL;
			pc->pipe_progress_arg = NULL;
			pool_complete(pc);
			return;
		case PGRES_PIPELINE_ABORTED:
		case PGRES_SINGLE_TUPLE:
			PQclear(res);
			break;
		case PGRES_COPY_IN:
		case PGRES_COPY_OUT:
		case PGRES_COPY_BOTH:
			if (pool_copy(pc, res) != 0)
				return;
			break;
		case PGRES_FATAL_ERROR:
			if (pc->pipe_failed < 0) {
				pc->pipe_failed = (ssize_t)pc->pipe_done;
				PQclear(pc->result);
				pc->result = res;
			} else
				PQclear(res);
			break;
		default:
			if (pc->pipe_failed < 0) {
				PQclear(pc->result);
				pc->result = res;
			} else
				PQclear(res);
			break;
		}
	}
}

/* Reads what the server sent: results of a query, or news of its death.
 * Rows of a query in single-row mode are dropped as they come. */
static void
pool_input(struct pool_conn *pc)
{
	PGresult	*res;
	PGnotify	*n;

	if (!PQconsumeInput(pc->pg) || PQstatus(pc->pg) != CONNECTION_OK) {
		pool_fail(pc, PQerrorMessage(pc->pg));
		return;
	}
	while ((n = PQnotifies(pc->pg)) != NULL)
		PQfreemem(n);
	if (pc->state != PC_BUSY && pc->state != PC_CHECKING)
		return;
	if (pc->pipe_n > 0) {
		pool_pipeline_input(pc);
		return;
	}
	while (!PQisBusy(pc->pg)) {
		if ((res = PQgetResult(pc->pg)) == NULL) {
			pool_complete(pc);
			return;
		}
		switch (PQresultStatus(res)) {
		case PGRES_SINGLE_TUPLE:
			PQclear(res);
			continue;
		case PGRES_COPY_IN:
		case PGRES_COPY_OUT:
		case PGRES_COPY_BOTH:
			if (pool_copy(pc, res) != 0)
				return;
			continue;
		default:
			break;
		}
		/* Keep the first error: later results would hide it. */
		if (pc->result != NULL && (PQresultStatus(pc->result) ==
		    PGRES_FATAL_ERROR))
			PQclear(res);
		else {
			PQclear(pc->result);
			pc->result = res;
		}
	}
}

static void
pool_io(evutil_socket_t fd, short events, void *arg)
{
	struct pool_conn	*pc = arg;
	int			 r;

	(void)fd;
	if (pc->state == PC_CONNECTING) {
		pool_connect_step(pc);
		return;
	}
	if ((events & EV_WRITE) && pc->flushing) {
		if ((r = PQflush(pc->pg)) == -1) {
			pool_fail(pc, PQerrorMessage(pc->pg));
			return;
		}
		if (r == 0) {
			pc->flushing = 0;
			pool_watch(pc, EV_READ);
			if (pc->pipe_sent < pc->pipe_n &&
			    pool_pipeline_send(pc) != 0) {
				pool_fail(pc, PQerrorMessage(pc->pg));
				return;
			}
			/* libpq may have read results while it could not
			 * write: the socket will not say so again. */
			if (pc->pipe_n > 0 && !pc->flushing)
				pool_input(pc);
		}
		return;
	}
	if (events & EV_READ)
		pool_input(pc);
}

/* On demand: opens what the waiters still need, within pool_size and the
 * budget (a pool that has to wait for the budget is woken by it). */
static void
pool_open(struct pool *p)
{
	int	 n, i;

	if (p->budget_waiting)
		return;
	for (n = pool_need(p), i = 0; n > 0 && i < p->size; i++) {
		if (p->conns[i]->state != PC_DOWN ||
		    evtimer_pending(p->conns[i]->timer, NULL))
			continue;
		pool_connect(p->conns[i]);
		if (p->budget_waiting)
			return;
		n--;
	}
}

/* Gives idle connections to waiters, oldest first; when none can come
 * until someone acts (pool_permanent_error), tells them so with NULL. */
void
pool_grant(struct pool *p)
{
	struct pool_waiters	 failed;
	struct pool_waiter	*w;
	int			 i;

	pool_check_next(p);
	if (p->permanent && !TAILQ_EMPTY(&p->waiters) &&
	    pool_any_connection(p) == NULL) {
		/* Callbacks may wait again: those wait for the next news. */
		TAILQ_INIT(&failed);
		TAILQ_CONCAT(&failed, &p->waiters, entry);
		while ((w = TAILQ_FIRST(&failed)) != NULL) {
			TAILQ_REMOVE(&failed, w, entry);
			w->cb(NULL, w->arg);
			free(w);
		}
		return;
	}
	for (i = 0; i < p->size; i++) {
		if ((w = TAILQ_FIRST(&p->waiters)) == NULL)
			break;
		if (p->conns[i]->state != PC_IDLE)
			continue;
		TAILQ_REMOVE(&p->waiters, w, entry);
		p->conns[i]->state = PC_BUSY;
		evtimer_del(p->conns[i]->timer);	/* idle_close */
		w->cb(p->conns[i], w->arg);
		free(w);
	}
	if (!pool_eager(p))
		pool_open(p);
}

/* The deferred grant, so a callback never runs inside its caller's stack. */
static void
pool_grant_cb(evutil_socket_t fd, short events, void *arg)
{
	(void)fd;
	(void)events;
	pool_grant(arg);
}

/* Waits for an idle connection; cb runs from the event loop, never at once. */
struct pool_waiter *
pool_acquire(struct pool *p, pool_acquire_cb cb, void *arg)
{
	struct pool_waiter	*w;
	int			 i;

	w = xcalloc(1, sizeof *w);
	w->cb = cb;
	w->arg = arg;
	TAILQ_INSERT_TAIL(&p->waiters, w, entry);
	/* On demand nothing retries in the background: a new request gets a
	 * fresh attempt rather than the last one's permanent failure. */
	if (!pool_eager(p) && p->permanent && pool_any_connection(p) == NULL) {
		for (i = 0; i < p->size; i++) {
			if (p->conns[i]->state == PC_CONNECTING ||
			    p->conns[i]->state == PC_CHECKING)
				break;
		}
		if (i == p->size) {
			p->permanent = 0;
			for (i = 0; i < p->size; i++)
				if (p->conns[i]->state == PC_DOWN)
					evtimer_del(p->conns[i]->timer);
		}
	}
	event_active(p->grant_ev, EV_TIMEOUT, 0);
	return (w);
}

/* Gives up waiting; only valid before the callback ran. */
void
pool_cancel_wait(struct pool *p, struct pool_waiter *w)
{
	TAILQ_REMOVE(&p->waiters, w, entry);
	free(w);
}

/* A connection of an old configuration: reconnect it when the pool keeps
 * its connections, else close it (the next request opens a new one). */
static void
pool_renew(struct pool_conn *pc)
{
	if (pool_eager(pc->pool))
		pool_connect(pc);
	else {
		pool_drop(pc);
		event_active(pc->pool->grant_ev, EV_TIMEOUT, 0);
	}
}

/* Returns a connection; one from an old configuration reconnects. */
void
pool_release(struct pool_conn *pc)
{
	if (pc->state != PC_BUSY)
		return;
	pc->state = PC_IDLE;
	pc->notice_cb = NULL;
	pc->notice_arg = NULL;
	pc->pipe_progress = NULL;
	pc->pipe_progress_arg = NULL;
	if (pc->retire || pc->generation != pc->pool->generation) {
		pool_renew(pc);
		return;
	}
	pool_idle_start(pc);
	event_active(pc->pool->grant_ev, EV_TIMEOUT, 0);
}

PGconn *
pool_conn_pg(struct pool_conn *pc)
{
	return (pc->pg);
}

/* A query or pipeline is on its way: its results go to cb. */
void
pool_sent(struct pool_conn *pc, pool_result_cb cb, void *arg)
{
	pc->cb = cb;
	pc->cb_arg = arg;
	free(pc->copy_refused);
	pc->copy_refused = NULL;
	(void)pool_flush(pc);
}

/* Sends a query; with discard, its rows are dropped as they arrive
 * (single-row mode), so a large result is never held whole. */
static int
pool_send(struct pool_conn *pc, const char *sql, int nparams,
    const char *const *params, int discard, pool_result_cb cb, void *arg)
{
	int	 ok;

	if (pc->state != PC_BUSY || pc->pg == NULL || pc->cb != NULL)
		return (-1);
	if (nparams > 0)
		ok = PQsendQueryParams(pc->pg, sql, nparams, NULL, params,
		    NULL, NULL, 0);
	else
		ok = PQsendQuery(pc->pg, sql);
	if (!ok)
		return (-1);
	if (discard)
		PQsetSingleRowMode(pc->pg);
	pool_sent(pc, cb, arg);
	return (0);
}

/* Sends a query (with text params when nparams > 0) on an acquired connection. */
int
pool_query(struct pool_conn *pc, const char *sql, int nparams,
    const char *const *params, pool_result_cb cb, void *arg)
{
	return (pool_send(pc, sql, nparams, params, 0, cb, arg));
}

/* Sends SQL with a COPY FROM STDIN whose data is copy (taken, NUL-ended):
 * migd's own rows in one round trip.  cb gets the last result, or the
 * first error. */
int
pool_query_copy(struct pool_conn *pc, const char *sql, char *copy,
    pool_result_cb cb, void *arg)
{
	if (pool_send(pc, sql, 0, NULL, 0, cb, arg) != 0) {
		free(copy);
		return (-1);
	}
	pc->copy_in = copy;
	return (0);
}

/* Sends SQL whose rows nobody reads (a migration's statements): cb gets
 * the last result without its rows, or the first error. */
int
pool_query_discard(struct pool_conn *pc, const char *sql, pool_result_cb cb,
    void *arg)
{
	return (pool_send(pc, sql, 0, NULL, 1, cb, arg));
}

/*
 * Gives libpq the pipeline's next queries until its buffer stops draining
 * (the server is still busy with earlier ones: the rest go when the socket
 * is writable again, so the loop answers status and cancel meanwhile), then
 * the sync point.  After a query failed the server would skip the rest:
 * they are not sent.  0, or -1 when libpq refused or the connection failed.
 */
static int
pool_pipeline_send(struct pool_conn *pc)
{
	size_t	 i, bytes = 0;
	int	 r;

	while ((i = pc->pipe_sent) < pc->pipe_n) {
		if (pc->pipe_failed >= 0) {
			pc->pipe_n = i;
			break;
		}
		if (!PQsendQueryParams(pc->pg, pc->pipe_sql[i], 0, NULL, NULL,
		    NULL, NULL, 0))
			return (-1);
		bytes += strlen(pc->pipe_sql[i]);
		free(pc->pipe_sql[i]);
		pc->pipe_sql[i] = NULL;
		pc->pipe_sent++;
		/* The query at the head of libpq's queue gets its mode now; a
		 * later one when its turn comes (pool_pipeline_input). */
		if (i == pc->pipe_done && pc->pipe_discard != NULL &&
		    pc->pipe_discard[i])
			PQsetSingleRowMode(pc->pg);
		if (pc->pipe_flush != NULL && pc->pipe_flush[i] &&
		    i + 1 < pc->pipe_n && !PQsendFlushRequest(pc->pg))
			return (-1);
		if (bytes < POOL_PIPE_CHUNK)
			continue;
		bytes = 0;
		if ((r = pool_flush(pc)) != 0)
			return (r == 1 ? 0 : -1);
	}
	if (!PQpipelineSync(pc->pg))
		return (-1);
	free(pc->pipe_sql);
	pc->pipe_sql = NULL;
	free(pc->pipe_flush);
	pc->pipe_flush = NULL;
	return (pool_flush(pc) == -1 ? -1 : 0);
}

/* A cancelled statement's error, for a pipeline stopped by a cancel.  It
 * waits for the server's cancel first, so that one never outlives the
 * pipeline to hit the owner's next query (the failure's history row). */
#define POOL_STOP_SQL	"DO $migd$BEGIN PERFORM pg_catalog.pg_sleep(2); " \
	"RAISE EXCEPTION USING ERRCODE = 'query_canceled', MESSAGE = " \
	"'canceling statement due to user request'; END$migd$"

/*
 * A cancel of the pipeline's owner: the queries not yet sent are replaced by
 * one that fails as a cancelled statement does, so its transaction rolls
 * back even when the server's cancel falls between two statements (where
 * PostgreSQL drops it).  0, or -1 when every query was already sent.
 */
int
pool_pipeline_stop(struct pool_conn *pc)
{
	size_t	 i;

	if (pc->pipe_sql == NULL || pc->pipe_sent >= pc->pipe_n)
		return (-1);
	for (i = pc->pipe_sent; i < pc->pipe_n; i++)
		free(pc->pipe_sql[i]);
	pc->pipe_sql[pc->pipe_sent] = xstrdup(POOL_STOP_SQL);
	pc->pipe_n = pc->pipe_sent + 1;
	return (0);
}

/* Forgets a pipeline: its queries not sent, its per-query flags. */
static void
pool_pipe_clear(struct pool_conn *pc)
{
	size_t	 i;

	if (pc->pipe_sql != NULL)
		for (i = pc->pipe_sent; i < pc->pipe_n; i++)
			free(pc->pipe_sql[i]);
	free(pc->pipe_sql);
	pc->pipe_sql = NULL;
	free(pc->pipe_flush);
	pc->pipe_flush = NULL;
	free(pc->pipe_discard);
	pc->pipe_discard = NULL;
	pc->pipe_n = 0;
	pc->pipe_sent = 0;
}

/*
 * Sends queries (one statement each, sqls and its strings taken) in one
 * pipeline with one sync point: one round trip for all of them.  They run
 * in order; after one fails the server skips the rest.  cb gets the first
 * error, else the last result.  discard (or NULL) says, per query, that its
 * rows are not wanted; flush (or NULL), that the server sends what it has
 * once that query ended, so that its owner (pool_pipeline_progress) hears
 * of it then.  Queries go as the server takes them (pool_pipeline_send).
 */
int
pool_pipeline(struct pool_conn *pc, char **sqls,
    const unsigned char *discard, const unsigned char *flush, size_t n,
    pool_result_cb cb, void *arg)
{
	size_t	 i;

	if (pc->state != PC_BUSY || pc->pg == NULL || pc->cb != NULL ||
	    n == 0 || !PQenterPipelineMode(pc->pg)) {
		for (i = 0; i < n; i++)
			free(sqls[i]);
		free(sqls);
		return (-1);
	}
	pool_pipe_clear(pc);
	pc->pipe_sql = sqls;
	pc->pipe_n = n;
	pc->pipe_done = 0;
	pc->pipe_failed = -1;
	if (discard != NULL) {
		pc->pipe_discard = xmalloc(n);
		memcpy(pc->pipe_discard, discard, n);
	}
	if (flush != NULL) {
		pc->pipe_flush = xmalloc(n);
		memcpy(pc->pipe_flush, flush, n);
	}
	pc->cb = cb;
	pc->cb_arg = arg;
	free(pc->copy_refused);
	pc->copy_refused = NULL;
	if (pool_pipeline_send(pc) != 0) {
		pc->cb = NULL;
		pc->cb_arg = NULL;
		pc->pipe_progress = NULL;
		pool_pipe_clear(pc);
		/* libpq will not leave pipeline mode with queries queued: this
		 * connection is done for, and reconnects when released. */
		if (!PQexitPipelineMode(pc->pg))
			pc->retire = 1;
		return (-1);
	}
	return (0);
}

/* During a query's callback: why a COPY it met was refused, or NULL. */
const char *
pool_copy_refused(struct pool_conn *pc)
{
	return (pc->copy_refused);
}

/* Where the server's notices and warnings go until the connection is
 * released (cb NULL: back to the log). */
void
pool_set_notice(struct pool_conn *pc, pool_notice_cb cb, void *arg)
{
	pc->notice_cb = cb;
	pc->notice_arg = arg;
}

/* For the next pipeline, set before it is sent, until it ends: cb hears of
 * each query that ended well, as its results are read (none after one
 * failed). */
void
pool_pipeline_progress(struct pool_conn *pc, pool_progress_cb cb, void *arg)
{
	pc->pipe_progress = cb;
	pc->pipe_progress_arg = arg;
}

/* During a pipeline's callback: the index of the query that failed, or -1. */
ssize_t
pool_pipeline_failed(struct pool_conn *pc)
{
	return (pc->pipe_failed);
}

/* Creates the pool; one that keeps its connections starts every slot. */
struct pool *
pool_new(struct event_base *base, const struct config_db *cf,
    struct pool_budget *budget)
{
	struct pool		*p;
	struct pool_conn	*pc;
	int			 i;

	p = xcalloc(1, sizeof *p);
	p->base = base;
	p->tag = cf->line == 0 ? xstrdup("database: ") : xprintf("%s: ",
	    cf->name);
	p->grant_ev = event_new(base, -1, 0, pool_grant_cb, p);
	TAILQ_INIT(&p->waiters);
	p->conninfo = xstrdup(cf->conninfo);
	p->connect_timeout = cf->connect_timeout;
	p->size = cf->pool_size;
	p->budget = budget;
	p->conns = xcalloc((size_t)p->size, sizeof *p->conns);
	for (i = 0; i < p->size; i++) {
		pc = p->conns[i] = xcalloc(1, sizeof *pc);
		pc->pool = p;
		pc->slot = i;
		pc->fd = -1;
		pc->backoff_ms = POOL_BACKOFF_MIN_MS;
		pc->timer = evtimer_new(base, pool_timer, pc);
		if (pool_eager(p))
			pool_connect(pc);
	}
	return (p);
}

/* Applies a reloaded configuration: new settings reconnect, busy ones later. */
void
pool_reconfigure(struct pool *p, const struct config_db *cf)
{
	struct pool_conn	*pc;
	int			 i, old = p->size;

	if (strcmp(p->conninfo, cf->conninfo) == 0 &&
	    p->connect_timeout == cf->connect_timeout &&
	    p->size == cf->pool_size)
		return;
	if (strcmp(p->conninfo, cf->conninfo) != 0) {
		free(p->conninfo);
		p->conninfo = xstrdup(cf->conninfo);
		p->generation++;
	}
	p->connect_timeout = cf->connect_timeout;
	if (cf->pool_size < old) {
		/* Shrink only from the end, and only slots not in use. */
		while (p->size > cf->pool_size &&
		    p->conns[p->size - 1]->state != PC_BUSY) {
			pc = p->conns[--p->size];
			pool_drop(pc);
			event_free(pc->timer);
			free(pc);
		}
		if (p->size > cf->pool_size)
			log_warnx("pool_size: slot busy, keeping %d "
			    "connections until restart", p->size);
	} else if (cf->pool_size > old) {
		p->conns = xreallocarray(p->conns, (size_t)cf->pool_size,
		    sizeof *p->conns);
		for (i = old; i < cf->pool_size; i++) {
			pc = p->conns[i] = xcalloc(1, sizeof *pc);
			pc->pool = p;
			pc->slot = i;
			pc->fd = -1;
			pc->backoff_ms = POOL_BACKOFF_MIN_MS;
			pc->timer = evtimer_new(p->base, pool_timer, pc);
			if (pool_eager(p))
				pool_connect(pc);
		}
		p->size = cf->pool_size;
	}
	for (i = 0; i < p->size; i++) {
		pc = p->conns[i];
		if (pc->generation == p->generation)
			continue;
		if (pc->state == PC_BUSY)
			pc->retire = 1;
		else if (pc->state != PC_DOWN || pool_eager(p))
			pool_renew(pc);
	}
}

void
pool_stats(struct pool *p, struct pool_stats *st)
{
	int	 i;

	memset(st, 0, sizeof *st);
	st->size = p->size;
	for (i = 0; i < p->size; i++) {
		switch (p->conns[i]->state) {
		case PC_IDLE:
			st->idle++;
			st->connected++;
			break;
		case PC_BUSY:
			st->busy++;
			st->connected++;
			break;
		default:
			break;
		}
	}
}

/* Any live connection, to describe the server without a query. */
PGconn *
pool_any_connection(struct pool *p)
{
	int	 i;

	for (i = 0; i < p->size; i++) {
		if (p->conns[i]->state == PC_IDLE ||
		    p->conns[i]->state == PC_BUSY)
			return (p->conns[i]->pg);
	}
	return (NULL);
}

const char *
pool_last_error(struct pool *p)
{
	return (p->last_error);
}

/* When no connection is up and the last attempt failed for a reason that
 * retrying cannot fix: its SQLSTATE ("" when libpq itself gave up, e.g.
 * for want of a password); else NULL. */
const char *
pool_permanent_error(struct pool *p)
{
	if (!p->permanent || pool_any_connection(p) != NULL)
		return (NULL);
	return (p->sqlstate);
}

/* When the last connection was refused because a pooler shares server
 * sessions and none is up: why; else NULL. */
const char *
pool_refused(struct pool *p)
{
	if (!p->refused || pool_any_connection(p) != NULL)
		return (NULL);
	return (p->last_error);
}

/* The server process the connection was checked to have to itself. */
int
pool_conn_server_pid(struct pool_conn *pc)
{
	return (pc->server_pid);
}

/* Reconnects (and checks again) when released. */
void
pool_conn_retire(struct pool_conn *pc)
{
	pc->retire = 1;
}

void
pool_free(struct pool *p)
{
	struct pool_waiter	*w;
	int			 i;

	if (p == NULL)
		return;
	while ((w = TAILQ_FIRST(&p->waiters)) != NULL) {
		TAILQ_REMOVE(&p->waiters, w, entry);
		free(w);
	}
	if (p->budget_waiting)
		TAILQ_REMOVE(&p->budget->waiting, p, wait_entry);
	p->budget_waiting = 0;
	for (i = 0; i < p->size; i++) {
		pool_drop(p->conns[i]);	/* its slots, and its place in holding */
		event_free(p->conns[i]->timer);
		free(p->conns[i]);
	}
	free(p->conns);
	free(p->conninfo);
	free(p->tag);
	free(p->last_error);
	event_free(p->grant_ev);
	free(p);
}
