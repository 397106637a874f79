/* Unit tests of [database NAME] sections: inheritance, the daemon's cap, idle close, every refusal. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migd.h"
#include "tap.h"

#define F	"/etc/migd/test.conf"

/* Parses text; returns the config or NULL with the errors joined by '|'. */
static struct config *
parse(const char *text, char **errors)
{
	struct errlist	 errs = { NULL, 0 };
	struct config	*cf = NULL;

	config_parse(F, text, strlen(text), &cf, &errs);
	*errors = errlist_join(&errs, "|");
	errlist_clear(&errs);
	return (cf);
}

/* Expects exactly these errors (joined by '|'). */
static void
expect_error(const char *text, const char *want, const char *what)
{
	struct config	*cf;
	char		*errors;

	cf = parse(text, &errors);
	ok(cf == NULL, "%s: refused", what);
	is_str(errors, want, "%s: message", what);
	config_free(cf);
	free(errors);
}

/* Parses text that must be valid; fails the test otherwise. */
static struct config *
parse_ok(const char *text, const char *what)
{
	struct config	*cf;
	char		*errors;

	cf = parse(text, &errors);
	ok(cf != NULL, "%s: valid (%s)", what, errors);
	free(errors);
	return (cf);
}

/* config_print's output as a string. */
static char *
print(const struct config *cf)
{
	char	*out = NULL;
	size_t	 len = 0;
	FILE	*f;

	f = open_memstream(&out, &len);
	config_print(cf, f);
	fclose(f);
	return (out);
}

/* The warnings joined by '|', or "". */
static char *
warnings(const struct config *cf)
{
	return (errlist_join(&cf->warnings, "|"));
}

/* The single-database forms give one database named default, as before. */
static void
test_single(void)
{
	struct config	*cf;
	char		*w;

	cf = parse_ok("", "empty file");
	if (cf != NULL) {
		is_int(cf->n_dbs, 1, "empty file: one database");
		is_str(cf->dbs[0].name, "default", "named default");
		is_int(cf->dbs[0].line, 0, "no section line");
		is_int(cf->max_connections_total, 0, "no cap by default");
		is_int(cf->idle_close_ms, 0, "idle_close: never, one database");
		is_str(cf->idle_close_text, "0", "idle_close printed as 0");
		w = warnings(cf);
		is_str(w, "", "no warning");
		free(w);
	}
	config_free(cf);

	cf = parse_ok("[database]\nconninfo = host=/tmp dbname=x\npool_size = 5\n"
	    "[migrations]\nschemas = a, b\nlock_timeout = 2s\n"
	    "version_table = s.v\n", "single database");
	if (cf != NULL) {
		is_int(cf->n_dbs, 1, "one database");
		is_str(cf->dbs[0].conninfo, "host=/tmp dbname=x",
		    "its conninfo");
		is_str(cf->dbs[0].conninfo, cf->dbs[0].conninfo,
		    "the engine's conninfo is the first database's");
		is_int(cf->dbs[0].pool_size, 5, "flat pool_size");
		is_int(cf->dbs[0].pool_size, 5, "its pool_size");
		is_int(cf->dbs[0].n_schemas, 2, "flat schemas");
		is_int(cf->dbs[0].n_schemas, 2, "its schemas");
		is_int(cf->dbs[0].lock_timeout_ms, 2000, "flat lock_timeout");
		is_str(cf->dbs[0].history_schema, "s",
		    "history beside the version table");
		is_str(cf->dbs[0].history_schema, "s", "its history schema");
		ok(config_find_db(cf, "DEFAULT") == &cf->dbs[0],
		    "found without case");
		ok(config_find_db(cf, "other") == NULL, "no other");
	}
	config_free(cf);

	/* One named database is served by this build too. */
	cf = parse_ok("[database t1]\nconninfo = dbname=t1\npool_size = 3\n",
	    "one named database");
	if (cf != NULL) {
		is_int(cf->n_dbs, 1, "one database");
		is_str(cf->dbs[0].name, "t1", "its name");
		is_int(cf->dbs[0].line, 1, "its section's line");
		is_str(cf->dbs[0].conninfo, "dbname=t1", "the engine's conninfo");
		is_int(cf->dbs[0].pool_size, 3, "the engine's pool_size");
	}
	config_free(cf);

	/* A single database's idle_close is honoured: no warning. */
	cf = parse_ok("[database]\nidle_close = 30s\n", "idle_close, one db");
	if (cf != NULL) {
		is_int(cf->idle_close_ms, 30000, "30s read");
		w = warnings(cf);
		is_str(w, "", "no warning");
		free(w);
	}
	config_free(cf);
}

