/*
 * Loads a migrations directory: finds *.sql files, checks and parses them.
 * The walk (listing, subdirectories, links) is serial; the files it finds
 * are opened, stat'ed, read and parsed on several threads at once
 * (parallel_each), as jobs that touch only their own slots; their results
 * join the set on this thread, each problem where the walk met the file.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "layout.h"
#include "migfile.h"
#include "util.h"

/* getdents64's buffer: a directory of a few thousand entries in one call. */
#define MIGDIR_DENTS	(64 * 1024)
/* Directories whose walk ended kept open for their files' jobs: the
 * migrations directory's own walk reads them all at this many, and any
 * directory whose walk ends at MIGDIR_HELD_MAX reads its own at once. */
#define MIGDIR_HELD	64
#define MIGDIR_HELD_MAX	256

/* What a job reads. */
enum migdir_kind {
	MIGDIR_JOB_FILE,	/* a migration file */
	MIGDIR_JOB_META,	/* a listed diesel migration's metadata.toml */
	MIGDIR_JOB_DIESEL	/* format = diesel: a migration's directory,
				   its files by name */
};

/* One file as a job read it. */
struct migdir_got {
	struct migfile	*mf;		/* to files (lr 0) or broken, or NULL */
	int		 lr;		/* layout_file's answer */
	ssize_t		 cached;	/* migcache_find's, or -1 */
	int		 missing;	/* an optional file that is not there */
};

/*
 * A file (or a diesel migration's directory) the walk found, read by a
 * worker: what it was given, then what came of it, which joins the set
 * on the walk's thread.  Its messages go where the walk met it: before
 * the err_at'th message of the walk's list, and of set->skipped.
 */
struct migdir_job {
	enum migdir_kind kind;
	int		 dfd;		/* the directory it is in */
	char		*path;		/* as messages say it */
	const char	*name;		/* under dfd: path's last part */
	size_t		 err_at, skip_at;
	ssize_t		 meta;		/* a listed diesel directory's file:
					   its metadata.toml's job, or -1 */
	int		 diesel;	/* such a file: meta decides its tx */
	/* The worker's: */
	struct errlist	 errs;
	struct errlist	 skipped;
	struct migdir_got got[2];	/* the file; diesel's up.sql, down.sql */
	int		 notx;		/* metadata.toml: 1, 0, -1 unread */
	char		*extra;		/* metadata.toml opened, to watch */
	struct migsig	 extra_sig;
	int		 dir_read;	/* diesel: its directory, to watch */
	struct migsig	 dir_sig;
	int		 relist;	/* diesel: to be listed after all (2
					   once that found a broken file) */
};

/* The jobs not read yet, and the directories they are in. */
struct migdir_batch {
	struct migdir_job *jobs;
	size_t		 n, size;
	int		*held;		/* directories whose walk ended */
	size_t		 n_held, size_held;
	int		 depth;		/* of the walk that reads them all */
};

/* What one walk needs beside the set: the layout, what to reuse, and the
 * buffers every directory of the walk shares.  Workers read only cache,
 * format, rootlen and euid. */
struct migdir_walker {
	struct migcache		*cache;
	enum layout_format	 format;
	size_t			 rootlen;	/* names under the root */
	uid_t			 euid;		/* who may own what is read */
	char			*path;		/* the entry being visited */
	size_t			 pathsize;
	char			*dents;		/* MIGDIR_DENTS bytes */
	struct migdir_batch	*batch;
	int			 in_meta;	/* inside a diesel directory that
						   has its jobs' tx to settle */
	void			(*between)(void *);	/* tests: before reads */
	void			*between_arg;
};

/* One directory's entries: "<d_type><name>\0" each, in one block, and
 * pointers to them in name order. */
struct migdir_list {
	char		*block;
	size_t		 len;
	char		**v;
	size_t		 n;
};

static void	migdir_sig(const struct stat *, struct migsig *);

/* Only *.sql files are migrations; README, backups and the like are not. */
static int
migdir_is_sql(const char *name)
{
	size_t	 len = strlen(name);

	return (len > 4 && strcmp(name + len - 4, ".sql") == 0);
}

/* A name someone may have meant as a migration: *.sql in any case. */
static int
migdir_sqlish(const char *name)
{
	size_t	 len = strlen(name);

	return (len > 4 && strcasecmp(name + len - 4, ".sql") == 0);
}

/* Says why an entry that may have been meant as migrations is not read. */
static void
migdir_skip(struct migset *set, const char *path, const char *why)
{
	errlist_add(&set->skipped, "%s: skipped: %s", path, why);
}

/* Names are visited in order so errors come out the same way every run. */
static int
migdir_cmp_name(const void *a, const void *b)
{
	return (strcmp(*(char *const *)a + 1, *(char *const *)b + 1));
}

/* The set is ordered by path, independent of the directory's own order. */
static int
migdir_cmp_file(const void *a, const void *b)
{
	const struct migfile	*fa = *(struct migfile *const *)a;
	const struct migfile	*fb = *(struct migfile *const *)b;

	return (strcmp(fa->path, fb->path));
}

