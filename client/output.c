/*
 * migctl's output for people: aligned tables, one line of progress per
 * migration, colour only on a terminal and never with NO_COLOR.  Scripts use
 * --json instead, which prints the daemon's own result.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "migctl.h"
#include "migd/protocol.h"
#include "util.h"

#define BOLD	"\033[1m"
#define RED	"\033[31m"
#define GREEN	"\033[32m"
#define YELLOW	"\033[33m"
#define DIM	"\033[2m"
#define RESET	"\033[0m"

/* The plural's "s": "1 revision", "2 revisions". */
#define PL(n)	((n) == 1 ? "" : "s")

/* Keys whose text is shown over several lines: a newline and a tab are
 * legitimate there (SQL, PostgreSQL's detail, hint and context). */
static const char *out_multiline[] = {
	"statement", "detail", "hint", "context", "sql", "log"
};

/* The length of the valid UTF-8 character at s (n bytes left), or 0. */
static size_t
out_utf8_len(const unsigned char *s, size_t n, unsigned long *cp)
{
	size_t	 len, i;

	if (s[0] < 0x80) {
		*cp = s[0];
		return (1);
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, *cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, *cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, *cp = s[0] & 0x07;
	else
		return (0);
	if (len > n)
		return (0);
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return (0);
		*cp = (*cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && (*cp < 0x800 || (*cp >= 0xd800 && *cp <= 0xdfff))) ||
	    (len == 4 && (*cp < 0x10000 || *cp > 0x10ffff)))
		return (0);
	return (len);
}

/*
 * Text from migd, PostgreSQL or a file made safe for a terminal: control
 * characters are shown, never sent.  C0 (\xHH, or \n \r \t), DEL and
 * bytes that are not UTF-8 (\xHH), C1 (\u0080 to \u009f, which some
 * terminals obey as ESC sequences).  With lines, a newline and a tab stay
 * (multi-line SQL and PostgreSQL's detail); a carriage return never does,
 * as it would let text overwrite what came before it.
 */
char *
out_escape(const char *text, size_t n, int lines)
{
	const unsigned char	*s = (const unsigned char *)text;
	unsigned long		 cp;
	size_t			 i = 0, k, o = 0;
	char			*out;

	out = malloc(n * 6 + 1);
	if (out == NULL)
		abort();
	while (i < n) {
		if ((k = out_utf8_len(s + i, n - i, &cp)) == 0) {
			o += (size_t)sprintf(out + o, "\\x%02x", s[i]);
			i++;
			continue;
		}
		if (lines && (cp == '\n' || cp == '\t'))
			out[o++] = (char)cp;
		else if (cp == '\n' || cp == '\r' || cp == '\t') {
			out[o++] = '\\';
			out[o++] = cp == '\n' ? 'n' : cp == '\r' ? 'r' : 't';
		} else if (cp < 0x20 || cp == 0x7f)
			o += (size_t)sprintf(out + o, "\\x%02lx", cp);
		else if (cp >= 0x80 && cp <= 0x9f)
			o += (size_t)sprintf(out + o, "\\u%04lx", cp);
		else {
			memcpy(out + o, s + i, k);
			o += k;
		}
		i += k;
	}
	out[o] = '\0';
	return (out);
}

/* A server's text on one line of the terminal (a notice), escaped. */
static char *
out_line(const char *s)
{
	return (out_escape(s, strlen(s), 0));
}

/* Escapes one string value in place; lines as out_escape's. */
static void
out_clean_string(json_t *v, int lines)
{
	char	*e;

	e = out_escape(json_string_value(v), json_string_length(v), lines);
	if (strcmp(e, json_string_value(v)) != 0)
		json_string_set(v, e);
	free(e);
}

/* Whether a key's text may span lines. */
static int
out_is_multiline(const char *key)
{
	size_t	 i;

	for (i = 0; key != NULL && i < nitems(out_multiline); i++) {
		if (strcmp(key, out_multiline[i]) == 0)
			return (1);
	}
	return (0);
}

/* Walks a value, escaping every string below it; key names its member. */
static void
out_clean_value(json_t *v, const char *key)
{
	json_t		*x;
	const char	*k;
	size_t		 i;

	if (json_is_string(v))
		out_clean_string(v, out_is_multiline(key));
	else if (json_is_object(v)) {
		json_object_foreach(v, k, x)
			out_clean_value(x, k);
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, x)
			out_clean_value(x, key);
	}
}

/*
 * Escapes, in place, every string of a message before a printer for people
 * sees it: the one place terminal escape sequences from migd, PostgreSQL or
 * a file (a `-- message:` header, SQL, an error) are neutralised, so no
 * printer can forget.  JSON output needs none: jansson escapes it.
 */
void
out_clean(json_t *v)
{
	out_clean_value(v, NULL);
}

/* "migctl: " and a message for people on stderr, escaped: it may quote a
 * file's path or text. */
void
out_warnx(const char *fmt, ...)
{
	va_list	 ap;
	char	*msg, *e;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) == -1)
		abort();
	va_end(ap);
	e = out_escape(msg, strlen(msg), 0);
	fprintf(stderr, "migctl: %s\n", e);
	free(e);
	free(msg);
}

/* Writes text that came from elsewhere (a log) to fd, escaped. */
void
out_write_escaped(int fd, const char *buf, size_t n)
{
	char	*e;
	size_t	 len, off = 0;
	ssize_t	 w;

	e = out_escape(buf, n, 1);
	len = strlen(e);
	while (off < len) {
		if ((w = write(fd, e + off, len - off)) <= 0)
			break;
		off += (size_t)w;
	}
	free(e);
}

/* A colour code when colour is on, else nothing. */
static const char *
c(const char *code)
{
	return (opts.color ? code : "");
}

/* The same for stderr, which may be redirected when stdout is not. */
static const char *
ce(const char *code)
{
	return (opts.color_err ? code : "");
}

/* Widens a column to fit s. */
static void
out_fit(int *width, const char *s)
{
	int	 len = (int)strlen(s);

	if (len > *width)
		*width = len;
}

/* A string member, or a dash when missing or null. */
const char *
out_str(json_t *o, const char *key)
{
	const char	*s = json_string_value(json_object_get(o, key));

	return (s != NULL && *s != '\0' ? s : "-");
}

/* Seconds as "1h 2m", "3m 4s" or "1.5s". */
static void
out_duration(char *buf, size_t len, double secs)
{
	long	 s = (long)secs;

	if (s >= 86400)
		snprintf(buf, len, "%ldd %ldh", s / 86400, s % 86400 / 3600);
	else if (s >= 3600)
		snprintf(buf, len, "%ldh %ldm", s / 3600, s % 3600 / 60);
	else if (s >= 60)
		snprintf(buf, len, "%ldm %lds", s / 60, s % 60);
	else
		snprintf(buf, len, "%.1fs", secs);
}

