/*
 * SQL analysis of migration sections with the real PostgreSQL parser.
 *
 * pg_query_parse() gives the parse tree as JSON (walked with jansson): the
 * statements, their kinds and the names they create things under.
 * pg_query_scan() gives the scanner's tokens (as protobuf, decoded here by
 * hand: libpg_query has no JSON form of them), so that each statement's text
 * can start at its first token and end at its last one, with no surrounding
 * whitespace or comments, whatever strings and comments it contains.  When
 * the parser refuses a section (SQL newer than its PostgreSQL, or wrong), the
 * tokens alone split it, at semicolons psql would end a statement at.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <pg_query.h>

#include "sqlscan.h"
#include "sqltok.h"

/*
 * Parse tree JSON nested deeper than this is emptied before jansson reads it:
 * jansson refuses nesting past 2048, which about a thousand chained operators
 * (1 || 2 || ...) reach, and nothing sqlscan reads lies deeper than about 12.
 */
#define SQLSCAN_JSON_DEPTH	64

/* Sections longer than this are parsed in pieces of about this size. */
#define SQLSCAN_PIECE		(256 * 1024)

/* How a statement names the object it creates or alters. */
enum sqlscan_namekind {
	SQLSCAN_RANGEVAR,	/* {"schemaname": ..., "relname": ...} */
	SQLSCAN_NAMELIST,	/* [{"String": {"sval": ...}}, ...] */
	SQLSCAN_SCHEMA		/* a string: the schema itself */
};

/* Statements whose target's schema migd must make exist before a run. */
static const struct sqlscan_target {
	const char		*type;	/* parse node */
	const char		*field;	/* member holding the name */
	const char		*sub;	/* member of field holding it or NULL */
	enum sqlscan_namekind	 kind;
} sqlscan_targets[] = {
	{ "CreateStmt", "relation", NULL, SQLSCAN_RANGEVAR },
	{ "CreateForeignTableStmt", "base", "relation", SQLSCAN_RANGEVAR },
	{ "CreateTableAsStmt", "into", "rel", SQLSCAN_RANGEVAR },
	{ "ViewStmt", "view", NULL, SQLSCAN_RANGEVAR },
	{ "IndexStmt", "relation", NULL, SQLSCAN_RANGEVAR },
	{ "CreateSeqStmt", "sequence", NULL, SQLSCAN_RANGEVAR },
	{ "AlterSeqStmt", "sequence", NULL, SQLSCAN_RANGEVAR },
	{ "CreateFunctionStmt", "funcname", NULL, SQLSCAN_NAMELIST },
	{ "CompositeTypeStmt", "typevar", NULL, SQLSCAN_RANGEVAR },
	{ "CreateEnumStmt", "typeName", NULL, SQLSCAN_NAMELIST },
	{ "CreateRangeStmt", "typeName", NULL, SQLSCAN_NAMELIST },
	{ "DefineStmt", "defnames", NULL, SQLSCAN_NAMELIST },
	{ "CreateDomainStmt", "domainname", NULL, SQLSCAN_NAMELIST },
	{ "AlterTableStmt", "relation", NULL, SQLSCAN_RANGEVAR },
	{ "RenameStmt", "relation", NULL, SQLSCAN_RANGEVAR },
	{ "CreateTrigStmt", "relation", NULL, SQLSCAN_RANGEVAR },
	{ "AlterObjectSchemaStmt", "newschema", NULL, SQLSCAN_SCHEMA },
	{ "CreateStatsStmt", "defnames", NULL, SQLSCAN_NAMELIST },
	{ "CreateOpFamilyStmt", "opfamilyname", NULL, SQLSCAN_NAMELIST },
	{ "CreateOpClassStmt", "opclassname", NULL, SQLSCAN_NAMELIST },
	{ "CreateConversionStmt", "conversion_name", NULL, SQLSCAN_NAMELIST },
	{ "CreatePolicyStmt", "table", NULL, SQLSCAN_RANGEVAR },
	{ "RuleStmt", "relation", NULL, SQLSCAN_RANGEVAR },
};

/* Statements that never run inside a transaction block, whatever options. */
static const struct sqlscan_notx {
	const char	*type;
	const char	*what;
} sqlscan_notx[] = {
	{ "CreatedbStmt",		"CREATE DATABASE" },
	{ "DropdbStmt",			"DROP DATABASE" },
	{ "CreateTableSpaceStmt",	"CREATE TABLESPACE" },
	{ "DropTableSpaceStmt",		"DROP TABLESPACE" },
	{ "AlterSystemStmt",		"ALTER SYSTEM" },
	{ "DropSubscriptionStmt",	"DROP SUBSCRIPTION" },
};

/*
 * TransactionStmt kinds: those that begin or end a transaction, then the
 * savepoints (not TX_CONTROL). chained is the name with AND CHAIN, which adds
 * SQLSCAN_TX_CHAIN; NULL where the grammar has no AND CHAIN.
 */
static const struct sqlscan_txkind {
	const char	*kind;
	const char	*what;
	const char	*chained;
	int		 flags;
} sqlscan_txkinds[] = {
	{ "TRANS_STMT_BEGIN", "BEGIN", NULL,
	    SQLSCAN_TX_CONTROL|SQLSCAN_TX_BEGIN },
	{ "TRANS_STMT_START", "START TRANSACTION", NULL,
	    SQLSCAN_TX_CONTROL|SQLSCAN_TX_BEGIN },
	{ "TRANS_STMT_COMMIT", "COMMIT", "COMMIT AND CHAIN",
	    SQLSCAN_TX_CONTROL|SQLSCAN_TX_COMMIT },
	{ "TRANS_STMT_ROLLBACK", "ROLLBACK", "ROLLBACK AND CHAIN",
	    SQLSCAN_TX_CONTROL|SQLSCAN_TX_ROLLBACK },
	{ "TRANS_STMT_PREPARE", "PREPARE TRANSACTION", NULL,
	    SQLSCAN_TX_CONTROL|SQLSCAN_TX_PREPARED },
	{ "TRANS_STMT_COMMIT_PREPARED", "COMMIT PREPARED", NULL,
	    SQLSCAN_TX_CONTROL|SQLSCAN_TX_PREPARED|SQLSCAN_NO_TX },
	{ "TRANS_STMT_ROLLBACK_PREPARED", "ROLLBACK PREPARED", NULL,
	    SQLSCAN_TX_CONTROL|SQLSCAN_TX_PREPARED|SQLSCAN_NO_TX },
	{ "TRANS_STMT_SAVEPOINT", "SAVEPOINT", NULL, SQLSCAN_SAVEPOINT },
	{ "TRANS_STMT_RELEASE", "RELEASE SAVEPOINT", NULL, SQLSCAN_SAVEPOINT },
	{ "TRANS_STMT_ROLLBACK_TO", "ROLLBACK TO SAVEPOINT", NULL,
	    SQLSCAN_SAVEPOINT },
};

