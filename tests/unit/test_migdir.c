/* Unit tests for migdir.c against real temporary directories. */
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "layout.h"
#include "migfile.h"
#include "tap.h"
#include "util.h"

static char	*top;	/* the mkdtemp directory, removed at the end */

/* Builds the tree under test; any setup failure ends the run loudly. */
static void
put(const char *rel, const char *text, mode_t mode)
{
	char	*path = xprintf("%s/%s", top, rel);
	FILE	*f;

	if ((f = fopen(path, "w")) == NULL || fputs(text, f) == EOF ||
	    fclose(f) == EOF || chmod(path, mode) == -1) {
		perror(path);
		exit(2);
	}
	free(path);
}

/* Creates a directory under the temporary top. */
static void
mkd(const char *rel, mode_t mode)
{
	char	*path = xprintf("%s/%s", top, rel);

	if (mkdir(path, 0700) == -1 || chmod(path, mode) == -1) {
		perror(path);
		exit(2);
	}
	free(path);
}

/* Creates a symbolic link under the temporary top. */
static void
lnk(const char *target, const char *rel)
{
	char	*path = xprintf("%s/%s", top, rel);

	if (symlink(target, path) == -1) {
		perror(path);
		exit(2);
	}
	free(path);
}

/* Returns "top/rel": what migdir puts into its messages. */
static char *
at(const char *rel)
{
	return (xprintf("%s/%s", top, rel));
}

/* Errors compared as one string show every difference in one failure. */
static char *
join(struct errlist *el)
{
	return (errlist_join(el, "\n"));
}

/* The expected message with "@" for the directory. */
static char *
expand(const char *pattern)
{
	struct passwd	*pw = getpwuid(geteuid());
	char		*s, *t;

	/* "<me>": the owner of what the tests create. */
	s = tap_expand(pattern, top);
	t = tap_subst(s, "<me>", pw != NULL ? pw->pw_name : "?");
	free(s);
	return (t);
}

/* Loads rel (under top) that must fail with exactly want ("@" = top). */
static void
load_fails(const char *rel, const char *want, const char *name)
{
	struct errlist	 el = { NULL, 0 };
	struct migset	 set;
	char		*dir = at(rel), *got, *exp = expand(want);

	/* Garbage in: the load must clear it. */
	memset(&set, 0, sizeof set);
	set.files = (struct migfile **)1;
	set.n = 99;

	is_int(migdir_load(dir, &set, &el), -1, "%s: fails", name);
	ok(set.files == NULL && set.n == 0, "%s: set left empty", name);
	got = join(&el);
	is_str(got, exp, "%s: messages", name);
	free(got);
	free(exp);
	free(dir);
	errlist_clear(&el);
}

/* nftw callback: removes everything, children first. */
static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	if (remove(path) == -1)
		perror(path);
	return (0);
}

