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
static void	 stamp_resolved(struct job *j, PGresult *res);
static void	 job_resolve_fileless(struct job *j, int applied);

/* The revisions the version table says are applied, marked; NULL (the
 * job failed) when it names one no file defines. */
static char *
stamp_applied(struct job *j)
{
	char	*marks = xcalloc(revset_count(j->rs) + 1, 1);

	if (migrate_applied(j->rs, &j->st, marks) != 0) {
		free(marks);
		job_fail(j, MIGD_ERR_STATE, "ahead", NULL, "the version table "
		    "names revisions no migration file defines");
		return (NULL);
	}
	return (marks);
}

/* Writes the version table as rows, with one history row, in one go. */
static void
stamp_set_rows(struct job *j, char *marks, const char *revision,
    const char *direction, const char *note)
{
	const struct config_db	*cf = j->db->cf;
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
	if (strcmp(direction, "resolve") == 0)
		/* What a failed index build may have left: said with the
		 * answer, for the person checking the database. */
		errlist_add(&stmts, "SELECT pg_catalog.quote_ident(n.nspname) "
		    "|| '.' || pg_catalog.quote_ident(c.relname) FROM "
		    "pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = "
		    "i.indexrelid JOIN pg_catalog.pg_namespace n ON n.oid = "
		    "c.relnamespace WHERE NOT i.indisvalid AND NOT EXISTS "
		    "(SELECT 1 FROM pg_catalog.pg_stat_progress_create_index p "
		    "WHERE p.relid = i.indrelid) ORDER BY 1");
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
	job_query(j, sql, 0, NULL, strcmp(direction, "resolve") == 0 ?
	    stamp_resolved : job_end);
	free(keep);
	free(vt);
	free(sql);
}

/* resolve is recorded: the INVALID indexes in the database go with the
 * answer (none: an empty list). */
static void
stamp_resolved(struct job *j, PGresult *res)
{
	json_t	*bad;
	int	 i;

	if (!job_ok(j, res))
		return;
	bad = json_array();
	for (i = 0; i < PQntuples(res); i++)
		json_array_append_new(bad, json_string(PQgetvalue(res, i, 0)));
	if (json_array_size(bad) > 0)
		log_warnx("%sresolve %s: INVALID index%s in the database: drop "
		    "or rebuild (DROP INDEX CONCURRENTLY, then create it "
		    "again)", j->db->tag,
		    j->target, json_array_size(bad) == 1 ? "" : "es");
	json_object_set_new(j->result, "invalid_indexes", bad);
	job_end(j, NULL);
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
	const struct config_db	*cf = j->db->cf;
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
		/* A placeholder is not the SQL the database has: no checksum
		 * (adopt records one once its SQL is written). */
		errlist_take(&stmts, book_history_sql(j, mf->revision, "stamp",
		    1, 0, mf->unfinished == NULL ? mf->checksum : NULL,
		    mf->message, mf->path, wall, 0, NULL, note));
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
	log_info("%sstamp %s%s: version table now %zu row%s", j->db->tag,
	    j->target,
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

	/* LABEL@head names the head of that branch, as for upgrade. */
	rv = revset_stamp(j->rs, (const char *const *)j->st.rows,
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

/*
 * A dirty revision whose file was removed (the broken migration taken out
 * of the code): it can be said unapplied, the version table staying as it
 * is; not applied, since without its file migd does not know its place.
 */
static void
job_resolve_fileless(struct job *j, int applied)
{
	char	*marks;

	if (applied) {
		job_fail(j, MIGD_ERR_STATE, "plan_error", NULL, "revision %s is "
		    "dirty, but no migration file defines it any more, so it "
		    "cannot be resolved as applied: restore its file first, "
		    "or undo what it did and run 'migctl %sresolve %s "
		    "unapplied'", j->target, j->db->cli, j->target);
		return;
	}
	if ((marks = stamp_applied(j)) == NULL)
		return;
	stamp_set_rows(j, marks, j->target, "resolve",
	    "resolved as unapplied");
	free(marks);
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
		dr = dbstate_rev(&j->st, j->target);
		if (dr != NULL && dr->dirty) {
			free(cause);
			job_resolve_fileless(j, applied);
			return;
		}
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
			    "'migctl %sresolve %s applied', or give it a new "
			    "place at the top of the chain",
			    graph_id(j->rs->graph, idx), j->db->cli,
			    graph_id(j->rs->graph, idx));
			return;
		}
	} else if (dr == NULL || !dr->dirty) {
		job_fail(j, MIGD_ERR_STATE, "not_dirty", NULL, "revision %s is "
		    "not dirty: nothing to resolve", graph_id(j->rs->graph,
		    idx));
		return;
	}
	if ((marks = stamp_applied(j)) == NULL)
		return;
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
 * when it was created before 'accept' existed (book_directions_sql). */
static void
stamp_accept_write(struct job *j, PGresult *res)
{
	struct errlist		 stmts = { NULL, 0 };
	char			*sql;

	if (!job_ok(j, res))
		return;
	errlist_add(&stmts, "BEGIN");
	book_directions_sql(j, res, &stmts);
	errlist_add(&stmts, "%s", j->accept_sql);
	errlist_add(&stmts, "COMMIT");
	sql = book_joined(&stmts);
	errlist_clear(&stmts);
	job_query(j, sql, 0, NULL, job_end);
	free(sql);
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
	const struct config_db	*cf = j->db->cf;
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
		log_info("%saccept %s: %s is now the accepted text (checksum "
		    "%.12s, was %.12s)", j->db->tag, mf->revision, mf->path,
		    mf->checksum,
		    dr->checksum);
	}
	j->accept_sql = errlist_join(&rows, "; ");
	j->result = json_pack("{s:O}", "accepted", done);
	/* A history table from before 'accept': its CHECK is widened. */
	ht = migrate_qualify(cf->history_schema, cf->history_table);
	params[0] = ht;
	job_query(j, book_directions_query(), 1, params, stamp_accept_write);
	free(ht);
out:
	free(cause);
	errlist_clear(&rows);
	json_decref(done);
	free(seen);
	free(marks);
}
