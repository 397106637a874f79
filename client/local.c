/*
 * migctl --local: one command against a private migd, started for it with
 * the caller's configuration on a socket in a fresh 0700 directory, and
 * stopped afterwards.  Nothing is left behind, however migctl ends (a reply,
 * an error, a signal): no process, no socket, no directory.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <errno.h>
#include <fcntl.h>
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

#ifndef SBINDIR
#define SBINDIR		"/usr/sbin"
#endif

#define LOCAL_START_WAIT	30.0	/* seconds for migd to listen */
#define LOCAL_STOP_WAIT		10.0	/* seconds for it to exit on SIGTERM */
#define LOCAL_KILL_WAIT		2.0	/* and after SIGKILL */

/* Static, so that the signal handler needs no allocation. */
static struct {
	pid_t			 owner;		/* migctl itself */
	volatile pid_t		 pid;		/* the private migd; 0 once reaped */
	int			 status;	/* its wait status once reaped */
	int			 log;		/* its captured output, or -1 */
	int			 graceful;	/* a first signal lets the reply come */
	volatile sig_atomic_t	 sig;		/* the last signal received */
	volatile sig_atomic_t	 nsig;
	volatile sig_atomic_t	 termed;	/* migd was sent SIGTERM */
	char			 dir[PATH_MAX];
	char			 socket[PATH_MAX];
	char			 path[PATH_MAX];	/* the migd binary */
} local = { 0, 0, 0, -1, 0, 0, 0, 0, "", "", "" };

