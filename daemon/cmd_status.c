/*
 * The read-only introspection commands: version and status.  Both answer
 * from memory, so they stay instant whatever the pool is doing.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "migd.h"

/* A JSON string, or null for a missing value. */
static json_t *
cmd_string_or_null(const char *s)
{
	return (s != NULL && *s != '\0' ? json_string(s) : json_null());
}

void
cmd_version_exec(struct request *req)
{
	cmd_reply(req, json_pack("{s:s, s:s, s:i}", "name", PACKAGE_NAME,
	    "version", PACKAGE_VERSION, "protocol", MIGD_PROTOCOL_VERSION));
}

/* The database part of status, from a live connection's parameters. */
static json_t *
cmd_status_database(void)
{
	struct pool_stats	 st;
	PGconn			*pg;
	json_t			*db;

	pool_stats(migd.pool, &st);
	pg = pool_any_connection(migd.pool);
	db = json_pack("{s:b, s:o, s:o, s:o, s:o, s:o, s:o, s:{s:i, s:i, "
	    "s:i, s:i}}",
	    "connected", pg != NULL,
	    "server_version", cmd_string_or_null(pg ?
	    PQparameterStatus(pg, "server_version") : NULL),
	    "database", cmd_string_or_null(pg ? PQdb(pg) : NULL),
	    "user", cmd_string_or_null(pg ? PQuser(pg) : NULL),
	    "host", cmd_string_or_null(pg ? PQhost(pg) : NULL),
	    "port", cmd_string_or_null(pg ? PQport(pg) : NULL),
	    "last_error", cmd_string_or_null(pool_last_error(migd.pool)),
	    "pool", "size", st.size, "connected", st.connected, "busy",
	    st.busy, "idle", st.idle);
	return (db);
}

void
cmd_status_exec(struct request *req)
{
	json_t	*res;

	res = json_pack("{s:{s:s, s:I, s:f, s:i}, s:o, s:{s:s}}",
	    "daemon", "version", PACKAGE_VERSION, "pid", (json_int_t)getpid(),
	    "uptime", migd_now() - migd.started, "protocol",
	    MIGD_PROTOCOL_VERSION,
	    "database", cmd_status_database(),
	    "migrations", "directory", migd.config->directory);
	cmd_reply(req, res);
}
