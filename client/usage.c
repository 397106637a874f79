/*
 * migctl's words to people: its help, the synopsis of a usage error, "did
 * you mean" for a mistyped command or option, and how it stops on a failure.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "config.h"
#include "migctl.h"
#include "migd/protocol.h"
#include "util.h"

/* Words people type for a command, for "did you mean". */
static const char *const usage_synonyms[][2] = {
	{ "migrate", "upgrade" }, { "up", "upgrade" }, { "apply", "upgrade" },
	{ "down", "downgrade" }, { "rollback", "downgrade" },
	{ "log", "history" }, { "revision", "new" }, { "create", "new" },
	{ "branches", "heads" }, { "graph", "revisions" },
};

/* Alembic's commands with no one word here: what to type instead. */
static const char *const usage_instead[][2] = {
	{ "show", "'history REV' (what ran for it) or 'revisions' (the "
	    "graph, with each revision's parents and message)" },
	{ "init", "'new -m MESSAGE' (it creates the migrations directory)" },
};

#define MIGCTL_SYNOPSIS	"[OPTIONS] COMMAND [ARGS]"
#define HELP_COL	24	/* where an option's help starts */

/* The command a usage error is about; NULL before one is known. */
const struct migctl_cmd *usage_cur;

/* The distance between two words (edits, a swap being one), capped. */
size_t
usage_distance(const char *a, const char *b)
{
	size_t	 d[32][32], la = strlen(a), lb = strlen(b), i, j, x;

	if (la >= 32 || lb >= 32)
		return (SIZE_MAX);
	for (i = 0; i <= la; i++)
		d[i][0] = i;
	for (j = 0; j <= lb; j++)
		d[0][j] = j;
	for (i = 1; i <= la; i++) {
		for (j = 1; j <= lb; j++) {
			x = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
			if (d[i - 1][j] + 1 < x)
				x = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < x)
				x = d[i][j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] &&
			    a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < x)
				x = d[i - 2][j - 2] + 1;
			d[i][j] = x;
		}
	}
	return (d[la][lb]);
}

/* The nearest of the words offered to w so far. */
struct usage_near {
	const char	*w;
	const char	*best;		/* the closest typo of w */
	size_t		 dist;
	const char	*prefixed;	/* a word w begins */
	int		 n_prefixed;
};

/* Offers a word: kept if w is a typo of it (one edit in a short word, two
 * in a longer one, none under four letters) or begins it. */
static void
usage_near_offer(struct usage_near *nr, const char *word)
{
	size_t	 len = strlen(nr->w), d, most;

	most = len <= 3 ? 0 : len <= 6 ? 1 : 2;
	d = usage_distance(nr->w, word);
	if (d <= most && d < nr->dist) {
		nr->best = word;
		nr->dist = d;
	}
	if (len >= 2 && strlen(word) > len && strncmp(word, nr->w, len) == 0) {
		nr->prefixed = word;
		nr->n_prefixed++;
	}
}

/* The closest typo, else the only word w begins, else NULL. */
static const char *
usage_near_best(struct usage_near *nr)
{
	if (nr->best != NULL)
		return (nr->best);
	return (nr->n_prefixed == 1 ? nr->prefixed : NULL);
}

/* "did you mean" for a command: its quoted name, or NULL. */
char *
usage_suggest_cmd(const char *w)
{
	struct usage_near	 nr = { w, NULL, SIZE_MAX, NULL, 0 };
	const char		*best;
	size_t			 i;

	for (i = 0; i < nitems(usage_synonyms); i++) {
		if (strcasecmp(w, usage_synonyms[i][0]) == 0)
			return (xprintf("'%s'", usage_synonyms[i][1]));
	}
	for (i = 0; i < nitems(usage_instead); i++) {
		if (strcasecmp(w, usage_instead[i][0]) == 0)
			return (xstrdup(usage_instead[i][1]));
	}
	for (i = 0; i < migctl_ncmds; i++)
		usage_near_offer(&nr, migctl_cmds[i].name);
	best = usage_near_best(&nr);
	return (best != NULL ? xprintf("'%s'", best) : NULL);
}

