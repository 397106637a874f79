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

#define POOL_BACKOFF_MIN_MS	100
#define POOL_BACKOFF_MAX_MS	2000

enum pool_state { PC_DOWN, PC_CONNECTING, PC_CHECKING, PC_IDLE, PC_BUSY };

/* What the session check (pool_check_*) has seen of a new connection. */
struct pool_check {
	int			 step;		/* queries answered so far */
	int			 pid;		/* server process of the first */
	long long		 lxid;		/* its local transaction number */
	PGconn			*probe;		/* a second client, for one query */
	struct event		*probe_io;
	short			 probe_want;
	int			 probe_sent;
	int			 again;		/* checking a second time */
	/* a check again on a busy connection, for its owner (pool_recheck) */
	pool_check_cb		 done;
	void			*done_arg;
};

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
	int			 server_pid;	/* the server process, once checked */
	int			 pooled;	/* through a pooler (checked) */
	int			 checking;	/* its check has the pool's turn */
	int			 check_queued;	/* its check waits for the turn */
	int			 token;		/* counted in the budget */
	unsigned long		 idle_since;	/* the budget's count, when idle */
	struct pool_check	 check;
	/* the query in flight */
	pool_result_cb		 cb;
	void			*cb_arg;
	PGresult		*result;	/* first error, else the last result */
	int			 flushing;
	/* a pipeline in flight: queries sent, results seen, first failure */
	size_t			 pipe_n;
	size_t			 pipe_done;
	ssize_t			 pipe_failed;
	unsigned char		*pipe_discard;	/* per query: rows discarded */
	pool_progress_cb	 pipe_progress;	/* each query's end, until one fails */
	void			*pipe_progress_arg;
	/* the query in flight met a COPY to or from migd (why, or NULL) */
	char			*copy_refused;
	/* notices and warnings: to this sink (a run's step), else the log */
	pool_notice_cb		 notice_cb;
	void			*notice_arg;
};

struct pool_waiter {
	TAILQ_ENTRY(pool_waiter) entry;
	pool_acquire_cb		 cb;
	void			*arg;
};
TAILQ_HEAD(pool_waiters, pool_waiter);
TAILQ_HEAD(pool_list, pool);

/* A connection migd hung up on, whose server backend may still be exiting. */
struct pool_closing {
	TAILQ_ENTRY(pool_closing) entry;
	struct pool_budget	*budget;
	evutil_socket_t		 fd;
	struct event		*ev;
};
TAILQ_HEAD(pool_closings, pool_closing);

/*
 * The daemon's connection budget, one for every pool: connections open or
 * opening across all databases, never above cap.  A pool that needs one
 * more waits in a FIFO; a connection closed anywhere wakes the oldest (from
 * the loop), and a pool that has to wait closes the longest idle connection
 * of another database first, so a free slot is never kept idle while a
 * request waits.
 */
struct pool_budget {
	struct event_base	*base;
	int			 cap;		/* 0: no cap */
	long			 idle_ms;	/* 0: idle connections stay */
	int			 used;
	int			 peak;
	unsigned long		 clock;		/* orders idle connections */
	struct pool_list	 waiting;	/* pools wanting one, oldest first */
	struct pool_list	 holding;	/* pools with slots (tokens) */
	struct pool_closings	 closing;	/* slots still held */
	struct event		*wake_ev;
};

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
	int			 refused;	/* a pooler shares sessions */
	int			 ever_connected;
	struct event		*grant_ev;	/* hands out connections later */
	struct pool_budget	*budget;
	int			 budget_waiting;	/* in budget->waiting */
	TAILQ_ENTRY(pool)	 wait_entry;
	int			 tokens;	/* its connections' slots */
	TAILQ_ENTRY(pool)	 holding_entry;	/* in budget->holding */
};

static void	pool_connect(struct pool_conn *);
static void	pool_check_end(struct pool_conn *);
static void	pool_budget_put(struct pool_budget *);
static void	pool_budget_wait(struct pool *);
static int	pool_budget_take(struct pool_budget *);
static void	pool_budget_closing(struct pool_budget *, PGconn *);
static int	pool_eager(struct pool *);
static void	pool_budget_wake(evutil_socket_t, short, void *);
static void	pool_open(struct pool *);
static void	pool_renew(struct pool_conn *);
static void	pool_io(evutil_socket_t, short, void *);
static void	pool_grant(struct pool *);
static void	pool_pipeline_input(struct pool_conn *);
static void	pool_check_start(struct pool_conn *);
static void	pool_check_result(struct pool_conn *, PGresult *, void *);
static void	pool_check_drop(struct pool_conn *);
static void	pool_check_failed(struct pool_conn *, const char *);
static void	pool_check_finish(struct pool_conn *, const char *);
static int	pool_copy(struct pool_conn *, PGresult *);

