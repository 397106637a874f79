/*
 * The engine's private header, shared by its rooms: migrate.c (files, entry
 * points), job.c (a job's life, lock, state), plan.c (assessment, schemas,
 * plan), run.c (running steps), book.c (migd's own SQL around them),
 * stamp.c (stamp, resolve), adopt.c and adopt_from.c (taking over a
 * database, from Alembic or another tool), cancel.c
 * and report.c (read-only answers).
 * Nothing outside the engine includes it.
 */
#ifndef MIGD_ENGINE_H
#define MIGD_ENGINE_H

#include "migrate.h"

#define MIGRATE_STATUS_WAIT_MS	1500	/* status falls back to the cache */
#define MIGRATE_LOCK_POLL_MS	100
#define MIGRATE_SLOT_POLL_MS	250	/* a run waiting for a slot of the cap */
#define MIGRATE_SQL_EXCERPT	300
/* Before migd writes its rows after a failed step: as migd, whatever role
 * or settings the migration left (ended by "; "). */
#define BOOK_AS_MIGD	"SET SESSION AUTHORIZATION DEFAULT; RESET ALL; "
/* The note on the history row of a skipped revision run by apply_skipped. */
#define BOOK_OUT_OF_ORDER	"applied out of order (apply_skipped): the " \
	"version table was already past it"
#define MIGRATE_STATUS_LOAD_MS	100	/* status waits for a load */
#define MIGRATE_PLAN_SQL_MAX	(64 * 1024)	/* a step's SQL in a plan */
#define MIGRATE_PLAN_STMT_MAX	(4 * 1024)	/* one statement of it */

/* What the database says: version rows and, per revision, its history. */
struct dbrev {
	char		*revision;
	char		*checksum;	/* of the last apply or stamp, or NULL */
	int		 dirty;
	int		 known;		/* recorded as applied */
	int		 ran;		/* applied since the newest stamp */
};
struct dbstate {
	int		 has_version;
	int		 has_history;
	char		**rows;
	size_t		 n_rows;
	struct dbrev	*revs;
	size_t		 n_revs;
};

struct job;
typedef void (*job_fn)(struct job *, PGresult *);

/* struct job's evt: what is known of the server's event triggers. */
#define RUN_EVT_UNKNOWN	0	/* not asked, or code ran since */
#define RUN_EVT_NONE	1
#define RUN_EVT_SOME	2

