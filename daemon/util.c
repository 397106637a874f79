/*
 * Allocation wrappers that abort on exhaustion, the error list, UTF-8 and
 * control-character helpers, and the ownership check of files migd trusts.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

/* Out of memory is not a condition migd can serve through: say so and stop. */
static void __attribute__((noreturn))
util_oom(void)
{
	fputs("migd: out of memory\n", stderr);
	abort();
}

void *
xmalloc(size_t size)
{
	void	*p;

	if ((p = malloc(size == 0 ? 1 : size)) == NULL)
		util_oom();
	return (p);
}

void *
xcalloc(size_t n, size_t size)
{
	void	*p;

	if ((p = calloc(n == 0 ? 1 : n, size == 0 ? 1 : size)) == NULL)
		util_oom();
	return (p);
}

void *
xrealloc(void *p, size_t size)
{
	if ((p = realloc(p, size == 0 ? 1 : size)) == NULL)
		util_oom();
	return (p);
}

/* realloc for arrays, refusing n * size overflow. */
void *
xreallocarray(void *p, size_t n, size_t size)
{
	if (size != 0 && n > SIZE_MAX / size)
		util_oom();
	return (xrealloc(p, n * size));
}

char *
xstrdup(const char *s)
{
	char	*p;

	if ((p = strdup(s)) == NULL)
		util_oom();
	return (p);
}

char *
xstrndup(const char *s, size_t n)
{
	char	*p;

	if ((p = strndup(s, n)) == NULL)
		util_oom();
	return (p);
}

int
xvasprintf(char **ret, const char *fmt, va_list ap)
{
	int	 n;

	if ((n = vasprintf(ret, fmt, ap)) < 0)
		util_oom();
	return (n);
}

int
xasprintf(char **ret, const char *fmt, ...)
{
	va_list	 ap;
	int	 n;

	va_start(ap, fmt);
	n = xvasprintf(ret, fmt, ap);
	va_end(ap);
	return (n);
}

/* Formats into a new string: the common case of xasprintf. */
char *
xprintf(const char *fmt, ...)
{
	va_list	 ap;
	char	*s;

	va_start(ap, fmt);
	xvasprintf(&s, fmt, ap);
	va_end(ap);
	return (s);
}

/* The length of the longest valid UTF-8 prefix of s[0..len). */
size_t
utf8_valid_prefix(const char *s, size_t len)
{
	const unsigned char	*p = (const unsigned char *)s;
	size_t			 i = 0, n, k;
	unsigned int		 cp;

	while (i < len) {
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		if ((p[i] & 0xe0) == 0xc0) {
			n = 1;
			cp = p[i] & 0x1f;
		} else if ((p[i] & 0xf0) == 0xe0) {
			n = 2;
			cp = p[i] & 0x0f;
		} else if ((p[i] & 0xf8) == 0xf0) {
			n = 3;
			cp = p[i] & 0x07;
		} else
			return (i);
		if (i + n >= len)
			return (i);	/* truncated sequence */
		for (k = 1; k <= n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return (i);
			cp = (cp << 6) | (p[i + k] & 0x3f);
		}
		/* Overlong forms, surrogates and beyond U+10FFFF are invalid. */
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) ||
		    (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return (i);
		i += n + 1;
	}
	return (i);
}

/* Appends a string the list then owns. */
void
errlist_take(struct errlist *el, char *s)
{
	el->v = xreallocarray(el->v, el->n + 1, sizeof *el->v);
	el->v[el->n++] = s;
}

/* A copy that is valid UTF-8: each invalid byte becomes '?'. */
char *
utf8_sanitize(const char *s)
{
	size_t	 len = strlen(s), i = 0, ok;
	char	*out = xstrdup(s);

	while (i < len) {
		ok = utf8_valid_prefix(out + i, len - i);
		i += ok;
		if (i < len)
			out[i++] = '?';
	}
	return (out);
}

