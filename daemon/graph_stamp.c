/* Stamp as Alembic's: the version table's rows after naming revisions
 * (see graph.h). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "graph.h"
#include "graph_int.h"
#include "util.h"

/*
 * Stamp, as Alembic's: its ScriptDirectory._stamp_revs makes one step per
 * revision named, from the rows on the targets' lineage, and its
 * HeadMaintainer applies them in turn.  graph_stamp simulates both.
 */
enum graph_stamp_kind {
	GRAPH_STAMP_DOWN,	/* rows above the revision give way to it */
	GRAPH_STAMP_UP,		/* rows below it give way to it */
	GRAPH_STAMP_NEW		/* a branch the table does not show yet */
};

/* One stamp being simulated. */
struct graph_st {
	const struct graph	*g;
	unsigned char		*in;	/* a row now */
	size_t			*by;	/* the named revision (idx + 1) that
					   last changed a row; 0: as read */
	unsigned char		*filt;	/* on some target's lineage */
	size_t			*fl;	/* those rows, in Alembic's order */
	size_t			 n_fl;
	unsigned char		*mark;	/* 1: ancestor or self, 2: descendant */
	size_t			*stack;
	size_t			*named;	/* the revisions named, repeats kept */
	size_t			 n_named;
	int			 any_base;
};

/* Marks the lineage of seeds: what they build on (1) and what builds on
 * them (2), over both kinds of edge, the seeds themselves both. */
static void
graph_lineage(const struct graph *g, const size_t *seed, size_t n,
    unsigned char *mark, size_t *stack)
{
	size_t	 i, e, lo, hi, v, w, sp;
	int	 bit;

	memset(mark, 0, g->n);
	for (bit = 1; bit <= 2; bit <<= 1) {
		sp = 0;
		for (i = 0; i < n; i++) {
			if (!(mark[seed[i]] & bit)) {
				mark[seed[i]] |= bit;
				stack[sp++] = seed[i];
			}
		}
		while (sp > 0) {
			v = stack[--sp];
			lo = bit == 1 ? g->need_off[v] : g->rev_off[v];
			hi = bit == 1 ? g->need_off[v + 1] : g->rev_off[v + 1];
			for (e = lo; e < hi; e++) {
				w = bit == 1 ? g->need[e] : g->rev[e];
				if (!(mark[w] & bit)) {
					mark[w] |= bit;
					stack[sp++] = w;
				}
			}
		}
	}
}

/* What one target names (*share, to free) as Alembic resolves it: base
 * names nothing and takes every row; heads are its real heads. */
static int
graph_stamp_target(const struct graph *g, const char *t, size_t **share,
    size_t *n_share, int *is_base, char **cause)
{
	size_t	 v, idx, *heads, n;
	char	*list;

	*share = NULL;
	*n_share = 0;
	*is_base = strcmp(t, "base") == 0;
	if (*is_base)
		return (0);
	if (strcmp(t, "heads") == 0) {
		*share = xreallocarray(NULL, g->n ? g->n : 1, sizeof **share);
		for (v = 0; v < g->n; v++) {
			if (g->rev_off[v] == g->rev_off[v + 1])
				(*share)[(*n_share)++] = v;
		}
		return (0);
	}
	if (strcmp(t, "head") == 0) {
		n = graph_heads(g, &heads);
		if (n > 1) {
			list = graph_list(g, heads, n, n);
			*cause = xprintf("there are %zu heads (%s): stamp "
			    "'heads', or name the revisions", n, list);
			free(list);
			free(heads);
			return (-1);
		}
		*share = heads;
		*n_share = n;
		return (0);
	}
	if (t[0] == '+' || t[0] == '-') {
		*cause = xprintf("'%s': stamp takes revisions, head, heads or "
		    "base, not a relative step", t);
		return (-1);
	}
	if (graph_lookup(g, t, &idx, cause) != 0)
		return (-1);
	*share = xmalloc(sizeof **share);
	(*share)[0] = idx;
	*n_share = 1;
	return (0);
}

/* The named revision that last changed row v, for messages. */
static const char *
graph_stamp_by(const struct graph_st *s, size_t v)
{
	return (s->by[v] != 0 ? s->g->ids[s->by[v] - 1] : "another target");
}

/* Applies the step of named revision d as Alembic's HeadMaintainer does;
 * -1 with *cause where it raises. */
