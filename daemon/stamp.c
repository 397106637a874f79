/*
 * stamp and resolve: the version table set to what a person says is true,
 * with a history row, running no migration.
 */
#include <sys/queue.h>

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "config.h"
#include "migd.h"
#include "engine.h"

static void	 stamp_set_rows(struct job *j, char *marks, const char *revision,
	    const char *direction, const char *note);
static int	 stamp_skipped(struct job *j, size_t idx);

/* Writes the version table as rows, with one history row, in one go. */
static void
stamp_set_rows(struct job *j, char *marks, const char *revision,
    const char *direction, const char *note)
{
	const struct config	*cf = migd.config;
	const struct migfile	*mf = NULL;
	ssize_t			 idx;
	size_t			*keep, n_keep = 0, i, k, n = revset_count(j->rs);
	const size_t		*edges;
	struct errlist		 stmts = { NULL, 0 };
	char			*vt, *sql;
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
	errlist_add(&stmts, "BEGIN");
	errlist_add(&stmts, "DELETE FROM %s", vt);
	book_rows_sql(j, NULL, 0, keep, n_keep, &stmts);
	errlist_take(&stmts, book_history_sql(j, revision, direction, 1, 0, mf ?
	    mf->checksum : NULL, mf ? mf->message : NULL, mf ? mf->path : NULL,
	    migrate_wall(), 0, NULL, note));
	errlist_add(&stmts, "COMMIT");
	sql = book_joined(&stmts);
	errlist_clear(&stmts);
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
	free(sql);
}

/* stamp REV: say the database is at REV without running anything. */
void
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
	stamp_set_rows(j, marks, label, "stamp", NULL);
	free(marks);
}

/* Whether revision idx is one a rebase slipped below applied ones. */
static int
stamp_skipped(struct job *j, size_t idx)
{
	json_t		*sk = migrate_skipped(j->rs, &j->st), *v;
	size_t		 i;
	int		 found = 0;

	json_array_foreach(sk, i, v) {
		if (strcmp(json_string_value(json_object_get(v, "revision")),
		    graph_id(j->rs->graph, idx)) == 0)
			found = 1;
	}
	json_decref(sk);
	return (found);
}

/* resolve REV applied|unapplied: clears a dirty mark, saying which is true;
 * or says a skipped revision is applied after all. */
void
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
	if ((dr == NULL || !dr->dirty) && stamp_skipped(j, idx)) {
		/* Below applied revisions, never run: its SQL was run by other
		 * means, and the person says so.  The rows stay as they are. */
		if (!applied) {
			job_fail(j, MIGD_ERR_STATE, "plan_error", NULL,
			    "revision %s is below applied revisions, so it "
			    "cannot be unapplied alone: run its SQL and then "
			    "'migctl resolve %s applied', or give it a new "
			    "place at the top of the chain",
			    graph_id(j->rs->graph, idx),
			    graph_id(j->rs->graph, idx));
			return;
		}
	} else if (dr == NULL || !dr->dirty) {
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
	stamp_set_rows(j, marks, graph_id(j->rs->graph, idx), "resolve",
	    applied ? "resolved as applied" : "resolved as unapplied");
	free(marks);
}
