/*
 * PostgreSQL's scanner on a section: its tokens (libpg_query gives them only
 * as protobuf, decoded here by hand), so that each statement starts at its
 * first token and ends at its last; and, when the parser refuses the SQL
 * (newer syntax than PostgreSQL 15's), the split into statements psql would
 * make, with transaction control told by the statements' first words.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <pg_query.h>

#include "sqltok.h"

/* Reads a protobuf varint: the scanner's tokens only come as protobuf. */
static int
sqltok_pb_varint(const unsigned char **p, const unsigned char *end,
    uint64_t *v)
{
	unsigned int	 shift;
	unsigned char	 b;

	*v = 0;
	for (shift = 0; shift < 64 && *p < end; shift += 7) {
		b = *(*p)++;
		*v |= (uint64_t)(b & 0x7f) << shift;
		if ((b & 0x80) == 0)
			return (0);
	}
	return (-1);
}

/* Reads a field: a varint's value, a byte string's extent; skips the rest. */
static int
sqltok_pb_field(const unsigned char **p, const unsigned char *end,
    uint64_t *field, int *wire, uint64_t *v, const unsigned char **bytes)
{
	uint64_t	 key;

	if (sqltok_pb_varint(p, end, &key) != 0)
		return (-1);
	*field = key >> 3;
	*wire = (int)(key & 7);
	*v = 0;
	*bytes = NULL;
	switch (*wire) {
	case 0:
		return (sqltok_pb_varint(p, end, v));
	case 1:
		if (end - *p < 8)
			return (-1);
		*p += 8;
		return (0);
	case 2:
		if (sqltok_pb_varint(p, end, v) != 0 ||
		    *v > (uint64_t)(end - *p))
			return (-1);
		*bytes = *p;
		*p += *v;
		return (0);
	case 5:
		if (end - *p < 4)
			return (-1);
		*p += 4;
		return (0);
	}
	return (-1);
}

/* Decodes a ScanToken {start = 1, end = 2, token = 4}, keeping non-comments. */
static int
sqltok_pb_token(const unsigned char *p, const unsigned char *end,
    size_t sqllen, struct sqltoks *toks)
{
	const unsigned char	*bytes;
	uint64_t		 field, v, start = 0, stop = 0, token = 0;
	int			 wire;

	while (p < end) {
		if (sqltok_pb_field(&p, end, &field, &wire, &v, &bytes) != 0)
			return (-1);
		if (wire != 0)
			continue;
		if (field == 1)
			start = v;
		else if (field == 2)
			stop = v;
		else if (field == 4)
			token = v;
	}
	if (start > stop || stop > sqllen)
		return (-1);
	if (token == SQLTOK_SQL_COMMENT || token == SQLTOK_C_COMMENT) {
		if (toks->nc == toks->csize) {
			toks->csize = toks->csize == 0 ? 16 : toks->csize * 2;
			toks->comments = xreallocarray(toks->comments,
			    toks->csize, sizeof *toks->comments);
		}
		toks->comments[toks->nc++] = start;
		return (0);
	}
	if (toks->n == toks->size) {
		toks->size = toks->size == 0 ? 64 : toks->size * 2;
		toks->v = xreallocarray(toks->v, toks->size, sizeof *toks->v);
	}
	toks->v[toks->n].start = start;
	toks->v[toks->n].end = stop;
	toks->v[toks->n].token = (int)token;
	toks->n++;
	return (0);
}

/*
 * libpg_query 15's scanner gives U&"..." and U&'...' tokens a wrong end, so a
 * statement ending in one would be sent cut short.  Such a token really ends
 * where the next token or comment starts, less the blanks between.
 */
static void
sqltok_fix_unicode_ends(const char *sql, struct sqltoks *toks)
{
	size_t	 i, c = 0, lim;

	for (i = 0; i < toks->n; i++) {
		if (toks->v[i].token != SQLTOK_UIDENT &&
		    toks->v[i].token != SQLTOK_USCONST)
			continue;
		lim = i + 1 < toks->n ? toks->v[i + 1].start : strlen(sql);
		while (c < toks->nc && toks->comments[c] <= toks->v[i].start)
			c++;
		if (c < toks->nc && toks->comments[c] < lim)
			lim = toks->comments[c];
		while (lim > toks->v[i].start && isspace((unsigned char)
		    sql[lim - 1]))
			lim--;
		if (lim > toks->v[i].end)
			toks->v[i].end = lim;
	}
}

