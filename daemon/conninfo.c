/*
 * The conninfo as people see it: masked whatever its form.  Passwords
 * (password, sslpassword), a conninfo or URI nested in dbname, and whatever
 * libpq's parse errors quote from a string it could not read never reach
 * migd -n, the log, a reply or status.  Pure: strings in, strings out.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "util.h"
#include "conninfo.h"

#define CONNINFO_MASK		"********"
#define CONNINFO_MAX_DEPTH	4	/* dbname in dbname in dbname ... */

/* password, sslpassword and any later keyword of the kind. */
static int
conninfo_secret_key(const char *keyword)
{
	return (strstr(keyword, "password") != NULL);
}

/* Whether libpq would read this dbname as a conninfo of its own (it does
 * for the first dbname when asked to expand it, as migd and psql do). */
static int
conninfo_nested(const char *dbname)
{
	return (strncmp(dbname, "postgresql://", 13) == 0 ||
	    strncmp(dbname, "postgres://", 11) == 0 ||
	    strchr(dbname, '=') != NULL);
}

/*
 * Whether the conninfo's dbname is itself a conninfo or a URI.  libpq
 * expands only the dbname it is given (migd's whole conninfo), never one
 * inside it: such a dbname reaches the server, password and all, as the
 * name of a database, and the server logs it.
 */
int
conninfo_dbname_nested(const char *conninfo)
{
	PQconninfoOption	*opts, *o;
	int			 nested = 0;

	if ((opts = PQconninfoParse(conninfo, NULL)) == NULL)
		return (0);
	for (o = opts; o->keyword != NULL; o++) {
		if (strcmp(o->keyword, "dbname") == 0 && o->val != NULL)
			nested = conninfo_nested(o->val);
	}
	PQconninfoFree(opts);
	return (nested);
}

/* Whether word is one of libpq's conninfo keywords. */
static int
conninfo_keyword(const char *word, size_t len)
{
	PQconninfoOption	*opts, *o;
	int			 found = 0;

	if ((opts = PQconninfoParse("", NULL)) == NULL)
		return (0);
	for (o = opts; o->keyword != NULL && !found; o++) {
		found = strlen(o->keyword) == len && strncmp(o->keyword, word,
		    len) == 0;
	}
	PQconninfoFree(opts);
	return (found);
}

/* The keyword a misspelt option name was probably meant to be (to free),
 * or NULL. */
static char *
conninfo_suggest(const char *word, size_t len)
{
	PQconninfoOption	*opts, *o;
	char			*best = NULL;
	size_t			 d, bestd = 3;

	if ((opts = PQconninfoParse("", NULL)) == NULL)
		return (NULL);
	for (o = opts; o->keyword != NULL; o++) {
		d = word_distance(word, len, o->keyword);
		if (d < bestd) {
			bestd = d;
			free(best);
			best = xstrdup(o->keyword);
		}
	}
	PQconninfoFree(opts);
	return (best);
}

/* Where in a URI the first bad %-escape is, in words, or NULL. */
static const char *
conninfo_uri_bad_percent(const char *uri)
{
	const char	*p, *auth, *at, *colon, *slash, *query;
	const char	*where = NULL;
	size_t		 off;

	if (strncmp(uri, "postgresql://", 13) == 0)
		auth = uri + 13;
	else if (strncmp(uri, "postgres://", 11) == 0)
		auth = uri + 11;
	else
		return (NULL);
	for (p = auth; *p != '\0'; p++) {
		if (*p != '%')
			continue;
		if (isxdigit((unsigned char)p[1]) &&
		    isxdigit((unsigned char)p[2]) && !(p[1] == '0' &&
		    p[2] == '0'))
			continue;
		break;
	}
	if (*p == '\0')
		return (NULL);
	off = (size_t)(p - uri);
	/* The parts as libpq splits them: user[:password]@hosts/db?params. */
	slash = auth + strcspn(auth, "/?");
	query = strchr(auth, '?');
	at = memchr(auth, '@', (size_t)(slash - auth));
	if (query != NULL && off > (size_t)(query - uri))
		where = "a query parameter";
	else if (at != NULL && off < (size_t)(at - uri)) {
		colon = memchr(auth, ':', (size_t)(at - auth));
		where = colon != NULL && off > (size_t)(colon - uri) ?
		    "the password" : "the user name";
	} else if (off < (size_t)(slash - uri))
		where = "the host";
	else
		where = "the database name";
	return (where);
}

