/*
 * The command table and its dispatcher.  Every request is validated here
 * (shape, method, params, permission) before its handler runs, so handlers
 * assume valid input; the database a request is for is looked up here,
 * once, and handed down in req->db.  A handler owns its request until it
 * answers it with cmd_reply or cmd_error, at once or later from a callback.
 */
#include <stdlib.h>
#include <string.h>

#include "migd.h"

static const struct rpc_param cmd_no_params[] = {
	{ NULL, RPC_STRING, 0 }
};
static const struct rpc_param cmd_history_params[] = {
	{ "limit", RPC_INT, 0 },
	{ "revision", RPC_STRING, 0 },
	{ NULL, RPC_STRING, 0 }
};
static const struct rpc_param cmd_plan_params[] = {
	{ "target", RPC_STRING, 0 },
	{ "allow_drift", RPC_BOOL, 0 },
	{ "atomic", RPC_BOOL, 0 },
	{ NULL, RPC_STRING, 0 }
};
static const struct rpc_param cmd_lint_params[] = {
	{ "revisions", RPC_STRINGS, 0 },
	{ "all", RPC_BOOL, 0 },
	{ "files", RPC_FILES, 0 },
	{ "format", RPC_STRING, 0 },
	{ NULL, RPC_STRING, 0 }
};
static const struct rpc_param cmd_upgrade_params[] = {
	{ "target", RPC_STRING, 0 },
	{ "dry_run", RPC_BOOL, 0 },
	{ "allow_drift", RPC_BOOL, 0 },
	{ "atomic", RPC_BOOL, 0 },
	{ "apply_skipped", RPC_BOOL, 0 },
	{ NULL, RPC_STRING, 0 }
};
static const struct rpc_param cmd_downgrade_params[] = {
	{ "target", RPC_STRING, 1 },
	{ "dry_run", RPC_BOOL, 0 },
	{ "allow_drift", RPC_BOOL, 0 },
	{ "atomic", RPC_BOOL, 0 },
	{ NULL, RPC_STRING, 0 }
};
static const struct rpc_param cmd_cancel_params[] = {
	{ "requester_pid", RPC_INT, 0 },
	{ NULL, RPC_STRING, 0 }
};
static const struct rpc_param cmd_stamp_params[] = {
	{ "revision", RPC_STRING_OR_STRINGS, 1 },
	{ "purge", RPC_BOOL, 0 },
	{ NULL, RPC_STRING, 0 }
};
static const struct rpc_param cmd_accept_params[] = {
	{ "revisions", RPC_STRINGS, 1 },
	{ NULL, RPC_STRING, 0 }
};
static const struct rpc_param cmd_adopt_params[] = {
	{ "from", RPC_STRING, 0 },
	{ "table", RPC_STRING, 0 },
	{ NULL, RPC_STRING, 0 }
};
static const struct rpc_param cmd_resolve_params[] = {
	{ "revision", RPC_STRING, 1 },
	{ "state", RPC_STRING, 1 },
	{ NULL, RPC_STRING, 0 }
};

/* Every method migd answers: the one place a new command is added. */
static const struct cmd_entry cmd_table[] = {
	{ "accept", CMD_MUTATING, cmd_accept_params, cmd_accept_exec },
	{ "adopt", CMD_MUTATING, cmd_adopt_params, cmd_adopt_exec },
	{ "cancel", CMD_MUTATING, cmd_cancel_params, cmd_cancel_exec },
	{ "current", CMD_READONLY, cmd_no_params, cmd_current_exec },
	{ "downgrade", CMD_MUTATING, cmd_downgrade_params,
	    cmd_downgrade_exec },
	{ "heads", CMD_READONLY, cmd_no_params, cmd_heads_exec },
	{ "history", CMD_READONLY, cmd_history_params, cmd_history_exec },
	{ "lint", CMD_READONLY, cmd_lint_params, cmd_lint_exec },
	{ "plan", CMD_READONLY, cmd_plan_params, cmd_plan_exec },
	{ "reload", CMD_MUTATING | CMD_ANYDB, cmd_no_params,
	    cmd_reload_exec },
	{ "resolve", CMD_MUTATING, cmd_resolve_params, cmd_resolve_exec },
	{ "revisions", CMD_READONLY, cmd_no_params, cmd_revisions_exec },
	{ "schemas", CMD_READONLY, cmd_no_params, cmd_schemas_exec },
	{ "stamp", CMD_MUTATING, cmd_stamp_params, cmd_stamp_exec },
	{ "status", CMD_READONLY, cmd_no_params, cmd_status_exec },
	{ "upgrade", CMD_MUTATING, cmd_upgrade_params, cmd_upgrade_exec },
	{ "verify", CMD_READONLY, cmd_no_params, cmd_verify_exec },
	{ "version", CMD_READONLY | CMD_ANYDB, cmd_no_params,
	    cmd_version_exec },
};

/* Looks a method up in the table. */
static const struct cmd_entry *
cmd_find(const char *name)
{
	size_t	 i;

	for (i = 0; i < nitems(cmd_table); i++) {
		if (strcmp(cmd_table[i].name, name) == 0)
			return (&cmd_table[i]);
	}
	return (NULL);
}

/* The names of every database, for a message (to free). */
char *
cmd_database_names(void)
{
	char	*s = xstrdup(""), *t;
	size_t	 i;

	for (i = 0; i < migd.n_dbs; i++) {
		t = xprintf("%s%s%s", s, i ? ", " : "", migd.dbs[i]->name);
		free(s);
		s = t;
	}
	return (s);
}

/*
 * The database a request is for: the one its database param names, else
 * the only one, else the unnamed [database]'s ("default").  NULL with the
 * reason in *cause (to free) when there is none; none asked of a CMD_ANYDB
 * method is not a mistake (*cause stays NULL).
 */
