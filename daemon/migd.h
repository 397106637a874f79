/*
 * migd's private header: shared types and the prototypes of every room of
 * the daemon, grouped per file.  Pure modules with their own unit tests
 * (migfile, graph, sqlscan) keep their own headers, included here.
 */
#ifndef MIGD_H
#define MIGD_H

#include <sys/types.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "migd/protocol.h"
#include "util.h"

struct event_base;

/* log.c */
enum log_level { LOG_LVL_ERROR, LOG_LVL_WARNING, LOG_LVL_INFO, LOG_LVL_DEBUG };
void	 log_init(enum log_level);
void	 log_setlevel(enum log_level);
int	 log_getlevel(void);
int	 log_level_parse(const char *, enum log_level *);
const char *log_level_name(enum log_level);
void	 log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void	 log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
void	 log_error(const char *, ...) __attribute__((format(printf, 1, 2)));
void	 log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	 log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
void	 fatal(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
void	 fatalx(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));

/* config.c */
/* [migrations] lint: what a plan does with lint's findings. */
#define MIGD_LINT_OFF		0	/* not linted */
#define MIGD_LINT_WARN		1	/* shown in plan and run output */
#define MIGD_LINT_REFUSE	2	/* an error finding refuses the run */

/* One database's settings: everything an engine needs to serve it.  The
 * unnamed [database] and [migrations] are the defaults every [database NAME]
 * inherits what it does not set itself from. */
struct config_db {
	char		 *name;		/* "default" for the unnamed [database] */
	int		  line;		/* of its [database NAME] header, or 0 */
	/* [database] */
	char		 *conninfo;
	int		  pool_size;
	int		  connect_timeout;
	/* [migrations] */
	char		 *directory;
	char		**schemas;
	size_t		  n_schemas;
	char		 *version_schema;
	char		 *version_table;
	char		 *history_schema;
	char		 *history_table;
	long		  lock_timeout_ms;
	long		  statement_timeout_ms;
	long		  lock_wait_ms;
	long		  concurrent_lock_timeout_ms;
	long		  concurrent_statement_timeout_ms;
	char		  lock_timeout_text[32];
	char		  statement_timeout_text[32];
	char		  lock_wait_text[32];
	char		  concurrent_lock_timeout_text[32];
	char		  concurrent_statement_timeout_text[32];
	int		  lock_retries;
	long		  lock_retry_wait_ms;
	long		  lock_retry_max_wait_ms;
	char		  lock_retry_wait_text[32];
	char		  lock_retry_max_wait_text[32];
	int		  atomic;
	int		  lint;
	long		  lint_small_table_rows;
	int		  format;
};

struct config {
	char		 *path;
	/* [database], daemon-wide: across every database */
	int		  max_connections_total;	/* 0: no cap but pool_size */
	long		  idle_close_ms;		/* 0: connections stay open */
	char		  idle_close_text[32];
	/* every database, the unnamed one (if it is one) first; migctl's
	 * offline commands (-c CONFIG) pick one with config_pick_db */
	struct config_db *dbs;
	size_t		  n_dbs;
	struct config_db  defaults;	/* the unnamed sections', for migd -n */
	/* [control] */
	char		 *socket;
	int		  socket_mode;
	char		 *admin_group;
	char		 *read_group;
	int		  max_clients;
	int		  admin_reserve;	/* of max_clients, for admins */
	int		  max_request_bytes;
	int		  idle_timeout;
	/* [log] */
	enum log_level	  log_level;
	/* what is wrong but does not stop migd (config_load): to log */
	struct errlist	  warnings;
};
int	 config_parse(const char *, const char *, size_t, struct config **,
	    struct errlist *);
int	 config_load(const char *, struct config **, struct errlist *);
void	 config_free(struct config *);
void	 config_print(const struct config *, FILE *);
const char	*config_lint_name(int);
const struct config_db *config_find_db(const struct config *, const char *);
/* What a command reads of a database: config_pick_db, config_db_differs
 * (an offline command; files shared by databases reading them alike). */