/* Milliseconds for a person: 12 ms, 1.4 s. */
static void
out_ms(char *buf, size_t len, double ms)
{
	if (ms < 1000)
		snprintf(buf, len, "%.0f ms", ms);
	else
		snprintf(buf, len, "%.1f s", ms / 1000);
}

/* The ids of an array of strings or of {revision} objects, joined. */
static char *
out_ids(json_t *a)
{
	json_t	*v;
	size_t	 i, len = 1;
	char	*s;
	const char *id;

	s = calloc(1, 1);
	json_array_foreach(a, i, v) {
		id = json_is_string(v) ? json_string_value(v) :
		    out_str(v, "revision");
		len += strlen(id) + 2;
		s = realloc(s, len);
		if (i > 0)
			strcat(s, ", ");
		strcat(s, id);
	}
	if (s == NULL || *s == '\0') {
		free(s);
		s = strdup("base (nothing applied)");
	}
	return (s);
}

/* current and heads from the last valid set of files: say so, and why. */
static void
out_stale(json_t *res)
{
	json_t	*errors = json_object_get(res, "errors"), *v;
	size_t	 i, n = json_array_size(errors);

	if (!json_is_true(json_object_get(res, "stale")))
		return;
	printf("%sstale:%s from the last valid set of files; the files have "
	    "%zu problem%s now%s\n", c(YELLOW), c(RESET), n, PL(n), n ? ":" :
	    "");
	json_array_foreach(errors, i, v)
		printf("  %s\n", json_is_string(v) ? json_string_value(v) :
		    out_str(v, "message"));
}

/* The state word, coloured by how good it is. */
static void
out_state(const char *state)
{
	const char	*col = YELLOW;

	if (strcmp(state, "up_to_date") == 0)
		col = GREEN;
	else if (strcmp(state, "pending") != 0)
		col = RED;
	printf("%s%s%s", c(col), state, c(RESET));
}

void
out_status(json_t *res)
{
	json_t	*d = json_object_get(res, "daemon");
	json_t	*db = json_object_get(res, "database");
	json_t	*pool = json_object_get(db, "pool");
	json_t	*mig = json_object_get(res, "migrations");
	json_t	*errors = json_object_get(mig, "errors"), *v;
	const char *fmt;
	char	 up[64], *ids;
	size_t	 i;

	out_duration(up, sizeof up, json_number_value(json_object_get(d,
	    "uptime")));
	printf("%smigd %s%s, pid %lld, up %s\n", c(BOLD), out_str(d,
	    "version"), c(RESET), (long long)json_integer_value(
	    json_object_get(d, "pid")), up);
	printf("state:       ");
	out_state(out_str(res, "state"));
	if (json_is_true(json_object_get(res, "stale")))
		printf(" (from the last answer: every connection is busy)");
	if ((v = json_object_get(res, "waiting_for_slot")) != NULL)
		printf(", a run waits for a connection slot (%lld of %lld in "
		    "use, max_connections_total)", (long long)
		    json_integer_value(json_object_get(v, "in_use")),
		    (long long)json_integer_value(json_object_get(v,
		    "max_connections_total")));
	else if (json_is_true(json_object_get(res, "running")))
		printf(", a migration is running");
	if (json_is_true(json_object_get(mig, "loading")) &&
	    strcmp(out_str(res, "state"), "loading") != 0)
		printf(", migd is loading changed migration files (this "
		    "answer is from the files as they were)");
	printf("\n");
	if (json_object_get(res, "current") != NULL) {
		ids = out_ids(json_object_get(res, "current"));
		printf("current:     %s\n", ids);
		free(ids);
	}
	if (json_is_integer(json_object_get(res, "pending")))
		printf("pending:     %lld\n", (long long)json_integer_value(
		    json_object_get(res, "pending")));
	if (json_is_true(json_object_get(db, "connected"))) {
		printf("database:    %s as %s on %s port %s (PostgreSQL %s)\n",
		    out_str(db, "database"), out_str(db, "user"),
		    out_str(db, "host"), out_str(db, "port"),
		    out_str(db, "server_version"));
	} else {
		printf("database:    %snot connected%s: %s\n", c(RED),
		    c(RESET), out_str(db, "last_error"));
	}
	printf("pool:        %lld connection%s, %lld connected, %lld busy\n",
	    (long long)json_integer_value(json_object_get(pool, "size")),
	    PL(json_integer_value(json_object_get(pool, "size"))),
	    (long long)json_integer_value(json_object_get(pool, "connected")),
	    (long long)json_integer_value(json_object_get(pool, "busy")));
	printf("migrations:  %s", out_str(mig, "directory"));
	if (json_is_integer(json_object_get(mig, "revisions"))) {
		ids = out_ids(json_object_get(mig, "heads"));
		fmt = out_str(mig, "format");
		if (strcmp(fmt, "-") != 0 && strcmp(fmt, "migd") != 0)
			printf(" (%s files, ", fmt);
		else
			printf(" (");
		printf("%lld revision%s", (long long)json_integer_value(
		    json_object_get(mig, "revisions")), PL(json_integer_value(
		    json_object_get(mig, "revisions"))));
		/* No revision, no head: not "heads base". */
		if (json_array_size(json_object_get(mig, "heads")) != 0)
			printf(", head%s %s", PL(json_array_size(
			    json_object_get(mig, "heads"))), ids);
		printf("%s)", json_is_true(json_object_get(mig, "stale")) ?
		    "; the last valid set" : "");
		free(ids);
	}
	printf("\n");
	json_array_foreach(errors, i, v)
		printf("  %serror:%s %s\n", c(RED), c(RESET),
		    json_string_value(v));
	out_verify(res);
}

void
out_version(json_t *res)
{
	printf("%s %s (protocol %lld)\n", out_str(res, "name"),
	    out_str(res, "version"), (long long)json_integer_value(
	    json_object_get(res, "protocol")));
}

void
out_current(json_t *res)
{
	json_t	*cur = json_object_get(res, "current"), *v;
	size_t	 i;
	int	 w = 0;

	if (json_array_size(cur) == 0)
		printf("base (nothing applied)\n");
	json_array_foreach(cur, i, v)
		out_fit(&w, out_str(v, "revision"));
	json_array_foreach(cur, i, v) {
		printf("%s%-*s%s %s\n", c(BOLD), w, out_str(v, "revision"),
		    c(RESET), out_str(v, "message"));
	}
	printf("state: ");
	out_state(out_str(res, "state"));
	if (json_is_integer(json_object_get(res, "pending")))
		printf(", %lld pending", (long long)json_integer_value(
		    json_object_get(res, "pending")));
	printf("\n");
	out_verify(res);
	out_stale(res);
}

