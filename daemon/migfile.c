/* Parses one migration file (header, up and down, checksum); no I/O. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <stdint.h>

#include <nettle/base16.h>
#include <nettle/sha2.h>

#include "layout.h"
#include "lint.h"
#include "migfile.h"
#include "util.h"

enum migfile_key {
	MIGFILE_KEY_REVISION,
	MIGFILE_KEY_DOWN_REVISION,
	MIGFILE_KEY_MESSAGE,
	MIGFILE_KEY_TRANSACTION,
	MIGFILE_KEY_DEPENDS_ON,
	MIGFILE_KEY_BRANCH_LABELS,
	MIGFILE_KEY_UNFINISHED,
	MIGFILE_NKEYS
};

static const char *migfile_keys[MIGFILE_NKEYS] = {
	"revision", "down_revision", "message", "transaction", "depends_on",
	"branch_labels", "unfinished"
};
#define MIGFILE_KNOWN \
	"known: revision, down_revision, message, transaction, depends_on, " \
	"branch_labels, unfinished"

enum migfile_marker {
	MIGFILE_MARK_NONE,
	MIGFILE_MARK_UP,
	MIGFILE_MARK_DOWN,
	MIGFILE_MARK_BAD
};

/* One problem, kept with its line so a file's errors come out in order. */
struct migfile_err {
	int	 line;
	char	*msg;
};

/* Everything one parse needs; errors are held back until the file is done. */
struct migfile_parser {
	struct migfile		*mf;
	struct migfile_err	*errs;
	size_t			 nerrs;
	int			 key_line[MIGFILE_NKEYS];
	int			 up_marker;	/* marker lines, 0 if absent */
	int			 down_marker;
	int			 sql_line;	/* first SQL in the header */
};

/* Remembers a problem; the caller formats it and the parser owns the copy. */
static void __attribute__((format(printf, 3, 4)))
migfile_error(struct migfile_parser *mp, int line, const char *fmt, ...)
{
	va_list	 ap;

	mp->errs = xreallocarray(mp->errs, mp->nerrs + 1, sizeof *mp->errs);
	mp->errs[mp->nerrs].line = line;
	va_start(ap, fmt);
	xvasprintf(&mp->errs[mp->nerrs].msg, fmt, ap);
	va_end(ap);
	mp->nerrs++;
}

