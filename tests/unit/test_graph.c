/* Unit tests for the revision graph: validation, lookups, plans and scale. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "graph.h"
#include "util.h"
#include "tap.h"

/*
 * A graph written as text: "a b<a m<b,c y<x|d" means a is a root, b revises
 * a, m merges b and c, y revises x and depends on d.  Revision i comes from
 * "NN_id.sql" with its revision header on line 1, down_revision on 2 and
 * depends_on on 3.
 */
struct spec {
	struct graph_input	*in;
	size_t			 n;
};

/* Splits "a,b,c" into a new array of new strings. */
static const char *const *
split(const char *s, size_t len, size_t *n)
{
	char		**v = NULL;
	const char	 *p = s, *end = s + len, *comma;

	*n = 0;
	while (p < end) {
		comma = memchr(p, ',', (size_t)(end - p));
		if (comma == NULL)
			comma = end;
		v = xreallocarray(v, *n + 1, sizeof *v);
		v[(*n)++] = xstrndup(p, (size_t)(comma - p));
		p = comma + 1;
	}
	return ((const char *const *)v);
}

/* Test inputs come from short strings so that each case reads as a picture. */
static struct spec
spec_parse(const char *text)
{
	struct spec		 sp = { NULL, 0 };
	struct graph_input	*in;
	const char		*p = text, *tok, *lt, *bar, *end;
	char			*id;

	for (;;) {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		tok = p;
		while (*p != ' ' && *p != '\0')
			p++;
		end = p;
		lt = memchr(tok, '<', (size_t)(end - tok));
		bar = memchr(tok, '|', (size_t)(end - tok));
		sp.in = xreallocarray(sp.in, sp.n + 1, sizeof *sp.in);
		in = &sp.in[sp.n];
		memset(in, 0, sizeof *in);
		id = xstrndup(tok, (size_t)((lt != NULL ? lt : bar != NULL ?
		    bar : end) - tok));
		in->id = id;
		in->file = xprintf("%02zu_%s.sql", sp.n, id);
		in->id_line = 1;
		in->parents_line = 2;
		in->depends_line = 3;
		if (lt != NULL) {
			in->parents = split(lt + 1, (size_t)((bar != NULL ?
			    bar : end) - (lt + 1)), &in->n_parents);
		}
		if (bar != NULL)
			in->depends = split(bar + 1, (size_t)(end - (bar + 1)),
			    &in->n_depends);
		sp.n++;
	}
	return (sp);
}

/* Inputs are borrowed by graph_build, so the test owns and frees them. */
static void
spec_free(struct spec *sp)
{
	size_t	 i, j;

	for (i = 0; i < sp->n; i++) {
		free((char *)sp->in[i].id);
		free((char *)sp->in[i].file);
		for (j = 0; j < sp->in[i].n_parents; j++)
			free((char *)sp->in[i].parents[j]);
		for (j = 0; j < sp->in[i].n_depends; j++)
			free((char *)sp->in[i].depends[j]);
		free((void *)sp->in[i].parents);
		free((void *)sp->in[i].depends);
	}
	free(sp->in);
	sp->in = NULL;
	sp->n = 0;
}

/* Most tests want a valid graph and nothing else. */
static struct graph *
mk(const char *text)
{
	struct spec	 sp = spec_parse(text);
	struct errlist	 errs = { NULL, 0 };
	struct graph	*g = NULL;
	size_t		 i;

	if (graph_build(sp.in, sp.n, &g, &errs) != 0) {
		for (i = 0; i < errs.n; i++)
			printf("# unexpected: %s\n", errs.v[i]);
	}
	errlist_clear(&errs);
	spec_free(&sp);
	return (g);
}

/* Build errors joined with " | ", or "ok" when the graph was valid. */
static char *
build_errors(const char *text)
{
	struct spec	 sp = spec_parse(text);
	struct errlist	 errs = { NULL, 0 };
	struct graph	*g = NULL;
	char		*out, *t;
	size_t		 i;
	int		 rv;

	rv = graph_build(sp.in, sp.n, &g, &errs);
	if (rv == 0 && errs.n == 0 && g != NULL)
		out = xstrdup("ok");
	else if (rv == -1 && errs.n > 0 && g == NULL) {
		out = xstrdup(errs.v[0]);
		for (i = 1; i < errs.n; i++) {
			t = xprintf("%s | %s", out, errs.v[i]);
			free(out);
			out = t;
		}
	} else
		out = xprintf("inconsistent result rv=%d n=%zu", rv, errs.n);
	graph_free(g);
	errlist_clear(&errs);
	spec_free(&sp);
	return (out);
}

/* Ids of a list of revisions, joined by sep. */
static char *
ids(const struct graph *g, const size_t *v, size_t n, const char *sep)
{
	char	*out = xstrdup(""), *t;
	size_t	 i;

	for (i = 0; i < n; i++) {
		t = xprintf("%s%s%s", out, i > 0 ? sep : "", graph_id(g, v[i]));
		free(out);
		out = t;
	}
	return (out);
}

/*
 * Replays a plan over the version table, the slow and obvious way: each
 * step must apply something whose needs are applied (or revert something
 * nothing applied builds on), its row changes must be possible, and after
 * it the rows must be exactly the applied revisions nothing applied builds
 * on.  Returns NULL when all holds, else what went wrong.
 */
static char *
replay(const struct graph *g, const char *const *cur, size_t ncur,
    const struct graph_plan *p)
{
	size_t			 n = graph_count(g), i, j, k, v, u, np, nd, nr;
	const size_t		*par, *dep;
	unsigned char		*applied, *row, *built;
	const struct graph_step	*st;
	char			*why = NULL;
	int			 more;

	applied = xcalloc(n, 1);
	row = xcalloc(n, 1);
	built = xcalloc(n, 1);
	for (i = 0; i < ncur; i++) {
		v = (size_t)graph_find(g, cur[i]);
		applied[v] = row[v] = 1;
	}
	do {			/* closure, slowly */
		more = 0;
		for (v = 0; v < n; v++) {
			if (!applied[v])
				continue;
			np = graph_parents(g, v, &par);
			nd = graph_depends(g, v, &dep);
			for (j = 0; j < np; j++)
				more |= !applied[par[j]], applied[par[j]] = 1;
			for (j = 0; j < nd; j++)
				more |= !applied[dep[j]], applied[dep[j]] = 1;
		}
	} while (more);

	for (i = 0; i < p->n_steps && why == NULL; i++) {
		st = &p->steps[i];
		v = st->idx;
		np = graph_parents(g, v, &par);
		nd = graph_depends(g, v, &dep);
		if (st->dir == GRAPH_UP) {
			if (applied[v])
				why = xprintf("step %zu applies applied %s", i,
				    graph_id(g, v));
			for (j = 0; j < np + nd && why == NULL; j++) {
				u = j < np ? par[j] : dep[j - np];
				if (!applied[u])
					why = xprintf("step %zu applies %s "
					    "before %s", i, graph_id(g, v),
					    graph_id(g, u));
			}
			applied[v] = 1;
		} else {
			if (!applied[v])
				why = xprintf("step %zu reverts unapplied %s",
				    i, graph_id(g, v));
			applied[v] = 0;
		}
		for (j = 0; j < st->n_row_del && why == NULL; j++) {
			if (!row[st->row_del[j]])
				why = xprintf("step %zu deletes missing row %s",
				    i, graph_id(g, st->row_del[j]));
			row[st->row_del[j]] = 0;
		}
		for (j = 0; j < st->n_row_ins && why == NULL; j++) {
			if (row[st->row_ins[j]])
				why = xprintf("step %zu inserts present row %s",
				    i, graph_id(g, st->row_ins[j]));
			row[st->row_ins[j]] = 1;
		}
		/* rows == applied revisions nothing applied builds on */
		memset(built, 0, n);
		for (u = 0; u < n; u++) {
			if (!applied[u])
				continue;
			np = graph_parents(g, u, &par);
			nd = graph_depends(g, u, &dep);
			for (k = 0; k < np; k++)
				built[par[k]] = 1;
			for (k = 0; k < nd; k++)
				built[dep[k]] = 1;
		}
		for (u = 0; u < n && why == NULL; u++) {
			if (st->dir == GRAPH_DOWN && u == v && built[u])
				why = xprintf("step %zu reverts %s while "
				    "something applied builds on it", i,
				    graph_id(g, v));
			else if (row[u] != (applied[u] && !built[u]))
				why = xprintf("after step %zu (%s) row %s is "
				    "%s", i, graph_id(g, v), graph_id(g, u),
				    row[u] ? "wrong" : "missing");
		}
	}
	for (nr = 0, v = 0; v < n && why == NULL; v++) {
		if (!row[v])
			continue;
		if (nr >= p->n_rows_after || p->rows_after[nr] != v)
			why = xprintf("rows_after differs at %s",
			    graph_id(g, v));
		nr++;
	}
	if (why == NULL && nr != p->n_rows_after)
		why = xprintf("rows_after has %zu rows, replay %zu",
		    p->n_rows_after, nr);
	free(applied);
	free(row);
	free(built);
	return (why);
}

