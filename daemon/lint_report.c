/*
 * A run's lint: each section's events judged in the run's context (tables
 * it created, constraints it validated, schemas migd manages, the opt-outs)
 * into findings; findings as JSON and text, sized by the catalog's
 * estimate, and the sessions in their way.  Pure: the catalog's answers
 * are handed in.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lint.h"
#include "sqlscan.h"
#include "util.h"

/* Whether "RULE[,RULE...] reason" names rule (or "all"); lines of the
 * file header's repeated values are read one by one. */
static int
lint_ignores(const char *list, const char *rule)
{
	const char	*p = list, *e;
	size_t		 n = strlen(rule);

	while (*p != '\0') {
		while (*p == ' ' || *p == ',' || *p == '\t')
			p++;
		e = p;
		while (*e != '\0' && *e != ',' && *e != ' ' && *e != '\t' &&
		    *e != '\n')
			e++;
		if (((size_t)(e - p) == n && strncmp(p, rule, n) == 0) ||
		    ((e - p) == 3 && strncmp(p, "all", 3) == 0))
			return (1);
		/* The names end at the first one not followed by ','; the
		 * reason runs to the end of the line. */
		while (*e == ' ' || *e == '\t')
			e++;
		if (*e != ',') {
			if ((e = strchr(e, '\n')) == NULL)
				break;
		}
		p = e + 1;
	}
	return (0);
}

/* The first name of a statement's "RULE[,RULE...] reason" that is no rule
 * (a typo leaves the finding counting: the finding says why), or NULL. */
static char *
lint_unknown_rule(const char *list)
{
	const char	*p = list, *e;
	char		*name;

	for (;;) {
		while (*p == ' ' || *p == ',' || *p == '\t')
			p++;
		e = p;
		while (*e != '\0' && *e != ',' && *e != ' ' && *e != '\t' &&
		    *e != '\n')
			e++;
		if (e == p)
			return (NULL);
		name = xstrndup(p, (size_t)(e - p));
		if (strcmp(name, "all") != 0 && lint_rule_find(name) < 0)
			return (name);
		free(name);
		while (*e == ' ' || *e == '\t')
			e++;
		if (*e != ',')
			return (NULL);
		p = e + 1;
	}
}

/* FNV-1a: the created tables are a hash set, a run may create thousands. */
static size_t
lint_hash(const char *s)
{
	size_t	 h = 2166136261u;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return (h);
}

/* The slot of table in the set: where it is, or the empty one to take. */
static size_t
lint_slot(const struct lint_ctx *ctx, const char *table)
{
	size_t	 i = lint_hash(table) & (ctx->cap_created - 1);

	while (ctx->created[i] != NULL && strcmp(ctx->created[i], table) != 0)
		i = (i + 1) & (ctx->cap_created - 1);
	return (i);
}

/* Whether a table was created earlier in the run (or a "table\nvalidated"
 * key is in the set). */
static int
lint_is_new(const struct lint_ctx *ctx, const char *table)
{
	if (table == NULL || ctx->cap_created == 0)
		return (0);
	return (ctx->created[lint_slot(ctx, table)] != NULL);
}

/* Remembers a created table (or a key), growing the set at half full. */
static void
lint_add_new(struct lint_ctx *ctx, const char *table)
{
	char	**old = ctx->created;
	size_t	  oldcap = ctx->cap_created, i;

	if (lint_is_new(ctx, table))
		return;
	if (2 * (ctx->n_created + 1) > ctx->cap_created) {
		ctx->cap_created = oldcap == 0 ? 64 : oldcap * 2;
		ctx->created = xcalloc(ctx->cap_created, sizeof *ctx->created);
		for (i = 0; i < oldcap; i++) {
			if (old[i] != NULL)
				ctx->created[lint_slot(ctx, old[i])] = old[i];
		}
		free(old);
	}
	ctx->created[lint_slot(ctx, table)] = xstrdup(table);
	ctx->n_created++;
}

/* Whether a schema is one migd manages. */
static int
lint_managed(const struct lint_ctx *ctx, const char *schema)
{
	size_t	 i;

	for (i = 0; i < ctx->n_managed; i++) {
		if (strcmp(ctx->managed[i], schema) == 0)
			return (1);
	}
	return (0);
}

/* Judges a section's events in the run's context. */
void
lint_section(struct lint_ctx *ctx, const struct lint_scan *ls,
    const char *path, const char *file_ignore, int ignore_line, int bare,
    struct lint_report *rep)
{
	const struct lint_event	*ev;
	struct lint_finding	*f;
	const char		*name;
	char			*key, *unknown;
	size_t			 i;
	int			 proved;

