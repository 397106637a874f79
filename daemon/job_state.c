/*
 * What a job reads before it acts, in the order a run goes through it, top
 * to bottom: a connection of the pool (job_read_state; a run under
 * max_connections_total first waits for a slot), a second look at a
 * connection through a pooler, migd's advisory lock (polled), migd's tables
 * (created, or an older history table given its columns, under the lock),
 * then the version rows and the history's summary in one round trip, handed
 * to job_dispatch (report.c), which plans and runs.  After a run, before its
 * connection goes back, job_state_refresh reads the state once more for
 * status.  The job's life and clean-up are in job.c.
 */
#include <sys/queue.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "config.h"
#include "migd.h"
#include "engine.h"

static int	job_wait_slot(struct job *j);
static void	job_wait_timeout(evutil_socket_t fd, short events, void *arg);
static void	job_no_conn(struct job *j);
static void	job_got_conn(struct pool_conn *pc, void *arg);
static void	job_rechecked(struct pool_conn *pc, const char *why, void *arg);
static void	job_lock(struct job *j, PGresult *res);
static void	job_lock_timer(evutil_socket_t fd, short events, void *arg);
static void	job_locked(struct job *j, PGresult *res);
static void	job_lock_holder(struct job *j, PGresult *res);
static void	job_lock_waits(struct job *j, PGresult *res);
static void	job_tables(struct job *j, PGresult *res);
static void	job_version_elsewhere(struct job *j, const char *tables);
static void	job_history_alone(struct job *j, int vschema);
static void	job_history_alone_done(struct job *j, PGresult *res);
static void	job_tables_done(struct job *j, PGresult *res);
static char	*migrate_tables_ddl(const struct config_db *cf, int version,
		    int history, int vschema, int hschema);
static char	*migrate_history_upgrade_ddl(const struct config_db *cf);
static void	job_ddl_done(struct job *j, PGresult *res, int upgrade);
static void	job_tables_created(struct job *j, PGresult *res);
static void	job_history_upgraded(struct job *j, PGresult *res);
static void	job_rows(struct job *j, PGresult *res);
static char	*job_state_sql(const struct config_db *cf, int version,
		    int history, int cheap);
static void	job_state_done(struct job *j, PGresult *res);
static const char	*job_parse_state(PGresult *res, struct dbstate *st);
static void	job_refreshed(struct job *j, PGresult *res);
static void	job_keep_summary(struct engine *e, const char *key,
		    const struct dbstate *st);

/*
 * Starts a job: waits for a connection of the pool.  status never waits
 * long; the others give a connecting pool connect_timeout to come up, so a
 * deploy hook racing migd's start (or a restart of PostgreSQL) succeeds; a
 * run under max_connections_total first waits for a slot of the cap
 * (job_wait_slot).
 */
void
job_read_state(struct job *j)
{
	struct timeval	 tv = { MIGRATE_STATUS_WAIT_MS / 1000,
			    (MIGRATE_STATUS_WAIT_MS % 1000) * 1000 };

	if (j->op == MIGRATE_STATUS) {
		/* No connection and none to be had now: the cached state at
		 * once (stale), rather than wait for one. */
		switch (pool_available(j->db->pool)) {
		case POOL_DOWN:
			migrate_status_reply(j, 0);
			job_end(j, NULL);
			return;
		case POOL_NO_BUDGET:
			migrate_status_reply(j, 1);
			job_end(j, NULL);
			return;
		default:
			break;
		}
	}
	if (j->op != MIGRATE_STATUS) {
		tv.tv_sec = j->db->cf->connect_timeout;
		tv.tv_usec = 0;
	}
	j->wait_t0 = migd_now();
	j->slot_since = j->conn_deadline = 0;
	j->slot_poll = j->mutating && pool_capped(j->db->pool);
	if (j->slot_poll) {
		/* A run may wait for a slot of the cap: job_wait_slot. */
		tv.tv_sec = 0;
		tv.tv_usec = MIGRATE_SLOT_POLL_MS * 1000;
	}
	j->wait_timer = evtimer_new(j->db->base, job_wait_timeout, j);
	evtimer_add(j->wait_timer, &tv);
	j->waiter = pool_acquire(j->db->pool, job_got_conn, j);
}

/*
 * A run under max_connections_total: waiting for a slot of the cap is no
 * connection failure, so it waits as long as a run queued behind another
 * does (until it is cancelled or migd stops), saying so once; connect_timeout
 * counts from when its pool got a slot (from the start when it never
 * waited).  Polled, as the lock is.  1 while it waits on, 0 when the time
 * is up.
 */
