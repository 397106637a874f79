/*
 * A small pool of PostgreSQL connections driven asynchronously on the event
 * loop: PQconnectStartParams/PQconnectPoll with the socket re-read at every
 * step, PQsendQuery results drained with PQconsumeInput/PQisBusy.  Lost
 * connections come back by themselves with capped exponential backoff.
 */
#include <sys/queue.h>

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "conninfo.h"
#include "migd.h"

#define POOL_BACKOFF_MIN_MS	100
#define POOL_BACKOFF_MAX_MS	2000

enum pool_state { PC_DOWN, PC_CONNECTING, PC_IDLE, PC_BUSY };

struct pool_conn {
	struct pool		*pool;
	int			 slot;
	enum pool_state		 state;
	PGconn			*pg;
	struct event		*io;		/* the socket, when connected or connecting */
	struct event		*timer;		/* backoff or connect deadline */
	evutil_socket_t		 fd;
	short			 want;		/* EV_READ or EV_WRITE while connecting */
	int			 backoff_ms;
	u_int			 generation;	/* of the config it connected with */
	int			 retire;	/* reconnect when released */
	/* the query in flight */
	pool_result_cb		 cb;
	void			*cb_arg;
	PGresult		*result;	/* first error, else the last result */
	int			 flushing;
	/* a pipeline in flight: queries sent, results seen, first failure */
	size_t			 pipe_n;
	size_t			 pipe_done;
	ssize_t			 pipe_failed;
};

struct pool_waiter {
	TAILQ_ENTRY(pool_waiter) entry;
	pool_acquire_cb		 cb;
	void			*arg;
};
TAILQ_HEAD(pool_waiters, pool_waiter);

struct pool {
	struct event_base	*base;
	char			*conninfo;
	int			 connect_timeout;
	u_int			 generation;
	int			 size;
	struct pool_conn	**conns;
	struct pool_waiters	 waiters;
	char			*last_error;
	int			 permanent;	/* the last attempt cannot
						   succeed until someone acts */
	char			 sqlstate[6];	/* why, when the server said */
	int			 ever_connected;
	struct event		*grant_ev;	/* hands out connections later */
};

static void	pool_connect(struct pool_conn *);
static void	pool_io(evutil_socket_t, short, void *);
static void	pool_grant(struct pool *);
static void	pool_pipeline_input(struct pool_conn *);

/* Keeps the latest error, on one line, for status and the log; a server's
 * "database ... does not exist" may quote a conninfo nested in dbname. */
