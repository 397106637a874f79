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

/*
 * The revisions stamp names: the param is one string or a list of them, and
 * each string may be a comma list ("a,b"), as Alembic's command line takes
 * several.  j->target is them all, joined by commas, for messages.
 */
void
stamp_targets(struct job *j, json_t *revision)
{
	json_t		*v;
	const char	*s, *p, *comma;
	size_t		 i, n, len;
	char		*t;

	n = json_is_array(revision) ? json_array_size(revision) : 1;
	for (i = 0; i < n; i++) {
		v = json_is_array(revision) ? json_array_get(revision, i) :
		    revision;
		if ((s = json_string_value(v)) == NULL)
			continue;
		for (p = s;; p = comma + 1) {
			if ((comma = strchr(p, ',')) == NULL)
				comma = p + strlen(p);
			while (*p == ' ' || *p == '\t')
				p++;
			len = (size_t)(comma - p);
			while (len > 0 && (p[len - 1] == ' ' ||
			    p[len - 1] == '\t'))
				len--;
			j->targets = xreallocarray(j->targets, j->n_targets + 1,
			    sizeof *j->targets);
			j->targets[j->n_targets++] = xstrndup(p, len);
			if (*comma == '\0')
				break;
		}
	}
	free(j->target);
	j->target = xstrdup("");
	for (i = 0; i < j->n_targets; i++) {
		t = xprintf("%s%s%s", j->target, i ? "," : "", j->targets[i]);
		free(j->target);
		j->target = t;
	}
}

/* Writes the stamped table, a history row per revision named (one for
 * base when none is), in one transaction. */
static void
stamp_write(struct job *j, const struct graph_stamp *out)
{
	const struct config	*cf = migd.config;
	const struct migfile	*mf;
	struct errlist		 stmts = { NULL, 0 };
	const char		*note = j->purge ? "purged: the version table "
				    "was emptied first" : NULL;
	char			*vt, *sql;
	json_t			*to, *named;
	double			 wall = migrate_wall();
	size_t			 i;

	vt = migrate_qualify(cf->version_schema, cf->version_table);
	errlist_add(&stmts, "BEGIN");
	errlist_add(&stmts, "DELETE FROM %s", vt);
	book_rows_sql(j, NULL, 0, out->rows, out->n_rows, &stmts);
	named = json_array();
	for (i = 0; i < out->n_named; i++) {
		mf = revset_file(j->rs, out->named[i]);
		errlist_take(&stmts, book_history_sql(j, mf->revision, "stamp",
		    1, 0, mf->checksum, mf->message, mf->path, wall, 0, NULL,
		    note));
		json_array_append_new(named, json_string(mf->revision));
	}
	if (out->n_named == 0)
		errlist_take(&stmts, book_history_sql(j, "base", "stamp", 1, 0,
		    NULL, NULL, NULL, wall, 0, NULL, note));
	errlist_add(&stmts, "COMMIT");
	sql = book_joined(&stmts);
	errlist_clear(&stmts);
	to = json_array();
	for (i = 0; i < out->n_rows; i++)
		json_array_append_new(to, json_string(graph_id(j->rs->graph,
		    out->rows[i])));
	j->result = json_pack("{s:o, s:o, s:s, s:o, s:b}", "from",
	    migrate_rows_json(j->st.rows, j->st.n_rows), "to", to, "revision",
	    j->target, "revisions", named, "purged", j->purge);
	log_info("stamp %s%s: version table now %zu row%s", j->target,
	    j->purge ? " (purged)" : "", out->n_rows, out->n_rows == 1 ? "" :
	    "s");
	job_query(j, sql, 0, NULL, job_end);
	free(vt);
	free(sql);
}

/* stamp REV...: say the database is at these revisions without running
 * anything, replacing only the rows on their lineage, as Alembic does. */
void
job_stamp(struct job *j)
{
	struct graph_stamp	 out;
	json_t			*unknown;
	char			*cause = NULL;
	size_t			 i;
	int			 rv;

	rv = graph_stamp(j->rs->graph, (const char *const *)j->st.rows,
	    j->st.n_rows, (const char *const *)j->targets, j->n_targets,
	    j->purge, &out, &cause);
	if (rv == GRAPH_STAMP_UNKNOWN_ROW) {
		unknown = json_array();
		for (i = 0; i < j->st.n_rows; i++) {
			if (graph_find(j->rs->graph, j->st.rows[i]) < 0)
				json_array_append_new(unknown, json_string(
				    j->st.rows[i]));
		}
		job_fail(j, MIGD_ERR_STATE, "ahead", json_pack("{s:o}",
		    "unknown", unknown), "%s", cause);
		free(cause);
		return;
	}
	if (rv != 0) {
		job_fail(j, MIGD_ERR_MIGRATIONS, "plan_error", NULL, "%s",
		    cause);
		free(cause);
		return;
	}
	stamp_write(j, &out);
	graph_stamp_clear(&out);
}

/* resolve REV applied|unapplied: clears a dirty mark, saying which is true. */
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
	stamp_set_rows(j, marks, graph_id(j->rs->graph, idx), "resolve",
	    applied ? "resolved as applied" : "resolved as unapplied");
	free(marks);
}