/* What a named database inherits, whatever the order of the sections. */
static void
test_inherit(void)
{
	struct config		*cf;
	const struct config_db	*a, *b, *d;
	char			*w;

	cf = parse_ok("[database a]\nconninfo = dbname=a\nschemas = own\n"
	    "lock_timeout = 1s\nversion_table = t.ver\npool_size = 1\n"
	    "directory = /srv/a\nformat = dbmate\natomic = yes\nlint = off\n"
	    "[database]\npool_size = 4\nconnect_timeout = 7\n"
	    "[migrations]\ndirectory = m\nschemas = x, y\n"
	    "statement_timeout = 1min\nhistory_table = hist\n"
	    "[database b]\nconninfo = dbname=b\n", "two named databases");
	if (cf == NULL)
		return;
	is_int(cf->n_dbs, 2, "two databases: the unnamed has no conninfo");
	a = config_find_db(cf, "a");
	b = config_find_db(cf, "b");
	ok(a == &cf->dbs[0] && b == &cf->dbs[1], "in file order");
	if (a == NULL || b == NULL) {
		config_free(cf);
		return;
	}
	is_int(a->n_schemas, 1, "a's schemas replace the inherited ones");
	is_str(a->schemas[0], "own", "a's schema");
	is_int(a->lock_timeout_ms, 1000, "a's lock_timeout");
	is_int(a->statement_timeout_ms, 60000,
	    "a inherits statement_timeout from a later [migrations]");
	is_int(a->pool_size, 1, "a's pool_size");
	is_int(a->connect_timeout, 7, "a inherits connect_timeout");
	is_str(a->version_schema, "t", "a's version schema");
	is_str(a->history_schema, "t",
	    "a's history beside its own version table");
	is_str(a->history_table, "hist", "a inherits the history table");
	is_str(a->directory, "/srv/a", "a's directory");
	is_int(a->format, 2, "a's format (dbmate)");
	is_int(a->atomic, 1, "a's atomic");
	is_int(a->lint, MIGD_LINT_OFF, "a's lint");
	is_int(b->n_schemas, 2, "b inherits the schemas");
	is_str(b->schemas[1], "y", "b's second schema");
	is_int(b->pool_size, 4, "b inherits pool_size");
	is_str(b->directory, "/etc/migd/m",
	    "b inherits the directory, relative to the file");
	is_str(b->version_schema, "public", "b: the default version table");
	is_str(b->history_schema, "public", "b's history schema");
	is_int(b->lock_timeout_ms, 5000, "b: the default lock_timeout");
	is_int(b->atomic, 0, "b: atomic default");
	is_str(cf->dbs[0].conninfo, "dbname=a", "the engine reads the first's");
	is_int(cf->dbs[0].pool_size, 1, "the engine's pool_size is the first's");
	is_int(cf->idle_close_ms, 60000, "several databases: idle_close 60s");
	is_str(cf->idle_close_text, "60s", "printed as 60s");
	w = warnings(cf);
	is_str(w, F ": 2 databases and no max_connections_total: migd may "
	    "hold up to 5 connections at once (the sum of their pool_size); "
	    "set [database] max_connections_total to what the server can "
	    "spare (see docs/fleet.md)", "no cap: a warning with the sum");
	free(w);
	config_free(cf);

	/* The unnamed [database] with a conninfo is 'default', first. */
	cf = parse_ok("[database z]\nconninfo = dbname=z\n[database]\n"
	    "conninfo = dbname=main\nidle_close = 0\n"
	    "max_connections_total = 8\n", "unnamed and named");
	if (cf != NULL) {
		is_int(cf->n_dbs, 2, "two databases");
		d = config_find_db(cf, "default");
		ok(d == &cf->dbs[0], "default first");
		is_str(cf->dbs[1].name, "z", "then z");
		is_str(cf->dbs[0].conninfo, "dbname=main", "the engine's is default's");
		is_int(cf->idle_close_ms, 0, "idle_close 0 as written");
		is_int(cf->max_connections_total, 8, "the cap");
		w = warnings(cf);
		is_str(w, "", "with a cap, no warning");
		free(w);
	}
	config_free(cf);

	/* Without an unnamed conninfo, 'default' is a name like another. */
	cf = parse_ok("[database default]\nconninfo = dbname=d\n",
	    "[database default] alone");
	ok(cf != NULL && cf->n_dbs == 1 && cf->dbs[0].line == 1,
	    "[database default] is the one database");
	config_free(cf);

	/* A continued conninfo in a named section. */
	cf = parse_ok("[database c]\nconninfo = host=a,b dbname=c\n"
	    "  target_session_attrs=read-write\n", "continued conninfo");
	if (cf != NULL)
		is_str(cf->dbs[0].conninfo, "host=a,b dbname=c "
		    "target_session_attrs=read-write", "continuation joined");
	config_free(cf);

	/* Names: the longest, and every allowed character. */
	{
		char	 name[64], *text;

		memset(name, 'a', 63);
		name[63] = '\0';
		text = xprintf("[database %s]\nconninfo = dbname=x\n"
		    "[database _A-b.9]\nconninfo = dbname=y\n"
		    "[database 9lives]\nconninfo = dbname=z\n", name);
		cf = parse_ok(text, "63-byte name, _ - . and a leading digit");
		if (cf != NULL) {
			is_str(cf->dbs[0].name, name, "63 bytes kept whole");
			is_str(cf->dbs[1].name, "_A-b.9",
			    "mixed name kept as written");
		}
		config_free(cf);
		free(text);
	}
	ok(config_db_name_valid("tenant_0001"), "tenant_0001 valid");
	ok(!config_db_name_valid(""), "empty invalid");
	ok(!config_db_name_valid("-x"), "leading - invalid");
	ok(!config_db_name_valid(".x"), "leading . invalid");
	ok(!config_db_name_valid("a b"), "blank invalid");
	ok(!config_db_name_valid("a/b"), "slash invalid");
	ok(!config_db_name_valid("caf\xc3\xa9"), "non-ASCII invalid");
}

