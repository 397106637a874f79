/*
 * Unit tests for sqlscan: splitting, lines, flags, schemas, drops, errors and
 * the scanner's split of what the parser refuses.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sqlscan.h"
#include "tap.h"

static struct sqlscan	sc;
static struct errlist	errs;
static const char	*cur;	/* section text of the last scan() */

/* Analyses sql as a section of m.sql at line first, dropping the last one. */
static int
scan(const char *sql, int first)
{
	sqlscan_clear(&sc);
	errlist_clear(&errs);
	cur = sql;
	return (sqlscan_analyze(sql, "m.sql", first, &sc, &errs));
}

/* Statement i's text, so tests can compare exact byte ranges. */
static const char *
st_text(size_t i)
{
	static char	 buf[1024];

	if (i >= sc.n_stmts)
		return ("(no such statement)");
	snprintf(buf, sizeof buf, "%.*s", (int)sc.stmts[i].len,
	    cur + sc.stmts[i].offset);
	return (buf);
}

/* Statement i's line or -1: a miscount fails tests, not crashes them. */
static int
st_line(size_t i)
{
	return (i < sc.n_stmts ? sc.stmts[i].line : -1);
}

/* Statement i's flags from the last scan, or -1. */
static int
st_flags(size_t i)
{
	return (i < sc.n_stmts ? sc.stmts[i].flags : -1);
}

/* Statement i's name from the last scan, or "(no such statement)". */
static const char *
st_what(size_t i)
{
	return (i < sc.n_stmts ? sc.stmts[i].what : "(no such statement)");
}

/* The first error of the last scan, else the parser's refusal, or NULL. */
static const char *
err(void)
{
	return (errs.n > 0 ? errs.v[0] : sc.parse_error);
}

/* Flags of a one-statement section: the common shape of the flag tests. */
static int
flags1(const char *sql)
{
	if (scan(sql, 1) != 0 || sc.n_stmts != 1)
		return (-1);
	return (st_flags(0));
}

/* Checks that sql is one statement with exactly flags and name what. */
static void
check_flags(const char *sql, int flags, const char *what)
{
	int	 got = flags1(sql);

	is_int(got, flags, "flags of: %s", sql);
	if (got == flags) {
		is_str(st_what(0), what, "what of: %s", sql);
		is_int(sc.flags, flags, "section flags of: %s", sql);
	}
}

/* Schemas as "a,b+": "+" marks those that the section creates. */
static const char *
schemas(void)
{
	static char	 buf[1024];
	size_t		 i, off = 0;

	buf[0] = '\0';
	for (i = 0; i < sc.n_schemas && off < sizeof buf; i++) {
		off += snprintf(buf + off, sizeof buf - off, "%s%s%s",
		    i ? "," : "", sc.schemas[i].name,
		    sc.schemas[i].created == SQLSCAN_CREATED ? "+" :
		    sc.schemas[i].created == SQLSCAN_RENAMED_TO ? ">" : "");
	}
	return (buf);
}

/* Dropped schemas as "a@3,b@3": name and line of each, in order. */
static const char *
drops(void)
{
	static char	 buf[1024];
	size_t		 i, off = 0;

	buf[0] = '\0';
	for (i = 0; i < sc.n_drops && off < sizeof buf; i++) {
		off += snprintf(buf + off, sizeof buf - off, "%s%s@%d",
		    i ? "," : "", sc.drops[i].name, sc.drops[i].line);
	}
	return (buf);
}

/* Drop i's name for messages, or "(no such drop)". */
static const char *
drop_what(size_t i)
{
	return (i < sc.n_drops ? sc.drops[i].what : "(no such drop)");
}

/* Offset of statement i or -1, to compare with where its text really is. */
static long
st_offset(size_t i)
{
	return (i < sc.n_stmts ? (long)sc.stmts[i].offset : -1);
}

/* Checks the schemas that a one-or-more statement section names. */
static void
check_schemas(const char *sql, const char *want)
{
	int	 rv = scan(sql, 1);

	is_int(rv, 0, "parses: %s", sql);
	is_str(schemas(), want, "schemas of: %s", sql);
}

/* Splitting and lines: multi-line statements with comments around them. */
static void
test_split(void)
{
	const char	*sql;

	sql =
	    "\n"					/* 10 */
	    "-- first a table\n"			/* 11 */
	    "CREATE TABLE a (\n"			/* 12 */
	    "    id int\n"				/* 13 */
	    ");\n"					/* 14 */
	    "\n"					/* 15 */
	    "/* a /* nested */ comment\n"		/* 16 */
	    "   still */  INSERT INTO a\n"		/* 17 */
	    "VALUES (1) ;   -- tail\n"		/* 18 */
	    "SELECT 1;SELECT 2  ;\n"			/* 19 */
	    "  UPDATE a SET id = 2 -- no semicolon\n"	/* 20 */
	    "-- comment-only tail\n";			/* 21 */
	is_int(scan(sql, 10), 0, "split: parses");
	is_int(sc.n_stmts, 5, "split: five statements");
	is_str(st_text(0), "CREATE TABLE a (\n    id int\n)", "split: 1 text");
	is_int(st_line(0), 12, "split: 1 line");
	is_str(st_text(1), "INSERT INTO a\nVALUES (1)", "split: 2 text");
	is_int(st_line(1), 17, "split: 2 line after nested comment");
	is_str(st_text(2), "SELECT 1", "split: 3 text");
	is_int(st_line(2), 19, "split: 3 line");
	is_str(st_text(3), "SELECT 2", "split: 4 text, no space before ;");
	is_int(st_line(3), 19, "split: 4 same line");
	is_str(st_text(4), "UPDATE a SET id = 2",
	    "split: 5 text, no trailing comment");
	is_int(st_line(4), 20, "split: 5 line");
	is_int(sc.flags, 0, "split: no flags");
	ok(st_what(0) == NULL, "split: what NULL without flags");
	is_int(errs.n, 0, "split: no errors");

	is_int(scan("SELECT 1", 1), 0, "single: parses");
	is_int(sc.n_stmts, 1, "single: one statement");
	is_int(sc.n_stmts ? sc.stmts[0].offset : 99, 0,
	    "single: offset 0 (stmt_location left out)");
	is_str(st_text(0), "SELECT 1",
	    "single: whole input (stmt_len left out)");

	is_int(scan("SELECT 1;\n\n", 1), 0, "trailing blank lines: parses");
	is_str(st_text(0), "SELECT 1", "trailing blank lines: text");

	is_int(scan("SELECT 1;\r\n\r\n  SELECT 2\r\n", 1), 0, "crlf: parses");
	is_str(st_text(1), "SELECT 2", "crlf: text");
	is_int(st_line(1), 3, "crlf: line");

	is_int(scan(";;SELECT 1;;\n;SELECT 2;;", 1), 0,
	    "empty statements: parse");
	is_int(sc.n_stmts, 2, "empty statements: dropped");
	is_str(st_text(1), "SELECT 2", "empty statements: text");

	is_int(scan("", 1), 0, "empty: parses");
	is_int(sc.n_stmts, 0, "empty: no statements");
	is_int(sc.n_schemas, 0, "empty: no schemas");
	is_int(scan("  \n-- nothing\n/* at all */\n", 1), 0, "comments only");
	is_int(sc.n_stmts, 0, "comments only: no statements");

	is_int(scan("CREATE RULE r AS ON INSERT TO t DO ALSO (SELECT 1; "
	    "SELECT 2);\nSELECT 3", 1), 0, "rule with ; inside: parses");
	is_int(sc.n_stmts, 2, "rule with ; inside: two statements");
	is_str(st_text(0), "CREATE RULE r AS ON INSERT TO t DO ALSO (SELECT 1; "
	    "SELECT 2)", "rule with ; inside: text");
	is_int(st_line(1), 2, "rule with ; inside: next line");
}

/* Semicolons inside bodies, literals and comments are not statement ends. */
static void
test_quoting(void)
{
	const char	*sql;

	sql =
	    "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$\n"	/* 1 */
	    "BEGIN\n"							/* 2 */
	    "  PERFORM 1; -- ;\n"					/* 3 */
	    "  RETURN 2;\n"						/* 4 */
	    "END;\n"							/* 5 */
	    "$$;\n"							/* 6 */
	    "CREATE FUNCTION g() RETURNS text LANGUAGE plpgsql AS "	/* 7 */
	    "$body$\n"
	    "BEGIN RETURN $$x;y$$; END;\n"				/* 8 */
	    "$body$;\n"							/* 9 */
	    "DO $do$ BEGIN RAISE NOTICE 'a;b'; END $do$;\n"		/* 10 */
	    "SELECT 'it''s; -- not a comment', E'\\'; /* */', "	/* 11 */
	    "\"semi;colon\" FROM t;\n"
	    "SELECT $1, a$b$ FROM t;\n"				/* 12 */
	    "SELECT 1 -- ; trailing\n"					/* 13 */
	    ";\n";							/* 14 */
	is_int(scan(sql, 1), 0, "quoting: parses");
	is_int(sc.n_stmts, 6, "quoting: six statements");
	is_int(st_line(0), 1, "quoting: $$ function line");
	is_str(st_text(0), "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql "
	    "AS $$\nBEGIN\n  PERFORM 1; -- ;\n  RETURN 2;\nEND;\n$$",
	    "quoting: $$ function text whole");
	is_int(st_line(1), 7, "quoting: $body$ function line");
	ok(strstr(st_text(1), "$body$\nBEGIN RETURN $$x;y$$; END;\n$body$") !=
	    NULL, "quoting: $body$ function text whole");
	is_int(st_line(2), 10, "quoting: DO line");
	is_str(st_text(2), "DO $do$ BEGIN RAISE NOTICE 'a;b'; END $do$",
	    "quoting: DO text");
	is_int(st_line(3), 11, "quoting: literals line");
	is_str(st_text(3), "SELECT 'it''s; -- not a comment', E'\\'; /* */', "
	    "\"semi;colon\" FROM t", "quoting: literals text");
	is_int(st_line(4), 12, "quoting: a$b$ is a name, not a quote");
	is_str(st_text(5), "SELECT 1", "quoting: comment before ; dropped");
	is_int(st_line(5), 13, "quoting: last line");
	is_int(sc.n_schemas, 0, "quoting: function bodies not looked into");

	is_int(scan("SELECT 'é;ü' AS \"ö\";\nSELECT 2", 1), 0,
	    "utf-8: parses");
	is_str(st_text(0), "SELECT 'é;ü' AS \"ö\"", "utf-8: byte range");
	is_str(st_text(1), "SELECT 2", "utf-8: second statement");
}

