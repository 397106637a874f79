/*
 * A database migd serves, and its whole lifetime: database_new makes its
 * pool and its engine (run queue, jobs, loaded files, caches) and starts
 * loading its files; database_free undoes that in the reverse order.  Each
 * database is alone with its state: a second one shares nothing with it
 * but the event loop, the daemon-wide settings and, when it reads the same
 * directory alike, the loaded files (files.c).
 */
#include <sys/queue.h>

#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "migd.h"
#include "engine.h"

/* Creates database cf->name: its pool (connecting now, or on demand within
 * the daemon's budget), its engine; its files load, or it reads those of a
 * database that reads the same directory alike (files.c). */
struct database *
database_new(struct event_base *base, const struct config_db *cf,
    struct pool_budget *budget, struct files_table *files)
{
	struct database	*db;

	db = xcalloc(1, sizeof *db);
	db->name = xstrdup(cf->name);
	db->tag = cf->line == 0 ? xstrdup("") : xprintf("%s: ", cf->name);
	db->cli = cf->line == 0 ? xstrdup("") : xprintf("--db %s ", cf->name);
	db->cf = cf;
	db->base = base;
	db->pool = pool_new(base, cf, budget);
	db->files = files;
	db->engine = xcalloc(1, sizeof *db->engine);
	migrate_engine_init(db->engine, db);
	return (db);
}

/* Frees a database once the loop has stopped (its jobs have ended). */
void
database_free(struct database *db)
{
	if (db == NULL)
		return;
	migrate_engine_clear(db->engine);
	free(db->engine);
	json_decref(db->last_run);
	pool_free(db->pool);
	free(db->name);
	free(db->tag);
	free(db->cli);
	free(db);
}

/* A reload's settings for this database (same name): the pool applies its
 * own (size, timeout, conninfo), the engine reads the rest as it goes and
 * the set of files they call for. */
void
database_reconfigure(struct database *db, const struct config_db *cf)
{
	const struct config_db	*old = db->cf;

	/* Another server or other tables: what was read of the old ones (the
	 * kept state, the history's summary) says nothing of the new. */
	if (strcmp(old->conninfo, cf->conninfo) != 0 ||
	    strcmp(old->version_schema, cf->version_schema) != 0 ||
	    strcmp(old->version_table, cf->version_table) != 0 ||
	    strcmp(old->history_schema, cf->history_schema) != 0 ||
	    strcmp(old->history_table, cf->history_table) != 0)
		migrate_forget_state(db);
	db->cf = cf;
	pool_reconfigure(db->pool, cf);
	migrate_reconfigure(db);
}

/* A request (or, run set, a rollout) names the database: it stays until
 * released, also when a reload removes it meanwhile. */
void
database_hold(struct database *db, int run)
{
	db->refs++;
	if (run)
		db->rollouts++;
}

/* Undoes database_hold; a removed database is freed later, from the loop
 * (main.c), never here, inside its own request's callback. */
void
database_release(struct database *db, int run)
{
	if (db->refs == 0 || (run && db->rollouts == 0))
		fatalx("database_release: %s is not held", db->name);
	db->refs--;
	if (run)
		db->rollouts--;
}

/* A JSON string, or null for a missing value. */
static json_t *
database_string_or_null(const char *s)
{
	return (s != NULL && *s != '\0' ? json_string(s) : json_null());
}

/* The database part of status; self is 1 when the asker holds a connection. */
json_t *
database_status(struct database *d, int self)
{
	struct pool_stats	 st;
	PGconn			*pg;
	json_t			*db;

	pool_stats(d->pool, &st);
	if (self && st.busy > 0) {
		/* The pool as everyone else sees it. */
		st.busy--;
		st.idle++;
	}
	pg = pool_any_connection(d->pool);
	db = json_pack("{s:s, s:b, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:{s:i, "
	    "s:i, s:i, s:i, s:b}}",
	    "name", d->name,
	    "connected", pg != NULL,
	    "connection", pool_connection_word(d->pool),
	    "server_version", database_string_or_null(pg ?
	    PQparameterStatus(pg, "server_version") : NULL),
	    "database", database_string_or_null(pg ? PQdb(pg) : NULL),
	    "user", database_string_or_null(pg ? PQuser(pg) : NULL),
	    "host", database_string_or_null(pg ? PQhost(pg) : NULL),
	    "port", database_string_or_null(pg ? PQport(pg) : NULL),
	    "last_error", database_string_or_null(pool_last_error(d->pool)),
	    "pool", "size", st.size, "connected", st.connected, "busy",
	    st.busy, "idle", st.idle, "on_demand", pool_on_demand(d->pool));
	return (db);
}