/* Keeps the latest error, on one line, for status and the log; a server's
 * "database ... does not exist" may quote a conninfo nested in dbname. */
static void
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

/* Counts pc's slot of the budget in its pool; the budget lists the pools
 * that hold slots, where pool_budget_victim looks (not through every
 * database of a large fleet). */
static void
pool_token(struct pool_conn *pc, int on)
{
	struct pool		*p = pc->pool;
	struct pool_budget	*b = p->budget;

	if (pc->token == on)
		return;
	pc->token = on;
	p->tokens += on ? 1 : -1;
	if (b == NULL)
		return;
	if (on && p->tokens == 1)
		TAILQ_INSERT_TAIL(&b->holding, p, holding_entry);
	else if (!on && p->tokens == 0)
		TAILQ_REMOVE(&b->holding, p, holding_entry);
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
	pc->pipe_n = 0;
	pc->server_pid = 0;
	pc->pooled = 0;
	free(pc->pipe_discard);
	pc->pipe_discard = NULL;
	pc->pipe_progress = NULL;
	pc->pipe_progress_arg = NULL;
	free(pc->copy_refused);
	pc->copy_refused = NULL;
	pc->notice_cb = NULL;
	pc->notice_arg = NULL;
}

/* Connection lost or failed: tell the query's owner, retry after a pause. */
static void
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
		log_info("database: an idle connection was lost (%s); the "
		    "next request opens another", why != NULL ? why : "");
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
static int
pool_eager(struct pool *p)
{
	return (p->budget == NULL || (p->budget->cap == 0 &&
	    p->budget->idle_ms == 0));
}

/* How many more connections the pool's waiters need, beyond those opening
 * or about to retry. */
static int
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
		log_debug("database: max_connections_total (%d) reached: "
		    "closing an idle connection for another database", b->cap);
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
		log_debug("database: closing a connection idle for %ld ms",
		    pc->pool->budget->idle_ms);
		pool_drop(pc);
		return;
	}
	if (pc->state == PC_DOWN && (pool_eager(pc->pool) ||
	    pool_need(pc->pool) > 0))
		pool_connect(pc);
}

/* A connection became usable. */
static void
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
		log_info("database: connected to %s on %s:%s (server %s)",
		    db, PQhost(pc->pg), PQport(pc->pg),
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
	log_debug("database: %s: %s", sev, msg);
}

/* Starts a non-blocking connection with the current conninfo. */
static void
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

/*
 * The session check of a new connection.  migd needs a server session of its
 * own (its advisory lock, the timeouts of a bare step), which a pooler in
 * transaction or statement mode does not give.  A server process that is not
 * the one the start-up announced (PgBouncer and its kind make up their own
 * cancel keys) means a pooler; then sharing must not show: two queries of this
 * connection run on one server process with nothing in between (the local
 * transaction number of the second is the next one), a second client gets
 * another server process (a pooler in transaction mode hands out the server
 * it got back last, or the oldest idle one, and the first test catches the
 * latter), and this connection still has its own after that.
 */
#define POOL_CHECK_SQL	"SELECT pg_catalog.pg_backend_pid(), (SELECT " \
	"pg_catalog.split_part(virtualxid, '/', 2) FROM pg_catalog.pg_locks " \
	"WHERE locktype = 'virtualxid' AND granted AND pid = " \
	"pg_catalog.pg_backend_pid() LIMIT 1)"

static void	pool_sent(struct pool_conn *, pool_result_cb, void *);
static void	pool_check_send(struct pool_conn *);
static void	pool_check_probe_io(evutil_socket_t, short, void *);

/*
 * Whether pc may run its check now: one connection of a pool at a time, as
 * two checks at once through a pooler in transaction mode can each see the
 * other's server process as a second client's and both pass.  Else it
 * waits its turn (pool_check_next), within its connect_timeout.
 */
