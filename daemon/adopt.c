/*
 * adopt: taking over a database another tool (Alembic) migrated.  Every
 * applied revision whose checksum migd has not recorded gets its file's
 * checksum in an `adopt` history row, so that an edit of it is drift from
 * then on, as for a revision migd applied.  No migration runs.
 */
#include <sys/queue.h>

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "config.h"
#include "migd.h"
#include "engine.h"

static void	 adopt_write(struct job *j, PGresult *res);

/* The revisions to adopt, in upgrade order: applied, no checksum yet. */
static size_t
adopt_list(struct job *j, const char *marks, size_t **out, size_t *applied)
{
	const struct dbrev	*dr;
	const size_t		*order;
	size_t			 n, i, v, k = 0;

	n = graph_order(j->rs->graph, &order);
	*out = xreallocarray(NULL, n ? n : 1, sizeof **out);
	*applied = 0;
	for (i = 0; i < n; i++) {
		v = order[i];
		if (!marks[v])
			continue;
		(*applied)++;
		dr = dbstate_rev(&j->st, graph_id(j->rs->graph, v));
		if (dr == NULL || dr->checksum == NULL)
			(*out)[k++] = v;
	}
	return (k);
}

/* adopt: refuses a table it cannot read right, else records checksums. */
void
job_adopt(struct job *j)
{
	struct graph_plan	 plan;
	size_t			*todo, n, applied, i;
	char			*marks, *cause = NULL;
	const char		*params[1];
	char			*ht, *first;
	json_t			*skipped;

	for (i = 0; i < j->st.n_rows; i++) {
		if (graph_find(j->rs->graph, j->st.rows[i]) < 0) {
			job_fail(j, MIGD_ERR_STATE, "ahead", json_pack(
			    "{s:[s]}", "unknown", j->st.rows[i]), "the version "
			    "table names %s, which no migration file defines: "
			    "adopt takes over only what the files describe; "
			    "deploy the newer migration files first (or stamp "
			    "the revisions the database is at)",
			    j->st.rows[i]);
			return;
		}
	}
	memset(&plan, 0, sizeof plan);
	if (graph_plan(j->rs->graph, (const char *const *)j->st.rows,
	    j->st.n_rows, "base", GRAPH_DOWN, &plan, &cause) != 0) {
		job_fail(j, MIGD_ERR_STATE, "plan_error", NULL, "%s; fix the "
		    "version table (migctl stamp) before adopting", cause);
		free(cause);
		return;
	}
	graph_plan_clear(&plan);
	for (i = 0; i < j->st.n_revs; i++) {
		if (j->st.revs[i].dirty) {
			job_fail(j, MIGD_ERR_STATE, "dirty", json_pack("{s:s}",
			    "revision", j->st.revs[i].revision), "revision %s "
			    "is dirty: a migration stopped part-way; check the "
			    "database, run 'migctl resolve %s applied' or "
			    "'unapplied', then adopt", j->st.revs[i].revision,
			    j->st.revs[i].revision);
			return;
		}
	}
	/* A skipped revision never ran: adopting it would record it as
	 * applied and hide that. */
	skipped = migrate_skipped(j->rs, &j->st);
	if (json_array_size(skipped) != 0) {
		first = xstrdup(json_string_value(json_object_get(
		    json_array_get(skipped, 0), "revision")));
		job_fail(j, MIGD_ERR_STATE, "skipped_revisions", json_pack(
		    "{s:o}", "skipped", skipped), "revision %s never ran, but "
		    "the version table is past it (it was inserted below "
		    "applied revisions, e.g. by a rebase): run it with "
		    "'migctl upgrade --apply-skipped', or if its SQL already "
		    "ran by other means, 'migctl resolve %s applied'; then "
		    "adopt", first, first);
		free(first);
		return;
	}
	json_decref(skipped);
	marks = xcalloc(revset_count(j->rs) + 1, 1);
	migrate_applied(j->rs, &j->st, marks);
	n = adopt_list(j, marks, &todo, &applied);
	free(marks);
	free(todo);
	if (n == 0) {
		j->result = json_pack("{s:[], s:I, s:I, s:s}", "adopted",
		    "applied", (json_int_t)applied, "already_verified",
		    (json_int_t)applied, "message", applied == 0 ?
		    "nothing to adopt: no revision is applied" :
		    "nothing to adopt: every applied revision has a recorded "
		    "checksum");
		job_end(j, NULL);
		return;
	}
	/* Rows of direction 'adopt' need a history table that allows them. */
	ht = migrate_qualify(migd.config->history_schema,
	    migd.config->history_table);
	params[0] = ht;
	job_query(j, book_directions_query(), 1, params, adopt_write);
	free(ht);
}

/* One transaction: the history's CHECK if it is older, and a row per
 * revision adopted. */
static void
adopt_write(struct job *j, PGresult *res)
{
	const struct migfile	*mf;
	struct errlist		 stmts = { NULL, 0 };
	json_t			*list;
	size_t			*todo, n, applied, i;
	char			*marks, *sql;
	double			 wall = migrate_wall();

	if (!job_ok(j, res))
		return;
	marks = xcalloc(revset_count(j->rs) + 1, 1);
	migrate_applied(j->rs, &j->st, marks);
	n = adopt_list(j, marks, &todo, &applied);
	free(marks);
	errlist_add(&stmts, "BEGIN");
	book_directions_sql(j, res, &stmts);
	list = json_array();
	for (i = 0; i < n; i++) {
		mf = revset_file(j->rs, todo[i]);
		errlist_take(&stmts, book_history_sql(j, mf->revision, "adopt",
		    1, 0, mf->checksum, mf->message, mf->path, wall, 0, NULL,
		    NULL));
		json_array_append_new(list, json_pack("{s:s, s:s, s:s}",
		    "revision", mf->revision, "checksum", mf->checksum, "file",
		    mf->path));
	}
	errlist_add(&stmts, "COMMIT");
	sql = book_joined(&stmts);
	errlist_clear(&stmts);
	j->result = json_pack("{s:o, s:I, s:I}", "adopted", list, "applied",
	    (json_int_t)applied, "already_verified", (json_int_t)(applied - n));
	log_info("adopt: recorded the checksums of %zu applied revision%s",
	    n, n == 1 ? "" : "s");
	job_query(j, sql, 0, NULL, job_end);
	free(todo);
	free(sql);
}
