/* Revision graph: validation, lookups and migration plans (see graph.h). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "graph.h"
#include "graph_int.h"
#include "util.h"

#define GRAPH_LIST_MAX	10	/* ids named in a message, then "and N more" */
#define GRAPH_CYCLE_MAX	20	/* members shown in one cycle message */

/* A message built in pieces. */
struct graph_buf {
	char	*s;
	size_t	 len;
	size_t	 cap;
};

/* The state of the database while a plan is simulated step by step. */
struct graph_run {
	const struct graph	*g;
	unsigned char		*applied;
	unsigned char		*sel;		/* chosen for the plan */
	size_t			*cnt;		/* applied revisions on v */
	size_t			*stack;
	size_t			*rows;		/* the table as read */
	size_t			 n_rows;
	struct graph_step	*steps;
	size_t			 n_steps;
	size_t			 cap_steps;
	size_t			*buf;		/* every step's row changes */
	size_t			 n_buf;
	size_t			 cap_buf;
};

/* Messages name a place even when the caller had none to give. */
static const char *
graph_file(const struct graph_input *in)
{
	return (in->file != NULL ? in->file : "(unknown)");
}

/* An id taken from the file name has no header line; point at the top. */
static int
graph_line(int line)
{
	return (line > 0 ? line : 1);
}

/* FNV-1a: cheap, and spreads short hex or numbered ids well enough. */
static size_t
graph_hash(const char *s)
{
	uint64_t	 h = 14695981039346656037ULL;

	while (*s != '\0') {
		h ^= (unsigned char)*s++;
		h *= 1099511628211ULL;
	}
	return ((size_t)(h ^ (h >> 32)));
}

/* The slot holding id, or the empty one where it would go. */
static size_t
graph_slot(const struct graph *g, const char *id)
{
	size_t	 i;

	i = graph_hash(id) & g->mask;
	while (g->slot[i] != 0 && strcmp(g->ids[g->slot[i] - 1], id) != 0)
		i = (i + 1) & g->mask;
	return (i);
}

/* Messages are assembled from ids whose number is not known in advance. */
static void
graph_buf_add(struct graph_buf *b, const char *s)
{
	size_t	 n = strlen(s);

	if (b->len + n + 1 > b->cap) {
		while (b->len + n + 1 > b->cap)
			b->cap = b->cap == 0 ? 64 : b->cap * 2;
		b->s = xrealloc(b->s, b->cap);
	}
	memcpy(b->s + b->len, s, n + 1);
	b->len += n;
}

/* Names a few revisions in a message without flooding it: "a, b and 3 more". */
char *
graph_list(const struct graph *g, const size_t *v, size_t shown, size_t total)
{
	struct graph_buf	 b = { NULL, 0, 0 };
	char			*more;
	size_t			 i;

	if (shown > GRAPH_LIST_MAX)
		shown = GRAPH_LIST_MAX;
	graph_buf_add(&b, "");
	for (i = 0; i < shown; i++) {
		if (i > 0)
			graph_buf_add(&b, ", ");
		graph_buf_add(&b, g->ids[v[i]]);
	}
	if (total > shown) {
		more = xprintf(" and %zu more", total - shown);
		graph_buf_add(&b, more);
		free(more);
	}
	return (b.s);
}

/* Copies the ids into one block and indexes them, reporting duplicates. */
static void
graph_build_ids(struct graph *g, const struct graph_input *in,
    struct errlist *errs)
{
	size_t		 i, j, s, len, total = 0, cap = 16;
	const char	*id;
	char		*p;

	for (i = 0; i < g->n; i++)
		total += strlen(in[i].id != NULL ? in[i].id : "") + 1;
	g->idbuf = xmalloc(total);
	g->ids = xcalloc(g->n, sizeof *g->ids);
	while (cap < g->n * 2)
		cap *= 2;
	g->slot = xcalloc(cap, sizeof *g->slot);
	g->mask = cap - 1;

	p = g->idbuf;
	for (i = 0; i < g->n; i++) {
		id = in[i].id != NULL ? in[i].id : "";
		len = strlen(id);
		memcpy(p, id, len + 1);
		g->ids[i] = p;
		p += len + 1;

		s = graph_slot(g, id);
		if (g->slot[s] == 0) {
			g->slot[s] = i + 1;
			continue;
		}
		j = g->slot[s] - 1;
		errlist_add(errs, "%s:%d: duplicate revision '%s' (first "
		    "defined at %s:%d)", graph_file(&in[i]),
		    graph_line(in[i].id_line), id, graph_file(&in[j]),
		    graph_line(in[j].id_line));
	}
}