/* ALTER SUBSCRIPTION kinds that refresh outside transactions by default. */
static const struct sqlscan_subkind {
	const char	*kind;
	const char	*what;
} sqlscan_subkinds[] = {
	{ "ALTER_SUBSCRIPTION_SET_PUBLICATION",
	    "ALTER SUBSCRIPTION ... SET PUBLICATION" },
	{ "ALTER_SUBSCRIPTION_ADD_PUBLICATION",
	    "ALTER SUBSCRIPTION ... ADD PUBLICATION" },
	{ "ALTER_SUBSCRIPTION_DROP_PUBLICATION",
	    "ALTER SUBSCRIPTION ... DROP PUBLICATION" },
};

/* REINDEX forms that work table by table in their own transactions. */
static const struct sqlscan_reindex {
	const char	*kind;
	const char	*what;
} sqlscan_reindexes[] = {
	{ "REINDEX_OBJECT_SCHEMA",	"REINDEX SCHEMA" },
	{ "REINDEX_OBJECT_SYSTEM",	"REINDEX SYSTEM" },
	{ "REINDEX_OBJECT_DATABASE",	"REINDEX DATABASE" },
};

static int	sqlscan_stmt(struct sqlscan *, json_t *, int, const char **);
static int	sqlscan_chars(const char *, size_t);

/* Length of a character from its first byte, as pg_utf_mblen has it. */
static size_t
sqlscan_utf8_len(unsigned char c)
{
	if ((c & 0x80) == 0)
		return (1);
	if ((c & 0xe0) == 0xc0)
		return (2);
	if ((c & 0xf0) == 0xe0)
		return (3);
	if ((c & 0xf8) == 0xf0)
		return (4);
	return (1);
}

/* Counts newlines in sql[from, to): lines are found in one pass. */
int
sqlscan_newlines(const char *sql, size_t from, size_t to)
{
	int	 n = 0;

	for (; from < to; from++) {
		if (sql[from] == '\n')
			n++;
	}
	return (n);
}

/* Byte offset of a parser position, which counts characters from 1. */
size_t
sqlscan_char_offset(const char *sql, int cursorpos)
{
	size_t	 len = strlen(sql), off = 0, n;
	int	 pos;

	for (pos = 1; pos < cursorpos && off < len; pos++) {
		n = sqlscan_utf8_len((unsigned char)sql[off]);
		off += n > len - off ? len - off : n;
	}
	return (off);
}

/* File line of a parse error: cursorpos counts characters from 1, not bytes. */
int
sqlscan_error_line(const char *sql, int first_line, int cursorpos)
{
	size_t	 len = strlen(sql), off = 0, n;
	int	 pos;

	if (cursorpos <= 0)
		return (first_line);
	for (pos = 1; pos < cursorpos && off < len; pos++) {
		n = sqlscan_utf8_len((unsigned char)sql[off]);
		off += n > len - off ? len - off : n;
	}
	/* "at end of input": point at the last line with text on it. */
	if (off >= len) {
		while (off > 0 && strchr(" \t\r\n\f\v", sql[off - 1]) != NULL)
			off--;
		if (off > 0)
			off--;
	}
	return (first_line + sqlscan_newlines(sql, 0, off));
}

/* Copies JSON with containers below SQLSCAN_JSON_DEPTH emptied, for jansson. */
static char *
sqlscan_json_prune(const char *in)
{
	char	*out, *o;
	int	 depth = 0, skip = 0, instr = 0;

	o = out = xmalloc(strlen(in) + 1);
	for (; *in != '\0'; in++) {
		if (instr) {
			if (*in == '\\' && in[1] != '\0') {
				if (!skip)
					*o++ = *in;
				in++;
			} else if (*in == '"')
				instr = 0;
		} else if (*in == '"')
			instr = 1;
		else if (*in == '{' || *in == '[') {
			if (skip)
				skip++;
			else if (depth == SQLSCAN_JSON_DEPTH) {
				/* Never longer than what it replaces. */
				*o++ = *in;
				*o++ = *in == '{' ? '}' : ']';
				skip = 1;
				continue;
			} else
				depth++;
		} else if (*in == '}' || *in == ']') {
			if (skip) {
				skip--;
				continue;
			}
			depth--;
		}
		if (!skip)
			*o++ = *in;
	}
	*o = '\0';
	return (out);
}

