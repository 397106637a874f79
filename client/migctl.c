/*
 * migctl: the client of migd.  Sends one JSON-RPC request over the control
 * socket, prints progress notifications and the reply for a person (or as
 * JSON for scripts), and exits with a code a deploy hook can branch on.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "config.h"
#include "migctl.h"
#include "migd/protocol.h"
#include "util.h"

struct migctl_opts opts;
static volatile sig_atomic_t migctl_sigint;

static json_t	*params_revision(struct migctl *, char **, int);
static json_t	*migctl_all_params(struct migctl *, const struct migctl_cmd *,
		    json_t *);
static int	 exit_fleet(const struct migctl_cmd *, json_t *);
static void	 migctl_cancel_run(struct migctl *);

/* One line from migd, waiting at most ms (-1: as long as it takes). */
static char *
migctl_readline(struct migctl *m, int ms, size_t *len, int *eof)
{
	struct pollfd	 pfd;
	char		*nl, *line;
	ssize_t		 n;

	*eof = 0;
	for (;;) {
		if (m->rlen > 0 && (nl = memchr(m->rbuf, '\n', m->rlen)) !=
		    NULL) {
			*len = (size_t)(nl - m->rbuf) + 1;
			line = xstrndup(m->rbuf, *len);
			memmove(m->rbuf, m->rbuf + *len, m->rlen - *len);
			m->rlen -= *len;
			return (line);
		}
		if (migctl_sigint > 0 && !m->cancel_sent)
			migctl_cancel_run(m);
		if (ms >= 0) {
			pfd.fd = m->fd;
			pfd.events = POLLIN;
			if ((n = poll(&pfd, 1, ms)) == 0)
				return (NULL);
			if (n == -1 && errno == EINTR)
				continue;
		}
		if (m->rcap - m->rlen < 65536) {
			m->rcap = m->rcap * 2 + 65536;
			m->rbuf = xrealloc(m->rbuf, m->rcap);
		}
		n = read(m->fd, m->rbuf + m->rlen, m->rcap - m->rlen);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			*eof = 1;
			return (NULL);
		}
		m->rlen += (size_t)n;
	}
}

/* Reads messages until the reply; notifications are shown as they come. */
static json_t *
migctl_receive(struct migctl *m, int quiet)
{
	json_error_t	 jerr;
	json_t		*msg;
	char		*line;
	size_t		 n;
	int		 eof, tick = !opts.json && isatty(STDOUT_FILENO);

	for (;;) {
		/* On a terminal, the running migration's elapsed time ticks. */
		line = migctl_readline(m, tick ? 250 : -1, &n, &eof);
		if (line == NULL && !eof) {
			out_progress_tick();
			continue;
		}
		if (line == NULL) {
			if (quiet)
				return (NULL);
			die(MIGCTL_EXIT_UNREACHABLE, "migd closed the "
			    "connection before answering");
		}
		msg = json_loadb(line, n, 0, &jerr);
		if (msg == NULL || !json_is_object(msg)) {
			free(line);
			die(MIGCTL_EXIT_FAILED, "unreadable reply from migd: "
			    "%s", msg ? "not an object" : jerr.text);
		}
		free(line);
		if (!opts.json)
			out_clean(msg);	/* before any printer sees it */
		if (json_object_get(msg, "method") != NULL &&
		    json_object_get(msg, "id") == NULL) {
			if (opts.json && opts.stream)
				out_json(msg, JSON_COMPACT);
			else if (!opts.json && json_object_get(json_object_get(
			    msg, "params"), "database") != NULL)
				out_fleet_progress(json_object_get(msg,
				    "params"));
			else if (!opts.json)
				out_progress(json_object_get(msg, "params"));
			json_decref(msg);
			continue;
		}
		if (opts.json && opts.stream)
			out_json(msg, JSON_COMPACT);
		return (msg);
	}
}

/* Whether an error is of this data.kind. */
static int
migctl_is_kind(json_t *error, const char *kind)
{
	const char	*k = json_string_value(json_object_get(json_object_get(
			    error, "data"), "kind"));

	return (k != NULL && strcmp(k, kind) == 0);
}

/* Maps an error's data.kind to the documented exit code. */
static int
migctl_exit_code(json_t *error)
{
	const char	*kind;

	kind = json_string_value(json_object_get(json_object_get(error,
	    "data"), "kind"));
	if (kind == NULL)
		return (MIGCTL_EXIT_FAILED);
	if (strcmp(kind, "forbidden") == 0)
		return (MIGCTL_EXIT_FORBIDDEN);
	if (strcmp(kind, "busy") == 0 || strcmp(kind, "lock_timeout") == 0 ||
	    strcmp(kind, "too_many_clients") == 0 || strcmp(kind,
	    "schema_changing") == 0)
		return (MIGCTL_EXIT_BUSY);
	return (MIGCTL_EXIT_FAILED);
}

