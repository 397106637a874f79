/*
 * migctl-author's answers that need neither migd nor a database.
 *
 * `migctl upgrade --sql FROM:TO` and `downgrade --sql FROM:TO` print the SQL
 * that a run of migd from FROM to TO would send, for review or for `psql -X
 * -v ON_ERROR_STOP=1 -f`: each migration in its transactions as migd runs it
 * (the file's own BEGIN/COMMIT read as migd reads them, non-transactional
 * statements bare), the session put back between migrations, and the
 * version-table change written as Alembic writes it.  `migctl revisions -d
 * DIR` lists the revision graph as migd's `revisions` method does.
 *
 * Both load the files with the daemon's own parser, graph and planner, so
 * what they print is what migd would do.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config.h"
#include "layout.h"
#include "migctl.h"
#include "migd.h"
#include "revset.h"

/* What migd puts back between migrations (run.c's RUN_ISOLATE). */
#define OFFLINE_ISOLATE	"SET SESSION AUTHORIZATION DEFAULT; RESET ALL; " \
	"DEALLOCATE ALL; CLOSE ALL; UNLISTEN *; DISCARD TEMP; " \
	"DISCARD SEQUENCES; DISCARD PLANS;"

/* One run's SQL as it is written out. */
struct offline {
	FILE			*f;
	const struct config_db	*db;	/* -c CONFIG's, --db's */
	struct revset		*rs;
	char			*vt;	/* the version table, quoted */
	int			 atomic; /* one transaction for the run */
	int			 first, last;	/* the step is the run's */
};

/* The command --sql runs for (upgrade or downgrade), for its usage errors. */
static const char	*offline_cmd = "upgrade";

static void __attribute__((noreturn, format(printf, 2, 3)))
offline_die(int code, const char *fmt, ...)
{
	va_list	 ap;
	char	*msg;

	va_start(ap, fmt);
	xvasprintf(&msg, fmt, ap);
	va_end(ap);
	out_warnx("%s", msg);
	free(msg);
	if (code == MIGCTL_EXIT_USAGE)
		fprintf(stderr, "see 'migctl help %s'\n", offline_cmd);
	exit(code);
}

/*
 * The configuration the SQL is written for, and its database (*dbp: --db's,
 * or as config_pick_db decides): -c CONFIG; else the installed one when the
 * directory comes from it too (no -d, $MIGD_MIGRATIONS or ./migrations);
 * else migd's defaults (public.alembic_version).
 */
static struct config *
offline_config(const struct author_opts *ao, const struct config_db **dbp)
{
	struct errlist	 errs = { NULL, 0 };
	struct config	*cf = NULL;
	const char	*from;
	char		*dir;

	/* -c: author_directory loads it, or says why it cannot. */
	dir = author_directory(ao, &from);
	free(dir);
	if (ao->config != NULL)
		return (author_config(ao, ao->config, 0, dbp));
	if (strcmp(from, "installed_config") == 0 && (cf = author_config(ao,
	    SYSCONFDIR "/migd/migd.conf", 1, dbp)) != NULL)
		return (cf);
	if (config_parse("(defaults)", "", 0, &cf, &errs) != 0)
		offline_die(MIGCTL_EXIT_FAILED, "cannot set up migd's defaults: "
		    "%s", errs.n ? errs.v[0] : "?");
	*dbp = &cf->dbs[0];
	return (cf);
}

/* The files, checked as migd checks them with this configuration. */
static struct revset *
offline_load(const struct author_opts *ao, const struct config_db *db,
    char **dirp)
{
	struct revset_ctx	 ctx;
	const char		*from;
	char			*dir;

	memset(&ctx, 0, sizeof ctx);
	ctx.schemas = db->schemas;
	ctx.n_schemas = db->n_schemas;
	ctx.version_schema = db->version_schema;
	ctx.history_schema = db->history_schema;
	ctx.server_version = 0;	/* no server: newer SQL is assumed */
	ctx.format = db->format;
	/* As for new: -d, $MIGD_MIGRATIONS, -c's, ./migrations, installed. */
	dir = author_directory(ao, &from);
	*dirp = dir;
	return (author_load(dir, &ctx));
}

/* A string literal for SQL built here: quotes doubled (no connection to
 * escape with; the ids that go in it are plain anyway). */
static char *
offline_literal(const char *s)
{
	char	*r = xmalloc(strlen(s) * 2 + 3), *p = r;

	*p++ = '\'';
	for (; *s != '\0'; s++) {
		if (*s == '\'')
			*p++ = '\'';
		*p++ = *s;
	}
	*p++ = '\'';
	*p = '\0';
	return (r);
}