/*
 * Runs PostgreSQL's scanner to learn where every real token starts and ends.
 * On failure *cause is its message and *cursorpos its position (0: none).
 */
int
sqltok_scan(const char *sql, struct sqltoks *toks, char **cause,
    int *cursorpos)
{
	PgQueryScanResult	 res;
	const unsigned char	*p, *end, *bytes;
	uint64_t		 field, v;
	size_t			 sqllen = strlen(sql);
	int			 wire, rv = -1;

	*cursorpos = 0;
	res = pg_query_scan(sql);
	if (res.error != NULL) {
		*cause = xstrdup(res.error->message);
		*cursorpos = res.error->cursorpos;
		goto out;
	}
	p = (const unsigned char *)res.pbuf.data;
	end = p + res.pbuf.len;
	while (p < end) {
		if (sqltok_pb_field(&p, end, &field, &wire, &v, &bytes) != 0)
			goto bad;
		if (field == 2 && wire == 2 &&
		    sqltok_pb_token(bytes, bytes + v, sqllen, toks) != 0)
			goto bad;
	}
	sqltok_fix_unicode_ends(sql, toks);
	rv = 0;
	goto out;
bad:
	*cause = xstrdup("cannot decode the scanner's output");
out:
	pg_query_free_scan_result(res);
	return (rv);
}

/*
 * Whether a token is a bare word (keyword or unquoted name): psqlscan.l's
 * {identifier}, whatever the locale.  Quoted names and literals are not.
 */
static int
sqltok_word(const char *sql, const struct sqltok *t)
{
	size_t		 i;
	unsigned char	 c;

	for (i = t->start; i < t->end; i++) {
		c = (unsigned char)sql[i];
		if (c >= 0x80 || c == '_' || (c >= 'a' && c <= 'z') ||
		    (c >= 'A' && c <= 'Z'))
			continue;
		if (i == t->start || ((c < '0' || c > '9') && c != '$'))
			return (0);
	}
	return (t->end > t->start);
}

/* Whether a token's text is word, any case: bare words only can match. */
static int
sqltok_is(const char *sql, const struct sqltok *t, const char *word)
{
	size_t	 n = strlen(word);

	return (t->end - t->start == n &&
	    strncasecmp(sql + t->start, word, n) == 0);
}

/*
 * Transaction control in a statement the parser could not read, from its
 * first words: a file's BEGIN and COMMIT must not end migd's transaction,
 * whatever grammar the rest of the section needs.
 */
