/*
 * The read-only answers of the engine: history, schemas, heads, current and
 * verify.
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

static void	 job_history_rows(struct job *j, PGresult *res);
static void	 job_history(struct job *j);
static int	 job_history_resolve(struct job *j);
static void	 job_schemas_rows(struct job *j, PGresult *res);
static void	 job_schemas(struct job *j);
static void	 job_heads(struct job *j);
static void	 job_assess_reply(struct job *j);
static void	 job_stale_files(struct job *j, json_t *o);

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
			else if (strcmp(name, "lint") == 0)
				json_object_set_new(row, name, json_loads(v, 0,
				    NULL));
			else if (strcmp(name, "id") == 0 ||
			    strcmp(name, "requester_uid") == 0 ||
			    strcmp(name, "requester_pid") == 0 ||
			    strcmp(name, "attempt") == 0)
				json_object_set_new(row, name, json_integer(
				    atoll(v)));
			else if (strcmp(name, "duration_ms") == 0)
				json_object_set_new(row, name, rpc_duration(
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
	const struct config_db	*cf = j->db->cf;
	char			*ht, *sql, limit[32];
	const char		*params[2];

	if (j->target != NULL && *j->target != '\0' &&
	    job_history_resolve(j) != 0)
		return;
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
	    "',') AS schemas_created, (pg_catalog.to_jsonb(h) ->> "
	    "'attempt')::int AS attempt, (pg_catalog.to_jsonb(h) -> "
	    "'lint')::text AS lint FROM %s h WHERE $2 = '' OR revision = $2 "
	    "ORDER BY id DESC LIMIT $1", ht);
	snprintf(limit, sizeof limit, "%ld", j->limit);
	params[0] = limit;
	params[1] = j->target ? j->target : "";
	job_query(j, sql, 2, params, job_history_rows);
	free(ht);
	free(sql);
}

#define REPORT_CANDIDATES	10	/* ids an ambiguous prefix names */

/* Adds a candidate of an ambiguous prefix; the list stays short. */
static void
job_history_candidate(json_t *list, size_t *n, const char *id)
{
	if (json_array_size(list) < REPORT_CANDIDATES)
		json_array_append_new(list, json_string(id));
	(*n)++;
}

/*
 * history REV: an exact id of a file or of the history (a deleted file's
 * revision is still there), else a unique prefix of one.  An id that names
 * nothing, or a prefix of several, is an error rather than an empty history.
 * Returns 0 with j->target the full id, or -1 having failed the job.
 */
static int
job_history_resolve(struct job *j)
{
	const struct graph	*g = j->rs != NULL ? j->rs->graph : NULL;
	json_t			*list;
	const char		*id = NULL, *rev;
	char			*ids, *t;
	size_t			 len = strlen(j->target), i, n = 0;

	if ((g != NULL && graph_find(g, j->target) >= 0) ||
	    dbstate_rev(&j->st, j->target) != NULL)
		return (0);
	list = json_array();
	for (i = 0; g != NULL && i < graph_count(g); i++) {
		if (strncmp(graph_id(g, i), j->target, len) == 0) {
			id = graph_id(g, i);
			job_history_candidate(list, &n, id);
		}
	}
	for (i = 0; i < j->st.n_revs; i++) {
		rev = j->st.revs[i].revision;
		if (strncmp(rev, j->target, len) == 0 && (g == NULL ||
		    graph_find(g, rev) < 0)) {
			id = rev;
			job_history_candidate(list, &n, id);
		}
	}
	if (n == 1) {
		json_decref(list);
		free(j->target);
		j->target = xstrdup(id);
		return (0);
	}
	if (n == 0) {
		json_decref(list);
		job_fail(j, MIGD_ERR_MIGRATIONS, "unknown_revision", json_pack(
		    "{s:s}", "revision", j->target), "unknown revision '%s': "
		    "no migration file and no history row has it, nor an id "
		    "starting with it", j->target);
		return (-1);
	}
	ids = xstrdup("");
	for (i = 0; i < json_array_size(list); i++) {
		t = xprintf("%s%s%s", ids, i ? ", " : "", json_string_value(
		    json_array_get(list, i)));
		free(ids);
		ids = t;
	}
	if (n > json_array_size(list)) {
		t = xprintf("%s and %zu more", ids, n - json_array_size(list));
		free(ids);
		ids = t;
	}
	job_fail(j, MIGD_ERR_MIGRATIONS, "ambiguous_revision", json_pack(
	    "{s:s, s:o, s:I}", "revision", j->target, "candidates", list,
	    "matches", (json_int_t)n), "ambiguous revision '%s': %s",
	    j->target, ids);
	free(ids);
	return (-1);
}

static void
job_schemas_rows(struct job *j, PGresult *res)
{
	const struct config_db	*cf = j->db->cf;
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
	job_stale_files(j, j->result);
	job_end(j, NULL);
}

