/*
 * Deploy-safety lint over libpg_query's parse tree (the JSON sqlscan has
 * already read with jansson: the SQL is parsed once).
 *
 * Rules carry Squawk's names where they are Squawk's rules, so that people
 * who know them recognise them; migd's own rules cover what a linter of
 * single files cannot see.  The locks are PostgreSQL's documented ones
 * (Explicit Locking, and each command's reference page).  This file holds
 * the rules and what each statement shows (events); lint_report.c judges
 * them in the run's context.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <pg_query.h>

#include "lint.h"
#include "sqlscan.h"
#include "util.h"

enum {
	LR_CONCURRENT_INDEX,
	LR_FOREIGN_KEY,
	LR_NOT_NULLABLE,
	LR_REQUIRED_FIELD,
	LR_FIELD_DEFAULT,
	LR_COLUMN_TYPE,
	LR_UNIQUE,
	LR_PRIMARY_KEY,
	LR_NOT_VALID,
	LR_RENAME_COLUMN,
	LR_RENAME_TABLE,
	LR_DROP_COLUMN,
	LR_DROP_TABLE,
	LR_DROP_DATABASE,
	LR_DROP_NOT_NULL,
	LR_INDEX_DELETION,
	LR_TRUNCATE_CASCADE,
	LR_CIC_IN_TX,
	LR_ROBUST,
	LR_DOMAIN_CREATE,
	LR_DOMAIN_ALTER,
	LR_INT,
	LR_SMALLINT,
	LR_IDENTITY,
	LR_TEXT,
	LR_TIMESTAMPTZ,
	LR_CHAR,
	LR_MANAGED_SCHEMA,
	LR_VACUUM_FULL,
	LR_CLUSTER,
	LR_ENUM_VALUE,
	LR_ATTACH,
	LR_DETACH,
	LR_REINDEX,
	LR_REWRITE,
	LR_REFRESH,
	LR_NRULES
};

#define AE	"ACCESS EXCLUSIVE"

const struct lint_rule lint_rules[LR_NRULES] = {
	[LR_CONCURRENT_INDEX] = { "require-concurrent-index-creation",
	    LINT_ERROR, "SHARE on the table (blocks writes) for the whole "
	    "build", "CREATE INDEX CONCURRENTLY, in a migration of its own",
	    "ShareLock", 1 },
	[LR_FOREIGN_KEY] = { "adding-foreign-key-constraint", LINT_ERROR,
	    "SHARE ROW EXCLUSIVE on both tables (blocks writes) while every "
	    "row is checked", "ADD CONSTRAINT ... NOT VALID, then VALIDATE "
	    "CONSTRAINT in a later migration",
	    "ShareRowExclusiveLock", 1 },
	[LR_NOT_NULLABLE] = { "adding-not-nullable-field", LINT_ERROR,
	    AE " (blocks reads and writes) while every row is checked",
	    "ADD CONSTRAINT ... CHECK (col IS NOT NULL) NOT VALID, VALIDATE it "
	    "in a later migration, then SET NOT NULL (PostgreSQL 12+ uses the "
	    "valid constraint and skips the scan)",
	    "AccessExclusiveLock", 1 },
	[LR_REQUIRED_FIELD] = { "adding-required-field", LINT_ERROR,
	    AE "; fails when the table has rows",
	    "add the column nullable or with a non-volatile DEFAULT",
	    "AccessExclusiveLock", 0 },
	[LR_FIELD_DEFAULT] = { "adding-field-with-default", LINT_ERROR,
	    AE " (blocks reads and writes) while the table is rewritten",
	    "add the column without the default (or with a constant one), "
	    "backfill in batches, then SET DEFAULT",
	    "AccessExclusiveLock", 1 },
	[LR_COLUMN_TYPE] = { "changing-column-type", LINT_ERROR,
	    AE " (blocks reads and writes) while the table and its indexes "
	    "are rewritten", "add a column of the new type, backfill it in "
	    "batches, switch readers and writers, then drop the old one",
	    "AccessExclusiveLock", 1 },
	[LR_UNIQUE] = { "disallowed-unique-constraint", LINT_ERROR,
	    AE " (blocks reads and writes) while the index is built",
	    "CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT ... UNIQUE "
	    "USING INDEX",
	    "AccessExclusiveLock", 1 },
	[LR_PRIMARY_KEY] = { "adding-serial-primary-key-field", LINT_ERROR,
	    AE " (blocks reads and writes) while the index is built",
	    "CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT ... "
	    "PRIMARY KEY USING INDEX",
	    "AccessExclusiveLock", 1 },
	[LR_NOT_VALID] = { "constraint-missing-not-valid", LINT_ERROR,
	    AE " (blocks reads and writes) while every row is checked",
	    "ADD CONSTRAINT ... NOT VALID, then VALIDATE CONSTRAINT in a later "
	    "migration (it takes SHARE UPDATE EXCLUSIVE only)",
	    "AccessExclusiveLock", 1 },
	[LR_RENAME_COLUMN] = { "renaming-column", LINT_WARNING,
	    AE " (brief); running clients using the old name fail",
	    "add the new column, write both, move readers, then drop the old "
	    "one; or a view with the old name",
	    "AccessExclusiveLock", 0 },
	[LR_RENAME_TABLE] = { "renaming-table", LINT_WARNING,
	    AE " (brief); running clients using the old name fail",
	    "rename, and create a view with the old name in the same "
	    "transaction, until no client uses it",
	    "AccessExclusiveLock", 0 },
	[LR_DROP_COLUMN] = { "ban-drop-column", LINT_WARNING,
	    AE " (brief); running clients that name the column fail",
	    "stop using the column in every client first, deploy, then drop "
	    "it in a later migration",
	    "AccessExclusiveLock", 0 },
	[LR_DROP_TABLE] = { "ban-drop-table", LINT_WARNING,
	    AE " (brief); the data is gone and running clients fail",
	    "stop using the table first; rename it aside and drop it in a "
	    "later release",
	    "AccessExclusiveLock", 0 },
	[LR_DROP_DATABASE] = { "ban-drop-database", LINT_ERROR,
	    "exclusive use of the database; everything in it is gone",
	    "do not drop databases from a migration" },
	[LR_DROP_NOT_NULL] = { "ban-drop-not-null", LINT_WARNING,
	    AE " (brief); clients may start writing NULLs older code does "
	    "not expect", "make sure every reader copes with NULL first",
	    "AccessExclusiveLock", 0 },
	[LR_INDEX_DELETION] = { "require-concurrent-index-deletion",
	    LINT_WARNING, AE " on the table (blocks reads and writes) until "
	    "the index is dropped", "DROP INDEX CONCURRENTLY" },
	[LR_TRUNCATE_CASCADE] = { "ban-truncate-cascade", LINT_ERROR,
	    AE " on every table it reaches; it empties tables that reference "
	    "this one", "TRUNCATE the tables by name" },
	[LR_CIC_IN_TX] = { "ban-concurrent-index-creation-in-transaction",
	    LINT_ERROR, "none: it fails, CONCURRENTLY cannot run in a "
	    "transaction block", "remove the BEGIN/COMMIT around it; migd "
	    "runs it outside a transaction" },
	[LR_ROBUST] = { "prefer-robust-stmts", LINT_WARNING,
	    "as the statement's", "IF NOT EXISTS / IF EXISTS: the migration "
	    "runs statement by statement, and a rerun after a failure must "
	    "not trip over what already ran" },
	[LR_DOMAIN_CREATE] = { "ban-create-domain-with-constraint",
	    LINT_WARNING, "later ALTER DOMAIN ... ADD CONSTRAINT scans every "
	    "column of the domain", "a CHECK constraint on the table columns" },
	[LR_DOMAIN_ALTER] = { "ban-alter-domain-with-add-constraint",
	    LINT_ERROR, "SHARE on every table using the domain while every "
	    "row is checked", "ADD CONSTRAINT ... NOT VALID, then VALIDATE "
	    "CONSTRAINT in a later migration" },
	[LR_INT] = { "prefer-bigint-over-int", LINT_INFO, "none",
	    "bigint: widening an int column later rewrites the table" },
	[LR_SMALLINT] = { "prefer-bigint-over-smallint", LINT_INFO, "none",
	    "bigint: widening a smallint column later rewrites the table" },
	[LR_IDENTITY] = { "prefer-identity", LINT_INFO, "none",
	    "bigint GENERATED ALWAYS AS IDENTITY" },
	[LR_TEXT] = { "prefer-text-field", LINT_INFO, "none",
	    "text with a CHECK (length(col) <= n): changing a varchar limit "
	    "takes " AE },
	[LR_TIMESTAMPTZ] = { "prefer-timestamp-tz", LINT_INFO, "none",
	    "timestamptz" },
	[LR_CHAR] = { "ban-char-field", LINT_INFO, "none",
	    "text (char(n) pads with blanks)" },
	[LR_MANAGED_SCHEMA] = { "drop-managed-schema", LINT_ERROR,
	    AE " on everything in the schema; migd refuses it",
	    "drop the objects, not the schema" },
	[LR_VACUUM_FULL] = { "vacuum-full-existing-table", LINT_ERROR,
	    AE " (blocks reads and writes) while the table is rewritten",
	    "plain VACUUM, or pg_repack outside the migration",
	    "AccessExclusiveLock", 1 },
	[LR_CLUSTER] = { "cluster-existing-table", LINT_ERROR,
	    AE " (blocks reads and writes) while the table is rewritten",
	    "pg_repack outside the migration, or leave the order be",
	    "AccessExclusiveLock", 1 },
	[LR_ENUM_VALUE] = { "enum-value-used-in-transaction", LINT_ERROR,
	    "none: it fails (unsafe use of new value)",
	    "use the new value in a later migration, or COMMIT after ALTER "
	    "TYPE ... ADD VALUE" },
	[LR_ATTACH] = { "attach-partition-existing-table", LINT_ERROR,
	    AE " on the partition (SHARE UPDATE EXCLUSIVE on the parent) "
	    "while every row of it is checked against the bounds",
	    "ADD CONSTRAINT ... CHECK (the bounds) NOT VALID and VALIDATE it "
	    "on the table first: ATTACH then skips the scan (drop the CHECK "
	    "after)", "AccessExclusiveLock", 1 },
	[LR_DETACH] = { "require-concurrent-partition-detach", LINT_WARNING,
	    AE " on the parent and the partition (blocks reads and writes of "
	    "the whole partitioned table)",
	    "DETACH PARTITION ... CONCURRENTLY (PostgreSQL 14+), in a "
	    "migration that runs outside a transaction",
	    "AccessExclusiveLock", 0 },
	[LR_REINDEX] = { "require-concurrent-reindex", LINT_ERROR,
	    "SHARE on the table (blocks writes) and " AE " on each index "
	    "(blocks reads that use it) while the indexes are rebuilt",
	    "REINDEX ... CONCURRENTLY (PostgreSQL 12+), in a migration that "
	    "runs outside a transaction", "ShareLock", 1 },
	[LR_REWRITE] = { "rewrite-existing-table", LINT_ERROR,
	    AE " (blocks reads and writes) while the table is copied",
	    "leave it, or do it when the table is small or in a maintenance "
	    "window; for a bulk load, create the table UNLOGGED in the same "
	    "run", "AccessExclusiveLock", 1 },
	[LR_REFRESH] = { "refresh-existing-materialized-view", LINT_ERROR,
	    AE " on the view (blocks reads) while its query runs",
	    "REFRESH MATERIALIZED VIEW CONCURRENTLY (needs a unique index on "
	    "the view; readers go on), or refresh it from a job outside the "
	    "migration",
	    "AccessExclusiveLock", 1 },
};
const size_t	lint_n_rules = LR_NRULES;

/* The rule's index, or -1. */
int
lint_rule_find(const char *name)
{
	size_t	 i;

	for (i = 0; i < LR_NRULES; i++) {
		if (strcmp(lint_rules[i].name, name) == 0)
			return ((int)i);
	}
	return (-1);
}

