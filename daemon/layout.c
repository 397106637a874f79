/* Reads dbmate, golang-migrate, sqlx, diesel, goose and Flyway files as they
 * are, into the migfiles migd's own format gives; no I/O. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "layout.h"
#include "migfile.h"
#include "util.h"

static const char	*layout_goose_note(const char *, size_t, char *,
			     size_t);

static const char *layout_names[LAYOUT_NFORMATS] = {
	"auto", "migd", "dbmate", "golang-migrate", "sqlx", "diesel", "goose",
	"flyway"
};

/* How each tool's files are named, for the messages that skip a file. */
static const char *layout_shapes[LAYOUT_NFORMATS] = {
	"", "",
	"VERSION_name.sql with '-- migrate:up' and '-- migrate:down'",
	"VERSION_name.up.sql and VERSION_name.down.sql",
	"VERSION_name.up.sql and VERSION_name.down.sql, or VERSION_name.sql",
	"VERSION_name/up.sql and VERSION_name/down.sql",
	"VERSION_name.sql with '-- +goose Up'",
	"V<version>__description.sql and U<version>__description.sql"
};

/* The configuration's name of a layout, for messages and migd -n. */
const char *
layout_name(enum layout_format f)
{
	return ((unsigned)f < LAYOUT_NFORMATS ? layout_names[f] : "?");
}

/* What a revision lacks when it cannot be downgraded, in its tool's words. */
const char *
layout_no_down(const struct migfile *mf)
{
	switch (mf->layout) {
	case LAYOUT_GOLANG_MIGRATE:
	case LAYOUT_SQLX:
		return ("no .down.sql file");
	case LAYOUT_DIESEL:
		return ("no down.sql");
	case LAYOUT_GOOSE:
		return ("no '-- +goose Down' section");
	case LAYOUT_FLYWAY:
		return ("no undo migration (U<version>__<description>.sql)");
	default:
		return ("no '-- migrate:down' section");
	}
}

/* What an unfinished revision is, and what makes it runnable, in its own
 * file's terms. */
const char *
layout_unfinished_kind(const struct migfile *mf)
{
	return (mf->layout == LAYOUT_GOOSE ? "a goose Go migration" :
	    "an import placeholder");
}

const char *
layout_unfinished_fix(const struct migfile *mf)
{
	if (mf->layout == LAYOUT_GOOSE)
		return ("write what it does as SQL in a file of the same "
		    "name ending in .sql, with '-- +goose Up' (and '-- +goose "
		    "Down'), and remove the .go file");
	return ("write its SQL, remove the 'unfinished' header");
}

/* How a revision declares that it runs outside a transaction, in its
 * tool's words; NULL when its tool has no way to (golang-migrate, Flyway). */
const char *
layout_no_tx(const struct migfile *mf)
{
	switch (mf->layout) {
	case LAYOUT_GOLANG_MIGRATE:
	case LAYOUT_FLYWAY:
		return (NULL);
	case LAYOUT_DBMATE:
		return ("'-- migrate:up transaction:false'");
	case LAYOUT_SQLX:
		return ("'-- no-transaction' on its first line");
	case LAYOUT_DIESEL:
		return ("'run_in_transaction = false' in its metadata.toml");
	case LAYOUT_GOOSE:
		return ("'-- +goose NO TRANSACTION'");
	default:
		return ("'transaction: none'");
	}
}

/* The configuration's spelling; "golang_migrate" is taken too. */
int
layout_parse_name(const char *s, enum layout_format *out)
{
	int	 i;

	for (i = 0; i < LAYOUT_NFORMATS; i++) {
		if (strcasecmp(s, layout_names[i]) == 0 ||
		    (i == LAYOUT_GOLANG_MIGRATE &&
		    strcasecmp(s, "golang_migrate") == 0)) {
			*out = (enum layout_format)i;
			return (0);
		}
	}
	return (-1);
}

/* ASCII digits only: versions are never locale-dependent. */
static int
layout_isdigit(char c)
{
	return (c >= '0' && c <= '9');
}

/* Leading decimal digits of s. */
static size_t
layout_digits(const char *s)
{
	size_t	 n = 0;

	while (layout_isdigit(s[n]))
		n++;
	return (n);
}

/* Whether a name ends so (.up.sql, .down.sql). */
static int
layout_endswith(const char *s, const char *suffix)
{
	size_t	 a = strlen(s), b = strlen(suffix);

	return (a >= b && strcmp(s + a - b, suffix) == 0);
}

/* golang-migrate (uint64), sqlx and goose (int64) read the digits as a
 * number: 0001 is 1, as in their version tables.  NULL when too large. */
static char *
layout_number(const char *s, size_t n, const char *max)
{
	while (n > 1 && s[0] == '0') {
		s++;
		n--;
	}
	if (n > strlen(max) || (n == strlen(max) && strncmp(s, max, n) > 0))
		return (NULL);
	return (xstrndup(s, n));
}

/* Compares numbers written without leading zeros. */
static int
layout_cmp_number(const char *a, const char *b)
{
	size_t	 la = strlen(a), lb = strlen(b);

	if (la != lb)
		return (la < lb ? -1 : 1);
	return (strcmp(a, b));
}

/* Flyway compares versions part by part as numbers; 1.0 is 1. */
int
layout_cmp_flyway(const char *a, const char *b)
{
	size_t	 la, lb;
	int	 c;

	for (;;) {
		while (*a == '0' && layout_isdigit(a[1]))
			a++;
		while (*b == '0' && layout_isdigit(b[1]))
			b++;
		la = layout_digits(a);
		lb = layout_digits(b);
		if (la == 0 && lb == 0)
			return (0);
		/* A missing part counts as 0. */
		if (la == 0 && !(lb == 1 && *b == '0'))
			return (-1);
		if (lb == 0 && !(la == 1 && *a == '0'))
			return (1);
		if (la != 0 && lb != 0) {
			if (la != lb)
				return (la < lb ? -1 : 1);
			if ((c = strncmp(a, b, la)) != 0)
				return (c);
		}
		a += la;
		b += lb;
		if (*a == '.')
			a++;
		if (*b == '.')
			b++;
	}
}

/* A fresh file, as migfile_parse would start it; message (allocated, or
 * NULL for none) is taken over. */
static struct migfile *
layout_new(const char *path, enum layout_format f, enum layout_piece piece,
    char *message)
{
	struct migfile	*mf;

	mf = xcalloc(1, sizeof *mf);
	mf->refs = 1;
	mf->path = xstrdup(path);
	mf->message = message != NULL ? message : xstrdup("");
	mf->tx = MIGFILE_TX_AUTO;
	mf->layout = (unsigned char)f;
	mf->piece = (unsigned char)piece;
	return (mf);
}

