/*
 * The daemon's connection budget (max_connections_total, idle_close): every
 * database's connections open or opening, never above the cap; pools that
 * need one wait in a FIFO, and a full budget closes another database's
 * longest idle connection for them.  Also what status says of a pool's
 * chances of a connection (pool_available).
 */
#include <sys/queue.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "migd.h"
#include "pool_int.h"

/* Counts pc's slot of the budget in its pool; the budget lists the pools
 * that hold slots, where pool_budget_victim looks (not through every
 * database of a large fleet). */
void
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
void
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
int
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
void
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
void
pool_budget_wait(struct pool *p)
{
	struct pool_budget	*b = p->budget;
	struct pool_conn	*victim;

	if (!p->budget_waiting) {
		TAILQ_INSERT_TAIL(&b->waiting, p, wait_entry);
		p->budget_waiting = 1;
	}
	if (b->used >= b->cap && (victim = pool_budget_victim(b, p)) != NULL) {
		log_debug("%smax_connections_total (%d) reached: closing an "
		    "idle connection for another database", victim->pool->tag,
		    b->cap);
		pool_drop(victim);
	} else
		event_active(b->wake_ev, EV_TIMEOUT, 0);
}

/* Slots came free: the oldest waiting pools open what they still need; one
 * that needs nothing any more gives its slot to the next. */
void
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
 * wait before it; POOL_DOWN none is up and the last attempt failed, also
 * while another is under way (an on-demand pool tries once more in the
 * background, so the asker's own call may have started it). */
enum pool_avail
pool_available(struct pool *p)
{
	struct pool_budget	*b = p->budget;
	int			 i, opening = 0;

	if (pool_any_connection(p) != NULL)
		return (POOL_OPEN);
	if (pool_eager(p))
		return (POOL_DOWN);
	for (i = 0; i < p->size; i++) {
		if (p->conns[i]->state == PC_CONNECTING ||
		    p->conns[i]->state == PC_CHECKING)
			opening = 1;
	}
	if (p->last_error != NULL) {
		/* Retry in the background, for the next status. */
		for (i = 0; !opening && i < p->size; i++) {
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
	if (opening)
		return (POOL_CAN_OPEN);
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
