/*
 * adopt --from TOOL: a database another tool migrated and migd never
 * managed.  TOOL's state table is read (never written), its versions are
 * mapped to the files' revisions as layout.c names them, and the version
 * table and the 'adopt' history rows are written in one transaction.
 */
#include <sys/queue.h>
#include <sys/types.h>

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "config.h"
#include "layout.h"
#include "migd.h"
#include "engine.h"

/* Each tool's state table, in enum layout_format order from DBMATE. */
static const char *const adopt_from_tables[] = {
	"schema_migrations", "schema_migrations", "_sqlx_migrations",
	"__diesel_schema_migrations", "goose_db_version",
	"flyway_schema_history"
};

/* Which state tables exist (search_path); golang-migrate's
 * schema_migrations is told from dbmate's by its dirty column. */
static const char adopt_from_detect_sql[] =
	"WITH t AS (SELECT to_regclass('schema_migrations') AS sm) "
	"SELECT sm IS NOT NULL AND NOT d, sm IS NOT NULL AND d, "
	"to_regclass('_sqlx_migrations') IS NOT NULL, "
	"to_regclass('__diesel_schema_migrations') IS NOT NULL, "
	"to_regclass('goose_db_version') IS NOT NULL, "
	"to_regclass('flyway_schema_history') IS NOT NULL, "
	/* the same tables in schemas off the search_path: schema, table */
	"(SELECT string_agg(format('%I.%I', n.nspname, c.relname), ' ' ORDER "
	"BY n.nspname, c.relname) FROM pg_catalog.pg_class c JOIN "
	"pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind "
	"IN ('r', 'p') AND c.relname IN ('schema_migrations', "
	"'_sqlx_migrations', '__diesel_schema_migrations', 'goose_db_version', "
	"'flyway_schema_history') AND n.nspname NOT IN ('pg_catalog', "
	"'information_schema') AND c.oid IS DISTINCT FROM "
	"to_regclass(c.relname::text)::oid) "
	"FROM t, LATERAL (SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE "
	"attrelid = sm AND attname = 'dirty' AND NOT attisdropped) AS d) x";

/*
 * The tool's table (NULL: any tool's) in schemas off the search_path, as
 * "schema.table, ..." (to free), or NULL: an application migrated into its
 * own schema (Flyway's defaultSchema, a search_path in the tool's URL)
 * keeps the table there, and ran its unqualified DDL there too.
 */
static char *
adopt_from_elsewhere(const char *all, const char *table, char **schema)
{
	char		*out = NULL, *tmp, *dot;
	const char	*p, *sp;
	size_t		 n;

	*schema = NULL;
	for (p = all; *p != '\0'; p = *sp != '\0' ? sp + 1 : sp) {
		sp = strchr(p, ' ');
		if (sp == NULL)
			sp = p + strlen(p);
		n = sp - p;
		dot = memchr(p, '.', n);
		if (dot == NULL || (table != NULL && (strlen(table) != n -
		    (dot - p) - 1 || strncmp(dot + 1, table, n - (dot - p) -
		    1) != 0)))
			continue;
		if (*schema == NULL)
			*schema = xstrndup(p, dot - p);
		tmp = xprintf("%s%s%.*s", out != NULL ? out : "", out != NULL ?
		    ", " : "", (int)n, p);
		free(out);
		out = tmp;
	}
	return (out);
}

/* Each tool's rows: version, whether it is in effect (golang-migrate:
 * not dirty; sqlx, Flyway: success), the row's type (Flyway), the
 * checksum of the file it ran (sqlx, Flyway; '' when none); @T is the
 * table (adopt_from_sql). */
static const char *const adopt_from_rows_sql[] = {
	"SELECT version::text, true, '', '' FROM @T",
	"SELECT version::text, NOT dirty, '', '' FROM @T",
	"SELECT version::text, success, '', encode(checksum, 'hex') FROM @T",
	"SELECT version::text, true, '', '' FROM @T",
	/* goose: the latest row of each version says whether it is applied;
	 * version 0 is goose's own first row. */
	"SELECT version_id::text, is_applied, '', '' FROM (SELECT DISTINCT ON "
	"(version_id) version_id, is_applied FROM @T ORDER BY "
	"version_id, id DESC) g WHERE version_id <> 0",
	/* Flyway: 'flyway repair' marks an applied migration whose file is
	 * gone with a later DELETE row, and Flyway ignores it from then on. */
	"SELECT coalesce(version, ''), success, type, coalesce(checksum::text, "
	"'') FROM @T h WHERE type NOT IN ('SCHEMA', "
	"'DELETE') AND NOT EXISTS (SELECT 1 FROM @T d "
	"WHERE d.type = 'DELETE' AND d.version = h.version AND "
	"d.installed_rank > h.installed_rank) ORDER BY installed_rank"
};