const char *
lint_severity_name(enum lint_severity s)
{
	switch (s) {
	case LINT_INFO:
		return ("info");
	case LINT_WARNING:
		return ("warning");
	case LINT_ERROR:
		break;
	}
	return ("error");
}

/* A table's key as the statement names it: "schema.name" or "name". */
static char *
lint_rangevar(json_t *rv)
{
	const char	*schema = sqlscan_str(rv, "schemaname");
	const char	*rel = sqlscan_str(rv, "relname");

	if (rel == NULL)
		return (NULL);
	return (schema != NULL ? xprintf("%s.%s", schema, rel) :
	    xstrdup(rel));
}

/* The key of a name list ([{"String":...}, ...]), as lint_rangevar. */
static char *
lint_namelist(json_t *list)
{
	json_t		*it;
	const char	*type, *s;
	char		*out = NULL, *t;
	size_t		 i;

	json_array_foreach(list, i, it) {
		s = sqlscan_str(sqlscan_node(it, &type), "sval");
		if (s == NULL)
			continue;
		if (out == NULL)
			out = xstrdup(s);
		else {
			t = xprintf("%s.%s", out, s);
			free(out);
			out = t;
		}
	}
	return (out);
}

/* The text after "-- migd:lint-ignore" on the line above the statement. */
static char *
lint_annotation(const char *sql, size_t offset)
{
	static const char	 mark[] = "migd:lint-ignore";
	size_t			 end, start;
	const char		*p;

	/* The statement's line must start with it, blanks aside. */
	start = offset;
	while (start > 0 && sql[start - 1] != '\n') {
		if (sql[start - 1] != ' ' && sql[start - 1] != '\t')
			return (NULL);
		start--;
	}
	if (start == 0)
		return (NULL);
	end = start - 1;	/* the '\n' ending the line above */
	start = end;
	while (start > 0 && sql[start - 1] != '\n')
		start--;
	p = sql + start;
	while (*p == ' ' || *p == '\t')
		p++;
	if (strncmp(p, "--", 2) != 0)
		return (NULL);
	p += 2;
	while (*p == ' ' || *p == '\t')
		p++;
	if (strncmp(p, mark, sizeof mark - 1) != 0)
		return (NULL);
	p += sizeof mark - 1;
	while (*p == ' ' || *p == '\t')
		p++;
	end = (size_t)(sql + end - p);
	while (end > 0 && (p[end - 1] == ' ' || p[end - 1] == '\t' ||
	    p[end - 1] == '\r'))
		end--;
	return (xstrndup(p, end));
}

