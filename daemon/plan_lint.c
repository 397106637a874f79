/*
 * lint at apply time ([migrations] lint), and the lint method: the plan's
 * steps judged in the order they would run, so a table an earlier step
 * creates is new; then, from the catalog, the size of each existing table a
 * finding concerns (a small one makes a sized finding informational) and,
 * for plan, --dry-run and lint, who holds or waits for a lock on it that
 * conflicts with the statement's.  With lint = warn the findings go with
 * the plan and the run's reply; with refuse, each error finding not ignored
 * is a problem that stops the run before anything runs.
 *
 * The catalog is read with one SELECT that takes no lock on any table it
 * looks at (to_regclass, pg_class, pg_locks, pg_stat_activity), so a plan
 * never waits behind the very lock holders it reports.
 */
#include <sys/queue.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "config.h"
#include "migd.h"
#include "engine.h"
#include "layout.h"
#include "lint.h"
#include "lintfile.h"
#include "migd/protocol.h"

/* A transaction this old holding any lock on a table is shown as a
 * blocker even when its lock does not conflict (yet). */
#define PLANLINT_LONG_XACT_S	60
#define PLANLINT_QUERY_CHARS	200	/* of a blocker's query */

/* Without blockers ($3 false) the query reads pg_class only. */
static const char planlint_sql[] =
    "SELECT t.i, c.reltuples, c.relpages, CASE WHEN $3 AND c.oid IS NOT NULL "
    "AND t.conf <> '' THEN (SELECT coalesce(json_agg(b ORDER BY "
    "b.xact_age_s DESC NULLS LAST, b.pid), '[]') FROM (SELECT l.pid, "
    "a.usename, a.application_name, a.state, floor(extract(epoch FROM "
    "now() - a.xact_start))::bigint AS xact_age_s, left(a.query, $5::int) "
    "AS query, string_agg(DISTINCT l.mode, ',') AS modes, bool_and("
    "l.granted) AS granted, bool_or(l.mode = ANY(string_to_array(t.conf, "
    "','))) AS conflicts FROM pg_catalog.pg_locks l JOIN "
    "pg_catalog.pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = "
    "'relation' AND l.database = (SELECT d.oid FROM pg_catalog.pg_database "
    "d WHERE d.datname = pg_catalog.current_database()) AND l.relation = "
    "c.oid AND l.pid <> pg_catalog.pg_backend_pid() GROUP BY l.pid, "
    "a.usename, a.application_name, a.state, a.xact_start, a.query HAVING "
    "bool_or(l.mode = ANY(string_to_array(t.conf, ','))) OR min("
    "a.xact_start) < now() - make_interval(secs => $4::int)) b) END "
    "FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS t(n, conf, i) "
    "LEFT JOIN pg_catalog.pg_class c ON c.oid = pg_catalog.to_regclass(t.n) "
    "ORDER BY t.i";

static void	 planlint_plan_done(struct job *j);
static void	 job_lint_reply(struct job *j);

/* A refused finding as a plan problem, naming rule and FILE:LINE:COL,
 * and the table's size when the catalog knows it. */
static json_t *
planlint_problem(const struct lint_finding *f, const char *revision)
{
	const struct lint_rule	*r = &lint_rules[f->rule];
	char			 size[64] = "";

	if (f->rows >= 0)
		snprintf(size, sizeof size, "table has ~%lld rows; ", f->rows);
	return (json_pack("{s:s, s:s, s:s, s:o}", "kind", "lint_refused",
	    "revision", revision, "rule", r->name, "message", json_sprintf(
	    "%s:%d:%d: %s: %s (%slock: %s; instead: %s); lint = refuse, or "
	    "put '-- migd:lint-ignore %s why' on the line above it",
	    f->path, f->line, f->col, r->name, f->msg, size, r->lock, r->safe,
	    r->name)));
}

