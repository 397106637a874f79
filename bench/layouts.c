/*
 * layouts: loading and planning a directory of N migrations in each of the
 * other tools' layouts against the same migrations as migd files (issue 14):
 * revset_load (read, parse, SQL analysis, graph) then a plan from base to
 * head, R times each, interleaved; prints per layout the best time (other
 * load on the machine only adds to a time), the median, their ratios to
 * migd's files, the median of each round's ratio, the walk alone, the
 * CPU time of the load (every thread's: what a busy machine pays), and the
 * CPU time of the system calls the walk cannot do without (each file opened,
 * stat'ed, read and closed; diesel's directories and metadata.toml stat'ed),
 * on one thread with nothing else, and each round's excess of it over migd
 * files' as a share of their load's CPU time: the part of a layout's extra
 * cost that is the kernel's.  Figures, never assertions.
 *
 *   cc -O2 -D_GNU_SOURCE -IBUILD -Idaemon -Iinclude -I/usr/include/postgresql \
 *       -o layouts bench/layouts.c BUILD/libmigd.a -levent -ljansson -lpq \
 *       -lpg_query -lnettle -linih
 *   layouts [N] [ROUNDS] [LAYOUT...]	(bench/run.sh: 1000 21)
 *
 * LAYOUTs (layout_name's words) run only those, the ratios to the first:
 * `layouts 1000 31 sqlx` alone under perf record, say.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "graph.h"
#include "layout.h"
#include "migfile.h"
#include "revset.h"
#include "util.h"

#define BENCH_MAXROUNDS	101

static double
bench_now(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
}

/* CPU time of the process, every thread's: the work, whatever the wait. */
static double
bench_cpu(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ((double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
}

static void
bench_put(const char *path, const char *text)
{
	FILE	*f;

	if ((f = fopen(path, "w")) == NULL || fputs(text, f) == EOF ||
	    fclose(f) != 0) {
		perror(path);
		exit(2);
	}
}

/* Migration i's SQL: a table, an index, a comment; its down drops it. */
static void
bench_sql(size_t i, char *up, size_t uplen, char *down, size_t downlen)
{
	snprintf(up, uplen, "CREATE TABLE bench_%zu (\n    id bigint "
	    "GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n    name text NOT NULL,"
	    "\n    created_at timestamptz NOT NULL DEFAULT now()\n);\n"
	    "CREATE INDEX bench_%zu_name_idx ON bench_%zu (name);\n"
	    "COMMENT ON TABLE bench_%zu IS 'table %zu';\n", i, i, i, i, i);
	snprintf(down, downlen, "DROP TABLE bench_%zu;\n", i);
}

/* One directory of n migrations in layout f under top. */
static char *
bench_dir(const char *top, enum layout_format f, size_t n)
{
	char	*dir, *path, *text, up[512], down[128], ver[32], prev[32];
	size_t	 i;

	dir = xprintf("%s/%s", top, layout_name(f));
	mkdir(dir, 0755);
	for (i = 1; i <= n; i++) {
		bench_sql(i, up, sizeof up, down, sizeof down);
		snprintf(ver, sizeof ver, "%014zu", 20240000000000 + i);
		switch (f) {
		case LAYOUT_MIGD:
			if (i == 1)
				snprintf(prev, sizeof prev, "none");
			else
				snprintf(prev, sizeof prev, "%014zu",
				    20240000000000 + i - 1);
			path = xprintf("%s/%s_table_%zu.sql", dir, ver, i);
			text = xprintf("-- down_revision: %s\n-- message: "
			    "table %zu\n\n-- migrate:up\n%s\n-- migrate:down\n"
			    "%s", prev, i, up, down);
			bench_put(path, text);
			break;
		case LAYOUT_DBMATE:
			path = xprintf("%s/%s_table_%zu.sql", dir, ver, i);
			text = xprintf("-- migrate:up\n%s\n-- migrate:down\n%s",
			    up, down);
			bench_put(path, text);
			break;
		case LAYOUT_GOOSE:
			path = xprintf("%s/%s_table_%zu.sql", dir, ver, i);
			text = xprintf("-- +goose Up\n%s\n-- +goose Down\n%s",
			    up, down);
			bench_put(path, text);
			break;
		case LAYOUT_GOLANG_MIGRATE:
		case LAYOUT_SQLX:
			path = xprintf("%s/%s_table_%zu.up.sql", dir, ver, i);
			bench_put(path, up);
			free(path);
			path = xprintf("%s/%s_table_%zu.down.sql", dir, ver, i);
			text = xstrdup(down);
			bench_put(path, text);
			break;
		case LAYOUT_DIESEL:
			path = xprintf("%s/%s_table_%zu", dir, ver, i);
			mkdir(path, 0755);
			free(path);
			path = xprintf("%s/%s_table_%zu/up.sql", dir, ver, i);
			bench_put(path, up);
			free(path);
			path = xprintf("%s/%s_table_%zu/down.sql", dir, ver, i);
			text = xstrdup(down);
			bench_put(path, text);
			break;
		case LAYOUT_FLYWAY:
			path = xprintf("%s/V%zu__table_%zu.sql", dir, i, i);
			bench_put(path, up);
			free(path);
			path = xprintf("%s/U%zu__table_%zu.sql", dir, i, i);
			text = xstrdup(down);
			bench_put(path, text);
			break;
		default:
			abort();
		}
		free(path);
		free(text);
	}
	return (dir);
}

/* One load and one plan base -> head; seconds, and in *cpu the CPU time
 * it took. */
static double
bench_once(const char *dir, enum layout_format f, size_t n, double *cpu)
{
	struct revset_ctx	 ctx;
	struct revset		*rs;
	struct errlist		 errs = { NULL, 0 };
	struct graph_plan	 plan;
	char			*cause = NULL;
	double			 t0, t, c0;

	memset(&ctx, 0, sizeof ctx);
	ctx.version_schema = "public";
	ctx.history_schema = "public";
	ctx.format = f;
	c0 = bench_cpu();
	t0 = bench_now();
	if (revset_load(dir, &ctx, &rs, &errs) != 0) {
		fprintf(stderr, "%s: %s\n", dir, errs.n ? errs.v[0] : "?");
		exit(1);
	}
	if (graph_plan(rs->graph, NULL, 0, "head", GRAPH_UP, &plan,
	    &cause) != 0 || plan.n_steps != n) {
		fprintf(stderr, "%s: plan: %s\n", dir, cause ? cause : "size");
		exit(1);
	}
	t = bench_now() - t0;
	*cpu = bench_cpu() - c0;
	graph_plan_clear(&plan);
	revset_unref(rs);
	return (t);
}

/* The walk alone (read and parse the files, no SQL analysis); seconds. */
static double
bench_walk(const char *dir, enum layout_format f)
{
	struct migset	 set;
	struct errlist	 errs = { NULL, 0 };
	double		 t0, t;

	t0 = bench_now();
	if (migdir_scan_format(dir, f, &set, &errs, NULL) != 0) {
		fprintf(stderr, "%s: %s\n", dir, errs.n ? errs.v[0] : "?");
		exit(1);
	}
	t = bench_now() - t0;
	migset_clear(&set);
	return (t);
}

/* One file as the walk reads it, under the directory's fd: open, fstat,
 * one read of its size, close. */
static void
bench_file(int dfd, const char *rel, char *buf, size_t size)
{
	struct stat	 st;
	int		 fd;

	if ((fd = openat(dfd, rel, O_RDONLY | O_CLOEXEC | O_NOCTTY |
	    O_NONBLOCK)) == -1 || fstat(fd, &st) == -1 ||
	    (size_t)st.st_size >= size ||
	    read(fd, buf, (size_t)st.st_size + 1) != st.st_size) {
		perror(rel);
		exit(1);
	}
	close(fd);
}

/* The walk's system calls alone, on this thread, names under the
 * directory's fd as the walk has them: CPU seconds. */
static double
bench_floor(const char *dir, enum layout_format f)
{
	static char	 buf[1 << 20];
	struct migset	 set;
	struct errlist	 errs = { NULL, 0 };
	struct stat	 st;
	const char	*rel;
	char		*meta;
	size_t		 i, len = strlen(dir) + 1;
	double		 c0, c;
	int		 dfd;

	if (migdir_scan_format(dir, f, &set, &errs, NULL) != 0 ||
	    (dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		fprintf(stderr, "%s: %s\n", dir, errs.n ? errs.v[0] : "?");
		exit(1);
	}
	c0 = bench_cpu();
	for (i = 0; i < set.n; i++) {
		bench_file(dfd, set.files[i]->path + len, buf, sizeof buf);
		if (set.files[i]->down_path != NULL)
			bench_file(dfd, set.files[i]->down_path + len, buf,
			    sizeof buf);
	}
	/* diesel: each migration's directory, and its metadata.toml. */
	for (i = 1; i < set.n_dirs; i++) {
		rel = set.dirs[i] + len;
		meta = xprintf("%s/metadata.toml", rel);
		if (fstatat(dfd, rel, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
		    (fstatat(dfd, meta, &st, 0) != 0 && errno != ENOENT)) {
			perror(set.dirs[i]);
			exit(1);
		}
		free(meta);
	}
	c = bench_cpu() - c0;
	close(dfd);
	migset_clear(&set);
	return (c);
}

static int
bench_cmp(const void *a, const void *b)
{
	double	 x = *(const double *)a, y = *(const double *)b;

	return (x < y ? -1 : x > y);
}

int
main(int argc, char **argv)
{
	static const enum layout_format	 all[] = {
		LAYOUT_MIGD, LAYOUT_DBMATE, LAYOUT_GOLANG_MIGRATE, LAYOUT_SQLX,
		LAYOUT_DIESEL, LAYOUT_GOOSE, LAYOUT_FLYWAY
	};
	enum layout_format	 fmts[nitems(all)];
	size_t			 nf = 0;
	double		 t[nitems(fmts)][BENCH_MAXROUNDS], med[nitems(fmts)];
	double		 w[nitems(fmts)][BENCH_MAXROUNDS], wmed[nitems(fmts)];
	double		 q[nitems(fmts)][BENCH_MAXROUNDS];
	double		 c[nitems(fmts)][BENCH_MAXROUNDS];
	double		 cq[nitems(fmts)][BENCH_MAXROUNDS], cpu;
	double		 k[nitems(fmts)][BENCH_MAXROUNDS];
	double		 kq[nitems(fmts)][BENCH_MAXROUNDS];
	char		 tmpl[] = "/tmp/migd-layouts.XXXXXX", *dirs[nitems(fmts)];
	char		*cmd;
	size_t		 n = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000;
	size_t		 rounds = argc > 2 ? strtoul(argv[2], NULL, 10) : 21;
	size_t		 i, r;

	for (i = 3; i < (size_t)argc && nf < nitems(all); i++) {
		if (layout_parse_name(argv[i], &fmts[nf]) != 0 ||
		    fmts[nf] == LAYOUT_AUTO) {
			fprintf(stderr, "layouts: %s: no such layout\n",
			    argv[i]);
			return (2);
		}
		nf++;
	}
	if (nf == 0)
		for (nf = 0; nf < nitems(all); nf++)
			fmts[nf] = all[nf];
	if (n == 0 || n > 100000 || rounds == 0 || rounds > BENCH_MAXROUNDS) {
		fprintf(stderr, "usage: layouts [N<=100000] [ROUNDS<=%d] "
		    "[LAYOUT...]\n", BENCH_MAXROUNDS);
		return (2);
	}
	if (mkdtemp(tmpl) == NULL) {
		perror("mkdtemp");
		return (2);
	}
	for (i = 0; i < nf; i++)
		dirs[i] = bench_dir(tmpl, fmts[i], n);
	/* Warm the page cache and the parser once; then rounds, interleaved. */
	for (i = 0; i < nf; i++)
		(void)bench_once(dirs[i], fmts[i], n, &cpu);
	for (r = 0; r < rounds; r++) {
		for (i = 0; i < nf; i++) {
			t[i][r] = bench_once(dirs[i], fmts[i], n, &c[i][r]);
			w[i][r] = bench_walk(dirs[i], fmts[i]);
			k[i][r] = bench_floor(dirs[i], fmts[i]);
		}
	}
	/* Each round's ratio to migd's files of the same round: the layouts
	 * of one round ran within a second of each other, under the same
	 * load; the median of those is the steadiest figure on a busy box. */
	for (i = 0; i < nf; i++) {
		for (r = 0; r < rounds; r++) {
			q[i][r] = t[i][r] / t[0][r];
			cq[i][r] = c[i][r] / c[0][r];
			kq[i][r] = (k[i][r] - k[0][r]) / c[0][r];
		}
		qsort(q[i], rounds, sizeof q[i][0], bench_cmp);
		qsort(cq[i], rounds, sizeof cq[i][0], bench_cmp);
		qsort(kq[i], rounds, sizeof kq[i][0], bench_cmp);
	}
	printf("# load (read, parse, SQL analysis, graph) + plan base->head of "
	    "%zu migrations, %zu interleaved rounds: the best (the machine's "
	    "other load only adds), the median, and the median of each "
	    "round's ratio to migd files; the same of the CPU time (every "
	    "thread's); the CPU time of the walk's system calls alone, and "
	    "the median of each round's excess of it over the first "
	    "layout's, as a share of the first's load CPU\n", n, rounds);
	for (i = 0; i < nf; i++) {
		qsort(t[i], rounds, sizeof t[i][0], bench_cmp);
		med[i] = t[i][0];
		qsort(w[i], rounds, sizeof w[i][0], bench_cmp);
		wmed[i] = w[i][0];
		qsort(c[i], rounds, sizeof c[i][0], bench_cmp);
		qsort(k[i], rounds, sizeof k[i][0], bench_cmp);
		printf("%-15s best %6.1f ms %+6.1f %%  median %6.1f ms %+6.1f %%  "
		    "round ratio %+6.1f %%  (reading the files alone: best "
		    "%5.1f ms, %+6.1f %%)  CPU median %6.1f ms, round ratio "
		    "%+6.1f %%  (system calls alone: best %5.1f ms CPU, "
		    "round excess %+5.1f %%)\n", layout_name(fmts[i]),
		    med[i] * 1e3, (med[i] / med[0] - 1) * 100,
		    t[i][rounds / 2] * 1e3, (t[i][rounds / 2] /
		    t[0][rounds / 2] - 1) * 100, (q[i][rounds / 2] - 1) * 100,
		    wmed[i] * 1e3, (wmed[i] / wmed[0] - 1) * 100,
		    c[i][rounds / 2] * 1e3, (cq[i][rounds / 2] - 1) * 100,
		    k[i][0] * 1e3, kq[i][rounds / 2] * 100);
	}
	cmd = xprintf("rm -rf '%s'", tmpl);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpl);
	free(cmd);
	for (i = 0; i < nf; i++)
		free(dirs[i]);
	return (0);
}
