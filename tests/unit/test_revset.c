/*
 * Unit tests for revset_load's rules against real temporary directories:
 * transaction control in transactional and non-transactional sections,
 * segments, the schemas a section may drop, and SQL newer than the parser.
 */
#include <sys/stat.h>

#include <errno.h>
#include <ftw.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "layout.h"
#include "migfile.h"
#include "revset.h"
#include "sqlscan.h"
#include "tap.h"
#include "util.h"

/* The tails of messages that many cases expect, after "PATH:LINE: WHAT". */
#define MSG_ROLLBACK_TX							\
	" inside a migration would throw its work away while migd "	\
	"records it as applied; remove it (a failing statement "	\
	"rolls the migration back by itself), or use SAVEPOINT "	\
	"and ROLLBACK TO"
#define MSG_ROLLBACK_BARE						\
	" inside a migration would throw work away while migd "		\
	"records it as applied; remove it"
#define MSG_CONFIGURED							\
	": the schema is managed by migd (it is configured in "		\
	"[migrations] schemas), and migd never drops or renames a "	\
	"schema it manages, so that no data is lost"
#define MSG_TABLES							\
	": the schema is managed by migd (it holds migd's version "	\
	"and history tables), and migd never drops or renames a "	\
	"schema it manages, so that no data is lost"
#define MSG_DROP_INSTEAD	"; drop the objects instead"
#define MSG_NOT_OWN							\
	" in a down section: its up section does not create that "	\
	"schema with a plain CREATE SCHEMA, so it may hold data "	\
	"that is not this migration's"

static char		*top;	/* the mkdtemp directory, removed at the end */
static char		*cur;	/* this case's migrations directory */
static struct revset	*rs;	/* what the last load() loaded, or NULL */
static struct errlist	 el;	/* what it said */
static char		*said;	/* el joined by "\n" */

/* The configuration most tests load with: schema cars managed, migd's
 * tables in public, no server known. */
static char *const	 cars[] = { "cars" };
static const struct revset_ctx	ctx_base = { cars, 1, "public", "public", 0,
    NULL, 0 };

/* Starts a case: an empty migrations directory of its own. */
static void
newcase(const char *name)
{
	free(cur);
	cur = xprintf("%s/%s", top, name);
	if (mkdir(cur, 0755) == -1) {
		perror(cur);
		exit(2);
	}
}

/* Writes one migration file into the case's directory: line 3 is the
 * optional "transaction: none" header, so up always starts at line 5 and
 * down (when not NULL) at line 6 + the number of lines of up. */
static void
mig(const char *file, const char *rev, const char *parent, int none,
    const char *up, const char *down)
{
	char	*path = xprintf("%s/%s", cur, file);
	char	*text = xprintf("-- revision: %s\n-- down_revision: %s\n%s\n"
	    "-- migrate:up\n%s%s%s", rev, parent, none ?
	    "-- transaction: none" : "", up, down != NULL ?
	    "-- migrate:down\n" : "", down != NULL ? down : "");
	FILE	*f;

	if ((f = fopen(path, "w")) == NULL || fputs(text, f) == EOF ||
	    fclose(f) == EOF) {
		perror(path);
		exit(2);
	}
	free(text);
	free(path);
}

/* One root file 0001.sql: what most cases need. */
static void
one(const char *name, int none, const char *up, const char *down)
{
	newcase(name);
	mig("0001.sql", "0001", "none", none, up, down);
}

/* The expected message with "@" for the directory. */
static char *
expand(const char *pattern)
{
	struct passwd	*pw = getpwuid(geteuid());
	char		*s, *t;

	/* "<me>": the owner of what the tests create. */
	s = tap_expand(pattern, cur);
	t = tap_subst(s, "<me>", pw != NULL ? pw->pw_name : "?");
	free(s);
	return (t);
}

/* Loads the case's directory; the revset stays in rs for the checks. */
static int
load(const struct revset_ctx *ctx)
{
	int	 rc;

	revset_unref(rs);
	rs = NULL;
	errlist_clear(&el);
	free(said);
	rc = revset_load(cur, ctx, &rs, &el);
	said = errlist_join(&el, "\n");
	return (rc);
}

/* The case must load, silently. */
static void
loads(const struct revset_ctx *ctx, const char *name)
{
	is_int(load(ctx), 0, "%s: loads", name);
	is_str(said, "", "%s: no errors", name);
	ok(rs != NULL, "%s: a revset", name);
}

/* The case must be refused with exactly want ("@" = the case's directory),
 * one message per line, and n of them. */
static void
refused(const struct revset_ctx *ctx, size_t n, const char *want,
    const char *name)
{
	char	*exp = expand(want);

	is_int(load(ctx), -1, "%s: refused", name);
	ok(rs == NULL, "%s: no revset", name);
	is_int(el.n, n, "%s: %zu error%s", name, n, n == 1 ? "" : "s");
	is_str(said, exp, "%s: messages", name);
	free(exp);
}

/* The first lines of the segments of the loaded 0001's up (or down). */
static void
segments(int up, size_t n, const int *lines, const char *name)
{
	const struct sqlscan	*sc;
	int			*got;
	size_t			 i, k;

	if (rs == NULL) {
		ok(0, "%s: segments: nothing loaded", name);
		return;
	}
	sc = revset_section(rs, 0, up);
	got = xcalloc(sc->n_stmts + 1, sizeof *got);
	is_int(revset_segments(sc, NULL), n, "%s: %zu segment%s", name, n,
	    n == 1 ? "" : "s");
	k = revset_segments(sc, got);
	is_int(k, n, "%s: same count with lines", name);
	for (i = 0; i < n && i < k; i++)
		is_int(got[i], lines[i], "%s: segment %zu starts at line %d",
		    name, i + 1, lines[i]);
	free(got);
}

/* Writes a file with a header of its own: parents, then extra lines. */
static void
rev(const char *id, const char *parents, const char *extra)
{
	char	*path = xprintf("%s/%s.sql", cur, id);
	char	*text = xprintf("-- revision: %s\n-- down_revision: %s\n%s"
	    "-- migrate:up\nSELECT 1;\n", id, parents, extra);
	FILE	*f;

	if ((f = fopen(path, "w")) == NULL || fputs(text, f) == EOF ||
	    fclose(f) == EOF) {
		perror(path);
		exit(2);
	}
	free(text);
	free(path);
}

/* What revset_target makes of target: the id, or "error: CAUSE". */
static char *
target(const char *t)
{
	char	*out = NULL, *cause = NULL, *r;

	if (rs == NULL)
		return (xstrdup("(nothing loaded)"));
	if (revset_target(rs, t, &out, &cause) == 0) {
		ok(cause == NULL, "%s: no cause with a result", t);
		return (out);
	}
	ok(out == NULL, "%s: no result with a cause", t);
	r = xprintf("error: %s", cause);
	free(cause);
	return (r);
}

/* The rows revset_stamp leaves (space-separated ids), or "error: CAUSE":
 * one row, rows, and one comma-separated list of targets. */
static char *
stamp(const char *row, const char *targets)
{
	struct graph_stamp	 out;
	const char		*rows[1] = { row }, *tv[8];
	char			*cause = NULL, *r, *x, *list, *p;
	size_t			 i, n = 0;

	list = xstrdup(targets);
	for (p = strtok(list, ","); p != NULL && n < 8; p = strtok(NULL, ","))
		tv[n++] = p;
	if (revset_stamp(rs, rows, row != NULL, tv, n, 0, &out, &cause) !=
	    0) {
		r = xprintf("error: %s", cause);
		free(cause);
		free(list);
		return (r);
	}
	r = xstrdup("");
	for (i = 0; i < out.n_rows; i++) {
		x = xprintf("%s%s%s", r, i ? " " : "", graph_id(rs->graph,
		    out.rows[i]));
		free(r);
		r = x;
	}
	graph_stamp_clear(&out);
	free(list);
	return (r);
}

#define STAMP(row, t, want) do {					\
	char	*got_ = stamp(row, t);					\
	is_str(got_, want, "stamp %s on %s", t, row ? row : "base");	\
	free(got_);							\
} while (0)

#define TARGET(t, want) do {						\
	char	*got_ = target(t);					\
	is_str(got_, want, "target %s", t);				\
	free(got_);							\
} while (0)

/*
 * branch_labels and LABEL@head as Alembic has them: the label names the
 * revision declaring it, LABEL@head the one head built on it over
 * down_revision (depends_on is not lineage).  The expected resolutions are
 * Alembic 1.8's (RevisionMap.get_revisions on the same graph).
 */