/* Where the statement being read is, for its events. */
struct lint_at {
	const char	*sql;
	size_t		 offset;
	int		 line;
	int		 col;
	char		*ignore;	/* owned here; copied into events */
	int		 ignore_line;	/* the comment's line */
};

static void
lint_event(struct lint_scan *ls, const struct lint_at *at, int rule,
    int flags, const char *table, char *msg)
{
	struct lint_event	*ev;

	ls->ev = xreallocarray(ls->ev, ls->n + 1, sizeof *ls->ev);
	ev = &ls->ev[ls->n++];
	ev->rule = rule;
	ev->flags = flags;
	ev->line = at->line;
	ev->col = at->col;
	ev->table = table != NULL ? xstrdup(table) : NULL;
	ev->msg = msg;
	ev->ignore = at->ignore != NULL && rule >= 0 ? xstrdup(at->ignore) :
	    NULL;
	ev->ignore_line = at->ignore_line;
}

/* The type's last name (int4, varchar, timestamp) and whether it is one of
 * the built-in ones the parser qualifies with pg_catalog. */
static const char *
lint_typename(json_t *tn, int *catalog)
{
	json_t		*names = json_object_get(tn, "names");
	const char	*type, *first;
	size_t		 n = json_array_size(names);

	if (n == 0)
		return (NULL);
	first = sqlscan_str(sqlscan_node(json_array_get(names, 0), &type), "sval");
	*catalog = n == 2 && first != NULL && strcmp(first, "pg_catalog") == 0;
	return (sqlscan_str(sqlscan_node(json_array_get(names, n - 1), &type),
	    "sval"));
}

/* The column type rules (Squawk's prefer-* and ban-char-field); name is the
 * column's when col does not carry it (ALTER COLUMN ... TYPE). */
static void
lint_coltype(struct lint_scan *ls, const struct lint_at *at, json_t *col,
    const char *name, const char *table)
{
	json_t		*tn = json_object_get(col, "typeName");
	const char	*t, *c = sqlscan_str(col, "colname");
	int		 catalog = 0;

	if ((t = lint_typename(tn, &catalog)) == NULL)
		return;
	if (c == NULL)
		c = name != NULL ? name : "?";
	if (catalog && strcmp(t, "int4") == 0)
		lint_event(ls, at, LR_INT, 0, table, xprintf("column %s is "
		    "int (32-bit)", c));
	else if (catalog && strcmp(t, "int2") == 0)
		lint_event(ls, at, LR_SMALLINT, 0, table, xprintf("column %s "
		    "is smallint", c));
	else if (!catalog && (strcmp(t, "serial") == 0 ||
	    strcmp(t, "serial4") == 0)) {
		lint_event(ls, at, LR_INT, 0, table, xprintf("column %s is "
		    "serial (32-bit)", c));
		lint_event(ls, at, LR_IDENTITY, 0, table, xprintf("column %s "
		    "is %s", c, t));
	} else if (!catalog && (strcmp(t, "smallserial") == 0 ||
	    strcmp(t, "serial2") == 0)) {
		lint_event(ls, at, LR_SMALLINT, 0, table, xprintf("column %s "
		    "is %s", c, t));
		lint_event(ls, at, LR_IDENTITY, 0, table, xprintf("column %s "
		    "is %s", c, t));
	} else if (!catalog && (strcmp(t, "bigserial") == 0 ||
	    strcmp(t, "serial8") == 0))
		lint_event(ls, at, LR_IDENTITY, 0, table, xprintf("column %s "
		    "is %s", c, t));
	else if (catalog && strcmp(t, "varchar") == 0 &&
	    json_array_size(json_object_get(tn, "typmods")) > 0)
		lint_event(ls, at, LR_TEXT, 0, table, xprintf("column %s is "
		    "varchar(n)", c));
	else if (catalog && strcmp(t, "timestamp") == 0)
		lint_event(ls, at, LR_TIMESTAMPTZ, 0, table, xprintf("column "
		    "%s is timestamp without time zone", c));
	else if (catalog && strcmp(t, "bpchar") == 0)
		lint_event(ls, at, LR_CHAR, 0, table, xprintf("column %s is "
		    "char(n)", c));
}

/* Whether a default is certainly not volatile (stored once, no rewrite): a
 * constant, an array or an operator over such, a cast of one, now() and
 * its kin, or a stable function of such (timezone() is AT TIME ZONE). */
static int
lint_stable_default(json_t *expr)
{
	static const char *const noargs[] = { "now", "statement_timestamp",
	    "transaction_timestamp" };
	static const char *const stable[] = { "timezone", "current_setting",
	    "date_trunc", "lower", "upper" };
	json_t		*n, *names, *arg;
	const char	*type, *f;
	size_t		 i;

	if ((n = sqlscan_node(expr, &type)) == NULL)
		return (1);
	if (strcmp(type, "A_Const") == 0 || strcmp(type, "SQLValueFunction")
	    == 0)
		return (1);
	if (strcmp(type, "TypeCast") == 0)
		return (lint_stable_default(json_object_get(n, "arg")));
	if (strcmp(type, "A_ArrayExpr") == 0) {
		json_array_foreach(json_object_get(n, "elements"), i, arg) {
			if (!lint_stable_default(arg))
				return (0);
		}
		return (1);
	}
	if (strcmp(type, "A_Expr") == 0 && sqlscan_is(n, "kind", "AEXPR_OP"))
		return (lint_stable_default(json_object_get(n, "lexpr")) &&
		    lint_stable_default(json_object_get(n, "rexpr")));
	if (strcmp(type, "FuncCall") == 0) {
		names = json_object_get(n, "funcname");
		f = sqlscan_str(sqlscan_node(json_array_get(names,
		    json_array_size(names) - 1), &type), "sval");
		if (f == NULL)
			return (0);
		for (i = 0; i < nitems(noargs); i++) {
			if (strcmp(f, noargs[i]) == 0)
				return (json_object_get(n, "args") == NULL);
		}
		for (i = 0; i < nitems(stable); i++) {
			if (strcmp(f, stable[i]) == 0)
				break;
		}
		if (i == nitems(stable))
			return (0);
		json_array_foreach(json_object_get(n, "args"), i, arg) {
			if (!lint_stable_default(arg))
				return (0);
		}
		return (1);
	}
	return (0);
}

