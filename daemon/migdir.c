/* Loads a migrations directory: finds *.sql files, checks and parses them. */
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

/* What one walk needs beside the set: the layout, what to reuse, and the
 * buffers every directory and file of the walk shares. */
struct migdir_walker {
	struct migcache		*cache;
	enum layout_format	 format;
	size_t			 rootlen;	/* names under the root */
	char			*path;		/* the entry being visited */
	size_t			 pathsize;
	char			*dents;		/* MIGDIR_DENTS bytes */
	char			*buf;		/* a file's text */
	size_t			 bufsize;
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
    int optional, struct stat *st, struct errlist *errs)
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
	if (!path_trusted(st, path, what, errs))
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

/* Reads fd to EOF into the walker's buffer (the file may change size under
 * us: with a cap); *len gets its length.  Returns 0, or -1 said in errs. */
static int
migdir_read(int fd, const struct stat *st, const char *path,
    struct migdir_walker *w, size_t *len, struct errlist *errs)
{
	size_t	 want = (size_t)st->st_size + 1;
	ssize_t	 r;

	*len = 0;
	if (w->bufsize < want) {
		w->bufsize = want < 8192 ? 8192 : want;
		w->buf = xrealloc(w->buf, w->bufsize);
	}
	for (;;) {
		if (*len == w->bufsize) {
			if (w->bufsize > MIGFILE_MAX_SIZE)
				goto toolarge;
			w->bufsize = w->bufsize * 2 > (size_t)MIGFILE_MAX_SIZE +
			    1 ? (size_t)MIGFILE_MAX_SIZE + 1 : w->bufsize * 2;
			w->buf = xrealloc(w->buf, w->bufsize);
		}
		r = read(fd, w->buf + *len, w->bufsize - *len);
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
		if (*len == (size_t)st->st_size && *len < w->bufsize)
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

/* Reads whole files; anyone able to write them could run SQL as us.  An
 * optional file (diesel's, by name) may be missing: then 1, else 0. */
static int
migdir_file(struct migset *set, struct errlist *errs, int dfd,
    const char *name, const char *path, int optional, struct migdir_walker *w)
{
	struct stat	 st;
	struct migsig	 sig;
	struct migfile	*mf;
	char		*skip = NULL;
	int		 lr, fd;
	size_t		 len;

	if ((fd = migdir_open(dfd, name, path, "migrations file", optional,
	    &st, errs)) < 0)
		return (fd == -2);
	/* The same file, unchanged since an earlier load: not read again. */
	migdir_sig(&st, &sig);
	/* Only migd's own files are shared (migcache_take): none when the
	 * configuration now names another tool's layout. */
	if (w->format <= LAYOUT_MIGD &&
	    (mf = migcache_take(w->cache, path, &sig)) != NULL) {
		set->files = xreallocarray(set->files, set->n + 1,
		    sizeof *set->files);
		set->files[set->n++] = mf;
		goto out;
	}
	/* Another tool's file: what the last load read of it, copied (its
	 * parents are its neighbours', settled when the set is assembled). */
	if ((mf = migcache_piece(w->cache, path, &sig, w->format)) != NULL) {
		set->files = xreallocarray(set->files, set->n + 1,
		    sizeof *set->files);
		set->files[set->n++] = mf;
		goto out;
	}
	if (migdir_read(fd, &st, path, w, &len, errs) != 0)
		goto out;
	lr = layout_file(w->format, path, path + w->rootlen, w->buf, len, &mf,
	    &skip, errs);
	if (mf != NULL) {
		mf->read_as = (unsigned char)w->format;
		mf->first = mf->layout;
	}
	if (lr == 1) {
		migdir_skip(set, path, skip);
		free(skip);
	} else if (lr == 0) {
		/* As it was before reading: a change during the read shows. */
		mf->sig = sig;
		set->files = xreallocarray(set->files, set->n + 1,
		    sizeof *set->files);
		set->files[set->n++] = mf;
	} else if (mf != NULL) {
		/* Its SQL can still be checked in this pass; auto may yet
		 * find it a migd file with no problem (layout_assemble). */
		mf->sig = sig;
		set->broken = xreallocarray(set->broken, set->n_broken + 1,
		    sizeof *set->broken);
		set->broken[set->n_broken++] = mf;
	}
out:
	close(fd);
	return (0);
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

/* Reads a diesel migration's metadata.toml: 1 when it says the migration
 * runs outside a transaction, 0 when not, -1 on a problem (in errs).  Its
 * stat is kept to watch, like the migration files'. */
static int
migdir_meta(struct migset *set, struct errlist *errs, int dfd,
    const char *name, const char *path, int optional, struct migdir_walker *w)
{
	struct stat	 st;
	size_t		 len;
	int		 fd, notx = -1;

	if ((fd = migdir_open(dfd, name, path, "migrations file", optional,
	    &st, errs)) < 0)
		return (-1);
	set->extra = xreallocarray(set->extra, set->n_extra + 1,
	    sizeof *set->extra);
	set->extra_sigs = xreallocarray(set->extra_sigs, set->n_extra + 1,
	    sizeof *set->extra_sigs);
	migdir_sig(&st, &set->extra_sigs[set->n_extra]);
	set->extra[set->n_extra++] = xstrdup(path);
	if (migdir_read(fd, &st, path, w, &len, errs) == 0 &&
	    layout_diesel_meta(path, w->buf, len, &notx, errs) != 0)
		notx = -1;
	close(fd);
	return (notx);
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

/* Keeps a directory the walk visits, as it is now, to watch. */
static char *
migdir_add_dir(struct migset *set, const struct stat *st, const char *path)
{
	set->dirs = xreallocarray(set->dirs, set->n_dirs + 1,
	    sizeof *set->dirs);
	set->dir_sigs = xreallocarray(set->dir_sigs, set->n_dirs + 1,
	    sizeof *set->dir_sigs);
	migdir_sig(st, &set->dir_sigs[set->n_dirs]);
	return (set->dirs[set->n_dirs++] = xstrdup(path));
}

/*
 * format = diesel: a migration's directory (name, under dfd; its path at
 * w->path[0..len)) read as diesel reads it, by name: up.sql, down.sql,
 * metadata.toml, without listing it (a third of the system calls of a
 * diesel directory went to that).  Checked as a listed one is: a real
 * directory (not followed if a link), trusted, kept to watch.  Returns 1
 * when it must be listed after all: it holds directories (to be said
 * skipped), or its link count says nothing (btrfs).
 */
static int
migdir_diesel(struct migset *set, struct errlist *errs, int dfd,
    const char *name, size_t len, struct migdir_walker *w)
{
	static const char *const files[] = {
		"up.sql", "down.sql", "metadata.toml"
	};
	struct stat	 st, fst;
	char		 rel[NAME_MAX + 16];
	size_t		 i, nlen = strlen(name), n0 = set->n, nb0 = set->n_broken;
	int		 notx = 0;

	if (nlen > NAME_MAX)
		return (1);
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == -1) {
		errlist_add(errs, "%s: %s", w->path, strerror(errno));
		return (0);
	}
	if (!S_ISDIR(st.st_mode) || st.st_nlink != 2)
		return (1);
	if (!path_trusted(&st, w->path, "migrations directory", errs))
		return (0);
	memcpy(rel, name, nlen);
	rel[nlen] = '/';
	for (i = 0; i < nitems(files); i++) {
		memcpy(rel + nlen + 1, files[i], strlen(files[i]) + 1);
		(void)migdir_enter(w, len, files[i]);
		if (i == 2) {
			/* Mostly absent: a stat says so for half an open. */
			if (fstatat(dfd, rel, &fst, 0) == -1 && errno == ENOENT)
				continue;
			if ((notx = migdir_meta(set, errs, dfd, rel, w->path,
			    1, w)) == -1)
				notx = 0;
		} else if (migdir_file(set, errs, dfd, rel, w->path, 1, w) &&
		    i == 0) {
			/* No up.sql: listed, so that what is there (Up.sql,
			 * up.sql.txt) is said, as without format = diesel. */
			w->path[len] = '\0';
			return (1);
		}
	}
	w->path[len] = '\0';
	/* As stat saw it before its files were read. */
	(void)migdir_add_dir(set, &st, w->path);
	for (i = n0; i < set->n; i++)
		migdir_diesel_tx(set->files[i], notx);
	for (i = nb0; i < set->n_broken; i++)
		migdir_diesel_tx(set->broken[i], notx);
	return (0);
}

/* Visits the directory at w->path[0..len); takes ownership of dfd and
 * closes it.  depth: 0 for the migrations directory. */
static void
migdir_walk(struct migset *set, struct errlist *errs, int dfd,
    const struct stat *dst, size_t len, int depth, struct migdir_walker *w)
{
	struct migdir_list	 l;
	struct stat		 st;
	const char		*name;
	char			*dirpath;
	size_t			 i, before, nb, n0 = set->n, nb0 = set->n_broken;
	size_t			 plen;
	int			 cfd, meta, notx = 0;

	w->path[len] = '\0';
	before = errs->n;
	dirpath = migdir_add_dir(set, dst, w->path);
	if (migdir_list(dfd, w, &l, dirpath, errs) != 0)
		errlist_add(errs, "%s: %s", dirpath, strerror(errno));
	if (errs->n != before)
		set->incomplete = 1;	/* entries that were not listed */
	meta = depth == 1 && migdir_diesel_meta(w, w->path + w->rootlen);

	for (i = 0; i < l.n; i++) {
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
			if ((notx = migdir_meta(set, errs, dfd, name, w->path,
			    0, w)) == -1)
				notx = 0;
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
			if (depth == 0 && w->format == LAYOUT_DIESEL &&
			    layout_diesel_dir(name, strlen(name)) &&
			    migdir_diesel(set, errs, dfd, name, plen, w) == 0)
				goto next;
			cfd = openat(dfd, name, O_RDONLY | O_DIRECTORY |
			    O_NOFOLLOW | O_CLOEXEC);
			if (cfd == -1) {
				errlist_add(errs, "%s: %s", w->path,
				    strerror(errno));
				goto next;
			}
			if (fstat(cfd, &st) == -1) {
				errlist_add(errs, "%s: %s", w->path,
				    strerror(errno));
				close(cfd);
				goto next;
			}
			if (!path_trusted(&st, w->path, "migrations directory",
			    errs)) {
				close(cfd);
				goto next;
			}
			migdir_walk(set, errs, cfd, &st, plen, depth + 1, w);
			goto next;
		} else if (!migdir_is_sql(name)) {
			if (migdir_sqlish(name) && S_ISREG(st.st_mode))
				goto sqlcase;
			goto next;
		}

		/* Devices and FIFOs named *.sql are not opened at all. */
		if (!S_ISREG(st.st_mode))
			errlist_add(errs, "%s: not a regular file", w->path);
		else
			migdir_file(set, errs, dfd, name, w->path, 0, w);
		goto next;
sqlcase:
		migdir_skip(set, w->path, "only names ending in .sql, in lower "
		    "case, are migrations; rename it to run it");
next:
		if (errs->n != before && set->n_broken == nb)
			set->incomplete = 1;
	}
	/* diesel's run_in_transaction = false: its up and down alike (as
	 * metadata.toml says now, also for a file the last load read). */
	for (i = n0; meta && i < set->n; i++)
		migdir_diesel_tx(set->files[i], notx);
	for (i = nb0; meta && i < set->n_broken; i++)
		migdir_diesel_tx(set->broken[i], notx);
	free(l.v);
	free(l.block);
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
	struct migdir_walker	 w;
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
	w.cache = cache;
	w.format = (enum layout_format)format;
	len = strlen(dir);
	w.rootlen = len + (len > 0 && dir[len - 1] != '/');
	w.pathsize = len + 256;
	w.path = xmalloc(w.pathsize);
	memcpy(w.path, dir, len + 1);
	w.dents = xmalloc(MIGDIR_DENTS);
	migdir_walk(out, errs, fd, &st, len, 0, &w);
	free(w.path);
	free(w.dents);
	free(w.buf);
	/* Other tools' files: joined up and down, chained in their order. */
	f = layout_assemble(w.format, dir, out, errs);
	out->format = f >= 0 ? f : format;
	/* Another tool's migrations the last load read, both files unchanged,
	 * count as reused like migd's own files. */
	for (i = 0; cache != NULL && i < out->n; i++)
		cache->taken += out->files[i]->reused == 1;

	/* layout_assemble leaves another tool's files sorted by path. */
	if (out->n > 0 && f <= LAYOUT_MIGD)
		qsort(out->files, out->n, sizeof *out->files, migdir_cmp_file);
	if (out->n_broken > 0)
		qsort(out->broken, out->n_broken, sizeof *out->broken,
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