/* The walker's path becomes the directory at len plus name; returns the
 * new length.  Messages name files as the user configured the directory. */
static size_t
migdir_enter(struct migdir_walker *w, size_t len, const char *name)
{
	size_t	 nlen = strlen(name), sep;

	sep = len > 0 && w->path[len - 1] != '/';
	if (len + sep + nlen + 1 > w->pathsize) {
		w->pathsize = (len + sep + nlen + 1) * 2;
		w->path = xrealloc(w->path, w->pathsize);
	}
	if (sep)
		w->path[len] = '/';
	memcpy(w->path + len + sep, name, nlen + 1);
	return (len + sep + nlen);
}

/* Opens a file of the walk for reading: a regular file migd may trust,
 * within the size limit.  Returns the fd with *st filled, -1 (said in
 * errs), or -2 for an optional file that is not there. */
static int
migdir_open(int dfd, const char *name, const char *path, const char *what,
    int optional, uid_t euid, struct stat *st, struct errlist *errs)
{
	int	 fd;

	/* O_NONBLOCK: a FIFO swapped in after the listing must not hang us. */
	fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd == -1) {
		if (optional && errno == ENOENT)
			return (-2);
		errlist_add(errs, "%s: %s", path, strerror(errno));
		return (-1);
	}
	if (fstat(fd, st) == -1) {
		errlist_add(errs, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st->st_mode)) {
		errlist_add(errs, "%s: not a regular file", path);
		goto fail;
	}
	if (!path_trusted_by(st, euid, path, what, errs))
		goto fail;
	if (st->st_size > MIGFILE_MAX_SIZE) {
		errlist_add(errs, "%s: file too large (the limit is %d MiB)",
		    path, MIGFILE_MAX_SIZE / (1024 * 1024));
		goto fail;
	}
	return (fd);
fail:
	close(fd);
	return (-1);
}

/* Reads fd to EOF into *buf (of *bufsize bytes, grown as needed; the file
 * may change size under us: with a cap); *len gets its length.  Returns 0,
 * or -1 said in errs. */
static int
migdir_read(int fd, const struct stat *st, const char *path, char **buf,
    size_t *bufsize, size_t *len, struct errlist *errs)
{
	size_t	 want = (size_t)st->st_size + 1;
	ssize_t	 r;

	*len = 0;
	if (*bufsize < want) {
		/* What stat says, and one byte to see the end: a job's buffer
		 * is its own, freed after it. */
		*bufsize = want;
		*buf = xrealloc(*buf, *bufsize);
	}
	for (;;) {
		if (*len == *bufsize) {
			if (*bufsize > MIGFILE_MAX_SIZE)
				goto toolarge;
			*bufsize = *bufsize * 2 > (size_t)MIGFILE_MAX_SIZE +
			    1 ? (size_t)MIGFILE_MAX_SIZE + 1 : *bufsize * 2;
			*buf = xrealloc(*buf, *bufsize);
		}
		r = read(fd, *buf + *len, *bufsize - *len);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			errlist_add(errs, "%s: %s", path, strerror(errno));
			return (-1);
		}
		if (r == 0)
			break;
		*len += (size_t)r;
		/* All stat said, and less than asked: the end, without a
		 * read more (growth after the stat shows in the file's sig). */
		if (*len == (size_t)st->st_size && *len < *bufsize)
			break;
	}
	if (*len > MIGFILE_MAX_SIZE)
		goto toolarge;
	return (0);
toolarge:
	errlist_add(errs, "%s: file too large (the limit is %d MiB)", path,
	    MIGFILE_MAX_SIZE / (1024 * 1024));
	return (-1);
}

/* Keeps what identifies one version of a file or directory. */
static void
migdir_sig(const struct stat *st, struct migsig *sig)
{
	memset(sig, 0, sizeof *sig);
	sig->dev = (unsigned long long)st->st_dev;
	sig->ino = (unsigned long long)st->st_ino;
	sig->size = (unsigned long long)st->st_size;
	sig->mtime_sec = (long long)st->st_mtim.tv_sec;
	sig->mtime_nsec = (long long)st->st_mtim.tv_nsec;
	sig->ctime_sec = (long long)st->st_ctim.tv_sec;
	sig->ctime_nsec = (long long)st->st_ctim.tv_nsec;
}

/* Whether path is still the file or directory sig describes. */
static int
migdir_same(const char *path, const struct migsig *sig)
{
	struct stat	 st;
	struct migsig	 now;

	if (stat(path, &st) != 0)
		return (0);
	migdir_sig(&st, &now);
	return (memcmp(&now, sig, sizeof now) == 0);
}

/*
 * Whether every file and directory of the set is still the one that was
 * read: a stat of each, which also sees what inotify cannot (a symlink's
 * target, a network filesystem).  A new or removed file changes its
 * directory's mtime.
 */
