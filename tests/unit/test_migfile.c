/* Unit tests for migfile.c: the file format is a user-facing contract. */
#include <stdlib.h>
#include <string.h>

#include "migfile.h"
#include "tap.h"
#include "util.h"

#define SUM_CARS \
	"8b61b0b018e855295745fa2a40b725f6958f8c4d190486323530f3f0da01ea51"
#define SUM_EMPTY \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SUM_SELECT1 \
	"b4e0497804e46e0a0b0b8c31975b062152d551bac49c3c2e80932567b4085dcd"

#define KNOWN "(known: revision, down_revision, message, transaction, " \
	"depends_on, branch_labels, unfinished)"
#define NOUP "no '-- migrate:up' section (put a line '-- migrate:up' " \
	"between the header and the SQL)"
#define NODOWNREV "missing 'down_revision' header (write 'down_revision: " \
	"none' for the first revision)"
#define BADMARK "malformed section marker: write exactly '-- migrate:up' " \
	"or '-- migrate:down', alone on its line and starting in the first " \
	"column"
#define ALLOWED "(allowed: letters, digits, '_', '.', '-')"
#define UP "-- migrate:up\n"
#define ROOT "-- down_revision: none\n"

static const char example[] =
	"-- revision: a0253e07a4ec\n"
	"-- down_revision: 0001\n"
	"-- message: consolidate tables\n"
	"-- transaction: auto\n"
	"-- depends_on: abc123, def456\n"
	"\n"
	"-- migrate:up\n"
	"CREATE TABLE cars.cars (id bigserial PRIMARY KEY);\n"
	"\n"
	"-- migrate:down\n"
	"DROP TABLE cars.cars;\n";

/* Errors compared as one string show every difference in one failure. */
static char *
join(struct errlist *el)
{
	return (errlist_join(el, "\n"));
}

/* The same file saved on Windows must mean exactly the same thing. */
static char *
crlf(const char *s)
{
	char	*out = xmalloc(strlen(s) * 2 + 1), *o = out;

	for (; *s != '\0'; s++) {
		if (*s == '\n')
			*o++ = '\r';
		*o++ = *s;
	}
	*o = '\0';
	return (out);
}

/* Parses a string that must be valid; a failure prints its errors. */
static struct migfile *
parse_ok(const char *path, const char *text)
{
	struct errlist	 el = { NULL, 0 };
	struct migfile	*mf = NULL;
	char		*got;
	int		 rc;

	rc = migfile_parse(path, text, strlen(text), &mf, &el);
	got = join(&el);
	ok(rc == 0 && mf != NULL && el.n == 0, "%s parses", path);
	if (rc != 0)
		printf("#   %s\n", got);
	free(got);
	errlist_clear(&el);
	return (mf);
}

struct errcase {
	const char	*name;
	const char	*path;
	const char	*text;
	const char	*want;	/* every message, joined with newlines */
};