/* Blanks in a header are spaces and tabs, plus a CR from odd line ends. */
static int
migfile_isblank(char c)
{
	return (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v');
}

/* Values are compared and stored without surrounding blanks. */
static char *
migfile_trim(const char *p, size_t len)
{
	while (len > 0 && migfile_isblank(*p)) {
		p++;
		len--;
	}
	while (len > 0 && migfile_isblank(p[len - 1]))
		len--;
	return (xstrndup(p, len));
}

/* User text goes into messages; keep it short and free of control bytes. */
static char *
migfile_quote(const char *s)
{
	char	*out, *o;
	size_t	 i, len = strlen(s), max = 64;

	o = out = xmalloc((len > max ? max : len) * 4 + 4);
	for (i = 0; i < len && i < max; i++) {
		if ((unsigned char)s[i] >= 0x20 && (unsigned char)s[i] < 0x7f)
			*o++ = s[i];
		else
			o += sprintf(o, "\\x%02x", (unsigned char)s[i]);
	}
	if (len > max) {
		memcpy(o, "...", 3);
		o += 3;
	}
	*o = '\0';
	return (out);
}

/* Ids end up in Alembic-style version tables and commands: keep them plain. */
int
migfile_valid_id(const char *id, char **why)
{
	static const char	*reserved[] = {
		"head", "heads", "base", "none"
	};
	size_t			 i, len = strlen(id);
	unsigned char		 c;
	char			*w = NULL, what[32];

	if (len == 0)
		w = xstrdup("it is empty");
	else if (len > MIGFILE_ID_MAX) {
		w = xprintf("it is %zu bytes long, the limit is %d", len,
		    MIGFILE_ID_MAX);
	} else if (id[0] == '-')
		w = xstrdup("it starts with '-'");
	for (i = 0; w == NULL && i < len; i++) {
		c = (unsigned char)id[i];
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-')
			continue;
		if (c == ' ' || c == '\t')
			snprintf(what, sizeof what, "a blank");
		else if (c > 0x20 && c < 0x7f)
			snprintf(what, sizeof what, "'%c'", c);
		else
			snprintf(what, sizeof what, "byte 0x%02x", c);
		w = xprintf("it contains %s (allowed: letters, digits, '_', "
		    "'.', '-')", what);
	}
	for (i = 0; w == NULL && i < nitems(reserved); i++) {
		if (strcasecmp(id, reserved[i]) == 0)
			w = xprintf("'%s' is reserved (head, heads, base, "
			    "none)", id);
	}
	if (why != NULL)
		*why = w;
	else
		free(w);
	return (w == NULL);
}

/* A file saved with CRLF must have the same text and checksum as with LF. */
char *
migfile_normalise(const char *text, size_t len, size_t *outlen)
{
	char	*out;
	size_t	 i, o = 0;

	out = xmalloc(len + 1);
	for (i = 0; i < len; i++) {
		if (text[i] == '\r' && i + 1 < len && text[i + 1] == '\n')
			continue;
		out[o++] = text[i];
	}
	out[o] = '\0';
	if (outlen != NULL)
		*outlen = o;
	return (out);
}

/*
 * The checksum is what detects an edited, already applied migration.
 * nettle's SHA-256: small, and already in memory through libpq's TLS.
 */
void
migfile_sha256_hex(const char *buf, size_t len, char out[65])
{
	struct sha256_ctx	 ctx;
	uint8_t			 md[SHA256_DIGEST_SIZE];

	sha256_init(&ctx);
	sha256_update(&ctx, len, (const uint8_t *)buf);
	sha256_digest(&ctx, sizeof md, md);
	/* nettle's table: 32 snprintf calls cost as much as the hash. */
	base16_encode_update(out, sizeof md, md);
	out[64] = '\0';
}

/* Exposed so other modules checksum text exactly as the parser does. */
void
migfile_checksum(const char *text, size_t len, char out[65])
{
	char	*norm;
	size_t	 normlen;

	norm = migfile_normalise(text, len, &normlen);
	migfile_sha256_hex(norm, normlen, out);
	free(norm);
}

/* Section markers must be unmistakable; a near miss is an error, not SQL. */
static enum migfile_marker
migfile_marker(const char *p, size_t len)
{
	size_t	 i = 0, n;

	while (i < len && (p[i] == ' ' || p[i] == '\t'))
		i++;
	if (len - i < 2 || p[i] != '-' || p[i + 1] != '-')
		return (MIGFILE_MARK_NONE);
	for (i += 2; i < len && (p[i] == ' ' || p[i] == '\t'); i++)
		/* nothing */;
	if (len - i < 8 || strncasecmp(p + i, "migrate:", 8) != 0)
		return (MIGFILE_MARK_NONE);
	if (p[0] != '-')
		return (MIGFILE_MARK_BAD);
	if (len - i >= 10 && strncmp(p + i, "migrate:up", 10) == 0)
		n = i + 10;
	else if (len - i >= 12 && strncmp(p + i, "migrate:down", 12) == 0)
		n = i + 12;
	else
		return (MIGFILE_MARK_BAD);
	for (i = n; i < len; i++) {
		if (!migfile_isblank(p[i]))
			return (MIGFILE_MARK_BAD);
	}
	return (p[n - 1] == 'p' ? MIGFILE_MARK_UP : MIGFILE_MARK_DOWN);
}

/* Explains a near-miss marker, pointing dbmate users at the header instead. */
static void
migfile_bad_marker(struct migfile_parser *mp, const char *p, size_t len,
    int line)
{
	const char	*hint = "";
	size_t		 i;

	for (i = 0; i + 12 <= len; i++) {
		if (strncmp(p + i, "transaction:", 12) == 0) {
			hint = "; for a migration outside a transaction write "
			    "'-- transaction: none' in the header";
			break;
		}
	}
	migfile_error(mp, line, "malformed section marker: write exactly "
	    "'-- migrate:up' or '-- migrate:down', alone on its line and "
	    "starting in the first column%s", hint);
}

/* Splits an id list and names every bad element, so one fix pass suffices. */
static void
migfile_id_list(struct migfile_parser *mp, const char *key, const char *value,
    int line, char ***ids, size_t *nids)
{
	const char	*p = value, *comma;
	char		*id, *why, *q;
	size_t		 i, len;
	int		 dup;

	if (*value == '\0') {
		if (strcmp(key, "down_revision") == 0)
			migfile_error(mp, line, "empty 'down_revision' header "
			    "(write 'down_revision: none' for the first "
			    "revision)");
		else
			migfile_error(mp, line, "empty '%s' header (list "
			    "revision ids or remove the line)", key);
		return;
	}
	for (;;) {
		comma = strchr(p, ',');
		len = comma != NULL ? (size_t)(comma - p) : strlen(p);
		id = migfile_trim(p, len);
		if (*id == '\0') {
			migfile_error(mp, line, "empty entry in '%s' (stray "
			    "comma?)", key);
			free(id);
		} else if (strcasecmp(id, "none") == 0 &&
		    strcmp(key, "down_revision") == 0) {
			migfile_error(mp, line, "'none' cannot be combined "
			    "with other revisions in 'down_revision'");
			free(id);
		} else if (!migfile_valid_id(id, &why)) {
			q = migfile_quote(id);
			migfile_error(mp, line, "invalid %s '%s' in '%s': %s",
			    strcmp(key, "branch_labels") == 0 ? "branch label" :
			    "revision id", q, key, why);
			free(q);
			free(why);
			free(id);
		} else {
			for (dup = 0, i = 0; i < *nids; i++)
				dup |= strcmp((*ids)[i], id) == 0;
			if (dup) {
				migfile_error(mp, line, "'%s' is listed twice "
				    "in '%s'", id, key);
				free(id);
			} else {
				*ids = xreallocarray(*ids, *nids + 1,
				    sizeof **ids);
				(*ids)[(*nids)++] = id;
			}
		}
		if (comma == NULL)
			break;
		p = comma + 1;
	}
}

/* Applies one "key: value" header line, checking what can be checked alone. */
static void
migfile_header(struct migfile_parser *mp, enum migfile_key k,
    const char *value, int line)
{
	struct migfile	*mf = mp->mf;
	char		*why, *q;

	switch (k) {
	case MIGFILE_KEY_REVISION:
		if (!migfile_valid_id(value, &why)) {
			q = migfile_quote(value);
			migfile_error(mp, line, "invalid revision '%s': %s",
			    q, why);
			free(q);
			free(why);
			break;
		}
		mf->revision = xstrdup(value);
		mf->revision_line = line;
		break;
	case MIGFILE_KEY_DOWN_REVISION:
		mf->parents_line = line;
		if (strcasecmp(value, "none") != 0) {
			migfile_id_list(mp, "down_revision", value, line,
			    &mf->parents, &mf->n_parents);
		}
		break;
	case MIGFILE_KEY_MESSAGE:
		free(mf->message);
		mf->message = xstrdup(value);
		break;
	case MIGFILE_KEY_TRANSACTION:
		mf->tx_line = line;
		if (strcasecmp(value, "auto") == 0)
			mf->tx = MIGFILE_TX_AUTO;
		else if (strcasecmp(value, "none") == 0)
			mf->tx = MIGFILE_TX_NONE;
		else {
			q = migfile_quote(value);
			migfile_error(mp, line, "invalid transaction '%s' "
			    "(allowed: auto, none)", q);
			free(q);
		}
		break;
	case MIGFILE_KEY_DEPENDS_ON:
		mf->depends_line = line;
		migfile_id_list(mp, "depends_on", value, line, &mf->depends,
		    &mf->n_depends);
		break;
	case MIGFILE_KEY_BRANCH_LABELS:
		mf->labels_line = line;
		migfile_id_list(mp, "branch_labels", value, line, &mf->labels,
		    &mf->n_labels);
		break;
	case MIGFILE_KEY_UNFINISHED:
		if (*value == '\0') {
			migfile_error(mp, line, "empty 'unfinished' header "
			    "(say what is missing, or remove the line once "
			    "the revision is complete)");
			break;
		}
		free(mf->unfinished);
		mf->unfinished = xstrdup(value);
		mf->unfinished_line = line;
		break;
	case MIGFILE_NKEYS:
		abort();
	}
}

/* "-- lint-ignore: RULE[,RULE] why": the file's lint opt-out (lint.c),
 * which may repeat; its name has a '-', which header names never have.
 * Read in every layout's header, so its problems go through err. */
int
migfile_lint_ignore(struct migfile *mf, const char *p, size_t len, int line,
    void (*err)(void *, int, const char *), void *arg)
{
	static const char	 mark[] = "lint-ignore:";
	const char		*e;
	char			*value, *rule, *t, *msg, *save = NULL;

	if (len < sizeof mark - 1 || strncmp(p, mark, sizeof mark - 1) != 0)
		return (0);
	value = migfile_trim(p + sizeof mark - 1, len - (sizeof mark - 1));
	for (e = value; *e != '\0' && *e != ' ' && *e != '\t'; e++)
		/* the rules, up to the reason */;
	if (*value == '\0') {
		err(arg, line, "empty 'lint-ignore' (name the rules, "
		    "comma-separated, then why: -- lint-ignore: ban-drop-table "
		    "the table was never used)");
		free(value);
		return (1);
	}
	rule = xstrndup(value, (size_t)(e - value));
	for (t = strtok_r(rule, ",", &save); t != NULL;
	    t = strtok_r(NULL, ",", &save)) {
		if (strcmp(t, "all") != 0 && lint_rule_find(t) < 0) {
			msg = xprintf("unknown lint rule '%s' in "
			    "'lint-ignore' (see docs/lint.md)", t);
			err(arg, line, msg);
			free(msg);
		}
	}
	free(rule);
	if (mf->lint_ignore == NULL) {
		mf->lint_ignore = value;
		mf->lint_ignore_line = line;
	} else {
		t = xprintf("%s\n%s", mf->lint_ignore, value);
		free(mf->lint_ignore);
		free(value);
		mf->lint_ignore = t;
	}
	return (1);
}

/* migfile_lint_ignore's problems, as the header's. */
static void
migfile_lint_error(void *arg, int line, const char *msg)
{
	migfile_error(arg, line, "%s", msg);
}

/* A header line is a blank, a comment or "-- key: value"; never SQL. */
static void
migfile_header_line(struct migfile_parser *mp, const char *p, size_t len,
    int line)
{
	const char	*key;
	size_t		 i = 0, keylen;
	char		*value;
	int		 k;

	while (i < len && migfile_isblank(p[i]))
		i++;
	if (i == len)
		return;
	if (len - i < 2 || p[i] != '-' || p[i + 1] != '-') {
		if (mp->sql_line == 0)
			mp->sql_line = line;
		return;
	}
	for (i += 2; i < len && (p[i] == ' ' || p[i] == '\t'); i++)
		/* nothing */;
	if (migfile_lint_ignore(mp->mf, p + i, len - i, line,
	    migfile_lint_error, mp))
		return;
	key = p + i;
	while (i < len && ((p[i] >= 'a' && p[i] <= 'z') ||
	    (p[i] >= 'A' && p[i] <= 'Z') || p[i] == '_'))
		i++;
	if ((keylen = p + i - key) == 0)
		return;
	while (i < len && (p[i] == ' ' || p[i] == '\t'))
		i++;
	if (i == len || p[i] != ':')
		return;		/* an ordinary comment */

	for (k = 0; k < MIGFILE_NKEYS; k++) {
		if (strlen(migfile_keys[k]) == keylen &&
		    strncmp(migfile_keys[k], key, keylen) == 0)
			break;
	}
	if (k == MIGFILE_NKEYS) {
		for (k = 0; k < MIGFILE_NKEYS; k++) {
			if (strlen(migfile_keys[k]) == keylen &&
			    strncasecmp(migfile_keys[k], key, keylen) == 0)
				break;
		}
		if (k < MIGFILE_NKEYS) {
			migfile_error(mp, line, "unknown header '%.*s' (header "
			    "names are lowercase: did you mean '%s'?)",
			    (int)keylen, key, migfile_keys[k]);
		} else {
			migfile_error(mp, line, "unknown header '%.*s' ("
			    MIGFILE_KNOWN ")", (int)keylen, key);
		}
		return;
	}
	if (mp->key_line[k] != 0) {
		migfile_error(mp, line, "'%s' is given twice (first at line "
		    "%d)", migfile_keys[k], mp->key_line[k]);
		return;
	}
	mp->key_line[k] = line;
	value = migfile_trim(p + i + 1, len - i - 1);
	migfile_header(mp, k, value, line);
	free(value);
}

/* Walks the lines once: header until the up marker, then up and down text. */
static void
migfile_scan(struct migfile_parser *mp, const char *text, size_t len)
{
	enum { HEADER, SKIP, UP, DOWN }	 state = HEADER;
	const char			*p = text, *end = text + len, *eol;
	const char			*next, *up = NULL, *up_end = NULL;
	const char			*down = NULL, *down_end = NULL;
	size_t				 n;
	int				 line = 0;
	enum migfile_marker		 mark;

	for (; p < end; p = next) {
		line++;
		if ((eol = memchr(p, '\n', end - p)) == NULL)
			eol = next = end;
		else
			next = eol + 1;
		n = eol - p;
		if (n > 0 && p[n - 1] == '\r')
			n--;

		mark = migfile_marker(p, n);
		if (mark == MIGFILE_MARK_BAD) {
			/* What follows was meant as SQL, not as header. */
			migfile_bad_marker(mp, p, n, line);
			if (state == HEADER)
				state = SKIP;
			continue;
		}
		if (mark == MIGFILE_MARK_UP) {
			if (mp->up_marker != 0) {
				migfile_error(mp, line, "second '-- migrate:up'"
				    " marker (the first is at line %d)",
				    mp->up_marker);
				continue;
			}
			mp->up_marker = line;
			mp->mf->up_line = line + 1;
			up = next;
			state = UP;
			continue;
		}
		if (mark == MIGFILE_MARK_DOWN) {
			if (mp->down_marker != 0) {
				migfile_error(mp, line, "second '-- migrate:"
				    "down' marker (the first is at line %d)",
				    mp->down_marker);
				continue;
			}
			mp->down_marker = line;
			/* Not the state: a bad marker leaves the header too. */
			if (mp->up_marker == 0) {
				migfile_error(mp, line, "'-- migrate:down' "
				    "before '-- migrate:up' (the up section "
				    "comes first)");
				state = SKIP;
				continue;
			}
			mp->mf->down_line = line + 1;
			up_end = p;
			down = next;
			state = DOWN;
			continue;
		}
		if (state == HEADER)
			migfile_header_line(mp, p, n, line);
	}
	if (state == UP)
		up_end = end;
	if (state == DOWN)
		down_end = end;

	if (up != NULL) {
		mp->mf->up = migfile_normalise(up, up_end - up, &n);
		migfile_sha256_hex(mp->mf->up, n, mp->mf->checksum);
	}
	if (down != NULL)
		mp->mf->down = migfile_normalise(down, down_end - down, NULL);
	else
		mp->mf->down_line = 0;
}

/* Checks what needs the whole file: required parts and self-references. */
static void
migfile_finish(struct migfile_parser *mp)
{
	struct migfile	*mf = mp->mf;
	const char	*base;
	char		*why, *q;
	size_t		 len, i;

	if (mp->up_marker == 0) {
		migfile_error(mp, 1, "no '-- migrate:up' section (put a line "
		    "'-- migrate:up' between the header and the SQL)");
	} else if (mp->sql_line != 0) {
		migfile_error(mp, mp->sql_line, "SQL before '-- migrate:up' "
		    "(the header may hold only '-- key: value' lines, "
		    "comments and blank lines)");
	}
	if (mp->key_line[MIGFILE_KEY_DOWN_REVISION] == 0) {
		migfile_error(mp, 1, "missing 'down_revision' header (write "
		    "'down_revision: none' for the first revision)");
	}

	if (mp->key_line[MIGFILE_KEY_REVISION] == 0) {
		base = strrchr(mf->path, '/');
		base = base != NULL ? base + 1 : mf->path;
		len = strlen(base);
		if (len >= 4 && strcmp(base + len - 4, ".sql") == 0)
			len -= 4;
		if (memchr(base, '_', len) != NULL)
			len = (const char *)memchr(base, '_', len) - base;
		mf->revision = xstrndup(base, len);
		if (!migfile_valid_id(mf->revision, &why)) {
			q = migfile_quote(mf->revision);
			migfile_error(mp, 1, "revision '%s' taken from the "
			    "file name is invalid: %s (add a '-- revision: "
			    "ID' header or rename the file)", q, why);
			free(q);
			free(why);
			free(mf->revision);
			mf->revision = NULL;
		}
	}
	if (mf->revision == NULL)
		return;
	for (i = 0; i < mf->n_parents; i++) {
		if (strcmp(mf->parents[i], mf->revision) == 0)
			migfile_error(mp, mf->parents_line, "'down_revision' "
			    "names this revision itself ('%s')", mf->revision);
	}
	for (i = 0; i < mf->n_depends; i++) {
		if (strcmp(mf->depends[i], mf->revision) == 0)
			migfile_error(mp, mf->depends_line, "'depends_on' "
			    "names this revision itself ('%s')", mf->revision);
	}
}

/*
 * Parses a whole file held in memory; errors go to errs as "PATH:LINE: msg".
 * With keep, a file with problems still comes back in *out when its text
 * could be scanned, so that its sections can be checked in the same pass.
 */
static int
migfile_parse_keep(const char *path, const char *text, size_t len,
    struct migfile **out, struct errlist *errs, int keep)
{
	struct migfile_parser	 mp;
	struct migfile_err	 e;
	size_t			 i, j;
	int			 scanned = 0;

	*out = NULL;
	memset(&mp, 0, sizeof mp);
	mp.mf = xcalloc(1, sizeof *mp.mf);
	mp.mf->refs = 1;
	mp.mf->path = xstrdup(path);
	mp.mf->message = xstrdup("");
	mp.mf->tx = MIGFILE_TX_AUTO;

	if (len > MIGFILE_MAX_SIZE) {
		migfile_error(&mp, 1, "file too large (%zu bytes, the limit "
		    "is %d MiB)", len, MIGFILE_MAX_SIZE / (1024 * 1024));
	} else if (memchr(text, '\0', len) != NULL)
		migfile_error(&mp, 1, "not a text file (NUL byte)");
	else if ((i = utf8_valid_prefix(text, len)) != len) {
		/* SQL goes to the server as UTF-8 and into JSON replies. */
		for (j = 0, e.line = 1; j < i; j++)
			e.line += text[j] == '\n';
		migfile_error(&mp, e.line, "not valid UTF-8 (byte 0x%02x)",
		    (unsigned char)text[i]);
	} else {
		if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0) {
			text += 3;
			len -= 3;
		}
		migfile_scan(&mp, text, len);
		migfile_finish(&mp);
		scanned = 1;
	}

	if (mp.nerrs == 0) {
		*out = mp.mf;
		return (0);
	}
	/* Stable insertion sort: errors by line, same-line ones as found. */
	for (i = 1; i < mp.nerrs; i++) {
		e = mp.errs[i];
		for (j = i; j > 0 && mp.errs[j - 1].line > e.line; j--)
			mp.errs[j] = mp.errs[j - 1];
		mp.errs[j] = e;
	}
	for (i = 0; i < mp.nerrs; i++) {
		errlist_add(errs, "%s:%d: %s", path, mp.errs[i].line,
		    mp.errs[i].msg);
		free(mp.errs[i].msg);
	}
	free(mp.errs);
	if (keep && scanned)
		*out = mp.mf;
	else
		migfile_free(mp.mf);
	return (-1);
}

