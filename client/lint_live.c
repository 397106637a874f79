/*
 * migctl lint over the socket: migd lints the pending plan with live
 * context, or the FILEs migctl reads here and sends (lint -s SOCKET
 * FILE...); offline lint runs in migctl-author (lint.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "config.h"
#include "migctl.h"
#include "migd/protocol.h"
#include "util.h"

/* lint exits 4 when a finding of error severity is not ignored. */
static int
exit_lint(json_t *res)
{
	return (json_integer_value(json_object_get(res, "errors")) > 0 ?
	    MIGCTL_EXIT_CHECK : MIGCTL_EXIT_OK);
}

/* lint over the socket: migd lints the pending plan with live context. */
static const struct migctl_cmd migctl_lint_live = {
	.name = "lint", .method = "lint", .print = out_lint_result,
	.exit_code = exit_lint
};

/* One FILE's bytes for lint -s, at most max (one more tells it is
 * longer); NULL with *err set (to free) when it cannot be read. */
static char *
migctl_lint_slurp(const char *path, size_t max, size_t *len, char **err)
{
	FILE	*f;
	char	*buf;
	size_t	 cap = max + 1;

	*err = NULL;
	if ((f = fopen(path, "r")) == NULL) {
		*err = xprintf("%s: %s", path, strerror(errno));
		return (NULL);
	}
	buf = xmalloc(cap);
	*len = fread(buf, 1, cap, f);
	if (ferror(f))
		*err = xprintf("%s: %s", path, strerror(errno));
	else if (*len <= max && (memchr(buf, '\0', *len) != NULL ||
	    utf8_valid_prefix(buf, *len) < *len))
		*err = xprintf("%s: not UTF-8 text, which is all a request to "
		    "migd can carry; lint it offline (migctl lint [-c CONFIG] "
		    "FILE..., without -s)", path);
	fclose(f);
	if (*err != NULL) {
		free(buf);
		return (NULL);
	}
	return (buf);
}

/*
 * lint -s SOCKET FILE...: each FILE read here, as the caller, and its text
 * sent; migd reads it in its layout (--format's, else its own) and lints
 * them as one run with live context.  Problems stop it before connecting.
 */
static json_t *
params_lint_files(struct migctl *m, char **args, int n)
{
	json_t	*files, *errors, *p;
	char	*buf, *err, *path, shown[256];
	size_t	 len, total = 0;
	int	 i;

	/* Each failure frees what it holds first: out_fail exits, and a
	 * leak checker must see nothing left. */
	if (n > MIGD_LINT_MAX_FILES)
		out_fail(MIGCTL_EXIT_FAILED, "invalid_params", NULL, "%d files: "
		    "lint -s takes at most %d in one request; lint them offline "
		    "(migctl lint [-c CONFIG] FILE..., without -s) or a part at "
		    "a time", n, MIGD_LINT_MAX_FILES);
	files = json_array();
	errors = json_array();
	for (i = 0; i < n; i++) {
		path = utf8_sanitize(args[i]);
		if ((buf = migctl_lint_slurp(args[i], MIGD_LINT_MAX_TEXT -
		    total, &len, &err)) == NULL) {
			json_array_append_new(errors, json_string(err));
			free(err);
			free(path);
			continue;
		}
		total += len;
		if (total > MIGD_LINT_MAX_TEXT) {
			snprintf(shown, sizeof shown, "%s", path);
			free(path);
			free(buf);
			json_decref(files);
			json_decref(errors);
			out_fail(MIGCTL_EXIT_FAILED, "invalid_params", NULL,
			    "%s: over %d bytes (256 KiB) of text with the files "
			    "before it: lint -s takes no more in one request; "
			    "lint them offline (migctl lint [-c CONFIG] FILE..., "
			    "without -s) or a part at a time", shown,
			    MIGD_LINT_MAX_TEXT);
		}
		json_array_append_new(files, json_pack("{s:s, s:s%}", "path",
		    path, "text", buf, len));
		free(buf);
		free(path);
	}
	if (json_array_size(errors) > 0) {
		json_decref(files);
		out_fail(MIGCTL_EXIT_FAILED, "invalid_migrations", json_pack(
		    "{s:o}", "errors", errors), "the files have problems; fix "
		    "them first");
	}
	json_decref(errors);
	p = json_pack("{s:o}", "files", files);
	if (m->lint_format != NULL)
		json_object_set_new(p, "format", json_string(m->lint_format));
	return (p);
}

/* lint -s SOCKET FILE...: migd lints the files sent with live context. */
static const struct migctl_cmd migctl_lint_sent = {
	.name = "lint", .method = "lint", .params = params_lint_files,
	.print = out_lint_result, .exit_code = exit_lint,
	.too_large = "the request carries the files' text: lint them "
	    "offline (migctl lint [-c CONFIG] FILE..., without -s), or a part "
	    "at a time, or raise max_request_bytes in migd's [control]"
};

/*
 * lint: with -s (or $MIGD_SOCKET) and no -d, -c or FILE, migd lints the
 * pending plan; with -s and FILE..., the files sent; else migctl-author
 * reads the files with the daemon's parser and rules.
 */
int
migctl_lint(struct migctl *m)
{
	char	**argv;
	int	  n, i, files;

	files = m->nargs > 0 || m->author.directory != NULL ||
	    m->author.config != NULL;
	if (m->socket_given == 2 && (m->author.directory != NULL ||
	    m->author.config != NULL))
		die(MIGCTL_EXIT_USAGE, "lint -s asks migd, which reads its own "
		    "configuration and directory; -d and -c lint files "
		    "offline: give one or the other");
	if (m->lint_format != NULL && (m->socket_given != 2 || m->nargs == 0))
		die(MIGCTL_EXIT_USAGE, "--format goes with -s SOCKET FILE...: "
		    "migd reads the files sent as TOOL's; offline, -c CONFIG's "
		    "format decides, else what each file looks like");
	if (m->socket_given == 2 && m->nargs > 0)
		return (migctl_run(m, &migctl_lint_sent, m->args, m->nargs));
	if (m->socket_given && !files)
		return (migctl_run(m, &migctl_lint_live, NULL, 0));
	argv = xcalloc((size_t)m->nargs + 12, sizeof *argv);
	n = migctl_author_args(m, argv, "lint", NULL, m->author.directory);
	argv[n++] = "--";
	for (i = 0; i < m->nargs; i++)
		argv[n++] = m->args[i];
	migctl_author_exec(argv, n);
}
