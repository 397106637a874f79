/*
 * `migctl lint [-c CONFIG] [-d DIR] [--json] [FILE...]`, in migctl-author:
 * the deploy-safety rules of daemon/lint.c over migration files, offline.
 *
 * FILE... are linted as one run, in the order given: a table an earlier
 * FILE creates is new in a later one, as it would be when they are applied
 * together.  Without FILE, every revision of the directory is linted alone
 * (in graph order), since a deploy may apply any one of them by itself.
 */
#include <sys/stat.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "layout.h"
#include "lint.h"
#include "lintfile.h"
#include "migctl.h"
#include "migd.h"
#include "revset.h"

/* The findings so far and the run's context. */
struct lintcmd {
	struct lint_ctx		 ctx;
	struct lint_report	 rep;
	json_t			*notes;
	size_t			 files;
};

/* Lints one file's up section into the report, or notes why not. */
static void
lintcmd_section(struct lintcmd *lc, const struct migfile *mf,
    const struct sqlscan *sc)
{
	char	*note;

	lc->files++;
	if ((note = lintfile_lint(&lc->ctx, mf, sc, &lc->rep)) != NULL)
		json_array_append_new(lc->notes, json_string(note));
	free(note);
}

/* Reads one FILE and parses it as migd would, into lf. */
static void
lintcmd_read(struct lintfile *lf, enum layout_format fmt, const char *path)
{
	struct stat	 st;
	FILE		*f;
	char		*buf;
	size_t		 len, cap;

	memset(lf, 0, sizeof *lf);
	if ((f = fopen(path, "r")) == NULL) {
		errlist_add(&lf->errs, "%s: %s", path, strerror(errno));
		return;
	}
	/* Its size, and one byte more to see it grew past the limit. */
	cap = fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) &&
	    (unsigned long long)st.st_size < MIGFILE_MAX_SIZE ?
	    (size_t)st.st_size + 1 : MIGFILE_MAX_SIZE + 1;
	buf = xmalloc(cap);
	len = fread(buf, 1, cap, f);
	if (ferror(f))
		errlist_add(&lf->errs, "%s: %s", path, strerror(errno));
	else if (len == cap && cap <= MIGFILE_MAX_SIZE)
		errlist_add(&lf->errs, "%s: changed while it was read", path);
	else
		lintfile_parse(lf, fmt, path, buf, len);
	fclose(f);
	free(buf);
}

/* The FILEs read and parsed, several at once; linted after, in order. */
struct lintcmd_read {
	char *const	 *files;
	enum layout_format fmt;		/* -c CONFIG's format, or AUTO */
	struct lintfile	 *lf;		/* per file */
};

/* One FILE, on whichever thread: only its own slot. */
static void
lintcmd_read_one(void *arg, size_t i)
{
	struct lintcmd_read	*r = arg;

	lintcmd_read(&r->lf[i], r->fmt, r->files[i]);
}

/* The FILEs, as one run in the order given. */
static void
lintcmd_files(struct lintcmd *lc, char *const *files, size_t n,
    const struct config_db *db)
{
	struct lintcmd_read	 r;
	struct errlist		 errs = { NULL, 0 };
	json_t			*list;
	size_t			 i, k;

	r.files = files;
	r.fmt = db != NULL ? (enum layout_format)db->format : LAYOUT_AUTO;
	r.lf = xcalloc(n + 1, sizeof *r.lf);
	parallel_each(n, lintcmd_read_one, &r);
	for (i = 0; i < n; i++) {
		for (k = 0; k < r.lf[i].errs.n; k++)
			errlist_take(&errs, r.lf[i].errs.v[k]);
		r.lf[i].errs.n = 0;
		if (r.lf[i].ok)
			lintcmd_section(lc, r.lf[i].mf, &r.lf[i].sc);
		lintfile_clear(&r.lf[i]);
	}
	free(r.lf);
	if (errs.n > 0) {
		list = json_array();
		for (i = 0; i < errs.n; i++)
			json_array_append_new(list, json_string(errs.v[i]));
		errlist_clear(&errs);
		out_fail(MIGCTL_EXIT_FAILED, "invalid_migrations", json_pack(
		    "{s:o}", "errors", list), "the files have problems; fix "
		    "them first");
	}
}

/* Every revision of the directory, each alone, in graph order; read as
 * migd reads it for db (-c CONFIG's), when there is one. */
