/*
 * Judging the state against the files, the schemas a run needs, and the
 * plan: everything decided before anything is run.
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
#include "layout.h"

static void	 migrate_plan_schemas(struct job *j);
static json_t	*migrate_step_json(struct job *j, const struct graph_step *st,
	    struct control_readcache *sql);
static json_t	*migrate_problems(struct job *j, json_t *assess);
static void	 migrate_atomic_problem(struct job *j,
	    const struct graph_step *st, json_t *p);
static enum graph_dir	 migrate_direction(struct job *j);
static int	 migrate_out_of_order(struct job *j, json_t *skipped);

/* Sets marks[i] for every applied revision; -1 when a row is unknown. */
int
migrate_applied(struct revset *rs, const struct dbstate *st, char *marks)
{
	struct graph_plan	 plan;
	char			*cause = NULL;
	size_t			 i;

	memset(marks, 0, revset_count(rs));
	memset(&plan, 0, sizeof plan);
	if (graph_plan(rs->graph, (const char *const *)st->rows, st->n_rows,
	    "base", GRAPH_DOWN, &plan, &cause) != 0) {
		free(cause);
		return (-1);
	}
	for (i = 0; i < plan.n_steps; i++)
		marks[plan.steps[i].idx] = 1;
	graph_plan_clear(&plan);
	return (0);
}

/* Describes one revision for people: id, message, file. */
json_t *
migrate_rev_json(struct revset *rs, size_t idx)
{
	const struct migfile	*mf = revset_file(rs, idx);

	return (json_pack("{s:s, s:s, s:s}", "revision", mf->revision,
	    "message", mf->message, "file", mf->path));
}

#define ASSESS_UNVERIFIED_MAX	20	/* ids listed; the count has them all */

/* Whether idx is one of the n in a. */
static int
migrate_idx_in(size_t idx, const size_t *a, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++) {
		if (a[i] == idx)
			return (1);
	}
	return (0);
}

/* What migd's history recorded of each revision, as graph_skipped reads it. */
static unsigned char *
migrate_rec(struct revset *rs, const struct dbstate *st)
{
	const struct dbrev	*dr;
	unsigned char		*rec;
	size_t			 i;

	rec = xcalloc(revset_count(rs) + 1, 1);
	for (i = 0; i < revset_count(rs); i++) {
		if ((dr = dbstate_rev(st, graph_id(rs->graph, i))) == NULL)
			continue;
		rec[i] = (dr->known ? GRAPH_REC_KNOWN : 0) |
		    (dr->ran ? GRAPH_REC_RAN : 0);
	}
	return (rec);
}

/* The revisions graph_skipped finds, from what migd's history recorded. */
static size_t
migrate_skipped_idx(struct revset *rs, const struct dbstate *st, size_t **sk)
{
	unsigned char	*rec;
	size_t		 n;

	rec = migrate_rec(rs, st);
	n = graph_skipped(rs->graph, (const char *const *)st->rows,
	    st->n_rows, rec, sk);
	free(rec);
	return (n);
}

/*
 * The revisions graph_skipped would find once the plan ran, that it does
 * not find now: applied by another tool (Alembic) above something migd ran,
 * and never recorded; running above them would make them look skipped
 * (never ran) although the version table migd plans from says they are
 * applied.  Sets *sk (caller frees) and returns how many.
 */
static size_t
migrate_skipped_by_plan(struct job *j, size_t **sk)
{
	unsigned char	*rec;
	const char	**rows;
	size_t		 n, i, k, *now, n_now;

	*sk = NULL;
	if (j->dir != GRAPH_UP || j->plan.n_steps == 0)
		return (0);
	rec = migrate_rec(j->rs, &j->st);
	n_now = graph_skipped(j->rs->graph, (const char *const *)j->st.rows,
	    j->st.n_rows, rec, &now);
	for (i = 0; i < j->plan.n_steps; i++)
		rec[j->plan.steps[i].idx] |= GRAPH_REC_KNOWN | GRAPH_REC_RAN;
	rows = xreallocarray(NULL, j->plan.n_rows_after + 1, sizeof *rows);
	for (i = 0; i < j->plan.n_rows_after; i++)
		rows[i] = graph_id(j->rs->graph, j->plan.rows_after[i]);
	n = graph_skipped(j->rs->graph, rows, j->plan.n_rows_after, rec, sk);
	for (i = k = 0; i < n; i++) {
		if (!migrate_idx_in((*sk)[i], now, n_now))
			(*sk)[k++] = (*sk)[i];
	}
	free(rows);
	free(now);
	free(rec);
	return (k);
}

/* Revisions a rebase slipped below applied ones: the version table says
 * they are applied, migd's history says they never ran (graph_skipped). */