static int
pool_check_turn(struct pool_conn *pc)
{
	struct pool	*p = pc->pool;
	int		 i;

	for (i = 0; i < p->size; i++) {
		if (p->conns[i] != pc && p->conns[i]->checking) {
			pc->check_queued = 1;
			return (0);
		}
	}
	pc->checking = 1;
	return (1);
}

/* A check is over (passed, refused, failed or its connection gone): the
 * next one waiting may start (from the loop, pool_grant). */
static void
pool_check_end(struct pool_conn *pc)
{
	pc->check_queued = 0;
	if (!pc->checking)
		return;
	pc->checking = 0;
	event_active(pc->pool->grant_ev, EV_TIMEOUT, 0);
}

/* Starts a check waiting for its turn, if none runs. */
static void
pool_check_next(struct pool *p)
{
	int	 i;

	for (i = 0; i < p->size; i++) {
		if (p->conns[i]->checking)
			return;
	}
	for (i = 0; i < p->size; i++) {
		if (p->conns[i]->check_queued) {
			p->conns[i]->check_queued = 0;
			p->conns[i]->checking = 1;
			pool_check_send(p->conns[i]);
			return;
		}
	}
}

/* Forgets the check's second client. */
static void
pool_check_drop(struct pool_conn *pc)
{
	struct pool_check	*ck = &pc->check;

	if (ck->probe_io != NULL) {
		event_free(ck->probe_io);
		ck->probe_io = NULL;
	}
	if (ck->probe != NULL) {
		PQfinish(ck->probe);
		ck->probe = NULL;
	}
	ck->probe_sent = 0;
}

/* A check of a busy connection is over: tell its owner (why is NULL when
 * the connection still has its session). */
static void
pool_check_finish(struct pool_conn *pc, const char *why)
{
	pool_check_cb	 done = pc->check.done;
	void		*arg = pc->check.done_arg;

	evtimer_del(pc->timer);
	pool_check_drop(pc);
	pool_check_end(pc);
	pc->check.done = NULL;
	pc->check.done_arg = NULL;
	done(pc, why, arg);
}

/* The pooler shares server sessions: no connection until someone acts. */
static void
pool_check_refuse(struct pool_conn *pc, const char *evidence)
{
	struct pool	*p = pc->pool;
	char		*msg;
	int		 i;

	msg = xprintf("a connection pooler between migd and PostgreSQL shares "
	    "server sessions between its clients (transaction or statement "
	    "pooling: %s); migd needs a session of its own for its migration "
	    "lock and its settings, so it does not use this connection: point "
	    "conninfo at PostgreSQL itself, or at a PgBouncer database with "
	    "pool_mode = session", evidence);
	if (pc->check.done != NULL) {
		/* Its owner hears first; it reconnects (and is refused)
		 * once released, and so do the others through the pooler. */
		pool_set_error(p, msg);
		pc->retire = 1;
		for (i = 0; i < p->size; i++) {
			if (p->conns[i] == pc || !p->conns[i]->pooled)
				continue;
			if (p->conns[i]->state == PC_IDLE)
				pool_connect(p->conns[i]);
			else if (p->conns[i]->state == PC_BUSY)
				p->conns[i]->retire = 1;
		}
		pool_check_finish(pc, msg);
		free(msg);
		return;
	}
	p->permanent = 1;
	p->refused = 1;
	p->sqlstate[0] = '\0';
	pool_fail(pc, msg);
	free(msg);
	event_active(p->grant_ev, EV_TIMEOUT, 0);
}

/* The check could not finish: try again later, like a failed connection. */
static void
pool_check_failed(struct pool_conn *pc, const char *why)
{
	char	*msg;

	msg = xprintf("could not check that the connection pooler between "
	    "migd and PostgreSQL gives migd a session of its own: %s",
	    why != NULL && *why != '\0' ? why : "unknown error");
	if (pc->check.done != NULL) {
		pc->retire = 1;
		pool_check_finish(pc, msg);
		free(msg);
		return;
	}
	pc->pool->permanent = 0;
	pc->pool->refused = 0;
	pool_fail(pc, msg);
	free(msg);
}

/* Sends the check's query on the connection itself. */
static void
pool_check_send(struct pool_conn *pc)
{
	if (!PQsendQuery(pc->pg, POOL_CHECK_SQL)) {
		pool_fail(pc, PQerrorMessage(pc->pg));
		return;
	}
	pool_sent(pc, pool_check_result, NULL);
}