/* Resolves one header's ids into edges; what cannot be resolved is reported. */
static void
graph_build_list(struct graph *g, const struct graph_input *in, size_t v,
    int parents, size_t *mark, size_t *k, struct errlist *errs)
{
	const char *const	*list = parents ? in->parents : in->depends;
	size_t			 i, j, s, n = parents ? in->n_parents :
				     in->n_depends;
	const char		*key = parents ? "down_revision" : "depends_on";
	const char		*name;
	int			 line;

	line = graph_line(parents ? in->parents_line : in->depends_line);
	for (i = 0; i < n; i++) {
		name = list[i] != NULL ? list[i] : "";
		if (strcmp(name, g->ids[v]) == 0) {
			errlist_add(errs, "%s:%d: revision '%s' lists itself "
			    "in %s", graph_file(in), line, name, key);
			continue;
		}
		s = graph_slot(g, name);
		if (g->slot[s] == 0) {
			errlist_add(errs, "%s:%d: %s '%s' names no known "
			    "revision%s", graph_file(in), line, key, name,
			    parents && n == 1 && (strcasecmp(name, "null") ==
			    0 || strcasecmp(name, "nil") == 0) ? "; a root "
			    "revision has 'down_revision: none'" : "");
			continue;
		}
		j = g->slot[s] - 1;
		if (mark[j] == v + 1)
			continue;	/* a repeat, or depends_on a parent */
		mark[j] = v + 1;
		g->need[(*k)++] = j;
	}
}

/* Turns each down_revision and depends_on id into an edge, then the reverse. */
static void
graph_build_edges(struct graph *g, const struct graph_input *in,
    struct errlist *errs)
{
	size_t	 v, e, w, k = 0, total = 0, *mark, *cur;

	for (v = 0; v < g->n; v++)
		total += in[v].n_parents + in[v].n_depends;
	g->need = xreallocarray(NULL, total, sizeof *g->need);
	g->need_off = xcalloc(g->n + 1, sizeof *g->need_off);
	g->npar = xcalloc(g->n, sizeof *g->npar);
	mark = xcalloc(g->n, sizeof *mark);
	for (v = 0; v < g->n; v++) {
		g->need_off[v] = k;
		graph_build_list(g, &in[v], v, 1, mark, &k, errs);
		g->npar[v] = k - g->need_off[v];
		graph_build_list(g, &in[v], v, 0, mark, &k, errs);
	}
	g->need_off[g->n] = k;
	free(mark);

	/* Reverse edges: count, place, then fill children before dependents. */
	g->rev = xreallocarray(NULL, k, sizeof *g->rev);
	g->rev_off = xcalloc(g->n + 1, sizeof *g->rev_off);
	g->nkid = xcalloc(g->n, sizeof *g->nkid);
	cur = xcalloc(g->n + 1, sizeof *cur);
	for (v = 0; v < g->n; v++) {
		for (e = g->need_off[v]; e < g->need_off[v + 1]; e++) {
			w = g->need[e];
			cur[w + 1]++;
			if (e < g->need_off[v] + g->npar[v])
				g->nkid[w]++;
		}
	}
	for (v = 0; v < g->n; v++)
		g->rev_off[v + 1] = g->rev_off[v] + cur[v + 1];
	for (v = 0; v < g->n; v++)
		cur[v] = g->rev_off[v];
	for (v = 0; v < g->n; v++) {
		for (e = g->need_off[v]; e < g->need_off[v] + g->npar[v]; e++)
			g->rev[cur[g->need[e]]++] = v;
	}
	for (v = 0; v < g->n; v++) {
		for (e = g->need_off[v] + g->npar[v]; e < g->need_off[v + 1];
		    e++)
			g->rev[cur[g->need[e]]++] = v;
	}
	free(cur);
}

/* Names one cycle through s, the shortest found breadth-first, once. */
static void
graph_report_cycle(const struct graph *g, const struct graph_input *in,
    size_t s, const size_t *comp, size_t *seen, size_t *prev, size_t *queue,
    struct errlist *errs)
{
	struct graph_buf	 b = { NULL, 0, 0 };
	size_t			 head = 0, tail = 0, v, w, e, len, i, last;
	char			*more;
	int			 line;

	last = GRAPH_NONE;
	queue[tail++] = s;
	seen[s] = s + 1;
	while (head < tail && last == GRAPH_NONE) {
		v = queue[head++];
		for (e = g->need_off[v]; e < g->need_off[v + 1]; e++) {
			w = g->need[e];
			if (comp[w] != comp[s])
				continue;
			if (w == s) {
				last = v;
				break;
			}
			if (seen[w] != s + 1) {
				seen[w] = s + 1;
				prev[w] = v;
				queue[tail++] = w;
			}
		}
	}
	if (last == GRAPH_NONE)
		return;		/* impossible in a strongly connected group */