	for (i = 0; i < ls->n; i++) {
		ev = &ls->ev[i];
		if (ev->rule == LINT_EV_CREATES) {
			lint_add_new(ctx, ev->table);
			continue;
		}
		if (ev->rule == LINT_EV_VALIDATES) {
			key = xprintf("%s\nvalidated", ev->table);
			lint_add_new(ctx, key);
			free(key);
			continue;
		}
		if (ev->rule < 0)
			continue;
		if ((ev->flags & LINT_EXISTING) && lint_is_new(ctx, ev->table))
			continue;
		if ((ev->flags & LINT_BARE) && !bare)
			continue;
		if ((ev->flags & LINT_IN_TX) && bare)
			continue;
		if ((ev->flags & LINT_UNPROVED) && ev->table != NULL) {
			key = xprintf("%s\nvalidated", ev->table);
			proved = lint_is_new(ctx, key);
			free(key);
			if (proved)
				continue;
		}
		if ((ev->flags & LINT_MANAGED) && (ev->table == NULL ||
		    !lint_managed(ctx, ev->table)))
			continue;
		name = lint_rules[ev->rule].name;
		rep->v = xreallocarray(rep->v, rep->n + 1, sizeof *rep->v);
		f = &rep->v[rep->n++];
		f->path = xstrdup(path);
		f->line = ev->line;
		f->col = ev->col;
		f->rule = ev->rule;
		f->severity = lint_rules[ev->rule].severity;
		f->msg = xstrdup(ev->msg);
		f->ignored = NULL;
		f->table = (ev->flags & LINT_EXISTING) && ev->table != NULL ?
		    xstrdup(ev->table) : NULL;
		f->rows = -1;
		if (ev->ignore != NULL && lint_ignores(ev->ignore, name))
			f->ignored = xprintf("line %d: migd:lint-ignore %s",
			    ev->ignore_line, ev->ignore);
		else if (file_ignore != NULL && lint_ignores(file_ignore,
		    name))
			f->ignored = xprintf("line %d: lint-ignore: %s",
			    ignore_line, file_ignore);
		if (f->ignored == NULL && ev->ignore != NULL &&
		    (unknown = lint_unknown_rule(ev->ignore)) != NULL) {
			free(f->msg);
			f->msg = xprintf("%s (the migd:lint-ignore on line %d "
			    "names no rule '%s')", ev->msg, ev->ignore_line,
			    unknown);
			free(unknown);
		}
	}
}

void
lint_ctx_clear(struct lint_ctx *ctx)
{
	size_t	 i;

	for (i = 0; i < ctx->cap_created; i++)
		free(ctx->created[i]);
	free(ctx->created);
	ctx->created = NULL;
	ctx->n_created = ctx->cap_created = 0;
}

void
lint_report_clear(struct lint_report *rep)
{
	size_t	 i;

	for (i = 0; i < rep->n; i++) {
		free(rep->v[i].path);
		free(rep->v[i].msg);
		free(rep->v[i].ignored);
		free(rep->v[i].table);
	}
	free(rep->v);
	rep->v = NULL;
	rep->n = 0;
}

size_t
lint_report_count(const struct lint_report *rep, enum lint_severity min)
{
	size_t	 i, n = 0;

	for (i = 0; i < rep->n; i++) {
		if (rep->v[i].ignored == NULL && rep->v[i].severity >= min)
			n++;
	}
	return (n);
}

json_t *
lint_finding_json(const struct lint_finding *f)
{
	const struct lint_rule	*r = &lint_rules[f->rule];
	json_t			*o;

	o = json_pack("{s:s, s:i, s:i, s:s, s:s, s:s, s:s, s:s, s:s?}",
	    "file", f->path, "line", f->line, "column", f->col,
	    "severity", lint_severity_name(f->severity), "rule", r->name,
	    "message", f->msg, "lock", r->lock, "safe", r->safe,
	    "ignored", f->ignored);
	if (f->table != NULL && f->rows >= 0) {
		json_object_set_new(o, "table", json_string(f->table));
		json_object_set_new(o, "rows", json_integer(f->rows));
	}
	return (o);
}

char *
lint_finding_text(const struct lint_finding *f, int with_lock)
{
	const struct lint_rule	*r = &lint_rules[f->rule];

	if (!with_lock)
		return (xprintf("%s:%d:%d: %s: %s: %s%s%s%s", f->path, f->line,
		    f->col, lint_severity_name(f->severity), r->name, f->msg,
		    f->ignored ? " (ignored, " : "", f->ignored ? f->ignored :
		    "", f->ignored ? ")" : ""));
	return (xprintf("%s:%d:%d: %s: %s: %s%s%s%s\n  lock: %s\n  "
	    "instead: %s", f->path, f->line, f->col,
	    lint_severity_name(f->severity), r->name, f->msg,
	    f->ignored ? " (ignored, " : "", f->ignored ? f->ignored : "",
	    f->ignored ? ")" : "", r->lock, r->safe));
}

