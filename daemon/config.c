/*
 * The configuration file: INI parsed with inih, checked against one typed
 * table of parameters.  Parsing is pure (text in, struct out) so unit tests
 * and `migd -n` see exactly what the daemon would run with.
 */
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <ini.h>

#include "layout.h"
#include "conninfo.h"
#include "migd.h"
#include "sqlscan.h"

#define CONFIG_MAX_FILE		(1024 * 1024)
#define CONFIG_NAMEDATALEN	63

enum config_type {
	CT_STRING,	/* any text */
	CT_CONNINFO,	/* libpq conninfo or URI; continuation lines join */
	CT_INT,
	CT_MODE,	/* octal permission bits */
	CT_PATH,	/* relative paths are relative to the file */
	CT_SCHEMAS,	/* comma-separated identifiers */
	CT_TABLE,	/* [schema.]table */
	CT_LEVEL,	/* log level name */
	CT_GROUP,	/* a group name, or empty */
	CT_DURATION,	/* a time: 500ms, 5s, 2min, 1h; a bare number is seconds */
	CT_BOOL,	/* true/false, yes/no, on/off, 1/0 */
	CT_LINT,	/* off, warn, refuse */
	CT_FORMAT	/* a migration layout: auto, migd, dbmate, ... */
};

struct config_param {
	const char		*section;
	const char		*name;
	enum config_type	 type;
	const char		*defval;
	long			 min, max;
};

/* The daemon-wide keys of [database]; its others and [migrations]'s are
 * each database's, and a [database NAME] may set them for itself. */
#define CONFIG_IS_DB(p)	(strcmp((p)->section, "migrations") == 0 || \
	(strcmp((p)->section, "database") == 0 && \
	strcmp((p)->name, "max_connections_total") != 0 && \
	strcmp((p)->name, "idle_close") != 0))
/* idle_close when the file does not say: connections of a daemon serving
 * several databases are closed after this long unused. */
#define CONFIG_IDLE_CLOSE_FLEET	"60s"

/* Every parameter migd knows, with its default: the one source of truth. */
static const struct config_param config_params[] = {
	{ "database", "conninfo", CT_CONNINFO, "", 0, 0 },
	{ "database", "pool_size", CT_INT, "2", 1, 64 },
	{ "database", "connect_timeout", CT_INT, "10", 1, 3600 },
	{ "database", "max_connections_total", CT_INT, "0", 0, 10000 },
	{ "database", "idle_close", CT_DURATION, "0", 0, 86400000 },
	{ "migrations", "directory", CT_PATH, "migrations", 0, 0 },
	{ "migrations", "schemas", CT_SCHEMAS, "", 0, 0 },
	{ "migrations", "version_table", CT_TABLE, "public.alembic_version",
	    0, 0 },
	{ "migrations", "history_table", CT_TABLE, "migd_history", 0, 0 },
	{ "migrations", "lock_timeout", CT_DURATION, "5s", 0, 86400000 },
	{ "migrations", "statement_timeout", CT_DURATION, "0", 0, 86400000 },
	{ "migrations", "lock_wait", CT_DURATION, "60s", 0, 86400000 },
	{ "migrations", "concurrent_lock_timeout", CT_DURATION, "0", 0,
	    86400000 },
	{ "migrations", "concurrent_statement_timeout", CT_DURATION, "0", 0,
	    86400000 },
	{ "migrations", "atomic", CT_BOOL, "false", 0, 0 },
	{ "migrations", "lint", CT_LINT, "warn", 0, 0 },
	{ "migrations", "lint_small_table_rows", CT_INT, "10000", 0,
	    2000000000 },
	{ "migrations", "lock_retries", CT_INT, "0", 0, 100 },
	{ "migrations", "lock_retry_wait", CT_DURATION, "500ms", 0, 3600000 },
	{ "migrations", "lock_retry_max_wait", CT_DURATION, "10s", 0, 3600000 },
	{ "migrations", "format", CT_FORMAT, "auto", 0, 0 },
	{ "control", "socket", CT_PATH, MIGD_DEFAULT_SOCKET, 0, 0 },
	{ "control", "socket_mode", CT_MODE, "0660", 0, 0777 },
	{ "control", "admin_group", CT_GROUP, "", 0, 0 },
	{ "control", "read_group", CT_GROUP, "", 0, 0 },
	{ "control", "max_clients", CT_INT, "64", 1, 10000 },
	{ "control", "admin_reserve", CT_INT, "4", 0, 9999 },
	{ "control", "max_request_bytes", CT_INT, "65536", 1024, 67108864 },
	{ "control", "idle_timeout", CT_INT, "300", 0, 86400 },
	{ "log", "level", CT_LEVEL, "info", 0, 0 },
};

/* lint's policy at apply time, by MIGD_LINT_* value. */
static const char *const config_lint_names[] = { "off", "warn", "refuse" };

static const char *config_sections[] = {
	"database", "migrations", "control", "log"
};

/* The values one [database NAME] section wrote, as written. */
struct config_sect {
	char		*name;
	int		 line;
	int		 seen[nitems(config_params)];
	char		*raw[nitems(config_params)];
	struct config_db db;	/* its values on the defaults, to check them */
};

/* What kind of section the lines being read belong to. */
enum config_kind {
	CK_NONE,	/* before any [section] */
	CK_PLAIN,	/* a known unnamed section: sect names it */
	CK_NAMED,	/* [database NAME]: cur is its record */
	CK_BAD		/* reported already: its keys are skipped */
};

/* State shared by the reader and the handler while inih walks the text. */
struct config_state {
	const char	*path;
	const char	*text;
	size_t		 len;
	size_t		 pos;
	int		 lineno;
	int		 indented;	/* current line starts with blank */
	int		 prev_key;	/* inih saw a key in this section */
	int		 seen[nitems(config_params)];
	char		*raw[nitems(config_params)];	/* unnamed sections' */
	int		 last;		/* index of the last key set, or -1 */
	enum config_kind kind;
	const char	*sect;		/* CK_PLAIN: one of config_sections */
	struct config_sect *cur;	/* CK_NAMED */
	struct config_sect **secs;	/* every [database NAME], in order */
	size_t		 n_secs;
	struct config	*cf;
	struct errlist	*errs;
};

static int	config_set(struct config_state *, const struct config_param *,
		    const char *, struct config_db *, char **);

/* Trims blanks at both ends in place. */
static char *
config_trim(char *s)
{
	char	*e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return (s);
}

