/*
 * libFuzzer target: the bytes as one revision file through migfile_parse,
 * then, when it parses, its up and down sections through sqlscan_analyze
 * (libpg_query and the JSON walk, or the scanner's split of what the parser
 * refuses) as migrate.c does.  Besides the sanitizers
 * it checks what migfile.h promises: valid ids, errors as "PATH:LINE: ...",
 * the same result (text and checksum) for the file saved with CRLF line
 * ends, and the same result with a UTF-8 byte order mark in front.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "migfile.h"
#include "sqlscan.h"
#include "fuzz_check.h"

#define PATH	"fuzz.sql"

/* Checks one parse result on its own. */
static void
verify(int rv, const struct migfile *mf, const struct errlist *errs,
    const char *text, size_t len)
{
	size_t	 i;
	int	 line, lines = fuzz_newlines(text, len) + 1;

	if (rv != 0) {
		FUZZ_CHECK(rv == -1 && mf == NULL, "rv %d", rv);
		FUZZ_CHECK(errs->n > 0, "failure without a message");
		for (i = 0; i < errs->n; i++) {
			line = fuzz_err_line(errs->v[i], PATH);
			FUZZ_CHECK(line >= 1 && line <= lines,
			    "error line %d outside the file (1..%d): %s",
			    line, lines, errs->v[i]);
		}
		return;
	}
	FUZZ_CHECK(errs->n == 0, "success with a message: %s", errs->v[0]);
	FUZZ_CHECK(mf->revision != NULL && migfile_valid_id(mf->revision,
	    NULL), "invalid revision accepted");
	FUZZ_CHECK(mf->message != NULL && mf->up != NULL, "missing parts");
	for (i = 0; i < mf->n_parents; i++) {
		FUZZ_CHECK(migfile_valid_id(mf->parents[i], NULL),
		    "invalid parent accepted");
		FUZZ_CHECK(strcmp(mf->parents[i], mf->revision) != 0,
		    "self parent accepted");
	}
	for (i = 0; i < mf->n_depends; i++) {
		FUZZ_CHECK(migfile_valid_id(mf->depends[i], NULL),
		    "invalid depends_on accepted");
		FUZZ_CHECK(strcmp(mf->depends[i], mf->revision) != 0,
		    "self depends_on accepted");
	}
	FUZZ_CHECK(mf->up_line >= 2 && mf->up_line <= lines + 1,
	    "up_line %d of %d lines", mf->up_line, lines);
	FUZZ_CHECK((mf->down == NULL) == (mf->down_line == 0),
	    "down %p, down_line %d", (void *)mf->down, mf->down_line);
	FUZZ_CHECK(mf->down == NULL || mf->down_line > mf->up_line,
	    "down_line %d before up_line %d", mf->down_line, mf->up_line);
	FUZZ_CHECK(strlen(mf->checksum) == 64 &&
	    strspn(mf->checksum, "0123456789abcdef") == 64, "checksum '%s'",
	    mf->checksum);
}

/* Two parses of the same file in other clothes must agree exactly. */
static void
same(const struct migfile *a, const struct migfile *b, const char *what)
{
	size_t	 i;

	FUZZ_CHECK((a == NULL) == (b == NULL), "%s: parses %s, the original "
	    "%s", what, b ? "succeeds" : "fails", a ? "succeeds" : "fails");
	if (a == NULL)
		return;
	FUZZ_CHECK(strcmp(a->revision, b->revision) == 0, "%s: revision",
	    what);
	FUZZ_CHECK(strcmp(a->message, b->message) == 0, "%s: message '%s' "
	    "vs '%s'", what, a->message, b->message);
	FUZZ_CHECK(strcmp(a->up, b->up) == 0, "%s: up text differs", what);
	FUZZ_CHECK((a->down == NULL) == (b->down == NULL) &&
	    (a->down == NULL || strcmp(a->down, b->down) == 0),
	    "%s: down text differs", what);
	FUZZ_CHECK(strcmp(a->checksum, b->checksum) == 0, "%s: checksum",
	    what);
	FUZZ_CHECK(a->n_parents == b->n_parents && a->n_depends ==
	    b->n_depends && a->tx == b->tx, "%s: headers differ", what);
	for (i = 0; i < a->n_parents; i++)
		FUZZ_CHECK(strcmp(a->parents[i], b->parents[i]) == 0,
		    "%s: parent %zu", what, i);
	for (i = 0; i < a->n_depends; i++)
		FUZZ_CHECK(strcmp(a->depends[i], b->depends[i]) == 0,
		    "%s: depends_on %zu", what, i);
	FUZZ_CHECK(a->up_line == b->up_line && a->down_line == b->down_line &&
	    a->revision_line == b->revision_line && a->parents_line ==
	    b->parents_line && a->depends_line == b->depends_line &&
	    a->tx_line == b->tx_line, "%s: lines differ", what);
}


/* Runs a section through the SQL analysis migrate.c does before a run. */
static void
scan_section(const char *sql, int first)
{
	struct sqlscan	 sc;
	struct errlist	 errs = { NULL, 0 };
	int		 rv;

	rv = sqlscan_analyze(sql, PATH, first, &sc, &errs);
	rv = fuzz_sqlscan_verify_unparsed(sql, PATH, first, rv, &sc, &errs);
	fuzz_sqlscan_verify(sql, PATH, first, rv, &sc, &errs, 0);
	sqlscan_clear(&sc);
	errlist_clear(&errs);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char	*text = (const char *)data;
	struct migfile	*mf, *other;
	struct errlist	 errs = { NULL, 0 }, errs2 = { NULL, 0 };
	char		*alt;
	size_t		 i, n;
	int		 rv, rv2;

	rv = migfile_parse(PATH, text, size, &mf, &errs);
	verify(rv, mf, &errs, text, size);

	/* Saved with CRLF: same text, same checksum, same lines. */
	if (memchr(text, '\r', size) == NULL && size < 1024 * 1024) {
		alt = malloc(2 * size + 1);
		for (i = 0, n = 0; i < size; i++) {
			if (text[i] == '\n')
				alt[n++] = '\r';
			alt[n++] = text[i];
		}
		rv2 = migfile_parse(PATH, alt, n, &other, &errs2);
		verify(rv2, other, &errs2, alt, n);
		same(mf, other, "with CRLF line ends");
		FUZZ_CHECK(errs.n == errs2.n, "with CRLF: %zu errors, not %zu",
		    errs2.n, errs.n);
		migfile_free(other);
		errlist_clear(&errs2);
		free(alt);
	}
	/* With a byte order mark, as some Windows editors save. */
	if (size < 3 || memcmp(text, "\xef\xbb\xbf", 3) != 0) {
		alt = malloc(size + 3);
		memcpy(alt, "\xef\xbb\xbf", 3);
		memcpy(alt + 3, text, size);
		rv2 = migfile_parse(PATH, alt, size + 3, &other, &errs2);
		same(mf, other, "with a BOM");
		migfile_free(other);
		errlist_clear(&errs2);
		free(alt);
	}

	if (rv == 0) {
		scan_section(mf->up, mf->up_line);
		if (mf->down != NULL)
			scan_section(mf->down, mf->down_line);
	}
	migfile_free(mf);
	errlist_clear(&errs);
	return (0);
}