/* The columns adopt reads of each tool's table: a table named by --table
 * without them is not that tool's. */
static const char *const adopt_from_columns[] = {
	"version", "version dirty", "version success checksum", "version",
	"id version_id is_applied",
	"installed_rank version type checksum success"
};

/* The state table named in messages: --table's, or the tool's own. */
static const char *
adopt_from_table(const struct job *j)
{
	if (j->adopt_table != NULL)
		return (j->adopt_table);
	return (adopt_from_tables[j->adopt_fmt - LAYOUT_DBMATE]);
}

/* The tool's rows query, reading table (a name PostgreSQL printed, or one
 * of adopt_from_tables). */
static char *
adopt_from_sql(int fmt, const char *table)
{
	const char	*tpl = adopt_from_rows_sql[fmt - LAYOUT_DBMATE], *at;
	char		*out = xstrdup(""), *tmp;

	while ((at = strstr(tpl, "@T")) != NULL) {
		tmp = xprintf("%s%.*s%s", out, (int)(at - tpl), tpl, table);
		free(out);
		out = tmp;
		tpl = at + 2;
	}
	tmp = xprintf("%s%s", out, tpl);
	free(out);
	return (tmp);
}

static void	 adopt_from_detect(struct job *, PGresult *);
static void	 adopt_from_named(struct job *, PGresult *);
static void	 adopt_from_rows(struct job *, PGresult *);
static void	 adopt_from_write(struct job *, PGresult *);

/* A version as a key both sides agree on: Flyway's parts (1.1 = 1_1 =
 * 1.01) without leading zeros; golang-migrate's, sqlx's and goose's digits
 * without leading zeros (they keep 000001 as 1); dbmate's and diesel's
 * digits as written (their versions are strings: 001 is not 1; diesel's
 * 2024-01-15-093012 is 20240115093012). */
static char *
adopt_from_key(int fmt, const char *v)
{
	char	*out = xcalloc(strlen(v) + 2, 1);
	size_t	 k = 0;
	int	 lead = 1;

	for (; *v != '\0'; v++) {
		if (fmt == LAYOUT_FLYWAY && (*v == '.' || *v == '_')) {
			if (lead)
				out[k++] = '0';
			out[k++] = '.';
			lead = 1;
			continue;
		}
		if (*v < '0' || *v > '9')
			continue;
		if (lead && *v == '0' && fmt != LAYOUT_DBMATE && fmt !=
		    LAYOUT_DIESEL)
			continue;
		lead = 0;
		out[k++] = *v;
	}
	if (lead && (k == 0 || out[k - 1] == '.'))
		out[k++] = '0';
	out[k] = '\0';
	/* Flyway: 1.0 is 1 */
	while (fmt == LAYOUT_FLYWAY && k > 2 && strcmp(out + k - 2, ".0") == 0)
		out[k -= 2] = '\0';
	return (out);
}

/* The revision a tool's version names, or -1. */
static ssize_t
adopt_from_find(struct job *j, const char *version)
{
	const size_t	*order;
	size_t		 n, i;
	char		*want, *have;
	ssize_t		 found = -1;

	want = adopt_from_key(j->adopt_fmt, version);
	n = graph_order(j->rs->graph, &order);
	for (i = 0; i < n && found < 0; i++) {
		have = adopt_from_key(j->adopt_fmt, graph_id(j->rs->graph,
		    order[i]));
		if (strcmp(have, want) == 0)
			found = (ssize_t)order[i];
		free(have);
	}
	free(want);
	return (found);
}

/*
 * The entry of a file migd skipped (not read as this layout) whose name
 * carries the tool's version, or NULL: the files are there, read as
 * another layout (format set to the wrong tool).
 */
static const char *
adopt_from_skipped(struct job *j, const char *version)
{
	const struct errlist	*sk = &j->rs->set.skipped;
	const char		*e, *end, *c, *p;
	char			*want, *run, *have;
	size_t			 i, n;
	int			 same;

	want = adopt_from_key(j->adopt_fmt, version);
	for (i = 0; i < sk->n; i++) {
		e = sk->v[i];
		if ((end = strstr(e, ": skipped: ")) == NULL)
			continue;
		for (c = e; c < end; c = p + 1) {
			p = c;
			if (j->adopt_fmt == LAYOUT_FLYWAY && (*p == 'V' ||
			    *p == 'U') && p[1] >= '0' && p[1] <= '9')
				p++;
			for (n = 0; p + n < end && ((p[n] >= '0' && p[n] <=
			    '9') || p[n] == '-' || (j->adopt_fmt ==
			    LAYOUT_FLYWAY && (p[n] == '.' || (p[n] == '_' &&
			    p[n + 1] != '_')))); n++)
				/* nothing */;
			if (n > 0) {
				run = xstrndup(p, n);
				have = adopt_from_key(j->adopt_fmt, run);
				same = strcmp(have, want) == 0;
				free(run);
				free(have);
				if (same) {
					free(want);
					return (e);
				}
			}
			if ((p = memchr(c, '/', end - c)) == NULL)
				break;
		}
	}
	free(want);
	return (NULL);
}