/* ALTER TABLE ... ADD COLUMN: defaults, NOT NULL, inline constraints. */
static void
lint_add_column(struct lint_scan *ls, const struct lint_at *at, json_t *cmd,
    json_t *col, const char *table)
{
	json_t		*con, *c;
	const char	*type, *t, *name = sqlscan_str(col, "colname");
	size_t		 i;
	int		 notnull = 0, dflt = 0, catalog = 0;

	if (name == NULL)
		name = "?";
	lint_coltype(ls, at, col, NULL, table);
	if (!sqlscan_true(cmd, "missing_ok"))
		lint_event(ls, at, LR_ROBUST, LINT_BARE, table, xprintf("ADD "
		    "COLUMN %s without IF NOT EXISTS", name));
	t = lint_typename(json_object_get(col, "typeName"), &catalog);
	if (!catalog && t != NULL && strstr(t, "serial") != NULL) {
		dflt = 1;
		lint_event(ls, at, LR_FIELD_DEFAULT, LINT_EXISTING, table,
		    xprintf("ADD COLUMN %s %s fills every row from a "
		    "sequence", name, t));
	}
	json_array_foreach(json_object_get(col, "constraints"), i, c) {
		if ((con = sqlscan_node(c, &type)) == NULL)
			continue;
		t = sqlscan_str(con, "contype");
		if (t == NULL)
			continue;
		if (strcmp(t, "CONSTR_NOTNULL") == 0)
			notnull = 1;
		else if (strcmp(t, "CONSTR_DEFAULT") == 0) {
			dflt = 1;
			if (!lint_stable_default(json_object_get(con,
			    "raw_expr")))
				lint_event(ls, at, LR_FIELD_DEFAULT,
				    LINT_EXISTING, table, xprintf("ADD COLUMN "
				    "%s with a default that may be volatile",
				    name));
		} else if (strcmp(t, "CONSTR_IDENTITY") == 0 ||
		    strcmp(t, "CONSTR_GENERATED") == 0) {
			dflt = 1;
			lint_event(ls, at, LR_FIELD_DEFAULT, LINT_EXISTING,
			    table, xprintf("ADD COLUMN %s %s computes every "
			    "row", name, strcmp(t, "CONSTR_IDENTITY") == 0 ?
			    "GENERATED AS IDENTITY" : "GENERATED ... STORED"));
		} else if (strcmp(t, "CONSTR_PRIMARY") == 0)
			lint_event(ls, at, LR_PRIMARY_KEY, LINT_EXISTING,
			    table, xprintf("ADD COLUMN %s PRIMARY KEY", name));
		else if (strcmp(t, "CONSTR_UNIQUE") == 0)
			lint_event(ls, at, LR_UNIQUE, LINT_EXISTING, table,
			    xprintf("ADD COLUMN %s UNIQUE", name));
		else if (strcmp(t, "CONSTR_FOREIGN") == 0)
			lint_event(ls, at, LR_FOREIGN_KEY, LINT_EXISTING,
			    table, xprintf("ADD COLUMN %s REFERENCES", name));
		else if (strcmp(t, "CONSTR_CHECK") == 0)
			lint_event(ls, at, LR_NOT_VALID, LINT_EXISTING, table,
			    xprintf("ADD COLUMN %s CHECK", name));
	}
	if (notnull && !dflt)
		lint_event(ls, at, LR_REQUIRED_FIELD, LINT_EXISTING, table,
		    xprintf("ADD COLUMN %s NOT NULL without a default", name));
}

/* ALTER TABLE ... ADD CONSTRAINT. */
static void
lint_add_constraint(struct lint_scan *ls, const struct lint_at *at,
    json_t *con, const char *table)
{
	const char	*t = sqlscan_str(con, "contype");
	const char	*name = sqlscan_str(con, "conname");
	int		 nv = sqlscan_true(con, "skip_validation");

	if (t == NULL)
		return;
	if (name == NULL)
		name = "(unnamed)";
	if (nv && table != NULL) {
		ls->not_valid = xreallocarray(ls->not_valid,
		    ls->n_not_valid + 1, sizeof *ls->not_valid);
		ls->not_valid[ls->n_not_valid++] = xprintf("%s\n%s", table,
		    name);
	}
	if (strcmp(t, "CONSTR_FOREIGN") == 0 && !nv)
		lint_event(ls, at, LR_FOREIGN_KEY, LINT_EXISTING, table,
		    xprintf("ADD CONSTRAINT %s FOREIGN KEY without NOT VALID",
		    name));
	else if (strcmp(t, "CONSTR_CHECK") == 0 && !nv)
		lint_event(ls, at, LR_NOT_VALID, LINT_EXISTING, table,
		    xprintf("ADD CONSTRAINT %s CHECK without NOT VALID",
		    name));
	else if (strcmp(t, "CONSTR_UNIQUE") == 0 &&
	    sqlscan_str(con, "indexname") == NULL)
		lint_event(ls, at, LR_UNIQUE, LINT_EXISTING, table,
		    xprintf("ADD CONSTRAINT %s UNIQUE builds its index under "
		    "the lock", name));
	else if (strcmp(t, "CONSTR_PRIMARY") == 0 &&
	    sqlscan_str(con, "indexname") == NULL)
		lint_event(ls, at, LR_PRIMARY_KEY, LINT_EXISTING, table,
		    xprintf("ADD CONSTRAINT %s PRIMARY KEY builds its index "
		    "under the lock", name));
	else if (strcmp(t, "CONSTR_EXCLUSION") == 0)
		lint_event(ls, at, LR_NOT_VALID, LINT_EXISTING, table,
		    xprintf("ADD CONSTRAINT %s EXCLUDE builds its index under "
		    "the lock (an exclusion constraint can be added neither NOT "
		    "VALID nor USING INDEX: add it while the table is small)",
		    name));
}

/* ALTER TABLE ... VALIDATE CONSTRAINT: safe unless the constraint was
 * added NOT VALID in the same transaction, whose lock is still held; run
 * statement by statement (outside the file's BEGIN) the ADD has committed. */
static void
lint_validate(struct lint_scan *ls, const struct lint_at *at,
    const char *name, const char *table)
{
	char	*key;
	size_t	 i;

	if (name == NULL || table == NULL)
		return;
	lint_event(ls, at, LINT_EV_VALIDATES, 0, table, NULL);
	key = xprintf("%s\n%s", table, name);
	for (i = 0; i < ls->n_not_valid; i++) {
		if (strcmp(ls->not_valid[i], key) == 0) {
			lint_event(ls, at, LR_NOT_VALID, LINT_EXISTING |
			    (ls->in_begin || ls->in_do ? 0 : LINT_IN_TX), table,
			    xprintf("VALIDATE CONSTRAINT %s in the transaction "
			    "that added it NOT VALID: the " AE " lock of the "
			    "ADD is held through the whole check", name));
			break;
		}
	}
	free(key);
}