static int
sqltok_split_flags(const char *sql, const struct sqltoks *toks,
    size_t first, size_t last, const char **what)
{
	const struct sqltok	*w[3] = { NULL, NULL, NULL };
	size_t				 i, n = 0;
	int				 chain = 0, parens = 0, client = 0;

	for (i = first; i <= last; i++) {
		if (toks->v[i].end - toks->v[i].start == 1 &&
		    sql[toks->v[i].start] == '(')
			parens++;
		else if (toks->v[i].end - toks->v[i].start == 1 &&
		    sql[toks->v[i].start] == ')' && parens > 0)
			parens--;
		if (!sqltok_word(sql, &toks->v[i]))
			continue;
		/* COPY's FROM STDIN or TO STDOUT, outside a (query). */
		if (parens == 0 && i > first && (sqltok_is(sql, &toks->v[i],
		    "stdin") || sqltok_is(sql, &toks->v[i], "stdout")) &&
		    (sqltok_is(sql, &toks->v[i - 1], "from") ||
		    sqltok_is(sql, &toks->v[i - 1], "to")))
			client = sqltok_is(sql, &toks->v[i], "stdin") ? 1 : 2;
		if (n < 3)
			w[n++] = &toks->v[i];
		if (sqltok_is(sql, &toks->v[i], "chain") && i > first &&
		    sqltok_is(sql, &toks->v[i - 1], "and"))
			chain = SQLSCAN_TX_CHAIN;
	}
	*what = NULL;
	if (n == 0)
		return (0);
	if (sqltok_is(sql, w[0], "copy") && client != 0) {
		*what = client == 1 ? "COPY ... FROM STDIN" :
		    "COPY ... TO STDOUT";
		return (SQLSCAN_COPY_CLIENT);
	}
	if (sqltok_is(sql, w[0], "begin") && (n == 1 ||
	    sqltok_is(sql, w[1], "work") ||
	    sqltok_is(sql, w[1], "transaction") ||
	    sqltok_is(sql, w[1], "isolation") ||
	    sqltok_is(sql, w[1], "read") ||
	    sqltok_is(sql, w[1], "deferrable") ||
	    sqltok_is(sql, w[1], "not"))) {
		*what = "BEGIN";
		return (SQLSCAN_TX_CONTROL | SQLSCAN_TX_BEGIN);
	}
	if (n >= 2 && sqltok_is(sql, w[0], "start") &&
	    sqltok_is(sql, w[1], "transaction")) {
		*what = "START TRANSACTION";
		return (SQLSCAN_TX_CONTROL | SQLSCAN_TX_BEGIN);
	}
	if (n >= 2 && sqltok_is(sql, w[0], "set") &&
	    sqltok_is(sql, w[1], "transaction")) {
		*what = "SET TRANSACTION";
		return (SQLSCAN_TX_SET);
	}
	if (n >= 2 && sqltok_is(sql, w[0], "prepare") &&
	    sqltok_is(sql, w[1], "transaction")) {
		*what = "PREPARE TRANSACTION";
		return (SQLSCAN_TX_CONTROL | SQLSCAN_TX_PREPARED);
	}
	if (sqltok_is(sql, w[0], "commit") ||
	    sqltok_is(sql, w[0], "end")) {
		if (n >= 2 && sqltok_is(sql, w[1], "prepared")) {
			*what = "COMMIT PREPARED";
			return (SQLSCAN_TX_CONTROL | SQLSCAN_TX_PREPARED |
			    SQLSCAN_NO_TX);
		}
		*what = chain ? "COMMIT AND CHAIN" : "COMMIT";
		return (SQLSCAN_TX_CONTROL | SQLSCAN_TX_COMMIT | chain);
	}
	if (sqltok_is(sql, w[0], "rollback") ||
	    sqltok_is(sql, w[0], "abort")) {
		if (n >= 2 && sqltok_is(sql, w[1], "prepared")) {
			*what = "ROLLBACK PREPARED";
			return (SQLSCAN_TX_CONTROL | SQLSCAN_TX_PREPARED |
			    SQLSCAN_NO_TX);
		}
		for (i = 1; i < n; i++) {
			if (sqltok_is(sql, w[i], "to")) {
				*what = "ROLLBACK TO SAVEPOINT";
				return (SQLSCAN_SAVEPOINT);
			}
		}
		*what = chain ? "ROLLBACK AND CHAIN" : "ROLLBACK";
		return (SQLSCAN_TX_CONTROL | SQLSCAN_TX_ROLLBACK | chain);
	}
	if (sqltok_is(sql, w[0], "savepoint")) {
		*what = "SAVEPOINT";
		return (SQLSCAN_SAVEPOINT);
	}
	if (sqltok_is(sql, w[0], "release")) {
		*what = "RELEASE SAVEPOINT";
		return (SQLSCAN_SAVEPOINT);
	}
	return (0);
}

/*
 * Splits a section the parser refused at its top-level semicolons, as psql
 * does: not inside parentheses, nor inside the BEGIN ... END body of a
 * CREATE [OR REPLACE] FUNCTION or PROCEDURE (BEGIN ATOMIC), where CASE ...
 * END nests too.  The first four bare words of a statement tell a routine,
 * as psqlscan.l's identifiers[] does; BEGIN, CASE and END inside parentheses
 * do not count.
 */
static void
sqltok_split(const char *sql, int first_line, const struct sqltoks *toks,
    struct sqlscan *sc)
{
	const struct sqltok	*t;
	struct sqlscan_stmt		*st;
	size_t				 i, first = 0, last = 0, size = 0;
	size_t				 lined = 0, nwords = 0;
	int				 line = first_line, in = 0;
	int				 parens = 0, depth = 0, routine = 0;
	char				 w[4];