struct job {
	TAILQ_ENTRY(job)	 entry;		/* the run queue */
	TAILQ_ENTRY(job)	 all;		/* every live job */
	struct database		*db;		/* the one it runs on */
	struct engine		*e;		/* db's engine */
	struct request		*req;
	struct request		**joined;	/* status requests riding along */
	size_t			 n_joined;
	enum migrate_op		 op;
	int			 mutating;
	/* parameters */
	char			*target;
	char			**targets;	/* stamp: each revision named */
	size_t			 n_targets;
	int			 purge;		/* stamp --purge */
	char			*resolve_as;
	json_t			*accept;	/* revisions whose edit to accept */
	char			*adopt_from;	/* adopt --from: the tool's name */
	int			 adopt_fmt;	/* and its layout (enum layout_format) */
	char			*adopt_table;	/* adopt --table: its state table */
	size_t			*adopt_revs;	/* applied, in upgrade order */
	size_t			 n_adopt;
	json_t			*adopt_gone;	/* versions recorded whose file was
					   removed (dbmate, diesel) */
	char			*accept_sql;	/* their history rows */
	int			 dry_run;
	int			 allow_drift;
	int			 apply_skipped;	/* run skipped revisions first */
	size_t			 out_of_order;	/* the first steps are those */
	int			 atomic;	/* the whole plan in one transaction */
	char			*cancelled_by;	/* who asked to cancel, or NULL */
	long			 limit;
	/* the connection and where we are */
	struct pool_waiter	*waiter;
	struct pool_conn	*pc;
	struct event		*timer;		/* lock polling */
	struct event		*wait_timer;	/* waiting for a connection */
	double			 wait_t0;	/* since when */
	int			 slot_poll;	/* a run under the cap: polled */
	double			 slot_since;	/* waiting for a slot of the cap */
	double			 conn_deadline;	/* connect_timeout, once it has one */
	job_fn			 next;
	double			 deadline;
	int			 locked;
	int			 lock_said;	/* told it waits for the lock */
	int			 session_set;	/* SET outside a transaction */
	int			 ran_sql;	/* user SQL ran on the session */
	int			 refresh;	/* 1: may have changed the state, to
						   read for status before release;
						   2: reading it */
	int			 rechecked;	/* tables looked up again */
	int			 vschema;	/* the version table's schema exists */
	int			 hschema;	/* the history table's, too */
	int			 cheap;		/* asked only the history's key */
	int			 full;		/* the summary is needed after all */
	int			 lost_step;	/* the connection died in a step */
	int			 recording;	/* writing that on another one */
	int			 ending;	/* cleaning up: too late to cancel */
	int			 files_fresh;	/* loaded after it was asked */
	struct revset		*rs;
	struct dbstate		 st;
	struct graph_plan	 plan;
	enum graph_dir		 dir;
	size_t			 step;
	size_t			 stmt;
	int			 tx;		/* current step is transactional */
	char			*mark_id;	/* history row of a bare step */
	size_t			 prefix_len;	/* what went before the statement */
	const struct sqlscan_stmt *sent; /* the statement in flight, or NULL */
	/* transactions of a transactional step (the file's BEGIN/COMMIT) */
	size_t			 segments;	/* how many the section has */
	size_t			 segment;	/* the current one, from 1 */
	size_t			 seg_committed;	/* committed so far */
	int			 seg_open;	/* migd began one on the server */
	const struct sqlscan_stmt *seg_begin;	/* the file's BEGIN for the next */
	const struct sqlscan_stmt *seg_end;	/* COMMIT ending the current */
	const struct sqlscan_stmt *seg_sets;	/* its SET TRANSACTIONs */
	size_t			 n_seg_sets;
	int			 seg_end_sent;	/* that COMMIT is in flight */
	int			 seg_end_line;
	const struct sqlscan_stmt **pipe_map;	/* pipelined: the file's
						   statement of each query */
	size_t			 pipe_own;	/* migd's BEGIN and timeouts */
	/* an atomic run's steps in one pipeline (run_batch) */
	size_t			*pipe_step;	/* the step of each query */
	unsigned char		*pipe_ends;	/* the query ends its step */
	size_t			 batch_end;	/* the step after the batch */
	struct errlist		 hist;		/* an atomic run's history rows,
						   written with its COMMIT */
	int			 guard_retake;	/* the check takes the next step's
						   witness (same batch) */
	/* Whether the server has an enabled event trigger (code any DDL may
	 * run): RUN_EVT_NONE when last asked and no step since ran code that
	 * could have made one, and only then does a step whose SQL changes no
	 * session state go without the reset (run_batch). */
	int			 evt;
	ssize_t			 pipe_evt;	/* that question's query, or -1 */
	/* An atomic batch's steps after one that ran code went without the
	 * reset on the word of the question before the batch; the question
	 * after it says whether that held (run_batch_done). */
	int			 evt_verify;
	int			 evt_careful;	/* it did not: never again this run */
	char			*copy_refused;	/* a COPY to or from migd met */
	int			 witness;	/* the step's lock witness taken */
	size_t			 notices;	/* of the current step */
	size_t			 notices_dropped; /* past RUN_NOTICE_MAX */
	char			**managed;	/* schemas no step may drop */
	size_t			 n_managed;
	double			 t0, step_t0, step_wall;
	char			**ensure;	/* schemas to create before the run */
	size_t			 n_ensure;
	json_t			*created;	/* schemas created, for history */
	json_t			*done;		/* finished steps */
	/* the outcome, sent once the connection is clean again */
	json_t			*result;
	int			 err_code;
	char			*err_kind;
	char			*err_msg;
	json_t			*err_data;
	char			*fail_sql;	/* failure history row to write */
	/* a bare step's concurrent statements (CREATE INDEX CONCURRENTLY...) */
	int			 conc_timeouts;	/* the session has their timeouts */
	int			 prepared;	/* ...set for the next statement */
	char			*invalid_before; /* INVALID indexes before a build */
	struct errlist		 leftovers;	/* INVALID indexes a failed build
						   left, to drop */
	size_t			 leftover;	/* the one being dropped */
	int			 leftover_failed;
	int			 clean_fail;	/* nothing of the failed step is
						   left: not dirty */
	/* a failed step's error, kept while its leftovers are dropped */
	json_t			*step_err_data;
	char			*step_err;
	char			*step_err_code;
	/* lint of the plan (plan_lint.c), judged, then given the catalog's
	 * sizes and lock holders before the plan goes on */
	struct lint_report	*lint_rep;
	char			**lint_revs;	/* each finding's revision */
	char			**lint_tables;	/* the existing tables named */
	size_t			 n_lint_tables;
	ssize_t			*lint_table_of;	/* each finding's, or -1 */
	json_t			*lint_blockers;	/* per table, or NULL */
	json_t			*lint_problems;	/* the plan's, while it waits */
	json_t			*lint_ask;	/* lint method: revisions */
	int			 lint_all;	/* lint method: each alone */
	json_t			*lint_texts;	/* lint method: files sent */
	int			 lint_format;	/* theirs: enum layout_format */
	json_t			*lint_notes;	/* lint method: not linted */
	size_t			 lint_files;
	/* lock-aware retries ([migrations] lock_retries) */
	int			 attempt;	/* of the current step, from 1 */
	struct event		*retry_timer;	/* the wait before the next */
	unsigned int		 rnd;		/* the jitter's rand_r state */
	char			*waited_for;	/* who held the lock, as said */
	int			 holders_asked;	/* looked them up for this failure */
	long			 retry_wait_ms;	/* the wait now */
	json_t			*step_lint;	/* the step's lint findings */
	json_t			*lint_by_rev;	/* the plan's, by revision */
};
TAILQ_HEAD(jobs, job);