/* ATTACH PARTITION checks the partition's rows under its lock, unless a
 * validated constraint of it proves them; DETACH locks the whole parent. */
static void
lint_partition(struct lint_scan *ls, const struct lint_at *at,
    const char *sub, json_t *pc, const char *parent)
{
	char	*part = lint_rangevar(json_object_get(pc, "name"));

	if (strcmp(sub, "AT_AttachPartition") == 0)
		lint_event(ls, at, LR_ATTACH, LINT_EXISTING | LINT_UNPROVED,
		    part, xprintf("ATTACH PARTITION %s to %s checks every "
		    "row of %s", part ? part : "?", parent ? parent : "?",
		    part ? part : "it"));
	else if (!sqlscan_true(pc, "concurrent"))
		lint_event(ls, at, LR_DETACH, LINT_EXISTING, parent,
		    xprintf("DETACH PARTITION %s from %s without "
		    "CONCURRENTLY", part ? part : "?", parent ? parent : "?"));
	free(part);
}

static void
lint_alter_table(struct lint_scan *ls, const struct lint_at *at, json_t *n)
{
	json_t		*it, *cmd, *def;
	const char	*type, *sub, *name;
	char		*table;
	size_t		 i;

	if (!sqlscan_is(n, "objtype", "OBJECT_TABLE"))
		return;
	table = lint_rangevar(json_object_get(n, "relation"));
	json_array_foreach(json_object_get(n, "cmds"), i, it) {
		cmd = sqlscan_node(it, &type);
		if (cmd == NULL || strcmp(type, "AlterTableCmd") != 0 ||
		    (sub = sqlscan_str(cmd, "subtype")) == NULL)
			continue;
		name = sqlscan_str(cmd, "name");
		def = sqlscan_node(json_object_get(cmd, "def"), &type);
		if (strcmp(sub, "AT_AddColumn") == 0 && def != NULL)
			lint_add_column(ls, at, cmd, def, table);
		else if (strcmp(sub, "AT_AddConstraint") == 0 && def != NULL)
			lint_add_constraint(ls, at, def, table);
		else if (strcmp(sub, "AT_ValidateConstraint") == 0)
			lint_validate(ls, at, name, table);
		else if (strcmp(sub, "AT_AlterColumnType") == 0) {
			lint_event(ls, at, LR_COLUMN_TYPE, LINT_EXISTING, table,
			    xprintf("ALTER COLUMN %s TYPE", name ? name : "?"));
			if (def != NULL)
				lint_coltype(ls, at, def, name, table);
		} else if (strcmp(sub, "AT_SetNotNull") == 0)
			lint_event(ls, at, LR_NOT_NULLABLE, LINT_EXISTING |
			    LINT_UNPROVED, table, xprintf("ALTER COLUMN %s SET "
			    "NOT NULL", name ? name : "?"));
		else if (strcmp(sub, "AT_DropNotNull") == 0)
			lint_event(ls, at, LR_DROP_NOT_NULL, LINT_EXISTING,
			    table, xprintf("ALTER COLUMN %s DROP NOT NULL",
			    name ? name : "?"));
		else if (strcmp(sub, "AT_DropColumn") == 0)
			lint_event(ls, at, LR_DROP_COLUMN, LINT_EXISTING,
			    table, xprintf("DROP COLUMN %s", name ? name :
			    "?"));
		else if (strcmp(sub, "AT_SetLogged") == 0 ||
		    strcmp(sub, "AT_SetUnLogged") == 0 ||
		    strcmp(sub, "AT_SetTableSpace") == 0 ||
		    strcmp(sub, "AT_SetAccessMethod") == 0)
			lint_event(ls, at, LR_REWRITE, LINT_EXISTING, table,
			    xprintf("%s rewrites every row of %s",
			    strcmp(sub, "AT_SetLogged") == 0 ? "SET LOGGED" :
			    strcmp(sub, "AT_SetUnLogged") == 0 ? "SET UNLOGGED" :
			    strcmp(sub, "AT_SetTableSpace") == 0 ?
			    "SET TABLESPACE" : "SET ACCESS METHOD", table ?
			    table : "the table"));
		else if ((strcmp(sub, "AT_AttachPartition") == 0 ||
		    strcmp(sub, "AT_DetachPartition") == 0) && def != NULL)
			lint_partition(ls, at, sub, def, table);
	}
	free(table);
}

/* Whether a parse tree holds the string constant val ('x', 'x'::e). */
static int
lint_uses_const(json_t *j, const char *val)
{
	json_t		*v, *s;
	const char	*k;
	size_t		 i;

	if (json_is_array(j)) {
		json_array_foreach(j, i, v) {
			if (lint_uses_const(v, val))
				return (1);
		}
		return (0);
	}
	if (!json_is_object(j))
		return (0);
	json_object_foreach(j, k, v) {
		if (strcmp(k, "A_Const") == 0 && (s = json_object_get(
		    json_object_get(v, "sval"), "sval")) != NULL &&
		    json_is_string(s) && strcmp(json_string_value(s), val) == 0)
			return (1);
		if (lint_uses_const(v, val))
			return (1);
	}
	return (0);
}

/* Forgets what holds only within the transaction that ended. */
static void
lint_tx_end(struct lint_scan *ls)
{
	size_t	 i;

	for (i = 0; i < ls->n_enum; i++)
		free(ls->enum_vals[i]);
	for (i = 0; i < ls->n_not_valid; i++)
		free(ls->not_valid[i]);
	free(ls->enum_vals);
	free(ls->not_valid);
	ls->enum_vals = ls->not_valid = NULL;
	ls->n_enum = ls->n_not_valid = 0;
	ls->tx_first = ls->n;
}

/* CREATE VIEW with the name a table was renamed from, in the same
 * transaction: running clients never miss the old name (the pattern
 * renaming-table recommends), so the rename is no finding. */
static void
lint_view(struct lint_scan *ls, json_t *n)
{
	char	*view = lint_rangevar(json_object_get(n, "view"));
	size_t	 i;

	for (i = ls->tx_first; view != NULL && i < ls->n; i++) {
		if (ls->ev[i].rule == LR_RENAME_TABLE &&
		    ls->ev[i].table != NULL &&
		    strcmp(ls->ev[i].table, view) == 0)
			ls->ev[i].rule = LINT_EV_NONE;
	}
	free(view);
}

