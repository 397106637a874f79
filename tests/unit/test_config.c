/* Unit tests of the configuration parser: defaults, values, every error's FILE:LINE. */
#include <stdlib.h>
#include <string.h>

#include "conninfo.h"
#include "layout.h"
#include "migd.h"
#include "tap.h"

/* Parses text; returns the config or NULL with the errors joined by '|'. */
static struct config *
parse(const char *text, char **errors)
{
	struct errlist	 errs = { NULL, 0 };
	struct config	*cf = NULL;

	config_parse("/etc/migd/test.conf", text, strlen(text), &cf, &errs);
	*errors = errlist_join(&errs, "|");
	errlist_clear(&errs);
	return (cf);
}

/* Expects exactly one error message. */
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

/* Every way a password can be written, and what migd shows of it. */
static void
test_conninfo_mask(void)
{
	static const struct {
		const char	*in, *want, *what;
	} cases[] = {
		{ "host=/tmp password=secret dbname=x",
		    "password=******** dbname=x host=/tmp", "key=value" },
		{ "host=/tmp password='se cret \\' quote' dbname=x",
		    "password=******** dbname=x host=/tmp",
		    "quoted with blanks and an escaped quote" },
		{ "host = /tmp password = secret",
		    "password=******** host=/tmp", "blanks around =" },
		{ "postgresql://u:secret@/db?host=/tmp",
		    "user=u password=******** dbname=db host=/tmp", "URI" },
		{ "postgresql://u:pa%25ss%2Fw@h:5433/db",
		    "user=u password=******** dbname=db host=h port=5433",
		    "URI with %-encoded password" },
		{ "postgres://u@h/db?password=secret&sslmode=require",
		    "user=u password=******** dbname=db host=h "
		    "sslmode=require", "password as a URI parameter" },
		{ "host=h sslpassword=keypass sslkey=/k.pem",
		    "host=h sslkey=/k.pem sslpassword=********", "sslpassword" },
		{ "postgresql://h/db?sslpassword=keypass",
		    "dbname=db host=h sslpassword=********",
		    "sslpassword in a URI" },
		{ "dbname='postgresql://u:secret@h/db' host=x",
		    "dbname='user=u password=******** dbname=db host=h' host=x",
		    "URI nested in dbname" },
		{ "dbname='host=h password=secret dbname=real' user=u",
		    "user=u dbname='password=******** dbname=real host=h'",
		    "conninfo nested in dbname" },
		{ "dbname='postgresql://u:pa%zzsecret@h/db'",
		    "dbname='<unparseable conninfo: invalid percent-encoded "
		    "token: \"...\" (in the password of the URI: a % is "
		    "written %25 there)>'", "unparseable URI nested in dbname" },
		{ "dbname='my db' user=o\\'brien",
		    "user='o\\'brien' dbname='my db'",
		    "values with spaces and quotes stay parseable" },
		{ "", "", "empty" },
		{ "postgresql://u:pa%zzsecret@h/db",
		    "<unparseable conninfo: invalid percent-encoded token: "
		    "\"...\" (in the password of the URI: a % is written %25 "
		    "there)>", "malformed % in a URI password" },
		{ "host=h password=my secret",
		    "<unparseable conninfo: missing \"=\" after \"...\" in "
		    "connection info string>", "unquoted blank in a password" },
		{ "postgresql://u:secret@[::1/db",
		    "<unparseable conninfo: end of string reached when looking "
		    "for matching \"]\" in IPv6 host address in URI: \"...\">",
		    "malformed URI quoted whole by libpq" },
		{ "postgresql://u@h/db?password%3Dsecret",
		    "<unparseable conninfo: missing key/value separator \"=\" "
		    "in URI query parameter: \"...\">",
		    "encoded = in a URI parameter" },
		{ "postgresql://u:s%00ecret@h/db",
		    "<unparseable conninfo: forbidden value %00 in "
		    "percent-encoded value: \"...\" (in the password of the "
		    "URI: a % is written %25 there)>", "%00 in a URI password" },
	};
	size_t	 i;
	char	*m;

	for (i = 0; i < nitems(cases); i++) {
		m = conninfo_mask(cases[i].in);
		is_str(m, cases[i].want, "mask: %s", cases[i].what);
		ok(strstr(m, "secret") == NULL && strstr(m, "keypass") == NULL,
		    "mask: %s: no secret in '%s'", cases[i].what, m);
		free(m);
	}
	ok(conninfo_has_secret("host=h password=x"), "has a password");
	ok(conninfo_has_secret("postgresql://u:x@h/db"), "URI has a password");
	ok(conninfo_has_secret("dbname='postgresql://u:x@h/db'"),
	    "nested URI has a password");
	ok(conninfo_has_secret("host=h sslpassword=x"), "has an sslpassword");
	ok(!conninfo_has_secret("host=h user=u dbname=d"), "no password");
	ok(!conninfo_has_secret("host=h password="), "an empty password is none");
}