/* Text for a "--" comment: one line, whatever the file name holds. */
static void
offline_comment_text(FILE *f, const char *s)
{
	for (; *s != '\0'; s++)
		fputc((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s, f);
}

/* A schema-qualified, always-quoted name. */
static char *
offline_qualify(const char *schema, const char *name)
{
	char	*s = sqlscan_quote_ident(schema), *t = sqlscan_quote_ident(name);
	char	*q = xprintf("%s.%s", s, t);

	free(s);
	free(t);
	return (q);
}

/* Ids joined with ", ", as Alembic's comments have them. */
static char *
offline_ids(const struct graph *g, const size_t *v, size_t n)
{
	char	*s = xstrdup(""), *t;
	size_t	 i;

	for (i = 0; i < n; i++) {
		t = xprintf("%s%s%s", s, i ? ", " : "", graph_id(g, v[i]));
		free(s);
		s = t;
	}
	return (s);
}

/* migd's timeouts for a transaction (SET LOCAL) or a session (SET). */
static void
offline_timeouts(struct offline *o, const char *set)
{
	fprintf(o->f, "%s lock_timeout = '%ldms'; %s statement_timeout = "
	    "'%ldms';\n", set, o->db->lock_timeout_ms, set,
	    o->db->statement_timeout_ms);
}

/* A transaction as migd begins one: the file's BEGIN (its options kept) or
 * a plain one, then its timeouts. */
static void
offline_begin(struct offline *o, const char *text,
    const struct sqlscan_stmt *b)
{
	if (b != NULL)
		fprintf(o->f, "%.*s;\n", (int)b->len, text + b->offset);
	else
		fprintf(o->f, "BEGIN;\n");
	offline_timeouts(o, "SET LOCAL");
}

/*
 * The version-table change of a step, as Alembic's HeadMaintainer writes
 * it: an UPDATE where one row becomes another, a DELETE for a row that
 * goes (a merge deletes all but one of its parents' rows, then updates the
 * last), an INSERT for a new one.
 */
static void
offline_rows(struct offline *o, const struct graph_step *st)
{
	const struct graph	*g = o->rs->graph;
	size_t			 nd = st->n_row_del, ni = st->n_row_ins, k;
	char			*a, *b;
	int			 update = nd > 0 && ni > 0;

	for (k = 0; k < nd - (update ? 1 : 0); k++) {
		a = offline_literal(graph_id(g, st->row_del[k]));
		fprintf(o->f, "DELETE FROM %s WHERE %s.version_num = %s;\n",
		    o->vt, o->vt, a);
		free(a);
	}
	for (k = 0; k < ni - (update ? 1 : 0); k++) {
		a = offline_literal(graph_id(g, st->row_ins[k]));
		fprintf(o->f, "INSERT INTO %s (version_num) VALUES (%s);\n",
		    o->vt, a);
		free(a);
	}
	if (update) {
		a = offline_literal(graph_id(g, st->row_ins[ni - 1]));
		b = offline_literal(graph_id(g, st->row_del[nd - 1]));
		fprintf(o->f, "UPDATE %s SET version_num=%s WHERE "
		    "%s.version_num = %s;\n", o->vt, a, o->vt, b);
		free(a);
		free(b);
	}
}

/* The end of every migration, in its last transaction: the session put
 * back as migd leaves it, then the version table. */
static void
offline_bookkeeping(struct offline *o, const struct graph_step *st,
    const char *text)
{
	fprintf(o->f, "%s\n", OFFLINE_ISOLATE);
	offline_timeouts(o, "SET LOCAL");
	/* migd releases the session-level advisory locks a migration took. */
	if (strcasestr(text, "advisory") != NULL)
		fprintf(o->f, "DO $migctl$BEGIN PERFORM "
		    "pg_catalog.pg_advisory_unlock_all(); END$migctl$;\n");
	offline_rows(o, st);
	/* An atomic run commits once, with its last step. */
	if (!o->atomic || o->last)
		fprintf(o->f, "COMMIT;\n");
}

/* One statement as the file has it. */
static void
offline_stmt(struct offline *o, const char *text,
    const struct sqlscan_stmt *s)
{
	fprintf(o->f, "%.*s;\n", (int)s->len, text + s->offset);
}

/*
 * A transactional section, transaction by transaction as run.c sends it:
 * the file's BEGIN says how the next transaction begins, its COMMIT [AND
 * CHAIN] where one ends (the last one ends with migd's bookkeeping).
 */
static void
offline_transactional(struct offline *o, const struct graph_step *st,
    const struct sqlscan *sc, const char *text)
{
	const struct sqlscan_stmt	*s, *begin = NULL, *end = NULL;
	size_t				 i;
	int				 open = o->atomic && !o->first;

	for (i = 0; i < sc->n_stmts; i++) {
		s = &sc->stmts[i];
		if (s->flags & SQLSCAN_TX_BEGIN) {
			if (!open || end != NULL)
				begin = s;
			continue;
		}
		if (s->flags & SQLSCAN_TX_COMMIT) {
			if (open)
				end = s;
			continue;
		}
		if (!open) {
			offline_begin(o, text, begin);
			begin = NULL;
			open = 1;
		} else if (end != NULL && (end->flags & SQLSCAN_TX_CHAIN)) {
			fprintf(o->f, "COMMIT AND CHAIN;\n");
			offline_timeouts(o, "SET LOCAL");
			begin = NULL;
		} else if (end != NULL) {
			fprintf(o->f, "COMMIT;\n");
			offline_begin(o, text, begin);
			begin = NULL;
		}
		end = NULL;
		offline_stmt(o, text, s);
	}
	if (!open)
		offline_begin(o, text, begin);
	offline_bookkeeping(o, st, text);
}

/* A section that cannot run in a transaction: statement by statement, as
 * written, then the version table in a transaction of its own. */
static void
offline_bare(struct offline *o, const struct graph_step *st,
    const struct sqlscan *sc, const char *text)
{
	size_t	 i;

	offline_timeouts(o, "SET");
	for (i = 0; i < sc->n_stmts; i++)
		offline_stmt(o, text, &sc->stmts[i]);
	fprintf(o->f, "BEGIN;\n");
	offline_bookkeeping(o, st, text);
}

/* Why a step cannot be part of an atomic run (as migd's plan says), or
 * NULL; to free. */
static char *
offline_not_atomic(const struct revset *rs, const struct graph_step *st)
{
	const struct migfile	*mf = revset_file(rs, st->idx);
	char			*why, *msg;

	if ((why = revset_not_atomic(rs, st->idx, st->dir == GRAPH_UP)) ==
	    NULL)
		return (NULL);
	msg = xprintf("%s: revision %s cannot be part of an atomic run: %s",
	    migfile_path(mf, st->dir == GRAPH_UP), mf->revision, why);
	free(why);
	return (msg);
}

/* One migration: Alembic's comment, then its SQL. */
static void
offline_step(struct offline *o, const struct graph_step *st)
{
	const struct graph		*g = o->rs->graph;
	const struct migfile		*mf = revset_file(o->rs, st->idx);
	const struct sqlscan		*sc;
	const struct sqlscan_stmt	*nt;
	const size_t			*par;
	const char			*text;
	char				*parents;
	size_t				 n_par;
	int				 up = st->dir == GRAPH_UP, tx;

	sc = revset_section(o->rs, st->idx, up);
	text = up ? mf->up : mf->down;
	tx = revset_transactional(o->rs, st->idx, up);
	n_par = graph_parents(g, st->idx, &par);
	parents = offline_ids(g, par, n_par);
	fprintf(o->f, "\n-- Running %s %s -> %s", up ? "upgrade" :
	    "downgrade", up ? parents : mf->revision, up ? mf->revision :
	    parents);
	if (*mf->message != '\0') {
		fputs(", ", o->f);
		offline_comment_text(o->f, mf->message);
	}
	fputs("\n-- ", o->f);
	offline_comment_text(o->f, migfile_path(mf, up));
	fprintf(o->f, ", %s section: ", up ? "up" : "down");
	if (tx && o->atomic)
		fprintf(o->f, "in the run's one transaction\n");
	else if (tx) {
		if (revset_segments(sc, NULL) > 1)
			fprintf(o->f, "%zu transactions, split by its own "
			    "COMMITs\n", revset_segments(sc, NULL));
		else
			fprintf(o->f, "one transaction\n");
	} else if ((nt = revset_no_tx_stmt(o->rs, st->idx, up)) != NULL)
		fprintf(o->f, "statement by statement (%s at line %d cannot "
		    "run in a transaction)\n", nt->what, nt->line);
	else
		fprintf(o->f, "statement by statement ('transaction: "
		    "none')\n");
	if (sc->unparsed)
		fprintf(o->f, "-- PostgreSQL %d's parser cannot read this "
		    "section: its statements are as the file has them, and "
		    "the schemas it names are not created above\n",
		    sqlscan_parser_version() / 10000);
	free(parents);
	if (tx)
		offline_transactional(o, st, sc, text);
	else
		offline_bare(o, st, sc, text);
}

/* The rows of FROM: base, head or heads (as an upgrade from base leaves
 * the version table), or revisions (a comma list for several heads). */
static size_t
offline_from(struct revset *rs, const char *from, char ***rowsp)
{
	struct graph_plan	 plan;
	char			**rows = NULL, *cause = NULL, *copy, *tok, *save;
	size_t			 n = 0, i, idx;

	*rowsp = NULL;
	if (strcmp(from, "base") == 0)
		return (0);
	if (strcmp(from, "head") == 0 || strcmp(from, "heads") == 0) {
		if (graph_plan(rs->graph, NULL, 0, from, GRAPH_UP, &plan,
		    &cause) != 0)
			offline_die(MIGCTL_EXIT_FAILED, "FROM %s: %s", from,
			    cause);
		rows = xcalloc(plan.n_rows_after + 1, sizeof *rows);
		for (i = 0; i < plan.n_rows_after; i++)
			rows[n++] = xstrdup(graph_id(rs->graph,
			    plan.rows_after[i]));
		graph_plan_clear(&plan);
		*rowsp = rows;
		return (n);
	}
	if (from[0] == '+' || from[0] == '-')
		offline_die(MIGCTL_EXIT_USAGE, "FROM is the state the database "
		    "is assumed to be at: base, head, heads or revisions (a "
		    "comma list for several heads), not '%s'", from);
	copy = xstrdup(from);
	for (tok = strtok_r(copy, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		while (isspace((unsigned char)*tok))
			tok++;
		for (i = strlen(tok); i > 0 && isspace((unsigned char)
		    tok[i - 1]); i--)
			tok[i - 1] = '\0';
		if (*tok == '\0')
			continue;
		if (graph_lookup(rs->graph, tok, &idx, &cause) != 0)
			offline_die(MIGCTL_EXIT_FAILED, "FROM: %s", cause);
		rows = xreallocarray(rows, n + 1, sizeof *rows);
		rows[n++] = xstrdup(graph_id(rs->graph, idx));
	}
	free(copy);
	if (n == 0)
		offline_die(MIGCTL_EXIT_USAGE, "FROM names no revision: '%s'",
		    from);
	*rowsp = rows;
	return (n);
}

/* The state FROM must be in, checked before anything else runs: a script
 * for one state does the wrong thing in another. */
static void
offline_check_from(struct offline *o, char **rows, size_t n,
    const char *label)
{
	char	*lit;
	size_t	 i;

	fprintf(o->f, "DO $migctl$\nBEGIN\n\tIF (SELECT coalesce(array_agg("
	    "version_num::text ORDER BY version_num COLLATE \"C\"), "
	    "'{}'::text[]) FROM %s) IS DISTINCT FROM ARRAY[", o->vt);
	for (i = 0; i < n; i++) {
		lit = offline_literal(rows[i]);
		fprintf(o->f, "%s%s", i ? ", " : "", lit);
		free(lit);
	}
	lit = offline_literal(label);
	fprintf(o->f, "]::text[] THEN\n\t\tRAISE EXCEPTION 'the version table "
	    "is not at %%: this script was written for that state', %s;\n"
	    "\tEND IF;\nEND\n$migctl$;\n", lit);
	free(lit);
}

static int
offline_cmp_str(const void *a, const void *b)
{
	return (strcmp(*(char *const *)a, *(char *const *)b));
}

/* upgrade --sql / downgrade --sql: the SQL of a run, printed. */
int
offline_sql(const struct author_opts *ao, int up)
{
	struct offline		 o;
	struct graph_plan	 plan;
	struct config		*cf;
	const struct config_db	*db;
	struct revset		*rs;
	const struct migfile	*mf;
	const char		*range, *to, *colon, **schemas;
	char			*from, *dir, **rows, *cause = NULL, *q, *label;
	char			*pk, *shown = NULL;
	size_t			 n_rows, i, n, problems = 0, n_shown = 0;
	int			 atomic, tty;

	offline_cmd = up ? "upgrade" : "downgrade";
	range = ao->range != NULL && *ao->range != '\0' ? ao->range :
	    up ? "head" : NULL;
	if (range == NULL)
		offline_die(MIGCTL_EXIT_USAGE, "downgrade --sql needs FROM:TO, "
		    "FROM being where the database is (e.g. head:base)");
	if ((colon = strchr(range, ':')) == NULL) {
		if (!up)
			offline_die(MIGCTL_EXIT_USAGE, "downgrade --sql needs "
			    "FROM:TO, FROM being where the database is (e.g. "
			    "head:%s)", strcmp(range, "head") == 0 ||
			    strcmp(range, "heads") == 0 ? "base" : range);
		from = xstrdup("base");
		to = range;
	} else {
		from = xstrndup(range, (size_t)(colon - range));
		to = colon + 1;
	}
	if (*from == '\0' || *to == '\0' || strchr(to, ':') != NULL)
		offline_die(MIGCTL_EXIT_USAGE, "--sql takes FROM:TO (e.g. "
		    "base:head), not '%s'", range);
	cf = offline_config(ao, &db);
	atomic = ao->atomic >= 0 ? ao->atomic : db->atomic;
	rs = offline_load(ao, db, &dir);
	n_rows = offline_from(rs, from, &rows);
	/* Rows of a table migd would not write: say so of FROM. */
	if (graph_plan(rs->graph, (const char *const *)rows, n_rows, "base",
	    GRAPH_DOWN, &plan, &cause) != 0)
		offline_die(MIGCTL_EXIT_FAILED, "FROM %s is no state a database "
		    "can be in: %s", from, cause);
	graph_plan_clear(&plan);
	if (revset_target(rs, to, &pk, &cause) != 0)
		offline_die(MIGCTL_EXIT_FAILED, "%s", cause);
	if (graph_plan(rs->graph, (const char *const *)rows, n_rows, pk,
	    up ? GRAPH_UP : GRAPH_DOWN, &plan, &cause) != 0)
		offline_die(MIGCTL_EXIT_FAILED, "%s from %s to %s: %s", up ?
		    "upgrade" : "downgrade", from, to, cause);
	free(pk);
	for (i = 0; i < plan.n_steps; i++) {
		mf = revset_file(rs, plan.steps[i].idx);
		if (mf->unfinished != NULL) {
			fprintf(stderr, "migctl: %s:%d: revision %s is "
			    "unfinished (%s): %s\n", mf->path,
			    mf->unfinished_line, mf->revision, mf->unfinished,
			    layout_unfinished_fix(mf));
			problems++;
		}
		if (plan.steps[i].dir == GRAPH_DOWN && mf->down == NULL) {
			out_warnx("%s: revision %s has %s, so it cannot be "
			    "downgraded", mf->path, mf->revision,
			    layout_no_down(mf));
			problems++;
		}
		if (atomic && (q = offline_not_atomic(rs,
		    &plan.steps[i])) != NULL) {
			out_warnx("%s", q);
			free(q);
			problems++;
		}
	}
	if (problems > 0)
		exit(MIGCTL_EXIT_FAILED);

	memset(&o, 0, sizeof o);
	/* On a terminal the script is shown, escaped as any text from a file;
	 * to a file or a pipe it goes byte for byte, for psql. */
	tty = isatty(STDOUT_FILENO);
	o.f = tty ? open_memstream(&shown, &n_shown) : stdout;
	if (o.f == NULL)
		offline_die(MIGCTL_EXIT_FAILED, "out of memory");
	o.db = db;
	o.rs = rs;
	o.vt = offline_qualify(db->version_schema, db->version_table);
	o.atomic = atomic;
	/* FROM as rows, sorted as the check below reads the table. */
	if (n_rows > 1)
		qsort(rows, n_rows, sizeof *rows, offline_cmp_str);
	label = xstrdup(n_rows == 0 ? "base" : "");
	for (i = 0; i < n_rows; i++) {
		q = xprintf("%s%s%s", label, i ? ", " : "", rows[i]);
		free(label);
		label = q;
	}

	fprintf(o.f, "-- migctl %s --sql ", up ? "upgrade" : "downgrade");
	offline_comment_text(o.f, from);
	fputc(':', o.f);
	offline_comment_text(o.f, to);
	fprintf(o.f, ": the SQL migd would send, generated by migctl %s\n"
	    "-- from ", PACKAGE_VERSION);
	offline_comment_text(o.f, dir);
	fprintf(o.f, " without a database.\n");
	if (cf->n_dbs > 1) {
		/* Which one's settings: the version table, timeouts, schemas. */
		fputs("-- With the settings of [database ", o.f);
		offline_comment_text(o.f, db->name);
		fputs("] of ", o.f);
		offline_comment_text(o.f, cf->path);
		fputs(".\n", o.f);
	}
	fprintf(o.f, "-- %s from %s to ", up ?
	    "Upgrade" : "Downgrade", label);
	for (i = 0; i < plan.n_rows_after; i++)
		fprintf(o.f, "%s%s", i ? ", " : "", graph_id(rs->graph,
		    plan.rows_after[i]));
	fprintf(o.f, "%s: %zu migration%s%s.\n", plan.n_rows_after == 0 ?
	    "base" : "", plan.n_steps, plan.n_steps == 1 ? "" : "s",
	    atomic && plan.n_steps > 1 ? ", atomic: all in one transaction" :
	    "");
	fprintf(o.f, "-- Apply with: psql -X -v ON_ERROR_STOP=1 -f FILE\n"
	    "-- Not here: migd's history table (");
	q = offline_qualify(db->history_schema, db->history_table);
	offline_comment_text(o.f, q);
	free(q);
	fprintf(o.f, "), which is migd's own record,\n-- and its migration "
	    "lock and checks.\n\n");

	/* migd's version table, exactly as Alembic's, and the schemas the
	 * run needs (revset_plan_schemas, as migd decides them). */
	fprintf(o.f, "BEGIN;\n");
	q = sqlscan_quote_ident(db->version_schema);
	fprintf(o.f, "CREATE SCHEMA IF NOT EXISTS %s;\n", q);
	free(q);
	pk = xprintf("%s_pkc", db->version_table);
	q = sqlscan_quote_ident(pk);
	fprintf(o.f, "CREATE TABLE IF NOT EXISTS %s (version_num varchar(32) "
	    "NOT NULL, CONSTRAINT %s PRIMARY KEY (version_num));\n", o.vt, q);
	free(q);
	free(pk);
	offline_check_from(&o, rows, n_rows, label);
	free(label);
	n = revset_plan_schemas(rs, &plan, db->schemas, db->n_schemas,
	    &schemas);
	for (i = 0; i < n; i++) {
		q = sqlscan_quote_ident(schemas[i]);
		fprintf(o.f, "CREATE SCHEMA IF NOT EXISTS %s;\n", q);
		free(q);
	}
	free(schemas);
	fprintf(o.f, "COMMIT;\n");

	for (i = 0; i < plan.n_steps; i++) {
		o.first = i == 0;
		o.last = i + 1 == plan.n_steps;
		offline_step(&o, &plan.steps[i]);
	}
	if (plan.n_steps == 0) {
		fputs("\n-- Nothing to do: ", o.f);
		offline_comment_text(o.f, to);
		fputs(" is already reached.\n", o.f);
	}
	if (fflush(o.f) != 0 || ferror(o.f))
		offline_die(MIGCTL_EXIT_FAILED, "cannot write the SQL");
	if (tty) {
		fclose(o.f);
		fflush(stdout);
		out_write_escaped(STDOUT_FILENO, shown, n_shown);
		free(shown);
	}

	for (i = 0; i < n_rows; i++)
		free(rows[i]);
	free(rows);
	free(from);
	free(dir);
	free(o.vt);
	graph_plan_clear(&plan);
	revset_unref(rs);
	config_free(cf);
	return (MIGCTL_EXIT_OK);
}

/* revisions -d DIR / -c CONFIG: the graph of the files, as migd lists it. */
int
offline_revisions(const struct author_opts *ao)
{
	struct config		*cf = NULL;
	const struct config_db	*db;
	struct revset		*rs;
	json_t			*res;
	const char		*from;
	char			*dir;

	if (ao->config != NULL) {
		/* As migd loads them: its configured schemas are managed. */
		cf = offline_config(ao, &db);
		rs = offline_load(ao, db, &dir);
	} else {
		dir = author_directory(ao, &from);
		rs = author_load(dir, NULL);
	}
	res = revset_revisions_json(rs);
	if (opts.json) {
		if (author_notes != NULL)
			json_object_set(res, "notes", author_notes);
		out_json(res, JSON_INDENT(2) | JSON_SORT_KEYS);
	} else {
		out_clean(res);		/* messages from the files */
		out_revisions(res);
	}
	json_decref(res);
	revset_unref(rs);
	free(dir);
	config_free(cf);
	return (fflush(stdout) == 0 ? MIGCTL_EXIT_OK : MIGCTL_EXIT_FAILED);
}