void
out_heads(json_t *res)
{
	json_t	*heads = json_object_get(res, "heads"), *v;
	size_t	 i;
	int	 w = 4;

	json_array_foreach(heads, i, v)
		out_fit(&w, out_str(v, "revision"));
	printf("%s%-*s %-8s %-8s %s%s\n", c(DIM), w, "HEAD", "APPLIED",
	    "CURRENT", "MESSAGE", c(RESET));
	json_array_foreach(heads, i, v) {
		printf("%-*s %-8s %-8s %s\n", w, out_str(v, "revision"),
		    json_is_true(json_object_get(v, "applied")) ? "yes" : "no",
		    json_is_true(json_object_get(v, "current")) ? "yes" : "no",
		    out_str(v, "message"));
	}
	out_stale(res);
}

/* A JSON array of ids joined with ", ", as Alembic's format_as_comma. */
static void
out_comma(json_t *a)
{
	json_t	*v;
	size_t	 i;

	json_array_foreach(a, i, v)
		printf("%s%s", i ? ", " : "", json_is_string(v) ?
		    json_string_value(v) : "?");
}

/*
 * The revision graph, newest first, exactly as `alembic history` prints it:
 * "PARENTS[ (DEPENDS_ON)] -> REV[ (head)][ (branchpoint)][ (mergepoint)],
 * MESSAGE", with <base> for a root, and "(effective head)" for a head that
 * another revision depends on.  The same from migd and from the files.
 */
void
out_revisions(json_t *res)
{
	json_t		*list = json_object_get(res, "revisions"), *v, *x;
	json_t		*depended = json_object();
	const char	*id;
	size_t		 i, k;

	json_array_foreach(list, i, v) {
		json_array_foreach(json_object_get(v, "depends_on"), k, x) {
			if (json_is_string(x))
				json_object_set_new(depended,
				    json_string_value(x), json_true());
		}
	}
	json_array_foreach(list, i, v) {
		id = out_str(v, "revision");
		if (json_array_size(json_object_get(v, "parents")) == 0)
			printf("<base>");
		else
			out_comma(json_object_get(v, "parents"));
		if (json_array_size(json_object_get(v, "depends_on")) != 0) {
			printf(" (");
			out_comma(json_object_get(v, "depends_on"));
			printf(")");
		}
		printf(" -> %s%s%s%s, %s\n", id,
		    !json_is_true(json_object_get(v, "head")) ? "" :
		    json_object_get(depended, id) != NULL ?
		    " (effective head)" : " (head)",
		    json_is_true(json_object_get(v, "branchpoint")) ?
		    " (branchpoint)" : "",
		    json_is_true(json_object_get(v, "mergepoint")) ?
		    " (mergepoint)" : "",
		    json_is_string(json_object_get(v, "message")) ?
		    json_string_value(json_object_get(v, "message")) : "");
	}
	json_decref(depended);
}

/* What a history row says happened. */
static const char *
out_result(json_t *row)
{
	if (json_is_true(json_object_get(row, "dirty")))
		return ("DIRTY");
	if (json_is_true(json_object_get(row, "success")))
		return ("ok");
	return ("FAILED");
}

/* The history table, its columns as wide as their longest value. */
void
out_history(json_t *res)
{
	json_t		*rows = json_object_get(res, "history"), *v;
	size_t		 i;
	char		 ms[32], id[32];
	const char	*result;
	int		 wid = 2, wat = 13, wact = 6, wrev = 8, wdur = 8;

	if (json_array_size(rows) == 0) {
		if (json_is_string(json_object_get(res, "revision")))
			printf("no history for %s yet\n", out_str(res,
			    "revision"));
		else
			printf("no history yet\n");
		return;
	}
	json_array_foreach(rows, i, v) {
		snprintf(id, sizeof id, "%lld", (long long)json_integer_value(
		    json_object_get(v, "id")));
		out_fit(&wid, id);
		out_fit(&wat, out_str(v, "started_at"));
		out_fit(&wact, out_str(v, "direction"));
		out_fit(&wrev, out_str(v, "revision"));
		out_ms(ms, sizeof ms, json_number_value(json_object_get(v,
		    "duration_ms")));
		out_fit(&wdur, ms);
	}
	printf("%s%-*s %-*s %-*s %-*s %-6s %*s  %s%s\n", c(DIM), wid, "ID",
	    wat, "STARTED (UTC)", wact, "ACTION", wrev, "REVISION", "RESULT",
	    wdur, "DURATION", "BY", c(RESET));
	json_array_foreach(rows, i, v) {
		out_ms(ms, sizeof ms, json_number_value(json_object_get(v,
		    "duration_ms")));
		result = out_result(v);
		printf("%*lld %-*s %-*s %-*s %s%-6s%s %*s  %s\n", wid,
		    (long long)json_integer_value(json_object_get(v, "id")),
		    wat, out_str(v, "started_at"), wact, out_str(v,
		    "direction"), wrev, out_str(v, "revision"),
		    c(strcmp(result, "ok") == 0 ? GREEN : RED), result,
		    c(RESET), wdur, ms, out_str(v, "requested_by"));
		if (json_integer_value(json_object_get(v, "attempt")) > 1)
			printf("%*s %sattempt %lld (lock_retries)%s\n", wid, "",
			    c(DIM), (long long)json_integer_value(
			    json_object_get(v, "attempt")), c(RESET));
		if (json_is_string(json_object_get(v, "error")))
			printf("%*s %s%s%s\n", wid, "", c(DIM), out_str(v,
			    "error"), c(RESET));
	}
}

/* The catalog's estimate of a finding's table, unless its message (a
 * small table's) says it already. */
static void
out_lint_rows(json_t *f)
{
	if (json_is_integer(json_object_get(f, "rows")) && strcmp(out_str(f,
	    "severity"), "info") != 0)
		printf(" [table has ~%lld rows]", (long long)
		    json_integer_value(json_object_get(f, "rows")));
}

/* Who holds or waits for a lock on a finding's table, one line each. */
static void
out_blockers(json_t *f)
{
	json_t		*b;
	size_t		 i;
	const char	*state;

	json_array_foreach(json_object_get(f, "blockers"), i, b) {
		state = json_is_string(json_object_get(b, "state")) ?
		    out_str(b, "state") : "?";
		printf("      %sblocker:%s pid %lld, user %s, application_name "
		    "'%s', %s", c(YELLOW), c(RESET), (long long)
		    json_integer_value(json_object_get(b, "pid")),
		    json_is_string(json_object_get(b, "usename")) ?
		    out_str(b, "usename") : "?",
		    json_is_string(json_object_get(b, "application_name")) ?
		    out_str(b, "application_name") : "", state);
		if (json_is_integer(json_object_get(b, "xact_age_s")))
			printf(", transaction %llds old", (long long)
			    json_integer_value(json_object_get(b,
			    "xact_age_s")));
		printf(", %s %s%s\n", json_is_true(json_object_get(b,
		    "granted")) ? "holds" : "waits for", out_str(b, "modes"),
		    json_is_true(json_object_get(b, "conflicts")) ? "" :
		    " (no conflict: a long transaction)");
		if (json_is_string(json_object_get(b, "query")))
			printf("        %s%s%s\n", c(DIM), out_str(b, "query"),
			    c(RESET));
	}
}