/* Watches the second client's socket for what libpq asked for. */
static void
pool_check_probe_watch(struct pool_conn *pc, short what)
{
	struct pool_check	*ck = &pc->check;

	if (ck->probe_io != NULL) {
		event_free(ck->probe_io);
		ck->probe_io = NULL;
	}
	ck->probe_io = event_new(pc->pool->base, PQsocket(ck->probe),
	    what | EV_PERSIST, pool_check_probe_io, pc);
	ck->probe_want = what;
	event_add(ck->probe_io, NULL);
}

/* The second client: connect, ask for its server process, compare. */
static void
pool_check_probe_io(evutil_socket_t fd, short events, void *arg)
{
	struct pool_conn	*pc = arg;
	struct pool_check	*ck = &pc->check;
	PGresult		*res;
	int			 pid = 0;
	char			*why;

	(void)fd;
	(void)events;
	if (!ck->probe_sent) {
		switch (PQconnectPoll(ck->probe)) {
		case PGRES_POLLING_READING:
			pool_check_probe_watch(pc, EV_READ);
			return;
		case PGRES_POLLING_WRITING:
			pool_check_probe_watch(pc, EV_WRITE);
			return;
		case PGRES_POLLING_OK:
			if (!PQsendQuery(ck->probe,
			    "SELECT pg_catalog.pg_backend_pid()"))
				break;
			ck->probe_sent = 1;
			pool_check_probe_watch(pc, EV_READ);
			return;
		default:
			break;
		}
		why = xstrdup(PQerrorMessage(ck->probe));
		pool_check_failed(pc, why);
		free(why);
		return;
	}
	if (!PQconsumeInput(ck->probe)) {
		why = xstrdup(PQerrorMessage(ck->probe));
		pool_check_failed(pc, why);
		free(why);
		return;
	}
	if (PQisBusy(ck->probe))
		return;
	while ((res = PQgetResult(ck->probe)) != NULL) {
		if (PQresultStatus(res) == PGRES_TUPLES_OK &&
		    PQntuples(res) == 1)
			pid = atoi(PQgetvalue(res, 0, 0));
		PQclear(res);
	}
	pool_check_drop(pc);
	if (pid <= 0) {
		pool_check_failed(pc, "the second connection's query failed");
		return;
	}
	if (pid == ck->pid) {
		log_debug("database: a second client got server process %d "
		    "too", pid);
		pool_check_refuse(pc, "a second client got the server process "
		    "of migd's connection");
		return;
	}
	pool_check_send(pc);
}

/* Opens the second client, to the host and port of the first. */
static void
pool_check_probe(struct pool_conn *pc)
{
	struct pool_check	*ck = &pc->check;
	const char		*keys[] = { "dbname", "host", "port",
				    "fallback_application_name", NULL };
	const char		*vals[] = { pc->pool->conninfo,
				    PQhost(pc->pg), PQport(pc->pg), "migd",
				    NULL };
	char			*why;

	ck->probe = PQconnectStartParams(keys, vals, 1);
	if (ck->probe == NULL) {
		pool_check_failed(pc, "out of memory");
		return;
	}
	if (PQstatus(ck->probe) == CONNECTION_BAD) {
		why = xstrdup(PQerrorMessage(ck->probe));
		pool_check_failed(pc, why);
		free(why);
		return;
	}
	pool_check_probe_watch(pc, EV_WRITE);
}