/* A plan as one line: "+b[-a+b] -c[-c+b] => b" (step[row changes] => rows). */
static char *
plan_fmt(const struct graph *g, const struct graph_plan *p)
{
	char		*out = xstrdup(""), *t, *dels, *inss, *rows;
	size_t		 i, j;
	const struct graph_step	*st;

	for (i = 0; i < p->n_steps; i++) {
		st = &p->steps[i];
		dels = xstrdup("");
		for (j = 0; j < st->n_row_del; j++) {
			t = xprintf("%s-%s", dels, graph_id(g, st->row_del[j]));
			free(dels);
			dels = t;
		}
		inss = xstrdup("");
		for (j = 0; j < st->n_row_ins; j++) {
			t = xprintf("%s+%s", inss, graph_id(g, st->row_ins[j]));
			free(inss);
			inss = t;
		}
		t = xprintf("%s%c%s[%s%s] ", out, st->dir == GRAPH_UP ? '+' :
		    '-', graph_id(g, st->idx), dels, inss);
		free(out);
		free(dels);
		free(inss);
		out = t;
	}
	rows = ids(g, p->rows_after, p->n_rows_after, ",");
	t = xprintf("%s=> %s", out, rows);
	free(out);
	free(rows);
	return (t);
}

/* Plans from rows "a,b" to target and describes the outcome in one line. */
static char *
plan(const struct graph *g, const char *cur, const char *target,
    enum graph_dir dir)
{
	struct graph_plan	 p;
	const char *const	*rows;
	char			*cause, *out, *why;
	size_t			 n, i;
	int			 rv;

	rows = split(cur, strlen(cur), &n);
	rv = graph_plan(g, rows, n, target, dir, &p, &cause);
	if (rv != 0) {
		if (cause == NULL || p.n_steps != 0 || p.steps != NULL ||
		    p.rows_after != NULL)
			out = xstrdup("error without a clean plan and a cause");
		else
			out = xprintf("error: %s", cause);
	} else if (cause != NULL)
		out = xstrdup("success with a cause");
	else if ((why = replay(g, rows, n, &p)) != NULL)
		out = xprintf("replay failed: %s", why), free(why);
	else
		out = plan_fmt(g, &p);
	free(cause);
	graph_plan_clear(&p);
	for (i = 0; i < n; i++)
		free((char *)rows[i]);
	free((void *)rows);
	return (out);
}

/* is_str on a string the test owns. */
#define is_own(got, want, ...) do {					\
	char *own_ = (got);						\
	is_str(own_, want, __VA_ARGS__);				\
	free(own_);							\
} while (0)

/* Heads as "a,b", so a test compares one string. */
static char *
heads_of(const struct graph *g)
{
	size_t	*h, n;
	char	*s;

	n = graph_heads(g, &h);
	s = ids(g, h, n, ",");
	free(h);
	return (s);
}

/* The topological order as "a b c". */
static char *
order_of(const struct graph *g)
{
	const size_t	*o;
	size_t		 n;

	n = graph_order(g, &o);
	return (ids(g, o, n, " "));
}

/* A lookup's answer as one string: the id found, or the error. */
static char *
lookup(const struct graph *g, const char *id)
{
	size_t	 idx;
	char	*cause = NULL, *out;

	if (graph_lookup(g, id, &idx, &cause) == 0)
		out = xstrdup(cause == NULL ? graph_id(g, idx) : "cause set");
	else
		out = xprintf("error: %s", cause);
	free(cause);
	return (out);
}

/* graph_newest_first as "m[HM] b c[B] a": H head, M mergepoint, B
 * branchpoint, D depended on. */
static char *
newest_of(const struct graph *g)
{
	struct graph_listed	*l;
	size_t			 n, i;
	char			*s = xstrdup(""), *t, fl[8], *f;

	n = graph_newest_first(g, &l);
	for (i = 0; i < n; i++) {
		f = fl;
		if (l[i].flags & GRAPH_LISTED_HEAD)
			*f++ = 'H';
		if (l[i].flags & GRAPH_LISTED_MERGEPOINT)
			*f++ = 'M';
		if (l[i].flags & GRAPH_LISTED_BRANCHPOINT)
			*f++ = 'B';
		if (l[i].flags & GRAPH_LISTED_DEPENDED)
			*f++ = 'D';
		*f = '\0';
		t = xprintf("%s%s%s%s%s%s", s, i ? " " : "", graph_id(g,
		    l[i].idx), *fl ? "[" : "", fl, *fl ? "]" : "");
		free(s);
		s = t;
	}
	free(l);
	return (s);
}

/* Newest first, as Alembic's history lists a graph: each revision after
 * everything built on it, one branch at a time, ties in file order. */
static void
test_newest(void)
{
	struct graph	*g;

	g = mk("a b<a c<b d<c");
	is_own(newest_of(g), "d[H] c b a", "chain: newest first");
	graph_free(g);
	g = mk("d<c c<b b<a a");
	is_own(newest_of(g), "d[H] c b a", "reversed input: still newest first");
	graph_free(g);
	g = mk("a b1<a b2<a m<b1,b2");
	is_own(newest_of(g), "m[HM] b1 b2 a[B]",
	    "branch and merge: the merge, each branch, the fork");
	graph_free(g);
	g = mk("a b1<a c1<b1 b2<a c2<b2");
	is_own(newest_of(g), "c1[H] b1 c2[H] b2 a[B]",
	    "two open branches: one after the other, in file order");
	graph_free(g);
	g = mk("a b<a c<b d<c x<c");
	is_own(newest_of(g), "d[H] x[H] c[B] b a",
	    "a late fork: both heads before the fork");
	graph_free(g);
	g = mk("x1 x2<x1 y1 y2<y1|x1");
	is_own(newest_of(g), "x2[H] y2[H] x1[D] y1",
	    "depends_on: a dependency after its dependents");
	graph_free(g);
	g = mk("x1 y1|x1");
	is_own(newest_of(g), "y1[H] x1[HD]",
	    "a head only depended on is still a head (Alembic: effective)");
	graph_free(g);
	g = mk("r1 r2 s<r2");
	is_own(newest_of(g), "r1[H] s[H] r2", "a forest");
	graph_free(g);
	g = mk("");
	is_own(newest_of(g), "", "no revisions");
	graph_free(g);
}

/*
 * Skipped revisions for rows and a history written as "a:r b:k c:-" (r: ran
 * since the newest stamp, k: known only, -: never recorded; unlisted: -).
 */
static char *
skipped_of(const char *graph, const char *row_list, const char *hist)
{
	struct graph		*g = mk(graph);
	const char *const	*rows;
	unsigned char		*rec;
	size_t			*sk, n, nrows, i, nh;
	const char *const	*h;
	const char		*colon;
	char			*out, *id;
	ssize_t			 x;

	rows = split(row_list, strlen(row_list), &nrows);
	rec = xcalloc(graph_count(g) + 1, 1);
	h = split(hist, strlen(hist), &nh);
	for (i = 0; i < nh; i++) {
		colon = strchr(h[i], ':');
		id = xstrndup(h[i], (size_t)(colon - h[i]));
		if ((x = graph_find(g, id)) >= 0)
			rec[x] = colon[1] == 'r' ? GRAPH_REC_RAN |
			    GRAPH_REC_KNOWN : colon[1] == 'k' ?
			    GRAPH_REC_KNOWN : 0;
		free(id);
		free((char *)h[i]);
	}
	free((void *)h);
	n = graph_skipped(g, rows, nrows, rec, &sk);
	out = ids(g, sk, n, " ");
	for (i = 0; i < nrows; i++)
		free((char *)rows[i]);
	free((void *)rows);
	free(sk);
	free(rec);
	graph_free(g);
	return (out);
}

/* Rebased revisions between ones migd ran; never below what it ran. */
static void
test_skipped(void)
{
	const char	*chain = "a b<a b2<b c<b2 d<c";

	is_own(skipped_of(chain, "c", "a:r,b:r,c:r"), "b2",
	    "a rebase: b2 inserted between applied b and c");
	is_own(skipped_of(chain, "d", "a:r,b:r,c:r,d:r"), "b2",
	    "still skipped once more was applied above it");
	is_own(skipped_of(chain, "b", "a:r,b:r"), "",
	    "nothing applied above it: pending, not skipped");
	is_own(skipped_of(chain, "c", "a:r,b:r,b2:r,c:r"), "",
	    "ran: not skipped");
	is_own(skipped_of(chain, "c", "a:r,b:r,b2:k,c:r"), "",
	    "resolved as applied (known): not skipped");
	is_own(skipped_of(chain, "d", "d:r"), "",
	    "Alembic's database taken over: nothing below migd's first run");
	is_own(skipped_of(chain, "d", "c:r,d:r"), "",
	    "taken over by a stamp: below the stamp is trusted");
	is_own(skipped_of(chain, "d", "a:k,b:k"), "",
	    "a newer stamp covers what came before it");
	is_own(skipped_of(chain, "c", ""), "",
	    "no history at all: nothing skipped");
	is_own(skipped_of(chain, "c", "a:r,c:r"), "b b2",
	    "several between: each, in order");
	is_own(skipped_of("a b<a c<a m<b,c", "m", "a:r,b:r,m:r"), "c",
	    "a branch merged below an applied merge");
	is_own(skipped_of("a b<a x y<x|b z<y", "z", "a:r,b:r,z:r"), "y",
	    "over depends_on too");
	is_own(skipped_of(chain, "zz", "a:r,b:r"), "",
	    "an unknown row implies nothing");
}