/*
 * The messages of libpq's conninfo parser (fe-connect.c), as templates: %s
 * is whatever libpq quotes of the string (a password's "%zz", the whole
 * URI), %c one character of it, %d a position.
 */
static const char *conninfo_templates[] = {
	"missing \"=\" after \"%s\" in connection info string",
	"unterminated quoted string in connection info string",
	"invalid connection option \"%s\"",
	"invalid URI propagated to internal parser routine: \"%s\"",
	"end of string reached when looking for matching \"]\" in IPv6 host "
	    "address in URI: \"%s\"",
	"IPv6 host address may not be empty in URI: \"%s\"",
	"unexpected character \"%c\" at position %d in URI (expected \":\" or "
	    "\"/\"): \"%s\"",
	"extra key/value separator \"=\" in URI query parameter: \"%s\"",
	"missing key/value separator \"=\" in URI query parameter: \"%s\"",
	"invalid URI query parameter: \"%s\"",
	"invalid percent-encoded token: \"%s\"",
	"forbidden value %%00 in percent-encoded value: \"%s\"",
	"out of memory",
};

/* What a %s of a template may show: a conninfo keyword, else "...".  Only
 * an option's name gets a "did you mean": the keyword a password resembles
 * would say something of it. */
static void
conninfo_hide(struct errlist *out, const char *s, size_t len, char **guess)
{
	if (len < 64 && conninfo_keyword(s, len)) {
		errlist_add(out, "%.*s", (int)len, s);
		return;
	}
	errlist_add(out, "...");
	if (guess != NULL && *guess == NULL && len < 64)
		*guess = conninfo_suggest(s, len);
}

/*
 * Matches msg against one template; on a match out has the message rebuilt
 * from the template's text, with what it quotes hidden.  %s is matched
 * greedily with backtracking: what libpq quotes may hold quotes itself.
 */
static int
conninfo_match(const char *t, const char *msg, struct errlist *out,
    char **guess)
{
	const char	*end;
	size_t		 before, n;

	for (; *t != '\0'; t++) {
		if (t[0] == '%' && t[1] == '%') {
			if (*msg++ != '%')
				return (0);
			t++;
		} else if (t[0] == '%' && t[1] == 's') {
			/* The longest piece that lets the rest match. */
			before = out->n;
			for (end = msg + strlen(msg); end >= msg; end--) {
				conninfo_hide(out, msg, (size_t)(end - msg),
				    guess);
				if (conninfo_match(t + 2, end, out, guess))
					return (1);
				while (out->n > before)
					free(out->v[--out->n]);
				if (guess != NULL) {
					free(*guess);
					*guess = NULL;
				}
			}
			return (0);
		} else if (t[0] == '%' && t[1] == 'c') {
			if (*msg == '\0')
				return (0);
			errlist_add(out, "%c", isalnum((unsigned char)*msg) ?
			    '?' : *msg);
			msg++;
			t++;
		} else if (t[0] == '%' && t[1] == 'd') {
			n = strspn(msg, "0123456789");
			if (n == 0)
				return (0);
			errlist_add(out, "%.*s", (int)n, msg);
			msg += n;
			t++;
		} else {
			if (*msg != *t)
				return (0);
			msg++;
		}
	}
	return (*msg == '\0');
}

