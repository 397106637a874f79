/*
 * pool_probe: migd's connection pool (daemon/pool.c, the real one) on a real
 * PostgreSQL, for what only the server can do to it: a COPY to or from the
 * client that no static check saw.  test_engine_run_hardening.py runs it.
 *
 *	pool_probe CONNINFO simple|discard|pipeline SQL...
 *
 * simple and discard send the first SQL as one query (discard: its rows
 * dropped as they arrive); pipeline sends every SQL in one pipeline.  Prints
 * one JSON line: the status of the result, its SQLSTATE and message, why a
 * COPY was refused, what the same connection answers next, and how many
 * times the loop woke; exits 0.  A loop that spins never gets that far.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "migd.h"

struct probe {
	struct event_base	*base;
	struct pool		*pool;
	const char		*mode;
	char			**sqls;
	int			 n;
	json_t			*out;
	unsigned long		 wakeups;
};

/* pool.c tells systemd how the database is; the probe has no systemd. */
void
migd_notify(const char *fmt, ...)
{
	(void)fmt;
}

/* The connection still works after what happened: ask it something. */
static void
probe_after(struct pool_conn *pc, PGresult *res, void *arg)
{
	struct probe	*p = arg;

	json_object_set_new(p->out, "after", res != NULL &&
	    PQresultStatus(res) == PGRES_TUPLES_OK ? json_string(PQgetvalue(res,
	    0, 0)) : json_null());
	PQclear(res);
	if (pc != NULL)
		pool_release(pc);
	event_base_loopexit(p->base, NULL);
}

/* The outcome of the probed SQL. */
static void
probe_done(struct pool_conn *pc, PGresult *res, void *arg)
{
	struct probe	*p = arg;
	const char	*v;

	if (res == NULL) {
		json_object_set_new(p->out, "status", json_string("lost"));
		event_base_loopexit(p->base, NULL);
		return;
	}
	json_object_set_new(p->out, "status", json_string(PQresStatus(
	    PQresultStatus(res))));
	json_object_set_new(p->out, "ntuples", json_integer(PQntuples(res)));
	v = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	json_object_set_new(p->out, "sqlstate", v ? json_string(v) :
	    json_null());
	v = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	json_object_set_new(p->out, "message", v ? json_string(v) :
	    json_null());
	v = pool_copy_refused(pc);
	json_object_set_new(p->out, "copy_refused", v ? json_string(v) :
	    json_null());
	json_object_set_new(p->out, "transaction", json_integer(
	    PQtransactionStatus(pool_conn_pg(pc))));
	PQclear(res);
	if (pool_query(pc, "SELECT 'still here'", 0, NULL, probe_after, p) != 0)
		probe_after(pc, NULL, p);
}

/* The SQL as pool_pipeline takes it: copies it owns. */
static char **
probe_sqls(struct probe *p)
{
	char	**v;
	int	  i;

	v = xreallocarray(NULL, (size_t)p->n, sizeof *v);
	for (i = 0; i < p->n; i++)
		v[i] = xstrdup(p->sqls[i]);
	return (v);
}

/* A connection: send the SQL. */
static void
probe_got(struct pool_conn *pc, void *arg)
{
	struct probe	*p = arg;
	int		 rv;

	if (pc == NULL) {
		json_object_set_new(p->out, "status", json_string("no "
		    "connection"));
		event_base_loopexit(p->base, NULL);
		return;
	}
	if (strcmp(p->mode, "pipeline") == 0)
		rv = pool_pipeline(pc, probe_sqls(p), NULL, NULL,
		    (size_t)p->n, probe_done, p);
	else if (strcmp(p->mode, "discard") == 0)
		rv = pool_query_discard(pc, p->sqls[0], probe_done, p);
	else
		rv = pool_query(pc, p->sqls[0], 0, NULL, probe_done, p);
	if (rv != 0) {
		json_object_set_new(p->out, "status", json_string("not sent"));
		event_base_loopexit(p->base, NULL);
	}
}

/* Counts the loop's turns: a spinning loop would show in them. */
static void
probe_tick(evutil_socket_t fd, short events, void *arg)
{
	struct probe	*p = arg;

	(void)fd;
	(void)events;
	p->wakeups++;
}

/* Gives up after 20 s: the test then fails on the missing answer. */
static void
probe_timeout(evutil_socket_t fd, short events, void *arg)
{
	struct probe	*p = arg;

	(void)fd;
	(void)events;
	json_object_set_new(p->out, "status", json_string("timeout"));
	event_base_loopexit(p->base, NULL);
}

int
main(int argc, char *argv[])
{
	struct probe	 p;
	struct config_db cf;
	struct event	*tick, *limit;
	struct timeval	 tv = { 0, 100000 }, lim = { 20, 0 };
	char		*s;

	if (argc < 4) {
		fprintf(stderr, "usage: pool_probe CONNINFO simple|discard|"
		    "pipeline SQL...\n");
		return (2);
	}
	log_init(LOG_LVL_DEBUG);
	memset(&p, 0, sizeof p);
	memset(&cf, 0, sizeof cf);
	cf.conninfo = argv[1];
	cf.pool_size = 1;
	cf.connect_timeout = 10;
	p.mode = argv[2];
	p.sqls = argv + 3;
	p.n = argc - 3;
	p.out = json_object();
	p.base = event_base_new();
	p.pool = pool_new(p.base, &cf, NULL);
	tick = event_new(p.base, -1, EV_PERSIST, probe_tick, &p);
	event_add(tick, &tv);
	limit = evtimer_new(p.base, probe_timeout, &p);
	evtimer_add(limit, &lim);
	pool_acquire(p.pool, probe_got, &p);
	event_base_dispatch(p.base);
	json_object_set_new(p.out, "ticks", json_integer((json_int_t)
	    p.wakeups));
	s = json_dumps(p.out, JSON_COMPACT);
	printf("%s\n", s);
	free(s);
	json_decref(p.out);
	event_free(tick);
	event_free(limit);
	pool_free(p.pool);
	event_base_free(p.base);
	return (0);
}