/* A straight line exercises every target form in both directions. */
static void
test_chain(void)
{
	struct graph	*g = mk("a b<a c<b d<c");
	char		*why = NULL;

	ok(g != NULL, "chain builds");
	if (g == NULL)
		return;
	is_int(graph_count(g), 4, "chain: 4 revisions");
	is_str(graph_id(g, 2), "c", "graph_id by input index");
	is_int(graph_find(g, "d"), 3, "graph_find exact");
	is_int(graph_find(g, "x"), -1, "graph_find absent");
	is_int(graph_find(g, "d2"), -1, "graph_find does not take prefixes");
	is_own(heads_of(g), "d", "chain: one head");
	is_own(order_of(g), "a b c d", "chain: order");

	is_own(plan(g, "", "head", GRAPH_UP),
	    "+a[+a] +b[-a+b] +c[-b+c] +d[-c+d] => d", "up head from base");
	is_own(plan(g, "b", "head", GRAPH_UP), "+c[-b+c] +d[-c+d] => d",
	    "up head from b");
	is_own(plan(g, "b", "heads", GRAPH_UP), "+c[-b+c] +d[-c+d] => d",
	    "up heads from b");
	is_own(plan(g, "d", "head", GRAPH_UP), "=> d",
	    "up head at head: empty plan");
	is_own(plan(g, "a", "c", GRAPH_UP), "+b[-a+b] +c[-b+c] => c",
	    "up to a revision");
	is_own(plan(g, "c", "b", GRAPH_UP), "=> c",
	    "up to an applied revision: empty plan");
	is_own(plan(g, "", "+1", GRAPH_UP), "+a[+a] => a", "up +1 from base");
	is_own(plan(g, "b", "+2", GRAPH_UP), "+c[-b+c] +d[-c+d] => d",
	    "up +2 from b, exactly to the head");
	is_own(plan(g, "b", "+3", GRAPH_UP),
	    "error: cannot go up +3: only 2 steps are available",
	    "up +3 from b: too far");
	is_own(plan(g, "c", "+2", GRAPH_UP),
	    "error: cannot go up +2: only 1 step is available",
	    "up +2 from c: too far, singular");
	is_own(plan(g, "d", "+1", GRAPH_UP),
	    "error: cannot go up +1: only 0 steps are available",
	    "up +1 at head");
	is_own(plan(g, "a", "+99999999999999999999999", GRAPH_UP),
	    "error: cannot go up +99999999999999999999999: only 3 steps are "
	    "available", "up by a huge N");

	is_own(plan(g, "d", "base", GRAPH_DOWN),
	    "-d[-d+c] -c[-c+b] -b[-b+a] -a[-a] => ", "down base");
	is_own(plan(g, "", "base", GRAPH_DOWN), "=> ",
	    "down base with nothing applied: empty plan");
	is_own(plan(g, "d", "-1", GRAPH_DOWN), "-d[-d+c] => c", "down -1");
	is_own(plan(g, "c", "-3", GRAPH_DOWN),
	    "-c[-c+b] -b[-b+a] -a[-a] => ", "down -3 to base exactly");
	is_own(plan(g, "c", "-4", GRAPH_DOWN),
	    "error: cannot go down -4: only 3 steps are available",
	    "down -4 from c: too far");
	is_own(plan(g, "a", "-2", GRAPH_DOWN),
	    "error: cannot go down -2: only 1 step is available",
	    "down -2 from a: too far, singular");
	is_own(plan(g, "", "-1", GRAPH_DOWN),
	    "error: cannot go down -1: nothing is applied",
	    "down -1 with nothing applied");
	is_own(plan(g, "d", "b", GRAPH_DOWN), "-d[-d+c] -c[-c+b] => b",
	    "down to a revision");
	is_own(plan(g, "d", "d", GRAPH_DOWN), "=> d",
	    "down to the current revision: empty plan");
	is_own(plan(g, "b", "c", GRAPH_DOWN),
	    "error: 'c' is not applied; current: b",
	    "down to an unapplied revision");
	is_own(plan(g, "", "a", GRAPH_DOWN),
	    "error: 'a' is not applied; current: base (nothing applied)",
	    "down to a revision with nothing applied");

	is_own(plan(g, "b", "base", GRAPH_UP),
	    "error: 'base' is a downgrade target; use downgrade", "up base");
	is_own(plan(g, "b", "-1", GRAPH_UP),
	    "error: '-1' is a downgrade target; use downgrade", "up -1");
	is_own(plan(g, "b", "head", GRAPH_DOWN),
	    "error: 'head' is an upgrade target; use upgrade", "down head");
	is_own(plan(g, "b", "heads", GRAPH_DOWN),
	    "error: 'heads' is an upgrade target; use upgrade", "down heads");
	is_own(plan(g, "b", "+1", GRAPH_DOWN),
	    "error: '+1' is an upgrade target; use upgrade", "down +1");
	is_own(plan(g, "b", "+0", GRAPH_UP),
	    "error: invalid relative target '+0': expected +N with N a "
	    "positive number", "up +0");
	is_own(plan(g, "b", "-x", GRAPH_DOWN),
	    "error: invalid relative target '-x': expected -N with N a "
	    "positive number", "down -x");
	is_own(plan(g, "b", "+", GRAPH_UP),
	    "error: invalid relative target '+': expected +N with N a "
	    "positive number", "up +");
	is_own(plan(g, "b", "", GRAPH_UP), "error: no target given",
	    "empty target");
	is_own(plan(g, "b", "zz", GRAPH_UP), "error: unknown revision 'zz'",
	    "up to an unknown revision");

	is_own(plan(g, "b,zz", "head", GRAPH_UP),
	    "error: the version table names revision 'zz', which no migration "
	    "file defines: the database is ahead of this code",
	    "current row unknown to the files");
	is_own(plan(g, "zz", "base", GRAPH_DOWN),
	    "error: the version table names revision 'zz', which no migration "
	    "file defines: the database is ahead of this code",
	    "current row unknown, downgrade too");
	is_own(plan(g, "a,c", "head", GRAPH_UP),
	    "error: the version table is inconsistent: it lists 'a', but it "
	    "also lists or implies 'b', which builds on it",
	    "rows that are not heads are refused");
	is_own(plan(g, "c,c", "head", GRAPH_UP), "+d[-c+d] => d",
	    "a row given twice counts once");
	free(why);
	graph_free(g);
}

/* Order must follow edges, not input, yet keep input order for ties. */
static void
test_order(void)
{
	struct graph	*g;

	g = mk("d<c c<b b<a a");
	is_own(order_of(g), "a b c d", "reversed input: order is topological");
	is_own(plan(g, "", "head", GRAPH_UP),
	    "+a[+a] +b[-a+b] +c[-b+c] +d[-c+d] => d", "reversed input: plan");
	graph_free(g);

	g = mk("a c<a b<a m<b,c");
	is_own(order_of(g), "a c b m", "ties keep input order");
	graph_free(g);

	g = mk("m<b,c c<a b<a a");
	is_own(order_of(g), "a b c m", "parents first in header order");
	graph_free(g);

	g = mk("x y<x|z z");
	is_own(order_of(g), "x z y", "depends_on comes before its dependent");
	graph_free(g);

	g = mk("");
	ok(g != NULL, "an empty set is a valid graph");
	is_int(graph_count(g), 0, "empty: no revisions");
	is_own(heads_of(g), "", "empty: no heads");
	is_own(plan(g, "", "head", GRAPH_UP), "=> ", "empty: up head");
	is_own(plan(g, "", "heads", GRAPH_UP), "=> ", "empty: up heads");
	is_own(plan(g, "", "base", GRAPH_DOWN), "=> ", "empty: down base");
	is_own(plan(g, "", "+1", GRAPH_UP),
	    "error: cannot go up +1: only 0 steps are available",
	    "empty: up +1");
	is_own(plan(g, "a", "head", GRAPH_UP),
	    "error: the version table names revision 'a', which no migration "
	    "file defines: the database is ahead of this code",
	    "empty: any row is unknown");
	is_own(lookup(g, "a"), "error: unknown revision 'a'", "empty: lookup");
	graph_free(g);
}