json_t *
migrate_skipped(struct revset *rs, const struct dbstate *st)
{
	size_t		*sk, n, i;
	json_t		*a = json_array();

	n = migrate_skipped_idx(rs, st, &sk);
	for (i = 0; i < n; i++)
		json_array_append_new(a, migrate_rev_json(rs, sk[i]));
	free(sk);
	return (a);
}

/* Why nothing can be planned while the version table is missing and the
 * history beside it says revisions were applied (job_history_alone), or
 * NULL. */
static char *
migrate_version_missing(const struct dbstate *st)
{
	size_t	 i, n = 0;

	for (i = 0; i < st->n_revs; i++)
		n += st->revs[i].known;
	if (n == 0)
		return (NULL);
	return (xprintf("the version table does not exist, but the history "
	    "records %zu applied revision%s: restore the table (or the "
	    "version_table setting), or 'migctl stamp REV'", n, n == 1 ? "" :
	    "s"));
}

/*
 * Adds the state of the database against the files to o: current rows,
 * pending count, drift, dirty, unknown and skipped revisions, why the table
 * is inconsistent, and one word for all; beside them, the applied revisions
 * with no checksum to compare that are not skipped (the first
 * ASSESS_UNVERIFIED_MAX, and how many), which 'migctl adopt' records.
 * With invalid, the files have problems and rs is the last valid set (or
 * NULL): the rows are described from it, but nothing is judged against
 * it, and a row it does not define is not "ahead": the files may be.
 */
void
migrate_assess(struct revset *rs, int invalid, const struct dbstate *st,
    json_t *o)
{
	struct graph_plan	 plan;
	json_t			*current, *drift, *dirty, *unknown, *unverified;
	json_t			*skipped;
	const struct dbrev	*dr;
	const struct migfile	*mf;
	const char		*state;
	char			*marks = NULL, *skip, *cause = NULL, *why = NULL;
	size_t			 i, n, n_sk, *sk;
	ssize_t			 idx;
	long			 pending = -1, n_unverified = -1;

	current = json_array();
	drift = json_array();
	dirty = json_array();
	unknown = json_array();
	unverified = json_array();
	skipped = json_array();
	for (i = 0; i < st->n_rows; i++) {
		idx = rs ? graph_find(rs->graph, st->rows[i]) : -1;
		if (idx >= 0)
			json_array_append_new(current, migrate_rev_json(rs,
			    (size_t)idx));
		else {
			json_array_append_new(current, json_pack("{s:s}",
			    "revision", st->rows[i]));
			if (!invalid)
				json_array_append_new(unknown, json_string(
				    st->rows[i]));
		}
	}
	for (i = 0; i < st->n_revs; i++) {
		if (st->revs[i].dirty)
			json_array_append_new(dirty, json_string(
			    st->revs[i].revision));
	}
	if (rs != NULL && !invalid && json_array_size(unknown) == 0) {
		n = revset_count(rs);
		memset(&plan, 0, sizeof plan);
		if (graph_plan(rs->graph, (const char *const *)st->rows,
		    st->n_rows, "heads", GRAPH_UP, &plan, &cause) == 0)
			pending = (long)plan.n_steps;
		else {
			/* Not "nothing pending": nothing can be planned. */
			why = cause;
			cause = NULL;
		}
		free(cause);
		graph_plan_clear(&plan);
		if (why == NULL && !st->has_version &&
		    (why = migrate_version_missing(st)) != NULL)
			pending = -1;
		/* A skipped revision never ran: it is reported as that, not
		 * as unverified (adopt would record it as applied). */
		skip = xcalloc(n ? n : 1, 1);
		if (why == NULL) {
			n_sk = migrate_skipped_idx(rs, st, &sk);
			for (i = 0; i < n_sk; i++) {
				skip[sk[i]] = 1;
				json_array_append_new(skipped,
				    migrate_rev_json(rs, sk[i]));
			}
			free(sk);
		}
		marks = xmalloc(n ? n : 1);
		migrate_applied(rs, st, marks);
		n_unverified = 0;
		for (i = 0; i < n; i++) {
			mf = revset_file(rs, i);
			if (!marks[i] || skip[i])
				continue;
			if ((dr = dbstate_rev(st, mf->revision)) == NULL ||
			    dr->checksum == NULL) {
				/* Applied by another tool: nothing to compare. */
				if (n_unverified++ < ASSESS_UNVERIFIED_MAX)
					json_array_append_new(unverified,
					    json_string(mf->revision));
				continue;
			}
			if (strcmp(dr->checksum, mf->checksum) != 0) {
				json_array_append_new(drift, json_pack(
				    "{s:s, s:s, s:s, s:s}", "revision",
				    mf->revision, "file", mf->path,
				    "applied_checksum", dr->checksum,
				    "file_checksum", mf->checksum));
			}
		}
		free(marks);
		free(skip);
	}
	if (rs == NULL || invalid)
		state = "invalid_migrations";
	else if (json_array_size(unknown) != 0)
		state = "ahead";
	else if (why != NULL)
		state = "inconsistent";
	else if (json_array_size(dirty) != 0)
		state = "dirty";
	else if (json_array_size(skipped) != 0)
		state = "skipped";
	else if (json_array_size(drift) != 0)
		state = "drift";
	else if (pending > 0)
		state = "pending";
	else
		state = "up_to_date";
	json_object_set_new(o, "state", json_string(state));
	json_object_set_new(o, "current", current);
	json_object_set_new(o, "pending", pending >= 0 ?
	    json_integer(pending) : json_null());
	json_object_set_new(o, "drift", drift);
	json_object_set_new(o, "dirty", dirty);
	json_object_set_new(o, "unknown", unknown);
	json_object_set_new(o, "skipped", skipped);
	json_object_set_new(o, "inconsistent", why != NULL ?
	    json_string(why) : json_null());
	free(why);
	json_object_set_new(o, "unverified", unverified);
	json_object_set_new(o, "unverified_count", n_unverified >= 0 ?
	    json_integer(n_unverified) : json_null());
	if (n_unverified > 0)
		json_object_set_new(o, "unverified_hint", json_sprintf("%ld "
		    "applied revision%s no recorded checksum (applied by "
		    "another tool, or stamped), so an edit of %s file is not "
		    "detected: run 'migctl adopt'", n_unverified,
		    n_unverified == 1 ? " has" : "s have", n_unverified == 1 ?
		    "its" : "their"));
}