static const struct errcase errcases[] = {
	{ "unknown header", "m/0001_a.sql",
	  "-- revsion: abc\n" ROOT UP,
	  "m/0001_a.sql:1: unknown header 'revsion' " KNOWN },
	{ "header name in wrong case", "m/0001_a.sql",
	  "-- Revision: abc\n" ROOT UP,
	  "m/0001_a.sql:1: unknown header 'Revision' (header names are "
	  "lowercase: did you mean 'revision'?)" },
	{ "comment that looks like a header", "m/0001_a.sql",
	  "-- Note: careful\n" ROOT UP,
	  "m/0001_a.sql:1: unknown header 'Note' " KNOWN },
	{ "key given twice", "m/0001_a.sql",
	  "-- revision: a\n" ROOT "\n-- revision: b\n" UP,
	  "m/0001_a.sql:4: 'revision' is given twice (first at line 1)" },
	{ "down_revision given twice", "x.sql",
	  ROOT "-- down_revision: a\n" UP,
	  "x.sql:2: 'down_revision' is given twice (first at line 1)" },
	{ "SQL before up", "m/0001_a.sql",
	  ROOT "CREATE TABLE t ();\nSELECT 1;\n" UP,
	  "m/0001_a.sql:2: SQL before '-- migrate:up' (the header may hold "
	  "only '-- key: value' lines, comments and blank lines)" },
	{ "no up marker", "m/0001_a.sql",
	  ROOT "CREATE TABLE t ();\n",
	  "m/0001_a.sql:1: " NOUP },
	{ "empty file", "m/0001_a.sql", "",
	  "m/0001_a.sql:1: " NOUP "\nm/0001_a.sql:1: " NODOWNREV },
	{ "second up marker", "a.sql",
	  ROOT UP "SELECT 1;\n-- migrate:up\n",
	  "a.sql:4: second '-- migrate:up' marker (the first is at line 2)" },
	{ "up marker after down", "a.sql",
	  ROOT UP "SELECT 1;\n-- migrate:down\nSELECT 2;\n-- migrate:up\n",
	  "a.sql:6: second '-- migrate:up' marker (the first is at line 2)" },
	{ "second down marker", "a.sql",
	  ROOT UP "-- migrate:down\nx\n-- migrate:down\n",
	  "a.sql:5: second '-- migrate:down' marker (the first is at line "
	  "3)" },
	{ "down before up", "a.sql",
	  ROOT "-- migrate:down\nDROP TABLE t;\n-- x: y\n" UP "CREATE;\n",
	  "a.sql:2: '-- migrate:down' before '-- migrate:up' (the up "
	  "section comes first)" },
	{ "down and no up", "a.sql",
	  ROOT "-- migrate:down\nDROP TABLE t;\n",
	  "a.sql:1: " NOUP "\na.sql:2: '-- migrate:down' before '-- "
	  "migrate:up' (the up section comes first)" },
	{ "dbmate marker options", "a.sql",
	  ROOT "-- migrate:up transaction:false\nSELECT 1;\n" UP,
	  "a.sql:2: " BADMARK "; for a migration outside a transaction "
	  "write '-- transaction: none' in the header" },
	{ "marker in wrong case", "a.sql",
	  ROOT "-- Migrate:Up\n" UP,
	  "a.sql:2: " BADMARK },
	{ "bad marker and no up", "a.sql",
	  ROOT "-- migrate:up!\nSELECT 1;\n-- a: b\n",
	  "a.sql:1: " NOUP "\na.sql:2: " BADMARK },
	{ "indented marker", "a.sql",
	  ROOT "  -- migrate:up\n" UP,
	  "a.sql:2: " BADMARK },
	{ "blank after marker colon", "a.sql",
	  ROOT UP "SELECT 1;\n-- migrate: down\n",
	  "a.sql:4: " BADMARK },
	{ "misspelt down marker", "a.sql",
	  ROOT UP "SELECT 1;\n-- migrate:dwon\n",
	  "a.sql:4: " BADMARK },
	{ "missing down_revision", "m/0001_a.sql",
	  "-- revision: abc\n" UP,
	  "m/0001_a.sql:1: " NODOWNREV },
	{ "empty down_revision", "a.sql",
	  "-- down_revision:\n" UP,
	  "a.sql:1: empty 'down_revision' header (write 'down_revision: "
	  "none' for the first revision)" },
	{ "empty element in down_revision", "a.sql",
	  "-- down_revision: b, , c,\n" UP,
	  "a.sql:1: empty entry in 'down_revision' (stray comma?)\n"
	  "a.sql:1: empty entry in 'down_revision' (stray comma?)" },
	{ "duplicate in down_revision", "a.sql",
	  "-- down_revision: b, c,b\n" UP,
	  "a.sql:1: 'b' is listed twice in 'down_revision'" },
	{ "down_revision names itself", "a.sql",
	  "-- message: m\n-- down_revision: b, a\n" UP,
	  "a.sql:2: 'down_revision' names this revision itself ('a')" },
	{ "self via header given later", "x.sql",
	  "-- down_revision: q\n-- revision: q\n" UP,
	  "x.sql:1: 'down_revision' names this revision itself ('q')" },
	{ "none combined with ids", "a.sql",
	  "-- down_revision: none, b\n" UP,
	  "a.sql:1: 'none' cannot be combined with other revisions in "
	  "'down_revision'" },
	{ "blank inside a parent id", "a.sql",
	  "-- down_revision: b c\n" UP,
	  "a.sql:1: invalid revision id 'b c' in 'down_revision': it "
	  "contains a blank " ALLOWED },
	{ "revision of 33 bytes", "a.sql",
	  "-- revision: 123456789012345678901234567890123\n" ROOT UP,
	  "a.sql:1: invalid revision '123456789012345678901234567890123': it "
	  "is 33 bytes long, the limit is 32" },
	{ "revision head", "a.sql",
	  "-- revision: head\n" ROOT UP,
	  "a.sql:1: invalid revision 'head': 'head' is reserved (head, "
	  "heads, base, none)" },
	{ "revision BASE", "a.sql",
	  "-- revision: BASE\n" ROOT UP,
	  "a.sql:1: invalid revision 'BASE': 'BASE' is reserved (head, "
	  "heads, base, none)" },
	{ "revision +1", "a.sql",
	  "-- revision: +1\n" ROOT UP,
	  "a.sql:1: invalid revision '+1': it contains '+' " ALLOWED },
	{ "revision -1", "a.sql",
	  "-- revision: -1\n" ROOT UP,
	  "a.sql:1: invalid revision '-1': it starts with '-'" },
	{ "revision a b", "a.sql",
	  "-- revision: a b\n" ROOT UP,
	  "a.sql:1: invalid revision 'a b': it contains a blank " ALLOWED },
	{ "revision non-ASCII", "a.sql",
	  "-- revision: caf\xc3\xa9\n" ROOT UP,
	  "a.sql:1: invalid revision 'caf\\xc3\\xa9': it contains byte 0xc3 "
	  ALLOWED },
	{ "empty revision", "a.sql",
	  "-- revision:\n" ROOT UP,
	  "a.sql:1: invalid revision '': it is empty" },
	{ "reserved revision from the file name", "m/sub/head_x.sql",
	  ROOT UP,
	  "m/sub/head_x.sql:1: revision 'head' taken from the file name is "
	  "invalid: 'head' is reserved (head, heads, base, none) (add a '-- "
	  "revision: ID' header or rename the file)" },
	{ "empty revision from the file name", "_x.sql",
	  ROOT UP,
	  "_x.sql:1: revision '' taken from the file name is invalid: it is "
	  "empty (add a '-- revision: ID' header or rename the file)" },
	{ "bad transaction", "a.sql",
	  ROOT "-- transaction: off\n" UP,
	  "a.sql:2: invalid transaction 'off' (allowed: auto, none)" },
	{ "empty depends_on", "a.sql",
	  ROOT "-- depends_on:  \n" UP,
	  "a.sql:2: empty 'depends_on' header (list revision ids or remove "
	  "the line)" },
	{ "depends_on problems", "a.sql",
	  ROOT "-- depends_on: x,x, a, heads, \n" UP,
	  "a.sql:2: 'x' is listed twice in 'depends_on'\n"
	  "a.sql:2: invalid revision id 'heads' in 'depends_on': 'heads' is "
	  "reserved (head, heads, base, none)\n"
	  "a.sql:2: empty entry in 'depends_on' (stray comma?)\n"
	  "a.sql:2: 'depends_on' names this revision itself ('a')" },
	{ "branch_labels problems", "a.sql",
	  ROOT "-- branch_labels: shop, shop, heads, a@b, \n" UP,
	  "a.sql:2: 'shop' is listed twice in 'branch_labels'\n"
	  "a.sql:2: invalid branch label 'heads' in 'branch_labels': 'heads' "
	  "is reserved (head, heads, base, none)\n"
	  "a.sql:2: invalid branch label 'a@b' in 'branch_labels': it "
	  "contains '@' " ALLOWED "\n"
	  "a.sql:2: empty entry in 'branch_labels' (stray comma?)" },
	{ "empty branch_labels", "a.sql",
	  ROOT "-- branch_labels:\n" UP,
	  "a.sql:2: empty 'branch_labels' header (list revision ids or "
	  "remove the line)" },
	{ "empty unfinished", "a.sql",
	  ROOT "-- unfinished:   \n" UP,
	  "a.sql:2: empty 'unfinished' header (say what is missing, or "
	  "remove the line once the revision is complete)" },
	{ "unfinished twice", "a.sql",
	  ROOT "-- unfinished: x\n-- unfinished: y\n" UP,
	  "a.sql:3: 'unfinished' is given twice (first at line 2)" },
	{ "empty lint-ignore", "a.sql",
	  ROOT "-- lint-ignore:  \n" UP,
	  "a.sql:2: empty 'lint-ignore' (name the rules, comma-separated, "
	  "then why: -- lint-ignore: ban-drop-table the table was never "
	  "used)" },
	{ "unknown lint rule", "a.sql",
	  ROOT "-- lint-ignore: ban-drop-table,ban-drop-tables why\n" UP,
	  "a.sql:2: unknown lint rule 'ban-drop-tables' in 'lint-ignore' "
	  "(see docs/lint.md)" },
	{ "NUL byte", "a.sql",
	  ROOT UP "SELECT 1;\n\0x",
	  "a.sql:1: not a text file (NUL byte)" },
	{ "all header errors, in line order", "m/0007_b.sql",
	  "-- transaction: maybe\n"
	  "-- revsion: 7\n"
	  "SELECT 1;\n"
	  "-- depends_on: -x\n"
	  "-- migrate:up\n"
	  "-- migrate:up\n",
	  "m/0007_b.sql:1: invalid transaction 'maybe' (allowed: auto, none)\n"
	  "m/0007_b.sql:1: " NODOWNREV "\n"
	  "m/0007_b.sql:2: unknown header 'revsion' " KNOWN "\n"
	  "m/0007_b.sql:3: SQL before '-- migrate:up' (the header may hold "
	  "only '-- key: value' lines, comments and blank lines)\n"
	  "m/0007_b.sql:4: invalid revision id '-x' in 'depends_on': it "
	  "starts with '-'\n"
	  "m/0007_b.sql:6: second '-- migrate:up' marker (the first is at "
	  "line 5)" },
};