void
errlist_add(struct errlist *el, const char *fmt, ...)
{
	va_list	 ap;
	char	*s;

	va_start(ap, fmt);
	xvasprintf(&s, fmt, ap);
	va_end(ap);
	errlist_take(el, s);
}

void
errlist_clear(struct errlist *el)
{
	size_t	 i;

	for (i = 0; i < el->n; i++)
		free(el->v[i]);
	free(el->v);
	el->v = NULL;
	el->n = 0;
}

/* head, the messages with sep between them, then tail, in one allocation:
 * linear in their length (an atomic run's history rows are thousands). */
char *
errlist_join_in(const char *head, const struct errlist *el, const char *sep,
    const char *tail)
{
	size_t	 i, k = strlen(sep), l;
	size_t	 len = strlen(head) + strlen(tail) + 1;
	char	*s, *p;

	for (i = 0; i < el->n; i++)
		len += strlen(el->v[i]) + (i > 0 ? k : 0);
	p = s = xmalloc(len);
	l = strlen(head);
	memcpy(p, head, l);
	p += l;
	for (i = 0; i < el->n; i++) {
		if (i > 0) {
			memcpy(p, sep, k);
			p += k;
		}
		l = strlen(el->v[i]);
		memcpy(p, el->v[i], l);
		p += l;
	}
	memcpy(p, tail, strlen(tail) + 1);
	return (s);
}

/* All the messages as one string, sep between them. */
char *
errlist_join(const struct errlist *el, const char *sep)
{
	return (errlist_join_in("", el, sep, ""));
}

/* Appends one escape to the buffer being built by utf8_escape_controls. */
static char *
util_put(char *out, const char *esc)
{
	size_t	 n = strlen(esc);

	memcpy(out, esc, n);
	return (out + n);
}

/*
 * A copy of s safe to write on one line of a log or a terminal: line breaks,
 * tabs, ESC and every other C0 control, DEL, C1 controls (U+0080-U+009F),
 * U+2028/U+2029 and bytes that are not UTF-8 become visible escapes
 * (\n, \r, \t, \xNN, \u00NN, \u2028), so text from a client or a file can
 * neither start a line of its own nor drive the terminal.  Backslashes stay
 * as they are: the point is what the text can do, not a reversible form.
 */
char *
utf8_escape_controls(const char *s)
{
	const unsigned char	*p = (const unsigned char *)s;
	size_t			 len = strlen(s), i = 0, ok;
	char			*buf, *out, esc[8];

	/* At most 6 bytes (\u00NN or \u2028) for every 2 or 3 bytes in,
	 * 4 (\xNN) for every byte: 6 per byte is always enough. */
	buf = out = xmalloc(len * 6 + 1);
	while (i < len) {
		if (p[i] >= 0x80) {
			ok = utf8_valid_prefix(s + i, len - i);
			if (ok == 0) {
				snprintf(esc, sizeof esc, "\\x%02x", p[i]);
				out = util_put(out, esc);
				i++;
				continue;
			}
			/* One valid sequence: C1 and line separators escaped. */
			if (p[i] == 0xc2 && p[i + 1] >= 0x80 && p[i + 1] <= 0x9f) {
				snprintf(esc, sizeof esc, "\\u00%02x",
				    p[i + 1]);
				out = util_put(out, esc);
				i += 2;
			} else if (p[i] == 0xe2 && p[i + 1] == 0x80 &&
			    (p[i + 2] == 0xa8 || p[i + 2] == 0xa9)) {
				out = util_put(out, p[i + 2] == 0xa8 ?
				    "\\u2028" : "\\u2029");
				i += 3;
			} else {
				*out++ = (char)p[i++];
				while (i < len && (p[i] & 0xc0) == 0x80)
					*out++ = (char)p[i++];
			}
			continue;
		}
		if (p[i] == '\n')
			out = util_put(out, "\\n");
		else if (p[i] == '\r')
			out = util_put(out, "\\r");
		else if (p[i] == '\t')
			out = util_put(out, "\\t");
		else if (p[i] < 0x20 || p[i] == 0x7f) {
			snprintf(esc, sizeof esc, "\\x%02x", p[i]);
			out = util_put(out, esc);
		} else
			*out++ = (char)p[i];
		i++;
	}
	*out = '\0';
	return (buf);
}