/* Something waiting for the files: fn(arg) once load seq has ended; owner
 * is the engine that asked (files_move). */
struct files_waiter {
	TAILQ_ENTRY(files_waiter) entry;
	void			*owner;
	unsigned long		 seq;
	void			(*fn)(void *);
	void			*arg;
};
TAILQ_HEAD(files_waiters, files_waiter);

struct loader;
struct files_table;

/* The migration files of one directory as read with one set of settings:
 * the loaded set, its load and watch, shared by every database reading
 * them alike (files.c). */
struct files {
	TAILQ_ENTRY(files)	 entry;		/* in its table */
	struct files_table	*table;
	struct {
		const char	*name;		/* borrowed from the database */
		const char	*tag;
	}			*users;		/* the databases reading it */
	size_t			 n_users;
	int			 orphan;	/* no user: freed from the loop */
	int			 fresh;		/* its first load is under way */
	/* what the load takes: the set's key */
	char			*directory;
	int			 format;
	int			 strict;	/* SQL the parser refuses is an
						   error (an old server) */
	char			**schemas;
	size_t			 n_schemas;
	char			*version_schema;
	char			*history_schema;
	/* the loaded set and its load */
	struct revset		*rs;		/* the last valid set */
	json_t			*errors;	/* problems of the files, or NULL */
	int			 stale;		/* the files changed since rs */
	int			 loaded;	/* a load has ended: rs or errors */
	int			 seed_valid;	/* its first load follows another
						   reading's valid set */
	struct loader		*loader;	/* the load running, or NULL */
	unsigned long		 load_seq;	/* loads started */
	unsigned long		 done_seq;	/* the last one ended */
	int			 again;		/* load again after this one */
	int			 again_full;
	int			 ask_next;	/* the next load was asked: log it */
	int			 load_asked;	/* the running one was */
	int			 load_known;	/* it is of known changes */
	double			 load_t0;	/* when it began */
	struct files_waiters	 waiters;
	struct files_waiters	 resuming;	/* served, being called */
	struct files_waiters	 brief;		/* status, for a moment */
	struct files_waiters	*brief_now;	/* being called */
	struct event		*brief_timer;
	struct event		*serve_ev;	/* waiters moved here */
	struct migset		 seen;		/* what a refused load read */
	int			 no_inotify;	/* told the operator; checking */
	struct event		*recheck;	/* every second without it */
	int			 inotify;	/* watches rs's directories, or -1 */
	struct event		*inotify_ev;
	char			**watched;	/* the directories it watches, */
	struct migsig		*watched_sigs;	/* each as the load that read it saw */
	size_t			 n_watched;
	int			 watch_lost;	/* a watch ended (IN_IGNORED): renew */
	char			*skipped_said;	/* entries not read, as logged */
};