/* "did you mean" for an option (without its =value), or NULL. */
char *
usage_suggest_opt(const char *w)
{
	struct usage_near	 nr = { w, NULL, SIZE_MAX, NULL, 0 };
	const struct migctl_opt	*o;
	char			**names, *best;
	size_t			 i, n = 0;

	names = xreallocarray(NULL, 3 * migctl_noptions, sizeof *names);
	for (i = 0; i < migctl_noptions; i++) {
		o = &migctl_options[i];
		names[n++] = xprintf("--%s", o->lname);
		if (o->alias != NULL)
			names[n++] = xprintf("--%s", o->alias);
		if (o->sname != 0)
			names[n++] = xprintf("-%c", o->sname);
	}
	for (i = 0; i < n; i++)
		usage_near_offer(&nr, names[i]);
	best = usage_near_best(&nr) != NULL ? xstrdup(usage_near_best(&nr)) :
	    NULL;
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return (best);
}

/* The command of this name, or NULL. */
const struct migctl_cmd *
usage_lookup(const char *name)
{
	size_t	 i;

	for (i = 0; i < migctl_ncmds; i++) {
		if (strcmp(migctl_cmds[i].name, name) == 0)
			return (&migctl_cmds[i]);
	}
	return (NULL);
}

/* Prints synopsis lines, each after "migctl ". */
static void
usage_synopsis(FILE *f, const char *usage)
{
	const char	*nl;
	int		 first = 1;

	for (; usage != NULL && *usage != '\0'; usage = nl + 1, first = 0) {
		if ((nl = strchr(usage, '\n')) == NULL)
			nl = usage + strlen(usage);
		fprintf(f, "%s migctl %.*s\n", first ? "usage:" : "      ",
		    (int)(nl - usage), usage);
		if (*nl == '\0')
			break;
	}
}

/*
 * A usage error: what was wrong, the command's synopsis, a near miss if
 * there is one, and where the whole help is; exit 2.  Never the whole usage:
 * the reader wants the one line that was wrong.  With --json, the same as
 * the JSON error object (kind "usage") on stdout.
 */
void
usage_error(char *maybe, const char *fmt, ...)
{
	const struct migctl_cmd	*cmd = usage_cur;
	va_list			 ap;
	json_t			*data, *lines;
	char			*msg, *help, *u, *line, *save, *safe;

	va_start(ap, fmt);
	xvasprintf(&msg, fmt, ap);
	va_end(ap);
	help = cmd != NULL ? xprintf("migctl help %s", cmd->name) :
	    xstrdup("migctl help");
	if (opts.json) {
		lines = json_array();
		u = xstrdup(cmd != NULL ? cmd->usage : MIGCTL_SYNOPSIS);
		for (line = strtok_r(u, "\n", &save); line != NULL;
		    line = strtok_r(NULL, "\n", &save))
			json_array_append_new(lines, json_sprintf("migctl %s",
			    line));
		free(u);
		data = json_pack("{s:o, s:s}", "usage", lines, "help", help);
		if (maybe != NULL)
			json_object_set_new(data, "did_you_mean",
			    json_string(maybe));
		out_fail(MIGCTL_EXIT_USAGE, "usage", data, "%s", msg);
	}
	safe = out_escape(msg, strlen(msg), 0);
	fprintf(stderr, "migctl: %s\n", safe);
	free(safe);
	usage_synopsis(stderr, cmd != NULL ? cmd->usage : MIGCTL_SYNOPSIS);
	if (maybe != NULL)
		fprintf(stderr, "did you mean %s?\n", maybe);
	fprintf(stderr, "see '%s'\n", help);
	exit(MIGCTL_EXIT_USAGE);
}

/* A failure: for people on stderr, with --json as the JSON error object;
 * a usage error the short way. */
