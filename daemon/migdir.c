/* Loads a migrations directory: finds *.sql files, checks and parses them. */
#include <sys/types.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "layout.h"
#include "migfile.h"
#include "util.h"

/* What one walk needs beside the set: the layout and what to reuse. */
struct migdir_walker {
	struct migcache		*cache;
	enum layout_format	 format;
	size_t			 rootlen;	/* names under the root */
};

static void	migdir_sig(const struct stat *, struct migsig *);

/* Messages name files as the user configured the directory, plus the rest. */
static char *
migdir_join(const char *dir, const char *name)
{
	size_t	 len = strlen(dir);

	if (len > 0 && dir[len - 1] == '/')
		return (xprintf("%s%s", dir, name));
	return (xprintf("%s/%s", dir, name));
}

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

/* Reads whole files; anyone able to write them could run SQL as us. */
static void
migdir_file(struct migset *set, struct errlist *errs, int dfd,
    const char *name, const char *path, struct migdir_walker *w)
{
	struct stat	 st;
	struct migsig	 sig;
	struct migfile	*mf;
	char		*buf = NULL, *skip = NULL;
	int		 lr;
	size_t		 size, len = 0;
	ssize_t		 r;
	int		 fd;

	/* O_NONBLOCK: a FIFO swapped in after the stat must not hang us. */
	fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd == -1) {
		errlist_add(errs, "%s: %s", path, strerror(errno));
		return;
	}
	if (fstat(fd, &st) == -1) {
		errlist_add(errs, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		errlist_add(errs, "%s: not a regular file", path);
		goto out;
	}
	if (!path_trusted(&st, path, "migrations file", errs))
		goto out;
	if (st.st_size > MIGFILE_MAX_SIZE)
		goto toolarge;
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

	/* The file may change size under us: read to EOF, with a cap. */
	size = (size_t)st.st_size + 1;
	buf = xmalloc(size);
	for (;;) {
		if (len == size) {
			if (size > MIGFILE_MAX_SIZE)
				goto toolarge;
			size = size * 2 > (size_t)MIGFILE_MAX_SIZE + 1 ?
			    (size_t)MIGFILE_MAX_SIZE + 1 : size * 2;
			buf = xrealloc(buf, size);
		}
		r = read(fd, buf + len, size - len);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			errlist_add(errs, "%s: %s", path, strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
		/* All stat said, and less than asked: the end, without a
		 * read more (growth after the stat shows in the file's sig). */
		if (len == (size_t)st.st_size && len < size)
			break;
	}
	if (len > MIGFILE_MAX_SIZE)
		goto toolarge;
	lr = layout_file(w->format, path, path + w->rootlen, buf, len, &mf,
	    &skip, errs);
	if (lr == 1) {
		migdir_skip(set, path, skip);
		free(skip);
	} else if (lr == 0) {
		/* As it was before reading: a change during the read shows. */
		migdir_sig(&st, &mf->sig);
		set->files = xreallocarray(set->files, set->n + 1,
		    sizeof *set->files);
		set->files[set->n++] = mf;
	} else if (mf != NULL) {
		/* Its SQL can still be checked in this pass; auto may yet
		 * find it a migd file with no problem (layout_assemble). */
		migdir_sig(&st, &mf->sig);
		set->broken = xreallocarray(set->broken, set->n_broken + 1,
		    sizeof *set->broken);
		set->broken[set->n_broken++] = mf;
	}
	goto out;

toolarge:
	errlist_add(errs, "%s: file too large (the limit is %d MiB)", path,
	    MIGFILE_MAX_SIZE / (1024 * 1024));
out:
	free(buf);
	close(fd);
}

/* Keeps what identifies one version of a file or directory. */
static void
migdir_sig(const struct stat *st, struct migsig *sig)
{
	sig->dev = (unsigned long long)st->st_dev;
	sig->ino = (unsigned long long)st->st_ino;
	sig->size = (unsigned long long)st->st_size;
	sig->mtime_sec = (long long)st->st_mtim.tv_sec;
	sig->mtime_nsec = (long long)st->st_mtim.tv_nsec;
	sig->ctime_sec = (long long)st->st_ctim.tv_sec;
	sig->ctime_nsec = (long long)st->st_ctim.tv_nsec;
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
	struct stat	 st;
	struct migsig	 now;
	size_t		 i;

	for (i = 0; i < set->n_dirs; i++) {
		if (stat(set->dirs[i], &st) != 0)
			return (0);
		migdir_sig(&st, &now);
		if (memcmp(&now, &set->dir_sigs[i], sizeof now) != 0)
			return (0);
	}
	for (i = 0; i < set->n; i++) {
		if (stat(set->files[i]->path, &st) != 0)
			return (0);
		migdir_sig(&st, &now);
		if (memcmp(&now, &set->files[i]->sig, sizeof now) != 0)
			return (0);
		if (set->files[i]->down_path == NULL)
			continue;
		if (stat(set->files[i]->down_path, &st) != 0)
			return (0);
		migdir_sig(&st, &now);
		if (memcmp(&now, &set->files[i]->down_sig, sizeof now) != 0)
			return (0);
	}
	return (1);
}

/* Visits one directory; takes ownership of dfd and closes it. */
static void
migdir_walk(struct migset *set, struct errlist *errs, int dfd,
    const struct stat *dst, const char *dirpath, struct migdir_walker *w)
{
	DIR		*d;
	struct dirent	*de;
	struct stat	 st;
	char		**names = NULL, *path;
	const char	*name;
	size_t		 n = 0, i, before, nb;
	int		 cfd;

	if ((d = fdopendir(dfd)) == NULL) {
		errlist_add(errs, "%s: %s", dirpath, strerror(errno));
		set->incomplete = 1;
		close(dfd);
		return;
	}
	before = errs->n;
	set->dirs = xreallocarray(set->dirs, set->n_dirs + 1,
	    sizeof *set->dirs);
	set->dir_sigs = xreallocarray(set->dir_sigs, set->n_dirs + 1,
	    sizeof *set->dir_sigs);
	memset(&set->dir_sigs[set->n_dirs], 0, sizeof *set->dir_sigs);
	migdir_sig(dst, &set->dir_sigs[set->n_dirs]);
	set->dirs[set->n_dirs++] = xstrdup(dirpath);
	for (;;) {
		errno = 0;
		if ((de = readdir(d)) == NULL) {
			if (errno != 0)
				errlist_add(errs, "%s: %s", dirpath,
				    strerror(errno));
			break;
		}
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (de->d_name[0] != '.' && utf8_valid_prefix(de->d_name,
		    strlen(de->d_name)) != strlen(de->d_name) &&
		    migdir_is_sql(de->d_name)) {
			errlist_add(errs, "%s/?: a file name that is not "
			    "valid UTF-8; rename it", dirpath);
			continue;
		}
		/* The type readdir gives, first: a regular file needs no
		 * fstatat of its own (migdir_file checks what it opens). */
		names = xreallocarray(names, n + 1, sizeof *names);
		names[n] = xmalloc(strlen(de->d_name) + 2);
		names[n][0] = (char)de->d_type;
		strcpy(names[n++] + 1, de->d_name);
	}
	if (n > 0)
		qsort(names, n, sizeof *names, migdir_cmp_name);
	if (errs->n != before)
		set->incomplete = 1;	/* entries that were not listed */

	for (i = 0; i < n; i++) {
		/* A problem that left no file to check, not even a broken
		 * one: something that might define a revision was not read. */
		before = errs->n;
		nb = set->n_broken;
		name = names[i] + 1;
		path = migdir_join(dirpath, name);
		if (name[0] == '.') {
			/* Hidden, as in every tool; said for *.sql (not for
			 * Emacs's .#name lock links). */
			if (migdir_sqlish(name) && name[1] != '#')
				migdir_skip(set, path, "a hidden file (its name "
				    "starts with '.'); rename it to run it");
			goto next;
		}
		if ((unsigned char)names[i][0] == DT_REG &&
		    migdir_is_sql(name))
			st.st_mode = S_IFREG;
		else if ((unsigned char)names[i][0] == DT_DIR)
			st.st_mode = S_IFDIR;	/* opened with O_NOFOLLOW */
		else if (fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) ==
		    -1) {
			errlist_add(errs, "%s: %s", path, strerror(errno));
			goto next;
		}
		if (S_ISLNK(st.st_mode)) {
			/* Files behind links are read; linked dirs may loop. */
			if (fstatat(dirfd(d), name, &st, 0) == -1) {
				/* A dangling README link is nothing to us. */
				if (migdir_is_sql(name))
					errlist_add(errs, "%s: %s", path,
					    strerror(errno));
				goto next;
			}
			if (S_ISDIR(st.st_mode)) {
				migdir_skip(set, path, "a symbolic link to a "
				    "directory (migd does not follow them: "
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
			cfd = openat(dirfd(d), name, O_RDONLY |
			    O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (cfd == -1) {
				errlist_add(errs, "%s: %s", path,
				    strerror(errno));
				goto next;
			}
			if (fstat(cfd, &st) == -1) {
				errlist_add(errs, "%s: %s", path,
				    strerror(errno));
				close(cfd);
				goto next;
			}
			if (!path_trusted(&st, path, "migrations directory",
			    errs)) {
				close(cfd);
				goto next;
			}
			migdir_walk(set, errs, cfd, &st, path, w);
			goto next;
		} else if (!migdir_is_sql(name)) {
			if (migdir_sqlish(name) && S_ISREG(st.st_mode))
				goto sqlcase;
			goto next;
		}

		/* Devices and FIFOs named *.sql are not opened at all. */
		if (!S_ISREG(st.st_mode))
			errlist_add(errs, "%s: not a regular file", path);
		else
			migdir_file(set, errs, dirfd(d), name, path, w);
		goto next;
sqlcase:
		migdir_skip(set, path, "only names ending in .sql, in lower "
		    "case, are migrations; rename it to run it");
next:
		if (errs->n != before && set->n_broken == nb)
			set->incomplete = 1;
		free(path);
		free(names[i]);
	}
	free(names);
	closedir(d);
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
	size_t			 nerrs = errs->n;
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
	w.cache = cache;
	w.format = (enum layout_format)format;
	w.rootlen = strlen(dir);
	if (w.rootlen > 0 && dir[w.rootlen - 1] != '/')
		w.rootlen++;
	migdir_walk(out, errs, fd, &st, dir, &w);
	/* Other tools' files: joined up and down, chained in their order. */
	f = layout_assemble(w.format, dir, out, errs);
	out->format = f >= 0 ? f : format;

	if (out->n > 0)
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
	errlist_clear(&set->skipped);
	memset(set, 0, sizeof *set);
}