/* One answer of the check's query: judge it, then the next step. */
static void
pool_check_result(struct pool_conn *pc, PGresult *res, void *arg)
{
	struct pool_check	*ck = &pc->check;
	long long		 lxid = -1;
	int			 pid;
	char			*why;
	pool_check_cb		 done;
	void			*done_arg;

	(void)arg;
	if (res == NULL) {
		/* The connection died under a check for its owner. */
		pool_check_finish(pc, "lost the connection to PostgreSQL");
		return;
	}
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		why = xstrdup(PQresultErrorMessage(res));
		PQclear(res);
		pool_check_failed(pc, why);
		free(why);
		return;
	}
	pid = atoi(PQgetvalue(res, 0, 0));
	if (!PQgetisnull(res, 0, 1))
		lxid = atoll(PQgetvalue(res, 0, 1));
	PQclear(res);
	if (ck->step++ == 0) {
		if (pid == PQbackendPID(pc->pg) && pc->check.done == NULL) {
			/* The server process the start-up announced: no
			 * pooler, or one that keeps sessions whole. */
			pc->server_pid = pid;
			pool_ready(pc);
			return;
		}
		if (pc->check.done != NULL && pid != pc->server_pid) {
			log_debug("database: server process %d, before %d",
			    pid, pc->server_pid);
			pool_check_refuse(pc, "this connection's queries now "
			    "run on another server process than before");
			return;
		}
		log_debug("database: server process %d, announced %d: a "
		    "pooler sits between; checking its sessions", pid,
		    PQbackendPID(pc->pg));
		ck->pid = pid;
		ck->lxid = lxid;
		pool_check_send(pc);
		return;
	}
	if (pid != ck->pid) {
		log_debug("database: server process %d, then %d", ck->pid, pid);
		pool_check_refuse(pc, "two queries of one connection ran on "
		    "different server processes");
		return;
	}
	if (lxid < 0 || lxid != ck->lxid + 1) {
		log_debug("database: transaction %lld, then %lld on server "
		    "process %d", ck->lxid, lxid, pid);
		if (!ck->again) {
			/* PostgreSQL itself may run a transaction on an idle
			 * backend (catch-up of shared invalidations): a pooler
			 * that shares it shows again; a session, not twice. */
			done = ck->done;
			done_arg = ck->done_arg;
			memset(ck, 0, sizeof *ck);
			ck->again = 1;
			ck->done = done;
			ck->done_arg = done_arg;
			pool_check_send(pc);
			return;
		}
		pool_check_refuse(pc, "another client's transaction ran on "
		    "migd's server process between two of its queries");
		return;
	}
	ck->lxid = lxid;
	if (ck->step == 2) {
		pool_check_probe(pc);
		return;
	}
	pc->server_pid = pid;
	pc->pooled = 1;
	if (pc->check.done != NULL) {
		pool_check_finish(pc, NULL);
		return;
	}
	log_info("database: connected through a pooler that gives migd a "
	    "session of its own (server process %d)", pid);
	pool_ready(pc);
}

/*
 * Checks again that a busy connection through a pooler has a session of its
 * own (the pooler's mode may have changed since it connected): done runs
 * with NULL, or with why not; a connection that failed reconnects when
 * released.  Connections without a pooler need no second look.
 */
void
pool_recheck(struct pool_conn *pc, pool_check_cb done, void *arg)
{
	struct timeval	 tv = { pc->pool->connect_timeout, 0 };

	pool_check_drop(pc);
	memset(&pc->check, 0, sizeof pc->check);
	pc->check.done = done;
	pc->check.done_arg = arg;
	evtimer_add(pc->timer, &tv);
	if (pool_check_turn(pc))
		pool_check_send(pc);
}

/* Whether the connection goes through a pooler (one that was checked to
 * give migd a session of its own). */
int
pool_conn_pooled(struct pool_conn *pc)
{
	return (pc->pooled);
}