static int
job_wait_slot(struct job *j)
{
	struct timeval	 tv = { 0, MIGRATE_SLOT_POLL_MS * 1000 };
	double		 now = migd_now(), left;
	int		 used, cap;

	if (j->conn_deadline == 0 && pool_budget_queued(j->db->pool, &used,
	    &cap)) {
		if (j->slot_since == 0) {
			j->slot_since = now;
			log_info("%s: waiting for a connection slot: %d of %d "
			    "in use (max_connections_total)", j->db->name, used,
			    cap);
			run_notify(j, "waiting_for_slot", json_pack("{s:i, s:i}",
			    "in_use", used, "max_connections_total", cap));
		}
		evtimer_add(j->wait_timer, &tv);
		return (1);
	}
	if (j->conn_deadline == 0)
		j->conn_deadline = (j->slot_since > 0 ? now : j->wait_t0) +
		    j->db->cf->connect_timeout;
	if ((left = j->conn_deadline - now) <= 0)
		return (0);
	tv.tv_sec = (time_t)left;
	tv.tv_usec = (suseconds_t)((left - (double)tv.tv_sec) * 1e6);
	evtimer_add(j->wait_timer, &tv);
	return (1);
}

/* No connection came free in time: status answers from its cache, others fail. */
static void
job_wait_timeout(evutil_socket_t fd, short events, void *arg)
{
	struct job	*j = arg;

	(void)fd;
	(void)events;
	if (j->slot_poll && job_wait_slot(j))
		return;
	pool_cancel_wait(j->db->pool, j->waiter);
	j->waiter = NULL;
	if (j->op == MIGRATE_STATUS) {
		migrate_status_reply(j, 1);
		job_end(j, NULL);
		return;
	}
	job_fail(j, MIGD_ERR_DB_UNAVAILABLE, "db_unavailable", json_pack(
	    "{s:o}", "last_error", pool_last_error(j->db->pool) ?
	    json_string(pool_last_error(j->db->pool)) : json_null()),
	    "no connection to PostgreSQL within %d s (connect_timeout): %s",
	    j->db->cf->connect_timeout, pool_last_error(j->db->pool) ?
	    pool_last_error(j->db->pool) : pool_available(j->db->pool) ==
	    POOL_NO_BUDGET ? "every connection of max_connections_total is "
	    "in use by other databases' runs" : "still connecting");
}

/* No connection can come until someone acts: say why now rather than
 * after connect_timeout (status answers without the database, as ever). */
static void
job_no_conn(struct job *j)
{
	const char	*why = pool_last_error(j->db->pool);
	const char	*code = pool_permanent_error(j->db->pool);
	const char	*refused = pool_refused(j->db->pool);

	if (j->op == MIGRATE_STATUS) {
		migrate_status_reply(j, 0);
		job_end(j, NULL);
		return;
	}
	if (refused != NULL) {
		job_fail(j, MIGD_ERR_DB_UNAVAILABLE, "db_unavailable",
		    json_pack("{s:s, s:b, s:b}", "last_error", refused,
		    "permanent", 1, "pooler", 1), "migd refuses to connect "
		    "through this pooler, and nothing ran: %s", refused);
		return;
	}
	job_fail(j, MIGD_ERR_DB_UNAVAILABLE, "db_unavailable", json_pack(
	    "{s:s, s:b, s:o}", "last_error", why ? why : "unknown error",
	    "permanent", 1, "sqlstate", code != NULL && *code != '\0' ?
	    json_string(code) : json_null()), "cannot connect to PostgreSQL, "
	    "and retrying will not help until the database, the role or the "
	    "credentials are fixed: %s", why ? why : "unknown error");
}

static void
job_got_conn(struct pool_conn *pc, void *arg)
{
	struct job	*j = arg;

	j->waiter = NULL;
	j->pc = pc;
	if (j->wait_timer != NULL)
		evtimer_del(j->wait_timer);
	if (pc == NULL) {
		job_no_conn(j);
		return;
	}
	if (j->e->status_leader == j)
		j->e->status_leader = NULL;	/* reading: no more joiners */
	if (j->mutating && !j->dry_run && pool_conn_pooled(pc)) {
		/* Through a pooler: its mode may have changed since this
		 * connection was checked; look again before the lock. */
		pool_recheck(pc, job_rechecked, j);
	} else if (j->mutating && !j->dry_run) {
		j->deadline = migd_now() + (double)j->db->cf->lock_wait_ms /
		    1000.0;
		job_lock(j, NULL);
	} else if (j->e->tables_known) {
		j->st.has_version = j->st.has_history = 1;
		job_rows(j, NULL);
	} else
		job_tables(j, NULL);
}

