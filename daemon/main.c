/*
 * migd: start-up, signals and the event loop.  Everything else happens in
 * callbacks: control (the socket), cmd (the commands), pool (PostgreSQL).
 */
#include <sys/resource.h>
#include <sys/time.h>

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "config.h"
#include "layout.h"
#include "migd.h"
#include "migrate.h"

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#define MIGD_DEFAULT_CONFIG	SYSCONFDIR "/migd/migd.conf"

struct migd	 migd;

static char	*migd_config_path;
static const char *migd_default_config = MIGD_DEFAULT_CONFIG;
static int	 migd_verbose;
static const char *migd_socket;		/* -S: beats [control] socket */
static int	 migd_private;		/* --private: one user's daemon */
static struct event *migd_drain_timer;
static struct event *migd_watchdog_timer;
static struct timeval migd_watchdog_tv;

/* Every option has a long form; both --opt=value and --opt value work. */
static void __attribute__((noreturn))
usage(int status)
{
	if (status != 0) {
		/* A usage error: short, and where the rest is. */
		fprintf(stderr, "usage: migd [-hnvV] [-c config] [-S socket] "
		    "[--private]\n"
		    "try 'migd --help' or 'man migd' for more\n");
		exit(status);
	}
	printf("usage: migd [-hnvV] [-c config] [-S socket] [--private]\n"
	    "  -c, --config FILE   configuration file (default %s)\n"
	    "  -n, --check         check the configuration, print the "
	    "effective\n"
	    "                      settings and exit\n"
	    "  -S, --socket PATH   listen on PATH instead of [control] "
	    "socket\n"
	    "      --private       for the invoking user alone: socket mode "
	    "0600,\n"
	    "                      no group, no systemd (as migctl --local "
	    "starts it)\n"
	    "  -v, --verbose       log at debug level\n"
	    "  -V, --version       print the version and exit\n"
	    "  -h, --help          this help\n"
	    "Long options take their value as --opt=value or --opt value.\n"
	    "See migd(8) and migd.conf(5).\n", MIGD_DEFAULT_CONFIG);
	exit(0);
}

/* Monotonic seconds, for uptime and durations. */
double
migd_now(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
}

/* Tells systemd something, when it is listening; a no-op otherwise. */
void
migd_notify(const char *fmt, ...)
{
#ifdef HAVE_LIBSYSTEMD
	va_list	 ap;
	char	*msg;

	/* A private migd's NOTIFY_SOCKET is its caller's service's. */
	if (migd_private)
		return;
	va_start(ap, fmt);
	xvasprintf(&msg, fmt, ap);
	va_end(ap);
	sd_notify(0, msg);
	free(msg);
#else
	(void)fmt;
#endif
}

/* The command line beats the file: -S and --private, at start and on reload. */
static void
migd_override(struct config *cf)
{
	if (migd_socket != NULL) {
		free(cf->socket);
		cf->socket = xstrdup(migd_socket);
	}
	if (migd_private) {
		/* Only its user (and root) can reach it: no group to give. */
		cf->socket_mode = 0600;
		free(cf->admin_group);
		cf->admin_group = xstrdup("");
		free(cf->read_group);
		cf->read_group = xstrdup("");
	}
}

/* Prints messages one per line, prefixed, their control characters
 * escaped: they quote files, and stderr is the log or a terminal. */
static void
migd_print(const char *prefix, const struct errlist *el)
{
	char	*line;
	size_t	 i;

	for (i = 0; i < el->n; i++) {
		line = utf8_escape_controls(el->v[i]);
		fprintf(stderr, "%s%s\n", prefix, line);
		free(line);
	}
}

/* Loads the configuration; errors are bare FILE:LINE: lines, as from a compiler. */
static struct config *
migd_load(const char *path)
{
	struct errlist	 errs = { NULL, 0 };
	struct config	*cf = NULL;

	if (config_load(path, &cf, &errs) != 0) {
		migd_print("", &errs);
		errlist_clear(&errs);
		return (NULL);
	}
	migd_override(cf);
	return (cf);
}