/* Every statement refused inside a transaction block, and near misses. */
static void
test_no_tx(void)
{
	int	 N = SQLSCAN_NO_TX;
	/* Waits for older transactions; and leaves an INVALID index. */
	int	 C = N | SQLSCAN_CONCURRENT;
	int	 B = C | SQLSCAN_BUILDS_INDEX;

	check_flags("CREATE INDEX CONCURRENTLY i ON t (a)", B,
	    "CREATE INDEX CONCURRENTLY");
	check_flags("create unique index concurrently if not exists i on s.t "
	    "(a)", B, "CREATE INDEX CONCURRENTLY");
	check_flags("CREATE INDEX i ON t (a)", 0, NULL);
	check_flags("DROP INDEX CONCURRENTLY IF EXISTS s.i", C,
	    "DROP INDEX CONCURRENTLY");
	check_flags("DROP INDEX s.i", 0, NULL);
	check_flags("REINDEX INDEX CONCURRENTLY i", B, "REINDEX CONCURRENTLY");
	check_flags("REINDEX TABLE CONCURRENTLY s.t", B,
	    "REINDEX CONCURRENTLY");
	check_flags("REINDEX (CONCURRENTLY) TABLE t", B,
	    "REINDEX CONCURRENTLY");
	check_flags("REINDEX (VERBOSE, CONCURRENTLY true) TABLE t", B,
	    "REINDEX CONCURRENTLY");
	check_flags("REINDEX (CONCURRENTLY 1) TABLE t", B,
	    "REINDEX CONCURRENTLY");
	check_flags("REINDEX (CONCURRENTLY false) TABLE t", 0, NULL);
	check_flags("REINDEX (CONCURRENTLY off) TABLE t", 0, NULL);
	check_flags("REINDEX (CONCURRENTLY 0) TABLE t", 0, NULL);
	check_flags("REINDEX TABLE t", 0, NULL);
	check_flags("REINDEX (VERBOSE) INDEX i", 0, NULL);
	check_flags("REINDEX SCHEMA s", N, "REINDEX SCHEMA");
	check_flags("REINDEX SCHEMA CONCURRENTLY s", B, "REINDEX SCHEMA");
	check_flags("REINDEX DATABASE d", N, "REINDEX DATABASE");
	check_flags("REINDEX SYSTEM d", N, "REINDEX SYSTEM");
	check_flags("VACUUM", N, "VACUUM");
	check_flags("VACUUM FULL s.t", N, "VACUUM");
	check_flags("VACUUM (ANALYZE, VERBOSE) t", N, "VACUUM");
	check_flags("vacuum analyze t", N, "VACUUM");
	check_flags("ANALYZE t", 0, NULL);
	check_flags("ANALYZE", 0, NULL);
	check_flags("CREATE DATABASE d", N, "CREATE DATABASE");
	check_flags("DROP DATABASE IF EXISTS d", N, "DROP DATABASE");
	check_flags("ALTER DATABASE d SET TABLESPACE ts", N,
	    "ALTER DATABASE ... SET TABLESPACE");
	check_flags("ALTER DATABASE d SET work_mem = '1MB'", 0, NULL);
	check_flags("ALTER DATABASE d CONNECTION LIMIT 5", 0, NULL);
	check_flags("CREATE TABLESPACE ts LOCATION '/srv/ts'", N,
	    "CREATE TABLESPACE");
	check_flags("DROP TABLESPACE ts", N, "DROP TABLESPACE");
	check_flags("ALTER SYSTEM SET work_mem = '1MB'", N, "ALTER SYSTEM");
	check_flags("CREATE SUBSCRIPTION sub CONNECTION 'host=a' PUBLICATION p",
	    N, "CREATE SUBSCRIPTION");
	check_flags("CREATE SUBSCRIPTION sub CONNECTION 'host=a' PUBLICATION p "
	    "WITH (create_slot = false)", 0, NULL);
	check_flags("CREATE SUBSCRIPTION sub CONNECTION 'host=a' PUBLICATION p "
	    "WITH (connect = false)", 0, NULL);
	check_flags("DROP SUBSCRIPTION sub", N, "DROP SUBSCRIPTION");
	check_flags("ALTER SUBSCRIPTION sub REFRESH PUBLICATION", N,
	    "ALTER SUBSCRIPTION ... REFRESH PUBLICATION");
	check_flags("ALTER SUBSCRIPTION sub REFRESH PUBLICATION WITH "
	    "(copy_data = false)", N,
	    "ALTER SUBSCRIPTION ... REFRESH PUBLICATION");
	check_flags("ALTER SUBSCRIPTION sub SET PUBLICATION p", N,
	    "ALTER SUBSCRIPTION ... SET PUBLICATION");
	check_flags("ALTER SUBSCRIPTION sub ADD PUBLICATION p", N,
	    "ALTER SUBSCRIPTION ... ADD PUBLICATION");
	check_flags("ALTER SUBSCRIPTION sub SET PUBLICATION p WITH "
	    "(refresh = false)", 0, NULL);
	check_flags("ALTER SUBSCRIPTION sub DISABLE", 0, NULL);
	check_flags("CLUSTER", N, "CLUSTER");
	check_flags("CLUSTER VERBOSE", N, "CLUSTER");
	check_flags("CLUSTER t", 0, NULL);
	check_flags("CLUSTER t USING i", 0, NULL);
	check_flags("ALTER TABLE s.p DETACH PARTITION s.c CONCURRENTLY", C,
	    "ALTER TABLE ... DETACH PARTITION CONCURRENTLY");
	check_flags("ALTER TABLE IF EXISTS ONLY p DETACH PARTITION c "
	    "CONCURRENTLY", C, "ALTER TABLE ... DETACH PARTITION CONCURRENTLY");
	check_flags("ALTER TABLE p DETACH PARTITION c", 0, NULL);
	check_flags("ALTER TABLE p DETACH PARTITION c FINALIZE", 0, NULL);
	check_flags("DISCARD ALL", N, "DISCARD ALL");
	check_flags("DISCARD PLANS", 0, NULL);
	check_flags("REFRESH MATERIALIZED VIEW CONCURRENTLY v", 0, NULL);
	check_flags("ALTER TYPE e ADD VALUE 'x'", 0, NULL);

	/* The section's flags are the OR; each statement keeps its own. */
	is_int(scan("CREATE TABLE t (a int);\nCREATE INDEX CONCURRENTLY i ON t "
	    "(a);\nVACUUM t;", 1), 0, "mixed: parses");
	is_int(sc.flags, B, "mixed: section flags");
	is_int(st_flags(0), 0, "mixed: table is transactional");
	is_int(st_flags(1), B, "mixed: index is not");
	is_int(st_flags(2), N, "mixed: vacuum waits for no one");
	is_int(st_line(1), 2, "mixed: index line");
	is_str(st_what(2), "VACUUM", "mixed: vacuum");
}

static void	check_unparsed(const char *, int, const char *, size_t);

/* Statements that begin or end transactions, and savepoints apart. */
static void
test_tx_control(void)
{
	int	 T = SQLSCAN_TX_CONTROL, B = T | SQLSCAN_TX_BEGIN;
	int	 C = T | SQLSCAN_TX_COMMIT, R = T | SQLSCAN_TX_ROLLBACK;
	int	 P = T | SQLSCAN_TX_PREPARED, CH = SQLSCAN_TX_CHAIN;
	int	 S = SQLSCAN_SAVEPOINT;

	check_flags("BEGIN", B, "BEGIN");
	check_flags("BEGIN ISOLATION LEVEL SERIALIZABLE", B, "BEGIN");
	check_flags("begin work", B, "BEGIN");
	check_flags("START TRANSACTION", B, "START TRANSACTION");
	check_flags("START TRANSACTION READ ONLY", B, "START TRANSACTION");
	check_flags("COMMIT", C, "COMMIT");
	check_flags("COMMIT WORK", C, "COMMIT");
	check_flags("COMMIT AND CHAIN", C | CH, "COMMIT AND CHAIN");
	check_flags("COMMIT AND NO CHAIN", C, "COMMIT");
	check_flags("END", C, "COMMIT");
	check_flags("END TRANSACTION AND CHAIN", C | CH, "COMMIT AND CHAIN");
	check_flags("ROLLBACK", R, "ROLLBACK");
	check_flags("ROLLBACK AND CHAIN", R | CH, "ROLLBACK AND CHAIN");
	check_flags("ROLLBACK AND NO CHAIN", R, "ROLLBACK");
	check_flags("ABORT", R, "ROLLBACK");
	check_flags("abort and chain", R | CH, "ROLLBACK AND CHAIN");
	check_flags("PREPARE TRANSACTION 'x'", P, "PREPARE TRANSACTION");
	check_flags("COMMIT PREPARED 'x'", P | SQLSCAN_NO_TX,
	    "COMMIT PREPARED");
	check_flags("ROLLBACK PREPARED 'x'", P | SQLSCAN_NO_TX,
	    "ROLLBACK PREPARED");
	check_flags("SAVEPOINT a", S, "SAVEPOINT");
	check_flags("RELEASE SAVEPOINT a", S, "RELEASE SAVEPOINT");
	check_flags("RELEASE a", S, "RELEASE SAVEPOINT");
	check_flags("ROLLBACK TO SAVEPOINT a", S, "ROLLBACK TO SAVEPOINT");
	check_flags("ROLLBACK TO a", S, "ROLLBACK TO SAVEPOINT");
	check_flags("ROLLBACK WORK TO a", S, "ROLLBACK TO SAVEPOINT");
	check_flags("DO $$BEGIN COMMIT; END$$", 0, NULL);
	check_flags("PREPARE q AS SELECT 1", 0, NULL);
	/* Only before the transaction's first query: run.c sends it with
	 * the BEGIN, before migd's own queries. */
	check_flags("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
	    SQLSCAN_TX_SET, "SET TRANSACTION");
	check_flags("set transaction read write, not deferrable",
	    SQLSCAN_TX_SET, "SET TRANSACTION");
	check_flags("SET TRANSACTION SNAPSHOT '00000003-0000001B-1'",
	    SQLSCAN_TX_SET, "SET TRANSACTION");
	check_flags("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION "
	    "LEVEL SERIALIZABLE", 0, NULL);
	check_flags("SET LOCAL transaction_isolation = 'serializable'", 0,
	    NULL);
	check_unparsed("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE;\n"
	    "SELECT * FROM (SELECT 1);", 1, "m.sql:2: subquery in FROM must "
	    "have an alias", 2);
	is_int(st_flags(0), SQLSCAN_TX_SET, "unparsed: SET TRANSACTION known "
	    "by its first words");
	is_int(st_flags(1), 0, "unparsed: the query after it");

	is_int(scan("BEGIN;\nCREATE TABLE t (a int);\nCOMMIT;\n", 5), 0,
	    "wrapped: parses");
	is_int(sc.flags, B | C, "wrapped: section flags");
	is_int(st_line(2), 7, "wrapped: COMMIT line");

	is_int(scan("BEGIN;\nSAVEPOINT s;\nROLLBACK TO s;\nRELEASE s;\n"
	    "COMMIT AND CHAIN;\nROLLBACK;\n", 1), 0, "savepoints: parse");
	is_int(sc.flags, B | C | R | CH | S, "savepoints: section flags");
	is_int(st_flags(1), S, "savepoints: SAVEPOINT alone");
	is_int(st_flags(4), C | CH, "savepoints: COMMIT AND CHAIN");
	is_int(st_flags(5), R, "savepoints: ROLLBACK without CHAIN");
	is_int(sc.n_drops, 0, "savepoints: no drops");
}