/* The second look at a connection through a pooler: take the lock, or
 * stop with nothing done. */
static void
job_rechecked(struct pool_conn *pc, const char *why, void *arg)
{
	struct job	*j = arg;

	if (pool_conn_pg(pc) == NULL)
		j->pc = NULL;	/* lost meanwhile */
	if (why != NULL) {
		job_fail(j, MIGD_ERR_DB_UNAVAILABLE, "db_unavailable",
		    json_pack("{s:s, s:b}", "last_error", why, "pooler", 1),
		    "migd refuses to run through this pooler, and nothing ran: "
		    "%s", why);
		return;
	}
	if (job_cancelled(j))
		return;
	j->deadline = migd_now() + (double)j->db->cf->lock_wait_ms / 1000.0;
	job_lock(j, NULL);
}

/* Polls pg_try_advisory_lock: a blocking waiter would deadlock on CIC.  The
 * lock is taken only on the server process the connection was checked to
 * have to itself (pool.c), never on one a pooler lends it. */
static void
job_lock(struct job *j, PGresult *res)
{
	const char	*params[2];
	char		 key[32], pid[16];

	(void)res;
	snprintf(key, sizeof key, "%lld", migrate_lock_key(j->db->cf));
	snprintf(pid, sizeof pid, "%d", pool_conn_server_pid(j->pc));
	params[0] = key;
	params[1] = pid;
	job_query(j, "SELECT CASE WHEN pg_catalog.pg_backend_pid() = $2::int "
	    "THEN pg_catalog.pg_try_advisory_lock($1::bigint) END", 2, params,
	    job_locked);
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
	if (PQgetisnull(res, 0, 0)) {
		/* Not the server process this connection was checked to
		 * have: a pooler moved it; the lock was not taken. */
		pool_conn_retire(j->pc);
		job_fail(j, MIGD_ERR_DB_UNAVAILABLE, "db_unavailable", NULL,
		    "this connection's queries now run on another server "
		    "process than the one it was checked to have: a connection "
		    "pooler in transaction or statement mode sits between migd "
		    "and PostgreSQL; migd needs a session of its own for its "
		    "migration lock, so nothing ran: point conninfo at "
		    "PostgreSQL itself, or at a PgBouncer database with "
		    "pool_mode = session");
		return;
	}
	if (PQgetvalue(res, 0, 0)[0] == 't') {
		j->locked = 1;
		j->refresh = !j->dry_run;
	}
	if (job_cancelled(j))
		return;
	if (j->locked) {
		if (j->e->draining) {
			/* Stopping: a run not yet begun does not begin. */
			job_fail(j, MIGD_ERR_SHUTTING_DOWN, "shutting_down",
			    NULL, "migd is shutting down: nothing ran");
			return;
		}
		job_tables(j, NULL);
		return;
	}
	if (j->e->draining) {
		job_fail(j, MIGD_ERR_SHUTTING_DOWN, "shutting_down", NULL,
		    "migd is shutting down: stopped waiting for the migration "
		    "lock; nothing ran");
		return;
	}
	if (migd_now() >= j->deadline || !j->lock_said) {
		/* Holders in this database only (the same key taken in another
		 * database of the cluster is another lock), and the holder's own
		 * lock, not the shared witness it also holds during a migration
		 * (book_witness_sql).  At the first miss, to say who the run
		 * waits for; at the deadline, to say who it gave up on. */
		snprintf(key, sizeof key, "%lld",
		    migrate_lock_key(j->db->cf));
		params[0] = key;
		job_query(j, "SELECT a.pid, coalesce(a.application_name, ''), "
		    "coalesce(host(a.client_addr), 'local'), "
		    "coalesce(a.usename, ''), a.backend_start::text, "
		    "coalesce(a.state, '') FROM pg_locks l JOIN "
		    "pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = "
		    "'advisory' AND l.granted AND l.classid = ($1::bigint >> "
		    "32)::oid AND l.objid = ($1::bigint & 4294967295)::oid AND "
		    "l.objsubid = 1 AND l.mode = 'ExclusiveLock' AND "
		    "l.database = (SELECT oid FROM pg_database WHERE datname = "
		    "current_database()) AND a.datname = current_database()", 1,
		    params, migd_now() >= j->deadline ? job_lock_holder :
		    job_lock_waits);
		return;
	}
	if (j->timer == NULL)
		j->timer = evtimer_new(j->db->base, job_lock_timer, j);
	evtimer_add(j->timer, &tv);
}