/* lint's findings of a plan or a run ([migrations] lint = warn). */
static void
out_lint(json_t *res)
{
	json_t	*f;
	size_t	 i;

	json_array_foreach(json_object_get(res, "lint"), i, f) {
		printf("%slint:%s %s:%lld:%lld: %s: %s: %s", c(strcmp(out_str(f,
		    "severity"), "error") == 0 ? RED : YELLOW), c(RESET),
		    out_str(f, "file"), (long long)json_integer_value(
		    json_object_get(f, "line")), (long long)json_integer_value(
		    json_object_get(f, "column")), out_str(f, "severity"),
		    out_str(f, "rule"), out_str(f, "message"));
		if (json_is_string(json_object_get(f, "ignored")))
			printf(" %s(ignored, %s)%s", c(DIM), out_str(f,
			    "ignored"), c(RESET));
		out_lint_rows(f);
		printf("\n      %slock: %s; instead: %s%s\n", c(DIM), out_str(f,
		    "lock"), out_str(f, "safe"), c(RESET));
		out_blockers(f);
	}
}

/* The lint method's findings, as migctl lint prints them offline, with
 * the blockers migd saw. */
void
out_lint_result(json_t *res)
{
	json_t	*f;
	size_t	 i;

	json_array_foreach(json_object_get(res, "findings"), i, f) {
		printf("%s:%lld:%lld: %s: %s: %s", out_str(f, "file"),
		    (long long)json_integer_value(json_object_get(f, "line")),
		    (long long)json_integer_value(json_object_get(f,
		    "column")), out_str(f, "severity"), out_str(f, "rule"),
		    out_str(f, "message"));
		if (json_is_string(json_object_get(f, "ignored")))
			printf(" (ignored, %s)", out_str(f, "ignored"));
		out_lint_rows(f);
		printf("\n  lock: %s\n  instead: %s\n", out_str(f, "lock"),
		    out_str(f, "safe"));
		out_blockers(f);
	}
	json_array_foreach(json_object_get(res, "notes"), i, f)
		out_warnx("note: %s", json_string_value(f));
	printf("%lld file%s: %lld error%s, %lld warning%s, %lld info, %lld "
	    "ignored (live: migd's catalog)\n",
	    (long long)json_integer_value(json_object_get(res, "files")),
	    json_integer_value(json_object_get(res, "files")) == 1 ? "" : "s",
	    (long long)json_integer_value(json_object_get(res, "errors")),
	    json_integer_value(json_object_get(res, "errors")) == 1 ? "" : "s",
	    (long long)json_integer_value(json_object_get(res, "warnings")),
	    json_integer_value(json_object_get(res, "warnings")) == 1 ? "" :
	    "s", (long long)json_integer_value(json_object_get(res, "infos")),
	    (long long)json_integer_value(json_object_get(res, "ignored")));
}

void
out_plan(json_t *res)
{
	json_t	*v, *tx, *line, *problems = json_object_get(res, "problems");
	size_t	 i, k, n;
	char	*from, *to;
	int	 w = 0;

	from = out_ids(json_object_get(res, "from"));
	to = out_ids(json_object_get(res, "to"));
	n = json_array_size(json_object_get(res, "steps"));
	printf("%s%s to %s%s: %zu migration%s, from %s to %s\n", c(BOLD),
	    strcmp(out_str(res, "direction"), "up") == 0 ? "upgrade" :
	    "downgrade", out_str(res, "target"), c(RESET), n, PL(n), from, to);
	free(from);
	free(to);
	json_array_foreach(json_object_get(res, "steps"), i, v)
		out_fit(&w, out_str(v, "revision"));
	json_array_foreach(json_object_get(res, "steps"), i, v) {
		printf("  %3zu. %-4s %-*s %s\n", i + 1, out_str(v,
		    "direction"), w, out_str(v, "revision"), out_str(v,
		    "message"));
		tx = json_object_get(v, "transactions");
		printf("       %s%s, %lld statement%s%s%s%s\n", c(DIM),
		    out_str(v, "file"), (long long)json_integer_value(
		    json_object_get(v, "statements")), json_integer_value(
		    json_object_get(v, "statements")) == 1 ? "" : "s",
		    json_is_true(json_object_get(v, "transactional")) ?
		    (tx != NULL ? ", in several transactions:" :
		    ", in a transaction") : ", NOT in a transaction: ",
		    json_is_true(json_object_get(v, "transactional")) ? "" :
		    out_str(v, "why_not_transactional"), c(RESET));
		if (tx != NULL) {
			/* The file's own COMMITs: a failure after the first
			 * leaves it dirty. */
			printf("       %s%lld transaction%s, starting at lines",
			    c(DIM), (long long)json_integer_value(
			    json_object_get(tx, "count")), PL(json_integer_value(
			    json_object_get(tx, "count"))));
			json_array_foreach(json_object_get(tx, "first_lines"),
			    k, line)
				printf("%s %lld", k ? "," : "",
				    (long long)json_integer_value(line));
			printf("%s\n", c(RESET));
		}
		if (json_is_string(json_object_get(v, "unanalyzed")))
			printf("       %snote: %s%s\n", c(YELLOW), out_str(v,
			    "unanalyzed"), c(RESET));
	}
	if (json_array_size(json_object_get(res, "schemas_to_create")) != 0) {
		from = out_ids(json_object_get(res, "schemas_to_create"));
		printf("schemas to create first: %s\n", from);
		free(from);
	}
	out_lint(res);
	json_array_foreach(problems, i, v)
		printf("%scannot run:%s %s\n", c(RED), c(RESET),
		    out_str(v, "message"));
	if (n > 1 && json_is_true(json_object_get(res, "atomic")) &&
	    json_array_size(problems) == 0)
		printf("atomic: all %zu migrations in one transaction\n", n);
	if (n == 0 && json_array_size(problems) == 0)
		printf("nothing to do\n");
}

/* What cancel did: a running run stops at once, a queued one never starts. */
void
out_cancel(json_t *res)
{
	if (strcmp(out_str(res, "cancelled"), "queued") == 0)
		printf("cancelled a queued run: it will not start\n");
	else if (json_is_false(json_object_get(res, "transactional")))
		printf("cancelling the running run at %s: its statement is "
		    "cancelled; the migration runs outside a transaction, so "
		    "what it did stays and it will be marked dirty\n",
		    out_str(res, "revision"));
	else if (json_is_string(json_object_get(res, "revision")))
		printf("cancelling the running run at %s: its statement is "
		    "cancelled and the migration rolls back\n", out_str(res,
		    "revision"));
	else
		printf("cancelling the running run before its first "
		    "migration\n");
}

/* The migration running now, redrawn with its elapsed time on a terminal;
 * out_broken: its line was ended early for a notice (not a terminal). */