static void
test_labels(void)
{
	/* r1 -> r2 [shop] -> r3; r1 -> r4 [cars] -> r5; r6 depends on r2 */
	newcase("labels");
	rev("r1", "none", "");
	rev("r2", "r1", "-- branch_labels: shop\n");
	rev("r3", "r2", "");
	rev("r4", "r1", "-- branch_labels: cars, fleet\n");
	rev("r5", "r4", "");
	rev("r6", "r1", "-- depends_on: r2\n");
	loads(&ctx_base, "labels");
	TARGET("shop@head", "r3");
	TARGET("cars@head", "r5");
	TARGET("fleet@head", "r5");
	TARGET("r2", "r2");
	TARGET("heads", "heads");
	TARGET("+1", "+1");
	TARGET("nope@head", "error: target 'nope@head': no revision declares "
	    "the branch label 'nope' (see the branch_labels headers)");
	TARGET("shop@base", "error: target 'shop@base': after '@' only 'head' "
	    "is supported (LABEL@head: the head of the branch labelled LABEL)");
	TARGET("shop@", "error: target 'shop@': after '@' only 'head' is "
	    "supported (LABEL@head: the head of the branch labelled LABEL)");
	/* stamp takes LABEL@head too: only that branch's rows give way */
	STAMP("r5", "shop@head", "r3 r5");
	STAMP(NULL, "shop@head,cars@head", "r3 r5");
	STAMP("r3", "fleet@head", "r3 r5");
	STAMP("r2", "shop@head", "r3");
	STAMP("r5", "nope@head", "error: target 'nope@head': no revision "
	    "declares the branch label 'nope' (see the branch_labels headers)");
	STAMP("r5", "r2,shop@base", "error: target 'shop@base': after '@' "
	    "only 'head' is supported (LABEL@head: the head of the branch "
	    "labelled LABEL)");

	/* The labelled revision's branch forks: two heads, named. */
	rev("r3b", "r2", "");
	loads(&ctx_base, "labels forked");
	TARGET("shop@head", "error: target 'shop@head': the branch labelled "
	    "'shop' has 2 heads: r3, r3b; name one of them, or merge them");
	STAMP("r5", "shop@head", "error: target 'shop@head': the branch "
	    "labelled 'shop' has 2 heads: r3, r3b; name one of them, or merge "
	    "them");
	TARGET("cars@head", "r5");

	/* A merge of both branches is the one head of each label. */
	rev("m", "r3, r3b, r5, r6", "");
	loads(&ctx_base, "labels merged");
	TARGET("shop@head", "m");
	TARGET("cars@head", "m");

	/* The label of a head is that head. */
	newcase("label on head");
	rev("a", "none", "");
	rev("b", "a", "-- branch_labels: tip\n");
	loads(&ctx_base, "label on head");
	TARGET("tip@head", "b");

	/* A label is declared once, and is no revision's id. */
	newcase("label twice");
	rev("a", "none", "-- branch_labels: x\n");
	rev("b", "a", "-- branch_labels: x, a\n");
	refused(&ctx_base, 2, "@/b.sql:3: branch label 'a' is the id of "
	    "revision a (@/a.sql); a label must differ from every revision "
	    "id\n@/b.sql:3: branch label 'x' is already declared by revision "
	    "a (@/a.sql:3); a label names one revision", "label twice");
}

/* nftw callback: removes everything, children first. */
static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	if (remove(path) == -1)
		perror(path);
	return (0);
}

/* BEGIN and COMMIT [AND CHAIN] of a transactional section mark segments. */
static void
test_segments(void)
{
	static const int	 l6[] = { 6 }, l5[] = { 5 }, l5_7_10[] = { 5, 7,
	    10 }, l5_8[] = { 5, 8 }, l12[] = { 12 };

	one("wrapped", 0,
	    "BEGIN;\n"					/* 5 */
	    "CREATE TABLE t (a int);\n"			/* 6 */
	    "INSERT INTO t VALUES (1);\n"		/* 7 */
	    "COMMIT;\n",				/* 8 */
	    "BEGIN ISOLATION LEVEL SERIALIZABLE;\n"	/* 10 */
	    "-- comment\n"				/* 11 */
	    "DROP TABLE t;\n"				/* 12 */
	    "END;\n");					/* 13 */
	loads(&ctx_base, "BEGIN..COMMIT");
	if (rs != NULL) {
		is_int(revset_transactional(rs, 0, 1), 1,
		    "BEGIN..COMMIT: transactional");
		ok(revset_no_tx_stmt(rs, 0, 1) == NULL,
		    "BEGIN..COMMIT: no statement forbids a transaction");
	}
	segments(1, 1, l6, "BEGIN..COMMIT up");
	segments(0, 1, l12, "BEGIN ISOLATION..END down");

	one("chained", 0,
	    "CREATE TABLE a ();\n"			/* 5 */
	    "COMMIT AND CHAIN;\n"			/* 6 */
	    "CREATE TABLE b ();\n"			/* 7 */
	    "COMMIT;\n"					/* 8 */
	    "BEGIN;\n"					/* 9 */
	    "CREATE TABLE c ();\n", NULL);		/* 10 */
	loads(&ctx_base, "A; COMMIT AND CHAIN; B; COMMIT; BEGIN; C");
	segments(1, 3, l5_7_10, "A; COMMIT AND CHAIN; B; COMMIT; BEGIN; C");

	one("commit_then", 0,
	    "CREATE TABLE a ();\n"			/* 5 */
	    "COMMIT;\n"					/* 6 */
	    "COMMIT;\n"					/* 7 */
	    "CREATE TABLE b ();\n", NULL);		/* 8 */
	loads(&ctx_base, "A; COMMIT; COMMIT; B");
	segments(1, 2, l5_8, "A; COMMIT; COMMIT; B: empty one not counted");

	one("start_end", 0,
	    "START TRANSACTION;\nCREATE TABLE a ();\nEND;\n", NULL);
	loads(&ctx_base, "START TRANSACTION; A; END");
	segments(1, 1, l6, "START TRANSACTION; A; END");

	/* In a transactional section migd commits at the end anyway. */
	one("lead_begin", 0, "BEGIN;\nCREATE TABLE a ();\n", NULL);
	loads(&ctx_base, "leading BEGIN only");
	segments(1, 1, l6, "leading BEGIN only");

	one("trail_commit", 0, "CREATE TABLE a ();\nCOMMIT;\n", NULL);
	loads(&ctx_base, "trailing COMMIT only");
	segments(1, 1, l5, "trailing COMMIT only");

	one("lead_commit", 0, "COMMIT;\nCREATE TABLE a ();\n", NULL);
	loads(&ctx_base, "leading COMMIT");
	segments(1, 1, l6, "leading COMMIT");

	one("trail_begin", 0, "CREATE TABLE a ();\nCOMMIT;\nBEGIN;\n", NULL);
	loads(&ctx_base, "A; COMMIT; BEGIN");
	segments(1, 1, l5, "A; COMMIT; BEGIN");

	one("only_tx", 0, "BEGIN;\nCOMMIT;\n", "BEGIN;\n");
	loads(&ctx_base, "BEGIN; COMMIT only");
	segments(1, 0, NULL, "BEGIN; COMMIT only");
	segments(0, 0, NULL, "BEGIN only");

	one("only_commit", 0, "COMMIT;\n", "COMMIT AND CHAIN;\n");
	loads(&ctx_base, "COMMIT only");
	segments(1, 0, NULL, "COMMIT only");
	segments(0, 0, NULL, "COMMIT AND CHAIN only");

	one("empty", 0, "", "-- nothing to undo\n");
	loads(&ctx_base, "empty sections");
	segments(1, 0, NULL, "empty up");
	segments(0, 0, NULL, "comment-only down");
}

/* What would undo or escape migd's transactions is refused, each once. */
static void
test_tx_refused(void)
{
	size_t	 i;

	one("refused", 0,
	    "CREATE TABLE t (a int);\n"			/* 5 */
	    "ROLLBACK;\n"				/* 6 */
	    "ABORT;\n"					/* 7 */
	    "ROLLBACK AND CHAIN;\n"			/* 8 */
	    "PREPARE TRANSACTION 'p';\n"		/* 9 */
	    "COMMIT;\n"					/* 10 */
	    "INSERT INTO t VALUES (1);\n"		/* 11 */
	    "BEGIN;\n"					/* 12 */
	    "SELECT 2;\n"				/* 13 */
	    "COMMIT;\n"					/* 14 */
	    "BEGIN;\n"					/* 15 */
	    "SELECT 1;\n"				/* 16 */
	    "START TRANSACTION;\n"			/* 17 */
	    "COMMIT;\n",				/* 18 */
	    "ROLLBACK;\n");				/* 20 */
	refused(&ctx_base, 7,
	    "@/0001.sql:6: ROLLBACK" MSG_ROLLBACK_TX "\n"
	    "@/0001.sql:7: ROLLBACK" MSG_ROLLBACK_TX "\n"
	    "@/0001.sql:8: ROLLBACK AND CHAIN" MSG_ROLLBACK_TX "\n"
	    "@/0001.sql:9: PREPARE TRANSACTION inside a migration: two-phase "
	    "commit cannot be part of a migration; remove it\n"
	    "@/0001.sql:12: BEGIN while a transaction is already open (since "
	    "line 11): PostgreSQL would ignore it; remove it, or end the "
	    "transaction first with COMMIT\n"
	    "@/0001.sql:17: START TRANSACTION while a transaction is already "
	    "open (since line 15): PostgreSQL would ignore it; remove it, or "
	    "end the transaction first with COMMIT\n"
	    "@/0001.sql:20: ROLLBACK" MSG_ROLLBACK_TX,
	    "transactional: every problem once, at its line");

	/* COMMIT PREPARED and ROLLBACK PREPARED cannot run in a transaction:
	 * the section is no longer transactional, and still refused. */
	one("commit_prepared", 0,
	    "CREATE TABLE t (a int);\nCOMMIT PREPARED 'p';\n",
	    "ROLLBACK PREPARED 'p';\n");
	refused(&ctx_base, 2,
	    "@/0001.sql:6: COMMIT PREPARED inside a migration: two-phase "
	    "commit cannot be part of a migration; remove it\n"
	    "@/0001.sql:8: ROLLBACK PREPARED inside a migration: two-phase "
	    "commit cannot be part of a migration; remove it",
	    "COMMIT PREPARED, ROLLBACK PREPARED");

	/* The "since line" of a BEGIN inside an open transaction is the
	 * first statement of that transaction: where migd's own BEGIN goes,
	 * or the file's BEGIN; a refused statement between changes nothing. */
	one("since", 0,
	    "CREATE TABLE t (a int);\n"			/* 5 */
	    "ROLLBACK;\n"				/* 6 */
	    "BEGIN;\n", NULL);				/* 7 */
	refused(&ctx_base, 2,
	    "@/0001.sql:6: ROLLBACK" MSG_ROLLBACK_TX "\n"
	    "@/0001.sql:7: BEGIN while a transaction is already open (since "
	    "line 5): PostgreSQL would ignore it; remove it, or end the "
	    "transaction first with COMMIT",
	    "BEGIN after A; ROLLBACK: open since line 5 (A), not 6");

	one("since_begin", 0,
	    "BEGIN;\n"					/* 5 */
	    "CREATE TABLE t (a int);\n"			/* 6 */
	    "INSERT INTO t VALUES (1);\n"		/* 7 */
	    "BEGIN;\n"					/* 8 */
	    "COMMIT;\n"					/* 9 */
	    "CREATE TABLE u (a int);\n"			/* 10 */
	    "SAVEPOINT s;\n"				/* 11 */
	    "START TRANSACTION ISOLATION LEVEL SERIALIZABLE;\n", NULL); /* 12 */
	refused(&ctx_base, 2,
	    "@/0001.sql:8: BEGIN while a transaction is already open (since "
	    "line 5): PostgreSQL would ignore it; remove it, or end the "
	    "transaction first with COMMIT\n"
	    "@/0001.sql:12: START TRANSACTION while a transaction is already "
	    "open (since line 10): PostgreSQL would ignore it; remove it, or "
	    "end the transaction first with COMMIT",
	    "since: the file's BEGIN, or the first statement after COMMIT");

	/*
	 * A BEGIN that PostgreSQL ignores does not start the transaction:
	 * the BEGIN after it is still inside the one open since line 5 (9).
	 */
	one("since_twice", 0,
	    "CREATE TABLE t (a int);\n"			/* 5 */
	    "BEGIN;\n"					/* 6 */
	    "BEGIN;\n"					/* 7 */
	    "COMMIT;\n"					/* 8 */
	    "BEGIN;\n"					/* 9 */
	    "BEGIN;\n"					/* 10 */
	    "BEGIN;\n"					/* 11 */
	    "COMMIT;\n", NULL);				/* 12 */
	is_int(load(&ctx_base), -1, "BEGIN twice: refused");
	is_int(el.n, 4, "BEGIN twice: 4 errors");
	ok(el.n == 4 && strstr(el.v[0], "/0001.sql:6: BEGIN while a "
	    "transaction is already open (since line 5)") != NULL,
	    "BEGIN twice: line 6, open since line 5");
	ok(el.n == 4 && strstr(el.v[2], "/0001.sql:10: BEGIN while a "
	    "transaction is already open (since line 9)") != NULL,
	    "BEGIN twice: line 10, open since line 9");
	ok(el.n == 4 && strstr(el.v[1], "/0001.sql:7: "
	    "BEGIN while a transaction is already open (since line 5)") !=
	    NULL, "BEGIN twice: line 7 still open since line 5, not 6");
	ok(el.n == 4 &&
	    strstr(el.v[3], "/0001.sql:11: BEGIN while a transaction is "
	    "already open (since line 9)") != NULL,
	    "BEGIN twice: line 11 still open since line 9, not 10");
	for (i = 0; i < el.n; i++)
		printf("#   got: %s\n", el.v[i]);
}