/* Parses a whole file; on error *out stays NULL. */
int
migfile_parse(const char *path, const char *text, size_t len,
    struct migfile **out, struct errlist *errs)
{
	return (migfile_parse_keep(path, text, len, out, errs, 0));
}

/* Parses a whole file; on error *out may still hold what was read. */
int
migfile_parse_all(const char *path, const char *text, size_t len,
    struct migfile **out, struct errlist *errs)
{
	return (migfile_parse_keep(path, text, len, out, errs, 1));
}

/* One owner, one free; NULL is accepted so error paths stay simple. */
void
migfile_free(struct migfile *mf)
{
	size_t	 i;

	if (mf == NULL)
		return;
	if (mf->refs > 1) {
		mf->refs--;
		return;
	}
	free(mf->path);
	free(mf->revision);
	for (i = 0; i < mf->n_parents; i++)
		free(mf->parents[i]);
	free(mf->parents);
	for (i = 0; i < mf->n_depends; i++)
		free(mf->depends[i]);
	free(mf->depends);
	for (i = 0; i < mf->n_labels; i++)
		free(mf->labels[i]);
	free(mf->labels);
	free(mf->unfinished);
	free(mf->lint_ignore);
	free(mf->message);
	free(mf->up);
	free(mf->down);
	free(mf->down_path);
	free(mf);
}