/* The holders of the migration lock, as JSON and (*who) as one line. */
static json_t *
job_lock_holders(PGresult *res, char **who)
{
	json_t	*holders = json_array();
	int	 i;

	*who = NULL;
	for (i = 0; i < PQntuples(res); i++) {
		json_array_append_new(holders, json_pack("{s:I, s:s, s:s, s:s, "
		    "s:s, s:s}", "pid", (json_int_t)atoll(PQgetvalue(res, i, 0)),
		    "application_name", PQgetvalue(res, i, 1),
		    "client", PQgetvalue(res, i, 2),
		    "user", PQgetvalue(res, i, 3),
		    "backend_start", PQgetvalue(res, i, 4),
		    "state", PQgetvalue(res, i, 5)));
		if (*who == NULL)
			*who = xprintf("pid %s, application_name '%s', client "
			    "%s, user %s", PQgetvalue(res, i, 0),
			    PQgetvalue(res, i, 1), PQgetvalue(res, i, 2),
			    PQgetvalue(res, i, 3));
	}
	return (holders);
}

/* The lock was taken at the first try: another run (another migd, another
 * host) holds it.  Says so once, naming it, and goes on polling: silence
 * for up to lock_wait looks like a hang. */
static void
job_lock_waits(struct job *j, PGresult *res)
{
	struct timeval	 tv = { 0, MIGRATE_LOCK_POLL_MS * 1000 };
	json_t		*holders;
	char		*who;

	if (!job_ok(j, res))
		return;
	j->lock_said = 1;
	holders = job_lock_holders(res, &who);
	run_notify(j, "waiting_for_lock", json_pack("{s:o, s:s, s:I}",
	    "holders", holders, "waiting_for", who ? who : "holder has gone",
	    "lock_wait_ms", (json_int_t)j->db->cf->lock_wait_ms));
	free(who);
	if (j->timer == NULL)
		j->timer = evtimer_new(j->db->base, job_lock_timer, j);
	evtimer_add(j->timer, &tv);
}

static void
job_lock_holder(struct job *j, PGresult *res)
{
	json_t	*holders;
	char	*who;

	if (!job_ok(j, res))
		return;
	holders = job_lock_holders(res, &who);
	job_fail(j, MIGD_ERR_BUSY, "lock_timeout", json_pack("{s:o, s:I}",
	    "holders", holders, "lock_wait_ms",
	    (json_int_t)j->db->cf->lock_wait_ms),
	    "another migration holds the migration lock (%s); gave up after "
	    "%ld ms (lock_wait)", who ? who : "holder has gone",
	    j->db->cf->lock_wait_ms);
	free(who);
}

/*
 * When the version table does not exist: the tables shaped as Alembic's
 * version table (one column, version_num) elsewhere in the database, that
 * no migd history table sits beside (those are another migd's).  A
 * database Alembic migrated into a version table of env.py's naming
 * (version_table, version_table_schema) has one: migd on its default would
 * see nothing applied and run every revision again.
 */
#define JOB_OTHER_VERSION_TABLES					\
	"CASE WHEN to_regclass($1) IS NULL THEN (SELECT string_agg("	\
	"format('%I.%I', n.nspname, c.relname), ', ' ORDER BY "		\
	"n.nspname, c.relname) FROM pg_catalog.pg_class c JOIN "	\
	"pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE "	\
	"c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', "	\
	"'information_schema') AND n.nspname !~ '^pg_toast' AND "	\
	"(SELECT array_agg(a.attname::text) FROM pg_catalog.pg_attribute " \
	"a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT "		\
	"a.attisdropped) = ARRAY['version_num'] AND NOT EXISTS (SELECT 1 " \
	"FROM pg_catalog.pg_class h WHERE h.relnamespace = c.relnamespace " \
	"AND h.relkind IN ('r', 'p') AND (SELECT count(*) FROM "	\
	"pg_catalog.pg_attribute a WHERE a.attrelid = h.oid AND "	\
	"a.attname IN ('revision', 'direction', 'checksum', 'success') " \
	"AND NOT a.attisdropped) = 4)) END"

/* Which of migd's tables and schemas exist already. */
static void
job_tables(struct job *j, PGresult *res)
{
	const struct config_db	*cf = j->db->cf;
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
	    "EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $4), "
	    "to_regclass($2) IS NOT NULL AND (SELECT count(*) FROM "
	    "pg_catalog.pg_attribute WHERE attrelid = to_regclass($2) AND "
	    "attname IN ('attempt', 'lint') AND NOT attisdropped) < 2, "
	    JOB_OTHER_VERSION_TABLES, 4, params, job_tables_done);
	free(vt);
	free(ht);
}

