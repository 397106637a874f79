/*
 * Loading the migrations directory into a revset: every file parsed, the
 * graph checked, every section parsed by PostgreSQL's own parser, and the
 * rules that need no database checked.  Any problem anywhere is reported as
 * FILE:LINE and the whole set is refused: nothing runs from a broken set.
 */
#include <stdlib.h>
#include <string.h>

#include "layout.h"
#include "migd.h"
#include "revset.h"

/* Why a schema is managed by migd (so nothing it runs may drop it), or NULL. */
static const char *
revset_managed(const struct revset_ctx *ctx, const char *name)
{
	size_t	 i;

	if (ctx == NULL)
		return (NULL);
	for (i = 0; i < ctx->n_schemas; i++) {
		if (strcmp(ctx->schemas[i], name) == 0)
			return ("it is configured in [migrations] schemas");
	}
	if ((ctx->version_schema != NULL && strcmp(ctx->version_schema,
	    name) == 0) || (ctx->history_schema != NULL &&
	    strcmp(ctx->history_schema, name) == 0))
		return ("it holds migd's version and history tables");
	return (NULL);
}

/* Two-phase commit has no place in a migration, whatever the mode. */
static int
revset_two_phase(const char *path, const struct sqlscan_stmt *st,
    struct errlist *errs)
{
	if (!(st->flags & SQLSCAN_TX_PREPARED))
		return (0);
	errlist_add(errs, "%s:%d: %s inside a migration: two-phase commit "
	    "cannot be part of a migration; remove it", path, st->line,
	    st->what);
	return (1);
}

/* Transaction control in a section migd wraps in transactions: BEGIN and
 * COMMIT [AND CHAIN] mark segments; what would undo or escape them is refused. */
static void
revset_check_segments(const char *path, const struct sqlscan *sc,
    struct errlist *errs)
{
	const struct sqlscan_stmt	*st;
	size_t				 i;
	int				 begun = 0, open = 0;

	for (i = 0; i < sc->n_stmts; i++) {
		st = &sc->stmts[i];
		if (revset_two_phase(path, st, errs))
			continue;
		if (st->flags & SQLSCAN_TX_ROLLBACK)
			errlist_add(errs, "%s:%d: %s inside a migration would "
			    "throw its work away while migd records it as "
			    "applied; remove it (a failing statement rolls the "
			    "migration back by itself), or use SAVEPOINT and "
			    "ROLLBACK TO", path, st->line, st->what);
		else if (st->flags & SQLSCAN_TX_BEGIN) {
			if (open || begun)
				errlist_add(errs, "%s:%d: %s while a transaction "
				    "is already open (since line %d): "
				    "PostgreSQL would ignore it; remove it, or "
				    "end the transaction first with COMMIT",
				    path, st->line, st->what, begun ? begun :
				    open);
			else
				begun = st->line;
		} else if (st->flags & SQLSCAN_TX_COMMIT) {
			open = 0;
			begun = 0;
		} else if (!open)
			open = st->line;	/* where migd's BEGIN goes */
	}
}

/* Transaction control in a section run statement by statement: passed to
 * the server as written, so it must make sense there. */
static void
revset_check_bare(const char *path, const struct sqlscan *sc,
    struct errlist *errs)
{
	const struct sqlscan_stmt	*st;
	size_t				 i;
	int				 open = 0;

	for (i = 0; i < sc->n_stmts; i++) {
		st = &sc->stmts[i];
		if (revset_two_phase(path, st, errs))
			continue;
		if (st->flags & SQLSCAN_TX_BEGIN) {
			if (open)
				errlist_add(errs, "%s:%d: %s while the "
				    "transaction begun at line %d is open: "
				    "PostgreSQL would ignore it; remove it, or "
				    "COMMIT first", path, st->line,
				    st->what, open);
			else
				open = st->line;
		} else if (st->flags & SQLSCAN_TX_ROLLBACK) {
			errlist_add(errs, "%s:%d: %s inside a migration would "
			    "throw work away while migd records it as "
			    "applied; remove it", path, st->line, st->what);
			open = 0;
		} else if (st->flags & SQLSCAN_TX_COMMIT) {
			if (!open && (st->flags & SQLSCAN_TX_CHAIN))
				errlist_add(errs, "%s:%d: %s with no "
				    "transaction open: in a non-transactional "
				    "migration each statement commits by "
				    "itself; add BEGIN before the statements "
				    "it should end", path, st->line,
				    st->what);
			if (!(st->flags & SQLSCAN_TX_CHAIN))
				open = 0;
		} else if ((st->flags & SQLSCAN_SAVEPOINT) && !open)
			errlist_add(errs, "%s:%d: %s with no transaction open: "
			    "in a non-transactional migration each statement "
			    "commits by itself; add BEGIN before it",
			    path, st->line, st->what);
		else if ((st->flags & SQLSCAN_NO_TX) && open)
			errlist_add(errs, "%s:%d: %s cannot run inside the "
			    "transaction begun at line %d: COMMIT before it",
			    path, st->line, st->what, open);
	}
	if (open)
		errlist_add(errs, "%s:%d: the transaction begun here is never "
		    "committed: add COMMIT at the end of the section",
		    path, open);
}

