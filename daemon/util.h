/* Allocation wrappers and an error list shared by every module of migd and by migctl. */
#ifndef MIGD_UTIL_H
#define MIGD_UTIL_H

#include <sys/types.h>

#include <stdarg.h>
#include <stddef.h>

#define nitems(a) (sizeof(a) / sizeof((a)[0]))

/* Collected strings: "FILE:LINE: message" errors a module adds and the caller
 * reports, or the statements of a query being built. */
struct errlist {
	char	**v;
	size_t	  n;
};

void	*xmalloc(size_t);
void	*xcalloc(size_t, size_t);
void	*xrealloc(void *, size_t);
void	*xreallocarray(void *, size_t, size_t);
char	*xstrdup(const char *);
char	*xstrndup(const char *, size_t);
int	 xasprintf(char **, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
int	 xvasprintf(char **, const char *, va_list)
	    __attribute__((format(printf, 2, 0)));
char	*xprintf(const char *, ...) __attribute__((format(printf, 1, 2)));

size_t	 utf8_valid_prefix(const char *, size_t);
char	*utf8_sanitize(const char *);
char	*utf8_escape_controls(const char *);

struct stat;
int	 path_trusted(const struct stat *, const char *, const char *,
	    struct errlist *);
int	 path_trusted_by(const struct stat *, uid_t, const char *,
	    const char *, struct errlist *);
char	*path_dir(const char *);
size_t	 word_distance(const char *, size_t, const char *);
long	 backoff_jittered(long, long, int, unsigned long);

#define PARALLEL_THREADS	4	/* at most, with this one */
#define PARALLEL_MIN		64	/* fewer items: this thread alone */
void	 parallel_each(size_t, void (*)(void *, size_t), void *);
void	 sort_runs(void *, size_t, size_t,
	    int (*)(const void *, const void *));

void	 errlist_add(struct errlist *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
void	 errlist_take(struct errlist *, char *);
void	 errlist_clear(struct errlist *);
char	*errlist_join(const struct errlist *, const char *);
char	*errlist_join_in(const char *, const struct errlist *, const char *,
	    const char *);

#endif