/* People type prefixes; exact ids, ambiguity and unknowns must be clear. */
static void
test_lookup(void)
{
	struct graph	*g;

	g = mk("ab abc1 abc2 abd9 b x00 x01 x02 x03 x04 x05 x06 x07 x08 x09 "
	    "x10 x11");
	is_own(lookup(g, "ab"), "ab", "exact id wins over longer ones");
	is_own(lookup(g, "abd"), "abd9", "unique prefix");
	is_own(lookup(g, "abc2"), "abc2", "exact id");
	is_own(lookup(g, "abc"), "error: ambiguous revision 'abc': abc1, abc2",
	    "ambiguous prefix names the candidates");
	is_own(lookup(g, "x"), "error: ambiguous revision 'x': x00, x01, x02, "
	    "x03, x04, x05, x06, x07, x08, x09 and 2 more",
	    "ambiguous prefix: ten names, then a count");
	is_own(lookup(g, "x1"), "error: ambiguous revision 'x1': x10, x11",
	    "ambiguous prefix, two");
	is_own(lookup(g, "zz"), "error: unknown revision 'zz'",
	    "unknown revision");
	is_own(lookup(g, "abd90"), "error: unknown revision 'abd90'",
	    "longer than any id");
	is_own(lookup(g, ""), "error: empty revision id", "empty id");
	is_own(lookup(g, "ab:abd9"), "error: unknown revision 'ab:abd9': "
	    "FROM:TO is a range for the SQL of a run (upgrade or downgrade "
	    "--sql FROM:TO); a run takes one target", "a range: for --sql");
	is_own(lookup(g, "head-1"), "error: unknown revision 'head-1': steps "
	    "from a named revision (Alembic's REV+N, head-1) are not a target "
	    "here; +N and -N count from the current revision, or name the "
	    "revision itself", "Alembic's head-1");
	is_own(lookup(g, "abd9+2"), "error: unknown revision 'abd9+2': steps "
	    "from a named revision (Alembic's REV+N, head-1) are not a target "
	    "here; +N and -N count from the current revision, or name the "
	    "revision itself", "Alembic's REV+N");
	is_own(lookup(g, "zz-"), "error: unknown revision 'zz-'",
	    "a trailing sign alone is no step count");
	is_int(graph_lookup(g, "zz", &(size_t){ 0 }, NULL), -1,
	    "lookup without a cause pointer");
	graph_free(g);

	g = mk("a1f3 b7<a1f3 b8<b7");
	is_own(plan(g, "", "b7", GRAPH_UP), "+a1f3[+a1f3] +b7[-a1f3+b7] => b7",
	    "up to an exact id that is also a prefix");
	is_own(plan(g, "", "a1", GRAPH_UP), "+a1f3[+a1f3] => a1f3",
	    "up to a unique prefix");
	is_own(plan(g, "b8", "b", GRAPH_DOWN),
	    "error: ambiguous revision 'b': b7, b8",
	    "down to an ambiguous prefix");
	is_own(plan(g, "b8", "a1", GRAPH_DOWN),
	    "-b8[-b8+b7] -b7[-b7+a1f3] => a1f3", "down to a unique prefix");
	is_own(plan(g, "b8", "q", GRAPH_DOWN), "error: unknown revision 'q'",
	    "down to an unknown revision");
	graph_free(g);
}

/* Branch and merge: rows split and join, relative moves stop at forks. */
static void
test_merge(void)
{
	struct graph	*g = mk("a b1<a c1<a b2<b1 m<b2,c1");
	const size_t	*v;

	is_own(heads_of(g), "m", "merge: one head");
	is_own(order_of(g), "a b1 c1 b2 m", "merge: order");
	is_int(graph_parents(g, 4, &v), 2, "merge has two parents");
	is_str(graph_id(g, v[0]), "b2", "first parent");
	is_str(graph_id(g, v[1]), "c1", "second parent");
	is_own(plan(g, "", "head", GRAPH_UP),
	    "+a[+a] +b1[-a+b1] +c1[+c1] +b2[-b1+b2] +m[-b2-c1+m] => m",
	    "merge: up head, rows through the branch and the merge");
	is_own(plan(g, "a", "+1", GRAPH_UP),
	    "error: '+1' is ambiguous: 'a' has 2 revisions above it (b1, c1): "
	    "name the one to upgrade to", "up +1 at a branch point");
	is_own(plan(g, "b1", "+2", GRAPH_UP),
	    "+c1[+c1] +b2[-b1+b2] +m[-b2-c1+m] => m",
	    "up +2 into a merge takes the other branch along");
	is_own(plan(g, "b2", "+1", GRAPH_UP), "+c1[+c1] +m[-b2-c1+m] => m",
	    "up +1 to the merge");
	is_own(plan(g, "c1", "b2", GRAPH_UP), "+b1[+b1] +b2[-b1+b2] => c1,b2",
	    "up one branch leaves the other row");
	is_own(plan(g, "b2,c1", "+1", GRAPH_UP),
	    "error: '+1' needs a single current revision, but the version "
	    "table has 2 (b2, c1): name a target revision instead",
	    "up +1 with two rows");
	is_own(plan(g, "b2,c1", "-1", GRAPH_DOWN),
	    "error: '-1' needs a single current revision, but the version "
	    "table has 2 (b2, c1): name a target revision instead",
	    "down -1 with two rows");
	is_own(plan(g, "b2,c1", "m", GRAPH_UP), "+m[-b2-c1+m] => m",
	    "up from two rows to the merge");
	is_own(plan(g, "m", "-1", GRAPH_DOWN), "-m[-m+b2+c1] => c1,b2",
	    "down -1 from a merge gives two rows");
	is_own(plan(g, "m", "-2", GRAPH_DOWN),
	    "error: cannot go down -2: after 1 step the version table has 2 "
	    "rows (b2, c1): name the target revision instead",
	    "down -2 through a merge is ambiguous");
	is_own(plan(g, "m", "b1", GRAPH_DOWN),
	    "-m[-m+b2+c1] -b2[-b2+b1] => b1,c1", "down to one branch");
	is_own(plan(g, "m", "c1", GRAPH_DOWN), "-m[-m+b2+c1] => c1,b2",
	    "down to the other branch keeps the first");
	is_own(plan(g, "m", "a", GRAPH_DOWN),
	    "-m[-m+b2+c1] -b2[-b2+b1] -c1[-c1] -b1[-b1+a] => a",
	    "down to the branch point");
	is_own(plan(g, "b1,c1", "b1", GRAPH_DOWN), "=> b1,c1",
	    "down to a current row: empty plan");
	is_own(plan(g, "b2,c1", "base", GRAPH_DOWN),
	    "-b2[-b2+b1] -c1[-c1] -b1[-b1+a] -a[-a] => ",
	    "down base from two rows");
	graph_free(g);
}

/* Several heads (and roots): 'head' refuses, 'heads' takes them all. */
static void
test_heads(void)
{
	struct graph	*g = mk("a b<a c<a");

	is_own(heads_of(g), "b,c", "two heads in input order");
	is_own(plan(g, "", "head", GRAPH_UP),
	    "error: there are 2 heads (b, c): upgrade to 'heads' or add a "
	    "merge revision", "up head with two heads");
	is_own(plan(g, "", "heads", GRAPH_UP), "+a[+a] +b[-a+b] +c[+c] => b,c",
	    "up heads");
	is_own(plan(g, "b", "heads", GRAPH_UP), "+c[+c] => b,c",
	    "up heads from one branch");
	is_own(plan(g, "b,c", "heads", GRAPH_UP), "=> b,c",
	    "up heads at heads: empty plan");
	is_own(plan(g, "b,c", "base", GRAPH_DOWN),
	    "-c[-c] -b[-b+a] -a[-a] => ", "down base from two heads");
	is_own(plan(g, "b", "c", GRAPH_UP), "+c[+c] => b,c",
	    "up to the second head");
	graph_free(g);

	g = mk("r1 r2 s<r2");
	is_own(heads_of(g), "r1,s", "two roots, two heads");
	is_own(plan(g, "", "+1", GRAPH_UP),
	    "error: '+1' is ambiguous: base has 2 revisions above it (r1, r2): "
	    "name the one to upgrade to", "up +1 from base with two roots");
	is_own(plan(g, "r2", "+1", GRAPH_UP), "+s[-r2+s] => s",
	    "up +1 along one tree");
	is_own(plan(g, "", "heads", GRAPH_UP), "+r1[+r1] +r2[+r2] +s[-r2+s] "
	    "=> r1,s", "up heads of a forest");
	is_own(plan(g, "r1,s", "r2", GRAPH_DOWN), "-s[-s+r2] => r1,r2",
	    "down one tree of a forest");
	graph_free(g);
}

