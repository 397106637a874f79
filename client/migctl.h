/* migctl's private header: the human printers of output.c. */
#ifndef MIGCTL_H
#define MIGCTL_H

#include <jansson.h>

struct migctl_opts {
	int	 json;
	int	 stream;
	int	 color;
	int	 color_err;	/* stderr's own: it may be a file */
};

extern struct migctl_opts opts;

/* The JSON-RPC code of an error migctl finds itself (data.kind says which);
 * a usage error has MIGD_ERR_INVALID_PARAMS, invalid files migd's own. */
#define MIGCTL_ERR_CLIENT	-32000

/* author.c (migctl-author): the offline commands. */
struct author_opts {
	const char	*message;
	const char	*directory;
	const char	*config;
	const char	*head;
	const char	*range;		/* upgrade/downgrade --sql: FROM:TO */
	int		 atomic;	/* --sql: 1, 0, or -1: as configured */
	const char	*db;		/* --db: a database of the config */
	int		 reads;		/* what of it: CONFIG_READS_* */
};
int	 author_new(const struct author_opts *);
int	 author_merge(const struct author_opts *);
struct revset;
struct revset_ctx;
char	*author_directory(const struct author_opts *, const char **);
struct config;
struct config_db;
struct config *author_config(const struct author_opts *, const char *, int,
	    const struct config_db **);
struct revset *author_load(const char *, const struct revset_ctx *);
extern json_t	*author_notes;	/* --json: what author_load noted */

struct migctl {
	const char		*socket;
	const char		*db;		/* --db: the database param */
	int			 fd;
	char			*rbuf;		/* bytes read, not yet a line */
	size_t			 rlen, rcap;
	int			 dry_run;
	int			 sql;		/* upgrade/downgrade --sql */
	int			 allow_drift;
	int			 apply_skipped;
	int			 purge;		/* stamp --purge */
	const char		*adopt_from;	/* adopt --from */
	const char		*adopt_table;	/* and --table */
	const char		*lint_format;	/* lint -s FILE... --format */
	int			 atomic;	/* 1, 0, or -1: as configured */
	int			 cancel_sent;	/* Ctrl-C asked migd to cancel */
	long			 limit;
	double			 wait_daemon;	/* seconds to retry connecting */
	double			 timeout;	/* wait --timeout */
	const char		*wait_for;	/* wait --for */
	const char		*out;		/* import --out */
	int			 allow_partial;	/* import --allow-partial */
	struct author_opts	 author;
	int			 socket_given;	/* -s, or $MIGD_SOCKET */
	char			**args;		/* the command's arguments */
	int			 nargs;
	int			 all;		/* --all */
	long			 parallel;	/* --parallel, 0: migd's */
	const char		*canary;	/* --canary */
	int			 cont;		/* --continue-on-error */
	int			 fresh;		/* status --all --fresh */
};

/* The options a command takes: migctl_cmd.flags, migctl_opt.flag. */
#define ARG_DRY_RUN	0x001
#define ARG_DRIFT	0x002
#define ARG_LIMIT	0x004
#define ARG_WAIT_DAEMON	0x008
#define ARG_WAIT	0x010	/* --for, --timeout */
#define ARG_MESSAGE	0x020	/* -m */
#define ARG_DIR		0x040	/* -d */
#define ARG_CONFIG	0x080	/* -c: the files', or --local's migd's */
#define ARG_HEAD	0x100	/* --head */
#define ARG_ATOMIC	0x200	/* --atomic, --no-atomic */
#define ARG_SQL		0x400	/* --sql: print a run's SQL, no daemon */
#define ARG_SKIPPED	0x800	/* --apply-skipped */
#define ARG_IMPORT	0x1000	/* import --out, --allow-partial */
#define ARG_PURGE	0x2000	/* stamp --purge */
#define ARG_FROM	0x4000	/* adopt --from */
#define ARG_ALL		0x8000	/* --all: every database */
#define ARG_ROLLOUT	0x10000	/* upgrade --all's --parallel, --canary,
				   --continue-on-error */
#define ARG_FRESH	0x20000	/* status --all --fresh */
#define ARG_FORMAT	0x40000	/* lint -s SOCKET FILE... --format */
#define ARG_NBITS	19
#define ARG_FILES	(ARG_DIR | ARG_CONFIG)

struct migctl_cmd {
	const char	*name;
	const char	*method;
	const char	*usage;		/* synopsis lines, after "migctl " */
	const char	*summary;	/* its line in the overview */
	const char	*about;		/* migctl help CMD: what it does, */
	const char	*arguments;	/* its arguments, */
	const char	*examples;	/* examples */
	const char	*exits;		/* and exit codes */
	int		 min_args, max_args;
	int		 flags;		/* ARG_*: the options it takes */
	json_t		*(*params)(struct migctl *, char **, int);
	void		(*print)(json_t *);
	int		(*exit_code)(json_t *);
	int		(*local)(struct migctl *);	/* runs itself */
	const char	*too_large;	/* said after request_too_large */
};