int
migset_unchanged(const struct migset *set)
{
	size_t	 i;

	for (i = 0; i < set->n_dirs; i++) {
		if (!migdir_same(set->dirs[i], &set->dir_sigs[i]))
			return (0);
	}
	for (i = 0; i < set->n_extra; i++) {
		if (!migdir_same(set->extra[i], &set->extra_sigs[i]))
			return (0);
	}
	for (i = 0; i < set->n; i++) {
		if (!migdir_same(set->files[i]->path, &set->files[i]->sig))
			return (0);
		if (set->files[i]->down_path != NULL &&
		    !migdir_same(set->files[i]->down_path,
		    &set->files[i]->down_sig))
			return (0);
	}
	return (1);
}

/*
 * Lists a directory with getdents64 into the walker's buffer (no DIR, no
 * stat: the type the kernel gives comes along), "." and ".." left out.
 * Names that are not UTF-8 and end in .sql are said at dirpath and left
 * out.  Returns 0, or -1 with errno set (l keeps what was listed).
 */
static int
migdir_list(int dfd, struct migdir_walker *w, struct migdir_list *l,
    const char *dirpath, struct errlist *errs)
{
	struct dirent64	*de;
	size_t		 size = 256, cap = 8, off, nlen, i;
	size_t		*offs;
	ssize_t		 nr;
	int		 rv = 0, saved = 0;

	memset(l, 0, sizeof *l);
	l->block = xmalloc(size);
	offs = xcalloc(cap, sizeof *offs);
	for (;;) {
		nr = getdents64(dfd, w->dents, MIGDIR_DENTS);
		if (nr == -1 && errno == EINTR)
			continue;
		if (nr <= 0) {
			rv = nr == 0 ? 0 : -1;
			saved = errno;
			break;
		}
		for (off = 0; off < (size_t)nr; off += de->d_reclen) {
			de = (struct dirent64 *)(void *)(w->dents + off);
			if (de->d_name[0] == '.' && (de->d_name[1] == '\0' ||
			    (de->d_name[1] == '.' && de->d_name[2] == '\0')))
				continue;
			nlen = strlen(de->d_name);
			if (de->d_name[0] != '.' && utf8_valid_prefix(
			    de->d_name, nlen) != nlen &&
			    migdir_is_sql(de->d_name)) {
				errlist_add(errs, "%s/?: a file name that is "
				    "not valid UTF-8; rename it", dirpath);
				continue;
			}
			if (l->len + nlen + 2 > size) {
				size = (l->len + nlen + 2) * 2;
				l->block = xrealloc(l->block, size);
			}
			if (l->n == cap) {
				cap *= 2;
				offs = xreallocarray(offs, cap, sizeof *offs);
			}
			offs[l->n++] = l->len;
			l->block[l->len] = (char)de->d_type;
			memcpy(l->block + l->len + 1, de->d_name, nlen + 1);
			l->len += nlen + 2;
		}
	}
	/* The block is complete: pointers into it, in name order. */
	l->v = xcalloc(l->n + 1, sizeof *l->v);
	for (i = 0; i < l->n; i++)
		l->v[i] = l->block + offs[i];
	free(offs);
	if (l->n > 1)
		qsort(l->v, l->n, sizeof *l->v, migdir_cmp_name);
	errno = saved;
	return (rv);
}

/* Whether the directory at rel (under the root) is a diesel migration's
 * whose metadata.toml this walk reads. */
static int
migdir_diesel_meta(const struct migdir_walker *w, const char *rel)
{
	if (strchr(rel, '/') != NULL || *rel == '\0')
		return (0);
	return (w->format == LAYOUT_DIESEL || (w->format == LAYOUT_AUTO &&
	    layout_diesel_dir(rel, strlen(rel))));
}

/* A diesel file's transaction is its directory's metadata.toml's word; a
 * file the last load read counts as changed when that word changed. */
static void
migdir_diesel_tx(struct migfile *mf, int notx)
{
	enum migfile_tx	 tx = notx ? MIGFILE_TX_NONE : MIGFILE_TX_AUTO;

	if (mf->layout != LAYOUT_DIESEL)
		return;
	if (mf->reused && mf->piece != LAYOUT_PIECE_DOWN && mf->tx != tx)
		mf->reused = 0;
	mf->tx = tx;
}

/* Adds path (taken over) and its sig to a list of what to watch, grown by
 * doubling: diesel keeps a directory per migration, thousands of them. */
static void
migdir_watch(char ***v, struct migsig **sigs, size_t *n, size_t *size,
    char *path, const struct migsig *sig)
{
	if (*n == *size) {
		*size = *size ? *size * 2 : 16;
		*v = xreallocarray(*v, *size, sizeof **v);
		*sigs = xreallocarray(*sigs, *size, sizeof **sigs);
	}
	(*sigs)[*n] = *sig;
	(*v)[(*n)++] = path;
}

/* Keeps a directory the walk visits, as it is now, to watch. */
static char *
migdir_add_dir(struct migset *set, const struct stat *st, const char *path)
{
	struct migsig	 sig;

	migdir_sig(st, &sig);
	migdir_watch(&set->dirs, &set->dir_sigs, &set->n_dirs,
	    &set->size_dirs, xstrdup(path), &sig);
	return (set->dirs[set->n_dirs - 1]);
}

