/* SQL analysis of migration sections with PostgreSQL's parser (libpg_query). */
#ifndef MIGD_SQLSCAN_H
#define MIGD_SQLSCAN_H

#include <stddef.h>

#include "lint.h"
#include "util.h"

/* Cannot run inside a transaction block (VACUUM, CREATE INDEX CONCURRENTLY). */
#define SQLSCAN_NO_TX		0x1
/*
 * Begins or ends a transaction: BEGIN, START TRANSACTION, COMMIT, END,
 * ROLLBACK, ABORT, PREPARE TRANSACTION, COMMIT PREPARED, ROLLBACK PREPARED
 * (the last two also NO_TX). Not SAVEPOINT, RELEASE or ROLLBACK TO.
 */
#define SQLSCAN_TX_CONTROL	0x2
#define SQLSCAN_DROP_SCHEMA	0x4	/* DROP SCHEMA: names in sqlscan.drops */
/* Finer kinds of transaction control, beside SQLSCAN_TX_CONTROL. */
#define SQLSCAN_TX_BEGIN	0x8	/* BEGIN, START TRANSACTION */
#define SQLSCAN_TX_COMMIT	0x10	/* COMMIT, END (also AND CHAIN) */
#define SQLSCAN_TX_CHAIN	0x20	/* ... AND CHAIN (with COMMIT/ROLLBACK) */
#define SQLSCAN_TX_ROLLBACK	0x40	/* ROLLBACK, ABORT (also AND CHAIN) */
#define SQLSCAN_TX_PREPARED	0x80	/* PREPARE TRANSACTION, COMMIT/ROLLBACK
					   PREPARED */
/* SAVEPOINT, RELEASE [SAVEPOINT], ROLLBACK TO [SAVEPOINT]: not TX_CONTROL. */
#define SQLSCAN_SAVEPOINT	0x100
/* ALTER SCHEMA ... RENAME: the old name is in sqlscan.drops. */
#define SQLSCAN_RENAME_SCHEMA	0x200
/*
 * Waits for older transactions by design (CREATE INDEX, REINDEX, DROP INDEX
 * and DETACH PARTITION CONCURRENTLY): run with their own timeouts.
 */
#define SQLSCAN_CONCURRENT	0x400
/* Leaves an INVALID index when it fails (CREATE INDEX and REINDEX
 * CONCURRENTLY). */
#define SQLSCAN_BUILDS_INDEX	0x800
/* COPY ... FROM STDIN or TO STDOUT: data to or from the client, which migd
 * neither has nor wants (COPY with a file or PROGRAM is not flagged). */
#define SQLSCAN_COPY_CLIENT	0x1000
/* SET TRANSACTION (its characteristics or SNAPSHOT): only before the
 * transaction's first query, so before migd's own (run.c sends it with
 * the BEGIN). */
#define SQLSCAN_TX_SET		0x2000

/*
 * What a statement may leave in the server session (struct sqlscan_stmt's
 * session), so that migd puts back only that after a migration: the
 * parse tree says it, and anything that could run code the tree does not
 * show (a DO block, a function call, a row's triggers, a query) is
 * SQLSCAN_SESSION_CODE, which may have changed all of it.
 */
#define SQLSCAN_SESSION_SETS	0x1	/* SET, RESET, SET ROLE, SET SESSION
					   AUTHORIZATION */
#define SQLSCAN_SESSION_PREPARED 0x2	/* PREPARE, DEALLOCATE */
#define SQLSCAN_SESSION_CURSORS	0x4	/* DECLARE, CLOSE */
#define SQLSCAN_SESSION_LISTEN	0x8	/* LISTEN, UNLISTEN */
#define SQLSCAN_SESSION_TEMP	0x10	/* temporary tables, views, sequences,
					   anything in pg_temp */
#define SQLSCAN_SESSION_SEQUENCES 0x20	/* nextval without a call: ALTER TABLE
					   ADD COLUMN of a serial or identity */
#define SQLSCAN_SESSION_CODE	0x40	/* may run code the tree does not show */
#define SQLSCAN_SESSION_ALL	0x7f

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
	int		 session;	/* SQLSCAN_SESSION_* */
	/*
	 * The lock mode (as pg_locks names it) it asks for on the tables it
	 * names, or a stronger one; NULL when migd does not know it.
	 */
	const char	*lock;
};