static int
graph_stamp_step(struct graph_st *s, size_t d, char **cause)
{
	const struct graph	*g = s->g;
	size_t			 i, r, above = GRAPH_NONE, below = GRAPH_NONE;
	enum graph_stamp_kind	 kind;
	int			 create = 0;

	if (s->filt[d])
		return (0);	/* in the table already: nothing to do */
	graph_lineage(g, &d, 1, s->mark, s->stack);
	for (i = 0; i < s->n_fl; i++) {
		r = s->fl[i];
		if ((s->mark[r] & 2) && above == GRAPH_NONE)
			above = r;
		if ((s->mark[r] & 1) && below == GRAPH_NONE)
			below = r;
	}
	if (above != GRAPH_NONE && below != GRAPH_NONE) {
		*cause = xprintf("cannot stamp %s: the version table has %s "
		    "above it and %s below it (Alembic's stamp fails here "
		    "too); stamp --purge replaces the whole table", g->ids[d],
		    g->ids[above], g->ids[below]);
		return (-1);
	}
	kind = above != GRAPH_NONE ? GRAPH_STAMP_DOWN : below != GRAPH_NONE ?
	    GRAPH_STAMP_UP : GRAPH_STAMP_NEW;
	if (kind == GRAPH_STAMP_UP && !s->in[d]) {
		/* Some of the rows are gone already: a new branch. */
		for (i = 0; i < s->n_fl; i++)
			create |= !s->in[s->fl[i]];
	}
	if (kind == GRAPH_STAMP_NEW || create) {
		if (s->in[d]) {
			*cause = xprintf("cannot stamp %s: stamping %s put it "
			    "in the version table already (Alembic's stamp "
			    "fails here too); name it once", g->ids[d],
			    graph_stamp_by(s, d));
			return (-1);
		}
		s->in[d] = 1;
		s->by[d] = d + 1;
		return (0);
	}
	/* As HeadMaintainer: the other rows go first, then the last one
	 * becomes d, which must not be a row yet. */
	for (i = 0; i < s->n_fl; i++) {
		r = s->fl[i];
		if (i + 1 == s->n_fl && s->in[d]) {
			*cause = xprintf("cannot stamp %s: stamping %s put it in "
			    "the version table already (Alembic's stamp fails here "
			    "too); name it once", g->ids[d], graph_stamp_by(s, d));
			return (-1);
		}
		if (!s->in[r]) {
			*cause = xprintf("cannot stamp %s together with %s: "
			    "stamping %s replaced %s already, and %s would "
			    "replace it again (Alembic's stamp fails here "
			    "too); stamp them one at a time", g->ids[d],
			    graph_stamp_by(s, r), graph_stamp_by(s, r),
			    g->ids[r], g->ids[d]);
			return (-1);
		}
	}
	for (i = 0; i < s->n_fl; i++) {
		s->in[s->fl[i]] = 0;
		s->by[s->fl[i]] = d + 1;
	}
	s->in[d] = 1;
	s->by[d] = d + 1;
	return (0);
}

/*
 * What Alembic would write wrongly is refused: a row gone that no revision
 * stamped replaces (on its lineage), unless base was a target, and rows of
 * which one builds on another.  rows are the rows read.
 */
static int
graph_stamp_check(struct graph_st *s, const size_t *rows, size_t n_rows,
    char **cause)
{
	const struct graph	*g = s->g;
	size_t			*seed, n = 0, v, x, e, i;

	for (i = 0; i < s->n_named; i++) {
		if (s->in[s->named[i]])
			s->stack[n++] = s->named[i];
	}
	seed = xreallocarray(NULL, n ? n : 1, sizeof *seed);
	memcpy(seed, s->stack, n * sizeof *seed);
	graph_lineage(g, seed, n, s->mark, s->stack);
	for (i = 0; i < n_rows && !s->any_base; i++) {
		v = rows[i];
		if (s->in[v] || s->mark[v] != 0)
			continue;
		*cause = xprintf("cannot stamp these targets together: the "
		    "version table would lose %s, which no revision stamped "
		    "replaces (Alembic's stamp of several heads or targets "
		    "drops it); stamp one revision at a time", g->ids[v]);
		free(seed);
		return (-1);
	}
	free(seed);
	n = 0;

	seed = xreallocarray(NULL, g->need_off[g->n] + 1, sizeof *seed);
	for (v = 0; v < g->n; v++) {
		if (!s->in[v])
			continue;
		for (e = g->need_off[v]; e < g->need_off[v + 1]; e++)
			seed[n++] = g->need[e];
	}
	graph_lineage(g, seed, n, s->mark, s->stack);
	free(seed);
	for (v = 0; v < g->n; v++) {
		if (!s->in[v] || !(s->mark[v] & 1))
			continue;
		for (x = 0; x < g->n; x++) {
			if (!s->in[x] || x == v)
				continue;
			graph_lineage(g, &x, 1, s->mark, s->stack);
			if (s->mark[v] & 1)
				break;
		}
		if (x < g->n && s->by[v] == 0 && s->by[x] == 0)
			/* Both rows were there and no target moved them. */
			*cause = xprintf("cannot stamp: the version table "
			    "already lists both %s and %s, which builds on it "
			    "(it is inconsistent, and Alembic's stamp would "
			    "leave it so); stamp --purge %s replaces the whole "
			    "table", g->ids[v], g->ids[x], g->ids[x]);
		else
			*cause = xprintf("cannot stamp: the version table "
			    "would list both %s and %s, which builds on it "
			    "(Alembic would write both rows); name only %s",
			    g->ids[v], x < g->n ? g->ids[x] : "another row",
			    x < g->n ? g->ids[x] : "the newer one");
		return (-1);
	}
	return (0);
}

