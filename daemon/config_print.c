/*
 * The configuration as migd --check prints it: every database's effective
 * settings, in the file's own syntax.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layout.h"
#include "conninfo.h"
#include "migd.h"
#include "sqlscan.h"

/* The end of one key=value pair: the first blank outside quotes. */
static const char *
config_pair_end(const char *p)
{
	int	 quoted = 0;

	for (; *p != '\0'; p++) {
		if (quoted && *p == '\\' && p[1] != '\0')
			p++;
		else if (*p == '\'')
			quoted = !quoted;
		else if (*p == ' ' && !quoted)
			break;
	}
	return (p);
}

/* Prints the conninfo, continued on indented lines as the parser allows. */
static void
config_print_conninfo(FILE *f, const char *conninfo)
{
	const char	*p = conninfo, *sp;
	size_t		 col = strlen("conninfo = ");

	fputs("conninfo =", f);
	while (*p != '\0') {
		sp = config_pair_end(p);
		if (col + 1 + (size_t)(sp - p) > 150 && p != conninfo) {
			fputs("\n   ", f);
			col = 3;
		}
		fprintf(f, " %.*s", (int)(sp - p), p);
		col += 1 + (size_t)(sp - p);
		p = *sp == ' ' ? sp + 1 : sp;
	}
	fputc('\n', f);
}

/* A schema name as the schemas list reads it back: plain when it is a
 * lower-case identifier, else double-quoted with " doubled. */
static char *
config_quote_ident(const char *name)
{
	const char	*p;
	char		*out, *q;
	int		 plain = 1;

	for (p = name; *p != '\0'; p++) {
		if (!((*p >= 'a' && *p <= 'z') || *p == '_' || (p != name &&
		    ((*p >= '0' && *p <= '9') || *p == '$'))))
			plain = 0;
	}
	if (plain)
		return (xstrdup(name));
	out = q = xmalloc(strlen(name) * 2 + 3);
	*q++ = '"';
	for (p = name; *p != '\0'; p++) {
		if (*p == '"')
			*q++ = '"';
		*q++ = *p;
	}
	*q++ = '"';
	*q = '\0';
	return (out);
}

/* Prints a database's [migrations] keys, for [migrations] or its section. */
static void
config_print_migrations(const struct config_db *db, FILE *f)
{
	char	*name;
	size_t	 i;

	fprintf(f, "directory = %s\nschemas = ", db->directory);
	for (i = 0; i < db->n_schemas; i++) {
		name = config_quote_ident(db->schemas[i]);
		fprintf(f, "%s%s", i ? ", " : "", name);
		free(name);
	}
	fprintf(f, "\nversion_table = %s.%s\nhistory_table = %s.%s\n"
	    "lock_timeout = %s\nstatement_timeout = %s\n"
	    "lock_wait = %s\nconcurrent_lock_timeout = %s\n"
	    "concurrent_statement_timeout = %s\natomic = %s\nlint = %s\n"
	    "lint_small_table_rows = %ld\nlock_retries = %d\n"
	    "lock_retry_wait = %s\nlock_retry_max_wait = %s\nformat = %s\n",
	    db->version_schema, db->version_table, db->history_schema,
	    db->history_table, db->lock_timeout_text,
	    db->statement_timeout_text, db->lock_wait_text,
	    db->concurrent_lock_timeout_text,
	    db->concurrent_statement_timeout_text,
	    db->atomic ? "true" : "false", config_lint_name(db->lint),
	    db->lint_small_table_rows, db->lock_retries,
	    db->lock_retry_wait_text, db->lock_retry_max_wait_text,
	    layout_name((enum layout_format)db->format));
}

/* Prints a database's connection keys, masked. */
static void
config_print_connection(const struct config_db *db, FILE *f)
{
	char	*masked;

	masked = conninfo_mask(db->conninfo);
	config_print_conninfo(f, masked);
	fprintf(f, "pool_size = %d\nconnect_timeout = %d\n", db->pool_size,
	    db->connect_timeout);
	free(masked);
}

/*
 * Prints the effective settings as an INI file that migd would accept
 * (a path longer than a line of the file allows is the one exception):
 * the unnamed sections, then every [database NAME] in full.
 */
void
config_print(const struct config *cf, FILE *f)
{
	size_t	 i, col;

	fprintf(f, "# effective settings of %s\n", cf->path);
	fprintf(f, "# %zu database%s:", cf->n_dbs, cf->n_dbs == 1 ? "" : "s");
	col = 13;
	for (i = 0; i < cf->n_dbs; i++) {
		if (col + strlen(cf->dbs[i].name) > 150) {
			fputs("\n#  ", f);
			col = 3;
		}
		fprintf(f, " %s", cf->dbs[i].name);
		col += 1 + strlen(cf->dbs[i].name);
	}
	fprintf(f, "\n[database]\n");
	config_print_connection(&cf->defaults, f);
	fprintf(f, "max_connections_total = %d\nidle_close = %s\n\n",
	    cf->max_connections_total, cf->idle_close_text);
	fprintf(f, "[migrations]\n");
	config_print_migrations(&cf->defaults, f);
	fputc('\n', f);
	for (i = 0; i < cf->n_dbs; i++) {
		if (cf->dbs[i].line == 0)
			continue;	/* the unnamed one, printed above */
		fprintf(f, "[database %s]\n", cf->dbs[i].name);
		config_print_connection(&cf->dbs[i], f);
		config_print_migrations(&cf->dbs[i], f);
		fputc('\n', f);
	}
	fprintf(f, "[control]\nsocket = %s\nsocket_mode = %04o\n"
	    "admin_group = %s\nread_group = %s\nmax_clients = %d\n"
	    "admin_reserve = %d\nmax_request_bytes = %d\nidle_timeout = %d\n"
	    "\n", cf->socket, cf->socket_mode, cf->admin_group,
	    cf->read_group, cf->max_clients, cf->admin_reserve,
	    cf->max_request_bytes, cf->idle_timeout);
	fprintf(f, "[log]\nlevel = %s\n", log_level_name(cf->log_level));
}
