/*
 * The fleet commands: status, verify and upgrade with "all": true.  One
 * request fans out into an ordinary request per database (a child), each
 * answered by that database's own engine, on its own queue, connection and
 * advisory lock, exactly as if a client had asked it alone; the fleet only
 * decides when each child starts and gathers the answers into one reply.
 * status answers from each database's kept state (read by its last status
 * or left by its last run, with its age) when it has no connection up,
 * rather than open one per database under the cap; "fresh" reads every
 * one.  status and verify start every child at once; upgrade starts the
 * canary alone, then the rest `parallel` at a time, and stops starting new
 * ones at the first failure unless told to continue.
 */
#include <sys/queue.h>

#include <stdlib.h>
#include <string.h>

#include "migd.h"
#include "migrate.h"

#define FLEET_PARALLEL_DEFAULT	4
#define FLEET_PARALLEL_MAX	1000

enum fleet_state { FLEET_WAITING, FLEET_RUNNING, FLEET_DONE };

struct fleet;
struct fleet_db {
	struct fleet		*f;
	struct database		*db;
	enum fleet_state	 state;
	json_t			*answer;	/* the child's reply message */
	double			 t0, t1;
};

struct fleet {
	TAILQ_ENTRY(fleet)	 entry;
	struct request		*req;		/* the parent, answered last */
	json_t			*sub;		/* each child's params */
	struct fleet_db		*dbs;		/* in the order they start */
	size_t			 n, next, running;
	size_t			 parallel;
	int			 upgrade;
	int			 canary;	/* dbs[0] is the canary */
	int			 cont;		/* continue_on_error */
	int			 cached;	/* status: kept states will do */
	int			 stop;		/* start no more */
	char			*stopped_by;	/* why (to free) */
	int			 pumping;
	double			 t0;
};

/* The rollouts in progress, daemon-wide, for cancel. */
static TAILQ_HEAD(, fleet) fleet_active = TAILQ_HEAD_INITIALIZER(fleet_active);

static const struct rpc_param fleet_status_params[] = {
	{ "all", RPC_BOOL, 1 },
	{ "fresh", RPC_BOOL, 0 },
	{ NULL, RPC_STRING, 0 }
};
static const struct rpc_param fleet_verify_params[] = {
	{ "all", RPC_BOOL, 1 },
	{ NULL, RPC_STRING, 0 }
};
static const struct rpc_param fleet_upgrade_params[] = {
	{ "all", RPC_BOOL, 1 },
	{ "parallel", RPC_INT, 0 },
	{ "canary", RPC_STRING, 0 },
	{ "continue_on_error", RPC_BOOL, 0 },
	{ "target", RPC_STRING, 0 },
	{ "dry_run", RPC_BOOL, 0 },
	{ "allow_drift", RPC_BOOL, 0 },
	{ "atomic", RPC_BOOL, 0 },
	{ "apply_skipped", RPC_BOOL, 0 },
	{ NULL, RPC_STRING, 0 }
};
static const struct rpc_param fleet_cancel_params[] = {
	{ "all", RPC_BOOL, 1 },
	{ "requester_pid", RPC_INT, 0 },
	{ NULL, RPC_STRING, 0 }
};

static void	fleet_pump(struct fleet *);

/* Whether a request is one of the fleet's: status, verify, upgrade or
 * cancel with "all": true. */
int
fleet_wants(const struct request *req)
{
	const char	*m = req->rpc.method;

	if (!json_is_true(json_object_get(req->rpc.params, "all")))
		return (0);
	return (strcmp(m, "status") == 0 || strcmp(m, "verify") == 0 ||
	    strcmp(m, "upgrade") == 0 || strcmp(m, "cancel") == 0);
}

/* A child's notification, with its database's name, to the parent's client. */
json_t *
fleet_notify_params(const struct request *child, json_t *params)
{
	if (params == NULL)
		params = json_object();
	json_object_set_new(params, "database", json_string(child->db->name));
	return (params);
}

