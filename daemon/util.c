/* Allocation wrappers that abort on exhaustion, and the error list. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

void
errlist_add(struct errlist *el, const char *fmt, ...)
{
	va_list	 ap;

	el->v = xreallocarray(el->v, el->n + 1, sizeof *el->v);
	va_start(ap, fmt);
	xvasprintf(&el->v[el->n], fmt, ap);
	va_end(ap);
	el->n++;
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
