/*
 * The migration engine.  A job runs one request on one pool connection as a
 * chain of asynchronous queries: read the database's state, load and check
 * the migration files, plan, and for mutating requests take the advisory
 * lock, ensure the schemas, and run each step in its own transaction with
 * its version-table and history rows.  Mutating jobs run one at a time, in
 * the order they came; read-only jobs run beside them on other connections.
 */
#include <sys/inotify.h>
#include <sys/queue.h>

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "config.h"
#include "migd.h"
#include "migrate.h"

#define MIGRATE_STATUS_WAIT_MS	1500	/* status falls back to the cache */
#define MIGRATE_LOCK_POLL_MS	100
#define MIGRATE_SQL_EXCERPT	300

/* What the database says: version rows and, per revision, its history. */
struct dbrev {
	char		*revision;
	char		*checksum;	/* of the last apply or stamp, or NULL */
	int		 dirty;
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

struct job {
	TAILQ_ENTRY(job)	 entry;
	struct request		*req;
	struct request		**joined;	/* status requests riding along */
	size_t			 n_joined;
	enum migrate_op		 op;
	int			 mutating;
	/* parameters */
	char			*target;
	char			*resolve_as;
	int			 dry_run;
	int			 allow_drift;
	long			 limit;
	/* the connection and where we are */
	struct pool_waiter	*waiter;
	struct pool_conn	*pc;
	struct event		*timer;		/* lock polling */
	struct event		*wait_timer;	/* waiting for a connection */
	job_fn			 next;
	double			 deadline;
	int			 locked;
	int			 session_set;	/* SET outside a transaction */
	int			 ran_sql;	/* user SQL ran on the session */
	int			 rechecked;	/* tables looked up again */
	struct revset		*rs;
	struct dbstate		 st;
	struct graph_plan	 plan;
	enum graph_dir		 dir;
	size_t			 step;
	size_t			 stmt;
	int			 tx;		/* current step is transactional */
	char			*mark_id;	/* history row of a bare step */
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
};
TAILQ_HEAD(jobs, job);

static struct {
	struct jobs	 queue;		/* mutating jobs; the first one runs */
	struct revset	*rs;		/* the last valid set, for status */
	int		 stale;		/* the files changed since rs */
	int		 tables_known;	/* both tables were there last time */
	struct job	*status_leader;	/* a status others may still join */
	int		 inotify;	/* watches rs's directories, or -1 */
	struct event	*inotify_ev;
	json_t		*errors;	/* problems of the files, or NULL */
	json_t		*last_state;	/* status when no connection is free */
	char		 host[256];
} migrate;

static void	job_end(struct job *, PGresult *);
static void	job_read_state(struct job *);
static void	run_step(struct job *);

/* Wall-clock seconds, for the history's timestamps. */
static double
migrate_wall(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ((double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
}

/* A quoted, qualified name such as "public"."alembic_version". */
static char *
migrate_qualify(const char *schema, const char *table)
{
	char	*s, *t, *q;

	s = sqlscan_quote_ident(schema);
	t = sqlscan_quote_ident(table);
	q = xprintf("%s.%s", s, t);
	free(s);
	free(t);
	return (q);
}

/* The advisory lock key: one per version table, shared by every migd. */
static long long
migrate_lock_key(void)
{
	const struct config	*cf = migd.config;
	unsigned long long	 h = 14695981039346656037ULL;
	char			*name;
	const char		*p;

	name = xprintf("migd:%s.%s", cf->version_schema, cf->version_table);
	for (p = name; *p != '\0'; p++) {
		h ^= (unsigned char)*p;
		h *= 1099511628211ULL;
	}
	free(name);
	return ((long long)(h & 0x7fffffffffffffffULL));
}

static void
dbstate_clear(struct dbstate *st)
{
	size_t	 i;

	for (i = 0; i < st->n_rows; i++)
		free(st->rows[i]);
	free(st->rows);
	for (i = 0; i < st->n_revs; i++) {
		free(st->revs[i].revision);
		free(st->revs[i].checksum);
	}
	free(st->revs);
	memset(st, 0, sizeof *st);
}

static const struct dbrev *
dbstate_rev(const struct dbstate *st, const char *revision)
{
	size_t	 i;

	for (i = 0; i < st->n_revs; i++) {
		if (strcmp(st->revs[i].revision, revision) == 0)
			return (&st->revs[i]);
	}
	return (NULL);
}

/* Undoes the session settings of a bare step ("; RESET ..."). */
static const char *
migrate_reset_sql(struct job *j)
{
	if (PQserverVersion(pool_conn_pg(j->pc)) >= 140000)
		return ("; RESET lock_timeout; RESET statement_timeout; "
		    "RESET client_connection_check_interval");
	return ("; RESET lock_timeout; RESET statement_timeout");
}

/* ---- job life cycle ------------------------------------------------- */

static void
job_free(struct job *j)
{
	size_t	 i;

	if (j->timer != NULL)
		event_free(j->timer);
	if (j->wait_timer != NULL)
		event_free(j->wait_timer);
	free(j->target);
	free(j->resolve_as);
	dbstate_clear(&j->st);
	graph_plan_clear(&j->plan);
	revset_unref(j->rs);
	for (i = 0; i < j->n_ensure; i++)
		free(j->ensure[i]);
	free(j->ensure);
	json_decref(j->created);
	json_decref(j->done);
	json_decref(j->result);
	free(j->err_kind);
	free(j->err_msg);
	json_decref(j->err_data);
	free(j->fail_sql);
	free(j->mark_id);
	free(j);
}

/* Records the outcome as an error; the job then cleans up and replies. */
static void
job_set_error(struct job *j, int code, const char *kind, json_t *data,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void
job_set_error(struct job *j, int code, const char *kind, json_t *data,
    const char *fmt, ...)
{
	va_list	 ap;

	if (j->err_msg != NULL) {
		json_decref(data);
		return;		/* the first error is the true one */
	}
	va_start(ap, fmt);
	xvasprintf(&j->err_msg, fmt, ap);
	va_end(ap);
	j->err_code = code;
	j->err_kind = xstrdup(kind);
	j->err_data = data;
}

/* Fails the job and starts cleaning up (rollback, history, unlock). */
static void
job_fail(struct job *j, int code, const char *kind, json_t *data,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void
job_fail(struct job *j, int code, const char *kind, json_t *data,
    const char *fmt, ...)
{
	va_list	 ap;
	char	*msg;

	va_start(ap, fmt);
	xvasprintf(&msg, fmt, ap);
	va_end(ap);
	job_set_error(j, code, kind, data, "%s", msg);
	free(msg);
	job_end(j, NULL);
}

/* Starts the next queued mutating job, if any. */
static void
migrate_next_run(void)
{
	struct job	*j;

	if ((j = TAILQ_FIRST(&migrate.queue)) != NULL && j->pc == NULL &&
	    j->waiter == NULL)
		job_read_state(j);
}

/* Sends the reply and forgets the job. */
static void
job_reply(struct job *j)
{
	struct request	*req = j->req;
	int		 was_run = j->mutating &&
			    j == TAILQ_FIRST(&migrate.queue);
	size_t		 i;

	if (j->mutating)
		TAILQ_REMOVE(&migrate.queue, j, entry);
	if (migrate.status_leader == j)
		migrate.status_leader = NULL;
	for (i = 0; i < j->n_joined; i++) {
		/* The same answer for every status that joined this one. */
		if (j->err_msg != NULL)
			cmd_error(j->joined[i], j->err_code, j->err_kind,
			    json_incref(j->err_data), "%s", j->err_msg);
		else
			cmd_reply(j->joined[i], json_incref(j->result));
	}
	free(j->joined);
	j->joined = NULL;
	if (j->err_msg != NULL) {
		log_info("%s failed: %s", req->rpc.method, j->err_msg);
		cmd_error(req, j->err_code, j->err_kind, j->err_data, "%s",
		    j->err_msg);
		j->err_data = NULL;
	} else {
		cmd_reply(req, j->result);
		j->result = NULL;
	}
	job_free(j);
	if (was_run)
		migrate_next_run();
}

/* Receives a query's result and passes it on; the result is cleared here. */
static void
job_result(struct pool_conn *pc, PGresult *res, void *arg)
{
	struct job	*j = arg;
	job_fn		 next = j->next;

	(void)pc;
	if (res == NULL) {
		/* The connection died: the server rolled back, the lock is gone. */
		j->pc = NULL;
		j->locked = 0;
		job_set_error(j, MIGD_ERR_DB_UNAVAILABLE, "db_unavailable",
		    NULL, "lost the connection to PostgreSQL: %s",
		    pool_last_error(migd.pool) ? pool_last_error(migd.pool) :
		    "unknown error");
		job_end(j, NULL);
		return;
	}
	j->next = NULL;
	next(j, res);
	PQclear(res);
}

/* Sends one query; next receives its result. */
static void
job_query(struct job *j, const char *sql, int n, const char *const *params,
    job_fn next)
{
	j->next = next;
	if (pool_query(j->pc, sql, n, params, job_result, j) != 0) {
		j->next = NULL;
		job_fail(j, MIGD_ERR_DB_UNAVAILABLE, "db_unavailable", NULL,
		    "cannot send a query: %s",
		    PQerrorMessage(pool_conn_pg(j->pc)));
	}
}

/* The server's error as JSON: SQLSTATE, message, detail, hint, context. */
static json_t *
migrate_pg_error(PGresult *res)
{
	static const struct { int field; const char *name; } fields[] = {
		{ PG_DIAG_SQLSTATE, "sqlstate" },
		{ PG_DIAG_SEVERITY_NONLOCALIZED, "severity" },
		{ PG_DIAG_MESSAGE_PRIMARY, "message" },
		{ PG_DIAG_MESSAGE_DETAIL, "detail" },
		{ PG_DIAG_MESSAGE_HINT, "hint" },
		{ PG_DIAG_CONTEXT, "context" },
		{ PG_DIAG_SCHEMA_NAME, "schema" },
		{ PG_DIAG_TABLE_NAME, "table" },
		{ PG_DIAG_CONSTRAINT_NAME, "constraint" },
	};
	json_t		*o = json_object();
	const char	*v;
	size_t		 i;

	for (i = 0; i < nitems(fields); i++) {
		if ((v = PQresultErrorField(res, fields[i].field)) != NULL)
			json_object_set_new(o, fields[i].name, json_string(v));
	}
	return (o);
}

/* Checks a bookkeeping query; on error fails the job with the server's words. */
static int
job_ok(struct job *j, PGresult *res)
{
	ExecStatusType	 s = PQresultStatus(res);
	json_t		*data;
	const char	*msg, *code;

	if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK ||
	    s == PGRES_EMPTY_QUERY)
		return (1);
	data = migrate_pg_error(res);
	msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	code = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	job_fail(j, MIGD_ERR_SQL, "sql_error", data, "%s (SQLSTATE %s)",
	    msg ? msg : PQresultErrorMessage(res), code ? code : "?");
	return (0);
}

/*
 * Cleans the connection up, in order: roll back an open transaction, write
 * the failure's history row, reset session settings, release the advisory
 * lock, return the connection; then reply.  Each step re-enters here.
 */
static void
job_end(struct job *j, PGresult *res)
{
	PGconn			*pg;
	PGTransactionStatusType	 ts;
	char			 key[32];
	const char		*params[1];
	char			*sql;

	(void)res;
	if (j->waiter != NULL) {
		pool_cancel_wait(migd.pool, j->waiter);
		j->waiter = NULL;
	}
	if (j->timer != NULL)
		evtimer_del(j->timer);
	if (j->wait_timer != NULL)
		evtimer_del(j->wait_timer);
	if (j->pc != NULL && (pg = pool_conn_pg(j->pc)) != NULL &&
	    PQstatus(pg) == CONNECTION_OK) {
		ts = PQtransactionStatus(pg);
		if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR) {
			job_query(j, "ROLLBACK", 0, NULL, job_end);
			return;
		}
		if (j->fail_sql != NULL) {
			sql = j->fail_sql;
			j->fail_sql = NULL;
			job_query(j, sql, 0, NULL, job_end);
			free(sql);
			return;
		}
		if (j->session_set) {
			j->session_set = 0;
			job_query(j, migrate_reset_sql(j) + 2, 0, NULL,
			    job_end);
			return;
		}
		if (j->locked) {
			j->locked = 0;
			snprintf(key, sizeof key, "%lld", migrate_lock_key());
			params[0] = key;
			job_query(j, "SELECT pg_advisory_unlock($1::bigint)", 1,
			    params, job_end);
			return;
		}
		if (j->ran_sql) {
			/* A migration's SET, SET ROLE or temp table must not
			 * follow the connection into the next request. */
			j->ran_sql = 0;
			job_query(j, "DISCARD ALL", 0, NULL, job_end);
			return;
		}
	}
	if (j->pc != NULL) {
		pool_release(j->pc);
		j->pc = NULL;
	}
	job_reply(j);
}

/* ---- the migration files ------------------------------------------- */

/* A change in the migrations tree: status will read the files again. */
static void
migrate_inotify_read(evutil_socket_t fd, short events, void *arg)
{
	char	 buf[4096];

	(void)events;
	(void)arg;
	while (read(fd, buf, sizeof buf) > 0)
		continue;
	migrate.stale = 1;
}

/* Watches every directory of the set; without inotify, status always rereads. */
static void
migrate_watch(struct revset *rs)
{
	const uint32_t	 mask = IN_CREATE | IN_DELETE | IN_MODIFY |
			    IN_MOVED_FROM | IN_MOVED_TO | IN_CLOSE_WRITE |
			    IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF;
	size_t		 i;

	if (migrate.inotify_ev != NULL) {
		event_free(migrate.inotify_ev);
		migrate.inotify_ev = NULL;
	}
	if (migrate.inotify != -1)
		close(migrate.inotify);
	migrate.stale = 1;
	if ((migrate.inotify = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) == -1)
		return;
	for (i = 0; i < rs->set.n_dirs; i++) {
		if (inotify_add_watch(migrate.inotify, rs->set.dirs[i],
		    mask) == -1) {
			log_debug("inotify on %s: %s; status will reread the "
			    "files", rs->set.dirs[i], strerror(errno));
			close(migrate.inotify);
			migrate.inotify = -1;
			return;
		}
	}
	migrate.inotify_ev = event_new(migd.base, migrate.inotify,
	    EV_READ | EV_PERSIST, migrate_inotify_read, NULL);
	event_add(migrate.inotify_ev, NULL);
	migrate.stale = 0;
}

/* Loads the files afresh; the last valid set stays for status. */
static struct revset *
migrate_load(json_t **errors)
{
	struct errlist	 errs = { NULL, 0 };
	struct revset	*rs;
	size_t		 i;

	*errors = NULL;
	if (revset_load(migd.config->directory, &rs, &errs) != 0) {
		*errors = json_array();
		for (i = 0; i < errs.n; i++)
			json_array_append_new(*errors, json_string(errs.v[i]));
		errlist_clear(&errs);
		json_decref(migrate.errors);
		migrate.errors = json_incref(*errors);
		return (NULL);
	}
	json_decref(migrate.errors);
	migrate.errors = NULL;
	revset_unref(migrate.rs);
	migrate.rs = revset_ref(rs);
	migrate_watch(rs);
	return (rs);
}

/* Re-reads the files for reload and SIGHUP; returns -1 when they are invalid. */
int
migrate_reload(json_t **errors)
{
	struct revset	*rs;
	size_t		*heads, n;

	if ((rs = migrate_load(errors)) == NULL) {
		log_warnx("migrations in %s are invalid (%zu problems); "
		    "nothing will run until they are fixed",
		    migd.config->directory, json_array_size(*errors));
		for (n = 0; n < json_array_size(*errors); n++)
			log_warnx("%s", json_string_value(json_array_get(
			    *errors, n)));
		return (-1);
	}
	n = graph_heads(rs->graph, &heads);
	log_info("loaded %zu revisions from %s, %zu head%s%s%s",
	    revset_count(rs), migd.config->directory, n, n == 1 ? "" : "s",
	    n == 1 ? ": " : "", n == 1 ? graph_id(rs->graph, heads[0]) : "");
	free(heads);
	revset_unref(rs);
	return (0);
}

/* The files' part of status: count, heads, problems. */
json_t *
migrate_files_status(void)
{
	json_t	*o, *heads;
	size_t	*idx, n, i;

	o = json_pack("{s:s}", "directory", migd.config->directory);
	if (migrate.errors != NULL) {
		json_object_set(o, "errors", migrate.errors);
		json_object_set_new(o, "valid", json_false());
	} else
		json_object_set_new(o, "valid", json_true());
	if (migrate.rs != NULL) {
		json_object_set_new(o, "revisions",
		    json_integer((json_int_t)revset_count(migrate.rs)));
		heads = json_array();
		n = graph_heads(migrate.rs->graph, &idx);
		for (i = 0; i < n; i++)
			json_array_append_new(heads, json_string(graph_id(
			    migrate.rs->graph, idx[i])));
		free(idx);
		json_object_set_new(o, "heads", heads);
	}
	return (o);
}

/* ---- reading the database's state --------------------------------- */

static void	job_dispatch(struct job *);

static void	job_tables(struct job *, PGresult *);

/* Rows and history came back together: split them, or recheck the tables. */
static void
job_state_done(struct job *j, PGresult *res)
{
	const char	*code = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	size_t		 nr = 0, nh = 0;
	int		 i, n;

	if (code != NULL && strcmp(code, "42P01") == 0 && !j->rechecked) {
		/* A table went away since we last looked: look again. */
		migrate.tables_known = 0;
		j->rechecked = 1;
		job_tables(j, NULL);
		return;
	}
	if (!job_ok(j, res))
		return;
	n = PQntuples(res);
	j->st.rows = xcalloc((size_t)n + 1, sizeof *j->st.rows);
	j->st.revs = xcalloc((size_t)n + 1, sizeof *j->st.revs);
	for (i = 0; i < n; i++) {
		if (PQgetvalue(res, i, 0)[0] == 'r') {
			j->st.rows[nr++] = xstrdup(PQgetvalue(res, i, 1));
			continue;
		}
		j->st.revs[nh].revision = xstrdup(PQgetvalue(res, i, 1));
		if (!PQgetisnull(res, i, 2))
			j->st.revs[nh].checksum = xstrdup(PQgetvalue(res, i, 2));
		j->st.revs[nh].dirty = PQgetvalue(res, i, 3)[0] == 't';
		nh++;
	}
	j->st.n_rows = nr;
	j->st.n_revs = nh;
	if (j->st.has_version && j->st.has_history)
		migrate.tables_known = 1;
	job_dispatch(j);
}

/*
 * Reads the version rows and, per revision, the checksum it was applied
 * with and whether it is dirty, in one round trip.
 */
static void
job_rows(struct job *j, PGresult *res)
{
	const struct config	*cf = migd.config;
	char			*vt, *ht, *sql, *rows, *hist;

	(void)res;
	if (!j->st.has_version && !j->st.has_history) {
		j->st.rows = xcalloc(1, sizeof *j->st.rows);
		job_dispatch(j);
		return;
	}
	vt = migrate_qualify(cf->version_schema, cf->version_table);
	ht = migrate_qualify(cf->history_schema, cf->history_table);
	rows = xprintf("SELECT 'r'::text, version_num::text, NULL::text, "
	    "NULL::boolean FROM %s", vt);
	hist = xprintf("SELECT 'h'::text, revision::text, (array_agg(checksum "
	    "ORDER BY id DESC) FILTER (WHERE success AND direction IN ('up', "
	    "'stamp', 'resolve') AND checksum IS NOT NULL))[1], "
	    "(array_agg(dirty ORDER BY id DESC))[1] FROM %s GROUP BY revision",
	    ht);
	sql = xprintf("%s%s%s ORDER BY 1, 2", j->st.has_version ? rows : "",
	    j->st.has_version && j->st.has_history ? " UNION ALL " : "",
	    j->st.has_history ? hist : "");
	free(rows);
	free(hist);
	job_query(j, sql, 0, NULL, job_state_done);
	free(vt);
	free(ht);
	free(sql);
}

/* The DDL of migd's two tables; the version table exactly as Alembic's. */
static char *
migrate_tables_ddl(int version, int history, int vschema, int hschema)
{
	const struct config	*cf = migd.config;
	char			*vt, *ht, *vs, *hs, *pk, *ix, *s;

	vt = migrate_qualify(cf->version_schema, cf->version_table);
	ht = migrate_qualify(cf->history_schema, cf->history_table);
	vs = sqlscan_quote_ident(cf->version_schema);
	hs = sqlscan_quote_ident(cf->history_schema);
	s = xprintf("%s_pkc", cf->version_table);
	pk = sqlscan_quote_ident(s);
	free(s);
	s = xprintf("%s_revision_idx", cf->history_table);
	ix = sqlscan_quote_ident(s);
	free(s);
	s = xprintf("%s%s%s%s%s%s%s%s%s%s%s",
	    vschema ? "" : "CREATE SCHEMA IF NOT EXISTS ", vschema ? "" : vs,
	    vschema ? "" : ";",
	    hschema || strcmp(cf->history_schema, cf->version_schema) == 0 ?
	    "" : "CREATE SCHEMA IF NOT EXISTS ",
	    hschema || strcmp(cf->history_schema, cf->version_schema) == 0 ?
	    "" : hs,
	    hschema || strcmp(cf->history_schema, cf->version_schema) == 0 ?
	    "" : ";",
	    version ? "" : "CREATE TABLE IF NOT EXISTS ", version ? "" : vt,
	    version ? "" : " (version_num varchar(32) NOT NULL, CONSTRAINT ",
	    version ? "" : pk, version ? "" : " PRIMARY KEY (version_num));");
	if (!history) {
		char *t = s;

		s = xprintf("%sCREATE TABLE IF NOT EXISTS %s ("
		    "id bigserial PRIMARY KEY, "
		    "revision varchar(32) NOT NULL, "
		    "direction text NOT NULL CHECK (direction IN ('up', "
		    "'down', 'stamp', 'resolve')), "
		    "success boolean NOT NULL, "
		    "dirty boolean NOT NULL DEFAULT false, "
		    "checksum text, message text, file text, "
		    "started_at timestamptz NOT NULL, "
		    "finished_at timestamptz NOT NULL DEFAULT clock_timestamp(), "
		    "duration_ms double precision, "
		    "requested_by text, requester_uid bigint, "
		    "requester_pid bigint, host text, migd_version text, "
		    "sqlstate text, error text, schemas_created text[]);"
		    "CREATE INDEX IF NOT EXISTS %s ON %s (revision, id);",
		    t, ht, ix, ht);
		free(t);
	}
	free(vt);
	free(ht);
	free(vs);
	free(hs);
	free(pk);
	free(ix);
	return (s);
}

static void
job_tables_done(struct job *j, PGresult *res)
{
	char	*ddl;
	int	 version, history;

	if (!job_ok(j, res))
		return;
	version = PQgetvalue(res, 0, 0)[0] == 't';
	history = PQgetvalue(res, 0, 1)[0] == 't';
	j->st.has_version = version;
	j->st.has_history = history;
	if (!j->mutating || j->dry_run || (version && history)) {
		job_rows(j, NULL);
		return;
	}
	/* Created under the advisory lock, so two daemons never race here. */
	ddl = migrate_tables_ddl(version, history,
	    PQgetvalue(res, 0, 2)[0] == 't', PQgetvalue(res, 0, 3)[0] == 't');
	log_info("creating %s%s%s", version ? "" : "the version table",
	    version || history ? "" : " and ", history ? "" :
	    "the history table");
	j->st.has_version = j->st.has_history = 1;
	job_query(j, ddl, 0, NULL, job_rows);
	free(ddl);
}

/* Which of migd's tables and schemas exist already. */
static void
job_tables(struct job *j, PGresult *res)
{
	const struct config	*cf = migd.config;
	const char		*params[4];
	char			*vt, *ht;

	(void)res;
	vt = migrate_qualify(cf->version_schema, cf->version_table);
	ht = migrate_qualify(cf->history_schema, cf->history_table);
	params[0] = vt;
	params[1] = ht;
	params[2] = cf->version_schema;
	params[3] = cf->history_schema;
	job_query(j, "SELECT to_regclass($1) IS NOT NULL, to_regclass($2) IS "
	    "NOT NULL, EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $3), "
	    "EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $4)", 4,
	    params, job_tables_done);
	free(vt);
	free(ht);
}

static void	job_lock(struct job *, PGresult *);

static void
job_lock_holder(struct job *j, PGresult *res)
{
	json_t	*holders, *h;
	char	*who = NULL;
	int	 i;

	if (!job_ok(j, res))
		return;
	holders = json_array();
	for (i = 0; i < PQntuples(res); i++) {
		h = json_pack("{s:I, s:s, s:s, s:s, s:s, s:s}",
		    "pid", (json_int_t)atoll(PQgetvalue(res, i, 0)),
		    "application_name", PQgetvalue(res, i, 1),
		    "client", PQgetvalue(res, i, 2),
		    "user", PQgetvalue(res, i, 3),
		    "backend_start", PQgetvalue(res, i, 4),
		    "state", PQgetvalue(res, i, 5));
		json_array_append_new(holders, h);
		if (who == NULL)
			who = xprintf("pid %s, application_name '%s', client "
			    "%s, user %s", PQgetvalue(res, i, 0),
			    PQgetvalue(res, i, 1), PQgetvalue(res, i, 2),
			    PQgetvalue(res, i, 3));
	}
	job_fail(j, MIGD_ERR_BUSY, "lock_timeout", json_pack("{s:o, s:I}",
	    "holders", holders, "lock_wait_ms",
	    (json_int_t)migd.config->lock_wait_ms),
	    "another migration holds the migration lock (%s); gave up after "
	    "%ld ms (lock_wait)", who ? who : "holder has gone",
	    migd.config->lock_wait_ms);
	free(who);
}

static void
job_lock_timer(evutil_socket_t fd, short events, void *arg)
{
	(void)fd;
	(void)events;
	job_lock(arg, NULL);
}

static void
job_locked(struct job *j, PGresult *res)
{
	struct timeval	 tv = { 0, MIGRATE_LOCK_POLL_MS * 1000 };
	const char	*params[1];
	char		 key[32];

	if (!job_ok(j, res))
		return;
	if (PQgetvalue(res, 0, 0)[0] == 't') {
		j->locked = 1;
		job_tables(j, NULL);
		return;
	}
	if (migd_now() >= j->deadline) {
		snprintf(key, sizeof key, "%lld", migrate_lock_key());
		params[0] = key;
		job_query(j, "SELECT a.pid, coalesce(a.application_name, ''), "
		    "coalesce(host(a.client_addr), 'local'), "
		    "coalesce(a.usename, ''), a.backend_start::text, "
		    "coalesce(a.state, '') FROM pg_locks l JOIN "
		    "pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = "
		    "'advisory' AND l.granted AND l.classid = ($1::bigint >> "
		    "32)::oid AND l.objid = ($1::bigint & 4294967295)::oid AND "
		    "l.objsubid = 1", 1, params, job_lock_holder);
		return;
	}
	if (j->timer == NULL)
		j->timer = evtimer_new(migd.base, job_lock_timer, j);
	evtimer_add(j->timer, &tv);
}

/* Polls pg_try_advisory_lock: a blocking waiter would deadlock on CIC. */
static void
job_lock(struct job *j, PGresult *res)
{
	const char	*params[1];
	char		 key[32];

	(void)res;
	snprintf(key, sizeof key, "%lld", migrate_lock_key());
	params[0] = key;
	job_query(j, "SELECT pg_try_advisory_lock($1::bigint)", 1, params,
	    job_locked);
}

static void
job_got_conn(struct pool_conn *pc, void *arg)
{
	struct job	*j = arg;

	j->waiter = NULL;
	j->pc = pc;
	if (j->wait_timer != NULL)
		evtimer_del(j->wait_timer);
	if (migrate.status_leader == j)
		migrate.status_leader = NULL;	/* reading now: no more joiners */
	if (j->mutating && !j->dry_run) {
		j->deadline = migd_now() + (double)migd.config->lock_wait_ms /
		    1000.0;
		job_lock(j, NULL);
	} else if (migrate.tables_known) {
		j->st.has_version = j->st.has_history = 1;
		job_rows(j, NULL);
	} else
		job_tables(j, NULL);
}

static void	migrate_status_reply(struct job *, int);

/* No connection came free in time: status answers from its cache, others fail. */
static void
job_wait_timeout(evutil_socket_t fd, short events, void *arg)
{
	struct job	*j = arg;

	(void)fd;
	(void)events;
	pool_cancel_wait(migd.pool, j->waiter);
	j->waiter = NULL;
	if (j->op == MIGRATE_STATUS) {
		migrate_status_reply(j, 1);
		job_end(j, NULL);
		return;
	}
	job_fail(j, MIGD_ERR_DB_UNAVAILABLE, "db_unavailable", json_pack(
	    "{s:o}", "last_error", pool_last_error(migd.pool) ?
	    json_string(pool_last_error(migd.pool)) : json_null()),
	    "no connection to PostgreSQL within %d s (connect_timeout): %s",
	    migd.config->connect_timeout, pool_last_error(migd.pool) ?
	    pool_last_error(migd.pool) : "still connecting");
}

/*
 * Starts a job: waits for a connection of the pool.  status never waits
 * long; the others give a connecting pool connect_timeout to come up, so a
 * deploy hook racing migd's start (or a restart of PostgreSQL) succeeds.
 */
static void
job_read_state(struct job *j)
{
	struct timeval	 tv = { MIGRATE_STATUS_WAIT_MS / 1000,
			    (MIGRATE_STATUS_WAIT_MS % 1000) * 1000 };

	if (j->op == MIGRATE_STATUS && pool_any_connection(migd.pool) ==
	    NULL) {
		migrate_status_reply(j, 0);
		job_end(j, NULL);
		return;
	}
	if (j->op != MIGRATE_STATUS) {
		tv.tv_sec = migd.config->connect_timeout;
		tv.tv_usec = 0;
	}
	j->wait_timer = evtimer_new(migd.base, job_wait_timeout, j);
	evtimer_add(j->wait_timer, &tv);
	j->waiter = pool_acquire(migd.pool, job_got_conn, j);
}

/* ---- assessing the state ------------------------------------------ */

/* Sets marks[i] for every applied revision; -1 when a row is unknown. */
static int
migrate_applied(struct revset *rs, const struct dbstate *st, char *marks)
{
	struct graph_plan	 plan;
	char			*cause = NULL;
	size_t			 i;

	memset(marks, 0, revset_count(rs));
	memset(&plan, 0, sizeof plan);
	if (graph_plan(rs->graph, (const char *const *)st->rows, st->n_rows,
	    "base", GRAPH_DOWN, &plan, &cause) != 0) {
		free(cause);
		return (-1);
	}
	for (i = 0; i < plan.n_steps; i++)
		marks[plan.steps[i].idx] = 1;
	graph_plan_clear(&plan);
	return (0);
}

/* Describes one revision for people: id, message, file. */
static json_t *
migrate_rev_json(struct revset *rs, size_t idx)
{
	const struct migfile	*mf = revset_file(rs, idx);

	return (json_pack("{s:s, s:s, s:s}", "revision", mf->revision,
	    "message", mf->message, "file", mf->path));
}

/*
 * Adds the state of the database against the files to o: current rows,
 * pending count, drift, dirty and unknown revisions, and one word for all.
 */
static void
migrate_assess(struct revset *rs, const struct dbstate *st, json_t *o)
{
	struct graph_plan	 plan;
	json_t			*current, *drift, *dirty, *unknown;
	const struct dbrev	*dr;
	const struct migfile	*mf;
	const char		*state;
	char			*marks = NULL, *cause = NULL;
	size_t			 i, n;
	ssize_t			 idx;
	long			 pending = -1;

	current = json_array();
	drift = json_array();
	dirty = json_array();
	unknown = json_array();
	for (i = 0; i < st->n_rows; i++) {
		idx = rs ? graph_find(rs->graph, st->rows[i]) : -1;
		if (idx >= 0)
			json_array_append_new(current, migrate_rev_json(rs,
			    (size_t)idx));
		else {
			json_array_append_new(current, json_pack("{s:s}",
			    "revision", st->rows[i]));
			json_array_append_new(unknown, json_string(
			    st->rows[i]));
		}
	}
	for (i = 0; i < st->n_revs; i++) {
		if (st->revs[i].dirty)
			json_array_append_new(dirty, json_string(
			    st->revs[i].revision));
	}
	if (rs != NULL && json_array_size(unknown) == 0) {
		n = revset_count(rs);
		marks = xmalloc(n ? n : 1);
		migrate_applied(rs, st, marks);
		for (i = 0; i < n; i++) {
			mf = revset_file(rs, i);
			if (!marks[i] || (dr = dbstate_rev(st,
			    mf->revision)) == NULL || dr->checksum == NULL)
				continue;
			if (strcmp(dr->checksum, mf->checksum) != 0) {
				json_array_append_new(drift, json_pack(
				    "{s:s, s:s, s:s, s:s}", "revision",
				    mf->revision, "file", mf->path,
				    "applied_checksum", dr->checksum,
				    "file_checksum", mf->checksum));
			}
		}
		free(marks);
		memset(&plan, 0, sizeof plan);
		if (graph_plan(rs->graph, (const char *const *)st->rows,
		    st->n_rows, "heads", GRAPH_UP, &plan, &cause) == 0)
			pending = (long)plan.n_steps;
		free(cause);
		graph_plan_clear(&plan);
	}
	if (rs == NULL)
		state = "invalid_migrations";
	else if (json_array_size(unknown) != 0)
		state = "ahead";
	else if (json_array_size(dirty) != 0)
		state = "dirty";
	else if (json_array_size(drift) != 0)
		state = "drift";
	else if (pending > 0)
		state = "pending";
	else
		state = "up_to_date";
	json_object_set_new(o, "state", json_string(state));
	json_object_set_new(o, "current", current);
	json_object_set_new(o, "pending", pending >= 0 ?
	    json_integer(pending) : json_null());
	json_object_set_new(o, "drift", drift);
	json_object_set_new(o, "dirty", dirty);
	json_object_set_new(o, "unknown", unknown);
}

/* The status reply; stale when it comes from the cache. */
static void
migrate_status_reply(struct job *j, int stale)
{
	json_t	*res, *db;

	res = json_pack("{s:{s:s, s:I, s:f, s:i}, s:o}",
	    "daemon", "version", PACKAGE_VERSION, "pid", (json_int_t)getpid(),
	    "uptime", migd_now() - migd.started, "protocol",
	    MIGD_PROTOCOL_VERSION, "migrations", migrate_files_status());
	json_object_set_new(res, "database", cmd_status_database(j->pc !=
	    NULL));
	db = json_object_get(res, "database");
	(void)db;
	if (j != NULL && j->pc != NULL) {
		migrate_assess(migrate.errors ? NULL : migrate.rs, &j->st,
		    res);
		json_decref(migrate.last_state);
		migrate.last_state = json_deep_copy(res);
	} else if (stale && migrate.last_state != NULL) {
		json_object_set(res, "state", json_object_get(
		    migrate.last_state, "state"));
		json_object_set(res, "current", json_object_get(
		    migrate.last_state, "current"));
		json_object_set(res, "pending", json_object_get(
		    migrate.last_state, "pending"));
		json_object_set_new(res, "stale", json_true());
	} else if (pool_any_connection(migd.pool) == NULL) {
		json_object_set_new(res, "state", json_string("no_database"));
	} else
		json_object_set_new(res, "state", json_string("unknown"));
	json_object_set_new(res, "running", json_boolean(migrate_busy()));
	j->result = res;
}

/* ---- schemas ------------------------------------------------------ */

/* A text[] literal for a parameter: {"a","b"} with quotes escaped. */
static char *
migrate_text_array(char **v, size_t n)
{
	char		*s = xstrdup("{"), *t;
	const char	*p;
	size_t		 i, len;

	for (i = 0; i < n; i++) {
		len = strlen(s);
		t = xmalloc(len + strlen(v[i]) * 2 + 4);
		memcpy(t, s, len);
		if (i > 0)
			t[len++] = ',';
		t[len++] = '"';
		for (p = v[i]; *p != '\0'; p++) {
			if (*p == '"' || *p == '\\')
				t[len++] = '\\';
			t[len++] = *p;
		}
		t[len++] = '"';
		t[len] = '\0';
		free(s);
		s = t;
	}
	t = xprintf("%s}", s);
	free(s);
	return (t);
}

/* Adds a schema name once. */
static void
migrate_add_schema(char ***v, size_t *n, const char *name)
{
	size_t	 i;

	for (i = 0; i < *n; i++) {
		if (strcmp((*v)[i], name) == 0)
			return;
	}
	*v = xreallocarray(*v, *n + 1, sizeof **v);
	(*v)[(*n)++] = xstrdup(name);
}

/* Whether a step of the plan runs a plain CREATE SCHEMA of this name. */
static int
migrate_plan_creates(struct job *j, const char *name)
{
	const struct sqlscan	*sc;
	size_t			 i, k;

	for (i = 0; i < j->plan.n_steps; i++) {
		sc = j->plan.steps[i].dir == GRAPH_UP ?
		    &j->rs->up[j->plan.steps[i].idx] :
		    &j->rs->down[j->plan.steps[i].idx];
		for (k = 0; k < sc->n_schemas; k++) {
			if (sc->schemas[k].created &&
			    strcmp(sc->schemas[k].name, name) == 0)
				return (1);
		}
	}
	return (0);
}

/* The schemas a run must find: configured, and named by its steps' SQL. */
static void
migrate_plan_schemas(struct job *j)
{
	const struct config	*cf = migd.config;
	const struct sqlscan	*sc;
	size_t			 i, k;

	for (i = 0; i < cf->n_schemas; i++) {
		if (!migrate_plan_creates(j, cf->schemas[i]))
			migrate_add_schema(&j->ensure, &j->n_ensure,
			    cf->schemas[i]);
	}
	for (i = 0; i < j->plan.n_steps; i++) {
		sc = j->plan.steps[i].dir == GRAPH_UP ?
		    &j->rs->up[j->plan.steps[i].idx] :
		    &j->rs->down[j->plan.steps[i].idx];
		for (k = 0; k < sc->n_schemas; k++) {
			/* One the plan creates itself must not exist before. */
			if (!migrate_plan_creates(j, sc->schemas[k].name))
				migrate_add_schema(&j->ensure, &j->n_ensure,
				    sc->schemas[k].name);
		}
	}
}

/* ---- the plan ----------------------------------------------------- */

/* One step for the plan's output, with why it is not transactional. */
static json_t *
migrate_step_json(struct job *j, const struct graph_step *st, int with_sql)
{
	const struct migfile		*mf = revset_file(j->rs, st->idx);
	const struct sqlscan_stmt	*nt;
	int				 up = st->dir == GRAPH_UP, tx;
	json_t				*o, *del, *ins;
	size_t				 i;

	tx = revset_transactional(j->rs, st->idx, up);
	o = migrate_rev_json(j->rs, st->idx);
	json_object_set_new(o, "direction", json_string(up ? "up" : "down"));
	json_object_set_new(o, "transactional", json_boolean(tx));
	if (!tx) {
		nt = revset_no_tx_stmt(j->rs, st->idx, up);
		json_object_set_new(o, "why_not_transactional", nt ?
		    json_sprintf("%s at %s:%d", nt->what, mf->path, nt->line) :
		    json_string("declared 'transaction: none'"));
	}
	json_object_set_new(o, "statements", json_integer((json_int_t)(up ?
	    j->rs->up[st->idx].n_stmts : j->rs->down[st->idx].n_stmts)));
	json_object_set_new(o, "has_down", json_boolean(mf->down != NULL));
	del = json_array();
	for (i = 0; i < st->n_row_del; i++)
		json_array_append_new(del, json_string(graph_id(j->rs->graph,
		    st->row_del[i])));
	ins = json_array();
	for (i = 0; i < st->n_row_ins; i++)
		json_array_append_new(ins, json_string(graph_id(j->rs->graph,
		    st->row_ins[i])));
	json_object_set_new(o, "version_delete", del);
	json_object_set_new(o, "version_insert", ins);
	if (with_sql)
		json_object_set_new(o, "sql", json_string(up ? mf->up :
		    (mf->down ? mf->down : "")));
	return (o);
}

/* Why the plan may not run: no down section, dirty, drift, ahead. */
static json_t *
migrate_problems(struct job *j, json_t *assess)
{
	const struct migfile	*mf;
	json_t			*p = json_array(), *v;
	size_t			 i;

	for (i = 0; i < json_array_size(json_object_get(assess, "dirty"));
	    i++) {
		v = json_array_get(json_object_get(assess, "dirty"), i);
		json_array_append_new(p, json_pack("{s:s, s:O, s:o}", "kind",
		    "dirty", "revision", v, "message", json_sprintf(
		    "revision %s is dirty: a non-transactional migration "
		    "stopped part-way; check the database, then run 'migctl "
		    "resolve %s applied' or 'unapplied'",
		    json_string_value(v), json_string_value(v))));
	}
	if (!j->allow_drift) {
		for (i = 0; i < json_array_size(json_object_get(assess,
		    "drift")); i++) {
			v = json_array_get(json_object_get(assess, "drift"), i);
			json_array_append_new(p, json_pack("{s:s, s:O, s:o}",
			    "kind", "checksum_mismatch", "revision",
			    json_object_get(v, "revision"), "message",
			    json_sprintf("%s changed since revision %s was "
			    "applied (checksum %.12s, now %.12s): restore it, "
			    "or override with --allow-drift",
			    json_string_value(json_object_get(v, "file")),
			    json_string_value(json_object_get(v, "revision")),
			    json_string_value(json_object_get(v,
			    "applied_checksum")),
			    json_string_value(json_object_get(v,
			    "file_checksum")))));
		}
	}
	for (i = 0; i < j->plan.n_steps; i++) {
		mf = revset_file(j->rs, j->plan.steps[i].idx);
		if (j->plan.steps[i].dir == GRAPH_DOWN && mf->down == NULL) {
			json_array_append_new(p, json_pack("{s:s, s:s, s:o}",
			    "kind", "no_down", "revision", mf->revision,
			    "message", json_sprintf("%s: revision %s has no "
			    "'-- migrate:down' section, so it cannot be "
			    "downgraded", mf->path, mf->revision)));
		}
	}
	return (p);
}

/* The direction of a plan request: given, or guessed from the target. */
static enum graph_dir
migrate_direction(struct job *j)
{
	size_t	 idx;
	char	*marks;
	int	 applied = 0;

	if (j->op == MIGRATE_UPGRADE)
		return (GRAPH_UP);
	if (j->op == MIGRATE_DOWNGRADE)
		return (GRAPH_DOWN);
	if (strcmp(j->target, "base") == 0 || j->target[0] == '-')
		return (GRAPH_DOWN);
	if (strcmp(j->target, "head") == 0 || strcmp(j->target, "heads") == 0 ||
	    j->target[0] == '+')
		return (GRAPH_UP);
	if (graph_lookup(j->rs->graph, j->target, &idx, NULL) != 0)
		return (GRAPH_UP);
	/* An applied revision that is not current means going down to it. */
	marks = xmalloc(revset_count(j->rs));
	if (migrate_applied(j->rs, &j->st, marks) == 0)
		applied = marks[idx];
	free(marks);
	return (applied ? GRAPH_DOWN : GRAPH_UP);
}

static void	run_schemas(struct job *, PGresult *);

/* Makes and checks the plan; fails the job when it cannot run. */
static void
job_plan(struct job *j)
{
	json_t	*assess, *problems, *first;
	char	*cause = NULL, *list;
	const char *params[1];

	j->dir = migrate_direction(j);
	assess = json_object();
	migrate_assess(j->rs, &j->st, assess);
	if (json_array_size(json_object_get(assess, "unknown")) != 0) {
		job_fail(j, MIGD_ERR_STATE, "ahead", json_pack("{s:O}",
		    "unknown", json_object_get(assess, "unknown")),
		    "the version table names %s, which no migration file "
		    "defines: the database is ahead of this code; deploy the "
		    "newer migrations first", json_string_value(
		    json_array_get(json_object_get(assess, "unknown"), 0)));
		json_decref(assess);
		return;
	}
	if (graph_plan(j->rs->graph, (const char *const *)j->st.rows,
	    j->st.n_rows, j->target, j->dir, &j->plan, &cause) != 0) {
		job_fail(j, MIGD_ERR_MIGRATIONS, "plan_error", NULL, "%s",
		    cause);
		free(cause);
		json_decref(assess);
		return;
	}
	problems = migrate_problems(j, assess);
	json_decref(assess);
	if (json_array_size(problems) != 0 && j->op != MIGRATE_PLAN &&
	    !j->dry_run) {
		first = json_array_get(problems, 0);
		job_fail(j, MIGD_ERR_STATE, strcmp(json_string_value(
		    json_object_get(first, "kind")), "no_down") == 0 ?
		    "plan_error" : json_string_value(json_object_get(first,
		    "kind")), json_pack("{s:O}", "problems", problems),
		    "%s%s", json_string_value(json_object_get(first,
		    "message")), json_array_size(problems) > 1 ?
		    " (and more problems: see data.problems)" : "");
		json_decref(problems);
		return;
	}
	j->result = json_pack("{s:o}", "problems", problems);
	migrate_plan_schemas(j);
	list = migrate_text_array(j->ensure, j->n_ensure);
	params[0] = list;
	job_query(j, "SELECT nspname FROM pg_namespace WHERE nspname = "
	    "ANY($1::text[])", 1, params, run_schemas);
	free(list);
}

/* The rows of the version table as ids. */
static json_t *
migrate_rows_json(char **rows, size_t n)
{
	json_t	*a = json_array();
	size_t	 i;

	for (i = 0; i < n; i++)
		json_array_append_new(a, json_string(rows[i]));
	return (a);
}

/* The plan as the reply of plan and --dry-run. */
static void
migrate_plan_result(struct job *j, json_t *missing)
{
	json_t	*steps, *to;
	size_t	 i;

	steps = json_array();
	for (i = 0; i < j->plan.n_steps; i++)
		json_array_append_new(steps, migrate_step_json(j,
		    &j->plan.steps[i], 1));
	to = json_array();
	for (i = 0; i < j->plan.n_rows_after; i++)
		json_array_append_new(to, json_string(graph_id(j->rs->graph,
		    j->plan.rows_after[i])));
	json_object_set_new(j->result, "target", json_string(j->target));
	json_object_set_new(j->result, "direction", json_string(j->dir ==
	    GRAPH_UP ? "up" : "down"));
	json_object_set_new(j->result, "from", migrate_rows_json(j->st.rows,
	    j->st.n_rows));
	json_object_set_new(j->result, "to", to);
	json_object_set_new(j->result, "steps", steps);
	json_object_set_new(j->result, "schemas_to_create", missing);
	json_object_set_new(j->result, "runnable", json_boolean(
	    json_array_size(json_object_get(j->result, "problems")) == 0));
}

/* ---- running ------------------------------------------------------ */

/* Sends a progress notification to the requester. */
static void
run_notify(struct job *j, const char *event, json_t *params)
{
	if (params == NULL)
		params = json_object();
	json_object_set_new(params, "event", json_string(event));
	cmd_notify(j->req, "progress", params);
}

/* An escaped SQL literal, or NULL for a missing value. */
static char *
run_literal(struct job *j, const char *s)
{
	PGconn	*pg = pool_conn_pg(j->pc);
	char	*e, *r;

	if (s == NULL)
		return (xstrdup("NULL"));
	if ((e = PQescapeLiteral(pg, s, strlen(s))) == NULL)
		return (xstrdup("NULL"));
	r = xstrdup(e);
	PQfreemem(e);
	return (r);
}

/* The INSERT of one history row: who asked, what, how it went. */
static char *
run_history_sql(struct job *j, const char *revision, const char *direction,
    int success, int dirty, const char *checksum, const char *message,
    const char *file, double wall, double ms, const char *sqlstate,
    const char *error)
{
	const struct config	*cf = migd.config;
	const struct peer	*peer = control_peer(j->req->client);
	char			*ht, *v[9], *created, *sql, *arr;
	size_t			 i;

	ht = migrate_qualify(cf->history_schema, cf->history_table);
	v[0] = run_literal(j, revision);
	v[1] = run_literal(j, checksum);
	v[2] = run_literal(j, message);
	v[3] = run_literal(j, file);
	v[4] = run_literal(j, peer->user);
	v[5] = run_literal(j, migrate.host);
	v[6] = run_literal(j, PACKAGE_VERSION);
	v[7] = run_literal(j, sqlstate);
	v[8] = run_literal(j, error);
	if (json_array_size(j->created) != 0 && json_array_size(j->done) ==
	    0) {
		char **names = xcalloc(json_array_size(j->created),
		    sizeof *names);

		for (i = 0; i < json_array_size(j->created); i++)
			names[i] = (char *)json_string_value(json_array_get(
			    j->created, i));
		arr = migrate_text_array(names, json_array_size(j->created));
		free(names);
		created = run_literal(j, arr);
		free(arr);
	} else
		created = xstrdup("NULL");
	sql = xprintf("INSERT INTO %s (revision, direction, success, dirty, "
	    "checksum, message, file, started_at, duration_ms, requested_by, "
	    "requester_uid, requester_pid, host, migd_version, sqlstate, "
	    "error, schemas_created) VALUES (%s, '%s', %s, %s, %s, %s, %s, "
	    "to_timestamp(%.6f), %.3f, %s, %ld, %ld, %s, %s, %s, %s, "
	    "%s::text[])", ht, v[0], direction, success ? "true" : "false",
	    dirty ? "true" : "false", v[1], v[2], v[3], wall, ms, v[4],
	    (long)peer->uid, (long)peer->pid, v[5], v[6], v[7], v[8], created);
	for (i = 0; i < nitems(v); i++)
		free(v[i]);
	free(created);
	free(ht);
	return (sql);
}

/* The version-table change of a step: delete some rows, insert others. */
static char *
run_rows_sql(struct job *j, const size_t *del, size_t n_del,
    const size_t *ins, size_t n_ins)
{
	const struct config	*cf = migd.config;
	char			*vt, *s, *t, *lit;
	size_t			 i;

	vt = migrate_qualify(cf->version_schema, cf->version_table);
	s = xstrdup("");
	for (i = 0; i < n_del; i++) {
		lit = run_literal(j, graph_id(j->rs->graph, del[i]));
		t = xprintf("%sDELETE FROM %s WHERE version_num = %s; ", s, vt,
		    lit);
		free(lit);
		free(s);
		s = t;
	}
	for (i = 0; i < n_ins; i++) {
		lit = run_literal(j, graph_id(j->rs->graph, ins[i]));
		t = xprintf("%sINSERT INTO %s (version_num) VALUES (%s); ", s,
		    vt, lit);
		free(lit);
		free(s);
		s = t;
	}
	free(vt);
	return (s);
}

/* The file line of a server error position inside one statement. */
static int
run_error_line(const char *stmt, size_t len, int line, const char *pos)
{
	long	 chars;
	size_t	 i;

	if (pos == NULL || (chars = atol(pos)) <= 1)
		return (line);
	/* The position counts characters from 1; UTF-8 continuation bytes
	 * do not start one. */
	for (i = 0; i < len && chars > 1; i++) {
		if (((unsigned char)stmt[i] & 0xc0) != 0x80) {
			if (--chars == 0)
				break;
		}
		if (stmt[i] == '\n')
			line++;
	}
	return (line);
}

static void	run_stmt(struct job *, PGresult *);

/* The current step's section, analysis and file. */
static const struct sqlscan *
run_section(struct job *j, const char **text)
{
	const struct graph_step	*st = &j->plan.steps[j->step];
	const struct migfile	*mf = revset_file(j->rs, st->idx);

	*text = st->dir == GRAPH_UP ? mf->up : mf->down;
	return (st->dir == GRAPH_UP ? &j->rs->up[st->idx] :
	    &j->rs->down[st->idx]);
}

/* The run is over: the reply says what was done. */
static void
run_finish(struct job *j)
{
	json_t	*to;
	size_t	 i;

	to = json_array();
	for (i = 0; i < j->plan.n_rows_after; i++)
		json_array_append_new(to, json_string(graph_id(j->rs->graph,
		    j->plan.rows_after[i])));
	json_object_set_new(j->result, "target", json_string(j->target));
	json_object_set_new(j->result, "direction", json_string(j->dir ==
	    GRAPH_UP ? "up" : "down"));
	json_object_set_new(j->result, "from", migrate_rows_json(j->st.rows,
	    j->st.n_rows));
	json_object_set_new(j->result, "to", to);
	json_object_set(j->result, "steps", j->done);
	json_object_set(j->result, "schemas_created", j->created);
	json_object_set_new(j->result, "duration_ms", json_real((migd_now() -
	    j->t0) * 1000.0));
	json_object_del(j->result, "problems");
	if (j->plan.n_steps > 0)
		log_info("%s to %s done: %zu migration%s in %.0f ms",
		    j->dir == GRAPH_UP ? "upgrade" : "downgrade", j->target,
		    j->plan.n_steps, j->plan.n_steps == 1 ? "" : "s",
		    (migd_now() - j->t0) * 1000.0);
	job_end(j, NULL);
}

static void
run_step_done(struct job *j, PGresult *res)
{
	const struct graph_step	*st = &j->plan.steps[j->step];
	const struct migfile	*mf = revset_file(j->rs, st->idx);
	double			 ms = (migd_now() - j->step_t0) * 1000.0;

	if (!job_ok(j, res))
		return;
	j->session_set = 0;
	json_array_append_new(j->done, json_pack("{s:s, s:s, s:f}",
	    "revision", mf->revision, "direction", st->dir == GRAPH_UP ?
	    "up" : "down", "duration_ms", ms));
	run_notify(j, "finished", json_pack("{s:s, s:s, s:I, s:I, s:f}",
	    "revision", mf->revision, "direction", st->dir == GRAPH_UP ?
	    "up" : "down", "index", (json_int_t)j->step + 1, "total",
	    (json_int_t)j->plan.n_steps, "duration_ms", ms));
	log_info("%s %s (%s) in %.0f ms", st->dir == GRAPH_UP ? "applied" :
	    "reverted", mf->revision, mf->path, ms);
	j->step++;
	if (j->step < j->plan.n_steps && migd.draining) {
		job_fail(j, MIGD_ERR_SHUTTING_DOWN, "shutting_down", json_pack(
		    "{s:O}", "done", j->done), "migd is shutting down: stopped "
		    "after %s; %zu migration%s not run", mf->revision,
		    j->plan.n_steps - j->step, j->plan.n_steps - j->step == 1 ?
		    "" : "s");
		return;
	}
	if (j->step < j->plan.n_steps)
		run_step(j);
	else
		run_finish(j);
}

/* Completes the history row a bare step wrote before it began. */
static char *
run_mark_sql(struct job *j, int success, const char *sqlstate,
    const char *error)
{
	const struct config	*cf = migd.config;
	char			*ht, *st, *er, *sql;

	ht = migrate_qualify(cf->history_schema, cf->history_table);
	st = run_literal(j, sqlstate);
	er = run_literal(j, error);
	sql = xprintf("UPDATE %s SET success = %s, dirty = %s, finished_at = "
	    "clock_timestamp(), duration_ms = %.3f, sqlstate = %s, error = %s "
	    "WHERE id = %s", ht, success ? "true" : "false", success ?
	    "false" : "true", (migd_now() - j->step_t0) * 1000.0, st, er,
	    j->mark_id);
	free(ht);
	free(st);
	free(er);
	return (sql);
}

/* Every statement ran: record the step with its rows, then commit. */
static void
run_bookkeeping(struct job *j)
{
	const struct graph_step	*st = &j->plan.steps[j->step];
	const struct migfile	*mf = revset_file(j->rs, st->idx);
	char			*rows, *hist, *sql;

	rows = run_rows_sql(j, st->row_del, st->n_row_del, st->row_ins,
	    st->n_row_ins);
	if (j->tx)
		hist = run_history_sql(j, mf->revision, st->dir == GRAPH_UP ?
		    "up" : "down", 1, 0, mf->checksum, mf->message, mf->path,
		    j->step_wall, (migd_now() - j->step_t0) * 1000.0, NULL,
		    NULL);
	else
		hist = run_mark_sql(j, 1, NULL, NULL);
	sql = xprintf("%s%s%s; COMMIT%s", j->tx ? "" : "BEGIN; ", rows, hist,
	    j->tx ? "" : migrate_reset_sql(j));
	job_query(j, sql, 0, NULL, run_step_done);
	free(rows);
	free(hist);
	free(sql);
}

/* A statement failed: roll back, record it, and say exactly where. */
static void
run_stmt_failed(struct job *j, PGresult *res, const struct sqlscan_stmt *s,
    const char *text)
{
	const struct graph_step	*st = &j->plan.steps[j->step];
	const struct migfile	*mf = revset_file(j->rs, st->idx);
	const char		*msg, *code;
	json_t			*data;
	char			*excerpt, *error;
	int			 line;

	msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	code = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	if (msg == NULL)
		msg = PQresultErrorMessage(res);
	line = run_error_line(text + s->offset, s->len, s->line,
	    PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION));
	excerpt = xstrndup(text + s->offset, s->len > MIGRATE_SQL_EXCERPT ?
	    MIGRATE_SQL_EXCERPT : s->len);
	data = migrate_pg_error(res);
	json_object_set_new(data, "revision", json_string(mf->revision));
	json_object_set_new(data, "direction", json_string(st->dir ==
	    GRAPH_UP ? "up" : "down"));
	json_object_set_new(data, "file", json_string(mf->path));
	json_object_set_new(data, "line", json_integer(line));
	json_object_set_new(data, "statement_line", json_integer(s->line));
	json_object_set_new(data, "statement", json_string(excerpt));
	json_object_set_new(data, "transactional", json_boolean(j->tx));
	json_object_set(data, "done", j->done);
	error = xprintf("%s:%d: %s (SQLSTATE %s)", mf->path, line, msg,
	    code ? code : "?");
	if (j->tx)
		j->fail_sql = run_history_sql(j, mf->revision, st->dir ==
		    GRAPH_UP ? "up" : "down", 0, 0, mf->checksum, mf->message,
		    mf->path, j->step_wall, (migd_now() - j->step_t0) * 1000.0,
		    code, error);
	else
		j->fail_sql = run_mark_sql(j, 0, code, error);
	run_notify(j, "failed", json_pack("{s:s, s:s}", "revision",
	    mf->revision, "error", error));
	job_set_error(j, MIGD_ERR_SQL, j->tx ? "sql_error" : "dirty", data,
	    "%s%s", error, j->tx ? "; rolled back, the database is at the "
	    "last good revision" : "; this non-transactional migration "
	    "stopped part-way and is now dirty: check the database, then "
	    "run 'migctl resolve' to say whether it is applied");
	free(excerpt);
	free(error);
	job_end(j, NULL);
}

/* Sends the next statement of the step, or its bookkeeping. */
static void
run_stmt(struct job *j, PGresult *res)
{
	const struct sqlscan	*sc;
	const char		*text;
	char			*sql;

	sc = run_section(j, &text);
	if (res != NULL && PQresultStatus(res) !=
	    PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK &&
	    PQresultStatus(res) != PGRES_EMPTY_QUERY) {
		if (j->stmt == 0) {
			job_ok(j, res);	/* BEGIN or SET failed */
			return;
		}
		run_stmt_failed(j, res, &sc->stmts[j->stmt - 1], text);
		return;
	}
	if (j->stmt == 0 && !j->tx) {
		/* The dirty mark's id, to complete it when the step ends. */
		free(j->mark_id);
		j->mark_id = xstrdup(PQntuples(res) == 1 ? PQgetvalue(res, 0,
		    0) : "0");
	}
	if (j->stmt == sc->n_stmts) {
		run_bookkeeping(j);
		return;
	}
	sql = xstrndup(text + sc->stmts[j->stmt].offset,
	    sc->stmts[j->stmt].len);
	j->stmt++;
	job_query(j, sql, 0, NULL, run_stmt);
	free(sql);
}

/* Starts a step: a transaction, or a dirty mark before running bare. */
static void
run_step(struct job *j)
{
	const struct config	*cf = migd.config;
	const struct graph_step	*st = &j->plan.steps[j->step];
	const struct migfile	*mf = revset_file(j->rs, st->idx);
	const char		*check;
	char			*sql, *mark;

	j->stmt = 0;
	j->ran_sql = 1;
	j->tx = revset_transactional(j->rs, st->idx, st->dir == GRAPH_UP);
	j->step_t0 = migd_now();
	j->step_wall = migrate_wall();
	run_notify(j, "started", json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, "
	    "s:b}", "revision", mf->revision, "message", mf->message, "file",
	    mf->path, "direction", st->dir == GRAPH_UP ? "up" : "down",
	    "index", (json_int_t)j->step + 1, "total",
	    (json_int_t)j->plan.n_steps, "transactional", j->tx));
	/* If migd dies mid-statement, the server stops it within a second
	 * instead of holding the lock until it ends (PostgreSQL 14+). */
	check = PQserverVersion(pool_conn_pg(j->pc)) >= 140000 ?
	    "client_connection_check_interval = '1s'; " : NULL;
	if (j->tx) {
		sql = xprintf("BEGIN; SET LOCAL lock_timeout = '%ldms'; "
		    "SET LOCAL statement_timeout = '%ldms'%s%s",
		    cf->lock_timeout_ms, cf->statement_timeout_ms,
		    check ? "; SET LOCAL " : "", check ? check : "");
	} else {
		/* Marked dirty first: a crash part-way leaves the mark. */
		mark = run_history_sql(j, mf->revision, st->dir == GRAPH_UP ?
		    "up" : "down", 0, 1, mf->checksum, mf->message, mf->path,
		    j->step_wall, 0, NULL, "started; not finished");
		sql = xprintf("SET lock_timeout = '%ldms'; SET "
		    "statement_timeout = '%ldms'; %s%s%s RETURNING id",
		    cf->lock_timeout_ms, cf->statement_timeout_ms,
		    check ? "SET " : "", check ? check : "", mark);
		free(mark);
		j->session_set = 1;
	}
	job_query(j, sql, 0, NULL, run_stmt);
	free(sql);
}

/* The schemas are there: run the first step, if any. */
static void
run_first_step(struct job *j, PGresult *res)
{
	if (!job_ok(j, res))
		return;
	if (j->plan.n_steps == 0)
		run_finish(j);
	else
		run_step(j);
}

/* The schemas that exist came back: create the missing ones, then run. */
static void
run_schemas(struct job *j, PGresult *res)
{
	json_t	*missing;
	char	*sql, *t, *q;
	size_t	 i;
	int	 k, found;

	if (!job_ok(j, res))
		return;
	missing = json_array();
	for (i = 0; i < j->n_ensure; i++) {
		found = 0;
		for (k = 0; k < PQntuples(res); k++) {
			if (strcmp(PQgetvalue(res, k, 0), j->ensure[i]) == 0)
				found = 1;
		}
		if (!found)
			json_array_append_new(missing, json_string(
			    j->ensure[i]));
	}
	if (j->op == MIGRATE_PLAN || j->dry_run) {
		migrate_plan_result(j, missing);
		job_end(j, NULL);
		return;
	}
	j->created = missing;
	j->done = json_array();
	j->t0 = migd_now();
	if (json_array_size(missing) == 0) {
		if (j->plan.n_steps == 0)
			run_finish(j);
		else
			run_step(j);
		return;
	}
	sql = xstrdup("");
	for (i = 0; i < json_array_size(missing); i++) {
		q = sqlscan_quote_ident(json_string_value(json_array_get(
		    missing, i)));
		t = xprintf("%sCREATE SCHEMA IF NOT EXISTS %s; ", sql, q);
		free(q);
		free(sql);
		sql = t;
		log_info("creating schema %s", json_string_value(
		    json_array_get(missing, i)));
	}
	run_notify(j, "schemas", json_pack("{s:O}", "created", missing));
	job_query(j, sql, 0, NULL, run_first_step);
	free(sql);
}

/* ---- stamp and resolve -------------------------------------------- */

/* Writes the version table as rows, with one history row, in one go. */
static void
run_set_rows(struct job *j, char *marks, const char *revision,
    const char *direction, const char *note)
{
	const struct config	*cf = migd.config;
	const struct migfile	*mf = NULL;
	ssize_t			 idx;
	size_t			*keep, n_keep = 0, i, k, n = revset_count(j->rs);
	const size_t		*edges;
	char			*vt, *rows, *hist, *sql;
	json_t			*to;

	/* The rows are the marked revisions that no marked one builds on. */
	keep = xcalloc(n ? n : 1, sizeof *keep);
	{
		char *covered = xcalloc(n ? n : 1, 1);

		for (i = 0; i < n; i++) {
			if (!marks[i])
				continue;
			k = graph_parents(j->rs->graph, i, &edges);
			while (k-- > 0)
				covered[edges[k]] = 1;
			k = graph_depends(j->rs->graph, i, &edges);
			while (k-- > 0)
				covered[edges[k]] = 1;
		}
		for (i = 0; i < n; i++) {
			if (marks[i] && !covered[i])
				keep[n_keep++] = i;
		}
		free(covered);
	}
	if ((idx = graph_find(j->rs->graph, revision)) >= 0)
		mf = revset_file(j->rs, (size_t)idx);
	vt = migrate_qualify(cf->version_schema, cf->version_table);
	rows = run_rows_sql(j, NULL, 0, keep, n_keep);
	hist = run_history_sql(j, revision, direction, 1, 0, mf ? mf->checksum :
	    NULL, mf ? mf->message : NULL, mf ? mf->path : NULL,
	    migrate_wall(), 0, NULL, note);
	sql = xprintf("BEGIN; DELETE FROM %s; %s%s; COMMIT", vt, rows, hist);
	to = json_array();
	for (i = 0; i < n_keep; i++)
		json_array_append_new(to, json_string(graph_id(j->rs->graph,
		    keep[i])));
	j->result = json_pack("{s:o, s:o, s:s}", "from", migrate_rows_json(
	    j->st.rows, j->st.n_rows), "to", to, "revision", revision);
	log_info("%s %s: version table now %zu row%s", direction, revision,
	    n_keep, n_keep == 1 ? "" : "s");
	job_query(j, sql, 0, NULL, job_end);
	free(keep);
	free(vt);
	free(rows);
	free(hist);
	free(sql);
}

/* stamp REV: say the database is at REV without running anything. */
static void
job_stamp(struct job *j)
{
	struct graph_plan	 plan;
	char			*marks, *cause = NULL;
	size_t			 idx, i, *heads, n;
	const char		*label = j->target;

	marks = xcalloc(revset_count(j->rs) + 1, 1);
	if (strcmp(j->target, "base") == 0)
		label = "base";
	else if (strcmp(j->target, "heads") == 0 ||
	    strcmp(j->target, "head") == 0) {
		n = graph_heads(j->rs->graph, &heads);
		if (n != 1 && strcmp(j->target, "head") == 0) {
			free(heads);
			free(marks);
			job_fail(j, MIGD_ERR_MIGRATIONS, "plan_error", NULL,
			    "there are %zu heads: stamp 'heads' or one "
			    "revision", n);
			return;
		}
		for (i = 0; i < n; i++)
			marks[heads[i]] = 1;
		label = n == 1 ? graph_id(j->rs->graph, heads[0]) : "heads";
		free(heads);
	} else {
		if (graph_lookup(j->rs->graph, j->target, &idx, &cause) != 0) {
			free(marks);
			job_fail(j, MIGD_ERR_MIGRATIONS, "plan_error", NULL,
			    "%s", cause);
			free(cause);
			return;
		}
		marks[idx] = 1;
		label = graph_id(j->rs->graph, idx);
	}
	/* Marked heads imply everything below them. */
	memset(&plan, 0, sizeof plan);
	for (i = 0; i < revset_count(j->rs); i++) {
		if (!marks[i])
			continue;
		if (graph_plan(j->rs->graph, NULL, 0, graph_id(j->rs->graph, i),
		    GRAPH_UP, &plan, &cause) == 0) {
			size_t s;

			for (s = 0; s < plan.n_steps; s++)
				marks[plan.steps[s].idx] = 1;
		}
		free(cause);
		cause = NULL;
		graph_plan_clear(&plan);
	}
	run_set_rows(j, marks, label, "stamp", NULL);
	free(marks);
}

/* resolve REV applied|unapplied: clears a dirty mark, saying which is true. */
static void
job_resolve(struct job *j)
{
	const struct dbrev	*dr;
	char			*marks, *cause = NULL;
	const size_t		*edges;
	size_t			 idx, i, k;
	int			 applied = strcmp(j->resolve_as, "applied") == 0;

	if (strcmp(j->resolve_as, "applied") != 0 &&
	    strcmp(j->resolve_as, "unapplied") != 0) {
		job_fail(j, MIGD_ERR_INVALID_PARAMS, "invalid_params", NULL,
		    "resolve takes 'applied' or 'unapplied', not '%s'",
		    j->resolve_as);
		return;
	}
	if (graph_lookup(j->rs->graph, j->target, &idx, &cause) != 0) {
		job_fail(j, MIGD_ERR_MIGRATIONS, "plan_error", NULL, "%s",
		    cause);
		free(cause);
		return;
	}
	dr = dbstate_rev(&j->st, graph_id(j->rs->graph, idx));
	if (dr == NULL || !dr->dirty) {
		job_fail(j, MIGD_ERR_STATE, "not_dirty", NULL, "revision %s is "
		    "not dirty: nothing to resolve", graph_id(j->rs->graph,
		    idx));
		return;
	}
	marks = xcalloc(revset_count(j->rs) + 1, 1);
	if (migrate_applied(j->rs, &j->st, marks) != 0) {
		free(marks);
		job_fail(j, MIGD_ERR_STATE, "ahead", NULL, "the version table "
		    "names revisions no migration file defines");
		return;
	}
	if (applied) {
		/* Everything it builds on must be applied already. */
		for (k = 0; k < 2; k++) {
			size_t n = k == 0 ? graph_parents(j->rs->graph, idx,
			    &edges) : graph_depends(j->rs->graph, idx, &edges);

			for (i = 0; i < n; i++) {
				if (!marks[edges[i]]) {
					job_fail(j, MIGD_ERR_STATE, "plan_error",
					    NULL, "%s cannot be applied: %s, "
					    "which it builds on, is not",
					    graph_id(j->rs->graph, idx),
					    graph_id(j->rs->graph, edges[i]));
					free(marks);
					return;
				}
			}
		}
		marks[idx] = 1;
	} else
		marks[idx] = 0;
	run_set_rows(j, marks, graph_id(j->rs->graph, idx), "resolve",
	    applied ? "resolved as applied" : "resolved as unapplied");
	free(marks);
}

/* ---- the read-only answers ---------------------------------------- */

static void
job_history_rows(struct job *j, PGresult *res)
{
	static const char *bools[] = { "success", "dirty" };
	json_t		*rows, *row;
	const char	*name, *v;
	int		 i, f;
	size_t		 b;

	if (!job_ok(j, res))
		return;
	rows = json_array();
	for (i = 0; i < PQntuples(res); i++) {
		row = json_object();
		for (f = 0; f < PQnfields(res); f++) {
			name = PQfname(res, f);
			v = PQgetvalue(res, i, f);
			if (PQgetisnull(res, i, f)) {
				json_object_set_new(row, name, json_null());
				continue;
			}
			for (b = 0; b < nitems(bools); b++) {
				if (strcmp(name, bools[b]) == 0)
					break;
			}
			if (b < nitems(bools))
				json_object_set_new(row, name, json_boolean(
				    v[0] == 't'));
			else if (strcmp(name, "id") == 0 ||
			    strcmp(name, "requester_uid") == 0 ||
			    strcmp(name, "requester_pid") == 0)
				json_object_set_new(row, name, json_integer(
				    atoll(v)));
			else if (strcmp(name, "duration_ms") == 0)
				json_object_set_new(row, name, json_real(
				    atof(v)));
			else
				json_object_set_new(row, name, json_string(v));
		}
		json_array_append_new(rows, row);
	}
	j->result = json_pack("{s:o}", "history", rows);
	job_end(j, NULL);
}

static void
job_history(struct job *j)
{
	const struct config	*cf = migd.config;
	char			*ht, *sql, limit[32];
	const char		*params[2];

	if (!j->st.has_history) {
		j->result = json_pack("{s:[]}", "history");
		job_end(j, NULL);
		return;
	}
	ht = migrate_qualify(cf->history_schema, cf->history_table);
	sql = xprintf("SELECT id, revision, direction, success, dirty, "
	    "checksum, message, file, to_char(started_at AT TIME ZONE 'UTC', "
	    "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') AS started_at, "
	    "to_char(finished_at AT TIME ZONE 'UTC', "
	    "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') AS finished_at, "
	    "duration_ms, requested_by, requester_uid, requester_pid, host, "
	    "migd_version, sqlstate, error, array_to_string(schemas_created, "
	    "',') AS schemas_created FROM %s WHERE $2 = '' OR revision = $2 "
	    "ORDER BY id DESC LIMIT $1", ht);
	snprintf(limit, sizeof limit, "%ld", j->limit);
	params[0] = limit;
	params[1] = j->target ? j->target : "";
	job_query(j, sql, 2, params, job_history_rows);
	free(ht);
	free(sql);
}

static void
job_schemas_rows(struct job *j, PGresult *res)
{
	const struct config	*cf = migd.config;
	const struct sqlscan	*sc;
	const struct migfile	*mf;
	json_t			*list, *o;
	const char		*name;
	char			*marks;
	size_t			 i, k, n = revset_count(j->rs);
	int			 r, exists, made;

	if (!job_ok(j, res))
		return;
	list = json_array();
	marks = xmalloc(n ? n : 1);
	if (migrate_applied(j->rs, &j->st, marks) != 0)
		memset(marks, 1, n);
	/* Configured schemas first, then those the files name, in order. */
	for (i = 0; i < cf->n_schemas; i++) {
		json_array_append_new(list, json_pack("{s:s, s:s}", "name",
		    cf->schemas[i], "source", "config"));
	}
	for (i = 0; i < n; i++) {
		mf = revset_file(j->rs, i);
		sc = &j->rs->up[i];
		for (k = 0; k < sc->n_schemas; k++) {
			size_t q;

			for (q = 0; q < json_array_size(list); q++) {
				if (strcmp(json_string_value(json_object_get(
				    json_array_get(list, q), "name")),
				    sc->schemas[k].name) == 0)
					break;
			}
			if (q < json_array_size(list))
				continue;
			o = json_pack("{s:s, s:o, s:b}", "name",
			    sc->schemas[k].name, "source", json_sprintf(
			    "%s:%d", mf->path, sc->schemas[k].line),
			    "created_by_migration", sc->schemas[k].created);
			json_object_set_new(o, "pending", json_boolean(
			    !marks[i]));
			json_array_append_new(list, o);
		}
	}
	for (i = 0; i < json_array_size(list); i++) {
		o = json_array_get(list, i);
		name = json_string_value(json_object_get(o, "name"));
		exists = 0;
		for (r = 0; r < PQntuples(res); r++) {
			if (strcmp(PQgetvalue(res, r, 0), name) == 0)
				exists = 1;
		}
		/* As a run would: unless a pending step creates it itself. */
		made = 0;
		for (k = 0; k < n && !made; k++) {
			size_t q;

			for (q = 0; !marks[k] && q < j->rs->up[k].n_schemas;
			    q++) {
				if (j->rs->up[k].schemas[q].created &&
				    strcmp(j->rs->up[k].schemas[q].name,
				    name) == 0)
					made = 1;
			}
		}
		json_object_set_new(o, "exists", json_boolean(exists));
		json_object_set_new(o, "will_create", json_boolean(!exists &&
		    !made && (json_object_get(o, "pending") == NULL ||
		    json_is_true(json_object_get(o, "pending")))));
	}
	free(marks);
	j->result = json_pack("{s:o}", "schemas", list);
	job_end(j, NULL);
}

/* Every schema: where it comes from, whether it exists, the next run's part. */
static void
job_schemas(struct job *j)
{
	job_query(j, "SELECT nspname FROM pg_namespace", 0, NULL,
	    job_schemas_rows);
}

static void
job_heads(struct job *j)
{
	json_t	*list, *o;
	char	*marks;
	size_t	*heads, n, i, k;
	int	 known;

	marks = xmalloc(revset_count(j->rs) + 1);
	known = migrate_applied(j->rs, &j->st, marks) == 0;
	list = json_array();
	n = graph_heads(j->rs->graph, &heads);
	for (i = 0; i < n; i++) {
		o = migrate_rev_json(j->rs, heads[i]);
		json_object_set_new(o, "applied", known ?
		    json_boolean(marks[heads[i]]) : json_null());
		for (k = 0; k < j->st.n_rows; k++) {
			if (strcmp(j->st.rows[k], graph_id(j->rs->graph,
			    heads[i])) == 0)
				break;
		}
		json_object_set_new(o, "current", json_boolean(k <
		    j->st.n_rows));
		json_array_append_new(list, o);
	}
	free(heads);
	free(marks);
	j->result = json_pack("{s:o}", "heads", list);
	job_end(j, NULL);
}

/* The state against the files, as current and verify report it. */
static void
job_assess_reply(struct job *j)
{
	json_t	*o = json_object();

	migrate_assess(j->rs, &j->st, o);
	if (j->op == MIGRATE_VERIFY)
		json_object_set_new(o, "ok", json_boolean(strcmp(
		    json_string_value(json_object_get(o, "state")),
		    "up_to_date") == 0 || strcmp(json_string_value(
		    json_object_get(o, "state")), "pending") == 0));
	j->result = o;
	job_end(j, NULL);
}

/* The state is read: load the files and do what the request asked. */
static void
job_dispatch(struct job *j)
{
	json_t	*errors = NULL;

	if (j->op == MIGRATE_STATUS) {
		/* Cheap when nothing changed: inotify says when to reread. */
		if (migrate.stale || migrate.errors != NULL ||
		    migrate.rs == NULL) {
			revset_unref(migrate_load(&errors));
			json_decref(errors);
		}
		migrate_status_reply(j, 0);
		job_end(j, NULL);
		return;
	}
	if (j->op == MIGRATE_HISTORY) {
		job_history(j);
		return;
	}
	if ((j->rs = migrate_load(&errors)) == NULL) {
		job_fail(j, MIGD_ERR_MIGRATIONS, "invalid_migrations",
		    json_pack("{s:o}", "errors", errors), "%s%s",
		    json_string_value(json_array_get(errors, 0)),
		    json_array_size(errors) > 1 ? " (and more: see "
		    "data.errors)" : "");
		return;
	}
	switch (j->op) {
	case MIGRATE_CURRENT:
	case MIGRATE_VERIFY:
		job_assess_reply(j);
		break;
	case MIGRATE_HEADS:
		job_heads(j);
		break;
	case MIGRATE_SCHEMAS:
		job_schemas(j);
		break;
	case MIGRATE_STAMP:
		job_stamp(j);
		break;
	case MIGRATE_RESOLVE:
		job_resolve(j);
		break;
	default:
		job_plan(j);
		break;
	}
}

/* ---- entry points ------------------------------------------------- */

/* Takes a request: read-only ones run now, mutating ones queue. */
void
migrate_start(struct request *req, enum migrate_op op)
{
	struct job	*j;
	json_t		*p = req->rpc.params;
	const char	*s;
	size_t		 pos = 0;

	if (op == MIGRATE_STATUS && migrate.status_leader != NULL) {
		/* A status still waiting for a connection answers this one too:
		 * it has read nothing yet, so its answer is as fresh. */
		j = migrate.status_leader;
		j->joined = xreallocarray(j->joined, j->n_joined + 1,
		    sizeof *j->joined);
		j->joined[j->n_joined++] = req;
		return;
	}
	j = xcalloc(1, sizeof *j);
	j->req = req;
	j->op = op;
	j->limit = 50;
	if ((s = json_string_value(json_object_get(p, "target"))) != NULL ||
	    (s = json_string_value(json_object_get(p, "revision"))) != NULL)
		j->target = xstrdup(s);
	else if (op == MIGRATE_UPGRADE || op == MIGRATE_PLAN)
		j->target = xstrdup("head");
	if ((s = json_string_value(json_object_get(p, "state"))) != NULL)
		j->resolve_as = xstrdup(s);
	j->dry_run = json_is_true(json_object_get(p, "dry_run"));
	j->allow_drift = json_is_true(json_object_get(p, "allow_drift"));
	if (json_is_integer(json_object_get(p, "limit")))
		j->limit = (long)json_integer_value(json_object_get(p,
		    "limit"));
	if (j->limit < 1 || j->limit > 100000) {
		job_free(j);
		cmd_error(req, MIGD_ERR_INVALID_PARAMS, "invalid_params", NULL,
		    "limit must be from 1 to 100000");
		return;
	}
	j->mutating = op == MIGRATE_UPGRADE || op == MIGRATE_DOWNGRADE ||
	    op == MIGRATE_STAMP || op == MIGRATE_RESOLVE;
	if (j->mutating && j->dry_run)
		j->mutating = 0;
	if (!j->mutating) {
		if (op == MIGRATE_STATUS)
			migrate.status_leader = j;
		job_read_state(j);
		return;
	}
	if (migd.draining) {
		job_free(j);
		cmd_error(req, MIGD_ERR_SHUTTING_DOWN, "shutting_down", NULL,
		    "migd is shutting down");
		return;
	}
	TAILQ_INSERT_TAIL(&migrate.queue, j, entry);
	if (TAILQ_FIRST(&migrate.queue) == j) {
		job_read_state(j);
		return;
	}
	TAILQ_FOREACH(j, &migrate.queue, entry)
		pos++;
	j = TAILQ_LAST(&migrate.queue, jobs);
	run_notify(j, "queued", json_pack("{s:I}", "position",
	    (json_int_t)pos - 1));
}

/* SIGTERM: queued runs are refused; the running one finishes its step. */
void
migrate_shutdown(void)
{
	struct job	*j, *first = TAILQ_FIRST(&migrate.queue), *next;

	if (first == NULL)
		return;
	for (j = TAILQ_NEXT(first, entry); j != NULL; j = next) {
		next = TAILQ_NEXT(j, entry);
		TAILQ_REMOVE(&migrate.queue, j, entry);
		j->mutating = 0;
		job_set_error(j, MIGD_ERR_SHUTTING_DOWN, "shutting_down", NULL,
		    "migd is shutting down: this request did not start");
		job_reply(j);
	}
}

int
migrate_busy(void)
{
	return (!TAILQ_EMPTY(&migrate.queue));
}

void
migrate_init(void)
{
	json_t	*errors = NULL;

	TAILQ_INIT(&migrate.queue);
	migrate.inotify = -1;
	if (gethostname(migrate.host, sizeof migrate.host) != 0)
		strncpy(migrate.host, "unknown", sizeof migrate.host - 1);
	migrate.host[sizeof migrate.host - 1] = '\0';
	migrate_reload(&errors);
	json_decref(errors);
}

void
migrate_free(void)
{
	if (migrate.inotify_ev != NULL)
		event_free(migrate.inotify_ev);
	if (migrate.inotify != -1)
		close(migrate.inotify);
	revset_unref(migrate.rs);
	migrate.rs = NULL;
	json_decref(migrate.errors);
	json_decref(migrate.last_state);
}