	/* The path s -> ... -> last, read backwards through prev. */
	for (len = 1, v = last; v != s; v = prev[v])
		len++;
	for (i = len, v = last; i > 0; i--, v = prev[v])
		queue[i - 1] = v;

	line = graph_line(in[s].depends_line);
	for (e = g->need_off[s]; e < g->need_off[s] + g->npar[s]; e++) {
		if (len > 1 && g->need[e] == queue[1])
			line = graph_line(in[s].parents_line);
	}
	graph_buf_add(&b, "");
	for (i = 0; i < len; i++) {
		if (len > GRAPH_CYCLE_MAX && i == GRAPH_CYCLE_MAX - 1) {
			more = xprintf("... (%zu more) -> ",
			    len - (GRAPH_CYCLE_MAX - 1));
			graph_buf_add(&b, more);
			free(more);
			break;
		}
		graph_buf_add(&b, g->ids[queue[i]]);
		graph_buf_add(&b, " -> ");
	}
	graph_buf_add(&b, g->ids[s]);
	errlist_add(errs, "%s:%d: revision cycle: %s", graph_file(&in[s]), line,
	    b.s);
	free(b.s);
}

/*
 * Tarjan's strongly connected components, without recursion so that a chain
 * of any length fits: on a valid graph every component is one revision and
 * they come out parents first, which is the topological order.  Roots are
 * tried in input order and edges in header order, so an input that is
 * already in order comes out unchanged.
 */
static void
graph_build_order(struct graph *g, const struct graph_input *in,
    struct errlist *errs)
{
	size_t		 n = g->n, *num, *low, *stk, *cs, *cit, *comp;
	size_t		 r, v, u, w, x, sp = 0, csp = 0, no = 0, counter = 0;
	size_t		 ncomp = 0, size, first;
	unsigned char	*onstk, *cyc;
	int		 any = 0;

	num = xreallocarray(NULL, n, sizeof *num);
	low = xreallocarray(NULL, n, sizeof *low);
	stk = xreallocarray(NULL, n, sizeof *stk);
	cs = xreallocarray(NULL, n, sizeof *cs);
	cit = xreallocarray(NULL, n, sizeof *cit);
	comp = xreallocarray(NULL, n, sizeof *comp);
	onstk = xcalloc(n, 1);
	cyc = xcalloc(n, 1);
	g->order = xreallocarray(NULL, n, sizeof *g->order);
	for (v = 0; v < n; v++)
		num[v] = GRAPH_NONE;

	for (r = 0; r < n; r++) {
		if (num[r] != GRAPH_NONE)
			continue;
		num[r] = low[r] = counter++;
		stk[sp++] = r;
		onstk[r] = 1;
		cs[csp] = r;
		cit[csp++] = g->need_off[r];
		while (csp > 0) {
			v = cs[csp - 1];
			if (cit[csp - 1] < g->need_off[v + 1]) {
				w = g->need[cit[csp - 1]++];
				if (num[w] == GRAPH_NONE) {
					num[w] = low[w] = counter++;
					stk[sp++] = w;
					onstk[w] = 1;
					cs[csp] = w;
					cit[csp++] = g->need_off[w];
				} else if (onstk[w] && num[w] < low[v])
					low[v] = num[w];
				continue;
			}
			csp--;
			if (csp > 0) {
				u = cs[csp - 1];
				if (low[v] < low[u])
					low[u] = low[v];
			}
			if (low[v] != num[v])
				continue;
			size = 0;
			first = v;
			do {
				x = stk[--sp];
				onstk[x] = 0;
				comp[x] = ncomp;
				g->order[no++] = x;
				size++;
				if (x < first)
					first = x;
			} while (x != v);
			if (size > 1) {
				cyc[first] = 1;
				any = 1;
			}
			ncomp++;
		}
	}

	if (any) {
		/* num, low and cs are free now: reuse them for the search. */
		for (v = 0; v < n; v++)
			num[v] = 0;
		for (v = 0; v < n; v++) {
			if (cyc[v])
				graph_report_cycle(g, in, v, comp, num, low, cs,
				    errs);
		}
	}
	free(num);
	free(low);
	free(stk);
	free(cs);
	free(cit);
	free(comp);
	free(onstk);
	free(cyc);
}

/* Checks the whole migration set at once, so the user sees every problem. */
int
graph_build(const struct graph_input *in, size_t n, struct graph **gp,
    struct errlist *errs)
{
	struct graph	*g;
	size_t		 before = errs->n;

	*gp = NULL;
	g = xcalloc(1, sizeof *g);
	g->n = n;
	graph_build_ids(g, in, errs);
	graph_build_edges(g, in, errs);
	graph_build_order(g, in, errs);
	if (errs->n != before) {
		graph_free(g);
		return (-1);
	}
	*gp = g;
	return (0);
}