/* A user's name, or "uid N" ("_r": files are read on the loader's thread). */
static void
path_user(uid_t uid, char *out, size_t len)
{
	struct passwd	 pwb, *pw = NULL;
	char		 buf[4096];

	if (getpwuid_r(uid, &pwb, buf, sizeof buf, &pw) == 0 && pw != NULL)
		snprintf(out, len, "%s", pw->pw_name);
	else
		snprintf(out, len, "uid %lu", (unsigned long)uid);
}

/*
 * Whether migd may trust what a file or directory says (its configuration,
 * its migrations): only root and migd's own user may be able to change it,
 * as sshd's StrictModes has it.  Owned by one of them, not writable by
 * others; group-writable passes only in its owner's private group.  A
 * refusal names the path, the owner, the mode and the fix.
 */
int
path_trusted(const struct stat *st, const char *path, const char *what,
    struct errlist *errs)
{
	return (path_trusted_by(st, geteuid(), path, what, errs));
}

/* path_trusted with migd's user given: a walk of many files asks the
 * kernel once. */
int
path_trusted_by(const struct stat *st, uid_t euid, const char *path,
    const char *what, struct errlist *errs)
{
	struct group	 grb, *gr = NULL;
	char		 owner[64], me[64], gbuf[4096];
	unsigned int	 mode = (unsigned int)(st->st_mode & 07777);

	if (st->st_uid != 0 && st->st_uid != euid) {
		path_user(st->st_uid, owner, sizeof owner);
		path_user(euid, me, sizeof me);
		errlist_add(errs, "%s: refusing a %s owned by %s (mode %04o), "
		    "not by root or migd's user %s: %s could change what migd "
		    "does (chown root %s)", path, what, owner, mode, me, owner,
		    path);
		return (0);
	}
	if (st->st_mode & S_IWOTH) {
		path_user(st->st_uid, owner, sizeof owner);
		errlist_add(errs, "%s: refusing a %s writable by other users "
		    "(owner %s, mode %04o): chmod o-w %s", path, what, owner,
		    mode, path);
		return (0);
	}
	if (st->st_mode & S_IWGRP) {
		path_user(st->st_uid, owner, sizeof owner);
		(void)getgrgid_r(st->st_gid, &grb, gbuf, sizeof gbuf, &gr);
		if (gr == NULL || strcmp(gr->gr_name, owner) != 0 ||
		    (gr->gr_mem != NULL && gr->gr_mem[0] != NULL)) {
			errlist_add(errs, "%s: refusing a %s writable by group "
			    "%s (owner %s, mode %04o): chmod g-w %s", path,
			    what, gr ? gr->gr_name : "?", owner, mode, path);
			return (0);
		}
	}
	return (1);
}

/* The directory a path is in, as dirname(1) says it ("." for a bare name,
 * "/" for one in the root), in memory of its own. */
char *
path_dir(const char *path)
{
	char	*dir, *slash;

	dir = xstrdup(path);
	if ((slash = strrchr(dir, '/')) == NULL) {
		free(dir);
		return (xstrdup("."));
	}
	if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	return (dir);
}

/*
 * The wait before retry number retry (from 1): base doubled each retry,
 * capped at cap, then jittered to between half and all of it (rnd is any
 * random number), so that runs blocked by the same holder do not all come
 * back at the same moment.
 */
long
backoff_jittered(long base, long cap, int retry, unsigned long rnd)
{
	long	 d = base;
	int	 i;

	if (base <= 0 || cap <= 0)
		return (0);
	for (i = 1; i < retry && d < cap; i++)
		d = d > cap / 2 ? cap : d * 2;
	if (d > cap)
		d = cap;
	return (d - d / 2 + (long)(rnd % (unsigned long)(d / 2 + 1)));
}