/* A good tree with every kind of entry that must be skipped. */
static void
test_good_tree(void)
{
	static const char *want[] = {
		"good/0001_init.sql",
		"good/b.sql",
		"good/b/0004.sql",
		"good/link.sql",
		"good/sub/0002_next.sql",
		"good/sub/deeper/0003.sql",
	};
	struct errlist	 el = { NULL, 0 };
	struct migset	 set;
	char		*dir, *path, *got;
	size_t		 i;
	int		 rc;

	mkd("good", 0755);
	mkd("good/sub", 0755);
	mkd("good/sub/deeper", 0750);
	mkd("good/b", 0755);
	mkd("good/.git", 0755);
	mkd("good/ignored.d", 0755);
	put("good/0001_init.sql", "-- down_revision: none\n-- migrate:up\n"
	    "CREATE TABLE t ();\n-- migrate:down\nDROP TABLE t;\n", 0644);
	put("good/sub/0002_next.sql", "-- down_revision: 0001\n"
	    "-- migrate:up\nSELECT 1;\n", 0600);
	put("good/sub/deeper/0003.sql", "-- down_revision: 0002\n"
	    "-- migrate:up\n", 0664);
	put("good/b/0004.sql", "-- down_revision: 0003\n-- migrate:up\n",
	    0444);
	put("good/b.sql", "-- down_revision: 0004\n-- migrate:up\n", 0644);
	put("good/.hidden.sql", "broken", 0644);
	put("good/.git/x.sql", "broken", 0644);
	put("good/README.md", "broken", 0644);
	put("good/notes.sql.bak", "broken", 0644);
	put("good/ignored.d/readme.txt", "broken", 0666);
	put("outside.sql", "-- down_revision: b\n-- migrate:up\n", 0644);
	lnk("../outside.sql", "good/link.sql");
	lnk("sub", "good/linkdir");
	lnk("sub", "good/linkdir.sql");

	/* A trailing slash must not double up in paths. */
	dir = xprintf("%s/good/", top);
	rc = migdir_load(dir, &set, &el);
	got = join(&el);
	is_int(rc, 0, "good tree loads");
	is_str(got, "", "good tree: no errors");
	is_int(set.n, nitems(want), "good tree: every migration, no more");
	for (i = 0; i < nitems(want) && i < set.n; i++) {
		path = at(want[i]);
		is_str(set.files[i]->path, path, "file %zu is %s", i, want[i]);
		free(path);
	}
	if (set.n == nitems(want)) {
		is_str(set.files[0]->revision, "0001", "parsed: revision");
		is_str(set.files[0]->down, "DROP TABLE t;\n", "parsed: down");
		is_str(set.files[3]->revision, "link", "symlinked file read");
		is_str(set.files[4]->up, "SELECT 1;\n", "parsed: nested up");
	}
	migset_clear(&set);
	ok(set.files == NULL && set.n == 0, "migset_clear empties the set");
	migset_clear(&set);
	ok(1, "migset_clear twice is harmless");
	free(got);
	free(dir);
	errlist_clear(&el);
}

/* Errors from every file are collected, not just the first file's. */
static void
test_broken(void)
{
	mkd("broken", 0755);
	mkd("broken/z", 0755);
	put("broken/0001_a.sql", "-- down_revision: none\n-- migrate:up\n",
	    0644);
	put("broken/0002_b.sql", "-- revsion: x\n-- migrate:up\n", 0644);
	put("broken/z/0003.sql", "-- down_revision: 0002\nSELECT 1;\n", 0644);
	load_fails("broken",
	    "@/broken/0002_b.sql:1: unknown header 'revsion' (known: "
	    "revision, down_revision, message, transaction, depends_on, "
	    "branch_labels, unfinished)\n"
	    "@/broken/0002_b.sql:1: missing 'down_revision' header (write "
	    "'down_revision: none' for the first revision)\n"
	    "@/broken/z/0003.sql:1: no '-- migrate:up' section (put a line "
	    "'-- migrate:up' between the header and the SQL)",
	    "two broken files");
}

/* Like sshd's StrictModes: others must not be able to change what runs. */
static void
test_permissions(void)
{
	mkd("wfile", 0755);
	put("wfile/0001.sql", "-- down_revision: none\n-- migrate:up\n", 0646);
	put("wfile/0002.sql", "-- down_revision: 0001\n-- migrate:up\n", 0644);
	load_fails("wfile",
	    "@/wfile/0001.sql: refusing a migrations file writable by other "
	    "users (owner <me>, mode 0646): chmod o-w @/wfile/0001.sql",
	    "world-writable file");

	mkd("wdir", 0755);
	mkd("wdir/sub", 0757);
	put("wdir/sub/0001.sql", "-- down_revision: none\n-- migrate:up\n",
	    0644);
	load_fails("wdir",
	    "@/wdir/sub: refusing a migrations directory writable by other "
	    "users (owner <me>, mode 0757): chmod o-w @/wdir/sub",
	    "world-writable subdirectory");

	mkd("wtop", 01777);
	load_fails("wtop",
	    "@/wtop: refusing a migrations directory writable by other users "
	    "(owner <me>, mode 1777): chmod o-w @/wtop",
	    "world-writable top directory");

	/* The target's mode counts for a link, not the link's own. */
	mkd("wlink", 0755);
	put("wtarget.sql", "-- down_revision: none\n-- migrate:up\n", 0666);
	lnk("../wtarget.sql", "wlink/0001.sql");
	load_fails("wlink",
	    "@/wlink/0001.sql: refusing a migrations file writable by other "
	    "users (owner <me>, mode 0666): chmod o-w @/wlink/0001.sql",
	    "symlink to a world-writable file");
}

