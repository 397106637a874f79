/* Unit tests for layout.c: other tools' files, one layout at a time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layout.h"
#include "migfile.h"
#include "util.h"

#include "tap.h"

/* One file read as f; the errors joined, or "" (the caller frees both). */
static int
one(enum layout_format f, const char *rel, const char *text,
    struct migfile **mf, char **errs)
{
	struct errlist	 el = { NULL, 0 };
	char		*skip = NULL, *path = xprintf("m/%s", rel);
	int		 r;

	r = layout_file(f, path, rel, text, strlen(text), mf, &skip, &el);
	if (r == 1)
		errlist_add(&el, "skip: %s", skip);
	*errs = errlist_join(&el, "\n");
	errlist_clear(&el);
	free(skip);
	free(path);
	return (r);
}

/* Files (rel, text pairs, NULL-ended) read and assembled as f. */
static int
dir(enum layout_format f, const char *const *files, struct migset *set,
    char **errs)
{
	struct errlist	 el = { NULL, 0 };
	struct migfile	*mf;
	char		*skip, *path;
	size_t		 i;
	int		 r;

	memset(set, 0, sizeof *set);
	for (i = 0; files[i] != NULL; i += 2) {
		path = xprintf("m/%s", files[i]);
		r = layout_file(f, path, files[i], files[i + 1],
		    strlen(files[i + 1]), &mf, &skip, &el);
		free(path);
		free(skip);
		if (r == 0) {
			set->files = xreallocarray(set->files, set->n + 1,
			    sizeof *set->files);
			set->files[set->n++] = mf;
		} else if (mf != NULL) {
			set->broken = xreallocarray(set->broken,
			    set->n_broken + 1, sizeof *set->broken);
			set->broken[set->n_broken++] = mf;
		}
	}
	r = layout_assemble(f, "m", set, &el);
	*errs = errlist_join(&el, "\n");
	errlist_clear(&el);
	return (r);
}

/* The chain as "parent>id" pairs in the files' path order. */
static char *
chain(const struct migset *set)
{
	char	*s = xstrdup(""), *t;
	size_t	 i;

	for (i = 0; i < set->n; i++) {
		t = xprintf("%s%s%s>%s", s, i ? " " : "",
		    set->files[i]->n_parents ? set->files[i]->parents[0] : "-",
		    set->files[i]->revision);
		free(s);
		s = t;
	}
	return (s);
}

static void
names(void)
{
	enum layout_format	 f;

	ok(layout_parse_name("dbmate", &f) == 0 && f == LAYOUT_DBMATE,
	    "format name: dbmate");
	ok(layout_parse_name("golang-migrate", &f) == 0 &&
	    f == LAYOUT_GOLANG_MIGRATE, "format name: golang-migrate");
	ok(layout_parse_name("Flyway", &f) == 0 && f == LAYOUT_FLYWAY,
	    "format name: case does not matter");
	ok(layout_parse_name("liquibase", &f) == -1, "unknown format refused");
	is_str(layout_name(LAYOUT_SQLX), "sqlx", "format printed");
}

static void
golang_migrate(void)
{
	static const char *const files[] = {
		"10_ten.up.sql", "SELECT 10;\n",
		"10_ten.down.sql", "SELECT -10;\n",
		"2_two.up.sql", "SELECT 2;\r\n",
		"2_two.down.sql", "SELECT -2;\n",
		"0001_one.up.sql", "SELECT 1;\n",
		NULL
	};
	struct migset	 set;
	char		*errs, *c;
	int		 r;

	r = dir(LAYOUT_GOLANG_MIGRATE, files, &set, &errs);
	is_int(r, LAYOUT_GOLANG_MIGRATE, "golang-migrate: loads");
	is_str(errs, "", "golang-migrate: no problems");
	c = chain(&set);
	/* Numeric order (2 before 10); 0001 is version 1, as in its table. */
	/* In path order: 0001_one, 10_ten, 2_two. */
	is_str(c, "->1 2>10 1>2", "golang-migrate: numeric order, ids are "
	    "the numbers");
	is_int(set.n, 3, "golang-migrate: up and down joined");
	is_str(set.files[0]->up, "SELECT 1;\n", "golang-migrate: up text");
	ok(set.files[0]->down == NULL, "golang-migrate: a missing down file "
	    "is no down");
	is_str(set.files[1]->up, "SELECT 10;\n", "golang-migrate: 10's up");
	is_str(set.files[1]->down, "SELECT -10;\n", "golang-migrate: 10's "
	    "down from its own file");
	is_str(set.files[1]->down_path, "m/10_ten.down.sql",
	    "golang-migrate: the down file is kept, for watching");
	is_str(set.files[2]->up, "SELECT 2;\n", "golang-migrate: CRLF as LF");
	is_str(set.files[2]->message, "two", "golang-migrate: the name is "
	    "the message");
	free(c);
	free(errs);
	migset_clear(&set);
}