/* Savepoints work as in any transaction. */
static void
test_savepoints(void)
{
	static const int	 l5[] = { 5 }, l15[] = { 15 };

	one("savepoints", 0,
	    "CREATE TABLE t (a int);\n"			/* 5 */
	    "SAVEPOINT s;\n"				/* 6 */
	    "INSERT INTO t VALUES (1);\n"		/* 7 */
	    "ROLLBACK TO SAVEPOINT s;\n"		/* 8 */
	    "ROLLBACK TO s;\n"				/* 9 */
	    "RELEASE SAVEPOINT s;\n"			/* 10 */
	    "SAVEPOINT u;\n"				/* 11 */
	    "RELEASE u;\n",				/* 12 */
	    "BEGIN;\n"					/* 14 */
	    "SAVEPOINT s;\n"				/* 15 */
	    "DROP TABLE t;\n"				/* 16 */
	    "ROLLBACK TO s;\n"				/* 17 */
	    "DROP TABLE t;\n"				/* 18 */
	    "COMMIT;\n");				/* 19 */
	loads(&ctx_base, "SAVEPOINT, RELEASE, ROLLBACK TO");
	if (rs != NULL) {
		is_int(revset_transactional(rs, 0, 1), 1,
		    "savepoints: up transactional");
		is_int(revset_transactional(rs, 0, 0), 1,
		    "savepoints: down transactional");
	}
	segments(1, 1, l5, "savepoints up");
	segments(0, 1, l15, "savepoints down: one, at the SAVEPOINT");
}

/* A non-transactional section goes to the server as written. */
static void
test_bare(void)
{
	one("bare_ok", 1,
	    "CREATE TABLE t (a int);\n"			/* 5 */
	    "BEGIN;\n"					/* 6 */
	    "INSERT INTO t VALUES (1);\n"		/* 7 */
	    "SAVEPOINT s;\n"				/* 8 */
	    "UPDATE t SET a = 2;\n"			/* 9 */
	    "ROLLBACK TO s;\n"				/* 10 */
	    "COMMIT AND CHAIN;\n"			/* 11 */
	    "UPDATE t SET a = 3;\n"			/* 12 */
	    "COMMIT;\n"					/* 13 */
	    "START TRANSACTION;\n"			/* 14 */
	    "SELECT 1;\n"				/* 15 */
	    "END;\n"					/* 16 */
	    "VACUUM t;\n",				/* 17 */
	    "DROP TABLE t;\n");
	loads(&ctx_base, "transaction: none, BEGIN..COMMIT");
	if (rs != NULL) {
		is_int(revset_transactional(rs, 0, 1), 0,
		    "transaction: none: up not transactional");
		is_int(revset_transactional(rs, 0, 0), 0,
		    "transaction: none: down not transactional");
	}

	one("cic_ok", 0,
	    "CREATE INDEX CONCURRENTLY i ON t (a);\n"	/* 5 */
	    "BEGIN;\n"					/* 6 */
	    "INSERT INTO t VALUES (1);\n"		/* 7 */
	    "COMMIT;\n",				/* 8 */
	    "DROP INDEX i;\n");
	loads(&ctx_base, "CONCURRENTLY, then BEGIN..COMMIT");
	if (rs != NULL) {
		const struct sqlscan_stmt *st = revset_no_tx_stmt(rs, 0, 1);

		is_int(revset_transactional(rs, 0, 1), 0,
		    "CONCURRENTLY: up not transactional");
		ok(st != NULL && st->line == 5,
		    "CONCURRENTLY: the statement at line 5 forbids a tx");
		is_int(revset_transactional(rs, 0, 0), 1,
		    "CONCURRENTLY: down is transactional");
	}

	one("chain_closed", 1, "CREATE TABLE t (a int);\nCOMMIT AND CHAIN;\n",
	    "ROLLBACK AND CHAIN;\n");
	refused(&ctx_base, 2,
	    "@/0001.sql:6: COMMIT AND CHAIN with no transaction open: in a "
	    "non-transactional migration each statement commits by itself; "
	    "add BEGIN before the statements it should end\n"
	    "@/0001.sql:8: ROLLBACK AND CHAIN" MSG_ROLLBACK_BARE,
	    "AND CHAIN without BEGIN (ROLLBACK AND CHAIN: refused as such)");

	one("savepoint_closed", 1,
	    "SAVEPOINT s;\n"				/* 5 */
	    "BEGIN;\n"					/* 6 */
	    "SAVEPOINT s;\n"				/* 7 */
	    "COMMIT;\n"					/* 8 */
	    "RELEASE s;\n"				/* 9 */
	    "ROLLBACK TO SAVEPOINT s;\n", NULL);	/* 10 */
	refused(&ctx_base, 3,
	    "@/0001.sql:5: SAVEPOINT with no transaction open: in a "
	    "non-transactional migration each statement commits by itself; "
	    "add BEGIN before it\n"
	    "@/0001.sql:9: RELEASE SAVEPOINT with no transaction open: in a "
	    "non-transactional migration each statement commits by itself; "
	    "add BEGIN before it\n"
	    "@/0001.sql:10: ROLLBACK TO SAVEPOINT with no transaction open: in "
	    "a non-transactional migration each statement commits by itself; "
	    "add BEGIN before it",
	    "savepoints without BEGIN");

	one("cic_inside", 0,
	    "CREATE TABLE t (a int);\n"			/* 5 */
	    "BEGIN;\n"					/* 6 */
	    "INSERT INTO t VALUES (1);\n"		/* 7 */
	    "CREATE INDEX CONCURRENTLY i ON t (a);\n"	/* 8 */
	    "COMMIT;\n", NULL);				/* 9 */
	refused(&ctx_base, 1,
	    "@/0001.sql:8: CREATE INDEX CONCURRENTLY cannot run inside the "
	    "transaction begun at line 6: COMMIT before it",
	    "CONCURRENTLY between BEGIN and COMMIT");

	one("never_committed", 1,
	    "CREATE TABLE t (a int);\n"			/* 5 */
	    "BEGIN;\n"					/* 6 */
	    "INSERT INTO t VALUES (1);\n"		/* 7 */
	    "COMMIT AND CHAIN;\n"			/* 8 */
	    "INSERT INTO t VALUES (2);\n",		/* 9 */
	    "BEGIN;\n");				/* 11 */
	refused(&ctx_base, 2,
	    "@/0001.sql:6: the transaction begun here is never committed: "
	    "add COMMIT at the end of the section\n"
	    "@/0001.sql:11: the transaction begun here is never committed: "
	    "add COMMIT at the end of the section",
	    "BEGIN never committed, at the BEGIN's line");

	one("begin_open", 1,
	    "BEGIN;\n"					/* 5 */
	    "CREATE TABLE t (a int);\n"			/* 6 */
	    "BEGIN;\n"					/* 7 */
	    "START TRANSACTION;\n"			/* 8 */
	    "COMMIT;\n"					/* 9 */
	    "PREPARE TRANSACTION 'p';\n", NULL);	/* 10 */
	refused(&ctx_base, 3,
	    "@/0001.sql:7: BEGIN while the transaction begun at line 5 is "
	    "open: PostgreSQL would ignore it; remove it, or COMMIT first\n"
	    "@/0001.sql:8: START TRANSACTION while the transaction begun at "
	    "line 5 is open: PostgreSQL would ignore it; remove it, or COMMIT "
	    "first\n"
	    "@/0001.sql:10: PREPARE TRANSACTION inside a migration: two-phase "
	    "commit cannot be part of a migration; remove it",
	    "BEGIN while open; PREPARE TRANSACTION");

	/*
	 * ROLLBACK, ABORT and ROLLBACK AND CHAIN throw work away while migd
	 * records the migration as applied: refused here too, each at its
	 * line, and ROLLBACK TO SAVEPOINT is still fine.
	 */
	one("bare_rollback", 1,
	    "CREATE TABLE t (a int);\n"			/* 5 */
	    "BEGIN;\n"					/* 6 */
	    "INSERT INTO t VALUES (1);\n"		/* 7 */
	    "ROLLBACK;\n"				/* 8 */
	    "ROLLBACK;\n"				/* 9 */
	    "ABORT;\n"					/* 10 */
	    "BEGIN;\n"					/* 11 */
	    "SAVEPOINT s;\n"				/* 12 */
	    "ROLLBACK TO SAVEPOINT s;\n"		/* 13 */
	    "ROLLBACK AND CHAIN;\n",			/* 14 */
	    "ABORT;\n");				/* 16 */
	refused(&ctx_base, 5,
	    "@/0001.sql:8: ROLLBACK" MSG_ROLLBACK_BARE "\n"
	    "@/0001.sql:9: ROLLBACK" MSG_ROLLBACK_BARE "\n"
	    "@/0001.sql:10: ROLLBACK" MSG_ROLLBACK_BARE "\n"
	    "@/0001.sql:14: ROLLBACK AND CHAIN" MSG_ROLLBACK_BARE "\n"
	    "@/0001.sql:16: ROLLBACK" MSG_ROLLBACK_BARE,
	    "transaction: none: ROLLBACK, ABORT, ROLLBACK AND CHAIN refused");

	/* A section made non-transactional by its statements is the same. */
	one("cic_rollback", 0,
	    "CREATE INDEX CONCURRENTLY i ON t (a);\n"	/* 5 */
	    "ROLLBACK;\n", NULL);			/* 6 */
	refused(&ctx_base, 1, "@/0001.sql:6: ROLLBACK" MSG_ROLLBACK_BARE,
	    "CONCURRENTLY, then ROLLBACK: the bare message");

	/*
	 * After a refused ROLLBACK (with AND CHAIN or not) the section counts
	 * as having no transaction open: nothing is left to commit, a BEGIN
	 * is no second one, and what needs a transaction needs a new BEGIN.
	 */
	one("bare_after_rollback", 1,
	    "BEGIN;\n"					/* 5 */
	    "ROLLBACK;\n"				/* 6 */
	    "VACUUM t;\n"				/* 7 */
	    "SAVEPOINT s;\n"				/* 8 */
	    "COMMIT AND CHAIN;\n"			/* 9 */
	    "BEGIN;\n"					/* 10 */
	    "ROLLBACK AND CHAIN;\n"			/* 11 */
	    "BEGIN;\n"					/* 12 */
	    "COMMIT;\n"					/* 13 */
	    "BEGIN;\n"					/* 14 */
	    "ABORT;\n", NULL);				/* 15 */
	refused(&ctx_base, 5,
	    "@/0001.sql:6: ROLLBACK" MSG_ROLLBACK_BARE "\n"
	    "@/0001.sql:8: SAVEPOINT with no transaction open: in a "
	    "non-transactional migration each statement commits by itself; "
	    "add BEGIN before it\n"
	    "@/0001.sql:9: COMMIT AND CHAIN with no transaction open: in a "
	    "non-transactional migration each statement commits by itself; "
	    "add BEGIN before the statements it should end\n"
	    "@/0001.sql:11: ROLLBACK AND CHAIN" MSG_ROLLBACK_BARE "\n"
	    "@/0001.sql:15: ROLLBACK" MSG_ROLLBACK_BARE,
	    "after ROLLBACK no transaction is open (no never-committed, no "
	    "BEGIN-while-open, no CONCURRENTLY-inside)");
}

