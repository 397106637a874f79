/*
 * Unit tests for lint: every rule with SQL that trips it and SQL that does
 * not, the run's context (new tables, NOT VALID then VALIDATE), ignore
 * annotations, positions and the JSON form of a finding.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lint.h"
#include "sqlscan.h"
#include "tap.h"

static char	*managed[] = { "app" };

/* Lints sections in run order (NULL ends them) with the context of one run;
 * returns the rules found, "rule@LINE:COL" comma-separated, ignored ones
 * marked "!", in static storage. */
static const char *
lint_run(const char *const *sections, int bare, const char *file_ignore)
{
	static char		 buf[4096];
	struct lint_ctx		 ctx = { NULL, 0, 0, managed, 1 };
	struct lint_report	 rep = { NULL, 0 };
	struct sqlscan		 sc;
	struct errlist		 errs = { NULL, 0 };
	size_t			 i, len = 0;

	buf[0] = '\0';
	for (; *sections != NULL; sections++) {
		if (sqlscan_analyze(*sections, "m.sql", 1, &sc, &errs) != 0) {
			snprintf(buf, sizeof buf, "parse error: %s",
			    errs.n ? errs.v[0] : "?");
			errlist_clear(&errs);
			sqlscan_clear(&sc);
			goto out;
		}
		lint_section(&ctx, &sc.lint, "m.sql", file_ignore, 1, bare,
		    &rep);
		sqlscan_clear(&sc);
	}
	for (i = 0; i < rep.n; i++) {
		len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s%s@%d:%d",
		    i ? "," : "", rep.v[i].ignored ? "!" : "",
		    lint_rules[rep.v[i].rule].name, rep.v[i].line,
		    rep.v[i].col);
		if (len >= sizeof buf)
			break;
	}
out:
	lint_report_clear(&rep);
	lint_ctx_clear(&ctx);
	return (buf);
}

static const char *
lint1(const char *sql)
{
	const char	*s[] = { sql, NULL };

	return (lint_run(s, 0, NULL));
}

/* Whether the comma-separated list names rule (ignored or not). */
static int
has_rule(const char *list, const char *rule)
{
	const char	*p = list;
	size_t		 n = strlen(rule);

	while ((p = strstr(p, rule)) != NULL) {
		if ((p == list || p[-1] == ',' || p[-1] == '!') && p[n] == '@')
			return (1);
		p += n;
	}
	return (0);
}

