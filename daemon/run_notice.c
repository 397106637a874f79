/*
 * What the server says during a step (RAISE NOTICE, a WARNING): to the
 * requester as progress events and to the log, a bounded number per step.
 */
#include <sys/queue.h>

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "config.h"
#include "migd.h"
#include "engine.h"

/* Notices and warnings of one step that reach the client and the log: a
 * loop raising millions must flood neither; the rest are counted. */
#define RUN_NOTICE_MAX	100
/* Bytes of a notice's message (and of its detail and hint) passed on. */
#define RUN_NOTICE_LEN	2000

/* A notice's text for JSON: valid UTF-8, cut at RUN_NOTICE_LEN bytes. */
static char *
run_notice_text(const char *s)
{
	char	*t = utf8_sanitize(s);

	if (strlen(t) > RUN_NOTICE_LEN)
		t[utf8_valid_prefix(t, RUN_NOTICE_LEN)] = '\0';
	return (t);
}

/*
 * A notice or warning the server sent during a step (RAISE NOTICE, a
 * WARNING): to the requester as a progress event with the revision, and to
 * the log with it; RUN_NOTICE_MAX per step, the rest counted.
 */
void
run_notice(struct pool_conn *pc, const PGresult *res, void *arg)
{
	static const int	 extra[] = { PG_DIAG_SQLSTATE,
				    PG_DIAG_MESSAGE_DETAIL, PG_DIAG_MESSAGE_HINT };
	static const char	*names[] = { "sqlstate", "detail", "hint" };
	struct job		*j = arg;
	const struct graph_step	*st = &j->plan.steps[j->step];
	const struct migfile	*mf = revset_file(j->rs, st->idx);
	const char		*sev, *msg, *v;
	json_t			*p;
	char			*text, *line;
	size_t			 i;

	(void)pc;
	if (++j->notices > RUN_NOTICE_MAX) {
		j->notices_dropped++;
		return;
	}
	pqerr_notice(res, &sev, &msg);
	text = run_notice_text(msg);
	p = json_pack("{s:s, s:s, s:s, s:s}", "revision", mf->revision,
	    "direction", st->dir == GRAPH_UP ? "up" : "down", "severity", sev,
	    "message", text);
	for (i = 0; i < nitems(extra); i++) {
		if ((v = PQresultErrorField(res, extra[i])) == NULL)
			continue;
		line = run_notice_text(v);
		json_object_set_new(p, names[i], json_string(line));
		free(line);
	}
	/* log.c escapes control characters: one line each. */
	if (strcmp(sev, "WARNING") == 0)
		log_warnx("%s (%s): %s: %s", mf->revision, run_file(j), sev,
		    text);
	else if (strncmp(sev, "DEBUG", 5) == 0)
		log_debug("%s (%s): %s: %s", mf->revision, run_file(j), sev,
		    text);
	else
		log_info("%s (%s): %s: %s", mf->revision, run_file(j), sev,
		    text);
	free(text);
	run_notify(j, "notice", p);
}

/* The step ended: say how many notices were left out; later ones (migd's
 * own clean-up) go to the log only. */
void
run_notices_end(struct job *j)
{
	const struct graph_step	*st = &j->plan.steps[j->step];
	const struct migfile	*mf = revset_file(j->rs, st->idx);

	if (j->pc != NULL)
		pool_set_notice(j->pc, NULL, NULL);
	if (j->notices_dropped > 0) {
		log_info("%s (%s): %zu more notices and warnings suppressed "
		    "(only the first %d of a migration are shown)",
		    mf->revision, run_file(j), j->notices_dropped,
		    RUN_NOTICE_MAX);
		run_notify(j, "notices_suppressed", json_pack("{s:s, s:s, "
		    "s:I}", "revision", mf->revision, "direction", st->dir ==
		    GRAPH_UP ? "up" : "down", "count",
		    (json_int_t)j->notices_dropped));
	}
	j->notices = j->notices_dropped = 0;
}