/* The tool's version as migd's revision id, taking the allocated version
 * over; refused (and left to the caller) when it cannot be one
 * (alembic_version.version_num is varchar(32)). */
static int
layout_set_id(struct migfile *mf, const char *tool, char *version,
    struct errlist *errs)
{
	char	*why;

	if (!migfile_valid_id(version, &why)) {
		errlist_add(errs, "%s: %s version '%.40s%s' cannot be a "
		    "revision id: %s (migd keeps versions in "
		    "alembic_version.version_num, varchar(32)); rename the "
		    "file", mf->path, tool, version,
		    strlen(version) > 40 ? "..." : "", why);
		free(why);
		return (-1);
	}
	mf->revision = version;	/* the caller's, handed over */
	return (0);
}

/* Text as migd's parser takes it: no NUL, UTF-8, no BOM, LF line ends;
 * the buffer *own itself (taken: *own becomes NULL) when the text is that
 * already. */
static char *
layout_text(const char *path, const char *text, size_t len, char **own,
    size_t *outlen, struct errlist *errs)
{
	char	*out;
	size_t	 i, j;
	int	 line;

	if (len > MIGFILE_MAX_SIZE) {
		errlist_add(errs, "%s:1: file too large (%zu bytes, the limit "
		    "is %d MiB)", path, len, MIGFILE_MAX_SIZE / (1024 * 1024));
		return (NULL);
	}
	if (memchr(text, '\0', len) != NULL) {
		errlist_add(errs, "%s:1: not a text file (NUL byte)", path);
		return (NULL);
	}
	if ((i = utf8_valid_prefix(text, len)) != len) {
		for (j = 0, line = 1; j < i; j++)
			line += text[j] == '\n';
		errlist_add(errs, "%s:%d: not valid UTF-8 (byte 0x%02x)", path,
		    line, (unsigned char)text[i]);
		return (NULL);
	}
	if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0) {
		text += 3;
		len -= 3;
	} else if (own != NULL && memchr(text, '\r', len) == NULL) {
		/* Read as it stays: the buffer is the text, not copied. */
		out = *own;
		*own = NULL;
		out[len] = '\0';
		*outlen = len;
		return (out);
	}
	return (migfile_normalise(text, len, outlen));
}

/* migfile_checksum of a section cut from normalised text: the same sum
 * (normalising it again changes only a CR left before a LF: "\r\r\n"),
 * without the copy when there is no CR. */
static void
layout_checksum(const char *text, size_t len, char out[65])
{
	if (memchr(text, '\r', len) == NULL)
		migfile_sha256_hex(text, len, out);
	else
		migfile_checksum(text, len, out);
}

/* One line of text: [p, end of line) without its LF. */
static size_t
layout_linelen(const char *p, const char *end)
{
	const char	*eol = memchr(p, '\n', end - p);

	return (eol != NULL ? (size_t)(eol - p) : (size_t)(end - p));
}

/* dbmate's marker: ^--\s*migrate:(up|down)(\s*$|\s+\S+); returns the
 * options' offset in the line, or 0 when the line is no such marker. */