	for (i = 0; i <= toks->n; i++) {
		t = i < toks->n ? &toks->v[i] : NULL;
		/* 15's scanner takes \v for a token, 16's for a blank. */
		if (t != NULL && t->end - t->start == 1 &&
		    isspace((unsigned char)sql[t->start]))
			continue;
		if (t == NULL || (t->token == SQLTOK_SEMICOLON &&
		    parens == 0 && depth == 0)) {
			if (in) {
				st = sqlscan_stmt_add(sc, &size);
				st->offset = toks->v[first].start;
				st->len = toks->v[last].end - st->offset;
				line += sqlscan_newlines(sql, lined,
				    st->offset);
				lined = st->offset;
				st->line = line;
				st->flags = sqltok_split_flags(sql, toks,
				    first, last, &st->what);
				st->session = SQLSCAN_SESSION_ALL;
				sc->flags |= st->flags;
			}
			in = parens = depth = routine = 0;
			nwords = 0;
			continue;
		}
		if (!in) {
			in = 1;
			first = i;
		}
		last = i;
		if (t->end - t->start == 1 && sql[t->start] == '(')
			parens++;
		else if (t->end - t->start == 1 && sql[t->start] == ')') {
			if (parens > 0)
				parens--;
		}
		if (!sqltok_word(sql, t))
			continue;
		if (nwords < sizeof w) {
			w[nwords] = 0;
			if (sqltok_is(sql, t, "create") ||
			    sqltok_is(sql, t, "or") ||
			    sqltok_is(sql, t, "replace") ||
			    sqltok_is(sql, t, "function") ||
			    sqltok_is(sql, t, "procedure"))
				w[nwords] = tolower((unsigned char)
				    sql[t->start]);
			nwords++;
			if (nwords >= 2 && w[0] == 'c' && (w[1] == 'f' ||
			    w[1] == 'p' || (nwords == 4 && w[1] == 'o' &&
			    w[2] == 'r' && (w[3] == 'f' || w[3] == 'p'))))
				routine = 1;
		}
		if (!routine || parens != 0)
			continue;
		if (sqltok_is(sql, t, "begin"))
			depth++;
		else if (sqltok_is(sql, t, "case")) {
			if (depth > 0)	/* CASE ends with END too */
				depth++;
		} else if (sqltok_is(sql, t, "end")) {
			if (depth > 0)
				depth--;
		}
	}
}

/*
 * Whether the parser stopped at psql's inline data after COPY ... FROM
 * STDIN (rows, then \.): then that COPY is the problem, not the rows, and
 * its line is returned; else 0.  The text before the error must end with
 * that COPY and its semicolon.
 */
static int
sqltok_inline_copy(const char *sql, int first_line, int cursorpos)
{
	struct sqltoks	 toks = { NULL, 0, 0, NULL, 0, 0 };
	struct sqlscan	 sc;
	char		*prefix, *cause = NULL;
	int		 line = 0, pos;

	if (cursorpos <= 0)
		return (0);
	memset(&sc, 0, sizeof sc);
	prefix = xstrndup(sql, sqlscan_char_offset(sql, cursorpos));
	if (sqltok_scan(prefix, &toks, &cause, &pos) == 0 && toks.n > 0 &&
	    toks.v[toks.n - 1].token == SQLTOK_SEMICOLON) {
		sqltok_split(prefix, first_line, &toks, &sc);
		if (sc.n_stmts > 0 && (sc.stmts[sc.n_stmts - 1].flags &
		    SQLSCAN_COPY_CLIENT) && strcmp(sc.stmts[sc.n_stmts -
		    1].what, "COPY ... FROM STDIN") == 0)
			line = sc.stmts[sc.n_stmts - 1].line;
	}
	sqlscan_clear(&sc);
	free(cause);
	free(toks.v);
	free(toks.comments);
	free(prefix);
	return (line);
}

/*
 * Whether the parser stopped at a psql meta-command (\set, \i, \connect...
 * at the start of a line): then *cmd gets its name (to free) and the line
 * is returned; else 0.  Files written for psql carry them.
 */
static int
sqltok_meta(const char *sql, int first_line, int cursorpos, char **cmd)
{
	size_t	 off, b, e;

	if (cursorpos <= 0)
		return (0);
	off = sqlscan_char_offset(sql, cursorpos);
	if (sql[off] != '\\')
		return (0);
	for (b = off; b > 0 && (sql[b - 1] == ' ' || sql[b - 1] == '\t'); b--)
		;
	if (b > 0 && sql[b - 1] != '\n')
		return (0);
	for (e = off + 1; sql[e] != '\0' && strchr(" \t\r\n;", sql[e]) == NULL;
	    e++)
		;
	*cmd = xstrndup(sql + off, e - off);
	return (sqlscan_newlines(sql, 0, off) + first_line);
}

/*
 * Whether the parser stopped at a placeholder, ${name} (Flyway's, and other
 * tools' that substitute text before they send it): no PostgreSQL reads "${"
 * anywhere outside a string.  *name gets it (to free) and its line is
 * returned; else 0.
 */