void
planlint_free(struct job *j)
{
	size_t	 i;

	if (j->lint_rep != NULL) {
		for (i = 0; i < j->lint_rep->n; i++)
			free(j->lint_revs[i]);
		lint_report_clear(j->lint_rep);
		free(j->lint_rep);
		j->lint_rep = NULL;
	}
	free(j->lint_revs);
	j->lint_revs = NULL;
	for (i = 0; i < j->n_lint_tables; i++)
		free(j->lint_tables[i]);
	free(j->lint_tables);
	j->lint_tables = NULL;
	j->n_lint_tables = 0;
	free(j->lint_table_of);
	j->lint_table_of = NULL;
	json_decref(j->lint_blockers);
	j->lint_blockers = NULL;
	json_decref(j->lint_problems);
	j->lint_problems = NULL;
	json_decref(j->lint_ask);
	j->lint_ask = NULL;
	json_decref(j->lint_texts);
	j->lint_texts = NULL;
	json_decref(j->lint_notes);
	j->lint_notes = NULL;
}

/* The revision of the findings from index from on (NULL: none known). */
static void
planlint_revs(struct job *j, size_t from, const char *revision)
{
	size_t	 k;

	j->lint_revs = xreallocarray(j->lint_revs, j->lint_rep->n + 1,
	    sizeof *j->lint_revs);
	for (k = from; k < j->lint_rep->n; k++)
		j->lint_revs[k] = revision != NULL ? xstrdup(revision) : NULL;
}

/* Lints one step's section into the job's report, in the run's context. */
static void
planlint_step(struct job *j, struct lint_ctx *ctx, size_t idx, int up)
{
	const struct migfile	*mf = revset_file(j->rs, idx);
	const struct sqlscan	*sc = revset_section(j->rs, idx, up);
	size_t			 from = j->lint_rep->n;

	j->lint_files++;
	if (sc->unparsed) {
		if (j->lint_notes != NULL)
			json_array_append_new(j->lint_notes, json_sprintf(
			    "%s: not linted: %s", migfile_path(mf, up),
			    sc->parse_error ? sc->parse_error :
			    "the parser refused it"));
		return;
	}
	lint_section(ctx, &sc->lint, migfile_path(mf, up), mf->lint_ignore,
	    mf->lint_ignore_line, !revset_transactional(j->rs, idx, up),
	    j->lint_rep);
	planlint_revs(j, from, mf->revision);
}

/* The table's key ("schema.name") as to_regclass reads it: each part
 * quoted, so it names what the statement named under the search_path. */
static char *
planlint_regclass(const char *key)
{
	char	*out = xstrdup(""), *part, *q, *t, *copy, *save = NULL;

	copy = xstrdup(key);
	for (part = strtok_r(copy, ".", &save); part != NULL;
	    part = strtok_r(NULL, ".", &save)) {
		q = sqlscan_quote_ident(part);
		t = xprintf("%s%s%s", out, *out ? "." : "", q);
		free(q);
		free(out);
		out = t;
	}
	free(copy);
	return (out);
}

/* The index in lint_tables of finding k's table, or -1. */
static ssize_t
planlint_table(struct job *j, size_t k)
{
	return (j->lint_table_of != NULL ? j->lint_table_of[k] : -1);
}

/*
 * Lists the existing tables the findings name, each once, and each
 * finding's: a hash of the names, as a downgrade of a thousand migrations
 * has about as many findings as tables (a search of the list for each took
 * most of migd's time in such a run).
 */
static void
planlint_tables(struct job *j)
{
	const struct lint_finding *f;
	size_t			*slot, cap = 16, k, h;
	const char		*p;

	for (k = 0; k < j->n_lint_tables; k++)
		free(j->lint_tables[k]);
	j->n_lint_tables = 0;
	free(j->lint_table_of);
	while (cap < j->lint_rep->n * 2)
		cap *= 2;
	slot = xcalloc(cap, sizeof *slot);	/* index + 1, 0: empty */
	j->lint_table_of = xcalloc(j->lint_rep->n + 1,
	    sizeof *j->lint_table_of);
	for (k = 0; k < j->lint_rep->n; k++) {
		f = &j->lint_rep->v[k];
		j->lint_table_of[k] = -1;
		/* "db.schema.name" would make to_regclass fail, not say NULL. */
		if (f->table == NULL || ((p = strchr(f->table, '.')) != NULL &&
		    strchr(p + 1, '.') != NULL))
			continue;
		for (h = 2166136261u, p = f->table; *p != '\0'; p++)
			h = (h ^ (unsigned char)*p) * 16777619u;
		for (h &= cap - 1; slot[h] != 0 && strcmp(j->lint_tables[
		    slot[h] - 1], f->table) != 0; h = (h + 1) & (cap - 1))
			;
		if (slot[h] == 0) {
			j->lint_tables = xreallocarray(j->lint_tables,
			    j->n_lint_tables + 1, sizeof *j->lint_tables);
			j->lint_tables[j->n_lint_tables++] = xstrdup(f->table);
			slot[h] = j->n_lint_tables;
		}
		j->lint_table_of[k] = (ssize_t)slot[h] - 1;
	}
	free(slot);
}