/* Each rule: SQL that must trip it, SQL that must not, whether bare. */
static const struct {
	const char	*rule;
	const char	*bad;
	const char	*good;
	int		 bare;
} cases[] = {
	{ "require-concurrent-index-creation",
	    "CREATE INDEX i ON t (a);",
	    "CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a);", 0 },
	/* A partitioned table's index, as PostgreSQL documents it: ON ONLY
	 * the parent builds nothing; CONCURRENTLY on each partition. */
	{ "require-concurrent-index-creation",
	    "CREATE INDEX IF NOT EXISTS m_at ON public.m USING btree (at);",
	    "CREATE INDEX IF NOT EXISTS m_at ON ONLY public.m USING btree (at);",
	    0 },
	{ "adding-foreign-key-constraint",
	    "ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (a) REFERENCES u (id);",
	    "ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (a) REFERENCES u (id) "
	    "NOT VALID;", 0 },
	{ "adding-foreign-key-constraint",
	    "ALTER TABLE t ADD COLUMN u_id bigint REFERENCES u (id);",
	    "ALTER TABLE t ADD COLUMN u_id bigint;", 0 },
	{ "adding-not-nullable-field",
	    "ALTER TABLE t ALTER COLUMN a SET NOT NULL;",
	    "ALTER TABLE t ADD CONSTRAINT a_nn CHECK (a IS NOT NULL) "
	    "NOT VALID;", 0 },
	{ "adding-required-field",
	    "ALTER TABLE t ADD COLUMN b bigint NOT NULL;",
	    "ALTER TABLE t ADD COLUMN b bigint NOT NULL DEFAULT 0;", 0 },
	{ "adding-field-with-default",
	    "ALTER TABLE t ADD COLUMN b uuid DEFAULT gen_random_uuid();",
	    "ALTER TABLE t ADD COLUMN b timestamptz DEFAULT now();", 0 },
	{ "adding-field-with-default",
	    "ALTER TABLE t ADD COLUMN b bigserial;",
	    "ALTER TABLE t ADD COLUMN b bigint DEFAULT 42::bigint;", 0 },
	/* Defaults stored once, as teams write them: no rewrite. */
	{ "adding-field-with-default",
	    "ALTER TABLE t ADD COLUMN b text[] DEFAULT ARRAY[random()::text];",
	    "ALTER TABLE t ADD COLUMN b text[] NOT NULL DEFAULT "
	    "ARRAY[]::text[];", 0 },
	{ "adding-field-with-default",
	    "ALTER TABLE t ADD COLUMN b timestamptz DEFAULT clock_timestamp() "
	    "+ interval '1 day';",
	    "ALTER TABLE t ADD COLUMN b timestamptz DEFAULT now() + "
	    "interval '30 days';", 0 },
	{ "adding-field-with-default",
	    "ALTER TABLE t ADD COLUMN b timestamp DEFAULT timezone('utc', "
	    "clock_timestamp());",
	    "ALTER TABLE t ADD COLUMN b timestamptz DEFAULT (now() AT TIME "
	    "ZONE 'utc');", 0 },
	{ "adding-field-with-default",
	    "ALTER TABLE t ADD COLUMN b text DEFAULT now('x');",
	    "ALTER TABLE t ADD COLUMN b text DEFAULT "
	    "current_setting('app.tenant');", 0 },
	{ "changing-column-type",
	    "ALTER TABLE t ALTER COLUMN a TYPE bigint;",
	    "ALTER TABLE t ALTER COLUMN a SET DEFAULT 0;", 0 },
	{ "disallowed-unique-constraint",
	    "ALTER TABLE t ADD CONSTRAINT u UNIQUE (a);",
	    "ALTER TABLE t ADD CONSTRAINT u UNIQUE USING INDEX u_idx;", 0 },
	{ "adding-serial-primary-key-field",
	    "ALTER TABLE t ADD PRIMARY KEY (id);",
	    "ALTER TABLE t ADD CONSTRAINT pk PRIMARY KEY USING INDEX pk_idx;",
	    0 },
	{ "constraint-missing-not-valid",
	    "ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0);",
	    "ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0) NOT VALID;", 0 },
	{ "constraint-missing-not-valid",
	    "ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0) NOT VALID;\n"
	    "ALTER TABLE t VALIDATE CONSTRAINT c;",
	    "ALTER TABLE t VALIDATE CONSTRAINT c;", 0 },
	{ "renaming-column",
	    "ALTER TABLE t RENAME COLUMN a TO b;",
	    "ALTER TABLE t ADD COLUMN b text;", 0 },
	{ "renaming-table",
	    "ALTER TABLE t RENAME TO u;",
	    "ALTER INDEX i RENAME TO j;", 0 },
	{ "ban-drop-column",
	    "ALTER TABLE t DROP COLUMN a;",
	    "ALTER TABLE t ALTER COLUMN a DROP DEFAULT;", 0 },
	{ "ban-drop-table",
	    "DROP TABLE t;",
	    "DROP VIEW v;", 0 },
	{ "ban-drop-database",
	    "DROP DATABASE d;",
	    "DROP ROLE r;", 0 },
	{ "ban-drop-not-null",
	    "ALTER TABLE t ALTER COLUMN a DROP NOT NULL;",
	    "ALTER TABLE t ALTER COLUMN a DROP DEFAULT;", 0 },
	{ "require-concurrent-index-deletion",
	    "DROP INDEX i;",
	    "DROP INDEX CONCURRENTLY IF EXISTS i;", 0 },
	{ "ban-truncate-cascade",
	    "TRUNCATE t CASCADE;",
	    "TRUNCATE t;", 0 },
	{ "ban-concurrent-index-creation-in-transaction",
	    "BEGIN;\nCREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a);\n"
	    "COMMIT;",
	    "BEGIN;\nCOMMIT;\nCREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t "
	    "(a);", 0 },
	{ "prefer-robust-stmts",
	    "CREATE INDEX CONCURRENTLY i ON t (a);",
	    "CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a);", 1 },
	{ "prefer-robust-stmts",
	    "ALTER TABLE t ADD COLUMN b text;",
	    "ALTER TABLE t ADD COLUMN IF NOT EXISTS b text;", 1 },
	{ "prefer-robust-stmts",
	    "DROP INDEX CONCURRENTLY i;",
	    "DROP INDEX CONCURRENTLY IF EXISTS i;", 1 },
	{ "ban-create-domain-with-constraint",
	    "CREATE DOMAIN pos AS bigint CHECK (VALUE > 0);",
	    "CREATE DOMAIN pos AS bigint;", 0 },
	{ "ban-alter-domain-with-add-constraint",
	    "ALTER DOMAIN pos ADD CONSTRAINT p CHECK (VALUE > 0);",
	    "ALTER DOMAIN pos ADD CONSTRAINT p CHECK (VALUE > 0) NOT VALID;",
	    0 },
	{ "prefer-bigint-over-int",
	    "CREATE TABLE n (a int);",
	    "CREATE TABLE n (a bigint);", 0 },
	{ "prefer-bigint-over-smallint",
	    "CREATE TABLE n (a smallint);",
	    "CREATE TABLE n (a bigint);", 0 },
	{ "prefer-identity",
	    "CREATE TABLE n (id bigserial);",
	    "CREATE TABLE n (id bigint GENERATED ALWAYS AS IDENTITY);", 0 },
	{ "prefer-text-field",
	    "CREATE TABLE n (a varchar(20));",
	    "CREATE TABLE n (a text, b varchar);", 0 },
	{ "prefer-timestamp-tz",
	    "CREATE TABLE n (a timestamp);",
	    "CREATE TABLE n (a timestamptz);", 0 },
	{ "ban-char-field",
	    "CREATE TABLE n (a char(2));",
	    "CREATE TABLE n (a text, b \"char\");", 0 },
	{ "drop-managed-schema",
	    "DROP SCHEMA app CASCADE;",
	    "DROP SCHEMA scratch;", 0 },
	{ "vacuum-full-existing-table",
	    "VACUUM FULL t;",
	    "VACUUM (FULL false) t;", 0 },
	{ "vacuum-full-existing-table",
	    "VACUUM (FULL, ANALYZE) t;",
	    "VACUUM ANALYZE t;", 0 },
	{ "cluster-existing-table",
	    "CLUSTER t USING i;",
	    "CREATE TABLE c (a bigint);\nCLUSTER c USING i;", 0 },
	{ "attach-partition-existing-table",
	    "ALTER TABLE events ATTACH PARTITION events_2025 FOR VALUES FROM "
	    "('2025-01-01') TO ('2026-01-01');",
	    "CREATE TABLE events_2026 (LIKE events);\n"
	    "ALTER TABLE events ATTACH PARTITION events_2026 FOR VALUES FROM "
	    "('2026-01-01') TO ('2027-01-01');", 0 },
	/* A validated CHECK on the partition: PostgreSQL skips the scan. */
	{ "attach-partition-existing-table",
	    "ALTER TABLE events ATTACH PARTITION old_events DEFAULT;",
	    "ALTER TABLE events_2025 VALIDATE CONSTRAINT events_2025_bounds;\n"
	    "ALTER TABLE events ATTACH PARTITION events_2025 FOR VALUES FROM "
	    "('2025-01-01') TO ('2026-01-01');", 0 },
	{ "require-concurrent-partition-detach",
	    "ALTER TABLE events DETACH PARTITION events_2019;",
	    "ALTER TABLE events DETACH PARTITION events_2019 CONCURRENTLY;",
	    1 },
	{ "require-concurrent-partition-detach",
	    "ALTER TABLE events DETACH PARTITION events_2019;",
	    "CREATE TABLE events (at date) PARTITION BY RANGE (at);\n"
	    "ALTER TABLE events DETACH PARTITION events_2019;", 0 },
	{ "require-concurrent-reindex",
	    "REINDEX TABLE orders;",
	    "REINDEX TABLE CONCURRENTLY orders;", 1 },
	{ "require-concurrent-reindex",
	    "REINDEX INDEX orders_total;",
	    "REINDEX (CONCURRENTLY true) INDEX orders_total;", 1 },
	{ "require-concurrent-reindex",
	    "REINDEX (CONCURRENTLY false, VERBOSE) SCHEMA app;",
	    "CREATE TABLE n (id bigint);\nREINDEX TABLE n;", 1 },
	{ "require-concurrent-reindex",
	    "REINDEX DATABASE app;",
	    "REINDEX SYSTEM app;", 1 },
	{ "vacuum-full-existing-table",
	    "VACUUM (FULL 1) t;",
	    "VACUUM (FULL off, ANALYZE) t;", 0 },
	{ "rewrite-existing-table",
	    "ALTER TABLE events SET LOGGED;",
	    "CREATE UNLOGGED TABLE events (id bigint);\n"
	    "ALTER TABLE events SET LOGGED;", 0 },
	{ "rewrite-existing-table",
	    "ALTER TABLE events SET TABLESPACE fast;",
	    "ALTER INDEX events_pkey SET TABLESPACE fast;", 0 },
	{ "rewrite-existing-table",
	    "ALTER TABLE events SET UNLOGGED;",
	    "ALTER TABLE events SET (fillfactor = 90);", 0 },
	{ "rewrite-existing-table",
	    "ALTER TABLE events SET ACCESS METHOD heap;",
	    "ALTER TABLE events SET WITHOUT CLUSTER;", 0 },
	{ "constraint-missing-not-valid",
	    "ALTER TABLE booking ADD CONSTRAINT no_overlap EXCLUDE USING gist "
	    "(room WITH =, during WITH &&);",
	    "CREATE TABLE booking (room bigint, during tstzrange);\n"
	    "ALTER TABLE booking ADD CONSTRAINT no_overlap EXCLUDE USING gist "
	    "(room WITH =, during WITH &&);", 0 },
	{ "refresh-existing-materialized-view",
	    "REFRESH MATERIALIZED VIEW report.daily;",
	    "REFRESH MATERIALIZED VIEW CONCURRENTLY report.daily;", 0 },
	{ "refresh-existing-materialized-view",
	    "REFRESH MATERIALIZED VIEW daily WITH NO DATA;",
	    "CREATE MATERIALIZED VIEW daily AS SELECT 1 AS n WITH NO DATA;\n"
	    "REFRESH MATERIALIZED VIEW daily;", 0 },
	{ "enum-value-used-in-transaction",
	    "ALTER TYPE mood ADD VALUE 'meh';\n"
	    "UPDATE t SET m = 'meh' WHERE m = 'ok';",
	    "ALTER TYPE mood ADD VALUE 'meh';\nCOMMIT;\nBEGIN;\n"
	    "UPDATE t SET m = 'meh' WHERE m = 'ok';", 0 },
	/* Statement by statement each commits; the file's BEGIN makes one
	 * transaction again. */
	{ "enum-value-used-in-transaction",
	    "BEGIN;\nALTER TYPE mood ADD VALUE 'meh';\n"
	    "UPDATE t SET m = 'meh' WHERE m = 'ok';\nCOMMIT;",
	    "ALTER TYPE mood ADD VALUE 'meh';\n"
	    "UPDATE t SET m = 'meh' WHERE m = 'ok';", 1 },
	{ "enum-value-used-in-transaction",
	    "BEGIN;\nALTER TYPE mood ADD VALUE 'meh';\n"
	    "SELECT 'meh'::mood;\nCOMMIT;",
	    "ALTER TYPE mood ADD VALUE 'meh';\nBEGIN;\n"
	    "UPDATE t SET m = 'meh' WHERE m = 'ok';\nCOMMIT;", 1 },
	/* NOT VALID then VALIDATE statement by statement (transaction: none,
	 * dbmate's transaction:false): the ADD has committed, its lock is
	 * gone; the file's BEGIN makes one transaction again. */
	{ "constraint-missing-not-valid",
	    "BEGIN;\nALTER TABLE t ADD CONSTRAINT c CHECK (a > 0) NOT VALID;\n"
	    "ALTER TABLE t VALIDATE CONSTRAINT c;\nCOMMIT;",
	    "ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0) NOT VALID;\n"
	    "ALTER TABLE t VALIDATE CONSTRAINT c;", 1 },
	{ "constraint-missing-not-valid",
	    "BEGIN;\nALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (a) REFERENCES "
	    "u (id) NOT VALID;\nALTER TABLE t VALIDATE CONSTRAINT f;\nCOMMIT;",
	    "ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (a) REFERENCES u (id) "
	    "NOT VALID;\nALTER TABLE t VALIDATE CONSTRAINT f;", 1 },
	/* Renamed, and a view keeps the old name in the same transaction, as
	 * the rule's alternative says; after a COMMIT there is a gap. */
	{ "renaming-table",
	    "ALTER TABLE public.users RENAME TO accounts;\nCOMMIT;\nBEGIN;\n"
	    "CREATE VIEW public.users AS SELECT * FROM public.accounts;",
	    "ALTER TABLE public.users RENAME TO accounts;\n"
	    "CREATE OR REPLACE VIEW public.users AS SELECT * FROM "
	    "public.accounts;", 0 },
	{ "renaming-table",
	    "ALTER TABLE users RENAME TO accounts;\n"
	    "CREATE VIEW accounts_v AS SELECT * FROM accounts;",
	    "BEGIN;\nALTER TABLE users RENAME TO accounts;\n"
	    "CREATE VIEW users AS SELECT * FROM accounts;\nCOMMIT;", 0 },
	/* SET NOT NULL after a constraint of the table was validated: the
	 * strong_migrations pattern, no scan on PostgreSQL 12+. */
	{ "adding-not-nullable-field",
	    "ALTER TABLE u VALIDATE CONSTRAINT c;\n"
	    "ALTER TABLE t ALTER COLUMN a SET NOT NULL;",
	    "ALTER TABLE t VALIDATE CONSTRAINT a_nn;\n"
	    "ALTER TABLE t ALTER COLUMN a SET NOT NULL;\n"
	    "ALTER TABLE t DROP CONSTRAINT a_nn;", 0 },
};