/* The run that waits for a slot of max_connections_total, if it does:
 * status says since when and how many of the cap are in use. */
static void
migrate_status_slot(struct database *db, json_t *res)
{
	struct job	*run = TAILQ_FIRST(&db->engine->queue);
	int		 used, cap;

	if (run == NULL || run->waiter == NULL || run->pc != NULL ||
	    !run->slot_poll || !pool_budget_queued(db->pool, &used, &cap))
		return;
	json_object_set_new(res, "waiting_for_slot", json_pack("{s:i, s:i, "
	    "s:o}", "in_use", used, "max_connections_total", cap, "seconds",
	    rpc_duration(run->slot_since > 0 ? migd_now() - run->slot_since :
	    0)));
}

/* When the kept state was read: its wall-clock time and its age. */
static void
migrate_status_age(struct engine *e, json_t *res)
{
	struct tm	 tm;
	time_t		 t = (time_t)e->last_db_at;
	char		 at[32];
	double		 age = migrate_wall() - e->last_db_at;

	gmtime_r(&t, &tm);
	strftime(at, sizeof at, "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_object_set_new(res, "checked_at", json_string(at));
	json_object_set_new(res, "age_ms", rpc_duration(age > 0 ? age *
	    1000.0 : 0.0));
}

/*
 * status's answer for db: from live (the state read now, on a connection
 * the asker holds: self), else, when stale is asked for, from the state
 * kept from the last read or run (saying when), else what is known
 * without the database.
 */
static json_t *
migrate_status_result(struct database *db, const struct dbstate *live,
    int stale)
{
	struct engine	*e = db->engine;
	json_t		*res;

	res = json_pack("{s:{s:s, s:I, s:o, s:i}, s:o}",
	    "daemon", "version", PACKAGE_VERSION, "pid", (json_int_t)getpid(),
	    "uptime", rpc_duration(migd_now() - migd.started), "protocol",
	    MIGD_PROTOCOL_VERSION, "migrations", migrate_files_status(db));
	json_object_set_new(res, "database", database_status(db,
	    live != NULL));
	if (live != NULL)
		migrate_keep_state(e, live);
	if (!e->files->loaded) {
		/* The first load is still running: nothing to judge by. */
		json_object_set_new(res, "state", json_string("loading"));
	} else if (live != NULL) {
		migrate_assess(e->files->rs, e->files->errors != NULL, live, res);
	} else if (stale && e->have_last_db) {
		migrate_assess(e->files->rs, e->files->errors != NULL, &e->last_db, res);
		json_object_set_new(res, "stale", json_true());
		migrate_status_age(e, res);
	} else if (pool_any_connection(db->pool) == NULL &&
	    !(pool_on_demand(db->pool) && pool_last_error(db->pool) == NULL)) {
		json_object_set_new(res, "state", json_string("no_database"));
	} else
		json_object_set_new(res, "state", json_string("unknown"));
	json_object_set_new(res, "running", json_boolean(migrate_busy(db)));
	migrate_status_slot(db, res);
	return (res);
}

/* The status reply; stale when it comes from the cache.  A change of the
 * files is loaded off the loop; an answer without a connection is from the
 * files as loaded (migrations.loading says a load is under way). */
void
migrate_status_reply(struct job *j, int stale)
{
	if (j->pc == NULL)
		migrate_files_kick(j->e);
	j->result = migrate_status_result(j->db, j->pc != NULL ? &j->st :
	    NULL, stale);
}

/* status from the kept state alone, for status --all while db has no
 * connection up: NULL when none is kept (or the files are loading). */
json_t *
migrate_status_cached(struct database *db)
{
	if (!db->engine->files->loaded || !db->engine->have_last_db)
		return (NULL);
	migrate_files_kick(db->engine);
	return (migrate_status_result(db, NULL, 1));
}

/* A text[] literal for a parameter: {"a","b"} with quotes escaped. */
char *
migrate_text_array(char **v, size_t n)
{
	char		*s = xstrdup("{"), *t;
	const char	*p;
	size_t		 i, len;

	for (i = 0; i < n; i++) {
		len = strlen(s);
		t = xmalloc(len + strlen(v[i]) * 2 + 4);
		memcpy(t, s, len);
		if (i > 0)
			t[len++] = ',';
		t[len++] = '"';
		for (p = v[i]; *p != '\0'; p++) {
			if (*p == '"' || *p == '\\')
				t[len++] = '\\';
			t[len++] = *p;
		}
		t[len++] = '"';
		t[len] = '\0';
		free(s);
		s = t;
	}
	t = xprintf("%s}", s);
	free(s);
	return (t);
}

/* The schemas a run must find: configured, and named by its steps' SQL,
 * less those a step creates itself (revset_plan_schemas, which `migctl
 * upgrade --sql` shares). */
static void
migrate_plan_schemas(struct job *j)
{
	const struct config_db	*cf = j->db->cf;
	const char		**names;
	size_t			 n, i;

	n = revset_plan_schemas(j->rs, &j->plan, cf->schemas, cf->n_schemas,
	    &names);
	for (i = 0; i < n; i++) {
		j->ensure = xreallocarray(j->ensure, j->n_ensure + 1,
		    sizeof *j->ensure);
		j->ensure[j->n_ensure++] = xstrdup(names[i]);
	}
	free(names);
}

/* Where to cut s at most max bytes in without splitting a character. */
static size_t
migrate_utf8_cut(const char *s, size_t max)
{
	while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80)
		max--;
	return (max);
}