/* depends_on orders across branches and counts for rows, as in Alembic. */
static void
test_depends(void)
{
	struct graph	*g = mk("x1 x2<x1 y1 y2<y1|x1");
	const size_t	*v;

	is_own(heads_of(g), "x2,y2", "depends_on does not end a branch");
	is_int(graph_depends(g, 3, &v), 1, "y2 depends on one revision");
	is_str(graph_id(g, v[0]), "x1", "y2 depends on x1");
	is_own(plan(g, "", "y2", GRAPH_UP),
	    "+x1[+x1] +y1[+y1] +y2[-y1-x1+y2] => y2",
	    "dependency applied first; its row goes as Alembic's does");
	is_own(plan(g, "y2", "x2", GRAPH_UP), "+x2[+x2] => x2,y2",
	    "a dependency built on by y2 is no row to delete");
	is_own(plan(g, "y1", "+1", GRAPH_UP), "+x1[+x1] +y2[-y1-x1+y2] => y2",
	    "up +1 takes the dependency along");
	is_own(plan(g, "", "heads", GRAPH_UP),
	    "+x1[+x1] +x2[-x1+x2] +y1[+y1] +y2[-y1+y2] => x2,y2",
	    "up heads across a dependency");
	is_own(plan(g, "x2,y2", "x1", GRAPH_DOWN),
	    "-y2[-y2+y1] -x2[-x2+x1] => x1,y1",
	    "down to a dependency reverts its dependents");
	is_own(plan(g, "x2,y2", "y1", GRAPH_DOWN), "-y2[-y2+y1] => x2,y1",
	    "down one branch leaves the other");
	is_own(plan(g, "x2,y2", "x2", GRAPH_DOWN), "=> x2,y2",
	    "down to a head: nothing builds on it");
	is_own(plan(g, "y2", "-1", GRAPH_DOWN), "-y2[-y2+y1+x1] => x1,y1",
	    "down -1: the dependency becomes a row again");
	is_own(plan(g, "y2", "base", GRAPH_DOWN),
	    "-y2[-y2+y1+x1] -y1[-y1] -x1[-x1] => ", "down base across");
	is_own(plan(g, "x1,y2", "heads", GRAPH_UP),
	    "error: the version table is inconsistent: it lists 'x1', but it "
	    "also lists or implies 'y2', which builds on it",
	    "a table that keeps a dependency row is refused");
	graph_free(g);

	g = mk("a b<a c<b|a d<c|c");
	ok(g != NULL, "depends_on an ancestor, or the parent itself, is fine");
	is_int(graph_depends(g, 2, &v), 1, "depends_on an ancestor is kept");
	is_int(graph_depends(g, 3, &v), 0, "depends_on the parent is folded");
	is_own(plan(g, "", "head", GRAPH_UP),
	    "+a[+a] +b[-a+b] +c[-b+c] +d[-c+d] => d",
	    "depends_on an ancestor changes nothing");
	is_own(plan(g, "d", "a", GRAPH_DOWN),
	    "-d[-d+c] -c[-c+b] -b[-b+a] => a",
	    "down past depends_on an ancestor");
	graph_free(g);

	g = mk("a b<a c<a|b d<c");
	is_own(plan(g, "", "d", GRAPH_UP),
	    "+a[+a] +b[-a+b] +c[-b+c] +d[-c+d] => d",
	    "sibling dependency: a chain of rows");
	is_own(plan(g, "d", "b", GRAPH_DOWN), "-d[-d+c] -c[-c+b] => b",
	    "down to a sibling dependency");
	is_own(plan(g, "b", "+1", GRAPH_UP),
	    "error: cannot go up +1: only 0 steps are available",
	    "a dependent is not a step up");
	graph_free(g);
}

/* Every build error, with its exact text and place. */
static void
test_errors(void)
{
	struct spec	 sp;
	struct errlist	 errs = { NULL, 0 };
	struct graph	*g;

	is_own(build_errors("a b<a a"),
	    "02_a.sql:1: duplicate revision 'a' (first defined at 00_a.sql:1)",
	    "duplicate id");
	is_own(build_errors("a a a"),
	    "01_a.sql:1: duplicate revision 'a' (first defined at "
	    "00_a.sql:1) | "
	    "02_a.sql:1: duplicate revision 'a' (first defined at "
	    "00_a.sql:1)",
	    "every duplicate named");
	is_own(build_errors("a b<zz"),
	    "01_b.sql:2: down_revision 'zz' names no known revision",
	    "unknown parent");
	is_own(build_errors("a b<null"),
	    "01_b.sql:2: down_revision 'null' names no known revision; a root "
	    "revision has 'down_revision: none'", "null for a root: the hint");
	is_own(build_errors("a b<a,null"),
	    "01_b.sql:2: down_revision 'null' names no known revision",
	    "null among parents: no hint");
	is_own(build_errors("a b<a|zz"),
	    "01_b.sql:3: depends_on 'zz' names no known revision",
	    "unknown depends_on");
	is_own(build_errors("a<a"),
	    "00_a.sql:2: revision 'a' lists itself in down_revision",
	    "itself as parent");
	is_own(build_errors("a|a"),
	    "00_a.sql:3: revision 'a' lists itself in depends_on",
	    "itself as dependency");
	is_own(build_errors("a<c b<a c<b"),
	    "00_a.sql:2: revision cycle: a -> c -> b -> a", "a cycle");
	is_own(build_errors("r a<r,c b<a c<b"),
	    "01_a.sql:2: revision cycle: a -> c -> b -> a",
	    "a cycle above a root");
	is_own(build_errors("p q<p|r r<q"),
	    "01_q.sql:3: revision cycle: q -> r -> q",
	    "a cycle through depends_on, at the depends_on line");
	is_own(build_errors("a<b,c b<a c<a"),
	    "00_a.sql:2: revision cycle: a -> b -> a",
	    "one report for one knot of cycles");
	is_own(build_errors("a<b b<a c<d d<c"),
	    "00_a.sql:2: revision cycle: a -> b -> a | "
	    "02_c.sql:2: revision cycle: c -> d -> c",
	    "two cycles, two reports");
	is_own(build_errors("a b<a c<b|d d<c"),
	    "02_c.sql:3: revision cycle: c -> d -> c",
	    "depends_on cycle among valid parents");
	is_own(build_errors("a<a|zz b<zz a c<d d<c|d"),
	    "02_a.sql:1: duplicate revision 'a' (first defined at "
	    "00_a.sql:1) | "
	    "00_a.sql:2: revision 'a' lists itself in down_revision | "
	    "00_a.sql:3: depends_on 'zz' names no known revision | "
	    "01_b.sql:2: down_revision 'zz' names no known revision | "
	    "04_d.sql:3: revision 'd' lists itself in depends_on | "
	    "03_c.sql:2: revision cycle: c -> d -> c",
	    "every problem is reported: ids, references, then cycles");
	is_own(build_errors("a b<a,a c<b|a,a"), "ok",
	    "repeats in one header are left to the file parser");
	is_own(build_errors("r00<r29 r01<r00 r02<r01 r03<r02 r04<r03 r05<r04 "
	    "r06<r05 r07<r06 r08<r07 r09<r08 r10<r09 r11<r10 r12<r11 r13<r12 "
	    "r14<r13 r15<r14 r16<r15 r17<r16 r18<r17 r19<r18 r20<r19 r21<r20 "
	    "r22<r21 r23<r22 r24<r23 r25<r24 r26<r25 r27<r26 r28<r27 r29<r28"),
	    "00_r00.sql:2: revision cycle: r00 -> r29 -> r28 -> r27 -> r26 -> "
	    "r25 -> r24 -> r23 -> r22 -> r21 -> r20 -> r19 -> r18 -> r17 -> "
	    "r16 -> r15 -> r14 -> r13 -> r12 -> ... (11 more) -> r00",
	    "a long cycle is shortened");

	/* Lines of 0 (id from the file name) print as 1; errs may hold more. */
	sp = spec_parse("a a");
	sp.in[0].id_line = 0;
	sp.in[1].id_line = 0;
	errlist_add(&errs, "earlier problem");
	ok(graph_build(sp.in, 1, &g, &errs) == 0 && g != NULL,
	    "earlier entries in errs do not fail a valid build");
	graph_free(g);
	ok(graph_build(sp.in, 2, &g, &errs) == -1 && g == NULL,
	    "a failed build returns -1 and no graph");
	is_int(errs.n, 2, "one error added");
	is_str(errs.n == 2 ? errs.v[1] : "", "01_a.sql:1: duplicate revision "
	    "'a' (first defined at 00_a.sql:1)", "line 0 prints as 1");
	errlist_clear(&errs);
	spec_free(&sp);
}

/* A small deterministic generator: tests must not vary from run to run. */
static uint64_t rnd_state = 88172645463325252ULL;

/* xorshift64: a uniform-enough pick in [0, n). */
static size_t
rnd(size_t n)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return (n == 0 ? 0 : (size_t)(rnd_state % n));
}

/* The applied set that rows stand for: the rows and all they build on. */
static void
closure_of(const struct graph *g, const size_t *rows, size_t n,
    unsigned char *set)
{
	size_t		 i, v, j, np, nd;
	const size_t	*par, *dep;
	int		 more;

	memset(set, 0, graph_count(g));
	for (i = 0; i < n; i++)
		set[rows[i]] = 1;
	do {
		more = 0;
		for (v = 0; v < graph_count(g); v++) {
			if (!set[v])
				continue;
			np = graph_parents(g, v, &par);
			nd = graph_depends(g, v, &dep);
			for (j = 0; j < np; j++)
				more |= !set[par[j]], set[par[j]] = 1;
			for (j = 0; j < nd; j++)
				more |= !set[dep[j]], set[dep[j]] = 1;
		}
	} while (more);
}

/* Everything that builds on t, directly or not, t included. */
static void
descendants_of(const struct graph *g, size_t t, unsigned char *set)
{
	size_t		 v, j, np, nd;
	const size_t	*par, *dep;
	int		 more;

	memset(set, 0, graph_count(g));
	set[t] = 1;
	do {
		more = 0;
		for (v = 0; v < graph_count(g); v++) {
			if (set[v])
				continue;
			np = graph_parents(g, v, &par);
			nd = graph_depends(g, v, &dep);
			for (j = 0; j < np + nd; j++) {
				if (set[j < np ? par[j] : dep[j - np]]) {
					set[v] = 1;
					more = 1;
					break;
				}
			}
		}
	} while (more);
}

