/*
 * The migration files as the databases read them: one loaded revision set
 * per directory and reading (format, managed schemas, migd's own schemas,
 * and whether SQL the parser refuses is an error on the server), shared by
 * every database that reads them alike.  A set has one load at a time (on
 * the loader's thread), one inotify watch of its directories, one list of
 * problems, and the databases using it; a fleet of a thousand tenants on
 * one directory parses its files once and holds one copy.
 *
 * The table of sets belongs to the daemon (main.c makes it, each database
 * gets it); a set lives while a database uses it (files_get, files_put) or
 * something still waits for its load.  A database's running jobs hold
 * their own reference to the revision set they planned with (j->rs), so a
 * load that swaps a new set in never changes a run under way.
 */
#include <sys/inotify.h>
#include <sys/queue.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "config.h"
#include "layout.h"
#include "migd.h"
#include "engine.h"
#include "loader.h"

/* Names of the databases a log line of a set names at most. */
#define FILES_NAMES_SHOWN	3

struct files_table {
	struct event_base	*base;
	TAILQ_HEAD(, files)	 all;
};

static void	files_inotify_read(evutil_socket_t, short, void *);
static void	files_watched_clear(struct files *);
static void	files_serve(evutil_socket_t, short, void *);
static void	files_start(struct files *, int, struct revset *);
static void	files_free(struct files *);

/* A table of sets, for the daemon. */
struct files_table *
files_table_new(struct event_base *base)
{
	struct files_table	*t;

	t = xcalloc(1, sizeof *t);
	t->base = base;
	TAILQ_INIT(&t->all);
	return (t);
}

/* Frees the table once every database has let go of its set. */
void
files_table_free(struct files_table *t)
{
	struct files	*f;

	if (t == NULL)
		return;
	while ((f = TAILQ_FIRST(&t->all)) != NULL) {
		if (!f->orphan)
			fatalx("files_table_free: %s is still in use",
			    f->directory);
		files_free(f);	/* its load is waited for */
	}
	free(t);
}

/* Whether f reads its files as cf says (strict aside). */
static int
files_reads_as(const struct files *f, const struct config_db *cf)
{
	struct config_db	 key;

	memset(&key, 0, sizeof key);
	key.directory = f->directory;
	key.format = f->format;
	key.schemas = f->schemas;
	key.n_schemas = f->n_schemas;
	key.version_schema = f->version_schema;
	key.history_schema = f->history_schema;
	return (files_read_alike(&key, cf));
}

/* Whether two databases' settings read their files alike (one set, but
 * for their servers' strictness). */
int
files_read_alike(const struct config_db *a, const struct config_db *b)
{
	return (config_db_differs(a, b, CONFIG_READS_DIR |
	    CONFIG_READS_FORMAT | CONFIG_READS_SCHEMAS) == NULL);
}

/* Whether the set a database of these settings reads is f. */
int
files_is(const struct files *f, const struct config_db *cf, int strict)
{
	return (f->strict == strict && files_reads_as(f, cf));
}

/* The set's databases, for the log: "" or "NAME: " for one, "a, b, c and
 * N more: " for several (to free). */
static char *
files_who(const struct files *f)
{
	char	*s, *t;
	size_t	 i;

	if (f->n_users == 0)
		return (xstrdup(""));
	if (f->n_users == 1)
		return (xstrdup(f->users[0].tag));
	s = xstrdup("");
	for (i = 0; i < f->n_users && i < FILES_NAMES_SHOWN; i++) {
		t = xprintf("%s%s%s", s, i > 0 ? ", " : "", f->users[i].name);
		free(s);
		s = t;
	}
	if (f->n_users > FILES_NAMES_SHOWN)
		t = xprintf("%s and %zu more: ", s,
		    f->n_users - FILES_NAMES_SHOWN);
	else
		t = xprintf("%s: ", s);
	free(s);
	return (t);
}

/*
 * The set that a database of settings cf reads (strict: its server is the
 * parser's version or older, so SQL the parser refuses is an error), made
 * and loading when no database reads it yet; name and tag (borrowed, kept
 * until files_put) say who in the log.  A new set takes the unchanged
 * files of the same directory's other reading, without parsing them again.
 */