/* Which schemas a section may drop: never a managed one; in a down
 * section, only one its own up section creates with a plain CREATE SCHEMA. */
static void
revset_check_drops(const char *path, const struct sqlscan *sc,
    const struct sqlscan *up, const struct revset_ctx *ctx,
    struct errlist *errs)
{
	const struct sqlscan_drop	*d;
	const char			*why;
	size_t				 i, k;
	int				 created;

	for (i = 0; i < sc->n_drops; i++) {
		d = &sc->drops[i];
		if ((why = revset_managed(ctx, d->name)) != NULL) {
			errlist_add(errs, "%s:%d: %s %s: the schema is managed "
			    "by migd (%s), and migd never drops or renames a "
			    "schema it manages, so that no data is lost%s",
			    path, d->line, d->what, d->name, why,
			    strcmp(d->what, "DROP SCHEMA") == 0 ?
			    "; drop the objects instead" : "");
			continue;
		}
		if (up == NULL || up->unparsed)
			continue;	/* an up section; or checked at run time */
		/* Dropping needs a plain CREATE SCHEMA; renaming back also
		 * undoes an up section's rename, losing nothing. */
		created = 0;
		for (k = 0; k < up->n_schemas; k++) {
			if (strcmp(up->schemas[k].name, d->name) == 0)
				created = up->schemas[k].created ==
				    SQLSCAN_CREATED || (up->schemas[k].created ==
				    SQLSCAN_RENAMED_TO && strcmp(d->what,
				    "DROP SCHEMA") != 0);
		}
		if (!created)
			errlist_add(errs, "%s:%d: %s %s in a down section: its "
			    "up section does not create that schema with a "
			    "plain CREATE SCHEMA, so it may hold data that is "
			    "not this migration's%s", path, d->line,
			    d->what, d->name, strcmp(d->what, "DROP SCHEMA") ==
			    0 ? "; drop the objects instead" : "");
	}
}

/* COPY to or from the client: migd has no rows to send and reads none, so
 * such a COPY could only fail (or, before, hang the daemon). */
static void
revset_check_copy(const char *path, const struct sqlscan *sc,
    struct errlist *errs)
{
	const struct sqlscan_stmt	*st;
	size_t				 i;

	if (!(sc->flags & SQLSCAN_COPY_CLIENT))
		return;
	for (i = 0; i < sc->n_stmts; i++) {
		st = &sc->stmts[i];
		if (!(st->flags & SQLSCAN_COPY_CLIENT))
			continue;
		if (strcmp(st->what, "COPY ... FROM STDIN") == 0)
			errlist_add(errs, "%s:%d: %s: a migration cannot copy "
			    "from the client, migd has no rows to send; write "
			    "them as INSERT ... VALUES, or COPY FROM a file on "
			    "the server", path, st->line, st->what);
		else
			errlist_add(errs, "%s:%d: %s: a migration cannot copy "
			    "to the client, nobody reads the rows; COPY TO a "
			    "file on the server, or remove it", path,
			    st->line, st->what);
	}
}

/* Checks the rules that tie a file's header to its SQL, for one section. */
static void
revset_check_section(const struct migfile *mf, int upsec,
    const struct sqlscan *sc, const struct sqlscan *up,
    const struct revset_ctx *ctx, struct errlist *errs)
{
	const char	*path = migfile_path(mf, upsec);
	size_t		 i;
	int		 bare = mf->tx == MIGFILE_TX_NONE;

	for (i = 0; i < sc->n_stmts && !bare; i++) {
		if (sc->stmts[i].flags & SQLSCAN_NO_TX)
			bare = 1;
	}
	if (bare)
		revset_check_bare(path, sc, errs);
	else
		revset_check_segments(path, sc, errs);
	revset_check_copy(path, sc, errs);
	revset_check_drops(path, sc, up, ctx, errs);
}

/* Whether a server is newer than the parser: its SQL may be too. */
int
revset_newer_sql(int server_version)
{
	return (server_version / 10000 > sqlscan_parser_version() / 10000);
}

/* Parses one section (or takes the last load's analysis of it): -1 with
 * the problems in errs, 0, or 1 when the parser refused it.  Pure: the
 * loader runs it on several threads at once. */
static int
revset_scan(const struct migfile *mf, int up, const struct sqlscan *was,
    struct sqlscan *sc, struct errlist *errs)
{
	if (was != NULL) {
		/* The same file as the last load's: its analysis stands. */
		sqlscan_copy(sc, was);
		return (sc->unparsed ? 1 : 0);
	}
	return (sqlscan_analyze(up ? mf->up : mf->down, migfile_path(mf, up),
	    up ? mf->up_line : mf->down_line, sc, errs));
}