/* Refuses to run from base (or adopt nothing) beside another version
 * table, before migd creates its own: nothing is written. */
static void
job_version_elsewhere(struct job *j, const char *tables)
{
	const struct config_db	*cf = j->db->cf;
	const char		*comma = strchr(tables, ',');
	char			*vt, *first;

	vt = xprintf("%s.%s", cf->version_schema, cf->version_table);
	first = comma != NULL ? xstrndup(tables, (size_t)(comma - tables)) :
	    xstrdup(tables);
	job_fail(j, MIGD_ERR_STATE, "version_table_elsewhere", json_pack(
	    "{s:s, s:s}", "version_table", vt, "tables", tables), "the version "
	    "table %s does not exist, but this database has %s, shaped as "
	    "Alembic's version table: if Alembic migrated this database, "
	    "set 'version_table = %s' in migd.conf ([migrations]) and reload, "
	    "or migd would run every revision again from base; if %s "
	    "another application's, create %s with 'migctl stamp base' "
	    "first. Nothing was written", vt, tables, first, comma != NULL ?
	    "they are" : "it is", vt);
	free(first);
	free(vt);
}

/*
 * The version table is gone but the history beside it is not: a table
 * dropped, or version_table pointed elsewhere.  Running from base would
 * apply again what the history says ran, so look at it first.
 */
static void
job_history_alone(struct job *j, int vschema)
{
	char	*ht, *sql;

	j->vschema = vschema;
	j->hschema = 1;		/* the history table is there */
	ht = migrate_qualify(j->db->cf->history_schema,
	    j->db->cf->history_table);
	sql = xprintf("SELECT count(*), (array_agg(revision::text ORDER BY id "
	    "DESC))[1], (array_agg(to_char(started_at AT TIME ZONE 'UTC', "
	    "'YYYY-MM-DD HH24:MI:SS') ORDER BY id DESC))[1] FROM %s WHERE "
	    "success AND direction IN ('up', 'stamp', 'adopt')", ht);
	job_query(j, sql, 0, NULL, job_history_alone_done);
	free(sql);
	free(ht);
}

/* Refuses, writing nothing, when the history records applied revisions;
 * else creates the version table as for a new database. */
static void
job_history_alone_done(struct job *j, PGresult *res)
{
	const struct config_db	*cf = j->db->cf;
	char			*vt, *ht, *ddl;
	long			 n;

	if (!job_ok(j, res))
		return;
	n = atol(PQgetvalue(res, 0, 0));
	if (n > 0) {
		vt = xprintf("%s.%s", cf->version_schema, cf->version_table);
		ht = xprintf("%s.%s", cf->history_schema, cf->history_table);
		job_fail(j, MIGD_ERR_STATE, "version_table_missing", json_pack(
		    "{s:s, s:s, s:I, s:s}", "version_table", vt,
		    "history_table", ht, "applied", (json_int_t)n, "latest",
		    PQgetvalue(res, 0, 1)), "the version table %s does not "
		    "exist, but the history %s records %ld migration%s applied "
		    "(the latest: %s, at %s UTC): the table was dropped, or "
		    "version_table in migd.conf names another table than "
		    "before, and migd would run them again from base. Restore "
		    "the table (or the setting), or say where the database is "
		    "with 'migctl stamp REV' (which creates it). Nothing was "
		    "written", vt, ht, n, n == 1 ? "" : "s",
		    PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2));
		free(vt);
		free(ht);
		return;
	}
	if (j->dry_run) {
		job_rows(j, NULL);	/* plans from base, writing nothing */
		return;
	}
	ddl = migrate_tables_ddl(cf, 0, 1, j->vschema, 1);
	log_info("%screating the version table", j->db->tag);
	j->st.has_version = j->st.has_history = 1;
	job_query(j, ddl, 0, NULL, job_tables_created);
	free(ddl);
}