/* Which schemas a section may drop or rename away. */
static void
test_schemas(void)
{
	static const struct revset_ctx	 ctx_hist = { NULL, 0, "migd",
	    "migd_history", 0, NULL, 0 };

	one("drop_configured", 0, "CREATE TABLE cars.t ();\n",
	    "DROP SCHEMA cars;\n");			/* 7 */
	refused(&ctx_base, 1,
	    "@/0001.sql:7: DROP SCHEMA cars" MSG_CONFIGURED MSG_DROP_INSTEAD,
	    "down drops a configured schema");

	one("drop_two", 0, "CREATE SCHEMA mine;\n",	/* 5 */
	    "DROP SCHEMA mine, cars CASCADE;\n");	/* 7 */
	refused(&ctx_base, 1,
	    "@/0001.sql:7: DROP SCHEMA cars" MSG_CONFIGURED MSG_DROP_INSTEAD,
	    "DROP SCHEMA mine, cars: only cars");

	one("drop_folded", 0, "CREATE SCHEMA \"Cars\";\n",
	    "DROP SCHEMA \"Cars\";\nDROP SCHEMA CARS;\n");	/* 7, 8 */
	refused(&ctx_base, 1,
	    "@/0001.sql:8: DROP SCHEMA cars" MSG_CONFIGURED MSG_DROP_INSTEAD,
	    "names as the server sees them: CARS is cars, \"Cars\" is not");

	one("drop_public", 0,
	    "CREATE TABLE t ();\n"			/* 5 */
	    "DROP SCHEMA public CASCADE;\n", NULL);	/* 6 */
	refused(&ctx_base, 1,
	    "@/0001.sql:6: DROP SCHEMA public" MSG_TABLES MSG_DROP_INSTEAD,
	    "up drops migd's tables' schema");

	one("drop_history", 0,
	    "DROP SCHEMA IF EXISTS migd_history;\n"	/* 5 */
	    "DROP SCHEMA cars;\n", NULL);		/* 6 */
	refused(&ctx_hist, 1,
	    "@/0001.sql:5: DROP SCHEMA migd_history" MSG_TABLES
	    MSG_DROP_INSTEAD, "history schema managed; cars is not here");

	/* A rename is refused too, without the advice to drop objects. */
	one("rename_configured", 0, "ALTER SCHEMA cars RENAME TO x;\n", NULL);
	refused(&ctx_base, 1,
	    "@/0001.sql:5: ALTER SCHEMA ... RENAME cars" MSG_CONFIGURED,
	    "ALTER SCHEMA cars RENAME: refused, no 'drop the objects instead'");
	one("rename_tables", 0, "CREATE TABLE t ();\n",
	    "ALTER SCHEMA public RENAME TO old_public;\n");	/* 7 */
	refused(&ctx_base, 1,
	    "@/0001.sql:7: ALTER SCHEMA ... RENAME public" MSG_TABLES,
	    "down renames migd's tables' schema: refused, no drop advice");

	one("own_schema", 0,
	    "CREATE SCHEMA utils;\n"
	    "CREATE FUNCTION utils.one() RETURNS int LANGUAGE sql "
	    "AS $$ SELECT 1 $$;\n",
	    "DROP SCHEMA utils CASCADE;\n");
	loads(&ctx_base, "down drops the schema its up created");

	one("own_if_not_exists", 0,
	    "CREATE SCHEMA IF NOT EXISTS utils;\n",
	    "DROP SCHEMA utils CASCADE;\n");		/* 7 */
	refused(&ctx_base, 1,
	    "@/0001.sql:7: DROP SCHEMA utils" MSG_NOT_OWN MSG_DROP_INSTEAD,
	    "CREATE SCHEMA IF NOT EXISTS: not the migration's");

	newcase("other_file");
	mig("0001.sql", "0001", "none", 0, "CREATE SCHEMA utils;\n",
	    "DROP SCHEMA utils;\n");
	mig("0002.sql", "0002", "0001", 0, "CREATE TABLE utils.t ();\n",
	    "DROP TABLE utils.t;\nDROP SCHEMA utils;\n");	/* 7, 8 */
	refused(&ctx_base, 1,
	    "@/0002.sql:8: DROP SCHEMA utils" MSG_NOT_OWN MSG_DROP_INSTEAD,
	    "created by another file's up");

	one("up_drops", 0, "DROP SCHEMA old CASCADE;\n", "");
	loads(&ctx_base, "up drops an unmanaged schema");

	/* Without a ctx, nothing is managed: only the own-up rule is left. */
	one("null_ctx", 0,
	    "DROP SCHEMA public CASCADE;\nCREATE SCHEMA cars;\n",
	    "DROP SCHEMA cars;\n");
	loads(NULL, "ctx NULL: public and cars droppable");
	refused(&ctx_base, 2,
	    "@/0001.sql:5: DROP SCHEMA public" MSG_TABLES MSG_DROP_INSTEAD "\n"
	    "@/0001.sql:8: DROP SCHEMA cars" MSG_CONFIGURED MSG_DROP_INSTEAD,
	    "the same files with the ctx");
	one("null_ctx_down", 0, "CREATE TABLE t ();\n", "DROP SCHEMA x;\n");
	refused(NULL, 1,
	    "@/0001.sql:7: DROP SCHEMA x" MSG_NOT_OWN MSG_DROP_INSTEAD,
	    "ctx NULL: own-up rule");

	/* How the up's schemas are recorded: a rename's new name is not the
	 * migration's own schema, a plain CREATE SCHEMA is. */
	one("created_kinds", 0,
	    "ALTER SCHEMA legacy RENAME TO renamed;\n"	/* 5 */
	    "CREATE SCHEMA mine;\n"			/* 6 */
	    "CREATE SCHEMA IF NOT EXISTS maybe;\n"	/* 7 */
	    "ALTER SCHEMA mine RENAME TO mine2;\n"	/* 8 */
	    "ALTER SCHEMA mine2 RENAME TO mine;\n", NULL);	/* 9 */
	loads(&ctx_base, "rename, CREATE, IF NOT EXISTS");
	if (rs != NULL) {
		const struct sqlscan	*sc = revset_section(rs, 0, 1);
		int			 renamed = -1, mine = -1, maybe = -1;
		size_t			 k;

		for (k = 0; k < sc->n_schemas; k++) {
			if (strcmp(sc->schemas[k].name, "renamed") == 0)
				renamed = sc->schemas[k].created;
			else if (strcmp(sc->schemas[k].name, "mine") == 0)
				mine = sc->schemas[k].created;
			else if (strcmp(sc->schemas[k].name, "maybe") == 0)
				maybe = sc->schemas[k].created;
		}
		is_int(renamed, SQLSCAN_RENAMED_TO,
		    "a rename's new name: SQLSCAN_RENAMED_TO (2)");
		is_int(mine, SQLSCAN_CREATED, "CREATE SCHEMA mine, renamed "
		    "away and back: SQLSCAN_CREATED (1) outranks the rename");
		is_int(maybe, 0,
		    "CREATE SCHEMA IF NOT EXISTS: not created (0)");
	}

	/*
	 * docs/migrations.md: a down may drop only what its up creates with
	 * a plain CREATE SCHEMA.  A schema the up renamed holds the old
	 * schema's data: dropping it in the down loses that data.
	 */
	one("rename_drop", 0, "ALTER SCHEMA legacy RENAME TO renamed;\n",
	    "DROP SCHEMA renamed CASCADE;\n");		/* 7 */
	refused(&ctx_base, 1,
	    "@/0001.sql:7: DROP SCHEMA renamed" MSG_NOT_OWN MSG_DROP_INSTEAD,
	    "down drops the schema its up renamed to (legacy's data)");

	/* A schema the up created, renamed away and back, is still its own. */
	one("create_rename_drop", 0,
	    "CREATE SCHEMA mine;\n"
	    "ALTER SCHEMA mine RENAME TO mine2;\n"
	    "ALTER SCHEMA mine2 RENAME TO mine;\n",
	    "DROP SCHEMA mine CASCADE;\n");
	loads(&ctx_base, "down drops the schema its up created, then renamed "
	    "back");

	/*
	 * A rename there and back is reversible: the down gives legacy its
	 * data back under its own name, nothing is lost.
	 */
	one("rename_back", 0, "ALTER SCHEMA legacy RENAME TO renamed;\n",
	    "ALTER SCHEMA renamed RENAME TO legacy;\n");	/* 7 */
	{
		int	 rc = load(&ctx_base);

		ok(rc == 0 && el.n == 0, "rename and rename back: loads");
		printf("#   got: rc %d, '%s'\n", rc, said);
	}

	/* Stricter than the documented rules, which name DROP SCHEMA only:
	 * a down's rename of a schema its up did not create is refused, with
	 * no advice to drop objects. */
	one("rename_down", 0, "CREATE TABLE t ();\n",
	    "ALTER SCHEMA other RENAME TO other_old;\n");	/* 7 */
	refused(&ctx_base, 1,
	    "@/0001.sql:7: ALTER SCHEMA ... RENAME other" MSG_NOT_OWN,
	    "down renames a schema its up did not create");

	/* The down may rename a schema its own up created. */
	one("rename_own_down", 0, "CREATE SCHEMA mine;\n",
	    "ALTER SCHEMA mine RENAME TO mine_old;\n");
	loads(&ctx_base, "down renames the schema its up created");
}