static void
test_rules(void)
{
	const char	*got, *s[2] = { NULL, NULL };
	size_t		 i, r;
	int		 *tested;

	tested = xcalloc(lint_n_rules, sizeof *tested);
	for (i = 0; i < nitems(cases); i++) {
		s[0] = cases[i].bad;
		got = lint_run(s, cases[i].bare, NULL);
		ok(has_rule(got, cases[i].rule), "%s trips (case %zu)",
		    cases[i].rule, i);
		if (!has_rule(got, cases[i].rule))
			printf("#   got: %s\n", got);
		s[0] = cases[i].good;
		got = lint_run(s, cases[i].bare, NULL);
		ok(!has_rule(got, cases[i].rule), "%s passes (case %zu)",
		    cases[i].rule, i);
		if (has_rule(got, cases[i].rule))
			printf("#   got: %s\n", got);
		if (lint_rule_find(cases[i].rule) >= 0)
			tested[lint_rule_find(cases[i].rule)] = 1;
	}
	for (r = 0; r < lint_n_rules; r++)
		ok(tested[r], "rule %s has a failing and a passing case",
		    lint_rules[r].name);
	free(tested);
	/* A bare-only rule stays quiet in a transactional migration. */
	ok(!has_rule(lint1("CREATE INDEX CONCURRENTLY i ON t (a);"),
	    "prefer-robust-stmts"), "prefer-robust-stmts only when bare");
}