/* The file a section is in: another tool's layout may keep the down
 * section in a file of its own, and messages must name that one. */
const char *
migfile_path(const struct migfile *mf, int up)
{
	return (!up && mf->down_path != NULL ? mf->down_path : mf->path);
}

/* Another owner for an unchanged file kept across loads. */
struct migfile *
migfile_ref(struct migfile *mf)
{
	mf->refs++;
	return (mf);
}

/* Orders files by path, for migcache_take's lookup. */
static int
migcache_cmp(const void *a, const void *b)
{
	return (strcmp((*(struct migfile *const *)a)->path,
	    (*(struct migfile *const *)b)->path));
}

/* Orders files by the path of their down file, for migcache_piece. */
static int
migcache_cmp_down(const void *a, const void *b)
{
	return (strcmp((*(struct migfile *const *)a)->down_path,
	    (*(struct migfile *const *)b)->down_path));
}

/* A cache of files (sorted by path, as a migset has them), each with a
 * reference of its own. */
void
migcache_init(struct migcache *c, struct migfile *const *files, size_t n)
{
	size_t	 i;

	c->files = xcalloc(n + 1, sizeof *c->files);
	c->downs = xcalloc(n + 1, sizeof *c->downs);
	c->n_downs = 0;
	for (i = 0; i < n; i++) {
		c->files[i] = migfile_ref(files[i]);
		if (files[i]->down_path != NULL)
			c->downs[c->n_downs++] = files[i];
	}
	c->used = xcalloc(n + 1, 1);
	c->n = n;
	c->taken = 0;
	qsort(c->files, n, sizeof *c->files, migcache_cmp);
	if (c->n_downs > 1)
		qsort(c->downs, c->n_downs, sizeof *c->downs,
		    migcache_cmp_down);
}