/*
 * A step's SQL for the plan reply, capped: a section longer than
 * MIGRATE_PLAN_SQL_MAX shows each statement longer than
 * MIGRATE_PLAN_STMT_MAX cut with a note of its size and line, and no more
 * than about MIGRATE_PLAN_SQL_MAX in all ("sql_truncated", "sql_bytes"), so
 * a 50 MB file of INSERTs makes no 50 MB reply.  The file has it all.
 */
static void
migrate_plan_sql(json_t *o, const char *text, const struct sqlscan *sc)
{
	const struct sqlscan_stmt	*st;
	FILE				*f;
	char				*s = NULL;
	size_t				 len = strlen(text), at = 0, i, n, cut;
	size_t				 size = 0;

	if (len <= MIGRATE_PLAN_SQL_MAX) {
		json_object_set_new(o, "sql", json_string(text));
		return;
	}
	if ((f = open_memstream(&s, &size)) == NULL)
		fatal("open_memstream");
	for (i = 0; i < sc->n_stmts && (size_t)ftell(f) <
	    MIGRATE_PLAN_SQL_MAX; i++) {
		st = &sc->stmts[i];
		/* What lies before it (comments, blank lines), then it. */
		n = st->offset - at;
		cut = migrate_utf8_cut(text + at, n > MIGRATE_PLAN_STMT_MAX ?
		    MIGRATE_PLAN_STMT_MAX : n);
		fwrite(text + at, 1, cut, f);
		if (st->len > MIGRATE_PLAN_STMT_MAX) {
			cut = migrate_utf8_cut(text + st->offset,
			    MIGRATE_PLAN_STMT_MAX);
			fwrite(text + st->offset, 1, cut, f);
			fprintf(f, "\n-- [migd: this statement (line %d) has "
			    "%zu bytes; the first %zu are shown here, the file "
			    "has it whole]\n", st->line, st->len, cut);
		} else
			fwrite(text + st->offset, 1, st->len, f);
		at = st->offset + st->len;
	}
	if (sc->n_stmts == 0) {
		cut = migrate_utf8_cut(text, MIGRATE_PLAN_SQL_MAX);
		fwrite(text, 1, cut, f);
		fprintf(f, "\n-- [migd: %zu more bytes not shown in this "
		    "reply; the file has them]\n", len - cut);
	} else if (i < sc->n_stmts)
		fprintf(f, "\n-- [migd: %zu more statement%s (%zu bytes) not "
		    "shown in this reply; the file has them]\n",
		    sc->n_stmts - i, sc->n_stmts - i == 1 ? "" : "s",
		    len - at);
	else
		fwrite(text + at, 1, migrate_utf8_cut(text + at, len - at >
		    MIGRATE_PLAN_STMT_MAX ? MIGRATE_PLAN_STMT_MAX : len - at),
		    f);
	fclose(f);
	json_object_set_new(o, "sql", json_string(s));
	json_object_set_new(o, "sql_truncated", json_true());
	json_object_set_new(o, "sql_bytes", json_integer((json_int_t)len));
	free(s);
}