static void
pool_set_error(struct pool *p, const char *msg)
{
	const char	*in;
	char		*s, *out, *scrubbed;

	/* libpq's messages span lines with tabs: fold blanks into one space. */
	s = out = xstrdup(msg && *msg ? msg : "unknown error");
	for (in = msg && *msg ? msg : "unknown error"; *in != '\0'; in++) {
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
		log_warnx("database: %s", s);
	free(p->last_error);
	p->last_error = s;
}

/* Watches the connection's socket for the events libpq asked for. */
static void
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

/* Forgets the server connection and its watchers. */
static void
pool_drop(struct pool_conn *pc)
{
	if (pc->io != NULL) {
		event_free(pc->io);
		pc->io = NULL;
	}
	evtimer_del(pc->timer);
	if (pc->pg != NULL) {
		PQfinish(pc->pg);
		pc->pg = NULL;
	}
	if (pc->result != NULL) {
		PQclear(pc->result);
		pc->result = NULL;
	}
	pc->fd = -1;
	pc->state = PC_DOWN;
	pc->pipe_n = 0;
}

/* Connection lost or failed: tell the query's owner, retry after a pause. */
static void
pool_fail(struct pool_conn *pc, const char *why)
{
	struct timeval	 tv;
	pool_result_cb	 cb = pc->cb;
	void		*arg = pc->cb_arg;
	int		 was_busy = pc->state == PC_BUSY;

	pool_set_error(pc->pool, why);
	pool_drop(pc);
	pc->cb = NULL;
	pc->cb_arg = NULL;
	if (was_busy && cb != NULL)
		cb(pc, NULL, arg);	/* NULL result: the connection is gone */
	if (pc->state != PC_DOWN || evtimer_pending(pc->timer, NULL))
		return;
	tv.tv_sec = pc->backoff_ms / 1000;
	tv.tv_usec = (pc->backoff_ms % 1000) * 1000;
	evtimer_add(pc->timer, &tv);
	pc->backoff_ms *= 2;
	if (pc->backoff_ms > POOL_BACKOFF_MAX_MS)
		pc->backoff_ms = POOL_BACKOFF_MAX_MS;
}

/* The timer: start a connection after backoff, or give up a slow one. */
static void
pool_timer(evutil_socket_t fd, short events, void *arg)
{
	struct pool_conn	*pc = arg;

	(void)fd;
	(void)events;
	if (pc->state == PC_CONNECTING) {
		pc->pool->permanent = 0;
		pool_fail(pc, "timeout expired while connecting");
		return;
	}
	if (pc->state == PC_DOWN)
		pool_connect(pc);
}

/* A connection became usable. */
static void
pool_ready(struct pool_conn *pc)
{
	struct pool	*p = pc->pool;
	char		*db;

	evtimer_del(pc->timer);
	PQsetnonblocking(pc->pg, 1);
	/* Verbose was for the start-up's SQLSTATE (pool_connect_failed). */
	PQsetErrorVerbosity(pc->pg, PQERRORS_DEFAULT);
	pc->state = PC_IDLE;
	pc->backoff_ms = POOL_BACKOFF_MIN_MS;
	if (!p->ever_connected || p->last_error != NULL) {
		db = conninfo_scrub(p->conninfo, PQdb(pc->pg));
		log_info("database: connected to %s on %s:%s (server %s)",
		    db, PQhost(pc->pg), PQport(pc->pg),
		    PQparameterStatus(pc->pg, "server_version"));
		migd_notify("STATUS=connected to database %s", db);
		free(db);
	}
	p->ever_connected = 1;
	p->permanent = 0;
	free(p->last_error);
	p->last_error = NULL;
	pool_watch(pc, EV_READ);
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
		pool_ready(pc);
		break;
	default:
		pool_connect_failed(pc, PQerrorMessage(pc->pg));
		break;
	}
}

/* Starts a non-blocking connection with the current conninfo. */
static void
pool_connect(struct pool_conn *pc)
{
	const char	*keys[] = { "dbname", "fallback_application_name",
			    NULL };
	const char	*vals[] = { pc->pool->conninfo, "migd", NULL };
	struct timeval	 tv;

	pool_drop(pc);
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
	pool_watch(pc, EV_READ);
	if (cb != NULL)
		cb(pc, res, arg);
	else
		PQclear(res);
}

/*
 * Results of a pipeline: each query's results end with NULL, the sync point
 * with PGRES_PIPELINE_SYNC; after a failure the rest come back aborted.  The
 * owner gets the first error (pool_pipeline_failed says whose), else the last
 * result, once the sync point is read.
 */
static void
pool_pipeline_input(struct pool_conn *pc)
{
	PGresult	*res;

	while (!PQisBusy(pc->pg)) {
		if ((res = PQgetResult(pc->pg)) == NULL) {
			if (pc->pipe_done < pc->pipe_n)
				pc->pipe_done++;
			continue;
		}
		switch (PQresultStatus(res)) {
		case PGRES_PIPELINE_SYNC:
			PQclear(res);
			PQexitPipelineMode(pc->pg);
			pc->pipe_n = 0;
			pool_complete(pc);
			return;
		case PGRES_PIPELINE_ABORTED:
			PQclear(res);
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

/* Reads what the server sent: results of a query, or news of its death. */
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
	if (pc->state != PC_BUSY)
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
		}
		return;
	}
	if (events & EV_READ)
		pool_input(pc);
}

/* Gives idle connections to waiters, oldest first; when none can come
 * until someone acts (pool_permanent_error), tells them so with NULL. */
static void
pool_grant(struct pool *p)
{
	struct pool_waiters	 failed;
	struct pool_waiter	*w;
	int			 i;

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
			return;
		if (p->conns[i]->state != PC_IDLE)
			continue;
		TAILQ_REMOVE(&p->waiters, w, entry);
		p->conns[i]->state = PC_BUSY;
		w->cb(p->conns[i], w->arg);
		free(w);
	}
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

	w = xcalloc(1, sizeof *w);
	w->cb = cb;
	w->arg = arg;
	TAILQ_INSERT_TAIL(&p->waiters, w, entry);
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

