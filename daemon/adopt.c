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
#include "layout.h"
#include "migd.h"
#include "engine.h"

static void	 adopt_write(struct job *j, PGresult *res);

/*
 * The 'adopt' history row of each revision (to stmts) and the result's list
 * of them.  A placeholder (unfinished) is not what ran: no checksum until
 * it is written, and the list says how to finish it.
 */
json_t *
adopt_rows_sql(struct job *j, const size_t *revs, size_t n, double wall,
    struct errlist *stmts)
{
	const struct migfile	*mf;
	const char		*sum;
	json_t			*list = json_array(), *el;
	size_t			 i;

	for (i = 0; i < n; i++) {
		mf = revset_file(j->rs, revs[i]);
		sum = mf->unfinished == NULL ? mf->checksum : NULL;
		errlist_take(stmts, book_history_sql(j, mf->revision, "adopt",
		    1, 0, sum, mf->message, mf->path, wall, 0, NULL, NULL));
		el = json_pack("{s:s, s:o, s:s, s:b}", "revision",
		    mf->revision, "checksum", sum != NULL ? json_string(sum) :
		    json_null(), "file", mf->path, "unfinished",
		    mf->unfinished != NULL);
		if (mf->unfinished != NULL) {
			json_object_set_new(el, "placeholder", json_string(
			    layout_unfinished_kind(mf)));
			json_object_set_new(el, "fix", json_string(
			    layout_unfinished_fix(mf)));
		}
		json_array_append_new(list, el);
	}
	return (list);
}

/*
 * The revisions to adopt, in upgrade order: applied, no checksum yet.  An
 * unfinished file (an import placeholder) is not the SQL that was applied:
 * it is recorded as applied once, without a checksum, and adopted with one
 * when its SQL is written; *waiting counts those already recorded.
 */
static size_t
adopt_list(struct job *j, const char *marks, size_t **out, size_t *applied,
    size_t *waiting)
{
	const struct dbrev	*dr;
	const size_t		*order;
	size_t			 n, i, v, k = 0;

	n = graph_order(j->rs->graph, &order);
	*out = xreallocarray(NULL, n ? n : 1, sizeof **out);
	*applied = *waiting = 0;
	for (i = 0; i < n; i++) {
		v = order[i];
		if (!marks[v])
			continue;
		(*applied)++;
		dr = dbstate_rev(&j->st, graph_id(j->rs->graph, v));
		if (revset_file(j->rs, v)->unfinished != NULL) {
			if (dr == NULL || !dr->known)
				(*out)[k++] = v;
			else
				(*waiting)++;
		} else if (dr == NULL || dr->checksum == NULL)
			(*out)[k++] = v;
	}
	return (k);
}

/* adopt: refuses a table it cannot read right, else records checksums. */
void
job_adopt(struct job *j)
{
	struct graph_plan	 plan;
	size_t			*todo, n, applied, waiting, i;
	char			*marks, *cause = NULL;
	const char		*params[1];
	char			*ht, *first;
	json_t			*skipped;

	if (j->adopt_from != NULL) {
		adopt_from_start(j);
		return;
	}
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
			    "database, run 'migctl %sresolve %s applied' or "
			    "'unapplied', then adopt", j->st.revs[i].revision,
			    j->db->cli, j->st.revs[i].revision);
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
		    "'migctl %supgrade --apply-skipped', or if its SQL "
		    "already ran by other means, 'migctl %sresolve %s "
		    "applied'; then adopt", first, j->db->cli, j->db->cli,
		    first);
		free(first);
		return;
	}
	json_decref(skipped);
	marks = xcalloc(revset_count(j->rs) + 1, 1);
	migrate_applied(j->rs, &j->st, marks);
	n = adopt_list(j, marks, &todo, &applied, &waiting);
	free(marks);
	free(todo);
	if (n == 0) {
		j->result = json_pack("{s:[], s:I, s:I, s:o}", "adopted",
		    "applied", (json_int_t)applied, "already_verified",
		    (json_int_t)(applied - waiting), "message", applied == 0 ?
		    json_string("nothing to adopt: no revision is applied") :
		    waiting == 0 ? json_string("nothing to adopt: every "
		    "applied revision has a recorded checksum") : json_sprintf(
		    "nothing to adopt: %zu applied revision%s unfinished (an "
		    "import placeholder): write %s SQL, remove the "
		    "'unfinished' header, then adopt again", waiting,
		    waiting == 1 ? " is" : "s are", waiting == 1 ? "its" :
		    "their"));
		job_end(j, NULL);
		return;
	}
	/* Rows of direction 'adopt' need a history table that allows them. */
	ht = migrate_qualify(j->db->cf->history_schema,
	    j->db->cf->history_table);
	params[0] = ht;
	job_query(j, book_directions_query(), 1, params, adopt_write);
	free(ht);
}

/* One transaction: the history's CHECK if it is older, and a row per
 * revision adopted. */
static void
adopt_write(struct job *j, PGresult *res)
{
	struct errlist		 stmts = { NULL, 0 };
	json_t			*list;
	size_t			*todo, n, applied, waiting;
	char			*marks, *sql;
	double			 wall = migrate_wall();

	if (!job_ok(j, res))
		return;
	marks = xcalloc(revset_count(j->rs) + 1, 1);
	migrate_applied(j->rs, &j->st, marks);
	n = adopt_list(j, marks, &todo, &applied, &waiting);
	free(marks);
	errlist_add(&stmts, "BEGIN");
	book_directions_sql(j, res, &stmts);
	list = adopt_rows_sql(j, todo, n, wall, &stmts);
	errlist_add(&stmts, "COMMIT");
	sql = book_joined(&stmts);
	errlist_clear(&stmts);
	j->result = json_pack("{s:o, s:I, s:I}", "adopted", list, "applied",
	    (json_int_t)applied, "already_verified", (json_int_t)(applied - n -
	    waiting));
	log_info("%sadopt: recorded the checksums of %zu applied "
	    "revision%s", j->db->tag, n, n == 1 ? "" : "s");
	job_query(j, sql, 0, NULL, job_end);
	free(todo);
	free(sql);
}