/* SQL the parser refuses: newer SQL for a newer server, else an error. */
/* COPY to or from the client is refused where it stands, in either
 * section and mode; COPY with a server file is not. */
static void
test_copy_client(void)
{
	one("copy", 0,
	    "CREATE TABLE t (a int);\n"			/* 5 */
	    "COPY t FROM STDIN;\n"				/* 6 */
	    "COPY t TO '/srv/t';\n",				/* 7 */
	    "COPY (SELECT 1) TO STDOUT;\n");			/* 9 */
	refused(&ctx_base, 2, "@/0001.sql:6: COPY ... FROM STDIN: a migration "
	    "cannot copy from the client, migd has no rows to send; write them "
	    "as INSERT ... VALUES, or COPY FROM a file on the server\n"
	    "@/0001.sql:9: COPY ... TO STDOUT: a migration cannot copy to the "
	    "client, nobody reads the rows; COPY TO a file on the server, or "
	    "remove it", "COPY with the client");
	one("copy_bare", 1, "VACUUM;\nCOPY t TO STDOUT;\n", NULL);
	refused(&ctx_base, 1, "@/0001.sql:6: COPY ... TO STDOUT: a migration "
	    "cannot copy to the client, nobody reads the rows; COPY TO a file "
	    "on the server, or remove it", "COPY in a bare section");
	one("copy_inline", 0, "COPY t FROM stdin;\n1\n\\.\n", NULL);
	is_int(load(&ctx_base), -1, "inline rows: refused");
	ok(strstr(said, "/0001.sql:5: COPY ... FROM STDIN followed by rows") !=
	    NULL, "inline rows: at the COPY's line: %s", said);
	one("copy_file", 0, "CREATE TABLE t (a int);\nCOPY t FROM '/srv/t';\n",
	    "COPY t TO PROGRAM 'cat';\n");
	loads(&ctx_base, "COPY with a server file");
}

