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
static void	 stamp_accept_write(struct job *j, PGresult *res);

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

/* The history rows of accept, with the history table's CHECK widened first
 * when it was created before 'accept' existed. */
static void
stamp_accept_write(struct job *j, PGresult *res)
{
	const struct config	*cf = migd.config;
	struct errlist		 stmts = { NULL, 0 };
	char			*ht, *name, *sql;
	int			 i;

	if (!job_ok(j, res))
		return;
	ht = migrate_qualify(cf->history_schema, cf->history_table);
	errlist_add(&stmts, "BEGIN");
	for (i = 0; i < PQntuples(res); i++) {
		name = sqlscan_quote_ident(PQgetvalue(res, i, 0));
		errlist_add(&stmts, "ALTER TABLE %s DROP CONSTRAINT %s", ht,
		    name);
		errlist_add(&stmts, "ALTER TABLE %s ADD CONSTRAINT %s CHECK "
		    "(direction IN ('up', 'down', 'stamp', 'resolve', "
		    "'accept'))", ht, name);
		free(name);
	}
	errlist_add(&stmts, "%s", j->accept_sql);
	errlist_add(&stmts, "COMMIT");
	sql = book_joined(&stmts);
	errlist_clear(&stmts);
	job_query(j, sql, 0, NULL, job_end);
	free(sql);
	free(ht);
}

/*
 * accept REV...: the file of each applied revision was edited on purpose;
 * its checksum now is the accepted one (a history row each), so drift is
 * no longer reported for it.  The version table does not move.  All or
 * nothing: one revision that is not applied or not edited refuses all.
 */
void
job_accept(struct job *j)
{
	const struct config	*cf = migd.config;
	const struct migfile	*mf;
	const struct dbrev	*dr;
	struct errlist		 rows = { NULL, 0 };
	const char		*params[1];
	char			*marks, *cause = NULL, *note, *ht;
	size_t			 i, k, idx, *seen;
	json_t			*done, *v;

	marks = xcalloc(revset_count(j->rs) + 1, 1);
	if (migrate_applied(j->rs, &j->st, marks) != 0) {
		free(marks);
		job_fail(j, MIGD_ERR_STATE, "plan_error", NULL, "the version "
		    "table names revisions no migration file defines, or is "
		    "inconsistent: see 'migctl status'; nothing accepted");
		return;
	}
	seen = xcalloc(json_array_size(j->accept) + 1, sizeof *seen);
	done = json_array();
	json_array_foreach(j->accept, i, v) {
		if (graph_lookup(j->rs->graph, json_string_value(v), &idx,
		    &cause) != 0) {
			job_fail(j, MIGD_ERR_MIGRATIONS, "plan_error", NULL,
			    "%s; nothing accepted", cause);
			goto out;
		}
		for (k = 0; k < i && seen[k] != idx + 1; k++)
			;
		if (k < i)
			continue;	/* named twice */
		seen[i] = idx + 1;
		mf = revset_file(j->rs, idx);
		dr = dbstate_rev(&j->st, mf->revision);
		if (!marks[idx]) {
			job_fail(j, MIGD_ERR_STATE, "not_applied", json_pack(
			    "{s:s}", "revision", mf->revision), "revision %s "
			    "is not applied: there is no applied edit to "
			    "accept (upgrade runs the file as it is); nothing "
			    "accepted", mf->revision);
			goto out;
		}
		if (dr == NULL || dr->checksum == NULL) {
			job_fail(j, MIGD_ERR_STATE, "not_edited", json_pack(
			    "{s:s}", "revision", mf->revision), "revision %s "
			    "has no checksum in migd's history (it was applied "
			    "before migd, or stamped from other files), so no "
			    "edit of %s is reported: nothing to accept; nothing "
			    "accepted", mf->revision, mf->path);
			goto out;
		}
		if (strcmp(dr->checksum, mf->checksum) == 0) {
			job_fail(j, MIGD_ERR_STATE, "not_edited", json_pack(
			    "{s:s}", "revision", mf->revision), "%s is "
			    "unchanged since revision %s was applied (or last "
			    "accepted): nothing to accept; nothing accepted",
			    mf->path, mf->revision);
			goto out;
		}
		note = xprintf("accepted an edit of %s: checksum %s, was %s",
		    mf->path, mf->checksum, dr->checksum);
		errlist_take(&rows, book_history_sql(j, mf->revision, "accept",
		    1, 0, mf->checksum, mf->message, mf->path, migrate_wall(),
		    0, NULL, note));
		free(note);
		json_array_append_new(done, json_pack("{s:s, s:s, s:s, s:s}",
		    "revision", mf->revision, "file", mf->path,
		    "applied_checksum", dr->checksum, "file_checksum",
		    mf->checksum));
		log_info("accept %s: %s is now the accepted text (checksum "
		    "%.12s, was %.12s)", mf->revision, mf->path, mf->checksum,
		    dr->checksum);
	}
	j->accept_sql = errlist_join(&rows, "; ");
	j->result = json_pack("{s:O}", "accepted", done);
	/* A history table from before 'accept': its CHECK is widened. */
	ht = migrate_qualify(cf->history_schema, cf->history_table);
	params[0] = ht;
	job_query(j, "SELECT conname FROM pg_catalog.pg_constraint WHERE "
	    "conrelid = $1::regclass AND contype = 'c' AND "
	    "pg_catalog.pg_get_constraintdef(oid) LIKE '%direction%' AND "
	    "pg_catalog.pg_get_constraintdef(oid) NOT LIKE '%accept%'", 1,
	    params, stamp_accept_write);
	free(ht);
out:
	free(cause);
	errlist_clear(&rows);
	json_decref(done);
	free(seen);
	free(marks);
}