void
die(int code, const char *fmt, ...)
{
	va_list	 ap;
	char	*msg;

	va_start(ap, fmt);
	xvasprintf(&msg, fmt, ap);
	va_end(ap);
	if (code == MIGCTL_EXIT_USAGE)
		usage_error(NULL, "%s", msg);
	out_fail(code, code == MIGCTL_EXIT_UNREACHABLE ? "unreachable" :
	    "failed", NULL, "%s", msg);
}

/* One option's line of a help: "  -d, --dir DIR        what it does". */
static void
usage_help_opt(const struct migctl_opt *o)
{
	char		 left[64];
	const char	*p;

	snprintf(left, sizeof left, "%s%c%s--%s%s%s", o->sname ? "-" : " ",
	    o->sname ? o->sname : ' ', o->sname ? ", " : "  ", o->lname,
	    o->meta ? " " : "", o->meta ? o->meta : "");
	printf("  %-*s", HELP_COL, left);
	if (strlen(left) >= HELP_COL)
		printf("\n  %*s", HELP_COL, "");
	for (p = o->help; *p != '\0'; p++) {
		putchar(*p);
		if (*p == '\n')
			printf("  %*s", HELP_COL, "");
	}
	putchar('\n');
}

/* migctl help, --help: how migctl is called, its commands, the options
 * every command takes; a command's own are in its help. */
void
usage_overview(void)
{
	size_t	 i;

	printf("usage: migctl %s\n       migctl --local -c CONFIG [-v] %s\n\n"
	    "commands:\n", MIGCTL_SYNOPSIS, MIGCTL_SYNOPSIS);
	for (i = 0; i < migctl_ncmds; i++)
		printf("  %-10s %s\n", migctl_cmds[i].name,
		    migctl_cmds[i].summary);
	printf("\noptions, before or after the command (a value also as "
	    "--name=VALUE):\n");
	for (i = 0; i < migctl_noptions; i++) {
		if (migctl_options[i].flag == 0)
			usage_help_opt(&migctl_options[i]);
	}
	printf("\n'migctl help COMMAND' or 'migctl COMMAND --help': its usage, "
	    "arguments,\noptions, examples and exit codes.\n\n"
	    "targets: " TARGETS "\n"
	    "exit codes: 0 success, 1 failed, 2 usage, 3 daemon unreachable, "
	    "4 check found\n  something, 5 busy or lock timeout, 6 forbidden, "
	    "7 untrusted daemon\n  (see migctl(1))\n");
}

/* migctl help CMD, CMD --help: the command's usage, what it does, its
 * arguments, options, examples and exit codes. */
void
usage_help(const struct migctl_cmd *cmd)
{
	size_t	 i;
	int	 any = 0;

	usage_synopsis(stdout, cmd->usage);
	printf("\n%s", cmd->about);
	if (cmd->arguments != NULL)
		printf("\narguments:\n%s", cmd->arguments);
	for (i = 0; i < migctl_noptions; i++) {
		if ((migctl_options[i].flag & cmd->flags) == 0)
			continue;
		if (!any++)
			printf("\noptions:\n");
		usage_help_opt(&migctl_options[i]);
	}
	if (cmd->method != NULL)
		printf("%s every command's: -s PATH, -j, --stream, --local "
		    "-c CONFIG, -v\n", any ? "  and" : "\noptions:\n  only");
	else if (cmd->local != usage_help_cmd)
		printf("  and -j/--json: the result, or the error, as JSON\n");
	printf("\nexamples:\n%s", cmd->examples);
	printf("\nexit codes:\n%s", cmd->exits);
}

/* migctl help [COMMAND]. */
int
usage_help_cmd(struct migctl *m)
{
	const struct migctl_cmd	*cmd;

	if (m->nargs == 0) {
		usage_overview();
		return (MIGCTL_EXIT_OK);
	}
	if ((cmd = usage_lookup(m->args[0])) == NULL)
		usage_error(usage_suggest_cmd(m->args[0]), "unknown "
		    "command '%s'", m->args[0]);
	usage_help(cmd);
	return (MIGCTL_EXIT_OK);
}