#define CONFIG_READS_DIR	0x1	/* directory */
#define CONFIG_READS_FORMAT	0x2	/* format */
#define CONFIG_READS_SCHEMAS	0x4	/* schemas, where migd's tables live */
#define CONFIG_READS_RUN	0x8	/* their names, timeouts, atomic */
#define CONFIG_READS_ALL	0xf
/* The first setting of reads on which two databases differ, by its key in
 * the file, or NULL. */
const char	*config_db_differs(const struct config_db *,
		    const struct config_db *, int);
const struct config_db *config_pick_db(const struct config *, const char *,
	    int, char **);
int	 config_db_name_valid(const char *);

/* rpc.c */
enum rpc_type {
	RPC_STRING,
	RPC_INT,
	RPC_BOOL,
	RPC_STRINGS,		/* a non-empty array of strings */
	RPC_STRING_OR_STRINGS,	/* one string, or RPC_STRINGS */
	RPC_FILES		/* a non-empty array of {"path", "text"} */
};
struct rpc_param {
	const char	*name;
	enum rpc_type	 type;
	int		 required;
};
struct rpc_request {
	json_t		*msg;		/* the whole parsed object, owned */
	json_t		*id;		/* borrowed from msg; NULL for a notification */
	const char	*method;	/* borrowed from msg */
	json_t		*params;	/* borrowed from msg; an object, never NULL */
};
json_t	*rpc_parse(const char *, size_t, struct rpc_request *);
void	 rpc_request_clear(struct rpc_request *);
int	 rpc_check_params(json_t *, const struct rpc_param *, char **);
json_t	*rpc_result(json_t *, json_t *);
json_t	*rpc_error(json_t *, int, const char *, json_t *, const char *, ...)
	    __attribute__((format(printf, 5, 6)));
json_t	*rpc_notification(const char *, json_t *);
char	*rpc_encode(json_t *, size_t *);
json_t	*rpc_duration(double);

/* pqerr.c */
int	 pqerr_startup(const char *, char **, char[6]);
void	 pqerr_notice(const PGresult *, const char **, const char **);

/* control.c */
struct client;
struct peer {
	uid_t		 uid;
	gid_t		 gid;
	pid_t		 pid;
	char		*user;
	gid_t		*groups;	/* gid, the process's, /etc/group's */
	int		 n_groups;
	int		 groups_db;	/* the group database's are in */
	int		 is_admin;
	int		 is_reader;
};
/* What control_may_read learnt of the last directory it judged. */
struct control_readcache {
	char		*dir;
	int		 ok;
	char		*why;
};
int	 control_init(struct event_base *, const struct config *, int,
	    char **);
void	 control_reconfigure(const struct config *);
void	 control_shutdown(void);
void	 control_free(void);
u_int	 control_clients(void);
int	 control_idle(void);
void	 control_send(struct client *, json_t *);
void	 control_request_done(struct client *);
const struct peer *control_peer(struct client *);
int	 control_may_read(struct client *, const char *,
	    struct control_readcache *, char **);
void	 control_readcache_clear(struct control_readcache *);

/* cmd.c */
struct database;
struct request {
	struct client		*client;
	struct database		*db;		/* resolved by the dispatcher */
	const struct cmd_entry	*entry;
	struct rpc_request	 rpc;
	/* A fleet's request for one database (fleet.c): its answer goes to
	 * done (which owns the message), its notifications to the client
	 * with the database's name. */
	void			(*done)(struct request *, json_t *, void *);
	void			*done_arg;
};
#define CMD_READONLY	0x0
#define CMD_MUTATING	0x1
#define CMD_ANYDB	0x2	/* needs no database: req->db may be NULL */
struct cmd_entry {
	const char		*name;
	int			 flags;
	const struct rpc_param	*params;
	void			(*exec)(struct request *);
};
void	 cmd_dispatch(struct client *, const char *, size_t);
char	*cmd_database_names(void);
void	 cmd_reply(struct request *, json_t *);
void	 cmd_error(struct request *, int, const char *, json_t *,
	    const char *, ...) __attribute__((format(printf, 5, 6)));