/* Writes a string to stderr from anywhere, a signal handler included. */
static void
local_say(const char *s)
{
	size_t	 len = strlen(s);
	ssize_t	 n;

	while (len > 0) {
		if ((n = write(STDERR_FILENO, s, len)) == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		s += n;
		len -= (size_t)n;
	}
}

/* Monotonic seconds; clock_gettime is async-signal-safe. */
static double
local_now(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
}

/* Sleeps ms milliseconds, signals or not. */
static void
local_nap(long ms)
{
	struct timespec	 ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* Reaps migd if it exits within wait seconds; 0 when it has, else -1. */
static int
local_reap(double wait)
{
	double	 deadline = local_now() + wait;
	pid_t	 pid = local.pid, r;
	int	 status;

	if (pid <= 0)
		return (0);
	for (;;) {
		r = waitpid(pid, &status, WNOHANG);
		if (r == pid || (r == -1 && errno == ECHILD)) {
			local.status = r == pid ? status : 0;
			local.pid = 0;
			return (0);
		}
		if (local_now() >= deadline)
			return (-1);
		local_nap(20);
	}
}

/* Removes the socket (migd does, unless it was killed) and the directory. */
static void
local_remove(void)
{
	if (local.socket[0] != '\0')
		unlink(local.socket);
	if (local.dir[0] != '\0')
		rmdir(local.dir);
	local.socket[0] = local.dir[0] = '\0';
}

/*
 * Stops migd: SIGTERM (sent twice, it exits without finishing the running
 * request), then SIGKILL if it hangs.  Async-signal-safe.
 */
static void
local_kill(int now)
{
	pid_t	 pid = local.pid;

	if (pid <= 0)
		return;
	/* Once only, or migd takes it for "exit now". */
	if (!local.termed || now)
		kill(pid, SIGTERM);
	local.termed = 1;
	if (now) {
		local_nap(50);
		kill(pid, SIGTERM);
	}
	if (local_reap(LOCAL_STOP_WAIT) != 0) {
		local_say("migctl: the private migd ignored SIGTERM: killing "
		    "it\n");
		kill(pid, SIGKILL);
		local_reap(LOCAL_KILL_WAIT);
	}
}

/* Copies migd's captured output to stderr: an error is never lost. */
static void
local_dump(void)
{
	char	*buf = NULL;
	size_t	 cap = 0;
	off_t	 off = 0;
	ssize_t	 n;

	if (local.log == -1)
		return;
	/* Whole, so no character is cut in two between reads. */
	for (;;) {
		if ((size_t)off + 65536 > cap) {
			cap = (size_t)off + 65536;
			buf = xrealloc(buf, cap);
		}
		if ((n = pread(local.log, buf + off, cap - (size_t)off,
		    off)) <= 0)
			break;
		off += n;
	}
	/* migd's log holds text from clients and files: never raw. */
	out_write_escaped(STDERR_FILENO, buf, (size_t)off);
	free(buf);
}

/* Dies of the signal, as the caller expects; from its handler too. */
static void __attribute__((noreturn))
local_die(int sig)
{
	sigset_t	 set;

	signal(sig, SIG_DFL);
	sigemptyset(&set);
	sigaddset(&set, sig);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	raise(sig);
	_exit(128 + sig);
}

/*
 * SIGINT, SIGTERM, SIGHUP: stop migd too.  The first signal lets a running
 * request end the way a stopping migd ends it (a migration finishes its
 * current step) and its reply be printed; a second stops everything now.
 */
static void
local_signal(int sig)
{
	int	 saved = errno;

	if (getpid() != local.owner)
		_exit(128 + sig);	/* the child, before exec */
	local.sig = sig;
	if (++local.nsig == 1 && local.graceful && local.pid > 0) {
		local_say("migctl: stopping migd: a running migration finishes "
		    "its current step (again to stop now)\n");
		local.termed = 1;
		kill(local.pid, SIGTERM);
		errno = saved;
		return;
	}
	local_kill(local.nsig > 1);
	local_remove();
	local_die(sig);
}

/* For a handler about to _exit: stop migd now, remove its files.  Safe there. */
void
local_abort(void)
{
	if (local.owner != getpid())
		return;
	local_kill(1);
	local_remove();
}

/* At exit, whichever way: stop migd, say so if it failed, remove its files. */
static void
local_cleanup(void)
{
	int	 st;

	fflush(stdout);
	if (local.pid > 0)
		local_kill(0);
	st = local.status;
	if (WIFSIGNALED(st) || (WIFEXITED(st) && WEXITSTATUS(st) != 0)) {
		fprintf(stderr, "migctl: the private migd exited with %s %d; "
		    "its log:\n", WIFSIGNALED(st) ? "signal" : "status",
		    WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
		local_dump();
	}
	local_remove();
	if (local.log != -1) {
		close(local.log);
		local.log = -1;
	}
	if (local.sig != 0)
		local_die(local.sig);
}

/* Where migd is: $MIGD_BIN, beside migctl, the configured sbindir, $PATH. */
static void
local_migd_path(void)
{
	const char	*env = getenv("MIGD_BIN");
	char		 self[PATH_MAX], *slash;
	ssize_t		 n;
	int		 r;

	if (env != NULL && *env != '\0') {
		r = snprintf(local.path, sizeof local.path, "%s", env);
		if (r > 0 && (size_t)r < sizeof local.path)
			return;
	}
	if ((n = readlink("/proc/self/exe", self, sizeof self - 1)) > 0) {
		self[n] = '\0';
		if ((slash = strrchr(self, '/')) != NULL) {
			*slash = '\0';
			r = snprintf(local.path, sizeof local.path, "%s/migd",
			    self);
			if (r > 0 && (size_t)r < sizeof local.path &&
			    access(local.path, X_OK) == 0)
				return;
		}
	}
	r = snprintf(local.path, sizeof local.path, "%s/migd", SBINDIR);
	if (r > 0 && (size_t)r < sizeof local.path &&
	    access(local.path, X_OK) == 0)
		return;
	snprintf(local.path, sizeof local.path, "migd");	/* execvp: $PATH */
}

/* Makes the private directory: $XDG_RUNTIME_DIR, $TMPDIR or /tmp. */
static void
local_mkdir(void)
{
	struct sockaddr_un	 sun;
	const char		*bases[3];
	size_t			 i;
	int			 r, saved = 0;

	bases[0] = getenv("XDG_RUNTIME_DIR");
	bases[1] = getenv("TMPDIR");
	bases[2] = "/tmp";
	for (i = 0; i < nitems(bases); i++) {
		if (bases[i] == NULL || bases[i][0] != '/')
			continue;
		r = snprintf(local.dir, sizeof local.dir, "%s/migctl-local."
		    "XXXXXX", bases[i]);
		/* The socket's path must fit a sockaddr_un. */
		if (r < 0 || (size_t)r + sizeof "/migd.sock" >
		    sizeof sun.sun_path)
			continue;
		/* mkdtemp makes it 0700: the socket is ours alone. */
		if (mkdtemp(local.dir) != NULL && snprintf(local.socket,
		    sizeof local.socket, "%s/migd.sock", local.dir) > 0)
			return;
		saved = errno;
	}
	local.dir[0] = '\0';
	out_fail(MIGCTL_EXIT_UNREACHABLE, "local_failed", NULL, "cannot make a "
	    "private directory for migd in $XDG_RUNTIME_DIR, $TMPDIR or /tmp: "
	    "%s", saved ? strerror(saved) : "paths too long for a socket");
}

/* migd's output goes to a file, unlinked: read back only if it fails. */
static void
local_open_log(void)
{
	char	 path[PATH_MAX];

	/* A file, not a pipe: nobody would drain a pipe during a long run. */
	if (snprintf(path, sizeof path, "%s/migd.log", local.dir) < 0)
		path[0] = '\0';
	local.log = open(path, O_RDWR | O_CREAT | O_EXCL | O_APPEND |
	    O_CLOEXEC, 0600);
	if (local.log == -1)
		out_fail(MIGCTL_EXIT_UNREACHABLE, "local_failed", NULL, "%s: %s",
		    path, strerror(errno));
	unlink(path);
}

/* The child: its own process group, its output captured, then migd. */
static void __attribute__((noreturn))
local_exec(const char *config, int verbose)
{
	char	*argv[8];
	int	 fd, n = 0;

	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	signal(SIGPIPE, SIG_DFL);
	/* A terminal's ^C reaches migctl only, which decides what migd gets. */
	setpgid(0, 0);
#ifdef __linux__
	/* And if migctl is killed outright, migd stops all the same. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != local.owner)
		_exit(1);
#endif
	if ((fd = open("/dev/null", O_RDONLY)) != -1) {
		dup2(fd, STDIN_FILENO);
		if (fd != STDIN_FILENO)
			close(fd);
	}
	/* Never on stdout, which is the command's (--json). */
	if (verbose)
		dup2(STDERR_FILENO, STDOUT_FILENO);
	else {
		dup2(local.log, STDOUT_FILENO);
		dup2(local.log, STDERR_FILENO);
		/* Its lines go to a file, not to the journal. */
		unsetenv("JOURNAL_STREAM");
	}
	argv[n++] = local.path;
	argv[n++] = "--private";
	argv[n++] = "-S";
	argv[n++] = local.socket;
	argv[n++] = "-c";
	argv[n++] = (char *)config;
	argv[n] = NULL;
	execvp(local.path, argv);
	fprintf(stderr, "migctl: cannot run %s: %s (set $MIGD_BIN to "
	    "migd's path)\n", local.path, strerror(errno));
	_exit(127);
}

/* Whether migd accepts connections on the private socket yet. */
static int
local_listening(void)
{
	struct sockaddr_un	 sun;
	int			 fd, r;

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	/* local_mkdir made sure it fits. */
	memcpy(sun.sun_path, local.socket, strlen(local.socket) + 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return (0);
	r = connect(fd, (struct sockaddr *)&sun, sizeof sun);
	close(fd);
	return (r == 0);
}

/*
 * Whether migd has settled its databases: each connected, or failed a first
 * attempt, and its files loaded (status would otherwise say no_database or
 * loading just because it asked too soon, and check would exit 4).  Asks
 * status of every database at once (a file may have several; --db picks one
 * of them afterwards).
 */
static int
local_settled(void)
{
	static const char	 req[] = "{\"jsonrpc\":\"2.0\",\"id\":1,"
				    "\"method\":\"status\",\"params\":{\"all\":true}}\n";
	struct sockaddr_un	 sun;
	struct pollfd		 pfd;
	json_t			*reply, *db, *el;
	char			*buf = NULL, *nl = NULL;
	size_t			 i;
	size_t			 len = 0, cap = 0;
	ssize_t			 n;
	int			 fd, settled = 0;

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, local.socket, strlen(local.socket) + 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return (0);
	if (connect(fd, (struct sockaddr *)&sun, sizeof sun) == -1 ||
	    write(fd, req, sizeof req - 1) != (ssize_t)(sizeof req - 1))
		goto out;
	pfd.fd = fd;
	pfd.events = POLLIN;
	while (nl == NULL) {
		if (poll(&pfd, 1, 5000) <= 0)
			goto out;
		if (cap - len < 4096) {
			cap = cap * 2 + 4096;
			buf = xrealloc(buf, cap);
		}
		if ((n = read(fd, buf + len, cap - len)) <= 0)
			goto out;
		len += (size_t)n;
		nl = memchr(buf, '\n', len);
	}
	reply = json_loadb(buf, (size_t)(nl - buf), 0, NULL);
	/* An error reply is the command's to show: nothing to wait for. */
	settled = 1;
	json_array_foreach(json_object_get(json_object_get(reply, "result"),
	    "databases"), i, el) {
		db = json_object_get(el, "database");
		if (db != NULL && !json_is_true(json_object_get(db,
		    "connected")) && !json_is_string(json_object_get(db,
		    "last_error")))
			settled = 0;
		if (json_is_true(json_object_get(json_object_get(el,
		    "migrations"), "loading")))
			settled = 0;
	}
	json_decref(reply);
out:
	free(buf);
	close(fd);
	return (settled);
}

/* migd's captured output as a string, for --json's error object. */
static char *
local_log_text(void)
{
	char	 buf[8192], *s = xstrdup(""), *t;
	off_t	 off = 0;
	ssize_t	 n;

	while (local.log != -1 && (n = pread(local.log, buf, sizeof buf,
	    off)) > 0) {
		t = xprintf("%s%.*s", s, (int)n, buf);
		free(s);
		s = t;
		off += n;
	}
	return (s);
}

/* migd did not come up: show why (with --json, as the error object, the
 * log in data.log), clean up and exit. */
static void __attribute__((noreturn))
local_failed(const char *config)
{
	int	 st = local.status, code = MIGCTL_EXIT_UNREACHABLE;
	char	*msg, *log;

	if (local.pid > 0) {
		msg = xprintf("the private migd did not listen within %.0f s",
		    LOCAL_START_WAIT);
		local_kill(1);
	} else if (WIFEXITED(st) && WEXITSTATUS(st) == 127) {
		/* local_exec said why, in the log. */
		msg = xprintf("cannot run %s", local.path);
	} else if (WIFEXITED(st)) {
		/* It refused to start: an invalid configuration, mostly. */
		msg = xprintf("migd cannot start with %s", config);
		code = MIGCTL_EXIT_FAILED;
	} else
		msg = xprintf("the private migd died of signal %d at start-up",
		    WTERMSIG(st));
	local.status = 0;	/* said here */
	if (opts.json) {
		/* out_fail exits: nothing of ours may be left allocated. */
		char	 said[512];
		json_t	*data;

		log = local_log_text();
		data = json_pack("{s:s}", "log", log);
		free(log);
		snprintf(said, sizeof said, "%s", msg);
		free(msg);
		out_fail(code, "local_failed", data, "%s", said);
	}
	if (!(WIFEXITED(st) && WEXITSTATUS(st) == 127 && local.pid <= 0))
		fprintf(stderr, "migctl: %s%s\n", msg, code ==
		    MIGCTL_EXIT_FAILED ? ":" : "; its log:");
	local_dump();
	free(msg);
	exit(code);
}

/*
 * Starts a private migd with the configuration; returns its socket once it
 * listens.  Exits 3 when migd cannot be run, 1 when it refuses to start.
 * graceful: a first SIGINT/SIGTERM lets the request's reply come back.
 */
const char *
local_start(const char *config, int verbose, int graceful)
{
	struct sigaction	 sa;
	double			 deadline;
	pid_t			 pid;

	local.owner = getpid();
	local_migd_path();
	local_mkdir();
	if (atexit(local_cleanup) != 0) {
		rmdir(local.dir);
		fprintf(stderr, "migctl: atexit failed\n");
		exit(MIGCTL_EXIT_FAILED);
	}
	if (!verbose)
		local_open_log();
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = local_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	fflush(stdout);
	fflush(stderr);
	if ((pid = fork()) == -1)
		out_fail(MIGCTL_EXIT_UNREACHABLE, "local_failed", NULL, "fork: "
		    "%s", strerror(errno));
	if (pid == 0)
		local_exec(config, verbose);
	local.pid = pid;

	deadline = local_now() + LOCAL_START_WAIT;
	for (;;) {
		if (local_listening())
			break;
		if (waitpid(pid, &local.status, WNOHANG) == pid) {
			local.pid = 0;
			local_failed(config);
		}
		if (local_now() >= deadline)
			local_failed(config);
		local_nap(10);
	}
	/* Then for the database, which the command would find too soon. */
	while (!local_settled() && local_now() < deadline) {
		if (waitpid(pid, &local.status, WNOHANG) == pid) {
			local.pid = 0;
			local_failed(config);
		}
		local_nap(10);
	}
	local.graceful = graceful;
	return (local.socket);
}
