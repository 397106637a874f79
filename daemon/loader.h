/* Loading the migration files on a thread of their own. */
#ifndef MIGD_LOADER_H
#define MIGD_LOADER_H

#include <event2/event.h>

#include "revset.h"

/* What a load found, handed to its callback on the event loop. */
struct loader_result {
	int		 unchanged;	/* checked: nothing differed from prev */
	struct revset	*rs;		/* the new valid set (the callback's
					   reference), or NULL */
	struct errlist	 errs;		/* the problems when rs is NULL */
	struct migset	 seen;		/* what a refused load read */
	size_t		 reused;	/* files taken from the cache */
	double		 seconds;	/* how long the thread worked */
};

struct loader;
typedef void (*loader_done)(struct loader_result *, void *);

struct loader	*loader_start(struct event_base *, const char *,
		    const struct revset_ctx *, struct revset *,
		    const struct migset *, loader_done, void *);
void		 loader_free(struct loader *);
void		 loader_result_clear(struct loader_result *);

#endif