/* One owner, one release. */
void
graph_free(struct graph *g)
{
	if (g == NULL)
		return;
	free(g->idbuf);
	free(g->ids);
	free(g->need_off);
	free(g->npar);
	free(g->need);
	free(g->rev_off);
	free(g->nkid);
	free(g->rev);
	free(g->order);
	free(g->slot);
	free(g);
}

/* Callers iterate over revisions by index. */
size_t
graph_count(const struct graph *g)
{
	return (g->n);
}

/* Indices are what plans speak in; ids are what people read. */
const char *
graph_id(const struct graph *g, size_t idx)
{
	return (g->ids[idx]);
}

/* Exact lookup for ids that come from the database or from other files. */
ssize_t
graph_find(const struct graph *g, const char *id)
{
	size_t	 s;

	if (g->n == 0 || id == NULL)
		return (-1);
	s = graph_slot(g, id);
	return (g->slot[s] == 0 ? -1 : (ssize_t)(g->slot[s] - 1));
}

/* What to type instead of Alembic's forms migd does not take: a range
 * (FROM:TO, for --sql) or a step count from a revision (REV+N, head-1). */
static const char *
graph_lookup_hint(const char *id)
{
	size_t	 len = strlen(id), digits;

	if (strchr(id, ':') != NULL)
		return (": FROM:TO is a range for the SQL of a run (upgrade or "
		    "downgrade --sql FROM:TO); a run takes one target");
	digits = 0;
	while (digits < len && id[len - 1 - digits] >= '0' &&
	    id[len - 1 - digits] <= '9')
		digits++;
	if (digits > 0 && len > digits + 1 && (id[len - 1 - digits] == '+' ||
	    id[len - 1 - digits] == '-'))
		return (": steps from a named revision (Alembic's REV+N, "
		    "head-1) are not a target here; +N and -N count from the "
		    "current revision, or name the revision itself");
	return ("");
}

/* People type short prefixes of long hex ids; accept them when unambiguous. */
int
graph_lookup(const struct graph *g, const char *id, size_t *idx, char **cause)
{
	size_t	 v, len, total = 0, found[GRAPH_LIST_MAX];
	ssize_t	 exact;
	char	*list;

	if (cause != NULL)
		*cause = NULL;
	if (id == NULL || *id == '\0') {
		if (cause != NULL)
			*cause = xstrdup("empty revision id");
		return (-1);
	}
	if ((exact = graph_find(g, id)) != -1) {
		*idx = (size_t)exact;
		return (0);
	}
	len = strlen(id);
	for (v = 0; v < g->n; v++) {
		if (strncmp(g->ids[v], id, len) != 0)
			continue;
		if (total < GRAPH_LIST_MAX)
			found[total] = v;
		total++;
	}
	if (total == 1) {
		*idx = found[0];
		return (0);
	}
	if (cause != NULL) {
		if (total == 0)
			*cause = xprintf("unknown revision '%s'%s", id,
			    graph_lookup_hint(id));
		else {
			list = graph_list(g, found, total, total);
			*cause = xprintf("ambiguous revision '%s': %s", id,
			    list);
			free(list);
		}
	}
	return (-1);
}

/* The revisions nobody names as down_revision: where branches end. */
size_t
graph_heads(const struct graph *g, size_t **idx)
{
	size_t	 v, n = 0;

	*idx = xreallocarray(NULL, g->n, sizeof **idx);
	for (v = 0; v < g->n; v++) {
		if (g->nkid[v] == 0)
			(*idx)[n++] = v;
	}
	return (n);
}

/* Listings (history, status) want the same order as upgrades use. */
size_t
graph_order(const struct graph *g, const size_t **idx)
{
	*idx = g->order;
	return (g->n);
}

/* Status output shows what a revision revises. */
size_t
graph_parents(const struct graph *g, size_t idx, const size_t **v)
{
	*v = g->need + g->need_off[idx];
	return (g->npar[idx]);
}

/* Status output shows what a revision depends on beyond its parents. */
size_t
graph_depends(const struct graph *g, size_t idx, const size_t **v)
{
	*v = g->need + g->need_off[idx] + g->npar[idx];
	return (g->need_off[idx + 1] - g->need_off[idx] - g->npar[idx]);
}

/*
 * Revisions skipped by a rebase (see graph.h): one walk against the order
 * spreads "applied" and "migd ran something above" down to what each
 * revision builds on, one walk along it spreads "migd ran something below".
 */
