/*
 * migctl-author: authoring without a daemon.  `migctl new` writes the next
 * revision file with its header filled in, `migctl merge` a revision joining
 * every head; migctl runs this program for them.  Both load the directory
 * with the daemon's own parser and graph, so what they write is what migd
 * will accept.  It is a program of its own so that migctl, which every
 * deploy hook and readiness probe starts, links nothing but jansson.
 */
#include <sys/stat.h>

#include <ctype.h>
#include <limits.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "layout.h"
#include "migctl.h"
#include "migd/protocol.h"
#include "migd.h"
#include "revset.h"

/* Twelve random hex digits, as Alembic's revision ids. */
static int
author_id(char out[13])
{
	unsigned char	 b[6];
	int		 fd, i;
	ssize_t		 n;

	if ((fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC)) == -1)
		return (-1);
	n = read(fd, b, sizeof b);
	close(fd);
	if (n != (ssize_t)sizeof b)
		return (-1);
	for (i = 0; i < 6; i++)
		snprintf(out + i * 2, 3, "%02x", b[i]);
	return (0);
}

/* A file-name slug of the message: lower case, words joined by '_'. */
static char *
author_slug(const char *msg)
{
	char	*s = xmalloc(41), *p = s;
	int	 gap = 0;

	for (; *msg != '\0' && p - s < 40; msg++) {
		if (isalnum((unsigned char)*msg)) {
			if (gap && p != s)
				*p++ = '_';
			*p++ = (char)tolower((unsigned char)*msg);
			gap = 0;
		} else
			gap = 1;
	}
	*p = '\0';
	if (*s == '\0')
		strcpy(s, "revision");
	return (s);
}

/* What author_directory chose, for --json (directory_from) and people. */
#define AUTHOR_FROM_OPTION	"option"
#define AUTHOR_FROM_ENV		"environment"
#define AUTHOR_FROM_CONFIG	"config"
#define AUTHOR_FROM_CWD		"current_directory"
#define AUTHOR_FROM_INSTALLED	"installed_config"
#define AUTHOR_FROM_DEFAULT	"default"

/*
 * A configuration and the database of it the command is for (--db, else
 * as config_pick_db decides for what the command reads): exits when the
 * file does not load, unless quiet (NULL then: the installed one, or one
 * only asked for a default), and when no database can be picked, naming
 * them (as migd does, exit 1).
 */
struct config *
author_config(const struct author_opts *ao, const char *path, int quiet,
    const struct config_db **dbp)
{
	static char	 msg[1024];
	struct errlist	 errs = { NULL, 0 };
	struct config	*cf = NULL;
	json_t		*list;
	char		*cause;
	size_t		 i;
	int		 reads = ao->reads;

	if (config_load(path, &cf, &errs) != 0) {
		if (quiet) {
			errlist_clear(&errs);
			return (NULL);
		}
		list = json_array();
		for (i = 0; i < errs.n; i++)
			json_array_append_new(list, json_string(errs.v[i]));
		snprintf(msg, sizeof msg, "%s", errs.n ? errs.v[0] : path);
		errlist_clear(&errs);
		out_fail(MIGCTL_EXIT_FAILED, "config_error", json_pack("{s:o}",
		    "errors", list), "%s", msg);
	}
	errlist_clear(&errs);
	if (ao->directory != NULL)
		reads &= ~CONFIG_READS_DIR;	/* -d says it */
	if ((*dbp = config_pick_db(cf, ao->db, reads, &cause)) != NULL)
		return (cf);
	list = json_array();
	for (i = 0; i < cf->n_dbs; i++)
		json_array_append_new(list, json_string(cf->dbs[i].name));
	snprintf(msg, sizeof msg, "%s", cause);
	free(cause);
	config_free(cf);
	out_fail(MIGCTL_EXIT_FAILED, "invalid_params", json_pack("{s:o}",
	    "databases", list), "%s", msg);
}

/* --db names a database of a configuration: refused where none is read. */
static void
author_no_config(const struct author_opts *ao, const char *dir,
    const char *why)
{
	if (ao->db != NULL && ao->config == NULL)
		out_fail(MIGCTL_EXIT_USAGE, "usage", NULL, "--db %s picks a "
		    "database of a configuration file, and the directory %s "
		    "comes from %s: give -c CONFIG to read that database's "
		    "settings", ao->db, dir, why);
}