json_t *
params_target(struct migctl *m, char **args, int n)
{
	json_t	*p = json_object();

	if (n > 0)
		json_object_set_new(p, "target", json_string(args[0]));
	if (m->dry_run)
		json_object_set_new(p, "dry_run", json_true());
	if (m->allow_drift)
		json_object_set_new(p, "allow_drift", json_true());
	if (m->apply_skipped)
		json_object_set_new(p, "apply_skipped", json_true());
	if (m->atomic >= 0)
		json_object_set_new(p, "atomic", json_boolean(m->atomic));
	return (p);
}

static json_t *
params_revision(struct migctl *m, char **args, int n)
{
	(void)m;
	(void)n;
	return (json_pack("{s:s}", "revision", args[0]));
}

/* adopt: --from TOOL and --table NAME, checked by migd. */
json_t *
params_adopt(struct migctl *m, char **args, int n)
{
	json_t	*p = json_object();

	(void)args;
	(void)n;
	if (m->adopt_from != NULL)
		json_object_set_new(p, "from", json_string(m->adopt_from));
	if (m->adopt_table != NULL)
		json_object_set_new(p, "table", json_string(m->adopt_table));
	return (p);
}

/* stamp's revisions: one string, as ever, or a list. */
json_t *
params_stamp(struct migctl *m, char **args, int n)
{
	json_t	*p, *list;
	int	 i;

	if (n == 1)
		p = params_revision(m, args, n);
	else {
		list = json_array();
		for (i = 0; i < n; i++)
			json_array_append_new(list, json_string(args[i]));
		p = json_pack("{s:o}", "revision", list);
	}
	if (m->purge)
		json_object_set_new(p, "purge", json_true());
	return (p);
}

json_t *
params_resolve(struct migctl *m, char **args, int n)
{
	(void)m;
	(void)n;
	if (strcmp(args[1], "applied") != 0 && strcmp(args[1],
	    "unapplied") != 0)
		usage_error(usage_distance(args[1], "applied") <= 2 ?
		    xstrdup("'applied'") : usage_distance(args[1],
		    "unapplied") <= 2 ? xstrdup("'unapplied'") : NULL,
		    "resolve says what is true: applied or unapplied, not "
		    "'%s'", args[1]);
	return (json_pack("{s:s, s:s}", "revision", args[0], "state",
	    args[1]));
}

json_t *
params_accept(struct migctl *m, char **args, int n)
{
	json_t	*a = json_array();
	int	 i;

	(void)m;
	for (i = 0; i < n; i++)
		json_array_append_new(a, json_string(args[i]));
	return (json_pack("{s:o}", "revisions", a));
}

json_t *
params_history(struct migctl *m, char **args, int n)
{
	json_t	*p = json_object();

	if (n > 0)
		json_object_set_new(p, "revision", json_string(args[0]));
	if (m->limit > 0)
		json_object_set_new(p, "limit", json_integer(m->limit));
	return (p);
}

/* Seconds for --timeout and --wait-daemon: 0 to 86400. */
static double
migctl_seconds(const char *opt, const char *v)
{
	char	*end;
	double	 d;

	d = strtod(v, &end);
	if (*v == '\0' || *end != '\0' || d < 0 || d > 86400)
		die(MIGCTL_EXIT_USAGE, "%s takes seconds from 0 to 86400, not "
		    "'%s'", opt, v);
	return (d);
}

/* verify exits 4 when it found something. */
int
exit_verify(json_t *res)
{
	return (json_is_true(json_object_get(res, "ok")) ? MIGCTL_EXIT_OK :
	    MIGCTL_EXIT_CHECK);
}

/* plan and --dry-run exit 4 when the plan cannot run ("cannot run:"), as
 * the commands that only look do when they find something. */
int
exit_plan(json_t *res)
{
	json_t	*runnable = json_object_get(res, "runnable");

	return (runnable != NULL && !json_is_true(runnable) ?
	    MIGCTL_EXIT_CHECK : MIGCTL_EXIT_OK);
}

/* check exits 0 only when the database is at head with nothing wrong. */
int
exit_check(json_t *res)
{
	const char	*state = json_string_value(json_object_get(res,
			    "state"));

	/* Not while a run is going: the database is not settled yet; nor
	 * while migd loads changed files: the answer is of the old ones. */
	return (state != NULL && strcmp(state, "up_to_date") == 0 &&
	    !json_is_true(json_object_get(res, "running")) &&
	    !json_is_true(json_object_get(json_object_get(res, "migrations"),
	    "loading")) ? MIGCTL_EXIT_OK : MIGCTL_EXIT_CHECK);
}