static int
sqltok_placeholder(const char *sql, int first_line, int cursorpos,
    char **name)
{
	size_t	 off, e;

	if (cursorpos <= 0)
		return (0);
	off = sqlscan_char_offset(sql, cursorpos);
	if (sql[off] != '$' || sql[off + 1] != '{')
		return (0);
	for (e = off + 2; sql[e] != '\0' && sql[e] != '}' && sql[e] != '\n' &&
	    e - off < 80; e++)
		;
	*name = sql[e] == '}' ? xstrndup(sql + off, e + 1 - off) :
	    xstrdup("${");
	return (sqlscan_newlines(sql, 0, off) + first_line);
}

/* What to do instead of a psql meta-command. */
static const char *
sqltok_meta_advice(const char *cmd)
{
	if (strcmp(cmd, "\\set") == 0 || strcmp(cmd, "\\pset") == 0 ||
	    strcmp(cmd, "\\timing") == 0 || strcmp(cmd, "\\echo") == 0 ||
	    strcmp(cmd, "\\qecho") == 0)
		return ("remove it: migd stops at the first error by itself, "
		    "and each migration runs in its own transaction");
	if (strcmp(cmd, "\\i") == 0 || strcmp(cmd, "\\ir") == 0 ||
	    strcmp(cmd, "\\include") == 0 ||
	    strcmp(cmd, "\\include_relative") == 0)
		return ("put the included file's SQL into the migration");
	if (strcmp(cmd, "\\c") == 0 || strcmp(cmd, "\\connect") == 0)
		return ("remove it: a migration runs on the database migd is "
		    "configured for");
	if (strcmp(cmd, "\\restrict") == 0 ||
	    strcmp(cmd, "\\unrestrict") == 0)
		return ("pg_dump writes \\restrict KEY at the top of a dump and "
		    "\\unrestrict KEY at its end (since PostgreSQL 17.6, 16.10, "
		    "15.14, 14.19 and 13.22), to guard psql's restore: delete "
		    "both lines");
	return ("remove it, or write it as SQL");
}

/*
 * The parser refused the section: SQL newer than it, or plain wrong.  When
 * the scanner reads it and it is valid UTF-8 (no server takes it otherwise),
 * split it into statements and keep the parser's message for the caller.
 * Else the section is wrong for any server: the scanner's error, or the
 * parser's for invalid UTF-8, goes to errs.
 */
int
sqltok_unparsed(const char *sql, const char *path, int first_line,
    const PgQueryError *error, struct sqlscan *sc, struct errlist *errs)
{
	struct sqltoks	 toks = { NULL, 0, 0, NULL, 0, 0 };
	char			*cause = NULL;
	size_t			 bad;
	int			 rv = -1, pos, line;

	if ((line = sqltok_inline_copy(sql, first_line, error->cursorpos)) >
	    0) {
		errlist_add(errs, "%s:%d: COPY ... FROM STDIN followed by rows "
		    "(psql's inline data, ending with \\.): migd runs SQL, "
		    "not psql scripts, and a migration cannot copy from the "
		    "client; write the rows as INSERT ... VALUES, or COPY FROM "
		    "a file on the server", path, line);
		goto out;
	}
	if ((line = sqltok_meta(sql, first_line, error->cursorpos, &cause)) >
	    0) {
		errlist_add(errs, "%s:%d: %s is a psql meta-command: migd sends "
		    "SQL to the server, not psql scripts; %s", path, line,
		    cause, sqltok_meta_advice(cause));
		goto out;
	}
	if ((line = sqltok_placeholder(sql, first_line, error->cursorpos,
	    &cause)) > 0) {
		errlist_add(errs, "%s:%d: %s is a placeholder (as Flyway "
		    "writes them), which migd sends as it is, not substituted: "
		    "write its value into the file", path, line, cause);
		goto out;
	}
	if (sqlscan_utf8_check(sql, &bad) != 0) {
		errlist_add(errs, "%s:%d: %s", path, sqlscan_error_line(sql,
		    first_line, error->cursorpos), error->message);
		goto out;
	}
	if (sqltok_scan(sql, &toks, &cause, &pos) != 0) {
		errlist_add(errs, "%s:%d: %s", path, sqlscan_error_line(sql,
		    first_line, pos), cause);
		goto out;
	}
	sqltok_split(sql, first_line, &toks, sc);
	sc->unparsed = 1;
	sc->session = SQLSCAN_SESSION_ALL;	/* nothing known of it */
	sc->parse_error_line = sqlscan_error_line(sql, first_line,
	    error->cursorpos);
	sc->parse_error = xprintf("%s:%d: %s", path, sc->parse_error_line,
	    error->message);
	rv = 0;
out:
	free(cause);
	free(toks.v);
	free(toks.comments);
	return (rv);
}