static struct database *
cmd_database(const struct request *req, char **cause)
{
	json_t		*v = json_object_get(req->rpc.params, "database");
	const char	*name;
	char		*names;
	size_t		 i;

	*cause = NULL;
	if (v != NULL && !json_is_string(v)) {
		*cause = xstrdup("parameter \"database\" must be a string");
		return (NULL);
	}
	name = v != NULL ? json_string_value(v) : NULL;
	for (i = 0; i < migd.n_dbs; i++) {
		if (name != NULL ? strcmp(migd.dbs[i]->name, name) == 0 :
		    migd.n_dbs == 1 || strcmp(migd.dbs[i]->name,
		    "default") == 0)
			return (migd.dbs[i]);
	}
	if (name == NULL && (req->entry->flags & CMD_ANYDB))
		return (NULL);
	names = cmd_database_names();
	if (name != NULL)
		*cause = xprintf("no database %.64s; databases: %s", name,
		    names);
	else
		*cause = xprintf("migd serves %zu databases: name one with the "
		    "database param (migctl --db NAME); databases: %s",
		    migd.n_dbs, names);
	free(names);
	return (NULL);
}

/* Ends a request: the client may go on with its next one. */
static void
cmd_finish(struct request *req, json_t *msg)
{
	if (req->done == NULL && req->db != NULL)
		database_release(req->db, 0);	/* cmd_dispatch held it */
	if (req->done != NULL) {
		/* A fleet's request: the fleet gathers the answer. */
		req->done(req, msg, req->done_arg);
		rpc_request_clear(&req->rpc);
		free(req);
		return;
	}
	if (msg != NULL) {
		if (req->rpc.id != NULL)
			control_send(req->client, msg);
		else
			json_decref(msg);	/* notifications get no reply */
	}
	control_request_done(req->client);
	rpc_request_clear(&req->rpc);
	free(req);
}

void
cmd_reply(struct request *req, json_t *result)
{
	cmd_finish(req, rpc_result(req->rpc.id, result));
}

void
cmd_error(struct request *req, int code, const char *kind, json_t *data,
    const char *fmt, ...)
{
	va_list	 ap;
	char	*msg;

	va_start(ap, fmt);
	xvasprintf(&msg, fmt, ap);
	va_end(ap);
	log_debug("%s from %s (pid %ld): %s", req->rpc.method,
	    control_peer(req->client)->user,
	    (long)control_peer(req->client)->pid, msg);
	cmd_finish(req, rpc_error(req->rpc.id, code, kind, data, "%s", msg));
	free(msg);
}

/* Streams a progress notification to the request's client. */
void
cmd_notify(struct request *req, const char *method, json_t *params)
{
	if (req->done != NULL)
		params = fleet_notify_params(req, params);
	control_send(req->client, rpc_notification(method, params));
}

/* Parses one line, checks permission then params, and runs its handler. */
void
cmd_dispatch(struct client *c, const char *line, size_t len)
{
	const struct peer	*peer = control_peer(c);
	struct request		*req;
	json_t			*err;
	char			*cause = NULL;
	size_t			 i;

	req = xcalloc(1, sizeof *req);
	req->client = c;
	if ((err = rpc_parse(line, len, &req->rpc)) != NULL ||
	    req->rpc.method == NULL) {
		if (err == NULL)	/* an invariant: never run half a request */
			err = rpc_error(NULL, MIGD_ERR_INTERNAL, "internal",
			    NULL, "internal error parsing the request");
		/* Malformed: answered with id null, the connection stays. */
		control_send(c, err);
		cmd_finish(req, NULL);
		return;
	}
	if ((req->entry = cmd_find(req->rpc.method)) == NULL) {
		cmd_error(req, MIGD_ERR_METHOD_NOT_FOUND, "method_not_found",
		    NULL, "unknown method \"%s\"", req->rpc.method);
		return;
	}
	if (!(req->entry->flags & CMD_MUTATING) ? !peer->is_reader :
	    !peer->is_admin) {
		log_warnx("%s refused to %s (uid %ld, pid %ld)",
		    req->rpc.method, peer->user, (long)peer->uid,
		    (long)peer->pid);
		cmd_error(req, MIGD_ERR_FORBIDDEN, "forbidden", NULL,
		    "%s is not allowed for user %s", req->rpc.method,
		    peer->user);
		return;
	}
	/* "all": every database, by the fleet (fleet.c). */
	if (fleet_wants(req)) {
		log_debug("%s --all from %s (pid %ld)", req->rpc.method,
		    peer->user, (long)peer->pid);
		fleet_exec(req);
		return;
	}
	/* The database, looked up once: handlers get it in req->db. */
	req->db = cmd_database(req, &cause);
	if (cause != NULL) {
		err = json_array();
		for (i = 0; i < migd.n_dbs; i++)
			json_array_append_new(err, json_string(
			    migd.dbs[i]->name));
		cmd_error(req, MIGD_ERR_INVALID_PARAMS, "invalid_params",
		    json_pack("{s:o}", "databases", err), "%s", cause);
		free(cause);
		return;
	}
	/* Held until answered, so a reload that removes it meanwhile lets
	 * this request finish first. */
	if (req->db != NULL)
		database_hold(req->db, 0);
	json_object_del(req->rpc.params, "database");
	if (rpc_check_params(req->rpc.params, req->entry->params,
	    &cause) != 0) {
		cmd_error(req, MIGD_ERR_INVALID_PARAMS, "invalid_params", NULL,
		    "invalid params for %s: %s", req->rpc.method, cause);
		free(cause);
		return;
	}
	log_debug("%s from %s (pid %ld)", req->rpc.method, peer->user,
	    (long)peer->pid);
	req->entry->exec(req);
}
