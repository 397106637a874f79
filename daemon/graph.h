/* Revision graph: checks a migration set, plans upgrades and downgrades. */
#ifndef MIGD_GRAPH_H
#define MIGD_GRAPH_H

#include <stddef.h>
#include <sys/types.h>

struct errlist;

/*
 * Model.  Each revision names its parents (down_revision: none for a root,
 * several for a merge) and its depends_on revisions (applied before it, but
 * not parents).  Both kinds of edge say "builds on".
 *
 * - Heads (graph_heads, targets "head" and "heads") are the revisions that
 *   are nobody's parent: depends_on does not end a branch, as in Alembic.
 * - The applied set is everything the version table's rows build on,
 *   transitively over both kinds of edge, plus the rows themselves.
 * - The version table holds the applied revisions that no applied revision
 *   builds on, over both kinds of edge.  This is what Alembic writes (its
 *   HeadMaintainer treats depends_on like down_revision): after upgrading to
 *   c, which depends on b, the table holds c and not b.
 *
 * Indices (idx) are positions in the array given to graph_build.
 */

/* One revision as input to graph_build; every pointer is borrowed and needs
 * to stay valid only during the call.  The graph keeps copies of the ids. */
struct graph_input {
	const char		 *id;
	const char *const	 *parents;	/* down_revision ids */
	size_t			  n_parents;
	const char *const	 *depends;	/* depends_on ids */
	size_t			  n_depends;
	const char		 *file;		/* for messages */
	int			  parents_line;	/* down_revision header */
	int			  depends_line;	/* depends_on header */
	int			  id_line;	/* revision header, 0: 1 */
};

/* Opaque, immutable once built; owns its ids.  Free with graph_free. */
struct graph;

enum graph_dir {
	GRAPH_UP,
	GRAPH_DOWN
};

/* One migration to run, and the version-table change that goes with it:
 * after each step the rows are again exactly those the model above says. */
struct graph_step {
	size_t		 idx;		/* revision to apply or revert */
	enum graph_dir	 dir;
	size_t		*row_del;	/* rows to delete (NULL when none) */
	size_t		 n_row_del;
	size_t		*row_ins;	/* rows to insert (NULL when none) */
	size_t		 n_row_ins;
};

/* A whole plan; owns every array in it.  Release with graph_plan_clear. */
struct graph_plan {
	struct graph_step	*steps;
	size_t			 n_steps;
	size_t			*rows_after;	/* the version table after the
						 * whole plan, in index order */
	size_t			 n_rows_after;
	size_t			*rowbuf;	/* private: storage behind every
						 * step's row_del and row_ins */
};

/*
 * graph_build: checks the whole set and, when it is valid, makes a graph.
 * Every problem goes to errs as "FILE:LINE: message" (all of them):
 *   duplicate revision 'x' (first defined at FILE:LINE)
 *   down_revision 'x' names no known revision
 *   depends_on 'x' names no known revision
 *   revision 'x' lists itself in down_revision
 *   revision 'x' lists itself in depends_on
 *   revision cycle: a -> b -> c -> a
 * An arrow goes from a revision to one it names in down_revision or
 * depends_on; a cycle is reported once per strongly connected group, at the
 * header line of its first member in input order.  Id syntax (empty,
 * reserved words, characters) and ids listed twice in one header are the
 * file parser's business (migfile_valid_id); the graph ignores repeats.
 * Returns 0 and sets *gp, or -1 (nothing allocated) when errs got anything.
 *
 * graph_lookup: an exact id, else a unique prefix of one.  On failure,
 * returns -1 and, when cause is not NULL, sets *cause (caller frees) to
 * "unknown revision 'x'" or "ambiguous revision 'x': a, b, ... and N more".
 *
 * graph_heads: sets *idx to a new array (caller frees, also when 0 is
 * returned) of the heads in input order.
 *
 * graph_order: topological order, parents and depends_on first.  It is a
 * depth-first walk from each revision in input order, parents and then
 * depends_on in header order, so it is deterministic and an input that is
 * already in such an order comes back unchanged.  Linear time.  Borrowed,
 * valid as long as the graph.
 *
 * graph_parents, graph_depends: borrowed edge lists of one revision;
 * graph_depends leaves out ids that are also parents.
 *
 * graph_plan: current is the version table's rows (ids, any order, repeats
 * ignored).  Refused before any target is looked at: a row that no file
 * defines (the database is ahead of the code) and a row that another row
 * implies (a table written by other rules).  Targets:
 *   head   up: the single head; several heads are an error naming them
 *   heads  up: every head
 *   +N     up: N revisions up the chain from the single row (from base:
 *          the single root), each bringing along what it needs; a fork or
 *          fewer than N revisions on the way is an error
 *   base   down: revert everything applied
 *   -N     down: revert the single row, N times; an error when a step
 *          leaves several rows and more steps remain
 *   REV    an id or unique prefix.  Up: apply REV and what it needs.
 *          Down: REV must be applied; revert what builds on it, directly
 *          or not, over either kind of edge, and nothing else
 * +N and -N need at most one row.  An up target given for down (or the
 * reverse) is an error.  A target already reached gives an empty plan.  Up
 * steps come in graph_order, down steps in its reverse.  Linear time; the
 * graph is only read, so plans may be made concurrently.  On failure,
 * returns -1, leaves the plan empty and sets *cause (caller frees); cause
 * must not be NULL.  On success, returns 0; release with graph_plan_clear.
 */