static void
test_context(void)
{
	const char	*two[] = { "CREATE TABLE s.n (id bigint);",
	    "CREATE INDEX i ON s.n (id);\n"
	    "ALTER TABLE s.n ADD CONSTRAINT f FOREIGN KEY (id) REFERENCES u;\n"
	    "ALTER TABLE s.n ALTER COLUMN id SET NOT NULL;", NULL };
	const char	*nv[] = {
	    "ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (a) REFERENCES u (id) "
	    "NOT VALID;", "ALTER TABLE t VALIDATE CONSTRAINT f;", NULL };
	const char	*nn[] = { "ALTER TABLE t ADD CONSTRAINT a_nn CHECK (a IS "
	    "NOT NULL) NOT VALID;", "ALTER TABLE t VALIDATE CONSTRAINT a_nn;",
	    "ALTER TABLE t ALTER COLUMN a SET NOT NULL;", NULL };
	const char	*other[] = { "CREATE TABLE s.n (id bigint);",
	    "CREATE INDEX i ON s.m (id);", NULL };

	is_str(lint1("CREATE TABLE n (id bigint);\nCREATE INDEX i ON n (id);\n"
	    "ALTER TABLE n ADD CONSTRAINT c CHECK (id > 0);"), "",
	    "a table created earlier in the migration is new");
	is_str(lint_run(two, 0, NULL), "", "a table created earlier in the "
	    "run is new: index, foreign key, NOT NULL");
	is_str(lint_run(other, 0, NULL),
	    "require-concurrent-index-creation@1:1",
	    "another table is not new");
	is_str(lint1("CREATE INDEX i ON n (id);\nCREATE TABLE n (id bigint);"),
	    "require-concurrent-index-creation@1:1",
	    "a table created later is not new yet");
	{
		/* Many tables: the set grows and still finds each. */
		static char	 big[200000];
		size_t		 k, len = 0;

		for (k = 0; k < 500; k++)
			len += (size_t)snprintf(big + len, sizeof big - len,
			    "CREATE TABLE t%zu (id bigint);\n", k);
		for (k = 0; k < 500; k += 7)
			len += (size_t)snprintf(big + len, sizeof big - len,
			    "CREATE INDEX ON t%zu (id);\n", k);
		len += (size_t)snprintf(big + len, sizeof big - len,
		    "CREATE INDEX ON t500 (id);\n");
		is_str(lint1(big), "require-concurrent-index-creation@573:1",
		    "500 new tables, and one that is not");
	}
	is_str(lint_run(nv, 0, NULL), "", "NOT VALID, then VALIDATE in a later "
	    "migration: no finding");
	is_str(lint_run(nn, 0, NULL), "", "CHECK NOT VALID, VALIDATE, then SET "
	    "NOT NULL in later migrations of the run: no finding");
	is_str(lint1("ALTER TABLE t ALTER COLUMN a SET NOT NULL;\n"
	    "ALTER TABLE t VALIDATE CONSTRAINT a_nn;"),
	    "adding-not-nullable-field@1:1", "a VALIDATE after SET NOT NULL "
	    "does not help it");
	is_str(lint1("ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (a) "
	    "REFERENCES u (id) NOT VALID;\nCOMMIT;\nBEGIN;\n"
	    "ALTER TABLE t VALIDATE CONSTRAINT f;"), "",
	    "VALIDATE after the transaction that added it NOT VALID");
	is_str(lint1("ALTER TABLE t ADD CONSTRAINT f CHECK (a > 0) NOT VALID;\n"
	    "ALTER TABLE t VALIDATE CONSTRAINT f;"),
	    "constraint-missing-not-valid@2:1",
	    "VALIDATE in the same transaction");
}