/* Form feeds and the like have no business in a value (tabs are blanks). */
static int
config_has_control(const char *s)
{
	for (; *s != '\0'; s++) {
		if (iscntrl((unsigned char)*s) && *s != '\t')
			return (1);
	}
	return (0);
}

/*
 * A [database NAME]'s name: ASCII letters, digits, '_', '-' and '.', at most
 * 63 bytes, starting with a letter, a digit or '_' (so that it never reads
 * as an option or a path on migctl's command line).
 */
int
config_db_name_valid(const char *name)
{
	const char	*p;

	if (*name == '\0' || strlen(name) > CONFIG_NAMEDATALEN ||
	    *name == '-' || *name == '.')
		return (0);
	for (p = name; *p != '\0'; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '_' || *p == '-' ||
		    *p == '.'))
			return (0);
	}
	return (1);
}

/* Starts the record of a [database NAME] section, or says why not. */
static void
config_named_section(struct config_state *st, const char *name)
{
	struct config_sect	*sec;
	size_t			 i;
	char			*why = NULL;

	st->kind = CK_BAD;
	if (!config_db_name_valid(name)) {
		errlist_add(st->errs, "%s:%d: '%s' is not a valid database "
		    "name: use ASCII letters, digits, '_', '-' and '.', at most "
		    "%d of them, starting with a letter, a digit or '_'",
		    st->path, st->lineno, name, CONFIG_NAMEDATALEN);
		return;
	}
	for (i = 0; i < st->n_secs; i++) {
		if (strcasecmp(st->secs[i]->name, name) != 0)
			continue;
		if (strcmp(st->secs[i]->name, name) == 0)
			errlist_add(st->errs, "%s:%d: [database %s] is already "
			    "defined on line %d", st->path, st->lineno, name,
			    st->secs[i]->line);
		else
			errlist_add(st->errs, "%s:%d: [database %s] differs "
			    "only in case from [database %s] on line %d: "
			    "names are compared without case", st->path,
			    st->lineno, name, st->secs[i]->name,
			    st->secs[i]->line);
		return;
	}
	sec = xcalloc(1, sizeof *sec);
	sec->name = xstrdup(name);
	sec->line = st->lineno;
	/* The defaults, so each value is checked as it comes. */
	for (i = 0; i < nitems(config_params); i++) {
		if (CONFIG_IS_DB(&config_params[i]) && config_set(st,
		    &config_params[i], config_params[i].defval, &sec->db,
		    &why) != 0)
			fatalx("bad default for %s: %s", config_params[i].name,
			    why);
	}
	st->secs = xreallocarray(st->secs, st->n_secs + 1, sizeof *st->secs);
	st->secs[st->n_secs++] = sec;
	st->cur = sec;
	st->kind = CK_NAMED;
}

/* Reads a section header ourselves: inih says nothing of empty ones, cuts
 * long ones short, and knows nothing of [database NAME]. */
static void
config_check_section(struct config_state *st, const char *line)
{
	char	*copy, *s, *end, *name;
	size_t	 i;

	copy = xstrdup(line);
	s = config_trim(copy);
	if (*s != '[' || (end = strchr(s, ']')) == NULL) {
		free(copy);
		return;
	}
	*end = '\0';
	s = config_trim(s + 1);
	st->prev_key = 0;
	st->last = -1;
	st->cur = NULL;
	name = s + strcspn(s, " \t");
	if (*name != '\0') {
		*name++ = '\0';
		name = config_trim(name);
	}
	for (i = 0; i < nitems(config_sections); i++) {
		if (strcmp(s, config_sections[i]) == 0)
			break;
	}
	if (i == nitems(config_sections)) {
		errlist_add(st->errs, "%s:%d: unknown section [%s%s%s] (known: "
		    "database, migrations, control, log)", st->path,
		    st->lineno, s, *name != '\0' ? " " : "", name);
		st->kind = CK_BAD;
	} else if (*name == '\0') {
		st->kind = CK_PLAIN;
		st->sect = config_sections[i];
	} else if (strcmp(s, "database") == 0)
		config_named_section(st, name);
	else {
		errlist_add(st->errs, "%s:%d: [%s %s]: only [database] sections "
		    "take a name; a database's own %s settings go in its "
		    "[database %s] section", st->path, st->lineno, s, name,
		    s, name);
		st->kind = CK_BAD;
	}
	free(copy);
}

/* Feeds inih one line at a time so that we always know the line number. */
static char *
config_reader(char *buf, int size, void *arg)
{
	struct config_state	*st = arg;
	const char		*start, *nl;
	size_t			 n;

	if (st->pos >= st->len)
		return (NULL);
	start = st->text + st->pos;
	nl = memchr(start, '\n', st->len - st->pos);
	n = nl ? (size_t)(nl - start) + 1 : st->len - st->pos;
	st->pos += n;
	st->lineno++;
	if (n + 1 > (size_t)size) {
		errlist_add(st->errs, "%s:%d: line too long (at most %d "
		    "characters); continue a long value on indented lines",
		    st->path, st->lineno, size - 2);
		buf[0] = '\n';
		buf[1] = '\0';
		st->indented = 0;
		return (buf);
	}
	memcpy(buf, start, n);
	buf[n] = '\0';
	st->indented = n > 0 && (buf[0] == ' ' || buf[0] == '\t');
	/* inih reads an indented line as a continuation once a key was set
	 * in the section, and as whatever it is otherwise. */
	if (!st->indented || !st->prev_key)
		config_check_section(st, buf);
	return (buf);
}

/* A plain SQL identifier's characters (bytes of UTF-8 letters included). */
static int
config_ident_char(unsigned char c, int first)
{
	if (c >= 0x80 || c == '_' || isalpha(c))
		return (1);
	return (!first && (isdigit(c) || c == '$'));
}

/*
 * Reads one entry of the schemas list as PostgreSQL reads an identifier: a
 * double-quoted name is taken as written ("" inside standing for "), a
 * plain one is folded to lower case (ASCII letters, as PostgreSQL does).
 * *pp moves past the entry and its comma; NULL with *why on error.
 */
