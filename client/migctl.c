/*
 * migctl: the client of migd.  Sends one JSON-RPC request over the control
 * socket, prints progress notifications and the reply for a person (or as
 * JSON for scripts), and exits with a code a deploy hook can branch on.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "config.h"
#include "migctl.h"
#include "migd/protocol.h"
#include "util.h"

struct migctl {
	const char		*socket;
	int			 fd;
	char			*rbuf;		/* bytes read, not yet a line */
	size_t			 rlen, rcap;
	int			 dry_run;
	int			 sql;		/* upgrade/downgrade --sql */
	int			 allow_drift;
	int			 atomic;	/* 1, 0, or -1: as configured */
	int			 cancel_sent;	/* Ctrl-C asked migd to cancel */
	long			 limit;
	double			 wait_daemon;	/* seconds to retry connecting */
	double			 timeout;	/* wait --timeout */
	const char		*wait_for;	/* wait --for */
	struct author_opts	 author;
};

#define ARG_DRY_RUN	0x01
#define ARG_DRIFT	0x02
#define ARG_LIMIT	0x04
#define ARG_WAIT_DAEMON	0x08
#define ARG_WAIT	0x10	/* --for, --timeout */
#define ARG_AUTHOR	0x20	/* -m, -d, -c */
#define ARG_CONFIG	0x4000	/* -c: ARG_AUTHOR, or --local's configuration */
#define ARG_HEAD	0x40	/* --head */
#define ARG_ATOMIC	0x80	/* --atomic, --no-atomic */
#define ARG_SQL		0x100	/* --sql: print a run's SQL, no daemon */

struct migctl_cmd {
	const char	*name;
	const char	*method;
	const char	*usage;
	const char	*help;
	int		 min_args, max_args;
	int		 flags;		/* ARG_*: the options it takes */
	json_t		*(*params)(struct migctl *, char **, int);
	void		(*print)(json_t *);
	int		(*exit_code)(json_t *);
	int		(*local)(struct migctl *);	/* runs itself */
};

struct migctl_opts opts;
static volatile sig_atomic_t migctl_sigint;

static json_t	*params_target(struct migctl *, char **, int);
static json_t	*params_revision(struct migctl *, char **, int);
static json_t	*params_resolve(struct migctl *, char **, int);
static json_t	*params_history(struct migctl *, char **, int);
static int	 exit_verify(json_t *);
static int	 exit_check(json_t *);
static int	 migctl_wait(struct migctl *);
static int	 migctl_new(struct migctl *);
static int	 migctl_merge(struct migctl *);
static void	 migctl_cancel_run(struct migctl *);