static void
golang_migrate_bad(void)
{
	static const char *const dup[] = {
		"1_a.up.sql", "SELECT 1;\n",
		"001_b.up.sql", "SELECT 1;\n",
		NULL
	};
	static const char *const orphan[] = {
		"1_a.up.sql", "SELECT 1;\n",
		"2_b.down.sql", "SELECT 1;\n",
		NULL
	};
	struct migset	 set;
	struct migfile	*mf;
	char		*errs;

	is_int(dir(LAYOUT_GOLANG_MIGRATE, dup, &set, &errs), -1,
	    "golang-migrate: a version twice refused");
	is_str(errs, "m/1_a.up.sql: version 1 is also m/001_b.up.sql "
	    "(golang-migrate, like migd, needs each version once)",
	    "golang-migrate: says which files share it");
	free(errs);
	migset_clear(&set);
	is_int(dir(LAYOUT_GOLANG_MIGRATE, orphan, &set, &errs), -1,
	    "golang-migrate: a down file alone refused");
	is_str(errs, "m/2_b.down.sql: a down file without its up file "
	    "(version 2)", "golang-migrate: says which");
	free(errs);
	migset_clear(&set);

	is_int(one(LAYOUT_GOLANG_MIGRATE, "99999999999999999999_x.up.sql",
	    "", &mf, &errs), -1, "golang-migrate: beyond uint64 refused");
	is_str(errs, "m/99999999999999999999_x.up.sql: version "
	    "99999999999999999999 is too large for golang-migrate (a uint64)",
	    "golang-migrate: says why");
	free(errs);
	is_int(one(LAYOUT_GOLANG_MIGRATE, "README.sql", "", &mf, &errs), 1,
	    "golang-migrate: other names skipped");
	is_str(errs, "skip: not a golang-migrate migration name "
	    "(VERSION_name.up.sql and VERSION_name.down.sql)",
	    "golang-migrate: says what names it reads");
	free(errs);
	is_int(one(LAYOUT_GOLANG_MIGRATE, "sub/1_x.up.sql", "", &mf, &errs),
	    1, "golang-migrate: subdirectories skipped");
	free(errs);
}

static void
sqlx(void)
{
	static const char *const files[] = {
		"20240101000000_a.up.sql", "-- no-transaction\nCREATE INDEX "
		    "CONCURRENTLY i ON t (x);\n",
		"20240101000000_a.down.sql", "DROP INDEX i;\n",
		"20240102000000_b.sql", "SELECT 2;\n",
		NULL
	};
	struct migset	 set;
	struct migfile	*mf;
	char		*errs, *c;

	is_int(dir(LAYOUT_SQLX, files, &set, &errs), LAYOUT_SQLX,
	    "sqlx: reversible and simple files load");
	c = chain(&set);
	is_str(c, "->20240101000000 20240101000000>20240102000000",
	    "sqlx: chained by version");
	ok(set.files[0]->tx == MIGFILE_TX_NONE, "sqlx: -- no-transaction "
	    "runs outside a transaction");
	ok(set.files[1]->tx == MIGFILE_TX_AUTO && set.files[1]->down == NULL,
	    "sqlx: a simple file: no down, transaction decided by migd");
	free(c);
	free(errs);
	migset_clear(&set);

	/* Auto: the two kinds of file together say sqlx. */
	is_int(dir(LAYOUT_AUTO, files, &set, &errs), LAYOUT_SQLX,
	    "auto: pairs plus simple files are sqlx");
	is_str(errs, "", "auto: sqlx without problems");
	free(errs);
	migset_clear(&set);

	/* Another tool's down section in a file that is run whole. */
	is_int(one(LAYOUT_SQLX, "1_people.sql", "-- +migrate Up\nCREATE TABLE "
	    "people (id int);\n\n-- +migrate Down\r\nDROP TABLE people;\n",
	    &mf, &errs), -1, "sqlx: sql-migrate's file refused");
	is_str(errs, "m/1_people.sql:4: '-- +migrate Down' begins a down "
	    "section (sql-migrate's annotation), but a sqlx file is one "
	    "migration, run whole: the SQL after this line would run with the "
	    "up; move it out, or read the files with the format they were "
	    "written for", "sqlx: the line, whose marker, why");
	migfile_free(mf);
	free(errs);
	is_int(one(LAYOUT_GOLANG_MIGRATE, "2_x.up.sql", "CREATE TABLE x ();\n"
	    "-- +goose Down\nDROP TABLE x;\n", &mf, &errs), -1,
	    "golang-migrate: goose's Down refused");
	ok(errs != NULL && strstr(errs, "m/2_x.up.sql:2: '-- +goose Down' "
	    "begins a down section (goose's annotation), but a golang-migrate "
	    "file") != NULL, "golang-migrate: %s", errs ? errs : "(none)");
	migfile_free(mf);
	free(errs);
	is_int(one(LAYOUT_FLYWAY, "V3__x.sql", "CREATE TABLE x ();\n--migrate:"
	    "down\nDROP TABLE x;\n", &mf, &errs), -1, "flyway: dbmate's "
	    "down marker refused");
	ok(errs != NULL && strstr(errs, "m/V3__x.sql:2: '--migrate:down' "
	    "begins a down section (dbmate's and migd's marker)") != NULL,
	    "flyway: %s", errs ? errs : "(none)");
	migfile_free(mf);
	free(errs);
	is_int(one(LAYOUT_SQLX, "3_ok.sql", "-- +migrate Downgrade notes: none"
	    "\n-- migrate:downtime none\nSELECT 1;\n", &mf, &errs), 0,
	    "sqlx: comments that only look alike load");
	migfile_free(mf);
	free(errs);
}

