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
};
int	 author_new(const struct author_opts *);
int	 author_merge(const struct author_opts *);
struct revset;
struct revset_ctx;
char	*author_directory(const struct author_opts *, const char **);
struct revset *author_load(const char *, const struct revset_ctx *);
extern json_t	*author_notes;	/* --json: what author_load noted */

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