size_t
graph_skipped(const struct graph *g, const char *const *rows, size_t n_rows,
    const unsigned char *rec, size_t **out)
{
	unsigned char	*applied, *above, *below;
	size_t		 i, k, v, w, n = 0;
	ssize_t		 x;

	applied = xcalloc(g->n ? g->n : 1, 1);
	above = xcalloc(g->n ? g->n : 1, 1);
	below = xcalloc(g->n ? g->n : 1, 1);
	*out = xreallocarray(NULL, g->n ? g->n : 1, sizeof **out);
	for (i = 0; i < n_rows; i++) {
		if ((x = graph_find(g, rows[i])) >= 0)
			applied[x] = 1;
	}
	for (i = g->n; i-- > 0;) {
		v = g->order[i];
		if (!applied[v])
			continue;
		for (k = g->need_off[v]; k < g->need_off[v + 1]; k++) {
			w = g->need[k];
			applied[w] = 1;
			if ((rec[v] & GRAPH_REC_RAN) || above[v])
				above[w] = 1;
		}
	}
	for (i = 0; i < g->n; i++) {
		v = g->order[i];
		for (k = g->need_off[v]; k < g->need_off[v + 1]; k++) {
			w = g->need[k];
			if ((rec[w] & GRAPH_REC_RAN) || below[w])
				below[v] = 1;
		}
		if (applied[v] && above[v] && below[v] &&
		    !(rec[v] & GRAPH_REC_KNOWN))
			(*out)[n++] = v;
	}
	free(applied);
	free(above);
	free(below);
	return (n);
}

/* Scratch space for one plan, all sized by the graph. */
static void
graph_run_init(struct graph_run *r, const struct graph *g)
{
	memset(r, 0, sizeof *r);
	r->g = g;
	r->applied = xcalloc(g->n, 1);
	r->sel = xcalloc(g->n, 1);
	r->cnt = xcalloc(g->n, sizeof *r->cnt);
	r->stack = xreallocarray(NULL, g->n, sizeof *r->stack);
	r->rows = xreallocarray(NULL, g->n, sizeof *r->rows);
}

/* Scratch goes; the output too unless it was handed to a plan. */
static void
graph_run_free(struct graph_run *r)
{
	free(r->applied);
	free(r->sel);
	free(r->cnt);
	free(r->stack);
	free(r->rows);
	free(r->steps);
	free(r->buf);
}

/* The rows named in a message: what the database says it is at. */
static char *
graph_run_current(const struct graph_run *r)
{
	if (r->n_rows == 0)
		return (xstrdup("base (nothing applied)"));
	return (graph_list(r->g, r->rows, r->n_rows, r->n_rows));
}

/*
 * Reads the version table: every row must be known (else the database is
 * ahead of the code) and must be a head of what it implies (else the table
 * was written by other rules and every row change would be wrong).
 */
static int
graph_run_rows(struct graph_run *r, const char *const *current,
    size_t n_current, char **cause)
{
	const struct graph	*g = r->g;
	size_t			 i, v, w, e, sp = 0;
	ssize_t			 found;

	for (i = 0; i < n_current; i++) {
		found = graph_find(g, current[i]);
		if (found == -1) {
			*cause = xprintf("the version table names revision "
			    "'%s', which no migration file defines: the "
			    "database is ahead of this code",
			    current[i] != NULL ? current[i] : "");
			return (-1);
		}
		v = (size_t)found;
		if (r->applied[v])
			continue;	/* the same row twice */
		r->applied[v] = 1;
		r->rows[r->n_rows++] = v;
		r->stack[sp++] = v;
	}
	while (sp > 0) {
		v = r->stack[--sp];
		for (e = g->need_off[v]; e < g->need_off[v + 1]; e++) {
			w = g->need[e];
			if (!r->applied[w]) {
				r->applied[w] = 1;
				r->stack[sp++] = w;
			}
		}
	}
	for (v = 0; v < g->n; v++) {
		if (!r->applied[v])
			continue;
		for (e = g->need_off[v]; e < g->need_off[v + 1]; e++)
			r->cnt[g->need[e]]++;
	}
	for (i = 0; i < r->n_rows; i++) {
		v = r->rows[i];
		if (r->cnt[v] == 0)
			continue;
		for (e = g->rev_off[v]; e < g->rev_off[v + 1]; e++) {
			if (r->applied[g->rev[e]])
				break;
		}
		*cause = xprintf("the version table is inconsistent: it lists "
		    "'%s', but it also lists or implies '%s', which builds on "
		    "it", g->ids[v], g->ids[g->rev[e]]);
		return (-1);
	}
	return (0);
}

/* Selects what applying v needs that is not applied yet, v included. */
static void
graph_run_close(struct graph_run *r, size_t v)
{
	const struct graph	*g = r->g;
	size_t			 e, w, sp = 0;

	if (r->applied[v] || r->sel[v])
		return;
	r->sel[v] = 1;
	r->stack[sp++] = v;
	while (sp > 0) {
		v = r->stack[--sp];
		for (e = g->need_off[v]; e < g->need_off[v + 1]; e++) {
			w = g->need[e];
			if (!r->applied[w] && !r->sel[w]) {
				r->sel[w] = 1;
				r->stack[sp++] = w;
			}
		}
	}
}