/* Whether revision a comes before revision b in the upgrade order. */
static int
adopt_from_before(const size_t *order, size_t n, ssize_t a, ssize_t b)
{
	size_t	 i;

	for (i = 0; i < n; i++) {
		if (order[i] == (size_t)a)
			return (1);
		if (order[i] == (size_t)b)
			return (0);
	}
	return (0);
}

/*
 * Another client session of this database, in a transaction still open,
 * holding a lock that schema changes take (ALTER, CREATE INDEX, a foreign
 * key) on an existing table, or creating something in a schema (CREATE
 * locks the schema): the other tool migrating now, whose state table does
 * not yet say what it is applying.  migd does not know each tool's own
 * lock.  Temporary tables (their pg_temp schema, one made in that
 * transaction not yet in our catalog) are the session's own business.
 */
static const char adopt_from_busy_sql[] =
	"SELECT a.pid, coalesce(a.application_name, ''), coalesce(a.usename, "
	"''), l.mode, coalesce(c.oid::regclass::text, 'schema ' || "
	"quote_ident(n.nspname)), left(regexp_replace(coalesce(a.query, ''), "
	"'\\s+', ' ', 'g'), 120), to_char(a.xact_start AT TIME ZONE 'UTC', "
	"'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
	"FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON "
	"a.pid = l.pid LEFT JOIN pg_catalog.pg_class c ON l.locktype = "
	"'relation' AND c.oid = l.relation LEFT JOIN pg_catalog.pg_namespace n "
	"ON l.locktype = 'object' AND l.classid = "
	"'pg_catalog.pg_namespace'::pg_catalog.regclass AND n.oid = l.objid "
	"WHERE l.granted AND l.database = (SELECT oid FROM "
	"pg_catalog.pg_database WHERE datname = pg_catalog.current_database()) "
	"AND l.pid <> pg_catalog.pg_backend_pid() AND a.backend_type = "
	"'client backend' AND ((l.mode IN ('ShareLock', "
	"'ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock') AND "
	"c.relpersistence IN ('p', 'u')) OR (n.nspname NOT LIKE 'pg\\_temp\\_%' "
	"AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%')) "
	"ORDER BY a.xact_start, c.oid IS NULL LIMIT 1";

static void	 adopt_from_busy(struct job *, PGresult *);

/* Refused unless migd never wrote the version table. */
void
adopt_from_start(struct job *j)
{
	if (j->st.n_rows != 0) {
		job_fail(j, MIGD_ERR_STATE, "version_table_not_empty",
		    json_pack("{s:s}", "from", j->adopt_from), "adopt --from "
		    "%s is for a database migd never managed, but the version "
		    "table already names %s: migd knows where this database "
		    "is; run plain 'migctl %sadopt' to record checksums",
		    j->adopt_from, j->st.rows[0], j->db->cli);
		return;
	}
	job_query(j, adopt_from_busy_sql, 0, NULL, adopt_from_busy);
}

/* Refused while another session changes the schema; else the table. */
static void
adopt_from_busy(struct job *j, PGresult *res)
{
	if (!job_ok(j, res))
		return;
	if (PQntuples(res) == 1) {
		job_fail(j, MIGD_ERR_BUSY, "schema_changing", json_pack(
		    "{s:s, s:{s:i, s:s, s:s, s:s, s:s, s:s, s:s}}", "from",
		    j->adopt_from, "holder", "pid", atoi(PQgetvalue(res, 0, 0)),
		    "application_name", PQgetvalue(res, 0, 1), "user",
		    PQgetvalue(res, 0, 2), "mode", PQgetvalue(res, 0, 3),
		    "relation", PQgetvalue(res, 0, 4), "query",
		    PQgetvalue(res, 0, 5), "xact_start", PQgetvalue(res, 0, 6)),
		    "adopt --from %s: another session is changing the schema "
		    "now (pid %s%s%s, user %s, %s on %s in a transaction open "
		    "since %s: %s): if %s is still migrating, its table does "
		    "not yet record what it is applying; let it finish (or "
		    "stop it), then adopt; nothing was written",
		    j->adopt_from, PQgetvalue(res, 0, 0),
		    *PQgetvalue(res, 0, 1) != '\0' ? ", " : "",
		    PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2),
		    PQgetvalue(res, 0, 3), PQgetvalue(res, 0, 4),
		    PQgetvalue(res, 0, 6), PQgetvalue(res, 0, 5),
		    j->adopt_fmt == LAYOUT_AUTO ? "the other tool" :
		    j->adopt_from);
		return;
	}
	if (j->adopt_table != NULL) {
		const char	*params[1] = { j->adopt_table };

		job_query(j, "SELECT c::text, (SELECT string_agg(attname, ' ') "
		    "FROM pg_catalog.pg_attribute WHERE attrelid = c AND "
		    "attnum > 0 AND NOT attisdropped) FROM (SELECT "
		    "pg_catalog.to_regclass($1) AS c) t", 1, params,
		    adopt_from_named);
		return;
	}
	job_query(j, adopt_from_detect_sql, 0, NULL, adopt_from_detect);
}