static char	*out_running;
static double	 out_started;
static int	 out_ticked;
static int	 out_broken;

static double
out_now(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
}

/* Redraws the running migration's line: "[3/8] up 0005 message ... 4.2s". */
void
out_progress_tick(void)
{
	if (out_running == NULL)
		return;
	printf("\r%s %s%.1fs%s ", out_running, c(DIM), out_now() -
	    out_started, c(RESET));
	out_ticked = 1;
	fflush(stdout);
}

/*
 * A notice or warning of the running migration, on stderr: "NOTICE 0002:
 * text".  A progress line left open on the terminal is cleared first and
 * drawn again after, so the two never share a line.  Elsewhere (a CI log,
 * a pipe: both streams often end in one file) nothing can be cleared: the
 * open line ends before the first notice and is written again, whole, with
 * the step's outcome.
 */
static void
out_notice(json_t *p, int suppressed)
{
	static const char	*more[] = { "detail", "DETAIL", "hint", "HINT" };
	const char		*sev = out_str(p, "severity");
	char			*t;
	size_t			 i;
	int			 redraw = out_running != NULL &&
				    isatty(STDOUT_FILENO);

	if (redraw) {
		printf("\r%*s\r", (int)strlen(out_running) + 12, "");
		fflush(stdout);
	} else if (out_running != NULL && !out_broken) {
		printf("\n");
		fflush(stdout);
		out_broken = 1;
	}
	if (suppressed)
		fprintf(stderr, "NOTICE %s: %lld more notices and warnings "
		    "suppressed\n", out_str(p, "revision"), (long long)
		    json_integer_value(json_object_get(p, "count")));
	else {
		t = out_line(out_str(p, "message"));
		fprintf(stderr, "%s%s%s %s: %s\n", strcmp(sev, "WARNING") ==
		    0 ? ce(YELLOW) : "", sev, strcmp(sev, "WARNING") == 0 ?
		    ce(RESET) : "", out_str(p, "revision"), t ? t : "");
		free(t);
		for (i = 0; i < sizeof more / sizeof more[0]; i += 2) {
			if (json_object_get(p, more[i]) == NULL)
				continue;
			t = out_line(out_str(p, more[i]));
			fprintf(stderr, "  %s: %s\n", more[i + 1], t ? t : "");
			free(t);
		}
	}
	fflush(stderr);
	if (redraw) {
		printf("%s ", out_running);
		out_ticked = 0;
	}
}

/* Progress of a run, from the daemon's notifications. */
void
out_progress(json_t *p)
{
	const char	*ev = out_str(p, "event");
	char		 ms[32], *ids, *t;
	int		 n;

	if (strcmp(ev, "waiting_for_slot") == 0) {
		printf("waiting for a connection slot: %lld of %lld in use "
		    "(max_connections_total)\n", (long long)json_integer_value(
		    json_object_get(p, "in_use")), (long long)
		    json_integer_value(json_object_get(p,
		    "max_connections_total")));
	} else if (strcmp(ev, "waiting_for_lock") == 0) {
		t = out_line(out_str(p, "waiting_for"));
		out_ms(ms, sizeof ms, (double)json_integer_value(
		    json_object_get(p, "lock_wait_ms")));
		printf("waiting for the migration lock, which another run "
		    "holds (%s), for up to %s (lock_wait)\n", t ? t : "", ms);
		free(t);
	} else if (strcmp(ev, "queued") == 0) {
		printf("waiting: %lld run%s ahead of this one\n",
		    (long long)json_integer_value(json_object_get(p,
		    "position")), json_integer_value(json_object_get(p,
		    "position")) == 1 ? "" : "s");
	} else if (strcmp(ev, "schemas") == 0) {
		ids = out_ids(json_object_get(p, "created"));
		printf("created schemas: %s\n", ids);
		free(ids);
	} else if (strcmp(ev, "started") == 0) {
		free(out_running);
		n = asprintf(&out_running, "[%lld/%lld] %-4s %-14s %s ...",
		    (long long)json_integer_value(json_object_get(p, "index")),
		    (long long)json_integer_value(json_object_get(p, "total")),
		    out_str(p, "direction"), out_str(p, "revision"),
		    out_str(p, "message"));
		if (n < 0)
			out_running = NULL;
		out_started = out_now();
		out_broken = 0;
		printf("%s ", out_running ? out_running : "");
	} else if (strcmp(ev, "finished") == 0 || strcmp(ev, "failed") == 0) {
		if (out_running != NULL && out_ticked)
			printf("\r%s ", out_running);	/* over the timer */
		else if (out_running != NULL && out_broken)
			printf("%s ", out_running);
		out_ticked = out_broken = 0;
		out_ms(ms, sizeof ms, json_number_value(json_object_get(p,
		    "duration_ms")));
		if (strcmp(ev, "finished") == 0)
			printf("%sdone%s in %s\n", c(GREEN), c(RESET), ms);
		else
			printf("%sFAILED%s\n", c(RED), c(RESET));
		free(out_running);
		out_running = NULL;
	} else if (strcmp(ev, "waiting") == 0) {
		/* A lock timeout that will be retried: the step's line ends,
		 * and what it waits for is said (lock_retries). */
		if (out_running != NULL) {
			if (out_ticked)
				printf("\r%s ", out_running);
			else if (out_broken)
				printf("%s ", out_running);
			printf("%slock timeout%s\n", c(YELLOW), c(RESET));
		}
		out_ticked = out_broken = 0;
		free(out_running);
		out_running = NULL;
		t = out_line(out_str(p, "waiting_for"));
		printf("waiting %.1f s (retry %lld/%lld): %s\n",
		    (double)json_integer_value(json_object_get(p, "wait_ms")) /
		    1000.0, (long long)json_integer_value(json_object_get(p,
		    "retry")), (long long)json_integer_value(json_object_get(p,
		    "retries")), t ? t : "");
		free(t);
	} else if (strcmp(ev, "notice") == 0)
		out_notice(p, 0);
	else if (strcmp(ev, "notices_suppressed") == 0)
		out_notice(p, 1);
	fflush(stdout);
}

void
out_run(json_t *res)
{
	char	*from, *to, ms[32];
	size_t	 n = json_array_size(json_object_get(res, "steps"));

	if (json_object_get(res, "runnable") != NULL) {
		/* --dry-run: the daemon answered with the plan. */
		out_plan(res);
		printf("dry run: nothing was changed\n");
		return;
	}
	from = out_ids(json_object_get(res, "from"));
	to = out_ids(json_object_get(res, "to"));
	out_ms(ms, sizeof ms, json_number_value(json_object_get(res,
	    "duration_ms")));
	if (n == 0)
		printf("nothing to do: already at %s\n", to);
	else
		printf("%s%s%s: %zu migration%s in %s, now at %s (was %s)\n",
		    c(BOLD), strcmp(out_str(res, "direction"), "up") == 0 ?
		    "upgraded" : "downgraded", c(RESET), n, n == 1 ? "" : "s",
		    ms, to, from);
	free(from);
	free(to);
	out_lint(res);
}