int
graph_stamp(const struct graph *g, const char *const *current,
    size_t n_current, const char *const *targets, size_t n_targets, int purge,
    struct graph_stamp *out, char **cause)
{
	static const char *const base[] = { "base" };
	struct graph_st		 s;
	size_t			*rows, n_rows = 0, *share, n_share, i, k, v;
	size_t			 cap = 0, sz = g->n ? g->n : 1;
	ssize_t			 f;
	int			 is_base, rv = -1;

	memset(out, 0, sizeof *out);
	*cause = NULL;
	if (n_targets == 0) {
		targets = base;
		n_targets = 1;
	}
	memset(&s, 0, sizeof s);
	s.g = g;
	s.in = xcalloc(sz, 1);
	s.by = xcalloc(sz, sizeof *s.by);
	s.filt = xcalloc(sz, 1);
	s.fl = xreallocarray(NULL, sz, sizeof *s.fl);
	s.mark = xcalloc(sz, 1);
	s.stack = xreallocarray(NULL, sz, sizeof *s.stack);
	rows = xreallocarray(NULL, sz, sizeof *rows);

	/* Targets first: an unknown one is named before an unknown row. */
	for (k = 0; k < n_targets; k++) {
		if (graph_stamp_target(g, targets[k] != NULL ? targets[k] : "",
		    &share, &n_share, &is_base, cause) != 0)
			goto out;
		free(share);
	}
	/* The table as read: Alembic resolves every row, unless --purge. */
	for (i = 0; i < n_current && !purge; i++) {
		if ((f = graph_find(g, current[i])) < 0) {
			*cause = xprintf("the version table names revision "
			    "'%s', which no migration file defines: stamp "
			    "--purge replaces the whole table",
			    current[i] != NULL ? current[i] : "");
			rv = GRAPH_STAMP_UNKNOWN_ROW;
			goto out;
		}
		if (!s.in[f]) {
			s.in[f] = 1;
			rows[n_rows++] = (size_t)f;
		}
	}
	/* Each target: the revisions it names, the rows on its lineage. */
	for (k = 0; k < n_targets; k++) {
		if (graph_stamp_target(g, targets[k] != NULL ? targets[k] : "",
		    &share, &n_share, &is_base, cause) != 0)
			goto out;
		s.any_base |= is_base;
		if (n_share != 0)
			graph_lineage(g, share, n_share, s.mark, s.stack);
		for (i = 0; i < n_rows; i++) {
			v = rows[i];
			if (!s.filt[v] && (n_share == 0 || s.mark[v] != 0)) {
				s.filt[v] = 1;
				s.fl[s.n_fl++] = v;
			}
		}
		for (i = 0; i < n_share; i++) {
			if (s.n_named == cap) {
				cap = cap == 0 ? 8 : cap * 2;
				s.named = xreallocarray(s.named, cap,
				    sizeof *s.named);
			}
			s.named[s.n_named++] = share[i];
		}
		free(share);
	}
	/* Nothing named (base): every row on the lineage goes. */
	if (s.n_named == 0) {
		for (i = 0; i < s.n_fl; i++)
			s.in[s.fl[i]] = 0;
	}
	for (i = 0; i < s.n_named; i++) {
		if (graph_stamp_step(&s, s.named[i], cause) != 0)
			goto out;
	}
	if (graph_stamp_check(&s, rows, n_rows, cause) != 0)
		goto out;

	out->rows = xreallocarray(NULL, sz, sizeof *out->rows);
	for (v = 0; v < g->n; v++) {
		if (s.in[v])
			out->rows[out->n_rows++] = v;
	}
	out->named = xreallocarray(NULL, s.n_named ? s.n_named : 1,
	    sizeof *out->named);
	memset(s.mark, 0, sz);
	for (i = 0; i < s.n_named; i++) {
		if (!s.mark[s.named[i]]) {
			s.mark[s.named[i]] = 1;
			out->named[out->n_named++] = s.named[i];
		}
	}
	rv = 0;
out:
	free(s.in);
	free(s.by);
	free(s.filt);
	free(s.fl);
	free(s.mark);
	free(s.stack);
	free(s.named);
	free(rows);
	return (rv);
}

/* Frees what graph_stamp gave. */
void
graph_stamp_clear(struct graph_stamp *out)
{
	free(out->rows);
	free(out->named);
	memset(out, 0, sizeof *out);
}
