/*
 * The next migration in another tool's layout, named and started as that
 * tool's own "create" command would (migctl new): pure, no I/O.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "layout.h"
#include "util.h"

/* Whether s is all digits (and not empty). */
static int
layout_num_digits(const char *s)
{
	return (*s != '\0' && strspn(s, "0123456789") == strlen(s));
}

/* Compares two digit strings as numbers. */
static int
layout_num_cmp(const char *a, const char *b)
{
	size_t	 la, lb;

	while (*a == '0' && a[1] != '\0')
		a++;
	while (*b == '0' && b[1] != '\0')
		b++;
	la = strlen(a);
	lb = strlen(b);
	if (la != lb)
		return (la < lb ? -1 : 1);
	return (strcmp(a, b));
}

/* A digit string plus one, zero-padded to at least width digits (to free). */
static char *
layout_num_next(const char *s, size_t width)
{
	size_t	 n, i, skip, pad;
	char	*num, *out;

	while (*s == '0' && s[1] != '\0')
		s++;
	n = strlen(s);
	num = xmalloc(n + 2);
	num[0] = '0';
	memcpy(num + 1, s, n + 1);
	for (i = n + 1; i-- > 0;) {
		if (num[i] != '9') {
			num[i]++;
			break;
		}
		num[i] = '0';
	}
	skip = num[0] == '0' ? 1 : 0;	/* the carry's digit, if unused */
	n = strlen(num + skip);
	pad = n < width ? width - n : 0;
	out = xmalloc(pad + n + 1);
	memset(out, '0', pad);
	memcpy(out + pad, num + skip, n + 1);
	free(num);
	return (out);
}

/* The time as YYYYMMDDHHMMSS in UTC, the versions the tools write. */
static void
layout_stamp(time_t now, char out[15])
{
	struct tm	 tm;

	gmtime_r(&now, &tm);
	if (strftime(out, 15, "%Y%m%d%H%M%S", &tm) != 14)
		strcpy(out, "19700101000000");
}

/* The leading digits of a file name: how wide its tool writes versions. */
static size_t
layout_width(const char *rel)
{
	const char	*base = strrchr(rel, '/');

	base = base != NULL ? base + 1 : rel;
	return (strspn(base, "0123456789"));
}

/*
 * The next version after head (NULL: the directory is empty): a timestamp
 * when head is one (14 digits) or the tool's default is, else head plus one
 * as wide as the head's file writes it; always above head.
 */
static char *
layout_next_version(const char *head, const char *head_rel, int stamped,
    time_t now)
{
	char	 ts[15];

	layout_stamp(now, ts);
	if (head == NULL)
		return (stamped ? xstrdup(ts) : NULL);
	if (strlen(head) == 14) {
		if (layout_num_cmp(ts, head) > 0)
			return (xstrdup(ts));
		return (layout_num_next(head, 14));
	}
	return (layout_num_next(head, head_rel != NULL ?
	    layout_width(head_rel) : 0));
}

/* Fills one file of out. */
static void
layout_put(struct layout_create *out, int down, char *rel, const char *text)
{
	if (down) {
		out->down = rel;
		out->down_text = xstrdup(text);
	} else {
		out->up = rel;
		out->up_text = xstrdup(text);
	}
}

/*
 * The next migration of layout fmt after the newest one: head is its
 * revision id and head_rel its file under the directory, both NULL when
 * the directory is empty; undo: Flyway's undo files are in use.  Returns 0
 * with out filled (clear it with layout_create_clear), or -1 with *cause.
 */
int
layout_create(enum layout_format fmt, const char *head, const char *head_rel,
    int undo, time_t now, const char *slug, struct layout_create *out,
    char **cause)
{
	char	*v, *major;

	memset(out, 0, sizeof *out);
	*cause = NULL;
	if (head != NULL && fmt != LAYOUT_FLYWAY && !layout_num_digits(head)) {
		*cause = xprintf("the newest %s version, '%s', is not a number",
		    layout_name(fmt), head);
		return (-1);
	}
	switch (fmt) {
	case LAYOUT_GOLANG_MIGRATE:
		/* migrate create -seq -digits 6, the usual start. */
		v = head == NULL ? xstrdup("000001") :
		    layout_next_version(head, head_rel, 0, now);
		layout_put(out, 0, xprintf("%s_%s.up.sql", v, slug), "");
		layout_put(out, 1, xprintf("%s_%s.down.sql", v, slug), "");
		break;
	case LAYOUT_SQLX:
		v = layout_next_version(head, head_rel, 1, now);
		layout_put(out, 0, xprintf("%s_%s.up.sql", v, slug),
		    "-- Add up migration script here\n");
		layout_put(out, 1, xprintf("%s_%s.down.sql", v, slug),
		    "-- Add down migration script here\n");
		break;
	case LAYOUT_DIESEL:
		v = layout_next_version(head, head_rel, 1, now);
		if (strlen(v) == 14)
			out->dir = xprintf("%.4s-%.2s-%.2s-%.6s_%s", v, v + 4,
			    v + 6, v + 8, slug);
		else
			out->dir = xprintf("%s_%s", v, slug);
		layout_put(out, 0, xprintf("%s/up.sql", out->dir),
		    "-- Your SQL goes here\n");
		layout_put(out, 1, xprintf("%s/down.sql", out->dir),
		    "-- This file should undo anything in `up.sql`\n");
		break;
	case LAYOUT_DBMATE:
		v = layout_next_version(head, head_rel, 1, now);
		layout_put(out, 0, xprintf("%s_%s.sql", v, slug),
		    "-- migrate:up\n\n\n-- migrate:down\n\n");
		break;
	case LAYOUT_GOOSE:
		v = layout_next_version(head, head_rel, 1, now);
		layout_put(out, 0, xprintf("%s_%s.sql", v, slug),
		    "-- +goose Up\n\n-- +goose Down\n");
		break;
	case LAYOUT_FLYWAY:
		/* The next major version; a timestamped project stays one. */
		if (head == NULL)
			v = xstrdup("1");
		else {
			major = xstrndup(head, strspn(head, "0123456789"));
			if (*major == '\0') {
				*cause = xprintf("the newest Flyway version, "
				    "'%s', does not start with a number", head);
				free(major);
				return (-1);
			}
			v = layout_next_version(major, NULL, 0, now);
			free(major);
		}
		layout_put(out, 0, xprintf("V%s__%s.sql", v, slug), "");
		if (undo)
			layout_put(out, 1, xprintf("U%s__%s.sql", v,
			    slug), "");
		break;
	default:
		*cause = xprintf("migctl new writes %s files itself",
		    layout_name(fmt));
		return (-1);
	}
	free(v);
	return (0);
}

/* Frees what layout_create filled. */
void
layout_create_clear(struct layout_create *out)
{
	free(out->dir);
	free(out->up);
	free(out->up_text);
	free(out->down);
	free(out->down_text);
	memset(out, 0, sizeof *out);
}