/*
 * One step for the plan's output, with why it is not transactional, and
 * with its SQL when sql is given: to admins, and to readers who could read
 * the file themselves (a 0600 file may hold a password).
 */
static json_t *
migrate_step_json(struct job *j, const struct graph_step *st,
    struct control_readcache *sql)
{
	const struct migfile		*mf = revset_file(j->rs, st->idx);
	const struct sqlscan_stmt	*nt;
	const struct sqlscan		*sc;
	int				 up = st->dir == GRAPH_UP, tx, *lines;
	json_t				*o, *del, *ins, *a;
	size_t				 i, n;
	char				*why = NULL;

	tx = revset_transactional(j->rs, st->idx, up);
	o = migrate_rev_json(j->rs, st->idx);
	json_object_set_new(o, "file", json_string(migfile_path(mf, up)));
	json_object_set_new(o, "direction", json_string(up ? "up" : "down"));
	json_object_set_new(o, "transactional", json_boolean(tx));
	if (!tx) {
		nt = revset_no_tx_stmt(j->rs, st->idx, up);
		json_object_set_new(o, "why_not_transactional", nt ?
		    json_sprintf("%s at %s:%d", nt->what, migfile_path(mf, up),
		    nt->line) :
		    json_sprintf("declared %s", layout_no_tx(mf) ?
		    layout_no_tx(mf) : "'transaction: none'"));
	}
	sc = revset_section(j->rs, st->idx, up);
	json_object_set_new(o, "statements", json_integer((json_int_t)
	    sc->n_stmts));
	if (tx && (n = revset_segments(sc, NULL)) > 1) {
		/* The file's own COMMITs split it: say where. */
		lines = xcalloc(sc->n_stmts, sizeof *lines);
		revset_segments(sc, lines);
		a = json_array();
		for (i = 0; i < n; i++)
			json_array_append_new(a, json_integer(lines[i]));
		json_object_set_new(o, "transactions", json_pack("{s:I, s:o}",
		    "count", (json_int_t)n, "first_lines", a));
		free(lines);
	}
	if (sc->unparsed)
		json_object_set_new(o, "unanalyzed", json_sprintf("PostgreSQL "
		    "%d's parser cannot read this section (%s), so migd left "
		    "its SQL to the server: the schemas it names are not "
		    "created beforehand, statements that cannot run in a "
		    "transaction are not detected (declare 'transaction: "
		    "none' if it has any), and it is not linted",
		    sqlscan_parser_version() / 10000, sc->parse_error));
	json_object_set_new(o, "has_down", json_boolean(mf->down != NULL));
	del = json_array();
	for (i = 0; i < st->n_row_del; i++)
		json_array_append_new(del, json_string(graph_id(j->rs->graph,
		    st->row_del[i])));
	ins = json_array();
	for (i = 0; i < st->n_row_ins; i++)
		json_array_append_new(ins, json_string(graph_id(j->rs->graph,
		    st->row_ins[i])));
	json_object_set_new(o, "version_delete", del);
	json_object_set_new(o, "version_insert", ins);
	if (sql != NULL && j->req != NULL && !control_may_read(j->req->client,
	    migfile_path(mf, up), sql, &why)) {
		json_object_set_new(o, "sql", json_null());
		json_object_set_new(o, "sql_hidden", json_string(why));
		free(why);
	} else if (sql != NULL)
		migrate_plan_sql(o, up ? mf->up : (mf->down ? mf->down : ""),
		    sc);
	return (o);
}

/* Why a step cannot be part of an atomic run: it cannot run in a
 * transaction, or its own COMMITs split it. */
static void
migrate_atomic_problem(struct job *j, const struct graph_step *st, json_t *p)
{
	const struct migfile	*mf = revset_file(j->rs, st->idx);
	char			*why;

	if ((why = revset_not_atomic(j->rs, st->idx, st->dir == GRAPH_UP)) ==
	    NULL)
		return;
	json_array_append_new(p, json_pack("{s:s, s:s, s:o}", "kind",
	    "not_atomic", "revision", mf->revision, "message", json_sprintf(
	    "%s: revision %s cannot be part of an atomic run: %s; run up to "
	    "the revision before it atomically, then %s on its own, then the "
	    "rest", migfile_path(mf, st->dir == GRAPH_UP), mf->revision, why,
	    mf->revision)));
	free(why);
}

