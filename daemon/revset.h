/* A loaded, validated set of revisions: files, their graph and SQL analysis. */
#ifndef MIGD_REVSET_H
#define MIGD_REVSET_H

#include <jansson.h>

#include "graph.h"
#include "migfile.h"
#include "sqlscan.h"

/* What loading needs to know beside the files. */
struct revset_ctx {
	char *const	 *schemas;	/* configured schemas: managed by migd */
	size_t		  n_schemas;
	const char	 *version_schema; /* where migd's tables are, or NULL */
	const char	 *history_schema;
	int		  server_version; /* PQserverVersion, or 0: unknown */
	struct errlist	 *skipped;	/* gets the entries not read, and why
					   (migset.skipped), or NULL; the
					   loader's thread leaves it NULL */
	int		  format;	/* enum layout_format; 0: auto */
};

/* Shared by the engine's cache and running jobs: freed by the last unref. */
struct revset {
	unsigned int	  refs;
	char		 *directory;
	int		  server_version; /* what the set was judged against */
	size_t		  n_unparsed;	/* sections only the scanner read */
	struct migset	  set;		/* files[i] is graph index i */
	struct graph	 *graph;
	struct sqlscan	 *up;		/* analysis of each up section */
	struct sqlscan	 *down;		/* of each down section (empty if none) */
};

int		 revset_load(const char *, const struct revset_ctx *,
		     struct revset **, struct errlist *);
int		 revset_load_from(const char *, const struct revset_ctx *,
		     const struct revset *, struct migcache *,
		     struct revset **, struct migset *, struct errlist *);
struct revset	*revset_ref(struct revset *);
void		 revset_unref(struct revset *);
size_t		 revset_count(const struct revset *);
const struct migfile *revset_file(const struct revset *, size_t);
int		 revset_transactional(const struct revset *, size_t, int);
const struct sqlscan_stmt *revset_no_tx_stmt(const struct revset *, size_t,
		     int);

void		 revset_unparsed(const struct revset *, struct errlist *);
char		*revset_not_atomic(const struct revset *, size_t, int);
size_t		 revset_segments(const struct sqlscan *, int *);
int		 revset_newer_sql(int);
const struct sqlscan *revset_section(const struct revset *, size_t, int);
size_t		 revset_plan_schemas(const struct revset *,
		     const struct graph_plan *, char *const *, size_t,
		     const char ***);
json_t		*revset_revisions_json(const struct revset *);
int		 revset_target(const struct revset *, const char *, char **,
		     char **);
int		 revset_stamp(const struct revset *, const char *const *,
		     size_t, const char *const *, size_t, int,
		     struct graph_stamp *, char **);

#endif