/* DROP ...: tables, indexes, schemas. */
static void
lint_drop(struct lint_scan *ls, const struct lint_at *at, json_t *n)
{
	json_t		*obj, *items;
	const char	*type, *s;
	char		*key;
	size_t		 i;

	json_array_foreach(json_object_get(n, "objects"), i, obj) {
		if (sqlscan_is(n, "removeType", "OBJECT_SCHEMA")) {
			s = sqlscan_str(sqlscan_node(obj, &type), "sval");
			if (s != NULL)
				lint_event(ls, at, LR_MANAGED_SCHEMA,
				    LINT_MANAGED, s,
				    xprintf("DROP SCHEMA %s", s));
			continue;
		}
		items = json_object_get(sqlscan_node(obj, &type), "items");
		if ((key = lint_namelist(items)) == NULL)
			continue;
		if (sqlscan_is(n, "removeType", "OBJECT_TABLE"))
			lint_event(ls, at, LR_DROP_TABLE, LINT_EXISTING, key,
			    xprintf("DROP TABLE %s", key));
		else if (sqlscan_is(n, "removeType", "OBJECT_INDEX") &&
		    !sqlscan_true(n, "concurrent"))
			lint_event(ls, at, LR_INDEX_DELETION, 0, NULL,
			    xprintf("DROP INDEX %s without CONCURRENTLY", key));
		if (sqlscan_is(n, "removeType", "OBJECT_INDEX") &&
		    sqlscan_true(n, "concurrent") && !sqlscan_true(n, "missing_ok"))
			lint_event(ls, at, LR_ROBUST, LINT_BARE, NULL,
			    xprintf("DROP INDEX CONCURRENTLY %s without IF "
			    "EXISTS", key));
		free(key);
	}
}

/* VACUUM FULL and CLUSTER rewrite the table under ACCESS EXCLUSIVE. */
static void
lint_rewrite(struct lint_scan *ls, const struct lint_at *at,
    const char *type, json_t *n)
{
	json_t		*rel;
	const char	*t;
	char		*table;
	size_t		 i;

	if (strcmp(type, "ClusterStmt") == 0) {
		table = lint_rangevar(json_object_get(n, "relation"));
		lint_event(ls, at, LR_CLUSTER, table != NULL ? LINT_EXISTING :
		    0, table, table != NULL ? xprintf("CLUSTER %s", table) :
		    xstrdup("CLUSTER of every clustered table"));
		free(table);
		return;
	}
	if (!sqlscan_true(n, "is_vacuumcmd"))
		return;
	/* VACUUM (FULL false) is plain. */
	if (!sqlscan_defbool(sqlscan_defelem(json_object_get(n, "options"),
	    "full"), 0))
		return;
	if (json_array_size(json_object_get(n, "rels")) == 0) {
		lint_event(ls, at, LR_VACUUM_FULL, 0, NULL,
		    xstrdup("VACUUM FULL of the whole database"));
		return;
	}
	json_array_foreach(json_object_get(n, "rels"), i, rel) {
		table = lint_rangevar(json_object_get(sqlscan_node(rel, &t),
		    "relation"));
		lint_event(ls, at, LR_VACUUM_FULL, LINT_EXISTING, table,
		    xprintf("VACUUM FULL %s", table ? table : "?"));
		free(table);
	}
}

/* REINDEX without CONCURRENTLY rebuilds under SHARE on the table and
 * ACCESS EXCLUSIVE on each index (SYSTEM has no concurrent form). */
static void
lint_reindex(struct lint_scan *ls, const struct lint_at *at, json_t *n)
{
	static const struct {
		const char	*kind;
		const char	*what;
	} kinds[] = {
		{ "REINDEX_OBJECT_TABLE", "TABLE" },
		{ "REINDEX_OBJECT_INDEX", "INDEX" },
		{ "REINDEX_OBJECT_SCHEMA", "SCHEMA" },
		{ "REINDEX_OBJECT_DATABASE", "DATABASE" },
	};
	const char	*kind = sqlscan_str(n, "kind"), *name;
	char		*rel;
	size_t		 i;

	if (kind == NULL || sqlscan_defbool(sqlscan_defelem(
	    json_object_get(n, "params"), "concurrently"), 0))
		return;
	for (i = 0; i < nitems(kinds); i++)
		if (strcmp(kind, kinds[i].kind) == 0)
			break;
	if (i == nitems(kinds))
		return;
	rel = lint_rangevar(json_object_get(n, "relation"));
	name = rel != NULL ? rel : sqlscan_str(n, "name");
	/* Only a table's size and lock are known; an index names no table. */
	lint_event(ls, at, LR_REINDEX, i == 0 ? LINT_EXISTING : 0, i == 0 ?
	    rel : NULL, xprintf("REINDEX %s %s without CONCURRENTLY",
	    kinds[i].what, name != NULL ? name : ""));
	free(rel);
}

/* CREATE TABLE: the table is new from here on; its column types. */
static void
lint_create(struct lint_scan *ls, const struct lint_at *at, json_t *n)
{
	json_t		*elt, *col;
	const char	*type;
	char		*table;
	size_t		 i;

	table = lint_rangevar(json_object_get(n, "relation"));
	if (!sqlscan_true(n, "if_not_exists"))
		lint_event(ls, at, LR_ROBUST, LINT_BARE, table, xprintf(
		    "CREATE TABLE %s without IF NOT EXISTS", table ? table :
		    "?"));
	json_array_foreach(json_object_get(n, "tableElts"), i, elt) {
		col = sqlscan_node(elt, &type);
		if (col != NULL && strcmp(type, "ColumnDef") == 0)
			lint_coltype(ls, at, col, NULL, table);
	}
	if (table != NULL)
		lint_event(ls, at, LINT_EV_CREATES, 0, table, NULL);
	free(table);
}

/* CREATE INDEX. */
static void
lint_index(struct lint_scan *ls, const struct lint_at *at, json_t *n)
{
	char		*table = lint_rangevar(json_object_get(n, "relation"));
	const char	*idx = sqlscan_str(n, "idxname");
	json_t		*rel = json_object_get(n, "relation");

	/* ON ONLY is written for a partitioned table, where it builds nothing
	 * (the index stays invalid until each partition's index, built
	 * CONCURRENTLY, is attached): the pattern PostgreSQL documents, since
	 * CONCURRENTLY cannot build an index on a partitioned table. */
	if (json_is_object(rel) && !sqlscan_true(rel, "inh") &&
	    !sqlscan_true(n, "concurrent")) {
		free(table);
		return;
	}
	if (!sqlscan_true(n, "concurrent"))
		lint_event(ls, at, LR_CONCURRENT_INDEX, LINT_EXISTING, table,
		    xprintf("CREATE INDEX%s%s on %s without CONCURRENTLY",
		    idx ? " " : "", idx ? idx : "", table ? table : "?"));
	else {
		if (ls->in_begin)
			lint_event(ls, at, LR_CIC_IN_TX, 0, table, xstrdup(
			    "CREATE INDEX CONCURRENTLY after the file's "
			    "BEGIN"));
		if (!sqlscan_true(n, "if_not_exists"))
			lint_event(ls, at, LR_ROBUST, LINT_BARE, table,
			    xstrdup("CREATE INDEX CONCURRENTLY without IF NOT "
			    "EXISTS"));
	}
	free(table);
}

