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
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* The migrations directory: -d, $MIGD_MIGRATIONS, the config's, ./migrations. */
char *
author_directory(const struct author_opts *ao)
{
	struct errlist	 errs = { NULL, 0 };
	struct config	*cf = NULL;
	const char	*env, *path;
	char		*dir;

	if (ao->directory != NULL)
		return (xstrdup(ao->directory));
	if ((env = getenv("MIGD_MIGRATIONS")) != NULL && *env != '\0')
		return (xstrdup(env));
	path = ao->config ? ao->config : SYSCONFDIR "/migd/migd.conf";
	if (config_load(path, &cf, &errs) == 0) {
		dir = xstrdup(cf->directory);
		config_free(cf);
		return (dir);
	}
	if (ao->config != NULL) {
		fprintf(stderr, "migctl: %s\n", errs.n ? errs.v[0] : path);
		errlist_clear(&errs);
		exit(MIGCTL_EXIT_FAILED);
	}
	errlist_clear(&errs);
	return (xstrdup("migrations"));
}

/* Loads the directory, or exits with every problem in it; ctx as for migd
 * (the configured schemas and migd's tables' schema), or NULL. */
struct revset *
author_load(const char *dir, const struct revset_ctx *ctx)
{
	struct errlist	 errs = { NULL, 0 };
	struct revset	*rs;
	size_t		 i;

	if (revset_load(dir, ctx, &rs, &errs) != 0) {
		fprintf(stderr, "migctl: the migrations in %s have problems; "
		    "fix them first:\n", dir);
		for (i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.v[i]);
		errlist_clear(&errs);
		exit(MIGCTL_EXIT_FAILED);
	}
	/* No server to ask: say what was assumed of SQL the parser refused. */
	revset_unparsed(rs, &errs);
	for (i = 0; i < errs.n; i++)
		fprintf(stderr, "migctl: note: %s (assumed to be SQL newer "
		    "than PostgreSQL %d's parser)\n", errs.v[i],
		    sqlscan_parser_version() / 10000);
	errlist_clear(&errs);
	return (rs);
}

/* Writes the new file without ever replacing one. */
static void
author_write(const char *dir, const char *id, const char *message,
    const char *parents, int merge)
{
	char	*slug, *path, *text;
	int	 fd;
	size_t	 len;

	slug = author_slug(message);
	path = xprintf("%s/%s_%s.sql", dir, id, slug);
	text = xprintf("-- revision: %s\n-- down_revision: %s\n-- message: %s\n"
	    "\n-- migrate:up\n%s\n-- migrate:down\n%s", id, parents, message,
	    merge ? "" : "\n", merge ? "" : "\n");
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    0644)) == -1) {
		fprintf(stderr, "migctl: cannot create %s: %s\n", path,
		    strerror(errno));
		exit(MIGCTL_EXIT_FAILED);
	}
	len = strlen(text);
	if (write(fd, text, len) != (ssize_t)len || close(fd) != 0) {
		fprintf(stderr, "migctl: cannot write %s: %s\n", path,
		    strerror(errno));
		unlink(path);
		exit(MIGCTL_EXIT_FAILED);
	}
	if (opts.json) {
		json_t	*o = json_pack("{s:s, s:s, s:s, s:s}", "path", path,
			    "revision", id, "down_revision", parents, "message",
			    message);
		char	*dump = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);

		puts(dump);
		free(dump);
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
	if (message == NULL || *message == '\0') {
		fprintf(stderr, "migctl: a message is required (-m MESSAGE)\n");
		exit(MIGCTL_EXIT_USAGE);
	}
	if (strpbrk(message, "\r\n") != NULL) {
		fprintf(stderr, "migctl: the message must be one line\n");
		exit(MIGCTL_EXIT_USAGE);
	}
}

