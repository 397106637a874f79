/*
 * A migration file linted by itself (migctl lint FILE..., and the lint
 * method's files): its text read in a layout and its up section analysed
 * (pure: the caller reads the bytes, if any are read).
 */
#ifndef MIGD_LINTFILE_H
#define MIGD_LINTFILE_H

#include <stddef.h>

#include "layout.h"
#include "lint.h"
#include "migfile.h"
#include "sqlscan.h"
#include "util.h"

struct lintfile {
	struct migfile	*mf;	/* NULL when it could not be read */
	struct sqlscan	 sc;	/* of its up section */
	int		 ok;	/* to lint: read cleanly (a down file too) */
	struct errlist	 errs;	/* FILE:LINE: problems */
};

void	 lintfile_parse(struct lintfile *, enum layout_format, const char *,
	    const char *, size_t);
char	*lintfile_lint(struct lint_ctx *, const struct migfile *,
	    const struct sqlscan *, struct lint_report *);
void	 lintfile_clear(struct lintfile *);

#endif