static void
diesel(void)
{
	static const char *const files[] = {
		"2024-01-15-093012_create_users/up.sql", "CREATE TABLE u ();\n",
		"2024-01-15-093012_create_users/down.sql", "DROP TABLE u;\n",
		"00000000000000_diesel_initial_setup/up.sql", "SELECT 0;\n",
		"00000000000000_diesel_initial_setup/down.sql", "SELECT 0;\n",
		NULL
	};
	struct migset	 set;
	struct migfile	*mf;
	char		*errs, *c;

	is_int(dir(LAYOUT_AUTO, files, &set, &errs), LAYOUT_DIESEL,
	    "diesel: detected");
	c = chain(&set);
	is_str(c, "->00000000000000 00000000000000>20240115093012",
	    "diesel: the version is the name without dashes");
	is_str(set.files[1]->message, "create_users", "diesel: message");
	is_str(set.files[1]->down, "DROP TABLE u;\n", "diesel: down.sql");
	free(c);
	free(errs);
	migset_clear(&set);
	is_int(one(LAYOUT_DIESEL, "x.sql", "", &mf, &errs), 1,
	    "diesel: a file at the top is skipped");
	is_str(errs, "skip: diesel reads only VERSION_name/up.sql and "
	    "VERSION_name/down.sql", "diesel: says what it reads");
	free(errs);
	is_int(one(LAYOUT_DIESEL, "2024-01-15-093012_x/notes.sql", "", &mf,
	    &errs), 1, "diesel: other files in a migration skipped");
	free(errs);
}

static void
dbmate(void)
{
	struct migfile	*mf;
	char		*errs;

	is_int(one(LAYOUT_DBMATE, "20240101120000_users.sql",
	    "-- a comment\n--migrate:up transaction:false\nCREATE INDEX "
	    "CONCURRENTLY i ON t (x);\n\n-- migrate:down\nDROP INDEX i;\n",
	    &mf, &errs), 0, "dbmate: loads");
	is_str(mf->revision, "20240101120000", "dbmate: the version as "
	    "written");
	is_str(mf->up, "CREATE INDEX CONCURRENTLY i ON t (x);\n\n",
	    "dbmate: up block");
	is_int(mf->up_line, 3, "dbmate: up line");
	is_str(mf->down, "DROP INDEX i;\n", "dbmate: down block");
	is_int(mf->down_line, 6, "dbmate: down line");
	ok(mf->tx == MIGFILE_TX_NONE, "dbmate: transaction:false");
	migfile_free(mf);
	free(errs);

	is_int(one(LAYOUT_DBMATE, "1_x.sql", "CREATE TABLE t ();\n", &mf,
	    &errs), -1, "dbmate: no up block refused");
	is_str(errs, "m/1_x.sql:1: no '-- migrate:up' line (dbmate requires "
	    "each migration to define an up block)", "dbmate: says so");
	migfile_free(mf);
	free(errs);
	is_int(one(LAYOUT_DBMATE, "1_x.sql", "SELECT 0;\n-- migrate:up\n"
	    "SELECT 1;\n", &mf, &errs), -1, "dbmate: SQL before up refused");
	is_str(errs, "m/1_x.sql:1: SQL before '-- migrate:up' (dbmate refuses "
	    "statements outside the up and down blocks)", "dbmate: says where");
	migfile_free(mf);
	free(errs);
	is_int(one(LAYOUT_DBMATE, "1_x.sql", "-- migrate:down\n-- migrate:up\n",
	    &mf, &errs), -1, "dbmate: down before up refused");
	migfile_free(mf);
	free(errs);

	is_int(one(LAYOUT_AUTO, "20240101120000_users.sql",
	    "-- migrate:up\nSELECT 1;\n", &mf, &errs), 0, "auto: a dbmate file");
	ok(mf->layout == LAYOUT_DBMATE, "auto: read as dbmate");
	migfile_free(mf);
	free(errs);
	is_int(one(LAYOUT_AUTO, "0001_users.sql", "-- down_revision: none\n"
	    "-- migrate:up\nSELECT 1;\n", &mf, &errs), 0, "auto: migd's own");
	ok(mf->layout == LAYOUT_MIGD, "auto: a header means migd");
	migfile_free(mf);
	free(errs);
}