/* Every refusal, with its line. */
static void
test_refusals(void)
{
	expect_error("[database a]\nconninfo = dbname=a\n[database a]\n"
	    "conninfo = dbname=b\n",
	    F ":3: [database a] is already defined on line 1",
	    "duplicate name");
	expect_error("[database Tenant]\nconninfo = dbname=a\n"
	    "[database tenant]\nconninfo = dbname=b\n",
	    F ":3: [database tenant] differs only in case from "
	    "[database Tenant] on line 1: names are compared without case",
	    "names differing in case");
	expect_error("[database a b]\nconninfo = dbname=a\n",
	    F ":1: 'a b' is not a valid database name: use ASCII letters, "
	    "digits, '_', '-' and '.', at most 63 of them, starting with a "
	    "letter, a digit or '_'", "a blank in the name");
	expect_error("[database -x]\nconninfo = dbname=a\n",
	    F ":1: '-x' is not a valid database name: use ASCII letters, "
	    "digits, '_', '-' and '.', at most 63 of them, starting with a "
	    "letter, a digit or '_'", "leading dash");
	expect_error("[database aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaa]\n",
	    F ":1: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'"
	    " is not a valid database name: use ASCII letters, digits, '_', '-' "
	    "and '.', at most 63 of them, starting with a letter, a digit or "
	    "'_'", "64-byte name");
	expect_error("[database x;y]\n",
	    F ":1: 'x;y' is not a valid database name: use ASCII letters, "
	    "digits, '_', '-' and '.', at most 63 of them, starting with a "
	    "letter, a digit or '_'", "semicolon in the name");
	expect_error("[database a]\npool_size = 3\n",
	    F ":1: [database a] has no conninfo: a named database needs its "
	    "own (the unnamed [database]'s is not inherited)",
	    "named database without conninfo");
	expect_error("[database a]\nconninfo =\n",
	    F ":1: [database a] has no conninfo: a named database needs its "
	    "own (the unnamed [database]'s is not inherited)",
	    "named database with an empty conninfo");
	expect_error("[database]\nconninfo = dbname=x\n[database default]\n"
	    "conninfo = dbname=y\n",
	    F ":3: [database default] clashes with the unnamed [database], "
	    "whose conninfo (line 2) makes it the database named 'default': "
	    "name this one otherwise, or move that conninfo into it",
	    "default clashes with the unnamed database");
	expect_error("[migrations a]\nschemas = x\n",
	    F ":1: [migrations a]: only [database] sections take a name; a "
	    "database's own migrations settings go in its [database a] section",
	    "a named [migrations]");
	expect_error("[databse a]\nconninfo = x\n",
	    F ":1: unknown section [databse a] (known: database, migrations, "
	    "control, log)", "misspelt named section");
	expect_error("[database a]\nconninfo = dbname=a\nsocket = /x\n",
	    F ":3: unknown key 'socket' in [database a] (a named database "
	    "takes conninfo, pool_size, connect_timeout and the keys of "
	    "[migrations]): it belongs in [control]",
	    "a [control] key in a named section");
	expect_error("[database a]\nconninfo = dbname=a\nlock_timout = 1s\n",
	    F ":3: unknown key 'lock_timout' in [database a] (a named database "
	    "takes conninfo, pool_size, connect_timeout and the keys of "
	    "[migrations]): did you mean 'lock_timeout'?",
	    "a typo of a [migrations] key in a named section");
	expect_error("[database a]\nconninfo = dbname=a\n"
	    "max_connections_total = 4\n",
	    F ":3: 'max_connections_total' applies to the whole daemon, across "
	    "every database: set it in the unnamed [database], not in "
	    "[database a]", "the cap in a named section");
	expect_error("[database a]\nconninfo = dbname=a\nidle_close = 5s\n",
	    F ":3: 'idle_close' applies to the whole daemon, across every "
	    "database: set it in the unnamed [database], not in [database a]",
	    "idle_close in a named section");
	expect_error("[database a]\nconninfo = dbname=a\nschemas = x\n"
	    "schemas = y\n", F ":4: 'schemas' is already set on line 3",
	    "a key twice in a named section");
	expect_error("[database a]\nconninfo = dbname=a\npool_size = 0\n",
	    F ":3: pool_size must be a whole number from 1 to 64, not '0'",
	    "a bad value in a named section");
	expect_error("[database a]\nconninfo = host='x\n",
	    F ":2: invalid conninfo: unterminated quoted string in connection "
	    "info string", "a bad conninfo in a named section");
	expect_error("[database a]\nconninfo = dbname=a\nlock_timeout = soon\n",
	    F ":3: lock_timeout must be a duration such as 500ms, 5s, 2min or "
	    "1h (at most 24 h), not 'soon'", "a bad duration in a named one");
	expect_error("[database]\nmax_connections_total = -1\n",
	    F ":2: max_connections_total must be a whole number from 0 to "
	    "10000, not '-1'", "a negative cap");
	expect_error("[database]\nidle_close = later\n",
	    F ":2: idle_close must be a duration such as 500ms, 5s, 2min or 1h "
	    "(at most 24 h), not 'later'", "a bad idle_close");
	expect_error("[database]\nmax_connections_total = 4\n[database a]\n"
	    "conninfo = dbname=a\npool_size = 5\n",
	    F ":5: pool_size (5) of [database a] is above max_connections_total "
	    "(4): no database may hold more connections than the whole daemon",
	    "a named pool above the cap");
	expect_error("[database]\npool_size = 6\nmax_connections_total = 4\n"
	    "[database a]\nconninfo = dbname=a\n[database b]\n"
	    "conninfo = dbname=b\n",
	    F ":2: pool_size (6) is above max_connections_total (4): no "
	    "database may hold more connections than the whole daemon",
	    "an inherited pool above the cap: reported once, where written");
	expect_error("[database]\nconninfo = dbname=x\npool_size = 3\n"
	    "max_connections_total = 2\n",
	    F ":3: pool_size (3) is above max_connections_total (2): no "
	    "database may hold more connections than the whole daemon",
	    "a single database above the cap");
	expect_error("[database a]\nconninfo = host=/tmp dbname=x\n"
	    "[database b]\nconninfo = dbname=x host=/tmp user=other\n",
	    F ":3: [database b] reaches the same database as [database a] on "
	    "line 1 (host=/tmp dbname=x) and keeps the same version table "
	    "public.alembic_version: one history would be kept by two "
	    "engines; remove one section, or give each its own version_table",
	    "the same database twice, written differently");
	expect_error("[database]\nconninfo = postgresql://h:5433/x\n"
	    "[database b]\nconninfo = host=h port=5433 dbname=x "
	    "password=secret\n",
	    F ":3: [database b] reaches the same database as [database "
	    "default] on line 2 (host=h port=5433 dbname=x) and keeps the same "
	    "version table public.alembic_version: one history would be kept "
	    "by two engines; remove one section, or give each its own "
	    "version_table", "a URI and key=value pairs, no password shown");
	expect_error("[database a]\n[database a]\n[database b]\npool_size = x\n",
	    F ":2: [database a] is already defined on line 1|"
	    F ":4: pool_size must be a whole number from 1 to 64, not 'x'",
	    "every error reported, in order");
}