/* What a section's scan (rv) means for the set: SQL the parser refuses is
 * an error unless the server may be newer than the parser (or the section
 * is a down one, which the plan checks when it would run it). */
static int
revset_settle(struct revset *rs, int up, const struct revset_ctx *ctx,
    int rv, const struct sqlscan *sc, struct errlist *errs)
{
	if (rv < 0)
		return (-1);
	if (rv == 0)
		return (0);
	if (up && ctx != NULL && ctx->server_version != 0 &&
	    !revset_newer_sql(ctx->server_version)) {
		errlist_add(errs, "%s", sc->parse_error);
		return (-1);
	}
	rs->n_unparsed++;
	return (0);
}

/* Analyses one section, then settles it. */
static int
revset_analyze(struct revset *rs, const struct migfile *mf, int up,
    const struct revset_ctx *ctx, const struct sqlscan *was,
    struct sqlscan *sc, struct errlist *errs)
{
	return (revset_settle(rs, up, ctx, revset_scan(mf, up, was, sc, errs),
	    sc, errs));
}

/* Orders files by path, the order their problems are told in. */
static int
revset_cmp_path(const void *a, const void *b)
{
	return (strcmp((*(struct migfile *const *)a)->path,
	    (*(struct migfile *const *)b)->path));
}

/* Orders ids, so that a parent can be looked up among the placed ones. */
static int
revset_cmp_id(const void *a, const void *b)
{
	return (strcmp(*(const char *const *)a, *(const char *const *)b));
}

/* Checks the sections of a file whose header has problems: its SQL is
 * reported in the same pass, though the file cannot run. */
static void
revset_check_broken(struct revset *rs, const struct migfile *mf,
    const struct revset_ctx *ctx, struct errlist *errs)
{
	struct sqlscan	 up, down;
	int		 upok = 0;

	memset(&up, 0, sizeof up);
	memset(&down, 0, sizeof down);
	if (mf->up != NULL && (upok = revset_analyze(rs, mf, 1, ctx, NULL,
	    &up, errs) == 0))
		revset_check_section(mf, 1, &up, NULL, ctx, errs);
	if (mf->down != NULL && revset_analyze(rs, mf, 0, ctx, NULL, &down,
	    errs) == 0)
		revset_check_section(mf, 0, &down, upok ? &up : NULL, ctx, errs);
	sqlscan_clear(&up);
	sqlscan_clear(&down);
}

/* Keeps the ids of a list that a placed file defines: with a file whose id
 * could not be read, any other id might be that file's. */
static size_t
revset_known_ids(char **ids, size_t n, const char **known, size_t n_known,
    const char ***out)
{
	size_t	 i, k = 0;

	*out = xcalloc(n + 1, sizeof **out);
	for (i = 0; i < n; i++) {
		if (bsearch(&ids[i], known, n_known, sizeof *known,
		    revset_cmp_id) != NULL)
			(*out)[k++] = ids[i];
	}
	return (k);
}

/*
 * Checks the graph of everything that could be placed in it: the valid
 * files and the files with problems that still have an id.  When some
 * file has no readable id, an id that no placed file defines may be that
 * file's, so such parents are left to the next pass.
 */
static void
revset_check_graph(struct migfile **files, size_t n, int unplaced,
    struct errlist *errs)
{
	struct graph_input	*in;
	struct graph		*g = NULL;
	const char		**known = NULL, ***lists = NULL;
	struct migfile		*mf;
	size_t			 i, m = 0, n_known = 0;

	in = xcalloc(n + 1, sizeof *in);
	if (unplaced) {
		known = xcalloc(n + 1, sizeof *known);
		for (i = 0; i < n; i++)
			known[n_known++] = files[i]->revision;
		qsort(known, n_known, sizeof *known, revset_cmp_id);
		lists = xcalloc(2 * n + 1, sizeof *lists);
	}
	for (i = 0; i < n; i++) {
		mf = files[i];
		in[m].id = mf->revision;
		in[m].file = mf->path;
		in[m].parents_line = mf->parents_line;
		in[m].depends_line = mf->depends_line;
		in[m].id_line = mf->revision_line;
		if (unplaced) {
			in[m].n_parents = revset_known_ids(mf->parents,
			    mf->n_parents, known, n_known, &lists[2 * m]);
			in[m].parents = lists[2 * m];
			in[m].n_depends = revset_known_ids(mf->depends,
			    mf->n_depends, known, n_known, &lists[2 * m + 1]);
			in[m].depends = lists[2 * m + 1];
		} else {
			in[m].parents = (const char *const *)mf->parents;
			in[m].n_parents = mf->n_parents;
			in[m].depends = (const char *const *)mf->depends;
			in[m].n_depends = mf->n_depends;
		}
		m++;
	}
	if (graph_build(in, m, &g, errs) == 0)
		graph_free(g);
	for (i = 0; lists != NULL && i < 2 * m; i++)
		free(lists[i]);
	free(lists);
	free(known);
	free(in);
}