/* Why the plan may not run: no down section, dirty, drift, ahead. */
static json_t *
migrate_problems(struct job *j, json_t *assess)
{
	const struct migfile	*mf;
	const struct sqlscan	*sc;
	json_t			*p = json_array(), *v;
	size_t			 i, n_sk, *sk;
	ssize_t			 idx;
	char			*why = NULL;
	json_t			*msg;

	for (i = 0; i < json_array_size(json_object_get(assess, "dirty"));
	    i++) {
		v = json_array_get(json_object_get(assess, "dirty"), i);
		idx = graph_find(j->rs->graph, json_string_value(v));
		if (idx < 0)
			/* Its file taken out of the code (job_resolve). */
			msg = json_sprintf("revision %s is dirty: its migration "
			    "stopped part-way, and no file defines it any "
			    "more; check the database, undo what it did, then "
			    "run 'migctl %sresolve %s unapplied'",
			    json_string_value(v), j->db->cli,
			    json_string_value(v));
		else
			msg = json_sprintf("revision %s is dirty: %s stopped "
			    "part-way; check the database, then run 'migctl "
			    "%sresolve %s applied' or 'unapplied'",
			    json_string_value(v), revset_transactional(j->rs,
			    (size_t)idx, 1) ? "its migration, split by its own "
			    "COMMITs, committed some of its transactions and" :
			    "a non-transactional migration", j->db->cli,
			    json_string_value(v));
		json_array_append_new(p, json_pack("{s:s, s:O, s:o}", "kind",
		    "dirty", "revision", v, "message", msg));
	}
	if (!j->allow_drift) {
		for (i = 0; i < json_array_size(json_object_get(assess,
		    "drift")); i++) {
			v = json_array_get(json_object_get(assess, "drift"), i);
			json_array_append_new(p, json_pack("{s:s, s:O, s:o}",
			    "kind", "checksum_mismatch", "revision",
			    json_object_get(v, "revision"), "message",
			    json_sprintf("%s changed since revision %s was "
			    "applied (checksum %.12s, now %.12s): restore it, "
			    "run 'migctl accept %s' if the edit was meant, or "
			    "override for this run with --allow-drift",
			    json_string_value(json_object_get(v, "file")),
			    json_string_value(json_object_get(v, "revision")),
			    json_string_value(json_object_get(v,
			    "applied_checksum")),
			    json_string_value(json_object_get(v,
			    "file_checksum")), json_string_value(
			    json_object_get(v, "revision")))));
		}
	}
	for (i = 0; !j->apply_skipped && i < json_array_size(json_object_get(
	    assess, "skipped")); i++) {
		v = json_object_get(json_array_get(json_object_get(assess,
		    "skipped"), i), "revision");
		json_array_append_new(p, json_pack("{s:s, s:O, s:o}", "kind",
		    "skipped_revisions", "revision", v, "message", json_sprintf(
		    "%s: revision %s never ran, but the version table is past "
		    "it (it was inserted below applied revisions, e.g. by a "
		    "rebase): run it now, out of order, with 'migctl %supgrade "
		    "--apply-skipped'; or, if its SQL already ran by other "
		    "means, say so with 'migctl %sresolve %s applied'",
		    json_string_value(json_object_get(json_array_get(
		    json_object_get(assess, "skipped"), i), "file")),
		    json_string_value(v), j->db->cli, j->db->cli,
		    json_string_value(v))));
	}
	if (!j->st.has_version && (why = migrate_version_missing(&j->st)) !=
	    NULL && (j->op == MIGRATE_UPGRADE || j->op == MIGRATE_DOWNGRADE)) {
		/* What a run is refused at its start (job_history_alone),
		 * for the dry run and plan. */
		json_array_append_new(p, json_pack("{s:s, s:s}", "kind",
		    "version_table_missing", "message", why));
	}
	free(why);
	n_sk = migrate_skipped_by_plan(j, &sk);
	for (i = 0; i < n_sk; i++) {
		mf = revset_file(j->rs, sk[i]);
		json_array_append_new(p, json_pack("{s:s, s:s, s:o}", "kind",
		    "unadopted_revisions", "revision", mf->revision, "message",
		    json_sprintf("%s: revision %s was applied by another tool "
		    "(such as Alembic) after migd ran what is below it: the "
		    "version table implies it, migd's history does not have "
		    "it, and running above it would make it look skipped "
		    "(never ran); record it first with 'migctl adopt', then "
		    "run again", mf->path, mf->revision)));
	}
	free(sk);
	for (i = 0; i < j->plan.n_steps; i++) {
		mf = revset_file(j->rs, j->plan.steps[i].idx);
		sc = revset_section(j->rs, j->plan.steps[i].idx,
		    j->plan.steps[i].dir == GRAPH_UP);
		if (sc->unparsed && !revset_newer_sql(PQserverVersion(
		    pool_conn_pg(j->pc)))) {
			/* Not newer SQL: the server is the parser's version. */
			json_array_append_new(p, json_pack("{s:s, s:s, s:s}",
			    "kind", "invalid_sql", "revision", mf->revision,
			    "message", sc->parse_error));
		}
		if (j->atomic)
			migrate_atomic_problem(j, &j->plan.steps[i], p);
		if (mf->unfinished != NULL)
			json_array_append_new(p, json_pack("{s:s, s:s, s:o}",
			    "kind", "unfinished", "revision", mf->revision,
			    "message", json_sprintf("%s:%d: revision %s is "
			    "unfinished (%s): %s", mf->path,
			    mf->unfinished_line, mf->revision,
			    mf->unfinished, layout_unfinished_fix(mf))));
		if (j->plan.steps[i].dir == GRAPH_DOWN && mf->down == NULL) {
			json_array_append_new(p, json_pack("{s:s, s:s, s:o}",
			    "kind", "no_down", "revision", mf->revision,
			    "message", json_sprintf("%s: revision %s has %s, "
			    "so it cannot be downgraded", mf->path,
			    mf->revision, layout_no_down(mf))));
		}
	}
	return (p);
}