/* Missing, empty, unreadable and odd entries. */
static void
test_other(void)
{
	struct errlist	 el = { NULL, 0 };
	struct migset	 set;
	char		*dir, *path;
	int		 fd;

	load_fails("missing",
	    "@/missing: cannot open migrations directory: No such file or "
	    "directory",
	    "missing directory");

	put("plain", "", 0644);
	load_fails("plain",
	    "@/plain: cannot open migrations directory: Not a directory",
	    "directory is a file");

	mkd("empty", 0755);
	mkd("empty/sub", 0755);
	put("empty/README", "no migrations yet", 0644);
	dir = at("empty");
	is_int(migdir_load(dir, &set, &el), 0, "empty directory loads");
	is_int(set.n, 0, "empty directory: no files");
	is_int(el.n, 0, "empty directory: no errors");
	migset_clear(&set);
	free(dir);

	mkd("dangling", 0755);
	lnk("nowhere.sql", "dangling/0001.sql");
	load_fails("dangling",
	    "@/dangling/0001.sql: No such file or directory",
	    "dangling symlink");

	mkd("fifo", 0755);
	path = at("fifo/0001.sql");
	if (mkfifo(path, 0644) == -1) {
		perror(path);
		exit(2);
	}
	free(path);
	load_fails("fifo", "@/fifo/0001.sql: not a regular file",
	    "FIFO named .sql");

	mkd("big", 0755);
	path = at("big/0001.sql");
	if ((fd = open(path, O_WRONLY | O_CREAT, 0644)) == -1 ||
	    ftruncate(fd, (off_t)MIGFILE_MAX_SIZE + 1) == -1 || close(fd)) {
		perror(path);
		exit(2);
	}
	free(path);
	load_fails("big",
	    "@/big/0001.sql: file too large (the limit is 64 MiB)",
	    "file over 64 MiB");

	mkd("unreadable", 0755);
	put("unreadable/0001.sql", "-- down_revision: none\n-- migrate:up\n",
	    0000);
	if (geteuid() == 0) {
		/* Root reads anything: check as nobody, in a child. */
		char	*exp = expand(
			    "@/unreadable/0001.sql: Permission denied");
		pid_t	 pid;
		int	 status = -1;

		chmod(top, 0711);
		fflush(stdout);
		if ((pid = fork()) == 0) {
			struct errlist	 cel = { NULL, 0 };
			struct migset	 cset;
			char		*d = at("unreadable"), *got;

			if (setgid(65534) != 0 || setuid(65534) != 0)
				_exit(3);
			if (migdir_load(d, &cset, &cel) != -1)
				_exit(4);
			got = join(&cel);
			_exit(strcmp(got, exp) == 0 ? 0 : 5);
		}
		waitpid(pid, &status, 0);
		chmod(top, 0700);
		ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		    "unreadable file, as nobody: %s (child status %d)", exp,
		    status);
		free(exp);
	} else {
		load_fails("unreadable",
		    "@/unreadable/0001.sql: Permission denied",
		    "unreadable file");
	}

	/* Errors are appended to what the caller already had. */
	errlist_add(&el, "earlier");
	dir = at("missing");
	is_int(migdir_load(dir, &set, &el), -1, "appends: fails");
	is_int(el.n, 2, "appends: earlier message kept");
	free(dir);
	errlist_clear(&el);
}