static void
test_newer_sql(void)
{
	struct revset_ctx	 ctx = ctx_base;
	struct errlist		 notes = { NULL, 0 };
	char			*got, *want, *name;
	static const int	 vs[] = { 160000, 180001 }, l5[] = { 5 };
	size_t			 i;
	int			 major = sqlscan_parser_version() / 10000;

	ok(major == 15, "libpg_query's grammar is PostgreSQL 15's (%d)",
	    sqlscan_parser_version());
	is_int(revset_newer_sql(0), 0, "newer_sql(0): unknown is not newer");
	is_int(revset_newer_sql(140000), 0, "newer_sql(140000): older");
	is_int(revset_newer_sql(150004), 0, "newer_sql(150004): same major");
	is_int(revset_newer_sql(159999), 0, "newer_sql(159999): same major");
	is_int(revset_newer_sql(160000), 1, "newer_sql(160000): newer");
	is_int(revset_newer_sql(180001), 1, "newer_sql(180001): newer");
	is_int(revset_newer_sql(sqlscan_parser_version()), 0,
	    "newer_sql(the parser's own version): not newer");

	one("newer", 0,
	    "CREATE TABLE t (a int);\n"			/* 5 */
	    "SELECT * FROM (SELECT 1);\n",		/* 6 */
	    "ALTER TABLE t ADD CONSTRAINT c NOT NULL a;\n");	/* 8 */

	/* No server known: loads, and says which sections it could not read. */
	ctx.server_version = 0;
	loads(&ctx, "newer SQL, no server");
	if (rs != NULL) {
		is_int(rs->server_version, 0, "no server: recorded as 0");
		is_int(rs->n_unparsed, 2, "no server: 2 sections unparsed");
		revset_unparsed(rs, &notes);
		got = errlist_join(&notes, "\n");
		want = expand("@/0001.sql:6: subquery in FROM must have an "
		    "alias\n@/0001.sql:8: syntax error at or near \"NOT\"");
		is_str(got, want, "no server: revset_unparsed, PATH:LINE each");
		free(got);
		free(want);
		errlist_clear(&notes);
	}
	loads(NULL, "newer SQL, ctx NULL");
	if (rs != NULL) {
		is_int(rs->server_version, 0, "ctx NULL: recorded as 0");
		is_int(rs->n_unparsed, 2, "ctx NULL: 2 sections unparsed");
	}

	/* The parser's own version: a genuine error in an up section. */
	ctx.server_version = 150004;
	refused(&ctx, 1, "@/0001.sql:6: subquery in FROM must have an alias",
	    "PostgreSQL 15: unparsable up refused with the parser's message");
	ctx.server_version = 140011;
	refused(&ctx, 1, "@/0001.sql:6: subquery in FROM must have an alias",
	    "PostgreSQL 14: unparsable up refused");

	/* ... but a down section still loads: the plan judges it. */
	one("newer_down", 0, "CREATE TABLE t (a int);\n",
	    "-- newer\n"				/* 7 */
	    "ALTER TABLE t\n"				/* 8 */
	    "  ADD CONSTRAINT c NOT NULL a;\n");	/* 9 */
	ctx.server_version = 150004;
	loads(&ctx, "PostgreSQL 15: unparsable down loads");
	if (rs != NULL) {
		is_int(rs->server_version, 150004, "PostgreSQL 15: recorded");
		is_int(rs->n_unparsed, 1, "PostgreSQL 15: 1 section unparsed");
		ok(!revset_section(rs, 0, 1)->unparsed &&
		    revset_section(rs, 0, 0)->unparsed,
		    "PostgreSQL 15: the down is the unparsed one");
		revset_unparsed(rs, &notes);
		got = errlist_join(&notes, "\n");
		want = expand("@/0001.sql:9: syntax error at or near \"NOT\"");
		is_str(got, want, "PostgreSQL 15: revset_unparsed names it");
		free(got);
		free(want);
		errlist_clear(&notes);
	}

	one("newer_up", 0, "SELECT * FROM (SELECT 1);\n", "SELECT 1;\n");
	for (i = 0; i < nitems(vs); i++) {
		ctx.server_version = vs[i];
		name = xprintf("server %d: newer SQL", vs[i]);
		loads(&ctx, name);
		free(name);
		if (rs == NULL)
			continue;
		is_int(rs->server_version, vs[i], "server %d: recorded",
		    vs[i]);
		is_int(rs->n_unparsed, 1, "server %d: 1 section unparsed",
		    vs[i]);
		is_int(revset_transactional(rs, 0, 1), 1,
		    "server %d: unparsed up treated as transactional", vs[i]);
		segments(1, 1, l5, "server: unparsed up, one segment");
	}

	/*
	 * The scanner's statements are flagged for the transaction control
	 * their first words show: a COMMIT in an unparsed transactional
	 * section splits it, so migd's transactions stay whole.
	 */
	one("newer_commit", 0,
	    "SELECT * FROM (SELECT 1);\n"		/* 5 */
	    "COMMIT;\n"				/* 6 */
	    "CREATE TABLE t (a int);\n", NULL);	/* 7 */
	ctx.server_version = 160000;
	loads(&ctx, "unparsed section with COMMIT");
	{
		static const int	 l5_7[] = { 5, 7 };

		segments(1, 2, l5_7, "unparsed section with COMMIT: split");
	}

	/* BEGIN; ... COMMIT AND CHAIN; ... COMMIT; around PostgreSQL 16's
	 * SQL: the same segments as parsed SQL would give. */
	one("newer_tx", 0,
	    "BEGIN;\n"					/* 5 */
	    "SELECT * FROM (SELECT 1);\n"		/* 6 */
	    "COMMIT AND CHAIN;\n"			/* 7 */
	    "-- the next one\n"				/* 8 */
	    "CREATE TABLE t (a int);\n"			/* 9 */
	    "COMMIT;\n"					/* 10 */
	    "INSERT INTO t SELECT * FROM (SELECT 1);\n"	/* 11 */
	    "end;\n", NULL);				/* 12 */
	ctx.server_version = 160000;
	loads(&ctx, "unparsed BEGIN..COMMIT AND CHAIN..COMMIT, server 16");
	if (rs != NULL) {
		const struct sqlscan	*sc = revset_section(rs, 0, 1);
		static const int	 lines[] = { 5, 6, 7, 9, 10, 11, 12 };
		static const int	 flags[] = {
			SQLSCAN_TX_CONTROL | SQLSCAN_TX_BEGIN,
			0,
			SQLSCAN_TX_CONTROL | SQLSCAN_TX_COMMIT |
			    SQLSCAN_TX_CHAIN,
			0,
			SQLSCAN_TX_CONTROL | SQLSCAN_TX_COMMIT,
			0,
			SQLSCAN_TX_CONTROL | SQLSCAN_TX_COMMIT,
		};
		static const char *const whats[] = { "BEGIN", NULL,
		    "COMMIT AND CHAIN", NULL, "COMMIT", NULL, "COMMIT" };
		size_t			 k;

		is_int(sc->unparsed, 1, "newer_tx: the up is unparsed");
		is_int(rs->n_unparsed, 1, "newer_tx: 1 section unparsed");
		is_int(revset_transactional(rs, 0, 1), 1,
		    "newer_tx: transactional");
		ok(revset_no_tx_stmt(rs, 0, 1) == NULL,
		    "newer_tx: no statement forbids a transaction");
		is_int(sc->n_stmts, nitems(lines), "newer_tx: %zu statements",
		    nitems(lines));
		for (k = 0; k < sc->n_stmts && k < nitems(lines); k++) {
			is_int(sc->stmts[k].line, lines[k],
			    "newer_tx: statement %zu at line %d", k + 1,
			    lines[k]);
			is_int(sc->stmts[k].flags, flags[k],
			    "newer_tx: statement %zu flags 0x%x", k + 1,
			    flags[k]);
			is_str(sc->stmts[k].what, whats[k],
			    "newer_tx: statement %zu what", k + 1);
		}
		is_int(sc->flags, SQLSCAN_TX_CONTROL | SQLSCAN_TX_BEGIN |
		    SQLSCAN_TX_COMMIT | SQLSCAN_TX_CHAIN,
		    "newer_tx: section flags are the OR");
	}
	{
		static const int	 l6_9_11[] = { 6, 9, 11 };

		segments(1, 3, l6_9_11, "newer_tx: 3 segments at 6, 9, 11");
	}

	/* With no server known the section is unparsed just the same. */
	ctx.server_version = 0;
	loads(&ctx, "unparsed BEGIN..COMMIT, no server");
	{
		static const int	 l6_9_11[] = { 6, 9, 11 };

		segments(1, 3, l6_9_11, "newer_tx, no server: 3 segments");
	}

	/* ... and the rules of transaction control apply to it. */
	one("newer_refused", 0,
	    "CREATE TABLE t (a int);\n"			/* 5 */
	    "SELECT * FROM (SELECT 1);\n"		/* 6 */
	    "ROLLBACK;\n"				/* 7 */
	    "BEGIN;\n"					/* 8 */
	    "abort;\n"					/* 9 */
	    "PREPARE TRANSACTION 'p';\n"		/* 10 */
	    "ROLLBACK TO SAVEPOINT s;\n"		/* 11 */
	    "COMMIT;\n",				/* 12 */
	    "SELECT * FROM (SELECT 1);\n"		/* 14 */
	    "ROLLBACK AND CHAIN;\n");			/* 15 */
	ctx.server_version = 160000;
	refused(&ctx, 5,
	    "@/0001.sql:7: ROLLBACK" MSG_ROLLBACK_TX "\n"
	    "@/0001.sql:8: BEGIN while a transaction is already open (since "
	    "line 5): PostgreSQL would ignore it; remove it, or end the "
	    "transaction first with COMMIT\n"
	    "@/0001.sql:9: ROLLBACK" MSG_ROLLBACK_TX "\n"
	    "@/0001.sql:10: PREPARE TRANSACTION inside a migration: two-phase "
	    "commit cannot be part of a migration; remove it\n"
	    "@/0001.sql:15: ROLLBACK AND CHAIN" MSG_ROLLBACK_TX,
	    "unparsed, server 16: ROLLBACK, BEGIN while open, PREPARE refused");
	ctx.server_version = 0;
	refused(&ctx, 5,
	    "@/0001.sql:7: ROLLBACK" MSG_ROLLBACK_TX "\n"
	    "@/0001.sql:8: BEGIN while a transaction is already open (since "
	    "line 5): PostgreSQL would ignore it; remove it, or end the "
	    "transaction first with COMMIT\n"
	    "@/0001.sql:9: ROLLBACK" MSG_ROLLBACK_TX "\n"
	    "@/0001.sql:10: PREPARE TRANSACTION inside a migration: two-phase "
	    "commit cannot be part of a migration; remove it\n"
	    "@/0001.sql:15: ROLLBACK AND CHAIN" MSG_ROLLBACK_TX,
	    "unparsed, no server: the same");

	/* transaction: none: the bare rules, on the scanner's statements. */
	one("newer_bare", 1,
	    "SELECT * FROM (SELECT 1);\n"		/* 5 */
	    "COMMIT AND CHAIN;\n"			/* 6 */
	    "SAVEPOINT s;\n"				/* 7 */
	    "ROLLBACK;\n"				/* 8 */
	    "BEGIN;\n"					/* 9 */
	    "SELECT * FROM (SELECT 1);\n", NULL);	/* 10 */
	ctx.server_version = 180001;
	refused(&ctx, 4,
	    "@/0001.sql:6: COMMIT AND CHAIN with no transaction open: in a "
	    "non-transactional migration each statement commits by itself; "
	    "add BEGIN before the statements it should end\n"
	    "@/0001.sql:7: SAVEPOINT with no transaction open: in a "
	    "non-transactional migration each statement commits by itself; "
	    "add BEGIN before it\n"
	    "@/0001.sql:8: ROLLBACK" MSG_ROLLBACK_BARE "\n"
	    "@/0001.sql:9: the transaction begun here is never committed: add "
	    "COMMIT at the end of the section",
	    "unparsed, transaction: none, server 18: the bare rules");

	/* COMMIT PREPARED cannot run in a transaction, unparsed or not. */
	one("newer_prepared", 0,
	    "SELECT * FROM (SELECT 1);\n"		/* 5 */
	    "COMMIT PREPARED 'p';\n", NULL);		/* 6 */
	ctx.server_version = 160000;
	refused(&ctx, 1,
	    "@/0001.sql:6: COMMIT PREPARED inside a migration: two-phase "
	    "commit cannot be part of a migration; remove it",
	    "unparsed COMMIT PREPARED refused");

	/* Parsed SQL: the version is recorded, nothing unparsed. */
	one("parsed", 0, "SELECT 1;\n", NULL);
	ctx.server_version = 150004;
	loads(&ctx, "parsed SQL, PostgreSQL 15");
	if (rs != NULL) {
		is_int(rs->server_version, 150004, "parsed: version recorded");
		is_int(rs->n_unparsed, 0, "parsed: nothing unparsed");
		revset_unparsed(rs, &notes);
		is_int(notes.n, 0, "parsed: revset_unparsed adds nothing");
	}

	/* What not even the scanner reads is wrong for every server. */
	one("unterminated", 0, "CREATE TABLE t (a int);\nSELECT 'abc\n",
	    NULL);
	{
		static const int	 all[] = { 0, 150004, 160000, 180001 };

		for (i = 0; i < nitems(all); i++) {
			ctx.server_version = all[i];
			name = xprintf("unterminated string, server %d",
			    all[i]);
			refused(&ctx, 1, "@/0001.sql:6: unterminated quoted "
			    "string at or near \"'abc\n\"", name);
			free(name);
		}
		refused(NULL, 1, "@/0001.sql:6: unterminated quoted string at "
		    "or near \"'abc\n\"", "unterminated string, ctx NULL");
	}

	/* The schema rules need the up's analysis: without it the down's
	 * DROP SCHEMA is left to the run-time check. */
	one("newer_drop", 0, "SELECT * FROM (SELECT 1);\n",
	    "DROP SCHEMA utils;\n");
	ctx.server_version = 160000;
	loads(&ctx, "unparsed up: its down's DROP SCHEMA not judged");
	one("newer_drop_managed", 0, "SELECT * FROM (SELECT 1);\n",
	    "DROP SCHEMA cars;\n");			/* 7 */
	refused(&ctx, 1,
	    "@/0001.sql:7: DROP SCHEMA cars" MSG_CONFIGURED MSG_DROP_INSTEAD,
	    "unparsed up: managed schema still refused in down");
}