/* What the workers of one batch share: the walker, read only. */
struct migdir_work {
	const struct migdir_walker	*w;
	struct migdir_job		*jobs;
};

static void	migdir_walk(struct migset *, struct errlist *, int,
		    const struct stat *, size_t, int, struct migdir_walker *);
static void	migdir_subdir(struct migset *, struct errlist *, int,
		    const char *, size_t, int, struct migdir_walker *);

/*
 * Reads one file on a worker; anyone able to write it could run SQL as us.
 * An optional file (diesel's, by name) may be missing.  Touches only g and
 * j's lists; the cache is only looked at (migcache_find, migcache_piece).
 */
static void
migdir_get(const struct migdir_walker *w, int dfd, const char *name,
    const char *path, int optional, struct migdir_got *g,
    struct migdir_job *j, char **buf, size_t *bufsize)
{
	struct stat	 st;
	struct migsig	 sig;
	char		*skip = NULL;
	size_t		 len;
	int		 fd;

	g->cached = -1;
	if ((fd = migdir_open(dfd, name, path, "migrations file", optional,
	    w->euid, &st, &j->errs)) < 0) {
		g->missing = fd == -2;
		return;
	}
	/* The same file, unchanged since an earlier load: not read again.
	 * Only migd's own files are shared (taken when the job joins the
	 * set): none when the configuration now names another tool's. */
	migdir_sig(&st, &sig);
	if (w->format <= LAYOUT_MIGD &&
	    (g->cached = migcache_find(w->cache, path, &sig)) >= 0)
		goto out;
	/* Another tool's file: what the last load read of it, copied (its
	 * parents are its neighbours', settled when the set is assembled). */
	if ((g->mf = migcache_piece(w->cache, path, &sig, w->format)) != NULL)
		goto out;
	if (migdir_read(fd, &st, path, buf, bufsize, &len, &j->errs) != 0)
		goto out;
	/* A whole-file section keeps the buffer (the job reads its next
	 * file into a new one). */
	g->lr = layout_file_buf(w->format, path, path + w->rootlen, buf, len,
	    &g->mf, &skip, &j->errs);
	if (*buf == NULL)
		*bufsize = 0;
	if (g->mf != NULL) {
		g->mf->read_as = (unsigned char)w->format;
		g->mf->first = g->mf->layout;
		/* As it was before reading: a change during the read shows. */
		g->mf->sig = sig;
	}
	if (g->lr == 1) {
		errlist_add(&j->skipped, "%s: skipped: %s", path, skip);
		free(skip);
	}
out:
	close(fd);
}

/* Reads a diesel migration's metadata.toml on a worker: j->notx 1 when it
 * says the migration runs outside a transaction, 0 when not, -1 on a
 * problem (in j->errs).  Its stat is kept to watch, like the files'. */
static void
migdir_get_meta(const struct migdir_walker *w, int dfd, const char *name,
    const char *path, int optional, struct migdir_job *j, char **buf,
    size_t *bufsize)
{
	struct stat	 st;
	size_t		 len;
	int		 fd, notx;

	if ((fd = migdir_open(dfd, name, path, "migrations file", optional,
	    w->euid, &st, &j->errs)) < 0)
		return;
	j->extra = xstrdup(path);
	migdir_sig(&st, &j->extra_sig);
	if (migdir_read(fd, &st, path, buf, bufsize, &len, &j->errs) == 0 &&
	    layout_diesel_meta(path, *buf, len, &notx, &j->errs) == 0)
		j->notx = notx;
	close(fd);
}

/*
 * format = diesel: a migration's directory read on a worker as diesel
 * reads it, by name: up.sql, down.sql, metadata.toml, without listing it
 * (a third of the system calls of a diesel directory went to that).
 * Checked as a listed one is: a real directory (not followed if a link),
 * trusted, kept to watch.  Sets j->relist when it must be listed after
 * all: it has no up.sql, holds directories (to be said skipped), or its
 * link count says nothing (btrfs).
 */
static void
migdir_get_diesel(const struct migdir_walker *w, struct migdir_job *j,
    char **buf, size_t *bufsize)
{
	static const char *const files[] = {
		"up.sql", "down.sql", "metadata.toml"
	};
	struct stat	 st, fst;
	char		*path, *rel;
	size_t		 i, len = strlen(j->path);

	if (fstatat(j->dfd, j->name, &st, AT_SYMLINK_NOFOLLOW) == -1) {
		errlist_add(&j->errs, "%s: %s", j->path, strerror(errno));
		return;
	}
	if (!S_ISDIR(st.st_mode) || st.st_nlink != 2) {
		j->relist = 1;
		return;
	}
	if (!path_trusted_by(&st, w->euid, j->path, "migrations directory",
	    &j->errs))
		return;
	/* PATH/FILE, shown; NAME/FILE, its end, opened under dfd. */
	path = xmalloc(len + sizeof "/metadata.toml");
	memcpy(path, j->path, len);
	path[len] = '/';
	rel = path + (j->name - j->path);
	for (i = 0; i < nitems(files); i++) {
		memcpy(path + len + 1, files[i], strlen(files[i]) + 1);
		if (i < 2)
			migdir_get(w, j->dfd, rel, path, 1, &j->got[i], j, buf,
			    bufsize);
		/* Mostly absent: a stat says so for half an open. */
		else if (fstatat(j->dfd, rel, &fst, 0) == 0 || errno != ENOENT)
			migdir_get_meta(w, j->dfd, rel, path, 1, j, buf,
			    bufsize);
		/* No up.sql: listed, so that what is there (Up.sql,
		 * up.sql.txt) is said, as without format = diesel. */
		if (i == 0 && j->got[0].missing) {
			j->relist = 1;
			free(path);
			return;
		}
	}
	free(path);
	/* As stat saw it before its files were read. */
	j->dir_read = 1;
	migdir_sig(&st, &j->dir_sig);
}

