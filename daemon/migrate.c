/*
 * The migration engine's entry points and its files.  A job runs one request
 * on one pool connection as a chain of asynchronous queries (job.c): read the
 * database's state, load and check the migration files (here), plan
 * (plan.c), and for mutating requests take the advisory lock, ensure the
 * schemas and run each step in its own transaction with its version-table
 * and history rows (run.c).  Mutating jobs run one at a time, in the order
 * they came; read-only jobs (report.c) run beside them on other connections.
 */
#include <sys/queue.h>

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "config.h"
#include "layout.h"
#include "migd.h"
#include "engine.h"
#include "loader.h"


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
migrate_lock_key(const struct config_db *cf)
{
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


/* The connected server's version, or 0 before the first connection (or
 * with every connection closed when idle): SQL the parser refuses is judged
 * against it. */
int
migrate_server_version(struct engine *e)
{
	PGconn	*pg = pool_any_connection(e->db->pool);

	return (pg != NULL ? PQserverVersion(pg) : 0);
}

/* Whether the database's server, when known, wants SQL the parser refuses
 * judged an error (it is the parser's version or older); -1: unknown. */
static int
migrate_strict(struct engine *e)
{
	int	 v = migrate_server_version(e);

	return (v == 0 ? -1 : !revset_newer_sql(v));
}

/*
 * Makes the engine read the set its settings and server call for: another
 * one after a reload changed how its files are read, or once its server
 * says whether SQL the parser refuses is an error there.  Its waiters go
 * with it; the set it leaves is freed when nobody else reads it.
 */
static void
migrate_files_follow(struct engine *e)
{
	struct files	*f = e->files, *nf;
	int		 strict = migrate_strict(e);

	if (strict == -1)
		strict = f != NULL ? f->strict : 0;
	if (f != NULL && files_is(f, e->db->cf, strict))
		return;
	nf = files_get(e->db->files, e->db->cf, strict, e->db->name,
	    e->db->tag);
	e->files = nf;
	if (f != NULL) {
		files_move(f, nf, e);
		files_put(f, e->db->name);
	}
}

/* Whether the files may have changed since the last load. */
int
migrate_files_changed(struct engine *e)
{
	migrate_files_follow(e);
	return (files_changed(e->files));
}

/* Status waits a moment for a load of known changes (files_brief). */
static void
migrate_status_waited(void *arg)
{
	struct job	*j = arg;

	migrate_status_reply(j, 0);
	job_end(j, NULL);
}

/* Whether status j waits for the files (answered when they are read, or
 * after MIGRATE_STATUS_LOAD_MS). */
int
migrate_status_wait(struct job *j)
{
	migrate_files_follow(j->e);
	return (files_brief(j->e->files, j->e, migrate_status_waited, j));
}

/* Status answers from the files as loaded; a change starts a load that it
 * does not wait for. */
void
migrate_files_kick(struct engine *e)
{
	migrate_files_follow(e);
	files_kick(e->files);
}

/* Whether a load is running or none has finished yet. */
int
migrate_files_loading(struct engine *e)
{
	return (files_loading(e->files));
}

/* Whether the files as loaded can serve a request now (files_ready). */
int
migrate_files_ready(struct engine *e, int check)
{
	migrate_files_follow(e);
	return (files_ready(e->files, check));
}

/* Calls fn(arg) on the loop once the files are read (files_wait). */
void
migrate_files_wait(struct engine *e, int check, void (*fn)(void *),
    void *arg)
{
	migrate_files_follow(e);
	files_wait(e->files, e, check, fn, arg);
}

/* Forgets what waits for the files on behalf of arg, which goes away. */
void
migrate_files_forget(struct engine *e, void *arg)
{
	files_forget(e->files, arg);
}

/* reload answers once the files are read again. */
static void
migrate_reload_answer(void *arg)
{
	struct request	*req = arg;
	struct files	*f = req->db->engine->files;
	char		*cause;

	if (f->errors != NULL) {
		cause = migrate_errors_message(f->errors);
		cmd_error(req, MIGD_ERR_MIGRATIONS, "invalid_migrations",
		    json_pack("{s:O}", "errors", f->errors), "%s", cause);
		free(cause);
		return;
	}
	cmd_reply(req, json_pack("{s:o}", "migrations",
	    migrate_files_status(req->db)));
}

/* Re-reads the files for SIGHUP (req NULL) and reload (answered when they
 * are read): every file whose stat changed, off the loop; the outcome is
 * logged.  Every database reading the same set sees it at once. */
void
migrate_reload(struct database *db, struct request *req)
{
	struct engine	*e = db->engine;

	migrate_files_follow(e);
	files_reload(e->files);
	if (req != NULL)
		files_wait(e->files, e, 0, migrate_reload_answer, req);
}

/* A reload gave the database new settings: it reads the set they call for
 * (the same one, another database's, or a new one), not yet read again. */
void
migrate_reconfigure(struct database *db)
{
	migrate_files_follow(db->engine);
}

/* Keeps what the database said (a status, or the end of a run), with when,
 * for answers without a connection. */
void
migrate_keep_state(struct engine *e, const struct dbstate *st)
{
	dbstate_clear(&e->last_db);
	dbstate_copy(&e->last_db, st);
	e->have_last_db = 1;
	e->last_db_at = migrate_wall();
}

/* Forgets what was read of the database: the next status reads it all. */
void
migrate_forget_state(struct database *db)
{
	struct engine	*e = db->engine;

	e->tables_known = 0;
	e->have_last_db = 0;
	free(e->hist_key);
	e->hist_key = NULL;
	dbstate_clear(&e->hist_cache);
}

/* The set the database reads, for a reload that reads every set once. */
struct files *
migrate_files(struct database *db)
{
	return (db->engine->files);
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
migrate_files_status(struct database *db)
{
	struct files	*f = db->engine->files;
	json_t	*o, *heads;
	size_t	*idx, n, i;

	o = json_pack("{s:s, s:b}", "directory", f->directory,
	    "loading", files_loading(f));
	if (!f->loaded)
		return (o);	/* nothing read yet */
	if (f->errors != NULL) {
		json_object_set(o, "errors", f->errors);
		json_object_set_new(o, "valid", json_false());
	} else
		json_object_set_new(o, "valid", json_true());
	if (f->rs != NULL) {
		json_object_set_new(o, "stale", json_boolean(f->errors !=
		    NULL));
		json_object_set_new(o, "revisions",
		    json_integer((json_int_t)revset_count(f->rs)));
		if (f->rs->set.format > LAYOUT_AUTO)
			json_object_set_new(o, "format", json_string(
			    layout_name(f->rs->set.format)));
		heads = json_array();
		n = graph_heads(f->rs->graph, &idx);
		for (i = 0; i < n; i++)
			json_array_append_new(heads, json_string(graph_id(
			    f->rs->graph, idx[i])));
		free(idx);
		json_object_set_new(o, "heads", heads);
	}
	return (o);
}


/* Takes a request: read-only ones run now, mutating ones queue. */
void
migrate_start(struct request *req, enum migrate_op op)
{
	struct database	*db = req->db;
	struct engine	*e = db->engine;
	struct job	*j;
	json_t		*p = req->rpc.params;
	const char	*s;
	char		*cause;
	size_t		 pos = 0;

	if (op == MIGRATE_STATUS && e->status_leader != NULL) {
		/* A status still waiting for a connection answers this one too:
		 * it has read nothing yet, so its answer is as fresh. */
		j = e->status_leader;
		j->joined = xreallocarray(j->joined, j->n_joined + 1,
		    sizeof *j->joined);
		j->joined[j->n_joined++] = req;
		return;
	}
	j = xcalloc(1, sizeof *j);
	TAILQ_INSERT_TAIL(&e->all, j, all);
	j->db = db;
	j->e = e;
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
	if (op == MIGRATE_LINT) {
		if (planlint_request(j, p, &cause) != 0) {
			job_free(j);
			cmd_error(req, MIGD_ERR_INVALID_PARAMS,
			    "invalid_params", NULL, "%s", cause);
			free(cause);
			return;
		}
	} else if (json_is_array(json_object_get(p, "revisions")))
		j->accept = json_incref(json_object_get(p, "revisions"));
	if (op == MIGRATE_ADOPT && (s = json_string_value(json_object_get(p,
	    "from"))) != NULL) {
		enum layout_format	 fmt;

		if (layout_parse_name(s, &fmt) != 0 || fmt == LAYOUT_MIGD) {
			job_free(j);
			cmd_error(req, MIGD_ERR_INVALID_PARAMS,
			    "invalid_params", NULL, "adopt --from '%.40s': "
			    "unknown tool; one of auto, dbmate, golang-migrate, "
			    "sqlx, diesel, goose, flyway", s);
			return;
		}
		j->adopt_from = xstrdup(s);
		j->adopt_fmt = (int)fmt;
	}
	if (op == MIGRATE_ADOPT && json_object_get(p, "table") != NULL) {
		s = json_string_value(json_object_get(p, "table"));
		if (s == NULL || *s == '\0' || strlen(s) > 300 ||
		    j->adopt_from == NULL || j->adopt_fmt == LAYOUT_AUTO) {
			job_free(j);
			cmd_error(req, MIGD_ERR_INVALID_PARAMS,
			    "invalid_params", NULL, "%s", s == NULL || *s ==
			    '\0' || strlen(s) > 300 ? "adopt --table: a table "
			    "name, TABLE or SCHEMA.TABLE" : "adopt --table "
			    "names the state table of the tool --from names: "
			    "give --from TOOL (not auto) with it");
			return;
		}
		j->adopt_table = xstrdup(s);
	}
	j->dry_run = json_is_true(json_object_get(p, "dry_run"));
	j->allow_drift = json_is_true(json_object_get(p, "allow_drift"));
	j->apply_skipped = json_is_true(json_object_get(p, "apply_skipped"));
	/* The configured default unless the request says. */
	j->atomic = json_object_get(p, "atomic") != NULL ?
	    json_is_true(json_object_get(p, "atomic")) : e->db->cf->atomic;
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
			e->status_leader = j;
		job_read_state(j);
		return;
	}
	if (e->draining) {
		job_free(j);
		cmd_error(req, MIGD_ERR_SHUTTING_DOWN, "shutting_down", NULL,
		    "migd is shutting down");
		return;
	}
	TAILQ_INSERT_TAIL(&e->queue, j, entry);
	if (TAILQ_FIRST(&e->queue) == j) {
		job_read_state(j);
		return;
	}
	TAILQ_FOREACH(j, &e->queue, entry)
		pos++;
	j = TAILQ_LAST(&e->queue, jobs);
	run_notify(j, "queued", json_pack("{s:I}", "position",
	    (json_int_t)pos - 1));
}

/*
 * SIGTERM: queued runs are refused, so is whatever still waits for a
 * connection; a run holding its lock finishes its current step.
 */
void
migrate_shutdown(struct database *db)
{
	struct engine	*e = db->engine;
	struct job	*j, *first = TAILQ_FIRST(&e->queue), *next;

	e->draining = 1;
	if (first != NULL) {
		for (j = TAILQ_NEXT(first, entry); j != NULL; j = next) {
			next = TAILQ_NEXT(j, entry);
			TAILQ_REMOVE(&e->queue, j, entry);
			j->mutating = 0;
			job_set_error(j, MIGD_ERR_SHUTTING_DOWN,
			    "shutting_down", NULL, "migd is shutting down: "
			    "this request did not start");
			job_reply(j);
		}
	}
	for (j = TAILQ_FIRST(&e->all); j != NULL; j = next) {
		next = TAILQ_NEXT(j, all);
		if (j->waiter != NULL && !j->recording)
			job_fail(j, MIGD_ERR_SHUTTING_DOWN, "shutting_down",
			    NULL, "migd is shutting down: no connection to "
			    "PostgreSQL yet; nothing ran");
		else if (run_retry_waiting(j))
			run_retry_stop(j);	/* between lock retries */
	}
}

int
migrate_busy(struct database *db)
{
	struct engine	*e = db->engine;

	return (!TAILQ_EMPTY(&e->queue));
}

/* A new database's engine: nothing loaded yet; the first load of its set
 * starts unless another database already reads it. */
void
migrate_engine_init(struct engine *e, struct database *db)
{
	e->db = db;
	TAILQ_INIT(&e->queue);
	TAILQ_INIT(&e->all);
	if (gethostname(e->host, sizeof e->host) != 0)
		strncpy(e->host, "unknown", sizeof e->host - 1);
	e->host[sizeof e->host - 1] = '\0';
	/* On the loader's thread: the socket answers while a big file loads. */
	migrate_files_follow(e);
}

/* Whether nothing of the engine is under way: no job, queued or live. */
int
migrate_idle(struct database *db)
{
	return (TAILQ_EMPTY(&db->engine->all) &&
	    TAILQ_EMPTY(&db->engine->queue));
}

/* Frees what an engine holds (its jobs have ended). */
void
migrate_engine_clear(struct engine *e)
{
	files_put(e->files, e->db->name);
	e->files = NULL;
	dbstate_clear(&e->last_db);
	dbstate_clear(&e->hist_cache);
	free(e->hist_key);
}