/* Every error case: exact messages, -1, *out NULL, and nothing leaked. */
static void
test_errors(void)
{
	const struct errcase	*c;
	struct errlist		 el = { NULL, 0 };
	struct migfile		*mf;
	size_t			 i, len;
	char			*got;
	int			 rc;

	for (i = 0; i < nitems(errcases); i++) {
		c = &errcases[i];
		len = strlen(c->text);
		if (strcmp(c->name, "NUL byte") == 0)
			len += 2;
		mf = (struct migfile *)1;
		rc = migfile_parse(c->path, c->text, len, &mf, &el);
		got = join(&el);
		ok(rc == -1 && mf == NULL, "%s: fails", c->name);
		is_str(got, c->want, "%s: messages", c->name);
		free(got);
		errlist_clear(&el);
	}

	/* Errors are appended: earlier entries in the list are kept. */
	errlist_add(&el, "earlier");
	rc = migfile_parse("a.sql", UP, strlen(UP), &mf, &el);
	is_int(rc, -1, "appends: fails");
	is_int(el.n, 2, "appends: earlier message kept");
	is_str(el.v[0], "earlier", "appends: first entry untouched");
	errlist_clear(&el);
}

/* The documented example, field by field. */
static void
test_example(void)
{
	struct migfile	*mf;

	if ((mf = parse_ok("migrations/a0253e07a4ec_cars.sql", example)) ==
	    NULL)
		return;
	is_str(mf->path, "migrations/a0253e07a4ec_cars.sql", "path kept");
	is_str(mf->revision, "a0253e07a4ec", "revision");
	is_int(mf->revision_line, 1, "revision_line");
	is_int(mf->n_parents, 1, "one parent");
	is_str(mf->parents[0], "0001", "parent");
	is_int(mf->parents_line, 2, "parents_line");
	is_str(mf->message, "consolidate tables", "message");
	is_int(mf->tx, MIGFILE_TX_AUTO, "transaction auto");
	is_int(mf->tx_line, 4, "tx_line");
	is_int(mf->n_depends, 2, "two depends_on");
	is_str(mf->depends[0], "abc123", "depends_on 0");
	is_str(mf->depends[1], "def456", "depends_on 1");
	is_int(mf->depends_line, 5, "depends_line");
	is_str(mf->up, "CREATE TABLE cars.cars (id bigserial PRIMARY KEY);\n\n",
	    "up text");
	is_int(mf->up_line, 8, "up_line");
	is_str(mf->down, "DROP TABLE cars.cars;\n", "down text");
	is_int(mf->down_line, 11, "down_line");
	is_str(mf->checksum, SUM_CARS, "checksum is SHA-256 of up");
	migfile_free(mf);
}