static void
goose(void)
{
	struct migfile	*mf;
	char		*errs;

	is_int(one(LAYOUT_AUTO, "00002_fn.sql", "-- +goose NO TRANSACTION\n"
	    "-- +goose Up\n-- +goose StatementBegin\nCREATE FUNCTION f() "
	    "RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\n-- +goose "
	    "StatementEnd\n-- +goose Down\nDROP FUNCTION f();\n", &mf, &errs),
	    0, "goose: detected and loaded");
	ok(mf->layout == LAYOUT_GOOSE, "goose: auto saw it");
	is_str(mf->revision, "2", "goose: the version as a number");
	is_str(mf->up, "-- +goose StatementBegin\nCREATE FUNCTION f() RETURNS "
	    "int AS $$ SELECT 1; $$ LANGUAGE sql;\n;-- +goose StatementEnd\n",
	    "goose: up, its annotations left as comments, StatementEnd ending "
	    "a statement");
	is_int(mf->up_line, 3, "goose: up line");
	is_str(mf->down, "DROP FUNCTION f();\n", "goose: down");
	ok(mf->tx == MIGFILE_TX_NONE, "goose: NO TRANSACTION");
	migfile_free(mf);
	free(errs);

	/* StatementEnd ends the statement, as in goose: ';' or not. */
	is_int(one(LAYOUT_GOOSE, "00003_fns.sql", "-- +goose Up\n-- +goose "
	    "StatementBegin\nCREATE FUNCTION f() RETURNS int AS $$\nBEGIN "
	    "RETURN 1; END;\n$$ LANGUAGE plpgsql\n-- +goose StatementEnd\r\n"
	    "-- +goose StatementBegin\nCREATE FUNCTION g() RETURNS int AS $$ "
	    "SELECT 2 $$ LANGUAGE sql\n-- +goose statementend\n-- +goose Down\n"
	    "-- +goose StatementBegin\nDROP FUNCTION g()\n-- +goose StatementEnd"
	    "\nDROP FUNCTION f();", &mf, &errs), 0, "goose: no ';' before "
	    "StatementEnd: loaded");
	is_str(mf->up, "-- +goose StatementBegin\nCREATE FUNCTION f() RETURNS "
	    "int AS $$\nBEGIN RETURN 1; END;\n$$ LANGUAGE plpgsql\n;-- +goose "
	    "StatementEnd\n-- +goose StatementBegin\nCREATE FUNCTION g() "
	    "RETURNS int AS $$ SELECT 2 $$ LANGUAGE sql\n;-- +goose statementend"
	    "\n", "goose: a ';' before each StatementEnd, the lines kept");
	is_str(mf->down, "-- +goose StatementBegin\nDROP FUNCTION g()\n;-- "
	    "+goose StatementEnd\nDROP FUNCTION f();", "goose: in the down "
	    "section too, to its end without a newline");
	/* sha256 of the up section as the file has it, without the ';'s */
	is_str(mf->checksum, "f7d1ec1a546a3980283adcc366f7b1be40576cd4efc9be"
	    "581488ece578c60c73", "goose: the checksum is of the file's text");
	migfile_free(mf);
	free(errs);

	is_int(one(LAYOUT_GOOSE, "1_x.sql", "-- +goose Down\nSELECT 1;\n",
	    &mf, &errs), -1, "goose: no Up refused");
	is_str(errs, "m/1_x.sql:1: '-- +goose down' out of place (goose takes "
	    "one Up, then at most one Down)\nm/1_x.sql:1: no '-- +goose Up' "
	    "annotation (goose requires one before the migration's SQL)",
	    "goose: says so");
	migfile_free(mf);
	free(errs);
	is_int(one(LAYOUT_GOOSE, "1_x.sql", "-- +goose Up\n-- +goose ENVSUB "
	    "ON\nSELECT '${X}';\n", &mf, &errs), -1, "goose: ENVSUB refused");
	migfile_free(mf);
	free(errs);
	is_int(one(LAYOUT_GOOSE, "0_x.sql", "-- +goose Up\n", &mf, &errs), -1,
	    "goose: version 0 refused");
	free(errs);
}

/* goose's Go migrations hold their place in the chain, unrunnable. */
static void
goose_go(void)
{
	static const char *const files[] = {
		"00001_users.sql", "-- +goose Up\nCREATE TABLE u (id int);\n",
		"00002_backfill_names.go", "package migrations\n\nimport "
		    "\"github.com/pressly/goose/v3\"\n\nfunc init() {\n\t"
		    "goose.AddMigrationContext(upBackfill, downBackfill)\n}\n",
		"00003_index.sql", "-- +goose Up\nCREATE INDEX ON u (id);\n",
		NULL
	};
	struct migset	 set;
	struct migfile	*mf;
	char		*errs, *c;
	size_t		 i;
	int		 f;

	ok(layout_goose_go("00002_backfill_names.go"), "goose go: a Go "
	    "migration's name");
	ok(!layout_goose_go("00002_backfill_names_test.go") &&
	    !layout_goose_go("embed.go") && !layout_goose_go("00002.go") &&
	    !layout_goose_go("00002_x.sql"), "goose go: tests, other Go "
	    "files and SQL are not");
	for (f = LAYOUT_GOOSE; f >= LAYOUT_AUTO; f = f == LAYOUT_GOOSE ?
	    LAYOUT_AUTO : -1) {
		is_int(dir((enum layout_format)f, files, &set, &errs),
		    LAYOUT_GOOSE, "goose go: the directory is goose's");
		is_str(errs, "", "goose go: no problem at load");
		c = chain(&set);
		is_str(c, "->1 1>2 2>3", "goose go: the Go migration keeps its "
		    "place in the chain");
		free(c);
		mf = set.files[1];
		is_str(mf->path, "m/00002_backfill_names.go", "goose go: its file");
		ok(mf->unfinished != NULL && strstr(mf->unfinished, "a goose "
		    "Go migration") != NULL, "goose go: unfinished, saying why");
		ok(strstr(layout_unfinished_fix(mf), "remove the .go file") !=
		    NULL, "goose go: the fix in goose's terms");
		is_str(mf->up, "", "goose go: no SQL to run");
		ok(set.files[0]->unfinished == NULL, "goose go: SQL files are "
		    "not");
		free(errs);
		for (i = 0; i < set.n; i++)
			migfile_free(set.files[i]);
		free(set.files);
		free(set.broken);
	}
	is_int(one(LAYOUT_GOOSE, "0_x.go", "package m\n", &mf, &errs), -1,
	    "goose go: version 0 refused");
	free(errs);
}