/* The direction of a plan request: given, or guessed from the target. */
static enum graph_dir
migrate_direction(struct job *j)
{
	size_t	 idx;
	char	*marks;
	int	 applied = 0;

	if (j->op == MIGRATE_UPGRADE)
		return (GRAPH_UP);
	if (j->op == MIGRATE_DOWNGRADE)
		return (GRAPH_DOWN);
	if (strcmp(j->target, "base") == 0 || j->target[0] == '-')
		return (GRAPH_DOWN);
	if (strcmp(j->target, "head") == 0 || strcmp(j->target, "heads") == 0 ||
	    j->target[0] == '+')
		return (GRAPH_UP);
	if (graph_lookup(j->rs->graph, j->target, &idx, NULL) != 0)
		return (GRAPH_UP);
	/* An applied revision that is not current means going down to it. */
	marks = xmalloc(revset_count(j->rs));
	if (migrate_applied(j->rs, &j->st, marks) == 0)
		applied = marks[idx];
	free(marks);
	return (applied ? GRAPH_DOWN : GRAPH_UP);
}


/* apply_skipped: the skipped revisions run first, in graph order, each
 * without a change to the version table (it is past them already). */
static int
migrate_out_of_order(struct job *j, json_t *skipped)
{
	struct graph_step	*steps;
	size_t			 n = json_array_size(skipped), i;
	json_t			*v;

	if (j->dir != GRAPH_UP) {
		job_fail(j, MIGD_ERR_INVALID_PARAMS, "invalid_params", NULL,
		    "apply_skipped goes with upgrades only: a downgrade "
		    "cannot revert what never ran; run 'migctl upgrade "
		    "--apply-skipped' first");
		return (-1);
	}
	if (n == 0)
		return (0);
	steps = xcalloc(n + j->plan.n_steps, sizeof *steps);
	json_array_foreach(skipped, i, v) {
		steps[i].idx = (size_t)graph_find(j->rs->graph,
		    json_string_value(json_object_get(v, "revision")));
		steps[i].dir = GRAPH_UP;
	}
	if (j->plan.n_steps > 0)
		memcpy(steps + n, j->plan.steps, j->plan.n_steps *
		    sizeof *steps);
	free(j->plan.steps);
	j->plan.steps = steps;
	j->plan.n_steps += n;
	j->out_of_order = n;
	return (0);
}

/* Makes and checks the plan; fails the job when it cannot run. */
void
job_plan(struct job *j)
{
	json_t	*assess, *problems;
	char	*cause = NULL;
	char	*resolved;

	/* LABEL@head names a revision: resolve it before anything reads it. */
	if (revset_target(j->rs, j->target, &resolved, &cause) != 0) {
		job_fail(j, MIGD_ERR_MIGRATIONS, "plan_error", NULL, "%s",
		    cause);
		free(cause);
		return;
	}
	free(j->target);
	j->target = resolved;
	j->dir = migrate_direction(j);
	assess = json_object();
	migrate_assess(j->rs, 0, &j->st, assess);
	if (json_array_size(json_object_get(assess, "unknown")) != 0) {
		/* No file at all: more likely the wrong directory. */
		job_fail(j, MIGD_ERR_STATE, "ahead", json_pack("{s:O}",
		    "unknown", json_object_get(assess, "unknown")),
		    "the version table names %s, which no migration file "
		    "defines: %s%s%s", json_string_value(json_array_get(
		    json_object_get(assess, "unknown"), 0)),
		    revset_count(j->rs) == 0 ? "the migrations directory " :
		    "the database is ahead of this code; deploy the newer "
		    "migrations first", revset_count(j->rs) == 0 ?
		    j->db->cf->directory : "", revset_count(j->rs) == 0 ?
		    " holds no revision at all; check [migrations] directory "
		    "(and format), or deploy the migrations there" : "");
		json_decref(assess);
		return;
	}
	if (graph_plan(j->rs->graph, (const char *const *)j->st.rows,
	    j->st.n_rows, j->target, j->dir, &j->plan, &cause) != 0) {
		job_fail(j, MIGD_ERR_MIGRATIONS, "plan_error", NULL, "%s",
		    cause);
		free(cause);
		json_decref(assess);
		return;
	}
	if (j->apply_skipped && migrate_out_of_order(j, json_object_get(assess,
	    "skipped")) != 0) {
		json_decref(assess);
		return;
	}
	problems = migrate_problems(j, assess);
	json_decref(assess);
	planlint(j, problems);
}