/* The configuration's errors for a conninfo libpq cannot parse. */
static void
test_conninfo_errors(void)
{
	static const char *bad[] = {
		"postgresql://u:pa%ssecret@h/db",
		"postgresql://u:secret%@h/db",
		"postgresql://u:secret@h/db?sslmode=require&password=a%zz",
		"postgresql://secret%4@h/db",
		"host=h password=my secret",
		"host=h password=my secret=x",
		"host=h password='secret",
		"postgresql://u:secret@[::1/db",
		"postgresql://u:secret@h/db?bogus",
		"dbname=d password = 'unterminated secret",
	};
	struct config	*cf;
	char		*text, *errors;
	size_t		 i;

	for (i = 0; i < nitems(bad); i++) {
		text = xprintf("[database]\nconninfo = %s\n", bad[i]);
		cf = parse(text, &errors);
		ok(cf == NULL && strstr(errors, "test.conf:2: invalid conninfo")
		    != NULL, "refused: %s", errors);
		ok(strstr(errors, "secret") == NULL, "no secret in '%s'",
		    errors);
		config_free(cf);
		free(errors);
		free(text);
	}
	text = conninfo_error("postgresql://secret%4@h/db",
	    "invalid percent-encoded token: \"secret%4\"\n");
	is_str(text, "invalid percent-encoded token: \"...\" (in the user "
	    "name of the URI: a % is written %25 there)", "bad escape in the user");
	free(text);
	text = conninfo_error("postgresql://u@h/d%zb", "invalid "
	    "percent-encoded token: \"d%zb\"\n");
	is_str(text, "invalid percent-encoded token: \"...\" (in the "
	    "database name of the URI: a % is written %25 there)",
	    "bad escape in the database name");
	free(text);
	text = conninfo_error("host=h", "invalid connection option "
	    "\"sslmode\"\n");
	is_str(text, "invalid connection option \"sslmode\"",
	    "a keyword stays");
	free(text);
	/* What libpq quotes may hold quotes of its own. */
	text = conninfo_error("postgresql://u:ab\"c%zzsecret@h/db",
	    "invalid percent-encoded token: \"ab\"c%zzsecret\"\n");
	is_str(text, "invalid percent-encoded token: \"...\" (in the "
	    "password of the URI: a % is written %25 there)",
	    "a quote inside what libpq quotes");
	free(text);
	text = conninfo_error("postgresql://u:secret@[::1]x/db",
	    "unexpected character \"x\" at position 28 in URI (expected "
	    "\":\" or \"/\"): \"postgresql://u:secret@[::1]x/db\"\n");
	is_str(text, "unexpected character \"?\" at position 28 in URI "
	    "(expected \":\" or \"/\"): \"...\"", "a character and a position of a template");
	free(text);
	text = conninfo_error("host=h password=my hosts",
	    "missing \"=\" after \"hosts\" in connection info string\n");
	is_str(text, "missing \"=\" after \"...\" in connection info string",
	    "no did-you-mean for what may be a password");
	free(text);
	text = conninfo_error("x", "a message of a newer libpq: \"secret\"\n");
	is_str(text, "libpq cannot parse it (its message is not shown: it may "
	    "quote a password)", "an unknown message is not shown");
	free(text);
	text = conninfo_error("x", NULL);
	is_str(text, "out of memory", "no message: out of memory");
	free(text);
}

/* Secrets quoted in other messages, such as the server's. */
static void
test_conninfo_scrub(void)
{
	char	*s;

	s = conninfo_scrub("host=h dbname='postgresql://u:secret@h/db'",
	    "FATAL: database \"postgresql://u:secret@h/db\" does not exist");
	is_str(s, "FATAL: database \"user=u password=******** dbname=db "
	    "host=h\" does not exist", "nested dbname scrubbed");
	free(s);
	s = conninfo_scrub("host=h password=hunter2", "hunter2 and hunter2");
	is_str(s, "******** and ********", "every occurrence");
	free(s);
	s = conninfo_scrub("host=h password=*", "a * b");
	is_str(s, "a ******** b", "a password that is in the mask ends");
	free(s);
	s = conninfo_scrub("host=h user=u", "nothing secret");
	is_str(s, "nothing secret", "no secret: unchanged");
	free(s);
}