static void	lint_into(const char *, struct lint_report *);

/* A misspelt rule in a statement's ignore comment: the finding still
 * counts, and says the comment names no rule. */
static void
test_ignore_typo(void)
{
	struct lint_report	 rep = { NULL, 0 };

	lint_into("SELECT 1;\n-- migd:lint-ignore require-concurrent-index "
	    "tiny table\nCREATE INDEX i ON t (a);", &rep);
	is_int(rep.n, 1, "one finding");
	ok(rep.n == 1 && rep.v[0].ignored == NULL, "not ignored");
	ok(rep.n == 1 && strstr(rep.v[0].msg, "(the migd:lint-ignore on line 2 "
	    "names no rule 'require-concurrent-index')") != NULL,
	    "says the comment names no rule: %s", rep.n ? rep.v[0].msg : "");
	lint_report_clear(&rep);
	lint_into("-- migd:lint-ignore renaming-column,ban-drop-colum why\n"
	    "ALTER TABLE t DROP COLUMN a;", &rep);
	ok(rep.n == 1 && strstr(rep.v[0].msg, "names no rule "
	    "'ban-drop-colum'") != NULL, "the second of a list: %s",
	    rep.n ? rep.v[0].msg : "");
	lint_report_clear(&rep);
	lint_into("-- migd:lint-ignore renaming-column why\n"
	    "ALTER TABLE t DROP COLUMN a;", &rep);
	ok(rep.n == 1 && strchr(rep.v[0].msg, '(') == NULL,
	    "another known rule: the message as it was: %s",
	    rep.n ? rep.v[0].msg : "");
	lint_report_clear(&rep);
}