/* One branch label and the revision that declares it, to sort. */
struct revset_label {
	const char		*label;
	const struct migfile	*mf;
};

static int
revset_cmp_label(const void *a, const void *b)
{
	const struct revset_label	*x = a, *y = b;
	int				 c;

	if ((c = strcmp(x->label, y->label)) != 0)
		return (c);
	return (strcmp(x->mf->path, y->mf->path));
}

/* A branch label names one revision, as in Alembic: it is declared once and
 * is no revision's id, so that LABEL@head means one thing. */
static void
revset_check_labels(const struct revset *rs, struct errlist *errs)
{
	struct revset_label	*l;
	const struct migfile	*mf;
	size_t			 i, k, n = 0;
	ssize_t			 idx;

	for (i = 0; i < rs->set.n; i++)
		n += rs->set.files[i]->n_labels;
	if (n == 0)
		return;
	l = xcalloc(n, sizeof *l);
	for (i = n = 0; i < rs->set.n; i++) {
		mf = rs->set.files[i];
		for (k = 0; k < mf->n_labels; k++) {
			l[n].label = mf->labels[k];
			l[n++].mf = mf;
		}
	}
	qsort(l, n, sizeof *l, revset_cmp_label);
	for (i = 0; i < n; i++) {
		if (i > 0 && strcmp(l[i - 1].label, l[i].label) == 0)
			errlist_add(errs, "%s:%d: branch label '%s' is already "
			    "declared by revision %s (%s:%d); a label names "
			    "one revision", l[i].mf->path, l[i].mf->labels_line,
			    l[i].label, l[i - 1].mf->revision,
			    l[i - 1].mf->path, l[i - 1].mf->labels_line);
		if (rs->graph != NULL && (idx = graph_find(rs->graph,
		    l[i].label)) >= 0)
			errlist_add(errs, "%s:%d: branch label '%s' is the id "
			    "of revision %s (%s); a label must differ from "
			    "every revision id", l[i].mf->path,
			    l[i].mf->labels_line, l[i].label, l[i].label,
			    revset_file(rs, (size_t)idx)->path);
	}
	free(l);
}

/* Where the file at mf's path was in prev, or -1. */
static ssize_t
revset_prev_idx(const struct revset *prev, const struct migfile *mf)
{
	struct migfile *const	*slot;

	if (prev == NULL || prev->up == NULL || prev->set.n == 0)
		return (-1);
	slot = bsearch(&mf, prev->set.files, prev->set.n,
	    sizeof *prev->set.files, revset_cmp_path);
	if (slot == NULL)
		return (-1);
	return (slot - prev->set.files);
}

/* Whether a section of another tool's file at the same path in the last
 * load is this one, to the byte and the line: its analysis stands (such a
 * file is a new copy each load: layout_assemble gives it its parents). */
static int
revset_same_section(const struct migfile *mf, const char *was, int was_line,
    const char *text, int line)
{
	return (mf->layout > LAYOUT_MIGD && was != NULL && text != NULL &&
	    was_line == line && strcmp(was, text) == 0);
}

/* A refused set gives what was read (files, directories, their stat) to
 * seen, when the caller wants it to watch them, and is freed. */
static void
revset_refuse(struct revset *rs, struct migset *seen)
{
	size_t	 i;

	for (i = 0; rs->up != NULL && i < rs->set.n; i++) {
		sqlscan_clear(&rs->up[i]);
		sqlscan_clear(&rs->down[i]);
	}
	free(rs->up);
	free(rs->down);
	rs->up = rs->down = NULL;
	if (seen != NULL) {
		*seen = rs->set;
		memset(&rs->set, 0, sizeof rs->set);
	}
	revset_unref(rs);
}

/* Loads and checks a whole directory, as revset_load_from does from
 * nothing. */
int
revset_load(const char *dir, const struct revset_ctx *ctx,
    struct revset **out, struct errlist *errs)
{
	return (revset_load_from(dir, ctx, NULL, NULL, out, NULL, errs));
}


/* The sections of a load being parsed, by several threads at once. */
struct revset_scans {
	struct revset		*rs;
	const struct revset	*prev;
	int			*rv;		/* per file: up's, down's */
	struct errlist		*errs;		/* per section, in order */
};

/* One file's sections: the last load's analysis when unchanged, else
 * parsed.  Touches only this file's slots, on whichever thread. */
static void
revset_scan_file(void *arg, size_t i)
{
	struct revset_scans	*w = arg;
	const struct revset	*prev = w->prev;
	const struct migfile	*mf = w->rs->set.files[i], *was;
	ssize_t			 p;

	p = revset_prev_idx(prev, mf);
	was = p >= 0 ? prev->set.files[p] : NULL;
	w->rv[2 * i] = revset_scan(mf, 1, was != NULL && (was == mf ||
	    revset_same_section(mf, was->up, was->up_line, mf->up,
	    mf->up_line)) ? &prev->up[p] : NULL, &w->rs->up[i],
	    &w->errs[2 * i]);
	if (mf->down != NULL)
		w->rv[2 * i + 1] = revset_scan(mf, 0, was != NULL && (was ==
		    mf || revset_same_section(mf, was->down, was->down_line,
		    mf->down, mf->down_line)) ? &prev->down[p] : NULL,
		    &w->rs->down[i], &w->errs[2 * i + 1]);
}