/* The first of the tool's columns that table lacks (in *col, to free),
 * or 0 when it has them all. */
static int
adopt_from_lacks(int fmt, const char *have, char **col)
{
	const char	*p = adopt_from_columns[fmt - LAYOUT_DBMATE], *e;
	char		*pad = xprintf(" %s ", have), *want;
	int		 lacks = 0;

	for (; *p != '\0' && !lacks; p = *e != '\0' ? e + 1 : e) {
		e = strchr(p, ' ');
		if (e == NULL)
			e = p + strlen(p);
		want = xprintf(" %.*s ", (int)(e - p), p);
		if (strstr(pad, want) == NULL) {
			*col = xstrndup(p, e - p);
			lacks = 1;
		}
		free(want);
	}
	free(pad);
	return (lacks);
}

/* --table: that table, if it is there and has the tool's columns. */
static void
adopt_from_named(struct job *j, PGresult *res)
{
	const char	*have, *state = PQresultErrorField(res,
			    PG_DIAG_SQLSTATE);
	char		*col, *sql;

	/* The name's syntax (42601, 42602), another database's (0A000). */
	if (PQresultStatus(res) == PGRES_FATAL_ERROR && state != NULL &&
	    (strncmp(state, "42", 2) == 0 || strcmp(state, "0A000") == 0)) {
		job_fail(j, MIGD_ERR_INVALID_PARAMS, "invalid_params",
		    json_pack("{s:s, s:s}", "from", j->adopt_from, "table",
		    j->adopt_table), "adopt --table '%s': %s (write it as in "
		    "SQL: TABLE or SCHEMA.TABLE, double-quoted where it has "
		    "capitals)", j->adopt_table, PQresultErrorField(res,
		    PG_DIAG_MESSAGE_PRIMARY));
		return;
	}
	if (!job_ok(j, res))
		return;
	if (PQgetisnull(res, 0, 0)) {
		job_fail(j, MIGD_ERR_STATE, "no_state_table", json_pack(
		    "{s:s, s:s}", "from", j->adopt_from, "table",
		    j->adopt_table), "adopt --from %s --table %s: relation "
		    "\"%s\" does not exist (on the search_path of migd's "
		    "sessions, or in the schema named): check the name the "
		    "tool was given (unquoted names are lower case, as in "
		    "SQL) and the database in conninfo", j->adopt_from,
		    j->adopt_table, j->adopt_table);
		return;
	}
	have = PQgetvalue(res, 0, 1);
	if (adopt_from_lacks(j->adopt_fmt, have, &col)) {
		job_fail(j, MIGD_ERR_STATE, "no_state_table", json_pack(
		    "{s:s, s:s, s:s}", "from", j->adopt_from, "table",
		    j->adopt_table, "missing", col), "adopt --from %s --table "
		    "%s: %s has no column %s, which %s's state table has: "
		    "not %s's table (its columns: %s)", j->adopt_from,
		    j->adopt_table, PQgetvalue(res, 0, 0), col, j->adopt_from,
		    j->adopt_from, have);
		free(col);
		return;
	}
	if (j->adopt_fmt == LAYOUT_DBMATE && !adopt_from_lacks(
	    LAYOUT_GOLANG_MIGRATE, have, &col)) {
		job_fail(j, MIGD_ERR_STATE, "no_state_table", json_pack(
		    "{s:s, s:s}", "from", j->adopt_from, "table",
		    j->adopt_table), "adopt --from dbmate --table %s: %s is "
		    "golang-migrate's (it has a dirty column): run 'migctl "
		    "%sadopt --from golang-migrate --table %s'", j->adopt_table,
		    PQgetvalue(res, 0, 0), j->db->cli, j->adopt_table);
		return;
	}
	sql = adopt_from_sql(j->adopt_fmt, PQgetvalue(res, 0, 0));
	job_query(j, sql, 0, NULL, adopt_from_rows);
	free(sql);
}