/* DROP SCHEMA is flagged, and its schemas listed, so migd can refuse. */
static void
test_drop_schema(void)
{
	int	 D = SQLSCAN_DROP_SCHEMA, RN = SQLSCAN_RENAME_SCHEMA;

	check_flags("DROP SCHEMA cars CASCADE", D, "DROP SCHEMA");
	is_str(drops(), "cars@1", "drop: name");
	is_str(drop_what(0), "DROP SCHEMA", "drop: what");
	check_flags("DROP SCHEMA IF EXISTS a, \"B\", Cc, \"d\"\"e\" CASCADE", D,
	    "DROP SCHEMA");
	is_str(drops(), "a@1,B@1,cc@1,d\"e@1", "drop: several, as the server "
	    "sees them");
	is_str(drop_what(3), "DROP SCHEMA", "drop: what of the last");
	check_flags("DROP SCHEMA pg_temp_3, information_schema, public", D,
	    "DROP SCHEMA");
	is_str(drops(), "pg_temp_3@1,information_schema@1,public@1",
	    "drop: system schemas kept");
	check_flags("DROP SCHEMA "
	    "s1234567890123456789012345678901234567890123456789012345678901234"
	    "567890", D, "DROP SCHEMA");
	is_str(drops(),
	    "s12345678901234567890123456789012345678901234567890123456789012@1",
	    "drop: cut to 63 bytes");
	check_flags("DROP TABLE cars.cars", 0, NULL);
	is_int(sc.n_drops, 0, "drop table: no drops");
	check_flags("DROP OWNED BY bob", 0, NULL);
	check_schemas("DROP SCHEMA cars", "");

	/* Renaming takes the old name away and makes the new one. */
	check_flags("ALTER SCHEMA \"Old\" RENAME TO \"New Name\"", RN,
	    "ALTER SCHEMA ... RENAME");
	is_str(drops(), "Old@1", "rename: old name dropped");
	is_str(drop_what(0), "ALTER SCHEMA ... RENAME", "rename: what");
	is_str(schemas(), "New Name>", "rename: new name comes from the rename");
	check_flags("ALTER SCHEMA a OWNER TO bob", 0, NULL);
	is_int(sc.n_drops, 0, "schema owner: no drops");
	check_flags("ALTER TABLE a.t RENAME TO u", 0, NULL);
	is_int(sc.n_drops, 0, "table rename: no drops");
	is_str(schemas(), "a", "table rename: schema");
	check_flags("ALTER TABLE a.t RENAME COLUMN x TO y", 0, NULL);
	check_flags("ALTER INDEX a.i RENAME TO j", 0, NULL);

	/* In statement order, with lines, repeats kept. */
	is_int(scan(
	    "CREATE TABLE x.t (a int);\n"			/* 10 */
	    "\n"						/* 11 */
	    "DROP SCHEMA x;\n"					/* 12 */
	    "ALTER SCHEMA Y RENAME TO z;\n"			/* 13 */
	    "DROP SCHEMA\n"					/* 14 */
	    "  z, x;\n"						/* 15 */
	    "CREATE SCHEMA x;\n", 10), 0, "drops: parse");	/* 16 */
	is_str(drops(), "x@12,y@13,z@14,x@14", "drops: names and lines");
	is_str(drop_what(1), "ALTER SCHEMA ... RENAME", "drops: rename what");
	is_str(drop_what(2), "DROP SCHEMA", "drops: drop what");
	is_str(schemas(), "x+,z>", "drops: schemas (z from a rename)");
	is_int(sc.flags, D | RN, "drops: section flags");
	is_int(st_flags(1), D, "drops: DROP SCHEMA flags");
	is_int(st_flags(2), RN, "drops: rename flags");
	is_str(st_what(2), "ALTER SCHEMA ... RENAME", "drops: rename what");

	is_int(scan("", 1), 0, "drops: empty section");
	is_int(sc.n_drops, 0, "drops: none in an empty section");
	ok(sc.drops == NULL && sc.parse_error == NULL && !sc.unparsed,
	    "drops: empty section, nothing allocated");
}

