/*
 * Before a run: refuse a plan that drops a schema migd manages, create the
 * schemas the plan needs, then start the first step.
 */
#include <sys/queue.h>

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "config.h"
#include "migd.h"
#include "engine.h"

/* The schemas are there: run the first step, if any. */
static void
run_first_step(struct job *j, PGresult *res)
{
	const char	*code = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	char		*names, *t;
	size_t		 i;

	if (code != NULL && strcmp(code, "42501") == 0) {
		/* Said with the schemas and the grant they need. */
		names = xstrdup("");
		for (i = 0; i < json_array_size(j->created); i++) {
			t = xprintf("%s%s%s", names, i ? ", " : "",
			    json_string_value(json_array_get(j->created, i)));
			free(names);
			names = t;
		}
		job_fail(j, MIGD_ERR_SQL, "sql_error", migrate_pg_error(res),
		    "creating the schemas %s before the run: %s (SQLSTATE "
		    "42501); grant migd's role CREATE on the database, or "
		    "create them as their owner", names, PQresultErrorField(
		    res, PG_DIAG_MESSAGE_PRIMARY));
		free(names);
		return;
	}
	if (!job_ok(j, res))
		return;
	if (j->plan.n_steps == 0)
		run_finish(j);
	else
		run_step(j);
}

/* Adds a name to the managed schemas, once. */
static void
run_manage(struct job *j, const char *name)
{
	size_t	 i;

	for (i = 0; i < j->n_managed; i++) {
		if (strcmp(j->managed[i], name) == 0)
			return;
	}
	j->managed = xreallocarray(j->managed, j->n_managed + 1,
	    sizeof *j->managed);
	j->managed[j->n_managed++] = xstrdup(name);
}

/* The steps' DROP SCHEMA and renames of schemas migd created for earlier
 * runs (configured ones were refused when the files loaded). */
static json_t *
run_drop_problems(struct job *j, char **created, size_t n_created)
{
	const struct graph_step		*st;
	const struct sqlscan		*sc;
	const struct sqlscan_drop	*d;
	const struct migfile		*mf;
	json_t				*p = json_array();
	size_t				 i, k, c;

	for (i = 0; i < j->plan.n_steps; i++) {
		st = &j->plan.steps[i];
		sc = revset_section(j->rs, st->idx, st->dir == GRAPH_UP);
		mf = revset_file(j->rs, st->idx);
		for (k = 0; k < sc->n_drops; k++) {
			d = &sc->drops[k];
			for (c = 0; c < n_created; c++) {
				if (strcmp(created[c], d->name) == 0)
					break;
			}
			if (c == n_created)
				continue;
			json_array_append_new(p, json_pack("{s:s, s:s, s:o}",
			    "kind", "managed_schema", "revision", mf->revision,
			    "message", json_sprintf("%s:%d: %s %s: migd created "
			    "that schema for an earlier run, so it manages it "
			    "and never drops it, so that no data is lost; drop "
			    "the objects instead", migfile_path(mf, st->dir ==
			    GRAPH_UP), d->line, d->what,
			    d->name)));
		}
	}
	return (p);
}

/*
 * The schemas that exist, those migd created for earlier runs, and whether
 * the server has an event trigger came back: refuse a plan that drops a
 * managed schema, create the missing ones, then run.
 */
void
run_schemas(struct job *j, PGresult *res)
{
	const struct config_db	*cf = j->db->cf;
	json_t			*missing, *problems, *first;
	char			*sql, *t, *q, **created, *more;
	size_t			 i, n_created = 0;
	int			 k, found;

	if (!job_ok(j, res))
		return;
	missing = json_array();
	for (i = 0; i < j->n_ensure; i++) {
		found = 0;
		for (k = 0; k < PQntuples(res); k++) {
			if (PQgetvalue(res, k, 0)[0] == 'e' &&
			    strcmp(PQgetvalue(res, k, 1), j->ensure[i]) == 0)
				found = 1;
		}
		if (!found)
			json_array_append_new(missing, json_string(
			    j->ensure[i]));
	}
	created = xcalloc((size_t)PQntuples(res) + 1, sizeof *created);
	j->evt = RUN_EVT_NONE;
	for (k = 0; k < PQntuples(res); k++) {
		if (PQgetvalue(res, k, 0)[0] == 'm')
			created[n_created++] = PQgetvalue(res, k, 1);
		if (PQgetvalue(res, k, 0)[0] == 'v')
			j->evt = RUN_EVT_SOME;
	}
	problems = run_drop_problems(j, created, n_created);
	/* Managed: configured, holding migd's tables, created by migd. */
	for (i = 0; i < cf->n_schemas; i++)
		run_manage(j, cf->schemas[i]);
	run_manage(j, cf->version_schema);
	run_manage(j, cf->history_schema);
	for (i = 0; i < n_created; i++)
		run_manage(j, created[i]);
	for (i = 0; i < json_array_size(missing); i++)
		run_manage(j, json_string_value(json_array_get(missing, i)));
	free(created);
	if (j->op == MIGRATE_PLAN || j->dry_run) {
		json_array_extend(json_object_get(j->result, "problems"),
		    problems);
		json_decref(problems);
		migrate_plan_result(j, missing);
		job_end(j, NULL);
		return;
	}
	if (json_array_size(problems) != 0) {
		first = json_array_get(problems, 0);
		json_decref(missing);
		more = migrate_more(json_array_size(problems));
		job_fail(j, MIGD_ERR_STATE, "managed_schema", json_pack("{s:o}",
		    "problems", problems), "%s%s", json_string_value(
		    json_object_get(first, "message")), more);
		free(more);
		return;
	}
	json_decref(problems);
	j->created = missing;
	j->done = json_array();
	j->t0 = migd_now();
	if (json_array_size(missing) == 0) {
		if (j->plan.n_steps == 0)
			run_finish(j);
		else
			run_step(j);
		return;
	}
	sql = xstrdup("");
	for (i = 0; i < json_array_size(missing); i++) {
		q = sqlscan_quote_ident(json_string_value(json_array_get(
		    missing, i)));
		t = xprintf("%sCREATE SCHEMA IF NOT EXISTS %s; ", sql, q);
		free(q);
		free(sql);
		sql = t;
		log_info("%screating schema %s", j->db->tag, json_string_value(
		    json_array_get(missing, i)));
	}
	run_notify(j, "schemas", json_pack("{s:O}", "created", missing));
	job_query(j, sql, 0, NULL, run_first_step);
	free(sql);
}