static char *
config_schema_entry(const char **pp, char **why)
{
	const char	*p = *pp, *start, *end;
	char		*name, *raw, *q;
	size_t		 i;

	while (*p == ' ' || *p == '\t')
		p++;
	start = p;
	if (*p == '"') {
		for (end = p + 1; *end != '\0'; end++) {
			if (*end == '"' && end[1] == '"')
				end++;
			else if (*end == '"')
				break;
		}
		raw = xstrndup(start, (size_t)(end - start) + (*end != '\0'));
	} else {
		end = p + strcspn(p, ",");
		raw = xstrndup(start, (size_t)(end - start));
		config_trim(raw);
	}
	if (strpbrk(raw, ";#") != NULL) {
		*why = xprintf("schema name '%s' contains ';' or '#', which start "
		    "comments in this file", raw);
		free(raw);
		return (NULL);
	}
	if (*start == '"') {
		if (*end != '"') {
			*why = xprintf("schema name %s has no closing double "
			    "quote", raw);
			free(raw);
			return (NULL);
		}
		name = q = xmalloc(strlen(raw));
		for (p = start + 1; p < end; p++) {
			*q++ = *p;
			if (*p == '"')
				p++;	/* "" stands for one " */
		}
		*q = '\0';
		p = end + 1;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p != ',' && *p != '\0') {
			*why = xprintf("unexpected text after the schema name "
			    "%s: quote the whole name, or separate names with "
			    "commas", raw);
			free(name);
			free(raw);
			return (NULL);
		}
		if (*name == '\0') {
			*why = xprintf("empty quoted schema name \"\"");
			free(name);
			free(raw);
			return (NULL);
		}
	} else {
		if (*raw == '\0') {
			*why = xprintf("empty schema name in list");
			free(raw);
			return (NULL);
		}
		for (i = 0; raw[i] != '\0'; i++) {
			if (config_ident_char((unsigned char)raw[i], i == 0))
				continue;
			if (strchr(raw, '"') != NULL)
				*why = xprintf("schema name '%s' has a double "
				    "quote inside: write the whole name in "
				    "double quotes, each \" in it doubled "
				    "(\"a\"\"b\" for a\"b)", raw);
			else
				*why = xprintf("schema name '%s' is not a "
				    "plain SQL identifier (letters, digits, _ "
				    "and $, not starting with a digit): write "
				    "it in double quotes, \"%s\"", raw, raw);
			free(raw);
			return (NULL);
		}
		name = raw;
		raw = NULL;
		for (q = name; *q != '\0'; q++) {
			if (*q >= 'A' && *q <= 'Z')
				*q = (char)(*q - 'A' + 'a');
		}
		p = end;
	}
	free(raw);
	*pp = *p == ',' ? p + 1 : p;
	return (name);
}

/* Parses the comma-separated list of schema names into the database's. */
static int
config_set_schemas(struct config_db *cf, const char *value, char **why)
{
	const char	*p = value;
	char		*s;
	size_t		 i;

	/* A database's own list replaces the one it inherits. */
	for (i = 0; i < cf->n_schemas; i++)
		free(cf->schemas[i]);
	free(cf->schemas);
	cf->schemas = NULL;
	cf->n_schemas = 0;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '\0')
		return (0);
	for (;;) {
		if ((s = config_schema_entry(&p, why)) == NULL)
			return (-1);
		if (strlen(s) > CONFIG_NAMEDATALEN) {
			*why = xprintf("schema name '%s' is longer than %d "
			    "bytes", s, CONFIG_NAMEDATALEN);
			free(s);
			return (-1);
		}
		if (sqlscan_system_schema(s)) {
			*why = xprintf("'%s' is a system schema", s);
			free(s);
			return (-1);
		}
		for (i = 0; i < cf->n_schemas; i++) {
			if (strcmp(cf->schemas[i], s) == 0)
				break;
		}
		if (i != cf->n_schemas)
			free(s);
		else {
			cf->schemas = xreallocarray(cf->schemas,
			    cf->n_schemas + 1, sizeof *cf->schemas);
			cf->schemas[cf->n_schemas++] = s;
		}
		if (*p == '\0' && p > value && p[-1] != ',')
			break;
	}
	return (0);
}

/* Checks an identifier used in the version table's name. */
static int
config_check_ident(const char *s, const char *what, char **why)
{
	const char	*p;

	if (*s == '\0') {
		*why = xprintf("empty %s name", what);
		return (-1);
	}
	if (strlen(s) > CONFIG_NAMEDATALEN) {
		*why = xprintf("%s name '%s' is longer than %d bytes", what, s,
		    CONFIG_NAMEDATALEN);
		return (-1);
	}
	for (p = s; *p != '\0'; p++) {
		if (*p == '"' || iscntrl((unsigned char)*p)) {
			*why = xprintf("%s name '%s' contains a quote or a "
			    "control character", what, s);
			return (-1);
		}
	}
	return (0);
}

/*
 * Parses 500ms, 5s, 2min, 1h or a bare number of seconds into milliseconds;
 * text gets it back in the unit it was written in, for migd -n.
 */
static int
config_duration(const char *value, long max, long *ms, char *text,
    size_t textlen)
{
	static const struct { const char *unit; long ms; } units[] = {
		{ "ms", 1 }, { "s", 1000 }, { "", 1000 }, { "min", 60000 },
		{ "h", 3600000 }
	};
	char	*end;
	long	 n;
	size_t	 i;

	errno = 0;
	n = strtol(value, &end, 10);
	if (end == value || errno != 0 || n < 0)
		return (-1);
	while (*end == ' ')
		end++;
	for (i = 0; i < nitems(units); i++) {
		if (strcmp(end, units[i].unit) == 0)
			break;
	}
	if (i == nitems(units) || n > max / units[i].ms)
		return (-1);
	*ms = n * units[i].ms;
	snprintf(text, textlen, "%ld%s", n, units[i].unit);
	return (0);
}

/* Joins a relative path onto the directory of the configuration file. */
static char *
config_resolve(const char *cfpath, const char *value)
{
	const char	*slash;

	if (value[0] == '/' || (slash = strrchr(cfpath, '/')) == NULL)
		return (xstrdup(value));
	return (xprintf("%.*s/%s", (int)(slash - cfpath), cfpath, value));
}