/* branch_labels as Alembic declares them, and the placeholder's header:
 * what import writes must read back field by field. */
static void
test_labels_unfinished(void)
{
	struct migfile	*mf;

	mf = parse_ok("c3_jobs.sql", "-- revision: c3\n-- down_revision: b2\n"
	    "-- branch_labels: workshop, shop.v2\n-- message: jobs\n"
	    "-- imported-from: alembic versions/c3.py sha256=00\n"
	    UP "CREATE TABLE t ();\n");
	if (mf != NULL) {
		is_int(mf->n_labels, 2, "two branch labels");
		is_str(mf->labels[0], "workshop", "label 0");
		is_str(mf->labels[1], "shop.v2", "label 1");
		is_int(mf->labels_line, 3, "labels_line");
		ok(mf->unfinished == NULL, "not unfinished");
		is_str(mf->message, "jobs", "the import line is a comment");
		migfile_free(mf);
	}
	mf = parse_ok("p.sql", ROOT "-- unfinished: not imported from "
	    "versions/p.py: write its SQL\n" UP "-- nothing yet\n");
	if (mf != NULL) {
		is_str(mf->unfinished, "not imported from versions/p.py: write "
		    "its SQL", "unfinished: its reason");
		is_int(mf->unfinished_line, 2, "unfinished_line");
		is_int(mf->n_labels, 0, "no labels");
		migfile_free(mf);
	}
}