struct sqlscan_schema {
	/* As the server sees it: case-folded, unquoted, cut to 63 bytes. */
	char		*name;
	int		 line;	/* file line of the first statement naming it */
	/*
	 * SQLSCAN_CREATED when the section runs CREATE SCHEMA name without IF
	 * NOT EXISTS, SQLSCAN_RENAMED_TO when it renames a schema to name:
	 * either way migd must not create the schema beforehand.
	 */
	int		 created;
};
#define SQLSCAN_CREATED		1
#define SQLSCAN_RENAMED_TO	2

/* A schema that a statement drops (DROP SCHEMA) or renames away. */
struct sqlscan_drop {
	char		*name;	/* as the server sees it, like schemas */
	int		 line;	/* file line of the statement */
	const char	*what;	/* "DROP SCHEMA", "ALTER SCHEMA ... RENAME" */
};

struct sqlscan {
	struct sqlscan_stmt	*stmts;
	size_t			 n_stmts;
	/* In order of first appearance, unique, no system schemas. */
	struct sqlscan_schema	*schemas;
	size_t			 n_schemas;
	/* Every schema dropped or renamed, in statement order, repeats kept. */
	struct sqlscan_drop	*drops;
	size_t			 n_drops;
	int			 flags;	/* OR of all statement flags */
	/* OR of all statements' session (SQLSCAN_SESSION_ALL when unparsed). */
	int			 session;
	/*
	 * Set when PostgreSQL's parser (sqlscan_parser_version())
	 * refused the section but its scanner could split it: statements come
	 * from the scanner, flagged only for the transaction control their
	 * first words show (BEGIN, COMMIT [AND CHAIN], ROLLBACK, SAVEPOINT,
	 * PREPARE TRANSACTION...), no schemas or drops are known, and
	 * parse_error holds "PATH:LINE: message" (owned).
	 */
	int			 unparsed;
	char			*parse_error;
	int			 parse_error_line;
	/* What lint saw of each statement (none when unparsed). */
	struct lint_scan	 lint;
};

/* The PostgreSQL version of libpg_query's parser, as PQserverVersion has it
 * (150001 for Debian 12's libpg_query). */
int	 sqlscan_parser_version(void);

/*
 * Parses one section (sql, NUL-terminated) that starts at line first_line of
 * path. Fills *sc (which need not be initialised) and returns 0; or returns 1
 * when the parser refused the SQL but the scanner split it into statements
 * (sc->unparsed, sc->parse_error set; errs untouched: the caller decides
 * whether that is an error, e.g. SQL newer than the parser); or returns -1
 * with "PATH:LINE: message" added to errs and *sc left empty (not even the
 * scanner could read it, or it is not valid UTF-8). Either way the caller
 * may call sqlscan_clear(sc). An empty or comment-only section is valid and
 * has no statements.
 */
int	 sqlscan_analyze(const char *sql, const char *path, int first_line,
	    struct sqlscan *sc, struct errlist *errs);
void	 sqlscan_clear(struct sqlscan *sc);
void	 sqlscan_copy(struct sqlscan *dst, const struct sqlscan *src);

/* What a parsed statement ({"VariableSetStmt": ...}) may leave in the
 * session: SQLSCAN_SESSION_* bits. */
int	 sqlscan_session(json_t *stmt);

/* 1 for pg_catalog, information_schema and any "pg_" name (pg_temp_3...). */
int	 sqlscan_system_schema(const char *name);

/* Always-quoted identifier ("na""me") for SQL built by migd; to free. */
char	*sqlscan_quote_ident(const char *name);

/* libpg_query's parse tree as JSON, read by sqlscan.c and lint.c alike. */
json_t		*sqlscan_node(json_t *wrapped, const char **type);
const char	*sqlscan_str(json_t *obj, const char *key);
int		 sqlscan_is(json_t *obj, const char *key, const char *want);
int		 sqlscan_true(json_t *obj, const char *key);
json_t		*sqlscan_defelem(json_t *list, const char *name);
int		 sqlscan_defbool(json_t *def, int dflt);

#endif
