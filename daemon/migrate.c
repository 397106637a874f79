/*
 * The migration engine's entry points and its files.  A job runs one request
 * on one pool connection as a chain of asynchronous queries (job.c): read the
 * database's state, load and check the migration files (here), plan
 * (plan.c), and for mutating requests take the advisory lock, ensure the
 * schemas and run each step in its own transaction with its version-table
 * and history rows (run.c).  Mutating jobs run one at a time, in the order
 * they came; read-only jobs (report.c) run beside them on other connections.
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
#include "engine.h"

static void	 migrate_inotify_read(evutil_socket_t fd, short events,
	    void *arg);
static void	 migrate_watch(struct revset *rs);

struct engine migrate;

/* Wall-clock seconds, for the history's timestamps. */
double
migrate_wall(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ((double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
}

/* A quoted, qualified name such as "public"."alembic_version". */
char *
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
long long
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

void
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

/* A copy of the history summary only (dst's revs are replaced). */
void
dbstate_copy_revs(struct dbstate *dst, const struct dbstate *src)
{
	size_t	 i;

	dst->revs = xcalloc(src->n_revs + 1, sizeof *dst->revs);
	for (i = 0; i < src->n_revs; i++) {
		dst->revs[i].revision = xstrdup(src->revs[i].revision);
		dst->revs[i].checksum = src->revs[i].checksum ?
		    xstrdup(src->revs[i].checksum) : NULL;
		dst->revs[i].dirty = src->revs[i].dirty;
		dst->revs[i].known = src->revs[i].known;
		dst->revs[i].ran = src->revs[i].ran;
	}
	dst->n_revs = src->n_revs;
}

/* A deep copy of what the database said. */
void
dbstate_copy(struct dbstate *dst, const struct dbstate *src)
{
	size_t	 i;

	memset(dst, 0, sizeof *dst);
	dst->has_version = src->has_version;
	dst->has_history = src->has_history;
	dst->rows = xcalloc(src->n_rows + 1, sizeof *dst->rows);
	for (i = 0; i < src->n_rows; i++)
		dst->rows[i] = xstrdup(src->rows[i]);
	dst->n_rows = src->n_rows;
	dbstate_copy_revs(dst, src);
}

static int
dbstate_cmp(const void *a, const void *b)
{
	return (strcmp(((const struct dbrev *)a)->revision,
	    ((const struct dbrev *)b)->revision));
}

/* Sorts the history summary once, so that lookups are logarithmic. */
void
dbstate_sort(struct dbstate *st)
{
	if (st->n_revs > 1)
		qsort(st->revs, st->n_revs, sizeof *st->revs, dbstate_cmp);
}

/* The history summary of one revision, or NULL (after dbstate_sort). */
const struct dbrev *
dbstate_rev(const struct dbstate *st, const char *revision)
{
	struct dbrev	 key;

	if (st->n_revs == 0)
		return (NULL);
	key.revision = (char *)revision;
	return (bsearch(&key, st->revs, st->n_revs, sizeof *st->revs,
	    dbstate_cmp));
}

/* Undoes the session settings of a bare step ("; RESET ..."). */
const char *
migrate_reset_sql(struct job *j)
{
	if (PQserverVersion(pool_conn_pg(j->pc)) >= 140000)
		return ("; RESET lock_timeout; RESET statement_timeout; "
		    "RESET client_connection_check_interval");
	return ("; RESET lock_timeout; RESET statement_timeout");
}


/* A change in the migrations tree: status will read the files again. */
static void
migrate_inotify_read(evutil_socket_t fd, short events, void *arg)
{
	char	 buf[4096];

	(void)events;
	(void)arg;
	while (read(fd, buf, sizeof buf) > 0)
		migrate.stale = 1;
}

/* The connected server's version, or 0 before the first connection: SQL the
 * parser refuses is judged against it. */
int
migrate_server_version(void)
{
	PGconn	*pg = pool_any_connection(migd.pool);

	return (pg != NULL ? PQserverVersion(pg) : 0);
}

/* Whether the files may have changed, or the server they were judged
 * against: drains pending inotify events first, so an edit made just before
 * a request is never missed. */
int
migrate_files_changed(void)
{
	int	 v = migrate_server_version();

	if (migrate.inotify != -1)
		migrate_inotify_read(migrate.inotify, EV_READ, NULL);
	return (migrate.stale || migrate.errors != NULL || migrate.rs ==
	    NULL || (v != 0 && migrate.rs->server_version != v));
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

/* Logs what the files' load did not read, and why: once, not at every
 * status that reloads (without inotify every one does). */
static void
migrate_say_skipped(struct errlist *skipped)
{
	char	*all;
	size_t	 i;

	all = errlist_join(skipped, "\n");
	if (migrate.skipped_said == NULL || strcmp(all,
	    migrate.skipped_said) != 0) {
		for (i = 0; i < skipped->n; i++)
			log_warnx("%s", skipped->v[i]);
	}
	free(migrate.skipped_said);
	migrate.skipped_said = all;
	errlist_clear(skipped);
}

/* Loads the files afresh; the last valid set stays for status. */
struct revset *
migrate_load(json_t **errors)
{
	const struct config	*cf = migd.config;
	struct errlist		 errs = { NULL, 0 };
	struct errlist		 skipped = { NULL, 0 };
	struct revset_ctx	 ctx = { cf->schemas, cf->n_schemas,
				    cf->version_schema, cf->history_schema,
				    migrate_server_version(), &skipped };
	struct revset		*rs;
	size_t			 i;
	int			 r;

	*errors = NULL;
	r = revset_load(cf->directory, &ctx, &rs, &errs);
	migrate_say_skipped(&skipped);
	if (r != 0) {
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

	/* An explicit reload says again what it skips. */
	free(migrate.skipped_said);
	migrate.skipped_said = NULL;
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

/* What follows the first of n problems in a one-line message (to free):
 * how many more there are; data has them all. */
char *
migrate_more(size_t n)
{
	if (n <= 1)
		return (xstrdup(""));
	return (xprintf(" (and %zu more problem%s)", n - 1, n == 2 ? "" :
	    "s"));
}

/* The one-line message of invalid files: the first problem, and how many
 * more there are (data.errors has them all). */
char *
migrate_errors_message(json_t *errors)
{
	char	*more, *msg;

	more = migrate_more(json_array_size(errors));
	msg = xprintf("%s%s", json_string_value(json_array_get(errors, 0)),
	    more);
	free(more);
	return (msg);
}

/* The files' part of status: count, heads, problems.  With problems, the
 * count and heads are the last valid set's, and say so (stale). */
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
		json_object_set_new(o, "stale", json_boolean(migrate.errors !=
		    NULL));
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
	TAILQ_INSERT_TAIL(&migrate.all, j, all);
	j->req = req;
	j->op = op;
	j->limit = 50;
	if ((s = json_string_value(json_object_get(p, "target"))) != NULL ||
	    (s = json_string_value(json_object_get(p, "revision"))) != NULL)
		j->target = xstrdup(s);
	else if (op == MIGRATE_UPGRADE || op == MIGRATE_PLAN)
		j->target = xstrdup("head");
	if (op == MIGRATE_STAMP) {
		stamp_targets(j, json_object_get(p, "revision"));
		j->purge = json_is_true(json_object_get(p, "purge"));
	}
	if ((s = json_string_value(json_object_get(p, "state"))) != NULL)
		j->resolve_as = xstrdup(s);
	if (json_is_array(json_object_get(p, "revisions")))
		j->accept = json_incref(json_object_get(p, "revisions"));
	j->dry_run = json_is_true(json_object_get(p, "dry_run"));
	j->allow_drift = json_is_true(json_object_get(p, "allow_drift"));
	j->apply_skipped = json_is_true(json_object_get(p, "apply_skipped"));
	/* The configured default unless the request says. */
	j->atomic = json_object_get(p, "atomic") != NULL ?
	    json_is_true(json_object_get(p, "atomic")) : migd.config->atomic;
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
	    op == MIGRATE_STAMP || op == MIGRATE_RESOLVE ||
	    op == MIGRATE_ACCEPT || op == MIGRATE_ADOPT;
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

/*
 * SIGTERM: queued runs are refused, so is whatever still waits for a
 * connection; a run holding its lock finishes its current step.
 */
void
migrate_shutdown(void)
{
	struct job	*j, *first = TAILQ_FIRST(&migrate.queue), *next;

	if (first != NULL) {
		for (j = TAILQ_NEXT(first, entry); j != NULL; j = next) {
			next = TAILQ_NEXT(j, entry);
			TAILQ_REMOVE(&migrate.queue, j, entry);
			j->mutating = 0;
			job_set_error(j, MIGD_ERR_SHUTTING_DOWN,
			    "shutting_down", NULL, "migd is shutting down: "
			    "this request did not start");
			job_reply(j);
		}
	}
	for (j = TAILQ_FIRST(&migrate.all); j != NULL; j = next) {
		next = TAILQ_NEXT(j, all);
		if (j->waiter != NULL && !j->recording)
			job_fail(j, MIGD_ERR_SHUTTING_DOWN, "shutting_down",
			    NULL, "migd is shutting down: no connection to "
			    "PostgreSQL yet; nothing ran");
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
	TAILQ_INIT(&migrate.all);
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
	dbstate_clear(&migrate.last_db);
	dbstate_clear(&migrate.hist_cache);
	free(migrate.hist_key);
	free(migrate.skipped_said);
	migrate.skipped_said = NULL;
}