/* "-- lint-ignore:" lines: kept one a line, with the first's line. */
static void
test_lint_ignore(void)
{
	struct migfile	*mf;

	mf = parse_ok("l.sql", ROOT "-- lint-ignore: ban-drop-table old\n"
	    "-- lint-ignore: renaming-column,ban-drop-column  unused\n"
	    UP "DROP TABLE t;\n");
	if (mf != NULL) {
		is_str(mf->lint_ignore, "ban-drop-table old\n"
		    "renaming-column,ban-drop-column  unused", "both values");
		is_int(mf->lint_ignore_line, 2, "the first line");
		migfile_free(mf);
	}
	mf = parse_ok("l.sql", ROOT UP "DROP TABLE t;\n");
	if (mf != NULL) {
		ok(mf->lint_ignore == NULL, "none");
		migfile_free(mf);
	}
}

/* CRLF, a BOM and both together give the same texts and checksum as LF. */
static void
test_line_endings(void)
{
	struct migfile	*mf;
	char		*text, *bom;

	text = crlf(example);
	if ((mf = parse_ok("crlf.sql", text)) != NULL) {
		is_str(mf->revision, "a0253e07a4ec", "CRLF: revision");
		is_str(mf->parents[0], "0001", "CRLF: parent");
		is_str(mf->message, "consolidate tables", "CRLF: message");
		is_str(mf->depends[1], "def456", "CRLF: last depends_on");
		is_str(mf->up, "CREATE TABLE cars.cars (id bigserial PRIMARY "
		    "KEY);\n\n", "CRLF: up normalised");
		is_str(mf->down, "DROP TABLE cars.cars;\n",
		    "CRLF: down normalised");
		is_int(mf->up_line, 8, "CRLF: up_line");
		is_int(mf->down_line, 11, "CRLF: down_line");
		is_str(mf->checksum, SUM_CARS, "CRLF: same checksum");
		migfile_free(mf);
	}

	bom = xprintf("\xef\xbb\xbf%s", text);
	if ((mf = parse_ok("bomcrlf.sql", bom)) != NULL) {
		is_str(mf->revision, "a0253e07a4ec", "BOM+CRLF: revision");
		is_int(mf->revision_line, 1, "BOM+CRLF: revision_line");
		is_str(mf->checksum, SUM_CARS, "BOM+CRLF: same checksum");
		migfile_free(mf);
	}
	free(bom);
	free(text);

	bom = xprintf("\xef\xbb\xbf%s", example);
	if ((mf = parse_ok("bom.sql", bom)) != NULL) {
		is_str(mf->revision, "a0253e07a4ec", "BOM: revision");
		is_str(mf->checksum, SUM_CARS, "BOM: same checksum");
		migfile_free(mf);
	}
	free(bom);

	/* Only CR LF pairs are folded; a lone CR is the file's content. */
	if ((mf = parse_ok("cr.sql", ROOT UP "a\rb\r\r\n")) != NULL) {
		is_str(mf->up, "a\rb\r\n", "lone CR kept");
		migfile_free(mf);
	}

	/* A last line without newline is kept as it is. */
	if ((mf = parse_ok("nonl.sql", ROOT "-- migrate:up\r\nSELECT 1;")) !=
	    NULL) {
		is_str(mf->up, "SELECT 1;", "no final newline");
		is_str(mf->down, NULL, "no down section");
		migfile_free(mf);
	}
}