/* Whether the state table adopt wants is not on the search_path: none at
 * all for auto; for a named tool, not its table (dbmate's and
 * golang-migrate's share a name: one there is the other tool's, said
 * later). */
static int
adopt_from_unseen(struct job *j, PGresult *res, int n)
{
	int	 f = j->adopt_fmt;

	if (n == 0)
		return (1);
	if (f == LAYOUT_AUTO || strcmp(PQgetvalue(res, 0, f - LAYOUT_DBMATE),
	    "t") == 0)
		return (0);
	if (f != LAYOUT_DBMATE && f != LAYOUT_GOLANG_MIGRATE)
		return (1);
	return (strcmp(PQgetvalue(res, 0, 0), "t") != 0 &&
	    strcmp(PQgetvalue(res, 0, 1), "t") != 0);
}

/* auto: the one state table there is; a named tool: its table. */
static void
adopt_from_detect(struct job *j, PGresult *res)
{
	char	 present[256] = "", *where, *schema, *sql;
	int	 i, n = 0, pick = -1, has;

	if (!job_ok(j, res))
		return;
	for (i = 0; i < 6 && PQntuples(res) == 1; i++) {
		has = strcmp(PQgetvalue(res, 0, i), "t") == 0;
		if (!has)
			continue;
		n++;
		pick = LAYOUT_DBMATE + i;
		snprintf(present + strlen(present), sizeof present -
		    strlen(present), "%s%s (%s)", n > 1 ? ", " : "",
		    adopt_from_tables[i], layout_name(LAYOUT_DBMATE + i));
	}
	if (PQntuples(res) == 1 && adopt_from_unseen(j, res, n) &&
	    (where = adopt_from_elsewhere(PQgetvalue(res, 0, 6),
	    j->adopt_fmt == LAYOUT_AUTO ? NULL : adopt_from_tables[
	    j->adopt_fmt - LAYOUT_DBMATE], &schema)) != NULL) {
		job_fail(j, MIGD_ERR_STATE, "no_state_table", json_pack(
		    "{s:s, s:s}", "from", j->adopt_from, "elsewhere", where),
		    "adopt --from %s: %s is not on the search_path of migd's "
		    "sessions, but %s is: the tool kept its table in schema %s "
		    "and ran its migrations with that schema first on the "
		    "search_path, where unqualified names went; give migd's "
		    "sessions the same search_path, so that adopt reads it and "
		    "upgrade runs the rest there: add options='-c "
		    "search_path=%s,public' to conninfo under [database], run "
		    "'migctl %sreload', then adopt", j->adopt_from,
		    j->adopt_fmt == LAYOUT_AUTO ? "no tool's state table" :
		    adopt_from_tables[j->adopt_fmt - LAYOUT_DBMATE], where,
		    schema, schema, j->db->cli);
		free(where);
		free(schema);
		return;
	}
	if (j->adopt_fmt == LAYOUT_AUTO) {
		if (n == 0) {
			job_fail(j, MIGD_ERR_STATE, "no_state_table",
			    json_pack("{s:s}", "from", j->adopt_from), "adopt "
			    "--from auto: no other tool's state table is on "
			    "the search_path (looked for schema_migrations, "
			    "_sqlx_migrations, __diesel_schema_migrations, "
			    "goose_db_version, flyway_schema_history): if "
			    "nothing migrated this database, run 'migctl "
			    "%supgrade head'; else put the table's schema on "
			    "the search_path of migd's sessions (options='-c "
			    "search_path=SCHEMA,public' in conninfo, then "
			    "'migctl %sreload')", j->db->cli, j->db->cli);
			return;
		}
		if (n > 1) {
			job_fail(j, MIGD_ERR_STATE, "ambiguous_state_table",
			    json_pack("{s:s}", "from", j->adopt_from), "adopt "
			    "--from auto: several tools' state tables are "
			    "here: %s; name the tool that migrated this "
			    "database with --from TOOL", present);
			return;
		}
		j->adopt_fmt = pick;
		free(j->adopt_from);
		j->adopt_from = xstrdup(layout_name(pick));
	} else if (strcmp(PQgetvalue(res, 0, j->adopt_fmt - LAYOUT_DBMATE),
	    "t") != 0) {
		if (j->adopt_fmt == LAYOUT_DBMATE || j->adopt_fmt ==
		    LAYOUT_GOLANG_MIGRATE) {
			i = j->adopt_fmt == LAYOUT_DBMATE ? 1 : 0;
			if (strcmp(PQgetvalue(res, 0, i), "t") == 0) {
				job_fail(j, MIGD_ERR_STATE, "no_state_table",
				    json_pack("{s:s}", "from", j->adopt_from),
				    "adopt --from %s: schema_migrations is %s's "
				    "(%s): run 'migctl %sadopt --from %s'",
				    j->adopt_from, layout_name(LAYOUT_DBMATE +
				    i), i ? "it has a dirty column" : "it has "
				    "no dirty column", j->db->cli, layout_name(
				    LAYOUT_DBMATE + i));
				return;
			}
		}
		job_fail(j, MIGD_ERR_STATE, "no_state_table", json_pack(
		    "{s:s}", "from", j->adopt_from), "adopt --from %s: "
		    "relation \"%s\" does not exist (on the search_path of "
		    "migd's sessions): %s has not migrated this database, or "
		    "its table is in a schema migd cannot see (check the "
		    "database in conninfo and its privileges), or under "
		    "another name (--table NAME); %s%s",
		    j->adopt_from, adopt_from_tables[j->adopt_fmt -
		    LAYOUT_DBMATE], j->adopt_from, n ? "present: " :
		    "no tool's table is here", present);
		return;
	}
	sql = adopt_from_sql(j->adopt_fmt, adopt_from_tables[j->adopt_fmt -
	    LAYOUT_DBMATE]);
	job_query(j, sql, 0, NULL, adopt_from_rows);
	free(sql);
}

