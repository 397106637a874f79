/* SQL analysis of migration sections with PostgreSQL's parser (libpg_query). */
#ifndef MIGD_SQLSCAN_H
#define MIGD_SQLSCAN_H

#include <stddef.h>

#include "util.h"

/* Cannot run inside a transaction block (VACUUM, CREATE INDEX CONCURRENTLY). */
#define SQLSCAN_NO_TX		0x1
/*
 * Begins or ends a transaction: BEGIN, START TRANSACTION, COMMIT, END,
 * ROLLBACK, ABORT, PREPARE TRANSACTION, COMMIT PREPARED, ROLLBACK PREPARED
 * (the last two also NO_TX). Not SAVEPOINT, RELEASE or ROLLBACK TO.
 */
#define SQLSCAN_TX_CONTROL	0x2
#define SQLSCAN_DROP_SCHEMA	0x4

struct sqlscan_stmt {
	/*
	 * Byte range in the section, from the first token through the last:
	 * no surrounding whitespace or comments, no terminating ';'.
	 */
	size_t		 offset;
	size_t		 len;
	int		 line;	/* file line of the first token */
	int		 flags;	/* SQLSCAN_* */
	/*
	 * Static name for messages ("CREATE INDEX CONCURRENTLY", "VACUUM",
	 * "COMMIT", "DROP SCHEMA"); NULL when flags is 0.
	 */
	const char	*what;
};

struct sqlscan_schema {
	/* As the server sees it: case-folded, unquoted, cut to 63 bytes. */
	char		*name;
	int		 line;	/* file line of the first statement naming it */
	/*
	 * 1 when the section runs CREATE SCHEMA name without IF NOT EXISTS:
	 * then migd must not create the schema beforehand.
	 */
	int		 created;
};

struct sqlscan {
	struct sqlscan_stmt	*stmts;
	size_t			 n_stmts;
	/* In order of first appearance, unique, no system schemas. */
	struct sqlscan_schema	*schemas;
	size_t			 n_schemas;
	int			 flags;	/* OR of all statement flags */
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

/* 1 for pg_catalog, information_schema and any "pg_" name (pg_temp_3...). */
int	 sqlscan_system_schema(const char *name);

/* Always-quoted identifier ("na""me") for SQL built by migd; to free. */
char	*sqlscan_quote_ident(const char *name);

#endif