/* Logs what is wrong with the configuration but does not stop migd. */
static void
migd_log_warnings(const struct config *cf)
{
	size_t	 i;

	for (i = 0; i < cf->warnings.n; i++)
		log_warnx("%s", cf->warnings.v[i]);
}

/*
 * Why the reload of cf cannot remove a database it no longer names, or
 * NULL: a run in progress or queued there, or a rollout that counts it, is
 * not cut short by an edit of the file (to free).
 */
static char *
migd_removal_refused(const struct config *cf)
{
	struct database	*db;
	size_t		 i, k;

	for (i = 0; i < migd.n_dbs; i++) {
		db = migd.dbs[i];
		/* As requests name it: a name spelt otherwise is another. */
		for (k = 0; k < cf->n_dbs; k++) {
			if (strcmp(cf->dbs[k].name, db->name) == 0)
				break;
		}
		if (k < cf->n_dbs)
			continue;
		if (migrate_busy(db))
			return (xprintf("%s no longer has database %s, which "
			    "has a run in progress or queued: reload again "
			    "once it ends, or cancel it (migctl --db %s "
			    "cancel); the running settings are kept", cf->path,
			    db->name, db->name));
		if (db->rollouts > 0)
			return (xprintf("%s no longer has database %s, which "
			    "an upgrade --all in progress counts: reload again "
			    "once it ends, or cancel it (migctl cancel --all); "
			    "the running settings are kept", cf->path,
			    db->name));
	}
	return (NULL);
}

/* Whether an entry of the removed databases after i has settings of cf. */
static int
migd_config_held_after(const struct config *cf, size_t i)
{
	for (i++; i < migd.n_retired; i++) {
		if (migd.retired_cf[i] == cf)
			return (1);
	}
	return (0);
}

/* Whether a removed database still reads settings of cf. */
static int
migd_config_held(const struct config *cf)
{
	size_t	 i;

	for (i = 0; i < migd.n_retired; i++) {
		if (migd.retired_cf[i] == cf)
			return (1);
	}
	return (0);
}

/* Frees the removed databases nothing holds any more, and the settings of
 * theirs nobody reads; checks again while some remain. */
static void
migd_retire_sweep(evutil_socket_t fd, short events, void *arg)
{
	struct timeval	 tv = { 0, 100000 };
	struct config	**gone;
	size_t		 i, k, n = 0, n_gone = 0;

	(void)fd;
	(void)events;
	(void)arg;
	gone = xcalloc(migd.n_retired + 1, sizeof *gone);
	for (i = 0; i < migd.n_retired; i++) {
		if (migd.retired[i]->refs > 0 ||
		    !migrate_idle(migd.retired[i])) {
			migd.retired[n] = migd.retired[i];
			migd.retired_cf[n++] = migd.retired_cf[i];
			continue;
		}
		log_info("database %s removed: its connections are closed",
		    migd.retired[i]->name);
		database_free(migd.retired[i]);
		gone[n_gone++] = migd.retired_cf[i];
	}
	migd.n_retired = n;
	for (i = 0; i < n_gone; i++) {
		if (gone[i] != NULL && !migd_config_held(gone[i])) {
			config_free(gone[i]);
			/* the same one further on is freed already */
			for (k = i + 1; k < n_gone; k++) {
				if (gone[k] == gone[i])
					gone[k] = NULL;
			}
		}
	}
	free(gone);
	if (migd.n_retired > 0)
		evtimer_add(migd.retire_ev, &tv);
}

/*
 * Gives the running databases cf's settings, in cf's order: those it names
 * again keep their object (pool, engine, queue, caches), new ones are made
 * within the same connection budget, and those it no longer names are
 * removed (freed once no request holds them; with them, their settings in
 * old, kept until then).  Then every set of files is read again once, but
 * asker's.
 */