struct files *
files_get(struct files_table *t, const struct config_db *cf, int strict,
    const char *name, const char *tag)
{
	struct files	*f, *sib = NULL;
	size_t		 i;

	TAILQ_FOREACH(f, &t->all, entry) {
		if (files_is(f, cf, strict))
			break;
		if (files_reads_as(f, cf) && f->rs != NULL)
			sib = f;
	}
	if (f != NULL)
		f->orphan = 0;
	else {
		f = xcalloc(1, sizeof *f);
		f->table = t;
		f->directory = xstrdup(cf->directory);
		f->format = cf->format;
		f->strict = strict;
		f->n_schemas = cf->n_schemas;
		f->schemas = xcalloc(cf->n_schemas + 1, sizeof *f->schemas);
		for (i = 0; i < cf->n_schemas; i++)
			f->schemas[i] = xstrdup(cf->schemas[i]);
		f->version_schema = cf->version_schema != NULL ?
		    xstrdup(cf->version_schema) : NULL;
		f->history_schema = cf->history_schema != NULL ?
		    xstrdup(cf->history_schema) : NULL;
		f->inotify = -1;
		TAILQ_INIT(&f->waiters);
		TAILQ_INIT(&f->resuming);
		TAILQ_INIT(&f->brief);
		f->serve_ev = event_new(t->base, -1, 0, files_serve, f);
		TAILQ_INSERT_TAIL(&t->all, f, entry);
		/* The first load is said, unless it is another reading of
		 * files already said. */
		f->ask_next = sib == NULL;
		f->seed_valid = sib != NULL && sib->errors == NULL;
		/* What it skips was said by the other reading. */
		if (sib != NULL && sib->skipped_said != NULL)
			f->skipped_said = xstrdup(sib->skipped_said);
		f->fresh = 1;
	}
	f->users = xreallocarray(f->users, f->n_users + 1, sizeof *f->users);
	f->users[f->n_users].name = name;
	f->users[f->n_users].tag = tag;
	f->n_users++;
	if (f->n_users == 1 && f->loader == NULL && !f->loaded)
		files_start(f, 1, sib != NULL ? sib->rs : NULL);
	return (f);
}

/* Frees a set nobody uses or waits on. */
static void
files_free(struct files *f)
{
	struct files_waiter	*w;
	size_t			 i;

	TAILQ_REMOVE(&f->table->all, f, entry);
	loader_free(f->loader);
	while ((w = TAILQ_FIRST(&f->waiters)) != NULL) {
		TAILQ_REMOVE(&f->waiters, w, entry);
		free(w);
	}
	while ((w = TAILQ_FIRST(&f->brief)) != NULL) {
		TAILQ_REMOVE(&f->brief, w, entry);
		free(w);
	}
	if (f->recheck != NULL)
		event_free(f->recheck);
	if (f->brief_timer != NULL)
		event_free(f->brief_timer);
	event_free(f->serve_ev);
	migset_clear(&f->seen);
	if (f->inotify_ev != NULL)
		event_free(f->inotify_ev);
	if (f->inotify != -1)
		close(f->inotify);
	files_watched_clear(f);
	revset_unref(f->rs);
	json_decref(f->errors);
	free(f->skipped_said);
	for (i = 0; i < f->n_schemas; i++)
		free(f->schemas[i]);
	free(f->schemas);
	free(f->version_schema);
	free(f->history_schema);
	free(f->directory);
	free(f->users);
	free(f);
}

/* Database name lets go of f; after the last one it is freed. */
void
files_put(struct files *f, const char *name)
{
	size_t	 i;

	if (f == NULL)
		return;
	for (i = 0; i < f->n_users; i++) {
		if (f->users[i].name == name)
			break;
	}
	if (i == f->n_users)
		fatalx("files_put: %s does not use %s", name, f->directory);
	memmove(&f->users[i], &f->users[i + 1],
	    (f->n_users - i - 1) * sizeof *f->users);
	f->n_users--;
	if (f->n_users > 0)
		return;
	/* Freed from the loop (or when its load ends), never under a caller
	 * that may be walking its waiters; a database may take it again
	 * meanwhile. */
	f->orphan = 1;
	event_active(f->serve_ev, 0, 0);
}

