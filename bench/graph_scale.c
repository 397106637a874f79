/* Prints how long the revision graph takes to build and plan, 10k and 100k. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "graph.h"
#include "util.h"

#define BENCH_BRANCHES	100	/* branches of the "wide" shape */

/* Generated revisions: ids are fixed-width, so they live in one block. */
struct bench_set {
	struct graph_input	*in;
	char			*ids;
	const char		**par;
	const char		**dep;
	size_t			 n;
};

/* Wall time, monotonic, in seconds. */
static double
bench_now(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
}

/* Shapes that stress depth (chain) and breadth with depends_on (wide). */
static void
bench_make(struct bench_set *b, int wide, size_t n)
{
	size_t	 i, k, br, len = 0, nb = BENCH_BRANCHES;

	if (wide) {
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
	if (!wide) {
		for (i = 1; i < n; i++) {
			b->par[i] = b->ids + (i - 1) * 8;
			b->in[i].parents = &b->par[i];
			b->in[i].n_parents = 1;
		}
		return;
	}
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
	for (br = 0; br < nb; br++)
		b->par[n + br] = b->ids + (br * len + len) * 8;
	b->in[n - 1].parents = &b->par[n];
	b->in[n - 1].n_parents = nb;
}

/* The inputs are only borrowed by graph_build. */
static void
bench_free(struct bench_set *b)
{
	free(b->in);
	free(b->ids);
	free(b->par);
	free(b->dep);
}

/* One line per operation, so runs can be compared by eye or by diff. */
static int
bench_run(int wide, size_t n)
{
	struct bench_set	 b;
	struct errlist		 errs = { NULL, 0 };
	struct graph		*g;
	struct graph_plan	 p;
	const char		*shape = wide ? "wide" : "chain", *cur[1];
	char			*cause;
	double			 t0;

	bench_make(&b, wide, n);
	t0 = bench_now();
	if (graph_build(b.in, b.n, &g, &errs) != 0) {
		fprintf(stderr, "build failed: %s\n", errs.v[0]);
		return (1);
	}
	printf("%-6s %7zu  build            %.4f s\n", shape, b.n,
	    bench_now() - t0);

	t0 = bench_now();
	if (graph_plan(g, NULL, 0, "head", GRAPH_UP, &p, &cause) != 0) {
		fprintf(stderr, "plan failed: %s\n", cause);
		return (1);
	}
	printf("%-6s %7zu  plan base->head  %.4f s (%zu steps)\n", shape,
	    b.n, bench_now() - t0, p.n_steps);
	cur[0] = graph_id(g, p.rows_after[0]);
	graph_plan_clear(&p);

	t0 = bench_now();
	if (graph_plan(g, cur, 1, "base", GRAPH_DOWN, &p, &cause) != 0) {
		fprintf(stderr, "plan failed: %s\n", cause);
		return (1);
	}
	printf("%-6s %7zu  plan head->base  %.4f s (%zu steps)\n", shape,
	    b.n, bench_now() - t0, p.n_steps);
	graph_plan_clear(&p);

	t0 = bench_now();
	if (graph_plan(g, cur, 1, "heads", GRAPH_UP, &p, &cause) != 0) {
		fprintf(stderr, "plan failed: %s\n", cause);
		return (1);
	}
	printf("%-6s %7zu  plan at head     %.4f s (%zu steps)\n", shape,
	    b.n, bench_now() - t0, p.n_steps);
	graph_plan_clear(&p);

	graph_free(g);
	bench_free(&b);
	return (0);
}

/* 10k and 100k revisions in both shapes. */
int
main(void)
{
	static const size_t	 sizes[] = { 10000, 100000 };
	size_t			 i;
	int			 rv = 0;

	for (i = 0; i < nitems(sizes); i++) {
		rv |= bench_run(0, sizes[i]);
		rv |= bench_run(1, sizes[i]);
	}
	return (rv);
}
