/*
 * libFuzzer target: the bytes describe a small revision graph (ids from a
 * tiny alphabet, so prefixes collide and names repeat; parents, depends_on
 * and version-table rows picked by bytes).  graph_build must fail exactly
 * when the set has a duplicate, an unknown or self reference or a cycle (one
 * message per cycle group); on a valid graph every target is planned both
 * ways and each plan is replayed against graph.h's model: each step is
 * allowed, and after it the version table is exactly the applied revisions
 * that no applied revision builds on.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "graph.h"
#include "util.h"
#include "fuzz_check.h"

#define MAXREV	12
#define MAXREF	3

static const char *ids[] = {
	"a", "b", "c", "d", "e", "f", "ab", "abc", "a1", "a2", "b1", "ba",
	"x", "y", "z", "0001", "0002", "00", "1", "2", "c-1", "c.2", "ffff",
	"f0"
};

/* Bytes in order; zeros once they run out. */
struct reader {
	const uint8_t	*p;
	size_t		 n;
};

static unsigned
next(struct reader *r)
{
	if (r->n == 0)
		return (0);
	r->n--;
	return (*r->p++);
}

struct model {
	size_t		 n;
	unsigned char	 need[MAXREV][MAXREV];	/* v builds on w */
	unsigned char	 par[MAXREV][MAXREV];	/* w is a parent of v */
};

/* Applied revisions that no applied revision builds on. */
static void
model_rows(const struct model *m, const unsigned char *a, unsigned char *rows)
{
	size_t	 v, w;

	for (v = 0; v < m->n; v++) {
		rows[v] = a[v];
		for (w = 0; w < m->n && rows[v]; w++) {
			if (a[w] && m->need[w][v])
				rows[v] = 0;
		}
	}
}