/* Parses every section, several files at once (the parser is most of a
 * load's time); the results wait in w for the checks, in file order. */
static void
revset_scan_all(struct revset *rs, const struct revset *prev,
    struct revset_scans *w)
{
	w->rs = rs;
	w->prev = prev;
	w->rv = xcalloc(2 * rs->set.n + 1, sizeof *w->rv);
	w->errs = xcalloc(2 * rs->set.n + 1, sizeof *w->errs);
	parallel_each(rs->set.n, revset_scan_file, w);
}

/* Moves a section's problems to the load's, in order. */
static void
revset_errs_take(struct errlist *errs, struct errlist *from)
{
	size_t	 i;

	for (i = 0; i < from->n; i++)
		errlist_take(errs, from->v[i]);
	free(from->v);
	from->v = NULL;
	from->n = 0;
}

/*
 * Loads and checks a whole directory; on error errs says everything wrong,
 * all in one pass: the headers of every file, the SQL of every file whose
 * text could be read (also of one whose header is broken), and the graph of
 * every file that has an id.  A file that cache offers unchanged is taken
 * from it unread, and its analysis copied from prev (the set the cache was
 * made from), not parsed again; the checks are made afresh.  prev and the
 * cache's files are only read: the caller keeps them alive.  On error, seen
 * (when not NULL) gets what was read, for watching.
 */
int
revset_load_from(const char *dir, const struct revset_ctx *ctx,
    const struct revset *prev, struct migcache *cache, struct revset **out,
    struct migset *seen, struct errlist *errs)
{
	struct revset		*rs;
	struct revset_scans	 scan;
	struct graph_input	*in;
	struct migfile		*mf, **all;
	size_t			 i, k, n_all, before = errs->n;
	int			 upok, unplaced = 0, scanned;

	*out = NULL;
	if (seen != NULL)
		memset(seen, 0, sizeof *seen);
	rs = xcalloc(1, sizeof *rs);
	rs->refs = 1;
	rs->directory = xstrdup(dir);
	rs->server_version = ctx != NULL ? ctx->server_version : 0;
	scanned = migdir_scan_format(dir, ctx != NULL ? ctx->format : 0,
	    &rs->set, errs, cache);
	for (k = 0; ctx != NULL && ctx->skipped != NULL &&
	    k < rs->set.skipped.n; k++)
		errlist_add(ctx->skipped, "%s", rs->set.skipped.v[k]);
	if (scanned != 0) {
		/* Every readable file's SQL, in path order, and the graph of
		 * those that have an id; then the whole set is refused. */
		unplaced = rs->set.incomplete;
		n_all = rs->set.n + rs->set.n_broken;
		all = xcalloc(n_all + 1, sizeof *all);
		if (rs->set.n > 0)
			memcpy(all, rs->set.files, rs->set.n * sizeof *all);
		if (rs->set.n_broken > 0)
			memcpy(all + rs->set.n, rs->set.broken,
			    rs->set.n_broken * sizeof *all);
		qsort(all, n_all, sizeof *all, revset_cmp_path);
		for (i = k = 0; i < n_all; i++) {
			revset_check_broken(rs, all[i], ctx, errs);
			if (all[i]->revision != NULL)
				all[k++] = all[i];
			else
				unplaced = 1;
		}
		revset_check_graph(all, k, unplaced, errs);
		free(all);
		revset_refuse(rs, seen);
		return (-1);
	}
	rs->up = xcalloc(rs->set.n + 1, sizeof *rs->up);
	rs->down = xcalloc(rs->set.n + 1, sizeof *rs->down);
	in = xcalloc(rs->set.n + 1, sizeof *in);
	for (i = 0; i < rs->set.n; i++) {
		mf = rs->set.files[i];
		in[i].id = mf->revision;
		in[i].parents = (const char *const *)mf->parents;
		in[i].n_parents = mf->n_parents;
		in[i].depends = (const char *const *)mf->depends;
		in[i].n_depends = mf->n_depends;
		in[i].file = mf->path;
		in[i].parents_line = mf->parents_line;
		in[i].depends_line = mf->depends_line;
		in[i].id_line = mf->revision_line;
	}
	/* Each section on its own: every problem is said at once, in order. */
	revset_scan_all(rs, prev, &scan);
	for (i = 0; i < rs->set.n; i++) {
		mf = rs->set.files[i];
		revset_errs_take(errs, &scan.errs[2 * i]);
		upok = revset_settle(rs, 1, ctx, scan.rv[2 * i], &rs->up[i],
		    errs) == 0;
		if (upok)
			revset_check_section(mf, 1, &rs->up[i], NULL, ctx,
			    errs);
		if (mf->down == NULL)
			continue;
		revset_errs_take(errs, &scan.errs[2 * i + 1]);
		if (revset_settle(rs, 0, ctx, scan.rv[2 * i + 1], &rs->down[i],
		    errs) == 0)
			revset_check_section(mf, 0, &rs->down[i], upok ?
			    &rs->up[i] : NULL, ctx, errs);
	}
	free(scan.rv);
	free(scan.errs);
	graph_build(in, rs->set.n, &rs->graph, errs);
	free(in);
	revset_check_labels(rs, errs);
	if (errs->n != before) {
		if (rs->graph != NULL)
			graph_free(rs->graph);
		rs->graph = NULL;
		revset_refuse(rs, seen);
		return (-1);
	}
	*out = rs;
	return (0);
}

