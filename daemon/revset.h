/* A loaded, validated set of revisions: files, their graph and SQL analysis. */
#ifndef MIGD_REVSET_H
#define MIGD_REVSET_H

#include "graph.h"
#include "migfile.h"
#include "sqlscan.h"

/* Shared by the engine's cache and running jobs: freed by the last unref. */
struct revset {
	unsigned int	  refs;
	char		 *directory;
	struct migset	  set;		/* files[i] is graph index i */
	struct graph	 *graph;
	struct sqlscan	 *up;		/* analysis of each up section */
	struct sqlscan	 *down;		/* of each down section (empty if none) */
};

int		 revset_load(const char *, struct revset **, struct errlist *);
struct revset	*revset_ref(struct revset *);
void		 revset_unref(struct revset *);
size_t		 revset_count(const struct revset *);
const struct migfile *revset_file(const struct revset *, size_t);
int		 revset_transactional(const struct revset *, size_t, int);
const struct sqlscan_stmt *revset_no_tx_stmt(const struct revset *, size_t,
		     int);

#endif