/* Replays a plan from the version table current (indices, repeats ok). */
static void
replay(const struct graph *g, const struct model *m, const size_t *cur,
    size_t ncur, const char *target, enum graph_dir dir,
    const struct graph_plan *p)
{
	unsigned char	 a[MAXREV] = { 0 }, t[MAXREV] = { 0 }, rows[MAXREV];
	size_t		 i, j, v, w, k, n = m->n, ti;
	int		 changed;

	for (i = 0; i < ncur; i++)
		a[cur[i]] = t[cur[i]] = 1;
	do {	/* the applied set: everything the rows build on */
		changed = 0;
		for (v = 0; v < n; v++) {
			for (w = 0; a[v] && w < n; w++) {
				if (m->need[v][w] && !a[w])
					a[w] = changed = 1;
			}
		}
	} while (changed);
	model_rows(m, a, rows);
	FUZZ_CHECK(memcmp(rows, t, n) == 0, "plan %s accepted an "
	    "inconsistent version table", target);

	for (i = 0; i < p->n_steps; i++) {
		const struct graph_step *st = &p->steps[i];

		v = st->idx;
		FUZZ_CHECK(v < n, "step %zu index %zu", i, v);
		FUZZ_CHECK(st->dir == dir, "%s: step %zu goes the other way",
		    target, i);
		if (dir == GRAPH_UP) {
			FUZZ_CHECK(!a[v], "%s: step %zu applies applied '%s'",
			    target, i, graph_id(g, v));
			for (w = 0; w < n; w++)
				FUZZ_CHECK(!m->need[v][w] || a[w], "%s: step "
				    "%zu applies '%s' before '%s'", target, i,
				    graph_id(g, v), graph_id(g, w));
			a[v] = 1;
		} else {
			FUZZ_CHECK(a[v], "%s: step %zu reverts unapplied '%s'",
			    target, i, graph_id(g, v));
			for (w = 0; w < n; w++)
				FUZZ_CHECK(!a[w] || !m->need[w][v], "%s: step "
				    "%zu reverts '%s' under applied '%s'",
				    target, i, graph_id(g, v), graph_id(g, w));
			a[v] = 0;
		}
		FUZZ_CHECK((st->n_row_del == 0) == (st->row_del == NULL) &&
		    (st->n_row_ins == 0) == (st->row_ins == NULL),
		    "%s: step %zu row arrays", target, i);
		for (k = 0; k < st->n_row_del; k++) {
			w = st->row_del[k];
			FUZZ_CHECK(w < n && t[w], "%s: step %zu deletes a row "
			    "that is not there", target, i);
			t[w] = 0;
		}
		for (k = 0; k < st->n_row_ins; k++) {
			w = st->row_ins[k];
			FUZZ_CHECK(w < n && !t[w], "%s: step %zu inserts a row "
			    "that is there", target, i);
			t[w] = 1;
		}
		model_rows(m, a, rows);
		FUZZ_CHECK(memcmp(rows, t, n) == 0, "%s: after step %zu "
		    "(%s '%s') the version table is not the model's", target,
		    i, dir == GRAPH_UP ? "up" : "down", graph_id(g, v));
	}
	for (j = 0, ti = 0; j < n; j++)
		ti += t[j];
	FUZZ_CHECK(ti == p->n_rows_after, "%s: rows_after has %zu, replay %zu",
	    target, p->n_rows_after, ti);
	for (j = 0; j < p->n_rows_after; j++) {
		FUZZ_CHECK(p->rows_after[j] < n && t[p->rows_after[j]] &&
		    (j == 0 || p->rows_after[j - 1] < p->rows_after[j]),
		    "%s: rows_after differs from the replay", target);
	}

	/* What the target means, at the end. */
	if (strcmp(target, "base") == 0) {
		for (v = 0; v < n; v++)
			FUZZ_CHECK(!a[v], "base leaves '%s'", graph_id(g, v));
	} else if (strcmp(target, "heads") == 0 ||
	    strcmp(target, "head") == 0) {
		for (v = 0; v < n; v++) {
			for (w = 0; w < n && !m->par[w][v]; w++)
				;
			FUZZ_CHECK(w < n || a[v], "%s leaves head '%s' "
			    "unapplied", target, graph_id(g, v));
		}
	} else if (target[0] == '-') {
		FUZZ_CHECK(p->n_steps == strtoul(target + 1, NULL, 10),
		    "%s gives %zu steps", target, p->n_steps);
	} else if (target[0] == '+') {
		FUZZ_CHECK(p->n_steps >= strtoul(target + 1, NULL, 10),
		    "%s gives %zu steps", target, p->n_steps);
	} else if (graph_lookup(g, target, &v, NULL) == 0) {
		FUZZ_CHECK(a[v], "%s: target not applied at the end", target);
		if (dir == GRAPH_DOWN) {
			for (w = 0; w < n; w++)
				FUZZ_CHECK(!a[w] || !m->need[w][v], "%s: "
				    "'%s' still builds on it", target,
				    graph_id(g, w));
		}
	}
}