/*
 * The plan's problems, with lint's (planlint, once it has the catalog's
 * context): a run with any fails, else the schemas are looked at next.
 */
void
job_plan_checked(struct job *j, json_t *problems, json_t *lint)
{
	json_t	*first;
	char	*list, *ht, *sql, *more;
	const char *params[1], *kind;

	if (json_array_size(problems) != 0 && j->op != MIGRATE_PLAN &&
	    !j->dry_run) {
		first = json_array_get(problems, 0);
		more = migrate_more(json_array_size(problems));
		kind = json_string_value(json_object_get(first, "kind"));
		job_fail(j, MIGD_ERR_STATE, strcmp(kind, "no_down") == 0 ||
		    strcmp(kind, "unfinished") == 0 ? "plan_error" : kind,
		    json_pack("{s:O}", "problems", problems),
		    "%s%s", json_string_value(json_object_get(first,
		    "message")), more);
		free(more);
		json_decref(problems);
		json_decref(lint);
		return;
	}
	j->result = json_pack("{s:o}", "problems", problems);
	if (lint != NULL)
		json_object_set_new(j->result, "lint", lint);
	migrate_plan_schemas(j);
	list = migrate_text_array(j->ensure, j->n_ensure);
	params[0] = list;
	/* With the schemas migd created for earlier runs: it manages them;
	 * and whether an event trigger may run code in the steps' DDL
	 * (run_batch). */
	ht = migrate_qualify(j->db->cf->history_schema,
	    j->db->cf->history_table);
	sql = xprintf("SELECT 'e'::text, nspname::text FROM "
	    "pg_catalog.pg_namespace WHERE nspname = ANY($1::text[])%s%s%s "
	    "UNION ALL SELECT 'v'::text, ''::text WHERE EXISTS (SELECT FROM "
	    "pg_catalog.pg_event_trigger WHERE evtenabled <> 'D')",
	    j->st.has_history ? " UNION SELECT 'm'::text, s FROM " : "",
	    j->st.has_history ? ht : "", j->st.has_history ?
	    ", pg_catalog.unnest(schemas_created) s" : "");
	job_query(j, sql, 1, params, run_schemas);
	free(sql);
	free(ht);
	free(list);
}

/* The rows of the version table as ids. */
json_t *
migrate_rows_json(char **rows, size_t n)
{
	json_t	*a = json_array();
	size_t	 i;

	for (i = 0; i < n; i++)
		json_array_append_new(a, json_string(rows[i]));
	return (a);
}

/* What plans and runs both report: the target, the way, from where to where. */
void
migrate_plan_ends(struct job *j)
{
	json_t	*to;
	size_t	 i;

	to = json_array();
	for (i = 0; i < j->plan.n_rows_after; i++)
		json_array_append_new(to, json_string(graph_id(j->rs->graph,
		    j->plan.rows_after[i])));
	json_object_set_new(j->result, "target", json_string(j->target));
	json_object_set_new(j->result, "direction", json_string(j->dir ==
	    GRAPH_UP ? "up" : "down"));
	json_object_set_new(j->result, "from", migrate_rows_json(j->st.rows,
	    j->st.n_rows));
	json_object_set_new(j->result, "to", to);
}

/* The plan as the reply of plan and --dry-run. */
void
migrate_plan_result(struct job *j, json_t *missing)
{
	struct control_readcache	 sql;
	json_t				*steps;
	size_t				 i;

	memset(&sql, 0, sizeof sql);
	steps = json_array();
	for (i = 0; i < j->plan.n_steps; i++)
		json_array_append_new(steps, migrate_step_json(j,
		    &j->plan.steps[i], &sql));
	control_readcache_clear(&sql);
	migrate_plan_ends(j);
	json_object_set_new(j->result, "steps", steps);
	json_object_set_new(j->result, "schemas_to_create", missing);
	json_object_set_new(j->result, "runnable", json_boolean(
	    json_array_size(json_object_get(j->result, "problems")) == 0));
	json_object_set_new(j->result, "atomic", json_boolean(j->atomic));
}