static void
flyway(void)
{
	static const char *const files[] = {
		"V10__ten.sql", "SELECT 10;\n",
		"V2__two.sql", "SELECT 2;\n",
		"U2__two.sql", "SELECT -2;\n",
		"V1_1__one_one.sql", "SELECT 11;\n",
		"V1__one.sql", "SELECT 1;\n",
		"sub/V3__three.sql", "SELECT 3;\n",
		NULL
	};
	static const char *const same[] = {
		"V1__a.sql", "SELECT 1;\n",
		"V1.0__b.sql", "SELECT 1;\n",
		NULL
	};
	struct migset	 set;
	struct migfile	*mf;
	char		*errs, *c;

	is_int(dir(LAYOUT_AUTO, files, &set, &errs), LAYOUT_FLYWAY,
	    "flyway: detected");
	c = chain(&set);
	/* In path order: V10, V1_1, V1, V2, sub/V3. */
	is_str(c, "3>10 1>1.1 ->1 1.1>2 2>3", "flyway: versions compared "
	    "part by part, subdirectories read");
	is_str(set.files[3]->down, "SELECT -2;\n", "flyway: U file as down");
	is_str(set.files[1]->message, "one one", "flyway: description");
	free(c);
	free(errs);
	migset_clear(&set);

	is_int(dir(LAYOUT_FLYWAY, same, &set, &errs), -1,
	    "flyway: 1 and 1.0 are one version");
	free(errs);
	migset_clear(&set);

	is_int(one(LAYOUT_AUTO, "R__views.sql", "SELECT 1;\n", &mf, &errs),
	    -1, "flyway: repeatable refused");
	is_str(errs, "m/R__views.sql: a Flyway repeatable migration (R__): "
	    "migd runs each migration once, in order, and does not rerun "
	    "changed files; make it a versioned V<version>__ file or move it "
	    "out", "flyway: says why and what to do");
	free(errs);
	/* Callbacks: Flyway runs them at every migrate; migd never. */
	is_int(one(LAYOUT_FLYWAY, "afterMigrate.sql", "GRANT SELECT ON ALL "
	    "TABLES IN SCHEMA public TO app_ro;\n", &mf, &errs), -1,
	    "flyway: a callback refused");
	is_str(errs, "m/afterMigrate.sql: a Flyway callback (afterMigrate), "
	    "which Flyway runs at every migrate and migd never runs: put what "
	    "it does in a versioned V<version>__ migration, or run it in the "
	    "deploy step after 'migctl upgrade'; move it out", "flyway: says "
	    "why and what to do");
	free(errs);
	is_int(one(LAYOUT_FLYWAY, "beforeEachMigrate__set_role.sql", "SET "
	    "ROLE owner;\n", &mf, &errs), -1, "flyway: a described callback "
	    "refused");
	ok(strstr(errs, "(beforeEachMigrate)") != NULL, "flyway: named by its "
	    "event");
	free(errs);
	is_int(one(LAYOUT_FLYWAY, "afterwards.sql", "SELECT 1;\n", &mf,
	    &errs), 1, "flyway: a name like one is only skipped");
	free(errs);
	{
		static const char *const cb[] = {
			"V1__one.sql", "SELECT 1;\n",
			"afterMigrate.sql", "SELECT 2;\n",
			NULL
		};

		is_int(dir(LAYOUT_AUTO, cb, &set, &errs), -1, "flyway: auto "
		    "refuses a Flyway directory with a callback");
		is_str(errs, "m/afterMigrate.sql: a Flyway callback "
		    "(afterMigrate), which Flyway runs at every migrate and "
		    "migd never runs: put what it does in a versioned "
		    "V<version>__ migration, or run it in the deploy step "
		    "after 'migctl upgrade'; move it out", "flyway: auto says "
		    "so too");
		free(errs);
		migset_clear(&set);
	}
	is_int(one(LAYOUT_AUTO, "B5__baseline.sql", "SELECT 1;\n", &mf, &errs),
	    -1, "flyway: a baseline migration refused, also under auto");
	is_str(errs, "m/B5__baseline.sql: a Flyway baseline migration "
	    "(B...__): migd does not read them; move it out",
	    "flyway: says so");
	free(errs);
	is_int(one(LAYOUT_FLYWAY, "V1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16__"
	    "x.sql", "", &mf, &errs), -1, "flyway: a version over 32 "
	    "characters refused");
	is_str(errs, "m/V1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16__x.sql: "
	    "flyway version '1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16' cannot be "
	    "a revision id: it is 38 bytes long, the limit is 32 (migd keeps "
	    "versions in alembic_version.version_num, varchar(32)); rename the "
	    "file", "flyway: says the limit");
	free(errs);
}

static void
mixed(void)
{
	static const char *const files[] = {
		"1_a.up.sql", "SELECT 1;\n",
		"20240101_b.sql", "-- migrate:up\nSELECT 1;\n",
		"0003_c.sql", "-- down_revision: none\n-- migrate:up\n",
		NULL
	};
	static const char *const plain[] = {
		"1_a.sql", "SELECT 1;\n",
		NULL
	};
	struct migset	 set;
	char		*errs;

	is_int(dir(LAYOUT_AUTO, files, &set, &errs), -1,
	    "auto: a mixed directory refused");
	is_str(errs, "m: files of 3 migration layouts in one directory: 1 migd "
	    "(m/0003_c.sql), 1 dbmate (m/20240101_b.sql), 1 golang-migrate "
	    "(m/1_a.up.sql); migd reads one layout per directory: move the "
	    "others out, or set format = TOOL under [migrations] to read only "
	    "that tool's files", "auto: counts, examples and what to do");
	free(errs);
	migset_clear(&set);

	is_int(dir(LAYOUT_AUTO, plain, &set, &errs), -1,
	    "auto: plain SQL alone is not guessed");
	is_str(errs, "m: 1 files (such as m/1_a.sql) are plain SQL, with "
	    "neither migd's header nor dbmate's or goose's markers: if they "
	    "are sqlx migrations, set format = sqlx under [migrations]; if they "
	    "are migd's, add the header ('-- down_revision: ...' and '-- "
	    "migrate:up')", "auto: says which format to set");
	free(errs);
	migset_clear(&set);
}