static void
migd_apply_databases(struct config *cf, struct config *old,
    struct database *asker)
{
	struct database	**dbs;
	size_t		  i, k, n_removed = 0;

	dbs = xcalloc(cf->n_dbs + 1, sizeof *dbs);
	for (i = 0; i < cf->n_dbs; i++) {
		for (k = 0; k < migd.n_dbs; k++) {
			if (migd.dbs[k] != NULL && strcmp(migd.dbs[k]->name,
			    cf->dbs[i].name) == 0)
				break;
		}
		if (k < migd.n_dbs) {
			dbs[i] = migd.dbs[k];
			migd.dbs[k] = NULL;
			database_reconfigure(dbs[i], &cf->dbs[i]);
			continue;
		}
		dbs[i] = database_new(migd.base, &cf->dbs[i], migd.budget,
		    migd.files);
		log_info("database %s added (migrations in %s)", dbs[i]->name,
		    cf->dbs[i].directory);
	}
	for (k = 0; k < migd.n_dbs; k++) {
		if (migd.dbs[k] == NULL)
			continue;
		/* No new request finds it; those under way finish. */
		migd.dbs[k]->removed = 1;
		log_info("database %s is no longer in %s: no new requests; "
		    "closed once those under way end", migd.dbs[k]->name,
		    cf->path);
		migd.retired = xreallocarray(migd.retired, migd.n_retired + 1,
		    sizeof *migd.retired);
		migd.retired_cf = xreallocarray(migd.retired_cf,
		    migd.n_retired + 1, sizeof *migd.retired_cf);
		migd.retired[migd.n_retired] = migd.dbs[k];
		migd.retired_cf[migd.n_retired++] = old;
		n_removed++;
	}
	free(migd.dbs);
	migd.dbs = dbs;
	migd.n_dbs = cf->n_dbs;
	migd.config = cf;
	if (n_removed == 0)
		config_free(old);
	else {
		/* Freed from the loop, not under this request. */
		struct timeval	 now = { 0, 0 };

		evtimer_add(migd.retire_ev, &now);
	}
	files_table_reload(migd.files, asker != NULL && !asker->removed ?
	    migrate_files(asker) : NULL);
}

/*
 * SIGHUP and reload: swap a new config in only when it is valid and removes
 * no database a run needs; databases it adds are made, those it removes go
 * (see migd_apply_databases); then every set of files is read again but
 * asker's, whose reload request does that itself to answer with them.
 */
int
migd_reload(struct database *asker, char **cause)
{
	struct errlist	 errs = { NULL, 0 };
	struct config	*cf = NULL;
	char		*msg;
	size_t		 i;

	migd_notify("RELOADING=1");
	log_info("reloading %s", migd_config_path);
	if (config_load(migd_config_path, &cf, &errs) != 0) {
		for (i = 0; i < errs.n; i++)
			log_error("%s", errs.v[i]);
		log_warnx("reload failed: keeping the previous settings");
		if (cause != NULL)
			*cause = xprintf("%s%s", errs.v[0], errs.n > 1 ?
			    " (and more: see the log)" : "");
		errlist_clear(&errs);
		migd_notify("READY=1\nSTATUS=reload failed, previous settings "
		    "kept");
		return (-1);
	}
	if ((msg = migd_removal_refused(cf)) != NULL) {
		log_error("%s", msg);
		log_warnx("reload failed: keeping the previous settings");
		if (cause != NULL)
			*cause = msg;
		else
			free(msg);
		config_free(cf);
		migd_notify("READY=1\nSTATUS=reload failed, previous settings "
		    "kept");
		return (-1);
	}
	migd_override(cf);
	log_setlevel(migd_verbose ? LOG_LVL_DEBUG : cf->log_level);
	migd_log_warnings(cf);
	control_reconfigure(cf);
	pool_budget_set(migd.budget, cf->max_connections_total,
	    cf->idle_close_ms);
	migd_apply_databases(cf, migd.config, asker);
	log_info("configuration reloaded");
	migd_notify("READY=1\nSTATUS=configuration reloaded");
	return (0);
}

