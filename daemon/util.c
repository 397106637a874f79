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

/* All the messages as one string, sep between them: for tests and logs. */
char *
errlist_join(const struct errlist *el, const char *sep)
{
	char	*s = xstrdup(""), *t;
	size_t	 i;

	for (i = 0; i < el->n; i++) {
		t = xprintf("%s%s%s", s, i ? sep : "", el->v[i]);
		free(s);
		s = t;
	}
	return (s);
}