/* Schema-qualified targets of every creating or altering statement kind. */
static void
test_schemas(void)
{
	check_schemas("CREATE TABLE a.t (id int)", "a");
	check_schemas("CREATE TABLE t (id int)", "");
	check_schemas("CREATE UNLOGGED TABLE IF NOT EXISTS a.t (id int)", "a");
	check_schemas("CREATE TABLE b.c PARTITION OF a.p FOR VALUES IN (1)",
	    "b");
	check_schemas("CREATE TABLE c.l (LIKE a.t INCLUDING ALL)", "c");
	check_schemas("CREATE TABLE d.x AS SELECT * FROM z.y", "d");
	check_schemas("SELECT * INTO e.x FROM z.y", "e");
	check_schemas("SELECT 1 AS a INTO e2.x UNION SELECT 2", "e2");
	check_schemas("SELECT * FROM z.y", "");
	check_schemas("INSERT INTO z.t SELECT * FROM y.t", "");
	check_schemas("CREATE MATERIALIZED VIEW f.v AS SELECT * FROM z.t",
	    "f");
	check_schemas("CREATE OR REPLACE VIEW g.v AS SELECT * FROM z.t", "g");
	check_schemas("CREATE INDEX ON h.t (a)", "h");
	check_schemas("CREATE UNIQUE INDEX i ON h2.t USING gin (a)", "h2");
	check_schemas("CREATE SEQUENCE i.s", "i");
	check_schemas("ALTER SEQUENCE j.s RESTART WITH 10", "j");
	check_schemas("CREATE FUNCTION k.f() RETURNS int LANGUAGE sql AS "
	    "$$SELECT 1 FROM z.t$$", "k");
	check_schemas("CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql "
	    "AS 'SELECT 1'", "");
	check_schemas("CREATE PROCEDURE l.p() LANGUAGE sql AS $$SELECT 1$$",
	    "l");
	check_schemas("CREATE TYPE m.c AS (x int)", "m");
	check_schemas("CREATE TYPE n.e AS ENUM ('a', 'b')", "n");
	check_schemas("CREATE TYPE o.r AS RANGE (subtype = int4)", "o");
	check_schemas("CREATE TYPE p.shell", "p");
	check_schemas("CREATE TYPE q.b (input = q.b_in, output = q.b_out)",
	    "q");
	check_schemas("CREATE DOMAIN r.d AS int CHECK (VALUE > 0)", "r");
	check_schemas("CREATE AGGREGATE s.a(int) (sfunc = int4pl, stype = int)",
	    "s");
	check_schemas("CREATE OPERATOR t.=== (function = f, leftarg = int, "
	    "rightarg = int)", "t");
	check_schemas("ALTER TABLE u.t ADD COLUMN x int", "u");
	check_schemas("ALTER TABLE IF EXISTS ONLY u2.t DROP COLUMN x", "u2");
	check_schemas("ALTER INDEX v.i SET (fillfactor = 50)", "v");
	check_schemas("ALTER VIEW w.v OWNER TO bob", "w");
	check_schemas("ALTER TABLE x.t RENAME COLUMN a TO b", "x");
	check_schemas("CREATE TRIGGER tr AFTER INSERT ON y.t FOR EACH ROW "
	    "EXECUTE FUNCTION z.f()", "y");
	check_schemas("CREATE STATISTICS st.s (dependencies) ON a, b FROM t",
	    "st");
	check_schemas("CREATE OPERATOR FAMILY opf.f USING btree", "opf");
	check_schemas("CREATE OPERATOR CLASS opc.c FOR TYPE int USING btree "
	    "AS OPERATOR 1 <", "opc");
	check_schemas("CREATE CONVERSION cv.c FOR 'LATIN1' TO 'UTF8' FROM "
	    "iso8859_1_to_utf8", "cv");
	check_schemas("CREATE POLICY p ON pol.t USING (true)", "pol");
	check_schemas("CREATE RULE r AS ON INSERT TO rl.t DO NOTHING", "rl");
	check_schemas("ALTER TABLE m.t SET SCHEMA z", "z");
	check_schemas("ALTER FUNCTION o.f() SET SCHEMA z2", "z2");
	check_schemas("ALTER TYPE q.t SET SCHEMA z3", "z3");
	check_schemas("CREATE FOREIGN TABLE ft.t (x int) SERVER srv", "ft");
	check_schemas("CREATE EXTENSION IF NOT EXISTS hstore SCHEMA ext",
	    "ext");
	check_schemas("CREATE EXTENSION hstore", "");
	check_schemas("CREATE TABLE db.sch.t (x int)", "sch");
	check_schemas("CREATE FUNCTION db.sch2.f() RETURNS int LANGUAGE sql AS "
	    "'SELECT 1'", "sch2");
	check_schemas("COMMENT ON TABLE cm.t IS 'x'", "");
	check_schemas("GRANT USAGE ON SCHEMA gr TO bob", "");
	check_schemas("DO $$BEGIN CREATE TABLE dob.t (x int); END$$", "");

	/* CREATE SCHEMA itself, with and without IF NOT EXISTS and elements. */
	check_schemas("CREATE SCHEMA cars", "cars+");
	check_schemas("CREATE SCHEMA IF NOT EXISTS cars", "cars");
	check_schemas("CREATE SCHEMA AUTHORIZATION joe", "joe+");
	check_schemas("CREATE SCHEMA AUTHORIZATION CURRENT_USER", "");
	check_schemas("CREATE SCHEMA shop CREATE TABLE t (x int) "
	    "CREATE VIEW shop.v AS SELECT 1 CREATE INDEX ON t (x) "
	    "CREATE SEQUENCE sq", "shop+");
	check_schemas("CREATE SCHEMA a1 CREATE TABLE b1.t (x int)", "a1+,b1");
	check_schemas("CREATE TABLE cars.t (x int); CREATE SCHEMA cars",
	    "cars+");
	check_schemas("CREATE SCHEMA IF NOT EXISTS cars; CREATE SCHEMA cars",
	    "cars+");

	/* Names as the server sees them: quoted, folded, truncated. */
	check_schemas("CREATE TABLE \"Work Shop\".t (x int)", "Work Shop");
	check_schemas("CREATE TABLE CARS.x (y int)", "cars");
	check_schemas("CREATE TABLE \"CARS\".x (y int)", "CARS");
	check_schemas("CREATE TABLE \"a\"\"b\".x (y int)", "a\"b");
	check_schemas("CREATE TABLE "
	    "s1234567890123456789012345678901234567890123456789012345678901234"
	    "567890.t (x int)",
	    "s12345678901234567890123456789012345678901234567890123456789012");

	/* System schemas always exist. */
	check_schemas("CREATE TABLE pg_temp.t (x int)", "");
	check_schemas("CREATE FUNCTION pg_catalog.f() RETURNS int LANGUAGE sql "
	    "AS 'SELECT 1'", "");
	check_schemas("CREATE VIEW information_schema.v AS SELECT 1", "");
	check_schemas("CREATE TEMP TABLE t (x int)", "");

	/* Unique, in order of first appearance, keeping the first line. */
	is_int(scan(
	    "CREATE TABLE cars.cars (id int);\n"			/* 20 */
	    "\n"							/* 21 */
	    "CREATE TABLE participants.p (id int);\n"			/* 22 */
	    "CREATE INDEX ON cars.cars (id);\n"				/* 23 */
	    "CREATE SCHEMA \"Work Shop\";\n"				/* 24 */
	    "CREATE TABLE \"Work Shop\".w (id int);\n"		/* 25 */
	    "CREATE TABLE pg_catalog.x (id int);\n"			/* 26 */
	    "CREATE VIEW Participants.v AS SELECT * FROM other.t;\n",	/* 27 */
	    20), 0, "many: parses");
	is_str(schemas(), "cars,participants,Work Shop+", "many: schemas");
	is_int(sc.schemas[0].line, 20, "many: cars first line");
	is_int(sc.schemas[1].line, 22, "many: participants first line");
	is_int(sc.schemas[2].line, 24, "many: Work Shop line");
}

/* Checks that the parser refused sql and the scanner split it instead. */
static void
check_unparsed(const char *sql, int first, const char *msg, size_t n)
{
	is_int(scan(sql, first), 1, "unparsed: %s", msg);
	is_str(err(), msg, "unparsed message: %s", msg);
	is_int(errs.n, 0, "unparsed, no errors: %s", msg);
	ok(sc.unparsed, "unparsed set: %s", msg);
	is_int(sc.parse_error_line, atoi(msg + strlen("m.sql:")),
	    "unparsed line: %s", msg);
	is_int(sc.n_stmts, (int)n, "unparsed statements: %s", msg);
}

/*
 * Parse errors name the file and the line of the error position: in
 * parse_error with the scanner's split when the scanner reads the section,
 * in errs when it does not.
 */
static void
test_errors(void)
{
	check_unparsed("SELEC 1", 1, "m.sql:1: syntax error at or near "
	    "\"SELEC\"", 1);
	is_str(st_text(0), "SELEC 1", "error: statement kept");

	check_unparsed(
	    "CREATE TABLE a (x int);\n"	/* 40 */
	    "-- fine\n"				/* 41 */
	    "CREATE TABLE b (\n"		/* 42 */
	    "  x int,\n"			/* 43 */
	    "  y intt intt\n"			/* 44 */
	    ");\n", 40, "m.sql:44: syntax error at or near \"intt\"", 2);
	is_int(sc.n_schemas, 0, "multi-line error: no schemas");
	is_int(st_line(1), 42, "multi-line error: second statement line");

	/*
	 * cursorpos counts characters: read as bytes, it would fall 21 bytes
	 * (one per "é") short of the error, back on line 8.
	 */
	check_unparsed(
	    "SELECT 'ééééééééééééééééééééé';\n"	/* 7 */
	    "SELECT 1 FROM t WHERE\n"			/* 8 */
	    "x = 1 ORDER ORDER;\n"			/* 9 */
	    "SELECT 1;\n", 7, "m.sql:9: syntax error at or near \"ORDER\"",
	    3);
	check_unparsed("SELECT '日本語' AS \"ü\"\n,\n  FROM\n", 3,
	    "m.sql:5: syntax error at or near \"FROM\"", 1);
	check_unparsed("SELECT 'ü'\n\n\nFROM", 1,
	    "m.sql:4: syntax error at end of input", 1);
	check_unparsed("SELECT 1;\nSELECT (1\n\n\n", 1,
	    "m.sql:2: syntax error at end of input", 2);

	/* What not even the scanner reads: errs, and nothing kept. */
	is_int(scan("SELECT 1;\n\nSELECT 'abc\n", 10), -1,
	    "unterminated: fails");
	is_str(err(),
	    "m.sql:12: unterminated quoted string at or near \"'abc\n\"",
	    "unterminated: line");
	is_int(errs.n, 1, "unterminated: one message");
	ok(sc.n_stmts == 0 && sc.stmts == NULL && !sc.unparsed &&
	    sc.parse_error == NULL, "unterminated: nothing kept");
	is_int(scan("ALTER TABLE t ADD CONSTRAINT c NOT NULL col;\n"
	    "SELECT 'abc\n", 3), -1, "unterminated after new syntax: fails");
	is_str(err(), "m.sql:4: unterminated quoted string at or near "
	    "\"'abc\n\"", "unterminated after new syntax: the scanner's error");
	is_int(scan("CREATE FUNCTION f() RETURNS int AS $$\nSELECT 1;\n", 1),
	    -1, "unterminated dollar quote: fails");
	is_str(err(), "m.sql:1: unterminated dollar-quoted string at or near "
	    "\"$$\nSELECT 1;\n\"", "unterminated dollar quote: line");
	/* Errors reported without a position: the section's first line. */
	is_int(scan("SELECT 1;\nSELECT E'\\xff';\n", 30), -1,
	    "no position: fails");
	is_str(err(), "m.sql:30: invalid byte sequence for encoding \"UTF8\": "
	    "0xff", "no position: first line");
	is_int(scan("SELECT 0x1f;\n", 1), -1, "pg16 hex literal: the scanner "
	    "of 15 refuses it");
	is_str(err(), "m.sql:1: trailing junk after numeric literal at or near "
	    "\"0x\"", "pg16 hex literal: message");

	/* Invalid UTF-8 in a literal: the parser takes it, jansson does not. */
	is_int(scan("SELECT 1;\n\nSELECT 'a\xff\xfe' AS x;\n", 30), -1,
	    "invalid utf-8: fails");
	is_str(err(), "m.sql:32: invalid UTF-8 byte sequence",
	    "invalid utf-8: line");
	/* Invalid UTF-8 and a syntax error: no server takes it, -1. */
	is_int(scan("SELECT '\xc3' FRM\nx", 1), -1,
	    "truncated utf-8 before error: fails");
	is_str(err(), "m.sql:2: syntax error at or near \"x\"",
	    "truncated utf-8 before error: counted as PostgreSQL does");
	ok(sc.parse_error == NULL && sc.n_stmts == 0,
	    "truncated utf-8 before error: nothing kept");

	is_int(scan("/* open\n comment", 1), -1, "unterminated comment: fails");
	is_str(err(), "m.sql:1: unterminated /* comment at or near "
	    "\"/* open\n comment\"", "unterminated comment: line");
}

/*
 * SQL newer than libpg_query's parser (PostgreSQL 15): split by the scanner
 * at the semicolons psql would stop at, with exact ranges and lines.
 */