/* Whether a status answer meets what wait waits for. */
static int
migctl_wait_met(struct migctl *m, json_t *res)
{
	json_t		*db = json_object_get(res, "database");
	const char	*state = json_string_value(json_object_get(res,
			    "state"));

	if (strcmp(m->wait_for, "ready") == 0)
		return (json_is_true(json_object_get(db, "connected")));
	return (state != NULL && strcmp(state, "up_to_date") == 0 &&
	    !json_is_true(json_object_get(res, "running")) &&
	    !json_is_true(json_object_get(json_object_get(res, "migrations"),
	    "loading")));
}

/* wait: polls status until the condition holds or the time is up. */
int
migctl_wait(struct migctl *m)
{
	double	 deadline = conn_now() + m->timeout;
	json_t	*reply, *last = NULL;
	int	 answered = 0, met = 0, code, why = 0;

	for (;;) {
		if (conn_try(m) != 0)
			why = errno;
		else {
			conn_send(m, "status", NULL);
			reply = migctl_receive(m, 1);
			conn_close(m);
			if (reply != NULL && json_object_get(reply, "error") !=
			    NULL && !migctl_is_kind(json_object_get(reply,
			    "error"), "too_many_clients")) {
				/* Refused (forbidden): say so, and stop. */
				code = migctl_exit_code(json_object_get(reply,
				    "error"));
				out_print_error(json_object_get(reply,
				    "error"));
				json_decref(reply);
				json_decref(last);
				return (code);
			}
			if (reply != NULL && json_is_object(json_object_get(reply,
			    "result"))) {
				answered = 1;
				json_decref(last);
				last = json_incref(json_object_get(reply,
				    "result"));
				met = migctl_wait_met(m, last);
			}
			json_decref(reply);
			if (met)
				break;
		}
		if (conn_now() >= deadline)
			break;
		usleep(250000);
	}
	if (opts.json && last != NULL)
		out_json(last, JSON_INDENT(2) | JSON_SORT_KEYS);
	if (met) {
		if (!opts.json)
			printf("%s\n", strcmp(m->wait_for, "ready") == 0 ?
			    "ready: migd answers and is connected" :
			    "at head: the database is up to date");
		json_decref(last);
		return (MIGCTL_EXIT_OK);
	}
	if (!answered)
		die(MIGCTL_EXIT_UNREACHABLE, "migd did not answer at %s within "
		    "%g s%s%s (is migd running? -s or $%s selects the socket; "
		    "without a daemon, migctl --local -c CONFIG runs one for "
		    "the command)",
		    m->socket, m->timeout, why ? ": " : "", why ? strerror(why) :
		    "", MIGD_SOCKET_ENV);
	/* With --json, the last status says it. */
	if (!opts.json)
		fprintf(stderr, "migctl: timed out after %g s: state %s%s\n",
		    m->timeout, out_str(last, "state"), json_is_true(
		    json_object_get(json_object_get(last, "database"),
		    "connected")) ? "" : ", not connected to PostgreSQL");
	json_decref(last);
	return (MIGCTL_EXIT_CHECK);
}

/* Where migctl-author is: $MIGCTL_AUTHOR, beside migctl, or installed. */
static char *
migctl_author_path(void)
{
	const char	*env = getenv("MIGCTL_AUTHOR");
	char		 self[PATH_MAX], *slash, *path;
	ssize_t		 n;

	if (env != NULL && *env != '\0')
		return (xstrdup(env));
	if ((n = readlink("/proc/self/exe", self, sizeof self - 1)) > 0) {
		self[n] = '\0';
		if ((slash = strrchr(self, '/')) != NULL) {
			*slash = '\0';
			path = xprintf("%s/migctl-author", self);
			if (access(path, X_OK) == 0)
				return (path);
			free(path);
		}
	}
	return (xstrdup(LIBEXECDIR "/migctl-author"));
}

/* The start of a migctl-author command line: the program, its words, and
 * the options every one of them takes (--json, -d DIR, -c CONFIG, --db). */
int
migctl_author_args(struct migctl *m, char **argv, const char *w1,
    const char *w2, const char *dir)
{
	int	 n = 0;

	argv[n++] = migctl_author_path();
	argv[n++] = (char *)w1;
	if (w2 != NULL)
		argv[n++] = (char *)w2;
	if (opts.json)
		argv[n++] = "--json";
	if (dir != NULL) {
		argv[n++] = "-d";
		argv[n++] = (char *)dir;
	}
	if (m->author.config != NULL) {
		argv[n++] = "-c";
		argv[n++] = (char *)m->author.config;
	}
	if (m->db != NULL) {
		argv[n++] = "--db";
		argv[n++] = (char *)m->db;
	}
	return (n);
}

/* Becomes migctl-author with argv[0..n). */
void
migctl_author_exec(char **argv, int n)
{
	argv[n] = NULL;
	execv(argv[0], argv);
	die(MIGCTL_EXIT_FAILED, "cannot run %s: %s", argv[0], strerror(errno));
}