/* Applies one parameter's value; the message says what is wrong if anything. */
static int
config_set(struct config_state *st, const struct config_param *p,
    const char *value, struct config_db *db, char **why)
{
	struct config	*cf = st->cf;
	enum log_level	 level;
	enum layout_format format;
	PQconninfoOption *opts, *o;
	char		*end, *err = NULL, *dot, *copy, *text;
	long		 n, *lp;

	switch (p->type) {
	case CT_CONNINFO:
		if (*value != '\0') {
			if ((opts = PQconninfoParse(value, &err)) == NULL) {
				/* libpq's message quotes what it could not
				 * read, a password's %zz or the whole URI. */
				text = conninfo_error(value, err);
				*why = xprintf("invalid conninfo: %s", text);
				free(text);
				PQfreemem(err);
				return (-1);
			}
			for (o = opts; o->keyword != NULL; o++) {
				/* A URI's %XX may decode to any byte. */
				if (o->val != NULL && (utf8_valid_prefix(o->val,
				    strlen(o->val)) != strlen(o->val) ||
				    config_has_control(o->val))) {
					*why = xprintf("invalid conninfo: the "
					    "value of %s is not valid UTF-8 "
					    "text", o->keyword);
					PQconninfoFree(opts);
					return (-1);
				}
			}
			PQconninfoFree(opts);
			if (conninfo_dbname_nested(value)) {
				*why = xprintf("invalid conninfo: dbname holds "
				    "a connection string (key=value pairs or a "
				    "postgresql:// URI), which libpq does not "
				    "expand inside a conninfo: the server would "
				    "get it, password and all, as a database "
				    "name; write those settings in the conninfo "
				    "itself");
				return (-1);
			}
		}
		free(db->conninfo);
		db->conninfo = xstrdup(value);
		return (0);
	case CT_INT:
		errno = 0;
		n = strtol(value, &end, 10);
		if (*value == '\0' || *end != '\0' || errno != 0 ||
		    n < p->min || n > p->max) {
			*why = xprintf("%s must be a whole number from %ld to "
			    "%ld, not '%s'", p->name, p->min, p->max, value);
			return (-1);
		}
		if (strcmp(p->name, "pool_size") == 0)
			db->pool_size = (int)n;
		else if (strcmp(p->name, "connect_timeout") == 0)
			db->connect_timeout = (int)n;
		else if (strcmp(p->name, "max_connections_total") == 0)
			cf->max_connections_total = (int)n;
		else if (strcmp(p->name, "max_clients") == 0)
			cf->max_clients = (int)n;
		else if (strcmp(p->name, "admin_reserve") == 0)
			cf->admin_reserve = (int)n;
		else if (strcmp(p->name, "max_request_bytes") == 0)
			cf->max_request_bytes = (int)n;
		else if (strcmp(p->name, "idle_timeout") == 0)
			cf->idle_timeout = (int)n;
		else if (strcmp(p->name, "lint_small_table_rows") == 0)
			db->lint_small_table_rows = n;
		else if (strcmp(p->name, "lock_retries") == 0)
			db->lock_retries = (int)n;
		return (0);
	case CT_MODE:
		errno = 0;
		n = strtol(value, &end, 8);
		if (*value == '\0' || *end != '\0' || errno != 0 || n < 0 ||
		    n > p->max) {
			*why = xprintf("%s must be octal permission bits such "
			    "as 0660, not '%s'", p->name, value);
			return (-1);
		}
		cf->socket_mode = (int)n;
		return (0);
	case CT_PATH:
		if (*value == '\0') {
			*why = xprintf("%s must not be empty", p->name);
			return (-1);
		}
		if (strcmp(p->name, "directory") == 0) {
			free(db->directory);
			db->directory = config_resolve(st->path, value);
		} else {
			free(cf->socket);
			cf->socket = config_resolve(st->path, value);
		}
		return (0);
	case CT_SCHEMAS:
		return (config_set_schemas(db, value, why));
	case CT_TABLE:
		copy = xstrdup(value);
		if ((dot = strchr(copy, '.')) != NULL)
			*dot++ = '\0';
		if (config_check_ident(dot ? copy : "public", "schema",
		    why) != 0 || config_check_ident(dot ? dot : copy,
		    "table", why) != 0 || (dot && strchr(dot, '.'))) {
			if (*why == NULL)
				*why = xprintf("%s must be TABLE or "
				    "SCHEMA.TABLE, not '%s'", p->name, value);
			free(copy);
			return (-1);
		}
		if (strcmp(p->name, "version_table") == 0) {
			free(db->version_schema);
			free(db->version_table);
			db->version_schema = xstrdup(dot ? copy : "public");
			db->version_table = xstrdup(dot ? dot : copy);
		} else {
			/* Without a schema, beside the version table. */
			free(db->history_schema);
			free(db->history_table);
			db->history_schema = dot ? xstrdup(copy) : NULL;
			db->history_table = xstrdup(dot ? dot : copy);
		}
		free(copy);
		return (0);
	case CT_DURATION:
		if (strcmp(p->name, "lock_timeout") == 0) {
			lp = &db->lock_timeout_ms;
			text = db->lock_timeout_text;
		} else if (strcmp(p->name, "statement_timeout") == 0) {
			lp = &db->statement_timeout_ms;
			text = db->statement_timeout_text;
		} else if (strcmp(p->name, "concurrent_lock_timeout") == 0) {
			lp = &db->concurrent_lock_timeout_ms;
			text = db->concurrent_lock_timeout_text;
		} else if (strcmp(p->name,
		    "concurrent_statement_timeout") == 0) {
			lp = &db->concurrent_statement_timeout_ms;
			text = db->concurrent_statement_timeout_text;
		} else if (strcmp(p->name, "lock_retry_wait") == 0) {
			lp = &db->lock_retry_wait_ms;
			text = db->lock_retry_wait_text;
		} else if (strcmp(p->name, "lock_retry_max_wait") == 0) {
			lp = &db->lock_retry_max_wait_ms;
			text = db->lock_retry_max_wait_text;
		} else if (strcmp(p->name, "idle_close") == 0) {
			lp = &cf->idle_close_ms;
			text = cf->idle_close_text;
		} else {
			lp = &db->lock_wait_ms;
			text = db->lock_wait_text;
		}
		if (config_duration(value, p->max, &n, text,
		    sizeof db->lock_wait_text) != 0) {
			*why = xprintf("%s must be a duration such as 500ms, "
			    "5s, 2min or 1h (at most %ld h), not '%s'",
			    p->name, p->max / 3600000, value);
			return (-1);
		}
		*lp = n;
		return (0);
	case CT_BOOL:
		if (strcasecmp(value, "true") == 0 || strcasecmp(value,
		    "yes") == 0 || strcasecmp(value, "on") == 0 ||
		    strcmp(value, "1") == 0)
			db->atomic = 1;
		else if (strcasecmp(value, "false") == 0 || strcasecmp(value,
		    "no") == 0 || strcasecmp(value, "off") == 0 ||
		    strcmp(value, "0") == 0)
			db->atomic = 0;
		else {
			*why = xprintf("%s must be true or false, not '%s'",
			    p->name, value);
			return (-1);
		}
		return (0);
	case CT_LINT:
		for (n = 0; n < (long)nitems(config_lint_names); n++) {
			if (strcasecmp(value, config_lint_names[n]) == 0) {
				db->lint = (int)n;
				return (0);
			}
		}
		*why = xprintf("%s must be off, warn or refuse, not '%s'",
		    p->name, value);
		return (-1);
	case CT_FORMAT:
		if (layout_parse_name(value, &format) != 0) {
			*why = xprintf("format must be one of " LAYOUT_NAMES
			    ", not '%s'", value);
			return (-1);
		}
		db->format = (int)format;
		return (0);
	case CT_LEVEL:
		if (log_level_parse(value, &level) != 0) {
			*why = xprintf("level must be error, warning, info or "
			    "debug, not '%s'", value);
			return (-1);
		}
		cf->log_level = level;
		return (0);
	case CT_GROUP:
	case CT_STRING:
		if (strpbrk(value, ";# \t") != NULL) {
			*why = xprintf("%s '%s' is not a group name", p->name,
			    value);
			return (-1);
		}
		if (strcmp(p->name, "admin_group") == 0) {
			free(cf->admin_group);
			cf->admin_group = xstrdup(value);
		} else {
			free(cf->read_group);
			cf->read_group = xstrdup(value);
		}
		return (0);
	}
	return (0);
}