static void
test_unparsed(void)
{
	const char	*sql;

	ok(sqlscan_parser_version() >= 150000 &&
	    sqlscan_parser_version() < 1000000, "parser version %d",
	    sqlscan_parser_version());

	sql =
	    "-- new syntax below\n"				/* 5 */
	    "CREATE TABLE s.t (col int);\n"			/* 6 */
	    "ALTER TABLE s.t\n"					/* 7 */
	    "  ADD CONSTRAINT c NOT NULL col; -- pg18\n"	/* 8 */
	    "  /* c; */ SELECT * FROM (SELECT 1);\n"		/* 9 */
	    "INSERT INTO t VALUES (';'), ($$;$$);;\n"		/* 10 */
	    "DROP SCHEMA old; VACUUM;\n"			/* 11 */
	    "BEGIN;\n"						/* 12 */
	    "UPDATE t SET col = 2 -- end\n";			/* 13 */
	check_unparsed(sql, 5, "m.sql:8: syntax error at or near \"NOT\"", 8);
	is_str(st_text(0), "CREATE TABLE s.t (col int)", "new syntax: 1 text");
	is_int(st_line(0), 6, "new syntax: 1 line");
	is_int(st_offset(0), (long)(strstr(sql, "CREATE") - sql),
	    "new syntax: 1 offset");
	is_str(st_text(1), "ALTER TABLE s.t\n  ADD CONSTRAINT c NOT NULL col",
	    "new syntax: 2 text");
	is_int(st_line(1), 7, "new syntax: 2 line");
	is_int(st_offset(1), (long)(strstr(sql, "ALTER") - sql),
	    "new syntax: 2 offset");
	is_str(st_text(2), "SELECT * FROM (SELECT 1)", "new syntax: 3 text");
	is_int(st_line(2), 9, "new syntax: 3 line after a comment");
	is_int(st_offset(2), (long)(strstr(sql, "SELECT *") - sql),
	    "new syntax: 3 offset");
	is_str(st_text(3), "INSERT INTO t VALUES (';'), ($$;$$)",
	    "new syntax: 4 text, quoted ; kept");
	is_int(st_line(3), 10, "new syntax: 4 line");
	is_str(st_text(4), "DROP SCHEMA old", "new syntax: 5 text");
	is_str(st_text(5), "VACUUM", "new syntax: 6 text, same line");
	is_int(st_line(5), 11, "new syntax: 6 line");
	is_str(st_text(6), "BEGIN", "new syntax: 7 text");
	is_str(st_text(7), "UPDATE t SET col = 2", "new syntax: 8 text");
	is_int(st_line(7), 13, "new syntax: 8 line");
	is_int(st_offset(7), (long)(strstr(sql, "UPDATE") - sql),
	    "new syntax: 8 offset");
	ok(st_flags(4) == 0 && st_flags(5) == 0, "new syntax: no flags "
	    "known but transaction control");
	is_int(st_flags(6), SQLSCAN_TX_CONTROL | SQLSCAN_TX_BEGIN,
	    "new syntax: BEGIN known by its first word");
	is_str(st_what(6), "BEGIN", "new syntax: BEGIN named");
	is_int(sc.flags, SQLSCAN_TX_CONTROL | SQLSCAN_TX_BEGIN,
	    "new syntax: section flags are BEGIN's");
	ok(st_what(4) == NULL && st_what(5) == NULL,
	    "new syntax: no names known");
	ok(sc.n_schemas == 0 && sc.n_drops == 0,
	    "new syntax: no schemas or drops known");

	check_unparsed("SELECT * FROM (SELECT 1)", 1,
	    "m.sql:1: subquery in FROM must have an alias", 1);
	is_str(st_text(0), "SELECT * FROM (SELECT 1)", "pg16 subquery: text");
	check_unparsed("CREATE TABLE t (j json);\nSELECT JSON_OBJECT('a': 1);",
	    1, "m.sql:2: syntax error at or near \":\"", 2);
	check_unparsed("CREATE TABLEE x;", 1, "m.sql:1: syntax error at or "
	    "near \"TABLEE\"", 1);
	is_str(st_text(0), "CREATE TABLEE x", "garbage: text");
	check_unparsed(";;\n  ;\nCREATE TABLEE x\n;;", 1,
	    "m.sql:3: syntax error at or near \"TABLEE\"", 1);
	is_int(st_line(0), 3, "garbage: empty statements dropped");
	check_unparsed("SELECT 1;\r\n\r\n  SELECT 2 FRM x\r\n", 1,
	    "m.sql:3: syntax error at or near \"x\"", 2);
	is_str(st_text(1), "SELECT 2 FRM x", "crlf: text");
	is_int(st_line(1), 3, "crlf: line");
	check_unparsed("SELECT U&'x' FRM U&\"y\" -- z\n;SELECT U&'a'  ", 1,
	    "m.sql:1: syntax error at or near \"U&\"y\"\"", 2);
	is_str(st_text(0), "SELECT U&'x' FRM U&\"y\"", "unicode: end fixed");
	is_str(st_text(1), "SELECT U&'a'", "unicode: last end fixed");
	/* \v is a blank to PostgreSQL 16, a stray character to 15's parser. */
	check_unparsed("\v\vSELECT 1\v;\v\n\vSELECT 2\v", 4,
	    "m.sql:4: syntax error at or near \"\v\"", 2);
	is_str(st_text(0), "SELECT 1", "vertical tab: not in the text");
	is_str(st_text(1), "SELECT 2", "vertical tab: not in the last");
	is_int(st_line(1), 5, "vertical tab: line");
}

/*
 * The scanner's split keeps BEGIN ATOMIC ... END bodies, parentheses and
 * CASE ... END inside such bodies whole, as psql does; elsewhere BEGIN and
 * END are words like others.
 */
static void
test_unparsed_bodies(void)
{
	const char	*sql;

	sql =
	    "CREATE FUNCTION f() RETURNS int LANGUAGE sql\n"		/* 1 */
	    "BEGIN ATOMIC\n"						/* 2 */
	    "  SELECT CASE WHEN true THEN 1 ELSE 2 END;\n"		/* 3 */
	    "  SELECT 2;\n"						/* 4 */
	    "END;\n"							/* 5 */
	    "create or replace procedure p(\"begin\" int, \"end\" int)\n"	/* 6 */
	    "begin atomic\n"						/* 7 */
	    "  INSERT INTO t VALUES (1);\n"				/* 8 */
	    "  INSERT INTO t VALUES (CASE WHEN true THEN 1 END);\n"	/* 9 */
	    "  SELECT case when true then 1 end; end ;\n"		/* 10 */
	    "BEGIN;\n"							/* 11 */
	    "SELECT begin, \"begin\" FROM t;\n"			/* 12 */
	    "END;\n"							/* 13 */
	    "CREATE FUNCTION g(int) RETURNS int LANGUAGE sql\n"		/* 14 */
	    "  RETURN CASE WHEN $1 > 0 THEN 1 END;\n"			/* 15 */
	    "CREATE RULE r AS ON INSERT TO t DO ALSO (SELECT 1; "	/* 16 */
	    "SELECT 2);\n"
	    "CREATE FUNCTION h() RETURNS int LANGUAGE plpgsql AS $$\n"	/* 17 */
	    "BEGIN RETURN 1; END$$;\n"					/* 18 */
	    "ALTER TABLE t ADD CONSTRAINT c NOT NULL col;\n";		/* 19 */
	check_unparsed(sql, 1, "m.sql:19: syntax error at or near \"NOT\"",
	    9);
	is_str(st_text(0), "CREATE FUNCTION f() RETURNS int LANGUAGE sql\n"
	    "BEGIN ATOMIC\n  SELECT CASE WHEN true THEN 1 ELSE 2 END;\n"
	    "  SELECT 2;\nEND", "atomic: body whole");
	is_int(st_line(1), 6, "atomic: procedure line");
	ok(strncmp(st_text(1), "create or replace procedure", 27) == 0 &&
	    strcmp(st_text(1) + strlen(st_text(1)) - 5, "; end") == 0,
	    "atomic: lower case, CASE inside, quoted names not words");
	is_str(st_text(2), "BEGIN", "atomic: plain BEGIN splits");
	is_int(st_line(2), 11, "atomic: BEGIN line");
	is_str(st_text(3), "SELECT begin, \"begin\" FROM t",
	    "atomic: begin as a name outside a routine");
	is_str(st_text(4), "END", "atomic: plain END");
	is_str(st_text(5), "CREATE FUNCTION g(int) RETURNS int LANGUAGE sql\n"
	    "  RETURN CASE WHEN $1 > 0 THEN 1 END",
	    "atomic: CASE outside BEGIN does not nest");
	is_str(st_text(6), "CREATE RULE r AS ON INSERT TO t DO ALSO (SELECT 1; "
	    "SELECT 2)", "atomic: ; inside parentheses");
	is_int(st_line(7), 17, "atomic: dollar-quoted body line");
	is_str(st_text(7), "CREATE FUNCTION h() RETURNS int LANGUAGE plpgsql "
	    "AS $$\nBEGIN RETURN 1; END$$", "atomic: dollar-quoted body");
	is_int(st_line(8), 19, "atomic: last line");

	/* Unbalanced: a body or parenthesis never closed runs to the end. */
	check_unparsed("CREATE PROCEDURE p() BEGIN ATOMIC SELECT 1;\n"
	    "SELECT 2 FRM x;", 1, "m.sql:2: syntax error at or near \"x\"", 1);
	check_unparsed("SELECT (1;\nSELECT 2);\nSELECT 3 FRM x", 1,
	    "m.sql:1: syntax error at or near \";\"", 2);
	is_str(st_text(0), "SELECT (1;\nSELECT 2)", "parens: kept whole");
	check_unparsed("SELECT 1);\nSELECT 2 FRM x;", 1,
	    "m.sql:1: syntax error at or near \")\"", 2);
}

/* Parse trees deeper than jansson's nesting limit (2048) still work. */
/* Statement i's lock mode from the last scan, or "(none)". */
static const char *
st_lock(size_t i)
{
	return (i < sc.n_stmts && sc.stmts[i].lock != NULL ?
	    sc.stmts[i].lock : "(none)");
}