/* new and merge need the daemon's parser: they run in migctl-author. */
static int
migctl_author(struct migctl *m, const char *what)
{
	char	*argv[16];
	int	 n;

	if (m->author.message == NULL || *m->author.message == '\0')
		die(MIGCTL_EXIT_USAGE, "a message is required (-m MESSAGE)");
	n = migctl_author_args(m, argv, what, NULL, m->author.directory);
	argv[n++] = "-m";
	argv[n++] = (char *)m->author.message;
	if (m->author.head != NULL) {
		argv[n++] = "--head";
		argv[n++] = (char *)m->author.head;
	}
	migctl_author_exec(argv, n);
}

int
migctl_new(struct migctl *m)
{
	return (migctl_author(m, "new"));
}

int
migctl_merge(struct migctl *m)
{
	return (migctl_author(m, "merge"));
}

/* import alembic: migctl-author picks the directory as for new, then runs
 * the Python helper, which needs Alembic. */
int
migctl_import(struct migctl *m)
{
	char	*argv[16];
	int	 n;

	if (strcmp(m->args[0], "alembic") != 0)
		usage_error(usage_distance(m->args[0], "alembic") <= 2 ?
		    xstrdup("'alembic'") : NULL, "import knows 'alembic' "
		    "projects only, not '%s'", m->args[0]);
	if (m->out != NULL && m->author.config != NULL)
		die(MIGCTL_EXIT_USAGE, "give --out DIR or -c CONFIG, not both");
	n = migctl_author_args(m, argv, "import", NULL, m->out);
	if (m->allow_partial)
		argv[n++] = "--allow-partial";
	argv[n++] = "-r";
	argv[n++] = m->args[1];
	migctl_author_exec(argv, n);
}

/* upgrade/downgrade --sql [FROM:]TO, and revisions -d|-c, read the files
 * with the daemon's parser and planner: migctl-author answers them. */
static int
migctl_offline(struct migctl *m, const struct migctl_cmd *cmd,
    const char *arg)
{
	char	*argv[16];
	int	 n;

	n = migctl_author_args(m, argv, m->sql ? "sql" : "revisions", m->sql ?
	    cmd->name : NULL, m->author.directory);
	if (arg != NULL) {
		argv[n++] = "-r";
		argv[n++] = (char *)arg;
	}
	if (m->sql && m->atomic >= 0)
		argv[n++] = m->atomic ? "--atomic" : "--no-atomic";
	migctl_author_exec(argv, n);
}

/* Ctrl-C during a run: the first asks migd to cancel it, the second leaves
 * at once (the run then goes on). */
static void
migctl_on_sigint(int sig)
{
	(void)sig;
	if (migctl_sigint++ > 0) {
		local_abort();		/* --local: no migd, no files left */
		_exit(130);
	}
}

/* Asks migd, on a connection of its own, to cancel this process's run. */
static void
migctl_cancel_run(struct migctl *m)
{
	struct migctl	 c;
	json_t		*reply, *err, *params;

	m->cancel_sent = 1;
	if (!opts.json)
		fprintf(stderr, "\nmigctl: cancelling the run (Ctrl-C again to "
		    "stop waiting)\n");
	memset(&c, 0, sizeof c);
	c.fd = -1;
	c.socket = m->socket;
	c.db = m->db;
	c.cancel_sent = 1;	/* this connection does not cancel again */
	if (conn_try(&c) != 0) {
		if (!opts.json)
			fprintf(stderr, "migctl: cannot reach migd to cancel: "
			    "%s\n", strerror(errno));
		return;
	}
	params = json_pack("{s:I}", "requester_pid", (json_int_t)getpid());
	if (m->all)	/* the whole rollout */
		json_object_set_new(params, "all", json_true());
	conn_send(&c, "cancel", params);
	if ((reply = migctl_receive(&c, 1)) != NULL && !opts.json &&
	    (err = json_object_get(reply, "error")) != NULL)
		fprintf(stderr, "migctl: cancel: %s\n", json_string_value(
		    json_object_get(err, "message")));
	json_decref(reply);
	conn_close(&c);
}

/* --all's params: every database; upgrade's rollout settings; a status
 * read now (check's gate never trusts a kept state). */
static json_t *
migctl_all_params(struct migctl *m, const struct migctl_cmd *cmd, json_t *p)
{
	if (p == NULL)
		p = json_object();
	json_object_set_new(p, "all", json_true());
	if (m->fresh || strcmp(cmd->name, "check") == 0)
		json_object_set_new(p, "fresh", json_true());
	if (m->parallel > 0)
		json_object_set_new(p, "parallel", json_integer(m->parallel));
	if (m->canary != NULL)
		json_object_set_new(p, "canary", json_string(m->canary));
	if (m->cont)
		json_object_set_new(p, "continue_on_error", json_true());
	return (p);
}