/* The parameter of [section] called name, or NULL. */
static const struct config_param *
config_param_find(const char *section, const char *name, size_t *idx)
{
	size_t	 i;

	for (i = 0; i < nitems(config_params); i++) {
		if (strcmp(config_params[i].section, section) == 0 &&
		    strcmp(config_params[i].name, name) == 0) {
			*idx = i;
			return (&config_params[i]);
		}
	}
	return (NULL);
}

/*
 * What an unknown key in [sect] was probably meant to be, as the end of its
 * error (": it belongs in [migrations]", ": did you mean 'conninfo'?"), or
 * "": a key of another section, else a typo of a known key.  A named
 * database takes the keys of [database] and [migrations].
 */
static char *
config_unknown_hint(const char *sect, int named, const char *name)
{
	const struct config_param	*p, *best = NULL;
	size_t				 i, d, most, bestd = (size_t)-1;
	size_t				 len = strlen(name);
	int				 here;

	for (i = 0; i < nitems(config_params); i++) {
		p = &config_params[i];
		if (strcmp(p->name, name) == 0)
			return (xprintf(": it belongs in [%s]", p->section));
	}
	most = len <= 4 ? 1 : 2;
	for (i = 0; i < nitems(config_params); i++) {
		p = &config_params[i];
		d = word_distance(name, len, p->name);
		here = named ? strcmp(p->section, "database") == 0 ||
		    strcmp(p->section, "migrations") == 0 :
		    strcmp(p->section, sect) == 0;
		/* a key of this section wins a tie */
		if (d <= most && (d < bestd || (d == bestd && here))) {
			best = p;
			bestd = d;
		}
	}
	if (best == NULL)
		return (xstrdup(""));
	here = named ? strcmp(best->section, "database") == 0 ||
	    strcmp(best->section, "migrations") == 0 :
	    strcmp(best->section, sect) == 0;
	if (here)
		return (xprintf(": did you mean '%s'?", best->name));
	return (xprintf(": did you mean '%s' in [%s]?", best->name,
	    best->section));
}

/* inih's callback: finds the parameter, refuses duplicates, applies it. */
static int
config_handler(void *arg, const char *section, const char *name,
    const char *value)
{
	struct config_state		*st = arg;
	const struct config_param	*p;
	struct config_db		*db = &st->cf->defaults;
	int				*seen = st->seen;
	char				**raw = st->raw;
	char				*why = NULL, *joined;
	size_t				 i;

	st->prev_key = 1;
	if (*section == '\0' || st->kind == CK_NONE) {
		errlist_add(st->errs, "%s:%d: '%s' is outside any [section]",
		    st->path, st->lineno, name);
		return (1);
	}
	if (st->kind == CK_BAD)
		return (1);	/* the section was reported already */
	if (st->kind == CK_NAMED) {
		db = &st->cur->db;
		seen = st->cur->seen;
		raw = st->cur->raw;
		if ((p = config_param_find("database", name, &i)) == NULL &&
		    (p = config_param_find("migrations", name, &i)) == NULL) {
			why = config_unknown_hint("database", 1, name);
			errlist_add(st->errs, "%s:%d: unknown key '%s' in "
			    "[database %s] (a named database takes conninfo, "
			    "pool_size, connect_timeout and the keys of "
			    "[migrations])%s", st->path, st->lineno, name,
			    st->cur->name, why);
			free(why);
			return (1);
		}
		if (!CONFIG_IS_DB(p)) {
			errlist_add(st->errs, "%s:%d: '%s' applies to the whole "
			    "daemon, across every database: set it in the "
			    "unnamed [database], not in [database %s]",
			    st->path, st->lineno, name, st->cur->name);
			return (1);
		}
	} else if ((p = config_param_find(st->sect, name, &i)) == NULL) {
		why = config_unknown_hint(st->sect, 0, name);
		errlist_add(st->errs, "%s:%d: unknown key '%s' in [%s]%s",
		    st->path, st->lineno, name, st->sect, why);
		free(why);
		return (1);
	}
	if (st->indented && st->last == (int)i) {
		/* A continuation line: only the conninfo may span lines. */
		if (p->type != CT_CONNINFO) {
			errlist_add(st->errs, "%s:%d: '%s' cannot continue on "
			    "an indented line", st->path, st->lineno, name);
			return (1);
		}
		if (config_has_control(value)) {
			errlist_add(st->errs, "%s:%d: control character in the "
			    "value of '%s'", st->path, st->lineno, name);
			return (1);
		}
		joined = xprintf("%s %s", raw[i] != NULL ? raw[i] : "", value);
		if (config_set(st, p, joined, db, &why) != 0) {
			errlist_add(st->errs, "%s:%d: %s", st->path,
			    st->lineno, why);
		}
		free(why);
		free(raw[i]);
		raw[i] = joined;
		return (1);
	}
	if (seen[i]) {
		errlist_add(st->errs, "%s:%d: '%s' is already set on line %d",
		    st->path, st->lineno, name, seen[i]);
		return (1);
	}
	seen[i] = st->lineno;
	st->last = (int)i;
	if (config_has_control(value)) {
		errlist_add(st->errs, "%s:%d: control character in the value "
		    "of '%s'", st->path, st->lineno, name);
		return (1);
	}
	if (config_set(st, p, value, db, &why) != 0) {
		errlist_add(st->errs, "%s:%d: %s", st->path, st->lineno, why);
		free(why);
	}
	raw[i] = xstrdup(value);
	return (1);
}