/* The stat signature sees edits, new files and removals. */
static void
test_signature(void)
{
	struct errlist	 el = { NULL, 0 };
	struct migset	 set;
	char		*dir, *path;
	struct timespec	 later[2];

	mkd("sig", 0755);
	put("sig/0001_a.sql", "-- down_revision: none\n-- migrate:up\n", 0644);
	dir = at("sig");
	is_int(migdir_load(dir, &set, &el), 0, "signature: loads");
	ok(migset_unchanged(&set), "signature: unchanged right after");
	path = at("sig/0001_a.sql");
	/* same size, later mtime: an edit that keeps the length */
	clock_gettime(CLOCK_REALTIME, &later[0]);
	later[0].tv_sec += 5;
	later[1] = later[0];
	utimensat(AT_FDCWD, path, later, 0);
	ok(!migset_unchanged(&set), "signature: an edited file shows");
	migset_clear(&set);
	is_int(migdir_load(dir, &set, &el), 0, "signature: loads again");
	put("sig/0002_b.sql", "-- down_revision: 0001\n-- migrate:up\n", 0644);
	ok(!migset_unchanged(&set), "signature: a new file shows");
	migset_clear(&set);
	is_int(migdir_load(dir, &set, &el), 0, "signature: loads a third time");
	unlink(path);
	ok(!migset_unchanged(&set), "signature: a removed file shows");
	migset_clear(&set);
	errlist_clear(&el);
	free(path);
	free(dir);
}

/* Another tool's layout through the walk: pairs joined, the down file
 * watched, unchanged files never shared (their parents are recomputed),
 * names the tool does not read said as skipped. */
static void
test_layouts(void)
{
	struct errlist	 el = { NULL, 0 };
	struct migset	 set;
	struct migcache	 cache;
	char		*dir, *path, *got;
	struct timespec	 later[2];

	mkd("gm", 0755);
	put("gm/000001_init.up.sql", "CREATE TABLE t ();\n", 0644);
	put("gm/000001_init.down.sql", "DROP TABLE t;\n", 0644);
	put("gm/000002_more.up.sql", "SELECT 2;\n", 0644);
	put("gm/schema.sql", "-- a dump\n", 0644);
	dir = at("gm");
	is_int(migdir_scan_format(dir, LAYOUT_GOLANG_MIGRATE, &set, &el,
	    NULL), 0, "layouts: golang-migrate loads");
	is_int(set.format, LAYOUT_GOLANG_MIGRATE, "layouts: format kept");
	is_int(set.n, 2, "layouts: two revisions from three files");
	is_str(set.files[1]->parents[0], "1", "layouts: chained");
	got = errlist_join(&set.skipped, "\n");
	ok(strstr(got, "gm/schema.sql: skipped: not a golang-migrate "
	    "migration name") != NULL, "layouts: other names said skipped");
	free(got);
	ok(migset_unchanged(&set), "layouts: unchanged right after");
	path = at("gm/000001_init.down.sql");
	clock_gettime(CLOCK_REALTIME, &later[0]);
	later[0].tv_sec += 5;
	later[1] = later[0];
	utimensat(AT_FDCWD, path, later, 0);
	ok(!migset_unchanged(&set), "layouts: an edited down file shows");
	migcache_init(&cache, set.files, set.n);
	migset_clear(&set);
	is_int(migdir_scan_format(dir, LAYOUT_AUTO, &set, &el, &cache), 0,
	    "layouts: auto loads it again");
	is_int(set.format, LAYOUT_GOLANG_MIGRATE, "layouts: auto detected");
	is_int((int)cache.taken, 0, "layouts: nothing taken from the cache");
	migcache_clear(&cache);
	migset_clear(&set);
	free(dir);

	/* migd's files, then the configuration says dbmate: read afresh. */
	mkd("tomate", 0755);
	put("tomate/20240101_a.sql", "-- down_revision: none\n"
	    "-- migrate:up\nSELECT 1;\n", 0644);
	dir = at("tomate");
	is_int(migdir_scan_format(dir, LAYOUT_AUTO, &set, &el, NULL), 0,
	    "layouts: a migd file");
	is_int(set.format, LAYOUT_MIGD, "layouts: auto says migd");
	migcache_init(&cache, set.files, set.n);
	migset_clear(&set);
	is_int(migdir_scan_format(dir, LAYOUT_DBMATE, &set, &el, &cache), 0,
	    "layouts: the same file as dbmate");
	ok(set.n == 1 && set.files[0]->layout == LAYOUT_DBMATE &&
	    cache.taken == 0, "layouts: not taken from the cache of migd's");
	migcache_clear(&cache);
	migset_clear(&set);
	errlist_clear(&el);
	free(path);
	free(dir);
}