static void
test_ignores(void)
{
	const char	*s[] = { NULL, NULL };

	is_str(lint1("-- migd:lint-ignore ban-drop-column,renaming-column "
	    "the column was never read\nALTER TABLE t DROP COLUMN a;"),
	    "!ban-drop-column@2:1", "a statement's ignore comment");
	is_str(lint1("-- migd:lint-ignore renaming-column\n"
	    "ALTER TABLE t DROP COLUMN a;"), "ban-drop-column@2:1",
	    "an ignore comment for another rule");
	is_str(lint1("-- migd:lint-ignore ban-drop-column\n\n"
	    "ALTER TABLE t DROP COLUMN a;"), "ban-drop-column@3:1",
	    "an ignore comment not on the line above");
	is_str(lint1("-- migd:lint-ignore all staging only\n"
	    "DROP TABLE t;"), "!ban-drop-table@2:1", "ignore all");
	s[0] = "DROP TABLE t;\nALTER TABLE u DROP COLUMN a;";
	is_str(lint_run(s, 0, "ban-drop-table legacy"),
	    "!ban-drop-table@1:1,ban-drop-column@2:1",
	    "a file's lint-ignore header");
	is_str(lint_run(s, 0, "renaming-column why\nban-drop-column,"
	    "ban-drop-table legacy"), "!ban-drop-table@1:1,!ban-drop-column@2:1",
	    "a file's lint-ignore lines, the second a list");
	is_str(lint_run(s, 0, "renaming-column ban-drop-table"),
	    "ban-drop-table@1:1,ban-drop-column@2:1",
	    "a word of the reason is not a rule");
	test_ignore_typo();
}

static void
test_positions(void)
{
	struct lint_ctx		 ctx = { NULL, 0, 0, NULL, 0 };
	struct lint_report	 rep = { NULL, 0 };
	struct sqlscan		 sc, copy;
	struct errlist		 errs = { NULL, 0 };
	json_t			*j;
	char			*t, *js;

	is_str(lint1("SELECT 1;\n  SELECT 2; DROP TABLE t;"),
	    "ban-drop-table@2:13", "line and column of the statement");
	is_str(lint1("SELECT 'é'; DROP TABLE t;"), "ban-drop-table@1:13",
	    "columns count characters, not bytes");
	ok(sqlscan_analyze("SELECT 1;\nDROP TABLE t;", "a.sql", 7, &sc,
	    &errs) == 0, "analyze");
	sqlscan_copy(&copy, &sc);
	sqlscan_clear(&sc);
	lint_section(&ctx, &copy.lint, "a.sql", NULL, 0, 0, &rep);
	sqlscan_clear(&copy);
	is_int(rep.n, 1, "a copied scan keeps its events");
	if (rep.n == 1) {
		t = lint_finding_text(&rep.v[0], 0);
		is_str(t, "a.sql:8:1: warning: ban-drop-table: DROP TABLE t",
		    "text form");
		free(t);
		j = lint_finding_json(&rep.v[0]);
		js = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
		ok(js != NULL && strstr(js, "\"lock\":\"ACCESS EXCLUSIVE") &&
		    strstr(js, "\"rule\":\"ban-drop-table\"") &&
		    strstr(js, "\"line\":8") && strstr(js, "\"column\":1") &&
		    strstr(js, "\"ignored\":null") &&
		    strstr(js, "\"severity\":\"warning\""), "JSON form: %s", js);
		free(js);
		json_decref(j);
	}
	is_int(lint_report_count(&rep, LINT_ERROR), 0, "no error");
	is_int(lint_report_count(&rep, LINT_WARNING), 1, "one warning");
	lint_report_clear(&rep);
	lint_ctx_clear(&ctx);
	/* What the parser refuses is not linted, and not a crash. */
	ok(sqlscan_analyze("CREATE INDEX i ON t (a); SELEC 1;", "a.sql", 1,
	    &sc, &errs) == 1 && sc.lint.n == 0, "unparsed: no events");
	sqlscan_clear(&sc);
	errlist_clear(&errs);
}

/* Lints one section into rep, with an empty context. */
static void
lint_into(const char *sql, struct lint_report *rep)
{
	struct lint_ctx		 ctx = { NULL, 0, 0, NULL, 0 };
	struct sqlscan		 sc;
	struct errlist		 errs = { NULL, 0 };

	if (sqlscan_analyze(sql, "s.sql", 1, &sc, &errs) == 0)
		lint_section(&ctx, &sc.lint, "s.sql", NULL, 0, 0, rep);
	sqlscan_clear(&sc);
	errlist_clear(&errs);
	lint_ctx_clear(&ctx);
}

/* A DO block's statements are linted where they stand in the file; the
 * ignore comment above one of them, or above the DO, applies. */
