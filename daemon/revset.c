/*
 * Loading the migrations directory into a revset: every file parsed, the
 * graph checked, every section parsed by PostgreSQL's own parser, and the
 * rules that need no database checked.  Any problem anywhere is reported as
 * FILE:LINE and the whole set is refused: nothing runs from a broken set.
 */
#include <stdlib.h>
#include <string.h>

#include "migd.h"
#include "revset.h"

/* Checks the rules that tie a file's header to its SQL. */
static void
revset_check_file(const struct migfile *mf, const struct sqlscan *up,
    const struct sqlscan *down, struct errlist *errs)
{
	size_t	 i;

	for (i = 0; i < up->n_stmts; i++) {
		if ((up->stmts[i].flags & SQLSCAN_TX_CONTROL) &&
		    mf->tx != MIGFILE_TX_NONE) {
			errlist_add(errs, "%s:%d: %s inside a migration: migd "
			    "runs each migration in its own transaction; "
			    "remove it, or declare 'transaction: none'",
			    mf->path, up->stmts[i].line, up->stmts[i].what);
		}
	}
	for (i = 0; down != NULL && i < down->n_stmts; i++) {
		if (down->stmts[i].flags & SQLSCAN_DROP_SCHEMA) {
			errlist_add(errs, "%s:%d: DROP SCHEMA in a down section: "
			    "downgrades never drop schemas, so that no data is "
			    "lost; drop the objects instead", mf->path,
			    down->stmts[i].line);
		}
		if ((down->stmts[i].flags & SQLSCAN_TX_CONTROL) &&
		    mf->tx != MIGFILE_TX_NONE) {
			errlist_add(errs, "%s:%d: %s inside a migration: migd "
			    "runs each migration in its own transaction; "
			    "remove it, or declare 'transaction: none'",
			    mf->path, down->stmts[i].line,
			    down->stmts[i].what);
		}
	}
}

/* Loads and checks a whole directory; on error errs says everything wrong. */
int
revset_load(const char *dir, struct revset **out, struct errlist *errs)
{
	struct revset		*rs;
	struct graph_input	*in;
	struct migfile		*mf;
	size_t			 i, before = errs->n;

	rs = xcalloc(1, sizeof *rs);
	rs->refs = 1;
	rs->directory = xstrdup(dir);
	if (migdir_load(dir, &rs->set, errs) != 0) {
		revset_unref(rs);
		return (-1);
	}
	rs->up = xcalloc(rs->set.n, sizeof *rs->up);
	rs->down = xcalloc(rs->set.n, sizeof *rs->down);
	in = xcalloc(rs->set.n, sizeof *in);
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
		if (sqlscan_analyze(mf->up, mf->path, mf->up_line, &rs->up[i],
		    errs) != 0)
			continue;
		if (mf->down != NULL && sqlscan_analyze(mf->down, mf->path,
		    mf->down_line, &rs->down[i], errs) != 0)
			continue;
		revset_check_file(mf, &rs->up[i], mf->down ? &rs->down[i] :
		    NULL, errs);
	}
	graph_build(in, rs->set.n, &rs->graph, errs);
	free(in);
	if (errs->n != before) {
		revset_unref(rs);
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

/* Whether a section runs in one transaction: declared, or detected. */
int
revset_transactional(const struct revset *rs, size_t idx, int up)
{
	if (rs->set.files[idx]->tx == MIGFILE_TX_NONE)
		return (0);
	return (revset_no_tx_stmt(rs, idx, up) == NULL);
}