/* A configuration's directory (relative to the file), of the database the
 * command is for. */
static char *
author_config_dir(const struct author_opts *ao, const char *path, int quiet)
{
	const struct config_db	*db;
	struct config		*cf;
	char			*dir;

	if ((cf = author_config(ao, path, quiet, &db)) == NULL)
		return (NULL);
	dir = xstrdup(db->directory);
	config_free(cf);
	return (dir);
}

/*
 * The migrations directory, the first of: -d; $MIGD_MIGRATIONS; -c CONFIG's
 * (an explicit file that does not load is an error); ./migrations when it
 * is a directory; the installed configuration's; else ./migrations.  *from
 * says which (AUTHOR_FROM_*).  With --db, the directory of that database of
 * -c CONFIG (or of the installed one), which is then read also with -d.
 */
char *
author_directory(const struct author_opts *ao, const char **from)
{
	struct stat	 st;
	const char	*env;
	char		*dir;

	*from = AUTHOR_FROM_OPTION;
	if (ao->directory != NULL) {
		author_no_config(ao, ao->directory, "-d");
		if (ao->db != NULL)	/* a --db it has not got is refused */
			free(author_config_dir(ao, ao->config, 0));
		return (xstrdup(ao->directory));
	}
	*from = AUTHOR_FROM_ENV;
	if ((env = getenv("MIGD_MIGRATIONS")) != NULL && *env != '\0') {
		author_no_config(ao, env, "$MIGD_MIGRATIONS");
		return (xstrdup(env));
	}
	*from = AUTHOR_FROM_CONFIG;
	if (ao->config != NULL)
		return (author_config_dir(ao, ao->config, 0));
	*from = AUTHOR_FROM_CWD;
	if (stat("migrations", &st) == 0 && S_ISDIR(st.st_mode)) {
		author_no_config(ao, "migrations", "./migrations");
		return (xstrdup("migrations"));
	}
	*from = AUTHOR_FROM_INSTALLED;
	if ((dir = author_config_dir(ao, SYSCONFDIR "/migd/migd.conf",
	    1)) != NULL)
		return (dir);
	*from = AUTHOR_FROM_DEFAULT;
	author_no_config(ao, "migrations", "no configuration");
	return (xstrdup("migrations"));
}

/* Says which directory new and merge use, and why: on stderr for people,
 * in the JSON document for scripts. */
static void
author_say_directory(const struct author_opts *ao, const char *dir,
    const char *from)
{
	if (opts.json)
		return;
	if (strcmp(from, AUTHOR_FROM_OPTION) == 0)
		out_warnx("directory %s (-d)", dir);
	else if (strcmp(from, AUTHOR_FROM_ENV) == 0)
		out_warnx("directory %s ($MIGD_MIGRATIONS)",
		    dir);
	else if (strcmp(from, AUTHOR_FROM_CONFIG) == 0 && ao->db != NULL)
		out_warnx("directory %s (from %s, [database %s])", dir,
		    ao->config, ao->db);
	else if (strcmp(from, AUTHOR_FROM_CONFIG) == 0)
		out_warnx("directory %s (from %s)", dir,
		    ao->config);
	else if (strcmp(from, AUTHOR_FROM_CWD) == 0)
		out_warnx("directory %s (./migrations exists)",
		    dir);
	else if (strcmp(from, AUTHOR_FROM_INSTALLED) == 0)
		out_warnx("directory %s (from %s)", dir,
		    SYSCONFDIR "/migd/migd.conf");
	else
		out_warnx("directory %s (no -d, "
		    "$MIGD_MIGRATIONS, ./migrations or configuration)", dir);
}

/* Fails with a message about what was loaded, after letting it go: a leak
 * checker at exit then sees nothing held. */
static void __attribute__((noreturn, format(printf, 5, 6)))
author_refuse(struct revset *rs, char *dir, int code, const char *kind,
    const char *fmt, ...)
{
	static char	 msg[PATH_MAX + 256];
	va_list		 ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	revset_unref(rs);
	free(dir);
	out_fail(code, kind, NULL, "%s", msg);
}

/* With --json, the notes of author_load, for the document printed. */
json_t	*author_notes;

/* Loads the directory, or exits with every problem in it; ctx as for migd
 * (the configured schemas and migd's tables' schema), or NULL. */