void
out_rows(json_t *res)
{
	char	*from, *to;

	from = out_ids(json_object_get(res, "from"));
	to = out_ids(json_object_get(res, "to"));
	printf("version table: %s (was %s%s)\n", to, from, json_is_true(
	    json_object_get(res, "purged")) ? "; emptied first: --purge" : "");
	free(from);
	free(to);
	/* resolve: what a failed index build may have left. */
	if (json_array_size(json_object_get(res, "invalid_indexes")) > 0) {
		to = out_ids(json_object_get(res, "invalid_indexes"));
		printf("%swarning:%s INVALID index%s in the database: %s; drop "
		    "(DROP INDEX CONCURRENTLY) or rebuild before relying on "
		    "them\n", c(YELLOW), c(RESET), json_array_size(
		    json_object_get(res, "invalid_indexes")) == 1 ? "" : "es",
		    to);
		free(to);
	}
}

/* adopt: what it recorded, or why nothing. */
void
out_adopt(json_t *res)
{
	json_t	*list = json_object_get(res, "adopted"), *v;
	size_t	 i;

	if (json_array_size(list) == 0) {
		printf("%s\n", out_str(res, "message"));
		return;
	}
	json_array_foreach(list, i, v) {
		printf("adopted %s  %.12s  %s\n", out_str(v, "revision"),
		    out_str(v, "checksum"), out_str(v, "file"));
		if (json_is_true(json_object_get(v, "unfinished")))
			printf("  unfinished (%s): recorded as applied, without "
			    "a checksum; %s, then adopt again\n",
			    out_str(v, "placeholder"), out_str(v, "fix"));
	}
	if (json_object_get(res, "from") != NULL) {
		json_array_foreach(json_object_get(res, "removed"), i, v)
			printf("passed over %s: recorded by %s, its file "
			    "removed (as %s does)\n", json_string_value(v),
			    out_str(res, "from"), out_str(res, "from"));
		printf("%sadopted from %s:%s %zu applied revision%s, checksums "
		    "recorded; version table at %s\n", c(BOLD), out_str(res,
		    "from"), c(RESET), json_array_size(list),
		    json_array_size(list) == 1 ? "" : "s", json_string_value(
		    json_array_get(json_object_get(res, "version"), 0)));
		return;
	}
	printf("%sadopted:%s %zu applied revision%s, checksums recorded; "
	    "%lld already had one\n", c(BOLD), c(RESET), json_array_size(list),
	    json_array_size(list) == 1 ? "" : "s", (long long)
	    json_integer_value(json_object_get(res, "already_verified")));
}

void
out_accept(json_t *res)
{
	json_t	*v;
	size_t	 i;

	json_array_foreach(json_object_get(res, "accepted"), i, v) {
		printf("accepted: %s (%s), checksum %.12s, was %.12s\n",
		    out_str(v, "revision"), out_str(v, "file"), out_str(v,
		    "file_checksum"), out_str(v, "applied_checksum"));
	}
}

void
out_schemas(json_t *res)
{
	json_t	*list = json_object_get(res, "schemas"), *v;
	size_t	 i;
	int	 w = 6;

	json_array_foreach(list, i, v)
		out_fit(&w, out_str(v, "name"));
	printf("%s%-*s %-7s %-12s %s%s\n", c(DIM), w, "SCHEMA", "EXISTS",
	    "WILL CREATE", "SOURCE", c(RESET));
	json_array_foreach(list, i, v) {
		printf("%-*s %-7s %-12s %s%s\n", w, out_str(v, "name"),
		    json_is_true(json_object_get(v, "exists")) ? "yes" : "no",
		    json_is_true(json_object_get(v, "will_create")) ? "yes" :
		    "no", out_str(v, "source"),
		    json_is_true(json_object_get(v, "created_by_migration")) ?
		    " (created by that migration)" : "");
	}
}

/* Drift, dirty, unknown, skipped and unverified revisions, and why the
 * version table is inconsistent, when there are any. */
void
out_verify(json_t *res)
{
	json_t		*v;
	json_int_t	 n;
	size_t		 i;
	char		*ids;

	json_array_foreach(json_object_get(res, "drift"), i, v) {
		printf("%sdrift:%s %s changed since %s was applied\n", c(RED),
		    c(RESET), out_str(v, "file"), out_str(v, "revision"));
	}
	json_array_foreach(json_object_get(res, "dirty"), i, v) {
		printf("%sdirty:%s %s stopped part-way; see 'migctl resolve'\n",
		    c(RED), c(RESET), json_string_value(v));
	}
	json_array_foreach(json_object_get(res, "unknown"), i, v) {
		printf("%sahead:%s the database has %s, which no file defines\n",
		    c(RED), c(RESET), json_string_value(v));
	}
	json_array_foreach(json_object_get(res, "skipped"), i, v) {
		printf("%sskipped:%s %s (%s) never ran, but the version table "
		    "is past it; see 'migctl resolve'\n", c(RED), c(RESET),
		    out_str(v, "revision"), out_str(v, "file"));
	}
	if (json_is_string(json_object_get(res, "inconsistent")))
		printf("%sinconsistent:%s %s; see 'migctl stamp'\n", c(RED),
		    c(RESET), out_str(res, "inconsistent"));
	if (json_integer_value(json_object_get(res, "unverified_count")) > 0) {
		ids = out_ids(json_object_get(res, "unverified"));
		n = json_integer_value(json_object_get(res, "unverified_count"));
		printf("%sunverified:%s %s", c(YELLOW), c(RESET), ids);
		if (n > (json_int_t)json_array_size(json_object_get(res,
		    "unverified")))
			printf(" and %lld more", (long long)(n - (json_int_t)
			    json_array_size(json_object_get(res,
			    "unverified"))));
		printf("\n  %s\n", out_str(res, "unverified_hint"));
		free(ids);
	}
	if (json_object_get(res, "ok") != NULL && json_object_get(res,
	    "daemon") == NULL) {
		printf("%s\n", json_is_true(json_object_get(res, "ok")) ?
		    "verify: ok" : "verify: problems found");
	}
}

void
out_reload(json_t *res)
{
	json_t	*m = json_object_get(res, "migrations");
	char	*ids;

	if (m == NULL) {
		/* Several databases and no --db: each one's files load. */
		printf("reloaded: the configuration; every database's files "
		    "are read again (migd logs each load)\n");
		return;
	}
	ids = out_ids(json_object_get(m, "heads"));
	printf("reloaded: %lld revision%s", (long long)json_integer_value(
	    json_object_get(m, "revisions")), PL(json_integer_value(
	    json_object_get(m, "revisions"))));
	if (json_array_size(json_object_get(m, "heads")) != 0)
		printf(", head%s %s", PL(json_array_size(json_object_get(m,
		    "heads"))), ids);
	printf("\n");
	free(ids);
}

