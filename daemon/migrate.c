/*
 * The migration engine's entry points and its files.  A job runs one request
 * on one pool connection as a chain of asynchronous queries (job.c): read the
 * database's state, load and check the migration files (here), plan
 * (plan.c), and for mutating requests take the advisory lock, ensure the
 * schemas and run each step in its own transaction with its version-table
 * and history rows (run.c).  Mutating jobs run one at a time, in the order
 * they came; read-only jobs (report.c) run beside them on other connections.
 */
#include <sys/inotify.h>
#include <sys/queue.h>

#include <ctype.h>
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

static void	 migrate_inotify_read(evutil_socket_t fd, short events,
	    void *arg);
static void	 migrate_status_flush(struct engine *e);

/* Wall-clock seconds, for the history's timestamps. */
double
migrate_wall(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ((double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
}

/* A quoted, qualified name such as "public"."alembic_version". */
char *
migrate_qualify(const char *schema, const char *table)
{
	char	*s, *t, *q;

	s = sqlscan_quote_ident(schema);
	t = sqlscan_quote_ident(table);
	q = xprintf("%s.%s", s, t);
	free(s);
	free(t);
	return (q);
}

/* The advisory lock key: one per version table, shared by every migd. */
long long
migrate_lock_key(const struct config_db *cf)
{
	unsigned long long	 h = 14695981039346656037ULL;
	char			*name;
	const char		*p;

	name = xprintf("migd:%s.%s", cf->version_schema, cf->version_table);
	for (p = name; *p != '\0'; p++) {
		h ^= (unsigned char)*p;
		h *= 1099511628211ULL;
	}
	free(name);
	return ((long long)(h & 0x7fffffffffffffffULL));
}

void
dbstate_clear(struct dbstate *st)
{
	size_t	 i;

	for (i = 0; i < st->n_rows; i++)
		free(st->rows[i]);
	free(st->rows);
	for (i = 0; i < st->n_revs; i++) {
		free(st->revs[i].revision);
		free(st->revs[i].checksum);
	}
	free(st->revs);
	memset(st, 0, sizeof *st);
}

/* A copy of the history summary only (dst's revs are replaced). */
void
dbstate_copy_revs(struct dbstate *dst, const struct dbstate *src)
{
	size_t	 i;

	dst->revs = xcalloc(src->n_revs + 1, sizeof *dst->revs);
	for (i = 0; i < src->n_revs; i++) {
		dst->revs[i].revision = xstrdup(src->revs[i].revision);
		dst->revs[i].checksum = src->revs[i].checksum ?
		    xstrdup(src->revs[i].checksum) : NULL;
		dst->revs[i].dirty = src->revs[i].dirty;
		dst->revs[i].known = src->revs[i].known;
		dst->revs[i].ran = src->revs[i].ran;
	}
	dst->n_revs = src->n_revs;
}

/* A deep copy of what the database said. */
void
dbstate_copy(struct dbstate *dst, const struct dbstate *src)
{
	size_t	 i;

	memset(dst, 0, sizeof *dst);
	dst->has_version = src->has_version;
	dst->has_history = src->has_history;
	dst->rows = xcalloc(src->n_rows + 1, sizeof *dst->rows);
	for (i = 0; i < src->n_rows; i++)
		dst->rows[i] = xstrdup(src->rows[i]);
	dst->n_rows = src->n_rows;
	dbstate_copy_revs(dst, src);
}

static int
dbstate_cmp(const void *a, const void *b)
{
	return (strcmp(((const struct dbrev *)a)->revision,
	    ((const struct dbrev *)b)->revision));
}

/* Sorts the history summary once, so that lookups are logarithmic. */
void
dbstate_sort(struct dbstate *st)
{
	if (st->n_revs > 1)
		qsort(st->revs, st->n_revs, sizeof *st->revs, dbstate_cmp);
}

/* The history summary of one revision, or NULL (after dbstate_sort). */
const struct dbrev *
dbstate_rev(const struct dbstate *st, const char *revision)
{
	struct dbrev	 key;

	if (st->n_revs == 0)
		return (NULL);
	key.revision = (char *)revision;
	return (bsearch(&key, st->revs, st->n_revs, sizeof *st->revs,
	    dbstate_cmp));
}

/* Undoes the session settings of a bare step ("; RESET ..."). */
const char *
migrate_reset_sql(struct job *j)
{
	if (PQserverVersion(pool_conn_pg(j->pc)) >= 140000)
		return ("; RESET lock_timeout; RESET statement_timeout; "
		    "RESET client_connection_check_interval");
	return ("; RESET lock_timeout; RESET statement_timeout");
}


/* A change in the migrations tree: the files will be loaded again; a
 * watch that ended (its directory gone) is renewed after that load. */
static void
migrate_inotify_read(evutil_socket_t fd, short events, void *arg)
{
	struct engine			*e = arg;
	const struct inotify_event	*ev;
	char				 buf[4096]
	    __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t				 n, off;

	(void)events;
	while ((n = read(fd, buf, sizeof buf)) > 0) {
		e->stale = 1;
		for (off = 0; off + (ssize_t)sizeof *ev <= n;
		    off += (ssize_t)(sizeof *ev + ev->len)) {
			ev = (const struct inotify_event *)(void *)(buf + off);
			if (ev->mask & (IN_IGNORED | IN_Q_OVERFLOW))
				e->watch_lost = 1;
		}
	}
}

/* Forgets which directories inotify watches. */
static void
migrate_watched_clear(struct engine *e)
{
	size_t	 i;

	for (i = 0; i < e->n_watched; i++)
		free(e->watched[i]);
	free(e->watched);
	free(e->watched_sigs);
	e->watched = NULL;
	e->watched_sigs = NULL;
	e->n_watched = 0;
}

/* Whether set's directories are those watched, each the same directory
 * (device and inode): their watches stand. */
static int
migrate_watched_same(const struct engine *e, const struct migset *set)
{
	size_t	 i;

	if (e->n_watched != set->n_dirs)
		return (0);
	for (i = 0; i < set->n_dirs; i++) {
		if (strcmp(e->watched[i], set->dirs[i]) != 0 ||
		    e->watched_sigs[i].dev != set->dir_sigs[i].dev ||
		    e->watched_sigs[i].ino != set->dir_sigs[i].ino)
			return (0);
	}
	return (1);
}

/* The connected server's version, or 0 before the first connection: SQL the
 * parser refuses is judged against it. */
int
migrate_server_version(struct engine *e)
{
	PGconn	*pg = pool_any_connection(e->db->pool);

	return (pg != NULL ? PQserverVersion(pg) : 0);
}

/* Whether the server the files were judged against (valid or not: SQL the
 * parser refuses is an error only against its own version) is another one
 * now. */
static int
migrate_server_changed(struct engine *e)
{
	int	 v = migrate_server_version(e);

	return (e->loaded && v != 0 && e->judged_version != v);
}

/* Whether the last load was refused without reading everything (the
 * directory missing, a file unreadable): nothing to watch or to stat, so it
 * is read again whenever asked, as before. */
static int
migrate_seen_partial(struct engine *e)
{
	return (e->loaded && e->errors != NULL &&
	    (e->seen.n_dirs == 0 || e->seen.incomplete));
}

/* Whether the files may have changed since the last load (inotify events
 * are drained first, so an edit made just before a request is seen). */
int
migrate_files_changed(struct engine *e)
{
	if (e->inotify != -1)
		migrate_inotify_read(e->inotify, EV_READ, e);
	return (e->stale || !e->loaded || migrate_server_changed(e) ||
	    migrate_seen_partial(e));
}

/* Without inotify: a look at the files every second, off the loop. */
static void
migrate_recheck(evutil_socket_t fd, short events, void *arg)
{
	struct engine	*e = arg;

	(void)fd;
	(void)events;
	if (e->loader == NULL && (e->inotify == -1 ||
	    migrate_seen_partial(e)))
		migrate_load_start(e, 0);
}

/* The check every second runs while inotify cannot vouch for the files:
 * unavailable, or nothing to watch after a partial read. */
static void
migrate_recheck_arm(struct engine *e)
{
	struct timeval	 tv = { 1, 0 };

	if (e->inotify == -1 || migrate_seen_partial(e)) {
		if (e->recheck == NULL) {
			e->recheck = event_new(e->db->base, -1, EV_PERSIST,
			    migrate_recheck, e);
			event_add(e->recheck, &tv);
		}
	} else if (e->recheck != NULL) {
		event_free(e->recheck);
		e->recheck = NULL;
	}
}

/* Why inotify cannot watch, or NULL; MIGD_TEST_NO_INOTIFY (a test hook)
 * makes it unavailable as a user's exhausted instances would. */
static int
migrate_inotify_init(void)
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
migrate_watch(struct engine *e, const struct migset *set)
{
	const uint32_t	 mask = IN_CREATE | IN_DELETE | IN_MODIFY |
			    IN_MOVED_FROM | IN_MOVED_TO | IN_CLOSE_WRITE |
			    IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF;
	const char	*why = NULL;
	size_t		 i;
	int		 fd;

	/* Events seen while the files were read stay seen. */
	if (e->inotify != -1)
		migrate_inotify_read(e->inotify, EV_READ, e);
	/* The same directories, none lost: the watches stand (a reload of
	 * diesel's 1000 migration directories added 1000 again). */
	if (e->inotify != -1 && !e->watch_lost &&
	    migrate_watched_same(e, set))
		return;
	migrate_watched_clear(e);
	e->watch_lost = 0;
	if (e->inotify_ev != NULL) {
		event_free(e->inotify_ev);
		e->inotify_ev = NULL;
	}
	if (e->inotify != -1)
		close(e->inotify);
	e->inotify = -1;
	if ((fd = migrate_inotify_init()) == -1)
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
		if (!e->no_inotify)
			log_warnx("cannot watch the migration files (%s; "
			    "fs.inotify.max_user_instances or "
			    "max_user_watches may be used up): migd checks "
			    "them for changes every second and before each "
			    "request that uses them, with a stat of each file",
			    why);
		e->no_inotify = 1;
		free((char *)why);
		return;
	}
	if (e->no_inotify)
		log_info("watching the migration files with inotify again");
	e->no_inotify = 0;
	e->inotify = fd;
	e->watched = xcalloc(set->n_dirs + 1, sizeof *e->watched);
	e->watched_sigs = xcalloc(set->n_dirs + 1, sizeof *e->watched_sigs);
	for (i = 0; i < set->n_dirs; i++) {
		e->watched[i] = xstrdup(set->dirs[i]);
		e->watched_sigs[i] = set->dir_sigs[i];
	}
	e->n_watched = set->n_dirs;
	e->inotify_ev = event_new(e->db->base, e->inotify,
	    EV_READ | EV_PERSIST, migrate_inotify_read, e);
	event_add(e->inotify_ev, NULL);
}

/* Logs what the files' load did not read, and why: once, not at every
 * load (any change to the files loads them again). */
static void
migrate_say_skipped(struct engine *e, const struct errlist *skipped)
{
	char	*all;
	size_t	 i;

	all = errlist_join(skipped, "\n");
	if (e->skipped_said == NULL || strcmp(all,
	    e->skipped_said) != 0) {
		for (i = 0; i < skipped->n; i++)
			log_warnx("%s", skipped->v[i]);
	}
	free(e->skipped_said);
	e->skipped_said = all;
}

/* Logs what a load found, when an operator asked for it (start, SIGHUP,
 * reload) or it changed whether the files are valid. */
static void
migrate_load_log(struct engine *e, const struct loader_result *res,
    int asked, int was_valid)
{
	struct revset	*rs = e->rs;
	size_t		*heads, n;

	if (e->errors != NULL) {
		if (!asked && !was_valid)
			return;
		log_warnx("%smigrations in %s are invalid (%zu problems); "
		    "nothing will run until they are fixed", e->db->tag,
		    e->db->cf->directory, json_array_size(e->errors));
		for (n = 0; n < json_array_size(e->errors); n++)
			log_warnx("%s", json_string_value(json_array_get(
			    e->errors, n)));
		return;
	}
	if (!asked && was_valid) {
		log_debug("migration files loaded again in %.3f s (%zu of %zu "
		    "unchanged)", res->seconds, res->reused, revset_count(rs));
		return;
	}
	n = graph_heads(rs->graph, &heads);
	log_info("%sloaded %zu revisions from %s, %zu head%s%s%s (%.3f s)",
	    e->db->tag, revset_count(rs), e->db->cf->directory, n,
	    n == 1 ? "" : "s",
	    n == 1 ? ": " : "", n == 1 ? graph_id(rs->graph, heads[0]) : "",
	    res->seconds);
	if (rs->set.format > LAYOUT_MIGD)
		log_info("the files in %s are read as %s migrations%s",
		    e->db->cf->directory, layout_name((enum layout_format)
		    rs->set.format), e->db->cf->format == LAYOUT_AUTO ?
		    " (format = auto detected them)" : "");
	free(heads);
}

/* A load ended (on the loop): swap its set in, or keep its problems; then
 * wake those waiting for it, and load again if the files changed since. */
static void
migrate_load_done(struct loader_result *res, void *arg)
{
	struct engine		*e = arg;
	struct migrate_waiter	*w, *next;
	size_t			 i;
	int			 asked = e->load_asked;
	int			 was_valid = e->loaded &&
				    e->errors == NULL;

	e->loader = NULL;
	e->done_seq = e->load_seq;
	if (!res->unchanged) {
		json_decref(e->errors);
		e->errors = NULL;
		if (res->rs != NULL) {
			revset_unref(e->rs);
			e->rs = res->rs;
			res->rs = NULL;
			migset_clear(&e->seen);
			migrate_watch(e, &e->rs->set);
		} else {
			e->errors = json_array();
			for (i = 0; i < res->errs.n; i++)
				json_array_append_new(e->errors,
				    json_string(res->errs.v[i]));
			migset_clear(&e->seen);
			e->seen = res->seen;
			memset(&res->seen, 0, sizeof res->seen);
			migrate_watch(e, &e->seen);
		}
		if (asked) {	/* an explicit reload says them again */
			free(e->skipped_said);
			e->skipped_said = NULL;
		}
		migrate_say_skipped(e, e->errors == NULL ?
		    &e->rs->set.skipped : &e->seen.skipped);
		e->loaded = 1;
		e->judged_version = e->load_version;
		migrate_recheck_arm(e);
		migrate_load_log(e, res, asked, was_valid);
	}
	migrate_status_flush(e);
	if (e->again || e->stale || migrate_server_changed(e))
		migrate_load_start(e, e->again_full ||
		    migrate_server_changed(e));
	/* Those served, all of them when no other load could start, move to
	 * a list of their own first: a callback may end another waiter's job,
	 * which migrate_files_forget then finds there. */
	for (w = TAILQ_FIRST(&e->waiters); w != NULL; w = next) {
		next = TAILQ_NEXT(w, entry);
		if (w->seq > e->done_seq && e->loader != NULL)
			continue;
		TAILQ_REMOVE(&e->waiters, w, entry);
		TAILQ_INSERT_TAIL(&e->resuming, w, entry);
	}
	while ((w = TAILQ_FIRST(&e->resuming)) != NULL) {
		TAILQ_REMOVE(&e->resuming, w, entry);
		w->fn(w->arg);
		free(w);
	}
}

/*
 * Starts loading the files on the loader's thread; full reads every file
 * whose stat changed (and reuses the rest), else the thread first stats
 * what the last load read and loads only if something differs.  A load
 * already running is followed by another (e->again).
 */
void
migrate_load_start(struct engine *e, int full)
{
	const struct config_db	*cf = e->db->cf;
	struct revset_ctx	 ctx = { cf->schemas, cf->n_schemas,
				    cf->version_schema, cf->history_schema,
				    migrate_server_version(e), NULL,
				    cf->format };
	const struct migset	*check = NULL;
	int			 known;

	if (e->loader != NULL) {
		e->again = 1;
		e->again_full |= full;
		return;
	}
	if (e->inotify != -1)
		migrate_inotify_read(e->inotify, EV_READ, e);
	/* Known changes: status waits a moment for them (small loads end
	 * well within it), not for a mere check. */
	known = full || e->stale || !e->loaded ||
	    migrate_server_changed(e);
	e->stale = 0;
	e->again = e->again_full = 0;
	if (!full && e->loaded && !migrate_server_changed(e) &&
	    !migrate_seen_partial(e))
		check = e->errors == NULL ? &e->rs->set :
		    &e->seen;
	e->loader = loader_start(e->db->base, cf->directory, &ctx,
	    e->rs, check, migrate_load_done, e);
	if (e->loader == NULL) {
		e->stale = 1;	/* tried again at the next request */
		return;
	}
	e->load_seq++;
	e->load_known = known;
	e->load_version = ctx.server_version;
	e->load_t0 = migd_now();
	e->load_asked = e->ask_next;
	e->ask_next = 0;
}

/* Answers the status requests that waited for a load. */
static void
migrate_status_flush(struct engine *e)
{
	struct job	**v = e->status_waiting;
	size_t		  i, n = e->n_status_waiting;

	if (e->status_timer != NULL)
		evtimer_del(e->status_timer);
	e->status_waiting = NULL;
	e->n_status_waiting = 0;
	for (i = 0; i < n; i++) {
		migrate_status_reply(v[i], 0);
		job_end(v[i], NULL);
	}
	free(v);
}

/* The moment status waits for a load is over. */
static void
migrate_status_timeout(evutil_socket_t fd, short events, void *arg)
{
	struct engine	*e = arg;

	(void)fd;
	(void)events;
	migrate_status_flush(e);
}

/*
 * Whether status j waits for the files: a load of known changes that began
 * less than MIGRATE_STATUS_LOAD_MS ago is waited for until then (a few files
 * load well within it, so an edit is seen at once); a longer one is not,
 * and status answers from the files as loaded, with migrations.loading.
 */
int
migrate_status_wait(struct job *j)
{
	struct engine	*e = j->e;
	struct timeval	 tv;
	double		 left;

	migrate_files_kick(e);
	if (e->loader == NULL || !e->load_known)
		return (0);
	left = e->load_t0 + MIGRATE_STATUS_LOAD_MS / 1000.0 -
	    migd_now();
	if (left <= 0)
		return (0);
	e->status_waiting = xreallocarray(e->status_waiting,
	    e->n_status_waiting + 1, sizeof *e->status_waiting);
	e->status_waiting[e->n_status_waiting++] = j;
	if (e->status_timer == NULL)
		e->status_timer = evtimer_new(e->db->base,
		    migrate_status_timeout, e);
	if (e->n_status_waiting == 1) {
		tv.tv_sec = (time_t)left;
		tv.tv_usec = (suseconds_t)((left - (double)tv.tv_sec) * 1e6);
		evtimer_add(e->status_timer, &tv);
	}
	return (1);
}

/* Status answers from the files as loaded; a change starts a load that it
 * does not wait for. */
void
migrate_files_kick(struct engine *e)
{
	/* Not after a partial read: the check every second sees to it. */
	if (e->loader == NULL && migrate_files_changed(e) &&
	    (e->stale || !e->loaded || migrate_server_changed(e)))
		migrate_load_start(e, migrate_server_changed(e));
}

/* Whether a load is running or none has finished yet. */
int
migrate_files_loading(struct engine *e)
{
	return (e->loader != NULL || !e->loaded);
}

/*
 * Whether the files as loaded can serve a request now.  A run (check) always
 * has them checked first (a stat of each file and directory, which sees what
 * inotify cannot: a symlink's target, a network filesystem); without
 * inotify, so does every request that uses them.
 */
int
migrate_files_ready(struct engine *e, int check)
{
	return (!check && e->loader == NULL && e->inotify != -1 &&
	    !migrate_files_changed(e));
}

/* Calls fn(arg) on the loop once a load that starts after now has ended
 * (or the running one, when nothing changed since it started). */
void
migrate_files_wait(struct engine *e, int check, void (*fn)(void *),
    void *arg)
{
	struct migrate_waiter	*w;
	int			 changed = migrate_files_changed(e);

	w = xcalloc(1, sizeof *w);
	w->fn = fn;
	w->arg = arg;
	if (e->loader != NULL && (check || changed ||
	    e->inotify == -1)) {
		e->again = 1;
		e->again_full |= migrate_server_changed(e);
		w->seq = e->load_seq + 1;
	} else if (e->loader != NULL)
		w->seq = e->load_seq;
	else {
		migrate_load_start(e, migrate_server_changed(e));
		w->seq = e->load_seq;
		if (e->loader == NULL) {
			/* No thread: answer with the files as they are. */
			free(w);
			fn(arg);
			return;
		}
	}
	TAILQ_INSERT_TAIL(&e->waiters, w, entry);
}

/* Forgets what waits for the files on behalf of arg, which goes away. */
void
migrate_files_forget(struct engine *e, void *arg)
{
	struct migrate_waiter	*w, *next;
	size_t			 i, k;

	for (w = TAILQ_FIRST(&e->waiters); w != NULL; w = next) {
		next = TAILQ_NEXT(w, entry);
		if (w->arg == arg) {
			TAILQ_REMOVE(&e->waiters, w, entry);
			free(w);
		}
	}
	for (w = TAILQ_FIRST(&e->resuming); w != NULL; w = next) {
		next = TAILQ_NEXT(w, entry);
		if (w->arg == arg) {
			TAILQ_REMOVE(&e->resuming, w, entry);
			free(w);
		}
	}
	for (i = k = 0; i < e->n_status_waiting; i++) {
		if (e->status_waiting[i] != arg)
			e->status_waiting[k++] = e->status_waiting[i];
	}
	e->n_status_waiting = k;
}

/* reload answers once the files are read again. */
static void
migrate_reload_answer(void *arg)
{
	struct request	*req = arg;
	struct engine	*e = req->db->engine;
	char		*cause;

	if (e->errors != NULL) {
		cause = migrate_errors_message(e->errors);
		cmd_error(req, MIGD_ERR_MIGRATIONS, "invalid_migrations",
		    json_pack("{s:O}", "errors", e->errors), "%s", cause);
		free(cause);
		return;
	}
	cmd_reply(req, json_pack("{s:o}", "migrations",
	    migrate_files_status(req->db)));
}

/* Re-reads the files for SIGHUP (req NULL) and reload (answered when they
 * are read): every file whose stat changed, off the loop; the outcome is
 * logged. */
void
migrate_reload(struct database *db, struct request *req)
{
	struct engine	*e = db->engine;

	e->ask_next = 1;
	if (e->loader != NULL) {
		e->again = e->again_full = 1;
		if (req != NULL)
			migrate_files_wait(e, 1, migrate_reload_answer, req);
		return;
	}
	migrate_load_start(e, 1);
	if (req != NULL)
		migrate_files_wait(e, 0, migrate_reload_answer, req);
}

/* What follows the first of n problems in a one-line message (to free):
 * how many more there are; data has them all. */
char *
migrate_more(size_t n)
{
	if (n <= 1)
		return (xstrdup(""));
	return (xprintf(" (and %zu more problem%s)", n - 1, n == 2 ? "" :
	    "s"));
}

/* The one-line message of invalid files: the first problem, and how many
 * more there are (data.errors has them all). */
char *
migrate_errors_message(json_t *errors)
{
	char	*more, *msg;

	more = migrate_more(json_array_size(errors));
	msg = xprintf("%s%s", json_string_value(json_array_get(errors, 0)),
	    more);
	free(more);
	return (msg);
}

/* The files' part of status: count, heads, problems.  With problems, the
 * count and heads are the last valid set's, and say so (stale). */
json_t *
migrate_files_status(struct database *db)
{
	struct engine	*e = db->engine;
	json_t	*o, *heads;
	size_t	*idx, n, i;

	o = json_pack("{s:s, s:b}", "directory", e->db->cf->directory,
	    "loading", migrate_files_loading(e));
	if (!e->loaded)
		return (o);	/* nothing read yet */
	if (e->errors != NULL) {
		json_object_set(o, "errors", e->errors);
		json_object_set_new(o, "valid", json_false());
	} else
		json_object_set_new(o, "valid", json_true());
	if (e->rs != NULL) {
		json_object_set_new(o, "stale", json_boolean(e->errors !=
		    NULL));
		json_object_set_new(o, "revisions",
		    json_integer((json_int_t)revset_count(e->rs)));
		if (e->rs->set.format > LAYOUT_AUTO)
			json_object_set_new(o, "format", json_string(
			    layout_name(e->rs->set.format)));
		heads = json_array();
		n = graph_heads(e->rs->graph, &idx);
		for (i = 0; i < n; i++)
			json_array_append_new(heads, json_string(graph_id(
			    e->rs->graph, idx[i])));
		free(idx);
		json_object_set_new(o, "heads", heads);
	}
	return (o);
}


/* Takes a request: read-only ones run now, mutating ones queue. */
void
migrate_start(struct request *req, enum migrate_op op)
{
	struct database	*db = req->db;
	struct engine	*e = db->engine;
	struct job	*j;
	json_t		*p = req->rpc.params;
	const char	*s;
	size_t		 pos = 0;

	if (op == MIGRATE_STATUS && e->status_leader != NULL) {
		/* A status still waiting for a connection answers this one too:
		 * it has read nothing yet, so its answer is as fresh. */
		j = e->status_leader;
		j->joined = xreallocarray(j->joined, j->n_joined + 1,
		    sizeof *j->joined);
		j->joined[j->n_joined++] = req;
		return;
	}
	j = xcalloc(1, sizeof *j);
	TAILQ_INSERT_TAIL(&e->all, j, all);
	j->db = db;
	j->e = e;
	j->req = req;
	j->op = op;
	j->limit = 50;
	if ((s = json_string_value(json_object_get(p, "target"))) != NULL ||
	    (s = json_string_value(json_object_get(p, "revision"))) != NULL)
		j->target = xstrdup(s);
	else if (op == MIGRATE_UPGRADE || op == MIGRATE_PLAN)
		j->target = xstrdup("head");
	if (op == MIGRATE_STAMP) {
		stamp_targets(j, json_object_get(p, "revision"));
		j->purge = json_is_true(json_object_get(p, "purge"));
	}
	if ((s = json_string_value(json_object_get(p, "state"))) != NULL)
		j->resolve_as = xstrdup(s);
	if (op == MIGRATE_LINT) {
		j->lint_ask = json_incref(json_object_get(p, "revisions"));
		j->lint_all = json_is_true(json_object_get(p, "all"));
	} else if (json_is_array(json_object_get(p, "revisions")))
		j->accept = json_incref(json_object_get(p, "revisions"));
	if (op == MIGRATE_ADOPT && (s = json_string_value(json_object_get(p,
	    "from"))) != NULL) {
		enum layout_format	 fmt;

		if (layout_parse_name(s, &fmt) != 0 || fmt == LAYOUT_MIGD) {
			job_free(j);
			cmd_error(req, MIGD_ERR_INVALID_PARAMS,
			    "invalid_params", NULL, "adopt --from '%.40s': "
			    "unknown tool; one of auto, dbmate, golang-migrate, "
			    "sqlx, diesel, goose, flyway", s);
			return;
		}
		j->adopt_from = xstrdup(s);
		j->adopt_fmt = (int)fmt;
	}
	j->dry_run = json_is_true(json_object_get(p, "dry_run"));
	j->allow_drift = json_is_true(json_object_get(p, "allow_drift"));
	j->apply_skipped = json_is_true(json_object_get(p, "apply_skipped"));
	/* The configured default unless the request says. */
	j->atomic = json_object_get(p, "atomic") != NULL ?
	    json_is_true(json_object_get(p, "atomic")) : e->db->cf->atomic;
	if (json_is_integer(json_object_get(p, "limit")))
		j->limit = (long)json_integer_value(json_object_get(p,
		    "limit"));
	if (j->limit < 1 || j->limit > 100000) {
		job_free(j);
		cmd_error(req, MIGD_ERR_INVALID_PARAMS, "invalid_params", NULL,
		    "limit must be from 1 to 100000");
		return;
	}
	j->mutating = op == MIGRATE_UPGRADE || op == MIGRATE_DOWNGRADE ||
	    op == MIGRATE_STAMP || op == MIGRATE_RESOLVE ||
	    op == MIGRATE_ACCEPT || op == MIGRATE_ADOPT;
	if (j->mutating && j->dry_run)
		j->mutating = 0;
	if (!j->mutating) {
		if (op == MIGRATE_STATUS)
			e->status_leader = j;
		job_read_state(j);
		return;
	}
	if (e->draining) {
		job_free(j);
		cmd_error(req, MIGD_ERR_SHUTTING_DOWN, "shutting_down", NULL,
		    "migd is shutting down");
		return;
	}
	TAILQ_INSERT_TAIL(&e->queue, j, entry);
	if (TAILQ_FIRST(&e->queue) == j) {
		job_read_state(j);
		return;
	}
	TAILQ_FOREACH(j, &e->queue, entry)
		pos++;
	j = TAILQ_LAST(&e->queue, jobs);
	run_notify(j, "queued", json_pack("{s:I}", "position",
	    (json_int_t)pos - 1));
}

/*
 * SIGTERM: queued runs are refused, so is whatever still waits for a
 * connection; a run holding its lock finishes its current step.
 */
void
migrate_shutdown(struct database *db)
{
	struct engine	*e = db->engine;
	struct job	*j, *first = TAILQ_FIRST(&e->queue), *next;

	e->draining = 1;
	if (first != NULL) {
		for (j = TAILQ_NEXT(first, entry); j != NULL; j = next) {
			next = TAILQ_NEXT(j, entry);
			TAILQ_REMOVE(&e->queue, j, entry);
			j->mutating = 0;
			job_set_error(j, MIGD_ERR_SHUTTING_DOWN,
			    "shutting_down", NULL, "migd is shutting down: "
			    "this request did not start");
			job_reply(j);
		}
	}
	for (j = TAILQ_FIRST(&e->all); j != NULL; j = next) {
		next = TAILQ_NEXT(j, all);
		if (j->waiter != NULL && !j->recording)
			job_fail(j, MIGD_ERR_SHUTTING_DOWN, "shutting_down",
			    NULL, "migd is shutting down: no connection to "
			    "PostgreSQL yet; nothing ran");
		else if (run_retry_waiting(j))
			run_retry_stop(j);	/* between lock retries */
	}
}

int
migrate_busy(struct database *db)
{
	struct engine	*e = db->engine;

	return (!TAILQ_EMPTY(&e->queue));
}

/* A new database's engine: nothing loaded yet; the first load starts. */
void
migrate_engine_init(struct engine *e, struct database *db)
{
	e->db = db;
	TAILQ_INIT(&e->queue);
	TAILQ_INIT(&e->waiters);
	TAILQ_INIT(&e->resuming);
	TAILQ_INIT(&e->all);
	e->inotify = -1;
	if (gethostname(e->host, sizeof e->host) != 0)
		strncpy(e->host, "unknown", sizeof e->host - 1);
	e->host[sizeof e->host - 1] = '\0';
	/* On the loader's thread: the socket answers while a big file loads. */
	migrate_reload(db, NULL);
}

/* Frees what an engine holds (its jobs have ended). */
void
migrate_engine_clear(struct engine *e)
{
	struct migrate_waiter	*w;

	loader_free(e->loader);
	e->loader = NULL;
	while ((w = TAILQ_FIRST(&e->waiters)) != NULL) {
		TAILQ_REMOVE(&e->waiters, w, entry);
		free(w);
	}
	if (e->recheck != NULL)
		event_free(e->recheck);
	if (e->status_timer != NULL)
		event_free(e->status_timer);
	free(e->status_waiting);
	migset_clear(&e->seen);
	if (e->inotify_ev != NULL)
		event_free(e->inotify_ev);
	if (e->inotify != -1)
		close(e->inotify);
	migrate_watched_clear(e);
	revset_unref(e->rs);
	e->rs = NULL;
	json_decref(e->errors);
	dbstate_clear(&e->last_db);
	dbstate_clear(&e->hist_cache);
	free(e->hist_key);
	free(e->skipped_said);
	e->skipped_said = NULL;
}