struct revset *
author_load(const char *dir, const struct revset_ctx *ctx)
{
	struct errlist	 errs = { NULL, 0 };
	struct revset	*rs;
	json_t		*list;
	size_t		 i;

	if (revset_load(dir, ctx, &rs, &errs) != 0) {
		list = json_array();
		for (i = 0; i < errs.n; i++)
			json_array_append_new(list, json_string(errs.v[i]));
		errlist_clear(&errs);
		out_fail(MIGCTL_EXIT_FAILED, "invalid_migrations", json_pack(
		    "{s:o}", "errors", list), "the files in %s have problems; "
		    "fix them first", dir);
	}
	/* No server to ask: say what was assumed of SQL the parser refused. */
	revset_unparsed(rs, &errs);
	for (i = 0; i < errs.n; i++) {
		char	*note = xprintf("%s (assumed to be SQL newer than "
			    "PostgreSQL %d's parser)", errs.v[i],
			    sqlscan_parser_version() / 10000);

		if (opts.json) {
			if (author_notes == NULL)
				author_notes = json_array();
			json_array_append_new(author_notes, json_string(note));
		} else
			out_warnx("note: %s", note);
		free(note);
	}
	errlist_clear(&errs);
	return (rs);
}

/* Creates a file with text, never replacing one; 0, or -1 with *cause
 * (nothing left behind). */
static int
author_put(const char *path, const char *text, char **cause)
{
	size_t	 len = strlen(text);
	int	 fd, saved;

	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    0644)) == -1) {
		*cause = xprintf("cannot create %s: %s", path, strerror(errno));
		return (-1);
	}
	if (write(fd, text, len) != (ssize_t)len || close(fd) != 0) {
		saved = errno;
		unlink(path);
		*cause = xprintf("cannot write %s: %s", path, strerror(saved));
		return (-1);
	}
	return (0);
}

/* Writes the new file without ever replacing one. */
static void
author_write(const char *dir, const char *from, const char *id,
    const char *message, const char *parents, int merge)
{
	char	*slug, *path, *text, *cause;

	slug = author_slug(message);
	path = xprintf("%s/%s_%s.sql", dir, id, slug);
	text = xprintf("-- revision: %s\n-- down_revision: %s\n-- message: %s\n"
	    "\n-- migrate:up\n%s\n-- migrate:down\n%s", id, parents, message,
	    merge ? "" : "\n", merge ? "" : "\n");
	if (author_put(path, text, &cause) != 0)
		out_fail(MIGCTL_EXIT_FAILED, "io_error", NULL, "%s", cause);
	if (opts.json) {
		json_t	*o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "path",
			    path, "revision", id, "down_revision", parents,
			    "message", message, "directory", dir,
			    "directory_from", from);

		if (author_notes != NULL)
			json_object_set(o, "notes", author_notes);
		out_json(o, JSON_INDENT(2) | JSON_SORT_KEYS);
		json_decref(o);
	} else
		printf("%s\n", path);
	free(slug);
	free(path);
	free(text);
}

/* A message must fit on the header line. */
static void
author_check_message(const char *message)
{
	if (message == NULL || *message == '\0')
		out_fail(MIGCTL_EXIT_USAGE, "usage", NULL, "a message is "
		    "required (-m MESSAGE)");
	if (strpbrk(message, "\r\n") != NULL)
		out_fail(MIGCTL_EXIT_USAGE, "usage", NULL, "the message must "
		    "be one line");
}

/* The layout -c CONFIG names, for a directory with nothing in it yet. */
static enum layout_format
author_config_format(const struct author_opts *ao)
{
	const struct config_db	*db;
	struct config		*cf;
	int			 f;

	if (ao->config == NULL || (cf = author_config(ao, ao->config, 1,
	    &db)) == NULL)
		return (LAYOUT_AUTO);
	f = db->format;
	config_free(cf);
	return ((enum layout_format)f);
}

/* Removes what a failed new left: the files, then diesel's directory. */
static void
author_undo(const char *dir, const struct layout_create *lc, int files)
{
	char	*p;

	if (files > 1 && lc->down != NULL) {
		p = xprintf("%s/%s", dir, lc->down);
		unlink(p);
		free(p);
	}
	if (files > 0) {
		p = xprintf("%s/%s", dir, lc->up);
		unlink(p);
		free(p);
	}
	if (lc->dir != NULL) {
		p = xprintf("%s/%s", dir, lc->dir);
		rmdir(p);
		free(p);
	}
}

