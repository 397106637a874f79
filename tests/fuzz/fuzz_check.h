/*
 * Helpers shared by migd's libFuzzer targets: a check that aborts with a
 * message (so libFuzzer records the input as a crash), and the invariants of
 * a sqlscan result that both fuzz_sqlscan and fuzz_migfile verify.
 */
#ifndef MIGD_FUZZ_CHECK_H
#define MIGD_FUZZ_CHECK_H

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sqlscan.h"
#include "util.h"

/* A broken invariant is a finding: say which and stop like a crash does. */
#define FUZZ_CHECK(cond, ...) do {					\
	if (!(cond)) {							\
		fprintf(stderr, "FUZZ CHECK FAILED %s:%d: %s: ",	\
		    __FILE__, __LINE__, #cond);				\
		fprintf(stderr, __VA_ARGS__);				\
		fputc('\n', stderr);					\
		abort();						\
	}								\
} while (0)

/* Counts newlines in s[0, n). */
static inline int
fuzz_newlines(const char *s, size_t n)
{
	int	 lines = 0;
	size_t	 i;

	for (i = 0; i < n; i++)
		lines += s[i] == '\n';
	return (lines);
}

/* Line number of a "PATH:LINE: message" string, or -1. */
static inline int
fuzz_err_line(const char *msg, const char *path)
{
	size_t	 n = strlen(path);

	if (strncmp(msg, path, n) != 0 || msg[n] != ':')
		return (-1);
	return (atoi(msg + n + 1));
}

/*
 * What sqlscan.h promises about one analysis of sql (a section starting at
 * line first of path) that returned rv.
 */
static inline void
fuzz_sqlscan_verify(const char *sql, const char *path, int first, int rv,
    const struct sqlscan *sc, const struct errlist *errs, size_t errs_before)
{
	size_t	 len = strlen(sql), i, j, end = 0;
	int	 flags = 0, nl = fuzz_newlines(sql, len), line;
	unsigned char	 c;

	if (rv != 0) {
		FUZZ_CHECK(rv == -1, "rv %d", rv);
		FUZZ_CHECK(errs->n > errs_before, "failure without a message");
		FUZZ_CHECK(sc->n_stmts == 0 && sc->stmts == NULL &&
		    sc->n_schemas == 0 && sc->schemas == NULL &&
		    sc->flags == 0, "failure left a result behind");
		for (i = errs_before; i < errs->n; i++) {
			line = fuzz_err_line(errs->v[i], path);
			FUZZ_CHECK(line >= first && line <= first + nl,
			    "error line %d outside the section (%d..%d): %s",
			    line, first, first + nl, errs->v[i]);
		}
		return;
	}
	FUZZ_CHECK(errs->n == errs_before, "success with a message: %s",
	    errs->v[errs->n - 1]);
	for (i = 0; i < sc->n_stmts; i++) {
		const struct sqlscan_stmt *st = &sc->stmts[i];

		FUZZ_CHECK(st->len > 0, "statement %zu is empty", i);
		FUZZ_CHECK(st->offset <= len && st->len <= len - st->offset,
		    "statement %zu [%zu, +%zu) outside the section (%zu)", i,
		    st->offset, st->len, len);
		FUZZ_CHECK(i == 0 || st->offset >= end, "statement %zu at %zu "
		    "overlaps or precedes the previous one (ends %zu)", i,
		    st->offset, end);
		end = st->offset + st->len;
		c = (unsigned char)sql[st->offset];
		FUZZ_CHECK(!isspace(c), "statement %zu starts with a blank", i);
		c = (unsigned char)sql[end - 1];
		FUZZ_CHECK(!isspace(c), "statement %zu ends with a blank", i);
		FUZZ_CHECK(st->line == first + fuzz_newlines(sql, st->offset),
		    "statement %zu line %d, expected %d", i, st->line,
		    first + fuzz_newlines(sql, st->offset));
		FUZZ_CHECK((st->flags == 0) == (st->what == NULL),
		    "statement %zu flags %#x what %s", i, st->flags,
		    st->what ? st->what : "(null)");
		flags |= st->flags;
	}
	FUZZ_CHECK(flags == sc->flags, "flags %#x, OR of statements %#x",
	    sc->flags, flags);
	for (i = 0; i < sc->n_schemas; i++) {
		const char *name = sc->schemas[i].name;

		FUZZ_CHECK(name != NULL && *name != '\0', "empty schema %zu",
		    i);
		FUZZ_CHECK(strlen(name) <= 63, "schema '%s' longer than 63 "
		    "bytes", name);
		FUZZ_CHECK(!sqlscan_system_schema(name), "system schema "
		    "'%s' listed", name);
		FUZZ_CHECK(sc->schemas[i].line >= first &&
		    sc->schemas[i].line <= first + nl, "schema '%s' line %d",
		    name, sc->schemas[i].line);
		for (j = 0; j < i; j++)
			FUZZ_CHECK(strcmp(sc->schemas[j].name, name) != 0,
			    "schema '%s' listed twice", name);
	}
}