/* The cap, idle close and databases sharing a server. */
static void
test_cap(void)
{
	struct config	*cf;

	cf = parse_ok("[database]\nmax_connections_total = 1\n[database a]\n"
	    "conninfo = dbname=a\n[database b]\nconninfo = dbname=b\n",
	    "cap 1 with the default pool_size");
	if (cf != NULL) {
		is_int(cf->dbs[0].pool_size, 1, "a's default pool shrinks to 1");
		is_int(cf->dbs[1].pool_size, 1, "b's too");
		is_int(cf->defaults.pool_size, 1, "and the printed default");
	}
	config_free(cf);
	cf = parse_ok("[database]\nmax_connections_total = 3\npool_size = 3\n"
	    "conninfo = dbname=x\n", "pool_size equal to the cap");
	ok(cf != NULL && cf->dbs[0].pool_size == 3, "pool_size 3 under a cap of 3");
	config_free(cf);
	cf = parse_ok("[database a]\nconninfo = dbname=x\n[database b]\n"
	    "conninfo = dbname=x\nversion_table = b.alembic_version\n",
	    "one database, two version tables");
	ok(cf != NULL && cf->n_dbs == 2, "schema-per-tenant: allowed");
	config_free(cf);
	cf = parse_ok("[database a]\nconninfo = dbname=x port=5432\n"
	    "[database b]\nconninfo = dbname=x port=5433\n",
	    "two servers, one database name");
	ok(cf != NULL && cf->n_dbs == 2, "different ports: two databases");
	config_free(cf);
}