struct revset *
revset_ref(struct revset *rs)
{
	rs->refs++;
	return (rs);
}

void
revset_unref(struct revset *rs)
{
	size_t	 i;

	if (rs == NULL || --rs->refs > 0)
		return;
	for (i = 0; rs->up != NULL && i < rs->set.n; i++) {
		sqlscan_clear(&rs->up[i]);
		sqlscan_clear(&rs->down[i]);
	}
	free(rs->up);
	free(rs->down);
	if (rs->graph != NULL)
		graph_free(rs->graph);
	migset_clear(&rs->set);
	free(rs->directory);
	free(rs);
}

size_t
revset_count(const struct revset *rs)
{
	return (rs->set.n);
}

const struct migfile *
revset_file(const struct revset *rs, size_t idx)
{
	return (rs->set.files[idx]);
}

/* The first statement that forbids a transaction block, or NULL. */
const struct sqlscan_stmt *
revset_no_tx_stmt(const struct revset *rs, size_t idx, int up)
{
	const struct sqlscan	*sc = up ? &rs->up[idx] : &rs->down[idx];
	size_t			 i;

	for (i = 0; i < sc->n_stmts; i++) {
		if (sc->stmts[i].flags & SQLSCAN_NO_TX)
			return (&sc->stmts[i]);
	}
	return (NULL);
}

/* Adds "PATH:LINE: message" for each section only the scanner could read. */
void
revset_unparsed(const struct revset *rs, struct errlist *notes)
{
	size_t	 i;

	for (i = 0; i < rs->set.n; i++) {
		if (rs->up[i].unparsed)
			errlist_add(notes, "%s", rs->up[i].parse_error);
		if (rs->down[i].unparsed)
			errlist_add(notes, "%s", rs->down[i].parse_error);
	}
}

/* A revision's up or down section as analysed. */
const struct sqlscan *
revset_section(const struct revset *rs, size_t idx, int up)
{
	return (up ? &rs->up[idx] : &rs->down[idx]);
}

/*
 * The transactions a transactional section runs in: its statements split at
 * COMMIT [AND CHAIN], BEGIN and COMMIT themselves left out, empty ones not
 * counted.  lines, when not NULL (n_stmts entries), gets each one's first line.
 */
size_t
revset_segments(const struct sqlscan *sc, int *lines)
{
	size_t	 i, n = 0;
	int	 fresh = 1;

	for (i = 0; i < sc->n_stmts; i++) {
		if (sc->stmts[i].flags & SQLSCAN_TX_COMMIT)
			fresh = 1;
		else if (!(sc->stmts[i].flags & SQLSCAN_TX_BEGIN) && fresh) {
			if (lines != NULL)
				lines[n] = sc->stmts[i].line;
			n++;
			fresh = 0;
		}
	}
	return (n);
}

/* Why a section cannot be part of a run in one transaction (to free), or
 * NULL: it cannot run in a transaction, or its own COMMITs split it. */
char *
revset_not_atomic(const struct revset *rs, size_t idx, int up)
{
	const struct sqlscan		*sc = revset_section(rs, idx, up);
	const struct sqlscan_stmt	*nt;
	size_t				 i;

	if (!revset_transactional(rs, idx, up)) {
		nt = revset_no_tx_stmt(rs, idx, up);
		return (nt != NULL ? xprintf("%s at line %d cannot run in a "
		    "transaction", nt->what, nt->line) :
		    rs->set.files[idx]->layout == LAYOUT_DIESEL ?
		    xstrdup("its metadata.toml says 'run_in_transaction = "
		    "false'") : xstrdup("it declares 'transaction: none'"));
	}
	if (revset_segments(sc, NULL) <= 1)
		return (NULL);
	for (i = 0; i < sc->n_stmts; i++) {
		if (sc->stmts[i].flags & SQLSCAN_TX_COMMIT)
			break;
	}
	return (xprintf("its own %s at line %d splits it into several "
	    "transactions", sc->stmts[i].what, sc->stmts[i].line));
}