/* Returns a connection; one from an old configuration reconnects. */
void
pool_release(struct pool_conn *pc)
{
	if (pc->state != PC_BUSY)
		return;
	pc->state = PC_IDLE;
	if (pc->retire || pc->generation != pc->pool->generation) {
		pool_connect(pc);
		return;
	}
	event_active(pc->pool->grant_ev, EV_TIMEOUT, 0);
}

PGconn *
pool_conn_pg(struct pool_conn *pc)
{
	return (pc->pg);
}

/* A query or pipeline is on its way: its results go to cb. */
static void
pool_sent(struct pool_conn *pc, pool_result_cb cb, void *arg)
{
	pc->cb = cb;
	pc->cb_arg = arg;
	if (PQflush(pc->pg) == 1) {
		pc->flushing = 1;
		pool_watch(pc, EV_READ | EV_WRITE);
	}
}

/* Sends a query (with text params when nparams > 0) on an acquired connection. */
int
pool_query(struct pool_conn *pc, const char *sql, int nparams,
    const char *const *params, pool_result_cb cb, void *arg)
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
	pool_sent(pc, cb, arg);
	return (0);
}

/*
 * Sends queries (one statement each) in one pipeline with one sync point:
 * one round trip for all of them.  They run in order; after one fails the
 * server skips the rest.  cb gets the first error, else the last result.
 */
int
pool_pipeline(struct pool_conn *pc, const char *const *sqls, size_t n,
    pool_result_cb cb, void *arg)
{
	size_t	 i;

	if (pc->state != PC_BUSY || pc->pg == NULL || pc->cb != NULL ||
	    n == 0 || !PQenterPipelineMode(pc->pg))
		return (-1);
	for (i = 0; i < n; i++) {
		if (!PQsendQueryParams(pc->pg, sqls[i], 0, NULL, NULL, NULL,
		    NULL, 0))
			break;
	}
	if (i < n || !PQpipelineSync(pc->pg)) {
		/* libpq will not leave pipeline mode with queries queued: this
		 * connection is done for, and reconnects when released. */
		if (!PQexitPipelineMode(pc->pg))
			pc->retire = 1;
		return (-1);
	}
	pc->pipe_n = n;
	pc->pipe_done = 0;
	pc->pipe_failed = -1;
	pool_sent(pc, cb, arg);
	return (0);
}

/* During a pipeline's callback: the index of the query that failed, or -1. */
ssize_t
pool_pipeline_failed(struct pool_conn *pc)
{
	return (pc->pipe_failed);
}

/* Creates the pool and starts connecting every slot. */
struct pool *
pool_new(struct event_base *base, const struct config *cf)
{
	struct pool		*p;
	struct pool_conn	*pc;
	int			 i;

	p = xcalloc(1, sizeof *p);
	p->base = base;
	p->grant_ev = event_new(base, -1, 0, pool_grant_cb, p);
	TAILQ_INIT(&p->waiters);
	p->conninfo = xstrdup(cf->conninfo);
	p->connect_timeout = cf->connect_timeout;
	p->size = cf->pool_size;
	p->conns = xcalloc((size_t)p->size, sizeof *p->conns);
	for (i = 0; i < p->size; i++) {
		pc = p->conns[i] = xcalloc(1, sizeof *pc);
		pc->pool = p;
		pc->slot = i;
		pc->fd = -1;
		pc->backoff_ms = POOL_BACKOFF_MIN_MS;
		pc->timer = evtimer_new(base, pool_timer, pc);
		pool_connect(pc);
	}
	return (p);
}

/* Applies a reloaded configuration: new settings reconnect, busy ones later. */
void
pool_reconfigure(struct pool *p, const struct config *cf)
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
		else
			pool_connect(pc);
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
	for (i = 0; i < p->size; i++) {
		pool_drop(p->conns[i]);
		event_free(p->conns[i]->timer);
		free(p->conns[i]);
	}
	free(p->conns);
	free(p->conninfo);
	free(p->last_error);
	event_free(p->grant_ev);
	free(p);
}