/* Refuses a row the tool itself would stop at. */
static int
adopt_from_bad_row(struct job *j, const char *v, const char *type)
{
	switch (j->adopt_fmt) {
	case LAYOUT_GOLANG_MIGRATE:
		job_fail(j, MIGD_ERR_STATE, "dirty", json_pack("{s:s, s:s}",
		    "from", j->adopt_from, "version", v), "golang-migrate: "
		    "Dirty database version %s. Fix and force version.  A "
		    "migration stopped part-way: check the database, finish "
		    "or undo version %s by hand, run 'migrate force %s' (it "
		    "took effect) or 'migrate force' the version before it "
		    "(it did not), then adopt again", v, v, v);
		return (1);
	case LAYOUT_SQLX:
		job_fail(j, MIGD_ERR_STATE, "failed_migration", json_pack(
		    "{s:s, s:s}", "from", j->adopt_from, "version", v),
		    "sqlx: migration %s is partially applied; fix and remove "
		    "row from `_sqlx_migrations` table (its success is "
		    "false): check the database, undo what the migration did "
		    "and delete that row (or finish it and set success), then "
		    "adopt again", v);
		return (1);
	case LAYOUT_FLYWAY:
		job_fail(j, MIGD_ERR_STATE, "failed_migration", json_pack(
		    "{s:s, s:s}", "from", j->adopt_from, "version", v),
		    "Flyway: Detected failed migration to version %s. Please "
		    "remove any half-completed changes then run repair to fix "
		    "the schema history (a %s row with success = false in "
		    "%s): undo what it did by hand, run 'flyway repair', then "
		    "adopt again", v, type, adopt_from_table(j));
		return (1);
	}
	return (0);
}

/*
 * Refuses an applied file edited since, as sqlx and Flyway (validate) do:
 * adopting it would record the edited file's checksum as what ran, and
 * migd could no longer see the edit as drift.
 */
static int
adopt_from_modified(struct job *j, const char *v, const char *sum, ssize_t r)
{
	const struct migfile	*mf = revset_file(j->rs, (size_t)r);
	char			 local[32];

	if (*sum == '\0' || mf->up == NULL)
		return (0);
	if (j->adopt_fmt == LAYOUT_SQLX && !layout_sqlx_sum_ok(mf->up, sum)) {
		job_fail(j, MIGD_ERR_STATE, "modified", json_pack(
		    "{s:s, s:s, s:s}", "from", j->adopt_from, "version", v,
		    "file", mf->path), "sqlx: migration %s was previously "
		    "applied but has been modified (%s is not the file whose "
		    "SHA-384 _sqlx_migrations records): put back the file as "
		    "it was applied, then adopt again; migd records what ran, "
		    "and an edit belongs in a new migration", v, mf->path);
		return (1);
	}
	if (j->adopt_fmt != LAYOUT_FLYWAY)
		return (0);
	snprintf(local, sizeof local, "%ld", layout_flyway_sum(mf->up));
	if (strcmp(local, sum) == 0)
		return (0);
	job_fail(j, MIGD_ERR_STATE, "modified", json_pack("{s:s, s:s, s:s}",
	    "from", j->adopt_from, "version", v, "file", mf->path), "Flyway: "
	    "Migration checksum mismatch for migration version %s -> Applied "
	    "to database : %s -> Resolved locally : %s (%s). Either revert "
	    "the changes to the migration, or run repair to update the schema "
	    "history; then adopt again", v, sum, local, mf->path);
	return (1);
}