/* migctl new: the next revision on top of the single head (or --head). */
int
author_new(const struct author_opts *ao)
{
	struct revset	*rs;
	size_t		*heads, n, i, idx;
	char		 id[13], *dir, *cause = NULL, *list;

	author_check_message(ao->message);
	dir = author_directory(ao);
	if (mkdir(dir, 0755) == -1 && errno != EEXIST) {
		fprintf(stderr, "migctl: cannot create %s: %s\n", dir,
		    strerror(errno));
		exit(MIGCTL_EXIT_FAILED);
	}
	rs = author_load(dir, NULL);
	if (ao->head != NULL) {
		if (graph_lookup(rs->graph, ao->head, &idx, &cause) != 0) {
			fprintf(stderr, "migctl: --head: %s\n", cause);
			free(cause);
			goto fail;
		}
		list = xstrdup(graph_id(rs->graph, idx));
	} else {
		n = graph_heads(rs->graph, &heads);
		if (n > 1) {
			fprintf(stderr, "migctl: %s has %zu heads:", dir, n);
			for (i = 0; i < n; i++)
				fprintf(stderr, " %s", graph_id(rs->graph,
				    heads[i]));
			fprintf(stderr, "\nname the parent with --head REV, or "
			    "join them first with 'migctl merge'\n");
			free(heads);
			goto fail;
		}
		list = xstrdup(n == 1 ? graph_id(rs->graph, heads[0]) :
		    "none");
		free(heads);
	}
	do {
		if (author_id(id) != 0) {
			fprintf(stderr, "migctl: cannot read /dev/urandom\n");
			exit(MIGCTL_EXIT_FAILED);
		}
	} while (graph_find(rs->graph, id) >= 0);
	author_write(dir, id, ao->message, list, 0);
	free(list);
	free(dir);
	revset_unref(rs);
	return (MIGCTL_EXIT_OK);
fail:
	free(dir);
	revset_unref(rs);
	return (MIGCTL_EXIT_FAILED);
}

/* migctl merge: one revision whose parents are every head. */
int
author_merge(const struct author_opts *ao)
{
	struct revset	*rs;
	size_t		*heads, n, i;
	char		 id[13], *dir, *list, *t;

	author_check_message(ao->message);
	dir = author_directory(ao);
	rs = author_load(dir, NULL);
	n = graph_heads(rs->graph, &heads);
	if (n < 2) {
		fprintf(stderr, "migctl: %s has %zu head%s: nothing to merge\n",
		    dir, n, n == 1 ? "" : "s");
		free(heads);
		free(dir);
		revset_unref(rs);
		return (MIGCTL_EXIT_FAILED);
	}
	list = xstrdup("");
	for (i = 0; i < n; i++) {
		t = xprintf("%s%s%s", list, i ? ", " : "", graph_id(rs->graph,
		    heads[i]));
		free(list);
		list = t;
	}
	do {
		if (author_id(id) != 0) {
			fprintf(stderr, "migctl: cannot read /dev/urandom\n");
			exit(MIGCTL_EXIT_FAILED);
		}
	} while (graph_find(rs->graph, id) >= 0);
	author_write(dir, id, ao->message, list, 1);
	free(heads);
	free(list);
	free(dir);
	revset_unref(rs);
	return (MIGCTL_EXIT_OK);
}

struct migctl_opts opts;

static void __attribute__((noreturn))
author_usage(void)
{
	fprintf(stderr, "usage: migctl-author new|merge [--json] -m MESSAGE "
	    "[-d DIR] [-c CONFIG] [--head REV]\n"
	    "       migctl-author sql upgrade|downgrade [-r FROM:TO] "
	    "[--[no-]atomic] [-d DIR] [-c CONFIG]\n"
	    "       migctl-author revisions [--json] [-d DIR] [-c CONFIG]\n"
	    "(run through migctl new, merge, upgrade --sql, downgrade --sql "
	    "and revisions)\n");
	exit(MIGCTL_EXIT_USAGE);
}

int
main(int argc, char **argv)
{
	struct author_opts	 ao;
	int			 i, first = 2, up = 0;

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
		if (strcmp(argv[i], "--json") == 0)
			opts.json = 1;
		else if (i + 1 < argc && strcmp(argv[i], "-m") == 0)
			ao.message = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "-d") == 0)
			ao.directory = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "-c") == 0)
			ao.config = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "--head") == 0)
			ao.head = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "-r") == 0)
			ao.range = argv[++i];
		else if (first == 3 && (strcmp(argv[i], "--atomic") == 0 ||
		    strcmp(argv[i], "--no-atomic") == 0))
			ao.atomic = argv[i][2] == 'a';
		else
			author_usage();
	}
	if (strcmp(argv[1], "sql") == 0 && ao.message == NULL &&
	    ao.head == NULL && !opts.json)
		return (offline_sql(&ao, up));
	if (strcmp(argv[1], "revisions") == 0 && ao.message == NULL &&
	    ao.head == NULL && ao.range == NULL)
		return (offline_revisions(&ao));
	if (ao.range != NULL)
		author_usage();
	if (strcmp(argv[1], "new") == 0)
		return (author_new(&ao));
	if (strcmp(argv[1], "merge") == 0 && ao.head == NULL)
		return (author_merge(&ao));
	author_usage();
}