/* A file's stat moved on (as an edit that keeps its length would). */
static void
touch_later(const char *rel, int secs)
{
	struct timespec	 later[2];
	char		*path = at(rel);

	clock_gettime(CLOCK_REALTIME, &later[0]);
	later[0].tv_sec += secs;
	later[1] = later[0];
	if (utimensat(AT_FDCWD, path, later, 0) == -1) {
		perror(path);
		exit(2);
	}
	free(path);
}

/* format = diesel: each migration's directory read by name (up.sql,
 * down.sql, metadata.toml), listed as before when it has no up.sql or
 * holds directories; run_in_transaction = false makes it non-transactional
 * and its metadata.toml is watched. */
static void
test_diesel(void)
{
	struct errlist	 el = { NULL, 0 };
	struct migset	 set;
	char		*dir, *got, *exp;
	int		 f;

	mkd("ds", 0755);
	mkd("ds/2024-01-01-000000_plain", 0755);
	put("ds/2024-01-01-000000_plain/up.sql", "CREATE TABLE a ();\n", 0644);
	put("ds/2024-01-01-000000_plain/down.sql", "DROP TABLE a;\n", 0644);
	mkd("ds/2024-01-02-000000_idx", 0755);
	put("ds/2024-01-02-000000_idx/up.sql",
	    "CREATE INDEX CONCURRENTLY a_i ON a ((1));\n", 0644);
	put("ds/2024-01-02-000000_idx/metadata.toml",
	    "run_in_transaction = false\n", 0644);
	mkd("ds/2024-01-03-000000_intx", 0755);
	put("ds/2024-01-03-000000_intx/up.sql", "SELECT 3;\n", 0644);
	put("ds/2024-01-03-000000_intx/metadata.toml",
	    "# diesel's default\nrun_in_transaction = true\n", 0644);
	dir = at("ds");
	for (f = LAYOUT_AUTO; f <= LAYOUT_DIESEL; f += LAYOUT_DIESEL) {
		is_int(migdir_scan_format(dir, f, &set, &el, NULL), 0,
		    "diesel (%s): loads", layout_name(f));
		got = join(&el);
		is_str(got, "", "diesel (%s): no errors", layout_name(f));
		free(got);
		is_int(set.format, LAYOUT_DIESEL, "diesel (%s): read as diesel",
		    layout_name(f));
		ok(set.n == 3 && set.files[0]->tx == MIGFILE_TX_AUTO &&
		    set.files[1]->tx == MIGFILE_TX_NONE &&
		    set.files[2]->tx == MIGFILE_TX_AUTO,
		    "diesel (%s): run_in_transaction = false, and only there",
		    layout_name(f));
		ok(set.n == 3 && set.files[0]->down != NULL &&
		    set.files[0]->down_path != NULL &&
		    strstr(set.files[0]->down_path, "plain/down.sql") != NULL &&
		    set.files[1]->down == NULL,
		    "diesel (%s): down.sql joined where there is one",
		    layout_name(f));
		is_int((int)set.n_dirs, 4, "diesel (%s): every directory "
		    "watched", layout_name(f));
		is_int((int)set.n_extra, 2, "diesel (%s): both metadata.toml "
		    "watched", layout_name(f));
		ok(migset_unchanged(&set), "diesel (%s): unchanged right after",
		    layout_name(f));
		touch_later("ds/2024-01-02-000000_idx/metadata.toml", 5 + f);
		ok(!migset_unchanged(&set), "diesel (%s): an edited "
		    "metadata.toml shows", layout_name(f));
		migset_clear(&set);
	}

	/* Other files, and a directory without up.sql: what is read. */
	mkd("ds/2024-01-04-000000_typo", 0755);
	put("ds/2024-01-04-000000_typo/Up.sql", "SELECT 4;\n", 0644);
	put("ds/2024-01-02-000000_idx/notes.sql", "-- not read\n", 0644);
	mkd("ds/2024-01-03-000000_intx/old", 0755);
	put("ds/2024-01-03-000000_intx/old/up.sql", "SELECT 0;\n", 0644);
	is_int(migdir_scan_format(dir, LAYOUT_DIESEL, &set, &el, NULL), 0,
	    "diesel: loads with other files");
	is_int((int)set.n, 3, "diesel: still three migrations");
	got = errlist_join(&set.skipped, "\n");
	ok(strstr(got, "typo/Up.sql: skipped: diesel reads only") != NULL &&
	    strstr(got, "intx/old/up.sql: skipped") != NULL &&
	    strstr(got, "notes.sql") == NULL, "diesel: a directory without "
	    "up.sql or with directories is listed and said; others are read "
	    "by name, as diesel does: %s", got);
	free(got);
	migset_clear(&set);

	/* A metadata.toml migd cannot read refuses the load, naming it. */
	put("ds/2024-01-02-000000_idx/metadata.toml",
	    "run_in_transaction = no\n", 0644);
	is_int(migdir_scan_format(dir, LAYOUT_DIESEL, &set, &el, NULL), -1,
	    "diesel: a bad metadata.toml refused");
	got = join(&el);
	exp = expand("@/ds/2024-01-02-000000_idx/metadata.toml:1: "
	    "run_in_transaction must be true or false (a TOML boolean, "
	    "unquoted), not 'no'");
	is_str(got, exp, "diesel: the file, the line, what it must be");
	free(got);
	free(exp);
	errlist_clear(&el);
	migset_clear(&set);

	/* Not trusted: the directory read by name is checked as a listed
	 * one is. */
	put("ds/2024-01-02-000000_idx/metadata.toml",
	    "run_in_transaction = false\n", 0644);
	chmod(got = at("ds/2024-01-01-000000_plain"), 0777);
	is_int(migdir_scan_format(dir, LAYOUT_DIESEL, &set, &el, NULL), -1,
	    "diesel: a world-writable migration directory refused");
	free(got);
	got = join(&el);
	ok(strstr(got, "2024-01-01-000000_plain: refusing a migrations "
	    "directory writable by other users") != NULL,
	    "diesel: the refusal names the directory: %s", got);
	free(got);
	errlist_clear(&el);
	migset_clear(&set);
	chmod(got = at("ds/2024-01-01-000000_plain"), 0755);
	free(got);
	free(dir);
}