/* What one database's answer says, as an element of the reply. */
static json_t *
fleet_element(struct fleet *f, struct fleet_db *fd)
{
	json_t	*err, *res, *el, *steps;
	size_t	 n;

	if (fd->state == FLEET_WAITING)
		return (json_pack("{s:s, s:s, s:s?}", "name", fd->db->name,
		    "result", "not_started", "reason", f->stopped_by));
	err = json_object_get(fd->answer, "error");
	res = json_object_get(fd->answer, "result");
	if (!f->upgrade) {
		/* The answer is the fleet's to keep or give away. */
		el = err != NULL ? json_pack("{s:O}", "error", err) :
		    json_incref(res);
		json_object_set_new(el, "name", json_string(fd->db->name));
		if (strcmp(f->req->rpc.method, "status") == 0)
			json_object_set(el, "last_run", fd->db->last_run ?
			    fd->db->last_run : json_null());
		return (el);
	}
	el = json_pack("{s:s, s:o}", "name", fd->db->name, "duration_ms",
	    rpc_duration((fd->t1 - fd->t0) * 1000.0));
	if (err != NULL) {
		json_object_set_new(el, "result", json_string("failed"));
		json_object_set(el, "error", err);
		return (el);
	}
	if (json_object_get(res, "runnable") != NULL) {
		/* dry_run: the plan each database would run. */
		json_object_set_new(el, "result", json_string("dry_run"));
		json_object_set(el, "plan", res);
		return (el);
	}
	steps = json_object_get(res, "steps");
	n = json_array_size(steps);
	json_object_set_new(el, "result", json_string(n > 0 ? "upgraded" :
	    "up_to_date"));
	json_object_set(el, "from", json_object_get(res, "from"));
	json_object_set(el, "to", json_object_get(res, "to"));
	json_object_set_new(el, "migrations", json_integer((json_int_t)n));
	return (el);
}

/* Answers the parent with every database's element, and forgets the fleet. */
static void
fleet_finish(struct fleet *f)
{
	json_t		*all = json_array(), *el, *res;
	const char	*r;
	size_t		 i;
	int		 counts[5] = { 0, 0, 0, 0, 0 }, ok = 1;

	for (i = 0; i < f->n; i++) {
		el = fleet_element(f, &f->dbs[i]);
		r = json_string_value(json_object_get(el, "result"));
		if (r != NULL)
			counts[strcmp(r, "upgraded") == 0 ? 0 :
			    strcmp(r, "up_to_date") == 0 ? 1 :
			    strcmp(r, "failed") == 0 ? 2 :
			    strcmp(r, "not_started") == 0 ? 3 : 4]++;
		if (json_object_get(el, "error") != NULL ||
		    json_is_false(json_object_get(el, "ok")))
			ok = 0;
		json_array_append_new(all, el);
	}
	res = json_pack("{s:o}", "databases", all);
	if (f->upgrade) {
		json_object_set_new(res, "upgraded", json_integer(counts[0]));
		json_object_set_new(res, "up_to_date", json_integer(counts[1]));
		json_object_set_new(res, "failed", json_integer(counts[2]));
		json_object_set_new(res, "not_started",
		    json_integer(counts[3]));
		json_object_set_new(res, "duration_ms",
		    rpc_duration((migd_now() - f->t0) * 1000.0));
		log_info("upgrade --all: %d upgraded, %d up to date, %d "
		    "failed, %d not started", counts[0], counts[1], counts[2],
		    counts[3]);
		TAILQ_REMOVE(&fleet_active, f, entry);
	} else if (strcmp(f->req->rpc.method, "verify") == 0)
		json_object_set_new(res, "ok", json_boolean(ok));
	cmd_reply(f->req, res);
	for (i = 0; i < f->n; i++) {
		json_decref(f->dbs[i].answer);
		database_release(f->dbs[i].db, f->upgrade);
	}
	free(f->dbs);
	json_decref(f->sub);
	free(f->stopped_by);
	free(f);
}

/* A child answered: keep its answer, maybe stop, start the next ones. */
static void
fleet_child_done(struct request *child, json_t *msg, void *arg)
{
	struct fleet_db	*fd = arg;
	struct fleet	*f = fd->f;
	json_t		*err = json_object_get(msg, "error");
	int		 canary = f->canary && fd == &f->dbs[0];

	(void)child;
	fd->answer = msg;
	fd->state = FLEET_DONE;
	fd->t1 = migd_now();
	f->running--;
	if (f->upgrade) {
		cmd_notify(f->req, "progress", json_pack("{s:s, s:s, s:O*}",
		    "event", err != NULL ? "database_failed" :
		    "database_finished", "database", fd->db->name, "error",
		    err));
		if (err != NULL && !f->stop && (canary || !f->cont)) {
			f->stop = 1;
			f->stopped_by = xprintf("%s %s failed", canary ?
			    "the canary" : "database", fd->db->name);
			log_warnx("upgrade --all: %s: starting no more "
			    "databases", f->stopped_by);
		}
	}
	if (!f->pumping)
		fleet_pump(f);
}

/* Starts one database's request, an ordinary one of its engine; a status
 * of a database with no connection up is answered from its kept state. */