/* The catalog came back: sizes change severities, blockers are kept. */
static void
planlint_catalog(struct job *j, PGresult *res)
{
	json_error_t		 jerr;
	json_t			*b;
	size_t			 k;
	ssize_t			 t;
	long long		*rows;
	int			 i, n, version;

	if (!job_ok(j, res))
		return;
	version = PQserverVersion(pool_conn_pg(j->pc));
	j->lint_blockers = json_array();
	n = PQntuples(res) < (int)j->n_lint_tables ? PQntuples(res) :
	    (int)j->n_lint_tables;
	rows = xcalloc((size_t)n + 1, sizeof *rows);
	for (i = 0; i < n; i++) {
		rows[i] = PQgetisnull(res, i, 1) ? -1 : lint_rows_estimate(
		    strtod(PQgetvalue(res, i, 1), NULL), strtoll(PQgetvalue(
		    res, i, 2), NULL, 10), version);
		b = PQgetisnull(res, i, 3) ? json_null() : json_loads(
		    PQgetvalue(res, i, 3), JSON_DECODE_ANY, &jerr);
		json_array_append_new(j->lint_blockers, b != NULL ? b :
		    json_null());
	}
	for (k = 0; k < j->lint_rep->n; k++) {
		if ((t = planlint_table(j, k)) >= 0 && t < n)
			lint_finding_sized(&j->lint_rep->v[k], rows[t],
			    j->db->cf->lint_small_table_rows);
	}
	free(rows);
	if (j->op == MIGRATE_LINT)
		job_lint_reply(j);
	else
		planlint_plan_done(j);
}

/*
 * Reads the catalog's context for the report's existing tables, then
 * goes on (planlint_catalog); at once when no finding names one.
 * blockers: also who holds or waits for a conflicting lock on them.
 */
static void
planlint_live(struct job *j, int blockers)
{
	const struct lint_finding *f;
	const char		*params[5], *mode, *conf;
	char			**modes, *names, *confs, **q;
	char			 age[16], chars[16];
	size_t			 k, n;
	ssize_t			 t;

	planlint_tables(j);
	if ((n = j->n_lint_tables) == 0) {
		if (j->op == MIGRATE_LINT)
			job_lint_reply(j);
		else
			planlint_plan_done(j);
		return;
	}
	/* Per table, the conflicts of its strongest lock: each mode's
	 * conflicts include those of the weaker ones rules take. */
	modes = xcalloc(n, sizeof *modes);
	for (k = 0; k < j->lint_rep->n; k++) {
		f = &j->lint_rep->v[k];
		if ((t = planlint_table(j, k)) < 0 ||
		    (mode = lint_finding_mode(f)) == NULL)
			continue;
		if (modes[t] == NULL || strlen(lint_lock_conflicts(mode)) >
		    strlen(lint_lock_conflicts(modes[t])))
			modes[t] = (char *)mode;
	}
	q = xcalloc(n, sizeof *q);
	for (k = 0; k < n; k++)
		q[k] = planlint_regclass(j->lint_tables[k]);
	names = migrate_text_array(q, n);
	for (k = 0; k < n; k++) {
		free(q[k]);
		conf = blockers ? lint_lock_conflicts(modes[k]) : NULL;
		q[k] = xstrdup(conf != NULL ? conf : "");
	}
	confs = migrate_text_array(q, n);
	for (k = 0; k < n; k++)
		free(q[k]);
	free(q);
	free(modes);
	snprintf(age, sizeof age, "%d", PLANLINT_LONG_XACT_S);
	snprintf(chars, sizeof chars, "%d", PLANLINT_QUERY_CHARS);
	params[0] = names;
	params[1] = confs;
	params[2] = blockers ? "true" : "false";
	params[3] = age;
	params[4] = chars;
	job_query(j, planlint_sql, 5, params, planlint_catalog);
	free(names);
	free(confs);
}