static void
job_tables_done(struct job *j, PGresult *res)
{
	char	*ddl;
	int	 version, history, old_history;

	if (!job_ok(j, res))
		return;
	version = PQgetvalue(res, 0, 0)[0] == 't';
	history = PQgetvalue(res, 0, 1)[0] == 't';
	old_history = PQgetvalue(res, 0, 4)[0] == 't';
	j->st.has_version = version;
	j->st.has_history = history;
	if (j->mutating && !j->dry_run && !PQgetisnull(res, 0, 5) &&
	    (j->op == MIGRATE_UPGRADE || (j->op == MIGRATE_ADOPT &&
	    j->adopt_from == NULL))) {
		job_version_elsewhere(j, PQgetvalue(res, 0, 5));
		return;
	}
	if (j->mutating && !version && history &&
	    (j->op == MIGRATE_UPGRADE || j->op == MIGRATE_DOWNGRADE ||
	    (j->op == MIGRATE_ADOPT && j->adopt_from == NULL))) {
		job_history_alone(j, PQgetvalue(res, 0, 2)[0] == 't');
		return;
	}
	if (j->mutating && !j->dry_run && version && history && old_history) {
		/* Under the advisory lock, before any row is written. */
		ddl = migrate_history_upgrade_ddl(j->db->cf);
		job_query(j, ddl, 0, NULL, job_history_upgraded);
		free(ddl);
		return;
	}
	if (!j->mutating || j->dry_run || (version && history)) {
		job_rows(j, NULL);
		return;
	}
	/* Created under the advisory lock, so two daemons never race here. */
	j->vschema = PQgetvalue(res, 0, 2)[0] == 't';
	j->hschema = PQgetvalue(res, 0, 3)[0] == 't';
	ddl = migrate_tables_ddl(j->db->cf, version, history, j->vschema,
	    j->hschema);
	log_info("%screating %s%s%s", j->db->tag, version ? "" :
	    "the version table",
	    version || history ? "" : " and ", history ? "" :
	    "the history table");
	j->st.has_version = j->st.has_history = 1;
	job_query(j, ddl, 0, NULL, job_tables_created);
	free(ddl);
}

/* The DDL of migd's two tables; the version table exactly as Alembic's. */
static char *
migrate_tables_ddl(const struct config_db *cf, int version, int history,
    int vschema, int hschema)
{
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
		char *t = s, *dirs = book_directions();

		s = xprintf("%sCREATE TABLE IF NOT EXISTS %s ("
		    "id bigserial PRIMARY KEY, "
		    "revision varchar(32) NOT NULL, "
		    "direction text NOT NULL CHECK (direction IN (%s)), "
		    "success boolean NOT NULL, "
		    "dirty boolean NOT NULL DEFAULT false, "
		    "checksum text, message text, file text, "
		    "started_at timestamptz NOT NULL, "
		    "finished_at timestamptz NOT NULL DEFAULT clock_timestamp(), "
		    "duration_ms double precision, "
		    "requested_by text, requester_uid bigint, "
		    "requester_pid bigint, host text, migd_version text, "
		    "sqlstate text, error text, schemas_created text[], "
		    "attempt integer, lint jsonb);"
		    "CREATE INDEX IF NOT EXISTS %s ON %s (revision, id);",
		    t, ht, dirs, ix, ht);
		free(t);
		free(dirs);
	}
	free(vt);
	free(ht);
	free(vs);
	free(hs);
	free(pk);
	free(ix);
	return (s);
}

/*
 * The columns a history table of an older migd lacks (attempt, lint), added
 * in place: nullable, so no row is rewritten and older rows keep NULL.
 */
static char *
migrate_history_upgrade_ddl(const struct config_db *cf)
{
	char			*ht, *s;

	ht = migrate_qualify(cf->history_schema, cf->history_table);
	s = xprintf("ALTER TABLE %s ADD COLUMN IF NOT EXISTS attempt integer, "
	    "ADD COLUMN IF NOT EXISTS lint jsonb", ht);
	log_info("adding the columns attempt and lint to %s", ht);
	free(ht);
	return (s);
}

/* migd's own DDL refused (the role may not create or alter its tables):
 * said with what the operator must do, before any row is written. */