static void
fleet_launch(struct fleet *f, struct fleet_db *fd)
{
	struct request	*r;
	json_t		*res;

	if (f->cached && pool_any_connection(fd->db->pool) == NULL &&
	    (res = migrate_status_cached(fd->db)) != NULL) {
		fd->t0 = fd->t1 = migd_now();
		fd->state = FLEET_DONE;
		fd->answer = json_pack("{s:o}", "result", res);
		return;
	}

	fd->state = FLEET_RUNNING;
	fd->t0 = migd_now();
	f->running++;
	if (f->upgrade)
		cmd_notify(f->req, "progress", json_pack("{s:s, s:s}", "event",
		    "database_started", "database", fd->db->name));
	r = xcalloc(1, sizeof *r);
	r->client = f->req->client;
	r->db = fd->db;
	r->entry = f->req->entry;
	r->rpc.msg = json_pack("{s:s, s:i, s:s, s:o}", "jsonrpc", "2.0",
	    "id", 0, "method", f->req->rpc.method, "params",
	    json_deep_copy(f->sub));
	r->rpc.id = json_object_get(r->rpc.msg, "id");
	r->rpc.method = json_string_value(json_object_get(r->rpc.msg,
	    "method"));
	r->rpc.params = json_object_get(r->rpc.msg, "params");
	r->done = fleet_child_done;
	r->done_arg = fd;
	r->entry->exec(r);
}

/* Starts what may start now; answers once nothing runs or will. */
static void
fleet_pump(struct fleet *f)
{
	size_t	 limit;

	f->pumping = 1;
	for (;;) {
		/* The canary runs alone; the rest `parallel` at a time. */
		limit = f->canary && f->dbs[0].state != FLEET_DONE ? 1 :
		    f->parallel;
		if (migd.draining && !f->stop && f->next < f->n) {
			f->stop = 1;	/* SIGTERM: the running ones finish */
			f->stopped_by = xstrdup("migd is shutting down");
		}
		if (f->stop || f->next >= f->n || f->running >= limit)
			break;
		fleet_launch(f, &f->dbs[f->next++]);
	}
	f->pumping = 0;
	if (f->running == 0 && (f->stop || f->next >= f->n))
		fleet_finish(f);
}

/* The answer to a cancel the fleet sent on a rollout's behalf: the run's
 * own answer says what happened. */
static void
fleet_discard(struct request *child, json_t *msg, void *arg)
{
	(void)child;
	(void)arg;
	json_decref(msg);
}

/* cancel with all: stops starting databases and cancels the running ones,
 * of every rollout (or of requester_pid's). */
static void
fleet_cancel(struct request *req)
{
	const struct peer	*peer = control_peer(req->client);
	json_t			*pid = json_object_get(req->rpc.params,
				    "requester_pid"), *names = json_array();
	struct fleet		*f, *next;
	struct request		*r;
	size_t			 i, matched = 0;

	for (f = TAILQ_FIRST(&fleet_active); f != NULL; f = next) {
		next = TAILQ_NEXT(f, entry);
		if (pid != NULL && (json_int_t)control_peer(
		    f->req->client)->pid != json_integer_value(pid))
			continue;
		matched++;
		/* A queued run's cancel answers it at once: the fleet
		 * finishes (and is freed) after the loop, not inside it. */
		f->pumping = 1;
		if (!f->stop) {
			f->stop = 1;
			f->stopped_by = xprintf("cancelled by %s (pid %ld)",
			    peer->user, (long)peer->pid);
		}
		for (i = 0; i < f->n; i++) {
			if (f->dbs[i].state != FLEET_RUNNING)
				continue;
			json_array_append_new(names, json_string(
			    f->dbs[i].db->name));
			/* An ordinary cancel of that database's run, answered
			 * to nobody: the run's own answer says the rest. */
			r = xcalloc(1, sizeof *r);
			r->client = req->client;
			r->db = f->dbs[i].db;
			r->entry = req->entry;
			r->rpc.msg = json_pack("{s:i, s:s, s:{s:I}}", "id", 0,
			    "method", "cancel", "params", "requester_pid",
			    (json_int_t)control_peer(f->req->client)->pid);
			r->rpc.id = json_object_get(r->rpc.msg, "id");
			r->rpc.method = "cancel";
			r->rpc.params = json_object_get(r->rpc.msg, "params");
			r->done = fleet_discard;
			r->entry->exec(r);
		}
		f->pumping = 0;
		fleet_pump(f);		/* may answer the rollout now */
	}
	if (matched == 0) {
		json_decref(names);
		cmd_error(req, MIGD_ERR_STATE, "not_running", NULL,
		    "%s", pid != NULL ? "that process has no rollout here" :
		    "no rollout (upgrade --all) is running");
		return;
	}
	cmd_reply(req, json_pack("{s:s, s:o}", "cancelled", "rollout",
	    "databases", names));
}