/* What layout_file made of one file of another tool's layout, again, from
 * the assembled revision mf: its up (or whole) file, or its down file. */
static struct migfile *
migcache_copy(const struct migfile *mf, int down)
{
	struct migfile	*p;

	p = xcalloc(1, sizeof *p);
	p->refs = 1;
	p->revision = xstrdup(mf->revision);
	p->message = xstrdup(mf->message);
	p->layout = mf->first;
	p->first = mf->first;
	p->read_as = mf->read_as;
	if (down) {
		p->path = xstrdup(mf->down_path);
		p->piece = LAYOUT_PIECE_DOWN;
		p->down = xstrdup(mf->down);
		p->down_line = mf->down_line;
		p->sig = mf->down_sig;
		p->reused = 1;
		return (p);
	}
	p->path = xstrdup(mf->path);
	p->piece = mf->piece;
	p->tx = mf->tx;
	p->tx_line = mf->tx_line;
	p->up = xstrdup(mf->up);
	p->up_line = mf->up_line;
	memcpy(p->checksum, mf->checksum, sizeof p->checksum);
	p->sig = mf->sig;
	/* A down in the same file is the file's; one in a file of its own
	 * is joined again when the directory is assembled. */
	if (mf->down != NULL && mf->down_path == NULL) {
		p->down = xstrdup(mf->down);
		p->down_line = mf->down_line;
	}
	p->reused = mf->down_path != NULL ? 2 : 1;
	return (p);
}

