/*
 * libFuzzer target: the bytes as one migration section (NUL-terminated) into
 * sqlscan_analyze, which runs libpg_query's parser and scanner and walks the
 * parse tree as JSON, or splits with the scanner what the parser refuses.
 * Checks sqlscan.h's promises about statement ranges, lines, flags, schemas,
 * drops, error lines and the scanner's split.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sqlscan.h"
#include "fuzz_check.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sqlscan	 sc;
	struct errlist	 errs = { NULL, 0 };
	char		*sql;
	int		 rv, first;

	/* Keep the first line varied a little: it is added to every line. */
	first = size > 0 ? 1 + data[0] % 7 : 1;
	sql = malloc(size + 1);
	memcpy(sql, data, size);
	sql[size] = '\0';
	rv = sqlscan_analyze(sql, "fuzz.sql", first, &sc, &errs);
	rv = fuzz_sqlscan_verify_unparsed(sql, "fuzz.sql", first, rv, &sc, &errs);
	fuzz_sqlscan_verify(sql, "fuzz.sql", first, rv, &sc, &errs, 0);
	sqlscan_clear(&sc);
	errlist_clear(&errs);
	free(sql);
	return (0);
}
