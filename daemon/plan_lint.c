/*
 * lint at apply time ([migrations] lint): the plan's steps judged in the
 * order they would run, so a table an earlier step creates is new.  With
 * lint = warn the findings go with the plan and the run's reply; with
 * refuse, each error finding not ignored is a problem that stops the run
 * before anything runs.
 */
#include <sys/queue.h>

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "config.h"
#include "migd.h"
#include "engine.h"
#include "lint.h"

/* A refused finding as a plan problem, naming rule and FILE:LINE:COL. */
static json_t *
planlint_problem(const struct lint_finding *f, const char *revision)
{
	const struct lint_rule	*r = &lint_rules[f->rule];

	return (json_pack("{s:s, s:s, s:s, s:o}", "kind", "lint_refused",
	    "revision", revision, "rule", r->name, "message", json_sprintf(
	    "%s:%d:%d: %s: %s (lock: %s; instead: %s); lint = refuse, or "
	    "put '-- migd:lint-ignore %s why' on the line above it",
	    f->path, f->line, f->col, r->name, f->msg, r->lock, r->safe,
	    r->name)));
}

/*
 * The findings of the plan's steps (warnings and errors; info is for
 * migctl lint), or NULL when lint is off.  With refuse, adds a problem to
 * problems for each error finding that is not ignored.
 */
json_t *
planlint(struct job *j, json_t *problems)
{
	struct lint_ctx		 ctx;
	struct lint_report	 rep = { NULL, 0 };
	const struct migfile	*mf;
	const struct sqlscan	*sc;
	const struct graph_step	*st;
	json_t			*out, *o;
	size_t			 i, k, from;
	int			 up;

	if (migd.config->lint == MIGD_LINT_OFF)
		return (NULL);
	memset(&ctx, 0, sizeof ctx);
	ctx.managed = migd.config->schemas;
	ctx.n_managed = migd.config->n_schemas;
	out = json_array();
	for (i = 0; i < j->plan.n_steps; i++) {
		st = &j->plan.steps[i];
		up = st->dir == GRAPH_UP;
		mf = revset_file(j->rs, st->idx);
		sc = revset_section(j->rs, st->idx, up);
		if (sc->unparsed)
			continue;
		from = rep.n;
		lint_section(&ctx, &sc->lint, migfile_path(mf, up),
		    mf->lint_ignore, mf->lint_ignore_line,
		    !revset_transactional(j->rs, st->idx, up), &rep);
		for (k = from; k < rep.n; k++) {
			if (lint_rules[rep.v[k].rule].severity < LINT_WARNING)
				continue;
			o = lint_finding_json(&rep.v[k]);
			json_object_set_new(o, "revision",
			    json_string(mf->revision));
			json_array_append_new(out, o);
			if (migd.config->lint == MIGD_LINT_REFUSE &&
			    rep.v[k].ignored == NULL &&
			    lint_rules[rep.v[k].rule].severity == LINT_ERROR)
				json_array_append_new(problems,
				    planlint_problem(&rep.v[k], mf->revision));
		}
	}
	lint_report_clear(&rep);
	lint_ctx_clear(&ctx);
	return (out);
}