/* Starts a step; its rows follow in the buffer, deletions first. */
static void
graph_run_step(struct graph_run *r, size_t v, enum graph_dir dir)
{
	struct graph_step	*st;

	if (r->n_steps == r->cap_steps) {
		r->cap_steps = r->cap_steps == 0 ? 16 : r->cap_steps * 2;
		r->steps = xreallocarray(r->steps, r->cap_steps,
		    sizeof *r->steps);
	}
	st = &r->steps[r->n_steps++];
	memset(st, 0, sizeof *st);
	st->idx = v;
	st->dir = dir;
}

/* Adds a row change to the step being built. */
static void
graph_run_row(struct graph_run *r, size_t v, int insert)
{
	struct graph_step	*st = &r->steps[r->n_steps - 1];

	if (r->n_buf == r->cap_buf) {
		r->cap_buf = r->cap_buf == 0 ? 32 : r->cap_buf * 2;
		r->buf = xreallocarray(r->buf, r->cap_buf, sizeof *r->buf);
	}
	r->buf[r->n_buf++] = v;
	if (insert)
		st->n_row_ins++;
	else
		st->n_row_del++;
}

/* Applies v: what it builds on stops being a row, v becomes one. */
static void
graph_run_up(struct graph_run *r, size_t v)
{
	const struct graph	*g = r->g;
	size_t			 e, w;

	graph_run_step(r, v, GRAPH_UP);
	for (e = g->need_off[v]; e < g->need_off[v + 1]; e++) {
		w = g->need[e];
		if (r->cnt[w]++ == 0)
			graph_run_row(r, w, 0);
	}
	r->applied[v] = 1;
	graph_run_row(r, v, 1);
}

/* Reverts v, a row: what it built on becomes a row unless still built on. */
static void
graph_run_down(struct graph_run *r, size_t v)
{
	const struct graph	*g = r->g;
	size_t			 e, w;

	graph_run_step(r, v, GRAPH_DOWN);
	graph_run_row(r, v, 0);
	r->applied[v] = 0;
	for (e = g->need_off[v]; e < g->need_off[v + 1]; e++) {
		w = g->need[e];
		if (--r->cnt[w] == 0)
			graph_run_row(r, w, 1);
	}
}

/* Runs the selection in order: builds-on first up, dependents first down. */
static void
graph_run_selected(struct graph_run *r, enum graph_dir dir)
{
	const struct graph	*g = r->g;
	size_t			 i, v;

	for (i = 0; i < g->n; i++) {
		if (dir == GRAPH_UP) {
			v = g->order[i];
			if (r->sel[v])
				graph_run_up(r, v);
		} else {
			v = g->order[g->n - 1 - i];
			if (r->sel[v])
				graph_run_down(r, v);
		}
	}
}

/* "head" must mean one revision; several heads need a choice or a merge. */
static int
graph_run_head(struct graph_run *r, int all, char **cause)
{
	size_t	*heads, n, i;
	char	*list;

	n = graph_heads(r->g, &heads);
	if (!all && n > 1) {
		list = graph_list(r->g, heads, n, n);
		*cause = xprintf("there are %zu heads (%s): upgrade to 'heads' "
		    "or add a merge revision", n, list);
		free(list);
		free(heads);
		return (-1);
	}
	for (i = 0; i < n; i++)
		graph_run_close(r, heads[i]);
	free(heads);
	return (0);
}

/* Relative moves start from one revision; several rows make "N" ambiguous. */
static int
graph_run_single(struct graph_run *r, const char *target, char **cause)
{
	char	*list;

	if (r->n_rows <= 1)
		return (0);
	list = graph_run_current(r);
	*cause = xprintf("'%s' needs a single current revision, but the "
	    "version table has %zu (%s): name a target revision instead",
	    target, r->n_rows, list);
	free(list);
	return (-1);
}