/* A template filled with the pieces conninfo_match kept. */
static char *
conninfo_fill(const char *t, const struct errlist *pieces)
{
	char	*out = xstrdup(""), *s;
	size_t	 k = 0;

	for (; *t != '\0'; t++) {
		if (t[0] == '%' && (t[1] == 's' || t[1] == 'c' ||
		    t[1] == 'd') && k < pieces->n) {
			s = xprintf("%s%s", out, pieces->v[k++]);
			t++;
		} else if (t[0] == '%' && t[1] == '%') {
			s = xprintf("%s%%", out);
			t++;
		} else
			s = xprintf("%s%c", out, *t);
		free(out);
		out = s;
	}
	return (out);
}

/*
 * libpq's parse error made safe to show.  libpq quotes pieces of the string
 * it could not read, so the message is matched against libpq's templates
 * and rebuilt from their text alone: what it quotes is hidden unless it is
 * a keyword (a misspelt one is named by the keyword it resembles).  A
 * message no template matches (another libpq) is not shown at all.  A hint
 * says which part of a URI holds a bad %-escape.
 */
char *
conninfo_error(const char *conninfo, const char *libpq_err)
{
	struct errlist	 pieces = { NULL, 0 };
	const char	*where;
	char		*msg, *out = NULL, *hint, *guess = NULL;
	size_t		 i, len;

	msg = xstrdup(libpq_err != NULL ? libpq_err : "out of memory");
	len = strlen(msg);
	while (len > 0 && isspace((unsigned char)msg[len - 1]))
		msg[--len] = '\0';
	for (i = 0; i < nitems(conninfo_templates) && out == NULL; i++) {
		free(guess);
		guess = NULL;
		/* Only the two messages that quote an option's name. */
		if (conninfo_match(conninfo_templates[i], msg, &pieces,
		    strstr(conninfo_templates[i], "option") != NULL ||
		    strstr(conninfo_templates[i], "invalid URI query") != NULL ?
		    &guess : NULL))
			out = conninfo_fill(conninfo_templates[i], &pieces);
		errlist_clear(&pieces);
	}
	free(msg);
	if (out == NULL)
		out = xstrdup("libpq cannot parse it (its message is not shown: "
		    "it may quote a password)");
	if ((where = conninfo_uri_bad_percent(conninfo)) != NULL)
		hint = xprintf("%s (in %s of the URI: a %% is written %%25 "
		    "there)", out, where);
	else if (guess != NULL)
		hint = xprintf("%s (did you mean %s?)", out, guess);
	else
		hint = xstrdup(out);
	free(guess);
	free(out);
	return (hint);
}

/* Appends key=value, quoting the value when libpq's parser needs it. */
static void
conninfo_append(char **s, const char *key, const char *val)
{
	const char	*p;
	char		*old = *s, *quoted, *q;
	int		 plain = *val != '\0';

	for (p = val; *p != '\0'; p++) {
		if (isspace((unsigned char)*p) || *p == '\'' || *p == '\\')
			plain = 0;
	}
	if (plain)
		quoted = xstrdup(val);
	else {
		quoted = q = xmalloc(strlen(val) * 2 + 3);
		*q++ = '\'';
		for (p = val; *p != '\0'; p++) {
			if (*p == '\'' || *p == '\\')
				*q++ = '\\';
			*q++ = *p;
		}
		*q++ = '\'';
		*q = '\0';
	}
	*s = xprintf("%s%s%s=%s", old, *old ? " " : "", key, quoted);
	free(old);
	free(quoted);
}

static char *
conninfo_mask_depth(const char *conninfo, int depth)
{
	PQconninfoOption	*opts, *o;
	char			*s, *err = NULL, *why, *inner;

	if ((opts = PQconninfoParse(conninfo, &err)) == NULL) {
		why = conninfo_error(conninfo, err);
		PQfreemem(err);
		s = xprintf("<unparseable conninfo: %s>", why);
		free(why);
		return (s);
	}
	s = xstrdup("");
	for (o = opts; o->keyword != NULL; o++) {
		if (o->val == NULL)
			continue;
		if (conninfo_secret_key(o->keyword))
			conninfo_append(&s, o->keyword, CONNINFO_MASK);
		else if (strcmp(o->keyword, "dbname") == 0 &&
		    conninfo_nested(o->val)) {
			inner = depth < CONNINFO_MAX_DEPTH ?
			    conninfo_mask_depth(o->val, depth + 1) :
			    xstrdup(CONNINFO_MASK);
			conninfo_append(&s, o->keyword, inner);
			free(inner);
		} else
			conninfo_append(&s, o->keyword, o->val);
	}
	PQconninfoFree(opts);
	return (s);
}