/* The schemas list reads names as SQL does. */
static void
test_schemas(void)
{
	static const struct {
		const char	*value;
		const char	*want;		/* names joined by '|' */
		const char	*printed;	/* as migd -n shows them */
	} good[] = {
		{ "\"Work Shop\"", "Work Shop", "\"Work Shop\"" },
		{ "cars, \"Work Shop\" , Sales", "cars|Work Shop|sales",
		    "cars, \"Work Shop\", sales" },
		{ "\"we\"\"ird\"", "we\"ird", "\"we\"\"ird\"" },
		{ "\"a,b\", c", "a,b|c", "\"a,b\", c" },
		{ "MixedCase, mixedcase", "mixedcase", "mixedcase" },
		{ "\"MixedCase\", mixedcase", "MixedCase|mixedcase",
		    "\"MixedCase\", mixedcase" },
		{ "_x1$, caf\xc3\xa9", "_x1$|caf\xc3\xa9",
		    "_x1$, \"caf\xc3\xa9\"" },
		{ "\"lower\"", "lower", "lower" },
		{ "  a  ,\tb  ", "a|b", "a, b" },
	};
	static const struct {
		const char	*value, *want;
	} bad[] = {
		{ "\"Work Shop", "schema name \"Work Shop has no closing double "
		    "quote" },
		{ "\"\"", "empty quoted schema name \"\"" },
		{ "a, \"\"", "empty quoted schema name \"\"" },
		{ "a,,b", "empty schema name in list" },
		{ "a,", "empty schema name in list" },
		{ "\"a\"b", "unexpected text after the schema name \"a\": quote "
		    "the whole name, or separate names with commas" },
		{ "Work Shop", "schema name 'Work Shop' is not a plain SQL "
		    "identifier (letters, digits, _ and $, not starting with a "
		    "digit): write it in double quotes, \"Work Shop\"" },
		{ "1st", "schema name '1st' is not a plain SQL identifier "
		    "(letters, digits, _ and $, not starting with a digit): "
		    "write it in double quotes, \"1st\"" },
		{ "we\"ird", "schema name 'we\"ird' has a double quote inside: "
		    "write the whole name in double quotes, each \" in it "
		    "doubled (\"a\"\"b\" for a\"b)" },
		{ "PG_CATALOG", "'pg_catalog' is a system schema" },
		{ "\"x;y\"", "schema name '\"x;y\"' contains ';' or '#', which "
		    "start comments in this file" },
		{ "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		    "\"", "schema name 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		    "aaaaaaaaaaaaaaaaaaaaa' is longer than 63 bytes" },
	};
	struct config	*cf;
	char		*text, *errors, *want, *got, *t;
	FILE		*f;
	size_t		 i, k, len;

	for (i = 0; i < nitems(good); i++) {
		text = xprintf("[migrations]\nschemas = %s\n", good[i].value);
		cf = parse(text, &errors);
		ok(cf != NULL, "schemas = %s: valid (%s)", good[i].value, errors);
		if (cf != NULL) {
			got = xstrdup("");
			for (k = 0; k < cf->dbs[0].n_schemas; k++) {
				t = xprintf("%s%s%s", got, k ? "|" : "",
				    cf->dbs[0].schemas[k]);
				free(got);
				got = t;
			}
			is_str(got, good[i].want, "schemas = %s: names",
			    good[i].value);
			free(got);
			/* migd -n prints them so that they read back. */
			got = NULL;
			len = 0;
			f = open_memstream(&got, &len);
			config_print(cf, f);
			fclose(f);
			want = xprintf("\nschemas = %s\n", good[i].printed);
			ok(strstr(got, want) != NULL, "schemas = %s: printed as "
			    "%s", good[i].value, good[i].printed);
			free(want);
			free(got);
		}
		config_free(cf);
		free(errors);
		free(text);
	}
	for (i = 0; i < nitems(bad); i++) {
		text = xprintf("[migrations]\nschemas = %s\n", bad[i].value);
		want = xprintf("/etc/migd/test.conf:2: %s", bad[i].want);
		expect_error(text, want, bad[i].value);
		free(want);
		free(text);
	}
}

int
main(void)
{
	struct config	*cf;
	char		*errors, longline[400];

	/* Defaults. */
	cf = parse("", &errors);
	ok(cf != NULL, "empty file is valid");
	is_str(errors, "", "no errors");
	is_int(cf->dbs[0].pool_size, 2, "default pool_size");
	is_int(cf->dbs[0].connect_timeout, 10, "default connect_timeout");
	is_str(cf->dbs[0].directory, "/etc/migd/migrations",
	    "default directory is relative to the file");
	is_str(cf->dbs[0].version_schema, "public", "default version schema");
	is_str(cf->dbs[0].version_table, "alembic_version", "default version table");
	is_str(cf->socket, "/run/migd/migd.sock", "default socket");
	is_int(cf->socket_mode, 0660, "default socket mode");
	is_int(cf->max_clients, 64, "default max_clients");
	is_int(cf->admin_reserve, 4, "default admin_reserve");
	is_int(cf->max_request_bytes, 65536, "default max_request_bytes");
	is_int(cf->idle_timeout, 300, "default idle_timeout");
	is_int(cf->log_level, LOG_LVL_INFO, "default level");
	is_int(cf->dbs[0].n_schemas, 0, "no schemas by default");
	config_free(cf);
	free(errors);

	/* A full file. */
	cf = parse("; comment\n# another\n[database]\n"
	    "conninfo = host=/tmp port=5433 dbname=cars\n"
	    "pool_size = 4\nconnect_timeout=3\n\n"
	    "[migrations]\ndirectory = migrations/sql\n"
	    "schemas = cars, participants ,work_shop, cars\n"
	    "version_table = ops.versions\n"
	    "[control]\nsocket = /tmp/m.sock\nsocket_mode = 0600\n"
	    "admin_group = wheel\nread_group = adm\nmax_clients = 3\n"
	    "max_request_bytes = 2048\nidle_timeout = 0\n"
	    "[log]\nlevel = DEBUG\n", &errors);
	ok(cf != NULL, "full file is valid");
	is_str(errors, "", "full file: no errors");
	if (cf == NULL)
		return (done_testing());
	is_str(cf->dbs[0].conninfo, "host=/tmp port=5433 dbname=cars", "conninfo");
	is_int(cf->dbs[0].pool_size, 4, "pool_size");
	is_int(cf->dbs[0].connect_timeout, 3, "connect_timeout");
	is_str(cf->dbs[0].directory, "/etc/migd/migrations/sql", "relative directory");
	is_int(cf->dbs[0].n_schemas, 3, "schemas deduplicated");
	is_str(cf->dbs[0].schemas[1], "participants", "schema names trimmed");
	is_str(cf->dbs[0].version_schema, "ops", "version schema");
	is_str(cf->dbs[0].version_table, "versions", "version table");
	is_int(cf->socket_mode, 0600, "socket_mode is octal");
	is_str(cf->admin_group, "wheel", "admin_group");
	is_int(cf->max_clients, 3, "max_clients");
	is_int(cf->idle_timeout, 0, "idle_timeout 0");
	is_int(cf->log_level, LOG_LVL_DEBUG, "level is case-insensitive");
	config_free(cf);
	free(errors);

	/* The engine's settings: durations, the history table. */
	cf = parse("[migrations]\nversion_table = ops.versions\n"
	    "lock_timeout = 500ms\nstatement_timeout = 2min\n"
	    "lock_wait = 3\nconcurrent_lock_timeout = 1h\n"
	    "concurrent_statement_timeout = 90s\n", &errors);
	ok(cf != NULL, "engine settings are valid");
	if (cf != NULL) {
		is_int(cf->dbs[0].concurrent_lock_timeout_ms, 3600000,
		    "concurrent_lock_timeout 1h");
		is_int(cf->dbs[0].concurrent_statement_timeout_ms, 90000,
		    "concurrent_statement_timeout 90s");
		is_str(cf->dbs[0].history_schema, "ops",
		    "history table defaults to the version table's schema");
		is_str(cf->dbs[0].history_table, "migd_history", "history table name");
		is_int(cf->dbs[0].lock_timeout_ms, 500, "lock_timeout in ms");
		is_int(cf->dbs[0].statement_timeout_ms, 120000, "statement_timeout 2min");
		is_int(cf->dbs[0].lock_wait_ms, 3000, "bare number is seconds");
	}
	config_free(cf);
	free(errors);
	/* migd -n prints durations in the units they were written in. */
	cf = parse("[migrations]\nlock_timeout = 500ms\nstatement_timeout = "
	    "2 min\nlock_wait = 3\n", &errors);
	ok(cf != NULL, "durations in several units are valid");
	if (cf != NULL) {
		char	*buf = NULL;
		size_t	 len = 0;
		FILE	*f = open_memstream(&buf, &len);

		config_print(cf, f);
		fclose(f);
		ok(strstr(buf, "\nlock_timeout = 500ms\n") != NULL &&
		    strstr(buf, "\nstatement_timeout = 2min\n") != NULL &&
		    strstr(buf, "\nlock_wait = 3\n") != NULL,
		    "durations printed as written: %s", buf);
		free(buf);
	}
	config_free(cf);
	free(errors);
	cf = parse("", &errors);
	if (cf != NULL) {
		char	*buf = NULL;
		size_t	 len = 0;
		FILE	*f = open_memstream(&buf, &len);

		config_print(cf, f);
		fclose(f);
		ok(strstr(buf, "\nlock_timeout = 5s\n") != NULL &&
		    strstr(buf, "\nstatement_timeout = 0\n") != NULL &&
		    strstr(buf, "\nconcurrent_lock_timeout = 0\n") != NULL &&
		    strstr(buf, "\nconcurrent_statement_timeout = 0\n") !=
		    NULL &&
		    strstr(buf, "\nlock_wait = 60s\n") != NULL &&
		    strstr(buf, "\nlock_retries = 0\nlock_retry_wait = 500ms\n"
		    "lock_retry_max_wait = 10s\n") != NULL,
		    "default durations printed as documented: %s", buf);
		free(buf);
	}
	config_free(cf);
	free(errors);
	cf = parse("[migrations]\nhistory_table = audit.runs\n", &errors);
	ok(cf != NULL && strcmp(cf->dbs[0].history_schema, "audit") == 0 &&
	    strcmp(cf->dbs[0].history_table, "runs") == 0 &&
	    strcmp(cf->dbs[0].version_schema, "public") == 0,
	    "history table with its own schema");
	config_free(cf);
	free(errors);
	cf = parse("", &errors);
	ok(cf != NULL && cf->dbs[0].lock_timeout_ms == 5000 &&
	    cf->dbs[0].statement_timeout_ms == 0 && cf->dbs[0].lock_wait_ms == 60000 &&
	    strcmp(cf->dbs[0].history_schema, "public") == 0,
	    "engine defaults: 5s, 0, 60s, public.migd_history");
	config_free(cf);
	free(errors);
	expect_error("[migrations]\nlock_timeout = soon\n",
	    "/etc/migd/test.conf:2: lock_timeout must be a duration such as "
	    "500ms, 5s, 2min or 1h (at most 24 h), not 'soon'",
	    "bad duration");
	expect_error("[migrations]\nlock_wait = 5 days\n",
	    "/etc/migd/test.conf:2: lock_wait must be a duration such as "
	    "500ms, 5s, 2min or 1h (at most 24 h), not '5 days'",
	    "unknown duration unit");
	expect_error("[migrations]\nconcurrent_lock_timeout = soon\n",
	    "/etc/migd/test.conf:2: concurrent_lock_timeout must be a duration "
	    "such as 500ms, 5s, 2min or 1h (at most 24 h), not 'soon'",
	    "bad concurrent_lock_timeout");
	expect_error("[migrations]\nstatement_timeout = 25h\n",
	    "/etc/migd/test.conf:2: statement_timeout must be a duration such "
	    "as 500ms, 5s, 2min or 1h (at most 24 h), not '25h'",
	    "duration over the maximum");
	cf = parse("", &errors);
	ok(cf != NULL && cf->dbs[0].atomic == 0, "atomic defaults to false");
	config_free(cf);
	free(errors);
	cf = parse("[migrations]\natomic = Yes\n", &errors);
	ok(cf != NULL && cf->dbs[0].atomic == 1, "atomic = Yes");
	config_free(cf);
	free(errors);
	cf = parse("[migrations]\natomic = on\natomic = off\n", &errors);
	ok(cf == NULL, "atomic given twice is refused");
	config_free(cf);
	free(errors);
	cf = parse("", &errors);
	ok(cf != NULL && cf->dbs[0].format == LAYOUT_AUTO, "format defaults to auto");
	config_free(cf);
	free(errors);
	cf = parse("[migrations]\nformat = golang-migrate\n", &errors);
	ok(cf != NULL && cf->dbs[0].format == LAYOUT_GOLANG_MIGRATE,
	    "format = golang-migrate");
	config_free(cf);
	free(errors);
	expect_error("[migrations]\nformat = liquibase\n",
	    "/etc/migd/test.conf:2: format must be one of auto, migd, dbmate, "
	    "golang-migrate, sqlx, diesel, goose, flyway, not 'liquibase'",
	    "an unknown format refused, naming the known ones");
	expect_error("[migrations]\natomic = sometimes\n",
	    "/etc/migd/test.conf:2: atomic must be true or false, not "
	    "'sometimes'", "atomic takes a boolean");
	cf = parse("", &errors);
	ok(cf != NULL && cf->dbs[0].lint == MIGD_LINT_WARN, "lint defaults to warn");
	config_free(cf);
	free(errors);
	cf = parse("[migrations]\nlint = Refuse\n", &errors);
	ok(cf != NULL && cf->dbs[0].lint == MIGD_LINT_REFUSE, "lint = Refuse");
	config_free(cf);
	free(errors);
	cf = parse("[migrations]\nlint = off\n", &errors);
	ok(cf != NULL && cf->dbs[0].lint == MIGD_LINT_OFF, "lint = off");
	config_free(cf);
	free(errors);
	expect_error("[migrations]\nlint = strict\n",
	    "/etc/migd/test.conf:2: lint must be off, warn or refuse, not "
	    "'strict'", "lint takes off, warn or refuse");
	cf = parse("", &errors);
	ok(cf != NULL && cf->dbs[0].lint_small_table_rows == 10000,
	    "lint_small_table_rows defaults to 10000");
	config_free(cf);
	free(errors);
	cf = parse("[migrations]\nlint_small_table_rows = 0\n", &errors);
	ok(cf != NULL && cf->dbs[0].lint_small_table_rows == 0,
	    "lint_small_table_rows = 0: no table is small");
	config_free(cf);
	free(errors);
	expect_error("[migrations]\nlint_small_table_rows = 10k\n",
	    "/etc/migd/test.conf:2: lint_small_table_rows must be a whole "
	    "number from 0 to 2000000000, not '10k'",
	    "lint_small_table_rows takes a whole number");
	/* Lock-aware retries: off by default, a count and two durations. */
	cf = parse("", &errors);
	ok(cf != NULL && cf->dbs[0].lock_retries == 0 && cf->dbs[0].lock_retry_wait_ms ==
	    500 && cf->dbs[0].lock_retry_max_wait_ms == 10000,
	    "lock_retries defaults to 0, waits 500ms doubling up to 10s");
	config_free(cf);
	free(errors);
	cf = parse("[migrations]\nlock_retries = 5\nlock_retry_wait = 1s\n"
	    "lock_retry_max_wait = 2min\n", &errors);
	ok(cf != NULL && cf->dbs[0].lock_retries == 5 && cf->dbs[0].lock_retry_wait_ms ==
	    1000 && cf->dbs[0].lock_retry_max_wait_ms == 120000,
	    "lock_retries, lock_retry_wait and lock_retry_max_wait set");
	config_free(cf);
	free(errors);
	expect_error("[migrations]\nlock_retries = -1\n",
	    "/etc/migd/test.conf:2: lock_retries must be a whole number from "
	    "0 to 100, not '-1'", "a negative lock_retries refused");
	expect_error("[migrations]\nlock_retries = three\n",
	    "/etc/migd/test.conf:2: lock_retries must be a whole number from "
	    "0 to 100, not 'three'", "a lock_retries that is not a number "
	    "refused");
	expect_error("[migrations]\nlock_retries = 101\n",
	    "/etc/migd/test.conf:2: lock_retries must be a whole number from "
	    "0 to 100, not '101'", "lock_retries over 100 refused");
	expect_error("[migrations]\nlock_retry_wait = -5s\n",
	    "/etc/migd/test.conf:2: lock_retry_wait must be a duration such "
	    "as 500ms, 5s, 2min or 1h (at most 1 h), not '-5s'",
	    "a negative lock_retry_wait refused");
	expect_error("[migrations]\nlock_retry_max_wait = soon\n",
	    "/etc/migd/test.conf:2: lock_retry_max_wait must be a duration "
	    "such as 500ms, 5s, 2min or 1h (at most 1 h), not 'soon'",
	    "a lock_retry_max_wait that is not a duration refused");
	expect_error("[migrations]\nhistory_table = a.b.c\n",
	    "/etc/migd/test.conf:2: history_table must be TABLE or "
	    "SCHEMA.TABLE, not 'a.b.c'", "history table with two dots");

	/* A long conninfo continues on indented lines. */
	cf = parse("[database]\nconninfo = host=a,b port=5432,5433\n"
	    "  target_session_attrs=read-write\n", &errors);
	ok(cf != NULL, "continued conninfo is valid");
	if (cf != NULL)
		is_str(cf->dbs[0].conninfo, "host=a,b port=5432,5433 "
		    "target_session_attrs=read-write", "continuation joined");
	config_free(cf);
	free(errors);

	/* Every kind of mistake, with its line. */
	/* admin_reserve: readers keep at least one of max_clients. */
	cf = parse("[control]\nmax_clients = 3\n", &errors);
	ok(cf != NULL && cf->admin_reserve == 2,
	    "the default admin_reserve shrinks below a small max_clients");
	config_free(cf);
	free(errors);
	cf = parse("[control]\nmax_clients = 1\n", &errors);
	ok(cf != NULL && cf->admin_reserve == 0,
	    "max_clients 1: no reserve by default");
	config_free(cf);
	free(errors);
	cf = parse("[control]\nadmin_reserve = 0\nmax_clients = 1\n", &errors);
	ok(cf != NULL && cf->admin_reserve == 0, "admin_reserve 0 is valid");
	config_free(cf);
	free(errors);
	expect_error("[control]\nmax_clients = 8\n\nadmin_reserve = 8\n",
	    "/etc/migd/test.conf:4: admin_reserve (8) must be less than "
	    "max_clients (8), or only admins could ever connect",
	    "admin_reserve as large as max_clients");
	expect_error("[control]\nadmin_reserve = -1\n",
	    "/etc/migd/test.conf:2: admin_reserve must be a whole number from "
	    "0 to 9999, not '-1'", "admin_reserve -1");
	expect_error("[database]\npool_size = 0\n",
	    "/etc/migd/test.conf:2: pool_size must be a whole number from 1 "
	    "to 64, not '0'", "pool_size 0");
	expect_error("[database]\n\npool_size = abc\n",
	    "/etc/migd/test.conf:3: pool_size must be a whole number from 1 "
	    "to 64, not 'abc'", "pool_size abc");
	expect_error("[database]\npool_size = 99999999999999999999\n",
	    "/etc/migd/test.conf:2: pool_size must be a whole number from 1 "
	    "to 64, not '99999999999999999999'", "pool_size overflow");
	expect_error("[control]\nsocket_mode = 999\n",
	    "/etc/migd/test.conf:2: socket_mode must be octal permission "
	    "bits such as 0660, not '999'", "socket_mode 999");
	expect_error("[control]\nsocket_mode = 01777\n",
	    "/etc/migd/test.conf:2: socket_mode must be octal permission "
	    "bits such as 0660, not '01777'", "socket_mode sticky");
	expect_error("[log]\nlevel = loud\n",
	    "/etc/migd/test.conf:2: level must be error, warning, info or "
	    "debug, not 'loud'", "bad level");
	expect_error("[databse]\nconninfo = x\n",
	    "/etc/migd/test.conf:1: unknown section [databse] (known: "
	    "database, migrations, control, log)", "unknown section");
	expect_error("[logging]\n",
	    "/etc/migd/test.conf:1: unknown section [logging] (known: "
	    "database, migrations, control, log)", "empty unknown section");
	expect_error("[database]\npoolsize = 2\n",
	    "/etc/migd/test.conf:2: unknown key 'poolsize' in [database]: "
	    "did you mean 'pool_size'?", "unknown key, a typo");
	expect_error("[database]\ncolour = blue\n",
	    "/etc/migd/test.conf:2: unknown key 'colour' in [database]",
	    "unknown key, nothing like it");
	expect_error("[database]\ndirectory = /srv/m\n",
	    "/etc/migd/test.conf:2: unknown key 'directory' in [database]: "
	    "it belongs in [migrations]", "a key of another section");
	expect_error("[control]\nlevel = debug\n",
	    "/etc/migd/test.conf:2: unknown key 'level' in [control]: "
	    "it belongs in [log]", "a [log] key in [control]");
	expect_error("[migrations]\nversion_tabel = x\n",
	    "/etc/migd/test.conf:2: unknown key 'version_tabel' in "
	    "[migrations]: did you mean 'version_table'?", "a swapped letter");
	expect_error("[database]\nlock_timout = 5s\n",
	    "/etc/migd/test.conf:2: unknown key 'lock_timout' in [database]: "
	    "did you mean 'lock_timeout' in [migrations]?",
	    "a typo of another section's key");
	expect_error("pool_size = 2\n",
	    "/etc/migd/test.conf:1: 'pool_size' is outside any [section]",
	    "key outside a section");
	expect_error("[database]\npool_size = 2\npool_size = 3\n",
	    "/etc/migd/test.conf:3: 'pool_size' is already set on line 2",
	    "duplicate key");
	expect_error("[database]\nconninfo = host='unterminated\n",
	    "/etc/migd/test.conf:2: invalid conninfo: unterminated quoted "
	    "string in connection info string", "bad conninfo");
	expect_error("[database]\nconninfo = postgresql://u@h/db?bogus=1\n",
	    "/etc/migd/test.conf:2: invalid conninfo: invalid URI query "
	    "parameter: \"...\"", "bad conninfo URI: the name is hidden");
	expect_error("[database]\nconninfo = postgresql://u@h/db?hots=1\n",
	    "/etc/migd/test.conf:2: invalid conninfo: invalid URI query "
	    "parameter: \"...\" (did you mean host?)",
	    "misspelt URI parameter: the keyword it resembles");
	expect_error("[database]\nconninfo = host=h "
	    "dbname='postgresql://u:secret@h/db'\n",
	    "/etc/migd/test.conf:2: invalid conninfo: dbname holds a "
	    "connection string (key=value pairs or a postgresql:// URI), which "
	    "libpq does not expand inside a conninfo: the server would get it, "
	    "password and all, as a database name; write those settings in "
	    "the conninfo itself", "a URI nested in dbname");
	expect_error("[database]\nconninfo = postgresql:///x%3Dy?host=/tmp\n",
	    "/etc/migd/test.conf:2: invalid conninfo: dbname holds a "
	    "connection string (key=value pairs or a postgresql:// URI), which "
	    "libpq does not expand inside a conninfo: the server would get it, "
	    "password and all, as a database name; write those settings in "
	    "the conninfo itself", "a conninfo nested in a URI's dbname");
	expect_error("[migrations]\nschemas = a,,b\n",
	    "/etc/migd/test.conf:2: empty schema name in list",
	    "empty schema");
	expect_error("[migrations]\nschemas = pg_catalog\n",
	    "/etc/migd/test.conf:2: 'pg_catalog' is a system schema",
	    "system schema");
	expect_error("[migrations]\nversion_table = a.b.c\n",
	    "/etc/migd/test.conf:2: version_table must be TABLE or "
	    "SCHEMA.TABLE, not 'a.b.c'", "version table with two dots");
	expect_error("[migrations]\nversion_table = x\"y\n",
	    "/etc/migd/test.conf:2: table name 'x\"y' contains a quote or a "
	    "control character", "version table with a quote");
	expect_error("[migrations]\ndirectory =\n",
	    "/etc/migd/test.conf:2: directory must not be empty",
	    "empty directory");
	expect_error("[database]\nthis is not ini\n",
	    "/etc/migd/test.conf:2: syntax error (expected [section] or "
	    "key = value)", "syntax error");
	expect_error("[control]\nmax_clients = 2\n   5\n",
	    "/etc/migd/test.conf:3: 'max_clients' cannot continue on an "
	    "indented line", "continuation of a number");
	{
		struct errlist	 errs = { NULL, 0 };

		cf = NULL;
		is_int(config_parse("f.conf", "[log]\0x", 8, &cf, &errs), -1,
		    "NUL byte refused");
		is_str(errs.n ? errs.v[0] : NULL, "f.conf:1: not a text file "
		    "(NUL byte)", "NUL byte message");
		errlist_clear(&errs);
	}

	memset(longline, 'x', sizeof longline - 1);
	longline[sizeof longline - 1] = '\0';
	memcpy(longline, "[database]\nconninfo = ", 22);
	cf = parse(longline, &errors);
	ok(cf == NULL && strstr(errors, "test.conf:2: line too long") != NULL,
	    "overlong line refused with its line: %s", errors);
	config_free(cf);
	free(errors);

	/* Several errors are all reported. */
	cf = parse("[database]\npool_size = 0\n[log]\nlevel = x\n", &errors);
	ok(cf == NULL && strstr(errors, ":2:") && strstr(errors, ":4:"),
	    "every error reported: %s", errors);
	config_free(cf);
	free(errors);

	test_conninfo_mask();
	test_conninfo_errors();
	test_conninfo_scrub();
	test_schemas();

	return (done_testing());
}