/* "+N": follows the one child of each revision, taking along what it needs. */
static int
graph_run_plus(struct graph_run *r, const char *target, size_t steps,
    char **cause)
{
	const struct graph	*g = r->g;
	size_t			 i, v, n, cur, *cand, nc;
	char			*list, *from;

	if (graph_run_single(r, target, cause) != 0)
		return (-1);
	cur = r->n_rows == 1 ? r->rows[0] : GRAPH_NONE;
	cand = xreallocarray(NULL, g->n, sizeof *cand);
	for (i = 0; i < steps; i++) {
		nc = 0;
		if (cur == GRAPH_NONE) {
			for (v = 0; v < g->n; v++) {
				if (g->npar[v] == 0)
					cand[nc++] = v;
			}
		} else {
			n = g->nkid[cur];
			memcpy(cand, g->rev + g->rev_off[cur],
			    n * sizeof *cand);
			nc = n;
		}
		if (nc == 1) {
			graph_run_close(r, cand[0]);
			cur = cand[0];
			continue;
		}
		from = cur == GRAPH_NONE ? xstrdup("base") :
		    xprintf("'%s'", g->ids[cur]);
		if (nc == 0) {
			*cause = xprintf("cannot go up %s: only %zu step%s "
			    "available", target, i, i == 1 ? " is" : "s are");
		} else {
			list = graph_list(g, cand, nc, nc);
			*cause = xprintf("'%s' is ambiguous: %s has %zu "
			    "revisions above it (%s): name the one to upgrade "
			    "to", target, from, nc, list);
			free(list);
		}
		free(from);
		free(cand);
		return (-1);
	}
	free(cand);
	return (0);
}

/* "-N": reverts the one row, N times, as long as one row is left. */
static int
graph_run_minus(struct graph_run *r, const char *target, size_t steps,
    char **cause)
{
	struct graph_step	*st;
	size_t			 i, v;
	char			*list;

	if (graph_run_single(r, target, cause) != 0)
		return (-1);
	if (r->n_rows == 0) {
		*cause = xprintf("cannot go down %s: nothing is applied",
		    target);
		return (-1);
	}
	v = r->rows[0];
	for (i = 0; i < steps; i++) {
		if (i > 0) {
			st = &r->steps[r->n_steps - 1];
			if (st->n_row_ins == 0) {
				*cause = xprintf("cannot go down %s: only %zu "
				    "step%s available", target, i,
				    i == 1 ? " is" : "s are");
				return (-1);
			}
			if (st->n_row_ins > 1) {
				list = graph_list(r->g, r->buf + r->n_buf -
				    st->n_row_ins, st->n_row_ins,
				    st->n_row_ins);
				*cause = xprintf("cannot go down %s: after %zu "
				    "step%s the version table has %zu rows "
				    "(%s): name the target revision instead",
				    target, i, i == 1 ? "" : "s",
				    st->n_row_ins, list);
				free(list);
				return (-1);
			}
			v = r->buf[r->n_buf - 1];
		}
		graph_run_down(r, v);
	}
	return (0);
}

/* Downgrading to t keeps t and reverts what builds on it, nothing else. */
static int
graph_run_down_to(struct graph_run *r, size_t t, char **cause)
{
	const struct graph	*g = r->g;
	size_t			 e, v, w, sp = 0;
	char			*list;

	if (!r->applied[t]) {
		list = graph_run_current(r);
		*cause = xprintf("'%s' is not applied; current: %s",
		    g->ids[t], list);
		free(list);
		return (-1);
	}
	r->stack[sp++] = t;
	while (sp > 0) {
		v = r->stack[--sp];
		for (e = g->rev_off[v]; e < g->rev_off[v + 1]; e++) {
			w = g->rev[e];
			if (r->applied[w] && !r->sel[w]) {
				r->sel[w] = 1;
				r->stack[sp++] = w;
			}
		}
	}
	return (0);
}

/* "+N" or "-N": N is a positive decimal; a huge N simply is too many. */
static int
graph_relative(const char *target, size_t limit, size_t *steps)
{
	const char	*p = target + 1;
	size_t		 n = 0;

	if (*p == '\0')
		return (-1);
	for (; *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			return (-1);
		if (n <= limit)
			n = n * 10 + (size_t)(*p - '0');
	}
	if (n == 0)
		return (-1);
	*steps = n;
	return (0);
}

/* Hands the simulated steps and the final table over to the caller's plan. */
static void
graph_run_finish(struct graph_run *r, struct graph_plan *plan)
{
	const struct graph	*g = r->g;
	struct graph_step	*st;
	size_t			 i, v, n = 0, off = 0;

	for (i = 0; i < r->n_steps; i++) {
		st = &r->steps[i];
		st->row_del = st->n_row_del == 0 ? NULL : r->buf + off;
		off += st->n_row_del;
		st->row_ins = st->n_row_ins == 0 ? NULL : r->buf + off;
		off += st->n_row_ins;
	}
	plan->steps = r->steps;
	plan->n_steps = r->n_steps;
	plan->rowbuf = r->buf;
	r->steps = NULL;
	r->buf = NULL;

	for (v = 0; v < g->n; v++)
		n += r->applied[v] && r->cnt[v] == 0;
	plan->rows_after = xreallocarray(NULL, n, sizeof *plan->rows_after);
	for (v = 0; v < g->n; v++) {
		if (r->applied[v] && r->cnt[v] == 0)
			plan->rows_after[plan->n_rows_after++] = v;
	}
}