/* A finding as JSON with its revision, its table's size and blockers. */
static json_t *
planlint_json(struct job *j, size_t k)
{
	const struct lint_finding *f = &j->lint_rep->v[k];
	json_t			*o, *b;
	ssize_t			 t;

	o = lint_finding_json(f);
	json_object_set_new(o, "revision", j->lint_revs[k] != NULL ?
	    json_string(j->lint_revs[k]) : json_null());
	if (lint_finding_mode(f) != NULL && (t = planlint_table(j,
	    k)) >= 0 && j->lint_blockers != NULL &&
	    json_is_array(b = json_array_get(j->lint_blockers, (size_t)t)))
		json_object_set_new(o, "blockers", lint_blockers_for(
		    lint_finding_mode(f), b, PLANLINT_LONG_XACT_S));
	return (o);
}

/*
 * The findings of the plan's steps (rules of warning and error severity;
 * info is for lint), in the plan's result as lint.  With refuse, each
 * error finding that is not ignored, its table's size considered, is a
 * problem.  Then the plan goes on.
 */
static void
planlint_plan_done(struct job *j)
{
	const struct lint_finding *f;
	json_t			*out, *problems;
	size_t			 k;

	out = json_array();
	problems = j->lint_problems;
	j->lint_problems = NULL;
	for (k = 0; k < j->lint_rep->n; k++) {
		f = &j->lint_rep->v[k];
		if (lint_rules[f->rule].severity < LINT_WARNING)
			continue;
		json_array_append_new(out, planlint_json(j, k));
		if (j->db->cf->lint == MIGD_LINT_REFUSE &&
		    f->ignored == NULL && f->severity == LINT_ERROR)
			json_array_append_new(problems, planlint_problem(f,
			    j->lint_revs[k]));
	}
	job_plan_checked(j, problems, out);
}

/* The plan's steps judged in order, then given the catalog's context;
 * job_plan_checked follows.  Nothing when lint is off. */
void
planlint(struct job *j, json_t *problems)
{
	struct lint_ctx	 ctx;
	size_t		 i;

	if (j->db->cf->lint == MIGD_LINT_OFF) {
		job_plan_checked(j, problems, NULL);
		return;
	}
	memset(&ctx, 0, sizeof ctx);
	ctx.managed = j->db->cf->schemas;
	ctx.n_managed = j->db->cf->n_schemas;
	j->lint_problems = problems;
	j->lint_rep = xcalloc(1, sizeof *j->lint_rep);
	for (i = 0; i < j->plan.n_steps; i++)
		planlint_step(j, &ctx, j->plan.steps[i].idx,
		    j->plan.steps[i].dir == GRAPH_UP);
	lint_ctx_clear(&ctx);
	planlint_live(j, j->op == MIGRATE_PLAN || j->dry_run);
}

/* The lint method's reply: every finding, info too, and the counts. */
static void
job_lint_reply(struct job *j)
{
	json_t	*list;
	size_t	 k, errors, warnings, all;

	list = json_array();
	for (k = 0; k < j->lint_rep->n; k++)
		json_array_append_new(list, planlint_json(j, k));
	errors = lint_report_count(j->lint_rep, LINT_ERROR);
	warnings = lint_report_count(j->lint_rep, LINT_WARNING) - errors;
	all = lint_report_count(j->lint_rep, LINT_INFO);
	j->result = json_pack("{s:o, s:I, s:I, s:I, s:I, s:I, s:O, s:b}",
	    "findings", list, "files", (json_int_t)j->lint_files, "errors",
	    (json_int_t)errors, "warnings", (json_int_t)warnings, "infos",
	    (json_int_t)(all - errors - warnings), "ignored",
	    (json_int_t)(j->lint_rep->n - all), "notes", j->lint_notes,
	    "live", 1);
	job_end(j, NULL);
}