/* For -n: says whether one database's migrations load, without failing. */
static void
migd_check_migrations(const struct config_db *cf)
{
	struct errlist	 errs = { NULL, 0 }, skipped = { NULL, 0 };
	struct revset_ctx ctx = { cf->schemas, cf->n_schemas,
			    cf->version_schema, cf->history_schema, 0,
			    &skipped, cf->format };
	struct revset	*rs;
	int		 r;

	r = revset_load(cf->directory, &ctx, &rs, &errs);
	migd_print("warning: ", &skipped);
	errlist_clear(&skipped);
	if (r != 0) {
		fprintf(stderr, "warning: the migrations in %s have %zu "
		    "problem%s; migd will start but run nothing until they are "
		    "fixed:\n", cf->directory, errs.n, errs.n == 1 ? "" : "s");
		migd_print("", &errs);
		errlist_clear(&errs);
		return;
	}
	printf("# migrations: %zu revision%s in %s\n", revset_count(rs),
	    revset_count(rs) == 1 ? "" : "s", cf->directory);
	printf("# format: %s%s\n", layout_name((enum layout_format)
	    rs->set.format), cf->format == LAYOUT_AUTO ? " (detected)" : "");
	revset_unparsed(rs, &errs);
	if (errs.n > 0)
		fprintf(stderr, "note: PostgreSQL %d's parser cannot read %zu "
		    "section%s; without a server to ask, migd assumes newer "
		    "SQL for a newer server (a PostgreSQL %d server will "
		    "refuse them at load):\n", sqlscan_parser_version() / 10000,
		    errs.n, errs.n == 1 ? "" : "s",
		    sqlscan_parser_version() / 10000);
	migd_print("", &errs);
	errlist_clear(&errs);
	revset_unref(rs);
}

/*
 * For -n: each distinct directory's migrations once (databases sharing a
 * directory and its reading share one set), with the first such database's
 * schemas and tables.
 */
static void
migd_check_dirs(const struct config *cf)
{
	size_t	 i, k;

	for (i = 0; i < cf->n_dbs; i++) {
		for (k = 0; k < i; k++) {
			if (files_read_alike(&cf->dbs[k], &cf->dbs[i]))
				break;
		}
		if (k == i)
			migd_check_migrations(&cf->dbs[i]);
	}
}

/* Exits the loop once every request has finished and its reply is out. */
static void
migd_drain(evutil_socket_t fd, short events, void *arg)
{
	struct timeval	 tv = { 0, 20000 };

	(void)fd;
	(void)events;
	(void)arg;
	if (control_idle()) {
		event_base_loopexit(migd.base, NULL);
		return;
	}
	evtimer_add(migd_drain_timer, &tv);
}

static void
migd_signal(evutil_socket_t sig, short events, void *arg)
{
	size_t	 i;

	(void)events;
	(void)arg;
	switch (sig) {
	case SIGHUP:
		migd_reload(NULL, NULL);
		break;
	case SIGTERM:
	case SIGINT:
		if (migd.draining) {
			log_warnx("second signal: exiting now");
			control_shutdown();
			exit(1);
		}
		log_info("%s: no new requests, finishing the running ones",
		    sig == SIGTERM ? "SIGTERM" : "SIGINT");
		migd_notify("STOPPING=1\nSTATUS=stopping");
		migd.draining = 1;
		control_shutdown();
		for (i = 0; i < migd.n_dbs; i++)
			migrate_shutdown(migd.dbs[i]);
		for (i = 0; i < migd.n_retired; i++)
			migrate_shutdown(migd.retired[i]);
		migd_drain(-1, 0, NULL);
		break;
	}
}

/* Clients and connections are fds: take all the hard limit allows. */
static void
migd_raise_nofile(void)
{
	struct rlimit	 rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			log_warn("setrlimit RLIMIT_NOFILE");
	}
}

