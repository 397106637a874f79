/*
 * migctl's side of the control socket: connecting (retrying for
 * --wait-daemon), checking that the listener is the expected migd before a
 * byte is sent, and writing a request.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <pwd.h>
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

/*
 * The owner of the directory holding the socket, when only that owner (or
 * root) could have put a socket there: the directory is writable by no one
 * else, and every directory above it is owned by root or that owner and is
 * writable by no one else unless sticky.  (uid_t)-1 otherwise.
 */
static uid_t
conn_dir_owner(const char *socket)
{
	struct stat	 sb;
	char		*dir, *real, *slash;
	uid_t		 owner = (uid_t)-1;

	dir = path_dir(socket);
	real = realpath(dir, NULL);
	free(dir);
	if (real == NULL)
		return ((uid_t)-1);
	if (stat(real, &sb) == -1 || (sb.st_mode & (S_IWGRP | S_IWOTH)))
		goto out;
	owner = sb.st_uid;
	while ((slash = strrchr(real, '/')) != NULL && slash != real) {
		*slash = '\0';
		if (stat(real, &sb) == -1 || (sb.st_uid != 0 &&
		    sb.st_uid != owner) || ((sb.st_mode & (S_IWGRP |
		    S_IWOTH)) && !(sb.st_mode & S_ISVTX))) {
			owner = (uid_t)-1;
			goto out;
		}
	}
	if (stat("/", &sb) == -1 || sb.st_uid != 0 || (sb.st_mode & (S_IWGRP |
	    S_IWOTH)))
		owner = (uid_t)-1;
out:
	free(real);
	return (owner);
}

/* The uid of $MIGD_DAEMON_USER (a name or a number), or (uid_t)-1. */
static uid_t
conn_daemon_user(void)
{
	const char	*env = getenv(MIGD_DAEMON_USER_ENV);
	struct passwd	*pw;
	char		*end;
	long		 n;

	if (env == NULL || *env == '\0')
		return ((uid_t)-1);
	if ((pw = getpwnam(env)) != NULL)
		return (pw->pw_uid);
	n = strtol(env, &end, 10);
	if (*end != '\0' || n < 0 || (uid_t)n == (uid_t)-1)
		die(MIGCTL_EXIT_USAGE, "$%s names no user: '%s'",
		    MIGD_DAEMON_USER_ENV, env);
	return ((uid_t)n);
}

/*
 * Before a byte is sent: whether the process listening on the socket is
 * migd as expected (SO_PEERCRED): root, this user, the owner of a socket
 * directory no one else can write, or $MIGD_DAEMON_USER.  Another user
 * could have taken the path of a socket in a shared directory, and would
 * then see our requests and make up the answers; exits 7 instead.
 */
static void
conn_check_peer(struct migctl *m)
{
	struct ucred	 cred;
	socklen_t	 len = sizeof cred;
	struct passwd	*pw;
	uid_t		 owner;
	char		 name[64];
	json_t		*data;

	if (getsockopt(m->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1)
		die(MIGCTL_EXIT_UNREACHABLE, "cannot tell who listens on %s: "
		    "%s", m->socket, strerror(errno));
	if (cred.uid == 0 || cred.uid == getuid() || cred.uid == geteuid() ||
	    cred.uid == conn_daemon_user())
		return;
	owner = conn_dir_owner(m->socket);
	if (owner != (uid_t)-1 && cred.uid == owner)
		return;
	if ((pw = getpwuid(cred.uid)) != NULL)
		snprintf(name, sizeof name, "%s", pw->pw_name);
	else
		snprintf(name, sizeof name, "%ld", (long)cred.uid);
	close(m->fd);
	m->fd = -1;
	data = json_pack("{s:s, s:I, s:s, s:I}", "socket", m->socket, "uid",
	    (json_int_t)cred.uid, "user", name, "pid", (json_int_t)cred.pid);
	out_fail(MIGCTL_EXIT_UNTRUSTED, "untrusted_daemon", data, "refusing "
	    "to talk to %s: the process listening there (pid %ld) runs as %s "
	    "(uid %ld), not as root, as you, or as the owner of a socket "
	    "directory no one else can write; another user may have taken the "
	    "socket's path. Nothing was sent. If migd really runs as %s, set "
	    "$%s=%s", m->socket, (long)cred.pid, name, (long)cred.uid, name,
	    MIGD_DAEMON_USER_ENV, name);
}

/* One attempt to connect; -1 with errno when nobody answers. */
int
conn_try(struct migctl *m)
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
	conn_check_peer(m);
	m->rlen = 0;
	return (0);
}

/* Ends a connection and forgets what was read on it. */
void
conn_close(struct migctl *m)
{
	close(m->fd);
	m->fd = -1;
	free(m->rbuf);
	m->rbuf = NULL;
	m->rlen = m->rcap = 0;
}

/* Monotonic seconds. */
double
conn_now(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
}

/* Connects, retrying for --wait-daemon seconds; else exits 3 saying why. */
void
conn_open(struct migctl *m)
{
	double	 deadline = conn_now() + m->wait_daemon;
	char	 within[64];

	while (conn_try(m) != 0) {
		if (conn_now() >= deadline) {
			snprintf(within, sizeof within, " within %g s",
			    m->wait_daemon);
			die(MIGCTL_EXIT_UNREACHABLE, "cannot connect to migd at "
			    "%s%s: %s (is migd running? -s or $%s selects the "
			    "socket; without a daemon, migctl --local -c CONFIG "
			    "runs one for the command)", m->socket,
			    m->wait_daemon > 0 ? within : "", strerror(errno),
			    MIGD_SOCKET_ENV);
		}
		usleep(200000);
	}
}

/* Writes one request line. */
void
conn_send(struct migctl *m, const char *method, json_t *params)
{
	json_t	*req;
	char	*s, *line;
	size_t	 len, off = 0;
	ssize_t	 n;

	req = json_pack("{s:s, s:i, s:s}", "jsonrpc", "2.0", "id", 1,
	    "method", method);
	if (m->db != NULL) {
		/* --db: every request names its database. */
		if (params == NULL)
			params = json_object();
		json_object_set_new(params, "database", json_string(m->db));
	}
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
