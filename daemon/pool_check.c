/*
 * Whether a new connection has a server session of its own, checked before
 * anyone may use it, and again before a run takes its lock through a pooler.
 */
#include <sys/queue.h>

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "migd.h"
#include "pool_int.h"

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

static void	pool_check_send(struct pool_conn *);
static void	pool_check_finish(struct pool_conn *, const char *);
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
void
pool_check_end(struct pool_conn *pc)
{
	pc->check_queued = 0;
	if (!pc->checking)
		return;
	pc->checking = 0;
	event_active(pc->pool->grant_ev, EV_TIMEOUT, 0);
}

/* Starts a check waiting for its turn, if none runs. */
void
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
void
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
void
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
		log_debug("%sa second client got server process %d too",
		    pc->pool->tag, pid);
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
void
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
			log_debug("%sserver process %d, before %d",
			    pc->pool->tag, pid, pc->server_pid);
			pool_check_refuse(pc, "this connection's queries now "
			    "run on another server process than before");
			return;
		}
		log_debug("%sserver process %d, announced %d: a pooler "
		    "sits between; checking its sessions", pc->pool->tag, pid,
		    PQbackendPID(pc->pg));
		ck->pid = pid;
		ck->lxid = lxid;
		pool_check_send(pc);
		return;
	}
	if (pid != ck->pid) {
		log_debug("%sserver process %d, then %d", pc->pool->tag,
		    ck->pid, pid);
		pool_check_refuse(pc, "two queries of one connection ran on "
		    "different server processes");
		return;
	}
	if (lxid < 0 || lxid != ck->lxid + 1) {
		log_debug("%stransaction %lld, then %lld on server "
		    "process %d", pc->pool->tag, ck->lxid, lxid, pid);
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
	log_info("%sconnected through a pooler that gives migd a "
	    "session of its own (server process %d)", pc->pool->tag, pid);
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
void
pool_check_start(struct pool_conn *pc)
{
	pool_check_drop(pc);
	memset(&pc->check, 0, sizeof pc->check);
	pc->state = PC_CHECKING;
	pool_watch(pc, EV_READ);
	if (pool_check_turn(pc))
		pool_check_send(pc);
}