/* Reloads of another tool's directory: the files stat says are unchanged
 * are not read again (copied from the last load, counted as taken), an
 * edited one is; parents are settled afresh. */
static void
test_reuse(void)
{
	struct errlist	 el = { NULL, 0 };
	struct migset	 set;
	struct migcache	 cache;
	char		*dir;

	mkd("re", 0755);
	mkd("re/1_a", 0755);
	put("re/1_a/up.sql", "CREATE TABLE a ();\n", 0644);
	put("re/1_a/down.sql", "DROP TABLE a;\n", 0644);
	mkd("re/2_b", 0755);
	put("re/2_b/up.sql", "CREATE TABLE b ();\n", 0644);
	put("re/2_b/down.sql", "DROP TABLE b;\n", 0644);
	mkd("re/3_c", 0755);
	put("re/3_c/up.sql", "CREATE TABLE c ();\n", 0644);
	dir = at("re");
	is_int(migdir_scan_format(dir, LAYOUT_DIESEL, &set, &el, NULL), 0,
	    "reuse: loads");

	/* An edit of one up.sql (its length and time change). */
	put("re/2_b/up.sql", "CREATE TABLE b2 ();\n", 0644);
	touch_later("re/2_b/up.sql", 7);
	migcache_init(&cache, set.files, set.n);
	migset_clear(&set);
	is_int(migdir_scan_format(dir, LAYOUT_DIESEL, &set, &el, &cache), 0,
	    "reuse: loads again");
	is_int((int)cache.taken, 2, "reuse: the two unchanged migrations "
	    "taken, the edited one not");
	ok(set.n == 3 && strcmp(set.files[1]->up, "CREATE TABLE b2 ();\n") ==
	    0 && set.files[1]->reused == 0, "reuse: the edit is read");
	ok(set.n == 3 && set.files[0]->reused == 1 &&
	    strcmp(set.files[0]->up, "CREATE TABLE a ();\n") == 0 &&
	    strcmp(set.files[0]->down, "DROP TABLE a;\n") == 0 &&
	    set.files[0]->down_path != NULL, "reuse: an unchanged one copied "
	    "whole, its down.sql joined again");
	ok(set.n == 3 && set.files[2]->n_parents == 1 &&
	    strcmp(set.files[2]->parents[0], "2") == 0, "reuse: parents "
	    "settled afresh");

	/* A new migration between two: the one after it gets a new parent,
	 * though its files are unchanged. */
	migcache_clear(&cache);
	migcache_init(&cache, set.files, set.n);
	migset_clear(&set);
	mkd("re/25_x", 0755);
	put("re/25_x/up.sql", "SELECT 25;\n", 0644);
	is_int(migdir_scan_format(dir, LAYOUT_DIESEL, &set, &el, &cache), 0,
	    "reuse: loads with a new one");
	is_int((int)cache.taken, 3, "reuse: the three others taken");
	ok(set.n == 4 && strcmp(set.files[3]->revision, "3") == 0 &&
	    set.files[3]->n_parents == 1 &&
	    strcmp(set.files[3]->parents[0], "25") == 0,
	    "reuse: the next one's parent is the new one");
	migcache_clear(&cache);
	migset_clear(&set);
	free(dir);
}