/* Maps the rows to revisions; refuses unknown versions and gaps. */
static void
adopt_from_rows(struct job *j, PGresult *res)
{
	struct graph	*g;
	const size_t	*order;
	char		*marks, *unknown = NULL;
	const char	*v, *type, *hole = NULL, *skip, *last = NULL;
	json_t		*gone = json_array(), *jv;
	size_t		 n, i, k;
	ssize_t		 r, cut = -1;
	int		 ok, rows;

	if (!job_ok(j, res))
		return;
	g = j->rs->graph;
	n = graph_order(g, &order);
	marks = xcalloc(revset_count(j->rs) + 1, 1);
	rows = PQntuples(res);
	for (i = 0; i < (size_t)rows; i++) {
		v = PQgetvalue(res, (int)i, 0);
		ok = strcmp(PQgetvalue(res, (int)i, 1), "t") == 0;
		type = PQgetvalue(res, (int)i, 2);
		if (j->adopt_fmt == LAYOUT_FLYWAY && *v == '\0') {
			if (!ok && adopt_from_bad_row(j, "(repeatable)", type))
				goto out;
			continue;	/* repeatable: no revision */
		}
		if (!ok && adopt_from_bad_row(j, v, type))
			goto out;
		if (!ok)
			continue;	/* goose: rolled back */
		if (j->adopt_fmt == LAYOUT_FLYWAY && strncmp(type, "UNDO", 4) ==
		    0) {
			job_fail(j, MIGD_ERR_STATE, "unsupported_state",
			    json_pack("{s:s, s:s}", "from", j->adopt_from,
			    "version", v), "Flyway undid version %s (%s row): "
			    "adopt --from flyway reads only forward "
			    "migrations; migrate Flyway to the version you "
			    "want, then adopt", v, type);
			goto out;
		}
		if ((r = adopt_from_find(j, v)) < 0 && j->adopt_fmt ==
		    LAYOUT_FLYWAY && strcmp(type, "BASELINE") == 0) {
			/* A baseline needs no file: what is at or below it
			 * was there before Flyway. */
			for (k = 0; k < n; k++) {
				if (layout_cmp_flyway(graph_id(g, order[k]),
				    v) > 0)
					break;
				r = (ssize_t)order[k];
			}
			if (r < 0)
				continue;
			if (cut < 0 || adopt_from_before(order, n, cut, r))
				cut = r;
			continue;
		}
		if (r < 0 && (j->adopt_fmt == LAYOUT_DBMATE || j->adopt_fmt ==
		    LAYOUT_DIESEL)) {
			json_array_append_new(gone, json_string(v));
			continue;
		}
		if (r < 0) {
			if (unknown == NULL)
				unknown = xstrdup(v);
			continue;
		}
		if (adopt_from_modified(j, v, PQgetvalue(res, (int)i, 3), r))
			goto out;
		if (j->adopt_fmt == LAYOUT_GOLANG_MIGRATE ||
		    (j->adopt_fmt == LAYOUT_FLYWAY && strcmp(type,
		    "BASELINE") == 0)) {
			/* everything up to it */
			if (cut < 0 || adopt_from_before(order, n, cut, r))
				cut = r;
		} else
			marks[r] = 1;
	}
	/*
	 * dbmate and diesel run the files not recorded and pass over a
	 * recorded version whose file was removed: so does adopt, when a
	 * version applied after it has its file.  One past every applied
	 * file is a database ahead of these files: refused below.
	 */
	for (i = n; i > 0 && last == NULL; i--)
		if (marks[order[i - 1]])
			last = graph_id(g, order[i - 1]);
	json_decref(j->adopt_gone);
	j->adopt_gone = json_array();
	json_array_foreach(gone, i, jv) {
		v = json_string_value(jv);
		if (last != NULL && strcmp(v, last) < 0 &&
		    adopt_from_skipped(j, v) == NULL)
			json_array_append(j->adopt_gone, jv);
		else if (unknown == NULL)
			unknown = xstrdup(v);
	}
	json_decref(gone);
	gone = NULL;
	if (unknown != NULL && (skip = adopt_from_skipped(j, unknown)) !=
	    NULL) {
		job_fail(j, MIGD_ERR_STATE, "ahead", json_pack("{s:s, s:[s]}",
		    "from", j->adopt_from, "unknown", unknown), "%s's %s "
		    "records version %s, and a file of that version is there "
		    "but not read as a migration (%s): the files are read as %s "
		    "migrations; if this is a %s project, set format = %s under "
		    "[migrations], reload, then adopt", j->adopt_from,
		    adopt_from_table(j), unknown, skip,
		    layout_name(j->rs->set.format), j->adopt_from,
		    j->adopt_from);
		goto out;
	}
	if (unknown != NULL) {
		job_fail(j, MIGD_ERR_STATE, "ahead", json_pack("{s:s, s:[s]}",
		    "from", j->adopt_from, "unknown", unknown), "%s's %s "
		    "records version %s, which no migration file defines: "
		    "deploy the migration files that database was migrated "
		    "with (the [migrations] directory), then adopt%s",
		    j->adopt_from, adopt_from_table(j), unknown,
		    j->adopt_fmt == LAYOUT_FLYWAY ?
		    " (a file removed on purpose: 'flyway repair' marks its "
		    "version deleted, and adopt skips it then, as Flyway "
		    "does)" : "");
		goto out;
	}
	if (cut >= 0) {
		for (i = 0; i < n; i++) {
			marks[order[i]] = 1;
			if (order[i] == (size_t)cut)
				break;
		}
	}
	/* A gap: an applied version after one that is not. */
	for (i = 0; i < n; i++) {
		if (!marks[order[i]]) {
			if (hole == NULL)
				hole = graph_id(g, order[i]);
			continue;
		}
		if (hole != NULL) {
			job_fail(j, MIGD_ERR_STATE, "gap", json_pack(
			    "{s:s, s:s, s:s}", "from", j->adopt_from,
			    "missing", hole, "applied", graph_id(g, order[i])),
			    "%s applied version %s but not %s before it (run "
			    "out of order): migd keeps one line of applied "
			    "revisions; apply %s with %s (or check it is not "
			    "needed), then adopt", j->adopt_from, graph_id(g,
			    order[i]), hole, hole, j->adopt_from);
			goto out;
		}
	}
	free(j->adopt_revs);
	j->adopt_revs = xreallocarray(NULL, n ? n : 1, sizeof *j->adopt_revs);
	for (i = k = 0; i < n; i++)
		if (marks[order[i]])
			j->adopt_revs[k++] = order[i];
	j->n_adopt = k;
	free(marks);
	if (k == 0) {
		j->result = json_pack("{s:s, s:[], s:I, s:I, s:o}", "from",
		    j->adopt_from, "adopted", "applied", (json_int_t)0,
		    "already_verified", (json_int_t)0, "message", json_sprintf(
		    "nothing to adopt: the tool's table records no applied "
		    "migration; 'migctl %supgrade head' runs them all",
		    j->db->cli));
		job_end(j, NULL);
		return;
	}
	{
		const char	*params[1];
		char		*ht;

		ht = migrate_qualify(j->db->cf->history_schema,
		    j->db->cf->history_table);
		params[0] = ht;
		job_query(j, book_directions_query(), 1, params,
		    adopt_from_write);
		free(ht);
	}
	return;
out:
	json_decref(gone);
	free(unknown);
	free(marks);
}

