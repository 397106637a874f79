/*
 * A migration file linted by itself: migctl lint FILE... reads the bytes,
 * the lint method is sent them; both read them here alike, in the layout
 * asked for (AUTO: as what they look like), and lint the up section.
 * SQL of no tool's layout under a name no tool reads is linted whole, as
 * Squawk would.  Pure: the path is a name to show, never opened.
 */
#include <stdlib.h>
#include <string.h>

#include "lintfile.h"

/* One file's text read as migd reads a file of the layout fmt; NULL with
 * errs added if it cannot be read. */
static struct migfile *
lintfile_layout(enum layout_format fmt, const char *path, const char *buf,
    size_t len, struct errlist *errs)
{
	struct migfile	*mf = NULL;
	const char	*base, *p;
	char		*rel, *skip = NULL;
	size_t		 before = errs->n;
	int		 r;

	/* Its name as the layout sees it: diesel's DIR/up.sql, else the
	 * file's own. */
	base = strrchr(path, '/') != NULL ? strrchr(path, '/') + 1 : path;
	p = base;
	if ((strcmp(base, "up.sql") == 0 || strcmp(base, "down.sql") == 0) &&
	    base - path >= 2) {
		for (p = base - 2; p > path && p[-1] != '/'; p--)
			/* nothing */;
	}
	rel = xstrdup(p);
	r = layout_file(fmt, path, rel, buf, len, &mf, &skip, errs);
	free(rel);
	if (r == 1) {
		errlist_add(errs, "%s: %s", path, skip);
		free(skip);
		return (NULL);
	}
	if (r < 0 && mf != NULL && mf->piece == LAYOUT_PIECE_WEAK &&
	    errs->n == before) {
		mf->up_line = 1;
		return (mf);
	}
	if (r < 0) {
		if (mf != NULL)
			migfile_free(mf);
		return (NULL);
	}
	return (mf);
}

/* Reads one file's text (shown as path) and analyses its up section. */
void
lintfile_parse(struct lintfile *lf, enum layout_format fmt, const char *path,
    const char *buf, size_t len)
{
	memset(lf, 0, sizeof *lf);
	if ((lf->mf = lintfile_layout(fmt, path, buf, len, &lf->errs)) ==
	    NULL)
		return;
	if (lf->mf->up == NULL) {
		lf->ok = lf->errs.n == 0;	/* noted, not linted */
		return;
	}
	lf->ok = sqlscan_analyze(lf->mf->up, lf->mf->path, lf->mf->up_line,
	    &lf->sc, &lf->errs) >= 0 && lf->errs.n == 0;
}

/* Lints a file's up section into rep in ctx's run, as revset decides
 * whether it runs statement by statement; else why not, to free. */
char *
lintfile_lint(struct lint_ctx *ctx, const struct migfile *mf,
    const struct sqlscan *sc, struct lint_report *rep)
{
	if (mf->up == NULL)
		return (xprintf("%s: not linted: a down migration's file (lint "
		    "reads what upgrades run)", mf->path));
	if (sc->unparsed)
		return (xprintf("%s: not linted: %s", mf->path,
		    sc->parse_error ? sc->parse_error :
		    "the parser refused it"));
	lint_section(ctx, &sc->lint, mf->path, mf->lint_ignore,
	    mf->lint_ignore_line, mf->tx == MIGFILE_TX_NONE ||
	    (sc->flags & SQLSCAN_NO_TX), rep);
	return (NULL);
}

void
lintfile_clear(struct lintfile *lf)
{
	sqlscan_clear(&lf->sc);
	if (lf->mf != NULL)
		migfile_free(lf->mf);
	errlist_clear(&lf->errs);
	memset(lf, 0, sizeof *lf);
}