/* Every problem of every file at once (docs/migrations.md). */
static void
test_all_at_once(void)
{
	struct revset_ctx	 ctx = ctx_base;

	newcase("two_files");
	mig("0001.sql", "0001", "none", 0, "ROLLBACK;\n",
	    "DROP SCHEMA cars;\n");			/* 5, 7 */
	mig("0002.sql", "0002", "0001", 1, "BEGIN;\n",
	    "COMMIT AND CHAIN;\n");
	refused(&ctx, 4,
	    "@/0001.sql:5: ROLLBACK" MSG_ROLLBACK_TX "\n"
	    "@/0001.sql:7: DROP SCHEMA cars" MSG_CONFIGURED MSG_DROP_INSTEAD
	    "\n"
	    "@/0002.sql:5: the transaction begun here is never committed: add "
	    "COMMIT at the end of the section\n"
	    "@/0002.sql:7: COMMIT AND CHAIN with no transaction open: in a "
	    "non-transactional migration each statement commits by itself; "
	    "add BEGIN before the statements it should end",
	    "errors of both files and both sections");

	/* One section that does not parse must not hide the other's
	 * problems. */
	one("hidden", 0,
	    "ROLLBACK;\n"				/* 5 */
	    "DROP SCHEMA cars;\n",			/* 6 */
	    "SELECT 'abc\n");				/* 8 */
	ctx.server_version = 150004;
	refused(&ctx, 3,
	    "@/0001.sql:5: ROLLBACK" MSG_ROLLBACK_TX "\n"
	    "@/0001.sql:6: DROP SCHEMA cars" MSG_CONFIGURED MSG_DROP_INSTEAD
	    "\n"
	    "@/0001.sql:8: unterminated quoted string at or near \"'abc\n\"",
	    "unreadable down: its error and the up's 2 problems");

	/* A broken up section, and a down section with ROLLBACK: both said.
	 * The down's own-up rule needs the up's analysis and is left out;
	 * the managed-schema rule is not. */
	one("hidden_down", 0,
	    "SELECT * FROM (SELECT 1);\n",		/* 5 */
	    "ROLLBACK;\n"				/* 7 */
	    "DROP SCHEMA cars;\n"			/* 8 */
	    "DROP SCHEMA other;\n");			/* 9 */
	ctx.server_version = 150004;
	refused(&ctx, 3,
	    "@/0001.sql:5: subquery in FROM must have an alias\n"
	    "@/0001.sql:7: ROLLBACK" MSG_ROLLBACK_TX "\n"
	    "@/0001.sql:8: DROP SCHEMA cars" MSG_CONFIGURED MSG_DROP_INSTEAD,
	    "PostgreSQL 15, unparsable up: the down's ROLLBACK too");

	one("hidden_down_unread", 1,
	    "CREATE TABLE t (a int);\n"			/* 5 */
	    "SELECT 'abc;\n",				/* 6 */
	    "ROLLBACK;\n"				/* 8 */
	    "BEGIN;\n");				/* 9 */
	ctx.server_version = 0;
	refused(&ctx, 3,
	    "@/0001.sql:6: unterminated quoted string at or near \"'abc;\n\""
	    "\n"
	    "@/0001.sql:8: ROLLBACK" MSG_ROLLBACK_BARE "\n"
	    "@/0001.sql:9: the transaction begun here is never committed: add "
	    "COMMIT at the end of the section",
	    "unreadable up (transaction: none): the down's problems too");
}

/* Writes a file of any text into the case's directory. */
static void
raw(const char *file, const char *text)
{
	char	*path = xprintf("%s/%s", cur, file);
	FILE	*f;

	if ((f = fopen(path, "w")) == NULL || fputs(text, f) == EOF ||
	    fclose(f) == EOF) {
		perror(path);
		exit(2);
	}
	free(path);
}

/* Header problems, SQL problems and graph problems of every file come in
 * one pass: a file whose header is broken still has its SQL checked. */
static void
test_one_pass(void)
{
	struct revset_ctx	 ctx = ctx_base;
	char			*path;

	newcase("one_pass");
	/* A header problem and an SQL problem in the same file. */
	raw("0001.sql", "-- revision: 0001\n-- down_revision: none\n"
	    "-- mesage: typo\n\n-- migrate:up\nROLLBACK;\n");
	/* An SQL problem in a valid file. */
	mig("0002.sql", "0002", "0001", 0, "ROLLBACK;\n", NULL);
	/* A graph problem: an unknown parent. */
	mig("0003.sql", "0003", "0404", 0, "SELECT 1;\n", NULL);
	refused(&ctx, 4,
	    "@/0001.sql:3: unknown header 'mesage' (known: revision, "
	    "down_revision, message, transaction, depends_on, "
	    "branch_labels, unfinished)\n"
	    "@/0001.sql:6: ROLLBACK" MSG_ROLLBACK_TX "\n"
	    "@/0002.sql:5: ROLLBACK" MSG_ROLLBACK_TX "\n"
	    "@/0003.sql:2: down_revision '0404' names no known revision",
	    "one pass: header, SQL of that file and others, graph");

	/* A broken file with an id stays in the graph: its children are
	 * not told that their parent is unknown, and a cycle through it is
	 * found. */
	newcase("one_pass_graph");
	raw("0001.sql", "-- revision: 0001\n-- down_revision: 0002\n"
	    "-- transaction: maybe\n\n-- migrate:up\nSELECT 1;\n");
	mig("0002.sql", "0002", "0001", 0, "SELECT 1;\n", NULL);
	refused(&ctx, 2,
	    "@/0001.sql:3: invalid transaction 'maybe' (allowed: auto, none)\n"
	    "@/0001.sql:2: revision cycle: 0001 -> 0002 -> 0001",
	    "one pass: a broken file with an id is placed in the graph");

	/* Without a readable id a file cannot be placed: ids no placed file
	 * defines might be its own, and wait for the next pass. */
	newcase("one_pass_unplaced");
	raw("bad id.sql", "-- down_revision: none\n\n-- migrate:up\n"
	    "ROLLBACK;\n");
	mig("0002.sql", "0002", "bad", 0, "SELECT 1;\n", NULL);
	mig("0003.sql", "0002", "none", 0, "SELECT 1;\n", NULL);
	refused(&ctx, 3,
	    "@/bad id.sql:1: revision 'bad id' taken from the file name is "
	    "invalid: it contains a blank (allowed: letters, digits, '_', "
	    "'.', '-') (add a '-- revision: ID' header or rename the file)\n"
	    "@/bad id.sql:4: ROLLBACK" MSG_ROLLBACK_TX "\n"
	    "@/0003.sql:1: duplicate revision '0002' (first defined at "
	    "@/0002.sql:1)",
	    "one pass: an unplaced file's SQL, the others' graph");

	/* A file that cannot be read at all (here: writable by others) does
	 * not hide the other files' problems. */
	newcase("one_pass_unread");
	mig("0001.sql", "0001", "none", 0, "SELECT 1;\n", NULL);
	mig("0002.sql", "0002", "0001", 0, "ROLLBACK;\n", NULL);
	path = xprintf("%s/0001.sql", cur);
	if (chmod(path, 0666) == -1) {
		perror(path);
		exit(2);
	}
	refused(&ctx, 2,
	    "@/0001.sql: refusing a migrations file writable by other users "
	    "(owner <me>, mode 0666): chmod o-w @/0001.sql\n"
	    "@/0002.sql:5: ROLLBACK" MSG_ROLLBACK_TX,
	    "one pass: an unreadable file, and another's SQL");
	free(path);
}

/* The schemas a plan needs (migd's run and `migctl upgrade --sql` share
 * revset_plan_schemas), and the graph listing of `revisions`. */
static void
test_plan_schemas(void)
{
	static char *const	 conf[] = { "cars", "zed", "b" };
	struct graph_plan	 plan;
	const char		**names;
	char			*cause = NULL, *s, *t;
	json_t			*j;
	size_t			 n, i;

	newcase("plan_schemas");
	mig("0001.sql", "0001", "none", 0, "CREATE SCHEMA own;\n"
	    "CREATE TABLE own.t (a int);\nCREATE TABLE b.t (a int);\n"
	    "CREATE TABLE cars.x (a int);\n", "ALTER TABLE b.t ADD c int;\n");
	mig("0002.sql", "0002", "0001", 0, "CREATE TABLE a.t (a int);\n"
	    "CREATE TABLE \"B\".u (a int);\nCREATE TABLE b.u (a int);\n",
	    "ALTER TABLE a.t ADD c int;\n");
	loads(&ctx_base, "plan_schemas");
	if (rs == NULL)
		return;
	memset(&plan, 0, sizeof plan);
	ok(graph_plan(rs->graph, NULL, 0, "head", GRAPH_UP, &plan, &cause) ==
	    0, "plan_schemas: planned");
	n = revset_plan_schemas(rs, &plan, conf, 3, &names);
	s = xstrdup("");
	for (i = 0; i < n; i++) {
		t = xprintf("%s%s%s", s, i ? " " : "", names[i]);
		free(s);
		s = t;
	}
	is_str(s, "cars zed b a B", "plan_schemas: configured first, then as "
	    "named, once each, not the one a step creates");
	free(s);
	free(names);
	n = revset_plan_schemas(rs, &plan, NULL, 0, &names);
	is_int(n, 4, "plan_schemas: without configured schemas");
	free(names);
	graph_plan_clear(&plan);
	ok(graph_plan(rs->graph, (const char *const[]){ "0002" }, 1, "base",
	    GRAPH_DOWN, &plan, &cause) == 0, "plan_schemas: down planned");
	n = revset_plan_schemas(rs, &plan, NULL, 0, &names);
	is_int(n, 2, "plan_schemas: down sections name a and b");
	if (n == 2)
		ok(strcmp(names[0], "a") == 0 && strcmp(names[1], "b") == 0,
		    "plan_schemas: in step order (0002's down first)");
	free(names);
	graph_plan_clear(&plan);
	free(cause);

	j = revset_revisions_json(rs);
	s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	t = expand("{\"revisions\":[{\"branchpoint\":false,\"depends_on\":[],"
	    "\"file\":\"@/0002.sql\",\"head\":true,\"mergepoint\":false,"
	    "\"message\":\"\",\"parents\":[\"0001\"],\"revision\":\"0002\"},"
	    "{\"branchpoint\":false,\"depends_on\":[],\"file\":\"@/0001.sql\","
	    "\"head\":false,\"mergepoint\":false,\"message\":\"\",\"parents\":"
	    "[],\"revision\":\"0001\"}]}");
	is_str(s, t, "revisions: newest first, with parents and marks");
	free(s);
	free(t);
	json_decref(j);
}

