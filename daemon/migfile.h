/* Migration files: one revision file parsed (pure), a directory loaded. */
#ifndef MIGD_MIGFILE_H
#define MIGD_MIGFILE_H

#include <sys/types.h>

#include <stddef.h>

#include "util.h"

#define MIGFILE_MAX_SIZE	(64 * 1024 * 1024)	/* bytes in one file */
#define MIGFILE_ID_MAX		32	/* Alembic's version_num: varchar(32) */

enum migfile_tx {
	MIGFILE_TX_AUTO,	/* default: detect what cannot run in a tx */
	MIGFILE_TX_NONE		/* "transaction: none": never BEGIN/COMMIT */
};

/* What stat says of a file or directory when it was read: if any of it
 * differs later, the file (or the directory's list) may have changed. */
struct migsig {
	unsigned long long	 dev, ino, size;
	long long		 mtime_sec, mtime_nsec;
	long long		 ctime_sec, ctime_nsec;	/* chmod, chown, rename */
};

/* One parsed revision file; all strings owned, freed by migfile_free().
 * Successive loads share an unchanged file: the last migfile_free frees. */
struct migfile {
	unsigned int	  refs;		/* 0 or 1: one owner */
	char		 *path;		/* as given; used in messages */
	char		 *revision;
	int		  revision_line;	/* 0 when from the file name */
	char		**parents;	/* down_revision ids; none for a root */
	size_t		  n_parents;
	int		  parents_line;
	char		**depends;	/* depends_on ids */
	size_t		  n_depends;
	int		  depends_line;	/* 0 when absent */
	char		**labels;	/* branch_labels, as in Alembic */
	size_t		  n_labels;
	int		  labels_line;	/* 0 when absent */
	char		 *unfinished;	/* why it cannot run yet, or NULL */
	int		  unfinished_line;
	char		 *lint_ignore;	/* "-- lint-ignore: RULE[,RULE] why"
					   values, one a line, or NULL */
	int		  lint_ignore_line;	/* the first such line */
	char		 *message;	/* "" when absent */
	enum migfile_tx	  tx;
	int		  tx_line;	/* 0 when absent */
	char		 *up;		/* section text, CRLF made LF */
	int		  up_line;	/* file line of the first line of up */
	char		 *down;		/* NULL when there is no down section */
	int		  down_line;	/* 0 when there is no down section */
	char		  checksum[65];	/* lowercase hex SHA-256 of up */
	struct migsig	  sig;		/* set by migdir_load */
	/* Another tool's layout (layout.h): what the file was read as, and
	 * a down section read from a file of its own. */
	unsigned char	  layout;	/* enum layout_format; 0 not set */
	unsigned char	  piece;	/* enum layout_piece */
	char		 *down_path;	/* NULL when the down is in path */
	struct migsig	  down_sig;
	unsigned char	  read_as;	/* the format asked when it was read */
	unsigned char	  first;	/* the layout layout_file gave, before
					   auto settled the directory's */
	unsigned char	  reused;	/* migcache_piece: 1, or 2 while its
					   down file is still to be joined */
};

/* A loaded migrations directory. */
struct migset {
	struct migfile	**files;	/* sorted by path */
	size_t		  n;
	char		**dirs;		/* every directory walked, to watch */
	struct migsig	 *dir_sigs;	/* each as it was when listed */
	size_t		  n_dirs, size_dirs;
	char		**extra;	/* other files read (diesel's
					   metadata.toml), to watch */
	struct migsig	 *extra_sigs;
	size_t		  n_extra, size_extra;
	struct migfile	**broken;	/* migdir_scan: files with problems */
	size_t		  n_broken;	/* whose text could be read */
	int		  incomplete;	/* a file or directory not read */
	struct errlist	  skipped;	/* "PATH: skipped: why" of entries
					   that may have been meant to run */
	int		  format;	/* enum layout_format read: the
					   configured one, or what auto saw */
};

