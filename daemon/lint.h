/*
 * Deploy-safety lint of migration SQL over PostgreSQL's parse tree: which
 * statements take a lock that blocks reads or writes on an existing table
 * for as long as a scan or a rewrite, or break running clients.  Pure: no
 * I/O.  In two steps: lint_stmt() reads each parsed statement once, while
 * sqlscan walks the parse tree, and keeps what it saw (candidate findings,
 * the tables it creates); lint_section() later judges a section with the
 * context of the run (tables created earlier are new, schemas migd manages,
 * whether the migration runs statement by statement).
 */
#ifndef MIGD_LINT_H
#define MIGD_LINT_H

#include <stddef.h>

#include <jansson.h>

enum lint_severity {
	LINT_INFO,		/* a design choice, never blocks */
	LINT_WARNING,		/* brief lock or breaks running clients */
	LINT_ERROR		/* long lock on an existing table, or fails */
};

/* Applies only to a table that existed before the run (not created
 * earlier in the same migration or the same run). */
#define LINT_EXISTING	0x1
/* Applies only to a migration run statement by statement (no transaction
 * around it): a rerun after a failure must not trip over its own work. */
#define LINT_BARE	0x2
/* Applies only to a migration that runs in one transaction: in one run
 * statement by statement, each statement commits by itself. */
#define LINT_IN_TX	0x4
/* SET NOT NULL: no finding when a constraint on the table was validated
 * earlier in the run (PostgreSQL 12+ then skips the scan). */
#define LINT_UNPROVED	0x8
/* DROP SCHEMA: a finding only when the schema (the event's table) is one
 * migd manages. */
#define LINT_MANAGED	0x10

/* lint_event.rule of an event that is no finding. */
#define LINT_EV_CREATES		(-1)	/* creates table */
#define LINT_EV_VALIDATES	(-2)	/* validates a constraint of table */
#define LINT_EV_NONE		(-3)	/* a finding a later statement undid */

struct lint_rule {
	const char		*name;	/* Squawk's where it is Squawk's rule */
	enum lint_severity	 severity;
	const char		*lock;	/* what the statement takes */
	const char		*safe;	/* what to do instead */
	/* The lock on the named table as pg_locks names it, when SHARE or
	 * stronger (what waits behind it, or it behind), or NULL. */
	const char		*mode;
	/* Whether the harm grows with the table's size (a scan, a rewrite, an
	 * index build): a small table makes the finding informational. */
	int			 sized;
};

/* What one statement showed: a candidate finding, or a created table. */
struct lint_event {
	int	 rule;		/* index in lint_rules, or LINT_EV_* */
	int	 flags;		/* LINT_EXISTING, LINT_BARE, ... */
	int	 line;		/* file line and column of the statement */
	int	 col;
	char	*table;		/* "schema.name" or "name", or NULL */
	char	*msg;		/* what is wrong; NULL for a created table */
	char	*ignore;	/* "-- migd:lint-ignore RULE,... reason" text
				   above the statement (after the marker),
				   or NULL */
	int	 ignore_line;	/* its line (above the statement's DO, for
				   a statement of a DO block) */
};

/* What lint_stmt() kept of a section, and its state inside the section. */
struct lint_scan {
	struct lint_event	*ev;
	size_t			 n;
	/* Within the current transaction of the section: */
	char			**enum_vals;	/* ALTER TYPE ... ADD VALUE */
	size_t			  n_enum;
	char			**not_valid;	/* "table\nconstraint" */
	size_t			  n_not_valid;
	int			  in_begin;	/* after the file's BEGIN */
	int			  in_do;	/* in a DO block: one
						   transaction however run */
	size_t			  tx_first;	/* its first event */
};

/* One finding, judged. */
struct lint_finding {
	char	*path;
	int	 line;
	int	 col;
	int	 rule;
	enum lint_severity severity;	/* the rule's, unless the table is
					   small (lint_finding_sized) */
	char	*msg;
	char	*ignored;	/* why it is ignored ("line 4: reason"), or
				   NULL: it counts */
	char	*table;		/* the existing table it concerns, as written
				   ("schema.name" or "name"), or NULL */
	long long rows;		/* the catalog's estimate of its rows, or -1:
				   not known (offline, or never analyzed) */
};

struct lint_report {
	struct lint_finding	*v;
	size_t			 n;
};

/* The run so far, fed section by section in the order they run. */
struct lint_ctx {
	char		**created;	/* tables created earlier in the run, and
					   "table\nvalidated" for those with a
					   constraint validated: */
	size_t		  n_created;	/* a hash set of cap_created slots */
	size_t		  cap_created;
	char *const	 *managed;	/* schemas migd manages */
	size_t		  n_managed;
};

extern const struct lint_rule	lint_rules[];
extern const size_t		lint_n_rules;

int	 lint_rule_find(const char *);
const char *lint_severity_name(enum lint_severity);

/* sqlscan's walk: one parsed statement ({"AlterTableStmt": ...}) of the
 * section sql, starting at byte offset (line and column given). */
void	 lint_stmt(struct lint_scan *, json_t *, const char *sql,
	    size_t offset, int line, int col);
void	 lint_scan_end(struct lint_scan *);
void	 lint_scan_clear(struct lint_scan *);
void	 lint_scan_copy(struct lint_scan *, const struct lint_scan *);

/*
 * Judges a section (its scan) in the run's context: path for messages,
 * file_ignore the file's "-- lint-ignore:" header value (or NULL) at line
 * ignore_line, bare when the migration runs statement by statement.
 * Appends to the report, and adds the tables the section creates to ctx.
 */
void	 lint_section(struct lint_ctx *, const struct lint_scan *,
	    const char *path, const char *file_ignore, int ignore_line,
	    int bare, struct lint_report *);
void	 lint_ctx_clear(struct lint_ctx *);
void	 lint_report_clear(struct lint_report *);
/* Counts the findings that are not ignored, of a severity or above. */
size_t	 lint_report_count(const struct lint_report *, enum lint_severity);
/* A finding as JSON: file, line, column, severity, rule, message, lock,
 * safe, ignored (string or null); table and rows when known. */
json_t	*lint_finding_json(const struct lint_finding *);
/* "FILE:LINE:COL: severity: rule: message" (to free); with_lock adds the
 * lock and the alternative on further lines. */
char	*lint_finding_text(const struct lint_finding *, int with_lock);

/*
 * Live context, from the catalog: the estimate of a table's rows from
 * pg_class (reltuples, relpages) on a server of that version, or -1 when
 * the catalog does not know (never vacuumed nor analyzed).
 */
long long lint_rows_estimate(double reltuples, long long relpages,
	    int server_version);
/* Gives a finding its table's estimate: a sized rule's finding on a table
 * under small rows drops to info, and its message says why.  Returns 1
 * when it dropped. */
int	 lint_finding_sized(struct lint_finding *, long long rows,
	    long long small);
/* The lock modes (pg_locks' names, comma-separated) that conflict with
 * mode, per PostgreSQL's table of conflicting lock modes, or NULL. */
const char *lint_lock_conflicts(const char *mode);
/* The rule's table lock (lint_rule.mode), or NULL. */
const char *lint_finding_mode(const struct lint_finding *);
/* Of the sessions the catalog found on a table (blockers: modes,
 * xact_age_s...), those in the way of mode: conflicting with it, or in a
 * transaction long_xact_s old or older; conflicts set for mode (new). */
json_t	*lint_blockers_for(const char *mode, json_t *sessions,
	    long long long_xact_s);

#endif