/* Every command migctl knows: the one place a new one is added. */
static const struct migctl_cmd migctl_cmds[] = {
	{ "status", "status", "status", "daemon, database and migration "
	    "state", 0, 0, 0, NULL, out_status, NULL, NULL },
	{ "current", "current", "current", "the revisions the database is "
	    "at", 0, 0, 0, NULL, out_current, NULL, NULL },
	{ "heads", "heads", "heads", "the newest revisions of the files", 0, 0,
	    0, NULL, out_heads, NULL, NULL },
	{ "history", "history", "history [REV] [--limit N]", "what ran, when, "
	    "for whom", 0, 1, ARG_LIMIT, params_history, out_history, NULL,
	    NULL },
	{ "plan", "plan", "plan [TARGET] [--atomic]", "what an upgrade or "
	    "downgrade would run", 0, 1, ARG_DRIFT | ARG_ATOMIC, params_target,
	    out_plan, NULL, NULL },
	{ "upgrade", "upgrade", "upgrade [TARGET] [--dry-run] [--atomic] "
	    "[--wait-daemon S]\n  upgrade --sql [FROM:]TO [-d DIR|-c CONF]",
	    "apply migrations up to TARGET (default head); --sql: print the "
	    "SQL instead (no daemon)", 0, 1, ARG_DRY_RUN | ARG_DRIFT |
	    ARG_WAIT_DAEMON | ARG_ATOMIC | ARG_SQL | ARG_AUTHOR, params_target,
	    out_run, NULL, NULL },
	{ "downgrade", "downgrade", "downgrade TARGET [--dry-run] [--atomic]"
	    "\n  downgrade --sql FROM:TO [-d DIR|-c CONF]",
	    "revert migrations down to TARGET (-1, base, a revision); --sql: "
	    "print the SQL instead (no daemon)", 1, 1, ARG_DRY_RUN | ARG_DRIFT |
	    ARG_ATOMIC | ARG_SQL | ARG_AUTHOR, params_target, out_run,
	    NULL, NULL },
	{ "cancel", "cancel", "cancel", "stop the running migration run: its "
	    "statement is cancelled and its migration rolls back", 0, 0, 0,
	    NULL, out_cancel, NULL, NULL },
	{ "stamp", "stamp", "stamp REV", "set the version table to REV "
	    "without running anything", 1, 1, 0, params_revision, out_rows,
	    NULL, NULL },
	{ "resolve", "resolve", "resolve REV applied|unapplied", "clear a "
	    "dirty revision, saying what is true", 2, 2, 0, params_resolve,
	    out_rows, NULL, NULL },
	{ "schemas", "schemas", "schemas", "schemas, where they come from, "
	    "what the next run creates", 0, 0, 0, NULL, out_schemas, NULL,
	    NULL },
	{ "verify", "verify", "verify", "check for drift, dirty or unknown "
	    "revisions (exit 4 if any)", 0, 0, 0, NULL, out_verify,
	    exit_verify, NULL },
	{ "check", "status", "check", "exit 0 only when at head with no "
	    "drift (else 4)", 0, 0, 0, NULL, out_status, exit_check, NULL },
	{ "reload", "reload", "reload", "re-read the configuration and the "
	    "migration files", 0, 0, 0, NULL, out_reload, NULL, NULL },
	{ "version", "version", "version", "the daemon's version", 0, 0, 0,
	    NULL, out_version, NULL, NULL },
	{ "wait", "status", "wait [--for head|ready] [--timeout S]", "wait "
	    "until the database is at head (or migd is ready)", 0, 0,
	    ARG_WAIT, NULL, out_status, NULL, migctl_wait },
	{ "new", NULL, "new -m MESSAGE [-d DIR|-c CONF] [--head REV]",
	    "write the "
	    "next revision file (no daemon needed)", 0, 0, ARG_AUTHOR |
	    ARG_HEAD, NULL, NULL, NULL, migctl_new },
	{ "merge", NULL, "merge -m MESSAGE [-d DIR|-c CONF]", "write a revision "
	    "merging every head (no daemon needed)", 0, 0, ARG_AUTHOR, NULL,
	    NULL, NULL, migctl_merge },
	{ "revisions", "revisions", "revisions [-d DIR|-c CONF]", "the "
	    "revision graph, newest first, as alembic history (with -d or -c: "
	    "from the files, no daemon)", 0, 0, ARG_AUTHOR, NULL, out_revisions,
	    NULL, NULL },
};

static void __attribute__((noreturn))
usage(int status)
{
	size_t	 i;
	FILE	*f = status ? stderr : stdout;

	fprintf(f, "usage: migctl [-s SOCKET] [--json] COMMAND [ARGS]\n"
	    "       migctl --local -c CONFIG [-v] [--json] COMMAND [ARGS]\n\n"
	    "options:\n"
	    "  -s, --socket PATH  control socket (default $%s, else %s)\n"
	    "  -j, --json         print JSON for scripts\n"
	    "      --stream       with --json: every message as a JSON line, "
	    "progress included\n"
	    "      --dry-run      upgrade/downgrade: show the plan, run "
	    "nothing\n"
	    "      --sql          upgrade/downgrade [FROM:]TO: print the SQL "
	    "of the run, from the files\n"
	    "      --allow-drift  run although applied files changed\n"
	    "      --limit N      history: at most N rows (default 50)\n"
	    "      --wait-daemon S  upgrade: retry connecting for S seconds\n"
	    "      --for head|ready, --timeout S  wait: the condition, the "
	    "time (default 60; 0: once)\n"
	    "  -m MESSAGE, -d DIR, -c CONFIG, --head REV  new, merge: the "
	    "message, the directory\n"
	    "                     (else $MIGD_MIGRATIONS, else the config's, "
	    "else ./migrations);\n"
	    "                     -d, -c also for --sql and revisions (files "
	    "only)\n"
	    "      --local -c CONFIG  run the command on a private migd "
	    "started for it\n"
	    "  -v, --verbose      with --local: show that migd's log\n"
	    "  -h, --help         this help\n"
	    "  -V, --version      print migctl's version\n\ncommands:\n",
	    MIGD_SOCKET_ENV, MIGD_DEFAULT_SOCKET);
	for (i = 0; i < nitems(migctl_cmds); i++)
		fprintf(f, "  %s\n      %s\n", migctl_cmds[i].usage,
		    migctl_cmds[i].help);
	fprintf(f, "\ntargets: head, heads, base, +N, -N, a revision or a "
	    "unique prefix of one\n"
	    "exit codes: 0 success, 1 failed, 2 usage, 3 daemon unreachable, "
	    "4 check found work,\n  5 busy or lock timeout, 6 forbidden "
	    "(see migctl(1))\n");
	exit(status);
}