/* A worker's part: one job, in its own buffer. */
static void
migdir_work(void *arg, size_t i)
{
	struct migdir_work	*k = arg;
	struct migdir_job	*j = &k->jobs[i];
	char			*buf = NULL;
	size_t			 bufsize = 0;

	switch (j->kind) {
	case MIGDIR_JOB_FILE:
		migdir_get(k->w, j->dfd, j->name, j->path, 0, &j->got[0], j,
		    &buf, &bufsize);
		break;
	case MIGDIR_JOB_META:
		migdir_get_meta(k->w, j->dfd, j->name, j->path, 0, j, &buf,
		    &bufsize);
		break;
	case MIGDIR_JOB_DIESEL:
		migdir_get_diesel(k->w, j, &buf, &bufsize);
		break;
	}
	free(buf);
}

/* A job for the walk's next flush: the file at name under dfd, shown as
 * path; its messages will go where the walk is now.  Returns its index. */
static size_t
migdir_queue(struct migdir_walker *w, struct migset *set,
    struct errlist *errs, enum migdir_kind kind, int dfd, const char *name,
    const char *path)
{
	struct migdir_batch	*b = w->batch;
	struct migdir_job	*j;

	if (b->n == b->size) {
		b->size = b->size ? b->size * 2 : 64;
		b->jobs = xreallocarray(b->jobs, b->size, sizeof *b->jobs);
	}
	j = &b->jobs[b->n];
	memset(j, 0, sizeof *j);
	j->kind = kind;
	j->dfd = dfd;
	j->path = xstrdup(path);
	j->name = j->path + strlen(path) - strlen(name);
	j->err_at = errs->n;
	j->skip_at = set->skipped.n;
	j->meta = -1;
	j->notx = -1;
	j->got[0].cached = j->got[1].cached = -1;
	return (b->n++);
}

/* Moves the jobs' messages (errs, or skipped) into to, each job's before
 * the message that was at its place when the walk met its file. */
static void
migdir_splice(struct errlist *to, struct migdir_job *jobs, size_t n,
    int skipped)
{
	struct errlist	*from;
	char		**v;
	size_t		 total = 0, i = 0, k, m = 0, x, at;

	for (k = 0; k < n; k++)
		total += skipped ? jobs[k].skipped.n : jobs[k].errs.n;
	if (total == 0)
		return;
	v = xcalloc(to->n + total + 1, sizeof *v);
	for (k = 0; k < n; k++) {
		from = skipped ? &jobs[k].skipped : &jobs[k].errs;
		at = skipped ? jobs[k].skip_at : jobs[k].err_at;
		while (i < at && i < to->n)
			v[m++] = to->v[i++];
		for (x = 0; x < from->n; x++)
			v[m++] = from->v[x];
		free(from->v);
		from->v = NULL;
		from->n = 0;
	}
	while (i < to->n)
		v[m++] = to->v[i++];
	free(to->v);
	to->v = v;
	to->n = m;
}

/* A file a job read joins the set (room made by the caller): the valid
 * ones, or those with problems whose SQL can still be checked in this pass
 * (auto may yet find such a file a migd file with no problem:
 * layout_assemble).  Returns 1 for such a broken one. */
static int
migdir_put(struct migset *set, struct migcache *cache, struct migdir_got *g,
    int diesel, int notx)
{
	struct migfile	*mf;

	if (g->cached >= 0) {
		g->mf = migcache_take_at(cache, (size_t)g->cached);
		g->lr = 0;
	}
	if ((mf = g->mf) == NULL)
		return (0);
	g->mf = NULL;
	/* diesel's run_in_transaction = false: its up and down alike (as
	 * metadata.toml says now, also for a file the last load read). */
	if (diesel)
		migdir_diesel_tx(mf, notx);
	if (g->lr == 0) {
		set->files[set->n++] = mf;
		return (0);
	}
	set->broken[set->n_broken++] = mf;
	return (1);
}

/* A diesel migration's directory that must be listed after all: walked
 * now, with a batch of its own, its messages and skips the job's. */