/*
 * What sqlscan.h promises beyond fuzz_check.h's checks: drops, and on 1 the
 * scanner's split (then fuzz_sqlscan_verify sees it as a success: statements
 * in bounds, in order, trimmed, on their lines, flagged only for the
 * transaction control their first words show).
 */
static inline int
fuzz_sqlscan_verify_unparsed(const char *sql, const char *path, int first, int rv,
    const struct sqlscan *sc, const struct errlist *errs)
{
	size_t	 i;
	int	 nl = fuzz_newlines(sql, strlen(sql)), line, dropping = 0;

	if (rv == 1) {
		FUZZ_CHECK(sc->unparsed == 1 && sc->parse_error != NULL,
		    "1 without unparsed (%d) or parse_error", sc->unparsed);
		line = fuzz_err_line(sc->parse_error, path);
		FUZZ_CHECK(line == sc->parse_error_line && line >= first &&
		    line <= first + nl, "parse error line %d (%d) outside "
		    "the section (%d..%d): %s", line, sc->parse_error_line,
		    first, first + nl, sc->parse_error);
		FUZZ_CHECK((sc->flags & ~(SQLSCAN_TX_CONTROL |
		    SQLSCAN_TX_BEGIN | SQLSCAN_TX_COMMIT | SQLSCAN_TX_CHAIN |
		    SQLSCAN_TX_ROLLBACK | SQLSCAN_TX_PREPARED |
		    SQLSCAN_SAVEPOINT | SQLSCAN_NO_TX |
		    SQLSCAN_COPY_CLIENT)) == 0 &&
		    sc->n_schemas == 0 && sc->n_drops == 0, "unparsed with "
		    "flags %#x, %zu schemas, %zu drops", sc->flags,
		    sc->n_schemas, sc->n_drops);
		FUZZ_CHECK(errs->n == 0, "1 with a message: %s", errs->v[0]);
		return (0);
	}
	FUZZ_CHECK(!sc->unparsed && sc->parse_error == NULL &&
	    sc->parse_error_line == 0, "rv %d with unparsed %d", rv,
	    sc->unparsed);
	if (rv != 0) {
		FUZZ_CHECK(sc->n_drops == 0 && sc->drops == NULL,
		    "failure left drops behind");
		return (rv);
	}
	for (i = 0; i < sc->n_stmts; i++) {
		if (sc->stmts[i].flags &
		    (SQLSCAN_DROP_SCHEMA | SQLSCAN_RENAME_SCHEMA))
			dropping++;
	}
	FUZZ_CHECK((dropping == 0) == (sc->n_drops == 0), "%d statements drop "
	    "schemas, %zu drops", dropping, sc->n_drops);
	for (i = 0; i < sc->n_drops; i++) {
		FUZZ_CHECK(sc->drops[i].name != NULL &&
		    *sc->drops[i].name != '\0' &&
		    strlen(sc->drops[i].name) <= 63, "drop %zu name", i);
		FUZZ_CHECK(sc->drops[i].line >= first &&
		    sc->drops[i].line <= first + nl, "drop '%s' line %d",
		    sc->drops[i].name, sc->drops[i].line);
		FUZZ_CHECK(sc->drops[i].what != NULL, "drop %zu what", i);
		FUZZ_CHECK(i == 0 || sc->drops[i].line >= sc->drops[i - 1].line,
		    "drops out of order");
	}
	return (0);
}

#endif