/* One database's engine state (database.c creates and frees it). */
struct engine {
	struct database	*db;		/* its database: settings, pool */
	int		 draining;	/* migrate_shutdown: no new runs */
	struct jobs	 queue;		/* mutating jobs; the first one runs */
	TAILQ_HEAD(, job) all;		/* every live job, for shutdown */
	struct files	*files;		/* the files it reads, maybe shared */
	int		 tables_known;	/* both tables were there last time */
	struct job	*status_leader;	/* a status others may still join */
	struct dbstate	 last_db;	/* for status when no connection is free */
	char		*hist_key;	/* max(id) of the history when... */
	struct dbstate	 hist_cache;	/* ...this summary was read */
	int		 have_last_db;
	double		 last_db_at;	/* wall clock when it was read */
	char		 host[256];
};


/* migrate.c */
void	 migrate_engine_init(struct engine *e, struct database *db);
void	 migrate_engine_clear(struct engine *e);
double	 migrate_wall(void);
char	*migrate_qualify(const char *schema, const char *table);
long long	 migrate_lock_key(const struct config_db *cf);
void	 dbstate_clear(struct dbstate *st);
void	 migrate_keep_state(struct engine *e, const struct dbstate *st);
void	 dbstate_sort(struct dbstate *st);
void	 dbstate_copy(struct dbstate *dst, const struct dbstate *src);
void	 dbstate_copy_revs(struct dbstate *dst, const struct dbstate *src);
const struct dbrev	*dbstate_rev(const struct dbstate *st,
	    const char *revision);
const char	*migrate_reset_sql(struct job *j);
char	*migrate_more(size_t n);
int	 migrate_files_changed(struct engine *e);
void	 migrate_load_start(struct engine *e, int full);
void	 migrate_files_kick(struct engine *e);
int	 migrate_files_loading(struct engine *e);
int	 migrate_files_ready(struct engine *e, int check);
void	 migrate_files_wait(struct engine *e, int check,
	    void (*fn)(void *), void *arg);
int	 migrate_status_wait(struct job *j);
void	 migrate_files_forget(struct engine *e, void *arg);
int	 migrate_server_version(struct engine *e);

/* files.c */
struct files	*files_get(struct files_table *t, const struct config_db *cf,
		    int strict, const char *name, const char *tag);
void		 files_put(struct files *f, const char *name);
int		 files_is(const struct files *f, const struct config_db *cf,
		    int strict);
int		 files_changed(struct files *f);
void		 files_load(struct files *f, int full);
void		 files_reload(struct files *f);
int		 files_loading(struct files *f);
void		 files_kick(struct files *f);
int		 files_ready(struct files *f, int check);
void		 files_wait(struct files *f, void *owner, int check,
		    void (*fn)(void *), void *arg);
int		 files_brief(struct files *f, void *owner, void (*fn)(void *),
		    void *arg);
void		 files_forget(struct files *f, void *arg);
void		 files_move(struct files *from, struct files *to, void *owner);