/* A load after an edit reuses the unchanged files (the same objects, their
 * analysis copied) and reads the edited one; a refused load says what it
 * read, to watch. */
static void
test_reuse(void)
{
	struct revset	*first = NULL, *second = NULL;
	struct migcache	 cache;
	struct migset	 seen;
	struct errlist	 e = { NULL, 0 };
	size_t		 i, same = 0;

	newcase("reuse");
	mig("0001.sql", "0001", "none", 0, "CREATE SCHEMA s1;\n", NULL);
	mig("0002.sql", "0002", "0001", 0, "CREATE TABLE s1.a (i int);\n"
	    "VACUUM;\n", NULL);
	mig("0003.sql", "0003", "0002", 0, "SELECT 1;\n", NULL);
	ok(revset_load_from(cur, &ctx_base, NULL, NULL, &first, NULL, &e) ==
	    0, "first load");
	mig("0003.sql", "0003", "0002", 0, "SELECT 1;\nSELECT 2;\n", NULL);
	migcache_init(&cache, first->set.files, first->set.n);
	ok(revset_load_from(cur, &ctx_base, first, &cache, &second, NULL,
	    &e) == 0, "second load");
	is_int(cache.taken, 2, "two files reused");
	migcache_clear(&cache);
	for (i = 0; second != NULL && i < 3; i++)
		same += second->set.files[i] == first->set.files[i];
	is_int(same, 2, "the same objects");
	ok(second != NULL && revset_section(second, 1, 1)->n_stmts == 2 &&
	    revset_section(second, 1, 1)->stmts[1].flags == SQLSCAN_NO_TX &&
	    revset_section(second, 1, 1)->stmts != revset_section(first, 1,
	    1)->stmts, "their analysis copied");
	ok(second != NULL && !revset_transactional(second, 1, 1),
	    "and judged again");
	ok(second != NULL && revset_section(second, 2, 1)->n_stmts == 2,
	    "the edited one read again");
	revset_unref(first);
	ok(second != NULL && strcmp(revset_file(second, 0)->revision, "0001") ==
	    0, "a reused file outlives the first set");

	/* Refused (an unknown parent): seen has the directory and the files. */
	mig("0004.sql", "0004", "0009", 0, "SELECT 1;\n", NULL);
	ok(revset_load_from(cur, &ctx_base, second, NULL, &first, &seen, &e) ==
	    -1 && first == NULL, "a broken file refuses the set");
	ok(seen.n_dirs == 1 && strcmp(seen.dirs[0], cur) == 0 && seen.n +
	    seen.n_broken == 4, "seen: the directory and the four files");
	migset_clear(&seen);
	revset_unref(second);
	errlist_clear(&e);
}

/* A load of many files is parsed on several threads: every file's
 * sections are analysed, and the problems come in file order, each
 * section's own in its order, as from one thread. */
static void
test_many_files(void)
{
	struct errlist	 want = { NULL, 0 };
	char		 file[32], id[16], parent[16], *up, *w;
	size_t		 i, n = 300, bad = 0;

	newcase("many");
	for (i = 0; i < n; i++) {
		snprintf(file, sizeof file, "%04zu.sql", i);
		snprintf(id, sizeof id, "r%04zu", i);
		snprintf(parent, sizeof parent, "r%04zu", i - 1);
		if (i % 37 == 5) {
			/* Two problems in one section, one in its down. */
			up = xstrdup("SAVEPOINT a;\nROLLBACK;\nROLLBACK;\n");
			errlist_add(&want, "@/%s:6: ROLLBACK inside a migration "
			    "would throw its work away while migd records it as "
			    "applied; remove it (a failing statement rolls the "
			    "migration back by itself), or use SAVEPOINT and "
			    "ROLLBACK TO", file);
			errlist_add(&want, "@/%s:7: ROLLBACK inside a migration "
			    "would throw its work away while migd records it as "
			    "applied; remove it (a failing statement rolls the "
			    "migration back by itself), or use SAVEPOINT and "
			    "ROLLBACK TO", file);
			errlist_add(&want, "@/%s:10: ROLLBACK inside a "
			    "migration would throw its work away while migd "
			    "records it as applied; remove it (a failing "
			    "statement rolls the migration back by itself), or "
			    "use SAVEPOINT and ROLLBACK TO", file);
			bad++;
		} else
			up = xprintf("CREATE TABLE t%zu (id int);\n", i);
		mig(file, id, i == 0 ? "none" : parent, 0, up, i % 37 == 5 ?
		    "SELECT 1;\nROLLBACK;\n" : "DROP TABLE x;\n");
		free(up);
	}
	w = errlist_join(&want, "\n");
	refused(&ctx_base, 3 * bad, w, "300 files, problems in 9");
	free(w);
	errlist_clear(&want);
	for (i = 0; i < n; i++) {
		if (i % 37 != 5)
			continue;
		snprintf(file, sizeof file, "%04zu.sql", i);
		snprintf(id, sizeof id, "r%04zu", i);
		snprintf(parent, sizeof parent, "r%04zu", i - 1);
		mig(file, id, i == 0 ? "none" : parent, 0,
		    "SELECT 1;\n", "SELECT 2;\n");
	}
	loads(&ctx_base, "300 files, fixed");
	ok(rs != NULL && revset_count(rs) == n && rs->up[n - 1].n_stmts == 1 &&
	    rs->down[n - 1].n_stmts == 1 && rs->up[5].n_stmts == 1,
	    "300 files: every section analysed");
}

/* Another tool's two files per migration, read on several threads: a
 * down file others may write and a FIFO in a pair's place are said first,
 * in file order (as the files were met), then every section's SQL, each
 * file's up before its down; fixed, every section of the 200 is there. */
static void
test_many_pairs(void)
{
	struct revset_ctx	 ctx = ctx_base;
	struct errlist		 want = { NULL, 0 }, sql = { NULL, 0 };
	char			 file[64], *path, *w;
	size_t			 i, n = 200, k;

	ctx.format = LAYOUT_GOLANG_MIGRATE;
	newcase("pairs");
	for (i = 1; i <= n; i++) {
		snprintf(file, sizeof file, "%06zu_t.up.sql", i);
		if (i % 37 == 5) {
			raw(file, "ROLLBACK;\n");
			errlist_add(&sql, "@/%s:1: ROLLBACK" MSG_ROLLBACK_TX,
			    file);
		} else
			raw(file, "CREATE TABLE t (a int);\n");
		snprintf(file, sizeof file, "%06zu_t.down.sql", i);
		if (i % 61 == 30) {
			path = xprintf("%s/%s", cur, file);
			if (mkfifo(path, 0644) == -1) {
				perror(path);
				exit(2);
			}
			free(path);
			errlist_add(&want, "@/%s: not a regular file", file);
			continue;
		}
		raw(file, i % 37 == 5 ? "SELECT 1;\nROLLBACK;\n" :
		    "DROP TABLE t;\n");
		if (i % 37 == 5)
			errlist_add(&sql, "@/%s:2: ROLLBACK" MSG_ROLLBACK_TX,
			    file);
		if (i % 50 == 17) {
			path = xprintf("%s/%s", cur, file);
			if (chmod(path, 0646) == -1) {
				perror(path);
				exit(2);
			}
			free(path);
			errlist_add(&want, "@/%s: refusing a migrations file "
			    "writable by other users (owner <me>, mode 0646): "
			    "chmod o-w @/%s", file, file);
		}
	}
	for (k = 0; k < sql.n; k++)
		errlist_add(&want, "%s", sql.v[k]);
	w = errlist_join(&want, "\n");
	refused(&ctx, want.n, w, "200 pairs, 7 unread, 6 with problems");
	free(w);
	errlist_clear(&want);
	errlist_clear(&sql);

	/* Fixed: each revision's up and down analysed. */
	for (i = 1; i <= n; i++) {
		snprintf(file, sizeof file, "%06zu_t.up.sql", i);
		raw(file, "CREATE TABLE t (a int);\n");
		snprintf(file, sizeof file, "%06zu_t.down.sql", i);
		path = xprintf("%s/%s", cur, file);
		if (i % 61 == 30 && unlink(path) == -1) {
			perror(path);
			exit(2);
		}
		if (chmod(path, 0644) == -1 && errno != ENOENT) {
			perror(path);
			exit(2);
		}
		free(path);
		raw(file, "VACUUM;\n");
	}
	loads(&ctx, "200 pairs, fixed");
	for (i = k = 0; rs != NULL && i < revset_count(rs); i++)
		k += rs->up[i].n_stmts == 1 && rs->down[i].n_stmts == 1 &&
		    !revset_transactional(rs, i, 0) &&
		    revset_file(rs, i)->down_path != NULL;
	is_int(k, n, "200 pairs: every up and down analysed, with its path");
}

int
main(void)
{
	char	 tmpl[] = "/tmp/test_revset.XXXXXX";

	umask(022);
	if (mkdtemp(tmpl) == NULL) {
		perror("mkdtemp");
		return (2);
	}
	if (chmod(tmpl, 0755) == -1) {
		perror(tmpl);
		return (2);
	}
	top = tmpl;

	test_segments();
	test_tx_refused();
	test_savepoints();
	test_bare();
	test_schemas();
	test_copy_client();
	test_newer_sql();
	test_all_at_once();
	test_one_pass();
	test_plan_schemas();
	test_labels();
	test_reuse();
	test_many_files();
	test_many_pairs();

	revset_unref(rs);
	errlist_clear(&el);
	free(said);
	free(cur);
	if (nftw(top, rm_one, 16, FTW_DEPTH | FTW_PHYS) == -1)
		perror(top);
	return (done_testing());
}