/*
 * migctl new in another tool's directory: the next migration as that
 * tool's create command names and starts it, on top of the newest; checked
 * by loading the directory again, and taken back if it does not load.
 */
static int
author_new_tool(const struct author_opts *ao, struct revset *rs,
    const char *dir, const char *from, enum layout_format fmt)
{
	struct layout_create	 lc;
	struct revset		*after;
	struct errlist		 errs = { NULL, 0 };
	const char		*head = NULL, *rel = NULL, *path;
	char			*slug, *cause = NULL, *p, *prev;
	size_t			*heads, n, i, dlen = strlen(dir);
	int			 undo = 0, files = 0;

	n = graph_heads(rs->graph, &heads);
	if (n == 1) {
		head = graph_id(rs->graph, heads[0]);
		path = revset_file(rs, heads[0])->path;
		rel = strncmp(path, dir, dlen) == 0 && path[dlen] == '/' ?
		    path + dlen + 1 : path;
	}
	for (i = 0; i < revset_count(rs); i++)
		undo |= revset_file(rs, i)->down_path != NULL;
	prev = xstrdup(head != NULL ? head : "none");
	free(heads);
	slug = author_slug(ao->message);
	if (layout_create(fmt, head, rel, undo, time(NULL), slug, &lc,
	    &cause) != 0)
		out_fail(MIGCTL_EXIT_FAILED, "invalid_migrations", NULL, "%s: "
		    "%s", dir, cause);
	free(slug);
	if (lc.dir != NULL) {
		p = xprintf("%s/%s", dir, lc.dir);
		if (mkdir(p, 0755) == -1)
			out_fail(MIGCTL_EXIT_FAILED, "io_error", NULL, "cannot "
			    "create %s: %s", p, strerror(errno));
		free(p);
	}
	p = xprintf("%s/%s", dir, lc.up);
	if (author_put(p, lc.up_text, &cause) == 0)
		files++;
	free(p);
	if (files == 1 && lc.down != NULL) {
		p = xprintf("%s/%s", dir, lc.down);
		if (author_put(p, lc.down_text, &cause) == 0)
			files++;
		free(p);
	}
	if (files < (lc.down != NULL ? 2 : 1)) {
		author_undo(dir, &lc, files);
		out_fail(MIGCTL_EXIT_FAILED, "io_error", NULL, "%s", cause);
	}
	/* What migd will read: the new migration must load, and be the head. */
	if (revset_load(dir, NULL, &after, &errs) != 0 ||
	    graph_heads(after->graph, &heads) != 1 || strcmp(revset_file(after,
	    heads[0])->path + dlen + 1, lc.up) != 0) {
		author_undo(dir, &lc, files);
		out_fail(MIGCTL_EXIT_FAILED, "invalid_migrations", NULL, "%s: "
		    "the new %s migration %s would not be the newest: %s; "
		    "nothing was written", dir, layout_name(fmt), lc.up,
		    errs.n > 0 ? errs.v[0] : "another sorts after it");
	}
	if (opts.json) {
		json_t	*o = json_pack("{s:s++, s:o, s:s, s:s, s:s, s:s, s:s, "
			    "s:s}", "path", dir, "/", lc.up, "down_path",
			    lc.down != NULL ? json_sprintf("%s/%s", dir,
			    lc.down) : json_null(), "revision", graph_id(
			    after->graph, heads[0]), "down_revision", prev,
			    "message", ao->message, "directory", dir,
			    "directory_from", from, "format", layout_name(fmt));

		out_json(o, JSON_INDENT(2) | JSON_SORT_KEYS);
		json_decref(o);
	} else {
		printf("%s/%s\n", dir, lc.up);
		if (lc.down != NULL)
			printf("%s/%s\n", dir, lc.down);
	}
	free(heads);
	free(prev);
	revset_unref(after);
	layout_create_clear(&lc);
	return (MIGCTL_EXIT_OK);
}

/* Creates dir and the directories above it that are missing, as mkdir -p
 * (`migctl new -d db/migrations` in a checkout without db/, as import
 * --out does); 0, or -1 with errno. */