/* Whether a list item repeats the message (the first problem, mostly). */
static int
out_same(const char *item, const char *msg, size_t len)
{
	return (strlen(item) == len && strncmp(item, msg, len) == 0);
}

/* Where a message's pointer to its list starts, " (and more: see
 * data.errors)" or " (and 2 more problems)"; NULL when it has none. */
static const char *
out_more(const char *msg)
{
	const char	*p, *last = NULL;
	size_t		 len = strlen(msg);

	for (p = msg; (p = strstr(p, " (and ")) != NULL; p++)
		last = p;
	if (last == NULL || msg[len - 1] != ')' || strstr(last, "more") ==
	    NULL)
		return (NULL);
	return (last);
}

/* The strings of data.errors, or the messages of data.problems. */
static const char *
out_item(json_t *v)
{
	return (json_is_string(v) ? json_string_value(v) : out_str(v,
	    "message"));
}

/*
 * An error for a person: the message, then what data adds.  A message that
 * only points to its list ("... (and more: see data.errors)") is replaced
 * by the whole list, each problem once.
 */
void
out_error(json_t *err)
{
	json_t		*data = json_object_get(err, "data"), *v, *list;
	const char	*msg = out_str(err, "message"), *more;
	const char	*kind = out_str(data, "kind");
	size_t		 i, n, len;

	list = json_object_get(data, "errors");
	if (json_array_size(list) == 0)
		list = json_object_get(data, "problems");
	n = json_array_size(list);
	more = out_more(msg);
	len = more != NULL ? (size_t)(more - msg) : strlen(msg);
	if (more != NULL && n > 1) {
		fprintf(stderr, "migctl: %s%zu problems%s:%s\n", ce(RED), n,
		    strcmp(kind, "invalid_migrations") == 0 ?
		    " in the migration files" : "", ce(RESET));
		len = 0;	/* every one below */
	} else
		fprintf(stderr, "migctl: %s%.*s%s\n", ce(RED), (int)len, msg,
		    ce(RESET));
	if (json_is_string(json_object_get(data, "detail")))
		fprintf(stderr, "  detail: %s\n", out_str(data, "detail"));
	if (json_is_string(json_object_get(data, "hint")))
		fprintf(stderr, "  hint: %s\n", out_str(data, "hint"));
	if (json_is_string(json_object_get(data, "statement"))) {
		/* Continuation lines line up under the first. */
		const char *p = out_str(data, "statement");

		fputs("  statement: ", stderr);
		for (; *p != '\0'; p++) {
			fputc(*p, stderr);
			if (*p == '\n')
				fputs("             ", stderr);
		}
		fputc('\n', stderr);
	}
	json_array_foreach(list, i, v) {
		if (!out_same(out_item(v), msg, len))
			fprintf(stderr, "  %s\n", out_item(v));
	}
}

/* Rounds every real to three decimals: durations to the microsecond of
 * their milliseconds, without the noise of binary fractions. */
static void
out_round(json_t *v)
{
	json_t		*x;
	const char	*key;
	char		 buf[64];
	size_t		 i;

	if (json_is_object(v)) {
		json_object_foreach(v, key, x)
			out_round(x);
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, x)
			out_round(x);
	} else if (json_is_real(v)) {
		snprintf(buf, sizeof buf, "%.3f", json_real_value(v));
		json_real_set(v, strtod(buf, NULL));
	}
}

/* Prints JSON for scripts, one document and a newline, reals rounded. */
void
out_json(json_t *v, size_t flags)
{
	char	*s;

	out_round(v);
	s = json_dumps(v, flags | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
	if (s != NULL)
		puts(s);
	free(s);
	fflush(stdout);
}

/* An error for its reader: with --json the JSON-RPC error object on
 * stdout and nothing on stderr, else the message for a person. */
void
out_print_error(json_t *err)
{
	json_t	*o;

	if (!opts.json) {
		out_clean(err);
		out_error(err);
		return;
	}
	o = json_pack("{s:O}", "error", err);
	out_json(o, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(o);
}

/* A failure migctl found itself, said as migd says its own (data.kind, a
 * JSON-RPC code); then exit with the code. */
void
out_fail(int code, const char *kind, json_t *data, const char *fmt, ...)
{
	va_list	 ap;
	json_t	*err;
	char	*msg;
	int	 rpc = MIGCTL_ERR_CLIENT;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) == -1)
		msg = NULL;
	va_end(ap);
	if (data == NULL)
		data = json_object();
	json_object_set_new(data, "kind", json_string(kind));
	if (code == MIGCTL_EXIT_USAGE || strcmp(kind, "invalid_params") == 0)
		rpc = MIGD_ERR_INVALID_PARAMS;
	else if (strcmp(kind, "invalid_migrations") == 0 ||
	    strcmp(kind, "plan_error") == 0)
		rpc = MIGD_ERR_MIGRATIONS;
	err = json_pack("{s:i, s:s, s:o}", "code", rpc, "message", msg ?
	    msg : kind, "data", data);
	out_print_error(err);
	json_decref(err);
	free(msg);
	exit(code);
}

/* One database's run, as the summary and its progress line say it. */
static void
out_fleet_outcome(json_t *el)
{
	const char	*r = out_str(el, "result");
	char		*from, *to, ms[32];

	out_ms(ms, sizeof ms, json_number_value(json_object_get(el,
	    "duration_ms")));
	if (strcmp(r, "upgraded") == 0) {
		from = out_ids(json_object_get(el, "from"));
		to = out_ids(json_object_get(el, "to"));
		printf("%supgraded%s %s -> %s, %lld migration%s in %s\n",
		    c(GREEN), c(RESET), from, to, (long long)json_integer_value(
		    json_object_get(el, "migrations")), json_integer_value(
		    json_object_get(el, "migrations")) == 1 ? "" : "s", ms);
		free(from);
		free(to);
	} else if (strcmp(r, "up_to_date") == 0) {
		to = out_ids(json_object_get(el, "to"));
		printf("already up to date at %s\n", to);
		free(to);
	} else if (strcmp(r, "failed") == 0)
		printf("%sFAILED%s: %s\n", c(RED), c(RESET), out_str(
		    json_object_get(el, "error"), "message"));
	else if (strcmp(r, "not_started") == 0)
		printf("not started (%s)\n", out_str(el, "reason"));
	else if (strcmp(r, "dry_run") == 0)
		printf("dry run: %zu migration%s would run%s\n",
		    json_array_size(json_object_get(json_object_get(el, "plan"),
		    "steps")), json_array_size(json_object_get(json_object_get(
		    el, "plan"), "steps")) == 1 ? "" : "s",
		    json_is_false(json_object_get(json_object_get(el, "plan"),
		    "runnable")) ? "; cannot run" : "");
	else
		printf("%s\n", r);
}

/* A notification of one database of a --all request: a line each, the
 * database's name first, since several run at once. */
