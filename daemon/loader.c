/*
 * Loading the migration files off the event loop.  One thread per load
 * reads and parses the files into a new revision set while the loop goes on
 * answering from the previous one; the thread then writes a byte to a pipe,
 * and the loop joins it and hands the result to its callback, which swaps
 * the set in.
 *
 * Ownership: everything the thread touches is the load's (struct loader)
 * until the join.  The loop takes, before the thread starts, a reference to
 * the previous set and one to each of its files (the cache); the thread only
 * reads them and moves the references of files it reuses into the new set.
 * The loop's own references (its revset's refcount) are never touched by the
 * thread, so no counter is shared between threads.  What the thread stats
 * first (check) is the previous set's, or what the last refused load read,
 * which the loop replaces only after the join.
 */
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#ifdef HAVE_MALLOC_TRIM
#include <malloc.h>
#endif

#include "migd.h"
#include "loader.h"

/* Linux gives each thread its own nice value. */
#define LOADER_NICE	10

struct loader {
	struct event_base	*base;
	pthread_t		 thread;
	int			 started;
	int			 pipe[2];
	struct event		*ev;
	/* the thread's input: copies, or references the loop took */
	char			*dir;
	struct revset_ctx	 ctx;
	struct revset		*prev;		/* may be NULL */
	const struct migset	*check;		/* stat this first, or NULL */
	struct migcache		 cache;
	/* its output */
	struct loader_result	 res;
	loader_done		 done;
	void			*arg;
};

/* Seconds on a monotonic clock. */
static double
loader_now(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
}

/* The thread: a stat of what was read last (when asked), else a load. */
static void *
loader_main(void *arg)
{
	struct loader	*l = arg;
	double		 t0 = loader_now();

	/* Below the event loop: on a busy machine, answers come first. */
	setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), LOADER_NICE);

	if (l->check != NULL && !l->check->incomplete &&
	    migset_unchanged(l->check))
		l->res.unchanged = 1;
	else {
		revset_load_from(l->dir, &l->ctx, l->prev, &l->cache,
		    &l->res.rs, &l->res.seen, &l->res.errs);
		/* libpg_query's memory contexts are per thread, freed when
		 * it exits (a destructor of its own). */
		l->res.reused = l->cache.taken;
	}
	l->res.seconds = loader_now() - t0;
	while (write(l->pipe[1], "", 1) == -1 && errno == EINTR)
		;
	return (NULL);
}

/* The thread is done: join it and hand its result over, on the loop. */
static void
loader_finished(evutil_socket_t fd, short events, void *arg)
{
	struct loader	*l = arg;
	char		 c;
	int		 loaded;

	(void)events;
	if (read(fd, &c, 1) != 1)
		return;
	pthread_join(l->thread, NULL);
	l->started = 0;
	/* The callback takes what it keeps; the load is over and ends here,
	 * after it, not inside it. */
	l->done(&l->res, l->arg);
	loaded = !l->res.unchanged;
	loader_free(l);
#ifdef HAVE_MALLOC_TRIM
	/* What the parser and the previous set used goes back to the system:
	 * glibc keeps freed memory of other threads' arenas otherwise. */
	if (loaded)
		malloc_trim(0);
#endif
}

/*
 * Starts loading dir on a thread; done(result, arg) runs on the loop when it
 * ends, after which the load frees itself (loader_free is for one that has
 * not ended, at exit).  prev (may be NULL) is the
 * set in use: its unchanged files are reused.  With check, the thread first
 * stats what check lists (the files and directories last read), and when
 * nothing differs answers unchanged without loading.  Returns NULL when no
 * thread could be started.
 */
struct loader *
loader_start(struct event_base *base, const char *dir,
    const struct revset_ctx *ctx, struct revset *prev,
    const struct migset *check, loader_done done, void *arg)
{
	struct loader	*l;
	size_t		 i;

	l = xcalloc(1, sizeof *l);
	l->base = base;
	l->done = done;
	l->arg = arg;
	l->dir = xstrdup(dir);
	/* A SIGHUP may free the configuration while the thread runs. */
	l->ctx.n_schemas = ctx->n_schemas;
	l->ctx.schemas = xcalloc(ctx->n_schemas + 1, sizeof *l->ctx.schemas);
	for (i = 0; i < ctx->n_schemas; i++)
		((char **)l->ctx.schemas)[i] = xstrdup(ctx->schemas[i]);
	l->ctx.version_schema = ctx->version_schema != NULL ?
	    xstrdup(ctx->version_schema) : NULL;
	l->ctx.history_schema = ctx->history_schema != NULL ?
	    xstrdup(ctx->history_schema) : NULL;
	l->ctx.server_version = ctx->server_version;
	l->ctx.format = ctx->format;
	if (prev != NULL) {
		l->prev = revset_ref(prev);
		migcache_init(&l->cache, prev->set.files, prev->set.n);
	}
	l->check = check;
	l->pipe[0] = l->pipe[1] = -1;
	if (pipe2(l->pipe, O_CLOEXEC) == -1) {
		log_warn("cannot load the migration files: pipe");
		loader_free(l);
		return (NULL);
	}
	l->ev = event_new(base, l->pipe[0], EV_READ, loader_finished, l);
	event_add(l->ev, NULL);
	if ((errno = pthread_create(&l->thread, NULL, loader_main, l)) != 0) {
		log_warn("cannot load the migration files: pthread_create");
		loader_free(l);
		return (NULL);
	}
	l->started = 1;
	return (l);
}

/* Frees a load; one still running is waited for (at exit only). */
void
loader_free(struct loader *l)
{
	size_t	 i;

	if (l == NULL)
		return;
	if (l->started)
		pthread_join(l->thread, NULL);
	if (l->ev != NULL)
		event_free(l->ev);
	if (l->pipe[0] != -1)
		close(l->pipe[0]);
	if (l->pipe[1] != -1)
		close(l->pipe[1]);
	loader_result_clear(&l->res);
	migcache_clear(&l->cache);
	revset_unref(l->prev);
	for (i = 0; i < l->ctx.n_schemas; i++)
		free(((char **)l->ctx.schemas)[i]);
	free((char **)l->ctx.schemas);
	free((char *)l->ctx.version_schema);
	free((char *)l->ctx.history_schema);
	free(l->dir);
	free(l);
}

/* Frees what a result still holds (a callback takes what it keeps). */
void
loader_result_clear(struct loader_result *r)
{
	revset_unref(r->rs);
	r->rs = NULL;
	errlist_clear(&r->errs);
	migset_clear(&r->seen);
}