static void
migdir_relist(struct migdir_walker *w, struct migset *set,
    struct migdir_job *j)
{
	struct migdir_batch	 sub, *outer = w->batch;
	struct errlist		 skipped = set->skipped;
	char			*saved = xstrdup(w->path);
	size_t			 len = strlen(j->path);

	memset(&sub, 0, sizeof sub);
	sub.depth = 1;
	w->batch = &sub;
	memset(&set->skipped, 0, sizeof set->skipped);
	if (len + 1 > w->pathsize) {
		w->pathsize = (len + 1) * 2;
		w->path = xrealloc(w->path, w->pathsize);
	}
	memcpy(w->path, j->path, len + 1);
	migdir_subdir(set, &j->errs, j->dfd, j->name, len, 1, w);
	j->skipped = set->skipped;
	set->skipped = skipped;
	w->batch = outer;
	free(sub.jobs);
	free(sub.held);
	memcpy(w->path, saved, strlen(saved) + 1);
	free(saved);
}

/*
 * Reads the jobs from j0 on, several at once, then joins them to the set
 * in the walk's order, their messages where the walk met them, and closes
 * the directories held from h0 on.  What a relisted diesel directory
 * holds is walked here, on this thread.
 */
static void
migdir_flush(struct migdir_walker *w, struct migset *set,
    struct errlist *errs, size_t j0, size_t h0)
{
	struct migdir_batch	*b = w->batch;
	struct migdir_work	 k;
	struct migdir_job	*j;
	size_t			 i, nb, nf;
	int			 notx, diesel;

	if (w->between != NULL && b->n > j0)
		w->between(w->between_arg);
	k.w = w;
	k.jobs = b->jobs + j0;
	parallel_each(b->n - j0, migdir_work, &k);
	/* The directories to list after all first: their walks add to the
	 * set (their messages become the job's). */
	for (i = j0; i < b->n; i++) {
		j = &b->jobs[i];
		if (!j->relist)
			continue;
		nb = set->n_broken;
		migdir_relist(w, set, j);
		j->relist = set->n_broken != nb ? 2 : 1;
	}
	/* Room for every file read, at once. */
	for (i = j0, nf = 0; i < b->n; i++)
		nf += (b->jobs[i].got[0].mf != NULL ||
		    b->jobs[i].got[0].cached >= 0) +
		    (b->jobs[i].got[1].mf != NULL);
	if (nf > 0) {
		set->files = xreallocarray(set->files, set->n + nf + 1,
		    sizeof *set->files);
		set->broken = xreallocarray(set->broken, set->n_broken + nf +
		    1, sizeof *set->broken);
	}
	for (i = j0; i < b->n; i++) {
		j = &b->jobs[i];
		nb = set->n_broken;
		if (j->extra != NULL) {
			migdir_watch(&set->extra, &set->extra_sigs,
			    &set->n_extra, &set->size_extra, j->extra,
			    &j->extra_sig);
			j->extra = NULL;
		}
		diesel = j->kind == MIGDIR_JOB_DIESEL || j->diesel;
		if (j->kind == MIGDIR_JOB_DIESEL)
			notx = j->notx == 1;
		else
			notx = j->meta >= 0 && b->jobs[j->meta].notx == 1;
		migdir_put(set, w->cache, &j->got[0], diesel, notx);
		migdir_put(set, w->cache, &j->got[1], diesel, notx);
		if (j->dir_read) {
			migdir_watch(&set->dirs, &set->dir_sigs, &set->n_dirs,
			    &set->size_dirs, j->path, &j->dir_sig);
			j->path = NULL;
		}
		/* A problem that left no file to check, not even a broken
		 * one: something that might define a revision was not read. */
		if (j->errs.n != 0 && set->n_broken == nb && j->relist != 2)
			set->incomplete = 1;
	}
	migdir_splice(errs, b->jobs + j0, b->n - j0, 0);
	migdir_splice(&set->skipped, b->jobs + j0, b->n - j0, 1);
	for (i = j0; i < b->n; i++)
		free(b->jobs[i].path);
	b->n = j0;
	for (i = h0; i < b->n_held; i++)
		close(b->held[i]);
	b->n_held = h0;
}

/* A subdirectory (name under dfd, its path at w->path[0..len)): a real
 * one migd may trust, walked. */
static void
migdir_subdir(struct migset *set, struct errlist *errs, int dfd,
    const char *name, size_t len, int depth, struct migdir_walker *w)
{
	struct stat	 st;
	int		 cfd;

	cfd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (cfd == -1) {
		errlist_add(errs, "%s: %s", w->path, strerror(errno));
		return;
	}
	if (fstat(cfd, &st) == -1) {
		errlist_add(errs, "%s: %s", w->path, strerror(errno));
		close(cfd);
		return;
	}
	if (!path_trusted_by(&st, w->euid, w->path, "migrations directory",
	    errs)) {
		close(cfd);
		return;
	}
	migdir_walk(set, errs, cfd, &st, len, depth, w);
}