/* --all's exit: upgrade 1 if any database failed (4: a dry run that cannot
 * run somewhere); check and verify 4 if any database is not right. */
static int
exit_fleet(const struct migctl_cmd *cmd, json_t *res)
{
	json_t	*dbs = json_object_get(res, "databases"), *el;
	size_t	 i;
	int	 code = MIGCTL_EXIT_OK, c;

	json_array_foreach(dbs, i, el) {
		if (json_object_get(el, "error") != NULL) {
			c = cmd->exit_code == exit_verify || cmd->exit_code ==
			    exit_check ? MIGCTL_EXIT_CHECK : MIGCTL_EXIT_FAILED;
		} else if (cmd->exit_code == exit_plan)
			c = exit_plan(json_object_get(el, "plan"));
		else if (cmd->exit_code != NULL && cmd->exit_code != exit_plan)
			c = cmd->exit_code(el);
		else
			c = MIGCTL_EXIT_OK;
		if (c == MIGCTL_EXIT_FAILED || code == MIGCTL_EXIT_OK)
			code = c;
	}
	return (code);
}

/*
 * An unknown method or parameter is what a migd of another version says to
 * this migctl: ask it its version on the same connection and, when it is
 * not ours, say so in the error (data.daemon_version too), with the fix.
 */
static void
migctl_version_hint(struct migctl *m, json_t *err)
{
	json_t		*reply, *res, *data = json_object_get(err, "data");
	const char	*msg = json_string_value(json_object_get(err,
			    "message")), *ver, *db;
	char		*text;

	if (msg == NULL || !json_is_object(data) || !(migctl_is_kind(err,
	    "method_not_found") || (migctl_is_kind(err, "invalid_params") &&
	    strstr(msg, "unknown parameter") != NULL)))
		return;
	db = m->db;
	m->db = NULL;		/* version needs none, and an old migd may
				   not know the param */
	conn_send(m, "version", NULL);
	m->db = db;
	if ((reply = migctl_receive(m, 1)) == NULL)
		return;
	res = json_object_get(reply, "result");
	ver = json_string_value(json_object_get(res, "version"));
	if (ver != NULL && strcmp(ver, PACKAGE_VERSION) != 0) {
		text = xprintf("%s: migd at %s is version %s (protocol "
		    "%lld) and this migctl is %s (protocol %d), which asks "
		    "for what that migd does not know; use the migctl of "
		    "migd's version, or upgrade migd", msg, m->socket, ver,
		    (long long)json_integer_value(json_object_get(res,
		    "protocol")), PACKAGE_VERSION, MIGD_PROTOCOL_VERSION);
		json_object_set_new(err, "message", json_string(text));
		json_object_set_new(data, "daemon_version", json_string(ver));
		free(text);
	}
	json_decref(reply);
}

/* Runs one command; returns the exit code. */
int
migctl_run(struct migctl *m, const struct migctl_cmd *cmd, char **args,
    int nargs)
{
	struct sigaction	 sa;
	json_t	*reply, *err, *res, *params;
	int	 code = MIGCTL_EXIT_OK, streamed = opts.json && opts.stream;

	if (cmd->local != NULL)
		return (cmd->local(m));
	/* Arguments are checked before any connection is made. */
	params = cmd->params ? cmd->params(m, args, nargs) : NULL;
	if (m->all)
		params = migctl_all_params(m, cmd, params);
	if (cmd->params == params_target && strcmp(cmd->method, "plan") != 0 &&
	    !m->dry_run) {
		/* A run this process started is cancelled by its Ctrl-C. */
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = migctl_on_sigint;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGINT, &sa, NULL);
	}
	conn_open(m);
	conn_send(m, cmd->method, params);
	reply = migctl_receive(m, 0);
	if ((err = json_object_get(reply, "error")) != NULL) {
		code = migctl_exit_code(err);
		if (!streamed) {
			migctl_version_hint(m, err);
			out_print_error(err);
		}
		if (!opts.json && cmd->too_large != NULL &&
		    migctl_is_kind(err, "request_too_large"))
			out_warnx("%s", cmd->too_large);
	} else {
		res = json_object_get(reply, "result");
		if (opts.json && !streamed)
			out_json(res, JSON_INDENT(2) | JSON_SORT_KEYS);
		else if (!opts.json && m->all)
			out_fleet(cmd->name, res);
		else if (!opts.json)
			cmd->print(res);
		if (m->all)
			code = exit_fleet(cmd, res);
		else if (cmd->exit_code != NULL)
			code = cmd->exit_code(res);
	}
	json_decref(reply);
	conn_close(m);
	return (code);
}

/* Whether an argument is an option: "-1" and "+2" are targets, "-" is a
 * word. */