/* A change in the migrations tree: the files will be loaded again; a
 * watch that ended (its directory gone) is renewed after that load. */
static void
files_inotify_read(evutil_socket_t fd, short events, void *arg)
{
	struct files			*f = arg;
	const struct inotify_event	*ev;
	char				 buf[4096]
	    __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t				 n, off;

	(void)events;
	while ((n = read(fd, buf, sizeof buf)) > 0) {
		f->stale = 1;
		for (off = 0; off + (ssize_t)sizeof *ev <= n;
		    off += (ssize_t)(sizeof *ev + ev->len)) {
			ev = (const struct inotify_event *)(void *)(buf + off);
			if (ev->mask & (IN_IGNORED | IN_Q_OVERFLOW))
				f->watch_lost = 1;
		}
	}
}

/* Forgets which directories inotify watches. */
static void
files_watched_clear(struct files *f)
{
	size_t	 i;

	for (i = 0; i < f->n_watched; i++)
		free(f->watched[i]);
	free(f->watched);
	free(f->watched_sigs);
	f->watched = NULL;
	f->watched_sigs = NULL;
	f->n_watched = 0;
}

/* Whether set's directories are those watched, each the same directory
 * (device and inode): their watches stand. */
static int
files_watched_same(const struct files *f, const struct migset *set)
{
	size_t	 i;

	if (f->n_watched != set->n_dirs)
		return (0);
	for (i = 0; i < set->n_dirs; i++) {
		if (strcmp(f->watched[i], set->dirs[i]) != 0 ||
		    f->watched_sigs[i].dev != set->dir_sigs[i].dev ||
		    f->watched_sigs[i].ino != set->dir_sigs[i].ino)
			return (0);
	}
	return (1);
}

/* Whether the last load was refused without reading everything (the
 * directory missing, a file unreadable): nothing to watch or to stat, so it
 * is read again whenever asked, as before. */
static int
files_seen_partial(struct files *f)
{
	return (f->loaded && f->errors != NULL &&
	    (f->seen.n_dirs == 0 || f->seen.incomplete));
}

/* Whether the files may have changed since the last load (inotify events
 * are drained first, so an edit made just before a request is seen). */
int
files_changed(struct files *f)
{
	if (f->inotify != -1)
		files_inotify_read(f->inotify, EV_READ, f);
	return (f->stale || !f->loaded || files_seen_partial(f));
}

/* Without inotify: a look at the files every second, off the loop. */
static void
files_recheck(evutil_socket_t fd, short events, void *arg)
{
	struct files	*f = arg;

	(void)fd;
	(void)events;
	if (f->loader == NULL && (f->inotify == -1 || files_seen_partial(f)))
		files_load(f, 0);
}

/* The check every second runs while inotify cannot vouch for the files:
 * unavailable, or nothing to watch after a partial read. */
static void
files_recheck_arm(struct files *f)
{
	struct timeval	 tv = { 1, 0 };

	if (f->inotify == -1 || files_seen_partial(f)) {
		if (f->recheck == NULL) {
			f->recheck = event_new(f->table->base, -1, EV_PERSIST,
			    files_recheck, f);
			event_add(f->recheck, &tv);
		}
	} else if (f->recheck != NULL) {
		event_free(f->recheck);
		f->recheck = NULL;
	}
}

/* Why inotify cannot watch, or NULL; MIGD_TEST_NO_INOTIFY (a test hook)
 * makes it unavailable as a user's exhausted instances would. */