/* The lock each statement asks for on the tables it names, so that a step
 * that timed out names only the sessions in its way. */
static void
test_lock_modes(void)
{
	static const struct {
		const char	*sql;
		const char	*lock;
	} cases[] = {
		{ "CREATE INDEX i ON t (a)", "ShareLock" },
		{ "CREATE UNIQUE INDEX CONCURRENTLY i ON t (a)",
		    "ShareUpdateExclusiveLock" },
		{ "ALTER TABLE t ADD COLUMN c text", "AccessExclusiveLock" },
		{ "ALTER TABLE t VALIDATE CONSTRAINT c",
		    "ShareUpdateExclusiveLock" },
		{ "ALTER TABLE t ALTER c SET STATISTICS 500",
		    "ShareUpdateExclusiveLock" },
		{ "ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (a) REFERENCES "
		    "u (b) NOT VALID", "ShareRowExclusiveLock" },
		{ "ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0) NOT VALID",
		    "AccessExclusiveLock" },
		/* the strongest of its subcommands */
		{ "ALTER TABLE t VALIDATE CONSTRAINT c, ADD CONSTRAINT f "
		    "FOREIGN KEY (a) REFERENCES u (b)", "ShareRowExclusiveLock" },
		{ "ALTER TABLE t VALIDATE CONSTRAINT c, DROP COLUMN d",
		    "AccessExclusiveLock" },
		{ "ALTER TABLE t DISABLE TRIGGER x", "ShareRowExclusiveLock" },
		{ "ALTER TABLE p DETACH PARTITION c CONCURRENTLY",
		    "ShareUpdateExclusiveLock" },
		{ "ALTER TABLE p ATTACH PARTITION c FOR VALUES IN (1)",
		    "AccessExclusiveLock" },
		{ "ALTER INDEX i RENAME TO j", "AccessExclusiveLock" },
		{ "ALTER SEQUENCE s RESTART", "(none)" },
		{ "CREATE TRIGGER x AFTER INSERT ON t FOR EACH ROW EXECUTE "
		    "FUNCTION f()", "ShareRowExclusiveLock" },
		{ "CREATE STATISTICS s ON a, b FROM t",
		    "ShareUpdateExclusiveLock" },
		{ "UPDATE t SET a = u.a FROM u WHERE u.id = t.id",
		    "RowExclusiveLock" },
		{ "INSERT INTO t SELECT * FROM u", "RowExclusiveLock" },
		{ "DELETE FROM t", "RowExclusiveLock" },
		{ "LOCK TABLE t IN SHARE MODE", "ShareLock" },
		{ "LOCK t", "AccessExclusiveLock" },
		{ "LOCK TABLE t IN ROW EXCLUSIVE MODE", "RowExclusiveLock" },
		{ "VACUUM t", "ShareUpdateExclusiveLock" },
		{ "VACUUM (FULL) t", "AccessExclusiveLock" },
		{ "VACUUM (FULL false) t", "ShareUpdateExclusiveLock" },
		{ "REFRESH MATERIALIZED VIEW CONCURRENTLY m", "ExclusiveLock" },
		{ "REFRESH MATERIALIZED VIEW m", "AccessExclusiveLock" },
		{ "DROP TABLE t", "AccessExclusiveLock" },
		{ "TRUNCATE t", "AccessExclusiveLock" },
		{ "ALTER TABLE t RENAME TO u", "AccessExclusiveLock" },
		/* unknown: every holder is named */
		{ "SELECT f()", "(none)" },
		{ "COMMENT ON TABLE t IS 'x'", "(none)" },
		{ "GRANT SELECT ON t TO r", "(none)" },
	};
	size_t	 i;

	for (i = 0; i < nitems(cases); i++) {
		if (scan(cases[i].sql, 1) != 0 || sc.n_stmts != 1) {
			ok(0, "lock of %s: scanned", cases[i].sql);
			continue;
		}
		is_str(st_lock(0), cases[i].lock, "lock of %s", cases[i].sql);
	}
}

/* COPY to or from the client, parsed or only scanned, and psql's inline
 * data after COPY ... FROM STDIN, which the parser chokes on. */
static void
test_copy_client(void)
{
	check_flags("COPY t FROM STDIN", SQLSCAN_COPY_CLIENT,
	    "COPY ... FROM STDIN");
	check_flags("copy t (a, b) from stdin with (format csv)",
	    SQLSCAN_COPY_CLIENT, "COPY ... FROM STDIN");
	check_flags("COPY t TO STDOUT", SQLSCAN_COPY_CLIENT,
	    "COPY ... TO STDOUT");
	check_flags("COPY (SELECT 1) TO STDOUT WITH (FORMAT csv)",
	    SQLSCAN_COPY_CLIENT, "COPY ... TO STDOUT");
	check_flags("COPY t FROM '/srv/t.csv'", 0, NULL);
	check_flags("COPY t TO '/srv/t.csv'", 0, NULL);
	check_flags("COPY t FROM PROGRAM 'zcat t.gz'", 0, NULL);
	check_flags("COPY (SELECT 1) TO PROGRAM 'cat'", 0, NULL);
	check_flags("SELECT 'COPY t FROM STDIN'", 0, NULL);

	/* psql's inline rows: the COPY is blamed, at its own line. */
	is_int(scan("CREATE TABLE t (a int, b text);\n"	/* 3 */
	    "COPY t (a, b) FROM stdin;\n"			/* 4 */
	    "1\tx\n"						/* 5 */
	    "2\ty\n"						/* 6 */
	    "\\.\n", 3), -1, "inline rows: refused");
	is_int(errs.n, 1, "inline rows: one error");
	is_str(err(), "m.sql:4: COPY ... FROM STDIN followed by rows (psql's "
	    "inline data, ending with \\.): migd runs SQL, not psql scripts, "
	    "and a migration cannot copy from the client; write the rows as "
	    "INSERT ... VALUES, or COPY FROM a file on the server",
	    "inline rows: the COPY's line and why");
	/* psql meta-commands: named, with what to do instead. */
	is_int(scan("\\set ON_ERROR_STOP on\nSELECT 1;\n", 6), -1,
	    "\\set: refused");
	is_str(err(), "m.sql:6: \\set is a psql meta-command: migd sends SQL "
	    "to the server, not psql scripts; remove it: migd stops at the "
	    "first error by itself, and each migration runs in its own "
	    "transaction", "\\set: its line and why");
	is_int(scan("SELECT 1;\n  \\i other.sql\n", 2), -1, "\\i: refused");
	is_str(err(), "m.sql:3: \\i is a psql meta-command: migd sends SQL "
	    "to the server, not psql scripts; put the included file's SQL "
	    "into the migration", "\\i: indented, its line");
	is_int(scan("\\connect app\nSELECT 1;\n", 1), -1, "\\connect: refused");
	ok(err() != NULL && strstr(err(), "m.sql:1: \\connect is a psql "
	    "meta-command") != NULL && strstr(err(), "configured for") != NULL,
	    "\\connect: %s", err() ? err() : "(none)");
	/* A schema dump of today's pg_dump, as a baseline migration. */
	is_int(scan("\\restrict Kq3vQ9\n\nSET statement_timeout = 0;\n"
	    "CREATE TABLE public.t (a int);\n\n\\unrestrict Kq3vQ9\n", 4),
	    -1, "\\restrict: refused");
	is_str(err(), "m.sql:4: \\restrict is a psql meta-command: migd sends "
	    "SQL to the server, not psql scripts; pg_dump writes \\restrict "
	    "KEY at the top of a dump and \\unrestrict KEY at its end (since "
	    "PostgreSQL 17.6, 16.10, 15.14, 14.19 and 13.22), to guard psql's "
	    "restore: delete both lines", "\\restrict: pg_dump's, said so");
	is_int(scan("CREATE TABLE public.t (a int);\n\\unrestrict Kq3vQ9\n",
	    1), -1, "\\unrestrict: refused");
	ok(err() != NULL && strstr(err(), "m.sql:2: \\unrestrict is a psql "
	    "meta-command") != NULL && strstr(err(), "delete both lines") !=
	    NULL, "\\unrestrict: %s", err() ? err() : "(none)");
	/* Flyway's placeholders, which no server reads. */
	is_int(scan("CREATE TABLE t (a int);\nGRANT SELECT ON t TO "
	    "${appUser};\n", 3), -1, "placeholder: refused");
	is_str(err(), "m.sql:4: ${appUser} is a placeholder (as Flyway writes "
	    "them), which migd sends as it is, not substituted: write its "
	    "value into the file", "placeholder: its line and why");
	is_int(scan("CREATE TABLE ${flyway:defaultSchema}.t (a int);\n", 1),
	    -1, "flyway: placeholder: refused");
	ok(err() != NULL && strncmp(err(), "m.sql:1: ${flyway:defaultSchema} "
	    "is a placeholder", 41) == 0, "flyway: placeholder: %s",
	    err() ? err() : "(none)");
	is_int(scan("SELECT 1;\nSELECT $1, ${x;\n", 1), -1,
	    "placeholder unclosed: refused");
	ok(err() != NULL && strncmp(err(), "m.sql:2: ${ is a placeholder", 28) ==
	    0, "placeholder unclosed: %s", err() ? err() : "(none)");
	/* In a string it is text: the parser reads it. */
	is_int(scan("COMMENT ON TABLE t IS 'by ${user}';\n", 1), 0,
	    "placeholder in a string: parses");
	is_int(scan("\\gexec\n", 1), -1, "\\gexec: refused");
	ok(err() != NULL && strstr(err(), "write it as SQL") != NULL,
	    "another meta-command: %s", err() ? err() : "(none)");
	/* A backslash inside a line is no meta-command: the parser's error,
	 * kept for a server that may be newer. */
	errlist_clear(&errs);
	is_int(scan("SELECT 1 \\x;\n", 1), 1, "mid-line backslash: unparsed");
	ok(sc.parse_error != NULL && strstr(sc.parse_error, "meta-command") ==
	    NULL && errs.n == 0, "mid-line backslash: no meta-command advice: %s",
	    sc.parse_error ? sc.parse_error : "(none)");
	/* Rows the scanner cannot read either (a lone quote). */
	is_int(scan("COPY t FROM STDIN;\nO'Brien\n\\.\n", 1), -1,
	    "inline rows with a quote: refused");
	ok(errs.n == 1 && strncmp(err(), "m.sql:1: COPY ... FROM STDIN "
	    "followed by rows", 38) == 0, "inline rows with a quote: %s",
	    err() ? err() : "(none)");
	/* Only the end of the data: \. alone. */
	is_int(scan("COPY t FROM stdin;\n\\.\n", 1), -1, "\\. alone: refused");
	ok(err() != NULL && strstr(err(), "m.sql:1: COPY ... FROM STDIN") ==
	    err(), "\\. alone: the COPY's line");
	/* A syntax error before a COPY is that error, not the COPY's. */
	is_int(scan("SELEC 1;\nCOPY t FROM STDIN;\n1\n", 1), 1,
	    "error before COPY: the parser's");
	ok(err() != NULL && strstr(err(), "syntax error at or near \"SELEC\"")
	    != NULL, "error before COPY: %s", err() ? err() : "(none)");
	/* Unparsed sections (newer SQL): COPY told by its words. */
	is_int(scan("ALTER TABLE t ADD CONSTRAINT c NOT NULL a;\n"
	    "COPY t TO STDOUT;\nCOPY (SELECT a FROM stdin) TO '/x';\n"
	    "COPY stdin FROM '/y';\n", 1), 1, "unparsed: split");
	is_int(st_flags(1), SQLSCAN_COPY_CLIENT, "unparsed: COPY TO STDOUT");
	is_str(st_what(1), "COPY ... TO STDOUT", "unparsed: what");
	is_int(st_flags(2), 0, "unparsed: FROM stdin inside a query is not");
	is_int(st_flags(3), 0, "unparsed: a table named stdin is not");
}