/* The index of the database a name means, or -1. */
static int
fleet_find(const char *name)
{
	size_t	 i;

	for (i = 0; i < migd.n_dbs; i++) {
		if (strcmp(migd.dbs[i]->name, name) == 0)
			return ((int)i);
	}
	return (-1);
}

/* status, verify or upgrade of every database; cancel of the rollouts. */
void
fleet_exec(struct request *req)
{
	const struct rpc_param	*params;
	struct fleet		*f;
	json_t			*p = req->rpc.params, *v;
	const char		*m = req->rpc.method, *canary;
	char			*cause = NULL, *names;
	size_t			 i, k;
	int			 c = -1;

	if (json_object_get(p, "database") != NULL) {
		cmd_error(req, MIGD_ERR_INVALID_PARAMS, "invalid_params", NULL,
		    "\"all\" and \"database\" do not go together: %s either "
		    "every database or the one named", m);
		return;
	}
	params = strcmp(m, "upgrade") == 0 ? fleet_upgrade_params :
	    strcmp(m, "cancel") == 0 ? fleet_cancel_params :
	    strcmp(m, "verify") == 0 ? fleet_verify_params :
	    fleet_status_params;
	if (rpc_check_params(p, params, &cause) != 0) {
		cmd_error(req, MIGD_ERR_INVALID_PARAMS, "invalid_params", NULL,
		    "invalid params for %s: %s", m, cause);
		free(cause);
		return;
	}
	if (strcmp(m, "cancel") == 0) {
		fleet_cancel(req);
		return;
	}
	f = xcalloc(1, sizeof *f);
	f->req = req;
	f->t0 = migd_now();
	f->upgrade = strcmp(m, "upgrade") == 0;
	f->parallel = f->upgrade ? FLEET_PARALLEL_DEFAULT : migd.n_dbs;
	if ((v = json_object_get(p, "parallel")) != NULL) {
		if (json_integer_value(v) < 1 || json_integer_value(v) >
		    FLEET_PARALLEL_MAX) {
			free(f);
			cmd_error(req, MIGD_ERR_INVALID_PARAMS,
			    "invalid_params", NULL, "parallel must be from 1 "
			    "to %d, not %lld", FLEET_PARALLEL_MAX,
			    (long long)json_integer_value(v));
			return;
		}
		f->parallel = (size_t)json_integer_value(v);
	}
	if ((canary = json_string_value(json_object_get(p, "canary"))) !=
	    NULL && (c = fleet_find(canary)) == -1) {
		free(f);
		v = json_array();
		for (i = 0; i < migd.n_dbs; i++)
			json_array_append_new(v, json_string(
			    migd.dbs[i]->name));
		names = cmd_database_names();
		cmd_error(req, MIGD_ERR_INVALID_PARAMS, "invalid_params",
		    json_pack("{s:o}", "databases", v), "no database %.64s "
		    "to be the canary: name one migd serves; databases: %s",
		    canary, names);
		free(names);
		return;
	}
	f->canary = c != -1;
	f->cont = json_is_true(json_object_get(p, "continue_on_error"));
	f->cached = strcmp(m, "status") == 0 &&
	    !json_is_true(json_object_get(p, "fresh"));
	/* What each database's own request gets. */
	f->sub = json_deep_copy(p);
	json_object_del(f->sub, "all");
	json_object_del(f->sub, "parallel");
	json_object_del(f->sub, "canary");
	json_object_del(f->sub, "continue_on_error");
	json_object_del(f->sub, "fresh");
	f->n = migd.n_dbs;
	f->dbs = xcalloc(f->n, sizeof *f->dbs);
	k = 0;
	if (c != -1)
		f->dbs[k++].db = migd.dbs[c];
	for (i = 0; i < migd.n_dbs; i++) {
		if ((int)i != c)
			f->dbs[k++].db = migd.dbs[i];
	}
	for (i = 0; i < f->n; i++) {
		f->dbs[i].f = f;
		/* A reload removes none of them before the answer, nor one
		 * a rollout counts. */
		database_hold(f->dbs[i].db, f->upgrade);
	}
	if (f->upgrade) {
		TAILQ_INSERT_TAIL(&fleet_active, f, entry);
		log_info("upgrade --all: %zu database%s, %zu at a time%s%s",
		    f->n, f->n == 1 ? "" : "s", f->parallel, c != -1 ?
		    ", canary " : "", c != -1 ? canary : "");
	}
	fleet_pump(f);
}