void	 cmd_notify(struct request *, const char *, json_t *);

/* fleet.c */
int	 fleet_wants(const struct request *);
json_t	*fleet_notify_params(const struct request *, json_t *);
void	 fleet_exec(struct request *);

/* cmd_status.c */
void	 cmd_version_exec(struct request *);
void	 cmd_status_exec(struct request *);
void	 cmd_current_exec(struct request *);
void	 cmd_heads_exec(struct request *);
void	 cmd_revisions_exec(struct request *);
void	 cmd_history_exec(struct request *);
void	 cmd_plan_exec(struct request *);
void	 cmd_lint_exec(struct request *);
void	 cmd_schemas_exec(struct request *);
void	 cmd_cancel_exec(struct request *);
void	 cmd_verify_exec(struct request *);
void	 cmd_upgrade_exec(struct request *);
void	 cmd_downgrade_exec(struct request *);
void	 cmd_stamp_exec(struct request *);
void	 cmd_resolve_exec(struct request *);
void	 cmd_accept_exec(struct request *);
void	 cmd_adopt_exec(struct request *);
void	 cmd_reload_exec(struct request *);

/* pool.c */
struct pool;
struct pool_conn;
/* NULL instead of a connection: none can come until someone acts (the
 * database or role does not exist, authentication fails): see
 * pool_permanent_error and pool_last_error. */
typedef void (*pool_acquire_cb)(struct pool_conn *, void *);
typedef void (*pool_result_cb)(struct pool_conn *, PGresult *, void *);
typedef void (*pool_check_cb)(struct pool_conn *, const char *, void *);
typedef void (*pool_notice_cb)(struct pool_conn *, const PGresult *, void *);
typedef void (*pool_progress_cb)(struct pool_conn *, size_t, void *);
/* Why a COPY to or from migd was ended (pool_copy_refused). */
#define POOL_COPY_IN_REFUSED	"migd has no data for COPY FROM STDIN: a " \
	"migration cannot copy from the client; use INSERT, or COPY FROM a " \
	"file on the server"
#define POOL_COPY_OUT_REFUSED	"COPY TO STDOUT in a migration: a " \
	"migration cannot copy to the client (migd dropped the rows); use " \
	"COPY TO a file on the server, or remove it"
struct pool_stats {
	int	 size;
	int	 connected;
	int	 busy;
	int	 idle;
};
struct pool_budget;
enum pool_avail { POOL_OPEN, POOL_CAN_OPEN, POOL_NO_BUDGET, POOL_DOWN };
struct pool_budget *pool_budget_new(struct event_base *, int, long);
void		 pool_budget_set(struct pool_budget *, int, long);
void		 pool_budget_free(struct pool_budget *);
void		 pool_budget_stats(struct pool_budget *, int *, int *, int *);
struct pool	*pool_new(struct event_base *, const struct config_db *,
		     struct pool_budget *);
enum pool_avail	 pool_available(struct pool *);
const char	*pool_connection_word(struct pool *);
int		 pool_on_demand(struct pool *);
int		 pool_capped(struct pool *);
int		 pool_budget_queued(struct pool *, int *, int *);
void		 pool_free(struct pool *);
void		 pool_reconfigure(struct pool *, const struct config_db *);
void		 pool_stats(struct pool *, struct pool_stats *);
PGconn		*pool_any_connection(struct pool *);
const char	*pool_last_error(struct pool *);
const char	*pool_permanent_error(struct pool *);
const char	*pool_refused(struct pool *);
int		 pool_conn_server_pid(struct pool_conn *);
void		 pool_conn_retire(struct pool_conn *);
int		 pool_conn_pooled(struct pool_conn *);
void		 pool_recheck(struct pool_conn *, pool_check_cb, void *);
struct pool_waiter *pool_acquire(struct pool *, pool_acquire_cb, void *);
void		 pool_cancel_wait(struct pool *, struct pool_waiter *);
void		 pool_release(struct pool_conn *);
PGconn		*pool_conn_pg(struct pool_conn *);
int		 pool_query(struct pool_conn *, const char *, int,
		     const char *const *, pool_result_cb, void *);