/* Whether a section runs in one transaction: declared, or detected. */
int
revset_transactional(const struct revset *rs, size_t idx, int up)
{
	if (rs->set.files[idx]->tx == MIGFILE_TX_NONE)
		return (0);
	return (revset_no_tx_stmt(rs, idx, up) == NULL);
}

static int
revset_cmp_str(const void *a, const void *b)
{
	return (strcmp(*(char *const *)a, *(char *const *)b));
}

/*
 * The schemas a run of plan must find before its first step, which migd
 * creates with CREATE SCHEMA IF NOT EXISTS: the configured ones first, then
 * those the steps' SQL names, in order of appearance, each once, less those
 * a step of the plan creates itself (a plain CREATE SCHEMA, or a rename to
 * it).  *out gets a new array of borrowed names (from schemas and rs); the
 * caller frees the array.  Linear but for two sorts.
 */
size_t
revset_plan_schemas(const struct revset *rs, const struct graph_plan *plan,
    char *const *schemas, size_t n_schemas, const char ***out)
{
	const struct sqlscan	*sc;
	const char		**made, **seen, **sorted, **res, *name;
	char			*taken;
	size_t			 n_made = 0, n_seen = 0, n_res = 0, m = 0;
	size_t			 i, k, total = 0;

	for (i = 0; i < plan->n_steps; i++)
		total += revset_section(rs, plan->steps[i].idx,
		    plan->steps[i].dir == GRAPH_UP)->n_schemas;
	made = xcalloc(total + 1, sizeof *made);
	seen = xcalloc(total + n_schemas + 1, sizeof *seen);
	for (i = 0; i < plan->n_steps; i++) {
		sc = revset_section(rs, plan->steps[i].idx,
		    plan->steps[i].dir == GRAPH_UP);
		for (k = 0; k < sc->n_schemas; k++) {
			if (sc->schemas[k].created)
				made[n_made++] = sc->schemas[k].name;
		}
	}
	qsort(made, n_made, sizeof *made, revset_cmp_str);
	/* Candidates in order: configured first, then as the steps name them. */
	for (i = 0; i < n_schemas; i++)
		seen[n_seen++] = schemas[i];
	for (i = 0; i < plan->n_steps; i++) {
		sc = revset_section(rs, plan->steps[i].idx,
		    plan->steps[i].dir == GRAPH_UP);
		for (k = 0; k < sc->n_schemas; k++)
			seen[n_seen++] = sc->schemas[k].name;
	}
	/* Keep the first of each name, in order, via a sorted copy. */
	sorted = xcalloc(n_seen + 1, sizeof *sorted);
	memcpy(sorted, seen, n_seen * sizeof *seen);
	qsort(sorted, n_seen, sizeof *sorted, revset_cmp_str);
	for (i = 0; i < n_seen; i++) {
		if (m == 0 || strcmp(sorted[m - 1], sorted[i]) != 0)
			sorted[m++] = sorted[i];
	}
	taken = xcalloc(m + 1, 1);
	res = xcalloc(m + 1, sizeof *res);
	for (i = 0; i < n_seen; i++) {
		name = seen[i];
		k = (size_t)((const char **)bsearch(&name, sorted, m,
		    sizeof *sorted, revset_cmp_str) - sorted);
		if (taken[k] || (n_made > 0 && bsearch(&name, made, n_made,
		    sizeof *made, revset_cmp_str) != NULL))
			continue;
		taken[k] = 1;
		res[n_res++] = name;
	}
	free(taken);
	free(sorted);
	free(made);
	free(seen);
	*out = res;
	return (n_res);
}

/*
 * The revision graph as `migctl revisions` shows it, the same from migd and
 * from the files alone: {"revisions": [...]} newest first (see
 * graph_newest_first), each {revision, parents, depends_on, message, file,
 * head, mergepoint, branchpoint}.
 */
json_t *
revset_revisions_json(const struct revset *rs)
{
	const struct migfile	*mf;
	struct graph_listed	*l;
	const size_t		*e;
	json_t			*list, *par, *dep;
	size_t			 n, i, k, ne;

	n = graph_newest_first(rs->graph, &l);
	list = json_array();
	for (i = 0; i < n; i++) {
		mf = revset_file(rs, l[i].idx);
		par = json_array();
		ne = graph_parents(rs->graph, l[i].idx, &e);
		for (k = 0; k < ne; k++)
			json_array_append_new(par, json_string(graph_id(
			    rs->graph, e[k])));
		dep = json_array();
		ne = graph_depends(rs->graph, l[i].idx, &e);
		for (k = 0; k < ne; k++)
			json_array_append_new(dep, json_string(graph_id(
			    rs->graph, e[k])));
		json_array_append_new(list, json_pack("{s:s, s:o, s:o, s:s, "
		    "s:s, s:b, s:b, s:b}", "revision", mf->revision, "parents",
		    par, "depends_on", dep, "message", mf->message, "file",
		    mf->path, "head", (l[i].flags & GRAPH_LISTED_HEAD) != 0,
		    "mergepoint", (l[i].flags & GRAPH_LISTED_MERGEPOINT) != 0,
		    "branchpoint", (l[i].flags & GRAPH_LISTED_BRANCHPOINT) !=
		    0));
	}
	free(l);
	return (json_pack("{s:o}", "revisions", list));
}