static int
files_inotify_init(void)
{
	const char	*env = getenv("MIGD_TEST_NO_INOTIFY");

	if (env != NULL && *env != '\0') {
		errno = EMFILE;
		return (-1);
	}
	return (inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
}

/*
 * Watches every directory the last load read.  Without inotify, the files
 * are checked every second (a stat of each, on the loader's thread) and
 * before every request that uses them; the operator is told once.
 */
static void
files_watch(struct files *f, const struct migset *set)
{
	const uint32_t	 mask = IN_CREATE | IN_DELETE | IN_MODIFY |
			    IN_MOVED_FROM | IN_MOVED_TO | IN_CLOSE_WRITE |
			    IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF;
	const char	*why = NULL;
	size_t		 i;
	int		 fd;

	/* Events seen while the files were read stay seen. */
	if (f->inotify != -1)
		files_inotify_read(f->inotify, EV_READ, f);
	/* The same directories, none lost: the watches stand (a reload of
	 * diesel's 1000 migration directories added 1000 again). */
	if (f->inotify != -1 && !f->watch_lost &&
	    files_watched_same(f, set))
		return;
	files_watched_clear(f);
	f->watch_lost = 0;
	if (f->inotify_ev != NULL) {
		event_free(f->inotify_ev);
		f->inotify_ev = NULL;
	}
	if (f->inotify != -1)
		close(f->inotify);
	f->inotify = -1;
	if ((fd = files_inotify_init()) == -1)
		why = xprintf("inotify_init1: %s", strerror(errno));
	for (i = 0; fd != -1 && i < set->n_dirs; i++) {
		if (inotify_add_watch(fd, set->dirs[i], mask) == -1) {
			why = xprintf("inotify_add_watch %s: %s",
			    set->dirs[i], strerror(errno));
			close(fd);
			fd = -1;
		}
	}
	if (fd == -1) {
		if (!f->no_inotify)
			log_warnx("cannot watch the migration files (%s; "
			    "fs.inotify.max_user_instances or "
			    "max_user_watches may be used up): migd checks "
			    "them for changes every second and before each "
			    "request that uses them, with a stat of each file",
			    why);
		f->no_inotify = 1;
		free((char *)why);
		return;
	}
	if (f->no_inotify)
		log_info("watching the migration files with inotify again");
	f->no_inotify = 0;
	f->inotify = fd;
	f->watched = xcalloc(set->n_dirs + 1, sizeof *f->watched);
	f->watched_sigs = xcalloc(set->n_dirs + 1, sizeof *f->watched_sigs);
	for (i = 0; i < set->n_dirs; i++) {
		f->watched[i] = xstrdup(set->dirs[i]);
		f->watched_sigs[i] = set->dir_sigs[i];
	}
	f->n_watched = set->n_dirs;
	f->inotify_ev = event_new(f->table->base, f->inotify,
	    EV_READ | EV_PERSIST, files_inotify_read, f);
	event_add(f->inotify_ev, NULL);
}

/* Logs what the files' load did not read, and why: once, not at every
 * load (any change to the files loads them again). */
static void
files_say_skipped(struct files *f, const struct errlist *skipped)
{
	char	*all;
	size_t	 i;

	all = errlist_join(skipped, "\n");
	if (f->skipped_said == NULL || strcmp(all, f->skipped_said) != 0) {
		for (i = 0; i < skipped->n; i++)
			log_warnx("%s", skipped->v[i]);
	}
	free(f->skipped_said);
	f->skipped_said = all;
}

/* Logs what a load found, when an operator asked for it (start, SIGHUP,
 * reload) or it changed whether the files are valid; once for the set,
 * naming its databases. */
static void
files_load_log(struct files *f, const struct loader_result *res,
    int asked, int was_valid)
{
	struct revset	*rs = f->rs;
	size_t		*heads, n;
	char		*who;

	if (f->errors != NULL) {
		if (!asked && !was_valid)
			return;
		who = files_who(f);
		log_warnx("%smigrations in %s are invalid (%zu problem%s); "
		    "nothing will run until they are fixed", who,
		    f->directory, json_array_size(f->errors),
		    json_array_size(f->errors) == 1 ? "" : "s");
		free(who);
		for (n = 0; n < json_array_size(f->errors); n++)
			log_warnx("%s", json_string_value(json_array_get(
			    f->errors, n)));
		return;
	}
	if (!asked && was_valid) {
		log_debug("migration files loaded again in %.3f s (%zu of %zu "
		    "unchanged)", res->seconds, res->reused, revset_count(rs));
		return;
	}
	who = files_who(f);
	n = graph_heads(rs->graph, &heads);
	log_info("%sloaded %zu revision%s from %s, %zu head%s%s%s (%.3f s)",
	    who, revset_count(rs), revset_count(rs) == 1 ? "" : "s",
	    f->directory, n, n == 1 ? "" : "s",
	    n == 1 ? ": " : "", n == 1 ? graph_id(rs->graph, heads[0]) : "",
	    res->seconds);
	free(who);
	if (rs->set.format > LAYOUT_MIGD)
		log_info("the files in %s are read as %s migrations%s",
		    f->directory, layout_name((enum layout_format)
		    rs->set.format), f->format == LAYOUT_AUTO ?
		    " (format = auto detected them)" : "");
	free(heads);
}

/* Calls what waits a moment for a load (status), now. */
static void
files_brief_flush(struct files *f)
{
	struct files_waiter	*w;
	struct files_waiters	 now;

	if (f->brief_timer != NULL)
		evtimer_del(f->brief_timer);
	TAILQ_INIT(&now);
	TAILQ_CONCAT(&now, &f->brief, entry);
	while ((w = TAILQ_FIRST(&now)) != NULL) {
		TAILQ_REMOVE(&now, w, entry);
		/* A callback may forget another waiter: it is in f->brief
		 * no more, so look there first. */
		f->brief_now = &now;
		w->fn(w->arg);
		free(w);
	}
	f->brief_now = NULL;
}

/* Calls the waiters whose load has ended (all of them when no load runs). */
static void
files_resume(struct files *f)
{
	struct files_waiter	*w, *next;

	/* Those served move to a list of their own first: a callback may end
	 * another waiter's job, which files_forget then finds there. */
	for (w = TAILQ_FIRST(&f->waiters); w != NULL; w = next) {
		next = TAILQ_NEXT(w, entry);
		if (w->seq > f->done_seq && f->loader != NULL)
			continue;
		TAILQ_REMOVE(&f->waiters, w, entry);
		TAILQ_INSERT_TAIL(&f->resuming, w, entry);
	}
	while ((w = TAILQ_FIRST(&f->resuming)) != NULL) {
		TAILQ_REMOVE(&f->resuming, w, entry);
		w->fn(w->arg);
		free(w);
	}
}

/* From the loop: what was moved here, or waits with no load to end. */
static void
files_serve(evutil_socket_t fd, short events, void *arg)
{
	struct files	*f = arg;

	(void)fd;
	(void)events;
	if (f->orphan) {
		if (f->loader == NULL)
			files_free(f);	/* else when its load ends */
		return;
	}
	if (f->loader == NULL)
		files_brief_flush(f);
	files_resume(f);
}

/* A load ended (on the loop): swap its set in, or keep its problems; then
 * wake those waiting for it, and load again if the files changed since. */
static void
files_load_done(struct loader_result *res, void *arg)
{
	struct files	*f = arg;
	size_t		 i;
	int		 asked = f->load_asked;
	int		 was_valid = f->loaded ? f->errors == NULL :
			    f->seed_valid;

	f->loader = NULL;
	f->done_seq = f->load_seq;
	f->fresh = 0;
	if (!res->unchanged) {
		json_decref(f->errors);
		f->errors = NULL;
		if (res->rs != NULL) {
			revset_unref(f->rs);
			f->rs = res->rs;
			res->rs = NULL;
			migset_clear(&f->seen);
			files_watch(f, &f->rs->set);
		} else {
			f->errors = json_array();
			for (i = 0; i < res->errs.n; i++)
				json_array_append_new(f->errors,
				    json_string(res->errs.v[i]));
			migset_clear(&f->seen);
			f->seen = res->seen;
			memset(&res->seen, 0, sizeof res->seen);
			files_watch(f, &f->seen);
		}
		if (asked) {	/* an explicit reload says them again */
			free(f->skipped_said);
			f->skipped_said = NULL;
		}
		files_say_skipped(f, f->errors == NULL ?
		    &f->rs->set.skipped : &f->seen.skipped);
		f->loaded = 1;
		files_recheck_arm(f);
		files_load_log(f, res, asked, was_valid);
	}
	files_brief_flush(f);
	if (f->orphan) {
		files_free(f);	/* nobody reads it any more */
		return;
	}
	if (f->again || f->stale)
		files_load(f, f->again_full);
	files_resume(f);
}

/* Starts a load on the loader's thread; prev (f's set, or another
 * reading's for a new set) gives the files whose stat is unchanged. */
static void
files_start(struct files *f, int full, struct revset *prev)
{
	struct revset_ctx	 ctx = { f->schemas, f->n_schemas,
				    f->version_schema, f->history_schema,
				    f->strict ? sqlscan_parser_version() : 0,
				    NULL, f->format };
	const struct migset	*check = NULL;
	int			 known;

	if (f->loader != NULL) {
		f->again = 1;
		f->again_full |= full;
		return;
	}
	if (f->inotify != -1)
		files_inotify_read(f->inotify, EV_READ, f);
	/* Known changes: status waits a moment for them (small loads end
	 * well within it), not for a mere check. */
	known = full || f->stale || !f->loaded;
	f->stale = 0;
	f->again = f->again_full = 0;
	if (!full && f->loaded && !files_seen_partial(f))
		check = f->errors == NULL ? &f->rs->set : &f->seen;
	f->loader = loader_start(f->table->base, f->directory, &ctx,
	    prev, check, files_load_done, f);
	if (f->loader == NULL) {
		f->stale = 1;	/* tried again at the next request */
		return;
	}
	f->load_seq++;
	f->load_known = known;
	f->load_t0 = migd_now();
	f->load_asked = f->ask_next;
	f->ask_next = 0;
}

/*
 * Starts loading the files on the loader's thread; full reads every file
 * whose stat changed (and reuses the rest), else the thread first stats
 * what the last load read and loads only if something differs.  A load
 * already running is followed by another (f->again).
 */
void
files_load(struct files *f, int full)
{
	files_start(f, full, f->rs);
}

/* An operator asked (SIGHUP, reload): every file whose stat changed is
 * read again, and the outcome logged. */
void
files_reload(struct files *f)
{
	f->ask_next = 1;
	if (f->loader != NULL) {
		f->again = f->again_full = 1;
		return;
	}
	files_load(f, 1);
}

/* SIGHUP and reload: every set read again, but skip (the asker's, read by
 * its reload request) and those that began their first load just now. */
void
files_table_reload(struct files_table *t, struct files *skip)
{
	struct files	*f;

	TAILQ_FOREACH(f, &t->all, entry) {
		if (f != skip && !f->fresh)
			files_reload(f);
		f->fresh = 0;
	}
}

/* Whether a load is running or none has finished yet. */
int
files_loading(struct files *f)
{
	return (f->loader != NULL || !f->loaded);
}

/* A change starts a load that the caller does not wait for. */
void
files_kick(struct files *f)
{
	/* Not after a partial read: the check every second sees to it. */
	if (f->loader == NULL && files_changed(f) && (f->stale || !f->loaded))
		files_load(f, 0);
}

/*
 * Whether the files as loaded can serve a request now.  A run (check) always
 * has them checked first (a stat of each file and directory, which sees what
 * inotify cannot: a symlink's target, a network filesystem); without
 * inotify, so does every request that uses them.
 */
int
files_ready(struct files *f, int check)
{
	return (!check && f->loader == NULL && f->inotify != -1 &&
	    !files_changed(f));
}

/* Calls fn(arg) on the loop once a load that starts after now has ended
 * (or the running one, when nothing changed since it started); owner is
 * the engine asking. */
void
files_wait(struct files *f, void *owner, int check, void (*fn)(void *),
    void *arg)
{
	struct files_waiter	*w;
	int			 changed = files_changed(f);

	w = xcalloc(1, sizeof *w);
	w->owner = owner;
	w->fn = fn;
	w->arg = arg;
	if (f->loader != NULL && (check || changed || f->inotify == -1)) {
		f->again = 1;
		w->seq = f->load_seq + 1;
	} else if (f->loader != NULL)
		w->seq = f->load_seq;
	else {
		files_load(f, 0);
		w->seq = f->load_seq;
		if (f->loader == NULL) {
			/* No thread: answer with the files as they are. */
			free(w);
			fn(arg);
			return;
		}
	}
	TAILQ_INSERT_TAIL(&f->waiters, w, entry);
}

/* The moment status waits for a load is over. */
static void
files_brief_timeout(evutil_socket_t fd, short events, void *arg)
{
	(void)fd;
	(void)events;
	files_brief_flush(arg);
}

/* Arms the moment's end: left seconds from now. */
static void
files_brief_arm(struct files *f, double left)
{
	struct timeval	 tv;

	if (left < 0)
		left = 0;
	if (f->brief_timer == NULL)
		f->brief_timer = evtimer_new(f->table->base,
		    files_brief_timeout, f);
	tv.tv_sec = (time_t)left;
	tv.tv_usec = (suseconds_t)((left - (double)tv.tv_sec) * 1e6);
	evtimer_add(f->brief_timer, &tv);
}

/*
 * Whether a status waits for the files: a load of known changes that began
 * less than MIGRATE_STATUS_LOAD_MS ago is waited for until then (a few files
 * load well within it, so an edit is seen at once), fn(arg) called when it
 * ends or the moment is over; a longer one is not, and status answers from
 * the files as loaded, with migrations.loading.
 */
int
files_brief(struct files *f, void *owner, void (*fn)(void *), void *arg)
{
	struct files_waiter	*w;
	double			 left;

	files_kick(f);
	if (f->loader == NULL || !f->load_known)
		return (0);
	left = f->load_t0 + MIGRATE_STATUS_LOAD_MS / 1000.0 - migd_now();
	if (left <= 0)
		return (0);
	w = xcalloc(1, sizeof *w);
	w->owner = owner;
	w->fn = fn;
	w->arg = arg;
	if (TAILQ_EMPTY(&f->brief))
		files_brief_arm(f, left);
	TAILQ_INSERT_TAIL(&f->brief, w, entry);
	return (1);
}

/* Removes arg's waiters from a list. */
static void
files_forget_in(struct files_waiters *list, void *arg)
{
	struct files_waiter	*w, *next;

	for (w = TAILQ_FIRST(list); w != NULL; w = next) {
		next = TAILQ_NEXT(w, entry);
		if (w->arg == arg) {
			TAILQ_REMOVE(list, w, entry);
			free(w);
		}
	}
}

/* Forgets what waits for the files on behalf of arg, which goes away: in
 * every set of the table, since its database may have moved to another
 * set while a set was calling its waiters. */
void
files_forget(struct files *in, void *arg)
{
	struct files	*f;

	TAILQ_FOREACH(f, &in->table->all, entry) {
		files_forget_in(&f->waiters, arg);
		files_forget_in(&f->resuming, arg);
		files_forget_in(&f->brief, arg);
		if (f->brief_now != NULL)
			files_forget_in(f->brief_now, arg);
	}
}

/*
 * Moves owner's waiters from one set to another (its database now reads
 * to): they wait for to's next load, and are served from the loop when it
 * runs none.
 */
void
files_move(struct files *from, struct files *to, void *owner)
{
	struct files_waiter	*w, *next;
	int			 moved = 0, brief = 0;

	for (w = TAILQ_FIRST(&from->waiters); w != NULL; w = next) {
		next = TAILQ_NEXT(w, entry);
		if (w->owner != owner)
			continue;
		TAILQ_REMOVE(&from->waiters, w, entry);
		TAILQ_INSERT_TAIL(&to->waiters, w, entry);
		moved = 1;
	}
	for (w = TAILQ_FIRST(&from->brief); w != NULL; w = next) {
		next = TAILQ_NEXT(w, entry);
		if (w->owner != owner)
			continue;
		TAILQ_REMOVE(&from->brief, w, entry);
		TAILQ_INSERT_TAIL(&to->brief, w, entry);
		brief = 1;
	}
	if (!moved && !brief)
		return;
	if (to->loader == NULL)
		files_load(to, 0);
	TAILQ_FOREACH(w, &to->waiters, entry) {
		if (w->owner == owner)
			w->seq = to->load_seq;
	}
	if (brief)
		files_brief_arm(to, to->loader == NULL ? 0 : to->load_t0 +
		    MIGRATE_STATUS_LOAD_MS / 1000.0 - migd_now());
	if (to->loader == NULL)
		event_active(to->serve_ev, 0, 0);
}