/*
 * Another tool's file at path, unchanged since the earlier load (the same
 * stat, read as the same format): a new piece made from what that load
 * read, without reading it again.  Its parents and the joining of a down
 * file to its up are left to layout_assemble, as for a file read afresh
 * (they depend on the neighbours).  NULL: it must be read.
 */
struct migfile *
migcache_piece(struct migcache *c, const char *path, const struct migsig *sig,
    int format)
{
	struct migfile	 key, *kp = &key, **slot;

	if (c == NULL || c->n == 0)
		return (NULL);
	key.path = key.down_path = (char *)path;
	slot = bsearch(&kp, c->files, c->n, sizeof *c->files, migcache_cmp);
	if (slot != NULL) {
		if ((*slot)->layout <= LAYOUT_MIGD || (*slot)->read_as !=
		    format || memcmp(&(*slot)->sig, sig, sizeof *sig) != 0)
			return (NULL);
		return (migcache_copy(*slot, 0));
	}
	slot = bsearch(&kp, c->downs, c->n_downs, sizeof *c->downs,
	    migcache_cmp_down);
	if (slot == NULL || (*slot)->read_as != format ||
	    memcmp(&(*slot)->down_sig, sig, sizeof *sig) != 0)
		return (NULL);
	return (migcache_copy(*slot, 1));
}