static int
migctl_is_option(const char *a)
{
	return (a[0] == '-' && a[1] != '\0' && strspn(a + 1, "0123456789") !=
	    strlen(a + 1));
}

/* The option an argument names ("-d", "--dir", "--dir=x": then *val is
 * "x"), or NULL; name gets it as typed, without the value. */
static const struct migctl_opt *
migctl_opt_find(const char *a, const char **val, char *name, size_t size)
{
	const struct migctl_opt	*o;
	const char		*eq;
	size_t			 i, len;

	*val = NULL;
	if (a[1] == '-') {
		len = (eq = strchr(a, '=')) != NULL ? (size_t)(eq - a) :
		    strlen(a);
		snprintf(name, size, "%.*s", (int)len, a);
		for (i = 0; i < migctl_noptions; i++) {
			o = &migctl_options[i];
			if (strcmp(name + 2, o->lname) == 0 || (o->alias !=
			    NULL && strcmp(name + 2, o->alias) == 0)) {
				if (eq != NULL)
					*val = eq + 1;
				return (o);
			}
		}
		return (NULL);
	}
	snprintf(name, size, "%s", a);
	for (i = 0; a[2] == '\0' && i < migctl_noptions; i++) {
		if (migctl_options[i].sname == a[1])
			return (&migctl_options[i]);
	}
	return (NULL);
}

/*
 * Before parsing: the command (the first word that is neither an option
 * nor an option's value), whether --json, --help or --version is asked for.
 * A usage error is then said in the command's terms, and as JSON when the
 * reader wants JSON, wherever the options stand.
 */
static const char *
migctl_prescan(int argc, char **argv, int *help, int *version,
    const char **unknown)
{
	const struct migctl_opt	*o;
	const char		*word = NULL, *val;
	char			 name[64];
	int			 i;

	*unknown = NULL;	/* an unknown option before the command */
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			if (word == NULL && i + 1 < argc)
				word = argv[i + 1];
			break;
		}
		if (!migctl_is_option(argv[i])) {
			if (word == NULL)
				word = argv[i];
			continue;
		}
		if ((o = migctl_opt_find(argv[i], &val, name,
		    sizeof name)) == NULL) {
			if (word == NULL && *unknown == NULL)
				*unknown = argv[i];
			continue;
		}
		if (o->id == OPT_JSON)
			opts.json = 1;
		else if (o->id == OPT_HELP)
			*help = 1;
		else if (o->id == OPT_VERSION)
			*version = 1;
		if (o->meta != NULL && val == NULL)
			i++;
	}
	return (word);
}

/* Sets what an option says. */
static void
migctl_set(struct migctl *m, const struct migctl_opt *o, const char *name,
    const char *val)
{
	char	*end;

	switch (o->id) {
	case OPT_SOCKET:
		m->socket = val;
		break;
	case OPT_DB:
		if (*val == '\0')
			die(MIGCTL_EXIT_USAGE, "--db needs a database name");
		m->db = val;
		break;
	case OPT_JSON:
		opts.json = 1;
		break;
	case OPT_STREAM:
		opts.stream = 1;
		break;
	case OPT_DRY_RUN:
		m->dry_run = 1;
		break;
	case OPT_SQL:
		m->sql = 1;
		break;
	case OPT_ATOMIC:
	case OPT_NO_ATOMIC:
		m->atomic = o->id == OPT_ATOMIC;
		break;
	case OPT_DRIFT:
		m->allow_drift = 1;
		break;
	case OPT_SKIPPED:
		m->apply_skipped = 1;
		break;
	case OPT_WAIT_DAEMON:
		m->wait_daemon = migctl_seconds(name, val);
		break;
	case OPT_TIMEOUT:
		m->timeout = migctl_seconds(name, val);
		break;
	case OPT_LIMIT:
		m->limit = strtol(val, &end, 10);
		if (*val == '\0' || *end != '\0' || m->limit < 1 ||
		    m->limit > 100000)
			die(MIGCTL_EXIT_USAGE, "%s takes a number from 1 to "
			    "100000, not '%s'", name, val);
		break;
	case OPT_FOR:
		if (strcmp(val, "head") != 0 && strcmp(val, "ready") != 0)
			usage_error(strncmp(val, "head", 4) == 0 ?
			    xstrdup("'head'") : strncmp(val, "read", 4) == 0 ?
			    xstrdup("'ready'") : NULL, "%s takes head or "
			    "ready, not '%s'", name, val);
		m->wait_for = val;
		break;
	case OPT_MESSAGE:
		m->author.message = val;
		break;
	case OPT_DIR:
		m->author.directory = val;
		break;
	case OPT_CONFIG:
		m->author.config = val;
		break;
	case OPT_HEAD:
		m->author.head = val;
		break;
	case OPT_OUT:
		m->out = val;
		break;
	case OPT_PARTIAL:
		m->allow_partial = 1;
		break;
	case OPT_PURGE:
		m->purge = 1;
		break;
	case OPT_FROM:
		m->adopt_from = val;
		break;
	case OPT_TABLE:
		m->adopt_table = val;
		break;
	case OPT_FORMAT:
		m->lint_format = val;
		break;
	case OPT_ALL:
		m->all = 1;
		break;
	case OPT_PARALLEL:
		m->parallel = strtol(val, &end, 10);
		if (*val == '\0' || *end != '\0' || m->parallel < 1 ||
		    m->parallel > 1000)
			die(MIGCTL_EXIT_USAGE, "%s takes a number of databases "
			    "from 1 to 1000, not '%s'", name, val);
		break;
	case OPT_CANARY:
		if (*val == '\0')
			die(MIGCTL_EXIT_USAGE, "%s needs a database name",
			    name);
		m->canary = val;
		break;
	case OPT_FRESH:
		m->fresh = 1;
		break;
	case OPT_CONTINUE:
		m->cont = 1;
		break;
	case OPT_LOCAL:
	case OPT_VERBOSE:
	case OPT_HELP:
	case OPT_VERSION:
		break;		/* main's, or the prescan's */
	}
}