/* Whether anc is idx or one of its ancestors over down_revision (Alembic's
 * lineage for branch labels leaves depends_on out).  seen: n bytes. */
static int
revset_descends(const struct revset *rs, size_t idx, size_t anc, char *seen,
    size_t *stack)
{
	const size_t	*p;
	size_t		 n = 0, i, np, cur;

	memset(seen, 0, revset_count(rs));
	stack[n++] = idx;
	seen[idx] = 1;
	while (n > 0) {
		if ((cur = stack[--n]) == anc)
			return (1);
		np = graph_parents(rs->graph, cur, &p);
		for (i = 0; i < np; i++) {
			if (!seen[p[i]]) {
				seen[p[i]] = 1;
				stack[n++] = p[i];
			}
		}
	}
	return (0);
}

/*
 * A target as graph_plan takes it: LABEL@head becomes the id of the head
 * of the branch that carries LABEL, as Alembic resolves it (the one head
 * among those built on the revision declaring LABEL); anything else comes
 * back as given.  Returns 0 and sets *out (caller frees), or -1 and sets
 * *cause (caller frees).
 */
int
revset_target(const struct revset *rs, const char *target, char **out,
    char **cause)
{
	const struct migfile	*mf, *owner = NULL;
	const char		*at = strchr(target, '@');
	size_t			*heads, *stack, nh, i, k, n, found = 0, hit = 0;
	char			*seen, *label, *list;

	*out = NULL;
	*cause = NULL;
	if (at == NULL) {
		*out = xstrdup(target);
		return (0);
	}
	label = xstrndup(target, (size_t)(at - target));
	if (strcmp(at + 1, "head") != 0) {
		*cause = xprintf("target '%s': after '@' only 'head' is "
		    "supported (LABEL@head: the head of the branch labelled "
		    "LABEL)", target);
		free(label);
		return (-1);
	}
	for (i = 0; i < revset_count(rs) && owner == NULL; i++) {
		mf = revset_file(rs, i);
		for (k = 0; k < mf->n_labels; k++) {
			if (strcmp(mf->labels[k], label) == 0) {
				owner = mf;
				found = i;
			}
		}
	}
	if (owner == NULL) {
		*cause = xprintf("target '%s': no revision declares the branch "
		    "label '%s' (see the branch_labels headers)", target,
		    label);
		free(label);
		return (-1);
	}
	n = revset_count(rs);
	seen = xmalloc(n);
	stack = xcalloc(n, sizeof *stack);
	nh = graph_heads(rs->graph, &heads);
	list = xstrdup("");
	for (i = k = 0; i < nh; i++) {
		if (!revset_descends(rs, heads[i], found, seen, stack))
			continue;
		if (k++ == 0)
			hit = heads[i];
		else {
			char	*t = xprintf("%s%s%s", list, *list ? ", " : "",
				    graph_id(rs->graph, heads[i]));
			free(list);
			list = t;
		}
	}
	if (k == 1)
		*out = xstrdup(graph_id(rs->graph, hit));
	else if (k == 0)
		*cause = xprintf("target '%s': no head is built on revision "
		    "%s, which declares the label", target, owner->revision);
	else
		*cause = xprintf("target '%s': the branch labelled '%s' has "
		    "%zu heads: %s, %s; name one of them, or merge them",
		    target, label, k, graph_id(rs->graph, hit), list);
	free(list);
	free(heads);
	free(stack);
	free(seen);
	free(label);
	return (k == 1 ? 0 : -1);
}

/*
 * graph_stamp with the targets as stamp takes them: LABEL@head resolved by
 * revset_target first (the graph knows no labels), everything else as
 * given.  Returns what graph_stamp returns; -1 with *cause for a label
 * revset_target refuses.
 */
int
revset_stamp(const struct revset *rs, const char *const *rows, size_t n_rows,
    const char *const *targets, size_t n_targets, int purge,
    struct graph_stamp *out, char **cause)
{
	char	**t;
	size_t	  i, k;
	int	  rv = 0;

	memset(out, 0, sizeof *out);
	t = xcalloc(n_targets ? n_targets : 1, sizeof *t);
	for (i = 0; i < n_targets && rv == 0; i++)
		rv = revset_target(rs, targets[i], &t[i], cause);
	if (rv == 0)
		rv = graph_stamp(rs->graph, rows, n_rows,
		    (const char *const *)t, n_targets, purge, out, cause);
	for (k = 0; k < n_targets; k++)
		free(t[k]);
	free(t);
	return (rv);
}