/*
 * admin_reserve must leave readers at least one of max_clients: a value
 * written in the file is checked, the default shrinks to fit a small
 * max_clients.
 */
static int
config_check_reserve(struct config_state *st)
{
	struct config	*cf = st->cf;
	size_t		 i;

	if (cf->admin_reserve < cf->max_clients)
		return (0);
	for (i = 0; i < nitems(config_params); i++) {
		if (strcmp(config_params[i].name, "admin_reserve") == 0)
			break;
	}
	if (i == nitems(config_params) || !st->seen[i]) {
		cf->admin_reserve = cf->max_clients - 1;
		return (0);
	}
	errlist_add(st->errs, "%s:%d: admin_reserve (%d) must be less than "
	    "max_clients (%d), or only admins could ever connect", st->path,
	    st->seen[i], cf->admin_reserve, cf->max_clients);
	return (-1);
}

/* Frees what one database's settings hold, not the struct itself. */
static void
config_db_clear(struct config_db *db)
{
	size_t	 i;

	free(db->name);
	free(db->conninfo);
	free(db->directory);
	for (i = 0; i < db->n_schemas; i++)
		free(db->schemas[i]);
	free(db->schemas);
	free(db->version_schema);
	free(db->version_table);
	free(db->history_schema);
	free(db->history_table);
	memset(db, 0, sizeof *db);
}

/* Frees the parser's records of [database NAME] sections and values. */
static void
config_state_clear(struct config_state *st)
{
	size_t	 i, k;

	for (k = 0; k < st->n_secs; k++) {
		for (i = 0; i < nitems(config_params); i++)
			free(st->secs[k]->raw[i]);
		config_db_clear(&st->secs[k]->db);
		free(st->secs[k]->name);
		free(st->secs[k]);
	}
	free(st->secs);
	for (i = 0; i < nitems(config_params); i++)
		free(st->raw[i]);
}

/* The index of a parameter of the table, which must be there. */
static size_t
config_index(const char *section, const char *name)
{
	size_t	 i;

	if (config_param_find(section, name, &i) == NULL)
		fatalx("no parameter %s.%s", section, name);
	return (i);
}

/*
 * One database's settings, layered: the defaults, what the unnamed
 * [database] and [migrations] say, what its own section says (sec may be
 * NULL).  Each value was checked when it was read.
 */
static void
config_db_build(struct config_state *st, struct config_db *db,
    const char *name, int line, const struct config_sect *sec)
{
	const struct config_param	*p;
	char				*why = NULL;
	size_t				 i;
	int				 layer;

	db->name = xstrdup(name);
	db->line = line;
	for (layer = 0; layer < 3; layer++) {
		for (i = 0; i < nitems(config_params); i++) {
			p = &config_params[i];
			if (!CONFIG_IS_DB(p))
				continue;
			if (layer == 0 && config_set(st, p, p->defval, db,
			    &why) != 0)
				fatalx("bad default for %s: %s", p->name, why);
			if (layer == 1 && st->raw[i] != NULL && config_set(st,
			    p, st->raw[i], db, &why) != 0)
				fatalx("%s changed its mind: %s", p->name, why);
			if (layer == 2 && sec != NULL && sec->raw[i] != NULL &&
			    config_set(st, p, sec->raw[i], db, &why) != 0)
				fatalx("%s changed its mind: %s", p->name, why);
		}
	}
	if (db->history_schema == NULL)
		db->history_schema = xstrdup(db->version_schema);
}

/*
 * What identifies the database a conninfo reaches, as written: service,
 * host, hostaddr, port and dbname (never a password), for telling that
 * two sections name the same one.
 */
static char *
config_db_identity(const char *conninfo)
{
	static const char *const keys[] = {
		"service", "host", "hostaddr", "port", "dbname"
	};
	PQconninfoOption	*opts, *o;
	char			*id = xstrdup(""), *next;
	size_t			 k;

	if ((opts = PQconninfoParse(conninfo, NULL)) == NULL)
		return (id);
	for (k = 0; k < nitems(keys); k++) {
		for (o = opts; o->keyword != NULL; o++) {
			if (strcmp(o->keyword, keys[k]) != 0 || o->val == NULL ||
			    *o->val == '\0')
				continue;
			next = xprintf("%s%s%s=%s", id, *id ? " " : "",
			    o->keyword, o->val);
			free(id);
			id = next;
		}
	}
	PQconninfoFree(opts);
	return (id);
}

/*
 * Two sections that reach the same database with the same version table
 * would be two engines keeping one history: refused.  The same database
 * with another version table (one history per schema) is allowed.
 */
static void
config_check_same(struct config_state *st, struct config_sect **owner)
{
	struct config	*cf = st->cf;
	char		**ids;
	size_t		 i, k, ci = config_index("database", "conninfo");
	int		 li, lk;

	ids = xcalloc(cf->n_dbs, sizeof *ids);
	for (i = 0; i < cf->n_dbs; i++)
		ids[i] = config_db_identity(cf->dbs[i].conninfo);
	for (i = 0; i < cf->n_dbs; i++) {
		for (k = 0; k < i; k++) {
			if (strcmp(ids[i], ids[k]) != 0 ||
			    strcmp(cf->dbs[i].version_schema,
			    cf->dbs[k].version_schema) != 0 ||
			    strcmp(cf->dbs[i].version_table,
			    cf->dbs[k].version_table) != 0)
				continue;
			li = owner[i] ? owner[i]->line : st->seen[ci];
			lk = owner[k] ? owner[k]->line : st->seen[ci];
			errlist_add(st->errs, "%s:%d: [database %s] reaches the "
			    "same database as [database %s] on line %d (%s) "
			    "and keeps the same version table %s.%s: one "
			    "history would be kept by two engines; remove one "
			    "section, or give each its own version_table",
			    st->path, li, cf->dbs[i].name, cf->dbs[k].name, lk,
			    *ids[i] ? ids[i] : "libpq's defaults",
			    cf->dbs[i].version_schema,
			    cf->dbs[i].version_table);
			break;
		}
	}
	for (i = 0; i < cf->n_dbs; i++)
		free(ids[i]);
	free(ids);
}

/*
 * Turns the sections into the list of databases and checks what only the
 * whole file tells: a conninfo for each named one, the name 'default',
 * pool sizes under the daemon's cap, no database twice.
 */