/* The lowest ARG_* bit of a set. */
static int
migctl_bit(int set)
{
	int	 bit;

	for (bit = 0; bit < ARG_NBITS; bit++) {
		if (set & (1 << bit))
			return (bit);
	}
	return (0);
}

int
main(int argc, char **argv)
{
	struct migctl			 m;
	const struct migctl_cmd		*cmd = NULL;
	const struct migctl_opt		*o;
	const char			*env, *word, *val, *unknown;
	char				**args, name[64], *given[ARG_NBITS];
	int				 i, nargs = 0, used = 0, bit;
	int				 local = 0, verbose = 0, socket_given = 0;
	int				 help = 0, version = 0;

	memset(&m, 0, sizeof m);
	memset(given, 0, sizeof given);
	m.fd = -1;
	signal(SIGPIPE, SIG_IGN);
	m.timeout = 60;
	m.wait_for = "head";
	m.atomic = -1;
	if ((m.socket = getenv(MIGD_SOCKET_ENV)) == NULL || *m.socket == '\0')
		m.socket = MIGD_DEFAULT_SOCKET;
	else
		m.socket_given = 1;	/* lint asks migd */
	args = xcalloc((size_t)argc + 1, sizeof *args);

	word = migctl_prescan(argc, argv, &help, &version, &unknown);
	if (version) {
		printf("migctl %s (protocol %d)\n", PACKAGE_VERSION,
		    MIGD_PROTOCOL_VERSION);
		exit(MIGCTL_EXIT_OK);
	}
	if (word != NULL && (cmd = usage_lookup(word)) == NULL) {
		/* "--sokcet /x status": the word may be the option's value. */
		if (unknown != NULL) {
			migctl_opt_find(unknown, &val, name, sizeof name);
			usage_error(usage_suggest_opt(name), "unknown "
			    "option %s", name);
		}
		usage_error(usage_suggest_cmd(word), "unknown command "
		    "'%s'", word);
	}
	if (help) {
		if (cmd != NULL)
			usage_help(cmd);
		else
			usage_overview();
		exit(MIGCTL_EXIT_OK);
	}
	usage_cur = cmd;

	/* Options may stand anywhere; "-1" and "+2" are arguments. */
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			while (++i < argc)
				args[nargs++] = argv[i];
			break;
		}
		if (!migctl_is_option(argv[i])) {
			args[nargs++] = argv[i];
			continue;
		}
		if ((o = migctl_opt_find(argv[i], &val, name,
		    sizeof name)) == NULL)
			usage_error(usage_suggest_opt(name), "unknown "
			    "option %s", name);
		if (o->meta == NULL && val != NULL)
			die(MIGCTL_EXIT_USAGE, "%s takes no value", name);
		if (o->meta != NULL && val == NULL) {
			if (++i == argc)
				die(MIGCTL_EXIT_USAGE, "%s needs a value: %s %s",
				    name, name, o->meta);
			val = argv[i];
		}
		migctl_set(&m, o, name, val);
		if (o->id == OPT_LOCAL)
			local = 1;
		else if (o->id == OPT_VERBOSE)
			verbose = 1;
		else if (o->id == OPT_SOCKET)
			socket_given = m.socket_given = 2;
		if (o->flag != 0) {
			bit = migctl_bit(o->flag);
			if (given[bit] == NULL)
				given[bit] = xstrdup(name);
			used |= o->flag;
		}
	}
	if (nargs == 0)
		die(MIGCTL_EXIT_USAGE, "no command given");
	m.args = args + 1;
	m.nargs = nargs - 1;
	if (m.nargs < cmd->min_args)
		die(MIGCTL_EXIT_USAGE, "%s needs %s%d argument%s", cmd->name,
		    cmd->min_args == cmd->max_args ? "" : "at least ",
		    cmd->min_args, cmd->min_args == 1 ? "" : "s");
	if (m.nargs > cmd->max_args && cmd->max_args == 0)
		die(MIGCTL_EXIT_USAGE, "%s takes no arguments, not '%s'",
		    cmd->name, m.args[0]);
	if (m.nargs > cmd->max_args)
		die(MIGCTL_EXIT_USAGE, "%s takes at most %d argument%s: '%s' "
		    "is one too many", cmd->name, cmd->max_args,
		    cmd->max_args == 1 ? "" : "s", m.args[cmd->max_args]);
	/* -c: the private migd's configuration with --local, else new's. */
	if (local && cmd->method != NULL) {
		if ((used & ARG_CONFIG) == 0)
			die(MIGCTL_EXIT_USAGE, "--local needs the configuration "
			    "of the migd it starts: -c CONFIG");
		if (socket_given)
			die(MIGCTL_EXIT_USAGE, "--local starts a migd of its "
			    "own: -s does not go with it");
		used &= ~ARG_CONFIG;
	}
	if (verbose && !local)
		die(MIGCTL_EXIT_USAGE, "-v shows the log of --local's migd: "
		    "it goes with --local");
	if ((used & ~cmd->flags) != 0) {
		bit = migctl_bit(used & ~cmd->flags);
		usage_error((1 << bit) == ARG_CONFIG ?
		    xstrdup("'--local -c CONFIG' (a private migd)") : NULL,
		    "%s takes no %s", cmd->name, given[bit]);
	}
	/* --all: every database, so no --db; the rollout's options need it. */
	if ((used & ARG_FRESH) && !m.all)
		die(MIGCTL_EXIT_USAGE, "--fresh goes with --all (a status of "
		    "one database reads it now anyway)");
	if ((used & ARG_ROLLOUT) && !m.all)
		die(MIGCTL_EXIT_USAGE, "%s goes with --all (a rollout to every "
		    "database)", given[migctl_bit(ARG_ROLLOUT)]);
	if (m.all && m.db != NULL)
		die(MIGCTL_EXIT_USAGE, "--all and --db do not go together: "
		    "every database, or the one named");
	if (m.all && (m.sql || (used & ARG_FILES)))
		die(MIGCTL_EXIT_USAGE, "--all asks migd about every database: %s "
		    "does not go with it", m.sql ? "--sql" :
		    given[migctl_bit(used & ARG_FILES)]);
	/* --sql, and revisions with -d or -c, read the files: no daemon. */
	if (m.sql || ((used & ARG_FILES) && cmd->local == NULL)) {
		if (local)
			die(MIGCTL_EXIT_USAGE, "%s reads the files itself: "
			    "--local does not go with it", m.sql ? "--sql" :
			    cmd->name);
		if (!m.sql && (cmd->flags & ARG_SQL))
			die(MIGCTL_EXIT_USAGE, "%s goes with --sql", given[
			    migctl_bit(used & ARG_FILES)]);
		if (m.sql && opts.json)
			die(MIGCTL_EXIT_USAGE, "--sql prints SQL: --json does "
			    "not go with it");
		if ((used & ~(ARG_SQL | ARG_FILES | ARG_ATOMIC)) != 0)
			die(MIGCTL_EXIT_USAGE, "--sql takes -d, -c and "
			    "--[no-]atomic only, not %s", given[migctl_bit(
			    used & ~(ARG_SQL | ARG_FILES | ARG_ATOMIC))]);
		return (migctl_offline(&m, cmd, m.nargs > 0 ? m.args[0] :
		    NULL));
	}
	/* Colour for people on a terminal, never with NO_COLOR. */
	env = getenv("NO_COLOR");
	opts.color = !opts.json && isatty(STDOUT_FILENO) && (env == NULL ||
	    *env == '\0') && (env = getenv("TERM")) != NULL &&
	    strcmp(env, "dumb") != 0;
	opts.color_err = (opts.color || opts.json) && isatty(STDERR_FILENO) &&
	    ((env = getenv("NO_COLOR")) == NULL || *env == '\0') &&
	    (env = getenv("TERM")) != NULL && strcmp(env, "dumb") != 0;
	/* Stopped at exit, however migctl exits; wait polls, so no grace. */
	if (local && cmd->method != NULL)
		m.socket = local_start(m.author.config, verbose,
		    cmd->local == NULL);
	i = migctl_run(&m, cmd, m.args, m.nargs);
	free(args);
	for (bit = 0; bit < ARG_NBITS; bit++)
		free(given[bit]);
	return (i);
}