static int
author_mkdirs(const char *dir)
{
	char	*p = xstrdup(dir), *s = p;
	size_t	 n;
	int	 rv = 0, saved = 0;

	do {
		s += strspn(s, "/");
		if ((n = strcspn(s, "/")) == 0)
			break;
		s += n;
		if (*s == '/') {
			*s = '\0';
			rv = mkdir(p, 0755);
			*s = '/';
		} else
			rv = mkdir(p, 0755);
		if (rv == -1 && errno == EEXIST)
			rv = 0;
	} while (rv == 0 && *s != '\0');
	saved = errno;
	free(p);
	errno = saved;
	return (rv);
}

/* migctl new: the next revision on top of the single head (or --head). */
int
author_new(const struct author_opts *ao)
{
	struct revset	*rs;
	size_t		*heads, n, i, idx;
	char		 id[13], *dir, *cause = NULL, *list, *t;
	const char	*from;
	json_t		*ids;
	enum layout_format fmt;
	int		 rv;

	author_check_message(ao->message);
	dir = author_directory(ao, &from);
	author_say_directory(ao, dir, from);
	if (author_mkdirs(dir) == -1)
		out_fail(MIGCTL_EXIT_FAILED, "io_error", json_pack("{s:s}",
		    "hint", "choose the directory with -d DIR or "
		    "$MIGD_MIGRATIONS"), "cannot create %s: %s", dir,
		    strerror(errno));
	rs = author_load(dir, NULL);
	fmt = (enum layout_format)rs->set.format;
	if (revset_count(rs) == 0 && fmt <= LAYOUT_MIGD)
		fmt = author_config_format(ao);
	if (fmt > LAYOUT_MIGD && ao->head != NULL)
		author_refuse(rs, dir, MIGCTL_EXIT_USAGE, "usage", "--head: %s "
		    "migrations form one line ordered by version; a new one "
		    "always goes on top", layout_name(fmt));
	if (fmt > LAYOUT_MIGD) {
		rv = author_new_tool(ao, rs, dir, from, fmt);
		free(dir);
		revset_unref(rs);
		return (rv);
	}
	if (ao->head != NULL) {
		if (graph_lookup(rs->graph, ao->head, &idx, &cause) != 0)
			out_fail(MIGCTL_EXIT_FAILED, "plan_error", NULL,
			    "--head: %s", cause);
		list = xstrdup(graph_id(rs->graph, idx));
	} else {
		n = graph_heads(rs->graph, &heads);
		if (n > 1) {
			ids = json_array();
			list = xstrdup("");
			for (i = 0; i < n; i++) {
				json_array_append_new(ids, json_string(graph_id(
				    rs->graph, heads[i])));
				t = xprintf("%s %s", list, graph_id(rs->graph,
				    heads[i]));
				free(list);
				list = t;
			}
			out_fail(MIGCTL_EXIT_FAILED, "plan_error", json_pack(
			    "{s:o, s:s}", "heads", ids, "hint", "name the "
			    "parent with --head REV, or join them first with "
			    "'migctl merge'"), "%s has %zu heads:%s", dir, n,
			    list);
		}
		list = xstrdup(n == 1 ? graph_id(rs->graph, heads[0]) :
		    "none");
		free(heads);
	}
	do {
		if (author_id(id) != 0)
			out_fail(MIGCTL_EXIT_FAILED, "io_error", NULL, "cannot "
			    "read /dev/urandom");
	} while (graph_find(rs->graph, id) >= 0);
	author_write(dir, from, id, ao->message, list, 0);
	free(list);
	free(dir);
	revset_unref(rs);
	return (MIGCTL_EXIT_OK);
}