/* Pings systemd's watchdog from the loop itself: a stuck loop stops pinging. */
static void
migd_watchdog(evutil_socket_t fd, short events, void *arg)
{
	(void)fd;
	(void)events;
	(void)arg;
	migd_notify("WATCHDOG=1");
	evtimer_add(migd_watchdog_timer, &migd_watchdog_tv);
}

/* Starts the pings at half the interval systemd asked for, if it asked. */
static void
migd_watchdog_start(void)
{
#ifdef HAVE_LIBSYSTEMD
	uint64_t	 usec;

	if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
		return;
	usec /= 2;
	migd_watchdog_tv.tv_sec = (time_t)(usec / 1000000);
	migd_watchdog_tv.tv_usec = (suseconds_t)(usec % 1000000);
	migd_watchdog_timer = evtimer_new(migd.base, migd_watchdog, NULL);
	evtimer_add(migd_watchdog_timer, &migd_watchdog_tv);
	log_debug("watchdog: pinging every %.1f s", (double)usec / 1e6);
#endif
}

/* The listening socket systemd passed, or -1 to bind our own. */
static int
migd_activation_fd(void)
{
#ifdef HAVE_LIBSYSTEMD
	int	 n;

	n = sd_listen_fds(1);
	if (n > 1)
		fatalx("systemd passed %d sockets, migd takes one", n);
	if (n == 1) {
		if (sd_is_socket_unix(SD_LISTEN_FDS_START, SOCK_STREAM, 1,
		    NULL, 0) <= 0)
			fatalx("the socket systemd passed is not a listening "
			    "Unix stream socket");
		return (SD_LISTEN_FDS_START);
	}
#endif
	return (-1);
}

/* Every short option has a long form; --private has only that. */
static const struct option migd_longopts[] = {
	{ "config",	required_argument,	NULL,	'c' },
	{ "check",	no_argument,		NULL,	'n' },
	{ "socket",	required_argument,	NULL,	'S' },
	{ "private",	no_argument,		NULL,	'P' },
	{ "verbose",	no_argument,		NULL,	'v' },
	{ "version",	no_argument,		NULL,	'V' },
	{ "help",	no_argument,		NULL,	'h' },
	{ NULL,		0,			NULL,	0 }
};