/* Plans first, so that a run that cannot complete never starts. */
int
graph_plan(const struct graph *g, const char *const *current, size_t n_current,
    const char *target, enum graph_dir dir, struct graph_plan *plan,
    char **cause)
{
	struct graph_run	 r;
	size_t			 t, steps = 0, v;
	int			 up = dir == GRAPH_UP, rv = -1;

	memset(plan, 0, sizeof *plan);
	*cause = NULL;
	if (target == NULL || *target == '\0') {
		*cause = xstrdup("no target given");
		return (-1);
	}
	graph_run_init(&r, g);
	if (graph_run_rows(&r, current, n_current, cause) != 0)
		goto out;

	if (strcmp(target, "head") == 0 || strcmp(target, "heads") == 0 ||
	    (target[0] == '+' && graph_relative(target, g->n, &steps) == 0)) {
		if (!up) {
			*cause = xprintf("'%s' is an upgrade target; use "
			    "upgrade", target);
			goto out;
		}
		if (target[0] == '+')
			rv = graph_run_plus(&r, target, steps, cause);
		else
			rv = graph_run_head(&r, target[4] == 's', cause);
	} else if (strcmp(target, "base") == 0 ||
	    (target[0] == '-' && graph_relative(target, g->n, &steps) == 0)) {
		if (up) {
			*cause = xprintf("'%s' is a downgrade target; use "
			    "downgrade", target);
			goto out;
		}
		if (target[0] == '-')
			rv = graph_run_minus(&r, target, steps, cause);
		else {
			for (v = 0; v < g->n; v++)
				r.sel[v] = r.applied[v];
			rv = 0;
		}
	} else if (target[0] == '+' || target[0] == '-') {
		*cause = xprintf("invalid relative target '%s': expected %cN "
		    "with N a positive number", target, target[0]);
		goto out;
	} else if (graph_lookup(g, target, &t, cause) == 0) {
		if (up) {
			graph_run_close(&r, t);
			rv = 0;
		} else
			rv = graph_run_down_to(&r, t, cause);
	}
	if (rv != 0)
		goto out;
	graph_run_selected(&r, dir);	/* nothing selected after "-N" */
	graph_run_finish(&r, plan);
out:
	graph_run_free(&r);
	return (rv);
}

/* Frees what graph_plan gave and leaves an empty plan. */
void
graph_plan_clear(struct graph_plan *plan)
{
	free(plan->steps);
	free(plan->rowbuf);
	free(plan->rows_after);
	memset(plan, 0, sizeof *plan);
}

/*
 * Newest first, as a listing of the graph (Alembic's `history`) wants: every
 * revision after all that build on it, over either kind of edge.  A
 * depth-first walk from each revision in input order, down to what builds on
 * it (children, then dependents, each in input order), emitting a revision
 * once all of those are out: so one branch is listed from its head down to
 * where it forks before the next one starts, as Alembic lists them.  Linear.
 */
size_t
graph_newest_first(const struct graph *g, struct graph_listed **out)
{
	struct graph_listed	*l;
	size_t			*cs, *cit, r, v, w, e, csp, no = 0;
	unsigned char		*seen;

	*out = l = xreallocarray(NULL, g->n ? g->n : 1, sizeof *l);
	cs = xreallocarray(NULL, g->n ? g->n : 1, sizeof *cs);
	cit = xreallocarray(NULL, g->n ? g->n : 1, sizeof *cit);
	seen = xcalloc(g->n ? g->n : 1, 1);
	for (r = 0; r < g->n; r++) {
		if (seen[r])
			continue;
		seen[r] = 1;
		csp = 0;
		cs[csp] = r;
		cit[csp++] = g->rev_off[r];
		while (csp > 0) {
			v = cs[csp - 1];
			if (cit[csp - 1] < g->rev_off[v + 1]) {
				w = g->rev[cit[csp - 1]++];
				if (!seen[w]) {
					seen[w] = 1;
					cs[csp] = w;
					cit[csp++] = g->rev_off[w];
				}
				continue;
			}
			csp--;
			l[no].idx = v;
			l[no].flags = 0;
			if (g->nkid[v] == 0)
				l[no].flags |= GRAPH_LISTED_HEAD;
			if (g->npar[v] > 1)
				l[no].flags |= GRAPH_LISTED_MERGEPOINT;
			if (g->nkid[v] > 1)
				l[no].flags |= GRAPH_LISTED_BRANCHPOINT;
			e = g->rev_off[v + 1] - g->rev_off[v];
			if (e > g->nkid[v])
				l[no].flags |= GRAPH_LISTED_DEPENDED;
			no++;
		}
	}
	free(cs);
	free(cit);
	free(seen);
	return (no);
}