static int
config_build_dbs(struct config_state *st)
{
	struct config		*cf = st->cf;
	struct config_sect	**owner;
	struct config_db	*db;
	size_t			 i, k, before = st->errs->n;
	size_t			 ci = config_index("database", "conninfo");
	size_t			 pi = config_index("database", "pool_size");
	size_t			 ii = config_index("database", "idle_close");
	long			 sum = 0;
	int			 unnamed;

	/* The unnamed [database] is a database itself when it has a
	 * conninfo, or when there is no other. */
	unnamed = st->n_secs == 0 || *cf->defaults.conninfo != '\0';
	cf->n_dbs = (size_t)unnamed + st->n_secs;
	cf->dbs = xcalloc(cf->n_dbs, sizeof *cf->dbs);
	owner = xcalloc(cf->n_dbs, sizeof *owner);
	k = 0;
	if (unnamed)
		config_db_build(st, &cf->dbs[k++], "default", 0, NULL);
	for (i = 0; i < st->n_secs; i++) {
		owner[k] = st->secs[i];
		config_db_build(st, &cf->dbs[k++], st->secs[i]->name,
		    st->secs[i]->line, st->secs[i]);
		if (st->secs[i]->raw[ci] == NULL ||
		    *config_trim(st->secs[i]->raw[ci]) == '\0')
			errlist_add(st->errs, "%s:%d: [database %s] has no "
			    "conninfo: a named database needs its own (the "
			    "unnamed [database]'s is not inherited)", st->path,
			    st->secs[i]->line, st->secs[i]->name);
		if (unnamed && strcasecmp(st->secs[i]->name, "default") == 0)
			errlist_add(st->errs, "%s:%d: [database %s] clashes "
			    "with the unnamed [database], whose conninfo (line "
			    "%d) makes it the database named 'default': name "
			    "this one otherwise, or move that conninfo into it",
			    st->path, st->secs[i]->line, st->secs[i]->name,
			    st->seen[ci]);
	}
	if (cf->defaults.history_schema == NULL)
		cf->defaults.history_schema =
		    xstrdup(cf->defaults.version_schema);

	/* The daemon's cap: no database may hold more than all of them.  A
	 * pool_size written in the unnamed [database] is reported once; the
	 * default shrinks to fit a small cap. */
	for (i = 0; i < cf->n_dbs && cf->max_connections_total > 0; i++) {
		db = &cf->dbs[i];
		if (db->pool_size <= cf->max_connections_total)
			continue;
		if (owner[i] != NULL && owner[i]->seen[pi])
			errlist_add(st->errs, "%s:%d: pool_size (%d) of "
			    "[database %s] is above max_connections_total "
			    "(%d): no database may hold more connections than "
			    "the whole daemon", st->path, owner[i]->seen[pi],
			    db->pool_size, db->name,
			    cf->max_connections_total);
		else if (!st->seen[pi])
			db->pool_size = cf->max_connections_total;
	}
	if (cf->max_connections_total > 0 &&
	    cf->defaults.pool_size > cf->max_connections_total) {
		if (st->seen[pi])
			errlist_add(st->errs, "%s:%d: pool_size (%d) is above "
			    "max_connections_total (%d): no database may hold "
			    "more connections than the whole daemon", st->path,
			    st->seen[pi], cf->defaults.pool_size,
			    cf->max_connections_total);
		else
			cf->defaults.pool_size = cf->max_connections_total;
	}
	config_check_same(st, owner);
	free(owner);
	if (st->errs->n != before)
		return (-1);

	for (i = 0; i < cf->n_dbs; i++)
		sum += cf->dbs[i].pool_size;
	if (cf->n_dbs > 1 && cf->max_connections_total == 0)
		errlist_add(&cf->warnings, "%s: %zu databases and no "
		    "max_connections_total: migd may hold up to %ld "
		    "connections at once (the sum of their pool_size); set "
		    "[database] max_connections_total to what the server can "
		    "spare (see docs/fleet.md)", st->path, cf->n_dbs, sum);
	if (!st->seen[ii] && cf->n_dbs > 1) {
		/* A fleet closes what it does not use. */
		config_duration(CONFIG_IDLE_CLOSE_FLEET, 86400000,
		    &cf->idle_close_ms, cf->idle_close_text,
		    sizeof cf->idle_close_text);
	}
	return (0);
}

/* Parses a whole file's text; on error every problem is in errs. */
int
config_parse(const char *path, const char *text, size_t len,
    struct config **out, struct errlist *errs)
{
	struct config_state	 st;
	struct config		*cf;
	size_t			 i, before = errs->n;
	char			*why;
	int			 r;

	if (memchr(text, '\0', len) != NULL) {
		errlist_add(errs, "%s:1: not a text file (NUL byte)", path);
		return (-1);
	}
	if ((i = utf8_valid_prefix(text, len)) != len) {
		size_t	 k, line = 1;

		for (k = 0; k < i; k++)
			line += text[k] == '\n';
		errlist_add(errs, "%s:%zu: not valid UTF-8", path, line);
		return (-1);
	}
	cf = xcalloc(1, sizeof *cf);
	cf->path = xstrdup(path);
	memset(&st, 0, sizeof st);
	st.path = path;
	st.cf = cf;
	st.errs = errs;
	st.last = -1;

	/* Defaults first, through the same setter as the file's values. */
	for (i = 0; i < nitems(config_params); i++) {
		why = NULL;
		if (config_set(&st, &config_params[i],
		    config_params[i].defval, &cf->defaults, &why) != 0)
			fatalx("bad default for %s: %s", config_params[i].name,
			    why);
	}
	/* Relative defaults resolve against the file too. */
	st.text = text;
	st.len = len;
	r = ini_parse_stream(config_reader, &st, config_handler, &st);
	if (r > 0 && errs->n == before) {
		errlist_add(errs, "%s:%d: syntax error (expected [section] or "
		    "key = value)", path, r);
	} else if (r < 0 && errs->n == before)
		errlist_add(errs, "%s: cannot parse", path);
	if (errs->n != before || config_check_reserve(&st) != 0 ||
	    config_build_dbs(&st) != 0) {
		config_state_clear(&st);
		config_free(cf);
		return (-1);
	}
	config_state_clear(&st);
	*out = cf;
	return (0);
}

/* Whether any database's conninfo holds a password. */
static int
config_has_secret(const struct config *cf)
{
	size_t	 i;

	for (i = 0; i < cf->n_dbs; i++) {
		if (conninfo_has_secret(cf->dbs[i].conninfo))
			return (1);
	}
	return (0);
}

/*
 * Reads the file (the only I/O here) and parses it, once its owner and mode
 * are those of a file only root or migd's user can change; a password
 * others can read is a warning in cf->warnings.
 */