int
main(int argc, char **argv)
{
	struct event	*ev_term, *ev_int, *ev_hup;
	char		*cause = NULL, resolved[PATH_MAX];
	int		 ch, check = 0, fd;
	size_t		 i;

	migd_config_path = (char *)migd_default_config;
	while ((ch = getopt_long(argc, argv, "c:hnS:vV", migd_longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'c':
			migd_config_path = optarg;
			break;
		case 'S':
			if (*optarg == '\0') {
				fprintf(stderr, "migd: the socket path is "
				    "empty\n");
				usage(2);
			}
			migd_socket = optarg;
			break;
		case 'P':
			migd_private = 1;
			break;
		case 'h':
			usage(0);
		case 'n':
			check = 1;
			break;
		case 'v':
			migd_verbose = 1;
			break;
		case 'V':
			printf("migd %s (protocol %d)\n", PACKAGE_VERSION,
			    MIGD_PROTOCOL_VERSION);
			exit(0);
		default:
			usage(2);
		}
	}
	if (optind != argc) {
		fprintf(stderr, "migd: unexpected argument '%s'\n",
		    argv[optind]);
		usage(2);
	}

	log_init(LOG_LVL_INFO);
	/* An absolute path, so SIGHUP finds the file whatever the cwd. */
	/* Absolute, so SIGHUP finds it whatever the cwd; links are kept, so a
	 * swapped symlink (a Kubernetes configMap) is followed on reload. */
	if (migd_config_path[0] != '/' && getcwd(resolved, sizeof resolved))
		migd_config_path = xprintf("%s/%s", resolved,
		    migd_config_path);
	else
		migd_config_path = xstrdup(migd_config_path);
	if ((migd.config = migd_load(migd_config_path)) == NULL)
		exit(1);
	if (check) {
		migd_print("warning: ", &migd.config->warnings);
		config_print(migd.config, stdout);
		migd_check_dirs(migd.config);
		config_free(migd.config);
		free(migd_config_path);
		exit(0);
	}
	log_setlevel(migd_verbose ? LOG_LVL_DEBUG : migd.config->log_level);
	migd_log_warnings(migd.config);
	signal(SIGPIPE, SIG_IGN);
	migd_raise_nofile();

	if ((migd.base = event_base_new()) == NULL)
		fatalx("cannot create the event loop");
	migd.started = migd_now();
	/* A private migd's LISTEN_FDS and WATCHDOG_USEC are its caller's. */
	fd = migd_private ? -1 : migd_activation_fd();
	if (control_init(migd.base, migd.config, fd, &cause) != 0)
		fatalx("%s", cause);
	migd.n_dbs = migd.config->n_dbs;
	migd.dbs = xcalloc(migd.n_dbs, sizeof *migd.dbs);
	migd.budget = pool_budget_new(migd.base,
	    migd.config->max_connections_total, migd.config->idle_close_ms);
	migd.files = files_table_new(migd.base);
	migd.retire_ev = evtimer_new(migd.base, migd_retire_sweep, NULL);
	for (i = 0; i < migd.n_dbs; i++)
		migd.dbs[i] = database_new(migd.base, &migd.config->dbs[i],
		    migd.budget, migd.files);
	if (migd.n_dbs > 1)
		log_info("serving %zu databases (%s, %s%s): name one with "
		    "migctl --db NAME", migd.n_dbs, migd.dbs[0]->name,
		    migd.dbs[1]->name, migd.n_dbs > 2 ? ", ..." : "");

	ev_term = evsignal_new(migd.base, SIGTERM, migd_signal, NULL);
	ev_int = evsignal_new(migd.base, SIGINT, migd_signal, NULL);
	ev_hup = evsignal_new(migd.base, SIGHUP, migd_signal, NULL);
	evsignal_add(ev_term, NULL);
	evsignal_add(ev_int, NULL);
	evsignal_add(ev_hup, NULL);
	migd_drain_timer = evtimer_new(migd.base, migd_drain, NULL);
	if (!migd_private)
		migd_watchdog_start();

	log_info("migd %s listening on %s, configuration %s", PACKAGE_VERSION,
	    fd == -1 ? migd.config->socket : "a socket passed by systemd",
	    migd_config_path);
	migd_notify("READY=1\nSTATUS=listening on %s", fd == -1 ?
	    migd.config->socket : "the socket systemd passed");

	event_base_dispatch(migd.base);

	log_info("exiting");
	control_free();
	for (i = 0; i < migd.n_dbs; i++)
		database_free(migd.dbs[i]);
	free(migd.dbs);
	for (i = 0; i < migd.n_retired; i++)
		database_free(migd.retired[i]);
	for (i = 0; i < migd.n_retired; i++) {
		/* each configuration once: the last of its entries frees it */
		if (!migd_config_held_after(migd.retired_cf[i], i))
			config_free(migd.retired_cf[i]);
	}
	free(migd.retired);
	free(migd.retired_cf);
	event_free(migd.retire_ev);
	files_table_free(migd.files);
	pool_budget_free(migd.budget);
	event_free(ev_term);
	event_free(ev_int);
	event_free(ev_hup);
	/* Stopping already: another signal now (a second stop, a reload) must
	 * not kill the exit half-way and turn its status into the signal's. */
	signal(SIGTERM, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	event_free(migd_drain_timer);
	if (migd_watchdog_timer != NULL)
		event_free(migd_watchdog_timer);
	event_base_free(migd.base);
	config_free(migd.config);
	free(migd_config_path);
	return (0);
}