static void
lintcmd_directory(struct lintcmd *lc, const struct author_opts *ao,
    const struct config_db *db)
{
	struct revset_ctx	 ctx;
	struct revset		*rs;
	const size_t		*order;
	const char		*from;
	char			*dir;
	size_t			 i, n;

	memset(&ctx, 0, sizeof ctx);
	if (db != NULL) {
		ctx.schemas = db->schemas;
		ctx.n_schemas = db->n_schemas;
		ctx.version_schema = db->version_schema;
		ctx.history_schema = db->history_schema;
		ctx.format = db->format;
	}
	dir = author_directory(ao, &from);
	rs = author_load(dir, db != NULL ? &ctx : NULL);
	n = graph_order(rs->graph, &order);
	for (i = 0; i < n; i++) {
		lint_ctx_clear(&lc->ctx);
		lintcmd_section(lc, revset_file(rs, order[i]),
		    revset_section(rs, order[i], 1));
	}
	revset_unref(rs);
	free(dir);
}

/* Prints the findings for people, from the cleaned JSON. */
static void
lintcmd_print(json_t *res)
{
	json_t		*f;
	size_t		 i;

	json_array_foreach(json_object_get(res, "findings"), i, f) {
		printf("%s:%d:%d: %s: %s: %s", out_str(f, "file"),
		    (int)json_integer_value(json_object_get(f, "line")),
		    (int)json_integer_value(json_object_get(f, "column")),
		    out_str(f, "severity"), out_str(f, "rule"),
		    out_str(f, "message"));
		if (json_is_string(json_object_get(f, "ignored")))
			printf(" (ignored, %s)", out_str(f, "ignored"));
		printf("\n  lock: %s\n  instead: %s\n", out_str(f, "lock"),
		    out_str(f, "safe"));
	}
	json_array_foreach(json_object_get(res, "notes"), i, f)
		out_warnx("note: %s", json_string_value(f));
	printf("%d file%s: %d error%s, %d warning%s, %d info, %d ignored\n",
	    (int)json_integer_value(json_object_get(res, "files")),
	    json_integer_value(json_object_get(res, "files")) == 1 ? "" : "s",
	    (int)json_integer_value(json_object_get(res, "errors")),
	    json_integer_value(json_object_get(res, "errors")) == 1 ? "" : "s",
	    (int)json_integer_value(json_object_get(res, "warnings")),
	    json_integer_value(json_object_get(res, "warnings")) == 1 ? "" :
	    "s", (int)json_integer_value(json_object_get(res, "infos")),
	    (int)json_integer_value(json_object_get(res, "ignored")));
}

/* migctl lint: exits 4 when a finding of error severity is not ignored. */
int
lint_main(const struct author_opts *ao, char *const *files, size_t n)
{
	struct lintcmd		 lc;
	struct config		*cf = NULL;
	const struct config_db	*db = NULL;
	json_t			*res, *list;
	size_t		 i, errors, warnings, all;

	if (n > 0 && ao->directory != NULL)
		out_fail(MIGCTL_EXIT_USAGE, "usage", NULL, "lint "
		    "takes -d DIR or FILE..., not both: the files are linted "
		    "as one run in the order given, the directory's revisions "
		    "each alone");
	memset(&lc, 0, sizeof lc);
	lc.notes = json_array();
	if (n > 0 && ao->db != NULL && ao->config == NULL)
		out_fail(MIGCTL_EXIT_USAGE, "usage", NULL, "--db %s picks a "
		    "database of a configuration file: give -c CONFIG to lint "
		    "the files with its settings", ao->db);
	if (ao->config != NULL) {
		/* Its schemas are managed: of --db's database, or the one. */
		cf = author_config(ao, ao->config, 0, &db);
		lc.ctx.managed = db->schemas;
		lc.ctx.n_managed = db->n_schemas;
	}
	if (n > 0)
		lintcmd_files(&lc, files, n, db);
	else
		lintcmd_directory(&lc, ao, db);

	list = json_array();
	for (i = 0; i < lc.rep.n; i++)
		json_array_append_new(list, lint_finding_json(&lc.rep.v[i]));
	errors = lint_report_count(&lc.rep, LINT_ERROR);
	warnings = lint_report_count(&lc.rep, LINT_WARNING) - errors;
	all = lint_report_count(&lc.rep, LINT_INFO);
	res = json_pack("{s:o, s:i, s:i, s:i, s:i, s:i, s:o}", "findings", list,
	    "files", (int)lc.files, "errors", (int)errors, "warnings",
	    (int)warnings, "infos", (int)(all - errors - warnings), "ignored",
	    (int)(lc.rep.n - all), "notes", lc.notes);
	if (opts.json)
		out_json(res, JSON_INDENT(2));
	else {
		out_clean(res);
		lintcmd_print(res);
	}
	json_decref(res);
	lint_report_clear(&lc.rep);
	lint_ctx_clear(&lc.ctx);
	config_free(cf);
	if (fflush(stdout) != 0)
		return (MIGCTL_EXIT_FAILED);
	return (errors > 0 ? MIGCTL_EXIT_CHECK : MIGCTL_EXIT_OK);
}