/*
 * The conninfo to show: key=value pairs (a URI too) with every password
 * replaced by stars, a conninfo nested in dbname masked the same way, and a
 * string libpq cannot parse shown only as <unparseable conninfo: why>.
 */
char *
conninfo_mask(const char *conninfo)
{
	if (conninfo == NULL || *conninfo == '\0')
		return (xstrdup(""));
	return (conninfo_mask_depth(conninfo, 0));
}

/* Collects what must never be shown: the secrets' values, and a nested
 * conninfo's raw text with its masked form. */
static void
conninfo_secrets(const char *conninfo, struct errlist *from,
    struct errlist *to, int depth)
{
	PQconninfoOption	*opts, *o;

	if ((opts = PQconninfoParse(conninfo, NULL)) == NULL)
		return;
	for (o = opts; o->keyword != NULL; o++) {
		if (o->val == NULL || *o->val == '\0')
			continue;
		if (conninfo_secret_key(o->keyword)) {
			errlist_add(from, "%s", o->val);
			errlist_add(to, "%s", CONNINFO_MASK);
		} else if (strcmp(o->keyword, "dbname") == 0 &&
		    conninfo_nested(o->val) && depth < CONNINFO_MAX_DEPTH) {
			errlist_add(from, "%s", o->val);
			errlist_take(to, conninfo_mask_depth(o->val, depth + 1));
			conninfo_secrets(o->val, from, to, depth + 1);
		}
	}
	PQconninfoFree(opts);
}

/* Whether the conninfo holds a password (also one nested in dbname). */
int
conninfo_has_secret(const char *conninfo)
{
	struct errlist	 from = { NULL, 0 }, to = { NULL, 0 };
	size_t		 i;
	int		 found = 0;

	conninfo_secrets(conninfo, &from, &to, 0);
	for (i = 0; i < to.n; i++)
		found |= strcmp(to.v[i], CONNINFO_MASK) == 0;
	errlist_clear(&from);
	errlist_clear(&to);
	return (found);
}

/*
 * text with every secret of the conninfo replaced (a password's value, a
 * nested conninfo's text): for messages that may quote them, such as the
 * server's "database ... does not exist" or the name libpq connected to.
 */
char *
conninfo_scrub(const char *conninfo, const char *text)
{
	struct errlist	 from = { NULL, 0 }, to = { NULL, 0 };
	char		*out = xstrdup(text), *hit, *t;
	size_t		 i, best, blen, pos, start = 0;

	conninfo_secrets(conninfo, &from, &to, 0);
	for (;;) {
		/* The earliest hit, the longest secret there; what replaced
		 * one is not searched again (a password may be "*"). */
		best = from.n;
		blen = 0;
		pos = strlen(out);
		for (i = 0; i < from.n; i++) {
			if ((hit = strstr(out + start, from.v[i])) == NULL)
				continue;
			if ((size_t)(hit - out) < pos || ((size_t)(hit - out) ==
			    pos && strlen(from.v[i]) > blen)) {
				pos = (size_t)(hit - out);
				best = i;
				blen = strlen(from.v[i]);
			}
		}
		if (best == from.n)
			break;
		t = xprintf("%.*s%s%s", (int)pos, out, to.v[best],
		    out + pos + blen);
		free(out);
		out = t;
		start = pos + strlen(to.v[best]);
	}
	errlist_clear(&from);
	errlist_clear(&to);
	return (out);
}