/* migd -n's output names every database and reads back the same. */
static void
test_print(void)
{
	struct config	*cf, *again;
	char		*out, *out2, *errors;

	cf = parse_ok("[database]\nconninfo = dbname=main\n"
	    "max_connections_total = 6\n[migrations]\nschemas = x\n"
	    "[database t1]\nconninfo = dbname=t1 password=secret\n"
	    "schemas = \"Odd\"\nlock_timeout = 250ms\n[database t2]\n"
	    "conninfo = dbname=t2\npool_size = 1\n", "a small fleet");
	if (cf == NULL)
		return;
	out = print(cf);
	ok(strstr(out, "# 3 databases: default t1 t2\n") != NULL,
	    "the databases named");
	ok(strstr(out, "[database t1]\nconninfo = password=******** "
	    "dbname=t1\n") != NULL, "t1's section, password masked");
	ok(strstr(out, "secret") == NULL, "no password");
	ok(strstr(out, "schemas = \"Odd\"\n") != NULL, "t1's own schema");
	ok(strstr(out, "lock_timeout = 250ms\n") != NULL, "t1's own timeout");
	ok(strstr(out, "max_connections_total = 6\nidle_close = 60s\n") !=
	    NULL, "the cap and the fleet's idle_close");
	ok(strstr(out, "[database default]") == NULL,
	    "the unnamed one is printed as [database]");
	again = parse(out, &errors);
	ok(again != NULL, "the printed file is valid: %s", errors);
	free(errors);
	if (again != NULL) {
		out2 = print(again);
		is_str(out2, out, "printing it again gives the same text");
		is_int(again->n_dbs, 3, "three databases again");
		free(out2);
	}
	config_free(again);
	free(out);
	config_free(cf);

	cf = parse_ok("[database]\nconninfo = dbname=x\n", "one database");
	if (cf != NULL) {
		out = print(cf);
		ok(strstr(out, "# 1 database: default\n[database]\n") != NULL,
		    "one database named");
		ok(strstr(out, "[database default]") == NULL,
		    "no named section");
		free(out);
	}
	config_free(cf);
}

/* Picks with config_pick_db; the name of the pick, or the cause. */
static char *
pick(const struct config *cf, const char *name, int reads)
{
	const struct config_db	*db;
	char			*cause;

	if ((db = config_pick_db(cf, name, reads, &cause)) != NULL) {
		ok(cause == NULL, "a pick has no cause");
		return (xstrdup(db->name));
	}
	return (cause);
}

/* Checks what pick says, and frees it. */
static void
expect_pick(const struct config *cf, const char *name, int reads,
    const char *want, const char *what)
{
	char	*got = pick(cf, name, reads);

	is_str(got, want, "%s", what);
	free(got);
}