/* With invalid files, current and heads answer from the last valid set:
 * they say so, and why. */
static void
job_stale_files(struct job *j, json_t *o)
{
	if (j->e->files->errors == NULL)
		return;
	json_object_set_new(o, "stale", json_true());
	json_object_set(o, "errors", j->e->files->errors);
}

/* The state against the files, as current and verify report it. */
static void
job_assess_reply(struct job *j)
{
	json_t	*o = json_object();

	migrate_assess(j->rs, j->e->files->errors != NULL, &j->st, o);
	job_stale_files(j, o);
	if (j->op == MIGRATE_VERIFY)
		json_object_set_new(o, "ok", json_boolean(strcmp(
		    json_string_value(json_object_get(o, "state")),
		    "up_to_date") == 0 || strcmp(json_string_value(
		    json_object_get(o, "state")), "pending") == 0));
	j->result = o;
	job_end(j, NULL);
}

/* The files a request waited for are loaded. */
static void
job_files_loaded(void *arg)
{
	struct job	*j = arg;

	j->files_fresh = 1;
	job_dispatch(j);
}

/* The state is read: load the files and do what the request asked. */
void
job_dispatch(struct job *j)
{
	char	*msg;

	if (j->op == MIGRATE_STATUS) {
		/* A change is loaded off the loop; status waits a moment
		 * for it, then answers from the files as loaded, with
		 * migrations.loading. */
		if (migrate_status_wait(j))
			return;
		migrate_status_reply(j, 0);
		job_end(j, NULL);
		return;
	}
	/* The files a lint request sent are all it reads. */
	if (j->op == MIGRATE_LINT && j->lint_texts != NULL) {
		job_lint(j);
		return;
	}
	/* The loaded set serves while inotify saw nothing; a run also has
	 * every file and directory stat'ed, which inotify cannot vouch for;
	 * either waits, off the loop, for a load when needed. */
	if ((j->op != MIGRATE_HISTORY || j->target != NULL) &&
	    !j->files_fresh && !migrate_files_ready(j->e, j->mutating)) {
		migrate_files_wait(j->e, j->mutating, job_files_loaded, j);
		return;
	}
	if (j->op == MIGRATE_HISTORY) {
		/* A revision is looked up in the files too, the last valid
		 * ones when they have problems. */
		if (j->target != NULL && j->e->files->rs != NULL)
			j->rs = revset_ref(j->e->files->rs);
		job_history(j);
		return;
	}
	if (j->e->files->errors == NULL && j->e->files->rs != NULL)
		j->rs = revset_ref(j->e->files->rs);
	else if ((j->op == MIGRATE_HEADS && j->e->files->rs != NULL) || j->op ==
	    MIGRATE_CURRENT) {
		/* current and heads go on from the last valid set (current
		 * even without one), marked stale; nothing is judged. */
		if (j->e->files->rs != NULL)
			j->rs = revset_ref(j->e->files->rs);
	} else {
		msg = j->e->files->errors != NULL ? migrate_errors_message(
		    j->e->files->errors) : xstrdup("the migration files could not "
		    "be loaded");
		job_fail(j, MIGD_ERR_MIGRATIONS, "invalid_migrations",
		    json_pack("{s:o}", "errors", j->e->files->errors != NULL ?
		    json_incref(j->e->files->errors) : json_array()), "%s", msg);
		free(msg);
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
	case MIGRATE_ACCEPT:
		job_accept(j);
		break;
	case MIGRATE_ADOPT:
		job_adopt(j);
		break;
	case MIGRATE_LINT:
		job_lint(j);
		break;
	default:
		job_plan(j);
		break;
	}
}

/* revisions once the files are loaded. */
static void
migrate_revisions_answer(void *arg)
{
	struct request	*req = arg;
	struct files	*f = req->db->engine->files;
	char		*msg;

	if (f->errors != NULL || f->rs == NULL) {
		msg = f->errors != NULL ? migrate_errors_message(
		    f->errors) : xstrdup("the migration files could not "
		    "be loaded");
		cmd_error(req, MIGD_ERR_MIGRATIONS, "invalid_migrations",
		    json_pack("{s:o}", "errors", f->errors != NULL ?
		    json_incref(f->errors) : json_array()), "%s", msg);
		free(msg);
		return;
	}
	cmd_reply(req, revset_revisions_json(f->rs));
}

/* revisions: the graph of the files, newest first; needs no database, so
 * it answers at once, from the loaded set while the files are unchanged. */
void
migrate_revisions(struct request *req)
{
	struct engine	*e = req->db->engine;

	if (!migrate_files_ready(e, 0))
		migrate_files_wait(e, 0, migrate_revisions_answer, req);
	else
		migrate_revisions_answer(req);
}
