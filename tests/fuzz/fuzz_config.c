/*
 * libFuzzer target: the bytes as a configuration file through config_parse,
 * then config_print into memory and config_free.  config_print promises "an
 * INI file that migd would accept": the printed text is parsed again and
 * must print the same, so `migd -n` output can be installed as is.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migd.h"
#include "fuzz_check.h"

/* A path with a directory, so relative paths in the file get resolved. */
#define PATH	"/etc/migd/fuzz.conf"

/* Prints cf into a new string. */
static char *
print(const struct config *cf, size_t *len)
{
	FILE	*f;
	char	*buf = NULL;

	f = open_memstream(&buf, len);
	FUZZ_CHECK(f != NULL, "open_memstream");
	config_print(cf, f);
	FUZZ_CHECK(fclose(f) == 0, "fclose");
	return (buf);
}

/* Checks the ranges of the config table on a parsed file. */
static void
verify(const struct config *cf)
{
	FUZZ_CHECK(cf->dbs[0].pool_size >= 1 && cf->dbs[0].pool_size <= 64, "pool_size");
	FUZZ_CHECK(cf->dbs[0].connect_timeout >= 1, "connect_timeout");
	FUZZ_CHECK(cf->max_clients >= 1 && cf->max_request_bytes >= 1024,
	    "control limits");
	FUZZ_CHECK(cf->socket_mode >= 0 && cf->socket_mode <= 0777, "mode");
	FUZZ_CHECK(cf->dbs[0].conninfo && cf->dbs[0].directory && cf->socket &&
	    cf->dbs[0].version_schema && cf->dbs[0].version_table && cf->dbs[0].history_schema &&
	    cf->dbs[0].history_table && cf->admin_group && cf->read_group,
	    "a string setting is NULL");
	FUZZ_CHECK(*cf->dbs[0].directory != '\0' && *cf->socket != '\0' &&
	    *cf->dbs[0].version_table != '\0' && *cf->dbs[0].history_table != '\0',
	    "an empty name");
	FUZZ_CHECK(cf->dbs[0].lock_timeout_ms >= 0 && cf->dbs[0].statement_timeout_ms >= 0 &&
	    cf->dbs[0].lock_wait_ms >= 0, "negative duration");
}

/*
 * config_print's documented exceptions, which INI cannot write back: a line
 * longer than the parser reads (198 + newline), and a blank before ';' or
 * '#' inside a value (from a URI's %-decoding), which reads as a comment.
 */
static int
long_line(const char *text)
{
	const char	*p = text, *nl;
	size_t		 i;

	for (i = 0; text[i] != '\0'; i++) {
		if ((text[i] == ';' || text[i] == '#') && i > 0 &&
		    (text[i - 1] == ' ' || text[i - 1] == '\t') &&
		    strncmp(text + i, "# effective", 11) != 0)
			return (1);
	}
	while ((nl = strchr(p, '\n')) != NULL) {
		if (nl - p > 198)
			return (1);
		p = nl + 1;
	}
	return (strlen(p) > 198);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config	*cf = NULL, *again = NULL;
	struct errlist	 errs = { NULL, 0 }, errs2 = { NULL, 0 };
	char		*out, *out2;
	size_t		 len, len2;
	int		 rv;

	rv = config_parse(PATH, (const char *)data, size, &cf, &errs);
	if (rv != 0) {
		FUZZ_CHECK(rv == -1 && errs.n > 0, "failure without a message");
		errlist_clear(&errs);
		return (0);
	}
	FUZZ_CHECK(errs.n == 0 && cf != NULL, "success with a message");
	verify(cf);
	out = print(cf, &len);
	if (long_line(out)) {
		/* config_print's one documented exception: a path longer than
		 * a line of the file may hold cannot be printed back. */
		free(out);
		config_free(cf);
		return (0);
	}

	rv = config_parse(PATH, out, len, &again, &errs2);
	FUZZ_CHECK(rv == 0, "config_print output is refused: %s\n--- "
	    "printed:\n%s", errs2.n ? errs2.v[0] : "?", out);
	out2 = print(again, &len2);
	FUZZ_CHECK(len == len2 && memcmp(out, out2, len) == 0,
	    "printing the printed file differs:\n--- first:\n%s--- "
	    "second:\n%s", out, out2);

	free(out2);
	config_free(again);
	free(out);
	config_free(cf);
	errlist_clear(&errs2);
	return (0);
}