/* Checks a plan's outcome against what its target promises, on sets. */
static size_t
promise(const struct graph *g, const char *target, enum graph_dir dir,
    const unsigned char *before, const unsigned char *after)
{
	unsigned char	 rel[64];
	size_t		 n = graph_count(g), v, t, bad = 0;

	if (strcmp(target, "base") == 0) {
		for (v = 0; v < n; v++)
			bad += after[v];
		return (bad);
	}
	if (strcmp(target, "head") == 0 || strcmp(target, "heads") == 0) {
		for (v = 0; v < n; v++)
			bad += !after[v];
		return (bad);
	}
	if (target[0] == '+' || target[0] == '-' ||
	    graph_lookup(g, target, &t, NULL) != 0) {
		/* relative: one way only */
		for (v = 0; v < n; v++) {
			if (dir == GRAPH_UP)
				bad += before[v] && !after[v];
			else
				bad += !before[v] && after[v];
		}
		return (bad);
	}
	bad += !after[t];
	if (dir == GRAPH_UP) {
		closure_of(g, &t, 1, rel);	/* only what t needs comes */
		for (v = 0; v < n; v++)
			bad += (before[v] && !after[v]) ||
			    (!before[v] && after[v] && !rel[v]);
	} else {
		descendants_of(g, t, rel);	/* what builds on t goes */
		for (v = 0; v < n; v++)
			bad += (!before[v] && after[v]) ||
			    (before[v] && (after[v] != (!rel[v] || v == t)));
	}
	return (bad);
}

/* Random graphs, random walks between states, every plan replayed. */
static void
test_random(void)
{
	static const char	*targets[] = { "head", "heads", "base", "+1",
				    "+2", "+3", "-1", "-2", "-3" };
	char			 text[8192], tok[64], *cause, *why, tbuf[16];
	const char		*cur[64], *target;
	size_t			 round, n, i, j, k, np, v, nr, idx, moves = 0;
	size_t			 fails = 0, errors = 0, pos[64], rows[64];
	size_t			 perm[64];
	unsigned char		 before[64], after[64];
	const size_t		*o, *par, *dep;
	struct graph		*g;
	struct graph_plan	 p;
	enum graph_dir		 dir;

	for (round = 0; round < 300; round++) {
		n = 2 + rnd(40);
		for (i = 0; i < n; i++)
			perm[i] = i;
		for (i = n; i > 1 && round % 2 == 1; i--) {
			j = rnd(i);
			k = perm[i - 1], perm[i - 1] = perm[j], perm[j] = k;
		}
		/* Revision i may build on revisions < i only: a DAG. */
		text[0] = '\0';
		for (k = 0; k < n; k++) {
			i = perm[k];
			snprintf(tok, sizeof tok, "%c%zx", "abcd"[i % 4], i);
			strcat(text, tok);
			np = i == 0 ? 0 : rnd(10) < 1 ? 0 : rnd(10) < 2 ? 2 : 1;
			for (j = 0; j < np; j++) {
				v = rnd(i);
				snprintf(tok, sizeof tok, "%c%c%zx", j ? ',' :
				    '<', "abcd"[v % 4], v);
				strcat(text, tok);
			}
			if (i > 1 && rnd(10) < 3) {
				v = rnd(i);
				snprintf(tok, sizeof tok, "|%c%zx",
				    "abcd"[v % 4], v);
				strcat(text, tok);
			}
			strcat(text, " ");
		}
		if ((g = mk(text)) == NULL) {
			fails++;
			continue;
		}
		/* The order puts everything after what it builds on. */
		graph_order(g, &o);
		for (i = 0; i < n; i++)
			pos[o[i]] = i;
		for (v = 0; v < n; v++) {
			np = graph_parents(g, v, &par);
			for (j = 0; j < np; j++)
				fails += pos[par[j]] > pos[v];
			np = graph_depends(g, v, &dep);
			for (j = 0; j < np; j++)
				fails += pos[dep[j]] > pos[v];
		}

		nr = 0;		/* start from base, then wander */
		for (k = 0; k < 25; k++) {
			dir = rnd(2) ? GRAPH_UP : GRAPH_DOWN;
			if (rnd(3) == 0)
				target = targets[rnd(nitems(targets))];
			else {
				idx = rnd(n);
				snprintf(tbuf, sizeof tbuf, "%s",
				    graph_id(g, idx));
				if (rnd(4) == 0)
					tbuf[1] = '\0';	/* maybe ambiguous */
				target = tbuf;
			}
			for (i = 0; i < nr; i++)
				cur[i] = graph_id(g, rows[i]);
			if (graph_plan(g, cur, nr, target, dir, &p,
			    &cause) != 0) {
				errors++;
				free(cause);
				continue;
			}
			if ((why = replay(g, cur, nr, &p)) != NULL) {
				printf("# %s: %s %s from %zu rows: %s\n",
				    text, dir == GRAPH_UP ? "up" : "down",
				    target, nr, why);
				free(why);
				fails++;
			}
			closure_of(g, rows, nr, before);
			closure_of(g, p.rows_after, p.n_rows_after, after);
			if (promise(g, target, dir, before, after) != 0) {
				printf("# %s: %s %s: outcome broken\n", text,
				    dir == GRAPH_UP ? "up" : "down", target);
				fails++;
			}
			nr = p.n_rows_after;
			memcpy(rows, p.rows_after, nr * sizeof *rows);
			graph_plan_clear(&p);
			moves++;
		}
		graph_free(g);
	}
	is_int(fails, 0, "random graphs: orders, plans and replays hold");
	ok(moves > 2000, "random graphs: %zu plans made", moves);
	ok(errors > 500, "random graphs: %zu targets refused", errors);
}

/* Wall time for the figures printed as TAP comments. */
static double
now(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
}

/*
 * Generated inputs for the scale tests.  Shapes: "chain" (each revision on
 * the previous one), "rchain" (the same, listed newest first), "wide" (a
 * root, 100 long branches whose every tenth revision depends on the same
 * depth of the branch before, and one merge of them all).
 */
struct big {
	struct graph_input	*in;
	char			*ids;	/* fixed-width ids, 8 bytes each */
	const char		**par;
	const char		**dep;
	size_t			 n;
};

/* Fills b with n generated revisions of the given shape. */
static void
big_make(struct big *b, const char *shape, size_t n)
{
	size_t	 i, j, k, br, len, nb = 100;

	memset(b, 0, sizeof *b);
	if (strcmp(shape, "wide") == 0) {
		len = (n - 2) / nb;
		n = 2 + len * nb;
	}
	b->n = n;
	b->in = xcalloc(n, sizeof *b->in);
	b->ids = xcalloc(n, 8);
	b->par = xcalloc(n + nb, sizeof *b->par);
	b->dep = xcalloc(n, sizeof *b->dep);
	for (i = 0; i < n; i++) {
		snprintf(b->ids + i * 8, 8, "r%06x", (unsigned)(i & 0xffffff));
		b->in[i].id = b->ids + i * 8;
		b->in[i].file = "gen.sql";
	}
	if (strcmp(shape, "wide") != 0) {
		for (i = 1; i < n; i++) {
			b->par[i] = b->ids + (i - 1) * 8;
			b->in[i].parents = &b->par[i];
			b->in[i].n_parents = 1;
		}
		if (strcmp(shape, "rchain") == 0) {
			for (i = 0; i < n / 2; i++) {
				struct graph_input t = b->in[i];

				b->in[i] = b->in[n - 1 - i];
				b->in[n - 1 - i] = t;
			}
		}
		return;
	}
	/* wide: 0 is the root, branch br holds 1 + br * len .. + len - 1 */
	len = (n - 2) / nb;
	for (br = 0; br < nb; br++) {
		for (k = 0; k < len; k++) {
			i = 1 + br * len + k;
			b->par[i] = b->ids + (k == 0 ? 0 : i - 1) * 8;
			b->in[i].parents = &b->par[i];
			b->in[i].n_parents = 1;
			if (br > 0 && k % 10 == 5) {
				b->dep[i] = b->ids + (i - len) * 8;
				b->in[i].depends = &b->dep[i];
				b->in[i].n_depends = 1;
			}
		}
	}
	i = n - 1;
	for (j = 0; j < nb; j++)
		b->par[n + j] = b->ids + (1 + j * len + len - 1) * 8;
	b->in[i].parents = &b->par[n];
	b->in[i].n_parents = nb;
}

/* The generated inputs are plain arrays. */
static void
big_free(struct big *b)
{
	free(b->in);
	free(b->ids);
	free(b->par);
	free(b->dep);
}