static size_t
layout_dbmate_marker(const char *p, size_t n, const char *which)
{
	size_t	 i = 2, w = strlen(which);

	if (n < 2 || p[0] != '-' || p[1] != '-')
		return (0);
	while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r'))
		i++;
	if (n - i < 8 + w || strncmp(p + i, "migrate:", 8) != 0 ||
	    strncmp(p + i + 8, which, w) != 0)
		return (0);
	i += 8 + w;
	if (i < n && p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
		return (0);
	return (i);
}

/* dbmate's options after a marker: transaction:false runs it outside a
 * transaction; dbmate ignores the others, and so does migd. */
static int
layout_dbmate_notx(const char *p, size_t n)
{
	const char	*key = "transaction:false";
	size_t		 i, k = strlen(key);

	for (i = 0; i + k <= n; i++) {
		if (strncmp(p + i, key, k) == 0 && (i == 0 || p[i - 1] == ' ' ||
		    p[i - 1] == '\t') && (i + k == n || p[i + k] == ' ' ||
		    p[i + k] == '\t' || p[i + k] == '\r'))
			return (1);
	}
	return (0);
}

/* Whether a line holds SQL: anything but blanks and a "--" comment. */
static int
layout_is_sql(const char *p, size_t n)
{
	size_t	i;

	for (i = 0; i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r');
	    i++)
		/* nothing */;
	return (i < n && !(n - i >= 2 && p[i] == '-' && p[i + 1] == '-'));
}

/* The up and down sections a marker-split file gave, and its checksum. */
static void
layout_sections(struct migfile *mf, const char *up, const char *up_end,
    const char *down, const char *end)
{
	mf->up = xstrndup(up, up_end - up);
	layout_checksum(mf->up, strlen(mf->up), mf->checksum);
	if (down != NULL)
		mf->down = xstrndup(down, end - down);
	else
		mf->down_line = 0;
}

/* Where a layout's header problems go: errs, as "PATH:LINE: msg". */
struct layout_errs {
	const char	*path;
	struct errlist	*errs;
};

static void
layout_lint_error(void *arg, int line, const char *msg)
{
	struct layout_errs	*le = arg;

	errlist_add(le->errs, "%s:%d: %s", le->path, line, msg);
}

/* A comment above the up marker: migd's "-- lint-ignore:" is read there in
 * every layout (docs/lint.md); returns 1 when it was one. */
static int
layout_header_lint(struct migfile *mf, const char *p, size_t n, int line,
    struct errlist *errs)
{
	struct layout_errs	 le = { mf->path, errs };
	size_t			 i = 0;

	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	if (n - i < 2 || p[i] != '-' || p[i + 1] != '-')
		return (0);
	for (i += 2; i < n && (p[i] == ' ' || p[i] == '\t'); i++)
		/* nothing */;
	return (migfile_lint_ignore(mf, p + i, n - i, line,
	    layout_lint_error, &le));
}

/* Whose down section a line begins (sql-migrate's, goose's, dbmate's or
 * migd's marker), or NULL. */
static const char *
layout_down_marker(const char *p, size_t n)
{
	char	 buf[16];
	size_t	 k = strlen("-- +migrate Down");

	if (n >= k && strncmp(p, "-- +migrate Down", k) == 0 && (n == k ||
	    strchr(" \t\r", p[k]) != NULL))
		return ("sql-migrate's annotation");
	if (layout_goose_note(p, n, buf, sizeof buf) != NULL &&
	    strcmp(buf, "down") == 0)
		return ("goose's annotation");
	if (layout_dbmate_marker(p, n, "down") != 0)
		return ("dbmate's and migd's marker");
	return (NULL);
}

/*
 * A file that is all SQL (golang-migrate, sqlx, diesel, Flyway): its
 * leading comments are its header, where "-- lint-ignore:" is read.  A line
 * of an up file that begins another tool's down section is refused: read
 * as this layout, the down SQL after it would run with the up (a dbmate or
 * goose project under the wrong format; sql-migrate's files, read as sqlx
 * simple files, would create and drop in one go).
 */
static void
layout_section(struct migfile *mf, char *text, size_t len,
    struct errlist *errs)
{
	const char	*p, *end = text + len, *whose, *tool;
	char		*hint;
	size_t		 n;
	int		 line = 0;

	for (p = text; p < end && mf->piece != LAYOUT_PIECE_DOWN; p += n + 1) {
		n = layout_linelen(p, end);
		line++;
		if ((whose = layout_down_marker(p, n)) != NULL) {
			tool = strncmp(whose, "goose", 5) == 0 ? "goose" :
			    strncmp(whose, "dbmate", 6) == 0 ? "dbmate" : NULL;
			hint = tool != NULL ? xprintf("if this is a %s "
			    "project, set format = %s", tool, tool) : xstrdup(
			    "move it out, or read the files with the format "
			    "they were written for");
			errlist_add(errs, "%s:%d: '%.*s' begins a down section "
			    "(%s), but a %s file is one migration, run whole: "
			    "the SQL after this line would run with the up; %s",
			    mf->path, line, (int)(n > 0 && p[n - 1] == '\r' ?
			    n - 1 : n), p, whose, layout_name(mf->layout), hint);
			free(hint);
			break;
		}
		if (p + n >= end)
			break;
	}
	line = 0;

	if (mf->piece == LAYOUT_PIECE_DOWN) {
		mf->down = text;
		mf->down_line = 1;
		return;
	}
	for (p = text; p < end; p += n + 1) {
		n = layout_linelen(p, end);
		line++;
		if (layout_is_sql(p, n))
			break;
		layout_header_lint(mf, p, n, line, errs);
		if (p + n >= end)
			break;
	}
	mf->up = text;
	mf->up_line = 1;
	layout_checksum(text, len, mf->checksum);
}

/* dbmate: an up block, then a down block; nothing but comments and blanks
 * before the up marker, as dbmate requires. */
static int
layout_dbmate(struct migfile *mf, const char *text, size_t len,
    struct errlist *errs)
{
	const char	*p = text, *end = text + len, *up = NULL, *down = NULL;
	const char	*up_end = end;
	size_t		 n, o;
	int		 line = 0, sql_line = 0, bad = 0;

	for (; p < end; p += n + 1) {
		n = layout_linelen(p, end);
		line++;
		if ((o = layout_dbmate_marker(p, n, "up")) != 0) {
			if (up != NULL) {
				errlist_add(errs, "%s:%d: a second '-- migrate:"
				    "up' (dbmate takes one)", mf->path, line);
				bad = 1;
				continue;
			}
			if (layout_dbmate_notx(p + o, n - o))
				mf->tx = MIGFILE_TX_NONE;
			up = p + n < end ? p + n + 1 : end;
			mf->up_line = line + 1;
		} else if (layout_dbmate_marker(p, n, "down") != 0) {
			if (up == NULL) {
				errlist_add(errs, "%s:%d: '-- migrate:down' "
				    "before '-- migrate:up' (dbmate requires "
				    "the up block first)", mf->path, line);
				bad = 1;
				continue;
			}
			if (down != NULL) {
				errlist_add(errs, "%s:%d: a second '-- migrate:"
				    "down' (dbmate takes one)", mf->path, line);
				bad = 1;
				continue;
			}
			up_end = p;
			down = p + n < end ? p + n + 1 : end;
			mf->down_line = line + 1;
		} else if (up == NULL) {
			if (!layout_header_lint(mf, p, n, line, errs) &&
			    sql_line == 0 && layout_is_sql(p, n))
				sql_line = line;
		}
		if (p + n >= end)
			break;
	}
	if (up == NULL) {
		errlist_add(errs, "%s:1: no '-- migrate:up' line (dbmate "
		    "requires each migration to define an up block)", mf->path);
		return (-1);
	}
	if (sql_line != 0) {
		errlist_add(errs, "%s:%d: SQL before '-- migrate:up' (dbmate "
		    "refuses statements outside the up and down blocks)",
		    mf->path, sql_line);
		bad = 1;
	}
	layout_sections(mf, up, up_end, down, end);
	return (bad ? -1 : 0);
}

/* goose's annotation on a line, lowercased into buf, or NULL. */
static const char *
layout_goose_note(const char *p, size_t n, char *buf, size_t size)
{
	const char	*prefix = "-- +goose ";
	size_t		 k = strlen(prefix), i, j = 0;

	if (n < k || strncmp(p, prefix, k) != 0)
		return (NULL);
	for (i = k; i < n && (p[i] == ' ' || p[i] == '\t'); i++)
		/* nothing */;
	for (; i < n && j + 1 < size; i++) {
		if (p[i] == '\r')
			continue;
		buf[j++] = (p[i] >= 'A' && p[i] <= 'Z') ? p[i] + 32 : p[i];
	}
	while (j > 0 && (buf[j - 1] == ' ' || buf[j - 1] == '\t'))
		j--;
	buf[j] = '\0';
	return (buf);
}

/*
 * A goose section with a ';' put before each '-- +goose StatementEnd' line
 * (sec freed): goose ends the statement there, semicolon or not, and
 * files often leave it out after a $$ body ("$$ LANGUAGE plpgsql" then
 * StatementEnd); to the parser the next statement would run on into it.
 * An extra ';' is an empty statement.  The lines stay where they were.
 */
static char *
layout_goose_ends(char *sec)
{
	const char	*p, *end = sec + strlen(sec), *note;
	char		 buf[64], *out, *o;
	size_t		 n, k = 0;

	for (p = sec; p < end; p += n + 1) {
		n = layout_linelen(p, end);
		if ((note = layout_goose_note(p, n, buf, sizeof buf)) != NULL &&
		    strcmp(note, "statementend") == 0)
			k++;
		if (p + n >= end)
			break;
	}
	if (k == 0)
		return (sec);
	o = out = xmalloc((size_t)(end - sec) + k + 1);
	for (p = sec; p < end; p += n + 1) {
		n = layout_linelen(p, end);
		if ((note = layout_goose_note(p, n, buf, sizeof buf)) != NULL &&
		    strcmp(note, "statementend") == 0)
			*o++ = ';';
		memcpy(o, p, n + (p + n < end));
		o += n + (p + n < end);
		if (p + n >= end)
			break;
	}
	*o = '\0';
	free(sec);
	return (out);
}

/*
 * goose: '-- +goose Up', then '-- +goose Down'.  StatementBegin/End only
 * guide goose's own splitter: they are comments to PostgreSQL, and migd's
 * parser splits by itself, but for the end of a statement a StatementEnd
 * makes (layout_goose_ends).  NO TRANSACTION runs the file outside one.
 */
static int
layout_goose(struct migfile *mf, const char *text, size_t len,
    struct errlist *errs)
{
	const char	*p = text, *end = text + len, *up = NULL, *down = NULL;
	const char	*up_end = end, *note;
	char		 buf[64];
	size_t		 n;
	int		 line = 0, bad = 0, sql_line = 0;

	for (; p < end; p += n + 1) {
		n = layout_linelen(p, end);
		line++;
		if ((note = layout_goose_note(p, n, buf, sizeof buf)) != NULL) {
			if (strcmp(note, "up") == 0 && up == NULL) {
				up = p + n < end ? p + n + 1 : end;
				mf->up_line = line + 1;
			} else if (strcmp(note, "down") == 0 && up != NULL &&
			    down == NULL) {
				up_end = p;
				down = p + n < end ? p + n + 1 : end;
				mf->down_line = line + 1;
			} else if (strcmp(note, "up") == 0 ||
			    strcmp(note, "down") == 0) {
				errlist_add(errs, "%s:%d: '-- +goose %s' out "
				    "of place (goose takes one Up, then at "
				    "most one Down)", mf->path, line, note);
				bad = 1;
			} else if (strcmp(note, "no transaction") == 0)
				mf->tx = MIGFILE_TX_NONE;
			else if (strcmp(note, "envsub on") == 0) {
				errlist_add(errs, "%s:%d: '-- +goose ENVSUB "
				    "ON' substitutes environment variables, "
				    "which migd does not do: write the values "
				    "into the file", mf->path, line);
				bad = 1;
			} else if (strcmp(note, "statementbegin") != 0 &&
			    strcmp(note, "statementend") != 0 &&
			    strcmp(note, "envsub off") != 0) {
				errlist_add(errs, "%s:%d: unknown goose "
				    "annotation '%s' (known: Up, Down, "
				    "StatementBegin, StatementEnd, NO "
				    "TRANSACTION)", mf->path, line, note);
				bad = 1;
			}
		} else if (up == NULL) {
			if (!layout_header_lint(mf, p, n, line, errs) &&
			    sql_line == 0 && layout_is_sql(p, n))
				sql_line = line;
		}
		if (p + n >= end)
			break;
	}
	if (up == NULL) {
		errlist_add(errs, "%s:1: no '-- +goose Up' annotation (goose "
		    "requires one before the migration's SQL)", mf->path);
		return (-1);
	}
	if (sql_line != 0) {
		errlist_add(errs, "%s:%d: SQL before '-- +goose Up' (goose "
		    "refuses statements before the first annotation)",
		    mf->path, sql_line);
		bad = 1;
	}
	layout_sections(mf, up, up_end, down, end);
	/* After the checksum, which is of the file's own text. */
	mf->up = layout_goose_ends(mf->up);
	if (mf->down != NULL)
		mf->down = layout_goose_ends(mf->down);
	return (bad ? -1 : 0);
}

/* Whether text has a goose Up annotation or a dbmate up marker preceded
 * only by comments that are no "-- key: value" header (what migd's own
 * files have).  For auto. */
static enum layout_format
layout_guess_text(const char *text, size_t len)
{
	const char	*p = text, *end = text + len, *note;
	char		 buf[16];
	size_t		 n, i;
	int		 header = 0;

	for (; p < end; p += n + 1) {
		n = layout_linelen(p, end);
		if ((note = layout_goose_note(p, n, buf, sizeof buf)) != NULL &&
		    strcmp(note, "up") == 0)
			return (LAYOUT_GOOSE);
		if (layout_dbmate_marker(p, n, "up") != 0)
			return (header ? LAYOUT_MIGD : LAYOUT_DBMATE);
		/* "-- word:" is a migd header (or a near miss of one). */
		for (i = 2; n >= 2 && p[0] == '-' && p[1] == '-' && i < n &&
		    (p[i] == ' ' || p[i] == '\t'); i++)
			/* nothing */;
		if (n >= 2 && p[0] == '-' && p[1] == '-') {
			while (i < n && ((p[i] >= 'a' && p[i] <= 'z') ||
			    (p[i] >= 'A' && p[i] <= 'Z') || p[i] == '_'))
				i++;
			while (i < n && (p[i] == ' ' || p[i] == '\t'))
				i++;
			if (i < n && p[i] == ':')
				header = 1;
		}
		if (p + n >= end)
			break;
	}
	/* No header and no marker: plain SQL, as in sqlx's simple files. */
	return (header ? LAYOUT_MIGD : LAYOUT_SQLX);
}

/* A Flyway SQL callback's name (afterMigrate.sql, beforeEachMigrate__x.sql):
 * the length of its event, or 0. */
static size_t
layout_flyway_callback(const char *base)
{
	size_t	 n, i;

	if (strncmp(base, "before", 6) == 0)
		i = 6;
	else if (strncmp(base, "after", 5) == 0)
		i = 5;
	else
		return (0);
	if (base[i] < 'A' || base[i] > 'Z' || !layout_endswith(base, ".sql"))
		return (0);
	for (n = i; (base[n] >= 'a' && base[n] <= 'z') || (base[n] >= 'A' &&
	    base[n] <= 'Z'); n++)
		/* nothing */;
	return (strcmp(base + n, ".sql") == 0 || strncmp(base + n, "__", 2) ==
	    0 ? n : 0);
}

/* Refuses a Flyway callback: Flyway runs it at every migrate, migd never. */
static int
layout_flyway_refuse_callback(const char *path, const char *base,
    struct errlist *errs)
{
	size_t	 n = layout_flyway_callback(base);

	if (n == 0)
		return (0);
	errlist_add(errs, "%s: a Flyway callback (%.*s), which Flyway runs at "
	    "every migrate and migd never runs: put what it does in a "
	    "versioned V<version>__ migration, or run it in the deploy step "
	    "after 'migctl upgrade'; move it out", path, (int)n, base);
	return (1);
}

/* Flyway's V1__x.sql, U1_2__x.sql, R__x.sql: the prefix letter, or 0. */
static char
layout_flyway_name(const char *base)
{
	const char	*sep;
	size_t		 i;

	if ((base[0] != 'V' && base[0] != 'U' && base[0] != 'R') ||
	    !layout_endswith(base, ".sql") ||
	    (sep = strstr(base + 1, "__")) == NULL)
		return (0);
	if (base[0] == 'R')
		return (sep == base + 1 ? 'R' : 0);
	if (!layout_isdigit(base[1]))
		return (0);
	for (i = 1; base + i < sep; i++) {
		if (!layout_isdigit(base[i]) && base[i] != '.' &&
		    base[i] != '_')
			return (0);
	}
	return (base[0]);
}

/* A diesel migration directory: digits and dashes, then '_' or nothing. */
int
layout_diesel_dir(const char *dir, size_t n)
{
	size_t	 i, digits = 0;

	for (i = 0; i < n && dir[i] != '_'; i++) {
		if (layout_isdigit(dir[i]))
			digits++;
		else if (dir[i] != '-')
			return (0);
	}
	return (digits > 0);
}

/* A line of metadata.toml for a message: at most 60 bytes, escaped. */
static char *
layout_meta_quote(const char *p, size_t n)
{
	char	*raw, *q;

	raw = xstrndup(p, n > 60 ? 60 : n);
	q = utf8_escape_controls(raw);
	free(raw);
	if (n > 60) {
		raw = xprintf("%s...", q);
		free(q);
		q = raw;
	}
	return (q);
}

/*
 * diesel's metadata.toml, of which migd reads the one key diesel has:
 * "run_in_transaction = true|false", with blank lines and # comments.
 * Anything else is said, with its line, rather than guessed at.  Returns 0
 * with *notx 1 when the migration runs outside a transaction (0 when it
 * runs in one, as without the key), or -1 with the problems in errs.
 */
int
layout_diesel_meta(const char *path, const char *text, size_t len,
    int *notx, struct errlist *errs)
{
	static const char	 key[] = "run_in_transaction";
	const char		*p = text, *end = text + len, *eol, *v, *ve;
	size_t			 before = errs->n, n, ln;
	int			 line = 0, seen = 0;
	char			*q;

	*notx = 0;
	if (memchr(text, '\0', len) != NULL) {
		errlist_add(errs, "%s: a NUL byte: not a diesel metadata.toml "
		    "(migd reads only 'run_in_transaction = true|false' "
		    "there)", path);
		return (-1);
	}
	for (; p < end; p = eol + 1) {
		line++;
		if ((eol = memchr(p, '\n', end - p)) == NULL)
			eol = end;
		ln = eol - p;
		if (ln > 0 && p[ln - 1] == '\r')
			ln--;
		while (ln > 0 && (*p == ' ' || *p == '\t')) {
			p++;
			ln--;
		}
		while (ln > 0 && (p[ln - 1] == ' ' || p[ln - 1] == '\t'))
			ln--;
		if (ln == 0 || *p == '#')
			continue;
		if (ln < sizeof key - 1 || memcmp(p, key, sizeof key - 1) != 0)
			goto unread;
		v = p + sizeof key - 1;
		ve = p + ln;
		while (v < ve && (*v == ' ' || *v == '\t'))
			v++;
		if (v == ve || *v != '=')
			goto unread;
		for (v++; v < ve && (*v == ' ' || *v == '\t'); v++)
			/* nothing */;
		/* The value, then blanks and a comment at most. */
		for (n = 0; v + n < ve && v[n] != ' ' && v[n] != '\t' &&
		    v[n] != '#'; n++)
			/* nothing */;
		for (q = (char *)v + n; q < ve && (*q == ' ' || *q == '\t');
		    q++)
			/* nothing */;
		if ((n != 4 || memcmp(v, "true", 4) != 0) &&
		    (n != 5 || memcmp(v, "false", 5) != 0)) {
			q = layout_meta_quote(v, ve - v);
			errlist_add(errs, "%s:%d: run_in_transaction must be "
			    "true or false (a TOML boolean, unquoted), not "
			    "'%s'", path, line, q);
			free(q);
			continue;
		}
		if (q < ve && *q != '#')
			goto unread;
		if (seen++) {
			errlist_add(errs, "%s:%d: run_in_transaction is set "
			    "twice (TOML allows a key once); keep one", path,
			    line);
			continue;
		}
		*notx = n == 5;
		continue;
unread:
		q = layout_meta_quote(p, ln);
		errlist_add(errs, "%s:%d: cannot read '%s': migd reads only "
		    "'run_in_transaction = true' or '= false' (and comments) "
		    "in a diesel metadata.toml; remove the rest, or move the "
		    "file out if it is no diesel migration's", path, line, q);
		free(q);
	}
	if (errs->n != before) {
		*notx = 0;
		return (-1);
	}
	return (0);
}

/* What a file looks like, for auto. */
static enum layout_format
layout_guess(const char *rel, const char *base, const char *text, size_t len)
{
	const char	*slash = strchr(rel, '/');
	enum layout_format f;
	size_t		 d;

	if (layout_flyway_name(base) != 0 || (base[0] == 'B' &&
	    layout_isdigit(base[1]) && strstr(base, "__") != NULL))
		return (LAYOUT_FLYWAY);	/* B: refused as Flyway's */
	if (slash != NULL && strchr(slash + 1, '/') == NULL &&
	    (strcmp(base, "up.sql") == 0 || strcmp(base, "down.sql") == 0) &&
	    layout_diesel_dir(rel, slash - rel))
		return (LAYOUT_DIESEL);
	d = layout_digits(base);
	if (slash != NULL || d == 0) {
		/* No tool's name: migd's if it has anything of migd's. */
		f = layout_guess_text(text, len);
		return (f == LAYOUT_SQLX ? LAYOUT_AUTO : LAYOUT_MIGD);
	}
	if (base[d] == '_' && (layout_endswith(base, ".up.sql") ||
	    layout_endswith(base, ".down.sql")))
		return (LAYOUT_GOLANG_MIGRATE);
	f = layout_guess_text(text, len);
	return (f == LAYOUT_SQLX && base[d] != '_' ? LAYOUT_MIGD : f);
}

/* Says the file is no migration of this layout: its name, its place. */
enum layout_why { LAYOUT_WHY_NAME, LAYOUT_WHY_TOP, LAYOUT_WHY_DIESEL };

static int
layout_skip(char **skip, enum layout_format f, enum layout_why why)
{
	switch (why) {
	case LAYOUT_WHY_TOP:
		*skip = xprintf("%s reads only the top of the migrations "
		    "directory (%s)", layout_names[f], layout_shapes[f]);
		break;
	case LAYOUT_WHY_DIESEL:
		*skip = xprintf("%s reads only %s", layout_names[f],
		    layout_shapes[f]);
		break;
	default:
		*skip = xprintf("not a %s migration name (%s)",
		    layout_names[f], layout_shapes[f]);
		break;
	}
	return (1);
}

/* Whether a name is a goose Go migration's: VERSION_name.go, not a test. */
int
layout_goose_go(const char *name)
{
	size_t	 d = layout_digits(name), len = strlen(name);

	return (d > 0 && name[d] == '_' && len > d + 4 &&
	    strcmp(name + len - 3, ".go") == 0 && !(len >= 8 &&
	    strcmp(name + len - 8, "_test.go") == 0));
}

/*
 * A goose Go migration: its version holds a place in goose's order, but Go
 * code migd cannot run.  Skipped, a database migrated from scratch would
 * silently miss it: it is a revision that stops a run until it is SQL, and
 * that adopt --from goose records as applied where goose ran it.
 */
static int
layout_goose_gofile(const char *path, const char *base, struct migfile **out,
    struct errlist *errs)
{
	struct migfile	*mf;
	char		*version, *q;
	size_t		 d = layout_digits(base);

	if ((version = layout_number(base, d, "9223372036854775807")) ==
	    NULL) {
		q = xstrndup(base, d);
		errlist_add(errs, "%s: version %.40s%s is too large for goose "
		    "(an int64)", path, q, d > 40 ? "..." : "");
		free(q);
		return (-1);
	}
	if (strcmp(version, "0") == 0) {
		errlist_add(errs, "%s: goose version 0 is reserved (goose's "
		    "versions start at 1); rename the file", path);
		free(version);
		return (-1);
	}
	mf = layout_new(path, LAYOUT_GOOSE, LAYOUT_PIECE_WHOLE,
	    xstrndup(base + d + 1, strlen(base + d + 1) - 3));
	if (layout_set_id(mf, "goose", version, errs) != 0) {
		free(version);
		migfile_free(mf);
		return (-1);
	}
	mf->up = xstrdup("");
	layout_checksum(mf->up, 0, mf->checksum);
	mf->unfinished = xstrdup("a goose Go migration: migd runs SQL, not "
	    "Go code");
	mf->unfinished_line = 1;
	*out = mf;
	return (0);
}

/* Reads one file in the tool's terms: its name gives the version, its text
 * the sections; own: text's buffer, when it may be kept (layout_text). */
static int
layout_file_own(enum layout_format f, const char *path, const char *rel,
    const char *text, size_t len, char **own, struct migfile **out,
    char **skip, struct errlist *errs)
{
	const char	*base, *slash, *sep;
	struct migfile	*mf = NULL;
	enum layout_piece piece = LAYOUT_PIECE_WHOLE;
	char		*norm = NULL, *version = NULL, *desc = NULL, *q;
	size_t		 d, normlen = 0, before = errs->n, i;
	int		 r;
	char		 kind;

	*out = NULL;
	*skip = NULL;
	base = strrchr(rel, '/');
	base = base != NULL ? base + 1 : rel;
	slash = strchr(rel, '/');
	if (slash == NULL && (f == LAYOUT_GOOSE || f == LAYOUT_AUTO) &&
	    layout_goose_go(base))
		return (layout_goose_gofile(path, base, out, errs));
	if (f == LAYOUT_AUTO &&
	    (f = layout_guess(rel, base, text, len)) == LAYOUT_AUTO) {
		/* Judged with the directory (layout_detect): kept whole. */
		mf = layout_new(path, LAYOUT_MIGD, LAYOUT_PIECE_WEAK, NULL);
		mf->up = xstrndup(text, len);
		*out = mf;
		return (-1);
	}
	if (f == LAYOUT_MIGD) {
		r = migfile_parse_all(path, text, len, out, errs);
		if (*out != NULL)
			(*out)->layout = LAYOUT_MIGD;
		return (r);
	}

	/* The name: the version, the piece, the description. */
	switch (f) {
	case LAYOUT_FLYWAY:
		if ((kind = layout_flyway_name(base)) == 'R') {
			errlist_add(errs, "%s: a Flyway repeatable migration "
			    "(R__): migd runs each migration once, in order, "
			    "and does not rerun changed files; make it a "
			    "versioned V<version>__ file or move it out",
			    path);
			return (-1);
		}
		if (kind == 0) {
			if (layout_flyway_refuse_callback(path, base, errs))
				return (-1);
			if (base[0] == 'B' && layout_isdigit(base[1]) &&
			    strstr(base, "__") != NULL) {
				errlist_add(errs, "%s: a Flyway baseline "
				    "migration (B...__): migd does not read "
				    "them; move it out", path);
				return (-1);
			}
			return (layout_skip(skip, f, LAYOUT_WHY_NAME));
		}
		sep = strstr(base + 1, "__");
		version = xstrndup(base + 1, sep - base - 1);
		for (i = 0; version[i] != '\0'; i++) {
			if (version[i] == '_')
				version[i] = '.';
		}
		desc = xstrndup(sep + 2, strlen(sep + 2) - 4);
		for (i = 0; desc[i] != '\0'; i++) {
			if (desc[i] == '_')
				desc[i] = ' ';
		}
		if (version[strlen(version) - 1] == '.' ||
		    strstr(version, "..") != NULL) {
			errlist_add(errs, "%s: Flyway version '%s' has an "
			    "empty part; write it as 1.2 or 1_2", path,
			    version);
			goto fail;
		}
		piece = kind == 'U' ? LAYOUT_PIECE_DOWN : LAYOUT_PIECE_UP;
		break;
	case LAYOUT_DIESEL:
		if (slash == NULL || strchr(slash + 1, '/') != NULL)
			return (layout_skip(skip, f, LAYOUT_WHY_DIESEL));
		if (strcmp(base, "up.sql") == 0)
			piece = LAYOUT_PIECE_UP;
		else if (strcmp(base, "down.sql") == 0)
			piece = LAYOUT_PIECE_DOWN;
		else
			return (layout_skip(skip, f, LAYOUT_WHY_DIESEL));
		if (!layout_diesel_dir(rel, slash - rel))
			return (layout_skip(skip, f, LAYOUT_WHY_DIESEL));
		/* Diesel's version: the name up to '_', without dashes. */
		version = xcalloc(1, slash - rel + 1);
		for (i = d = 0; rel + i < slash && rel[i] != '_'; i++) {
			if (rel[i] != '-')
				version[d++] = rel[i];
		}
		desc = rel[i] == '_' ? xstrndup(rel + i + 1, slash - rel - i -
		    1) : xstrdup("");
		break;
	case LAYOUT_DBMATE:
	case LAYOUT_GOLANG_MIGRATE:
	case LAYOUT_SQLX:
	case LAYOUT_GOOSE:
		if (slash != NULL)
			return (layout_skip(skip, f, LAYOUT_WHY_TOP));
		d = layout_digits(base);
		if (d == 0 || (f != LAYOUT_DBMATE && base[d] != '_'))
			return (layout_skip(skip, f, LAYOUT_WHY_NAME));
		if (f == LAYOUT_GOLANG_MIGRATE || f == LAYOUT_SQLX) {
			if (layout_endswith(base, ".up.sql"))
				piece = LAYOUT_PIECE_UP;
			else if (layout_endswith(base, ".down.sql"))
				piece = LAYOUT_PIECE_DOWN;
			else if (f == LAYOUT_GOLANG_MIGRATE)
				return (layout_skip(skip, f, LAYOUT_WHY_NAME));
		}
		if (f == LAYOUT_DBMATE)
			version = xstrndup(base, d);
		else if ((version = layout_number(base, d, f ==
		    LAYOUT_GOLANG_MIGRATE ? "18446744073709551615" :
		    "9223372036854775807")) == NULL) {
			q = xstrndup(base, d);
			errlist_add(errs, "%s: version %.40s%s is too large "
			    "for %s (a %s)", path, q, d > 40 ? "..." : "",
			    layout_names[f], f == LAYOUT_GOLANG_MIGRATE ?
			    "uint64" : "int64");
			free(q);
			return (-1);
		}
		if (f == LAYOUT_GOOSE && strcmp(version, "0") == 0) {
			errlist_add(errs, "%s: goose version 0 is reserved "
			    "(goose's versions start at 1); rename the file",
			    path);
			goto fail;
		}
		desc = xstrdup(base + d + (base[d] == '_'));
		desc[strlen(desc) - (piece == LAYOUT_PIECE_UP ? 7 :
		    piece == LAYOUT_PIECE_DOWN ? 9 : 4)] = '\0';
		break;
	default:
		abort();
	}

	mf = layout_new(path, f, piece, desc);
	desc = NULL;
	if (layout_set_id(mf, layout_names[f], version, errs) != 0)
		goto fail;
	version = NULL;
	/* dbmate's and goose's sections are cut out of the text: a copy. */
	if ((norm = layout_text(path, text, len, f == LAYOUT_DBMATE ||
	    f == LAYOUT_GOOSE ? NULL : own, &normlen, errs)) == NULL)
		goto fail;
	switch (f) {
	case LAYOUT_DBMATE:
		layout_dbmate(mf, norm, normlen, errs);
		free(norm);
		break;
	case LAYOUT_GOOSE:
		layout_goose(mf, norm, normlen, errs);
		free(norm);
		break;
	case LAYOUT_SQLX:
		/* sqlx's own directive, on the first line. */
		if (strncmp(norm, "-- no-transaction", 17) == 0)
			mf->tx = MIGFILE_TX_NONE;
		/* FALLTHROUGH */
	default:
		layout_section(mf, norm, normlen, errs);
		break;
	}
	free(version);
	if (errs->n != before) {
		*out = mf;
		return (-1);
	}
	*out = mf;
	return (0);
fail:
	free(version);
	free(desc);
	migfile_free(mf);
	return (-1);
}

/* One file, its text as given. */
int
layout_file(enum layout_format f, const char *path, const char *rel,
    const char *text, size_t len, struct migfile **out, char **skip,
    struct errlist *errs)
{
	return (layout_file_own(f, path, rel, text, len, NULL, out, skip,
	    errs));
}

/* One file read into *buf, which becomes its text when it can. */
int
layout_file_buf(enum layout_format f, const char *path, const char *rel,
    char **buf, size_t len, struct migfile **out, char **skip,
    struct errlist *errs)
{
	return (layout_file_own(f, path, rel, *buf, len, buf, out, skip,
	    errs));
}

/* Sorting by the tool's order needs the layout: one per assemble. */
struct layout_sortee {
	struct migfile		*mf;
	enum layout_format	 f;
};

/* The tool's order; an up file before its down file, then by path. */
static int
layout_cmp_order(const void *a, const void *b)
{
	const struct layout_sortee	*x = a, *y = b;
	const char			*bx, *by;
	int				 c;

	switch (x->f) {
	case LAYOUT_DBMATE:
		/* dbmate applies files in the order of their names. */
		bx = strrchr(x->mf->path, '/');
		by = strrchr(y->mf->path, '/');
		c = strcmp(bx ? bx + 1 : x->mf->path, by ? by + 1 :
		    y->mf->path);
		break;
	case LAYOUT_DIESEL:
		c = strcmp(x->mf->revision, y->mf->revision);
		break;
	case LAYOUT_FLYWAY:
		c = layout_cmp_flyway(x->mf->revision, y->mf->revision);
		break;
	default:
		c = layout_cmp_number(x->mf->revision, y->mf->revision);
		break;
	}
	if (c == 0)
		c = x->mf->piece - y->mf->piece;
	return (c != 0 ? c : strcmp(x->mf->path, y->mf->path));
}

/* A migset's files are sorted by path, as migdir leaves them. */
static int
layout_cmp_path(const void *a, const void *b)
{
	return (strcmp((*(struct migfile *const *)a)->path,
	    (*(struct migfile *const *)b)->path));
}

/* Auto: every file must be of one layout; a mix is refused, with counts
 * and an example of each. */
static int
layout_detect(const char *dir, struct migset *set, struct errlist *errs)
{
	size_t		 count[LAYOUT_NFORMATS] = { 0 }, i, kinds = 0;
	const char	*example[LAYOUT_NFORMATS] = { NULL };
	struct migfile	*mf;
	char		*msg, *t;
	int		 f = LAYOUT_MIGD;

	for (i = 0; i < set->n + set->n_broken; i++) {
		mf = i < set->n ? set->files[i] : set->broken[i - set->n];
		if (mf->piece == LAYOUT_PIECE_WEAK)
			continue;
		if (count[mf->layout]++ == 0) {
			example[mf->layout] = mf->path;
			kinds++;
			f = mf->layout;
		}
	}
	/* sqlx's two kinds of files: reversible pairs and simple ones. */
	if (kinds == 2 && count[LAYOUT_SQLX] > 0 &&
	    count[LAYOUT_GOLANG_MIGRATE] > 0) {
		for (i = 0; i < set->n + set->n_broken; i++) {
			mf = i < set->n ? set->files[i] :
			    set->broken[i - set->n];
			mf->layout = LAYOUT_SQLX;
		}
		return (LAYOUT_SQLX);
	}
	if (kinds == 1 && f == LAYOUT_SQLX) {
		errlist_add(errs, "%s: %zu files (such as %s) are plain SQL, "
		    "with neither migd's header nor dbmate's or goose's "
		    "markers: if they are sqlx migrations, set format = sqlx "
		    "under [migrations]; if they are migd's, add the header "
		    "('-- down_revision: ...' and '-- migrate:up')", dir,
		    count[f], example[f]);
		return (-1);
	}
	if (kinds <= 1)
		return (f);
	msg = xprintf("%s: files of %zu migration layouts in one directory:",
	    dir, kinds);
	for (i = 1; i < LAYOUT_NFORMATS; i++) {
		if (count[i] == 0)
			continue;
		t = xprintf("%s %zu %s (%s)%s", msg, count[i],
		    layout_names[i], example[i], --kinds > 0 ? "," : "");
		free(msg);
		msg = t;
	}
	errlist_add(errs, "%s; migd reads one layout per directory: move the "
	    "others out, or set format = TOOL under [migrations] to read "
	    "only that tool's files", msg);
	free(msg);
	return (-1);
}

/* Auto's files under no tool's name: skipped in another tool's directory
 * (the tool would not read them), else judged as migd files. */
static void
layout_weak(struct migset *set, int f, struct errlist *errs)
{
	struct migfile	*mf, *tmp;
	const char	*base;
	size_t		 i, k;

	for (i = k = 0; i < set->n_broken; i++) {
		mf = set->broken[i];
		if (mf->piece != LAYOUT_PIECE_WEAK) {
			set->broken[k++] = mf;
			continue;
		}
		base = strrchr(mf->path, '/');
		base = base != NULL ? base + 1 : mf->path;
		if (f == LAYOUT_FLYWAY && layout_flyway_refuse_callback(
		    mf->path, base, errs)) {
			set->incomplete = 1;
		} else if (f > LAYOUT_MIGD) {
			errlist_add(&set->skipped, "%s: skipped: not a %s "
			    "migration name (%s)", mf->path, layout_names[f],
			    layout_shapes[f]);
		} else if (migfile_parse_all(mf->path, mf->up, strlen(mf->up),
		    &tmp, errs) == 0) {
			tmp->layout = LAYOUT_MIGD;
			set->files = xreallocarray(set->files, set->n + 1,
			    sizeof *set->files);
			tmp->sig = mf->sig;
			set->files[set->n++] = tmp;
		} else if (tmp != NULL) {
			tmp->layout = LAYOUT_MIGD;
			set->broken[k++] = tmp;
		} else
			set->incomplete = 1;
		migfile_free(mf);
	}
	set->n_broken = k;
}

/* The tools keep no parent in their files: order makes the chain. */
int
layout_assemble(enum layout_format f, const char *dir, struct migset *set,
    struct errlist *errs)
{
	struct layout_sortee	*s;
	struct migfile		*mf, *prev = NULL, *up;
	size_t			 i, k, n, before = errs->n;
	int			 cmp;

	if (f == LAYOUT_AUTO) {
		f = layout_detect(dir, set, errs);
		layout_weak(set, f, errs);
		if ((int)f < 0)
			return (-1);
	}
	if (f == LAYOUT_MIGD || set->n == 0)
		return (f);

	/* In the tool's order, an up file first, then its down file. */
	n = set->n;
	s = xcalloc(n + 1, sizeof *s);
	for (i = 0; i < n; i++) {
		s[i].mf = set->files[i];
		s[i].f = f;
	}
	/* The walk's order is mostly the tool's already (a down file named
	 * just before its up): sort_runs costs about n comparisons then. */
	sort_runs(s, n, sizeof *s, layout_cmp_order);
	for (i = k = 0; i < n; i++) {
		mf = s[i].mf;
		up = k > 0 ? s[k - 1].mf : NULL;
		if (mf->piece == LAYOUT_PIECE_DOWN) {
			if (up != NULL && up->piece == LAYOUT_PIECE_UP &&
			    up->down_path == NULL && (f == LAYOUT_FLYWAY ?
			    layout_cmp_flyway(up->revision, mf->revision) :
			    strcmp(up->revision, mf->revision)) == 0) {
				/* The down file's text joins its up; both
				 * unchanged, the migration was reused. */
				up->reused = up->reused == 2 && mf->reused;
				up->down = mf->down;
				up->down_line = mf->down_line;
				up->down_path = mf->path;
				up->down_sig = mf->sig;
				mf->down = NULL;
				mf->path = NULL;
				migfile_free(mf);
				continue;
			}
			errlist_add(errs, "%s: a down file without its up file "
			    "(version %s)", mf->path, mf->revision);
			migfile_free(mf);
			continue;
		}
		if (up != NULL) {
			cmp = f == LAYOUT_FLYWAY ? layout_cmp_flyway(
			    up->revision, mf->revision) : strcmp(up->revision,
			    mf->revision);
			if (cmp == 0) {
				errlist_add(errs, "%s: version %s is also %s "
				    "(%s, like migd, needs each version once)",
				    mf->path, mf->revision, up->path,
				    layout_names[f]);
				migfile_free(mf);
				continue;
			}
		}
		s[k++].mf = mf;
	}
	/* Each revision's parent is the one before it. */
	for (i = 0; i < k; i++) {
		mf = s[i].mf;
		if (mf->reused == 2)
			mf->reused = 0;	/* its down file is gone */
		if (prev != NULL) {
			mf->parents = xcalloc(1, sizeof *mf->parents);
			mf->parents[0] = xstrdup(prev->revision);
			mf->n_parents = 1;
		}
		prev = mf;
		set->files[i] = mf;
	}
	set->n = k;
	free(s);
	sort_runs(set->files, set->n, sizeof *set->files, layout_cmp_path);
	return (errs->n != before ? -1 : (int)f);
}
