/*
 * The scanner's side of sqlscan, shared by sqlscan.c and sqltok.c only:
 * PostgreSQL's tokens of a section, and the split into statements that
 * stands in when the parser refuses the SQL.
 */
#ifndef MIGD_SQLTOK_H
#define MIGD_SQLTOK_H

#include <stddef.h>

#include <pg_query.h>

#include "sqlscan.h"

/* Values of pg_query.proto's Token enum that matter here. */
#define SQLTOK_SEMICOLON	59
#define SQLTOK_SQL_COMMENT	275
#define SQLTOK_C_COMMENT	276
#define SQLTOK_UIDENT	259	/* U&"..." */
#define SQLTOK_USCONST	262	/* U&'...' */


/* One scanner token other than a comment: byte range in the section. */
struct sqltok {
	size_t	 start;
	size_t	 end;
	int	 token;
};

struct sqltoks {
	struct sqltok	*v;
	size_t			 n;
	size_t			 size;
	size_t			*comments;	/* where each comment starts */
	size_t			 nc;
	size_t			 csize;
};

/* sqltok.c */
int	 sqltok_scan(const char *sql, struct sqltoks *toks, char **cause,
	    int *pos);
int	 sqltok_unparsed(const char *sql, const char *path, int first_line,
	    const PgQueryError *error, struct sqlscan *sc, struct errlist *errs);

/* sqlscan.c, for sqltok.c */
struct sqlscan_stmt	*sqlscan_stmt_add(struct sqlscan *sc, size_t *size);
int	 sqlscan_newlines(const char *sql, size_t from, size_t to);
int	 sqlscan_error_line(const char *sql, int first_line, int cursorpos);
size_t	 sqlscan_char_offset(const char *sql, int cursorpos);
int	 sqlscan_utf8_check(const char *s, size_t *bad);

#endif