/*
 * The lint method's params, checked before anything is read: revisions,
 * all, or files (texts read as format says, else as the database reads its
 * own directory), within what one request parsed on the loop may carry.
 * -1 with *cause (to free) when refused.
 */
int
planlint_request(struct job *j, json_t *p, char **cause)
{
	json_t		*files = json_object_get(p, "files"), *f;
	const char	*name = json_string_value(json_object_get(p, "format"));
	enum layout_format fmt = LAYOUT_AUTO;
	size_t		 i, bytes = 0;

	j->lint_ask = json_incref(json_object_get(p, "revisions"));
	j->lint_all = json_is_true(json_object_get(p, "all"));
	j->lint_texts = json_incref(files);
	j->lint_format = j->db->cf->format;
	*cause = NULL;
	if (j->lint_ask != NULL && j->lint_all)
		*cause = xstrdup("lint takes revisions or all, not both: "
		    "revisions are linted as one run in the order given, all "
		    "of them each alone");
	else if (files != NULL && (j->lint_ask != NULL || j->lint_all))
		*cause = xprintf("lint takes files or %s, not both: the files "
		    "sent are linted by themselves, as one run in the order "
		    "given", j->lint_all ? "all" : "revisions");
	else if (name != NULL && files == NULL)
		*cause = xstrdup("format goes with files: migd reads its own "
		    "directory as [migrations] format says");
	else if (name != NULL && layout_parse_name(name, &fmt) != 0)
		*cause = xprintf("format '%.40s': unknown layout; one of "
		    LAYOUT_NAMES, name);
	else if (json_array_size(files) > MIGD_LINT_MAX_FILES)
		*cause = xprintf("%zu files: lint takes at most %d in one "
		    "request; lint them offline (migctl lint [-c CONFIG] "
		    "FILE..., without -s) or a part at a time",
		    json_array_size(files), MIGD_LINT_MAX_FILES);
	if (*cause != NULL)
		return (-1);
	if (name != NULL)
		j->lint_format = (int)fmt;
	json_array_foreach(files, i, f)
		bytes += json_string_length(json_object_get(f, "text"));
	if (bytes > MIGD_LINT_MAX_TEXT) {
		*cause = xprintf("%zu bytes of text: lint takes at most %d "
		    "(256 KiB) in one request, parsed on migd's event loop; lint "
		    "them offline (migctl lint [-c CONFIG] FILE..., without "
		    "-s) or a part at a time", bytes, MIGD_LINT_MAX_TEXT);
		return (-1);
	}
	return (0);
}

/* The files sent, parsed several at once; linted after, in order. */
struct planlint_read {
	enum layout_format	 fmt;
	const char		**path;
	const char		**text;
	size_t			 *len;
	struct lintfile		 *lf;
};

/* One file sent, on whichever thread: only its own slots. */
static void
planlint_read_one(void *arg, size_t i)
{
	struct planlint_read	*r = arg;

	lintfile_parse(&r->lf[i], r->fmt, r->path[i], r->text[i], r->len[i]);
}

/*
 * The files sent, read as migctl lint FILE... reads files offline and
 * linted as one run in the order given; their paths only name them.  A
 * file that cannot be read fails the request as it fails offline, with
 * nothing linted: 0, or -1 when the job failed.
 */