/* migctl merge: one revision whose parents are every head. */
int
author_merge(const struct author_opts *ao)
{
	struct revset	*rs;
	size_t		*heads, n, i;
	char		 id[13], *dir, *list, *t;
	const char	*from;

	author_check_message(ao->message);
	dir = author_directory(ao, &from);
	author_say_directory(ao, dir, from);
	rs = author_load(dir, NULL);
	if (rs->set.format > LAYOUT_MIGD)
		author_refuse(rs, dir, MIGCTL_EXIT_FAILED, "invalid_migrations",
		    "%s holds %s migrations, which form one line ordered by "
		    "version: there are no branches to merge", dir,
		    layout_name((enum layout_format)rs->set.format));
	n = graph_heads(rs->graph, &heads);
	if (n < 2)
		out_fail(MIGCTL_EXIT_FAILED, "plan_error", NULL, "%s has %zu "
		    "head%s: nothing to merge", dir, n, n == 1 ? "" : "s");
	list = xstrdup("");
	for (i = 0; i < n; i++) {
		t = xprintf("%s%s%s", list, i ? ", " : "", graph_id(rs->graph,
		    heads[i]));
		free(list);
		list = t;
	}
	do {
		if (author_id(id) != 0)
			out_fail(MIGCTL_EXIT_FAILED, "io_error", NULL, "cannot "
			    "read /dev/urandom");
	} while (graph_find(rs->graph, id) >= 0);
	author_write(dir, from, id, ao->message, list, 1);
	free(heads);
	free(list);
	free(dir);
	revset_unref(rs);
	return (MIGCTL_EXIT_OK);
}

struct migctl_opts opts;

/* Where a program that lives beside migctl-author is: $ENV, beside this
 * program (a build tree), or installed. */
static char *
author_sibling(const char *env, const char *name)
{
	const char	*e = getenv(env);
	char		 self[PATH_MAX], *slash, *path;
	ssize_t		 n;

	if (e != NULL && *e != '\0')
		return (xstrdup(e));
	if ((n = readlink("/proc/self/exe", self, sizeof self - 1)) > 0) {
		self[n] = '\0';
		if ((slash = strrchr(self, '/')) != NULL) {
			*slash = '\0';
			path = xprintf("%s/%s", self, name);
			if (access(path, R_OK) == 0)
				return (path);
			free(path);
		}
	}
	return (xprintf("%s/%s", LIBEXECDIR, name));
}

/* The version table of the configuration the directory came from, so that
 * import can say when the project's env.py names another one; NULL when
 * no configuration is read (the helper then compares with migd's default). */
static char *
author_config_version(const struct author_opts *ao, const char *path)
{
	const struct config_db	*db;
	struct config		*cf;
	char			*vt;

	if ((cf = author_config(ao, path, 1, &db)) == NULL)
		return (NULL);
	vt = xprintf("%s.%s", db->version_schema, db->version_table);
	config_free(cf);
	return (vt);
}

/*
 * import alembic: the directory as for new (--out comes as -d), then the
 * Python helper, run by Debian's python3 (or $MIGCTL_PYTHON), which
 * renders the revisions through Alembic itself.
 */
static int
author_import(const struct author_opts *ao, const char *ini, int partial)
{
	const char	*from, *python = getenv("MIGCTL_PYTHON"), *cpath = NULL;
	char		*dir, *helper, *vt = NULL, *argv[16];
	int		 n = 0;

	dir = author_directory(ao, &from);
	if (strcmp(from, AUTHOR_FROM_CONFIG) == 0)
		cpath = ao->config;
	else if (strcmp(from, AUTHOR_FROM_INSTALLED) == 0)
		cpath = SYSCONFDIR "/migd/migd.conf";
	if (cpath != NULL)
		vt = author_config_version(ao, cpath);
	if (!opts.json) {
		if (strcmp(from, AUTHOR_FROM_OPTION) == 0)
			fprintf(stderr, "migctl: directory %s (--out)\n", dir);
		else
			author_say_directory(ao, dir, from);
	}
	helper = author_sibling("MIGCTL_IMPORT_ALEMBIC",
	    "migctl-import-alembic");
	if (python == NULL || *python == '\0')
		python = "/usr/bin/python3";
	argv[n++] = (char *)python;
	argv[n++] = helper;
	argv[n++] = (char *)ini;
	argv[n++] = "--out";
	argv[n++] = dir;
	if (partial)
		argv[n++] = "--allow-partial";
	if (opts.json)
		argv[n++] = "--json";
	if (vt != NULL) {
		argv[n++] = "--version-table";
		argv[n++] = vt;
		argv[n++] = "--config";
		argv[n++] = (char *)cpath;
	}
	argv[n] = NULL;
	fflush(stderr);
	execv(python, argv);
	out_fail(MIGCTL_EXIT_FAILED, "import_failed", NULL, "cannot run %s: "
	    "%s (import needs Python 3 with Alembic: apt-get install "
	    "python3-alembic, or set MIGCTL_PYTHON)", python, strerror(errno));
}

