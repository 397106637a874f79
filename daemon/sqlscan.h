/* SQL analysis of migration sections with the real PostgreSQL parser (libpg_query). */
#ifndef MIGD_SQLSCAN_H
#define MIGD_SQLSCAN_H

#include <stddef.h>

#include "util.h"

#define SQLSCAN_NO_TX		0x1	/* cannot run inside a transaction block */
#define SQLSCAN_TX_CONTROL	0x2	/* BEGIN/START/COMMIT/END/ROLLBACK/ABORT/PREPARE TRANSACTION/
					   COMMIT PREPARED/ROLLBACK PREPARED (not SAVEPOINT/RELEASE/ROLLBACK TO) */
#define SQLSCAN_DROP_SCHEMA	0x4	/* DROP SCHEMA */

struct sqlscan_stmt {
	size_t		 offset;	/* byte offset of the first token in the section text */
	size_t		 len;		/* bytes through the end of the last token: no leading or
					   trailing whitespace or comments, no terminating ';' */
	int		 line;		/* file line of the first token */
	int		 flags;		/* SQLSCAN_* */
	const char	*what;		/* static name for messages ("CREATE INDEX CONCURRENTLY",
					   "VACUUM", "COMMIT", "DROP SCHEMA"); NULL when flags == 0 */
};

struct sqlscan_schema {
	char		*name;		/* as the server sees it: case-folded, unquoted, truncated to 63 bytes */
	int		 line;		/* file line of the first statement naming it */
	int		 created;	/* 1 when the section runs CREATE SCHEMA name (without IF NOT
					   EXISTS): migd must then not create it beforehand */
};

struct sqlscan {
	struct sqlscan_stmt	*stmts;
	size_t			 n_stmts;
	struct sqlscan_schema	*schemas;	/* in order of first appearance, unique */
	size_t			 n_schemas;
	int			 flags;		/* OR of all statement flags */
};

/*
 * Parses one section (sql, NUL-terminated) that starts at line first_line of
 * path. Fills *sc (which need not be initialised) and returns 0, or returns -1
 * with "PATH:LINE: message" added to errs and *sc left empty. Either way the
 * caller may call sqlscan_clear(sc). An empty or comment-only section is valid
 * and has no statements.
 */
int	 sqlscan_analyze(const char *sql, const char *path, int first_line,
	    struct sqlscan *sc, struct errlist *errs);
void	 sqlscan_clear(struct sqlscan *sc);

/* 1 for pg_catalog, information_schema and any name starting "pg_" (pg_toast, pg_temp_3, ...). */
int	 sqlscan_system_schema(const char *name);

/* Always-quoted identifier ("na""me"), for building SQL such as CREATE SCHEMA IF NOT EXISTS. */
char	*sqlscan_quote_ident(const char *name);

#endif