/* Replays a big plan cheaply: row changes possible, needs met, final rows. */
static int
big_check(const struct graph *g, const char *const *cur, size_t ncur,
    const struct graph_plan *p, int up)
{
	size_t			 n = graph_count(g), i, j, np, nd, nrows = 0;
	unsigned char		*applied = xcalloc(n, 1), *row = xcalloc(n, 1);
	const size_t		*par, *dep;
	const struct graph_step	*st;
	int			 bad = 0;

	if (up) {
		for (i = 0; i < ncur; i++) {
			row[graph_find(g, cur[i])] = 1;
			nrows++;
		}
	} else {
		memset(applied, 1, n);
		for (i = 0; i < ncur; i++) {
			row[graph_find(g, cur[i])] = 1;
			nrows++;
		}
	}
	for (i = 0; i < p->n_steps; i++) {
		st = &p->steps[i];
		np = graph_parents(g, st->idx, &par);
		nd = graph_depends(g, st->idx, &dep);
		if (up) {
			for (j = 0; j < np; j++)
				bad |= !applied[par[j]];
			for (j = 0; j < nd; j++)
				bad |= !applied[dep[j]];
			bad |= applied[st->idx];
			applied[st->idx] = 1;
		} else {
			bad |= !applied[st->idx];
			applied[st->idx] = 0;
		}
		for (j = 0; j < st->n_row_del; j++) {
			bad |= !row[st->row_del[j]];
			row[st->row_del[j]] = 0;
			nrows--;
		}
		for (j = 0; j < st->n_row_ins; j++) {
			bad |= row[st->row_ins[j]];
			row[st->row_ins[j]] = 1;
			nrows++;
		}
	}
	bad |= nrows != p->n_rows_after;
	for (i = 0; i < p->n_rows_after; i++)
		bad |= !row[p->rows_after[i]];
	free(applied);
	free(row);
	return (!bad);
}

/* 100 000 revisions: correctness at depth, and the time it takes. */
static void
test_scale(void)
{
	static const char	*shapes[] = { "chain", "rchain", "wide" };
	struct big		 b;
	struct graph		*g;
	struct errlist		 errs = { NULL, 0 };
	struct graph_plan	 p;
	const size_t		*o;
	size_t			*heads, nh, i, s, n;
	const char		*cur[1];
	char			*cause, minus[32];
	double			 t0;
	int			 orderok;

	for (s = 0; s < nitems(shapes); s++) {
		big_make(&b, shapes[s], 100000);
		n = b.n;
		t0 = now();
		ok(graph_build(b.in, n, &g, &errs) == 0, "%s %zu: builds",
		    shapes[s], n);
		printf("# build %zu (%s): %.3f s\n", n, shapes[s], now() - t0);
		if (g == NULL)
			continue;
		graph_order(g, &o);
		orderok = 1;
		if (strcmp(shapes[s], "wide") != 0) {
			for (i = 0; i < n; i++)
				orderok &= strcmp(graph_id(g, o[i]),
				    b.ids + i * 8) == 0;
		}
		ok(orderok, "%s: order is the chain's", shapes[s]);

		nh = graph_heads(g, &heads);
		is_int(nh, 1, "%s: one head", shapes[s]);
		t0 = now();
		ok(graph_plan(g, NULL, 0, "head", GRAPH_UP, &p, &cause) == 0,
		    "%s: plan base -> head", shapes[s]);
		printf("# plan base->head %zu (%s): %.3f s\n", n, shapes[s],
		    now() - t0);
		is_int(p.n_steps, n, "%s: every revision applied", shapes[s]);
		ok(big_check(g, NULL, 0, &p, 1) && p.n_rows_after == 1 &&
		    p.rows_after[0] == heads[0], "%s: rows replay to the head",
		    shapes[s]);
		graph_plan_clear(&p);

		cur[0] = graph_id(g, heads[0]);
		t0 = now();
		ok(graph_plan(g, cur, 1, "base", GRAPH_DOWN, &p, &cause) == 0,
		    "%s: plan head -> base", shapes[s]);
		printf("# plan head->base %zu (%s): %.3f s\n", n, shapes[s],
		    now() - t0);
		is_int(p.n_steps, n, "%s: every revision reverted", shapes[s]);
		ok(big_check(g, cur, 1, &p, 0) && p.n_rows_after == 0,
		    "%s: rows replay to empty", shapes[s]);
		graph_plan_clear(&p);

		if (strcmp(shapes[s], "wide") != 0) {
			snprintf(minus, sizeof minus, "-%zu", n);
			t0 = now();
			ok(graph_plan(g, cur, 1, minus, GRAPH_DOWN, &p,
			    &cause) == 0 && p.n_steps == n &&
			    big_check(g, cur, 1, &p, 0),
			    "%s: %s steps down", shapes[s], minus);
			printf("# plan %s %zu (%s): %.3f s\n", minus, n,
			    shapes[s], now() - t0);
			graph_plan_clear(&p);
			minus[0] = '+';
			ok(graph_plan(g, NULL, 0, minus, GRAPH_UP, &p,
			    &cause) == 0 && p.n_steps == n &&
			    big_check(g, NULL, 0, &p, 1),
			    "%s: %s steps up", shapes[s], minus);
			graph_plan_clear(&p);
		} else {
			/* down to the root: everything but the root goes */
			t0 = now();
			ok(graph_plan(g, cur, 1, graph_id(g, 0), GRAPH_DOWN,
			    &p, &cause) == 0 && p.n_steps == n - 1 &&
			    big_check(g, cur, 1, &p, 0) &&
			    p.n_rows_after == 1 && p.rows_after[0] == 0,
			    "wide: down to the root");
			printf("# plan head->root %zu (wide): %.3f s\n", n,
			    now() - t0);
			graph_plan_clear(&p);
		}
		/* stamp: the head down to the root, and back up */
		{
			struct graph_stamp	 st;
			const char		*root[1] = { graph_id(g, 0) };
			const char		*hs[1] = { "heads" };

			t0 = now();
			ok(graph_stamp(g, cur, 1, root, 1, 0, &st, &cause) ==
			    0 && st.n_rows == 1 && st.rows[0] == 0,
			    "%s: stamp head -> root", shapes[s]);
			printf("# stamp head->root %zu (%s): %.3f s\n", n,
			    shapes[s], now() - t0);
			graph_stamp_clear(&st);
			t0 = now();
			ok(graph_stamp(g, root, 1, hs, 1, 0, &st, &cause) ==
			    0 && st.n_rows == 1 && st.rows[0] == heads[0],
			    "%s: stamp root -> heads", shapes[s]);
			printf("# stamp root->heads %zu (%s): %.3f s\n", n,
			    shapes[s], now() - t0);
			graph_stamp_clear(&st);
		}
		free(heads);
		graph_free(g);
		big_free(&b);
	}

	/* A cycle 100 000 long is found without recursion, and named short. */
	big_make(&b, "chain", 100000);
	b.par[0] = b.ids + (b.n - 1) * 8;
	b.in[0].parents = &b.par[0];
	b.in[0].n_parents = 1;
	t0 = now();
	ok(graph_build(b.in, b.n, &g, &errs) == -1 && errs.n == 1 &&
	    strstr(errs.v[0], "cycle: r000000 -> r01869f -> ") != NULL &&
	    strstr(errs.v[0], "(99981 more) -> r000000") != NULL,
	    "a 100 000 long cycle: one short report");
	printf("# build %zu (cycle): %.3f s\n", b.n, now() - t0);
	errlist_clear(&errs);
	big_free(&b);
}

/* Runs every group; the exit status says whether all passed. */
static int
cmp_str(const void *a, const void *b)
{
	return (strcmp(*(const char *const *)a, *(const char *const *)b));
}

/*
 * Stamps rows ("a,b") with targets ("x y"): the rows after, sorted by id
 * and joined by ",", or "ERR: why" ("AHEAD: why" for an unknown row), or
 * "BAD: ..." when the answer does not hold together.
 */
static char *
stamp_str(const struct graph *g, const char *rows, const char *targets,
    int purge)
{
	struct graph_stamp	 out;
	const char *const	*cur, *const *tg;
	const char		**sorted;
	size_t			 nc = 0, nt = 0, i;
	char			*cause = NULL, *r, *t;
	int			 rv;

	cur = split(rows, strlen(rows), &nc);
	t = xstrdup(targets);
	for (i = 0; t[i] != '\0'; i++)
		t[i] = t[i] == ' ' ? ',' : t[i];
	tg = split(t, strlen(t), &nt);
	free(t);
	rv = graph_stamp(g, cur, nc, tg, nt, purge, &out, &cause);
	if (rv != 0) {
		r = rv == -1 && cause != NULL ? xprintf("ERR: %s", cause) :
		    rv == GRAPH_STAMP_UNKNOWN_ROW && cause != NULL ?
		    xprintf("AHEAD: %s", cause) : xprintf("BAD: rv %d", rv);
		if (out.rows != NULL || out.n_rows != 0)
			r = xprintf("BAD: rows on failure");
	} else {
		sorted = xcalloc(out.n_rows + 1, sizeof *sorted);
		for (i = 0; i < out.n_rows; i++)
			sorted[i] = graph_id(g, out.rows[i]);
		qsort(sorted, out.n_rows, sizeof *sorted, cmp_str);
		r = xstrdup("");
		for (i = 0; i < out.n_rows; i++) {
			t = xprintf("%s%s%s", r, i ? "," : "", sorted[i]);
			free(r);
			r = t;
		}
		for (i = 1; i < out.n_rows; i++) {
			if (out.rows[i - 1] >= out.rows[i]) {
				free(r);
				r = xstrdup("BAD: rows not in index order");
				break;
			}
		}
		free(sorted);
	}
	free(cause);
	graph_stamp_clear(&out);
	for (i = 0; i < nc; i++)
		free((char *)cur[i]);
	for (i = 0; i < nt; i++)
		free((char *)tg[i]);
	free((void *)cur);
	free((void *)tg);
	return (r);
}