/* A parallel_each in progress. */
struct parallel {
	void		(*fn)(void *, size_t);
	void		*arg;
	size_t		 n;
	atomic_size_t	 next;		/* the next index to take */
};

/* A worker: indices taken one at a time until none is left. */
static void *
parallel_worker(void *arg)
{
	struct parallel	*p = arg;
	size_t		 i;

	while ((i = atomic_fetch_add(&p->next, 1)) < p->n)
		p->fn(p->arg, i);
	return (NULL);
}

/*
 * fn(arg, i) for every i below n, on this thread and up to
 * PARALLEL_THREADS - 1 more when there are cores and work enough; each
 * call must touch only its own i's data.  Returns when all are done.
 */
void
parallel_each(size_t n, void (*fn)(void *, size_t), void *arg)
{
	struct parallel	 p = { fn, arg, n, 0 };
	pthread_t	 tid[PARALLEL_THREADS];
	long		 cpus = sysconf(_SC_NPROCESSORS_ONLN);
	size_t		 want = 0, started = 0, i;

	if (n >= PARALLEL_MIN && cpus > 1)
		want = (size_t)(cpus < PARALLEL_THREADS ? cpus :
		    PARALLEL_THREADS) - 1;
	while (started < want && pthread_create(&tid[started], NULL,
	    parallel_worker, &p) == 0)
		started++;
	parallel_worker(&p);
	for (i = 0; i < started; i++)
		pthread_join(tid[i], NULL);
}

/*
 * qsort for arrays mostly in order already (a directory's files as the walk
 * met them, a tool's versions): a stable merge sort, bottom up, that joins
 * two sorted runs without merging when the last of one comes before the
 * first of the other, so a sorted array costs n - 1 comparisons and one
 * with neighbours swapped about as many; n log n at worst.
 */
void
sort_runs(void *base, size_t n, size_t size,
    int (*cmp)(const void *, const void *))
{
	char	*src = base, *dst, *tmp, *t;
	size_t	 width, lo, mid, hi, l, r, k;

	if (n < 2)
		return;
	dst = tmp = xreallocarray(NULL, n, size);
	for (width = 1; width < n; width *= 2) {
		for (lo = 0; lo < n; lo += 2 * width) {
			mid = lo + width < n ? lo + width : n;
			hi = lo + 2 * width < n ? lo + 2 * width : n;
			if (mid == hi || cmp(src + (mid - 1) * size,
			    src + mid * size) <= 0) {
				memcpy(dst + lo * size, src + lo * size,
				    (hi - lo) * size);
				continue;
			}
			for (l = lo, r = mid, k = lo; l < mid && r < hi; k++) {
				if (cmp(src + r * size, src + l * size) < 0)
					memcpy(dst + k * size, src + r++ * size,
					    size);
				else
					memcpy(dst + k * size, src + l++ * size,
					    size);
			}
			memcpy(dst + k * size, src + l * size, (mid - l) * size);
			k += mid - l;
			memcpy(dst + k * size, src + r * size, (hi - r) * size);
		}
		t = src;
		src = dst;
		dst = t;
	}
	if (src != base)
		memcpy(base, src, n * size);
	free(tmp);
}

/* Edit distance of two short words (a, la bytes long, and b), for "did
 * you mean"; (size_t)-1 for long ones. */
size_t
word_distance(const char *a, size_t la, const char *b)
{
	size_t	 lb = strlen(b), i, j, prev, cur, row[64];

	if (la >= nitems(row) || lb >= nitems(row))
		return ((size_t)-1);
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		prev = row[0];
		row[0] = i;
		for (j = 1; j <= lb; j++) {
			cur = row[j];
			row[j] = prev + (a[i - 1] == b[j - 1] ? 0 : 1);
			if (row[j - 1] + 1 < row[j])
				row[j] = row[j - 1] + 1;
			if (cur + 1 < row[j])
				row[j] = cur + 1;
			prev = cur;
		}
	}
	return (row[lb]);
}
