/*
 * The pool's insides, shared by its three files: pool.c (connections,
 * queries, pipelines, hand-out), pool_check.c (whether a connection through
 * a pooler has a session of its own) and pool_budget.c (the daemon-wide cap
 * on connections).  Nothing outside them includes this.
 */
#ifndef MIGD_POOL_INT_H
#define MIGD_POOL_INT_H

#include <sys/queue.h>

#include <event2/event.h>
#include <libpq-fe.h>

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
	size_t			 pipe_sent;	/* given to libpq; the rest wait
						   in pipe_sql */
	char			**pipe_sql;	/* the queries not yet given */
	unsigned char		*pipe_flush;	/* per query: a flush after it */
	size_t			 pipe_done;
	ssize_t			 pipe_failed;
	unsigned char		*pipe_discard;	/* per query: rows discarded */
	pool_progress_cb	 pipe_progress;	/* each query's end, until one fails */
	void			*pipe_progress_arg;
	/* the query in flight met a COPY to or from migd (why, or NULL) */
	char			*copy_refused;
	/* the data of the query's COPY FROM STDIN, until it is sent */
	char			*copy_in;
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
	char			*tag;		/* "NAME: " in the log, or
						   "database: " */
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

/* pool.c */
void	pool_connect(struct pool_conn *pc);
void	pool_drop(struct pool_conn *pc);
int	pool_eager(struct pool *p);
void	pool_fail(struct pool_conn *pc, const char *why);
void	pool_grant(struct pool *p);
int	pool_need(struct pool *p);
void	pool_ready(struct pool_conn *pc);
void	pool_sent(struct pool_conn *pc, pool_result_cb cb, void *arg);
void	pool_set_error(struct pool *p, const char *msg);
void	pool_watch(struct pool_conn *pc, short what);

/* pool_check.c */
void	pool_check_drop(struct pool_conn *pc);
void	pool_check_end(struct pool_conn *pc);
void	pool_check_failed(struct pool_conn *pc, const char *why);
void	pool_check_next(struct pool *p);
void	pool_check_result(struct pool_conn *pc, PGresult *res, void *arg);
void	pool_check_start(struct pool_conn *pc);

/* pool_budget.c */
void	pool_budget_closing(struct pool_budget *b, PGconn *pg);
void	pool_budget_put(struct pool_budget *b);
int	pool_budget_take(struct pool_budget *b);
void	pool_budget_wait(struct pool *p);
void	pool_budget_wake(evutil_socket_t fd, short events, void *arg);
void	pool_token(struct pool_conn *pc, int on);

#endif