/* One stamp case: the rows after, or the start of the error. */
static void
stamp_is(const struct graph *g, const char *rows, const char *targets,
    int purge, const char *want)
{
	char	*got = stamp_str(g, rows, targets, purge);
	int	 good;

	if (strncmp(want, "ERR", 3) == 0 || strncmp(want, "AHEAD", 5) == 0)
		good = strncmp(got, want, strlen(want)) == 0;
	else
		good = strcmp(got, want) == 0;
	ok(good, "stamp {%s} %s%s: %s", rows, targets, purge ? " --purge" :
	    "", want);
	if (!good)
		printf("#   got: %s\n", got);
	free(got);
}

/*
 * Stamp as Alembic's: each expected table is what Alembic 1.8.1's
 * _stamp_revs and HeadMaintainer leave on the same graph and rows
 * (tests/fixtures/alembic_stamp, compared live in test_alembic_stamp.py).
 */
static void
test_stamp(void)
{
	struct graph	*g, *g1;
	char		*s;

	g = mk("r1 r2<r1 b1<r2 b2<b1 c1<r2 c2<c1 m1<b2,c2 m2<m1 d1<r2 "
	    "d2<d1|z1 x1 x2<x1|c1 z1");
	ok(g != NULL, "stamp: the fixture graph builds");
	/* one head, up, down and sideways */
	stamp_is(g, "", "b1", 0, "b1");
	stamp_is(g, "b1", "m2", 0, "m2");
	stamp_is(g, "m2", "c1", 0, "c1");
	stamp_is(g, "m2", "m2", 0, "m2");
	/* two heads: a revision on one branch keeps the other */
	stamp_is(g, "b2,d1", "b1", 0, "b1,d1");
	stamp_is(g, "m2,d2", "d1", 0, "d1,m2");
	stamp_is(g, "b1,c1", "b2", 0, "b2,c1");
	/* below the branch point, and the merge */
	stamp_is(g, "b1,c1", "r2", 0, "r2");
	stamp_is(g, "m2,d2,x2", "r2", 0, "r2");
	stamp_is(g, "b1,c1", "m1", 0, "m1");
	/* a branch the table does not show */
	stamp_is(g, "d2", "x1", 0, "d2,x1");
	stamp_is(g, "x2", "z1", 0, "x2,z1");
	stamp_is(g, "d2,x2", "c2", 0, "c2,d2,x2");
	/* depends_on counts as lineage both ways */
	stamp_is(g, "c1", "x2", 0, "x2");
	stamp_is(g, "d2", "z1", 0, "z1");
	stamp_is(g, "z1", "d2", 0, "d2");
	/* several at once */
	stamp_is(g, "b1,c1", "b2 c2", 0, "b2,c2");
	stamp_is(g, "b2,c2", "m1 d1", 0, "d1,m1");
	stamp_is(g, "", "z1 d1", 0, "d1,z1");
	stamp_is(g, "b1", "b1 b1", 0, "b1");
	/* base, heads, head */
	stamp_is(g, "r1", "base", 0, "");
	stamp_is(g, "m2,d2,x2", "base", 0, "");
	stamp_is(g, "b1,d1", "base b2", 0, "b2");
	stamp_is(g, "", "", 0, "");
	stamp_is(g, "", "heads", 0, "d2,m2,x2");
	stamp_is(g, "m2,x2", "heads", 0, "d2,m2,x2");
	stamp_is(g, "r2", "heads", 0, "d2,m2,x2");
	stamp_is(g, "d2", "heads", 0, "d2,m2,x2");
	stamp_is(g, "m2,d2", "head", 0, "ERR: there are 4 heads (m2, d2, "
	    "x2, z1): stamp 'heads', or name the revisions");
	/* --purge: the rows read do not count, unknown ones neither */
	stamp_is(g, "b1,d1", "b2", 1, "b2");
	stamp_is(g, "f00d,m2", "b2", 0, "AHEAD: the version table names "
	    "revision 'f00d', which no migration file defines: stamp "
	    "--purge replaces the whole table");
	stamp_is(g, "f00d,m2", "b2", 1, "b2");
	stamp_is(g, "f00d", "base", 1, "");
	stamp_is(g, "f00d", "nosuch", 0, "ERR: unknown revision 'nosuch'");
	/* where Alembic raises, migd refuses */
	stamp_is(g, "b2,d2", "b1 d1", 0, "ERR: cannot stamp d1 together "
	    "with b1: stamping b1 replaced b2 already, and d1 would replace "
	    "it again (Alembic's stamp fails here too); stamp them one at a "
	    "time");
	stamp_is(g, "b2,c2", "b1 c1", 0, "ERR: cannot stamp c1 together");
	stamp_is(g, "", "b1 b1", 0, "ERR: cannot stamp b1: stamping b1 put "
	    "it in the version table already (Alembic's stamp fails here "
	    "too); name it once");
	stamp_is(g, "b1,c1", "b2 b2", 0, "ERR: cannot stamp b2: stamping "
	    "b2 put it");
	stamp_is(g, "b1,d1", "b2 r2", 0, "ERR: cannot stamp r2 together "
	    "with b2: stamping b2 replaced b1 already");
	stamp_is(g, "r1,b1", "r2", 0, "ERR: cannot stamp r2: the version "
	    "table has b1 above it and r1 below it");
	stamp_is(g, "r1,b1", "b2", 0, "b2");
	stamp_is(g, "x1,c2", "x2", 0, "c2,x2");
	/* where Alembic would write a table that loses or contradicts */
	stamp_is(g, "m2,d1", "heads", 0, "ERR: cannot stamp these targets "
	    "together: the version table would lose m2, which no revision "
	    "stamped replaces (Alembic's stamp of several heads or targets "
	    "drops it); stamp one revision at a time");
	stamp_is(g, "m2,d1", "m2 d2 x2", 0, "ERR: cannot stamp these targets "
	    "together: the version table would lose m2");
	stamp_is(g, "m2,d1", "d2", 0, "d2,m2");
	stamp_is(g, "b1,c1", "c1 b2", 0, "ERR: cannot stamp these targets "
	    "together: the version table would lose c1");
	stamp_is(g, "b1,d1", "r2 b2", 0, "ERR: cannot stamp: the version "
	    "table would list both r2 and b2");
	stamp_is(g, "", "x2 x1", 0, "ERR: cannot stamp: the version table "
	    "would list both x1 and x2, which builds on it (Alembic would "
	    "write both rows); name only x2");
	/* a table inconsistent already: no target mends it, --purge does */
	stamp_is(g, "r1,b1", "z1", 0, "ERR: cannot stamp: the version table "
	    "already lists both r1 and b1, which builds on it (it is "
	    "inconsistent, and Alembic's stamp would leave it so); stamp "
	    "--purge b1 replaces the whole table");
	stamp_is(g, "r1,b1", "b1", 0, "ERR: cannot stamp: the version table "
	    "already lists both r1 and b1");
	stamp_is(g, "r1,b1", "b1", 1, "b1");
	/* targets that are not revisions */
	stamp_is(g, "", "nosuch", 0, "ERR: unknown revision 'nosuch'");
	stamp_is(g, "", "m", 0, "ERR: ambiguous revision 'm': m1, m2");
	stamp_is(g, "", "z", 0, "z1");
	stamp_is(g, "x2", "-1", 0, "ERR: '-1': stamp takes revisions, head, "
	    "heads or base, not a relative step");
	/* LABEL@head is resolved before the graph (revset_stamp) */
	stamp_is(g, "", "m@head", 0, "ERR: unknown revision 'm@head'");
	/* a failed stamp leaves nothing behind (checked by stamp_str) */
	s = stamp_str(g, "b2,d2", "b1 d1", 0);
	ok(strncmp(s, "ERR", 3) == 0, "stamp: a refusal gives no rows");
	free(s);

	g1 = mk("a b<a c<b");
	stamp_is(g1, "a", "head", 0, "c");
	stamp_is(g1, "c", "heads", 0, "c");
	stamp_is(g1, "c", "a", 0, "a");
	graph_free(g1);
	g1 = mk("");
	stamp_is(g1, "", "heads", 0, "");
	stamp_is(g1, "", "head", 0, "");
	graph_free(g1);
	graph_free(g);
}

int
main(void)
{
	test_chain();
	test_order();
	test_lookup();
	test_merge();
	test_heads();
	test_depends();
	test_newest();
	test_stamp();
	test_skipped();
	test_errors();
	test_random();
	test_scale();
	return (done_testing());
}