/* One transaction: the version table at the last applied revision, and an
 * 'adopt' row with the checksum of each applied one. */
static void
adopt_from_write(struct job *j, PGresult *res)
{
	struct errlist		 stmts = { NULL, 0 };
	json_t			*list;
	size_t			 i, head;
	char			*sql;
	double			 wall = migrate_wall();

	if (!job_ok(j, res))
		return;
	head = j->adopt_revs[j->n_adopt - 1];
	errlist_add(&stmts, "BEGIN");
	book_directions_sql(j, res, &stmts);
	book_rows_sql(j, NULL, 0, &head, 1, &stmts);
	list = adopt_rows_sql(j, j->adopt_revs, j->n_adopt, wall, &stmts);
	errlist_add(&stmts, "COMMIT");
	sql = book_joined(&stmts);
	errlist_clear(&stmts);
	j->result = json_pack("{s:s, s:o, s:I, s:I, s:[s], s:O}", "from",
	    j->adopt_from, "adopted", list, "applied", (json_int_t)j->n_adopt,
	    "already_verified", (json_int_t)0, "version",
	    graph_id(j->rs->graph, head), "removed", j->adopt_gone);
	for (i = 0; i < json_array_size(j->adopt_gone); i++)
		log_info("%sadopt --from %s: %s records version %s, whose file "
		    "was removed: passed over, as %s does", j->db->tag,
		    j->adopt_from, adopt_from_table(j), json_string_value(
		    json_array_get(j->adopt_gone, i)), j->adopt_from);
	log_info("%sadopt --from %s: at %s, recorded the checksums of %zu "
	    "applied revision%s", j->db->tag, j->adopt_from,
	    graph_id(j->rs->graph, head),
	    j->n_adopt, j->n_adopt == 1 ? "" : "s");
	job_query(j, sql, 0, NULL, job_end);
	free(sql);
}