/*
 * reltuples is what the last VACUUM or ANALYZE counted; PostgreSQL 14 and
 * later say -1 for a table neither has seen, earlier ones 0 with relpages
 * 0, which an empty analyzed table says too: not known, so no finding
 * drops on a guess.
 */
long long
lint_rows_estimate(double reltuples, long long relpages, int server_version)
{
	if (reltuples < 0)
		return (-1);
	if (server_version < 140000 && reltuples == 0 && relpages == 0)
		return (-1);
	return ((long long)(reltuples + 0.5));
}

/* A rule whose harm is a scan, a rewrite or a build under the lock costs
 * next to nothing on a few rows: informational, and it says why. */
int
lint_finding_sized(struct lint_finding *f, long long rows, long long small)
{
	char	*msg;

	if (f->table == NULL)
		return (0);
	f->rows = rows;
	if (rows < 0 || rows >= small || !lint_rules[f->rule].sized ||
	    f->severity == LINT_INFO)
		return (0);
	msg = xprintf("%s (informational: table has ~%lld row%s, under "
	    "lint_small_table_rows = %lld)", f->msg, rows, rows == 1 ? "" :
	    "s", small);
	free(f->msg);
	f->msg = msg;
	f->severity = LINT_INFO;
	return (1);
}

/* PostgreSQL's "Conflicting Lock Modes" table. */
const char *
lint_lock_conflicts(const char *mode)
{
	static const struct {
		const char	*mode;
		const char	*conflicts;
	} table[] = {
		{ "AccessShareLock", "AccessExclusiveLock" },
		{ "RowShareLock", "ExclusiveLock,AccessExclusiveLock" },
		{ "RowExclusiveLock", "ShareLock,ShareRowExclusiveLock,"
		    "ExclusiveLock,AccessExclusiveLock" },
		{ "ShareUpdateExclusiveLock", "ShareUpdateExclusiveLock,"
		    "ShareLock,ShareRowExclusiveLock,ExclusiveLock,"
		    "AccessExclusiveLock" },
		{ "ShareLock", "RowExclusiveLock,ShareUpdateExclusiveLock,"
		    "ShareRowExclusiveLock,ExclusiveLock,AccessExclusiveLock" },
		{ "ShareRowExclusiveLock", "RowExclusiveLock,"
		    "ShareUpdateExclusiveLock,ShareLock,ShareRowExclusiveLock,"
		    "ExclusiveLock,AccessExclusiveLock" },
		{ "ExclusiveLock", "RowShareLock,RowExclusiveLock,"
		    "ShareUpdateExclusiveLock,ShareLock,ShareRowExclusiveLock,"
		    "ExclusiveLock,AccessExclusiveLock" },
		{ "AccessExclusiveLock", "AccessShareLock,RowShareLock,"
		    "RowExclusiveLock,ShareUpdateExclusiveLock,ShareLock,"
		    "ShareRowExclusiveLock,ExclusiveLock,AccessExclusiveLock" },
	};
	size_t	 i;

	if (mode == NULL)
		return (NULL);
	for (i = 0; i < sizeof table / sizeof table[0]; i++) {
		if (strcmp(table[i].mode, mode) == 0)
			return (table[i].conflicts);
	}
	return (NULL);
}

const char *
lint_finding_mode(const struct lint_finding *f)
{
	return (f->table != NULL ? lint_rules[f->rule].mode : NULL);
}

/* Whether one of modes (pg_locks' names, comma-separated) conflicts with
 * mode. */
static int
lint_modes_conflict(const char *mode, const char *modes)
{
	const char	*conf = lint_lock_conflicts(mode), *p, *e, *c, *ce;

	if (conf == NULL || modes == NULL)
		return (0);
	for (p = modes; *p != '\0'; p = *e == ',' ? e + 1 : e) {
		e = p + strcspn(p, ",");
		for (c = conf; *c != '\0'; c = *ce == ',' ? ce + 1 : ce) {
			ce = c + strcspn(c, ",");
			if (ce - c == e - p && strncmp(c, p, e - p) == 0)
				return (1);
		}
	}
	return (0);
}

/* A table's sessions are read once, for its strongest lock; each finding
 * shows those in the way of its own statement's lock. */
json_t *
lint_blockers_for(const char *mode, json_t *sessions, long long long_xact_s)
{
	json_t		*out = json_array(), *b, *c;
	size_t		 i;
	int		 conflicts;

	json_array_foreach(sessions, i, b) {
		conflicts = lint_modes_conflict(mode, json_string_value(
		    json_object_get(b, "modes")));
		if (!conflicts && json_integer_value(json_object_get(b,
		    "xact_age_s")) < long_xact_s)
			continue;
		c = json_copy(b);
		json_object_set_new(c, "conflicts", json_boolean(conflicts));
		json_array_append_new(out, c);
	}
	return (out);
}