static void __attribute__((noreturn, format(printf, 2, 3)))
die(int code, const char *fmt, ...)
{
	va_list	 ap;

	fputs("migctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(code);
}

/* One attempt to connect; -1 with errno when nobody answers. */
static int
migctl_try_connect(struct migctl *m)
{
	struct sockaddr_un	 sun;
	int			 saved;

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	if (strlen(m->socket) >= sizeof sun.sun_path)
		die(MIGCTL_EXIT_USAGE, "socket path too long: %s", m->socket);
	strncpy(sun.sun_path, m->socket, sizeof sun.sun_path - 1);
	if ((m->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		die(MIGCTL_EXIT_UNREACHABLE, "socket: %s", strerror(errno));
	if (connect(m->fd, (struct sockaddr *)&sun, sizeof sun) == -1) {
		saved = errno;
		close(m->fd);
		m->fd = -1;
		errno = saved;
		return (-1);
	}
	m->rlen = 0;
	return (0);
}

/* Ends a connection and forgets what was read on it. */
static void
migctl_close(struct migctl *m)
{
	close(m->fd);
	m->fd = -1;
	free(m->rbuf);
	m->rbuf = NULL;
	m->rlen = m->rcap = 0;
}

/* Monotonic seconds. */
static double
migctl_now(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
}

/* Connects, retrying for --wait-daemon seconds; else exits 3 saying why. */
static void
migctl_connect(struct migctl *m)
{
	double	 deadline = migctl_now() + m->wait_daemon;

	while (migctl_try_connect(m) != 0) {
		if (migctl_now() >= deadline) {
			die(MIGCTL_EXIT_UNREACHABLE, "cannot connect to migd at "
			    "%s: %s (is migd running? -s or $%s selects the "
			    "socket)", m->socket, strerror(errno),
			    MIGD_SOCKET_ENV);
		}
		usleep(200000);
	}
}

/* Writes one request line. */
static void
migctl_send(struct migctl *m, const char *method, json_t *params)
{
	json_t	*req;
	char	*s, *line;
	size_t	 len, off = 0;
	ssize_t	 n;

	req = json_pack("{s:s, s:i, s:s}", "jsonrpc", "2.0", "id", 1,
	    "method", method);
	if (params != NULL)
		json_object_set_new(req, "params", params);
	s = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	line = xprintf("%s\n", s);
	free(s);
	len = strlen(line);
	while (off < len) {
		n = write(m->fd, line + off, len - off);
		if (n == -1 && errno == EINTR)
			continue;
		/* A refusal (too many clients) may be waiting to be read. */
		if (n == -1 && errno == EPIPE)
			break;
		if (n <= 0)
			die(MIGCTL_EXIT_UNREACHABLE, "write to %s: %s",
			    m->socket, strerror(errno));
		off += (size_t)n;
	}
	free(line);
}

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
		if (json_object_get(msg, "method") != NULL &&
		    json_object_get(msg, "id") == NULL) {
			if (opts.json && opts.stream) {
				fputs(line, stdout);
				fflush(stdout);
			} else if (!opts.json)
				out_progress(json_object_get(msg, "params"));
			json_decref(msg);
			free(line);
			continue;
		}
		if (opts.json && opts.stream)
			fputs(line, stdout);
		free(line);
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
	    strcmp(kind, "too_many_clients") == 0)
		return (MIGCTL_EXIT_BUSY);
	return (MIGCTL_EXIT_FAILED);
}

static json_t *
params_target(struct migctl *m, char **args, int n)
{
	json_t	*p = json_object();

	if (n > 0)
		json_object_set_new(p, "target", json_string(args[0]));
	if (m->dry_run)
		json_object_set_new(p, "dry_run", json_true());
	if (m->allow_drift)
		json_object_set_new(p, "allow_drift", json_true());
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

static json_t *
params_resolve(struct migctl *m, char **args, int n)
{
	(void)m;
	(void)n;
	if (strcmp(args[1], "applied") != 0 && strcmp(args[1],
	    "unapplied") != 0)
		die(MIGCTL_EXIT_USAGE, "usage: migctl resolve REV "
		    "applied|unapplied");
	return (json_pack("{s:s, s:s}", "revision", args[0], "state",
	    args[1]));
}

static json_t *
params_history(struct migctl *m, char **args, int n)
{
	json_t	*p = json_object();

	if (n > 0)
		json_object_set_new(p, "revision", json_string(args[0]));
	if (m->limit > 0)
		json_object_set_new(p, "limit", json_integer(m->limit));
	return (p);
}

/* Whether a long option takes a value (and so may be --name=value). */
static int
migctl_valued(const char *name, size_t len)
{
	static const char *valued[] = { "--socket", "--limit", "--timeout",
	    "--for", "--wait-daemon", "--message", "--directory", "--config",
	    "--head" };
	size_t	 i;

	for (i = 0; i < nitems(valued); i++) {
		if (strlen(valued[i]) == len && strncmp(name, valued[i],
		    len) == 0)
			return (1);
	}
	return (0);
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
static int
exit_verify(json_t *res)
{
	return (json_is_true(json_object_get(res, "ok")) ? MIGCTL_EXIT_OK :
	    MIGCTL_EXIT_CHECK);
}

/* check exits 0 only when the database is at head with nothing wrong. */
static int
exit_check(json_t *res)
{
	const char	*state = json_string_value(json_object_get(res,
			    "state"));

	/* Not while a run is going: the database is not settled yet. */
	return (state != NULL && strcmp(state, "up_to_date") == 0 &&
	    !json_is_true(json_object_get(res, "running")) ?
	    MIGCTL_EXIT_OK : MIGCTL_EXIT_CHECK);
}

/* Prints a result for --json. */
static void
migctl_print_json(json_t *res)
{
	char	*s;

	s = json_dumps(res, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	puts(s);
	free(s);
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
	    !json_is_true(json_object_get(res, "running")));
}

/* wait: polls status until the condition holds or the time is up. */
static int
migctl_wait(struct migctl *m)
{
	double	 deadline = migctl_now() + m->timeout;
	json_t	*reply, *last = NULL;
	int	 answered = 0, met = 0, code;

	for (;;) {
		if (migctl_try_connect(m) == 0) {
			migctl_send(m, "status", NULL);
			reply = migctl_receive(m, 1);
			migctl_close(m);
			if (reply != NULL && json_object_get(reply, "error") !=
			    NULL && !migctl_is_kind(json_object_get(reply,
			    "error"), "too_many_clients")) {
				/* Refused (forbidden): say so, and stop. */
				code = migctl_exit_code(json_object_get(reply,
				    "error"));
				if (opts.json)
					migctl_print_json(reply);
				out_error(json_object_get(reply, "error"));
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
		if (migctl_now() >= deadline)
			break;
		usleep(250000);
	}
	if (opts.json && last != NULL)
		migctl_print_json(last);
	if (met) {
		if (!opts.json)
			printf("%s\n", strcmp(m->wait_for, "ready") == 0 ?
			    "ready: migd answers and is connected" :
			    "at head: the database is up to date");
		json_decref(last);
		return (MIGCTL_EXIT_OK);
	}
	if (!answered) {
		fprintf(stderr, "migctl: migd did not answer at %s within "
		    "%.0f s\n", m->socket, m->timeout);
		return (MIGCTL_EXIT_UNREACHABLE);
	}
	fprintf(stderr, "migctl: timed out after %.0f s: state %s%s\n",
	    m->timeout, out_str(last, "state"), json_is_true(json_object_get(
	    json_object_get(last, "database"), "connected")) ? "" :
	    ", not connected to PostgreSQL");
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

/* new and merge need the daemon's parser: they run in migctl-author. */
static int
migctl_author(struct migctl *m, const char *what)
{
	char	*argv[16], *path;
	int	 n = 0;

	path = migctl_author_path();
	argv[n++] = path;
	argv[n++] = (char *)what;
	if (opts.json)
		argv[n++] = "--json";
	if (m->author.message != NULL) {
		argv[n++] = "-m";
		argv[n++] = (char *)m->author.message;
	}
	if (m->author.directory != NULL) {
		argv[n++] = "-d";
		argv[n++] = (char *)m->author.directory;
	}
	if (m->author.config != NULL) {
		argv[n++] = "-c";
		argv[n++] = (char *)m->author.config;
	}
	if (m->author.head != NULL) {
		argv[n++] = "--head";
		argv[n++] = (char *)m->author.head;
	}
	argv[n] = NULL;
	if (m->author.message == NULL || *m->author.message == '\0')
		die(MIGCTL_EXIT_USAGE, "a message is required (-m MESSAGE)");
	execv(path, argv);
	die(MIGCTL_EXIT_FAILED, "cannot run %s: %s", path, strerror(errno));
}

static int
migctl_new(struct migctl *m)
{
	return (migctl_author(m, "new"));
}

static int
migctl_merge(struct migctl *m)
{
	return (migctl_author(m, "merge"));
}

/* upgrade/downgrade --sql [FROM:]TO, and revisions -d|-c, read the files
 * with the daemon's parser and planner: migctl-author answers them. */
static int
migctl_offline(struct migctl *m, const struct migctl_cmd *cmd,
    const char *arg)
{
	char	*argv[16], *path;
	int	 n = 0;

	path = migctl_author_path();
	argv[n++] = path;
	if (m->sql) {
		argv[n++] = "sql";
		argv[n++] = (char *)cmd->name;
	} else
		argv[n++] = "revisions";
	if (opts.json)
		argv[n++] = "--json";
	if (m->author.directory != NULL) {
		argv[n++] = "-d";
		argv[n++] = (char *)m->author.directory;
	}
	if (m->author.config != NULL) {
		argv[n++] = "-c";
		argv[n++] = (char *)m->author.config;
	}
	if (arg != NULL) {
		argv[n++] = "-r";
		argv[n++] = (char *)arg;
	}
	if (m->sql && m->atomic >= 0)
		argv[n++] = m->atomic ? "--atomic" : "--no-atomic";
	argv[n] = NULL;
	execv(path, argv);
	die(MIGCTL_EXIT_FAILED, "cannot run %s: %s", path, strerror(errno));
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
	json_t		*reply, *err;

	m->cancel_sent = 1;
	fprintf(stderr, "\nmigctl: cancelling the run (Ctrl-C again to stop "
	    "waiting)\n");
	memset(&c, 0, sizeof c);
	c.fd = -1;
	c.socket = m->socket;
	c.cancel_sent = 1;	/* this connection does not cancel again */
	if (migctl_try_connect(&c) != 0) {
		fprintf(stderr, "migctl: cannot reach migd to cancel: %s\n",
		    strerror(errno));
		return;
	}
	migctl_send(&c, "cancel", json_pack("{s:I}", "requester_pid",
	    (json_int_t)getpid()));
	if ((reply = migctl_receive(&c, 1)) != NULL &&
	    (err = json_object_get(reply, "error")) != NULL)
		fprintf(stderr, "migctl: cancel: %s\n", json_string_value(
		    json_object_get(err, "message")));
	json_decref(reply);
	migctl_close(&c);
}

/* Runs one command; returns the exit code. */
static int
migctl_run(struct migctl *m, const struct migctl_cmd *cmd, char **args,
    int nargs)
{
	struct sigaction	 sa;
	json_t	*reply, *err, *res, *params;
	char	*s;
	int	 code = MIGCTL_EXIT_OK;

	if (cmd->local != NULL)
		return (cmd->local(m));
	/* Arguments are checked before any connection is made. */
	params = cmd->params ? cmd->params(m, args, nargs) : NULL;
	if (cmd->params == params_target && strcmp(cmd->method, "plan") != 0 &&
	    !m->dry_run) {
		/* A run this process started is cancelled by its Ctrl-C. */
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = migctl_on_sigint;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGINT, &sa, NULL);
	}
	migctl_connect(m);
	migctl_send(m, cmd->method, params);
	reply = migctl_receive(m, 0);
	if ((err = json_object_get(reply, "error")) != NULL) {
		code = migctl_exit_code(err);
		if (opts.json && !opts.stream) {
			res = json_pack("{s:O}", "error", err);
			s = json_dumps(res, JSON_INDENT(2) | JSON_SORT_KEYS);
			json_decref(res);
			puts(s);
			free(s);
		}
		out_error(err);
	} else {
		res = json_object_get(reply, "result");
		if (opts.json && !opts.stream) {
			s = json_dumps(res, JSON_INDENT(2) | JSON_SORT_KEYS |
			    JSON_ENCODE_ANY);
			puts(s);
			free(s);
		} else if (!opts.json)
			cmd->print(res);
		if (cmd->exit_code != NULL)
			code = cmd->exit_code(res);
	}
	json_decref(reply);
	migctl_close(m);
	return (code);
}

int
main(int argc, char **argv)
{
	struct migctl			 m;
	const struct migctl_cmd		*cmd = NULL;
	const char			*env;
	char				**args, **av, *end;
	int				 i, nargs = 0, used = 0;
	int				 local = 0, verbose = 0, socket_given = 0;
	size_t				 j;

	memset(&m, 0, sizeof m);
	m.fd = -1;
	signal(SIGPIPE, SIG_IGN);
	m.timeout = 60;
	m.wait_for = "head";
	m.atomic = -1;
	if ((m.socket = getenv(MIGD_SOCKET_ENV)) == NULL || *m.socket == '\0')
		m.socket = MIGD_DEFAULT_SOCKET;
	args = xcalloc((size_t)argc + 1, sizeof *args);

	/* --name=value is --name value, for the options that take a value. */
	av = xcalloc((size_t)argc * 2 + 1, sizeof *av);
	for (i = 0, j = 0; i < argc; i++) {
		const char *eq = strchr(argv[i], '=');

		if (strcmp(argv[i], "--") == 0) {
			while (i < argc)
				av[j++] = xstrdup(argv[i++]);
			break;
		}
		if (eq != NULL && migctl_valued(argv[i], (size_t)(eq -
		    argv[i]))) {
			av[j++] = xstrndup(argv[i], (size_t)(eq - argv[i]));
			av[j++] = xstrdup(eq + 1);
		} else
			av[j++] = xstrdup(argv[i]);
	}
	argc = (int)j;
	argv = av;

	/* Options may stand anywhere; "-1" and "+2" are arguments. */
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--") == 0) {
			while (++i < argc)
				args[nargs++] = argv[i];
			break;
		}
		if (strcmp(a, "-j") == 0 || strcmp(a, "--json") == 0)
			opts.json = 1;
		else if (strcmp(a, "--stream") == 0)
			opts.stream = 1;
		else if (strcmp(a, "--dry-run") == 0) {
			m.dry_run = 1;
			used |= ARG_DRY_RUN;
		} else if (strcmp(a, "--allow-drift") == 0) {
			m.allow_drift = 1;
			used |= ARG_DRIFT;
		} else if (strcmp(a, "--sql") == 0) {
			m.sql = 1;
			used |= ARG_SQL;
		} else if (strcmp(a, "--atomic") == 0 ||
		    strcmp(a, "--no-atomic") == 0) {
			m.atomic = a[2] == 'a';
			used |= ARG_ATOMIC;
		} else if (strcmp(a, "--limit") == 0) {
			if (++i == argc)
				die(MIGCTL_EXIT_USAGE, "%s needs a number", a);
			m.limit = strtol(argv[i], &end, 10);
			if (*argv[i] == '\0' || *end != '\0' || m.limit < 1 ||
			    m.limit > 100000)
				die(MIGCTL_EXIT_USAGE, "%s takes a number from 1 "
				    "to 100000, not '%s'", a, argv[i]);
			used |= ARG_LIMIT;
		} else if (strcmp(a, "--wait-daemon") == 0) {
			if (++i == argc)
				die(MIGCTL_EXIT_USAGE, "%s needs seconds", a);
			m.wait_daemon = migctl_seconds(a, argv[i]);
			used |= ARG_WAIT_DAEMON;
		} else if (strcmp(a, "--timeout") == 0) {
			if (++i == argc)
				die(MIGCTL_EXIT_USAGE, "%s needs seconds", a);
			m.timeout = migctl_seconds(a, argv[i]);
			used |= ARG_WAIT;
		} else if (strcmp(a, "--for") == 0) {
			if (++i == argc || (strcmp(argv[i], "head") != 0 &&
			    strcmp(argv[i], "ready") != 0))
				die(MIGCTL_EXIT_USAGE, "--for takes head or "
				    "ready");
			m.wait_for = argv[i];
			used |= ARG_WAIT;
		} else if (strcmp(a, "-m") == 0 || strcmp(a, "--message") == 0 ||
		    strcmp(a, "-d") == 0 || strcmp(a, "--directory") == 0 ||
		    strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0 ||
		    strcmp(a, "--head") == 0) {
			if (++i == argc)
				die(MIGCTL_EXIT_USAGE, "%s needs a value", a);
			if (a[1] == 'm' || strcmp(a, "--message") == 0)
				m.author.message = argv[i];
			else if (a[1] == 'd' || strcmp(a, "--directory") == 0)
				m.author.directory = argv[i];
			else if (a[1] == 'c' || strcmp(a, "--config") == 0)
				m.author.config = argv[i];
			else
				m.author.head = argv[i];
			used |= strcmp(a, "--head") == 0 ? ARG_HEAD :
			    a[1] == 'c' || strcmp(a, "--config") == 0 ?
			    ARG_CONFIG : ARG_AUTHOR;
		} else if (strcmp(a, "-s") == 0 || strcmp(a, "--socket") == 0) {
			if (++i == argc)
				die(MIGCTL_EXIT_USAGE, "%s needs a path", a);
			m.socket = argv[i];
			socket_given = 1;
		} else if (strcmp(a, "--local") == 0)
			local = 1;
		else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0)
			verbose = 1;
		else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
			usage(0);
		else if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
			printf("migctl %s (protocol %d)\n", PACKAGE_VERSION,
			    MIGD_PROTOCOL_VERSION);
			exit(0);
		} else if (a[0] == '-' && a[1] != '\0' &&
		    strspn(a + 1, "0123456789") != strlen(a + 1)) {
			fprintf(stderr, "migctl: unknown option %s\n", a);
			usage(MIGCTL_EXIT_USAGE);
		} else
			args[nargs++] = argv[i];
	}
	if (nargs == 0) {
		fprintf(stderr, "migctl: no command given\n");
		usage(MIGCTL_EXIT_USAGE);
	}
	for (j = 0; j < nitems(migctl_cmds); j++) {
		if (strcmp(migctl_cmds[j].name, args[0]) == 0)
			cmd = &migctl_cmds[j];
	}
	if (cmd == NULL) {
		fprintf(stderr, "migctl: unknown command '%s'\n", args[0]);
		usage(MIGCTL_EXIT_USAGE);
	}
	if (nargs - 1 < cmd->min_args || nargs - 1 > cmd->max_args)
		die(MIGCTL_EXIT_USAGE, "usage: migctl %s", cmd->usage);
	/* -c: the private migd's configuration with --local, else new's. */
	if (local && cmd->method != NULL) {
		if ((used & ARG_CONFIG) == 0)
			die(MIGCTL_EXIT_USAGE, "--local needs the configuration "
			    "of the migd it starts: -c CONFIG");
		if (socket_given)
			die(MIGCTL_EXIT_USAGE, "--local starts a migd of its "
			    "own: -s does not go with it");
		used &= ~ARG_CONFIG;
	} else if ((used & ARG_CONFIG) != 0)
		used = (used & ~ARG_CONFIG) | ARG_AUTHOR;
	if (verbose && !local)
		die(MIGCTL_EXIT_USAGE, "-v shows the log of --local's migd: "
		    "it goes with --local");
	if ((used & ~cmd->flags) != 0)
		die(MIGCTL_EXIT_USAGE, "usage: migctl %s", cmd->usage);
	/* --sql, and revisions with -d or -c, read the files: no daemon. */
	if (m.sql || ((used & ARG_AUTHOR) && cmd->local == NULL)) {
		if (local || (used & ~(ARG_SQL | ARG_AUTHOR | (m.sql ?
		    ARG_ATOMIC : 0))) != 0 ||
		    m.author.message != NULL || (m.sql && opts.json) ||
		    (!m.sql && (cmd->flags & ARG_SQL)))
			die(MIGCTL_EXIT_USAGE, "usage: migctl %s", cmd->usage);
		return (migctl_offline(&m, cmd, nargs > 1 ? args[1] : NULL));
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
	i = migctl_run(&m, cmd, args + 1, nargs - 1);
	free(args);
	for (j = 0; j < (size_t)argc; j++)
		free(av[j]);
	free(av);
	return (i);
}