static void
job_ddl_done(struct job *j, PGresult *res, int upgrade)
{
	const struct config_db	*cf = j->db->cf;
	const char		*code, *msg;
	char			*ht;

	if (PQresultStatus(res) == PGRES_COMMAND_OK) {
		job_rows(j, res);
		return;
	}
	code = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	if (code == NULL || strcmp(code, "42501") != 0) {
		job_ok(j, res);
		return;
	}
	ht = migrate_qualify(cf->history_schema, cf->history_table);
	if (upgrade)
		job_fail(j, MIGD_ERR_SQL, "sql_error", migrate_pg_error(res),
		    "the history table %s lacks the columns attempt and lint "
		    "that this migd writes, and its role may not add them: %s "
		    "(SQLSTATE 42501); as the table's owner, run: ALTER TABLE "
		    "%s ADD COLUMN IF NOT EXISTS attempt integer, ADD COLUMN IF "
		    "NOT EXISTS lint jsonb", ht, msg ? msg : "permission denied",
		    ht);
	else if (!j->vschema || !j->hschema)
		/* The DDL begins with CREATE SCHEMA: a database grant. */
		job_fail(j, MIGD_ERR_SQL, "sql_error", migrate_pg_error(res),
		    "migd's role may not create the schema %s of its version "
		    "and history tables: %s (SQLSTATE 42501); grant it CREATE "
		    "on the database, or create the schema as its owner and "
		    "grant migd's role CREATE on it (docs/migrations.md, "
		    "'State in the database')", !j->vschema ?
		    cf->version_schema : cf->history_schema, msg ? msg :
		    "permission denied");
	else
		job_fail(j, MIGD_ERR_SQL, "sql_error", migrate_pg_error(res),
		    "migd's role may not create its version and history "
		    "tables: %s (SQLSTATE 42501); grant it CREATE on their "
		    "schema, or create them as their owner (docs/migrations.md, "
		    "'State in the database')", msg ? msg :
		    "permission denied");
	free(ht);
}

/* After creating migd's tables. */
static void
job_tables_created(struct job *j, PGresult *res)
{
	job_ddl_done(j, res, 0);
}

/* After adding an older history table's columns. */
static void
job_history_upgraded(struct job *j, PGresult *res)
{
	job_ddl_done(j, res, 1);
}

/*
 * Reads the version rows and the history's summary in one round trip; the
 * summary is cached, keyed by the history's newest id: read-only answers
 * first ask only for that key.
 */
static void
job_rows(struct job *j, PGresult *res)
{
	char	*sql;

	(void)res;
	if (!j->st.has_version && !j->st.has_history) {
		j->st.rows = xcalloc(1, sizeof *j->st.rows);
		job_dispatch(j);
		return;
	}
	/* Only a history that exists has a newest id to compare. */
	j->cheap = !j->mutating && !j->full && j->e->hist_key != NULL &&
	    j->st.has_history;
	sql = job_state_sql(j->db->cf, j->st.has_version, j->st.has_history,
	    j->cheap);
	job_query(j, sql, 0, NULL, job_state_done);
	free(sql);
}

/* The query of the version rows and, per revision, the checksum it was
 * applied with and whether it is dirty; cheap: only the history's newest id
 * (an index gives it), for a summary already cached. */
static char *
job_state_sql(const struct config_db *cf, int version, int history, int cheap)
{
	char	*vt, *ht, *sql, *rows, *hist;

	vt = migrate_qualify(cf->version_schema, cf->version_table);
	ht = migrate_qualify(cf->history_schema, cf->history_table);
	rows = xprintf("SELECT 'r'::text, version_num::text, NULL::text, "
	    "NULL::boolean, NULL::boolean, NULL::boolean FROM %s", vt);
	if (cheap)
		hist = xprintf("SELECT 'm'::text, coalesce(max(id), 0)::text, "
		    "NULL::text, NULL::boolean, NULL::boolean, NULL::boolean "
		    "FROM %s", ht);
	else
		/* Per revision: the checksum accepted last, dirty, whether
		 * migd recorded it applied (adopt says so too), and whether
		 * it applied it since the newest stamp, whose rows (one per
		 * revision it named) share their started_at (graph_skipped). */
		hist = xprintf("SELECT 'h'::text, revision::text, "
		    "(array_agg(checksum ORDER BY id DESC) FILTER (WHERE success "
		    "AND direction IN ('up', 'stamp', 'resolve', 'accept', "
		    "'adopt') AND checksum IS NOT NULL))[1], (array_agg(dirty "
		    "ORDER BY id DESC))[1], coalesce(bool_or(success AND "
		    "(direction IN ('up', 'stamp', 'adopt') OR (direction = "
		    "'resolve' AND error = 'resolved as applied'))), false), "
		    "coalesce(bool_or(success AND direction IN ('up', 'stamp') "
		    "AND id >= (SELECT coalesce(min(s.id), 0) FROM %s s WHERE "
		    "s.success AND s.direction = 'stamp' AND s.started_at = "
		    "(SELECT t.started_at FROM %s t WHERE t.success AND "
		    "t.direction = 'stamp' ORDER BY t.id DESC LIMIT 1))), "
		    "false) FROM %s GROUP BY revision UNION ALL SELECT "
		    "'m'::text, coalesce(max(id), 0)::text, NULL::text, "
		    "NULL::boolean, NULL::boolean, NULL::boolean FROM %s", ht,
		    ht, ht, ht);
	sql = xprintf("%s%s%s ORDER BY 1, 2", version ? rows : "",
	    version && history ? " UNION ALL " : "", history ? hist : "");
	free(rows);
	free(hist);
	free(vt);
	free(ht);
	return (sql);
}