/* Finds invalid UTF-8 as jansson does, to say why it refused a parse tree. */
int
sqlscan_utf8_check(const char *s, size_t *bad)
{
	const unsigned char	*p = (const unsigned char *)s;
	uint32_t		 cp, min;
	int			 i, n;

	while (*p != '\0') {
		if (*p < 0x80) {
			p++;
			continue;
		}
		if (*p >= 0xc2 && *p <= 0xdf) {
			n = 1;
			min = 0x80;
		} else if (*p >= 0xe0 && *p <= 0xef) {
			n = 2;
			min = 0x800;
		} else if (*p >= 0xf0 && *p <= 0xf4) {
			n = 3;
			min = 0x10000;
		} else
			goto bad;
		cp = *p & (0x3f >> n);
		for (i = 1; i <= n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				goto bad;
			cp = cp << 6 | (p[i] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			goto bad;
		p += n + 1;
	}
	return (0);
bad:
	*bad = (size_t)(p - (const unsigned char *)s);
	return (-1);
}

/* Unwraps a Node ({"RangeVar": {...}}) into its fields and its type ("" when
 * it is none). */
json_t *
sqlscan_node(json_t *wrapped, const char **type)
{
	void	*it;

	*type = "";
	if (!json_is_object(wrapped) || json_object_size(wrapped) != 1)
		return (NULL);
	it = json_object_iter(wrapped);
	*type = json_object_iter_key(it);
	return (json_object_iter_value(it));
}

/* A string member or NULL: libpg_query leaves out empty members. */
const char *
sqlscan_str(json_t *obj, const char *key)
{
	return (json_string_value(json_object_get(obj, key)));
}

/* Whether a string member (an enum value, usually) equals want. */
int
sqlscan_is(json_t *obj, const char *key, const char *want)
{
	const char	*s = sqlscan_str(obj, key);

	return (s != NULL && strcmp(s, want) == 0);
}

/* A boolean member: absent means false in libpg_query's output. */
int
sqlscan_true(json_t *obj, const char *key)
{
	return (json_is_true(json_object_get(obj, key)));
}

/* The text of a String node ({"String": {"sval": ...}}), or NULL. */
static const char *
sqlscan_sval(json_t *node)
{
	return (sqlscan_str(json_object_get(node, "String"), "sval"));
}

/* The schema of a name list ([schema, name], [db, schema, name]) or NULL. */
static const char *
sqlscan_namelist_schema(json_t *list)
{
	size_t	 n;

	if (!json_is_array(list) || (n = json_array_size(list)) < 2)
		return (NULL);
	return (sqlscan_sval(json_array_get(list, n - 2)));
}

/* Finds option name in a list of DefElem nodes (WITH (...) and the like). */
json_t *
sqlscan_defelem(json_t *list, const char *name)
{
	json_t		*node, *def;
	const char	*type;
	size_t		 i;

	json_array_foreach(list, i, node) {
		def = sqlscan_node(node, &type);
		if (type != NULL && strcmp(type, "DefElem") == 0 &&
		    sqlscan_is(def, "defname", name))
			return (def);
	}
	return (NULL);
}

/* A DefElem read as defGetBoolean does; dflt when absent or unreadable. */
int
sqlscan_defbool(json_t *def, int dflt)
{
	json_t		*arg;
	const char	*type, *s;

	if (def == NULL)
		return (dflt);
	if ((arg = sqlscan_node(json_object_get(def, "arg"), &type)) == NULL)
		return (1);	/* "option" alone means true */
	if (strcmp(type, "Integer") == 0)	/* ival is left out when 0 */
		return (json_integer_value(json_object_get(arg, "ival")) != 0);
	if (strcmp(type, "Boolean") == 0)
		return (sqlscan_true(arg, "boolval"));
	if (strcmp(type, "String") == 0 && (s = sqlscan_str(arg, "sval"))) {
		if (strcasecmp(s, "false") == 0 || strcasecmp(s, "off") == 0)
			return (0);
		if (strcasecmp(s, "true") == 0 || strcasecmp(s, "on") == 0)
			return (1);
	}
	return (dflt);
}

/* Records a schema the section names; system schemas always exist. */
static void
sqlscan_schema_add(struct sqlscan *sc, const char *name, int line, int created)
{
	struct sqlscan_schema	*s;
	size_t			 i;

	if (name == NULL || *name == '\0' || sqlscan_system_schema(name))
		return;
	for (i = 0; i < sc->n_schemas; i++) {
		if (strcmp(sc->schemas[i].name, name) == 0) {
			/* A plain CREATE SCHEMA outranks a rename to it. */
			if (created && (sc->schemas[i].created == 0 ||
			    created == SQLSCAN_CREATED))
				sc->schemas[i].created = created;
			return;
		}
	}
	sc->schemas = xreallocarray(sc->schemas, sc->n_schemas + 1,
	    sizeof *sc->schemas);
	s = &sc->schemas[sc->n_schemas++];
	s->name = xstrdup(name);
	s->line = line;
	s->created = created;
}

/* Records a schema that a statement drops or renames away, repeats kept. */
static void
sqlscan_drop_add(struct sqlscan *sc, const char *name, int line,
    const char *what)
{
	struct sqlscan_drop	*d;

	if (name == NULL || *name == '\0')
		return;
	sc->drops = xreallocarray(sc->drops, sc->n_drops + 1,
	    sizeof *sc->drops);
	d = &sc->drops[sc->n_drops++];
	d->name = xstrdup(name);
	d->line = line;
	d->what = what;
}

/*
 * DROP SCHEMA a, b and ALTER SCHEMA a RENAME TO b take schemas away, which a
 * caller may refuse; the new name comes into being with the statement.
 */
static void
sqlscan_schema_drops(struct sqlscan *sc, const char *type, json_t *n,
    int line)
{
	json_t	*obj;
	size_t	 i;

	if (strcmp(type, "DropStmt") == 0 &&
	    sqlscan_is(n, "removeType", "OBJECT_SCHEMA")) {
		json_array_foreach(json_object_get(n, "objects"), i, obj) {
			sqlscan_drop_add(sc, sqlscan_sval(obj), line,
			    "DROP SCHEMA");
		}
	} else if (strcmp(type, "RenameStmt") == 0 &&
	    sqlscan_is(n, "renameType", "OBJECT_SCHEMA")) {
		/* The old name is in subname, not in relation or object. */
		sqlscan_drop_add(sc, sqlscan_str(n, "subname"), line,
		    "ALTER SCHEMA ... RENAME");
		sqlscan_schema_add(sc, sqlscan_str(n, "newname"), line,
		    SQLSCAN_RENAMED_TO);
	}
}

/* Collects the schema of what a statement of a known kind creates. */
static void
sqlscan_targets_add(struct sqlscan *sc, const char *type, json_t *n, int line)
{
	const struct sqlscan_target	*t;
	json_t				*v;
	size_t				 i;

	for (i = 0; i < nitems(sqlscan_targets); i++) {
		t = &sqlscan_targets[i];
		if (strcmp(t->type, type) != 0)
			continue;
		v = json_object_get(n, t->field);
		if (t->sub != NULL)
			v = json_object_get(v, t->sub);
		switch (t->kind) {
		case SQLSCAN_RANGEVAR:
			sqlscan_schema_add(sc, sqlscan_str(v, "schemaname"),
			    line, 0);
			break;
		case SQLSCAN_NAMELIST:
			sqlscan_schema_add(sc, sqlscan_namelist_schema(v),
			    line, 0);
			break;
		case SQLSCAN_SCHEMA:
			sqlscan_schema_add(sc, json_string_value(v), line, 0);
			break;
		}
		return;
	}
}

/* CREATE SCHEMA: the schema, then the targets of its embedded CREATEs. */
static int
sqlscan_create_schema(struct sqlscan *sc, json_t *n, int line,
    const char **what)
{
	json_t		*role, *elt;
	const char	*name, *ewhat;
	size_t		 i;
	int		 flags = 0, f;

	/* CREATE SCHEMA AUTHORIZATION joe creates schema joe. */
	if ((name = sqlscan_str(n, "schemaname")) == NULL) {
		role = json_object_get(n, "authrole");
		if (sqlscan_is(role, "roletype", "ROLESPEC_CSTRING"))
			name = sqlscan_str(role, "rolename");
	}
	sqlscan_schema_add(sc, name, line, !sqlscan_true(n, "if_not_exists"));

	json_array_foreach(json_object_get(n, "schemaElts"), i, elt) {
		ewhat = NULL;
		f = sqlscan_stmt(sc, elt, line, &ewhat);
		if (f != 0 && flags == 0)
			*what = ewhat;
		flags |= f;
	}
	return (flags);
}

/* SELECT INTO creates a table; in a UNION, INTO is on the leftmost SELECT. */
static void
sqlscan_select_into(struct sqlscan *sc, json_t *n, int line)
{
	json_t	*into;

	for (; n != NULL; n = json_object_get(n, "larg")) {
		if ((into = json_object_get(n, "intoClause")) != NULL) {
			sqlscan_schema_add(sc, sqlscan_str(json_object_get(into,
			    "rel"), "schemaname"), line, 0);
			return;
		}
	}
}

/* DETACH PARTITION CONCURRENTLY sits in the ALTER TABLE's command list. */
static int
sqlscan_detach_concurrently(json_t *n)
{
	json_t		*node, *cmd, *part;
	const char	*type;
	size_t		 i;

	json_array_foreach(json_object_get(n, "cmds"), i, node) {
		if ((cmd = sqlscan_node(node, &type)) == NULL ||
		    strcmp(type, "AlterTableCmd") != 0)
			continue;
		if (!sqlscan_is(cmd, "subtype", "AT_DetachPartition"))
			continue;
		part = sqlscan_node(json_object_get(cmd, "def"), &type);
		if (part != NULL && strcmp(type, "PartitionCmd") == 0 &&
		    sqlscan_true(part, "concurrent"))
			return (1);
	}
	return (0);
}

/* CREATE SUBSCRIPTION makes a slot, outside transactions, unless told not. */
static int
sqlscan_subscription_slot(json_t *n)
{
	json_t	*opts = json_object_get(n, "options");
	int	 connect;

	connect = sqlscan_defbool(sqlscan_defelem(opts, "connect"), 1);
	return (sqlscan_defbool(sqlscan_defelem(opts, "create_slot"), connect));
}

/* Flags of a statement: whether it fits in a transaction or controls one. */
static int
sqlscan_stmt_flags(const char *type, json_t *n, const char **what)
{
	const char	*kind = sqlscan_str(n, "kind");
	json_t		*opts;
	size_t		 i;
	int		 concurrent;

	if (kind == NULL)
		kind = "";
	for (i = 0; i < nitems(sqlscan_notx); i++) {
		if (strcmp(type, sqlscan_notx[i].type) == 0) {
			*what = sqlscan_notx[i].what;
			return (SQLSCAN_NO_TX);
		}
	}
	if (strcmp(type, "TransactionStmt") == 0) {
		for (i = 0; i < nitems(sqlscan_txkinds); i++) {
			if (strcmp(kind, sqlscan_txkinds[i].kind) != 0)
				continue;
			if (sqlscan_txkinds[i].chained != NULL &&
			    sqlscan_true(n, "chain")) {
				*what = sqlscan_txkinds[i].chained;
				return (sqlscan_txkinds[i].flags|
				    SQLSCAN_TX_CHAIN);
			}
			*what = sqlscan_txkinds[i].what;
			return (sqlscan_txkinds[i].flags);
		}
		return (0);
	}
	if (strcmp(type, "IndexStmt") == 0 && sqlscan_true(n, "concurrent")) {
		*what = "CREATE INDEX CONCURRENTLY";
		return (SQLSCAN_NO_TX | SQLSCAN_CONCURRENT |
		    SQLSCAN_BUILDS_INDEX);
	}
	if (strcmp(type, "RenameStmt") == 0 &&
	    sqlscan_is(n, "renameType", "OBJECT_SCHEMA")) {
		*what = "ALTER SCHEMA ... RENAME";
		return (SQLSCAN_RENAME_SCHEMA);
	}
	if (strcmp(type, "DropStmt") == 0) {
		if (sqlscan_is(n, "removeType", "OBJECT_SCHEMA")) {
			*what = "DROP SCHEMA";
			return (SQLSCAN_DROP_SCHEMA);
		}
		if (sqlscan_true(n, "concurrent")) {
			*what = "DROP INDEX CONCURRENTLY";
			return (SQLSCAN_NO_TX | SQLSCAN_CONCURRENT);
		}
		return (0);
	}
	if (strcmp(type, "ReindexStmt") == 0) {
		concurrent = sqlscan_defbool(sqlscan_defelem(json_object_get(
		    n, "params"), "concurrently"), 0) ? SQLSCAN_CONCURRENT |
		    SQLSCAN_BUILDS_INDEX : 0;
		for (i = 0; i < nitems(sqlscan_reindexes); i++) {
			if (strcmp(kind, sqlscan_reindexes[i].kind) == 0) {
				*what = sqlscan_reindexes[i].what;
				return (SQLSCAN_NO_TX | concurrent);
			}
		}
		if (concurrent) {
			*what = "REINDEX CONCURRENTLY";
			return (SQLSCAN_NO_TX | concurrent);
		}
		return (0);
	}
	if (strcmp(type, "VacuumStmt") == 0 &&
	    sqlscan_true(n, "is_vacuumcmd")) {
		*what = "VACUUM";
		return (SQLSCAN_NO_TX);
	}
	if (strcmp(type, "ClusterStmt") == 0 &&
	    json_object_get(n, "relation") == NULL) {
		*what = "CLUSTER";
		return (SQLSCAN_NO_TX);
	}
	if (strcmp(type, "AlterDatabaseStmt") == 0 &&
	    sqlscan_defelem(json_object_get(n, "options"), "tablespace")) {
		*what = "ALTER DATABASE ... SET TABLESPACE";
		return (SQLSCAN_NO_TX);
	}
	if (strcmp(type, "CreateSubscriptionStmt") == 0 &&
	    sqlscan_subscription_slot(n)) {
		*what = "CREATE SUBSCRIPTION";
		return (SQLSCAN_NO_TX);
	}
	if (strcmp(type, "AlterSubscriptionStmt") == 0) {
		if (strcmp(kind, "ALTER_SUBSCRIPTION_REFRESH") == 0) {
			*what = "ALTER SUBSCRIPTION ... REFRESH PUBLICATION";
			return (SQLSCAN_NO_TX);
		}
		opts = json_object_get(n, "options");
		for (i = 0; i < nitems(sqlscan_subkinds); i++) {
			if (strcmp(kind, sqlscan_subkinds[i].kind) == 0 &&
			    sqlscan_defbool(sqlscan_defelem(opts, "refresh"),
			    1)) {
				*what = sqlscan_subkinds[i].what;
				return (SQLSCAN_NO_TX);
			}
		}
		return (0);
	}
	if (strcmp(type, "AlterTableStmt") == 0 &&
	    sqlscan_detach_concurrently(n)) {
		*what = "ALTER TABLE ... DETACH PARTITION CONCURRENTLY";
		return (SQLSCAN_NO_TX | SQLSCAN_CONCURRENT);
	}
	if (strcmp(type, "CopyStmt") == 0 && sqlscan_str(n, "filename") ==
	    NULL && !sqlscan_true(n, "is_program")) {
		*what = sqlscan_true(n, "is_from") ? "COPY ... FROM STDIN" :
		    "COPY ... TO STDOUT";
		return (SQLSCAN_COPY_CLIENT);
	}
	if (strcmp(type, "VariableSetStmt") == 0 &&
	    sqlscan_is(n, "kind", "VAR_SET_MULTI") &&
	    (sqlscan_is(n, "name", "TRANSACTION") ||
	    sqlscan_is(n, "name", "TRANSACTION SNAPSHOT"))) {
		*what = "SET TRANSACTION";
		return (SQLSCAN_TX_SET);
	}
	if (strcmp(type, "DiscardStmt") == 0 &&
	    sqlscan_is(n, "target", "DISCARD_ALL")) {
		*what = "DISCARD ALL";
		return (SQLSCAN_NO_TX);
	}
	return (0);
}

/* PostgreSQL's lock modes by number (LOCKMODE), as pg_locks names them. */
static const char *const sqlscan_lockmodes[] = {
	NULL, "AccessShareLock", "RowShareLock", "RowExclusiveLock",
	"ShareUpdateExclusiveLock", "ShareLock", "ShareRowExclusiveLock",
	"ExclusiveLock", "AccessExclusiveLock"
};

/* ALTER TABLE subcommands that take less than ACCESS EXCLUSIVE
 * (AlterTableGetLockLevel); any other takes it. */
static const struct sqlscan_atlock {
	const char	*subtype;
	int		 mode;
} sqlscan_atlocks[] = {
	{ "AT_SetStatistics", 4 }, { "AT_ValidateConstraint", 4 },
	{ "AT_ClusterOn", 4 }, { "AT_DropCluster", 4 },
	{ "AT_EnableTrig", 6 }, { "AT_EnableAlwaysTrig", 6 },
	{ "AT_EnableReplicaTrig", 6 }, { "AT_EnableTrigAll", 6 },
	{ "AT_EnableTrigUser", 6 }, { "AT_DisableTrig", 6 },
	{ "AT_DisableTrigAll", 6 }, { "AT_DisableTrigUser", 6 },
};

/* The strongest mode an ALTER TABLE's subcommands take. */
static int
sqlscan_alter_lock(json_t *n)
{
	json_t		*cmd;
	const char	*sub;
	size_t		 i, k;
	int		 mode, max = 0;

	json_array_foreach(json_object_get(n, "cmds"), i, cmd) {
		cmd = json_object_get(cmd, "AlterTableCmd");
		sub = sqlscan_str(cmd, "subtype");
		mode = 8;
		for (k = 0; sub != NULL && k < nitems(sqlscan_atlocks); k++)
			if (strcmp(sub, sqlscan_atlocks[k].subtype) == 0)
				mode = sqlscan_atlocks[k].mode;
		if (sub != NULL && strcmp(sub, "AT_AddConstraint") == 0 &&
		    sqlscan_is(json_object_get(json_object_get(cmd, "def"),
		    "Constraint"), "contype", "CONSTR_FOREIGN"))
			mode = 6;
		/* These three only grow in strength and in what they meet. */
		if (mode > max)
			max = mode;
	}
	return (max);
}

/*
 * The lock a statement asks for on the tables it names, so that a step
 * that timed out names only the sessions in its way: a stronger mode when
 * the statement takes several (an UPDATE ... FROM), NULL when unknown.
 */
static const char *
sqlscan_lock(json_t *wrapped)
{
	json_t		*n, *mode;
	const char	*type;
	int		 m = 0;

	if ((n = sqlscan_node(wrapped, &type)) == NULL)
		return (NULL);
	if (strcmp(type, "LockStmt") == 0) {
		mode = json_object_get(n, "mode");
		m = json_is_integer(mode) ? (int)json_integer_value(mode) : 0;
	} else if (strcmp(type, "IndexStmt") == 0)
		m = sqlscan_true(n, "concurrent") ? 4 : 5;
	else if (strcmp(type, "AlterTableStmt") == 0 &&
	    sqlscan_is(n, "objtype", "OBJECT_TABLE"))
		m = sqlscan_detach_concurrently(n) ? 4 : sqlscan_alter_lock(n);
	else if (strcmp(type, "CreateTrigStmt") == 0)
		m = 6;
	else if (strcmp(type, "CreateStatsStmt") == 0)
		m = 4;
	else if (strcmp(type, "InsertStmt") == 0 || strcmp(type,
	    "UpdateStmt") == 0 || strcmp(type, "DeleteStmt") == 0 ||
	    strcmp(type, "MergeStmt") == 0)
		m = 3;
	else if (strcmp(type, "VacuumStmt") == 0 && sqlscan_true(n,
	    "is_vacuumcmd"))
		m = sqlscan_defbool(sqlscan_defelem(json_object_get(n,
		    "options"), "full"), 0) ? 8 : 4;
	else if (strcmp(type, "RefreshMatViewStmt") == 0)
		m = sqlscan_true(n, "concurrent") ? 7 : 8;
	else if (strcmp(type, "DropStmt") == 0 || strcmp(type,
	    "TruncateStmt") == 0 || strcmp(type, "RenameStmt") == 0)
		m = 8;
	return (m >= 1 && m <= 8 ? sqlscan_lockmodes[m] : NULL);
}

/*
 * Statements that change no session state and run no code of their own
 * beyond what their parse tree shows: DDL that defines (its defaults,
 * checks, bodies and queries are stored, not run), comments, grants,
 * drops.  quiet_calls: function calls in them are stored, not run; in the
 * others a call runs (an index expression, an added column's default).
 */
static const struct sqlscan_quiet {
	const char	*type;
	int		 quiet_calls;
} sqlscan_quiet[] = {
	{ "AlterDefaultPrivilegesStmt", 0 }, { "AlterDomainStmt", 0 },
	{ "AlterEnumStmt", 0 }, { "AlterFunctionStmt", 0 },
	{ "AlterObjectSchemaStmt", 0 }, { "AlterOwnerStmt", 0 },
	{ "AlterPolicyStmt", 1 }, { "AlterRoleStmt", 0 },
	{ "AlterSeqStmt", 0 }, { "AlterTableStmt", 0 },
	{ "CommentStmt", 0 }, { "CompositeTypeStmt", 0 },
	{ "CreateDomainStmt", 1 }, { "CreateEnumStmt", 0 },
	{ "CreateFunctionStmt", 1 }, { "CreatePolicyStmt", 1 },
	{ "CreateRoleStmt", 0 }, { "CreateSchemaStmt", 0 },
	{ "CreateSeqStmt", 0 }, { "CreateStmt", 1 }, { "CreateTrigStmt", 1 },
	{ "DefineStmt", 1 }, { "DropRoleStmt", 0 }, { "DropStmt", 0 },
	{ "GrantRoleStmt", 0 }, { "GrantStmt", 0 }, { "IndexStmt", 0 },
	{ "LockStmt", 0 }, { "NotifyStmt", 0 }, { "RenameStmt", 0 },
	{ "RuleStmt", 1 }, { "TransactionStmt", 0 },
	{ "VariableShowStmt", 0 }, { "ViewStmt", 1 }
};

/* Serial types, whose column added to a table with rows calls nextval. */
static const char *const sqlscan_serials[] = {
	"serial", "serial2", "serial4", "serial8", "smallserial", "bigserial"
};

/* What a subtree holds: a function call or an attached partition
 * (SQLSCAN_SESSION_CODE), a temporary
 * relation or a name in pg_temp (_TEMP), a serial type or an identity
 * (_SEQUENCES); the strings may over-match, which costs a reset, never a
 * leak. */
static int
sqlscan_session_tree(json_t *v)
{
	const char	*key, *s;
	json_t		*m;
	size_t		 i;
	int		 bits = 0;

	if (json_is_array(v)) {
		json_array_foreach(v, i, m)
			bits |= sqlscan_session_tree(m);
		return (bits);
	}
	if (!json_is_object(v))
		return (0);
	json_object_foreach(v, key, m) {
		if (strcmp(key, "FuncCall") == 0)
			bits |= SQLSCAN_SESSION_CODE;
		if (json_is_string(m)) {
			s = json_string_value(m);
			if (strcmp(key, "relpersistence") == 0 &&
			    strcmp(s, "t") == 0)
				bits |= SQLSCAN_SESSION_TEMP;
			if ((strcmp(key, "schemaname") == 0 ||
			    strcmp(key, "sval") == 0) &&
			    strncmp(s, "pg_temp", 7) == 0)
				bits |= SQLSCAN_SESSION_TEMP;
			/* Checked against the partition's rows. */
			if (strcmp(key, "subtype") == 0 &&
			    strcmp(s, "AT_AttachPartition") == 0)
				bits |= SQLSCAN_SESSION_CODE;
			if (strcmp(key, "contype") == 0 &&
			    strcmp(s, "CONSTR_IDENTITY") == 0)
				bits |= SQLSCAN_SESSION_SEQUENCES;
			if (strcmp(key, "sval") == 0)
				for (i = 0; i < nitems(sqlscan_serials); i++)
					if (strcmp(s, sqlscan_serials[i]) == 0)
						bits |=
						    SQLSCAN_SESSION_SEQUENCES;
		} else
			bits |= sqlscan_session_tree(m);
	}
	return (bits);
}

/*
 * What a statement may leave in the session, from its parse tree: SET and
 * its kind, PREPARE, DECLARE, LISTEN and temporary objects by their
 * statements; everything that may run code the tree does not show is
 * SQLSCAN_SESSION_CODE: a call (set_config, nextval, a function of the
 * project's), a DO block or CALL, a query or a row change (its functions,
 * views and triggers), EXECUTE, FETCH, an extension's script, and every
 * statement not known to be quiet.  Not seen: code that operators, casts
 * and index support functions of user-defined types run, and event
 * triggers (which run_batch.c asks the server about).
 */
int
sqlscan_session(json_t *stmt)
{
	const char	*type;
	json_t		*n;
	size_t		 i;
	int		 bits;

	if ((n = sqlscan_node(stmt, &type)) == NULL)
		return (SQLSCAN_SESSION_ALL);
	if (strcmp(type, "VariableSetStmt") == 0)
		return (SQLSCAN_SESSION_SETS);
	if (strcmp(type, "PrepareStmt") == 0 ||
	    strcmp(type, "DeallocateStmt") == 0)
		return (SQLSCAN_SESSION_PREPARED);
	if (strcmp(type, "ClosePortalStmt") == 0)
		return (SQLSCAN_SESSION_CURSORS);
	if (strcmp(type, "DeclareCursorStmt") == 0)
		return (SQLSCAN_SESSION_ALL);	/* it runs its query too */
	if (strcmp(type, "ListenStmt") == 0 ||
	    strcmp(type, "UnlistenStmt") == 0)
		return (SQLSCAN_SESSION_LISTEN);
	for (i = 0; i < nitems(sqlscan_quiet); i++)
		if (strcmp(type, sqlscan_quiet[i].type) == 0)
			break;
	if (i == nitems(sqlscan_quiet))
		return (SQLSCAN_SESSION_ALL);
	bits = sqlscan_session_tree(n);
	if (sqlscan_quiet[i].quiet_calls)
		bits &= ~SQLSCAN_SESSION_CODE;
	/* A new partition may be checked against the default one's rows; a
	 * schema's elements are statements of their own. */
	if ((strcmp(type, "CreateStmt") == 0 && json_object_get(n,
	    "partbound") != NULL) || (strcmp(type, "CreateSchemaStmt") == 0 &&
	    json_object_get(n, "schemaElts") != NULL))
		bits |= SQLSCAN_SESSION_CODE;
	/* Only an added column fills rows from a sequence. */
	if (strcmp(type, "AlterTableStmt") != 0)
		bits &= ~SQLSCAN_SESSION_SEQUENCES;
	return (bits & SQLSCAN_SESSION_CODE ? SQLSCAN_SESSION_ALL : bits);
}

/* Classifies a statement and collects its schemas; returns its flags. */
static int
sqlscan_stmt(struct sqlscan *sc, json_t *wrapped, int line, const char **what)
{
	json_t		*n, *opt;
	const char	*type;

	*what = NULL;
	if ((n = sqlscan_node(wrapped, &type)) == NULL)
		return (0);

	if (strcmp(type, "CreateSchemaStmt") == 0)
		return (sqlscan_create_schema(sc, n, line, what));
	if (strcmp(type, "SelectStmt") == 0)
		sqlscan_select_into(sc, n, line);
	else if (strcmp(type, "CreateExtensionStmt") == 0) {
		opt = sqlscan_defelem(json_object_get(n, "options"), "schema");
		sqlscan_schema_add(sc, sqlscan_sval(json_object_get(opt,
		    "arg")), line, 0);
	} else {
		sqlscan_targets_add(sc, type, n, line);
		sqlscan_schema_drops(sc, type, n, line);
	}
	return (sqlscan_stmt_flags(type, n, what));
}

/* Adds a statement, growing geometrically: sections can hold thousands. */
struct sqlscan_stmt *
sqlscan_stmt_add(struct sqlscan *sc, size_t *size)
{
	struct sqlscan_stmt	*st;

	if (sc->n_stmts == *size) {
		*size = *size == 0 ? 16 : *size * 2;
		sc->stmts = xreallocarray(sc->stmts, *size, sizeof *sc->stmts);
	}
	st = &sc->stmts[sc->n_stmts++];
	memset(st, 0, sizeof *st);
	return (st);
}

/* Gives back what the statement array grew beyond its count: a section's
 * statements are kept as long as its revision set. */
static void
sqlscan_fold(struct sqlscan *sc)
{
	if (sc->n_stmts > 0)
		sc->stmts = xreallocarray(sc->stmts, sc->n_stmts,
		    sizeof *sc->stmts);
}

/* Column (in characters, from 1) of byte offset on its line. */
static int
sqlscan_column(const char *sql, size_t offset)
{
	size_t	 start = offset;

	while (start > 0 && sql[start - 1] != '\n')
		start--;
	return (sqlscan_chars(sql + start, offset - start) + 1);
}

/* Places the parse tree's statements on the tokens and analyses each. */
static int
sqlscan_walk(const char *sql, int first_line, size_t base, json_t *root,
    const struct sqltoks *toks, struct sqlscan *sc, size_t *size)
{
	struct sqlscan_stmt	*st;
	json_t			*raw, *list;
	json_int_t		 loc, len;
	size_t			 sqllen = strlen(sql), i, ti = 0, first, last;
	size_t			 lined = 0;
	int			 line = first_line;

	list = json_object_get(root, "stmts");
	if (list != NULL && !json_is_array(list))
		return (-1);
	json_array_foreach(list, i, raw) {
		/* Both are left out when 0; length 0 means "to the end". */
		loc = json_integer_value(json_object_get(raw, "stmt_location"));
		len = json_integer_value(json_object_get(raw, "stmt_len"));
		if (loc < 0 || len < 0 || (size_t)loc > sqllen ||
		    (size_t)len > sqllen - (size_t)loc)
			return (-1);
		if (len == 0)
			len = (json_int_t)(sqllen - (size_t)loc);

		while (ti < toks->n && toks->v[ti].start < (size_t)loc)
			ti++;
		first = ti;
		while (ti < toks->n && toks->v[ti].start < (size_t)(loc + len))
			ti++;
		if (ti == first)
			return (-1);
		last = ti - 1;
		while (last > first &&
		    toks->v[last].token == SQLTOK_SEMICOLON)
			last--;

		st = sqlscan_stmt_add(sc, size);
		st->offset = toks->v[first].start;
		st->len = toks->v[last].end - st->offset;
		line += sqlscan_newlines(sql, lined, st->offset);
		lined = st->offset;
		st->offset += base;
		st->line = line;
		st->flags = sqlscan_stmt(sc, json_object_get(raw, "stmt"),
		    line, &st->what);
		lint_stmt(&sc->lint, json_object_get(raw, "stmt"), sql,
		    st->offset - base, line, sqlscan_column(sql,
		    st->offset - base));
		if (st->flags == 0)
			st->what = NULL;
		sc->flags |= st->flags;
		st->session = sqlscan_session(json_object_get(raw, "stmt"));
		st->lock = sqlscan_lock(json_object_get(raw, "stmt"));
		sc->session |= st->session;
	}
	return (0);
}

/* For callers to tell SQL newer than the parser from SQL that is wrong. */
int
sqlscan_parser_version(void)
{
	return (PG_VERSION_NUM);
}

/*
 * Parses sql (a section, or a piece of one starting at byte base of the
 * section and at line first_line) and appends its statements to sc.  Returns
 * 0; 1 when the parser refused it (*perr gets its error, for the caller to
 * free with pg_query_free_parse_result); or -1 with errs added.  The parse
 * tree's JSON and its jansson form are freed before it returns.
 */
static int
sqlscan_piece(const char *sql, const char *path, int first_line, size_t base,
    struct sqlscan *sc, size_t *size, PgQueryParseResult *perr,
    struct errlist *errs)
{
	PgQueryParseResult	 res;
	struct sqltoks		 toks = { NULL, 0, 0, NULL, 0, 0 };
	json_t			*root = NULL;
	json_error_t		 jerr;
	char			*cause = NULL, *json;
	size_t			 bad;
	int			 rv = -1, pos;

	res = pg_query_parse(sql);
	if (res.error != NULL) {
		*perr = res;
		return (1);
	}
	json = sqlscan_json_prune(res.parse_tree);
	pg_query_free_parse_result(res);
	root = json_loads(json, 0, &jerr);
	free(json);
	if (root == NULL) {
		if (sqlscan_utf8_check(sql, &bad) != 0) {
			errlist_add(errs, "%s:%d: invalid UTF-8 byte sequence",
			    path, first_line + sqlscan_newlines(sql, 0, bad));
		} else {
			errlist_add(errs, "%s:%d: cannot read the SQL parser's "
			    "output: %s", path, first_line, jerr.text);
		}
		goto out;
	}
	if (sqltok_scan(sql, &toks, &cause, &pos) != 0) {
		errlist_add(errs, "%s:%d: %s", path, sqlscan_error_line(sql,
		    first_line, pos), cause);
		goto out;
	}
	if (sqlscan_walk(sql, first_line, base, root, &toks, sc, size) != 0) {
		errlist_add(errs, "%s:%d: unexpected output from the SQL "
		    "parser", path, first_line);
		goto out;
	}
	rv = 0;
out:
	free(cause);
	free(toks.v);
	free(toks.comments);
	json_decref(root);
	return (rv);
}

/* Characters (not bytes) in s[0, len): what the parser's cursorpos counts. */
static int
sqlscan_chars(const char *s, size_t len)
{
	size_t	 i;
	int	 n = 0;

	for (i = 0; i < len; i++) {
		if (((unsigned char)s[i] & 0xc0) != 0x80)
			n++;
	}
	return (n);
}

/*
 * A large section parsed a piece at a time, each piece whole statements of
 * about SQLSCAN_PIECE bytes cut where PostgreSQL's scanner ends a statement:
 * the parser's JSON of a 50 MB section at once took gigabytes.  Returns 0;
 * 1 when a piece has a syntax error before its end (the section's first,
 * as one parse would find it), with *perr set for the caller to free and
 * its cursorpos counted from the start of the section; or -1 when a piece
 * does not parse alone for another reason (a cut inside BEGIN ATOMIC or a
 * rule's action list, where the parser wants more), sc then emptied: the
 * caller parses the section whole, for the exact verdict.
 */
static int
sqlscan_pieces(const char *sql, const char *path, int first_line,
    struct sqlscan *sc, PgQueryParseResult *perr)
{
	PgQuerySplitResult	 split;
	struct errlist		 errs = { NULL, 0 };
	char			*buf = NULL;
	size_t			 size = 0, len = strlen(sql), from = 0, to, i;
	size_t			 cap = 0, lined = 0;
	int			 line = first_line, rv = -1, piece;

	split = pg_query_split_with_scanner(sql);
	if (split.error != NULL || split.n_stmts == 0)
		goto out;
	for (i = 0; i < (size_t)split.n_stmts; i++) {
		/* The piece ends after statement i when it is big enough. */
		if (i + 1 < (size_t)split.n_stmts)
			to = (size_t)split.stmts[i + 1]->stmt_location;
		else
			to = len;
		if (to > len || to < from)
			goto out;
		if (to - from < SQLSCAN_PIECE && to < len)
			continue;
		if (to - from + 1 > cap) {
			cap = to - from + 1;
			buf = xrealloc(buf, cap);
		}
		memcpy(buf, sql + from, to - from);
		buf[to - from] = '\0';
		line += sqlscan_newlines(sql, lined, from);
		lined = from;
		piece = sqlscan_piece(buf, path, line, from, sc, &size, perr,
		    &errs);
		if (piece == 1 && perr->error->cursorpos > 0 &&
		    perr->error->cursorpos < sqlscan_chars(buf, to - from)) {
			/* Wrong before the piece's end: wrong in the section. */
			perr->error->cursorpos += sqlscan_chars(sql, from);
			rv = 1;
			goto out;
		}
		if (piece == 1)
			pg_query_free_parse_result(*perr);
		if (piece != 0)
			goto out;
		from = to;
	}
	rv = 0;
out:
	errlist_clear(&errs);
	free(buf);
	pg_query_free_split_result(split);
	if (rv != 0)
		sqlscan_clear(sc);
	return (rv);
}

/* Parses a section up front, so nothing runs unless all of it is valid. */
int
sqlscan_analyze(const char *sql, const char *path, int first_line,
    struct sqlscan *sc, struct errlist *errs)
{
	PgQueryParseResult	 perr;
	size_t			 size = 0;
	int			 rv;

	memset(sc, 0, sizeof *sc);
	rv = -1;
	if (strlen(sql) > SQLSCAN_PIECE)
		rv = sqlscan_pieces(sql, path, first_line, sc, &perr);
	if (rv == 0) {
		sqlscan_fold(sc);
		lint_scan_end(&sc->lint);
		return (0);
	}
	if (rv == -1)
		rv = sqlscan_piece(sql, path, first_line, 0, sc, &size, &perr,
		    errs);
	if (rv == 1) {
		rv = -1;
		if (sqltok_unparsed(sql, path, first_line, perr.error, sc,
		    errs) == 0)
			rv = 1;
		pg_query_free_parse_result(perr);
	}
	if (rv == -1)
		sqlscan_clear(sc);
	else
		sqlscan_fold(sc);
	lint_scan_end(&sc->lint);
	return (rv);
}

/* Frees what sqlscan_analyze filled in; safe on an empty or cleared struct. */
void
sqlscan_clear(struct sqlscan *sc)
{
	size_t	 i;

	for (i = 0; i < sc->n_schemas; i++)
		free(sc->schemas[i].name);
	free(sc->schemas);
	for (i = 0; i < sc->n_drops; i++)
		free(sc->drops[i].name);
	free(sc->drops);
	free(sc->stmts);
	free(sc->parse_error);
	lint_scan_clear(&sc->lint);
	memset(sc, 0, sizeof *sc);
}

/* A deep copy, for a file reused by the next load: what the checks need,
 * without parsing the SQL again. */
void
sqlscan_copy(struct sqlscan *dst, const struct sqlscan *src)
{
	size_t	 i;

	*dst = *src;
	dst->stmts = NULL;
	if (src->n_stmts > 0) {
		dst->stmts = xreallocarray(NULL, src->n_stmts,
		    sizeof *dst->stmts);
		memcpy(dst->stmts, src->stmts, src->n_stmts *
		    sizeof *dst->stmts);
	}
	dst->schemas = xcalloc(src->n_schemas + 1, sizeof *dst->schemas);
	for (i = 0; i < src->n_schemas; i++) {
		dst->schemas[i] = src->schemas[i];
		dst->schemas[i].name = xstrdup(src->schemas[i].name);
	}
	dst->drops = xcalloc(src->n_drops + 1, sizeof *dst->drops);
	for (i = 0; i < src->n_drops; i++) {
		dst->drops[i] = src->drops[i];
		dst->drops[i].name = xstrdup(src->drops[i].name);
	}
	lint_scan_copy(&dst->lint, &src->lint);
	dst->parse_error = src->parse_error != NULL ?
	    xstrdup(src->parse_error) : NULL;
}

/* The server refuses new pg_* schemas; these exist in every database. */
int
sqlscan_system_schema(const char *name)
{
	return (strncmp(name, "pg_", 3) == 0 ||
	    strcmp(name, "information_schema") == 0);
}

/* Quotes always, so capitals, spaces and quotes come through unchanged. */
char *
sqlscan_quote_ident(const char *name)
{
	const char	*s;
	char		*q, *p;
	size_t		 n = 3;

	for (s = name; *s != '\0'; s++)
		n += *s == '"' ? 2 : 1;
	p = q = xmalloc(n);
	*p++ = '"';
	for (s = name; *s != '\0'; s++) {
		if (*s == '"')
			*p++ = '"';
		*p++ = *s;
	}
	*p++ = '"';
	*p = '\0';
	return (q);
}