enum migctl_optid {
	OPT_SOCKET, OPT_JSON, OPT_STREAM, OPT_LOCAL, OPT_VERBOSE, OPT_HELP,
	OPT_VERSION, OPT_DRY_RUN, OPT_SQL, OPT_ATOMIC, OPT_NO_ATOMIC,
	OPT_DRIFT, OPT_SKIPPED, OPT_WAIT_DAEMON, OPT_LIMIT, OPT_FOR, OPT_TIMEOUT,
	OPT_MESSAGE, OPT_DIR, OPT_CONFIG, OPT_HEAD, OPT_OUT, OPT_PARTIAL,
	OPT_PURGE, OPT_FROM, OPT_DB, OPT_ALL, OPT_PARALLEL, OPT_CANARY,
	OPT_CONTINUE, OPT_FRESH, OPT_FORMAT, OPT_TABLE
};

struct migctl_opt {
	enum migctl_optid	 id;
	char			 sname;	/* -x, or 0 */
	const char		*lname;	/* --name */
	const char		*alias;	/* another --name, or NULL */
	const char		*meta;	/* its value; NULL: a switch */
	int			 flag;	/* ARG_*; 0: every command's */
	const char		*help;
};

#define TARGETS		"head, heads, base, +N, -N, or a revision id or a " \
	"unique prefix of one"

/* migctl.c: the command and option tables. */
/* commands.c: the table; migctl.c: what its entries call */
json_t	*params_target(struct migctl *, char **, int);
json_t	*params_stamp(struct migctl *, char **, int);
json_t	*params_adopt(struct migctl *, char **, int);
json_t	*params_resolve(struct migctl *, char **, int);
json_t	*params_accept(struct migctl *, char **, int);
json_t	*params_history(struct migctl *, char **, int);
int	 exit_verify(json_t *);
int	 exit_check(json_t *);
int	 exit_plan(json_t *);
int	 migctl_wait(struct migctl *);
int	 migctl_new(struct migctl *);
int	 migctl_run(struct migctl *, const struct migctl_cmd *, char **, int);
int	 migctl_author_args(struct migctl *, char **, const char *,
	    const char *, const char *);
void	 migctl_author_exec(char **, int) __attribute__((noreturn));
int	 migctl_merge(struct migctl *);
int	 migctl_import(struct migctl *);
/* lint_live.c: lint over the socket (the plan, or the FILEs sent). */
int	 migctl_lint(struct migctl *);
extern const struct migctl_cmd	migctl_cmds[];
extern const size_t		migctl_ncmds;
extern const struct migctl_opt	migctl_options[];
extern const size_t		migctl_noptions;

/* usage.c: help, usage errors, "did you mean", failing. */
extern const struct migctl_cmd	*usage_cur;
size_t	 usage_distance(const char *, const char *);
char	*usage_suggest_cmd(const char *);
char	*usage_suggest_opt(const char *);
const struct migctl_cmd *usage_lookup(const char *);
void	 usage_help(const struct migctl_cmd *);
void	 usage_overview(void);
int	 usage_help_cmd(struct migctl *);
void	 usage_error(char *, const char *, ...)
	    __attribute__((noreturn, format(printf, 2, 3)));
void	 die(int, const char *, ...)
	    __attribute__((noreturn, format(printf, 2, 3)));

/* conn.c: the control socket. */
int	 conn_try(struct migctl *);
void	 conn_open(struct migctl *);
void	 conn_close(struct migctl *);
void	 conn_send(struct migctl *, const char *, json_t *);
double	 conn_now(void);

/* offline.c (migctl-author): SQL for review, the graph, without a daemon. */
int	 offline_sql(const struct author_opts *, int);
int	 offline_revisions(const struct author_opts *);

/* lint.c (migctl-author): migctl lint. */
int	 lint_main(const struct author_opts *, char *const *, size_t);

/* local.c: --local, a private migd for one command. */
const char *local_start(const char *, int, int);
void	 local_abort(void);

void	 out_status(json_t *);
void	 out_version(json_t *);
void	 out_current(json_t *);
void	 out_heads(json_t *);
void	 out_revisions(json_t *);
void	 out_history(json_t *);
void	 out_plan(json_t *);
void	 out_lint_result(json_t *);
void	 out_run(json_t *);
void	 out_cancel(json_t *);
void	 out_rows(json_t *);
void	 out_accept(json_t *);
void	 out_adopt(json_t *);
void	 out_schemas(json_t *);
void	 out_verify(json_t *);
void	 out_reload(json_t *);
void	 out_progress(json_t *);
void	 out_fleet_progress(json_t *);
void	 out_fleet(const char *, json_t *);
void	 out_progress_tick(void);
void	 out_error(json_t *);
void	 out_print_error(json_t *);
void	 out_fail(int, const char *, json_t *, const char *, ...)
	    __attribute__((noreturn, format(printf, 4, 5)));
void	 out_json(json_t *, size_t);
char	*out_escape(const char *, size_t, int);
void	 out_clean(json_t *);
void	 out_write_escaped(int, const char *, size_t);
void	 out_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
const char *out_str(json_t *, const char *);

#endif