int
config_load(const char *path, struct config **out, struct errlist *errs)
{
	struct stat	 sb;
	struct passwd	 pwb, *pw = NULL;
	struct group	 grb, *gr = NULL;
	char		 pwbuf[4096], grbuf[4096];
	char		*buf;
	ssize_t		 n;
	size_t		 off = 0;
	int		 fd, r;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		if (errno == EACCES && getpwuid_r(geteuid(), &pwb, pwbuf,
		    sizeof pwbuf, &pw) == 0 && pw != NULL && getgrgid_r(
		    getegid(), &grb, grbuf, sizeof grbuf, &gr) == 0 && gr != NULL)
			/* root:migd 0640 is what deploy.md installs. */
			errlist_add(errs, "%s: %s: migd runs as user %s, who "
			    "must be able to read it (e.g. chgrp %s %s; chmod "
			    "0640 %s)", path, strerror(EACCES), pw->pw_name,
			    gr->gr_name, path, path);
		else
			errlist_add(errs, "%s: %s", path, strerror(errno));
		return (-1);
	}
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode) ||
	    sb.st_size > CONFIG_MAX_FILE) {
		errlist_add(errs, "%s: %s", path, S_ISREG(sb.st_mode) ?
		    "too large or unreadable" : "not a regular file");
		close(fd);
		return (-1);
	}
	/* Whoever can write it chooses the database and the migrations. */
	if (!path_trusted(&sb, path, "configuration file", errs)) {
		close(fd);
		return (-1);
	}
	buf = xmalloc((size_t)sb.st_size + 1);
	while (off < (size_t)sb.st_size) {
		n = read(fd, buf + off, (size_t)sb.st_size - off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	close(fd);
	buf[off] = '\0';
	r = config_parse(path, buf, off, out, errs);
	free(buf);
	if (r == 0 && (sb.st_mode & S_IROTH) && config_has_secret(*out)) {
		errlist_add(&(*out)->warnings, "%s: holds a password and is "
		    "readable by every user (mode %04o): chmod o-r %s (owner "
		    "root, group migd and mode 0640 let migd read it), or keep "
		    "the password in a passfile", path,
		    (unsigned int)(sb.st_mode & 07777), path);
	}
	return (r);
}

void
config_free(struct config *cf)
{
	size_t	 i;

	if (cf == NULL)
		return;
	errlist_clear(&cf->warnings);
	free(cf->path);
	free(cf->socket);
	free(cf->admin_group);
	free(cf->read_group);
	for (i = 0; i < cf->n_dbs; i++)
		config_db_clear(&cf->dbs[i]);
	free(cf->dbs);
	config_db_clear(&cf->defaults);
	free(cf);
}

/* The database called name (compared without case), or NULL. */
const struct config_db *
config_find_db(const struct config *cf, const char *name)
{
	size_t	 i;

	for (i = 0; i < cf->n_dbs; i++) {
		if (strcasecmp(cf->dbs[i].name, name) == 0)
			return (&cf->dbs[i]);
	}
	return (NULL);
}

/* Whether two optional strings are equal (NULL equals NULL only). */
static int
config_same_str(const char *a, const char *b)
{
	return (a == NULL || b == NULL ? a == b : strcmp(a, b) == 0);
}

/* The first setting of reads (CONFIG_READS_*) on which a and b differ, by
 * its key in the file, or NULL when they agree on all of them. */
const char *
config_db_differs(const struct config_db *a, const struct config_db *b,
    int reads)
{
	size_t	 i;

	if ((reads & CONFIG_READS_DIR) && !config_same_str(a->directory,
	    b->directory))
		return ("directory");
	if ((reads & CONFIG_READS_FORMAT) && a->format != b->format)
		return ("format");
	if (reads & CONFIG_READS_SCHEMAS) {
		if (a->n_schemas != b->n_schemas)
			return ("schemas");
		for (i = 0; i < a->n_schemas; i++)
			if (strcmp(a->schemas[i], b->schemas[i]) != 0)
				return ("schemas");
		if (!config_same_str(a->version_schema, b->version_schema))
			return ("version_table");
		if (!config_same_str(a->history_schema, b->history_schema))
			return ("history_table");
	}
	if (reads & CONFIG_READS_RUN) {
		if (!config_same_str(a->version_table, b->version_table))
			return ("version_table");
		if (!config_same_str(a->history_table, b->history_table))
			return ("history_table");
		if (a->lock_timeout_ms != b->lock_timeout_ms)
			return ("lock_timeout");
		if (a->statement_timeout_ms != b->statement_timeout_ms)
			return ("statement_timeout");
		if (a->atomic != b->atomic)
			return ("atomic");
	}
	return (NULL);
}

/*
 * The database an offline command (migctl -c CONFIG) is for: the one name
 * says, exactly as migd matches its database param; without a name, the
 * only one, or the unnamed [database]'s ("default"), as migd picks, else
 * the first when every database agrees on what the command reads (reads:
 * CONFIG_READS_*), so a fleet on one directory needs no name.  NULL with
 * *cause (to free) naming the databases otherwise.
 */
const struct config_db *
config_pick_db(const struct config *cf, const char *name, int reads,
    char **cause)
{
	const char	*what = NULL;
	char		*names = xstrdup(""), *t;
	size_t		 i;

	*cause = NULL;
	for (i = 0; i < cf->n_dbs; i++) {
		if (name != NULL ? strcmp(cf->dbs[i].name, name) == 0 :
		    cf->n_dbs == 1 || strcmp(cf->dbs[i].name, "default") == 0) {
			free(names);
			return (&cf->dbs[i]);
		}
	}
	for (i = 1; name == NULL && what == NULL && i < cf->n_dbs; i++)
		what = config_db_differs(&cf->dbs[0], &cf->dbs[i], reads);
	if (name == NULL && what == NULL && cf->n_dbs > 0) {
		free(names);
		return (&cf->dbs[0]);
	}
	for (i = 0; i < cf->n_dbs; i++) {
		t = xprintf("%s%s%s", names, i ? ", " : "", cf->dbs[i].name);
		free(names);
		names = t;
	}
	if (name != NULL)
		*cause = xprintf("no database %.64s in %s; databases: %s", name,
		    cf->path != NULL ? cf->path : "the configuration", names);
	else
		*cause = xprintf("%s has %zu databases and their %s differs: "
		    "name one with --db NAME; databases: %s", cf->path != NULL ?
		    cf->path : "the configuration", cf->n_dbs, what, names);
	free(names);
	return (NULL);
}

/* lint's value as the file writes it (config_print). */
const char *
config_lint_name(int lint)
{
	return (config_lint_names[lint]);
}