static void
test_deep(void)
{
	char	*sql, *p;
	size_t	 i, terms = 5000;

	p = sql = malloc(terms * 5 + 256);
	p += sprintf(p, "SELECT 1");
	for (i = 0; i < terms; i++)
		p += sprintf(p, " || 1");
	sprintf(p, " AS \"x;\" INTO deep.t;\n"
	    "CREATE INDEX CONCURRENTLY i ON deep2.t ((1 || 2));\n");
	is_int(scan(sql, 1), 0, "deep: parses");
	is_int(sc.n_stmts, 2, "deep: two statements");
	is_int(st_line(1), 2, "deep: second line");
	is_int(st_flags(1), SQLSCAN_NO_TX | SQLSCAN_CONCURRENT |
	    SQLSCAN_BUILDS_INDEX, "deep: flags after a deep tree");
	is_str(schemas(), "deep,deep2", "deep: schemas");
	ok(sc.n_stmts > 0 && sc.stmts[0].len == strlen(sql) -
	    strlen(";\nCREATE INDEX CONCURRENTLY i ON deep2.t ((1 || 2));\n"),
	    "deep: first statement length");
	free(sql);
}

/* Identifiers for generated SQL: always quoted, embedded quotes doubled. */
static void
test_quote_ident(void)
{
	char	*q;

	q = sqlscan_quote_ident("cars");
	is_str(q, "\"cars\"", "quote: plain");
	free(q);
	q = sqlscan_quote_ident("Work Shop");
	is_str(q, "\"Work Shop\"", "quote: space and capitals");
	free(q);
	q = sqlscan_quote_ident("na\"me");
	is_str(q, "\"na\"\"me\"", "quote: embedded quote");
	free(q);
	q = sqlscan_quote_ident("\"\"");
	is_str(q, "\"\"\"\"\"\"", "quote: only quotes");
	free(q);
	q = sqlscan_quote_ident("ü; DROP");
	is_str(q, "\"ü; DROP\"", "quote: utf-8 and ;");
	free(q);
	q = sqlscan_quote_ident("");
	is_str(q, "\"\"", "quote: empty");
	free(q);
}

/* System schema names that need no creating. */
static void
test_system_schema(void)
{
	ok(sqlscan_system_schema("pg_catalog"), "system: pg_catalog");
	ok(sqlscan_system_schema("information_schema"), "system: info schema");
	ok(sqlscan_system_schema("pg_toast"), "system: pg_toast");
	ok(sqlscan_system_schema("pg_temp"), "system: pg_temp");
	ok(sqlscan_system_schema("pg_temp_3"), "system: pg_temp_3");
	ok(sqlscan_system_schema("pg_toast_temp_3"), "system: pg_toast_temp_3");
	ok(sqlscan_system_schema("pg_anything"), "system: pg_ prefix");
	ok(!sqlscan_system_schema("public"), "system: not public");
	ok(!sqlscan_system_schema("cars"), "system: not cars");
	ok(!sqlscan_system_schema("PG_x"), "system: PG_x is a user schema");
	ok(!sqlscan_system_schema("pgx"), "system: pgx is a user schema");
	ok(!sqlscan_system_schema("Information_Schema"),
	    "system: case matters");
}

/* A section longer than a piece (256 KiB) of n statements, each on its
 * own line; every 50th is a CREATE FUNCTION ... BEGIN ATOMIC with
 * semicolons inside when atomic, which a cut between pieces must not split. */
static char *
big_section(size_t n, int atomic, const char *tail)
{
	char	*s = xstrdup(""), *t;
	size_t	 len = 0, cap = 1, i;
	int	 k;

	for (i = 0; i < n; i++) {
		if (atomic && i % 50 == 0)
			t = xprintf("CREATE FUNCTION s%zu.f() RETURNS int LANGUAGE "
			    "sql BEGIN ATOMIC SELECT 1; SELECT 2; END;\n", i);
		else
			t = xprintf("INSERT INTO app.t VALUES (%zu, 'row %zu "
			    "with some text to make it longer');\n", i, i);
		k = (int)strlen(t);
		if (len + (size_t)k + 1 > cap) {
			cap = (len + (size_t)k + 1) * 2;
			s = xrealloc(s, cap);
		}
		memcpy(s + len, t, (size_t)k + 1);
		len += (size_t)k;
		free(t);
	}
	t = xprintf("%s%s", s, tail);
	free(s);
	return (t);
}

/* Big sections are parsed in pieces: the same statements, offsets, lines
 * and schemas as one parse would give; a cut the parser refuses (inside
 * BEGIN ATOMIC) or an error falls back to the whole section. */
static void
test_pieces(void)
{
	char	*sql, buf[64];
	size_t	 n = 8000, i, bad = 0;

	sql = big_section(n, 0, "");
	ok(strlen(sql) > 512 * 1024, "the section is bigger than two pieces");
	is_int(scan(sql, 10), 0, "a big section parses");
	is_int(sc.n_stmts, n, "every statement");
	for (i = 0; i < sc.n_stmts; i++) {
		snprintf(buf, sizeof buf, "INSERT INTO app.t VALUES (%zu,", i);
		if (st_line((size_t)i) != 10 + (int)i ||
		    strncmp(cur + sc.stmts[i].offset, buf, strlen(buf)) != 0 ||
		    cur[sc.stmts[i].offset + sc.stmts[i].len] != ';')
			bad++;
	}
	is_int(bad, 0, "each at its offset, line and length");
	ok(sc.n_schemas == 0, "INSERT names no schema to create");
	free(sql);

	sql = big_section(n, 1, "");
	is_int(scan(sql, 1), 0, "with BEGIN ATOMIC bodies: parses");
	is_int(sc.n_stmts, n, "each function one statement");
	is_int(sc.n_schemas, n / 50, "and each function's schema is known");
	is_int(st_line(7950), 7951, "lines still right");
	free(sql);

	sql = big_section(n, 0, "CREATE TABLE x (id int;\n");
	is_int(scan(sql, 1), 1, "an error at the end: the parser refuses");
	ok(sc.parse_error != NULL && strncmp(sc.parse_error, "m.sql:8001: ",
	    12) == 0, "at its line: %s", sc.parse_error ? sc.parse_error :
	    "(none)");
	free(sql);

	/* An error in a middle piece: its line, counted from the section. */
	sql = big_section(n, 0, "");
	memcpy(strstr(sql, "VALUES (4000,"), "VALUES (4000;", 13);
	is_int(scan(sql, 3), 1, "an error in the middle: the parser refuses");
	ok(sc.parse_error != NULL && strncmp(sc.parse_error, "m.sql:4003: "
	    "syntax error at or near \";\"", 36) == 0, "at its line: %s",
	    sc.parse_error ? sc.parse_error : "(none)");
	is_int(sc.n_stmts, n, "and the scanner's statements");
	free(sql);

	sql = big_section(n, 0, "CREATE SCHEMA IF NOT EXISTS late;\n"
	    "CREATE TABLE late.t (id int);\nCOMMIT;\n");
	is_int(scan(sql, 1), 0, "schemas and flags from the last piece");
	ok(sc.n_schemas == 1 && strcmp(sc.schemas[0].name, "late") == 0,
	    "the schema of the last piece");
	ok(st_flags(n + 2) & SQLSCAN_TX_COMMIT, "COMMIT flagged");
	ok(sc.flags & SQLSCAN_TX_COMMIT, "and in the section's flags");
	free(sql);
}