/* migdir_scan keeps what it could read, for one pass over every problem. */
static void
test_scan(void)
{
	struct errlist	 el = { NULL, 0 };
	struct migset	 set;
	char		*dir, *got, *exp;

	mkd("scan", 0755);
	put("scan/0001.sql", "-- down_revision: none\n-- migrate:up\n"
	    "SELECT 1;\n", 0644);
	put("scan/0002.sql", "-- down_revision: 0001\n-- bogus: x\n"
	    "-- migrate:up\nSELECT 2;\n-- migrate:down\nSELECT 3;\n", 0644);
	put("scan/0003.sql", "-- down_revision: 0002\n-- migrate:up\n"
	    "SELECT \"\xff\";\n", 0644);
	put("scan/0004.sql", "-- down_revision: 0002\n-- migrate:up\n", 0666);
	dir = at("scan");
	is_int(migdir_scan(dir, &set, &el), -1, "scan: fails");
	got = join(&el);
	exp = expand("@/scan/0002.sql:2: unknown header 'bogus' (known: "
	    "revision, down_revision, message, transaction, depends_on, "
	    "branch_labels, unfinished)\n"
	    "@/scan/0003.sql:3: not valid UTF-8 (byte 0xff)\n"
	    "@/scan/0004.sql: refusing a migrations file writable by other "
	    "users (owner <me>, mode 0666): chmod o-w @/scan/0004.sql");
	is_str(got, exp, "scan: every problem");
	is_int(set.n, 1, "scan: the valid file kept");
	is_int(set.n_broken, 1, "scan: the file with a bad header kept");
	if (set.n_broken == 1) {
		is_str(set.broken[0]->revision, "0002", "scan: its id read");
		is_str(set.broken[0]->up, "SELECT 2;\n", "scan: its up read");
		is_str(set.broken[0]->down, "SELECT 3;\n",
		    "scan: its down read");
	}
	ok(set.incomplete, "scan: files not read at all are noted");
	migset_clear(&set);
	free(got);
	free(exp);
	errlist_clear(&el);
	is_int(migdir_load(dir, &set, &el), -1, "scan: load fails");
	ok(set.n == 0 && set.n_broken == 0 && set.files == NULL &&
	    set.broken == NULL, "scan: load leaves nothing");
	errlist_clear(&el);
	free(dir);
}

