/*
 * migctl: the client of migd.  Sends one JSON-RPC request over the control
 * socket, prints progress notifications and the reply for a person (or as
 * JSON for scripts), and exits with a code a deploy hook can branch on.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "config.h"
#include "migd/protocol.h"
#include "util.h"

struct migctl {
	const char	*socket;
	int		 json;
	FILE		*in;
	int		 fd;
};

struct migctl_cmd {
	const char	*name;
	const char	*method;
	const char	*usage;
	const char	*help;
	int		 min_args, max_args;
	json_t		*(*params)(char **, int);
	void		(*print)(json_t *);
};

static void	migctl_print_status(json_t *);
static void	migctl_print_version(json_t *);

/* Every command migctl knows: the one place a new one is added. */
static const struct migctl_cmd migctl_cmds[] = {
	{ "status", "status", "status", "show the daemon, database and "
	    "migrations state", 0, 0, NULL, migctl_print_status },
	{ "version", "version", "version", "show the daemon's version", 0, 0,
	    NULL, migctl_print_version },
};

static void __attribute__((noreturn))
usage(int status)
{
	size_t	 i;
	FILE	*f = status ? stderr : stdout;

	fprintf(f, "usage: migctl [-s SOCKET] [--json] COMMAND [ARGS]\n\n"
	    "options:\n"
	    "  -s, --socket PATH  control socket (default $%s, else %s)\n"
	    "  -j, --json         print JSON for scripts\n"
	    "  -h, --help         this help\n"
	    "  -V, --version      print migctl's version\n\ncommands:\n",
	    MIGD_SOCKET_ENV, MIGD_DEFAULT_SOCKET);
	for (i = 0; i < nitems(migctl_cmds); i++)
		fprintf(f, "  %-20s %s\n", migctl_cmds[i].usage,
		    migctl_cmds[i].help);
	fprintf(f, "\nexit codes: 0 success, 1 failed, 2 usage, 3 daemon "
	    "unreachable, 4 check found work,\n  5 busy or lock timeout, "
	    "6 forbidden (see migctl(1))\n");
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

/* Connects to the daemon, or exits 3 with what to check. */
static void
migctl_connect(struct migctl *m)
{
	struct sockaddr_un	 sun;

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	if (strlen(m->socket) >= sizeof sun.sun_path)
		die(MIGCTL_EXIT_USAGE, "socket path too long: %s", m->socket);
	strncpy(sun.sun_path, m->socket, sizeof sun.sun_path - 1);
	if ((m->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		die(MIGCTL_EXIT_UNREACHABLE, "socket: %s", strerror(errno));
	if (connect(m->fd, (struct sockaddr *)&sun, sizeof sun) == -1) {
		die(MIGCTL_EXIT_UNREACHABLE, "cannot connect to migd at %s: "
		    "%s (is migd running? -s or $%s selects the socket)",
		    m->socket, strerror(errno), MIGD_SOCKET_ENV);
	}
	if ((m->in = fdopen(m->fd, "r")) == NULL)
		die(MIGCTL_EXIT_UNREACHABLE, "fdopen: %s", strerror(errno));
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
		if (n <= 0)
			die(MIGCTL_EXIT_UNREACHABLE, "write to %s: %s",
			    m->socket, strerror(errno));
		off += (size_t)n;
	}
	free(line);
}

/* Reads messages until the reply; notifications are shown as they come. */
static json_t *
migctl_receive(struct migctl *m)
{
	json_error_t	 jerr;
	json_t		*msg;
	char		*line = NULL;
	size_t		 cap = 0;
	ssize_t		 n;

	for (;;) {
		if ((n = getline(&line, &cap, m->in)) <= 0) {
			free(line);
			die(MIGCTL_EXIT_UNREACHABLE, "migd closed the "
			    "connection before answering");
		}
		msg = json_loadb(line, (size_t)n, 0, &jerr);
		if (msg == NULL || !json_is_object(msg)) {
			free(line);
			die(MIGCTL_EXIT_FAILED, "unreadable reply from migd: "
			    "%s", msg ? "not an object" : jerr.text);
		}
		if (json_object_get(msg, "method") != NULL &&
		    json_object_get(msg, "id") == NULL) {
			if (m->json) {
				fputs(line, stdout);
				fflush(stdout);
			}
			json_decref(msg);
			continue;
		}
		free(line);
		return (msg);
	}
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

/* Seconds as "1h 2m 3s" for people. */
static void
migctl_duration(char *buf, size_t len, double secs)
{
	long	 s = (long)secs;

	if (s >= 86400)
		snprintf(buf, len, "%ldd %ldh", s / 86400, s % 86400 / 3600);
	else if (s >= 3600)
		snprintf(buf, len, "%ldh %ldm", s / 3600, s % 3600 / 60);
	else if (s >= 60)
		snprintf(buf, len, "%ldm %lds", s / 60, s % 60);
	else
		snprintf(buf, len, "%.1fs", secs);
}

/* A string member, or a dash when it is missing or null. */
static const char *
migctl_str(json_t *obj, const char *key)
{
	const char	*s = json_string_value(json_object_get(obj, key));

	return (s != NULL ? s : "-");
}

static void
migctl_print_status(json_t *res)
{
	json_t	*d = json_object_get(res, "daemon");
	json_t	*db = json_object_get(res, "database");
	json_t	*pool = json_object_get(db, "pool");
	json_t	*mig = json_object_get(res, "migrations");
	char	 up[64];

	migctl_duration(up, sizeof up, json_number_value(json_object_get(d,
	    "uptime")));
	printf("migd %s, pid %lld, up %s\n", migctl_str(d, "version"),
	    (long long)json_integer_value(json_object_get(d, "pid")), up);
	if (json_is_true(json_object_get(db, "connected"))) {
		printf("database:   connected to PostgreSQL %s\n",
		    migctl_str(db, "server_version"));
		printf("  database: %s as %s on %s port %s\n",
		    migctl_str(db, "database"), migctl_str(db, "user"),
		    migctl_str(db, "host"), migctl_str(db, "port"));
	} else {
		printf("database:   not connected\n");
		printf("  error:    %s\n", migctl_str(db, "last_error"));
	}
	printf("  pool:     %lld connections, %lld connected, %lld busy\n",
	    (long long)json_integer_value(json_object_get(pool, "size")),
	    (long long)json_integer_value(json_object_get(pool, "connected")),
	    (long long)json_integer_value(json_object_get(pool, "busy")));
	printf("migrations: %s\n", migctl_str(mig, "directory"));
}

static void
migctl_print_version(json_t *res)
{
	printf("%s %s (protocol %lld)\n", migctl_str(res, "name"),
	    migctl_str(res, "version"),
	    (long long)json_integer_value(json_object_get(res, "protocol")));
}

/* Runs one command; returns the exit code. */
static int
migctl_run(struct migctl *m, const struct migctl_cmd *cmd, char **args,
    int nargs)
{
	json_t	*reply, *err, *res;
	char	*s;
	int	 code = MIGCTL_EXIT_OK;

	migctl_connect(m);
	migctl_send(m, cmd->method, cmd->params ? cmd->params(args, nargs) :
	    NULL);
	reply = migctl_receive(m);
	if ((err = json_object_get(reply, "error")) != NULL) {
		code = migctl_exit_code(err);
		if (m->json) {
			res = json_pack("{s:O}", "error", err);
			s = json_dumps(res, JSON_INDENT(2) | JSON_SORT_KEYS);
			json_decref(res);
			puts(s);
			free(s);
		}
		fprintf(stderr, "migctl: %s\n", migctl_str(err, "message"));
	} else {
		res = json_object_get(reply, "result");
		if (m->json) {
			s = json_dumps(res, JSON_INDENT(2) | JSON_SORT_KEYS |
			    JSON_ENCODE_ANY);
			puts(s);
			free(s);
		} else
			cmd->print(res);
	}
	json_decref(reply);
	fclose(m->in);
	return (code);
}

int
main(int argc, char **argv)
{
	struct migctl			 m;
	const struct migctl_cmd		*cmd = NULL;
	char				**args;
	int				 i, nargs = 0;
	size_t				 j;

	memset(&m, 0, sizeof m);
	m.fd = -1;
	if ((m.socket = getenv(MIGD_SOCKET_ENV)) == NULL || *m.socket == '\0')
		m.socket = MIGD_DEFAULT_SOCKET;
	args = xcalloc((size_t)argc, sizeof *args);

	/* Options may stand anywhere; "-1" and "+2" are arguments. */
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--") == 0) {
			while (++i < argc)
				args[nargs++] = argv[i];
			break;
		}
		if (strcmp(a, "-j") == 0 || strcmp(a, "--json") == 0)
			m.json = 1;
		else if (strcmp(a, "-s") == 0 || strcmp(a, "--socket") == 0) {
			if (++i == argc)
				die(MIGCTL_EXIT_USAGE, "%s needs a path", a);
			m.socket = argv[i];
		} else if (strncmp(a, "--socket=", 9) == 0)
			m.socket = a + 9;
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
	i = migctl_run(&m, cmd, args + 1, nargs - 1);
	free(args);
	return (i);
}