/* A copy for a reused file is deep and equal. */
static void
test_copy(void)
{
	struct sqlscan	 c;

	scan("CREATE SCHEMA a;\nDROP SCHEMA b;\nVACUUM;\n", 3);
	sqlscan_copy(&c, &sc);
	ok(c.n_stmts == sc.n_stmts && c.stmts != sc.stmts && memcmp(c.stmts,
	    sc.stmts, sc.n_stmts * sizeof *sc.stmts) == 0, "statements");
	ok(c.n_schemas == 1 && c.schemas[0].name != sc.schemas[0].name &&
	    strcmp(c.schemas[0].name, "a") == 0, "schemas");
	ok(c.n_drops == 1 && strcmp(c.drops[0].name, "b") == 0, "drops");
	is_int(c.flags, sc.flags, "flags");
	sqlscan_clear(&c);
	scan("SELECT FROM WHERE;", 1);
	sqlscan_copy(&c, &sc);
	ok(c.unparsed && c.parse_error != NULL && c.parse_error !=
	    sc.parse_error && strcmp(c.parse_error, sc.parse_error) == 0,
	    "an unparsed section's message");
	sqlscan_clear(&c);
}

/* Session bits of a one-statement section, or -1. */
static int
session1(const char *sql)
{
	if (scan(sql, 1) != 0 || sc.n_stmts != 1)
		return (-1);
	return (sc.stmts[0].session);
}

/* What a statement may leave in the session: each kind by its statement,
 * everything that may run code as all of it, quiet DDL as nothing. */
static void
test_session(void)
{
	static const struct {
		const char	*sql;
		int		 want;
	} cases[] = {
		/* quiet: defines, stores, drops */
		{ "CREATE SCHEMA ws0", 0 },
		{ "CREATE TABLE ws0.c (id bigserial PRIMARY KEY, t timestamptz "
		    "DEFAULT now(), y int CHECK (y > lower('a')::int))", 0 },
		{ "ALTER TABLE ws0.c ADD COLUMN m integer NOT NULL DEFAULT 0, "
		    "ADD COLUMN colour text", 0 },
		{ "ALTER TABLE c ADD CONSTRAINT f FOREIGN KEY (a) REFERENCES d "
		    "(id) ON DELETE CASCADE", 0 },
		{ "CREATE INDEX i ON ws0.c (make, model)", 0 },
		{ "CREATE VIEW v AS SELECT now(), nextval('s')", 0 },
		{ "COMMENT ON TABLE c IS 'x'", 0 },
		{ "DROP TABLE ws0.c", 0 },
		{ "DROP INDEX ws0.i", 0 },
		{ "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS "
		    "'SELECT set_config(''a.b'', ''c'', false)::int'", 0 },
		{ "CREATE TRIGGER t BEFORE INSERT ON c FOR EACH ROW EXECUTE "
		    "FUNCTION f()", 0 },
		{ "GRANT SELECT ON c TO PUBLIC", 0 },
		{ "NOTIFY x", 0 },
		/* settings and roles */
		{ "SET search_path = app, public", SQLSCAN_SESSION_SETS },
		{ "SET LOCAL statement_timeout = 0", SQLSCAN_SESSION_SETS },
		{ "RESET ALL", SQLSCAN_SESSION_SETS },
		{ "SET ROLE app_owner", SQLSCAN_SESSION_SETS },
		{ "SET SESSION AUTHORIZATION app", SQLSCAN_SESSION_SETS },
		{ "PREPARE p AS SELECT 1", SQLSCAN_SESSION_PREPARED },
		{ "DEALLOCATE p", SQLSCAN_SESSION_PREPARED },
		{ "CLOSE c", SQLSCAN_SESSION_CURSORS },
		{ "LISTEN somewhere", SQLSCAN_SESSION_LISTEN },
		{ "UNLISTEN *", SQLSCAN_SESSION_LISTEN },
		/* temporary objects, by persistence or by pg_temp */
		{ "CREATE TEMP TABLE t (a int)", SQLSCAN_SESSION_TEMP },
		{ "CREATE TABLE pg_temp.t (a int)", SQLSCAN_SESSION_TEMP },
		{ "CREATE TEMP VIEW v AS SELECT 1", SQLSCAN_SESSION_TEMP },
		{ "CREATE TEMP SEQUENCE s", SQLSCAN_SESSION_TEMP },
		{ "CREATE FUNCTION pg_temp.f() RETURNS int LANGUAGE sql AS "
		    "'SELECT 1'", SQLSCAN_SESSION_TEMP },
		{ "CREATE INDEX ON pg_temp.t (a)", SQLSCAN_SESSION_TEMP },
		/* nextval with no call in sight */
		{ "ALTER TABLE c ADD COLUMN n bigserial",
		    SQLSCAN_SESSION_SEQUENCES },
		{ "ALTER TABLE c ADD COLUMN n int GENERATED ALWAYS AS IDENTITY",
		    SQLSCAN_SESSION_SEQUENCES },
		/* code the tree does not show: all of it */
		{ "DECLARE c CURSOR WITH HOLD FOR SELECT 1", SQLSCAN_SESSION_ALL },
		{ "SELECT set_config('search_path', 'app', false)",
		    SQLSCAN_SESSION_ALL },
		{ "SELECT nextval('s')", SQLSCAN_SESSION_ALL },
		{ "SELECT 1", SQLSCAN_SESSION_ALL },
		{ "INSERT INTO c (a) VALUES (1)", SQLSCAN_SESSION_ALL },
		{ "UPDATE c SET a = 1", SQLSCAN_SESSION_ALL },
		{ "DELETE FROM c", SQLSCAN_SESSION_ALL },
		{ "TRUNCATE c", SQLSCAN_SESSION_ALL },
		{ "DO $$BEGIN PERFORM 1; END$$", SQLSCAN_SESSION_ALL },
		{ "CALL p()", SQLSCAN_SESSION_ALL },
		{ "EXECUTE p", SQLSCAN_SESSION_ALL },
		{ "FETCH c", SQLSCAN_SESSION_ALL },
		{ "DISCARD TEMP", SQLSCAN_SESSION_ALL },
		{ "LOAD 'auto_explain'", SQLSCAN_SESSION_ALL },
		{ "CREATE EXTENSION hstore", SQLSCAN_SESSION_ALL },
		{ "CREATE TABLE t AS SELECT 1 AS a", SQLSCAN_SESSION_ALL },
		{ "SELECT 1 INTO TEMP t", SQLSCAN_SESSION_ALL },
		{ "REFRESH MATERIALIZED VIEW m", SQLSCAN_SESSION_ALL },
		{ "CREATE EVENT TRIGGER e ON ddl_command_end EXECUTE FUNCTION "
		    "f()", SQLSCAN_SESSION_ALL },
		{ "ANALYZE c", SQLSCAN_SESSION_ALL },
		{ "CREATE INDEX i ON c (lower(name))", SQLSCAN_SESSION_ALL },
		{ "ALTER TABLE c ADD COLUMN t timestamptz DEFAULT now()",
		    SQLSCAN_SESSION_ALL },
		{ "ALTER TABLE c ALTER COLUMN a TYPE int USING f(a)",
		    SQLSCAN_SESSION_ALL },
		{ "ALTER TABLE p ATTACH PARTITION p1 FOR VALUES IN (1)",
		    SQLSCAN_SESSION_ALL },
		{ "CREATE TABLE p1 PARTITION OF p FOR VALUES IN (1)",
		    SQLSCAN_SESSION_ALL },
		{ "CREATE SCHEMA s CREATE TABLE t (a int)", SQLSCAN_SESSION_ALL },
		{ "EXPLAIN ANALYZE SELECT 1", SQLSCAN_SESSION_ALL },
	};
	size_t	 i;

	for (i = 0; i < nitems(cases); i++)
		is_int(session1(cases[i].sql), cases[i].want, "session of: %s",
		    cases[i].sql);
	/* A section is the OR of its statements. */
	scan("SET search_path = a;\nLISTEN x;\nCREATE TABLE t (a int);\n", 1);
	is_int(sc.session, SQLSCAN_SESSION_SETS | SQLSCAN_SESSION_LISTEN,
	    "a section's session is its statements' together");
	scan("CREATE TABLE t (a int);\nINSERT INTO t VALUES (1);\n", 1);
	is_int(sc.session, SQLSCAN_SESSION_ALL, "one row change makes it all");
	scan("", 1);
	is_int(sc.session, 0, "an empty section leaves nothing");
	/* SQL the parser refuses: nothing is known of it. */
	scan("SELECT FROM WHERE;", 1);
	ok(sc.unparsed, "unparsed");
	is_int(sc.session, SQLSCAN_SESSION_ALL, "an unparsed section is all");
}

int
main(void)
{
	test_session();
	test_pieces();
	test_copy();
	test_split();
	test_quoting();
	test_no_tx();
	test_tx_control();
	test_drop_schema();
	test_schemas();
	test_errors();
	test_unparsed();
	test_unparsed_bodies();
	test_copy_client();
	test_lock_modes();
	test_deep();
	test_quote_ident();
	test_system_schema();
	sqlscan_clear(&sc);
	errlist_clear(&errs);
		/* U& literals: libpg_query 15 gets their ends wrong; the text sent
	 * must still be the whole statement. */
	{
		struct sqlscan	 usc;
		struct errlist	 uerrs = { NULL, 0 };
		const char	*sql1 = "DROP TABLE app.a, U&\"b\";\n"
				    "COMMENT ON TABLE app.t IS U&'caf\\00e9' -- x\n;"
				    "\nSELECT U&'x'   ";

		ok(sqlscan_analyze(sql1, "u.sql", 1, &usc, &uerrs) == 0 &&
		    usc.n_stmts == 3, "unicode literals parse");
		if (usc.n_stmts == 3) {
			ok(usc.stmts[0].len == strlen("DROP TABLE app.a, U&\"b\""),
			    "U&\"ident\" ends where it ends");
			ok(strncmp(sql1 + usc.stmts[1].offset, "COMMENT ON TABLE "
			    "app.t IS U&'caf\\00e9'", usc.stmts[1].len) == 0 &&
			    usc.stmts[1].len == strlen("COMMENT ON TABLE app.t IS "
			    "U&'caf\\00e9'"), "U&'string' before a comment");
			ok(usc.stmts[2].len == strlen("SELECT U&'x'"),
			    "U&'string' at the end, blanks trimmed");
		}
		sqlscan_clear(&usc);
		errlist_clear(&uerrs);
	}

	return (done_testing());
}