static void	lint_stmt_at(struct lint_scan *, json_t *, const char *,
		    size_t, int, int, size_t);

/* What a DO block is read for: its body and where the body starts. */
struct lint_do {
	const char	*sql;		/* the section */
	size_t		 offset;	/* of the DO statement */
	int		 line;		/* of the DO statement */
	const char	*body;		/* in sql, or NULL: not found as is */
	size_t		 len;
};

/* Column (in characters, from 1) of byte offset on its line. */
static int
lint_column(const char *sql, size_t offset)
{
	size_t	 start = offset;
	int	 col = 1;

	while (start > 0 && sql[start - 1] != '\n')
		start--;
	for (; start < offset; start++)
		col += ((unsigned char)sql[start] & 0xc0) != 0x80;
	return (col);
}

/* One SQL statement of a DO block (its query, on the body's line lineno):
 * linted at its own place in the file, as if written there. */
static void
lint_do_query(struct lint_scan *ls, const struct lint_do *d,
    const char *query, int lineno)
{
	PgQueryParseResult	 res;
	json_t			*root, *raw;
	const char		*p, *q, *end;
	size_t			 off = d->offset, i;
	int			 line = d->line, k;

	if (d->body != NULL) {
		p = d->body;
		end = d->body + d->len;
		for (k = 1; k < lineno && p < end; p++)
			k += *p == '\n';
		if ((q = strstr(p, query)) != NULL && q + strlen(query) <= end) {
			off = (size_t)(q - d->sql);
			for (p = d->sql + d->offset; p < q; p++)
				line += *p == '\n';
		}
	}
	res = pg_query_parse(query);
	if (res.error == NULL && (root = json_loads(res.parse_tree, 0,
	    NULL)) != NULL) {
		json_array_foreach(json_object_get(root, "stmts"), i, raw)
			lint_stmt_at(ls, json_object_get(raw, "stmt"), d->sql,
			    off, line, lint_column(d->sql, off), d->offset);
		json_decref(root);
	}
	pg_query_free_parse_result(res);
}

/* Walks PL/pgSQL's tree in order for the statements it runs as SQL. */
static void
lint_do_walk(struct lint_scan *ls, const struct lint_do *d, json_t *j)
{
	json_t		*v, *e;
	const char	*key, *q;
	size_t		 i;

	if (json_is_array(j)) {
		json_array_foreach(j, i, v)
			lint_do_walk(ls, d, v);
		return;
	}
	json_object_foreach(j, key, v) {
		if (strcmp(key, "PLpgSQL_stmt_execsql") == 0) {
			e = json_object_get(json_object_get(v, "sqlstmt"),
			    "PLpgSQL_expr");
			if ((q = sqlscan_str(e, "query")) != NULL)
				lint_do_query(ls, d, q, (int)json_integer_value(
				    json_object_get(v, "lineno")));
		} else if (strcmp(key, "PLpgSQL_stmt_commit") == 0 ||
		    strcmp(key, "PLpgSQL_stmt_rollback") == 0)
			lint_tx_end(ls);
		else if (json_is_object(v) || json_is_array(v))
			lint_do_walk(ls, d, v);
	}
}

/* DO: the statements of a PL/pgSQL block run now, under the migration's
 * locks, as if the file had them (an ALTER TABLE inside IF NOT EXISTS, the
 * idempotent way to add a constraint); a string EXECUTEd is not read. */
static void
lint_do(struct lint_scan *ls, json_t *n, const char *sql, size_t offset,
    int line)
{
	static const char	 q[] = "$migd_lint$";
	PgQueryPlpgsqlParseResult res;
	struct lint_do		 d;
	json_t			*arg, *def, *root;
	const char		*type, *name, *val, *body = NULL;
	const char		*lang = "plpgsql";
	char			*fn;
	size_t			 i;

	json_array_foreach(json_object_get(n, "args"), i, arg) {
		def = sqlscan_node(arg, &type);
		name = sqlscan_str(def, "defname");
		val = sqlscan_str(sqlscan_node(json_object_get(def, "arg"),
		    &type), "sval");
		if (name == NULL || val == NULL)
			continue;
		if (strcmp(name, "as") == 0)
			body = val;
		else if (strcmp(name, "language") == 0)
			lang = val;
	}
	if (body == NULL || strcasecmp(lang, "plpgsql") != 0 ||
	    strstr(body, q) != NULL)
		return;
	d.sql = sql;
	d.offset = offset;
	d.line = line;
	d.body = strstr(sql + offset, body);
	d.len = strlen(body);
	fn = xprintf("CREATE FUNCTION migd_lint_do() RETURNS void LANGUAGE "
	    "plpgsql AS %s%s%s", q, body, q);
	res = pg_query_parse_plpgsql(fn);
	if (res.error == NULL && res.plpgsql_funcs != NULL &&
	    (root = json_loads(res.plpgsql_funcs, 0, NULL)) != NULL) {
		ls->in_do++;
		lint_do_walk(ls, &d, root);
		ls->in_do--;
		json_decref(root);
	}
	pg_query_free_plpgsql_parse_result(res);
	free(fn);
}

/* Reads one parsed statement. */
void
lint_stmt(struct lint_scan *ls, json_t *stmt, const char *sql, size_t offset,
    int line, int col)
{
	lint_stmt_at(ls, stmt, sql, offset, line, col, (size_t)-1);
}

/* Reads one statement at offset; one of a DO block (do_offset its DO's)
 * may be ignored by the comment above it, or above the DO. */