/* Revision defaults to the file name's stem before the first '_'. */
static void
test_default_revision(void)
{
	static const struct {
		const char	*path;
		const char	*want;
	} cases[] = {
		{ "migrations/0001_init.sql", "0001" },
		{ "migrations/0002.sql", "0002" },
		{ "a/b/c/abc.def_x_y.sql", "abc.def" },
		{ "0003_x", "0003" },
		{ "noext", "noext" },
		{ "dir_with_underscore/0004.sql", "0004" },
	};
	struct migfile	*mf;
	size_t		 i;

	for (i = 0; i < nitems(cases); i++) {
		if ((mf = parse_ok(cases[i].path, ROOT UP)) == NULL)
			continue;
		is_str(mf->revision, cases[i].want, "revision from %s",
		    cases[i].path);
		is_int(mf->revision_line, 0, "%s: revision_line 0",
		    cases[i].path);
		migfile_free(mf);
	}

	/* A header wins over the file name. */
	if ((mf = parse_ok("m/0001_x.sql", "-- revision:  r2 \t\n" ROOT UP)) !=
	    NULL) {
		is_str(mf->revision, "r2", "header wins, trimmed");
		is_int(mf->revision_line, 1, "revision_line from header");
		migfile_free(mf);
	}
}

/* Headers, comments and markers in their accepted variants. */
static void
test_variants(void)
{
	struct migfile	*mf;

	mf = parse_ok("m/0009_v.sql",
	    "-- adds the cars table\n"
	    "--\n"
	    "----------\n"
	    "   \t\n"
	    "  -- an indented comment\n"
	    "-- note that x: y\n"
	    "--down_revision:NONE\n"
	    "-- transaction : None\n"
	    "--    message:   spaced out   \n"
	    "--   migrate:up \t\n"
	    "-- revision: zzz\n"
	    "SELECT 1;\n"
	    "--migrate:down  \n");
	if (mf != NULL) {
		is_str(mf->revision, "0009", "comments do not set headers");
		is_int(mf->n_parents, 0, "NONE is a root");
		is_int(mf->parents_line, 7, "parents_line of a root");
		is_int(mf->tx, MIGFILE_TX_NONE, "transaction none");
		is_int(mf->tx_line, 8, "tx_line");
		is_str(mf->message, "spaced out", "message trimmed");
		is_str(mf->up, "-- revision: zzz\nSELECT 1;\n",
		    "header-like lines after the marker are SQL");
		is_int(mf->up_line, 11, "up_line after indented markers");
		is_str(mf->down, "", "empty down section is \"\"");
		is_int(mf->down_line, 14, "down_line of an empty last section");
		migfile_free(mf);
	}

	/* A merge revision: two parents, empty up, no down. */
	mf = parse_ok("m/merge.sql", "-- down_revision: a,b , c\n" UP);
	if (mf != NULL) {
		is_int(mf->n_parents, 3, "three parents");
		is_str(mf->parents[1], "b", "parents trimmed");
		is_str(mf->up, "", "empty up");
		is_str(mf->checksum, SUM_EMPTY, "checksum of empty up");
		is_str(mf->down, NULL, "no down section is NULL");
		is_int(mf->down_line, 0, "down_line 0 without down");
		is_str(mf->message, "", "absent message is \"\"");
		is_int(mf->tx, MIGFILE_TX_AUTO, "transaction defaults to auto");
		is_int(mf->tx_line, 0, "tx_line 0 when absent");
		is_int(mf->n_depends, 0, "no depends_on");
		is_int(mf->depends_line, 0, "depends_line 0 when absent");
		migfile_free(mf);
	}

	mf = parse_ok("m/x.sql", ROOT UP "SELECT 1;\n-- migrate:down");
	if (mf != NULL) {
		is_str(mf->up, "SELECT 1;\n", "up before a final marker");
		is_str(mf->checksum, SUM_SELECT1, "checksum of SELECT 1");
		is_str(mf->down, "", "down marker without newline gives \"\"");
		migfile_free(mf);
	}
}