static int
planlint_texts(struct job *j, struct lint_ctx *ctx)
{
	struct planlint_read	 r;
	json_t			*f, *errors = json_array();
	char			*msg;
	size_t			 i, k, n = json_array_size(j->lint_texts);
	size_t			 from;

	r.fmt = (enum layout_format)j->lint_format;
	r.path = xcalloc(n + 1, sizeof *r.path);
	r.text = xcalloc(n + 1, sizeof *r.text);
	r.len = xcalloc(n + 1, sizeof *r.len);
	r.lf = xcalloc(n + 1, sizeof *r.lf);
	json_array_foreach(j->lint_texts, i, f) {
		r.path[i] = json_string_value(json_object_get(f, "path"));
		r.text[i] = json_string_value(json_object_get(f, "text"));
		r.len[i] = json_string_length(json_object_get(f, "text"));
	}
	parallel_each(n, planlint_read_one, &r);
	for (i = 0; i < n; i++) {
		for (k = 0; k < r.lf[i].errs.n; k++) {
			msg = utf8_sanitize(r.lf[i].errs.v[k]);
			json_array_append_new(errors, json_string(msg));
			free(msg);
		}
	}
	for (i = 0; i < n && json_array_size(errors) == 0; i++) {
		if (!r.lf[i].ok)
			continue;
		j->lint_files++;
		from = j->lint_rep->n;
		if ((msg = lintfile_lint(ctx, r.lf[i].mf, &r.lf[i].sc,
		    j->lint_rep)) != NULL)
			json_array_append_new(j->lint_notes, json_string(msg));
		free(msg);
		planlint_revs(j, from, r.lf[i].mf->revision);
	}
	for (i = 0; i < n; i++)
		lintfile_clear(&r.lf[i]);
	free(r.path);
	free(r.text);
	free(r.len);
	free(r.lf);
	if (json_array_size(errors) == 0) {
		json_decref(errors);
		return (0);
	}
	msg = migrate_errors_message(errors);
	job_fail(j, MIGD_ERR_MIGRATIONS, "invalid_migrations", json_pack(
	    "{s:o}", "errors", errors), "the files sent have problems; "
	    "nothing linted: %s", msg);
	free(msg);
	return (-1);
}

/*
 * The lint method: the revisions given, as one run in the order given;
 * all, each revision alone in graph order; the files sent, as one run in
 * the order given; else the pending plan (up to heads).  Always with live
 * context, whatever [migrations] lint says.
 */
void
job_lint(struct job *j)
{
	struct lint_ctx	 ctx;
	const size_t	*order;
	json_t		*v;
	char		*cause = NULL;
	size_t		 i, n, idx;

	json_array_foreach(j->lint_ask, i, v) {
		if (graph_lookup(j->rs->graph, json_string_value(v), &idx,
		    &cause) != 0) {
			job_fail(j, MIGD_ERR_MIGRATIONS, "plan_error", NULL,
			    "%s; nothing linted", cause);
			free(cause);
			return;
		}
	}
	if (j->lint_ask == NULL && !j->lint_all && j->lint_texts == NULL &&
	    graph_plan(j->rs->graph, (const char *const *)j->st.rows,
	    j->st.n_rows, "heads", GRAPH_UP, &j->plan, &cause) != 0) {
		job_fail(j, MIGD_ERR_MIGRATIONS, "plan_error", NULL, "%s; "
		    "nothing linted (give revisions, or all)", cause);
		free(cause);
		return;
	}
	memset(&ctx, 0, sizeof ctx);
	ctx.managed = j->db->cf->schemas;
	ctx.n_managed = j->db->cf->n_schemas;
	j->lint_rep = xcalloc(1, sizeof *j->lint_rep);
	j->lint_notes = json_array();
	if (j->lint_texts != NULL) {
		if (planlint_texts(j, &ctx) != 0) {
			lint_ctx_clear(&ctx);
			return;
		}
	} else if (j->lint_all) {
		n = graph_order(j->rs->graph, &order);
		for (i = 0; i < n; i++) {
			lint_ctx_clear(&ctx);
			planlint_step(j, &ctx, order[i], 1);
		}
	} else if (j->lint_ask != NULL) {
		json_array_foreach(j->lint_ask, i, v) {
			graph_lookup(j->rs->graph, json_string_value(v), &idx,
			    NULL);
			planlint_step(j, &ctx, idx, 1);
		}
	} else {
		for (i = 0; i < j->plan.n_steps; i++)
			planlint_step(j, &ctx, j->plan.steps[i].idx, 1);
	}
	lint_ctx_clear(&ctx);
	planlint_live(j, 1);
}