/* layout_create at 2026-12-01 01:48:55 UTC: one file's path and text. */
#define CREATE_NOW	((time_t)1796089735)
static void
created(enum layout_format f, const char *head, const char *rel, int undo,
    const char *up, const char *down, const char *what)
{
	struct layout_create	 lc;
	char			*cause = NULL;

	if (layout_create(f, head, rel, undo, CREATE_NOW, "add_carts", &lc,
	    &cause) != 0) {
		ok(0, "%s: %s", what, cause);
		free(cause);
		return;
	}
	is_str(lc.up, up, "%s: the file", what);
	is_str(lc.down, down, "%s: its down", what);
	layout_create_clear(&lc);
}

/* migctl new in another tool's directory: named as that tool names. */
static void
create(void)
{
	struct layout_create	 lc;
	char			*cause = NULL;

	created(LAYOUT_GOLANG_MIGRATE, NULL, NULL, 0,
	    "000001_add_carts.up.sql", "000001_add_carts.down.sql",
	    "golang-migrate, empty: -seq -digits 6");
	created(LAYOUT_GOLANG_MIGRATE, "6", "000006_events.up.sql", 0,
	    "000007_add_carts.up.sql", "000007_add_carts.down.sql",
	    "golang-migrate: as wide as the newest");
	created(LAYOUT_GOLANG_MIGRATE, "9", "9_x.up.sql", 0,
	    "10_add_carts.up.sql", "10_add_carts.down.sql",
	    "golang-migrate: unpadded, carried");
	created(LAYOUT_GOLANG_MIGRATE, "99", "099_x.up.sql", 0,
	    "100_add_carts.up.sql", "100_add_carts.down.sql",
	    "golang-migrate: grows past its width");
	created(LAYOUT_GOLANG_MIGRATE, "20240105101500",
	    "20240105101500_x.up.sql", 0, "20261201014855_add_carts.up.sql",
	    "20261201014855_add_carts.down.sql", "golang-migrate: timestamps");
	created(LAYOUT_SQLX, NULL, NULL, 0, "20261201014855_add_carts.up.sql",
	    "20261201014855_add_carts.down.sql", "sqlx, empty: a timestamp");
	created(LAYOUT_SQLX, "20991231235959", "20991231235959_x.up.sql", 0,
	    "20991231235960_add_carts.up.sql",
	    "20991231235960_add_carts.down.sql",
	    "sqlx: a newest one from the future is still passed");
	created(LAYOUT_DIESEL, "00000000000000",
	    "00000000000000_diesel_initial_setup/up.sql", 0,
	    "2026-12-01-014855_add_carts/up.sql",
	    "2026-12-01-014855_add_carts/down.sql", "diesel");
	created(LAYOUT_DBMATE, "20240114110000", "20240114110000_x.sql", 0,
	    "20261201014855_add_carts.sql", NULL, "dbmate");
	created(LAYOUT_GOOSE, "4", "00004_x.sql", 0, "00005_add_carts.sql",
	    NULL, "goose: sequential");
	created(LAYOUT_GOOSE, NULL, NULL, 0, "20261201014855_add_carts.sql",
	    NULL, "goose, empty: a timestamp");
	created(LAYOUT_FLYWAY, "2.5", "V2_5__x.sql", 0, "V3__add_carts.sql",
	    NULL, "flyway: the next major version");
	created(LAYOUT_FLYWAY, "11", "V11__x.sql", 1, "V12__add_carts.sql",
	    "U12__add_carts.sql", "flyway: an undo file when they are used");
	created(LAYOUT_FLYWAY, NULL, NULL, 0, "V1__add_carts.sql", NULL,
	    "flyway, empty");

	ok(layout_create(LAYOUT_GOLANG_MIGRATE, "abc", "abc.up.sql", 0,
	    CREATE_NOW, "x", &lc, &cause) == -1 && cause != NULL &&
	    strcmp(cause, "the newest golang-migrate version, 'abc', is not a "
	    "number") == 0, "a version that is no number: %s",
	    cause ? cause : "(none)");
	free(cause);
	ok(layout_create(LAYOUT_MIGD, NULL, NULL, 0, CREATE_NOW, "x", &lc,
	    &cause) == -1, "migd's own files: not here");
	free(cause);
	layout_create(LAYOUT_DBMATE, NULL, NULL, 0, CREATE_NOW, "x", &lc,
	    &cause);
	is_str(lc.up_text, "-- migrate:up\n\n\n-- migrate:down\n\n",
	    "dbmate: its sections");
	layout_create_clear(&lc);
}