static void
test_do_blocks(void)
{
	const char	*s[] = { NULL, NULL };

	is_str(lint1("SET lock_timeout = '5s';\nDO $$\nBEGIN\n"
	    "  IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'f') "
	    "THEN\n    ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (a) "
	    "REFERENCES u (id);\n  END IF;\nEND\n$$;"),
	    "adding-foreign-key-constraint@5:5",
	    "an ALTER TABLE in a DO block's IF, at its line and column");
	is_str(lint1("DO $$ BEGIN IF true THEN ALTER TABLE t ADD CONSTRAINT f "
	    "FOREIGN KEY (a) REFERENCES u (id) NOT VALID; END IF; END $$;"),
	    "", "NOT VALID in a DO block: no finding");
	is_str(lint1("CREATE TABLE n (a bigint);\nDO $$ BEGIN\n"
	    "  CREATE INDEX i ON n (a);\nEND $$;"), "",
	    "a table created earlier is new inside a DO block too");
	is_str(lint1("DO LANGUAGE plpgsql $b$\nDECLARE r record;\nBEGIN\n"
	    "  FOR r IN SELECT id FROM shops LOOP\n"
	    "    UPDATE orders SET a = 1 WHERE shop = r.id;\n"
	    "    EXECUTE 'CREATE INDEX i ON t (a)';\n  END LOOP;\n"
	    "  -- migd:lint-ignore ban-drop-column unused since v2\n"
	    "  ALTER TABLE orders DROP COLUMN legacy;\n"
	    "  CREATE INDEX j ON orders (b);\nEND $b$;"),
	    "!ban-drop-column@9:3,require-concurrent-index-creation@10:3",
	    "a loop, an ignore comment in the block, EXECUTE not read");
	is_str(lint1("-- migd:lint-ignore all the table is empty everywhere\n"
	    "DO $$\nBEGIN\n  DROP TABLE t;\nEND $$;"), "!ban-drop-table@4:3",
	    "an ignore comment above the DO");
	s[0] = "DO $$\nBEGIN\n  ALTER TYPE mood ADD VALUE 'meh';\n"
	    "  UPDATE t SET m = 'meh';\nEND $$;";
	is_str(lint_run(s, 1, NULL), "enum-value-used-in-transaction@4:3",
	    "a DO block is one transaction, even statement by statement");
	is_str(lint1("DO LANGUAGE plperl $$ 1; $$;"), "", "another language: "
	    "not read");
}

/* A type rule on ALTER COLUMN ... TYPE names the column altered. */
static void
test_coltype_names(void)
{
	struct lint_report	 rep = { NULL, 0 };
	size_t			 i;
	int			 seen = 0;

	lint_into("ALTER TABLE orders ALTER COLUMN code TYPE varchar(64),\n"
	    "    ALTER COLUMN qty TYPE int;", &rep);
	for (i = 0; i < rep.n; i++) {
		if (rep.v[i].severity != LINT_INFO)
			continue;
		seen++;
		ok(strstr(rep.v[i].msg, "?") == NULL, "names the column: %s",
		    rep.v[i].msg);
	}
	is_int(seen, 2, "varchar(n) and int are both reported");
	ok(rep.n > 0 && strstr(rep.v[rep.n - 1].msg, "column qty is int") !=
	    NULL, "the int one names qty: %s", rep.n ? rep.v[rep.n - 1].msg :
	    "");
	lint_report_clear(&rep);
}