static void __attribute__((noreturn))
author_usage(void)
{
	fprintf(stderr, "usage: migctl-author new|merge [--json] -m MESSAGE "
	    "[-d DIR] [-c CONFIG] [--head REV]\n"
	    "       (each also takes --db NAME: that database of -c CONFIG)\n"
	    "       migctl-author sql upgrade|downgrade [-r FROM:TO] "
	    "[--[no-]atomic] [-d DIR] [-c CONFIG]\n"
	    "       migctl-author revisions [--json] [-d DIR] [-c CONFIG]\n"
	    "       migctl-author import [--json] [-d DIR] [-c CONFIG] "
	    "[--allow-partial] -r ALEMBIC_INI\n"
	    "       migctl-author lint [--json] [-d DIR] [-c CONFIG] "
	    "[--] [FILE...]\n"
	    "(run through migctl new, merge, upgrade --sql, downgrade --sql "
	    "revisions and lint)\n");
	exit(MIGCTL_EXIT_USAGE);
}

int
main(int argc, char **argv)
{
	struct author_opts	 ao;
	int			 i, first = 2, up = 0, partial = 0;

	memset(&ao, 0, sizeof ao);
	ao.atomic = -1;
	if (argc < 2)
		author_usage();
	if (strcmp(argv[1], "sql") == 0) {
		if (argc < 3 || (strcmp(argv[2], "upgrade") != 0 &&
		    strcmp(argv[2], "downgrade") != 0))
			author_usage();
		up = strcmp(argv[2], "upgrade") == 0;
		first = 3;
	}
	for (i = first; i < argc; i++) {
		if (strcmp(argv[1], "lint") == 0 && (strcmp(argv[i], "--") ==
		    0 || argv[i][0] != '-')) {
			if (strcmp(argv[i], "--") == 0)
				i++;
			break;
		}
		if (strcmp(argv[i], "--json") == 0)
			opts.json = 1;
		else if (i + 1 < argc && strcmp(argv[i], "-m") == 0)
			ao.message = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "-d") == 0)
			ao.directory = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "-c") == 0)
			ao.config = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "--db") == 0)
			ao.db = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "--head") == 0)
			ao.head = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "-r") == 0)
			ao.range = argv[++i];
		else if (strcmp(argv[1], "import") == 0 &&
		    strcmp(argv[i], "--allow-partial") == 0)
			partial = 1;
		else if (first == 3 && (strcmp(argv[i], "--atomic") == 0 ||
		    strcmp(argv[i], "--no-atomic") == 0))
			ao.atomic = argv[i][2] == 'a';
		else
			author_usage();
	}
	/* What each reads of a database of -c CONFIG, for config_pick_db. */
	ao.reads = strcmp(argv[1], "sql") == 0 ? CONFIG_READS_ALL :
	    strcmp(argv[1], "lint") == 0 && i < argc ? CONFIG_READS_SCHEMAS :
	    strcmp(argv[1], "lint") == 0 || strcmp(argv[1], "revisions") ==
	    0 ? CONFIG_READS_DIR | CONFIG_READS_FORMAT | CONFIG_READS_SCHEMAS :
	    CONFIG_READS_DIR | CONFIG_READS_FORMAT;
	if (strcmp(argv[1], "lint") == 0 && ao.message == NULL &&
	    ao.head == NULL && ao.range == NULL)
		return (lint_main(&ao, argv + i, (size_t)(argc - i)));
	if (i < argc)
		author_usage();
	if (strcmp(argv[1], "sql") == 0 && ao.message == NULL &&
	    ao.head == NULL && !opts.json)
		return (offline_sql(&ao, up));
	if (strcmp(argv[1], "revisions") == 0 && ao.message == NULL &&
	    ao.head == NULL && ao.range == NULL)
		return (offline_revisions(&ao));
	if (strcmp(argv[1], "import") == 0 && ao.range != NULL &&
	    ao.message == NULL && ao.head == NULL)
		return (author_import(&ao, ao.range, partial));
	if (ao.range != NULL)
		author_usage();
	if (strcmp(argv[1], "new") == 0)
		return (author_new(&ao));
	if (strcmp(argv[1], "merge") == 0 && ao.head == NULL)
		return (author_merge(&ao));
	author_usage();
}