/*
 * Visits the directory at w->path[0..len); takes ownership of dfd.  depth:
 * 0 for the migrations directory.  Its files become jobs; the walk that
 * owns the batch reads them (between its entries when it holds enough
 * directories, and at its end), and so does a walk that ends with too many
 * held; otherwise dfd stays open, held, until they are read.
 */
static void
migdir_walk(struct migset *set, struct errlist *errs, int dfd,
    const struct stat *dst, size_t len, int depth, struct migdir_walker *w)
{
	struct migdir_batch	*b = w->batch;
	struct migdir_list	 l;
	struct stat		 st;
	const char		*name;
	char			*dirpath;
	size_t			 i, before, nb, j0 = b->n, h0 = b->n_held;
	size_t			 plen;
	ssize_t			 metajob = -1;
	int			 meta;

	w->path[len] = '\0';
	before = errs->n;
	dirpath = migdir_add_dir(set, dst, w->path);
	if (migdir_list(dfd, w, &l, dirpath, errs) != 0)
		errlist_add(errs, "%s: %s", dirpath, strerror(errno));
	if (errs->n != before)
		set->incomplete = 1;	/* entries that were not listed */
	meta = depth == 1 && migdir_diesel_meta(w, w->path + w->rootlen);
	w->in_meta += meta;

	for (i = 0; i < l.n; i++) {
		/* Between entries of the walk that owns the batch, no
		 * entry's count runs: its files so far can be read. */
		if (depth == b->depth && b->n_held >= MIGDIR_HELD &&
		    !w->in_meta)
			migdir_flush(w, set, errs, j0, h0);
		/* A problem that left no file to check, not even a broken
		 * one: something that might define a revision was not read. */
		before = errs->n;
		nb = set->n_broken;
		name = l.v[i] + 1;
		plen = migdir_enter(w, len, name);
		if (name[0] == '.') {
			/* Hidden, as in every tool; said for *.sql (not for
			 * Emacs's .#name lock links). */
			if (migdir_sqlish(name) && name[1] != '#')
				migdir_skip(set, w->path, "a hidden file (its "
				    "name starts with '.'); rename it to run "
				    "it");
			goto next;
		}
		/* diesel's metadata.toml, behind a link too (as by name). */
		if (meta && strcmp(name, "metadata.toml") == 0) {
			metajob = (ssize_t)migdir_queue(w, set, errs,
			    MIGDIR_JOB_META, dfd, name, w->path);
			goto next;
		}
		/* The type the listing gives, first: a regular file or a
		 * directory needs no fstatat of its own (what is opened is
		 * checked on its fd, and O_NOFOLLOW keeps a directory one). */
		if ((unsigned char)l.v[i][0] == DT_REG)
			st.st_mode = S_IFREG;
		else if ((unsigned char)l.v[i][0] == DT_DIR)
			st.st_mode = S_IFDIR;
		else if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == -1) {
			errlist_add(errs, "%s: %s", w->path, strerror(errno));
			goto next;
		}
		if (S_ISLNK(st.st_mode)) {
			/* Files behind links are read; linked dirs may loop. */
			if (fstatat(dfd, name, &st, 0) == -1) {
				/* A dangling README link is nothing to us. */
				if (migdir_is_sql(name))
					errlist_add(errs, "%s: %s", w->path,
					    strerror(errno));
				goto next;
			}
			if (S_ISDIR(st.st_mode)) {
				migdir_skip(set, w->path, "a symbolic link to "
				    "a directory (migd does not follow them: "
				    "they may loop); move the directory here, "
				    "or link its files one by one");
				goto next;
			}
			if (!migdir_is_sql(name)) {
				if (migdir_sqlish(name))
					goto sqlcase;
				goto next;
			}
		} else if (S_ISDIR(st.st_mode)) {
			/* format = diesel: read by name, listed only if
			 * the job finds it must be (migdir_relist). */
			if (depth == 0 && w->format == LAYOUT_DIESEL &&
			    layout_diesel_dir(name, strlen(name)))
				(void)migdir_queue(w, set, errs,
				    MIGDIR_JOB_DIESEL, dfd, name, w->path);
			else
				migdir_subdir(set, errs, dfd, name, plen,
				    depth + 1, w);
			goto next;
		} else if (!migdir_is_sql(name) && !(depth == 0 &&
		    (w->format == LAYOUT_GOOSE || w->format == LAYOUT_AUTO) &&
		    layout_goose_go(name))) {
			if (migdir_sqlish(name) && S_ISREG(st.st_mode))
				goto sqlcase;
			goto next;
		}

		/* Devices and FIFOs named *.sql are not opened at all. */
		if (!S_ISREG(st.st_mode))
			errlist_add(errs, "%s: not a regular file", w->path);
		else
			(void)migdir_queue(w, set, errs, MIGDIR_JOB_FILE, dfd,
			    name, w->path);
		goto next;
sqlcase:
		migdir_skip(set, w->path, "only names ending in .sql, in lower "
		    "case, are migrations; rename it to run it");
next:
		if (errs->n != before && set->n_broken == nb)
			set->incomplete = 1;
	}
	/* diesel's run_in_transaction: metadata.toml's word for every file
	 * of the directory, when they join the set (no read before). */
	for (i = j0; meta && i < b->n; i++) {
		b->jobs[i].diesel = 1;
		b->jobs[i].meta = metajob;
	}
	w->in_meta -= meta;
	free(l.v);
	free(l.block);
	if (depth == b->depth || (b->n_held >= MIGDIR_HELD_MAX &&
	    !w->in_meta)) {
		migdir_flush(w, set, errs, j0, h0);
		close(dfd);
	} else if (b->n > j0) {
		if (b->n_held == b->size_held) {
			b->size_held = b->size_held ? b->size_held * 2 : 16;
			b->held = xreallocarray(b->held, b->size_held,
			    sizeof *b->held);
		}
		b->held[b->n_held++] = dfd;
	} else
		close(dfd);
}