/* diesel's metadata.toml: its one key read, anything else said. */
static void
diesel_meta(void)
{
	static const struct {
		const char	*text;
		int		 rv, notx;
		const char	*err;	/* a part of the message, or "" */
	} cases[] = {
		{ "run_in_transaction = false\n", 0, 1, "" },
		{ "run_in_transaction=true\n", 0, 0, "" },
		{ "", 0, 0, "" },
		{ "# written by hand\n\n", 0, 0, "" },
		{ "  run_in_transaction = false  # CREATE INDEX CONCURRENTLY\r\n",
		  0, 1, "" },
		{ "run_in_transaction = false", 0, 1, "" },
		{ "run_in_transaction = \"false\"\n", -1, 0,
		  "m/x/metadata.toml:1: run_in_transaction must be true or "
		  "false (a TOML boolean, unquoted), not '\"false\"'" },
		{ "run_in_transaction = False\n", -1, 0, "not 'False'" },
		{ "run_in_transaction =\n", -1, 0, "not ''" },
		{ "\n[migration]\n", -1, 0,
		  "m/x/metadata.toml:2: cannot read '[migration]': migd reads "
		  "only 'run_in_transaction = true' or '= false' (and "
		  "comments) in a diesel metadata.toml" },
		{ "run_in_transactions = false\n", -1, 0, "cannot read" },
		{ "other = 1\n", -1, 0, "cannot read 'other = 1'" },
		{ "run_in_transaction = false extra\n", -1, 0, "cannot read" },
		{ "run_in_transaction = false\nrun_in_transaction = true\n", -1,
		  0, "m/x/metadata.toml:2: run_in_transaction is set twice" },
		{ "run_in_transaction\n", -1, 0, "cannot read" },
	};
	struct errlist	 el = { NULL, 0 };
	size_t		 i;
	char		*got;
	int		 notx, rv;

	for (i = 0; i < nitems(cases); i++) {
		notx = -7;
		rv = layout_diesel_meta("m/x/metadata.toml", cases[i].text,
		    strlen(cases[i].text), &notx, &el);
		got = errlist_join(&el, "\n");
		is_int(rv, cases[i].rv, "metadata.toml %zu: result", i);
		is_int(notx, cases[i].notx, "metadata.toml %zu: in a "
		    "transaction or not", i);
		if (cases[i].err[0] == '\0')
			is_str(got, "", "metadata.toml %zu: no error", i);
		else
			ok(strstr(got, cases[i].err) != NULL && el.n == 1,
			    "metadata.toml %zu: one error: %s", i, got);
		free(got);
		errlist_clear(&el);
	}
	/* A NUL byte: no text at all. */
	rv = layout_diesel_meta("m/x/metadata.toml", "run_in_transaction = "
	    "false\0", 27, &notx, &el);
	got = errlist_join(&el, "\n");
	ok(rv == -1 && notx == 0 && strstr(got, "a NUL byte") != NULL,
	    "metadata.toml: a NUL byte refused: %s", got);
	free(got);
	errlist_clear(&el);
	/* Names diesel reads as a migration's directory. */
	ok(layout_diesel_dir("2024-01-15-093012_x", 19) &&
	    layout_diesel_dir("00000000000000_diesel_initial_setup", 35) &&
	    !layout_diesel_dir("schema", 6) && !layout_diesel_dir("_x", 2),
	    "diesel directory names");
}

/* layout_file_buf: a whole-file section keeps the buffer it was read into;
 * one that needs a change (CR, BOM) or is cut out of the text is a copy;
 * either way the same migration as layout_file's. */
static void
file_buf(void)
{
	static const struct {
		enum layout_format	 f;
		const char		*rel, *text;
		int			 kept;
	} cases[] = {
		{ LAYOUT_SQLX, "1_a.up.sql", "CREATE TABLE a (id int);\n", 1 },
		{ LAYOUT_GOLANG_MIGRATE, "1_a.down.sql", "DROP TABLE a;\n", 1 },
		{ LAYOUT_FLYWAY, "V1__a.sql", "CREATE TABLE a (id int);", 1 },
		{ LAYOUT_DIESEL, "2024-01-15-093012_a/up.sql", "SELECT 1;\n",
		    1 },
		{ LAYOUT_SQLX, "1_a.up.sql", "CREATE TABLE a (id int);\r\n",
		    0 },
		{ LAYOUT_SQLX, "1_a.up.sql", "\xef\xbb\xbfSELECT 1;\n", 0 },
		{ LAYOUT_DBMATE, "1_a.sql", "-- migrate:up\nSELECT 1;\n", 0 },
		{ LAYOUT_SQLX, "1_a.up.sql", "SELECT '\xff';\n", 0 },
	};
	struct errlist	 el = { NULL, 0 }, el2 = { NULL, 0 };
	struct migfile	*mf, *mf2;
	char		*buf, *was, *skip, *skip2, *path, *e1, *e2;
	size_t		 i, len;
	int		 r, r2;

	for (i = 0; i < nitems(cases); i++) {
		len = strlen(cases[i].text);
		/* Room for the NUL, and a byte that must not show. */
		buf = xmalloc(len + 1);
		memcpy(buf, cases[i].text, len);
		buf[len] = 'X';
		was = buf;
		path = xprintf("m/%s", cases[i].rel);
		r = layout_file_buf(cases[i].f, path, cases[i].rel, &buf, len,
		    &mf, &skip, &el);
		r2 = layout_file(cases[i].f, path, cases[i].rel,
		    cases[i].text, len, &mf2, &skip2, &el2);
		e1 = errlist_join(&el, "\n");
		e2 = errlist_join(&el2, "\n");
		ok(r == r2 && strcmp(e1, e2) == 0 && (mf == NULL) ==
		    (mf2 == NULL), "file_buf %zu: as layout_file (%d, %s)", i,
		    r, e1);
		if (mf != NULL && mf2 != NULL) {
			ok(strcmp(mf->revision, mf2->revision) == 0 &&
			    (mf->up == NULL) == (mf2->up == NULL) &&
			    (mf->up == NULL || strcmp(mf->up, mf2->up) == 0) &&
			    (mf->down == NULL) == (mf2->down == NULL) &&
			    (mf->down == NULL ||
			    strcmp(mf->down, mf2->down) == 0) &&
			    strcmp(mf->checksum, mf2->checksum) == 0,
			    "file_buf %zu: the same text and checksum", i);
		}
		if (cases[i].kept)
			ok(buf == NULL && mf != NULL && (mf->up == was ||
			    mf->down == was), "file_buf %zu: the buffer is "
			    "the text", i);
		else
			ok(buf == was, "file_buf %zu: the buffer stays the "
			    "caller's", i);
		free(buf);
		free(e1);
		free(e2);
		free(skip);
		free(skip2);
		free(path);
		migfile_free(mf);
		migfile_free(mf2);
		errlist_clear(&el);
		errlist_clear(&el2);
	}
}