/* job.c */
void	 job_free(struct job *j);
void	 job_set_error(struct job *j, int code, const char *kind, json_t *data,
	    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void	 job_fail(struct job *j, int code, const char *kind, json_t *data,
	    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void	 job_reply(struct job *j);
void	 job_query(struct job *j, const char *sql, int n,
	    const char *const *params, job_fn next);
void	 job_query_discard(struct job *j, const char *sql, job_fn next);
void	 job_query_copy(struct job *j, const char *sql, char *copy,
	    job_fn next);
void	 job_pipeline(struct job *j, struct errlist *sql,
	    const unsigned char *discard, const unsigned char *flush,
	    job_fn next);
json_t	*migrate_pg_error(PGresult *res);
int	 job_ok(struct job *j, PGresult *res);
void	 job_end(struct job *j, PGresult *res);
void	 job_read_state(struct job *j);
void	 job_state_refresh(struct job *j);

/* plan.c */
int	 migrate_applied(struct revset *rs, const struct dbstate *st,
	    char *marks);
json_t	*migrate_rev_json(struct revset *rs, size_t idx);
json_t	*migrate_skipped(struct revset *rs, const struct dbstate *st);
void	 migrate_assess(struct revset *rs, int invalid,
	    const struct dbstate *st, json_t *o);
void	 migrate_status_reply(struct job *j, int stale);
char	*migrate_text_array(char **v, size_t n);
void	 job_plan(struct job *j);
void	 job_plan_checked(struct job *j, json_t *problems, json_t *lint);
/* plan_lint.c */
void	 planlint(struct job *j, json_t *problems);
void	 job_lint(struct job *j);
void	 planlint_free(struct job *j);
int	 planlint_request(struct job *j, json_t *params, char **cause);
json_t	*migrate_rows_json(char **rows, size_t n);
void	 migrate_plan_ends(struct job *j);
void	 migrate_plan_result(struct job *j, json_t *missing);

/* cancel.c */
int	 job_cancelled(struct job *j);

/* book.c */
char	*book_literal(struct job *j, const char *s);
char	*book_time(double);
char	*book_history_row(struct job *j, const char *revision,
	    const char *direction, int success, int dirty,
	    const char *checksum, const char *message, const char *file,
	    double wall, double ms, double fin, const char *sqlstate,
	    const char *error, int step);
char	*book_history_copy(struct job *j, const char *revision,
	    const char *direction, const char *checksum, const char *message,
	    const char *file, double wall, double ms, double fin,
	    const char *sqlstate);
char	*book_history_sql(struct job *j, const char *revision,
	    const char *direction, int success, int dirty,
	    const char *checksum, const char *message, const char *file,
	    double wall, double ms, const char *sqlstate, const char *error);
char	*book_step_history_sql(struct job *j, int success, int dirty,
	    double ms, const char *sqlstate, const char *error);
void	 book_rows_sql(struct job *j, const size_t *del, size_t n_del,
	    const size_t *ins, size_t n_ins, struct errlist *sql);
char	*book_session_timeouts(struct job *j, int concurrent);
char	*book_mark_sql(struct job *j, int success, int dirty,
	    const char *sqlstate,
	    const char *error);
void	 book_timeouts_sql(struct job *j, int local, struct errlist *sql);
void	 book_timeouts_witness_sql(struct job *j, struct errlist *sql);
char	*book_timeouts(struct job *j, int local);
char	*book_joined(const struct errlist *sql);
char	*book_directions(void);
const char *book_directions_query(void);
void	 book_directions_sql(struct job *j, PGresult *res,
	    struct errlist *sql);
char	*book_witness_sql(struct job *j);
char	*book_guard_failure(struct job *j, PGresult *res,
	    const char **sqlstate);
void	 book_step_sql(struct job *j, const char *text, int ahead,
	    int session, struct errlist *sql);
const char *book_evt_sql(void);
void	 book_atomic_end_sql(struct job *j, struct errlist *sql, char **copy);

/* run.c */
void	 run_notify(struct job *j, const char *event, json_t *params);
char	*run_lost_sql(struct job *j);
char	*run_lost_note(struct job *j);
const char	*run_file(const struct job *j);
const struct sqlscan	*run_section(struct job *j, const char **text);
int	 run_res_ok(PGresult *res);
int	 run_partly_done(struct job *j);
void	 run_step(struct job *j);
const struct sqlscan	*run_step_begin(struct job *j, const char **text);
void	 run_step_ok(struct job *j);
void	 run_step_failed(struct job *j, PGresult *res,
	    const struct sqlscan_stmt *s, const char *text);
void	 run_step_failed_end(struct job *j);
int	 run_stopping(struct job *j);
void	 run_atomic_commit(struct job *j);
void	 run_finish(struct job *j);
char	*run_begin(struct job *j, const char *text);
size_t	 run_opening(struct job *j, const struct sqlscan *sc, size_t i);
int	 run_pipelined(const char *text);

/* run_batch.c */
int	 run_batchable(struct job *j, size_t i);
void	 run_batch(struct job *j);

/* run_notice.c */
void	 run_notice(struct pool_conn *pc, const PGresult *res, void *arg);
void	 run_notices_end(struct job *j);

/* run_schemas.c */
void	 run_schemas(struct job *j, PGresult *res);

/* run_retry.c */
int	 run_lock_failed(struct job *j);
char	*run_no_retry(struct job *j);
void	 run_retry(struct job *j, json_t *data, char *error);
void	 run_retry_stop(struct job *j);
int	 run_retry_waiting(struct job *j);
void	 run_leftovers(struct job *j);

/* stamp.c */
void	 job_stamp(struct job *j);
void	 job_resolve(struct job *j);
void	 job_accept(struct job *j);
void	 stamp_targets(struct job *j, json_t *revision);

/* adopt.c */
void	 job_adopt(struct job *j);
json_t	*adopt_rows_sql(struct job *, const size_t *, size_t, double,
	    struct errlist *);

/* adopt_from.c: adopt --from TOOL */
void	 adopt_from_start(struct job *j);

/* report.c */
void	 job_dispatch(struct job *j);

#endif
