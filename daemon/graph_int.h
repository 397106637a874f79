/*
 * The revision graph's inside, shared by graph.c (building, lookups, plans)
 * and graph_stamp.c (stamp as Alembic's) only.
 */
#ifndef MIGD_GRAPH_INT_H
#define MIGD_GRAPH_INT_H

#include <stddef.h>
#include <stdint.h>

#define GRAPH_NONE	SIZE_MAX

/*
 * Edges live in flat arrays (compressed rows): need[need_off[v] ..
 * need_off[v + 1]) are what v builds on, its npar[v] parents first, then its
 * depends_on; rev[rev_off[v] .. rev_off[v + 1]) are the revisions that build
 * on v, its nkid[v] children first.  Ids are found through an open-addressing
 * table of idx + 1 (0 is an empty slot).
 */
struct graph {
	size_t		  n;
	char		 *idbuf;
	const char	**ids;
	size_t		 *need_off;
	size_t		 *npar;
	size_t		 *need;
	size_t		 *rev_off;
	size_t		 *nkid;
	size_t		 *rev;
	size_t		 *order;
	size_t		 *slot;
	size_t		  mask;
};

char	*graph_list(const struct graph *, const size_t *, size_t, size_t);

#endif