/* Static checks of a built graph against the model. */
static void
check_graph(const struct graph *g, const struct model *m, const char **rev)
{
	const size_t	*order, *e;
	size_t		*heads, nh, i, j, v, w, pos[MAXREV], k;
	char		*cause;

	FUZZ_CHECK(graph_count(g) == m->n, "count");
	FUZZ_CHECK(graph_order(g, &order) == m->n, "order size");
	for (i = 0; i < m->n; i++)
		pos[i] = SIZE_MAX;
	for (i = 0; i < m->n; i++) {
		FUZZ_CHECK(order[i] < m->n && pos[order[i]] == SIZE_MAX,
		    "order is not a permutation");
		pos[order[i]] = i;
	}
	for (v = 0; v < m->n; v++) {
		FUZZ_CHECK(strcmp(graph_id(g, v), rev[v]) == 0, "id %zu", v);
		FUZZ_CHECK(graph_find(g, rev[v]) == (ssize_t)v, "find %s",
		    rev[v]);
		FUZZ_CHECK(graph_lookup(g, rev[v], &i, NULL) == 0 && i == v,
		    "lookup %s", rev[v]);
		for (w = 0; w < m->n; w++)
			FUZZ_CHECK(!m->need[v][w] || pos[w] < pos[v],
			    "order puts '%s' before '%s', which it builds on",
			    rev[v], rev[w]);
		k = graph_parents(g, v, &e);
		for (i = 0; i < k; i++)
			FUZZ_CHECK(m->par[v][e[i]], "parent edge");
		j = graph_depends(g, v, &e);
		for (i = 0; i < j; i++)
			FUZZ_CHECK(m->need[v][e[i]] && !m->par[v][e[i]],
			    "depends edge");
	}
	nh = graph_heads(g, &heads);
	for (v = 0, j = 0; v < m->n; v++) {
		for (w = 0; w < m->n && !m->par[w][v]; w++)
			;
		if (w == m->n) {
			FUZZ_CHECK(j < nh && heads[j] == v, "heads differ");
			j++;
		}
	}
	FUZZ_CHECK(j == nh, "%zu heads, model %zu", nh, j);
	free(heads);

	/* Prefix lookups: an answer must be the only id with that prefix. */
	for (i = 0; i < nitems(ids); i++) {
		cause = NULL;
		if (graph_lookup(g, ids[i], &v, &cause) == 0) {
			FUZZ_CHECK(cause == NULL, "lookup cause on success");
			if (graph_find(g, ids[i]) != -1)
				continue;
			for (w = 0, k = 0; w < m->n; w++)
				k += strncmp(rev[w], ids[i],
				    strlen(ids[i])) == 0;
			FUZZ_CHECK(k == 1 && strncmp(rev[v], ids[i],
			    strlen(ids[i])) == 0, "lookup '%s' gave '%s'",
			    ids[i], rev[v]);
		} else
			FUZZ_CHECK(cause != NULL, "lookup failed silently");
		free(cause);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct reader		 r = { data, size };
	struct graph_input	 in[MAXREV];
	const char		*rev[MAXREV], *par[MAXREV][MAXREF];
	const char		*dep[MAXREV][MAXREF], *cur[4];
	const char		*targets[16];
	struct model		 m;
	struct graph		*g;
	struct graph_plan	 plan;
	struct errlist		 errs = { NULL, 0 };
	unsigned char		 reach[MAXREV][MAXREV];
	size_t			 n, i, j, k, v, w, ncur, curidx[4], nt = 0;
	size_t			 ncyc = 0, nmsg = 0;
	char			*cause, prefix[2];
	int			 bad = 0, rv, d, lead;

	memset(&m, 0, sizeof m);
	memset(in, 0, sizeof in);
	n = 1 + next(&r) % MAXREV;
	m.n = n;
	for (v = 0; v < n; v++) {
		rev[v] = ids[next(&r) % nitems(ids)];
		in[v].id = rev[v];
		in[v].file = "fuzz.sql";
		in[v].parents = par[v];
		in[v].depends = dep[v];
		in[v].n_parents = next(&r) % (MAXREF + 1);
		for (i = 0; i < in[v].n_parents; i++)
			par[v][i] = ids[next(&r) % nitems(ids)];
		in[v].n_depends = next(&r) % MAXREF;
		for (i = 0; i < in[v].n_depends; i++)
			dep[v][i] = ids[next(&r) % nitems(ids)];
		in[v].id_line = 1;
		in[v].parents_line = 2;
		in[v].depends_line = in[v].n_depends ? 3 : 0;
	}

	/* The model, with ids resolved to their first definition. */
	for (v = 0; v < n; v++) {
		for (w = 0; w < v && strcmp(rev[w], rev[v]) != 0; w++)
			;
		if (w != v)
			bad = 1;	/* duplicate */
	}
	for (v = 0; v < n; v++) {
		for (d = 0; d < 2; d++) {
			k = d ? in[v].n_depends : in[v].n_parents;
			for (i = 0; i < k; i++) {
				const char *name = d ? dep[v][i] : par[v][i];

				if (strcmp(name, rev[v]) == 0) {
					bad = 1;	/* itself */
					continue;
				}
				for (w = 0; w < n && strcmp(rev[w], name); w++)
					;
				if (w == n) {
					bad = 1;	/* unknown */
					continue;
				}
				m.need[v][w] = 1;
				if (!d)
					m.par[v][w] = 1;
			}
		}
	}
	memcpy(reach, m.need, sizeof reach);
	for (k = 0; k < n; k++)
		for (i = 0; i < n; i++)
			for (j = 0; j < n; j++)
				reach[i][j] |= reach[i][k] && reach[k][j];
	for (v = 0; v < n; v++) {
		if (!reach[v][v])
			continue;
		/* One group per smallest member. */
		for (w = 0; w < v && !(reach[v][w] && reach[w][v]); w++)
			;
		if (w == v)
			ncyc++;
	}
	if (ncyc > 0)
		bad = 1;

	rv = graph_build(in, n, &g, &errs);
	for (i = 0; i < errs.n; i++) {
		FUZZ_CHECK(strncmp(errs.v[i], "fuzz.sql:", 9) == 0,
		    "message without a place: %s", errs.v[i]);
		nmsg += strstr(errs.v[i], "revision cycle: ") != NULL;
	}
	FUZZ_CHECK((rv == 0) == !bad, "graph_build %s a set that is %s "
	    "(%zu messages)", rv ? "refuses" : "accepts", bad ? "invalid" :
	    "valid", errs.n);
	FUZZ_CHECK(rv != 0 || (g != NULL && errs.n == 0), "build result");
	FUZZ_CHECK(rv == 0 || (g == NULL && errs.n > 0), "failed build");
	FUZZ_CHECK(nmsg == ncyc, "%zu cycle messages for %zu cycle groups",
	    nmsg, ncyc);
	errlist_clear(&errs);
	if (rv != 0)
		return (0);

	check_graph(g, &m, rev);

	/* A version table: mostly known ids, sometimes a stranger. */
	ncur = next(&r) % 4;
	for (i = 0; i < ncur; i++) {
		lead = next(&r);
		cur[i] = lead < 0xf0 ? rev[lead % n] : ids[lead % nitems(ids)];
		curidx[i] = (size_t)graph_find(g, cur[i]);
	}
	targets[nt++] = "head";
	targets[nt++] = "heads";
	targets[nt++] = "base";
	targets[nt++] = "+1";
	targets[nt++] = "+2";
	targets[nt++] = "+3";
	targets[nt++] = "-1";
	targets[nt++] = "-2";
	targets[nt++] = "-3";
	targets[nt++] = "+0";
	targets[nt++] = "-x";
	targets[nt++] = "+99999999999999999999999999";
	targets[nt++] = rev[next(&r) % n];
	targets[nt++] = ids[next(&r) % nitems(ids)];
	prefix[0] = rev[next(&r) % n][0];
	prefix[1] = '\0';
	targets[nt++] = prefix;

	for (i = 0; i < nt; i++) {
		for (d = 0; d < 2; d++) {
			rv = graph_plan(g, cur, ncur, targets[i],
			    d ? GRAPH_DOWN : GRAPH_UP, &plan, &cause);
			if (rv != 0) {
				FUZZ_CHECK(rv == -1 && cause != NULL &&
				    plan.steps == NULL && plan.n_steps == 0 &&
				    plan.rows_after == NULL, "failed plan");
				free(cause);
				continue;
			}
			FUZZ_CHECK(cause == NULL, "cause on success");
			for (j = 0; j < ncur; j++)
				FUZZ_CHECK(curidx[j] < n, "plan from an "
				    "unknown row");
			replay(g, &m, curidx, ncur, targets[i],
			    d ? GRAPH_DOWN : GRAPH_UP, &plan);
			graph_plan_clear(&plan);
		}
	}
	graph_free(g);
	return (0);
}