/* All or nothing: any error in any file means no migration may run. */
int
migdir_load(const char *dir, struct migset *out, struct errlist *errs)
{
	if (migdir_scan(dir, out, errs) != 0) {
		migset_clear(out);
		return (-1);
	}
	return (0);
}

/* Reads everything it can, so that one pass reports every problem; on
 * error the caller checks what was read, then clears it. */
int
migdir_scan(const char *dir, struct migset *out, struct errlist *errs)
{
	return (migdir_scan_cached(dir, out, errs, NULL));
}

/* migdir_scan, taking unchanged files from cache (may be NULL) unread. */
int
migdir_scan_cached(const char *dir, struct migset *out, struct errlist *errs,
    struct migcache *cache)
{
	return (migdir_scan_format(dir, LAYOUT_AUTO, out, errs, cache));
}

/* migdir_scan_cached reading the files as format (enum layout_format). */
int
migdir_scan_format(const char *dir, int format, struct migset *out,
    struct errlist *errs, struct migcache *cache)
{
	return (migdir_scan_between(dir, format, out, errs, cache, NULL,
	    NULL));
}

/* migdir_scan_format calling between(arg), when not NULL, after each walk
 * and before the files it found are read: tests change the files there. */
int
migdir_scan_between(const char *dir, int format, struct migset *out,
    struct errlist *errs, struct migcache *cache, void (*between)(void *),
    void *arg)
{
	struct migdir_walker	 w;
	struct migdir_batch	 batch;
	struct stat		 st;
	size_t			 nerrs = errs->n, len, i;
	int			 fd, f;

	memset(out, 0, sizeof *out);
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		errlist_add(errs, "%s: cannot open migrations directory: %s",
		    dir, strerror(errno));
		return (-1);
	}
	if (fstat(fd, &st) == -1) {
		errlist_add(errs, "%s: cannot open migrations directory: %s",
		    dir, strerror(errno));
		close(fd);
		return (-1);
	}
	if (!path_trusted(&st, dir, "migrations directory", errs)) {
		close(fd);
		return (-1);
	}
	memset(&w, 0, sizeof w);
	memset(&batch, 0, sizeof batch);
	w.cache = cache;
	w.format = (enum layout_format)format;
	w.euid = geteuid();
	w.batch = &batch;
	w.between = between;
	w.between_arg = arg;
	len = strlen(dir);
	w.rootlen = len + (len > 0 && dir[len - 1] != '/');
	w.pathsize = len + 256;
	w.path = xmalloc(w.pathsize);
	memcpy(w.path, dir, len + 1);
	w.dents = xmalloc(MIGDIR_DENTS);
	migdir_walk(out, errs, fd, &st, len, 0, &w);
	free(batch.jobs);
	free(batch.held);
	free(w.path);
	free(w.dents);
	/* Other tools' files: joined up and down, chained in their order. */
	f = layout_assemble(w.format, dir, out, errs);
	out->format = f >= 0 ? f : format;
	/* Another tool's migrations the last load read, both files unchanged,
	 * count as reused like migd's own files. */
	for (i = 0; cache != NULL && i < out->n; i++)
		cache->taken += out->files[i]->reused == 1;

	/* layout_assemble leaves another tool's files sorted by path. */
	if (out->n > 0 && f <= LAYOUT_MIGD)
		sort_runs(out->files, out->n, sizeof *out->files,
		    migdir_cmp_file);
	if (out->n_broken > 0)
		sort_runs(out->broken, out->n_broken, sizeof *out->broken,
		    migdir_cmp_file);
	return (errs->n != nerrs ? -1 : 0);
}

/* Leaves the set empty and reusable. */
void
migset_clear(struct migset *set)
{
	size_t	 i;

	for (i = 0; i < set->n; i++)
		migfile_free(set->files[i]);
	free(set->files);
	for (i = 0; i < set->n_broken; i++)
		migfile_free(set->broken[i]);
	free(set->broken);
	for (i = 0; i < set->n_dirs; i++)
		free(set->dirs[i]);
	free(set->dirs);
	free(set->dir_sigs);
	for (i = 0; i < set->n_extra; i++)
		free(set->extra[i]);
	free(set->extra);
	free(set->extra_sigs);
	errlist_clear(&set->skipped);
	memset(set, 0, sizeof *set);
}