int		 pool_query_discard(struct pool_conn *, const char *,
		     pool_result_cb, void *);
int		 pool_query_copy(struct pool_conn *, const char *, char *,
		     pool_result_cb, void *);
int		 pool_pipeline(struct pool_conn *, char **,
		     const unsigned char *, const unsigned char *, size_t,
		     pool_result_cb, void *);
int		 pool_pipeline_stop(struct pool_conn *);
void		 pool_pipeline_progress(struct pool_conn *, pool_progress_cb,
		     void *);
const char	*pool_copy_refused(struct pool_conn *);
void		 pool_set_notice(struct pool_conn *, pool_notice_cb, void *);
ssize_t		 pool_pipeline_failed(struct pool_conn *);

/* files.c: the loaded migration files, one set per directory and reading,
 * shared by the databases reading them alike */
struct files_table;
struct files_table *files_table_new(struct event_base *);
void		 files_table_free(struct files_table *);
struct files;
void		 files_table_reload(struct files_table *, struct files *);
int		 files_read_alike(const struct config_db *,
		     const struct config_db *);

/* database.c */
struct engine;
/* One database migd serves: its settings, its connections, its engine (run
 * queue, jobs, caches) and the loaded files it reads (shared with the
 * databases reading the same directory alike, from the daemon's table);
 * database_new and database_free are its whole lifetime. */
struct database {
	char			*name;
	char			*tag;		/* "NAME: " in the log, "" for
						   the unnamed [database] */
	char			*cli;		/* "--db NAME " in the migctl
						   commands its errors advise,
						   "" for the unnamed one */
	const struct config_db	*cf;		/* in migd.config; swapped on
						   reload */
	struct event_base	*base;
	struct pool		*pool;
	struct files_table	*files;		/* the daemon's loaded files */
	struct engine		*engine;
	json_t			*last_run;	/* the last run's outcome, for
						   status --all; NULL: none */
	/* held by the requests and rollouts that name it (database_hold):
	 * a database a reload removed is freed once none holds it */
	unsigned int		 refs;
	unsigned int		 rollouts;	/* upgrade --all in progress */
	int			 removed;	/* by a reload: no new request */
};
struct database	*database_new(struct event_base *, const struct config_db *,
		     struct pool_budget *, struct files_table *);
void		 database_free(struct database *);
void		 database_hold(struct database *, int);
void		 database_release(struct database *, int);
void		 database_reconfigure(struct database *,
		     const struct config_db *);
json_t		*database_status(struct database *, int);

/* main.c */
struct migd {
	struct event_base	*base;
	struct config		*config;	/* daemon-wide settings */
	struct database		**dbs;		/* one per config->dbs[i] */
	struct pool_budget	*budget;	/* max_connections_total, for
						   every database's pool */
	struct files_table	*files;		/* the loaded migration files,
						   shared by directory */
	size_t			 n_dbs;
	/* databases a reload removed, freed once nothing holds them, with
	 * the configuration their settings are in */
	struct database		**retired;
	struct config		**retired_cf;
	size_t			 n_retired;
	struct event		*retire_ev;
	double			 started;
	int			 draining;
};
extern struct migd migd;
double	 migd_now(void);
int	 migd_reload(struct database *, char **);
void	 migd_notify(const char *, ...) __attribute__((format(printf, 1, 2)));

#endif