/* Another tool's down marker in a file read whole: its down would run. */
static void
foreign_down(void)
{
	struct migfile	*mf;
	char		*errs;

	is_int(one(LAYOUT_SQLX, "20240101000000_a.sql", "-- migrate:up\n"
	    "CREATE TABLE a ();\n-- migrate:down\nDROP TABLE a;\n", &mf, &errs),
	    -1, "sqlx: a dbmate file refused");
	ok(strstr(errs, "m/20240101000000_a.sql:3: '-- migrate:down' begins a "
	    "down section (dbmate's and migd's marker), but a sqlx file") !=
	    NULL && strstr(errs, "would run with the up; if this is a dbmate "
	    "project, set format = dbmate") != NULL, "sqlx: said: %s", errs);
	migfile_free(mf);
	free(errs);
	is_int(one(LAYOUT_GOLANG_MIGRATE, "1_a.up.sql", "-- +goose Up\n"
	    "CREATE TABLE a ();\n\n-- +goose DOWN\nDROP TABLE a;\n", &mf,
	    &errs), -1, "golang-migrate: a goose file refused");
	ok(strstr(errs, "m/1_a.up.sql:4: '-- +goose DOWN' begins a down "
	    "section (goose's annotation)") != NULL && strstr(errs, "set format "
	    "= goose") != NULL, "golang-migrate: said: %s", errs);
	migfile_free(mf);
	free(errs);
	is_int(one(LAYOUT_SQLX, "1_a.down.sql", "-- migrate:down\nDROP TABLE a;\n",
	    &mf, &errs), 0, "a down file may say it");
	migfile_free(mf);
	free(errs);
	is_int(one(LAYOUT_FLYWAY, "V1__a.sql", "-- migrate:up\nCREATE TABLE a ();"
	    "\n-- not -- migrate:down\n  -- migrate:down\n", &mf, &errs), 0,
	    "an up marker, or a down one not at a line's start, is a comment");
	migfile_free(mf);
	free(errs);
}

/* The checksums sqlx and Flyway keep of a file they ran, as adopt --from
 * compares them (values from Python's hashlib and zlib). */
static void
tool_sums(void)
{
	const char	*t = "CREATE TABLE a (id int);\nINSERT INTO a VALUES (1);\n";

	ok(layout_sqlx_sum_ok(t, "393edb78b22a6b8f28b108199e6ed287fd6d3e6de7b70d1d"
	    "9b4a7a331cba0af592df33df7ff108f708a412171d319505"),
	    "sqlx: SHA-384 of the file as read");
	ok(layout_sqlx_sum_ok(t, "DD4CAC3742923A8DCEAEC3BA1B174CD2C3416B0B6F48236E"
	    "305AF5C322C1F8367A81306E8705C3E95DE3915A7D09ED9B"),
	    "sqlx: the same file saved with CRLF (upper-case hex)");
	ok(layout_sqlx_sum_ok(t, "2e30e3e713dfe0bd742d66aefd1dc3567ba12aebaafd4ab2"
	    "e449a64ad74cc8a5573b2f919182db0701af68c4c9b36d5b"),
	    "sqlx: the same file saved with a BOM");
	ok(!layout_sqlx_sum_ok("CREATE TABLE a (id int);\n", "393edb78b22a6b8f28b"
	    "108199e6ed287fd6d3e6de7b70d1d9b4a7a331cba0af592df33df7ff108f708a41217"
	    "1d319505"), "sqlx: an edited file is not");
	ok(!layout_sqlx_sum_ok(t, ""), "sqlx: nor an empty sum");
	is_int(layout_flyway_sum(t), -279898995, "Flyway: a negative Java int");
	is_int(layout_flyway_sum("SELECT 1;"), 78787420, "Flyway: no line break");
	is_int(layout_flyway_sum("SELECT 1;\n\n"), 78787420,
	    "Flyway: blank lines and breaks do not count");
	is_int(layout_flyway_sum(""), 0, "Flyway: an empty script");
}

int
main(void)
{
	names();
	golang_migrate();
	golang_migrate_bad();
	sqlx();
	diesel();
	diesel_meta();
	dbmate();
	goose();
	goose_go();
	flyway();
	mixed();
	create();
	file_buf();
	tool_sums();
	foreign_down();
	return (done_testing());
}