/*
 * What an earlier load read, offered to the next one: a file whose path and
 * stat (device, inode, size, mtime, ctime) are unchanged is taken from here
 * instead of being read and parsed again.  Each entry holds a reference;
 * migcache_take() moves it to the caller and marks the entry used;
 * migcache_find() is its lookup alone, changing nothing (the walk's
 * threads look at once), and migcache_take_at() takes what it found.
 */
struct migcache {
	struct migfile	**files;	/* sorted by path */
	char		 *used;		/* taken: the reference moved */
	size_t		  n;
	size_t		  taken;	/* how many were reused */
	struct migfile	**downs;	/* those with a down file of their own,
					   sorted by down_path */
	size_t		  n_downs;
};

/*
 * migfile.c. migfile_parse() returns 0 and sets *out, or -1 with *out NULL
 * and "PATH:LINE: message" strings appended to the errlist. migfile_valid_id()
 * returns 1 for a valid id, or 0 and sets *why (if not NULL) to an allocated
 * reason such as "it starts with '-'", for the caller to free.
 * migfile_parse_all() is migfile_parse() except that on error *out still
 * gets the file as far as it could be read (header fields may be missing:
 * revision is NULL when no valid id was found), or NULL when the text could
 * not be scanned at all (too large, a NUL byte, not UTF-8).
 */
int	 migfile_parse(const char *, const char *, size_t, struct migfile **,
	     struct errlist *);
/* A header comment's text after "--" and blanks: 1 when it is "lint-ignore:
 * RULE[,RULE] why", read into the file (its problems through err with the
 * line), 0 when it is not. */
int	 migfile_lint_ignore(struct migfile *, const char *, size_t, int,
	     void (*)(void *, int, const char *), void *);
int	 migfile_parse_all(const char *, const char *, size_t,
	     struct migfile **, struct errlist *);
void	 migfile_free(struct migfile *);
struct migfile *migfile_ref(struct migfile *);
const char	*migfile_path(const struct migfile *, int);
void	 migcache_init(struct migcache *, struct migfile *const *, size_t);
struct migfile *migcache_take(struct migcache *, const char *,
	     const struct migsig *);
ssize_t	 migcache_find(const struct migcache *, const char *,
	     const struct migsig *);
struct migfile *migcache_take_at(struct migcache *, size_t);
struct migfile *migcache_piece(struct migcache *, const char *,
	     const struct migsig *, int);
void	 migcache_clear(struct migcache *);
int	 migfile_valid_id(const char *, char **);
void	 migfile_checksum(const char *, size_t, char[65]);
/* migfile_checksum of text that holds no CR (normalising is a no-op). */
void	 migfile_sha256_hex(const char *, size_t, char[65]);
char	*migfile_normalise(const char *, size_t, size_t *);

/*
 * migdir.c. migdir_load() overwrites *out (clear it first if it held files);
 * it returns 0 with every file, or -1 with *out empty and every problem of
 * every file appended to the errlist.  migdir_scan() is the same, except
 * that on error *out keeps what could be read (clear it with migset_clear):
 * the files without problems in files, and those whose header has problems
 * but whose text could be read in broken, so that their SQL can be checked
 * in the same pass.  migdir_scan_between() is migdir_scan_format() calling
 * a hook after each walk, before the files it found are read (tests).
 */
int	 migdir_load(const char *, struct migset *, struct errlist *);
int	 migdir_scan(const char *, struct migset *, struct errlist *);
int	 migdir_scan_cached(const char *, struct migset *, struct errlist *,
	     struct migcache *);
int	 migdir_scan_format(const char *, int, struct migset *,
	     struct errlist *, struct migcache *);
int	 migdir_scan_between(const char *, int, struct migset *,
	     struct errlist *, struct migcache *, void (*)(void *), void *);
void	 migset_clear(struct migset *);
int	 migset_unchanged(const struct migset *);

#endif