/* A connection is up: check its session before anyone may use it. */
static void
pool_check_start(struct pool_conn *pc)
{
	pool_check_drop(pc);
	memset(&pc->check, 0, sizeof pc->check);
	pc->state = PC_CHECKING;
	pool_watch(pc, EV_READ);
	if (pool_check_turn(pc))
		pool_check_send(pc);
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
 * A COPY to or from migd, which has no data to send and wants none: a COPY
 * FROM STDIN is ended with an error (the server fails the statement), a COPY
 * TO STDOUT's rows are read and dropped as they come.  The owner learns why
 * (pool_copy_refused).  libpq answers a COPY state again on every
 * PQgetResult, so a loop that only reads results would never end.  Returns 0
 * to read on, 1 to wait for more input, -1 when the connection failed.
 */
static int
pool_copy(struct pool_conn *pc, PGresult *res)
{
	ExecStatusType	 s = PQresultStatus(res);
	char		*buf;
	int		 n, r;

	PQclear(res);
	if (pc->copy_refused == NULL)
		pc->copy_refused = xstrdup(s == PGRES_COPY_OUT ?
		    POOL_COPY_OUT_REFUSED : POOL_COPY_IN_REFUSED);
	if (s == PGRES_COPY_IN || s == PGRES_COPY_BOTH) {
		if (PQputCopyEnd(pc->pg, pc->copy_refused) != 1 ||
		    (r = PQflush(pc->pg)) == -1) {
			pool_fail(pc, PQerrorMessage(pc->pg));
			return (-1);
		}
		if (r == 1) {
			pc->flushing = 1;
			pool_watch(pc, EV_READ | EV_WRITE);
		}
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
		if ((res = PQgetResult(pc->pg)) == NULL) {
			if (pc->pipe_done < pc->pipe_n &&
			    pc->pipe_progress != NULL && pc->pipe_failed < 0)
				pc->pipe_progress(pc, pc->pipe_done,
				    pc->pipe_progress_arg);
			if (pc->pipe_done < pc->pipe_n)
				pc->pipe_done++;
			if (pc->pipe_discard != NULL &&
			    pc->pipe_done < pc->pipe_n &&
			    pc->pipe_discard[pc->pipe_done])
				PQsetSingleRowMode(pc->pg);
			continue;
		}
		switch (PQresultStatus(res)) {
		case PGRES_PIPELINE_SYNC:
			PQclear(res);
			PQexitPipelineMode(pc->pg);
			pc->pipe_n = 0;
			free(pc->pipe_discard);
			pc->pipe_discard = NULL;
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
static void
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
static void
pool_sent(struct pool_conn *pc, pool_result_cb cb, void *arg)
{
	pc->cb = cb;
	pc->cb_arg = arg;
	free(pc->copy_refused);
	pc->copy_refused = NULL;
	if (PQflush(pc->pg) == 1) {
		pc->flushing = 1;
		pool_watch(pc, EV_READ | EV_WRITE);
	}
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

/* Sends SQL whose rows nobody reads (a migration's statements): cb gets
 * the last result without its rows, or the first error. */
int
pool_query_discard(struct pool_conn *pc, const char *sql, pool_result_cb cb,
    void *arg)
{
	return (pool_send(pc, sql, 0, NULL, 1, cb, arg));
}

/*
 * Sends queries (one statement each) in one pipeline with one sync point:
 * one round trip for all of them.  They run in order; after one fails the
 * server skips the rest.  cb gets the first error, else the last result.
 * discard (or NULL) says, per query, that its rows are not wanted; flush
 * (or NULL), that the server sends what it has once that query ended, so
 * that its owner (pool_pipeline_progress) hears of it then.
 */
int
pool_pipeline(struct pool_conn *pc, const char *const *sqls,
    const unsigned char *discard, const unsigned char *flush, size_t n,
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
		/* The first query's mode is set now; the others' when their
		 * turn comes (pool_pipeline_input). */
		if (i == 0 && discard != NULL && discard[0])
			PQsetSingleRowMode(pc->pg);
		if (flush != NULL && flush[i] && i + 1 < n &&
		    !PQsendFlushRequest(pc->pg))
			break;
	}
	if (i < n || !PQpipelineSync(pc->pg)) {
		pc->pipe_progress = NULL;
		/* libpq will not leave pipeline mode with queries queued: this
		 * connection is done for, and reconnects when released. */
		if (!PQexitPipelineMode(pc->pg))
			pc->retire = 1;
		return (-1);
	}
	pc->pipe_n = n;
	pc->pipe_done = 0;
	pc->pipe_failed = -1;
	free(pc->pipe_discard);
	pc->pipe_discard = NULL;
	if (discard != NULL) {
		pc->pipe_discard = xmalloc(n);
		memcpy(pc->pipe_discard, discard, n);
	}
	pool_sent(pc, cb, arg);
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
	free(p->last_error);
	event_free(p->grant_ev);
	free(p);
}

/* The daemon's budget: at most cap connections (0: no cap) open or opening
 * across every pool made with it; idle_ms closes on-demand pools' idle ones. */
struct pool_budget *
pool_budget_new(struct event_base *base, int cap, long idle_ms)
{
	struct pool_budget	*b;

	b = xcalloc(1, sizeof *b);
	b->base = base;
	b->cap = cap;
	b->idle_ms = idle_ms;
	TAILQ_INIT(&b->waiting);
	TAILQ_INIT(&b->holding);
	TAILQ_INIT(&b->closing);
	b->wake_ev = event_new(base, -1, 0, pool_budget_wake, b);
	return (b);
}

/* A reload's cap and idle_close: connections above a lowered cap stay until
 * they close; no new one opens until the count is below it. */
void
pool_budget_set(struct pool_budget *b, int cap, long idle_ms)
{
	b->cap = cap;
	b->idle_ms = idle_ms;
	event_active(b->wake_ev, EV_TIMEOUT, 0);
}

/* Frees the budget after every pool made with it. */
void
pool_budget_free(struct pool_budget *b)
{
	struct pool_closing	*c;

	if (b == NULL)
		return;
	while ((c = TAILQ_FIRST(&b->closing)) != NULL) {
		TAILQ_REMOVE(&b->closing, c, entry);
		event_free(c->ev);
		close(c->fd);
		free(c);
	}
	event_free(b->wake_ev);
	free(b);
}

void
pool_budget_stats(struct pool_budget *b, int *used, int *peak, int *waiting)
{
	struct pool	*p;

	*used = b->used;
	*peak = b->peak;
	*waiting = 0;
	TAILQ_FOREACH(p, &b->waiting, wait_entry)
		(*waiting)++;
}

#define POOL_CLOSING_WAIT_S	2	/* at most, for a backend to exit */

/* The closed connection's socket read to its end (or the wait over): its
 * backend has left pg_stat_activity, so its slot is free. */
static void
pool_budget_closed(evutil_socket_t fd, short events, void *arg)
{
	struct pool_closing	*c = arg;
	char			 buf[512];
	ssize_t			 n;

	if ((events & EV_READ) && (n = read(fd, buf, sizeof buf)) > 0)
		return;		/* what the server said last: read on */
	TAILQ_REMOVE(&c->budget->closing, c, entry);
	event_free(c->ev);
	close(c->fd);
	pool_budget_put(c->budget);
	free(c);
}

/*
 * Closes a connection whose slot stays counted until its server backend is
 * gone: PQfinish sends Terminate, and a backend that reads it leaves
 * pg_stat_activity before it exits and its socket closes, so a copy of the
 * socket read to its end says when.  Without it, a slot given to another
 * database at once could show one connection above the cap on the server.
 */
static void
pool_budget_closing(struct pool_budget *b, PGconn *pg)
{
	struct pool_closing	*c;
	struct timeval		 tv = { POOL_CLOSING_WAIT_S, 0 };
	evutil_socket_t		 fd = PQsocket(pg) >= 0 ? dup(PQsocket(pg)) : -1;

	PQfinish(pg);
	if (fd < 0) {
		pool_budget_put(b);
		return;
	}
	c = xcalloc(1, sizeof *c);
	c->budget = b;
	c->fd = fd;
	c->ev = event_new(b->base, fd, EV_READ | EV_PERSIST, pool_budget_closed,
	    c);
	TAILQ_INSERT_TAIL(&b->closing, c, entry);
	event_add(c->ev, &tv);
}

/* One more connection, when the cap allows and nobody waits before us. */
static int
pool_budget_take(struct pool_budget *b)
{
	if (b == NULL)
		return (1);
	if (b->cap > 0 && (b->used >= b->cap || !TAILQ_EMPTY(&b->waiting)))
		return (0);
	if (++b->used > b->peak)
		b->peak = b->used;
	return (1);
}

/* A connection closed: the oldest waiting pool gets its slot (from the
 * loop, never inside the closer's stack). */
static void
pool_budget_put(struct pool_budget *b)
{
	if (b == NULL)
		return;
	b->used--;
	if (!TAILQ_EMPTY(&b->waiting))
		event_active(b->wake_ev, EV_TIMEOUT, 0);
}

/* The longest idle connection of a pool with nobody waiting, other than
 * asker's: what a full budget closes for a pool that needs one. */
static struct pool_conn *
pool_budget_victim(struct pool_budget *b, struct pool *asker)
{
	struct pool		*p;
	struct pool_conn	*best = NULL;
	int			 i;

	TAILQ_FOREACH(p, &b->holding, holding_entry) {
		if (p == asker || !TAILQ_EMPTY(&p->waiters))
			continue;
		for (i = 0; i < p->size; i++) {
			if (p->conns[i]->state == PC_IDLE && (best == NULL ||
			    p->conns[i]->idle_since < best->idle_since))
				best = p->conns[i];
		}
	}
	return (best);
}

/* The pool needs a connection the budget cannot give now: queue it, and
 * close another database's idle connection for it if there is one. */
static void
pool_budget_wait(struct pool *p)
{
	struct pool_budget	*b = p->budget;
	struct pool_conn	*victim;

	if (!p->budget_waiting) {
		TAILQ_INSERT_TAIL(&b->waiting, p, wait_entry);
		p->budget_waiting = 1;
	}
	if (b->used >= b->cap && (victim = pool_budget_victim(b, p)) != NULL) {
		log_debug("database: max_connections_total (%d) reached: "
		    "closing an idle connection for another database", b->cap);
		pool_drop(victim);
	} else
		event_active(b->wake_ev, EV_TIMEOUT, 0);
}

/* Slots came free: the oldest waiting pools open what they still need; one
 * that needs nothing any more gives its slot to the next. */
static void
pool_budget_wake(evutil_socket_t fd, short events, void *arg)
{
	struct pool_budget	*b = arg;
	struct pool		*p;
	int			 i;

	(void)fd;
	(void)events;
	while ((p = TAILQ_FIRST(&b->waiting)) != NULL &&
	    (b->cap == 0 || b->used < b->cap)) {
		TAILQ_REMOVE(&b->waiting, p, wait_entry);
		p->budget_waiting = 0;
		if (pool_need(p) <= 0 && !pool_eager(p))
			continue;
		for (i = 0; i < p->size; i++) {
			if (p->conns[i]->state == PC_DOWN &&
			    !evtimer_pending(p->conns[i]->timer, NULL))
				break;
		}
		if (i == p->size)
			continue;
		if (++b->used > b->peak)
			b->peak = b->used;
		pool_token(p->conns[i], 1);
		pool_connect(p->conns[i]);
		/* It may need more: pool_grant asks again once this one is
		 * up, behind whoever waits now. */
		if (pool_need(p) > 0 && !p->budget_waiting)
			pool_budget_wait(p);
	}
}

/* Whether a request could have a connection of this pool soon, for status:
 * POOL_OPEN one is up; POOL_CAN_OPEN (on demand) one may open now;
 * POOL_NO_BUDGET every connection of the cap is busy elsewhere or others
 * wait before it; POOL_DOWN none is up and the last attempt failed (an
 * on-demand pool tries once more in the background). */
enum pool_avail
pool_available(struct pool *p)
{
	struct pool_budget	*b = p->budget;
	int			 i;

	if (pool_any_connection(p) != NULL)
		return (POOL_OPEN);
	if (pool_eager(p))
		return (POOL_DOWN);
	for (i = 0; i < p->size; i++) {
		if (p->conns[i]->state == PC_CONNECTING ||
		    p->conns[i]->state == PC_CHECKING)
			return (POOL_CAN_OPEN);
	}
	if (p->last_error != NULL) {
		/* Retry in the background, for the next status. */
		for (i = 0; i < p->size; i++) {
			if (p->conns[i]->state == PC_DOWN &&
			    !evtimer_pending(p->conns[i]->timer, NULL) &&
			    pool_budget_take(b)) {
				pool_token(p->conns[i], 1);
				pool_connect(p->conns[i]);
				break;
			}
		}
		return (POOL_DOWN);
	}
	if (p->budget_waiting || (b != NULL && b->cap > 0 &&
	    (b->used >= b->cap || !TAILQ_EMPTY(&b->waiting)) &&
	    pool_budget_victim(b, p) == NULL))
		return (POOL_NO_BUDGET);
	return (POOL_CAN_OPEN);
}

/* The pool's connections in one word, for status's database.connection. */
const char *
pool_connection_word(struct pool *p)
{
	switch (pool_available(p)) {
	case POOL_OPEN:
		return ("open");
	case POOL_NO_BUDGET:
		return ("no_budget");
	case POOL_DOWN:
		return ("down");
	default:
		break;
	}
	return (p->last_error == NULL && !p->ever_connected ? "not_yet" :
	    "closed");
}

/* Whether the pool opens its connections on demand. */
int
pool_on_demand(struct pool *p)
{
	return (!pool_eager(p));
}

/* Whether the daemon caps its connections (max_connections_total), so a
 * request may wait for a slot of the cap rather than for PostgreSQL. */
int
pool_capped(struct pool *p)
{
	return (p->budget != NULL && p->budget->cap > 0);
}

/* Whether the pool waits in the budget's queue for a slot of the cap (its
 * run says so, and status), with how many of the cap are in use. */
int
pool_budget_queued(struct pool *p, int *used, int *cap)
{
	*used = p->budget != NULL ? p->budget->used : 0;
	*cap = p->budget != NULL ? p->budget->cap : 0;
	return (pool_capped(p) && p->budget_waiting);
}