void
out_fleet_progress(json_t *p)
{
	const char	*ev = out_str(p, "event"), *db = out_str(p, "database");
	char		 ms[32];

	if (strcmp(ev, "database_started") == 0)
		printf("%s: started\n", db);
	else if (strcmp(ev, "database_failed") == 0)
		printf("%s: %sFAILED%s: %s\n", db, c(RED), c(RESET), out_str(
		    json_object_get(p, "error"), "message"));
	else if (strcmp(ev, "database_finished") == 0)
		printf("%s: finished\n", db);
	else if (strcmp(ev, "started") == 0)
		printf("%s: [%lld/%lld] %s %s %s\n", db, (long long)
		    json_integer_value(json_object_get(p, "index")), (long long)
		    json_integer_value(json_object_get(p, "total")), out_str(p,
		    "direction"), out_str(p, "revision"), out_str(p, "message"));
	else if (strcmp(ev, "finished") == 0) {
		out_ms(ms, sizeof ms, json_number_value(json_object_get(p,
		    "duration_ms")));
		printf("%s: %s done in %s\n", db, out_str(p, "revision"), ms);
	} else if (strcmp(ev, "failed") == 0)
		printf("%s: %s %sFAILED%s\n", db, out_str(p, "revision"),
		    c(RED), c(RESET));
	else if (strcmp(ev, "waiting_for_lock") == 0)
		printf("%s: waiting for the migration lock (%s)\n", db,
		    out_str(p, "waiting_for"));
	else if (strcmp(ev, "waiting_for_slot") == 0)
		printf("%s: waiting for a connection slot: %lld of %lld in use "
		    "(max_connections_total)\n", db, (long long)
		    json_integer_value(json_object_get(p, "in_use")), (long long)
		    json_integer_value(json_object_get(p,
		    "max_connections_total")));
	else
		printf("%s: %s\n", db, ev);
	fflush(stdout);
}

/* The answer of status, check, verify or upgrade --all: a line (or a
 * few) per database, then what needs a look; cancel --all's: whose runs
 * stop. */
void
out_fleet(const char *cmd, json_t *res)
{
	json_t		*dbs = json_object_get(res, "databases"), *el, *lr;
	size_t		 i;
	int		 w = 8, bad = 0, kept = 0;
	char		*ids, ms[32];
	const char	*state;
	double		 age, oldest = 0.0;

	if (strcmp(cmd, "cancel") == 0) {
		printf("cancelling the rollout: no more databases start");
		json_array_foreach(dbs, i, el)
			printf("%s%s", i == 0 ? "; the runs of " : ", ",
			    json_string_value(el));
		printf("%s\n", json_array_size(dbs) == 0 ? "" : " are "
		    "cancelled and their migrations roll back");
		return;
	}
	json_array_foreach(dbs, i, el)
		out_fit(&w, out_str(el, "name"));
	if (strcmp(cmd, "upgrade") == 0) {
		json_array_foreach(dbs, i, el) {
			printf("%-*s ", w, out_str(el, "name"));
			out_fleet_outcome(el);
		}
		printf("%s%lld upgraded, %lld already up to date, %lld failed, "
		    "%lld not started%s\n", c(BOLD), (long long)
		    json_integer_value(json_object_get(res, "upgraded")),
		    (long long)json_integer_value(json_object_get(res,
		    "up_to_date")), (long long)json_integer_value(
		    json_object_get(res, "failed")), (long long)
		    json_integer_value(json_object_get(res, "not_started")),
		    c(RESET));
		return;
	}
	if (strcmp(cmd, "verify") == 0) {
		json_array_foreach(dbs, i, el) {
			if (json_object_get(el, "error") != NULL)
				printf("%s: %serror:%s %s\n", out_str(el,
				    "name"), c(RED), c(RESET), out_str(
				    json_object_get(el, "error"), "message"));
			else if (!json_is_true(json_object_get(el, "ok"))) {
				printf("%s: problems found\n", out_str(el,
				    "name"));
				out_verify(el);
			}
			bad += !json_is_true(json_object_get(el, "ok"));
		}
		printf("verify --all: %zu database%s, %s%d with problems%s\n",
		    json_array_size(dbs), json_array_size(dbs) == 1 ? "" : "s",
		    bad ? c(RED) : "", bad, bad ? c(RESET) : "");
		return;
	}
	/* status and check: a line per database. */
	printf("%s%-*s %-12s %-24s %-7s %s%s\n", c(DIM), w, "DATABASE",
	    "STATE", "CURRENT", "PENDING", "LAST RUN", c(RESET));
	json_array_foreach(dbs, i, el) {
		if (json_object_get(el, "error") != NULL) {
			printf("%-*s %serror%s: %s\n", w, out_str(el, "name"),
			    c(RED), c(RESET), out_str(json_object_get(el,
			    "error"), "message"));
			bad++;
			continue;
		}
		state = out_str(el, "state");
		ids = json_object_get(el, "current") != NULL ? out_ids(
		    json_object_get(el, "current")) : strdup("-");
		if (strcmp(ids, "base (nothing applied)") == 0) {
			free(ids);
			ids = strdup("base");
		}
		printf("%-*s %-12s %-24s %-7lld ", w, out_str(el, "name"),
		    json_object_get(el, "waiting_for_slot") != NULL ?
		    "waiting-slot" : json_is_true(json_object_get(el,
		    "running")) ? "running" : state, ids, (long long)json_integer_value(json_object_get(
		    el, "pending")));
		free(ids);
		lr = json_object_get(el, "last_run");
		if (json_is_object(lr))
			printf("%s %s %s%s%s\n", out_str(lr, "at"),
			    out_str(lr, "action"), out_str(lr, "result"),
			    json_is_string(json_object_get(lr, "error")) ?
			    ": " : "", json_is_string(json_object_get(lr,
			    "error")) ? out_str(lr, "error") : "");
		else
			printf("-\n");
		if (strcmp(state, "up_to_date") != 0 || json_is_true(
		    json_object_get(el, "running")))
			bad++;
		if (json_is_true(json_object_get(el, "stale"))) {
			kept++;
			age = json_number_value(json_object_get(el, "age_ms"));
			if (age > oldest)
				oldest = age;
		}
	}
	if (kept > 0) {
		out_ms(ms, sizeof ms, oldest);
		printf("%s%d of %zu from the state kept from their last status "
		    "or run (the oldest %s ago); --fresh reads them now%s\n",
		    c(DIM), kept, json_array_size(dbs), ms, c(RESET));
	}
	if (strcmp(cmd, "check") == 0 && bad > 0) {
		printf("not up to date:");
		json_array_foreach(dbs, i, el) {
			if (json_object_get(el, "error") != NULL || strcmp(
			    out_str(el, "state"), "up_to_date") != 0 ||
			    json_is_true(json_object_get(el, "running")))
				printf(" %s", out_str(el, "name"));
		}
		printf("\n");
	}
}