/* Where the cached file at path is, when stat says it is the same file
 * unchanged and nobody took it yet, or -1: it must be read.  Changes
 * nothing, so that several threads reading a directory may look at once. */
ssize_t
migcache_find(const struct migcache *c, const char *path,
    const struct migsig *sig)
{
	struct migfile	 key, *kp = &key, **slot;
	size_t		 k;

	if (c == NULL || c->n == 0)
		return (-1);
	key.path = (char *)path;
	slot = bsearch(&kp, c->files, c->n, sizeof *c->files, migcache_cmp);
	if (slot == NULL)
		return (-1);
	k = (size_t)(slot - c->files);
	/* Another tool's files get their parents from their neighbours when
	 * the directory is assembled: read afresh, never shared. */
	if ((*slot)->layout > LAYOUT_MIGD || c->used[k] ||
	    memcmp(&(*slot)->sig, sig, sizeof *sig) != 0)
		return (-1);
	return ((ssize_t)k);
}

/* Takes what migcache_find found (its reference goes to the caller); on
 * one thread, after the lookups. */
struct migfile *
migcache_take_at(struct migcache *c, size_t k)
{
	c->used[k] = 1;
	c->taken++;
	return (c->files[k]);
}

/* The cached file at path when stat says it is the same file unchanged
 * (its reference goes to the caller), or NULL: it must be read. */
struct migfile *
migcache_take(struct migcache *c, const char *path, const struct migsig *sig)
{
	ssize_t	 k;

	if ((k = migcache_find(c, path, sig)) < 0)
		return (NULL);
	return (migcache_take_at(c, (size_t)k));
}

/* Drops the references nobody took. */
void
migcache_clear(struct migcache *c)
{
	size_t	 i;

	for (i = 0; i < c->n; i++) {
		if (!c->used[i])
			migfile_free(c->files[i]);
	}
	free(c->files);
	free(c->downs);
	free(c->used);
	memset(c, 0, sizeof *c);
}