/* Live context: the catalog's estimate, severity by size, lock conflicts. */
static void
test_sizes(void)
{
	struct lint_report	 rep = { NULL, 0 };
	json_t			*j;
	char			*js;

	is_int(lint_rows_estimate(-1, 0, 150000), -1,
	    "never analyzed (14+): not known");
	is_int(lint_rows_estimate(-1, 12, 150000), -1,
	    "reltuples -1 with pages: still not known");
	is_int(lint_rows_estimate(0, 0, 130000), -1,
	    "before 14, 0 rows in 0 pages may be never analyzed: not known");
	is_int(lint_rows_estimate(0, 0, 150000), 0, "14+: analyzed, empty");
	is_int(lint_rows_estimate(10, 1, 130000), 10, "before 14, counted");
	is_int(lint_rows_estimate(49999.6, 300, 150000), 50000, "rounded");

	lint_into("CREATE INDEX i ON public.orders (total);\n"
	    "ALTER TABLE public.orders RENAME COLUMN a TO b;\n"
	    "ALTER TABLE public.orders ADD COLUMN c bigint NOT NULL;\n"
	    "DROP INDEX i;", &rep);
	is_int(rep.n, 4, "four findings");
	if (rep.n != 4)
		return;
	is_str(rep.v[0].table, "public.orders", "the table as written");
	is_int(rep.v[0].rows, -1, "offline: no estimate");
	is_str(lint_finding_mode(&rep.v[0]), "ShareLock",
	    "CREATE INDEX takes SHARE");
	is_str(lint_finding_mode(&rep.v[1]), "AccessExclusiveLock",
	    "RENAME COLUMN takes ACCESS EXCLUSIVE");
	ok(rep.v[3].table == NULL && lint_finding_mode(&rep.v[3]) == NULL,
	    "DROP INDEX names no table it knows");

	is_int(lint_finding_sized(&rep.v[0], 10, 10000), 1,
	    "an index on 10 rows drops");
	is_int(rep.v[0].severity, LINT_INFO, "to info");
	ok(strstr(rep.v[0].msg, "table has ~10 rows, under "
	    "lint_small_table_rows = 10000") != NULL, "and says why: %s",
	    rep.v[0].msg);
	is_int(lint_report_count(&rep, LINT_ERROR), 1,
	    "it no longer counts as an error (adding-required-field does)");
	j = lint_finding_json(&rep.v[0]);
	js = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
	ok(js != NULL && strstr(js, "\"rows\":10") &&
	    strstr(js, "\"table\":\"public.orders\"") &&
	    strstr(js, "\"severity\":\"info\""), "JSON carries rows: %s",
	    js);
	free(js);
	json_decref(j);
	is_int(lint_finding_sized(&rep.v[1], 10, 10000), 0,
	    "a rename breaks clients whatever the size: stays");
	is_int(rep.v[1].severity, LINT_WARNING, "a warning");
	is_int(rep.v[1].rows, 10, "with its estimate");
	is_int(lint_finding_sized(&rep.v[2], 0, 10000), 0,
	    "a required column fails on one row: not sized");
	is_int(rep.v[2].severity, LINT_ERROR, "an error");
	lint_report_clear(&rep);

	lint_into("CREATE INDEX i ON t (a);", &rep);
	is_int(lint_finding_sized(&rep.v[0], 10000, 10000), 0,
	    "at the threshold: not under it");
	is_int(lint_finding_sized(&rep.v[0], -1, 10000), 0,
	    "not known: stays");
	is_int(rep.v[0].severity, LINT_ERROR, "an error");
	is_int(lint_finding_sized(&rep.v[0], 5, 0), 0,
	    "lint_small_table_rows = 0: no table is small");
	lint_report_clear(&rep);

	is_str(lint_lock_conflicts("ShareLock"), "RowExclusiveLock,"
	    "ShareUpdateExclusiveLock,ShareRowExclusiveLock,ExclusiveLock,"
	    "AccessExclusiveLock", "SHARE: writers and stronger");
	ok(strstr(lint_lock_conflicts("AccessExclusiveLock"),
	    "AccessShareLock") != NULL, "ACCESS EXCLUSIVE: readers too");
	ok(strstr(lint_lock_conflicts("ShareRowExclusiveLock"), "ShareLock") !=
	    NULL && strstr(lint_lock_conflicts("ShareLock"), ",ShareLock") ==
	    NULL, "SHARE ROW EXCLUSIVE conflicts with SHARE; SHARE not with "
	    "itself");
	{
		/* A table's sessions, read for its strongest lock (an ALTER
		 * TYPE's ACCESS EXCLUSIVE): a plain SELECT is in its way, not
		 * in that of a CREATE INDEX on the same table (SHARE). */
		json_t	*s = json_pack("[{s:i, s:s, s:i, s:b}, {s:i, s:s, "
		    "s:i, s:b}, {s:i, s:s, s:i, s:b}]",
		    "pid", 1, "modes", "AccessShareLock", "xact_age_s", 3,
		    "conflicts", 1,
		    "pid", 2, "modes", "AccessShareLock,RowExclusiveLock",
		    "xact_age_s", 0, "conflicts", 1,
		    "pid", 3, "modes", "AccessShareLock", "xact_age_s", 90,
		    "conflicts", 1);
		json_t	*b = lint_blockers_for("ShareLock", s, 60);
		char	*bs = json_dumps(b, JSON_SORT_KEYS | JSON_COMPACT);

		is_str(bs, "[{\"conflicts\":true,\"modes\":"
		    "\"AccessShareLock,RowExclusiveLock\",\"pid\":2,"
		    "\"xact_age_s\":0},{\"conflicts\":false,\"modes\":"
		    "\"AccessShareLock\",\"pid\":3,\"xact_age_s\":90}]",
		    "SHARE: the writer, and the old transaction as not "
		    "conflicting; not the short reader");
		free(bs);
		json_decref(b);
		b = lint_blockers_for("AccessExclusiveLock", s, 60);
		is_int((long long)json_array_size(b), 3, "ACCESS EXCLUSIVE: all "
		    "three");
		json_decref(b);
		json_decref(s);
	}
	ok(lint_lock_conflicts(NULL) == NULL &&
	    lint_lock_conflicts("NoSuchLock") == NULL,
	    "no mode or an unknown one: nothing");
	is_str(lint_lock_conflicts("RowExclusiveLock"), "ShareLock,"
	    "ShareRowExclusiveLock,ExclusiveLock,AccessExclusiveLock",
	    "ROW EXCLUSIVE meets what PostgreSQL's table says");
	is_str(lint_lock_conflicts("AccessShareLock"), "AccessExclusiveLock",
	    "ACCESS SHARE meets ACCESS EXCLUSIVE only");
}

/* docs/lint.md has a section for every rule, headed with its name and
 * severity ($srcdir as make check sets it, else the current directory). */
static void
test_rules_documented(void)
{
	const char	*dir = getenv("srcdir");
	char		 path[4096], want[256], line[1024];
	FILE		*fp;
	size_t		 r;
	int		 found;

	snprintf(path, sizeof path, "%s/docs/lint.md", dir ? dir : ".");
	if ((fp = fopen(path, "r")) == NULL) {
		ok(0, "%s: %s", path, strerror(errno));
		return;
	}
	for (r = 0; r < lint_n_rules; r++) {
		snprintf(want, sizeof want, "### `%s` (%s)\n",
		    lint_rules[r].name,
		    lint_severity_name(lint_rules[r].severity));
		rewind(fp);
		found = 0;
		while (!found && fgets(line, sizeof line, fp) != NULL)
			found = strcmp(line, want) == 0;
		ok(found, "docs/lint.md documents %s as %s", lint_rules[r].name,
		    lint_severity_name(lint_rules[r].severity));
	}
	fclose(fp);
}

int
main(void)
{
	test_rules();
	test_rules_documented();
	test_context();
	test_ignores();
	test_positions();
	test_coltype_names();
	test_do_blocks();
	test_sizes();
	return (done_testing());
}