/* The database migctl's offline commands read: --db's, else as migd
 * picks, else the first when all agree on what the command reads. */
static void
test_pick(void)
{
	struct config	*cf;
	const int	 files = CONFIG_READS_DIR | CONFIG_READS_FORMAT;

	cf = parse_ok("[migrations]\ndirectory = /m\n[database a]\n"
	    "conninfo = dbname=a\n[database b]\nconninfo = dbname=b\n"
	    "lock_timeout = 9s\n", "one directory");
	expect_pick(cf, "b", CONFIG_READS_ALL, "b", "--db names one");
	expect_pick(cf, "B", CONFIG_READS_ALL, "no database B in " F
	    "; databases: a, b", "--db is matched as migd matches it");
	expect_pick(cf, "nosuch", files, "no database nosuch in " F
	    "; databases: a, b", "an unknown --db names the databases");
	expect_pick(cf, NULL, files, "a", "one directory: the first");
	expect_pick(cf, NULL, files | CONFIG_READS_SCHEMAS, "a",
	    "same schemas too: the first");
	expect_pick(cf, NULL, CONFIG_READS_ALL, F " has 2 databases and "
	    "their lock_timeout differs: name one with --db NAME; databases: "
	    "a, b", "a run's settings differ: refused");
	config_free(cf);

	cf = parse_ok("[database a]\nconninfo = dbname=a\ndirectory = /a\n"
	    "[database b]\nconninfo = dbname=b\ndirectory = /b\n",
	    "two directories");
	expect_pick(cf, NULL, files, F " has 2 databases and their "
	    "directory differs: name one with --db NAME; databases: a, b",
	    "two directories: refused");
	expect_pick(cf, NULL, CONFIG_READS_SCHEMAS, "a",
	    "the directory not read: the first");
	config_free(cf);

	cf = parse_ok("[database a]\nconninfo = dbname=a\nformat = dbmate\n"
	    "[database b]\nconninfo = dbname=b\n", "two formats");
	expect_pick(cf, NULL, CONFIG_READS_DIR, "a", "format not read");
	expect_pick(cf, NULL, files, F " has 2 databases and their format "
	    "differs: name one with --db NAME; databases: a, b",
	    "two formats: refused");
	config_free(cf);

	cf = parse_ok("[database a]\nconninfo = dbname=s\nschemas = a\n"
	    "version_table = a.alembic_version\n[database b]\n"
	    "conninfo = dbname=s\nschemas = b\n"
	    "version_table = b.alembic_version\n", "a schema each");
	expect_pick(cf, NULL, files, "a", "same files: the first");
	expect_pick(cf, NULL, files | CONFIG_READS_SCHEMAS, F " has 2 "
	    "databases and their schemas differs: name one with --db NAME; "
	    "databases: a, b", "their schemas differ: refused");
	config_free(cf);

	cf = parse_ok("[database a]\nconninfo = dbname=a\n"
	    "version_table = va\n[database b]\nconninfo = dbname=b\n",
	    "two version tables");
	expect_pick(cf, NULL, CONFIG_READS_SCHEMAS, "a", "same schema");
	expect_pick(cf, NULL, CONFIG_READS_RUN, F " has 2 databases and "
	    "their version_table differs: name one with --db NAME; "
	    "databases: a, b", "the version table differs: refused");
	config_free(cf);

	/* The unnamed [database] with a conninfo is "default": as migd. */
	cf = parse_ok("[database]\nconninfo = dbname=d\n[migrations]\n"
	    "directory = /d\n[database x]\nconninfo = dbname=x\n"
	    "directory = /x\n", "default and another");
	expect_pick(cf, NULL, CONFIG_READS_ALL, "default",
	    "no --db: the unnamed [database], as migd picks it");
	expect_pick(cf, "x", CONFIG_READS_ALL, "x", "--db x");
	config_free(cf);

	cf = parse_ok("[database]\nconninfo = dbname=d\n", "one");
	expect_pick(cf, NULL, CONFIG_READS_ALL, "default", "the only one");
	expect_pick(cf, "default", CONFIG_READS_ALL, "default", "by name");
	expect_pick(cf, "other", CONFIG_READS_ALL, "no database other in " F
	    "; databases: default", "one, and another name");
	config_free(cf);
}

int
main(void)
{
	test_single();
	test_inherit();
	test_refusals();
	test_cap();
	test_print();
	test_pick();
	return (done_testing());
}