/* Keeps a full summary of the history (st's revisions), keyed by the
 * history's newest id, for the cheap reads after it. */
static void
job_keep_summary(struct engine *e, const char *key, const struct dbstate *st)
{
	if (key == NULL)
		return;
	free(e->hist_key);
	e->hist_key = xstrdup(key);
	dbstate_clear(&e->hist_cache);
	dbstate_copy_revs(&e->hist_cache, st);
}

/* Rows and history came back together: split them, or recheck the tables. */
static void
job_state_done(struct job *j, PGresult *res)
{
	const char	*code = PQresultErrorField(res, PG_DIAG_SQLSTATE), *key;
	int		 version = j->st.has_version;

	if (code != NULL && strcmp(code, "42P01") == 0 && !j->rechecked) {
		/* A table went away since we last looked: look again. */
		j->e->tables_known = 0;
		j->rechecked = 1;
		job_tables(j, NULL);
		return;
	}
	if (!job_ok(j, res))
		return;
	key = job_parse_state(res, &j->st);
	if (j->cheap) {
		if (key == NULL || j->e->hist_key == NULL ||
		    strcmp(key, j->e->hist_key) != 0) {
			/* The history moved on: read its summary after all. */
			dbstate_clear(&j->st);
			j->st.has_version = version;	/* as job_tables saw */
			j->st.has_history = 1;
			j->cheap = 0;
			j->full = 1;
			job_rows(j, NULL);
			return;
		}
		/* Unchanged since the last summary: reuse it. */
		free(j->st.revs);
		dbstate_copy_revs(&j->st, &j->e->hist_cache);
	} else {
		dbstate_sort(&j->st);
		job_keep_summary(j->e, key, &j->st);
	}
	dbstate_sort(&j->st);
	if (j->st.has_version && j->st.has_history)
		j->e->tables_known = 1;
	job_dispatch(j);
}

/* The rows job_state_sql asked for, into st (empty); returns the history's
 * newest id (in res), or NULL. */
static const char *
job_parse_state(PGresult *res, struct dbstate *st)
{
	const char	*key = NULL;
	size_t		 nr = 0, nh = 0;
	int		 i, n;

	n = PQntuples(res);
	st->rows = xcalloc((size_t)n + 1, sizeof *st->rows);
	st->revs = xcalloc((size_t)n + 1, sizeof *st->revs);
	for (i = 0; i < n; i++) {
		switch (PQgetvalue(res, i, 0)[0]) {
		case 'r':
			st->rows[nr++] = xstrdup(PQgetvalue(res, i, 1));
			continue;
		case 'm':
			key = PQgetvalue(res, i, 1);
			continue;
		}
		st->revs[nh].revision = xstrdup(PQgetvalue(res, i, 1));
		if (!PQgetisnull(res, i, 2))
			st->revs[nh].checksum = xstrdup(PQgetvalue(res, i, 2));
		st->revs[nh].dirty = PQgetvalue(res, i, 3)[0] == 't';
		st->revs[nh].known = PQgetvalue(res, i, 4)[0] == 't';
		st->revs[nh].ran = PQgetvalue(res, i, 5)[0] == 't';
		nh++;
	}
	st->n_rows = nr;
	st->n_revs = nh;
	return (key);
}

/* After a run, before its connection goes back: the state it left, kept
 * for status (job_refreshed). */
void
job_state_refresh(struct job *j)
{
	char	*sql;

	j->refresh = 2;
	sql = job_state_sql(j->db->cf, 1, 1, 0);
	job_query(j, sql, 0, NULL, job_refreshed);
	free(sql);
}

/* The state a run left, kept for status (which says when it was read). */
static void
job_refreshed(struct job *j, PGresult *res)
{
	struct dbstate	 st;
	const char	*key;

	j->refresh = 0;
	memset(&st, 0, sizeof st);
	if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
		j->e->have_last_db = 0;		/* status reads it again */
		job_end(j, NULL);
		return;
	}
	st.has_version = st.has_history = 1;
	key = job_parse_state(res, &st);
	dbstate_sort(&st);
	job_keep_summary(j->e, key, &st);
	migrate_keep_state(j->e, &st);
	dbstate_clear(&st);
	job_end(j, NULL);
}