int		 graph_build(const struct graph_input *, size_t,
		     struct graph **, struct errlist *);
void		 graph_free(struct graph *);
size_t		 graph_count(const struct graph *);
const char	*graph_id(const struct graph *, size_t);
ssize_t		 graph_find(const struct graph *, const char *);
int		 graph_lookup(const struct graph *, const char *, size_t *,
		     char **);
size_t		 graph_heads(const struct graph *, size_t **);
size_t		 graph_order(const struct graph *, const size_t **);
size_t		 graph_parents(const struct graph *, size_t, const size_t **);
size_t		 graph_depends(const struct graph *, size_t, const size_t **);
int		 graph_plan(const struct graph *, const char *const *, size_t,
		     const char *, enum graph_dir, struct graph_plan *,
		     char **);
void		 graph_plan_clear(struct graph_plan *);

/*
 * graph_skipped: revisions the version table implies are applied (they are
 * below its rows) although migd never recorded them, while migd ran
 * something below them and something above them: a revision inserted into
 * the chain after the ones around it were applied (a rebase).  rows are the
 * version table's ids (unknown ones ignored); rec[idx] says what migd's
 * history knows of each revision:
 *   GRAPH_REC_KNOWN  recorded as applied (up, stamp, adopt, resolved as
 *                    applied)
 *   GRAPH_REC_RAN    applied by migd (up or stamp) since the newest stamp,
 *                    that stamp's rows included: migd knew the state then
 * A revision without KNOWN that has a RAN revision among what it builds on
 * (transitively) and an applied RAN revision among what builds on it is
 * skipped.  Revisions below everything migd ran (an Alembic database taken
 * over, or below a stamp) are never skipped: migd cannot know about them.
 * Sets *out to a new array (caller frees, also for 0) in graph_order and
 * returns its length.  Linear.
 */
#define GRAPH_REC_KNOWN	0x1
#define GRAPH_REC_RAN	0x2
size_t		 graph_skipped(const struct graph *, const char *const *,
		     size_t, const unsigned char *, size_t **);

/*
 * graph_newest_first: every revision once, newest first, as Alembic's
 * `history` lists them: a topological order with each revision after all
 * that build on it (over both kinds of edge), one branch walked from its
 * head down to its fork before the next, ties in input order.  Sets *out to
 * a new array (caller frees, also for 0) and returns its length.  Linear.
 */
#define GRAPH_LISTED_HEAD	 0x1	/* nobody's parent (graph_heads) */
#define GRAPH_LISTED_MERGEPOINT	 0x2	/* several parents */
#define GRAPH_LISTED_BRANCHPOINT 0x4	/* the parent of several */
#define GRAPH_LISTED_DEPENDED	 0x8	/* in some revision's depends_on */
struct graph_listed {
	size_t		 idx;
	int		 flags;		/* GRAPH_LISTED_* */
};
size_t		 graph_newest_first(const struct graph *,
		     struct graph_listed **);

/*
 * graph_stamp: the version table after `stamp TARGETS`, as Alembic's stamp
 * leaves it (ScriptDirectory._stamp_revs, each StampStep applied by its
 * HeadMaintainer).  Each target is a revision id or unique prefix, "base",
 * "head" (the single head) or "heads" (Alembic's real heads: nobody's
 * down_revision nor depends_on).  A target replaces only the rows on its
 * lineage (its ancestors and descendants over both kinds of edge) and keeps
 * the others; with purge the current rows are ignored (Alembic empties the
 * table first).  Refused, as Alembic refuses: a row no file defines (unless
 * purge; returns GRAPH_STAMP_UNKNOWN_ROW), an unknown or ambiguous target,
 * "head" with several heads, targets whose steps undo each other.  Refused
 * where Alembic would write a table that loses or contradicts what is
 * applied: a step dropping a row that is on neither side of the revision
 * replacing it (Alembic's stamp of several targets or heads does, unless
 * "base" is one of them), and rows of which one builds on another.  On
 * success returns 0 and fills out (release with graph_stamp_clear): rows in
 * index order, and the revisions the targets named, once each, in order.
 * On failure returns -1 (or GRAPH_STAMP_UNKNOWN_ROW), out empty, *cause set
 * (caller frees).  Pure; linear in the graph per target and per revision
 * named.
 */
#define GRAPH_STAMP_UNKNOWN_ROW	(-2)
struct graph_stamp {
	size_t		*rows;
	size_t		 n_rows;
	size_t		*named;
	size_t		 n_named;
};
int		 graph_stamp(const struct graph *, const char *const *, size_t,
		     const char *const *, size_t, int, struct graph_stamp *,
		     char **);
void		 graph_stamp_clear(struct graph_stamp *);

#endif