/* The shared id rule, as other modules call it. */
static void
test_valid_id(void)
{
	static const char *good[] = {
		"a", "0001", "a0253e07a4ec", "A.b-c_D9", "_x", ".",
		"12345678901234567890123456789012", "heads2", "nonee",
	};
	static const char *bad[] = {
		"", "123456789012345678901234567890123", "-a", "+a", "a b",
		"a/b", "a@b", "head", "Heads", "base", "NONE", "a\tb",
	};
	char	*why;
	size_t	 i;

	for (i = 0; i < nitems(good); i++) {
		why = (char *)1;
		ok(migfile_valid_id(good[i], &why) == 1 && why == NULL,
		    "valid id '%s'", good[i]);
	}
	for (i = 0; i < nitems(bad); i++) {
		why = NULL;
		ok(migfile_valid_id(bad[i], &why) == 0 && why != NULL,
		    "invalid id '%s': %s", bad[i], why ? why : "(no reason)");
		free(why);
	}
	ok(migfile_valid_id("head", NULL) == 0, "why may be NULL");
}

/* The exported checksum folds CRLF exactly as the parser does. */
static void
test_checksum(void)
{
	char	 a[65], b[65];

	migfile_checksum("SELECT 1;\n", 10, a);
	is_str(a, SUM_SELECT1, "checksum of LF text");
	migfile_checksum("SELECT 1;\r\n", 11, b);
	is_str(b, SUM_SELECT1, "checksum of CRLF text");
	migfile_checksum("", 0, a);
	is_str(a, SUM_EMPTY, "checksum of nothing");
}

/* The size cap holds for callers other than migdir too. */
static void
test_too_large(void)
{
	struct errlist	 el = { NULL, 0 };
	struct migfile	*mf;
	char		*big;

	big = xcalloc(1, (size_t)MIGFILE_MAX_SIZE + 1);
	is_int(migfile_parse("big.sql", big, (size_t)MIGFILE_MAX_SIZE + 1, &mf,
	    &el), -1, "too large: fails");
	is_str(el.n == 1 ? el.v[0] : NULL, "big.sql:1: file too large "
	    "(67108865 bytes, the limit is 64 MiB)", "too large: message");
	free(big);
	errlist_clear(&el);
}

/* A file parsed for the cache tests, with a stat of its own. */
static struct migfile *
cache_file(const char *path, unsigned long long ino, long long ctime)
{
	struct errlist	 el = { NULL, 0 };
	struct migfile	*mf = NULL;
	const char	*t = "-- down_revision: none\n-- migrate:up\nSELECT 1;\n";

	if (migfile_parse(path, t, strlen(t), &mf, &el) != 0) {
		printf("# cannot parse %s\n", path);
		exit(2);
	}
	mf->sig.dev = 1;
	mf->sig.ino = ino;
	mf->sig.size = strlen(t);
	mf->sig.mtime_sec = 100;
	mf->sig.ctime_sec = ctime;
	return (mf);
}