static void
lint_stmt_at(struct lint_scan *ls, json_t *stmt, const char *sql,
    size_t offset, int line, int col, size_t do_offset)
{
	struct lint_at	 at;
	json_t		*n, *con;
	const char	*type, *kind, *t;
	char		*table;
	size_t		 i;

	if ((n = sqlscan_node(stmt, &type)) == NULL)
		return;
	at.sql = sql;
	at.offset = offset;
	at.line = line;
	at.col = col;
	at.ignore = lint_annotation(sql, offset);
	at.ignore_line = line - 1;
	if (at.ignore == NULL && do_offset != (size_t)-1) {
		at.ignore = lint_annotation(sql, do_offset);
		for (i = do_offset; i < offset; i++)
			at.ignore_line -= sql[i] == '\n';
	}

	/* A value added in this transaction, used before it commits. */
	for (i = 0; i < ls->n_enum; i++) {
		if (lint_uses_const(n, ls->enum_vals[i])) {
			lint_event(ls, &at, LR_ENUM_VALUE, ls->in_begin ||
			    ls->in_do ? 0 : LINT_IN_TX, NULL, xprintf(
			    "'%s' is used in the transaction whose ALTER TYPE "
			    "... ADD VALUE added it", ls->enum_vals[i]));
			break;
		}
	}

	if (strcmp(type, "CreateStmt") == 0)
		lint_create(ls, &at, n);
	else if (strcmp(type, "CreateTableAsStmt") == 0) {
		table = lint_rangevar(json_object_get(json_object_get(n,
		    "into"), "rel"));
		if (table != NULL)
			lint_event(ls, &at, LINT_EV_CREATES, 0, table, NULL);
		free(table);
	} else if (strcmp(type, "IndexStmt") == 0)
		lint_index(ls, &at, n);
	else if (strcmp(type, "AlterTableStmt") == 0)
		lint_alter_table(ls, &at, n);
	else if (strcmp(type, "RenameStmt") == 0) {
		table = lint_rangevar(json_object_get(n, "relation"));
		if (sqlscan_is(n, "renameType", "OBJECT_COLUMN") &&
		    sqlscan_is(n, "relationType", "OBJECT_TABLE"))
			lint_event(ls, &at, LR_RENAME_COLUMN, LINT_EXISTING,
			    table, xprintf("RENAME COLUMN %s TO %s",
			    sqlscan_str(n, "subname"), sqlscan_str(n, "newname")));
		else if (sqlscan_is(n, "renameType", "OBJECT_TABLE"))
			lint_event(ls, &at, LR_RENAME_TABLE, LINT_EXISTING,
			    table, xprintf("RENAME TABLE %s TO %s", table ?
			    table : "?", sqlscan_str(n, "newname")));
		free(table);
	} else if (strcmp(type, "ViewStmt") == 0)
		lint_view(ls, n);
	else if (strcmp(type, "DoStmt") == 0)
		lint_do(ls, n, sql, offset, line);
	else if (strcmp(type, "DropStmt") == 0)
		lint_drop(ls, &at, n);
	else if (strcmp(type, "DropdbStmt") == 0)
		lint_event(ls, &at, LR_DROP_DATABASE, 0, NULL, xprintf(
		    "DROP DATABASE %s", sqlscan_str(n, "dbname")));
	else if (strcmp(type, "TruncateStmt") == 0 &&
	    sqlscan_is(n, "behavior", "DROP_CASCADE"))
		lint_event(ls, &at, LR_TRUNCATE_CASCADE, 0, NULL,
		    xstrdup("TRUNCATE ... CASCADE"));
	else if (strcmp(type, "VacuumStmt") == 0 ||
	    strcmp(type, "ClusterStmt") == 0)
		lint_rewrite(ls, &at, type, n);
	else if (strcmp(type, "ReindexStmt") == 0)
		lint_reindex(ls, &at, n);
	else if (strcmp(type, "RefreshMatViewStmt") == 0 &&
	    !sqlscan_true(n, "concurrent")) {
		table = lint_rangevar(json_object_get(n, "relation"));
		lint_event(ls, &at, LR_REFRESH, LINT_EXISTING, table, xprintf(
		    "REFRESH MATERIALIZED VIEW %s%s", table ? table : "?",
		    sqlscan_true(n, "skipData") ? " WITH NO DATA empties it: "
		    "its readers fail until the next refresh" : ""));
		free(table);
	}
	else if (strcmp(type, "CreateDomainStmt") == 0 &&
	    json_array_size(json_object_get(n, "constraints")) > 0) {
		json_array_foreach(json_object_get(n, "constraints"), i, con) {
			t = sqlscan_str(sqlscan_node(con, &type), "contype");
			if (t != NULL && strcmp(t, "CONSTR_CHECK") == 0) {
				lint_event(ls, &at, LR_DOMAIN_CREATE, 0, NULL,
				    xstrdup("CREATE DOMAIN with a CHECK "
				    "constraint"));
				break;
			}
		}
	} else if (strcmp(type, "AlterDomainStmt") == 0 &&
	    sqlscan_is(n, "subtype", "C") && !sqlscan_true(sqlscan_node(
	    json_object_get(n, "def"), &type), "skip_validation"))
		lint_event(ls, &at, LR_DOMAIN_ALTER, 0, NULL, xstrdup(
		    "ALTER DOMAIN ... ADD CONSTRAINT without NOT VALID"));
	else if (strcmp(type, "AlterEnumStmt") == 0 &&
	    sqlscan_str(n, "newVal") != NULL && sqlscan_str(n, "oldVal") == NULL) {
		ls->enum_vals = xreallocarray(ls->enum_vals, ls->n_enum + 1,
		    sizeof *ls->enum_vals);
		ls->enum_vals[ls->n_enum++] = xstrdup(sqlscan_str(n, "newVal"));
	} else if (strcmp(type, "TransactionStmt") == 0 &&
	    (kind = sqlscan_str(n, "kind")) != NULL) {
		if (strcmp(kind, "TRANS_STMT_BEGIN") == 0 ||
		    strcmp(kind, "TRANS_STMT_START") == 0) {
			/* What came before has committed (statement by
			 * statement), or there was nothing (a BEGIN inside a
			 * transaction is refused when the files load). */
			ls->in_begin = 1;
			lint_tx_end(ls);
		} else if (strcmp(kind, "TRANS_STMT_COMMIT") == 0 ||
		    strcmp(kind, "TRANS_STMT_ROLLBACK") == 0 ||
		    strcmp(kind, "TRANS_STMT_PREPARE") == 0) {
			ls->in_begin = sqlscan_true(n, "chain");
			lint_tx_end(ls);
		}
	}
	free(at.ignore);
}

/* The section is read: only the events are kept. */
void
lint_scan_end(struct lint_scan *ls)
{
	lint_tx_end(ls);
	ls->in_begin = 0;
}

void
lint_scan_clear(struct lint_scan *ls)
{
	size_t	 i;

	for (i = 0; i < ls->n; i++) {
		free(ls->ev[i].table);
		free(ls->ev[i].msg);
		free(ls->ev[i].ignore);
	}
	free(ls->ev);
	lint_tx_end(ls);
	memset(ls, 0, sizeof *ls);
}

void
lint_scan_copy(struct lint_scan *dst, const struct lint_scan *src)
{
	const struct lint_event	*s;
	struct lint_event	*d;
	size_t			 i;

	memset(dst, 0, sizeof *dst);
	if (src->n == 0)
		return;
	dst->ev = xreallocarray(NULL, src->n, sizeof *dst->ev);
	dst->n = src->n;
	for (i = 0; i < src->n; i++) {
		s = &src->ev[i];
		d = &dst->ev[i];
		*d = *s;
		d->table = s->table ? xstrdup(s->table) : NULL;
		d->msg = s->msg ? xstrdup(s->msg) : NULL;
		d->ignore = s->ignore ? xstrdup(s->ignore) : NULL;
	}
}
