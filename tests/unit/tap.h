/* Minimal TAP producer for migd's C unit tests: ok(), is_str(), is_int(), done_testing(). */
#ifndef MIGD_TAP_H
#define MIGD_TAP_H

#include <stdio.h>
#include <string.h>

#include "util.h"

static int tap_n, tap_failed;

/* Prints one TAP line and remembers failures so main() can return non-zero. */
#define ok(cond, ...) do {						\
	int ok_c_ = (cond) ? 1 : 0;					\
	tap_n++;							\
	if (!ok_c_)							\
		tap_failed++;						\
	printf("%s %d - ", ok_c_ ? "ok" : "not ok", tap_n);		\
	printf(__VA_ARGS__);						\
	printf("\n");							\
	if (!ok_c_)							\
		printf("#   failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
} while (0)

#define is_str(got, want, ...) do {					\
	const char *g_ = (got), *w_ = (want);				\
	int same_ = (g_ == NULL && w_ == NULL) ||			\
	    (g_ != NULL && w_ != NULL && strcmp(g_, w_) == 0);		\
	ok(same_, __VA_ARGS__);						\
	if (!same_)							\
		printf("#   got:  '%s'\n#   want: '%s'\n",		\
		    g_ ? g_ : "(null)", w_ ? w_ : "(null)");		\
} while (0)

#define is_int(got, want, ...) do {					\
	long long g_ = (long long)(got), w_ = (long long)(want);	\
	ok(g_ == w_, __VA_ARGS__);					\
	if (g_ != w_)							\
		printf("#   got:  %lld\n#   want: %lld\n", g_, w_);	\
} while (0)

/* Ends the plan; the return value is main()'s exit status. */
static inline int done_testing(void) {
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}

/* A copy of pattern with every "@" replaced by dir, for expected messages
 * that name a temporary directory; to free. */
static inline char *
tap_expand(const char *pattern, const char *dir)
{
	char		*s = xstrdup(""), *t;
	const char	*p, *q;

	for (p = pattern; (q = strchr(p, '@')) != NULL; p = q + 1) {
		t = xprintf("%s%.*s%s", s, (int)(q - p), p, dir);
		free(s);
		s = t;
	}
	t = xprintf("%s%s", s, p);
	free(s);
	return (t);
}

/* A copy of s with every token replaced by value, for expected messages
 * that name something of the machine (the user running the tests); to free. */
static inline char *
tap_subst(const char *s, const char *token, const char *value)
{
	char		*out = xstrdup(""), *t;
	const char	*p, *q;

	for (p = s; (q = strstr(p, token)) != NULL; p = q + strlen(token)) {
		t = xprintf("%s%.*s%s", out, (int)(q - p), p, value);
		free(out);
		out = t;
	}
	t = xprintf("%s%s", out, p);
	free(out);
	return (t);
}

#endif