/* The cache of unchanged files between loads: taken only when path and
 * every part of the stat match, once, with the reference moved. */
static void
test_cache(void)
{
	struct migcache	 c;
	struct migfile	*files[3], *got;
	struct migsig	 sig;

	files[0] = cache_file("d/a.sql", 10, 5);
	files[1] = cache_file("d/b.sql", 11, 5);
	files[2] = cache_file("d/c.sql", 12, 5);
	migcache_init(&c, files, 3);
	is_int(files[1]->refs, 2, "the cache holds a reference of its own");

	sig = files[1]->sig;
	got = migcache_take(&c, "d/b.sql", &sig);
	ok(got == files[1], "an unchanged file is taken");
	is_int(c.taken, 1, "and counted");
	ok(migcache_take(&c, "d/b.sql", &sig) == NULL, "but only once");

	sig = files[0]->sig;
	sig.ctime_nsec = 1;	/* chmod, chown: ctime moves, mtime not */
	ok(migcache_take(&c, "d/a.sql", &sig) == NULL, "a new ctime: read again");
	sig = files[0]->sig;
	sig.ino = 99;		/* replaced by rename */
	ok(migcache_take(&c, "d/a.sql", &sig) == NULL, "a new inode: read again");
	sig = files[0]->sig;
	sig.size++;
	ok(migcache_take(&c, "d/a.sql", &sig) == NULL, "a new size: read again");
	sig = files[2]->sig;
	ok(migcache_take(&c, "d/zz.sql", &sig) == NULL, "an unknown path: NULL");
	ok(migcache_take(NULL, "d/c.sql", &sig) == NULL, "no cache: NULL");

	migcache_clear(&c);
	is_int(files[0]->refs, 1, "clear drops the references not taken");
	is_int(files[1]->refs, 2, "and leaves the taken one to its taker");
	migfile_free(got);	/* the taker's */
	is_int(files[1]->refs, 1, "a free drops one reference");
	migfile_free(files[0]);
	migfile_free(files[1]);
	migfile_free(files[2]);

	migcache_init(&c, NULL, 0);
	ok(migcache_take(&c, "d/a.sql", &sig) == NULL, "an empty cache");
	migcache_clear(&c);
}

int
main(void)
{
	test_cache();
	test_errors();
	test_example();
	test_labels_unfinished();
	test_lint_ignore();
	test_line_endings();
	test_default_revision();
	test_variants();
	test_valid_id();
	test_checksum();
	test_too_large();
		/* A down marker after a malformed one but before the up marker was
	 * taken for a section, and aborted the loader (found by fuzzing). */
	{
		const char	*t = "-- down_revision: none\n-- migrate:oops\n"
				    "-- migrate:down\nDROP TABLE t;\n"
				    "-- migrate:up\nCREATE TABLE t ();\n";
		struct migfile	*bad = NULL;
		struct errlist	 el = { NULL, 0 };

		ok(migfile_parse("x_bad.sql", t, strlen(t), &bad, &el) == -1 &&
		    bad == NULL, "down before up after a bad marker: refused");
		ok(el.n >= 2 && strstr(el.v[1], "x_bad.sql:3: '-- migrate:down' "
		    "before '-- migrate:up'") != NULL, "and said where: %s",
		    el.n > 1 ? el.v[1] : "(none)");
		errlist_clear(&el);
	}
	/* Not UTF-8: refused with its line. */
	{
		const char	*t = "-- down_revision: none\n-- migrate:up\n"
				    "SELECT '\xff';\n";
		struct migfile	*bad = NULL;
		struct errlist	 el = { NULL, 0 };

		ok(migfile_parse("x_latin1.sql", t, strlen(t), &bad, &el) == -1,
		    "invalid UTF-8 refused");
		is_str(el.n ? el.v[0] : NULL, "x_latin1.sql:3: not valid UTF-8 "
		    "(byte 0xff)", "invalid UTF-8 message");
		errlist_clear(&el);
	}

	return (done_testing());
}
