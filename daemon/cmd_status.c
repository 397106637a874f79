/*
 * The read-only introspection commands: version and status.  Both answer
 * from memory, so they stay instant whatever the pool is doing.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "migd.h"
#include "migrate.h"

void
cmd_version_exec(struct request *req)
{
	cmd_reply(req, json_pack("{s:s, s:s, s:i}", "name", PACKAGE_NAME,
	    "version", PACKAGE_VERSION, "protocol", MIGD_PROTOCOL_VERSION));
}

/* The read-only engine commands: each one a job of the engine. */
void
cmd_status_exec(struct request *req)
{
	migrate_start(req, MIGRATE_STATUS);
}

void
cmd_current_exec(struct request *req)
{
	migrate_start(req, MIGRATE_CURRENT);
}

void
cmd_heads_exec(struct request *req)
{
	migrate_start(req, MIGRATE_HEADS);
}

/* The files' graph: no database needed, answered at once. */
void
cmd_revisions_exec(struct request *req)
{
	migrate_revisions(req);
}

void
cmd_history_exec(struct request *req)
{
	migrate_start(req, MIGRATE_HISTORY);
}

void
cmd_plan_exec(struct request *req)
{
	migrate_start(req, MIGRATE_PLAN);
}

/* lint: the pending plan's findings, with the catalog's context. */
void
cmd_lint_exec(struct request *req)
{
	migrate_start(req, MIGRATE_LINT);
}

void
cmd_schemas_exec(struct request *req)
{
	migrate_start(req, MIGRATE_SCHEMAS);
}

void
cmd_verify_exec(struct request *req)
{
	migrate_start(req, MIGRATE_VERIFY);
}

/* The mutating commands queue in the engine, one run at a time. */
void
cmd_upgrade_exec(struct request *req)
{
	migrate_start(req, MIGRATE_UPGRADE);
}

void
cmd_cancel_exec(struct request *req)
{
	migrate_cancel(req);
}

void
cmd_downgrade_exec(struct request *req)
{
	migrate_start(req, MIGRATE_DOWNGRADE);
}

void
cmd_stamp_exec(struct request *req)
{
	migrate_start(req, MIGRATE_STAMP);
}

void
cmd_resolve_exec(struct request *req)
{
	migrate_start(req, MIGRATE_RESOLVE);
}

void
cmd_accept_exec(struct request *req)
{
	migrate_start(req, MIGRATE_ACCEPT);
}

void
cmd_adopt_exec(struct request *req)
{
	migrate_start(req, MIGRATE_ADOPT);
}

/* reload: the configuration and the files, as SIGHUP does; with a
 * database, answered with its files once they are read again. */
void
cmd_reload_exec(struct request *req)
{
	char	*cause = NULL;

	if (migd_reload(req->db, &cause) != 0) {
		cmd_error(req, MIGD_ERR_INVALID_PARAMS, "invalid_config",
		    NULL, "%s", cause);
		free(cause);
		return;
	}
	if (req->db == NULL || req->db->removed) {
		/* Several databases, none named (or the one named is gone
		 * from the file): every one's files are read again
		 * (migd_reload started them); each load is logged. */
		cmd_reply(req, json_object());
		return;
	}
	/* Answered once the files are read again, off the loop. */
	migrate_reload(req->db, req);
}