/* What is not read, and could have been meant to be, is said with why;
 * what never was (README, .git) is not. */
static void
test_skipped(void)
{
	struct errlist	 el = { NULL, 0 };
	struct migset	 set;
	char		*dir, *got, *exp;

	mkd("skip", 0755);
	put("skip/0001.sql", "-- down_revision: none\n-- migrate:up\n", 0644);
	mkd("skip/real", 0755);
	put("skip/real/0002.sql", "-- down_revision: 0001\n-- migrate:up\n",
	    0644);
	lnk("real", "skip/linked");
	lnk("real", "skip/linked.sql");
	put("skip/0003.SQL", "-- down_revision: 0002\n-- migrate:up\n", 0644);
	put("skip/.0004.sql", "-- down_revision: 0002\n-- migrate:up\n",
	    0644);
	lnk("0001.sql", "skip/.#0001.sql");
	mkd("skip/.git", 0755);
	put("skip/README", "not a migration", 0644);
	lnk("nowhere", "skip/dangling-notes");
	dir = at("skip");
	is_int(migdir_load(dir, &set, &el), 0, "skipped: the rest loads");
	is_int(set.n, 2, "skipped: 0001 and real/0002 read");
	is_int(el.n, 0, "skipped: no errors");
	got = errlist_join(&set.skipped, "\n");
	exp = expand("@/skip/.0004.sql: skipped: a hidden file (its name starts "
	    "with '.'); rename it to run it\n"
	    "@/skip/0003.SQL: skipped: only names ending in .sql, in lower case, "
	    "are migrations; rename it to run it\n"
	    "@/skip/linked: skipped: a symbolic link to a directory (migd does not "
	    "follow them: they may loop); move the directory here, or link "
	    "its files one by one\n"
	    "@/skip/linked.sql: skipped: a symbolic link to a directory (migd does "
	    "not follow them: they may loop); move the directory here, or "
	    "link its files one by one");
	is_str(got, exp, "skipped: each with its reason, in name order");
	free(got);
	free(exp);
	migset_clear(&set);
	is_int(set.skipped.n, 0, "skipped: cleared with the set");
	free(dir);
}

int
main(void)
{
	char	 tmpl[] = "/tmp/test_migdir.XXXXXX";

	umask(022);
	if (mkdtemp(tmpl) == NULL) {
		perror("mkdtemp");
		return (2);
	}
	top = tmpl;

	test_good_tree();
	test_broken();
	test_permissions();
	test_other();
	test_signature();
	test_scan();
	test_skipped();
	test_layouts();
	test_diesel();
	test_reuse();

	if (nftw(top, rm_one, 16, FTW_DEPTH | FTW_PHYS) == -1)
		perror(top);
	return (done_testing());
}
